//! Users' call forwarding settings against their policies: the one check that both the
//! users' own REST route (`/api/v1/me/forwarding`) and the administrators' cmdlets
//! (`Set-CsUserCallForwarding`, confab's in the place of SEFAUtil) run before settings are
//! stored. The server enforces the same policies again when a call comes (settings stay
//! stored when a policy changes later).
//!
//! The rules: the settings' own ([`CallForwarding::validate`]); the user's CsVoicePolicy
//! allows what is set (AllowCallForwarding for immediate, unanswered and busy targets other
//! than voicemail, AllowSimulRing for simultaneous ring, EnableTeamCall for a team); a
//! phone number needs the user's EnterpriseVoiceEnabled; `voicemail` needs HostedVoiceMail
//! and a CsHostedVoicemailPolicy with a Destination; `sip:` targets and team members are
//! existing users; nobody forwards to themself.

use confab_policy::{HostedVoicemailPolicy, VoicePolicy};
use confab_store::{Store, StoreError, User};
use confab_voice::{CallForwarding, ForwardTarget};

/// The CsHostedVoicemailPolicy of the user `user_key` (`user@domain`): granted (Tag:) if it
/// still exists, else `Site:<site>`, else Global, else Lync's defaults (no Destination).
/// `NoSuchUser` for a user the store does not have.
pub fn hosted_voicemail_policy_for(
    store: &Store,
    user_key: &str,
    site: Option<&str>,
) -> Result<HostedVoicemailPolicy, StoreError> {
    let (_, a) = crate::policies::user_and_assignment(store, user_key)?;
    crate::policies::policy_of(store, a.hosted_voicemail_policy.as_deref(), site)
}

/// Checks `f`, the call forwarding settings of the user `user_key` (`user@domain`, `sip:`
/// allowed), against the settings' own rules and the user's policies (resolved as the
/// REST API and the shell resolve them: granted, else Global). `Err` names the setting and
/// the policy property that refuse it.
pub fn check_forwarding(store: &Store, user_key: &str, f: &CallForwarding) -> Result<(), String> {
    check_forwarding_at(store, user_key, None, f)
}

/// [`check_forwarding`] with the user's policies resolved at `site` (`Site:<site>` ones
/// before Global).
pub fn check_forwarding_at(
    store: &Store,
    user_key: &str,
    site: Option<&str>,
    f: &CallForwarding,
) -> Result<(), String> {
    f.validate()?;
    let (user, a) =
        crate::policies::user_and_assignment(store, user_key).map_err(|e| store_message(&e))?;
    let me = user.address().to_ascii_lowercase();
    let voice: VoicePolicy = crate::policies::policy_of(store, a.voice_policy.as_deref(), site)
        .map_err(|e| store_message(&e))?;
    let refused = |setting: &str, what: &str, prop: &str| {
        format!("{setting}: {what} is not allowed: the user's CsVoicePolicy has {prop} $false")
    };

    for (setting, t) in f.targets() {
        match t {
            ForwardTarget::Voicemail => {
                if !user.hosted_voicemail {
                    return Err(format!(
                        "{setting}: voicemail needs hosted voicemail, which sip:{me} does not have (Set-CsUser -HostedVoiceMail $true)"
                    ));
                }
                let vm: HostedVoicemailPolicy =
                    crate::policies::policy_of(store, a.hosted_voicemail_policy.as_deref(), site)
                        .map_err(|e| store_message(&e))?;
                if vm.destination().is_none() {
                    return Err(format!(
                        "{setting}: voicemail is not available: the user's CsHostedVoicemailPolicy has no Destination"
                    ));
                }
            }
            ForwardTarget::Number(n) => {
                if !user.enterprise_voice_enabled {
                    return Err(format!(
                        "{setting}: tel:{n} is a phone number, which needs EnterpriseVoiceEnabled; sip:{me} is not enabled for Enterprise Voice"
                    ));
                }
                if is_own_number(&user, n) {
                    return Err(format!(
                        "{setting}: tel:{n} is the user's own number (LineURI); a user cannot forward to themself"
                    ));
                }
            }
            ForwardTarget::User(u) => {
                if u.eq_ignore_ascii_case(&me) {
                    return Err(format!(
                        "{setting}: sip:{u} is the user themself; a user cannot forward to themself"
                    ));
                }
                existing_user(store, setting, u)?;
            }
        }
        let allowed = match (setting, t) {
            ("simul_ring", _) => voice.allow_simul_ring.then_some(()).ok_or_else(|| {
                refused(
                    setting,
                    &format!("simultaneous ring to {t}"),
                    "AllowSimulRing",
                )
            }),
            (_, ForwardTarget::Voicemail) => Ok(()),
            _ => voice.allow_call_forwarding.then_some(()).ok_or_else(|| {
                refused(
                    setting,
                    &format!("forwarding to {t}"),
                    "AllowCallForwarding",
                )
            }),
        };
        allowed?;
    }

    if !f.team.is_empty() {
        if !voice.enable_team_call {
            return Err(refused("team", "team call", "EnableTeamCall"));
        }
        for m in &f.team {
            let m = m.trim().to_ascii_lowercase();
            let m = m.strip_prefix("sip:").unwrap_or(&m);
            if m == me {
                return Err(format!(
                    "team: sip:{m} is the user themself; a user cannot be in their own team"
                ));
            }
            existing_user(store, "team", m)?;
        }
    }
    Ok(())
}

