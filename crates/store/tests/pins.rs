//! Dial-in PINs and LineURIs in the central store, on SQLite and (when configured)
//! PostgreSQL.

mod common;
use common::{test_dbs, TestDb};
use confab_store::{normalize_line_uri, NewUser, PinCheck, PinInfo, Store, StoreError};

const NOW: i64 = 1_800_000_000;

fn store(db: &TestDb) -> Store {
    let s = db.open().unwrap();
    for u in ["Alice", "bob", "carol"] {
        s.add_user(&NewUser {
            username: u,
            domain: "a.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
    }
    s
}

fn invalid(r: Result<(), StoreError>) -> String {
    match r {
        Err(StoreError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_pin_is_set_shown_and_verified() {
    for db in &test_dbs() {
        let s = store(db);
        assert_eq!(
            s.client_pin_info("alice@a.test").unwrap(),
            PinInfo::default()
        );
        assert_eq!(
            s.verify_client_pin("alice@a.test", "13579", 10, 0, NOW)
                .unwrap(),
            PinCheck::NotSet
        );
        // the user's address in any case, with sip:
        s.set_client_pin("sip:ALICE@a.test", "13579", 0, NOW)
            .unwrap();
        let info = s.client_pin_info("alice@a.test").unwrap();
        assert!(info.is_pin_set && !info.is_locked_out, "{}", db.name);
        assert_eq!(info.last_changed, Some(NOW));
        assert_eq!(
            s.verify_client_pin("alice@a.test", "13579", 10, 0, NOW)
                .unwrap(),
            PinCheck::Valid
        );
        assert_eq!(
            s.verify_client_pin("alice@a.test", "13570", 10, 0, NOW)
                .unwrap(),
            PinCheck::Wrong { failures: 1 }
        );
        // another user's PIN is not hers
        assert_eq!(
            s.verify_client_pin("bob@a.test", "13579", 10, 0, NOW)
                .unwrap(),
            PinCheck::NotSet
        );
        // the hash is salted: the same PIN for two users is stored differently
        s.set_client_pin("bob@a.test", "13579", 0, NOW).unwrap();
        assert_eq!(
            s.verify_client_pin("bob@a.test", "13579", 10, 0, NOW)
                .unwrap(),
            PinCheck::Valid
        );
        // malformed PINs and unknown users change nothing
        assert!(invalid(s.set_client_pin("alice@a.test", "12a45", 0, NOW)).contains("digits"));
        assert!(invalid(s.set_client_pin("alice@a.test", "123", 0, NOW)).contains("4 to 24"));
        assert!(matches!(
            s.set_client_pin("nobody@a.test", "13579", 0, NOW),
            Err(StoreError::NoSuchUser(_))
        ));
        assert!(matches!(
            s.client_pin_info("nobody@a.test"),
            Err(StoreError::NoSuchUser(_))
        ));
        assert_eq!(
            s.verify_client_pin("nobody@a.test", "13579", 10, 0, NOW)
                .unwrap(),
            PinCheck::NotSet
        );
        assert_eq!(
            s.verify_client_pin("not an address", "13579", 10, 0, NOW)
                .unwrap(),
            PinCheck::NotSet
        );
    }
}

#[test]
fn failures_lock_the_pin_and_unlock_or_a_new_pin_clears_them() {
    for db in &test_dbs() {
        let s = store(db);
        s.set_client_pin("alice@a.test", "24680", 0, NOW).unwrap();
        for i in 1..=2 {
            assert_eq!(
                s.verify_client_pin("alice@a.test", "11111", 3, 0, NOW)
                    .unwrap(),
                PinCheck::Wrong { failures: i }
            );
        }
        // success clears the count
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 3, 0, NOW)
                .unwrap(),
            PinCheck::Valid
        );
        assert_eq!(
            s.client_pin_info("alice@a.test").unwrap().failed_attempts,
            0
        );
        for i in 1..=3 {
            assert_eq!(
                s.verify_client_pin("alice@a.test", "11111", 3, 0, NOW)
                    .unwrap(),
                PinCheck::Wrong { failures: i }
            );
        }
        let info = s.client_pin_info("alice@a.test").unwrap();
        assert!(info.is_locked_out, "{}", db.name);
        assert_eq!(info.failed_attempts, 3);
        // locked: even the right PIN is refused, and nothing more is counted
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 3, 0, NOW)
                .unwrap(),
            PinCheck::LockedOut
        );
        assert_eq!(
            s.client_pin_info("alice@a.test").unwrap().failed_attempts,
            3
        );
        assert!(s.unlock_client_pin("alice@a.test").unwrap());
        assert_eq!(
            s.client_pin_info("alice@a.test").unwrap(),
            PinInfo {
                is_pin_set: true,
                is_locked_out: false,
                last_changed: Some(NOW),
                failed_attempts: 0
            }
        );
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 3, 0, NOW)
                .unwrap(),
            PinCheck::Valid
        );
        // an administrator's lock, and a new PIN that lifts it
        assert!(s.lock_client_pin("alice@a.test").unwrap());
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 3, 0, NOW)
                .unwrap(),
            PinCheck::LockedOut
        );
        s.set_client_pin("alice@a.test", "97531", 0, NOW + 5)
            .unwrap();
        assert!(!s.client_pin_info("alice@a.test").unwrap().is_locked_out);
        assert_eq!(
            s.verify_client_pin("alice@a.test", "97531", 3, 0, NOW)
                .unwrap(),
            PinCheck::Valid
        );
        // without a PIN there is nothing to lock
        assert!(!s.lock_client_pin("bob@a.test").unwrap());
        assert!(!s.unlock_client_pin("bob@a.test").unwrap());
    }
}

