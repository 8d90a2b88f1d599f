//! Get-Help and Get-Command, as PowerShell presents them: `Get-Help NAME` (synopsis, syntax
//! with each parameter's type, whether it is mandatory and its default, who may run it),
//! `-Detailed`, `-Full` (every parameter described, what confab does not enforce) and
//! `-Examples`; `Get-Help` alone explains how to use help; `Get-Command` lists cmdlets by
//! name, verb or noun with wildcards.
//!
//! Get-Command lists every matching cmdlet and says in its `Allowed` column whether the
//! caller's roles let them run it (a Lync administrator learns what exists, and which role
//! they would need).

use crate::cmdlets::{all_kinds, find, p, registry, sw, Cmdlet};
use crate::exec::{Bound, ExecError, Session};
use crate::object::{display, Obj};
use crate::pipeline::wildcard;
use crate::roles::{Role, ALWAYS_ALLOWED, BUILTIN_ROLES};
use crate::schema::{Kind, PropType};
use confab_policy::{DocDef, Document, Enforcement, ScopeKind};
use serde_json::{json, Value};

/// The type name of a help object; `#Full`, `#Detailed`, `#Examples` or nothing after it
/// say which view prints it.
pub const HELP_TYPE: &str = "MamlCommandHelpInfo";

/// PowerShell's aliases for the pipeline cmdlets, as `find` resolves them.
pub const ALIASES: &[(&str, &str)] = &[
    ("?", "Where-Object"),
    ("where", "Where-Object"),
    ("select", "Select-Object"),
    ("sort", "Sort-Object"),
    ("measure", "Measure-Object"),
    ("fl", "Format-List"),
    ("ft", "Format-Table"),
    ("epcsv", "Export-Csv"),
    ("gcm", "Get-Command"),
    ("help", "Get-Help"),
];

pub(crate) fn cmdlets() -> Vec<Cmdlet> {
    vec![
        Cmdlet {
            name: "Get-Help",
            params: vec![p("Name"), sw("Full"), sw("Detailed"), sw("Examples")],
            mandatory: vec![],
            max_positional: 1,
            pipeline_input: false,
            changes: false,
            help: "Shows how to use a cmdlet: its syntax, parameters (type, mandatory, default), who may run it and examples (-Detailed, -Full, -Examples).",
            kind: None,
            check: check_help,
            run: get_help,
        },
        Cmdlet {
            name: "Get-Command",
            params: vec![p("Name"), p("Verb"), p("Noun")],
            mandatory: vec![],
            max_positional: 1,
            pipeline_input: false,
            changes: false,
            help: "Lists the cmdlets whose name, verb or noun match (wildcards allowed), and whether your roles allow each.",
            kind: None,
            check: check_command,
            run: get_command,
        },
    ]
}

// ----- parameter documentation ---------------------------------------------------------------

/// What help says about one parameter.
struct ParamDoc {
    name: &'static str,
    ty: String,
    required: bool,
    position: Option<usize>,
    default: String,
    pipeline: bool,
    wildcards: bool,
    description: String,
}

