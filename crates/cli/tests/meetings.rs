//! Meetings end to end over real sockets: `confab serve` on loopback, meetings made with
//! `confab meeting create`, participants that are our own SIP user agents with real RTP
//! sockets. The focus's admission rules (access levels, the lobby, Locked, MaxMeetingSize,
//! anonymous callers), the roster (RFC 4575 NOTIFYs on join, leave, mute, removal),
//! conference IM, removal by REFER (RFC 4579), the dialog checks against spoofing, the
//! cookbook's conferencing settings, and the mix itself (each participant hears the others
//! and not itself: Goertzel over what it receives). baresip participants are in
//! meetings_audio.rs.

#[path = "common/audio.rs"]
mod audio;
mod common;

use audio::{goertzel, ulaw_decode, RtpSender};
use common::*;
use confab_sip::{HeaderName, Message, Method};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Each test's MCU ports (parallel tests must not share them; 21000-22799 and 24000-24599 here, the media
/// crate's tests use 23000-23799 and meetings_audio.rs 25000-25399, in other binaries).
fn meetings_config(ports: u16, extra: &str) -> String {
    format!(
        "[meetings]\nmedia_port_min = {}\nmedia_port_max = {}\nrtp_timeout_secs = 20\n{extra}\n",
        ports,
        ports + 199
    )
}

/// A meeting made with the CLI; its JSON.
fn create(s: &Server, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["meeting", "create", "--json"];
    a.extend_from_slice(args);
    let out = s.cli(&a);
    // the JSON object (warnings may follow it)
    first_json(&out).unwrap_or_else(|| panic!("no JSON object in {out}"))
}

fn str_of(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

/// A participant: a SIP user agent and its RTP socket, and its dialog with the focus.
struct Leg {
    ua: Ua,
    rtp: UdpSocket,
    call_id: String,
    from: String,
    to: String,
    focus: String,
    seq: u32,
    /// The MCU's RTP address for this leg (from the 200's SDP).
    mcu: Option<SocketAddr>,
}

fn offer(port: u16, codecs: &str) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {codecs} 101\r\n"
    );
    for pt in codecs.split(' ') {
        match pt {
            "0" => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
            "8" => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            _ => {}
        }
    }
    s.push_str(
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    );
    s
}

enum Who {
    User(&'static str),
    Anonymous,
}

/// Dials the conference URI; returns the leg (if 200) and the final response.
fn dial(s: &Server, who: Who, uri: &str, rtp_port: Option<u16>) -> (Leg, Message) {
    let (name, anonymous) = match who {
        Who::User(u) => (u.to_string(), false),
        Who::Anonymous => (unique("guest"), true),
    };
    let mut ua = Ua::udp(&name, s.addr());
    let rtp = match rtp_port {
        Some(p) => UdpSocket::bind(("127.0.0.1", p)).unwrap(),
        None => UdpSocket::bind("127.0.0.1:0").unwrap(),
    };
    let mut inv = ua.request(Method::Invite, uri, uri);
    if anonymous {
        inv.headers.remove_all(&HeaderName::From);
        inv.headers.push(
            HeaderName::From,
            format!(
                "\"Guest {name}\" <sip:anonymous@anonymous.invalid>;tag={}",
                ua.from_tag
            ),
        );
    }
    inv.set_body(
        "application/sdp",
        offer(rtp.local_addr().unwrap().port(), "0 8"),
    );
    ua.send(&inv);
    let seq = inv.cseq().unwrap().seq;
    let mut r = ua.expect_response(&Method::Invite, seq, 200..=699);
    let mut sent = inv.clone();
    if r.status() == Some(407) {
        ua.send(&ack_for(&inv, &r));
        sent = ua.authorize(&inv, &r);
        ua.send(&sent);
        r = ua.expect_response(&Method::Invite, sent.cseq().unwrap().seq, 200..=699);
    }
    let mut leg = Leg {
        call_id: sent.call_id().unwrap().to_string(),
        from: sent.header(&HeaderName::From).unwrap().to_string(),
        to: r.header(&HeaderName::To).unwrap().to_string(),
        focus: r
            .header(&HeaderName::Contact)
            .map(|c| uri_of(c))
            .unwrap_or_default(),
        seq: sent.cseq().unwrap().seq,
        mcu: sdp_addr(&r.body),
        ua,
        rtp,
    };
    if r.status() == Some(200) {
        let ack = leg.ua.in_dialog(
            Method::Ack,
            &leg.focus,
            &[],
            &leg.from,
            &leg.to,
            &leg.call_id,
            leg.seq,
        );
        leg.ua.send(&ack);
    } else {
        leg.ua.send(&ack_for(&sent, &r));
    }
    (leg, r)
}

fn join(s: &Server, who: Who, uri: &str) -> Leg {
    let (leg, r) = dial(s, who, uri, None);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let contact = r.header(&HeaderName::Contact).unwrap();
    assert!(contact.contains("isfocus"), "{contact}");
    assert!(
        leg.mcu.is_some(),
        "SDP answer: {}",
        String::from_utf8_lossy(&r.body)
    );
    leg
}

/// Nothing but provisional responses (left from earlier requests) arrives for a while.
trait Quiet {
    fn quiet(&mut self);
}

impl Quiet for Ua {
    fn quiet(&mut self) {
        let until = Instant::now() + Duration::from_millis(300);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Some(m) = self.recv_timeout(left) {
                assert!(
                    m.status().is_some_and(|s| s < 200),
                    "{}: expected nothing, got {}",
                    self.user,
                    first_line(&m)
                );
            }
        }
    }
}

