//! Hosted voicemail and users' call forwarding through the shell against a real store:
//! CsHostedVoicemailPolicy (its Destination a voicemail server's SIP URI, refused otherwise),
//! Set-CsUser -HostedVoiceMail, and confab's Get-/Set-CsUserCallForwarding (SEFAUtil's job
//! in Lync): targets, $null and -Clear, the checks against the user's policies, bad input
//! changing nothing, RBAC and OU scopes, the audit log.

use confab_admin::{ExecError, Session};
use confab_store::{AuditFilter, Store};
use serde_json::{json, Value};

mod common;
use common::{fails, one, prop, run, session, store, SALES};

fn stored(s: &Store, user: &str) -> Option<String> {
    s.get_user(user, "example.test")
        .unwrap()
        .unwrap()
        .call_forwarding
}

fn voicemail_policies(s: &Store) -> Value {
    json!([
        s.list_config("CsHostedVoicemailPolicy")
            .unwrap()
            .into_iter()
            .map(|d| json!([d.identity, d.body]))
            .collect::<Vec<_>>(),
        s.list_config("CsUserPolicyAssignment")
            .unwrap()
            .into_iter()
            .map(|d| json!([d.identity, d.body]))
            .collect::<Vec<_>>()
    ])
}

#[test]
fn hosted_voicemail_policies_and_users() {
    let (_d, s) = store();
    let mut sh = session(&s, "root");
    // Lync's defaults: an empty Global policy
    let g = one(&mut sh, "Get-CsHostedVoicemailPolicy -Identity Global");
    assert_eq!(prop(&g, "Destination"), json!(""));
    assert_eq!(prop(&g, "Organization"), json!(""));

    run(
        &mut sh,
        "Set-CsHostedVoicemailPolicy -Destination ' SIP:voicemail@127.0.0.1:5090;Transport=TCP '; New-CsHostedVoicemailPolicy -Identity Sales -Destination 'sip:[::1]:5070' -Organization 'sales.example.test' -Description 'the sales team'; Grant-CsHostedVoicemailPolicy -Identity sip:alice@example.test -PolicyName Sales",
    );
    let g = one(&mut sh, "Get-CsHostedVoicemailPolicy -Identity Global");
    assert_eq!(
        prop(&g, "Destination"),
        json!("sip:voicemail@127.0.0.1:5090;transport=tcp"),
        "stored in its canonical spelling"
    );
    let t = one(&mut sh, "Get-CsHostedVoicemailPolicy -Identity Tag:Sales");
    assert_eq!(prop(&t, "Destination"), json!("sip:[::1]:5070"));
    let alice = one(&mut sh, "Get-CsUser -Identity sip:alice@example.test");
    assert_eq!(prop(&alice, "HostedVoicemailPolicy"), json!("Sales"));

    // not a SIP URI of an IP address: refused, naming the form, nothing changed
    let before = voicemail_policies(&s);
    for (src, want) in [
        (
            "Set-CsHostedVoicemailPolicy -Destination exum.example.test",
            "does not start with sip:",
        ),
        (
            "Set-CsHostedVoicemailPolicy -Destination sip:vm@exum.example.test",
            "not an IP address",
        ),
        (
            "Set-CsHostedVoicemailPolicy -Identity Tag:Sales -Destination 'sip:vm@127.0.0.1;transport=sctp'",
            "not udp, tcp or tls",
        ),
        (
            "New-CsHostedVoicemailPolicy -Identity Other -Destination sip:vm@127.0.0.1:99999",
            "port",
        ),
        // a value from a variable is checked when the command runs, before it stores
        (
            "$d = 'sip:vm@host'; Set-CsHostedVoicemailPolicy -Destination $d",
            "not an IP address",
        ),
        // and the first command of a refused script does not run either
        (
            "Set-CsHostedVoicemailPolicy -Description x; Set-CsHostedVoicemailPolicy -Destination nowhere",
            "sip:[user@]<IP address>",
        ),
    ] {
        let e = fails(&mut sh, src);
        assert!(e.contains(want), "{src}\n  → {e}");
        assert!(e.contains("Destination"), "{src}\n  → {e}");
        assert_eq!(voicemail_policies(&s), before, "{src} changed something");
    }
    // an empty Destination: no voicemail server
    run(
        &mut sh,
        "Set-CsHostedVoicemailPolicy -Identity Tag:Sales -Destination ''",
    );

    // Set-CsUser -HostedVoiceMail, shown by Get-CsUser with the other voice settings
    let u = one(&mut sh, "Get-CsUser -Identity sip:bob@example.test");
    assert_eq!(prop(&u, "HostedVoiceMail"), json!(false));
    assert_eq!(prop(&u, "EnterpriseVoiceEnabled"), json!(false));
    assert_eq!(prop(&u, "LineURI"), Value::Null);
    let v = s.users_version().unwrap();
    run(
        &mut sh,
        "Set-CsUser -Identity sip:bob@example.test -HostedVoiceMail $true -EnterpriseVoiceEnabled $true -LineURI tel:+14255550101",
    );
    assert!(s.users_version().unwrap() > v);
    let u = one(&mut sh, "Get-CsUser -Identity sip:bob@example.test");
    assert_eq!(prop(&u, "HostedVoiceMail"), json!(true));
    assert_eq!(prop(&u, "EnterpriseVoiceEnabled"), json!(true));
    assert_eq!(prop(&u, "LineURI"), json!("tel:+14255550101"));
    let e = fails(
        &mut sh,
        "Set-CsUser -Identity sip:bob@example.test -HostedVoiceMail sometimes",
    );
    assert!(e.contains("Boolean"), "{e}");
    run(
        &mut sh,
        "Get-CsUser -Identity sip:bob@example.test | Set-CsUser -HostedVoiceMail $false",
    );
    assert!(
        !s.get_user("bob", "example.test")
            .unwrap()
            .unwrap()
            .hosted_voicemail
    );

    // Remove- on a tag; on Global back to the defaults
    run(
        &mut sh,
        "Remove-CsHostedVoicemailPolicy -Identity Tag:Sales; Remove-CsHostedVoicemailPolicy -Identity Global",
    );
    let g = one(&mut sh, "Get-CsHostedVoicemailPolicy -Identity Global");
    assert_eq!(prop(&g, "Destination"), json!(""));
}

