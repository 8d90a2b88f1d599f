//! What only matters with two backends: the store used from inside a tokio runtime (the
//! PostgreSQL client must not start a runtime there), backups moving between SQLite and
//! PostgreSQL, and several connections migrating one PostgreSQL schema at once.

mod common;
use common::{test_dbs, TestDb};
use confab_store::{AdminRoleRow, AuditFilter, NewUser, PrivacyLevel, Store, SCHEMA_VERSION};
use serde_json::{json, Map};

fn fill(s: &Store) {
    for (u, pw) in [("alice", "pw-alice"), ("Bob", "pw-bob")] {
        s.add_user(&NewUser {
            username: u,
            domain: "a.test",
            display_name: "A",
            password: pw,
        })
        .unwrap();
    }
    // the organisational unit moves with a backup too
    s.set_user_ou("alice", "a.test", Some("OU=Sales,DC=a,DC=test"))
        .unwrap();
    s.add_contact(
        "alice",
        "a.test",
        "bob@a.test",
        Some(PrivacyLevel::Workgroup),
    )
    .unwrap();
    s.add_contact("alice", "a.test", "zed@b.test", None)
        .unwrap();
    s.store_message(
        "bob",
        "a.test",
        "<sip:alice@a.test>",
        "text/plain",
        b"hi\x00\xff",
        "Subject: x\r\n",
        10,
        1000,
    )
    .unwrap();
    let mut body = Map::new();
    body.insert("AllowIPAudio".into(), json!(false));
    s.put_config("CsClientPolicy", "Global", &body).unwrap();
    s.put_config("CsClientPolicy", "Site:Redmond", &Map::new())
        .unwrap();
    s.add_admin("root", "correct horse", &["CsAdministrator".into()])
        .unwrap();
    s.issue_token("root", 3600).unwrap();
    s.create_role(&AdminRoleRow {
        identity: "Helpdesk2".into(),
        template: "CsHelpDesk".into(),
        cmdlets: vec!["Get-CsUser".into()],
        config_scopes: vec!["Global".into()],
        user_scopes: vec!["Global".into()],
    })
    .unwrap();
    s.append_audit("root", "local shell", "New-CsUser alice", true, "ok")
        .unwrap();
    s.save_snapshot("bindings", &["{}".into()]).unwrap();
}

/// Everything a backup carries that the API can read, in a comparable form.
fn contents(s: &Store) -> serde_json::Value {
    let audit: Vec<_> = s
        .query_audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| json!([e.id, e.at_ms, e.admin, e.origin, e.command, e.success, e.result]))
        .collect();
    let users: Vec<_> = s
        .list_users(None)
        .unwrap()
        .into_iter()
        .map(|u| format!("{u:?}"))
        .collect();
    let admins: Vec<_> = s
        .list_admins()
        .unwrap()
        .into_iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let roles: Vec<_> = s
        .list_roles()
        .unwrap()
        .into_iter()
        .map(|r| format!("{r:?}"))
        .collect();
    let config: Vec<_> = s
        .list_config("CsClientPolicy")
        .unwrap()
        .into_iter()
        .map(|d| format!("{d:?}"))
        .collect();
    json!({
        "user_data": s.export_user_data().unwrap(),
        "users": users, "admins": admins, "roles": roles, "config": config, "audit": audit,
        "contacts": format!("{:?}", s.all_contacts().unwrap()),
        "admin_verifies": s.verify_admin("ROOT", "correct horse").unwrap().is_some(),
    })
}

#[test]
fn store_works_inside_a_tokio_runtime() {
    // The test's own schema is made (and dropped) outside the runtime; the store is opened
    // and used inside it, as the server does.
    let dbs = test_dbs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(in_runtime(&dbs));
}