impl Leg {
    fn request(&mut self, method: Method) -> Message {
        self.seq += 1;
        self.ua.in_dialog(
            method,
            &self.focus,
            &[],
            &self.from,
            &self.to,
            &self.call_id,
            self.seq,
        )
    }

    fn bye(&mut self) -> Message {
        let bye = self.request(Method::Bye);
        self.ua.send(&bye);
        self.ua.expect_response(&Method::Bye, self.seq, 200..=699)
    }

    /// SUBSCRIBE to the conference event package (a new dialog); returns the first NOTIFY's
    /// body and the subscription's dialog data.
    fn subscribe(&mut self, uri: &str) -> String {
        let saved = (self.ua.call_id.clone(), self.ua.from_tag.clone());
        self.ua.new_call();
        let mut sub = self.ua.request(Method::Subscribe, uri, uri);
        sub.headers.push(HeaderName::Event, "conference");
        sub.headers
            .push(HeaderName::Accept, "application/conference-info+xml");
        sub.headers.push(HeaderName::Expires, "600");
        let r = self.ua.send_authenticated(sub);
        (self.ua.call_id, self.ua.from_tag) = saved;
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
        self.next_notify()
    }

    /// The next conference NOTIFY (answered 200); its body.
    fn next_notify(&mut self) -> String {
        let n = self.ua.expect("conference NOTIFY", |m| {
            m.method() == Some(&Method::Notify)
                && m.header(&HeaderName::Event)
                    .is_some_and(|e| e.starts_with("conference"))
        });
        self.ua.reply(&n, 200, "n");
        String::from_utf8_lossy(&n.body).to_string()
    }

    /// Waits for the focus's BYE and answers it.
    fn expect_bye(&mut self) {
        let bye = self.ua.expect_request(Method::Bye);
        assert_eq!(bye.call_id().unwrap().as_str(), self.call_id);
        self.ua.reply(&bye, 200, "x");
    }
}

