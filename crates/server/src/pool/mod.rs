//! The pool (docs/pool.md): front ends sharing one store, any user reachable through any.
//!
//! - The shared location: every binding the registrar makes or removes is written to the
//!   store's `registrations` (batched by the writer task, sync.rs) with this front end's
//!   name; the others follow the changes (`seq`) every `[pool] poll_ms` and keep them in
//!   their own [`Location`](crate::location::Location) as *remote* bindings
//!   (`Binding::owner`). Memory is a cache: a front end starting reads the whole location.
//! - Reaching a remote binding: a binding reached over a connection (its *flow*) can only
//!   be reached by the front end holding that connection, so a request for it goes to
//!   that front end with a pool Route entry (`cp-…`, route_token.rs) naming the flow; the
//!   receiver sends it over the flow without deciding again (the sender authenticated and
//!   authorized it). A binding with no flow (a contact reachable at its address) is sent
//!   to directly.
//! - Membership: each front end writes a heartbeat every second; one silent for
//!   [`DEAD_AFTER_MS`](confab_store::pool::DEAD_AFTER_MS) is dead, its flows unreachable
//!   (its users re-register through another front end). A front end that cannot write its
//!   heartbeat for as long isolates itself: it refuses new work (503) rather than act on a
//!   location it can no longer share (no split brain).
//! - Offline messages: stored by whichever front end took the MESSAGE; the others learn of
//!   them (`messages_since`) and one delivers each, once (a claim in the store).

pub(crate) mod sync;

use crate::config::Transport;
use crate::core::Core;
use crate::location::Binding;
use crate::net::{Dest, Source};
use crate::pipeline::forward::Target;
use parking_lot::RwLock;
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Binding changes waiting for the writer; beyond, a change is dropped (logged, counted):
/// the binding still works through this front end, the others learn of it at its refresh.
pub const WRITE_QUEUE: usize = 65_536;
/// How long a front end claims an offline message it delivers (milliseconds).
pub const CLAIM_MS: i64 = 60_000;

/// A change this front end shares with the others through the store.
#[derive(Debug)]
pub enum Shared {
    Binding(confab_store::Registration),
    Publication(confab_store::SharedPublication),
}

/// Another front end, as this one last read it.
#[derive(Clone, Debug)]
pub struct Member {
    /// Where to send it requests (its pool address).
    pub dest: Dest,
    /// Sent to: its heartbeat is recent, and no request failed to reach it since.
    pub alive: bool,
    /// Its heartbeat is recent (a front end whose heartbeat stops has died: what it held
    /// is dropped once, when this turns false).
    pub beating: bool,
    /// When (Unix ms) a request to it could not be sent: it counts as dead until it writes a
    /// heartbeat after that.
    pub unreachable_at: Option<i64>,
}

/// This front end's part in the pool.
pub struct Pool {
    pub name: Arc<str>,
    /// Where the others reach this front end (`None`: it has no TCP/TLS listener with a
    /// specific address; the others cannot forward to it).
    pub address: Option<Dest>,
    pub(crate) members: RwLock<HashMap<Arc<str>, Member>>,
    writes: tokio::sync::mpsc::Sender<Shared>,
    /// Lost the store: new work is refused.
    pub(crate) isolated: AtomicBool,
    pub(crate) dropped_writes: std::sync::atomic::AtomicU64,
    pub started_ms: i64,
    /// The last registration change read (`seq`).
    pub(crate) applied: AtomicI64,
    /// The last publication change read (`seq`).
    pub(crate) applied_pubs: AtomicI64,
    /// The newest offline message id seen.
    pub(crate) messages_seen: AtomicI64,
    /// Offline messages this front end stored, not yet seen in the store's list: those up
    /// to the newest id read are dropped at each read, so it holds the messages stored
    /// since the last read.
    pub(crate) own_messages: parking_lot::Mutex<std::collections::HashSet<i64>>,
    /// Open connections (the transports' count, for the heartbeat).
    pub(crate) connections: std::sync::atomic::AtomicUsize,
    /// Live meetings another front end hosts, as learned from joins (meeting key → front
    /// end): requests to their conference URIs go there. A cache: bounded, and a wrong
    /// entry only sends a request to a front end that answers for itself.
    pub(crate) meeting_hosts: parking_lot::Mutex<HashMap<String, Arc<str>>>,
}

/// Meetings hosted elsewhere remembered at most (the cache is emptied beyond).
const MEETING_HOSTS: usize = 10_000;

/// Where a pool address (`tcp:IP:PORT`) is reached.
pub fn parse_address(text: &str) -> Option<Dest> {
    let (t, rest) = text.split_once(':')?;
    let transport = Transport::parse(t)?;
    Some(Dest {
        transport,
        addr: rest.parse().ok()?,
        conn: None,
    })
}

pub fn address_text(d: &Dest) -> String {
    format!("{}:{}", d.transport.param(), d.addr)
}

