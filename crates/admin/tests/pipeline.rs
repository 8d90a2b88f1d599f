//! PowerShell's pipeline forms in the shell, against a real store, each output checked
//! property by property: Where-Object (script blocks and the simplified syntax),
//! Select-Object, Sort-Object, Measure-Object, Format-List, Format-Table, Export-Csv,
//! Get-Help and Get-Command; RBAC for the helpers, errors before anything runs.

mod common;

use common::{fails, run, session, store};
use confab_admin::object::Obj;
use confab_admin::Session;
use confab_store::{NewUser, Store};
use serde_json::{json, Value};

/// alice (Sales, "Alice Smith"), bob ("Bob Jones", disabled) and carol ("carol white",
/// voice enabled, a line URI), root a CsAdministrator, viewer a CsViewOnlyAdministrator.
fn fixture() -> (tempfile::TempDir, Store) {
    let (d, s) = store();
    s.add_user_in_ou(
        &NewUser {
            username: "carol",
            domain: "example.test",
            display_name: "",
            password: "pw-secret",
        },
        None,
    )
    .unwrap();
    s.add_admin(
        "viewer",
        "viewerpassword1",
        &["CsViewOnlyAdministrator".into()],
    )
    .unwrap();
    let mut sh = session(&s, "root");
    run(
        &mut sh,
        "Set-CsUser -Identity sip:alice@example.test -DisplayName 'Alice Smith'
         Set-CsUser -Identity sip:bob@example.test -DisplayName 'Bob Jones' -Enabled $false
         Set-CsUser -Identity sip:carol@example.test -DisplayName 'carol white' -EnterpriseVoiceEnabled $true -LineURI tel:+15550100",
    );
    (d, s)
}

/// The properties of a record, in order.
fn props(o: &Obj) -> Vec<(String, Value)> {
    match o {
        Obj::Record { props, .. } => props.clone(),
        other => panic!("not a record: {other:?}"),
    }
}

fn names(objs: &[Obj], prop: &str) -> Vec<String> {
    objs.iter()
        .map(|o| {
            o.get(prop)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no {prop} in {o:?}"))
                .to_string()
        })
        .collect()
}

fn objs(sh: &mut Session, src: &str) -> Vec<Obj> {
    run(sh, src).objects
}

#[test]
fn select_object_positional_and_property_lists() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let out = run(&mut sh, "Get-CsUser | Select-Object DisplayName");
    assert_eq!(out.objects.len(), 3);
    for (o, want) in out
        .objects
        .iter()
        .zip(["Alice Smith", "Bob Jones", "carol white"])
    {
        assert_eq!(props(o), vec![("DisplayName".to_string(), json!(want))]);
        let Obj::Record { type_name, .. } = o else {
            unreachable!()
        };
        assert_eq!(type_name, "Selected.CsUser");
    }
    // one property: printed as a table, as PowerShell prints objects without a view
    assert_eq!(
        out.text,
        "\nDisplayName\n-----------\nAlice Smith\nBob Jones\ncarol white\n\n"
    );

    let o = objs(
        &mut sh,
        "Get-CsUser -Identity sip:bob@example.test | select DisplayName,SipAddress",
    );
    assert_eq!(
        props(&o[0]),
        vec![
            ("DisplayName".to_string(), json!("Bob Jones")),
            ("SipAddress".to_string(), json!("sip:bob@example.test")),
        ]
    );
    // -Property, names as the object spells them, a missing one is $null
    let o = objs(
        &mut sh,
        "Get-CsUser sip:bob@example.test | Select-Object -Property sipaddress, enabled, Nonexistent",
    );
    assert_eq!(
        props(&o[0]),
        vec![
            ("SipAddress".to_string(), json!("sip:bob@example.test")),
            ("Enabled".to_string(), json!(false)),
            ("Nonexistent".to_string(), Value::Null),
        ]
    );
    // wildcards expand in the object's order
    let o = objs(
        &mut sh,
        "Get-CsUser sip:carol@example.test | Select-Object *Voice*",
    );
    assert_eq!(
        props(&o[0]),
        vec![
            ("EnterpriseVoiceEnabled".to_string(), json!(true)),
            ("HostedVoiceMail".to_string(), json!(false)),
            ("VoicePolicy".to_string(), Value::Null),
            ("HostedVoicemailPolicy".to_string(), Value::Null),
        ]
    );
    let all = objs(
        &mut sh,
        "Get-CsUser sip:carol@example.test | Select-Object *",
    );
    let full = objs(&mut sh, "Get-CsUser sip:carol@example.test");
    assert_eq!(props(&all[0]), props(&full[0]));
    // a calculated property
    let o = objs(
        &mut sh,
        "Get-CsUser sip:alice@example.test | Select-Object @{Name='User'; Expression={$_.SipAddress}}, Enabled",
    );
    assert_eq!(
        props(&o[0]),
        vec![
            ("User".to_string(), json!("sip:alice@example.test")),
            ("Enabled".to_string(), json!(true)),
        ]
    );
}

