//! Counters for monitoring, in Prometheus' text format (served at `/metrics` by the
//! REST API listener).
//!
//! The one measured on the hot path is the sojourn time of each received message: from
//! its receipt to the moment what it caused has been handed to the kernel. For UDP the
//! receipt is the kernel's receive timestamp, so time spent in the socket buffer counts;
//! for TCP, TLS and WebSocket it is when the bytes were read. This is the server's own
//! share of a client's latency, whatever the load generator adds. Recording is a few
//! relaxed atomic increments, no lock and no allocation.

use crate::config::Transport;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the sojourn buckets, in microseconds (Prometheus `le`).
const BOUNDS_US: [u64; 15] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

const TRANSPORTS: [Transport; 5] = [
    Transport::Udp,
    Transport::Tcp,
    Transport::Tls,
    Transport::Ws,
    Transport::Wss,
];

/// A cumulative histogram with fixed buckets (the last counts everything above them).
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The bucket bound below which at least `q` (0..1) of the recordings fall; `None`
    /// when nothing was recorded or the quantile is above the last bound.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= want {
                return BOUNDS_US.get(i).map(|&us| Duration::from_micros(us));
            }
        }
        None
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = match BOUNDS_US.get(i) {
                Some(&us) => format!("{}", us as f64 / 1e6),
                None => "+Inf".into(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// What the transports measure (the rest is read from the core when rendering).
#[derive(Default)]
pub struct Metrics {
    sojourn: [Histogram; TRANSPORTS.len()],
    /// Messages whose handling panicked (caught by guard.rs).
    panics: AtomicU64,
}

fn transport_index(t: Transport) -> usize {
    TRANSPORTS.iter().position(|&x| x == t).unwrap_or(0)
}

impl Metrics {
    /// A message received on `t` was handled `d` after its receipt.
    pub fn record_sojourn(&self, t: Transport, d: Duration) {
        self.sojourn[transport_index(t)].record(d);
    }

    pub fn sojourn(&self, t: Transport) -> &Histogram {
        &self.sojourn[transport_index(t)]
    }

    /// Handling a message panicked.
    pub fn record_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages whose handling panicked so far.
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// The histograms, in Prometheus' text format.
    pub fn render_into(&self, out: &mut String) {
        let name = "confab_sip_sojourn_seconds";
        let _ = writeln!(out, "# HELP {name} Time from a message's receipt (the kernel's timestamp for UDP, the read for streams) until what it caused was sent.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for t in TRANSPORTS {
            let labels = format!("transport=\"{}\"", t.param());
            self.sojourn(t).render(out, name, &labels);
        }
        render_value(
            out,
            "confab_handler_panics_total",
            "counter",
            "Messages whose handling panicked (dropped and logged with their Call-ID).",
            self.panics() as f64,
        );
    }
}

/// Appends one gauge or counter.
pub fn render_value(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Resident memory (bytes) and CPU time used (seconds) by this process, from /proc.
pub fn process_usage() -> Option<(u64, f64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the command name (which may hold spaces) start at state, field 3
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions
    let (page, hz) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    Some((
        rss_pages * page.max(1) as u64,
        ticks as f64 / hz.max(1) as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_quantiles_and_text() {
        let h = Histogram::default();
        assert_eq!(h.quantile_bound(0.99), None);
        for _ in 0..98 {
            h.record(Duration::from_micros(30)); // ≤ 50 µs
        }
        h.record(Duration::from_micros(700)); // ≤ 1 ms
        h.record(Duration::from_secs(10)); // above every bound
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_bound(0.5), Some(Duration::from_micros(50)));
        assert_eq!(h.quantile_bound(0.99), Some(Duration::from_micros(1000)));
        assert_eq!(h.quantile_bound(1.0), None);
        let mut s = String::new();
        h.render(&mut s, "x", "transport=\"udp\"");
        assert!(
            s.contains("x_bucket{transport=\"udp\",le=\"0.00005\"} 98\n"),
            "{s}"
        );
        assert!(
            s.contains("x_bucket{transport=\"udp\",le=\"0.001\"} 99\n"),
            "{s}"
        );
        assert!(
            s.contains("x_bucket{transport=\"udp\",le=\"+Inf\"} 100\n"),
            "{s}"
        );
        assert!(s.contains("x_count{transport=\"udp\"} 100\n"), "{s}");
    }

    #[test]
    fn bound_edges_fall_in_their_bucket() {
        let h = Histogram::default();
        h.record(Duration::from_micros(50));
        assert_eq!(h.quantile_bound(1.0), Some(Duration::from_micros(50)));
        let h = Histogram::default();
        h.record(Duration::from_micros(51));
        assert_eq!(h.quantile_bound(1.0), Some(Duration::from_micros(100)));
    }

    #[test]
    fn process_usage_reads_proc() {
        let (rss, cpu) = process_usage().expect("/proc on Linux");
        assert!(rss > 1 << 20, "{rss}");
        assert!(cpu >= 0.0);
    }
}
