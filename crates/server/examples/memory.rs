//! Memory per registration and per presence subscription.
//!
//! `cargo run --release -p confab-server --example memory -- 1000000 100000`
//!
//! First fills the location service with N bindings shaped like a real client's (N from the
//! first argument, default 1,000,000); then feeds a core M SUBSCRIBE requests (second
//! argument, default 100,000) from M watchers to 1,000 presentities over TCP, answers every
//! NOTIFY with 200 so no transaction is left, and prints the resident memory after each step.

#[path = "../benches/common/mod.rs"]
mod common;

use bytes::Bytes;
use confab_server::config::Config;
use confab_server::config::Transport;
use confab_server::core::Core;
use confab_server::location::Location;
use confab_server::net::{Outgoing, Source};
use confab_server::users::UserCache;
use std::sync::Arc;
use std::time::Instant;

// The allocator the confab binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_bytes() -> u64 {
    confab_server::metrics::process_usage().map_or(0, |(rss, _)| rss)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let loc = Location::default();
    let before = rss_bytes();
    let now = Instant::now();
    let t = Instant::now();
    for i in 0..n {
        let (aor, b) = common::sample_binding(i, now);
        loc.update(&aor, |list| list.push(b));
    }
    let after = rss_bytes();
    println!(
        "{n} registrations in {:.1} s: RSS {} MiB -> {} MiB, {} bytes per registration",
        t.elapsed().as_secs_f64(),
        before >> 20,
        after >> 20,
        (after - before) / n as u64
    );
    assert_eq!(loc.count_bindings(), n);

    let m: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    subscriptions(m);
}

/// The real SUBSCRIBE path: parse, route, presence server, NOTIFY, its 200.
fn subscriptions(m: usize) {
    const PRESENTITIES: usize = 1000;
    let store = confab_store::Store::open_in_memory().unwrap();
    for i in 0..PRESENTITIES {
        let u = format!("p{i:04}");
        store
            .add_user(&confab_store::NewUser {
                username: &u,
                domain: "example.test",
                display_name: &u,
                password: "pw",
            })
            .unwrap();
    }
    let users = Arc::new(UserCache::default());
    users.refresh(&store).unwrap();
    let mut cfg = Config {
        domains: vec!["example.test".into()],
        ..Config::default()
    };
    cfg.auth.challenge_requests = false; // the digest path is measured elsewhere
    cfg.defence.enabled = false; // every request comes from one address
    let core = Core::new(cfg, users, Some(Arc::new(store)));
    let before = rss_bytes();
    let t = Instant::now();
    let mut out: Vec<Outgoing> = vec![];
    for i in 0..m {
        // one TCP connection per 100 watchers, as behind a few thousand clients
        let src = Source {
            transport: Transport::Tcp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: format!("10.{}.{}.{}:5060", (i >> 16) & 255, (i >> 8) & 255, i & 255)
                .parse()
                .unwrap(),
            conn: Some(1 + (i / 100) as u64),
            overloaded: false,
        };
        let req = format!(
            "SUBSCRIBE sip:p{p:04}@example.test SIP/2.0\r\nVia: SIP/2.0/TCP {addr};branch=z9hG4bKs{i}\r\nMax-Forwards: 70\r\n\
             From: <sip:w{i:06}@example.test>;tag=w{i}\r\nTo: <sip:p{p:04}@example.test>\r\nCall-ID: sub-{i}@{addr}\r\n\
             CSeq: 1 SUBSCRIBE\r\nContact: <sip:w{i:06}@{addr};transport=tcp>\r\nEvent: presence\r\n\
             Accept: application/pidf+xml\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
            p = i % PRESENTITIES,
            addr = src.remote,
        );
        core.handle(Bytes::from(req), &src, &mut out);
        for o in out.drain(..) {
            let Ok(msg) = confab_sip::parse_message(o.bytes) else {
                continue;
            };
            if msg.method() == Some(&confab_sip::Method::Notify) {
                let ok = confab_sip::response_to(&msg, 200, None, None);
                core.handle(ok.to_bytes(), &src, &mut vec![]);
            }
        }
        if i % 1000 == 999 {
            core.tick(&mut out); // as the server's 10 ms timer: completed transactions go
            out.clear();
        }
    }
    core.tick(&mut out);
    let after = rss_bytes();
    println!(
        "{m} presence subscriptions in {:.1} s: RSS {} MiB -> {} MiB, {} bytes per subscription; transactions left: {}",
        t.elapsed().as_secs_f64(),
        before >> 20,
        after >> 20,
        (after - before) / m as u64,
        core.transactions()
    );
    assert_eq!(core.presence.subscription_count(), m);
}