#[test]
fn select_object_expand_first_last_skip_unique() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    // the value itself
    let out = run(
        &mut sh,
        "Get-CsUser | Select-Object -ExpandProperty SipAddress",
    );
    assert_eq!(
        out.objects,
        [
            "sip:alice@example.test",
            "sip:bob@example.test",
            "sip:carol@example.test"
        ]
        .map(|v| Obj::Value(json!(v)))
    );
    assert_eq!(
        out.text,
        "sip:alice@example.test\nsip:bob@example.test\nsip:carol@example.test\n"
    );
    // a list: one per line
    run(
        &mut sh,
        "New-CsAdminRole -Identity Reader -Template CsViewOnlyAdministrator",
    );
    let cmdlets = objs(
        &mut sh,
        "Get-CsAdminRole Reader | Select-Object -ExpandProperty Cmdlets",
    );
    assert!(cmdlets.len() > 5, "{cmdlets:?}");
    assert!(cmdlets.contains(&Obj::Value(json!("Get-CsUser"))));
    assert!(cmdlets
        .iter()
        .all(|o| matches!(o, Obj::Value(Value::String(_)))));
    let e = fails(&mut sh, "Get-CsUser | Select-Object -ExpandProperty Nope");
    assert!(e.contains("Property \"Nope\" cannot be found"), "{e}");

    let first = objs(&mut sh, "Get-CsUser | Select-Object -First 2");
    assert_eq!(names(&first, "DisplayName"), ["Alice Smith", "Bob Jones"]);
    // the whole objects pass when no property is named
    assert_eq!(
        props(&first[0]),
        props(&objs(&mut sh, "Get-CsUser sip:alice@example.test")[0])
    );
    let last = objs(
        &mut sh,
        "Get-CsUser | Select-Object -Last 1 -Property DisplayName",
    );
    assert_eq!(
        props(&last[0]),
        vec![("DisplayName".to_string(), json!("carol white"))]
    );
    assert_eq!(last.len(), 1);
    let skip = objs(&mut sh, "Get-CsUser | Select-Object -Skip 1");
    assert_eq!(names(&skip, "DisplayName"), ["Bob Jones", "carol white"]);
    let skip_first = objs(&mut sh, "Get-CsUser | Select-Object -Skip 1 -First 1");
    assert_eq!(names(&skip_first, "DisplayName"), ["Bob Jones"]);
    // with -Last, -Skip counts from the end
    let skip_last = objs(&mut sh, "Get-CsUser | Select-Object -Skip 1 -Last 1");
    assert_eq!(names(&skip_last, "DisplayName"), ["Bob Jones"]);
    let uniq = objs(&mut sh, "Get-CsUser | Select-Object Enabled -Unique");
    assert_eq!(
        uniq.iter().map(props).collect::<Vec<_>>(),
        vec![
            vec![("Enabled".to_string(), json!(true))],
            vec![("Enabled".to_string(), json!(false))],
        ]
    );
    let e = fails(&mut sh, "Get-CsUser | Select-Object -First many");
    assert!(e.contains("Cannot bind parameter 'First'"), "{e}");
}

