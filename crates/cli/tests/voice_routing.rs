//! Enterprise voice over real sockets (issue #17 part 3): users call phone numbers through
//! sipp standing in as two PSTN gateways (TCP, 127.0.0.2 and 127.0.0.3); failover on 503
//! and on a gateway that never rings, none on 486; numbers of our users reach them (reverse
//! number lookup); a policy without the usage is refused; caller ID suppression; inbound
//! calls from a gateway by LineURI; outsiders cannot reach the gateways. Needs `sipp`.

mod common;
use common::gateway::{free_udp_port, Answer, Gateway};
use common::*;
use confab_sip::{HeaderName, Message, Method};
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIG: &str = "[voice]\nfast_failover_secs = 2\n";

/// Two gateways (127.0.0.2:p1 and 127.0.0.3:p2, TCP) and the cookbook's plan: 4-digit
/// extensions, 10-digit national, 011 international; Local usage to both gateways (the
/// second strips the +), International on gw2 only; user0000 and user0002 are EV users,
/// user0001 has the LineURI +14255550101; user0002's policy has no usage.
fn setup(p1: u16, p2: u16) -> Server {
    setup_http(p1, p2).0
}

/// [`setup`] with the REST API on a free port (returned).
fn setup_http(p1: u16, p2: u16) -> (Server, u16) {
    let http = free_port("127.0.0.1");
    let s = Server::start(
        4,
        &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n\n{CONFIG}"),
    );
    s.cli(ADD_ROOT);
    let script = format!(
        r#"
Set-CsPstnUsage -Identity Global -Usage @{{Add="Local","International"}}
New-CsPstnGateway -Identity 127.0.0.2 -Port {p1} -Transport TCP
New-CsPstnGateway -Identity 127.0.0.3 -Port {p2} -Transport TCP
New-CsTrunkConfiguration -Identity Service:PstnGateway:127.0.0.3
New-CsOutboundTranslationRule -Identity "PstnGateway:127.0.0.3/StripPlus" -Pattern '^\+(\d*)$' -Translation '$1'
New-CsVoiceNormalizationRule -Parent Global -Name FourDigit -Pattern '^(\d{{4}})$' -Translation '+1425555$1'
New-CsVoiceNormalizationRule -Parent Global -Name National -Pattern '^(\d{{10}})$' -Translation '+1$1'
New-CsVoiceNormalizationRule -Parent Global -Name International -Pattern '^011(\d*)$' -Translation '+$1'
New-CsVoiceRoute -Identity LocalRoute -NumberPattern '^\+1\d{{10}}$' -PstnUsages @{{Add="Local"}} -PstnGatewayList @{{Add="PstnGateway:127.0.0.2","PstnGateway:127.0.0.3"}}
New-CsVoiceRoute -Identity IntlRoute -NumberPattern '^\+(?!1)\d+$' -PstnUsages @{{Add="International"}} -PstnGatewayList @{{Add="PstnGateway:127.0.0.3"}}
Set-CsVoicePolicy -Identity Global -PstnUsages @{{Add="Local","International"}}
New-CsVoicePolicy -Identity NoPstn
Set-CsUser -Identity sip:user0000@{DOMAIN} -EnterpriseVoiceEnabled $true -LineURI "tel:+14255550100"
Set-CsUser -Identity sip:user0001@{DOMAIN} -EnterpriseVoiceEnabled $true -LineURI "tel:+14255550101"
Set-CsUser -Identity sip:user0002@{DOMAIN} -EnterpriseVoiceEnabled $true
Grant-CsVoicePolicy -Identity sip:user0002@{DOMAIN} -PolicyName NoPstn
"#
    );
    s.configure(&script);
    (s, http)
}

fn invite(ua: &mut Ua, ruri: &str) -> Message {
    ua.new_call();
    let mut req = ua.request(Method::Invite, ruri, ruri);
    req.set_body("application/sdp", sdp(ua));
    req
}

