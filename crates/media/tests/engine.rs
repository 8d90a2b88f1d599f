//! The engine over real loopback UDP sockets: legs opened with SDP offers from test
//! sockets, RTP tones sent in real time, what comes back decoded and FFT'd.

mod common;

use common::{assert_tones, tone_db, Client};
use confab_media::{
    rtp, sdp_offer, Codec, Engine, EngineConfig, LegId, LegMode, MediaError, MediaEvent, RoomId,
};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
// Each test has its own MCU port range, below the kernel's ephemeral ports (32768-60999)
// so no test client socket elsewhere takes one.

fn engine(port_min: u16, port_max: u16, timeout_ms: u64) -> Engine {
    Engine::start(EngineConfig {
        bind_ip: LOCAL,
        port_min,
        port_max,
        threads: 2,
        rtp_timeout: Duration::from_millis(timeout_ms),
        codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
        max_legs: 16,
    })
    .unwrap()
}

fn answer_port(answer: &str) -> u16 {
    let m = answer
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .expect("no m=audio in answer");
    m.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A phone on a UDP socket.
struct Phone {
    sock: UdpSocket,
    client: Client,
    mcu: SocketAddr,
    leg: Option<LegId>,
    received: usize,
    /// (sequence number, timestamp, SSRC) of every RTP packet received.
    headers: Vec<(u16, u32, u32)>,
}

impl Phone {
    fn new(codec: Codec, freq: Option<f64>) -> Phone {
        let sock = UdpSocket::bind((LOCAL, 0)).unwrap();
        sock.set_nonblocking(true).unwrap();
        Phone {
            sock,
            client: Client::new(codec, freq),
            mcu: SocketAddr::new(LOCAL, 0),
            leg: None,
            received: 0,
            headers: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn offer(&self) -> String {
        sdp_offer(LOCAL, self.port(), &[self.client.codec])
    }

    fn join(&mut self, e: &Engine, room: RoomId) -> String {
        let (leg, answer) = e.open_leg(room, &self.offer(), LegMode::Active).unwrap();
        assert_eq!(e.leg_codec(leg), Some(self.client.codec));
        self.mcu = SocketAddr::new(LOCAL, answer_port(&answer));
        self.leg = Some(leg);
        answer
    }

    fn send(&mut self) {
        let p = self.client.next_packet();
        self.sock.send_to(&p, self.mcu).unwrap();
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert_eq!(from, self.mcu, "media from an unexpected address");
                    if !rtp::is_rtcp(&buf[..n]) {
                        let r = rtp::parse(&buf[..n]).unwrap();
                        self.headers.push((r.seq, r.ts, r.ssrc));
                        self.client.receive(&buf[..n]);
                        self.received += 1;
                    }
                }
                Err(_) => break,
            }
        }
    }
}

