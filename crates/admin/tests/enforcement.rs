//! No silently inert setting: every property is enforced by the server or says it is not —
//! `Get-Help` lists the parameters confab does not enforce, and a `Set-`/`New-` that sets
//! one succeeds with a warning naming it.

use confab_admin::object::Obj;
use confab_admin::{principal_for, Output, Session};
use confab_store::Store;
use serde_json::{json, Value};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    (dir, s)
}

fn session<'a>(s: &'a Store) -> Session<'a> {
    let a = s.get_admin("root").unwrap().unwrap();
    Session::new(s, principal_for(s, &a).unwrap(), "test", "example.test")
}

fn run(sh: &mut Session, src: &str) -> Output {
    sh.run(src)
        .unwrap_or_else(|e| panic!("{src}\n  failed: {e}"))
}

fn list(o: &Obj, name: &str) -> Vec<String> {
    o.get(name)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no {name} in {o:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn get_help_lists_the_parameters_confab_does_not_enforce() {
    let (_d, s) = store();
    let mut sh = session(&s);
    let out = run(&mut sh, "Get-Help Set-CsClientPolicy");
    let h = &out.objects[0];
    let not = list(h, "NotEnforced");
    assert!(not.contains(&"-DisableHtmlIm".to_string()), "{not:?}");
    assert!(not.contains(&"-MaximumNumberOfContacts".to_string()));
    assert!(
        !not.contains(&"-DisableRTFIm".to_string()),
        "enforced by the proxy"
    );
    assert_eq!(
        not.len(),
        17,
        "all of CsClientPolicy but DisableRTFIm: {not:?}"
    );
    assert!(list(h, "NotEnforcedWhy")
        .iter()
        .any(|n| n.starts_with("DisableHtmlIm: ")));
    assert!(out.text.contains("NotEnforced"), "{}", out.text);

    let h = &run(&mut sh, "Get-Help Set-CsImFilterConfiguration").objects[0];
    assert_eq!(list(h, "NotEnforced"), ["-AllowMessage"]);
    let h = &run(&mut sh, "Get-Help Set-CsFileTransferFilterConfiguration").objects[0];
    assert!(list(h, "NotEnforced").is_empty());
    // the conferencing configuration: the client audio port range is enforced (the MCU),
    // the video and sharing ports are not
    let h = &run(&mut sh, "Get-Help New-CsConferencingConfiguration").objects[0];
    let not = list(h, "NotEnforced");
    assert!(
        !not.contains(&"-ClientMediaPortRangeEnabled".to_string()),
        "{not:?}"
    );
    assert!(!not.contains(&"-ClientAudioPort".to_string()), "{not:?}");
    assert!(not.contains(&"-ClientVideoPort".to_string()), "{not:?}");
    // the meeting configuration's creation rules are enforced (confab_admin::meetings)
    let h = &run(&mut sh, "Get-Help New-CsMeetingConfiguration").objects[0];
    let not = list(h, "NotEnforced");
    for enforced in [
        "-PstnCallersBypassLobby",
        "-DesignateAsPresenter",
        "-AssignedConferenceTypeByDefault",
        "-EnableAssignedConferenceType",
    ] {
        assert!(!not.contains(&enforced.to_string()), "{enforced}: {not:?}");
    }
    // the focus reads AdmitAnonymousUsersByDefault (focus/admission.rs)
    assert!(
        !not.contains(&"-AdmitAnonymousUsersByDefault".to_string()),
        "{not:?}"
    );
    assert!(
        not.contains(&"-RequireRoomSystemsAuthorization".to_string()),
        "{not:?}"
    );
    // Get- has no property parameters: the properties are named as they are
    let h = &run(&mut sh, "Get-Help Get-CsExternalAccessPolicy").objects[0];
    assert_eq!(
        list(h, "NotEnforced"),
        [
            "EnableXmppAccess",
            "EnablePublicCloudAccess",
            "EnablePublicCloudAudioVideoAccess"
        ]
    );
    // every cmdlet of a configuration object answers, and every unenforced name is one of
    // its properties
    for k in confab_admin::schema::kinds() {
        let h = &run(&mut sh, &format!("Get-Help Get-{}", k.noun)).objects[0];
        for n in list(h, "NotEnforced") {
            assert!(k.prop(&n).is_some(), "{}: {n}", k.noun);
        }
    }
}

#[test]
fn setting_an_unenforced_property_warns_and_names_it() {
    let (_d, s) = store();
    let mut sh = session(&s);
    let out = run(
        &mut sh,
        "Set-CsClientPolicy -DisableHtmlIm $true -DisableRTFIm $true -DisplayPhoto NoPhoto",
    );
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    assert!(out.warnings[0].starts_with("Set-CsClientPolicy: DisableHtmlIm is not enforced"));
    assert!(out.warnings[1].contains("DisplayPhoto is not enforced"));
    assert!(out.warnings.iter().all(|w| !w.contains("DisableRTFIm")));
    // the change is made all the same
    let body = s
        .get_config("CsClientPolicy", "Global")
        .unwrap()
        .unwrap()
        .body;
    assert_eq!(body["DisableHtmlIm"], json!(true));
    assert_eq!(body["DisplayPhoto"], json!("NoPhoto"));

    // an enforced property alone: no warning
    let out = run(&mut sh, "Set-CsImFilterConfiguration -Action Block");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let out = run(&mut sh, "Set-CsImFilterConfiguration -AllowMessage 'hi'");
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].contains("AllowMessage"));

    // New- with a property, through a pipeline of objects too
    let out = run(
        &mut sh,
        "New-CsExternalAccessPolicy -Identity Xmpp -EnableXmppAccess $true -EnableFederationAccess $true",
    );
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("EnableXmppAccess"));
    let out = run(
        &mut sh,
        "Get-CsExternalAccessPolicy -Identity Xmpp | Set-CsExternalAccessPolicy -EnablePublicCloudAccess $true",
    );
    assert!(out.warnings[0].contains("EnablePublicCloudAccess"));

    // a document confab reads: no warning without properties
    let out = run(
        &mut sh,
        "New-CsConferencingConfiguration -Identity Site:Redmond",
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    // the meeting configuration is read (the rules of meeting creation): only its
    // unenforced properties warn
    let out = run(
        &mut sh,
        "New-CsMeetingConfiguration -Identity Site:Redmond -PstnCallersBypassLobby $false",
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let out = run(
        &mut sh,
        "Set-CsMeetingConfiguration -Identity Site:Redmond -RequireRoomSystemsAuthorization $true",
    );
    assert!(
        out.warnings[0].contains("RequireRoomSystemsAuthorization"),
        "{:?}",
        out.warnings
    );
    let out = run(
        &mut sh,
        "New-CsConferencingPolicy -Identity Big -MaxMeetingSize 500 -AllowIPVideo $false",
    );
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].contains("AllowIPVideo"),
        "{:?}",
        out.warnings
    );
    assert!(
        !out.warnings[0].contains("MaxMeetingSize"),
        "{:?}",
        out.warnings
    );

    // a collection whose members are what is enforced: no warning
    let out = run(
        &mut sh,
        "New-CsBlockedDomain -Identity bad.test -Comment 'no'",
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);

    // warnings belong to the script that caused them
    let out = run(&mut sh, "Get-CsClientPolicy");
    assert!(out.warnings.is_empty());
}

