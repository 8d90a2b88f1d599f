//! Dial-in administration through the shell against a real store: client PINs under
//! CsPinPolicy (Set-/Get-CsClientPinInfo/Lock-/Unlock-CsClientPin), users' LineURI,
//! access numbers (New-/Get-/Set-CsDialInConferencingAccessNumber) and the numbers a
//! meeting lists by its organizer's dial plan; RBAC with OU scopes; the audit log.

use confab_admin::{principal_for, ExecError, Session};
use confab_store::{AuditFilter, NewUser, PinCheck};
use serde_json::{json, Value};

mod common;
use common::{prop, run, session, store, SALES};

fn fails(sess: &mut Session, src: &str) -> ExecError {
    match sess.run(src) {
        Ok(o) => panic!("{src}\n  succeeded: {}", o.text),
        Err(e) => e,
    }
}

const NOW: i64 = 1_900_000_000;

#[test]
fn set_lock_unlock_and_info() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let info = run(
        &mut sh,
        "Get-CsClientPinInfo -Identity sip:alice@example.test",
    );
    assert_eq!(prop(&info.objects[0], "IsPinSet"), json!(false));
    assert_eq!(prop(&info.objects[0], "LastPinChangeTime"), Value::Null);

    let out = run(
        &mut sh,
        "Set-CsClientPin -Identity sip:alice@example.test -Pin 0739155",
    );
    assert_eq!(
        prop(&out.objects[0], "Pin"),
        json!("0739155"),
        "a leading zero stays"
    );
    assert_eq!(prop(&out.objects[0], "PinReset"), json!(true));
    assert_eq!(
        s.verify_client_pin("alice@example.test", "0739155", 10, 0, NOW)
            .unwrap(),
        PinCheck::Valid
    );
    let info = run(&mut sh, "Get-CsClientPinInfo sip:alice@example.test");
    let o = &info.objects[0];
    assert_eq!(prop(o, "IsPinSet"), json!(true));
    assert_eq!(prop(o, "IsLockedOut"), json!(false));
    assert!(prop(o, "LastPinChangeTime").is_string());
    assert_eq!(prop(o, "PinExpirationTime"), Value::Null, "PINLifetime 0");
    assert!(
        !info.text.contains("0739155"),
        "never the PIN: {}",
        info.text
    );

    run(&mut sh, "Lock-CsClientPin -Identity alice@example.test");
    let info = run(&mut sh, "Get-CsClientPinInfo alice@example.test");
    assert_eq!(prop(&info.objects[0], "IsLockedOut"), json!(true));
    assert_eq!(
        s.verify_client_pin("alice@example.test", "0739155", 10, 0, NOW)
            .unwrap(),
        PinCheck::LockedOut
    );
    run(&mut sh, "Unlock-CsClientPin -Identity alice@example.test");
    assert!(
        !s.client_pin_info("alice@example.test")
            .unwrap()
            .is_locked_out
    );

    // without -Pin: a random one that the policy accepts, shown once
    let out = run(&mut sh, "Set-CsClientPin -Identity bob@example.test");
    let pin = prop(&out.objects[0], "Pin").as_str().unwrap().to_string();
    assert_eq!(pin.len(), 5, "MinPasswordLength");
    assert_eq!(
        s.verify_client_pin("bob@example.test", &pin, 10, 0, NOW)
            .unwrap(),
        PinCheck::Valid
    );
    // a user without a PIN cannot be locked; an unknown user is named
    s.add_user(&NewUser {
        username: "carol",
        domain: "example.test",
        display_name: "",
        password: "pw-secret",
    })
    .unwrap();
    let e = fails(&mut sh, "Lock-CsClientPin carol@example.test");
    assert!(e.to_string().contains("has no dial-in PIN"), "{e}");
    let e = fails(&mut sh, "Set-CsClientPin nobody@example.test -Pin 73915");
    assert!(e.to_string().contains("nobody@example.test"), "{e}");

    // the audit log has the commands, never the PIN
    let audit = s.query_audit(&AuditFilter::default()).unwrap();
    let commands: Vec<&str> = audit.iter().map(|a| a.command.as_str()).collect();
    assert!(
        commands.iter().any(
            |c| c.starts_with("Set-CsClientPin -Identity sip:alice@example.test -Pin ********")
        ),
        "{commands:?}"
    );
    assert!(commands.iter().any(|c| c.starts_with("Lock-CsClientPin")));
    assert!(commands.iter().any(|c| c.starts_with("Unlock-CsClientPin")));
    assert!(
        !audit
            .iter()
            .any(|a| a.command.contains("0739155") || a.result.contains(&pin)),
        "{audit:?}"
    );
}

