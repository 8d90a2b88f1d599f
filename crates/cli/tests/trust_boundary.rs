//! The trust boundary, tried as an attacker would over real sockets: from outside with no
//! password, with words a sender controls (a To tag, a From, a Route, a flow token), against
//! a running `confab serve`. Each test asserts that nothing reached the target, and that
//! legitimate traffic was still served. (docs/security.md lists what each test proves.)

mod common;
use common::*;
use confab_sip::{HeaderName, Message, Method, Text};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A registered user agent.
fn registered(name: &str, s: &Server) -> Ua {
    let mut ua = Ua::udp(name, s.addr());
    assert_eq!(ua.register(300).status(), Some(200), "{name} registers");
    ua
}

/// A socket that stands for a host confab must never send to; asserts it got nothing.
struct Victim(UdpSocket);

impl Victim {
    fn new() -> Victim {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        Victim(s)
    }
    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }
    /// Nothing arrived. Called after the attacker got its final answer: confab decides
    /// (and would have forwarded) before it answers, so a short wait covers the datagram
    /// in flight on loopback.
    fn assert_untouched(&self, what: &str) {
        self.0
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 65535];
        if let Ok((n, _)) = self.0.recv_from(&mut buf) {
            panic!(
                "{what}: the victim got {:?}",
                String::from_utf8_lossy(&buf[..n]).lines().next()
            );
        }
    }
}

/// A raw request as an attacker writes it: every header given, nothing added but Via,
/// Call-ID, CSeq and Max-Forwards.
fn forged(
    attacker: &mut Ua,
    method: Method,
    ruri: &str,
    from: &str,
    to: &str,
    extra: &[(HeaderName, String)],
) -> Message {
    let seq = attacker.next_cseq();
    let mut m = Message::request(method.clone(), Text::from(ruri));
    m.headers.push(HeaderName::Via, attacker.via());
    m.headers.push(HeaderName::MaxForwards, "70");
    m.headers.push(HeaderName::From, from.to_string());
    m.headers.push(HeaderName::To, to.to_string());
    m.headers.push(HeaderName::CallId, unique("forged-"));
    m.headers.push(HeaderName::CSeq, format!("{seq} {method}"));
    for (n, v) in extra {
        m.headers.push(n.clone(), v.clone());
    }
    if method == Method::Message {
        m.set_body(
            "text/plain",
            "pay the invoice at http://evil.example/".to_string(),
        );
    }
    m
}

/// Sends `m` and returns the final response.
fn final_answer(ua: &mut Ua, m: &Message) -> Message {
    ua.send(m);
    let seq = m.cseq().unwrap().seq;
    let r = ua.expect_response(m.method().unwrap(), seq, 200..=699);
    if m.method() == Some(&Method::Invite) && r.status() != Some(200) {
        ua.send(&ack_for(m, &r));
    }
    r
}

/// Asserts `ua` (a registered target) receives no request for a while (responses to its
/// own earlier requests may still come in).
fn assert_nothing_for(ua: &mut Ua, what: &str) {
    while let Some(m) = ua.recv_timeout(Duration::from_millis(300)) {
        assert!(
            m.status().is_some(),
            "{what}: {} got {}",
            ua.user,
            first_line(&m)
        );
    }
}

/// After an attack, the legitimate path still works: alice (signed in) reaches bob.
fn alice_still_reaches(alice: &mut Ua, bob: &mut Ua) {
    alice.new_call();
    let target = bob.aor();
    let mut m = alice.request(Method::Message, &target, &target);
    m.set_body("text/plain", "hello".to_string());
    let m = alice.challenge_and_resend(m);
    let got = bob.expect_request(Method::Message);
    assert_eq!(got.body.as_ref(), b"hello");
    bob.reply(&got, 200, "b");
    let seq = m.cseq().unwrap().seq;
    assert_eq!(
        alice
            .expect_response(&Method::Message, seq, 200..=699)
            .status(),
        Some(200)
    );
}

