//! confab's own cmdlets for users' call forwarding, in the place of Lync's SEFAUtil (a
//! resource-kit tool, not a cmdlet): `Get-CsUserCallForwarding` shows a user's settings,
//! `Set-CsUserCallForwarding` changes them, checked against the user's policies by
//! `crate::forwarding::check_forwarding` (the same check as the users' own REST route).
//! User scopes (OU) hold as for Set-CsUser; changes are audited.

use super::*;
use confab_voice::forwarding::{TEAM_DELAY_SECS, UNANSWERED_SECS};
use confab_voice::{CallForwarding, ForwardTarget};

/// The parameters that take a target (`tel:+…`, `sip:…`, `voicemail`; `$null` clears).
const TARGETS: &[&str] = &["Immediate", "SimulRing", "Unanswered", "Busy"];

pub(super) fn cmdlets() -> Vec<FixedCmdlet> {
    vec![
        (
            "Get-CsUserCallForwarding",
            &["Identity"],
            &["Identity"],
            true,
            false,
            "confab's (SEFAUtil's job in Lync): shows a user's call forwarding: Immediate, SimulRing, Team, TeamDelay, Unanswered, UnansweredAfter, Busy.",
            get_forwarding,
        ),
        (
            "Set-CsUserCallForwarding",
            &[
                "Identity",
                "Immediate",
                "SimulRing",
                "Team",
                "TeamDelay",
                "Unanswered",
                "UnansweredAfter",
                "Busy",
                "Clear",
            ],
            &["Identity"],
            true,
            true,
            "confab's (SEFAUtil's job in Lync): changes a user's call forwarding: -Immediate/-SimulRing/-Unanswered/-Busy <tel:+digits|sip:user@domain|voicemail> ($null clears one), -Team <user list> ($null clears), -TeamDelay <0-60 s>, -UnansweredAfter <5-60 s>; -Clear starts from the defaults. Checked against the user's CsVoicePolicy (AllowCallForwarding, AllowSimulRing, EnableTeamCall), EnterpriseVoiceEnabled and HostedVoiceMail.",
            set_forwarding,
        ),
    ]
}

pub(super) fn is_forwarding(name: &str) -> bool {
    name == "Get-CsUserCallForwarding" || name == "Set-CsUserCallForwarding"
}

/// What can be checked before the script runs: targets, team members and times given
/// literally.
pub(super) fn check(b: &Bound, s: &Session) -> Result<(), ExecError> {
    for p in TARGETS {
        if let Some(e) = b.get(p).filter(|e| !has_var(e)) {
            target(b, p, &s.literal(e)?)?;
        }
    }
    if let Some(e) = b.get("Team").filter(|e| !has_var(e)) {
        team(b, &s.literal(e)?)?;
    }
    for p in ["TeamDelay", "UnansweredAfter"] {
        if let Some(e) = b.get(p).filter(|e| !has_var(e)) {
            seconds(b, p, &s.literal(e)?)?;
        }
    }
    Ok(())
}

fn target(b: &Bound, param: &str, v: &Value) -> Result<Option<ForwardTarget>, ExecError> {
    match v {
        Value::Null => Ok(None),
        Value::String(t) if t.trim().is_empty() => Ok(None),
        Value::String(t) => ForwardTarget::parse(t)
            .map(Some)
            .map_err(|m| bad(b, param, m)),
        // digits typed bare: the shell reads a number
        Value::Number(n) => Err(bad(
            b,
            param,
            ForwardTarget::parse(&n.to_string())
                .err()
                .unwrap_or_default(),
        )),
        other => Err(bad(
            b,
            param,
            format!(
                "'{}' is not a target: give tel:+<digits>, sip:user@domain or voicemail",
                crate::object::display(other)
            ),
        )),
    }
}

/// Team members: one address or a list; `$null` (or an empty list) clears.
fn team(b: &Bound, v: &Value) -> Result<Vec<String>, ExecError> {
    let items: Vec<&Value> = match v {
        Value::Null => vec![],
        Value::Array(a) => a.iter().collect(),
        one => vec![one],
    };
    let mut out = vec![];
    for i in items {
        let m = i.as_str().ok_or_else(|| {
            bad(
                b,
                "Team",
                format!("'{}' is not a user address", crate::object::display(i)),
            )
        })?;
        let m = m.trim();
        let bare = m
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("sip:"))
            .map_or(m, |_| &m[4..]);
        match ForwardTarget::parse(&format!("sip:{bare}")) {
            Ok(ForwardTarget::User(u)) => out.push(u),
            _ => {
                return Err(bad(
                    b,
                    "Team",
                    format!("'{m}' is not a user address (sip:user@domain)"),
                ))
            }
        }
    }
    Ok(out)
}