/// Hand-written descriptions: (cmdlet or "*", parameter, type, default, description).
const PARAM_DOCS: &[(&str, &str, &str, &str, &str)] = &[
    ("Where-Object", "FilterScript", "ScriptBlock", "None", "The condition: {$_.Enabled -eq $false}. $_ is the object piped in; -eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains -in -notin (ignoring case; -ceq … to respect it), joined by -and, -or, -not."),
    ("Where-Object", "Property", "String", "None", "The simplified syntax: the property to test (Where-Object Enabled -eq $false)."),
    ("Where-Object", "Value", "Object", "None", "The value the property is compared with (usually written after the operator)."),
    ("Where-Object", "Not", "SwitchParameter", "False", "Keeps the objects whose property is false or missing."),
    ("Select-Object", "Property", "Object[]", "None", "The properties to keep (wildcards allowed, e.g. *Voice*; @{Name='X'; Expression={$_.Y}} computes one)."),
    ("Select-Object", "ExpandProperty", "String", "None", "Outputs the value of this property itself; a list gives one object per item."),
    ("Select-Object", "ExcludeProperty", "String[]", "None", "Properties left out of -Property (wildcards allowed)."),
    ("Select-Object", "First", "Int32", "None", "Keeps only the first N objects."),
    ("Select-Object", "Last", "Int32", "None", "Keeps only the last N objects."),
    ("Select-Object", "Skip", "Int32", "0", "Leaves out the first N objects (the last N with -Last)."),
    ("Select-Object", "Unique", "SwitchParameter", "False", "Leaves out objects identical (case-sensitively) to an earlier one."),
    ("Sort-Object", "Property", "Object[]", "Identity", "The properties to sort by, in order of importance."),
    ("Sort-Object", "Descending", "SwitchParameter", "False", "Sorts from the largest to the smallest."),
    ("Sort-Object", "Unique", "SwitchParameter", "False", "Keeps one object of each set with equal sort values (ignoring case)."),
    ("Sort-Object", "CaseSensitive", "SwitchParameter", "False", "Text that differs only in case sorts apart."),
    ("Measure-Object", "Property", "String[]", "None", "The properties to measure (one result each); without it the objects are counted."),
    ("Measure-Object", "Sum", "SwitchParameter", "False", "Adds up the values."),
    ("Measure-Object", "Average", "SwitchParameter", "False", "Averages the values."),
    ("Measure-Object", "Maximum", "SwitchParameter", "False", "The largest value."),
    ("Measure-Object", "Minimum", "SwitchParameter", "False", "The smallest value."),
    ("Format-List", "Property", "Object[]", "All", "The properties to show, one per line (wildcards allowed)."),
    ("Format-Table", "Property", "Object[]", "The first four", "The columns (wildcards allowed; * for every property)."),
    ("Format-Table", "AutoSize", "SwitchParameter", "False", "Columns as wide as their content; without it cells longer than 40 characters are cut (ending in ...)."),
    ("Format-Table", "HideTableHeaders", "SwitchParameter", "False", "Leaves out the column headers."),
    ("Format-Table", "Wrap", "SwitchParameter", "False", "Never cuts a cell (as -AutoSize)."),
    ("Export-Csv", "Path", "String", "None", "The file, in the data directory's export folder (a name such as users.csv); an existing file is replaced."),
    ("Export-Csv", "NoTypeInformation", "SwitchParameter", "False", "Leaves out the first line, #TYPE <type name>."),
    ("Export-Csv", "NoClobber", "SwitchParameter", "False", "Refuses to replace an existing file."),
    ("Export-Csv", "Delimiter", "Char", ",", "The character between fields."),
    ("Get-Help", "Name", "String", "None", "The cmdlet (or alias) to describe; with wildcards, the matching cmdlets are listed."),
    ("Get-Help", "Full", "SwitchParameter", "False", "Everything: parameter details, what confab does not enforce, examples."),
    ("Get-Help", "Detailed", "SwitchParameter", "False", "Parameter descriptions and examples."),
    ("Get-Help", "Examples", "SwitchParameter", "False", "Only the examples."),
    ("Get-Command", "Name", "String[]", "*", "Names to match (wildcards allowed: *CsVoice*)."),
    ("Get-Command", "Verb", "String[]", "*", "Verbs to match (Get, Set, …)."),
    ("Get-Command", "Noun", "String[]", "*", "Nouns to match (CsUser, *Policy)."),
    ("Enable-CsUser", "RegistrarPool", "Fqdn", "None", "CHECKED, NOT ACTED ON: must be a pool Get-CsPool lists (the site of a front end, or Global); every front end of the store serves every user, so nothing is recorded."),
    ("Enable-CsUser", "SipAddress", "String", "None", "CHECKED, NOT ACTED ON: must be the user's own address (sip:user@domain, any case); confab does not rename users (New-CsUser with the new address, then Remove-CsUser the old one)."),
    ("Enable-CsUser", "SipAddressType", "String", "None", "CHECKED, NOT ACTED ON: SAMAccountName, EmailAddress and UserPrincipalName all name the user's existing user@domain; None needs -SipAddress; FirstLastName is refused (confab's directory has no first and last names)."),
    ("Enable-CsUser", "SipDomain", "String", "None", "CHECKED, NOT ACTED ON: must be the domain of the user's address."),
    ("Set-CsUserPassword", "Password", "String", "None", "The new SIP password (1 to 128 characters). The user's web sessions end; the audit log shows ********."),
    ("New-CsUser", "Password", "String", "None", "The user's SIP password (1 to 128 characters); the audit log shows ********."),
    ("*", "Identity", "XdsIdentity", "None", "The object to act on: Global, Site:<name>, Service:<role>:<fqdn>, a policy's name, or a user's SIP address."),
    ("*", "Filter", "String", "None", "Only objects whose identity matches (wildcards allowed)."),
    ("*", "FileName", "String", "None", "A file in the data directory's export folder."),
    ("*", "PolicyName", "String", "None", "The per-user policy to assign ($null: the site or global one)."),
    ("*", "Force", "SwitchParameter", "False", "Does not ask for confirmation."),
];

