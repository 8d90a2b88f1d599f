//! New-/Get-/Remove-CsMeeting through the shell against a real store: the rules of creation
//! (CsMeetingConfiguration, a granted conferencing policy), RBAC with OU scopes, the audit
//! log, bad input.

use confab_admin::ExecError;
use confab_store::AuditFilter;
use serde_json::json;

mod common;
use common::{prop, run, session, store, SALES};

#[test]
fn new_get_remove() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let out = run(
        &mut sh,
        "New-CsMeeting -Organizer sip:alice@example.test -Private -Access Invited -Subject 'Budget' -Invitees @('sip:bob@example.test') -Presenters Everyone -PstnBypassLobby $false -EndTime 2099-01-01T10:00:00Z",
    );
    let m = &out.objects[0];
    let key = prop(m, "Identity").as_str().unwrap().to_string();
    assert_eq!(prop(m, "Kind"), json!("Private"));
    assert_eq!(prop(m, "Access"), json!("Invited"));
    assert_eq!(prop(m, "Subject"), json!("Budget"));
    assert_eq!(prop(m, "Presenters"), json!("Everyone"));
    assert_eq!(prop(m, "PstnBypassLobby"), json!(false));
    assert_eq!(prop(m, "Invitees"), json!(["bob@example.test"]));
    assert_eq!(prop(m, "EndTime"), json!("2099-01-01T10:00:00Z"));
    assert_eq!(
        prop(m, "Uri"),
        json!(format!(
            "sip:alice@example.test;gruu;opaque=app:conf:focus:id:{key}"
        ))
    );
    assert!(out.text.contains("ConferenceId"), "{}", out.text);

    // the default kind is assigned, and it stays the same
    let a1 = run(&mut sh, "New-CsMeeting -Organizer alice@example.test").objects;
    let a2 = run(
        &mut sh,
        "New-CsMeeting -Organizer alice@example.test -Assigned",
    );
    assert_eq!(prop(&a1[0], "Kind"), json!("Assigned"));
    assert_eq!(prop(&a1[0], "Identity"), prop(&a2.objects[0], "Identity"));
    assert!(a2
        .warnings
        .iter()
        .any(|w| w.contains("already has an assigned meeting")));

    assert_eq!(run(&mut sh, "Get-CsMeeting").objects.len(), 2);
    assert_eq!(
        run(&mut sh, "Get-CsMeeting -Organizer sip:bob@example.test")
            .objects
            .len(),
        0
    );
    let one = run(
        &mut sh,
        &format!("Get-CsMeeting -Identity {}", key.to_lowercase()),
    );
    assert_eq!(prop(&one.objects[0], "Identity"), json!(key));
    run(&mut sh, &format!("Remove-CsMeeting -Identity {key}"));
    let e = sh.run(&format!("Get-CsMeeting {key}")).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    // through the pipeline
    run(
        &mut sh,
        "Get-CsMeeting -Organizer alice@example.test | Remove-CsMeeting",
    );
    assert!(s.meetings(None).unwrap().is_empty());

    let audit = s
        .query_audit(&AuditFilter {
            contains: Some("CsMeeting".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.command.starts_with("New-CsMeeting") && e.success));
    assert!(audit
        .iter()
        .any(|e| e.command.starts_with("Remove-CsMeeting") && e.success));
    assert!(
        !audit.iter().any(|e| e.command.starts_with("Get-CsMeeting")),
        "reads are not audited"
    );
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    for (cmd, needle) in [
        (
            "New-CsMeeting -Organizer alice@example.test -Acess Everyone",
            "'Acess'",
        ),
        (
            "New-CsMeeting -Organizer alice@example.test -Access Public",
            "Locked, Invited, SameEnterprise, Everyone",
        ),
        (
            "New-CsMeeting -Organizer alice@example.test -Presenters All",
            "None, Company, Everyone",
        ),
        (
            "New-CsMeeting -Organizer zed@example.test",
            "zed@example.test",
        ),
        (
            "New-CsMeeting -Organizer alice@example.test -Private -Assigned",
            "-Private or -Assigned",
        ),
        (
            "New-CsMeeting -Organizer alice@example.test -EndTime tomorrow",
            "RFC 3339",
        ),
        ("New-CsMeeting -Subject x", "Organizer"),
        ("Remove-CsMeeting -Identity NOSUCH99", "not found"),
    ] {
        let e = sh.run(cmd).unwrap_err().to_string();
        assert!(e.contains(needle), "{cmd}: {e}");
    }
    let e = sh
        .run("New-CsMeeting -Organizer alice@example.test -Acess Everyone")
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::UnknownParameter { name, suggestion: Some(sg), .. } if name == "Acess" && sg == "Access"),
        "{e:?}"
    );
    assert!(s.meetings(None).unwrap().is_empty());
}

