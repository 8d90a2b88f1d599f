//! Flood and password-guessing defence: per-source-address rate limits with temporary bans
//! (what Kamailio's pike does), and sign-in lockouts that tell a guesser from a client
//! retrying a stale password. Every ban and lockout is logged.
//!
//! Sign-in failures (SIP digest cannot tell one wrong password from another):
//! - after a failed verification for (account, address), that pair is refused without
//!   evaluating the password and without counting for `auth_retry_secs`, doubling with each
//!   further failure of the pair: a client retrying on every fresh nonce counts once;
//! - an account is locked after `max_auth_failures_per_user` counted failures within
//!   `auth_window_secs` (from any addresses); the lockout doubles each time;
//! - an address is locked only when failures for `max_auth_failures_per_address` distinct
//!   accounts come from it within the window (guessing across accounts);
//! - an (account, address) pair that signed in successfully within [`FAMILIAR_SECS`] is
//!   still evaluated while the account or the address is locked, so a guesser behind the
//!   office NAT (or elsewhere) does not lock out the users who sign in from there.
//!
//! Every table is bounded: entries that carry nothing (a full token bucket, an expired
//! back-off) go first; under traffic from more addresses than fit, the least suspicious
//! entries are dropped and bans are kept.

use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefenceConfig {
    pub enabled: bool,
    /// Messages per second one source address may send on average…
    pub requests_per_second: u32,
    /// …and in a burst.
    pub burst: u32,
    /// How long a flooding address is ignored.
    pub ban_secs: u64,
    /// Addresses never limited (e.g. a load balancer, or a benchmark client).
    pub trusted: Vec<IpAddr>,
    /// Counted failed sign-ins for one account within `auth_window_secs` before it is locked.
    pub max_auth_failures_per_user: u32,
    /// Distinct accounts failing to sign in from one address within the window before the
    /// address is locked.
    pub max_auth_failures_per_address: u32,
    pub auth_window_secs: u64,
    /// After a failed sign-in, the same account from the same address is refused (not
    /// checked, not counted) for this long; doubles with each further failure of the pair,
    /// up to `max_lockout_secs`.
    pub auth_retry_secs: u64,
    /// First lockout; each further lockout of the same key doubles it, up to `max_lockout_secs`.
    pub lockout_secs: u64,
    pub max_lockout_secs: u64,
}

impl Default for DefenceConfig {
    fn default() -> Self {
        DefenceConfig {
            enabled: true,
            requests_per_second: 1000,
            burst: 2000,
            ban_secs: 60,
            trusted: vec![],
            max_auth_failures_per_user: 10,
            max_auth_failures_per_address: 20,
            auth_window_secs: 60,
            auth_retry_secs: 2,
            lockout_secs: 30,
            max_lockout_secs: 900,
        }
    }
}

/// How long a successful sign-in of an account from an address keeps that pair familiar.
pub const FAMILIAR_SECS: u64 = 24 * 3600;
/// Source addresses the flood defence tracks at once, per shard (16 shards).
const ADDRESSES_PER_SHARD: usize = 8192;
/// Entries of each sign-in failure table (pairs, accounts, addresses), and of familiar
/// pairs per shard.
const AUTH_ENTRIES: usize = 65536;
const FAMILIAR_PER_SHARD: usize = 16384;

struct Bucket {
    tokens: f64,
    last: Instant,
    banned_until: Option<Instant>,
}

impl Bucket {
    fn tokens_at(&self, now: Instant, cfg: &DefenceConfig) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * cfg.requests_per_second as f64).min(cfg.burst as f64)
    }

    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|u| u > now)
    }
}

/// Back-off of one (account, address) pair after failures.
struct Pair {
    failures: u32,
    retry_until: Instant,
}

/// Counted failures and lockouts of one account or one address.
#[derive(Default)]
struct Failures {
    /// start of the current window and failures in it
    window_start: Option<Instant>,
    count: u32,
    /// for an address: the accounts (hashed) that failed from it in the window
    accounts: Vec<u64>,
    locked_until: Option<Instant>,
    lockouts: u32,
}

