//! Users' web sessions: a user signs in on a meeting or dial-in page with their SIP
//! password and gets a cookie holding a random token; only the token's SHA-256 is stored,
//! so a copy of the store signs nobody in. A session ends when it expires, when the user
//! signs out, or at once when the user is disabled or removed (every lookup checks).
//! Administrators' web sessions are their bearer tokens ([`Store::issue_token`]).

use rand::RngCore;

use crate::admins::{to_hex, token_hash};
use crate::db::vals;
use crate::{now_ms, Store, StoreError};

/// Sessions one user may have at once; the oldest go first.
pub const MAX_SESSIONS_PER_USER: i64 = 16;

impl Store {
    /// A new session for `user_key` (`user@domain`, lower case) valid for `ttl_secs`:
    /// 32 random bytes as 64 hex characters. Purges expired sessions and the user's
    /// oldest beyond [`MAX_SESSIONS_PER_USER`].
    pub fn issue_user_session(&self, user_key: &str, ttl_secs: u64) -> Result<String, StoreError> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = to_hex(&raw);
        let created = now_ms();
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires = created.saturating_add(ttl_ms);
        let key = user_key.to_ascii_lowercase();
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM user_sessions WHERE expires_at <= ?1",
                vals![created],
            )?;
            tx.execute(
                "DELETE FROM user_sessions WHERE user_key = ?1 AND created_at <= (
                     SELECT created_at FROM user_sessions WHERE user_key = ?1
                     ORDER BY created_at DESC LIMIT 1 OFFSET ?2)",
                vals![key.as_str(), MAX_SESSIONS_PER_USER - 1],
            )?;
            tx.execute(
                "INSERT INTO user_sessions (token_hash, user_key, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                vals![token_hash(&token), key.as_str(), created, expires],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The user (`user@domain`) a session token belongs to, if it has not expired and the
    /// user still exists and is enabled.
    pub fn user_session(&self, token: &str) -> Result<Option<String>, StoreError> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT s.user_key FROM user_sessions s JOIN users u ON u.user_key = s.user_key
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.enabled <> 0",
                vals![token_hash(token), now_ms()],
            )
        })?;
        row.map(|r| r.get::<String>(0)).transpose()
    }

    /// Ends a session; `false` if it was unknown.
    pub fn revoke_user_session(&self, token: &str) -> Result<bool, StoreError> {
        let n = self.read(|c| {
            c.execute(
                "DELETE FROM user_sessions WHERE token_hash = ?1",
                vals![token_hash(token)],
            )
        })?;
        Ok(n > 0)
    }

    /// Ends every session of a user (after a password change); returns how many.
    pub fn revoke_user_sessions(&self, user_key: &str) -> Result<usize, StoreError> {
        self.read(|c| {
            c.execute(
                "DELETE FROM user_sessions WHERE user_key = ?1",
                vals![user_key.to_ascii_lowercase()],
            )
        })
    }
}
