//! Enterprise voice in the server (docs/voice.md): calls to and from phone numbers.
//!
//! - this file: the voice documents as the server reads them ([`VoiceSet`], part of the
//!   live [`crate::edge::PolicySet`]): dial plans, voice policies, routes, PSTN gateways and
//!   their trunk configurations;
//! - `routing.rs`: where a call to a number goes — the caller's (or the gateway's) dial
//!   plan, reverse number lookup, the PSTN legs of the caller's voice policy (confab-voice,
//!   the same code as the Test- cmdlets), the gateways' Request-URIs and caller ID;
//! - `features.rs`: the voice policy's call features for calls to our users (forwarding,
//!   simultaneous ring, team call, hosted voicemail);
//! - `calls.rs`: the call plan a proxied call carries (failover between gateways, Lync's
//!   fast failover timer) and its timers.

pub(crate) mod calls;
pub(crate) mod features;
pub(crate) mod routing;

pub(crate) use calls::CallPlan;
pub use calls::{CallTimer, Edits};

use crate::config::Transport;
use crate::edge::{in_force, per_user, typed, Documents, PolicySet};
use crate::net::Dest;
use confab_policy::{self as policy, Placement};
use confab_voice::Rule;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A PSTN gateway (CsPstnGateway) with its trunk (CsTrunkConfiguration) and inbound dial
/// plan (CsDialPlan `Service:PstnGateway:<gateway>`).
#[derive(Debug, PartialEq)]
pub struct Gateway {
    /// `PstnGateway:<gateway>` as voice routes name it.
    pub identity: String,
    pub dest: Dest,
    /// Outbound translation rules of its trunk.
    pub outbound: Vec<Rule>,
    pub remove_plus: bool,
    pub fast_failover: bool,
    pub forward_pai: bool,
    pub forward_call_history: bool,
    /// Normalization of the numbers its inbound calls are for.
    pub inbound_plan: Vec<Rule>,
}

impl Gateway {
    /// The Request-URI that asks this gateway for `number`.
    pub fn uri_for(&self, number: &str) -> String {
        let n = if self.remove_plus {
            number.trim_start_matches('+')
        } else {
            number
        };
        let t = match self.dest.transport {
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
            _ => "",
        };
        let host = match self.dest.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        format!("sip:{n}@{host};user=phone{t}")
    }
}

/// The enterprise voice documents in force on this server.
#[derive(Debug, Default, PartialEq)]
pub struct VoiceSet {
    plan_here: Vec<Rule>,
    plan_tags: HashMap<String, Vec<Rule>>,
    policy_here: policy::VoicePolicy,
    policy_tags: HashMap<String, policy::VoicePolicy>,
    routes: Vec<confab_voice::Route>,
    gateways: Vec<Gateway>,
}

/// The document among `docs` for gateway `gw` (`Service:PstnGateway:<gw>` or
/// `PstnGateway:<gw>`), else the one in force here.
fn for_gateway<T: policy::Document + Clone>(docs: &[(String, T)], gw: &str, at: &Placement) -> T {
    docs.iter()
        .find(|(id, _)| {
            let id = id
                .strip_prefix("Service:")
                .or_else(|| id.strip_prefix("service:"))
                .unwrap_or(id);
            id.get(..11)
                .is_some_and(|p| p.eq_ignore_ascii_case("PstnGateway"))
                && id[11..]
                    .strip_prefix(':')
                    .is_some_and(|g| g.eq_ignore_ascii_case(gw))
        })
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| in_force(docs, at))
}

