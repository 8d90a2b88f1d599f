//! Robustness: thousands of deterministic random mutations of the RFC 4475 torture
//! messages and of a few valid messages go through `parse_message`, `frame`, the typed
//! header accessors and the digest parsers. Nothing may panic, and every message that
//! parses must serialize to bytes that parse again to the same start line, headers and body.
//!
//! Deterministic (seeded `StdRng`). `CONFAB_MUTATION_SCALE=N` multiplies the iteration
//! counts for a deeper local run; `CONFAB_MUTATION_SEED=N` changes the seed.

use bytes::Bytes;
use confab_sip::digest::{self, Algorithm, Challenge, Credentials, NonceCheck, NonceManager};
use confab_sip::{frame, parse_message, response_to, Frame, HeaderName, Message, StartLine, Uri};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds.1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
To: \"Alice\" <sip:alice@example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"5f1e9c2a7b3d4e8f0a1b2c3d4e5f6a7b8c9d0e1f\", uri=\"sip:example.com\", response=\"2dc224d7d5dc50b59b0c26e4df8bad8e\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n\
Supported: path, outbound, gruu\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\
\r\n";

const INVITE: &str = "INVITE sip:bob@192.0.2.20:5062;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK4b43c2ff8.1\r\n\
Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKnashds7;received=203.0.113.7, SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK776asdhds;rport=5060\r\n\
Record-Route: <sip:198.51.100.1;lr>, <sip:203.0.113.7;lr;ftag=1928301774>\r\n\
Max-Forwards: 68\r\n\
f: \"Alice \\\"A\\\"\" <sip:alice@example.com>;tag=1928301774\r\n\
t: <sip:bob@example.com>\r\n\
i: 3848276298220188511@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
m: <sip:alice@192.0.2.10:5060>\r\n\
Subject: folded\r\n  over two lines\r\n\
c: application/sdp\r\n\
l: 103\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\n";

const OK200: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK4b43c2ff8.1\r\n\
Via: SIP/2.0/TCP 203.0.113.7:5060;branch=z9hG4bKnashds7;received=203.0.113.7\r\n\
Record-Route: <sip:198.51.100.1;lr>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
To: <sip:bob@example.com>;tag=a6c85cf\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.20:5062;transport=udp>\r\n\
WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\", algorithm=MD5, stale=FALSE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 22\r\n\
\r\n\
v=0\r\n\
s=-\r\n\
t=0 0\r\n";

const MESSAGE: &str = "MESSAGE sips:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS [::1]:5061;branch=z9hG4bKmsg1\r\n\
Max-Forwards: 70\r\n\
From: sip:alice@example.com;tag=49583\r\n\
To: sips:bob@example.com\r\n\
Call-ID: asd88asd77a@1.2.3.4\r\n\
CSeq: 1 MESSAGE\r\n\
Route: <sip:[2001:db8::1]:5060;lr>\r\n\
Content-Type: text/plain;charset=utf-8\r\n\
Content-Length: 13\r\n\
\r\n\
héllo wörld";

const SUBSCRIBE: &str = "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKsub1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=ffd2\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: 12345601@192.0.2.10\r\n\
CSeq: 17766 SUBSCRIBE\r\n\
Event: presence;id=1\r\n\
Accept: application/pidf+xml\r\n\
Contact: *\r\n\
Expires: 600\r\n\
\r\n";

fn valid() -> Vec<Vec<u8>> {
    [REGISTER, INVITE, OK200, MESSAGE, SUBSCRIBE]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

fn torture() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 50, "the torture corpus is there");
    v
}

fn corpus() -> Vec<Vec<u8>> {
    let mut c = valid();
    c.extend(torture().into_iter().map(|(_, b)| b));
    c
}

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

#[path = "mutator/mod.rs"]
mod mutator;
use mutator::*;

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Stats {
    inputs: usize,
    parsed: usize,
    rejected: usize,
    framed: usize,
}

fn show(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(2000)]);
    format!("{} bytes: {:?}", data.len(), s)
}

