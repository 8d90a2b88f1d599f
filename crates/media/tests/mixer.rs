//! The mixer fed frame by frame: who hears what (FFT of what each leg is sent), and what
//! it costs (encodes per tick).

mod common;

use common::{assert_tones, tone_db, Client};
use confab_media::mixer::{LegConfig, LegId, LegMode, Room};
use confab_media::{rtp, Codec};

fn config(c: &Client, mode: LegMode, ssrc: u32) -> LegConfig {
    LegConfig {
        codec: c.codec,
        pt: c.pt,
        dtmf_pt: None,
        ssrc,
        mode,
        send: true,
        hear: true,
    }
}

/// Runs `ticks` ticks: every client sends one packet, then the room mixes; each client
/// takes what it was sent.
fn run(room: &mut Room, clients: &mut [Client], ticks: usize) {
    for _ in 0..ticks {
        for (i, c) in clients.iter_mut().enumerate() {
            let p = c.next_packet();
            room.push_rtp(i, &rtp::parse(&p).unwrap());
        }
        let mut sent: Vec<(usize, Vec<u8>)> = Vec::new();
        room.tick(|i, p| sent.push((i, p.to_vec())));
        for (i, p) in sent {
            clients[i].receive(&p);
        }
    }
}

fn room_of(clients: &[Client], modes: &[LegMode]) -> Room {
    let mut room = Room::new();
    for (i, c) in clients.iter().enumerate() {
        room.add_leg(LegId(i as u64 + 1), config(c, modes[i], 100 + i as u32))
            .unwrap();
    }
    room
}

const TONES: [f64; 3] = [600.0, 1000.0, 1500.0];

fn three_tones(codecs: [Codec; 3]) {
    let mut clients: Vec<Client> = codecs
        .iter()
        .zip(TONES)
        .map(|(&c, f)| Client::new(c, Some(f)))
        .collect();
    let mut room = room_of(&clients, &[LegMode::Active; 3]);
    run(&mut room, &mut clients, 80);
    for (i, c) in clients.iter().enumerate() {
        let others: Vec<f64> = TONES.iter().copied().filter(|&f| f != TONES[i]).collect();
        assert_tones(
            &format!("leg {i} ({:?})", c.codec),
            &c.heard,
            &others,
            &[TONES[i]],
            20.0,
            1.0,
        );
    }
    assert_eq!(room.stats.talkers, 3);
}

#[test]
fn three_g711_legs_hear_the_others_not_themselves() {
    three_tones([Codec::Pcmu, Codec::Pcmu, Codec::Pcmu]);
}

#[test]
fn three_opus_legs_hear_the_others_not_themselves() {
    three_tones([Codec::Opus, Codec::Opus, Codec::Opus]);
}

#[test]
fn opus_and_g711_mixed() {
    three_tones([Codec::Opus, Codec::Pcmu, Codec::Pcma]);
}

#[test]
fn lobby_leg_hears_only_the_lobby_tone_and_is_not_heard() {
    let mut clients: Vec<Client> = TONES
        .iter()
        .map(|&f| Client::new(Codec::Pcmu, Some(f)))
        .collect();
    clients.push(Client::new(Codec::Opus, Some(2200.0)));
    let mut room = room_of(
        &clients,
        &[
            LegMode::Active,
            LegMode::Active,
            LegMode::Active,
            LegMode::Lobby,
        ],
    );
    run(&mut room, &mut clients, 110);
    // The lobby leg: the 425 Hz beep, nothing of the room (2 s: one beep in it).
    let lobby = &clients[3].heard;
    let beep = tone_db(lobby, 425.0, 2.0);
    for f in TONES {
        let p = tone_db(lobby, f, 2.0);
        assert!(
            p < beep - 40.0,
            "lobby hears {f} Hz at {p:.1} dB (beep {beep:.1})"
        );
    }
    assert!(beep > tone_db(lobby, 3100.0, 2.0) + 30.0, "no beep");
    // The room does not hear the lobby leg's tone (nor the beep).
    for (i, c) in clients[..3].iter().enumerate() {
        let others: Vec<f64> = TONES.iter().copied().filter(|&f| f != TONES[i]).collect();
        assert_tones(
            &format!("leg {i}"),
            &c.heard,
            &others,
            &[TONES[i], 2200.0, 425.0],
            20.0,
            1.0,
        );
    }
}