#[test]
fn pin_policy_rules_are_named_and_change_nothing() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        "Set-CsUser -Identity alice@example.test -LineURI 'tel:+14255550100;ext=4242'",
    );
    for (pin, says) in [
        ("1234", "MinPasswordLength"),
        ("12345", "AllowCommonPatterns"),
        ("99999", "AllowCommonPatterns"),
        ("14255550100", "extension or phone number"),
        ("'12a45'", "digits 0-9"),
    ] {
        let e = fails(
            &mut sh,
            &format!("Set-CsClientPin -Identity alice@example.test -Pin {pin}"),
        );
        assert!(matches!(e, ExecError::BadValue { .. }), "{pin}: {e}");
        assert!(e.to_string().contains(says), "{pin}: {e}");
    }
    assert!(!s.client_pin_info("alice@example.test").unwrap().is_pin_set);

    // a granted policy: longer PINs, history, expiry
    run(
        &mut sh,
        "New-CsPinPolicy -Identity Strict -MinPasswordLength 8 -PINHistoryCount 2 -PINLifetime 30 -AllowCommonPatterns $true",
    );
    run(
        &mut sh,
        "Grant-CsPinPolicy -Identity alice@example.test -PolicyName Strict",
    );
    let e = fails(&mut sh, "Set-CsClientPin alice@example.test -Pin 7391552");
    assert!(e.to_string().contains("at least 8"), "{e}");
    run(&mut sh, "Set-CsClientPin alice@example.test -Pin 12345678");
    run(&mut sh, "Set-CsClientPin alice@example.test -Pin 87654321");
    let e = fails(&mut sh, "Set-CsClientPin alice@example.test -Pin 12345678");
    assert!(e.to_string().contains("PINHistoryCount"), "{e}");
    let info = run(&mut sh, "Get-CsClientPinInfo alice@example.test");
    assert!(prop(&info.objects[0], "PinExpirationTime").is_string());
    // the audit shows the policy's parameters (only -Pin is hidden)
    let audit = s.query_audit(&AuditFilter::default()).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.command.contains("-PINHistoryCount 2")),
        "{audit:?}"
    );
    // bob keeps the global policy
    let e = fails(&mut sh, "Set-CsClientPin bob@example.test -Pin 12345");
    assert!(e.to_string().contains("AllowCommonPatterns"), "{e}");
}

#[test]
fn line_uri_on_users() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        "Set-CsUser -Identity alice@example.test -LineURI 'TEL:+14255550100;EXT=100'",
    );
    let u = run(&mut sh, "Get-CsUser alice@example.test");
    assert_eq!(
        prop(&u.objects[0], "LineURI"),
        json!("tel:+14255550100;ext=100")
    );
    assert_eq!(
        s.user_by_number("100").unwrap().map(|u| u.username),
        Some("alice".into())
    );
    let e = fails(
        &mut sh,
        "Set-CsUser bob@example.test -LineURI 'tel:+14255550100;ext=100'",
    );
    assert!(e.to_string().contains("alice@example.test"), "{e}");
    let e = fails(&mut sh, "Set-CsUser bob@example.test -LineURI 4255550100");
    assert!(matches!(e, ExecError::BadValue { .. }), "{e}");
    assert!(s
        .get_user("bob", "example.test")
        .unwrap()
        .unwrap()
        .line_uri
        .is_none());
    run(&mut sh, "Set-CsUser alice@example.test -LineURI $null");
    assert!(s.user_by_number("100").unwrap().is_none());
}