/// Runs `ticks` 20 ms periods on absolute deadlines: the sending phones send, every
/// phone takes what arrived; `extra` runs each period too (attackers).
fn talk(phones: &mut [&mut Phone], silent: &[bool], ticks: usize, mut extra: impl FnMut()) {
    let start = Instant::now();
    for t in 0..ticks {
        for (p, &s) in phones.iter_mut().zip(silent) {
            if !s {
                p.send();
            }
            p.drain();
        }
        extra();
        let due = start + Duration::from_millis(20 * (t as u64 + 1));
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    for p in phones.iter_mut() {
        p.drain();
    }
}

#[test]
fn three_phones_over_udp_hear_the_others_not_themselves() {
    let e = engine(23000, 23099, 30_000);
    let mut a = Phone::new(Codec::Opus, Some(600.0));
    let mut b = Phone::new(Codec::Pcmu, Some(1000.0));
    let mut c = Phone::new(Codec::Pcma, Some(1500.0));
    let room = RoomId(7);
    let answer = a.join(&e, room);
    assert!(
        answer.contains("opus/48000/2") && answer.contains("c=IN IP4 127.0.0.1"),
        "{answer}"
    );
    assert_eq!(answer_port(&answer) % 2, 0);
    b.join(&e, room);
    c.join(&e, room);
    talk(&mut [&mut a, &mut b, &mut c], &[false; 3], 90, || {});
    assert_tones(
        "opus phone",
        &a.client.heard,
        &[1000.0, 1500.0],
        &[600.0],
        20.0,
        1.0,
    );
    assert_tones(
        "PCMU phone",
        &b.client.heard,
        &[600.0, 1500.0],
        &[1000.0],
        20.0,
        1.0,
    );
    assert_tones(
        "PCMA phone",
        &c.client.heard,
        &[600.0, 1000.0],
        &[1500.0],
        20.0,
        1.0,
    );
    let s = e.stats();
    assert_eq!((s.legs, s.rooms), (3, 1));
    assert!(
        s.ticks >= 60 && s.rx_packets >= 3 * 80 && s.tx_packets >= 3 * 60,
        "{s:?}"
    );
    assert_eq!(s.dropped_packets, 0, "{s:?}");
    // Paced on time (a loaded shared machine may delay a tick now and then).
    assert!(s.late_ticks * 10 <= s.ticks, "{s:?}");
    for p in [&a, &b, &c] {
        e.close_leg(p.leg.unwrap());
    }
    let s = e.stats();
    assert_eq!((s.legs, s.rooms), (0, 0));
}

#[test]
fn rtp_from_a_wrong_address_or_outside_the_port_range_is_not_used() {
    let e = engine(23100, 23199, 30_000);
    let mut a = Phone::new(Codec::Pcmu, Some(600.0));
    let mut b = Phone::new(Codec::Pcmu, Some(1000.0));
    // The clients' audio port range: just the two phones' ports (and what lies between).
    let (lo, hi) = (a.port().min(b.port()), a.port().max(b.port()));
    e.set_remote_port_range(Some(lo..=hi));
    let room = RoomId(1);
    a.join(&e, room);
    b.join(&e, room);
    // An offer from a port outside the range is refused.
    let outside = if lo > 1024 { lo - 1 } else { hi + 1 };
    assert_eq!(
        e.open_leg(
            room,
            &sdp_offer(LOCAL, outside, &[Codec::Pcmu]),
            LegMode::Active
        ),
        Err(MediaError::PortOutsideRange(outside))
    );
    // Attacker 1: another IP (127.0.0.2) sends a 1500 Hz tone to a's MCU port.
    let other_ip = UdpSocket::bind("127.0.0.2:0").unwrap();
    // Attacker 2: the right IP, a source port outside the range.
    let mut wrong_port = UdpSocket::bind((LOCAL, 0)).unwrap();
    for _ in 0..50 {
        let p = wrong_port.local_addr().unwrap().port();
        if p < lo || p > hi {
            break;
        }
        wrong_port = UdpSocket::bind((LOCAL, 0)).unwrap();
    }
    let wp = wrong_port.local_addr().unwrap().port();
    assert!(wp < lo || wp > hi);
    let mut evil = Client::new(Codec::Pcmu, Some(1500.0));
    evil.ssrc = a.client.ssrc; // even with a's SSRC
    let target = a.mcu;
    talk(&mut [&mut a, &mut b], &[false, false], 80, || {
        let p = evil.next_packet();
        other_ip.send_to(&p, target).unwrap();
        wrong_port.send_to(&p, target).unwrap();
    });
    assert_tones("b", &b.client.heard, &[600.0], &[1500.0, 1000.0], 20.0, 1.0);
    let s = e.stats();
    assert!(s.dropped_wrong_source >= 70, "{s:?}");
    assert!(s.dropped_port_range >= 70, "{s:?}");
    // Once the range is lifted, the same-IP sender is taken (it latches a's port).
    e.set_remote_port_range(None);
    talk(&mut [&mut a, &mut b], &[true, false], 60, || {
        let p = evil.next_packet();
        wrong_port.send_to(&p, target).unwrap();
    });
    assert!(tone_db(&b.client.heard, 1500.0, 0.6) > tone_db(&b.client.heard, 3100.0, 0.6) + 30.0);
}

#[test]
fn malformed_and_oversized_datagrams_are_dropped_and_counted() {
    let e = engine(23200, 23299, 30_000);
    let mut a = Phone::new(Codec::Pcmu, Some(600.0));
    let mut b = Phone::new(Codec::Pcmu, Some(1000.0));
    a.join(&e, RoomId(2));
    b.join(&e, RoomId(2));
    let sock = &a.sock;
    let target = a.mcu;
    let mut k = 0u8;
    talk(&mut [&mut b], &[false], 30, || {
        k = k.wrapping_add(1);
        sock.send_to(&[0x80, 0x00, k], target).unwrap(); // too short
        sock.send_to(&[0x40; 40], target).unwrap(); // version 1
        sock.send_to(&[0x80; 1600], target).unwrap(); // oversized
        let mut p = vec![0u8; 172];
        rtp::write_header(&mut p, false, 96, k as u16, 0, 1); // a PT never negotiated
        sock.send_to(&p, target).unwrap();
    });
    let s = e.stats();
    assert!(s.dropped_malformed >= 3 * 25, "{s:?}");
    assert!(s.dropped_oversize >= 25, "{s:?}");
    // b still hears nothing of a (a sent no valid audio).
    assert!(tone_db(&b.client.heard, 600.0, 0.4) < tone_db(&b.client.heard, 3100.0, 0.4) + 10.0);
}

#[test]
fn a_silent_leg_times_out_once_talking_or_rtcp_sending_ones_do_not() {
    let e = engine(23300, 23399, 300);
    let mut a = Phone::new(Codec::Pcmu, Some(600.0));
    let mut b = Phone::new(Codec::Pcmu, None);
    a.join(&e, RoomId(3));
    b.join(&e, RoomId(3));
    // c sends only RTCP, on its RTP port (rtcp-mux); d only RTCP, on RTP + 1.
    let c = Phone::new(Codec::Pcmu, None);
    let (_, c_answer) = e
        .open_leg(
            RoomId(3),
            &c.offer().replace("a=ptime:20", "a=ptime:20\r\na=rtcp-mux"),
            LegMode::Active,
        )
        .unwrap();
    assert!(c_answer.contains("a=rtcp-mux"), "{c_answer}");
    let c_to = SocketAddr::new(LOCAL, answer_port(&c_answer));
    // d's RTCP comes from its RTP port + 1, as RFC 3550 has it (find a free pair).
    let (d, d_rtcp) = (0..50)
        .find_map(|_| {
            let d = Phone::new(Codec::Pcmu, None);
            let r = UdpSocket::bind((LOCAL, d.port().checked_add(1)?)).ok()?;
            Some((d, r))
        })
        .expect("no free port pair");
    let (_, d_answer) = e.open_leg(RoomId(3), &d.offer(), LegMode::Active).unwrap();
    assert!(d_answer.contains(&format!("a=rtcp:{}", answer_port(&d_answer) + 1)));
    let d_to = SocketAddr::new(LOCAL, answer_port(&d_answer) + 1);
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 7];
    let mut rtcp = || {
        c.sock.send_to(&rr, c_to).unwrap();
        d_rtcp.send_to(&rr, d_to).unwrap();
    };
    // b sends a few packets then stops; a keeps talking.
    talk(&mut [&mut a, &mut b], &[false, false], 5, &mut rtcp);
    let start = Instant::now();
    let mut got = None;
    while start.elapsed() < Duration::from_secs(5) && got.is_none() {
        talk(&mut [&mut a, &mut b], &[false, true], 5, &mut rtcp);
        got = e.poll_event();
    }
    assert_eq!(
        got,
        Some(MediaEvent::Timeout {
            leg: b.leg.unwrap()
        })
    );
    assert!(start.elapsed() >= Duration::from_millis(250));
    // Reported once, and not for a, c or d.
    talk(&mut [&mut a, &mut b], &[false, true], 25, &mut rtcp);
    assert_eq!(e.poll_event(), None);
    assert_eq!(e.stats().timeouts, 1);
    assert_eq!(e.stats().dropped_packets, 0, "{:?}", e.stats());
}

