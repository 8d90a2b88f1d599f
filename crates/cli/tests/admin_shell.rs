//! `confab admin` and `confab shell`: the first administrator, signing in, the cookbook
//! recipes run through `confab shell -c`, RBAC and the audit log, as a user runs them.

mod common;
use common::*;
use std::process::Output;

struct Data(tempfile::TempDir);

impl Data {
    fn new() -> Data {
        let d = tempfile::tempdir().unwrap();
        let st = confab()
            .args(["user", "seed", "--count", "3", "--init", "--data"])
            .arg(d.path())
            .output()
            .unwrap();
        assert!(st.status.success());
        Data(d)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = confab();
        c.args(args)
            .arg("--data")
            .arg(self.0.path())
            .env_remove("CONFAB_ADMIN")
            .env_remove("CONFAB_ADMIN_PASSWORD");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `confab shell -c SCRIPT` as `admin`; (success, stdout, stderr).
    fn shell(&self, admin: &str, password: &str, script: &str) -> (bool, String, String) {
        let o = self.run(
            &["shell", "-c", script],
            &[("CONFAB_ADMIN", admin), ("CONFAB_ADMIN_PASSWORD", password)],
        );
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    }

    fn ok(&self, script: &str) -> String {
        let (ok, out, err) = self.shell("root", "rootpassword1", script);
        assert!(ok, "{script}\n{err}");
        out
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + String::from_utf8_lossy(&o.stderr).as_ref()
}

fn bootstrap() -> Data {
    let d = Data::new();
    let o = d.run(ADD_ROOT, &[]);
    assert!(o.status.success(), "{}", text(&o));
    d
}

#[test]
fn first_administrator_then_only_administrators_add_more() {
    let d = Data::new();
    let o = d.run(
        &["shell", "-c", "Get-CsUser"],
        &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "x")],
    );
    assert!(
        !o.status.success() && text(&o).contains("no administrator yet"),
        "{}",
        text(&o)
    );
    let o = d.run(
        &[
            "admin",
            "add",
            "root",
            "--role",
            "CsAdministrator",
            "--password",
            "short",
        ],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("password"),
        "{}",
        text(&o)
    );
    let o = d.run(
        &[
            "admin",
            "add",
            "root",
            "--role",
            "CsNobody",
            "--password",
            "rootpassword1",
        ],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("unknown role 'CsNobody'"),
        "{}",
        text(&o)
    );
    let o = d.run(ADD_ROOT, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // now a second one needs an administrator's sign-in
    let o = d.run(
        &[
            "admin",
            "add",
            "eve",
            "--role",
            "CsAdministrator",
            "--password",
            "evepassword1",
        ],
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let o = d.run(
        &[
            "admin",
            "add",
            "eve",
            "--role",
            "CsAdministrator",
            "--password",
            "evepassword1",
        ],
        &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "wrong")],
    );
    assert!(
        !o.status.success() && text(&o).contains("sign-in refused"),
        "{}",
        text(&o)
    );
    let o = d.run(
        &[
            "admin",
            "add",
            "helpdesk",
            "--role",
            "CsHelpDesk",
            "--password",
            "helpdeskpass1",
        ],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // a help desk admin cannot add administrators
    let o = d.run(
        &[
            "admin",
            "add",
            "x",
            "--role",
            "CsAdministrator",
            "--password",
            "xpassword123",
        ],
        &[
            ("CONFAB_ADMIN", "helpdesk"),
            ("CONFAB_ADMIN_PASSWORD", "helpdeskpass1"),
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("may not manage administrators"),
        "{}",
        text(&o)
    );
    let o = d.run(&["admin", "list"], &[]);
    assert!(text(&o).contains("root") && text(&o).contains("helpdesk"));
    // a wrong password signs nobody in
    let (ok, _, err) = d.shell("root", "nope", "Get-CsUser");
    assert!(!ok && err.contains("sign-in refused"), "{err}");
}

#[test]
fn cookbook_lines_run_verbatim_through_the_shell() {
    let d = bootstrap();
    d.ok("New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator");
    let out = d.ok("Get-CsAdminRole CSUserModifier | Select-Object –ExpandProperty cmdlets | fl");
    assert!(
        out.contains("Get-CsUser") && !out.contains("Set-CsUser"),
        "{out}"
    );
    d.ok(r#"Set-CsAdminRole -Identity CsUserModifier -Cmdlets @{add="Set-CsUser"}"#);
    assert!(d
        .ok("Get-CsAdminRole CsUserModifier | Select-Object -ExpandProperty Cmdlets")
        .contains("Set-CsUser"));
    d.ok(r#"Set-CsAdminRole -Identity CsUserModifier –Cmdlets @{remove="Get-CSVoiceRoutingPolicy","Get-CSVoiceTestConfiguration"}"#);
    let out = d.ok("Get-CsAdminRole CsUserModifier | Select-Object -ExpandProperty Cmdlets");
    assert!(
        !out.contains("Get-CsVoiceRoutingPolicy") && !out.contains("Get-CsVoiceTestConfiguration"),
        "{out}"
    );
    let (ok, _, err) = d.shell("root", "rootpassword1", r#"New-CsAdminRole -Identity CSUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="set-CsUser"}"#);
    assert!(
        !ok && err.contains("already exists"),
        "as in Lync, the role exists: {err}"
    );

    let out = d.ok("Get-CsMeetingConfiguration");
    assert!(
        out.contains("Identity")
            && out.contains("Global")
            && out.contains("PstnCallersBypassLobby"),
        "{out}"
    );
    d.ok("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false");
    assert!(d
        .ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby")
        .contains("False"));
    d.ok("Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true");
    let out = d.ok("Get-CsMeetingConfiguration | fl");
    assert!(
        out.lines()
            .any(|l| l.starts_with("AssignedConferenceTypeByDefault") && l.ends_with("False")),
        "{out}"
    );
    d.ok(r#".\New-CsClonedPolicy.ps1 -SourcePolicyName global -TargetPolicyName "DefaultConferencing" -PolicyType ConferencingPolicy"#);
    assert!(d
        .ok("Get-CsConferencingPolicy -Identity DefaultConferencing")
        .contains("Tag:DefaultConferencing"));
    d.ok("Get-CsConferencingConfiguration | Set-CsConferencingConfiguration -ClientMediaPortRangeEnabled $True");
    assert!(d.ok("Get-CsConferencingConfiguration | Select-Object -ExpandProperty ClientMediaPortRangeEnabled").contains("True"));
    d.ok("$cert = New-CsWebTrustedCACertificate -Thumbprint \"7a06f5b75287f17d4596118418b77004b4cd4d92\" -CAStore TrustedRootCA\nSet-CsWebServiceConfiguration -TrustedCACerts @{Add=$cert}");
    assert!(d
        .ok("Get-CsWebServiceConfiguration")
        .contains("7A06F5B75287F17D4596118418B77004B4CD4D92"));
    assert!(d.ok("Get-CsServerApplication").contains("IIMFilter"));
    d.ok(r#"Set-CsFileTransferFilterConfiguration -Identity global -Extensions @{Add=".jpg"}"#);
    assert!(d.ok("Get-CsFileTransferFilterConfiguration -Identity global | Select-Object –ExpandProperty Extensions").lines().any(|l| l == ".jpg"));
    d.ok("Set-CsClientPolicy -Identity global -DisableRTFIm $true");
    assert!(d
        .ok("Get-CsClientPolicy -Identity global | Select-Object -ExpandProperty DisableRTFIm")
        .contains("True"));
    d.ok("Disable-CsUser -Identity sip:user0001@example.test");
    assert!(d
        .ok("Get-CsUser -Identity sip:user0001@example.test")
        .lines()
        .any(|l| l.starts_with("Enabled") && l.ends_with("False")));
    d.ok("Enable-CsUser -Identity sip:user0001@example.test; Set-CsUser -Identity sip:user0002@example.test -Enabled $false");
    let users = d.run(&["user", "list"], &[]);
    assert!(
        text(&users).contains("user0001@example.test")
            && text(&users)
                .lines()
                .any(|l| l.contains("user0002") && l.contains("disabled"))
    );
}

#[test]
fn a_delegated_administrator_can_do_exactly_what_their_role_allows() {
    let d = bootstrap();
    d.ok(r#"New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="Set-CsUser"}"#);
    let o = d.run(
        &[
            "admin",
            "add",
            "hd",
            "--role",
            "CsUserModifier",
            "--password",
            "hdpassword12",
        ],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let (ok, _, err) = d.shell(
        "hd",
        "hdpassword12",
        "Set-CsUser -Identity sip:user0001@example.test -Enabled $false",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = d.shell(
        "hd",
        "hdpassword12",
        "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
    );
    assert!(
        !ok && err.contains("access denied") && err.contains("CsAdministrator"),
        "{err}"
    );
    assert!(
        d.ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby")
            .contains("True"),
        "unchanged"
    );
    // the audit log has both changes, and the refusal as a failure
    let o = d.run(
        &["admin", "audit"],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    let log = text(&o);
    assert!(
        log.contains("Set-CsUser -Identity sip:user0001@example.test -Enabled $false")
            && log.contains("hd")
            && log.contains("local shell"),
        "{log}"
    );
    assert!(log.contains("New-CsAdminRole"), "{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("Set-CsMeetingConfiguration"))
            .all(|l| l.contains(" hd ") && l.contains("FAIL") && l.contains("refused")),
        "{log}"
    );
    assert!(log.contains("Set-CsMeetingConfiguration"), "{log}");
    // and the shell can read it too, for those allowed
    assert!(d.ok("Get-CsAuditLog -Last 10").contains("Set-CsUser"));
    let (ok, _, err) = d.shell("hd", "hdpassword12", "Get-CsAuditLog");
    assert!(!ok && err.contains("access denied"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let d = bootstrap();
    let cases = [
        (
            "Set-CsMeetingConfigurations -PstnCallersBypassLobby $false",
            "Set-CsMeetingConfigurations",
        ),
        (
            "Set-CsMeetingConfiguration -PstnCallersBypassLobbyy $false",
            "PstnCallersBypassLobbyy",
        ),
        (
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby 42x",
            "System.Boolean",
        ),
        (
            "Set-CsMeetingConfiguration -Identity Nowhere -PstnCallersBypassLobby $false",
            "not a scope",
        ),
        (
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby \"$false",
            "unterminated string",
        ),
        (
            "Set-CsAdminRole -Identity CsHelpDesk -Cmdlets @{add=\"Set-CsUser\"",
            "unbalanced",
        ),
        (
            "New-CsAdminRole -Identity Foo",
            "mandatory parameter 'Template'",
        ),
    ];
    for (script, needle) in cases {
        let (ok, _, err) = d.shell("root", "rootpassword1", script);
        assert!(!ok && err.contains(needle), "{script}: {err}");
    }
    assert!(d
        .ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby")
        .contains("True"));
}

#[test]
fn script_files_run_too() {
    let d = bootstrap();
    let f = d.0.path().join("recipe.ps1");
    std::fs::write(&f, "# a recipe\nSet-CsMeetingConfiguration -PstnCallersBypassLobby $false\nGet-CsMeetingConfiguration | fl\n").unwrap();
    let o = d.run(
        &["shell", f.to_str().unwrap()],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o)
            .lines()
            .any(|l| l.starts_with("PstnCallersBypassLobby") && l.ends_with("False")),
        "{}",
        text(&o)
    );
}

#[test]
fn remote_shell_through_the_rest_api_of_a_running_server() {
    let http = free_port("127.0.0.1");
    let s = Server::start(3, &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = confab();
        c.args(args)
            .arg("--data")
            .arg(s.data())
            .env_remove("CONFAB_ADMIN")
            .env_remove("CONFAB_ADMIN_PASSWORD");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = run(ADD_ROOT, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let url = format!("http://127.0.0.1:{http}");
    let remote = |admin: &str, pw: &str, script: &str| {
        let o = run(
            &["shell", "--server", &url, "-c", script],
            &[("CONFAB_ADMIN", admin), ("CONFAB_ADMIN_PASSWORD", pw)],
        );
        (o.status.success(), text(&o))
    };
    let (ok, out) = remote(
        "root",
        "rootpassword1",
        "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
    );
    assert!(ok, "{out}");
    let (ok, out) = remote("root", "rootpassword1", "Get-CsMeetingConfiguration");
    assert!(
        ok && out
            .lines()
            .any(|l| l.starts_with("PstnCallersBypassLobby") && l.ends_with("False")),
        "{out}"
    );
    let (ok, out) = remote(
        "root",
        "rootpassword1",
        r#"New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="Set-CsUser"}"#,
    );
    assert!(ok, "{out}");
    let o = run(
        &[
            "admin",
            "add",
            "hd",
            "--role",
            "CsUserModifier",
            "--password",
            "hdpassword12",
        ],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let (ok, out) = remote(
        "hd",
        "hdpassword12",
        "Set-CsUser -Identity sip:user0001@example.test -Enabled $false",
    );
    assert!(ok, "{out}");
    let (ok, out) = remote(
        "hd",
        "hdpassword12",
        "Set-CsMeetingConfiguration -PstnCallersBypassLobby $true",
    );
    assert!(!ok && out.contains("CsAdministrator"), "{out}");
    let (ok, out) = remote("hd", "wrongpassword", "Get-CsUser");
    assert!(!ok && out.contains("sign-in refused"), "{out}");
    // exports through the REST API land in the server's <data>/export, owner-only, and
    // only CsAdministrator exports the users' hashes
    let (ok, out) = remote(
        "hd",
        "hdpassword12",
        "Export-CsUserData -FileName by-hd.json",
    );
    assert!(!ok && out.contains("CsAdministrator"), "{out}");
    let (ok, out) = remote(
        "root",
        "rootpassword1",
        "Export-CsUserData -FileName remote.json",
    );
    assert!(ok, "{out}");
    let exported = s.data().join("export").join("remote.json");
    assert!(exported.exists() && !s.data().join("export").join("by-hd.json").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exported).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (ok, out) = remote(
        "root",
        "rootpassword1",
        "Export-CsUserData -FileName /tmp/confab-users.json",
    );
    assert!(!ok && out.contains("outside the export folder"), "{out}");
    // the change reached the running SIP server: the disabled user cannot register
    let mut ua = Ua::udp("user0001", s.addr());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    loop {
        let r = ua.register(300);
        if r.status() == Some(403) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still registers: {}",
            first_line(&r)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // REST changes are audited with their origin
    let o = run(
        &["admin", "audit"],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    assert!(text(&o).contains("rest 127.0.0.1:"), "{}", text(&o));
}

#[test]
fn backup_and_restore_give_an_identical_server() {
    let d = bootstrap();
    d.ok(r#"New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="Set-CsUser"}; Set-CsMeetingConfiguration -PstnCallersBypassLobby $false; Set-CsFileTransferFilterConfiguration -Extensions @{Add=".jpg"}"#);
    let o = d.run(
        &[
            "contact",
            "add",
            "user0001",
            "user0002@example.test",
            "Workgroup",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let file = d.0.path().join("full.backup");
    let o = d.run(&["backup", file.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let restored = Data(tempfile::tempdir().unwrap());
    let target = restored.0.path().join("data");
    let o = confab()
        .args(["restore", file.to_str().unwrap(), "--data"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let same = |args: &[&str], script: Option<&str>| {
        let a = if let Some(sc) = script {
            d.ok(sc)
        } else {
            String::from_utf8_lossy(&d.run(args, &[]).stdout).to_string()
        };
        let mut c = confab();
        if let Some(sc) = script {
            c.args(["shell", "-c", sc])
                .env("CONFAB_ADMIN", "root")
                .env("CONFAB_ADMIN_PASSWORD", "rootpassword1");
        } else {
            c.args(args);
        }
        let b = c.arg("--data").arg(&target).output().unwrap();
        assert!(b.status.success(), "{}", text(&b));
        assert_eq!(a, String::from_utf8_lossy(&b.stdout), "{args:?} {script:?}");
    };
    same(&["user", "list"], None);
    same(&["admin", "list"], None);
    same(&["contact", "list", "user0001"], None);
    same(&[], Some("Get-CsMeetingConfiguration; Get-CsFileTransferFilterConfiguration; Get-CsAdminRole CsUserModifier"));
    // restoring over an existing store is refused
    let o = d.run(&["restore", file.to_str().unwrap()], &[]);
    assert!(
        !o.status.success() && text(&o).contains("empty data directory"),
        "{}",
        text(&o)
    );
}

#[test]
fn export_and_import_configuration_and_user_data() {
    let d = bootstrap();
    d.ok("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false; New-CsClonedPolicy -SourcePolicyName global -TargetPolicyName Sales -PolicyType ClientPolicy");
    // file names are taken in <data>/export, the only folder exports go to
    d.ok("Export-CsConfiguration -FileName config.json; Export-CsUserData -FileName users.json");
    let export = d.0.path().join("export");
    let (cfg, users) = (export.join("config.json"), export.join("users.json"));
    assert!(cfg.exists() && users.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "the users' hashes are readable by their owner only"
        );
    }
    let (ok, _, err) = d.shell(
        "root",
        "rootpassword1",
        "Export-CsConfiguration -FileName config.json",
    );
    assert!(!ok && err.contains("exists"), "never overwrites: {err}");
    let elsewhere = d.0.path().join("users-elsewhere.json");
    let (ok, _, err) = d.shell(
        "root",
        "rootpassword1",
        &format!("Export-CsUserData -FileName \"{}\"", elsewhere.display()),
    );
    assert!(
        !ok && err.contains("outside the export folder") && !elsewhere.exists(),
        "{err}"
    );
    let other = bootstrap();
    let other_export = other.0.path().join("export");
    std::fs::create_dir_all(&other_export).unwrap();
    std::fs::copy(&cfg, other_export.join("config.json")).unwrap();
    std::fs::copy(&users, other_export.join("users.json")).unwrap();
    other
        .ok("Import-CsConfiguration -FileName config.json; Import-CsUserData -FileName users.json");
    assert!(other
        .ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby")
        .contains("False"));
    assert!(other
        .ok("Get-CsClientPolicy -Identity Sales")
        .contains("Tag:Sales"));
    let stdout = |o: Output| String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        stdout(other.run(&["user", "list"], &[])),
        stdout(d.run(&["user", "list"], &[]))
    );
    std::fs::write(
        other_export.join("bad.json"),
        "{\"format\": \"something else\"}",
    )
    .unwrap();
    let (ok, _, err) = other.shell(
        "root",
        "rootpassword1",
        "Import-CsConfiguration -FileName bad.json",
    );
    assert!(
        !ok && err.contains("not a confab configuration export"),
        "{err}"
    );
}

#[test]
fn users_in_organisational_units_and_an_ou_scoped_administrator() {
    let d = bootstrap();
    let o = d.run(
        &[
            "user",
            "add",
            "alice",
            "--password",
            "pw-alice",
            "--ou",
            "ou=Sales, DC=example,DC=test",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("in OU=Sales,DC=example,DC=test"),
        "{}",
        text(&o)
    );
    let o = d.run(
        &[
            "user",
            "add",
            "bob",
            "--password",
            "pw-bob",
            "--ou",
            "Sales",
        ],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("TYPE=value"),
        "{}",
        text(&o)
    );
    let o = d.run(
        &[
            "user",
            "set-ou",
            "user0001",
            "OU=Support,DC=example,DC=test",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let list = text(&d.run(&["user", "list"], &[]));
    assert!(
        list.lines().any(
            |l| l.contains("alice@example.test") && l.contains("[OU=Sales,DC=example,DC=test]")
        ),
        "{list}"
    );
    let out = d.ok("Get-CsUser -Identity sip:alice@example.test");
    assert!(
        out.lines()
            .any(|l| l.starts_with("OrganizationalUnit")
                && l.ends_with("OU=Sales,DC=example,DC=test"))
            && out.contains("CN=alice,OU=Sales,DC=example,DC=test"),
        "{out}"
    );
    d.ok(r#"New-CsAdminRole -Identity SalesAdmins -Template CsUserAdministrator -UserScopes "OU:OU=Sales,DC=example,DC=test""#);
    let o = d.run(
        &[
            "admin",
            "add",
            "sales",
            "--role",
            "SalesAdmins",
            "--password",
            "salespassword1",
        ],
        &[
            ("CONFAB_ADMIN", "root"),
            ("CONFAB_ADMIN_PASSWORD", "rootpassword1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let (ok, out, err) = d.shell("sales", "salespassword1", "Get-CsUser | ft Identity");
    assert!(ok, "{err}");
    assert!(
        out.contains("sip:alice@example.test") && !out.contains("user0001"),
        "{out}"
    );
    let (ok, _, err) = d.shell(
        "sales",
        "salespassword1",
        "Disable-CsUser -Identity sip:user0001@example.test",
    );
    assert!(
        !ok && err.contains("outside the user scopes") && err.contains("OU=Support"),
        "{err}"
    );
    let (ok, _, err) = d.shell(
        "sales",
        "salespassword1",
        "Disable-CsUser -Identity sip:alice@example.test",
    );
    assert!(ok, "{err}");
    let list = text(&d.run(&["user", "list"], &[]));
    assert!(
        list.lines()
            .any(|l| l.contains("user0001@example.test") && l.contains(" enabled")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("alice@example.test") && l.contains("disabled")),
        "{list}"
    );
    // failed sign-ins and the refusal are audited
    let (ok, _, _) = d.shell("sales", "wrong-password", "Get-CsUser");
    assert!(!ok);
    let log =
        d.ok("Get-CsAuditLog -Last 20 | Select-Object -Property Admin,Command,Success,Result | ft");
    assert!(
        log.lines()
            .any(|l| l.contains("sales") && l.contains("sign-in") && l.contains("False")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("sales") && l.contains("Disable-CsUser") && l.contains("refused")),
        "{log}"
    );
}

#[test]
fn powershell_pipeline_forms_through_the_shell() {
    let d = bootstrap();
    let out = d.ok("Get-CsUser | Select-Object -ExpandProperty SipAddress");
    let sips: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(sips.len(), 3, "{out}");
    assert!(sips.iter().all(|s| s.starts_with("sip:")), "{out}");
    d.ok(&format!(
        "Set-CsUser -Identity {} -DisplayName 'Ann Example' -Enabled $false
         Set-CsUser -Identity {} -DisplayName 'Ben Example'
         Set-CsUser -Identity {} -DisplayName 'Cy Example'",
        sips[0], sips[1], sips[2]
    ));

    // only the property asked for, in PowerShell's table for selected objects
    let out = d.ok("Get-CsUser | Select-Object DisplayName");
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines[0], "DisplayName", "{out}");
    assert_eq!(lines[1], "-----------", "{out}");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines.contains(&"Ann Example"), "{out}");
    assert!(
        !out.contains("SipAddress") && !out.contains("sip:"),
        "{out}"
    );

    // fl of one property: `Name : value` lines only
    let out = d.ok("Get-CsUser | fl DisplayName");
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines.iter().all(|l| l.starts_with("DisplayName : ")),
        "{out}"
    );
    assert!(lines.contains(&"DisplayName : Ann Example"), "{out}");

    let out = d.ok("Get-CsUser | ft -Property SipAddress");
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines[0], "SipAddress", "{out}");
    assert_eq!(lines[1], "----------", "{out}");
    assert_eq!(&lines[2..], &sips[..], "{out}");

    let out = d.ok("Get-Help Get-CsUser -Full");
    for part in [
        "NAME\n    Get-CsUser",
        "SYNTAX\n    Get-CsUser [[-Identity] <XdsIdentity>] [-Filter <String>]",
        "Required?                    false",
        "ROLES",
        "EXAMPLE 1",
    ] {
        assert!(out.contains(part), "{part:?} in {out}");
    }

    let out = d.ok("Get-CsUser | ? {$_.Enabled -eq $false}");
    assert!(out.contains(sips[0]), "{out}");
    assert!(out.contains("Enabled") && out.contains(": False"), "{out}");
    for other in &sips[1..] {
        assert!(!out.contains(other), "{other} is enabled: {out}");
    }
    // a bad script block changes nothing and names the problem
    let (ok, _, err) = d.shell(
        "root",
        "rootpassword1",
        &format!(
            "Set-CsUser -Identity {} -Enabled $true; Get-CsUser | ? {{$_.Enabled -eq}}",
            sips[0]
        ),
    );
    assert!(!ok && err.contains("missing value after '-eq'"), "{err}");
    let out = d.ok(
        "Get-CsUser | Where-Object Enabled -eq $false | Select-Object -ExpandProperty SipAddress",
    );
    assert_eq!(out.trim(), sips[0]);
}
