//! End-to-end tests of the SIP core: a real `confab serve` on loopback, real UDP and TCP
//! sockets, our own test user agent (tests/common).

mod common;
use common::*;
use confab_sip::{HeaderName, Message, Method};
use std::time::Duration;

fn registered(ua: &mut Ua) {
    let r = ua.register(300);
    assert_eq!(
        r.status(),
        Some(200),
        "{} could not register: {}",
        ua.user,
        first_line(&r)
    );
}

#[test]
fn register_good_wrong_and_unknown_and_refresh() {
    let s = Server::start(10, "");
    for transport in ["udp", "tcp"] {
        let mk = |u: &str| {
            if transport == "udp" {
                Ua::udp(u, s.addr())
            } else {
                Ua::tcp(u, s.addr())
            }
        };
        let mut ua = mk("user0001");
        let r = ua.register(300);
        assert_eq!(r.status(), Some(200));
        let cs = contacts(&r);
        assert_eq!(cs.len(), 1, "{cs:?}");
        assert!(
            cs[0].contains(&ua.contact_uri()) && cs[0].contains("expires="),
            "{cs:?}"
        );
        assert!(r.header(&HeaderName::Date).is_some());

        // refresh: still one binding
        let r = ua.register(600);
        assert_eq!(contacts(&r).len(), 1);

        // (a second wrong try of the same account from the same address within its
        // back-off would be refused unchecked: each transport tries another account)
        let mut bad = mk(if transport == "udp" {
            "user0002"
        } else {
            "user0003"
        });
        bad.password = "wrong".into();
        let r = bad.register(300);
        assert_eq!(r.status(), Some(401), "wrong password is challenged again");
        assert!(r.header(&HeaderName::WwwAuthenticate).is_some());

        let mut ghost = mk(if transport == "udp" {
            "nobody"
        } else {
            "nobody2"
        });
        let r = ghost.register(300);
        assert_eq!(
            r.status(),
            Some(401),
            "unknown users look like wrong passwords"
        );

        // unregister this contact
        let r = ua.register(0);
        assert_eq!(r.status(), Some(200));
        assert!(contacts(&r).is_empty(), "{:?}", contacts(&r));
    }
}

#[test]
fn challenge_offers_md5_and_sha256_and_sha256_works() {
    let s = Server::start(5, "[auth]\nsha256 = true\n");
    let mut ua = Ua::udp("user0003", s.addr());
    let req = ua.request(Method::Register, "sip:example.test", &ua.aor());
    ua.send(&req);
    let r = ua.expect_response(&Method::Register, 1, 401..=401);
    let chals: Vec<String> = r
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .map(|v| v.to_string())
        .collect();
    assert_eq!(chals.len(), 2);
    assert!(
        chals[0].contains("algorithm=MD5") && chals[1].contains("algorithm=SHA-256"),
        "{chals:?}"
    );
    assert!(chals[0].contains("qop=\"auth\"") && chals[0].contains("realm=\"example.test\""));
    // answer the SHA-256 challenge
    let mut sha = r.clone();
    sha.headers.remove_all(&HeaderName::WwwAuthenticate);
    sha.headers
        .push(HeaderName::WwwAuthenticate, chals[1].clone());
    let again = ua.authorize(&req, &sha);
    ua.send(&again);
    let ok = ua.expect_response(&Method::Register, 2, 200..=699);
    assert_eq!(ok.status(), Some(200));
}

#[test]
fn md5_only_by_default() {
    let s = Server::start(5, "");
    let mut ua = Ua::udp("user0003", s.addr());
    let req = ua.request(Method::Register, "sip:example.test", &ua.aor());
    ua.send(&req);
    let r = ua.expect_response(&Method::Register, 1, 401..=401);
    let chals: Vec<String> = r
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .map(|v| v.to_string())
        .collect();
    assert_eq!(chals.len(), 1, "{chals:?}");
    assert!(chals[0].contains("algorithm=MD5"));
}

