//! What the transports and the SIP core exchange: where a message came from and where
//! one must go. The core never touches a socket; it fills a list of [`Outgoing`].

use crate::config::Transport;
use bytes::Bytes;
use std::net::SocketAddr;

/// Identifies one TCP connection for its whole life (never reused).
pub type ConnId = u64;

/// Where a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub transport: Transport,
    /// Our socket's address (the listener that received it).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection, for stream transports.
    pub conn: Option<ConnId>,
    /// The transport is behind (the message waited longer than `limits.max_queue_delay_ms`):
    /// a request that would start new work is answered 503 instead.
    pub overloaded: bool,
}

/// A path to a peer: a transport and address, and the connection to reuse if it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dest {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub conn: Option<ConnId>,
}

impl Source {
    /// The flow the message arrived on, for answering or reaching the peer again.
    pub fn flow(&self) -> Dest {
        Dest {
            transport: self.transport,
            addr: self.remote,
            conn: self.conn,
        }
    }
}

/// Reported back to the core when a message could not be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    /// The Call-ID shard and client transaction key whose request failed.
    pub shard: usize,
    pub client_key: String,
}

#[derive(Debug)]
pub struct Outgoing {
    pub dest: Dest,
    pub bytes: Bytes,
    pub on_failure: Option<SendFailure>,
}
