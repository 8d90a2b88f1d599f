//! UDP and TCP transports: the only code here that touches sockets.
//!
//! Received bytes go to [`Core::handle`]; what the core wants sent comes back as
//! [`Outgoing`] and is written here. TCP connections (accepted or opened by us) are kept
//! in a table by id and by remote address, so responses and requests to a registered
//! client reuse the connection it opened (RFC 5626 flows); each has a bounded send queue.

use crate::config::{Listen, Transport};
use crate::core::Core;
use crate::net::{ConnId, Dest, Outgoing, Source};
use bytes::{Bytes, BytesMut};
use confab_sip::{frame, Frame};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

struct Conn {
    tx: mpsc::Sender<Bytes>,
    remote: SocketAddr,
}

#[derive(Default)]
struct ConnTable {
    by_id: HashMap<ConnId, Conn>,
    by_addr: HashMap<SocketAddr, ConnId>,
}

pub struct Transports {
    core: Arc<Core>,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    tcp: Vec<SocketAddr>,
    conns: Mutex<ConnTable>,
    next_conn: AtomicU64,
}

/// Binds a UDP socket with large kernel buffers (bursts of datagrams must not be dropped).
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

impl Transports {
    pub fn new(core: Arc<Core>, udp: Vec<(SocketAddr, Arc<UdpSocket>)>, tcp: Vec<SocketAddr>) -> Arc<Transports> {
        Arc::new(Transports { core, udp, tcp, conns: Mutex::new(ConnTable::default()), next_conn: AtomicU64::new(1) })
    }

    pub fn connection_count(&self) -> usize {
        self.conns.lock().by_id.len()
    }

