//! The voice Test- cmdlets through the shell against a real store: Test-CsVoiceNormalizationRule,
//! Test-CsDialPlan, Test-CsVoiceRoute, Test-CsVoicePolicy, Test-CsVoiceUser and
//! Test-CsTrunkConfiguration, with the cookbook's rules, priority order, objects by identity,
//! in variables and piped; bad input named and changing nothing; never audited; RBAC
//! (CsHelpDesk may run them, CsUserAdministrator may not; user scopes hold for
//! Test-CsVoiceUser).

use confab_admin::Session;
use confab_store::{AuditFilter, Store};
use serde_json::{json, Value};

mod common;
use common::{fails, one, prop, run, session, store, voice_configs, SALES};

fn translated(sh: &mut Session, src: &str) -> Value {
    prop(&one(sh, src), "TranslatedNumber")
}

/// Every configuration document and the length of the audit log, to show that a command
/// changed nothing.
fn snapshot(s: &Store) -> Value {
    json!([voice_configs(s), audit_len(s)])
}

fn audit_len(s: &Store) -> usize {
    s.query_audit(&AuditFilter::default()).unwrap().len()
}

/// Redmond's dial plan with the cookbook's rules, PSTN usages, two gateways, routes, voice
/// policies, a trunk with outbound translation rules; alice is an Enterprise Voice user with
/// a per-user dial plan and voice policy.
fn voice_setup(sh: &mut Session) {
    for cmd in [
        "New-CsDialPlan -Identity site:Redmond -SimpleName Redmond",
        r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/RedmondFourDigit" -Pattern '^(\d{4})$' -Translation '+1425555$1'"#,
        r#"New-CsVoiceNormalizationRule -Parent site:Redmond -Name NationalLong -Pattern '^1(\d{10})$' -Translation '+$1' -Priority 0"#,
        r#"New-CsVoiceNormalizationRule -Identity "site:Redmond/International" -Pattern '^011(\d*)$' -Translation '+$1'"#,
        r#"Set-CsPstnUsage -Usage @{Add="Local","Long Distance","International","Unused"}"#,
        "New-CsPstnGateway -Identity 192.0.2.10",
        "New-CsPstnGateway -Identity 192.0.2.11",
        // stored before the route of lower Priority that holds the same usage
        r#"New-CsVoiceRoute -Identity NationalBackup -NumberPattern '^\+1\d{10}$' -PstnUsages @{Add="Long Distance"} -PstnGatewayList @{Add="PstnGateway:192.0.2.11"} -Priority 5"#,
        r#"New-CsVoiceRoute -Identity National -NumberPattern '^\+1\d{10}$' -PstnUsages @{Add="Long Distance"} -PstnGatewayList @{Add="PstnGateway:192.0.2.10"} -Priority 1"#,
        r#"New-CsVoiceRoute -Identity Redmond -NumberPattern '^\+1425\d{7}$' -PstnUsages @{Add="Local"} -PstnGatewayList @{Add="PstnGateway:192.0.2.10"}"#,
        r#"New-CsVoiceRoute -Identity Intl -NumberPattern '^\+\d+$' -PstnUsages @{Add="International"} -PstnGatewayList @{Add="PstnGateway:192.0.2.11"}"#,
        r#"New-CsVoicePolicy -Identity RedmondUsers -PstnUsages @{Add="Local","Long Distance"}"#,
        r#"New-CsVoicePolicy -Identity Everyone -PstnUsages @{Add="International","Local"}"#,
        r#"New-CsVoicePolicy -Identity Nowhere -PstnUsages @{Add="Unused"}"#,
        "New-CsTrunkConfiguration -Identity Service:PstnGateway:192.0.2.10",
        r#"New-CsOutboundTranslationRule -Identity "PstnGateway:192.0.2.10/StripPlus""#,
        r#"New-CsOutboundTranslationRule -Parent Service:PstnGateway:192.0.2.10 -Name National -Pattern '^\+1(\d{10})$' -Translation '1$1' -Priority 0"#,
        "New-CsDialPlan -Identity RedmondUsers",
        r#"New-CsVoiceNormalizationRule -Identity "RedmondUsers/FourDigit" -Pattern '^(\d{4})$' -Translation '+1425555$1' -Priority 0"#,
        r#"New-CsVoiceNormalizationRule -Identity "RedmondUsers/International" -Pattern '^011(\d*)$' -Translation '+$1'"#,
        "Grant-CsDialPlan -Identity sip:alice@example.test -PolicyName RedmondUsers",
        "Grant-CsVoicePolicy -Identity sip:alice@example.test -PolicyName RedmondUsers",
        "Set-CsUser -Identity sip:alice@example.test -EnterpriseVoiceEnabled $true -LineURI 'tel:+14255550100;ext=100'",
    ] {
        run(sh, cmd);
    }
}