impl Pool {
    /// A pool member named `name` reachable at `address`; the receiving end of `writes` is
    /// the writer task's ([`sync::run`]).
    pub fn new(
        name: String,
        address: Option<Dest>,
        writes: tokio::sync::mpsc::Sender<Shared>,
    ) -> Pool {
        Pool {
            name: name.into(),
            address,
            members: RwLock::new(HashMap::default()),
            writes,
            isolated: AtomicBool::new(false),
            dropped_writes: Default::default(),
            started_ms: crate::clock::real_unix_ms(),
            applied: AtomicI64::new(0),
            applied_pubs: AtomicI64::new(0),
            messages_seen: AtomicI64::new(0),
            own_messages: Default::default(),
            connections: Default::default(),
            meeting_hosts: Default::default(),
        }
    }

    /// The member `name`, if alive.
    pub fn alive_member(&self, name: &str) -> Option<Dest> {
        self.members
            .read()
            .get(name)
            .filter(|m| m.alive)
            .map(|m| m.dest)
    }

    pub fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::Relaxed)
    }

    /// A request to `addr` could not be sent at `at_ms`: the front end there is not sent to
    /// again until its heartbeat is newer.
    pub(crate) fn unreachable(&self, addr: std::net::SocketAddr, at_ms: i64) {
        let mut members = self.members.write();
        for (name, m) in members.iter_mut().filter(|(_, m)| m.dest.addr == addr) {
            if m.alive {
                tracing::warn!(front_end = %name, "front end of the pool unreachable: not sent to until it shows a new heartbeat");
            }
            m.alive = false;
            m.unreachable_at = Some(at_ms);
        }
    }

    /// Records where meeting `key` is live: another front end, or here (`None`).
    pub(crate) fn note_meeting_host(&self, key: &str, host: Option<&str>) {
        let mut hosts = self.meeting_hosts.lock();
        match host {
            Some(h) => {
                if hosts.len() >= MEETING_HOSTS {
                    hosts.clear();
                }
                hosts.insert(key.to_string(), h.into());
            }
            None => {
                hosts.remove(key);
            }
        }
    }

    /// The live front end hosting meeting `key`, if another one does (as last learned).
    pub(crate) fn meeting_host(&self, key: &str) -> Option<Dest> {
        let host = self.meeting_hosts.lock().get(key).cloned()?;
        self.alive_member(&host)
    }

    /// The addresses of the pool's live front ends (not limited by the flood defence: they
    /// relay many users' traffic).
    pub fn member_ips(&self) -> Vec<std::net::IpAddr> {
        self.members
            .read()
            .values()
            .filter(|m| m.alive)
            .map(|m| m.dest.addr.ip())
            .collect()
    }

    fn queue(&self, r: Shared) {
        if self.writes.try_send(r).is_err() {
            let n = self.dropped_writes.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    "shared location: the store writer is behind, {} binding changes not shared",
                    n + 1
                );
            }
        }
    }
}

impl Core {
    /// Shares the registrar's changes to `aor`'s bindings: `(key, Some(binding))` made or
    /// refreshed, `(key, None)` removed.
    pub(crate) fn share_bindings(
        &self,
        aor: &str,
        changes: Vec<(String, Option<Binding>)>,
        src: &Source,
    ) {
        let Some(pool) = &self.pool else {
            return;
        };
        let source = format!("{}:{}", src.transport.param(), src.remote);
        for (key, b) in changes {
            let row = match b {
                Some(b) => confab_store::Registration {
                    aor: aor.to_string(),
                    binding: key,
                    q: i64::from(b.q),
                    expires_at: self.wall.unix_ms_at(b.expires_at).max(1),
                    call_id: b.call_id,
                    cseq: i64::from(b.cseq),
                    instance: b.instance,
                    reg_id: b.reg_id.map(i64::from),
                    // a contact registered over a connection is reached through this front
                    // end even when its address looks direct: here the connection is
                    // reused (or one opened to the contact, as on a single server)
                    flow: b
                        .flow
                        .or_else(|| {
                            src.transport
                                .is_reliable()
                                .then(|| confab_sip::Uri::parse(&b.uri).ok())
                                .flatten()
                                .and_then(|u| crate::core::uri_dest(&u))
                        })
                        .as_ref()
                        .map(crate::route_token::encode_flow),
                    path: b.path,
                    user_agent: b.user_agent,
                    contact: b.uri,
                    source: source.clone(),
                    front_end: pool.name.to_string(),
                    seq: 0,
                },
                None => confab_store::Registration {
                    aor: aor.to_string(),
                    binding: key,
                    contact: String::new(),
                    q: 0,
                    expires_at: 0,
                    call_id: String::new(),
                    cseq: 0,
                    instance: None,
                    reg_id: None,
                    flow: None,
                    path: vec![],
                    user_agent: None,
                    source: source.clone(),
                    front_end: pool.name.to_string(),
                    seq: 0,
                },
            };
            pool.queue(Shared::Binding(row));
        }
    }

