//! Every message of RFC 4475 (SIP Torture Test Messages), from tests/torture/.
//! MANIFEST.tsv says what the RFC expects of each; the parser must agree.

use bytes::Bytes;
use confab_sip::{frame, parse_message, Frame, Method};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture")
}

fn load(name: &str) -> Bytes {
    Bytes::from(std::fs::read(dir().join(format!("{name}.dat"))).unwrap())
}

/// (file, expected outcome): Ok(()) parses; Err(status) is rejected with that status.
fn expectation(name: &str, class: &str) -> Result<(), u16> {
    match name {
        "badvers" => Err(505),
        "unkscm" | "novelsc" => Err(416),
        // responses the receiver drops: any rejection will do; 400 is what we report
        "scalarlg" | "bigcode" => Err(400),
        "insuf" | "multi01" | "mcl01" => Err(400),
        _ => match class {
            "valid" | "transaction" | "appl" | "backward" => Ok(()),
            _ => Err(400),
        },
    }
}

#[test]
fn every_rfc4475_message_meets_its_expectation() {
    let manifest = std::fs::read_to_string(dir().join("MANIFEST.tsv")).unwrap();
    let mut failures = vec![];
    let mut count = 0;
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, class) = (cols[0], cols[2]);
        count += 1;
        let got = parse_message(load(name))
            .map(|_| ())
            .map_err(|e| (e.status, e.reason.to_string()));
        let want = expectation(name, class);
        let ok = match (&got, &want) {
            (Ok(()), Ok(())) => true,
            (Err((s, _)), Err(w)) => s == w,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name} ({class}): got {got:?}, want {want:?}"));
        }
    }
    assert_eq!(count, 50, "the whole corpus is listed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rejections_name_the_problem() {
    let reason = |n: &str| parse_message(load(n)).unwrap_err().reason.to_string();
    assert!(
        reason("clerr").contains("Content-Length"),
        "{}",
        reason("clerr")
    );
    assert!(reason("ncl").contains("Content-Length"));
    assert!(reason("mismatch01").contains("CSeq"));
    assert!(reason("insuf").starts_with("Missing"));
    assert!(reason("multi01").starts_with("Duplicate"));
    assert!(reason("quotbal").contains("To"), "{}", reason("quotbal"));
}

#[test]
fn rejected_requests_keep_enough_to_answer() {
    for name in [
        "badinv01",
        "clerr",
        "ncl",
        "scalar02",
        "quotbal",
        "mismatch01",
        "multi01",
        "mcl01",
        "badvers",
    ] {
        let e = parse_message(load(name)).unwrap_err();
        let p = e
            .partial
            .unwrap_or_else(|| panic!("{name}: no partial message"));
        assert!(p.is_request(), "{name}");
        assert!(
            p.call_id().is_some(),
            "{name}: Call-ID readable for the 400"
        );
    }
}

#[test]
fn well_formed_details() {
    let m = parse_message(load("dblreq")).unwrap();
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(
        m.body.is_empty(),
        "octets after Content-Length 0 are ignored"
    );
    let m = parse_message(load("esc02")).unwrap();
    assert!(
        matches!(m.method(), Some(Method::Other(_))),
        "RE%47IST%45R is not REGISTER"
    );
    assert_eq!(m.headers.count(&confab_sip::HeaderName::Contact), 2);
    let m = parse_message(load("mpart01")).unwrap();
    assert_eq!(m.body.len(), 553);
    let m = parse_message(load("noreason")).unwrap();
    assert_eq!(m.status(), Some(100));
    let m = parse_message(load("inv2543")).unwrap();
    assert!(
        !m.body.is_empty(),
        "no Content-Length over UDP: the rest is the body"
    );
    let m = parse_message(load("wsinv")).unwrap();
    assert_eq!(m.max_forwards(), Some(68));
    let m = parse_message(load("semiuri")).unwrap();
    let uri = confab_sip::Uri::parse(m.uri().unwrap()).unwrap();
    assert_eq!(uri.user, Some("user;par=u%40example.net"));
}

#[test]
fn stream_framing_of_bad_lengths() {
    assert!(matches!(frame(&load("ncl"), 65535), Frame::Invalid { .. }));
    assert!(matches!(
        frame(&load("mcl01"), 65535),
        Frame::Invalid { .. }
    ));
    assert_eq!(
        frame(&load("clerr"), 65535),
        Frame::Incomplete,
        "TCP waits for the declared body"
    );
    let d = load("dblreq");
    match frame(&d, 65535) {
        Frame::Message { len } => assert!(len < d.len()),
        other => panic!("{other:?}"),
    }
}
