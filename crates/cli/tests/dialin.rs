//! Dial-in conferencing end to end over real sockets: `confab serve` on loopback with a
//! dial-in access number, a "PSTN gateway" that is a trusted peer (our own SIP user agent
//! over TCP from 127.0.0.1, with real RTP: RFC 4733 key presses and G.711 tones), and SIP
//! participants. What the gateway's caller hears is decoded and measured: the prompts are
//! speech (energy in the speech band), the meeting is the other participants' tones
//! (Goertzel). Conference IDs and PINs by RFC 4733 and by SIP INFO, wrong IDs, leader PINs,
//! the lobby switch, keypad commands, PIN lockout, and who may call the access number.

#[path = "common/audio.rs"]
mod audio;
mod common;

use audio::*;
use common::*;
use confab_sip::{HeaderName, Message, Method};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCESS: &str = "tel:+14255550100";

/// Each test's MCU ports (27000-27999 here; other binaries use other ranges).
fn config(ports: u16, http: u16) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:{http}\"\n\n[meetings]\nmedia_port_min = {ports}\nmedia_port_max = {}\nrtp_timeout_secs = 30\n\n[trust]\npeers = [\"127.0.0.1\"]\n",
        ports + 99
    )
}

/// The access number, user0001's number and PIN, and a meeting of user0001's; its JSON.
fn setup(s: &Server, meeting_args: &[&str]) -> serde_json::Value {
    s.cli(ADD_ROOT);
    s.configure(
        "New-CsDialInConferencingAccessNumber -PrimaryUri \"sip:dialin@example.test\" \
         -DisplayNumber \"+1 (425) 555-0100\" -LineUri \"tel:+14255550100\" -Regions \"Redmond\" \
         -PrimaryLanguage \"en-US\"; \
         Set-CsUser -Identity \"sip:user0001@example.test\" -LineURI \"tel:+14255550101;ext=101\"; \
         Set-CsClientPin -Identity \"sip:user0001@example.test\" -Pin 70713",
    );
    let mut a = vec!["meeting", "create", "--json", "--organizer", "user0001"];
    a.extend_from_slice(meeting_args);
    let out = s.cli(&a);
    first_json(&out).unwrap_or_else(|| panic!("no JSON object in {out}"))
}