/// The REST API as the organizer (HTTP Basic with the SIP password).
fn rest(http: u16, method: &str, path: &str, user: &str) -> (u16, serde_json::Value) {
    let url = format!("http://127.0.0.1:{http}{path}");
    let auth = basic_auth(&format!("{user}@{DOMAIN}:pw-{user}"));
    let r = ureq::request(method, &url)
        .set("Authorization", &auth)
        .call();
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(serde_json::Value::Null)),
        Err(ureq::Error::Status(code, r)) => {
            (code, r.into_json().unwrap_or(serde_json::Value::Null))
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn roster(http: u16, key: &str, user: &str) -> serde_json::Value {
    let (code, v) = rest(http, "GET", &format!("/api/v1/meetings/{key}/roster"), user);
    assert_eq!(code, 200, "{v}");
    v
}

fn ids(v: &serde_json::Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {v}"))
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn access_levels_lobby_admit_deny_and_roster() {
    let http = free_port("127.0.0.1");
    let s = Server::start(
        5,
        &format!(
            "[http]\nlisten = \"127.0.0.1:{http}\"\n{}",
            meetings_config(21000, "")
        ),
    );
    let m = create(
        &s,
        &["--organizer", "user0001", "--access", "SameEnterprise"],
    );
    let (uri, key) = (str_of(&m, "uri"), str_of(&m, "key"));
    assert!(
        uri.starts_with("sip:user0001@example.test;gruu;opaque=app:conf:focus:id:"),
        "{uri}"
    );
    assert_eq!(
        str_of(&m, "meet_url"),
        format!("https://meet.example.test/user0001/{key}")
    );
    assert!(str_of(&m, "conference_id")
        .chars()
        .all(|c| c.is_ascii_digit()));

    let mut org = join(&s, Who::User("user0001"), &uri);
    let first = org.subscribe(&uri);
    assert!(first.contains("state=\"full\""), "{first}");
    assert!(first.contains("sip:user0001@example.test"), "{first}");

    // a colleague gets in directly: the roster says so
    let mut bob = join(&s, Who::User("user0002"), &uri);
    let n = org.next_notify();
    assert!(
        n.contains("state=\"partial\"") && n.contains("sip:user0002@example.test"),
        "{n}"
    );

    // an anonymous caller waits in the lobby: answered, but not on the roster
    let mut guest = join(&s, Who::Anonymous, &uri);
    let r = roster(http, &key, "user0001");
    assert_eq!(ids(&r, "lobby").len(), 1, "{r}");
    assert_eq!(ids(&r, "participants").len(), 2, "{r}");
    org.ua.quiet();
    // nobody but the organizer and presenters may see or act on it
    let (code, _) = rest(
        http,
        "GET",
        &format!("/api/v1/meetings/{key}/roster"),
        "user0003",
    );
    assert!(code == 403 || code == 404, "{code}");
    let gid = ids(&r, "lobby")[0].clone();
    let (code, v) = rest(
        http,
        "POST",
        &format!("/api/v1/meetings/{key}/participants/{gid}/admit"),
        "user0003",
    );
    assert!(code == 403 || code == 404, "{code} {v}");

    // admitted: now on the roster
    let (code, v) = rest(
        http,
        "POST",
        &format!("/api/v1/meetings/{key}/participants/{gid}/admit"),
        "user0001",
    );
    assert!((200..300).contains(&code), "{code} {v}");
    let n = org.next_notify();
    assert!(n.contains("anonymous.invalid"), "{n}");
    assert_eq!(
        ids(&roster(http, &key, "user0001"), "participants").len(),
        3
    );

    // a second outsider is denied: the focus hangs up on it
    let mut other = join(&s, Who::Anonymous, &uri);
    let r = roster(http, &key, "user0001");
    let oid = ids(&r, "lobby")[0].clone();
    let (code, _) = rest(
        http,
        "POST",
        &format!("/api/v1/meetings/{key}/participants/{oid}/deny"),
        "user0001",
    );
    assert!((200..300).contains(&code));
    other.expect_bye();
    org.ua.quiet();

    // the organizer mutes bob: the roster shows him receive-only
    let r = roster(http, &key, "user0001");
    let bob_id = r["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.to_string().contains("user0002"))
        .map(|p| p["id"].as_str().unwrap().to_string())
        .unwrap();
    let (code, _) = rest(
        http,
        "POST",
        &format!("/api/v1/meetings/{key}/participants/{bob_id}/mute"),
        "user0001",
    );
    assert!((200..300).contains(&code));
    let n = org.next_notify();
    assert!(n.contains("recvonly"), "{n}");

    // leaves are notified as deletions
    assert_eq!(guest.bye().status(), Some(200));
    let n = org.next_notify();
    assert!(n.contains("state=\"deleted\""), "{n}");
    assert_eq!(bob.bye().status(), Some(200));
    let n = org.next_notify();
    assert!(n.contains("state=\"deleted\""), "{n}");
    assert_eq!(org.bye().status(), Some(200));
}

#[test]
fn locked_meeting_refuses_everyone_but_the_organizer() {
    let s = Server::start(5, &meetings_config(21200, ""));
    let m = create(
        &s,
        &["--organizer", "user0001", "--access", "Locked", "--private"],
    );
    let uri = str_of(&m, "uri");
    let (_, r) = dial(&s, Who::User("user0002"), &uri, None);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(first_line(&r).contains("locked"), "{}", first_line(&r));
    let (_, r) = dial(&s, Who::Anonymous, &uri, None);
    assert_eq!(r.status(), Some(403));
    let mut org = join(&s, Who::User("user0001"), &uri);
    // and still nobody else while the organizer is in
    let (_, r) = dial(&s, Who::User("user0003"), &uri, None);
    assert_eq!(r.status(), Some(403));
    assert_eq!(org.bye().status(), Some(200));
}

#[test]
fn unknown_keys_other_organizers_and_bad_offers_are_refused() {
    let s = Server::start(5, &meetings_config(21400, ""));
    let m = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    let (uri, key) = (str_of(&m, "uri"), str_of(&m, "key"));
    // a guessed key
    let guessed = uri.replace(&key, "ZZZZ9999");
    let (_, r) = dial(&s, Who::Anonymous, &guessed, None);
    assert_eq!(r.status(), Some(404), "{}", first_line(&r));
    // the right key under another organizer's name
    let other = uri.replace("sip:user0001@", "sip:user0002@");
    let (_, r) = dial(&s, Who::Anonymous, &other, None);
    assert_eq!(r.status(), Some(404), "{}", first_line(&r));
    // no common codec
    let mut ua = Ua::udp(&unique("g"), s.addr());
    let mut inv = ua.request(Method::Invite, &uri, &uri);
    inv.headers.remove_all(&HeaderName::From);
    inv.headers.push(
        HeaderName::From,
        format!("<sip:anonymous@anonymous.invalid>;tag={}", ua.from_tag),
    );
    inv.set_body(
        "application/sdp",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
    );
    ua.send(&inv);
    let r = ua.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(488), "{}", first_line(&r));
    ua.send(&ack_for(&inv, &r));
    // garbage SDP
    ua.new_call();
    let mut inv = ua.request(Method::Invite, &uri, &uri);
    inv.headers.remove_all(&HeaderName::From);
    inv.headers.push(
        HeaderName::From,
        format!("<sip:anonymous@anonymous.invalid>;tag={}", ua.from_tag),
    );
    inv.set_body("application/sdp", "m=audio x\r\n\u{0}\u{1}garbage");
    ua.send(&inv);
    let r = ua.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
    assert!(matches!(r.status(), Some(400 | 488)), "{}", first_line(&r));
    // the server is still fine: a proper join works
    let mut g = join(&s, Who::Anonymous, &uri);
    assert_eq!(g.bye().status(), Some(200));
}

#[test]
fn max_meeting_size_anonymous_policy_and_ip_audio_follow_the_organizers_policy() {
    let s = Server::start(5, &meetings_config(21600, ""));
    s.cli(ADD_ROOT);
    s.configure(
        "New-CsConferencingPolicy -Identity Tag:SmallMeetings -MaxMeetingSize 2 -AllowAnonymousParticipantsInMeetings $false\n\
         Grant-CsConferencingPolicy -Identity sip:user0001@example.test -PolicyName SmallMeetings\n\
         New-CsConferencingPolicy -Identity Tag:NoAudio -AllowIPAudio $false\n\
         Grant-CsConferencingPolicy -Identity sip:user0004@example.test -PolicyName NoAudio",
    );
    let m = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    let uri = str_of(&m, "uri");
    // anonymous callers are refused by the organizer's policy
    let (_, r) = dial(&s, Who::Anonymous, &uri, None);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(first_line(&r).contains("Anonymous"), "{}", first_line(&r));
    let mut a = join(&s, Who::User("user0001"), &uri);
    let mut b = join(&s, Who::User("user0002"), &uri);
    let (_, r) = dial(&s, Who::User("user0003"), &uri, None);
    assert_eq!(r.status(), Some(486), "{}", first_line(&r));
    assert!(
        first_line(&r).contains("MaxMeetingSize"),
        "{}",
        first_line(&r)
    );
    // someone leaves: there is room again
    assert_eq!(b.bye().status(), Some(200));
    let mut c = join(&s, Who::User("user0003"), &uri);
    assert_eq!(c.bye().status(), Some(200));
    assert_eq!(a.bye().status(), Some(200));
    // another organizer (global policy) is not limited
    let m2 = create(&s, &["--organizer", "user0002", "--access", "Everyone"]);
    let mut g = join(&s, Who::Anonymous, &str_of(&m2, "uri"));
    assert_eq!(g.bye().status(), Some(200));
    // AllowIPAudio $false: no audio joins in that organizer's meetings
    let m3 = create(&s, &["--organizer", "user0004", "--access", "Everyone"]);
    let (_, r) = dial(&s, Who::User("user0004"), &str_of(&m3, "uri"), None);
    assert_eq!(r.status(), Some(488), "{}", first_line(&r));
}

#[test]
fn conference_im_reaches_every_other_participant_and_refer_removes() {
    let s = Server::start(5, &meetings_config(21800, ""));
    let m = create(
        &s,
        &[
            "--organizer",
            "user0001",
            "--access",
            "SameEnterprise",
            "--presenters",
            "None",
        ],
    );
    let uri = str_of(&m, "uri");
    let mut a = join(&s, Who::User("user0001"), &uri);
    let mut b = join(&s, Who::User("user0002"), &uri);
    let mut c = join(&s, Who::User("user0003"), &uri);
    // bob watches the roster
    let first = b.subscribe(&uri);
    assert!(first.contains("sip:user0003@example.test"), "{first}");

    // page-mode MESSAGE to the conference URI
    b.ua.new_call();
    let mut msg = b.ua.request(Method::Message, &uri, &uri);
    msg.set_body("text/plain", "hello meeting");
    let r = b.ua.send_authenticated(msg);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    for who in [&mut a, &mut c] {
        let got = who.ua.expect_request(Method::Message);
        assert_eq!(&got.body[..], b"hello meeting");
        let pai = got
            .header(&HeaderName::Other("P-Asserted-Identity".into()))
            .unwrap();
        assert!(pai.contains("sip:user0002@example.test"), "{pai}");
        who.ua.reply(&got, 200, "m");
    }
    b.ua.quiet();

    // an attendee may not remove anyone
    let mut refer = b.request(Method::Refer);
    refer.headers.push(
        HeaderName::ReferTo,
        "<sip:user0003@example.test;method=BYE>".to_string(),
    );
    b.ua.send(&refer);
    let r = b.ua.expect_response(&Method::Refer, b.seq, 200..=699);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));

    // the organizer removes user0003 (RFC 4579 REFER with method=BYE, in its dialog)
    let mut refer = a.request(Method::Refer);
    refer.headers.push(
        HeaderName::ReferTo,
        "<sip:user0003@example.test?method=BYE>".to_string(),
    );
    a.ua.send(&refer);
    let r = a.ua.expect_response(&Method::Refer, a.seq, 200..=699);
    assert_eq!(r.status(), Some(202), "{}", first_line(&r));
    c.expect_bye();
    // the removal reaches the roster as a deletion
    let n = b.next_notify();
    assert!(
        n.contains("state=\"deleted\"") && n.contains("sip:user0003@example.test"),
        "{n}"
    );
    let n = a.ua.expect("NOTIFY for the REFER", |m| {
        m.method() == Some(&Method::Notify)
            && m.header(&HeaderName::Event)
                .is_some_and(|e| e.starts_with("refer"))
    });
    assert!(String::from_utf8_lossy(&n.body).contains("200"));
    a.ua.reply(&n, 200, "n");
    assert_eq!(b.bye().status(), Some(200));
    assert_eq!(a.bye().status(), Some(200));
}

