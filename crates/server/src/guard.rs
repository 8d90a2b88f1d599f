//! The per-message panic guard: a bug that panics while handling one message loses that
//! message, not the receive loop (which would silently stop serving its socket) nor the
//! server. Each panic is logged at error level with the message's Call-ID and counted
//! (`confab_handler_panics_total` in /metrics). parking_lot mutexes do not poison, so a
//! shard whose lock was held during the panic stays usable.

use crate::core::Core;
use crate::metrics::Metrics;
use crate::net::{Outgoing, Source};
use bytes::Bytes;

/// Runs the core on one received message. Returns false when it panicked: what it had
/// queued to send is dropped (what earlier messages caused is still sent).
pub fn handle(core: &Core, data: Bytes, src: &Source, out: &mut Vec<Outgoing>) -> bool {
    guarded(&core.metrics, &data, src, out, |out| {
        core.handle(data.clone(), src, out)
    })
}

/// Runs `f` (the handling of `data`) with panics caught, counted in `metrics` and logged.
pub fn guarded(
    metrics: &Metrics,
    data: &[u8],
    src: &Source,
    out: &mut Vec<Outgoing>,
    f: impl FnOnce(&mut Vec<Outgoing>),
) -> bool {
    let mark = out.len();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *out)));
    if let Err(payload) = r {
        out.truncate(mark);
        metrics.record_panic();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(
            peer = %src.remote,
            call_id = %String::from_utf8_lossy(call_id(data).unwrap_or(b"?")),
            "internal error handling a message (dropped): {what}: {:?}",
            String::from_utf8_lossy(&data[..data.len().min(2000)])
        );
        return false;
    }
    true
}

/// The Call-ID of a raw message (`Call-ID:` or its compact form `i:`), read without the
/// parser that may just have panicked. Linear in the header.
pub fn call_id(data: &[u8]) -> Option<&[u8]> {
    for line in data.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;
    use crate::net::Dest;

    #[test]
    fn a_panic_is_caught_counted_and_its_output_dropped() {
        let metrics = Metrics::default();
        let src = Source {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "127.0.0.1:5070".parse().unwrap(),
            conn: None,
            overloaded: false,
        };
        let sent = |n: u8| Outgoing {
            dest: Dest {
                transport: Transport::Udp,
                addr: "127.0.0.1:5070".parse().unwrap(),
                conn: None,
            },
            bytes: Bytes::from(vec![n]),
            on_failure: None,
        };
        let msg = b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: boom@h\r\n\r\n";
        let mut out = vec![sent(1)];
        assert!(guarded(&metrics, msg, &src, &mut out, |o| o.push(sent(2))));
        assert_eq!((out.len(), metrics.panics()), (2, 0));
        let ok = guarded(&metrics, msg, &src, &mut out, |o| {
            o.push(sent(3));
            panic!("a bug");
        });
        assert!(!ok);
        assert_eq!(metrics.panics(), 1);
        assert_eq!(out.len(), 2, "what the panicking message queued is dropped");
        let mut text = String::new();
        metrics.render_into(&mut text);
        assert!(text.contains("confab_handler_panics_total 1\n"), "{text}");
    }

    #[test]
    fn call_id_from_raw_bytes() {
        let m = b"MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\ni:  abc@h \r\n\r\nCall-ID: body";
        assert_eq!(super::call_id(m), Some(&b"abc@h"[..]));
        assert_eq!(super::call_id(b"X\r\nCALL-ID:z\r\n"), Some(&b"z"[..]));
        assert_eq!(super::call_id(b"X\r\n\r\nCall-ID: z\r\n"), None);
    }
}
