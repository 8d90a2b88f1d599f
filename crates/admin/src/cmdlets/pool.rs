//! The pool as administrators see it (docs/pool.md): `Get-CsPool` and `Get-CsComputer`
//! (Lync's names: the pool of a site and its front-end computers, with confab's live
//! state), `Get-CsUserPoolInfo` (where a user is served), confab's own
//! `Get-CsUserRegistration` (a user's registered endpoints: contact, transport, source,
//! user agent, expiry, the front end holding it) and `Get-CsUserSession` (Skype for
//! Business Online's name: a user's live calls, subscriptions and meeting seats). All read the central store, so any
//! shell sees the whole pool; nothing here changes anything.

use super::*;
use confab_store::FrontEnd;

pub(super) fn cmdlets() -> Vec<FixedCmdlet> {
    vec![
        (
            "Get-CsPool",
            &["Identity"],
            &[],
            false,
            false,
            "Shows the pool of front ends of each site (Identity: the site, or Global), its computers and how many are up. One pool per site: front ends share the central store.",
            get_pool,
        ),
        (
            "Get-CsComputer",
            &["Identity", "Pool"],
            &[],
            false,
            false,
            "Shows the front ends (Identity: each one's [pool] name): address, pool, State (Active, Unavailable: silent for 5 s, Stopped, Isolated: cut off from the store), last heartbeat, start, version and load (registrations, subscriptions, transactions, meetings).",
            get_computer,
        ),
        (
            "Get-CsUserPoolInfo",
            &["Identity"],
            &["Identity"],
            true,
            false,
            "Shows where a user is served: PrimaryPoolFqdn (the pool of the user's site), and the front ends holding the user's registrations now.",
            get_user_pool_info,
        ),
        (
            "Get-CsUserSession",
            &["Identity"],
            &["Identity"],
            true,
            false,
            "Shows a user's live sessions pool-wide, as each front end reports them every 2 s: Kind (Call, Subscription, Meeting), Peer (the other party, the presentity watched, the meeting's key), Since (UTC), FrontEnd.",
            get_user_session,
        ),
        (
            "Get-CsUserRegistration",
            &["Identity"],
            &["Identity"],
            true,
            false,
            "confab's: a user's registered endpoints, pool-wide: Contact, Transport, SourceAddress, UserAgent, Expires (UTC), FrontEnd, Instance.",
            get_user_registration,
        ),
    ]
}

pub(super) fn front_ends(b: &Bound, s: &Session) -> Result<Vec<FrontEnd>, ExecError> {
    s.store.front_ends().map_err(|e| store_err(b, e))
}

/// The pools `Get-CsPool` lists: one per site of the front ends, sorted.
pub(super) fn pools_of(all: &[FrontEnd]) -> Vec<String> {
    let mut pools: Vec<String> = all.iter().map(|f| f.pool().to_string()).collect();
    pools.sort();
    pools.dedup();
    pools
}

fn get_pool(b: &Bound, s: &mut Session, _input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let all = front_ends(b, s)?;
    let now = now_ms();
    let mut pools = pools_of(&all);
    if let Some(id) = text_arg(b, s, "Identity")? {
        pools.retain(|p| p.eq_ignore_ascii_case(&id));
        if pools.is_empty() {
            return Err(failed(b, format!("no pool {id}: Get-CsPool lists them")));
        }
    }
    Ok(pools
        .into_iter()
        .map(|p| {
            let members: Vec<&FrontEnd> = all.iter().filter(|f| f.pool() == p).collect();
            let up = members.iter().filter(|f| f.alive(now)).count();
            Obj::record(
                "Pool",
                vec![
                    ("Identity".into(), json!(p)),
                    ("Site".into(), json!(p)),
                    (
                        "Services".into(),
                        json!(["Registrar", "UserServer", "ConferencingServer", "WebServer"]),
                    ),
                    (
                        "Computers".into(),
                        json!(members.iter().map(|f| f.name.clone()).collect::<Vec<_>>()),
                    ),
                    ("ActiveComputers".into(), json!(up)),
                ],
            )
        })
        .collect())
}

