//! confab's central store: users and their digest credentials, their contact lists with privacy
//! levels, and instant messages held for offline users, and the administration data
//! (configuration documents, admin accounts and tokens, custom admin roles, the audit log), in
//! an embedded SQLite database by default or in PostgreSQL ([`Store::open_url`]), with the
//! same code (see `db.rs`).
//!
//! One [`Store`] wraps one connection behind a mutex; the server and the CLI may open the same
//! database file at once (WAL journal, busy timeout), several servers may share one PostgreSQL
//! database, and [`Store::users_version`] /
//! [`Store::contacts_version`] (and [`Store::config_version`], [`Store::roles_version`],
//! [`Store::admins_version`], [`Store::meetings_version`]) let the server notice edits made by another process.

mod admins;
mod audit;
mod backup;
pub mod backup_files;
mod config;
mod contacts;
mod db;
pub mod meetings;
mod messages;
mod migrations;
pub mod pins;
pub mod pool;
mod roles;
mod secrets;
pub mod sessions;
mod snapshot;
mod users;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use db::{vals, PgClient};
pub use db::{Backend, Conn, FromValue, Row, Value};

pub use admins::{
    validate_admin_name, validate_admin_password, Admin, MAX_ADMIN_NAME_LEN,
    MAX_ADMIN_PASSWORD_LEN, MIN_ADMIN_PASSWORD_LEN,
};
pub use audit::{AuditEntry, AuditFilter};
pub use config::{
    validate_config_identity, validate_config_kind, ConfigDocument, MAX_CONFIG_BODY_LEN,
    MAX_CONFIG_IDENTITY_LEN, MAX_CONFIG_KIND_LEN,
};
pub use contacts::{auto_level, parse_level, ContactEntry, PrivacyLevel, MAX_CONTACTS_PER_USER};
pub use meetings::{
    Access, Meeting, MeetingKind, NewMeeting, Presenters, MAX_MEETINGS_PER_ORGANIZER,
};
pub use messages::StoredMessage;
pub use migrations::SCHEMA_VERSION;
pub use pins::{PinCheck, PinInfo, MAX_PIN_LEN, MIN_PIN_LEN};
pub use pool::{Claim, FrontEnd, LiveSession, Registration, SharedPublication};
pub use roles::{
    validate_role_identity, AdminRoleRow, MAX_ROLE_IDENTITY_LEN, MAX_ROLE_ITEMS, MAX_ROLE_ITEM_LEN,
};
pub use users::{normalize_line_uri, NewUser, User, MAX_CALL_FORWARDING_LEN, MAX_LINE_URI_DIGITS};
pub use validate::{
    dn_components, normalize_domain, normalize_ou, ou_within, validate_display_name,
    validate_password, validate_username, BarrierMember, MAX_DISPLAY_NAME_LEN, MAX_OU_LEN,
    MAX_PASSWORD_LEN, MAX_USERNAME_LEN,
};

/// Writes that can run inside [`Store::transaction`], so an admin change and its audit entry
/// commit or roll back together. Each takes the closure's [`Conn`] and behaves like the
/// `Store` method of the same name, version bumps included.
pub mod tx {
    pub use crate::admins::{
        add_admin_in as add_admin, get_admin_in as get_admin, remove_admin_in as remove_admin,
        set_admin_roles_in as set_admin_roles,
    };
    pub use crate::audit::append_audit_in as append_audit;
    pub use crate::config::{
        create_config_in as create_config, get_config_in as get_config,
        put_config_in as put_config, remove_config_in as remove_config,
    };
    pub use crate::roles::{
        create_role_in as create_role, get_role_in as get_role, remove_role_in as remove_role,
        update_role_in as update_role,
    };
}

/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "confab.db";

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("{contact} is already in {owner}'s contacts")]
    ContactExists { owner: String, contact: String },
    /// E.g. "bob@example.test in alice@example.test's contacts".
    #[error("no such contact: {0}")]
    NoSuchContact(String),
    /// Storing an offline message would exceed a limit; `reason` names it ("100 messages",
    /// "1048576 bytes").
    #[error("mailbox of {recipient} is full ({reason})")]
    MailboxFull { recipient: String, reason: String },
    #[error("configuration {kind} at {identity} already exists")]
    ConfigExists { kind: String, identity: String },
    #[error("no such configuration: {kind} at {identity}")]
    NoSuchConfig { kind: String, identity: String },
    #[error("admin {0} already exists")]
    AdminExists(String),
    #[error("no such admin: {0}")]
    NoSuchAdmin(String),
    #[error("admin role {0} already exists")]
    RoleExists(String),
    #[error("no such admin role: {0}")]
    NoSuchRole(String),
    /// The organizer already has CsUserServicesConfiguration MaxScheduledMeetingsPerOrganizer
    /// meetings.
    #[error("{organizer} already has {max} meetings, the most one organizer may have (MaxScheduledMeetingsPerOrganizer); remove some first")]
    TooManyMeetings { organizer: String, max: usize },
    /// The database was written by a newer confab; refusing to touch it protects its data.
    #[error("database schema version {found} is newer than this program supports ({supported}); upgrade confab")]
    NewerSchema { found: i64, supported: i64 },
}

/// Handle on the store: one connection, to an SQLite file (or memory) or to PostgreSQL.
/// Cheap operations take the mutex for their duration only.
pub struct Store {
    db: Db,
    path: Option<PathBuf>,
}

enum Db {
    Sqlite(Mutex<Connection>),
    Postgres(Mutex<PgClient>),
}

