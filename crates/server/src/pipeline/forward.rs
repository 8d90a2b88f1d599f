//! Stage 5: serve the request here (registrar, OPTIONS, presence, the offline store), or
//! proxy it to its targets (`proxy.rs`: forking, Record-Route with signed entries).

use super::classify::{Classified, Destination};
use super::Verdict;
use crate::core::{options_response, random_token, uri_dest, Core, Shard, SUPPORTED};
use crate::net::{Dest, Outgoing, Source};
use crate::users::UserCred;
use confab_sip::{response_to, HeaderName, Message, Method, Uri};
use std::sync::Arc;
use std::time::Instant;

/// A service of this server that answers a request itself.
pub(crate) enum Service {
    Register,
    Options,
    /// A method the server itself does not take (405 with Allow).
    NotAllowed,
    /// An extension method (501).
    NotImplemented,
    /// An in-dialog request for a dialog of ours that no longer exists (481).
    NoDialog,
    /// An in-dialog SUBSCRIBE of one of our subscriptions: refresh or end it.
    Resubscribe,
    Publish {
        presentity: String,
        /// The authenticated local user, if it is one.
        publisher: Option<String>,
    },
    Subscribe {
        presentity: String,
        watcher: String,
    },
    /// A MESSAGE for a user with no registration: keep it for delivery.
    StoreOffline(Arc<UserCred>),
    /// A request to a meeting's conference URI, from a caller of proven origin.
    Conference {
        conf: crate::focus::ConfAddr,
        caller: crate::focus::admission::Caller,
    },
    /// A request inside a dialog of the conference focus.
    FocusDialog,
    /// A call to a dial-in access number (identity, language), from a gateway or a user.
    Attendant {
        access: (String, String),
        caller: crate::focus::admission::Caller,
    },
}

/// Where one branch of a proxied request goes.
pub(crate) struct Target {
    /// New Request-URI (a registered contact), or keep the current one.
    pub uri: Option<String>,
    pub dest: Dest,
    pub path: Vec<String>,
    /// The destination is the flow of a registration behind NAT (not the Contact URI).
    pub flow: bool,
    /// Header changes for this branch only (caller ID to a gateway, diversion history).
    pub edits: Option<Box<crate::voice::Edits>>,
    /// A PSTN gateway: fails over to `failover` on 408, 5xx or no answer in time.
    pub pstn: bool,
    /// The ways out tried after this one, in order.
    pub failover: Vec<Target>,
    /// `dest` is another front end of the pool: the request gets a pool Route entry
    /// (pool/), naming `pool_flow`, the contact's connection there, if any.
    pub via_pool: bool,
    pub pool_flow: Option<Dest>,
}

impl Target {
    /// A next hop, keeping the Request-URI.
    pub(crate) fn hop(dest: Dest) -> Target {
        Target {
            uri: None,
            dest,
            path: vec![],
            flow: false,
            edits: None,
            pstn: false,
            failover: vec![],
            via_pool: false,
            pool_flow: None,
        }
    }

    /// The first of `ways` with the others as its failover, in order (None: no way).
    pub(crate) fn chain(mut ways: Vec<Target>) -> Option<Target> {
        if ways.is_empty() {
            return None;
        }
        let mut first = ways.remove(0);
        first.failover = ways;
        Some(first)
    }

    /// Proxy targets for registered contacts: the flow the registration came on when it has
    /// one (NAT, outbound), otherwise the Contact URI; contacts that cannot be reached
    /// without DNS are left out.
    pub(crate) fn for_bindings(bindings: Vec<crate::location::Binding>) -> Vec<Target> {
        bindings
            .into_iter()
            .filter_map(|b| {
                let dest = b
                    .flow
                    .or_else(|| Uri::parse(&b.uri).ok().and_then(|u| uri_dest(&u)))?;
                Some(Target {
                    flow: b.flow.is_some(),
                    uri: Some(b.uri),
                    path: b.path,
                    ..Target::hop(dest)
                })
            })
            .collect()
    }
}

impl Core {
    /// The registered contacts of `aor`, wherever in the pool, as proxy targets.
    pub(crate) fn targets_for(&self, aor: &str, now: Instant) -> Vec<Target> {
        self.binding_targets(self.location.lookup(aor, now))
    }

    /// The service for a request addressed to the server itself, if it is one.
    pub(crate) fn own_service(
        &self,
        msg: &Message,
        req: &Classified,
    ) -> Result<Option<Service>, Verdict> {
        match req.dest {
            Destination::Subscription => Ok(Some(Service::Resubscribe)),
            // the focus proves the dialog itself (its own tag and the participant's flow)
            Destination::FocusDialog => Ok(Some(Service::FocusDialog)),
            Destination::Server => {
                if let Some(bad) = unsupported(msg, &HeaderName::Require) {
                    return Err(Verdict::Respond(Box::new(unsupported_response(msg, &bad))));
                }
                Ok(Some(match &req.method {
                    Method::Register => Service::Register,
                    Method::Options => Service::Options,
                    _ if req.claims_dialog => Service::NoDialog,
                    Method::Other(_) => Service::NotImplemented,
                    _ => Service::NotAllowed,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Max-Forwards and Proxy-Require, for a request this server is to proxy.
    pub(crate) fn check_proxy_headers(&self, msg: &Message) -> Result<(), Verdict> {
        if msg.max_forwards() == Some(0) {
            return Err(Verdict::Reply(483, None));
        }
        if let Some(bad) = unsupported(msg, &HeaderName::ProxyRequire) {
            return Err(Verdict::Respond(Box::new(unsupported_response(msg, &bad))));
        }
        Ok(())
    }

    /// Runs a service; it answers on the server transaction itself.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serve(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        service: Service,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        match service {
            Service::Register => self.handle_register(shard, key, msg, src, now, out),
            Service::Options => {
                return Verdict::Respond(Box::new(options_response(msg, &random_token(10))))
            }
            Service::Conference { conf, caller } => {
                return self.serve_conference(shard, key, msg, conf, caller, src, now, out)
            }
            Service::FocusDialog => return self.serve_focus_dialog(shard, key, msg, src, now, out),
            Service::Attendant { access, caller } => {
                return self.serve_attendant(shard, key, msg, access, caller, src, now, out)
            }
            Service::NotAllowed => {
                let mut resp = response_to(msg, 405, None, Some(&random_token(10)));
                resp.headers.push(HeaderName::Allow, "OPTIONS, REGISTER");
                return Verdict::Respond(Box::new(resp));
            }
            Service::NotImplemented => return Verdict::Reply(501, None),
            Service::NoDialog => return Verdict::Reply(481, None),
            Service::Resubscribe => self.handle_resubscribe(shard, key, msg, now, out),
            Service::Publish {
                presentity,
                publisher,
            } => self.handle_publish(shard, key, msg, &presentity, publisher.as_deref(), now, out),
            Service::Subscribe {
                presentity,
                watcher,
            } => self.handle_subscribe(shard, key, msg, src, &presentity, &watcher, now, out),
            Service::StoreOffline(user) => self.store_offline(shard, key, msg, &user, now, out),
        }
        Verdict::Done
    }
}

/// The option tags of a Require / Proxy-Require header that confab does not support.
fn unsupported(msg: &Message, name: &HeaderName) -> Option<String> {
    let bad: Vec<&str> = msg
        .headers
        .get_all(name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !SUPPORTED.split(", ").any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

fn unsupported_response(msg: &Message, bad: &str) -> Message {
    let mut resp = response_to(msg, 420, None, Some(&random_token(10)));
    resp.headers.push(HeaderName::Unsupported, bad.to_string());
    resp
}
