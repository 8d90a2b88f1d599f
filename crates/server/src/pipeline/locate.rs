//! Stage 4: where an authorized request goes — a service of this server, or proxy targets.

use super::authenticate::Origin;
use super::classify::{Classified, Destination};
use super::forward::{Service, Target};
use super::Verdict;
use crate::core::Core;
use crate::users::user_key;
use confab_sip::{Message, Method};
use std::time::Instant;

pub(crate) enum Located {
    Proxy(Vec<Target>),
    /// Proxy targets with what happens when they fail (enterprise voice).
    Call(Vec<Target>, Option<Box<crate::voice::CallPlan>>),
    Service(Service),
}

impl Core {
    pub(crate) fn locate(
        &self,
        msg: &Message,
        req: &Classified,
        origin: &Origin,
        now: Instant,
    ) -> Result<Located, Verdict> {
        let hop = |d| Ok(Located::Proxy(vec![Target::hop(d)]));
        match &req.dest {
            Destination::Route(d) | Destination::Address(d) => hop(*d),
            Destination::Flow(d) => Ok(Located::Proxy(vec![Target {
                flow: true,
                ..Target::hop(*d)
            }])),
            Destination::Domain(domain) => match self.policies.get().next_hop(domain) {
                Some(d) => hop(d),
                None => Err(Verdict::reply(404, "No route to domain")),
            },
            Destination::LocalUser { user, domain } => {
                let Some(u) = self.users.get(user, domain) else {
                    return Err(Verdict::Reply(404, None));
                };
                if !u.enabled {
                    return Err(Verdict::reply(480, "Temporarily Unavailable"));
                }
                let aor = user_key(&u.username, &u.domain);
                // This server is every local user's presence agent.
                if !req.claims_dialog && self.is_presence_request(msg) {
                    return Ok(Located::Service(if req.method == Method::Publish {
                        Service::Publish {
                            presentity: aor,
                            publisher: match origin {
                                Origin::LocalUser(k) => Some(k.clone()),
                                _ => None,
                            },
                        }
                    } else {
                        Service::Subscribe {
                            presentity: aor,
                            watcher: match origin {
                                Origin::LocalUser(k) => k.clone(),
                                _ => req.sender.key().unwrap_or_default().to_string(),
                            },
                        }
                    }));
                }
                let bindings = self.location.lookup(&aor, now);
                // a call: the user's forwarding, simultaneous ring, team and voicemail
                if req.method == Method::Invite
                    && !req.claims_dialog
                    && (u.forwarding.is_some() || u.hosted_voicemail)
                {
                    let caller = match origin {
                        Origin::LocalUser(k) => Some(k.as_str()),
                        _ => None,
                    };
                    let (targets, plan) =
                        self.user_call(&u, self.binding_targets(bindings), caller, now);
                    let nothing_later = plan
                        .as_ref()
                        .is_none_or(|p| p.delayed.is_empty() && p.unanswered.is_empty());
                    if targets.is_empty() && nothing_later {
                        return Err(Verdict::reply(480, "Temporarily Unavailable"));
                    }
                    return Ok(Located::Call(targets, plan));
                }
                let registered = !bindings.is_empty();
                let targets = self.binding_targets(bindings);
                if targets.is_empty() {
                    // not registered, or only through a front end of the pool that is down:
                    // a message is kept for the next registration
                    if req.method == Method::Message && !req.claims_dialog {
                        return Ok(Located::Service(Service::StoreOffline(u)));
                    }
                    return Err(if registered {
                        Verdict::reply(480, "No reachable contact")
                    } else {
                        Verdict::reply(480, "Temporarily Unavailable")
                    });
                }
                Ok(Located::Proxy(targets))
            }
            // no instant messages to phone numbers (no SMS gateway)
            Destination::Phone(_) if req.method != Method::Invite => Err(Verdict::reply(
                404,
                "Phone numbers take calls only: no user has this number",
            )),
            Destination::Phone(number) => match origin {
                Origin::LocalUser(caller) => Ok(Located::Call(
                    vec![self.pstn_targets(caller, number)?],
                    None,
                )),
                _ => Err(Verdict::reply(
                    403,
                    "Phone numbers are called by signed-in Enterprise Voice users",
                )),
            },
            Destination::Attendant(id, lang) => Ok(Located::Service(Service::Attendant {
                access: (id.clone(), lang.clone()),
                caller: crate::focus::caller_of(origin, &req.sender),
            })),
            Destination::Conference(conf) => Ok(Located::Service(Service::Conference {
                conf: conf.clone(),
                caller: crate::focus::caller_of(origin, &req.sender),
            })),
            Destination::Server | Destination::Subscription | Destination::FocusDialog => {
                unreachable!("served before authentication")
            }
        }
    }
}
