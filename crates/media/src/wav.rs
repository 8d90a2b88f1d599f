//! WAV (RIFF/WAVE) reading and writing for [`Clip`]s: what `espeak-ng` writes (16-bit mono
//! 22050 Hz) and recordings in the usual PCM forms come in at any rate and leave as 16 kHz
//! mono; what we write is 16-bit mono 16 kHz PCM.
//!
//! Read: integer PCM of 8, 16, 24 or 32 bits and IEEE float of 32 or 64 bits (format tag 1,
//! 3, or `WAVE_FORMAT_EXTENSIBLE` naming one of those), 1 to 8 channels (mixed down to
//! mono), 1 kHz to 384 kHz (resampled to 16 kHz by a Kaiser-windowed sinc, low-passed below
//! the lower Nyquist frequency). Chunks other than `fmt ` and `data` are skipped. A `data`
//! size larger than the file (a streamed WAV whose header was never fixed) is taken to
//! mean "to the end". Anything else that does not add up is an `Err`, never a panic.

use crate::clip::Clip;
use crate::codec::MIX_RATE;

/// The largest number of output samples a WAV may make (10 minutes at 16 kHz): a clip is
/// a prompt or a name, and a header claiming a huge, very slow stream is refused instead of
/// resampled into gigabytes.
const MAX_OUT_SAMPLES: u64 = 10 * 60 * MIX_RATE as u64;

impl Clip {
    /// A clip from a WAV file's bytes, mixed down to mono and resampled to 16 kHz.
    pub fn from_wav(bytes: &[u8]) -> Result<Clip, String> {
        let w = parse(bytes)?;
        Ok(Clip::from_pcm16k(w.into_pcm16k()?))
    }

    /// The clip as a WAV file: RIFF/WAVE, PCM 16-bit little-endian, mono, 16 kHz.
    pub fn to_wav(&self) -> Vec<u8> {
        write(self.pcm(), None)
    }
}

/// The clip as a WAV file with `comment` in a `LIST`/`INFO` `ICMT` chunk (the prompt cache
/// keeps the hash of the text and voice there, so a file and its key change in one rename).
pub(crate) fn to_wav_with_comment(clip: &Clip, comment: &str) -> Vec<u8> {
    write(clip.pcm(), Some(comment))
}

/// The `ICMT` comment of a WAV file, if it has one (ASCII up to the first NUL).
pub(crate) fn wav_comment(bytes: &[u8]) -> Option<String> {
    let chunks = chunks(bytes).ok()?;
    for (id, body) in chunks {
        if &id == b"LIST" && body.len() >= 4 && &body[..4] == b"INFO" {
            let mut at = 4;
            while at + 8 <= body.len() {
                let sub = &body[at..at + 4];
                let n = u32::from_le_bytes(body[at + 4..at + 8].try_into().ok()?) as usize;
                let start = at + 8;
                let end = start.checked_add(n)?;
                if end > body.len() {
                    return None;
                }
                if sub == b"ICMT" {
                    let v = &body[start..end];
                    let v = &v[..v.iter().position(|&b| b == 0).unwrap_or(v.len())];
                    return std::str::from_utf8(v).ok().map(str::to_owned);
                }
                at = end + (n & 1);
            }
        }
    }
    None
}

fn write(pcm: &[i16], comment: Option<&str>) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let list: Vec<u8> = match comment {
        None => Vec::new(),
        Some(c) => {
            let mut text = c.as_bytes().to_vec();
            text.push(0);
            if text.len() % 2 == 1 {
                text.push(0);
            }
            let mut l = Vec::with_capacity(text.len() + 20);
            l.extend_from_slice(b"LIST");
            l.extend_from_slice(&((4 + 8 + text.len()) as u32).to_le_bytes());
            l.extend_from_slice(b"INFO");
            l.extend_from_slice(b"ICMT");
            l.extend_from_slice(&(text.len() as u32).to_le_bytes());
            l.extend_from_slice(&text);
            l
        }
    };
    let mut out = Vec::with_capacity(44 + list.len() + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + list.len() as u32 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&MIX_RATE.to_le_bytes());
    out.extend_from_slice(&(MIX_RATE * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits
    out.extend_from_slice(&list);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sample {
    Int(u16),   // bits: 8 (unsigned), 16, 24, 32 (signed)
    Float(u16), // bits: 32, 64
}

struct Wav<'a> {
    sample: Sample,
    channels: usize,
    rate: u32,
    data: &'a [u8],
}

/// A RIFF chunk: its id and body.
type Chunk<'a> = ([u8; 4], &'a [u8]);