#[test]
fn dtmf_events_are_reported_once_and_not_relayed() {
    let e = engine(23400, 23499, 30_000);
    let mut a = Phone::new(Codec::Pcmu, None);
    let mut b = Phone::new(Codec::Pcmu, None);
    a.join(&e, RoomId(4));
    b.join(&e, RoomId(4));
    for (i, (ev, end)) in [(5u8, false), (5, false), (5, true), (5, true), (5, true)]
        .into_iter()
        .enumerate()
    {
        let mut p = vec![0u8; 16];
        rtp::write_header(&mut p, i == 0, 101, 500 + i as u16, 8000, 42);
        p[12..].copy_from_slice(&[ev, if end { 0x8a } else { 0x0a }, 0, 40 * (i as u8 + 1)]);
        a.sock.send_to(&p, a.mcu).unwrap();
    }
    let ev = e.wait_event(Duration::from_secs(3));
    assert_eq!(
        ev,
        Some(MediaEvent::Dtmf {
            leg: a.leg.unwrap(),
            digit: '5'
        })
    );
    talk(&mut [&mut a, &mut b], &[true, true], 10, || {});
    assert_eq!(e.poll_event(), None);
    // b was sent audio only (its payload type), no telephone-event.
    assert!(b.received > 0 && b.client.payloads.iter().all(|p| p.len() == 160));
}

