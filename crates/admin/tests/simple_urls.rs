//! Simple URLs through the shell against a real store (issue #18 part 2): the cookbook's
//! New-CsSimpleUrlEntry / New-CsSimpleUrl / Set-CsSimpleUrlConfiguration -SimpleUrl
//! @{Add=…} flow, Get- output, site configurations and Remove-, every rule Lync checks
//! (refused with the URL named, changing nothing), the not-enforced warning, Get-Help,
//! export and import, and RBAC (CsServerAdministrator may set them, CsHelpDesk may not).

use confab_admin::{ExecError, Session};
use serde_json::{json, Value};

mod common;
use common::{fails, one, prop, run, session, store};

const KIND: &str = "CsSimpleUrlConfiguration";

/// Every stored simple URL configuration, to show that a refused command changed nothing.
fn configs(s: &confab_store::Store) -> Value {
    Value::Array(
        s.list_config(KIND)
            .unwrap()
            .into_iter()
            .map(|d| json!([d.identity, d.body]))
            .collect(),
    )
}

/// The cookbook's three simple URLs in $meet, $dialin and $admin (path form for the
/// first two).
const MAKE: &str = r#"$e = New-CsSimpleUrlEntry -Url "https://lync.example.test/Meet"; $meet = New-CsSimpleUrl -Component "meet" -Domain "Example.test" -SimpleUrlEntry $e -ActiveUrl "https://lync.example.test/Meet"; $d = New-CsSimpleUrlEntry -Url "https://lync.example.test/Dialin"; $dialin = New-CsSimpleUrl -Component dialin -Domain * -SimpleUrlEntry $d -ActiveUrl https://lync.example.test/Dialin; $a = New-CsSimpleUrlEntry -Url https://admin.example.test; $admin = New-CsSimpleUrl -Component Cscp -Domain "*" -SimpleUrlEntry $a -ActiveUrl https://admin.example.test"#;

