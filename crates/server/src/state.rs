//! Saving the in-memory state on a graceful stop and taking it back at start: registrations
//! (except those that depend on a TCP connection, which a restart closes), presence
//! publications and subscriptions. A crash loses it; clients then refresh as usual.

use crate::config::Transport;
use crate::core::Core;
use crate::location::Binding;
use crate::net::Dest;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Serialize, Deserialize)]
struct SavedFlow {
    transport: String,
    addr: SocketAddr,
}

impl SavedFlow {
    fn from(d: &Dest) -> Option<SavedFlow> {
        (d.transport == Transport::Udp).then(|| SavedFlow {
            transport: "udp".into(),
            addr: d.addr,
        })
    }

    fn dest(&self) -> Option<Dest> {
        Some(Dest {
            transport: Transport::parse(&self.transport)?,
            addr: self.addr,
            conn: None,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct SavedBinding {
    aor: String,
    uri: String,
    q: u16,
    expires: u64,
    call_id: String,
    cseq: u32,
    instance: Option<String>,
    reg_id: Option<u32>,
    flow: Option<SavedFlow>,
    path: Vec<String>,
    user_agent: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SavedPublication {
    pub aor: String,
    pub etag: String,
    pub expires: u64,
    pub doc: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SavedSubscription {
    pub winfo: bool,
    pub watcher: String,
    pub presentity: String,
    pub call_id: String,
    pub our_tag: String,
    pub their_from: String,
    pub our_from: String,
    pub target: String,
    pub routes: Vec<String>,
    pub dest: SocketAddr,
    pub cseq: u32,
    pub expires: u64,
}

/// Instants as unix seconds and back (the process clock does not survive a restart).
pub(crate) struct Clock {
    now: Instant,
    unix: u64,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            now: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    pub fn to_unix(&self, t: Instant) -> u64 {
        self.unix + t.saturating_duration_since(self.now).as_secs()
    }

    /// None when already past.
    pub fn to_instant(&self, unix: u64) -> Option<Instant> {
        (unix > self.unix).then(|| self.now + Duration::from_secs(unix - self.unix))
    }
}

const BINDINGS: &str = "bindings";
const PUBLICATIONS: &str = "publications";
const SUBSCRIPTIONS: &str = "subscriptions";

impl Core {
    /// Writes registrations and presence state to the store (on a graceful stop).
    pub fn save_state(&self) -> anyhow::Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let clock = Clock::now();
        let bindings: Vec<String> = self
            .location
            .export(clock.now)
            .into_iter()
            // with a pool, the shared location in the store keeps them
            .filter(|_| self.pool.is_none())
            .filter(|(_, b)| b.flow.is_none_or(|f| f.transport == Transport::Udp))
            .map(|(aor, b)| {
                serde_json::to_string(&SavedBinding {
                    aor,
                    expires: clock.to_unix(b.expires_at),
                    flow: b.flow.as_ref().and_then(SavedFlow::from),
                    uri: b.uri,
                    q: b.q,
                    call_id: b.call_id,
                    cseq: b.cseq,
                    instance: b.instance,
                    reg_id: b.reg_id,
                    path: b.path,
                    user_agent: b.user_agent,
                })
                .expect("serializable")
            })
            .collect();
        let (pubs, subs) = self.presence.export(&clock);
        let pubs: Vec<String> = pubs
            .iter()
            .filter(|_| self.pool.is_none())
            .map(|p| serde_json::to_string(p).expect("serializable"))
            .collect();
        let subs: Vec<String> = subs
            .iter()
            .map(|s| serde_json::to_string(s).expect("serializable"))
            .collect();
        store.save_snapshot(&self.snapshot_kind(BINDINGS), &bindings)?;
        store.save_snapshot(&self.snapshot_kind(PUBLICATIONS), &pubs)?;
        store.save_snapshot(&self.snapshot_kind(SUBSCRIPTIONS), &subs)?;
        tracing::info!(
            "saved {} registrations, {} publications, {} subscriptions",
            bindings.len(),
            pubs.len(),
            subs.len()
        );
        Ok(())
    }

    /// Snapshots are kept per server (named by its first listening address), so servers
    /// sharing one store (PostgreSQL) each take back only their own state.
    fn snapshot_kind(&self, kind: &str) -> String {
        match self.listeners().first() {
            Some(l) => format!("{kind}@{}", l.addr),
            None => kind.to_string(),
        }
    }

    /// This server's snapshot, and one saved by a version that did not name servers.
    fn take_own_snapshot(
        &self,
        store: &confab_store::Store,
        kind: &str,
    ) -> Result<Vec<String>, confab_store::StoreError> {
        let mut items = store.take_snapshot(&self.snapshot_kind(kind))?;
        if self.snapshot_kind(kind) != kind {
            items.extend(store.take_snapshot(kind)?);
        }
        Ok(items)
    }

    /// Takes back what [`Core::save_state`] wrote (at start); expired items are dropped.
    pub fn load_state(&self) -> anyhow::Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let clock = Clock::now();
        let mut n = 0;
        for item in self.take_own_snapshot(store, BINDINGS)? {
            let Ok(b) = serde_json::from_str::<SavedBinding>(&item) else {
                continue;
            };
            let Some(expires_at) = clock.to_instant(b.expires) else {
                continue;
            };
            let binding = Binding {
                uri: b.uri,
                q: b.q,
                expires_at,
                call_id: b.call_id,
                cseq: b.cseq,
                instance: b.instance,
                reg_id: b.reg_id,
                flow: b.flow.as_ref().and_then(SavedFlow::dest),
                path: b.path,
                user_agent: b.user_agent,
                owner: None,
            };
            if self.pool.is_some() {
                continue; // the shared location in the store has them
            }
            self.location.update(&b.aor, |list| list.push(binding));
            n += 1;
        }
        let pubs: Vec<SavedPublication> = self
            .take_own_snapshot(store, PUBLICATIONS)?
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            // with a pool, the store's shared publications have them
            .filter(|_| self.pool.is_none())
            .collect();
        let subs: Vec<SavedSubscription> = self
            .take_own_snapshot(store, SUBSCRIPTIONS)?
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
        let (p, s) = self.presence.import(&clock, pubs, subs, || self.next_id());
        if self.pool.is_some() {
            if s > 0 {
                // registrations and publications came from the pool's shared copies
                tracing::info!("restored {s} subscriptions");
            }
        } else if n + p + s > 0 {
            tracing::info!("restored {n} registrations, {p} publications, {s} subscriptions");
        }
        Ok(())
    }
}