fn str_of(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

fn offer(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// A call: its SIP dialog and its RTP. What it sends is a tone (or silence) paced by a
/// thread, with key presses slipped in; what it receives is decoded and kept.
struct Call {
    ua: Ua,
    call_id: String,
    from: String,
    to: String,
    remote: String,
    seq: u32,
    /// The tone it sends (Hz; 0: silence).
    tone: Arc<AtomicU32>,
    keys: Arc<Mutex<Vec<char>>>,
    heard: Arc<Mutex<Vec<i16>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The RTP side of a call: sends 20 ms PCMU frames (the tone, or keys as RFC 4733 events)
/// and records what arrives, until stopped.
fn media(
    rtp: UdpSocket,
    dest: SocketAddr,
    tone: Arc<AtomicU32>,
    keys: Arc<Mutex<Vec<char>>>,
    heard: Arc<Mutex<Vec<i16>>>,
    stop: Arc<AtomicBool>,
) {
    rtp.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let mut tx = RtpSender::new(&rtp, dest, 0, 0x5eed);
    let start = Instant::now();
    let mut n: u32 = 0;
    let mut buf = [0u8; 2048];
    // bounded: five minutes at most
    while !stop.load(Ordering::Relaxed) && n < 15_000 {
        let key = keys.lock().unwrap().first().copied();
        if let Some(k) = key {
            keys.lock().unwrap().remove(0);
            // paced by itself: seven frame slots
            tx.send_dtmf(k, 101);
            n += 6;
        } else {
            match tone.load(Ordering::Relaxed) {
                0 => tx.send_silence_frame(),
                hz => tx.send_tone_frame(hz as f64, 8000.0),
            }
        }
        n += 1;
        let next = start + Duration::from_millis(20 * n as u64);
        while Instant::now() < next {
            let Ok((len, _)) = rtp.recv_from(&mut buf) else {
                continue;
            };
            if let Some((0, payload)) = rtp_payload(&buf[..len]) {
                let mut h = heard.lock().unwrap();
                if h.len() < 8000 * 120 {
                    h.extend(payload.iter().map(|&b| ulaw_decode(b)));
                }
            }
        }
    }
}

impl Call {
    /// Calls `ruri` from `ua`; panics unless answered 200.
    fn dial(mut ua: Ua, ruri: &str) -> Call {
        let (c, r) = Call::try_dial(&mut ua, ruri);
        assert_eq!(r.status(), Some(200), "{}", first_line(&r));
        let mut c = c.expect("answered");
        c.ua = ua;
        c
    }

    fn try_dial(ua: &mut Ua, ruri: &str) -> (Option<Call>, Message) {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut inv = ua.request(Method::Invite, ruri, ruri);
        inv.set_body("application/sdp", offer(rtp.local_addr().unwrap().port()));
        ua.send(&inv);
        let mut sent = inv.clone();
        let mut r = ua.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
        if r.status() == Some(407) {
            ua.send(&ack_for(&inv, &r));
            sent = ua.authorize(&inv, &r);
            ua.send(&sent);
            r = ua.expect_response(&Method::Invite, sent.cseq().unwrap().seq, 200..=699);
        }
        if r.status() != Some(200) {
            ua.send(&ack_for(&sent, &r));
            return (None, r);
        }
        let remote = r
            .header(&HeaderName::Contact)
            .map(|c| uri_of(c))
            .unwrap_or_default();
        let from = sent.header(&HeaderName::From).unwrap().to_string();
        let to = r.header(&HeaderName::To).unwrap().to_string();
        let call_id = sent.call_id().unwrap().to_string();
        let seq = sent.cseq().unwrap().seq;
        let ack = ua.in_dialog(Method::Ack, &remote, &[], &from, &to, &call_id, seq);
        ua.send(&ack);
        let dest = sdp_addr(&r.body).expect("SDP answer");
        let (tone, keys, heard, stop) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(Mutex::new(vec![])),
            Arc::new(Mutex::new(vec![])),
            Arc::new(AtomicBool::new(false)),
        );
        {
            let (tone, keys, heard, stop) =
                (tone.clone(), keys.clone(), heard.clone(), stop.clone());
            std::thread::spawn(move || media(rtp, dest, tone, keys, heard, stop));
        }
        let call = Call {
            ua: Ua::udp("placeholder", "127.0.0.1:9".parse().unwrap()),
            call_id,
            from,
            to,
            remote,
            seq,
            tone,
            keys,
            heard,
            stop,
        };
        (Some(call), r)
    }

    /// Keys by RFC 4733 (queued; sent in order, one per 20 ms frame slot).
    fn key(&self, digits: &str) {
        self.keys.lock().unwrap().extend(digits.chars());
        wait_until("keys sent", Duration::from_secs(10), || {
            self.keys.lock().unwrap().is_empty()
        });
        // the last event's end packets go out over three frames
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Keys by SIP INFO (application/dtmf-relay), each answered 200.
    fn info(&mut self, digits: &str) {
        for d in digits.chars() {
            self.seq += 1;
            let mut info = self.ua.in_dialog(
                Method::Info,
                &self.remote,
                &[],
                &self.from,
                &self.to,
                &self.call_id,
                self.seq,
            );
            info.set_body(
                "application/dtmf-relay",
                format!("Signal={d}\r\nDuration=160\r\n"),
            );
            self.ua.send(&info);
            let r = self.ua.expect_response(&Method::Info, self.seq, 200..=699);
            assert_eq!(r.status(), Some(200), "INFO {d}: {}", first_line(&r));
        }
    }

    fn send_tone(&self, hz: u32) {
        self.tone.store(hz, Ordering::Relaxed);
    }

    /// What arrives over the next `ms`, decoded (8 kHz).
    fn listen(&self, ms: u64) -> Vec<i16> {
        self.heard.lock().unwrap().clear();
        std::thread::sleep(Duration::from_millis(ms));
        std::mem::take(&mut *self.heard.lock().unwrap())
    }

    /// Waits until what it hears has `hz` clearly in it (a tone of another participant).
    fn wait_to_hear(&self, hz: f64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let x = self.listen(400);
            let level = rms(&x);
            if x.len() > 1600 && level > 200.0 && goertzel(&x, 8000.0, hz) > 0.1 * level * level {
                return;
            }
            assert!(Instant::now() < deadline, "never heard {hz} Hz");
        }
    }

    /// Waits until it hears speech (a prompt): loud enough, mostly in 300-3400 Hz.
    fn wait_for_speech(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let x = self.listen(600);
            if x.len() > 2400
                && rms(&x) > 300.0
                && band_energy_ratio(&x, 8000.0, 300.0, 3400.0) > 0.6
            {
                return;
            }
            assert!(Instant::now() < deadline, "no speech heard");
        }
    }

    /// Waits until it hears (nearly) nothing for 600 ms: what was playing is over.
    fn wait_for_quiet(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if rms(&self.listen(600)) < 150.0 {
                return;
            }
            assert!(Instant::now() < deadline, "never quiet");
        }
    }

    /// Waits for the server's BYE and answers it. The attendant says goodbye first (a
    /// prompt that may be synthesised on first use, then played in real time), so the
    /// wait is bounded by 30 s rather than the user agent's usual 5.
    fn expect_bye(&mut self) {
        let bye = self
            .ua
            .expect_within("BYE from the server", Duration::from_secs(30), |m| {
                m.method() == Some(&Method::Bye)
            });
        assert_eq!(bye.call_id().unwrap().as_str(), self.call_id);
        self.ua.reply(&bye, 200, "x");
    }
}

