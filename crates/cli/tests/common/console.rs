//! baresip's console, as the baresip tests read it (`#[path]`-included by baresip.rs and
//! meetings_audio.rs): its output collected by reader threads, cleaned of status-line
//! redraws and terminal escapes; and whether a loopback port is free.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

/// Whether `port` is free on 127.0.0.1 for both UDP and TCP.
pub fn port_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Output of a child process (stdout and stderr), collected by reader threads.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    pub fn attach(&self, r: impl Read + Send + 'static) {
        let log = self.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => log
                        .0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&clean_line(&String::from_utf8_lossy(&buf))),
                }
            }
        });
    }
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// baresip redraws its call status line ("[0:00:01] audio=...") and the command being
/// typed with '\r': keep, of the '\r'-separated pieces of a line, only those that are not a
/// status line nor a prefix of the next piece; drop terminal escape sequences.
pub fn clean_line(raw: &str) -> String {
    let pieces: Vec<String> = raw.split('\r').map(strip_ansi).collect();
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        let next = pieces
            .get(i + 1)
            .map(|n| n.trim_end_matches('\n'))
            .unwrap_or("");
        let t = p.trim_end_matches('\n');
        if t.trim().is_empty() || t.starts_with("[0:") || (!next.is_empty() && next.starts_with(t))
        {
            if p.ends_with('\n') && !out.ends_with('\n') && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        out.push_str(p);
    }
    if raw.ends_with('\n') && !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Removes terminal escape sequences (ESC [ ... letter).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
