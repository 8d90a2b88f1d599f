//! The Edge and the ethical walls: who may talk to whom across domains, and what may be sent.
//!
//! Everything here comes from the store's configuration documents, administered with Lync's
//! cmdlets: CsAccessEdgeConfiguration (AllowFederatedUsers, EnablePartnerDiscovery),
//! CsAllowedDomain / CsBlockedDomain, CsStaticRoutingConfiguration routes (the next hop of
//! a partner domain; no DNS), CsExternalAccessPolicy per user (EnableFederationAccess),
//! CsImFilterConfiguration, CsFileTransferFilterConfiguration, CsClientPolicy DisableRTFIm,
//! and confab's CsInformationBarrier. The documents are read, through their typed
//! definitions in confab-policy (the ones the admin shell validates with), into one
//! immutable [`PolicySet`] when the store's config version changes; a request only clones
//! an `Arc`.
//!
//! Scopes resolve as in Lync: a `Site:<site>` document of this server's site (`site` in
//! confab.toml) overrides the Global one, a `Service:<Role>:<pool>` document of its pool
//! (its first domain) overrides both, and per-user (Tag:) policies granted to a user
//! override all three for that user.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use confab_policy::{self as policy, Document, Placement, UserPolicyAssignment};
use confab_sip::{HeaderName, Message};
use confab_store::BarrierMember;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};

use crate::config::Transport;
use crate::defence::DefenceConfig;
use crate::net::Dest;