/// The RIFF chunks after "WAVE": (id, body), a body cut short at the end of the file only
/// for `data` (a streamed WAV).
fn chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut out = Vec::new();
    let mut at = 12usize;
    while at + 8 <= bytes.len() {
        if out.len() >= 64 {
            return Err("too many chunks".into());
        }
        let id: [u8; 4] = bytes[at..at + 4].try_into().unwrap_or([0; 4]);
        let n = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or([0; 4])) as usize;
        let start = at + 8;
        let end = match start.checked_add(n) {
            Some(e) if e <= bytes.len() => e,
            _ if &id == b"data" => bytes.len(),
            _ => {
                return Err(format!(
                    "chunk {:?} runs past the end",
                    String::from_utf8_lossy(&id)
                ))
            }
        };
        out.push((id, &bytes[start..end]));
        at = end.saturating_add(n & 1);
    }
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<Wav<'_>, String> {
    let mut fmt = None;
    let mut data = None;
    for (id, body) in chunks(bytes)? {
        match &id {
            b"fmt " if fmt.is_none() => fmt = Some(body),
            b"data" if data.is_none() => data = Some(body),
            _ => {}
        }
    }
    let f = fmt.ok_or("no fmt chunk")?;
    let data = data.ok_or("no data chunk")?;
    if f.len() < 16 {
        return Err("fmt chunk too short".into());
    }
    let u16_at = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
    let mut tag = u16_at(0);
    let channels = u16_at(2) as usize;
    let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
    let align = u16_at(12) as usize;
    let bits = u16_at(14);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID's first two bytes are the real tag.
        if f.len() < 40 {
            return Err("extensible fmt chunk too short".into());
        }
        tag = u16_at(24);
    }
    let sample = match (tag, bits) {
        (1, 8 | 16 | 24 | 32) => Sample::Int(bits),
        (3, 32 | 64) => Sample::Float(bits),
        (1 | 3, b) => return Err(format!("unsupported sample size {b} bits")),
        (t, _) => {
            return Err(format!(
                "unsupported format tag {t:#x} (PCM and float only)"
            ))
        }
    };
    if !(1..=8).contains(&channels) {
        return Err(format!("unsupported channel count {channels}"));
    }
    if !(1000..=384_000).contains(&rate) {
        return Err(format!("unsupported sample rate {rate}"));
    }
    if align != channels * (bits as usize / 8) {
        return Err(format!(
            "block align {align} does not match {channels} x {bits} bits"
        ));
    }
    let frames = data.len() / align;
    if frames as u64 * MIX_RATE as u64 / rate as u64 > MAX_OUT_SAMPLES {
        return Err("longer than 10 minutes".into());
    }
    Ok(Wav {
        sample,
        channels,
        rate,
        data: &data[..frames * align],
    })
}

impl Wav<'_> {
    /// The samples mixed down to mono, as f32 in [-1, 1].
    fn mono(&self) -> Vec<f32> {
        let width = match self.sample {
            Sample::Int(b) | Sample::Float(b) => b as usize / 8,
        };
        let read = |s: &[u8]| -> f32 {
            match (self.sample, width) {
                (Sample::Int(_), 1) => (s[0] as f32 - 128.0) / 128.0,
                (Sample::Int(_), 2) => i16::from_le_bytes([s[0], s[1]]) as f32 / 32768.0,
                (Sample::Int(_), 3) => {
                    (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0
                }
                (Sample::Int(_), _) => {
                    i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f32 / 2_147_483_648.0
                }
                (Sample::Float(_), 4) => {
                    let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    if v.is_finite() {
                        v.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                }
                (Sample::Float(_), _) => {
                    let v = f64::from_le_bytes(s[..8].try_into().unwrap_or([0; 8]));
                    if v.is_finite() {
                        v.clamp(-1.0, 1.0) as f32
                    } else {
                        0.0
                    }
                }
            }
        };
        let align = width * self.channels;
        self.data
            .chunks_exact(align)
            .map(|frame| frame.chunks_exact(width).map(read).sum::<f32>() / self.channels as f32)
            .collect()
    }

    fn into_pcm16k(self) -> Result<Vec<i16>, String> {
        let mono = self.mono();
        let out = resample(&mono, self.rate, MIX_RATE);
        Ok(out
            .into_iter()
            .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect())
    }
}

/// Zero crossings of the windowed sinc on each side (of the lower of the two rates).
const ZEROS: f64 = 16.0;
/// Table resolution: kernel values per input sample (linearly interpolated between).
const TABLE_STEPS: usize = 128;
const KAISER_BETA: f64 = 8.6;

/// Resamples `x` from `from` Hz to `to` Hz with a Kaiser-windowed sinc low-pass at 0.92 of
/// the lower Nyquist frequency (about -85 dB stopband: no aliasing when going down, no
/// imaging when going up).
pub(crate) fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let ratio = to as f64 / from as f64; // output samples per input sample
                                         // Cutoff in cycles per input sample.
    let fc = 0.5 * ratio.min(1.0) * 0.92;
    // Half-width of the kernel in input samples.
    let half = ZEROS / (2.0 * fc);
    let table_len = (half * TABLE_STEPS as f64).ceil() as usize + 2;
    let i0_beta = bessel_i0(KAISER_BETA);
    let table: Vec<f64> = (0..table_len)
        .map(|i| {
            let t = i as f64 / TABLE_STEPS as f64;
            if t >= half {
                return 0.0;
            }
            let arg = 2.0 * fc * t;
            let sinc = if arg == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            let r = t / half;
            let w = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            2.0 * fc * sinc * w
        })
        .collect();
    let kernel = |d: f64| -> f64 {
        let p = d.abs() * TABLE_STEPS as f64;
        let i = p as usize;
        if i + 1 >= table.len() {
            return 0.0;
        }
        let f = p - i as f64;
        table[i] * (1.0 - f) + table[i + 1] * f
    };
    let n_out = ((x.len() as f64) * ratio).round() as usize;
    let mut out = Vec::with_capacity(n_out);
    let last = x.len() as isize - 1;
    for n in 0..n_out {
        let t = n as f64 / ratio; // position in input samples
        let lo = ((t - half).ceil() as isize).max(0);
        let hi = ((t + half).floor() as isize).min(last);
        let mut acc = 0.0f64;
        let mut k = lo;
        while k <= hi {
            acc += x[k as usize] as f64 * kernel(t - k as f64);
            k += 1;
        }
        out.push(acc as f32);
    }
    out
}