#[test]
fn requests_in_a_focus_dialog_from_elsewhere_are_refused() {
    let s = Server::start(5, &meetings_config(22000, ""));
    let m = create(
        &s,
        &["--organizer", "user0001", "--access", "SameEnterprise"],
    );
    let uri = str_of(&m, "uri");
    let mut a = join(&s, Who::User("user0001"), &uri);
    let mut b = join(&s, Who::User("user0002"), &uri);
    a.subscribe(&uri);
    // an attacker who overheard bob's dialog (Call-ID and both tags) sends BYE from
    // another address
    let mut evil = Ua::udp_on("127.0.0.2", "evil", s.addr());
    let bye = evil.in_dialog(
        Method::Bye,
        &b.focus,
        &[],
        &b.from,
        &b.to,
        &b.call_id,
        b.seq + 1,
    );
    evil.send(&bye);
    let r = evil.expect_response(&Method::Bye, b.seq + 1, 200..=699);
    assert_eq!(r.status(), Some(481), "{}", first_line(&r));
    // a made-up To tag gets nothing either
    let fake_to = format!("<{uri}>;tag=guessed");
    let bye = evil.in_dialog(Method::Bye, &uri, &[], &b.from, &fake_to, &b.call_id, 99);
    evil.send(&bye);
    let r = evil.expect_response(&Method::Bye, 99, 200..=699);
    // challenged (From names a user of ours) or refused: never taken
    assert!(matches!(r.status(), Some(407 | 481)), "{}", first_line(&r));
    // bob is still in the meeting: no roster change was sent
    a.ua.quiet();
    assert_eq!(b.bye().status(), Some(200));
    let n = a.next_notify();
    assert!(n.contains("deleted"), "{n}");
    assert_eq!(a.bye().status(), Some(200));
}

