//! UDP, TCP, TLS and WebSocket transports: the only code here that touches sockets.
//!
//! Received bytes go to [`Core::handle`]; what the core wants sent comes back as
//! [`Outgoing`] and is written here. Stream connections — TCP, TLS, WS and WSS, accepted
//! or (TCP, TLS) opened by us — are kept in one table by id and by transport and remote
//! address, so responses and requests to a registered client reuse the connection it
//! opened (RFC 5626 flows); each has a bounded send queue. TCP and TLS share the framing
//! code (Content-Length); a WebSocket carries one SIP message per frame (RFC 7118).

use crate::config::{Listen, Transport};
use crate::core::Core;
use crate::net::{ConnId, Dest, Outgoing, Source};
use crate::overload::{StandingQueue, StreamLoad};
use crate::tls::TlsContext;
use crate::udp::{recv_batch, RecvBatch};
use bytes::{Bytes, BytesMut};
use confab_sip::{frame, Frame};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

/// A TLS or WebSocket handshake that takes longer is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Conn {
    tx: mpsc::Sender<Bytes>,
    transport: Transport,
    remote: SocketAddr,
}

#[derive(Default)]
struct ConnTable {
    by_id: HashMap<ConnId, Conn>,
    by_addr: HashMap<(Transport, SocketAddr), ConnId>,
}

pub struct Transports {
    core: Arc<Core>,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    /// TCP, TLS, WS and WSS listeners (outgoing connections leave from their address).
    streams: Vec<Listen>,
    tls: Option<TlsContext>,
    conns: Mutex<ConnTable>,
    next_conn: AtomicU64,
}