#[test]
fn a_made_up_to_tag_proves_no_dialog() {
    let s = Server::start(3, "");
    let mut alice = registered("user0000", &s);
    let mut bob = registered("user0001", &s);
    let mut attacker = Ua::udp("mallory", s.addr());
    let bob_aor = bob.aor();
    let from_alice = format!("<{}>;tag=spoof1", alice.aor());
    let to_bob = format!("<{bob_aor}>;tag=made-up");
    let our_route = format!("<sip:{}:{};lr>", s.ip, s.port);
    for method in [
        Method::Message,
        Method::Info,
        Method::Notify,
        Method::Bye,
        Method::Invite,
        Method::Refer,
    ] {
        for extra in [vec![], vec![(HeaderName::Route, our_route.clone())]] {
            let m = forged(
                &mut attacker,
                method.clone(),
                &bob_aor,
                &from_alice,
                &to_bob,
                &extra,
            );
            let r = final_answer(&mut attacker, &m);
            assert_eq!(
                r.status(),
                Some(407),
                "{method} claiming alice with a To tag is challenged, got {}",
                first_line(&r)
            );
            assert_nothing_for(&mut bob, &format!("spoofed in-dialog {method}"));
        }
    }
    // the same trick to the contact address instead of the AoR
    let contact = bob.contact_uri();
    let m = forged(
        &mut attacker,
        Method::Message,
        &contact,
        &from_alice,
        &to_bob,
        &[],
    );
    assert_eq!(final_answer(&mut attacker, &m).status(), Some(407));
    assert_nothing_for(&mut bob, "spoofed MESSAGE to bob's contact");
    alice_still_reaches(&mut alice, &mut bob);
}

#[test]
fn a_made_up_to_tag_does_not_skip_blocked_or_federation() {
    let mut s = Server::start(3, "");
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0002@example.test",
        "Blocked",
    ]);
    s.restart(); // contact lists are loaded at start (and by the sweep, later)
    let mut bob = registered("user0001", &s);
    let mut attacker = Ua::udp("mallory", s.addr());
    let bob_aor = bob.aor();
    let to_bob = format!("<{bob_aor}>;tag=made-up");
    // a partner domain that is not allowed, with a made-up dialog
    let m = forged(
        &mut attacker,
        Method::Message,
        &bob_aor,
        "<sip:eve@evil.example>;tag=x",
        &to_bob,
        &[],
    );
    let r = final_answer(&mut attacker, &m);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert_nothing_for(&mut bob, "federated MESSAGE with a made-up To tag");
    // carol, whom bob blocked, still cannot reach him by claiming a dialog: she must sign
    // in, and then the block applies
    let mut carol = Ua::udp("user0002", s.addr());
    let carol_from = format!("<{}>;tag=c1", carol.aor());
    let m = forged(
        &mut carol,
        Method::Message,
        &bob_aor,
        &carol_from,
        &to_bob,
        &[],
    );
    let m = carol.challenge_and_resend(m);
    let seq = m.cseq().unwrap().seq;
    let r = carol.expect_response(&Method::Message, seq, 200..=699);
    assert_eq!(
        r.status(),
        Some(202),
        "blocked: answered as if bob were offline"
    );
    assert_nothing_for(&mut bob, "blocked sender with a made-up To tag");
}