#[test]
fn access_numbers_and_the_numbers_a_meeting_lists() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let out = run(
        &mut sh,
        r#"New-CsDialInConferencingAccessNumber -PrimaryUri sip:Redmond@example.test -DisplayNumber "+1 (425) 555-0100" -LineUri tel:+14255550100 -Regions "Redmond" -PrimaryLanguage en-us -SecondaryLanguages @("fr-FR","de-DE") -Priority 2"#,
    );
    let n = &out.objects[0];
    assert_eq!(prop(n, "Identity"), json!("sip:redmond@example.test"));
    assert_eq!(prop(n, "PrimaryLanguage"), json!("en-US"));
    assert_eq!(prop(n, "SecondaryLanguages"), json!(["fr-FR", "de-DE"]));
    run(
        &mut sh,
        r#"New-CsDialInConferencingAccessNumber -Identity sip:redmond2@example.test -DisplayNumber "+1 (425) 555-0199" -LineUri tel:+14255550199 -Regions Redmond,Seattle -Priority 1"#,
    );
    run(
        &mut sh,
        r#"New-CsDialInConferencingAccessNumber sip:dublin@example.test -DisplayNumber "+353 1 555 0100" -LineUri tel:+35315550100 -Regions Dublin -PrimaryLanguage en-GB"#,
    );
    // refusals name the value and store nothing
    for (cmd, says) in [
        ("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri 14255550111 -Regions Redmond", "tel:+"),
        ("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri 'tel:+1425;ext=1' -Regions Redmond", "extension"),
        ("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+14255550100 -Regions Redmond", "sip:redmond@example.test"),
        ("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+14255550111 -PrimaryLanguage xx-XX", "'xx-XX'"),
        ("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+14255550111 -SecondaryLanguages en-US,tlh", "'tlh'"),
        ("New-CsDialInConferencingAccessNumber -PrimaryUri 'not a uri' -LineUri tel:+14255550111", "SIP URI"),
        ("New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -Regions Redmond", "LineUri"),
        ("New-CsDialInConferencingAccessNumber -LineUri tel:+14255550111", "PrimaryUri"),
        ("Set-CsDialInConferencingAccessNumber -Identity sip:dublin@example.test -LineUri tel:+14255550199", "sip:redmond2@example.test"),
    ] {
        let e = fails(&mut sh, cmd);
        assert!(e.to_string().contains(says), "{cmd}: {e}");
    }
    assert_eq!(
        run(&mut sh, "Get-CsDialInConferencingAccessNumber")
            .objects
            .len(),
        3
    );
    // Lync's -Region filter, by Priority
    let redmond = run(
        &mut sh,
        "Get-CsDialInConferencingAccessNumber -Region redmond",
    )
    .objects;
    let ids: Vec<Value> = redmond.iter().map(|o| prop(o, "Identity")).collect();
    assert_eq!(
        ids,
        [
            json!("sip:redmond2@example.test"),
            json!("sip:redmond@example.test")
        ]
    );
    // Set- keeps its own number
    run(
        &mut sh,
        "Set-CsDialInConferencingAccessNumber -Identity sip:dublin@example.test -LineUri tel:+35315550100 -DisplayName Dublin",
    );

    // a meeting lists the numbers of its organizer's dial plan's region
    let m = run(&mut sh, "New-CsMeeting -Organizer alice@example.test").objects;
    assert_eq!(prop(&m[0], "DialInNumbers"), json!([]), "no region yet");
    run(&mut sh, "Set-CsDialPlan -DialinConferencingRegion Redmond");
    run(
        &mut sh,
        "New-CsDialPlan -Identity Ireland -DialinConferencingRegion Dublin",
    );
    run(
        &mut sh,
        "Grant-CsDialPlan -Identity bob@example.test -PolicyName Ireland",
    );
    let m = run(&mut sh, "Get-CsMeeting -Organizer alice@example.test").objects;
    assert_eq!(
        prop(&m[0], "DialInNumbers"),
        json!(["+1 (425) 555-0199", "+1 (425) 555-0100"])
    );
    let numbers = confab_admin::meetings::dial_in_numbers(&s, "alice@example.test").unwrap();
    assert_eq!(numbers[1].line_uri, "tel:+14255550100");
    assert_eq!(numbers[1].languages, ["en-US", "fr-FR", "de-DE"]);
    let bobs = run(&mut sh, "New-CsMeeting -Organizer bob@example.test").objects;
    assert_eq!(prop(&bobs[0], "DialInNumbers"), json!(["+353 1 555 0100"]));
    // no dial-in conferencing for the organizer: no numbers
    run(
        &mut sh,
        "Set-CsConferencingPolicy -EnableDialInConferencing $false",
    );
    assert!(
        confab_admin::meetings::dial_in_numbers(&s, "alice@example.test")
            .unwrap()
            .is_empty()
    );
    run(
        &mut sh,
        "Remove-CsDialInConferencingAccessNumber -Identity sip:dublin@example.test",
    );
    assert_eq!(
        run(&mut sh, "Get-CsDialInConferencingAccessNumber")
            .objects
            .len(),
        2
    );
}

