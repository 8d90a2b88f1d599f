//! The SIP core: the transaction tables and their timers; new requests go to the request
//! pipeline (`pipeline/`).
//!
//! It is synchronous and does no I/O: a transport hands it a datagram or frame with
//! its [`Source`], and it appends what must be sent to a list of [`Outgoing`]. State is
//! split into shards by Call-ID, so a request, its transactions, its forks and their
//! responses always meet under one short lock and unrelated calls never contend.

use crate::config::{Config, Listen, Transport};
use crate::location::Location;
use crate::net::{Dest, Outgoing, SendFailure, Source};
pub(crate) use crate::pipeline::authenticate::AuthResult;
pub(crate) use crate::pipeline::Target;
use crate::timer_wheel::TimerWheel;
use crate::users::UserCache;
use bytes::Bytes;
use confab_sip::digest::NonceManager;
use confab_sip::transaction::{
    ClientAction, ClientTransaction, Kind, ServerAction, ServerTransaction, Timers,
};
use confab_sip::values::Via;
use confab_sip::{parse_message, response_to, HeaderName, Message, Method, Text, Uri};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SHARDS: usize = 64;
pub const BRANCH_PREFIX: &str = "z9hG4bKcfb";
/// Methods confab serves or relays (Allow in OPTIONS and 405 answers).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, PRACK, REFER, NOTIFY, SUBSCRIBE, PUBLISH";
pub const SUPPORTED: &str = "path";
pub const SERVER_NAME: &str = concat!("confab/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimerRef {
    Server(String),
    Client(String),
    TimerC(u64),
    /// A call plan's timer (enterprise voice) of proxy context `pid`.
    Call(u64, crate::voice::CallTimer),
}

pub(crate) struct ServerEntry {
    pub txn: ServerTransaction,
    pub reply: Dest,
    pub last_response: Option<Bytes>,
    pub proxy: Option<u64>,
    pub scheduled: Option<Instant>,
    /// A request the server made up itself (delivery of a stored message: recipient AoR
    /// and message id): its final response is reported as a job instead of sent.
    pub internal: Option<(String, i64)>,
    /// The source address it counts against (source_txns.rs), if it does.
    pub source: Option<IpAddr>,
}

impl ServerEntry {
    pub fn new(txn: ServerTransaction, reply: Dest) -> ServerEntry {
        ServerEntry {
            txn,
            reply,
            last_response: None,
            proxy: None,
            scheduled: None,
            internal: None,
            source: None,
        }
    }
}

/// Work that needs another shard: done after the current shard lock is released, so no
/// thread ever holds two shard locks. A job that needs the store hands it on as an effect
/// to the store workers (`effects.rs`).
#[derive(Debug)]
pub(crate) enum Job {
    /// Send the current state to one subscription.
    NotifySub(u64),
    /// A presentity's state changed: notify every subscription to it.
    NotifyWatchers(String),
    /// A presentity's watcher list changed: notify its presence.winfo subscriptions.
    Winfo(String),
    /// Deliver the next stored message of this AoR.
    DeliverOffline(String),
    /// A stored message's delivery ended with `status`.
    OfflineDone { aor: String, id: i64, status: u16 },
    /// Our NOTIFY failed (481, timeout...): end the subscription.
    DropSubscription(u64),
    /// A request of the conference focus (NOTIFY, BYE, MESSAGE) to send in a client
    /// transaction of its own.
    SendOwn(Box<Message>, Dest),
    /// A dial-out's INVITE ended (its final response, or None: timeout / unreachable).
    DialOutFinal(String, Option<Box<Message>>, u16),
    /// Write a refusal by policy (an information barrier) to the audit log.
    Audit {
        origin: String,
        command: String,
        result: String,
    },
}

pub(crate) struct ClientEntry {
    pub txn: ClientTransaction,
    /// Set for a NOTIFY of ours: the subscription it belongs to.
    pub notify_sub: Option<u64>,
    /// The request as sent, for retransmission, ACK and CANCEL.
    pub request: Message,
    pub bytes: Bytes,
    pub dest: Dest,
    pub proxy: Option<u64>,
    pub branch_idx: usize,
    pub is_cancel: bool,
    pub ack: Option<Bytes>,
    pub scheduled: Option<Instant>,
    /// Set for the INVITE of a dial-out of the focus: its Call-ID.
    pub dial_out: Option<String>,
}

pub(crate) struct Branch {
    pub client_key: String,
    pub final_status: Option<u16>,
    pub provisional: bool,
    pub cancel_wanted: bool,
    pub cancelled: bool,
    /// A provisional answer other than 100 came (the far end rings).
    pub ringing: bool,
    /// Its From was rewritten (caller ID to a gateway): responses get the caller's back.
    pub from_rewritten: bool,
    /// The branch leads to a PSTN gateway: 408, 5xx or no answer in time fail over.
    pub pstn: bool,
    /// The ways out tried after this one, in order, if it fails over.
    pub failover: Vec<Target>,
    /// Given up by the call plan (failover, no answer): its answer is not the call's.
    pub abandoned: bool,
}

/// A stateful proxy context: one incoming request forked to one or more branches.
pub(crate) struct ProxyCtx {
    pub server_key: String,
    pub request: Message,
    pub branches: Vec<Branch>,
    pub best: Option<Message>,
    pub challenges: Vec<(HeaderName, Text)>,
    pub final_sent: bool,
    pub is_invite: bool,
    pub timer_c_fired: bool,
    /// The request as every branch gets it (Via stamped, Max-Forwards lowered).
    pub base: Message,
    /// The caller side's Record-Route token, when the request is record-routed.
    pub caller_token: Option<String>,
    pub ingress: Listen,
    pub sips: bool,
    /// Enterprise voice: what happens when branches fail or nobody answers.
    pub plan: Option<Box<crate::voice::CallPlan>>,
    /// The caller CANCELled.
    pub cancelled: bool,
    /// A join forwarded to the front end hosting the meeting: the participant's dialog,
    /// kept with the call once answered (see [`RemoteSeat`]).
    pub seat: Option<Box<RemoteSeat>>,
}

#[derive(Default)]
pub(crate) struct Shard {
    pub server: rustc_hash::FxHashMap<String, ServerEntry>,
    pub client: rustc_hash::FxHashMap<String, ClientEntry>,
    pub proxies: rustc_hash::FxHashMap<u64, ProxyCtx>,
    pub timers: TimerWheel<TimerRef>,
    pub jobs: Vec<Job>,
    /// Calls this server proxied that are up: Call-ID → when the INVITE was answered 2xx
    /// and its parties; removed by the BYE (or after [`CALL_MAX_AGE`], a call whose BYE
    /// took another way).
    pub calls: rustc_hash::FxHashMap<String, CallUp>,
}