/// A refusal: the status and reason phrase to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// A partner's next hop, from a static route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// "fabrikam.com" or "*.fabrikam.com".
    pub match_uri: String,
    pub dest: Dest,
    /// The transport named by the route (TLS routes need the TLS transport).
    pub tls: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ExternalAccess {
    federation: bool,
    outside: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ImAction {
    Allow,
    Warn,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
struct ImFilter {
    enabled: bool,
    action: ImAction,
    prefixes: Vec<String>,
    warn_message: String,
    block_file_extension: bool,
    /// IgnoreLocal (default True): messages between internal users are not filtered.
    ignore_local: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct FileFilter {
    enabled: bool,
    block_all: bool,
    extensions: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Barrier {
    name: String,
    a: Vec<BarrierMember>,
    b: Vec<BarrierMember>,
}

/// Every Edge and filter setting, as of one config version.
#[derive(Debug, PartialEq)]
pub struct PolicySet {
    pub allow_federated: bool,
    pub partner_discovery: bool,
    allowed: HashMap<String, Option<IpAddr>>,
    blocked: HashSet<String>,
    routes: Vec<Route>,
    external_global: ExternalAccess,
    external_tags: HashMap<String, ExternalAccess>,
    rtf_global: bool,
    rtf_tags: HashMap<String, bool>,
    /// user@domain (lower case) -> the per-user policies granted to them.
    assignments: HashMap<String, UserPolicyAssignment>,
    im: ImFilter,
    files: FileFilter,
    barriers: Vec<Barrier>,
    /// CsAccessEdgeConfiguration AllowOutsideUsers: remote users may sign in at all.
    allow_outside: bool,
    /// CsDefenseConfiguration, when an administrator has set it.
    defence: Option<DefenceConfig>,
    /// SHA-1 thumbprints (upper-case hex) of TrustedCACerts: certificates trusted for TLS peers.
    trusted_thumbprints: HashSet<String>,
    /// CsMeetingConfiguration in force here.
    meeting: policy::MeetingConfiguration,
    /// CsConferencingConfiguration in force here.
    conferencing: policy::ConferencingConfiguration,
    /// CsConferencingPolicy: the one in force here, and the per-user (Tag:) ones.
    conf_global: policy::ConferencingPolicy,
    conf_tags: HashMap<String, policy::ConferencingPolicy>,
    /// CsPinPolicy: the one in force here, and the per-user (Tag:) ones.
    pin_global: policy::PinPolicy,
    pin_tags: HashMap<String, policy::PinPolicy>,
    /// CsHostedVoicemailPolicy: the one in force here, and the per-user (Tag:) ones.
    voicemail_global: policy::HostedVoicemailPolicy,
    voicemail_tags: HashMap<String, policy::HostedVoicemailPolicy>,
    /// CsDialInConferencingConfiguration in force here.
    dial_in: policy::DialInConferencingConfiguration,
    /// Every CsDialInConferencingAccessNumber (identity: its SIP URI), by Priority then
    /// identity.
    access_numbers: Vec<(String, policy::DialInConferencingAccessNumber)>,
    /// Enterprise voice: dial plans, voice policies, routes, gateways (voice/mod.rs).
    pub(crate) voice: crate::voice::VoiceSet,
}

impl Default for PolicySet {
    fn default() -> Self {
        PolicySet::from_documents(&HashMap::new(), &Placement::default())
    }
}

/// CsDefenseConfiguration as the defence module takes it (a value below 1, which the admin
/// shell refuses, keeps the default).
fn defence_config(d: &policy::DefenseConfiguration) -> DefenceConfig {
    let def = DefenceConfig::default();
    let num = |v: i64, default: u64| u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(default);
    let num32 = |v: i64, default: u32| u32::try_from(num(v, default.into())).unwrap_or(u32::MAX);
    DefenceConfig {
        enabled: d.enabled,
        requests_per_second: num32(d.messages_per_second, def.requests_per_second),
        burst: num32(d.burst, def.burst),
        ban_secs: num(d.ban_seconds, def.ban_secs),
        trusted: d
            .trusted_addresses
            .iter()
            .filter_map(|a| a.trim_matches(['[', ']']).parse().ok())
            .collect(),
        max_auth_failures_per_user: num32(
            d.max_auth_failures_per_user,
            def.max_auth_failures_per_user,
        ),
        max_auth_failures_per_address: num32(
            d.max_auth_failures_per_address,
            def.max_auth_failures_per_address,
        ),
        auth_window_secs: num(d.auth_window_seconds, def.auth_window_secs),
        auth_retry_secs: num(d.auth_retry_seconds, def.auth_retry_secs),
        lockout_secs: num(d.lockout_seconds, def.lockout_secs),
        max_lockout_secs: num(d.max_lockout_seconds, def.max_lockout_secs),
    }
}

/// Documents by kind: (identity, body).
pub type Documents = HashMap<String, Vec<(String, Map<String, Value>)>>;

/// The documents of one kind, typed. A property whose stored value does not fit its type
/// takes its default (logged).
pub(crate) fn typed<T: Document>(docs: &Documents) -> Vec<(String, T)> {
    docs.get(T::DEF.noun)
        .into_iter()
        .flatten()
        .map(|(id, body)| {
            let (t, bad) = T::from_body(body);
            if !bad.is_empty() {
                tracing::warn!(
                    kind = T::DEF.noun,
                    identity = %id,
                    properties = ?bad,
                    "stored values of the wrong type: their defaults apply"
                );
            }
            (id.clone(), t)
        })
        .collect()
}

/// The settings in force on this server: the most specific document, else the defaults.
pub(crate) fn in_force<T: Document>(docs: &[(String, T)], at: &Placement) -> T {
    policy::effective(T::DEF, docs, at)
        .cloned()
        .unwrap_or_default()
}

/// Per-user policies by lower-case tag name.
pub(crate) fn per_user<T: Document, V>(
    docs: &[(String, T)],
    f: impl Fn(&T) -> V,
) -> HashMap<String, V> {
    docs.iter()
        .filter_map(|(id, d)| match policy::Scope::of(id) {
            policy::Scope::Tag(t) => Some((t.to_ascii_lowercase(), f(d))),
            _ => None,
        })
        .collect()
}

/// Lync's default IM filter prefixes (confab-policy's).
#[cfg(test)]
const DEFAULT_PREFIXES: &[&str] = policy::URL_PREFIXES;

impl PolicySet {
    /// The policies in force on a server placed at `at` (its site and pool).
    pub fn from_documents(docs: &Documents, at: &Placement) -> PolicySet {
        let edge: policy::AccessEdgeConfiguration = in_force(&typed(docs), at);
        let allowed = typed::<policy::AllowedDomain>(docs)
            .into_iter()
            .map(|(id, d)| {
                (
                    id.to_ascii_lowercase(),
                    d.proxy_fqdn.trim_matches(['[', ']']).parse::<IpAddr>().ok(),
                )
            })
            .collect();
        let blocked = typed::<policy::BlockedDomain>(docs)
            .into_iter()
            .map(|(id, _)| id.to_ascii_lowercase())
            .collect();

        let mut routes = vec![];
        let routing: policy::StaticRoutingConfiguration = in_force(&typed(docs), at);
        for r in routing.route.iter().filter(|r| r.enabled) {
            let tls = r.transport == policy::RouteTransport::TLS;
            let port = r.port.unwrap_or(if tls { 5061 } else { 5060 });
            let Ok(ip) = r.destination.trim_matches(['[', ']']).parse::<IpAddr>() else {
                tracing::warn!(
                    destination = %r.destination,
                    "static route skipped: its destination must be an IP address (no DNS)"
                );
                continue;
            };
            let transport = if tls { Transport::Tls } else { Transport::Tcp };
            routes.push(Route {
                match_uri: r.match_uri.to_ascii_lowercase(),
                dest: Dest {
                    transport,
                    addr: SocketAddr::new(ip, port),
                    conn: None,
                },
                tls,
            });
        }

        let ext = |p: &policy::ExternalAccessPolicy| ExternalAccess {
            federation: p.enable_federation_access,
            outside: p.enable_outside_access,
        };
        let external = typed::<policy::ExternalAccessPolicy>(docs);
        let rtf = |p: &policy::ClientPolicy| p.disable_rtf_im.unwrap_or(false);
        let client = typed::<policy::ClientPolicy>(docs);

        let imf: policy::ImFilterConfiguration = in_force(&typed(docs), at);
        let im = ImFilter {
            enabled: imf.enabled,
            action: match imf.action {
                policy::ImFilterAction::Allow => ImAction::Allow,
                policy::ImFilterAction::Warn => ImAction::Warn,
                policy::ImFilterAction::Block => ImAction::Block,
            },
            prefixes: imf
                .prefixes
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect(),
            warn_message: imf.warn_message,
            block_file_extension: imf.block_file_extension,
            ignore_local: imf.ignore_local,
        };
        let ftf: policy::FileTransferFilterConfiguration = in_force(&typed(docs), at);
        let files = FileFilter {
            enabled: ftf.enabled,
            block_all: ftf.action == policy::FileTransferAction::BlockAll,
            extensions: ftf
                .extensions
                .iter()
                .map(|e| {
                    let e = e.trim().to_ascii_lowercase();
                    if e.starts_with('.') {
                        e
                    } else {
                        format!(".{e}")
                    }
                })
                .collect(),
        };

        let barriers = typed::<policy::InformationBarrier>(docs)
            .into_iter()
            .filter(|(_, b)| b.enabled)
            .map(|(id, b)| {
                let members = |list: &[String]| {
                    list.iter()
                        .filter_map(|m| BarrierMember::parse(m))
                        .collect()
                };
                Barrier {
                    a: members(&b.segment_a),
                    b: members(&b.segment_b),
                    name: id,
                }
            })
            .collect();

        let assignments = docs
            .get(UserPolicyAssignment::KIND)
            .into_iter()
            .flatten()
            .map(|(id, b)| {
                let a = serde_json::from_value(Value::Object(b.clone())).unwrap_or_else(|e| {
                    tracing::warn!(user = %id, error = %e, "unusable policy assignment ignored");
                    UserPolicyAssignment::default()
                });
                (id.to_ascii_lowercase(), a)
            })
            .collect();

        let web: policy::WebServiceConfiguration = in_force(&typed(docs), at);
        let conf_policies = typed::<policy::ConferencingPolicy>(docs);
        let pin_policies = typed::<policy::PinPolicy>(docs);
        let voicemail_policies = typed::<policy::HostedVoicemailPolicy>(docs);
        let mut access_numbers = typed::<policy::DialInConferencingAccessNumber>(docs);
        access_numbers.sort_by(|(a, x), (b, y)| {
            (x.priority, a.to_ascii_lowercase()).cmp(&(y.priority, b.to_ascii_lowercase()))
        });
        PolicySet {
            allow_federated: edge.allow_federated_users,
            partner_discovery: edge.enable_partner_discovery,
            allowed,
            blocked,
            routes,
            external_global: ext(&in_force(&external, at)),
            external_tags: per_user(&external, ext),
            rtf_global: rtf(&in_force(&client, at)),
            rtf_tags: per_user(&client, rtf),
            assignments,
            im,
            files,
            barriers,
            allow_outside: edge.allow_outside_users,
            defence: policy::effective(
                policy::DefenseConfiguration::DEF,
                &typed::<policy::DefenseConfiguration>(docs),
                at,
            )
            .map(defence_config),
            trusted_thumbprints: web
                .trusted_ca_certs
                .iter()
                .map(|c| c.thumbprint.trim().to_ascii_uppercase())
                .collect(),
            meeting: in_force(&typed(docs), at),
            conferencing: in_force(&typed(docs), at),
            conf_global: in_force(&conf_policies, at),
            conf_tags: per_user(&conf_policies, Clone::clone),
            pin_global: in_force(&pin_policies, at),
            pin_tags: per_user(&pin_policies, Clone::clone),
            voicemail_global: in_force(&voicemail_policies, at),
            voicemail_tags: per_user(&voicemail_policies, Clone::clone),
            dial_in: in_force(&typed(docs), at),
            access_numbers,
            voice: crate::voice::VoiceSet::from_documents(docs, at),
        }
    }

    /// The CsPinPolicy of `user` (`user@domain`): the Tag: policy granted to them
    /// (Grant-CsPinPolicy), else the one in force here (Site:, else Global). Its
    /// MaximumLogonAttempts and PINLifetime, as `Store::verify_client_pin` takes them, are
    /// `PinPolicy::max_failures()` and `lifetime_days()` (also `confab_admin::pins::…`).
    pub fn pin_policy(&self, user: &str) -> policy::PinPolicy {
        self.assigned(&user.to_ascii_lowercase(), "PinPolicy")
            .and_then(|t| self.pin_tags.get(&t).cloned())
            .unwrap_or_else(|| self.pin_global.clone())
    }

    /// The CsHostedVoicemailPolicy of `user` (`user@domain`): the Tag: policy granted to
    /// them (Grant-CsHostedVoicemailPolicy), else the one in force here (Site:, else
    /// Global). Its Destination, parsed: `HostedVoicemailPolicy::destination()`.
    pub fn hosted_voicemail_policy(&self, user: &str) -> policy::HostedVoicemailPolicy {
        self.assigned(&user.to_ascii_lowercase(), "HostedVoicemailPolicy")
            .and_then(|t| self.voicemail_tags.get(&t).cloned())
            .unwrap_or_else(|| self.voicemail_global.clone())
    }

    /// CsDialInConferencingConfiguration in force on this server.
    pub fn dial_in_configuration(&self) -> &policy::DialInConferencingConfiguration {
        &self.dial_in
    }

    /// Every dial-in access number (identity: its SIP URI, e.g. `sip:dialin@example.test`),
    /// by Priority (lowest first), then identity.
    pub fn access_numbers(&self) -> &[(String, policy::DialInConferencingAccessNumber)] {
        &self.access_numbers
    }

    /// CsMeetingConfiguration in force on this server.
    pub fn meeting_configuration(&self) -> &policy::MeetingConfiguration {
        &self.meeting
    }

    /// CsConferencingConfiguration in force on this server.
    pub fn conferencing_configuration(&self) -> &policy::ConferencingConfiguration {
        &self.conferencing
    }

    /// The CsConferencingPolicy of `user` (`user@domain`): the Tag: policy granted to them,
    /// else the one in force here (Site:, else Global).
    pub fn conferencing_policy(&self, user: &str) -> policy::ConferencingPolicy {
        self.assigned(&user.to_ascii_lowercase(), "ConferencingPolicy")
            .and_then(|t| self.conf_tags.get(&t).cloned())
            .unwrap_or_else(|| self.conf_global.clone())
    }

    /// The defence settings in force: the store's CsDefenseConfiguration once set, else the
    /// config file's; the file's trusted addresses always stay trusted.
    pub fn defence_config(&self, file: &DefenceConfig) -> DefenceConfig {
        match &self.defence {
            None => file.clone(),
            Some(d) => {
                let mut d = d.clone();
                for ip in &file.trusted {
                    if !d.trusted.contains(ip) {
                        d.trusted.push(*ip);
                    }
                }
                d
            }
        }
    }

    /// A local user signing in (or sending) from outside the internal networks: Lync's
    /// remote user access through the Edge.
    pub fn check_remote_access(&self, user: &str) -> Result<(), Refusal> {
        if !self.allow_outside {
            return Err(refuse(403, "Remote access is disabled on this server"));
        }
        if !self.external_access(user).outside {
            return Err(refuse(
                403,
                "Your external access policy does not allow remote access",
            ));
        }
        Ok(())
    }

    /// Whether a certificate with this SHA-1 thumbprint (upper-case hex) is trusted for
    /// TLS peers (CsWebServiceConfiguration TrustedCACerts).
    pub fn trusts_thumbprint(&self, thumbprint: &str) -> bool {
        self.trusted_thumbprints.contains(thumbprint)
    }

    pub(crate) fn assigned(&self, user: &str, policy: &str) -> Option<String> {
        self.assignments
            .get(user)
            .and_then(|a| a.get(policy))
            .map(str::to_ascii_lowercase)
    }

    fn external_access(&self, user: &str) -> ExternalAccess {
        self.assigned(user, "ExternalAccessPolicy")
            .and_then(|t| self.external_tags.get(&t).copied())
            .unwrap_or(self.external_global)
    }

    /// Whether any information barrier is defined (none: the per-request check is skipped).
    pub fn has_barriers(&self) -> bool {
        !self.barriers.is_empty()
    }

    /// Whether MESSAGE bodies can be filtered at all: the IM filter is on, or rich text
    /// is disabled by some client policy (none: the per-message check is skipped).
    pub fn filters_messages(&self) -> bool {
        self.im.enabled || self.rtf_global || self.rtf_tags.values().any(|&d| d)
    }

    fn rtf_disabled(&self, user: &str) -> bool {
        self.assigned(user, "ClientPolicy")
            .and_then(|t| self.rtf_tags.get(&t).copied())
            .unwrap_or(self.rtf_global)
    }

    /// The static route to a partner domain (exact MatchUri first, then `*.suffix`).
    pub fn route_for(&self, domain: &str) -> Option<&Route> {
        let d = domain.to_ascii_lowercase();
        self.routes.iter().find(|r| r.match_uri == d).or_else(|| {
            self.routes.iter().find(|r| {
                r.match_uri.strip_prefix("*.").is_some_and(|s| {
                    d.len() > s.len() + 1
                        && d.ends_with(s)
                        && d.as_bytes()[d.len() - s.len() - 1] == b'.'
                })
            })
        })
    }

    /// Where a partner domain's traffic goes: its static route, else its allowed-domain
    /// ProxyFqdn when that is an IP address (the default port 5061, TLS).
    pub fn next_hop(&self, domain: &str) -> Option<Dest> {
        if let Some(r) = self.route_for(domain) {
            return Some(r.dest);
        }
        let ip = (*self.allowed.get(&domain.to_ascii_lowercase())?)?;
        Some(Dest {
            transport: Transport::Tls,
            addr: SocketAddr::new(ip, 5061),
            conn: None,
        })
    }

    /// Whether `src` is where `domain`'s federation traffic comes from (its next hop): how a
    /// partner is recognised (Lync's source verification).
    pub fn is_partner_source(&self, domain: &str, src: IpAddr) -> bool {
        self.next_hop(domain)
            .is_some_and(|hop| hop.addr.ip() == src)
    }

    fn domain_rule(&self, domain: &str) -> Result<(), Refusal> {
        if !self.allow_federated {
            return Err(refuse(403, "Federation is disabled on this server"));
        }
        if self.blocked.contains(domain) {
            return Err(refuse(403, format!("Domain {domain} is blocked")));
        }
        if !self.allowed.contains_key(domain) && !self.partner_discovery {
            return Err(refuse(
                403,
                format!("Domain {domain} is not an allowed federated domain"),
            ));
        }
        Ok(())
    }

    /// A local user (`sender`, authenticated) addressing a user of another domain.
    pub fn check_outbound(&self, sender: &str, domain: &str) -> Result<(), Refusal> {
        self.domain_rule(domain)?;
        if !self.external_access(sender).federation {
            return Err(refuse(
                403,
                "Your external access policy does not allow federation",
            ));
        }
        Ok(())
    }

    /// A user of another domain (`sender`, as claimed) reaching local user `recipient`, the
    /// request coming from `src`. The source must be the partner's next hop (Lync's source
    /// verification: a claimed domain is only believed from that domain's Edge).
    pub fn check_inbound(&self, sender: &str, recipient: &str, src: IpAddr) -> Result<(), Refusal> {
        let domain = sender.rsplit_once('@').map(|x| x.1).unwrap_or(sender);
        self.domain_rule(domain)?;
        match self.next_hop(domain) {
            Some(hop) if hop.addr.ip() == src => {}
            _ => {
                return Err(refuse(
                    403,
                    format!("Request for domain {domain} did not come from its federation route"),
                ))
            }
        }
        if !self.external_access(recipient).federation {
            return Err(refuse(
                403,
                "The recipient does not take federated communications",
            ));
        }
        Ok(())
    }

    /// The information barrier, if any, between two users (lower-case user@domain).
    pub fn barrier_between(&self, x: &str, y: &str) -> Option<&str> {
        self.barriers
            .iter()
            .find(|b| {
                let a_has = |w: &str| b.a.iter().any(|m| m.contains(w));
                let b_has = |w: &str| b.b.iter().any(|m| m.contains(w));
                (a_has(x) && b_has(y)) || (b_has(x) && a_has(y))
            })
            .map(|b| b.name.as_str())
    }

    /// IM content rules for a MESSAGE: rich text (sender's or a local recipient's
    /// DisableRTFIm), then the URL filter, unless `internal` (sender and recipient are both
    /// users of our domains) and CsImFilterConfiguration IgnoreLocal is True (its default).
    /// May rewrite the body (Allow, Warn).
    pub fn filter_message(
        &self,
        msg: &mut Message,
        local_users: &[&str],
        internal: bool,
    ) -> Result<(), Refusal> {
        let ctype = content_type(msg);
        if local_users.iter().any(|u| self.rtf_disabled(u)) {
            if is_rtf(&ctype) {
                return Err(refuse(
                    415,
                    "Rich text IM is disabled by policy; send plain text",
                ));
            }
            if ctype.starts_with("multipart/") {
                match plain_alternative(msg, &ctype)? {
                    Some(plain) => msg.set_body("text/plain; charset=UTF-8", plain),
                    None if multipart_parts(msg, &ctype)?.iter().any(|(t, _)| is_rtf(t)) => {
                        return Err(refuse(
                            415,
                            "Rich text IM is disabled by policy; send plain text",
                        ))
                    }
                    None => {}
                }
            }
        }
        if !self.im.enabled || internal && self.im.ignore_local {
            return Ok(());
        }
        let ctype = content_type(msg);
        let Some((start, text)) = im_text(msg, &ctype) else {
            return Ok(());
        };
        let found = find_urls(text, &self.im.prefixes);
        if found.is_empty() {
            return Ok(());
        }
        if self.im.block_file_extension {
            for &(at, len) in &found {
                let url = &text[at..at + len];
                if let Some(ext) = extension_of(url.split(['?', '#']).next().unwrap_or(url)) {
                    if self.files.extensions.contains(&ext) {
                        return Err(refuse(
                            403,
                            format!("Message blocked: links to {ext} files are not allowed"),
                        ));
                    }
                }
            }
        }
        let new_text = match self.im.action {
            ImAction::Block => return Err(refuse(403, "Message blocked: it contains a link")),
            ImAction::Warn if self.im.warn_message.is_empty() => return Ok(()),
            ImAction::Warn => format!("{}\r\n{}", self.im.warn_message, text),
            ImAction::Allow => {
                // links are prefixed with '_' so they are not clickable
                let mut s = String::with_capacity(text.len() + found.len());
                let mut last = 0;
                for &(at, _) in &found {
                    s.push_str(&text[last..at]);
                    s.push('_');
                    last = at;
                }
                s.push_str(&text[last..]);
                s
            }
        };
        let mut body = msg.body[..start].to_vec();
        body.extend_from_slice(new_text.as_bytes());
        msg.body = body.into();
        Ok(())
    }

    /// File-transfer offers in an INVITE (RFC 5547 `a=file-selector`, or Lync's
    /// application/ms-filetransfer+xml): refused by Action BlockAll or a listed extension.
    pub fn filter_file_transfer(&self, msg: &Message) -> Result<(), Refusal> {
        if !self.files.enabled {
            return Ok(());
        }
        let ctype = content_type(msg);
        let bodies: Vec<(String, Vec<u8>)> = if ctype.starts_with("multipart/") {
            multipart_parts(msg, &ctype)?
        } else {
            vec![(ctype.clone(), msg.body.to_vec())]
        };
        // each offer is judged where it is found (one pass, nothing collected)
        let judge = |name: Option<&str>| -> Result<(), Refusal> {
            if self.files.block_all {
                return Err(refuse(403, "File transfer is not allowed"));
            }
            if let Some(ext) = name.and_then(extension_of) {
                if self.files.extensions.contains(&ext) {
                    return Err(refuse(
                        403,
                        format!("File transfer blocked: {ext} files are not allowed"),
                    ));
                }
            }
            Ok(())
        };
        for (t, b) in bodies {
            let b = String::from_utf8_lossy(&b);
            if t.starts_with("application/sdp") {
                for line in b.lines() {
                    if let Some(sel) = line.trim().strip_prefix("a=file-selector") {
                        judge(selector_name(sel))?;
                    }
                }
            } else if t.starts_with("application/ms-filetransfer+xml") {
                judge(None)?;
                let mut rest = &b[..];
                while let Some(i) = rest.find("<fileName>") {
                    let after = &rest[i + 10..];
                    let end = after.find("</fileName>").unwrap_or(after.len());
                    judge(Some(after[..end].trim()))?;
                    rest = &after[end..];
                }
            }
        }
        Ok(())
    }
}

fn content_type(msg: &Message) -> String {
    msg.headers
        .get(&HeaderName::ContentType)
        .map(|t| t.as_str().trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_rtf(ctype: &str) -> bool {
    ctype.starts_with("text/rtf") || ctype.starts_with("application/rtf")
}

/// The parts of a multipart body: (content type, bytes).
/// The most parts a multipart body may have (Lync sends two or three); more are refused
/// rather than each inspected.
const MAX_PARTS: usize = 16;

/// The parts of a multipart body: (content type, bytes); a body with more than
/// [`MAX_PARTS`] parts is refused.
fn multipart_parts(msg: &Message, ctype: &str) -> Result<Vec<(String, Vec<u8>)>, Refusal> {
    let Some(boundary) = ctype
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
    else {
        return Ok(vec![]);
    };
    // the boundary keeps its original case: take it from the header as written
    let raw = msg
        .headers
        .get(&HeaderName::ContentType)
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let at = raw
        .to_ascii_lowercase()
        .find("boundary=")
        .map(|i| i + 9)
        .unwrap_or(0);
    let b = raw[at..]
        .split(';')
        .next()
        .unwrap_or(boundary)
        .trim()
        .trim_matches('"')
        .to_string();
    let body = String::from_utf8_lossy(&msg.body).into_owned();
    let delim = format!("--{b}");
    let mut out = vec![];
    for part in body.split(&delim).skip(1) {
        if part.starts_with("--") {
            break;
        }
        if out.len() == MAX_PARTS {
            return Err(refuse(
                400,
                format!("Too many body parts (more than {MAX_PARTS})"),
            ));
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let (head, content) = part.split_once("\r\n\r\n").unwrap_or(("", part));
        let t = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.trim().to_ascii_lowercase())
            })
            .unwrap_or_else(|| "text/plain".into());
        out.push((
            t,
            content
                .strip_suffix("\r\n")
                .unwrap_or(content)
                .as_bytes()
                .to_vec(),
        ));
    }
    Ok(out)
}

fn plain_alternative(msg: &Message, ctype: &str) -> Result<Option<Vec<u8>>, Refusal> {
    if !ctype.starts_with("multipart/alternative") {
        return Ok(None);
    }
    Ok(multipart_parts(msg, ctype)?
        .into_iter()
        .find(|(t, _)| t.starts_with("text/plain"))
        .map(|(_, b)| b))
}

/// The text an IM filter reads: the body of text/plain and text/html, the inner body of
/// message/cpim (its headers name sip: URIs that are not links). Returns (offset, text).
fn im_text<'a>(msg: &'a Message, ctype: &str) -> Option<(usize, &'a str)> {
    let body = std::str::from_utf8(&msg.body).ok()?;
    if ctype.starts_with("text/plain")
        || ctype.starts_with("text/html")
        || ctype.is_empty() && !body.is_empty()
    {
        return Some((0, body));
    }
    if ctype.starts_with("message/cpim") {
        // CPIM: message headers, blank line, content headers, blank line, content
        let first = body.find("\r\n\r\n")? + 4;
        let second = body[first..].find("\r\n\r\n")? + first + 4;
        return Some((second, &body[second..]));
    }
    None
}

/// Links in `text` starting with one of the prefixes (case-insensitive) at a word start;
/// `www*.` means "www", anything, then a dot, within the word. Returns (start, len).
///
/// Linear in the text: a word runs to the end of its whitespace-delimited token, so the
/// token's end (and, for `*` prefixes, the last place of the part after the `*`) is found
/// once per token, not once per word start (a body like `a.a.a.a…` has a word start at
/// every other byte).
fn find_urls(text: &str, prefixes: &[String]) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let split: Vec<Option<(&str, &str)>> = prefixes.iter().map(|p| p.split_once('*')).collect();
    // per prefix with a '*': the last start of its tail in the current token (absolute)
    let mut tail_at: Vec<Option<usize>> = vec![None; prefixes.len()];
    let mut token_end = 0;
    let mut found = vec![];
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if word_start && bytes[i].is_ascii_alphanumeric() {
            if i >= token_end {
                token_end = lower[i..]
                    .find(|c: char| c.is_whitespace() || "<>\"'".contains(c))
                    .map(|e| i + e)
                    .unwrap_or(bytes.len());
                for (at, s) in tail_at.iter_mut().zip(&split) {
                    *at = s.and_then(|(_, tail)| lower[i..token_end].rfind(tail).map(|t| i + t));
                }
            }
            let word = &lower[i..token_end];
            let hit = prefixes
                .iter()
                .zip(&split)
                .zip(&tail_at)
                .any(|((p, s), at)| match s {
                    Some((head, _)) => {
                        word.starts_with(head) && at.is_some_and(|t| t >= i + head.len())
                    }
                    None => word.starts_with(p.as_str()),
                });
            if hit {
                found.push((i, token_end - i));
                i = token_end;
                continue;
            }
        }
        i += 1;
        while i < bytes.len() && !lower.is_char_boundary(i) {
            i += 1;
        }
    }
    found
}

fn extension_of(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let dot = base.rfind('.')?;
    let ext = &base[dot..];
    (ext.len() > 1 && ext.len() <= 16).then(|| ext.to_ascii_lowercase())
}

/// `name:"x.jpg"` from the value of an RFC 5547 file-selector attribute.
fn selector_name(sel: &str) -> Option<&str> {
    let i = sel.find("name:")?;
    let rest = &sel[i + 5..];
    if let Some(q) = rest.strip_prefix('"') {
        return Some(&q[..q.find('"').unwrap_or(q.len())]);
    }
    Some(rest.split_whitespace().next().unwrap_or(""))
}

/// The live policies, swapped whole when the store's configuration changes.
#[derive(Default)]
pub struct Policies {
    current: RwLock<Arc<PolicySet>>,
    version: Mutex<Option<i64>>,
    /// This server's site and pool: which Site: and Service: documents are in force.
    placement: Placement,
}

impl Policies {
    /// The policies of a server at `placement` (until the first refresh: the defaults).
    pub fn new(placement: Placement) -> Policies {
        Policies {
            current: RwLock::new(Arc::new(PolicySet::from_documents(
                &HashMap::new(),
                &placement,
            ))),
            version: Mutex::new(None),
            placement,
        }
    }

    pub fn get(&self) -> Arc<PolicySet> {
        self.current.read().clone()
    }

    pub fn set(&self, p: PolicySet) {
        *self.current.write() = Arc::new(p);
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Re-reads the documents when the config version moved. Returns whether it did.
    pub fn refresh(&self, store: &confab_store::Store) -> Result<bool, confab_store::StoreError> {
        let v = store.config_version()?;
        let mut seen = self.version.lock();
        if *seen == Some(v) {
            return Ok(false);
        }
        let docs = read_documents(store)?;
        self.set(PolicySet::from_documents(&docs, &self.placement));
        *seen = Some(v);
        let elsewhere = not_in_force_here(&docs, &self.placement);
        if !elsewhere.is_empty() {
            tracing::info!(
                site = self.placement.site.as_deref().unwrap_or("(none)"),
                pool = self.placement.pool.as_deref().unwrap_or("(none)"),
                documents = ?elsewhere,
                "documents of other sites or pools are not in force on this server"
            );
        }
        tracing::info!("policies loaded (config version {v})");
        Ok(true)
    }
}

/// Every document the server reads, from the store.
fn read_documents(store: &confab_store::Store) -> Result<Documents, confab_store::StoreError> {
    let mut docs: Documents = HashMap::new();
    for kind in kinds() {
        docs.insert(
            kind.to_string(),
            store
                .list_config(kind)?
                .into_iter()
                .map(|d| (d.identity, d.body))
                .collect(),
        );
    }
    Ok(docs)
}

/// Site: and Service: documents that belong to other sites or pools than `at`'s.
fn not_in_force_here(docs: &Documents, at: &Placement) -> Vec<String> {
    let mut out = vec![];
    for (kind, list) in docs {
        let Some(def) = policy::definition(kind) else {
            continue;
        };
        for (id, _) in list {
            let scoped = matches!(
                policy::Scope::of(id),
                policy::Scope::Site(_) | policy::Scope::Service { .. }
            );
            // a gateway's documents apply to its calls wherever the server is
            let gateway = matches!(policy::Scope::of(id), policy::Scope::Service { role, .. } if role.eq_ignore_ascii_case("PstnGateway"));
            if scoped && !gateway && at.rank(id, def).is_none() {
                out.push(format!("{kind} {id}"));
            }
        }
    }
    out.sort();
    out
}

/// The kinds of document the server reads.
fn kinds() -> [&'static str; 25] {
    [
        policy::MeetingConfiguration::DEF.noun,
        policy::ConferencingConfiguration::DEF.noun,
        policy::ConferencingPolicy::DEF.noun,
        policy::AccessEdgeConfiguration::DEF.noun,
        policy::DefenseConfiguration::DEF.noun,
        policy::AllowedDomain::DEF.noun,
        policy::BlockedDomain::DEF.noun,
        policy::StaticRoutingConfiguration::DEF.noun,
        policy::ExternalAccessPolicy::DEF.noun,
        policy::ClientPolicy::DEF.noun,
        UserPolicyAssignment::KIND,
        policy::ImFilterConfiguration::DEF.noun,
        policy::FileTransferFilterConfiguration::DEF.noun,
        policy::WebServiceConfiguration::DEF.noun,
        policy::DialInConferencingConfiguration::DEF.noun,
        policy::PinPolicy::DEF.noun,
        policy::DialPlan::DEF.noun,
        policy::DialInConferencingAccessNumber::DEF.noun,
        policy::InformationBarrier::DEF.noun,
        policy::VoicePolicy::DEF.noun,
        policy::VoiceRoute::DEF.noun,
        policy::TrunkConfiguration::DEF.noun,
        policy::PstnGateway::DEF.noun,
        policy::HostedVoicemailPolicy::DEF.noun,
        // read by the web site (crates/web/src/site/urls.rs) from the same snapshot kinds
        policy::SimpleUrlConfiguration::DEF.noun,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_reads_every_document_kind_it_enforces() {
        for def in policy::definitions().iter().filter(|d| d.read_by_server) {
            assert!(
                kinds().contains(&def.noun),
                "{} is read by the server (read_by_server) but not loaded by read_documents",
                def.noun
            );
        }
    }
    use serde_json::json;

    fn docs(list: &[(&str, &str, Value)]) -> PolicySet {
        let mut d: Documents = HashMap::new();
        for (k, id, b) in list {
            d.entry(k.to_string())
                .or_default()
                .push((id.to_string(), b.as_object().unwrap().clone()));
        }
        PolicySet::from_documents(&d, &Placement::default())
    }

    fn message(ctype: &str, body: &str) -> Message {
        let mut m = Message::request(confab_sip::Method::Message, "sip:bob@example.test");
        m.set_body(ctype, body.as_bytes().to_vec());
        m
    }

    fn at_site(site: &str, list: &[(&str, &str, Value)]) -> PolicySet {
        let mut d: Documents = HashMap::new();
        for (k, id, b) in list {
            d.entry(k.to_string())
                .or_default()
                .push((id.to_string(), b.as_object().unwrap().clone()));
        }
        let at = Placement {
            site: Some(site.to_string()),
            pool: Some("pool.x.test".into()),
        };
        PolicySet::from_documents(&d, &at)
    }

    #[test]
    fn pin_policies_dial_in_settings_and_access_numbers() {
        let p = at_site(
            "Redmond",
            &[
                ("CsPinPolicy", "Global", json!({"MinPasswordLength": 6})),
                (
                    "CsPinPolicy",
                    "Site:Redmond",
                    json!({"MinPasswordLength": 7}),
                ),
                (
                    "CsPinPolicy",
                    "Tag:Strict",
                    json!({"MinPasswordLength": 10, "MaximumLogonAttempts": 3}),
                ),
                (
                    "CsUserPolicyAssignment",
                    "alice@x.test",
                    json!({"PinPolicy": "strict"}),
                ),
                (
                    "CsDialInConferencingConfiguration",
                    "Global",
                    json!({"EnableNameRecording": false}),
                ),
                (
                    "CsDialInConferencingAccessNumber",
                    "sip:b@x.test",
                    json!({"LineUri": "tel:+2", "Priority": 1}),
                ),
                (
                    "CsDialInConferencingAccessNumber",
                    "sip:c@x.test",
                    json!({"LineUri": "tel:+3", "Priority": 0}),
                ),
                (
                    "CsDialInConferencingAccessNumber",
                    "sip:a@x.test",
                    json!({"LineUri": "tel:+1", "Priority": 1}),
                ),
            ],
        );
        assert_eq!(p.pin_policy("Alice@x.test").min_password_length, 10);
        assert_eq!(p.pin_policy("Alice@x.test").max_failures(), 3);
        assert_eq!(
            p.pin_policy("bob@x.test").max_failures(),
            10,
            "0: Lync's unset"
        );
        assert_eq!(p.pin_policy("bob@x.test").min_password_length, 7);
        assert!(!p.dial_in_configuration().enable_name_recording);
        let order: Vec<&str> = p
            .access_numbers()
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(order, ["sip:c@x.test", "sip:a@x.test", "sip:b@x.test"]);
        assert_eq!(p.access_numbers()[0].1.line_uri, "tel:+3");
        let none = PolicySet::default();
        assert_eq!(none.pin_policy("a@x.test").min_password_length, 5);
        assert!(none.access_numbers().is_empty());
    }

    #[test]
    fn hosted_voicemail_policies_grant_else_in_force_here() {
        let p = at_site(
            "Redmond",
            &[
                (
                    "CsHostedVoicemailPolicy",
                    "Global",
                    json!({"Destination": "sip:vm@127.0.0.1:5090;transport=tcp"}),
                ),
                (
                    "CsHostedVoicemailPolicy",
                    "Tag:Sales",
                    json!({"Destination": "sip:sales@127.0.0.2"}),
                ),
                (
                    "CsUserPolicyAssignment",
                    "alice@x.test",
                    json!({"HostedVoicemailPolicy": "sales"}),
                ),
            ],
        );
        let alice = p
            .hosted_voicemail_policy("Alice@x.test")
            .destination()
            .unwrap();
        assert_eq!(alice.socket_addr(), "127.0.0.2:5060".parse().unwrap());
        let bob = p
            .hosted_voicemail_policy("bob@x.test")
            .destination()
            .unwrap();
        assert_eq!(bob.to_string(), "sip:vm@127.0.0.1:5090;transport=tcp");
        assert_eq!(
            PolicySet::default()
                .hosted_voicemail_policy("a@x.test")
                .destination(),
            None
        );
    }

    #[test]
    fn site_documents_override_global_on_their_site_only() {
        let list = [
            (
                "CsImFilterConfiguration",
                "Global",
                json!({"Action": "Warn", "WarnMessage": "w"}),
            ),
            (
                "CsImFilterConfiguration",
                "Site:Redmond",
                json!({"Action": "Block"}),
            ),
            (
                "CsExternalAccessPolicy",
                "Site:Dublin",
                json!({"EnableFederationAccess": true}),
            ),
            ("CsExternalAccessPolicy", "Tag:NoFed", json!({})),
            (
                "CsUserPolicyAssignment",
                "a@x.test",
                json!({"ExternalAccessPolicy": "NoFed"}),
            ),
            (
                "CsAccessEdgeConfiguration",
                "Global",
                json!({"AllowFederatedUsers": true}),
            ),
            ("CsAllowedDomain", "y.test", json!({})),
            // a site document of a global-only kind is never in force
            (
                "CsAccessEdgeConfiguration",
                "Site:Dublin",
                json!({"AllowFederatedUsers": false}),
            ),
            (
                "CsStaticRoutingConfiguration",
                "Service:Registrar:pool.x.test",
                json!({"Route": [{"Transport": "TCP", "Destination": "127.0.0.2", "Port": 5070, "MatchUri": "y.test"}]}),
            ),
            (
                "CsStaticRoutingConfiguration",
                "Service:Registrar:other.x.test",
                json!({"Route": [{"Transport": "TCP", "Destination": "127.0.0.3", "Port": 5070, "MatchUri": "z.test"}]}),
            ),
        ];
        let redmond = at_site("Redmond", &list);
        let dublin = at_site("dublin", &list);
        assert_eq!(redmond.im.action, ImAction::Block);
        assert_eq!(dublin.im.action, ImAction::Warn);
        assert_eq!(dublin.im.warn_message, "w");
        // the site policy applies to everyone there, a granted per-user one overrides it
        assert!(redmond.check_outbound("b@x.test", "y.test").is_err());
        dublin.check_outbound("b@x.test", "y.test").unwrap();
        assert!(dublin.check_outbound("a@x.test", "y.test").is_err());
        assert!(dublin.allow_federated);
        // the pool's service document; another pool's is not in force
        assert!(dublin.route_for("y.test").is_some() && dublin.route_for("z.test").is_none());
        // without a site, only Global applies
        let none = docs(&list);
        assert_eq!(none.im.action, ImAction::Warn);
        assert!(none.route_for("y.test").is_none());

        let mut d: Documents = HashMap::new();
        for (k, id, b) in &list {
            d.entry(k.to_string())
                .or_default()
                .push((id.to_string(), b.as_object().unwrap().clone()));
        }
        let here = Placement {
            site: Some("Redmond".into()),
            pool: Some("pool.x.test".into()),
        };
        assert_eq!(
            not_in_force_here(&d, &here),
            [
                "CsAccessEdgeConfiguration Site:Dublin",
                "CsExternalAccessPolicy Site:Dublin",
                "CsStaticRoutingConfiguration Service:Registrar:other.x.test"
            ]
        );
    }

    #[test]
    fn documents_written_by_the_admin_shell_at_their_defaults_change_nothing() {
        // The admin shell writes a document with no property set as its defaults (Set- on
        // Global); the server must read that exactly as it reads no document at all.
        let dir = tempfile::tempdir().unwrap();
        let store = confab_store::Store::open(dir.path()).unwrap();
        let admin = store
            .add_admin("root", "rootpassword1", &["CsAdministrator".into()])
            .unwrap();
        let principal = confab_admin::principal_for(&store, &admin).unwrap();
        let mut sh = confab_admin::Session::new(&store, principal, "test", "pool.x.test");
        let mut written = 0;
        for k in confab_admin::schema::kinds() {
            if k.scopes.contains(&confab_policy::ScopeKind::Global) {
                sh.run(&format!("Set-{}", k.noun)).unwrap();
                assert_eq!(
                    store.get_config(k.noun, "Global").unwrap().unwrap().body,
                    k.defaults(),
                    "{}",
                    k.noun
                );
                written += 1;
            }
        }
        assert!(written >= 10);
        let mut p =
            PolicySet::from_documents(&read_documents(&store).unwrap(), &Placement::default());
        // CsDefenseConfiguration once written replaces the file's [defence]: at its
        // defaults it is the defaults
        let file = DefenceConfig::default();
        assert_eq!(p.defence_config(&file), file);
        p.defence = None;
        assert_eq!(p, PolicySet::default());
        // and a stored empty body reads as the defaults too
        let empty: Documents = kinds()
            .iter()
            .map(|k| (k.to_string(), vec![("Global".to_string(), Map::new())]))
            // collections and assignments have no Global member
            .filter(|(k, _)| {
                ![
                    "CsAllowedDomain",
                    "CsBlockedDomain",
                    "CsInformationBarrier",
                    "CsDialInConferencingAccessNumber",
                    "CsUserPolicyAssignment",
                    "CsVoiceRoute",
                    "CsPstnGateway",
                ]
                .contains(&k.as_str())
            })
            .collect();
        let mut e = PolicySet::from_documents(&empty, &Placement::default());
        assert_eq!(e.defence_config(&file), file);
        e.defence = None;
        assert_eq!(e, PolicySet::default());
    }

    #[test]
    fn urls_found_at_word_starts() {
        let p: Vec<String> = DEFAULT_PREFIXES.iter().map(|s| s.to_string()).collect();
        let t = "see http://x.test/a and www.example.com, not awww.x or wwwx, FTP:host";
        let got: Vec<&str> = find_urls(t, &p)
            .into_iter()
            .map(|(a, l)| &t[a..a + l])
            .collect();
        assert_eq!(got, vec!["http://x.test/a", "www.example.com,", "FTP:host"]);
        assert!(find_urls("no links here, just www", &p).is_empty());
    }

    /// The least time of several runs of `f` (load on the machine only adds time), the
    /// worst and the plain input measured in turns so both see the same load.
    fn work_ratio(mut worst: impl FnMut(), mut plain: impl FnMut()) -> f64 {
        let time = |f: &mut dyn FnMut()| {
            let t = std::time::Instant::now();
            for _ in 0..3 {
                f();
            }
            t.elapsed()
        };
        let (mut w, mut p) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..7 {
            w = w.min(time(&mut worst));
            p = p.min(time(&mut plain));
        }
        // a floor (1 ms: a quadratic scan of these bodies takes hundreds), so timer
        // granularity on a tiny plain run cannot make a ratio
        w.as_secs_f64() / p.as_secs_f64().max(1e-3)
    }

    /// Each scanner of a message body costs about the same on the worst body of a size
    /// as on a plain one (a quadratic scan of 30 KB is a thousand times slower).
    #[test]
    fn body_scanners_are_linear() {
        const N: usize = 30_000;
        let fill = |unit: &str| unit.repeat(N / unit.len());
        let plain_text = fill("hello there, how are you today? ");
        let strict = docs(&[(
            "CsImFilterConfiguration",
            "Global",
            json!({"IgnoreLocal": false}),
        )]);
        let rtf_off = docs(&[("CsClientPolicy", "Global", json!({"DisableRTFIm": true}))]);
        let run = |p: &PolicySet, ctype: &str, body: &str| {
            let mut m = message(ctype, body);
            let _ = p.filter_message(&mut m, &["a@x.test"], false);
        };
        let offer = |p: &PolicySet, ctype: &str, body: &str| {
            let mut m = Message::request(confab_sip::Method::Invite, "sip:b@x.test");
            m.set_body(ctype, body.as_bytes().to_vec());
            let _ = p.filter_file_transfer(&m);
        };
        let files = PolicySet::default();
        // (what, worst, plain): each runs one scanner on a body of about N bytes
        type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, Box<dyn Fn() + 'a>);
        let cases: Vec<Case> = vec![
            (
                "IM links: a word start at every other byte, no whitespace",
                Box::new(|| run(&strict, "text/plain", &fill("a."))),
                Box::new(|| run(&strict, "text/plain", &plain_text)),
            ),
            (
                "IM links: www* words without the dot",
                Box::new(|| run(&strict, "text/plain", &fill("www-"))),
                Box::new(|| run(&strict, "text/plain", &plain_text)),
            ),
            (
                "IM links: every word a link",
                Box::new(|| run(&strict, "text/plain", &fill("http:x "))),
                Box::new(|| run(&strict, "text/plain", &plain_text)),
            ),
            (
                "CPIM without its blank lines",
                Box::new(|| run(&strict, "message/cpim", &fill("a.\r\n"))),
                Box::new(|| {
                    run(
                        &strict,
                        "message/cpim",
                        &format!("From: <sip:a@x.test>\r\n\r\nContent-Type: text/plain\r\n\r\n{plain_text}"),
                    )
                }),
            ),
            (
                "multipart: a boundary at every line",
                Box::new(|| run(&rtf_off, "multipart/mixed; boundary=b", &fill("--b\r\n"))),
                Box::new(|| {
                    run(
                        &rtf_off,
                        "multipart/mixed; boundary=b",
                        &format!(
                            "--b\r\nContent-Type: text/plain\r\n\r\n{plain_text}\r\n--b--\r\n"
                        ),
                    )
                }),
            ),
            (
                "SDP: file selectors with unclosed names",
                Box::new(|| {
                    offer(
                        &files,
                        "application/sdp",
                        &fill("a=file-selector:name:\"x name:\r\n"),
                    )
                }),
                Box::new(|| offer(&files, "application/sdp", &fill("a=sendrecv\r\n"))),
            ),
            (
                "file-transfer XML: unclosed file names",
                Box::new(|| {
                    offer(
                        &files,
                        "application/ms-filetransfer+xml",
                        &fill("<fileName>"),
                    )
                }),
                Box::new(|| {
                    offer(
                        &files,
                        "application/ms-filetransfer+xml",
                        &format!("<fileName>{plain_text}</fileName>"),
                    )
                }),
            ),
            (
                "multipart offer: many empty parts",
                Box::new(|| offer(&files, "multipart/mixed; boundary=b", &fill("--b\r\n"))),
                Box::new(|| {
                    offer(
                        &files,
                        "multipart/mixed; boundary=b",
                        &format!(
                            "--b\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--b--\r\n",
                            fill("a=sendrecv\r\n")
                        ),
                    )
                }),
            ),
        ];
        for (what, worst, plain) in &cases {
            let ratio = work_ratio(worst, plain);
            eprintln!("{what}: {ratio:.2}");
            assert!(
                ratio < 10.0,
                "{what}: {ratio:.1} times the work of a plain body"
            );
        }
    }

    #[test]
    fn a_multipart_body_with_too_many_parts_is_refused() {
        let p = docs(&[("CsClientPolicy", "Global", json!({"DisableRTFIm": true}))]);
        let body = |n: usize| {
            format!(
                "{}--b--\r\n",
                "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n".repeat(n)
            )
        };
        let mut m = message("multipart/mixed; boundary=b", &body(MAX_PARTS));
        p.filter_message(&mut m, &["a@x.test"], false).unwrap();
        let mut m = message("multipart/mixed; boundary=b", &body(MAX_PARTS + 1));
        let e = p.filter_message(&mut m, &["a@x.test"], false).unwrap_err();
        assert_eq!(e.status, 400, "{e:?}");
        let mut inv = Message::request(confab_sip::Method::Invite, "sip:b@x.test");
        inv.set_body(
            "multipart/mixed; boundary=b",
            body(MAX_PARTS + 1).into_bytes(),
        );
        assert_eq!(
            PolicySet::default()
                .filter_file_transfer(&inv)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn ignore_local_skips_the_link_filter_between_internal_users() {
        let mut m = message("text/plain", "go to http://x.test now");
        PolicySet::default()
            .filter_message(&mut m, &[], true)
            .unwrap();
        assert_eq!(
            &m.body[..],
            b"go to http://x.test now",
            "IgnoreLocal defaults to True"
        );
        let p = docs(&[(
            "CsImFilterConfiguration",
            "Global",
            json!({"IgnoreLocal": false}),
        )]);
        p.filter_message(&mut m, &[], true).unwrap();
        assert_eq!(&m.body[..], b"go to _http://x.test now");
    }

    #[test]
    fn allow_prefixes_links_warn_prepends_block_refuses() {
        let mut m = message("text/plain", "go to http://x.test now");
        PolicySet::default()
            .filter_message(&mut m, &[], false)
            .unwrap();
        assert_eq!(&m.body[..], b"go to _http://x.test now");

        let p = docs(&[(
            "CsImFilterConfiguration",
            "Global",
            json!({"Action": "Warn", "WarnMessage": "Careful!"}),
        )]);
        let mut m = message("text/plain", "www.x.test");
        p.filter_message(&mut m, &[], false).unwrap();
        assert_eq!(&m.body[..], b"Careful!\r\nwww.x.test");

        let p = docs(&[(
            "CsImFilterConfiguration",
            "Global",
            json!({"Action": "Block"}),
        )]);
        let mut m = message("text/plain", "http://x.test");
        assert_eq!(
            p.filter_message(&mut m, &[], false).unwrap_err().status,
            403
        );
        let mut plain = message("text/plain", "hello");
        p.filter_message(&mut plain, &[], false).unwrap();

        let p = docs(&[(
            "CsImFilterConfiguration",
            "Global",
            json!({"Enabled": false, "Action": "Block"}),
        )]);
        p.filter_message(&mut m, &[], false).unwrap();
    }

    #[test]
    fn cpim_headers_are_not_links() {
        let body = "From: <sip:a@x.test>\r\nTo: <sip:b@x.test>\r\n\r\nContent-Type: text/plain\r\n\r\nhi http://y.test";
        let mut m = message("message/cpim", body);
        PolicySet::default()
            .filter_message(&mut m, &[], false)
            .unwrap();
        assert!(String::from_utf8_lossy(&m.body).ends_with("hi _http://y.test"));
        assert!(String::from_utf8_lossy(&m.body).starts_with("From: <sip:a@x.test>"));
    }

    #[test]
    fn link_to_blocked_extension_is_refused() {
        let mut m = message("text/plain", "get http://x.test/setup.exe?x=1");
        assert!(PolicySet::default()
            .filter_message(&mut m, &[], false)
            .unwrap_err()
            .reason
            .contains(".exe"));
    }

    #[test]
    fn rtf_refused_or_stripped_by_policy() {
        let p = docs(&[("CsClientPolicy", "Global", json!({"DisableRTFIm": true}))]);
        let mut m = message("text/rtf", "{\\rtf1 hi}");
        assert_eq!(
            p.filter_message(&mut m, &["a@x.test"], false)
                .unwrap_err()
                .status,
            415
        );
        let body = "--b1\r\nContent-Type: text/rtf\r\n\r\n{\\rtf1 hi}\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n";
        let mut m = message("multipart/alternative; boundary=b1", body);
        p.filter_message(&mut m, &["a@x.test"], false).unwrap();
        assert_eq!(&m.body[..], b"hi");
        assert!(m
            .headers
            .get(&HeaderName::ContentType)
            .unwrap()
            .as_str()
            .starts_with("text/plain"));
        // per-user policy overrides the global one
        let p = docs(&[
            (
                "CsClientPolicy",
                "Tag:RichText",
                json!({"DisableRTFIm": false}),
            ),
            ("CsClientPolicy", "Global", json!({"DisableRTFIm": true})),
            (
                "CsUserPolicyAssignment",
                "a@x.test",
                json!({"ClientPolicy": "RichText"}),
            ),
        ]);
        let mut m = message("text/rtf", "{\\rtf1 hi}");
        p.filter_message(&mut m, &["a@x.test"], false).unwrap();
        assert!(p.filter_message(&mut m, &["b@x.test"], false).is_err());
    }

    #[test]
    fn file_transfer_offers() {
        let sdp = "v=0\r\nm=message 7654 TCP/MSRP *\r\na=file-selector:name:\"photo.JPG\" type:image/jpeg size:100\r\n";
        let mut m = Message::request(confab_sip::Method::Invite, "sip:b@x.test");
        m.set_body("application/sdp", sdp.as_bytes().to_vec());
        PolicySet::default().filter_file_transfer(&m).unwrap();
        let p = docs(&[(
            "CsFileTransferFilterConfiguration",
            "Global",
            json!({"Extensions": [".exe", ".jpg"]}),
        )]);
        assert!(p
            .filter_file_transfer(&m)
            .unwrap_err()
            .reason
            .contains(".jpg"));
        let p = docs(&[(
            "CsFileTransferFilterConfiguration",
            "Global",
            json!({"Action": "BlockAll", "Extensions": []}),
        )]);
        assert!(p.filter_file_transfer(&m).is_err());
        let mut audio = Message::request(confab_sip::Method::Invite, "sip:b@x.test");
        audio.set_body(
            "application/sdp",
            b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec(),
        );
        p.filter_file_transfer(&audio).unwrap();
    }

    #[test]
    fn federation_rules() {
        let none = PolicySet::default();
        assert!(none
            .check_outbound("a@x.test", "y.test")
            .unwrap_err()
            .reason
            .contains("disabled"));
        let p = docs(&[
            (
                "CsAccessEdgeConfiguration",
                "Global",
                json!({"AllowFederatedUsers": true}),
            ),
            ("CsAllowedDomain", "y.test", json!({})),
            (
                "CsStaticRoutingConfiguration",
                "Global",
                json!({"Route": [{"Transport": "TCP", "Destination": "127.0.0.2", "Port": 5070, "MatchUri": "y.test"}]}),
            ),
            ("CsBlockedDomain", "bad.test", json!({})),
            (
                "CsExternalAccessPolicy",
                "Tag:Fed",
                json!({"EnableFederationAccess": true}),
            ),
            (
                "CsUserPolicyAssignment",
                "a@x.test",
                json!({"ExternalAccessPolicy": "Fed"}),
            ),
        ]);
        assert!(p
            .check_outbound("b@x.test", "y.test")
            .unwrap_err()
            .reason
            .contains("policy"));
        assert!(p
            .check_outbound("a@x.test", "bad.test")
            .unwrap_err()
            .reason
            .contains("blocked"));
        assert!(p
            .check_outbound("a@x.test", "other.test")
            .unwrap_err()
            .reason
            .contains("not an allowed"));
        let lo2: IpAddr = "127.0.0.2".parse().unwrap();
        let lo3: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(p
            .check_inbound("z@y.test", "b@x.test", lo2)
            .unwrap_err()
            .reason
            .contains("recipient"));
        assert!(p
            .check_inbound("z@y.test", "a@x.test", lo3)
            .unwrap_err()
            .reason
            .contains("route"));
        p.check_inbound("z@y.test", "a@x.test", lo2).unwrap();
        p.check_outbound("a@x.test", "y.test").unwrap();
    }

    #[test]
    fn barriers_both_ways_and_by_domain() {
        let p = docs(&[(
            "CsInformationBarrier",
            "Wall",
            json!({"SegmentA": ["sip:Alice@X.test"], "SegmentB": ["bob@x.test", "*@rival.test"], "Enabled": true}),
        )]);
        assert_eq!(
            p.barrier_between("alice@x.test", "bob@x.test"),
            Some("Wall")
        );
        assert_eq!(
            p.barrier_between("bob@x.test", "alice@x.test"),
            Some("Wall")
        );
        assert_eq!(
            p.barrier_between("eve@rival.test", "alice@x.test"),
            Some("Wall")
        );
        assert_eq!(p.barrier_between("carol@x.test", "bob@x.test"), None);
        assert_eq!(p.barrier_between("bob@x.test", "eve@rival.test"), None);
    }

    #[test]
    fn static_routes_match_exact_then_wildcard() {
        let p = docs(&[(
            "CsStaticRoutingConfiguration",
            "Global",
            json!({"Route": [
                {"Transport": "TCP", "Destination": "127.0.0.2", "Port": 5070, "MatchUri": "y.test", "Enabled": true},
                {"Transport": "TCP", "Destination": "127.0.0.3", "Port": 5071, "MatchUri": "*.z.test", "Enabled": true},
                {"Transport": "TCP", "Destination": "gw.z.test", "Port": 5071, "MatchUri": "w.test", "Enabled": true}
            ]}),
        )]);
        assert_eq!(
            p.next_hop("Y.test").unwrap().addr,
            "127.0.0.2:5070".parse().unwrap()
        );
        assert_eq!(
            p.next_hop("a.z.test").unwrap().addr,
            "127.0.0.3:5071".parse().unwrap()
        );
        assert!(p.next_hop("z.test").is_none() && p.next_hop("xz.test").is_none());
        assert!(
            p.next_hop("w.test").is_none(),
            "no DNS: a named destination is skipped"
        );
    }
}