#[test]
fn cookbook_lines_and_granted_policies_take_effect() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(&mut sh, "Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true");
    let m = run(&mut sh, "New-CsMeeting -Organizer alice@example.test").objects;
    assert_eq!(prop(&m[0], "Kind"), json!("Private"));
    run(
        &mut sh,
        "Set-CsMeetingConfiguration -EnableAssignedConferenceType $false",
    );
    let e = sh
        .run("New-CsMeeting -Organizer alice@example.test -Assigned")
        .unwrap_err();
    assert!(
        e.to_string().contains("EnableAssignedConferenceType"),
        "{e}"
    );
    run(
        &mut sh,
        "Set-CsMeetingConfiguration -DesignateAsPresenter None -PstnCallersBypassLobby $false",
    );
    let m = run(&mut sh, "New-CsMeeting -Organizer alice@example.test").objects;
    assert_eq!(prop(&m[0], "Presenters"), json!("None"));
    assert_eq!(prop(&m[0], "PstnBypassLobby"), json!(false));

    run(&mut sh, "New-CsConferencingPolicy -Identity NoAnonymous -AllowAnonymousParticipantsInMeetings $false");
    run(
        &mut sh,
        "Grant-CsConferencingPolicy -Identity sip:alice@example.test -PolicyName NoAnonymous",
    );
    let a = run(
        &mut sh,
        "New-CsMeeting -Organizer alice@example.test -Access Everyone",
    );
    assert_eq!(prop(&a.objects[0], "Access"), json!("Everyone"));
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("anonymous callers will be refused")),
        "{:?}",
        a.warnings
    );
    let b = run(
        &mut sh,
        "New-CsMeeting -Organizer bob@example.test -Access Everyone",
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn roles_and_user_scopes() {
    let (_d, s) = store();
    let mut root = session(&s, "root");
    run(
        &mut root,
        &format!(
            r#"New-CsAdminRole -Identity SalesAdmins -Template CsUserAdministrator -UserScopes "OU:{SALES}""#
        ),
    );
    s.add_admin("sales", "password1234", &["SalesAdmins".into()])
        .unwrap();
    s.add_admin(
        "viewer",
        "password1234",
        &["CsViewOnlyAdministrator".into()],
    )
    .unwrap();
    s.add_admin("voice", "password1234", &["CsVoiceAdministrator".into()])
        .unwrap();
    let bobs = run(
        &mut root,
        "New-CsMeeting -Organizer bob@example.test -Private",
    )
    .objects;
    let bob_key = prop(&bobs[0], "Identity").as_str().unwrap().to_string();

    let mut sales = session(&s, "sales");
    run(
        &mut sales,
        "New-CsMeeting -Organizer alice@example.test -Private",
    );
    let e = sales
        .run("New-CsMeeting -Organizer bob@example.test")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    let e = sales
        .run(&format!("Remove-CsMeeting -Identity {bob_key}"))
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    // a script refused for one organizer changes nothing for another
    let e = sales
        .run(&format!(
            "New-CsMeeting -Organizer alice@example.test; Remove-CsMeeting {bob_key}"
        ))
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    assert_eq!(s.meetings(Some("alice@example.test")).unwrap().len(), 1);
    // listing shows only meetings of organizers in scope
    let seen = run(&mut sales, "Get-CsMeeting").objects;
    assert_eq!(seen.len(), 1);
    assert_eq!(prop(&seen[0], "Organizer"), json!("sip:alice@example.test"));

    let mut viewer = session(&s, "viewer");
    assert_eq!(run(&mut viewer, "Get-CsMeeting").objects.len(), 2);
    let e = viewer
        .run("New-CsMeeting -Organizer bob@example.test")
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Denied { allowed_by, .. } if allowed_by.iter().any(|r| r == "CsUserAdministrator")),
        "{e}"
    );
    let mut voice = session(&s, "voice");
    assert!(voice.run("Get-CsMeeting").is_ok());
    assert!(matches!(
        voice.run(&format!("Remove-CsMeeting {bob_key}")),
        Err(ExecError::Denied { .. })
    ));
    assert_eq!(s.meetings(None).unwrap().len(), 2);
    let refused = s
        .query_audit(&AuditFilter {
            admin: Some("sales".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        refused
            .iter()
            .any(|e| !e.success && e.result.contains("refused")),
        "{refused:?}"
    );
}