/// `user@domain` must be a user of this server.
fn existing_user(store: &Store, setting: &str, address: &str) -> Result<(), String> {
    let (u, d) = address.split_once('@').unwrap_or((address, ""));
    match store.get_user(u, d) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!(
            "{setting}: sip:{address} is not a user of this server"
        )),
        Err(e) => Err(store_message(&e)),
    }
}

/// Whether `number` (`+<digits>`) is the number of the user's LineURI (with or without
/// its extension).
fn is_own_number(user: &User, number: &str) -> bool {
    user.line_uri.as_deref().is_some_and(|l| {
        l.strip_prefix("tel:")
            .map(|rest| rest.split(';').next().unwrap_or(rest))
            .is_some_and(|own| own == number)
    })
}

fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::NoSuchUser(u) => format!("no such user: {u}"),
        StoreError::Invalid(m) => m.clone(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_store::NewUser;
    use serde_json::json;

    fn store() -> Store {
        let s = Store::open_in_memory().unwrap();
        for u in ["alice", "bob", "carol"] {
            s.add_user(&NewUser {
                username: u,
                domain: "a.test",
                display_name: "",
                password: "pw",
            })
            .unwrap();
        }
        s.set_enterprise_voice("alice", "a.test", true).unwrap();
        s.set_line_uri("alice", "a.test", Some("tel:+14255550100;ext=100"))
            .unwrap();
        s
    }

    fn f(j: serde_json::Value) -> CallForwarding {
        CallForwarding::from_json(&j.to_string()).unwrap()
    }

    fn policy(s: &Store, kind: &str, body: serde_json::Value) {
        s.put_config(kind, "Global", body.as_object().unwrap())
            .unwrap();
    }

    #[test]
    fn the_voicemail_policy_is_granted_else_global() {
        let s = store();
        let dest = |u: &str| {
            hosted_voicemail_policy_for(&s, u, None)
                .unwrap()
                .destination()
                .map(|d| d.to_string())
        };
        assert_eq!(dest("alice@a.test"), None);
        policy(
            &s,
            "CsHostedVoicemailPolicy",
            json!({"Destination": "sip:vm@127.0.0.1"}),
        );
        let tag = json!({"Destination": "sip:sales@127.0.0.2:5070"});
        s.put_config(
            "CsHostedVoicemailPolicy",
            "Tag:Sales",
            tag.as_object().unwrap(),
        )
        .unwrap();
        let grant = json!({"HostedVoicemailPolicy": "Sales"});
        s.put_config(
            "CsUserPolicyAssignment",
            "alice@a.test",
            grant.as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(
            dest("sip:Alice@a.test").as_deref(),
            Some("sip:sales@127.0.0.2:5070")
        );
        assert_eq!(dest("bob@a.test").as_deref(), Some("sip:vm@127.0.0.1"));
        assert!(hosted_voicemail_policy_for(&s, "nobody@a.test", None).is_err());
    }

    #[test]
    fn allowed_settings_pass() {
        let s = store();
        let ok = f(
            json!({"simul_ring": "tel:+14255550199", "team": ["bob@a.test"],
            "unanswered": "sip:carol@a.test", "busy": "sip:Bob@A.test"}),
        );
        check_forwarding(&s, "sip:Alice@a.test", &ok).unwrap();
        check_forwarding(&s, "alice@a.test", &CallForwarding::default()).unwrap();
    }

    #[test]
    fn each_rule_names_its_setting_and_property() {
        let s = store();
        let err = |user: &str, j: serde_json::Value| check_forwarding(&s, user, &f(j)).unwrap_err();
        // not enterprise voice: no numbers
        let e = err("bob@a.test", json!({"immediate": "tel:+14255550199"}));
        assert!(
            e.starts_with("immediate:") && e.contains("EnterpriseVoiceEnabled"),
            "{e}"
        );
        // not hosted voicemail
        let e = err("alice@a.test", json!({"unanswered": "voicemail"}));
        assert!(
            e.starts_with("unanswered:") && e.contains("HostedVoiceMail"),
            "{e}"
        );
        s.set_hosted_voicemail("alice", "a.test", true).unwrap();
        let e = err("alice@a.test", json!({"unanswered": "voicemail"}));
        assert!(
            e.contains("CsHostedVoicemailPolicy has no Destination"),
            "{e}"
        );
        policy(
            &s,
            "CsHostedVoicemailPolicy",
            json!({"Destination": "sip:vm@127.0.0.1:5090"}),
        );
        check_forwarding(&s, "alice@a.test", &f(json!({"unanswered": "voicemail"}))).unwrap();
        // themself, by address, LineURI or team
        let e = err("alice@a.test", json!({"busy": "sip:alice@a.test"}));
        assert!(e.starts_with("busy:") && e.contains("themself"), "{e}");
        let e = err("alice@a.test", json!({"immediate": "tel:+14255550100"}));
        assert!(e.contains("own number"), "{e}");
        let e = err("alice@a.test", json!({"team": ["alice@a.test"]}));
        assert!(e.starts_with("team:"), "{e}");
        // unknown users
        let e = err("alice@a.test", json!({"simul_ring": "sip:nobody@a.test"}));
        assert!(
            e.starts_with("simul_ring:") && e.contains("not a user"),
            "{e}"
        );
        let e = err("alice@a.test", json!({"team": ["nobody@a.test"]}));
        assert!(e.starts_with("team:") && e.contains("not a user"), "{e}");
        // the voice policy
        policy(
            &s,
            "CsVoicePolicy",
            json!({"AllowCallForwarding": false,
            "AllowSimulRing": false, "EnableTeamCall": false}),
        );
        let e = err("alice@a.test", json!({"immediate": "sip:bob@a.test"}));
        assert!(
            e.starts_with("immediate:") && e.contains("AllowCallForwarding $false"),
            "{e}"
        );
        let e = err("alice@a.test", json!({"busy": "tel:+14255550199"}));
        assert!(
            e.starts_with("busy:") && e.contains("AllowCallForwarding"),
            "{e}"
        );
        let e = err("alice@a.test", json!({"simul_ring": "sip:bob@a.test"}));
        assert!(
            e.starts_with("simul_ring:") && e.contains("AllowSimulRing $false"),
            "{e}"
        );
        let e = err("alice@a.test", json!({"team": ["bob@a.test"]}));
        assert!(
            e.starts_with("team:") && e.contains("EnableTeamCall $false"),
            "{e}"
        );
        // voicemail is not forwarding
        check_forwarding(&s, "alice@a.test", &f(json!({"immediate": "voicemail"}))).unwrap();
        // the settings' own rules and unknown users
        let bad = CallForwarding {
            unanswered_after_secs: 1,
            ..Default::default()
        };
        assert!(check_forwarding(&s, "alice@a.test", &bad)
            .unwrap_err()
            .contains("unanswered_after_secs"));
        assert!(
            check_forwarding(&s, "nobody@a.test", &CallForwarding::default())
                .unwrap_err()
                .contains("no such user")
        );
    }
}