#[test]
fn import_checks_documents_and_warns_about_unenforced_values() {
    let (d, s) = store();
    // imports read only from the data directory's export folder
    let export = d.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    let mut sh = session(&s).with_export_dir(&export);
    let file = export.join("bad.json");
    let write = |docs: Value| {
        let _ = std::fs::remove_file(&file);
        std::fs::write(
            &file,
            json!({"format": "confab-configuration/1", "documents": docs, "roles": []}).to_string(),
        )
        .unwrap();
    };
    let import = format!("Import-CsConfiguration -FileName '{}'", file.display());
    write(
        json!([{"kind": "CsImFilterConfiguration", "identity": "Global", "body": {"Action": "Frob"}}]),
    );
    let e = sh.run(&import).unwrap_err().to_string();
    assert!(e.contains("Action"), "{e}");
    write(json!([{"kind": "CsImFilterConfiguration", "identity": "Global", "body": {"Nope": 1}}]));
    assert!(sh.run(&import).unwrap_err().to_string().contains("Nope"));
    write(json!([{"kind": "CsAccessEdgeConfiguration", "identity": "Site:X", "body": {}}]));
    assert!(sh.run(&import).is_err());
    assert!(s
        .get_config("CsImFilterConfiguration", "Global")
        .unwrap()
        .is_none());

    write(
        json!([{"kind": "CsClientPolicy", "identity": "Tag:X", "body": {"DisableHtmlIm": true, "DisableRTFIm": true}}]),
    );
    let out = run(&mut sh, &import);
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("DisableHtmlIm"));
    assert!(s.get_config("CsClientPolicy", "Tag:X").unwrap().is_some());
}
