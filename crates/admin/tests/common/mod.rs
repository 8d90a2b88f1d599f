//! What the shell tests against a real store share: a store with alice (in the Sales OU),
//! bob (in no OU) and the administrator root; sessions; running a script.
#![allow(dead_code)]

use confab_admin::{principal_for, Session};
use confab_store::{NewUser, Store};

pub const SALES: &str = "OU=Sales,DC=example,DC=test";

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    for (name, ou) in [("alice", Some(SALES)), ("bob", None)] {
        s.add_user_in_ou(
            &NewUser {
                username: name,
                domain: "example.test",
                display_name: "",
                password: "pw-secret",
            },
            ou,
        )
        .unwrap();
    }
    s.add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    (dir, s)
}

pub fn session<'a>(s: &'a Store, admin: &str) -> Session<'a> {
    let a = s.get_admin(admin).unwrap().unwrap();
    Session::new(s, principal_for(s, &a).unwrap(), "test", "example.test")
}

pub fn run(sess: &mut Session, src: &str) -> confab_admin::Output {
    sess.run(src)
        .unwrap_or_else(|e| panic!("{src}\n  failed: {e}"))
}

/// Every voice configuration document and policy assignment, to show that a refused
/// command changed nothing.
pub fn voice_configs(s: &Store) -> serde_json::Value {
    let mut all = vec![];
    for kind in [
        "CsDialPlan",
        "CsPstnUsage",
        "CsVoicePolicy",
        "CsVoiceRoute",
        "CsTrunkConfiguration",
        "CsPstnGateway",
        "CsUserPolicyAssignment",
    ] {
        for d in s.list_config(kind).unwrap() {
            all.push(serde_json::json!([kind, d.identity, d.body]));
        }
    }
    serde_json::Value::Array(all)
}

/// Runs `src`, which must fail; the error's text.
pub fn fails(sess: &mut Session, src: &str) -> String {
    match sess.run(src) {
        Ok(o) => panic!("{src}\n  succeeded: {}", o.text),
        Err(e) => e.to_string(),
    }
}

/// Property `name` of an output object.
pub fn prop(o: &confab_admin::object::Obj, name: &str) -> serde_json::Value {
    o.get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {o:?}"))
}

/// The one result of `src`.
pub fn one(sh: &mut Session, src: &str) -> confab_admin::object::Obj {
    let out = run(sh, src);
    assert_eq!(out.objects.len(), 1, "{src}: {:?}", out.objects);
    out.objects.into_iter().next().unwrap()
}
