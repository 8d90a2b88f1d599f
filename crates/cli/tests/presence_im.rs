//! Presence (PUBLISH, SUBSCRIBE/NOTIFY, winfo), Lync privacy relationships and offline
//! instant messages, against a running confab over real sockets.

mod common;
use common::presence::*;
use common::*;
use confab_sip::{HeaderName, Message, Method};
use std::time::{Duration, Instant};

const PRESENCE_CFG: &str = "[presence]\nmin_expires = 1\n";

/// A document with one item of every kind the privacy table distinguishes.
const RICH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
  xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:c="urn:confab:params:xml:ns:pidf-ext"
  entity="sip:user0001@example.test">
  <tuple id="sip"><status><basic>open</basic></status><contact>sip:user0001@example.test</contact></tuple>
  <tuple id="work"><status><basic>open</basic></status><contact>tel:+15550001</contact><rpid:class>work</rpid:class></tuple>
  <tuple id="mobile"><status><basic>open</basic></status><contact>tel:+15550002</contact><rpid:class>mobile</rpid:class></tuple>
  <tuple id="home"><status><basic>open</basic></status><contact>tel:+15550003</contact><rpid:class>home</rpid:class></tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:on-the-phone/></rpid:activities>
    <c:availability>6500</c:availability>
    <dm:note>Personal-note-marker</dm:note>
    <c:location>Location-marker</c:location>
    <c:calendar>Calendar-marker</c:calendar>
    <c:meeting-subject>Meeting-subject-marker</c:meeting-subject>
    <c:meeting-location>Meeting-location-marker</c:meeting-location>
  </dm:person>
</presence>"#;

/// In-dialog SUBSCRIBE (refresh, or unsubscribe with 0).
fn resubscribe(watcher: &mut Ua, ok: &Message, event: &str, expires: u32) -> Message {
    let target = uri_of(ok.header(&HeaderName::Contact).unwrap());
    let from = ok.header(&HeaderName::From).unwrap().to_string();
    let to = ok.header(&HeaderName::To).unwrap().to_string();
    let seq = watcher.next_cseq() + 10;
    let mut req = watcher.in_dialog(
        Method::Subscribe,
        &target,
        &[],
        &from,
        &to,
        ok.call_id().unwrap(),
        seq,
    );
    req.headers.push(HeaderName::Event, event);
    req.headers.push(HeaderName::Expires, expires.to_string());
    req.headers
        .push(HeaderName::Contact, format!("<{}>", watcher.contact_uri()));
    watcher.send(&req);
    watcher.expect_response(&Method::Subscribe, seq, 200..=699)
}

fn state(n: &Message) -> String {
    n.header(&HeaderName::SubscriptionState)
        .unwrap()
        .to_string()
}

fn registered(ua: &mut Ua) {
    assert_eq!(ua.register(300).status(), Some(200));
}

