//! Location service hot path: looking up the contacts of a user among 100,000 registered
//! (what every request to a user does), and refreshing a registration.
//! `cargo bench -p confab-server --bench location`

use confab_server::config::Transport;
use confab_server::location::{Binding, Location};
use confab_server::net::Dest;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const USERS: usize = 100_000;

fn binding(i: usize, now: Instant) -> Binding {
    Binding {
        uri: format!(
            "sip:user{i}@10.{}.{}.{}:5060;transport=udp",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ),
        q: 1000,
        expires_at: now + Duration::from_secs(3600),
        call_id: format!("{i:08x}@10.0.0.1"),
        cseq: 1,
        instance: None,
        reg_id: None,
        flow: Some(Dest {
            transport: Transport::Udp,
            addr: ([10, 0, 0, 1], 5060).into(),
            conn: None,
        }),
        path: vec![],
        user_agent: Some("bench".into()),
    }
}

fn location(c: &mut Criterion) {
    let now = Instant::now();
    let loc = Location::default();
    let aors: Vec<String> = (0..USERS)
        .map(|i| format!("user{i}@example.test"))
        .collect();
    for (i, aor) in aors.iter().enumerate() {
        loc.update(aor, |l| l.push(binding(i, now)));
    }
    let mut g = c.benchmark_group("location");
    let mut i = 0;
    g.bench_function("lookup (1 of 100k users)", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
            black_box(loc.lookup(&aors[i], now))
        })
    });
    g.bench_function("lookup miss", |b| {
        b.iter(|| black_box(loc.lookup("nobody@example.test", now)))
    });
    g.bench_function("refresh a binding (update)", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
            loc.update(&aors[i], |l| {
                if let Some(x) = l.first_mut() {
                    x.cseq += 1;
                    x.expires_at = now + Duration::from_secs(3600);
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, location);
criterion_main!(benches);
