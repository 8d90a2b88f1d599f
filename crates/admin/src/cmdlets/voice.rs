//! Enterprise voice's cmdlets beyond the generated ones: normalization rules (inside dial
//! plans), outbound translation rules (inside trunk configurations), `New-CsVoiceRegex`, and
//! the checks that tie the voice documents together (PSTN usages that exist, gateways that
//! exist, patterns that compile).

use super::*;
use crate::schema::strip_ci;
use crate::voice::{check_pattern, check_translation, voice_regex};
use confab_policy::{NormalizationRule, OutboundTranslationRule, VoicemailDestination};
use serde::{de::DeserializeOwned, Serialize};

pub(super) const PSTN_USAGE: &str = "CsPstnUsage";
pub(super) const PSTN_GATEWAY: &str = "CsPstnGateway";

/// A list of rules kept inside a parent document.
pub(super) struct RuleKind {
    /// The noun of the rule cmdlets.
    pub noun: &'static str,
    /// The document holding the rules.
    pub parent: &'static str,
    /// The parent's property holding them.
    pub list: &'static str,
    /// The type name of the objects the cmdlets return.
    pub type_name: &'static str,
    /// What the parent is called in messages.
    pub parent_name: &'static str,
}

pub(super) const NORMALIZATION: RuleKind = RuleKind {
    noun: "CsVoiceNormalizationRule",
    parent: "CsDialPlan",
    list: "NormalizationRules",
    type_name: "NormalizationRule",
    parent_name: "dial plan",
};

pub(super) const TRANSLATION: RuleKind = RuleKind {
    noun: "CsOutboundTranslationRule",
    parent: "CsTrunkConfiguration",
    list: "OutboundTranslationRulesList",
    type_name: "OutboundTranslationRule",
    parent_name: "trunk configuration",
};

pub(super) fn rule_kind(cmdlet: &str) -> Option<&'static RuleKind> {
    if cmdlet.starts_with("Test-") {
        // Test-CsVoiceNormalizationRule takes a rule, it does not change one (voice_test.rs)
        None
    } else if cmdlet.ends_with(NORMALIZATION.noun) {
        Some(&NORMALIZATION)
    } else if cmdlet.ends_with(TRANSLATION.noun) {
        Some(&TRANSLATION)
    } else {
        None
    }
}

fn kind_named(noun: &str) -> &'static Kind {
    all_kinds()
        .iter()
        .find(|k| k.noun == noun)
        .expect("a voice document kind")
}

/// The fixed cmdlets of enterprise voice: (name, parameters, mandatory, pipeline input,
/// changes, help, run).
pub(super) fn cmdlets() -> Vec<FixedCmdlet> {
    const NORM: &[&str] = &[
        "Identity",
        "Parent",
        "Name",
        "Pattern",
        "Translation",
        "Priority",
        "Description",
        "IsInternalExtension",
        "InMemory",
    ];
    const NORM_SET: &[&str] = &[
        "Identity",
        "Pattern",
        "Translation",
        "Priority",
        "Description",
        "IsInternalExtension",
    ];
    const OUT: &[&str] = &[
        "Identity",
        "Parent",
        "Name",
        "Pattern",
        "Translation",
        "Priority",
        "Description",
        "InMemory",
    ];
    const OUT_SET: &[&str] = &[
        "Identity",
        "Pattern",
        "Translation",
        "Priority",
        "Description",
    ];
    vec![
        (
            "Get-CsVoiceNormalizationRule",
            &["Identity", "Filter"],
            &[],
            false,
            false,
            "Lists the normalization rules of every dial plan, of one (-Identity site:Redmond), or one rule (-Identity site:Redmond/RuleName).",
            get_rules,
        ),
        (
            "New-CsVoiceNormalizationRule",
            NORM,
            &[],
            false,
            true,
            "Adds a normalization rule to an existing dial plan: -Identity <plan>/<Name> (or -Parent <plan> -Name <Name>) -Pattern <regex> -Translation <replacement> [-Priority n: inserted there, the others move down; default last] [-IsInternalExtension] [-Description].",
            new_rule,
        ),
        (
            "Set-CsVoiceNormalizationRule",
            NORM_SET,
            &[],
            true,
            true,
            "Changes a normalization rule (-Identity <plan>/<Name>); a new -Priority moves it there.",
            set_rule,
        ),
        (
            "Remove-CsVoiceNormalizationRule",
            &["Identity"],
            &[],
            true,
            true,
            "Removes a normalization rule (-Identity <plan>/<Name>); the rules after it move up.",
            remove_rule,
        ),
        (
            "Get-CsOutboundTranslationRule",
            &["Identity", "Filter"],
            &[],
            false,
            false,
            "Lists the outbound translation rules of every trunk configuration, of one (-Identity PstnGateway:192.0.2.10), or one rule (…/RuleName).",
            get_rules,
        ),
        (
            "New-CsOutboundTranslationRule",
            OUT,
            &[],
            false,
            true,
            "Adds an outbound translation rule to a trunk configuration: -Identity <Global|Site:X|PstnGateway:<gateway>>/<Name> (or -Parent -Name) [-Pattern, default ^\\+(\\d*)$] [-Translation, default $1] [-Priority] [-Description].",
            new_rule,
        ),
        (
            "Set-CsOutboundTranslationRule",
            OUT_SET,
            &[],
            true,
            true,
            "Changes an outbound translation rule; a new -Priority moves it there.",
            set_rule,
        ),
        (
            "Remove-CsOutboundTranslationRule",
            &["Identity"],
            &[],
            true,
            true,
            "Removes an outbound translation rule.",
            remove_rule,
        ),
        (
            "New-CsVoiceRegex",
            &[
                "StartsWith",
                "ExactLength",
                "AtLeastLength",
                "DigitsToStrip",
                "DigitsToPrepend",
            ],
            &[],
            false,
            false,
            "Builds a normalization rule's Pattern and Translation: -StartsWith <digits> -ExactLength n | -AtLeastLength n -DigitsToStrip n -DigitsToPrepend <digits> (use $r.Pattern, $r.Translation).",
            new_voice_regex,
        ),
    ]
}