#[test]
fn publish_refresh_modify_remove_and_expire() {
    let s = Server::start(10, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::udp("user0002", s.addr());
    let r = publish(&mut alice, Some(&pidf("user0001", "first")), 60, None);
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.header(&HeaderName::Expires).unwrap(), "60");
    let tag1 = etag(&r);

    let (ok, n) = subscribe(&mut bob, "user0001", "presence", 120);
    assert!(state(&n).starts_with("active;expires="), "{}", state(&n));
    assert!(
        body(&n).contains("first") && body(&n).contains("<basic>open</basic>"),
        "{}",
        body(&n)
    );
    assert_eq!(
        n.header(&HeaderName::ContentType).unwrap(),
        "application/pidf+xml"
    );

    // body-less refresh keeps the document; the entity tag changes
    let r = publish(&mut alice, None, 60, Some(&tag1));
    assert_eq!(r.status(), Some(200));
    let tag2 = etag(&r);
    assert_ne!(tag1, tag2);
    bob.expect_silence(Duration::from_millis(300));
    let mut carol = Ua::udp("user0003", s.addr());
    let (_, n) = subscribe(&mut carol, "user0001", "presence", 120);
    assert!(
        body(&n).contains("first"),
        "refresh kept the document: {}",
        body(&n)
    );

    // the old tag is gone
    assert_eq!(
        publish(&mut alice, None, 60, Some(&tag1)).status(),
        Some(412)
    );

    // modify: watchers are told
    let r = publish(
        &mut alice,
        Some(&pidf("user0001", "second")),
        60,
        Some(&tag2),
    );
    assert_eq!(r.status(), Some(200));
    let tag3 = etag(&r);
    let n = notify(&mut bob);
    assert!(
        body(&n).contains("second") && !body(&n).contains("first"),
        "{}",
        body(&n)
    );
    notify(&mut carol);

    // remove: back to what the registrar knows (not registered: closed)
    assert_eq!(
        publish(&mut alice, None, 0, Some(&tag3)).status(),
        Some(200)
    );
    let n = notify(&mut bob);
    assert!(
        body(&n).contains("<basic>closed</basic>") && !body(&n).contains("second"),
        "{}",
        body(&n)
    );
    notify(&mut carol);

    // expiry on time
    let r = publish(&mut alice, Some(&pidf("user0001", "short")), 2, None);
    assert_eq!(r.status(), Some(200));
    assert!(body(&notify(&mut bob)).contains("short"));
    notify(&mut carol);
    let t = Instant::now();
    let n = notify(&mut bob);
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "expired after ~2 s, not at once"
    );
    assert!(body(&n).contains("<basic>closed</basic>"), "{}", body(&n));
    let _ = ok;
}

