//! Offline messages against real SQLite files in temporary directories.

mod common;
use common::{test_dbs, TestDb};
use confab_store::{NewUser, Store, StoreError, StoredMessage};

const MAX_N: usize = 100;
const MAX_BYTES: usize = 1_048_576;

fn store_with_users(db: &TestDb) -> Store {
    let store = db.open().unwrap();
    for (u, d) in [("Alice", "a.test"), ("bob", "a.test")] {
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

fn send(store: &Store, to: &str, body: &str) -> Result<i64, StoreError> {
    store.store_message(
        to,
        "a.test",
        "<sip:bob@a.test>;tag=1",
        "text/plain",
        body.as_bytes(),
        "",
        MAX_N,
        MAX_BYTES,
    )
}

fn bodies(msgs: &[StoredMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8(m.body.clone()).unwrap())
        .collect()
}

#[test]
fn stored_read_in_order_survive_restart_and_delete() {
    for db in &test_dbs() {
        stored_read_in_order_survive_restart_and_delete_on(db);
    }
}

fn stored_read_in_order_survive_restart_and_delete_on(db: &TestDb) {
    let store = store_with_users(db);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let first = store
        .store_message(
            "ALICE",
            "A.TEST",
            "\"Bob\" <sip:bob@a.test>;tag=abc",
            "text/plain;charset=UTF-8",
            "héllo".as_bytes(),
            "Subject: hi\r\nPriority: urgent\r\n",
            MAX_N,
            MAX_BYTES,
        )
        .unwrap();
    let second = send(&store, "alice", "two").unwrap();
    // Binary bodies are kept byte for byte.
    let binary: Vec<u8> = (0..=255u8).collect();
    let third = store
        .store_message(
            "alice",
            "a.test",
            "<sip:x@far.example>",
            "application/octet-stream",
            &binary,
            "",
            MAX_N,
            MAX_BYTES,
        )
        .unwrap();
    send(&store, "bob", "for bob").unwrap();
    assert!(first < second && second < third);

    assert_eq!(store.count_messages("alice", "a.test").unwrap(), 3);
    assert_eq!(store.count_messages("Bob", "A.test").unwrap(), 1);
    assert_eq!(store.count_messages("nobody", "a.test").unwrap(), 0);
    assert_eq!(
        store.recipients_with_messages().unwrap(),
        ["alice@a.test", "bob@a.test"]
    );

    // Restart.
    drop(store);
    let store = db.open().unwrap();
    let msgs = store.pending_messages("alice", "a.test", 10).unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[0],
        StoredMessage {
            id: first,
            recipient: "alice@a.test".into(),
            sender: "\"Bob\" <sip:bob@a.test>;tag=abc".into(),
            content_type: "text/plain;charset=UTF-8".into(),
            body: "héllo".as_bytes().to_vec(),
            received_at: msgs[0].received_at,
            headers: "Subject: hi\r\nPriority: urgent\r\n".into(),
        }
    );
    assert!(msgs[0].received_at >= before && msgs[0].received_at <= before + 60);
    assert_eq!(msgs[1].id, second);
    assert_eq!(msgs[1].headers, "");
    assert_eq!(msgs[2].body, binary);
    // Limit takes the oldest.
    let two = store.pending_messages("alice", "a.test", 2).unwrap();
    assert_eq!(
        two.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first, second]
    );
    assert!(store
        .pending_messages("alice", "a.test", 0)
        .unwrap()
        .is_empty());
    assert!(store
        .pending_messages("nobody", "a.test", 10)
        .unwrap()
        .is_empty());

    // Delivery deletes one by one.
    assert!(store.delete_message(second).unwrap());
    assert!(!store.delete_message(second).unwrap());
    assert!(!store.delete_message(9999).unwrap());
    let ids: Vec<i64> = store
        .pending_messages("alice", "a.test", 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [first, third]);
    // Ids keep increasing even after deletions (AUTOINCREMENT), so order stays arrival order.
    store.delete_message(third).unwrap();
    let fourth = send(&store, "alice", "four").unwrap();
    assert!(fourth > third);
    assert_eq!(
        bodies(&store.pending_messages("alice", "a.test", 10).unwrap()),
        ["héllo", "four"]
    );

    store.delete_message(first).unwrap();
    store.delete_message(fourth).unwrap();
    assert_eq!(store.recipients_with_messages().unwrap(), ["bob@a.test"]);
}

#[test]
fn count_limit_gives_mailbox_full_without_storing() {
    for db in &test_dbs() {
        count_limit_gives_mailbox_full_without_storing_on(db);
    }
}

