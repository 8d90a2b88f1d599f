//! Integration tests against real SQLite files in temporary directories.

mod common;
use common::{test_dbs, TestDb};
use std::time::Instant;

use confab_sip::digest::{ha1, Algorithm};
use confab_store::{NewUser, Store, StoreError, DB_FILE_NAME, SCHEMA_VERSION};

// Computed independently: printf %s 'user:realm:password' | md5sum / sha256sum
const MD5_USER0001: &str = "b89518eb46bb32ab41fd168817f00c3c";
const SHA256_USER0001: &str = "9ff3c71798da2cac53db7b1be1c0f4ad98f777306aca2b2f1d70c97c1a16adff";
const MD5_USER9999: &str = "b2add90ac73daa84ebab612d0ffed05e";
const SHA256_USER9999: &str = "343c0780b335ba0f57e01a8fda58b3849c4f5c82d1285d7b6ad26a8708440bb8";
const MD5_ALICE: &str = "d815d6ca18261dac9caedec28c6dc58a"; // alice:example.test:s3cret
const SHA256_ALICE: &str = "ad681484adb266c0aae2d2283e74f96e032f99b2642896690c964606529465ef";
const MD5_ALICE_NEW: &str = "61777fa3245e6f3d502c6294cfed4218"; // Alice:example.test:n3w
const SHA256_ALICE_NEW: &str = "1d4371da8eb38962d4b86282ab87993b3b076055ad27cbf5d0c7e005245086a7";

fn new_user<'a>(username: &'a str, domain: &'a str, password: &'a str) -> NewUser<'a> {
    NewUser {
        username,
        domain,
        display_name: "",
        password,
    }
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>, needle: &str) {
    match r {
        Err(StoreError::Invalid(msg)) => {
            assert!(
                msg.contains(needle),
                "message {msg:?} should mention {needle:?}"
            )
        }
        other => panic!("expected Invalid({needle}), got {other:?}"),
    }
}

#[test]
fn open_creates_file_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::open(&data).unwrap();
    assert!(data.join(DB_FILE_NAME).is_file());
    assert_eq!(store.path(), Some(data.join(DB_FILE_NAME).as_path()));
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(store.list_users(None).unwrap().is_empty());
    assert_eq!(store.users_version().unwrap(), 0);

    // Check pragmas and tables through an independent connection.
    drop(store);
    let conn = rusqlite::Connection::open(data.join(DB_FILE_NAME)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "admin_roles",
            "admin_tokens",
            "admins",
            "audit_log",
            "client_pins",
            "config_documents",
            "contacts",
            "front_ends",
            "live_sessions",
            "meeting_hosts",
            "meetings",
            "meta",
            "offline_messages",
            "publications",
            "registrations",
            "server_secrets",
            "sqlite_sequence",
            "state_snapshot",
            "user_sessions",
            "users"
        ]
    );
}

#[test]
fn reopen_keeps_data() {
    for db in &test_dbs() {
        reopen_keeps_data_on(db);
    }
}

fn reopen_keeps_data_on(db: &TestDb) {
    let added = {
        let store = db.open().unwrap();
        store
            .add_user(&NewUser {
                display_name: "Alice A.",
                ..new_user("alice", "example.test", "s3cret")
            })
            .unwrap()
    };
    let store = db.open().unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let got = store.get_user("alice", "example.test").unwrap().unwrap();
    assert_eq!(got, added);
    assert_eq!(got.display_name, "Alice A.");
    assert_eq!(store.users_version().unwrap(), 1);
}

#[test]
fn add_get_list_remove() {
    for db in &test_dbs() {
        add_get_list_remove_on(db);
    }
}