fn get_computer(
    b: &Bound,
    s: &mut Session,
    _input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let mut all = front_ends(b, s)?;
    let now = now_ms();
    if let Some(id) = text_arg(b, s, "Identity")? {
        all.retain(|f| f.name.eq_ignore_ascii_case(&id));
        if all.is_empty() {
            return Err(failed(
                b,
                format!("no front end {id}: Get-CsComputer lists them"),
            ));
        }
    }
    if let Some(p) = text_arg(b, s, "Pool")? {
        all.retain(|f| f.pool().eq_ignore_ascii_case(&p));
    }
    Ok(all
        .iter()
        .map(|f| {
            let load: serde_json::Value = serde_json::from_str(&f.load).unwrap_or(json!({}));
            let n = |k: &str| load.get(k).cloned().unwrap_or(json!(0));
            Obj::record(
                "Computer",
                vec![
                    ("Identity".into(), json!(f.name)),
                    ("Pool".into(), json!(f.pool())),
                    ("Fqdn".into(), json!(f.address)),
                    ("State".into(), json!(f.shown_state(now))),
                    (
                        "LastHeartbeat".into(),
                        json!(crate::format_time(f.heartbeat_at)),
                    ),
                    ("Started".into(), json!(crate::format_time(f.started_at))),
                    ("Version".into(), json!(f.version)),
                    ("Registrations".into(), n("registrations")),
                    ("Subscriptions".into(), n("subscriptions")),
                    ("Transactions".into(), n("transactions")),
                    ("Meetings".into(), n("meetings")),
                ],
            )
        })
        .collect())
}

fn get_user_pool_info(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let all = front_ends(b, s)?;
    let mut out = vec![];
    for u in super::forwarding::users(b, s, input)? {
        let regs = registrations_of(b, s, &u)?;
        let mut serving: Vec<String> = regs.iter().map(|r| r.front_end.clone()).collect();
        serving.sort();
        serving.dedup();
        // the pool of the front ends serving the user, else of the first front end known
        let pool = serving
            .first()
            .and_then(|n| all.iter().find(|f| f.name == *n))
            .or(all.first())
            .map(|f| f.pool().to_string())
            .unwrap_or_else(|| "Global".into());
        out.push(Obj::record(
            "UserPoolInfo",
            vec![
                ("Identity".into(), json!(u.address())),
                ("PrimaryPoolFqdn".into(), json!(pool)),
                ("BackupPoolFqdn".into(), json!(null)),
                ("RegisteredFrontEnds".into(), json!(serving)),
            ],
        ));
    }
    Ok(out)
}

fn get_user_registration(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let mut out = vec![];
    for u in super::forwarding::users(b, s, input)? {
        for r in registrations_of(b, s, &u)? {
            let (transport, source) = r.source.split_once(':').unwrap_or(("", &r.source));
            out.push(Obj::record(
                "UserRegistration",
                vec![
                    ("Identity".into(), json!(u.address())),
                    ("Contact".into(), json!(r.contact)),
                    ("Transport".into(), json!(transport.to_ascii_uppercase())),
                    ("SourceAddress".into(), json!(source)),
                    ("UserAgent".into(), json!(r.user_agent)),
                    ("Expires".into(), json!(crate::format_time(r.expires_at))),
                    ("FrontEnd".into(), json!(r.front_end)),
                    ("Instance".into(), json!(r.instance)),
                ],
            ));
        }
    }
    Ok(out)
}

fn get_user_session(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let mut out = vec![];
    for u in super::forwarding::users(b, s, input)? {
        let sessions = s
            .store
            .live_sessions(&u.address(), now_ms())
            .map_err(|e| store_err(b, e))?;
        for l in sessions {
            out.push(Obj::record(
                "UserSession",
                vec![
                    ("Identity".into(), json!(u.address())),
                    ("Kind".into(), json!(l.kind)),
                    ("Peer".into(), json!(l.peer)),
                    ("Since".into(), json!(crate::format_time(l.since))),
                    ("FrontEnd".into(), json!(l.front_end)),
                ],
            ));
        }
    }
    Ok(out)
}

/// The user's live bindings, pool-wide.
fn registrations_of(
    b: &Bound,
    s: &Session,
    u: &confab_store::User,
) -> Result<Vec<confab_store::Registration>, ExecError> {
    s.store
        .registrations(Some(&u.address()), now_ms())
        .map_err(|e| store_err(b, e))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