async fn in_runtime(dbs: &[TestDb]) {
    for db in dbs {
        let s = db.open().unwrap();
        s.add_user(&NewUser {
            username: "carol",
            domain: "c.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
        let s = std::sync::Arc::new(s);
        let t = {
            let s = s.clone();
            tokio::spawn(async move { s.get_user("CAROL", "c.test").unwrap().map(|u| u.username) })
        };
        assert_eq!(t.await.unwrap().as_deref(), Some("carol"), "{}", db.name);
        assert_eq!(s.users_version().unwrap(), 1);
    }
}

#[test]
fn every_backend_backs_up_and_restores_into_every_backend() {
    let dbs = test_dbs();
    for from in &dbs {
        let source = from.open().unwrap();
        fill(&source);
        let want = contents(&source);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backup.db");
        source.backup_to(&file).unwrap();
        assert!(source.backup_to(&file).is_err(), "never overwrites");
        // Into a new SQLite data directory.
        let data = dir.path().join("data");
        Store::restore_into(&file, &data).unwrap();
        assert_eq!(
            contents(&Store::open(&data).unwrap()),
            want,
            "{} -> sqlite dir",
            from.name
        );
        // Into an empty store of each kind.
        for to in test_dbs() {
            let target = to.open().unwrap();
            let before = target.config_version().unwrap();
            target.restore_from(&file).unwrap();
            assert_eq!(contents(&target), want, "{} -> {}", from.name, to.name);
            assert!(
                target.config_version().unwrap() > before,
                "running servers must notice"
            );
            // New rows get fresh ids after the restored ones.
            let id = target.append_audit("root", "t", "after", true, "").unwrap();
            assert!(id > source.query_audit(&AuditFilter::default()).unwrap()[0].id);
            let err = target.restore_from(&file).unwrap_err().to_string();
            assert!(err.contains("not empty"), "{err}");
        }
    }
}

#[test]
fn restore_refuses_a_file_that_is_not_a_backup() {
    for db in &test_dbs() {
        let s = db.open().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not a database").unwrap();
        let err = s.restore_from(&junk).unwrap_err().to_string();
        assert!(err.contains("not a confab backup"), "{}: {err}", db.name);
        assert!(s.list_users(None).unwrap().is_empty());
    }
}

#[test]
fn concurrent_first_connections_migrate_once() {
    for db in &test_dbs() {
        concurrent_first_on(db);
    }
}

fn concurrent_first_on(db: &TestDb) {
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let spec = db.spec();
            std::thread::spawn(move || Store::open_spec(&spec).map(|s| s.schema_version().unwrap()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), SCHEMA_VERSION, "{}", db.name);
    }
}

#[test]
fn bad_postgres_url_is_a_clear_error() {
    let err = Store::open_url("postgres://nobody:secret@127.0.0.1:1/none")
        .unwrap_err()
        .to_string();
    assert!(err.contains("PostgreSQL"), "{err}");
    let err = Store::open_url("mysql://x").unwrap_err().to_string();
    assert!(err.contains("not a postgres:// URL"), "{err}");
}

/// Statements are prepared once per PostgreSQL connection. When another server of the pool
/// changes a column the cached statement returns ("cached plan must not change result
/// type"), the store prepares it again instead of failing.
#[test]
fn cached_statements_survive_a_schema_change_by_another_connection() {
    let Some(db) = test_dbs().into_iter().find(|d| d.is_postgres()) else {
        return; // SQLite has no such cache across connections
    };
    let s = db.open().unwrap();
    s.add_user(&NewUser {
        username: "dave",
        domain: "d.test",
        display_name: "Dave",
        password: "pw",
    })
    .unwrap();
    let name =
        |s: &confab_store::Store| s.get_user("dave", "d.test").unwrap().unwrap().display_name;
    assert_eq!(name(&s), "Dave"); // prepared and cached now
    let mut other = postgres::Client::connect(&db.spec(), postgres::NoTls).unwrap();
    other
        .batch_execute("ALTER TABLE users ALTER COLUMN display_name TYPE VARCHAR(300)")
        .unwrap();
    assert_eq!(name(&s), "Dave");
}
