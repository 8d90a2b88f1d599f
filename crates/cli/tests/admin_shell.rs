//! `confab admin` and `confab shell`: the first administrator, signing in, the cookbook
//! recipes run through `confab shell -c`, RBAC and the audit log, as a user runs them.

mod common;
use common::*;
use std::process::Output;

struct Data(tempfile::TempDir);

impl Data {
    fn new() -> Data {
        let d = tempfile::tempdir().unwrap();
        let st = confab().args(["user", "seed", "--count", "3", "--data"]).arg(d.path()).output().unwrap();
        assert!(st.status.success());
        Data(d)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = confab();
        c.args(args).arg("--data").arg(self.0.path()).env_remove("CONFAB_ADMIN").env_remove("CONFAB_ADMIN_PASSWORD");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `confab shell -c SCRIPT` as `admin`; (success, stdout, stderr).
    fn shell(&self, admin: &str, password: &str, script: &str) -> (bool, String, String) {
        let o = self.run(&["shell", "-c", script], &[("CONFAB_ADMIN", admin), ("CONFAB_ADMIN_PASSWORD", password)]);
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
    }

    fn ok(&self, script: &str) -> String {
        let (ok, out, err) = self.shell("root", "rootpassword1", script);
        assert!(ok, "{script}\n{err}");
        out
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

fn bootstrap() -> Data {
    let d = Data::new();
    let o = d.run(&["admin", "add", "root", "--role", "CsAdministrator", "--password", "rootpassword1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    d
}

#[test]
fn first_administrator_then_only_administrators_add_more() {
    let d = Data::new();
    let o = d.run(&["shell", "-c", "Get-CsUser"], &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "x")]);
    assert!(!o.status.success() && text(&o).contains("no administrator yet"), "{}", text(&o));
    let o = d.run(&["admin", "add", "root", "--role", "CsAdministrator", "--password", "short"], &[]);
    assert!(!o.status.success() && text(&o).contains("password"), "{}", text(&o));
    let o = d.run(&["admin", "add", "root", "--role", "CsNobody", "--password", "rootpassword1"], &[]);
    assert!(!o.status.success() && text(&o).contains("unknown role 'CsNobody'"), "{}", text(&o));
    let o = d.run(&["admin", "add", "root", "--role", "CsAdministrator", "--password", "rootpassword1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // now a second one needs an administrator's sign-in
    let o = d.run(&["admin", "add", "eve", "--role", "CsAdministrator", "--password", "evepassword1"], &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = d.run(&["admin", "add", "eve", "--role", "CsAdministrator", "--password", "evepassword1"], &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "wrong")]);
    assert!(!o.status.success() && text(&o).contains("sign-in refused"), "{}", text(&o));
    let o = d.run(&["admin", "add", "helpdesk", "--role", "CsHelpDesk", "--password", "helpdeskpass1"], &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "rootpassword1")]);
    assert!(o.status.success(), "{}", text(&o));
    // a help desk admin cannot add administrators
    let o = d.run(&["admin", "add", "x", "--role", "CsAdministrator", "--password", "xpassword123"], &[("CONFAB_ADMIN", "helpdesk"), ("CONFAB_ADMIN_PASSWORD", "helpdeskpass1")]);
    assert!(!o.status.success() && text(&o).contains("may not manage administrators"), "{}", text(&o));
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
    assert!(out.contains("Get-CsUser") && !out.contains("Set-CsUser"), "{out}");
    d.ok(r#"Set-CsAdminRole -Identity CsUserModifier -Cmdlets @{add="Set-CsUser"}"#);
    assert!(d.ok("Get-CsAdminRole CsUserModifier | Select-Object -ExpandProperty Cmdlets").contains("Set-CsUser"));
    d.ok(r#"Set-CsAdminRole -Identity CsUserModifier –Cmdlets @{remove="Get-CSVoiceRoutingPolicy","Get-CSVoiceTestConfiguration"}"#);
    let out = d.ok("Get-CsAdminRole CsUserModifier | Select-Object -ExpandProperty Cmdlets");
    assert!(!out.contains("Get-CsVoiceRoutingPolicy") && !out.contains("Get-CsVoiceTestConfiguration"), "{out}");
    let (ok, _, err) = d.shell("root", "rootpassword1", r#"New-CsAdminRole -Identity CSUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="set-CsUser"}"#);
    assert!(!ok && err.contains("already exists"), "as in Lync, the role exists: {err}");

    let out = d.ok("Get-CsMeetingConfiguration");
    assert!(out.contains("Identity") && out.contains("Global") && out.contains("PstnCallersBypassLobby"), "{out}");
    d.ok("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false");
    assert!(d.ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby").contains("False"));
    d.ok("Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true");
    let out = d.ok("Get-CsMeetingConfiguration | fl");
    assert!(out.lines().any(|l| l.starts_with("AssignedConferenceTypeByDefault") && l.ends_with("False")), "{out}");
    d.ok(r#".\New-CsClonedPolicy.ps1 -SourcePolicyName global -TargetPolicyName "DefaultConferencing" -PolicyType ConferencingPolicy"#);
    assert!(d.ok("Get-CsConferencingPolicy -Identity DefaultConferencing").contains("Tag:DefaultConferencing"));
    d.ok("Get-CsConferencingConfiguration | Set-CsConferencingConfiguration -ClientMediaPortRangeEnabled $True");
    assert!(d.ok("Get-CsConferencingConfiguration | Select-Object -ExpandProperty ClientMediaPortRangeEnabled").contains("True"));
    d.ok("$cert = New-CsWebTrustedCACertificate -Thumbprint \"7a06f5b75287f17d4596118418b77004b4cd4d92\" -CAStore TrustedRootCA\nSet-CsWebServiceConfiguration -TrustedCACerts @{Add=$cert}");
    assert!(d.ok("Get-CsWebServiceConfiguration").contains("7A06F5B75287F17D4596118418B77004B4CD4D92"));
    assert!(d.ok("Get-CsServerApplication").contains("IIMFilter"));
    d.ok(r#"Set-CsFileTransferFilterConfiguration -Identity global -Extensions @{Add=".jpg"}"#);
    assert!(d.ok("Get-CsFileTransferFilterConfiguration -Identity global | Select-Object –ExpandProperty Extensions").lines().any(|l| l == ".jpg"));
    d.ok("Set-CsClientPolicy -Identity global -DisableRTFIm $true");
    assert!(d.ok("Get-CsClientPolicy -Identity global | Select-Object -ExpandProperty DisableRTFIm").contains("True"));
    d.ok("Disable-CsUser -Identity sip:user0001@example.test");
    assert!(d.ok("Get-CsUser -Identity sip:user0001@example.test").lines().any(|l| l.starts_with("Enabled") && l.ends_with("False")));
    d.ok("Enable-CsUser -Identity sip:user0001@example.test; Set-CsUser -Identity sip:user0002@example.test -Enabled $false");
    let users = d.run(&["user", "list"], &[]);
    assert!(text(&users).contains("user0001@example.test") && text(&users).lines().any(|l| l.contains("user0002") && l.contains("disabled")));
}

#[test]
fn a_delegated_administrator_can_do_exactly_what_their_role_allows() {
    let d = bootstrap();
    d.ok(r#"New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="Set-CsUser"}"#);
    let o = d.run(&["admin", "add", "hd", "--role", "CsUserModifier", "--password", "hdpassword12"], &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "rootpassword1")]);
    assert!(o.status.success(), "{}", text(&o));
    let (ok, _, err) = d.shell("hd", "hdpassword12", "Set-CsUser -Identity sip:user0001@example.test -Enabled $false");
    assert!(ok, "{err}");
    let (ok, _, err) = d.shell("hd", "hdpassword12", "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false");
    assert!(!ok && err.contains("access denied") && err.contains("CsAdministrator"), "{err}");
    assert!(d.ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby").contains("True"), "unchanged");
    // the audit log has both changes and the refusal is not a change
    let o = d.run(&["admin", "audit"], &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "rootpassword1")]);
    let log = text(&o);
    assert!(log.contains("Set-CsUser -Identity sip:user0001@example.test -Enabled $false") && log.contains("hd") && log.contains("local shell"), "{log}");
    assert!(log.contains("New-CsAdminRole"), "{log}");
    assert!(!log.contains("Set-CsMeetingConfiguration"), "{log}");
    // and the shell can read it too, for those allowed
    assert!(d.ok("Get-CsAuditLog -Last 10").contains("Set-CsUser"));
    let (ok, _, err) = d.shell("hd", "hdpassword12", "Get-CsAuditLog");
    assert!(!ok && err.contains("access denied"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let d = bootstrap();
    let cases = [
        ("Set-CsMeetingConfigurations -PstnCallersBypassLobby $false", "Set-CsMeetingConfigurations"),
        ("Set-CsMeetingConfiguration -PstnCallersBypassLobbyy $false", "PstnCallersBypassLobbyy"),
        ("Set-CsMeetingConfiguration -PstnCallersBypassLobby 42x", "System.Boolean"),
        ("Set-CsMeetingConfiguration -Identity Nowhere -PstnCallersBypassLobby $false", "not a scope"),
        ("Set-CsMeetingConfiguration -PstnCallersBypassLobby \"$false", "unterminated string"),
        ("Set-CsAdminRole -Identity CsHelpDesk -Cmdlets @{add=\"Set-CsUser\"", "unbalanced"),
        ("New-CsAdminRole -Identity Foo", "mandatory parameter 'Template'"),
    ];
    for (script, needle) in cases {
        let (ok, _, err) = d.shell("root", "rootpassword1", script);
        assert!(!ok && err.contains(needle), "{script}: {err}");
    }
    assert!(d.ok("Get-CsMeetingConfiguration | Select-Object -ExpandProperty PstnCallersBypassLobby").contains("True"));
}

#[test]
fn script_files_run_too() {
    let d = bootstrap();
    let f = d.0.path().join("recipe.ps1");
    std::fs::write(&f, "# a recipe\nSet-CsMeetingConfiguration -PstnCallersBypassLobby $false\nGet-CsMeetingConfiguration | fl\n").unwrap();
    let o = d.run(&["shell", f.to_str().unwrap()], &[("CONFAB_ADMIN", "root"), ("CONFAB_ADMIN_PASSWORD", "rootpassword1")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).lines().any(|l| l.starts_with("PstnCallersBypassLobby") && l.ends_with("False")), "{}", text(&o));
}
