//! Contact lists against real SQLite files in temporary directories.

mod common;
use common::{test_dbs, TestDb};
use confab_store::{ContactEntry, NewUser, PrivacyLevel, Store, StoreError, MAX_CONTACTS_PER_USER};

fn store_with_users(db: &TestDb) -> Store {
    let store = db.open().unwrap();
    for (u, d) in [("Alice", "a.test"), ("bob", "a.test"), ("carol", "b.test")] {
        store
            .add_user(&NewUser {
                username: u,
                domain: d,
                display_name: "",
                password: "pw",
            })
            .unwrap();
    }
    store
}

fn e(owner: &str, contact: &str, level: PrivacyLevel, explicit_level: bool) -> ContactEntry {
    ContactEntry {
        owner: owner.into(),
        contact: contact.into(),
        level,
        explicit_level,
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
fn add_list_set_level_remove() {
    for db in &test_dbs() {
        add_list_set_level_remove_on(db);
    }
}

fn add_list_set_level_remove_on(db: &TestDb) {
    let store = store_with_users(db);
    use PrivacyLevel::*;

    // Defaults: same domain → Colleagues, other domain (federated, no such local user) → External.
    assert_eq!(
        store
            .add_contact("alice", "A.TEST", "sip:Bob@a.test", None)
            .unwrap(),
        e("alice@a.test", "bob@a.test", Colleagues, false)
    );
    assert_eq!(
        store
            .add_contact("alice", "a.test", "zed@Partner.example", None)
            .unwrap(),
        e("alice@a.test", "zed@partner.example", External, false)
    );
    assert_eq!(
        store
            .add_contact("alice", "a.test", "carol@b.test", Some(FriendsAndFamily))
            .unwrap(),
        e("alice@a.test", "carol@b.test", FriendsAndFamily, true)
    );
    assert_eq!(
        store
            .add_contact("carol", "b.test", "alice@a.test", Some(Blocked))
            .unwrap(),
        e("carol@b.test", "alice@a.test", Blocked, true)
    );

    let alice = store.list_contacts("ALICE", "a.test").unwrap();
    assert_eq!(
        alice,
        [
            e("alice@a.test", "bob@a.test", Colleagues, false),
            e("alice@a.test", "carol@b.test", FriendsAndFamily, true),
            e("alice@a.test", "zed@partner.example", External, false),
        ]
    );
    assert!(store.list_contacts("bob", "a.test").unwrap().is_empty());

    // Explicit level on a same-domain contact, then back to auto.
    assert_eq!(
        store
            .set_contact_level("alice", "a.test", "BOB@A.test", Some(Workgroup))
            .unwrap(),
        e("alice@a.test", "bob@a.test", Workgroup, true)
    );
    assert_eq!(
        store.list_contacts("alice", "a.test").unwrap()[0],
        e("alice@a.test", "bob@a.test", Workgroup, true)
    );
    // An explicit level equal to the automatic one still counts as explicit.
    store
        .set_contact_level("alice", "a.test", "zed@partner.example", Some(External))
        .unwrap();
    store
        .set_contact_level("alice", "a.test", "bob@a.test", None)
        .unwrap();
    let alice = store.list_contacts("alice", "a.test").unwrap();
    assert_eq!(alice[0], e("alice@a.test", "bob@a.test", Colleagues, false));
    assert_eq!(
        alice[2],
        e("alice@a.test", "zed@partner.example", External, true)
    );

    assert_eq!(
        store.all_contacts().unwrap(),
        [
            e("alice@a.test", "bob@a.test", Colleagues, false),
            e("alice@a.test", "carol@b.test", FriendsAndFamily, true),
            e("alice@a.test", "zed@partner.example", External, true),
            e("carol@b.test", "alice@a.test", Blocked, true),
        ]
    );

    store
        .remove_contact("alice", "a.test", "sip:carol@B.TEST")
        .unwrap();
    let left: Vec<String> = store
        .list_contacts("alice", "a.test")
        .unwrap()
        .into_iter()
        .map(|c| c.contact)
        .collect();
    assert_eq!(left, ["bob@a.test", "zed@partner.example"]);

    // Survives a restart.
    drop(store);
    let store = db.open().unwrap();
    assert_eq!(store.all_contacts().unwrap().len(), 3);
}

#[test]
fn errors() {
    for db in &test_dbs() {
        errors_on(db);
    }
}

fn errors_on(db: &TestDb) {
    let store = store_with_users(db);
    store
        .add_contact("alice", "a.test", "bob@a.test", None)
        .unwrap();
    let version = store.contacts_version().unwrap();

    // Duplicate, in any spelling.
    match store.add_contact(
        "alice",
        "a.test",
        "sip:BOB@a.TEST",
        Some(PrivacyLevel::Blocked),
    ) {
        Err(err @ StoreError::ContactExists { .. }) => assert_eq!(
            err.to_string(),
            "bob@a.test is already in alice@a.test's contacts"
        ),
        other => panic!("expected ContactExists, got {other:?}"),
    }

    // Missing owner.
    for r in [
        store
            .add_contact("nobody", "a.test", "bob@a.test", None)
            .map(drop),
        store
            .set_contact_level("nobody", "a.test", "bob@a.test", None)
            .map(drop),
        store.remove_contact("nobody", "a.test", "bob@a.test"),
        store.list_contacts("nobody", "a.test").map(drop),
    ] {
        assert!(
            matches!(r, Err(StoreError::NoSuchUser(ref u)) if u == "nobody@a.test"),
            "{r:?}"
        );
    }

    // Missing contact.
    for r in [
        store
            .set_contact_level(
                "alice",
                "a.test",
                "carol@b.test",
                Some(PrivacyLevel::Blocked),
            )
            .map(drop),
        store.remove_contact("alice", "a.test", "carol@b.test"),
        store.remove_contact("bob", "a.test", "bob@a.test"),
    ] {
        match r {
            Err(StoreError::NoSuchContact(m)) => assert!(m.contains("contacts"), "{m}"),
            other => panic!("expected NoSuchContact, got {other:?}"),
        }
    }

    // Malformed addresses; messages name the contact.
    assert_invalid(store.add_contact("alice", "a.test", "", None), "contact");
    assert_invalid(
        store.add_contact("alice", "a.test", "bob", None),
        "user@domain",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "sip:bob", None),
        "user@domain",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "@a.test", None),
        "username is empty",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "b b@a.test", None),
        "username",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "bob@", None),
        "domain is empty",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "bob@a..test", None),
        "empty label",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "bob@a.test;x=y", None),
        "domain",
    );
    assert_invalid(
        store.add_contact("alice", "a.test", "tel:123@a.test", None),
        "username",
    );
    assert_invalid(
        store.add_contact(
            "alice",
            "a.test",
            &format!("{}@a.test", "x".repeat(65)),
            None,
        ),
        "at most 64",
    );
    assert_invalid(
        store.set_contact_level("alice", "a.test", "nope", None),
        "user@domain",
    );
    assert_invalid(
        store.remove_contact("alice", "a.test", "nope"),
        "user@domain",
    );
    // Oneself.
    assert_invalid(
        store.add_contact("Alice", "a.test", "sip:alice@A.test", None),
        "themselves",
    );

    // Nothing changed, so the version did not move.
    assert_eq!(store.contacts_version().unwrap(), version);
    assert_eq!(store.list_contacts("alice", "a.test").unwrap().len(), 1);
}

