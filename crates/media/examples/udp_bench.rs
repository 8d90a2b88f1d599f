//! The engine over loopback UDP, as a conference server runs it: K participants (one
//! socket each, every one sending a tone, as Janus AudioBridge's measurement has it) in
//! one large room or in rooms of five, one mixing thread; reports the mixing thread's
//! busy time per participant (receive, jitter, decode, mix, encode, send), late ticks
//! and the longest tick; and the mouth-to-ear latency the MCU adds (a probe pair in a
//! room of their own).
//!
//!     cargo run --release -p confab-media --example udp_bench -- [pcmu|opus] [participants] [room size] [seconds]

use confab_media::codec::{Decoder, Encoder, FRAME, MAX_ENCODED, MIX_RATE};
use confab_media::{rtp, sdp_offer, Codec, Engine, EngineConfig, LegMode, RoomId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
        port_min: 24000,
        port_max: 27999,
        threads: 1,
        max_legs: k + 2,
        rtp_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .expect("engine");
    let pt = codec.static_pt().unwrap_or(111);
    let mut parts = Vec::with_capacity(k);
    for i in 0..k {
        let (sock, to) = open(&engine, RoomId((i / room_size) as u64), codec);
        // Pre-encoded tone packets: the generator's cost is not the MCU's.
        parts.push((
            sock,
            to,
            make_packets(codec, Some(300.0 + (37 * i % 3000) as f64)),
        ));
    }
    // The latency probe, in a room of its own on the same thread: A sends 200 ms tone
    // bursts every 500 ms, B (on a thread of its own, blocking on its socket) notes when
    // the mix it is sent turns loud; mouth-to-ear through the MCU = that instant minus
    // the instant A sent the burst's first packet.
    let probe_room = RoomId(u64::MAX);
    let (a_sock, a_to) = open(&engine, probe_room, codec);
    let (b_sock, _) = open(&engine, probe_room, codec);
    b_sock.set_nonblocking(false).unwrap();
    b_sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut a_tone = make_packets(codec, Some(1000.0));
    let mut a_silence = make_packets(codec, None);
    let onset: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let listener = {
        let onset = onset.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut dec = Decoder::new(codec).unwrap();
            let mut pcm = [0i16; FRAME];
            let mut buf = [0u8; 2048];
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Ok(n) = b_sock.recv(&mut buf) else {
                    continue;
                };
                let Ok(p) = rtp::parse(&buf[..n]) else {
                    continue;
                };
                let now = Instant::now();
                dec.decode(p.payload, &mut pcm);
                let e: i64 =
                    pcm.iter().map(|&v| (v as i64) * (v as i64)).sum::<i64>() / FRAME as i64;
                if e > 500 * 500 {
                    if let Some(t0) = onset.lock().unwrap().take() {
                        lat.push(now.duration_since(t0));
                    }
                }
            }
            lat
        })
    };
    let warm = engine.stats();
    let cpu0 = mixer_cpu_ticks();
    let start = Instant::now();
    let ticks = secs * 50;
    let mut received = 0u64;
    let mut buf = [0u8; 2048];
    for t in 0..ticks as usize {
        for (i, (sock, to, packets)) in parts.iter_mut().enumerate() {
            let p = &mut packets[t % FRAMES];
            rtp::write_header(
                p,
                false,
                pt,
                t as u16,
                (t as u32).wrapping_mul(codec.ts_per_frame()),
                i as u32,
            );
            let _ = sock.send_to(p, *to);
            while sock.recv_from(&mut buf).is_ok() {
                received += 1;
            }
        }
        let burst = t % 25;
        let p = if burst < 10 {
            &mut a_tone[t % FRAMES]
        } else {
            &mut a_silence[t % FRAMES]
        };
        rtp::write_header(
            p,
            false,
            pt,
            t as u16,
            (t as u32).wrapping_mul(codec.ts_per_frame()),
            0xabc,
        );
        let _ = a_sock.send_to(p, a_to);
        if burst == 0 {
            *onset.lock().unwrap() = Some(Instant::now());
        }
        while a_sock.recv_from(&mut buf).is_ok() {}
        let due = start + Duration::from_millis(20 * (t as u64 + 1));
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let wall = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut lat = listener.join().unwrap();
    lat.sort();
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
    if !lat.is_empty() {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mean = lat.iter().map(|&d| ms(d)).sum::<f64>() / lat.len() as f64;
        println!(
            "  mouth-to-ear through the MCU ({} bursts): mean {:.1} ms, min {:.1}, median {:.1}, max {:.1}",
            lat.len(),
            mean,
            ms(lat[0]),
            ms(lat[lat.len() / 2]),
            ms(lat[lat.len() - 1])
        );
    }
}

fn open(engine: &Engine, room: RoomId, codec: Codec) -> (UdpSocket, SocketAddr) {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let sock = UdpSocket::bind((ip, 0)).unwrap();
    sock.set_nonblocking(true).unwrap();
    let offer = sdp_offer(ip, sock.local_addr().unwrap().port(), &[codec]);
    let (_, answer) = engine
        .open_leg(room, &offer, LegMode::Active)
        .expect("open_leg");
    let port: u16 = answer
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (sock, SocketAddr::new(ip, port))
}

fn make_packets(codec: Codec, freq: Option<f64>) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(codec).unwrap();
    let mut out = [0u8; MAX_ENCODED];
    (0..FRAMES)
        .map(|f| {
            let mut pcm = [0i16; FRAME];
            for (j, v) in pcm.iter_mut().enumerate() {
                let t = (f * FRAME + j) as f64 / MIX_RATE as f64;
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
