//! Upgrading databases written by earlier schema versions.

use confab_store::{NewUser, PrivacyLevel, Store, DB_FILE_NAME, SCHEMA_VERSION};

/// The schema as shipped at version 1 (migration 1, verbatim).
const V1_SCHEMA: &str = "CREATE TABLE users (
        id           INTEGER PRIMARY KEY,
        username     TEXT NOT NULL,
        domain       TEXT NOT NULL,
        user_key     TEXT UNIQUE NOT NULL,
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
    INSERT INTO meta(key, value) VALUES ('users_version', 0);";

const MD5_ALICE: &str = "d815d6ca18261dac9caedec28c6dc58a"; // alice:example.test:s3cret
const SHA256_ALICE: &str = "ad681484adb266c0aae2d2283e74f96e032f99b2642896690c964606529465ef";

#[test]
fn version_1_database_is_upgraded_keeping_users() {
    assert_eq!(SCHEMA_VERSION, 12);
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO users (username, domain, user_key, display_name, enabled,
                                ha1_md5, ha1_sha256, created_at, updated_at)
             VALUES ('alice', 'example.test', 'alice@example.test', 'Alice A.', 1,
                     '{MD5_ALICE}', '{SHA256_ALICE}', 1700000000, 1700000000),
                    ('bob', 'example.test', 'bob@example.test', '', 0,
                     'x', 'y', 1700000001, 1700000001);
             UPDATE meta SET value = 7 WHERE key = 'users_version';
             PRAGMA user_version = 1;"
        ))
        .unwrap();
    }

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let alice = store.get_user("Alice", "example.test").unwrap().unwrap();
    assert_eq!(
        (
            alice.display_name.as_str(),
            alice.enabled,
            alice.ha1_md5.as_str(),
            alice.ha1_sha256.as_str(),
            alice.created_at
        ),
        ("Alice A.", true, MD5_ALICE, SHA256_ALICE, 1700000000)
    );
    // The user@domain / user@ hashes cannot be derived from the old ones: empty until the
    // password is set again, then present.
    assert_eq!(
        (alice.ha1_md5_at_domain.as_str(), alice.ha1_md5_at.as_str()),
        ("", "")
    );
    store
        .set_password("alice", "example.test", "s3cret")
        .unwrap();
    let alice = store.get_user("Alice", "example.test").unwrap().unwrap();
    assert_eq!(
        alice.ha1_md5_at,
        confab_sip::digest::ha1(
            confab_sip::digest::Algorithm::Md5,
            "alice@",
            "example.test",
            "s3cret"
        )
    );
    assert_eq!(alice.ha1_md5_at_domain.len(), 32);
    assert!(
        !store
            .get_user("bob", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    assert_eq!(store.list_users(None).unwrap().len(), 2);
    assert_eq!(
        store.users_version().unwrap(),
        8,
        "7, and the password set above"
    );
    assert_eq!(store.contacts_version().unwrap(), 0);
    assert!(store.all_contacts().unwrap().is_empty());
    assert!(store.recipients_with_messages().unwrap().is_empty());

    // The new tables work on the migrated file, including the cascades.
    store
        .add_contact("alice", "example.test", "bob@example.test", None)
        .unwrap();
    store
        .add_contact(
            "bob",
            "example.test",
            "alice@example.test",
            Some(PrivacyLevel::Blocked),
        )
        .unwrap();
    store
        .store_message(
            "alice",
            "example.test",
            "<sip:bob@example.test>",
            "text/plain",
            b"hi",
            "",
            10,
            1000,
        )
        .unwrap();
    drop(store);

    // Reopening an up-to-date file changes nothing.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.all_contacts().unwrap().len(), 2);
    assert_eq!(store.count_messages("alice", "example.test").unwrap(), 1);
    store.remove_user("alice", "example.test").unwrap();
    assert_eq!(store.all_contacts().unwrap().len(), 1);
    assert_eq!(store.count_messages("alice", "example.test").unwrap(), 0);
    // A fresh store accepts the same operations.
    store
        .add_user(&NewUser {
            username: "carol",
            domain: "example.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
    store
        .add_contact("carol", "example.test", "bob@example.test", None)
        .unwrap();
}

#[test]
fn migration_adds_the_new_tables_to_a_version_1_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        names,
        [
            "admin_roles",
            "admin_tokens",
            "admin_tokens_admin",
            "admins",
            "audit_log",
            "audit_log_admin",
            "audit_log_no_update",
            "client_pins",
            "config_documents",
            "contacts",
            "contacts_owner_id",
            "front_ends",
            "live_sessions",
            "live_sessions_user",
            "meeting_hosts",
            "meetings",
            "meetings_expires_at",
            "meetings_one_assigned",
            "meetings_organizer",
            "meta",
            "offline_messages",
            "offline_messages_recipient",
            "publications",
            "publications_seq",
            "registrations",
            "registrations_seq",
            "server_secrets",
            "state_snapshot",
            "state_snapshot_kind",
            "user_sessions",
            "user_sessions_user",
            "users",
            "users_delete_offline_messages",
            "users_domain",
            "users_line_uri",
        ]
    );
    let keys: Vec<(String, i64)> = conn
        .prepare("SELECT key, value FROM meta ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        keys,
        [
            ("admins_version".to_owned(), 0),
            ("config_version".to_owned(), 0),
            ("contacts_version".to_owned(), 0),
            ("meetings_version".to_owned(), 0),
            ("roles_version".to_owned(), 0),
            ("users_version".to_owned(), 0)
        ]
    );
}
