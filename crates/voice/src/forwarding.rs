//! A user's own call forwarding settings (what Lync's client sets under "Call Forwarding
//! Settings", and SEFAUtil for administrators): forward immediately, ring another number or
//! user at the same time (simultaneous ring), ring a team, and where unanswered or busy calls
//! go. The voice policy decides which of these a user may use (`AllowCallForwarding`,
//! `AllowSimulRing`, `EnableTeamCall`); the server enforces that at call time and the REST
//! API when they are set.
//!
//! Stored as JSON (the store keeps the text, `users.call_forwarding`); targets are written
//! `tel:+<digits>` (a phone number, routed by the voice policy), `sip:user@domain` (a user),
//! or `voicemail` (the user's hosted voicemail, CsHostedVoicemailPolicy).

use serde::{Deserialize, Serialize};

/// Longest list of team members (Lync's team-call group holds up to 25).
pub const MAX_TEAM: usize = 25;
/// Lync's "ring for N seconds before redirecting": 5 to 60, default 20.
pub const UNANSWERED_SECS: std::ops::RangeInclusive<u32> = 5..=60;
pub const DEFAULT_UNANSWERED_SECS: u32 = 20;
/// Team members ring after this many seconds (0 to 60).
pub const TEAM_DELAY_SECS: std::ops::RangeInclusive<u32> = 0..=60;

/// Where a forwarded call goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ForwardTarget {
    /// A phone number, `+` and digits (from `tel:+…`), routed by the user's voice policy.
    Number(String),
    /// A SIP user, `user@domain` (from `sip:user@domain`).
    User(String),
    /// The user's hosted voicemail.
    Voicemail,
}

impl ForwardTarget {
    /// `tel:+<digits>` (or `+<digits>`), `sip:user@domain`, or `voicemail`.
    pub fn parse(raw: &str) -> Result<ForwardTarget, String> {
        let t = raw.trim();
        if t.eq_ignore_ascii_case("voicemail") {
            return Ok(ForwardTarget::Voicemail);
        }
        let lower = t.to_ascii_lowercase();
        if let Some(n) = lower
            .strip_prefix("tel:")
            .or_else(|| lower.starts_with('+').then_some(lower.as_str()))
        {
            let digits = n.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|c| c.is_ascii_digit())
            {
                return Err(format!(
                    "'{raw}' is not a phone number: write tel:+ and 1 to 20 digits (E.164)"
                ));
            }
            return Ok(ForwardTarget::Number(format!("+{digits}")));
        }
        if let Some(a) = lower.strip_prefix("sip:") {
            let ok = a.split_once('@').is_some_and(|(u, d)| {
                !u.is_empty()
                    && !d.is_empty()
                    && a.len() <= 256
                    && a.bytes().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'@' | b'.' | b'-' | b'_' | b'+')
                    })
            });
            if !ok {
                return Err(format!("'{raw}' is not a SIP address (sip:user@domain)"));
            }
            return Ok(ForwardTarget::User(a.to_string()));
        }
        Err(format!(
            "'{raw}' is not a forwarding target: give tel:+<digits>, sip:user@domain or voicemail"
        ))
    }
}

impl std::fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardTarget::Number(n) => write!(f, "tel:{n}"),
            ForwardTarget::User(u) => write!(f, "sip:{u}"),
            ForwardTarget::Voicemail => f.write_str("voicemail"),
        }
    }
}

impl TryFrom<String> for ForwardTarget {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ForwardTarget::parse(&s)
    }
}

impl From<ForwardTarget> for String {
    fn from(t: ForwardTarget) -> String {
        t.to_string()
    }
}

/// A user's call forwarding settings. The default: calls ring the user's endpoints only,
/// unanswered ones go to voicemail after 20 s when the user has hosted voicemail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallForwarding {
    /// Every call goes here instead of ringing the user (AllowCallForwarding).
    pub immediate: Option<ForwardTarget>,
    /// Rings with the user's own endpoints (AllowSimulRing); a number or a user.
    pub simul_ring: Option<ForwardTarget>,
    /// Team call (EnableTeamCall): these users (`user@domain`) ring too, after `team_delay_secs`.
    pub team: Vec<String>,
    pub team_delay_secs: u32,
    /// Where a call nobody answered within `unanswered_after_secs` goes (None: voicemail when
    /// the user has it, else the caller gets the callee's final answer).
    pub unanswered: Option<ForwardTarget>,
    pub unanswered_after_secs: u32,
    /// Where a call goes when every endpoint of the user is busy (486).
    pub busy: Option<ForwardTarget>,
}

impl Default for CallForwarding {
    fn default() -> Self {
        CallForwarding {
            immediate: None,
            simul_ring: None,
            team: vec![],
            team_delay_secs: 0,
            unanswered: None,
            unanswered_after_secs: DEFAULT_UNANSWERED_SECS,
            busy: None,
        }
    }
}

impl CallForwarding {
    /// Whether anything but the defaults is set.
    pub fn is_default(&self) -> bool {
        *self == CallForwarding::default()
    }

