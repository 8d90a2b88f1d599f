//! Users' web sessions on both backends.

mod common;
use common::test_dbs;
use confab_store::sessions::MAX_SESSIONS_PER_USER;
use confab_store::NewUser;

#[test]
fn sessions_sign_in_expire_and_end_with_the_user() {
    for db in test_dbs() {
        let s = db.open().unwrap();
        s.add_user(&NewUser {
            username: "Alice",
            domain: "a.test",
            display_name: "A",
            password: "pw-alice",
        })
        .unwrap();
        let t = s.issue_user_session("alice@a.test", 60).unwrap();
        assert_eq!(t.len(), 64, "{}", db.name);
        assert_eq!(s.user_session(&t).unwrap().as_deref(), Some("alice@a.test"));
        assert_eq!(s.user_session("0".repeat(64).as_str()).unwrap(), None);
        // expired at once
        let gone = s.issue_user_session("alice@a.test", 0).unwrap();
        assert_eq!(s.user_session(&gone).unwrap(), None, "{}", db.name);
        // signing out ends one session
        let other = s.issue_user_session("alice@a.test", 60).unwrap();
        assert!(s.revoke_user_session(&other).unwrap());
        assert!(!s.revoke_user_session(&other).unwrap());
        assert_eq!(s.user_session(&other).unwrap(), None);
        assert!(s.user_session(&t).unwrap().is_some());
        // a disabled user's sessions no longer sign in
        s.set_enabled("alice", "a.test", false).unwrap();
        assert_eq!(s.user_session(&t).unwrap(), None, "{}", db.name);
        s.set_enabled("alice", "a.test", true).unwrap();
        assert!(s.user_session(&t).unwrap().is_some());
        // at most MAX_SESSIONS_PER_USER: the oldest go
        let many: Vec<String> = (0..MAX_SESSIONS_PER_USER + 2)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                s.issue_user_session("alice@a.test", 60).unwrap()
            })
            .collect();
        assert_eq!(s.user_session(&t).unwrap(), None, "{}", db.name);
        assert_eq!(s.user_session(&many[0]).unwrap(), None);
        assert!(s.user_session(many.last().unwrap()).unwrap().is_some());
        assert!(s.user_session(&many[2]).unwrap().is_some(), "{}", db.name);
        assert_eq!(
            s.revoke_user_sessions("ALICE@a.test").unwrap(),
            MAX_SESSIONS_PER_USER as usize
        );
        // a new password, or removing the user, ends them too
        let t = s.issue_user_session("alice@a.test", 60).unwrap();
        s.set_password("alice", "a.test", "pw-alice-2").unwrap();
        assert_eq!(s.user_session(&t).unwrap(), None, "{}", db.name);
        let t = s.issue_user_session("alice@a.test", 60).unwrap();
        s.remove_user("alice", "a.test").unwrap();
        assert!(!s.revoke_user_session(&t).unwrap(), "{}", db.name);
    }
}
