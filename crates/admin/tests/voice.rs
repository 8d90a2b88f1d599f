//! Enterprise voice administration through the shell against a real store: dial plans and
//! their normalization rules, New-CsVoiceRegex, PSTN usages, voice policies, routes, trunks,
//! outbound translation rules and gateways, users' Enterprise Voice; bad input refused and
//! changing nothing; RBAC (CsVoiceAdministrator may, CsHelpDesk may not, a site-scoped
//! voice administrator only at its site).

use confab_admin::{ExecError, Session};
use serde_json::{json, Value};

mod common;
use common::{fails, prop, run, session, store, voice_configs};

fn rules(sh: &mut Session, plan: &str) -> Vec<(String, i64, String, String)> {
    run(
        sh,
        &format!("Get-CsVoiceNormalizationRule -Identity {plan}"),
    )
    .objects
    .iter()
    .map(|o| {
        (
            prop(o, "Identity").as_str().unwrap().to_string(),
            prop(o, "Priority").as_i64().unwrap(),
            prop(o, "Pattern").as_str().unwrap().to_string(),
            prop(o, "Translation").as_str().unwrap().to_string(),
        )
    })
    .collect()
}

#[test]
fn dial_plans_get_lyncs_default_rule_and_rules_keep_their_priority_order() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    // Global exists with Lync's default rule
    assert_eq!(
        rules(&mut sh, "Global"),
        [(
            "Global/Prefix All".to_string(),
            0,
            r"^(\d{11})$".to_string(),
            "+$1".to_string()
        )]
    );
    run(
        &mut sh,
        "New-CsDialPlan -Identity site:Redmond -SimpleName Redmond",
    );
    assert_eq!(
        rules(&mut sh, "site:Redmond")[0].0,
        "Site:Redmond/Prefix All"
    );
    run(
        &mut sh,
        r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/RedmondFourDigit" -Pattern '^(\d{4})$' -Translation '+1425555$1'"#,
    );
    run(
        &mut sh,
        r#"New-CsVoiceNormalizationRule -Parent site:Redmond -Name NationalLong -Pattern '^1(\d{10})$' -Translation '+$1' -Priority 0 -Description "11 digits""#,
    );
    run(
        &mut sh,
        r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/International" -Pattern '^011(\d*)$' -Translation '+$1' -Priority 1"#,
    );
    let names: Vec<(String, i64)> = rules(&mut sh, "site:Redmond")
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        names,
        [
            ("Site:Redmond/NationalLong".to_string(), 0),
            ("Site:Redmond/International".to_string(), 1),
            ("Site:Redmond/Prefix All".to_string(), 2),
            ("Site:Redmond/RedmondFourDigit".to_string(), 3),
        ],
        "inserting at a Priority moves the rules at and after it down by one"
    );
    // moving one: the others close up
    run(
        &mut sh,
        r#"Set-CsVoiceNormalizationRule -Identity "site:Redmond/RedmondFourDigit" -Priority 0 -IsInternalExtension $true"#,
    );
    let r = run(
        &mut sh,
        r#"Get-CsVoiceNormalizationRule -Identity "site:Redmond/RedmondFourDigit""#,
    );
    assert_eq!(prop(&r.objects[0], "Priority"), json!(0));
    assert_eq!(prop(&r.objects[0], "IsInternalExtension"), json!(true));
    assert_eq!(
        rules(&mut sh, "site:Redmond")[1].0,
        "Site:Redmond/NationalLong"
    );
    // the dial plan shows them
    let plan = run(&mut sh, "Get-CsDialPlan -Identity site:Redmond");
    let list = prop(&plan.objects[0], "NormalizationRules");
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(list[0]["Name"], json!("RedmondFourDigit"));
    assert_eq!(list[0]["Priority"], json!(0));
    // removing one, through the pipeline too
    run(
        &mut sh,
        r#"Remove-CsVoiceNormalizationRule -Identity "site:Redmond/Prefix All""#,
    );
    run(
        &mut sh,
        r#"Get-CsVoiceNormalizationRule -Identity "site:Redmond/International" | Remove-CsVoiceNormalizationRule"#,
    );
    let left: Vec<(String, i64)> = rules(&mut sh, "site:Redmond")
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        left,
        [
            ("Site:Redmond/RedmondFourDigit".to_string(), 0),
            ("Site:Redmond/NationalLong".to_string(), 1),
        ]
    );
    // every rule of every plan, and a filter
    let all = run(&mut sh, "Get-CsVoiceNormalizationRule");
    assert_eq!(all.objects.len(), 3);
    let f = run(&mut sh, "Get-CsVoiceNormalizationRule -Filter *National*");
    assert_eq!(f.objects.len(), 1);
    // a per-user plan's rules are named by the plan's name
    run(&mut sh, "New-CsDialPlan -Identity DublinUsers");
    run(
        &mut sh,
        r#"New-CsVoiceNormalizationRule -Identity "DublinUsers/Local" -Pattern '^(\d{7})$' -Translation '+3531$1'"#,
    );
    assert_eq!(rules(&mut sh, "DublinUsers")[1].0, "DublinUsers/Local");
    // normalization is enforced now (the server routes calls): no warning
    let out = run(
        &mut sh,
        r#"Set-CsVoiceNormalizationRule -Identity "DublinUsers/Local" -Description x"#,
    );
    assert!(
        !out.warnings.iter().any(|w| w.contains("not enforced")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn voice_regex_builds_rules_used_through_variables() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    let r = run(
        &mut sh,
        "New-CsVoiceRegex -StartsWith 1 -ExactLength 11 -DigitsToStrip 1 -DigitsToPrepend '+'",
    );
    assert_eq!(prop(&r.objects[0], "Pattern"), json!(r"^1(\d{10})$"));
    assert_eq!(prop(&r.objects[0], "Translation"), json!("+$1"));
    run(
        &mut sh,
        "$r = New-CsVoiceRegex -ExactLength 4 -DigitsToPrepend '+1425555'\n\
         New-CsVoiceNormalizationRule -Parent Global -Name FourDigit -Pattern $r.Pattern -Translation $r.Translation",
    );
    let got = rules(&mut sh, "Global");
    assert_eq!(
        got[1],
        (
            "Global/FourDigit".to_string(),
            1,
            r"^(\d{4})$".to_string(),
            "+1425555$1".to_string()
        )
    );
    // -InMemory rules go into a plan with -NormalizationRules @{Add=…}
    run(
        &mut sh,
        "$x = New-CsVoiceNormalizationRule -Parent Global -Name Intl -Pattern '^011(\\d*)$' -Translation '+$1' -InMemory\n\
         Set-CsDialPlan -Identity Global -NormalizationRules @{Add=$x}",
    );
    let got = rules(&mut sh, "Global");
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].0, "Global/Intl");
    assert_eq!(got[2].1, 2);
    let e = fails(&mut sh, "New-CsVoiceRegex -ExactLength 4 -AtLeastLength 5");
    assert!(e.contains("not both"), "{e}");
    let e = fails(&mut sh, "New-CsVoiceRegex -StartsWith 12x -ExactLength 4");
    assert!(e.contains("StartsWith"), "{e}");
}