#[test]
fn normalization_rules_give_the_cookbooks_numbers() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    let t = |sh: &mut Session, rule: &str, n: &str| {
        translated(
            sh,
            &format!(
                r#"Test-CsVoiceNormalizationRule -NormalizationRule "{rule}" -DialedNumber {n}"#
            ),
        )
    };
    assert_eq!(
        t(&mut sh, "site:Redmond/RedmondFourDigit", "1234"),
        json!("+14255551234")
    );
    // .NET: $1 is the ten digits after the 1, so the translation has no country code
    assert_eq!(
        t(&mut sh, "site:Redmond/NationalLong", "14255550100"),
        json!("+4255550100")
    );
    assert_eq!(
        t(&mut sh, "site:Redmond/International", "011442071234567"),
        json!("+442071234567")
    );
    assert_eq!(t(&mut sh, "site:Redmond/International", "011"), json!("+"));
    // no match: nothing
    assert_eq!(
        t(&mut sh, "site:Redmond/RedmondFourDigit", "12345"),
        Value::Null
    );
    assert_eq!(t(&mut sh, "Global/Prefix All", "1234"), Value::Null);
    assert_eq!(
        t(&mut sh, "Global/Prefix All", "14255550100"),
        json!("+14255550100")
    );
    // a per-user plan's rule by its name; tel: numbers
    assert_eq!(
        t(&mut sh, "RedmondUsers/FourDigit", "tel:0100"),
        json!("+14255550100")
    );
    // Lync's output
    let out = run(
        &mut sh,
        r#"Test-CsVoiceNormalizationRule -NormalizationRule "site:Redmond/RedmondFourDigit" -DialedNumber 0100"#,
    );
    assert!(
        out.text.contains("TranslatedNumber : +14255550100"),
        "{}",
        out.text
    );

    // piped, and in a variable
    let out = run(
        &mut sh,
        r#"Get-CsVoiceNormalizationRule -Identity site:Redmond | Test-CsVoiceNormalizationRule -DialedNumber 1234"#,
    );
    let got: Vec<Value> = out
        .objects
        .iter()
        .map(|o| prop(o, "TranslatedNumber"))
        .collect();
    // NationalLong, Prefix All, RedmondFourDigit, International
    assert_eq!(
        got,
        [Value::Null, Value::Null, json!("+14255551234"), Value::Null]
    );
    assert_eq!(
        translated(
            &mut sh,
            r#"$r = Get-CsVoiceNormalizationRule -Identity "site:Redmond/International"; Test-CsVoiceNormalizationRule -NormalizationRule $r -DialedNumber 01133123456789"#
        ),
        json!("+33123456789")
    );
    // a rule made in memory (and never stored), with .NET's ${1} followed by a digit
    let before = voice_configs(&s);
    assert_eq!(
        translated(
            &mut sh,
            r#"$m = New-CsVoiceNormalizationRule -Parent Global -Name Ext -Pattern '^(\d{3})$' -Translation '+1425555${1}0' -InMemory; Test-CsVoiceNormalizationRule -NormalizationRule $m -DialedNumber 123"#
        ),
        json!("+14255551230")
    );
    assert_eq!(voice_configs(&s), before, "an in-memory rule is not stored");
}