fn hand_doc(cmdlet: &str, param: &str) -> Option<(&'static str, &'static str, &'static str)> {
    PARAM_DOCS
        .iter()
        .find(|(c, p, ..)| c.eq_ignore_ascii_case(cmdlet) && p.eq_ignore_ascii_case(param))
        .or_else(|| {
            PARAM_DOCS
                .iter()
                .find(|(c, p, ..)| *c == "*" && p.eq_ignore_ascii_case(param))
        })
        .map(|(_, _, t, d, desc)| (*t, *d, *desc))
}

pub(crate) fn prop_type_name(ty: &PropType) -> String {
    crate::cmdlets::type_name(ty)
        .trim_start_matches("System.")
        .to_string()
}

fn kind_of(c: &Cmdlet) -> Option<&'static Kind> {
    c.kind.map(|i| &all_kinds()[i])
}

/// The typed definition behind a cmdlet's properties, if it has one.
fn def_of(c: &Cmdlet) -> Option<&'static DocDef> {
    match c.kind {
        Some(i) => Some(all_kinds()[i].def),
        None if c.name.ends_with("-CsServerApplication") => {
            Some(confab_policy::ServerApplication::DEF)
        }
        None => None,
    }
}

fn enforcement_text(e: &Enforcement) -> String {
    match e {
        Enforcement::Enforced(w) => format!("Enforced: {w}."),
        Enforcement::NotEnforced(why) => format!("NOT ENFORCED by confab: {why}."),
        Enforcement::Informational => "Describes the object.".into(),
    }
}

fn param_docs(c: &Cmdlet) -> Vec<ParamDoc> {
    let kind = kind_of(c);
    let def = def_of(c);
    let verb = c.name.split('-').next().unwrap_or("");
    let positional_name = ["Property", "Path", "Name", "Identity"]
        .into_iter()
        .find(|n| c.params.iter().any(|p| p.name == *n));
    c.params
        .iter()
        .map(|prm| {
            let required = c.mandatory.contains(&prm.name);
            let position = (Some(prm.name) == positional_name && c.max_positional > 0).then_some(0);
            let schema_prop = kind.and_then(|k| k.prop(prm.name));
            let (ty, default, mut description) =
                if let Some((t, d, desc)) = hand_doc(c.name, prm.name) {
                    (t.to_string(), d.to_string(), desc.to_string())
                } else if let Some(sp) = schema_prop {
                    let default = match verb {
                        "New" => {
                            let d = display(&sp.default);
                            if d.is_empty() {
                                "(empty)".to_string()
                            } else {
                                d
                            }
                        }
                        _ => "(unchanged)".into(),
                    };
                    (
                        prop_type_name(&sp.ty),
                        default,
                        format!(
                            "Sets {} of the {} object.",
                            sp.name,
                            kind.map_or("", |k| k.noun)
                        ),
                    )
                } else if prm.switch {
                    ("SwitchParameter".into(), "False".into(), String::new())
                } else {
                    let ty = match prm.name {
                        "Enabled" | "EnterpriseVoiceEnabled" | "HostedVoiceMail" => "Boolean",
                        "Last" | "Priority" => "Int32",
                        _ => "String",
                    };
                    (ty.to_string(), "None".into(), String::new())
                };
            if description.is_empty() {
                description = format!("The {} of the command.", prm.name);
            }
            if let Some(pd) = def.and_then(|d| d.prop(prm.name)) {
                description.push(' ');
                description.push_str(&enforcement_text(&pd.enforcement));
            }
            ParamDoc {
                name: prm.name,
                ty,
                required,
                position,
                default,
                pipeline: c.pipeline_input
                    && (prm.name == "Identity"
                        || c.name.ends_with("-Object")
                        || c.name.starts_with("Format-")
                        || c.name == "Export-Csv"),
                wildcards: prm.name == "Filter"
                    || (prm.name == "Property" && c.name != "Where-Object")
                    || (c.name == "Get-Command")
                    || (c.name == "Get-Help" && prm.name == "Name"),
                description,
            }
        })
        .collect()
}

/// `Get-CsUser [[-Identity] <XdsIdentity>] [-Filter <String>]`: optional parameters in
/// brackets, a positional name in brackets of its own, switches without a type.
fn syntax(c: &Cmdlet, docs: &[ParamDoc]) -> String {
    let mut s = c.name.to_string();
    for d in docs {
        let name = if d.position.is_some() {
            format!("[-{}]", d.name)
        } else {
            format!("-{}", d.name)
        };
        let part = if d.ty == "SwitchParameter" {
            format!("-{}", d.name)
        } else {
            format!("{name} <{}>", d.ty)
        };
        s.push(' ');
        if d.required {
            s.push_str(&part);
        } else {
            s.push_str(&format!("[{part}]"));
        }
    }
    s
}