#[test]
fn where_object_script_blocks() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let w = |sh: &mut Session, cond: &str| -> Vec<String> {
        names(
            &objs(sh, &format!("Get-CsUser | Where-Object {cond}")),
            "DisplayName",
        )
    };
    assert_eq!(w(&mut sh, "{$_.Enabled -eq $false}"), ["Bob Jones"]);
    assert_eq!(w(&mut sh, "{$_.Enabled}"), ["Alice Smith", "carol white"]);
    assert_eq!(w(&mut sh, "{-not $_.Enabled}"), ["Bob Jones"]);
    assert_eq!(
        w(&mut sh, "{$_.Enabled -ne $false}"),
        ["Alice Smith", "carol white"]
    );
    // case-insensitive, as in PowerShell; -c… respects case
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -eq 'ALICE SMITH'}"),
        ["Alice Smith"]
    );
    assert!(w(&mut sh, "{$_.DisplayName -ceq 'ALICE SMITH'}").is_empty());
    assert_eq!(w(&mut sh, "{$_.DisplayName -like 'c*'}"), ["carol white"]);
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -clike 'C*'}"),
        Vec::<String>::new()
    );
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -notlike '*smith'}"),
        ["Bob Jones", "carol white"]
    );
    assert_eq!(
        w(&mut sh, "{$_.SipAddress -match '^sip:(a|b)'}"),
        ["Alice Smith", "Bob Jones"]
    );
    assert_eq!(
        w(&mut sh, "{$_.SipAddress -notmatch 'B'}"),
        ["Alice Smith", "carol white"]
    );
    assert_eq!(
        w(
            &mut sh,
            "{$_.Enabled -and $_.EnterpriseVoiceEnabled -eq $true}"
        ),
        ["carol white"]
    );
    assert_eq!(
        w(
            &mut sh,
            "{$_.DisplayName -like 'a*' -or $_.Enabled -eq $false}"
        ),
        ["Alice Smith", "Bob Jones"]
    );
    assert_eq!(
        w(
            &mut sh,
            "{ -not ($_.DisplayName -like 'a*' -or $_.Enabled -eq $false) }"
        ),
        ["carol white"]
    );
    assert_eq!(w(&mut sh, "{$_.LineURI -ne $null}"), ["carol white"]);
    assert_eq!(
        w(&mut sh, "{$_.LineURI -eq $null}"),
        ["Alice Smith", "Bob Jones"]
    );
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -in 'bob jones','CAROL WHITE'}"),
        ["Bob Jones", "carol white"]
    );
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -notin 'bob jones','CAROL WHITE'}"),
        ["Alice Smith"]
    );
    // string comparisons order text ignoring case
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -gt 'b'}"),
        ["Bob Jones", "carol white"]
    );
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -ge 'Bob Jones'}"),
        ["Bob Jones", "carol white"]
    );
    assert_eq!(w(&mut sh, "{$_.DisplayName -lt 'B'}"), ["Alice Smith"]);
    assert_eq!(
        w(&mut sh, "{$_.DisplayName -le 'bob jones'}"),
        ["Alice Smith", "Bob Jones"]
    );
    // aliases, $PSItem, a variable
    run(&mut sh, "$who = 'Bob Jones'");
    assert_eq!(
        names(
            &objs(&mut sh, "Get-CsUser | ? {$PSItem.DisplayName -eq $who}"),
            "DisplayName"
        ),
        ["Bob Jones"]
    );
    assert_eq!(
        names(
            &objs(&mut sh, "Get-CsUser | where {$_.Enabled -eq $false}"),
            "DisplayName"
        ),
        ["Bob Jones"]
    );
    // -contains on a list property
    run(
        &mut sh,
        "New-CsAdminRole -Identity Reader -Template CsViewOnlyAdministrator",
    );
    let roles = objs(
        &mut sh,
        "Get-CsAdminRole | Where-Object {$_.Cmdlets -contains 'get-csuser'}",
    );
    assert!(
        roles
            .iter()
            .any(|r| r.identity().as_deref() == Some("Reader")),
        "{roles:?}"
    );
    let not = objs(
        &mut sh,
        "Get-CsAdminRole | Where-Object {$_.Cmdlets -notcontains 'Get-CsUser'}",
    );
    assert!(not
        .iter()
        .all(|r| r.identity().as_deref() != Some("Reader")));
    // numbers: 10 -gt 9 numerically
    let m = objs(
        &mut sh,
        "Get-CsUser | Measure-Object | Where-Object {$_.Count -gt 2}",
    );
    assert_eq!(m.len(), 1);
    let m = objs(
        &mut sh,
        "Get-CsUser | Measure-Object | Where-Object {$_.Count -ge 4}",
    );
    assert!(m.is_empty());
    let m = objs(
        &mut sh,
        "Get-CsUser | Measure-Object | Where-Object {$_.Count -lt 4 -and $_.Count -le 3}",
    );
    assert_eq!(m.len(), 1);
}