/// Sends `req` (answering the challenge); the INVITE that got the final answer, and it.
fn place(ua: &mut Ua, req: Message) -> (Message, Message) {
    place_within(ua, req, Duration::from_secs(5))
}

/// [`place`], waiting up to `within` for each final answer (forwarding after a ring time).
fn place_within(ua: &mut Ua, req: Message, within: Duration) -> (Message, Message) {
    ua.send(&req);
    let r = final_within(ua, req.cseq().unwrap().seq, within);
    if r.status() != Some(407) {
        return (req, r);
    }
    ua.send(&ack_for(&req, &r));
    let again = ua.authorize(&req, &r);
    ua.send(&again);
    let r = final_within(ua, again.cseq().unwrap().seq, within);
    (again, r)
}

/// A call to `ruri`: its final answer; a 2xx is acknowledged and hung up (BYE answered),
/// anything else acknowledged hop by hop.
fn call(ua: &mut Ua, ruri: &str) -> Message {
    let req = invite(ua, ruri);
    let (inv, r) = place(ua, req);
    end(ua, &inv, &r);
    r
}

fn end(ua: &mut Ua, inv: &Message, r: &Message) {
    if !r.status().is_some_and(|s| (200..300).contains(&s)) {
        ua.send(&ack_for(inv, r));
        return;
    }
    let mut routes: Vec<String> = r
        .headers
        .get_all(&HeaderName::RecordRoute)
        .map(|v| v.to_string())
        .collect();
    routes.reverse();
    let target = uri_of(r.header(&HeaderName::Contact).expect("Contact"));
    let from = inv.header(&HeaderName::From).unwrap().to_string();
    let to = r.header(&HeaderName::To).unwrap().to_string();
    let call_id = inv.call_id().unwrap().to_string();
    let seq = inv.cseq().unwrap().seq;
    let ack = ua.in_dialog(Method::Ack, &target, &routes, &from, &to, &call_id, seq);
    ua.send(&ack);
    let bye = ua.in_dialog(Method::Bye, &target, &routes, &from, &to, &call_id, seq + 1);
    ua.send(&bye);
    let ok = ua.expect_response(&Method::Bye, seq + 1, 200..=699);
    assert_eq!(ok.status(), Some(200), "BYE: {}", first_line(&ok));
}

fn ports() -> (u16, u16) {
    (free_port("127.0.0.2"), free_port("127.0.0.3"))
}

#[test]
fn a_national_call_fails_over_from_503_to_the_second_gateway_which_gets_it_translated() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let gw1 = Gateway::start("127.0.0.2", p1, Answer::Fail(503));
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    let mut alice = Ua::udp("user0000", s.addr());
    assert_eq!(alice.register(300).status(), Some(200));
    // the route's gateways are spread round robin: whichever is first, a 503 there goes on
    // to the other, and gw2 always answers
    let r = call(&mut alice, &format!("sip:2065550100@{DOMAIN}"));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let at2 = gw2.invites();
    assert_eq!(at2.len(), 1, "gw2 got the call once");
    // gw2's trunk strips the +; the caller is presented by their LineURI number
    assert!(
        at2[0].contains("INVITE sip:12065550100@127.0.0.3:"),
        "{}",
        at2[0]
    );
    assert!(at2[0].contains(";user=phone"), "{}", at2[0]);
    assert!(at2[0].contains("From: <sip:+14255550100@"), "{}", at2[0]);
    // the next call starts on the other gateway: one of the two calls met gw1's 503
    let r = call(&mut alice, &format!("sip:2065550100@{DOMAIN}"));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let at1 = gw1.invites();
    assert_eq!(at1.len(), 1, "one call tried gw1 first");
    assert!(
        at1[0].contains("INVITE sip:+12065550100@127.0.0.2:"),
        "{}",
        at1[0]
    );
    assert_eq!(gw2.invites().len(), 2);
}

