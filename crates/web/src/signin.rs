//! Throttling of `POST /api/v1/tokens`: every sign-in costs an Argon2id evaluation (about
//! 19 MiB and tens of milliseconds), so an unthrottled flood of wrong passwords would exhaust
//! memory and CPU and delay every other administrator.
//!
//! - **Per address** (an IPv4 address, or an IPv6 /64) and **per account name**: at most
//!   [`SignInLimits::per_address`] / [`SignInLimits::per_account`] recent failures plus
//!   attempts in progress; one failure is forgotten every [`SignInLimits::forget_every`].
//!   Over the limit the attempt is answered 429 with `Retry-After` at once, without
//!   evaluating anything.
//! - **In all**: at most [`SignInLimits::concurrent_hashes`] password evaluations at a time
//!   (a semaphore, first come first served), at most [`SignInLimits::max_admitted`] attempts
//!   admitted (evaluating or waiting), and an attempt waits at most
//!   [`SignInLimits::max_wait`] for its turn; beyond those it is answered 503 with
//!   `Retry-After`.
//!
//! The tables are bounded ([`SignInLimits::max_tracked`] entries each): idle entries are
//! dropped first, then the least recently used. No lock is held across an await.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits; [`SignInLimits::default`] is what `confab serve` uses.
#[derive(Debug, Clone)]
pub struct SignInLimits {
    /// Password evaluations running at once.
    pub concurrent_hashes: usize,
    /// Attempts admitted at once (evaluating or waiting for a turn).
    pub max_admitted: usize,
    /// Longest wait for a turn before the attempt is answered 503.
    pub max_wait: Duration,
    /// Recent failures (plus attempts in progress) one address may have.
    pub per_address: u32,
    /// Recent failures (plus attempts in progress) one account name may have.
    pub per_account: u32,
    /// One failure is forgotten per this period.
    pub forget_every: Duration,
    /// Entries per table (addresses, account names).
    pub max_tracked: usize,
}

impl Default for SignInLimits {
    fn default() -> SignInLimits {
        SignInLimits {
            concurrent_hashes: 2,
            max_admitted: 32,
            max_wait: Duration::from_secs(5),
            per_address: 10,
            per_account: 10,
            forget_every: Duration::from_secs(6),
            max_tracked: 4096,
        }
    }
}

/// Why an attempt was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too many recent failures from this address or for this account: 429.
    Throttled {
        /// "address" or "account".
        by: &'static str,
        retry_after_secs: u64,
        /// The first refusal since the limit was reached (worth one audit entry).
        first: bool,
    },
    /// Too many attempts in all: 503.
    Busy { retry_after_secs: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    failures: u32,
    in_progress: u32,
    /// When the last failure was forgotten (or the first one counted).
    forgot_at: Instant,
    used_at: Instant,
    /// A refusal was already reported since the limit was reached.
    reported: bool,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            failures: 0,
            in_progress: 0,
            forgot_at: now,
            used_at: now,
            reported: false,
        }
    }

    /// Forgets the failures whose time has passed.
    fn forget(&mut self, now: Instant, every: Duration) {
        if self.failures == 0 {
            self.forgot_at = now;
            return;
        }
        let periods =
            now.saturating_duration_since(self.forgot_at).as_nanos() / every.as_nanos().max(1);
        let periods = u32::try_from(periods).unwrap_or(u32::MAX);
        if periods > 0 {
            self.failures = self.failures.saturating_sub(periods);
            self.forgot_at = if self.failures == 0 {
                now
            } else {
                self.forgot_at + every * periods
            };
        }
    }

    fn idle(&self) -> bool {
        self.failures == 0 && self.in_progress == 0
    }

    /// Seconds until one more attempt fits (at least 1).
    fn retry_after(&self, now: Instant, every: Duration) -> u64 {
        if self.failures == 0 {
            return 1;
        }
        let next = (self.forgot_at + every).saturating_duration_since(now);
        (next.as_secs() + u64::from(next.subsec_nanos() > 0)).max(1)
    }
}

/// A bounded table of buckets.
struct Table<K> {
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Table<K> {
        Table {
            map: HashMap::new(),
        }
    }

