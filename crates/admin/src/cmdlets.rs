//! The cmdlet registry: every cmdlet confab runs, with its parameters, whether it changes
//! anything (audited) and its implementation over the store. Get-/Set-/New-/Remove- (and
//! Grant- for policies) are generated for each configuration object in schema.rs.

use crate::ast::Expr;
use crate::exec::{Bound, ExecError, Session};
use crate::object::Obj;
use crate::roles::{canonical_cmdlet, Role, BUILTIN_ROLES};
use crate::schema::{canonical_identity, kinds, scope_rank, Kind, Prop, PropType, ScopeKind};
use confab_policy::Document;
use confab_store::{AdminRoleRow, StoreError};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

mod forwarding;
mod pool;
mod simple_url;
mod users;
mod voice;
mod voice_test;

pub struct Param {
    pub name: &'static str,
    pub switch: bool,
}

/// A parameter that takes a value.
pub(crate) fn p(name: &'static str) -> Param {
    Param {
        name,
        switch: false,
    }
}

/// A switch parameter.
pub(crate) fn sw(name: &'static str) -> Param {
    Param { name, switch: true }
}

type Check = fn(&Bound, &Session) -> Result<(), ExecError>;
pub(crate) type Run = fn(&Bound, &mut Session, Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError>;

pub struct Cmdlet {
    pub name: &'static str,
    pub params: Vec<Param>,
    pub mandatory: Vec<&'static str>,
    pub max_positional: usize,
    pub pipeline_input: bool,
    /// Changes state: written to the audit log.
    pub changes: bool,
    pub help: &'static str,
    /// Index into schema::kinds() for generated cmdlets.
    pub kind: Option<usize>,
    pub check: Check,
    pub run: Run,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A name built once, when the registry is (see [`registry`]).
pub(crate) fn leak_str(s: String) -> &'static str {
    leak(s)
}

/// Parameters that are switches (present or not, no value).
const SWITCHES: &[&str] = &[
    "TLSRoute", "TCPRoute", "Private", "Assigned", "InMemory", "Force", "Clear",
];

fn params(names: &[&'static str]) -> Vec<Param> {
    names
        .iter()
        .map(|n| Param {
            name: n,
            switch: SWITCHES.contains(n),
        })
        .collect()
}

fn no_check(_: &Bound, _: &Session) -> Result<(), ExecError> {
    Ok(())
}

pub(crate) fn all_kinds() -> &'static [Kind] {
    static K: OnceLock<Vec<Kind>> = OnceLock::new();
    K.get_or_init(kinds)
}

pub fn registry() -> &'static [Cmdlet] {
    static R: OnceLock<Vec<Cmdlet>> = OnceLock::new();
    R.get_or_init(build)
}

pub fn find(name: &str) -> Option<&'static Cmdlet> {
    let name = name.trim_start_matches(".\\").trim_start_matches("./");
    let name = name.strip_suffix(".ps1").unwrap_or(name);
    let alias = crate::help::ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(name))
        .map_or(name, |(_, target)| *target);
    registry()
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(alias))
}

pub fn names() -> impl Iterator<Item = &'static str> {
    registry().iter().map(|c| c.name)
}

/// A cmdlet that is not generated from the schema: name, parameters, mandatory
/// parameters, takes pipeline input, changes state, help, what it runs.
type FixedCmdlet = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    bool,
    &'static str,
    Run,
);

fn build() -> Vec<Cmdlet> {
    let mut v = vec![];
    for (i, k) in all_kinds().iter().enumerate() {
        let props: Vec<&'static str> = k.props.iter().map(|p| p.name).collect();
        let with = |base: &[&'static str]| -> Vec<Param> {
            params(base).into_iter().chain(params(&props)).collect()
        };
        v.push(Cmdlet {
            name: leak(format!("Get-{}", k.noun)),
            params: params(&["Identity", "Filter"]),
            mandatory: vec![],
            max_positional: 1,
            pipeline_input: false,
            changes: false,
            help: "Returns the settings at every scope, or at -Identity (Global, Site:<name>, …).",
            kind: Some(i),
            check: check_identity,
            run: get_config,
        });
        v.push(Cmdlet {
            name: leak(format!("Set-{}", k.noun)),
            params: with(&["Identity"]),
            mandatory: vec![],
            max_positional: 1,
            pipeline_input: true,
            changes: true,
            help: "Changes settings at -Identity (default Global), or of the objects piped in.",
            kind: Some(i),
            check: check_props,
            run: set_config,
        });
        if k.get_set_only {
            continue;
        }
        v.push(Cmdlet {
            name: leak(format!("New-{}", k.noun)),
            params: with(&["Identity"]),
            mandatory: vec!["Identity"],
            max_positional: 1,
            pipeline_input: false,
            changes: true,
            help: "Creates settings at a new scope, starting from the defaults.",
            kind: Some(i),
            check: check_props,
            run: new_config,
        });
        v.push(Cmdlet {
            name: leak(format!("Remove-{}", k.noun)),
            params: params(&["Identity"]),
            mandatory: vec!["Identity"],
            max_positional: 1,
            pipeline_input: true,
            changes: true,
            help: "Removes settings at a scope; for Global, resets them to the defaults.",
            kind: Some(i),
            check: check_identity,
            run: remove_config,
        });
        if k.is_policy {
            v.push(Cmdlet {
                name: leak(format!("Grant-{}", k.noun)),
                params: params(&["Identity", "PolicyName"]),
                mandatory: vec!["Identity", "PolicyName"],
                max_positional: 1,
                pipeline_input: false,
                changes: true,
                help: "Assigns a per-user policy (-PolicyName <name>, or $null for the site/global one).",
                kind: Some(i),
                check: no_check,
                run: grant_policy,
            });
        }
    }
    let fixed: Vec<FixedCmdlet> = vec![
        (
            "Get-CsUser",
            &["Identity", "Filter"],
            &[],
            false,
            false,
            "Lists users (sip:alice@example.test).",
            get_user,
        ),
        (
            "Set-CsUser",
            &[
                "Identity",
                "Enabled",
                "DisplayName",
                "LineURI",
                "EnterpriseVoiceEnabled",
                "HostedVoiceMail",
            ],
            &["Identity"],
            true,
            true,
            "Changes a user.",
            set_user,
        ),
        (
            "New-CsUser",
            &["Identity", "Password", "DisplayName", "OU"],
            &["Identity", "Password"],
            false,
            true,
            "Creates a user who may sign in (-Identity sip:alice@example.test -Password …, optional -DisplayName, -OU 'OU=…,DC=…'): confab's directory in the place of Active Directory plus Enable-CsUser.",
            new_user,
        ),
        (
            "Remove-CsUser",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Deletes a user with their contact list and stored messages.",
            remove_user,
        ),
        (
            "Disable-CsUser",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Stops a user from signing in.",
            disable_user,
        ),
        (
            "Set-CsClientPin",
            &["Identity", "Pin"],
            &["Identity"],
            true,
            true,
            "Sets a user's dial-in PIN (-Pin <digits>, checked against their CsPinPolicy), or without -Pin a random one, shown once; unlocks it.",
            set_client_pin,
        ),
        (
            "Get-CsClientPinInfo",
            &["Identity"],
            &["Identity"],
            true,
            false,
            "Shows whether a user has a dial-in PIN, whether it is locked out, and when it was set and expires (never the PIN).",
            get_client_pin_info,
        ),
        (
            "Lock-CsClientPin",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Locks a user's dial-in PIN: it signs nobody in until Unlock-CsClientPin or a new PIN.",
            lock_client_pin,
        ),
        (
            "Unlock-CsClientPin",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Unlocks a user's dial-in PIN and clears its failed sign-ins.",
            unlock_client_pin,
        ),
        (
            "Get-CsAdminRole",
            &["Identity", "Filter"],
            &[],
            false,
            false,
            "Lists admin roles.",
            get_role,
        ),
        (
            "New-CsAdminRole",
            &[
                "Identity",
                "Template",
                "Cmdlets",
                "ConfigScopes",
                "UserScopes",
            ],
            &["Identity", "Template"],
            false,
            true,
            "Creates a role from a built-in template.",
            new_role,
        ),
        (
            "Set-CsAdminRole",
            &["Identity", "Cmdlets", "ConfigScopes", "UserScopes"],
            &["Identity"],
            true,
            true,
            "Changes a custom role (@{Add=…}/@{Remove=…}/@{Replace=…}).",
            set_role,
        ),
        (
            "Remove-CsAdminRole",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Removes a custom role.",
            remove_role,
        ),
        (
            "New-CsClonedPolicy",
            &["SourcePolicyName", "TargetPolicyName", "PolicyType"],
            &["SourcePolicyName", "TargetPolicyName", "PolicyType"],
            false,
            true,
            "Copies a policy under a new name.",
            cloned_policy,
        ),
        (
            "New-CsWebTrustedCACertificate",
            &["Thumbprint", "CAStore"],
            &["Thumbprint", "CAStore"],
            false,
            false,
            "Makes a trusted CA entry for Set-CsWebServiceConfiguration -TrustedCACerts.",
            web_cert,
        ),
        (
            "New-CsStaticRoute",
            &[
                "TLSRoute",
                "TCPRoute",
                "Destination",
                "Port",
                "MatchUri",
                "UseDefaultCertificate",
                "TLSCertIssuer",
                "TLSCertSerialNumber",
                "Enabled",
            ],
            &["Destination", "MatchUri"],
            false,
            false,
            "Makes a static route for Set-CsStaticRoutingConfiguration -Route.",
            static_route,
        ),
        (
            "Get-CsServerApplication",
            &["Identity", "Filter"],
            &[],
            false,
            false,
            "Lists server applications (SIP filter scripts).",
            get_app,
        ),
        (
            "New-CsServerApplication",
            &[
                "Identity",
                "Uri",
                "ScriptName",
                "Enabled",
                "Critical",
                "Priority",
            ],
            &["Identity", "Uri"],
            false,
            true,
            "Adds a server application.",
            new_app,
        ),
        (
            "Set-CsServerApplication",
            &[
                "Identity",
                "Uri",
                "ScriptName",
                "Enabled",
                "Critical",
                "Priority",
            ],
            &["Identity"],
            true,
            true,
            "Changes a server application.",
            set_app,
        ),
        (
            "Remove-CsServerApplication",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Removes a server application.",
            remove_app,
        ),
        (
            "New-CsMeeting",
            &[
                "Organizer",
                "Private",
                "Assigned",
                "Access",
                "Subject",
                "Presenters",
                "PstnBypassLobby",
                "Invitees",
                "EndTime",
                "Site",
            ],
            &["Organizer"],
            false,
            true,
            "Creates a meeting for -Organizer (-Private or -Assigned; by default as CsMeetingConfiguration says), -Access Locked|Invited|SameEnterprise|Everyone.",
            new_meeting,
        ),
        (
            "Get-CsMeeting",
            &["Identity", "Organizer"],
            &[],
            false,
            false,
            "Lists meetings, or the one whose conference key is -Identity.",
            get_meeting,
        ),
        (
            "Remove-CsMeeting",
            &["Identity"],
            &["Identity"],
            true,
            true,
            "Removes a meeting (-Identity is its conference key).",
            remove_meeting,
        ),
        (
            "Get-CsAuditLog",
            &["Admin", "Contains", "Last", "Since"],
            &[],
            false,
            false,
            "Shows who changed what, when, from where (-Admin, -Contains text, -Since 'YYYY-MM-DD[ hh:mm[:ss]]' UTC, -Last n).",
            get_audit,
        ),
        (
            "Export-CsConfiguration",
            &["FileName"],
            &["FileName"],
            false,
            // writes a file: audited
            true,
            "Writes every configuration document and custom role to a file.",
            export_config,
        ),
        (
            "Import-CsConfiguration",
            &["FileName"],
            &["FileName"],
            false,
            true,
            "Loads a file written by Export-CsConfiguration.",
            import_config,
        ),
        (
            "Export-CsUserData",
            &["FileName"],
            &["FileName"],
            false,
            // writes every user's HA1 hashes: audited
            true,
            "Writes users (hashes only), contact lists and stored messages to a file in the export folder (CsAdministrator only).",
            export_users,
        ),
        (
            "Import-CsUserData",
            &["FileName"],
            &["FileName"],
            false,
            true,
            "Loads a file written by Export-CsUserData.",
            import_users,
        ),
    ];
    let mut fixed = fixed;
    fixed.extend(voice::cmdlets());
    fixed.extend(voice_test::cmdlets());
    fixed.extend(forwarding::cmdlets());
    fixed.extend(pool::cmdlets());
    fixed.extend(users::cmdlets());
    fixed.extend(simple_url::cmdlets());
    // dial-in access numbers: Lync names their identity -PrimaryUri, and Get- filters by
    // -Region
    for c in v.iter_mut().filter(|c| {
        c.kind
            .is_some_and(|i| all_kinds()[i].noun == crate::schema::ACCESS_NUMBER)
    }) {
        c.params.extend(params(&["PrimaryUri"]));
        if c.name.starts_with("Get-") {
            c.params.extend(params(&["Region"]));
            c.run = get_access_numbers;
        }
        if c.name.starts_with("New-") || c.name.starts_with("Set-") {
            c.check = check_access_number_args;
        }
        if c.name.starts_with("New-") {
            // -PrimaryUri or -Identity: check_access_number_args asks for one
            c.mandatory = vec![];
            c.help = "Creates a dial-in access number: -PrimaryUri sip:<name>@<domain> -LineUri tel:+<digits> -DisplayNumber -Regions -PrimaryLanguage [-SecondaryLanguages] [-DisplayName] [-Priority].";
        }
    }
    for (name, ps, mandatory, pipe, changes, help, run) in fixed {
        v.push(Cmdlet {
            name,
            params: params(ps),
            mandatory: mandatory.to_vec(),
            max_positional: 1,
            pipeline_input: pipe || name.starts_with("Set-"),
            changes,
            help,
            kind: None,
            check: check_fixed,
            run,
        });
    }
    v.extend(crate::pipeline::cmdlets());
    v.extend(crate::help::cmdlets());
    v
}

