//! Administrator accounts and their bearer tokens. Passwords are kept only as Argon2id PHC
//! strings and tokens only as their SHA-256, so a leaked database yields neither.

use std::sync::OnceLock;

use crate::db::{vals, Conn, Row};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use confab_sip::digest::Algorithm;
use rand::RngCore;

use crate::roles::{decode_list, encode_list, validate_role_identity};
use crate::users::{is_unique_violation, now};
use crate::{bump_version, now_ms, read_version, Store, StoreError};

/// Longest admin name.
pub const MAX_ADMIN_NAME_LEN: usize = 64;
/// Shortest admin password.
pub const MIN_ADMIN_PASSWORD_LEN: usize = 8;
/// Longest admin password.
pub const MAX_ADMIN_PASSWORD_LEN: usize = 256;

/// A stored administrator (the password hash never leaves this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// As entered (case kept); lookups ignore ASCII case.
    pub name: String,
    /// Role identities (built-in or custom), as assigned.
    pub roles: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// 1..=64 ASCII letters, digits and `._-@\` (so "alice", "alice@example.test" and
/// "CONTOSO\alice" all work).
pub fn validate_admin_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid("admin name is empty".into()));
    }
    let len = name.chars().count();
    if len > MAX_ADMIN_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "admin name is {len} characters long, at most {MAX_ADMIN_NAME_LEN} allowed"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "._-@\\".contains(c)))
    {
        return Err(StoreError::Invalid(format!(
            "admin name {name:?} contains {c:?}; allowed are letters, digits and ._-@\\"
        )));
    }
    Ok(())
}

/// 8..=256 characters.
pub fn validate_admin_password(password: &str) -> Result<(), StoreError> {
    let len = password.chars().count();
    if len < MIN_ADMIN_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "admin password is {len} characters long, at least {MIN_ADMIN_PASSWORD_LEN} required"
        )));
    }
    if len > MAX_ADMIN_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "admin password is {len} characters long, at most {MAX_ADMIN_PASSWORD_LEN} allowed"
        )));
    }
    Ok(())
}

/// Validates each role identity and drops later duplicates (ignoring ASCII case), keeping order.
fn normalize_roles(roles: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for r in roles {
        validate_role_identity(r)?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(r)) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Argon2id with the crate's default (OWASP-recommended) parameters, random 16-byte salt.
fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::Invalid(format!("password salt: {e}")))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::Invalid(format!("password hashing failed: {e}")))?
        .to_string())
}

/// Constant-time check of `password` against a PHC string; a malformed stored hash never
/// matches.
fn password_matches(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against for unknown names so that a miss costs as
/// much as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut pw);
        hash_password(&to_hex(&pw)).unwrap_or_default()
    })
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn token_hash(token: &str) -> String {
    Algorithm::Sha256.hex(token.as_bytes())
}

const ADMIN_COLUMNS: &str = "name, roles, created_at";

fn admin_from_row(r: &Row) -> Result<Admin, StoreError> {
    Ok(Admin {
        name: r.get(0)?,
        roles: decode_list(r, 1)?,
        created_at: r.get(2)?,
    })
}

fn no_such_admin(name: &str) -> StoreError {
    StoreError::NoSuchAdmin(name.to_owned())
}

/// Reads one admin (case-insensitive) on any connection (or transaction).
pub fn get_admin_in(conn: &Conn<'_>, name: &str) -> Result<Option<Admin>, StoreError> {
    conn.query_opt(
        &format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE lower(name) = lower(?1)"),
        vals![name],
    )?
    .map(|r| admin_from_row(&r))
    .transpose()
}

/// Inserts an admin whose password is already hashed (validation done by the caller).
fn insert_admin(
    conn: &Conn<'_>,
    name: &str,
    hash: &str,
    roles: Vec<String>,
) -> Result<Admin, StoreError> {
    let ts = now();
    match conn.execute(
        "INSERT INTO admins (name, password_hash, roles, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        vals![name, hash, encode_list(&roles), ts],
    ) {
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AdminExists(name.to_owned())),
        r => r?,
    };
    bump_version(conn, "admins_version")?;
    Ok(Admin {
        name: name.to_owned(),
        roles,
        created_at: ts,
    })
}

