//! User accounts. Only HA1 hashes are stored (MD5 and SHA-256, realm = the user's domain), so a
//! leaked database does not reveal passwords and the server never needs them.

use std::time::{SystemTime, UNIX_EPOCH};

use confab_sip::digest::{ha1, Algorithm};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::validate::{
    normalize_domain, validate_display_name, validate_password, validate_username,
};
use crate::{Store, StoreError};

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// As entered (case kept); lookups ignore case.
    pub username: String,
    /// Lower-cased; also the digest realm.
    pub domain: String,
    pub display_name: String,
    pub enabled: bool,
    /// lower hex H(username:domain:password), MD5.
    pub ha1_md5: String,
    /// lower hex H(username:domain:password), SHA-256.
    pub ha1_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl User {
    /// `username@domain`, the address-of-record without scheme.
    pub fn address(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }

    /// The stored HA1 for `alg`, what a digest verifier needs.
    pub fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Input for [`Store::add_user`].
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub domain: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
}

const USER_COLUMNS: &str =
    "id, username, domain, display_name, enabled, ha1_md5, ha1_sha256, created_at";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        domain: r.get(2)?,
        display_name: r.get(3)?,
        enabled: r.get(4)?,
        ha1_md5: r.get(5)?,
        ha1_sha256: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// The UNIQUE lookup key: case-insensitive on both parts.
