//! Parser, serializer and digest throughput, with the rsip crate as a yardstick.
//!
//! `cargo bench -p confab-sip --bench parse`; criterion reports messages per second
//! (`Throughput::Elements(1)`), per core since each benchmark runs on one thread.
//!
//! rsip parses lazily: `SipMessage::try_from` only tokenizes the start line and splits
//! headers into name/value strings. confab's `parse_message` also validates Via, From,
//! To, CSeq, Call-ID, Max-Forwards, Contact/Route and the Request-URI, so the fair
//! comparison is `rsip_typed` (parse, then type the headers a server reads on every
//! message) next to plain `rsip`.

use bytes::Bytes;
use confab_sip::digest::{self, Algorithm, Credentials};
use confab_sip::{parse_message, HeaderName};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rsip::prelude::*;

/// 834 bytes. Digest credentials for alice / example.com / "secret", qop=auth.
const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds.1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
To: \"Alice\" <sip:alice@example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"5f1e9c2a7b3d4e8f0a1b2c3d4e5f6a7b8c9d0e1f\", uri=\"sip:example.com\", response=\"2dc224d7d5dc50b59b0c26e4df8bad8e\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, REFER, UPDATE\r\n\
Supported: path, outbound, gruu\r\n\
User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\
\r\n";

const ALICE_HA1: &str = "b1726872c344b6dc8365b774f8fd6412";

/// 925 bytes: 3 Vias, 2 Record-Routes, SDP body.
const INVITE: &str = "INVITE sip:bob@192.0.2.20:5062;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK4b43c2ff8.1\r\n\
Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKnashds7;received=203.0.113.7\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.10\r\n\
Record-Route: <sip:198.51.100.1;lr>\r\n\
Record-Route: <sip:203.0.113.7;lr;ftag=1928301774>\r\n\
Max-Forwards: 68\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, NOTIFY, REFER, UPDATE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 226\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

/// 922 bytes: the 200 OK to the INVITE above, with SDP answer.
const OK200: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK4b43c2ff8.1\r\n\
Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKnashds7;received=203.0.113.7\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.10\r\n\
Record-Route: <sip:198.51.100.1;lr>\r\n\
Record-Route: <sip:203.0.113.7;lr;ftag=1928301774>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
To: <sip:bob@example.com>;tag=a6c85cf\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.20:5062;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, NOTIFY, REFER, UPDATE\r\n\
Supported: replaces, timer\r\n\
Server: Zoiper rv2.10.19.5\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 199\r\n\
\r\n\
v=0\r\n\
o=bob 2808844564 2808844564 IN IP4 192.0.2.20\r\n\
s=-\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
m=audio 3456 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

const MESSAGES: [(&str, &str); 3] = [("register", REGISTER), ("invite", INVITE), ("200ok", OK200)];

/// rsip plus typing the headers every SIP element reads (what confab's parser validates).
fn rsip_typed(bytes: &[u8]) -> rsip::SipMessage {
    let msg = rsip::SipMessage::try_from(bytes).expect("rsip parses");
    {
        let h = &msg;
        black_box(h.via_header().unwrap().typed().unwrap());
        black_box(h.from_header().unwrap().typed().unwrap());
        black_box(h.to_header().unwrap().typed().unwrap());
        black_box(h.cseq_header().unwrap().typed().unwrap());
        black_box(h.call_id_header().unwrap());
    }
    msg
}

fn sanity() {
    for (name, text) in MESSAGES {
        let m = parse_message(Bytes::from_static(text.as_bytes()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = parse_message(m.to_bytes()).unwrap();
        assert_eq!(m.start, again.start, "{name}");
        assert_eq!(m.body, again.body, "{name}");
        rsip::SipMessage::try_from(text.as_bytes()).unwrap_or_else(|e| panic!("rsip {name}: {e}"));
        rsip_typed(text.as_bytes());
    }
    let m = parse_message(Bytes::from_static(REGISTER.as_bytes())).unwrap();
    let v = m.header(&HeaderName::Authorization).unwrap();
    let c = Credentials::parse(v).unwrap();
    assert_eq!(
        digest::ha1(Algorithm::Md5, "alice", "example.com", "secret"),
        ALICE_HA1
    );
    assert!(
        digest::verify(&c, "REGISTER", ALICE_HA1),
        "the REGISTER's digest response is right"
    );
}

fn parsing(c: &mut Criterion) {
    sanity();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for (name, text) in MESSAGES {
        let bytes = Bytes::from_static(text.as_bytes());
        g.bench_function(format!("confab/{name}"), |b| {
            b.iter(|| parse_message(black_box(bytes.clone())).unwrap())
        });
        g.bench_function(format!("rsip/{name}"), |b| {
            b.iter(|| rsip::SipMessage::try_from(black_box(text.as_bytes())).unwrap())
        });
        g.bench_function(format!("rsip_typed/{name}"), |b| {
            b.iter(|| rsip_typed(black_box(text.as_bytes())))
        });
    }
    g.finish();
}

fn serializing(c: &mut Criterion) {
    let mut g = c.benchmark_group("serialize");
    g.throughput(Throughput::Elements(1));
    for (name, text) in MESSAGES {
        let bytes = Bytes::from_static(text.as_bytes());
        let msg = parse_message(bytes.clone()).unwrap();
        g.bench_function(format!("confab/{name}"), |b| {
            b.iter(|| black_box(&msg).to_bytes())
        });
        let rmsg = rsip::SipMessage::try_from(text.as_bytes()).unwrap();
        g.bench_function(format!("rsip/{name}"), |b| {
            b.iter(|| black_box(&rmsg).to_string())
        });
        g.bench_function(format!("confab_roundtrip/{name}"), |b| {
            b.iter(|| parse_message(black_box(bytes.clone())).unwrap().to_bytes())
        });
        g.bench_function(format!("rsip_roundtrip/{name}"), |b| {
            b.iter(|| {
                rsip::SipMessage::try_from(black_box(text.as_bytes()))
                    .unwrap()
                    .to_string()
            })
        });
    }
    g.finish();
}

fn digest_auth(c: &mut Criterion) {
    let msg = parse_message(Bytes::from_static(REGISTER.as_bytes())).unwrap();
    let value = msg.header(&HeaderName::Authorization).unwrap().clone();
    let mut g = c.benchmark_group("digest");
    g.throughput(Throughput::Elements(1));
    g.bench_function("credentials_parse", |b| {
        b.iter(|| Credentials::parse(black_box(&value)).unwrap().nc)
    });
    let creds = Credentials::parse(&value).unwrap();
    g.bench_function("verify", |b| {
        b.iter(|| assert!(digest::verify(black_box(&creds), "REGISTER", ALICE_HA1)))
    });
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            let c = Credentials::parse(black_box(&value)).unwrap();
            assert!(digest::verify(&c, "REGISTER", ALICE_HA1))
        })
    });
    g.finish();
}

criterion_group!(benches, parsing, serializing, digest_auth);
criterion_main!(benches);