#[test]
fn no_open_relay() {
    let s = Server::start(2, "");
    let mut bob = registered("user0001", &s);
    let victim = Victim::new();
    let v = victim.addr();
    let mut attacker = Ua::udp("mallory", s.addr());
    type Case<'a> = (&'a str, String, String, Vec<(HeaderName, String)>);
    let cases: Vec<Case> = vec![
        (
            "Route to another host",
            format!("sip:x@{}", host_port(&v)),
            "<sip:eve@evil.example>;tag=a".into(),
            vec![(HeaderName::Route, format!("<sip:{};lr>", host_port(&v)))],
        ),
        (
            "our Route, then another host",
            "sip:x@victim.example".into(),
            "<sip:eve@evil.example>;tag=a".into(),
            vec![
                (HeaderName::Route, format!("<sip:{}:{};lr>", s.ip, s.port)),
                (HeaderName::Route, format!("<sip:{};lr>", host_port(&v))),
            ],
        ),
        (
            "an IP Request-URI",
            format!("sip:x@{}", host_port(&v)),
            "<sip:eve@evil.example>;tag=a".into(),
            vec![],
        ),
        (
            "an IP Request-URI from a claimed local user with a To tag",
            format!("sip:x@{}", host_port(&v)),
            "<sip:user0000@example.test>;tag=a".into(),
            vec![],
        ),
        (
            "a forged plain-text flow token",
            "sip:x@victim.example".into(),
            "<sip:eve@evil.example>;tag=a".into(),
            vec![(
                HeaderName::Route,
                format!("<sip:cf-u{}_{}@{}:{};lr>", v.ip(), v.port(), s.ip, s.port),
            )],
        ),
        (
            "a forged signed-looking flow token",
            "sip:x@victim.example".into(),
            "<sip:eve@evil.example>;tag=a".into(),
            vec![(
                HeaderName::Route,
                format!(
                    "<sip:cf-0123456789abcdef0123-u{}_{}@{}:{};lr>",
                    v.ip(),
                    v.port(),
                    s.ip,
                    s.port
                ),
            )],
        ),
    ];
    for (what, ruri, from, extra) in cases {
        for method in [Method::Message, Method::Invite, Method::Options] {
            let m = forged(
                &mut attacker,
                method.clone(),
                &ruri,
                &from,
                "<sip:x@victim.example>;tag=t",
                &extra,
            );
            let r = final_answer(&mut attacker, &m);
            let status = r.status().unwrap();
            assert!(
                status == 403 || (status == 407 && from.contains("example.test")),
                "{what} ({method}): expected a refusal, got {}",
                first_line(&r)
            );
            victim.assert_untouched(&format!("{what} ({method})"));
        }
    }
    // a signed-in local user may send to another host (that is what a proxy is for)
    let mut alice = Ua::udp("user0000", s.addr());
    let mut m = alice.request(
        Method::Message,
        &format!("sip:x@{}", host_port(&v)),
        "sip:x@victim.example",
    );
    m.set_body("text/plain", "hi".to_string());
    alice.challenge_and_resend(m);
    victim
        .0
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = victim
        .0
        .recv_from(&mut buf)
        .expect("a signed-in user's request is relayed");
    assert!(buf[..n].starts_with(b"MESSAGE sip:x@"));
    assert_nothing_for(&mut bob, "relay attempts");
}

/// The Record-Route entries of a real call, then tampered with.
#[test]
fn record_route_tokens_are_signed_and_checked() {
    let s = Server::start(2, "");
    let mut alice = registered("user0000", &s);
    let mut bob = registered("user0001", &s);
    // a real call: the Record-Route entry carries a signed token
    let target = bob.aor();
    let mut inv = alice.request(Method::Invite, &target, &target);
    inv.set_body("application/sdp", sdp(&alice));
    let inv = alice.challenge_and_resend(inv);
    let got = bob.expect_request(Method::Invite);
    let rr: Vec<String> = got
        .headers
        .get_all(&HeaderName::RecordRoute)
        .map(|v| v.to_string())
        .collect();
    let token = uri_of(&rr[0]);
    assert!(token.starts_with("sip:cf-"), "{token}");
    bob.reply(&got, 200, "bobtag");
    let seq = inv.cseq().unwrap().seq;
    let ok = alice.expect_response(&Method::Invite, seq, 200..=200);
    let call_id = inv.call_id().unwrap().to_string();
    let from = inv.header(&HeaderName::From).unwrap().to_string();
    let to = ok.header(&HeaderName::To).unwrap().to_string();
    let alice_target = uri_of(got.header(&HeaderName::Contact).unwrap());

    let victim = Victim::new();
    let mut attacker = Ua::udp("mallory", s.addr());
    // 1. the genuine entry replayed into another dialog (another Call-ID)
    let m = attacker.in_dialog(
        Method::Bye,
        &format!("sip:x@{}", host_port(&victim.addr())),
        &rr,
        &to,
        &from,
        "another-call",
        1,
    );
    let r = final_answer(&mut attacker, &m);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    victim.assert_untouched("a token replayed into another dialog");
    // 2. the genuine entry with one digit of its MAC changed, in its own dialog
    let mut bad = rr[0].clone();
    let i = bad.find("cf-").unwrap() + 3;
    let c = if &bad[i..i + 1] == "0" { "1" } else { "0" };
    bad.replace_range(i..i + 1, c);
    let m = attacker.in_dialog(Method::Bye, &alice_target, &[bad], &to, &from, &call_id, 2);
    let r = final_answer(&mut attacker, &m);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert_nothing_for(&mut alice, "a tampered token");
    // 3. the genuine entry in its own dialog works: bob hangs up through confab
    let bye = bob.in_dialog(Method::Bye, &alice_target, &rr, &to, &from, &call_id, 3);
    bob.send(&bye);
    let got_bye = alice.expect_request(Method::Bye);
    alice.reply(&got_bye, 200, "x");
    assert_eq!(
        bob.expect_response(&Method::Bye, 3, 200..=699).status(),
        Some(200)
    );
}

