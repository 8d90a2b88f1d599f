//! Stage 1: what a request is, from what confab itself knows. The sender's words (a To
//! tag, a From, a Route) are recorded as claims, never taken as proof: a request is inside
//! a dialog only when it comes back through a Record-Route entry confab signed for that
//! dialog (`route_token.rs`), and its destination is judged by confab's own listeners and
//! domains.

use super::Verdict;
use crate::core::{is_ip_literal, uri_dest, Core};
use crate::net::{Dest, Source};

/// The number of a `tel:` URI with its `;ext=` (which the parser may leave in the params).
fn tel_number(ruri: &Uri<'_>) -> String {
    let user = ruri.user.unwrap_or("");
    match ruri.param("ext") {
        Some(ext) if !user.contains(';') => format!("{user};ext={ext}"),
        _ => user.to_string(),
    }
}
use crate::route_token::Invalid;
use crate::users::user_key;
use confab_sip::values::NameAddr;
use confab_sip::{HeaderName, Message, Method, Scheme, Uri};

/// What confab's own Route entries at the top of a request said.
#[derive(Default)]
pub(crate) struct OwnRoutes {
    /// One of them carried a token confab signed for this request's dialog.
    pub signed: bool,
    /// The flow a signed entry named, when the request did not come on it (the NATed party
    /// of the dialog is on the other side).
    pub flow: Option<Dest>,
    /// Another front end of the pool forwarded the request (a valid pool entry), for the
    /// contact at this flow when it named one (pool/).
    pub pool: Option<Option<Dest>>,
}

/// Initial request, or one inside a dialog that confab record-routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Initial,
    /// Proven by a signed Route entry (and it has a To tag).
    InDialog,
}

/// Who the From header claims sent the request (unproven).
#[derive(Debug)]
pub(crate) enum Sender {
    /// A user of ours: `user@domain` key (lower case).
    Local { key: String },
    /// Another domain, with its user's key when From names one (`<sip:evil.example>` has
    /// none: the domain alone is judged).
    Foreign { key: Option<String>, domain: String },
    /// No identity that policy could judge: no usable From, a `tel:` or anonymous From, or
    /// one of our domains without a user.
    Anonymous(&'static str),
}

impl Sender {
    /// The `user@domain` key the sender claims, if any.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Sender::Local { key } => Some(key),
            Sender::Foreign { key, .. } => key.as_deref(),
            Sender::Anonymous(_) => None,
        }
    }
}

/// Where the request is addressed, as confab sees it.
#[derive(Debug)]
pub(crate) enum Destination {
    /// The server itself (a user-less Request-URI of ours, or REGISTER).
    Server,
    /// An in-dialog SUBSCRIBE of a presence subscription this server holds.
    Subscription,
    /// A user of ours (`user`, `domain` as in our user table's key).
    LocalUser { user: String, domain: String },
    /// The next hop a Route header names (after our own entries).
    Route(Dest),
    /// The flow a signed Record-Route entry of ours names (RFC 5626 §5.3).
    Flow(Dest),
    /// Another domain (lower case): its static route or federation.
    Domain(String),
    /// An IP address that is not one of ours.
    Address(Dest),
    /// A meeting's conference URI (Lync's focus URI, `…;opaque=app:conf:focus:id:<key>`).
    Conference(crate::focus::ConfAddr),
    /// A request inside a dialog the conference focus holds (checked again, with the
    /// sender's flow, by the focus).
    FocusDialog,
    /// A dial-in access number (CsDialInConferencingAccessNumber): the conferencing
    /// attendant. (identity, the language of its prompts)
    Attendant(String, String),
    /// A phone number no user of ours has, normalised by the caller's dial plan: the PSTN,
    /// through the caller's voice policy (voice/routing.rs).
    Phone(String),
}

impl Destination {
    /// Whether the request leaves this server for another host (the relay rule's case).
    pub(crate) fn leaves(&self) -> bool {
        matches!(
            self,
            Destination::Route(_)
                | Destination::Flow(_)
                | Destination::Domain(_)
                | Destination::Address(_)
        )
    }
}

pub(crate) struct Classified {
    pub method: Method,
    pub kind: Kind,
    /// The request has a To tag (it claims a dialog, proven or not).
    pub claims_dialog: bool,
    pub sender: Sender,
    pub dest: Destination,
}