#[test]
fn publish_errors() {
    let s = Server::start(5, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    assert_eq!(
        publish(&mut alice, None, 60, None).status(),
        Some(400),
        "no body, no SIP-If-Match"
    );
    let r = publish(&mut alice, Some("<not-xml"), 60, None);
    assert_eq!(r.status(), Some(400));
    assert!(
        r.reason().unwrap().starts_with("Bad PIDF"),
        "{}",
        r.reason().unwrap()
    );
    assert_eq!(
        publish(&mut alice, None, 60, Some("nosuchtag")).status(),
        Some(412)
    );
    // someone else's presence
    alice.new_call();
    let mut req = alice.request(
        Method::Publish,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    req.headers.push(HeaderName::Event, "presence");
    req.set_body("application/pidf+xml", pidf("user0002", "forged"));
    assert_eq!(alice.send_authenticated(req).status(), Some(403));
    // unknown event package
    alice.new_call();
    let to = alice.aor();
    let mut req = alice.request(Method::Publish, &to, &to);
    req.headers.push(HeaderName::Event, "dialog");
    req.set_body("application/pidf+xml", pidf("user0001", "x"));
    let r = alice.send_authenticated(req);
    assert_eq!(r.status(), Some(489));
    assert_eq!(r.header(&HeaderName::AllowEvents).unwrap(), "presence");
}

#[test]
fn subscribe_refresh_unsubscribe_and_expiry() {
    let s = Server::start(5, PRESENCE_CFG);
    let mut alice = Ua::tcp("user0001", s.addr());
    registered(&mut alice);
    let mut bob = Ua::tcp("user0002", s.addr());
    let (ok, n) = subscribe(&mut bob, "user0001", "presence", 120);
    assert!(
        body(&n).contains("<basic>open</basic>"),
        "registered without publication is available: {}",
        body(&n)
    );
    assert!(ok.to_hdr().unwrap().tag().is_some());
    assert_eq!(ok.header(&HeaderName::Expires).unwrap(), "120");

    // registration state drives presence: unregister → closed
    assert_eq!(alice.register(0).status(), Some(200));
    assert!(body(&notify(&mut bob)).contains("<basic>closed</basic>"));

    let r = resubscribe(&mut bob, &ok, "presence", 300);
    assert_eq!(r.status(), Some(200));
    assert!(state(&notify(&mut bob)).starts_with("active"));
    let r = resubscribe(&mut bob, &ok, "presence", 0);
    assert_eq!(r.status(), Some(200));
    let n = notify(&mut bob);
    assert_eq!(state(&n), "terminated;reason=timeout");
    // the dialog is gone
    assert_eq!(
        resubscribe(&mut bob, &ok, "presence", 60).status(),
        Some(481)
    );

    // expiry: a terminated NOTIFY on time
    let (_, _) = subscribe(&mut bob, "user0001", "presence", 2);
    let n = notify(&mut bob);
    assert_eq!(state(&n), "terminated;reason=timeout");
}

#[test]
fn two_devices_of_one_user_are_combined() {
    let s = Server::start(5, PRESENCE_CFG);
    let mut laptop = Ua::udp("user0001", s.addr());
    let mut phone = Ua::tcp("user0001", s.addr());
    assert_eq!(
        publish(&mut laptop, Some(&pidf("user0001", "laptop")), 60, None).status(),
        Some(200)
    );
    assert_eq!(
        publish(&mut phone, Some(&pidf("user0001", "phone")), 60, None).status(),
        Some(200)
    );
    let mut bob = Ua::udp("user0002", s.addr());
    let (_, n) = subscribe(&mut bob, "user0001", "presence", 60);
    let b = body(&n);
    assert!(b.contains("t-laptop") && b.contains("t-phone"), "{b}");
    assert_eq!(b.matches("<presence").count(), 1, "one document: {b}");
}

fn sees(b: &str, marker: &str) -> bool {
    b.contains(marker)
}

#[test]
fn each_privacy_level_sees_its_fields() {
    let s = Server::start(10, PRESENCE_CFG);
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0002@example.test",
        "FriendsAndFamily",
    ]);
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0003@example.test",
        "Workgroup",
    ]);
    s.cli(&["contact", "add", "user0001", "user0004@example.test"]); // auto: Colleagues
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0005@example.test",
        "External",
    ]);
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0006@example.test",
        "Blocked",
    ]);
    let list = s.cli(&["contact", "list", "user0001"]);
    assert!(
        list.contains("user0004@example.test")
            && list.contains("Colleagues")
            && list.contains("(auto)"),
        "{list}"
    );
    s.wait_contacts_loaded();
    let mut alice = Ua::udp("user0001", s.addr());
    assert_eq!(
        publish(&mut alice, Some(RICH), 60, None).status(),
        Some(200)
    );

    // (watcher, level, work, mobile, home, note, location, calendar, meeting)
    let table = [
        (
            "user0002",
            "FriendsAndFamily",
            true,
            true,
            true,
            true,
            true,
            true,
            false,
        ),
        (
            "user0003",
            "Workgroup",
            true,
            true,
            false,
            true,
            true,
            true,
            true,
        ),
        (
            "user0004",
            "Colleagues",
            true,
            false,
            false,
            true,
            true,
            true,
            false,
        ),
        (
            "user0005", "External", false, false, false, false, false, false, false,
        ),
        (
            "user0007",
            "Colleagues (no entry)",
            true,
            false,
            false,
            true,
            true,
            true,
            false,
        ),
    ];
    for (watcher, level, work, mobile, home, note, location, calendar, meeting) in table {
        let mut w = Ua::udp(watcher, s.addr());
        let (_, n) = subscribe(&mut w, "user0001", "presence", 60);
        let b = body(&n);
        let check = |what: &str, marker: &str, want: bool| {
            assert_eq!(
                sees(&b, marker),
                want,
                "{level} {} {what}:\n{b}",
                if want { "should see" } else { "should not see" }
            );
        };
        check("availability", "<basic>open</basic>", true);
        check("availability number", "6500", true);
        check("activity", "on-the-phone", true);
        check("work phone", "+15550001", work);
        check("mobile phone", "+15550002", mobile);
        check("home phone", "+15550003", home);
        check("note", "Personal-note-marker", note);
        check("location", "Location-marker", location);
        check("calendar", "Calendar-marker", calendar);
        check("meeting subject", "Meeting-subject-marker", meeting);
        check("meeting location", "Meeting-location-marker", meeting);
    }
    // Blocked: offline, nothing else
    let mut blocked = Ua::udp("user0006", s.addr());
    let (_, n) = subscribe(&mut blocked, "user0001", "presence", 60);
    let b = body(&n);
    assert!(
        b.contains("<basic>closed</basic>")
            && !b.contains("open")
            && !b.contains("6500")
            && !b.contains("marker"),
        "{b}"
    );
}