/// Who may run the cmdlet.
fn rbac_note(c: &Cmdlet, s: &Session) -> String {
    let yours = if ALWAYS_ALLOWED
        .iter()
        .any(|a| a.eq_ignore_ascii_case(c.name))
    {
        return "Every administrator may run it, whatever their roles: it only shapes or shows output (Export-Csv writes only into the export folder, and is audited).".into();
    } else {
        allowed(c.name, s)
    };
    let roles: Vec<&str> = BUILTIN_ROLES
        .iter()
        .copied()
        .filter(|r| Role::builtin(r).is_some_and(|role| role.permits(c.name)))
        .collect();
    let mut note = if roles.is_empty() {
        "No built-in role runs it".to_string()
    } else {
        format!("Built-in roles that run it: {}", roles.join(", "))
    };
    if crate::roles::administrator_only(c.name) {
        note.push_str(" (CsAdministrator only, or a role cloned from it with Global scopes)");
    }
    note.push_str(if yours {
        ". Your roles allow it"
    } else {
        ". Your roles do not allow it"
    });
    if c.changes {
        note.push_str("; every run is written to the audit log (Get-CsAuditLog).");
    } else {
        note.push('.');
    }
    note
}

/// Whether the caller's roles let them run `name`.
fn allowed(name: &str, s: &Session) -> bool {
    ALWAYS_ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(name))
        || s.principal.roles.iter().any(|r| r.permits(name))
}

// ----- examples --------------------------------------------------------------------------------

const EXAMPLES: &[(&str, &str, &str)] = &[
    ("Get-CsPool", "Get-CsPool", "The pool of each site, its front ends and how many are up."),
    ("Get-CsComputer", "Get-CsComputer | ft Identity, State, Registrations", "Every front end with its state and load."),
    ("Get-CsComputer", "Get-CsComputer | Where-Object {$_.State -ne 'Active'}", "The front ends that are down."),
    ("Get-CsUserPoolInfo", "Get-CsUserPoolInfo -Identity sip:alice@example.com", "Where alice is served and which front ends hold her registrations."),
    ("Get-CsUserRegistration", "Get-CsUserRegistration -Identity sip:alice@example.com", "alice's registered endpoints: contact, transport, source address, user agent, expiry, front end."),
    ("Get-CsUserRegistration", "Get-CsUser | Get-CsUserRegistration | ft Identity, SourceAddress, UserAgent", "Who is registered from where."),
    ("Get-CsUserSession", "Get-CsUserSession -Identity sip:alice@example.com", "alice's calls, presence subscriptions and meeting seats in progress."),
    ("Enable-CsUser", "Enable-CsUser -Identity sip:alice@example.com", "Lets alice sign in again."),
    ("Enable-CsUser", "Enable-CsUser -Identity sip:alice@example.com -RegistrarPool Global -SipAddressType SAMAccountName -SipDomain example.com", "Lync's form: the pool and address are checked against confab's (they must agree), then alice may sign in."),
    ("Disable-CsUser", "Disable-CsUser -Identity sip:alice@example.com", "Stops alice from signing in; her account and data stay."),
    ("Set-CsUserPassword", "Set-CsUserPassword -Identity sip:alice@example.com -Password 'a new secret'", "Sets alice's SIP password; her old one stops working at once."),
    ("Get-CsUser", "Get-CsUser", "Lists every user you may see."),
    ("Get-CsUser", "Get-CsUser -Identity sip:alice@example.com", "Shows one user."),
    ("Get-CsUser", "Get-CsUser | Where-Object {$_.Enabled -eq $false} | Select-Object DisplayName, SipAddress", "The users who are disabled, by name and address."),
    ("Where-Object", "Get-CsUser | Where-Object {$_.Enabled -eq $false}", "The disabled users."),
    ("Where-Object", "Get-CsUser | ? {$_.SipAddress -like '*@example.com' -and -not $_.EnterpriseVoiceEnabled}", "Users of a domain without Enterprise Voice."),
    ("Where-Object", "Get-CsUser | Where-Object Enabled -eq $false", "The same as the first example, in the simplified syntax."),
    ("Select-Object", "Get-CsUser | Select-Object DisplayName, SipAddress", "Only the name and address of each user."),
    ("Select-Object", "Get-CsAdminRole CsHelpDesk | Select-Object -ExpandProperty Cmdlets", "The cmdlets of a role, one per line."),
    ("Select-Object", "Get-CsUser | Select-Object -First 2", "The first two users."),
    ("Sort-Object", "Get-CsUser | Sort-Object DisplayName -Descending", "Users from Z to A."),
    ("Measure-Object", "Get-CsUser | Measure-Object", "How many users there are (Count)."),
    ("Measure-Object", "Get-CsDialInConferencingAccessNumber | Measure-Object -Property Priority -Maximum -Minimum", "The highest and lowest priority."),
    ("Format-List", "Get-CsUser | Format-List DisplayName, Enabled", "Two lines per user."),
    ("Format-Table", "Get-CsUser | Format-Table -Property SipAddress, Enabled -AutoSize", "A table of two columns sized to their content."),
    ("Export-Csv", "Get-CsUser | Select-Object DisplayName, SipAddress | Export-Csv -Path users.csv -NoTypeInformation", "Writes users.csv in the export folder."),
    ("Get-Help", "Get-Help Get-CsUser -Full", "Everything about Get-CsUser."),
    ("Get-Help", "Get-Help *Voice*", "The cmdlets about voice."),
    ("Get-Command", "Get-Command *CsVoice*", "Cmdlets whose name contains CsVoice."),
    ("Get-Command", "Get-Command -Verb Get -Noun *Policy", "Every Get- cmdlet of a policy."),
];