/// A call that is up: since when, and its parties (`user@domain` when one of ours).
pub(crate) struct CallUp {
    pub since: Instant,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub seat: Option<Box<RemoteSeat>>,
}

/// A seat of one of our participants in a meeting that another front end of the pool
/// hosts (its focus and its media): when that front end dies, the participant is sent a
/// BYE in the focus's name, since its media is gone with it.
pub(crate) struct RemoteSeat {
    /// The hosting front end's name.
    pub host: String,
    /// The participant's dialog seen from the focus's side (our tag: the focus's).
    pub dialog: crate::focus::dialog::Dialog,
}

/// A call still counted this long after it was answered is forgotten (its BYE went
/// another way).
pub const CALL_MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Calls counted per shard at most (64 shards).
const CALLS_PER_SHARD: usize = 16_384;

impl Shard {
    /// An INVITE of a new dialog was answered 2xx: a call is up.
    pub(crate) fn call_up(&mut self, call_id: &str, call: CallUp, count: &AtomicUsize) {
        if self.calls.len() < CALLS_PER_SHARD && !self.calls.contains_key(call_id) {
            self.calls.insert(call_id.to_string(), call);
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Keeps the calls `keep` says yes to (it may take from the others), the count with them.
    pub(crate) fn retain_calls(
        &mut self,
        count: &AtomicUsize,
        mut keep: impl FnMut(&mut CallUp) -> bool,
    ) {
        let before = self.calls.len();
        self.calls.retain(|_, up| keep(up));
        count.fetch_sub(before - self.calls.len(), Ordering::Relaxed);
    }

    /// A BYE: the call is over.
    pub(crate) fn call_down(&mut self, call_id: &str, count: &AtomicUsize) {
        if self.calls.remove(call_id).is_some() {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Shard {
    pub fn schedule(&mut self, at: Instant, what: TimerRef) {
        self.timers.schedule(at, what);
    }
}

pub struct Core {
    pub(crate) cfg: Config,
    pub(crate) domains: Vec<String>,
    pub(crate) listeners: Vec<Listen>,
    pub users: Arc<UserCache>,
    pub location: Location,
    pub(crate) nonces: NonceManager,
    /// Signs and checks the tokens in our Record-Route entries (key from the store).
    pub(crate) route_tokens: crate::route_token::RouteTokens,
    pub(crate) shards: Vec<Mutex<Shard>>,
    pub(crate) timers: Timers,
    pub(crate) txn_count: AtomicUsize,
    next_id: AtomicU64,
    trace: AtomicBool,
    /// TCP connections a registration relies on, kept open past the idle timeout until then.
    pub(crate) pinned: Mutex<HashMap<u64, Instant>>,
    pub(crate) store: Option<Arc<confab_store::Store>>,
    pub presence: crate::presence::PresenceServer,
    pub privacy: crate::privacy::Privacy,
    /// AoRs with stored messages (so REGISTER need not ask the database), and those whose
    /// delivery is under way (one message at a time keeps the order).
    pub(crate) offline_pending: Mutex<std::collections::HashSet<String>>,
    pub(crate) offline_delivering: Mutex<std::collections::HashSet<String>>,
    pub defence: crate::defence::Defence,
    /// Pending server transactions per source address.
    pub source_txns: crate::source_txns::SourceTxns,
    /// Federation rules, filters and information barriers from the store.
    pub policies: crate::edge::Policies,
    /// The conference focus and its media plane (focus/).
    pub focus: crate::focus::Focus,
    /// Server applications (SIP filter scripts) from the store.
    pub scripts: crate::filters::ScriptFilters,
    shed: ShedStats,
    /// Monitoring counters (the sojourn histograms; the rest is read when rendered).
    pub metrics: crate::metrics::Metrics,
    /// Key for To tags of stateless answers (§8.2.7: the same request gets the same tag).
    stateless_tags: std::collections::hash_map::RandomState,
    /// Wall-clock seconds derived from the instants the caller gives (see `clock.rs`).
    pub wall: crate::clock::WallClock,
    /// Store work waiting for a worker (effects.rs).
    pub effects: crate::effects::EffectQueue,
    /// A configuration reload is queued or running.
    pub(crate) reload_queued: AtomicBool,
    /// This front end's part in a pool (pool/): the shared location; `None` without a store
    /// or with `[pool] enabled = false`.
    pub pool: Option<crate::pool::Pool>,
    /// Calls up (the shards' `calls` together).
    pub(crate) active_calls: AtomicUsize,
}

/// Requests refused by overload shedding, and the Unix second of the last log line about
/// it.
#[derive(Default)]
struct ShedStats {
    count: AtomicU64,
    logged_at: AtomicU64,
}

pub(crate) fn shard_of(call_id: &str) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    call_id.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

pub(crate) fn random_token(n: usize) -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
        .collect()
}

/// The Via sent-by of a request and whether its sender is behind NAT (RFC 3581 logic):
/// the address it claims differs from the one the packet came from.
pub(crate) fn behind_nat(via: &Via, src: &Source) -> bool {
    match via
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) if ip != src.remote.ip() => true,
        Ok(_) => src.transport == Transport::Udp && via.port.unwrap_or(5060) != src.remote.port(),
        Err(_) => false,
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581).
pub(crate) fn reply_dest(src: &Source, via: Option<&Via>) -> Dest {
    if src.transport.is_reliable() {
        return src.flow();
    }
    let port = match via {
        Some(v) if v.param("rport").is_some() => src.remote.port(),
        Some(v) => v.port.unwrap_or(5060),
        None => src.remote.port(),
    };
    Dest {
        transport: src.transport,
        addr: SocketAddr::new(src.remote.ip(), port),
        conn: None,
    }
}

/// Where a response goes next, read from its (new) top Via: received/rport/sent-by.
pub(crate) fn via_dest(via: &Via) -> Option<Dest> {
    let transport = Transport::parse(via.transport)?;
    let host = via.param("received").unwrap_or(via.host);
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let port = via
        .param("rport")
        .and_then(|p| p.parse().ok())
        .or(via.port)
        .unwrap_or(if transport.is_secure() { 5061 } else { 5060 });
    Some(Dest {
        transport,
        addr: SocketAddr::new(ip, port),
        conn: None,
    })
}

/// Where a SIP URI points, without DNS: its host must be an IP literal.
pub(crate) fn uri_dest(uri: &Uri) -> Option<Dest> {
    let ip: IpAddr = uri.host_unbracketed().parse().ok()?;
    let sips = uri.scheme == confab_sip::Scheme::Sips;
    let transport = match uri.transport().map(Transport::parse) {
        // RFC 5630 §3.1.3: sips: over TCP means TLS
        Some(Some(Transport::Tcp)) if sips => Transport::Tls,
        Some(t) => t?,
        None if sips => Transport::Tls,
        None => Transport::Udp,
    };
    let default_port = if transport.is_secure() { 5061 } else { 5060 };
    Some(Dest {
        transport,
        addr: SocketAddr::new(ip, uri.port.unwrap_or(default_port)),
        conn: None,
    })
}

impl Core {
    pub fn new(
        cfg: Config,
        users: Arc<UserCache>,
        store: Option<Arc<confab_store::Store>>,
    ) -> Core {
        // Keys shared by every server on the store (a pool accepts each other's nonces and
        // Record-Route entries, and they survive restarts); random without a store.
        let secret = |name: &str| {
            store
                .as_ref()
                .and_then(|s| match s.server_secret(name) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        tracing::error!(
                            "reading the {name} key from the store: {e}; using a random one"
                        );
                        None
                    }
                })
                .unwrap_or_else(|| {
                    let mut k = [0u8; 32];
                    rand::Rng::fill(&mut rand::thread_rng(), &mut k[..]);
                    k
                })
        };
        let trace = cfg.log.sip_trace;
        Core {
            domains: cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            listeners: cfg.listeners(),
            nonces: NonceManager::new(secret("digest-nonce"), cfg.auth.nonce_lifetime, 20),
            route_tokens: crate::route_token::RouteTokens::new(secret("record-route")),
            users,
            location: Location::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            timers: Timers::default(),
            txn_count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            trace: AtomicBool::new(trace),
            pinned: Mutex::new(HashMap::new()),
            stateless_tags: Default::default(),
            metrics: Default::default(),
            offline_pending: Mutex::new(
                store
                    .as_ref()
                    .and_then(|s| s.recipients_with_messages().ok())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|k| k.to_lowercase())
                    .collect(),
            ),
            offline_delivering: Mutex::new(Default::default()),
            pool: None,
            active_calls: AtomicUsize::new(0),
            store,
            presence: Default::default(),
            defence: crate::defence::Defence::new(cfg.defence.clone()),
            source_txns: Default::default(),
            policies: crate::edge::Policies::new(cfg.placement()),
            scripts: crate::filters::ScriptFilters::new(
                cfg.data_dir.join("scripts"),
                cfg.scripts.limits(),
            ),
            privacy: crate::privacy::Privacy::new(
                cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            ),
            shed: ShedStats::default(),
            wall: crate::clock::WallClock::real(),
            effects: Default::default(),
            reload_queued: AtomicBool::new(false),
            focus: crate::focus::Focus::new(
                None,
                cfg.data_dir.join("prompts"),
                Duration::from_secs(cfg.meetings.lobby_timeout_secs),
                cfg.meetings.max_participants,
            ),
            cfg,
        }
    }