impl Failures {
    fn locked(&self, now: Instant) -> Option<Instant> {
        self.locked_until.filter(|u| *u > now)
    }

    /// Whether the entry still matters at `now` (a lock, a window, a recent lockout).
    fn live(&self, now: Instant, window: Duration) -> bool {
        self.locked(now).is_some()
            || self
                .window_start
                .is_some_and(|s| now.saturating_duration_since(s) <= window)
            || self.lockouts > 0
                && self
                    .locked_until
                    .is_some_and(|u| now.saturating_duration_since(u) < Duration::from_secs(3600))
    }

    /// Starts a new window when the last one is over.
    fn roll(&mut self, now: Instant, window: Duration) {
        if self
            .window_start
            .is_none_or(|s| now.saturating_duration_since(s) > window)
        {
            self.window_start = Some(now);
            self.count = 0;
            self.accounts.clear();
        }
    }

    /// Locks for the next back-off step; returns its length in seconds.
    fn lock(&mut self, now: Instant, cfg: &DefenceConfig) -> u64 {
        let secs = (cfg.lockout_secs << self.lockouts.min(16)).min(cfg.max_lockout_secs);
        self.locked_until = Some(now + Duration::from_secs(secs));
        self.lockouts += 1;
        self.count = 0;
        self.accounts.clear();
        self.window_start = None;
        secs
    }
}

#[derive(Default)]
struct AuthState {
    /// (account, address) hashed → back-off
    pairs: HashMap<u64, Pair>,
    /// account hashed (names are the client's to choose: a hash keeps entries small)
    accounts: HashMap<u64, Failures>,
    addresses: HashMap<IpAddr, Failures>,
}

impl AuthState {
    fn len(&self) -> usize {
        self.pairs.len() + self.accounts.len() + self.addresses.len()
    }

    fn sweep(&mut self, now: Instant, cfg: &DefenceConfig) {
        let window = Duration::from_secs(cfg.auth_window_secs);
        // a pair's back-off keeps growing while failures go on within the window
        self.pairs.retain(|_, p| {
            p.retry_until > now || now.saturating_duration_since(p.retry_until) <= window
        });
        self.accounts.retain(|_, f| f.live(now, window));
        self.addresses.retain(|_, f| f.live(now, window));
    }
}

/// Makes room for one more entry in `map` (at most `cap`): entries that no longer matter
/// go first, then arbitrary ones that are not locked, down to three quarters.
fn make_room<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    matters: impl Fn(&V) -> bool,
    locked: impl Fn(&V) -> bool,
) {
    if map.len() < cap {
        return;
    }
    map.retain(|_, v| matters(v));
    if map.len() < cap {
        return;
    }
    let excess = map.len() - cap * 3 / 4;
    let drop: Vec<K> = map
        .iter()
        .filter(|(_, v)| !locked(v))
        .map(|(k, _)| k.clone())
        .take(excess)
        .collect();
    for k in drop {
        map.remove(&k);
    }
}

const SHARDS: usize = 16;

pub struct Defence {
    /// Replaced when an administrator changes CsDefenseConfiguration.
    cfg: parking_lot::RwLock<DefenceConfig>,
    buckets: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
    addresses_per_shard: usize,
    auth: Mutex<AuthState>,
    /// Entries in `auth`, so the common case (nobody failing) costs no lock on every
    /// authenticated request.
    tracked: AtomicUsize,
    /// (account, address) hashed → last successful sign-in.
    familiar: Vec<Mutex<HashMap<u64, Instant>>>,
    /// Keys the pair hashes (random per process: collisions cannot be aimed at).
    hasher: RandomState,
    /// `trusted` as configured, and the pool's other front ends added to it.
    base_trusted: parking_lot::RwLock<Vec<IpAddr>>,
    pool_peers: parking_lot::RwLock<Vec<IpAddr>>,
}