/// A sample value for a parameter of type `ty`.
fn sample(ty: &PropType, default: &Value) -> String {
    match ty {
        PropType::Bool | PropType::OptBool => match default {
            Value::Bool(true) => "$false".into(),
            _ => "$true".into(),
        },
        _ => match default {
            Value::Number(n) => (n.as_i64().unwrap_or(0) + 1).to_string(),
            Value::String(s) if !s.is_empty() && !s.contains(' ') => s.clone(),
            _ => "\"value\"".into(),
        },
    }
}

fn sample_identity(k: &Kind) -> &'static str {
    if k.is_policy {
        "SalesPolicy"
    } else if k.scopes.contains(&ScopeKind::Site) {
        "Site:Redmond"
    } else if k.scopes.contains(&ScopeKind::Named) {
        "example.org"
    } else {
        "Global"
    }
}

fn placeholder(param: &str) -> String {
    let l = param.to_ascii_lowercase();
    if l.contains("identity") || l.contains("organizer") || l == "user" {
        "sip:alice@example.com".into()
    } else if l.contains("file") || l == "path" {
        "export.json".into()
    } else if l.contains("uri") {
        "tel:+14255550100".into()
    } else {
        format!("'<{param}>'")
    }
}

/// The examples of `c`: hand-written ones, otherwise one made from its schema.
fn examples(c: &Cmdlet) -> Vec<(String, String)> {
    let hand: Vec<(String, String)> = EXAMPLES
        .iter()
        .filter(|(n, ..)| n.eq_ignore_ascii_case(c.name))
        .map(|(_, code, rem)| (code.to_string(), rem.to_string()))
        .collect();
    if !hand.is_empty() {
        return hand;
    }
    let verb = c.name.split('-').next().unwrap_or("");
    if let Some(k) = kind_of(c) {
        let first = k.props.first();
        let set = first
            .map(|p| format!(" -{} {}", p.name, sample(&p.ty, &p.default)))
            .unwrap_or_default();
        let id = sample_identity(k);
        let (code, rem) = match verb {
            "Get" => (
                format!("Get-{} -Identity Global", k.noun),
                format!("Shows the global {} settings.", k.noun),
            ),
            "Set" => (
                format!("Set-{} -Identity Global{set}", k.noun),
                format!(
                    "Changes {} of the global settings.",
                    first.map_or("a property", |p| p.name)
                ),
            ),
            "New" => (
                format!("New-{} -Identity {id}{set}", k.noun),
                format!(
                    "Creates {} settings at {id}; the other properties take their defaults.",
                    k.noun
                ),
            ),
            "Remove" => (
                format!("Remove-{} -Identity {id}", k.noun),
                format!("Removes the {} settings at {id}.", k.noun),
            ),
            _ => (
                format!(
                    "{} -Identity sip:alice@example.com -PolicyName {id}",
                    c.name
                ),
                format!("Assigns the per-user {} {id} to alice.", k.noun),
            ),
        };
        return vec![(code, rem)];
    }
    let mut code = c.name.to_string();
    for m in &c.mandatory {
        code.push_str(&format!(" -{m} {}", placeholder(m)));
    }
    let rem = if c.mandatory.is_empty() {
        format!("Runs {} with its defaults. {}", c.name, c.help)
    } else {
        c.help.to_string()
    };
    vec![(code, rem)]
}

