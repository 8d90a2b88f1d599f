//! The engine over loopback UDP, as a conference server runs it: K participants (one
//! socket each, every one sending a tone, as Janus AudioBridge's measurement has it) in
//! one large room or in rooms of five, one mixing thread; reports the mixing thread's
//! busy time per participant (receive, jitter, decode, mix, encode, send), late ticks
//! and the longest tick.
//!
//!     cargo run --release -p confab-media --example udp_bench -- [pcmu|opus] [participants] [room size] [seconds]

use confab_media::codec::{Encoder, FRAME, MAX_ENCODED, MIX_RATE};
use confab_media::{rtp, sdp_offer, Codec, Engine, EngineConfig, LegMode, RoomId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const FRAMES: usize = 50;

/// CPU time (user + system, in clock ticks of 10 ms) of the mixing threads, from /proc.
fn mixer_cpu_ticks() -> u64 {
    let mut total = 0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("confab-mix") {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
            if let Some(rest) = stat.rsplit_once(')').map(|x| x.1) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let codec = match args.get(1).map(String::as_str) {
        Some("opus") => Codec::Opus,
        _ => Codec::Pcmu,
    };
    let k: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let room_size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(k);
    let secs: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(5);
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let engine = Engine::start(EngineConfig {
        bind_ip: ip,
        port_min: 46000,
        port_max: 49999,
        threads: 1,
        max_legs: k,
        rtp_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .expect("engine");
    let pt = codec.static_pt().unwrap_or(111);
    let mut parts = Vec::with_capacity(k);
    for i in 0..k {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_nonblocking(true).unwrap();
        let offer = sdp_offer(ip, sock.local_addr().unwrap().port(), &[codec]);
        let (_, answer) = engine.open_leg(RoomId((i / room_size) as u64), &offer, LegMode::Active).expect("open_leg");
        let port: u16 = answer.lines().find(|l| l.starts_with("m=audio")).unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        // Pre-encoded tone packets: the generator's cost is not the MCU's.
        let mut enc = Encoder::new(codec).unwrap();
        let freq = 300.0 + (37 * i % 3000) as f64;
        let mut out = [0u8; MAX_ENCODED];
        let packets: Vec<Vec<u8>> = (0..FRAMES)
            .map(|f| {
                let mut pcm = [0i16; FRAME];
                for (j, v) in pcm.iter_mut().enumerate() {
                    let t = (f * FRAME + j) as f64 / MIX_RATE as f64;
                    *v = ((2.0 * std::f64::consts::PI * freq * t).sin() * 3000.0) as i16;
                }
                let n = enc.encode(&pcm, &mut out);
                let mut p = vec![0u8; 12 + n];
                p[12..].copy_from_slice(&out[..n]);
                p
            })
            .collect();
        parts.push((sock, SocketAddr::new(ip, port), packets));
    }
    let warm = engine.stats();
    let cpu0 = mixer_cpu_ticks();
    let start = Instant::now();
    let ticks = secs * 50;
    let mut received = 0u64;
    let mut buf = [0u8; 2048];
    for t in 0..ticks as usize {
        for (i, (sock, to, packets)) in parts.iter_mut().enumerate() {
            let p = &mut packets[t % FRAMES];
            rtp::write_header(p, false, pt, t as u16, (t as u32).wrapping_mul(codec.ts_per_frame()), i as u32);
            let _ = sock.send_to(p, *to);
            while sock.recv_from(&mut buf).is_ok() {
                received += 1;
            }
        }
        let due = start + Duration::from_millis(20 * (t as u64 + 1));
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let wall = start.elapsed();
    let cpu = (mixer_cpu_ticks() - cpu0) as f64 * 10_000.0; // µs
    let s = engine.stats();
    let busy = (s.busy_us - warm.busy_us) as f64;
    let pct = cpu / wall.as_micros() as f64 * 100.0;
    let busy_pct = busy / wall.as_micros() as f64 * 100.0;
    println!(
        "{} participants={k} rooms of {room_size}: mixing thread CPU {:.1}% of a core = {:.3}% per participant ({:.0} participants/core; tick wall time {:.1}%); ticks {} late {} max tick {} µs; rx {} tx {} dropped {} (source {}, range {}, malformed {}, oversize {}); generator got {received}",
        codec.name(),
        pct,
        pct / k as f64,
        100.0 / (pct / k as f64),
        busy_pct,
        s.ticks - warm.ticks,
        s.late_ticks - warm.late_ticks,
        s.max_tick_us,
        s.rx_packets - warm.rx_packets,
        s.tx_packets - warm.tx_packets,
        s.dropped_packets,
        s.dropped_wrong_source,
        s.dropped_port_range,
        s.dropped_malformed,
        s.dropped_oversize,
    );
}