/// Why a sign-in is refused before the password is even checked: answered 403 with this
/// reason phrase and Retry-After.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub retry_after: Duration,
}

/// An account name for a reason phrase (a client may send a long one).
fn shown(account: &str) -> &str {
    if account.len() <= 128 {
        account
    } else {
        "this account"
    }
}

/// `left` from now as a wall-clock time of day, for reason phrases.
fn ends_at(left: Duration) -> String {
    let t = (SystemTime::now() + left)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86400;
    format!("{:02}:{:02}:{:02} UTC", t / 3600, t / 60 % 60, t % 60)
}

impl Defence {
    pub fn new(cfg: DefenceConfig) -> Defence {
        Self::with_capacity(cfg, ADDRESSES_PER_SHARD)
    }

    /// With room for `addresses_per_shard` source addresses in each of the 16 shards of
    /// the flood table.
    pub fn with_capacity(cfg: DefenceConfig, addresses_per_shard: usize) -> Defence {
        Defence {
            base_trusted: parking_lot::RwLock::new(cfg.trusted.clone()),
            pool_peers: parking_lot::RwLock::new(vec![]),
            cfg: parking_lot::RwLock::new(cfg),
            buckets: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            addresses_per_shard: addresses_per_shard.max(4),
            auth: Mutex::new(AuthState::default()),
            tracked: AtomicUsize::new(0),
            familiar: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Applies new settings; bans and lockouts already in force keep their end time.
    pub fn configure(&self, mut cfg: DefenceConfig) {
        *self.base_trusted.write() = cfg.trusted.clone();
        for ip in self.pool_peers.read().iter() {
            if !cfg.trusted.contains(ip) {
                cfg.trusted.push(*ip);
            }
        }
        let mut cur = self.cfg.write();
        if *cur != cfg {
            tracing::info!(?cfg, "defence settings changed");
            *cur = cfg;
        }
    }

    /// The addresses of the pool's other front ends: never limited (they relay many users'
    /// traffic), whatever CsDefenseConfiguration says.
    pub fn set_pool_peers(&self, ips: Vec<IpAddr>) {
        let mut peers = self.pool_peers.write();
        if *peers == ips {
            return;
        }
        *peers = ips;
        let base = self.base_trusted.read().clone();
        let mut cfg = self.cfg.write();
        cfg.trusted = base;
        for ip in peers.iter() {
            if !cfg.trusted.contains(ip) {
                cfg.trusted.push(*ip);
            }
        }
    }

    pub fn config(&self) -> DefenceConfig {
        self.cfg.read().clone()
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, Bucket>> {
        let h = match ip {
            IpAddr::V4(v) => u32::from(*v) as usize,
            IpAddr::V6(v) => v
                .octets()
                .iter()
                .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(*b as usize)),
        };
        &self.buckets[h % SHARDS]
    }

    /// Whether `ip` is trusted (never limited).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let cfg = self.cfg.read();
        cfg.trusted.contains(&ip)
    }

    /// Source addresses tracked by the flood defence.
    pub fn tracked_addresses(&self) -> usize {
        self.buckets.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether a message from `ip` may be processed (token bucket; a source that empties
    /// its bucket is banned for `ban_secs`).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let cfg = self.cfg.read();
        if !cfg.enabled || cfg.trusted.contains(&ip) {
            return true;
        }
        let mut shard = self.shard(&ip).lock();
        if shard.len() >= self.addresses_per_shard && !shard.contains_key(&ip) {
            self.make_bucket_room(&mut shard, now, &cfg);
            if shard.len() >= self.addresses_per_shard {
                // every tracked address is banned: newcomers wait until bans end
                return false;
            }
        }
        let b = shard.entry(ip).or_insert(Bucket {
            tokens: cfg.burst as f64,
            last: now,
            banned_until: None,
        });
        if let Some(until) = b.banned_until {
            if now < until {
                return false;
            }
            b.banned_until = None;
            b.tokens = cfg.burst as f64;
            tracing::info!(%ip, "ban lifted");
        }
        b.tokens = b.tokens_at(now, &cfg);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return true;
        }
        b.banned_until = Some(now + Duration::from_secs(cfg.ban_secs));
        tracing::warn!(%ip, secs = cfg.ban_secs, "flood: address banned (over {} messages/s)", cfg.requests_per_second);
        false
    }

    /// A full shard: forget the buckets that are full again (they say nothing a new one
    /// would not), then, down to three quarters, those with the most tokens left (the
    /// least suspicious). Banned addresses stay. Linear in the shard, and it frees a
    /// quarter of it, so the cost per new address stays constant.
    fn make_bucket_room(
        &self,
        shard: &mut HashMap<IpAddr, Bucket>,
        now: Instant,
        cfg: &DefenceConfig,
    ) {
        let full = cfg.burst as f64;
        shard.retain(|_, b| b.banned(now) || b.tokens_at(now, cfg) < full);
        let target = self.addresses_per_shard * 3 / 4;
        if shard.len() <= target {
            return;
        }
        let mut candidates: Vec<(f64, IpAddr)> = shard
            .iter()
            .filter(|(_, b)| !b.banned(now))
            .map(|(ip, b)| (b.tokens_at(now, cfg), *ip))
            .collect();
        let excess = (shard.len() - target).min(candidates.len());
        if excess == 0 {
            return;
        }
        // the `excess` fullest buckets first
        candidates.select_nth_unstable_by(excess - 1, |a, b| b.0.total_cmp(&a.0));
        for (_, ip) in &candidates[..excess] {
            shard.remove(ip);
        }
    }

    fn pair_key(&self, account: &str, ip: IpAddr) -> u64 {
        self.hasher.hash_one((account, ip))
    }

    fn familiar_shard(&self, key: u64) -> &Mutex<HashMap<u64, Instant>> {
        &self.familiar[(key % SHARDS as u64) as usize]
    }

    fn is_familiar(&self, key: u64, now: Instant) -> bool {
        self.familiar_shard(key)
            .lock()
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < Duration::from_secs(FAMILIAR_SECS))
    }

