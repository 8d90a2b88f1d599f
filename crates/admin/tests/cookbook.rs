//! The security recipes of the Lync Server 2013 cookbook, run verbatim through the shell
//! against a real store, each with its effect checked; RBAC and bad input.

use confab_admin::object::Obj;
use confab_admin::{principal_for, ExecError, Session};
use confab_store::{AuditFilter, Store};
use serde_json::{json, Value};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.seed_users("example.test", "user", 3, "pw-").unwrap();
    s.add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    (dir, s)
}

fn session<'a>(s: &'a Store, admin: &str) -> Session<'a> {
    let a = s.get_admin(admin).unwrap().unwrap();
    Session::new(s, principal_for(s, &a).unwrap(), "test", "example.test")
}

fn run(sess: &mut Session, src: &str) -> confab_admin::Output {
    sess.run(src)
        .unwrap_or_else(|e| panic!("{src}\n  failed: {e}"))
}

fn prop(objs: &[Obj], name: &str) -> Value {
    objs[0]
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {objs:?}"))
}

fn values(objs: &[Obj]) -> Vec<String> {
    objs.iter()
        .map(|o| match o {
            Obj::Value(v) => v.as_str().unwrap_or_default().to_string(),
            other => panic!("not a value: {other:?}"),
        })
        .collect()
}

#[test]
fn admin_role_recipes() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        "New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator",
    );
    let out = run(
        &mut sh,
        "Get-CsAdminRole CSUserModifier | Select-Object –ExpandProperty cmdlets | fl",
    );
    assert!(
        out.text.contains("Get-CsUser\n") && !out.text.contains("Set-CsUser"),
        "{}",
        out.text
    );
    let cmdlets = |sh: &mut Session| {
        values(
            &run(
                sh,
                "Get-CsAdminRole CsUserModifier | Select-Object -ExpandProperty Cmdlets",
            )
            .objects,
        )
    };
    assert!(cmdlets(&mut sh).contains(&"Get-CsVoiceRoutingPolicy".to_string()));

    run(
        &mut sh,
        r#"Set-CsAdminRole -Identity CsUserModifier -Cmdlets @{add="Set-CsUser"}"#,
    );
    assert!(cmdlets(&mut sh).contains(&"Set-CsUser".to_string()));

    run(
        &mut sh,
        r#"Set-CsAdminRole -Identity CsUserModifier –Cmdlets @{remove="Get-CSVoiceRoutingPolicy","Get-CSVoiceTestConfiguration"}"#,
    );
    let c = cmdlets(&mut sh);
    assert!(
        !c.iter()
            .any(|x| x == "Get-CsVoiceRoutingPolicy" || x == "Get-CsVoiceTestConfiguration"),
        "{c:?}"
    );
    assert!(c.contains(&"Set-CsUser".to_string()) && c.contains(&"Get-CsUser".to_string()));

    // The book's next line creates the same role again: Lync refuses, and so do we.
    let e = sh.run(r#"New-CsAdminRole -Identity CSUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="set-CsUser"}"#).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    // Under a fresh name it works and the added cmdlet is canonicalised.
    run(
        &mut sh,
        r#"New-CsAdminRole -Identity CSUserModifier2 -Template CsViewOnlyAdministrator -Cmdlets @{add="set-CsUser"}"#,
    );
    assert!(values(
        &run(
            &mut sh,
            "Get-CsAdminRole CsUserModifier2 | Select-Object -ExpandProperty Cmdlets"
        )
        .objects
    )
    .contains(&"Set-CsUser".to_string()));

    // standard roles are fixed
    let e = sh
        .run(r#"Set-CsAdminRole -Identity CsHelpDesk -Cmdlets @{add="Set-CsUser"}"#)
        .unwrap_err();
    assert!(e.to_string().contains("standard role"), "{e}");
    assert!(sh.run("Remove-CsAdminRole CsAdministrator").is_err());
    let all = run(&mut sh, "Get-CsAdminRole").objects;
    assert_eq!(
        all.iter()
            .filter(|r| r.get("IsStandardRole") == Some(&json!(true)))
            .count(),
        11
    );
}

#[test]
fn meeting_and_conferencing_recipes() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let out = run(&mut sh, "Get-CsMeetingConfiguration");
    assert_eq!(prop(&out.objects, "Identity"), json!("Global"));
    assert_eq!(prop(&out.objects, "PstnCallersBypassLobby"), json!(true));
    assert!(
        out.text.contains("PstnCallersBypassLobby") && out.text.contains(": True"),
        "{}",
        out.text
    );

    run(
        &mut sh,
        "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
    );
    assert_eq!(
        prop(
            &run(&mut sh, "Get-CsMeetingConfiguration").objects,
            "PstnCallersBypassLobby"
        ),
        json!(false)
    );

    run(&mut sh, "Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true");
    let m = run(&mut sh, "Get-CsMeetingConfiguration -Identity global").objects;
    assert_eq!(prop(&m, "AssignedConferenceTypeByDefault"), json!(false));
    assert_eq!(prop(&m, "EnableAssignedConferenceType"), json!(true));

    run(
        &mut sh,
        r#".\New-CsClonedPolicy.ps1 -SourcePolicyName global -TargetPolicyName "DefaultConferencing" -PolicyType ConferencingPolicy"#,
    );
    let p = run(
        &mut sh,
        "Get-CsConferencingPolicy -Identity DefaultConferencing",
    )
    .objects;
    assert_eq!(prop(&p, "Identity"), json!("Tag:DefaultConferencing"));
    assert_eq!(prop(&p, "MaxMeetingSize"), json!(250));
    run(&mut sh, "New-CsClonedPolicy -SourcePolicyName DefaultConferencing -TargetPolicyName Copy2 -PolicyType CsConferencingPolicy");

    run(&mut sh, "Get-CsConferencingConfiguration | Set-CsConferencingConfiguration -ClientMediaPortRangeEnabled $True");
    assert_eq!(
        prop(
            &run(&mut sh, "Get-CsConferencingConfiguration").objects,
            "ClientMediaPortRangeEnabled"
        ),
        json!(true)
    );
}

