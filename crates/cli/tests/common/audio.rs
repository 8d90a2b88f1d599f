//! Audio for the end-to-end tests (`#[path]`-included, like console.rs): G.711 µ-law, tone
//! and speech measures (Goertzel, band energy by FFT, RMS), an RTP sender that speaks PCMU
//! tones, silence and RFC 4733 telephone-events on a UDP socket, and a receiver that
//! collects the PCMU a socket is sent, each with a deadline.
//!
//! The measures take any samples that convert to `f64` (`i16` as decoded, or `f64`).

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// G.711 µ-law encoding of a 16-bit sample (the reference algorithm: bias 0x84, clip 32635).
pub fn ulaw_encode(x: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut v = x as i32;
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = (v + BIAS).min(32635 + BIAS);
    let mut exp = 7;
    while exp > 0 && v & (0x4000 >> (7 - exp)) == 0 {
        exp -= 1;
    }
    let mant = (v >> (exp + 3)) & 0x0f;
    !(sign | (exp << 4) | mant) as u8
}

/// G.711 µ-law decoding to a 16-bit sample.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exp = (u >> 4) & 7;
    let mant = u & 0x0f;
    let v = (((mant as i32) << 3) + 0x84) << exp;
    (if sign != 0 { 0x84 - v } else { v - 0x84 }) as i16
}