#[test]
fn busy_ends_the_call_without_failover() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let gw1 = Gateway::start("127.0.0.2", p1, Answer::Fail(486));
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Fail(486));
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    let r = call(&mut alice, "tel:+12065550100");
    assert_eq!(r.status(), Some(486), "{}", first_line(&r));
    assert_eq!(
        gw1.invites().len() + gw2.invites().len(),
        1,
        "486 is not failed over"
    );
}

#[test]
fn a_gateway_that_never_answers_is_given_up_after_the_fast_failover_time() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let gw1 = Gateway::start("127.0.0.2", p1, Answer::Silent);
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    // whichever gateway the round robin starts with, gw1's silence costs the fast failover
    // time (2 s here, Lync's 10 s by default), not Timer B's 32 s
    for _ in 0..2 {
        let t = Instant::now();
        let r = call(&mut alice, &format!("sip:2065550100@{DOMAIN}"));
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
    assert_eq!(gw1.invites().len(), 1);
    assert_eq!(gw2.invites().len(), 2);
}

#[test]
fn an_unreachable_gateway_fails_over_and_international_calls_follow_the_usages() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    // nothing listens on gw1: the connection fails and the call goes on to gw2
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    for _ in 0..2 {
        let r = call(&mut alice, &format!("sip:2065550100@{DOMAIN}"));
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    }
    let r = call(&mut alice, &format!("sip:011442079460000@{DOMAIN}"));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let invites = gw2.invites();
    assert_eq!(invites.len(), 3);
    assert!(
        invites[2].contains("INVITE sip:442079460000@127.0.0.3:"),
        "{}",
        invites[2]
    );
    // user0002's policy has no usage: a clear 404, and nothing reaches a gateway
    let mut carol = Ua::udp("user0002", s.addr());
    carol.register(300);
    let r = call(&mut carol, "tel:+442079460000");
    assert_eq!(r.status(), Some(404), "{}", first_line(&r));
    assert!(first_line(&r).contains("PSTN usages"), "{}", first_line(&r));
    // an instant message to a number that no user has goes nowhere (no SMS gateway)
    let mut msg = alice.request(Method::Message, "tel:+12065550100", "tel:+12065550100");
    msg.set_body("text/plain", "hello");
    let r = alice.send_authenticated(msg);
    assert_eq!(r.status(), Some(404), "{}", first_line(&r));
    // a user without Enterprise Voice: 403 with the reason
    let mut dave = Ua::udp("user0003", s.addr());
    dave.register(300);
    let r = call(&mut dave, "tel:+12065550100");
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(
        first_line(&r).contains("Enterprise Voice"),
        "{}",
        first_line(&r)
    );
    assert_eq!(gw2.invites().len(), 3);
}

#[test]
fn an_extension_reaches_the_user_with_that_number() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    let mut bob = Ua::udp("user0001", s.addr());
    bob.register(300);
    // 0101 -> +14255550101 (FourDigit), bob's LineURI
    let req = invite(&mut alice, &format!("sip:0101@{DOMAIN}"));
    let answer = std::thread::spawn(move || {
        let inv = bob.expect_request(Method::Invite);
        bob.reply(&inv, 200, "bobtag");
        inv
    });
    let (_, ok) = place(&mut alice, req);
    assert_eq!(ok.status(), Some(200), "{}", first_line(&ok));
    let inv = answer.join().unwrap();
    assert!(
        first_line(&inv).contains("user0001"),
        "{}",
        first_line(&inv)
    );
    assert!(
        gw2.invites().is_empty(),
        "a user's number never leaves for the PSTN"
    );
}

