//! The call features of the voice policy (Lync §4): a call to one of our users is shaped
//! by the user's own forwarding settings (`confab_voice::CallForwarding`, set through REST
//! or `Set-CsUserCallForwarding`) within what their CsVoicePolicy allows — immediate
//! forwarding, simultaneous ring, team call (after a delay), forwarding when unanswered or
//! busy — and by hosted voicemail (CsHostedVoicemailPolicy `Destination`), which takes calls
//! that are unanswered, busy or declined. A forwarded call carries Diversion (RFC 5806) and
//! History-Info (RFC 7044) naming the user and why; a call to voicemail has the RFC 4458
//! `target` and `cause` in its Request-URI, as voicemail systems expect.
//!
//! A forwarding target is reached one level deep: a user's own endpoints (never their
//! forwarding again, so forwarding cannot loop), a number's user by reverse lookup, or the
//! PSTN through the usages `CallForwardingSimulRingUsageType` names.

use crate::core::{Core, Target};
use crate::edge::PolicySet;
use crate::users::UserCred;
use crate::voice::CallPlan;
use confab_policy::{CallForwardingSimulRingUsageType as UsageType, VoicePolicy};
use confab_voice::{CallForwarding, ForwardTarget};
use std::time::{Duration, Instant};

/// Why a call went somewhere else (RFC 5806 reason, RFC 4458 cause).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    Unconditional,
    Busy,
    NoAnswer,
    Declined,
}

impl Why {
    fn reason(self) -> &'static str {
        match self {
            Why::Unconditional => "unconditional",
            Why::Busy => "user-busy",
            Why::NoAnswer => "no-answer",
            Why::Declined => "deflection",
        }
    }

    fn cause(self) -> u16 {
        match self {
            Why::Unconditional => 302,
            Why::Busy => 486,
            Why::NoAnswer => 408,
            Why::Declined => 487,
        }
    }
}

/// Percent-encodes what cannot stand in a URI parameter or header (RFC 3261 §25.1).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Core {
    /// The targets and plan of an initial INVITE to user `u` whose registered endpoints are
    /// `own`, from `caller` (our user's key, for their caller ID to a gateway). No plan when
    /// the user has neither forwarding nor voicemail: the plain fork.
    pub(crate) fn user_call(
        &self,
        u: &UserCred,
        own: Vec<Target>,
        caller: Option<&str>,
        now: Instant,
    ) -> (Vec<Target>, Option<Box<CallPlan>>) {
        if u.forwarding.is_none() && !u.hosted_voicemail {
            return (own, None);
        }
        let aor = crate::users::user_key(&u.username, &u.domain);
        let p = self.policies.get();
        let policy = p.voice_policy(&aor);
        let default = CallForwarding::default();
        let f = u.forwarding.as_deref().unwrap_or(&default);
        let caller_line = caller
            .and_then(|c| c.rsplit_once('@'))
            .and_then(|(n, d)| self.users.get(n, d))
            .and_then(|c| c.line_uri.clone());
        let ctx = Forwarder {
            core: self,
            p: &p,
            policy,
            user: u,
            aor: &aor,
            caller_line: caller_line.as_deref(),
        };
        let voicemail = |why| ctx.voicemail(why);
        let mut plan = CallPlan::default();
        // immediate forwarding replaces the user's endpoints
        if let Some(t) = f.immediate.as_ref().filter(|t| ctx.may_forward(t)) {
            let targets = ctx.resolve(t, Some(Why::Unconditional));
            if !targets.is_empty() {
                tracing::info!(user = %aor, to = %t, "call forwarded immediately");
                return (targets, None);
            }
        }
        let mut targets = own;
        if let Some(t) = f.simul_ring.as_ref().filter(|_| policy.allow_simul_ring) {
            targets.extend(ctx.resolve(t, None));
        }
        if policy.enable_team_call {
            let delay = Duration::from_secs(f.team_delay_secs.into());
            for m in &f.team {
                if let Some((n, d)) = m.rsplit_once('@') {
                    if let Some(member) = self.users.get(n, d) {
                        let key = crate::users::user_key(&member.username, &member.domain);
                        for t in self.targets_for(&key, now) {
                            if delay.is_zero() {
                                targets.push(t); // rings with the user
                            } else {
                                plan.delayed.push((delay, Some(t)));
                            }
                        }
                    }
                }
            }
        }
        plan.unanswered = match f.unanswered.as_ref().filter(|t| ctx.may_forward(t)) {
            Some(t) => ctx.resolve(t, Some(Why::NoAnswer)),
            None => voicemail(Why::NoAnswer),
        };
        if !plan.unanswered.is_empty() {
            plan.no_answer = Some(Duration::from_secs(f.unanswered_after_secs.into()));
        }
        plan.busy = match f.busy.as_ref().filter(|t| ctx.may_forward(t)) {
            Some(t) => ctx.resolve(t, Some(Why::Busy)),
            None => voicemail(Why::Busy),
        };
        plan.declined = voicemail(Why::Declined);
        (targets, Some(Box::new(plan)))
    }
}