#[test]
fn bad_voice_input_is_refused_and_changes_nothing() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    run(&mut sh, r#"Set-CsPstnUsage -Usage @{Add="Local"}"#);
    run(&mut sh, "New-CsDialPlan -Identity site:Redmond");
    let before = voice_configs(&s);
    for (src, want) in [
        // an invalid pattern, whether alone or in a script that did something first
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/Bad" -Pattern '^(\d{4}$' -Translation '+$1'"#,
            "not a valid regular expression",
        ),
        (
            r#"New-CsDialPlan -Identity site:Dublin; New-CsVoiceNormalizationRule -Identity "site:Dublin/Bad" -Pattern '(' -Translation x"#,
            "not a valid regular expression",
        ),
        // a rule under a plan that does not exist
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Nowhere/R" -Pattern '^(\d+)$' -Translation '$1'"#,
            "Cannot find dial plan",
        ),
        (
            r#"New-CsVoiceNormalizationRule -Parent site:Redmond -Pattern '^(\d+)$'"#,
            "Name",
        ),
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/Prefix All""#,
            "already exists",
        ),
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/X" -Priority 7"#,
            "priority of a new rule is 0 to 1",
        ),
        (
            r#"Set-CsVoiceNormalizationRule -Identity "site:Redmond/Nope" -Description x"#,
            "Cannot find",
        ),
        (
            r#"Set-CsDialPlan -Identity site:Redmond -NormalizationRules @{Add=@{Name="Y";Pattern="[";Translation="x"}}"#,
            "not a valid regular expression",
        ),
        // a usage that does not exist
        (
            r#"New-CsVoicePolicy -Identity Sales -PstnUsages @{Add="Long Distance"}"#,
            "PSTN usage 'Long Distance' does not exist",
        ),
        (
            r#"New-CsVoiceRoute -Identity R1 -PstnUsages Local -PstnGatewayList PstnGateway:192.0.2.10"#,
            "gateway '192.0.2.10' is not defined",
        ),
        (
            r#"New-CsVoiceRoute -Identity R1 -NumberPattern '^(\+1[0-9]{10}$'"#,
            "NumberPattern",
        ),
        (
            r#"New-CsVoiceRoute -Identity R0; Set-CsVoiceRoute -Identity R0 -NumberPattern '[0-9'"#,
            "NumberPattern",
        ),
        (
            r#"New-CsVoiceRoute -Identity R1 -AlternateCallerId 'abc'"#,
            "not a phone number",
        ),
        (
            r#"New-CsVoiceRoute -Identity R1 -AlternateCallerId '+0425'"#,
            "not a phone number",
        ),
        (
            r#"New-CsVoiceRoute -Identity R1 -SuppressCallerId $true"#,
            "needs an AlternateCallerId",
        ),
        (
            r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/X" -Parent site:Redmond -Name X"#,
            "either -Identity",
        ),
        (
            r#"New-CsPstnGateway -Identity gw.example.test"#,
            "needs -Address",
        ),
        (
            r#"New-CsPstnGateway -Identity gw1 -Address not-an-ip"#,
            "not an IP address",
        ),
        (
            r#"New-CsPstnGateway -Identity gw1 -Address 192.0.2.1 -Transport SCTP"#,
            "TCP, TLS, UDP",
        ),
        (
            r#"New-CsTrunkConfiguration -Identity Service:PstnGateway:192.0.2.10 -PstnUsages Nope"#,
            "does not exist",
        ),
        (
            r#"New-CsOutboundTranslationRule -Identity "PstnGateway:192.0.2.10/Strip""#,
            "Cannot find trunk configuration",
        ),
        (
            r#"New-CsOutboundTranslationRule -Identity "Global/Strip" -Translation "a`nb""#,
            "control character",
        ),
        (
            r#"Set-CsPstnUsage -Usage @{Add=""}"#,
            "not a PSTN usage name",
        ),
        (
            r#"Set-CsVoicePolicy -CallForwardingSimulRingUsageType Sometimes"#,
            "VoicePolicyUsage",
        ),
        (
            r#"Set-CsUser -Identity sip:alice@example.test -EnterpriseVoiceEnabled maybe"#,
            "Boolean",
        ),
    ] {
        let e = fails(&mut sh, src);
        assert!(e.contains(want), "{src}\n  → {e}");
        assert_eq!(voice_configs(&s), before, "{src} changed something");
    }
    assert!(
        !s.get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .enterprise_voice_enabled
    );
}

