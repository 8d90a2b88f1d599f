//! Schema migrations, tracked with `PRAGMA user_version` on SQLite and the `schema_version`
//! row of `meta` on PostgreSQL.
//!
//! `MIGRATIONS[i]` (SQLite) and `PG_MIGRATIONS[i]` (PostgreSQL) take the schema from version
//! `i` to `i + 1`; both lists have the same steps. To change the schema, append a string to
//! each; never edit or reorder one that has shipped.

use rusqlite::{Connection, TransactionBehavior};

use crate::db::{Conn, PgClient};
use crate::StoreError;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: users with their HA1 hashes, and the counters table.
    "CREATE TABLE users (
        id           INTEGER PRIMARY KEY,
        username     TEXT NOT NULL,
        domain       TEXT NOT NULL,
        user_key     TEXT UNIQUE NOT NULL,   -- lower(username@domain), for case-insensitive lookup
        display_name TEXT NOT NULL DEFAULT '',
        enabled      INTEGER NOT NULL DEFAULT 1,
        ha1_md5      TEXT NOT NULL,
        ha1_sha256   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    CREATE INDEX users_domain ON users(domain);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER
    );
    INSERT INTO meta(key, value) VALUES ('users_version', 0);",
    // 2: per-user contact lists with Lync 2013 privacy levels. A NULL level means auto-assign
    // (Colleagues in the owner's domain, External elsewhere). Rows go with their owner.
    "CREATE TABLE contacts (
        id         INTEGER PRIMARY KEY,
        owner_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        owner_key  TEXT NOT NULL,            -- lower(user@domain) of the owner
        contact    TEXT NOT NULL,            -- lower(user@domain), any domain
        level      TEXT CHECK (level IS NULL OR level IN
                       ('FriendsAndFamily', 'Workgroup', 'Colleagues', 'External', 'Blocked')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (owner_key, contact)
    );
    CREATE INDEX contacts_owner_id ON contacts(owner_id);
    INSERT INTO meta(key, value) VALUES ('contacts_version', 0);",
    // 3: instant messages kept for offline users, replayed in id order when they register.
    "CREATE TABLE offline_messages (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient_key TEXT NOT NULL,         -- lower(user@domain)
        sender        TEXT NOT NULL,         -- From header value as received
        content_type  TEXT NOT NULL,
        body          BLOB NOT NULL,
        received_at   INTEGER NOT NULL,      -- unix seconds
        headers       TEXT NOT NULL DEFAULT ''  -- extra header lines to replay, CRLF-terminated
    );
    CREATE INDEX offline_messages_recipient ON offline_messages(recipient_key, id);
    -- Whoever deletes a user (this program, or sqlite3 by hand), the mailbox goes too.
    CREATE TRIGGER users_delete_offline_messages AFTER DELETE ON users BEGIN
        DELETE FROM offline_messages WHERE recipient_key = OLD.user_key;
    END;",
    // 4: the server's live state (registrations, publications, subscriptions) saved on a
    // graceful stop and taken back on the next start, one JSON document per row.
    "CREATE TABLE state_snapshot (
        id   INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX state_snapshot_kind ON state_snapshot(kind);",
    // 5: administration: Lync-style configuration documents, admin accounts with their bearer
    // tokens, custom admin roles, and the append-only audit log of admin commands.
    "CREATE TABLE config_documents (
        kind       TEXT NOT NULL,            -- e.g. 'CsMeetingConfiguration'
        identity   TEXT NOT NULL,            -- canonical scope: 'Global', 'Site:Redmond', ...
        body       TEXT NOT NULL,            -- JSON object: property name -> value
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, identity)
    );
    CREATE TABLE admins (
        name          TEXT PRIMARY KEY COLLATE NOCASE,
        password_hash TEXT NOT NULL,         -- argon2id PHC string
        roles         TEXT NOT NULL,         -- JSON array of role identities
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );
    CREATE TABLE admin_tokens (
        token_hash TEXT PRIMARY KEY,         -- lower hex sha256 of the bearer token
        admin      TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE ON UPDATE CASCADE,
        created_at INTEGER NOT NULL,         -- unix millis
        expires_at INTEGER NOT NULL          -- unix millis; valid while now < expires_at
    );
    CREATE INDEX admin_tokens_admin ON admin_tokens(admin);
    CREATE TABLE admin_roles (
        identity      TEXT PRIMARY KEY COLLATE NOCASE,
        template      TEXT NOT NULL,
        cmdlets       TEXT NOT NULL,         -- JSON array
        config_scopes TEXT NOT NULL,         -- JSON array, e.g. ['Global'] or ['Site:Redmond']
        user_scopes   TEXT NOT NULL,         -- JSON array
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );
    CREATE TABLE audit_log (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,            -- unix millis
        admin   TEXT NOT NULL,
        origin  TEXT NOT NULL,               -- 'local shell', 'rest 127.0.0.1:5555', ...
        command TEXT NOT NULL,               -- secrets already redacted
        success INTEGER NOT NULL,
        result  TEXT NOT NULL
    );
    CREATE INDEX audit_log_admin ON audit_log(admin COLLATE NOCASE, id);
    -- The log is append-only: entries cannot be rewritten, even by hand.
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only');
    END;
    INSERT INTO meta(key, value) VALUES ('config_version', 0);
    INSERT INTO meta(key, value) VALUES ('roles_version', 0);
    INSERT INTO meta(key, value) VALUES ('admins_version', 0);",
    // 6: secrets shared by every server on this store (the key that signs flow tokens and
    // Record-Route entries, RFC 5626 §5.2; the digest nonce key), made at first use; HA1
    // hashes for the user@domain and user@ digest user names; the organisational unit of
    // each user (an LDAP DN such as 'OU=Sales,DC=example,DC=test'; '' for none), which
    // OU-scoped admin roles check.
    "CREATE TABLE server_secrets (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,            -- hex
        created_at INTEGER NOT NULL
    );
    -- HA1 over the other user names clients send for the same account (Kamailio's ha1b):
    -- 'user@domain' (desk phones, Lync clients) and 'user@' (sipsak). Empty until the
    -- password is next set.
    ALTER TABLE users ADD COLUMN ha1_md5_at_domain TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN ha1_md5_at TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN ou TEXT NOT NULL DEFAULT '';",
    // 7: meetings (Lync's model): an organizer (an existing user; the meetings go with
    // them), a conference key and a numeric dial-in conference ID (both unique), the kind
    // (at most one Assigned per organizer), access, presenters, lobby bypass for dial-in
    // callers, invitees (JSON array of user@domain keys), and expiry (unix seconds; NULL:
    // never).
    "CREATE TABLE meetings (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        organizer         TEXT NOT NULL REFERENCES users(user_key) ON DELETE CASCADE,
        meeting_key       TEXT UNIQUE NOT NULL,
        conference_id     TEXT UNIQUE NOT NULL,
        kind              TEXT NOT NULL CHECK (kind IN ('Assigned', 'Private')),
        subject           TEXT NOT NULL DEFAULT '',
        access            TEXT NOT NULL CHECK (access IN
                              ('Locked', 'Invited', 'SameEnterprise', 'Everyone')),
        presenters        TEXT NOT NULL CHECK (presenters IN ('None', 'Company', 'Everyone')),
        pstn_bypass_lobby INTEGER NOT NULL,
        invitees          TEXT NOT NULL DEFAULT '[]',
        created_at        INTEGER NOT NULL,
        end_at            INTEGER,
        last_used_at      INTEGER,
        expires_at        INTEGER
    );
    CREATE INDEX meetings_organizer ON meetings(organizer, id);
    CREATE UNIQUE INDEX meetings_one_assigned ON meetings(organizer) WHERE kind = 'Assigned';
    CREATE INDEX meetings_expires_at ON meetings(expires_at);
    INSERT INTO meta(key, value) VALUES ('meetings_version', 0);",
    // 8: dial-in conferencing: a user's LineURI (Lync's Set-CsUser -LineURI, canonical
    // 'tel:+<digits>[;ext=<digits>]', unique; NULL: none), and users' dial-in PINs (Lync's
    // client PINs): an argon2id PHC string, the earlier PINs' hashes for PINHistoryCount
    // (JSON array, newest first), when it was set (unix seconds), failed sign-ins since the
    // last success, and whether it is locked out. A PIN goes with its user.
    "ALTER TABLE users ADD COLUMN line_uri TEXT;
    CREATE UNIQUE INDEX users_line_uri ON users(line_uri);
    CREATE TABLE client_pins (
        user_key   TEXT PRIMARY KEY REFERENCES users(user_key) ON DELETE CASCADE,
        pin_hash   TEXT NOT NULL,
        history    TEXT NOT NULL DEFAULT '[]',
        set_at     INTEGER NOT NULL,
        failures   INTEGER NOT NULL DEFAULT 0,
        locked     INTEGER NOT NULL DEFAULT 0
    );",
    // 9: enterprise voice: whether a user may call phone numbers (Lync's Set-CsUser
    // -EnterpriseVoiceEnabled; 0 for everyone until an administrator turns it on).
    "ALTER TABLE users ADD COLUMN enterprise_voice_enabled INTEGER NOT NULL DEFAULT 0;",
    // 10: a user's call forwarding settings (confab_voice::CallForwarding as JSON, set by the
    // user over REST or by Set-CsUserCallForwarding; NULL: the defaults) and whether the user
    // has hosted voicemail (Lync's Set-CsUser -HostedVoiceMail; 0 until turned on).
    "ALTER TABLE users ADD COLUMN call_forwarding TEXT;
    ALTER TABLE users ADD COLUMN hosted_voicemail INTEGER NOT NULL DEFAULT 0;",
    // 11: users' web sessions (meeting and dial-in pages): only the SHA-256 of the cookie's
    // token is kept; administrators' web sessions are admin_tokens.
    "CREATE TABLE user_sessions (
        token_hash TEXT PRIMARY KEY,         -- lower hex sha256 of the session token
        user_key   TEXT NOT NULL,            -- user@domain, lower case
        created_at INTEGER NOT NULL,         -- unix millis
        expires_at INTEGER NOT NULL          -- unix millis; valid while now < expires_at
    );
    CREATE INDEX user_sessions_user ON user_sessions(user_key);",
    // 12: the pool (pool.rs): front ends and their heartbeats; the shared location (every
    // binding of every front end, one row per binding, `seq` orders changes so other front
    // ends can follow them); claims on offline messages so one front end delivers each.
    "CREATE TABLE front_ends (
        name         TEXT PRIMARY KEY,
        address      TEXT NOT NULL,          -- transport:ip:port the others forward to
        site         TEXT,
        version      TEXT NOT NULL,
        started_at   INTEGER NOT NULL,       -- unix millis
        heartbeat_at INTEGER NOT NULL,       -- unix millis
        state        TEXT NOT NULL,          -- Active / Stopped / Isolated
        load         TEXT NOT NULL DEFAULT '{}'  -- JSON counters
    );
    CREATE TABLE registrations (
        aor         TEXT NOT NULL,
        binding     TEXT NOT NULL,           -- the binding's identity within the AoR
        contact     TEXT NOT NULL,
        q           INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,        -- unix millis; 0: removed (a tombstone)
        call_id     TEXT NOT NULL,
        cseq        INTEGER NOT NULL,
        instance    TEXT,
        reg_id      INTEGER,
        flow        TEXT,                    -- the connection at front_end, if any
        path        TEXT NOT NULL DEFAULT '',
        user_agent  TEXT,
        source      TEXT NOT NULL,           -- transport:ip:port the REGISTER came from
        front_end   TEXT NOT NULL,           -- who wrote the row: holds the flow
        seq         INTEGER NOT NULL,
        changed_at  INTEGER NOT NULL,
        PRIMARY KEY (aor, binding)
    );
    CREATE INDEX registrations_seq ON registrations(seq);
    CREATE TABLE publications (
        presentity  TEXT NOT NULL,           -- user@domain
        publication TEXT NOT NULL,           -- stable id of the publication
        etag        TEXT NOT NULL,           -- its current entity tag
        doc         TEXT NOT NULL,           -- PIDF
        expires_at  INTEGER NOT NULL,        -- unix millis; 0: removed
        front_end   TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        changed_at  INTEGER NOT NULL,
        PRIMARY KEY (presentity, publication)
    );
    CREATE INDEX publications_seq ON publications(seq);
    CREATE TABLE meeting_hosts (
        meeting_key TEXT PRIMARY KEY,        -- the live meeting
        front_end   TEXT NOT NULL,           -- the front end hosting it (focus, MCU)
        since       INTEGER NOT NULL
    );
    CREATE TABLE live_sessions (             -- each front end's calls, subscriptions and
        front_end   TEXT NOT NULL,           -- meeting seats, replaced every few seconds
        kind        TEXT NOT NULL,           -- Call / Subscription / Meeting
        user_key    TEXT NOT NULL,
        peer        TEXT NOT NULL,
        since       INTEGER NOT NULL
    );
    CREATE INDEX live_sessions_user ON live_sessions(user_key);
    ALTER TABLE offline_messages ADD COLUMN claimed_by TEXT;
    ALTER TABLE offline_messages ADD COLUMN claimed_until INTEGER;",
];

