//! The least a SIP server can do so that every ../shared/bench scenario (options, reg,
//! message, call, publish, subscribe) passes over UDP and TCP. It measures sipp's own
//! latency floor on this machine: what sipp reports against it at a given rate is what
//! sipp itself adds to any server's latency.
//!
//!     cargo run --release -p confab-server --example sipp_floor -- 127.0.0.1:5081 2 127.0.0.1:5090
//!
//! (address for UDP and TCP, UDP threads, address of the sipp UAS that stands in for every
//! callee). Then e.g. `TRANSPORT=t1 ../shared/bench/bench.sh 127.0.0.1 5081 example.test call`.
//!
//! No parsing beyond finding header lines, no digest check, no location table, no
//! transactions, no dialogs. Per request method:
//! * OPTIONS -> 200; PUBLISH -> 200 with a fixed SIP-ETag (the scenario only checks that
//!   one is there); REGISTER without Authorization -> 401 (sipp computes the digest, nobody
//!   checks it), with -> 200 echoing the Contact.
//! * SUBSCRIBE -> 200 with a To tag and a Contact (sipp builds the in-dialog SUBSCRIBE from
//!   them), then a NOTIFY back to the sender (same socket / connection) whose From is the
//!   SUBSCRIBE's To with that tag, a fixed PIDF "open" body, and Subscription-State
//!   terminated when Expires is 0. sipp's 200 to the NOTIFY is dropped.
//! * anything else (MESSAGE, INVITE, ACK, BYE, ...) is relayed statelessly to the UAS with
//!   the floor's Via on top. That Via's branch names the way back (the UDP source address
//!   or the TCP connection id), so a response needs only its top Via read and removed. No
//!   Record-Route: sipp sends ACK and BYE to the floor anyway (it sends every request to
//!   its remote address, whatever the Request-URI), and the floor relays them like the
//!   INVITE. Requests coming from the UAS are ignored.
//!
//! UDP: threads share one socket and block in recv_from. TCP: a thread per connection,
//! messages framed by the blank line and Content-Length; one shared outbound connection to
//! the UAS (reconnected when it closes, as bench.sh restarts the UAS per scenario) whose
//! reader thread hands responses to the inbound connection named in the branch. Odd input
//! is ignored, never a panic.

use confab_sip::Frame;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Branch prefix of the floor's Via on relayed requests: `z9hG4bKfl-<key>-<their branch>`.
const RELAY: &str = "z9hG4bKfl-";
const PIDF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:floor\"><tuple id=\"t\"><status><basic>open</basic></status></tuple></presence>\r\n";

/// Where a message produced by `handle` goes.
enum Dest {
    /// the sender of the message being handled (socket address / connection)
    Back,
    /// the sipp UAS
    Uas,
    /// the client named by the key in a relayed response's branch
    Client(String),
}

/// Header values the floor needs; `copy` = the lines a response repeats verbatim.
#[derive(Default)]
struct Head<'a> {
    copy: Vec<&'a str>,
    from: &'a str,
    to: &'a str,
    call_id: &'a str,
    cseq: &'a str,
    contact: &'a str,
    expires: Option<&'a str>,
    branch: &'a str,
    auth: bool,
}

fn scan(head: &str) -> Head<'_> {
    let mut h = Head::default();
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => {
                if h.branch.is_empty() {
                    h.branch = param(value, "branch=");
                }
                h.copy.push(line);
            }
            "from" | "f" => {
                h.from = value;
                h.copy.push(line);
            }
            "to" | "t" => h.to = value, // copied with a tag added, see `reply`
            "call-id" | "i" => {
                h.call_id = value;
                h.copy.push(line);
            }
            "cseq" => {
                h.cseq = value;
                h.copy.push(line);
            }
            "contact" | "m" => h.contact = value,
            "expires" => h.expires = Some(value),
            "authorization" => h.auth = true,
            _ => {}
        }
    }
    h
}

/// `name=value` parameter of the first header value in `s` (value ends at ; , or blank).
fn param<'a>(s: &'a str, name: &str) -> &'a str {
    let first = s.split(',').next().unwrap_or("");
    let Some(i) = first.find(name) else {
        return "";
    };
    let v = &first[i + name.len()..];
    v.split([';', ',', ' ', '>']).next().unwrap_or("")
}

