//! Dial-in administration against a running `confab serve`: PINs set by an administrator
//! (`confab shell`, local and remote) and by users over REST with their SIP password, the
//! PIN policy's refusals named, a PIN locked after the policy's failed attempts (checked as
//! the attendant checks them) and unlocked again, LineURIs, and access numbers listed per
//! region on meetings (`confab meeting show/create --json`, REST).

mod common;
use common::*;
use confab_store::{PinCheck, Store};
use serde_json::{json, Value};
use std::process::Output;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + String::from_utf8_lossy(&o.stderr).as_ref()
}

struct Env {
    s: Server,
    http: u16,
}

impl Env {
    fn start() -> Env {
        let http = free_port("127.0.0.1");
        let s = Server::start(3, &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
        let o = confab()
            .args([
                "admin",
                "add",
                "root",
                "--role",
                "CsAdministrator",
                "--password",
                "rootpassword1",
                "--data",
            ])
            .arg(s.data())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        Env { s, http }
    }

    fn confab(&self, args: &[&str]) -> Output {
        confab()
            .args(args)
            .arg("--data")
            .arg(self.s.data())
            .env("CONFAB_ADMIN", "root")
            .env("CONFAB_ADMIN_PASSWORD", "rootpassword1")
            .env_remove("CONFAB_TOKEN")
            .output()
            .unwrap()
    }

    /// `confab shell -c SCRIPT` on the data directory.
    fn shell(&self, script: &str) -> (bool, String) {
        let o = self.confab(&["shell", "-c", script]);
        (o.status.success(), text(&o))
    }

    fn shell_ok(&self, script: &str) -> String {
        let (ok, out) = self.shell(script);
        assert!(ok, "{script}: {out}");
        out
    }

    /// `confab shell --server URL -c SCRIPT`: through the running server's REST API.
    fn remote(&self, script: &str) -> (bool, String) {
        let url = format!("http://127.0.0.1:{}", self.http);
        let o = confab()
            .args(["shell", "--server", &url, "-c", script])
            .env("CONFAB_ADMIN", "root")
            .env("CONFAB_ADMIN_PASSWORD", "rootpassword1")
            .env_remove("CONFAB_TOKEN")
            .output()
            .unwrap();
        (o.status.success(), text(&o))
    }

    /// A REST call as `user` (HTTP Basic with their SIP password, `pw-<user>`).
    fn rest(&self, method: &str, path: &str, user: &str, body: Option<Value>) -> (u16, Value) {
        self.rest_as(
            method,
            path,
            &format!("{user}@{DOMAIN}"),
            &format!("pw-{user}"),
            body,
        )
    }

    fn rest_as(
        &self,
        method: &str,
        path: &str,
        user: &str,
        password: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{path}", self.http);
        let auth = basic_auth(&format!("{user}:{password}"));
        let req = ureq::request(method, &url).set("Authorization", &auth);
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match r {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let o = self.confab(args);
        assert!(o.status.success(), "confab {args:?}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }
}

/// The value of `Name : value` in the shell's list output.
fn field<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn pins_by_admin_and_user_refusals_lockout_and_unlock() {
    let e = Env::start();
    e.shell_ok("Set-CsPinPolicy -MinPasswordLength 6 -MaximumLogonAttempts 3");
    e.shell_ok(
        "Set-CsUser -Identity sip:user0000@example.test -LineURI 'tel:+14255550100;ext=4100'",
    );

    // an administrator's PIN, and one made up by confab (shown once)
    let out = e.shell_ok("Set-CsClientPin -Identity sip:user0001@example.test -Pin 739155");
    assert_eq!(field(&out, "PinReset"), Some("True"), "{out}");
    let out = e.shell_ok("Set-CsClientPin -Identity sip:user0002@example.test");
    let made = field(&out, "Pin").unwrap().to_string();
    assert_eq!(made.len(), 6, "{out}");

    // the user's own PIN over REST, refusals naming the rule
    for (pin, says) in [
        ("73915", "MinPasswordLength"),
        ("444444", "AllowCommonPatterns"),
        ("234567", "AllowCommonPatterns"),
    ] {
        let (code, v) = e.rest(
            "PUT",
            "/api/v1/me/pin",
            "user0000",
            Some(json!({ "pin": pin })),
        );
        assert_eq!(code, 400, "{pin}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(says),
            "{pin}: {v}"
        );
    }
    e.shell_ok("Set-CsPinPolicy -MinPasswordLength 4");
    let (code, v) = e.rest(
        "PUT",
        "/api/v1/me/pin",
        "user0000",
        Some(json!({"pin": "4100"})),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("extension"), "{v}");
    let (code, v) = e.rest(
        "PUT",
        "/api/v1/me/pin",
        "user0000",
        Some(json!({"pin": "8260417"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["is_pin_set"], json!(true));
    let (code, _) = e.rest_as(
        "PUT",
        "/api/v1/me/pin",
        "user0000@example.test",
        "wrong",
        Some(json!({"pin": "1357"})),
    );
    assert_eq!(code, 401);
    let (code, v) = e.rest("GET", "/api/v1/me/pin", "user0000", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["is_pin_set"].clone(), v["is_locked_out"].clone()),
        (json!(true), json!(false))
    );

    // the PINs work as the attendant checks them (the user's policy decides the attempts)
    let store = Store::open(e.s.data()).unwrap();
    let policy = confab_admin::pins::pin_policy_for(&store, "user0000@example.test", None).unwrap();
    let max = confab_admin::pins::max_failures(&policy);
    assert_eq!(max, 3);
    let days = confab_admin::pins::lifetime_days(&policy);
    let check = |user: &str, pin: &str| {
        store
            .verify_client_pin(&format!("{user}@example.test"), pin, max, days, now())
            .unwrap()
    };
    assert_eq!(check("user0000", "8260417"), PinCheck::Valid);
    assert_eq!(check("user0001", "739155"), PinCheck::Valid);
    assert_eq!(check("user0002", &made), PinCheck::Valid);
    assert_eq!(
        store.user_by_number("4100").unwrap().map(|u| u.username),
        Some("user0000".into())
    );
    // three wrong PINs lock it; the right one no longer signs in
    for i in 1..=3 {
        assert_eq!(
            check("user0000", "1111111"),
            PinCheck::Wrong { failures: i }
        );
    }
    assert_eq!(check("user0000", "8260417"), PinCheck::LockedOut);
    // the administrator sees it through the running server, and unlocks it
    let (ok, out) = e.remote("Get-CsClientPinInfo -Identity sip:user0000@example.test");
    assert!(ok, "{out}");
    assert_eq!(field(&out, "IsLockedOut"), Some("True"), "{out}");
    assert_eq!(field(&out, "IsPinSet"), Some("True"), "{out}");
    assert!(!out.contains("8260417"));
    let (code, v) = e.rest("GET", "/api/v1/me/pin", "user0000", None);
    assert_eq!((code, v["is_locked_out"].clone()), (200, json!(true)));
    let (ok, out) = e.remote("Unlock-CsClientPin -Identity sip:user0000@example.test");
    assert!(ok, "{out}");
    let out = e.shell_ok("Get-CsClientPinInfo sip:user0000@example.test");
    assert_eq!(field(&out, "IsLockedOut"), Some("False"), "{out}");
    assert_eq!(check("user0000", "8260417"), PinCheck::Valid);
    // Lock-CsClientPin, then a new PIN from the user lifts it
    e.shell_ok("Lock-CsClientPin sip:user0001@example.test");
    assert_eq!(check("user0001", "739155"), PinCheck::LockedOut);
    let (code, v) = e.rest(
        "PUT",
        "/api/v1/me/pin",
        "user0001",
        Some(json!({"pin": "5082"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(check("user0001", "5082"), PinCheck::Valid);

    // a help desk member may lock and unlock but not create access numbers
    let o = e.confab(&[
        "admin",
        "add",
        "helper",
        "--role",
        "CsHelpDesk",
        "--password",
        "helperpassword1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let url = format!("http://127.0.0.1:{}", e.http);
    let helper = |script: &str| {
        let o = confab()
            .args(["shell", "--server", &url, "-c", script])
            .env("CONFAB_ADMIN", "helper")
            .env("CONFAB_ADMIN_PASSWORD", "helperpassword1")
            .env_remove("CONFAB_TOKEN")
            .output()
            .unwrap();
        (o.status.success(), text(&o))
    };
    let (ok, out) = helper("Lock-CsClientPin sip:user0002@example.test");
    assert!(ok, "{out}");
    let (ok, out) = helper(
        "New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+1555",
    );
    assert!(!ok && out.contains("CsAdministrator"), "{out}");

    // the audit log names every change, never a PIN
    let out = e.shell_ok("Get-CsAuditLog -Contains Pin");
    assert!(out.contains("Set-CsClientPin"), "{out}");
    assert!(out.contains("Unlock-CsClientPin"), "{out}");
    for pin in ["739155", "8260417", "5082", made.as_str()] {
        assert!(!out.contains(pin), "{pin} in {out}");
    }
}

#[test]
fn meetings_list_the_access_numbers_of_their_region() {
    let e = Env::start();
    e.shell_ok(
        r#"New-CsDialInConferencingAccessNumber -PrimaryUri sip:redmond@example.test -DisplayNumber "+1 (425) 555-0100" -LineUri tel:+14255550100 -Regions Redmond -PrimaryLanguage en-US -SecondaryLanguages fr-CA -Priority 1;
           New-CsDialInConferencingAccessNumber -PrimaryUri sip:redmond-toll@example.test -DisplayNumber "+1 (800) 555-0100" -LineUri tel:+18005550100 -Regions Redmond -Priority 0;
           New-CsDialInConferencingAccessNumber -PrimaryUri sip:dublin@example.test -DisplayNumber "+353 1 555 0100" -LineUri tel:+35315550100 -Regions Dublin -PrimaryLanguage en-GB;
           Set-CsDialPlan -DialinConferencingRegion Redmond;
           New-CsDialPlan -Identity Ireland -DialinConferencingRegion Dublin;
           Grant-CsDialPlan -Identity sip:user0001@example.test -PolicyName Ireland"#,
    );
    // refusals name the value
    let (ok, out) = e.shell("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+14255550100 -Regions Redmond");
    assert!(!ok && out.contains("sip:redmond@example.test"), "{out}");
    let (ok, out) = e.shell("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+14255550111 -PrimaryLanguage tlh-KX");
    assert!(!ok && out.contains("'tlh-KX'"), "{out}");
    let out = e.shell_ok("Get-CsDialInConferencingAccessNumber -Region Dublin");
    assert!(
        out.contains("sip:dublin@example.test") && !out.contains("redmond"),
        "{out}"
    );

    let m = e.json(&[
        "meeting",
        "create",
        "--organizer",
        "user0000",
        "--private",
        "--json",
    ]);
    let redmond = json!([
        {"uri": "sip:redmond-toll@example.test", "display_number": "+1 (800) 555-0100", "line_uri": "tel:+18005550100", "languages": ["en-US"]},
        {"uri": "sip:redmond@example.test", "display_number": "+1 (425) 555-0100", "line_uri": "tel:+14255550100", "languages": ["en-US", "fr-CA"]}
    ]);
    assert_eq!(m["dial_in"], redmond);
    assert!(m["conference_id"].is_string());
    let key = m["key"].as_str().unwrap().to_string();
    let shown = e.json(&["meeting", "show", &key, "--json"]);
    assert_eq!(shown["dial_in"], redmond);
    let o = e.confab(&["meeting", "show", &key]);
    let t = text(&o);
    assert!(
        t.contains("DialInNumbers   : +1 (800) 555-0100 (en-US); +1 (425) 555-0100 (en-US, fr-CA)"),
        "{t}"
    );
    // the organizer under the Ireland plan lists Dublin's number
    let m = e.json(&[
        "meeting",
        "create",
        "--organizer",
        "user0001",
        "--private",
        "--json",
    ]);
    assert_eq!(m["dial_in"][0]["display_number"], json!("+353 1 555 0100"));
    assert_eq!(m["dial_in"].as_array().unwrap().len(), 1);
    // and so does the running server's REST API
    let (code, v) = e.rest("GET", &format!("/api/v1/meetings/{key}"), "user0000", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["objects"][0]["DialIn"], redmond);
    let out = e.shell_ok(&format!("Get-CsMeeting -Identity {key}"));
    assert!(out.contains("+1 (800) 555-0100"), "{out}");
    // no dial-in conferencing in the organizer's policy: no numbers
    e.shell_ok("Set-CsConferencingPolicy -EnableDialInConferencing $false");
    let shown = e.json(&["meeting", "show", &key, "--json"]);
    assert_eq!(shown["dial_in"], json!([]));
}
