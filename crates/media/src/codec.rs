//! Codecs: G.711 µ-law and A-law (table-driven), Opus (libopus, mono), and the 2:1
//! resampling between G.711's 8 kHz and the mixing rate.
//!
//! The mixer works in 16-bit linear PCM at [`MIX_RATE`] = 16 kHz, 20 ms frames of
//! [`FRAME`] = 320 samples: wideband for Opus, an exact 2:1 ratio for G.711.

use std::fmt;

/// The mixing rate (Hz).
pub const MIX_RATE: u32 = 16_000;
/// Samples in one 20 ms frame at the mixing rate.
pub const FRAME: usize = 320;
/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_8K: usize = 160;
/// Largest encoded frame we produce.
pub const MAX_ENCODED: usize = 400;
/// Opus encoder complexity (0-10). Measured on this kind of machine (docs/media.md):
/// complexity 1 costs about 40 µs per 20 ms frame, 5 about 100 µs; the encoder runs once
/// per talker per tick, so this is the Opus mixer's main cost.
pub const OPUS_COMPLEXITY: i32 = 1;
/// Opus bitrate (bits/s) for our mono wideband send streams.
pub const OPUS_BITRATE: i32 = 24_000;

/// The audio codecs the MCU speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    Opus,
}

impl Codec {
    /// The RTP clock rate (RFC 3551; Opus's is always 48 kHz, RFC 7587).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48_000,
        }
    }

    /// RTP timestamp units per 20 ms frame.
    pub fn ts_per_frame(self) -> u32 {
        self.clock_rate() / 50
    }

    /// The static payload type, if it has one.
    pub fn static_pt(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }

    /// The encoding name as in a=rtpmap.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// Index into per-codec tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------
// G.711 (ITU-T G.711; the classic Sun reference algorithm, turned into tables at compile
// time).

const fn ulaw_encode_slow(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84 >> 2;
    const CLIP: i32 = 8159;
    let mut v = (pcm as i32) >> 2;
    let mask: i32;
    if v < 0 {
        v = -v;
        mask = 0x7f;
    } else {
        mask = 0xff;
    }
    if v > CLIP {
        v = CLIP;
    }
    v += BIAS;
    let mut seg = 0;
    let ends = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
    while seg < 8 && v > ends[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let u = ((seg as i32) << 4) | ((v >> (seg + 1)) & 0xf);
    (u ^ mask) as u8
}

const fn ulaw_decode_slow(u: u8) -> i16 {
    let u = !u as i32;
    let mut t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

const fn alaw_encode_slow(pcm: i16) -> u8 {
    let mut v = (pcm as i32) >> 3;
    let mask: i32;
    if v >= 0 {
        mask = 0xd5;
    } else {
        mask = 0x55;
        v = -v - 1;
    }
    let ends = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let mut seg = 0;
    while seg < 8 && v > ends[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let mut a = (seg as i32) << 4;
    if seg < 2 {
        a |= (v >> 1) & 0xf;
    } else {
        a |= (v >> seg) & 0xf;
    }
    (a ^ mask) as u8
}

const fn alaw_decode_slow(a: u8) -> i16 {
    let a = (a ^ 0x55) as i32;
    let mut t = (a & 0x0f) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn make_ulaw_dec() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode_slow(i as u8);
        i += 1;
    }
    t
}

const fn make_alaw_dec() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode_slow(i as u8);
        i += 1;
    }
    t
}

// Encoders indexed by the top 14 bits (µ-law) / 13 bits (A-law) of the sample: G.711 only
// looks at those.
const fn make_ulaw_enc() -> [u8; 16384] {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        let pcm = ((i as i32 - 8192) << 2) as i16;
        t[i] = ulaw_encode_slow(pcm);
        i += 1;
    }
    t
}

const fn make_alaw_enc() -> [u8; 8192] {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        let pcm = ((i as i32 - 4096) << 3) as i16;
        t[i] = alaw_encode_slow(pcm);
        i += 1;
    }
    t
}

static ULAW_DEC: [i16; 256] = make_ulaw_dec();
static ALAW_DEC: [i16; 256] = make_alaw_dec();
static ULAW_ENC: [u8; 16384] = make_ulaw_enc();
static ALAW_ENC: [u8; 8192] = make_alaw_enc();