#[test]
fn senders_without_an_identity_are_decided_explicitly() {
    let s = Server::start(2, "");
    let mut alice = registered("user0000", &s);
    let mut bob = registered("user0001", &s);
    let mut attacker = Ua::udp("mallory", s.addr());
    let bob_aor = bob.aor();
    for from in [
        "<sip:evil.example>;tag=a",
        "<sip:example.test>;tag=a",
        "<sip:127.0.0.1>;tag=a",
        "<tel:+14255550100>;tag=a",
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=a",
        "<mailto:eve@evil.example>;tag=a",
    ] {
        for method in [Method::Message, Method::Invite, Method::Subscribe] {
            let mut extra = vec![];
            if method == Method::Subscribe {
                extra.push((HeaderName::Event, "presence".to_string()));
            }
            let m = forged(
                &mut attacker,
                method.clone(),
                &bob_aor,
                from,
                &format!("<{bob_aor}>"),
                &extra,
            );
            let r = final_answer(&mut attacker, &m);
            assert_eq!(
                r.status(),
                Some(403),
                "{method} from {from}: {}",
                first_line(&r)
            );
            assert_nothing_for(&mut bob, &format!("{method} from {from}"));
        }
    }
    alice_still_reaches(&mut alice, &mut bob);
}

/// A REGISTER with credentials built by hand.
fn register_with(ua: &mut Ua, username: &str, uri_override: Option<&str>, qop: bool) -> Message {
    use confab_sip::digest::{response, Algorithm, Challenge};
    let ruri = format!("sip:{}", ua.domain);
    let aor = ua.aor();
    let mut req = ua.request(Method::Register, &ruri, &aor);
    req.headers.push(HeaderName::Expires, "60");
    let r = final_answer(ua, &req);
    assert_eq!(r.status(), Some(401));
    let ch = Challenge::parse(r.header(&HeaderName::WwwAuthenticate).unwrap()).unwrap();
    let uri = uri_override.unwrap_or(&ruri);
    let ha1 = confab_sip::digest::ha1(Algorithm::Md5, username, &ch.realm, &ua.password);
    let cnonce = "0a4f113b";
    let resp = if qop {
        response(
            Algorithm::Md5,
            &ha1,
            &ch.nonce,
            Some(1),
            Some(cnonce),
            Some("auth"),
            "REGISTER",
            uri,
        )
    } else {
        response(
            Algorithm::Md5,
            &ha1,
            &ch.nonce,
            None,
            None,
            None,
            "REGISTER",
            uri,
        )
    };
    let mut auth = format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5",
        ch.realm, ch.nonce
    );
    if qop {
        auth.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
    }
    let mut again = ua.authorize(&req, &r);
    again.headers.set(HeaderName::Authorization, auth);
    final_answer(ua, &again)
}