#[test]
fn dial_plans_take_the_lowest_priority_rule_that_matches() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    // site:Redmond: NationalLong (0), Prefix All (1), RedmondFourDigit (2), International (3)
    let r = one(
        &mut sh,
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 14255550100",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), json!("+4255550100"));
    assert_eq!(prop(&r, "MatchingRule")["Name"], json!("NationalLong"));
    assert_eq!(prop(&r, "MatchingRule")["Pattern"], json!(r"^1(\d{10})$"));
    // NationalLong moved after Prefix All: Prefix All wins
    run(
        &mut sh,
        r#"Set-CsVoiceNormalizationRule -Identity "site:Redmond/NationalLong" -Priority 2"#,
    );
    let r = one(
        &mut sh,
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 14255550100",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), json!("+14255550100"));
    assert_eq!(prop(&r, "MatchingRule")["Name"], json!("Prefix All"));
    let r = one(
        &mut sh,
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 011442071234567",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), json!("+442071234567"));
    assert_eq!(prop(&r, "MatchingRule")["Name"], json!("International"));
    // no rule matches: nothing
    let r = one(
        &mut sh,
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 99",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), Value::Null);
    assert_eq!(prop(&r, "MatchingRule"), Value::Null);
    // the text Lync prints
    let out = run(
        &mut sh,
        "Test-CsDialPlan -Dialplan site:Redmond -DialedNumber 1234",
    );
    assert!(
        out.text.contains("TranslatedNumber : +14255551234")
            && out.text.contains("MatchingRule     : ")
            && out.text.contains("Name=RedmondFourDigit"),
        "{}",
        out.text
    );

    // piped (the cookbook's form) and in a variable
    let r = one(
        &mut sh,
        "Get-CsDialPlan -Identity Global | Test-CsDialPlan -DialedNumber 14255550100",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), json!("+14255550100"));
    let all = run(
        &mut sh,
        "Get-CsDialPlan | Test-CsDialPlan -DialedNumber 1234",
    );
    let got: Vec<Value> = all
        .objects
        .iter()
        .map(|o| prop(o, "TranslatedNumber"))
        .collect();
    assert_eq!(
        all.objects.len(),
        3,
        "Global, the site's and the per-user plan"
    );
    assert_eq!(
        got.iter().filter(|v| **v == json!("+14255551234")).count(),
        2
    );
    let r = one(
        &mut sh,
        "$dp = Get-CsDialPlan -Identity site:Redmond; Test-CsDialPlan -DialPlan $dp -DialedNumber 2345",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), json!("+14255552345"));
    // a positional plan
    let r = one(&mut sh, "Test-CsDialPlan RedmondUsers -DialedNumber 0100");
    assert_eq!(prop(&r, "MatchingRule")["Name"], json!("FourDigit"));
}

#[test]
fn routes_and_voice_policies_pick_the_first_route_of_the_first_usage() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    let matches = |sh: &mut Session, src: &str| prop(&one(sh, src), "MatchesPattern");
    assert_eq!(
        matches(
            &mut sh,
            "Test-CsVoiceRoute -Route National -TargetNumber +14255550100"
        ),
        json!(true)
    );
    assert_eq!(
        matches(
            &mut sh,
            "Test-CsVoiceRoute -Route National -TargetNumber +442071234567"
        ),
        json!(false)
    );
    assert_eq!(
        matches(
            &mut sh,
            "Test-CsVoiceRoute -Route Redmond -TargetNumber 'tel:+14255550100'"
        ),
        json!(true)
    );
    let out = run(
        &mut sh,
        "Test-CsVoiceRoute -Route Redmond -TargetNumber +12065550100",
    );
    assert!(out.text.contains("MatchesPattern : False"), "{}", out.text);
    // piped: every route
    let out = run(
        &mut sh,
        "Get-CsVoiceRoute | Test-CsVoiceRoute -TargetNumber +442071234567",
    );
    let got: Vec<Value> = out
        .objects
        .iter()
        .map(|o| prop(o, "MatchesPattern"))
        .collect();
    assert_eq!(got.len(), 4);
    assert_eq!(
        got.iter().filter(|v| **v == json!(true)).count(),
        1,
        "Intl only"
    );
    assert_eq!(
        matches(
            &mut sh,
            "$r = Get-CsVoiceRoute -Identity Intl; Test-CsVoiceRoute -Route $r -TargetNumber +33123456789"
        ),
        json!(true)
    );

    let policy = |sh: &mut Session, src: &str| {
        let r = one(sh, src);
        let route = prop(&r, "FirstMatchingRoute");
        (
            route.get("Name").cloned().unwrap_or(Value::Null),
            prop(&r, "MatchingUsage"),
        )
    };
    // the usages in the policy's order; within a usage, routes by Priority
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy RedmondUsers -TargetNumber +14255550100"
        ),
        (json!("Redmond"), json!("Local"))
    );
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy RedmondUsers -TargetNumber +12065550100"
        ),
        (json!("National"), json!("Long Distance")),
        "National (Priority 1) before NationalBackup (Priority 5)"
    );
    run(
        &mut sh,
        "Set-CsVoiceRoute -Identity NationalBackup -Priority 0",
    );
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy RedmondUsers -TargetNumber +12065550100"
        ),
        (json!("NationalBackup"), json!("Long Distance"))
    );
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy Everyone -TargetNumber +14255550100"
        ),
        (json!("Intl"), json!("International")),
        "International comes first in Everyone's usages"
    );
    // no usage of the policy has a route for the number: nothing
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy RedmondUsers -TargetNumber +442071234567"
        ),
        (Value::Null, Value::Null)
    );
    // a usage no route holds: nothing
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy Nowhere -TargetNumber +14255550100"
        ),
        (Value::Null, Value::Null)
    );
    // Global has no usages
    assert_eq!(
        policy(
            &mut sh,
            "Test-CsVoicePolicy -VoicePolicy Global -TargetNumber +14255550100"
        ),
        (Value::Null, Value::Null)
    );
    // piped and in variables; -RouteSettings limits the routes to those given
    assert_eq!(
        policy(
            &mut sh,
            "Get-CsVoicePolicy -Identity Tag:RedmondUsers | Test-CsVoicePolicy -TargetNumber +14255550199"
        ),
        (json!("Redmond"), json!("Local"))
    );
    assert_eq!(
        policy(
            &mut sh,
            "$p = Get-CsVoicePolicy -Identity RedmondUsers; $r = Get-CsVoiceRoute -Identity National; Test-CsVoicePolicy -VoicePolicy $p -TargetNumber +14255550100 -RouteSettings $r"
        ),
        (json!("National"), json!("Long Distance"))
    );
    let r = one(
        &mut sh,
        "Test-CsVoicePolicy -VoicePolicy RedmondUsers -TargetNumber +14255550100",
    );
    let route = prop(&r, "FirstMatchingRoute");
    assert_eq!(route["PstnGatewayList"], json!(["PstnGateway:192.0.2.10"]));
    assert_eq!(route["NumberPattern"], json!(r"^\+1425\d{7}$"));
}

