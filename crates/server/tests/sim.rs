//! Whole-core scenarios on a simulated clock (tests/sim/): expiry, transaction timers,
//! offline delivery and attacks on the trust boundary, without sockets or real sleeps.

#[path = "sim/mod.rs"]
mod harness;

use confab_sip::{HeaderName, Message, Method};
use harness::{first_line, Sim, DOMAIN, SERVER};
use std::time::Duration;

/// The ACK for a non-2xx final response (same branch as the INVITE it acknowledges).
fn ack_for(inv: &Message, r: &Message) -> Message {
    let mut ack = inv.clone();
    ack.start = confab_sip::StartLine::Request {
        method: Method::Ack,
        uri: inv.uri().cloned().unwrap(),
        version: confab_sip::message::SIP_VERSION,
    };
    let seq = inv.cseq().unwrap().seq;
    ack.headers.set(HeaderName::CSeq, format!("{seq} ACK"));
    ack.headers.set(
        HeaderName::To,
        r.header(&HeaderName::To).unwrap().to_string(),
    );
    ack.headers.remove_first(&HeaderName::ContentType);
    ack.body = Default::default();
    ack
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_registration_is_gone_after_its_expiry() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let mut bob = sim.ua("bob", 5080);
    let ok = sim.register(&mut alice, 60);
    assert!(
        ok.header(&HeaderName::Contact)
            .is_some_and(|c| c.contains("expires=60")),
        "{:?}",
        ok.header(&HeaderName::Contact)
    );
    let aor = format!("alice@{DOMAIN}");
    // while registered, a MESSAGE reaches her contact
    let m = bob.message(&alice.aor(), "before");
    sim.send(&bob.src, &m);
    let r = sim.final_for(&bob, &m).expect("a challenge");
    assert_eq!(r.status(), Some(407), "{}", first_line(&r));
    let m = bob.authorize(m, &r);
    sim.send(&bob.src, &m);
    let got = sim.requests_to(&alice);
    assert_eq!(got.len(), 1, "the MESSAGE reached alice");
    sim.answer(&alice, &got[0], 200);
    assert_eq!(sim.final_for(&bob, &m).and_then(|r| r.status()), Some(200));

    sim.advance(secs(59));
    assert!(
        sim.core.location.has_bindings(&aor, sim.now),
        "still bound at 59 s"
    );
    sim.advance(secs(2));
    assert!(
        !sim.core.location.has_bindings(&aor, sim.now),
        "gone after 60 s"
    );
    assert_eq!(
        sim.core.location.count_bindings(),
        0,
        "the sweep removed it"
    );
    // now she is offline: a MESSAGE to her is stored, not sent
    let m = bob.message(&alice.aor(), "after");
    let r = sim.transact(&mut bob, m);
    assert_eq!(r.status(), Some(202), "{}", first_line(&r));
    assert!(sim.requests_to(&alice).is_empty());
}

#[test]
fn an_unanswered_invite_times_out_with_408_to_the_caller() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let mut bob = sim.ua("bob", 5080);
    sim.register(&mut alice, 3600);
    let mut inv = bob.request(Method::Invite, &alice.aor());
    inv.set_body("application/sdp", "v=0\r\n".to_string());
    sim.send(&bob.src, &inv);
    let r = sim.final_for(&bob, &inv).expect("a challenge");
    assert_eq!(r.status(), Some(407), "{}", first_line(&r));
    sim.send(&bob.src, &ack_for(&inv, &r));
    let inv = bob.authorize(inv, &r);
    sim.send(&bob.src, &inv);
    // alice never answers: the INVITE is retransmitted (Timer A) until Timer B
    sim.advance(secs(31));
    let sent = sim.requests_to(&alice);
    assert!(
        sent.iter().all(|m| m.method() == Some(&Method::Invite)),
        "{:?}",
        sent.iter().map(first_line).collect::<Vec<_>>()
    );
    assert!(
        sent.len() >= 6,
        "the INVITE and its retransmissions: {}",
        sent.len()
    );
    assert!(
        sim.final_for(&bob, &inv).is_none(),
        "no final answer before Timer B"
    );
    sim.advance(secs(2));
    let r = sim
        .final_for(&bob, &inv)
        .expect("a final answer after Timer B");
    assert_eq!(r.status(), Some(408), "{}", first_line(&r));
    sim.send(&bob.src, &ack_for(&inv, &r));
    // what went out before: the last retransmission (Timer A at 31.5 s) to alice, and
    // maybe the 408 again (Timer G) before bob's ACK
    sim.requests_to(&alice);
    let before = sim.take(&bob);
    assert!(
        before.iter().all(|m| matches!(m.status(), Some(100 | 408))),
        "{:?}",
        before.iter().map(first_line).collect::<Vec<_>>()
    );
    // then nothing more, and every transaction ends
    sim.advance(secs(40));
    assert!(sim.requests_to(&alice).is_empty());
    assert!(
        sim.final_for(&bob, &inv).is_none(),
        "the 408 is not repeated once acknowledged"
    );
    assert_eq!(sim.core.transactions(), 0);
}

