//! The SIP core: the request pipeline, the transaction tables and their timers.
//!
//! It is synchronous and does no I/O: a transport hands it a datagram or frame with
//! its [`Source`], and it appends what must be sent to a list of [`Outgoing`]. State is
//! split into shards by Call-ID, so a request, its transactions, its forks and their
//! responses always meet under one short lock and unrelated calls never contend.

use crate::config::{Config, Listen, Transport};
use crate::location::Location;
use crate::net::{Dest, Outgoing, SendFailure, Source};
use crate::timer_wheel::TimerWheel;
use crate::users::{UserCache, UserCred};
use bytes::Bytes;
use confab_sip::digest::{self, Algorithm, Challenge, Credentials, NonceCheck, NonceManager};
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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Work that needs another shard or the store: done after the current shard lock is
/// released, so no thread ever holds two shard locks.
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
}

pub(crate) struct Branch {
    pub client_key: String,
    pub final_status: Option<u16>,
    pub provisional: bool,
    pub cancel_wanted: bool,
    pub cancelled: bool,
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
}

#[derive(Default)]
pub(crate) struct Shard {
    pub server: rustc_hash::FxHashMap<String, ServerEntry>,
    pub client: rustc_hash::FxHashMap<String, ClientEntry>,
    pub proxies: rustc_hash::FxHashMap<u64, ProxyCtx>,
    pub timers: TimerWheel<TimerRef>,
    pub jobs: Vec<Job>,
}

impl Shard {
    pub fn schedule(&mut self, at: Instant, what: TimerRef) {
        self.timers.schedule(at, what);
    }
}

/// Outcome of checking a request's digest credentials.
pub(crate) enum AuthResult {
    Ok(Arc<UserCred>),
    /// Send this response (a challenge, 400 or 403).
    Respond(Message),
}