#[test]
fn a_users_dial_plan_and_voice_policy_decide_their_call() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    let user = |sh: &mut Session, src: &str| {
        let r = one(sh, src);
        (
            prop(&r, "TranslatedNumber"),
            prop(&r, "MatchingRule")
                .get("Name")
                .cloned()
                .unwrap_or(Value::Null),
            prop(&r, "FirstMatchingRoute")
                .get("Name")
                .cloned()
                .unwrap_or(Value::Null),
            prop(&r, "MatchingUsage"),
        )
    };
    // alice: her own plan (FourDigit first) and policy (Local, Long Distance)
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1234"
        ),
        (
            json!("+14255551234"),
            json!("FourDigit"),
            json!("Redmond"),
            json!("Local")
        )
    );
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:alice@example.test -TargetNumber 12065550100"
        ),
        (
            json!("+12065550100"),
            json!("Prefix All"),
            json!("National"),
            json!("Long Distance")
        )
    );
    // normalised, but her policy has no usage for international numbers
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 011442071234567"
        ),
        (
            json!("+442071234567"),
            json!("International"),
            Value::Null,
            Value::Null
        )
    );
    // a number no rule matches is routed as dialled
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber +14255550123"
        ),
        (Value::Null, Value::Null, json!("Redmond"), json!("Local"))
    );
    // piped from Get-CsUser
    assert_eq!(
        user(
            &mut sh,
            "Get-CsUser -Identity sip:alice@example.test | Test-CsVoiceUser -DialedNumber 0100"
        ),
        (
            json!("+14255550100"),
            json!("FourDigit"),
            json!("Redmond"),
            json!("Local")
        )
    );
    let out = run(
        &mut sh,
        "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1234",
    );
    assert!(
        out.text.contains("MatchingUsage      : Local"),
        "{}",
        out.text
    );

    // bob has no Enterprise Voice: said so
    let e = fails(
        &mut sh,
        "Test-CsVoiceUser -SipUri sip:bob@example.test -DialedNumber 1234",
    );
    assert!(e.contains("not enabled for Enterprise Voice"), "{e}");
    // with it, and nothing granted: Global's plan and policy (no usages)
    run(
        &mut sh,
        "Set-CsUser -Identity sip:bob@example.test -EnterpriseVoiceEnabled $true",
    );
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:bob@example.test -DialedNumber 14255550100"
        ),
        (
            json!("+14255550100"),
            json!("Prefix All"),
            Value::Null,
            Value::Null
        )
    );
    // -Site: the site's plan and policy, when nothing is granted (alice keeps hers)
    run(
        &mut sh,
        r#"New-CsVoicePolicy -Identity site:Redmond -PstnUsages @{Add="Long Distance"}"#,
    );
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:bob@example.test -DialedNumber 14255550100 -Site Redmond"
        ),
        (
            json!("+4255550100"),
            json!("NationalLong"),
            Value::Null,
            Value::Null
        ),
        ".NET's answer for the cookbook's rule: no route takes ten digits"
    );
    assert_eq!(
        user(&mut sh, "Test-CsVoiceUser -SipUri sip:bob@example.test -DialedNumber +12065550100 -Site site:redmond"),
        (Value::Null, Value::Null, json!("National"), json!("Long Distance"))
    );
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1234 -Site Redmond"
        ),
        (
            json!("+14255551234"),
            json!("FourDigit"),
            json!("Redmond"),
            json!("Local")
        )
    );
    run(
        &mut sh,
        "Grant-CsVoicePolicy -Identity sip:bob@example.test -PolicyName Everyone",
    );
    assert_eq!(
        user(
            &mut sh,
            "Test-CsVoiceUser -SipUri sip:bob@example.test -DialedNumber 14255550100"
        ),
        (
            json!("+14255550100"),
            json!("Prefix All"),
            json!("Intl"),
            json!("International")
        )
    );
}