    /// Gives the focus its media plane (the audio MCU); without one, joins get 480.
    pub fn set_media(&mut self, engine: confab_media::Engine) {
        self.focus = crate::focus::Focus::new(
            Some(engine),
            self.cfg.data_dir.join("prompts"),
            Duration::from_secs(self.cfg.meetings.lobby_timeout_secs),
            self.cfg.meetings.max_participants,
        );
        self.apply_media_policy();
    }

    /// CsConferencingConfiguration's client port range, in force for the MCU.
    fn apply_media_policy(&self) {
        if let Some(m) = self.focus.media() {
            let p = self.policies.get();
            let c = p.conferencing_configuration();
            m.set_remote_port_range(confab_media::client_audio_port_range(
                c.client_media_port_range_enabled,
                c.client_audio_port,
                c.client_audio_port_range,
            ));
        }
    }

    /// Replaces the listeners after binding (ports chosen by the OS become known).
    pub fn set_listeners(&mut self, l: Vec<Listen>) {
        self.listeners = l;
    }

    pub fn listeners(&self) -> &[Listen] {
        &self.listeners
    }

    pub fn default_domain(&self) -> &str {
        &self.domains[0]
    }

    pub fn toggle_trace(&self) -> bool {
        !self.trace.fetch_xor(true, Ordering::Relaxed)
    }

    pub fn max_message_bytes(&self) -> usize {
        self.cfg.limits.max_message_bytes
    }

    /// How long a message may wait in a receive queue before new work is shed.
    pub fn max_queue_delay(&self) -> Duration {
        Duration::from_millis(self.cfg.limits.max_queue_delay_ms)
    }

    pub fn transactions(&self) -> usize {
        self.txn_count.load(Ordering::Relaxed)
    }

    /// Calls this server proxied that are up (answered, no BYE yet).
    pub fn active_calls(&self) -> usize {
        self.active_calls.load(Ordering::Relaxed)
    }

    /// The `user@domain` of a From or To URI when it is one of our users' addresses.
    pub(crate) fn party_of(&self, uri: &Uri<'_>) -> Option<String> {
        let user = uri.user?;
        self.is_our_domain(uri.host)
            .then(|| crate::users::user_key(user, uri.host))
    }

    /// Every call this server proxied that is up, with its parties, at most `max`.
    pub(crate) fn calls_up(&self, max: usize) -> Vec<(Instant, Option<String>, Option<String>)> {
        let mut out = vec![];
        for s in &self.shards {
            let s = s.lock();
            for c in s.calls.values() {
                if out.len() >= max {
                    return out;
                }
                out.push((c.since, c.caller.clone(), c.callee.clone()));
            }
        }
        out
    }