/// Splits a message into its head (start line + headers, as text) and body.
fn split(msg: &[u8]) -> Option<(&str, &[u8])> {
    let end = msg.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((std::str::from_utf8(&msg[..end]).ok()?, &msg[end + 4..]))
}

/// What to do with one message. `tp` = "UDP"/"TCP", `me` = the floor's address, `key` =
/// how a relayed response finds the sender again, `from_uas` = it came from the UAS side.
fn handle(
    msg: &[u8],
    tp: &str,
    me: &str,
    key: &str,
    from_uas: bool,
    out: &mut Vec<(Dest, Vec<u8>)>,
) {
    let Some((head, _)) = split(msg) else {
        return;
    };
    let first = head.split("\r\n").next().unwrap_or("");
    if first.starts_with("SIP/2.0 ") {
        relay_response(msg, head, out);
        return;
    }
    if from_uas {
        return; // the callee sends no requests in these scenarios
    }
    let method = first.split(' ').next().unwrap_or("");
    match method {
        "OPTIONS" | "REGISTER" | "PUBLISH" | "SUBSCRIBE" => reply(method, head, tp, me, out),
        "" => {}
        _ => {
            // Stateless relay: our Via right after the request line, rest untouched.
            let h = scan(head);
            let mut fwd = Vec::with_capacity(msg.len() + 96);
            fwd.extend_from_slice(first.as_bytes());
            fwd.extend_from_slice(
                format!(
                    "\r\nVia: SIP/2.0/{tp} {me};branch={RELAY}{key}-{}",
                    h.branch
                )
                .as_bytes(),
            );
            fwd.extend_from_slice(&msg[first.len()..]);
            out.push((Dest::Uas, fwd));
        }
    }
}

/// A response from the UAS: drop the floor's top Via and send it to the client named in
/// the branch. sipp's `[last_Via:]` puts all Vias on one line, comma-separated, so the
/// top Via is either a line of its own or the first value of such a line.
fn relay_response(msg: &[u8], head: &str, out: &mut Vec<(Dest, Vec<u8>)>) {
    let mut at = 0;
    for line in head.split("\r\n") {
        let start = at;
        at += line.len() + 2;
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !matches!(name.trim().to_ascii_lowercase().as_str(), "via" | "v") {
            continue;
        }
        let branch = param(value, "branch=");
        let Some(key) = branch.strip_prefix(RELAY).and_then(|k| k.split('-').next()) else {
            return; // not relayed by us (e.g. sipp's 200 to our NOTIFY): drop it
        };
        let mut resp = Vec::with_capacity(msg.len());
        resp.extend_from_slice(&msg[..start]);
        if let Some((_, rest)) = value.split_once(',') {
            resp.extend_from_slice(format!("Via: {}\r\n", rest.trim()).as_bytes());
        }
        resp.extend_from_slice(msg.get(at..).unwrap_or_default());
        out.push((Dest::Client(key.to_string()), resp));
        return;
    }
}