#[test]
fn trunks_translate_the_number_sent_to_the_gateway() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    let trunk = |sh: &mut Session, src: &str| {
        let r = one(sh, src);
        (
            prop(&r, "TranslatedNumber"),
            prop(&r, "MatchingRule")
                .get("Name")
                .cloned()
                .unwrap_or(Value::Null),
        )
    };
    // National (0) before StripPlus (1)
    assert_eq!(
        trunk(
            &mut sh,
            "Test-CsTrunkConfiguration -TrunkConfiguration PstnGateway:192.0.2.10 -DialedNumber +14255550100"
        ),
        (json!("14255550100"), json!("National"))
    );
    assert_eq!(
        trunk(
            &mut sh,
            "Test-CsTrunkConfiguration -TrunkConfiguration Service:PstnGateway:192.0.2.10 -DialedNumber +442071234567"
        ),
        (json!("442071234567"), json!("StripPlus"))
    );
    // no rule matches: the number goes out unchanged
    assert_eq!(
        trunk(
            &mut sh,
            "Test-CsTrunkConfiguration -TrunkConfiguration PstnGateway:192.0.2.10 -DialedNumber 1234"
        ),
        (json!("1234"), Value::Null)
    );
    // the cookbook's form: a variable; Global has no rules
    assert_eq!(
        trunk(
            &mut sh,
            "$tc = Get-CsTrunkConfiguration -Identity Global; Test-CsTrunkConfiguration -DialedNumber 4255551212 -TrunkConfiguration $tc"
        ),
        (json!("4255551212"), Value::Null)
    );
    // piped, with a calling number (sent as is: confab has no calling-number rules)
    let r = one(
        &mut sh,
        "Get-CsTrunkConfiguration -Identity Service:PstnGateway:192.0.2.10 | Test-CsTrunkConfiguration -DialedNumber +12065550100 -CallingNumber +14255550100",
    );
    assert_eq!(prop(&r, "TranslatedNumber"), json!("12065550100"));
    assert_eq!(prop(&r, "TranslatedCallingNumber"), json!("+14255550100"));
    let out = run(
        &mut sh,
        "Test-CsTrunkConfiguration -TrunkConfiguration PstnGateway:192.0.2.10 -DialedNumber +14255550100",
    );
    assert!(
        out.text.contains("TranslatedNumber : 14255550100"),
        "{}",
        out.text
    );
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    let before = snapshot(&s);
    for (src, want) in [
        (
            "Test-CsDialPlan -DialPlan site:Nowhere -DialedNumber 1234",
            "Cannot find dial plan \"Site:Nowhere\"",
        ),
        (
            "Test-CsDialPlan -DialPlan 'Bogus:x:y' -DialedNumber 1234",
            "DialPlan",
        ),
        (
            r#"Test-CsVoiceNormalizationRule -NormalizationRule "site:Redmond/Nope" -DialedNumber 1234"#,
            "Cannot find NormalizationRule \"Site:Redmond/Nope\"",
        ),
        (
            "Test-CsVoiceNormalizationRule -NormalizationRule site:Redmond -DialedNumber 1234",
            "is not <dial plan>/<rule name>",
        ),
        (
            "Test-CsVoiceRoute -Route NoSuchRoute -TargetNumber +14255550100",
            "Cannot find voice route",
        ),
        (
            "Test-CsVoicePolicy -VoicePolicy NoSuchPolicy -TargetNumber +14255550100",
            "Cannot find voice policy",
        ),
        (
            "Test-CsVoiceUser -SipUri sip:nobody@example.test -DialedNumber 1234",
            "Management object not found",
        ),
        (
            "Test-CsTrunkConfiguration -TrunkConfiguration PstnGateway:192.0.2.99 -DialedNumber 1234",
            "Cannot find trunk configuration",
        ),
        // malformed numbers
        ("Test-CsDialPlan -DialPlan Global -DialedNumber 12a4", "'12a4' is not a phone number"),
        ("Test-CsDialPlan -DialPlan Global -DialedNumber '+1 425'", "is not a phone number"),
        ("Test-CsDialPlan -DialPlan Global -DialedNumber ''", "the number is empty"),
        ("Test-CsDialPlan -DialPlan Global -DialedNumber 1.5", "is not a phone number"),
        (
            "Test-CsVoiceRoute -Route Intl -TargetNumber $true",
            "is not a phone number",
        ),
        (
            "Test-CsTrunkConfiguration -TrunkConfiguration Global -DialedNumber 1 -CallingNumber x",
            "CallingNumber",
        ),
        (
            "$n = 'abc'; Test-CsDialPlan -DialPlan Global -DialedNumber $n",
            "'abc' is not a phone number",
        ),
        (
            "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1 -Site 'Red:mond'",
            "Site",
        ),
        // missing or doubled parameters
        ("Test-CsDialPlan -DialPlan Global", "mandatory parameter 'DialedNumber'"),
        ("Test-CsDialPlan -DialedNumber 1234", "mandatory parameter 'DialPlan'"),
        (
            "Test-CsVoiceUser -SipUri sip:alice@example.test",
            "mandatory parameter 'DialedNumber'",
        ),
        (
            "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1 -TargetNumber 2",
            "either -DialedNumber or -TargetNumber",
        ),
        // an object of the wrong kind
        (
            "$r = Get-CsVoiceRoute -Identity Intl; Test-CsDialPlan -DialPlan $r -DialedNumber 1234",
            "is a CsVoiceRoute, not a CsDialPlan",
        ),
        (
            "Get-CsVoicePolicy -Identity Global | Test-CsTrunkConfiguration -DialedNumber 1234",
            "not a CsTrunkConfiguration",
        ),
        // a malformed number stops the whole script before the change in front of it
        (
            r#"Set-CsPstnUsage -Usage @{Add="Emergency"}; Test-CsDialPlan -DialPlan Global -DialedNumber 12x"#,
            "is not a phone number",
        ),
    ] {
        let e = fails(&mut sh, src);
        assert!(e.contains(want), "{src}\n  {e}\n  wanted {want}");
        assert_eq!(snapshot(&s), before, "{src} changed something");
    }
}

