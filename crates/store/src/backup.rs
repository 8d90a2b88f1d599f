//! Backup and restore. A backup is always an SQLite database file, whichever backend made it:
//! from SQLite `backup_to` uses `VACUUM INTO` (safe while the server runs), from PostgreSQL
//! it copies every table into a fresh file in one snapshot. `restore_into` makes such a file
//! a new data directory's store; `restore_from` loads it into an empty store of either kind
//! (so a backup moves between SQLite and PostgreSQL). Portable exports of parts
//! (Export-CsUserData) use `export_user_data` / `import_user_data`.

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use std::path::Path;

use crate::db::{vals, Backend, Conn};
use crate::migrations::SCHEMA_VERSION;
use crate::{Store, StoreError, DB_FILE_NAME};

/// Every table a backup holds, parents before children, with its columns (the first orders
/// the copy).
const TABLES: &[(&str, &str)] = &[
    ("users", "id, username, domain, user_key, display_name, enabled, ha1_md5, ha1_sha256, created_at, updated_at, ha1_md5_at_domain, ha1_md5_at, ou, line_uri, enterprise_voice_enabled, call_forwarding, hosted_voicemail"),
    ("contacts", "id, owner_id, owner_key, contact, level, created_at, updated_at"),
    ("offline_messages", "id, recipient_key, sender, content_type, body, received_at, headers"),
    ("state_snapshot", "id, kind, body"),
    ("config_documents", "kind, identity, body, created_at, updated_at"),
    ("admins", "name, password_hash, roles, created_at, updated_at"),
    ("admin_tokens", "token_hash, admin, created_at, expires_at"),
    ("admin_roles", "identity, template, cmdlets, config_scopes, user_scopes, created_at, updated_at"),
    ("audit_log", "id, at, admin, origin, command, success, result"),
    ("server_secrets", "name, value, created_at"),
    ("meetings", "id, organizer, meeting_key, conference_id, kind, subject, access, presenters, pstn_bypass_lobby, invitees, created_at, end_at, last_used_at, expires_at"),
    ("client_pins", "user_key, pin_hash, history, set_at, failures, locked"),
    ("user_sessions", "token_hash, user_key, created_at, expires_at"),
];

/// Counters bumped after a restore so running servers reload everything.
const VERSION_COUNTERS: &[&str] = &[
    "users_version",
    "contacts_version",
    "config_version",
    "roles_version",
    "admins_version",
    "meetings_version",
];

/// Copies every row of [`TABLES`] from `from` to `to` (which must have the same schema and no
/// rows), then moves PostgreSQL id sequences past the copied ids.
fn copy_tables(from: &Conn<'_>, to: &Conn<'_>) -> Result<(), StoreError> {
    for (table, columns) in TABLES {
        let order = columns.split(',').next().unwrap_or("1");
        let rows = from.query(
            &format!("SELECT {columns} FROM {table} ORDER BY {order}"),
            &[],
        )?;
        let n = columns.split(',').count();
        let placeholders = (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!("INSERT INTO {table} ({columns}) VALUES ({placeholders})");
        for row in rows {
            to.execute(&insert, &row.0)?;
        }
        if to.backend() == Backend::Postgres && columns.starts_with("id,") {
            to.query_one(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
                ),
                &[],
            )?;
        }
    }
    Ok(())
}

/// Checks that `file` is an intact SQLite backup with a schema this build reads.
fn check_backup_file(file: &Path) -> Result<(), StoreError> {
    let not_backup = |e: rusqlite::Error| {
        StoreError::Invalid(format!("{} is not a confab backup: {e}", file.display()))
    };
    let conn =
        Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(not_backup)?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(not_backup)?;
    if ok != "ok" {
        return Err(StoreError::Invalid(format!(
            "{} is damaged: {ok}",
            file.display()
        )));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 || version > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "{} has schema version {version}; this confab reads 1 to {SCHEMA_VERSION}",
            file.display()
        )));
    }
    Ok(())
}

