//! `confab status` (the store in use and each front end of the pool with its load, from
//! the heartbeats in the store) and the registered endpoints `confab user show` lists.
//! Both read the store only: they work while the servers run, from any machine that
//! reaches the store.

use confab_store::pool::DEAD_AFTER_MS;
use confab_store::{FrontEnd, Registration, Store};
use serde_json::{json, Map, Value};

/// The load counters a front end's heartbeat carries, in the order `status` shows them.
pub const COUNTERS: &[&str] = &[
    "registrations",
    "subscriptions",
    "connections",
    "calls",
    "transactions",
    "meetings",
];

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-12-07 15:04:05 UTC`
fn utc(ms: i64) -> String {
    format!("{} UTC", confab_admin::format_time(ms))
}

/// The counters of a heartbeat's JSON `load`: `None` for one it does not carry (a front
/// end of an older version) or a load that is not JSON.
fn counters(fe: &FrontEnd) -> Vec<(&'static str, Option<u64>)> {
    let load: Value = serde_json::from_str(&fe.load).unwrap_or(Value::Null);
    COUNTERS
        .iter()
        .map(|k| (*k, load.get(k).and_then(Value::as_u64)))
        .collect()
}

/// `confab status`: `store` names the store (path or redacted URL).
pub fn status(store: &Store, store_name: &str, backend: &str, as_json: bool) -> anyhow::Result<()> {
    let now = now_ms();
    let fes = store.front_ends()?;
    let endpoints = store.registrations(None, now)?.len();
    // over the active front ends; `None` for a counter none of them reports
    let mut totals: Vec<(&str, Option<u64>)> = COUNTERS.iter().map(|k| (*k, None)).collect();
    for fe in fes.iter().filter(|f| f.shown_state(now) == "Active") {
        for (i, (_, v)) in counters(fe).into_iter().enumerate() {
            if let Some(v) = v {
                totals[i].1 = Some(totals[i].1.unwrap_or(0) + v);
            }
        }
    }
    let active = fes.iter().filter(|f| f.alive(now)).count();
    if as_json {
        let front_ends: Vec<Value> = fes
            .iter()
            .map(|f| {
                let load: Map<String, Value> = counters(f)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.map_or(Value::Null, Value::from)))
                    .collect();
                json!({
                    "name": f.name,
                    "address": f.address,
                    "pool": f.pool(),
                    "state": f.shown_state(now),
                    "last_heartbeat": utc(f.heartbeat_at),
                    "heartbeat_age_ms": now - f.heartbeat_at,
                    "started": utc(f.started_at),
                    "version": f.version,
                    "load": load,
                })
            })
            .collect();
        let totals: Map<String, Value> = totals
            .iter()
            .map(|(k, v)| (k.to_string(), v.map_or(Value::Null, Value::from)))
            .collect();
        let out = json!({
            "store": store_name,
            "backend": backend,
            "front_ends": front_ends,
            "active_front_ends": active,
            "totals": totals,
            "registered_endpoints": endpoints,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("Store: {store_name} ({backend})");
    if fes.is_empty() {
        println!("No front end has started on this store yet (`confab serve` writes a heartbeat every second).");
    } else {
        println!(
            "Front ends: {} ({active} active; a heartbeat older than {} s is Unavailable)",
            fes.len(),
            DEAD_AFTER_MS / 1000
        );
        let mut head = format!(
            "{:<24} {:<22} {:<11} {:<35}",
            "NAME", "ADDRESS", "STATE", "LAST HEARTBEAT"
        );
        for k in COUNTERS {
            head.push_str(&format!(" {:>13}", k.to_ascii_uppercase()));
        }
        println!("{}", head.trim_end());
        for f in &fes {
            let age = (now - f.heartbeat_at).max(0);
            let mut line = format!(
                "{:<24} {:<22} {:<11} {:<35}",
                f.name,
                if f.address.is_empty() {
                    "-"
                } else {
                    &f.address
                },
                f.shown_state(now),
                format!("{} ({:.1} s ago)", utc(f.heartbeat_at), age as f64 / 1000.0),
            );
            for (_, v) in counters(f) {
                line.push_str(&format!(
                    " {:>13}",
                    v.map_or("-".to_string(), |v| v.to_string())
                ));
            }
            println!("{}", line.trim_end());
        }
        let mut line = format!("{:<24} {:<22} {:<11} {:<35}", "TOTAL (active)", "", "", "");
        for (_, v) in &totals {
            line.push_str(&format!(
                " {:>13}",
                v.map_or("-".to_string(), |v| v.to_string())
            ));
        }
        println!("{}", line.trim_end());
    }
    println!("Registered endpoints in the store: {endpoints}");
    Ok(())
}

/// `udp:127.0.0.1:5060` → (`UDP`, `127.0.0.1:5060`)
fn transport_and_source(r: &Registration) -> (String, String) {
    match r.source.split_once(':') {
        Some((t, s)) => (t.to_ascii_uppercase(), s.to_string()),
        None => (String::new(), r.source.clone()),
    }
}

/// A user's registered endpoints as JSON objects.
pub fn endpoints_json(regs: &[Registration]) -> Vec<Value> {
    regs.iter()
        .map(|r| {
            let (transport, source) = transport_and_source(r);
            json!({
                "contact": r.contact,
                "transport": transport,
                "source_address": source,
                "user_agent": r.user_agent,
                "expires": utc(r.expires_at),
                "front_end": r.front_end,
                "instance": r.instance,
            })
        })
        .collect()
}

/// A user's live sessions (calls, subscriptions, meeting seats) for JSON.
pub fn sessions_json(sessions: &[confab_store::LiveSession]) -> Vec<Value> {
    sessions
        .iter()
        .map(|l| {
            json!({
                "kind": l.kind,
                "peer": l.peer,
                "since": utc(l.since),
                "front_end": l.front_end,
            })
        })
        .collect()
}

/// A user's live sessions as `confab user show` prints them.
pub fn print_sessions(sessions: &[confab_store::LiveSession]) {
    println!("Sessions    : {}", sessions.len());
    for l in sessions {
        println!(
            "  {:<12} {}  since {}  on {}",
            l.kind,
            l.peer,
            utc(l.since),
            l.front_end
        );
    }
}

/// A user's registered endpoints as `confab user show` prints them.
pub fn print_endpoints(regs: &[Registration]) {
    println!("Endpoints   : {}", regs.len());
    for (i, r) in regs.iter().enumerate() {
        let (transport, source) = transport_and_source(r);
        println!("  [{}] Contact       : {}", i + 1, r.contact);
        println!("      Transport     : {transport}");
        println!("      SourceAddress : {source}");
        println!(
            "      UserAgent     : {}",
            r.user_agent.as_deref().unwrap_or("")
        );
        println!("      Expires       : {}", utc(r.expires_at));
        println!("      FrontEnd      : {}", r.front_end);
    }
}