#[test]
fn hold_and_resume_by_reinvite() {
    let e = engine(23500, 23599, 300);
    let mut a = Phone::new(Codec::Pcmu, Some(600.0));
    let mut b = Phone::new(Codec::Pcmu, Some(1000.0));
    let first = a.join(&e, RoomId(5));
    b.join(&e, RoomId(5));
    talk(&mut [&mut a, &mut b], &[false, false], 20, || {});
    assert!(a.received > 0);
    // a puts the call on hold (sendonly): we answer recvonly, same port, next version.
    let hold = a.offer().replace("a=sendrecv", "a=sendonly");
    let answer = e.update_leg(a.leg.unwrap(), &hold).unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert_eq!(answer_port(&answer), answer_port(&first));
    let o = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("o="))
            .unwrap()
            .split(' ')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(o(&answer)[1], o(&first)[1]);
    assert_eq!(o(&answer)[2], "2");
    talk(&mut [&mut a, &mut b], &[false, false], 5, || {}); // in flight
    let held_at = a.received;
    talk(&mut [&mut a, &mut b], &[false, false], 20, || {});
    assert_eq!(a.received, held_at, "sent to a held phone");
    // Inactive hold with c=0.0.0.0 and silence: no timeout while held.
    let hold0 = a
        .offer()
        .replace("a=sendrecv", "a=inactive")
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    assert!(e
        .update_leg(a.leg.unwrap(), &hold0)
        .unwrap()
        .contains("a=inactive"));
    talk(&mut [&mut a, &mut b], &[true, false], 25, || {});
    assert_eq!(e.poll_event(), None);
    // Resume.
    let answer = e.update_leg(a.leg.unwrap(), &a.offer()).unwrap();
    assert!(answer.contains("a=sendrecv"));
    talk(&mut [&mut a, &mut b], &[false, false], 20, || {});
    assert!(a.received > held_at);
    // Unknown legs.
    assert_eq!(
        e.update_leg(LegId(999), &a.offer()),
        Err(MediaError::Closed)
    );
}

#[test]
fn set_mode_lobby_then_admit() {
    let e = engine(23600, 23699, 30_000);
    let mut a = Phone::new(Codec::Pcmu, Some(600.0));
    let mut l = Phone::new(Codec::Opus, Some(1500.0));
    a.join(&e, RoomId(6));
    let (leg, answer) = e.open_leg(RoomId(6), &l.offer(), LegMode::Lobby).unwrap();
    l.mcu = SocketAddr::new(LOCAL, answer_port(&answer));
    l.leg = Some(leg);
    talk(&mut [&mut a, &mut l], &[false, false], 60, || {});
    let beep = tone_db(&l.client.heard, 425.0, 1.0);
    assert!(tone_db(&l.client.heard, 600.0, 1.0) < beep - 40.0);
    assert!(tone_db(&a.client.heard, 1500.0, 1.0) < tone_db(&a.client.heard, 3100.0, 1.0) + 10.0);
    e.set_mode(leg, LegMode::Active);
    talk(&mut [&mut a, &mut l], &[false, false], 80, || {});
    assert_tones("admitted", &l.client.heard, &[600.0], &[1500.0], 20.0, 1.0);
    assert_tones("a", &a.client.heard, &[1500.0], &[600.0], 20.0, 1.0);
}