#[test]
fn muted_leg_hears_but_is_not_heard() {
    let mut clients: Vec<Client> = TONES
        .iter()
        .map(|&f| Client::new(Codec::Pcma, Some(f)))
        .collect();
    let mut room = room_of(
        &clients,
        &[LegMode::Active, LegMode::Active, LegMode::Muted],
    );
    run(&mut room, &mut clients, 80);
    assert_tones(
        "leg 0",
        &clients[0].heard,
        &[1000.0],
        &[600.0, 1500.0],
        20.0,
        1.0,
    );
    assert_tones(
        "leg 1",
        &clients[1].heard,
        &[600.0],
        &[1000.0, 1500.0],
        20.0,
        1.0,
    );
    assert_tones(
        "muted leg",
        &clients[2].heard,
        &[600.0, 1000.0],
        &[1500.0],
        20.0,
        1.0,
    );
    // Unmuted, it is heard again.
    room.set_mode(2, LegMode::Active);
    run(&mut room, &mut clients, 60);
    assert_tones(
        "leg 0 after unmute",
        &clients[0].heard,
        &[1000.0, 1500.0],
        &[600.0],
        20.0,
        1.0,
    );
}

#[test]
fn held_leg_is_sent_nothing_and_not_heard() {
    let mut clients: Vec<Client> = TONES
        .iter()
        .map(|&f| Client::new(Codec::Pcmu, Some(f)))
        .collect();
    let mut room = room_of(&clients, &[LegMode::Active, LegMode::Active, LegMode::Held]);
    run(&mut room, &mut clients, 60);
    assert!(clients[2].heard.is_empty());
    assert_tones(
        "leg 0",
        &clients[0].heard,
        &[1000.0],
        &[600.0, 1500.0],
        20.0,
        1.0,
    );
}

#[test]
fn non_talkers_share_one_encoded_frame_per_codec() {
    // 2 talkers (one G.711, one Opus) and 18 silent listeners on two codecs.
    let mut clients = vec![
        Client::new(Codec::Pcmu, Some(600.0)),
        Client::new(Codec::Opus, Some(1000.0)),
    ];
    for i in 0..18 {
        clients.push(Client::new(
            if i % 2 == 0 { Codec::Pcmu } else { Codec::Opus },
            None,
        ));
    }
    let modes = vec![LegMode::Active; clients.len()];
    let mut room = room_of(&clients, &modes);
    run(&mut room, &mut clients, 30); // past prefill
    let before = room.stats.encodes;
    run(&mut room, &mut clients, 50);
    // Per tick: 2 own mixes + 1 shared PCMU + 1 shared Opus, whatever the room size.
    assert_eq!(room.stats.encodes - before, 50 * 4);
    assert_eq!(room.stats.talkers, 2);
    // The listeners on one codec got byte-identical frames.
    let last = |c: &Client| c.payloads.last().unwrap().clone();
    for i in (4..clients.len()).step_by(2) {
        assert_eq!(last(&clients[i]), last(&clients[2]));
        assert_eq!(last(&clients[i + 1]), last(&clients[3]));
    }
    // And they hear both talkers.
    assert_tones(
        "listener (PCMU)",
        &clients[2].heard,
        &[600.0, 1000.0],
        &[1500.0],
        20.0,
        1.0,
    );
    assert_tones(
        "listener (Opus)",
        &clients[3].heard,
        &[600.0, 1000.0],
        &[1500.0],
        20.0,
        1.0,
    );
}

// ----- dial-in: prompts, announcements, recording, moving --------------------------------

use confab_media::mixer::RoomEvent;
use confab_media::Clip;
use std::sync::Arc;

/// Like `run`, also collecting the room's events.
fn run_events(room: &mut Room, clients: &mut [Client], ticks: usize) -> Vec<RoomEvent> {
    let mut events = Vec::new();
    for _ in 0..ticks {
        run(room, clients, 1);
        room.take_events(|e| events.push(e));
    }
    events
}

/// Samples `from..to` seconds of what a client heard.
fn window(pcm: &[i16], from: f64, to: f64) -> &[i16] {
    &pcm[(from * 16000.0).round() as usize..(to * 16000.0).round() as usize]
}