#[test]
fn caller_id_is_suppressed_or_replaced_per_route() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    // Lync: SuppressCallerId shows AlternateCallerId instead of the caller
    s.configure(
        "Set-CsVoiceRoute -Identity LocalRoute -SuppressCallerId $true -AlternateCallerId '+14255550000' -PstnGatewayList @{Remove=\"PstnGateway:127.0.0.2\"}",
    );
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    let mut req = invite(&mut alice, "tel:+12065550100");
    // whatever identity the caller asserts is not passed on
    req.headers.push(
        HeaderName::parse(confab_sip::Text::from("P-Asserted-Identity")),
        "<tel:+19995550000>",
    );
    let (inv, r) = place(&mut alice, req);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    // the caller's answer carries the caller's own From, not the one the gateway saw
    let from = r.header(&HeaderName::From).unwrap().to_string();
    assert!(from.contains("sip:user0000@"), "{from}");
    end(&mut alice, &inv, &r);
    // without suppression the caller's LineURI number, and the trunk's ForwardPAI adds it as
    // P-Asserted-Identity
    s.configure(
        "Set-CsVoiceRoute -Identity LocalRoute -SuppressCallerId $false\nSet-CsTrunkConfiguration -Identity Service:PstnGateway:127.0.0.3 -ForwardPAI $true",
    );
    let r = call(&mut alice, "tel:+12065550100");
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let inv = gw2.invites();
    assert_eq!(inv.len(), 2);
    assert!(inv[0].contains("From: <sip:+14255550000@"), "{}", inv[0]);
    assert!(
        !inv[0].contains("14255550100"),
        "the caller's number leaks: {}",
        inv[0]
    );
    assert!(
        !inv[0].contains("19995550000"),
        "the caller's own PAI passed: {}",
        inv[0]
    );
    assert!(inv[1].contains("From: <sip:+14255550100@"), "{}", inv[1]);
    assert!(
        inv[1].contains("P-Asserted-Identity: <tel:+14255550100>"),
        "{}",
        inv[1]
    );
}

/// sipp as the gateway calling in over TCP from its own address.
fn inbound_scenario(ruri_user: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="inbound">
  <send retrans="500"><![CDATA[
INVITE sip:{ruri_user}@[remote_ip]:[remote_port];user=phone SIP/2.0
Via: SIP/2.0/TCP [local_ip]:[local_port];branch=[branch]
From: <sip:+12065550123@[local_ip];user=phone>;tag=[pid]in[call_number]
To: <sip:{ruri_user}@[remote_ip];user=phone>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:gw@[local_ip]:[local_port];transport=tcp>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/TCP [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:+12065550123@[local_ip];user=phone>;tag=[pid]in[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"#
    )
}

fn run_inbound(s: &Server, from_ip: &str, ruri_user: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let sf = dir.path().join("in.xml");
    std::fs::write(&sf, inbound_scenario(ruri_user)).unwrap();
    Command::new("timeout")
        .args(["-k", "5", "30", "sipp", "-sf"])
        .arg(&sf)
        .args([
            "-i",
            from_ip,
            "-p",
            &free_port(from_ip).to_string(),
            "-t",
            "t1",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20",
            "-recv_timeout",
            "8000",
        ])
        .args(["-cp", &free_udp_port(from_ip).to_string()])
        .arg(host_port(&s.addr()))
        .output()
        .unwrap()
}

#[test]
fn an_inbound_call_from_a_gateway_reaches_the_user_by_line_uri_and_others_cannot_call_in() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    // gw1's own dial plan: the carrier sends 10-digit national numbers
    s.configure(
        r#"New-CsDialPlan -Identity Service:PstnGateway:127.0.0.2
New-CsVoiceNormalizationRule -Parent Service:PstnGateway:127.0.0.2 -Name FromCarrier -Pattern '^(\d{10})$' -Translation '+1$1'"#,
    );
    let mut bob = Ua::udp("user0001", s.addr());
    bob.register(300);
    let answer = std::thread::spawn(move || {
        let inv = bob.expect_request(Method::Invite);
        bob.reply(&inv, 200, "bobtag");
        inv
    });
    let out = run_inbound(&s, "127.0.0.2", "4255550101");
    let inv = answer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        first_line(&inv).contains("user0001"),
        "{}",
        first_line(&inv)
    );
    // a host that is no gateway cannot bring a call in for a number
    let out = run_inbound(&s, "127.0.0.4", "4255550101");
    assert!(!out.status.success(), "an outsider's call was put through");
}

#[test]
fn outsiders_cannot_reach_a_gateway_through_confab() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    // an unauthenticated caller from outside our domain
    let mut mallory = Ua::udp("mallory", s.addr());
    mallory.domain = "evil.example".into();
    let req = invite(&mut mallory, "tel:+12065550100");
    mallory.send(&req);
    let r = mallory.expect_response(&Method::Invite, req.cseq().unwrap().seq, 400..=699);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    let req = invite(
        &mut mallory,
        &format!("sip:+12065550100@{DOMAIN};user=phone"),
    );
    mallory.send(&req);
    let r = mallory.expect_response(&Method::Invite, req.cseq().unwrap().seq, 400..=699);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    // our own user addressing the gateway directly, past the voice routes
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    let r = call(
        &mut alice,
        &format!("sip:+12065550100@127.0.0.3:{p2};transport=tcp"),
    );
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(gw2.invites().is_empty(), "nothing reached the gateway");
}

