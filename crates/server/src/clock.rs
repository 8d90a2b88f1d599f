//! The core's wall clock, derived from the monotonic instants its callers give.
//!
//! The core never reads a clock itself: every entry point takes `now: Instant`. Where it
//! needs wall-clock seconds (digest nonces, a Date header, log rate limits) it maps that
//! instant through one anchor `(Instant, unix milliseconds)`. The real server re-anchors
//! every second ([`crate::core::Core::sweep`]), so a stepped system clock is followed; a
//! simulated harness leaves the anchor alone and every wall-clock value moves with the
//! instants it feeds in.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub struct WallClock {
    origin: Instant,
    /// Unix time, in milliseconds, at `origin`.
    unix_ms_at_origin: AtomicI64,
}

pub(crate) fn real_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl WallClock {
    /// Anchored on the real clocks.
    pub fn real() -> WallClock {
        let c = WallClock {
            origin: Instant::now(),
            unix_ms_at_origin: AtomicI64::new(0),
        };
        c.resync();
        c
    }

    /// Anchored at `at` = `unix` seconds (a simulated clock).
    pub fn fixed(at: Instant, unix: u64) -> WallClock {
        WallClock {
            origin: at,
            unix_ms_at_origin: AtomicI64::new(unix as i64 * 1000),
        }
    }

    /// Reads the real clocks again (follows a step of the system clock).
    pub fn resync(&self) {
        let now = Instant::now();
        let since = now.saturating_duration_since(self.origin).as_millis() as i64;
        self.unix_ms_at_origin
            .store(real_unix_ms() - since, Ordering::Relaxed);
    }

    /// Unix seconds at the instant `at`.
    pub fn unix_at(&self, at: Instant) -> u64 {
        (self.unix_ms_at(at).max(0) / 1000) as u64
    }

    /// Unix milliseconds at the instant `at`.
    pub fn unix_ms_at(&self, at: Instant) -> i64 {
        let base = self.unix_ms_at_origin.load(Ordering::Relaxed);
        match at.checked_duration_since(self.origin) {
            Some(d) => base + d.as_millis() as i64,
            None => base - self.origin.duration_since(at).as_millis() as i64,
        }
    }

    /// The instant of Unix milliseconds `ms`, seen from `now` (a time in the past is `now`).
    pub fn instant_of_unix_ms(&self, ms: i64, now: Instant) -> Instant {
        let ahead = ms - self.unix_ms_at(now);
        now + std::time::Duration::from_millis(ahead.max(0) as u64)
    }

    /// The instant `at` as a wall-clock time.
    pub fn system_time_at(&self, at: Instant) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(self.unix_at(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn follows_the_instants_given() {
        let t0 = Instant::now();
        let c = WallClock::fixed(t0, 1_700_000_000);
        assert_eq!(c.unix_at(t0), 1_700_000_000);
        assert_eq!(c.unix_at(t0 + Duration::from_millis(2500)), 1_700_000_002);
        assert_eq!(c.unix_at(t0 + Duration::from_secs(3600)), 1_700_003_600);
    }

    #[test]
    fn real_clock_is_close_to_system_time() {
        let c = WallClock::real();
        let sys = real_unix_ms() / 1000;
        let derived = c.unix_at(Instant::now()) as i64;
        assert!((derived - sys).abs() <= 1, "{derived} vs {sys}");
    }
}