#[test]
fn nonce_replay_and_stale_nonce() {
    let s = Server::start(5, "[auth]\nnonce_lifetime = 1\n");
    let mut ua = Ua::udp("user0001", s.addr());
    let req = ua.request(Method::Register, "sip:example.test", &ua.aor());
    ua.send(&req);
    let chal = ua.expect_response(&Method::Register, 1, 401..=401);
    let first = ua.authorize(&req, &chal);
    ua.send(&first);
    assert_eq!(
        ua.expect_response(&Method::Register, 2, 200..=699).status(),
        Some(200)
    );
    // the same credentials (nonce, nc=1) in a new transaction are a replay
    let replay = ua.authorize(&req, &chal);
    ua.send(&replay);
    let r = ua.expect_response(&Method::Register, 3, 200..=699);
    assert_eq!(r.status(), Some(401), "replayed nonce-count refused");
    // after the lifetime the nonce is stale: credentials on the nonce of that last
    // challenge, sent until the server calls them stale (while the nonce is young the
    // first is a good refresh and the others replays of its nonce-count)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        let late = ua.authorize(&req, &r);
        let seq = late.cseq().unwrap().seq;
        ua.send(&late);
        let a = ua.expect_response(&Method::Register, seq, 200..=699);
        if a.status() == Some(401)
            && a.header(&HeaderName::WwwAuthenticate)
                .is_some_and(|h| h.contains("stale=true"))
        {
            break a;
        }
        assert!(matches!(a.status(), Some(200 | 401)), "{}", first_line(&a));
        assert!(
            std::time::Instant::now() < deadline,
            "the nonce never went stale"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.status(), Some(401));
    assert!(
        r.header(&HeaderName::WwwAuthenticate)
            .unwrap()
            .contains("stale=true"),
        "{}",
        r.header(&HeaderName::WwwAuthenticate).unwrap()
    );
}

#[test]
fn registrar_rules_min_expires_star_and_several_contacts() {
    let s = Server::start(10, "[registrar]\nmin_expires = 60\n");
    let mut a = Ua::udp("user0004", s.addr());
    let r = a.register(10);
    assert_eq!(r.status(), Some(423));
    assert_eq!(r.header(&HeaderName::MinExpires).unwrap(), "60");

    // two devices of one user, with q-values
    let mut b = Ua::udp("user0004", s.addr());
    let mut ra = a.request(Method::Register, "sip:example.test", &a.aor());
    ra.headers.set(
        HeaderName::Contact,
        format!("<{}>;q=0.7;expires=120", a.contact_uri()),
    );
    assert_eq!(a.send_authenticated(ra).status(), Some(200));
    let r = b.register(300);
    let cs = contacts(&r);
    assert_eq!(cs.len(), 2, "{cs:?}");
    assert!(cs.iter().any(|c| c.contains("q=0.700")), "{cs:?}");

    // Contact: * needs Expires: 0
    let mut star = b.request(Method::Register, "sip:example.test", &b.aor());
    star.headers.set(HeaderName::Contact, "*");
    star.headers.set(HeaderName::Expires, "30");
    assert_eq!(b.send_authenticated(star).status(), Some(400));
    let mut star = b.request(Method::Register, "sip:example.test", &b.aor());
    star.headers.set(HeaderName::Contact, "*");
    star.headers.set(HeaderName::Expires, "0");
    let r = b.send_authenticated(star);
    assert_eq!(r.status(), Some(200));
    assert!(contacts(&r).is_empty());

    // a query (no Contact) lists nothing now
    let mut q = b.request(Method::Register, "sip:example.test", &b.aor());
    q.headers.remove_all(&HeaderName::Contact);
    let r = b.send_authenticated(q);
    assert_eq!(r.status(), Some(200));
    assert!(contacts(&r).is_empty());
}

/// RFC 3261 §10.3: the bindings of one REGISTER change all together or not at all.
#[test]
fn a_failed_register_with_several_contacts_changes_no_binding() {
    let s = Server::start(10, "[registrar]\nmax_contacts = 2\n");
    let mut a = Ua::udp("user0003", s.addr());
    assert_eq!(contacts(&a.register(300)).len(), 1);
    // the first new contact would fit, the second would be one too many
    let mut two = a.request(Method::Register, "sip:example.test", &a.aor());
    two.headers.set(
        HeaderName::Contact,
        "<sip:user0003@127.0.0.1:1111>, <sip:user0003@127.0.0.1:2222>",
    );
    let r = a.send_authenticated(two);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    let mut q = a.request(Method::Register, "sip:example.test", &a.aor());
    q.headers.remove_all(&HeaderName::Contact);
    let listed = contacts(&a.send_authenticated(q));
    assert_eq!(
        listed.len(),
        1,
        "the refused REGISTER left a binding: {listed:?}"
    );
    assert!(!listed.iter().any(|c| c.contains(":1111")), "{listed:?}");
}