#[test]
fn per_owner_limit() {
    for db in &test_dbs() {
        per_owner_limit_on(db);
    }
}

fn per_owner_limit_on(db: &TestDb) {
    let store = store_with_users(db);
    for i in 0..MAX_CONTACTS_PER_USER {
        store
            .add_contact("alice", "a.test", &format!("u{i}@far.example"), None)
            .unwrap();
    }
    assert_eq!(MAX_CONTACTS_PER_USER, 1000);
    assert_invalid(
        store.add_contact("alice", "a.test", "one.more@far.example", None),
        "at most 1000",
    );
    assert_eq!(store.list_contacts("alice", "a.test").unwrap().len(), 1000);
    // The limit is per owner.
    store
        .add_contact("bob", "a.test", "one.more@far.example", None)
        .unwrap();
    // Room again after a removal.
    store
        .remove_contact("alice", "a.test", "u0@far.example")
        .unwrap();
    store
        .add_contact("alice", "a.test", "one.more@far.example", None)
        .unwrap();

    // Room for one, and four connections (servers of a pool) add at once: one gets in.
    store
        .remove_contact("alice", "a.test", "u1@far.example")
        .unwrap();
    let start = std::sync::Arc::new(std::sync::Barrier::new(4));
    let added: Vec<bool> = (0..4)
        .map(|i| {
            let (conn, start) = (db.open().unwrap(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                conn.add_contact("alice", "a.test", &format!("race{i}@far.example"), None)
                    .is_ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        added.iter().filter(|a| **a).count(),
        1,
        "{}: {added:?}",
        db.name
    );
    assert_eq!(
        store.list_contacts("alice", "a.test").unwrap().len(),
        MAX_CONTACTS_PER_USER
    );
}

#[test]
fn removing_a_user_removes_their_list() {
    let db = common::sqlite_db();
    let dir = db.dir();
    let store = store_with_users(&db);
    store
        .add_contact("alice", "a.test", "bob@a.test", None)
        .unwrap();
    store
        .add_contact("alice", "a.test", "carol@b.test", None)
        .unwrap();
    store
        .add_contact("bob", "a.test", "alice@a.test", None)
        .unwrap();
    store
        .add_contact("carol", "b.test", "alice@a.test", None)
        .unwrap();

    let v = store.contacts_version().unwrap();
    store.remove_user("ALICE", "a.test").unwrap();
    assert!(
        store.contacts_version().unwrap() > v,
        "removal must signal a reload"
    );
    // Others' entries naming alice stay (contacts need not be local users).
    assert_eq!(
        store.all_contacts().unwrap(),
        [
            e(
                "bob@a.test",
                "alice@a.test",
                PrivacyLevel::Colleagues,
                false
            ),
            e(
                "carol@b.test",
                "alice@a.test",
                PrivacyLevel::External,
                false
            ),
        ]
    );
    // A new alice starts with an empty list.
    store
        .add_user(&NewUser {
            username: "alice",
            domain: "a.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
    assert!(store.list_contacts("alice", "a.test").unwrap().is_empty());

    // Removing a user without contacts leaves the contacts version alone.
    let v = store.contacts_version().unwrap();
    store.remove_user("alice", "a.test").unwrap();
    assert_eq!(store.contacts_version().unwrap(), v);

    // Nothing dangling in the table itself.
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join(confab_store::DB_FILE_NAME)).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM contacts WHERE owner_key = 'alice@a.test'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn contacts_version_bumps_on_each_write_and_is_seen_by_other_connections() {
    for db in &test_dbs() {
        contacts_version_bumps_on_each_write_and_is_seen_by_other_connections_on(db);
    }
}

fn contacts_version_bumps_on_each_write_and_is_seen_by_other_connections_on(db: &TestDb) {
    let store = store_with_users(db);
    let other = db.open().unwrap();
    assert_eq!(store.contacts_version().unwrap(), 0);
    let users_v = store.users_version().unwrap();

    store
        .add_contact("alice", "a.test", "bob@a.test", None)
        .unwrap();
    assert_eq!(other.contacts_version().unwrap(), 1);
    store
        .set_contact_level(
            "alice",
            "a.test",
            "bob@a.test",
            Some(PrivacyLevel::Workgroup),
        )
        .unwrap();
    assert_eq!(other.contacts_version().unwrap(), 2);
    store
        .set_contact_level("alice", "a.test", "bob@a.test", None)
        .unwrap();
    assert_eq!(other.contacts_version().unwrap(), 3);
    store
        .remove_contact("alice", "a.test", "bob@a.test")
        .unwrap();
    assert_eq!(other.contacts_version().unwrap(), 4);
    // Reads do not bump it, and contact writes leave users_version alone.
    store.list_contacts("alice", "a.test").unwrap();
    store.all_contacts().unwrap();
    assert_eq!(other.contacts_version().unwrap(), 4);
    assert_eq!(other.users_version().unwrap(), users_v);
    // The other connection sees the data too.
    other
        .add_contact("bob", "a.test", "carol@b.test", None)
        .unwrap();
    assert_eq!(store.list_contacts("bob", "a.test").unwrap().len(), 1);
    assert_eq!(store.contacts_version().unwrap(), 5);
}