pub(crate) fn user_key(username: &str, domain: &str) -> String {
    format!(
        "{}@{}",
        username.to_ascii_lowercase(),
        domain.to_ascii_lowercase()
    )
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Every write transaction that touches users calls this, so readers in other processes can
/// tell their cache is stale by comparing one integer.
fn bump_users_version(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'users_version'",
        [],
    )?;
    Ok(())
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

pub(crate) fn no_such_user(username: &str, domain: &str) -> StoreError {
    StoreError::NoSuchUser(format!("{username}@{domain}"))
}

impl Store {
    /// Creates a user; `UserExists` if the same username@domain exists in any letter case.
    pub fn add_user(&self, u: &NewUser) -> Result<User, StoreError> {
        validate_username(u.username)?;
        let domain = normalize_domain(u.domain)?;
        validate_password(u.password)?;
        validate_display_name(u.display_name)?;
        let md5 = ha1(Algorithm::Md5, u.username, &domain, u.password);
        let sha256 = ha1(Algorithm::Sha256, u.username, &domain, u.password);
        let ts = now();

        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO users (username, domain, user_key, display_name, enabled,
                                ha1_md5, ha1_sha256, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)",
            params![
                u.username,
                domain,
                user_key(u.username, &domain),
                u.display_name,
                md5,
                sha256,
                ts
            ],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::UserExists(format!("{}@{}", u.username, domain)))
            }
            r => r?,
        };
        let id = tx.last_insert_rowid();
        bump_users_version(&tx)?;
        tx.commit()?;
        Ok(User {
            id,
            username: u.username.to_owned(),
            domain,
            display_name: u.display_name.to_owned(),
            enabled: true,
            ha1_md5: md5,
            ha1_sha256: sha256,
            created_at: ts,
        })
    }

    /// Case-insensitive lookup; `None` if absent (malformed input simply matches nothing).
    pub fn get_user(&self, username: &str, domain: &str) -> Result<Option<User>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_key = ?1"
        ))?;
        Ok(stmt
            .query_row([user_key(username, domain)], user_from_row)
            .optional()?)
    }

    /// All users, or those of one domain, ordered by domain then username (case-insensitively).
    pub fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>, StoreError> {
        let conn = self.lock();
        let order = "ORDER BY domain, username COLLATE NOCASE, username";
        let users = match domain {
            Some(d) => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE domain = ?1 {order}"
                ))?;
                let rows = stmt.query_map([d.to_ascii_lowercase()], user_from_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            }
            None => {
                let mut stmt =
                    conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users {order}"))?;
                let rows = stmt.query_map([], user_from_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            }
        };
        Ok(users)
    }

    /// Deletes a user with their contact list and stored offline messages; `NoSuchUser` if
    /// absent.
    pub fn remove_user(&self, username: &str, domain: &str) -> Result<(), StoreError> {
        let key = user_key(username, domain);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let had_contacts: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM contacts WHERE owner_key = ?1)",
            [&key],
            |r| r.get(0),
        )?;
        // Contacts go by ON DELETE CASCADE, messages by trigger (see migrations).
        if tx.execute("DELETE FROM users WHERE user_key = ?1", [&key])? == 0 {
            return Err(no_such_user(username, domain));
        }
        bump_users_version(&tx)?;
        if had_contacts {
            crate::contacts::bump_contacts_version(&tx)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces both HA1 hashes. They are computed from the stored username (its original case),
    /// which is what clients put in their Digest `username`.
    pub fn set_password(
        &self,
        username: &str,
        domain: &str,
        password: &str,
    ) -> Result<(), StoreError> {
        validate_password(password)?;
        let key = user_key(username, domain);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (stored_user, stored_domain): (String, String) = tx
            .query_row(
                "SELECT username, domain FROM users WHERE user_key = ?1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| no_such_user(username, domain))?;
        let md5 = ha1(Algorithm::Md5, &stored_user, &stored_domain, password);
        let sha256 = ha1(Algorithm::Sha256, &stored_user, &stored_domain, password);
        tx.execute(
            "UPDATE users SET ha1_md5 = ?2, ha1_sha256 = ?3, updated_at = ?4 WHERE user_key = ?1",
            params![key, md5, sha256, now()],
        )?;
        bump_users_version(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Disabled users keep their credentials but must be refused by the server.
    pub fn set_enabled(
        &self,
        username: &str,
        domain: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        self.write_one(
            username,
            domain,
            "UPDATE users SET enabled = ?2, updated_at = ?3 WHERE user_key = ?1",
            &[&enabled, &now()],
        )
    }

    pub fn set_display_name(
        &self,
        username: &str,
        domain: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        validate_display_name(name)?;
        self.write_one(
            username,
            domain,
            "UPDATE users SET display_name = ?2, updated_at = ?3 WHERE user_key = ?1",
            &[&name, &now()],
        )
    }

    /// Creates or resets `{prefix}0000`..`{prefix}{count-1}` (zero-padded to at least 4 digits)
    /// with password `{password_prefix}{username}`, all in one transaction, for load tests.
    /// Existing accounts get their password reset and are re-enabled; returns `count`.
    pub fn seed_users(
        &self,
        domain: &str,
        prefix: &str,
        count: u32,
        password_prefix: &str,
    ) -> Result<usize, StoreError> {
        let domain = normalize_domain(domain)?;
        if count == 0 {
            return Ok(0);
        }
        let width = (count - 1).to_string().len().max(4);
        let name = |i: u32| format!("{prefix}{i:0width$}");
        // Names differ only in digits, so checking the extremes checks them all.
        validate_username(&name(0))?;
        validate_username(&name(count - 1))?;
        validate_password(&format!("{password_prefix}{}", name(count - 1)))?;

        let ts = now();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            // On conflict the seeded spelling wins, so the HA1 matches the stored username.
            let mut stmt = tx.prepare(
                "INSERT INTO users (username, domain, user_key, display_name, enabled,
                                    ha1_md5, ha1_sha256, created_at, updated_at)
                 VALUES (?1, ?2, ?3, '', 1, ?4, ?5, ?6, ?6)
                 ON CONFLICT(user_key) DO UPDATE SET
                    username = excluded.username, enabled = 1,
                    ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256,
                    updated_at = excluded.updated_at",
            )?;
            let mut password = String::new();
            for i in 0..count {
                let username = name(i);
                password.clear();
                password.push_str(password_prefix);
                password.push_str(&username);
                let md5 = ha1(Algorithm::Md5, &username, &domain, &password);
                let sha256 = ha1(Algorithm::Sha256, &username, &domain, &password);
                stmt.execute(params![
                    username,
                    domain,
                    user_key(&username, &domain),
                    md5,
                    sha256,
                    ts
                ])?;
            }
        }
        bump_users_version(&tx)?;
        tx.commit()?;
        Ok(count as usize)
    }

    /// Changes on every committed write to users (also by other processes); compare it with a
    /// cached value to know when to reload.
    pub fn users_version(&self) -> Result<i64, StoreError> {
        let conn = self.lock();
        let v: i64 = conn.query_row(
            "SELECT value FROM meta WHERE key = 'users_version'",
            [],
            |r| r.get(0),
        )?;
        Ok(v)
    }

    /// Runs a single-row write keyed by `?1 = user_key`; `NoSuchUser` if it touched nothing.
    fn write_one(
        &self,
        username: &str,
        domain: &str,
        sql: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<(), StoreError> {
        let key = user_key(username, domain);
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(1 + extra.len());
        args.push(&key);
        args.extend_from_slice(extra);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute(sql, args.as_slice())? == 0 {
            return Err(no_such_user(username, domain));
        }
        bump_users_version(&tx)?;
        tx.commit()?;
        Ok(())
    }
}