impl Core {
    /// RFC 3261 §16.4: removes the Route entries that name this server. An entry with a token
    /// must carry a valid one for this request's dialog: a forged or tampered token (or one
    /// replayed into another dialog) is refused.
    pub(crate) fn strip_own_routes(
        &self,
        msg: &mut Message,
        src: &Source,
    ) -> Result<OwnRoutes, Verdict> {
        let mut own = OwnRoutes::default();
        loop {
            let Some(top) = msg.headers.get(&HeaderName::Route) else {
                break;
            };
            let Ok(na) = NameAddr::parse(top) else {
                break;
            };
            let uri = na.uri();
            if !self.is_us(uri.host, uri.port) {
                break;
            }
            if let Some(user) = uri.user {
                let call_id = msg.call_id().map(|c| c.as_str()).unwrap_or("");
                let from_tag = msg.from_hdr().and_then(|f| f.tag()).unwrap_or("");
                let to_tag = msg.to_hdr().and_then(|t| t.tag()).unwrap_or("");
                // a pool entry is bound to the request's CSeq number and expires
                let (seq, now_s) = if user.starts_with("cp-") {
                    (
                        msg.cseq().map_or(0, |c| c.seq),
                        crate::clock::real_unix_ms() as u64 / 1000,
                    )
                } else {
                    (0, 0)
                };
                match self
                    .route_tokens
                    .verify(user, call_id, [from_tag, to_tag], seq, now_s)
                {
                    Ok(v) if v.pool => own.pool = Some(v.flow),
                    Ok(v) => {
                        own.signed = true;
                        if let Some(f) = v.flow {
                            if f.addr != src.remote || f.transport != src.transport {
                                own.flow = Some(f);
                            }
                        }
                    }
                    Err(Invalid::NotAToken) => {}
                    Err(Invalid::BadMac) => {
                        tracing::info!(src = %src.remote, route = %user, "refused a forged or tampered Route token");
                        return Err(Verdict::reply(
                            403,
                            "Route entry not issued by this server for this dialog",
                        ));
                    }
                }
            }
            msg.headers.remove_first(&HeaderName::Route);
        }
        Ok(own)
    }

    /// Stage 1 proper: kind, sender claim and destination.
    pub(crate) fn classify(
        &self,
        msg: &Message,
        own: OwnRoutes,
        src: &Source,
    ) -> Result<Classified, Verdict> {
        let method = msg.method().cloned().expect("request");
        let uri_text = msg.uri().expect("request");
        let Ok(ruri) = Uri::parse(uri_text) else {
            return Err(Verdict::reply(400, "Malformed Request-URI"));
        };
        // read only for a tel: URI or a user of ours that is no conference
        let access = |ours: bool| {
            crate::focus::access_number_of(&ruri, self.policies.get().access_numbers(), ours)
                .map(|(id, lang)| Destination::Attendant(id, lang))
        };
        match ruri.scheme {
            Scheme::Tel if msg.headers.get(&HeaderName::Route).is_none() => {
                if let Some(dest) = access(false) {
                    return Ok(Classified {
                        method,
                        kind: Kind::Initial,
                        claims_dialog: msg.to_hdr().is_some_and(|t| t.tag().is_some()),
                        sender: self.sender_of(msg),
                        dest,
                    });
                }
                let sender = self.sender_of(msg);
                let number = tel_number(&ruri);
                let Some(dest) = self.phone_destination(&number, src, &sender) else {
                    return Err(Verdict::reply(404, "The tel: URI holds no phone number"));
                };
                return Ok(Classified {
                    method,
                    kind: Kind::Initial,
                    claims_dialog: msg.to_hdr().is_some_and(|t| t.tag().is_some()),
                    sender,
                    dest,
                });
            }
            Scheme::Tel => return Err(Verdict::reply(404, "No route for tel URI")),
            Scheme::Sips if !self.listeners.iter().any(|l| l.transport.is_secure()) => {
                // RFC 5630: without TLS this server can keep no sips: promise
                return Err(Verdict::reply(
                    416,
                    "sips: needs TLS, which this server does not listen on",
                ));
            }
            _ => {}
        }
        let claims_dialog = msg.to_hdr().is_some_and(|t| t.tag().is_some());
        let kind = if claims_dialog && own.signed {
            Kind::InDialog
        } else {
            Kind::Initial
        };
        let ruri_ours = self.is_us(ruri.host, ruri.port) || self.is_our_domain(ruri.host);
        let dest = if let Some(r) = msg.headers.get(&HeaderName::Route) {
            match NameAddr::parse(r).ok().and_then(|na| uri_dest(&na.uri())) {
                Some(d) => Destination::Route(d),
                None => {
                    return Err(Verdict::reply(
                        404,
                        "No route to next hop (Route host must be an IP address)",
                    ))
                }
            }
        } else if let Some(flow) = own.flow.filter(|_| kind == Kind::InDialog) {
            Destination::Flow(flow)
        } else if claims_dialog && self.is_our_subscription_dialog(msg) {
            Destination::Subscription
        } else if claims_dialog && self.is_focus_dialog(msg) {
            Destination::FocusDialog
        } else if let Some(conf) = ruri_ours
            .then(|| {
                let domain = if self.is_our_domain(ruri.host) {
                    ruri.host.to_ascii_lowercase()
                } else {
                    self.default_domain().to_string()
                };
                crate::focus::conference_of(&ruri, &domain)
            })
            .flatten()
        {
            Destination::Conference(conf)
        } else if let Some(dest) = ruri_ours.then(|| access(true)).flatten() {
            dest
        } else if let Some(dest) = ruri_ours
            .then(|| self.phone_of_ours(&ruri, &method, src, msg))
            .flatten()
        {
            dest
        } else if ruri_ours {
            match ruri.user {
                Some(user) if method != Method::Register => Destination::LocalUser {
                    user: user.to_string(),
                    domain: if self.is_our_domain(ruri.host) {
                        ruri.host.to_ascii_lowercase()
                    } else {
                        self.default_domain().to_string()
                    },
                },
                _ => Destination::Server,
            }
        } else if is_ip_literal(ruri.host) {
            match uri_dest(&ruri) {
                Some(d) => Destination::Address(d),
                None => return Err(Verdict::reply(404, "No route to this address")),
            }
        } else {
            Destination::Domain(ruri.host.to_ascii_lowercase())
        };
        Ok(Classified {
            method,
            kind,
            claims_dialog,
            sender: self.sender_of(msg),
            dest,
        })
    }