fn simple_urls(sh: &mut Session, identity: &str) -> Vec<(String, String, String)> {
    let o = one(
        sh,
        &format!("Get-CsSimpleUrlConfiguration -Identity {identity}"),
    );
    prop(&o, "SimpleUrl")
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["Component"].as_str().unwrap().to_string(),
                u["Domain"].as_str().unwrap().to_string(),
                u["ActiveUrl"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_cookbook_flow_adds_removes_and_replaces_simple_urls() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    // Global exists, empty
    assert!(simple_urls(&mut sh, "Global").is_empty());

    // the in-memory objects look like Lync's
    let e = one(
        &mut sh,
        r#"New-CsSimpleUrlEntry -Url "https://meet.example.test""#,
    );
    assert_eq!(prop(&e, "Url"), json!("https://meet.example.test"));
    let u = one(
        &mut sh,
        r#"$e = New-CsSimpleUrlEntry -Url "https://meet.example.test"; New-CsSimpleUrl -Component "meet" -Domain "example.test" -SimpleUrlEntry $e -ActiveUrl "https://meet.example.test""#,
    );
    assert_eq!(prop(&u, "Component"), json!("Meet"));
    assert_eq!(prop(&u, "Domain"), json!("example.test"));
    assert_eq!(
        prop(&u, "SimpleUrlEntry"),
        json!([{ "Url": "https://meet.example.test" }])
    );
    assert_eq!(prop(&u, "ActiveUrl"), json!("https://meet.example.test"));
    // nothing stored by making them
    assert_eq!(configs(&s), json!([]));

    let out = run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -Identity Global -SimpleUrl @{{Add=$meet}}"),
    );
    // stored and shown (enforced: the web site routes by them, so no "not enforced"
    // warning), with a warning for the missing Dialin
    assert!(
        !out.warnings.iter().any(|w| w.contains("not enforced")),
        "{:?}",
        out.warnings
    );
    assert!(
        out.warnings.iter().any(|w| w.contains("no Dialin URL")),
        "{:?}",
        out.warnings
    );
    assert_eq!(
        simple_urls(&mut sh, "Global"),
        [(
            "Meet".into(),
            "example.test".into(),
            "https://lync.example.test/Meet".into()
        )]
    );
    let out = run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Add=$dialin,$admin}}"),
    );
    assert!(!out.warnings.iter().any(|w| w.contains("no Dialin URL")));
    assert_eq!(simple_urls(&mut sh, "Global").len(), 3);
    // shown as its objects, as Lync's shell does
    let text = run(&mut sh, "Get-CsSimpleUrlConfiguration -Identity Global").text;
    assert!(text.contains("Identity  : Global"), "{text}");
    assert!(
        text.contains("Component=Meet;Domain=example.test;SimpleUrlEntry={Url=https://lync.example.test/Meet}"),
        "{text}"
    );
    // the stored body is the typed document, no shell type names
    let body = &s.get_config(KIND, "Global").unwrap().unwrap().body;
    assert!(
        !Value::Object(body.clone()).to_string().contains("_type"),
        "{body:?}"
    );
    let (c, bad) =
        <confab_policy::SimpleUrlConfiguration as confab_policy::Document>::from_body(body);
    assert!(bad.is_empty());
    assert_eq!(c.simple_url[2].component, "Cscp");

    // Remove takes the object out
    run(
        &mut sh,
        &format!(
            "{MAKE}; Set-CsSimpleUrlConfiguration -Identity global -SimpleUrl @{{Remove=$admin}}"
        ),
    );
    assert_eq!(
        simple_urls(&mut sh, "Global")
            .iter()
            .map(|u| u.0.as_str())
            .collect::<Vec<_>>(),
        ["Meet", "Dialin"]
    );
    // Replace sets the list
    run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Replace=$dialin}}"),
    );
    assert_eq!(simple_urls(&mut sh, "Global").len(), 1);
    // a meet URL with two entries, the second one active
    run(
        &mut sh,
        r#"$e1 = New-CsSimpleUrlEntry -Url https://meet.example.test; $e2 = New-CsSimpleUrlEntry -Url https://meet2.example.test; $m = New-CsSimpleUrl -Component Meet -Domain example.test -SimpleUrlEntry $e1,$e2 -ActiveUrl https://meet2.example.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
    );
    let o = one(&mut sh, "Get-CsSimpleUrlConfiguration -Identity Global");
    assert_eq!(
        prop(&o, "SimpleUrl")[1]["SimpleUrlEntry"],
        json!([{ "Url": "https://meet.example.test" }, { "Url": "https://meet2.example.test" }])
    );
    // $null empties it
    run(&mut sh, "Set-CsSimpleUrlConfiguration -SimpleUrl $null");
    assert!(simple_urls(&mut sh, "Global").is_empty());
}

#[test]
fn site_configurations_and_remove() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        &format!("{MAKE}; New-CsSimpleUrlConfiguration -Identity site:Redmond -SimpleUrl @{{Add=$meet,$dialin}}"),
    );
    assert_eq!(simple_urls(&mut sh, "site:Redmond").len(), 2);
    let ids: Vec<Value> = run(&mut sh, "Get-CsSimpleUrlConfiguration")
        .objects
        .iter()
        .map(|o| prop(o, "Identity"))
        .collect();
    assert_eq!(ids, [json!("Global"), json!("Site:Redmond")]);
    // a second one at the same site is refused
    let e = fails(
        &mut sh,
        "New-CsSimpleUrlConfiguration -Identity site:Redmond",
    );
    assert!(e.contains("already exists"), "{e}");
    // a site configuration is checked like Global
    let e = fails(
        &mut sh,
        &format!(
            "{MAKE}; New-CsSimpleUrlConfiguration -Identity site:Dublin -SimpleUrl $meet,$meet"
        ),
    );
    assert!(e.contains("two Meet URLs"), "{e}");
    assert!(s.get_config(KIND, "Site:Dublin").unwrap().is_none());
    // not at other scopes
    let e = fails(
        &mut sh,
        "New-CsSimpleUrlConfiguration -Identity service:Registrar:pool.example.test",
    );
    assert!(
        e.to_lowercase().contains("scope") || e.contains("Identity"),
        "{e}"
    );

    // Remove: a site's goes, Global's is reset to the defaults
    run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Add=$dialin}}"),
    );
    run(
        &mut sh,
        "Remove-CsSimpleUrlConfiguration -Identity site:Redmond",
    );
    let e = fails(
        &mut sh,
        "Get-CsSimpleUrlConfiguration -Identity site:Redmond",
    );
    assert!(e.contains("does not exist"), "{e}");
    run(&mut sh, "Remove-CsSimpleUrlConfiguration -Identity Global");
    assert!(simple_urls(&mut sh, "Global").is_empty());
    assert_eq!(configs(&s), json!([]));
}