// ----- Get-Help --------------------------------------------------------------------------------

fn help_name(b: &Bound, s: &Session) -> Result<Option<String>, ExecError> {
    let e = b.get("Name").or_else(|| b.positional.first().copied());
    match e.map(|e| s.literal(e)).transpose()? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(n)) => Ok(Some(n)),
        Some(other) => Err(ExecError::BadValue {
            cmdlet: "Get-Help".into(),
            param: "Name".into(),
            message: format!("Cannot convert '{}' to a string", display(&other)),
        }),
    }
}

fn check_help(b: &Bound, s: &Session) -> Result<(), ExecError> {
    let views = ["Full", "Detailed", "Examples"]
        .iter()
        .filter(|v| b.has(v))
        .count();
    if views > 1 {
        return Err(ExecError::Failed {
            cmdlet: "Get-Help".into(),
            message: "Parameter set cannot be resolved: use one of -Full, -Detailed, -Examples"
                .into(),
        });
    }
    if b.get("Name")
        .or_else(|| b.positional.first().copied())
        .is_some_and(|e| matches!(e, Expr::Var(_) | Expr::Sub(_)))
    {
        return Ok(());
    }
    help_name(b, s).map(|_| ())
}

use crate::ast::Expr;

const USAGE: &str = "
TOPIC
    Get-Help

SHORT DESCRIPTION
    How to get help about confab's cmdlets (the Lync Server Management Shell's).

LONG DESCRIPTION
    Get-Help <cmdlet-name>            syntax, parameters (type, mandatory, default),
                                      who may run it
    Get-Help <cmdlet-name> -Detailed  and each parameter's description, examples
    Get-Help <cmdlet-name> -Full      everything, including the settings confab does
                                      not enforce
    Get-Help <cmdlet-name> -Examples  only the examples
    Get-Help *Voice*                  the cmdlets whose name matches

    Get-Command                       every cmdlet, and whether your roles allow it
    Get-Command *CsVoice*             cmdlets whose name matches
    Get-Command -Verb Get -Noun *Policy

    Objects flow through pipelines as in PowerShell:
    Get-CsUser | Where-Object {$_.Enabled -eq $false} | Select-Object DisplayName
    Get-CsUser | Sort-Object DisplayName | Format-Table SipAddress, Enabled -AutoSize

";

fn get_help(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let Some(name) = help_name(b, s)? else {
        return Ok(vec![Obj::Value(json!(USAGE))]);
    };
    if name.contains(['*', '?']) {
        let mut matches: Vec<&Cmdlet> = registry()
            .iter()
            .filter(|c| wildcard(&name, c.name, false))
            .collect();
        matches.sort_by_key(|c| c.name.to_lowercase());
        if let [one] = matches.as_slice() {
            return Ok(vec![help_obj(one, s, view(b))]);
        }
        return Ok(matches
            .into_iter()
            .map(|c| {
                Obj::record(
                    "HelpInfoShort",
                    vec![
                        ("Name".into(), json!(c.name)),
                        ("Category".into(), json!("Cmdlet")),
                        ("Synopsis".into(), json!(c.help)),
                    ],
                )
            })
            .collect());
    }
    let c = find(&name).ok_or_else(|| ExecError::Failed {
        cmdlet: "Get-Help".into(),
        message: format!(
            "Get-Help could not find {name} in a help file in this session{}",
            crate::suggest(&name, crate::cmdlets::names())
                .map(|s| format!(". Did you mean {s}?"))
                .unwrap_or_default()
        ),
    })?;
    Ok(vec![help_obj(c, s, view(b))])
}

fn view(b: &Bound) -> &'static str {
    let on = |n: &str| {
        b.named
            .iter()
            .any(|(x, v)| x.eq_ignore_ascii_case(n) && !matches!(v, Some(Expr::Bool(false))))
    };
    if on("Full") {
        "Full"
    } else if on("Detailed") {
        "Detailed"
    } else if on("Examples") {
        "Examples"
    } else {
        ""
    }
}

