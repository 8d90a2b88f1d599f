//! confab-server: drives the confab-sip protocol crate with tokio.
//!
//! - [`transport`]: UDP, TCP, TLS and WebSocket sockets, framing, connection table (the
//!   only I/O, with [`udp`]'s batched receive); [`overload`]: when to shed new work;
//!   [`tls`]: certificates and the peer trust rules
//! - [`core`]: the request pipeline, transaction tables and timers (no I/O)
//! - [`proxy`], [`registrar`], [`presence`], [`im`]: the feature modules the pipeline
//!   dispatches to; [`privacy`]: Lync privacy relationships
//! - [`location`], [`users`]: registrations and the credentials cache
//! - [`server`]: wiring it together and running it

pub mod config;
pub mod core;
pub mod defence;
pub mod edge;
pub mod filters;
pub mod guard;
pub mod im;
pub mod location;
pub mod metrics;
pub mod net;
pub mod overload;
pub mod presence;
pub mod privacy;
pub mod proxy;
pub mod registrar;
pub mod server;
pub mod source_txns;
pub mod state;
pub mod timer_wheel;
pub mod tls;
pub mod transport;
pub mod udp;
pub mod users;