    /// The settings' own rules (not the policy's): immediate forwarding excludes simultaneous
    /// ring and team call; simultaneous ring is a number or a user; times in range; team
    /// members are `user@domain`, at most [`MAX_TEAM`], none twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.immediate.is_some() && (self.simul_ring.is_some() || !self.team.is_empty()) {
            return Err(
                "immediate forwarding cannot be combined with simultaneous ring or team call"
                    .into(),
            );
        }
        if self.simul_ring == Some(ForwardTarget::Voicemail) {
            return Err("simultaneous ring rings a number or a user, not voicemail".into());
        }
        if !UNANSWERED_SECS.contains(&self.unanswered_after_secs) {
            return Err(format!(
                "unanswered_after_secs must be {} to {} (seconds)",
                UNANSWERED_SECS.start(),
                UNANSWERED_SECS.end()
            ));
        }
        if !TEAM_DELAY_SECS.contains(&self.team_delay_secs) {
            return Err(format!(
                "team_delay_secs must be {} to {} (seconds)",
                TEAM_DELAY_SECS.start(),
                TEAM_DELAY_SECS.end()
            ));
        }
        if self.team.len() > MAX_TEAM {
            return Err(format!("a team has at most {MAX_TEAM} members"));
        }
        for (i, m) in self.team.iter().enumerate() {
            match ForwardTarget::parse(&format!("sip:{}", m.trim_start_matches("sip:"))) {
                Ok(ForwardTarget::User(_)) => {}
                _ => {
                    return Err(format!(
                        "team member '{m}' is not a SIP address (user@domain)"
                    ))
                }
            }
            if self.team[..i].iter().any(|o| o.eq_ignore_ascii_case(m)) {
                return Err(format!("team member '{m}' is listed twice"));
            }
        }
        Ok(())
    }

    /// Reads stored (or REST) JSON and validates it.
    pub fn from_json(text: &str) -> Result<CallForwarding, String> {
        // an object only: serde would also read a struct from an array, by position
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("call forwarding settings: {e}"))?;
        if !v.is_object() {
            return Err("call forwarding settings must be a JSON object".into());
        }
        let mut f: CallForwarding =
            serde_json::from_value(v).map_err(|e| format!("call forwarding settings: {e}"))?;
        f.normalize_team();
        f.validate()?;
        Ok(f)
    }

    /// A user's settings from the store (`User::call_forwarding`): the defaults when none
    /// are stored, and when the stored text no longer reads (never a failed call for it).
    pub fn from_stored(json: Option<&str>) -> CallForwarding {
        json.and_then(|j| CallForwarding::from_json(j).ok())
            .unwrap_or_default()
    }

    /// Team members in their stored spelling: `user@domain`, lower case, without `sip:`
    /// (what [`CallForwarding::from_json`] does; for settings built another way).
    pub fn normalize_team(&mut self) {
        for m in &mut self.team {
            let l = m.trim().to_ascii_lowercase();
            *m = l.strip_prefix("sip:").unwrap_or(&l).to_string();
        }
    }

    /// Every target set, with the name of its setting (`immediate`, `simul_ring`,
    /// `unanswered`, `busy`), in that order.
    pub fn targets(&self) -> impl Iterator<Item = (&'static str, &ForwardTarget)> {
        [
            ("immediate", &self.immediate),
            ("simul_ring", &self.simul_ring),
            ("unanswered", &self.unanswered),
            ("busy", &self.busy),
        ]
        .into_iter()
        .filter_map(|(n, t)| t.as_ref().map(|t| (n, t)))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print() {
        assert_eq!(
            ForwardTarget::parse(" tel:+14255550100").unwrap(),
            ForwardTarget::Number("+14255550100".into())
        );
        assert_eq!(ForwardTarget::parse("+44").unwrap().to_string(), "tel:+44");
        assert_eq!(
            ForwardTarget::parse("SIP:Bob@Example.test").unwrap(),
            ForwardTarget::User("bob@example.test".into())
        );
        assert_eq!(
            ForwardTarget::parse("VoiceMail").unwrap(),
            ForwardTarget::Voicemail
        );
        for bad in [
            "",
            "tel:",
            "tel:1425",
            "tel:+1a",
            "sip:",
            "sip:bob",
            "sip:@x",
            "bob",
            "sip:b<b>@x",
        ] {
            assert!(ForwardTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_round_trip_and_are_checked() {
        let f = CallForwarding::from_json(
            r#"{"simul_ring":"tel:+14255550199","team":["SIP:Carol@example.test"],"unanswered":"voicemail","unanswered_after_secs":15}"#,
        )
        .unwrap();
        assert_eq!(f.team, vec!["carol@example.test".to_string()]);
        assert_eq!(CallForwarding::from_json(&f.to_json()).unwrap(), f);
        assert!(CallForwarding::default().is_default());
        assert_eq!(CallForwarding::from_stored(Some(&f.to_json())), f);
        assert!(CallForwarding::from_stored(None).is_default());
        assert!(CallForwarding::from_stored(Some("{\"team\":[\"x\"]}")).is_default());
        for bad in [
            r#"{"immediate":"voicemail","simul_ring":"tel:+1"}"#,
            r#"{"simul_ring":"voicemail"}"#,
            r#"{"unanswered_after_secs":2}"#,
            r#"{"team":["a@x","A@x"]}"#,
            r#"{"team":["nobody"]}"#,
            r#"{"forward":"tel:+1"}"#,
            r#"{"immediate":"tel:12"}"#,
            r#"["sip:bob@example.test"]"#,
            "[",
        ] {
            assert!(
                CallForwarding::from_json(bad).is_err(),
                "{bad} {:?}",
                CallForwarding::from_json(bad)
            );
        }
    }
}