#[test]
fn registrations_expire_on_time() {
    let s = Server::start(5, "[registrar]\nmin_expires = 1\n");
    let mut bob = Ua::udp("user0002", s.addr());
    assert_eq!(bob.register(2).status(), Some(200));
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    let mut m = alice.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.set_body("text/plain", "before expiry");
    let m = alice.challenge_and_resend(m);
    let got = bob.expect_request(Method::Message);
    bob.reply(&got, 200, "b1");
    alice.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=200);
    // bob's registrations, as the registrar lists them, until the 2 s binding is gone
    wait_until("bob's binding to expire", Duration::from_secs(10), || {
        let mut q = bob.request(Method::Register, "sip:example.test", &bob.aor());
        q.headers.remove_all(&HeaderName::Contact);
        contacts(&bob.send_authenticated(q)).is_empty()
    });
    alice.new_call();
    let inv = alice.request(
        Method::Invite,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    let inv = alice.challenge_and_resend(inv);
    let r = alice.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
    assert_eq!(
        r.status(),
        Some(480),
        "expired binding is gone: {}",
        first_line(&r)
    );
}

#[test]
fn authenticated_user_must_match_from_and_to() {
    let s = Server::start(10, "");
    let mut mallory = Ua::udp("user0005", s.addr());
    // REGISTER for someone else's AoR with own credentials
    let mut req = mallory.request(
        Method::Register,
        "sip:example.test",
        "sip:user0006@example.test",
    );
    req.headers.set(
        HeaderName::From,
        format!("<sip:user0006@example.test>;tag={}", mallory.from_tag),
    );
    let r = mallory.send_authenticated(req);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    // MESSAGE with a forged From
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut bob);
    let mut m = mallory.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.headers.set(
        HeaderName::From,
        format!("<sip:user0006@example.test>;tag={}", mallory.from_tag),
    );
    m.set_body("text/plain", "I am user0006");
    let r = mallory.send_authenticated(m);
    assert_eq!(r.status(), Some(403));
    bob.expect_silence(Duration::from_millis(300));
}

fn message_between(alice: &mut Ua, bob: &mut Ua) {
    let mut m = alice.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.set_body("text/plain", "hello bob");
    let m = alice.challenge_and_resend(m);
    let got = bob.expect_request(Method::Message);
    assert_eq!(&got.body[..], b"hello bob");
    assert_eq!(
        got.uri().unwrap().as_str(),
        bob.contact_uri(),
        "Request-URI is the registered contact"
    );
    assert_eq!(
        got.headers.count(&HeaderName::Via),
        2,
        "proxy added its Via"
    );
    assert!(
        got.header(&HeaderName::RecordRoute).is_none(),
        "MESSAGE is not record-routed"
    );
    assert!(
        got.header(&HeaderName::ProxyAuthorization).is_some()
            || got.header(&HeaderName::ProxyAuthorization).is_none()
    );
    assert_eq!(got.max_forwards(), Some(69));
    bob.reply(&got, 200, "bobtag");
    let r = alice.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(200));
}

#[test]
fn message_between_registered_clients_udp_and_tcp() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    message_between(&mut alice, &mut bob);

    // bob over TCP: the request reaches him over the connection he registered on
    let mut alice = Ua::tcp("user0001", s.addr());
    let mut bob = Ua::tcp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    message_between(&mut alice, &mut bob);
}

#[test]
fn unknown_and_offline_users() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let m = alice.request(
        Method::Message,
        "sip:nosuchuser@example.test",
        "sip:nosuchuser@example.test",
    );
    let m = alice.challenge_and_resend(m);
    assert_eq!(
        alice
            .expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(404)
    );
    alice.new_call();
    let inv = alice.request(
        Method::Invite,
        "sip:user0007@example.test",
        "sip:user0007@example.test",
    );
    let inv = alice.challenge_and_resend(inv);
    let r = alice.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(480), "known user, not registered");
    alice.send(&ack_for(&inv, &r));
}