#[test]
fn where_object_simplified_syntax() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let w = |sh: &mut Session, args: &str| -> Vec<String> {
        names(
            &objs(sh, &format!("Get-CsUser | Where-Object {args}")),
            "DisplayName",
        )
    };
    assert_eq!(w(&mut sh, "Enabled -eq $false"), ["Bob Jones"]);
    assert_eq!(w(&mut sh, "-Property Enabled -EQ $false"), ["Bob Jones"]);
    assert_eq!(
        w(&mut sh, "-Property DisplayName -Like '*o*'"),
        ["Bob Jones", "carol white"]
    );
    assert_eq!(w(&mut sh, "DisplayName -like 'a*'"), ["Alice Smith"]);
    assert_eq!(
        w(&mut sh, "DisplayName -CEQ 'carol white'"),
        ["carol white"]
    );
    assert!(w(&mut sh, "DisplayName -CEQ 'Carol White'").is_empty());
    assert_eq!(w(&mut sh, "SipAddress -Match 'carol'"), ["carol white"]);
    assert_eq!(w(&mut sh, "EnterpriseVoiceEnabled"), ["carol white"]);
    assert_eq!(
        w(&mut sh, "-Not EnterpriseVoiceEnabled"),
        ["Alice Smith", "Bob Jones"]
    );
    assert_eq!(
        w(&mut sh, "DisplayName -In 'Alice Smith','x'"),
        ["Alice Smith"]
    );
    // one operator only; checked before anything runs
    let e = fails(
        &mut sh,
        "Get-CsUser | Where-Object Enabled -EQ $true -NE $false",
    );
    assert!(e.contains("give one operator"), "{e}");
    let e = fails(&mut sh, "Get-CsUser | Where-Object Enabled -Bogus 1");
    assert!(e.contains("parameter name 'Bogus'"), "{e}");
    let e = fails(
        &mut sh,
        "Get-CsUser | Where-Object {$_.SipAddress -match '(' }",
    );
    assert!(e.contains("not a valid regular expression"), "{e}");
}

#[test]
fn sort_object() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let sorted = |sh: &mut Session, src: &str| names(&objs(sh, src), "DisplayName");
    assert_eq!(
        sorted(&mut sh, "Get-CsUser | Sort-Object DisplayName -Descending"),
        ["carol white", "Bob Jones", "Alice Smith"]
    );
    // case-insensitive: 'carol white' sorts between B and D
    run(
        &mut sh,
        "Set-CsUser -Identity sip:alice@example.test -DisplayName 'Dora'",
    );
    assert_eq!(
        sorted(&mut sh, "Get-CsUser | sort DisplayName"),
        ["Bob Jones", "carol white", "Dora"]
    );
    // by several properties: Enabled first (False < True), then name
    assert_eq!(
        sorted(
            &mut sh,
            "Get-CsUser | Sort-Object -Property Enabled, DisplayName"
        ),
        ["Bob Jones", "carol white", "Dora"]
    );
    assert_eq!(
        sorted(
            &mut sh,
            "Get-CsUser | Sort-Object Enabled, DisplayName -Descending"
        ),
        ["Dora", "carol white", "Bob Jones"]
    );
    let u = objs(&mut sh, "Get-CsUser | Sort-Object Enabled -Unique");
    assert_eq!(u.len(), 2);
    assert_eq!(u[0].get("Enabled"), Some(&json!(false)));
    assert_eq!(u[1].get("Enabled"), Some(&json!(true)));
    // bare values
    let v = objs(
        &mut sh,
        "Get-CsUser | Select-Object -ExpandProperty DisplayName | Sort-Object -Descending",
    );
    assert_eq!(
        v,
        ["Dora", "carol white", "Bob Jones"].map(|x| Obj::Value(json!(x)))
    );
}