#[test]
fn usages_policies_routes_trunks_and_gateways() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    // Lync's defaults
    let p = run(&mut sh, "Get-CsVoicePolicy -Identity Global");
    let o = &p.objects[0];
    for (name, v) in [
        ("AllowSimulRing", json!(true)),
        ("AllowCallForwarding", json!(true)),
        ("AllowPSTNReRouting", json!(true)),
        ("EnableDelegation", json!(true)),
        ("EnableTeamCall", json!(true)),
        ("EnableCallTransfer", json!(true)),
        ("EnableCallPark", json!(false)),
        ("EnableMaliciousCallTracing", json!(false)),
        ("EnableBWPolicyOverride", json!(false)),
        ("PreventPSTNTollBypass", json!(false)),
        (
            "CallForwardingSimulRingUsageType",
            json!("VoicePolicyUsage"),
        ),
        ("EnableVoicemailEscapeTimer", json!(false)),
        ("PSTNVoicemailEscapeTimer", json!(1500)),
        ("PstnUsages", json!([])),
    ] {
        assert_eq!(prop(o, name), v, "{name}");
    }
    let t = run(&mut sh, "Get-CsTrunkConfiguration");
    let o = &t.objects[0];
    for (name, v) in [
        ("SRTPMode", json!("Required")),
        ("EnableReferSupport", json!(true)),
        ("MaxEarlyDialogs", json!(20)),
        ("RemovePlusFromUri", json!(false)),
        ("EnableFastFailoverTimer", json!(true)),
        ("EnableSessionTimer", json!(false)),
        ("ForwardPAI", json!(false)),
        ("ForwardCallHistory", json!(false)),
        ("OutboundTranslationRulesList", json!([])),
    ] {
        assert_eq!(prop(o, name), v, "{name}");
    }
    assert_eq!(
        prop(&run(&mut sh, "Get-CsPstnUsage").objects[0], "Usage"),
        json!([])
    );

    // usages: @{Add=…}, @{Remove=…}, @{Replace=…}; order kept
    run(
        &mut sh,
        r#"Set-CsPstnUsage -Identity Global -Usage @{Add="Local","Long Distance"}; Set-CsPstnUsage -Usage @{Add="International"}"#,
    );
    run(
        &mut sh,
        r#"Set-CsPstnUsage -Usage @{Remove="Long Distance"}"#,
    );
    assert_eq!(
        prop(&run(&mut sh, "Get-CsPstnUsage").objects[0], "Usage"),
        json!(["Local", "International"])
    );
    run(
        &mut sh,
        r#"Set-CsPstnUsage -Usage @{Replace="Local","National","International"}"#,
    );

    // a gateway, a route, a trunk at the gateway with a translation rule, a policy
    run(
        &mut sh,
        "New-CsPstnGateway -Identity 192.0.2.10 -Port 5060 -Transport TCP -Description 'carrier A'",
    );
    run(
        &mut sh,
        "New-CsPstnGateway -Identity GW2.example.test -Address 192.0.2.11 -Port 5061 -Transport TLS",
    );
    let g = run(&mut sh, "Get-CsPstnGateway -Identity 192.0.2.10");
    assert_eq!(prop(&g.objects[0], "Address"), json!("192.0.2.10"));
    let g = run(&mut sh, "Get-CsPstnGateway -Identity gw2.example.test");
    assert_eq!(prop(&g.objects[0], "Identity"), json!("gw2.example.test"));
    run(
        &mut sh,
        r#"New-CsVoiceRoute -Identity LocalRoute -PstnUsages @{Add="Local"} -PstnGatewayList @{Add="PstnGateway:192.0.2.10","pstngateway:GW2.example.test"} -Priority 1 -SuppressCallerId $true -AlternateCallerId '+14255550100;ext=100'"#,
    );
    let w = run(&mut sh, "New-CsVoiceRoute -Identity Empty");
    assert!(
        w.warnings.iter().any(|w| w.contains("no PstnUsages"))
            && w.warnings.iter().any(|w| w.contains("no PstnGatewayList")),
        "{:?}",
        w.warnings
    );
    run(&mut sh, "Remove-CsVoiceRoute -Identity Empty");
    let r = run(&mut sh, "Get-CsVoiceRoute -Identity LocalRoute");
    let o = &r.objects[0];
    assert_eq!(
        prop(o, "NumberPattern"),
        json!(r"[0-9]{10}"),
        "New-CsVoiceRoute's default"
    );
    assert_eq!(
        prop(o, "PstnGatewayList"),
        json!(["PstnGateway:192.0.2.10", "PstnGateway:gw2.example.test"])
    );
    assert_eq!(prop(o, "PstnUsages"), json!(["Local"]));
    run(
        &mut sh,
        r#"New-CsTrunkConfiguration -Identity Service:PstnGateway:192.0.2.10 -SRTPMode NotSupported -RemovePlusFromUri $true"#,
    );
    let out = run(
        &mut sh,
        r#"New-CsOutboundTranslationRule -Identity "PstnGateway:192.0.2.10/StripPlus""#,
    );
    assert_eq!(prop(&out.objects[0], "Pattern"), json!(r"^\+(\d*)$"));
    assert_eq!(prop(&out.objects[0], "Translation"), json!("$1"));
    assert_eq!(
        prop(&out.objects[0], "Identity"),
        json!("Service:PstnGateway:192.0.2.10/StripPlus")
    );
    run(
        &mut sh,
        r#"New-CsOutboundTranslationRule -Parent Service:PstnGateway:192.0.2.10 -Name National -Pattern '^\+1(\d{10})$' -Translation '1$1' -Priority 0"#,
    );
    let list = run(
        &mut sh,
        "Get-CsOutboundTranslationRule -Identity PstnGateway:192.0.2.10",
    );
    let names: Vec<Value> = list.objects.iter().map(|o| prop(o, "Name")).collect();
    assert_eq!(names, [json!("National"), json!("StripPlus")]);
    run(
        &mut sh,
        r#"Set-CsOutboundTranslationRule -Identity "PstnGateway:192.0.2.10/National" -Translation '+1$1'"#,
    );
    let t = run(
        &mut sh,
        "Get-CsTrunkConfiguration -Identity Service:PstnGateway:192.0.2.10",
    );
    let list = prop(&t.objects[0], "OutboundTranslationRulesList");
    assert_eq!(list[0]["Translation"], json!("+1$1"));
    assert_eq!(prop(&t.objects[0], "SRTPMode"), json!("NotSupported"));
    run(
        &mut sh,
        r#"Remove-CsOutboundTranslationRule -Identity "PstnGateway:192.0.2.10/National""#,
    );
    assert_eq!(
        run(&mut sh, "Get-CsOutboundTranslationRule").objects.len(),
        1
    );

    run(
        &mut sh,
        r#"New-CsVoicePolicy -Identity RedmondUsers -PstnUsages @{Add="local","International"} -AllowSimulRing $false -CallForwardingSimulRingUsageType CustomUsage -CustomCallForwardingSimulRingUsages National"#,
    );
    let p = run(&mut sh, "Get-CsVoicePolicy -Identity RedmondUsers");
    assert_eq!(
        prop(&p.objects[0], "PstnUsages"),
        json!(["Local", "International"]),
        "usages keep their order and take the usage's own spelling"
    );
    run(
        &mut sh,
        "Grant-CsVoicePolicy -Identity sip:alice@example.test -PolicyName RedmondUsers",
    );
    run(
        &mut sh,
        "Set-CsUser -Identity sip:alice@example.test -EnterpriseVoiceEnabled $true -LineURI 'tel:+14255550100;ext=100'",
    );
    let u = run(&mut sh, "Get-CsUser -Identity sip:alice@example.test");
    assert_eq!(prop(&u.objects[0], "EnterpriseVoiceEnabled"), json!(true));
    assert_eq!(prop(&u.objects[0], "VoicePolicy"), json!("RedmondUsers"));
    assert_eq!(
        prop(&u.objects[0], "LineURI"),
        json!("tel:+14255550100;ext=100")
    );

    // the policy in force for a user: granted, else site, else Global
    let vp = confab_admin::voice::voice_policy_for(&s, "alice@example.test", None).unwrap();
    assert_eq!(vp.pstn_usages, ["Local", "International"]);
    run(
        &mut sh,
        r#"Set-CsVoicePolicy -PstnUsages @{Add="National"}"#,
    );
    let vp = confab_admin::voice::voice_policy_for(&s, "bob@example.test", None).unwrap();
    assert_eq!(vp.pstn_usages, ["National"]);
    let plan = confab_admin::pins::dial_plan_for(&s, "bob@example.test", None).unwrap();
    assert_eq!(plan.normalization_rules[0].name, "Prefix All");
    run(
        &mut sh,
        r#"Set-CsVoicePolicy -PstnUsages @{Remove="National"}"#,
    );

    // what is in use cannot go
    let e = fails(&mut sh, r#"Set-CsPstnUsage -Usage @{Remove="Local"}"#);
    assert!(e.contains("is used by"), "{e}");
    let e = fails(&mut sh, "Remove-CsPstnGateway -Identity 192.0.2.10");
    assert!(e.contains("LocalRoute"), "{e}");
    run(&mut sh, "Remove-CsVoiceRoute -Identity LocalRoute");
    run(&mut sh, "Remove-CsPstnGateway -Identity 192.0.2.10");
    assert!(s
        .get_config("CsPstnGateway", "192.0.2.10")
        .unwrap()
        .is_none());
    // the settings a routing server would read are typed documents
    let doc = s
        .get_config("CsVoicePolicy", "Tag:RedmondUsers")
        .unwrap()
        .unwrap();
    let (vp, bad) = <confab_policy::VoicePolicy as confab_policy::Document>::from_body(&doc.body);
    assert!(bad.is_empty());
    assert!(!vp.allow_simul_ring);
    assert_eq!(vp.pstn_usages, ["Local", "International"]);
}