/// A full call alice → bob: INVITE/100/180/200/ACK/BYE/200, all through the proxy.
#[test]
fn invite_call_through_the_proxy_udp_tcp_and_mixed() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    call(&mut alice, &mut bob, None);

    let mut alice = Ua::tcp("user0001", s.addr());
    let mut bob = Ua::tcp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    call(&mut alice, &mut bob, None);

    // UDP caller, TCP callee: double Record-Route (RFC 5658)
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    call(&mut alice, &mut bob, None);
}

#[test]
fn cancel_of_a_ringing_call() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    let mut inv = alice.request(
        Method::Invite,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    inv.set_body("application/sdp", sdp(&alice));
    let inv = alice.challenge_and_resend(inv);
    let seq = inv.cseq().unwrap().seq;
    let got = bob.expect_request(Method::Invite);
    bob.reply(&got, 180, "bobtag");
    alice.expect_response(&Method::Invite, seq, 180..=180);
    // CANCEL: same branch, Request-URI, Call-ID, From, To, CSeq number
    let mut cancel = Message::request(Method::Cancel, inv.uri().unwrap().clone());
    for n in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
    ] {
        cancel
            .headers
            .push(n.clone(), inv.header(&n).unwrap().clone());
    }
    cancel.headers.push(HeaderName::MaxForwards, "70");
    cancel
        .headers
        .push(HeaderName::CSeq, format!("{seq} CANCEL"));
    alice.send(&cancel);
    assert_eq!(
        alice
            .expect_response(&Method::Cancel, seq, 200..=699)
            .status(),
        Some(200)
    );
    let c = bob.expect_request(Method::Cancel);
    bob.reply(&c, 200, "bobtag");
    bob.reply(&got, 487, "bobtag");
    let ack = bob.expect_request(Method::Ack);
    assert_eq!(
        ack.cseq().unwrap().seq,
        got.cseq().unwrap().seq,
        "proxy ACKs the 487 hop by hop"
    );
    let r = alice.expect_response(&Method::Invite, seq, 200..=699);
    assert_eq!(r.status(), Some(487));
    alice.send(&ack_for(&inv, &r));
    bob.expect_silence(Duration::from_millis(300));

    // a CANCEL that matches nothing
    let mut stray = cancel.clone();
    stray.headers.set(HeaderName::Via, alice.via());
    alice.send(&stray);
    assert_eq!(
        alice
            .expect_response(&Method::Cancel, seq, 200..=699)
            .status(),
        Some(481)
    );
}

#[test]
fn forking_to_two_contacts_cancels_the_loser() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob1 = Ua::udp("user0002", s.addr());
    let mut bob2 = Ua::tcp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob1);
    registered(&mut bob2);
    let mut inv = alice.request(
        Method::Invite,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    inv.set_body("application/sdp", sdp(&alice));
    let inv = alice.challenge_and_resend(inv);
    let seq = inv.cseq().unwrap().seq;
    let g1 = bob1.expect_request(Method::Invite);
    let g2 = bob2.expect_request(Method::Invite);
    assert_ne!(
        g1.top_via().unwrap().branch(),
        g2.top_via().unwrap().branch(),
        "one branch each"
    );
    bob2.reply(&g2, 180, "b2");
    bob1.reply(&g1, 180, "b1");
    bob1.reply(&g1, 200, "b1");
    let ok = alice.expect_response(&Method::Invite, seq, 200..=200);
    assert_eq!(ok.to_hdr().unwrap().tag(), Some("b1"));
    let c = bob2.expect_request(Method::Cancel);
    bob2.reply(&c, 200, "b2");
    bob2.reply(&g2, 487, "b2");
    bob2.expect_request(Method::Ack);
    // the 487 of the losing branch never reaches alice
    if let Some(m) = alice.recv_timeout(Duration::from_millis(400)) {
        assert_ne!(m.status(), Some(487), "loser's 487 is absorbed");
    }
}

#[test]
fn forking_aggregates_the_best_final_response() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob1 = Ua::udp("user0002", s.addr());
    let mut bob2 = Ua::udp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob1);
    registered(&mut bob2);
    let inv = alice.request(
        Method::Invite,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    let inv = alice.challenge_and_resend(inv);
    let seq = inv.cseq().unwrap().seq;
    let g1 = bob1.expect_request(Method::Invite);
    let g2 = bob2.expect_request(Method::Invite);
    bob1.reply(&g1, 486, "b1");
    bob1.expect_request(Method::Ack);
    bob2.reply(&g2, 503, "b2");
    bob2.expect_request(Method::Ack);
    let r = alice.expect_response(&Method::Invite, seq, 300..=699);
    assert_eq!(r.status(), Some(486), "486 beats 503: {}", first_line(&r));
}