    /// Receives datagrams on `sock` forever. Several of these run per socket so the
    /// work spreads over the runtime's worker threads.
    pub async fn udp_loop(self: Arc<Self>, local: SocketAddr, sock: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 65536];
        let mut out = Vec::with_capacity(8);
        loop {
            let (n, remote) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable and the like surface here on some systems
                    tracing::debug!("udp recv: {e}");
                    continue;
                }
            };
            if n == 0 {
                continue;
            }
            let src = Source { transport: Transport::Udp, local, remote, conn: None };
            self.handle_guarded(Bytes::copy_from_slice(&buf[..n]), &src, &mut out);
            self.dispatch(&mut out).await;
        }
    }

    pub async fn tcp_accept_loop(self: Arc<Self>, local: SocketAddr, listener: TcpListener) {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("tcp accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if self.connection_count() >= self.core.cfg.limits.tcp_max_connections {
                tracing::warn!(%remote, "refusing TCP connection: connection limit reached");
                continue;
            }
            if !self.core.defence.allow(remote.ip(), Instant::now()) {
                continue; // banned: the connection is dropped at once
            }
            let from_same = self.conns.lock().by_id.values().filter(|c| c.remote.ip() == remote.ip()).count();
            if from_same >= self.core.cfg.limits.tcp_max_connections_per_address {
                tracing::warn!(%remote, "refusing TCP connection: {from_same} already open from this address");
                continue;
            }
            self.clone().start_conn(stream, local, remote);
        }
    }

    /// Registers a connection and starts its reader and writer; returns its id.
    fn start_conn(self: Arc<Self>, stream: TcpStream, local: SocketAddr, remote: SocketAddr) -> (ConnId, mpsc::Sender<Bytes>) {
        let _ = stream.set_nodelay(true);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel::<Bytes>(self.core.cfg.limits.tcp_send_queue);
        {
            let mut t = self.conns.lock();
            t.by_id.insert(id, Conn { tx: tx.clone(), remote });
            t.by_addr.insert(remote, id);
        }
        let (mut rd, mut wr) = stream.into_split();
        // The writer drains the queue until every sender is gone (the table's is dropped on
        // close), so a last answer queued before closing still goes out; a peer that stops
        // reading cannot hold it forever.
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                match tokio::time::timeout(Duration::from_secs(10), wr.write_all(&b)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            let _ = wr.shutdown().await;
        });
        let me = self.clone();
        tokio::spawn(async move {
            me.read_conn(&mut rd, id, local, remote).await;
            me.close_conn(id);
        });
        (id, tx)
    }

    fn close_conn(&self, id: ConnId) {
        let mut t = self.conns.lock();
        if let Some(c) = t.by_id.remove(&id) {
            if t.by_addr.get(&c.remote) == Some(&id) {
                t.by_addr.remove(&c.remote);
            }
        }
        drop(t);
        self.core.connection_closed(id);
    }

    async fn read_conn(self: &Arc<Self>, rd: &mut tokio::net::tcp::OwnedReadHalf, id: ConnId, local: SocketAddr, remote: SocketAddr) {
        let max = self.core.max_message_bytes();
        let idle = Duration::from_secs(self.core.cfg.limits.tcp_idle_timeout);
        let src = Source { transport: Transport::Tcp, local, remote, conn: Some(id) };
        let mut buf = BytesMut::with_capacity(8192);
        let mut out = Vec::with_capacity(8);
        loop {
            // Frame everything already buffered.
            loop {
                match frame(&buf, max) {
                    Frame::Incomplete => break,
                    Frame::KeepAlive { len, pong } => {
                        let _ = buf.split_to(len);
                        if pong {
                            // RFC 5626 §4.4.1: answer a double-CRLF ping with a single CRLF.
                            self.send_on_conn(id, Bytes::from_static(b"\r\n"));
                        }
                    }
                    Frame::Message { len } => {
                        let msg = buf.split_to(len).freeze();
                        self.handle_guarded(msg, &src, &mut out);
                        self.dispatch(&mut out).await;
                    }
                    Frame::TooLarge { header_len } => {
                        if header_len > 0 {
                            let head = buf.split_to(header_len).freeze();
                            self.core.reply_unframable(head, &src, 513, "Message Too Large", &mut out);
                            self.dispatch(&mut out).await;
                        }
                        tracing::info!(%remote, "closing TCP connection: message larger than {max} bytes");
                        return;
                    }
                    Frame::Invalid { header_len, reason } => {
                        let head = buf.split_to(header_len).freeze();
                        self.core.reply_unframable(head, &src, 400, reason, &mut out);
                        self.dispatch(&mut out).await;
                        tracing::info!(%remote, "closing TCP connection: {reason}");
                        return;
                    }
                }
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(8192);
            }
            match tokio::time::timeout(idle, rd.read_buf(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => {
                    let pinned = self.core.pinned_until(id).is_some_and(|t| t > Instant::now());
                    if !pinned {
                        tracing::debug!(%remote, "closing idle TCP connection");
                        return;
                    }
                }
            }
        }
    }

    /// Runs the core on one message; a bug that panics loses that message, not the
    /// receive loop (which would silently stop serving the socket).
    fn handle_guarded(&self, data: Bytes, src: &Source, out: &mut Vec<Outgoing>) {
        let core = &self.core;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.handle(data.clone(), src, out)));
        if r.is_err() {
            out.clear();
            tracing::error!(peer = %src.remote, "internal error handling a message (dropped): {:?}", String::from_utf8_lossy(&data[..data.len().min(2000)]));
        }
    }

    /// Queues bytes on a connection; a full queue means the peer stopped reading: close it.
    fn send_on_conn(&self, id: ConnId, b: Bytes) -> bool {
        let tx = match self.conns.lock().by_id.get(&id) {
            Some(c) => c.tx.clone(),
            None => return false,
        };
        match tx.try_send(b) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(conn = id, "TCP send queue full; closing connection");
                self.close_conn(id);
                false
            }
            Err(_) => false,
        }
    }

    /// Sends everything in `out` (and empties it).
    pub async fn dispatch(self: &Arc<Self>, out: &mut Vec<Outgoing>) {
        for o in out.drain(..) {
            let ok = match o.dest.transport {
                Transport::Udp => self.send_udp(&o.dest, &o.bytes).await,
                Transport::Tcp => {
                    let existing = o.dest.conn.filter(|id| self.conns.lock().by_id.contains_key(id)).or_else(|| self.conns.lock().by_addr.get(&o.dest.addr).copied());
                    match existing {
                        Some(id) => self.send_on_conn(id, o.bytes.clone()),
                        None => {
                            // connect in the background; failures come back to the core
                            let me = self.clone();
                            let (dest, bytes, failure) = (o.dest, o.bytes, o.on_failure);
                            tokio::spawn(async move {
                                if !me.connect_and_send(dest, bytes).await {
                                    if let Some(f) = failure {
                                        me.report_failure(&f).await;
                                    }
                                }
                            });
                            continue;
                        }
                    }
                }
            };
            if !ok {
                if let Some(f) = o.on_failure {
                    self.report_failure(&f).await;
                }
            }
        }
    }

    /// Tells the core a request could not be sent and delivers what it answers (responses
    /// to the requester, which go over existing flows only, so this never recurses).
    async fn report_failure(&self, f: &crate::net::SendFailure) {
        let mut more = vec![];
        self.core.on_send_failure(f, &mut more);
        for m in more {
            if m.dest.transport == Transport::Udp {
                self.send_udp(&m.dest, &m.bytes).await;
            } else if let Some(id) = m.dest.conn.or_else(|| self.conns.lock().by_addr.get(&m.dest.addr).copied()) {
                self.send_on_conn(id, m.bytes);
            }
        }
    }

    async fn send_udp(&self, dest: &Dest, b: &[u8]) -> bool {
        let Some((_, sock)) = self.udp.iter().find(|(a, _)| a.is_ipv4() == dest.addr.is_ipv4()) else { return false };
        match sock.try_send_to(b, dest.addr) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => sock.send_to(b, dest.addr).await.is_ok(),
            Err(e) => {
                tracing::debug!(dest = %dest.addr, "udp send: {e}");
                false
            }
        }
    }

    async fn connect_and_send(self: &Arc<Self>, dest: Dest, b: Bytes) -> bool {
        let Some(local) = self.tcp.iter().copied().find(|a| a.is_ipv4() == dest.addr.is_ipv4()) else { return false };
        let stream = match tokio::time::timeout(Duration::from_secs(5), connect_from(local, dest.addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                tracing::info!(dest = %dest.addr, "TCP connect failed");
                return false;
            }
        };
        // Another task may have connected meanwhile; either connection works.
        let (_, tx) = self.clone().start_conn(stream, local, dest.addr);
        tx.try_send(b).is_ok()
    }

    pub fn listeners(&self) -> Vec<Listen> {
        self.udp
            .iter()
            .map(|(a, _)| Listen { transport: Transport::Udp, addr: *a })
            .chain(self.tcp.iter().map(|a| Listen { transport: Transport::Tcp, addr: *a }))
            .collect()
    }
}

/// Connects from our listening address (any port), so peers see the address they route to
/// us (a federation partner checks the source of a domain's requests).
async fn connect_from(local: SocketAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = if remote.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if !local.ip().is_unspecified() {
        sock.bind(SocketAddr::new(local.ip(), 0))?;
    }
    let stream = sock.connect(remote).await?;
    Ok(stream)
}