/// The same schema for PostgreSQL. Differences: BIGINT/BIGSERIAL/BYTEA types, text in the
/// "C" collation so ordering matches SQLite's byte order, case-insensitive uniqueness by
/// `lower()` indexes instead of `COLLATE NOCASE`, plpgsql trigger functions.
pub(crate) const PG_MIGRATIONS: &[&str] = &[
    // 1
    r#"CREATE TABLE users (
        id           BIGSERIAL PRIMARY KEY,
        username     TEXT COLLATE "C" NOT NULL,
        domain       TEXT COLLATE "C" NOT NULL,
        user_key     TEXT COLLATE "C" UNIQUE NOT NULL,
        display_name TEXT COLLATE "C" NOT NULL DEFAULT '',
        enabled      BIGINT NOT NULL DEFAULT 1,
        ha1_md5      TEXT NOT NULL,
        ha1_sha256   TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        updated_at   BIGINT NOT NULL
    );
    CREATE INDEX users_domain ON users(domain);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BIGINT
    );
    INSERT INTO meta(key, value) VALUES ('schema_version', 0);
    INSERT INTO meta(key, value) VALUES ('users_version', 0);"#,
    // 2
    r#"CREATE TABLE contacts (
        id         BIGSERIAL PRIMARY KEY,
        owner_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        owner_key  TEXT COLLATE "C" NOT NULL,
        contact    TEXT COLLATE "C" NOT NULL,
        level      TEXT CHECK (level IS NULL OR level IN
                       ('FriendsAndFamily', 'Workgroup', 'Colleagues', 'External', 'Blocked')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (owner_key, contact)
    );
    CREATE INDEX contacts_owner_id ON contacts(owner_id);
    INSERT INTO meta(key, value) VALUES ('contacts_version', 0);"#,
    // 3
    r#"CREATE TABLE offline_messages (
        id            BIGSERIAL PRIMARY KEY,
        recipient_key TEXT COLLATE "C" NOT NULL,
        sender        TEXT NOT NULL,
        content_type  TEXT NOT NULL,
        body          BYTEA NOT NULL,
        received_at   BIGINT NOT NULL,
        headers       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX offline_messages_recipient ON offline_messages(recipient_key, id);
    CREATE FUNCTION users_delete_offline_messages() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM offline_messages WHERE recipient_key = OLD.user_key;
        RETURN OLD;
    END $$;
    CREATE TRIGGER users_delete_offline_messages AFTER DELETE ON users
        FOR EACH ROW EXECUTE FUNCTION users_delete_offline_messages();"#,
    // 4
    r#"CREATE TABLE state_snapshot (
        id   BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX state_snapshot_kind ON state_snapshot(kind);"#,
    // 5
    r#"CREATE TABLE config_documents (
        kind       TEXT COLLATE "C" NOT NULL,
        identity   TEXT COLLATE "C" NOT NULL,
        body       TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (kind, identity)
    );
    CREATE TABLE admins (
        name          TEXT COLLATE "C" PRIMARY KEY,
        password_hash TEXT NOT NULL,
        roles         TEXT NOT NULL,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX admins_name_nocase ON admins(lower(name));
    CREATE TABLE admin_tokens (
        token_hash TEXT PRIMARY KEY,
        admin      TEXT COLLATE "C" NOT NULL REFERENCES admins(name) ON DELETE CASCADE ON UPDATE CASCADE,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX admin_tokens_admin ON admin_tokens(admin);
    CREATE TABLE admin_roles (
        identity      TEXT COLLATE "C" PRIMARY KEY,
        template      TEXT NOT NULL,
        cmdlets       TEXT NOT NULL,
        config_scopes TEXT NOT NULL,
        user_scopes   TEXT NOT NULL,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX admin_roles_identity_nocase ON admin_roles(lower(identity));
    CREATE TABLE audit_log (
        id      BIGSERIAL PRIMARY KEY,
        at      BIGINT NOT NULL,
        admin   TEXT COLLATE "C" NOT NULL,
        origin  TEXT NOT NULL,
        command TEXT NOT NULL,
        success BIGINT NOT NULL,
        result  TEXT NOT NULL
    );
    CREATE INDEX audit_log_admin ON audit_log(lower(admin), id);
    CREATE FUNCTION audit_log_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
    END $$;
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_no_update();
    INSERT INTO meta(key, value) VALUES ('config_version', 0);
    INSERT INTO meta(key, value) VALUES ('roles_version', 0);
    INSERT INTO meta(key, value) VALUES ('admins_version', 0);"#,
    // 6
    r#"CREATE TABLE server_secrets (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    ALTER TABLE users ADD COLUMN ha1_md5_at_domain TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN ha1_md5_at TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN ou TEXT NOT NULL DEFAULT '';"#,
    // 7
    r#"CREATE TABLE meetings (
        id                BIGSERIAL PRIMARY KEY,
        organizer         TEXT COLLATE "C" NOT NULL REFERENCES users(user_key) ON DELETE CASCADE,
        meeting_key       TEXT COLLATE "C" UNIQUE NOT NULL,
        conference_id     TEXT COLLATE "C" UNIQUE NOT NULL,
        kind              TEXT NOT NULL CHECK (kind IN ('Assigned', 'Private')),
        subject           TEXT NOT NULL DEFAULT '',
        access            TEXT NOT NULL CHECK (access IN
                              ('Locked', 'Invited', 'SameEnterprise', 'Everyone')),
        presenters        TEXT NOT NULL CHECK (presenters IN ('None', 'Company', 'Everyone')),
        pstn_bypass_lobby BIGINT NOT NULL,
        invitees          TEXT NOT NULL DEFAULT '[]',
        created_at        BIGINT NOT NULL,
        end_at            BIGINT,
        last_used_at      BIGINT,
        expires_at        BIGINT
    );
    CREATE INDEX meetings_organizer ON meetings(organizer, id);
    CREATE UNIQUE INDEX meetings_one_assigned ON meetings(organizer) WHERE kind = 'Assigned';
    CREATE INDEX meetings_expires_at ON meetings(expires_at);
    INSERT INTO meta(key, value) VALUES ('meetings_version', 0);"#,
    // 8
    r#"ALTER TABLE users ADD COLUMN line_uri TEXT COLLATE "C";
    CREATE UNIQUE INDEX users_line_uri ON users(line_uri);
    CREATE TABLE client_pins (
        user_key   TEXT COLLATE "C" PRIMARY KEY REFERENCES users(user_key) ON DELETE CASCADE,
        pin_hash   TEXT NOT NULL,
        history    TEXT NOT NULL DEFAULT '[]',
        set_at     BIGINT NOT NULL,
        failures   BIGINT NOT NULL DEFAULT 0,
        locked     BIGINT NOT NULL DEFAULT 0
    );"#,
    // 9
    "ALTER TABLE users ADD COLUMN enterprise_voice_enabled BIGINT NOT NULL DEFAULT 0;",
    // 10
    r#"ALTER TABLE users ADD COLUMN call_forwarding TEXT COLLATE "C";
    ALTER TABLE users ADD COLUMN hosted_voicemail BIGINT NOT NULL DEFAULT 0;"#,
    // 11
    r#"CREATE TABLE user_sessions (
        token_hash TEXT COLLATE "C" PRIMARY KEY,
        user_key   TEXT COLLATE "C" NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX user_sessions_user ON user_sessions(user_key);"#,
    // 12
    r#"CREATE TABLE front_ends (
        name         TEXT COLLATE "C" PRIMARY KEY,
        address      TEXT COLLATE "C" NOT NULL,
        site         TEXT COLLATE "C",
        version      TEXT COLLATE "C" NOT NULL,
        started_at   BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL,
        state        TEXT COLLATE "C" NOT NULL,
        load         TEXT COLLATE "C" NOT NULL DEFAULT '{}'
    );
    CREATE TABLE registrations (
        aor         TEXT COLLATE "C" NOT NULL,
        binding     TEXT COLLATE "C" NOT NULL,
        contact     TEXT COLLATE "C" NOT NULL,
        q           BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        call_id     TEXT COLLATE "C" NOT NULL,
        cseq        BIGINT NOT NULL,
        instance    TEXT COLLATE "C",
        reg_id      BIGINT,
        flow        TEXT COLLATE "C",
        path        TEXT COLLATE "C" NOT NULL DEFAULT '',
        user_agent  TEXT COLLATE "C",
        source      TEXT COLLATE "C" NOT NULL,
        front_end   TEXT COLLATE "C" NOT NULL,
        seq         BIGINT NOT NULL,
        changed_at  BIGINT NOT NULL,
        PRIMARY KEY (aor, binding)
    );
    CREATE INDEX registrations_seq ON registrations(seq);
    CREATE TABLE publications (
        presentity  TEXT COLLATE "C" NOT NULL,
        publication TEXT COLLATE "C" NOT NULL,
        etag        TEXT COLLATE "C" NOT NULL,
        doc         TEXT COLLATE "C" NOT NULL,
        expires_at  BIGINT NOT NULL,
        front_end   TEXT COLLATE "C" NOT NULL,
        seq         BIGINT NOT NULL,
        changed_at  BIGINT NOT NULL,
        PRIMARY KEY (presentity, publication)
    );
    CREATE INDEX publications_seq ON publications(seq);
    CREATE TABLE meeting_hosts (
        meeting_key TEXT COLLATE "C" PRIMARY KEY,
        front_end   TEXT COLLATE "C" NOT NULL,
        since       BIGINT NOT NULL
    );
    CREATE TABLE live_sessions (
        front_end   TEXT COLLATE "C" NOT NULL,
        kind        TEXT COLLATE "C" NOT NULL,
        user_key    TEXT COLLATE "C" NOT NULL,
        peer        TEXT COLLATE "C" NOT NULL,
        since       BIGINT NOT NULL
    );
    CREATE INDEX live_sessions_user ON live_sessions(user_key);
    ALTER TABLE offline_messages ADD COLUMN claimed_by TEXT COLLATE "C";
    ALTER TABLE offline_messages ADD COLUMN claimed_until BIGINT;"#,
];

