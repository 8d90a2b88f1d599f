//! Simple URLs (issue #18 part 2): `New-CsSimpleUrlEntry` and `New-CsSimpleUrl` make the
//! in-memory objects that `Set-`/`New-CsSimpleUrlConfiguration -SimpleUrl` add (the generic
//! ObjList machinery, as `New-CsStaticRoute` does for `-Route`), and every document written
//! is checked with Lync's rules (confab_policy::simple_url) and stored in canonical form.

use super::*;
use confab_policy::simple_url::{
    check_configuration, check_simple_url, component, domain, parse_url,
};
use confab_policy::{SimpleUrl, SimpleUrlConfiguration, SimpleUrlEntry};

pub(super) const SIMPLE_URL_CONFIG: &str = "CsSimpleUrlConfiguration";

/// The fixed cmdlets: (name, parameters, mandatory, pipeline input, changes, help, run).
pub(super) fn cmdlets() -> Vec<FixedCmdlet> {
    vec![
        (
            "New-CsSimpleUrlEntry",
            &["Url"],
            &["Url"],
            false,
            false,
            "Makes a URL (https://<fqdn>[/<path>], no port) for New-CsSimpleUrl -SimpleUrlEntry.",
            new_entry,
        ),
        (
            "New-CsSimpleUrl",
            &["Component", "Domain", "SimpleUrlEntry", "ActiveUrl"],
            &["Component", "Domain"],
            false,
            false,
            "Makes a simple URL for Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=…}: -Component Meet (-Domain <SIP domain>), Dialin or Cscp (the Control Panel, also Admin; -Domain *), -SimpleUrlEntry (made by New-CsSimpleUrlEntry) and -ActiveUrl (one of the entries).",
            new_simple_url,
        ),
    ]
}

/// Checks the literal arguments of the fixed cmdlets before the script runs.
pub(super) fn check(b: &Bound, s: &Session) -> Option<Result<(), ExecError>> {
    let lit = |name: &str| -> Result<Option<String>, ExecError> {
        match b.get(name).filter(|e| !has_var(e)) {
            Some(e) => Ok(s.literal(e)?.as_str().map(str::to_string)),
            None => Ok(None),
        }
    };
    match b.def.name {
        "New-CsSimpleUrlEntry" => Some((|| {
            if let Some(u) = lit("Url")? {
                parse_url(u.trim()).map_err(|m| bad(b, "Url", m))?;
            }
            Ok(())
        })()),
        "New-CsSimpleUrl" => Some((|| {
            if let Some(c) = lit("Component")? {
                let c = component(&c).map_err(|m| bad(b, "Component", m))?;
                if let Some(d) = lit("Domain")? {
                    domain(c, &d).map_err(|m| bad(b, "Domain", m))?;
                }
            }
            if let Some(u) = lit("ActiveUrl")? {
                parse_url(u.trim()).map_err(|m| bad(b, "ActiveUrl", m))?;
            }
            Ok(())
        })()),
        _ => None,
    }
}

fn new_entry(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let url = text_arg(b, s, "Url")?
        .unwrap_or_default()
        .trim()
        .to_string();
    parse_url(&url).map_err(|m| bad(b, "Url", m))?;
    Ok(vec![Obj::record(
        "SimpleUrlEntry",
        vec![("Url".into(), json!(url))],
    )])
}

fn new_simple_url(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let raw_component = text_arg(b, s, "Component")?.unwrap_or_default();
    let c = component(&raw_component).map_err(|m| bad(b, "Component", m))?;
    let d = domain(c, &text_arg(b, s, "Domain")?.unwrap_or_default())
        .map_err(|m| bad(b, "Domain", m))?;
    // -SimpleUrlEntry is a list modifier: $e, $e1,$e2 or @{Add=$e}
    let entries = match b.get("SimpleUrlEntry") {
        Some(e) => {
            let prop = Prop {
                name: "SimpleUrlEntry",
                ty: PropType::ObjList {
                    key: "Url",
                    made_by: "New-CsSimpleUrlEntry",
                },
                default: json!([]),
            };
            coerce(&prop, &s.literal(e)?, &json!([])).map_err(|m| bad(b, "SimpleUrlEntry", m))?
        }
        None => json!([]),
    };
    let entries: Vec<SimpleUrlEntry> = serde_json::from_value(entries).map_err(|_| {
        bad(
            b,
            "SimpleUrlEntry",
            "SimpleUrlEntry entries are made with New-CsSimpleUrlEntry",
        )
    })?;
    let mut u = SimpleUrl {
        component: c.to_string(),
        domain: d,
        simple_url_entry: entries,
        active_url: text_arg(b, s, "ActiveUrl")?.unwrap_or_default(),
    };
    check_simple_url(&mut u).map_err(|m| failed(b, m))?;
    Ok(vec![simple_url_obj(&u)])
}

fn simple_url_obj(u: &SimpleUrl) -> Obj {
    Obj::record(
        "SimpleUrl",
        vec![
            ("Component".into(), json!(u.component)),
            ("Domain".into(), json!(u.domain)),
            (
                "SimpleUrlEntry".into(),
                serde_json::to_value(&u.simple_url_entry).unwrap_or(json!([])),
            ),
            ("ActiveUrl".into(), json!(u.active_url)),
        ],
    )
}

/// A simple URL configuration about to be stored (by Set-, New- or Import-): checked with
/// Lync's rules, and its list rewritten in canonical form.
pub(super) fn check_own(k: &Kind, body: &mut Map<String, Value>) -> Result<(), String> {
    if k.noun != SIMPLE_URL_CONFIG {
        return Ok(());
    }
    let (mut c, bad) = SimpleUrlConfiguration::from_body(body);
    if let Some(name) = bad.first() {
        return Err(format!(
            "{name}: entries are made with New-CsSimpleUrl and New-CsSimpleUrlEntry"
        ));
    }
    check_configuration(&mut c)?;
    body.extend(c.to_body());
    Ok(())
}

/// [`check_own`] for Set-/New-, with warnings: a configuration without a Dialin URL, and a
/// Meet URL for a domain no user is in (the shell does not know the domains the server is
/// configured for: any domain name is accepted).
pub(super) fn check_document(
    b: &Bound,
    s: &mut Session,
    k: &Kind,
    id: &str,
    body: &mut Map<String, Value>,
) -> Result<(), ExecError> {
    if k.noun != SIMPLE_URL_CONFIG {
        return Ok(());
    }
    check_own(k, body).map_err(|m| bad(b, "SimpleUrl", m))?;
    let c = SimpleUrlConfiguration::from_body(body).0;
    if !c.simple_url.is_empty() && !c.simple_url.iter().any(|u| u.component == "Dialin") {
        s.warn(format!(
            "{}: {id} has no Dialin URL: Lync needs one (New-CsSimpleUrl -Component Dialin -Domain *)",
            b.def.name
        ));
    }
    for u in c.simple_url.iter().filter(|u| u.component == "Meet") {
        let users = s
            .store
            .list_users(Some(&u.domain))
            .map_err(|e| store_err(b, e))?;
        if users.is_empty() {
            s.warn(format!(
                "{}: no user is in domain {}: is it one of the server's SIP domains?",
                b.def.name, u.domain
            ));
        }
    }
    Ok(())
}