pub(crate) fn failed(b: &Bound, message: impl Into<String>) -> ExecError {
    ExecError::Failed {
        cmdlet: b.def.name.to_string(),
        message: message.into(),
    }
}

pub(crate) fn bad(b: &Bound, param: &str, message: impl Into<String>) -> ExecError {
    ExecError::BadValue {
        cmdlet: b.def.name.to_string(),
        param: param.to_string(),
        message: message.into(),
    }
}

fn store_err(b: &Bound, e: StoreError) -> ExecError {
    failed(b, e.to_string())
}

fn kind_of(b: &Bound) -> &'static Kind {
    &all_kinds()[b.def.kind.expect("generated cmdlet")]
}

/// The scope an Identity argument names, for site-scoped roles.
pub(crate) fn scope_of(def: &Cmdlet, raw: &str) -> Option<String> {
    if def.kind.is_none() && def.changes && def.name.ends_with("-CsServerApplication") {
        // Service:Registrar:<pool>/<Name>: within Global scopes only (a pool's site is not
        // known), so a site-scoped administrator cannot add or change SIP filter scripts
        return Some(raw.trim().to_string());
    }
    if def.kind.is_none() {
        return voice::rule_scope(def, raw);
    }
    let k = def.kind.map(|i| &all_kinds()[i])?;
    canonical_identity(k, raw).ok()
}

/// Replaces the value of -Password-like parameters before the command is logged. A quoted
/// value is replaced whole, spaces and all (`-Password 'a b c'`).
pub fn redact(cmd: &str) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut redact_next = false;
    // inside a quoted secret being left out: the quote that ends it
    let mut in_quote: Option<char> = None;
    for (i, word) in cmd.split(' ').enumerate() {
        if let Some(q) = in_quote {
            if closes_quote(word, q) {
                in_quote = None;
            }
            continue;
        }
        if i > 0 {
            out.push(' ');
        }
        if redact_next {
            out.push_str("********");
            redact_next = false;
            in_quote = opens_quote(word);
            continue;
        }
        let w = word
            .trim_start_matches(['-', '\u{2013}', '\u{2014}'])
            .to_ascii_lowercase();
        // -Pin (Set-CsClientPin), not -PINHistoryCount or -PinAuthType
        let pin = w == "pin" || w.starts_with("pin:");
        if w.starts_with("password") || pin || w.starts_with("secret") {
            if let Some((k, v)) = word.split_once(':') {
                out.push_str(k);
                out.push_str(":********");
                in_quote = opens_quote(v);
                continue;
            }
            redact_next = true;
        }
        out.push_str(word);
    }
    out
}

/// The closing quote a word starting a quoted string waits for, when the string goes on
/// past this word.
fn opens_quote(word: &str) -> Option<char> {
    let mut chars = word.chars();
    let q = match chars.next()? {
        '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' => '\'',
        '"' | '\u{201C}' | '\u{201D}' | '\u{201E}' => '"',
        _ => return None,
    };
    let rest = chars.as_str();
    (!closes_quote(rest, q)).then_some(q)
}

/// Whether `word` (inside a string quoted with `q`) ends that string: it ends in an odd
/// number of quotes (a doubled quote is one quote character), not escaped by a backtick.
fn closes_quote(word: &str, q: char) -> bool {
    let is_q = |c: char| match q {
        '\'' => matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}'),
        _ => matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}'),
    };
    let trailing = word.chars().rev().take_while(|c| is_q(*c)).count();
    if trailing == 0 {
        return false;
    }
    let before = word.chars().rev().nth(trailing);
    if q == '"' && before == Some('`') {
        return trailing > 1 && trailing % 2 == 0;
    }
    trailing % 2 == 1
}

fn text_arg(b: &Bound, s: &Session, name: &str) -> Result<Option<String>, ExecError> {
    let Some(e) = b.get(name).or_else(|| {
        if name == "Identity" {
            b.identity()
        } else {
            None
        }
    }) else {
        return Ok(None);
    };
    match s.literal(e)? {
        Value::String(v) => Ok(Some(v)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        other => Err(bad(
            b,
            name,
            format!("Cannot convert '{other}' to a string"),
        )),
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        match t[pos..].find(part) {
            Some(at) if i > 0 || at == 0 => pos += at + part.len(),
            _ => return false,
        }
    }
    parts.last().is_some_and(|l| l.is_empty()) || t.ends_with(parts.last().unwrap())
}

// ----- values ---------------------------------------------------------------------------

pub(crate) fn type_name(ty: &PropType) -> String {
    match ty {
        PropType::Bool | PropType::OptBool => "System.Boolean".into(),
        PropType::Int { .. } => "System.Int64".into(),
        PropType::Str { .. } => "System.String".into(),
        PropType::Enum(v) => format!("one of {}", v.join(", ")),
        PropType::StrList => "a list of strings".into(),
        PropType::ObjList { made_by, .. } => format!("a list of objects made by {made_by}"),
    }
}

/// Converts `v` to the property's type; `current` is the value being changed (for the
/// @{Add=…}/@{Remove=…}/@{Replace=…} forms of list properties).
pub(crate) fn coerce(prop: &Prop, v: &Value, current: &Value) -> Result<Value, String> {
    let wrong = || {
        format!(
            "Cannot convert value '{}' to type {}",
            crate::object::display(v),
            type_name(&prop.ty)
        )
    };
    match &prop.ty {
        PropType::Bool | PropType::OptBool => match v {
            Value::Null if prop.ty == PropType::OptBool => Ok(Value::Null),
            Value::Bool(b) => Ok(json!(b)),
            Value::String(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("$true") =>
            {
                Ok(json!(true))
            }
            Value::String(s)
                if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("$false") =>
            {
                Ok(json!(false))
            }
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Ok(json!(n.as_i64() == Some(1)))
            }
            _ => Err(wrong()),
        },
        PropType::Int { min, max } => {
            let n = match v {
                Value::Number(n) => n.as_i64().ok_or_else(wrong)?,
                Value::String(s) => s.trim().parse::<i64>().map_err(|_| wrong())?,
                _ => return Err(wrong()),
            };
            if n < *min || n > *max {
                return Err(format!(
                    "The value {n} is not in the valid range {min} to {max}"
                ));
            }
            Ok(json!(n))
        }
        PropType::Str { max_len } => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                _ => return Err(wrong()),
            };
            if s.chars().count() > *max_len {
                return Err(format!("The value is longer than {max_len} characters"));
            }
            Ok(json!(s))
        }
        PropType::Enum(values) => {
            let s = v.as_str().ok_or_else(wrong)?;
            values
                .iter()
                .find(|x| x.eq_ignore_ascii_case(s))
                .map(|x| json!(x))
                .ok_or_else(|| {
                    format!(
                        "'{s}' is not a valid value; use one of {}",
                        values.join(", ")
                    )
                })
        }
        PropType::StrList | PropType::ObjList { .. } => {
            let key = match prop.ty {
                PropType::ObjList { key, .. } => key,
                _ => "",
            };
            let item_ok = |x: &Value| -> Result<Value, String> {
                match prop.ty {
                    PropType::ObjList { key, made_by } => match x.get(key) {
                        Some(Value::String(_)) => Ok(x.clone()),
                        _ => Err(format!("{} entries are made with {made_by}", prop.name)),
                    },
                    _ => {
                        let s = x.as_str().ok_or_else(wrong)?;
                        check_list_item(prop.name, s)?;
                        Ok(json!(s))
                    }
                }
            };
            let items = |x: &Value| -> Result<Vec<Value>, String> {
                match x {
                    Value::Array(a) => a.iter().map(item_ok).collect(),
                    Value::Null => Ok(vec![]),
                    one => Ok(vec![item_ok(one)?]),
                }
            };
            let mut list: Vec<Value> = current.as_array().cloned().unwrap_or_default();
            match v {
                Value::Object(m) if key.is_empty() || !m.contains_key(key) => {
                    for (op, val) in m {
                        let vals = items(val)?;
                        match op.to_ascii_lowercase().as_str() {
                            "add" => {
                                for x in vals {
                                    match list.iter().find(|y| same_item(y, &x, key)) {
                                        None => list.push(x),
                                        // adding an entry again changes nothing
                                        Some(y) if same_fields(y, &x) => {}
                                        // but another with the same key is refused, not dropped
                                        Some(y) => {
                                            let k = |v: &Value| {
                                                v.get(key)
                                                    .map(crate::object::display)
                                                    .unwrap_or_default()
                                            };
                                            return Err(format!(
                                                "{key} '{}' is already in {} (as '{}'): add an entry once; remove it first to change it",
                                                k(&x),
                                                prop.name,
                                                k(y)
                                            ));
                                        }
                                    }
                                }
                            }
                            "remove" => list.retain(|y| !vals.iter().any(|x| same_item(y, x, key))),
                            "replace" => list = vals,
                            other => {
                                return Err(format!("'{other}' is not Add, Remove or Replace"))
                            }
                        }
                    }
                    Ok(Value::Array(list))
                }
                other => Ok(Value::Array(items(other)?)),
            }
        }
    }
}

/// Lists whose entries have a form of their own.
fn check_list_item(prop: &str, item: &str) -> Result<(), String> {
    if matches!(
        prop,
        "Usage" | "PstnUsages" | "CustomCallForwardingSimulRingUsages"
    ) && (item.trim().is_empty()
        || item.chars().count() > 256
        || item.chars().any(char::is_control))
    {
        return Err(format!(
            "'{item}' is not a PSTN usage name (1 to 256 characters)"
        ));
    }
    if prop == "TrustedAddresses"
        && item
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_err()
    {
        return Err(format!("'{item}' is not an IP address"));
    }
    if matches!(prop, "SegmentA" | "SegmentB") && confab_store::BarrierMember::parse(item).is_none()
    {
        return Err(format!(
            "'{item}' is not a user (sip:user@domain), a whole domain (*@domain) or a domain name"
        ));
    }
    Ok(())
}

/// List entries are the same when equal ignoring case (strings) or when their `key` fields are.
fn same_item(a: &Value, b: &Value, key: &str) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => {
            a.get(key)
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                == b.get(key)
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
        }
    }
}

/// Whether two list entries are equal but for the shell's type name (`_type`, which objects
/// made in memory carry and stored entries may not).
fn same_fields(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let strip = |m: &Map<String, Value>| -> Map<String, Value> {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "_type")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            strip(x) == strip(y)
        }
        _ => a == b,
    }
}

/// Expressions that can only be known when the script runs ($variables).
fn has_var(e: &Expr) -> bool {
    match e {
        Expr::Var(v) => !matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "null"),
        Expr::Array(a) => a.iter().any(has_var),
        Expr::Hash(h) => h.iter().any(|(_, v)| has_var(v)),
        Expr::Prop(i, _) => has_var(i),
        Expr::Sub(_) => true,
        _ => false,
    }
}