/// The floor's own answer to OPTIONS / REGISTER / PUBLISH / SUBSCRIBE (+ the NOTIFY).
fn reply(method: &str, head: &str, tp: &str, me: &str, out: &mut Vec<(Dest, Vec<u8>)>) {
    let h = scan(head);
    let challenge = method == "REGISTER" && !h.auth;
    let mut r = String::with_capacity(512);
    r.push_str(if challenge {
        "SIP/2.0 401 Unauthorized\r\n"
    } else {
        "SIP/2.0 200 OK\r\n"
    });
    for l in &h.copy {
        r.push_str(l);
        r.push_str("\r\n");
    }
    // Our To tag: added when the request has none (sipp takes it as the dialog's tag).
    let tag = if h.to.contains(";tag=") {
        ""
    } else {
        ";tag=floor"
    };
    r.push_str(&format!("To: {}{tag}\r\n", h.to));
    let expires = h.expires.unwrap_or("600");
    match method {
        "REGISTER" if challenge => r.push_str(
            "WWW-Authenticate: Digest realm=\"example.test\", nonce=\"0123456789abcdef\", algorithm=MD5\r\n",
        ),
        "REGISTER" if !h.contact.is_empty() && h.contact != "*" => {
            r.push_str(&format!("Contact: {};expires={expires}\r\n", h.contact))
        }
        "PUBLISH" => r.push_str(&format!("SIP-ETag: floor\r\nExpires: {expires}\r\n")),
        "SUBSCRIBE" => r.push_str(&format!(
            "Contact: <sip:{me};transport={tp}>\r\nExpires: {expires}\r\n"
        )),
        _ => {}
    }
    r.push_str("Content-Length: 0\r\n\r\n");
    out.push((Dest::Back, r.into_bytes()));
    if method != "SUBSCRIBE" {
        return;
    }
    // NOTIFY in the dialog: From/To swapped, same Call-ID, CSeq number taken from the
    // SUBSCRIBE (grows with each SUBSCRIBE, no counter to keep), branch from its branch.
    let uri = h
        .contact
        .split('<')
        .nth(1)
        .and_then(|c| c.split('>').next());
    let uri = uri.unwrap_or(h.contact);
    let n = h.cseq.split(' ').next().unwrap_or("1");
    let state = if expires == "0" {
        "terminated;reason=timeout".to_string()
    } else {
        format!("active;expires={expires}")
    };
    let notify = format!(
        "NOTIFY {uri} SIP/2.0\r\nVia: SIP/2.0/{tp} {me};branch=z9hG4bKn{}\r\nMax-Forwards: 70\r\n\
         From: {}{tag}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {n} NOTIFY\r\n\
         Contact: <sip:{me};transport={tp}>\r\nEvent: presence\r\nSubscription-State: {state}\r\n\
         Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{PIDF}",
        h.branch,
        h.to,
        h.from,
        h.call_id,
        PIDF.len()
    );
    out.push((Dest::Back, notify.into_bytes()));
}

/// UDP key: the sender's address as hex (a branch is a token: no ':' allowed).
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<SocketAddr> {
    let bytes: Option<Vec<u8>> = (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()?.parse().ok()
}

/// One UDP worker. Workers on one socket can swap two datagrams that arrive back to back
/// (the 180 and 200 of a call): sipp then logs "Continuing call on unexpected message"
/// for the late 180 and goes on, as with any multi-worker UDP server.
fn udp_loop(sock: &UdpSocket, me: &str, uas: SocketAddr) {
    let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        handle(
            &buf[..n],
            "UDP",
            me,
            &hex(&from.to_string()),
            from == uas,
            &mut out,
        );
        for (dest, m) in out.drain(..) {
            let to = match dest {
                Dest::Back => Some(from),
                Dest::Uas => Some(uas),
                Dest::Client(k) => unhex(&k),
            };
            if let Some(to) = to {
                let _ = sock.send_to(&m, to);
            }
        }
    }
}

type Writer = Arc<Mutex<TcpStream>>;

/// TCP state: inbound connections by id (for relayed responses) and the UAS connection
/// (generation, writer), None until first needed or after it closed.
struct Tcp {
    me: String,
    uas: SocketAddr,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Writer>>,
    uas_conn: Mutex<Option<(u64, TcpStream)>>,
}

/// Reads messages from `stream`, framed as confab frames them (blank line and
/// Content-Length, keep-alive CRLFs skipped), until it closes or sends what cannot be framed.
fn read_messages(mut stream: &TcpStream, mut on_msg: impl FnMut(&[u8])) {
    let (mut buf, mut tmp) = (Vec::new(), vec![0u8; 65536]);
    while let Ok(n @ 1..) = stream.read(&mut tmp) {
        buf.extend_from_slice(&tmp[..n]);
        loop {
            match confab_sip::frame(&buf, 1 << 20) {
                Frame::Message { len } => {
                    on_msg(&buf[..len]);
                    buf.drain(..len);
                }
                Frame::KeepAlive { len, .. } => {
                    buf.drain(..len);
                }
                Frame::Incomplete => break,
                Frame::TooLarge { .. } | Frame::Invalid { .. } => return,
            }
        }
    }
}

