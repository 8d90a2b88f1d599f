//! The check behind the `core_request` cargo-fuzz target (fuzz/fuzz_targets/core_request.rs),
//! shared with the regression test (tests/fuzz_regressions.rs): bytes in, through the
//! request path of a fresh in-memory `Core`, responses out. Nothing may panic and every
//! message the core emits must parse as SIP (or, for an error reply to a request that did
//! not parse, be a well-formed error status line that frames whole).

#![allow(dead_code)]

use bytes::Bytes;
use confab_server::config::{Config, Transport};
use confab_server::core::Core;
use confab_server::guard;
use confab_server::net::{Outgoing, Source};
use confab_server::users::UserCache;
use confab_sip::digest::{self, Challenge};
use confab_sip::{frame, parse_message, response_to, Frame, HeaderName, Message, Method};
use std::net::SocketAddr;
use std::sync::Arc;

pub const SERVER: &str = "127.0.0.1:5060";
pub const DOMAIN: &str = "example.test";

pub fn show(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(3000)]);
    format!("{} bytes: {:?}", data.len(), s)
}

pub fn src(transport: Transport, port: u16, conn: Option<u64>) -> Source {
    Source {
        transport,
        local: SERVER.parse().unwrap(),
        remote: SocketAddr::from(([127, 0, 0, 1], port)),
        conn,
        overloaded: false,
    }
}

/// A core serving example.test with users alice, bob and dave (bob registered at
/// 127.0.0.1:5080, so requests to him are forwarded), federated with remote.example
/// (reached at 127.0.0.1:5070 over TCP), so requests from carol@remote.example get past
/// authentication into routing, IM and presence.
pub fn core() -> Core {
    let core = federated_core();

    let register = |auth: &str| {
        format!("REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbob{}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=b\r\nTo: <sip:bob@example.test>\r\nCall-ID: reg-bob\r\nCSeq: {} REGISTER\r\nContact: <sip:bob@127.0.0.1:5080>;expires=3600\r\n{auth}Content-Length: 0\r\n\r\n", auth.len(), auth.len() + 1)
    };
    let mut out = vec![];
    let from_bob = src(Transport::Udp, 5080, None);
    core.handle(Bytes::from(register("")), &from_bob, &mut out);
    let challenge = parse_message(out.pop().expect("a challenge").bytes).unwrap();
    let ch = Challenge::parse(
        challenge
            .header(&HeaderName::WwwAuthenticate)
            .expect("WWW-Authenticate"),
    )
    .unwrap();
    let auth = format!(
        "Authorization: {}\r\n",
        digest::authorization(
            &ch,
            "bob",
            "bobpw",
            "REGISTER",
            "sip:example.test",
            "c0ffee",
            1
        )
    );
    core.handle(Bytes::from(register(&auth)), &from_bob, &mut out);
    let ok = parse_message(out.pop().expect("a reply").bytes).unwrap();
    assert_eq!(ok.status(), Some(200), "bob registered");
    core
}

/// Checks what the core emitted in answer to `cause`; returns the requests it sent on.
fn drain(core: &Core, out: &mut Vec<Outgoing>, cause: &[u8]) -> Vec<(Message, SocketAddr)> {
    let mut sent = vec![];
    // store work (offline messages, audit, reloads) runs here, as the server's workers would
    core.run_pending_effects(std::time::Instant::now(), out);
    let mut failures = vec![];
    for o in std::mem::take(out) {
        match parse_message(o.bytes.clone()) {
            Ok(m) => {
                if m.is_request() && m.method() != Some(&Method::Ack) {
                    sent.push((m, o.dest.addr));
                }
                if let Some(f) = o.on_failure {
                    failures.push(f);
                }
            }
            Err(e) => {
                // An error reply to a request that did not parse echoes its (bad) Via, From,
                // To, Call-ID and CSeq (RFC 3261 §8.2.6): it need not pass validation, but
                // must be a well-formed error status line and frame whole.
                let cause_parses = parse_message(Bytes::copy_from_slice(cause)).is_ok();
                let frames_whole =
                    frame(&o.bytes, usize::MAX) == Frame::Message { len: o.bytes.len() };
                let error_reply = e
                    .partial
                    .as_ref()
                    .is_some_and(|p| p.status().is_some_and(|s| s >= 400));
                assert!(
                    !cause_parses && error_reply && frames_whole,
                    "the core emitted an unparsable message ({e}) to {:?}:\n{}\nafter input {}",
                    o.dest,
                    show(&o.bytes),
                    show(cause)
                );
            }
        }
    }
    // the transport fails now and then: the core must cope with that too
    for f in failures.iter().take(2) {
        core.on_send_failure(f, out);
    }
    for o in std::mem::take(out) {
        parse_message(o.bytes.clone()).unwrap_or_else(|e| {
            panic!("unparsable after a send failure ({e}): {}", show(&o.bytes))
        });
    }
    sent
}