/// The gateway: a trusted peer (TCP from 127.0.0.1) whose calls come From a phone number.
fn gateway(s: &Server, number: &str) -> Ua {
    let mut ua = Ua::tcp("gateway", s.addr());
    ua.user = number.to_string();
    ua.domain = "127.0.0.1".to_string();
    ua
}

/// The gateway's INVITE carries the caller's number as From.
fn phone_call(s: &Server, number: &str) -> Call {
    let ua = gateway(s, number);
    Call::dial(ua, ACCESS)
}

/// Through the attendant as a caller who is not the leader: the conference ID, `#` at the
/// leader question, and (names are announced by default) a short recorded name.
fn join_as_guest(c: &Call, conference_id: &str, record_name: bool) {
    c.wait_for_speech(Duration::from_secs(20));
    c.key(&format!("{conference_id}#"));
    c.wait_for_speech(Duration::from_secs(20)); // "if you are the leader, press star"
    c.key("#");
    if record_name {
        c.wait_for_speech(Duration::from_secs(20)); // "after the tone, say your name"
        c.send_tone(300);
        std::thread::sleep(Duration::from_millis(800));
        c.send_tone(0);
        c.key("#");
    }
}

fn rest_roster(http: u16, key: &str) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{http}/api/v1/meetings/{key}/roster");
    let auth = basic_auth(&format!("user0001@{DOMAIN}:pw-user0001"));
    let r = ureq::get(&url).set("Authorization", &auth).call();
    match r {
        Ok(r) => r.into_json().unwrap(),
        // not live yet: nobody there
        Err(ureq::Error::Status(404, _)) => {
            serde_json::json!({"participants": [], "lobby": []})
        }
        Err(e) => panic!("roster: {e}"),
    }
}

