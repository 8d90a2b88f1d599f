//! Administration storage: configuration documents, admin accounts and tokens, custom roles,
//! the audit log. Real SQLite files in temporary directories.

mod common;
use common::{test_dbs, TestDb};
use confab_store::{
    tx, AdminRoleRow, AuditFilter, NewUser, Store, StoreError, DB_FILE_NAME, SCHEMA_VERSION,
};
use serde_json::{json, Map, Value};

fn open(db: &TestDb) -> ((), Store) {
    ((), db.open().unwrap())
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn invalid_msg(e: StoreError) -> String {
    match e {
        StoreError::Invalid(m) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration documents

const MEETING: &str = "CsMeetingConfiguration";

#[test]
fn config_put_get_replace() {
    for db in &test_dbs() {
        config_put_get_replace_on(db);
    }
}

fn config_put_get_replace_on(db: &TestDb) {
    let (_d, store) = open(db);
    assert_eq!(store.config_version().unwrap(), 0);
    assert!(store.get_config(MEETING, "Global").unwrap().is_none());

    let body = obj(
        json!({"AdmitAnonymousUsersByDefault": true, "AssignedConferenceTypeByDefault": "Open"}),
    );
    let doc = store.put_config(MEETING, "Global", &body).unwrap();
    assert_eq!(
        (doc.kind.as_str(), doc.identity.as_str()),
        (MEETING, "Global")
    );
    assert_eq!(doc.body, body);
    assert_eq!(store.config_version().unwrap(), 1);

    let got = store.get_config(MEETING, "Global").unwrap().unwrap();
    assert_eq!(got, doc);

    // Replace the whole document.
    let body2 = obj(json!({"AdmitAnonymousUsersByDefault": false, "Nested": {"a": [1, 2]}}));
    store.put_config(MEETING, "Global", &body2).unwrap();
    assert_eq!(store.config_version().unwrap(), 2);
    let got = store.get_config(MEETING, "Global").unwrap().unwrap();
    assert_eq!(got.body, body2);
    assert_eq!(store.list_config(MEETING).unwrap().len(), 1);

    // Kinds are separate namespaces; identities are exact.
    assert!(store
        .get_config("CsClientPolicy", "Global")
        .unwrap()
        .is_none());
    assert!(store.get_config(MEETING, "global").unwrap().is_none());
}

#[test]
fn config_list_order() {
    for db in &test_dbs() {
        config_list_order_on(db);
    }
}

fn config_list_order_on(db: &TestDb) {
    let (_d, store) = open(db);
    let b = Map::new();
    for id in [
        "Tag:Zeta",
        "Service:Registrar:pool.example.test",
        "Site:Redmond",
        "Tag:alpha",
        "Global",
        "Site:Dublin",
        "Service:UserServer:a.example.test",
    ] {
        store.put_config(MEETING, id, &b).unwrap();
    }
    store.put_config("CsOther", "Site:Aaa", &b).unwrap();
    let ids: Vec<String> = store
        .list_config(MEETING)
        .unwrap()
        .into_iter()
        .map(|d| d.identity)
        .collect();
    assert_eq!(
        ids,
        [
            "Global",
            "Site:Dublin",
            "Site:Redmond",
            "Service:Registrar:pool.example.test",
            "Service:UserServer:a.example.test",
            "Tag:alpha",
            "Tag:Zeta",
        ]
    );
    assert!(store.list_config("CsNothing").unwrap().is_empty());
}

#[test]
fn config_create_remove_and_errors() {
    for db in &test_dbs() {
        config_create_remove_and_errors_on(db);
    }
}

fn config_create_remove_and_errors_on(db: &TestDb) {
    let (_d, store) = open(db);
    let b = obj(json!({"x": 1}));
    store.create_config(MEETING, "Site:Redmond", &b).unwrap();
    assert_eq!(store.config_version().unwrap(), 1);
    match store.create_config(MEETING, "Site:Redmond", &obj(json!({"x": 2}))) {
        Err(e @ StoreError::ConfigExists { .. }) => {
            assert_eq!(
                e.to_string(),
                "configuration CsMeetingConfiguration at Site:Redmond already exists"
            )
        }
        other => panic!("{other:?}"),
    }
    // The failed create changed nothing.
    assert_eq!(store.config_version().unwrap(), 1);
    assert_eq!(
        store
            .get_config(MEETING, "Site:Redmond")
            .unwrap()
            .unwrap()
            .body,
        b
    );

    store.remove_config(MEETING, "Site:Redmond").unwrap();
    assert_eq!(store.config_version().unwrap(), 2);
    assert!(store.get_config(MEETING, "Site:Redmond").unwrap().is_none());
    match store.remove_config(MEETING, "Site:Redmond") {
        Err(StoreError::NoSuchConfig { kind, identity }) => {
            assert_eq!(
                (kind.as_str(), identity.as_str()),
                (MEETING, "Site:Redmond")
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.config_version().unwrap(), 2);

    // Validation.
    let m = invalid_msg(store.put_config(MEETING, "", &b).unwrap_err());
    assert!(m.contains("identity is empty"), "{m}");
    let m = invalid_msg(store.put_config(MEETING, &"x".repeat(257), &b).unwrap_err());
    assert!(m.contains("at most 256"), "{m}");
    store.put_config(MEETING, &"x".repeat(256), &b).unwrap();
    let m = invalid_msg(store.put_config(MEETING, "Site:a\nb", &b).unwrap_err());
    assert!(m.contains("control character"), "{m}");
    let m = invalid_msg(store.put_config("", "Global", &b).unwrap_err());
    assert!(m.contains("kind is empty"), "{m}");
}

#[test]
fn config_version_seen_by_other_process() {
    for db in &test_dbs() {
        config_version_seen_by_other_process_on(db);
    }
}

fn config_version_seen_by_other_process_on(db: &TestDb) {
    let (_d, store) = open(db);
    let other = db.open().unwrap();
    store.put_config(MEETING, "Global", &Map::new()).unwrap();
    assert_eq!(other.config_version().unwrap(), 1);
    assert!(other.get_config(MEETING, "Global").unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Admin accounts

#[test]
fn admin_add_verify_and_lookup() {
    let _d = common::sqlite_db();
    let store = _d.open().unwrap();
    assert_eq!(store.admin_count().unwrap(), 0);
    let a = store
        .add_admin("Alice", "correct horse", &roles(&["CsAdministrator"]))
        .unwrap();
    assert_eq!(a.name, "Alice");
    assert_eq!(a.roles, ["CsAdministrator"]);
    assert_eq!(store.admin_count().unwrap(), 1);

    assert_eq!(
        store.verify_admin("alice", "correct horse").unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.verify_admin("Alice", "wrong horse").unwrap(), None);
    assert_eq!(store.verify_admin("nobody", "correct horse").unwrap(), None);
    assert_eq!(store.get_admin("ALICE").unwrap(), Some(a.clone()));
    assert!(store.get_admin("nobody").unwrap().is_none());

    // The stored hash is an argon2id PHC string, not the password.
    let conn = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    let hash: String = conn
        .query_row("SELECT password_hash FROM admins", [], |r| r.get(0))
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));

    match store.add_admin("ALICE", "another pass", &[]) {
        Err(e @ StoreError::AdminExists(_)) => {
            assert_eq!(e.to_string(), "admin ALICE already exists")
        }
        other => panic!("{other:?}"),
    }

    store
        .add_admin(
            r"CONTOSO\bob",
            "bob password",
            &roles(&["CsHelpDesk", "cshelpdesk", "CsViewOnlyAdministrator"]),
        )
        .unwrap();
    store
        .add_admin("carol@example.test", "carolcarol", &[])
        .unwrap();
    let names: Vec<String> = store
        .list_admins()
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Alice", "carol@example.test", r"CONTOSO\bob"]);
    // Duplicate roles are dropped, first spelling kept.
    assert_eq!(
        store.get_admin(r"contoso\BOB").unwrap().unwrap().roles,
        ["CsHelpDesk", "CsViewOnlyAdministrator"]
    );
}

#[test]
fn admin_validation_messages() {
    for db in &test_dbs() {
        admin_validation_messages_on(db);
    }
}

fn admin_validation_messages_on(db: &TestDb) {
    let (_d, store) = open(db);
    let m = invalid_msg(store.add_admin("", "password1", &[]).unwrap_err());
    assert_eq!(m, "admin name is empty");
    let m = invalid_msg(
        store
            .add_admin(&"a".repeat(65), "password1", &[])
            .unwrap_err(),
    );
    assert_eq!(m, "admin name is 65 characters long, at most 64 allowed");
    store.add_admin(&"a".repeat(64), "password1", &[]).unwrap();
    let m = invalid_msg(store.add_admin("bad name", "password1", &[]).unwrap_err());
    assert!(m.contains("allowed are letters, digits and ._-@\\"), "{m}");
    let m = invalid_msg(store.add_admin("bob", "short", &[]).unwrap_err());
    assert_eq!(
        m,
        "admin password is 5 characters long, at least 8 required"
    );
    let m = invalid_msg(store.add_admin("bob", &"p".repeat(257), &[]).unwrap_err());
    assert_eq!(
        m,
        "admin password is 257 characters long, at most 256 allowed"
    );
    store.add_admin("bob", &"p".repeat(256), &[]).unwrap();
    let m = invalid_msg(
        store
            .add_admin("carol", "password1", &roles(&["bad role"]))
            .unwrap_err(),
    );
    assert!(m.contains("role identity"), "{m}");
    assert_eq!(store.admin_count().unwrap(), 2);
}

#[test]
fn admin_password_roles_and_removal() {
    for db in &test_dbs() {
        admin_password_roles_and_removal_on(db);
    }
}

fn admin_password_roles_and_removal_on(db: &TestDb) {
    let (_d, store) = open(db);
    store.add_admin("alice", "old password", &[]).unwrap();
    let v0 = store.admins_version().unwrap();

    store.set_admin_password("ALICE", "new password").unwrap();
    assert!(store
        .verify_admin("alice", "old password")
        .unwrap()
        .is_none());
    assert!(store
        .verify_admin("alice", "new password")
        .unwrap()
        .is_some());
    let m = invalid_msg(store.set_admin_password("alice", "short").unwrap_err());
    assert!(m.contains("at least 8"), "{m}");
    assert!(matches!(
        store.set_admin_password("nobody", "new password"),
        Err(StoreError::NoSuchAdmin(n)) if n == "nobody"
    ));

    store
        .set_admin_roles("alice", &roles(&["CsUserAdministrator", "RedmondHelpdesk"]))
        .unwrap();
    assert_eq!(
        store.get_admin("alice").unwrap().unwrap().roles,
        ["CsUserAdministrator", "RedmondHelpdesk"]
    );
    store.set_admin_roles("alice", &[]).unwrap();
    assert!(store.get_admin("alice").unwrap().unwrap().roles.is_empty());
    assert!(matches!(
        store.set_admin_roles("nobody", &[]),
        Err(StoreError::NoSuchAdmin(_))
    ));
    assert!(store.admins_version().unwrap() > v0);

    store.remove_admin("Alice").unwrap();
    assert!(store.get_admin("alice").unwrap().is_none());
    assert_eq!(store.admin_count().unwrap(), 0);
    match store.remove_admin("alice") {
        Err(e @ StoreError::NoSuchAdmin(_)) => assert_eq!(e.to_string(), "no such admin: alice"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[test]
fn tokens_issue_lookup_revoke() {
    let _d = common::sqlite_db();
    let store = _d.open().unwrap();
    store
        .add_admin("Alice", "password1", &roles(&["CsAdministrator"]))
        .unwrap();
    let t = store.issue_token("alice", 3600).unwrap();
    assert_eq!(t.len(), 64);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let t2 = store.issue_token("alice", 3600).unwrap();
    assert_ne!(t, t2);

    let a = store.token_admin(&t).unwrap().unwrap();
    assert_eq!(a.name, "Alice");
    assert_eq!(a.roles, ["CsAdministrator"]);
    assert!(store
        .token_admin("0".repeat(64).as_str())
        .unwrap()
        .is_none());
    assert!(store.token_admin("not a token").unwrap().is_none());

    // Only the hash is stored.
    let conn = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT token_hash FROM admin_tokens")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(!stored.contains(&t));

    assert!(store.revoke_token(&t).unwrap());
    assert!(!store.revoke_token(&t).unwrap());
    assert!(store.token_admin(&t).unwrap().is_none());
    assert!(store.token_admin(&t2).unwrap().is_some());

    assert_eq!(store.revoke_admin_tokens("ALICE").unwrap(), 1);
    assert!(store.token_admin(&t2).unwrap().is_none());

    assert!(matches!(
        store.issue_token("nobody", 60),
        Err(StoreError::NoSuchAdmin(_))
    ));
}

#[test]
fn tokens_expire() {
    let _d = common::sqlite_db();
    let store = _d.open().unwrap();
    store.add_admin("alice", "password1", &[]).unwrap();
    let dead = store.issue_token("alice", 0).unwrap();
    assert!(store.token_admin(&dead).unwrap().is_none());
    let short = store.issue_token("alice", 1).unwrap();
    assert!(store.token_admin(&short).unwrap().is_some());
    // expires within its second (the store reads the clock itself)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.token_admin(&short).unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the token never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Issuing purges expired tokens.
    let live = store.issue_token("alice", 60).unwrap();
    let conn = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM admin_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert!(store.token_admin(&live).unwrap().is_some());
}

#[test]
fn tokens_go_with_their_admin() {
    let _d = common::sqlite_db();
    let store = _d.open().unwrap();
    store.add_admin("alice", "password1", &[]).unwrap();
    store.add_admin("bob", "password2", &[]).unwrap();
    let ta = store.issue_token("alice", 600).unwrap();
    let tb = store.issue_token("bob", 600).unwrap();
    store.remove_admin("ALICE").unwrap();
    assert!(store.token_admin(&ta).unwrap().is_none());
    assert!(store.token_admin(&tb).unwrap().is_some());
    // Re-creating the name does not revive the old token.
    store.add_admin("alice", "password1", &[]).unwrap();
    assert!(store.token_admin(&ta).unwrap().is_none());
    let conn = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM admin_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

// ---------------------------------------------------------------------------------------------
// Custom roles

fn helpdesk() -> AdminRoleRow {
    AdminRoleRow {
        identity: "RedmondHelpdesk".into(),
        template: "CsHelpDesk".into(),
        cmdlets: roles(&["Get-CsUser", "Grant-CsClientPolicy"]),
        config_scopes: roles(&["Site:Redmond"]),
        user_scopes: roles(&["OU:ou=Redmond,dc=example,dc=test"]),
    }
}

#[test]
fn roles_crud_and_version() {
    for db in &test_dbs() {
        roles_crud_and_version_on(db);
    }
}

fn roles_crud_and_version_on(db: &TestDb) {
    let (_d, store) = open(db);
    assert_eq!(store.roles_version().unwrap(), 0);
    store.create_role(&helpdesk()).unwrap();
    assert_eq!(store.roles_version().unwrap(), 1);
    assert_eq!(store.get_role("redmondhelpdesk").unwrap(), Some(helpdesk()));
    match store.create_role(&AdminRoleRow {
        identity: "REDMONDHELPDESK".into(),
        ..helpdesk()
    }) {
        Err(e @ StoreError::RoleExists(_)) => {
            assert_eq!(e.to_string(), "admin role REDMONDHELPDESK already exists")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.roles_version().unwrap(), 1);

    let global = AdminRoleRow {
        identity: "GlobalViewer".into(),
        template: "CsViewOnlyAdministrator".into(),
        cmdlets: vec![],
        config_scopes: roles(&["Global"]),
        user_scopes: roles(&["Global"]),
    };
    store.create_role(&global).unwrap();
    let ids: Vec<String> = store
        .list_roles()
        .unwrap()
        .into_iter()
        .map(|r| r.identity)
        .collect();
    assert_eq!(ids, ["GlobalViewer", "RedmondHelpdesk"]);

    let mut changed = helpdesk();
    changed.identity = "redmondHELPDESK".into();
    changed.config_scopes = roles(&["Site:Redmond", "Site:Dublin"]);
    store.update_role(&changed).unwrap();
    assert_eq!(store.roles_version().unwrap(), 3);
    let got = store.get_role("RedmondHelpdesk").unwrap().unwrap();
    assert_eq!(got.identity, "RedmondHelpdesk"); // stored spelling kept
    assert_eq!(got.config_scopes, ["Site:Redmond", "Site:Dublin"]);

    assert!(matches!(
        store.update_role(&AdminRoleRow { identity: "Nope".into(), ..helpdesk() }),
        Err(StoreError::NoSuchRole(n)) if n == "Nope"
    ));
    store.remove_role("redmondhelpdesk").unwrap();
    assert_eq!(store.roles_version().unwrap(), 4);
    assert!(store.get_role("RedmondHelpdesk").unwrap().is_none());
    match store.remove_role("RedmondHelpdesk") {
        Err(e @ StoreError::NoSuchRole(_)) => {
            assert_eq!(e.to_string(), "no such admin role: RedmondHelpdesk")
        }
        other => panic!("{other:?}"),
    }

    let m = invalid_msg(
        store
            .create_role(&AdminRoleRow {
                identity: "".into(),
                ..helpdesk()
            })
            .unwrap_err(),
    );
    assert_eq!(m, "role identity is empty");
    let m = invalid_msg(
        store
            .create_role(&AdminRoleRow {
                template: "a b".into(),
                ..helpdesk()
            })
            .unwrap_err(),
    );
    assert!(m.starts_with("role template \"a b\" contains ' '"), "{m}");
    let m = invalid_msg(
        store
            .create_role(&AdminRoleRow {
                cmdlets: roles(&[""]),
                ..helpdesk()
            })
            .unwrap_err(),
    );
    assert!(m.contains("empty entry"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Audit log

#[test]
fn audit_append_and_query() {
    let _d = common::sqlite_db();
    let store = _d.open().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let id1 = store
        .append_audit(
            "alice",
            "local shell",
            "Set-CsMeetingConfiguration -Identity Global",
            true,
            "ok",
        )
        .unwrap();
    let id2 = store
        .append_audit(
            "Bob",
            "rest 127.0.0.1:5555",
            "New-CsUser -Password ***",
            false,
            "denied",
        )
        .unwrap();
    let id3 = store
        .append_audit("alice", "rest [::1]:4000", "Get-CsUser", true, "3 users")
        .unwrap();
    assert!(id1 < id2 && id2 < id3);

    let all = store.query_audit(&AuditFilter::default()).unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [id3, id2, id1]
    );
    let e2 = &all[1];
    assert_eq!(
        (
            e2.admin.as_str(),
            e2.origin.as_str(),
            e2.command.as_str(),
            e2.success,
            e2.result.as_str()
        ),
        (
            "Bob",
            "rest 127.0.0.1:5555",
            "New-CsUser -Password ***",
            false,
            "denied"
        )
    );
    assert!(e2.at_ms >= before);

    let q = |f: AuditFilter| -> Vec<i64> {
        store
            .query_audit(&f)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(
        q(AuditFilter {
            admin: Some("ALICE".into()),
            ..Default::default()
        }),
        [id3, id1]
    );
    assert_eq!(
        q(AuditFilter {
            contains: Some("csuser".into()),
            ..Default::default()
        }),
        [id3, id2]
    );
    assert_eq!(
        q(AuditFilter {
            limit: 2,
            ..Default::default()
        }),
        [id3, id2]
    );
    assert_eq!(
        q(AuditFilter {
            admin: Some("alice".into()),
            contains: Some("Get-".into()),
            limit: 5,
            ..Default::default()
        }),
        [id3]
    );
    assert_eq!(
        q(AuditFilter {
            since_ms: Some(before),
            ..Default::default()
        }),
        [id3, id2, id1]
    );
    assert!(q(AuditFilter {
        since_ms: Some(all[0].at_ms + 1),
        ..Default::default()
    })
    .is_empty());
    assert!(q(AuditFilter {
        admin: Some("nobody".into()),
        ..Default::default()
    })
    .is_empty());

    // since_ms is inclusive and compares against stored times.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let id4 = store
        .append_audit("carol", "local shell", "x", true, "")
        .unwrap();
    let at4 = store
        .query_audit(&AuditFilter {
            limit: 1,
            ..Default::default()
        })
        .unwrap()[0]
        .at_ms;
    assert_eq!(
        q(AuditFilter {
            since_ms: Some(at4),
            ..Default::default()
        }),
        [id4]
    );

    // Entries cannot be rewritten, even with SQL.
    let conn = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    let err = conn
        .execute("UPDATE audit_log SET success = 1 WHERE id = ?1", [id2])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Transactions

#[test]
fn transaction_commits_change_and_audit_together() {
    for db in &test_dbs() {
        transaction_commits_change_and_audit_together_on(db);
    }
}

fn transaction_commits_change_and_audit_together_on(db: &TestDb) {
    let (_d, store) = open(db);
    let body = obj(json!({"x": 1}));
    let id = store
        .transaction(|t| {
            tx::put_config(t, MEETING, "Global", &body)?;
            tx::append_audit(
                t,
                "alice",
                "local shell",
                "Set-CsMeetingConfiguration",
                true,
                "ok",
            )
        })
        .unwrap();
    assert!(id > 0);
    assert_eq!(store.config_version().unwrap(), 1);
    assert_eq!(store.query_audit(&AuditFilter::default()).unwrap().len(), 1);

    // A failure anywhere rolls everything back, version bumps included.
    let err = store
        .transaction(|t| {
            tx::put_config(t, MEETING, "Site:Redmond", &body)?;
            tx::create_role(t, &helpdesk())?;
            tx::append_audit(t, "alice", "local shell", "doomed", true, "")?;
            tx::remove_config(t, MEETING, "Site:Nowhere")
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchConfig { .. }));
    assert!(store.get_config(MEETING, "Site:Redmond").unwrap().is_none());
    assert!(store.get_role("RedmondHelpdesk").unwrap().is_none());
    assert_eq!(store.config_version().unwrap(), 1);
    assert_eq!(store.roles_version().unwrap(), 0);
    assert_eq!(store.query_audit(&AuditFilter::default()).unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Migration

#[test]
fn migration_from_schema_4_keeps_users() {
    assert_eq!(SCHEMA_VERSION, 12);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .add_user(&NewUser {
                username: "alice",
                domain: "example.test",
                display_name: "Alice",
                password: "s3cret",
            })
            .unwrap();
        store
            .add_contact("alice", "example.test", "bob@example.test", None)
            .unwrap();
    }
    // Turn the file back into a version 4 database.
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
        conn.execute_batch(
            "DROP TABLE front_ends; DROP TABLE registrations; DROP TABLE publications;
             DROP TABLE meeting_hosts; DROP TABLE live_sessions; ALTER TABLE offline_messages DROP COLUMN claimed_by;
             ALTER TABLE offline_messages DROP COLUMN claimed_until;
             DROP TABLE user_sessions; ALTER TABLE users DROP COLUMN hosted_voicemail; ALTER TABLE users DROP COLUMN call_forwarding;
             ALTER TABLE users DROP COLUMN enterprise_voice_enabled;
             DROP TABLE client_pins; DROP INDEX users_line_uri; ALTER TABLE users DROP COLUMN line_uri;
             DROP TABLE meetings; DELETE FROM meta WHERE key = 'meetings_version';
             DROP TABLE admin_tokens; DROP TABLE admins; DROP TABLE admin_roles;
             DROP TABLE audit_log; DROP TABLE config_documents;
             ALTER TABLE users DROP COLUMN ou;
             DELETE FROM meta WHERE key IN ('config_version', 'roles_version', 'admins_version');
             DROP TABLE server_secrets;
             ALTER TABLE users DROP COLUMN ha1_md5_at_domain;
             ALTER TABLE users DROP COLUMN ha1_md5_at;
             PRAGMA user_version = 4;",
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let alice = store.get_user("alice", "example.test").unwrap().unwrap();
    assert_eq!(alice.display_name, "Alice");
    assert_eq!(
        alice.ou, None,
        "users from before organisational units are in none"
    );
    assert_eq!(store.all_contacts().unwrap().len(), 1);
    assert_eq!(store.users_version().unwrap(), 1);
    assert_eq!(store.config_version().unwrap(), 0);
    assert_eq!(store.roles_version().unwrap(), 0);
    assert_eq!(store.admin_count().unwrap(), 0);
    store
        .set_user_ou("alice", "example.test", Some("OU=Sales,DC=example,DC=test"))
        .unwrap();
    assert_eq!(
        store
            .get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .ou
            .as_deref(),
        Some("OU=Sales,DC=example,DC=test")
    );
    // The new tables work.
    store.add_admin("admin", "password1", &[]).unwrap();
    store.put_config(MEETING, "Global", &Map::new()).unwrap();
    store
        .append_audit("admin", "local shell", "x", true, "")
        .unwrap();
    assert_eq!(store.config_version().unwrap(), 1);
}