#[test]
fn tests_are_read_only_and_never_audited() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    voice_setup(&mut sh);
    let before = snapshot(&s);
    let n = audit_len(&s);
    for src in [
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 1234",
        r#"Test-CsVoiceNormalizationRule -NormalizationRule "site:Redmond/International" -DialedNumber 0111"#,
        "Test-CsVoiceRoute -Route Intl -TargetNumber +1",
        "Test-CsVoicePolicy -VoicePolicy Everyone -TargetNumber +1",
        "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1234 -Force",
        "Test-CsTrunkConfiguration -TrunkConfiguration Global -DialedNumber 1234",
    ] {
        run(&mut sh, src);
    }
    assert_eq!(audit_len(&s), n);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn the_help_desk_may_test_but_not_change() {
    let (_d, s) = store();
    let mut root = session(&s, "root");
    voice_setup(&mut root);
    s.add_admin("help", "helppassword1", &["CsHelpDesk".into()])
        .unwrap();
    s.add_admin("users", "userspassword1", &["CsUserAdministrator".into()])
        .unwrap();
    run(
        &mut root,
        &format!(
            r#"New-CsAdminRole -Identity SalesHelp -Template CsHelpDesk -UserScopes "OU:{SALES}""#
        ),
    );
    s.add_admin("saleshelp", "saleshelppassword1", &["SalesHelp".into()])
        .unwrap();
    run(
        &mut root,
        "Set-CsUser -Identity sip:bob@example.test -EnterpriseVoiceEnabled $true",
    );
    let tests = [
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 1234",
        r#"Get-CsVoiceNormalizationRule -Identity "site:Redmond/International" | Test-CsVoiceNormalizationRule -DialedNumber 0111"#,
        "Test-CsVoiceRoute -Route Intl -TargetNumber +1",
        "Test-CsVoicePolicy -VoicePolicy Everyone -TargetNumber +1",
        "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1234",
        "Test-CsTrunkConfiguration -TrunkConfiguration Global -DialedNumber 1234",
    ];
    let mut help = session(&s, "help");
    for src in tests {
        run(&mut help, src);
    }
    let e = fails(
        &mut help,
        r#"New-CsVoiceRoute -Identity Sneaky -NumberPattern '^\+\d+$'"#,
    );
    assert!(e.contains("access denied"), "{e}");
    // a role without the Test- cmdlets
    let mut users = session(&s, "users");
    let before = audit_len(&s);
    let e = fails(
        &mut users,
        "Test-CsDialPlan -DialPlan site:Redmond -DialedNumber 1234",
    );
    assert!(
        e.contains("access denied") && e.contains("CsHelpDesk"),
        "{e}"
    );
    assert_eq!(audit_len(&s), before + 1, "a refusal is audited");
    // user scopes hold for Test-CsVoiceUser: alice is in Sales, bob in no OU
    let mut sales = session(&s, "saleshelp");
    run(
        &mut sales,
        "Test-CsVoiceUser -SipUri sip:alice@example.test -DialedNumber 1234",
    );
    let e = fails(
        &mut sales,
        "Test-CsVoiceUser -SipUri sip:bob@example.test -DialedNumber 1234",
    );
    assert!(e.contains("outside the user scopes"), "{e}");
}