#[test]
fn roles_and_user_scopes() {
    let (_d, s) = store();
    let mut root = session(&s, "root");
    run(&mut root, "Set-CsClientPin alice@example.test -Pin 73915");
    run(&mut root, "Set-CsClientPin bob@example.test -Pin 73915");
    s.add_admin("helpdesk", "password1234", &["CsHelpDesk".into()])
        .unwrap();
    s.add_admin(
        "viewer",
        "password1234",
        &["CsViewOnlyAdministrator".into()],
    )
    .unwrap();
    run(
        &mut root,
        &format!(
            r#"New-CsAdminRole -Identity SalesHelp -Template CsHelpDesk -UserScopes "OU:{SALES}""#
        ),
    );
    s.add_admin("saleshelp", "password1234", &["SalesHelp".into()])
        .unwrap();

    let mut hd = session(&s, "helpdesk");
    run(&mut hd, "Lock-CsClientPin bob@example.test");
    run(&mut hd, "Unlock-CsClientPin bob@example.test");
    run(&mut hd, "Set-CsClientPin bob@example.test -Pin 24681");
    run(&mut hd, "Get-CsClientPinInfo bob@example.test");
    run(&mut hd, "Get-CsDialInConferencingAccessNumber");
    let e = fails(
        &mut hd,
        "New-CsDialInConferencingAccessNumber -PrimaryUri sip:x@example.test -LineUri tel:+1555",
    );
    assert!(matches!(e, ExecError::Denied { .. }), "{e}");
    let e = fails(&mut hd, "Set-CsPinPolicy -MinPasswordLength 4");
    assert!(matches!(e, ExecError::Denied { .. }), "{e}");

    let mut viewer = session(&s, "viewer");
    run(&mut viewer, "Get-CsClientPinInfo bob@example.test");
    let e = fails(&mut viewer, "Unlock-CsClientPin bob@example.test");
    assert!(
        matches!(&e, ExecError::Denied { allowed_by, .. } if allowed_by.iter().any(|r| r == "CsHelpDesk")),
        "{e}"
    );

    // OU scopes: alice (Sales) yes, bob (no OU) no, and a refused script changes nothing
    let mut sh = session(&s, "saleshelp");
    run(&mut sh, "Lock-CsClientPin alice@example.test");
    let e = fails(&mut sh, "Unlock-CsClientPin bob@example.test");
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    let e = fails(
        &mut sh,
        "Unlock-CsClientPin alice@example.test; Lock-CsClientPin bob@example.test",
    );
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    assert!(
        s.client_pin_info("alice@example.test")
            .unwrap()
            .is_locked_out
    );
    assert!(!s.client_pin_info("bob@example.test").unwrap().is_locked_out);
    let e = fails(&mut sh, "Get-CsClientPinInfo bob@example.test");
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
}

#[test]
fn imported_access_numbers_are_checked_too() {
    let (d, s) = store();
    let export = d.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    let a = s.get_admin("root").unwrap().unwrap();
    let mut sh = Session::new(&s, principal_for(&s, &a).unwrap(), "test", "example.test")
        .with_export_dir(&export);
    run(
        &mut sh,
        "New-CsDialInConferencingAccessNumber -PrimaryUri sip:dialin@example.test -LineUri tel:+14255550100 -Regions Redmond",
    );
    run(&mut sh, "Export-CsConfiguration -FileName conf.json");
    // the file as written imports again
    run(&mut sh, "Import-CsConfiguration -FileName conf.json");
    let text = std::fs::read_to_string(export.join("conf.json")).unwrap();
    let bad = text.replace("tel:+14255550100", "555-0100");
    assert_ne!(bad, text);
    std::fs::write(export.join("bad.json"), bad).unwrap();
    let e = fails(&mut sh, "Import-CsConfiguration -FileName bad.json");
    assert!(e.to_string().contains("555-0100"), "{e}");
    let n = run(&mut sh, "Get-CsDialInConferencingAccessNumber").objects;
    assert_eq!(prop(&n[0], "LineUri"), json!("tel:+14255550100"));
}