#[test]
fn web_service_server_application_filter_and_client_policy_recipes() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        r#"$cert = New-CsWebTrustedCACertificate -Thumbprint "7a06f5b75287f17d4596118418b77004b4cd4d92" -CAStore TrustedRootCA"#,
    );
    run(
        &mut sh,
        "Set-CsWebServiceConfiguration -TrustedCACerts @{Add=$cert}",
    );
    let w = run(&mut sh, "Get-CsWebServiceConfiguration");
    let certs = prop(&w.objects, "TrustedCACerts");
    assert_eq!(
        certs[0]["Thumbprint"],
        json!("7A06F5B75287F17D4596118418B77004B4CD4D92")
    );
    assert_eq!(certs[0]["CAStore"], json!("TrustedRootCA"));
    assert!(
        w.text.contains("7A06F5B75287F17D4596118418B77004B4CD4D92"),
        "{}",
        w.text
    );

    let apps = run(&mut sh, "Get-CsServerApplication").objects;
    assert!(
        apps.iter()
            .any(|a| a.identity().unwrap().ends_with("/IIMFilter")),
        "{apps:?}"
    );

    run(
        &mut sh,
        r#"Set-CsFileTransferFilterConfiguration -Identity global -Extensions @{Add=".jpg"}"#,
    );
    let ext = values(&run(&mut sh, "Get-CsFileTransferFilterConfiguration -Identity global | Select-Object –ExpandProperty Extensions").objects);
    assert!(ext.contains(&".jpg".to_string()) && ext.contains(&".exe".to_string()));

    run(
        &mut sh,
        "Set-CsClientPolicy -Identity global -DisableRTFIm $true",
    );
    assert_eq!(
        prop(
            &run(&mut sh, "Get-CsClientPolicy global").objects,
            "DisableRTFIm"
        ),
        json!(true)
    );
}