impl Store {
    /// Writes a complete, consistent copy of the store to `file` (which must not exist), as an
    /// SQLite database whichever the backend.
    ///
    /// A backup holds every user's HA1 hashes (password equivalents) and the administrators'
    /// password hashes, so the file is created readable and writable by its owner only (0600).
    pub fn backup_to(&self, file: &Path) -> Result<(), StoreError> {
        let path = file
            .to_str()
            .ok_or_else(|| StoreError::Invalid("backup path is not UTF-8".into()))?;
        create_private_file(file)?;
        if let Some(conn) = self.sqlite() {
            // VACUUM INTO writes into an empty file, keeping its permissions
            let r = conn.execute("VACUUM INTO ?1", [path]);
            drop(conn);
            if let Err(e) = r {
                let _ = std::fs::remove_file(file);
                return Err(e.into());
            }
            return Ok(());
        }
        let copy = || -> Result<(), StoreError> {
            let target = Store::open_file(file)?;
            // One REPEATABLE READ transaction: every table from the same snapshot.
            self.transaction(|from| {
                from.batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
                target.transaction(|to| {
                    copy_tables(from, to)?;
                    for row in from.query(
                        "SELECT key, value FROM meta WHERE key <> 'schema_version'",
                        &[],
                    )? {
                        to.execute(
                            "UPDATE meta SET value = ?2 WHERE key = ?1",
                            &[row.0[0].clone(), row.0[1].clone()],
                        )?;
                    }
                    Ok(())
                })
            })?;
            // A self-contained file: no -wal/-shm beside it once closed.
            if let Some(c) = target.sqlite() {
                c.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
            }
            Ok(())
        };
        let result = copy();
        if result.is_err() {
            let _ = std::fs::remove_file(file);
        }
        result
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
        check_backup_file(file)?;
        std::fs::create_dir_all(data_dir)?;
        std::fs::copy(file, &target)?;
        // the files that travel with the backup stay out of the live store
        crate::backup_files::drop_from(&Connection::open(&target)?)?;
        // opening brings an older backup's schema up to date
        Store::open(data_dir).map(|_| ())
    }