#[test]
fn blocked_watcher_and_sender_and_live_level_change() {
    let s = Server::start(10, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    assert_eq!(
        publish(&mut alice, Some(RICH), 60, None).status(),
        Some(200)
    );
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut bob);
    let (_, n) = subscribe(&mut bob, "user0001", "presence", 300);
    assert!(
        body(&n).contains("Personal-note-marker"),
        "colleague sees the note"
    );

    // alice blocks bob: the live subscription gets the offline view at once
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0002@example.test",
        "Blocked",
    ]);
    let n = notify(&mut bob);
    let b = body(&n);
    assert!(
        b.contains("<basic>closed</basic>") && !b.contains("marker"),
        "{b}"
    );

    // bob's MESSAGE: 202 like an offline user, never delivered; INVITE: 480
    bob.new_call();
    let mut m = bob.request(
        Method::Message,
        "sip:user0001@example.test",
        "sip:user0001@example.test",
    );
    m.set_body("text/plain", "let me in");
    let m = bob.challenge_and_resend(m);
    assert_eq!(
        bob.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(202)
    );
    bob.new_call();
    let inv = bob.request(
        Method::Invite,
        "sip:user0001@example.test",
        "sip:user0001@example.test",
    );
    let inv = bob.challenge_and_resend(inv);
    let r = bob.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(480));
    bob.send(&ack_for(&inv, &r));
    assert!(
        alice.recv_timeout(Duration::from_millis(500)).is_none(),
        "nothing reached alice"
    );

    // promoted to Workgroup: sees the meeting subject
    s.cli(&[
        "contact",
        "set-level",
        "user0001",
        "user0002@example.test",
        "Workgroup",
    ]);
    let b = body(&notify(&mut bob));
    assert!(
        b.contains("Meeting-subject-marker") && b.contains("+15550002"),
        "{b}"
    );
}

#[test]
fn do_not_disturb_lets_only_the_workgroup_through() {
    let s = Server::start(10, PRESENCE_CFG);
    s.cli(&[
        "contact",
        "add",
        "user0001",
        "user0003@example.test",
        "Workgroup",
    ]);
    s.wait_contacts_loaded();
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    let dnd = "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:c=\"urn:confab:params:xml:ns:pidf-ext\" entity=\"sip:user0001@example.test\"><tuple id=\"a\"><status><basic>open</basic></status><c:availability>9500</c:availability></tuple></presence>";
    assert_eq!(publish(&mut alice, Some(dnd), 60, None).status(), Some(200));
    let mut colleague = Ua::udp("user0002", s.addr());
    let mut m = colleague.request(
        Method::Message,
        "sip:user0001@example.test",
        "sip:user0001@example.test",
    );
    m.set_body("text/plain", "ping");
    let m = colleague.challenge_and_resend(m);
    let r = colleague.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(486), "{}", first_line(&r));
    let mut workgroup = Ua::udp("user0003", s.addr());
    let mut m = workgroup.request(
        Method::Message,
        "sip:user0001@example.test",
        "sip:user0001@example.test",
    );
    m.set_body("text/plain", "urgent");
    let m = workgroup.challenge_and_resend(m);
    let got = alice.expect_request(Method::Message);
    assert_eq!(&got.body[..], b"urgent");
    alice.reply(&got, 200, "a");
    assert_eq!(
        workgroup
            .expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(200)
    );
}