#[test]
fn a_prompt_replaces_the_lobby_tone_then_the_tone_comes_back() {
    let mut clients = vec![
        Client::new(Codec::Pcmu, Some(600.0)),
        Client::new(Codec::Opus, None),
    ];
    let mut room = room_of(&clients, &[LegMode::Active, LegMode::Lobby]);
    let before = room.stats.encodes;
    assert!(room.play(1, Arc::new(Clip::tone(1000.0, 1500, 8000))));
    let events = run_events(&mut room, &mut clients, 70);
    // 1.5 s of prompt: done in the tick that sent its last frame (tick 75), not before.
    assert!(events.is_empty(), "{events:?}");
    // The lobby leg heard the prompt, no lobby tone, nothing of the room; it paid for its
    // own encode each tick (plus the shared PCMU and the talker's nothing: it is alone).
    let heard = window(&clients[1].heard, 0.2, 1.4);
    assert_tones(
        "prompted lobby leg",
        heard,
        &[1000.0],
        &[425.0, 600.0],
        30.0,
        1.2,
    );
    assert!(room.stats.encodes - before >= 70);
    assert_eq!(room.stats.prompt_frames, 70);
    let events = run_events(&mut room, &mut clients, 6);
    assert_eq!(events, vec![RoomEvent::PromptDone(LegId(2), 0)]);
    assert_eq!(room.prompts_queued(1), 0);
    // Then the beep again (2 s: one beep in it), and no more events.
    let events = run_events(&mut room, &mut clients, 110);
    assert!(events.is_empty());
    let lobby = &clients[1].heard;
    assert!(tone_db(lobby, 425.0, 2.0) > tone_db(lobby, 1000.0, 2.0) + 30.0);
    // The room never heard the prompt.
    assert!(
        tone_db(&clients[0].heard, 1000.0, 3.0) < tone_db(&clients[0].heard, 3100.0, 3.0) + 10.0
    );
}

#[test]
fn a_prompt_plays_over_the_mix_and_only_to_its_leg() {
    let mut clients: Vec<Client> = TONES
        .iter()
        .map(|&f| Client::new(Codec::Pcma, Some(f)))
        .collect();
    let mut room = room_of(
        &clients,
        &[LegMode::Active, LegMode::Active, LegMode::Muted],
    );
    run(&mut room, &mut clients, 10);
    // Two clips one after the other, gapless: 2200 Hz then 2600 Hz, 1 s each.
    room.play(1, Arc::new(Clip::tone(2200.0, 1000, 6000)));
    room.play(1, Arc::new(Clip::tone(2600.0, 1000, 6000)));
    room.play(2, Arc::new(Clip::tone(2600.0, 1000, 6000)));
    assert_eq!(room.prompts_queued(1), 2);
    let events = run_events(&mut room, &mut clients, 49);
    assert!(events.is_empty());
    // The talker: the others' mix minus itself, and its prompt over it.
    let n = clients[1].heard.len();
    let first = &clients[1].heard[n - 16000 + 320..n - 800];
    assert_tones(
        "prompted talker",
        first,
        &[600.0, 2200.0],
        &[1000.0, 1500.0, 2600.0],
        20.0,
        0.9,
    );
    let events = run_events(&mut room, &mut clients, 1);
    // The muted leg's single clip ended at tick 50, the talker's pair at tick 100.
    assert_eq!(events, vec![RoomEvent::PromptDone(LegId(3), 0)]);
    let events = run_events(&mut room, &mut clients, 49);
    assert!(events.is_empty());
    let events = run_events(&mut room, &mut clients, 1);
    assert_eq!(events, vec![RoomEvent::PromptDone(LegId(2), 0)]);
    let n = clients[1].heard.len();
    let second = &clients[1].heard[n - 16000 + 800..n - 320];
    assert_tones(
        "second prompt",
        second,
        &[600.0, 2600.0],
        &[2200.0, 1000.0],
        20.0,
        0.9,
    );
    // The muted listener heard the talkers and its own prompt; the others heard no prompt.
    let m = window(&clients[2].heard, 0.4, 1.1);
    assert_tones(
        "prompted muted leg",
        m,
        &[600.0, 1000.0, 2600.0],
        &[1500.0, 2200.0],
        20.0,
        0.7,
    );
    assert_tones(
        "leg 0",
        &clients[0].heard,
        &[1000.0],
        &[2200.0, 2600.0, 1500.0],
        20.0,
        2.0,
    );
}