    /// Whether `account`'s credentials from `ip` may be checked at all; if not, why (the
    /// answer is 403 with this reason and Retry-After).
    pub fn auth_gate(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let cfg = self.cfg.read();
        if !cfg.enabled || cfg.trusted.contains(&ip) || self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let key = self.pair_key(account, ip);
        let (retry, account_lock, address_lock) = {
            let a = self.auth.lock();
            (
                a.pairs
                    .get(&key)
                    .map(|p| p.retry_until)
                    .filter(|u| *u > now),
                a.accounts
                    .get(&self.hasher.hash_one(account))
                    .and_then(|f| f.locked(now)),
                a.addresses.get(&ip).and_then(|f| f.locked(now)),
            )
        };
        if let Some(until) = retry {
            let left = until - now;
            return Err(Refusal {
                reason: format!(
                    "Sign-in failed for {}; not checked again from this address until {}",
                    shown(account),
                    ends_at(left)
                ),
                retry_after: left,
            });
        }
        if account_lock.is_none() && address_lock.is_none() || self.is_familiar(key, now) {
            return Ok(());
        }
        if let Some(until) = account_lock {
            let left = until - now;
            return Err(Refusal {
                reason: format!(
                    "Account {} is locked after too many failed sign-ins until {}",
                    shown(account),
                    ends_at(left)
                ),
                retry_after: left,
            });
        }
        let left = address_lock.map(|u| u - now).unwrap_or_default();
        Err(Refusal {
            reason: format!(
                "Address {ip} is locked after failed sign-ins for many accounts until {}",
                ends_at(left)
            ),
            retry_after: left,
        })
    }