/// Headers compared across a round trip: the serializer writes Content-Length itself.
fn without_content_length(m: &Message) -> Vec<(String, String)> {
    m.headers
        .iter()
        .filter(|h| h.name != HeaderName::ContentLength)
        .map(|h| (h.name.as_str().to_ascii_lowercase(), h.value.to_string()))
        .collect()
}

/// What a server reads of every message: none of these may panic.
fn exercise(m: &Message) {
    let _ = m.top_via().map(|v| {
        (
            v.branch(),
            v.has_rfc3261_branch(),
            v.param("rport"),
            v.param("received"),
        )
    });
    let _ = m
        .from_hdr()
        .map(|f| (f.tag(), f.uri().host_unbracketed().len()));
    let _ = m.to_hdr().map(|t| (t.tag(), t.uri().transport()));
    let _ = m.cseq();
    let _ = m.call_id();
    let _ = m.max_forwards();
    let _ = m.expires();
    if let Some(u) = m.uri() {
        if let Ok(u) = Uri::parse(u) {
            let _ = (u.transport(), u.host_unbracketed(), u.param("lr"));
        }
    }
    for name in [
        HeaderName::Contact,
        HeaderName::Route,
        HeaderName::RecordRoute,
    ] {
        for v in m.headers.get_all(&name) {
            if let Ok(na) = confab_sip::values::NameAddr::parse(v) {
                let _ = (na.uri().host_unbracketed(), na.param("expires"), na.tag());
            }
        }
    }
    for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
        for v in m.headers.get_all(&name) {
            if let Ok(c) = Credentials::parse(v) {
                let _ = digest::verify(&c, "REGISTER", "b1726872c344b6dc8365b774f8fd6412");
                let _ = c.to_header_value();
            }
        }
    }
    for name in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
        for v in m.headers.get_all(&name) {
            if let Ok(c) = Challenge::parse(v) {
                let _ = c.to_header_value();
            }
        }
    }
}