#[test]
fn every_rule_is_checked_naming_the_url_and_a_refusal_changes_nothing() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Add=$meet,$dialin,$admin}}"),
    );
    let before = configs(&s);
    let cases: &[(&str, &str)] = &[
        // entries: https, a host, no port
        (
            r#"New-CsSimpleUrlEntry -Url "http://meet.example.test""#,
            "'http://meet.example.test' is not an https:// URL",
        ),
        (
            r#"New-CsSimpleUrlEntry -Url "https://meet.example.test:4443""#,
            "'https://meet.example.test:4443' names a port",
        ),
        (
            r#"New-CsSimpleUrlEntry -Url "https://meet""#,
            "'https://meet' does not name a host",
        ),
        (
            r#"New-CsSimpleUrlEntry -Url "https://192.0.2.1/Meet""#,
            "'https://192.0.2.1/Meet' does not name a host",
        ),
        (
            r#"$u = "https://meet.example.test:444"; New-CsSimpleUrlEntry -Url $u"#,
            "names a port",
        ),
        // simple URLs
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://x.example.test; New-CsSimpleUrl -Component Web -Domain * -SimpleUrlEntry $e -ActiveUrl https://x.example.test"#,
            "'Web' is not a simple URL component",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://x.example.test; New-CsSimpleUrl -Component Dialin -Domain example.test -SimpleUrlEntry $e -ActiveUrl https://x.example.test"#,
            "its Domain is *",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://x.example.test; New-CsSimpleUrl -Component Meet -Domain * -SimpleUrlEntry $e -ActiveUrl https://x.example.test"#,
            "is not a SIP domain",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://x.example.test; New-CsSimpleUrl -Component Meet -Domain example.test -SimpleUrlEntry $e"#,
            "has no ActiveUrl",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://x.example.test; New-CsSimpleUrl -Component Meet -Domain example.test -SimpleUrlEntry $e -ActiveUrl https://y.example.test"#,
            "ActiveUrl 'https://y.example.test' of the Meet URL of example.test is not one of its SimpleUrlEntry URLs",
        ),
        (
            r#"New-CsSimpleUrl -Component Meet -Domain example.test -ActiveUrl https://y.example.test"#,
            "has no SimpleUrlEntry",
        ),
        (
            r#"New-CsSimpleUrl -Component Meet -Domain example.test -SimpleUrlEntry "https://y.example.test" -ActiveUrl https://y.example.test"#,
            "made with New-CsSimpleUrlEntry",
        ),
        // the configuration
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://meet.example.test; $m = New-CsSimpleUrl -Component Meet -Domain EXAMPLE.TEST -SimpleUrlEntry $e -ActiveUrl https://meet.example.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "domain example.test has two Meet URLs ('https://lync.example.test/Meet' and 'https://meet.example.test')",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://dialin.example.test; $m = New-CsSimpleUrl -Component Dialin -Domain * -SimpleUrlEntry $e -ActiveUrl https://dialin.example.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "two Dialin URLs",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://cscp.example.test; $m = New-CsSimpleUrl -Component Admin -Domain * -SimpleUrlEntry $e -ActiveUrl https://cscp.example.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "two Cscp URLs",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://other.example.test; $f = New-CsSimpleUrlEntry -Url https://LYNC.example.test/meet; $m = New-CsSimpleUrl -Component Meet -Domain other.test -SimpleUrlEntry $e,$f -ActiveUrl https://other.example.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "'https://LYNC.example.test/meet' is used twice (as 'https://lync.example.test/Meet')",
        ),
        (
            // another simple URL with an ActiveUrl already there is refused, not dropped
            r#"$e = New-CsSimpleUrlEntry -Url https://LYNC.example.test/meet; $m = New-CsSimpleUrl -Component Meet -Domain other.test -SimpleUrlEntry $e -ActiveUrl https://LYNC.example.test/meet; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "ActiveUrl 'https://LYNC.example.test/meet' is already in SimpleUrl (as 'https://lync.example.test/Meet')",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://lync.example.test/Meet/x; $m = New-CsSimpleUrl -Component Meet -Domain other.test -SimpleUrlEntry $e -ActiveUrl https://lync.example.test/Meet/x; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "'https://lync.example.test/Meet' is a prefix of 'https://lync.example.test/Meet/x'",
        ),
        (
            r#"$e = New-CsSimpleUrlEntry -Url https://lync.example.test; $m = New-CsSimpleUrl -Component Meet -Domain other.test -SimpleUrlEntry $e -ActiveUrl https://lync.example.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
            "'https://lync.example.test' is a prefix of 'https://lync.example.test/Meet'",
        ),
        // objects not made by New-CsSimpleUrl
        (
            r#"Set-CsSimpleUrlConfiguration -SimpleUrl @{Component="Meet"; Domain="other.test"}"#,
            "SimpleUrl entries are made with New-CsSimpleUrl",
        ),
        (
            r#"Set-CsSimpleUrlConfiguration -SimpleUrl "https://x.example.test""#,
            "made with New-CsSimpleUrl",
        ),
        (
            r#"Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=@{ActiveUrl="https://x.example.test"; Component="Meet"; Domain="other.test"}}"#,
            "has no SimpleUrlEntry",
        ),
    ];
    for (src, want) in cases {
        let e = fails(&mut sh, src);
        assert!(e.contains(want), "{src}\n  said: {e}\n  wanted: {want}");
        assert_eq!(configs(&s), before, "{src} changed something");
    }
    // a script refused before it runs: the Set- before the bad entry does not happen
    let e = fails(
        &mut sh,
        r#"Set-CsSimpleUrlConfiguration -SimpleUrl $null; New-CsSimpleUrlEntry -Url http://x.example.test"#,
    );
    assert!(e.contains("https"), "{e}");
    assert_eq!(configs(&s), before);
    // the path form shares a host; a Meet URL per domain; Meeting is not under Meet
    run(
        &mut sh,
        r#"$e = New-CsSimpleUrlEntry -Url https://lync.example.test/Meeting; $m = New-CsSimpleUrl -Component Meet -Domain other.test -SimpleUrlEntry $e -ActiveUrl https://lync.example.test/Meeting; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
    );
    assert_eq!(simple_urls(&mut sh, "Global").len(), 4);
}