// ----- the voice policy's call features (part 4) --------------------------------------------

/// Runs cmdlets that change users (not the configuration) and waits until the server has
/// reloaded its user list.
fn change_users(s: &Server, script: &str) {
    let before = s
        .log_text()
        .matches("user list reloaded from the store")
        .count();
    let (ok, text) = confab_as_admin(s.data(), &["shell", "-c", script]);
    assert!(ok, "{script}\n{text}");
    wait_for_user_reload(s, before);
}

fn wait_for_user_reload(s: &Server, before: usize) {
    wait_until(
        "the server reloads its users",
        Duration::from_secs(15),
        || {
            s.log_text()
                .matches("user list reloaded from the store")
                .count()
                > before
        },
    );
}

/// The final answer to INVITE `seq`, waiting up to `within` (provisional answers skipped).
fn final_within(ua: &mut Ua, seq: u32, within: Duration) -> Message {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("no final answer in time");
        if let Some(m) = ua.recv_timeout(left) {
            let is_it = m.status().is_some_and(|st| st >= 200)
                && m.cseq()
                    .is_some_and(|c| c.seq == seq && c.method == Method::Invite);
            if is_it {
                return m;
            }
        }
    }
}

/// A call whose answer may take `within` (forwarding after a ring time): its final answer,
/// acknowledged and hung up like [`call`].
fn slow_call(ua: &mut Ua, ruri: &str, within: Duration) -> Message {
    let req = invite(ua, ruri);
    let (inv, r) = place_within(ua, req, within);
    end(ua, &inv, &r);
    r
}

/// In a thread: `ua` rings on the next INVITE (180) until it is CANCELled (200, 487, ACK).
fn ring_until_cancelled(mut ua: Ua) -> std::thread::JoinHandle<(Ua, Message)> {
    std::thread::spawn(move || {
        let inv = ua.expect_request(Method::Invite);
        let mut ringing = confab_sip::response_to(&inv, 180, None, Some("ringtag"));
        ringing
            .headers
            .push(HeaderName::Contact, format!("<{}>", ua.contact_uri()));
        ua.send(&ringing);
        // the ring time may be longer than one expect's wait
        let deadline = Instant::now() + Duration::from_secs(20);
        let cancel = loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("no CANCEL in time");
            if let Some(m) = ua.recv_timeout(left) {
                if m.method() == Some(&Method::Cancel) {
                    break m;
                }
            }
        };
        ua.reply(&cancel, 200, "ringtag");
        ua.reply(&inv, 487, "ringtag");
        ua.expect_request(Method::Ack);
        (ua, inv)
    })
}