#[test]
fn prompts_are_bounded_stopped_and_play_out_while_held() {
    let mut clients = vec![
        Client::new(Codec::Pcmu, None),
        Client::new(Codec::Pcmu, None),
    ];
    let mut room = room_of(&clients, &[LegMode::Active, LegMode::Held]);
    let clip = Arc::new(Clip::tone(1000.0, 100, 6000));
    for _ in 0..32 {
        assert!(room.play(0, clip.clone()));
    }
    assert!(!room.play(0, clip.clone()), "a 33rd prompt was queued");
    assert_eq!(room.stop_playing(0), Some(0));
    assert_eq!(room.stop_playing(0), None);
    // Tags tell which queue ended: the stopped one's last, or the last of what followed.
    assert!(room.play_tagged(0, clip.clone(), 7));
    assert!(room.play_tagged(0, clip.clone(), 8));
    assert_eq!(room.stop_playing(0), Some(8));
    // A held leg hears nothing, but its prompt ends in time (100 ms: 5 ticks).
    room.play_tagged(1, clip.clone(), 4);
    let events = run_events(&mut room, &mut clients, 4);
    assert!(events.is_empty());
    let events = run_events(&mut room, &mut clients, 1);
    assert_eq!(events, vec![RoomEvent::PromptDone(LegId(2), 4)]);
    // the end of a queue reports its last clip's tag
    room.play_tagged(1, clip.clone(), 5);
    room.play_tagged(1, clip.clone(), 6);
    let events = run_events(&mut room, &mut clients, 10);
    assert_eq!(events, vec![RoomEvent::PromptDone(LegId(2), 6)]);
    assert!(clients[1].heard.is_empty());
    // An empty clip is done at the next tick.
    room.play(0, Arc::new(Clip::from_pcm16k(Vec::new())));
    assert_eq!(
        run_events(&mut room, &mut clients, 1),
        vec![RoomEvent::PromptDone(LegId(1), 0)]
    );
}

#[test]
fn an_announcement_is_heard_by_active_and_muted_legs_not_lobby_or_held() {
    let mut clients = vec![
        Client::new(Codec::Pcmu, Some(600.0)),  // a talker
        Client::new(Codec::Opus, None),         // a listener
        Client::new(Codec::Pcma, Some(1000.0)), // muted
        Client::new(Codec::Pcmu, Some(1500.0)), // lobby
        Client::new(Codec::Pcmu, None),         // held
    ];
    let mut room = room_of(
        &clients,
        &[
            LegMode::Active,
            LegMode::Active,
            LegMode::Muted,
            LegMode::Lobby,
            LegMode::Held,
        ],
    );
    run(&mut room, &mut clients, 10);
    let clip = Arc::new(Clip::tone(2200.0, 2000, 6000));
    for _ in 0..8 {
        assert!(room.announce(clip.clone()));
    }
    assert!(
        !room.announce(clip.clone()),
        "a 9th announcement was queued"
    );
    let before = room.stats.encodes;
    run(&mut room, &mut clients, 90);
    assert_eq!(room.stats.announcement_frames, 90);
    assert_tones(
        "talker",
        &clients[0].heard,
        &[2200.0],
        &[600.0, 1000.0, 1500.0],
        20.0,
        1.0,
    );
    assert_tones(
        "listener",
        &clients[1].heard,
        &[600.0, 2200.0],
        &[1000.0, 1500.0],
        20.0,
        1.0,
    );
    assert_tones(
        "muted",
        &clients[2].heard,
        &[600.0, 2200.0],
        &[1000.0, 1500.0],
        20.0,
        1.0,
    );
    let lobby = &clients[3].heard;
    assert!(tone_db(lobby, 2200.0, 2.0) < tone_db(lobby, 425.0, 2.0) - 40.0);
    assert!(clients[4].heard.is_empty());
    // Still the talker's own encode, one shared frame per listening codec (Opus, PCMA)
    // and the lobby's PCMU frame: the announcement costs no encode of its own.
    assert_eq!(room.stats.encodes - before, 90 * 4);
}

