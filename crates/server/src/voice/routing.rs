//! Where a call to a phone number goes. Classify asks [`Core::phone_destination`] for a
//! Request-URI that is a number (`tel:`, `sip:…;user=phone`, digits typed at one of our
//! domains): the number is normalised with the dial plan of where the call really comes
//! from — a PSTN gateway's own plan for a call it brings in (known by its source address and
//! transport, never by what it writes), else the calling user's — and a number that is a
//! user's LineURI goes to that user (reverse number lookup). Any other number is for the
//! PSTN: locate asks [`Core::pstn_targets`] for the ways out of the caller's voice policy.

use crate::core::{Core, Target};
use crate::net::Source;
use crate::pipeline::classify::{Destination, Sender};
use crate::pipeline::Verdict;
use crate::voice::{Edits, Gateway};
use confab_voice::{pstn_legs, CallerId, Leg};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Moves once per routed call: spreads calls over a route's gateways (round robin).
static ROTATE: AtomicUsize = AtomicUsize::new(0);

impl Core {
    /// The destination of a call to the dialled number `raw` (a URI's user part), or None
    /// when `raw` is not a number.
    pub(crate) fn phone_destination(
        &self,
        raw: &str,
        src: &Source,
        sender: &Sender,
    ) -> Option<Destination> {
        let dialed = confab_voice::dialed_number(raw)?;
        let p = self.policies.get();
        let rules = match p.voice().gateway_at(src.transport, src.remote) {
            Some(gw) => gw.inbound_plan.as_slice(),
            None => p.dial_plan_rules(sender.key().unwrap_or("")),
        };
        let number = confab_voice::normalize(rules, &dialed)
            .map(|n| n.number)
            .unwrap_or(dialed);
        Some(match self.users.by_number(&number) {
            Some(u) => Destination::LocalUser {
                user: u.username.clone(),
                domain: u.domain.clone(),
            },
            None => Destination::Phone(number),
        })
    }

    /// Where a meeting's dial-out to the number `raw` goes: normalised with the organizer's
    /// dial plan, a user's LineURI is that user (`Ok(Err(key))`); any other number leaves
    /// through the organizer's voice policy (`Ok(Ok((number, first leg)))`, no failover:
    /// the focus places the call itself). An organizer without Enterprise Voice may have
    /// their meetings dial numbers only with AllowNonEnterpriseVoiceUsersToDialOut.
    #[allow(clippy::type_complexity)]
    pub(crate) fn dial_out_number(
        &self,
        organizer: &str,
        raw: &str,
    ) -> Result<Result<(String, Target), String>, (u16, String)> {
        let dialed = confab_voice::dialed_number(raw)
            .ok_or_else(|| (400, format!("Not a phone number: {raw:.32}")))?;
        let p = self.policies.get();
        let number = confab_voice::normalize(p.dial_plan_rules(organizer), &dialed)
            .map(|n| n.number)
            .unwrap_or(dialed);
        if let Some(u) = self.users.by_number(&number) {
            return Ok(Err(crate::users::user_key(&u.username, &u.domain)));
        }
        let org = organizer
            .rsplit_once('@')
            .and_then(|(n, d)| self.users.get(n, d))
            .ok_or_else(|| (403, "The organizer is unknown".to_string()))?;
        if !org.enterprise_voice
            && !p
                .conferencing_policy(organizer)
                .allow_non_enterprise_voice_users_to_dial_out
        {
            return Err((
                403,
                "The organizer is not enabled for Enterprise Voice (AllowNonEnterpriseVoiceUsersToDialOut is $false)".into(),
            ));
        }
        let policy = p.voice_policy(organizer);
        let mut t = self
            .pstn_targets_for(&p, &policy.pstn_usages, &number, org.line_uri.as_deref())
            .ok_or_else(|| {
                (
                    404,
                    format!(
                        "No route for {number} in the PSTN usages of the organizer's voice policy"
                    ),
                )
            })?;
        t.failover.clear();
        Ok(Ok((number, t)))
    }

