//! The request pipeline: every new request (not a retransmission, ACK or CANCEL, which the
//! transaction layer in `core.rs` absorbs or matches) takes these stages in order, each
//! taking the previous stage's typed result:
//!
//! 1. [`classify`]: from what confab itself knows — its own signed Route entries, its
//!    listeners and domains — never from what the sender claims: the request's *kind*
//!    (initial, or inside a dialog confab record-routed) and its *destination* (the server
//!    itself, a local user, another domain, an address, a next hop).
//! 2. [`authenticate`]: the *origin* — a local user proven by digest, a trusted peer, a
//!    dialog confab record-routed, a federated partner recognised by its source, or
//!    anonymous. Every request that would start something for a local identity is
//!    challenged unless its origin is already proven.
//! 3. [`authorize`]: the relay rule, federation, information barriers, privacy (Blocked,
//!    Do Not Disturb) and the content filters, in one place.
//! 4. [`locate`]: where it goes — a service of this server (registrar, presence, the
//!    offline message store) or proxy targets (registered contacts, a partner's route, a
//!    next hop).
//! 5. [`forward`]: serve it, or proxy it (`proxy.rs`).
//!
//! A stage that ends the request returns a [`Verdict`]. A new capability (a conference
//! focus, a PSTN gateway) adds a variant to [`classify::Destination`],
//! [`authenticate::Origin`] or [`locate::Located`], never an early return of its own.

pub(crate) mod authenticate;
pub(crate) mod authorize;
pub(crate) mod classify;
pub(crate) mod forward;
pub(crate) mod locate;

use crate::core::{random_token, Core, Shard, SERVER_NAME};
use crate::net::{Outgoing, Source};
use confab_sip::{response_to, HeaderName, Message};
use std::time::Instant;

pub(crate) use forward::Target;

/// How a stage ends a request before it is proxied.
pub(crate) enum Verdict {
    /// Answer with this status and reason (None: the standard phrase).
    Reply(u16, Option<String>),
    /// Answer with this response (a challenge, or one with extra headers).
    Respond(Box<Message>),
    /// Say nothing (a server application dropped it).
    Drop,
    /// A service already answered it (or kept it pending).
    Done,
}

impl Verdict {
    pub(crate) fn reply(status: u16, reason: impl Into<String>) -> Verdict {
        Verdict::Reply(status, Some(reason.into()))
    }
}

impl From<crate::edge::Refusal> for Verdict {
    fn from(r: crate::edge::Refusal) -> Verdict {
        Verdict::Reply(r.status, Some(r.reason))
    }
}

impl Core {
    /// Takes a new request through the pipeline; answers it, or proxies it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn route_request(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        key: &str,
        mut msg: Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        match self.pipeline(shard, key, &mut msg, src, now, out) {
            Ok((targets, plan)) => {
                self.proxy(shard, shard_idx, key, msg, src, targets, plan, now, out)
            }
            Err(v) => self.conclude(shard, key, &msg, v, now, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pipeline(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &mut Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(Vec<Target>, Option<Box<crate::voice::CallPlan>>), Verdict> {
        let own = self.strip_own_routes(msg, src)?;
        if let Some(pool) = own.pool {
            return self.pool_forwarded(shard, key, msg, pool, src, now, out);
        }
        let script_hop = self.request_scripts(msg, src)?;
        let req = self.classify(msg, own, src)?;
        if let Some(service) = self.own_service(msg, &req)? {
            // the server's own services decide their own sign-in (the registrar's 401)
            return Err(self.serve(shard, key, msg, service, src, now, out));
        }
        self.check_proxy_headers(msg)?;
        let origin = self.authenticate_request(msg, &req, src, now)?;
        self.authorize(shard, msg, &req, &origin, src, now)?;
        if let Some(dest) = script_hop {
            // a server application chose the next hop (after sign-in and policy)
            return Ok((vec![Target::hop(dest)], None));
        }
        match self.locate(msg, &req, &origin, now)? {
            locate::Located::Proxy(targets) => Ok((targets, None)),
            locate::Located::Call(targets, plan) => Ok((targets, plan)),
            locate::Located::Service(service) => {
                Err(self.serve(shard, key, msg, service, src, now, out))
            }
        }
    }

    /// A request another front end of the pool forwarded (pool/): it authenticated and
    /// authorized it, and chose this front end because it holds the contact's flow (sent
    /// on over it) or the service (a meeting it hosts). The sender's identity is taken as
    /// that front end asserted it.
    #[allow(clippy::too_many_arguments)]
    fn pool_forwarded(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &mut Message,
        flow: Option<crate::net::Dest>,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(Vec<Target>, Option<Box<crate::voice::CallPlan>>), Verdict> {
        self.check_proxy_headers(msg)?;
        if let Some(flow) = flow {
            return Ok((
                vec![Target {
                    flow: true,
                    ..Target::hop(flow)
                }],
                None,
            ));
        }
        let req = self.classify(msg, Default::default(), src)?;
        // only a meeting this front end hosts is forwarded to it without a flow
        if !matches!(req.dest, classify::Destination::Conference(_)) {
            return Err(Verdict::reply(
                403,
                "Not a request one front end forwards to another",
            ));
        }
        let origin = match &req.sender {
            classify::Sender::Local { key } => authenticate::Origin::LocalUser(key.clone()),
            classify::Sender::Foreign { domain, .. } => {
                authenticate::Origin::Partner(domain.clone())
            }
            classify::Sender::Anonymous(why) => authenticate::Origin::Anonymous(why),
        };
        match self.locate(msg, &req, &origin, now)? {
            locate::Located::Proxy(targets) => Ok((targets, None)),
            locate::Located::Call(targets, plan) => Ok((targets, plan)),
            locate::Located::Service(service) => {
                Err(self.serve(shard, key, msg, service, src, now, out))
            }
        }
    }

    /// Sends what a verdict says on server transaction `key`.
    fn conclude(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        v: Verdict,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        match v {
            Verdict::Reply(status, reason) => {
                self.reply(shard, key, msg, status, reason.as_deref(), now, out)
            }
            Verdict::Respond(resp) => self.respond(shard, key, *resp, now, out),
            Verdict::Drop => self.remove_server(shard, key),
            Verdict::Done => {}
        }
    }

    /// An error answer to `msg` with our Server header.
    pub(crate) fn error_response(&self, msg: &Message, status: u16, reason: &str) -> Message {
        let mut resp = response_to(msg, status, Some(reason), Some(&random_token(10)));
        resp.headers.push(HeaderName::Server, SERVER_NAME);
        resp
    }
}