    /// Loads the backup `file` into this store, which must be empty (no users, configuration,
    /// admins, roles, messages or audit entries), in one transaction; works on either backend.
    pub fn restore_from(&self, file: &Path) -> Result<(), StoreError> {
        check_backup_file(file)?;
        // Work on a copy: opening migrates an older backup's schema, and the file stays as it was.
        let scratch = tempdir_for_restore()?;
        let copy = scratch.join(DB_FILE_NAME);
        std::fs::copy(file, &copy)?;
        let result = (|| {
            let source = Store::open(&scratch)?;
            source.read(|from| {
                self.transaction(|to| {
                    for (table, _) in TABLES {
                        let any: bool = to.query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])?.get(0)?;
                        if any {
                            return Err(StoreError::Invalid(format!(
                                "the target store is not empty ({table} has rows); restore into an empty store"
                            )));
                        }
                    }
                    copy_tables(from, to)?;
                    for counter in VERSION_COUNTERS {
                        crate::bump_version(to, counter)?;
                    }
                    Ok(())
                })
            })
        })();
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    /// Users (with their HA1 hashes, never passwords), contact lists and stored messages,
    /// as one JSON document.
    pub fn export_user_data(&self) -> Result<Value, StoreError> {
        let (users, contacts, messages) = self.transaction(|c| {
            Ok((
                c.query("SELECT username, domain, display_name, enabled, ha1_md5, ha1_sha256, created_at, ha1_md5_at_domain, ha1_md5_at, ou, line_uri, enterprise_voice_enabled, call_forwarding, hosted_voicemail FROM users ORDER BY user_key", &[])?,
                c.query("SELECT owner_key, contact, level FROM contacts ORDER BY owner_key, contact", &[])?,
                c.query("SELECT recipient_key, sender, content_type, body, received_at, headers FROM offline_messages ORDER BY id", &[])?,
            ))
        })?;
        let users = users
            .iter()
            .map(|r| {
                let ou = r.get::<String>(9)?;
                Ok(json!({"username": r.get::<String>(0)?, "domain": r.get::<String>(1)?, "display_name": r.get::<String>(2)?,
                    "enabled": r.get::<bool>(3)?, "ha1_md5": r.get::<String>(4)?, "ha1_sha256": r.get::<String>(5)?,
                    "created_at": r.get::<i64>(6)?, "ha1_md5_at_domain": r.get::<String>(7)?, "ha1_md5_at": r.get::<String>(8)?,
                    "ou": if ou.is_empty() { Value::Null } else { Value::String(ou) },
                    "line_uri": r.get::<Option<String>>(10)?,
                    "enterprise_voice_enabled": r.get::<bool>(11)?,
                    "call_forwarding": r.get::<Option<String>>(12)?,
                    "hosted_voicemail": r.get::<bool>(13)?}))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let contacts = contacts
            .iter()
            .map(|r| Ok(json!({"owner": r.get::<String>(0)?, "contact": r.get::<String>(1)?, "level": r.get::<Option<String>>(2)?})))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let messages = messages
            .iter()
            .map(|r| {
                Ok(json!({"recipient": r.get::<String>(0)?, "sender": r.get::<String>(1)?, "content_type": r.get::<String>(2)?,
                    "body_hex": to_upper_hex(&r.get::<Vec<u8>>(3)?), "received_at": r.get::<i64>(4)?, "headers": r.get::<String>(5)?}))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(
            json!({"format": "confab-user-data/1", "users": users, "contacts": contacts, "messages": messages}),
        )
    }

    /// Loads what [`Store::export_user_data`] wrote, in one transaction: users are added or
    /// replaced (same hashes), contact lists and stored messages are added. Nothing is
    /// written if any part is invalid.
    pub fn import_user_data(&self, data: &Value) -> Result<usize, StoreError> {
        if data["format"] != json!("confab-user-data/1") {
            return Err(StoreError::Invalid(
                "not a confab user data export (format confab-user-data/1)".into(),
            ));
        }
        let bad = |what: &str| StoreError::Invalid(format!("user data: bad or missing {what}"));
        let s = |v: &Value, k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| bad(k));
        let ts = crate::users::now();
        self.transaction(|tx| {
            let mut n = 0;
            for u in data["users"].as_array().ok_or_else(|| bad("users"))? {
                let (username, domain) = (s(u, "username")?, s(u, "domain")?);
                crate::validate::validate_username(&username)?;
                let domain = crate::validate::normalize_domain(&domain)?;
                let (md5, sha) = (s(u, "ha1_md5")?, s(u, "ha1_sha256")?);
                if md5.len() != 32 || sha.len() != 64 || !md5.bytes().chain(sha.bytes()).all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad("HA1 hashes"));
                }
                // the user@domain and user@ hashes are optional (older exports lack them)
                let alt = |k: &str| -> Result<String, StoreError> {
                    let v = u[k].as_str().unwrap_or("");
                    if v.is_empty() || (v.len() == 32 && v.bytes().all(|c| c.is_ascii_hexdigit())) {
                        Ok(v.to_string())
                    } else {
                        Err(bad(k))
                    }
                };
                let (at_domain, at) = (alt("ha1_md5_at_domain")?, alt("ha1_md5_at")?);
                let key = crate::users::user_key(&username, &domain);
                // an export from before organisational units has none: the user is in no OU
                let ou = match &u["ou"] {
                    Value::Null => String::new(),
                    Value::String(ou) => crate::validate::normalize_ou(ou)?,
                    _ => return Err(bad("ou")),
                };
                // an export from before LineURIs has none
                let line_uri = match &u["line_uri"] {
                    Value::Null => None,
                    Value::String(l) => Some(crate::users::normalize_line_uri(l)?),
                    _ => return Err(bad("line_uri")),
                };
                // an export from before call forwarding has none: the defaults
                let call_forwarding = match &u["call_forwarding"] {
                    Value::Null => None,
                    Value::String(j) => {
                        crate::users::check_call_forwarding_json(j)?;
                        Some(j.clone())
                    }
                    _ => return Err(bad("call_forwarding")),
                };
                tx.execute(
                    "INSERT INTO users (username, domain, user_key, display_name, enabled, ha1_md5, ha1_sha256, created_at, updated_at,
                                        ha1_md5_at_domain, ha1_md5_at, ou, line_uri, enterprise_voice_enabled, call_forwarding, hosted_voicemail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                     ON CONFLICT(user_key) DO UPDATE SET username = excluded.username, display_name = excluded.display_name,
                       enabled = excluded.enabled, ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256, updated_at = excluded.updated_at,
                       ha1_md5_at_domain = excluded.ha1_md5_at_domain, ha1_md5_at = excluded.ha1_md5_at, ou = excluded.ou, line_uri = excluded.line_uri,
                       enterprise_voice_enabled = excluded.enterprise_voice_enabled,
                       call_forwarding = excluded.call_forwarding, hosted_voicemail = excluded.hosted_voicemail",
                    vals![username, domain, key, u["display_name"].as_str().unwrap_or(""), u["enabled"].as_bool().unwrap_or(true),
                        md5, sha, u["created_at"].as_i64().unwrap_or(ts), ts, at_domain, at, ou, line_uri,
                        // an export from before Enterprise Voice has none: off
                        u["enterprise_voice_enabled"].as_bool().unwrap_or(false),
                        call_forwarding,
                        // an export from before hosted voicemail has none: off
                        u["hosted_voicemail"].as_bool().unwrap_or(false)],
                )?;
                n += 1;
            }
            for c in data["contacts"].as_array().ok_or_else(|| bad("contacts"))? {
                let owner = s(c, "owner")?;
                let owner_id: i64 = tx
                    .query_opt("SELECT id FROM users WHERE user_key = ?1", vals![&owner])?
                    .ok_or_else(|| StoreError::NoSuchUser(owner.clone()))?
                    .get(0)?;
                let level = c["level"].as_str();
                if let Some(l) = level {
                    crate::contacts::parse_level(l)?;
                }
                tx.execute(
                    "INSERT INTO contacts (owner_id, owner_key, contact, level, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                     ON CONFLICT(owner_key, contact) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at",
                    vals![owner_id, owner, s(c, "contact")?, level, ts],
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
                    vals![s(m, "recipient")?, s(m, "sender")?, s(m, "content_type")?, body, m["received_at"].as_i64().unwrap_or(ts), s(m, "headers")?],
                )?;
            }
            for counter in ["users_version", "contacts_version"] {
                crate::bump_version(tx, counter)?;
            }
            Ok(n)
        })
    }
}

