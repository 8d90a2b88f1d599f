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