// ----- checks -----------------------------------------------------------------------------

fn check_identity(b: &Bound, s: &Session) -> Result<(), ExecError> {
    if let Some(e) = b.get("Identity").or_else(|| b.identity()) {
        if !has_var(e) {
            if let Some(raw) = s.literal(e)?.as_str() {
                canonical_identity(kind_of(b), raw).map_err(|m| bad(b, "Identity", m))?;
            }
        }
    }
    Ok(())
}

fn check_props(b: &Bound, s: &Session) -> Result<(), ExecError> {
    check_identity(b, s)?;
    let k = kind_of(b);
    for (name, e) in &b.named {
        let Some(prop) = k.prop(name) else { continue };
        let Some(e) = e else { continue };
        if has_var(e) {
            continue;
        }
        let v = coerce(prop, &s.literal(e)?, &prop.default).map_err(|m| bad(b, name, m))?;
        voice::check_value(b, k, prop.name, &v)?;
    }
    Ok(())
}

fn check_fixed(b: &Bound, s: &Session) -> Result<(), ExecError> {
    if voice_test::is_test(b.def.name) {
        return voice_test::check(b, s);
    }
    if forwarding::is_forwarding(b.def.name) {
        return forwarding::check(b, s);
    }
    if let Some(r) = voice::check(b, s) {
        return r;
    }
    if let Some(r) = simple_url::check(b, s) {
        return r;
    }
    match b.def.name {
        "New-CsAdminRole" => {
            if let Some(t) = b.get("Template").filter(|e| !has_var(e)) {
                let t = s.literal(t)?;
                let t = t.as_str().unwrap_or("");
                if Role::builtin(t).is_none() {
                    return Err(bad(
                        b,
                        "Template",
                        format!(
                            "'{t}' is not a built-in role; use one of {}",
                            BUILTIN_ROLES.join(", ")
                        ),
                    ));
                }
            }
            check_cmdlet_names(b, s)
        }
        "Set-CsAdminRole" => check_cmdlet_names(b, s),
        "New-CsWebTrustedCACertificate" => {
            if let Some(t) = b.get("Thumbprint").filter(|e| !has_var(e)) {
                let t = s.literal(t)?;
                let t = t.as_str().unwrap_or("");
                if t.len() != 40 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(
                        b,
                        "Thumbprint",
                        "a thumbprint is 40 hexadecimal digits",
                    ));
                }
            }
            if let Some(c) = b.get("CAStore").filter(|e| !has_var(e)) {
                let c = s.literal(c)?;
                let c = c.as_str().unwrap_or("");
                if !["TrustedRootCA", "IntermediateCA", "ThirdPartyRootCA"]
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(c))
                {
                    return Err(bad(
                        b,
                        "CAStore",
                        format!("'{c}' is not TrustedRootCA, IntermediateCA or ThirdPartyRootCA"),
                    ));
                }
            }
            Ok(())
        }
        "New-CsStaticRoute" => {
            if b.named
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("TLSRoute"))
                && b.named
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("TCPRoute"))
            {
                return Err(bad(b, "TCPRoute", "use either -TLSRoute or -TCPRoute"));
            }
            for p in ["Destination", "MatchUri"] {
                if let Some(e) = b.get(p).filter(|e| !has_var(e)) {
                    let v = s.literal(e)?;
                    let t = v.as_str().unwrap_or("");
                    let ok = !t.is_empty()
                        && t.len() <= 255
                        && t.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"-.:[]*".contains(&c));
                    if !ok {
                        return Err(bad(
                            b,
                            p,
                            format!("'{t}' is not a host name, IP address or domain"),
                        ));
                    }
                }
            }
            Ok(())
        }
        "New-CsClonedPolicy" => {
            if let Some(t) = b.get("PolicyType").filter(|e| !has_var(e)) {
                let t = s.literal(t)?;
                policy_kind(t.as_str().unwrap_or("")).ok_or_else(|| {
                    let names: Vec<&str> = all_kinds()
                        .iter()
                        .filter(|k| k.is_policy)
                        .map(|k| k.short_name())
                        .collect();
                    bad(
                        b,
                        "PolicyType",
                        format!(
                            "'{}' is not a policy type; use one of {}",
                            t.as_str().unwrap_or(""),
                            names.join(", ")
                        ),
                    )
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Cmdlet names in -Cmdlets must be ones Lync knows.
fn check_cmdlet_names(b: &Bound, s: &Session) -> Result<(), ExecError> {
    let Some(e) = b.get("Cmdlets").filter(|e| !has_var(e)) else {
        return Ok(());
    };
    let v = s.literal(e)?;
    let mut names = vec![];
    let mut collect = |x: &Value| match x {
        Value::Array(a) => names.extend(a.iter().filter_map(|i| i.as_str().map(str::to_string))),
        Value::String(one) => names.push(one.clone()),
        _ => {}
    };
    match &v {
        Value::Object(m) => m.values().for_each(&mut collect),
        other => collect(other),
    }
    for n in names {
        if canonical_cmdlet(&n).is_none() {
            let hint = crate::suggest(&n, crate::roles::LYNC_CMDLETS.iter().copied())
                .map(|h| format!("; did you mean '{h}'?"))
                .unwrap_or_default();
            return Err(bad(b, "Cmdlets", format!("'{n}' is not a cmdlet{hint}")));
        }
    }
    Ok(())
}

fn policy_kind(t: &str) -> Option<&'static Kind> {
    let t = t
        .strip_prefix("Cs")
        .or_else(|| t.strip_prefix("cs"))
        .unwrap_or(t);
    all_kinds()
        .iter()
        .find(|k| k.is_policy && k.short_name().eq_ignore_ascii_case(t))
}

// ----- configuration objects ---------------------------------------------------------------

fn record(k: &Kind, identity: &str, body: &Map<String, Value>) -> Obj {
    let mut props = vec![("Identity".to_string(), json!(identity))];
    for p in &k.props {
        props.push((
            p.name.to_string(),
            body.get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default.clone()),
        ));
    }
    Obj::record(k.noun, props)
}

fn load(
    b: &Bound,
    s: &Session,
    k: &Kind,
    identity: &str,
) -> Result<Option<Map<String, Value>>, ExecError> {
    match s
        .store
        .get_config(k.noun, identity)
        .map_err(|e| store_err(b, e))?
    {
        Some(d) => Ok(Some(d.body)),
        None if identity == "Global" => Ok(Some(k.defaults())),
        None => Ok(None),
    }
}

fn get_config(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let k = kind_of(b);
    if let Some(raw) = text_arg(b, s, "Identity")? {
        let id = canonical_identity(k, &raw).map_err(|m| bad(b, "Identity", m))?;
        return match load(b, s, k, &id)? {
            Some(body) => Ok(vec![record(k, &id, &body)]),
            None => Err(failed(
                b,
                format!(
                    "Cannot get \"{}\" \"{id}\" because it does not exist",
                    k.short_name()
                ),
            )),
        };
    }
    let mut docs: Vec<(String, Map<String, Value>)> = s
        .store
        .list_config(k.noun)
        .map_err(|e| store_err(b, e))?
        .into_iter()
        .map(|d| (d.identity, d.body))
        .collect();
    if k.scopes.contains(&ScopeKind::Global) && !docs.iter().any(|(id, _)| id == "Global") {
        docs.push(("Global".into(), k.defaults()));
    }
    docs.sort_by_key(|(id, _)| scope_rank(id));
    let filter = text_arg(b, s, "Filter")?;
    Ok(docs
        .into_iter()
        .filter(|(id, _)| filter.as_deref().is_none_or(|f| glob(f, id)))
        .map(|(id, body)| record(k, &id, &body))
        .collect())
}

/// Applies the property parameters of `b` to `body`.
fn apply(b: &Bound, s: &Session, k: &Kind, body: &mut Map<String, Value>) -> Result<(), ExecError> {
    for (name, e) in &b.named {
        let Some(prop) = k.prop(name) else { continue };
        let v = s.literal(e.expect("not a switch"))?;
        let current = body
            .get(prop.name)
            .cloned()
            .unwrap_or_else(|| prop.default.clone());
        let new = coerce(prop, &v, &current).map_err(|m| bad(b, name, m))?;
        body.insert(prop.name.to_string(), new);
    }
    // what is stored must read back in the server exactly as written
    if let Some(name) = k.def.unreadable(body).first() {
        return Err(bad(b, name, "the server could not read this value"));
    }
    Ok(())
}

/// The identities a settings cmdlet works on, each checked against the caller's scopes
/// (objects piped in are only known now).
fn targets(
    b: &Bound,
    s: &Session,
    input: Option<Vec<Obj>>,
    default_global: bool,
) -> Result<Vec<String>, ExecError> {
    let k = kind_of(b);
    let ids = if let Some(raw) = text_arg(b, s, "Identity")? {
        vec![canonical_identity(k, &raw).map_err(|m| bad(b, "Identity", m))?]
    } else if let Some(objs) = input {
        objs.iter().filter_map(Obj::identity).collect()
    } else if default_global {
        vec!["Global".into()]
    } else {
        return Err(ExecError::Missing {
            cmdlet: b.def.name.to_string(),
            param: "Identity".into(),
        });
    };
    for id in &ids {
        if !s.may_touch(b.def.name, id) {
            return Err(s.out_of_scope(b.def.name, id.clone(), "configuration"));
        }
    }
    Ok(ids)
}

fn set_config(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let k = kind_of(b);
    for id in targets(b, s, input, k.scopes.contains(&ScopeKind::Global))? {
        let mut body = load(b, s, k, &id)?
            .ok_or_else(|| failed(b, format!("Cannot find \"{}\" \"{id}\"", k.short_name())))?;
        apply(b, s, k, &mut body)?;
        if k.noun == crate::schema::ACCESS_NUMBER {
            check_access_number(b, s, &id, &mut body)?;
        }
        voice::check_document(b, s, k, &id, &mut body)?;
        simple_url::check_document(b, s, k, &id, &mut body)?;
        s.store
            .put_config(k.noun, &id, &body)
            .map_err(|e| store_err(b, e))?;
    }
    warn_unenforced(b, s, k);
    Ok(vec![])
}

/// Warns about every property parameter of `b` that confab does not enforce, and about a
/// document confab does not read at all: the command succeeds, the value is stored, and
/// the administrator learns it changes nothing.
fn warn_unenforced(b: &Bound, s: &mut Session, k: &Kind) {
    let mut named = false;
    for (name, _) in &b.named {
        let Some(prop) = k.def.prop(name) else {
            continue;
        };
        named = true;
        if let confab_policy::Enforcement::NotEnforced(why) = prop.enforcement {
            s.warn(format!(
                "{}: {} is not enforced by confab yet ({why}); the value is stored but has no effect",
                b.def.name, prop.name
            ));
        }
    }
    if !named && !k.def.is_enforced() {
        s.warn(format!(
            "{}: {} is not enforced by confab yet; none of its settings take effect",
            b.def.name, k.noun
        ));
    }
}

fn new_config(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let k = kind_of(b);
    let id = targets(b, s, None, false)?.remove(0);
    if id == "Global" {
        return Err(failed(
            b,
            format!(
                "\"{}\" \"Global\" already exists; use Set-{}",
                k.short_name(),
                k.noun
            ),
        ));
    }
    // Lync: a domain may be on only one of the allowed and blocked lists.
    let other = match k.noun {
        "CsAllowedDomain" => Some("CsBlockedDomain"),
        "CsBlockedDomain" => Some("CsAllowedDomain"),
        _ => None,
    };
    if let Some(other) = other {
        if s.store
            .get_config(other, &id)
            .map_err(|e| store_err(b, e))?
            .is_some()
        {
            return Err(failed(b, format!("Domain \"{id}\" is already on the {} list; remove it there first (Remove-{other} -Identity {id})", if other == "CsBlockedDomain" { "blocked" } else { "allowed" })));
        }
    }
    let mut body = k.defaults();
    apply(b, s, k, &mut body)?;
    if k.noun == crate::schema::ACCESS_NUMBER {
        check_access_number(b, s, &id, &mut body)?;
    }
    voice::check_document(b, s, k, &id, &mut body)?;
    simple_url::check_document(b, s, k, &id, &mut body)?;
    voice::warn_new(b, s, k, &body);
    s.store
        .create_config(k.noun, &id, &body)
        .map_err(|e| match e {
            StoreError::ConfigExists { .. } => {
                failed(b, format!("\"{}\" \"{id}\" already exists", k.short_name()))
            }
            e => store_err(b, e),
        })?;
    warn_unenforced(b, s, k);
    Ok(vec![record(k, &id, &body)])
}

fn remove_config(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let k = kind_of(b);
    for id in targets(b, s, input, false)? {
        voice::check_removal(b, s, k, &id)?;
        match s.store.remove_config(k.noun, &id) {
            Ok(()) => {}
            Err(StoreError::NoSuchConfig { .. }) if id == "Global" => {} // already at the defaults
            Err(StoreError::NoSuchConfig { .. }) => {
                return Err(failed(
                    b,
                    format!(
                        "Cannot remove \"{}\" \"{id}\" because it does not exist",
                        k.short_name()
                    ),
                ))
            }
            Err(e) => return Err(store_err(b, e)),
        }
    }
    Ok(vec![])
}

const ASSIGNMENTS: &str = "CsUserPolicyAssignment";

/// Cmdlets whose -Identity names a user: checked against the caller's user scopes
/// (`OU:<dn>`), not their configuration scopes.
pub(crate) fn targets_user(def: &Cmdlet) -> bool {
    matches!(
        def.name,
        "Get-CsUser"
            | "Set-CsUser"
            | "New-CsUser"
            | "Remove-CsUser"
            | "Enable-CsUser"
            | "Disable-CsUser"
            | "Set-CsUserPassword"
            | "Set-CsClientPin"
            | "Get-CsClientPinInfo"
            | "Lock-CsClientPin"
            | "Unlock-CsClientPin"
            | "Get-CsUserCallForwarding"
            | "Set-CsUserCallForwarding"
            | "Get-CsUserPoolInfo"
            | "Get-CsUserRegistration"
            | "Get-CsUserSession"
    ) || def.name.starts_with("Grant-")
}

/// Before anything in a script runs: a user named literally by -Identity must be within
/// the caller's user scopes, so a script refused for one user changes no other. (A user
/// named through a variable or piped in is checked when the command runs, before it
/// changes anything.)
pub(crate) fn precheck_user_scope(b: &Bound, s: &Session) -> Result<(), ExecError> {
    if b.def.name.ends_with("-CsMeeting") {
        return precheck_meeting_scope(b, s);
    }
    if !targets_user(b.def) {
        return Ok(());
    }
    let Some(e) = b.identity().filter(|e| !has_var(e)) else {
        return Ok(());
    };
    let Some(raw) = s.literal(e)?.as_str().map(str::to_string) else {
        return Ok(());
    };
    match lookup_user(b, s, &raw) {
        Ok(user) => check_user_scope(b, s, &user),
        Err(_) => Ok(()), // an unknown user is reported when the command runs
    }
}

/// The user an Identity names, checked against the caller's user scopes: a user outside
/// them is refused (whatever the cmdlet would do).
fn find_user(b: &Bound, s: &Session, raw: &str) -> Result<confab_store::User, ExecError> {
    let user = lookup_user(b, s, raw)?;
    check_user_scope(b, s, &user)?;
    Ok(user)
}

/// Refuses `user` when it is outside the user scopes of every role allowing the cmdlet.
fn check_user_scope(b: &Bound, s: &Session, user: &confab_store::User) -> Result<(), ExecError> {
    if s.may_touch_user(b.def.name, user.ou.as_deref()) {
        return Ok(());
    }
    let what = match &user.ou {
        Some(ou) => format!("sip:{} ({ou})", user.address()),
        None => format!("sip:{} (in no OU)", user.address()),
    };
    Err(s.out_of_scope(b.def.name, what, "user"))
}

fn lookup_user(b: &Bound, s: &Session, raw: &str) -> Result<confab_store::User, ExecError> {
    let a = raw.trim();
    let a = a
        .strip_prefix("sip:")
        .or_else(|| a.strip_prefix("SIP:"))
        .unwrap_or(a);
    let (u, d) = match a.split_once('@') {
        Some((u, d)) => (u.to_string(), d.to_string()),
        None => (a.to_string(), s.pool.clone()),
    };
    match s.store.get_user(&u, &d).map_err(|e| store_err(b, e))? {
        Some(user) => Ok(user),
        None => Err(failed(
            b,
            format!("Management object not found for identity \"{raw}\""),
        )),
    }
}

fn grant_policy(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let k = kind_of(b);
    let raw = text_arg(b, s, "Identity")?.ok_or_else(|| ExecError::Missing {
        cmdlet: b.def.name.into(),
        param: "Identity".into(),
    })?;
    let user = find_user(b, s, &raw)?;
    let (u, d) = (user.username, user.domain);
    let policy = text_arg(b, s, "PolicyName")?;
    let key = format!("{u}@{d}");
    let mut body = s
        .store
        .get_config(ASSIGNMENTS, &key)
        .map_err(|e| store_err(b, e))?
        .map(|d| d.body)
        .unwrap_or_default();
    match policy {
        None => {
            body.remove(k.short_name());
        }
        Some(p) => {
            let id = canonical_identity(k, &p).map_err(|m| bad(b, "PolicyName", m))?;
            if !id.starts_with("Tag:") {
                return Err(bad(
                    b,
                    "PolicyName",
                    "only per-user policies can be granted",
                ));
            }
            if s.store
                .get_config(k.noun, &id)
                .map_err(|e| store_err(b, e))?
                .is_none()
            {
                return Err(failed(
                    b,
                    format!("Cannot find \"{}\" \"{}\"", k.short_name(), &id[4..]),
                ));
            }
            body.insert(k.short_name().to_string(), json!(id[4..]));
            warn_unenforced(b, s, k);
        }
    }
    s.store
        .put_config(ASSIGNMENTS, &key, &body)
        .map_err(|e| store_err(b, e))?;
    Ok(vec![])
}

fn cloned_policy(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let t = text_arg(b, s, "PolicyType")?.unwrap_or_default();
    let k = policy_kind(&t)
        .ok_or_else(|| bad(b, "PolicyType", format!("'{t}' is not a policy type")))?;
    let src_raw = text_arg(b, s, "SourcePolicyName")?.unwrap_or_default();
    let src = canonical_identity(k, &src_raw).map_err(|m| bad(b, "SourcePolicyName", m))?;
    let dst_raw = text_arg(b, s, "TargetPolicyName")?.unwrap_or_default();
    let dst = canonical_identity(k, &dst_raw).map_err(|m| bad(b, "TargetPolicyName", m))?;
    if !dst.starts_with("Tag:") {
        return Err(bad(
            b,
            "TargetPolicyName",
            "the copy is a per-user policy: give it a name",
        ));
    }
    let body = load(b, s, k, &src)?.ok_or_else(|| {
        failed(
            b,
            format!("Cannot find \"{}\" \"{src_raw}\"", k.short_name()),
        )
    })?;
    s.store
        .create_config(k.noun, &dst, &body)
        .map_err(|e| match e {
            StoreError::ConfigExists { .. } => failed(
                b,
                format!("\"{}\" \"{dst}\" already exists", k.short_name()),
            ),
            e => store_err(b, e),
        })?;
    Ok(vec![record(k, &dst, &body)])
}

fn web_cert(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let t = text_arg(b, s, "Thumbprint")?
        .unwrap_or_default()
        .to_ascii_uppercase();
    let store_name = text_arg(b, s, "CAStore")?.unwrap_or_default();
    let store_name = ["TrustedRootCA", "IntermediateCA", "ThirdPartyRootCA"]
        .iter()
        .find(|x| x.eq_ignore_ascii_case(&store_name))
        .copied()
        .unwrap_or("TrustedRootCA");
    Ok(vec![Obj::record(
        "TrustedCACertificate",
        vec![
            ("Thumbprint".into(), json!(t)),
            ("CAStore".into(), json!(store_name)),
        ],
    )])
}

fn static_route(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let transport = if b
        .named
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("TCPRoute"))
    {
        "TCP"
    } else {
        "TLS"
    };
    let dest = text_arg(b, s, "Destination")?.unwrap_or_default();
    let match_uri = text_arg(b, s, "MatchUri")?
        .unwrap_or_default()
        .to_ascii_lowercase();
    let port = match b.get("Port") {
        Some(e) => coerce(
            &crate::schema::Prop {
                name: "Port",
                ty: PropType::Int { min: 1, max: 65535 },
                default: json!(5061),
            },
            &s.literal(e)?,
            &json!(5061),
        )
        .map_err(|m| bad(b, "Port", m))?,
        None => json!(if transport == "TLS" { 5061 } else { 5060 }),
    };
    let flag = |name: &str, default: bool| -> Result<bool, ExecError> {
        match b.get(name) {
            Some(e) => Ok(coerce(
                &crate::schema::Prop {
                    name: "x",
                    ty: PropType::Bool,
                    default: json!(default),
                },
                &s.literal(e)?,
                &json!(default),
            )
            .map_err(|m| bad(b, name, m))?
            .as_bool()
            .unwrap_or(default)),
            None => Ok(default),
        }
    };
    Ok(vec![Obj::record(
        "StaticRoute",
        vec![
            ("Transport".into(), json!(transport)),
            ("Destination".into(), json!(dest)),
            ("Port".into(), port),
            ("MatchUri".into(), json!(match_uri)),
            (
                "UseDefaultCertificate".into(),
                json!(flag("UseDefaultCertificate", true)?),
            ),
            (
                "TLSCertIssuer".into(),
                json!(text_arg(b, s, "TLSCertIssuer")?.unwrap_or_default()),
            ),
            (
                "TLSCertSerialNumber".into(),
                json!(text_arg(b, s, "TLSCertSerialNumber")?.unwrap_or_default()),
            ),
            ("Enabled".into(), json!(flag("Enabled", true)?)),
        ],
    )])
}

// ----- users ----------------------------------------------------------------------------------

fn user_obj(s: &Session, u: &confab_store::User) -> Obj {
    let assigned = s
        .store
        .get_config(ASSIGNMENTS, &format!("{}@{}", u.username, u.domain))
        .ok()
        .flatten()
        .map(|d| d.body)
        .unwrap_or_default();
    let mut props = vec![
        (
            "Identity".to_string(),
            json!(format!("sip:{}@{}", u.username, u.domain)),
        ),
        (
            "SipAddress".to_string(),
            json!(format!("sip:{}@{}", u.username, u.domain)),
        ),
        ("DisplayName".to_string(), json!(u.display_name)),
        ("Enabled".to_string(), json!(u.enabled)),
        // as in Active Directory: the user's entry, CN=<name>,<its OU>
        (
            "DistinguishedName".to_string(),
            match &u.ou {
                Some(ou) => {
                    let cn = if u.display_name.is_empty() {
                        &u.username
                    } else {
                        &u.display_name
                    };
                    json!(format!("CN={},{ou}", dn_escape(cn)))
                }
                None => Value::Null,
            },
        ),
        ("OrganizationalUnit".to_string(), json!(u.ou)),
        ("LineURI".to_string(), json!(u.line_uri)),
        (
            "EnterpriseVoiceEnabled".to_string(),
            json!(u.enterprise_voice_enabled),
        ),
        ("HostedVoiceMail".to_string(), json!(u.hosted_voicemail)),
    ];
    for k in all_kinds().iter().filter(|k| k.is_policy) {
        props.push((
            k.short_name().to_string(),
            assigned.get(k.short_name()).cloned().unwrap_or(Value::Null),
        ));
    }
    Obj::record("CsUser", props)
}

/// An RDN value with the characters RFC 4514 reserves escaped.
fn dn_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, '#' | ' '))
        {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.insert(out.len() - 1, '\\');
    }
    out
}