#[test]
fn rbac_voice_administrators_may_help_desk_may_not() {
    let (_d, s) = store();
    s.add_admin("voice", "voicepassword1", &["CsVoiceAdministrator".into()])
        .unwrap();
    s.add_admin("help", "helppassword1", &["CsHelpDesk".into()])
        .unwrap();
    let mut root = session(&s, "root");
    run(
        &mut root,
        "New-CsAdminRole -Identity RedmondVoice -Template CsVoiceAdministrator -ConfigScopes site:Redmond",
    );
    s.add_admin("redmondvoice", "redmondpassword1", &["RedmondVoice".into()])
        .unwrap();
    run(&mut root, "New-CsDialPlan -Identity site:Redmond");
    run(&mut root, "New-CsDialPlan -Identity site:Dublin");

    let mut voice = session(&s, "voice");
    run(
        &mut voice,
        r#"Set-CsPstnUsage -Usage @{Add="Local"}; New-CsPstnGateway -Identity 192.0.2.20; New-CsVoiceRoute -Identity R -PstnUsages Local -PstnGatewayList PstnGateway:192.0.2.20; New-CsVoicePolicy -Identity P -PstnUsages Local; New-CsVoiceNormalizationRule -Identity "site:Dublin/Four" -Pattern '^(\d{4})$' -Translation '+3531555$1'; New-CsOutboundTranslationRule -Identity Global/Strip; $r = New-CsVoiceRegex -ExactLength 4"#,
    );

    let mut help = session(&s, "help");
    let before = voice_configs(&s);
    for src in [
        r#"Set-CsPstnUsage -Usage @{Add="X"}"#,
        "New-CsVoicePolicy -Identity Q",
        "New-CsVoiceRoute -Identity R2",
        r#"New-CsVoiceNormalizationRule -Identity "site:Dublin/Five" -Pattern '^(\d{5})$' -Translation '$1'"#,
        r#"Remove-CsVoiceNormalizationRule -Identity "site:Dublin/Four""#,
        "New-CsOutboundTranslationRule -Identity Global/Other",
        "New-CsPstnGateway -Identity 192.0.2.21",
        "Grant-CsVoicePolicy -Identity sip:alice@example.test -PolicyName P",
    ] {
        let e = help.run(src).unwrap_err();
        assert!(matches!(e, ExecError::Denied { .. }), "{src}: {e}");
    }
    assert_eq!(voice_configs(&s), before);
    // but may look
    assert_eq!(
        run(
            &mut help,
            "Get-CsVoiceNormalizationRule -Identity site:Dublin"
        )
        .objects
        .len(),
        2
    );
    run(
        &mut help,
        "Get-CsVoiceRoute; Get-CsPstnUsage; Get-CsOutboundTranslationRule",
    );

    // a site-scoped voice administrator: its site's plan only, named either way
    let mut rv = session(&s, "redmondvoice");
    run(
        &mut rv,
        r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/Four" -Pattern '^(\d{4})$' -Translation '+1425555$1'"#,
    );
    for src in [
        r#"New-CsVoiceNormalizationRule -Identity "site:Dublin/Five" -Pattern '^(\d{5})$' -Translation '$1'"#,
        r#"New-CsVoiceNormalizationRule -Parent site:Dublin -Name Five -Pattern '^(\d{5})$' -Translation '$1'"#,
        r#"Remove-CsVoiceNormalizationRule -Identity "Global/Prefix All""#,
    ] {
        let e = rv.run(src).unwrap_err();
        assert!(matches!(e, ExecError::OutOfScope { .. }), "{src}: {e}");
    }
    assert_eq!(rules(&mut root, "site:Dublin").len(), 2);
}

