//! Files that travel with a backup beside the store's tables: the server's TLS certificate
//! and, sealed with a passphrase, its private key — so a restored server keeps the identity
//! its clients and partners trust.
//!
//! They are rows of a table `backup_files (name, body)` inside the backup file only (never
//! in a live store: a restore takes them out). A sealed body is
//! `"confab-sealed-v1" ‖ salt(16) ‖ nonce(12) ‖ ChaCha20-Poly1305 ciphertext`, the key
//! derived from the passphrase by Argon2id (19 MiB, 2 passes: OWASP's minimum).

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

const MAGIC: &[u8] = b"confab-sealed-v1";
/// Shortest passphrase accepted for sealing.
pub const MIN_PASSPHRASE: usize = 12;

fn derive(passphrase: &str, salt: &[u8]) -> Result<[u8; 32], StoreError> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("valid Argon2 parameters");
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| StoreError::Invalid(format!("deriving the key: {e}")))?;
    Ok(key)
}

/// Encrypts `plain` with `passphrase`.
pub fn seal(plain: &[u8], passphrase: &str) -> Result<Vec<u8>, StoreError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(StoreError::Invalid(format!(
            "the backup passphrase must have at least {MIN_PASSPHRASE} characters"
        )));
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let key = derive(passphrase, &salt)?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), plain)
        .map_err(|_| StoreError::Invalid("encryption failed".into()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 28 + ct.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts what [`seal`] made; a wrong passphrase (or a damaged body) is an error saying so.
pub fn unseal(sealed: &[u8], passphrase: &str) -> Result<Vec<u8>, StoreError> {
    let rest = sealed
        .strip_prefix(MAGIC)
        .filter(|r| r.len() > 28)
        .ok_or_else(|| StoreError::Invalid("the sealed key in the backup is damaged".into()))?;
    let (salt, rest) = rest.split_at(16);
    let (nonce, ct) = rest.split_at(12);
    let key = derive(passphrase, salt)?;
    ChaCha20Poly1305::new(Key::from_slice(&key))
        .decrypt(Nonce::from_slice(nonce), ct)
        .map_err(|_| {
            StoreError::Invalid(
                "wrong passphrase for the TLS key in the backup (or the backup is damaged)".into(),
            )
        })
}

fn open(file: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open(file)?;
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS backup_files (name TEXT PRIMARY KEY, body BLOB NOT NULL)",
    )?;
    Ok(c)
}

/// Puts a file into a backup made by [`crate::Store::backup_to`].
pub fn put(file: &Path, name: &str, body: &[u8]) -> Result<(), StoreError> {
    open(file)?.execute(
        "INSERT OR REPLACE INTO backup_files (name, body) VALUES (?1, ?2)",
        rusqlite::params![name, body],
    )?;
    Ok(())
}

/// A file of a backup, if it has one by that name.
pub fn get(file: &Path, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let c = Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'backup_files')",
        [],
        |r| r.get(0),
    )?;
    if !has {
        return Ok(None);
    }
    Ok(c.query_row(
        "SELECT body FROM backup_files WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()?)
}

/// Takes the backup's files out of a store restored by copying the backup file.
pub(crate) fn drop_from(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("DROP TABLE IF EXISTS backup_files")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bodies_open_with_the_passphrase_only() {
        let s = seal(b"-----BEGIN PRIVATE KEY-----", "correct horse battery").unwrap();
        assert!(!s.windows(11).any(|w| w == b"PRIVATE KEY"));
        assert_eq!(
            unseal(&s, "correct horse battery").unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(unseal(&s, "correct horse batterz")
            .unwrap_err()
            .to_string()
            .contains("wrong passphrase"));
        assert!(seal(b"x", "short").is_err());
        let mut bad = s.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(unseal(&bad, "correct horse battery").is_err());
        assert!(unseal(b"junk", "correct horse battery").is_err());
    }
}