/// Lists the users within the caller's user scopes (all of them for a Global scope), or
/// the one -Identity names (refused when outside those scopes).
fn get_user(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    if let Some(raw) = text_arg(b, s, "Identity")? {
        let user = find_user(b, s, &raw)?;
        return Ok(vec![user_obj(s, &user)]);
    }
    let filter = text_arg(b, s, "Filter")?;
    let users = s.store.list_users(None).map_err(|e| store_err(b, e))?;
    Ok(users
        .iter()
        .filter(|u| s.may_touch_user(b.def.name, u.ou.as_deref()))
        .filter(|u| {
            filter
                .as_deref()
                .is_none_or(|f| glob(f, &format!("sip:{}@{}", u.username, u.domain)))
        })
        .map(|u| user_obj(s, u))
        .collect())
}

fn user_targets(
    b: &Bound,
    s: &Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<(String, String)>, ExecError> {
    // every target is found and checked before the first change
    let found = if let Some(raw) = text_arg(b, s, "Identity")? {
        vec![find_user(b, s, &raw)?]
    } else {
        let ids: Vec<String> = input
            .unwrap_or_default()
            .iter()
            .filter_map(Obj::identity)
            .collect();
        ids.iter()
            .map(|i| find_user(b, s, i))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(found.into_iter().map(|u| (u.username, u.domain)).collect())
}

fn set_user(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    // values and targets are all checked before the first user changes
    let enabled = match b.get("Enabled") {
        Some(e) => Some(
            coerce(
                &Prop {
                    name: "Enabled",
                    ty: PropType::Bool,
                    default: json!(true),
                },
                &s.literal(e)?,
                &Value::Null,
            )
            .map_err(|m| bad(b, "Enabled", m))?
                == json!(true),
        ),
        None => None,
    };
    let voice = bool_arg(b, s, "EnterpriseVoiceEnabled")?;
    let voicemail = bool_arg(b, s, "HostedVoiceMail")?;
    let name = text_arg(b, s, "DisplayName")?;
    if let Some(n) = &name {
        confab_store::validate_display_name(n).map_err(|e| bad(b, "DisplayName", e.to_string()))?;
    }
    // -LineURI "tel:+14255550100;ext=100"; $null or "" takes the number away
    let line_uri: Option<Option<String>> = if b.has("LineURI") {
        match text_arg(b, s, "LineURI")?.filter(|v| !v.trim().is_empty()) {
            None => Some(None),
            Some(v) => Some(Some(
                confab_store::normalize_line_uri(&v)
                    .map_err(|e| bad(b, "LineURI", store_message(e)))?,
            )),
        }
    } else {
        None
    };
    let targets = user_targets(b, s, input)?;
    if matches!(line_uri, Some(Some(_))) && targets.len() > 1 {
        return Err(bad(
            b,
            "LineURI",
            "a LineURI belongs to one user; set it on one user at a time",
        ));
    }
    for (u, d) in targets {
        if let Some(l) = &line_uri {
            s.store
                .set_line_uri(&u, &d, l.as_deref())
                .map_err(|e| failed(b, store_message(e)))?;
        }
        if let Some(v) = voice {
            s.store
                .set_enterprise_voice(&u, &d, v)
                .map_err(|e| store_err(b, e))?;
        }
        if let Some(v) = voicemail {
            s.store
                .set_hosted_voicemail(&u, &d, v)
                .map_err(|e| store_err(b, e))?;
        }
        if let Some(v) = enabled {
            s.store
                .set_enabled(&u, &d, v)
                .map_err(|e| store_err(b, e))?;
        }
        if let Some(name) = &name {
            s.store
                .set_display_name(&u, &d, name)
                .map_err(|e| store_err(b, e))?;
        }
    }
    Ok(vec![])
}

/// `New-CsUser`: the user must fall within the user scopes of a role allowing the cmdlet
/// (their -OU, or no OU).
fn new_user(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let raw = text_arg(b, s, "Identity")?.ok_or_else(|| failed(b, "-Identity is needed"))?;
    let a = raw.trim();
    let a = schema_strip_sip(a);
    let Some((u, d)) = a.split_once('@') else {
        return Err(bad(
            b,
            "Identity",
            format!("'{raw}' is not a SIP address such as sip:alice@example.test"),
        ));
    };
    let password = text_arg(b, s, "Password")?.ok_or_else(|| failed(b, "-Password is needed"))?;
    let display = text_arg(b, s, "DisplayName")?.unwrap_or_default();
    let ou = text_arg(b, s, "OU")?.filter(|o| !o.trim().is_empty());
    // bad values are named by their parameter
    confab_store::validate_password(&password).map_err(|e| bad(b, "Password", store_message(e)))?;
    confab_store::validate_display_name(&display)
        .map_err(|e| bad(b, "DisplayName", store_message(e)))?;
    if let Some(o) = &ou {
        confab_store::normalize_ou(o).map_err(|e| bad(b, "OU", store_message(e)))?;
    }
    if !s.may_touch_user(b.def.name, ou.as_deref()) {
        let what = match &ou {
            Some(ou) => format!("sip:{u}@{d} ({ou})"),
            None => format!("sip:{u}@{d} (in no OU)"),
        };
        return Err(s.out_of_scope(b.def.name, what, "user"));
    }
    let user = s
        .store
        .add_user_in_ou(
            &confab_store::NewUser {
                username: u,
                domain: d,
                display_name: &display,
                password: &password,
            },
            ou.as_deref(),
        )
        .map_err(|e| store_err(b, e))?;
    Ok(vec![user_obj(s, &user)])
}

fn schema_strip_sip(a: &str) -> &str {
    crate::schema::strip_ci(a, "sip:").unwrap_or(a)
}

/// `Remove-CsUser`: the user (checked against the caller's user scopes) and their data.
fn remove_user(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    for (u, d) in user_targets(b, s, input)? {
        s.store.remove_user(&u, &d).map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}

fn disable_user(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    for (u, d) in user_targets(b, s, input)? {
        s.store
            .set_enabled(&u, &d, false)
            .map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}

// ----- admin roles ------------------------------------------------------------------------------

fn role_obj(r: &Role) -> Obj {
    Obj::record(
        "CsAdminRole",
        vec![
            ("Identity".into(), json!(r.identity)),
            ("SID".into(), json!("")),
            ("Cmdlets".into(), json!(r.cmdlets)),
            ("ScriptModules".into(), json!([])),
            ("ConfigScopes".into(), json!(r.config_scopes)),
            ("UserScopes".into(), json!(r.user_scopes)),
            ("IsStandardRole".into(), json!(r.is_standard)),
        ],
    )
}

fn row_to_role(r: AdminRoleRow) -> Role {
    Role {
        identity: r.identity,
        template: Some(r.template),
        cmdlets: r.cmdlets,
        config_scopes: r.config_scopes,
        user_scopes: r.user_scopes,
        is_standard: false,
    }
}

/// Every role: the built-in ones, then the custom ones from the store.
pub fn all_roles(s: &Session) -> Result<Vec<Role>, StoreError> {
    let mut v: Vec<Role> = BUILTIN_ROLES
        .iter()
        .filter_map(|r| Role::builtin(r))
        .collect();
    v.extend(s.store.list_roles()?.into_iter().map(row_to_role));
    Ok(v)
}

fn get_role(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let roles = all_roles(s).map_err(|e| store_err(b, e))?;
    if let Some(id) = text_arg(b, s, "Identity")? {
        return match roles.iter().find(|r| r.identity.eq_ignore_ascii_case(&id)) {
            Some(r) => Ok(vec![role_obj(r)]),
            None => Err(failed(b, format!("Cannot find role \"{id}\""))),
        };
    }
    let filter = text_arg(b, s, "Filter")?;
    Ok(roles
        .iter()
        .filter(|r| filter.as_deref().is_none_or(|f| glob(f, &r.identity)))
        .map(role_obj)
        .collect())
}

/// Applies a -Cmdlets value (list, or @{Add/Remove/Replace}) to `list`, canonicalising names.
/// A role cloned from another template than CsAdministrator cannot be given the
/// administrator-only cmdlets (they would not run for it anyway).
fn edit_cmdlets(
    b: &Bound,
    s: &Session,
    template: &str,
    list: &mut Vec<String>,
) -> Result<(), ExecError> {
    let Some(e) = b.get("Cmdlets") else {
        return Ok(());
    };
    let prop = Prop {
        name: "Cmdlets",
        ty: PropType::StrList,
        default: json!([]),
    };
    let current = json!(list);
    let new = coerce(&prop, &s.literal(e)?, &current).map_err(|m| bad(b, "Cmdlets", m))?;
    let mut out = vec![];
    for v in new.as_array().into_iter().flatten() {
        let n = v.as_str().unwrap_or("");
        let c = canonical_cmdlet(n)
            .ok_or_else(|| bad(b, "Cmdlets", format!("'{n}' is not a cmdlet")))?;
        if crate::roles::administrator_only(c)
            && !template.eq_ignore_ascii_case("CsAdministrator")
            && !list.iter().any(|x| x.eq_ignore_ascii_case(c))
        {
            return Err(bad(
                b,
                "Cmdlets",
                format!("{c} is reserved to CsAdministrator and roles cloned from it (-Template CsAdministrator)"),
            ));
        }
        if !out.iter().any(|x: &String| x.eq_ignore_ascii_case(c)) {
            out.push(c.to_string());
        }
    }
    *list = out;
    Ok(())
}

fn scopes_arg(
    b: &Bound,
    s: &Session,
    name: &str,
    current: &[String],
) -> Result<Vec<String>, ExecError> {
    let Some(e) = b.get(name) else {
        return Ok(current.to_vec());
    };
    let prop = Prop {
        name: "Scopes",
        ty: PropType::StrList,
        default: json!([]),
    };
    let v = coerce(&prop, &s.literal(e)?, &json!(current)).map_err(|m| bad(b, name, m))?;
    let mut out = vec![];
    for x in v.as_array().into_iter().flatten() {
        let x = x.as_str().unwrap_or("");
        let canon = if x.eq_ignore_ascii_case("global") {
            "Global".to_string()
        } else if let Some(site) = crate::schema::strip_ci(x, "site:").filter(|s| !s.is_empty()) {
            format!("Site:{site}")
        } else if let Some(ou) = crate::schema::strip_ci(x, "ou:") {
            let ou = confab_store::normalize_ou(ou).map_err(|e| {
                bad(
                    b,
                    name,
                    format!("'{x}': {e}; write OU:<dn>, e.g. OU:OU=Sales,DC=example,DC=test"),
                )
            })?;
            format!("OU:{ou}")
        } else {
            return Err(bad(
                b,
                name,
                format!("'{x}' is not Global, Site:<name> or OU:<dn>"),
            ));
        };
        out.push(canon);
    }
    if out.is_empty() {
        return Err(bad(
            b,
            name,
            "a role needs at least one scope; use @{Replace=\"Global\"}",
        ));
    }
    Ok(out)
}

fn new_role(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let id = text_arg(b, s, "Identity")?.unwrap_or_default();
    let template = text_arg(b, s, "Template")?.unwrap_or_default();
    let t = Role::builtin(&template).ok_or_else(|| {
        bad(
            b,
            "Template",
            format!("'{template}' is not a built-in role"),
        )
    })?;
    if Role::builtin(&id).is_some() {
        return Err(failed(b, format!("\"{id}\" is a standard role")));
    }
    if id.is_empty()
        || id.len() > 64
        || !id.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad(
            b,
            "Identity",
            format!("'{id}' is not a valid role name"),
        ));
    }
    let mut cmdlets = t.cmdlets.clone();
    edit_cmdlets(b, s, &t.identity, &mut cmdlets)?;
    let row = AdminRoleRow {
        identity: id.clone(),
        template: t.identity.clone(),
        cmdlets,
        config_scopes: scopes_arg(b, s, "ConfigScopes", &["Global".into()])?,
        user_scopes: scopes_arg(b, s, "UserScopes", &["Global".into()])?,
    };
    s.store.create_role(&row).map_err(|e| match e {
        StoreError::RoleExists(_) => failed(b, format!("A role named \"{id}\" already exists")),
        e => store_err(b, e),
    })?;
    Ok(vec![role_obj(&row_to_role(row))])
}

fn set_role(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let ids: Vec<String> = match text_arg(b, s, "Identity")? {
        Some(id) => vec![id],
        None => input
            .unwrap_or_default()
            .iter()
            .filter_map(Obj::identity)
            .collect(),
    };
    for id in ids {
        if Role::builtin(&id).is_some() {
            return Err(failed(b, format!("\"{id}\" is a standard role: its cmdlets cannot be changed; clone it with New-CsAdminRole -Template")));
        }
        let mut row = s
            .store
            .get_role(&id)
            .map_err(|e| store_err(b, e))?
            .ok_or_else(|| failed(b, format!("Cannot find role \"{id}\"")))?;
        let template = row.template.clone();
        edit_cmdlets(b, s, &template, &mut row.cmdlets)?;
        row.config_scopes = scopes_arg(b, s, "ConfigScopes", &row.config_scopes)?;
        row.user_scopes = scopes_arg(b, s, "UserScopes", &row.user_scopes)?;
        s.store.update_role(&row).map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}

fn remove_role(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let ids: Vec<String> = match text_arg(b, s, "Identity")? {
        Some(id) => vec![id],
        None => input
            .unwrap_or_default()
            .iter()
            .filter_map(Obj::identity)
            .collect(),
    };
    for id in ids {
        if Role::builtin(&id).is_some() {
            return Err(failed(
                b,
                format!("\"{id}\" is a standard role and cannot be removed"),
            ));
        }
        s.store.remove_role(&id).map_err(|e| match e {
            StoreError::NoSuchRole(_) => failed(b, format!("Cannot find role \"{id}\"")),
            e => store_err(b, e),
        })?;
    }
    Ok(vec![])
}

// ----- server applications ------------------------------------------------------------------------

const APPS: &str = "CsServerApplication";

fn app_obj(identity: &str, body: &Map<String, Value>) -> Obj {
    let mut props = vec![("Identity".to_string(), json!(identity))];
    let name = identity.rsplit_once('/').map(|x| x.1).unwrap_or(identity);
    props.push(("Name".into(), json!(name)));
    for p in crate::schema::server_application_props() {
        props.push((
            p.name.to_string(),
            body.get(p.name).cloned().unwrap_or(p.default),
        ));
    }
    Obj::record(APPS, props)
}

fn app_identity(b: &Bound, s: &Session) -> Result<String, ExecError> {
    let raw = text_arg(b, s, "Identity")?.unwrap_or_default();
    let (scope, name) = raw
        .rsplit_once('/')
        .ok_or_else(|| bad(b, "Identity", "use Service:Registrar:<pool FQDN>/<Name>"))?;
    let fqdn = crate::schema::strip_ci(scope, "service:registrar:")
        .ok_or_else(|| bad(b, "Identity", "use Service:Registrar:<pool FQDN>/<Name>"))?;
    if name.is_empty() || fqdn.is_empty() {
        return Err(bad(
            b,
            "Identity",
            "use Service:Registrar:<pool FQDN>/<Name>",
        ));
    }
    let id = format!("Service:Registrar:{fqdn}/{name}");
    if !s.may_touch(b.def.name, &id) {
        return Err(s.out_of_scope(b.def.name, id, "configuration"));
    }
    Ok(id)
}

fn get_app(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let mut apps: Vec<Obj> = crate::schema::BUILTIN_APPLICATIONS
        .iter()
        .map(|(name, uri, prio)| {
            let mut m = Map::new();
            m.insert("Uri".into(), json!(uri));
            m.insert("Enabled".into(), json!(true));
            m.insert("Critical".into(), json!(true));
            m.insert("Priority".into(), json!(prio));
            app_obj(&format!("Service:Registrar:{}/{name}", s.pool), &m)
        })
        .collect();
    for d in s.store.list_config(APPS).map_err(|e| store_err(b, e))? {
        apps.push(app_obj(&d.identity, &d.body));
    }
    let want = text_arg(b, s, "Identity")?.or(text_arg(b, s, "Filter")?);
    Ok(apps
        .into_iter()
        .filter(|a| {
            want.as_deref()
                .is_none_or(|w| glob(w, &a.identity().unwrap_or_default()))
        })
        .collect())
}

fn apply_app(b: &Bound, s: &Session, body: &mut Map<String, Value>) -> Result<(), ExecError> {
    for p in crate::schema::server_application_props() {
        if let Some(e) = b.get(p.name) {
            let cur = body
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default.clone());
            let v = coerce(&p, &s.literal(e)?, &cur).map_err(|m| bad(b, p.name, m))?;
            body.insert(p.name.to_string(), v);
        }
    }
    Ok(())
}

fn new_app(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let id = app_identity(b, s)?;
    let mut body: Map<String, Value> = crate::schema::server_application_props()
        .into_iter()
        .map(|p| (p.name.to_string(), p.default))
        .collect();
    apply_app(b, s, &mut body)?;
    s.store
        .create_config(APPS, &id, &body)
        .map_err(|e| match e {
            StoreError::ConfigExists { .. } => {
                failed(b, format!("Server application \"{id}\" already exists"))
            }
            e => store_err(b, e),
        })?;
    Ok(vec![app_obj(&id, &body)])
}

fn set_app(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let id = app_identity(b, s)?;
    let mut body = s
        .store
        .get_config(APPS, &id)
        .map_err(|e| store_err(b, e))?
        .map(|d| d.body)
        .ok_or_else(|| failed(b, format!("Cannot find server application \"{id}\"")))?;
    apply_app(b, s, &mut body)?;
    s.store
        .put_config(APPS, &id, &body)
        .map_err(|e| store_err(b, e))?;
    Ok(vec![])
}

fn remove_app(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let id = app_identity(b, s)?;
    s.store.remove_config(APPS, &id).map_err(|e| match e {
        StoreError::NoSuchConfig { .. } => {
            failed(b, format!("Cannot find server application \"{id}\""))
        }
        e => store_err(b, e),
    })?;
    Ok(vec![])
}

// ----- meetings ---------------------------------------------------------------------------------

/// Whether switch `name` is on (`-Private`, `-Private:$true`).
pub(crate) fn switch_on(b: &Bound, name: &str) -> bool {
    b.named
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .is_some_and(|(_, v)| !matches!(v, Some(Expr::Bool(false))))
}

/// A parameter naming one of an enum's values, parsed case-insensitively; the error names
/// the accepted values.
fn enum_arg<T: std::str::FromStr<Err = StoreError>>(
    b: &Bound,
    s: &Session,
    name: &str,
) -> Result<Option<T>, ExecError> {
    match text_arg(b, s, name)? {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|e| bad(b, name, store_message(e))),
    }
}

/// A store error's message without the "invalid input: " prefix.
fn store_message(e: StoreError) -> String {
    match e {
        StoreError::Invalid(m) => m,
        e => e.to_string(),
    }
}

fn bool_arg(b: &Bound, s: &Session, name: &'static str) -> Result<Option<bool>, ExecError> {
    let Some(e) = b.get(name) else {
        return Ok(None);
    };
    let prop = Prop {
        name,
        ty: PropType::Bool,
        default: json!(false),
    };
    let v = coerce(&prop, &s.literal(e)?, &Value::Null).map_err(|m| bad(b, name, m))?;
    Ok(Some(v == json!(true)))
}

/// The meeting a key names, with its organizer checked against the caller's user scopes.
fn find_meeting(b: &Bound, s: &Session, raw: &str) -> Result<confab_store::Meeting, ExecError> {
    let m = s
        .store
        .meeting_by_key(raw)
        .map_err(|e| store_err(b, e))?
        .ok_or_else(|| {
            failed(
                b,
                format!("Management object not found for identity \"{raw}\""),
            )
        })?;
    check_organizer_scope(b, s, &m.organizer)?;
    Ok(m)
}

/// Refuses a meeting whose organizer is outside the caller's user scopes.
fn check_organizer_scope(b: &Bound, s: &Session, organizer: &str) -> Result<(), ExecError> {
    let user = lookup_user(b, s, organizer)?;
    check_user_scope(b, s, &user)
}

/// New-CsMeeting, Get-CsMeeting -Organizer, Remove-CsMeeting -Identity: the organizer
/// named literally, checked before anything in the script runs (see precheck_user_scope).
fn precheck_meeting_scope(b: &Bound, s: &Session) -> Result<(), ExecError> {
    let literal = |e: Option<&Expr>| -> Result<Option<String>, ExecError> {
        match e.filter(|e| !has_var(e)) {
            Some(e) => Ok(s.literal(e)?.as_str().map(str::to_string)),
            None => Ok(None),
        }
    };
    let organizer = match b.def.name {
        "New-CsMeeting" | "Get-CsMeeting" => literal(b.get("Organizer"))?,
        _ => None,
    };
    if let Some(o) = organizer {
        if let Ok(user) = lookup_user(b, s, &o) {
            check_user_scope(b, s, &user)?;
        }
    }
    if matches!(b.def.name, "Get-CsMeeting" | "Remove-CsMeeting") {
        if let Some(key) = literal(b.identity())? {
            if let Ok(Some(m)) = s.store.meeting_by_key(&key) {
                check_organizer_scope(b, s, &m.organizer)?;
            }
        }
    }
    Ok(())
}

fn new_meeting(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let raw = text_arg(b, s, "Organizer")?.ok_or_else(|| ExecError::Missing {
        cmdlet: b.def.name.into(),
        param: "Organizer".into(),
    })?;
    let user = find_user(b, s, &raw)?;
    let kind = match (switch_on(b, "Private"), switch_on(b, "Assigned")) {
        (true, true) => return Err(bad(b, "Assigned", "use either -Private or -Assigned")),
        (true, false) => Some(confab_store::MeetingKind::Private),
        (false, true) => Some(confab_store::MeetingKind::Assigned),
        (false, false) => None,
    };
    let invitees = match b.get("Invitees") {
        None => vec![],
        Some(e) => match s.literal(e)? {
            Value::Null => vec![],
            Value::String(v) => vec![v],
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(b, "Invitees", "a list of sip:user@domain addresses"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad(b, "Invitees", "a list of sip:user@domain addresses")),
        },
    };
    let end_at = text_arg(b, s, "EndTime")?
        .map(|t| crate::meetings::parse_rfc3339(&t).map_err(|m| bad(b, "EndTime", m)))
        .transpose()?;
    let req = crate::meetings::MeetingRequest {
        organizer: user.address(),
        kind,
        access: enum_arg(b, s, "Access")?,
        subject: text_arg(b, s, "Subject")?,
        presenters: enum_arg(b, s, "Presenters")?,
        pstn_bypass_lobby: bool_arg(b, s, "PstnBypassLobby")?,
        invitees,
        end_at,
        site: text_arg(b, s, "Site")?,
    };
    let created =
        crate::meetings::create_meeting(s.store, &req).map_err(|e| failed(b, store_message(e)))?;
    for w in created.warnings {
        s.warn(w);
    }
    let numbers = crate::meetings::dial_in_numbers_at(
        s.store,
        &created.meeting.organizer,
        req.site.as_deref(),
    )
    .map_err(|e| store_err(b, e))?;
    Ok(vec![crate::meetings::meeting_obj_with_numbers(
        &created.meeting,
        &numbers,
    )])
}

fn get_meeting(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    if let Some(raw) = text_arg(b, s, "Identity")? {
        let m = find_meeting(b, s, &raw)?;
        if let Some(o) = text_arg(b, s, "Organizer")? {
            let u = lookup_user(b, s, &o)?;
            if !u.address().eq_ignore_ascii_case(&m.organizer) {
                return Ok(vec![]);
            }
        }
        let numbers =
            crate::meetings::dial_in_numbers(s.store, &m.organizer).map_err(|e| store_err(b, e))?;
        return Ok(vec![crate::meetings::meeting_obj_with_numbers(
            &m, &numbers,
        )]);
    }
    let meetings = match text_arg(b, s, "Organizer")? {
        Some(o) => {
            let u = find_user(b, s, &o)?;
            s.store.meetings(Some(&u.address()))
        }
        None => s.store.meetings(None),
    }
    .map_err(|e| store_err(b, e))?;
    // organizers outside the caller's user scopes are left out
    let users = s.store.list_users(None).map_err(|e| store_err(b, e))?;
    let in_scope = |organizer: &str| {
        users
            .iter()
            .find(|u| u.address().eq_ignore_ascii_case(organizer))
            .is_some_and(|u| s.may_touch_user(b.def.name, u.ou.as_deref()))
    };
    // one lookup of the dial-in numbers per organizer
    let mut numbers: std::collections::HashMap<String, Vec<crate::meetings::AccessNumber>> =
        Default::default();
    let mut out = vec![];
    for m in meetings.iter().filter(|m| in_scope(&m.organizer)) {
        if !numbers.contains_key(&m.organizer) {
            let n = crate::meetings::dial_in_numbers(s.store, &m.organizer)
                .map_err(|e| store_err(b, e))?;
            numbers.insert(m.organizer.clone(), n);
        }
        out.push(crate::meetings::meeting_obj_with_numbers(
            m,
            &numbers[&m.organizer],
        ));
    }
    Ok(out)
}

fn remove_meeting(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    // every meeting is found and checked before the first is removed
    let keys: Vec<String> = match text_arg(b, s, "Identity")? {
        Some(k) => vec![k],
        None => input
            .unwrap_or_default()
            .iter()
            .filter_map(Obj::identity)
            .collect(),
    };
    let found = keys
        .iter()
        .map(|k| find_meeting(b, s, k))
        .collect::<Result<Vec<_>, _>>()?;
    for m in found {
        s.store
            .remove_meeting(&m.organizer, &m.key)
            .map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}

// ----- dial-in PINs and access numbers -----------------------------------------------------

/// The users a PIN cmdlet works on (-Identity, or the users piped in), each found and
/// checked against the caller's user scopes before anything changes.
fn pin_targets(
    b: &Bound,
    s: &Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<confab_store::User>, ExecError> {
    if let Some(raw) = text_arg(b, s, "Identity")? {
        return Ok(vec![find_user(b, s, &raw)?]);
    }
    input
        .unwrap_or_default()
        .iter()
        .filter_map(Obj::identity)
        .map(|i| find_user(b, s, &i))
        .collect()
}

fn set_client_pin(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let pin = match b.get("Pin") {
        None => None,
        Some(e) => match s.literal(e)? {
            Value::String(p) => Some(p),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => {
                return Err(bad(
                    b,
                    "Pin",
                    "a PIN is digits only; write a long one in quotes (\"0123456789\")",
                ))
            }
        },
    };
    let users = pin_targets(b, s, input)?;
    if pin.is_some() && users.len() > 1 {
        return Err(bad(b, "Pin", "give each user a PIN of their own"));
    }
    let now = crate::pins::now();
    let mut out = vec![];
    for u in users {
        let set = crate::pins::set_pin(s.store, &u.address(), pin.as_deref(), None, now).map_err(
            |e| match e {
                StoreError::Invalid(m) => bad(b, "Pin", m),
                e => store_err(b, e),
            },
        )?;
        out.push(Obj::record(
            "PinInfo",
            vec![
                ("Identity".into(), json!(format!("sip:{}", u.address()))),
                // shown once: what the administrator passes on to the user
                ("Pin".into(), json!(set)),
                ("PinReset".into(), json!(true)),
            ],
        ));
    }
    Ok(out)
}

fn get_client_pin_info(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let mut out = vec![];
    for u in pin_targets(b, s, input)? {
        let info = s
            .store
            .client_pin_info(&u.address())
            .map_err(|e| store_err(b, e))?;
        let policy = crate::pins::pin_policy_for(s.store, &u.address(), None)
            .map_err(|e| store_err(b, e))?;
        out.push(pin_info_obj(&u, &info, &policy));
    }
    Ok(out)
}

/// What Get-CsClientPinInfo shows (never the PIN or its hash).
pub fn pin_info_obj(
    u: &confab_store::User,
    info: &confab_store::PinInfo,
    policy: &confab_policy::PinPolicy,
) -> Obj {
    let time = |t: Option<i64>| {
        t.map(crate::meetings::rfc3339)
            .map(Value::String)
            .unwrap_or(Value::Null)
    };
    Obj::record(
        "PinInfo",
        vec![
            ("Identity".into(), json!(format!("sip:{}", u.address()))),
            ("IsPinSet".into(), json!(info.is_pin_set)),
            ("IsLockedOut".into(), json!(info.is_locked_out)),
            (
                "PinExpirationTime".into(),
                time(crate::pins::expires_at(info, policy)),
            ),
            ("LastPinChangeTime".into(), time(info.last_changed)),
            ("FailedAttempts".into(), json!(info.failed_attempts)),
        ],
    )
}

fn lock_client_pin(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    lock_or_unlock(b, s, input, true)
}

fn unlock_client_pin(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    lock_or_unlock(b, s, input, false)
}

fn lock_or_unlock(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
    lock: bool,
) -> Result<Vec<Obj>, ExecError> {
    let users = pin_targets(b, s, input)?;
    // a user without a PIN is reported before anything changes
    for u in &users {
        let info = s
            .store
            .client_pin_info(&u.address())
            .map_err(|e| store_err(b, e))?;
        if !info.is_pin_set {
            return Err(failed(
                b,
                format!(
                    "sip:{} has no dial-in PIN to {}; set one with Set-CsClientPin",
                    u.address(),
                    if lock { "lock" } else { "unlock" }
                ),
            ));
        }
    }
    for u in users {
        let r = if lock {
            s.store.lock_client_pin(&u.address())
        } else {
            s.store.unlock_client_pin(&u.address())
        };
        r.map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}

/// The languages the conferencing attendant speaks (espeak-ng's voices for them).
pub const DIAL_IN_LANGUAGES: &[&str] = &[
    "en-US", "en-GB", "en-AU", "fr-FR", "fr-CA", "de-DE", "es-ES", "es-MX", "it-IT", "nl-NL",
    "pt-BR", "pt-PT", "sv-SE", "da-DK", "nb-NO", "fi-FI", "pl-PL", "ru-RU", "ja-JP", "zh-CN",
    "ko-KR",
];

/// A language tag in its listed spelling, or a clear error naming it.
fn dial_in_language(tag: &str) -> Result<&'static str, String> {
    DIAL_IN_LANGUAGES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(tag.trim()))
        .copied()
        .ok_or_else(|| {
            format!(
                "'{tag}' is not a language the conferencing attendant speaks; use one of {}",
                DIAL_IN_LANGUAGES.join(", ")
            )
        })
}

/// A dial-in access number's LineUri: `tel:+<digits>` (no extension: callers dial it).
fn access_line_uri(raw: &str) -> Result<String, String> {
    match confab_store::normalize_line_uri(raw) {
        Ok(l) if l.contains(";ext=") => Err(format!(
            "'{raw}' has an extension; an access number's LineUri is tel:+<digits>, e.g. tel:+14255550100"
        )),
        Ok(l) => Ok(l),
        Err(_) => Err(format!(
            "'{raw}' is not tel:+<digits>, e.g. tel:+14255550100"
        )),
    }
}

/// Literal values of an access number's own parameters, checked before anything runs.
fn check_access_number_args(b: &Bound, s: &Session) -> Result<(), ExecError> {
    check_props(b, s)?;
    if b.def.name.starts_with("New-") && b.identity().is_none() {
        return Err(ExecError::Missing {
            cmdlet: b.def.name.into(),
            param: "PrimaryUri".into(),
        });
    }
    if b.get("Identity").is_some() && b.get("PrimaryUri").is_some() {
        return Err(bad(b, "PrimaryUri", "give either -Identity or -PrimaryUri"));
    }
    if let Some(e) = b.get("PrimaryUri").filter(|e| !has_var(e)) {
        if let Some(raw) = s.literal(e)?.as_str() {
            canonical_identity(kind_of(b), raw).map_err(|m| bad(b, "PrimaryUri", m))?;
        }
    }
    if let Some(e) = b.get("LineUri").filter(|e| !has_var(e)) {
        if let Some(raw) = s.literal(e)?.as_str() {
            access_line_uri(raw).map_err(|m| bad(b, "LineUri", m))?;
        }
    }
    for p in ["PrimaryLanguage", "SecondaryLanguages"] {
        let Some(e) = b.get(p).filter(|e| !has_var(e)) else {
            continue;
        };
        let v = s.literal(e)?;
        let mut tags = vec![];
        match &v {
            Value::String(t) => tags.push(t.clone()),
            Value::Array(a) => tags.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string))),
            Value::Object(m) => {
                for x in m.values() {
                    match x {
                        Value::String(t) => tags.push(t.clone()),
                        Value::Array(a) => {
                            tags.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string)))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        for t in tags {
            dial_in_language(&t).map_err(|m| bad(b, p, m))?;
        }
    }
    Ok(())
}

/// An access number as it is about to be stored: LineUri canonical and unique among access
/// numbers, languages spoken, regions named.
fn check_access_number(
    b: &Bound,
    s: &Session,
    id: &str,
    body: &mut Map<String, Value>,
) -> Result<(), ExecError> {
    let line = body.get("LineUri").and_then(Value::as_str).unwrap_or("");
    if line.trim().is_empty() {
        return Err(bad(
            b,
            "LineUri",
            "an access number needs the number callers dial, -LineUri tel:+<digits>",
        ));
    }
    let line = access_line_uri(line).map_err(|m| bad(b, "LineUri", m))?;
    let primary = body
        .get("PrimaryLanguage")
        .and_then(Value::as_str)
        .unwrap_or("en-US");
    let primary = dial_in_language(primary).map_err(|m| bad(b, "PrimaryLanguage", m))?;
    let mut secondary = vec![];
    for t in body
        .get("SecondaryLanguages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let t = t.as_str().unwrap_or("");
        let t = dial_in_language(t).map_err(|m| bad(b, "SecondaryLanguages", m))?;
        if t != primary && !secondary.contains(&t) {
            secondary.push(t);
        }
    }
    if let Some(r) = body
        .get("Regions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.as_str().is_none_or(|r| r.trim().is_empty()))
    {
        return Err(bad(b, "Regions", format!("'{r}' is not a region name")));
    }
    for d in s
        .store
        .list_config(crate::schema::ACCESS_NUMBER)
        .map_err(|e| store_err(b, e))?
    {
        let other = d.body.get("LineUri").and_then(Value::as_str).unwrap_or("");
        if d.identity != id && other.eq_ignore_ascii_case(&line) {
            return Err(bad(
                b,
                "LineUri",
                format!(
                    "{line} is already the number of access number {}",
                    d.identity
                ),
            ));
        }
    }
    body.insert("LineUri".into(), json!(line));
    body.insert("PrimaryLanguage".into(), json!(primary));
    body.insert("SecondaryLanguages".into(), json!(secondary));
    Ok(())
}

/// Get-CsDialInConferencingAccessNumber: the generic listing, narrowed by -Region.
fn get_access_numbers(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let region = text_arg(b, s, "Region")?;
    let mut objs = get_config(b, s, input)?;
    if let Some(region) = region {
        objs.retain(|o| {
            o.get("Regions")
                .and_then(Value::as_array)
                .is_some_and(|rs| {
                    rs.iter().any(|r| {
                        r.as_str()
                            .is_some_and(|r| r.trim().eq_ignore_ascii_case(region.trim()))
                    })
                })
        });
    }
    objs.sort_by_key(|o| {
        (
            o.get("Priority").and_then(Value::as_i64).unwrap_or(0),
            o.identity().unwrap_or_default().to_ascii_lowercase(),
        )
    });
    Ok(objs)
}

// ----- backup -------------------------------------------------------------------------------------

/// The file -FileName names, which must be in the session's export folder
/// (`<data_dir>/export`): a relative name is taken in that folder, an absolute one must lie
/// inside it, and `..` components or symbolic links leading out of it are refused. For
/// `writing` the file must not exist yet (checked when it is created); for reading it must.
fn file_arg(b: &Bound, s: &Session, writing: bool) -> Result<std::path::PathBuf, ExecError> {
    export_file(b, s, "FileName", writing)
}

/// The file parameter `param` (or the first positional argument) names, which must be in
/// the session's export folder: see [`file_arg`].
pub(crate) fn export_file(
    b: &Bound,
    s: &Session,
    param: &str,
    writing: bool,
) -> Result<std::path::PathBuf, ExecError> {
    use std::path::{Component, Path};
    let given_arg = match text_arg(b, s, param)? {
        Some(f) => Some(f),
        None if param != "FileName" => match b.positional.first() {
            Some(e) => s.literal(e)?.as_str().map(str::to_string),
            None => None,
        },
        None => None,
    };
    let f = given_arg
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ExecError::Missing {
            cmdlet: b.def.name.into(),
            param: param.into(),
        })?;
    let Some(dir) = &s.export_dir else {
        return Err(failed(
            b,
            "files are written and read only in the data directory's export folder, and this session has none",
        ));
    };
    let outside = |why: &str| {
        failed(
            b,
            format!(
                "'{f}' {why}: export files are written and read only in the export folder {} (give a file name such as users.json)",
                dir.display()
            ),
        )
    };
    let given = Path::new(&f);
    if given
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(outside("has a '..' component"));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| failed(b, format!("{}: {e}", dir.display())))?;
    let root = dir
        .canonicalize()
        .map_err(|e| failed(b, format!("{}: {e}", dir.display())))?;
    let path = if given.is_absolute() {
        match given
            .strip_prefix(&root)
            .or_else(|_| given.strip_prefix(dir))
        {
            Ok(rest) => root.join(rest),
            Err(_) => return Err(outside("is outside the export folder")),
        }
    } else {
        root.join(given)
    };
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(outside("is not a file name"));
    };
    // a symbolic link among the folders cannot lead out
    let real_parent = parent
        .canonicalize()
        .map_err(|e| failed(b, format!("{}: {e}", parent.display())))?;
    if !real_parent.starts_with(&root) {
        return Err(outside("leads out of the export folder"));
    }
    let target = real_parent.join(name);
    if writing {
        // created with O_EXCL, which refuses an existing file or link
        return Ok(target);
    }
    let real = target
        .canonicalize()
        .map_err(|e| failed(b, format!("{}: {e}", target.display())))?;
    if !real.starts_with(&root) {
        return Err(outside("leads out of the export folder"));
    }
    Ok(real)
}