fn origins(v: &serde_json::Value, list: &str) -> Vec<(String, String)> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {v}"))
        .iter()
        .map(|p| {
            (
                p["origin"].as_str().unwrap_or("").to_string(),
                p["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Waits until the meeting's roster (REST) satisfies `cond`.
fn wait_roster(
    http: u16,
    key: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = rest_roster(http, key);
        if cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: roster is {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(v: &serde_json::Value, list: &str, origin: &str) -> usize {
    origins(v, list).iter().filter(|(o, _)| o == origin).count()
}

/// A SIP participant of the meeting (UDP, signed in), sending a tone.
fn sip_participant(s: &Server, user: &str, uri: &str, hz: u32) -> Call {
    let ua = Ua::udp(user, s.addr());
    let c = Call::dial(ua, uri);
    c.send_tone(hz);
    c
}

#[test]
fn a_phone_joins_by_number_and_conference_id_and_hears_the_meeting() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27000, http));
    let m = setup(&s, &["--access", "Everyone"]);
    let (uri, key, id) = (
        str_of(&m, "uri"),
        str_of(&m, "key"),
        str_of(&m, "conference_id"),
    );
    let alice = sip_participant(&s, "user0002", &uri, 1000);

    let phone = phone_call(&s, "+14255559999");
    // the attendant speaks (a prompt is speech, not silence or a tone)
    join_as_guest(&phone, &id, true);
    let v = wait_roster(http, &key, "the phone caller joins", |v| {
        count(v, "participants", "phone") == 1
    });
    assert_eq!(
        count(&v, "lobby", "phone"),
        0,
        "PstnCallersBypassLobby is True by default"
    );
    // the phone hears the meeting: alice's 1000 Hz; alice hears the phone's 600 Hz
    phone.wait_to_hear(1000.0, Duration::from_secs(10));
    phone.send_tone(600);
    alice.wait_to_hear(600.0, Duration::from_secs(10));
    // the phone does not hear itself
    let pcm = phone.listen(600);
    assert!(goertzel(&pcm, 8000.0, 600.0) < 0.1 * goertzel(&pcm, 8000.0, 1000.0));
}

#[test]
fn keys_by_sip_info_and_three_wrong_conference_ids_end_the_call() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27100, http));
    setup(&s, &["--access", "Everyone"]);
    let mut phone = phone_call(&s, "+14255559998");
    phone.wait_for_speech(Duration::from_secs(20));
    // a signal that is no key is refused, not guessed at
    for body in [
        "Signal=55\r\nDuration=160\r\n",
        "Signal=\r\n",
        "Signal=\u{7f}\r\n",
    ] {
        phone.seq += 1;
        let mut info = phone.ua.in_dialog(
            Method::Info,
            &phone.remote,
            &[],
            &phone.from,
            &phone.to,
            &phone.call_id,
            phone.seq,
        );
        info.set_body("application/dtmf-relay", body.to_string());
        phone.ua.send(&info);
        let r = phone
            .ua
            .expect_response(&Method::Info, phone.seq, 200..=699);
        assert_eq!(r.status(), Some(400), "{body:?}: {}", first_line(&r));
    }
    // each wrong ID is answered by a prompt ("not recognised", then goodbye)
    for _ in 0..3 {
        phone.info("1111111#");
        phone.wait_for_speech(Duration::from_secs(20));
    }
    phone.expect_bye();
}

#[test]
fn a_leader_pin_makes_a_presenter_who_admits_the_lobby_mutes_and_locks_by_keypad() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27200, http));
    let m = setup(
        &s,
        &["--access", "Everyone", "--pstn-bypass-lobby", "false"],
    );
    let (key, id) = (str_of(&m, "key"), str_of(&m, "conference_id"));

    // a caller who is not the leader waits in the lobby (PstnCallersBypassLobby $false)
    let guest = phone_call(&s, "+14255559997");
    join_as_guest(&guest, &id, true);
    wait_roster(http, &key, "the guest waits", |v| {
        count(v, "lobby", "phone") == 1
    });

    // the leader: conference ID, *, number, PIN — by SIP INFO
    let mut leader = phone_call(&s, "+14255550101");
    leader.wait_for_speech(Duration::from_secs(20));
    leader.info(&format!("{id}#"));
    leader.wait_for_speech(Duration::from_secs(20));
    leader.info("*");
    leader.info("101#");
    leader.info("70713#");
    let v = wait_roster(http, &key, "the leader joins", |v| {
        // user0001 is the organizer
        origins(v, "participants").contains(&("organizer".into(), "organizer".into()))
    });
    assert_eq!(count(&v, "lobby", "phone"), 1);
    // *8 admits everyone in the lobby
    leader.key("*8");
    wait_roster(http, &key, "*8 admits the lobby", |v| {
        count(v, "lobby", "phone") == 0 && count(v, "participants", "phone") == 1
    });
    // *6 mutes the leader
    leader.key("*6");
    wait_roster(http, &key, "*6 mutes", |v| {
        v["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["origin"] == "organizer" && p["muted"] == true)
    });
    let phone_muted = |v: &serde_json::Value, muted: bool| {
        v["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["origin"] == "phone" && p["muted"] == muted)
    };
    // *4 mutes the audience (the guest), *4 again unmutes it
    leader.key("*4");
    wait_roster(http, &key, "*4 mutes the audience", |v| {
        phone_muted(v, true)
    });
    leader.key("*4");
    wait_roster(http, &key, "*4 again unmutes it", |v| phone_muted(v, false));
    // *3 (the roll call) and *1 (help) are spoken to the leader, each after a quiet spell
    for cmd in ["*3", "*1"] {
        leader.wait_for_quiet(Duration::from_secs(30));
        leader.key(cmd);
        leader.wait_for_speech(Duration::from_secs(20));
    }
    // the admitted guest's *6 mutes itself
    guest.key("*6");
    wait_roster(http, &key, "the guest's *6 mutes it", |v| {
        v["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["origin"] == "phone" && p["muted"] == true)
    });
}

#[test]
fn star_seven_locks_the_meeting_so_the_next_caller_waits() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27500, http));
    // PstnCallersBypassLobby: callers get in directly
    let m = setup(&s, &["--access", "Everyone", "--pstn-bypass-lobby", "true"]);
    let (key, id) = (str_of(&m, "key"), str_of(&m, "conference_id"));
    let mut leader = phone_call(&s, "+14255550101");
    leader.wait_for_speech(Duration::from_secs(20));
    leader.info(&format!("{id}#"));
    leader.wait_for_speech(Duration::from_secs(20));
    leader.info("*101#70713#");
    wait_roster(http, &key, "the leader joins", |v| {
        count(v, "participants", "organizer") == 1
    });
    let first = phone_call(&s, "+14255559993");
    join_as_guest(&first, &id, true);
    wait_roster(http, &key, "a caller gets in directly", |v| {
        count(v, "participants", "phone") == 1
    });
    // a caller's *7 is a leader's command: nothing changes
    first.key("*7");
    let second = phone_call(&s, "+14255559992");
    join_as_guest(&second, &id, true);
    wait_roster(http, &key, "still open", |v| {
        count(v, "participants", "phone") == 2
    });
    // the leader's *7 locks: the next caller waits
    leader.key("*7");
    let third = phone_call(&s, "+14255559991");
    join_as_guest(&third, &id, true);
    let v = wait_roster(http, &key, "the locked meeting's lobby", |v| {
        count(v, "lobby", "phone") == 1
    });
    assert_eq!(count(&v, "participants", "phone"), 2);
}