fn help_obj(c: &Cmdlet, s: &Session, view: &str) -> Obj {
    let docs = param_docs(c);
    let def = def_of(c);
    let mut synopsis = c.help.to_string();
    let mut not_enforced = vec![];
    let mut notes = vec![];
    if let Some(def) = def {
        if !def.is_enforced() {
            synopsis.push_str(&format!(
                " Not enforced by confab yet: none of the settings of {} take effect.",
                def.noun
            ));
        }
        for pd in def.not_enforced() {
            // "-Name" where it is a parameter of this cmdlet, else the property name
            let is_param = c.params.iter().any(|x| x.name == pd.name);
            not_enforced.push(if is_param {
                format!("-{}", pd.name)
            } else {
                pd.name.to_string()
            });
            notes.push(format!("{}: {}", pd.name, pd.enforcement.note()));
        }
    }
    let params: Vec<Value> = docs
        .iter()
        .map(|d| {
            json!({
                "Name": d.name,
                "Type": d.ty,
                "Required": d.required,
                "Position": d.position.map_or("Named".to_string(), |p| p.to_string()),
                "DefaultValue": d.default,
                "PipelineInput": d.pipeline,
                "Wildcards": d.wildcards,
                "Description": d.description,
            })
        })
        .collect();
    let examples: Vec<Value> = examples(c)
        .into_iter()
        .map(|(code, rem)| json!({"Code": code, "Remarks": rem}))
        .collect();
    let aliases: Vec<&str> = ALIASES
        .iter()
        .filter(|(_, t)| *t == c.name)
        .map(|(a, _)| *a)
        .collect();
    let type_name = if view.is_empty() {
        HELP_TYPE.to_string()
    } else {
        format!("{HELP_TYPE}#{view}")
    };
    Obj::record(
        &type_name,
        vec![
            ("Name".into(), json!(c.name)),
            ("Synopsis".into(), json!(synopsis)),
            ("Syntax".into(), json!(syntax(c, &docs))),
            ("Parameters".into(), Value::Array(params)),
            ("Mandatory".into(), json!(c.mandatory)),
            ("Roles".into(), json!(rbac_note(c, s))),
            ("NotEnforced".into(), json!(not_enforced)),
            ("NotEnforcedWhy".into(), json!(notes)),
            ("Examples".into(), Value::Array(examples)),
            ("Aliases".into(), json!(aliases)),
        ],
    )
}

fn indent(out: &mut String, text: &str, by: usize) {
    for line in text.lines() {
        out.push_str(&" ".repeat(by));
        out.push_str(line);
        out.push('\n');
    }
}

/// A help object as PowerShell prints it in the view its type names.
pub fn render(o: &Obj) -> String {
    let Obj::Record { type_name, .. } = o else {
        return String::new();
    };
    let view = type_name.split('#').nth(1).unwrap_or("");
    let get = |k: &str| o.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str| display(&get(k));
    let name = text("Name");
    let mut out = String::new();
    out.push_str(&format!("\nNAME\n    {name}\n\nSYNOPSIS\n"));
    indent(&mut out, &text("Synopsis"), 4);
    let examples = |out: &mut String| {
        out.push('\n');
        for (i, e) in get("Examples").as_array().into_iter().flatten().enumerate() {
            out.push_str(&format!(
                "    -------------------------- EXAMPLE {} --------------------------\n\n    PS C:\\> {}\n\n",
                i + 1,
                display(&e["Code"])
            ));
            indent(out, &display(&e["Remarks"]), 4);
            out.push('\n');
        }
    };
    if view == "Examples" {
        examples(&mut out);
        return out;
    }
    out.push_str("\nSYNTAX\n");
    indent(&mut out, &text("Syntax"), 4);
    let params = get("Parameters");
    let params = params.as_array().cloned().unwrap_or_default();
    out.push_str("\nPARAMETERS\n");
    for prm in &params {
        let ty = display(&prm["Type"]);
        let head = if ty == "SwitchParameter" {
            format!("-{}", display(&prm["Name"]))
        } else {
            format!("-{} <{ty}>", display(&prm["Name"]))
        };
        let required = prm["Required"].as_bool().unwrap_or(false);
        match view {
            "" => out.push_str(&format!(
                "    {head}\n        {}; default: {}\n",
                if required { "Mandatory" } else { "Optional" },
                display(&prm["DefaultValue"])
            )),
            _ => {
                out.push_str(&format!("    {head}\n"));
                indent(&mut out, &display(&prm["Description"]), 8);
                if view == "Full" {
                    out.push('\n');
                    for (label, v) in [
                        ("Required?", display(&prm["Required"]).to_lowercase()),
                        ("Position?", display(&prm["Position"]).to_lowercase()),
                        ("Default value", display(&prm["DefaultValue"])),
                        (
                            "Accept pipeline input?",
                            display(&prm["PipelineInput"]).to_lowercase(),
                        ),
                        (
                            "Accept wildcard characters?",
                            display(&prm["Wildcards"]).to_lowercase(),
                        ),
                    ] {
                        out.push_str(&format!("        {label:<28} {v}\n"));
                    }
                } else {
                    out.push_str(&format!(
                        "        {}; default: {}\n",
                        if required { "Mandatory" } else { "Optional" },
                        display(&prm["DefaultValue"])
                    ));
                }
                out.push('\n');
            }
        }
    }
    if params.is_empty() {
        out.push_str("    (none)\n");
    }
    let aliases = get("Aliases");
    if aliases.as_array().is_some_and(|a| !a.is_empty()) {
        out.push_str("\nALIASES\n");
        indent(&mut out, display(&aliases).trim_matches(['{', '}']), 4);
    }
    out.push_str("\nROLES\n");
    indent(&mut out, &text("Roles"), 4);
    let why = get("NotEnforcedWhy");
    let why = why.as_array().cloned().unwrap_or_default();
    if !why.is_empty() && view != "Detailed" {
        out.push_str("\nNOT ENFORCED\n");
        if view == "Full" {
            for w in &why {
                indent(&mut out, &display(w), 4);
            }
        } else {
            // one line a script can look for, then where to read why
            out.push_str(&format!(
                "NotEnforced: {}\n    (set, they have no effect in confab; Get-Help {name} -Full says why)\n",
                display(&get("NotEnforced")).trim_matches(['{', '}'])
            ));
        }
    }
    match view {
        "Full" | "Detailed" => {
            out.push_str("\nEXAMPLES");
            examples(&mut out);
        }
        _ => out.push_str(&format!(
            "\nREMARKS\n    To see the examples, type: \"Get-Help {name} -Examples\".\n    For more information, type: \"Get-Help {name} -Detailed\".\n    For technical information, type: \"Get-Help {name} -Full\".\n\n"
        )),
    }
    out
}