#[test]
fn users() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let u = run(&mut sh, "Get-CsUser -Identity sip:user0001@example.test").objects;
    assert_eq!(prop(&u, "Enabled"), json!(true));
    run(
        &mut sh,
        "Disable-CsUser -Identity sip:user0001@example.test",
    );
    assert!(
        !s.get_user("user0001", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    run(&mut sh, "Enable-CsUser user0001@example.test");
    assert!(
        s.get_user("user0001", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    run(
        &mut sh,
        "Set-CsUser -Identity sip:user0002@example.test -Enabled $false",
    );
    assert!(
        !s.get_user("user0002", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    assert_eq!(run(&mut sh, "Get-CsUser").objects.len(), 3);
    run(&mut sh, "New-CsClonedPolicy -SourcePolicyName global -TargetPolicyName Sales -PolicyType ClientPolicy; Grant-CsClientPolicy -Identity user0001@example.test -PolicyName Sales");
    assert_eq!(
        prop(
            &run(&mut sh, "Get-CsUser user0001@example.test").objects,
            "ClientPolicy"
        ),
        json!("Sales")
    );
    let e = sh
        .run("Get-CsUser -Identity sip:nobody@example.test")
        .unwrap_err();
    assert!(e.to_string().contains("nobody"), "{e}");
}

#[test]
fn a_custom_role_may_set_users_but_not_meeting_configuration() {
    let (_d, s) = store();
    let mut root = session(&s, "root");
    run(
        &mut root,
        r#"New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="Set-CsUser"}"#,
    );
    s.add_admin("helpdesk", "helpdeskpass1", &["CsUserModifier".into()])
        .unwrap();
    let mut hd = session(&s, "helpdesk");
    run(
        &mut hd,
        "Set-CsUser -Identity sip:user0001@example.test -Enabled $false",
    );
    assert!(
        !s.get_user("user0001", "example.test")
            .unwrap()
            .unwrap()
            .enabled
    );
    run(&mut hd, "Get-CsMeetingConfiguration");
    let e = hd
        .run("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false")
        .unwrap_err();
    match &e {
        ExecError::Denied { allowed_by, .. } => {
            assert!(allowed_by.contains(&"CsAdministrator".to_string()), "{e}")
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("CsAdministrator"));
    assert_eq!(
        prop(
            &run(&mut root, "Get-CsMeetingConfiguration").objects,
            "PstnCallersBypassLobby"
        ),
        json!(true),
        "nothing changed"
    );
    // a denied command in a script stops the whole script before anything runs
    let e = hd.run("Set-CsUser -Identity sip:user0002@example.test -Enabled $false; Set-CsMeetingConfiguration -PstnCallersBypassLobby $false").unwrap_err();
    assert!(matches!(e, ExecError::Denied { .. }));
    assert!(
        s.get_user("user0002", "example.test")
            .unwrap()
            .unwrap()
            .enabled,
        "first statement did not run either"
    );
}

#[test]
fn site_scoped_role() {
    let (_d, s) = store();
    let mut root = session(&s, "root");
    run(&mut root, "New-CsMeetingConfiguration -Identity site:Redmond; New-CsMeetingConfiguration -Identity site:Dublin");
    run(
        &mut root,
        r#"New-CsAdminRole -Identity RedmondAdmin -Template CsAdministrator -ConfigScopes "site:Redmond""#,
    );
    s.add_admin("redmond", "redmondpass1", &["RedmondAdmin".into()])
        .unwrap();
    let mut r = session(&s, "redmond");
    run(
        &mut r,
        "Set-CsMeetingConfiguration -Identity site:Redmond -PstnCallersBypassLobby $false",
    );
    assert!(matches!(
        r.run("Set-CsMeetingConfiguration -Identity site:Dublin -PstnCallersBypassLobby $false"),
        Err(ExecError::OutOfScope { .. })
    ));
    assert!(
        matches!(
            r.run("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false"),
            Err(ExecError::OutOfScope { .. })
        ),
        "Global is out of scope"
    );
}

#[test]
fn bad_input_is_rejected_with_its_name_and_changes_nothing() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let before = run(&mut sh, "Get-CsMeetingConfiguration").objects;
    let cases: &[(&str, &str)] = &[
        (
            "Set-CsMeetingConfig -PstnCallersBypassLobby $false",
            "Set-CsMeetingConfig",
        ),
        (
            "Set-CsMeetingConfiguration -PstnCallersBypassLobbyX $false",
            "PstnCallersBypassLobbyX",
        ),
        (
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby maybe",
            "System.Boolean",
        ),
        (
            "Set-CsMeetingConfiguration -DesignateAsPresenter Somebody",
            "None, Company, Everyone",
        ),
        (
            "Set-CsMeetingConfiguration -Identity Redmond -PstnCallersBypassLobby $false",
            "not a scope",
        ),
        (
            "Set-CsMeetingConfiguration -Identity site:Nowhere -PstnCallersBypassLobby $false",
            "Cannot find",
        ),
        (
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby \"$false",
            "unterminated string",
        ),
        (
            "Set-CsConferencingConfiguration -MaxContentStorageMb 5000",
            "range",
        ),
        ("New-CsAdminRole -Identity X", "Template"),
        (
            "New-CsAdminRole -Identity X -Template CsNobody",
            "not a built-in role",
        ),
        (
            r#"Set-CsAdminRole -Identity CsHelpDesk -Cmdlets @{add="Set-CsUserz"}"#,
            "Set-CsUserz",
        ),
        (
            "$x = Get-CsUser; Set-CsMeetingConfiguration -PstnCallersBypassLobby $false; Frob-It",
            "Frob-It",
        ),
    ];
    for (src, needle) in cases {
        let e = sh.run(src).expect_err(src);
        assert!(e.to_string().contains(needle), "{src}: {e}");
    }
    let e = sh
        .run("Set-CsMeetingConfiguration -PstnCallersBypassLobbi $false")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Did you mean -PstnCallersBypassLobby"),
        "{e}"
    );
    let e = sh.run("Get-CsMeetingConfigurtion").unwrap_err();
    assert!(e.to_string().contains("Get-CsMeetingConfiguration"), "{e}");
    assert_eq!(
        run(&mut sh, "Get-CsMeetingConfiguration").objects,
        before,
        "nothing changed"
    );
}

#[test]
fn every_change_is_audited_with_secrets_redacted() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
    );
    let _ = sh.run("Remove-CsMeetingConfiguration -Identity site:Nowhere");
    run(&mut sh, "Get-CsMeetingConfiguration");
    let log = s
        .query_audit(&AuditFilter {
            admin: None,
            since_ms: None,
            contains: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[1].success
            && log[1].command == "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false"
            && log[1].origin == "test"
    );
    assert!(!log[0].success && log[0].result.contains("does not exist"));
    let out = run(&mut sh, "Get-CsAuditLog -Last 5");
    assert!(out.text.contains("PstnCallersBypassLobby"), "{}", out.text);
}