fn voicemail_setup(s: &Server, pv: u16) {
    s.configure(&format!(
        "New-CsHostedVoicemailPolicy -Identity VM -Destination 'sip:voicemail@127.0.0.4:{pv};transport=tcp'\n\
         Grant-CsHostedVoicemailPolicy -Identity sip:user0001@{DOMAIN} -PolicyName VM"
    ));
    change_users(
        s,
        &format!(
            "Set-CsUser -Identity sip:user0001@{DOMAIN} -HostedVoiceMail $true\n\
             Set-CsUserCallForwarding -Identity sip:user0001@{DOMAIN} -UnansweredAfter 5"
        ),
    );
}

#[test]
fn unanswered_busy_and_declined_calls_go_to_voicemail_with_their_history() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let pv = free_port("127.0.0.4");
    voicemail_setup(&s, pv);
    let vm = Gateway::start("127.0.0.4", pv, Answer::Ok);
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    let mut bob = Ua::udp("user0001", s.addr());
    bob.register(300);

    // bob lets it ring: after his 5 s, voicemail takes the call and bob's phone stops
    let ringing = ring_until_cancelled(bob);
    let t = Instant::now();
    let r = slow_call(
        &mut alice,
        &format!("sip:user0001@{DOMAIN}"),
        Duration::from_secs(15),
    );
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    assert!(t.elapsed() >= Duration::from_secs(5), "{:?}", t.elapsed());
    let (mut bob, _) = ringing.join().unwrap();
    let inv = vm.invites();
    assert_eq!(inv.len(), 1);
    assert!(
        inv[0].contains("INVITE sip:voicemail@127.0.0.4:"),
        "{}",
        inv[0]
    );
    assert!(
        inv[0].contains(";target=sip%3Auser0001%40example.test;cause=408"),
        "{}",
        inv[0]
    );
    assert!(
        inv[0].contains("Diversion: <sip:user0001@example.test>;reason=no-answer"),
        "{}",
        inv[0]
    );
    assert!(
        inv[0].contains("History-Info: <sip:user0001@example.test>;index=1"),
        "{}",
        inv[0]
    );

    // busy, then declined: straight to voicemail with those causes
    for (n, (status, cause, reason)) in [(486, 486, "user-busy"), (603, 487, "deflection")]
        .into_iter()
        .enumerate()
    {
        let req = invite(&mut alice, &format!("sip:user0001@{DOMAIN}"));
        alice.send(&req);
        let chal = alice.expect_response(&Method::Invite, req.cseq().unwrap().seq, 400..=499);
        alice.send(&ack_for(&req, &chal));
        let again = alice.authorize(&req, &chal);
        alice.send(&again);
        let inv = bob.expect_request(Method::Invite);
        bob.reply(&inv, status, "bobtag");
        bob.expect_request(Method::Ack);
        let r = final_within(
            &mut alice,
            again.cseq().unwrap().seq,
            Duration::from_secs(10),
        );
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
        end(&mut alice, &again, &r);
        let all = vm.wait_invites(n + 2);
        let last = all.last().unwrap();
        assert!(last.contains(&format!("cause={cause}")), "{all:#?}");
        assert!(last.contains(&format!("reason={reason}")), "{last}");
    }
    assert_eq!(vm.invites().len(), 3);
}

