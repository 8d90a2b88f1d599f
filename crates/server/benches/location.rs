//! Location service hot path: looking up the contacts of a user among 100,000 registered
//! (what every request to a user does), and refreshing a registration.
//! `cargo bench -p confab-server --bench location`

mod common;

use common::sample_binding;
use confab_server::location::Location;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const USERS: usize = 100_000;

fn location(c: &mut Criterion) {
    let now = Instant::now();
    let loc = Location::default();
    let mut aors = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let (aor, b) = sample_binding(i, now);
        loc.update(&aor, |l| l.push(b));
        aors.push(aor);
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