#[test]
fn measure_object() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let out = run(&mut sh, "Get-CsUser | Measure-Object");
    assert_eq!(
        props(&out.objects[0]),
        vec![
            ("Count".to_string(), json!(3)),
            ("Average".to_string(), Value::Null),
            ("Sum".to_string(), Value::Null),
            ("Maximum".to_string(), Value::Null),
            ("Minimum".to_string(), Value::Null),
            ("Property".to_string(), Value::Null),
        ]
    );
    assert!(out.text.contains("Count    : 3\n"), "{}", out.text);
    // numbers, through a calculated property
    run(
        &mut sh,
        "New-CsAdminRole -Identity Reader -Template CsViewOnlyAdministrator",
    );
    let counts = objs(
        &mut sh,
        "Get-CsUser | Select-Object @{Name='Len'; Expression={$_.DisplayName.Length}} | Measure-Object -Property Len -Sum -Average -Maximum -Minimum",
    );
    // "Alice Smith" 11, "Bob Jones" 9, "carol white" 11
    assert_eq!(
        props(&counts[0]),
        vec![
            ("Count".to_string(), json!(3)),
            (
                "Average".to_string(),
                serde_json::to_value(31.0 / 3.0).unwrap()
            ),
            ("Sum".to_string(), json!(31)),
            ("Maximum".to_string(), json!(11)),
            ("Minimum".to_string(), json!(9)),
            ("Property".to_string(), json!("Len")),
        ]
    );
    // text: maximum and minimum compare ignoring case; a sum needs numbers
    let m = objs(
        &mut sh,
        "Get-CsUser | measure DisplayName -Maximum -Minimum",
    );
    assert_eq!(m[0].get("Maximum"), Some(&json!("carol white")));
    assert_eq!(m[0].get("Minimum"), Some(&json!("Alice Smith")));
    let e = fails(
        &mut sh,
        "Get-CsUser | Measure-Object -Property DisplayName -Sum",
    );
    assert!(
        e.contains("Input object \"Alice Smith\" is not numeric"),
        "{e}"
    );
    // $null values are not counted
    let m = objs(&mut sh, "Get-CsUser | Measure-Object -Property LineURI");
    assert_eq!(m[0].get("Count"), Some(&json!(1)));
}

#[test]
fn format_list_and_table() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let out = run(&mut sh, "Get-CsUser | fl DisplayName");
    assert_eq!(
        out.text,
        "\nDisplayName : Alice Smith\n\nDisplayName : Bob Jones\n\nDisplayName : carol white\n\n"
    );
    assert!(out.objects.is_empty(), "formatted output is text");
    let out = run(
        &mut sh,
        "Get-CsUser sip:bob@example.test | Format-List -Property SipAddress, Enabled",
    );
    assert_eq!(
        out.text,
        "\nSipAddress : sip:bob@example.test\nEnabled    : False\n\n"
    );
    let out = run(&mut sh, "Get-CsUser sip:bob@example.test | fl *Name*");
    assert_eq!(
        out.text,
        "\nDisplayName       : Bob Jones\nDistinguishedName : \n\n"
    );
    let out = run(&mut sh, "Get-CsUser | ft -Property SipAddress");
    assert_eq!(
        out.text,
        "\nSipAddress\n----------\nsip:alice@example.test\nsip:bob@example.test\nsip:carol@example.test\n\n"
    );
    let out = run(
        &mut sh,
        "Get-CsUser | Format-Table DisplayName, Enabled -AutoSize",
    );
    assert_eq!(
        out.text,
        "\nDisplayName Enabled\n----------- -------\nAlice Smith True\nBob Jones   False\ncarol white True\n\n"
    );
    let out = run(
        &mut sh,
        "Get-CsUser | Format-Table DisplayName -HideTableHeaders",
    );
    assert_eq!(out.text, "\nAlice Smith\nBob Jones\ncarol white\n\n");
    // numbers right-aligned under their header
    let out = run(&mut sh, "Get-CsUser | Measure-Object | ft Count, Property");
    assert_eq!(out.text, "\nCount Property\n----- --------\n    3\n\n");
    // without -AutoSize a cell is cut at 40 characters; with it, never
    let long = "x".repeat(50);
    run(
        &mut sh,
        &format!("Set-CsUser -Identity sip:bob@example.test -DisplayName '{long}'"),
    );
    let out = run(&mut sh, "Get-CsUser sip:bob@example.test | ft DisplayName");
    assert!(
        out.text.contains(&format!("{}...\n", "x".repeat(37))),
        "{}",
        out.text
    );
    let out = run(
        &mut sh,
        "Get-CsUser sip:bob@example.test | ft DisplayName -AutoSize",
    );
    assert!(out.text.contains(&format!("\n{long}\n")), "{}", out.text);
    // ft alone: the first four properties
    let out = run(&mut sh, "Get-CsUser sip:alice@example.test | ft");
    assert!(
        out.text
            .starts_with("\nIdentity               SipAddress             DisplayName Enabled\n"),
        "{}",
        out.text
    );
}