#[inline]
pub fn ulaw_encode(pcm: i16) -> u8 {
    ULAW_ENC[((pcm >> 2) as i32 + 8192) as usize]
}
#[inline]
pub fn ulaw_decode(u: u8) -> i16 {
    ULAW_DEC[u as usize]
}
#[inline]
pub fn alaw_encode(pcm: i16) -> u8 {
    ALAW_ENC[((pcm >> 3) as i32 + 4096) as usize]
}
#[inline]
pub fn alaw_decode(a: u8) -> i16 {
    ALAW_DEC[a as usize]
}

/// µ-law digital silence.
pub const ULAW_SILENCE: u8 = 0xff;
/// A-law digital silence.
pub const ALAW_SILENCE: u8 = 0xd5;

// ---------------------------------------------------------------------------------------
// 2:1 resampling with the half-band filter h = [-1, 0, 9, 16, 9, 0, -1] / 32 (a cheap
// 4-tap interpolator; stopband about -30 dB, enough for telephone speech and for keeping
// tones from aliasing into the other band).

/// 8 kHz → 16 kHz, 160 samples in, 320 out; two 8 kHz samples of delay.
#[derive(Clone, Debug, Default)]
pub struct Upsampler {
    hist: [i16; 3],
}

impl Upsampler {
    pub fn process(&mut self, input: &[i16; FRAME_8K], out: &mut [i16; FRAME]) {
        let mut v = [0i32; FRAME_8K + 3];
        v[0] = self.hist[0] as i32;
        v[1] = self.hist[1] as i32;
        v[2] = self.hist[2] as i32;
        for (d, s) in v[3..].iter_mut().zip(input.iter()) {
            *d = *s as i32;
        }
        for n in 0..FRAME_8K {
            out[2 * n] = v[n + 1] as i16;
            let x = (9 * (v[n + 1] + v[n + 2]) - (v[n] + v[n + 3]) + 8) >> 4;
            out[2 * n + 1] = x.clamp(-32768, 32767) as i16;
        }
        self.hist.copy_from_slice(&input[FRAME_8K - 3..]);
    }

    pub fn reset(&mut self) {
        self.hist = [0; 3];
    }
}

/// 16 kHz → 8 kHz, 320 samples in, 160 out, low-passed first.
#[derive(Clone, Debug, Default)]
pub struct Downsampler {
    hist: [i16; 5],
}

impl Downsampler {
    pub fn process(&mut self, input: &[i16; FRAME], out: &mut [i16; FRAME_8K]) {
        let mut v = [0i32; FRAME + 5];
        for (d, s) in v.iter_mut().zip(self.hist.iter().chain(input.iter())) {
            *d = *s as i32;
        }
        for (n, o) in out.iter_mut().enumerate() {
            let c = 2 * n + 3;
            let x = (16 * v[c] + 9 * (v[c - 1] + v[c + 1]) - (v[c - 3] + v[c + 3]) + 16) >> 5;
            *o = x.clamp(-32768, 32767) as i16;
        }
        self.hist.copy_from_slice(&input[FRAME - 5..]);
    }

    pub fn reset(&mut self) {
        self.hist = [0; 5];
    }
}

// ---------------------------------------------------------------------------------------
// Decoders and encoders at the mixing rate.

#[derive(Debug)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "codec: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

impl From<opus::Error> for CodecError {
    fn from(e: opus::Error) -> Self {
        CodecError(e.to_string())
    }
}

/// Decodes one leg's frames to 16 kHz linear PCM. (G.711's scratch frame is kept inline,
/// Opus's state behind a box: one indirection less on the cheap path.)
#[allow(clippy::large_enum_variant)]
pub enum Decoder {
    G711 {
        alaw: bool,
        up: Upsampler,
        buf: [i16; FRAME_8K],
    },
    Opus {
        dec: Box<opus::Decoder>,
        buf: Box<[i16; 5760]>,
    },
}

impl Decoder {
    pub fn new(codec: Codec) -> Result<Decoder, CodecError> {
        Ok(match codec {
            Codec::Pcmu | Codec::Pcma => Decoder::G711 {
                alaw: codec == Codec::Pcma,
                up: Upsampler::default(),
                buf: [0; FRAME_8K],
            },
            Codec::Opus => Decoder::Opus {
                dec: Box::new(opus::Decoder::new(MIX_RATE, opus::Channels::Mono)?),
                buf: Box::new([0; 5760]),
            },
        })
    }