/// The power of `hz` in `samples` (at `rate` Hz) by the Goertzel algorithm, divided by the
/// squared length: a sine of amplitude A over whole periods gives A²/4.
pub fn goertzel<T: Copy + Into<f64>>(samples: &[T], rate: f64, hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in samples {
        let s = v.into() + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (samples.len() as f64).powi(2)
}

/// The share of the energy of `samples` (at `rate` Hz) between `lo` and `hi` Hz, by an FFT
/// of the whole signal (DC excluded); 0 for silence.
pub fn band_energy_ratio<T: Copy + Into<f64>>(samples: &[T], rate: f64, lo: f64, hi: f64) -> f64 {
    use rustfft::{num_complex::Complex, FftPlanner};
    if samples.len() < 2 {
        return 0.0;
    }
    // Zero-padded to a power of two: a fast plan for any length.
    let n = samples.len().next_power_of_two();
    let mut buf: Vec<Complex<f64>> = samples
        .iter()
        .map(|&s| Complex::new(s.into(), 0.0))
        .collect();
    buf.resize(n, Complex::new(0.0, 0.0));
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let (mut band, mut total) = (0.0, 0.0);
    for (i, c) in buf.iter().enumerate().take(n / 2 + 1).skip(1) {
        let hz = i as f64 * rate / n as f64;
        let e = c.norm_sqr();
        total += e;
        if hz >= lo && hz <= hi {
            band += e;
        }
    }
    if total > 0.0 {
        band / total
    } else {
        0.0
    }
}

/// Root mean square (0 for no samples).
pub fn rms<T: Copy + Into<f64>>(samples: &[T]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| s.into().powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// The RFC 4733 event code of a keypad key: 0-9, `*` 10, `#` 11, A-D 12-15.
pub fn dtmf_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// An RTP stream from a UDP socket (a clone of the caller's, so the caller keeps using
/// it): 20 ms PCMU frames at 8 kHz with continuous sequence numbers, timestamps and tone
/// phase, the marker bit on the first packet, and RFC 4733 key presses in between.
pub struct RtpSender {
    sock: UdpSocket,
    dest: SocketAddr,
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    phase: f64,
    first: bool,
    pkt: Vec<u8>,
}

impl RtpSender {
    /// A stream to `dest` with payload type `pt` (0 for PCMU) and `ssrc`.
    pub fn new(sock: &UdpSocket, dest: SocketAddr, pt: u8, ssrc: u32) -> RtpSender {
        RtpSender {
            sock: sock.try_clone().expect("clone the RTP socket"),
            dest,
            pt,
            ssrc,
            seq: (ssrc as u16).wrapping_mul(7),
            ts: ssrc.wrapping_mul(13),
            phase: 0.0,
            first: true,
            pkt: Vec::with_capacity(12 + FRAME),
        }
    }

    /// The next packet's sequence number and timestamp.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    pub fn ts(&self) -> u32 {
        self.ts
    }

    /// Where the stream goes (a re-INVITE's answer may move it).
    pub fn set_dest(&mut self, dest: SocketAddr) {
        self.dest = dest;
    }

    fn header(&mut self, pt: u8, marker: bool, ts: u32) {
        self.pkt.clear();
        self.pkt.push(0x80);
        self.pkt.push(pt | if marker { 0x80 } else { 0 });
        self.pkt.extend_from_slice(&self.seq.to_be_bytes());
        self.pkt.extend_from_slice(&ts.to_be_bytes());
        self.pkt.extend_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
    }

    fn send(&self) {
        self.sock.send_to(&self.pkt, self.dest).expect("send RTP");
    }

    /// One 20 ms frame of 160 samples (PCMU-encoded).
    pub fn send_pcm_frame(&mut self, pcm: &[i16; FRAME]) {
        let (first, ts) = (self.first, self.ts);
        self.header(self.pt, first, ts);
        self.pkt.extend(pcm.iter().map(|&s| ulaw_encode(s)));
        self.send();
        self.first = false;
        self.ts = self.ts.wrapping_add(FRAME as u32);
    }

    /// One 20 ms frame of a sine of `hz` and amplitude `amp` (of 32767), the phase carried
    /// on from the previous frame.
    pub fn send_tone_frame(&mut self, hz: f64, amp: f64) {
        let step = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let mut pcm = [0i16; FRAME];
        for s in &mut pcm {
            *s = (self.phase.sin() * amp).round().clamp(-32768.0, 32767.0) as i16;
            self.phase = (self.phase + step) % (2.0 * std::f64::consts::PI);
        }
        self.send_pcm_frame(&pcm);
    }

    /// One 20 ms frame of silence.
    pub fn send_silence_frame(&mut self) {
        self.send_pcm_frame(&[0; FRAME]);
    }

    /// One key press as RFC 4733 telephone-events with payload type `pt` (101 usually),
    /// paced in real time (20 ms a packet, 140 ms in all): four packets of growing
    /// duration (160 to 640, the first with the marker bit), then the end packet (duration
    /// 800, volume 10, the E bit) sent three times, all with the timestamp of the event's
    /// start; the audio timestamp then moves on by the 7 packet intervals. Panics on a key
    /// that is not a DTMF key.
    pub fn send_dtmf(&mut self, digit: char, pt: u8) {
        let event = dtmf_event(digit).unwrap_or_else(|| panic!("not a DTMF key: {digit:?}"));
        let start = self.ts;
        let mut durations = [160u16, 320, 480, 640, 800, 800, 800]
            .into_iter()
            .enumerate();
        let t0 = Instant::now();
        for (i, d) in &mut durations {
            if let Some(w) =
                (t0 + Duration::from_millis(20 * i as u64)).checked_duration_since(Instant::now())
            {
                std::thread::sleep(w);
            }
            let end = i >= 4;
            self.header(pt, i == 0, start);
            self.pkt.push(event);
            self.pkt.push(if end { 0x80 } else { 0 } | 10);
            self.pkt.extend_from_slice(&d.to_be_bytes());
            self.send();
        }
        self.ts = start.wrapping_add(7 * FRAME as u32);
        self.first = false;
    }

    /// Each key of `digits` by [`RtpSender::send_dtmf`], with 60 ms of silence after each.
    pub fn send_dtmf_string(&mut self, digits: &str, pt: u8) {
        for d in digits.chars() {
            self.send_dtmf(d, pt);
            let t0 = Instant::now();
            for i in 1..=3u64 {
                if let Some(w) =
                    (t0 + Duration::from_millis(20 * i)).checked_duration_since(Instant::now())
                {
                    std::thread::sleep(w);
                }
                self.send_silence_frame();
            }
        }
    }
}

/// An RTP packet's payload type and payload, or None if it is not RTP version 2 or does
/// not add up (CSRCs, extension, padding).
pub fn rtp_payload(pkt: &[u8]) -> Option<(u8, &[u8])> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let cc = (pkt[0] & 0x0f) as usize;
    let mut at = 12 + 4 * cc;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(at + 2..at + 4)?;
        at += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        end = end.checked_sub(*pkt.last()? as usize)?;
    }
    if at > end {
        return None;
    }
    Some((pkt[1] & 0x7f, &pkt[at..end]))
}

