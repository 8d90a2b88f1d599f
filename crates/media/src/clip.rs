//! Audio clips: prompts, announcements and recorded names, as 16 kHz mono linear PCM (the
//! mixing rate), shared between legs with `Arc<Clip>`.

use crate::codec::MIX_RATE;
use std::time::Duration;

/// A clip of 16 kHz mono 16-bit PCM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clip {
    pcm: Box<[i16]>,
}

impl Clip {
    /// Samples at 16 kHz.
    pub fn from_pcm16k(pcm: Vec<i16>) -> Clip {
        Clip {
            pcm: pcm.into_boxed_slice(),
        }
    }

    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }

    pub fn is_empty(&self) -> bool {
        self.pcm.is_empty()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pcm.len() as u64 * 1_000_000 / MIX_RATE as u64)
    }

    /// A sine tone of `hz` for `ms`, with 10 ms ramps at both ends (no click).
    pub fn tone(hz: f64, ms: u32, amplitude: i16) -> Clip {
        let n = (MIX_RATE as u64 * ms as u64 / 1000) as usize;
        let ramp = (MIX_RATE as usize / 100).min(n / 2).max(1);
        let pcm = (0..n)
            .map(|i| {
                let ph = 2.0 * std::f64::consts::PI * hz * i as f64 / MIX_RATE as f64;
                let edge = i.min(n - 1 - i).min(ramp) as f64 / ramp as f64;
                (ph.sin() * amplitude as f64 * edge) as i16
            })
            .collect();
        Clip::from_pcm16k(pcm)
    }

    /// `ms` of silence.
    pub fn silence(ms: u32) -> Clip {
        Clip::from_pcm16k(vec![0; (MIX_RATE as u64 * ms as u64 / 1000) as usize])
    }

    /// The clips one after the other.
    pub fn concat(parts: &[&Clip]) -> Clip {
        let mut pcm = Vec::with_capacity(parts.iter().map(|c| c.pcm.len()).sum());
        for c in parts {
            pcm.extend_from_slice(&c.pcm);
        }
        Clip::from_pcm16k(pcm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_silence_and_concatenation() {
        let t = Clip::tone(440.0, 100, 8000);
        assert_eq!(t.pcm().len(), 1600);
        assert_eq!(t.duration(), Duration::from_millis(100));
        assert_eq!(t.pcm()[0], 0);
        assert!(t.pcm().iter().any(|&s| s > 7000));
        let s = Clip::silence(20);
        assert!(s.pcm().iter().all(|&v| v == 0));
        let c = Clip::concat(&[&t, &s, &t]);
        assert_eq!(c.pcm().len(), 3520);
        assert_eq!(&c.pcm()[..1600], t.pcm());
    }
}