#[test]
fn udp_request_retransmitted_to_a_silent_callee() {
    let s = Server::start(10, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    let mut m = alice.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.set_body("text/plain", "are you there?");
    alice.challenge_and_resend(m);
    let first = bob.expect_request(Method::Message);
    let again = bob.expect_request(Method::Message);
    assert_eq!(
        first.top_via().unwrap().branch(),
        again.top_via().unwrap().branch(),
        "Timer E retransmission"
    );
}

#[test]
fn retransmitted_request_gets_the_same_answer_once_processed() {
    let s = Server::start(10, "");
    let mut ua = Ua::udp("user0001", s.addr());
    let mut req = ua.request(Method::Register, "sip:example.test", &ua.aor());
    req.headers.push(HeaderName::Expires, "300");
    ua.send(&req);
    let chal = ua.expect_response(&Method::Register, 1, 401..=401);
    let auth = ua.authorize(&req, &chal);
    ua.send(&auth);
    let a = ua.expect_response(&Method::Register, 2, 200..=699);
    ua.send(&auth);
    let b = ua.expect_response(&Method::Register, 2, 200..=699);
    assert_eq!(a.status(), Some(200));
    assert_eq!(
        a.to_bytes(),
        b.to_bytes(),
        "absorbed: the stored response is sent again"
    );
}

#[test]
fn options_to_the_server_and_max_forwards() {
    let s = Server::start(3, "");
    let mut ua = Ua::udp("user0001", s.addr());
    let req = ua.request(Method::Options, "sip:example.test", "sip:example.test");
    ua.send(&req);
    let r = ua.expect_response(&Method::Options, 1, 200..=699);
    assert_eq!(r.status(), Some(200));
    for h in [HeaderName::Allow, HeaderName::Accept, HeaderName::Supported] {
        assert!(r.header(&h).is_some(), "{h:?}");
    }
    assert!(r.header(&HeaderName::Allow).unwrap().contains("INVITE"));
    // answered statelessly (§8.2.7): a retransmission gets the same answer, same To tag
    let tag = |m: &Message| m.to_hdr().and_then(|t| t.tag().map(str::to_owned));
    ua.send(&req);
    let again = ua.expect_response(&Method::Options, 1, 200..=699);
    assert_eq!(again.status(), Some(200));
    assert!(tag(&r).is_some());
    assert_eq!(tag(&again), tag(&r));
    // a new OPTIONS is a new request with a tag of its own
    let req2 = ua.request(Method::Options, "sip:example.test", "sip:example.test");
    let seq2 = req2.cseq().unwrap().seq;
    ua.send(&req2);
    let other = ua.expect_response(&Method::Options, seq2, 200..=699);
    assert_eq!(other.status(), Some(200));
    assert_ne!(tag(&other), tag(&r));
    // a Require the server does not know still gets 420 (the stateful path)
    let mut req3 = ua.request(Method::Options, "sip:example.test", "sip:example.test");
    req3.headers.push(HeaderName::Require, "x-unknown");
    let seq3 = req3.cseq().unwrap().seq;
    ua.send(&req3);
    assert_eq!(
        ua.expect_response(&Method::Options, seq3, 200..=699)
            .status(),
        Some(420)
    );
    let mut req = ua.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    req.headers.set(HeaderName::MaxForwards, "0");
    let seq = req.cseq().unwrap().seq;
    ua.send(&req);
    // Max-Forwards is checked before authentication
    assert_eq!(
        ua.expect_response(&Method::Message, seq, 200..=699)
            .status(),
        Some(483)
    );
    let mut req = ua.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    req.headers.push(HeaderName::ProxyRequire, "foo, bar");
    let seq = req.cseq().unwrap().seq;
    ua.send(&req);
    let r = ua.expect_response(&Method::Message, seq, 200..=699);
    assert_eq!(r.status(), Some(420));
    assert_eq!(r.header(&HeaderName::Unsupported).unwrap(), "foo, bar");
}

#[test]
fn malformed_requests_get_400_naming_the_problem_and_the_server_keeps_serving() {
    let mut s = Server::start(3, "[limits]\nmax_message_bytes = 2048\n");
    let mut ua = Ua::udp("user0001", s.addr());
    let cases: [(&str, u16, &str); 5] = [
        ("OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKm1\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCSeq: 1 OPTIONS\r\n\r\n", 400, "Missing Call-ID header"),
        ("OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKm2\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: m2\r\nCSeq: 1 INVITE\r\n\r\n", 400, "CSeq method does not match the request method"),
        ("OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKm3\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: m3\r\nCSeq: 1 OPTIONS\r\nContent-Length: 99\r\n\r\nx", 400, "Content-Length 99 exceeds the 1 bytes of body received"),
        ("OPTIONS sip:example.test SIP/3.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKm4\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: m4\r\nCSeq: 1 OPTIONS\r\n\r\n", 505, "Version Not Supported"),
        ("OPTIONS mailto:x@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKm5\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: m5\r\nCSeq: 1 OPTIONS\r\n\r\n", 416, "Unsupported URI Scheme"),
    ];
    for (raw, status, reason) in cases {
        ua.send_raw(raw.as_bytes());
        let r = ua.recv_timeout(Duration::from_secs(3)).expect("an answer");
        assert_eq!(r.status(), Some(status), "{raw}");
        assert_eq!(r.reason().unwrap().as_str(), reason);
    }
    // oversized
    let big = format!(
        "MESSAGE sip:user0002@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKbig\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>\r\nCall-ID: big\r\nCSeq: 1 MESSAGE\r\nContent-Length: 4000\r\n\r\n{}",
        "x".repeat(4000)
    );
    ua.send_raw(big.as_bytes());
    assert_eq!(
        ua.recv_timeout(Duration::from_secs(3))
            .expect("513")
            .status(),
        Some(513)
    );
    // garbage: no answer possible, no crash
    for junk in [
        &b"\x00\x01\x02garbage"[..],
        b"INVITE",
        b"\r\n\r\n",
        &[0xffu8; 3000][..],
    ] {
        ua.send_raw(junk);
    }
    // still serving, over UDP and TCP
    let req = ua.request(Method::Options, "sip:example.test", "sip:example.test");
    let seq = req.cseq().unwrap().seq;
    ua.send(&req);
    assert_eq!(
        ua.expect_response(&Method::Options, seq, 200..=200)
            .status(),
        Some(200)
    );
    let mut t = Ua::tcp("user0001", s.addr());
    t.send_raw(b"OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKt1\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\nContent-Length: -5\r\n\r\n");
    let r = t
        .recv_timeout(Duration::from_secs(3))
        .expect("400 over TCP");
    assert_eq!(r.status(), Some(400));
    assert_eq!(r.reason().unwrap().as_str(), "Bad Content-Length");
    assert!(s.is_running());
}

#[test]
fn ipv6_registration_and_message() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine");
        return;
    }
    let s = Server::start_on("::1", 5, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::tcp("user0002", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    message_between(&mut alice, &mut bob);
}

#[test]
fn nat_client_is_reached_over_its_flow() {
    // A client whose Via/Contact claim an address it is not sending from (behind NAT):
    // requests to it go to the address its REGISTER came from.
    let s = Server::start(5, "");
    // The "private" address is another loopback address, so nothing leaves the machine
    // even if the server wrongly used it.
    let mut bob = Ua::udp("user0002", s.addr());
    let nat_via = |n: u32| format!("SIP/2.0/UDP 127.0.0.99:5060;branch=z9hG4bKnat{n};rport");
    let mut reg = bob.request(Method::Register, "sip:example.test", &bob.aor());
    reg.headers.set(HeaderName::Via, nat_via(1));
    reg.headers
        .set(HeaderName::Contact, "<sip:user0002@127.0.0.99:5060>");
    reg.headers.push(HeaderName::Expires, "300");
    bob.send(&reg);
    let chal = bob.expect_response(&Method::Register, 1, 401..=401);
    let mut again = bob.authorize(&reg, &chal);
    again.headers.set(HeaderName::Via, nat_via(2));
    bob.send(&again);
    let r = bob.expect_response(&Method::Register, 2, 200..=699);
    assert_eq!(r.status(), Some(200));
    let mut alice = Ua::udp("user0001", s.addr());
    let mut m = alice.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.set_body("text/plain", "through the NAT");
    alice.challenge_and_resend(m);
    let got = bob.expect_request(Method::Message);
    assert_eq!(got.uri().unwrap().as_str(), "sip:user0002@127.0.0.99:5060");
    assert_eq!(&got.body[..], b"through the NAT");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "domains = [\"example.test\"]\n[registrar]\nmin_expirez = 5\n",
    )
    .unwrap();
    let out = confab()
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:") && err.contains("min_expirez"),
        "{err}"
    );
}

