//! Flood and password-guessing defence: per-source-address rate limits with temporary bans
//! (what Kamailio's pike does), and digest failure lockouts per user and per address with
//! back-off. Every ban and lockout is logged.

use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    /// Failed digest attempts for one user within `auth_window_secs` before it is locked.
    pub max_auth_failures_per_user: u32,
    /// Failed digest attempts from one address within the window before it is locked.
    pub max_auth_failures_per_address: u32,
    pub auth_window_secs: u64,
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
            lockout_secs: 30,
            max_lockout_secs: 900,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
    banned_until: Option<Instant>,
}

#[derive(Default)]
struct Failures {
    /// start of the current window and failures in it
    window_start: Option<Instant>,
    count: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
}

const SHARDS: usize = 16;

pub struct Defence {
    /// Replaced when an administrator changes CsDefenseConfiguration.
    cfg: parking_lot::RwLock<DefenceConfig>,
    buckets: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
    failures: Mutex<HashMap<String, Failures>>,
    /// Entries in `failures`, so the common case (nobody failing) costs no lock or
    /// allocation on every authenticated request.
    tracked: AtomicUsize,
}

/// Why authentication is refused before the password is even checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Locked {
    User(Duration),
    Address(Duration),
}

impl Defence {
    pub fn new(cfg: DefenceConfig) -> Defence {
        Defence {
            cfg: parking_lot::RwLock::new(cfg),
            buckets: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            failures: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
        }
    }

    /// Applies new settings; bans and lockouts already in force keep their end time.
    pub fn configure(&self, cfg: DefenceConfig) {
        let mut cur = self.cfg.write();
        if *cur != cfg {
            tracing::info!(?cfg, "defence settings changed");
            *cur = cfg;
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

    /// Whether a message from `ip` may be processed (token bucket; a source that empties
    /// its bucket is banned for `ban_secs`).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let cfg = self.cfg.read();
        if !cfg.enabled || cfg.trusted.contains(&ip) {
            return true;
        }
        let mut shard = self.shard(&ip).lock();
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
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + elapsed * cfg.requests_per_second as f64).min(cfg.burst as f64);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return true;
        }
        b.banned_until = Some(now + Duration::from_secs(cfg.ban_secs));
        tracing::warn!(%ip, secs = cfg.ban_secs, "flood: address banned (over {} messages/s)", cfg.requests_per_second);
        false
    }

    /// Whether credentials for `user` from `ip` may be checked at all.
    pub fn auth_locked(&self, user: &str, ip: IpAddr, now: Instant) -> Option<Locked> {
        let cfg = self.cfg.read();
        if !cfg.enabled || cfg.trusted.contains(&ip) || self.tracked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let f = self.failures.lock();
        let left = |k: &str| {
            f.get(k)
                .and_then(|x| x.locked_until)
                .and_then(|u| u.checked_duration_since(now))
        };
        if let Some(d) = left(&format!("ip:{ip}")) {
            return Some(Locked::Address(d));
        }
        left(&format!("user:{user}")).map(Locked::User)
    }

    /// A failed digest attempt: counts against the user and the address.
    pub fn auth_failed(&self, user: &str, ip: IpAddr, now: Instant) {
        let cfg = self.cfg.read();
        if !cfg.enabled || cfg.trusted.contains(&ip) {
            return;
        }
        let mut f = self.failures.lock();
        for (key, max) in [
            (format!("user:{user}"), cfg.max_auth_failures_per_user),
            (format!("ip:{ip}"), cfg.max_auth_failures_per_address),
        ] {
            let e = f.entry(key.clone()).or_default();
            let window = Duration::from_secs(cfg.auth_window_secs);
            if e.window_start
                .is_none_or(|s| now.saturating_duration_since(s) > window)
            {
                e.window_start = Some(now);
                e.count = 0;
            }
            e.count += 1;
            if e.count >= max {
                let secs = (cfg.lockout_secs << e.lockouts.min(16)).min(cfg.max_lockout_secs);
                e.locked_until = Some(now + Duration::from_secs(secs));
                e.lockouts += 1;
                e.count = 0;
                e.window_start = None;
                tracing::warn!(%key, secs, "password guessing: locked out after {max} failed attempts");
            }
        }
        self.tracked.store(f.len(), Ordering::Relaxed);
    }

    /// A successful sign-in clears the user's failure count (not its lockout history).
    pub fn auth_succeeded(&self, user: &str) {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(e) = self.failures.lock().get_mut(&format!("user:{user}")) {
            e.count = 0;
            e.window_start = None;
        }
    }

    /// Forgets expired state (every second), so memory stays bounded under spoofed floods.
    pub fn sweep(&self, now: Instant) {
        let cfg = self.cfg.read();
        for s in &self.buckets {
            s.lock().retain(|_, b| {
                b.banned_until.is_some_and(|u| u > now)
                    || now.saturating_duration_since(b.last) < Duration::from_secs(10)
            });
        }
        let window = Duration::from_secs(cfg.auth_window_secs);
        let mut f = self.failures.lock();
        f.retain(|_, e| {
            e.locked_until.is_some_and(|u| u > now)
                || e.window_start
                    .is_some_and(|s| now.saturating_duration_since(s) <= window)
                || e.lockouts > 0
                    && e.locked_until.is_some_and(|u| {
                        now.saturating_duration_since(u) < Duration::from_secs(3600)
                    })
        });
        self.tracked.store(f.len(), Ordering::Relaxed);
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

    #[test]
    fn password_guessing_locks_user_and_address_with_backoff() {
        let d = Defence::new(DefenceConfig {
            max_auth_failures_per_user: 3,
            max_auth_failures_per_address: 5,
            lockout_secs: 10,
            ..cfg()
        });
        let t0 = Instant::now();
        let (attacker, user): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(d.auth_locked("alice", attacker, t0), None);
            d.auth_failed("alice", attacker, t0);
        }
        assert!(
            matches!(d.auth_locked("alice", user, t0), Some(Locked::User(_))),
            "the user is locked everywhere, briefly"
        );
        assert_eq!(
            d.auth_locked("alice", user, t0 + Duration::from_secs(11)),
            None,
            "and free after the window"
        );
        assert_eq!(d.auth_locked("bob", user, t0), None);
        // the address goes on guessing other users: the address is locked
        d.auth_failed("bob", attacker, t0);
        d.auth_failed("carol", attacker, t0);
        assert!(matches!(
            d.auth_locked("dave", attacker, t0),
            Some(Locked::Address(_))
        ));
        assert_eq!(d.auth_locked("dave", user, t0), None);
        // back-off: alice's second lockout lasts twice as long
        let t1 = t0 + Duration::from_secs(12);
        for _ in 0..3 {
            d.auth_failed("alice", "127.0.0.9".parse().unwrap(), t1);
        }
        assert!(d
            .auth_locked("alice", user, t1 + Duration::from_secs(15))
            .is_some());
        assert!(d
            .auth_locked("alice", user, t1 + Duration::from_secs(21))
            .is_none());
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