impl VoiceSet {
    pub fn from_documents(docs: &Documents, at: &Placement) -> VoiceSet {
        let plans = typed::<policy::DialPlan>(docs);
        let trunks = typed::<policy::TrunkConfiguration>(docs);
        let policies = typed::<policy::VoicePolicy>(docs);
        let rules = confab_voice::documents::normalization_rules;
        let mut gateways = vec![];
        for (id, g) in typed::<policy::PstnGateway>(docs) {
            let address = if g.address.trim().is_empty() {
                id.as_str()
            } else {
                g.address.trim()
            };
            let Ok(ip) = address.trim_matches(['[', ']']).parse::<IpAddr>() else {
                tracing::warn!(gateway = %id, address, "PSTN gateway skipped: its Address must be an IP address (no DNS)");
                continue;
            };
            let Ok(port) = u16::try_from(g.port) else {
                tracing::warn!(gateway = %id, port = g.port, "PSTN gateway skipped: bad port");
                continue;
            };
            let transport = match g.transport {
                policy::GatewayTransport::TCP => Transport::Tcp,
                policy::GatewayTransport::TLS => Transport::Tls,
                policy::GatewayTransport::UDP => Transport::Udp,
            };
            let trunk = for_gateway(&trunks, &id, at);
            gateways.push(Gateway {
                identity: format!("PstnGateway:{}", id.to_ascii_lowercase()),
                dest: Dest {
                    transport,
                    addr: SocketAddr::new(ip, port),
                    conn: None,
                },
                outbound: confab_voice::documents::outbound_rules(&trunk),
                remove_plus: trunk.remove_plus_from_uri,
                fast_failover: trunk.enable_fast_failover_timer,
                forward_pai: trunk.forward_pai,
                forward_call_history: trunk.forward_call_history,
                inbound_plan: rules(&for_gateway(&plans, &id, at)),
            });
        }
        VoiceSet {
            plan_here: rules(&in_force(&plans, at)),
            plan_tags: per_user(&plans, rules).into_iter().collect(),
            policy_here: in_force(&policies, at),
            policy_tags: per_user(&policies, Clone::clone).into_iter().collect(),
            routes: typed::<policy::VoiceRoute>(docs)
                .iter()
                .map(|(id, r)| confab_voice::documents::voice_route(id, r))
                .collect(),
            gateways,
        }
    }

    pub fn routes(&self) -> &[confab_voice::Route] {
        &self.routes
    }

    /// The gateway a route names (`PstnGateway:<gateway>`, any case).
    pub fn gateway(&self, identity: &str) -> Option<&Gateway> {
        self.gateways
            .iter()
            .find(|g| g.identity.eq_ignore_ascii_case(identity))
    }

    /// The gateway a request came from: its address, over its own reliable transport (a UDP
    /// source address proves nothing, so a UDP gateway cannot call in).
    pub fn gateway_at(&self, transport: Transport, remote: SocketAddr) -> Option<&Gateway> {
        if !transport.is_reliable() {
            return None;
        }
        let ip = match remote.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.gateways
            .iter()
            .find(|g| g.dest.addr.ip() == ip && g.dest.transport == transport)
    }

    /// The gateway at `dest` (address and transport).
    pub fn gateway_for_dest(&self, dest: &Dest) -> Option<&Gateway> {
        self.gateways
            .iter()
            .find(|g| g.dest.addr == dest.addr && g.dest.transport == dest.transport)
    }

    /// Whether `dest` is a gateway's address (reached only through voice routes).
    pub fn is_gateway_address(&self, dest: &Dest) -> bool {
        self.gateways.iter().any(|g| g.dest.addr == dest.addr)
    }
}

impl PolicySet {
    pub fn voice(&self) -> &VoiceSet {
        &self.voice
    }

    /// The normalization rules of `user`'s dial plan (`user@domain`): the plan granted to
    /// them (Grant-CsDialPlan), else the one in force here (Registrar pool, site, Global).
    pub fn dial_plan_rules(&self, user: &str) -> &[Rule] {
        self.assigned(&user.to_ascii_lowercase(), "DialPlan")
            .and_then(|t| self.voice.plan_tags.get(&t))
            .unwrap_or(&self.voice.plan_here)
    }

    /// The CsVoicePolicy of `user`: granted, else the one in force here.
    pub fn voice_policy(&self, user: &str) -> &policy::VoicePolicy {
        self.assigned(&user.to_ascii_lowercase(), "VoicePolicy")
            .and_then(|t| self.voice.policy_tags.get(&t))
            .unwrap_or(&self.voice.policy_here)
    }
}