pub struct Core {
    pub(crate) cfg: Config,
    pub(crate) domains: Vec<String>,
    pub(crate) listeners: Vec<Listen>,
    pub users: Arc<UserCache>,
    pub location: Location,
    pub(crate) nonces: NonceManager,
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
    /// Server applications (SIP filter scripts) from the store.
    pub scripts: crate::filters::ScriptFilters,
    shed: ShedStats,
    /// Monitoring counters (the sojourn histograms; the rest is read when rendered).
    pub metrics: crate::metrics::Metrics,
    /// Key for To tags of stateless answers (§8.2.7: the same request gets the same tag).
    stateless_tags: std::collections::hash_map::RandomState,
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

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
        let mut secret = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut secret[..]);
        let trace = cfg.log.sip_trace;
        Core {
            domains: cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            listeners: cfg.listeners(),
            nonces: NonceManager::new(secret, cfg.auth.nonce_lifetime, 20),
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
            store,
            presence: Default::default(),
            defence: crate::defence::Defence::new(cfg.defence.clone()),
            source_txns: Default::default(),
            policies: Default::default(),
            scripts: crate::filters::ScriptFilters::new(
                cfg.data_dir.join("scripts"),
                cfg.scripts.limits(),
            ),
            privacy: crate::privacy::Privacy::new(
                cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            ),
            shed: ShedStats::default(),
            cfg,
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

    /// Requests answered 503 because the server was behind or full, since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.count.load(Ordering::Relaxed)
    }

    /// Counts a shed request; logs at most once a second while shedding goes on.
    fn note_shed(&self, src: &Source) {
        let n = self.shed.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now_s = unix_now();
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

    /// Entry point for every received message (a datagram or a framed stream message).
    pub fn handle(&self, data: Bytes, src: &Source, out: &mut Vec<Outgoing>) {
        let now = Instant::now();
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
    pub(crate) fn run_jobs(&self, mut jobs: Vec<Job>, out: &mut Vec<Outgoing>) {
        let mut rounds = 0;
        while !jobs.is_empty() && rounds < 64 {
            rounds += 1;
            let mut next = vec![];
            for j in jobs.drain(..) {
                self.run_job(j, &mut next, out);
            }
            jobs = next;
        }
    }

    fn run_job(&self, job: Job, next: &mut Vec<Job>, out: &mut Vec<Outgoing>) {
        match job {
            Job::NotifySub(id) => self.notify(id, None, out),
            Job::NotifyWatchers(aor) => {
                for id in self
                    .presence
                    .subs_of(&aor, crate::presence::Package::Presence)
                {
                    self.notify(id, None, out);
                }
            }
            Job::Winfo(aor) => {
                for id in self.presence.subs_of(&aor, crate::presence::Package::Winfo) {
                    self.notify(id, None, out);
                }
            }
            Job::DeliverOffline(aor) => self.deliver_offline(&aor, out),
            Job::OfflineDone { aor, id, status } => self.offline_done(&aor, id, status, next),
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
                if let Some(store) = &self.store {
                    if let Err(e) = store.append_audit("confab", &origin, &command, false, &result)
                    {
                        tracing::warn!("writing the audit log: {e}");
                    }
                }
            }
        }
    }

    /// Takes the shard's queued jobs, releases the lock, runs them.
    pub(crate) fn unlock_and_run(
        &self,
        mut shard: parking_lot::MutexGuard<'_, Shard>,
        out: &mut Vec<Outgoing>,
    ) {
        let jobs = std::mem::take(&mut shard.jobs);
        drop(shard);
        if !jobs.is_empty() {
            self.run_jobs(jobs, out);
        }
    }

    fn on_request(&self, msg: Message, src: &Source, now: Instant, out: &mut Vec<Outgoing>) {
        if self.is_plain_options_for_us(&msg) {
            // §8.2.7 stateless UAS: the answer is the same every time, so a retransmission
            // is simply answered again and no transaction (key, timer, 32 s of memory) is kept.
            if let Some(via) = msg.top_via() {
                if !self.shed_new_request(&msg, &via, src, out) {
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
            self.forward_stateless_ack(ack, src, out);
            return;
        }
        self.unlock_and_run(shard, out);
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

        if self.shed_new_request(&msg, &via, src, out) {
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
            self.note_shed(src);
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
        out: &mut Vec<Outgoing>,
    ) -> bool {
        let full = self.txn_count.load(Ordering::Relaxed) >= self.cfg.limits.max_transactions;
        let shed = full
            || (src.overloaded
                && msg.method() != Some(&Method::Cancel)
                && msg.to_hdr().is_some_and(|t| t.tag().is_none()));
        if shed {
            self.note_shed(src);
            let mut resp = response_to(msg, 503, Some("Overloaded"), Some(&random_token(10)));
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

    /// Decides what to do with a new request: answer it here or proxy it.
    #[allow(clippy::too_many_arguments)]
    fn route_request(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        key: &str,
        mut msg: Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let method = msg.method().cloned().expect("request");
        let flow_target = self.strip_own_routes(&mut msg, src);
        let script_hop = match self.scripts.get() {
            None => None,
            Some(filters) => match self.run_request_scripts(&filters, &mut msg, src) {
                ScriptDecision::Pass(hop) => hop,
                ScriptDecision::Respond(status, reason) => {
                    return self.reply(shard, key, &msg, status, Some(&reason), now, out)
                }
                ScriptDecision::Drop => return self.remove_server(shard, key),
            },
        };
        let uri_text = msg.uri().cloned().expect("request");
        let Ok(ruri) = Uri::parse(&uri_text) else {
            return self.reply(
                shard,
                key,
                &msg,
                400,
                Some("Malformed Request-URI"),
                now,
                out,
            );
        };
        if ruri.scheme == confab_sip::Scheme::Tel {
            // no voice routing yet (enterprise voice comes later)
            return self.reply(
                shard,
                key,
                &msg,
                404,
                Some("No route for tel URI"),
                now,
                out,
            );
        }
        if ruri.scheme == confab_sip::Scheme::Sips
            && !self.listeners.iter().any(|l| l.transport.is_secure())
        {
            // RFC 5630: without TLS this server can keep no sips: promise
            return self.reply(
                shard,
                key,
                &msg,
                416,
                Some("sips: needs TLS, which this server does not listen on"),
                now,
                out,
            );
        }
        let has_route = msg.headers.has(&HeaderName::Route);
        let ruri_us = self.is_us(ruri.host, ruri.port);
        let ruri_ours = ruri_us || self.is_our_domain(ruri.host);
        let to_tag = msg.to_hdr().and_then(|t| t.tag().map(str::to_owned));

        // In-dialog SUBSCRIBE of one of our presence subscriptions.
        if !has_route && to_tag.is_some() && self.is_our_subscription_dialog(&msg) {
            return self.handle_resubscribe(shard, key, &msg, now, out);
        }

        // Requests for the server itself.
        if !has_route
            && flow_target.is_none()
            && (ruri_ours && (ruri.user.is_none() || method == Method::Register))
        {
            if let Some(bad) = self.unsupported_require(&msg, &HeaderName::Require) {
                return self.reply_unsupported(shard, key, &msg, &bad, now, out);
            }
            if to_tag.is_some() && !matches!(method, Method::Register | Method::Options) {
                // an in-dialog request for a dialog of ours that no longer exists
                return self.reply(shard, key, &msg, 481, None, now, out);
            }
            return match method {
                Method::Register => self.handle_register(shard, key, &msg, src, now, out),
                Method::Options => {
                    let resp = options_response(&msg, &random_token(10));
                    self.respond(shard, key, resp, now, out)
                }
                Method::Other(_) => self.reply(shard, key, &msg, 501, None, now, out),
                _ => {
                    let mut resp = response_to(&msg, 405, None, Some(&random_token(10)));
                    resp.headers.push(HeaderName::Allow, "OPTIONS, REGISTER");
                    self.respond(shard, key, resp, now, out)
                }
            };
        }

        if msg.max_forwards() == Some(0) {
            return self.reply(shard, key, &msg, 483, None, now, out);
        }
        if let Some(bad) = self.unsupported_require(&msg, &HeaderName::ProxyRequire) {
            return self.reply_unsupported(shard, key, &msg, &bad, now, out);
        }

        // Authenticate initial requests from our own users (§22.3: 407 from a proxy).
        let from = msg.from_hdr().map(|f| f.uri());
        let from_ours = from
            .as_ref()
            .is_some_and(|u| self.is_our_domain(u.host) || self.is_us(u.host, u.port));
        let in_dialog = to_tag.is_some();
        // The sender as a user@domain key: authenticated for our users, as claimed otherwise.
        let sender = from.as_ref().and_then(|u| {
            u.user.map(|user| {
                let d = if self.is_our_domain(u.host) || !self.is_us(u.host, u.port) {
                    u.host
                } else {
                    self.default_domain()
                };
                crate::users::user_key(user, d)
            })
        });
        if !in_dialog && !matches!(method, Method::Ack | Method::Cancel) {
            if from_ours {
                if self.cfg.auth.challenge_requests {
                    match self.authenticate(&msg, false, src.remote.ip(), now) {
                        AuthResult::Ok(user) => {
                            let from = from.as_ref().expect("checked");
                            if !from
                                .user
                                .is_some_and(|u| u.eq_ignore_ascii_case(&user.username))
                            {
                                return self.reply(
                                    shard,
                                    key,
                                    &msg,
                                    403,
                                    Some("Authenticated user does not match From"),
                                    now,
                                    out,
                                );
                            }
                        }
                        AuthResult::Respond(resp) => {
                            return self.respond(shard, key, resp, now, out)
                        }
                    }
                }
            } else if !ruri_ours && !has_route {
                return self.reply(shard, key, &msg, 403, Some("Relaying denied"), now, out);
            }
        }

        // The Edge and the ethical walls.
        if let Err(r) = self.apply_policies(
            shard,
            &mut msg,
            &method,
            &ruri,
            ruri_ours,
            from_ours,
            sender.as_deref(),
            in_dialog || has_route,
            src,
        ) {
            return self.reply(shard, key, &msg, r.status, Some(&r.reason), now, out);
        }

        // A server application chose the next hop.
        if let Some(dest) = script_hop {
            return self.proxy(
                shard,
                shard_idx,
                key,
                msg,
                src,
                vec![Target {
                    uri: None,
                    dest,
                    path: vec![],
                    flow: false,
                }],
                now,
                out,
            );
        }

        // Presence: this server is every local user's presence agent.
        if !has_route
            && flow_target.is_none()
            && ruri_ours
            && !in_dialog
            && self.is_presence_request(&msg)
        {
            let Some(presentity) = self.local_aor(&ruri) else {
                return self.reply(shard, key, &msg, 404, None, now, out);
            };
            match self.users.get(
                ruri.user.unwrap_or(""),
                presentity.rsplit_once('@').map(|x| x.1).unwrap_or(""),
            ) {
                Some(u) if u.enabled => {}
                _ => return self.reply(shard, key, &msg, 404, None, now, out),
            }
            let watcher = sender.clone().unwrap_or_default();
            return if method == Method::Publish {
                self.handle_publish(
                    shard,
                    key,
                    &msg,
                    &presentity,
                    from_ours.then_some(watcher.as_str()),
                    now,
                    out,
                )
            } else {
                self.handle_subscribe(shard, key, &msg, src, &presentity, &watcher, now, out)
            };
        }

        // Targets.
        let mut targets: Vec<Target> = vec![];
        if has_route {
            let next = msg.headers.get(&HeaderName::Route).and_then(|r| {
                confab_sip::values::NameAddr::parse(r)
                    .ok()
                    .and_then(|na| uri_dest(&na.uri()))
            });
            match next {
                Some(dest) => targets.push(Target {
                    uri: None,
                    dest,
                    path: vec![],
                    flow: false,
                }),
                None => {
                    return self.reply(
                        shard,
                        key,
                        &msg,
                        404,
                        Some("No route to next hop (Route host must be an IP address)"),
                        now,
                        out,
                    )
                }
            }
        } else if let Some(dest) = flow_target {
            targets.push(Target {
                uri: None,
                dest,
                path: vec![],
                flow: true,
            });
        } else if ruri_ours {
            let user = ruri.user.expect("user part checked above");
            let domain = if self.is_our_domain(ruri.host) {
                ruri.host.to_ascii_lowercase()
            } else {
                self.default_domain().to_string()
            };
            match self.users.get(user, &domain) {
                None => return self.reply(shard, key, &msg, 404, None, now, out),
                Some(u) if !u.enabled => {
                    return self.reply(
                        shard,
                        key,
                        &msg,
                        480,
                        Some("Temporarily Unavailable"),
                        now,
                        out,
                    )
                }
                Some(u) => {
                    let aor = crate::users::user_key(&u.username, &u.domain);
                    if !in_dialog && matches!(method, Method::Invite | Method::Message) {
                        // Lync privacy: a blocked sender gets what an offline user would give;
                        // Do Not Disturb lets only the Workgroup through.
                        let level = self.privacy.level(&aor, sender.as_deref().unwrap_or(""));
                        if level == confab_sip::pidf::Level::Blocked {
                            return if method == Method::Message {
                                self.blocked_message(shard, key, &msg, now, out)
                            } else {
                                self.reply(
                                    shard,
                                    key,
                                    &msg,
                                    480,
                                    Some("Temporarily Unavailable"),
                                    now,
                                    out,
                                )
                            };
                        }
                        if level != confab_sip::pidf::Level::Workgroup && self.is_dnd(&aor, now) {
                            return self.reply(
                                shard,
                                key,
                                &msg,
                                486,
                                Some("Busy Here (Do Not Disturb)"),
                                now,
                                out,
                            );
                        }
                    }
                    let bindings = self.location.lookup(&aor, now);
                    if bindings.is_empty() {
                        if method == Method::Message && !in_dialog {
                            return self.store_offline(shard, key, &msg, &u, now, out);
                        }
                        return self.reply(
                            shard,
                            key,
                            &msg,
                            480,
                            Some("Temporarily Unavailable"),
                            now,
                            out,
                        );
                    }
                    targets = Target::for_bindings(bindings);
                    if targets.is_empty() {
                        return self.reply(
                            shard,
                            key,
                            &msg,
                            480,
                            Some("No reachable contact"),
                            now,
                            out,
                        );
                    }
                }
            }
        } else {
            let dest = if is_ip_literal(ruri.host) {
                uri_dest(&ruri)
            } else {
                self.policies.get().next_hop(ruri.host)
            };
            match dest {
                Some(dest) => targets.push(Target {
                    uri: None,
                    dest,
                    path: vec![],
                    flow: false,
                }),
                None => {
                    return self.reply(shard, key, &msg, 404, Some("No route to domain"), now, out)
                }
            }
        }
        self.proxy(shard, shard_idx, key, msg, src, targets, now, out);
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

    /// Runs the server applications on a new request; header edits are applied here.
    fn run_request_scripts(
        &self,
        filters: &confab_scripts::Filters,
        msg: &mut Message,
        src: &Source,
    ) -> ScriptDecision {
        let ctx = self.script_context(msg, confab_scripts::Direction::In, src);
        let outcome = filters.run(msg, &ctx);
        outcome.apply_edits(msg);
        match outcome.verdict {
            confab_scripts::Verdict::Pass => ScriptDecision::Pass(None),
            confab_scripts::Verdict::Respond { status, reason } => {
                ScriptDecision::Respond(status, reason)
            }
            confab_scripts::Verdict::Drop => ScriptDecision::Drop,
            confab_scripts::Verdict::Route(hop) => {
                match Uri::parse(&hop).ok().as_ref().and_then(uri_dest) {
                    Some(dest) => ScriptDecision::Pass(Some(dest)),
                    None => ScriptDecision::Respond(
                        500,
                        format!("Server application chose an unusable next hop {hop}"),
                    ),
                }
            }
        }
    }

    /// Federation (Edge settings, domain lists, external access policies), information
    /// barriers, and the IM / file-transfer / rich-text filters, for a request about to be
    /// served or proxied. `in_dialog` requests only go through the content filters.
    #[allow(clippy::too_many_arguments)]
    fn apply_policies(
        &self,
        shard: &mut Shard,
        msg: &mut Message,
        method: &Method,
        ruri: &Uri,
        ruri_ours: bool,
        from_ours: bool,
        sender: Option<&str>,
        in_dialog: bool,
        src: &Source,
    ) -> Result<(), crate::edge::Refusal> {
        let p = self.policies.get();
        let initial = !in_dialog && !matches!(method, Method::Ack | Method::Cancel);
        // The recipient's user@domain key is built only for a check that reads it.
        let needs_recipient =
            (initial && sender.is_some() && ((!from_ours && ruri_ours) || p.has_barriers()))
                || (*method == Method::Message && ruri_ours && p.filters_messages());
        let recipient = ruri.user.filter(|_| needs_recipient).map(|u| {
            let d = if ruri_ours && !self.is_our_domain(ruri.host) {
                self.default_domain()
            } else {
                ruri.host
            };
            crate::users::user_key(u, d)
        });
        if initial {
            if from_ours && !ruri_ours && !is_ip_literal(ruri.host) {
                p.check_outbound(sender.unwrap_or(""), &ruri.host.to_ascii_lowercase())?;
            }
            if !from_ours && ruri_ours {
                if let (Some(s), Some(r)) = (sender, recipient.as_deref()) {
                    p.check_inbound(s, r, src.remote.ip())?;
                }
            }
            if let (Some(s), Some(r)) = (sender, recipient.as_deref().filter(|_| p.has_barriers()))
            {
                if s != r {
                    if let Some(name) = p.barrier_between(s, r) {
                        shard.jobs.push(Job::Audit {
                            origin: format!("sip:{}", src.remote),
                            command: format!("{} sip:{s} -> sip:{r}", method.as_str()),
                            result: format!("refused by information barrier {name}"),
                        });
                        return Err(crate::edge::Refusal {
                            status: 403,
                            reason: format!("Blocked by information barrier {name}"),
                        });
                    }
                }
            }
        }
        match method {
            Method::Message if p.filters_messages() => {
                let mut local = vec![];
                if from_ours {
                    local.extend(sender);
                }
                if ruri_ours {
                    local.extend(recipient.as_deref());
                }
                p.filter_message(msg, &local, from_ours && ruri_ours)
            }
            Method::Invite if !in_dialog => p.filter_file_transfer(msg),
            _ => Ok(()),
        }
    }

    fn unsupported_require(&self, msg: &Message, name: &HeaderName) -> Option<String> {
        let bad: Vec<&str> = msg
            .headers
            .get_all(name)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty() && !SUPPORTED.split(", ").any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        (!bad.is_empty()).then(|| bad.join(", "))
    }

    fn reply_unsupported(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        bad: &str,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut resp = response_to(msg, 420, None, Some(&random_token(10)));
        resp.headers.push(HeaderName::Unsupported, bad.to_string());
        self.respond(shard, key, resp, now, out)
    }

    /// RFC 3261 §16.4: removes the Route entries that name this server.
    /// Returns a flow to use when one of them carried a flow token (RFC 5626 §5.3).
    pub(crate) fn strip_own_routes(&self, msg: &mut Message, src: &Source) -> Option<Dest> {
        let mut flow = None;
        loop {
            let Some(top) = msg.headers.get(&HeaderName::Route) else {
                break;
            };
            let Ok(na) = confab_sip::values::NameAddr::parse(top) else {
                break;
            };
            let uri = na.uri();
            if !self.is_us(uri.host, uri.port) {
                break;
            }
            if let Some(f) = uri.user.and_then(decode_flow_token) {
                if f.addr != src.remote || f.transport != src.transport {
                    flow = Some(f);
                }
            }
            msg.headers.remove_first(&HeaderName::Route);
        }
        flow
    }

    /// Digest authentication (RFC 3261 §22). `register` selects 401/Authorization,
    /// otherwise 407/Proxy-Authorization.
    pub(crate) fn authenticate(
        &self,
        msg: &Message,
        register: bool,
        ip: IpAddr,
        now: Instant,
    ) -> AuthResult {
        let (hdr, status) = if register {
            (HeaderName::Authorization, 401)
        } else {
            (HeaderName::ProxyAuthorization, 407)
        };
        let method = msg.method().map(|m| m.as_str()).unwrap_or("");
        let mut stale = false;
        for value in msg.headers.get_all(&hdr) {
            if !value
                .trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
            {
                continue; // other schemes are not ours to judge (RFC 4475 regaut01)
            }
            let creds = match Credentials::parse(value) {
                Ok(c) => c,
                Err(e) => {
                    return AuthResult::Respond(self.error_response(
                        msg,
                        400,
                        &format!("Bad credentials: {e}"),
                    ))
                }
            };
            if !self.is_our_domain(&creds.realm) {
                continue;
            }
            let who = crate::users::user_key(&creds.username, &creds.realm);
            if let Err(refusal) = self.defence.auth_gate(&who, ip, now) {
                let mut r = self.error_response(msg, 403, &refusal.reason);
                let secs = refusal.retry_after.as_secs() + 1;
                r.headers.push(HeaderName::RetryAfter, secs.to_string());
                return AuthResult::Respond(r);
            }
            let Some(user) = self.users.get(&creds.username, &creds.realm) else {
                tracing::info!(user = %creds.username, realm = %creds.realm, %ip, "authentication failed: unknown user");
                self.defence.auth_failed(&who, ip, now);
                break;
            };
            let alg = creds.algorithm_or_default();
            let ha1 = match alg {
                Algorithm::Md5 => &user.ha1_md5,
                Algorithm::Sha256 => &user.ha1_sha256,
            };
            if !digest::verify(&creds, method, ha1) {
                tracing::info!(user = %creds.username, %ip, "authentication failed: wrong password");
                self.defence.auth_failed(&who, ip, now);
                break;
            }
            match self.nonces.check(&creds.nonce, creds.nc, unix_now()) {
                NonceCheck::Valid => {}
                NonceCheck::Stale => {
                    stale = true;
                    break;
                }
                NonceCheck::Invalid | NonceCheck::Replay => break,
            }
            if !user.enabled {
                return AuthResult::Respond(self.error_response(msg, 403, "Account disabled"));
            }
            self.defence.auth_succeeded(&who, ip, now);
            // A remote user (outside the internal networks) signs in through the Edge.
            if self.cfg.edge.is_outside(ip) {
                if let Err(r) = self.policies.get().check_remote_access(&who) {
                    tracing::info!(user = %who, %ip, "remote access refused: {}", r.reason);
                    return AuthResult::Respond(self.error_response(msg, r.status, &r.reason));
                }
            }
            return AuthResult::Ok(user);
        }
        AuthResult::Respond(self.challenge(msg, status, stale))
    }

    pub(crate) fn error_response(&self, msg: &Message, status: u16, reason: &str) -> Message {
        let mut resp = response_to(msg, status, Some(reason), Some(&random_token(10)));
        resp.headers.push(HeaderName::Server, SERVER_NAME);
        resp
    }

    fn challenge(&self, msg: &Message, status: u16, stale: bool) -> Message {
        let mut resp = self.error_response(msg, status, confab_sip::message::reason_phrase(status));
        let realm = msg
            .from_hdr()
            .map(|f| f.uri().host.to_ascii_lowercase())
            .filter(|h| self.is_our_domain(h))
            .unwrap_or_else(|| self.default_domain().to_string());
        let name = if status == 401 {
            HeaderName::WwwAuthenticate
        } else {
            HeaderName::ProxyAuthenticate
        };
        let nonce = self.nonces.issue(unix_now());
        let mut algs = vec![Algorithm::Md5];
        if self.cfg.auth.sha256 {
            algs.push(Algorithm::Sha256);
        }
        for algorithm in algs {
            let c = Challenge {
                realm: realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop_auth: true,
                stale,
            };
            resp.headers.push(name.clone(), c.to_header_value());
        }
        resp
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
        self.unlock_and_run(shard, out);
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
                if let Some(sub) = notify_sub {
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
        out: &mut Vec<Outgoing>,
    ) {
        let now = Instant::now();
        let shard_idx = shard_of(req.call_id().map(|c| c.as_str()).unwrap_or(""));
        let branch = req
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let ckey = client_key(&branch, false);
        let bytes = req.to_bytes();
        let mut shard = self.shards[shard_idx].lock();
        shard.client.insert(
            ckey.clone(),
            ClientEntry {
                txn: ClientTransaction::new(
                    Kind::NonInvite,
                    dest.transport.is_reliable(),
                    self.timers,
                    now,
                ),
                notify_sub,
                request: req,
                bytes: bytes.clone(),
                dest,
                proxy: None,
                branch_idx: 0,
                is_cancel: false,
                ack: None,
                scheduled: None,
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

    /// Runs due timers of every shard.
    pub fn tick(&self, out: &mut Vec<Outgoing>) {
        let now = Instant::now();
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
            self.unlock_and_run(shard, out);
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
                        if let Some(sub) = e.notify_sub {
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
        }
    }

    /// The transport could not deliver a request of ours: the branch failed (§8.1.3.1: 503).
    pub fn on_send_failure(&self, f: &SendFailure, out: &mut Vec<Outgoing>) {
        let now = Instant::now();
        let mut shard = self.shards[f.shard].lock();
        let Some(entry) = shard.client.get_mut(&f.client_key) else {
            return;
        };
        if entry.txn.on_transport_error() != ClientAction::Timeout {
            return;
        }
        let e = self
            .remove_client(&mut shard, &f.client_key)
            .expect("present");
        if let Some(sub) = e.notify_sub {
            shard.jobs.push(Job::DropSubscription(sub));
        } else if let (false, Some(pid)) = (e.is_cancel, e.proxy) {
            let resp = self.error_response(
                &e.request,
                503,
                "Service Unavailable (next hop unreachable)",
            );
            self.proxy_branch_final(&mut shard, f.shard, pid, e.branch_idx, 503, resp, now, out);
        }
        self.unlock_and_run(shard, out);
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
        }
        Ok(())
    }

    /// Housekeeping every second: expired bindings, publications and subscriptions, and
    /// changes to contact lists made by other processes.
    pub fn sweep(&self, out: &mut Vec<Outgoing>) {
        let now = Instant::now();
        let gone = self.location.sweep(now);
        let mut jobs = vec![];
        for aor in gone {
            self.presence.drop_publications(&aor);
            jobs.push(Job::NotifyWatchers(aor));
        }
        self.pinned.lock().retain(|_, until| *until > now);
        self.defence.sweep(now);
        self.presence_sweep(now, &mut jobs, out);
        if let Some(store) = &self.store {
            if let Err(e) = self.reload_policies(store) {
                tracing::warn!("reloading policies: {e}");
            }
            if let Err(e) = self.scripts.refresh(store) {
                tracing::warn!("reloading server applications: {e}");
            }
            match self.privacy.refresh(store) {
                Ok(owners) => jobs.extend(owners.into_iter().map(Job::NotifyWatchers)),
                Err(e) => tracing::warn!("reloading contact lists: {e}"),
            }
        }
        self.run_jobs(jobs, out);
    }
}

/// What the server applications decided about a request.
enum ScriptDecision {
    /// Go on, to this next hop if a script chose one.
    Pass(Option<Dest>),
    Respond(u16, String),
    Drop,
}

pub(crate) struct Target {
    /// New Request-URI (a registered contact), or keep the current one.
    pub uri: Option<String>,
    pub dest: Dest,
    pub path: Vec<String>,
    /// The destination is the flow of a registration behind NAT (not the Contact URI).
    pub flow: bool,
}

impl Target {
    /// Proxy targets for registered contacts: the flow the registration came on when it has
    /// one (NAT, outbound), otherwise the Contact URI; contacts that cannot be reached
    /// without DNS are left out.
    pub(crate) fn for_bindings(bindings: Vec<crate::location::Binding>) -> Vec<Target> {
        bindings
            .into_iter()
            .filter_map(|b| {
                let dest = b
                    .flow
                    .or_else(|| Uri::parse(&b.uri).ok().and_then(|u| uri_dest(&u)))?;
                Some(Target {
                    flow: b.flow.is_some(),
                    uri: Some(b.uri),
                    dest,
                    path: b.path,
                })
            })
            .collect()
    }
}

impl Core {
    /// The registered contacts of `aor` as proxy targets.
    pub(crate) fn targets_for(&self, aor: &str, now: Instant) -> Vec<Target> {
        Target::for_bindings(self.location.lookup(aor, now))
    }
}

/// A host that is an IP address rather than a domain name.
pub(crate) fn is_ip_literal(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
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

/// Flow tokens (RFC 5626 §5.2) in our Record-Route user part: `cf-<t><ip>_<port>`, so an
/// in-dialog request can reach a client behind NAT over the flow it used.
pub(crate) fn encode_flow_token(d: &Dest) -> String {
    let t = match d.transport {
        Transport::Udp => 'u',
        Transport::Tcp => 't',
        Transport::Tls => 's',
        Transport::Ws => 'w',
        Transport::Wss => 'x',
    };
    let ip = match d.addr.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    };
    format!("cf-{t}{ip}_{}", d.addr.port())
}

pub(crate) fn decode_flow_token(user: &str) -> Option<Dest> {
    let rest = user.strip_prefix("cf-")?;
    let transport = match rest.as_bytes().first()? {
        b't' => Transport::Tcp,
        b'u' => Transport::Udp,
        b's' => Transport::Tls,
        b'w' => Transport::Ws,
        b'x' => Transport::Wss,
        _ => return None,
    };
    let (ip, port) = rest[1..].rsplit_once('_')?;
    let ip: IpAddr = ip.replace('-', ":").parse().ok()?;
    Some(Dest {
        transport,
        addr: SocketAddr::new(ip, port.parse().ok()?),
        conn: None,
    })
}

/// The 200 to an OPTIONS for the server itself: what it accepts and supports (§11.2).
fn options_response(req: &Message, to_tag: &str) -> Message {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_tokens_round_trip() {
        for addr in ["127.0.0.1:5062", "[::1]:40000"] {
            for transport in [
                Transport::Udp,
                Transport::Tcp,
                Transport::Tls,
                Transport::Ws,
                Transport::Wss,
            ] {
                let d = Dest {
                    transport,
                    addr: addr.parse().unwrap(),
                    conn: None,
                };
                let tok = encode_flow_token(&d);
                assert!(
                    confab_sip::values::is_token(&tok),
                    "{tok} fits a URI user part"
                );
                assert_eq!(decode_flow_token(&tok), Some(d));
            }
        }
        assert_eq!(decode_flow_token("alice"), None);
    }
}
