//! Robustness of the whole request pipeline: mutated requests and responses (RFC 4475
//! torture messages, and REGISTER / INVITE / MESSAGE / SUBSCRIBE / PUBLISH / CANCEL / ACK /
//! BYE / responses of live transactions, many carrying valid digest credentials) go through
//! `Core::handle` with a loopback source, no sockets. Nothing may panic, and every message
//! the core emits must parse as SIP. `Core::tick` and `on_send_failure` run between batches.
//!
//! Deterministic mutations (seeded `StdRng`); `CONFAB_MUTATION_SCALE=N` multiplies the
//! number of messages, `CONFAB_MUTATION_SEED=N` changes the seed. The mutator is shared
//! with crates/sip/tests/mutation.rs (crates/sip/tests/mutator/).

use bytes::Bytes;
use confab_server::config::Transport;
use confab_server::core::Core;
use confab_server::net::Outgoing;
use confab_sip::digest::{self, Challenge};
use confab_sip::{frame, parse_message, response_to, Frame, HeaderName, Message, Method};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

fn scale() -> usize {
    std::env::var("CONFAB_MUTATION_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn rng(stream: u64) -> StdRng {
    let seed: u64 = std::env::var("CONFAB_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC0FFAB);
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn torture() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/torture");
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    assert!(v.len() >= 50, "the torture corpus is there");
    v.into_iter().map(|(_, b)| b).collect()
}

mod fuzz_core;
use fuzz_core::{federated_core as core, show, src};

/// Builds the requests and responses fed to the core; requests from local users carry
/// fresh valid credentials (new `nc` each time) so they get past authentication.
struct Ua {
    challenge: Option<Challenge>,
    nc: u32,
    n: u64,
}

impl Ua {
    fn auth(&mut self, user: &str, pw: &str, method: &str, uri: &str, proxy: bool) -> String {
        let Some(ch) = &self.challenge else {
            return String::new();
        };
        self.nc += 1;
        let v = digest::authorization(ch, user, pw, method, uri, "c0ffee", self.nc);
        format!(
            "{}: {v}\r\n",
            if proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            }
        )
    }

    /// (request bytes, whether it is a fresh transaction).
    fn request(&mut self, r: &mut StdRng, kind: usize) -> Vec<u8> {
        self.n += 1;
        // reuse Call-IDs and branches now and then: retransmissions, CANCEL/ACK matching
        let n = if r.gen_bool(0.3) {
            self.n.saturating_sub(r.gen_range(0..8))
        } else {
            self.n
        };
        let branch = format!("z9hG4bK{n}x");
        let call = format!("call{n}@127.0.0.1");
        let via = format!("Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n");
        let alice = "From: \"Alice\" <sip:alice@example.test>;tag=a{n}\r\n";
        let alice = alice.replace("{n}", &n.to_string());
        let carol = format!("From: <sip:carol@remote.example>;tag=c{n}\r\n");
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        match kind {
            0 => {
                let expires = [0, 30, 60, 600, 3600, 999999][r.gen_range(0..6)];
                let a = self.auth("alice", "alicepw", "REGISTER", "sip:example.test", false);
                format!("REGISTER sip:example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{alice}To: <sip:alice@example.test>\r\nCall-ID: reg-alice\r\nCSeq: {n} REGISTER\r\nContact: <sip:alice@127.0.0.1:5070;transport=udp>;expires={expires};+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n{a}Supported: path, outbound\r\nContent-Length: 0\r\n\r\n")
            }
            1 => format!("INVITE sip:bob@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:bob@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@127.0.0.1:5070>\r\nRecord-Route: <sip:127.0.0.9;lr>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()),
            2 => {
                let a = self.auth("alice", "alicepw", "INVITE", "sip:bob@example.test", true);
                format!("INVITE sip:bob@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{alice}To: <sip:bob@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\n{a}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len())
            }
            3 => format!("MESSAGE sip:bob@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:bob@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
            4 => {
                // dave is never registered: stored for later delivery
                let a = self.auth("alice", "alicepw", "MESSAGE", "sip:dave@example.test", true);
                format!("MESSAGE sip:dave@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{alice}To: <sip:dave@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\n{a}Content-Type: text/plain;charset=utf-8\r\nContent-Length: 6\r\n\r\nh\u{e9}llo")
            }
            5 => {
                let a = self.auth("alice", "alicepw", "SUBSCRIBE", "sip:bob@example.test", true);
                let expires = [0, 60, 3600][r.gen_range(0..3)];
                format!("SUBSCRIBE sip:bob@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{alice}To: <sip:bob@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:alice@127.0.0.1:5070>\r\nEvent: presence\r\nAccept: application/pidf+xml\r\nExpires: {expires}\r\n{a}Content-Length: 0\r\n\r\n")
            }
            6 => {
                let a = self.auth("alice", "alicepw", "PUBLISH", "sip:alice@example.test", true);
                let pidf = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.test\"><tuple id=\"t1\"><status><basic>open</basic></status><note>Busy</note></tuple></presence>\r\n";
                format!("PUBLISH sip:alice@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{alice}To: <sip:alice@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 600\r\n{a}Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{pidf}", pidf.len())
            }
            7 => format!("CANCEL sip:bob@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:bob@example.test>\r\nCall-ID: {call}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"),
            8 => format!("ACK sip:bob@example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:bob@example.test>;tag=b{n}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"),
            9 => format!("BYE sip:bob@127.0.0.1:5080 SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:bob@example.test>;tag=b{n}\r\nCall-ID: {call}\r\nCSeq: 2 BYE\r\nRoute: <sip:127.0.0.1:5060;lr>\r\nContent-Length: 0\r\n\r\n"),
            10 => format!("OPTIONS sip:example.test SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:example.test>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"),
            _ => format!("NOTIFY sip:alice@127.0.0.1:5070 SIP/2.0\r\n{via}Max-Forwards: 70\r\n{carol}To: <sip:alice@example.test>;tag=x{n}\r\nCall-ID: {call}\r\nCSeq: 3 NOTIFY\r\nEvent: presence\r\nSubscription-State: active;expires=60\r\nContent-Length: 0\r\n\r\n"),
        }
        .into_bytes()
    }
}

struct Harness {
    core: Core,
    out: Vec<Outgoing>,
    /// Requests the core sent (forwarded or its own NOTIFYs), to answer.
    sent_requests: Vec<Message>,
    handled: usize,
    emitted: usize,
    /// Error replies to unparsable requests that echo their bad headers.
    lenient: usize,
    /// First lines of what was emitted, while set.
    log: Option<Vec<String>>,
    conn: u64,
}

impl Harness {
    fn feed(&mut self, data: &[u8], r: &mut StdRng) {
        let source = match r.gen_range(0..4) {
            0 => {
                self.conn += 1;
                src(Transport::Tcp, 5070, Some(self.conn % 4))
            }
            1 => src(Transport::Udp, 5080, None),
            _ => src(Transport::Udp, 5070, None),
        };
        self.handled += 1;
        // through the panic guard, as the transports do: panics are counted, and must not be
        confab_server::guard::handle(
            &self.core,
            Bytes::copy_from_slice(data),
            &source,
            &mut self.out,
        );
        assert_eq!(self.core.metrics.panics(), 0, "handling a message panicked");
        self.drain(data);
    }

    /// Checks everything emitted so far; remembers requests to answer later.
    fn drain(&mut self, cause: &[u8]) {
        // store work (offline messages, audit, reloads) runs here, as the server's workers would
        self.core
            .run_pending_effects(std::time::Instant::now(), &mut self.out);
        for o in std::mem::take(&mut self.out) {
            self.emitted += 1;
            let m = match parse_message(o.bytes.clone()) {
                Ok(m) => m,
                Err(e) => {
                    // An error reply to a request that did not parse echoes its (bad) Via,
                    // From, To, Call-ID and CSeq, or has none: RFC 3261 §8.2.6 copies them,
                    // and the sender needs them to match the reply. Such a reply need not
                    // pass validation, but must still be a well-formed status line and
                    // frame whole.
                    let cause_parsed = parse_message(Bytes::copy_from_slice(cause));
                    let frames_whole =
                        frame(&o.bytes, usize::MAX) == Frame::Message { len: o.bytes.len() };
                    let lenient = cause_parsed.is_err()
                        && e.partial
                            .as_ref()
                            .is_some_and(|p| p.status().is_some_and(|s| s >= 400))
                        && frames_whole;
                    assert!(
                        lenient,
                        "the core emitted an unparsable message ({e}) to {:?}:\n{}\nafter input {}",
                        o.dest,
                        show(&o.bytes),
                        show(cause)
                    );
                    self.lenient += 1;
                    continue;
                }
            };
            if let Some(f) = &o.on_failure {
                // now and then the transport fails
                if self.emitted.is_multiple_of(7) {
                    self.core.on_send_failure(f, &mut self.out);
                }
            }
            if let Some(log) = &mut self.log {
                let first = o.bytes.split(|&b| b == b'\r').next().unwrap_or_default();
                let cseq = m
                    .cseq()
                    .map(|c| c.method.as_str().to_string())
                    .unwrap_or_default();
                log.push(format!(
                    "{} {} ({cseq})",
                    o.dest.addr,
                    String::from_utf8_lossy(first)
                ));
            }
            if m.is_request() && self.sent_requests.len() < 64 {
                self.sent_requests.push(m);
            }
        }
        // what on_send_failure produced
        for o in std::mem::take(&mut self.out) {
            parse_message(o.bytes.clone()).unwrap_or_else(|e| {
                panic!("unparsable after a send failure ({e}): {}", show(&o.bytes))
            });
        }
    }

    fn tick(&mut self) {
        self.core.tick(&mut self.out);
        self.core.sweep(&mut self.out);
        self.drain(b"(tick)");
    }

    /// Responses to requests the core sent: clean or mutated.
    fn responses(&mut self, r: &mut StdRng) -> Vec<Vec<u8>> {
        let mut v = vec![];
        for req in std::mem::take(&mut self.sent_requests) {
            if req.method() == Some(&Method::Ack) {
                continue;
            }
            for status in [100u16, 180, 200, 302, 401, 486, 503, 603] {
                if r.gen_bool(0.35) {
                    let mut resp = response_to(&req, status, None, Some("b1"));
                    if status == 200 {
                        resp.headers
                            .push(HeaderName::Contact, "<sip:bob@127.0.0.1:5080>");
                    }
                    if status == 302 {
                        resp.headers.push(
                            HeaderName::Contact,
                            "<sip:bob@127.0.0.1:5090>, <sip:x@[::1]:5070;transport=tcp>",
                        );
                    }
                    if status == 401 {
                        resp.headers.push(
                            HeaderName::WwwAuthenticate,
                            "Digest realm=\"remote\", nonce=\"n1\", qop=\"auth\"",
                        );
                    }
                    v.push(resp.to_bytes().to_vec());
                }
            }
        }
        v
    }
}

#[path = "../../sip/tests/mutator/mod.rs"]
mod mutator;
use mutator::*;

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn mutated_traffic_through_the_core_never_panics_and_emits_valid_sip() {
    let t = Instant::now();
    let mut h = Harness {
        core: core(),
        out: vec![],
        sent_requests: vec![],
        handled: 0,
        emitted: 0,
        lenient: 0,
        log: None,
        conn: 0,
    };
    // the setup does not depend on CONFAB_MUTATION_SEED: it must always get this far
    let mut r = StdRng::seed_from_u64(0xC0FFAB ^ 10u64.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut ua = Ua {
        challenge: None,
        nc: 0,
        n: 0,
    };

    // a challenge to answer, then bob registers at 127.0.0.1:5080 so requests to him are forwarded
    let reg = ua.request(&mut r, 0);
    h.core.handle(
        Bytes::from(reg),
        &src(Transport::Udp, 5070, None),
        &mut h.out,
    );
    let resp = parse_message(h.out.pop().expect("a challenge").bytes).unwrap();
    assert_eq!(resp.status(), Some(401));
    ua.challenge =
        Some(Challenge::parse(resp.header(&HeaderName::WwwAuthenticate).unwrap()).unwrap());
    let a = ua.auth("bob", "bobpw", "REGISTER", "sip:example.test", false);
    let bob = format!("REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbob1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=b\r\nTo: <sip:bob@example.test>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:5080>;expires=3600\r\n{a}Content-Length: 0\r\n\r\n");
    h.core.handle(
        Bytes::from(bob),
        &src(Transport::Udp, 5080, None),
        &mut h.out,
    );
    let resp = parse_message(h.out.pop().expect("a reply").bytes).unwrap();
    assert_eq!(resp.status(), Some(200), "bob registered");
    // the clean form of every kind of request gets past authentication
    h.log = Some(vec![]);
    for kind in 0..12 {
        let m = ua.request(&mut r, kind);
        h.feed(&m, &mut r);
    }
    let log = h.log.take().unwrap().join("\n");
    for want in [
        "SIP/2.0 200 OK (REGISTER)",
        "127.0.0.1:5080 INVITE sip:bob@127.0.0.1:5080 SIP/2.0 (INVITE)",
        "127.0.0.1:5080 MESSAGE sip:bob@127.0.0.1:5080 SIP/2.0 (MESSAGE)",
        "SIP/2.0 202 Accepted (stored for delivery) (MESSAGE)",
        "SIP/2.0 200 OK (SUBSCRIBE)",
        "NOTIFY sip:alice@127.0.0.1:5070 SIP/2.0 (NOTIFY)",
        "SIP/2.0 200 OK (PUBLISH)",
        "SIP/2.0 200 OK (OPTIONS)",
    ] {
        assert!(log.contains(want), "{want:?} not in\n{log}");
    }

    let mut r = rng(10);
    let torture = torture();
    let mut mutator = Mutator::new(rng(11), torture.clone());
    let mut stats = [0usize; 3];
    for batch in 0..(90 * scale()) {
        // torture messages, clean and mutated
        for _ in 0..8 {
            let m = if r.gen_bool(0.2) {
                torture[r.gen_range(0..torture.len())].clone()
            } else {
                mutator.next()
            };
            h.feed(&m, &mut r);
            stats[0] += 1;
        }
        // live requests: clean now and then, mostly mutated
        for _ in 0..24 {
            let kind = r.gen_range(0..12);
            let m = ua.request(&mut r, kind);
            let m = if r.gen_bool(0.15) {
                m
            } else {
                mutator.mutate(m)
            };
            h.feed(&m, &mut r);
            stats[1] += 1;
        }
        // responses to what the core sent, clean and mutated
        for resp in h.responses(&mut r) {
            let m = if r.gen_bool(0.4) {
                resp
            } else {
                mutator.mutate(resp)
            };
            h.feed(&m, &mut r);
            stats[2] += 1;
        }
        if batch % 3 == 0 {
            h.tick();
        }
    }
    h.tick();
    eprintln!(
        "{} torture, {} requests, {} responses in; {} messages out ({} error replies echoing bad headers); {} transactions open; {:?}",
        stats[0],
        stats[1],
        stats[2],
        h.emitted,
        h.lenient,
        h.core.transactions(),
        t.elapsed()
    );
    assert!(
        stats[2] > 100,
        "the core forwarded requests that got answers: {stats:?}"
    );
    assert_eq!(h.core.metrics.panics(), 0);
}

/// Every truncation and splices of a live INVITE and of an authenticated REGISTER.
#[test]
fn truncated_and_spliced_requests() {
    let mut h = Harness {
        core: core(),
        out: vec![],
        sent_requests: vec![],
        handled: 0,
        emitted: 0,
        lenient: 0,
        log: None,
        conn: 0,
    };
    let mut r = rng(12);
    let mut ua = Ua {
        challenge: None,
        nc: 0,
        n: 0,
    };
    for kind in [1usize, 0, 3, 6] {
        let m = ua.request(&mut r, kind);
        for len in (0..=m.len()).step_by(3) {
            h.feed(&m[..len], &mut r);
        }
    }
    let torture = torture();
    for _ in 0..300 * scale() {
        let kind = r.gen_range(0..12);
        let a = ua.request(&mut r, kind);
        let b = &torture[r.gen_range(0..torture.len())];
        let (i, j) = (r.gen_range(0..=a.len()), r.gen_range(0..=b.len()));
        let mut m = a[..i].to_vec();
        m.extend_from_slice(&b[j..]);
        h.feed(&m, &mut r);
    }
    h.tick();
    assert_eq!(h.core.metrics.panics(), 0);
}