#[test]
fn refusals() {
    let e = engine(23700, 23703, 30_000); // two port pairs
    let room = RoomId(8);
    let g722 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 9\r\n";
    assert_eq!(
        e.open_leg(room, g722, LegMode::Active),
        Err(MediaError::NoCommonCodec)
    );
    assert!(matches!(
        e.open_leg(room, "garbage", LegMode::Active),
        Err(MediaError::BadSdp(_))
    ));
    // An IPv6 peer for an IPv4 engine.
    let v6 = sdp_offer("::1".parse().unwrap(), 5000, &[Codec::Pcmu]);
    assert!(matches!(
        e.open_leg(room, &v6, LegMode::Active),
        Err(MediaError::BadSdp(_))
    ));
    let offer = sdp_offer(LOCAL, 5000, &[Codec::Pcmu]);
    let (l1, _) = e.open_leg(room, &offer, LegMode::Active).unwrap();
    let (_l2, _) = e.open_leg(room, &offer, LegMode::Active).unwrap();
    assert_eq!(
        e.open_leg(room, &offer, LegMode::Active),
        Err(MediaError::NoPorts)
    );
    e.close_leg(l1);
    // The pair is free again (its sockets close on the mixing thread: await it).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match e.open_leg(room, &offer, LegMode::Active) {
            Ok(_) => break,
            Err(MediaError::NoPorts) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(x) => panic!("{x}"),
        }
    }
    assert_eq!(e.stats().legs, 2);
    // max_legs.
    let e = Engine::start(EngineConfig {
        bind_ip: LOCAL,
        port_min: 23710,
        port_max: 23799,
        max_legs: 1,
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    e.open_leg(room, &offer, LegMode::Active).unwrap();
    assert_eq!(
        e.open_leg(room, &offer, LegMode::Active),
        Err(MediaError::Full)
    );
    assert_eq!(MediaError::Full.to_string(), "media engine at capacity");
}

// ----- dial-in: prompts, moving legs, recording, announcements, dial-out ------------------

use confab_media::{sdp, Clip};
use std::sync::Arc;

/// Talks (`silent` as in `talk`) in rounds of 5 ticks until `want` matches an event or
/// `limit` passes; every event seen goes to `seen`.
fn talk_until(
    e: &Engine,
    phones: &mut [&mut Phone],
    silent: &[bool],
    limit: Duration,
    seen: &mut Vec<MediaEvent>,
    want: impl Fn(&MediaEvent) -> bool,
) -> Option<MediaEvent> {
    let start = Instant::now();
    while start.elapsed() < limit {
        talk(phones, silent, 5, || {});
        while let Some(ev) = e.poll_event() {
            seen.push(ev.clone());
            if want(&ev) {
                return Some(ev);
            }
        }
    }
    None
}

/// Samples heard from `from` (an index into `heard`) to the end.
fn since(p: &Phone, from: usize) -> &[i16] {
    &p.client.heard[from.min(p.client.heard.len())..]
}

#[test]
fn a_prompt_is_played_to_its_leg_then_prompt_done() {
    let e = engine(26000, 26099, 30_000);
    let mut p = Phone::new(Codec::Pcmu, None);
    let mut q = Phone::new(Codec::Opus, Some(600.0));
    p.join(&e, RoomId(100));
    q.join(&e, RoomId(100));
    talk(&mut [&mut p, &mut q], &[false, false], 10, || {});
    let leg = p.leg.unwrap();
    let from = p.client.heard.len();
    let start = Instant::now();
    e.play(leg, Arc::new(Clip::tone(1000.0, 600, 8000)));
    e.play(leg, Arc::new(Clip::tone(1400.0, 600, 8000)));
    let mut seen = Vec::new();
    let done = talk_until(
        &e,
        &mut [&mut p, &mut q],
        &[false, false],
        Duration::from_secs(5),
        &mut seen,
        |ev| matches!(ev, MediaEvent::PromptDone { .. }),
    );
    assert_eq!(
        done,
        Some(MediaEvent::PromptDone { leg, tag: 0 }),
        "{seen:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(1150),
        "{:?}",
        start.elapsed()
    );
    let heard = since(&p, from);
    // Both clips over the room (q's 600 Hz), in order.
    assert_tones(
        "prompted",
        &heard[..16000],
        &[600.0, 1000.0, 1400.0],
        &[],
        0.0,
        1.0,
    );
    assert!(tone_db(&heard[..8000], 1000.0, 0.5) > tone_db(&heard[..8000], 1400.0, 0.5) + 20.0);
    // q heard no prompt.
    assert!(tone_db(&q.client.heard, 1000.0, 1.0) < tone_db(&q.client.heard, 3100.0, 1.0) + 10.0);
    // Then no more prompt; a stopped prompt ends at once with PromptDone, once.
    talk(&mut [&mut p, &mut q], &[false, false], 20, || {});
    assert!(tone_db(&p.client.heard, 1000.0, 0.3) < tone_db(&p.client.heard, 600.0, 0.3) - 30.0);
    e.play(leg, Arc::new(Clip::tone(1000.0, 10_000, 8000)));
    talk(&mut [&mut p, &mut q], &[false, false], 5, || {});
    let stopped = Instant::now();
    e.stop_playing(leg);
    let ev = e.wait_event(Duration::from_secs(2));
    assert_eq!(ev, Some(MediaEvent::PromptDone { leg, tag: 0 }));
    assert!(stopped.elapsed() < Duration::from_millis(500));
    e.stop_playing(leg);
    talk(&mut [&mut p, &mut q], &[false, false], 10, || {});
    assert_eq!(e.poll_event(), None);
    // Unknown legs are ignored.
    e.play(LegId(999), Arc::new(Clip::silence(20)));
    e.stop_playing(LegId(999));
    assert_eq!(e.stats().prompts_dropped, 0);
}

#[test]
fn a_leg_moved_to_a_room_on_another_thread_keeps_its_stream_and_hears_the_room() {
    let e = engine(26100, 26199, 30_000); // two mixing threads
    let mut x = Phone::new(Codec::Pcmu, Some(600.0));
    let mut p = Phone::new(Codec::Opus, Some(1500.0));
    let mut y = Phone::new(Codec::Pcma, Some(1000.0));
    x.join(&e, RoomId(1)); // thread 0
    p.join(&e, RoomId(2)); // thread 1 (the least loaded)
    let leg = p.leg.unwrap();
    talk(&mut [&mut x, &mut p], &[false, false], 15, || {});
    // A prompt in its own room, that goes on in the meeting.
    e.play(leg, Arc::new(Clip::tone(2200.0, 2500, 6000)));
    talk(&mut [&mut x, &mut p], &[false, false], 10, || {});
    assert!(tone_db(&x.client.heard, 1500.0, 0.3) < tone_db(&x.client.heard, 3100.0, 0.3) + 10.0);
    e.move_leg(leg, RoomId(1), LegMode::Active).unwrap();
    let (px, xx) = (p.client.heard.len(), x.client.heard.len());
    talk(&mut [&mut x, &mut p], &[false, false], 70, || {});
    let s = e.stats();
    assert_eq!(
        (s.legs, s.rooms, s.moves, s.moves_between_threads),
        (2, 1, 1, 1),
        "{s:?}"
    );
    // The stream went on: one SSRC, consecutive sequence numbers, the timestamp advancing
    // by one frame per packet, and by the ticks missed on the way (at most a few) once.
    let h = &p.headers;
    assert!(h.len() >= 85, "{}", h.len());
    assert!(h.iter().all(|x| x.2 == h[0].2));
    let mut jumps = 0;
    for w in h.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence gap");
        let d = w[1].1.wrapping_sub(w[0].1);
        if d != 960 {
            jumps += 1;
            assert!(d % 960 == 0 && d <= 4 * 960, "timestamp step {d}");
        }
    }
    assert!(jumps <= 1, "{jumps} timestamp jumps");
    // p hears the meeting (600 Hz) and its prompt over it, not itself; x hears p.
    let ph = &since(&p, px)[8000..];
    assert_tones(
        "moved leg",
        ph,
        &[600.0, 2200.0],
        &[1500.0, 1000.0],
        20.0,
        0.8,
    );
    assert_tones(
        "meeting",
        &since(&x, xx)[8000..],
        &[1500.0],
        &[600.0, 2200.0],
        20.0,
        0.8,
    );
    let mut seen = Vec::new();
    let done = talk_until(
        &e,
        &mut [&mut x, &mut p],
        &[false, false],
        Duration::from_secs(5),
        &mut seen,
        |ev| matches!(ev, MediaEvent::PromptDone { .. }),
    );
    assert_eq!(done, Some(MediaEvent::PromptDone { leg, tag: 0 }));

    // Commands right after a move act on the leg in its new room: y's room is on thread
    // 1; x moves there muted (Active, then Muted at once).
    y.join(&e, RoomId(3));
    let xleg = x.leg.unwrap();
    e.move_leg(xleg, RoomId(3), LegMode::Active).unwrap();
    e.set_mode(xleg, LegMode::Muted);
    e.play(xleg, Arc::new(Clip::tone(2600.0, 400, 6000)));
    let (xx, yy) = (x.client.heard.len(), y.client.heard.len());
    talk(
        &mut [&mut x, &mut p, &mut y],
        &[false, false, false],
        50,
        || {},
    );
    assert_eq!(e.stats().moves_between_threads, 2);
    assert_tones(
        "x muted in room 3",
        &since(&x, xx)[4000..12000],
        &[1000.0, 2600.0],
        &[600.0, 1500.0],
        20.0,
        0.5,
    );
    assert_tones(
        "x muted in room 3",
        since(&x, xx),
        &[1000.0],
        &[600.0, 1500.0],
        20.0,
        0.4,
    );
    assert!(tone_db(since(&y, yy), 600.0, 0.8) < tone_db(since(&y, yy), 3100.0, 0.8) + 10.0);

    // A close racing a move: nothing left behind, the ports are free again.
    let port = e.leg_port(leg).unwrap();
    e.move_leg(leg, RoomId(3), LegMode::Active).unwrap();
    e.close_leg(leg);
    assert_eq!(
        e.move_leg(leg, RoomId(1), LegMode::Active),
        Err(MediaError::Closed)
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while UdpSocket::bind((LOCAL, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the closed leg's socket is still open"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    talk(&mut [&mut x, &mut y], &[false, false], 10, || {});
    let s = e.stats();
    assert_eq!((s.legs, s.rooms), (2, 1), "{s:?}");
}

#[test]
fn a_recording_holds_what_the_leg_sends() {
    let e = engine(26200, 26299, 30_000);
    let mut p = Phone::new(Codec::Opus, Some(1000.0));
    let mut q = Phone::new(Codec::Pcmu, Some(600.0));
    // Its own room (the attendant's), with a prompt playing to it; q elsewhere.
    p.join(&e, RoomId(1));
    q.join(&e, RoomId(2));
    let leg = p.leg.unwrap();
    e.play(leg, Arc::new(Clip::tone(2200.0, 3000, 6000)));
    talk(&mut [&mut p, &mut q], &[false, false], 5, || {});
    let start = Instant::now();
    e.record(leg, Duration::from_millis(1000));
    let mut seen = Vec::new();
    let got = talk_until(
        &e,
        &mut [&mut p, &mut q],
        &[false, false],
        Duration::from_secs(5),
        &mut seen,
        |ev| matches!(ev, MediaEvent::Recorded { .. }),
    );
    let Some(MediaEvent::Recorded { leg: l, clip }) = got else {
        panic!("no recording: {seen:?}");
    };
    assert_eq!(l, leg);
    assert!(start.elapsed() >= Duration::from_millis(950));
    assert_eq!(clip.pcm().len(), 16000);
    assert_eq!(clip.duration(), Duration::from_secs(1));
    assert_tones(
        "recording",
        &clip.pcm()[3200..],
        &[1000.0],
        &[2200.0, 600.0],
        30.0,
        0.8,
    );
    // Stopped early: what was heard so far (a muted leg is recorded too).
    e.set_mode(leg, LegMode::Muted);
    e.record(leg, Duration::from_secs(60));
    talk(&mut [&mut p, &mut q], &[false, false], 15, || {});
    e.stop_recording(leg);
    let got = talk_until(
        &e,
        &mut [&mut p, &mut q],
        &[false, false],
        Duration::from_secs(3),
        &mut seen,
        |ev| matches!(ev, MediaEvent::Recorded { .. }),
    );
    let Some(MediaEvent::Recorded { clip, .. }) = got else {
        panic!("no recording: {seen:?}");
    };
    let n = clip.pcm().len();
    assert!(n % 320 == 0 && (10 * 320..=30 * 320).contains(&n), "{n}");
    assert_tones(
        "early",
        &clip.pcm()[n - 3200..],
        &[1000.0],
        &[2200.0],
        20.0,
        0.2,
    );
    // Nothing more.
    e.stop_recording(leg);
    talk(&mut [&mut p, &mut q], &[false, false], 5, || {});
    assert!(
        !std::iter::from_fn(|| e.poll_event()).any(|ev| matches!(ev, MediaEvent::Recorded { .. }))
    );
}

#[test]
fn an_announcement_reaches_the_meeting_not_the_lobby() {
    let e = engine(26300, 26399, 30_000);
    let mut a = Phone::new(Codec::Pcmu, Some(600.0));
    let mut m = Phone::new(Codec::Opus, None);
    let mut l = Phone::new(Codec::Pcmu, Some(1500.0));
    a.join(&e, RoomId(5));
    m.join(&e, RoomId(5));
    e.set_mode(m.leg.unwrap(), LegMode::Muted);
    let (leg, answer) = e.open_leg(RoomId(5), &l.offer(), LegMode::Lobby).unwrap();
    l.mcu = SocketAddr::new(LOCAL, answer_port(&answer));
    l.leg = Some(leg);
    talk(&mut [&mut a, &mut m, &mut l], &[false; 3], 10, || {});
    e.announce(RoomId(5), Arc::new(Clip::tone(2200.0, 3000, 6000)));
    e.announce(RoomId(99), Arc::new(Clip::tone(2200.0, 3000, 6000))); // no such room
    talk(&mut [&mut a, &mut m, &mut l], &[false; 3], 110, || {});
    assert_tones(
        "talker",
        &a.client.heard,
        &[2200.0],
        &[600.0, 1500.0],
        20.0,
        1.5,
    );
    assert_tones(
        "muted",
        &m.client.heard,
        &[600.0, 2200.0],
        &[1500.0],
        20.0,
        1.5,
    );
    let lobby = &l.client.heard;
    assert!(tone_db(lobby, 2200.0, 2.0) < tone_db(lobby, 425.0, 2.0) - 40.0);
}

#[test]
fn dial_out_offer_then_answer() {
    let e = engine(26400, 26499, 300);
    let mut x = Phone::new(Codec::Pcmu, Some(600.0));
    x.join(&e, RoomId(1));
    let (leg, offer) = e.offer_leg(RoomId(1), LegMode::Active).unwrap();
    let port = e.leg_port(leg).unwrap();
    assert!(
        offer.contains(&format!("m=audio {port} RTP/AVP 111 0 8 110 101\r\n")),
        "{offer}"
    );
    assert!(
        offer.contains("c=IN IP4 127.0.0.1\r\n")
            && offer.contains("a=rtpmap:101 telephone-event/8000")
    );
    // The phone reads our offer and answers PCMU with telephone-event.
    let mut p = Phone::new(Codec::Pcmu, Some(1500.0));
    let o = sdp::parse_offer(&offer).unwrap();
    let n = sdp::negotiate(&o, &[Codec::Pcmu]).unwrap();
    let answer = sdp::build_answer(&o, &n, LOCAL, p.port(), 42, 1);
    // Before the answer: in the room, silent, no timeout (300 ms), not re-offerable.
    talk(&mut [&mut x], &[false], 25, || {});
    assert_eq!(e.poll_event(), None);
    assert_eq!(e.stats().legs, 2);
    assert!(matches!(
        e.update_leg(leg, &p.offer()),
        Err(MediaError::BadSdp(_))
    ));
    // Refused answers leave it waiting.
    let g722 = answer
        .replace("RTP/AVP 0 101", "RTP/AVP 9")
        .replace("a=rtpmap:0 PCMU/8000\r\n", "");
    assert_eq!(e.answer_leg(leg, &g722), Err(MediaError::NoCommonCodec));
    assert!(matches!(
        e.answer_leg(leg, "v=0\r\n"),
        Err(MediaError::BadSdp(_))
    ));
    let v6 = answer.replace("IN IP4 127.0.0.1", "IN IP6 ::1");
    assert!(matches!(e.answer_leg(leg, &v6), Err(MediaError::BadSdp(_))));
    assert_eq!(e.answer_leg(LegId(999), &answer), Err(MediaError::Closed));
    assert!(matches!(
        e.answer_leg(x.leg.unwrap(), &answer),
        Err(MediaError::BadSdp(_))
    ));
    // Answered.
    e.answer_leg(leg, &answer).unwrap();
    assert!(matches!(
        e.answer_leg(leg, &answer),
        Err(MediaError::BadSdp(_))
    ));
    assert_eq!(e.leg_codec(leg), Some(Codec::Pcmu));
    p.mcu = SocketAddr::new(LOCAL, port);
    p.leg = Some(leg);
    talk(&mut [&mut x, &mut p], &[false, false], 70, || {});
    assert_tones(
        "dialled phone",
        &p.client.heard,
        &[600.0],
        &[1500.0],
        20.0,
        1.0,
    );
    assert_tones("meeting", &x.client.heard, &[1500.0], &[600.0], 20.0, 1.0);
    assert!(
        p.headers.len() >= 60
            && p.headers
                .windows(2)
                .all(|w| w[1].0 == w[0].0.wrapping_add(1))
    );
    // Its key presses are reported (telephone-event 101 as answered).
    for i in 0..3u16 {
        let mut pkt = vec![0u8; 16];
        rtp::write_header(&mut pkt, i == 0, 101, 900 + i, 16000, 7);
        pkt[12..].copy_from_slice(&[11, if i == 2 { 0x8a } else { 0x0a }, 0, 160]);
        p.sock.send_to(&pkt, p.mcu).unwrap();
    }
    let mut seen = Vec::new();
    let got = talk_until(
        &e,
        &mut [&mut x, &mut p],
        &[false, false],
        Duration::from_secs(3),
        &mut seen,
        |ev| matches!(ev, MediaEvent::Dtmf { .. }),
    );
    assert_eq!(got, Some(MediaEvent::Dtmf { leg, digit: '#' }), "{seen:?}");
    // A call that is not answered: closed before the answer, its ports free again.
    let (leg2, offer2) = e.offer_leg(RoomId(1), LegMode::Lobby).unwrap();
    assert!(offer2.contains("o=confab "));
    let port2 = e.leg_port(leg2).unwrap();
    e.close_leg(leg2);
    assert_eq!(e.answer_leg(leg2, &answer), Err(MediaError::Closed));
    let deadline = Instant::now() + Duration::from_secs(3);
    while UdpSocket::bind((LOCAL, port2)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the unanswered leg's socket is still open"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(e.stats().legs, 2);
}
