//! `confab meeting` as an administrator runs it: create, list, show, remove, the `--json`
//! fields; the cookbook's conferencing lines (through `confab shell -c`) changing what
//! `confab meeting create` makes; and the live-control commands against the REST API of a
//! running `confab serve`.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + String::from_utf8_lossy(&o.stderr).as_ref()
}

/// `confab ARGS --data DATA` (with root's credentials for `shell`).
fn run(data: &Path, args: &[&str]) -> Output {
    confab()
        .args(args)
        .arg("--data")
        .arg(data)
        .env("CONFAB_ADMIN", "root")
        .env("CONFAB_ADMIN_PASSWORD", "rootpassword1")
        .env_remove("CONFAB_TOKEN")
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let o = run(data, args);
    assert!(o.status.success(), "confab {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn fails(data: &Path, args: &[&str]) -> String {
    let o = run(data, args);
    assert!(
        !o.status.success(),
        "confab {args:?} should fail: {}",
        text(&o)
    );
    text(&o)
}

fn json(data: &Path, args: &[&str]) -> Value {
    let out = ok(data, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// A data directory with user0000..user0002 and the administrator root.
fn data() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ok(d.path(), &["user", "seed", "--count", "3", "--init"]);
    ok(
        d.path(),
        &[
            "admin",
            "add",
            "root",
            "--role",
            "CsAdministrator",
            "--password",
            "rootpassword1",
        ],
    );
    d
}

#[test]
fn create_list_show_remove() {
    let d = data();
    let p = d.path();
    let m = json(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--private",
            "--access",
            "invited",
            "--subject",
            "Budget review",
            "--invite",
            "user0001@example.test",
            "--end",
            "2099-01-15T10:00:00Z",
            "--json",
        ],
    );
    let key = m["key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 8);
    assert_eq!(m["organizer"], "user0000@example.test");
    assert_eq!(m["kind"], "Private");
    assert_eq!(m["access"], "Invited");
    assert_eq!(m["subject"], "Budget review");
    assert_eq!(m["invitees"], serde_json::json!(["user0001@example.test"]));
    assert_eq!(
        m["uri"],
        format!("sip:user0000@example.test;gruu;opaque=app:conf:focus:id:{key}")
    );
    assert_eq!(
        m["meet_url"],
        format!("https://meet.example.test/user0000/{key}")
    );
    let id = m["conference_id"].as_str().unwrap();
    assert!(
        id.len() >= 5 && id.bytes().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    // expires 14 days after its end
    let end = 4_072_154_400_i64; // 2099-01-15T10:00:00Z
    assert_eq!(m["end_at"], end);
    assert_eq!(m["expires_at"], end + 14 * 86400);

    // assigned by default, the same every time; private ones differ
    let a1 = json(
        p,
        &["meeting", "create", "--organizer", "user0001", "--json"],
    );
    let a2 = json(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "sip:user0001@example.test",
            "--assigned",
            "--json",
        ],
    );
    assert_eq!(a1["kind"], "Assigned");
    assert_eq!(a1["expires_at"], Value::Null);
    assert_eq!(
        (&a1["key"], &a1["conference_id"]),
        (&a2["key"], &a2["conference_id"])
    );
    let p2 = json(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--private",
            "--json",
        ],
    );
    assert_ne!(p2["key"], m["key"]);
    assert_ne!(p2["conference_id"], m["conference_id"]);

    let all = json(p, &["meeting", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let mine = json(p, &["meeting", "list", "--organizer", "user0000", "--json"]);
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let listed = ok(p, &["meeting", "list"]);
    assert!(
        listed.contains(&key) && listed.contains("Budget review"),
        "{listed}"
    );

    let shown = json(p, &["meeting", "show", &key.to_lowercase(), "--json"]);
    assert_eq!(shown, {
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("warnings");
        m
    });
    let text_out = ok(p, &["meeting", "show", &key]);
    assert!(
        text_out.contains(&format!("ConferenceId    : {id}")),
        "{text_out}"
    );

    let out = ok(p, &["meeting", "remove", &key]);
    assert!(out.contains(&key), "{out}");
    assert!(fails(p, &["meeting", "show", &key]).contains("no such meeting"));
    assert!(fails(p, &["meeting", "remove", &key]).contains("no such meeting"));
    assert_eq!(
        json(p, &["meeting", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let d = data();
    let p = d.path();
    let e = fails(p, &["meeting", "create", "--organizer", "nobody"]);
    assert!(e.contains("no such user: nobody@example.test"), "{e}");
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--access",
            "Public",
        ],
    );
    assert!(
        e.contains("Locked, Invited, SameEnterprise, Everyone"),
        "{e}"
    );
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--presenters",
            "All",
        ],
    );
    assert!(e.contains("None, Company, Everyone"), "{e}");
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--end",
            "next week",
        ],
    );
    assert!(e.contains("RFC 3339"), "{e}");
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--end",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert!(e.contains("in the past"), "{e}");
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--assigned",
            "--end",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(e.contains("assigned meeting has no end time"), "{e}");
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--private",
            "--assigned",
        ],
    );
    assert!(e.contains("cannot be used with"), "{e}");
    let e = fails(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--invite",
            "not an address",
        ],
    );
    assert!(
        e.contains("not an address") || e.contains("user@domain"),
        "{e}"
    );
    assert_eq!(
        json(p, &["meeting", "list", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn the_cookbook_lines_change_what_is_made() {
    let d = data();
    let p = d.path();
    ok(p, &["shell", "-c", "Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true"]);
    let m = json(
        p,
        &["meeting", "create", "--organizer", "user0000", "--json"],
    );
    assert_eq!(m["kind"], "Private", "private by default now");
    let a = json(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--assigned",
            "--json",
        ],
    );
    assert_eq!(a["kind"], "Assigned", "still allowed when asked for");

    ok(
        p,
        &[
            "shell",
            "-c",
            "Set-CsMeetingConfiguration -EnableAssignedConferenceType $false",
        ],
    );
    let e = fails(
        p,
        &["meeting", "create", "--organizer", "user0001", "--assigned"],
    );
    assert!(e.contains("EnableAssignedConferenceType"), "{e}");

    ok(
        p,
        &[
            "shell",
            "-c",
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false -DesignateAsPresenter None",
        ],
    );
    let m = json(
        p,
        &["meeting", "create", "--organizer", "user0001", "--json"],
    );
    assert_eq!(
        (&m["pstn_bypass_lobby"], &m["presenters"]),
        (&Value::Bool(false), &Value::from("None"))
    );

    // a Tag: conferencing policy granted to one user applies to that user only
    ok(p, &["shell", "-c", "New-CsConferencingPolicy -Identity NoAnonymous -AllowAnonymousParticipantsInMeetings $false; Grant-CsConferencingPolicy -Identity sip:user0000@example.test -PolicyName NoAnonymous"]);
    let o = run(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--access",
            "Everyone",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["access"], "Everyone");
    assert!(
        m["warnings"][0]
            .as_str()
            .unwrap()
            .contains("AllowAnonymousParticipantsInMeetings"),
        "{m}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("WARNING: "));
    let m = json(
        p,
        &[
            "meeting",
            "create",
            "--organizer",
            "user0001",
            "--access",
            "Everyone",
            "--json",
        ],
    );
    assert_eq!(m["warnings"], serde_json::json!([]));
}

#[test]
fn live_control_goes_through_the_rest_api() {
    let http = free_port("127.0.0.1");
    let s = Server::start(3, &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let url = format!("http://127.0.0.1:{http}");
    let m = json(
        s.data(),
        &[
            "meeting",
            "create",
            "--organizer",
            "user0000",
            "--private",
            "--json",
        ],
    );
    let key = m["key"].as_str().unwrap();
    let pw = s.data().join("pw");
    std::fs::write(&pw, "pw-user0000\n").unwrap();
    let bad = s.data().join("bad");
    std::fs::write(&bad, "wrong\n").unwrap();
    let pw = pw.to_str().unwrap();
    let bad = bad.to_str().unwrap();
    let user = [
        "--server",
        &url,
        "--user",
        "user0000@example.test",
        "--password-file",
    ];
    // the live commands take no --data: they talk to the server
    let fails = |_: &Path, args: &[&str]| {
        let o = confab()
            .args(args)
            .env_remove("CONFAB_TOKEN")
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "confab {args:?} should fail: {}",
            text(&o)
        );
        text(&o)
    };
    // signed in, the meeting is found and asked for: it is not live (no one has joined)
    let mut args = vec!["meeting", "roster", key];
    args.extend(user);
    args.push(pw);
    let e = fails(s.data(), &args);
    assert!(
        e.contains("not live") || e.contains("no conference focus"),
        "{e}"
    );
    // a wrong password is refused
    let mut args = vec!["meeting", "mute", key, "sip:user0001@example.test"];
    args.extend(user);
    args.push(bad);
    let e = fails(s.data(), &args);
    assert!(e.contains("invalid user or password (401)"), "{e}");
    // someone else's meeting does not exist for the user
    let other = json(
        s.data(),
        &[
            "meeting",
            "create",
            "--organizer",
            "user0001",
            "--private",
            "--json",
        ],
    );
    let mut args = vec!["meeting", "roster", other["key"].as_str().unwrap()];
    args.extend(user);
    args.push(pw);
    let e = fails(s.data(), &args);
    assert!(e.contains("no such meeting"), "{e}");
    // no credentials
    let e = fails(s.data(), &["meeting", "roster", key, "--server", &url]);
    assert!(e.contains("--token"), "{e}");
}

#[test]
fn the_shell_cmdlets() {
    let d = data();
    let p = d.path();
    let out = ok(p, &["shell", "-c", "New-CsMeeting -Organizer sip:user0002@example.test -Private -Access Locked -Subject 'Board'"]);
    assert!(
        out.contains("Access          : Locked") || out.contains("Locked"),
        "{out}"
    );
    let list = json(p, &["meeting", "list", "--organizer", "user0002", "--json"]);
    let key = list[0]["key"].as_str().unwrap().to_string();
    assert_eq!(list[0]["access"], "Locked");
    let out = ok(
        p,
        &[
            "shell",
            "-c",
            &format!("Get-CsMeeting -Identity {key} | Select-Object -ExpandProperty ConferenceId"),
        ],
    );
    assert_eq!(out.trim(), list[0]["conference_id"].as_str().unwrap());
    let e = fails(
        p,
        &[
            "shell",
            "-c",
            "New-CsMeeting -Organizer user0002@example.test -Subjct x",
        ],
    );
    assert!(
        e.contains("'Subjct'") && e.contains("Did you mean -Subject?"),
        "{e}"
    );
    ok(
        p,
        &["shell", "-c", &format!("Remove-CsMeeting -Identity {key}")],
    );
    assert_eq!(
        json(p, &["meeting", "list", "--json"]),
        serde_json::json!([])
    );
    let audit = ok(p, &["admin", "audit", "--as", "root"]);
    assert!(
        audit.contains("New-CsMeeting") && audit.contains("Remove-CsMeeting"),
        "{audit}"
    );
}