    /// Shares a publication made, refreshed (`body` empty: the document is unchanged) or
    /// removed (`body` None).
    pub(crate) fn share_publication(
        &self,
        presentity: &str,
        id: String,
        etag: &str,
        body: Option<bytes::Bytes>,
        until: Instant,
    ) {
        let Some(pool) = &self.pool else {
            return;
        };
        let (doc, expires_at) = match body {
            Some(b) => (
                String::from_utf8_lossy(&b).into_owned(),
                self.wall.unix_ms_at(until).max(1),
            ),
            None => (String::new(), 0),
        };
        pool.queue(Shared::Publication(confab_store::SharedPublication {
            presentity: presentity.to_string(),
            publication: id,
            etag: etag.to_string(),
            doc,
            expires_at,
            front_end: pool.name.to_string(),
            seq: 0,
        }));
    }

    /// Proxy targets for bindings, wherever in the pool they are held: this server's
    /// directly (or over their flow); another front end's over its flow through that
    /// front end; those of a dead front end not at all (its connections are gone).
    pub(crate) fn binding_targets(&self, bindings: Vec<Binding>) -> Vec<Target> {
        let Some(pool) = &self.pool else {
            return Target::for_bindings(bindings);
        };
        let mut local = Vec::with_capacity(bindings.len());
        let mut remote = vec![];
        for b in bindings {
            match (&b.owner, b.flow) {
                (Some(owner), Some(flow)) => {
                    let Some(fe) = pool.alive_member(owner) else {
                        continue;
                    };
                    remote.push(Target {
                        uri: Some(b.uri),
                        path: b.path,
                        via_pool: true,
                        pool_flow: Some(flow),
                        ..Target::hop(fe)
                    });
                }
                _ => local.push(b),
            }
        }
        let mut targets = Target::for_bindings(local);
        targets.extend(remote);
        targets
    }

    /// A change of the shared location made by another front end, applied here; `true`
    /// when `aor` went from no binding to some or back (its presence changed).
    /// `own`: a row this front end wrote before it restarted (taken back as its own).
    pub(crate) fn apply_shared(
        &self,
        r: &confab_store::Registration,
        own: bool,
        now: Instant,
        now_ms: i64,
    ) -> bool {
        let before = self.location.has_bindings(&r.aor, now);
        let owner: Option<Arc<str>> = (!own).then(|| r.front_end.as_str().into());
        let binding = (!r.removed() && r.expires_at > now_ms).then(|| Binding {
            uri: r.contact.clone(),
            q: r.q.clamp(0, 1000) as u16,
            expires_at: self.wall.instant_of_unix_ms(r.expires_at, now),
            call_id: r.call_id.clone(),
            cseq: r.cseq.clamp(0, u32::MAX as i64) as u32,
            instance: r.instance.clone(),
            reg_id: r.reg_id.and_then(|x| u32::try_from(x).ok()),
            flow: r.flow.as_deref().and_then(crate::route_token::decode_flow),
            path: r.path.clone(),
            user_agent: r.user_agent.clone(),
            owner,
        });
        self.location.update(&r.aor, |list| {
            list.retain(|b| b.key() != r.binding);
            if let Some(b) = binding {
                list.push(b);
            }
        });
        let after = self.location.has_bindings(&r.aor, now);
        if before && !after {
            // signed out everywhere (through another front end): as the registrar does
            self.presence.drop_publications(&r.aor);
        }
        before != after
    }
}

/// A BYE sent in a dead host's name must be taken as newer than anything the host sent in
/// the dialog (RFC 3261 §12.2.2: a lower CSeq is refused); the host's own count starts at 1.
const SEAT_BYE_CSEQ: u32 = (1 << 31) - 2;

impl Core {
    /// The front ends in `hosts` died: our participants seated in meetings they hosted are
    /// sent a BYE in the focus's name (their media went with the host), and those calls are
    /// over here.
    pub(crate) fn end_seats_hosted_by(
        &self,
        hosts: &[String],
        now: Instant,
        out: &mut Vec<crate::net::Outgoing>,
    ) {
        if hosts.is_empty() {
            return;
        }
        let mut seats = vec![];
        for shard in &self.shards {
            shard.lock().retain_calls(&self.active_calls, |c| {
                match c.seat.take_if(|s| hosts.contains(&s.host)) {
                    Some(seat) => {
                        seats.push(seat);
                        false
                    }
                    None => true,
                }
            });
        }
        for mut seat in seats {
            seat.dialog.cseq = SEAT_BYE_CSEQ;
            tracing::info!(front_end = %seat.host, call_id = %seat.dialog.call_id, "the meeting's front end died: hanging up its participant here");
            if let Some(bye) = seat.dialog.request(self, confab_sip::Method::Bye) {
                let dest = seat.dialog.dest;
                self.send_own_request(bye, dest, None, now, out);
            }
        }
    }
}