/// What a UDP socket is sent, as decoded PCMU (payload type 0; other packets are counted
/// and skipped). Receiving puts the socket (shared with the caller's, a clone) in blocking
/// mode with short read timeouts.
pub struct RtpReceiver {
    sock: UdpSocket,
    buf: Vec<u8>,
    /// Packets that were not PCMU (telephone-events, comfort noise, …), not RTP included.
    pub other: usize,
    /// PCMU packets received.
    pub packets: usize,
}

impl RtpReceiver {
    pub fn new(sock: &UdpSocket) -> RtpReceiver {
        RtpReceiver {
            sock: sock.try_clone().expect("clone the RTP socket"),
            buf: vec![0; 2048],
            other: 0,
            packets: 0,
        }
    }

    /// One packet's PCMU samples appended to `out`, waiting at most until `deadline`;
    /// false when the deadline passed.
    fn recv_into(&mut self, deadline: Instant, out: &mut Vec<i16>) -> bool {
        loop {
            let left = match deadline.checked_duration_since(Instant::now()) {
                Some(l) if !l.is_zero() => l,
                _ => return false,
            };
            self.sock.set_nonblocking(false).expect("blocking");
            self.sock
                .set_read_timeout(Some(left.min(Duration::from_millis(50))))
                .expect("read timeout");
            match self.sock.recv_from(&mut self.buf) {
                Ok((n, _)) => match rtp_payload(&self.buf[..n]) {
                    Some((0, payload)) => {
                        self.packets += 1;
                        out.extend(payload.iter().map(|&b| ulaw_decode(b)));
                        return true;
                    }
                    _ => self.other += 1,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("RTP receive: {e}"),
            }
        }
    }

    /// Discards what has already arrived; the number of datagrams.
    pub fn drain(&mut self) -> usize {
        self.sock.set_nonblocking(true).expect("nonblocking");
        let mut n = 0;
        while n < 100_000 && self.sock.recv_from(&mut self.buf).is_ok() {
            n += 1;
        }
        self.sock.set_nonblocking(false).expect("blocking");
        n
    }

    /// `ms` of received audio (8 samples a millisecond), or less if `within` runs out first.
    pub fn collect_pcmu(&mut self, ms: u32, within: Duration) -> Vec<i16> {
        let want = ms as usize * 8;
        let deadline = Instant::now() + within;
        let mut out = Vec::with_capacity(want + FRAME);
        while out.len() < want && self.recv_into(deadline, &mut out) {}
        out
    }

    /// An utterance: waits (at most `within` in all) for a 20 ms frame louder than
    /// `min_rms`, then records until `quiet_ms` of frames at most that loud follow, and
    /// returns what was recorded from the first loud frame (the quiet tail included); empty
    /// if nothing loud came.
    pub fn record_utterance(&mut self, min_rms: f64, quiet_ms: u32, within: Duration) -> Vec<i16> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        let mut frame = Vec::with_capacity(FRAME);
        let mut quiet = 0usize;
        let mut started = false;
        loop {
            frame.clear();
            if !self.recv_into(deadline, &mut frame) {
                return out;
            }
            let loud = rms(&frame) > min_rms;
            if !started && !loud {
                continue;
            }
            started = true;
            out.extend_from_slice(&frame);
            quiet = if loud { 0 } else { quiet + frame.len() };
            if quiet >= quiet_ms as usize * 8 {
                return out;
            }
        }
    }
}