    /// The bucket of `key`, made room for if the table is full.
    fn entry(&mut self, key: &K, now: Instant, limits: &SignInLimits) -> &mut Bucket {
        if !self.map.contains_key(key) && self.map.len() >= limits.max_tracked {
            let every = limits.forget_every;
            self.map.retain(|_, b| {
                b.forget(now, every);
                !b.idle()
            });
            if self.map.len() >= limits.max_tracked {
                // still full of recent failures: drop the least recently used idle one
                if let Some(oldest) = self
                    .map
                    .iter()
                    .filter(|(_, b)| b.in_progress == 0)
                    .min_by_key(|(_, b)| b.used_at)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        let b = self
            .map
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(now));
        b.forget(now, limits.forget_every);
        b.used_at = now;
        b
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The address key: IPv4 addresses one by one, IPv6 by /64 (what one host usually has).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

struct State {
    addresses: Table<IpAddr>,
    accounts: Table<String>,
    admitted: usize,
}

/// The sign-in gate of one REST listener.
pub struct Gate {
    limits: SignInLimits,
    hashing: Arc<Semaphore>,
    state: Mutex<State>,
}

impl Gate {
    pub fn new(limits: SignInLimits) -> Arc<Gate> {
        Arc::new(Gate {
            hashing: Arc::new(Semaphore::new(limits.concurrent_hashes.max(1))),
            limits,
            state: Mutex::new(State {
                addresses: Table::new(),
                accounts: Table::new(),
                admitted: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits an attempt from `ip` for the account `name` (lower-cased; `None` for a name no
    /// account can have, which is refused without evaluating anything but still counts for
    /// the address), or refuses it.
    pub fn admit(self: &Arc<Gate>, ip: IpAddr, name: Option<&str>) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        let l = &self.limits;
        let ip = address_key(ip);
        let account = name.map(str::to_ascii_lowercase);
        let mut st = self.lock();
        let a = st.addresses.entry(&ip, now, l);
        if a.failures + a.in_progress >= l.per_address {
            let first = !a.reported;
            a.reported = true;
            return Err(Refusal::Throttled {
                by: "address",
                retry_after_secs: a.retry_after(now, l.forget_every),
                first,
            });
        }
        a.reported = false;
        if let Some(acc) = &account {
            let b = st.accounts.entry(acc, now, l);
            if b.failures + b.in_progress >= l.per_account {
                let first = !b.reported;
                b.reported = true;
                return Err(Refusal::Throttled {
                    by: "account",
                    retry_after_secs: b.retry_after(now, l.forget_every),
                    first,
                });
            }
            b.reported = false;
        }
        if st.admitted >= l.max_admitted {
            return Err(Refusal::Busy {
                retry_after_secs: 1,
            });
        }
        st.admitted += 1;
        st.addresses.entry(&ip, now, l).in_progress += 1;
        if let Some(acc) = &account {
            st.accounts.entry(acc, now, l).in_progress += 1;
        }
        Ok(Ticket {
            gate: self.clone(),
            ip,
            account,
            not_a_failure: false,
        })
    }

    /// How many addresses and account names are tracked (for tests of the bounds).
    pub fn tracked(&self) -> (usize, usize) {
        let st = self.lock();
        (st.addresses.len(), st.accounts.len())
    }
}

/// An admitted attempt. Dropping it ends the attempt: a failure unless
/// [`Ticket::succeeded`] was called (so an abandoned attempt counts as failed).
pub struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
    account: Option<String>,
    /// Ends as no failure (a right password, or none evaluated).
    not_a_failure: bool,
}

impl Ticket {
    /// Waits for a turn to evaluate a password (at most [`SignInLimits::max_wait`]).
    pub async fn turn(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        let wait = self.gate.limits.max_wait;
        match tokio::time::timeout(wait, self.gate.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refusal::Busy {
                retry_after_secs: wait.as_secs().max(1),
            }),
        }
    }

    /// The password was right: this attempt is not a failure.
    pub fn succeeded(mut self) {
        self.not_a_failure = true;
    }

    /// The attempt ended without its password being evaluated (no turn came in time): not
    /// a failure of the name or address, which may try again after Retry-After.
    pub fn not_evaluated(mut self) {
        self.not_a_failure = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let now = Instant::now();
        let l = &self.gate.limits;
        let mut st = self.gate.lock();
        st.admitted = st.admitted.saturating_sub(1);
        let ok = self.not_a_failure;
        let end = |b: &mut Bucket| {
            b.in_progress = b.in_progress.saturating_sub(1);
            if !ok {
                if b.failures == 0 {
                    b.forgot_at = now;
                }
                b.failures = b.failures.saturating_add(1);
            }
        };
        end(st.addresses.entry(&self.ip, now, l));
        if let Some(acc) = &self.account {
            end(st.accounts.entry(acc, now, l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SignInLimits {
        SignInLimits {
            per_address: 3,
            per_account: 5,
            forget_every: Duration::from_secs(3600),
            max_tracked: 8,
            ..SignInLimits::default()
        }
    }

    #[test]
    fn failures_throttle_the_address_then_the_account() {
        let g = Gate::new(limits());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            drop(g.admit(a, Some("Root")).unwrap()); // a failure each
        }
        match g.admit(a, Some("root")) {
            Err(Refusal::Throttled {
                by: "address",
                first: true,
                retry_after_secs,
            }) => assert!(retry_after_secs >= 1),
            other => panic!("{:?}", other.err()),
        }
        assert!(matches!(
            g.admit(a, Some("root")),
            Err(Refusal::Throttled { first: false, .. })
        ));
        // another address may still try, until the account has had enough
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        drop(g.admit(b, Some("ROOT")).unwrap());
        drop(g.admit(b, Some("root")).unwrap());
        assert!(matches!(
            g.admit(b, Some("root")),
            Err(Refusal::Throttled { by: "account", .. })
        ));
        // and another account from that address is fine; success is not a failure
        for _ in 0..5 {
            g.admit(b, Some("alice")).unwrap().succeeded();
        }
    }

    #[test]
    fn attempts_in_progress_count_and_ipv6_goes_by_64() {
        let g = Gate::new(limits());
        let t1 = g.admit("2001:db8::1".parse().unwrap(), None).unwrap();
        let t2 = g.admit("2001:db8::2".parse().unwrap(), None).unwrap();
        let t3 = g.admit("2001:db8::ffff:1".parse().unwrap(), None).unwrap();
        assert!(g.admit("2001:db8::3".parse().unwrap(), None).is_err());
        assert!(g.admit("2001:db8:0:1::3".parse().unwrap(), None).is_ok());
        t1.succeeded();
        t2.succeeded();
        t3.succeeded();
        assert!(g.admit("2001:db8::3".parse().unwrap(), None).is_ok());
    }

    #[test]
    fn failures_are_forgotten_with_time() {
        let mut b = Bucket::new(Instant::now());
        let t0 = b.forgot_at;
        b.failures = 3;
        b.forget(t0 + Duration::from_secs(13), Duration::from_secs(6));
        assert_eq!(b.failures, 1);
        assert_eq!(
            b.retry_after(t0 + Duration::from_secs(13), Duration::from_secs(6)),
            5
        );
        b.forget(t0 + Duration::from_secs(18), Duration::from_secs(6));
        assert_eq!(b.failures, 0);
    }

    #[test]
    fn tables_stay_bounded() {
        let g = Gate::new(limits());
        for i in 0..100u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(g.admit(ip, Some(&format!("name{i}"))).unwrap());
        }
        let (a, n) = g.tracked();
        assert!(a <= 8 && n <= 8, "{a} {n}");
    }

    #[tokio::test]
    async fn a_turn_not_given_in_time_is_busy_and_no_failure() {
        let g = Gate::new(SignInLimits {
            concurrent_hashes: 1,
            max_wait: Duration::from_millis(50),
            per_address: 2,
            ..limits()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let holder = g.admit("192.0.2.9".parse().unwrap(), None).unwrap();
        let permit = holder.turn().await.unwrap();
        for _ in 0..3 {
            let t = g.admit(a, Some("root")).unwrap();
            assert!(matches!(t.turn().await, Err(Refusal::Busy { .. })));
            t.not_evaluated();
        }
        drop(permit);
        let t = g.admit(a, Some("root")).unwrap();
        assert!(t.turn().await.is_ok(), "a free turn is given at once");
    }

    #[test]
    fn admitted_attempts_are_bounded_in_all() {
        let g = Gate::new(SignInLimits {
            max_admitted: 2,
            ..limits()
        });
        let _t1 = g.admit("192.0.2.1".parse().unwrap(), None).unwrap();
        let _t2 = g.admit("192.0.2.2".parse().unwrap(), None).unwrap();
        assert!(matches!(
            g.admit("192.0.2.3".parse().unwrap(), None),
            Err(Refusal::Busy { .. })
        ));
    }
}
