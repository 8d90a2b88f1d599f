//! Overload detection for the transports (no I/O).
//!
//! Each receive loop knows how long a message waited before being handled: exactly for UDP
//! (the kernel's receive timestamp, `udp.rs`), estimated for a stream ([`StreamLoad`]). A
//! burst makes a short queue that drains by itself and must not be shed; an overload makes
//! a standing queue. [`StandingQueue`] tells them apart as CoDel does (RFC 8289): the
//! server is overloaded while even the shortest wait seen in an interval of 100 ms was
//! above the target (`limits.max_queue_delay_ms`). Then a request that waited longer than
//! the target and would start new work is answered 503; as soon as waits fall below the
//! target, everything is served again.

use std::time::{Duration, Instant};

/// The window over which the shortest wait is taken (CoDel's interval).
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Overload state of one receive loop.
#[derive(Debug)]
pub struct StandingQueue {
    target: Duration,
    window_start: Option<Instant>,
    window_min: Duration,
    overloaded: bool,
}

impl StandingQueue {
    pub fn new(target: Duration) -> StandingQueue {
        StandingQueue {
            target,
            window_start: None,
            window_min: Duration::MAX,
            overloaded: false,
        }
    }

    /// Records that a message waited `waited` before being handled at `now`; returns whether
    /// it is to be shed (if it would start new work).
    pub fn shed(&mut self, waited: Duration, now: Instant) -> bool {
        let start = *self.window_start.get_or_insert(now);
        if now.duration_since(start) >= INTERVAL {
            self.overloaded = self.window_min > self.target;
            self.window_start = Some(now);
            self.window_min = waited;
        } else {
            self.window_min = self.window_min.min(waited);
        }
        if waited <= self.target {
            // the queue has drained: full service at once
            self.overloaded = false;
        }
        self.overloaded
    }
}

/// For a stream connection: the measured cost of handling one received byte (a moving
/// average), so that the bytes received and not yet handled give the wait.
#[derive(Debug, Default)]
pub struct StreamLoad {
    ns_per_byte: f64,
}

impl StreamLoad {
    /// Records that `bytes` of messages took `took` to handle.
    pub fn record(&mut self, bytes: usize, took: Duration) {
        if bytes == 0 {
            return;
        }
        let x = took.as_nanos() as f64 / bytes as f64;
        // weight 1/8: a slow message or two does not flip the estimate
        self.ns_per_byte = if self.ns_per_byte == 0.0 {
            x
        } else {
            self.ns_per_byte * 0.875 + x * 0.125
        };
    }

    /// How long `backlog` bytes take to handle at the measured cost.
    pub fn delay(&self, backlog: usize) -> Duration {
        Duration::from_nanos((backlog as f64 * self.ns_per_byte) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_that_drains_is_not_shed() {
        let mut q = StandingQueue::new(20 * MS);
        let t = Instant::now();
        // 50 ms waits for a while, but the queue drains (1 ms) within each interval
        for i in 0..100u32 {
            let waited = if i % 10 == 9 { MS } else { 50 * MS };
            assert!(!q.shed(waited, t + i * 10 * MS), "step {i}");
        }
    }

    #[test]
    fn a_standing_queue_is_shed_until_it_drains() {
        let mut q = StandingQueue::new(20 * MS);
        let t = Instant::now();
        let mut shed = 0;
        for i in 0..30u32 {
            shed += q.shed(40 * MS, t + i * 10 * MS) as u32;
        }
        // the first interval only learns that even the shortest wait was too long
        assert!((15..=20).contains(&shed), "{shed}");
        assert!(q.shed(40 * MS, t + 300 * MS));
        // one message that waited less than the target: serving again at once
        assert!(!q.shed(5 * MS, t + 301 * MS));
        assert!(
            !q.shed(40 * MS, t + 302 * MS),
            "overload must show over a new interval first"
        );
    }

    #[test]
    fn delay_is_backlog_times_the_measured_cost() {
        let mut l = StreamLoad::default();
        assert_eq!(
            l.delay(1 << 20),
            Duration::ZERO,
            "nothing measured yet: never shed"
        );
        l.record(1000, Duration::from_micros(50)); // 50 ns a byte
        assert_eq!(l.delay(400_000), Duration::from_millis(20));
        l.record(0, Duration::from_secs(1)); // nothing handled: no change
        assert_eq!(l.delay(400_000), Duration::from_millis(20));
        // one slow chunk moves the average an eighth of the way
        l.record(1000, Duration::from_micros(130));
        assert_eq!(l.delay(1000), Duration::from_micros(60));
    }
}