fn write(w: &Writer, m: &[u8]) {
    if let Ok(mut s) = w.lock() {
        let _ = s.write_all(m);
    }
}

impl Tcp {
    /// One inbound (sipp UAC) connection: answer on it, relay other requests to the UAS.
    fn serve(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(w) = stream.try_clone() else {
            return;
        };
        let w: Writer = Arc::new(Mutex::new(w));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.conns.lock() {
            c.insert(id, w.clone());
        }
        let (key, mut out) = (id.to_string(), Vec::new());
        read_messages(&stream, |msg| {
            handle(msg, "TCP", &self.me, &key, false, &mut out);
            for (dest, m) in out.drain(..) {
                match dest {
                    Dest::Back => write(&w, &m),
                    Dest::Uas => self.to_uas(&m),
                    Dest::Client(k) => self.to_client(&k, &m),
                }
            }
        });
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&id);
        }
    }

    fn to_client(&self, key: &str, m: &[u8]) {
        let w = key
            .parse()
            .ok()
            .and_then(|id| self.conns.lock().ok()?.get(&id).cloned());
        if let Some(w) = w {
            write(&w, m);
        }
    }

    /// Writes to the UAS connection, (re)connecting it when there is none or the write
    /// fails (one retry), so a UAS restarted by bench.sh is picked up.
    fn to_uas(self: &Arc<Self>, m: &[u8]) {
        let Ok(mut slot) = self.uas_conn.lock() else {
            return;
        };
        for _ in 0..2 {
            if slot.is_none() {
                let Ok(s) = TcpStream::connect(self.uas) else {
                    return;
                };
                let _ = s.set_nodelay(true);
                let Ok(r) = s.try_clone() else {
                    return;
                };
                let generation = self.next_id.fetch_add(1, Ordering::Relaxed);
                let me = self.clone();
                std::thread::spawn(move || me.read_uas(r, generation));
                *slot = Some((generation, s));
            }
            if let Some((_, s)) = slot.as_mut() {
                if s.write_all(m).is_ok() {
                    return;
                }
            }
            *slot = None;
        }
    }

    /// Responses from the UAS go back to the inbound connection named in their branch.
    fn read_uas(self: Arc<Self>, stream: TcpStream, generation: u64) {
        let mut out = Vec::new();
        read_messages(&stream, |msg| {
            handle(msg, "TCP", &self.me, "", true, &mut out);
            for (dest, m) in out.drain(..) {
                if let Dest::Client(k) = dest {
                    self.to_client(&k, &m);
                }
            }
        });
        if let Ok(mut slot) = self.uas_conn.lock() {
            if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
                *slot = None;
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = |arg: Option<String>, default: &str| -> std::io::Result<SocketAddr> {
        arg.as_deref()
            .unwrap_or(default)
            .parse()
            .map_err(std::io::Error::other)
    };
    let addr = address(args.next(), "127.0.0.1:5081")?;
    let threads: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let uas = address(args.next(), "127.0.0.1:5090")?;
    let me = addr.to_string();
    // The one dependency beyond std: socket2, for a big UDP receive buffer as confab's
    // transport sets it. The default ~200 KB holds ~100 small datagrams: a few ms off-CPU
    // (two cores shared with two sipps) overflowed it in the call scenario at 8000/s, and
    // those drops would have been the floor's, not sipp's.
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.bind(&addr.into())?;
    let sock = Arc::new(UdpSocket::from(s));
    let listener = TcpListener::bind(addr)?;
    eprintln!("sipp_floor on {me} (UDP, {threads} threads; TCP), UAS {uas}");
    for _ in 0..threads {
        let (sock, me) = (sock.clone(), me.clone());
        std::thread::spawn(move || udp_loop(&sock, &me, uas));
    }
    let tcp = Arc::new(Tcp {
        me,
        uas,
        next_id: AtomicU64::new(1),
        conns: Mutex::new(HashMap::new()),
        uas_conn: Mutex::new(None),
    });
    for stream in listener.incoming().flatten() {
        let tcp = tcp.clone();
        std::thread::spawn(move || tcp.serve(stream));
    }
    Ok(())
}
