//! Administration inside role and scope: OU-scoped and site-scoped administrators, every
//! built-in role inside and outside its cmdlet list, the administrator-only exports and
//! their folder, and the audit entries refusals leave.

use confab_admin::roles::{Role, BUILTIN_ROLES};
use confab_admin::{principal_for, ExecError, Session};
use confab_store::{AuditEntry, AuditFilter, NewUser, Store};
use serde_json::{json, Value};

const SALES: &str = "OU=Sales,DC=example,DC=test";

struct Env {
    dir: tempfile::TempDir,
    store: Store,
}

impl Env {
    /// user0000..user0002 in no OU; alice in Sales, bob below it (EMEA), carol in XSales
    /// (a name Sales is a suffix of), dave in Support; root is CsAdministrator.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        store.seed_users("example.test", "user", 3, "pw-").unwrap();
        for (name, ou) in [
            ("alice", SALES),
            ("bob", "OU=EMEA,OU=Sales,DC=example,DC=test"),
            ("carol", "OU=XSales,DC=example,DC=test"),
            ("dave", "OU=Support,DC=example,DC=test"),
        ] {
            store
                .add_user_in_ou(
                    &NewUser {
                        username: name,
                        domain: "example.test",
                        display_name: "",
                        password: "pw-secret",
                    },
                    Some(ou),
                )
                .unwrap();
        }
        store
            .add_admin("root", "rootpassword1", &["CsAdministrator".into()])
            .unwrap();
        Env { dir, store }
    }

    fn export_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data").join("export")
    }

    fn session(&self, admin: &str) -> Session<'_> {
        let a = self.store.get_admin(admin).unwrap().unwrap();
        Session::new(
            &self.store,
            principal_for(&self.store, &a).unwrap(),
            "test",
            "example.test",
        )
        .with_export_dir(self.export_dir())
    }

    fn root(&self, src: &str) -> confab_admin::Output {
        self.session("root")
            .run(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn admin_with(&self, name: &str, role: &str) {
        self.store
            .add_admin(name, "password1234", &[role.into()])
            .unwrap();
    }

    fn user(&self, name: &str) -> confab_store::User {
        self.store.get_user(name, "example.test").unwrap().unwrap()
    }

    fn refusals(&self, admin: &str) -> Vec<AuditEntry> {
        self.store
            .query_audit(&AuditFilter {
                admin: Some(admin.into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .filter(|e| !e.success && e.result.starts_with("refused"))
            .collect()
    }
}

fn identities(out: &confab_admin::Output) -> Vec<String> {
    out.objects
        .iter()
        .map(|o| {
            o.get("Identity")
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn an_ou_scoped_administrator_sees_and_changes_only_their_ou() {
    let env = Env::new();
    env.root(&format!(
        r#"New-CsAdminRole -Identity SalesAdmins -Template CsUserAdministrator -UserScopes "OU:{SALES}""#
    ));
    env.root("New-CsClonedPolicy -SourcePolicyName global -TargetPolicyName Sales -PolicyType ClientPolicy");
    env.admin_with("sales", "SalesAdmins");
    let mut s = env.session("sales");

    // Get-CsUser lists only the users in Sales and below it
    let out = s.run("Get-CsUser").unwrap();
    assert_eq!(
        identities(&out),
        ["sip:alice@example.test", "sip:bob@example.test"]
    );
    assert_eq!(
        out.objects[0].get("OrganizationalUnit"),
        Some(&json!(SALES)),
        "{out:?}"
    );
    assert_eq!(
        out.objects[0].get("DistinguishedName"),
        Some(&json!(format!("CN=alice,{SALES}")))
    );
    let e = s
        .run("Get-CsUser -Identity sip:carol@example.test")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");

    // out of scope: refused with a clear message, nothing changed
    for (src, who) in [
        (
            "Set-CsUser -Identity sip:carol@example.test -Enabled $false",
            "carol",
        ),
        ("Disable-CsUser -Identity sip:dave@example.test", "dave"),
        (
            "Set-CsUser -Identity sip:user0001@example.test -Enabled $false",
            "user0001",
        ),
    ] {
        let e = s.run(src).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ExecError::OutOfScope { .. }), "{src}: {e}");
        assert!(
            msg.contains(&format!("sip:{who}@example.test"))
                && msg.contains("outside the user scopes")
                && msg.contains(&format!("OU:{SALES}")),
            "{msg}"
        );
        assert!(env.user(who).enabled, "{who} unchanged");
    }
    let e = s
        .run("Grant-CsClientPolicy -Identity sip:dave@example.test -PolicyName Sales")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    assert!(env
        .store
        .get_config("CsUserPolicyAssignment", "dave@example.test")
        .unwrap()
        .is_none());

    // a script with one out-of-scope user changes no one, not even the users before it
    let e = s
        .run("Set-CsUser -Identity sip:alice@example.test -DisplayName Changed; Set-CsUser -Identity sip:carol@example.test -DisplayName Changed")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    assert_eq!(env.user("alice").display_name, "");
    assert_eq!(env.user("carol").display_name, "");

    // in scope still works, also below the OU and through a pipeline
    s.run("Set-CsUser -Identity sip:alice@example.test -Enabled $false")
        .unwrap();
    assert!(!env.user("alice").enabled);
    s.run("Grant-CsClientPolicy -Identity sip:bob@example.test -PolicyName Sales")
        .unwrap();
    assert_eq!(
        env.root("Get-CsUser -Identity sip:bob@example.test")
            .objects[0]
            .get("ClientPolicy"),
        Some(&json!("Sales"))
    );
    s.run("Get-CsUser | Set-CsUser -DisplayName Piped").unwrap();
    assert_eq!(env.user("bob").display_name, "Piped");
    assert_eq!(
        env.user("carol").display_name,
        "",
        "not piped: out of scope"
    );
    // a bad value for several users changes none of them
    let e = s
        .run(&format!(
            "Get-CsUser | Set-CsUser -Enabled $false -DisplayName \"{}\"",
            "x".repeat(200)
        ))
        .unwrap_err();
    assert!(e.to_string().contains("DisplayName"), "{e}");
    assert!(env.user("bob").enabled && env.user("bob").display_name == "Piped");

    // the refusals are in the audit log
    let refused = env.refusals("sales");
    for who in ["carol", "dave", "user0001"] {
        assert!(
            refused
                .iter()
                .any(|e| e.command.contains(&format!("sip:{who}@")) && e.origin == "test"),
            "{who}: {refused:?}"
        );
    }
    assert!(refused.iter().any(|e| e.command.starts_with("Get-CsUser")));

    // OU scopes are DNs: a malformed one is refused when the role is made
    let e = env
        .session("root")
        .run(
            r#"New-CsAdminRole -Identity Bad -Template CsUserAdministrator -UserScopes "OU:Sales""#,
        )
        .unwrap_err();
    assert!(e.to_string().contains("TYPE=value"), "{e}");
}

#[test]
fn a_site_scoped_administrator_acts_on_that_whole_site_only() {
    let env = Env::new();
    env.root("New-CsClientPolicy -Identity site:Redmond; New-CsClientPolicy -Identity site:Redmond2; New-CsClientPolicy -Identity site:Zürich");
    env.root(r#"New-CsAdminRole -Identity RedmondAdmin -Template CsAdministrator -ConfigScopes "site:Redmond""#);
    env.admin_with("redmond", "RedmondAdmin");
    let mut s = env.session("redmond");
    s.run("Set-CsClientPolicy -Identity site:Redmond -DisableRTFIm $true")
        .unwrap();
    for id in ["site:Redmond2", "site:Zürich", "global"] {
        let e = s
            .run(&format!(
                "Set-CsClientPolicy -Identity {id} -DisableRTFIm $true"
            ))
            .unwrap_err();
        assert!(matches!(e, ExecError::OutOfScope { .. }), "{id}: {e}");
        assert!(e.to_string().contains("Site:Redmond"), "{e}");
    }
    let rtf = |id: &str| {
        env.store
            .get_config("CsClientPolicy", id)
            .unwrap()
            .and_then(|d| d.body.get("DisableRTFIm").cloned())
    };
    assert_eq!(rtf("Site:Redmond"), Some(json!(true)));
    assert_ne!(rtf("Site:Redmond2"), Some(json!(true)));
    // a pipeline reaching out of the site is refused too
    let e = s
        .run("Get-CsClientPolicy | Set-CsClientPolicy -DisableRTFIm $true")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    // nor add SIP filter scripts (server applications live on a pool, not in a site)
    let e = s
        .run("New-CsServerApplication -Identity Service:Registrar:pool.example.test/Mine -Uri http://example.test/Mine -ScriptName mine.rhai -Enabled $true")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    assert!(env
        .store
        .list_config("CsServerApplication")
        .unwrap()
        .is_empty());
    // a site-scoped clone of CsAdministrator may not export every user's hashes
    let e = s.run("Export-CsUserData -FileName users.json").unwrap_err();
    assert!(matches!(e, ExecError::Denied { .. }), "{e}");
    assert!(!env.export_dir().join("users.json").exists());
    assert!(env.refusals("redmond").len() >= 5);

    // multi-byte site names neither panic nor match by prefix
    env.root(r#"New-CsAdminRole -Identity ZurichAdmin -Template CsAdministrator -ConfigScopes "site:Zürich""#);
    env.admin_with("zurich", "ZurichAdmin");
    let mut z = env.session("zurich");
    z.run("Set-CsClientPolicy -Identity site:Zürich -DisableRTFIm $true")
        .unwrap();
    for id in ["site:Zü", "site:Z", "site:Zürich2"] {
        let e = z
            .run(&format!(
                "Set-CsClientPolicy -Identity {id} -DisableRTFIm $true"
            ))
            .unwrap_err();
        assert!(
            matches!(e, ExecError::OutOfScope { .. } | ExecError::Failed { .. }),
            "{id}: {e}"
        );
    }
}

/// Each built-in role, assigned as is, tried with a cmdlet outside its list (refused,
/// nothing changed, audited) and one inside it (allowed).
#[test]
fn every_builtin_role_is_held_to_its_list() {
    let env = Env::new();
    env.root("New-CsClonedPolicy -SourcePolicyName global -TargetPolicyName Sales -PolicyType ClientPolicy");
    // (role, a command inside its list, a command outside it); None where confab runs no
    // cmdlet of the list (Response Group, E9-1-1, Persistent Chat): checked on the role
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        (
            "CsAdministrator",
            Some("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false"),
            None, // every cmdlet is in its list
        ),
        (
            "CsUserAdministrator",
            Some("Set-CsUser -Identity sip:user0001@example.test -DisplayName ok"),
            Some("Set-CsClientPolicy -Identity global -DisableRTFIm $true"),
        ),
        (
            "CsVoiceAdministrator",
            Some("Get-CsClientPolicy"),
            Some("Set-CsUser -Identity sip:user0001@example.test -Enabled $false"),
        ),
        (
            "CsServerAdministrator",
            Some("Get-CsMeetingConfiguration"),
            Some("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false"),
        ),
        (
            "CsViewOnlyAdministrator",
            Some("Get-CsUser"),
            Some("Disable-CsUser -Identity sip:user0001@example.test"),
        ),
        (
            "CsHelpDesk",
            Some("Get-CsUser -Identity sip:user0001@example.test"),
            Some("Grant-CsClientPolicy -Identity sip:user0001@example.test -PolicyName Sales"),
        ),
        (
            "CsArchivingAdministrator",
            Some("Get-CsExternalAccessPolicy"),
            Some("Set-CsExternalAccessPolicy -Identity global -EnableFederationAccess $true"),
        ),
        ("CsResponseGroupAdministrator", None, Some("Get-CsUser")),
        ("CsResponseGroupManager", None, Some("Get-CsClientPolicy")),
        (
            "CsLocationAdministrator",
            None,
            Some("Get-CsMeetingConfiguration"),
        ),
        (
            "CsPersistentChatAdministrator",
            None,
            Some("Set-CsUser -Identity sip:user0002@example.test -Enabled $false"),
        ),
    ];
    assert_eq!(cases.len(), BUILTIN_ROLES.len());
    let before = env.store.export_user_data().unwrap();
    for (i, (role, inside, outside)) in cases.iter().enumerate() {
        let name = format!("admin{i}");
        env.admin_with(&name, role);
        let mut s = env.session(&name);
        if let Some(cmd) = outside {
            let e = s.run(cmd).unwrap_err();
            assert!(matches!(e, ExecError::Denied { .. }), "{role}: {cmd}: {e}");
            assert!(e.to_string().contains("access denied"), "{e}");
            assert_eq!(env.refusals(&name).len(), 1, "{role}: audited once");
        }
        // nobody but CsAdministrator exports the users' hashes
        if *role != "CsAdministrator" {
            let e = s.run("Export-CsUserData -FileName x.json").unwrap_err();
            assert!(matches!(e, ExecError::Denied { .. }), "{role}: {e}");
        }
        match inside {
            Some(cmd) => {
                s.run(cmd).unwrap_or_else(|e| panic!("{role}: {cmd}: {e}"));
            }
            None => {
                let r = Role::builtin(role).unwrap();
                let own = match *role {
                    "CsResponseGroupAdministrator" => "New-CsRgsWorkflow",
                    "CsResponseGroupManager" => "Set-CsRgsQueue",
                    "CsLocationAdministrator" => "Set-CsLisLocation",
                    _ => "Get-CsPersistentChatRoom",
                };
                assert!(r.permits(own), "{role}: {own}");
            }
        }
    }
    assert!(!env.export_dir().join("x.json").exists());
    let after = env.store.export_user_data().unwrap();
    // only user0001's display name changed (by CsUserAdministrator)
    let changed: Vec<&Value> = after["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| !before["users"].as_array().unwrap().contains(u))
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["username"], "user0001");
    assert_eq!(changed[0]["enabled"], true);

    // a role cloned from a smaller template cannot be given the administrator-only cmdlets
    let e = env
        .session("root")
        .run(r#"New-CsAdminRole -Identity Exporters -Template CsViewOnlyAdministrator -Cmdlets @{Add="Export-CsUserData"}"#)
        .unwrap_err();
    assert!(e.to_string().contains("reserved to CsAdministrator"), "{e}");
    // a Global clone of CsAdministrator keeps working, exports included
    env.root("New-CsAdminRole -Identity MyAdmins -Template CsAdministrator");
    env.admin_with("clone", "MyAdmins");
    env.session("clone")
        .run("Export-CsUserData -FileName by-clone.json")
        .unwrap();
    assert!(env.export_dir().join("by-clone.json").exists());
}

#[test]
fn user_data_exports_are_private_and_stay_in_the_export_folder() {
    let env = Env::new();
    let dir = env.export_dir();
    env.root("Export-CsUserData -FileName users.json");
    let file = dir.join("users.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&env.user("alice").ha1_md5),
        "holds the hashes"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600, "owner only");
        assert_eq!(mode(&dir), 0o700);
    }
    // an absolute path inside the folder is fine
    env.root(&format!(
        "Export-CsConfiguration -FileName \"{}\"",
        dir.join("config.json").display()
    ));
    assert!(dir.join("config.json").exists());

    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    let mut root = env.session("root");
    let mut attempts = vec![
        (
            format!(
                "Export-CsUserData -FileName \"{}\"",
                outside.join("u.json").display()
            ),
            "outside the export folder",
        ),
        ("Export-CsUserData -FileName ../u.json".to_string(), "'..'"),
        (
            "Export-CsUserData -FileName \"sub/../../u.json\"".to_string(),
            "'..'",
        ),
        (
            format!(
                "Import-CsUserData -FileName \"{}\"",
                env.dir.path().join("data").join("confab.db").display()
            ),
            "outside the export folder",
        ),
        (
            "Export-CsUserData -FileName users.json".to_string(),
            "exists",
        ),
    ];
    if cfg!(unix) {
        attempts.push((
            "Export-CsUserData -FileName link/u.json".to_string(),
            "leads out of the export folder",
        ));
    }
    for (src, needle) in &attempts {
        let e = root.run(src).unwrap_err();
        assert!(e.to_string().contains(needle), "{src}: {e}");
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert!(!env.dir.path().join("u.json").exists());
    // a symbolic link to a file outside cannot be read through either
    #[cfg(unix)]
    {
        std::fs::write(outside.join("secret.json"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.json"), dir.join("in.json")).unwrap();
        let e = root.run("Import-CsUserData -FileName in.json").unwrap_err();
        assert!(e.to_string().contains("leads out"), "{e}");
    }
    // a session without an export folder exports nothing
    let a = env.store.get_admin("root").unwrap().unwrap();
    let mut bare = Session::new(
        &env.store,
        principal_for(&env.store, &a).unwrap(),
        "test",
        "example.test",
    );
    let e = bare
        .run("Export-CsUserData -FileName other.json")
        .unwrap_err();
    assert!(e.to_string().contains("export folder"), "{e}");

    // and what was exported imports again, from the folder
    root.run("Import-CsUserData -FileName users.json").unwrap();
    let log = env
        .store
        .query_audit(&AuditFilter {
            contains: Some("Export-CsUserData".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        log.iter().any(|e| e.success),
        "exports are audited: {log:?}"
    );
}

#[test]
fn refusals_are_audited_with_secrets_redacted() {
    let env = Env::new();
    env.admin_with("viewer", "CsViewOnlyAdministrator");
    let mut s = env.session("viewer");
    let e = s
        .run("Set-CsUser -Identity sip:alice@example.test -Enabled $false -Password hunter2")
        .unwrap_err();
    // an unknown parameter is not a refusal: not audited
    assert!(!e.is_refusal(), "{e}");
    let e = s
        .run("Set-CsUser -Identity sip:alice@example.test -Enabled $false")
        .unwrap_err();
    assert!(e.is_refusal());
    let refused = env.refusals("viewer");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0].command,
        "Set-CsUser -Identity sip:alice@example.test -Enabled $false"
    );
    assert!(
        refused[0].result.contains("access denied"),
        "{:?}",
        refused[0]
    );
    assert!(env.user("alice").enabled);
}

#[test]
fn users_are_created_and_removed_within_the_callers_user_scopes() {
    let env = Env::new();
    env.root(&format!(
        r#"New-CsAdminRole -Identity SalesAdmins -Template CsUserAdministrator -UserScopes "OU:{SALES}""#
    ));
    env.admin_with("sales", "SalesAdmins");
    env.admin_with("viewer", "CsViewOnlyAdministrator");
    let mut s = env.session("sales");

    // inside the OU: made, shown as Get-CsUser shows it, audited with the password redacted
    let out = s
        .run(&format!("New-CsUser -Identity sip:erin@example.test -Password 'erin-pw-1' -DisplayName Erin -OU '{SALES}'"))
        .unwrap();
    assert_eq!(identities(&out), ["sip:erin@example.test"]);
    assert_eq!(
        out.objects[0].get("OrganizationalUnit"),
        Some(&json!(SALES))
    );
    assert_eq!(env.user("erin").display_name, "Erin");
    let audit = env
        .store
        .query_audit(&AuditFilter {
            admin: Some("sales".into()),
            ..Default::default()
        })
        .unwrap();
    let made = audit
        .iter()
        .find(|e| e.command.starts_with("New-CsUser"))
        .unwrap();
    assert!(
        made.success
            && made.command.contains("-Password ********")
            && !made.command.contains("erin-pw-1"),
        "{made:?}"
    );

    // outside it (another OU, or none): refused, audited, nothing made
    for src in [
        "New-CsUser -Identity sip:frank@example.test -Password pw-frank-1 -OU 'OU=Support,DC=example,DC=test'",
        "New-CsUser -Identity sip:frank@example.test -Password pw-frank-1",
    ] {
        let e = s.run(src).unwrap_err();
        assert!(matches!(e, ExecError::OutOfScope { .. }), "{src}: {e}");
        assert!(env.store.get_user("frank", "example.test").unwrap().is_none());
    }
    let audit = env
        .store
        .query_audit(&AuditFilter {
            admin: Some("sales".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.command.contains("frank") && !e.success),
        "{audit:?}"
    );
    // the store's rules, as errors
    assert!(s
        .run(&format!(
            "New-CsUser -Identity erin@example.test -Password x -OU '{SALES}'"
        ))
        .unwrap_err()
        .to_string()
        .contains("erin@example.test"));
    assert!(s.run("New-CsUser -Identity nobody -Password x").is_err());
    // Remove-CsUser: only inside the scopes
    let e = s
        .run("Remove-CsUser -Identity sip:dave@example.test")
        .unwrap_err();
    assert!(matches!(e, ExecError::OutOfScope { .. }), "{e}");
    assert!(env
        .store
        .get_user("dave", "example.test")
        .unwrap()
        .is_some());
    s.run("Remove-CsUser -Identity sip:erin@example.test")
        .unwrap();
    assert!(env
        .store
        .get_user("erin", "example.test")
        .unwrap()
        .is_none());
    // a viewing role may do neither
    let e = env
        .session("viewer")
        .run("New-CsUser -Identity sip:g@example.test -Password pw-g-1")
        .unwrap_err();
    assert!(matches!(e, ExecError::Denied { .. }), "{e}");
}
