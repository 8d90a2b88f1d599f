//! Federation and ethical-wall settings through the shell: CsAccessEdgeConfiguration, the
//! allowed and blocked domain lists, static routes, external access policies and
//! information barriers, each read back from the store.

use confab_admin::object::Obj;
use confab_admin::{principal_for, Session};
use confab_store::Store;
use serde_json::{json, Value};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.seed_users("example.test", "user", 2, "pw-").unwrap();
    s.add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    (dir, s)
}

fn session<'a>(s: &'a Store) -> Session<'a> {
    let a = s.get_admin("root").unwrap().unwrap();
    Session::new(s, principal_for(s, &a).unwrap(), "test", "example.test")
}

fn run(sh: &mut Session, src: &str) -> Vec<Obj> {
    sh.run(src)
        .unwrap_or_else(|e| panic!("{src}\n  failed: {e}"))
        .objects
}

fn body(s: &Store, kind: &str, id: &str) -> Option<serde_json::Map<String, Value>> {
    s.get_config(kind, id).unwrap().map(|d| d.body)
}

#[test]
fn access_edge_configuration_has_lyncs_defaults_and_only_get_set() {
    let (_d, s) = store();
    let mut sh = session(&s);
    let o = run(&mut sh, "Get-CsAccessEdgeConfiguration");
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].get("AllowFederatedUsers"), Some(&json!(false)));
    assert_eq!(o[0].get("AllowOutsideUsers"), Some(&json!(true)));
    assert_eq!(o[0].get("EnablePartnerDiscovery"), Some(&json!(false)));
    run(
        &mut sh,
        "Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true -EnablePartnerDiscovery $False",
    );
    assert_eq!(
        body(&s, "CsAccessEdgeConfiguration", "Global").unwrap()["AllowFederatedUsers"],
        json!(true)
    );
    let e = sh
        .run("New-CsAccessEdgeConfiguration -Identity site:Redmond")
        .unwrap_err()
        .to_string();
    assert!(e.contains("New-CsAccessEdgeConfiguration"), "{e}");
    let e = sh
        .run("Set-CsAccessEdgeConfiguration -Identity site:Redmond -AllowFederatedUsers $true")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot be created at scope") || e.contains("not a scope"),
        "{e}"
    );
}

#[test]
fn allowed_and_blocked_domains() {
    let (_d, s) = store();
    let mut sh = session(&s);
    assert!(
        run(&mut sh, "Get-CsAllowedDomain").is_empty(),
        "no Global object for a list"
    );
    run(
        &mut sh,
        r#"New-CsAllowedDomain -Identity Fabrikam.COM -ProxyFqdn "sip.fabrikam.com" -Comment "partner""#,
    );
    run(&mut sh, "New-CsBlockedDomain -Identity rival.test");
    let o = run(&mut sh, "Get-CsAllowedDomain");
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].identity().as_deref(), Some("fabrikam.com"));
    assert_eq!(o[0].get("ProxyFqdn"), Some(&json!("sip.fabrikam.com")));
    // a domain is on one list only
    let e = sh
        .run("New-CsBlockedDomain -Identity fabrikam.com")
        .unwrap_err()
        .to_string();
    assert!(e.contains("already on the allowed list"), "{e}");
    assert!(body(&s, "CsBlockedDomain", "fabrikam.com").is_none());
    let e = sh
        .run("New-CsAllowedDomain -Identity rival.test")
        .unwrap_err()
        .to_string();
    assert!(e.contains("already on the blocked list"), "{e}");
    let e = sh
        .run("New-CsAllowedDomain -Identity fabrikam.com")
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    let e = sh
        .run(r#"New-CsAllowedDomain -Identity "bad domain!""#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a domain name"), "{e}");
    run(
        &mut sh,
        "Set-CsAllowedDomain -Identity fabrikam.com -MarkForMonitoring $true",
    );
    assert_eq!(
        body(&s, "CsAllowedDomain", "fabrikam.com").unwrap()["MarkForMonitoring"],
        json!(true)
    );
    let e = sh
        .run("Set-CsAllowedDomain -MarkForMonitoring $true")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Identity"), "{e}");
    run(&mut sh, "Remove-CsAllowedDomain -Identity fabrikam.com");
    assert!(run(&mut sh, "Get-CsAllowedDomain").is_empty());
    run(&mut sh, "New-CsBlockedDomain -Identity fabrikam.com");
}