// ----- checks before a script runs --------------------------------------------------------

/// The checks of the voice cmdlets that can be made before anything runs (values given
/// literally); None: not a voice cmdlet.
pub(super) fn check(b: &Bound, s: &Session) -> Option<Result<(), ExecError>> {
    if b.def.name == "New-CsVoiceRegex" {
        return Some(regex_args(b, s, true).map(|_| ()));
    }
    let rk = rule_kind(b.def.name)?;
    Some((|| {
        for (p, f) in [
            ("Pattern", check_pattern as fn(&str) -> Result<(), String>),
            ("Translation", check_translation),
        ] {
            if let Some(e) = b.get(p).filter(|e| !has_var(e)) {
                let v = s.literal(e)?;
                let t = v.as_str().ok_or_else(|| bad(b, p, "give a string"))?;
                f(t).map_err(|m| bad(b, p, m))?;
            }
        }
        if let Some(e) = b.get("Priority").filter(|e| !has_var(e)) {
            priority_value(b, &s.literal(e)?)?;
        }
        if let Some(e) = b.identity().filter(|e| !has_var(e)) {
            if let Some(raw) = s.literal(e)?.as_str() {
                if b.def.name.starts_with("New-") || raw.contains('/') {
                    parse_rule_identity(rk, raw).map_err(|m| bad(b, "Identity", m))?;
                } else if !b.def.name.starts_with("Get-") {
                    return Err(bad(
                        b,
                        "Identity",
                        format!(
                            "'{raw}' names no rule: use <{}>/<rule name>",
                            rk.parent_name
                        ),
                    ));
                } else {
                    canonical_parent(rk, raw).map_err(|m| bad(b, "Identity", m))?;
                }
            }
        }
        if b.identity().is_some() && (b.has("Parent") || b.has("Name")) {
            return Err(bad(
                b,
                "Identity",
                "use either -Identity <scope>/<name> or -Parent <scope> -Name <name>",
            ));
        }
        if b.def.name.starts_with("New-") && b.identity().is_none() {
            for p in ["Parent", "Name"] {
                if !b.has(p) {
                    return Err(ExecError::Missing {
                        cmdlet: b.def.name.to_string(),
                        param: format!("Identity (or -Parent and -Name; -{p} is missing)"),
                    });
                }
            }
        }
        Ok(())
    })())
}

/// What a property's literal value can be checked for before the script runs: a route's
/// NumberPattern must compile.
pub(super) fn check_value(b: &Bound, k: &Kind, prop: &str, v: &Value) -> Result<(), ExecError> {
    if k.noun == "CsVoiceRoute" && prop == "NumberPattern" {
        check_pattern(v.as_str().unwrap_or("")).map_err(|m| bad(b, prop, m))?;
    }
    if k.noun == HOSTED_VOICEMAIL && prop == "Destination" {
        VoicemailDestination::parse(v.as_str().unwrap_or("")).map_err(|m| bad(b, prop, m))?;
    }
    Ok(())
}

