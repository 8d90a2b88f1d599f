//! Shared by the mixer and engine tests: a tone-sending client (encodes RTP like a phone)
//! and an FFT to tell which tones a recording holds.
#![allow(dead_code)]

use confab_media::codec::{Decoder, Encoder, FRAME, MAX_ENCODED, MIX_RATE};
use confab_media::rtp;
use confab_media::Codec;
use rustfft::{num_complex::Complex, FftPlanner};

/// A participant: sends a tone (or silence) in one codec and records what it is sent.
pub struct Client {
    pub codec: Codec,
    pub pt: u8,
    pub freq: Option<f64>,
    pub amplitude: f64,
    enc: Encoder,
    dec: Decoder,
    n: u64,
    seq: u16,
    ts: u32,
    pub ssrc: u32,
    pub heard: Vec<i16>,
    pub payloads: Vec<Vec<u8>>,
    pcm: [i16; FRAME],
    out: [u8; MAX_ENCODED],
}

impl Client {
    pub fn new(codec: Codec, freq: Option<f64>) -> Client {
        Client {
            codec,
            pt: codec.static_pt().unwrap_or(111),
            freq,
            amplitude: 6000.0,
            enc: Encoder::new(codec).unwrap(),
            dec: Decoder::new(codec).unwrap(),
            n: 0,
            seq: 1000,
            ts: 5000,
            ssrc: 0x1234_0000 + freq.unwrap_or(0.0) as u32,
            heard: Vec::new(),
            payloads: Vec::new(),
            pcm: [0; FRAME],
            out: [0; MAX_ENCODED],
        }
    }

    /// The next 20 ms RTP packet.
    pub fn next_packet(&mut self) -> Vec<u8> {
        for (i, v) in self.pcm.iter_mut().enumerate() {
            let t = (self.n + i as u64) as f64 / MIX_RATE as f64;
            *v = match self.freq {
                Some(f) => ((2.0 * std::f64::consts::PI * f * t).sin() * self.amplitude) as i16,
                None => 0,
            };
        }
        self.n += FRAME as u64;
        let len = self.enc.encode(&self.pcm, &mut self.out);
        let mut p = vec![0u8; 12 + len];
        rtp::write_header(&mut p, false, self.pt, self.seq, self.ts, self.ssrc);
        p[12..].copy_from_slice(&self.out[..len]);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.codec.ts_per_frame());
        p
    }

    /// Takes one packet we were sent: decodes it into `heard`.
    pub fn receive(&mut self, packet: &[u8]) {
        let r = rtp::parse(packet).expect("the MCU sent a malformed RTP packet");
        assert_eq!(r.pt, self.pt, "payload type");
        let mut pcm = [0i16; FRAME];
        self.dec.decode(r.payload, &mut pcm);
        self.heard.extend_from_slice(&pcm);
        self.payloads.push(r.payload.to_vec());
    }
}

/// Power (dB, arbitrary reference) of `freq` in the last `secs` seconds of `pcm`
/// (16 kHz), Hann-windowed, summed over ±4 Hz.
pub fn tone_db(pcm: &[i16], freq: f64, secs: f64) -> f64 {
    let n = (secs * MIX_RATE as f64) as usize;
    assert!(pcm.len() >= n, "recording too short: {} < {n}", pcm.len());
    let x = &pcm[pcm.len() - n..];
    let mut buf: Vec<Complex<f64>> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos();
            Complex::new(v as f64 * w, 0.0)
        })
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let hz_per_bin = MIX_RATE as f64 / n as f64;
    let center = (freq / hz_per_bin).round() as i64;
    let span = (4.0 / hz_per_bin).ceil() as i64;
    let mut p = 1e-9;
    for b in (center - span)..=(center + span) {
        if b > 0 && (b as usize) < n / 2 {
            p += buf[b as usize].norm_sqr();
        }
    }
    10.0 * p.log10()
}

/// Asserts that `pcm` holds each tone of `present` and none of `absent` (each absent one
/// at least `margin` dB below the weakest present one).
pub fn assert_tones(
    who: &str,
    pcm: &[i16],
    present: &[f64],
    absent: &[f64],
    margin: f64,
    secs: f64,
) {
    let weakest = present
        .iter()
        .map(|&f| tone_db(pcm, f, secs))
        .fold(f64::INFINITY, f64::min);
    // Present tones must stand well above the noise floor (compare with a frequency no
    // one sends).
    let floor = tone_db(pcm, 3100.0, secs);
    assert!(
        weakest > floor + 30.0,
        "{who}: weakest present tone {weakest:.1} dB, floor {floor:.1} dB"
    );
    for &f in absent {
        let p = tone_db(pcm, f, secs);
        assert!(
            p < weakest - margin,
            "{who}: {f} Hz at {p:.1} dB, weakest wanted tone {weakest:.1} dB"
        );
    }
}