#[test]
fn entry_announcements_follow_the_dial_in_configuration() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27600, http));
    let m = setup(&s, &["--access", "Everyone"]);
    let (uri, id) = (str_of(&m, "uri"), str_of(&m, "conference_id"));
    s.configure(
        "Set-CsDialInConferencingConfiguration -Identity Global \
         -EntryExitAnnouncementsEnabledByDefault $true -EntryExitAnnouncementsType ToneOnly",
    );
    // a quiet participant listens
    let alice = sip_participant(&s, "user0002", &uri, 0);
    let phone = phone_call(&s, "+14255559990");
    // ToneOnly: nobody records a name
    join_as_guest(&phone, &id, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let x = alice.listen(300);
        let level = rms(&x);
        if level > 200.0
            && (goertzel(&x, 8000.0, 600.0) + goertzel(&x, 8000.0, 900.0)) > 0.1 * level * level
        {
            break;
        }
        assert!(Instant::now() < deadline, "no entry tone heard");
    }
}

#[test]
fn a_presenter_has_the_focus_dial_out_to_a_user() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27700, http));
    let m = setup(&s, &["--access", "Everyone"]);
    let (uri, key) = (str_of(&m, "uri"), str_of(&m, "key"));
    let mut carol = Ua::udp("user0003", s.addr());
    let r = carol.register(600);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let mut org = Call::dial(Ua::udp("user0001", s.addr()), &uri);
    let mut refer = |target: &str| {
        org.seq += 1;
        let mut req = org.ua.in_dialog(
            Method::Refer,
            &org.remote,
            &[],
            &org.from,
            &org.to,
            &org.call_id,
            org.seq,
        );
        req.headers.push(HeaderName::ReferTo, format!("<{target}>"));
        org.ua.send(&req);
        org.ua.expect_response(&Method::Refer, org.seq, 200..=699)
    };
    // an organizer without Enterprise Voice dials no numbers; other domains are not dialled
    let r = refer("tel:+14255550123");
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(
        first_line(&r).contains("Enterprise Voice"),
        "{}",
        first_line(&r)
    );
    assert_eq!(refer("sip:bob@elsewhere.test").status(), Some(403));
    let r = refer("sip:user0003@example.test");
    assert_eq!(r.status(), Some(202), "{}", first_line(&r));
    // the focus calls carol with the MCU's offer
    let inv = carol.expect_request(Method::Invite);
    let theirs = String::from_utf8_lossy(&inv.body).to_string();
    assert!(
        theirs.contains("PCMU") && theirs.contains("telephone-event"),
        "{theirs}"
    );
    assert!(inv
        .header(&HeaderName::Contact)
        .unwrap()
        .contains("isfocus"));
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut ok = confab_sip::response_to(&inv, 200, None, Some("carol1"));
    ok.headers
        .push(HeaderName::Contact, format!("<{}>", carol.contact_uri()));
    ok.set_body("application/sdp", offer(rtp.local_addr().unwrap().port()));
    carol.send(&ok);
    let ack = carol.expect_request(Method::Ack);
    assert_eq!(ack.call_id(), inv.call_id());
    let v = wait_roster(http, &key, "carol joins", |v| {
        v["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["display"] == "user0003@example.test" && p["origin"] == "enterprise")
    });
    assert_eq!(
        v["lobby"].as_array().unwrap().len(),
        0,
        "a presenter's callee bypasses the lobby"
    );
    // the organizer hears how it went: 100 Trying, then 200 OK
    // (in CSeq order: UDP may reorder)
    let mut frags = vec![];
    while frags.len() < 2 {
        let n = org
            .ua
            .expect("REFER NOTIFY", |m| m.method() == Some(&Method::Notify));
        org.ua.reply(&n, 200, "o");
        frags.push((
            n.cseq().unwrap().seq,
            String::from_utf8_lossy(&n.body).to_string(),
        ));
    }
    frags.sort();
    assert!(
        frags[0].1.contains("100 Trying") && frags[1].1.contains("200 OK"),
        "{frags:?}"
    );
    // carol's media reaches the MCU: she hears the organizer's tone
    let dest = sdp_addr(&inv.body).expect("the focus's offer");
    org.send_tone(700);
    let heard = Arc::new(Mutex::new(vec![]));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (heard, stop) = (heard.clone(), stop.clone());
        let (tone, keys) = (Arc::new(AtomicU32::new(0)), Arc::new(Mutex::new(vec![])));
        std::thread::spawn(move || media(rtp, dest, tone, keys, heard, stop));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let x = std::mem::take(&mut *heard.lock().unwrap());
        let level = rms(&x);
        if level > 200.0 && goertzel(&x, 8000.0, 700.0) > 0.1 * level * level {
            break;
        }
        assert!(Instant::now() < deadline, "carol never heard the meeting");
    }
    stop.store(true, Ordering::Relaxed);

    // REST: the organizer has the focus call dave, who is busy: nobody joins
    let mut dave = Ua::udp("user0004", s.addr());
    assert_eq!(dave.register(600).status(), Some(200));
    let dave_uri = "sip%3Auser0004%40example.test";
    assert_eq!(rest_dial_out(http, &key, dave_uri, "user0001"), 204);
    let inv = dave.expect_request(Method::Invite);
    dave.reply(&inv, 486, "dave1");
    let ack = dave.expect_request(Method::Ack);
    assert_eq!(ack.call_id(), inv.call_id());
    let v = rest_roster(http, &key);
    assert_eq!(v["participants"].as_array().unwrap().len(), 2, "{v}");
    // a user who leads nothing cannot have the focus call anyone
    let code = rest_dial_out(http, &key, dave_uri, "user0002");
    assert!(matches!(code, 404 | 403), "{code}");
    // with it, a number leaves through the organizer's voice route to a gateway (sipp),
    // which gets the MCU's offer
    let gp = free_port("127.0.0.3");
    let gw = common::gateway::Gateway::start("127.0.0.3", gp, common::gateway::Answer::Ok);
    let users_before = s.user_reloads();
    s.configure(&format!(
        r#"Set-CsPstnUsage -Identity Global -Usage @{{Add="Local"}}
New-CsPstnGateway -Identity 127.0.0.3 -Port {gp} -Transport TCP
New-CsVoiceRoute -Identity LocalRoute -NumberPattern '^\+1\d{{10}}$' -PstnUsages @{{Add="Local"}} -PstnGatewayList @{{Add="PstnGateway:127.0.0.3"}}
Set-CsVoicePolicy -Identity Global -PstnUsages @{{Add="Local"}}
Set-CsUser -Identity sip:user0001@example.test -EnterpriseVoiceEnabled $true"#
    ));
    s.wait_users_reloaded(users_before);
    assert_eq!(
        rest_dial_out(http, &key, "tel%3A%2B12065550123", "user0001"),
        204
    );
    let inv = gw.wait_invites(1);
    assert!(
        inv[0].contains("INVITE sip:+12065550123@127.0.0.3:"),
        "{}",
        inv[0]
    );
    assert!(inv[0].contains("m=audio"), "{}", inv[0]);
}