    /// The ways out to the PSTN for `caller`'s call to `number`: the first as the target,
    /// the others as its failover, in order. A clear refusal when the caller may not call
    /// numbers or no route matches.
    pub(crate) fn pstn_targets(&self, caller: &str, number: &str) -> Result<Target, Verdict> {
        let Some((user, domain)) = caller.rsplit_once('@') else {
            return Err(Verdict::reply(
                403,
                "Only Enterprise Voice users call phone numbers",
            ));
        };
        let Some(u) = self.users.get(user, domain) else {
            return Err(Verdict::reply(
                403,
                "Only Enterprise Voice users call phone numbers",
            ));
        };
        if !u.enterprise_voice {
            return Err(Verdict::reply(
                403,
                format!("sip:{caller} is not enabled for Enterprise Voice and cannot call phone numbers"),
            ));
        }
        let p = self.policies.get();
        let policy = p.voice_policy(caller);
        let usages = &policy.pstn_usages;
        self.pstn_targets_for(&p, usages, number, u.line_uri.as_deref())
            .ok_or_else(|| {
                Verdict::reply(
                    404,
                    format!(
                        "No route for {number} in the PSTN usages of the caller's voice policy ({})",
                        if usages.is_empty() { "none".to_string() } else { usages.join(", ") }
                    ),
                )
            })
    }

    /// The ways out for `number` over `usages` (first target, the others its failover);
    /// `line_uri` is the calling identity's number for the gateway (caller ID). None: no
    /// route, or none of its gateways is defined.
    pub(crate) fn pstn_targets_for(
        &self,
        p: &crate::edge::PolicySet,
        usages: &[String],
        number: &str,
        line_uri: Option<&str>,
    ) -> Option<Target> {
        let v = p.voice();
        let legs = pstn_legs(
            usages,
            v.routes(),
            number,
            ROTATE.fetch_add(1, Ordering::Relaxed),
            |gw, n| match v.gateway(gw) {
                Some(g) => confab_voice::translate(&g.outbound, n),
                None => n.to_string(),
            },
        );
        let targets: Vec<Target> = legs
            .iter()
            .filter_map(|leg| match v.gateway(&leg.gateway) {
                Some(g) => Some(self.gateway_target(g, leg, line_uri)),
                None => {
                    tracing::warn!(gateway = %leg.gateway, route = %leg.route, "a voice route names a gateway that is not defined (New-CsPstnGateway)");
                    None
                }
            })
            .collect();
        Target::chain(targets)
    }

    /// One way out: the gateway's Request-URI for the translated number, and the caller ID
    /// the route asks for. Whatever identity headers the caller wrote are dropped: a gateway
    /// believes P-Asserted-Identity, so only confab sets it.
    fn gateway_target(&self, g: &Gateway, leg: &Leg, line_uri: Option<&str>) -> Target {
        let domain = self.default_domain();
        let mut edits = Edits {
            remove: vec!["P-Asserted-Identity", "P-Preferred-Identity", "Privacy"],
            ..Edits::default()
        };
        let number_uri = |n: &str| format!("<sip:{n}@{domain};user=phone>");
        match &leg.caller_id {
            CallerId::Keep => {
                if let Some(n) = line_uri.and_then(|l| l.strip_prefix("tel:")) {
                    let n = n.split(';').next().unwrap_or(n);
                    edits.from = Some(number_uri(n));
                    if g.forward_pai {
                        edits
                            .set
                            .push(("P-Asserted-Identity", format!("<tel:{n}>")));
                    }
                }
            }
            CallerId::Suppress => {
                edits.from = Some("\"Anonymous\" <sip:anonymous@anonymous.invalid>".into());
                edits.set.push(("Privacy", "id".into()));
            }
            CallerId::Replace(alt) => edits.from = Some(number_uri(alt)),
        }
        Target {
            uri: Some(g.uri_for(&leg.number)),
            edits: Some(Box::new(edits)),
            pstn: true,
            ..Target::hop(g.dest)
        }
    }
}