#[test]
fn a_meet_domain_no_user_is_in_is_accepted_with_a_warning() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let out = run(
        &mut sh,
        r#"$e = New-CsSimpleUrlEntry -Url https://meet.elsewhere.test; $m = New-CsSimpleUrl -Component Meet -Domain elsewhere.test -SimpleUrlEntry $e -ActiveUrl https://meet.elsewhere.test; Set-CsSimpleUrlConfiguration -SimpleUrl @{Add=$m}"#,
    );
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("no user is in domain elsewhere.test")),
        "{:?}",
        out.warnings
    );
    let out = run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Add=$meet}}"),
    );
    assert!(
        !out.warnings
            .iter()
            .any(|w| w.contains("no user is in domain example.test")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn help_describes_the_cmdlets_and_says_the_site_routes_by_them() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    for c in [
        "Get-CsSimpleUrlConfiguration",
        "Set-CsSimpleUrlConfiguration",
        "New-CsSimpleUrlConfiguration",
        "Remove-CsSimpleUrlConfiguration",
        "New-CsSimpleUrl",
        "New-CsSimpleUrlEntry",
    ] {
        let t = run(&mut sh, &format!("Get-Help {c}")).text;
        assert!(t.contains(c), "{c}: {t}");
    }
    let t = run(&mut sh, "Get-Help Set-CsSimpleUrlConfiguration").text;
    assert!(t.contains("SimpleUrl"), "{t}");
    assert!(!t.contains("NotEnforced"), "{t}");
    let t = run(&mut sh, "Get-Help Set-CsSimpleUrlConfiguration -Full").text;
    assert!(t.contains("the web site routes requests by them"), "{t}");
    let t = run(&mut sh, "Get-Help New-CsSimpleUrl").text;
    assert!(t.contains("Component") && t.contains("ActiveUrl"), "{t}");
}

#[test]
fn export_and_import_keep_and_check_simple_urls() {
    let (d, s) = store();
    let dir = d.path().join("export");
    std::fs::create_dir_all(&dir).unwrap();
    let mut sh = session(&s, "root").with_export_dir(dir.clone());
    run(
        &mut sh,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Add=$meet,$dialin}}; Export-CsConfiguration -FileName urls.json"),
    );
    let before = configs(&s);
    run(&mut sh, "Remove-CsSimpleUrlConfiguration -Identity Global");
    run(&mut sh, "Import-CsConfiguration -FileName urls.json");
    assert_eq!(configs(&s), before);

    // a hand-edited file breaking a rule is refused as a whole
    let text = std::fs::read_to_string(dir.join("urls.json")).unwrap();
    assert!(text.contains("https://lync.example.test/Dialin"));
    std::fs::write(
        dir.join("bad.json"),
        text.replace(
            "https://lync.example.test/Dialin",
            "https://lync.example.test/Meet",
        ),
    )
    .unwrap();
    run(&mut sh, "Remove-CsSimpleUrlConfiguration -Identity Global");
    let e = fails(&mut sh, "Import-CsConfiguration -FileName bad.json");
    assert!(e.contains("used twice"), "{e}");
    assert_eq!(configs(&s), json!([]));
}