fn count_limit_gives_mailbox_full_without_storing_on(db: &TestDb) {
    let store = store_with_users(db);
    for i in 0..MAX_N {
        send(&store, "alice", &format!("m{i}")).unwrap();
    }
    match send(&store, "alice", "one too many") {
        Err(err @ StoreError::MailboxFull { .. }) => {
            let StoreError::MailboxFull {
                ref recipient,
                ref reason,
            } = err
            else {
                unreachable!()
            };
            assert_eq!(recipient, "alice@a.test");
            assert_eq!(reason, "100 messages");
            assert!(err.to_string().contains("alice@a.test"), "{err}");
        }
        other => panic!("expected MailboxFull, got {other:?}"),
    }
    assert_eq!(store.count_messages("alice", "a.test").unwrap(), MAX_N);
    let all = store.pending_messages("alice", "a.test", 1000).unwrap();
    assert_eq!(all.len(), MAX_N);
    assert_eq!(bodies(&all).last().unwrap(), "m99");
    // Another mailbox is unaffected; one slot frees after a delivery.
    send(&store, "bob", "fine").unwrap();
    store.delete_message(all[0].id).unwrap();
    send(&store, "alice", "now fits").unwrap();
    // A limit of zero refuses everything.
    assert!(matches!(
        store.store_message("bob", "a.test", "x", "text/plain", b"", "", 0, MAX_BYTES),
        Err(StoreError::MailboxFull { ref reason, .. }) if reason == "0 messages"
    ));
}

#[test]
fn byte_limit_gives_mailbox_full_without_storing() {
    for db in &test_dbs() {
        byte_limit_gives_mailbox_full_without_storing_on(db);
    }
}

fn byte_limit_gives_mailbox_full_without_storing_on(db: &TestDb) {
    let store = store_with_users(db);
    let limit = 1000;
    let put = |n: usize| {
        store.store_message(
            "alice",
            "a.test",
            "x",
            "text/plain",
            &vec![b'x'; n],
            "",
            MAX_N,
            limit,
        )
    };
    put(600).unwrap();
    put(400).unwrap(); // exactly at the limit is fine
    match put(1) {
        Err(StoreError::MailboxFull { recipient, reason }) => {
            assert_eq!(
                (recipient.as_str(), reason.as_str()),
                ("alice@a.test", "1000 bytes")
            );
        }
        other => panic!("expected MailboxFull, got {other:?}"),
    }
    assert_eq!(store.count_messages("alice", "a.test").unwrap(), 2);
    // An empty body still fits; a single oversized message never does.
    put(0).unwrap();
    assert!(matches!(
        store.store_message(
            "bob",
            "a.test",
            "x",
            "text/plain",
            &vec![0; 1001],
            "",
            MAX_N,
            limit
        ),
        Err(StoreError::MailboxFull { .. })
    ));
    assert_eq!(store.count_messages("bob", "a.test").unwrap(), 0);
    assert_eq!(
        store
            .store_message(
                "bob",
                "a.test",
                "x",
                "text/plain",
                &vec![0; 1001],
                "",
                MAX_N,
                MAX_BYTES
            )
            .map(|_| ())
            .unwrap(),
        ()
    );
}

#[test]
fn validation_and_unknown_recipient() {
    for db in &test_dbs() {
        validation_and_unknown_recipient_on(db);
    }
}

fn validation_and_unknown_recipient_on(db: &TestDb) {
    let store = store_with_users(db);
    let put = |sender: &str, ct: &str, headers: &str| {
        store.store_message(
            "alice", "a.test", sender, ct, b"hi", headers, MAX_N, MAX_BYTES,
        )
    };
    for (r, needle) in [
        (put("", "text/plain", ""), "sender is empty"),
        (put("a\r\nVia: evil", "text/plain", ""), "sender"),
        (put("x", "", ""), "content type is empty"),
        (put("x", "text/plain\r\nX: y", ""), "content type"),
        (put("x", "text/plain", "Subject: hi"), "headers"),
        (put("x", "text/plain", "Subject: hi\nX: y\r\n"), "headers"),
        (put("x", "text/plain", "garbage\r\n"), "headers"),
    ] {
        match r {
            Err(StoreError::Invalid(m)) => {
                assert!(m.contains(needle), "{m:?} should mention {needle:?}")
            }
            other => panic!("expected Invalid({needle}), got {other:?}"),
        }
    }
    assert!(matches!(
        store.store_message("nobody", "a.test", "x", "text/plain", b"hi", "", MAX_N, MAX_BYTES),
        Err(StoreError::NoSuchUser(ref u)) if u == "nobody@a.test"
    ));
    assert!(store.recipients_with_messages().unwrap().is_empty());
}

#[test]
fn removing_a_user_removes_their_messages() {
    let db = common::sqlite_db();
    let dir = db.dir();
    let store = store_with_users(&db);
    send(&store, "alice", "1").unwrap();
    send(&store, "alice", "2").unwrap();
    send(&store, "bob", "3").unwrap();
    store.remove_user("alice", "A.TEST").unwrap();
    assert_eq!(store.count_messages("alice", "a.test").unwrap(), 0);
    assert_eq!(store.recipients_with_messages().unwrap(), ["bob@a.test"]);
    // A re-created alice does not inherit the old mailbox.
    store
        .add_user(&NewUser {
            username: "alice",
            domain: "a.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
    assert!(store
        .pending_messages("alice", "a.test", 10)
        .unwrap()
        .is_empty());

    // Also when the user row is deleted by hand (sqlite3), thanks to the trigger.
    drop(store);
    {
        let conn = rusqlite::Connection::open(dir.path().join(confab_store::DB_FILE_NAME)).unwrap();
        conn.execute("DELETE FROM users WHERE user_key = 'bob@a.test'", [])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.recipients_with_messages().unwrap().is_empty());
}
