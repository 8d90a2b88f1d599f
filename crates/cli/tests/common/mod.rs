//! Test support: start a real `confab serve` on loopback, and a small SIP user agent
//! (over UDP, TCP, TLS, WS or WSS) that builds requests, answers, and does digest
//! authentication.
#![allow(dead_code)]

pub mod browser;
pub mod gateway;
pub mod pg;
pub mod presence;
pub mod sipp;

use bytes::Bytes;
use confab_sip::digest::{authorization, Challenge};
use confab_sip::{frame, parse_message, response_to, Frame, HeaderName, Message, Method, Text};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const DOMAIN: &str = "example.test";

pub fn confab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_confab"))
}

/// A free port on 127.0.0.1 for both UDP and TCP.
pub fn free_port(ip: &str) -> u16 {
    for _ in 0..100 {
        let u = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(SocketAddr::new(ip.parse().unwrap(), port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A running `confab serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub ip: String,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    cfg: PathBuf,
}

impl Server {
    pub fn data(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.parse().unwrap(), self.port)
    }

    /// Seeds `users` benchmark users and starts the server with `config` (TOML) on 127.0.0.1.
    pub fn start(users: u32, config: &str) -> Server {
        Self::start_on("127.0.0.1", users, config)
    }

    pub fn start_on(ip: &str, users: u32, config: &str) -> Server {
        Self::start_with(ip, free_port(ip), users, config)
    }

    pub fn start_with(ip: &str, port: u16, users: u32, config: &str) -> Server {
        Self::start_full(ip, port, DOMAIN, &[], users, config)
    }

    /// Starts a server for `domain` (users seeded in that domain).
    pub fn start_for(domain: &str, ip: &str, port: u16, users: u32, config: &str) -> Server {
        Self::start_full(ip, port, domain, &[], users, config)
    }

    /// Serves `domain` on UDP and TCP `ip:port` and the `extra_listen` entries (e.g.
    /// "tls:127.0.0.1:5061"), with `users` seeded users of that domain.
    pub fn start_full(
        ip: &str,
        port: u16,
        domain: &str,
        extra_listen: &[String],
        users: u32,
        config: &str,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let st = confab()
            .args([
                "user",
                "seed",
                "--init",
                "--domain",
                domain,
                "--count",
                &users.to_string(),
                "--data",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let cfg = dir.path().join("confab.toml");
        let listen = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let listen: Vec<String> = std::iter::once(listen)
            .chain(extra_listen.iter().cloned())
            .map(|l| format!("\"{l}\""))
            .collect();
        std::fs::write(
            &cfg,
            format!(
                "listen = [{}]\ndomains = [\"{domain}\"]\n{config}",
                listen.join(", ")
            ),
        )
        .unwrap();
        let log = dir.path().join("server.log");
        let child = Self::spawn(&cfg, dir.path(), &log);
        let s = Server {
            child,
            port,
            ip: ip.to_string(),
            dir,
            log,
            cfg,
        };
        s.wait_ready();
        s
    }

    fn spawn(cfg: &std::path::Path, data: &std::path::Path, log: &std::path::Path) -> Child {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        confab()
            .args(["serve", "--config"])
            .arg(cfg)
            .arg("--data")
            .arg(data)
            .args(["--workers", "2", "--sip-trace"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .unwrap()
    }

    /// Stops the server (SIGKILL: nothing is flushed on purpose) and starts it again on
    /// the same data and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.cfg, self.dir.path(), &self.log);
        self.wait_ready();
    }

    /// Stops the server with SIGTERM (a graceful stop: it saves its state) and starts it
    /// again on the same data and port.
    pub fn restart_graceful(&mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "confab did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Self::spawn(&self.cfg, self.dir.path(), &self.log);
        self.wait_ready();
    }

    /// Runs a `confab` command against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = confab()
            .args(args)
            .arg("--data")
            .arg(self.dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + String::from_utf8_lossy(&out.stderr).as_ref();
        assert!(out.status.success(), "confab {args:?} failed: {text}");
        text
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ua = Ua::udp_on(&self.ip, "probe", self.addr());
        while Instant::now() < deadline {
            let req = ua.request(
                Method::Options,
                &format!("sip:{}", host_port(&self.addr())),
                &format!("sip:{}", host_port(&self.addr())),
            );
            ua.send(&req);
            if let Some(r) = ua.recv_timeout(Duration::from_millis(200)) {
                if r.status() == Some(200) {
                    return;
                }
            }
        }
        panic!("confab did not start:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the server's log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        wait_until(
            &format!("the log to show {needle:?}"),
            Duration::from_secs(10),
            || self.log_text().contains(needle),
        );
    }

    /// Waits (bounded) until the running server has loaded the contact lists the store
    /// holds now (it looks for changes every second).
    /// How often the server has reloaded its user list (a mark for [`Server::wait_users_reloaded`]).
    pub fn user_reloads(&self) -> usize {
        self.log_text()
            .matches("user list reloaded from the store")
            .count()
    }

    /// Waits until the server reloads its user list after the mark `before`.
    pub fn wait_users_reloaded(&self, before: usize) {
        wait_until(
            "the server reloads its users",
            Duration::from_secs(15),
            || self.user_reloads() > before,
        );
    }

    pub fn wait_contacts_loaded(&self) {
        let v = confab_store::Store::open(self.data())
            .unwrap()
            .contacts_version()
            .unwrap();
        self.wait_for_log(&format!("contact lists loaded (contacts version {v})"));
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: String = log
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!("---- confab log (tail) ----\n{tail}");
        }
    }
}

/// Polls `cond` (every 50 ms) until it holds; fails naming `what` once `within` has passed.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn host_port(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// A free port in `range` on 127.0.0.1 (for clients that mishandle long port numbers).
pub fn free_port_in(range: std::ops::Range<u16>) -> u16 {
    range
        .into_iter()
        .find(|p| {
            UdpSocket::bind(("127.0.0.1", *p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
        })
        .expect("a free port in range")
}

static UNIQUE: AtomicU32 = AtomicU32::new(1);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A byte stream over TCP: plain or TLS.
pub trait StreamSock: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
}

impl StreamSock for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl StreamSock for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// What a WebSocket runs on.
pub struct WsStream(pub Box<dyn StreamSock>);

impl Read for WsStream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(b)
    }
}

impl Write for WsStream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

enum Sock {
    Udp(UdpSocket),
    /// TCP or TLS ("TCP" / "TLS"), with its receive buffer.
    Stream(Box<dyn StreamSock>, Vec<u8>, &'static str),
    /// WS or WSS: one message per frame.
    Ws(Box<tungstenite::WebSocket<WsStream>>, &'static str),
}

/// A minimal SIP user agent for tests.
pub struct Ua {
    pub user: String,
    /// The user's domain (the part after @ in its address of record).
    pub domain: String,
    sock: Sock,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub call_id: String,
    pub from_tag: String,
    cseq: u32,
    pub password: String,
    /// Requests and responses received but not yet consumed.
    backlog: Vec<Message>,
}

impl Ua {
    pub fn udp(user: &str, server: SocketAddr) -> Ua {
        let ip = server.ip().to_string();
        Self::udp_on(&ip, user, server)
    }

    pub fn udp_on(ip: &str, user: &str, server: SocketAddr) -> Ua {
        let bind = if ip.contains(':') {
            format!("[{ip}]:0")
        } else {
            format!("{ip}:0")
        };
        let s = UdpSocket::bind(bind).unwrap();
        let local = s.local_addr().unwrap();
        Self::with(user, Sock::Udp(s), local, server)
    }

    pub fn tcp(user: &str, server: SocketAddr) -> Ua {
        Self::from_tcp(user, TcpStream::connect(server).unwrap(), server)
    }

    /// A user agent on a TCP connection already made (e.g. from a chosen local address).
    pub fn from_tcp(user: &str, s: TcpStream, server: SocketAddr) -> Ua {
        s.set_nodelay(true).unwrap();
        let local = s.local_addr().unwrap();
        Self::with(
            user,
            Sock::Stream(Box::new(s), vec![], "TCP"),
            local,
            server,
        )
    }

    /// A TLS connection to `server`, whose certificate `config` checks.
    pub fn tls(user: &str, server: SocketAddr, config: std::sync::Arc<rustls::ClientConfig>) -> Ua {
        let s = TcpStream::connect(server).unwrap();
        s.set_nodelay(true).unwrap();
        let local = s.local_addr().unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(server.ip().into());
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        s_handshake(&mut tls);
        Self::with(
            user,
            Sock::Stream(Box::new(tls), vec![], "TLS"),
            local,
            server,
        )
    }

    /// A WebSocket (RFC 7118, subprotocol "sip") to `server`: over TLS when `tls` is given.
    pub fn ws(
        user: &str,
        server: SocketAddr,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Ua {
        let s = TcpStream::connect(server).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let local = s.local_addr().unwrap();
        let (inner, scheme, kind): (Box<dyn StreamSock>, _, _) = match tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(server.ip().into());
                let mut t = rustls::StreamOwned::new(
                    rustls::ClientConnection::new(config, name).unwrap(),
                    s,
                );
                s_handshake(&mut t);
                (Box::new(t), "wss", "WSS")
            }
            None => (Box::new(s), "ws", "WS"),
        };
        let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{scheme}://{}/",
            host_port(&server)
        ))
        .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        let (ws, resp) = tungstenite::client::client(req, WsStream(inner))
            .unwrap_or_else(|e| panic!("WebSocket handshake failed: {e}"));
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("sip"),
            "RFC 7118 subprotocol"
        );
        Self::with(user, Sock::Ws(Box::new(ws), kind), local, server)
    }

    fn with(user: &str, sock: Sock, local: SocketAddr, server: SocketAddr) -> Ua {
        Ua {
            user: user.to_string(),
            domain: DOMAIN.to_string(),
            sock,
            local,
            server,
            call_id: unique("call-"),
            from_tag: unique("tag"),
            cseq: 0,
            password: format!("pw-{user}"),
            backlog: vec![],
        }
    }

    pub fn transport(&self) -> &'static str {
        match self.sock {
            Sock::Udp(_) => "UDP",
            Sock::Stream(_, _, t) | Sock::Ws(_, t) => t,
        }
    }

    /// The host of our Via and Contact: a WebSocket client has no reachable address
    /// (RFC 7118 §5.2: a `.invalid` name).
    fn sent_by(&self) -> String {
        match self.sock {
            Sock::Ws(..) => format!("{}.invalid", self.user),
            _ => host_port(&self.local),
        }
    }

    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    pub fn contact_uri(&self) -> String {
        format!(
            "sip:{}@{};transport={}",
            self.user,
            self.sent_by(),
            self.transport().to_lowercase()
        )
    }

    pub fn new_call(&mut self) {
        self.call_id = unique("call-");
        self.from_tag = unique("tag");
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        match &mut self.sock {
            Sock::Udp(s) => {
                s.send_to(b, self.server).unwrap();
            }
            Sock::Stream(s, _, _) => {
                s.write_all(b).unwrap();
                s.flush().unwrap();
            }
            Sock::Ws(ws, _) => {
                let text = String::from_utf8(b.to_vec()).expect("SIP text");
                ws.send(tungstenite::Message::text(text)).unwrap();
            }
        }
    }

    pub fn send(&mut self, m: &Message) {
        let b = m.to_bytes();
        self.send_raw(&b);
    }

    /// Next message from the network (not the backlog).
    fn recv_net(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        match &mut self.sock {
            Sock::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .unwrap();
                    match s.recv_from(&mut buf) {
                        Ok((n, _)) => {
                            // answers to broken requests may themselves lack headers: keep what parsed
                            match parse_message(Bytes::copy_from_slice(&buf[..n])) {
                                Ok(m) => return Some(m),
                                Err(e) => {
                                    if let Some(p) = e.partial {
                                        return Some(*p);
                                    }
                                }
                            }
                        }
                        Err(_) => return None,
                    }
                }
            }
            Sock::Ws(ws, _) => loop {
                let left = deadline.checked_duration_since(Instant::now())?;
                ws.get_ref()
                    .0
                    .tcp()
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let data: Vec<u8> = match ws.read() {
                    Ok(tungstenite::Message::Text(t)) => t.as_bytes().to_vec(),
                    Ok(tungstenite::Message::Binary(b)) => b.to_vec(),
                    Ok(_) => continue,
                    Err(_) => return None,
                };
                return match parse_message(Bytes::from(data)) {
                    Ok(m) => Some(m),
                    Err(e) => e.partial.map(|p| *p),
                };
            },
            Sock::Stream(s, buf, _) => loop {
                match frame(buf, 1 << 20) {
                    Frame::Message { len } => {
                        let b: Vec<u8> = buf.drain(..len).collect();
                        return match parse_message(Bytes::from(b)) {
                            Ok(m) => Some(m),
                            Err(e) => e.partial.map(|p| *p),
                        };
                    }
                    Frame::KeepAlive { len, .. } => {
                        buf.drain(..len);
                        continue;
                    }
                    Frame::Incomplete => {}
                    other => panic!("bad frame from server: {other:?}"),
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                s.tcp()
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let mut chunk = [0u8; 8192];
                match s.read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) => return None,
                }
            },
        }
    }

    /// Keeps a message received for a later `expect` / `recv_timeout`.
    pub fn keep(&mut self, m: Message) {
        self.backlog.push(m);
    }

    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Message> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        self.recv_net(timeout)
    }

    /// Waits for a message matching `pred`, keeping the others for later.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        self.expect_within(what, Duration::from_secs(5), pred)
    }

    /// `expect` with its own bound (a server that first speaks a prompt, say).
    pub fn expect_within(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&Message) -> bool,
    ) -> Message {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(m) = self.recv_net(left) {
                if pred(&m) {
                    return m;
                }
                self.backlog.push(m);
            }
        }
        panic!(
            "{}: timed out waiting for {what}; had {:?}",
            self.user,
            self.backlog.iter().map(first_line).collect::<Vec<_>>()
        );
    }

    pub fn expect_request(&mut self, method: Method) -> Message {
        let m2 = method.clone();
        self.expect(&format!("{method} request"), move |m| {
            m.method() == Some(&m2)
        })
    }

    /// The response to the request with CSeq `cseq` and `method` with status in `range`.
    pub fn expect_response(
        &mut self,
        method: &Method,
        cseq: u32,
        status: std::ops::RangeInclusive<u16>,
    ) -> Message {
        let m2 = method.clone();
        self.expect(&format!("{status:?} to {method} {cseq}"), move |m| {
            m.status().is_some_and(|s| status.contains(&s))
                && m.cseq().is_some_and(|c| c.seq == cseq && c.method == m2)
        })
    }

    /// Asserts that nothing arrives for `d`.
    pub fn expect_silence(&mut self, d: Duration) {
        if let Some(m) = self.recv_timeout(d) {
            panic!("{}: expected nothing, got {}", self.user, first_line(&m));
        }
    }

    pub fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    pub fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch=z9hG4bK{};rport",
            self.transport(),
            self.sent_by(),
            unique("b")
        )
    }

    /// A new out-of-dialog request from this user.
    pub fn request(&mut self, method: Method, ruri: &str, to: &str) -> Message {
        let seq = self.next_cseq();
        let mut m = Message::request(method.clone(), Text::from(ruri));
        m.headers.push(HeaderName::Via, self.via());
        m.headers.push(HeaderName::MaxForwards, "70");
        m.headers.push(
            HeaderName::From,
            format!("<{}>;tag={}", self.aor(), self.from_tag),
        );
        m.headers.push(HeaderName::To, format!("<{to}>"));
        m.headers.push(HeaderName::CallId, self.call_id.clone());
        m.headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        m.headers
            .push(HeaderName::Contact, format!("<{}>", self.contact_uri()));
        m
    }

    /// Re-issues `req` with credentials for the challenge in `resp` (new branch and CSeq).
    pub fn authorize(&mut self, req: &Message, resp: &Message) -> Message {
        let (chal_name, auth_name) = if resp.status() == Some(401) {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        } else {
            (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            )
        };
        let challenge =
            Challenge::parse(resp.header(&chal_name).expect("challenge header")).unwrap();
        let mut m = req.clone();
        let method = m.method().unwrap().clone();
        let uri = m.uri().unwrap().to_string();
        let seq = self.next_cseq();
        m.headers.set(HeaderName::CSeq, format!("{seq} {method}"));
        m.headers.remove_all(&HeaderName::Via);
        m.headers.push_front(HeaderName::Via, self.via());
        m.headers.remove_all(&auth_name);
        m.headers.push(
            auth_name,
            authorization(
                &challenge,
                &self.user,
                &self.password,
                method.as_str(),
                &uri,
                &unique("cn"),
                1,
            ),
        );
        m
    }

    /// Sends `req`, answering a 401/407 challenge once; returns the final response.
    pub fn send_authenticated(&mut self, req: Message) -> Message {
        self.send(&req);
        let method = req.method().unwrap().clone();
        let seq = req.cseq().unwrap().seq;
        let r = self.expect_response(&method, seq, 200..=699);
        if !matches!(r.status(), Some(401 | 407)) {
            return r;
        }
        let again = self.authorize(&req, &r);
        let seq = again.cseq().unwrap().seq;
        self.send(&again);
        self.expect_response(&method, seq, 200..=699)
    }

    pub fn register(&mut self, expires: u32) -> Message {
        let mut req = self.request(
            Method::Register,
            &format!("sip:{}", self.domain),
            &self.aor(),
        );
        req.headers.push(HeaderName::Expires, expires.to_string());
        self.send_authenticated(req)
    }

    /// Answers a received request.
    pub fn reply(&mut self, req: &Message, status: u16, to_tag: &str) -> Message {
        let mut r = response_to(req, status, None, Some(to_tag));
        r.headers
            .push(HeaderName::Contact, format!("<{}>", self.contact_uri()));
        self.send(&r);
        r
    }
}

pub fn first_line(m: &Message) -> String {
    match m.status() {
        Some(s) => format!("{s} {}", m.reason().unwrap()),
        None => format!("{} {}", m.method().unwrap(), m.uri().unwrap()),
    }
}

pub fn contacts(m: &Message) -> Vec<String> {
    m.headers
        .get_all(&HeaderName::Contact)
        .map(|c| c.to_string())
        .collect()
}

impl Ua {
    /// Sends `req`, expects a 401/407 challenge (ACKing it for INVITE), and sends the request
    /// again with credentials. Returns the request as finally sent.
    pub fn challenge_and_resend(&mut self, req: Message) -> Message {
        self.send(&req);
        let method = req.method().unwrap().clone();
        let seq = req.cseq().unwrap().seq;
        let r = self.expect_response(&method, seq, 200..=699);
        assert!(
            matches!(r.status(), Some(401 | 407)),
            "expected a challenge, got {}",
            first_line(&r)
        );
        if method == Method::Invite {
            self.send(&ack_for(&req, &r));
        }
        let again = self.authorize(&req, &r);
        self.send(&again);
        again
    }

    /// An in-dialog request: `target` is the peer's Contact, `routes` the route set.
    #[allow(clippy::too_many_arguments)]
    pub fn in_dialog(
        &mut self,
        method: Method,
        target: &str,
        routes: &[String],
        from: &str,
        to: &str,
        call_id: &str,
        seq: u32,
    ) -> Message {
        let mut m = Message::request(method.clone(), Text::from(target));
        m.headers.push(HeaderName::Via, self.via());
        m.headers.push(HeaderName::MaxForwards, "70");
        for r in routes {
            m.headers.push(HeaderName::Route, r.clone());
        }
        m.headers.push(HeaderName::From, from.to_string());
        m.headers.push(HeaderName::To, to.to_string());
        m.headers.push(HeaderName::CallId, call_id.to_string());
        m.headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        m
    }
}

/// ACK for a non-2xx final response: same branch as the INVITE (hop by hop).
pub fn ack_for(invite: &Message, resp: &Message) -> Message {
    let mut ack = Message::request(Method::Ack, invite.uri().unwrap().clone());
    ack.headers.push(
        HeaderName::Via,
        invite.header(&HeaderName::Via).unwrap().clone(),
    );
    ack.headers.push(HeaderName::MaxForwards, "70");
    ack.headers.push(
        HeaderName::From,
        invite.header(&HeaderName::From).unwrap().clone(),
    );
    ack.headers.push(
        HeaderName::To,
        resp.header(&HeaderName::To).unwrap().clone(),
    );
    ack.headers
        .push(HeaderName::CallId, invite.call_id().unwrap().clone());
    ack.headers.push(
        HeaderName::CSeq,
        format!("{} ACK", invite.cseq().unwrap().seq),
    );
    ack
}

pub fn sdp(ua: &Ua) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", ua.local.port() + 1)
}

/// The URI inside `<...>` of a name-addr value.
pub fn uri_of(v: &str) -> String {
    confab_sip::values::NameAddr::parse(v)
        .unwrap()
        .uri_str
        .to_string()
}

/// Completes a TLS client handshake (the server's verdict on a client certificate may
/// only show at the first read).
fn s_handshake(t: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) {
    t.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while t.conn.is_handshaking() {
        if t.conn.complete_io(&mut t.sock).is_err() {
            return;
        }
    }
}

/// alice calls bob through confab (INVITE/100/180/200/ACK, BYE/200) and checks the proxy's
/// part: Record-Route with `lr`, the route sets of both sides, and, when `transport` is
/// given, that every hop to and from confab uses it (Via and Record-Route say so).
pub fn call(alice: &mut Ua, bob: &mut Ua, transport: Option<&str>) {
    call_with(alice, bob, transport, || {})
}

/// [`call`], running `during` while the call is up (after the ACK, before the BYE).
pub fn call_with(alice: &mut Ua, bob: &mut Ua, transport: Option<&str>, during: impl FnOnce()) {
    let target = bob.aor();
    let mut inv = alice.request(Method::Invite, &target, &target);
    inv.set_body("application/sdp", sdp(alice));
    let inv = alice.challenge_and_resend(inv);
    let seq = inv.cseq().unwrap().seq;
    alice.expect_response(&Method::Invite, seq, 100..=100);
    let got = bob.expect_request(Method::Invite);
    let rr: Vec<String> = got
        .headers
        .get_all(&HeaderName::RecordRoute)
        .map(|v| v.to_string())
        .collect();
    assert!(!rr.is_empty(), "INVITE is record-routed");
    assert!(rr[0].contains(";lr"), "{rr:?}");
    if let Some(t) = transport {
        assert!(
            got.header(&HeaderName::Via)
                .unwrap()
                .starts_with(&format!("SIP/2.0/{t} ")),
            "{:?}",
            got.header(&HeaderName::Via)
        );
        assert!(
            rr.iter()
                .all(|r| r.contains(&format!(";transport={}", t.to_lowercase()))),
            "{rr:?}"
        );
    }
    bob.reply(&got, 180, "bobtag");
    let ringing = alice.expect_response(&Method::Invite, seq, 180..=180);
    assert_eq!(ringing.to_hdr().unwrap().tag(), Some("bobtag"));
    let mut ok = response_to(&got, 200, None, Some("bobtag"));
    ok.headers
        .push(HeaderName::Contact, format!("<{}>", bob.contact_uri()));
    for r in &rr {
        ok.headers.push(HeaderName::RecordRoute, r.clone());
    }
    ok.set_body("application/sdp", sdp(bob));
    bob.send(&ok);
    let ok = alice.expect_response(&Method::Invite, seq, 200..=200);
    // the caller's route set is the Record-Route reversed
    let mut routes: Vec<String> = ok
        .headers
        .get_all(&HeaderName::RecordRoute)
        .map(|v| v.to_string())
        .collect();
    routes.reverse();
    let bob_target = uri_of(ok.header(&HeaderName::Contact).unwrap());
    let from = inv.header(&HeaderName::From).unwrap().to_string();
    let to = ok.header(&HeaderName::To).unwrap().to_string();
    let call_id = inv.call_id().unwrap().to_string();
    let ack = alice.in_dialog(Method::Ack, &bob_target, &routes, &from, &to, &call_id, seq);
    alice.send(&ack);
    let got_ack = bob.expect_request(Method::Ack);
    assert!(
        got_ack.header(&HeaderName::Route).is_none(),
        "the proxy consumed its Route"
    );
    during();
    // bob hangs up: his route set is the Record-Route as received
    let alice_target = uri_of(got.header(&HeaderName::Contact).unwrap());
    let bye = bob.in_dialog(Method::Bye, &alice_target, &rr, &to, &from, &call_id, 1);
    bob.send(&bye);
    let got_bye = alice.expect_request(Method::Bye);
    if let Some(t) = transport {
        assert!(got_bye
            .header(&HeaderName::Via)
            .unwrap()
            .starts_with(&format!("SIP/2.0/{t} ")));
    }
    alice.reply(&got_bye, 200, "x");
    assert_eq!(
        bob.expect_response(&Method::Bye, 1, 200..=699).status(),
        Some(200)
    );
}

/// The administrator the tests create (`confab admin add root ...`).
pub const ADMIN_PASSWORD: &str = "rootpassword1";

/// `confab` arguments that create that administrator (`root`, CsAdministrator).
pub const ADD_ROOT: &[&str] = &[
    "admin",
    "add",
    "root",
    "--role",
    "CsAdministrator",
    "--password",
    ADMIN_PASSWORD,
    // a data directory with no store yet gets one (as the first step of a setup)
    "--init",
];

impl Server {
    /// Runs cmdlets as `root` in the local shell and waits until the running server has
    /// loaded the resulting configuration. Returns what the shell printed (warnings too).
    pub fn configure(&self, script: &str) -> String {
        let (ok, text) = confab_as_admin(self.data(), &["shell", "-c", script]);
        assert!(ok, "{script}\n{text}");
        let v = confab_store::Store::open(self.data())
            .unwrap()
            .config_version()
            .unwrap();
        let loaded = format!("policies loaded (config version {v})");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.log_text().contains(&loaded) {
            assert!(
                Instant::now() < deadline,
                "server did not load config version {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        text
    }
}

/// `confab ARGS --data DATA` signed in as `root`; (success, stdout and stderr).
pub fn confab_as_admin(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = confab()
        .args(args)
        .arg("--data")
        .arg(data)
        .env("CONFAB_ADMIN", "root")
        .env("CONFAB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string()
            + String::from_utf8_lossy(&o.stderr).as_ref(),
    )
}

/// `GET /metrics` of a server started with `[http] listen = "127.0.0.1:{http}"`.
pub fn metrics(http: u16) -> String {
    let r = ureq::get(&format!("http://127.0.0.1:{http}/metrics"))
        .call()
        .expect("GET /metrics");
    assert!(r.content_type().starts_with("text/plain"));
    r.into_string().unwrap()
}

/// The value of the metric `name` (with its labels, as printed) in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
        .parse()
        .unwrap()
}

/// The first JSON value in a command's output (warnings may come before or after it).
pub fn first_json(text: &str) -> Option<serde_json::Value> {
    let at = text.find(['{', '['])?;
    serde_json::Deserializer::from_str(&text[at..])
        .into_iter::<serde_json::Value>()
        .next()?
        .ok()
}

/// An HTTP `Authorization: Basic` value for `user:password`.
pub fn basic_auth(user_password: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = user_password.as_bytes();
    let mut out = String::from("Basic ");
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The c= address and m=audio port of an SDP body.
pub fn sdp_addr(body: &[u8]) -> Option<SocketAddr> {
    let s = std::str::from_utf8(body).ok()?;
    let ip = s
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim();
    let port = s
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip.parse().ok()?, port))
}