#[test]
fn export_csv_writes_only_into_the_export_folder() {
    let (d, s) = fixture();
    let dir = d.path().join("export");
    let mut sh = session(&s, "viewer").with_export_dir(&dir);
    run(
        &mut sh,
        "Get-CsUser | Select-Object DisplayName, SipAddress, Enabled | Export-Csv -Path users.csv -NoTypeInformation",
    );
    let text = std::fs::read_to_string(dir.join("users.csv")).unwrap();
    assert_eq!(
        text,
        "\"DisplayName\",\"SipAddress\",\"Enabled\"\r\n\
         \"Alice Smith\",\"sip:alice@example.test\",\"True\"\r\n\
         \"Bob Jones\",\"sip:bob@example.test\",\"False\"\r\n\
         \"carol white\",\"sip:carol@example.test\",\"True\"\r\n"
    );
    // replaced, with the type line by default; quotes doubled
    let e = fails(
        &mut sh,
        "Set-CsUser -Identity sip:bob@example.test -DisplayName x",
    );
    assert!(e.contains("access denied"), "a viewer changes nothing: {e}");
    let mut root = session(&s, "root").with_export_dir(&dir);
    run(
        &mut root,
        "Set-CsUser -Identity sip:bob@example.test -DisplayName 'Bob \"B\", Jr'",
    );
    run(
        &mut sh,
        "Get-CsUser sip:bob@example.test | select DisplayName | Export-Csv users.csv",
    );
    let text = std::fs::read_to_string(dir.join("users.csv")).unwrap();
    assert_eq!(
        text,
        "#TYPE Selected.CsUser\r\n\"DisplayName\"\r\n\"Bob \"\"B\"\", Jr\"\r\n"
    );
    let e = fails(&mut sh, "Get-CsUser | Export-Csv users.csv -NoClobber");
    assert!(e.contains("already exists"), "{e}");
    // nothing outside the folder
    for bad in ["../out.csv", "/tmp/confab-out.csv"] {
        let e = fails(&mut sh, &format!("Get-CsUser | Export-Csv -Path {bad}"));
        assert!(e.contains("export folder"), "{bad}: {e}");
    }
    assert!(!d.path().join("out.csv").exists());
    // refused without an export folder, before anything runs
    let mut none = session(&s, "root");
    let e = fails(&mut none, "Get-CsUser | Export-Csv -Path users2.csv");
    assert!(e.contains("export folder"), "{e}");
    let e = fails(&mut none, "Get-CsUser | Export-Csv");
    assert!(e.contains("mandatory parameter 'Path'"), "{e}");
    // audited
    let audit = objs(&mut root, "Get-CsAuditLog -Contains Export-Csv");
    assert!(!audit.is_empty());
}