#[test]
fn lobby_times_out_when_nobody_admits() {
    let s = Server::start(5, &meetings_config(22200, "lobby_timeout_secs = 1"));
    let m = create(
        &s,
        &["--organizer", "user0001", "--access", "SameEnterprise"],
    );
    let uri = str_of(&m, "uri");
    let mut g = join(&s, Who::Anonymous, &uri);
    let t = Instant::now();
    g.expect_bye();
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn cookbook_client_media_port_range_refuses_offers_outside_it() {
    let s = Server::start(5, &meetings_config(22400, ""));
    s.cli(ADD_ROOT);
    let warn = s.configure(
        "Set-CsConferencingConfiguration -Identity global -ClientMediaPortRangeEnabled $True -ClientAudioPort 25000 -ClientAudioPortRange 40",
    );
    assert!(!warn.contains("not enforced"), "{warn}");
    let m = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    let uri = str_of(&m, "uri");
    let outside = free_port_in(26000..27000);
    let (_, r) = dial(&s, Who::Anonymous, &uri, Some(outside));
    assert_eq!(r.status(), Some(488), "{}", first_line(&r));
    let inside = (25000..25040)
        .find(|p| UdpSocket::bind(("127.0.0.1", *p)).is_ok())
        .unwrap();
    let (mut g, r) = dial(&s, Who::Anonymous, &uri, Some(inside));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    assert_eq!(g.bye().status(), Some(200));
}

// ----- the mix, over real RTP sockets ----------------------------------------------------------

#[test]
fn each_participant_hears_the_others_and_not_itself() {
    let s = Server::start(5, &meetings_config(22600, ""));
    let m = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    let uri = str_of(&m, "uri");
    let freqs = [500.0, 800.0, 1300.0];
    let mut legs: Vec<Leg> = ["user0001", "user0002", "user0003"]
        .iter()
        .map(|u| join(&s, Who::User(u), &uri))
        .collect();
    for l in &legs {
        l.rtp.set_nonblocking(true).unwrap();
    }
    let mut senders: Vec<RtpSender> = legs
        .iter()
        .enumerate()
        .map(|(i, l)| RtpSender::new(&l.rtp, l.mcu.unwrap(), 0, 0x1000 + i as u32))
        .collect();
    let mut heard: Vec<Vec<f64>> = vec![vec![]; 3];
    let start = Instant::now();
    let mut frame = 0u32;
    let mut buf = [0u8; 2048];
    // 3 s of audio, paced at 20 ms
    while frame < 150 {
        let due = start + Duration::from_millis(20 * frame as u64);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w.min(Duration::from_millis(5)));
            // receive while waiting
        } else {
            for (i, tx) in senders.iter_mut().enumerate() {
                tx.send_tone_frame(freqs[i], 6000.0);
            }
            frame += 1;
        }
        for (i, l) in legs.iter().enumerate() {
            while let Ok((n, _)) = l.rtp.recv_from(&mut buf) {
                if n > 12 && buf[1] & 0x7f == 0 && start.elapsed() > Duration::from_millis(800) {
                    heard[i].extend(buf[12..n].iter().map(|&b| ulaw_decode(b) as f64));
                }
            }
        }
    }
    for (i, h) in heard.iter().enumerate() {
        assert!(
            h.len() > 8000,
            "participant {i} heard only {} samples",
            h.len()
        );
        let p: Vec<f64> = freqs.iter().map(|&f| goertzel(h, 8000.0, f)).collect();
        let others: Vec<f64> = (0..3).filter(|&j| j != i).map(|j| p[j]).collect();
        let weakest = others.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            weakest > 1.0,
            "participant {i} does not hear the others: {p:?}"
        );
        assert!(
            p[i] * 100.0 < weakest,
            "participant {i} hears itself: own {} vs others {others:?}",
            p[i]
        );
    }
    for l in &mut legs {
        assert_eq!(l.bye().status(), Some(200));
    }
}

