//! The checks behind the cargo-fuzz targets of confab-sip (fuzz/fuzz_targets/), shared with
//! the regression test (tests/fuzz_regressions.rs) so a saved input is checked exactly as
//! the fuzzer checked it. Each check panics on a violated property; bad input must merely
//! be rejected.

#![allow(dead_code)]

use bytes::Bytes;
use confab_sip::digest::{self, Challenge, Credentials};
use confab_sip::pidf::{self, Level, Presence};
use confab_sip::uri::{param_lookup, split_hostport};
use confab_sip::values::{split_list, CSeq, NameAddr, Via};
use confab_sip::{
    frame, parse_message, response_to, Frame, HeaderName, Message, StartLine, Text, Uri,
};

/// A target's check: panics when a property does not hold.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name (fuzz/fuzz_targets/<name>.rs; regression inputs in
/// tests/fuzz_regressions/<name>/).
pub const TARGETS: [(&str, Check); 4] = [
    ("parse_message", check_parse_message),
    ("frame", check_frame),
    ("values", check_values),
    ("pidf", check_pidf),
];

pub fn show(data: &[u8]) -> String {
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

/// What a server reads of a message: none of it may panic.
fn read_everything(m: &Message) {
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
    let _ = (m.cseq(), m.call_id(), m.max_forwards(), m.expires());
    if let Some(Ok(u)) = m.uri().map(|u| Uri::parse(u)) {
        let _ = (u.transport(), u.host_unbracketed(), u.param("lr"));
    }
    for h in m.headers.iter() {
        check_value_str(&h.value);
    }
}

/// bytes -> `parse_message`; a message that parses serializes to bytes that frame whole
/// and parse again to the same start line, headers and body, and serialize identically
/// (stable); replies built for a parsed request parse. A rejection carries a 4xx/5xx the
/// server may send, and its partial message is readable.
pub fn check_parse_message(data: &[u8]) {
    match parse_message(Bytes::copy_from_slice(data)) {
        Ok(m) => {
            read_everything(&m);
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
                again.to_bytes(),
                wire,
                "serialization is not stable for {}",
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
                        let bytes = response_to(&m, status, None, Some("zz9")).to_bytes();
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
            assert!(
                matches!(e.status, 400 | 416 | 505 | 513),
                "status {} for {}",
                e.status,
                show(data)
            );
            assert!(
                !e.reason.contains(['\r', '\n']),
                "reason {:?} would break the status line",
                e.reason
            );
            if let Some(p) = e.partial {
                read_everything(&p);
                let _ = p.to_bytes();
                if p.is_request() {
                    let _ = response_to(&p, 400, Some(&e.reason), Some("zz9")).to_bytes();
                }
            }
        }
    }
}

/// Stream framing at several size limits: lengths stay inside the buffer and the limit,
/// and framing is consistent with a longer buffer (more bytes never shrink a frame).
pub fn check_frame(data: &[u8]) {
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
                    len >= 1 && len <= data.len() && len <= max,
                    "frame of {len} (max {max}) in {}",
                    show(data)
                );
                // the frame alone frames the same, and trailing bytes do not change it
                assert_eq!(
                    frame(&data[..len], max),
                    Frame::Message { len },
                    "frame is not self-contained in {}",
                    show(data)
                );
                let mut longer = data.to_vec();
                longer.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n");
                assert_eq!(
                    frame(&longer, max),
                    Frame::Message { len },
                    "trailing bytes changed the frame of {}",
                    show(data)
                );
                if max == usize::MAX {
                    if let Ok(m) = parse_message(Bytes::copy_from_slice(&data[..len])) {
                        read_everything(&m);
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
}

/// Every header-value parser on one string: URI, Via, name-addr, CSeq, lists, parameters,
/// digest credentials and challenges (which must round-trip through their serializers).
fn check_value_str(v: &str) {
    if let Ok(u) = Uri::parse(v) {
        let _ = (
            u.transport(),
            u.host_unbracketed(),
            u.param("lr"),
            u.param("maddr"),
        );
    }
    let _ = split_hostport(v);
    let _ = (param_lookup(v, "tag"), param_lookup(v, ""));
    for item in split_list(v) {
        if let Ok(via) = Via::parse(item) {
            let _ = (
                via.branch(),
                via.has_rfc3261_branch(),
                via.param("received"),
            );
        }
        if let Ok(na) = NameAddr::parse(item) {
            let _ = (
                na.uri().host_unbracketed(),
                na.uri().transport(),
                na.tag(),
                na.param("expires"),
            );
        }
    }
    let _ = CSeq::parse(&Text::from(v.to_string()));
    let _ = confab_sip::message::parse_delta_seconds(v);
    if let Ok(c) = Credentials::parse(v) {
        let _ = digest::verify(&c, "REGISTER", "b1726872c344b6dc8365b774f8fd6412");
        let again = c.to_header_value();
        let back = Credentials::parse(&again).unwrap_or_else(|e| {
            panic!("credentials {again:?} do not re-parse: {e:?} (from {v:?})")
        });
        assert_eq!(
            back, c,
            "credentials changed over a round trip: {v:?} -> {again:?}"
        );
    }
    if let Ok(ch) = Challenge::parse(v) {
        let again = ch.to_header_value();
        let back = Challenge::parse(&again).unwrap_or_else(|e| {
            panic!("challenge {again:?} does not re-parse: {e:?} (from {v:?})")
        });
        assert_eq!(
            back.to_header_value(),
            again,
            "challenge serialization is not stable: {v:?}"
        );
    }
}

/// bytes (as lossy UTF-8) -> every header-value parser.
pub fn check_values(data: &[u8]) {
    check_value_str(&String::from_utf8_lossy(data));
}

/// bytes -> PIDF parser; a document that parses serializes to XML that parses to the same
/// document, and every privacy view of it is valid PIDF.
pub fn check_pidf(data: &[u8]) {
    let Ok(doc) = Presence::parse(data) else {
        return;
    };
    let xml = doc.to_xml();
    let again = Presence::parse(xml.as_bytes())
        .unwrap_or_else(|e| panic!("PIDF re-parse failed ({e}): {xml}\nfrom {}", show(data)));
    assert_eq!(
        again.to_xml(),
        xml,
        "PIDF serialization is not stable for {}",
        show(data)
    );
    let _ = (doc.entity(), doc.first_basic(), pidf::is_dnd(&doc));
    for level in Level::ALL {
        let v = pidf::view(&doc, level).to_xml();
        Presence::parse(v.as_bytes())
            .unwrap_or_else(|e| panic!("{level} view is not PIDF ({e}): {v}\nfrom {}", show(data)));
    }
    let combined = pidf::combine(doc.entity(), &[&doc, &again]).to_xml();
    Presence::parse(combined.as_bytes())
        .unwrap_or_else(|e| panic!("combined document is not PIDF ({e}): {combined}"));
}