#[test]
fn static_routes_are_made_and_added_like_lyncs() {
    let (_d, s) = store();
    let mut sh = session(&s);
    run(
        &mut sh,
        r#"$route = New-CsStaticRoute -TLSRoute -Destination "127.0.0.2" -Port 5061 -MatchUri "fabrikam.com" -UseDefaultCertificate $true"#,
    );
    run(
        &mut sh,
        "Set-CsStaticRoutingConfiguration -Identity global -Route @{Add=$route}",
    );
    run(
        &mut sh,
        r#"$tcp = New-CsStaticRoute -TCPRoute -Destination 127.0.0.3 -Port 5070 -MatchUri contoso.test"#,
    );
    run(
        &mut sh,
        "Set-CsStaticRoutingConfiguration -Route @{Add=$tcp}",
    );
    let routes = body(&s, "CsStaticRoutingConfiguration", "Global").unwrap()["Route"].clone();
    let routes = routes.as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["Transport"], json!("TLS"));
    assert_eq!(routes[0]["Destination"], json!("127.0.0.2"));
    assert_eq!(routes[0]["Port"], json!(5061));
    assert_eq!(routes[1]["Transport"], json!("TCP"));
    // removing by the same object (matched on MatchUri)
    run(
        &mut sh,
        "Set-CsStaticRoutingConfiguration -Route @{Remove=$tcp}",
    );
    assert_eq!(
        body(&s, "CsStaticRoutingConfiguration", "Global").unwrap()["Route"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // adding the same route again changes nothing; another for the same MatchUri is refused
    let before = body(&s, "CsStaticRoutingConfiguration", "Global");
    run(
        &mut sh,
        "Set-CsStaticRoutingConfiguration -Route @{Add=$route}",
    );
    let e = sh
        .run(
            r#"$other = New-CsStaticRoute -TLSRoute -Destination "127.0.0.9" -MatchUri "FABRIKAM.com"; Set-CsStaticRoutingConfiguration -Route @{Add=$other}"#,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("MatchUri 'fabrikam.com' is already in Route"),
        "{e}"
    );
    assert_eq!(body(&s, "CsStaticRoutingConfiguration", "Global"), before);
    let e = sh
        .run(r#"Set-CsStaticRoutingConfiguration -Route @{Add="fabrikam.com"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("New-CsStaticRoute"), "{e}");
    let e = sh
        .run(
            r#"$r = New-CsStaticRoute -TLSRoute -TCPRoute -Destination 127.0.0.2 -MatchUri x.test"#,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("either"), "{e}");
    let e = sh
        .run(r#"$r = New-CsStaticRoute -Destination "a b" -MatchUri x.test"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Destination"), "{e}");
}

#[test]
fn external_access_policy_granted_per_user() {
    let (_d, s) = store();
    let mut sh = session(&s);
    run(
        &mut sh,
        "New-CsExternalAccessPolicy -Identity FederationOnly -EnableFederationAccess $true",
    );
    run(&mut sh, "Grant-CsExternalAccessPolicy -Identity sip:user0000@example.test -PolicyName FederationOnly");
    let a = body(&s, "CsUserPolicyAssignment", "user0000@example.test").unwrap();
    assert_eq!(a["ExternalAccessPolicy"], json!("FederationOnly"));
}

#[test]
fn information_barriers() {
    let (_d, s) = store();
    let mut sh = session(&s);
    run(
        &mut sh,
        r#"New-CsInformationBarrier -Identity ResearchVsSales -SegmentA "user0000@example.test" -SegmentB "user0001@example.test","*@rival.test" -Description "Chinese wall""#,
    );
    let b = body(&s, "CsInformationBarrier", "ResearchVsSales").unwrap();
    assert_eq!(
        b["SegmentB"],
        json!(["user0001@example.test", "*@rival.test"])
    );
    assert_eq!(b["Enabled"], json!(true));
    run(
        &mut sh,
        r#"Set-CsInformationBarrier -Identity ResearchVsSales -SegmentA @{Add="user0002@example.test"} -Enabled $false"#,
    );
    let b = body(&s, "CsInformationBarrier", "ResearchVsSales").unwrap();
    assert_eq!(
        b["SegmentA"],
        json!(["user0000@example.test", "user0002@example.test"])
    );
    assert_eq!(b["Enabled"], json!(false));
    assert_eq!(run(&mut sh, "Get-CsInformationBarrier").len(), 1);
    run(
        &mut sh,
        "Remove-CsInformationBarrier -Identity ResearchVsSales",
    );
    assert!(run(&mut sh, "Get-CsInformationBarrier").is_empty());
}