/// Writes `v` to a new file readable by its owner only (exports may carry password
/// equivalents).
fn write_new(b: &Bound, path: &std::path::Path, v: &Value) -> Result<(), ExecError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| failed(b, format!("{}: {e}", path.display())))?;
    f.write_all(
        serde_json::to_string_pretty(v)
            .expect("serializable")
            .as_bytes(),
    )
    .map_err(|e| failed(b, format!("{}: {e}", path.display())))
}

fn read_json(b: &Bound, path: &std::path::Path) -> Result<Value, ExecError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| failed(b, format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| failed(b, format!("{} is not an export file: {e}", path.display())))
}

/// Every configuration document kind confab stores.
fn stored_kinds() -> Vec<&'static str> {
    all_kinds()
        .iter()
        .map(|k| k.noun)
        .chain([ASSIGNMENTS, APPS])
        .collect()
}

fn export_config(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let path = file_arg(b, s, true)?;
    let mut docs = vec![];
    for k in stored_kinds() {
        for d in s.store.list_config(k).map_err(|e| store_err(b, e))? {
            docs.push(json!({"kind": d.kind, "identity": d.identity, "body": d.body}));
        }
    }
    let roles: Vec<Value> = s
        .store
        .list_roles()
        .map_err(|e| store_err(b, e))?
        .into_iter()
        .map(|r| json!({"identity": r.identity, "template": r.template, "cmdlets": r.cmdlets, "config_scopes": r.config_scopes, "user_scopes": r.user_scopes}))
        .collect();
    write_new(
        b,
        &path,
        &json!({"format": "confab-configuration/1", "documents": docs, "roles": roles}),
    )?;
    Ok(vec![])
}