/// Whether `spec` names a PostgreSQL store (`postgres://…` or `postgresql://…`) rather than a
/// data directory.
pub fn is_postgres_url(spec: &str) -> bool {
    let lower = spec.get(..13).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl Store {
    /// Opens (creating if needed) `data_dir/confab.db` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        Store::open_file(&data_dir.join(DB_FILE_NAME))
    }

    /// Opens (creating if needed) the SQLite database `path` and brings its schema up to date.
    pub(crate) fn open_file(path: &Path) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let mut conn = Connection::open(&path)?;
        // Set before anything else so concurrent openers wait instead of failing.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Switching to WAL and initialising the WAL index can report SQLITE_BUSY without
        // consulting the busy handler when several processes open a fresh file at once, so the
        // setup is retried up to the same timeout.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match setup_file(&mut conn, &path) {
                Err(StoreError::Sqlite(e))
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r?,
            }
        }
        Ok(Store {
            db: Db::Sqlite(Mutex::new(conn)),
            path: Some(path),
        })
    }

    /// A private, throw-away database (tests, ephemeral servers).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            db: Db::Sqlite(Mutex::new(conn)),
            path: None,
        })
    }

    /// Connects to a PostgreSQL store, e.g. `postgres://confab:secret@127.0.0.1/confab`
    /// (`?options=-c%20search_path%3Dmyschema` picks a schema), and brings its schema up to
    /// date. Several confab servers may share one such store.
    pub fn open_url(url: &str) -> Result<Store, StoreError> {
        if !is_postgres_url(url) {
            return Err(StoreError::Invalid(format!(
                "{:?} is not a postgres:// URL",
                redact_url(url)
            )));
        }
        let client = PgClient::connect(url)?;
        migrations::migrate_pg(&client)?;
        Ok(Store {
            db: Db::Postgres(Mutex::new(client)),
            path: None,
        })
    }

    /// Whether the PostgreSQL database (schema) at `url` already holds a confab store; it is
    /// only read (nothing is created), so a command can refuse to start a new store where
    /// one was expected.
    pub fn postgres_store_exists(url: &str) -> Result<bool, StoreError> {
        if !is_postgres_url(url) {
            return Err(StoreError::Invalid(format!(
                "{:?} is not a postgres:// URL",
                redact_url(url)
            )));
        }
        let client = PgClient::connect(url)?;
        Conn::pg(&client)
            .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])?
            .get(0)
    }

    /// A PostgreSQL URL opens that store ([`Store::open_url`]); anything else is a data
    /// directory ([`Store::open`]).
    pub fn open_spec(spec: &str) -> Result<Store, StoreError> {
        if is_postgres_url(spec) {
            Store::open_url(spec)
        } else {
            Store::open(Path::new(spec))
        }
    }

    /// Path of the database file, `None` when in memory or on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Which database this store is on.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// How many migrations have been applied (`PRAGMA user_version` on SQLite, the
    /// `schema_version` row of `meta` on PostgreSQL).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match &self.db {
            Db::Sqlite(c) => Ok(migrations::user_version(&lock(c))?),
            Db::Postgres(_) => self.read(|c| read_version(c, "schema_version")),
        }
    }

    /// Runs `f` in one transaction (IMMEDIATE on SQLite), committed if it returns `Ok` and
    /// rolled back otherwise. The functions in [`tx`] do the store's writes on the
    /// transaction, e.g. a configuration change together with its audit entry. The store's
    /// mutex is held throughout, so `f` must not call other `Store` methods (that would
    /// deadlock).
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.db {
            Db::Sqlite(c) => {
                let mut conn = lock(c);
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&Conn::sqlite(&tx))?;
                tx.commit()?;
                Ok(value)
            }
            Db::Postgres(c) => {
                let client = lock(c);
                let conn = Conn::pg(&client);
                conn.batch("BEGIN")?;
                // Rolls back on an error return and on a panic in `f` alike.
                let mut guard = PgRollback(Some(&conn));
                let value = f(&conn)?;
                guard.0 = None;
                conn.batch("COMMIT")?;
                Ok(value)
            }
        }
    }

    /// Runs `f` on the connection outside any explicit transaction (each statement commits
    /// on its own): for reads and single-statement writes.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.db {
            Db::Sqlite(c) => f(&Conn::sqlite(&lock(c))),
            Db::Postgres(c) => f(&Conn::pg(&lock(c))),
        }
    }

    /// The SQLite connection, for what only SQLite has (`VACUUM INTO`).
    pub(crate) fn sqlite(&self) -> Option<MutexGuard<'_, Connection>> {
        match &self.db {
            Db::Sqlite(c) => Some(lock(c)),
            Db::Postgres(_) => None,
        }
    }
}

struct PgRollback<'a>(Option<&'a Conn<'a>>);

impl Drop for PgRollback<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0 {
            let _ = conn.batch("ROLLBACK");
        }
    }
}

/// A poisoned mutex only means another thread panicked mid-call; an open transaction was
/// rolled back when it was dropped, so the connection is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, host) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        if let Some((user, _)) = auth.and_then(|a| a.split_once(':')) {
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_owned()
}

/// Adds one to a `meta` counter; every write transaction to a watched table calls this.
pub(crate) fn bump_version(conn: &Conn<'_>, key: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = ?1",
        vals![key],
    )?;
    Ok(())
}

/// Reads a `meta` counter.
pub(crate) fn read_version(conn: &Conn<'_>, key: &str) -> Result<i64, StoreError> {
    conn.query_one("SELECT value FROM meta WHERE key = ?1", vals![key])?
        .get(0)
}

/// Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long a writer waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pragmas and migrations for a file database; idempotent so it can be retried.
fn setup_file(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // WAL lets the server read while the CLI writes.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "could not enable WAL journal on {} (got {mode})",
            path.display()
        )));
    }
    // NORMAL is durable enough in WAL mode and much faster than FULL.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    migrations::migrate(conn)
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