/// `ms` of the PCMU `sock` receives, or less by the deadline (see [`RtpReceiver`]).
pub fn collect_pcmu(sock: &UdpSocket, ms: u32, within: Duration) -> Vec<i16> {
    RtpReceiver::new(sock).collect_pcmu(ms, within)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: f64, n: usize, amp: f64) -> Vec<f64> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * hz * i as f64 / rate).sin() * amp)
            .collect()
    }

    #[test]
    fn audio_ulaw_round_trip_and_measures() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        for x in (-32768i32..=32767).step_by(7) {
            let y = ulaw_decode(ulaw_encode(x as i16)) as i32;
            let err = (x.clamp(-32124, 32124) - y).abs();
            assert!(err <= (x.abs() / 16).max(8) + 1, "{x} -> {y}");
        }
        let t = sine(1000.0, 8000.0, 8000, 6000.0);
        let p = goertzel(&t, 8000.0, 1000.0);
        assert!((p - 6000.0f64.powi(2) / 4.0).abs() < 1e4, "{p}");
        assert!(goertzel(&t, 8000.0, 1300.0) < 1.0);
        assert!((rms(&t) - 6000.0 / 2f64.sqrt()).abs() < 1.0);
        assert!(band_energy_ratio(&t, 8000.0, 300.0, 3400.0) > 0.999);
        assert!(band_energy_ratio(&t, 8000.0, 1500.0, 4000.0) < 0.001);
        let pcm: Vec<i16> = t.iter().map(|&v| v as i16).collect();
        assert!((rms(&pcm) - rms(&t)).abs() < 1.0);
        assert_eq!(rms::<i16>(&[]), 0.0);
        assert_eq!(band_energy_ratio(&[0i16; 100], 8000.0, 0.0, 4000.0), 0.0);
        assert_eq!(dtmf_event('#'), Some(11));
        assert_eq!(dtmf_event('x'), None);
    }

    #[test]
    fn audio_rtp_sender_and_receiver_over_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut tx = RtpSender::new(&a, b.local_addr().unwrap(), 0, 0x1234_5678);
        let mut rx = RtpReceiver::new(&b);
        let (seq0, ts0) = (tx.seq(), tx.ts());
        for _ in 0..3 {
            tx.send_tone_frame(1000.0, 8000.0);
        }
        tx.send_dtmf('5', 101);
        tx.send_silence_frame();
        let mut pkts = Vec::new();
        let mut buf = [0u8; 512];
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for _ in 0..11 {
            let (n, _) = b.recv_from(&mut buf).unwrap();
            pkts.push(buf[..n].to_vec());
        }
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!(seq(p), seq0.wrapping_add(i as u16));
            assert_eq!(&p[8..12], &0x1234_5678u32.to_be_bytes());
        }
        // Audio: marker on the first only, 160 samples, the timestamp 160 apart.
        assert_eq!(pkts[0][1], 0x80);
        assert_eq!(pkts[1][1], 0x00);
        assert_eq!(ts(&pkts[2]), ts0.wrapping_add(320));
        assert_eq!(pkts[0].len(), 172);
        // The key press: 7 packets with the same timestamp, marker on the first, E on the
        // last three, durations growing, then the audio timestamp moved on.
        let ev = &pkts[3..10];
        for (i, p) in ev.iter().enumerate() {
            assert_eq!(p[1] & 0x7f, 101);
            assert_eq!(p[1] & 0x80 != 0, i == 0);
            assert_eq!(ts(p), ts0.wrapping_add(480));
            assert_eq!(p[12], 5);
            assert_eq!(p[13] & 0x80 != 0, i >= 4, "packet {i}");
            let d = u16::from_be_bytes([p[14], p[15]]);
            assert_eq!(d, [160, 320, 480, 640, 800, 800, 800][i]);
        }
        assert_eq!(ts(&pkts[10]), ts0.wrapping_add(480 + 7 * 160));
        // The receiver decodes PCMU and skips the events.
        for _ in 0..5 {
            tx.send_tone_frame(700.0, 8000.0);
        }
        let got = rx.collect_pcmu(100, Duration::from_secs(5));
        assert_eq!(got.len(), 800);
        assert!(goertzel(&got, 8000.0, 700.0) > 1e6);
        tx.send_dtmf('#', 101);
        for _ in 0..10 {
            tx.send_tone_frame(700.0, 8000.0);
        }
        for _ in 0..5 {
            tx.send_silence_frame();
        }
        let u = rx.record_utterance(1000.0, 60, Duration::from_secs(5));
        assert_eq!(u.len(), 13 * FRAME, "10 loud frames and 3 quiet ones");
        assert_eq!(rx.other, 7);
        assert_eq!(rx.drain(), 2);
        assert!(rx.collect_pcmu(20, Duration::from_millis(30)).is_empty());
        assert_eq!(rtp_payload(&[0x80, 0, 0, 0]), None);
        assert_eq!(
            rtp_payload(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            None
        );
    }
}