/// alice: Enterprise Voice with a number and hosted voicemail (a Global voicemail server).
fn voice_user(sh: &mut Session) {
    run(
        sh,
        "Set-CsUser -Identity sip:alice@example.test -EnterpriseVoiceEnabled $true -LineURI 'tel:+14255550100;ext=100' -HostedVoiceMail $true; Set-CsHostedVoicemailPolicy -Destination sip:vm@127.0.0.1:5090",
    );
}

#[test]
fn administrators_set_users_call_forwarding() {
    let (_d, s) = store();
    s.add_user(&confab_store::NewUser {
        username: "carol",
        domain: "example.test",
        display_name: "",
        password: "pw-secret",
    })
    .unwrap();
    let mut sh = session(&s, "root");
    voice_user(&mut sh);

    let f = one(
        &mut sh,
        "Get-CsUserCallForwarding -Identity sip:alice@example.test",
    );
    for (name, v) in [
        ("Identity", json!("sip:alice@example.test")),
        ("Immediate", Value::Null),
        ("SimulRing", Value::Null),
        ("Team", json!([])),
        ("TeamDelay", json!(0)),
        ("Unanswered", Value::Null),
        ("UnansweredAfter", json!(20)),
        ("Busy", Value::Null),
    ] {
        assert_eq!(prop(&f, name), v, "{name}");
    }

    let v = s.users_version().unwrap();
    run(
        &mut sh,
        "Set-CsUserCallForwarding -Identity sip:alice@example.test -SimulRing tel:+14255550199 -Team sip:Bob@example.test,carol@example.test -TeamDelay 10 -Unanswered voicemail -UnansweredAfter 15 -Busy sip:bob@example.test",
    );
    assert!(s.users_version().unwrap() > v, "servers notice the change");
    let f = one(&mut sh, "Get-CsUserCallForwarding sip:alice@example.test");
    assert_eq!(prop(&f, "SimulRing"), json!("tel:+14255550199"));
    assert_eq!(
        prop(&f, "Team"),
        json!(["sip:bob@example.test", "sip:carol@example.test"])
    );
    assert_eq!(prop(&f, "TeamDelay"), json!(10));
    assert_eq!(prop(&f, "Unanswered"), json!("voicemail"));
    assert_eq!(prop(&f, "UnansweredAfter"), json!(15));
    assert_eq!(prop(&f, "Busy"), json!("sip:bob@example.test"));
    // what the REST API and the server read
    let text = stored(&s, "alice").unwrap();
    let cf = confab_voice::CallForwarding::from_json(&text).unwrap();
    assert_eq!(cf.team, ["bob@example.test", "carol@example.test"]);

    // $null clears one setting, the others stay
    run(
        &mut sh,
        "Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy $null -Team $null",
    );
    let f = one(&mut sh, "Get-CsUserCallForwarding sip:alice@example.test");
    assert_eq!(prop(&f, "Busy"), Value::Null);
    assert_eq!(prop(&f, "Team"), json!([]));
    assert_eq!(prop(&f, "SimulRing"), json!("tel:+14255550199"));

    // refusals: the message names the setting and the rule; nothing changes, not even
    // the commands before the refused one
    let before = stored(&s, "alice");
    for (src, want) in [
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Immediate sip:bob@example.test",
            "cannot be combined",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy sip:nobody@example.test",
            "busy: sip:nobody@example.test is not a user",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy sip:alice@example.test",
            "themself",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Unanswered tel:+14255550100",
            "own number",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:bob@example.test -Busy tel:+14255550199",
            "EnterpriseVoiceEnabled",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:bob@example.test -Unanswered voicemail",
            "HostedVoiceMail",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy 4255550199",
            "not a forwarding target",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Team 'not an address'",
            "not a user address",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -UnansweredAfter 2",
            "valid range 5 to 60",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -TeamDelay 61",
            "valid range 0 to 60",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:alice@example.test -Clear; Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy bob",
            "not a forwarding target",
        ),
        (
            "$t = 'tel:12'; Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy $t",
            "not a phone number",
        ),
        (
            "Set-CsUserCallForwarding -Identity sip:nobody@example.test -Busy voicemail",
            "nobody@example.test",
        ),
    ] {
        let e = fails(&mut sh, src);
        assert!(e.contains(want), "{src}\n  → {e}");
        assert_eq!(stored(&s, "alice"), before, "{src} changed alice");
        assert_eq!(stored(&s, "bob"), None, "{src} changed bob");
    }

    // the voice policy decides
    run(
        &mut sh,
        "New-CsVoicePolicy -Identity NoFeatures -AllowCallForwarding $false -AllowSimulRing $false -EnableTeamCall $false; Grant-CsVoicePolicy -Identity sip:alice@example.test -PolicyName NoFeatures",
    );
    for (src, want) in [
        ("-SimulRing sip:bob@example.test", "simul_ring: simultaneous ring to sip:bob@example.test is not allowed: the user's CsVoicePolicy has AllowSimulRing $false"),
        ("-SimulRing $null -Busy sip:bob@example.test", "AllowCallForwarding $false"),
        ("-SimulRing $null -Team bob@example.test", "EnableTeamCall $false"),
    ] {
        let src = format!("Set-CsUserCallForwarding -Identity sip:alice@example.test {src}");
        let e = fails(&mut sh, &src);
        assert!(e.contains(want), "{src}\n  → {e}");
        assert_eq!(stored(&s, "alice"), before);
    }
    // voicemail is not forwarding
    run(
        &mut sh,
        "Set-CsUserCallForwarding -Identity sip:alice@example.test -Clear -Immediate voicemail",
    );
    let f = one(&mut sh, "Get-CsUserCallForwarding sip:alice@example.test");
    assert_eq!(prop(&f, "Immediate"), json!("voicemail"));
    assert_eq!(prop(&f, "SimulRing"), Value::Null);

    // -Clear alone: the defaults, stored as none
    run(
        &mut sh,
        "Get-CsUser -Identity sip:alice@example.test | Set-CsUserCallForwarding -Clear",
    );
    assert_eq!(stored(&s, "alice"), None);

    // audited, refusals too
    let audit = s.query_audit(&AuditFilter::default()).unwrap();
    let fwd: Vec<_> = audit
        .iter()
        .filter(|a| a.command.contains("Set-CsUserCallForwarding"))
        .collect();
    assert!(fwd
        .iter()
        .any(|a| a.success && a.command.contains("-Clear")));
    assert!(fwd
        .iter()
        .any(|a| !a.success && a.result.contains("AllowSimulRing")));
    assert!(!audit
        .iter()
        .any(|a| a.command.starts_with("Get-CsUserCallForwarding")));
}

