//! Enterprise voice administration against a running `confab serve`: the cookbook's
//! chapter-3 recipes (dial plan, normalization rules, New-CsVoiceRegex, PSTN usages, a
//! gateway, a route, a voice policy, a trunk with an outbound translation rule, a user's
//! Enterprise Voice and LineURI) run as a script file by `confab shell`, read back through
//! the remote shell (REST); bad input refused and changing nothing; RBAC over REST; the
//! running server keeps loading its documents.

mod common;
use common::*;
use std::process::Output;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + String::from_utf8_lossy(&o.stderr).as_ref()
}

/// The value of `Name : value` in the shell's list output.
fn field<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

const COOKBOOK: &str = r#"# Lync Server 2013 cookbook, chapter 3: dial plans and voice routing
New-CsDialPlan -Identity site:Redmond -SimpleName RedmondDialPlan -Description "Redmond users"
New-CsVoiceNormalizationRule -Identity "site:Redmond/RedmondFourDigit" -Pattern '^(\d{4})$' -Translation '+1425555$1' -Priority 0
New-CsVoiceNormalizationRule -Parent site:Redmond -Name NationalLong -Pattern '^1(\d{10})$' -Translation '+$1'
$r = New-CsVoiceRegex -StartsWith 011 -DigitsToStrip 3 -DigitsToPrepend '+'
New-CsVoiceNormalizationRule -Parent site:Redmond -Name International -Pattern $r.Pattern -Translation $r.Translation
Set-CsPstnUsage -Identity global -Usage @{Add="Local"}
Set-CsPstnUsage -Usage @{Add="Long Distance","International"}
New-CsPstnGateway -Identity 127.0.0.2 -Port 5060 -Transport TCP -Description "carrier A"
New-CsVoiceRoute -Identity LocalRoute -NumberPattern '^(\+1[0-9]{10})$' -PstnUsages @{Add="Local"} -PstnGatewayList @{Add="PstnGateway:127.0.0.2"} -Priority 0
New-CsVoicePolicy -Identity RedmondVoice -PstnUsages @{Add="Local","Long Distance"} -AllowSimulRing $false
New-CsTrunkConfiguration -Identity Service:PstnGateway:127.0.0.2 -SRTPMode Optional -RemovePlusFromUri $true
New-CsOutboundTranslationRule -Identity "PstnGateway:127.0.0.2/StripPlus"
Grant-CsVoicePolicy -Identity sip:user0001@example.test -PolicyName RedmondVoice
Set-CsUser -Identity sip:user0001@example.test -EnterpriseVoiceEnabled $true -LineURI "tel:+14255550100;ext=100"
"#;