const _: () = assert!(MIGRATIONS.len() == PG_MIGRATIONS.len());

/// Schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies every pending migration, each in its own IMMEDIATE transaction so two processes
/// opening a fresh database at once cannot both apply the same step.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    check_not_newer(user_version(conn)?)?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let current = user_version(&tx)?;
        check_not_newer(current)?;
        if current == SCHEMA_VERSION {
            return Ok(()); // dropping tx rolls back an empty transaction
        }
        tx.execute_batch(MIGRATIONS[current as usize])?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
    }
}

/// Key of the advisory lock that serialises migrations of one PostgreSQL database.
const PG_MIGRATION_LOCK: i64 = 0x636f_6e66_6162; // "confab"

/// Applies every pending PostgreSQL migration in one transaction, under an advisory lock so
/// servers starting together do not both apply a step.
pub(crate) fn migrate_pg(client: &PgClient) -> Result<(), StoreError> {
    let conn = Conn::pg(client);
    conn.batch("BEGIN")?;
    let result = migrate_pg_in(&conn);
    conn.batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    result
}

fn migrate_pg_in(conn: &Conn<'_>) -> Result<(), StoreError> {
    conn.execute(
        &format!("SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"),
        &[],
    )?;
    let has_meta: bool = conn
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])?
        .get(0)?;
    let mut current: i64 = if has_meta {
        conn.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])?
            .map(|r| r.get(0))
            .transpose()?
            .unwrap_or(0)
    } else {
        0
    };
    check_not_newer(current)?;
    while current < SCHEMA_VERSION {
        conn.batch(PG_MIGRATIONS[current as usize])?;
        current += 1;
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            crate::db::vals![current],
        )?;
    }
    Ok(())
}

fn check_not_newer(found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 0 {
        return Err(StoreError::Invalid(format!(
            "database has a negative schema version {found}"
        )));
    }
    Ok(())
}
