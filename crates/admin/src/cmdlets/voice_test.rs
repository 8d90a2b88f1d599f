//! The Test- cmdlets of enterprise voice (Lync §4): what a dial plan, a normalization rule,
//! a voice route, a voice policy, a user or a trunk does with a number. Read-only (never
//! audited as changes). The answers come from confab-voice — the same functions the server's
//! routing calls — on the typed documents converted by `crate::voice`.
//!
//! Each takes its object as Lync does: by Identity (`-DialPlan site:Redmond`), as an object
//! (`-DialPlan $dp`, also one made with `-InMemory`), or piped (`Get-CsDialPlan | Test-CsDialPlan
//! -DialedNumber 1234`), giving one result per object.

use super::*;
use crate::voice::{normalization_rules, outbound_rules, test_number, voice_route};
use confab_policy::{
    DialPlan, NormalizationRule, OutboundTranslationRule, TrunkConfiguration, VoicePolicy,
    VoiceRoute,
};
use serde::de::DeserializeOwned;

/// The fixed cmdlets: (name, parameters, mandatory, pipeline input, changes, help, run).
pub(super) fn cmdlets() -> Vec<FixedCmdlet> {
    vec![
        (
            "Test-CsVoiceNormalizationRule",
            &["NormalizationRule", "DialedNumber", "Force"],
            &["DialedNumber"],
            true,
            false,
            "Applies a normalization rule (-NormalizationRule <plan>/<name> or a rule object, or piped) to -DialedNumber: TranslatedNumber, empty when the rule does not match.",
            test_rule,
        ),
        (
            "Test-CsDialPlan",
            &["DialPlan", "DialedNumber", "Force"],
            &["DialedNumber"],
            true,
            false,
            "Normalizes -DialedNumber with a dial plan (-DialPlan <identity> or a plan object, or piped): TranslatedNumber and MatchingRule (the lowest-Priority rule that matches), empty when none does.",
            test_dial_plan,
        ),
        (
            "Test-CsVoiceRoute",
            &["Route", "TargetNumber", "Force"],
            &["TargetNumber"],
            true,
            false,
            "Whether a voice route's NumberPattern (-Route <name> or a route object, or piped) matches -TargetNumber: MatchesPattern True or False.",
            test_route,
        ),
        (
            "Test-CsVoicePolicy",
            &["VoicePolicy", "TargetNumber", "RouteSettings", "Force"],
            &["TargetNumber"],
            true,
            false,
            "The route a voice policy (-VoicePolicy <identity> or a policy object, or piped) takes for -TargetNumber: its PSTN usages in order, for each the matching routes by Priority (the stored routes, or those of -RouteSettings): FirstMatchingRoute and MatchingUsage, empty when none matches.",
            test_policy,
        ),
        (
            "Test-CsVoiceUser",
            &["SipUri", "DialedNumber", "TargetNumber", "Site", "Force"],
            &[],
            true,
            false,
            "What a call from an Enterprise Voice user (-SipUri sip:user@domain) to -DialedNumber does: their dial plan normalizes it (TranslatedNumber, MatchingRule), their voice policy picks the route (FirstMatchingRoute, MatchingUsage). Plan and policy: the user's own (Grant-), else those of -Site <name> (confab's: the site of the user's pool), else Global.",
            test_user,
        ),
        (
            "Test-CsTrunkConfiguration",
            &["TrunkConfiguration", "DialedNumber", "CallingNumber", "Force"],
            &["DialedNumber"],
            true,
            false,
            "The number a trunk configuration (-TrunkConfiguration <identity> or a trunk object, or piped) sends its gateway for -DialedNumber after its outbound translation rules: TranslatedNumber and MatchingRule (the number unchanged and no rule when none matches).",
            test_trunk,
        ),
    ]
}

/// The names of these cmdlets.
const NAMES: [&str; 6] = [
    "Test-CsVoiceNormalizationRule",
    "Test-CsDialPlan",
    "Test-CsVoiceRoute",
    "Test-CsVoicePolicy",
    "Test-CsVoiceUser",
    "Test-CsTrunkConfiguration",
];