#[test]
fn an_offline_message_is_acknowledged_after_the_store_commits_and_delivered_later() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let mut bob = sim.ua("bob", 5080);
    let m = bob.message(&alice.aor(), "while you were out");
    sim.send(&bob.src, &m);
    let r = sim.final_for(&bob, &m).expect("a challenge");
    let m = bob.authorize(m, &r);
    // the request is in: its answer waits for the store worker
    sim.send_only(&bob.src, &m);
    assert!(
        sim.final_for(&bob, &m).is_none(),
        "no answer before the store committed"
    );
    assert_eq!(sim.core.effects.len(), 1, "the store write is queued");
    assert!(sim
        .store
        .pending_messages("alice", DOMAIN, 10)
        .unwrap()
        .is_empty());
    // a retransmission meanwhile is absorbed, not stored twice
    sim.send_only(&bob.src, &m);
    assert_eq!(sim.core.effects.len(), 1);
    assert_eq!(sim.run_effects(), 1);
    let stored = sim.store.pending_messages("alice", DOMAIN, 10).unwrap();
    assert_eq!(stored.len(), 1);
    let r = sim.final_for(&bob, &m).expect("the 202 after the commit");
    assert_eq!(r.status(), Some(202), "{}", first_line(&r));

    // alice signs in: the message is read by a worker and sent to her
    sim.advance(secs(5));
    sim.register(&mut alice, 3600);
    let got = sim.requests_to(&alice);
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(first_line).collect::<Vec<_>>()
    );
    assert_eq!(got[0].method(), Some(&Method::Message));
    assert_eq!(got[0].body.as_ref(), b"while you were out");
    // kept until she accepts it
    assert_eq!(
        sim.store
            .pending_messages("alice", DOMAIN, 10)
            .unwrap()
            .len(),
        1
    );
    sim.answer(&alice, &got[0], 200);
    assert!(
        sim.store
            .pending_messages("alice", DOMAIN, 10)
            .unwrap()
            .is_empty(),
        "removed after her 200"
    );
    // and not sent again
    sim.advance(secs(40));
    assert!(sim.requests_to(&alice).is_empty());
}

#[test]
fn a_full_store_queue_answers_503_with_retry_after() {
    let mut sim = Sim::new();
    let alice = sim.ua("alice", 5070);
    let mut bob = sim.ua("bob", 5080);
    let first = bob.message(&alice.aor(), "x");
    sim.send(&bob.src, &first);
    let challenge = sim.final_for(&bob, &first).expect("a challenge");
    // fill the queue with requests whose store writes no worker has taken yet
    let n = confab_server::effects::EFFECT_QUEUE;
    for i in 0..n {
        let m = bob.message(&alice.aor(), &format!("m{i}"));
        let m = bob.authorize(m, &challenge);
        sim.send_only(&bob.src, &m);
        assert!(sim.final_for(&bob, &m).is_none());
    }
    assert_eq!(sim.core.effects.len(), n);
    let m = bob.message(&alice.aor(), "one too many");
    let m = bob.authorize(m, &challenge);
    sim.send_only(&bob.src, &m);
    let r = sim.final_for(&bob, &m).expect("refused at once");
    assert_eq!(r.status(), Some(503), "{}", first_line(&r));
    assert!(r.header(&HeaderName::RetryAfter).is_some());
    assert_eq!(sim.core.effects.len(), n, "nothing more queued");
    // the workers catch up; every queued message is answered (stored or mailbox full)
    sim.run_effects();
    let answers: Vec<_> = sim
        .take(&bob)
        .into_iter()
        .filter_map(|r| r.status())
        .collect();
    assert_eq!(answers.len(), n);
    assert!(
        answers.iter().all(|s| *s == 202 || *s == 486),
        "{answers:?}"
    );
}