    /// A failed sign-in (wrong password or unknown account) that `auth_gate` let through:
    /// starts the pair's back-off and counts once against the account and the address.
    pub fn auth_failed(&self, account: &str, ip: IpAddr, now: Instant) {
        let cfg = self.cfg.read();
        if !cfg.enabled || cfg.trusted.contains(&ip) {
            return;
        }
        let key = self.pair_key(account, ip);
        let window = Duration::from_secs(cfg.auth_window_secs);
        let mut a = self.auth.lock();
        make_room(
            &mut a.pairs,
            AUTH_ENTRIES,
            |p| p.retry_until > now,
            |_| false,
        );
        let pair = a.pairs.entry(key).or_insert(Pair {
            failures: 0,
            retry_until: now,
        });
        if pair.retry_until > now {
            return; // within the back-off: not counted again
        }
        pair.failures = pair.failures.saturating_add(1);
        let backoff = (cfg.auth_retry_secs << (pair.failures - 1).min(16))
            .min(cfg.max_lockout_secs.max(cfg.auth_retry_secs));
        pair.retry_until = now + Duration::from_secs(backoff);

        let account_key = self.hasher.hash_one(account);
        if !a.accounts.contains_key(&account_key) {
            make_room(
                &mut a.accounts,
                AUTH_ENTRIES,
                |f| f.live(now, window),
                |f| f.locked(now).is_some(),
            );
        }
        let acct = a.accounts.entry(account_key).or_default();
        acct.roll(now, window);
        acct.count += 1;
        if acct.count >= cfg.max_auth_failures_per_user {
            let secs = acct.lock(now, &cfg);
            tracing::warn!(%account, secs, "password guessing: account locked after {} failed sign-ins", cfg.max_auth_failures_per_user);
        }

        make_room(
            &mut a.addresses,
            AUTH_ENTRIES,
            |f| f.live(now, window),
            |f| f.locked(now).is_some(),
        );
        let addr = a.addresses.entry(ip).or_default();
        addr.roll(now, window);
        if !addr.accounts.contains(&account_key) {
            addr.accounts.push(account_key);
        }
        if addr.accounts.len() as u32 >= cfg.max_auth_failures_per_address {
            let secs = addr.lock(now, &cfg);
            tracing::warn!(%ip, secs, "password guessing: address locked after failed sign-ins for {} accounts", cfg.max_auth_failures_per_address);
        }
        self.tracked.store(a.len(), Ordering::Relaxed);
    }

    /// A successful sign-in: the pair becomes familiar (still evaluated while the account
    /// or the address is locked) and its back-off ends.
    pub fn auth_succeeded(&self, account: &str, ip: IpAddr, now: Instant) {
        let key = self.pair_key(account, ip);
        {
            let mut f = self.familiar_shard(key).lock();
            if f.len() >= FAMILIAR_PER_SHARD && !f.contains_key(&key) {
                let familiar = Duration::from_secs(FAMILIAR_SECS);
                make_room(
                    &mut f,
                    FAMILIAR_PER_SHARD,
                    |t| now.saturating_duration_since(*t) < familiar,
                    |_| false,
                );
            }
            f.insert(key, now);
        }
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut a = self.auth.lock();
        a.pairs.remove(&key);
        self.tracked.store(a.len(), Ordering::Relaxed);
    }