#[test]
fn immediate_forwarding_set_by_the_user_over_rest_leaves_through_the_pstn() {
    let (p1, p2) = ports();
    let (s, http) = setup_http(p1, p2);
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    s.configure("Set-CsVoiceRoute -Identity LocalRoute -PstnGatewayList @{Remove=\"PstnGateway:127.0.0.2\"}");
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    // bob sets his own forwarding with his SIP password
    let before = s
        .log_text()
        .matches("user list reloaded from the store")
        .count();
    let url = format!("http://127.0.0.1:{http}/api/v1/me/forwarding");
    let auth = basic_auth(&format!("user0001@{DOMAIN}:pw-user0001"));
    let r = ureq::put(&url)
        .set("Authorization", &auth)
        .send_json(serde_json::json!({"immediate": "tel:+12065550199"}))
        .expect("PUT /api/v1/me/forwarding");
    assert_eq!(r.status(), 200);
    // a wrong password changes nothing
    let bad = basic_auth(&format!("user0001@{DOMAIN}:wrong"));
    match ureq::put(&url)
        .set("Authorization", &bad)
        .send_json(serde_json::json!({"immediate": "voicemail"}))
    {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 401),
        other => panic!("{other:?}"),
    }
    s.wait_users_reloaded(before);
    let r = call(&mut alice, &format!("sip:user0001@{DOMAIN}"));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let inv = gw2.invites();
    assert_eq!(inv.len(), 1);
    assert!(
        inv[0].contains("INVITE sip:12065550199@127.0.0.3:"),
        "{}",
        inv[0]
    );
    // the trunk does not forward call history (ForwardCallHistory $false)
    assert!(!inv[0].contains("Diversion:"), "{}", inv[0]);
    // the policy's AllowCallForwarding $false: the call rings bob instead
    s.configure("Set-CsVoicePolicy -Identity Global -AllowCallForwarding $false");
    let mut bob = Ua::udp("user0001", s.addr());
    bob.register(300);
    let answer = std::thread::spawn(move || {
        let inv = bob.expect_request(Method::Invite);
        bob.reply(&inv, 200, "bobtag");
        inv
    });
    let req = invite(&mut alice, &format!("sip:user0001@{DOMAIN}"));
    let (_, r) = place(&mut alice, req);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    answer.join().unwrap();
    assert_eq!(gw2.invites().len(), 1);
}

#[test]
fn simultaneous_ring_and_team_call_ring_with_the_user() {
    let (p1, p2) = ports();
    let s = setup(p1, p2);
    let gw1 = Gateway::start("127.0.0.2", p1, Answer::Ok);
    let gw2 = Gateway::start("127.0.0.3", p2, Answer::Ok);
    change_users(
        &s,
        &format!(
            "Set-CsUserCallForwarding -Identity sip:user0001@{DOMAIN} -SimulRing tel:+12065550199 -Team sip:user0003@{DOMAIN}"
        ),
    );
    let mut alice = Ua::udp("user0000", s.addr());
    alice.register(300);
    let mut bob = Ua::udp("user0001", s.addr());
    bob.register(300);
    let mut carol = Ua::udp("user0003", s.addr());
    carol.register(300);
    let bob_rings = ring_until_cancelled(bob);
    let carol_rings = ring_until_cancelled(carol);
    // the number answers: bob's and carol's phones stop ringing
    let r = slow_call(
        &mut alice,
        &format!("sip:user0001@{DOMAIN}"),
        Duration::from_secs(10),
    );
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let (mut bob, bob_inv) = bob_rings.join().unwrap();
    let (_, carol_inv) = carol_rings.join().unwrap();
    assert!(
        first_line(&carol_inv).contains("user0003"),
        "{}",
        first_line(&carol_inv)
    );
    assert!(
        first_line(&bob_inv).contains("user0001"),
        "{}",
        first_line(&bob_inv)
    );
    assert_eq!(
        gw1.invites().len() + gw2.invites().len(),
        1,
        "the number rang once"
    );
    // AllowSimulRing and EnableTeamCall $false: only bob rings
    s.configure("Set-CsVoicePolicy -Identity Global -AllowSimulRing $false -EnableTeamCall $false");
    let answer = std::thread::spawn(move || {
        let inv = bob.expect_request(Method::Invite);
        bob.reply(&inv, 200, "bobtag");
    });
    let req = invite(&mut alice, &format!("sip:user0001@{DOMAIN}"));
    let (_, r) = place(&mut alice, req);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    answer.join().unwrap();
    assert_eq!(gw1.invites().len() + gw2.invites().len(), 1);
}