/// `POST /api/v1/meetings/{key}/participants/{target}/dialout` (target URL-encoded) as
/// `user` with their SIP password: the HTTP status.
fn rest_dial_out(http: u16, key: &str, target: &str, user: &str) -> u16 {
    let r = ureq::post(&format!(
        "http://127.0.0.1:{http}/api/v1/meetings/{key}/participants/{target}/dialout"
    ))
    .set(
        "Authorization",
        &basic_auth(&format!("{user}@{DOMAIN}:pw-{user}")),
    )
    .send_string("");
    match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("dial-out request: {e}"),
    }
}

/// Get-CsClientPinInfo's IsLockedOut.
fn locked_out(info: &str) -> bool {
    info.lines()
        .find_map(|l| l.strip_prefix("IsLockedOut"))
        .map(|v| v.trim_start_matches([' ', ':']).trim() == "True")
        .unwrap_or_else(|| panic!("no IsLockedOut in {info}"))
}

#[test]
fn a_pin_locks_after_the_policys_attempts_and_unlock_clears_it() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27300, http));
    let m = setup(&s, &["--access", "Everyone"]);
    let id = str_of(&m, "conference_id");
    s.configure("Set-CsPinPolicy -Identity Global -MaximumLogonAttempts 2");
    let mut phone = phone_call(&s, "+14255559995");
    phone.wait_for_speech(Duration::from_secs(20));
    phone.info(&format!("{id}#"));
    phone.wait_for_speech(Duration::from_secs(20));
    phone.info("*");
    // each wrong PIN is checked by the store, then answered by a prompt
    for _ in 0..2 {
        phone.info("101#");
        phone.info("11111#");
        phone.wait_for_speech(Duration::from_secs(20));
    }
    let info = s.configure("Get-CsClientPinInfo -Identity \"sip:user0001@example.test\"");
    assert!(locked_out(&info), "{info}");
    // the right PIN no longer works: goodbye
    phone.info("101#");
    phone.info("70713#");
    phone.expect_bye();
    s.configure("Unlock-CsClientPin -Identity \"sip:user0001@example.test\"");
    let info = s.configure("Get-CsClientPinInfo -Identity \"sip:user0001@example.test\"");
    assert!(!locked_out(&info), "{info}");
}