#[test]
fn watcher_info_lists_watchers() {
    let s = Server::start(5, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    let (_, n) = subscribe(&mut alice, "user0001", "presence.winfo", 60);
    assert_eq!(
        n.header(&HeaderName::ContentType).unwrap(),
        "application/watcherinfo+xml"
    );
    assert!(!body(&n).contains("user0002"));
    let mut bob = Ua::udp("user0002", s.addr());
    subscribe(&mut bob, "user0001", "presence", 60);
    let n = notify(&mut alice);
    assert!(
        body(&n).contains("sip:user0002@example.test") && body(&n).contains("active"),
        "{}",
        body(&n)
    );
    // nobody else may watch alice's watchers
    bob.new_call();
    let mut req = bob.request(
        Method::Subscribe,
        "sip:user0001@example.test",
        "sip:user0001@example.test",
    );
    req.headers.push(HeaderName::Event, "presence.winfo");
    let r = bob.send_authenticated(req);
    assert_eq!(r.status(), Some(403));
}

#[test]
fn a_watcher_that_rejects_notify_is_dropped() {
    let s = Server::start(5, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    let mut bob = Ua::udp("user0002", s.addr());
    subscribe(&mut bob, "user0001", "presence", 300);
    assert_eq!(
        publish(&mut alice, Some(&pidf("user0001", "one")), 60, None).status(),
        Some(200)
    );
    let n = bob.expect_request(Method::Notify);
    bob.reply(&n, 481, "w");
    let tag = etag(&publish(
        &mut alice,
        Some(&pidf("user0001", "one")),
        60,
        None,
    ));
    let _ = publish(&mut alice, Some(&pidf("user0001", "two")), 60, Some(&tag));
    bob.expect_silence(Duration::from_millis(800));
}

#[test]
fn offline_messages_survive_a_restart_and_arrive_in_order() {
    let mut s = Server::start(5, "");
    let mut alice = Ua::udp("user0001", s.addr());
    for text in ["first", "second", "third"] {
        alice.new_call();
        let mut m = alice.request(
            Method::Message,
            "sip:user0002@example.test",
            "sip:user0002@example.test",
        );
        m.set_body("text/plain", text);
        m.headers
            .push(HeaderName::Subject, format!("subject {text}"));
        let m = alice.challenge_and_resend(m);
        let r = alice.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699);
        assert_eq!(r.status(), Some(202), "{}", first_line(&r));
    }
    // typing notifications are not stored
    alice.new_call();
    let mut m = alice.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.set_body("application/im-iscomposing+xml", "<isComposing/>");
    let m = alice.challenge_and_resend(m);
    assert_eq!(
        alice
            .expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(480)
    );

    s.restart();

    let mut bob = Ua::tcp("user0002", s.addr());
    registered(&mut bob);
    for text in ["first", "second", "third"] {
        let got = bob.expect_request(Method::Message);
        assert_eq!(String::from_utf8_lossy(&got.body), text, "in order");
        assert!(
            got.header(&HeaderName::From).unwrap().contains("user0001"),
            "from the original sender"
        );
        assert_eq!(
            got.header(&HeaderName::Subject).unwrap().as_str(),
            format!("subject {text}")
        );
        assert!(got.header(&HeaderName::Date).is_some());
        bob.reply(&got, 200, "b");
    }
    bob.expect_silence(Duration::from_millis(500));
    // delivered messages are gone: a new registration gets nothing
    let mut bob2 = Ua::udp("user0002", s.addr());
    registered(&mut bob2);
    bob2.expect_silence(Duration::from_millis(500));
}

#[test]
fn a_message_not_accepted_stays_stored() {
    let s = Server::start(5, "");
    let mut alice = Ua::udp("user0001", s.addr());
    let mut m = alice.request(
        Method::Message,
        "sip:user0002@example.test",
        "sip:user0002@example.test",
    );
    m.set_body("text/plain", "keep me");
    let m = alice.challenge_and_resend(m);
    assert_eq!(
        alice
            .expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(202)
    );
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut bob);
    let got = bob.expect_request(Method::Message);
    bob.reply(&got, 486, "b");
    bob.expect_silence(Duration::from_millis(500));
    // kept: the next registration gets it again
    registered(&mut bob);
    let again = bob.expect_request(Method::Message);
    assert_eq!(&again.body[..], b"keep me");
    bob.reply(&again, 200, "b");
    registered(&mut bob);
    bob.expect_silence(Duration::from_millis(500));
}

