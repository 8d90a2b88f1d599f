//! confab's audio MCU: a sans-I/O core (RTP, SDP, codecs, jitter buffer, RFC 4733 events,
//! the mixer) and a driver (`engine`) that runs rooms on paced OS threads over UDP.
//! See docs/media.md.

pub mod clip;
pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod jitter;
pub mod mixer;
pub mod prompts;
pub mod rtp;
pub mod sdp;
pub mod wav;

pub use clip::Clip;
pub use codec::Codec;
pub use engine::{
    client_audio_port_range, Engine, EngineConfig, EngineStats, LegId, LegMode, MediaError,
    MediaEvent, RoomId,
};
pub use prompts::{Prompt, Prompts};
pub use sdp::sdp_offer;

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic sweep of random and mutated input through every parser: errors,
    /// never a panic, and valid input still accepted.
    #[test]
    fn parsers_survive_random_and_mutated_input() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let offer = sdp_offer(
            "127.0.0.1".parse().unwrap(),
            4000,
            &[Codec::Opus, Codec::Pcmu],
        );
        let prefs = [Codec::Opus, Codec::Pcmu, Codec::Pcma];
        let (mut sdp_ok, mut sdp_err, mut rtp_err) = (0, 0, 0);
        let mut buf = [0u8; 256];
        for i in 0..20_000 {
            let n = (next() % 256) as usize;
            for b in &mut buf[..n] {
                *b = next() as u8;
            }
            if i % 2 == 0 {
                buf[0] = 0x80 | (buf[0] & 0x3f); // version 2, to get past the first check
            }
            rtp_err += rtp::parse(&buf[..n]).is_err() as u32;
            let _ = rtp::parse_rtcp(&buf[..n]);
            let _ = dtmf::parse(&buf[..n]);
            // Mutate one byte of a valid offer (kept UTF-8: ASCII only).
            let mut m = offer.clone().into_bytes();
            let at = (next() as usize) % m.len();
            const ALPHABET: &[u8] = b" =:/0123456789\r\nacmov-xyz";
            m[at] = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
            let m = String::from_utf8(m).unwrap();
            match sdp::parse_offer(&m).and_then(|o| sdp::negotiate(&o, &prefs)) {
                Ok(_) => sdp_ok += 1,
                Err(_) => sdp_err += 1,
            }
        }
        assert!(
            rtp_err > 1000 && sdp_ok > 1000 && sdp_err > 100,
            "{rtp_err} {sdp_ok} {sdp_err}"
        );
        assert!(sdp::parse_offer(&offer).is_ok());
    }

    #[test]
    fn engine_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<super::Engine>();
    }
}