#[test]
fn rbac_server_administrators_may_set_help_desk_may_only_look() {
    let (_d, s) = store();
    s.add_admin(
        "server",
        "serverpassword1",
        &["CsServerAdministrator".into()],
    )
    .unwrap();
    s.add_admin("help", "helppassword1", &["CsHelpDesk".into()])
        .unwrap();
    let mut root = session(&s, "root");
    run(
        &mut root,
        "New-CsAdminRole -Identity RedmondServer -Template CsServerAdministrator -ConfigScopes site:Redmond",
    );
    s.add_admin("redmond", "redmondpassword1", &["RedmondServer".into()])
        .unwrap();
    run(
        &mut root,
        "New-CsSimpleUrlConfiguration -Identity site:Redmond",
    );
    run(
        &mut root,
        "New-CsSimpleUrlConfiguration -Identity site:Dublin",
    );

    // CsServerAdministrator: Set- (Lync's role), not New-/Remove-
    let mut server = session(&s, "server");
    run(
        &mut server,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -SimpleUrl @{{Add=$meet,$dialin}}"),
    );
    assert_eq!(simple_urls(&mut server, "Global").len(), 2);
    let before = configs(&s);
    for src in [
        "New-CsSimpleUrlConfiguration -Identity site:Paris",
        "Remove-CsSimpleUrlConfiguration -Identity site:Dublin",
    ] {
        let e = server.run(src).unwrap_err();
        assert!(matches!(e, ExecError::Denied { .. }), "{src}: {e}");
    }
    assert_eq!(configs(&s), before);

    // CsHelpDesk looks only
    let mut help = session(&s, "help");
    for src in [
        "Set-CsSimpleUrlConfiguration -SimpleUrl $null",
        r#"New-CsSimpleUrlEntry -Url https://x.example.test"#,
        "Remove-CsSimpleUrlConfiguration -Identity Global",
    ] {
        let e = help.run(src).unwrap_err();
        assert!(matches!(e, ExecError::Denied { .. }), "{src}: {e}");
    }
    assert_eq!(configs(&s), before);
    assert_eq!(simple_urls(&mut help, "Global").len(), 2);

    // a site-scoped server administrator: its site only
    let mut redmond = session(&s, "redmond");
    run(
        &mut redmond,
        &format!("{MAKE}; Set-CsSimpleUrlConfiguration -Identity site:Redmond -SimpleUrl @{{Add=$dialin}}"),
    );
    for src in [
        "Set-CsSimpleUrlConfiguration -Identity site:Dublin -SimpleUrl $null",
        "Set-CsSimpleUrlConfiguration -SimpleUrl $null",
    ] {
        let e = redmond.run(src).unwrap_err();
        assert!(matches!(e, ExecError::OutOfScope { .. }), "{src}: {e}");
    }
    assert_eq!(simple_urls(&mut root, "Global").len(), 2);
    assert_eq!(simple_urls(&mut root, "site:Redmond").len(), 1);
}