#[test]
fn get_help_views() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "root");
    let out = run(&mut sh, "Get-Help Get-CsUser");
    let h = &out.objects[0];
    assert_eq!(h.get("Name"), Some(&json!("Get-CsUser")));
    assert_eq!(
        h.get("Syntax"),
        Some(&json!(
            "Get-CsUser [[-Identity] <XdsIdentity>] [-Filter <String>]"
        ))
    );
    let t = &out.text;
    for part in [
        "NAME\n    Get-CsUser\n",
        "SYNOPSIS\n    Lists users",
        "SYNTAX\n    Get-CsUser [[-Identity] <XdsIdentity>] [-Filter <String>]\n",
        "    -Identity <XdsIdentity>\n        Optional; default: None\n",
        "ROLES\n    Built-in roles that run it: CsAdministrator",
        "Your roles allow it.",
        "Get-Help Get-CsUser -Full",
    ] {
        assert!(t.contains(part), "{part:?} in {t}");
    }
    assert!(!t.contains("EXAMPLE 1"), "{t}");
    assert!(
        !t.contains("Get-CsAuditLog"),
        "not the list of every cmdlet: {t}"
    );

    // the brief view names what confab does not enforce, on a line of its own
    let t = run(&mut sh, "Get-Help Set-CsClientPolicy").text;
    assert!(
        t.lines()
            .any(|l| l.starts_with("NotEnforced: ") && l.contains("-DisableHtmlIm")),
        "{t}"
    );
    assert!(!t.contains("-DisableRTFIm,"), "enforced: {t}");

    // -Full: attributes, descriptions, what is not enforced, examples
    let t = run(&mut sh, "Get-Help Set-CsClientPolicy -Full").text;
    for part in [
        "-DisableHtmlIm <Boolean>",
        "Required?                    false",
        "Position?                    named",
        "Default value                (unchanged)",
        "NOT ENFORCED by confab",
        "NOT ENFORCED\n    ",
        "-------------------------- EXAMPLE 1 --------------------------",
        "PS C:\\> Set-CsClientPolicy -Identity Global -",
        "every run is written to the audit log",
    ] {
        assert!(t.contains(part), "{part:?} in {t}");
    }
    let t = run(&mut sh, "Get-Help New-CsMeetingConfiguration -Full").text;
    assert!(t.contains("-PstnCallersBypassLobby <Boolean>"), "{t}");
    assert!(t.contains("Enforced: "), "{t}");
    assert!(
        t.contains("Required?                    true"),
        "-Identity: {t}"
    );
    // a default of New- is Lync's
    assert!(
        t.contains("Default value                True")
            || t.contains("Default value                False"),
        "{t}"
    );

    let t = run(&mut sh, "Get-Help Where-Object -Detailed").text;
    assert!(
        t.contains("-FilterScript <ScriptBlock>\n        The condition"),
        "{t}"
    );
    assert!(
        t.contains("Get-CsUser | Where-Object {$_.Enabled -eq $false}"),
        "{t}"
    );
    assert!(t.contains("Every administrator may run it"), "{t}");
    assert!(t.contains("ALIASES\n    ?, where"), "{t}");
    assert!(!t.contains("Required?"), "{t}");

    let t = run(&mut sh, "Get-Help Get-CsUser -Examples").text;
    assert!(
        t.contains("EXAMPLE 1") && t.contains("PS C:\\> Get-CsUser\n"),
        "{t}"
    );
    assert!(!t.contains("SYNTAX"), "{t}");

    // every cmdlet has an example and a syntax
    for c in confab_admin::cmdlets::names() {
        let h = &run(&mut sh, &format!("Get-Help {c} -Examples")).objects[0];
        let ex = h.get("Examples").and_then(Value::as_array).unwrap();
        assert!(!ex.is_empty(), "{c}");
        let code = ex[0]["Code"].as_str().unwrap();
        assert!(code.contains(c), "{c}: {code}");
        // and the example parses
        confab_admin::parse(code).unwrap_or_else(|e| panic!("{c}: {code}: {e}"));
    }

    // Get-Help alone: how to use help
    let t = run(&mut sh, "Get-Help").text;
    assert!(t.contains("Get-Help <cmdlet-name> -Full"), "{t}");
    assert!(!t.contains("Get-CsAuditLog"), "{t}");
    // wildcards list matches
    let l = names(&objs(&mut sh, "Get-Help *CsUser"), "Name");
    assert!(
        l.len() >= 2 && l.iter().all(|n| n.ends_with("-CsUser")),
        "{l:?}"
    );
    assert!(l.contains(&"Get-CsUser".to_string()) && l.contains(&"Set-CsUser".to_string()));
    let mut sorted = l.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(l, sorted);
    // an alias
    let h = &objs(&mut sh, "help fl")[0];
    assert_eq!(h.get("Name"), Some(&json!("Format-List")));
    let e = fails(&mut sh, "Get-Help Get-CsUsr");
    assert!(
        e.contains("could not find Get-CsUsr") && e.contains("Get-CsUser"),
        "{e}"
    );
    let e = fails(&mut sh, "Get-Help Get-CsUser -Full -Examples");
    assert!(e.contains("-Full, -Detailed, -Examples"), "{e}");
}

