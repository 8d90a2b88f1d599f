//! Secrets shared by every server on one store: made at random by whichever server needs one
//! first, then read by all, so servers of a pool accept what the others signed (flow tokens,
//! Record-Route entries, digest nonces).

use crate::db::vals;
use crate::{now_ms, Store, StoreError};

/// Longest accepted secret name.
const MAX_NAME_LEN: usize = 64;

impl Store {
    /// The 32-byte secret called `name`, created at random on first use. Two servers asking
    /// at once get the same one (the first insert wins, the other reads it).
    pub fn server_secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(StoreError::Invalid(format!(
                "secret name must be 1..={MAX_NAME_LEN} bytes"
            )));
        }
        let mut fresh = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut fresh[..]);
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let stored: String = self.transaction(|c| {
            c.execute(
                "INSERT INTO server_secrets(name, value, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                vals![name, hex.as_str(), now_ms()],
            )?;
            c.query_one(
                "SELECT value FROM server_secrets WHERE name = ?1",
                vals![name],
            )?
            .get(0)
        })?;
        decode(&stored).ok_or_else(|| {
            StoreError::Invalid(format!("stored secret {name} is not 64 hex digits"))
        })
    }
}

fn decode(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_the_same() {
        let s = Store::open_in_memory().unwrap();
        let a = s.server_secret("flow").unwrap();
        assert_eq!(s.server_secret("flow").unwrap(), a);
        assert_ne!(s.server_secret("nonce").unwrap(), a);
        assert!(s.server_secret("").is_err());
    }
}
