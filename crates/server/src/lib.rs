//! confab-server: drives the confab-sip protocol crate with tokio.
//!
//! - [`transport`]: UDP, TCP, TLS and WebSocket sockets, framing, connection table (the
//!   only I/O, with [`udp`]'s batched receive); [`overload`]: when to shed new work;
//!   [`tls`]: certificates and the peer trust rules
//! - [`core`]: the transaction tables and timers (no I/O); [`pipeline`]: the request
//!   pipeline's stages (classify, authenticate, authorize, locate, forward);
//!   [`route_token`]: signed Record-Route entries and flow tokens
//! - [`proxy`], [`registrar`], [`presence`], [`im`]: the feature modules the pipeline
//!   dispatches to; [`privacy`]: Lync privacy relationships
//! - [`location`], [`users`]: registrations and the credentials cache
//! - [`server`]: wiring it together and running it

pub mod clock;
pub mod config;
pub mod core;
pub mod defence;
pub mod edge;
pub mod effects;
pub mod filters;
pub mod focus;
pub mod guard;
pub mod im;
pub mod location;
pub mod metrics;
pub mod net;
pub mod overload;
pub mod pipeline;
pub mod pool;
pub mod presence;
pub mod privacy;
pub mod proxy;
pub mod registrar;
pub mod route_token;
pub mod server;
pub mod source_txns;
pub mod state;
pub mod timer_wheel;
pub mod tls;
pub mod transport;
pub mod udp;
pub mod users;
pub mod voice;
