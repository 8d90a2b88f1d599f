//! Stage 3: whether policy lets the request through, decided in one place for every request:
//! the relay rule, federation (CsAccessEdgeConfiguration, allowed / blocked domains, external
//! access policies), information barriers, Lync privacy (Blocked, Do Not Disturb) and the
//! IM / file-transfer / rich-text filters.

use super::authenticate::Origin;
use super::classify::{Classified, Destination, Kind, Sender};
use super::Verdict;
use crate::core::{random_token, Core, Job, Shard};
use crate::net::Source;
use crate::users::user_key;
use confab_sip::pidf::Level;
use confab_sip::{response_to, Message, Method, Uri};
use std::time::Instant;

impl Core {
    /// Stage 3. May rewrite the body (the IM filter's Allow / Warn actions).
    pub(crate) fn authorize(
        &self,
        shard: &mut Shard,
        msg: &mut Message,
        req: &Classified,
        origin: &Origin,
        src: &Source,
        now: Instant,
    ) -> Result<(), Verdict> {
        // The relay rule: leaving for another host only for a proven local user, a trusted
        // peer, or inside a dialog confab record-routed. A partner reaches our users, never
        // a third party through us.
        if req.dest.leaves()
            && !matches!(
                origin,
                Origin::LocalUser(_) | Origin::TrustedPeer | Origin::Dialog
            )
        {
            tracing::info!(src = %src.remote, ?origin, dest = ?req.dest, "relaying denied");
            return Err(Verdict::reply(403, "Relaying denied"));
        }
        let p = self.policies.get();
        // PSTN gateways are reached through voice routes only (a user's voice policy decides
        // who may call which numbers), never by addressing them directly
        if let (Destination::Route(d) | Destination::Address(d), Kind::Initial) =
            (&req.dest, req.kind)
        {
            if !matches!(origin, Origin::TrustedPeer) && p.voice().is_gateway_address(d) {
                tracing::info!(src = %src.remote, gateway = %d.addr, "refused a request addressed straight to a PSTN gateway");
                return Err(Verdict::reply(
                    403,
                    "PSTN gateways are reached by calling a phone number (voice routes)",
                ));
            }
        }
        if let Destination::Phone(number) = &req.dest {
            match origin {
                Origin::LocalUser(_) if req.kind == Kind::Initial => {}
                // a gateway (or a trusted peer) brings calls in to our numbers only; calls
                // from one gateway out through another (inter-trunk routing) are not made
                Origin::Gateway(_) | Origin::TrustedPeer => {
                    let by = match origin {
                        Origin::Gateway(g) => g.as_str(),
                        _ => "a trusted peer",
                    };
                    tracing::info!(%by, %number, "an inbound call for a number no user has");
                    return Err(Verdict::reply(
                        404,
                        format!("No user has the number {number}"),
                    ));
                }
                _ => {
                    tracing::info!(src = %src.remote, ?origin, %number, "refused a call to a phone number from outside");
                    return Err(Verdict::reply(
                        403,
                        "Phone numbers are called by signed-in Enterprise Voice users",
                    ));
                }
            }
        }
        let recipient = match &req.dest {
            Destination::LocalUser { user, domain } => Some(user_key(user, domain)),
            _ => None,
        };
        let initial = req.kind == Kind::Initial;

        // Federation, both ways.
        if initial {
            match (origin, &req.dest) {
                (Origin::LocalUser(sender), Destination::Domain(domain)) => {
                    p.check_outbound(sender, domain)?
                }
                (
                    Origin::Partner(domain) | Origin::Remote(domain),
                    Destination::LocalUser { .. },
                ) => {
                    let sender = req.sender.key().unwrap_or(domain);
                    p.check_inbound(sender, recipient.as_deref().unwrap_or(""), src.remote.ip())?
                }
                // a partner's user joining a meeting: the organizer's federation rules
                (Origin::Partner(domain), Destination::Conference(conf)) => {
                    let sender = req.sender.key().unwrap_or(domain);
                    p.check_inbound(sender, &conf.organizer, src.remote.ip())?
                }
                // dial-in access numbers are reached through a PSTN gateway (a trusted
                // peer) or by our own users, never straight from the Internet
                (
                    Origin::Partner(_) | Origin::Remote(_) | Origin::Anonymous(_) | Origin::Dialog,
                    Destination::Attendant(..),
                ) => {
                    tracing::info!(src = %src.remote, "refused a call to a dial-in access number from outside");
                    return Err(Verdict::reply(
                        403,
                        "Dial-in access numbers are reached through a PSTN gateway or by signed-in users",
                    ));
                }
                (Origin::Anonymous(why), Destination::LocalUser { .. }) => {
                    tracing::info!(src = %src.remote, "refused {why} to a local user");
                    return Err(Verdict::reply(
                        403,
                        format!("Refused: {why}; only identified senders reach our users"),
                    ));
                }
                _ => {}
            }
        }

        // Information barriers: between the sender and the addressed user, for initial
        // requests, and for every MESSAGE inside a dialog (From and To name its parties).
        if p.has_barriers() {
            let pair = if initial {
                req.sender
                    .key()
                    .map(str::to_owned)
                    .zip(recipient.clone().or_else(|| self.ruri_key(msg)))
            } else if req.method == Method::Message {
                self.header_key(msg.from_hdr())
                    .zip(self.header_key(msg.to_hdr()))
            } else {
                None
            };
            if let Some((s, r)) = pair.filter(|(s, r)| s != r) {
                if let Some(name) = p.barrier_between(&s, &r) {
                    shard.jobs.push(Job::Audit {
                        origin: format!("sip:{}", src.remote),
                        command: format!("{} sip:{s} -> sip:{r}", req.method.as_str()),
                        result: format!("refused by information barrier {name}"),
                    });
                    return Err(Verdict::reply(
                        403,
                        format!("Blocked by information barrier {name}"),
                    ));
                }
            }
        }

        // Lync privacy: a blocked sender gets what an offline user would give; Do Not
        // Disturb lets only the Workgroup through.
        if let (Some(aor), true) = (
            recipient.as_deref(),
            initial && matches!(req.method, Method::Invite | Method::Message),
        ) {
            let sender = match origin {
                Origin::LocalUser(k) => Some(k.as_str()),
                _ => req.sender.key(),
            };
            let level = self.privacy.level(aor, sender.unwrap_or(""));
            if level == Level::Blocked {
                tracing::info!("request from a blocked sender refused as if offline");
                return Err(if req.method == Method::Message {
                    Verdict::Respond(Box::new(response_to(
                        msg,
                        202,
                        Some("Accepted (stored for delivery)"),
                        Some(&random_token(10)),
                    )))
                } else {
                    Verdict::reply(480, "Temporarily Unavailable")
                });
            }
            if level != Level::Workgroup && self.is_dnd(aor, now) {
                return Err(Verdict::reply(486, "Busy Here (Do Not Disturb)"));
            }
        }

        // Content: every MESSAGE (in a dialog too), and file-transfer offers.
        match req.method {
            Method::Message if p.filters_messages() => {
                // our users among its parties: the sender, and the addressed user (or, in a
                // dialog, the To user when ours)
                let to_local = match &recipient {
                    Some(_) => None,
                    None => self
                        .header_key(msg.to_hdr())
                        .filter(|k| self.is_our_domain(k.rsplit_once('@').map_or("", |x| x.1))),
                };
                let mut local: Vec<&str> = vec![];
                if let Sender::Local { key } = &req.sender {
                    local.push(key);
                }
                local.extend(recipient.as_deref().or(to_local.as_deref()));
                // IgnoreLocal: between two of our users (sender and recipient both local)
                let internal = local.len() == 2;
                p.filter_message(msg, &local, internal)?;
            }
            Method::Invite if initial => p.filter_file_transfer(msg)?,
            _ => {}
        }
        Ok(())
    }

    /// The Request-URI's `user@host` key, when it names a user.
    fn ruri_key(&self, msg: &Message) -> Option<String> {
        let uri = Uri::parse(msg.uri()?).ok()?;
        Some(user_key(uri.user?, uri.host))
    }

    /// A From / To header's `user@domain` key (our default domain for our own addresses).
    fn header_key(&self, h: Option<confab_sip::values::NameAddr<'_>>) -> Option<String> {
        let u = h?.uri();
        let domain = if !self.is_our_domain(u.host) && self.is_us(u.host, u.port) {
            self.default_domain()
        } else {
            u.host
        };
        Some(user_key(u.user?, domain))
    }
}