#[test]
fn concurrent_guesses_all_count() {
    for db in &test_dbs() {
        let s = std::sync::Arc::new(store(db));
        s.set_client_pin("alice@a.test", "24680", 0, NOW).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        s.verify_client_pin("alice@a.test", "99999", 100, 0, NOW)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            s.client_pin_info("alice@a.test").unwrap().failed_attempts,
            12
        );
    }
}

#[test]
fn pins_expire_after_their_lifetime() {
    for db in &test_dbs() {
        let s = store(db);
        s.set_client_pin("alice@a.test", "24680", 0, NOW).unwrap();
        let day = 86_400;
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 10, 30, NOW + 30 * day)
                .unwrap(),
            PinCheck::Valid
        );
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 10, 30, NOW + 30 * day + 1)
                .unwrap(),
            PinCheck::Expired
        );
        // a wrong PIN is wrong, expired or not
        assert_eq!(
            s.verify_client_pin("alice@a.test", "11111", 10, 30, NOW + 31 * day)
                .unwrap(),
            PinCheck::Wrong { failures: 1 }
        );
        // 0: never
        assert_eq!(
            s.verify_client_pin("alice@a.test", "24680", 10, 0, NOW + 9999 * day)
                .unwrap(),
            PinCheck::Valid
        );
    }
}

#[test]
fn history_refuses_recent_pins() {
    for db in &test_dbs() {
        let s = store(db);
        s.set_client_pin("alice@a.test", "11223", 3, NOW).unwrap();
        s.set_client_pin("alice@a.test", "22334", 3, NOW).unwrap();
        s.set_client_pin("alice@a.test", "33445", 3, NOW).unwrap();
        for old in ["11223", "22334", "33445"] {
            let m = invalid(s.set_client_pin("alice@a.test", old, 3, NOW));
            assert!(m.contains("PINHistoryCount"), "{m}");
        }
        // older than the last 3: allowed again; with history 0 anything goes
        s.set_client_pin("alice@a.test", "44556", 3, NOW).unwrap();
        s.set_client_pin("alice@a.test", "11223", 3, NOW).unwrap();
        s.set_client_pin("alice@a.test", "11223", 0, NOW).unwrap();
        assert_eq!(
            s.verify_client_pin("alice@a.test", "11223", 10, 0, NOW)
                .unwrap(),
            PinCheck::Valid
        );
    }
}