/// The hosted voicemail policy, whose Destination is a SIP URI of an IP address in confab.
const HOSTED_VOICEMAIL: &str = "CsHostedVoicemailPolicy";

/// The scope a rule's identity lies in (its parent's), for site-scoped roles.
pub(super) fn rule_scope(def: &Cmdlet, raw: &str) -> Option<String> {
    let rk = rule_kind(def.name)?;
    match parse_rule_identity(rk, raw) {
        Ok((parent, _)) => Some(parent),
        Err(_) => canonical_parent(rk, raw).ok(),
    }
}

fn priority_value(b: &Bound, v: &Value) -> Result<usize, ExecError> {
    let p = coerce(
        &Prop {
            name: "Priority",
            ty: PropType::Int { min: 0, max: 1000 },
            default: json!(0),
        },
        v,
        &Value::Null,
    )
    .map_err(|m| bad(b, "Priority", m))?;
    Ok(p.as_i64().unwrap_or(0) as usize)
}

// ----- identities ---------------------------------------------------------------------------

/// A parent scope in Lync's spellings: `Global`, `site:X`, `service:PstnGateway:gw` or the
/// short `PstnGateway:gw` (and `Registrar:pool` for dial plans), or a per-user plan's name.
pub(super) fn canonical_parent(rk: &RuleKind, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let k = kind_named(rk.parent);
    for role in ["PstnGateway", "Registrar"] {
        if let Some(rest) = strip_ci(raw, &format!("{role}:")) {
            return canonical_identity(k, &format!("Service:{role}:{rest}"));
        }
    }
    canonical_identity(k, raw)
}

/// `<parent>/<name>` → (canonical parent, name).
fn parse_rule_identity(rk: &RuleKind, raw: &str) -> Result<(String, String), String> {
    let (parent, name) = raw.trim().split_once('/').ok_or_else(|| {
        format!(
            "'{raw}' is not <{}>/<rule name> (e.g. site:Redmond/RedmondFourDigit)",
            rk.parent_name
        )
    })?;
    Ok((canonical_parent(rk, parent)?, rule_name(name)?))
}

fn rule_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > 256
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(format!(
            "'{name}' is not a rule name (1 to 256 characters, no '/')"
        ));
    }
    Ok(name.to_string())
}

/// How a rule's parent shows in its Identity: per-user plans by their name, as in Lync.
fn shown_parent(parent: &str) -> &str {
    parent.strip_prefix("Tag:").unwrap_or(parent)
}

/// The rule the command names: -Identity <parent>/<name>, or -Parent and -Name.
fn named_rule(b: &Bound, s: &Session, rk: &RuleKind) -> Result<(String, String), ExecError> {
    if let Some(raw) = text_arg(b, s, "Identity")? {
        return parse_rule_identity(rk, &raw).map_err(|m| bad(b, "Identity", m));
    }
    let parent = text_arg(b, s, "Parent")?.ok_or_else(|| ExecError::Missing {
        cmdlet: b.def.name.into(),
        param: "Identity".into(),
    })?;
    let name = text_arg(b, s, "Name")?.ok_or_else(|| ExecError::Missing {
        cmdlet: b.def.name.into(),
        param: "Name".into(),
    })?;
    Ok((
        canonical_parent(rk, &parent).map_err(|m| bad(b, "Parent", m))?,
        rule_name(&name).map_err(|m| bad(b, "Name", m))?,
    ))
}

/// The rules a Set-/Remove- works on: -Identity, or the rule objects piped in.
fn rule_targets(
    b: &Bound,
    s: &Session,
    rk: &RuleKind,
    input: Option<Vec<Obj>>,
) -> Result<Vec<(String, String)>, ExecError> {
    let ids = if b.identity().is_some() {
        vec![named_rule(b, s, rk)?]
    } else {
        let objs = input.ok_or_else(|| ExecError::Missing {
            cmdlet: b.def.name.into(),
            param: "Identity".into(),
        })?;
        objs.iter()
            .filter_map(Obj::identity)
            .map(|raw| parse_rule_identity(rk, &raw).map_err(|m| bad(b, "Identity", m)))
            .collect::<Result<Vec<_>, _>>()?
    };
    for (parent, _) in &ids {
        if !s.may_touch(b.def.name, parent) {
            return Err(s.out_of_scope(b.def.name, parent.clone(), "configuration"));
        }
    }
    Ok(ids)
}