fn add_get_list_remove_on(db: &TestDb) {
    let store = db.open().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let alice = store
        .add_user(&new_user("alice", "Example.TEST", "s3cret"))
        .unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.domain, "example.test");
    assert_eq!(alice.address(), "alice@example.test");
    assert!(alice.enabled);
    assert_eq!(alice.ha1_md5, MD5_ALICE);
    assert_eq!(alice.ha1_sha256, SHA256_ALICE);
    assert_eq!(alice.ha1(Algorithm::Md5), MD5_ALICE);
    assert!(alice.created_at >= before && alice.created_at <= before + 60);

    let u1 = store
        .add_user(&new_user("user0001", "example.test", "pw-user0001"))
        .unwrap();
    assert_eq!(u1.ha1_md5, MD5_USER0001);
    assert_eq!(u1.ha1_sha256, SHA256_USER0001);
    assert_eq!(
        u1.ha1_md5,
        ha1(Algorithm::Md5, "user0001", "example.test", "pw-user0001")
    );
    store
        .add_user(&new_user("Bob", "other.test", "pw"))
        .unwrap();
    store
        .add_user(&new_user("carol", "example.test", "pw"))
        .unwrap();

    // Lookups ignore case of both parts; stored username keeps its case.
    let bob = store.get_user("BOB", "OTHER.test").unwrap().unwrap();
    assert_eq!(bob.username, "Bob");
    assert_eq!(store.get_user("alice", "other.test").unwrap(), None);
    assert_eq!(store.get_user("nobody", "example.test").unwrap(), None);

    let all: Vec<String> = store
        .list_users(None)
        .unwrap()
        .iter()
        .map(|u| u.address())
        .collect();
    assert_eq!(
        all,
        [
            "alice@example.test",
            "carol@example.test",
            "user0001@example.test",
            "Bob@other.test"
        ]
    );
    let ex: Vec<String> = store
        .list_users(Some("EXAMPLE.test"))
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(ex, ["alice", "carol", "user0001"]);
    assert!(store.list_users(Some("none.test")).unwrap().is_empty());

    store.remove_user("ALICE", "example.test").unwrap();
    assert_eq!(store.get_user("alice", "example.test").unwrap(), None);
    assert!(matches!(
        store.remove_user("alice", "example.test"),
        Err(StoreError::NoSuchUser(a)) if a == "alice@example.test"
    ));
    assert_eq!(store.list_users(None).unwrap().len(), 3);
}

#[test]
fn duplicate_user_is_rejected_case_insensitively() {
    for db in &test_dbs() {
        duplicate_user_is_rejected_case_insensitively_on(db);
    }
}

fn duplicate_user_is_rejected_case_insensitively_on(db: &TestDb) {
    let store = db.open().unwrap();
    store
        .add_user(&new_user("alice", "example.test", "a"))
        .unwrap();
    for (u, d) in [("alice", "example.test"), ("ALICE", "Example.Test")] {
        match store.add_user(&new_user(u, d, "b")) {
            Err(StoreError::UserExists(addr)) => {
                assert!(addr.eq_ignore_ascii_case("alice@example.test"))
            }
            other => panic!("expected UserExists, got {other:?}"),
        }
    }
    // Same username in another domain is a different user.
    store
        .add_user(&new_user("alice", "other.test", "b"))
        .unwrap();
    // The failed inserts left the original untouched.
    assert_eq!(
        store
            .get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .ha1_md5,
        ha1(Algorithm::Md5, "alice", "example.test", "a")
    );
}

#[test]
fn passwd_enable_disable_display_name() {
    for db in &test_dbs() {
        passwd_enable_disable_display_name_on(db);
    }
}