/// Whether `name` (a registered cmdlet's name) is one of these cmdlets.
pub(super) fn is_test(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The checks made before a script runs: literal numbers must be phone numbers, so a
/// script with a malformed number runs nothing.
pub(super) fn check(b: &Bound, s: &Session) -> Result<(), ExecError> {
    for p in ["DialedNumber", "TargetNumber", "CallingNumber"] {
        if let Some(e) = b.get(p).filter(|e| !has_var(e)) {
            number_value(b, p, &s.literal(e)?)?;
        }
    }
    if b.def.name == "Test-CsVoiceUser" {
        if let Some(e) = b.get("Site").filter(|e| !has_var(e)) {
            site_value(b, &s.literal(e)?)?;
        }
        if b.has("DialedNumber") && b.has("TargetNumber") {
            return Err(bad(
                b,
                "TargetNumber",
                "give either -DialedNumber or -TargetNumber",
            ));
        }
        if !b.has("DialedNumber") && !b.has("TargetNumber") {
            return Err(ExecError::Missing {
                cmdlet: b.def.name.into(),
                param: "DialedNumber".into(),
            });
        }
    }
    Ok(())
}

fn number_value(b: &Bound, param: &str, v: &Value) -> Result<String, ExecError> {
    let raw = match v {
        Value::String(t) => t.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        other => {
            return Err(bad(
                b,
                param,
                format!("'{}' is not a phone number (give digits, optionally after + or tel:; quote long numbers)", crate::object::display(other)),
            ))
        }
    };
    test_number(&raw).map_err(|m| bad(b, param, m))
}

/// A site name given with -Site (`Redmond` or `Site:Redmond`), as it stands in `Site:<name>`.
fn site_value(b: &Bound, v: &Value) -> Result<String, ExecError> {
    let raw = v
        .as_str()
        .ok_or_else(|| bad(b, "Site", "give a site name"))?
        .trim();
    let name = crate::schema::strip_ci(raw, "Site:").unwrap_or(raw).trim();
    // the characters of a site name in an identity, as the server's `site` setting takes
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if !ok {
        return Err(bad(
            b,
            "Site",
            format!("'{raw}' is not a site name (letters, digits, '-', '_', '.', space)"),
        ));
    }
    Ok(name.to_string())
}

/// The number in `param` (mandatory).
fn number(b: &Bound, s: &Session, param: &str) -> Result<String, ExecError> {
    let e = b.get(param).ok_or_else(|| ExecError::Missing {
        cmdlet: b.def.name.into(),
        param: param.into(),
    })?;
    number_value(b, param, &s.literal(e)?)
}

/// An object a Test- cmdlet works on: named by Identity, or given whole (a variable, a
/// piped object, `-InMemory`).
enum Given {
    Id(String),
    Obj(Map<String, Value>),
}

/// The objects of `param` (or the first positional argument), else the objects piped in.
fn given(
    b: &Bound,
    s: &Session,
    param: &str,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Given>, ExecError> {
    fn from_value(b: &Bound, param: &str, v: Value, out: &mut Vec<Given>) -> Result<(), ExecError> {
        match v {
            Value::String(id) => out.push(Given::Id(id)),
            Value::Object(m) => out.push(Given::Obj(m)),
            Value::Array(items) => {
                for i in items {
                    if matches!(i, Value::Array(_)) {
                        return Err(bad(
                            b,
                            param,
                            "give objects or identities, not nested lists",
                        ));
                    }
                    from_value(b, param, i, out)?;
                }
            }
            Value::Null => {}
            other => {
                return Err(bad(
                    b,
                    param,
                    format!(
                        "'{}' is neither an identity nor an object",
                        crate::object::display(&other)
                    ),
                ))
            }
        }
        Ok(())
    }
    let mut out = vec![];
    if let Some(e) = b.get(param).or_else(|| b.positional.first().copied()) {
        from_value(b, param, s.literal(e)?, &mut out)?;
    } else if let Some(objs) = input {
        for o in objs {
            from_value(b, param, o.to_json(), &mut out)?;
        }
    }
    if out.is_empty() {
        return Err(ExecError::Missing {
            cmdlet: b.def.name.into(),
            param: param.into(),
        });
    }
    Ok(out)
}

/// A whole object given to a Test- cmdlet, read as `T`: it must be of the type the cmdlet
/// takes (when it says), and every property it has must fit.
fn typed<T: DeserializeOwned + Default>(
    b: &Bound,
    param: &str,
    m: &Map<String, Value>,
    types: &[&str],
) -> Result<T, ExecError> {
    if let Some(t) = m.get("_type").and_then(Value::as_str) {
        if !types.iter().any(|x| x.eq_ignore_ascii_case(t)) {
            return Err(bad(
                b,
                param,
                format!("the object given is a {t}, not a {}", types[0]),
            ));
        }
    }
    let mut body = m.clone();
    body.remove("_type");
    body.remove("Identity");
    serde_json::from_value(Value::Object(body)).map_err(|e| {
        bad(
            b,
            param,
            format!("the object given is not a {} ({e})", types[0]),
        )
    })
}

fn identity_of(m: &Map<String, Value>) -> String {
    m.get("Identity")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// A stored document of `noun` by identity (canonical), or an error naming it.
fn stored<T: confab_policy::Document>(
    b: &Bound,
    s: &Session,
    param: &str,
    what: &str,
    canonical: Result<String, String>,
) -> Result<(String, T), ExecError> {
    let id = canonical.map_err(|m| bad(b, param, m))?;
    let k = all_kinds()
        .iter()
        .find(|k| k.noun == T::DEF.noun)
        .expect("a voice document kind");
    match load(b, s, k, &id)? {
        Some(body) => {
            let (doc, bad_props) = T::from_body(&body);
            if let Some(p) = bad_props.first() {
                return Err(failed(
                    b,
                    format!("{what} \"{id}\" holds a {p} the server cannot read"),
                ));
            }
            Ok((id, doc))
        }
        None => Err(failed(
            b,
            format!("Cannot find {what} \"{id}\" because it does not exist"),
        )),
    }
}

fn kind(noun: &str) -> &'static Kind {
    all_kinds()
        .iter()
        .find(|k| k.noun == noun)
        .expect("a voice document kind")
}

// ----- results ------------------------------------------------------------------------------

fn opt(v: Option<Value>) -> Value {
    v.unwrap_or(Value::Null)
}

/// A normalization rule as Lync shows it inside a result.
fn rule_value(r: &NormalizationRule) -> Value {
    json!({
        "Description": r.description,
        "Pattern": r.pattern,
        "Translation": r.translation,
        "Name": r.name,
        "IsInternalExtension": r.is_internal_extension,
    })
}

fn out_rule_value(r: &OutboundTranslationRule) -> Value {
    json!({
        "Description": r.description,
        "Pattern": r.pattern,
        "Translation": r.translation,
        "Name": r.name,
        "Priority": r.priority,
    })
}

/// A voice route as Lync shows it inside a result.
fn route_value(r: &confab_voice::Route) -> Value {
    json!({
        "Identity": r.name,
        "Priority": r.priority,
        "NumberPattern": r.number_pattern,
        "PstnUsages": r.pstn_usages,
        "PstnGatewayList": r.gateways,
        "Name": r.name,
        "SuppressCallerId": r.suppress_caller_id,
        "AlternateCallerId": r.alternate_caller_id,
    })
}

/// Normalizes `number` with `plan`: (TranslatedNumber, MatchingRule), both null when no rule
/// matches. confab_voice::normalize decides; the rule shown is the plan's own.
fn normalized(plan: &DialPlan, number: &str) -> (Value, Value) {
    let rules = normalization_rules(plan);
    match confab_voice::normalize(&rules, number) {
        Some(n) => {
            let rule = plan
                .normalization_rules
                .iter()
                .find(|r| r.name == n.rule.name)
                .map(rule_value);
            (json!(n.number), opt(rule))
        }
        None => (Value::Null, Value::Null),
    }
}

/// The first route of `policy` for `number` among `routes`: (FirstMatchingRoute,
/// MatchingUsage), both null when none matches.
fn first_route(usages: &[String], routes: &[confab_voice::Route], number: &str) -> (Value, Value) {
    match confab_voice::candidates(usages, routes, number).first() {
        Some(c) => (route_value(c.route), json!(c.usage)),
        None => (Value::Null, Value::Null),
    }
}

fn result(type_name: &str, props: Vec<(&str, Value)>) -> Obj {
    Obj::record(
        type_name,
        props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    )
}

// ----- the cmdlets --------------------------------------------------------------------------

fn test_rule(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    const P: &str = "NormalizationRule";
    let dialed = number(b, s, "DialedNumber")?;
    let mut out = vec![];
    for g in given(b, s, P, input)? {
        let rule: NormalizationRule = match g {
            Given::Obj(m) => typed(b, P, &m, &["NormalizationRule"])?,
            Given::Id(raw) => {
                let (parent, name) = raw
                    .trim()
                    .split_once('/')
                    .ok_or_else(|| {
                        bad(
                            b,
                            P,
                            format!("'{raw}' is not <dial plan>/<rule name> (e.g. site:Redmond/RedmondFourDigit)"),
                        )
                    })?;
                let (id, plan): (String, DialPlan) = stored(
                    b,
                    s,
                    P,
                    "dial plan",
                    voice::canonical_parent(&voice::NORMALIZATION, parent),
                )?;
                plan.normalization_rules
                    .into_iter()
                    .find(|r| r.name.eq_ignore_ascii_case(name.trim()))
                    .ok_or_else(|| {
                        failed(
                            b,
                            format!(
                                "Cannot find NormalizationRule \"{}/{}\" because it does not exist",
                                id.strip_prefix("Tag:").unwrap_or(&id),
                                name.trim()
                            ),
                        )
                    })?
            }
        };
        // one rule: the dial plan of that rule alone
        let plan = DialPlan {
            normalization_rules: vec![rule],
            ..DialPlan::default()
        };
        let (translated, _) = normalized(&plan, &dialed);
        out.push(result(
            "NormalizationRuleTestResult",
            vec![("TranslatedNumber", translated)],
        ));
    }
    Ok(out)
}

fn test_dial_plan(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    const P: &str = "DialPlan";
    let dialed = number(b, s, "DialedNumber")?;
    let mut out = vec![];
    for g in given(b, s, P, input)? {
        let plan: DialPlan = match g {
            Given::Obj(m) => typed(b, P, &m, &["CsDialPlan", "DialPlan", "LocationProfile"])?,
            Given::Id(raw) => {
                stored(
                    b,
                    s,
                    P,
                    "dial plan",
                    voice::canonical_parent(&voice::NORMALIZATION, &raw),
                )?
                .1
            }
        };
        let (translated, rule) = normalized(&plan, &dialed);
        out.push(result(
            "DialPlanTestResult",
            vec![("TranslatedNumber", translated), ("MatchingRule", rule)],
        ));
    }
    Ok(out)
}

/// A route given whole or by name.
fn route_of(
    b: &Bound,
    s: &Session,
    param: &str,
    g: Given,
) -> Result<confab_voice::Route, ExecError> {
    Ok(match g {
        Given::Obj(m) => {
            let id = identity_of(&m);
            let id = m
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .unwrap_or(id);
            voice_route(
                &id,
                &typed::<VoiceRoute>(b, param, &m, &["CsVoiceRoute", "Route"])?,
            )
        }
        Given::Id(raw) => {
            let (id, r): (String, VoiceRoute) = stored(
                b,
                s,
                param,
                "voice route",
                canonical_identity(kind(VoiceRoute::DEF.noun), &raw),
            )?;
            voice_route(&id, &r)
        }
    })
}

fn test_route(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    const P: &str = "Route";
    let target = number(b, s, "TargetNumber")?;
    let mut out = vec![];
    for g in given(b, s, P, input)? {
        let route = route_of(b, s, P, g)?;
        // what confab_voice::candidates asks of a route's NumberPattern (an invalid pattern
        // never matches)
        let matches =
            confab_voice::compiled(&route.number_pattern).is_some_and(|p| p.is_match(&target));
        out.push(result(
            "VoiceRouteTestResult",
            vec![("MatchesPattern", json!(matches))],
        ));
    }
    Ok(out)
}

/// The routes of -RouteSettings (route objects or names, or an object holding them in
/// `Route`), else every stored route.
fn routes_for(b: &Bound, s: &Session) -> Result<Vec<confab_voice::Route>, ExecError> {
    const P: &str = "RouteSettings";
    let Some(e) = b.get(P) else {
        return crate::voice::voice_routes(s.store).map_err(|e| store_err(b, e));
    };
    let v = s.literal(e)?;
    let v = match v {
        Value::Object(m) if m.keys().any(|k| k.eq_ignore_ascii_case("Route")) => m
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Route"))
            .map(|(_, v)| v)
            .unwrap_or(Value::Null),
        v => v,
    };
    let items = match v {
        Value::Array(a) => a,
        Value::Null => vec![],
        one => vec![one],
    };
    let mut routes = vec![];
    for i in items {
        let g = match i {
            Value::String(id) => Given::Id(id),
            Value::Object(m) => Given::Obj(m),
            other => {
                return Err(bad(
                    b,
                    P,
                    format!("'{}' is not a voice route", crate::object::display(&other)),
                ))
            }
        };
        routes.push(route_of(b, s, P, g)?);
    }
    Ok(routes)
}

fn test_policy(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    const P: &str = "VoicePolicy";
    let target = number(b, s, "TargetNumber")?;
    let routes = routes_for(b, s)?;
    let mut out = vec![];
    for g in given(b, s, P, input)? {
        let policy: VoicePolicy = match g {
            Given::Obj(m) => typed(b, P, &m, &["CsVoicePolicy", "VoicePolicy"])?,
            Given::Id(raw) => {
                stored(
                    b,
                    s,
                    P,
                    "voice policy",
                    canonical_identity(kind(VoicePolicy::DEF.noun), &raw),
                )?
                .1
            }
        };
        let (route, usage) = first_route(&policy.pstn_usages, &routes, &target);
        out.push(result(
            "VoicePolicyTestResult",
            vec![("FirstMatchingRoute", route), ("MatchingUsage", usage)],
        ));
    }
    Ok(out)
}

fn test_user(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    const P: &str = "SipUri";
    let dialed = if b.has("TargetNumber") {
        number(b, s, "TargetNumber")?
    } else {
        number(b, s, "DialedNumber")?
    };
    let site = match b.get("Site") {
        Some(e) => Some(site_value(b, &s.literal(e)?)?),
        None => None,
    };
    let routes = crate::voice::voice_routes(s.store).map_err(|e| store_err(b, e))?;
    let mut out = vec![];
    for g in given(b, s, P, input)? {
        let raw = match g {
            Given::Id(raw) => raw,
            // a user piped from Get-CsUser
            Given::Obj(m) => m
                .get("SipAddress")
                .or_else(|| m.get("Identity"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(b, P, "the object given is not a user"))?,
        };
        let user = find_user(b, s, &raw)?;
        if !user.enterprise_voice_enabled {
            return Err(failed(
                b,
                format!(
                    "sip:{} is not enabled for Enterprise Voice and cannot call phone numbers (Set-CsUser -Identity sip:{} -EnterpriseVoiceEnabled $true)",
                    user.address(),
                    user.address()
                ),
            ));
        }
        let key = user.address();
        let site = site.as_deref();
        let plan = crate::pins::dial_plan_for(s.store, &key, site).map_err(|e| store_err(b, e))?;
        let policy =
            crate::voice::voice_policy_for(s.store, &key, site).map_err(|e| store_err(b, e))?;
        let (translated, rule) = normalized(&plan, &dialed);
        // no rule matches: the number is routed as dialled
        let routed = translated.as_str().unwrap_or(&dialed).to_string();
        let (route, usage) = first_route(&policy.pstn_usages, &routes, &routed);
        out.push(result(
            "VoiceUserTestResult",
            vec![
                ("TranslatedNumber", translated),
                ("MatchingRule", rule),
                ("FirstMatchingRoute", route),
                ("MatchingUsage", usage),
            ],
        ));
    }
    Ok(out)
}

fn test_trunk(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    const P: &str = "TrunkConfiguration";
    let dialed = number(b, s, "DialedNumber")?;
    let calling = match b.get("CallingNumber") {
        Some(e) => Some(number_value(b, "CallingNumber", &s.literal(e)?)?),
        None => None,
    };
    let mut out = vec![];
    for g in given(b, s, P, input)? {
        let trunk: TrunkConfiguration = match g {
            Given::Obj(m) => typed(b, P, &m, &["CsTrunkConfiguration", "TrunkConfiguration"])?,
            Given::Id(raw) => {
                stored(
                    b,
                    s,
                    P,
                    "trunk configuration",
                    voice::canonical_parent(&voice::TRANSLATION, &raw),
                )?
                .1
            }
        };
        let rules = outbound_rules(&trunk);
        let translated = confab_voice::translate(&rules, &dialed);
        let rule = confab_voice::normalize(&rules, &dialed).and_then(|n| {
            trunk
                .outbound_translation_rules_list
                .iter()
                .find(|r| r.name == n.rule.name)
                .map(out_rule_value)
        });
        let mut props = vec![
            ("TranslatedNumber", json!(translated)),
            ("MatchingRule", opt(rule)),
        ];
        if let Some(c) = &calling {
            // confab has no calling-number translation rules: the calling number is sent as is
            props.push(("TranslatedCallingNumber", json!(c)));
            props.push(("MatchingCallingNumberRule", Value::Null));
        }
        out.push(result("TrunkConfigurationTestResult", props));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_names_are_the_cmdlets() {
        let names: Vec<&str> = super::cmdlets().iter().map(|c| c.0).collect();
        assert_eq!(names, super::NAMES);
        for n in names {
            assert!(crate::roles::LYNC_CMDLETS.contains(&n), "{n}");
        }
    }
}