/// Waits while a connection's send queue is more than half full, so that its reader, fed by
/// a peer sending requests back to back, does not outrun its writer (a full queue closes
/// the connection as stuck).
async fn let_writer_drain(own: &mpsc::Sender<Bytes>) {
    if own.capacity() >= own.max_capacity() / 2 {
        return;
    }
    tokio::task::yield_now().await;
    while own.capacity() < own.max_capacity() / 2 && !own.is_closed() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Bytes a stream reader asks for at a time (at least).
const READ_CHUNK: usize = 8192;

/// Bytes received on a TCP socket and not yet read (FIONREAD); 0 if unknown.
fn unread_bytes(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int; `fd` is a socket owned by the caller's stream.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r == 0 {
        n.max(0) as usize
    } else {
        0
    }
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
    crate::udp::enable_timestamps(&s);
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
    pub fn new(
        core: Arc<Core>,
        udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
        streams: Vec<Listen>,
        tls: Option<TlsContext>,
    ) -> Arc<Transports> {
        Arc::new(Transports {
            core,
            udp,
            streams,
            tls,
            conns: Mutex::new(ConnTable::default()),
            next_conn: AtomicU64::new(1),
        })
    }

    pub fn connection_count(&self) -> usize {
        self.conns.lock().by_id.len()
    }

    /// Everything confab counts, in Prometheus' text format (`GET /metrics`).
    pub fn render_metrics(&self) -> String {
        use crate::metrics::render_value;
        let core = &self.core;
        let mut s = String::with_capacity(8192);
        core.metrics.render_into(&mut s);
        let values: [(&str, &str, &str, f64); 8] = [
            ("confab_sip_requests_shed_total", "counter", "Requests answered 503 because the server was overloaded or its transaction table full.", core.shed_count() as f64),
            ("confab_sip_transactions", "gauge", "SIP transactions in progress (server and client).", core.transactions() as f64),
            ("confab_connections", "gauge", "Open TCP, TLS and WebSocket connections.", self.connection_count() as f64),
            ("confab_calls", "gauge", "Calls this server proxied that are up (answered, no BYE yet).", core.active_calls() as f64),
            ("confab_registrar_bindings", "gauge", "Registered contacts held by this server.", core.location.count_own_bindings() as f64),
            ("confab_pool_bindings", "gauge", "Registered contacts known in the whole pool (the shared location).", core.location.count_bindings() as f64),
            ("confab_presence_subscriptions", "gauge", "Active SUBSCRIBE dialogs (presence and watcher info).", core.presence.subscription_count() as f64),
            ("confab_presence_publications", "gauge", "Published presence documents.", core.presence.publication_count() as f64),
        ];
        for (name, kind, help, v) in values {
            render_value(&mut s, name, kind, help, v);
        }
        render_value(
            &mut s,
            "confab_meetings",
            "gauge",
            "Meetings in progress on this server.",
            core.focus.meetings() as f64,
        );
        render_value(
            &mut s,
            "confab_meeting_participants",
            "gauge",
            "Participants (lobby included) in meetings on this server.",
            core.focus.participants() as f64,
        );
        if let Some(m) = core.focus.media() {
            let st = m.stats();
            let mcu: [(&str, &str, &str, f64); 8] = [
                ("confab_mcu_legs", "gauge", "Audio legs in the MCU.", st.legs as f64),
                ("confab_mcu_rooms", "gauge", "Rooms the MCU mixes.", st.rooms as f64),
                ("confab_mcu_ticks_total", "counter", "20 ms mixing ticks run (all mixer threads).", st.ticks as f64),
                ("confab_mcu_late_ticks_total", "counter", "Mixing ticks that started more than 20 ms late or ran longer than 20 ms.", st.late_ticks as f64),
                ("confab_mcu_max_tick_seconds", "gauge", "The longest mixing tick's work.", st.max_tick_us as f64 / 1e6),
                ("confab_mcu_busy_seconds_total", "counter", "Time the mixer threads spent working.", st.busy_us as f64 / 1e6),
                ("confab_mcu_packets_dropped_total", "counter", "RTP/RTCP datagrams not used (wrong source, outside the client port range, malformed, oversized).", st.dropped_packets as f64),
                ("confab_mcu_encodes_total", "counter", "Audio frames encoded (own and shared).", st.encodes as f64),
            ];
            for (name, kind, help, v) in mcu {
                render_value(&mut s, name, kind, help, v);
            }
        }
        if let Some((rss, cpu)) = crate::metrics::process_usage() {
            render_value(
                &mut s,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss as f64,
            );
            render_value(
                &mut s,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
        }
        s
    }

    /// Receives datagrams on `sock` forever, a batch per system call. Several of these run
    /// per socket so the work spreads over the runtime's worker threads.
    ///
    /// Overload: while the socket queue stands above `limits.max_queue_delay_ms`
    /// ([`StandingQueue`]), a request that waited longer may be shed (503) by the core; one
    /// that waited longer than T1 is dropped unread, since its sender has retransmitted it
    /// by then. Responses are always handled: they finish work.
    pub async fn udp_loop(self: Arc<Self>, local: SocketAddr, sock: Arc<UdpSocket>) {
        let mut batch = RecvBatch::default();
        let mut out = Vec::with_capacity(8);
        let mut queue = StandingQueue::new(self.core.max_queue_delay());
        let stale_after = self.core.timers.t1;
        loop {
            if let Err(e) = sock.readable().await {
                tracing::debug!("udp readable: {e}");
                continue;
            }
            let received = Instant::now();
            let n = match recv_batch(&sock, &mut batch) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    // ICMP port unreachable and the like surface here on some systems
                    tracing::debug!("udp recv: {e}");
                    continue;
                }
            };
            for i in 0..n {
                let r = batch.meta[i];
                let data = batch.data(i);
                if data.is_empty() || (r.queued > stale_after && !data.starts_with(b"SIP/2.0 ")) {
                    continue;
                }
                let src = Source {
                    transport: Transport::Udp,
                    local,
                    remote: r.remote,
                    conn: None,
                    overloaded: queue.shed(r.queued, Instant::now()),
                };
                self.handle_guarded(Bytes::copy_from_slice(data), &src, &mut out);
                self.dispatch(&mut out).await;
                self.core
                    .metrics
                    .record_sojourn(Transport::Udp, r.queued + received.elapsed());
            }
        }
    }

    /// Accepts connections on a TCP, TLS, WS or WSS listener forever.
    pub async fn accept_loop(self: Arc<Self>, listen: Listen, listener: TcpListener) {
        let kind = listen.transport.as_str();
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("{kind} accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if self.connection_count() >= self.core.cfg.limits.tcp_max_connections {
                tracing::warn!(%remote, "refusing {kind} connection: connection limit reached");
                continue;
            }
            if !self.core.defence.allow(remote.ip(), Instant::now()) {
                continue; // banned: the connection is dropped at once
            }
            let from_same = self
                .conns
                .lock()
                .by_id
                .values()
                .filter(|c| c.remote.ip() == remote.ip())
                .count();
            if from_same >= self.core.cfg.limits.tcp_max_connections_per_address {
                tracing::warn!(%remote, "refusing {kind} connection: {from_same} already open from this address");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            // handshakes run beside the accept loop: a slow peer must not hold it
            tokio::spawn(async move { me.open_accepted(stream, listen, remote).await });
        }
    }

    async fn open_accepted(self: Arc<Self>, stream: TcpStream, listen: Listen, remote: SocketAddr) {
        let local = listen.addr;
        match listen.transport {
            Transport::Udp => {}
            Transport::Tcp => {
                let fd = stream.as_raw_fd();
                self.start_stream(stream, fd, Transport::Tcp, local, remote);
            }
            Transport::Tls | Transport::Wss => {
                let Some(tls) = &self.tls else { return };
                let s = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%remote, "TLS handshake with a peer failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "TLS handshake with a peer timed out");
                        return;
                    }
                };
                if listen.transport == Transport::Tls {
                    let fd = s.get_ref().0.as_raw_fd();
                    self.start_stream(s, fd, Transport::Tls, local, remote);
                } else {
                    self.accept_websocket(s, Transport::Wss, local, remote)
                        .await;
                }
            }
            Transport::Ws => {
                self.accept_websocket(stream, Transport::Ws, local, remote)
                    .await
            }
        }
    }

    /// The WebSocket handshake (RFC 7118 §4: the client must offer the "sip" subprotocol).
    async fn accept_websocket<S>(
        self: Arc<Self>,
        stream: S,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        use tungstenite::handshake::server::{ErrorResponse, Request, Response};
        #[allow(clippy::result_large_err)] // the signature tungstenite's callback has
        let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            let offers_sip = req
                .headers()
                .get_all("sec-websocket-protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim().eq_ignore_ascii_case("sip"));
            if !offers_sip {
                let mut e = ErrorResponse::new(Some(
                    "the WebSocket subprotocol \"sip\" is required (RFC 7118)".into(),
                ));
                *e.status_mut() = tungstenite::http::StatusCode::BAD_REQUEST;
                return Err(e);
            }
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                tungstenite::http::HeaderValue::from_static("sip"),
            );
            Ok(resp)
        };
        let max = self.core.max_message_bytes();
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)),
        )
        .await
        {
            Ok(Ok(ws)) => self.start_websocket(ws, transport, local, remote),
            Ok(Err(e)) => tracing::info!(%remote, "WebSocket handshake failed: {e}"),
            Err(_) => tracing::info!(%remote, "WebSocket handshake timed out"),
        }
    }

    /// Enters a connection in the table; returns its id, its queue's sender and receiver.
    fn register_conn(
        &self,
        transport: Transport,
        remote: SocketAddr,
    ) -> (ConnId, mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Bytes>(self.core.cfg.limits.tcp_send_queue);
        let mut t = self.conns.lock();
        t.by_id.insert(
            id,
            Conn {
                tx: tx.clone(),
                transport,
                remote,
            },
        );
        t.by_addr.insert((transport, remote), id);
        (id, tx, rx)
    }

    /// Registers a byte-stream connection (TCP or TLS) and starts its reader and writer.
    /// `fd` is the TCP socket under `stream` (for the reader's backlog check).
    fn start_stream<S>(
        self: &Arc<Self>,
        stream: S,
        fd: RawFd,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> (ConnId, mpsc::Sender<Bytes>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (id, tx, mut rx) = self.register_conn(transport, remote);
        let (mut rd, mut wr) = tokio::io::split(stream);
        // The writer drains the queue until every sender is gone (the table's is dropped on
        // close), so a last answer queued before closing still goes out; a peer that stops
        // reading cannot hold it forever.
        tokio::spawn(async move {
            // everything queued goes out in one write: a system call per message would make
            // the writer the bottleneck of a busy connection
            let (mut batch, mut joined) = (Vec::with_capacity(64), BytesMut::new());
            while rx.recv_many(&mut batch, 64).await > 0 {
                let bytes: &[u8] = if batch.len() == 1 {
                    &batch[0]
                } else {
                    joined.clear();
                    batch.iter().for_each(|b| joined.extend_from_slice(b));
                    &joined
                };
                // flush: TLS keeps written records in its session until then
                let write = async {
                    wr.write_all(bytes).await?;
                    wr.flush().await
                };
                let done = tokio::time::timeout(Duration::from_secs(10), write).await;
                batch.clear();
                if !matches!(done, Ok(Ok(()))) {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        let me = self.clone();
        let own = tx.clone();
        tokio::spawn(async move {
            let src = Source {
                transport,
                local,
                remote,
                conn: Some(id),
                overloaded: false,
            };
            me.read_stream(&mut rd, fd, &src, &own).await;
            me.close_conn(id);
        });
        (id, tx)
    }

    /// Registers a WebSocket connection: one SIP message per text or binary frame.
    fn start_websocket<S>(
        self: &Arc<Self>,
        ws: tokio_tungstenite::WebSocketStream<S>,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (id, own, mut rx) = self.register_conn(transport, remote);
        let (mut sink, mut frames) = ws.split();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                let m = match tungstenite::Utf8Bytes::try_from(b.clone()) {
                    Ok(text) => tungstenite::Message::Text(text),
                    Err(_) => tungstenite::Message::Binary(b),
                };
                match tokio::time::timeout(Duration::from_secs(10), sink.send(m)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            let _ = sink.close().await;
        });
        let me = self.clone();
        tokio::spawn(async move {
            let src = Source {
                transport,
                local,
                remote,
                conn: Some(id),
                overloaded: false,
            };
            let idle = Duration::from_secs(me.core.cfg.limits.tcp_idle_timeout);
            let mut out = Vec::with_capacity(8);
            loop {
                let msg = tokio::time::timeout(idle, frames.next()).await;
                let received = Instant::now();
                let msg = match msg {
                    Ok(Some(Ok(m))) => m,
                    Ok(Some(Err(e))) => {
                        tracing::info!(%remote, "closing WebSocket connection: {e}");
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        if me.core.pinned_until(id).is_some_and(|t| t > Instant::now()) {
                            continue;
                        }
                        tracing::debug!(%remote, "closing idle WebSocket connection");
                        break;
                    }
                };
                let data: Bytes = match msg {
                    tungstenite::Message::Text(t) => t.into(),
                    tungstenite::Message::Binary(b) => b,
                    tungstenite::Message::Close(_) => break,
                    _ => continue, // ping/pong are answered by tungstenite
                };
                if data.iter().all(|b| b.is_ascii_whitespace()) {
                    continue; // keep-alive
                }
                me.handle_guarded(data, &src, &mut out);
                me.dispatch(&mut out).await;
                me.core
                    .metrics
                    .record_sojourn(src.transport, received.elapsed());
                let_writer_drain(&own).await;
            }
            drop(own);
            me.close_conn(id);
        });
    }
    fn close_conn(&self, id: ConnId) {
        let mut t = self.conns.lock();
        if let Some(c) = t.by_id.remove(&id) {
            if t.by_addr.get(&(c.transport, c.remote)) == Some(&id) {
                t.by_addr.remove(&(c.transport, c.remote));
            }
        }
        drop(t);
        self.core.connection_closed(id);
    }

    /// Reads and frames SIP messages from a TCP or TLS connection until it closes.
    ///
    /// Overload: what is received and not yet handled (in the socket `fd` and in our
    /// buffer), times the measured cost of handling a byte, is how long the newest message
    /// will wait ([`StreamLoad`]); while that stands above `limits.max_queue_delay_ms`
    /// ([`StandingQueue`]), new work is shed (503). Nothing is dropped: TCP's flow control
    /// slows a sender we cannot keep up with.
    ///
    /// `own` is this connection's send queue: reading pauses while it is more than half full,
    /// so a peer sending requests back to back cannot make us outrun our own writer (a full
    /// queue means a stuck peer, and closes the connection).
    async fn read_stream<R: AsyncRead + Unpin>(
        self: &Arc<Self>,
        rd: &mut R,
        fd: RawFd,
        src: &Source,
        own: &mpsc::Sender<Bytes>,
    ) {
        let mut queue = StandingQueue::new(self.core.max_queue_delay());
        let mut load = StreamLoad::default();
        let max = self.core.max_message_bytes();
        let idle = Duration::from_secs(self.core.cfg.limits.tcp_idle_timeout);
        let (id, remote, kind) = (
            src.conn.unwrap_or_default(),
            src.remote,
            src.transport.as_str(),
        );
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut out = Vec::with_capacity(8);
        let mut read_at = Instant::now();
        loop {
            // Frame everything already buffered.
            let waited = load.delay(unread_bytes(fd) + buf.len());
            let overloaded = queue.shed(waited, Instant::now());
            let (mut handled, mut busy) = (0, Duration::ZERO);
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
                        let src = Source { overloaded, ..*src };
                        let t0 = Instant::now();
                        self.handle_guarded(msg, &src, &mut out);
                        self.dispatch(&mut out).await;
                        let done = Instant::now();
                        self.core
                            .metrics
                            .record_sojourn(src.transport, done - read_at);
                        (handled, busy) = (handled + len, busy + (done - t0));
                        let_writer_drain(own).await;
                    }
                    Frame::TooLarge { header_len } => {
                        if header_len > 0 {
                            let head = buf.split_to(header_len).freeze();
                            self.core.reply_unframable(
                                head,
                                src,
                                513,
                                "Message Too Large",
                                &mut out,
                            );
                            self.dispatch(&mut out).await;
                        }
                        tracing::info!(%remote, "closing {kind} connection: message larger than {max} bytes");
                        return;
                    }
                    Frame::Invalid { header_len, reason } => {
                        let head = buf.split_to(header_len).freeze();
                        self.core.reply_unframable(head, src, 400, reason, &mut out);
                        self.dispatch(&mut out).await;
                        tracing::info!(%remote, "closing {kind} connection: {reason}");
                        return;
                    }
                }
            }
            load.record(handled, busy);
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(READ_CHUNK);
            }
            match tokio::time::timeout(idle, rd.read_buf(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => read_at = Instant::now(),
                Err(_) => {
                    let pinned = self
                        .core
                        .pinned_until(id)
                        .is_some_and(|t| t > Instant::now());
                    if !pinned {
                        tracing::debug!(%remote, "closing idle {kind} connection");
                        return;
                    }
                }
            }
        }
    }

    /// Runs the core on one message under the panic guard (guard.rs).
    fn handle_guarded(&self, data: Bytes, src: &Source, out: &mut Vec<Outgoing>) {
        crate::guard::handle(&self.core, data, src, out);
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
                tracing::warn!(conn = id, "send queue full; closing connection");
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
                _ => {
                    let existing = o
                        .dest
                        .conn
                        .filter(|id| self.conns.lock().by_id.contains_key(id))
                        .or_else(|| {
                            self.conns
                                .lock()
                                .by_addr
                                .get(&(o.dest.transport, o.dest.addr))
                                .copied()
                        });
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

    /// Tells the core a request could not be sent and delivers what it answers: responses
    /// to the requester, and a failover's request to the next gateway, which may need a
    /// connection of its own and fail in turn (a loop, not recursion: each gateway is tried
    /// once per call, and the loop is bounded besides).
    async fn report_failure(self: &Arc<Self>, f: &crate::net::SendFailure) {
        let mut failed = vec![f.clone()];
        for _ in 0..32 {
            let Some(f) = failed.pop() else {
                return;
            };
            let mut more = vec![];
            self.core.on_send_failure(&f, &mut more);
            for m in more {
                let existing = m.dest.conn.or_else(|| {
                    self.conns
                        .lock()
                        .by_addr
                        .get(&(m.dest.transport, m.dest.addr))
                        .copied()
                });
                let ok = if m.dest.transport == Transport::Udp {
                    self.send_udp(&m.dest, &m.bytes).await
                } else if let Some(id) = existing {
                    self.send_on_conn(id, m.bytes)
                } else {
                    self.connect_and_send(m.dest, m.bytes).await
                };
                if let (false, Some(f)) = (ok, m.on_failure) {
                    failed.push(f);
                }
            }
        }
    }

    async fn send_udp(&self, dest: &Dest, b: &[u8]) -> bool {
        let Some((_, sock)) = self
            .udp
            .iter()
            .find(|(a, _)| a.is_ipv4() == dest.addr.is_ipv4())
        else {
            return false;
        };
        match sock.try_send_to(b, dest.addr) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                sock.send_to(b, dest.addr).await.is_ok()
            }
            Err(e) => {
                tracing::debug!(dest = %dest.addr, "udp send: {e}");
                false
            }
        }
    }

    /// Opens a TCP or TLS connection to `dest` (never WebSocket: browsers connect to us)
    /// from the address of our listener of that transport, and queues `b` on it.
    async fn connect_and_send(self: &Arc<Self>, dest: Dest, b: Bytes) -> bool {
        if dest.transport.is_websocket() {
            return false;
        }
        let Some(local) = self
            .streams
            .iter()
            .find(|l| l.transport == dest.transport && l.addr.is_ipv4() == dest.addr.is_ipv4())
            .map(|l| l.addr)
        else {
            return false;
        };
        let connect = async {
            let sock = if dest.addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            // from our listener's address, so a peer checking where a domain's traffic comes
            // from (federation) sees the address its route names
            if !local.ip().is_unspecified() {
                sock.bind(SocketAddr::new(local.ip(), 0))?;
            }
            sock.connect(dest.addr).await
        };
        let stream = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(s)) => s,
            _ => {
                tracing::info!(dest = %dest.addr, "{} connect failed", dest.transport.as_str());
                return false;
            }
        };
        let _ = stream.set_nodelay(true);
        // Another task may have connected meanwhile; either connection works.
        let (_, tx) = if dest.transport == Transport::Tls {
            let Some(tls) = &self.tls else { return false };
            let name = crate::tls::server_name_for(&b, dest.addr.ip());
            match tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tls.connector.connect(name.clone(), stream),
            )
            .await
            {
                Ok(Ok(s)) => {
                    let fd = s.get_ref().0.as_raw_fd();
                    self.start_stream(s, fd, Transport::Tls, local, dest.addr)
                }
                Ok(Err(e)) => {
                    tracing::info!(dest = %dest.addr, name = name.to_str().as_ref(), "TLS connection refused: {e}");
                    return false;
                }
                Err(_) => {
                    tracing::info!(dest = %dest.addr, "TLS handshake timed out");
                    return false;
                }
            }
        } else {
            let fd = stream.as_raw_fd();
            self.start_stream(stream, fd, Transport::Tcp, local, dest.addr)
        };
        tx.try_send(b).is_ok()
    }

    pub fn listeners(&self) -> Vec<Listen> {
        self.udp
            .iter()
            .map(|(a, _)| Listen {
                transport: Transport::Udp,
                addr: *a,
            })
            .chain(self.streams.iter().copied())
            .collect()
    }
}