fn passwd_enable_disable_display_name_on(db: &TestDb) {
    let store = db.open().unwrap();
    store
        .add_user(&new_user("Alice", "example.test", "s3cret"))
        .unwrap();

    // HA1 uses the stored spelling "Alice", whatever case the caller used.
    store.set_password("alice", "EXAMPLE.TEST", "n3w").unwrap();
    let a = store.get_user("alice", "example.test").unwrap().unwrap();
    assert_eq!(a.ha1_md5, MD5_ALICE_NEW);
    assert_eq!(a.ha1_sha256, SHA256_ALICE_NEW);

    store.set_enabled("alice", "example.test", false).unwrap();
    assert!(
        !store
            .get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    store.set_enabled("alice", "example.test", true).unwrap();
    assert!(
        store
            .get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );

    store
        .set_display_name("alice", "example.test", "Alice Ünlü")
        .unwrap();
    assert_eq!(
        store
            .get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .display_name,
        "Alice Ünlü"
    );

    for r in [
        store.set_password("bob", "example.test", "x"),
        store.set_enabled("bob", "example.test", true),
        store.set_display_name("bob", "example.test", "Bob"),
    ] {
        assert!(
            matches!(r, Err(StoreError::NoSuchUser(ref a)) if a == "bob@example.test"),
            "{r:?}"
        );
    }
    assert_invalid(store.set_password("alice", "example.test", ""), "password");
    assert_invalid(
        store.set_display_name("alice", "example.test", "a\nb"),
        "control",
    );
    // Rejected writes changed nothing.
    let a2 = store.get_user("alice", "example.test").unwrap().unwrap();
    assert_eq!(a2.ha1_md5, MD5_ALICE_NEW);
    assert_eq!(a2.display_name, "Alice Ünlü");
}

#[test]
fn validation_errors() {
    for db in &test_dbs() {
        validation_errors_on(db);
    }
}

fn validation_errors_on(db: &TestDb) {
    let store = db.open().unwrap();
    let long_user = "u".repeat(65);
    let long_pw = "p".repeat(257);
    let long_name = "n".repeat(129);
    assert_invalid(
        store.add_user(&new_user("", "example.test", "pw")),
        "username is empty",
    );
    assert_invalid(
        store.add_user(&new_user(&long_user, "example.test", "pw")),
        "username is 65",
    );
    assert_invalid(
        store.add_user(&new_user("al ice", "example.test", "pw")),
        "username",
    );
    assert_invalid(
        store.add_user(&new_user("al@ice", "example.test", "pw")),
        "'@'",
    );
    assert_invalid(
        store.add_user(&new_user("alice", "", "pw")),
        "domain is empty",
    );
    assert_invalid(
        store.add_user(&new_user("alice", "exa_mple.test", "pw")),
        "domain",
    );
    assert_invalid(
        store.add_user(&new_user("alice", "example..test", "pw")),
        "empty label",
    );
    assert_invalid(
        store.add_user(&new_user("alice", "example.test:5060", "pw")),
        "':'",
    );
    assert_invalid(store.add_user(&new_user("alice", "[::g]", "pw")), "IPv6");
    assert_invalid(
        store.add_user(&new_user("alice", "example.test", "")),
        "password is empty",
    );
    assert_invalid(
        store.add_user(&new_user("alice", "example.test", &long_pw)),
        "password is 257",
    );
    assert_invalid(
        store.add_user(&NewUser {
            display_name: &long_name,
            ..new_user("alice", "example.test", "pw")
        }),
        "display name is 129",
    );
    assert_invalid(
        store.add_user(&NewUser {
            display_name: "A\u{7}",
            ..new_user("alice", "example.test", "pw")
        }),
        "control character",
    );
    assert!(store.list_users(None).unwrap().is_empty());
    assert_eq!(store.users_version().unwrap(), 0);

    // Accepted edge cases.
    store
        .add_user(&new_user(&"u".repeat(64), "example.test", &"p".repeat(256)))
        .unwrap();
    store
        .add_user(&new_user("a.b-c_d!~*'+", "192.0.2.10", "pw"))
        .unwrap();
    let v6 = store
        .add_user(&new_user("alice", "[2001:DB8::1]", "pw"))
        .unwrap();
    assert_eq!(v6.domain, "[2001:db8::1]");
    assert!(store.get_user("alice", "[2001:db8::1]").unwrap().is_some());
}

#[test]
fn seed_users_bulk_and_idempotent() {
    for db in &test_dbs() {
        seed_users_bulk_and_idempotent_on(db);
    }
}

fn seed_users_bulk_and_idempotent_on(db: &TestDb) {
    let store = db.open().unwrap();
    let t = Instant::now();
    assert_eq!(
        store
            .seed_users("example.test", "user", 10_000, "pw-")
            .unwrap(),
        10_000
    );
    let first = t.elapsed();
    eprintln!("seeded 10000 users in {first:?}");

    let u = store.get_user("user9999", "example.test").unwrap().unwrap();
    assert_eq!(u.ha1_md5, MD5_USER9999);
    assert_eq!(u.ha1_sha256, SHA256_USER9999);
    let u = store.get_user("user0001", "example.test").unwrap().unwrap();
    assert_eq!(u.ha1_md5, MD5_USER0001);
    assert_eq!(u.ha1_sha256, SHA256_USER0001);
    assert!(store
        .get_user("user10000", "example.test")
        .unwrap()
        .is_none());
    let users = store.list_users(Some("example.test")).unwrap();
    assert_eq!(users.len(), 10_000);
    assert_eq!(users[0].username, "user0000");
    assert_eq!(users[9_999].username, "user9999");
    let v1 = store.users_version().unwrap();

    // Changes to seeded accounts are undone by seeding again; display names survive.
    store
        .set_password("user0005", "example.test", "changed")
        .unwrap();
    store
        .set_enabled("user0006", "example.test", false)
        .unwrap();
    store
        .set_display_name("user0007", "example.test", "Seven")
        .unwrap();
    let id7 = store
        .get_user("user0007", "example.test")
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        store
            .seed_users("example.test", "user", 10_000, "pw-")
            .unwrap(),
        10_000
    );
    assert_eq!(store.list_users(None).unwrap().len(), 10_000);
    let u5 = store.get_user("user0005", "example.test").unwrap().unwrap();
    assert_eq!(
        u5.ha1_md5,
        ha1(Algorithm::Md5, "user0005", "example.test", "pw-user0005")
    );
    assert!(
        store
            .get_user("user0006", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    let u7 = store.get_user("user0007", "example.test").unwrap().unwrap();
    assert_eq!((u7.id, u7.display_name.as_str()), (id7, "Seven"));
    assert!(store.users_version().unwrap() > v1);

    // Widths: at least 4 digits, more when needed.
    let s = db.open().unwrap();
    assert_eq!(s.seed_users("x.test", "u", 3, "p").unwrap(), 3);
    assert!(s.get_user("u0002", "x.test").unwrap().is_some());
    assert_eq!(s.seed_users("y.test", "u", 10_001, "p").unwrap(), 10_001);
    assert!(s.get_user("u10000", "y.test").unwrap().is_some());
    assert!(s.get_user("u00000", "y.test").unwrap().is_some());
    assert_eq!(s.seed_users("z.test", "u", 0, "p").unwrap(), 0);
    assert_invalid(s.seed_users("bad domain", "u", 1, "p"), "domain");
    assert_invalid(s.seed_users("x.test", "bad user", 1, "p"), "username");
}

#[test]
fn users_version_changes_on_each_write() {
    for db in &test_dbs() {
        users_version_changes_on_each_write_on(db);
    }
}

fn users_version_changes_on_each_write_on(db: &TestDb) {
    let store = db.open().unwrap();
    let mut last = store.users_version().unwrap();
    let mut check = |what: &str, changed: bool| {
        let v = store.users_version().unwrap();
        assert_eq!(v != last, changed, "{what}: version {last} -> {v}");
        last = v;
    };
    store
        .add_user(&new_user("alice", "example.test", "pw"))
        .unwrap();
    check("add", true);
    store.set_password("alice", "example.test", "pw2").unwrap();
    check("passwd", true);
    store.set_enabled("alice", "example.test", false).unwrap();
    check("disable", true);
    store
        .set_display_name("alice", "example.test", "A")
        .unwrap();
    check("display name", true);
    store.seed_users("example.test", "user", 3, "pw-").unwrap();
    check("seed", true);
    store.remove_user("alice", "example.test").unwrap();
    check("remove", true);
    let _ = store.add_user(&new_user("user0000", "example.test", "pw"));
    check("failed add", false);
    let _ = store.remove_user("alice", "example.test");
    check("failed remove", false);
    store.get_user("user0000", "example.test").unwrap();
    store.list_users(None).unwrap();
    check("reads", false);

    // A write by another process (another connection) is visible.
    let other = db.open().unwrap();
    other
        .add_user(&new_user("bob", "example.test", "pw"))
        .unwrap();
    check("other connection add", true);
    assert!(store.get_user("bob", "example.test").unwrap().is_some());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    match Store::open(dir.path()) {
        Err(StoreError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn open_migrates_a_partially_migrated_database() {
    // A version-0 file with no tables (e.g. created by sqlite3 by hand) gets the full schema.
    let dir = tempfile::tempdir().unwrap();
    drop(rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap());
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    store
        .add_user(&new_user("alice", "example.test", "pw"))
        .unwrap();
}

#[test]
fn concurrent_writers_from_threads_and_connections() {
    for db in &test_dbs() {
        concurrent_writers_on(db);
    }
}

fn concurrent_writers_on(db: &TestDb) {
    let shared = std::sync::Arc::new(db.open().unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let shared = shared.clone();
            let spec = db.spec();
            std::thread::spawn(move || {
                let own = Store::open_spec(&spec).unwrap();
                for i in 0..25 {
                    let name = format!("t{t}u{i}");
                    let store = if i % 2 == 0 { &*shared } else { &own };
                    store
                        .add_user(&new_user(&name, "example.test", "pw"))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(shared.list_users(None).unwrap().len(), 100);
    assert_eq!(shared.users_version().unwrap(), 100);
}

#[test]
fn concurrent_first_open_migrates_once() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || Store::open(&path).map(|s| s.schema_version().unwrap()))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), SCHEMA_VERSION);
        }
    }
}