#[test]
fn offline_store_limits() {
    let s = Server::start(
        5,
        "[im]\nmax_stored_per_user = 2\nmax_stored_message_bytes = 100\n",
    );
    let mut alice = Ua::udp("user0001", s.addr());
    let send = |alice: &mut Ua, text: String| {
        alice.new_call();
        let mut m = alice.request(
            Method::Message,
            "sip:user0003@example.test",
            "sip:user0003@example.test",
        );
        m.set_body("text/plain", text);
        let m = alice.challenge_and_resend(m);
        alice.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
    };
    assert_eq!(send(&mut alice, "x".repeat(101)).status(), Some(413));
    assert_eq!(send(&mut alice, "one".into()).status(), Some(202));
    assert_eq!(send(&mut alice, "two".into()).status(), Some(202));
    let r = send(&mut alice, "three".into());
    assert_eq!(r.status(), Some(486));
    assert!(
        r.reason().unwrap().contains("full"),
        "{}",
        r.reason().unwrap()
    );
}

#[test]
fn disabling_the_presentity_ends_subscriptions_with_deactivated() {
    let s = Server::start(5, PRESENCE_CFG);
    let mut bob = Ua::udp("user0002", s.addr());
    subscribe(&mut bob, "user0001", "presence", 300);
    s.cli(&["user", "disable", "user0001"]);
    let n = notify(&mut bob);
    assert_eq!(state(&n), "terminated;reason=deactivated");
}

#[test]
fn registrations_and_presence_survive_a_graceful_restart() {
    let mut s = Server::start(5, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    let r = publish(
        &mut alice,
        Some(&pidf("user0001", "before-restart")),
        300,
        None,
    );
    let tag = etag(&r);
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut bob);
    subscribe(&mut bob, "user0001", "presence", 300);

    s.restart_graceful();
    // registrations and publications from the store's shared copies (the pool's, a single
    // server is a pool of one), subscriptions from the saved state
    let log = s.log_text();
    assert!(
        log.contains("pool: 2 registrations and 1 publications in the shared location")
            && log.contains("restored 1 subscriptions"),
        "{log}"
    );

    // bob reaches alice without anyone registering again
    bob.new_call();
    let mut m = bob.request(
        Method::Message,
        "sip:user0001@example.test",
        "sip:user0001@example.test",
    );
    m.set_body("text/plain", "still there?");
    let m = bob.challenge_and_resend(m);
    let got = alice.expect_request(Method::Message);
    alice.reply(&got, 200, "a");
    assert_eq!(
        bob.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(200)
    );
    // alice's publication and bob's subscription carry on
    let r = publish(
        &mut alice,
        Some(&pidf("user0001", "after-restart")),
        300,
        Some(&tag),
    );
    assert_eq!(r.status(), Some(200));
    let n = notify(&mut bob);
    assert!(body(&n).contains("after-restart"), "{}", body(&n));
}

