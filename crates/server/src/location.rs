//! The location service: address-of-record → contact bindings (RFC 3261 §10).
//! Sharded by AoR so registrations and lookups on different users don't contend.

use crate::net::Dest;
use parking_lot::Mutex;
use rustc_hash::{FxHashMap as HashMap, FxHasher};
use std::hash::{Hash, Hasher};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Binding {
    /// The Contact URI as registered (without angle brackets).
    pub uri: String,
    /// q-value ×1000 (0..=1000).
    pub q: u16,
    pub expires_at: Instant,
    pub call_id: String,
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626 / GRUU): the device, stable across re-registrations.
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    /// The connection or NAT binding the REGISTER came on, used to reach the contact when it
    /// is behind NAT or asked for outbound (RFC 5626); `None` means use the Contact URI.
    pub flow: Option<Dest>,
    /// Path headers (RFC 3327) to put as Route on requests to this contact.
    pub path: Vec<String>,
    pub user_agent: Option<String>,
    /// The front end of the pool that holds this binding (its flow), when it is another
    /// one (pool/); `None`: this server.
    pub owner: Option<std::sync::Arc<str>>,
}

impl Binding {
    /// The binding's identity within its AoR, as the shared location keys it: the device
    /// (instance + reg-id) when it has a reg-id, else the contact URI (as `same_as`).
    pub fn key(&self) -> String {
        match (&self.instance, self.reg_id) {
            (Some(i), Some(r)) => format!("{i};reg-id={r}"),
            _ => self.uri.to_ascii_lowercase(),
        }
    }

    /// Two contacts are the same binding if they name the same device (instance + reg-id)
    /// or the same URI.
    pub fn same_as(&self, other: &Binding) -> bool {
        match (&self.instance, &other.instance) {
            (Some(a), Some(b)) if self.reg_id.is_some() || other.reg_id.is_some() => {
                a == b && self.reg_id == other.reg_id
            }
            _ => uri_eq(&self.uri, &other.uri),
        }
    }
}

/// Simplified RFC 3261 §19.1.4 comparison: scheme and host case-insensitive, the rest exact.
pub fn uri_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || {
        match (confab_sip::Uri::parse(a), confab_sip::Uri::parse(b)) {
            (Ok(x), Ok(y)) => {
                x.scheme == y.scheme
                    && x.user == y.user
                    && x.host.eq_ignore_ascii_case(y.host)
                    && x.port == y.port
                    && x.transport().map(str::to_ascii_lowercase)
                        == y.transport().map(str::to_ascii_lowercase)
            }
            _ => false,
        }
    }
}

const SHARDS: usize = 64;

pub struct Location {
    shards: Vec<Mutex<HashMap<String, Vec<Binding>>>>,
}

impl Default for Location {
    fn default() -> Self {
        Location {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }
}

impl Location {
    fn shard(&self, aor: &str) -> &Mutex<HashMap<String, Vec<Binding>>> {
        let mut h = FxHasher::default();
        aor.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// Live bindings of `aor`, best q first (ties: most recent first).
    pub fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let shard = self.shard(aor).lock();
        let mut v: Vec<Binding> = match shard.get(aor) {
            Some(b) => b.iter().filter(|b| b.expires_at > now).cloned().collect(),
            None => return vec![],
        };
        drop(shard);
        v.sort_by(|a, b| b.q.cmp(&a.q).then(b.expires_at.cmp(&a.expires_at)));
        v
    }

    pub fn has_bindings(&self, aor: &str, now: Instant) -> bool {
        self.shard(aor)
            .lock()
            .get(aor)
            .is_some_and(|l| l.iter().any(|b| b.expires_at > now))
    }

    /// Runs `f` on the bindings of `aor` under the shard lock; empty lists are removed.
    pub fn update<R>(&self, aor: &str, f: impl FnOnce(&mut Vec<Binding>) -> R) -> R {
        let mut shard = self.shard(aor).lock();
        let list = shard.entry(aor.to_string()).or_default();
        let r = f(list);
        if list.is_empty() {
            shard.remove(aor);
        } else if list.capacity() > list.len() {
            // most users have one or two devices: Vec's growth to 4 would double the table
            list.shrink_to_fit();
        }
        r
    }

    /// Drops expired bindings; returns the AoRs left with none.
    pub fn sweep(&self, now: Instant) -> Vec<String> {
        let mut emptied = vec![];
        for s in &self.shards {
            let mut map = s.lock();
            map.retain(|aor, list| {
                list.retain(|b| b.expires_at > now);
                if list.is_empty() {
                    emptied.push(aor.clone());
                }
                !list.is_empty()
            });
        }
        emptied
    }

    /// Every live binding with its AoR (for saving the state).
    pub fn export(&self, now: Instant) -> Vec<(String, Binding)> {
        let mut out = vec![];
        for s in &self.shards {
            for (aor, list) in s.lock().iter() {
                out.extend(
                    list.iter()
                        .filter(|b| b.expires_at > now)
                        .map(|b| (aor.clone(), b.clone())),
                );
            }
        }
        out
    }

    /// Removes the bindings `drop` picks, everywhere; returns the AoRs left with none.
    pub fn remove_where(&self, drop: impl Fn(&Binding) -> bool) -> Vec<String> {
        let mut emptied = vec![];
        for s in &self.shards {
            let mut map = s.lock();
            map.retain(|aor, list| {
                let before = list.len();
                list.retain(|b| !drop(b));
                if list.is_empty() && before > 0 {
                    emptied.push(aor.clone());
                }
                !list.is_empty()
            });
        }
        emptied
    }

    /// Bindings this server holds (not other front ends' of the pool).
    pub fn count_own_bindings(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .values()
                    .map(|l| l.iter().filter(|b| b.owner.is_none()).count())
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn count_bindings(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().values().map(Vec::len).sum::<usize>())
            .sum()
    }
}