#[test]
fn user_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = confab()
            .args(args)
            .arg("--data")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + String::from_utf8_lossy(&out.stderr).as_ref(),
        )
    };
    // no store yet: refused, naming where it looked, and nothing created
    let (ok, text) = run(&["user", "add", "alice@example.test", "--password", "s3cret"]);
    assert!(
        !ok && text.contains("no store at") && text.contains("--init"),
        "{text}"
    );
    assert!(!dir.path().join("confab.db").exists());
    let (ok, text) = run(&[
        "user",
        "add",
        "alice@example.test",
        "--password",
        "s3cret",
        "--name",
        "Alice A",
        "--init",
    ]);
    assert!(ok, "{text}");
    // every command names the store it used
    assert!(
        text.contains(&format!("store {}", dir.path().join("confab.db").display())),
        "{text}"
    );
    let (ok, text) = run(&["user", "add", "alice@example.test", "--password", "x"]);
    assert!(!ok && text.contains("already exists"), "{text}");
    let (ok, text) = run(&["user", "add", "bad user", "--password", "x"]);
    assert!(!ok && text.contains("username"), "{text}");
    let (_, text) = run(&["user", "list"]);
    assert!(
        text.contains("alice@example.test") && text.contains("enabled"),
        "{text}"
    );
    assert!(run(&["user", "disable", "alice"]).0);
    let (_, text) = run(&["user", "show", "alice"]);
    assert!(text.contains("Enabled     : false"), "{text}");
    assert!(
        !text.contains("s3cret"),
        "password is never stored or shown"
    );
    let (ok, text) = run(&["user", "passwd", "alice"]);
    assert!(
        ok && text.contains("password: "),
        "generated password printed: {text}"
    );
    assert!(run(&["user", "remove", "alice"]).0);
    let (ok, text) = run(&["user", "remove", "alice"]);
    assert!(!ok && text.contains("no such user"), "{text}");
    let (ok, text) = run(&["user", "seed", "--domain", "example.test", "--count", "100"]);
    assert!(ok && text.contains("seeded 100"), "{text}");
}