// ----- rule cmdlets -------------------------------------------------------------------------

fn rule_obj(rk: &RuleKind, parent: &str, rule: &Value) -> Obj {
    let name = rule.get("Name").and_then(Value::as_str).unwrap_or("");
    let field = |k: &str| rule.get(k).cloned().unwrap_or(Value::Null);
    let mut props = vec![
        (
            "Identity".to_string(),
            json!(format!("{}/{name}", shown_parent(parent))),
        ),
        ("Priority".to_string(), field("Priority")),
        ("Description".to_string(), field("Description")),
        ("Pattern".to_string(), field("Pattern")),
        ("Translation".to_string(), field("Translation")),
        ("Name".to_string(), json!(name)),
    ];
    if rk.noun == NORMALIZATION.noun {
        props.push((
            "IsInternalExtension".to_string(),
            field("IsInternalExtension"),
        ));
    }
    Obj::record(rk.type_name, props)
}

fn rules_of(body: &Map<String, Value>, rk: &RuleKind) -> Vec<Value> {
    body.get(rk.list)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn find_index(list: &[Value], name: &str) -> Option<usize> {
    list.iter().position(|r| {
        r.get("Name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The parent document, which must exist (Global always does).
fn load_parent(
    b: &Bound,
    s: &Session,
    rk: &RuleKind,
    parent: &str,
) -> Result<Map<String, Value>, ExecError> {
    load(b, s, kind_named(rk.parent), parent)?.ok_or_else(|| {
        failed(
            b,
            format!(
                "Cannot find {} \"{parent}\": create it first (New-{} -Identity {})",
                rk.parent_name,
                rk.parent,
                shown_parent(parent)
            ),
        )
    })
}

fn store_parent(
    b: &Bound,
    s: &mut Session,
    rk: &RuleKind,
    parent: &str,
    mut body: Map<String, Value>,
    list: Vec<Value>,
) -> Result<Map<String, Value>, ExecError> {
    let k = kind_named(rk.parent);
    body.insert(rk.list.to_string(), Value::Array(list));
    check_document(b, s, k, parent, &mut body)?;
    s.store
        .put_config(k.noun, parent, &body)
        .map_err(|e| store_err(b, e))?;
    if let Some(p) = k.def.prop(rk.list) {
        if let confab_policy::Enforcement::NotEnforced(why) = p.enforcement {
            s.warn(format!(
                "{}: {} rules are not enforced by confab yet ({why}); the rule is stored but has no effect",
                b.def.name, rk.type_name
            ));
        }
    }
    Ok(body)
}

fn get_rules(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let rk = rule_kind(b.def.name).expect("a rule cmdlet");
    let k = kind_named(rk.parent);
    if let Some(raw) = text_arg(b, s, "Identity")? {
        if raw.contains('/') {
            let (parent, name) =
                parse_rule_identity(rk, &raw).map_err(|m| bad(b, "Identity", m))?;
            let list = load(b, s, k, &parent)?
                .map(|body| rules_of(&body, rk))
                .unwrap_or_default();
            return match find_index(&list, &name) {
                Some(i) => Ok(vec![rule_obj(rk, &parent, &list[i])]),
                None => Err(failed(b, format!("Cannot find {} \"{raw}\"", rk.type_name))),
            };
        }
        let parent = canonical_parent(rk, &raw).map_err(|m| bad(b, "Identity", m))?;
        let body = load_parent(b, s, rk, &parent)?;
        return Ok(rules_of(&body, rk)
            .iter()
            .map(|r| rule_obj(rk, &parent, r))
            .collect());
    }
    let mut docs: Vec<(String, Map<String, Value>)> = s
        .store
        .list_config(k.noun)
        .map_err(|e| store_err(b, e))?
        .into_iter()
        .map(|d| (d.identity, d.body))
        .collect();
    if !docs.iter().any(|(id, _)| id == "Global") {
        docs.push(("Global".into(), k.defaults()));
    }
    docs.sort_by_key(|(id, _)| scope_rank(id));
    let filter = text_arg(b, s, "Filter")?;
    Ok(docs
        .iter()
        .flat_map(|(id, body)| {
            rules_of(body, rk)
                .into_iter()
                .map(move |r| rule_obj(rk, id, &r))
        })
        .filter(|o| {
            filter
                .as_deref()
                .is_none_or(|f| o.identity().is_some_and(|id| glob(f, &id)))
        })
        .collect())
}

/// Applies -Pattern, -Translation, -Description, -IsInternalExtension to a rule.
fn apply_rule(b: &Bound, s: &Session, rule: &mut Map<String, Value>) -> Result<(), ExecError> {
    for p in ["Pattern", "Translation", "Description"] {
        if b.has(p) {
            let v = text_arg(b, s, p)?.unwrap_or_default();
            match p {
                "Pattern" => check_pattern(&v),
                "Translation" => check_translation(&v),
                _ if v.chars().count() > 512 => {
                    Err("The value is longer than 512 characters".into())
                }
                _ => Ok(()),
            }
            .map_err(|m| bad(b, p, m))?;
            rule.insert(p.to_string(), json!(v));
        }
    }
    if let Some(v) = bool_arg(b, s, "IsInternalExtension")? {
        rule.insert("IsInternalExtension".into(), json!(v));
    }
    Ok(())
}

fn new_rule(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let rk = rule_kind(b.def.name).expect("a rule cmdlet");
    let (parent, name) = named_rule(b, s, rk)?;
    if !s.may_touch(b.def.name, &parent) {
        return Err(s.out_of_scope(b.def.name, parent, "configuration"));
    }
    let mut rule = match rk.noun {
        "CsVoiceNormalizationRule" => to_map(&NormalizationRule::default()),
        _ => to_map(&OutboundTranslationRule::default()),
    };
    rule.insert("Name".into(), json!(name));
    apply_rule(b, s, &mut rule)?;
    let in_memory = switch_on(b, "InMemory");
    let body = load_parent(b, s, rk, &parent)?;
    let mut list = rules_of(&body, rk);
    if find_index(&list, &name).is_some() {
        return Err(failed(
            b,
            format!(
                "{} \"{}/{name}\" already exists",
                rk.type_name,
                shown_parent(&parent)
            ),
        ));
    }
    let at = match b.get("Priority") {
        Some(e) => priority_value(b, &s.literal(e)?)?,
        None => list.len(),
    };
    if at > list.len() {
        return Err(bad(
            b,
            "Priority",
            format!(
                "{} \"{}\" has {} rule(s): the priority of a new rule is 0 to {}",
                rk.parent_name,
                shown_parent(&parent),
                list.len(),
                list.len()
            ),
        ));
    }
    list.insert(at, Value::Object(rule));
    if in_memory {
        // checked like a stored one, but only handed back (for -NormalizationRules @{Add=…})
        let mut body = body;
        body.insert(rk.list.to_string(), Value::Array(list));
        check_document(b, s, kind_named(rk.parent), &parent, &mut body)?;
        let list = rules_of(&body, rk);
        return Ok(vec![rule_obj(rk, &parent, &list[at])]);
    }
    let body = store_parent(b, s, rk, &parent, body, list)?;
    Ok(vec![rule_obj(rk, &parent, &rules_of(&body, rk)[at])])
}

fn set_rule(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let rk = rule_kind(b.def.name).expect("a rule cmdlet");
    let priority = match b.get("Priority") {
        Some(e) => Some(priority_value(b, &s.literal(e)?)?),
        None => None,
    };
    for (parent, name) in rule_targets(b, s, rk, input)? {
        let body = load_parent(b, s, rk, &parent)?;
        let mut list = rules_of(&body, rk);
        let i = find_index(&list, &name).ok_or_else(|| {
            failed(
                b,
                format!(
                    "Cannot find {} \"{}/{name}\"",
                    rk.type_name,
                    shown_parent(&parent)
                ),
            )
        })?;
        let mut rule = match list.remove(i) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        apply_rule(b, s, &mut rule)?;
        let at = priority.unwrap_or(i);
        if at > list.len() {
            return Err(bad(
                b,
                "Priority",
                format!("the priority is 0 to {} here", list.len()),
            ));
        }
        list.insert(at, Value::Object(rule));
        store_parent(b, s, rk, &parent, body, list)?;
    }
    Ok(vec![])
}

fn remove_rule(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let rk = rule_kind(b.def.name).expect("a rule cmdlet");
    for (parent, name) in rule_targets(b, s, rk, input)? {
        let body = load_parent(b, s, rk, &parent)?;
        let mut list = rules_of(&body, rk);
        let i = find_index(&list, &name).ok_or_else(|| {
            failed(
                b,
                format!(
                    "Cannot remove {} \"{}/{name}\" because it does not exist",
                    rk.type_name,
                    shown_parent(&parent)
                ),
            )
        })?;
        list.remove(i);
        store_parent(b, s, rk, &parent, body, list)?;
    }
    Ok(vec![])
}

fn to_map<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

// ----- New-CsVoiceRegex -----------------------------------------------------------------------

/// The pattern and translation New-CsVoiceRegex builds; before the script runs
/// (`checking`), None when a value is a variable (checked when it runs).
fn regex_args(
    b: &Bound,
    s: &Session,
    checking: bool,
) -> Result<Option<(String, String)>, ExecError> {
    if checking && b.named.iter().any(|(_, e)| e.is_some_and(has_var)) {
        return Ok(None);
    }
    let count = |name: &'static str, max: i64| -> Result<Option<u32>, ExecError> {
        match b.get(name) {
            None => Ok(None),
            Some(e) => {
                let v = coerce(
                    &Prop {
                        name,
                        ty: PropType::Int { min: 0, max },
                        default: json!(0),
                    },
                    &s.literal(e)?,
                    &Value::Null,
                )
                .map_err(|m| bad(b, name, m))?;
                Ok(Some(v.as_i64().unwrap_or(0) as u32))
            }
        }
    };
    let exact = count("ExactLength", 50)?;
    let at_least = count("AtLeastLength", 50)?;
    let strip = count("DigitsToStrip", 50)?.unwrap_or(0);
    let starts = text_arg(b, s, "StartsWith")?.unwrap_or_default();
    let prepend = text_arg(b, s, "DigitsToPrepend")?.unwrap_or_default();
    let param = |m: &str| {
        [
            "StartsWith",
            "DigitsToPrepend",
            "DigitsToStrip",
            "ExactLength",
        ]
        .into_iter()
        .find(|p| m.contains(p))
        .unwrap_or("AtLeastLength")
    };
    voice_regex(starts.trim(), exact, at_least, strip, prepend.trim())
        .map(Some)
        .map_err(|m| bad(b, param(&m), m))
}

fn new_voice_regex(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let (pattern, translation) = regex_args(b, s, false)?.unwrap_or_default();
    Ok(vec![Obj::record(
        "VoiceRegex",
        vec![
            ("Pattern".into(), json!(pattern)),
            ("Translation".into(), json!(translation)),
        ],
    )])
}

// ----- the documents' own checks ------------------------------------------------------------

/// A rule kept in a list: what the shared checks need.
trait ListRule: Serialize + DeserializeOwned {
    fn name(&self) -> &str;
    fn pattern(&self) -> &str;
    fn translation(&self) -> &str;
    fn set_priority(&mut self, p: i64);
}

impl ListRule for NormalizationRule {
    fn name(&self) -> &str {
        &self.name
    }
    fn pattern(&self) -> &str {
        &self.pattern
    }
    fn translation(&self) -> &str {
        &self.translation
    }
    fn set_priority(&mut self, p: i64) {
        self.priority = p;
    }
}

impl ListRule for OutboundTranslationRule {
    fn name(&self) -> &str {
        &self.name
    }
    fn pattern(&self) -> &str {
        &self.pattern
    }
    fn translation(&self) -> &str {
        &self.translation
    }
    fn set_priority(&mut self, p: i64) {
        self.priority = p;
    }
}

/// Checks a rule list (names unique, patterns and translations valid), numbers the rules'
/// Priority by their place, and keeps only the rule's own fields.
fn check_rules<T: ListRule>(
    b: &Bound,
    body: &mut Map<String, Value>,
    prop: &str,
) -> Result<(), ExecError> {
    let Some(v) = body.get(prop) else {
        return Ok(());
    };
    let mut rules: Vec<T> = serde_json::from_value(v.clone())
        .map_err(|_| bad(b, prop, "the server could not read these rules"))?;
    let mut names: Vec<String> = vec![];
    for (i, r) in rules.iter_mut().enumerate() {
        let name = rule_name(r.name()).map_err(|m| bad(b, prop, m))?;
        if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            return Err(bad(b, prop, format!("two rules are named '{name}'")));
        }
        check_pattern(r.pattern()).map_err(|m| bad(b, prop, format!("rule '{name}': {m}")))?;
        check_translation(r.translation())
            .map_err(|m| bad(b, prop, format!("rule '{name}': {m}")))?;
        r.set_priority(i as i64);
        names.push(name);
    }
    body.insert(
        prop.to_string(),
        serde_json::to_value(&rules).unwrap_or(Value::Array(vec![])),
    );
    Ok(())
}

fn usages(s: &Session, b: &Bound) -> Result<Vec<String>, ExecError> {
    let body = load(b, s, kind_named(PSTN_USAGE), "Global")?.unwrap_or_default();
    Ok(body
        .get("Usage")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Every usage a list names must be one of CsPstnUsage's (Lync refuses others); the
/// spelling becomes the usage's own.
fn check_usages(
    b: &Bound,
    s: &Session,
    body: &mut Map<String, Value>,
    prop: &str,
) -> Result<(), ExecError> {
    let Some(Value::Array(list)) = body.get(prop) else {
        return Ok(());
    };
    if list.is_empty() {
        return Ok(());
    }
    let known = usages(s, b)?;
    let mut out = vec![];
    for u in list {
        let u = u.as_str().unwrap_or("");
        let found = known.iter().find(|k| k.eq_ignore_ascii_case(u)).ok_or_else(|| {
            bad(
                b,
                prop,
                format!(
                    "PSTN usage '{u}' does not exist; add it first: Set-CsPstnUsage -Usage @{{Add=\"{u}\"}}"
                ),
            )
        })?;
        out.push(json!(found));
    }
    body.insert(prop.to_string(), Value::Array(out));
    Ok(())
}

/// Where a PSTN usage is named (kind, identity), for refusing its removal.
fn usage_users(b: &Bound, s: &Session, usage: &str) -> Result<Option<String>, ExecError> {
    for (noun, props) in [
        (
            "CsVoicePolicy",
            &["PstnUsages", "CustomCallForwardingSimulRingUsages"][..],
        ),
        ("CsVoiceRoute", &["PstnUsages"][..]),
        ("CsTrunkConfiguration", &["PstnUsages"][..]),
    ] {
        for d in s.store.list_config(noun).map_err(|e| store_err(b, e))? {
            for p in props {
                if let Some(Value::Array(a)) = d.body.get(*p) {
                    if a.iter()
                        .any(|v| v.as_str().is_some_and(|x| x.eq_ignore_ascii_case(usage)))
                    {
                        return Ok(Some(format!("{noun} \"{}\" ({p})", d.identity)));
                    }
                }
            }
        }
    }
    Ok(None)
}

/// The checks that tie a voice document to the others, after its properties were applied
/// and before it is stored: rules valid and numbered, usages and gateways existing,
/// patterns compiling, a gateway with an address.
pub(super) fn check_document(
    b: &Bound,
    s: &Session,
    k: &Kind,
    id: &str,
    body: &mut Map<String, Value>,
) -> Result<(), ExecError> {
    check_own(b, k, id, body)?;
    match k.noun {
        "CsTrunkConfiguration" => check_usages(b, s, body, "PstnUsages"),
        "CsVoicePolicy" => {
            check_usages(b, s, body, "PstnUsages")?;
            check_usages(b, s, body, "CustomCallForwardingSimulRingUsages")
        }
        "CsVoiceRoute" => {
            check_usages(b, s, body, "PstnUsages")?;
            if let Some(Value::Array(list)) = body.get("PstnGatewayList") {
                for g in list {
                    let entry = g.as_str().unwrap_or("");
                    let gw = entry.strip_prefix("PstnGateway:").unwrap_or(entry);
                    if s.store
                        .get_config(PSTN_GATEWAY, gw)
                        .map_err(|e| store_err(b, e))?
                        .is_none()
                    {
                        return Err(bad(
                            b,
                            "PstnGatewayList",
                            format!("gateway '{gw}' is not defined; define it first: New-CsPstnGateway -Identity {gw} -Address <IP address>"),
                        ));
                    }
                }
            }
            Ok(())
        }
        "CsPstnUsage" => {
            let new: Vec<String> = body
                .get("Usage")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for old in usages(s, b)? {
                if !new.iter().any(|n| n.eq_ignore_ascii_case(&old)) {
                    if let Some(user) = usage_users(b, s, &old)? {
                        return Err(failed(
                            b,
                            format!("PSTN usage '{old}' is used by {user}; remove it there first"),
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The checks of a voice document on its own (no other document read): rule lists valid
/// and numbered, patterns compiling, gateway entries well formed, a caller ID that is a
/// number, a gateway with an IP address. Import-CsConfiguration runs these too.
pub(super) fn check_own(
    b: &Bound,
    k: &Kind,
    id: &str,
    body: &mut Map<String, Value>,
) -> Result<(), ExecError> {
    match k.noun {
        "CsDialPlan" => check_rules::<NormalizationRule>(b, body, "NormalizationRules"),
        "CsTrunkConfiguration" => {
            check_rules::<OutboundTranslationRule>(b, body, "OutboundTranslationRulesList")
        }
        "CsVoiceRoute" => {
            if let Some(p) = body.get("NumberPattern") {
                check_pattern(p.as_str().unwrap_or("")).map_err(|m| bad(b, "NumberPattern", m))?;
            }
            let mut gateways = vec![];
            if let Some(Value::Array(list)) = body.get("PstnGatewayList") {
                for g in list {
                    let g = g.as_str().unwrap_or("");
                    let gw = strip_ci(g.trim(), "PstnGateway:")
                        .map(|id| id.trim().to_ascii_lowercase())
                        .filter(|id| !id.is_empty())
                        .ok_or_else(|| {
                            bad(
                                b,
                                "PstnGatewayList",
                                format!("'{g}' is not PstnGateway:<gateway>"),
                            )
                        })?;
                    let entry = format!("PstnGateway:{gw}");
                    if !gateways.contains(&json!(entry)) {
                        gateways.push(json!(entry));
                    }
                }
                body.insert("PstnGatewayList".into(), Value::Array(gateways));
            }
            let alt = body
                .get("AlternateCallerId")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !alt.is_empty() && !is_caller_id(alt) {
                return Err(bad(
                    b,
                    "AlternateCallerId",
                    format!("'{alt}' is not a phone number: (+)<digits, not starting with 0>[;ext=<digits>], as Lync requires"),
                ));
            }
            if body.get("SuppressCallerId") == Some(&json!(true)) && alt.is_empty() {
                return Err(bad(
                    b,
                    "AlternateCallerId",
                    "SuppressCallerId $true needs an AlternateCallerId (the number shown instead)",
                ));
            }
            Ok(())
        }
        HOSTED_VOICEMAIL => {
            let raw = body
                .get("Destination")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let canonical = VoicemailDestination::parse(&raw)
                .map_err(|m| bad(b, "Destination", m))?
                .map(|d| d.to_string())
                .unwrap_or_default();
            body.insert("Destination".into(), json!(canonical));
            Ok(())
        }
        "CsPstnGateway" => {
            let addr = body
                .get("Address")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string();
            let addr = if addr.is_empty() {
                if id.parse::<std::net::IpAddr>().is_err() {
                    return Err(bad(
                        b,
                        "Address",
                        format!("gateway '{id}' needs -Address <IP address> (confab does not resolve names)"),
                    ));
                }
                id.to_string()
            } else {
                addr
            };
            let ip = addr
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .map_err(|_| {
                    bad(
                        b,
                        "Address",
                        format!("'{addr}' is not an IP address (confab does not resolve names)"),
                    )
                })?;
            body.insert("Address".into(), json!(ip.to_string()));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Lync warns about a new route that no usage or no gateway reaches.
pub(super) fn warn_new(b: &Bound, s: &mut Session, k: &Kind, body: &Map<String, Value>) {
    if k.noun != "CsVoiceRoute" {
        return;
    }
    for p in ["PstnUsages", "PstnGatewayList"] {
        if body
            .get(p)
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
        {
            s.warn(format!(
                "{}: the route has no {p}: no call can take it until it has",
                b.def.name
            ));
        }
    }
}

/// Lync's form of AlternateCallerId: `(\+)?[1-9]\d*(;ext=[1-9]\d*)?`.
fn is_caller_id(v: &str) -> bool {
    let digits = |d: &str| {
        !d.is_empty()
            && d.len() <= 20
            && !d.starts_with('0')
            && d.bytes().all(|c| c.is_ascii_digit())
    };
    let v = v.strip_prefix('+').unwrap_or(v);
    match v.split_once(";ext=") {
        Some((n, e)) => digits(n) && digits(e),
        None => digits(v),
    }
}

/// Lync refuses to remove what others still name: a gateway a route sends calls to.
pub(super) fn check_removal(b: &Bound, s: &Session, k: &Kind, id: &str) -> Result<(), ExecError> {
    if k.noun != PSTN_GATEWAY {
        return Ok(());
    }
    let entry = format!("PstnGateway:{id}");
    for d in s
        .store
        .list_config("CsVoiceRoute")
        .map_err(|e| store_err(b, e))?
    {
        if let Some(Value::Array(a)) = d.body.get("PstnGatewayList") {
            if a.iter()
                .any(|v| v.as_str().is_some_and(|x| x.eq_ignore_ascii_case(&entry)))
            {
                return Err(failed(
                    b,
                    format!(
                        "gateway '{id}' is in the PstnGatewayList of voice route \"{}\"; remove it there first",
                        d.identity
                    ),
                ));
            }
        }
    }
    Ok(())
}