#[test]
fn cookbook_voice_recipes_bad_input_and_rbac() {
    let http = free_port("127.0.0.1");
    let mut s = Server::start(3, &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let url = format!("http://127.0.0.1:{http}");
    // `signed_in`: as root; the first administrator is added without signing in
    let local = |signed_in: bool, args: &[&str]| -> (bool, String) {
        let mut c = confab();
        c.args(args).arg("--data").arg(s.data());
        if signed_in {
            c.env("CONFAB_ADMIN", "root")
                .env("CONFAB_ADMIN_PASSWORD", "rootpassword1");
        } else {
            c.env_remove("CONFAB_ADMIN")
                .env_remove("CONFAB_ADMIN_PASSWORD");
        }
        let o = c.env_remove("CONFAB_TOKEN").output().unwrap();
        (o.status.success(), text(&o))
    };
    let remote = |admin: &str, password: &str, script: &str| -> (bool, String) {
        let o = confab()
            .args(["shell", "--server", &url, "-c", script])
            .env("CONFAB_ADMIN", admin)
            .env("CONFAB_ADMIN_PASSWORD", password)
            .env_remove("CONFAB_TOKEN")
            .output()
            .unwrap();
        (o.status.success(), text(&o))
    };
    for (name, role) in [
        ("root", "CsAdministrator"),
        ("voice", "CsVoiceAdministrator"),
        ("helper", "CsHelpDesk"),
    ] {
        let (ok, out) = local(
            name != "root",
            &[
                "admin",
                "add",
                name,
                "--role",
                role,
                "--password",
                &format!("{name}password1"),
            ],
        );
        assert!(ok, "{out}");
    }
    let root = |script: &str| remote("root", "rootpassword1", script);

    // the recipes as a script file, run by the local shell
    let file = s.data().join("chapter3.ps1");
    std::fs::write(&file, COOKBOOK).unwrap();
    let (ok, out) = local(true, &["shell", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.contains("not enforced by confab yet"),
        "the shell says routing is not there yet: {out}"
    );

    // read back through REST
    let (ok, out) = root("Get-CsVoiceNormalizationRule -Identity site:Redmond | ft");
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("Site:")).collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("Site:Redmond/RedmondFourDigit"),
        "{out}"
    );
    assert!(lines[1].starts_with("Site:Redmond/Prefix All"), "{out}");
    assert!(lines[3].starts_with("Site:Redmond/International"), "{out}");
    let (ok, out) = root(r#"Get-CsVoiceNormalizationRule -Identity "site:Redmond/International""#);
    assert!(ok, "{out}");
    assert_eq!(field(&out, "Pattern"), Some(r"^011(\d*)$"), "{out}");
    assert_eq!(field(&out, "Translation"), Some("+$1"), "{out}");
    assert_eq!(field(&out, "Priority"), Some("3"), "{out}");
    let (ok, out) = root("Get-CsPstnUsage");
    assert!(ok, "{out}");
    assert_eq!(
        field(&out, "Usage"),
        Some("{Local, Long Distance, International}"),
        "{out}"
    );
    let (ok, out) = root("Get-CsVoiceRoute -Identity LocalRoute");
    assert!(ok, "{out}");
    assert_eq!(
        field(&out, "PstnGatewayList"),
        Some("{PstnGateway:127.0.0.2}"),
        "{out}"
    );
    let (ok, out) = root("Get-CsOutboundTranslationRule");
    assert!(ok, "{out}");
    assert_eq!(
        field(&out, "Identity"),
        Some("Service:PstnGateway:127.0.0.2/StripPlus"),
        "{out}"
    );
    let (ok, out) = root("Get-CsUser -Identity sip:user0001@example.test");
    assert!(ok, "{out}");
    assert_eq!(field(&out, "EnterpriseVoiceEnabled"), Some("True"), "{out}");
    assert_eq!(field(&out, "VoicePolicy"), Some("RedmondVoice"), "{out}");
    assert_eq!(
        field(&out, "LineURI"),
        Some("tel:+14255550100;ext=100"),
        "{out}"
    );
    let (ok, out) = root("Get-CsUser -Identity sip:user0002@example.test");
    assert!(ok, "{out}");
    assert_eq!(
        field(&out, "EnterpriseVoiceEnabled"),
        Some("False"),
        "{out}"
    );

    // bad input: named, and nothing changes
    let count = || {
        let (ok, out) = root("Get-CsVoiceNormalizationRule | ft");
        assert!(ok, "{out}");
        out.lines()
            .filter(|l| l.starts_with("Site:") || l.starts_with("Global/"))
            .count()
    };
    let before = count();
    assert_eq!(before, 5);
    for (script, want) in [
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/Bad" -Pattern '^(\d{4}$' -Translation '$1'"#,
            "not a valid regular expression",
        ),
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Dublin/R" -Pattern '^(\d+)$' -Translation '$1'"#,
            "Cannot find dial plan",
        ),
        (
            r#"New-CsVoiceNormalizationRule -Identity "Global/Ok" -Pattern '^(\d+)$' -Translation '$1'; New-CsVoicePolicy -Identity X -PstnUsages Nowhere"#,
            "PSTN usage 'Nowhere' does not exist",
        ),
        (r#"Set-CsPstnUsage -Usage @{Remove="Local"}"#, "is used by"),
    ] {
        let (ok, out) = root(script);
        assert!(!ok && out.contains(want), "{script}: {out}");
    }
    // the two-command script failed at its second command after its first ran (as in
    // PowerShell, checks needing the store run with the command): take the rule out again
    let (ok, out) = root(r#"Remove-CsVoiceNormalizationRule -Identity "Global/Ok""#);
    assert!(ok, "{out}");
    assert_eq!(count(), before);

    // RBAC: a voice administrator may, the help desk may not
    let (ok, out) = remote(
        "voice",
        "voicepassword1",
        r#"Set-CsVoicePolicy -Identity RedmondVoice -PstnUsages @{Add="International"}; Set-CsVoiceNormalizationRule -Identity "site:Redmond/NationalLong" -Priority 0"#,
    );
    assert!(ok, "{out}");
    let (ok, out) = root("Get-CsVoicePolicy -Identity RedmondVoice");
    assert!(ok, "{out}");
    assert_eq!(
        field(&out, "PstnUsages"),
        Some("{Local, Long Distance, International}"),
        "{out}"
    );
    for script in [
        r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/Five" -Pattern '^(\d{5})$' -Translation '$1'"#,
        r#"Set-CsPstnUsage -Usage @{Add="Premium"}"#,
        "Remove-CsVoiceRoute -Identity LocalRoute",
    ] {
        let (ok, out) = remote("helper", "helperpassword1", script);
        assert!(
            !ok && out.contains("CsVoiceAdministrator"),
            "{script}: {out}"
        );
    }
    assert_eq!(count(), before);

    // REST resource routes: the same objects, through PATCH and GET with a bearer token
    let token = ureq::post(&format!("{url}/api/v1/tokens"))
        .send_json(serde_json::json!({"name": "voice", "password": "voicepassword1"}))
        .unwrap()
        .into_json::<serde_json::Value>()
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    let r = ureq::request(
        "PATCH",
        &format!("{url}/api/v1/config/CsVoicePolicy/Tag:RedmondVoice"),
    )
    .set("Authorization", &bearer)
    .send_json(serde_json::json!({"EnableCallPark": true}))
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value =
        ureq::get(&format!("{url}/api/v1/config/CsVoicePolicy/RedmondVoice"))
            .set("Authorization", &bearer)
            .call()
            .unwrap()
            .into_json()
            .unwrap();
    assert!(v.to_string().contains(r#""EnableCallPark":true"#), "{v}");
    let v: serde_json::Value = ureq::get(&format!("{url}/api/v1/config/CsPstnGateway"))
        .set("Authorization", &bearer)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert!(v.to_string().contains(r#""Address":"127.0.0.2""#), "{v}");
    // a voice administrator cannot change users (CsUserAdministrator's Set-CsUser)
    match ureq::request(
        "PATCH",
        &format!("{url}/api/v1/users/user0002@example.test"),
    )
    .set("Authorization", &bearer)
    .send_json(serde_json::json!({"EnterpriseVoiceEnabled": true}))
    {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("{other:?}"),
    }
    let (ok, out) = root("Get-CsUser -Identity sip:user0002@example.test");
    assert!(ok, "{out}");
    assert_eq!(
        field(&out, "EnterpriseVoiceEnabled"),
        Some("False"),
        "{out}"
    );

    // the server reads its documents after all this (the dial plan now has rules)
    let (ok, out) = root("Set-CsDialPlan -Identity site:Redmond -Description changed");
    assert!(ok, "{out}");
    s.wait_for_log("policies loaded (config version");
    assert!(s.is_running());
    assert!(
        !s.log_text().contains("stored values of the wrong type"),
        "{}",
        s.log_text()
    );
}