/// What resolving a user's forwarding targets needs.
struct Forwarder<'a> {
    core: &'a Core,
    p: &'a PolicySet,
    policy: &'a VoicePolicy,
    user: &'a UserCred,
    aor: &'a str,
    caller_line: Option<&'a str>,
}

impl Forwarder<'_> {
    /// AllowCallForwarding covers every forwarding target but voicemail.
    fn may_forward(&self, t: &ForwardTarget) -> bool {
        *t == ForwardTarget::Voicemail || self.policy.allow_call_forwarding
    }

    /// The branches for a forwarding target, with the diversion history when `why` says
    /// the call was diverted (None: simultaneous ring, the same call ringing elsewhere).
    fn resolve(&self, t: &ForwardTarget, why: Option<Why>) -> Vec<Target> {
        let mut targets = match t {
            ForwardTarget::Voicemail => return why.map(|w| self.voicemail(w)).unwrap_or_default(),
            ForwardTarget::User(key) => self.user_targets(key),
            ForwardTarget::Number(n) => match self.core.users.by_number(n) {
                Some(u) => self.user_targets(&crate::users::user_key(&u.username, &u.domain)),
                None => self.pstn(n).into_iter().collect(),
            },
        };
        if let Some(w) = why {
            for target in &mut targets {
                self.divert(target, w);
            }
        }
        targets
    }

    /// Another user's registered endpoints (not the user themself).
    fn user_targets(&self, key: &str) -> Vec<Target> {
        if key.eq_ignore_ascii_case(self.aor) {
            return vec![];
        }
        self.core.targets_for(key, Instant::now())
    }

    /// A number out through the PSTN, with the usages the policy names for forwarding and
    /// simultaneous ring (CallForwardingSimulRingUsageType); only for Enterprise Voice users.
    fn pstn(&self, number: &str) -> Option<Target> {
        if !self.user.enterprise_voice {
            tracing::info!(user = %self.aor, %number, "forwarding to a number needs Enterprise Voice");
            return None;
        }
        let usages: &[String] = match self.policy.call_forwarding_simul_ring_usage_type {
            UsageType::VoicePolicyUsage => &self.policy.pstn_usages,
            UsageType::CustomUsage => &self.policy.custom_call_forwarding_simul_ring_usages,
            UsageType::InternalOnly => &[],
        };
        let t = self
            .core
            .pstn_targets_for(self.p, usages, number, self.caller_line);
        if t.is_none() {
            tracing::info!(user = %self.aor, %number, "no route for the forwarding number in the usages the policy allows for forwarding");
        }
        t
    }

    /// Hosted voicemail for a call diverted for `why`: the CsHostedVoicemailPolicy
    /// Destination with RFC 4458's target and cause.
    fn voicemail(&self, why: Why) -> Vec<Target> {
        if !self.user.hosted_voicemail {
            return vec![];
        }
        let Some(d) = self.p.hosted_voicemail_policy(self.aor).destination() else {
            return vec![];
        };
        let transport = match d.transport() {
            confab_policy::VoicemailTransport::Udp => crate::config::Transport::Udp,
            confab_policy::VoicemailTransport::Tcp => crate::config::Transport::Tcp,
            confab_policy::VoicemailTransport::Tls => crate::config::Transport::Tls,
        };
        let addr = d.socket_addr();
        let host = match addr {
            std::net::SocketAddr::V4(a) => a.to_string(),
            std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let scheme = if d.secure { "sips" } else { "sip" };
        let user = d.user.as_deref().unwrap_or("voicemail");
        let uri = format!(
            "{scheme}:{user}@{host};transport={};target={};cause={}",
            transport.param(),
            escape(&format!("sip:{}", self.aor)),
            why.cause()
        );
        let mut t = Target {
            uri: Some(uri),
            ..Target::hop(crate::net::Dest {
                transport,
                addr,
                conn: None,
            })
        };
        self.divert(&mut t, why);
        vec![t]
    }

    /// Diversion (RFC 5806) and History-Info (RFC 7044) for a call diverted from the user;
    /// to a gateway only when its trunk's ForwardCallHistory says so.
    fn divert(&self, t: &mut Target, why: Why) {
        let history = !t.pstn
            || self
                .p
                .voice()
                .gateway_for_dest(&t.dest)
                .is_some_and(|g| g.forward_call_history);
        let e = t.edits.get_or_insert_with(Box::default);
        if !history {
            e.remove.extend(["History-Info", "Diversion"]);
            return;
        }
        e.add.push((
            "Diversion",
            format!(
                "<sip:{}>;reason={};counter=1;privacy=off",
                self.aor,
                why.reason()
            ),
        ));
        let target = t.uri.clone().unwrap_or_default();
        e.remove.push("History-Info");
        e.add
            .push(("History-Info", format!("<sip:{}>;index=1", self.aor)));
        e.add.push((
            "History-Info",
            format!(
                "<{}?Reason=SIP%3Bcause%3D{}>;index=1.1;mp=1",
                target.split('?').next().unwrap_or(&target),
                why.cause()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_causes() {
        assert_eq!(escape("sip:bob@example.test"), "sip%3Abob%40example.test");
        assert_eq!(Why::NoAnswer.cause(), 408);
        assert_eq!(Why::Busy.reason(), "user-busy");
    }
}