/// Creates `file`, which must not exist (a symbolic link there is refused too), empty and
/// readable by its owner only.
pub(crate) fn create_private_file(file: &Path) -> Result<std::fs::File, StoreError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Invalid(format!(
            "{} already exists; choose a new file name",
            file.display()
        )),
        _ => StoreError::Invalid(format!("{}: {e}", file.display())),
    })
}

/// Upper-case hex, as SQLite's `hex()` wrote it in earlier exports.
fn to_upper_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// A fresh private directory under the system temp dir.
fn tempdir_for_restore() -> Result<std::path::PathBuf, StoreError> {
    use rand::RngCore;
    let dir = std::env::temp_dir().join(format!(
        "confab-restore-{:016x}",
        rand::thread_rng().next_u64()
    ));
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewUser, PrivacyLevel};

    fn sample(dir: &Path) -> Store {
        let s = Store::open(dir).unwrap();
        s.add_user_in_ou(
            &NewUser {
                username: "alice",
                domain: "a.test",
                display_name: "Alice",
                password: "pw-alice",
            },
            Some("OU=Sales,DC=a,DC=test"),
        )
        .unwrap();
        s.add_user(&NewUser {
            username: "bob",
            domain: "a.test",
            display_name: "",
            password: "pw-bob",
        })
        .unwrap();
        s.add_contact(
            "alice",
            "a.test",
            "bob@a.test",
            Some(PrivacyLevel::Workgroup),
        )
        .unwrap();
        s.store_message(
            "bob",
            "a.test",
            "<sip:alice@a.test>",
            "text/plain",
            b"hi\x00there",
            "Subject: x\r\n",
            10,
            1000,
        )
        .unwrap();
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "holds password equivalents: owner only"
            );
        }
        let r = Store::open(b.path()).unwrap();
        assert_eq!(r.export_user_data().unwrap(), s.export_user_data().unwrap());
        assert_eq!(
            r.get_user("alice", "a.test")
                .unwrap()
                .unwrap()
                .ou
                .as_deref(),
            Some("OU=Sales,DC=a,DC=test"),
            "the organisational unit survives a backup"
        );
        assert_eq!(r.get_user("bob", "a.test").unwrap().unwrap().ou, None);
        assert!(
            Store::restore_into(&file, b.path()).is_err(),
            "target must be empty"
        );
        let junk = a.path().join("junk");
        std::fs::write(&junk, b"not a database").unwrap();
        assert!(Store::restore_into(&junk, &a.path().join("new"))
            .unwrap_err()
            .to_string()
            .contains("not a confab backup"));
    }

    #[test]
    fn user_data_round_trip() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let s = sample(a.path());
        let data = s.export_user_data().unwrap();
        let t = Store::open(b.path()).unwrap();
        assert_eq!(t.import_user_data(&data).unwrap(), 2);
        assert_eq!(t.export_user_data().unwrap(), data);
        assert_eq!(data["users"][0]["ou"], json!("OU=Sales,DC=a,DC=test"));
        assert_eq!(
            t.get_user("alice", "a.test")
                .unwrap()
                .unwrap()
                .ou
                .as_deref(),
            Some("OU=Sales,DC=a,DC=test")
        );
        assert_eq!(
            t.pending_messages("bob", "a.test", 10).unwrap()[0].body,
            b"hi\x00there"
        );
        let mut broken = data.clone();
        broken["users"][1]["ha1_md5"] = json!("zz");
        let c = tempfile::tempdir().unwrap();
        let u = Store::open(c.path()).unwrap();
        assert!(u.import_user_data(&broken).is_err());
        assert!(u.list_users(None).unwrap().is_empty(), "all or nothing");
    }
}