/// [`Store::add_admin`] inside the caller's transaction (hashes while the write lock is held,
/// so prefer the `Store` method when atomicity with other writes is not needed).
pub fn add_admin_in(
    conn: &Conn<'_>,
    name: &str,
    password: &str,
    roles: &[String],
) -> Result<Admin, StoreError> {
    validate_admin_name(name)?;
    validate_admin_password(password)?;
    let roles = normalize_roles(roles)?;
    insert_admin(conn, name, &hash_password(password)?, roles)
}

/// [`Store::remove_admin`] inside the caller's transaction.
pub fn remove_admin_in(conn: &Conn<'_>, name: &str) -> Result<(), StoreError> {
    // Tokens go by ON DELETE CASCADE.
    if conn.execute(
        "DELETE FROM admins WHERE lower(name) = lower(?1)",
        vals![name],
    )? == 0
    {
        return Err(no_such_admin(name));
    }
    bump_version(conn, "admins_version")?;
    Ok(())
}

/// [`Store::set_admin_roles`] inside the caller's transaction.
pub fn set_admin_roles_in(conn: &Conn<'_>, name: &str, roles: &[String]) -> Result<(), StoreError> {
    let roles = normalize_roles(roles)?;
    let n = conn.execute(
        "UPDATE admins SET roles = ?2, updated_at = ?3 WHERE lower(name) = lower(?1)",
        vals![name, encode_list(&roles), now()],
    )?;
    if n == 0 {
        return Err(no_such_admin(name));
    }
    bump_version(conn, "admins_version")?;
    Ok(())
}

fn set_admin_hash(conn: &Conn<'_>, name: &str, hash: &str) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE admins SET password_hash = ?2, updated_at = ?3 WHERE lower(name) = lower(?1)",
        vals![name, hash, now()],
    )?;
    if n == 0 {
        return Err(no_such_admin(name));
    }
    bump_version(conn, "admins_version")?;
    Ok(())
}

impl Store {
    /// Creates an administrator; `AdminExists` if the name is taken in any letter case.
    /// `roles` are validated as role identities and de-duplicated (ignoring case), but not
    /// checked against existing roles: built-in roles are not stored.
    pub fn add_admin(
        &self,
        name: &str,
        password: &str,
        roles: &[String],
    ) -> Result<Admin, StoreError> {
        validate_admin_name(name)?;
        validate_admin_password(password)?;
        let roles = normalize_roles(roles)?;
        // Hash before taking the lock: Argon2 is deliberately slow.
        let hash = hash_password(password)?;
        self.transaction(|tx| insert_admin(tx, name, &hash, roles))
    }

    /// The admin if `password` is theirs; `None` for a wrong password or an unknown name (which
    /// costs the same Argon2 verification, so timing does not reveal which names exist).
    pub fn verify_admin(&self, name: &str, password: &str) -> Result<Option<Admin>, StoreError> {
        let found: Option<(Admin, String)> = self
            .read(|c| {
                c.query_opt(
                    &format!(
                        "SELECT {ADMIN_COLUMNS}, password_hash FROM admins WHERE lower(name) = lower(?1)"
                    ),
                    vals![name],
                )
            })?
            .map(|r| Ok::<_, StoreError>((admin_from_row(&r)?, r.get(3)?)))
            .transpose()?;
        // Verify outside the lock.
        match found {
            Some((admin, hash)) => Ok(password_matches(password, &hash).then_some(admin)),
            None => {
                let _ = password_matches(password, dummy_hash());
                Ok(None)
            }
        }
    }

    /// Case-insensitive lookup; `None` if absent.
    pub fn get_admin(&self, name: &str) -> Result<Option<Admin>, StoreError> {
        self.read(|c| get_admin_in(c, name))
    }