fn check(data: &[u8], stats: &mut Stats) {
    stats.inputs += 1;
    for max in [64usize, 1500, 65536, usize::MAX] {
        match frame(data, max) {
            Frame::Incomplete => {}
            Frame::KeepAlive { len, .. } => assert!(
                len >= 1 && len <= data.len(),
                "keep-alive of {len} in {}",
                show(data)
            ),
            Frame::Message { len } => {
                assert!(
                    len <= data.len() && len <= max,
                    "frame of {len} (max {max}) in {}",
                    show(data)
                );
                stats.framed += 1;
                if max == usize::MAX {
                    if let Ok(m) = parse_message(Bytes::copy_from_slice(&data[..len])) {
                        exercise(&m);
                    }
                }
            }
            Frame::TooLarge { header_len } | Frame::Invalid { header_len, .. } => {
                assert!(
                    header_len <= data.len(),
                    "header_len {header_len} in {}",
                    show(data)
                )
            }
        }
    }
    match parse_message(Bytes::copy_from_slice(data)) {
        Ok(m) => {
            stats.parsed += 1;
            exercise(&m);
            let wire = m.to_bytes();
            let again = parse_message(wire.clone()).unwrap_or_else(|e| {
                panic!(
                    "re-parse failed ({e}) of {}\nserialized from {}",
                    show(&wire),
                    show(data)
                )
            });
            assert_eq!(
                m.start,
                again.start,
                "start line changed over a round trip of {}",
                show(data)
            );
            assert_eq!(
                without_content_length(&m),
                without_content_length(&again),
                "headers changed: {}",
                show(data)
            );
            assert_eq!(
                m.body,
                again.body,
                "body changed over a round trip of {}",
                show(data)
            );
            assert_eq!(
                frame(&wire, usize::MAX),
                Frame::Message { len: wire.len() },
                "serialized form frames whole: {}",
                show(&wire)
            );
            if let StartLine::Request { method, .. } = &m.start {
                if *method != confab_sip::Method::Ack {
                    for status in [100, 200, 401, 486] {
                        let resp = response_to(&m, status, None, Some("zz9"));
                        let bytes = resp.to_bytes();
                        let back = parse_message(bytes.clone()).unwrap_or_else(|e| {
                            panic!(
                                "response_to({status}) does not parse ({e}): {}\nrequest {}",
                                show(&bytes),
                                show(data)
                            )
                        });
                        assert_eq!(back.status(), Some(status));
                    }
                }
            }
        }
        Err(e) => {
            stats.rejected += 1;
            assert!(
                matches!(e.status, 400 | 416 | 505 | 513),
                "status {} for {}",
                e.status,
                show(data)
            );
            let _ = e.to_string();
            if let Some(p) = e.partial {
                exercise(&p);
                let _ = p.to_bytes();
                if p.is_request() {
                    let _ = response_to(&p, 400, Some(&e.reason), Some("zz9")).to_bytes();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn random_mutations_never_panic_and_round_trip() {
    let t = Instant::now();
    let mut stats = Stats::default();
    let corpus = corpus();
    for m in &corpus {
        check(m, &mut stats);
    }
    let mut mutator = Mutator::new(rng(1), corpus);
    for _ in 0..3000 * scale() {
        let m = mutator.next();
        check(&m, &mut stats);
    }
    eprintln!("{stats:?} in {:?}", t.elapsed());
    assert!(
        stats.parsed > 200,
        "enough mutants still parse to test the round trip: {stats:?}"
    );
    assert!(stats.rejected > 1000, "{stats:?}");
}

#[test]
fn every_truncation_and_every_single_byte_deletion() {
    let t = Instant::now();
    let mut stats = Stats::default();
    for text in [INVITE, REGISTER, OK200] {
        let b = text.as_bytes();
        for len in 0..=b.len() {
            check(&b[..len], &mut stats);
        }
    }
    // each byte of the INVITE removed, and each CRLF turned into LF
    let b = INVITE.as_bytes();
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m.remove(i);
        check(&m, &mut stats);
    }
    eprintln!("{stats:?} in {:?}", t.elapsed());
}

#[test]
fn splices_of_two_messages() {
    let mut stats = Stats::default();
    let corpus = corpus();
    let mut r = rng(2);
    for _ in 0..1500 * scale() {
        let a = &corpus[r.gen_range(0..corpus.len())];
        let b = &corpus[r.gen_range(0..corpus.len())];
        let (i, j) = (r.gen_range(0..=a.len()), r.gen_range(0..=b.len()));
        let mut m = a[..i].to_vec();
        m.extend_from_slice(&b[j..]);
        check(&m, &mut stats);
        // two whole messages back to back (a stream): frame the first, then the rest
        let mut s = a.clone();
        s.extend_from_slice(b);
        let mut rest = &s[..];
        for _ in 0..4 {
            match frame(rest, 1 << 20) {
                Frame::Message { len } | Frame::KeepAlive { len, .. } if len > 0 => {
                    check(&rest[..len], &mut stats);
                    rest = &rest[len..];
                }
                _ => break,
            }
        }
    }
}

#[test]
fn long_values_and_many_headers() {
    let mut stats = Stats::default();
    let invite = INVITE.as_bytes();
    let head_end = INVITE.find("\r\n\r\n").unwrap() + 2;
    for n in [1000usize, 10_000, 60_000] {
        let mut many = invite[..head_end].to_vec();
        for i in 0..n / 10 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(&invite[head_end..]);
        check(&many, &mut stats);
        for header in [
            "Subject",
            "Via",
            "Contact",
            "Authorization",
            "Call-ID",
            "X-Long",
        ] {
            for fill in ["a", ";p=v", "\\\"", "%41", "é"] {
                let mut m = invite[..head_end].to_vec();
                let value = match header {
                    "Via" => format!(
                        "SIP/2.0/UDP h.example;branch=z9hG4bK{}",
                        fill.repeat(n / fill.len())
                    ),
                    "Contact" => format!("<sip:{}@h.example>", fill.repeat(n / fill.len())),
                    "Authorization" => format!(
                        "Digest username=\"{}\", realm=\"r\"",
                        fill.repeat(n / fill.len())
                    ),
                    _ => fill.repeat(n / fill.len()),
                };
                m.extend_from_slice(format!("{header}: {value}\r\n").as_bytes());
                m.extend_from_slice(&invite[head_end..]);
                check(&m, &mut stats);
            }
        }
    }
    // a URI, a display name and a start line of 100 kB
    let big = "a".repeat(100_000);
    for m in [
        format!("INVITE sip:{big}@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"),
        format!("SIP/2.0 200 {big}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: \"{big}\" <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"),
        format!("{big} sip:a@h SIP/2.0\r\n\r\n"),
    ] {
        check(m.as_bytes(), &mut stats);
    }
}

/// Mutated `Authorization` / `WWW-Authenticate` values through the digest parsers.
#[test]
fn mutated_digest_values() {
    let t = Instant::now();
    let seeds: Vec<Vec<u8>> = [
        "Digest username=\"alice\", realm=\"example.com\", nonce=\"5f1e9c2a7b3d4e8f0a1b2c3d4e5f6a7b8c9d0e1f\", uri=\"sip:example.com\", response=\"2dc224d7d5dc50b59b0c26e4df8bad8e\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001",
        "Digest username=\"bob\\\\\\\"x\", realm=\"biloxi.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        "Digest username=\"alice\",realm=\"example.com\",nonce=\"n\",uri=\"sip:example.com\",response=\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",algorithm=SHA-256",
        "Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth,auth-int\", algorithm=MD5, stale=FALSE, opaque=\"\"",
        "Digest realm=\"atlanta.com\", domain=\"sip:boxesbybob.com\", qop=\"auth\", nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", stale=TRUE, algorithm=SHA-256",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut mutator = Mutator::new(rng(3), seeds);
    let nonces = NonceManager::new([7u8; 32], 300, 8);
    let good_nonce = nonces.issue(1_000_000);
    let mut ok = 0usize;
    for i in 0..6000 * scale() {
        let raw = mutator.next();
        let value = String::from_utf8_lossy(&raw);
        if let Ok(c) = Credentials::parse(&value) {
            ok += 1;
            for alg in [Algorithm::Md5, Algorithm::Sha256] {
                let ha1 = digest::ha1(alg, &c.username, &c.realm, "secret");
                let _ = digest::verify(&c, "REGISTER", &ha1);
                let _ = digest::verify(&c, "INVITE", "");
                let _ = digest::verify(&c, "X", "zz\u{e9}");
            }
            let _ = c.algorithm_or_default().name();
            // what we serialize we must read back
            let again = c.to_header_value();
            let back = Credentials::parse(&again)
                .unwrap_or_else(|e| panic!("re-parse of {again:?} failed: {e:?} (from {value:?})"));
            // push_quoted turns CR and LF into spaces (no header injection); anything else
            // must come back unchanged
            if !value.contains(['\r', '\n']) {
                assert_eq!(
                    back, c,
                    "credentials changed over a round trip: {value:?} -> {again:?}"
                );
            }
            let _ = nonces.check(&c.nonce, c.nc, 1_000_100);
        }
        if let Ok(ch) = Challenge::parse(&value) {
            let again = ch.to_header_value();
            Challenge::parse(&again).unwrap_or_else(|e| {
                panic!("re-parse of challenge {again:?} failed: {e:?} (from {value:?})")
            });
        }
        // mutated nonces against the manager
        let mut nonce = good_nonce.clone().into_bytes();
        if i % 2 == 0 {
            nonce = mutator.mutate(nonce);
        }
        let n = String::from_utf8_lossy(&nonce);
        let r = nonces.check(&n, Some(i as u32), 1_000_010);
        if i % 2 == 1 {
            assert!(!matches!(r, NonceCheck::Invalid), "a fresh nonce is valid");
        }
    }
    assert!(ok > 500, "enough mutants still parse: {ok}");
    eprintln!(
        "{ok} of {} credentials parsed, in {:?}",
        6000 * scale(),
        t.elapsed()
    );
}