#[test]
fn get_command_with_wildcards_and_roles() {
    let (_d, s) = fixture();
    let mut sh = session(&s, "viewer");
    let l = objs(&mut sh, "Get-Command *CsVoicePolicy*");
    assert_eq!(
        names(&l, "Name"),
        [
            "Get-CsVoicePolicy",
            "Grant-CsVoicePolicy",
            "New-CsVoicePolicy",
            "Remove-CsVoicePolicy",
            "Set-CsVoicePolicy",
            "Test-CsVoicePolicy"
        ]
    );
    let allowed: Vec<Value> = l
        .iter()
        .map(|o| o.get("Allowed").cloned().unwrap())
        .collect();
    // a view-only administrator reads, and changes nothing
    assert_eq!(
        &allowed[..5],
        [true, false, false, false, false].map(Value::Bool)
    );
    assert_eq!(
        props(&l[0]),
        vec![
            ("CommandType".to_string(), json!("Cmdlet")),
            ("Name".to_string(), json!("Get-CsVoicePolicy")),
            ("Allowed".to_string(), json!(true)),
        ]
    );
    let l = objs(&mut sh, "Get-Command -Verb Remove -Noun CsVoice*");
    assert!(!l.is_empty());
    assert!(
        names(&l, "Name")
            .iter()
            .all(|n| n.starts_with("Remove-CsVoice")),
        "{l:?}"
    );
    let l = names(&objs(&mut sh, "Get-Command -Noun CsUser"), "Name");
    for n in [
        "Disable-CsUser",
        "Enable-CsUser",
        "Get-CsUser",
        "Set-CsUser",
    ] {
        assert!(l.contains(&n.to_string()), "{n}: {l:?}");
    }
    assert!(l.iter().all(|n| n.ends_with("-CsUser")), "{l:?}");
    let l = objs(&mut sh, "gcm ft");
    assert_eq!(
        props(&l[0])[1],
        ("Name".to_string(), json!("ft -> Format-Table"))
    );
    let text = run(&mut sh, "Get-Command Get-CsUser").text;
    assert_eq!(
        text,
        "\nCommandType Name       Allowed\n----------- ----       -------\nCmdlet      Get-CsUser True\n\n"
    );
    let e = fails(&mut sh, "Get-Command Get-CsUsr");
    assert!(e.contains("Did you mean 'Get-CsUser'"), "{e}");
}

#[test]
fn helpers_are_allowed_to_every_role_and_checked_before_running() {
    let (_d, s) = fixture();
    // a role with a single cmdlet still shapes its output
    s.add_admin("pinonly", "pinonlypassword1", &["CsHelpDesk".into()])
        .unwrap();
    let mut sh = session(&s, "viewer");
    for src in [
        "Get-CsUser | Where-Object {$_.Enabled} | Sort-Object DisplayName | Select-Object DisplayName | Format-Table -AutoSize",
        "Get-CsUser | Measure-Object",
        "Get-Help Set-CsUser -Full",
        "Get-Command *User*",
    ] {
        run(&mut sh, src);
    }
    // nothing runs when a later command is wrong: the Set- before it changes nothing
    let mut root = session(&s, "root");
    let before = objs(&mut root, "Get-CsUser sip:alice@example.test");
    for src in [
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Select-Object -Bogus",
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Where-Object {$_.X -foo 1}",
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Where-Object {$undefined -eq 1}",
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Where-Object {$_.Name -eq bare}",
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Sort-Object -Descending -Bogus",
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Format-Table -AutoSiz -Bogus",
        "Set-CsUser -Identity sip:alice@example.test -DisplayName X; Get-CsUser | Where-Object",
    ] {
        assert!(root.run(src).is_err(), "{src}");
    }
    assert_eq!(objs(&mut root, "Get-CsUser sip:alice@example.test"), before);
    let e = fails(&mut root, "Get-CsUser | Where-Object {$_.X -foo 1}");
    assert!(e.contains("unknown operator -foo"), "{e}");
    let e = fails(&mut root, "Get-CsUser | Sort-Object -Bogus");
    assert!(
        e.contains("Sort-Object: A parameter cannot be found that matches parameter name 'Bogus'"),
        "{e}"
    );
    let e = fails(&mut root, "Get-CsUser | Where-Object");
    assert!(e.contains("FilterScript"), "{e}");
    let e = fails(&mut root, "$x = {$_.A}");
    assert!(!e.is_empty());
}