#[test]
fn hold_by_reinvite_shows_on_the_roster_and_silent_participants_are_dropped() {
    let s = Server::start(
        5,
        &meetings_config(24000, "").replace("rtp_timeout_secs = 20", "rtp_timeout_secs = 2"),
    );
    let m = create(
        &s,
        &["--organizer", "user0001", "--access", "SameEnterprise"],
    );
    let uri = str_of(&m, "uri");
    let mut a = join(&s, Who::User("user0001"), &uri);
    a.subscribe(&uri);
    let mut b = join(&s, Who::User("user0002"), &uri);
    a.next_notify();
    // bob holds (RFC 3264 §8.4: sendonly), then resumes
    let port = b.rtp.local_addr().unwrap().port();
    for (dir, want) in [("sendonly", "on-hold"), ("sendrecv", "connected")] {
        let mut re = b.request(Method::Invite);
        re.headers
            .push(HeaderName::Contact, format!("<{}>", b.ua.contact_uri()));
        re.set_body(
            "application/sdp",
            offer(port, "0").replace("a=sendrecv", &format!("a={dir}")),
        );
        b.ua.send(&re);
        let r = b.ua.expect_response(&Method::Invite, b.seq, 200..=699);
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
        let answer = String::from_utf8_lossy(&r.body).to_string();
        if dir == "sendonly" {
            assert!(answer.contains("a=recvonly"), "{answer}");
        }
        let ack = b.ua.in_dialog(
            Method::Ack,
            &b.focus,
            &[],
            &b.from,
            &b.to,
            &b.call_id,
            b.seq,
        );
        b.ua.send(&ack);
        let n = a.next_notify();
        assert!(n.contains(want), "{dir}: {n}");
    }
    // neither sends RTP: the MCU reports them silent and the focus hangs up on both
    let t = Instant::now();
    b.expect_bye();
    a.expect_bye();
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_participant_on_tcp_joins_and_leaves() {
    let s = Server::start(5, &meetings_config(24200, ""));
    let m = create(
        &s,
        &["--organizer", "user0001", "--access", "SameEnterprise"],
    );
    let uri = str_of(&m, "uri");
    let mut ua = Ua::tcp("user0001", s.addr());
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut inv = ua.request(Method::Invite, &uri, &uri);
    inv.set_body(
        "application/sdp",
        offer(rtp.local_addr().unwrap().port(), "0"),
    );
    let r = ua.send_authenticated(inv);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    assert!(r
        .header(&HeaderName::Contact)
        .unwrap()
        .contains("transport=tcp"));
    let focus = uri_of(r.header(&HeaderName::Contact).unwrap());
    let from = r.header(&HeaderName::From).unwrap().to_string();
    let to = r.header(&HeaderName::To).unwrap().to_string();
    let cid = r.call_id().unwrap().to_string();
    let seq = r.cseq().unwrap().seq;
    let ack = ua.in_dialog(Method::Ack, &focus, &[], &from, &to, &cid, seq);
    ua.send(&ack);
    let bye = ua.in_dialog(Method::Bye, &focus, &[], &from, &to, &cid, seq + 1);
    ua.send(&bye);
    let r = ua.expect_response(&Method::Bye, seq + 1, 200..=699);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
}

/// The cookbook's "Enhancing conferencing security" lines, run against a live server, each
/// with an effect a caller or an organizer sees.
#[test]
fn cookbook_conferencing_security_recipe_changes_behaviour() {
    let s = Server::start(5, &meetings_config(24400, ""));
    s.cli(ADD_ROOT);
    // before: assigned meetings by default (one per organizer, the same key every time),
    // anonymous callers allowed into an Everyone meeting
    let a1 = create(&s, &["--organizer", "user0002", "--access", "Everyone"]);
    let a2 = create(&s, &["--organizer", "user0002", "--access", "Everyone"]);
    assert_eq!(str_of(&a1, "key"), str_of(&a2, "key"));
    let mut g = join(&s, Who::Anonymous, &str_of(&a1, "uri"));
    assert_eq!(g.bye().status(), Some(200));

    let out = s.configure(
        "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false\n\
         Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true\n\
         .\\New-CsClonedPolicy.ps1 -SourcePolicyName global -TargetPolicyName \"DefaultConferencing\" -PolicyType ConferencingPolicy\n\
         Set-CsConferencingPolicy -Identity DefaultConferencing -AllowAnonymousParticipantsInMeetings $false -MaxMeetingSize 3\n\
         Grant-CsConferencingPolicy -Identity sip:user0001@example.test -PolicyName DefaultConferencing\n\
         Get-CsConferencingConfiguration | Set-CsConferencingConfiguration -ClientMediaPortRangeEnabled $True -ClientAudioPort 25200 -ClientAudioPortRange 40",
    );
    assert!(
        !out.contains("AllowAnonymousParticipantsInMeetings is not enforced"),
        "{out}"
    );

    // private meetings by default now: a new key and conference ID each time, and no lobby
    // bypass for dial-in callers
    let p1 = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    let p2 = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    assert_ne!(str_of(&p1, "key"), str_of(&p2, "key"));
    assert_ne!(str_of(&p1, "conference_id"), str_of(&p2, "conference_id"));
    assert_eq!(p1["kind"].as_str(), Some("Private"), "{p1}");
    assert_eq!(p1["pstn_bypass_lobby"].as_bool(), Some(false), "{p1}");
    // the cloned, granted policy: no anonymous callers, at most 3 in the meeting
    let uri = str_of(&p1, "uri");
    let (_, r) = dial(&s, Who::Anonymous, &uri, Some(25202));
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    let legs: Vec<Leg> = ["user0001", "user0002", "user0003"]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (l, r) = dial(&s, Who::User(u), &uri, Some(25204 + 2 * i as u16));
            assert_eq!(r.status(), Some(200), "{}", first_line(&r));
            l
        })
        .collect();
    let (_, r) = dial(&s, Who::User("user0004"), &uri, Some(25212));
    assert_eq!(r.status(), Some(486), "{}", first_line(&r));
    // the client media port range: an offer from outside it is refused
    let (_, r) = dial(&s, Who::User("user0004"), &str_of(&a1, "uri"), Some(26999));
    assert_eq!(r.status(), Some(488), "{}", first_line(&r));
    // another organizer keeps the global policy
    let (mut g, r) = dial(&s, Who::Anonymous, &str_of(&a1, "uri"), Some(25214));
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    assert_eq!(g.bye().status(), Some(200));
    for mut l in legs {
        assert_eq!(l.bye().status(), Some(200));
    }
}