    /// A number at one of our domains (`sip:+14255550100@example.test;user=phone`, or digits
    /// a user typed, `sip:5550100@example.test`), when no user of ours has that name.
    fn phone_of_ours(
        &self,
        ruri: &Uri<'_>,
        method: &Method,
        src: &Source,
        msg: &Message,
    ) -> Option<Destination> {
        let user = ruri.user?;
        if *method == Method::Register {
            return None;
        }
        let domain = if self.is_our_domain(ruri.host) {
            ruri.host
        } else {
            self.default_domain()
        };
        let phone = ruri
            .param("user")
            .is_some_and(|u| u.eq_ignore_ascii_case("phone"));
        if !phone && self.users.get(user, domain).is_some() {
            return None; // a user whose name is digits
        }
        let first = user.as_bytes().first()?;
        if !(first.is_ascii_digit() || matches!(first, b'+' | b'*' | b'#' | b'(')) {
            return None;
        }
        self.phone_destination(user, src, &self.sender_of(msg))
    }

    /// Who the From header claims to be.
    fn sender_of(&self, msg: &Message) -> Sender {
        let Some(from) = msg.from_hdr() else {
            return Sender::Anonymous("no usable From");
        };
        let u = from.uri();
        if !matches!(u.scheme, Scheme::Sip | Scheme::Sips) {
            return Sender::Anonymous("the sender is not a SIP address");
        }
        let ours = self.is_our_domain(u.host) || self.is_us(u.host, u.port);
        let anonymous = u.host.eq_ignore_ascii_case("anonymous.invalid")
            || u.user.is_some_and(|n| n.eq_ignore_ascii_case("anonymous"));
        match (u.user, ours) {
            _ if anonymous => Sender::Anonymous("an anonymous sender"),
            (Some(user), true) => {
                let domain = if self.is_our_domain(u.host) {
                    u.host
                } else {
                    self.default_domain()
                };
                Sender::Local {
                    key: user_key(user, domain),
                }
            }
            (None, true) => Sender::Anonymous("From names none of our users"),
            (user, false) => {
                if u.host.is_empty() {
                    return Sender::Anonymous("no usable From");
                }
                Sender::Foreign {
                    key: user.map(|n| user_key(n, u.host)),
                    domain: u.host.to_ascii_lowercase(),
                }
            }
        }
    }
}
