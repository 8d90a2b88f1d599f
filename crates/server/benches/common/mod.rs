//! A registration shaped like a real client's, shared by the location benchmark and the
//! memory example (`#[path]`-included there).

use confab_server::config::Transport;
use confab_server::location::Binding;
use confab_server::net::Dest;
use std::time::{Duration, Instant};

/// User `i`'s AoR and its binding: a UDP contact behind NAT (flow), a user agent, an hour
/// to live.
pub fn sample_binding(i: usize, now: Instant) -> (String, Binding) {
    let user = format!("user{i:07}");
    let port = 10000 + (i % 50000) as u16;
    let binding = Binding {
        uri: format!(
            "sip:{user}@10.{}.{}.{}:{port};transport=udp",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ),
        q: 1000,
        expires_at: now + Duration::from_secs(3600),
        call_id: format!("{:016x}-{i}@10.0.0.1", i as u64 * 2654435761),
        cseq: 1,
        instance: None,
        reg_id: None,
        flow: Some(Dest {
            transport: Transport::Udp,
            addr: format!("192.0.2.{}:{port}", i % 250).parse().unwrap(),
            conn: None,
        }),
        path: vec![],
        user_agent: Some("baresip v1.0.0 (x86_64/linux)".into()),
        owner: None,
    };
    (format!("{user}@example.test"), binding)
}