#[test]
fn a_pin_goes_with_its_user_and_survives_backup() {
    for db in &test_dbs() {
        let s = store(db);
        s.set_client_pin("alice@a.test", "24680", 0, NOW).unwrap();
        s.set_line_uri("alice", "a.test", Some("tel:+14255550100;ext=100"))
            .unwrap();
        let file = db.dir().path().join("backup.db");
        s.backup_to(&file).unwrap();
        let restored = Store::open_in_memory().unwrap();
        restored.restore_from(&file).unwrap();
        assert_eq!(
            restored
                .verify_client_pin("alice@a.test", "24680", 10, 0, NOW)
                .unwrap(),
            PinCheck::Valid,
            "{}",
            db.name
        );
        assert_eq!(
            restored.user_by_number("100").unwrap().map(|u| u.address()),
            Some("Alice@a.test".into())
        );
        s.remove_user("alice", "a.test").unwrap();
        s.add_user(&NewUser {
            username: "alice",
            domain: "a.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
        assert!(!s.client_pin_info("alice@a.test").unwrap().is_pin_set);
    }
}

#[test]
fn line_uris_are_checked_unique_and_found_by_number_or_extension() {
    assert_eq!(
        normalize_line_uri(" TEL:+14255550100;EXT=100 ").unwrap(),
        "tel:+14255550100;ext=100"
    );
    for bad in [
        "14255550100",
        "tel:14255550100",
        "tel:+",
        "tel:+1425a",
        "tel:+1425;ext=",
        "tel:+1425;phone-context=x",
        "sip:+1425@a.test",
        "tel:+123456789012345678901",
    ] {
        assert!(normalize_line_uri(bad).is_err(), "{bad}");
    }
    for db in &test_dbs() {
        let s = store(db);
        s.set_line_uri("alice", "a.test", Some("tel:+14255550100;ext=100"))
            .unwrap();
        s.set_line_uri("bob", "a.test", Some("tel:+14255550101"))
            .unwrap();
        assert_eq!(
            s.get_user("alice", "a.test")
                .unwrap()
                .unwrap()
                .line_uri
                .as_deref(),
            Some("tel:+14255550100;ext=100")
        );
        let m = invalid(s.set_line_uri("carol", "a.test", Some("tel:+14255550101")));
        assert!(m.contains("bob@a.test"), "{m}");
        assert!(invalid(s.set_line_uri("carol", "a.test", Some("555"))).contains("tel:"));
        assert!(matches!(
            s.set_line_uri("nobody", "a.test", Some("tel:+1")),
            Err(StoreError::NoSuchUser(_))
        ));
        let find = |d: &str| s.user_by_number(d).unwrap().map(|u| u.username);
        assert_eq!(find("100").as_deref(), Some("Alice"));
        assert_eq!(find("14255550100").as_deref(), Some("Alice"));
        assert_eq!(find("+14255550101").as_deref(), Some("bob"));
        assert_eq!(find("4255550101"), None, "digits as stored, not a suffix");
        assert_eq!(find("10%"), None);
        assert_eq!(find(""), None);
        // the same extension under two numbers is ambiguous; the number itself wins
        s.set_line_uri("carol", "a.test", Some("tel:+14255550199;ext=100"))
            .unwrap();
        assert_eq!(find("100"), None);
        assert_eq!(find("14255550199").as_deref(), Some("carol"));
        // a disabled user is not found; a removed number frees it
        s.set_enabled("bob", "a.test", false).unwrap();
        assert_eq!(find("14255550101"), None);
        s.set_line_uri("bob", "a.test", None).unwrap();
        s.set_line_uri("carol", "a.test", Some("tel:+14255550101"))
            .unwrap();
        assert_eq!(find("14255550101").as_deref(), Some("carol"));
    }
}

#[test]
fn enterprise_voice_is_off_by_default_and_survives_backup_and_export() {
    for db in &test_dbs() {
        let s = store(db);
        let alice = || s.get_user("alice", "a.test").unwrap().unwrap();
        assert!(!alice().enterprise_voice_enabled, "{}", db.name);
        let v = s.users_version().unwrap();
        s.set_enterprise_voice("Alice", "A.test", true).unwrap();
        assert!(alice().enterprise_voice_enabled, "{}", db.name);
        assert!(s.users_version().unwrap() > v, "servers notice the change");
        assert!(matches!(
            s.set_enterprise_voice("nobody", "a.test", true),
            Err(StoreError::NoSuchUser(_))
        ));
        let file = db.dir().path().join("backup-ev.db");
        s.backup_to(&file).unwrap();
        let restored = Store::open_in_memory().unwrap();
        restored.restore_from(&file).unwrap();
        assert!(
            restored
                .get_user("alice", "a.test")
                .unwrap()
                .unwrap()
                .enterprise_voice_enabled,
            "{}",
            db.name
        );
        let export = s.export_user_data().unwrap();
        let other = Store::open_in_memory().unwrap();
        other.import_user_data(&export).unwrap();
        assert!(
            other
                .get_user("alice", "a.test")
                .unwrap()
                .unwrap()
                .enterprise_voice_enabled
        );
        s.set_enterprise_voice("alice", "a.test", false).unwrap();
        assert!(!alice().enterprise_voice_enabled);
    }
}

#[test]
fn call_forwarding_and_hosted_voicemail_are_stored_and_survive_backup_and_export() {
    const FWD: &str =
        r#"{"simul_ring":"tel:+14255550199","unanswered":"voicemail","unanswered_after_secs":15}"#;
    for db in &test_dbs() {
        let s = store(db);
        let alice = || s.get_user("alice", "a.test").unwrap().unwrap();
        assert_eq!(alice().call_forwarding, None, "{}: defaults", db.name);
        assert!(!alice().hosted_voicemail, "{}", db.name);

        let v = s.users_version().unwrap();
        s.set_call_forwarding("Alice", "A.test", Some(FWD)).unwrap();
        assert_eq!(alice().call_forwarding.as_deref(), Some(FWD), "{}", db.name);
        let v2 = s.users_version().unwrap();
        assert!(v2 > v, "servers notice the change");
        s.set_hosted_voicemail("alice", "a.test", true).unwrap();
        assert!(alice().hosted_voicemail, "{}", db.name);
        assert!(s.users_version().unwrap() > v2, "servers notice the change");

        // bad input changes nothing
        for bad in [
            "[1]",
            "not json",
            "\"text\"",
            &format!("{{\"a\":\"{}\"}}", "x".repeat(20_000)),
        ] {
            let m = invalid(s.set_call_forwarding("alice", "a.test", Some(bad)));
            assert!(m.contains("call forwarding"), "{m}");
        }
        assert_eq!(alice().call_forwarding.as_deref(), Some(FWD));
        assert!(matches!(
            s.set_call_forwarding("nobody", "a.test", None),
            Err(StoreError::NoSuchUser(_))
        ));
        assert!(matches!(
            s.set_hosted_voicemail("nobody", "a.test", true),
            Err(StoreError::NoSuchUser(_))
        ));
        // another user is untouched
        let bob = s.get_user("bob", "a.test").unwrap().unwrap();
        assert_eq!((bob.call_forwarding, bob.hosted_voicemail), (None, false));

        let file = db.dir().path().join("backup-fwd.db");
        s.backup_to(&file).unwrap();
        let restored = Store::open_in_memory().unwrap();
        restored.restore_from(&file).unwrap();
        let r = restored.get_user("alice", "a.test").unwrap().unwrap();
        assert_eq!(r.call_forwarding.as_deref(), Some(FWD), "{}", db.name);
        assert!(r.hosted_voicemail, "{}", db.name);

        let export = s.export_user_data().unwrap();
        let other = Store::open_in_memory().unwrap();
        other.import_user_data(&export).unwrap();
        let o = other.get_user("alice", "a.test").unwrap().unwrap();
        assert_eq!(o.call_forwarding.as_deref(), Some(FWD));
        assert!(o.hosted_voicemail);
        // an export with malformed settings is refused whole
        let mut broken = export.clone();
        broken["users"][0]["call_forwarding"] = serde_json::json!("[]");
        assert!(Store::open_in_memory()
            .unwrap()
            .import_user_data(&broken)
            .is_err());

        // back to the defaults
        s.set_call_forwarding("alice", "a.test", None).unwrap();
        s.set_hosted_voicemail("alice", "a.test", false).unwrap();
        assert_eq!(alice().call_forwarding, None);
        assert!(!alice().hosted_voicemail);
    }
}