#[test]
fn export_and_import_keep_the_voice_documents_and_check_them() {
    let (d, s) = store();
    let mut sh = session(&s, "root").with_export_dir(d.path().join("export"));
    std::fs::create_dir_all(d.path().join("export")).unwrap();
    run(
        &mut sh,
        r#"Set-CsPstnUsage -Usage @{Add="Local"}; New-CsPstnGateway -Identity 192.0.2.30; New-CsVoiceRoute -Identity R -PstnUsages Local -PstnGatewayList PstnGateway:192.0.2.30; New-CsVoiceNormalizationRule -Identity Global/Four -Pattern '^(\d{4})$' -Translation '+1425555$1'; Export-CsConfiguration -FileName voice.json"#,
    );
    let before = voice_configs(&s);
    let (d2, s2) = store();
    let mut sh2 = session(&s2, "root").with_export_dir(d2.path().join("export"));
    std::fs::create_dir_all(d2.path().join("export")).unwrap();
    std::fs::copy(
        d.path().join("export/voice.json"),
        d2.path().join("export/voice.json"),
    )
    .unwrap();
    run(&mut sh2, "Import-CsConfiguration -FileName voice.json");
    assert_eq!(voice_configs(&s2), before);
    // a file with a rule whose pattern does not compile is refused whole
    let text = std::fs::read_to_string(d.path().join("export/voice.json"))
        .unwrap()
        .replace(r"^(\\d{4})$", r"^(\\d{4}$");
    std::fs::write(d2.path().join("export/bad.json"), text).unwrap();
    let (_d3, s3) = store();
    let mut sh3 = session(&s3, "root").with_export_dir(d2.path().join("export"));
    let e = fails(&mut sh3, "Import-CsConfiguration -FileName bad.json");
    assert!(e.contains("not a valid regular expression"), "{e}");
    assert_eq!(voice_configs(&s3), json!([]));
}
