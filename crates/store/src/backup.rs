//! Backup and restore. `backup_to` writes a consistent copy of the whole database (users,
//! contacts, stored messages, configuration, admins, roles, audit log) with SQLite's
//! `VACUUM INTO`, safe while the server runs; `restore_into` puts such a copy in place as a
//! new data directory's store. Portable exports of parts (Export-CsUserData) use
//! `export_user_data` / `import_user_data`.

use rusqlite::{params, Connection, OpenFlags};
use serde_json::{json, Value};
use std::path::Path;

use crate::migrations::SCHEMA_VERSION;
use crate::{Store, StoreError, DB_FILE_NAME};

impl Store {
    /// Writes a complete, consistent copy of the database to `file` (which must not exist).
    pub fn backup_to(&self, file: &Path) -> Result<(), StoreError> {
        if file.exists() {
            return Err(StoreError::Invalid(format!("{} already exists; choose a new file name", file.display())));
        }
        let path = file.to_str().ok_or_else(|| StoreError::Invalid("backup path is not UTF-8".into()))?;
        self.lock().execute("VACUUM INTO ?1", params![path])?;
        Ok(())
    }

    /// Installs the backup `file` as the store of `data_dir`, which must not hold one yet.
    /// The file is checked first (integrity, a schema this build knows).
    pub fn restore_into(file: &Path, data_dir: &Path) -> Result<(), StoreError> {
        let target = data_dir.join(DB_FILE_NAME);
        if target.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already has a store; restore into an empty data directory",
                data_dir.display()
            )));
        }
        {
            let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| StoreError::Invalid(format!("{} is not a confab backup: {e}", file.display())))?;
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|e| StoreError::Invalid(format!("{} is not a confab backup: {e}", file.display())))?;
            if ok != "ok" {
                return Err(StoreError::Invalid(format!("{} is damaged: {ok}", file.display())));
            }
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version == 0 || version > SCHEMA_VERSION {
                return Err(StoreError::Invalid(format!(
                    "{} has schema version {version}; this confab reads 1 to {SCHEMA_VERSION}",
                    file.display()
                )));
            }
        }
        std::fs::create_dir_all(data_dir)?;
        std::fs::copy(file, &target)?;
        // opening brings an older backup's schema up to date
        Store::open(data_dir).map(|_| ())
    }

    /// Users (with their HA1 hashes, never passwords), contact lists and stored messages,
    /// as one JSON document.
    pub fn export_user_data(&self) -> Result<Value, StoreError> {
        let conn = self.lock();
        let rows = |sql: &str, f: &dyn Fn(&rusqlite::Row) -> rusqlite::Result<Value>| -> Result<Vec<Value>, StoreError> {
            let mut q = conn.prepare(sql)?;
            let v = q.query_map([], |r| f(r))?.collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        };
        let users = rows(
            "SELECT username, domain, display_name, enabled, ha1_md5, ha1_sha256, created_at FROM users ORDER BY user_key",
            &|r| {
                Ok(json!({"username": r.get::<_, String>(0)?, "domain": r.get::<_, String>(1)?, "display_name": r.get::<_, String>(2)?,
                    "enabled": r.get::<_, bool>(3)?, "ha1_md5": r.get::<_, String>(4)?, "ha1_sha256": r.get::<_, String>(5)?,
                    "created_at": r.get::<_, i64>(6)?}))
            },
        )?;
        let contacts = rows("SELECT owner_key, contact, level FROM contacts ORDER BY owner_key, contact", &|r| {
            Ok(json!({"owner": r.get::<_, String>(0)?, "contact": r.get::<_, String>(1)?, "level": r.get::<_, Option<String>>(2)?}))
        })?;
        let messages = rows(
            "SELECT recipient_key, sender, content_type, hex(body), received_at, headers FROM offline_messages ORDER BY id",
            &|r| {
                Ok(json!({"recipient": r.get::<_, String>(0)?, "sender": r.get::<_, String>(1)?, "content_type": r.get::<_, String>(2)?,
                    "body_hex": r.get::<_, String>(3)?, "received_at": r.get::<_, i64>(4)?, "headers": r.get::<_, String>(5)?}))
            },
        )?;
        Ok(json!({"format": "confab-user-data/1", "users": users, "contacts": contacts, "messages": messages}))
    }

    /// Loads what [`Store::export_user_data`] wrote, in one transaction: users are added or
    /// replaced (same hashes), contact lists and stored messages are added. Nothing is
    /// written if any part is invalid.
    pub fn import_user_data(&self, data: &Value) -> Result<usize, StoreError> {
        if data["format"] != json!("confab-user-data/1") {
            return Err(StoreError::Invalid("not a confab user data export (format confab-user-data/1)".into()));
        }
        let bad = |what: &str| StoreError::Invalid(format!("user data: bad or missing {what}"));
        let s = |v: &Value, k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| bad(k));
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ts = crate::users::now();
        let mut n = 0;
        for u in data["users"].as_array().ok_or_else(|| bad("users"))? {
            let (username, domain) = (s(u, "username")?, s(u, "domain")?);
            crate::validate::validate_username(&username)?;
            let domain = crate::validate::normalize_domain(&domain)?;
            let (md5, sha) = (s(u, "ha1_md5")?, s(u, "ha1_sha256")?);
            if md5.len() != 32 || sha.len() != 64 || !md5.bytes().chain(sha.bytes()).all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("HA1 hashes"));
            }
            let key = crate::users::user_key(&username, &domain);
            tx.execute(
                "INSERT INTO users (username, domain, user_key, display_name, enabled, ha1_md5, ha1_sha256, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(user_key) DO UPDATE SET username = excluded.username, display_name = excluded.display_name,
                   enabled = excluded.enabled, ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256, updated_at = excluded.updated_at",
                params![username, domain, key, u["display_name"].as_str().unwrap_or(""), u["enabled"].as_bool().unwrap_or(true),
                    md5, sha, u["created_at"].as_i64().unwrap_or(ts), ts],
            )?;
            n += 1;
        }
        for c in data["contacts"].as_array().ok_or_else(|| bad("contacts"))? {
            let owner = s(c, "owner")?;
            let owner_id: i64 = tx
                .query_row("SELECT id FROM users WHERE user_key = ?1", params![owner], |r| r.get(0))
                .map_err(|_| StoreError::NoSuchUser(owner.clone()))?;
            let level = c["level"].as_str();
            if let Some(l) = level {
                crate::contacts::parse_level(l)?;
            }
            tx.execute(
                "INSERT INTO contacts (owner_id, owner_key, contact, level, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT(owner_key, contact) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at",
                params![owner_id, owner, s(c, "contact")?, level, ts],
            )?;
        }
        for m in data["messages"].as_array().ok_or_else(|| bad("messages"))? {
            let body_hex = s(m, "body_hex")?;
            let body = (0..body_hex.len())
                .step_by(2)
                .map(|i| body_hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad("message body"))?;
            tx.execute(
                "INSERT INTO offline_messages (recipient_key, sender, content_type, body, received_at, headers) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![s(m, "recipient")?, s(m, "sender")?, s(m, "content_type")?, body, m["received_at"].as_i64().unwrap_or(ts), s(m, "headers")?],
            )?;
        }
        for counter in ["users_version", "contacts_version"] {
            tx.execute("UPDATE meta SET value = value + 1 WHERE key = ?1", params![counter])?;
        }
        tx.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewUser, PrivacyLevel};

    fn sample(dir: &Path) -> Store {
        let s = Store::open(dir).unwrap();
        s.add_user(&NewUser { username: "alice", domain: "a.test", display_name: "Alice", password: "pw-alice" }).unwrap();
        s.add_user(&NewUser { username: "bob", domain: "a.test", display_name: "", password: "pw-bob" }).unwrap();
        s.add_contact("alice", "a.test", "bob@a.test", Some(PrivacyLevel::Workgroup)).unwrap();
        s.store_message("bob", "a.test", "<sip:alice@a.test>", "text/plain", b"hi\x00there", "Subject: x\r\n", 10, 1000).unwrap();
        s
    }

    #[test]
    fn backup_then_restore_is_identical() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let s = sample(a.path());
        let file = a.path().join("backup.db");
        s.backup_to(&file).unwrap();
        assert!(s.backup_to(&file).is_err(), "never overwrites");
        Store::restore_into(&file, b.path()).unwrap();
        let r = Store::open(b.path()).unwrap();
        assert_eq!(r.export_user_data().unwrap(), s.export_user_data().unwrap());
        assert!(Store::restore_into(&file, b.path()).is_err(), "target must be empty");
        let junk = a.path().join("junk");
        std::fs::write(&junk, b"not a database").unwrap();
        assert!(Store::restore_into(&junk, &a.path().join("new")).unwrap_err().to_string().contains("not a confab backup"));
    }

    #[test]
    fn user_data_round_trip() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let s = sample(a.path());
        let data = s.export_user_data().unwrap();
        let t = Store::open(b.path()).unwrap();
        assert_eq!(t.import_user_data(&data).unwrap(), 2);
        assert_eq!(t.export_user_data().unwrap(), data);
        assert_eq!(t.pending_messages("bob", "a.test", 10).unwrap()[0].body, b"hi\x00there");
        let mut broken = data.clone();
        broken["users"][1]["ha1_md5"] = json!("zz");
        let c = tempfile::tempdir().unwrap();
        let u = Store::open(c.path()).unwrap();
        assert!(u.import_user_data(&broken).is_err());
        assert!(u.list_users(None).unwrap().is_empty(), "all or nothing");
    }
}
