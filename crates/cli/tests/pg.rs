//! Several confab servers sharing one PostgreSQL store, and backups moving between SQLite and
//! PostgreSQL, through the real binary. Runs when CONFAB_TEST_POSTGRES=postgres://… names a
//! server (each test in a fresh schema, dropped at the end); with CONFAB_REQUIRE_POSTGRES=1 a
//! missing URL fails instead of skipping.

mod common;
use common::pg::*;
use common::*;
use confab_sip::Method;
use std::path::Path;

/// Status of an authenticated MESSAGE of `ctype` from `ua` to `to`.
fn message_status(ua: &mut Ua, to: &str, ctype: &str) -> u16 {
    ua.new_call();
    let mut m = ua.request(Method::Message, &format!("sip:{to}"), &format!("sip:{to}"));
    m.set_body(ctype, "{\\rtf1 hi}");
    let r = ua.send_authenticated(m);
    r.status().unwrap()
}

#[test]
fn two_servers_share_one_postgres_store() {
    let Some(schema) = Schema::new() else { return };
    let url = schema.url.as_str();
    run(url, ADD_ROOT);
    run(
        url,
        &[
            "user",
            "add",
            &format!("carol@{DOMAIN}"),
            "--password",
            "carolpassword",
        ],
    );
    let a = Serve::start("127.0.0.1", url);
    let b = Serve::start("127.0.0.2", url);

    // A user added while both run registers on either, without a restart.
    run(
        url,
        &[
            "user",
            "add",
            &format!("alice@{DOMAIN}"),
            "--password",
            "alicepassword",
        ],
    );
    for server in [&a, &b] {
        let mut alice = Ua::udp_on(&server.addr.ip().to_string(), "alice", server.addr);
        alice.password = "alicepassword".into();
        let r = eventually(|| alice.register(60).status(), |s| *s == Some(200));
        assert_eq!(r, Some(200), "alice registers on {}", server.addr);
    }

    // A policy set through the admin shell takes effect on both servers.
    let alice_ua = |server: &Serve| {
        let mut ua = Ua::udp_on(&server.addr.ip().to_string(), "alice", server.addr);
        ua.password = "alicepassword".into();
        ua
    };
    let (mut via_a, mut via_b) = (alice_ua(&a), alice_ua(&b));
    let carol = format!("carol@{DOMAIN}");
    assert_eq!(
        message_status(&mut via_b, &carol, "text/rtf"),
        202,
        "rich text allowed by default"
    );
    let out = run(url, &["shell", "-c", "Set-CsClientPolicy -Identity global -DisableRTFIm $true; Get-CsClientPolicy -Identity global"]);
    assert!(
        out.contains("DisableRTFIm") && out.contains("True"),
        "{out}"
    );
    for ua in [&mut via_a, &mut via_b] {
        let s = eventually(|| message_status(ua, &carol, "text/rtf"), |s| *s == 415);
        assert_eq!(s, 415, "rich text refused once the policy changed");
        assert_eq!(message_status(ua, &carol, "text/plain"), 202);
    }
}

#[test]
fn backups_move_between_sqlite_and_postgres() {
    let Some(schema) = Schema::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n).display().to_string();
    let first = dir("first");
    // a new SQLite store in an empty directory: created on purpose
    run(
        &first,
        &["user", "seed", "--domain", DOMAIN, "--count", "3", "--init"],
    );
    run(&first, ADD_ROOT);
    run(
        &first,
        &[
            "shell",
            "-c",
            "Set-CsClientPolicy -Identity global -DisableRTFIm $true",
        ],
    );
    run(
        &first,
        &[
            "contact",
            "add",
            &format!("user0001@{DOMAIN}"),
            &format!("user0002@{DOMAIN}"),
            "Workgroup",
        ],
    );

    let to_pg = dir("to-pg.backup");
    run(&first, &["backup", &to_pg]);
    run(&schema.url, &["restore", &to_pg]);
    let from_pg = dir("from-pg.backup");
    run(&schema.url, &["backup", &from_pg]);
    let last = dir("last");
    run(&last, &["restore", &from_pg]);

    let view = |store: &str| {
        [
            run(store, &["user", "list"]),
            run(store, &["contact", "list", &format!("user0001@{DOMAIN}")]),
            run(store, &["admin", "list"]),
            run(
                store,
                &["shell", "-c", "Get-CsClientPolicy -Identity global | fl"],
            ),
        ]
    };
    let want = view(&first);
    assert!(
        want[0].contains("user0002") && want[1].contains("Workgroup") && want[3].contains("True"),
        "{want:?}"
    );
    assert_eq!(view(&schema.url), want, "sqlite -> postgres");
    assert_eq!(view(&last), want, "postgres -> sqlite");
    // Restoring into a store that has data is refused and changes nothing.
    let o = confab()
        .args(["restore", &to_pg, "--store", &schema.url])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("not empty"),
        "{}",
        text(&o)
    );
    assert!(Path::new(&from_pg).exists());
}

#[test]
fn meetings_on_a_postgres_store() {
    let Some(schema) = Schema::new() else { return };
    let url = schema.url.as_str();
    // an empty schema is no store: only --init (or serve) makes one there
    let o = confab()
        .args(["user", "list", "--store", url])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let said = text(&o);
    assert!(
        said.contains("there is no confab store at postgres://") && said.contains("--init"),
        "{said}"
    );
    run(
        url,
        &[
            "user",
            "add",
            "alice@example.test",
            "--password",
            "pw-alice",
            "--init",
        ],
    );
    // the JSON on stdout (then any WARNING: lines from stderr)
    let json = |args: &[&str]| -> serde_json::Value {
        let out = run(url, args);
        serde_json::Deserializer::from_str(&out)
            .into_iter::<serde_json::Value>()
            .next()
            .unwrap()
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let a1 = json(&[
        "meeting",
        "create",
        "--organizer",
        "alice@example.test",
        "--json",
    ]);
    let a2 = json(&[
        "meeting",
        "create",
        "--organizer",
        "alice@example.test",
        "--assigned",
        "--json",
    ]);
    assert_eq!(a1["key"], a2["key"]);
    let p = json(&[
        "meeting",
        "create",
        "--organizer",
        "alice@example.test",
        "--private",
        "--access",
        "Everyone",
        "--json",
    ]);
    assert_ne!(p["conference_id"], a1["conference_id"]);
    let key = p["key"].as_str().unwrap();
    let shown = json(&["meeting", "show", key, "--json"]);
    assert_eq!(shown["access"], "Everyone");
    run(url, &["meeting", "remove", key]);
    let all = json(&["meeting", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 1);
    // the meeting moves with a backup into SQLite
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("m.backup");
    run(url, &["backup", file.to_str().unwrap()]);
    let restored = tmp.path().join("restored");
    run(
        restored.to_str().unwrap(),
        &["restore", file.to_str().unwrap()],
    );
    let out = run(restored.to_str().unwrap(), &["meeting", "list"]);
    assert!(out.contains(a1["key"].as_str().unwrap()), "{out}");
}