    /// Requests answered 503 because the server was behind or full, since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.count.load(Ordering::Relaxed)
    }

    /// Counts a shed request; logs at most once a second while shedding goes on.
    fn note_shed(&self, src: &Source, now: Instant) {
        let n = self.shed.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now_s = self.wall.unix_at(now);
        if self.shed.logged_at.swap(now_s, Ordering::Relaxed) != now_s {
            tracing::warn!(peer = %src.remote, "overloaded: answering new requests 503 ({n} so far)");
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_our_domain(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    /// Whether host[:port] names this server (one of its listen addresses, or a served
    /// domain without a port).
    pub(crate) fn is_us(&self, host: &str, port: Option<u16>) -> bool {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = h.parse::<IpAddr>() {
            return self.listeners.iter().any(|l| {
                (l.addr.ip() == ip || (l.addr.ip().is_unspecified() && ip.is_loopback()))
                    && port.unwrap_or(5060) == l.addr.port()
            });
        }
        self.is_our_domain(h)
            && port.is_none_or(|p| self.listeners.iter().any(|l| l.addr.port() == p))
    }

    /// The listener to send from for `dest` (same transport and address family).
    pub(crate) fn egress(&self, dest: &Dest) -> Option<Listen> {
        self.listeners
            .iter()
            .copied()
            .find(|l| l.transport == dest.transport && l.addr.is_ipv4() == dest.addr.is_ipv4())
    }

    pub(crate) fn hostport(l: &Listen) -> String {
        match l.addr {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        }
    }

    pub(crate) fn trace_msg(&self, dir: &str, peer: &Dest, bytes: &[u8]) {
        if self.trace.load(Ordering::Relaxed) {
            tracing::info!(target: "sip_trace", "{dir} {} {}\n{}", peer.transport.as_str(), peer.addr, String::from_utf8_lossy(bytes));
        }
    }

    /// Entry point for every received message (a datagram or a framed stream message),
    /// on the real clock.
    pub fn handle(&self, data: Bytes, src: &Source, out: &mut Vec<Outgoing>) {
        self.handle_at(data, src, Instant::now(), out)
    }

    /// [`Core::handle`] at the instant `now` (the core reads no clock of its own).
    pub fn handle_at(&self, data: Bytes, src: &Source, now: Instant, out: &mut Vec<Outgoing>) {
        if !self.defence.allow(src.remote.ip(), now) {
            return; // a banned flooder gets nothing, not even an error
        }
        self.trace_msg("recv from", &src.flow(), &data);
        let too_large = data.len() > self.cfg.limits.max_message_bytes;
        match parse_message(data) {
            Ok(msg) if too_large => {
                if msg.is_request() && msg.method() != Some(&Method::Ack) {
                    self.reply_stateless(&msg, src, 513, Some("Message Too Large"), out);
                }
            }
            Ok(msg) => {
                if msg.is_request() {
                    self.on_request(msg, src, now, out);
                } else {
                    self.on_response(msg, src, now, out);
                }
            }
            Err(e) => {
                tracing::debug!(peer = %src.remote, "unparsable message: {} {}", e.status, e.reason);
                if let Some(p) = e.partial {
                    if p.is_request() && p.method() != Some(&Method::Ack) {
                        let status = if too_large { 513 } else { e.status };
                        let reason = if too_large {
                            "Message Too Large".into()
                        } else {
                            e.reason
                        };
                        self.reply_stateless(&p, src, status, Some(&reason), out);
                    }
                }
            }
        }
    }

    /// Answers a stream message that could not be framed (bad Content-Length, too large).
    pub fn reply_unframable(
        &self,
        head: Bytes,
        src: &Source,
        status: u16,
        reason: &str,
        out: &mut Vec<Outgoing>,
    ) {
        let msg = match parse_message(head) {
            Ok(m) => m,
            Err(e) => match e.partial {
                Some(p) => *p,
                None => return,
            },
        };
        if msg.is_request() && msg.method() != Some(&Method::Ack) {
            self.reply_stateless(&msg, src, status, Some(reason), out);
        }
    }

    pub(crate) fn reply_stateless(
        &self,
        req: &Message,
        src: &Source,
        status: u16,
        reason: Option<&str>,
        out: &mut Vec<Outgoing>,
    ) {
        let mut resp = response_to(req, status, reason, Some(&random_token(10)));
        resp.headers.push(HeaderName::Server, SERVER_NAME);
        let via = req.top_via();
        self.send(reply_dest(src, via.as_ref()), resp.to_bytes(), None, out);
    }

    pub(crate) fn send(
        &self,
        dest: Dest,
        bytes: Bytes,
        on_failure: Option<SendFailure>,
        out: &mut Vec<Outgoing>,
    ) {
        self.trace_msg("send to", &dest, &bytes);
        out.push(Outgoing {
            dest,
            bytes,
            on_failure,
        });
    }

    /// Key of a server transaction (RFC 3261 §17.2.3): branch + sent-by + method, with ACK
    /// matching its INVITE; RFC 2543 peers without a magic-cookie branch fall back to the
    /// dialog identifiers.
    fn server_key(msg: &Message, via: &Via, method: &Method) -> String {
        let m = match method {
            Method::Ack => "INVITE",
            other => other.as_str(),
        };
        match via.branch() {
            Some(b) if via.has_rfc3261_branch() && b.len() > 7 => {
                format!(
                    "{b}|{}:{}|{m}",
                    via.host.to_ascii_lowercase(),
                    via.port.unwrap_or(0)
                )
            }
            _ => {
                let from_tag = msg
                    .from_hdr()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .unwrap_or_default();
                let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
                format!(
                    "2543|{}|{cseq}|{from_tag}|{}:{}|{m}",
                    msg.call_id().map(|c| c.as_str()).unwrap_or(""),
                    via.host,
                    via.port.unwrap_or(0)
                )
            }
        }
    }

    /// Runs jobs until none are left (a job may queue more).
    pub(crate) fn run_jobs(&self, mut jobs: Vec<Job>, now: Instant, out: &mut Vec<Outgoing>) {
        let mut rounds = 0;
        while !jobs.is_empty() && rounds < 64 {
            rounds += 1;
            let mut next = vec![];
            for j in jobs.drain(..) {
                self.run_job(j, now, &mut next, out);
            }
            jobs = next;
        }
    }

    fn run_job(&self, job: Job, now: Instant, next: &mut Vec<Job>, out: &mut Vec<Outgoing>) {
        match job {
            Job::NotifySub(id) => self.notify(id, None, now, out),
            Job::NotifyWatchers(aor) => {
                for id in self
                    .presence
                    .subs_of(&aor, crate::presence::Package::Presence)
                {
                    self.notify(id, None, now, out);
                }
            }
            Job::Winfo(aor) => {
                for id in self.presence.subs_of(&aor, crate::presence::Package::Winfo) {
                    self.notify(id, None, now, out);
                }
            }
            Job::DeliverOffline(aor) => self.deliver_offline(&aor, now),
            Job::SendOwn(req, dest) => self.send_own_request(*req, dest, None, now, out),
            Job::DialOutFinal(cid, resp, status) => {
                self.dial_out_response(&cid, resp.map(|r| *r), status, now, out)
            }
            Job::OfflineDone { aor, id, status } => self.offline_done(&aor, id, status),
            Job::DropSubscription(id) => {
                if let Some(p) = self.presence.drop_sub(id) {
                    tracing::info!(
                        sub = id,
                        "subscription ended: watcher did not accept NOTIFY"
                    );
                    next.push(Job::Winfo(p));
                }
            }
            Job::Audit {
                origin,
                command,
                result,
            } => {
                tracing::info!(%origin, %command, %result, "refused by policy");
                // written by a store worker (effects.rs); when its queue is full the log
                // line above is all that remains
                if self.store.is_some()
                    && !self.submit(crate::effects::Effect::Audit {
                        origin,
                        command,
                        result,
                    })
                {
                    tracing::warn!("the store's queue is full: audit entry not written");
                }
            }
        }
    }

    /// Takes the shard's queued jobs, releases the lock, runs them.
    pub(crate) fn unlock_and_run(
        &self,
        mut shard: parking_lot::MutexGuard<'_, Shard>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let jobs = std::mem::take(&mut shard.jobs);
        drop(shard);
        if !jobs.is_empty() {
            self.run_jobs(jobs, now, out);
        }
    }

    fn on_request(&self, msg: Message, src: &Source, now: Instant, out: &mut Vec<Outgoing>) {
        if self.is_plain_options_for_us(&msg) {
            // §8.2.7 stateless UAS: the answer is the same every time, so a retransmission
            // is simply answered again and no transaction (key, timer, 32 s of memory) is kept.
            if let Some(via) = msg.top_via() {
                if !self.shed_new_request(&msg, &via, src, now, out) {
                    let resp = options_response(&msg, &self.stateless_tag(&msg, &via));
                    self.send(reply_dest(src, Some(&via)), resp.to_bytes(), None, out);
                }
            }
            return;
        }
        let shard_idx = shard_of(msg.call_id().map(|c| c.as_str()).unwrap_or(""));
        let mut shard = self.shards[shard_idx].lock();
        if let Some(ack) = self.on_request_locked(&mut shard, shard_idx, msg, src, now, out) {
            drop(shard);
            // the ACK for a 2xx of the conference focus ends its retransmissions
            if self.focus_ack(&ack, src) {
                return;
            }
            self.forward_stateless_ack(ack, src, now, out);
            return;
        }
        self.unlock_and_run(shard, now, out);
    }

    /// Returns an ACK to relay statelessly (done after the lock is released).
    fn on_request_locked(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        msg: Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Option<Message> {
        let method = msg.method().cloned().expect("request");
        let via = msg.top_via()?;
        let key = Self::server_key(&msg, &via, &method);

        if method == Method::Ack {
            if let Some(entry) = shard.server.get_mut(&key) {
                if entry.txn.on_ack(now) == ServerAction::AbsorbAck {
                    let at = entry.txn.next_deadline();
                    self.reschedule_server(shard, &key, at);
                    return None;
                }
            }
            return Some(msg);
        }

        if let Some(entry) = shard.server.get_mut(&key) {
            if entry.txn.on_request_retransmit() == ServerAction::ResendResponse {
                if let Some(b) = entry.last_response.clone() {
                    let dest = entry.reply;
                    self.send(dest, b, None, out);
                }
            }
            return None;
        }

        if self.shed_new_request(&msg, &via, src, now, out) {
            return None;
        }

        if method == Method::Cancel {
            self.on_cancel(shard, shard_idx, &key, msg, src, now, out);
            return None;
        }

        let kind = if method == Method::Invite {
            Kind::Invite
        } else {
            Kind::NonInvite
        };
        let (ip, share) = (src.remote.ip(), self.cfg.limits.max_transactions_per_source);
        let counted = !self.defence.is_trusted(ip);
        if counted && !self.source_txns.try_add(ip, share) {
            self.note_shed(src, now);
            let r = crate::source_txns::refusal(&msg, share, &random_token(10));
            self.send(reply_dest(src, Some(&via)), r.to_bytes(), None, out);
            return None;
        }
        let mut entry = ServerEntry::new(
            ServerTransaction::new(kind, src.transport.is_reliable(), self.timers),
            reply_dest(src, Some(&via)),
        );
        entry.source = counted.then_some(ip);
        shard.server.insert(key.clone(), entry);
        self.txn_count.fetch_add(1, Ordering::Relaxed);
        // A request that got no answer (e.g. forwarded) keeps its transaction; one that
        // ended at once is removed by respond().
        self.route_request(shard, shard_idx, &key, msg, src, now, out);
        None
    }

    /// Answers 503 + Retry-After when the request would start new work while the server
    /// is overloaded or its transaction table is full. In-dialog requests (To tag) and
    /// CANCEL finish work and are never shed.
    fn shed_new_request(
        &self,
        msg: &Message,
        via: &Via,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> bool {
        let full = self.txn_count.load(Ordering::Relaxed) >= self.cfg.limits.max_transactions;
        // a front end that lost the store takes no new work (the pool's others do)
        let isolated = self.pool.as_ref().is_some_and(|p| p.is_isolated());
        let shed = full
            || ((src.overloaded || isolated)
                && msg.method() != Some(&Method::Cancel)
                && msg.to_hdr().is_some_and(|t| t.tag().is_none()));
        if shed {
            self.note_shed(src, now);
            let reason = if isolated && !src.overloaded && !full {
                "Front end cut off from the store"
            } else {
                "Overloaded"
            };
            let mut resp = response_to(msg, 503, Some(reason), Some(&random_token(10)));
            resp.headers
                .push(HeaderName::RetryAfter, if full { "5" } else { "1" });
            self.send(reply_dest(src, Some(via)), resp.to_bytes(), None, out);
        }
        shed
    }

    /// A To tag that is the same for every retransmission of the request (§19.3).
    fn stateless_tag(&self, msg: &Message, via: &Via) -> String {
        use std::hash::BuildHasher;
        let mut h = self.stateless_tags.build_hasher();
        msg.call_id().map(|c| c.as_str()).hash(&mut h);
        if let Some(from) = msg.from_hdr() {
            from.tag().hash(&mut h);
        }
        msg.cseq().map(|c| c.seq).hash(&mut h);
        via.branch().hash(&mut h);
        format!("{:016x}", h.finish())
    }

    /// An out-of-dialog OPTIONS to the server itself that route_request would answer 200
    /// with nothing to decide: no Route, no Require, no filter scripts, a user-less
    /// sip: Request-URI of ours.
    fn is_plain_options_for_us(&self, msg: &Message) -> bool {
        if msg.method() != Some(&Method::Options)
            || msg.headers.has(&HeaderName::Route)
            || msg.headers.has(&HeaderName::Require)
            || self.scripts.get().is_some()
            || msg.to_hdr().is_none_or(|t| t.tag().is_some())
        {
            return false;
        }
        let Some(Ok(ruri)) = msg.uri().map(|u| Uri::parse(u)) else {
            return false;
        };
        ruri.scheme == confab_sip::Scheme::Sip
            && ruri.user.is_none()
            && (self.is_us(ruri.host, ruri.port) || self.is_our_domain(ruri.host))
    }

    /// Sends `resp` on the server transaction `key` and remembers it for retransmissions.
    pub(crate) fn respond(
        &self,
        shard: &mut Shard,
        key: &str,
        resp: Message,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let status = resp.status().unwrap_or(500);
        let Some(entry) = shard.server.get_mut(key) else {
            return;
        };
        if !entry.txn.on_send_response(status, now) {
            return;
        }
        if let Some((aor, id)) = entry.internal.clone() {
            if status >= 200 {
                shard.jobs.push(Job::OfflineDone { aor, id, status });
                self.remove_server(shard, key);
            }
            return;
        }
        let bytes = resp.to_bytes();
        entry.last_response = Some(bytes.clone());
        let dest = entry.reply;
        let at = entry.txn.next_deadline();
        self.send(dest, bytes, None, out);
        match at {
            Some(at) if at <= now => self.remove_server(shard, key),
            _ => self.reschedule_server(shard, key, at),
        }
    }

    pub(crate) fn remove_server(&self, shard: &mut Shard, key: &str) {
        if let Some(e) = shard.server.remove(key) {
            self.txn_count.fetch_sub(1, Ordering::Relaxed);
            if let Some(ip) = e.source {
                self.source_txns.remove(ip);
            }
        }
    }

    pub(crate) fn remove_client(&self, shard: &mut Shard, key: &str) -> Option<ClientEntry> {
        let e = shard.client.remove(key);
        if e.is_some() {
            self.txn_count.fetch_sub(1, Ordering::Relaxed);
        }
        e
    }

    pub(crate) fn reschedule_server(&self, shard: &mut Shard, key: &str, at: Option<Instant>) {
        let Some(at) = at else { return };
        let Some(entry) = shard.server.get_mut(key) else {
            return;
        };
        if entry.scheduled == Some(at) {
            return;
        }
        entry.scheduled = Some(at);
        shard.schedule(at, TimerRef::Server(key.to_string()));
    }

    pub(crate) fn reschedule_client(&self, shard: &mut Shard, key: &str) {
        let Some(entry) = shard.client.get_mut(key) else {
            return;
        };
        let Some(at) = entry.txn.next_deadline() else {
            return;
        };
        if entry.scheduled == Some(at) {
            return;
        }
        entry.scheduled = Some(at);
        shard.schedule(at, TimerRef::Client(key.to_string()));
    }

    /// A local answer to the request of server transaction `key`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reply(
        &self,
        shard: &mut Shard,
        key: &str,
        req: &Message,
        status: u16,
        reason: Option<&str>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut resp = response_to(req, status, reason, Some(&random_token(10)));
        resp.headers.push(HeaderName::Server, SERVER_NAME);
        self.respond(shard, key, resp, now, out);
    }

    /// Whether a From/To header names a user of another domain (a federated party).
    fn is_federated(&self, hdr: Option<confab_sip::values::NameAddr<'_>>) -> bool {
        hdr.is_some_and(|h| {
            let u = h.uri();
            !self.is_our_domain(u.host) && !self.is_us(u.host, u.port)
        })
    }

    /// The context the server applications see with a message.
    pub(crate) fn script_context<'a>(
        &self,
        msg: &Message,
        direction: confab_scripts::Direction,
        src: &'a Source,
    ) -> confab_scripts::Context<'a> {
        confab_scripts::Context {
            direction,
            source: src.remote,
            transport: src.transport.as_str(),
            from_federated: self.is_federated(msg.from_hdr()),
            to_federated: self.is_federated(msg.to_hdr()),
        }
    }

    fn on_response(&self, msg: Message, src: &Source, now: Instant, out: &mut Vec<Outgoing>) {
        let Some(via) = msg.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        if !branch.starts_with(BRANCH_PREFIX) || !self.is_us(via.host, via.port) {
            tracing::debug!("dropping response whose top Via is not ours");
            return;
        }
        let is_cancel = msg.cseq().is_some_and(|c| c.method == Method::Cancel);
        let ckey = client_key(branch, is_cancel);
        let shard_idx = shard_of(msg.call_id().map(|c| c.as_str()).unwrap_or(""));
        let mut shard = self.shards[shard_idx].lock();
        if !shard.client.contains_key(&ckey) {
            drop(shard);
            // RFC 3261 §16.7/§18: e.g. 2xx retransmissions after the INVITE client
            // transaction ended are forwarded statelessly.
            self.forward_response_stateless(msg, out);
            return;
        }
        // A response to a request we relayed must still carry the upstream Via under ours;
        // one that does not is malformed and is absorbed (RFC 3261 §16.7 step 3).
        if shard
            .client
            .get(&ckey)
            .is_some_and(|e| e.proxy.is_some() && !e.is_cancel)
            && msg.headers.count(&HeaderName::Via) < 2
        {
            tracing::debug!("dropping a relayed response that lost the upstream Via");
            return;
        }
        self.on_client_response(&mut shard, shard_idx, &ckey, msg, src, now, out);
        self.unlock_and_run(shard, now, out);
    }

    /// Runs the server applications on a response about to be relayed. None: dropped.
    fn run_response_scripts(&self, mut msg: Message, src: &Source) -> Option<Message> {
        let Some(filters) = self.scripts.get() else {
            return Some(msg);
        };
        let outcome = filters.run(
            &msg,
            &self.script_context(&msg, confab_scripts::Direction::Out, src),
        );
        outcome.apply_edits(&mut msg);
        match outcome.verdict {
            confab_scripts::Verdict::Drop => return None,
            confab_scripts::Verdict::Respond {
                status: new,
                reason: new_reason,
            } => {
                if let confab_sip::StartLine::Response { status, reason, .. } = &mut msg.start {
                    *status = new;
                    *reason = new_reason.into();
                }
            }
            confab_scripts::Verdict::Pass | confab_scripts::Verdict::Route(_) => {}
        }
        Some(msg)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_client_response(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        ckey: &str,
        msg: Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let status = msg.status().unwrap_or(500);
        let Some(entry) = shard.client.get_mut(ckey) else {
            return;
        };
        let action = entry.txn.on_response(status, now);
        let (proxy, idx, dest, notify_sub) =
            (entry.proxy, entry.branch_idx, entry.dest, entry.notify_sub);
        let dial_out = entry.dial_out.clone();
        match action {
            ClientAction::PassUp | ClientAction::PassUpAndAck => {
                if action == ClientAction::PassUpAndAck {
                    let ack = build_ack(&entry.request, &msg).to_bytes();
                    entry.ack = Some(ack.clone());
                    self.send(dest, ack, None, out);
                }
                let terminated = entry.txn.is_terminated();
                let is_cancel_txn = entry.is_cancel;
                if terminated {
                    self.remove_client(shard, ckey);
                } else {
                    self.reschedule_client(shard, ckey);
                }
                if let Some(cid) = dial_out.filter(|_| status >= 200) {
                    shard
                        .jobs
                        .push(Job::DialOutFinal(cid, Some(Box::new(msg)), status));
                } else if let Some(sub) = notify_sub {
                    // RFC 6665 §4.2.2: a 481 (or any failure) to a NOTIFY ends the subscription
                    if status >= 300 && !matches!(status, 401 | 407) {
                        shard.jobs.push(Job::DropSubscription(sub));
                    }
                } else if !is_cancel_txn {
                    if let Some(pid) = proxy {
                        let Some(msg) = self.run_response_scripts(msg, src) else {
                            return;
                        };
                        self.proxy_response(shard, shard_idx, pid, idx, msg, now, out);
                    }
                }
            }
            ClientAction::Ack => {
                if let Some(a) = entry.ack.clone() {
                    self.send(dest, a, None, out);
                }
            }
            _ => {}
        }
    }

    /// Sends a request the server itself originates (a NOTIFY) in a client transaction.
    pub(crate) fn send_own_request(
        &self,
        req: Message,
        dest: Dest,
        notify_sub: Option<u64>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let own = match req.method() {
            Some(Method::Invite) => {
                Own::DialOut(req.call_id().map(|c| c.to_string()).unwrap_or_default())
            }
            Some(Method::Cancel) => Own::Cancel,
            _ => Own::Request(notify_sub),
        };
        self.send_own(req, dest, own, now, out)
    }

    /// A request of the server's own on a client transaction of its own kind.
    fn send_own(&self, req: Message, dest: Dest, own: Own, now: Instant, out: &mut Vec<Outgoing>) {
        let shard_idx = shard_of(req.call_id().map(|c| c.as_str()).unwrap_or(""));
        let branch = req
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let is_cancel = matches!(own, Own::Cancel);
        let ckey = client_key(&branch, is_cancel);
        let bytes = req.to_bytes();
        let mut shard = self.shards[shard_idx].lock();
        let (kind, notify_sub, dial_out) = match own {
            Own::Request(sub) => (Kind::NonInvite, sub, None),
            Own::Cancel => (Kind::NonInvite, None, None),
            Own::DialOut(cid) => (Kind::Invite, None, Some(cid)),
        };
        shard.client.insert(
            ckey.clone(),
            ClientEntry {
                txn: ClientTransaction::new(kind, dest.transport.is_reliable(), self.timers, now),
                notify_sub,
                request: req,
                bytes: bytes.clone(),
                dest,
                proxy: None,
                branch_idx: 0,
                is_cancel,
                ack: None,
                scheduled: None,
                dial_out,
            },
        );
        self.txn_count.fetch_add(1, Ordering::Relaxed);
        self.reschedule_client(&mut shard, &ckey);
        drop(shard);
        self.send(
            dest,
            bytes,
            Some(SendFailure {
                shard: shard_idx,
                client_key: ckey,
            }),
            out,
        );
    }

    /// Our Via for a request we send to `dest` (None when no listener fits).
    pub(crate) fn own_via(&self, dest: &Dest) -> Option<String> {
        let egress = self.egress(dest)?;
        Some(format!(
            "SIP/2.0/{} {};branch={BRANCH_PREFIX}{}",
            egress.transport.as_str(),
            Core::hostport(&egress),
            random_token(16)
        ))
    }

    /// Pops our Via and sends the response to the next one.
    fn forward_response_stateless(&self, mut msg: Message, out: &mut Vec<Outgoing>) {
        msg.headers.remove_first(&HeaderName::Via);
        let Some(next) = msg.top_via() else { return };
        let Some(dest) = via_dest(&next) else { return };
        if is_broadcast(&dest.addr) {
            return;
        }
        self.send(dest, msg.to_bytes(), None, out);
    }

    /// Runs due timers of every shard, on the real clock.
    pub fn tick(&self, out: &mut Vec<Outgoing>) {
        self.tick_at(Instant::now(), out)
    }

    /// Runs the timers of every shard due at `now`.
    pub fn tick_at(&self, now: Instant, out: &mut Vec<Outgoing>) {
        self.focus_tick(now, out);
        let mut due = Vec::new();
        for idx in 0..SHARDS {
            let mut shard = self.shards[idx].lock();
            // a fired timer may schedule another that is already due (Timer J/K of zero
            // on reliable transports): a few rounds take those too
            for _ in 0..4 {
                shard.timers.take_due(now, &mut due);
                if due.is_empty() {
                    break;
                }
                for (at, what) in due.drain(..) {
                    self.fire(&mut shard, idx, at, what, now, out);
                }
            }
            self.unlock_and_run(shard, now, out);
        }
    }

    fn fire(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        at: Instant,
        what: TimerRef,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        match what {
            TimerRef::Server(key) => {
                let Some(entry) = shard.server.get_mut(&key) else {
                    return;
                };
                if entry.scheduled != Some(at) {
                    return; // superseded
                }
                entry.scheduled = None;
                match entry.txn.on_timer(now) {
                    ServerAction::ResendResponse => {
                        if let Some(b) = entry.last_response.clone() {
                            let d = entry.reply;
                            self.send(d, b, None, out);
                        }
                        let next = entry.txn.next_deadline();
                        self.reschedule_server(shard, &key, next);
                    }
                    ServerAction::Timeout | ServerAction::Terminated => {
                        if let Some(pid) = entry.proxy {
                            if let Some(ctx) = shard.proxies.get(&pid) {
                                if ctx.final_sent
                                    && ctx.branches.iter().all(|b| b.final_status.is_some())
                                {
                                    shard.proxies.remove(&pid);
                                }
                            }
                        }
                        self.remove_server(shard, &key);
                    }
                    _ => {
                        let next = entry.txn.next_deadline();
                        self.reschedule_server(shard, &key, next);
                    }
                }
            }
            TimerRef::Client(key) => {
                let Some(entry) = shard.client.get_mut(&key) else {
                    return;
                };
                if entry.scheduled != Some(at) {
                    return;
                }
                entry.scheduled = None;
                match entry.txn.on_timer(now) {
                    ClientAction::Retransmit => {
                        let (d, b) = (entry.dest, entry.bytes.clone());
                        self.send(d, b, None, out);
                        self.reschedule_client(shard, &key);
                    }
                    ClientAction::Timeout => {
                        let e = self.remove_client(shard, &key).expect("present");
                        if let Some(cid) = e.dial_out {
                            shard.jobs.push(Job::DialOutFinal(cid, None, 408));
                        } else if let Some(sub) = e.notify_sub {
                            shard.jobs.push(Job::DropSubscription(sub));
                        } else if !e.is_cancel {
                            if let Some(pid) = e.proxy {
                                let timeout =
                                    self.error_response(&e.request, 408, "Request Timeout");
                                self.proxy_branch_final(
                                    shard,
                                    shard_idx,
                                    pid,
                                    e.branch_idx,
                                    408,
                                    timeout,
                                    now,
                                    out,
                                );
                            }
                        }
                    }
                    ClientAction::Terminated => {
                        self.remove_client(shard, &key);
                    }
                    _ => self.reschedule_client(shard, &key),
                }
            }
            TimerRef::TimerC(pid) => self.timer_c(shard, shard_idx, pid, now, out),
            TimerRef::Call(pid, t) => self.call_timer(shard, shard_idx, pid, t, now, out),
        }
    }

    /// The transport could not deliver a request of ours: the branch failed (§8.1.3.1: 503).
    pub fn on_send_failure(&self, f: &SendFailure, out: &mut Vec<Outgoing>) {
        self.on_send_failure_at(f, Instant::now(), out)
    }

    /// [`Core::on_send_failure`] at the instant `now`.
    pub fn on_send_failure_at(&self, f: &SendFailure, now: Instant, out: &mut Vec<Outgoing>) {
        let mut shard = self.shards[f.shard].lock();
        let Some(entry) = shard.client.get_mut(&f.client_key) else {
            return;
        };
        if entry.txn.on_transport_error() != ClientAction::Timeout {
            return;
        }
        if let Some(pool) = &self.pool {
            // a front end of the pool that cannot be reached is not sent to again until it
            // shows a heartbeat written after this
            pool.unreachable(entry.dest.addr, self.wall.unix_ms_at(now));
        }
        let e = self
            .remove_client(&mut shard, &f.client_key)
            .expect("present");
        if let Some(cid) = e.dial_out {
            shard.jobs.push(Job::DialOutFinal(cid, None, 503));
        } else if let Some(sub) = e.notify_sub {
            shard.jobs.push(Job::DropSubscription(sub));
        } else if let (false, Some(pid)) = (e.is_cancel, e.proxy) {
            let resp = self.error_response(
                &e.request,
                503,
                "Service Unavailable (next hop unreachable)",
            );
            self.proxy_branch_final(&mut shard, f.shard, pid, e.branch_idx, 503, resp, now, out);
        }
        self.unlock_and_run(shard, now, out);
    }

    /// How long the TCP connection `conn` must stay open for a registration.
    pub fn pinned_until(&self, conn: u64) -> Option<Instant> {
        self.pinned.lock().get(&conn).copied()
    }

    pub fn connection_closed(&self, conn: u64) {
        self.pinned.lock().remove(&conn);
    }

    /// Reads the Edge, filter and defence settings again if the store's configuration
    /// changed.
    pub fn reload_policies(
        &self,
        store: &confab_store::Store,
    ) -> Result<(), confab_store::StoreError> {
        if self.policies.refresh(store)? {
            self.defence
                .configure(self.policies.get().defence_config(&self.cfg.defence));
            self.apply_media_policy();
        }
        Ok(())
    }

    /// Housekeeping every second: expired bindings, publications and subscriptions, and
    /// changes to contact lists made by other processes.
    pub fn sweep(&self, out: &mut Vec<Outgoing>) {
        self.wall.resync();
        self.sweep_at(Instant::now(), out)
    }

    /// [`Core::sweep`] at the instant `now`.
    pub fn sweep_at(&self, now: Instant, out: &mut Vec<Outgoing>) {
        let gone = self.location.sweep(now);
        let mut jobs = vec![];
        for aor in gone {
            self.presence.drop_publications(&aor);
            jobs.push(Job::NotifyWatchers(aor));
        }
        self.pinned.lock().retain(|_, until| *until > now);
        for s in &self.shards {
            s.lock().retain_calls(&self.active_calls, |up| {
                now.saturating_duration_since(up.since) < CALL_MAX_AGE
            });
        }
        self.defence.sweep(now);
        self.presence_sweep(now, &mut jobs, out);
        // the store is read by a worker (effects.rs), one reload waiting at a time
        if self.store.is_some() && !self.reload_queued.swap(true, Ordering::AcqRel) {
            self.effects.push(crate::effects::Effect::Reload, false);
        }
        // expired meetings leave the store (Lync: 14 days after a one-time meeting's end)
        if self.store.is_some() && self.focus.expiry_due(now) {
            let unix = self.wall.unix_at(now) as i64;
            self.effects
                .push(crate::effects::Effect::ExpireMeetings { now: unix }, false);
        }
        self.run_jobs(jobs, now, out);
    }
}

/// What the server applications decided about a request.
/// A host that is an IP address rather than a domain name.
pub(crate) fn is_ip_literal(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

/// What a request of the server's own is for.
enum Own {
    /// A NOTIFY (of a subscription) or another non-INVITE request.
    Request(Option<u64>),
    Cancel,
    /// The focus's INVITE of a dial-out (its Call-ID).
    DialOut(String),
}

pub(crate) fn client_key(branch: &str, is_cancel: bool) -> String {
    if is_cancel {
        format!("{branch}|CANCEL")
    } else {
        branch.to_string()
    }
}

fn is_broadcast(a: &SocketAddr) -> bool {
    match a.ip() {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via,
/// Call-ID, From, CSeq number and Route as the INVITE; To from the response.
pub(crate) fn build_ack(invite: &Message, resp: &Message) -> Message {
    let mut ack = Message::request(Method::Ack, invite.uri().cloned().unwrap_or_default());
    if let Some(v) = invite.headers.get(&HeaderName::Via) {
        ack.headers.push(HeaderName::Via, v.clone());
    }
    ack.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            ack.headers.push(name, v.clone());
        }
    }
    if let Some(to) = resp.headers.get(&HeaderName::To) {
        ack.headers.push(HeaderName::To, to.clone());
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    ack.headers.push(HeaderName::CSeq, format!("{seq} ACK"));
    for r in invite.headers.get_all(&HeaderName::Route) {
        ack.headers.push(HeaderName::Route, r.clone());
    }
    ack
}

/// A CANCEL for a request we forwarded (RFC 3261 §9.1).
pub(crate) fn build_cancel(req: &Message) -> Message {
    let mut c = Message::request(Method::Cancel, req.uri().cloned().unwrap_or_default());
    if let Some(v) = req.headers.get(&HeaderName::Via) {
        c.headers.push(HeaderName::Via, v.clone());
    }
    c.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = req.headers.get(&name) {
            c.headers.push(name, v.clone());
        }
    }
    let seq = req.cseq().map(|c| c.seq).unwrap_or(1);
    c.headers.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    for r in req.headers.get_all(&HeaderName::Route) {
        c.headers.push(HeaderName::Route, r.clone());
    }
    c
}

/// The 200 to an OPTIONS for the server itself: what it accepts and supports (§11.2).
pub(crate) fn options_response(req: &Message, to_tag: &str) -> Message {
    let mut resp = response_to(req, 200, None, Some(to_tag));
    for (n, v) in [
        (HeaderName::Allow, ALLOW),
        (
            HeaderName::Accept,
            "application/sdp, text/plain, message/cpim, application/pidf+xml",
        ),
        (HeaderName::Supported, SUPPORTED),
        (HeaderName::Server, SERVER_NAME),
    ] {
        resp.headers.push(n, v);
    }
    resp
}