#[test]
fn only_gateways_and_our_users_reach_the_access_number() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27400, http));
    setup(&s, &["--access", "Everyone"]);
    // from the Internet (UDP, a foreign sender): refused
    let mut stranger = Ua::udp("mallory", s.addr());
    stranger.domain = "evil.test".into();
    let (c, r) = Call::try_dial(&mut stranger, ACCESS);
    assert!(c.is_none());
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    // claiming to be a local user over UDP: challenged; with the password, the attendant
    let mut user = Ua::udp("user0003", s.addr());
    let (c, r) = Call::try_dial(&mut user, "sip:+14255550100@example.test;user=phone");
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let c = c.unwrap();
    c.wait_for_speech(Duration::from_secs(20));
    // a number that is no access number is no attendant
    let mut gw = gateway(&s, "+14255559994");
    let (c2, r) = Call::try_dial(&mut gw, "tel:+14255550199");
    assert!(c2.is_none());
    assert_eq!(r.status(), Some(404), "{}", first_line(&r));
}

/// A sipp "gateway" scenario: over TCP from 127.0.0.1 (a trusted peer) it calls the access
/// number with an SDP offer, then keys `groups` by SIP INFO (`application/dtmf-relay`, one
/// key per INFO, each answered 200), pausing `pause_ms` between groups (a caller waits for
/// the next prompt), stays `hold_ms`, and hangs up.
fn sipp_info_scenario(groups: &[&str], pause_ms: u32, hold_ms: u32) -> String {
    const FROM: &str =
        "From: \"Gateway\" <sip:+14255558888@[local_ip];user=phone>;tag=[pid]G[call_number]";
    // a request inside the call (ACK, INFO, BYE): the route set and the focus's To
    let in_dialog = |method: &str, cseq: u32, body: &str| {
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/dtmf-relay\n      ".into()
        };
        format!(
            "  <send>\n    <![CDATA[\n\n      {method} [next_url] SIP/2.0\n      \
             Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      [routes]\n      \
             Max-Forwards: 70\n      {FROM}\n      [last_To:]\n      Call-ID: [call_id]\n      \
             CSeq: {cseq} {method}\n      {ct}Content-Length: [len]\n\n      {body}\n    ]]>\n  </send>\n"
        )
    };
    let mut x = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="dialin_info">
  <send retrans="500">
    <![CDATA[

      INVITE tel:+14255550100 SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      {FROM}
      To: <tel:+14255550100>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:gw@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
"#
    );
    x.push_str(&in_dialog("ACK", 1, ""));
    x.push_str("  <pause milliseconds=\"1500\"/>\n");
    let mut cseq = 1;
    for g in groups {
        for k in g.chars() {
            cseq += 1;
            x.push_str(&in_dialog(
                "INFO",
                cseq,
                &format!("Signal={k}\n      Duration=160"),
            ));
            x.push_str("  <recv response=\"200\"/>\n");
        }
        x.push_str(&format!("  <pause milliseconds=\"{pause_ms}\"/>\n"));
    }
    x.push_str(&format!("  <pause milliseconds=\"{hold_ms}\"/>\n"));
    x.push_str(&in_dialog("BYE", cseq + 1, ""));
    x.push_str("  <recv response=\"200\"/>\n</scenario>\n");
    x
}