#[test]
fn a_presence_subscription_expires_with_a_final_notify() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let mut bob = sim.ua("bob", 5080);
    sim.register(&mut alice, 3600);
    let mut sub = bob.request(Method::Subscribe, &alice.aor());
    sub.headers.push(HeaderName::Event, "presence");
    sub.headers.push(HeaderName::Expires, "120");
    sub.headers.push(HeaderName::Accept, "application/pidf+xml");
    let r = sim.transact(&mut bob, sub);
    let start = sim.now;
    assert!(matches!(r.status(), Some(200 | 202)), "{}", first_line(&r));
    let notifies = sim.requests_to(&bob);
    assert_eq!(notifies.len(), 1, "the first NOTIFY");
    let state = notifies[0]
        .header(&HeaderName::SubscriptionState)
        .unwrap()
        .to_string();
    assert!(state.starts_with("active"), "{state}");
    sim.answer(&bob, &notifies[0], 200);
    sim.advance(secs(119));
    let none: Vec<_> = sim.requests_to(&bob);
    assert!(
        none.is_empty(),
        "{:?}",
        none.iter().map(first_line).collect::<Vec<_>>()
    );
    // the final NOTIFY comes within a tick of the expiry (a second sweep at the latest)
    let mut last = vec![];
    for _ in 0..200 {
        sim.advance(Duration::from_millis(10));
        last = sim.requests_to(&bob);
        if !last.is_empty() {
            break;
        }
    }
    assert_eq!(last.len(), 1, "the final NOTIFY");
    assert!(sim.now - start <= secs(121));
    let state = last[0]
        .header(&HeaderName::SubscriptionState)
        .unwrap()
        .to_string();
    assert!(
        state.starts_with("terminated") && state.contains("timeout"),
        "{state}"
    );
    sim.answer(&bob, &last[0], 200);
    // alice's presence changes no longer reach bob
    sim.register(&mut alice, 0);
    sim.advance(secs(2));
    assert!(sim.requests_to(&bob).is_empty());
}

#[test]
fn a_made_up_to_tag_is_challenged_not_relayed() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let mut mallory = sim.ua("mallory", 5090);
    sim.register(&mut alice, 3600);
    for method in [Method::Message, Method::Bye, Method::Invite] {
        let mut m = mallory.request(method.clone(), &alice.aor());
        m.headers
            .set(HeaderName::From, format!("<sip:bob@{DOMAIN}>;tag=spoof"));
        m.headers
            .set(HeaderName::To, format!("<{}>;tag=made-up", alice.aor()));
        sim.send(&mallory.src, &m);
        let r = sim.final_for(&mallory, &m).expect("an answer");
        assert_eq!(r.status(), Some(407), "{method}: {}", first_line(&r));
        assert!(sim.requests_to(&alice).is_empty(), "{method} reached alice");
    }
}

#[test]
fn routes_from_outside_are_refused() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let mut mallory = sim.ua("mallory", 5090);
    let victim = sim.ua("victim", 5099);
    sim.register(&mut alice, 3600);
    let cases = [
        (
            "a Route to another host",
            "<sip:127.0.0.1:5099;lr>".to_string(),
        ),
        (
            "a forged Route token",
            format!("<sip:cf-0123456789abcdef0123@{SERVER};lr>"),
        ),
        (
            "a forged flow token",
            format!("<sip:cf-0123456789abcdef0123-u127.0.0.1_5099@{SERVER};lr>"),
        ),
    ];
    for (what, route) in cases {
        for method in [Method::Message, Method::Invite, Method::Options] {
            let mut m = mallory.request(method.clone(), "sip:x@127.0.0.1:5099");
            m.headers
                .set(HeaderName::From, "<sip:eve@evil.example>;tag=a");
            m.headers
                .set(HeaderName::To, "<sip:x@victim.example>;tag=t");
            m.headers.push(HeaderName::Route, route.clone());
            sim.send(&mallory.src, &m);
            let r = sim.final_for(&mallory, &m).expect("an answer");
            assert_eq!(
                r.status(),
                Some(403),
                "{what} ({method}): {}",
                first_line(&r)
            );
            assert!(
                sim.take(&victim).is_empty(),
                "{what} ({method}) was relayed"
            );
            assert!(sim.requests_to(&alice).is_empty());
        }
    }
}

#[test]
fn digest_nonces_go_stale_on_the_simulated_clock() {
    let mut sim = Sim::new();
    let mut alice = sim.ua("alice", 5070);
    let req = alice.register(3600);
    sim.send(&alice.src, &req);
    let challenge = sim.final_for(&alice, &req).expect("a challenge");
    // the nonce is too old once its lifetime has passed on the simulated clock
    sim.advance(secs(3600));
    let again = alice.authorize(req, &challenge);
    sim.send(&alice.src, &again);
    let r = sim.final_for(&alice, &again).expect("an answer");
    assert_eq!(r.status(), Some(401), "{}", first_line(&r));
    let www = r.header(&HeaderName::WwwAuthenticate).unwrap().to_string();
    assert!(www.to_ascii_lowercase().contains("stale=true"), "{www}");
}
