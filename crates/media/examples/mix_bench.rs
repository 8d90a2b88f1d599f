//! The mixer's cost: ns per participant per 20 ms tick, for G.711 and Opus rooms of 5
//! and of 200 with N talkers (every talker sending a tone, as Janus AudioBridge's
//! measurement has it), receive path (RTP parse, jitter buffer) included, no sockets.
//! Also Opus encode cost by complexity.
//!
//!     cargo run --release -p confab-media --example mix_bench

use confab_media::codec::{Encoder, FRAME, MAX_ENCODED, MIX_RATE};
use confab_media::mixer::{LegConfig, LegId, LegMode, Room};
use confab_media::{rtp, Codec};
use std::hint::black_box;
use std::time::Instant;

const FRAMES: usize = 50;

/// Pre-encoded packets for one participant (a tone, or silence).
fn packets(codec: Codec, freq: Option<f64>) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(codec).unwrap();
    let mut out = [0u8; MAX_ENCODED];
    (0..FRAMES)
        .map(|f| {
            let mut pcm = [0i16; FRAME];
            for (i, v) in pcm.iter_mut().enumerate() {
                let t = (f * FRAME + i) as f64 / MIX_RATE as f64;
                *v = freq.map_or(0, |fr| {
                    ((2.0 * std::f64::consts::PI * fr * t).sin() * 3000.0) as i16
                });
            }
            let n = enc.encode(&pcm, &mut out);
            let mut p = vec![0u8; 12 + n];
            p[12..].copy_from_slice(&out[..n]);
            p
        })
        .collect()
}

fn bench(codec: Codec, legs: usize, talkers: usize, ticks: usize) -> (f64, f64) {
    let pt = codec.static_pt().unwrap_or(111);
    let mut room = Room::new();
    let mut streams = Vec::new();
    for i in 0..legs {
        let cfg = LegConfig {
            codec,
            pt,
            dtmf_pt: None,
            ssrc: i as u32,
            mode: LegMode::Active,
            send: true,
            hear: true,
        };
        room.add_leg(LegId(i as u64), cfg).unwrap();
        let freq = (i < talkers).then(|| 300.0 + (37 * i % 3000) as f64);
        streams.push(packets(codec, freq));
    }
    let step = codec.ts_per_frame();
    let mut bytes = 0usize;
    let mut run = |room: &mut Room, from: usize, n: usize| {
        for t in from..from + n {
            for (i, s) in streams.iter_mut().enumerate() {
                let p = &mut s[t % FRAMES];
                rtp::write_header(
                    p,
                    false,
                    pt,
                    t as u16,
                    (t as u32).wrapping_mul(step),
                    i as u32,
                );
                let r = rtp::parse(p).unwrap();
                room.push_rtp(i, &r);
            }
            room.tick(|_, p| bytes += black_box(p).len());
        }
    };
    run(&mut room, 0, 20); // warm up, past the jitter buffer's prefill
    let enc0 = room.stats.encodes;
    // The best of 3 runs: the machine is shared.
    let mut best = f64::INFINITY;
    for k in 0..3 {
        let start = Instant::now();
        run(&mut room, 20 + k * ticks, ticks);
        best = best.min(start.elapsed().as_nanos() as f64);
    }
    black_box(bytes);
    let per = best / ticks as f64 / legs as f64;
    let encodes = (room.stats.encodes - enc0) as f64 / (3 * ticks) as f64;
    (per, encodes)
}

fn main() {
    println!("codec  legs  talkers  ns/participant/tick  %core/participant  participants/core  encodes/tick");
    for codec in [Codec::Pcmu, Codec::Opus] {
        for (legs, talkers) in [(5, 5), (5, 1), (200, 200), (200, 3), (200, 0)] {
            let ticks = if legs == 200 { 100 } else { 2000 };
            let (ns, enc) = bench(codec, legs, talkers, ticks);
            let pct = ns / 20_000_000.0 * 100.0;
            println!(
                "{:<6} {:>4} {:>8} {:>20.0} {:>18.3} {:>18.0} {:>13.1}",
                codec.name(),
                legs,
                talkers,
                ns,
                pct,
                100.0 / pct,
                enc
            );
        }
    }
    println!();
    println!("Opus encode, 20 ms of a tone at 16 kHz, by complexity:");
    let pcm: Vec<[i16; FRAME]> = (0..FRAMES)
        .map(|f| {
            let mut x = [0i16; FRAME];
            for (i, v) in x.iter_mut().enumerate() {
                let t = (f * FRAME + i) as f64 / MIX_RATE as f64;
                *v = ((2.0 * std::f64::consts::PI * 440.0 * t).sin() * 3000.0) as i16;
            }
            x
        })
        .collect();
    for c in [0, 1, 3, 5, 8, 10] {
        let mut e = Encoder::opus(c).unwrap();
        let mut out = [0u8; MAX_ENCODED];
        let n = 1000;
        // The best of 3 runs: the machine is shared.
        let best = (0..3)
            .map(|_| {
                let start = Instant::now();
                for i in 0..n {
                    black_box(e.encode(&pcm[i % FRAMES], &mut out));
                }
                start.elapsed().as_nanos() as f64 / n as f64 / 1000.0
            })
            .fold(f64::INFINITY, f64::min);
        println!("  complexity {c:>2}: {best:>6.1} µs/frame");
    }
}