#[test]
fn user_changes_reach_the_running_server() {
    let s = Server::start(3, "");
    let mut ua = Ua::udp("user0001", s.addr());
    registered(&mut ua);
    let st = confab()
        .args(["user", "disable", "user0001", "--data"])
        .arg(s.data())
        .output()
        .unwrap();
    assert!(st.status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let r = ua.register(300);
        if r.status() == Some(403) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "disabled user still registers: {}",
            first_line(&r)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

const DEFENCE: &str = "[defence]\nrequests_per_second = 50\nburst = 100\nban_secs = 3\nmax_auth_failures_per_user = 3\nmax_auth_failures_per_address = 6\nlockout_secs = 2\n";

#[test]
fn a_flooding_address_is_banned_while_others_are_served() {
    let s = Server::start(5, DEFENCE);
    let mut flooder = Ua::udp_on("127.0.0.2", "user0001", s.addr());
    let mut other = Ua::udp_on("127.0.0.3", "user0002", s.addr());
    let opts = |ua: &mut Ua| {
        let req = ua.request(Method::Options, "sip:example.test", "sip:example.test");
        ua.send(&req);
        req.cseq().unwrap().seq
    };
    for _ in 0..300 {
        opts(&mut flooder);
    }
    s.wait_for_log("flood: address banned");
    while flooder.recv_timeout(Duration::from_millis(100)).is_some() {}
    let seq = opts(&mut flooder);
    assert!(
        flooder.recv_timeout(Duration::from_millis(500)).is_none(),
        "banned: no answer to {seq}"
    );
    let seq = opts(&mut other);
    assert_eq!(
        other
            .expect_response(&Method::Options, seq, 200..=200)
            .status(),
        Some(200),
        "another address is served"
    );
    assert!(
        s.log_text().contains("flood: address banned"),
        "the ban is logged"
    );
    // asked now and then (a banned address's requests are dropped, they do not extend
    // the ban) until served again
    wait_until("the ban to be lifted", Duration::from_secs(10), || {
        let seq = opts(&mut flooder);
        flooder
            .recv_timeout(Duration::from_millis(300))
            .is_some_and(|r| r.status() == Some(200) && r.cseq().is_some_and(|c| c.seq == seq))
    });
    assert!(s.log_text().contains("ban lifted"));
}

#[test]
fn password_guessing_is_locked_out_without_locking_the_user_out_for_long() {
    // (tests/lockout.rs has the rest: retry bursts, address locks, familiar addresses)
    let s = Server::start(5, DEFENCE);
    // a guesser of user0001 over three addresses: each first try counts
    for ip in ["127.0.0.2", "127.0.0.5", "127.0.0.6"] {
        let mut g = Ua::udp_on(ip, "user0001", s.addr());
        g.password = "guess".into();
        assert_eq!(g.register(300).status(), Some(401));
    }
    let r = Ua::udp_on("127.0.0.7", "user0001", s.addr()).register(300);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(
        r.reason()
            .unwrap()
            .contains("Account user0001@example.test is locked"),
        "{}",
        first_line(&r)
    );
    assert!(r.header(&HeaderName::RetryAfter).is_some());
    assert!(s.log_text().contains("password guessing: account locked"));
    // the right password works once the short lockout (2 s) is over
    let mut owner = Ua::udp_on("127.0.0.3", "user0001", s.addr());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = owner.register(300);
        if r.status() == Some(200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still locked: {}",
            first_line(&r)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_count_what_the_server_did() {
    let http = free_port("127.0.0.1");
    let s = Server::start(3, &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let before = metrics(http);
    assert_eq!(metric(&before, "confab_registrar_bindings"), 0.0);
    let mut udp = Ua::udp("user0001", s.addr());
    let mut tcp = Ua::tcp("user0002", s.addr());
    assert_eq!(udp.register(300).status(), Some(200));
    assert_eq!(tcp.register(300).status(), Some(200));
    for _ in 0..5 {
        let req = udp.request(Method::Options, "sip:example.test", "sip:example.test");
        let seq = req.cseq().unwrap().seq;
        udp.send(&req);
        udp.expect_response(&Method::Options, seq, 200..=299);
    }
    let count = |t: &str, tr| {
        metric(
            t,
            &format!("confab_sip_sojourn_seconds_count{{transport=\"{tr}\"}}"),
        )
    };
    // a message is counted just after its answer is sent: give the last one a moment
    let mut after = metrics(http);
    for _ in 0..100 {
        if count(&after, "udp") - count(&before, "udp") >= 7.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        after = metrics(http);
    }
    assert_eq!(metric(&after, "confab_registrar_bindings"), 2.0);
    assert_eq!(metric(&after, "confab_connections"), 1.0);
    // REGISTER twice (challenge, then credentials) and five OPTIONS over UDP
    assert!(
        count(&after, "udp") - count(&before, "udp") >= 7.0,
        "{after}"
    );
    assert!(
        count(&after, "tcp") - count(&before, "tcp") >= 2.0,
        "{after}"
    );
    // every observation is in the +Inf bucket, which equals the count
    let inf = metric(
        &after,
        "confab_sip_sojourn_seconds_bucket{transport=\"udp\",le=\"+Inf\"}",
    );
    assert_eq!(inf, count(&after, "udp"));
    assert!(metric(&after, "process_resident_memory_bytes") > 1e6);
    assert!(after.contains("# TYPE confab_sip_sojourn_seconds histogram"));
    assert_eq!(metric(&after, "confab_sip_requests_shed_total"), 0.0);
    assert_eq!(metric(&after, "confab_handler_panics_total"), 0.0);
    // a call is counted while it is up, and no longer once its BYE went through
    assert_eq!(metric(&after, "confab_calls"), 0.0);
    // (/metrics keeps a rendering for 100 ms: wait for a fresh one)
    let calls_are = |n: f64| {
        wait_until(&format!("confab_calls {n}"), Duration::from_secs(5), || {
            metric(&metrics(http), "confab_calls") == n
        })
    };
    call_with(&mut udp, &mut tcp, None, || calls_are(1.0));
    calls_are(0.0);
}