#[test]
fn a_meeting_outlives_a_restart_and_crafted_conference_uris_reach_nobody() {
    let mut s = Server::start(5, &meetings_config(24600, ""));
    let m = create(&s, &["--organizer", "user0001", "--access", "Everyone"]);
    let uri = str_of(&m, "uri");
    // user0001 is registered: a conference URI with a broken key must not ring its phone
    let mut phone = Ua::udp("user0001", s.addr());
    assert_eq!(phone.register(300).status(), Some(200));
    for bad in [
        uri.replace(&str_of(&m, "key"), ""),
        uri.replace(&str_of(&m, "key"), &"A".repeat(300)),
        uri.replace(&str_of(&m, "key"), "AB%20CD"),
        uri.replace("app:conf:focus:id:", "app:conf:chat:id:"),
    ] {
        let (_, r) = dial(&s, Who::Anonymous, &bad, None);
        assert_eq!(r.status(), Some(404), "{bad}: {}", first_line(&r));
    }
    phone.quiet();

    // conference IM is bounded
    let mut a = join(&s, Who::User("user0002"), &uri);
    let mut msg = a.request(Method::Message);
    msg.set_body("text/plain", "x".repeat(20 * 1024));
    a.ua.send(&msg);
    let r = a.ua.expect_response(&Method::Message, a.seq, 200..=699);
    assert!(matches!(r.status(), Some(413 | 513)), "{}", first_line(&r));
    assert_eq!(a.bye().status(), Some(200));

    // the meeting is in the store: after a crash and restart the same URI works
    s.restart();
    let mut g = join(&s, Who::Anonymous, &uri);
    assert_eq!(g.bye().status(), Some(200));
}