    /// Forgets expired state (every second), so memory stays bounded under spoofed floods.
    pub fn sweep(&self, now: Instant) {
        let cfg = self.cfg.read();
        for s in &self.buckets {
            s.lock().retain(|_, b| {
                b.banned(now) || now.saturating_duration_since(b.last) < Duration::from_secs(10)
            });
        }
        let mut a = self.auth.lock();
        a.sweep(now, &cfg);
        self.tracked.store(a.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DefenceConfig {
        DefenceConfig {
            requests_per_second: 10,
            burst: 20,
            ban_secs: 5,
            ..Default::default()
        }
    }

    #[test]
    fn a_flooding_address_is_banned_others_are_not() {
        let d = Defence::new(cfg());
        let t0 = Instant::now();
        let (bad, good): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let allowed = (0..100).filter(|_| d.allow(bad, t0)).count();
        assert_eq!(allowed, 20, "the burst, then banned");
        assert!(d.allow(good, t0));
        assert!(!d.allow(bad, t0 + Duration::from_secs(4)), "still banned");
        assert!(d.allow(bad, t0 + Duration::from_secs(6)), "ban lifted");
    }

    #[test]
    fn steady_traffic_under_the_rate_passes() {
        let d = Defence::new(cfg());
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..200u64 {
            assert!(
                d.allow(ip, t0 + Duration::from_millis(i * 100)),
                "message {i}"
            );
        }
    }

    fn auth_cfg() -> DefenceConfig {
        DefenceConfig {
            max_auth_failures_per_user: 3,
            max_auth_failures_per_address: 3,
            auth_window_secs: 60,
            auth_retry_secs: 2,
            lockout_secs: 10,
            ..cfg()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_retry_burst_counts_once_and_locks_nothing() {
        let d = Defence::new(auth_cfg());
        let t0 = Instant::now();
        let office = ip("192.0.2.1");
        // a client with a stale password retrying on every fresh nonce: 10 tries in 25 ms
        let mut refused = 0;
        for i in 0..10u64 {
            let t = t0 + Duration::from_micros(2500 * i);
            match d.auth_gate("alice@x.test", office, t) {
                Ok(()) => d.auth_failed("alice@x.test", office, t),
                Err(r) => {
                    assert!(r.reason.contains("alice@x.test"), "{}", r.reason);
                    assert!(r.retry_after <= Duration::from_secs(2));
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 9, "checked once, then refused unevaluated");
        // a second start of the client after the back-off: counted once more, back-off doubles
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(d.auth_gate("alice@x.test", office, t1), Ok(()));
        d.auth_failed("alice@x.test", office, t1);
        let r = d
            .auth_gate("alice@x.test", office, t1 + Duration::from_secs(3))
            .unwrap_err();
        assert!(
            r.retry_after > Duration::from_millis(900),
            "4 s back-off: {r:?}"
        );
        // two counted failures: the account (limit 3) and the address are not locked
        assert_eq!(d.auth_gate("alice@x.test", ip("198.51.100.7"), t1), Ok(()));
        assert_eq!(d.auth_gate("bob@x.test", office, t1), Ok(()));
        // the right password ends the back-off
        d.auth_succeeded("alice@x.test", office, t1 + Duration::from_secs(1));
        assert_eq!(
            d.auth_gate("alice@x.test", office, t1 + Duration::from_secs(1)),
            Ok(())
        );
    }

    #[test]
    fn a_guessed_account_is_locked_with_backoff_but_not_for_its_familiar_addresses() {
        let d = Defence::new(auth_cfg());
        let t0 = Instant::now();
        let home = ip("192.0.2.1");
        d.auth_succeeded("alice@x.test", home, t0);
        // a guesser spreading over addresses: each one counts
        for i in 1..=3 {
            let g = ip(&format!("203.0.113.{i}"));
            assert_eq!(d.auth_gate("alice@x.test", g, t0), Ok(()));
            d.auth_failed("alice@x.test", g, t0);
        }
        let r = d
            .auth_gate("alice@x.test", ip("203.0.113.9"), t0)
            .unwrap_err();
        assert!(
            r.reason.contains("Account alice@x.test is locked"),
            "{}",
            r.reason
        );
        assert!(
            r.reason.contains("until") && r.reason.ends_with("UTC"),
            "{}",
            r.reason
        );
        assert_eq!(r.retry_after, Duration::from_secs(10));
        assert_eq!(
            d.auth_gate("alice@x.test", home, t0),
            Ok(()),
            "the owner's own address"
        );
        assert_eq!(d.auth_gate("bob@x.test", ip("203.0.113.9"), t0), Ok(()));
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(
            d.auth_gate("alice@x.test", ip("203.0.113.9"), t1),
            Ok(()),
            "lock over"
        );
        // the second lockout lasts twice as long
        for i in 4..=6 {
            d.auth_failed("alice@x.test", ip(&format!("203.0.113.{i}")), t1);
        }
        let r = d
            .auth_gate("alice@x.test", ip("203.0.113.9"), t1)
            .unwrap_err();
        assert_eq!(r.retry_after, Duration::from_secs(20));
        assert!(d
            .auth_gate(
                "alice@x.test",
                ip("203.0.113.9"),
                t1 + Duration::from_secs(21)
            )
            .is_ok());
    }

    #[test]
    fn guessing_across_accounts_locks_the_address_but_not_its_known_users() {
        let d = Defence::new(auth_cfg());
        let t0 = Instant::now();
        let nat = ip("192.0.2.1");
        d.auth_succeeded("carol@x.test", nat, t0);
        // one wrong account, retried: one account only, the address stays open
        for k in 0..5u64 {
            let t = t0 + Duration::from_secs(10 * k);
            if d.auth_gate("dave@x.test", nat, t).is_ok() {
                d.auth_failed("dave@x.test", nat, t);
            }
        }
        assert_eq!(d.auth_gate("erin@x.test", nat, t0), Ok(()));
        // guessing two more accounts: three in the window
        let t1 = t0 + Duration::from_secs(50);
        for u in ["u1@x.test", "u2@x.test"] {
            assert_eq!(d.auth_gate(u, nat, t1), Ok(()));
            d.auth_failed(u, nat, t1);
        }
        let r = d.auth_gate("erin@x.test", nat, t1).unwrap_err();
        assert!(
            r.reason.contains("Address 192.0.2.1 is locked"),
            "{}",
            r.reason
        );
        assert_eq!(
            d.auth_gate("carol@x.test", nat, t1),
            Ok(()),
            "signed in from there before"
        );
        assert_eq!(d.auth_gate("erin@x.test", ip("192.0.2.2"), t1), Ok(()));
        d.sweep(t0 + Duration::from_secs(3 * 3600));
        assert_eq!(d.tracked.load(Ordering::Relaxed), 0, "all forgotten");
    }

    #[test]
    fn the_flood_table_is_bounded_and_still_bans_the_flooder() {
        let d = Defence::with_capacity(cfg(), 64);
        let t0 = Instant::now();
        let flooder = ip("10.9.9.9");
        let mut banned = false;
        for i in 0..50_000u32 {
            let t = t0 + Duration::from_micros(i as u64 * 20);
            // a message from a new (spoofed) address each time, and the flooder in between
            d.allow(IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i)), t);
            if !d.allow(flooder, t) {
                banned = true;
            }
            assert!(d.tracked_addresses() <= 16 * 64);
        }
        assert!(banned, "the flooder (rate 10/s, burst 20) is banned");
        assert!(!d.allow(flooder, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn auth_tables_are_bounded() {
        let d = Defence::new(auth_cfg());
        let t0 = Instant::now();
        for i in 0..(AUTH_ENTRIES as u32 + 1000) {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0c00_0000 + i));
            d.auth_failed(&format!("u{i}@x.test"), a, t0);
        }
        let a = d.auth.lock();
        assert!(a.pairs.len() <= AUTH_ENTRIES && a.accounts.len() <= AUTH_ENTRIES);
        assert!(a.addresses.len() <= AUTH_ENTRIES);
    }

    #[test]
    fn trusted_and_disabled() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let d = Defence::new(DefenceConfig {
            trusted: vec![ip],
            ..cfg()
        });
        assert!((0..1000).all(|_| d.allow(ip, Instant::now())));
        let d = Defence::new(DefenceConfig {
            enabled: false,
            ..cfg()
        });
        assert!((0..1000).all(|_| d.allow(ip, Instant::now())));
    }
}
