//! Instant messages (SIP MESSAGE) kept for users who were offline, delivered in arrival order
//! when they come back. Each mailbox is bounded by count and total body size, chosen by the
//! caller; a user's mailbox is deleted with the user.

use crate::db::{vals, Row};

use crate::users::{no_such_user, now, user_key};
use crate::{Store, StoreError};

/// Longest `sender` / `content_type` accepted; they are replayed as header values.
const MAX_HEADER_VALUE_LEN: usize = 1024;
/// Longest `headers` block accepted.
const MAX_EXTRA_HEADERS_LEN: usize = 8192;

/// A message waiting for its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Increases with arrival; deliver in this order.
    pub id: i64,
    /// Recipient's `user@domain`, lower-cased.
    pub recipient: String,
    /// The From header value as received.
    pub sender: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Unix seconds.
    pub received_at: i64,
    /// Extra header lines to replay, each ending in CRLF (e.g. `"Subject: hi\r\n"`), or empty.
    pub headers: String,
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, recipient_key, sender, content_type, body, received_at, headers";

pub(crate) fn message_from_row(r: &Row) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        id: r.get(0)?,
        recipient: r.get(1)?,
        sender: r.get(2)?,
        content_type: r.get(3)?,
        body: r.get(4)?,
        received_at: r.get(5)?,
        headers: r.get(6)?,
    })
}

/// A single header value: non-empty, bounded, no control characters (so no CRLF injection).
fn validate_header_value(field: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{field} is empty")));
    }
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(StoreError::Invalid(format!(
            "{field} is {} bytes long, at most {MAX_HEADER_VALUE_LEN} allowed",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(StoreError::Invalid(format!(
            "{field} contains control character {c:?}"
        )));
    }
    Ok(())
}

/// Empty, or complete `Name: value\r\n` lines with no other CR or LF.
fn validate_extra_headers(headers: &str) -> Result<(), StoreError> {
    if headers.len() > MAX_EXTRA_HEADERS_LEN {
        return Err(StoreError::Invalid(format!(
            "headers are {} bytes long, at most {MAX_EXTRA_HEADERS_LEN} allowed",
            headers.len()
        )));
    }
    if headers.is_empty() {
        return Ok(());
    }
    let Some(lines) = headers.strip_suffix("\r\n") else {
        return Err(StoreError::Invalid(
            "headers must be lines each ending in CRLF".into(),
        ));
    };
    for line in lines.split("\r\n") {
        let name = line.split_once(':').map(|(n, _)| n.trim_end());
        let name_ok = name
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_graphic() && c != ':'));
        if !name_ok {
            return Err(StoreError::Invalid(format!(
                "headers: line {line:?} is not of the form \"Name: value\""
            )));
        }
        if let Some(c) = line.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(StoreError::Invalid(format!(
                "headers: line {line:?} contains control character {c:?}"
            )));
        }
    }
    Ok(())
}

impl Store {
    /// Stores a message for the existing user `recipient_user@recipient_domain` and returns its
    /// id. If it would take the mailbox beyond `max_per_user` messages or `max_total_bytes_per_user`
    /// body bytes, nothing is stored and `MailboxFull` says which limit.
    #[allow(clippy::too_many_arguments)]
    pub fn store_message(
        &self,
        recipient_user: &str,
        recipient_domain: &str,
        sender: &str,
        content_type: &str,
        body: &[u8],
        headers: &str,
        max_per_user: usize,
        max_total_bytes_per_user: usize,
    ) -> Result<i64, StoreError> {
        validate_header_value("sender", sender)?;
        validate_header_value("content type", content_type)?;
        validate_extra_headers(headers)?;
        let key = user_key(recipient_user, recipient_domain);
        self.transaction(|tx| {
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE user_key = ?1)",
                    vals![&key],
                )?
                .get(0)?;
            if !exists {
                return Err(no_such_user(recipient_user, recipient_domain));
            }
            // The cast keeps the sum an integer on PostgreSQL (sum of bigint is numeric).
            let row = tx.query_one(
                "SELECT count(*), CAST(coalesce(sum(length(body)), 0) AS BIGINT)
                 FROM offline_messages WHERE recipient_key = ?1",
                vals![&key],
            )?;
            let (count, bytes): (i64, i64) = (row.get(0)?, row.get(1)?);
            let full = |reason: String| StoreError::MailboxFull {
                recipient: key.clone(),
                reason,
            };
            if count as u64 >= max_per_user as u64 {
                return Err(full(format!("{max_per_user} messages")));
            }
            if bytes as u64 + body.len() as u64 > max_total_bytes_per_user as u64 {
                return Err(full(format!("{max_total_bytes_per_user} bytes")));
            }
            tx.query_one(
                "INSERT INTO offline_messages
                    (recipient_key, sender, content_type, body, received_at, headers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                vals![&key, sender, content_type, body, now(), headers],
            )?
            .get(0)
        })
    }

    /// Up to `limit` of the recipient's messages, oldest first (malformed input or an unknown
    /// user simply has none).
    pub fn pending_messages(
        &self,
        recipient_user: &str,
        recipient_domain: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let key = user_key(recipient_user, recipient_domain);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM offline_messages
                     WHERE recipient_key = ?1 ORDER BY id LIMIT ?2"
                ),
                vals![key, limit],
            )
        })?;
        rows.iter().map(message_from_row).collect()
    }

    /// Deletes one message (after delivery); `false` if it was already gone.
    pub fn delete_message(&self, id: i64) -> Result<bool, StoreError> {
        let n =
            self.read(|c| c.execute("DELETE FROM offline_messages WHERE id = ?1", vals![id]))?;
        Ok(n > 0)
    }

    /// How many messages wait for the recipient.
    pub fn count_messages(
        &self,
        recipient_user: &str,
        recipient_domain: &str,
    ) -> Result<usize, StoreError> {
        let n: i64 = self.read(|c| {
            c.query_one(
                "SELECT count(*) FROM offline_messages WHERE recipient_key = ?1",
                vals![user_key(recipient_user, recipient_domain)],
            )?
            .get(0)
        })?;
        Ok(n as usize)
    }

    /// `user@domain` keys (lower-cased) of everyone with messages waiting, sorted.
    pub fn recipients_with_messages(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT DISTINCT recipient_key FROM offline_messages ORDER BY recipient_key",
                &[],
            )
        })?;
        rows.iter().map(|r| r.get(0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers() {
        for ok in [
            "",
            "Subject: hi\r\n",
            "Subject: hi\r\nX-Foo:bar\tbaz\r\nPriority : urgent\r\n",
        ] {
            validate_extra_headers(ok).unwrap();
        }
        for bad in [
            "Subject: hi",
            "Subject: hi\n",
            "\r\n",
            "Subject: a\r\n\r\n",
            "no colon\r\n",
            ": empty name\r\n",
            "Sub ject: x\r\n",
            "Subject: a\rb\r\n",
            "Subject: a\nInjected: b\r\n",
        ] {
            assert!(
                matches!(validate_extra_headers(bad), Err(StoreError::Invalid(m)) if m.contains("headers")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn header_values() {
        validate_header_value("sender", "\"Alice\" <sip:alice@a.test>;tag=1").unwrap();
        for bad in ["", "a\r\nVia: x", "a\0b"] {
            assert!(
                matches!(validate_header_value("sender", bad), Err(StoreError::Invalid(m)) if m.contains("sender")),
                "{bad:?}"
            );
        }
    }
}