#[test]
fn a_sipp_gateway_keys_the_conference_id_and_leader_pin_by_sip_info() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27800, http));
    let m = setup(&s, &["--access", "Everyone"]);
    let (key, id) = (str_of(&m, "key"), str_of(&m, "conference_id"));
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("dialin_info.xml");
    let conf = format!("{id}#");
    std::fs::write(
        &xml,
        sipp_info_scenario(&[&conf, "*", "101#", "70713#"], 1200, 6000),
    )
    .unwrap();
    let sipp = std::process::Command::new("timeout")
        .args(["-k", "5", "60", "sipp"])
        .args(["-i", "127.0.0.1", "-t", "t1", "-nostdin", "-m", "1"])
        .args(["-mp", &free_port("127.0.0.1").to_string()])
        .args(["-p", &free_port("127.0.0.1").to_string()])
        .arg("-sf")
        .arg(&xml)
        .arg(format!("127.0.0.1:{}", s.addr().port()))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sipp is installed (apt-get install sip-tester)");
    // the leader's PIN, keyed by INFO, makes the organizer a participant
    wait_roster(http, &key, "the sipp leader joins", |v| {
        origins(v, "participants").contains(&("organizer".into(), "organizer".into()))
    });
    let out = sipp.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(out.status.success(), "sipp failed:\n{text}");
}

/// Lync's clients' media port range (ClientMediaPortRangeEnabled) is for clients: a PSTN
/// gateway's media ports are its own, so its callers still get in; a SIP client dialling
/// the access number from outside the range is refused.
#[test]
fn the_clients_port_range_does_not_apply_to_gateways() {
    let http = free_port("127.0.0.1");
    let s = Server::start(5, &config(27900, http));
    let m = setup(&s, &["--access", "Everyone"]);
    let (key, id) = (str_of(&m, "key"), str_of(&m, "conference_id"));
    s.configure(
        "Set-CsConferencingConfiguration -Identity Global -ClientMediaPortRangeEnabled $true \
         -ClientAudioPort 5350 -ClientAudioPortRange 40",
    );
    let phone = phone_call(&s, "+14255559989");
    join_as_guest(&phone, &id, true);
    wait_roster(http, &key, "the gateway's caller joins", |v| {
        count(v, "participants", "phone") == 1
    });
    let mut user = Ua::udp("user0003", s.addr());
    let (c, r) = Call::try_dial(&mut user, ACCESS_SIP);
    assert!(c.is_none());
    assert_eq!(r.status(), Some(488), "{}", first_line(&r));
}

/// The access number as a SIP URI of our domain.
const ACCESS_SIP: &str = "sip:+14255550100@example.test;user=phone";