fn import_config(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let path = file_arg(b, s, false)?;
    let v = read_json(b, &path)?;
    if v["format"] != json!("confab-configuration/1") {
        return Err(failed(
            b,
            format!("{} is not a confab configuration export", path.display()),
        ));
    }
    let known = stored_kinds();
    let strs = |x: &Value| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect()
    };
    let mut docs = vec![];
    for d in v["documents"].as_array().into_iter().flatten() {
        let (Some(kind), Some(identity), Some(body)) = (
            d["kind"].as_str(),
            d["identity"].as_str(),
            d["body"].as_object(),
        ) else {
            return Err(failed(b, "a document lacks kind, identity or body"));
        };
        let kind = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(kind))
            .ok_or_else(|| failed(b, format!("unknown configuration kind '{kind}'")))?;
        let body = match all_kinds().iter().find(|k| k.noun == *kind) {
            Some(k) => checked_document(b, s, k, identity, body)?,
            None => body.clone(),
        };
        docs.push((*kind, identity.to_string(), body));
    }
    let mut roles = vec![];
    for r in v["roles"].as_array().into_iter().flatten() {
        roles.push(AdminRoleRow {
            identity: r["identity"].as_str().unwrap_or_default().to_string(),
            template: r["template"].as_str().unwrap_or_default().to_string(),
            cmdlets: strs(&r["cmdlets"]),
            config_scopes: strs(&r["config_scopes"]),
            user_scopes: strs(&r["user_scopes"]),
        });
    }
    // all or nothing
    s.store
        .transaction(|t| {
            for (kind, identity, body) in &docs {
                confab_store::tx::put_config(t, kind, identity, body)?;
            }
            for r in &roles {
                match confab_store::tx::get_role(t, &r.identity)? {
                    Some(_) => confab_store::tx::update_role(t, r)?,
                    None => confab_store::tx::create_role(t, r)?,
                }
            }
            Ok(())
        })
        .map_err(|e| store_err(b, e))?;
    Ok(vec![])
}

