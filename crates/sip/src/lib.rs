//! confab-sip: the SIP protocol with no I/O.
//!
//! Bytes in, messages out; messages in, bytes out; time is a parameter. The server
//! crate moves the bytes and keeps the clocks. Modules:
//! - [`parse`] / [`message`]: parser, framing, serializer, response building
//! - [`uri`], [`values`]: URIs and typed header values, borrowed from the message
//! - [`transaction`]: RFC 3261 §17 client and server transaction state machines
//! - [`digest`]: digest authentication (RFC 2617, RFC 7616) and nonces

pub mod digest;
pub mod header;
pub mod message;
pub mod parse;
pub mod pidf;
pub mod text;
pub mod transaction;
pub mod uri;
pub mod values;

pub use header::{Header, HeaderName, Headers};
pub use message::{response_to, Message, Method, StartLine};
pub use parse::{frame, parse_message, Frame, ParseError};
pub use text::Text;
pub use uri::{Scheme, Uri};