// ----- Get-Command -----------------------------------------------------------------------------

fn patterns(b: &Bound, s: &Session, name: &str) -> Result<Option<Vec<String>>, ExecError> {
    let e = match b.get(name) {
        Some(e) => e,
        None if name == "Name" => match b.positional.first() {
            Some(e) => *e,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    Ok(Some(match s.literal(e)? {
        Value::Array(a) => a.iter().map(display).collect(),
        v => vec![display(&v)],
    }))
}

fn check_command(b: &Bound, s: &Session) -> Result<(), ExecError> {
    for n in ["Name", "Verb", "Noun"] {
        let e = b.get(n).or_else(|| {
            (n == "Name")
                .then(|| b.positional.first().copied())
                .flatten()
        });
        if e.is_some_and(|e| !matches!(e, Expr::Var(_) | Expr::Sub(_))) {
            patterns(b, s, n)?;
        }
    }
    Ok(())
}

fn get_command(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let names = patterns(b, s, "Name")?;
    let verbs = patterns(b, s, "Verb")?;
    let nouns = patterns(b, s, "Noun")?;
    let any = |pats: &Option<Vec<String>>, text: &str| {
        pats.as_ref()
            .is_none_or(|ps| ps.iter().any(|p| wildcard(p, text, false)))
    };
    let mut out = vec![];
    // aliases first when they are named (PowerShell lists them as "fl -> Format-List")
    if verbs.is_none() && nouns.is_none() {
        if let Some(ns) = &names {
            for (alias, target) in ALIASES {
                if ns.iter().any(|p| wildcard(p, alias, false)) && !ns.iter().all(|p| p == "*") {
                    out.push(Obj::record(
                        "CommandInfo",
                        vec![
                            ("CommandType".into(), json!("Alias")),
                            ("Name".into(), json!(format!("{alias} -> {target}"))),
                            ("Allowed".into(), json!(allowed(target, s))),
                        ],
                    ));
                }
            }
        }
    }
    for c in registry() {
        let (verb, noun) = c.name.split_once('-').unwrap_or((c.name, ""));
        if any(&names, c.name) && any(&verbs, verb) && any(&nouns, noun) {
            out.push(Obj::record(
                "CommandInfo",
                vec![
                    ("CommandType".into(), json!("Cmdlet")),
                    ("Name".into(), json!(c.name)),
                    ("Allowed".into(), json!(allowed(c.name, s))),
                ],
            ));
        }
    }
    out.sort_by(|a, b| {
        let k = |o: &Obj| display(o.get("Name").unwrap_or(&Value::Null)).to_lowercase();
        k(a).cmp(&k(b))
    });
    // a name without wildcards that matches nothing is an error, as in PowerShell
    if out.is_empty() {
        if let Some(n) = names
            .iter()
            .flatten()
            .find(|n| !n.contains(['*', '?', '[']))
        {
            return Err(ExecError::UnknownCmdlet {
                name: n.clone(),
                suggestion: crate::suggest(n, crate::cmdlets::names()).map(str::to_string),
            });
        }
    }
    Ok(out)
}