fn export_users(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let path = file_arg(b, s, true)?;
    let v = s.store.export_user_data().map_err(|e| store_err(b, e))?;
    write_new(b, &path, &v)?;
    Ok(vec![])
}

fn import_users(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let path = file_arg(b, s, false)?;
    let v = read_json(b, &path)?;
    s.store.import_user_data(&v).map_err(|e| store_err(b, e))?;
    Ok(vec![])
}

/// An imported document checked as Set- would check it: a canonical identity at one of the
/// kind's scopes, known properties, values of the right type. Warns about values confab
/// does not enforce.
fn checked_document(
    b: &Bound,
    s: &mut Session,
    k: &Kind,
    identity: &str,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, ExecError> {
    let what = format!("{} \"{identity}\"", k.noun);
    match canonical_identity(k, identity) {
        Ok(c) if c == identity => {}
        Ok(c) => return Err(failed(b, format!("{what}: the identity is written {c}"))),
        Err(m) => return Err(failed(b, format!("{what}: {m}"))),
    }
    let mut out = Map::new();
    for (name, v) in body {
        let prop = k
            .props
            .iter()
            .find(|p| p.name == name.as_str())
            .ok_or_else(|| failed(b, format!("{what} has no property '{name}'")))?;
        let v = coerce(prop, v, &prop.default)
            .map_err(|m| failed(b, format!("{what}: {name}: {m}")))?;
        if v != prop.default && !k.enforcement(name).is_enforced() {
            s.warn(format!(
                "{}: {what}: {name} is not enforced by confab yet ({}); the value is stored but has no effect",
                b.def.name,
                k.enforcement(name).note()
            ));
        }
        out.insert(name.clone(), v);
    }
    if let Some(name) = k.def.unreadable(&out).first() {
        return Err(failed(
            b,
            format!("{what}: {name}: the server could not read this value"),
        ));
    }
    if k.noun == crate::schema::ACCESS_NUMBER {
        let mut full = k.defaults();
        full.extend(out);
        check_access_number(b, s, identity, &mut full)
            .map_err(|e| failed(b, format!("{what}: {e}")))?;
        out = full;
    }
    if let Err(e) = voice::check_own(b, k, identity, &mut out) {
        return Err(failed(b, format!("{what}: {e}")));
    }
    simple_url::check_own(k, &mut out).map_err(|m| failed(b, format!("{what}: {m}")))?;
    Ok(out)
}

// ----- output shaping, help, audit ------------------------------------------------------------------

/// `YYYY-MM-DD`, `YYYY-MM-DD hh:mm` or `YYYY-MM-DD hh:mm:ss` (also with `T`), UTC, as unix
/// milliseconds.
pub fn parse_utc(v: &str) -> Option<i64> {
    let v = v.trim();
    let (date, time) = match v.split_once([' ', 'T']) {
        Some((d, t)) => (d, t.trim()),
        None => (v, ""),
    };
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = 0;
    if !time.is_empty() {
        let mut t = time.trim_end_matches('Z').split(':');
        let (h, mi) = (num(t.next()?, 2)?, num(t.next()?, 2)?);
        let sec = match t.next() {
            Some(x) => num(x, 2)?,
            None => 0,
        };
        if t.next().is_some() || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        secs = h * 3600 + mi * 60 + sec;
    }
    // days from the civil date (Howard Hinnant's algorithm)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + secs) * 1000)
}

fn get_audit(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let last = match b.get("Last").map(|e| s.literal(e)).transpose()? {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(50) as usize,
        Some(Value::String(v)) => v
            .parse()
            .map_err(|_| bad(b, "Last", "a number is needed"))?,
        _ => 50,
    };
    let since_ms = match text_arg(b, s, "Since")?.filter(|v| !v.trim().is_empty()) {
        Some(v) => Some(parse_utc(&v).ok_or_else(|| {
            bad(
                b,
                "Since",
                format!("'{v}' is not a UTC time such as 2026-12-07 or 2026-12-07 13:05"),
            )
        })?),
        None => None,
    };
    let filter = confab_store::AuditFilter {
        admin: text_arg(b, s, "Admin")?,
        since_ms,
        contains: text_arg(b, s, "Contains")?,
        limit: last,
    };
    let entries = s.store.query_audit(&filter).map_err(|e| store_err(b, e))?;
    Ok(entries
        .into_iter()
        .map(|e| {
            Obj::record(
                "AuditEntry",
                vec![
                    ("Id".into(), json!(e.id)),
                    ("Time".into(), json!(crate::format_time(e.at_ms))),
                    ("Admin".into(), json!(e.admin)),
                    ("Origin".into(), json!(e.origin)),
                    ("Command".into(), json!(e.command)),
                    ("Success".into(), json!(e.success)),
                    ("Result".into(), json!(e.result)),
                ],
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact("Set-X -Password s3cret -Name a"),
            "Set-X -Password ******** -Name a"
        );
        assert_eq!(redact("Set-X -Password:s3cret"), "Set-X -Password:********");
        assert_eq!(redact("Set-CsUser -Identity a"), "Set-CsUser -Identity a");
        assert_eq!(
            redact("New-CsUser -Identity a -Password secret"),
            "New-CsUser -Identity a -Password ********"
        );
        // a quoted secret is left out whole, spaces and all
        assert_eq!(
            redact("Set-CsUserPassword -Identity a -Password 'my new secret' -Confirm"),
            "Set-CsUserPassword -Identity a -Password ******** -Confirm"
        );
        assert_eq!(
            redact("Set-X -Password 'it''s a b' -N 1"),
            "Set-X -Password ******** -N 1"
        );
        assert_eq!(
            redact("Set-X -Password \"a `\" b\" -N 1"),
            "Set-X -Password ******** -N 1"
        );
        assert_eq!(
            redact("Set-X -Password:'a b' -N 1"),
            "Set-X -Password:******** -N 1"
        );
        assert_eq!(
            redact("Set-X -Password 'one' -N 1"),
            "Set-X -Password ******** -N 1"
        );
        assert_eq!(
            redact("Set-X -Password '' -N 1"),
            "Set-X -Password ******** -N 1"
        );
        assert_eq!(parse_utc("1970-01-01"), Some(0));
        assert_eq!(parse_utc("2026-12-07 13:05"), Some(1_796_648_700_000));
        assert_eq!(parse_utc("2000-03-01T00:00:01Z"), Some(951_868_801_000));
        assert_eq!(parse_utc("2026-13-01"), None);
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(
            redact("Set-CsClientPin -Identity a -Pin 0123"),
            "Set-CsClientPin -Identity a -Pin ********"
        );
        assert_eq!(
            redact("Set-CsPinPolicy -PINHistoryCount 2"),
            "Set-CsPinPolicy -PINHistoryCount 2"
        );
    }

    #[test]
    fn globbing() {
        assert!(glob("tag:*", "Tag:Redmond"));
        assert!(glob("*Modifier*", "CsUserModifier"));
        assert!(!glob("site:*", "Global"));
        assert!(glob("Global", "global"));
    }

    #[test]
    fn list_edits() {
        let p = Prop {
            name: "Extensions",
            ty: PropType::StrList,
            default: json!([".exe"]),
        };
        assert_eq!(
            coerce(&p, &json!({"Add": ".jpg"}), &json!([".exe"])).unwrap(),
            json!([".exe", ".jpg"])
        );
        assert_eq!(
            coerce(&p, &json!({"Remove": [".EXE"]}), &json!([".exe", ".jpg"])).unwrap(),
            json!([".jpg"])
        );
        assert_eq!(
            coerce(&p, &json!({"Replace": "a"}), &json!([".exe"])).unwrap(),
            json!(["a"])
        );
        assert!(coerce(&p, &json!({"Frob": "a"}), &json!([])).is_err());
    }

    #[test]
    fn barrier_members_are_users_or_domains() {
        let p = Prop {
            name: "SegmentA",
            ty: PropType::StrList,
            default: json!([]),
        };
        for ok in [
            "sip:alice@a.test",
            "SIP:bob@a.test",
            "*@b.test",
            "carol@x-y.example",
            "partner.example",
        ] {
            assert!(coerce(&p, &json!([ok]), &json!([])).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "alice@",
            "@",
            "a@b@c",
            "two words",
            "sip:",
            "a@.test",
            "bad..domain",
            "x@y z",
        ] {
            let e = coerce(&p, &json!([bad]), &json!([])).unwrap_err();
            assert!(e.contains(&format!("'{bad}' is not a user")), "{bad}: {e}");
        }
    }
}
