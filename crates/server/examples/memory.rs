//! Memory per registration: fills the location service with N bindings shaped like a real
//! client's (N from the first argument, default 1,000,000) and prints the resident memory
//! before and after. `cargo run --release -p confab-server --example memory -- 1000000`

use confab_server::config::Transport;
use confab_server::location::{Binding, Location};
use confab_server::net::Dest;
use std::time::{Duration, Instant};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let loc = Location::default();
    let before = rss_bytes();
    let now = Instant::now();
    let t = Instant::now();
    for i in 0..n {
        let user = format!("user{i:07}");
        let aor = format!("{user}@example.test");
        let port = 10000 + (i % 50000) as u16;
        let b = Binding {
            uri: format!("sip:{user}@10.{}.{}.{}:{port};transport=udp", (i >> 16) & 255, (i >> 8) & 255, i & 255),
            q: 1000,
            expires_at: now + Duration::from_secs(3600),
            call_id: format!("{:016x}-{i}@10.0.0.1", i as u64 * 2654435761),
            cseq: 1,
            instance: None,
            reg_id: None,
            flow: Some(Dest { transport: Transport::Udp, addr: format!("192.0.2.{}:{port}", i % 250).parse().unwrap(), conn: None }),
            path: vec![],
            user_agent: Some("baresip v1.0.0 (x86_64/linux)".into()),
        };
        loc.update(&aor, |list| list.push(b));
    }
    let after = rss_bytes();
    println!(
        "{n} registrations in {:.1} s: RSS {} MiB -> {} MiB, {} bytes per registration",
        t.elapsed().as_secs_f64(),
        before >> 20,
        after >> 20,
        (after - before) / n as u64
    );
    assert_eq!(loc.count_bindings(), n);
}