    /// Decodes one 20 ms payload into `out`. A G.711 payload shorter than 20 ms is padded
    /// with silence, a longer one cut; an Opus packet that does not decode is concealed.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16; FRAME]) {
        match self {
            Decoder::G711 { alaw, up, buf } => {
                let n = payload.len().min(FRAME_8K);
                if *alaw {
                    for (d, &s) in buf.iter_mut().zip(&payload[..n]) {
                        *d = alaw_decode(s);
                    }
                } else {
                    for (d, &s) in buf.iter_mut().zip(&payload[..n]) {
                        *d = ulaw_decode(s);
                    }
                }
                buf[n..].fill(0);
                up.process(buf, out);
            }
            Decoder::Opus { dec, buf } => match dec.decode(payload, &mut buf[..], false) {
                Ok(n) if n >= FRAME => out.copy_from_slice(&buf[..FRAME]),
                Ok(n) => {
                    out[..n].copy_from_slice(&buf[..n]);
                    out[n..].fill(0);
                }
                Err(_) => self.conceal(out),
            },
        }
    }

    /// A lost frame: Opus's packet loss concealment, silence for G.711.
    pub fn conceal(&mut self, out: &mut [i16; FRAME]) {
        match self {
            Decoder::G711 { up, buf, .. } => {
                buf.fill(0);
                up.process(buf, out);
            }
            Decoder::Opus { dec, buf } => match dec.decode(&[], &mut buf[..FRAME], false) {
                Ok(n) if n >= FRAME => out.copy_from_slice(&buf[..FRAME]),
                _ => out.fill(0),
            },
        }
    }
}

/// Encodes 16 kHz linear PCM frames in one codec.
#[allow(clippy::large_enum_variant)]
pub enum Encoder {
    G711 {
        alaw: bool,
        down: Downsampler,
        buf: [i16; FRAME_8K],
    },
    Opus(Box<opus::Encoder>),
}

impl Encoder {
    pub fn new(codec: Codec) -> Result<Encoder, CodecError> {
        Ok(match codec {
            Codec::Pcmu | Codec::Pcma => Encoder::G711 {
                alaw: codec == Codec::Pcma,
                down: Downsampler::default(),
                buf: [0; FRAME_8K],
            },
            Codec::Opus => Self::opus(OPUS_COMPLEXITY)?,
        })
    }

