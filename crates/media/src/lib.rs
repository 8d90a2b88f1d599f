//! confab's audio MCU: a sans-I/O core (RTP, SDP, codecs, jitter buffer, RFC 4733 events,
//! the mixer) and a driver (`engine`) that runs rooms on paced OS threads over UDP.
//! See docs/media.md.

pub mod codec;
pub mod dtmf;
pub mod jitter;
pub mod rtp;
pub mod sdp;

pub use codec::Codec;
pub use sdp::sdp_offer;