#[test]
fn a_recording_captures_the_legs_decoded_speech_in_any_mode() {
    // The recorded leg is in the lobby (not heard by anyone) and hears a prompt.
    let mut clients = vec![
        Client::new(Codec::Opus, Some(1000.0)),
        Client::new(Codec::Pcmu, Some(600.0)),
    ];
    let mut room = room_of(&clients, &[LegMode::Lobby, LegMode::Active]);
    room.play(0, Arc::new(Clip::tone(2200.0, 3000, 6000)));
    assert_eq!(room.record(0, Vec::with_capacity(16000), 16000), None);
    assert!(room.is_recording(0));
    let events = run_events(&mut room, &mut clients, 49);
    assert!(events.is_empty());
    let events = run_events(&mut room, &mut clients, 1);
    let clip = match &events[..] {
        [RoomEvent::Recorded(LegId(1), clip)] => clip.clone(),
        e => panic!("{e:?}"),
    };
    assert!(!room.is_recording(0));
    assert_eq!(clip.pcm().len(), 16000);
    // What it said, not what it heard, nor the room; after the jitter buffer's prefill.
    assert_tones(
        "recording",
        &clip.pcm()[1600..],
        &[1000.0],
        &[2200.0, 600.0, 425.0],
        30.0,
        0.8,
    );
    // Not heard by the room.
    assert!(
        tone_db(&clients[1].heard, 1000.0, 0.8) < tone_db(&clients[1].heard, 3100.0, 0.8) + 10.0
    );
    // Stopped early: what it holds; a new recording replaces a running one.
    room.record(1, Vec::with_capacity(160_000), 1_000_000);
    run(&mut room, &mut clients, 10);
    let old = room
        .record(1, Vec::new(), 320)
        .expect("the running recording");
    assert_eq!(old.pcm().len(), 10 * 320);
    assert_tones("early", old.pcm(), &[600.0], &[1000.0], 20.0, 0.1);
    let events = run_events(&mut room, &mut clients, 1);
    assert!(matches!(&events[..], [RoomEvent::Recorded(LegId(2), c)] if c.pcm().len() == 320));
    assert_eq!(room.stop_recording(1), None);
}

#[test]
fn a_detached_leg_keeps_its_state_in_another_room() {
    let mut a = vec![
        Client::new(Codec::Pcmu, Some(600.0)),
        Client::new(Codec::Pcmu, Some(1500.0)),
    ];
    let mut b = vec![Client::new(Codec::Pcmu, Some(1000.0))];
    let mut ra = room_of(&a, &[LegMode::Active, LegMode::Active]);
    let mut rb = Room::new();
    rb.add_leg(LegId(9), config(&b[0], LegMode::Active, 99))
        .unwrap();
    run(&mut ra, &mut a, 20);
    ra.play(1, Arc::new(Clip::tone(2200.0, 1000, 6000)));
    run(&mut ra, &mut a, 5);
    let mut seqs = Vec::new();
    ra.tick(|i, p| {
        if i == 1 {
            let r = rtp::parse(p).unwrap();
            seqs.push((r.seq, r.ts, r.ssrc));
        }
    });
    let moved = ra.detach(1);
    assert_eq!(moved.id(), LegId(2));
    let idx = rb.attach(moved, LegMode::Muted, 2);
    assert_eq!(
        (rb.leg_id(idx), rb.mode(idx), rb.prompts_queued(idx)),
        (LegId(2), LegMode::Muted, 1)
    );
    assert_eq!(rb.counters(idx).tx_packets, 26);
    rb.tick(|i, p| {
        if i == idx {
            let r = rtp::parse(p).unwrap();
            seqs.push((r.seq, r.ts, r.ssrc));
        }
    });
    assert_eq!(seqs[1].0, seqs[0].0.wrapping_add(1));
    assert_eq!(seqs[1].1, seqs[0].1.wrapping_add(3 * 160)); // two ticks skipped
    assert_eq!(seqs[1].2, seqs[0].2);
    // In its new room it hears 1000 Hz (and its prompt), and is not heard (muted).
    b.push(a.pop().unwrap());
    run(&mut rb, &mut b, 40);
    // (It heard 25 ticks in the first room, then 40 here.)
    assert_eq!(b[1].heard.len(), 65 * 320);
    assert_tones(
        "moved",
        window(&b[1].heard, 0.8, 1.2),
        &[1000.0, 2200.0],
        &[600.0],
        20.0,
        0.4,
    );
    assert!(tone_db(&b[0].heard, 1500.0, 0.5) < tone_db(&b[0].heard, 3100.0, 0.5) + 10.0);
}