/// Feeds a stream as the TCP transport does: frames it, answers what cannot be framed.
fn feed_stream(
    core: &Core,
    data: &[u8],
    source: &Source,
    out: &mut Vec<Outgoing>,
) -> Vec<(Message, SocketAddr)> {
    let mut sent = vec![];
    let mut rest = data;
    // a bounded number of frames: each consumes at least one byte
    for _ in 0..64 {
        match frame(rest, core.max_message_bytes()) {
            Frame::Incomplete => break,
            Frame::KeepAlive { len, .. } => rest = &rest[len..],
            Frame::Message { len } => {
                guard::handle(core, Bytes::copy_from_slice(&rest[..len]), source, out);
                sent.extend(drain(core, out, &rest[..len]));
                rest = &rest[len..];
            }
            Frame::TooLarge { header_len } => {
                if header_len > 0 {
                    core.reply_unframable(
                        Bytes::copy_from_slice(&rest[..header_len]),
                        source,
                        513,
                        "Message Too Large",
                        out,
                    );
                    drain(core, out, &rest[..header_len]);
                }
                break;
            }
            Frame::Invalid { header_len, reason } => {
                core.reply_unframable(
                    Bytes::copy_from_slice(&rest[..header_len]),
                    source,
                    400,
                    reason,
                    out,
                );
                drain(core, out, &rest[..header_len]);
                break;
            }
        }
    }
    sent
}

/// bytes -> a fresh core, as one UDP datagram and then as a TCP stream (framed, possibly
/// several messages); the requests the core sends on are answered (180, then 200 or 486)
/// by their destination; timers run at the end. Returns how many messages it sent on.
pub fn check_core_request(data: &[u8]) -> usize {
    let core = core();
    let mut out = vec![];
    // through the panic guard, as the transports do: a panic is counted (checked below)
    guard::handle(
        &core,
        Bytes::copy_from_slice(data),
        &src(Transport::Udp, 5070, None),
        &mut out,
    );
    let mut sent = drain(&core, &mut out, data);
    sent.extend(feed_stream(
        &core,
        data,
        &src(Transport::Tcp, 5071, Some(1)),
        &mut out,
    ));
    let forwarded = sent.len();
    for (i, (req, dest)) in sent.into_iter().take(8).enumerate() {
        let from = Source {
            transport: Transport::Udp,
            local: SERVER.parse().unwrap(),
            remote: dest,
            conn: None,
            overloaded: false,
        };
        let last = if i % 2 == 0 { 200 } else { 486 };
        for status in [180, last] {
            let mut resp = response_to(&req, status, None, Some("fz1"));
            if status == 200 {
                resp.headers
                    .push(HeaderName::Contact, format!("<sip:bob@{dest}>"));
            }
            let bytes = resp.to_bytes();
            guard::handle(&core, bytes.clone(), &from, &mut out);
            drain(&core, &mut out, &bytes);
        }
    }
    core.tick(&mut out);
    core.sweep(&mut out);
    drain(&core, &mut out, b"(timers)");
    assert_eq!(core.metrics.panics(), 0, "handling a message panicked");
    forwarded
}

/// A core with users alice, bob and dave in an in-memory store, federated with
/// remote.example (reached at 127.0.0.1:5070 over TCP); nobody registered.
pub fn federated_core() -> Core {
    let store = confab_store::Store::open_in_memory().unwrap();
    for (u, p) in [("alice", "alicepw"), ("bob", "bobpw"), ("dave", "davepw")] {
        store
            .add_user(&confab_store::NewUser {
                username: u,
                domain: DOMAIN,
                display_name: u,
                password: p,
            })
            .unwrap();
    }
    let users = Arc::new(UserCache::default());
    users.refresh(&store).unwrap();
    let mut cfg = Config {
        listen: vec![SERVER.into()],
        domains: vec![DOMAIN.into()],
        ..Config::default()
    };
    // every input comes from loopback: the flood defence would make runs depend on history
    cfg.defence.enabled = false;
    let doc = |v: serde_json::Value| v.as_object().unwrap().clone();
    store
        .put_config(
            "CsAccessEdgeConfiguration",
            "Global",
            &doc(serde_json::json!({"AllowFederatedUsers": true})),
        )
        .unwrap();
    store
        .put_config(
            "CsAllowedDomain",
            "remote.example",
            &doc(serde_json::json!({})),
        )
        .unwrap();
    store
        .put_config(
            "CsExternalAccessPolicy",
            "Global",
            &doc(serde_json::json!({"EnableFederationAccess": true})),
        )
        .unwrap();
    let route = serde_json::json!({"Route": [{"Transport": "TCP", "Destination": "127.0.0.1", "Port": 5070, "MatchUri": "remote.example"}]});
    store
        .put_config("CsStaticRoutingConfiguration", "Global", &doc(route))
        .unwrap();
    let store = Arc::new(store);
    let core = Core::new(cfg, users, Some(store.clone()));
    core.policies.refresh(&store).unwrap();
    core
}