    /// An Opus encoder of the given complexity (0-10; the benchmark compares them).
    pub fn opus(complexity: i32) -> Result<Encoder, CodecError> {
        let mut e = opus::Encoder::new(MIX_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        e.set_complexity(complexity.clamp(0, 10))?;
        e.set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE))?;
        e.set_inband_fec(false)?;
        e.set_signal(opus::Signal::Voice)?;
        Ok(Encoder::Opus(Box::new(e)))
    }

    /// Encodes one frame into `out`, returning the payload length.
    pub fn encode(&mut self, pcm: &[i16; FRAME], out: &mut [u8; MAX_ENCODED]) -> usize {
        match self {
            Encoder::G711 { alaw, down, buf } => {
                down.process(pcm, buf);
                if *alaw {
                    for (d, &s) in out.iter_mut().zip(buf.iter()) {
                        *d = alaw_encode(s);
                    }
                } else {
                    for (d, &s) in out.iter_mut().zip(buf.iter()) {
                        *d = ulaw_encode(s);
                    }
                }
                FRAME_8K
            }
            // An encoder error cannot come from a well-formed 20 ms frame; should one
            // happen, a 1-byte TOC-only frame (valid, decodes as a lost frame) is sent.
            Encoder::Opus(e) => match e.encode(pcm, &mut out[..]) {
                Ok(n) => n,
                Err(_) => {
                    out[0] = 0x08;
                    1
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_known_values_and_round_trip() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        // Every code decodes and re-encodes to itself (µ-law's two zeros aside).
        for c in 0..=255u8 {
            if c != 0x7f {
                assert_eq!(ulaw_encode(ulaw_decode(c)), c, "µ-law {c:#x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#x}");
        }
        // Quantisation error stays within G.711's segment step.
        for s in (-32768i32..32768).step_by(7) {
            let s = s as i16;
            let eu = (ulaw_decode(ulaw_encode(s)) as i32 - s as i32).abs();
            let ea = (alaw_decode(alaw_encode(s)) as i32 - s as i32).abs();
            let step = (s as i32).abs() / 16 + 64;
            assert!(eu <= step && ea <= step, "{s}: {eu} {ea}");
        }
    }

    fn tone(freq: f32, rate: f32, n: usize, start: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f32::consts::PI * freq * (start + i) as f32 / rate).sin() * 8000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    fn resampling_keeps_a_tone() {
        let mut up = Upsampler::default();
        let mut down = Downsampler::default();
        let mut energy = 0i64;
        for f in 0..20 {
            let x: [i16; FRAME_8K] = tone(1000.0, 8000.0, FRAME_8K, f * FRAME_8K)
                .try_into()
                .unwrap();
            let mut y = [0i16; FRAME];
            up.process(&x, &mut y);
            let mut z = [0i16; FRAME_8K];
            down.process(&y, &mut z);
            if f >= 2 {
                energy += z.iter().skip(8).map(|&v| (v as i64).pow(2)).sum::<i64>();
            }
        }
        // The tone keeps its power through up and down (within 1 dB).
        let expected = (8000f64.powi(2) / 2.0) * ((FRAME_8K - 8) * 18) as f64;
        let ratio = energy as f64 / expected;
        assert!((0.79..1.26).contains(&ratio), "power ratio {ratio}");
    }

    #[test]
    fn downsampler_removes_upper_band() {
        // A 7 kHz tone at 16 kHz must not alias into the 8 kHz band (1 kHz image).
        let mut down = Downsampler::default();
        let mut energy = 0i64;
        for f in 0..10 {
            let x: [i16; FRAME] = tone(7000.0, 16000.0, FRAME, f * FRAME).try_into().unwrap();
            let mut z = [0i16; FRAME_8K];
            down.process(&x, &mut z);
            if f > 0 {
                energy += z.iter().map(|&v| (v as i64).pow(2)).sum::<i64>();
            }
        }
        let input = (8000f64.powi(2) / 2.0) * (FRAME_8K * 9) as f64;
        let db = 10.0 * (energy as f64 / input).log10();
        assert!(db < -20.0, "7 kHz leaks at {db} dB");
    }

    #[test]
    fn opus_round_trip_and_plc() {
        let mut enc = Encoder::new(Codec::Opus).unwrap();
        let mut dec = Decoder::new(Codec::Opus).unwrap();
        let mut out = [0u8; MAX_ENCODED];
        let mut pcm = [0i16; FRAME];
        let mut energy = 0i64;
        for f in 0..25 {
            let x: [i16; FRAME] = tone(1000.0, 16000.0, FRAME, f * FRAME).try_into().unwrap();
            let n = enc.encode(&x, &mut out);
            assert!(n > 0 && n < MAX_ENCODED);
            dec.decode(&out[..n], &mut pcm);
            if f > 5 {
                energy += pcm.iter().map(|&v| (v as i64).pow(2)).sum::<i64>();
            }
        }
        let expected = (8000f64.powi(2) / 2.0) * (FRAME * 19) as f64;
        let ratio = energy as f64 / expected;
        assert!((0.5..2.0).contains(&ratio), "power ratio {ratio}");
        dec.conceal(&mut pcm); // PLC after a real frame continues the tone
        assert!(pcm.iter().map(|&v| (v as i64).abs()).max().unwrap() > 1000);
        // Garbage is concealed, not a panic.
        dec.decode(&[0xff; 3], &mut pcm);
        dec.decode(&[], &mut pcm);
    }

    #[test]
    fn g711_short_and_long_payloads() {
        let mut dec = Decoder::new(Codec::Pcmu).unwrap();
        let mut pcm = [1i16; FRAME];
        dec.decode(&[0x00; 10], &mut pcm); // 10 loud samples, then silence
        assert!(pcm[..20].iter().any(|&v| v.abs() > 20000));
        assert!(pcm[30..].iter().all(|&v| v == 0));
        dec.decode(&[0xff; 400], &mut pcm); // too long: cut to 160
        dec.decode(&[0xff; 400], &mut pcm);
        assert!(pcm.iter().all(|&v| v == 0));
    }
}