#[test]
fn digest_needs_qop_and_the_request_uri_and_takes_user_at_domain() {
    let s = Server::start(2, "");
    let mut ua = Ua::udp("user0000", s.addr());
    let r = register_with(&mut ua, "user0000", None, false);
    assert_eq!(
        r.status(),
        Some(403),
        "RFC 2069 response: {}",
        first_line(&r)
    );
    assert!(r.reason().unwrap().contains("qop"), "{}", first_line(&r));
    let r = register_with(&mut ua, "user0000", Some("sip:other.example"), true);
    assert_eq!(r.status(), Some(400), "uri mismatch: {}", first_line(&r));
    // the server's address instead of the Request-URI (what sipp sends): only when allowed
    let ours = format!("sip:{}:{}", s.ip, s.port);
    let r = register_with(&mut ua, "user0000", Some(&ours), true);
    assert_eq!(
        r.status(),
        Some(400),
        "server address as uri: {}",
        first_line(&r)
    );
    let lenient = Server::start(2, "[auth]\naccept_server_digest_uri = true\n");
    let mut ua2 = Ua::udp("user0000", lenient.addr());
    let ours = format!("sip:{}:{}", lenient.ip, lenient.port);
    let r = register_with(&mut ua2, "user0000", Some(&ours), true);
    assert_eq!(r.status(), Some(200), "allowed: {}", first_line(&r));
    let r = register_with(
        &mut ua2,
        "user0000",
        Some("sip:user0001@example.test"),
        true,
    );
    assert_eq!(
        r.status(),
        Some(400),
        "another user's URI: {}",
        first_line(&r)
    );
    // the same account under its three user names
    for name in ["user0000", "user0000@example.test", "user0000@"] {
        let r = register_with(&mut ua, name, None, true);
        assert_eq!(r.status(), Some(200), "{name}: {}", first_line(&r));
    }
    // another domain in the user name is not this account
    let r = register_with(&mut ua, "user0000@evil.example", None, true);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
}

#[test]
fn sipsak_default_register_signs_in() {
    // sipsak 0.9.8 writes at most four digits of a port into the URIs it builds
    let s = Server::start_with("127.0.0.1", free_port_in(5100..9900), 2, "");
    let port = free_port("127.0.0.1");
    let out = std::process::Command::new("sipsak")
        .args([
            "-U",
            "-C",
            "empty",
            "-x",
            "60",
            "-s",
            &format!("sip:user0001@{}:{}", s.ip, s.port),
            "-a",
            "pw-user0001",
            "-l",
            &port.to_string(),
            "-H",
            "127.0.0.1",
            "-vv",
        ])
        .output()
        .expect("sipsak (Debian package sipsak) is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(
        out.status.success(),
        "sipsak REGISTER failed:\n{text}\n{}",
        s.log_text()
    );
}

#[test]
fn a_trusted_peer_is_trusted_over_a_connection_only() {
    // 127.0.0.5 stands for a PSTN gateway
    let s = Server::start(2, "[trust]\npeers = [\"127.0.0.5\"]\n");
    let mut bob = registered("user0001", &s);
    let bob_aor = bob.aor();
    // over TCP from the gateway's address: not challenged, delivered
    let gw_sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    gw_sock
        .bind(&"127.0.0.5:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    gw_sock.connect(&s.addr().into()).unwrap();
    let mut gw = Ua::from_tcp("gateway", std::net::TcpStream::from(gw_sock), s.addr());
    let m = forged(
        &mut gw,
        Method::Message,
        &bob_aor,
        "<sip:+14255550100@127.0.0.5;user=phone>;tag=g",
        &format!("<{bob_aor}>"),
        &[],
    );
    gw.send(&m);
    let got = bob.expect_request(Method::Message);
    bob.reply(&got, 200, "b");
    let seq = m.cseq().unwrap().seq;
    assert_eq!(
        gw.expect_response(&Method::Message, seq, 200..=699)
            .status(),
        Some(200)
    );
    // the same from the gateway's address over UDP (which can be forged): refused
    let mut spoof = Ua::udp_on("127.0.0.5", "gateway", s.addr());
    let m = forged(
        &mut spoof,
        Method::Message,
        &bob_aor,
        "<sip:+14255550100@127.0.0.5;user=phone>;tag=g",
        &format!("<{bob_aor}>"),
        &[],
    );
    let r = final_answer(&mut spoof, &m);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert_nothing_for(&mut bob, "a gateway's address over UDP");
}