#[test]
fn signing_out_everywhere_ends_the_users_publications() {
    let s = Server::start(10, PRESENCE_CFG);
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    // two publications, as a client racing its own first PUBLISH makes
    assert_eq!(
        publish(&mut alice, Some(&pidf("user0001", "one")), 600, None).status(),
        Some(200)
    );
    assert_eq!(
        publish(&mut alice, Some(&pidf("user0001", "two")), 600, None).status(),
        Some(200)
    );
    let mut bob = Ua::udp("user0002", s.addr());
    registered(&mut bob);
    let (_, n) = subscribe(&mut bob, "user0001", "presence", 300);
    assert!(body(&n).contains("<basic>open</basic>"), "{}", body(&n));
    // alice removes the one she knows of, then signs out
    assert_eq!(alice.register(0).status(), Some(200));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b = body(&notify(&mut bob));
        if b.contains("<basic>closed</basic>") && !b.contains("one") && !b.contains("two") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob should see alice offline: {b}"
        );
    }
    assert!(s
        .log_text()
        .contains("signed out on every device: publications removed"));
}

#[test]
fn presence_tables_are_bounded_per_user_with_a_clear_answer() {
    let s = Server::start(
        3,
        "[limits]\nmax_publications_per_user = 2\nmax_subscriptions_per_user = 1\n",
    );
    let mut a = Ua::udp("user0001", s.addr());
    registered(&mut a);
    let mut tags = vec![];
    for note in ["one", "two"] {
        let r = publish(&mut a, Some(&pidf("user0001", note)), 600, None);
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
        tags.push(etag(&r));
    }
    let r = publish(&mut a, Some(&pidf("user0001", "three")), 600, None);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(
        r.reason()
            .unwrap()
            .contains("Too many presence publications")
            && r.reason().unwrap().contains("limit 2"),
        "{}",
        first_line(&r)
    );
    // a refresh of one it has is taken; once one is removed, there is room again
    let r = publish(&mut a, None, 600, Some(&tags[0]));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let r = publish(&mut a, None, 0, Some(&etag(&r)));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let r = publish(&mut a, Some(&pidf("user0001", "five")), 600, None);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));

    let mut w = Ua::udp("user0002", s.addr());
    registered(&mut w);
    subscribe(&mut w, "user0001", "presence", 600);
    w.new_call();
    let uri = "sip:user0000@example.test";
    let mut req = w.request(Method::Subscribe, uri, uri);
    req.headers.push(HeaderName::Event, "presence");
    req.headers.push(HeaderName::Expires, "600");
    let req = w.challenge_and_resend(req);
    let r = w.expect_response(&Method::Subscribe, req.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(
        r.reason()
            .unwrap()
            .contains("Too many presence subscriptions")
            && r.reason().unwrap().contains("limit 1"),
        "{}",
        first_line(&r)
    );
    // another watcher is not affected
    let mut other = Ua::udp("user0000", s.addr());
    registered(&mut other);
    subscribe(&mut other, "user0001", "presence", 600);
}

#[test]
fn full_presence_tables_answer_503_with_retry_after() {
    let s = Server::start(3, "[limits]\nmax_publications = 2\nmax_subscriptions = 1\n");
    let mut a = Ua::udp("user0001", s.addr());
    let mut b = Ua::udp("user0002", s.addr());
    registered(&mut a);
    registered(&mut b);
    let r = publish(&mut a, Some(&pidf("user0001", "one")), 600, None);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let r = publish(&mut b, Some(&pidf("user0002", "one")), 600, None);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let r = publish(&mut a, Some(&pidf("user0001", "two")), 600, None);
    assert_eq!(r.status(), Some(503), "{}", first_line(&r));
    assert!(r.header(&HeaderName::RetryAfter).is_some());

    subscribe(&mut b, "user0001", "presence", 600);
    a.new_call();
    let uri = "sip:user0002@example.test";
    let mut req = a.request(Method::Subscribe, uri, uri);
    req.headers.push(HeaderName::Event, "presence");
    req.headers.push(HeaderName::Expires, "600");
    let req = a.challenge_and_resend(req);
    let r = a.expect_response(&Method::Subscribe, req.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(503), "{}", first_line(&r));
    assert!(r.header(&HeaderName::RetryAfter).is_some());
}
