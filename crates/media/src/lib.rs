//! confab's audio MCU: a sans-I/O core (RTP, SDP, codecs, jitter buffer, RFC 4733 events,
//! the mixer) and a driver (`engine`) that runs rooms on paced OS threads over UDP.
//! See docs/media.md.

pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod jitter;
pub mod mixer;
pub mod rtp;
pub mod sdp;

pub use codec::Codec;
pub use engine::{Engine, EngineConfig, EngineStats, LegId, LegMode, MediaError, MediaEvent, RoomId};
pub use sdp::sdp_offer;

#[cfg(test)]
mod tests {
    #[test]
    fn engine_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<super::Engine>();
    }
}