    /// All admins, ordered by name (case-insensitively).
    pub fn list_admins(&self) -> Result<Vec<Admin>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY lower(name), name"),
                &[],
            )
        })?;
        rows.iter().map(admin_from_row).collect()
    }

    /// Deletes an admin and all their tokens; `NoSuchAdmin` if absent.
    pub fn remove_admin(&self, name: &str) -> Result<(), StoreError> {
        self.transaction(|tx| remove_admin_in(tx, name))
    }

    /// Replaces an admin's password (existing tokens stay valid; see
    /// [`Store::revoke_admin_tokens`]); `NoSuchAdmin` if absent.
    pub fn set_admin_password(&self, name: &str, password: &str) -> Result<(), StoreError> {
        validate_admin_password(password)?;
        if self.get_admin(name)?.is_none() {
            return Err(no_such_admin(name)); // don't spend a hash on a typo
        }
        let hash = hash_password(password)?;
        self.transaction(|tx| set_admin_hash(tx, name, &hash))
    }

    /// Replaces an admin's role list; `NoSuchAdmin` if absent.
    pub fn set_admin_roles(&self, name: &str, roles: &[String]) -> Result<(), StoreError> {
        self.transaction(|tx| set_admin_roles_in(tx, name, roles))
    }

    /// Number of admin accounts (0 means the first one still has to be bootstrapped).
    pub fn admin_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self.read(|c| c.query_one("SELECT COUNT(*) FROM admins", &[])?.get(0))?;
        Ok(n as usize)
    }

    /// Changes on every committed write to admin accounts (not on token issue/revoke).
    pub fn admins_version(&self) -> Result<i64, StoreError> {
        self.read(|c| read_version(c, "admins_version"))
    }

    /// A new bearer token for `admin`, valid for `ttl_secs` seconds (0: already expired): 32
    /// random bytes as 64 lower-case hex characters. Only its SHA-256 is stored. Also purges
    /// expired tokens. `NoSuchAdmin` if absent.
    pub fn issue_token(&self, admin: &str, ttl_secs: u64) -> Result<String, StoreError> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = to_hex(&raw);
        let created = now_ms();
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires = created.saturating_add(ttl_ms);
        self.transaction(|tx| {
            let stored: String = tx
                .query_opt(
                    "SELECT name FROM admins WHERE lower(name) = lower(?1)",
                    vals![admin],
                )?
                .ok_or_else(|| no_such_admin(admin))?
                .get(0)?;
            tx.execute(
                "DELETE FROM admin_tokens WHERE expires_at <= ?1",
                vals![created],
            )?;
            tx.execute(
                "INSERT INTO admin_tokens (token_hash, admin, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                vals![token_hash(&token), stored, created, expires],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The admin a token belongs to, if it exists and has not expired.
    pub fn token_admin(&self, token: &str) -> Result<Option<Admin>, StoreError> {
        self.read(|c| {
            c.query_opt(
                "SELECT a.name, a.roles, a.created_at
                 FROM admin_tokens t JOIN admins a ON a.name = t.admin
                 WHERE t.token_hash = ?1 AND t.expires_at > ?2",
                vals![token_hash(token), now_ms()],
            )
        })?
        .map(|r| admin_from_row(&r))
        .transpose()
    }

    /// Invalidates a token; `false` if it was unknown (or already purged).
    pub fn revoke_token(&self, token: &str) -> Result<bool, StoreError> {
        let n = self.read(|c| {
            c.execute(
                "DELETE FROM admin_tokens WHERE token_hash = ?1",
                vals![token_hash(token)],
            )
        })?;
        Ok(n > 0)
    }

    /// Invalidates every token of `admin` (e.g. after a password change); returns how many.
    pub fn revoke_admin_tokens(&self, admin: &str) -> Result<usize, StoreError> {
        self.read(|c| {
            c.execute(
                "DELETE FROM admin_tokens
                 WHERE admin = (SELECT name FROM admins WHERE lower(name) = lower(?1))",
                vals![admin],
            )
        })
    }
}