fn seconds(b: &Bound, param: &'static str, v: &Value) -> Result<u32, ExecError> {
    let range = if param == "TeamDelay" {
        TEAM_DELAY_SECS
    } else {
        UNANSWERED_SECS
    };
    let prop = Prop {
        name: param,
        ty: PropType::Int {
            min: i64::from(*range.start()),
            max: i64::from(*range.end()),
        },
        default: Value::Null,
    };
    let n = coerce(&prop, v, &Value::Null).map_err(|m| bad(b, param, m))?;
    Ok(n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
}

fn show(t: &Option<ForwardTarget>) -> Value {
    t.as_ref().map_or(Value::Null, |t| json!(t.to_string()))
}

fn forwarding_obj(u: &confab_store::User, f: &CallForwarding) -> Obj {
    Obj::record(
        "CsUserCallForwarding",
        vec![
            ("Identity".into(), json!(format!("sip:{}", u.address()))),
            ("Immediate".into(), show(&f.immediate)),
            ("SimulRing".into(), show(&f.simul_ring)),
            (
                "Team".into(),
                json!(f
                    .team
                    .iter()
                    .map(|m| format!("sip:{m}"))
                    .collect::<Vec<_>>()),
            ),
            ("TeamDelay".into(), json!(f.team_delay_secs)),
            ("Unanswered".into(), show(&f.unanswered)),
            ("UnansweredAfter".into(), json!(f.unanswered_after_secs)),
            ("Busy".into(), show(&f.busy)),
        ],
    )
}

pub(super) fn users(
    b: &Bound,
    s: &Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<confab_store::User>, ExecError> {
    let mut out = vec![];
    for (u, d) in user_targets(b, s, input)? {
        let user = s
            .store
            .get_user(&u, &d)
            .map_err(|e| store_err(b, e))?
            .ok_or_else(|| failed(b, format!("no such user: {u}@{d}")))?;
        out.push(user);
    }
    Ok(out)
}

fn get_forwarding(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    Ok(users(b, s, input)?
        .iter()
        .map(|u| {
            forwarding_obj(
                u,
                &CallForwarding::from_stored(u.call_forwarding.as_deref()),
            )
        })
        .collect())
}

fn set_forwarding(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    // every value and every user's new settings are checked before the first is stored
    let mut targets: Vec<(&str, Option<ForwardTarget>)> = vec![];
    for p in TARGETS {
        if let Some(e) = b.get(p) {
            targets.push((p, target(b, p, &s.literal(e)?)?));
        }
    }
    let team = match b.get("Team") {
        Some(e) => Some(team(b, &s.literal(e)?)?),
        None => None,
    };
    let mut times: Vec<(&str, u32)> = vec![];
    for p in ["TeamDelay", "UnansweredAfter"] {
        if let Some(e) = b.get(p) {
            times.push((p, seconds(b, p, &s.literal(e)?)?));
        }
    }
    let clear = b.has("Clear");
    let mut changes = vec![];
    for u in users(b, s, input)? {
        let mut f = if clear {
            CallForwarding::default()
        } else {
            CallForwarding::from_stored(u.call_forwarding.as_deref())
        };
        for (p, t) in &targets {
            let slot = match *p {
                "Immediate" => &mut f.immediate,
                "SimulRing" => &mut f.simul_ring,
                "Unanswered" => &mut f.unanswered,
                _ => &mut f.busy,
            };
            *slot = t.clone();
        }
        if let Some(t) = &team {
            f.team = t.clone();
        }
        for (p, n) in &times {
            if *p == "TeamDelay" {
                f.team_delay_secs = *n;
            } else {
                f.unanswered_after_secs = *n;
            }
        }
        f.normalize_team();
        crate::forwarding::check_forwarding(s.store, &u.address(), &f)
            .map_err(|m| failed(b, format!("sip:{}: {m}", u.address())))?;
        changes.push((u, f));
    }
    for (u, f) in changes {
        let json = (!f.is_default()).then(|| f.to_json());
        s.store
            .set_call_forwarding(&u.username, &u.domain, json.as_deref())
            .map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}