#[test]
fn rbac_and_user_scopes_hold_for_call_forwarding() {
    let (_d, s) = store();
    let mut root = session(&s, "root");
    voice_user(&mut root);
    run(
        &mut root,
        "Set-CsUser -Identity sip:bob@example.test -EnterpriseVoiceEnabled $true",
    );
    for (name, role) in [
        ("users", "CsUserAdministrator"),
        ("voice", "CsVoiceAdministrator"),
        ("viewer", "CsViewOnlyAdministrator"),
        ("help", "CsHelpDesk"),
    ] {
        s.add_admin(name, &format!("{name}password1"), &[role.into()])
            .unwrap();
    }
    run(
        &mut root,
        &format!(
            r#"New-CsAdminRole -Identity SalesUsers -Template CsUserAdministrator -UserScopes "OU:{SALES}""#
        ),
    );
    s.add_admin("sales", "salespassword1", &["SalesUsers".into()])
        .unwrap();

    for admin in ["users", "voice"] {
        let mut sh = session(&s, admin);
        run(
            &mut sh,
            "Set-CsUserCallForwarding -Identity sip:bob@example.test -Busy sip:alice@example.test",
        );
        assert!(stored(&s, "bob").is_some(), "{admin}");
        run(
            &mut sh,
            "Set-CsUserCallForwarding -Identity sip:bob@example.test -Clear; Grant-CsHostedVoicemailPolicy -Identity sip:bob@example.test -PolicyName $null",
        );
        assert_eq!(stored(&s, "bob"), None);
    }
    let mut voice = session(&s, "voice");
    run(
        &mut voice,
        "New-CsHostedVoicemailPolicy -Identity Tag:V -Destination sip:vm@127.0.0.2; Remove-CsHostedVoicemailPolicy -Identity Tag:V",
    );

    // viewers and the help desk may look, not change
    for admin in ["viewer", "help"] {
        let mut sh = session(&s, admin);
        one(
            &mut sh,
            "Get-CsUserCallForwarding -Identity sip:bob@example.test",
        );
        one(&mut sh, "Get-CsHostedVoicemailPolicy -Identity Global");
        for src in [
            "Set-CsUserCallForwarding -Identity sip:bob@example.test -Busy sip:alice@example.test",
            "Set-CsHostedVoicemailPolicy -Destination sip:vm@127.0.0.3",
        ] {
            let e = sh.run(src).unwrap_err();
            assert!(matches!(e, ExecError::Denied { .. }), "{admin} {src}: {e}");
        }
    }
    // a user administrator may not edit the policy, only grant it
    let mut users = session(&s, "users");
    let e = users
        .run("Set-CsHostedVoicemailPolicy -Destination sip:vm@127.0.0.3")
        .unwrap_err();
    assert!(matches!(e, ExecError::Denied { .. }), "{e}");

    // an OU-scoped administrator: alice (Sales) yes, bob (no OU) no, named either way
    let mut sales = session(&s, "sales");
    run(
        &mut sales,
        "Set-CsUserCallForwarding -Identity sip:alice@example.test -Busy sip:bob@example.test",
    );
    assert!(stored(&s, "alice").is_some());
    for src in [
        "Set-CsUserCallForwarding -Identity sip:bob@example.test -Busy sip:alice@example.test",
        "Get-CsUserCallForwarding -Identity sip:bob@example.test",
        "$u = 'sip:bob@example.test'; Set-CsUserCallForwarding -Identity $u -Busy sip:alice@example.test",
    ] {
        let e = sales.run(src).unwrap_err();
        assert!(matches!(e, ExecError::OutOfScope { .. }), "{src}: {e}");
    }
    assert_eq!(stored(&s, "bob"), None);
}