/// The modified Bessel function of the first kind, order 0 (for the Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_of(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVE");
        v.extend_from_slice(b"fmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * align as u32).to_le_bytes());
        v.extend_from_slice(&align.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn sine(hz: f64, rate: u32, n: usize, amp: f64) -> Vec<f64> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin() * amp)
            .collect()
    }

    fn power_at(x: &[i16], hz: f64) -> f64 {
        // Goertzel at 16 kHz, normalised by length: amplitude² / 4 for a pure tone.
        let w = 2.0 * std::f64::consts::PI * hz / MIX_RATE as f64;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = v as f64 + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
    }

    #[test]
    fn round_trip_at_16k_is_exact() {
        let c = Clip::tone(700.0, 250, 9000);
        let w = c.to_wav();
        assert_eq!(w.len(), 44 + 2 * c.pcm().len());
        assert_eq!(Clip::from_wav(&w).unwrap(), c);
        let tagged = to_wav_with_comment(&c, "confab k=abc123");
        assert_eq!(Clip::from_wav(&tagged).unwrap(), c);
        assert_eq!(wav_comment(&tagged).as_deref(), Some("confab k=abc123"));
        assert_eq!(wav_comment(&w), None);
    }

    #[test]
    fn espeak_rate_is_resampled_without_aliasing() {
        // 22050 Hz, 16-bit mono (what espeak-ng writes): a 1 kHz tone stays, a 9.5 kHz one
        // (above the new Nyquist frequency) must not fold back to 6.5 kHz.
        let n = 22050;
        let pass: Vec<u8> = sine(1000.0, 22050, n, 12000.0)
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect();
        let c = Clip::from_wav(&wav_of(1, 1, 22050, 16, &pass)).unwrap();
        assert!(
            (c.pcm().len() as i64 - 16000).abs() <= 1,
            "{}",
            c.pcm().len()
        );
        let mid = &c.pcm()[2000..14000];
        let p = power_at(mid, 1000.0);
        let amp = (4.0 * p).sqrt();
        assert!((amp - 12000.0).abs() < 300.0, "1 kHz amplitude {amp}");
        let stop: Vec<u8> = sine(9500.0, 22050, n, 12000.0)
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect();
        let c = Clip::from_wav(&wav_of(1, 1, 22050, 16, &stop)).unwrap();
        let mid = &c.pcm()[2000..14000];
        let alias = (4.0 * power_at(mid, 16000.0 - 9500.0)).sqrt();
        let rms = (mid.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
        assert!(alias < 12.0 && rms < 12.0, "alias {alias}, rms {rms}");
    }

    #[test]
    fn upsampling_stereo_8_bit_and_float_mix_down() {
        // 8 kHz stereo 16-bit: left 400 Hz, right silent -> 400 Hz at half amplitude.
        let left = sine(400.0, 8000, 8000, 16000.0);
        let data: Vec<u8> = left
            .iter()
            .flat_map(|&v| {
                let mut f = (v as i16).to_le_bytes().to_vec();
                f.extend_from_slice(&0i16.to_le_bytes());
                f
            })
            .collect();
        let c = Clip::from_wav(&wav_of(1, 2, 8000, 16, &data)).unwrap();
        assert_eq!(c.pcm().len(), 16000);
        let amp = (4.0 * power_at(&c.pcm()[2000..14000], 400.0)).sqrt();
        assert!((amp - 8000.0).abs() < 200.0, "{amp}");
        // Imaging: nothing at 8000 - 400 Hz.
        let image = (4.0 * power_at(&c.pcm()[2000..14000], 7600.0)).sqrt();
        assert!(image < 20.0, "image {image}");
        // 8-bit unsigned at 16 kHz.
        let data: Vec<u8> = sine(500.0, 16000, 1600, 100.0)
            .iter()
            .map(|&v| (v + 128.0) as u8)
            .collect();
        let c = Clip::from_wav(&wav_of(1, 1, 16000, 8, &data)).unwrap();
        assert_eq!(c.pcm().len(), 1600);
        assert!(c.pcm().iter().any(|&s| s > 24000));
        // float32 at 48 kHz, with a NaN and an out-of-range value that must not blow up.
        let mut data: Vec<u8> = sine(300.0, 48000, 4800, 0.5)
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect();
        data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        data[4..8].copy_from_slice(&1e30f32.to_le_bytes());
        let c = Clip::from_wav(&wav_of(3, 1, 48000, 32, &data)).unwrap();
        assert_eq!(c.pcm().len(), 1600);
        let amp = (4.0 * power_at(&c.pcm()[400..1200], 300.0)).sqrt();
        assert!((amp - 16384.0).abs() < 600.0, "{amp}");
    }

    #[test]
    fn streamed_header_and_odd_chunks() {
        // A data size of 0x7fffffff (streamed) means "to the end"; an odd-sized unknown
        // chunk before it is skipped with its pad byte; a trailing half frame is dropped.
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF\xff\xff\xff\x7fWAVE");
        v.extend_from_slice(b"junk\x03\x00\x00\x00abc\x00");
        let w = wav_of(1, 1, 16000, 16, &[]);
        v.extend_from_slice(&w[12..36]); // the fmt chunk
        v.extend_from_slice(b"data\xff\xff\xff\x7f");
        v.extend_from_slice(&[1, 0, 2, 0, 3]);
        let c = Clip::from_wav(&v).unwrap();
        assert_eq!(c.pcm(), &[1, 2]);
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = Clip::tone(440.0, 20, 5000).to_wav();
        assert!(Clip::from_wav(&[]).is_err());
        assert!(Clip::from_wav(b"RIFF\0\0\0\0WAVE").is_err()); // no chunks
        assert!(Clip::from_wav(&good[..30]).is_err()); // fmt cut
        assert!(Clip::from_wav(&wav_of(2, 1, 8000, 4, &[0; 8])).is_err()); // ADPCM
        assert!(Clip::from_wav(&wav_of(1, 0, 8000, 16, &[0; 8])).is_err());
        assert!(Clip::from_wav(&wav_of(1, 9, 8000, 16, &[0; 36])).is_err());
        assert!(Clip::from_wav(&wav_of(1, 1, 0, 16, &[0; 8])).is_err());
        assert!(Clip::from_wav(&wav_of(1, 1, 8000, 12, &[0; 8])).is_err());
        assert!(Clip::from_wav(&wav_of(3, 1, 8000, 16, &[0; 8])).is_err());
        // A 1 kHz stream claiming four gigabytes: too long, refused before any work.
        let mut huge = wav_of(1, 1, 1000, 8, &[0; 16]);
        let n = huge.len();
        huge[n - 20..n - 16].copy_from_slice(&u32::MAX.to_le_bytes());
        huge.resize(huge.len() + 700_000, 0);
        assert!(Clip::from_wav(&huge).is_err());
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let good = to_wav_with_comment(&Clip::tone(440.0, 30, 5000), "k");
        let (mut ok, mut err) = (0, 0);
        let mut buf = Vec::new();
        for i in 0..5000 {
            buf.clear();
            if i % 3 == 0 {
                let n = (next() % 200) as usize;
                buf.extend((0..n).map(|_| next() as u8));
                if i % 2 == 0 && n >= 12 {
                    buf[..4].copy_from_slice(b"RIFF");
                    buf[8..12].copy_from_slice(b"WAVE");
                }
            } else {
                buf.extend_from_slice(&good);
                for _ in 0..1 + next() % 3 {
                    let at = (next() % 80) as usize; // the headers
                    buf[at] = next() as u8;
                }
                if next() % 4 == 0 {
                    buf.truncate((next() as usize) % good.len());
                }
            }
            match Clip::from_wav(&buf) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
            let _ = wav_comment(&buf);
        }
        assert!(ok > 300 && err > 1000, "ok {ok}, err {err}");
    }
}
