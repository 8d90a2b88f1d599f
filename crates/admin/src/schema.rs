//! Lync's configuration objects as the cmdlets see them: their nouns, the scopes they live
//! at, their properties with Lync 2013's names, types and defaults
//! (../shared/reference/lync-2013.md §3). The definitions live in confab-policy, which the
//! server reads too; this module adds identity syntax.
//!
//! One table drives the generic Get-/Set-/New-/Remove- cmdlets, type checking of values,
//! defaults for objects never written, the output, and the warnings about properties confab
//! does not enforce.

use serde_json::Value;

use confab_policy::{DocDef, Document};
pub use confab_policy::{Enforcement, PropType, ScopeKind};

#[derive(Clone, Debug)]
pub struct Prop {
    pub name: &'static str,
    pub ty: PropType,
    pub default: Value,
}

/// A configuration object as the cmdlets see it, built from its typed definition in
/// confab-policy (the one the server reads too).
#[derive(Clone, Debug)]
pub struct Kind {
    /// The noun of the cmdlets, e.g. "CsMeetingConfiguration".
    pub noun: &'static str,
    pub scopes: &'static [ScopeKind],
    /// Policies (Tag: scope, Grant-Cs…Policy, clonable) rather than settings.
    pub is_policy: bool,
    /// Only Get- and Set- exist (a single global object such as CsAccessEdgeConfiguration).
    pub get_set_only: bool,
    pub props: Vec<Prop>,
    /// The shared definition: types, defaults, and what confab enforces.
    pub def: &'static DocDef,
}

impl Kind {
    fn from_def(def: &'static DocDef) -> Kind {
        Kind {
            noun: def.noun,
            scopes: def.scopes,
            is_policy: def.is_policy,
            get_set_only: def.get_set_only,
            props: props_of(def),
            def,
        }
    }

    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// A document with every property at its default.
    pub fn defaults(&self) -> serde_json::Map<String, Value> {
        self.def.defaults()
    }

    /// Whether confab enforces a property (unknown names: no).
    pub fn enforcement(&self, name: &str) -> Enforcement {
        self.def
            .prop(name)
            .map(|p| p.enforcement)
            .unwrap_or(Enforcement::NotEnforced("not a property"))
    }

    /// "ConferencingPolicy" for CsConferencingPolicy (the -PolicyType of New-CsClonedPolicy).
    pub fn short_name(&self) -> &'static str {
        self.def.short_name()
    }
}

fn props_of(def: &'static DocDef) -> Vec<Prop> {
    let mut defaults = def.defaults();
    def.props
        .iter()
        .map(|p| Prop {
            name: p.name,
            ty: p.ty,
            default: defaults.remove(p.name).unwrap_or(Value::Null),
        })
        .collect()
}

use ScopeKind::*;

/// Every configuration object confab knows (confab-policy's definitions).
pub fn kinds() -> Vec<Kind> {
    confab_policy::definitions()
        .iter()
        .map(|d| Kind::from_def(d))
        .collect()
}

/// CsServerApplication properties (a collection keyed `Service:<Role>:<fqdn>/<Name>`).
pub fn server_application_props() -> Vec<Prop> {
    props_of(confab_policy::ServerApplication::DEF)
}

/// The built-in MSPL-style applications a Lync Front End lists (Get-CsServerApplication),
/// with their priorities; confab implements their function natively.
pub const BUILTIN_APPLICATIONS: &[(&str, &str, i64)] = &[
    (
        "ClientVersionFilter",
        "http://www.microsoft.com/LCS/ClientVersionFilter",
        0,
    ),
    (
        "TranslationService",
        "http://www.microsoft.com/LCS/TranslationService",
        1,
    ),
    (
        "IncomingFederation",
        "http://www.microsoft.com/LCS/IncomingFederation",
        2,
    ),
    (
        "UserServices",
        "http://www.microsoft.com/LCS/UserServices",
        3,
    ),
    (
        "InterClusterRouting",
        "http://www.microsoft.com/LCS/InterClusterRouting",
        4,
    ),
    ("IIMFilter", "http://www.microsoft.com/LCS/IIMFilter", 5),
    (
        "UserPinService",
        "http://www.microsoft.com/LCS/UserPinService",
        6,
    ),
    (
        "DefaultRouting",
        "http://www.microsoft.com/LCS/DefaultRouting",
        9,
    ),
    (
        "ExumRouting",
        "http://www.microsoft.com/LCS/ExumRouting",
        10,
    ),
    (
        "OutboundRouting",
        "http://www.microsoft.com/LCS/OutboundRouting",
        11,
    ),
    ("QoEAgent", "http://www.microsoft.com/LCS/QoEAgent", 12),
];

/// Canonical form of an Identity for `kind`: "global" → "Global", "site:X" → "Site:X",
/// "service:userserver:fqdn" → "Service:UserServer:fqdn", a bare name (policies) → "Tag:Name".
pub fn canonical_identity(kind: &Kind, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Identity is empty".into());
    }
    if raw.contains(['*', '?']) {
        return Err(format!(
            "wildcards are not allowed in -Identity ('{raw}'); use -Filter"
        ));
    }
    let lower = raw.to_ascii_lowercase();
    if kind.scopes == [Named] {
        return named_identity(kind, raw);
    }
    let (canon, scope) = if lower == "global" {
        ("Global".to_string(), Global)
    } else if let Some(rest) = strip_ci(raw, "site:") {
        if rest.is_empty() {
            return Err(format!("'{raw}' names no site"));
        }
        (format!("Site:{rest}"), Site)
    } else if let Some(rest) = strip_ci(raw, "service:") {
        let (role, fqdn) = rest
            .split_once(':')
            .ok_or_else(|| format!("'{raw}' is not Service:<Role>:<pool FQDN>"))?;
        let allowed = kind.scopes.iter().find_map(|s| match s {
            Service(r) if r.eq_ignore_ascii_case(role) => Some(*r),
            _ => None,
        });
        match allowed {
            Some(r) if !fqdn.is_empty() => (format!("Service:{r}:{fqdn}"), Service(r)),
            _ => {
                let roles: Vec<&str> = kind
                    .scopes
                    .iter()
                    .filter_map(|s| if let Service(r) = s { Some(*r) } else { None })
                    .collect();
                return Err(if roles.is_empty() {
                    format!("{} has no service scope", kind.noun)
                } else {
                    format!(
                        "'{raw}': the service scope of {} is Service:{}:<pool FQDN>",
                        kind.noun,
                        roles.join("|")
                    )
                });
            }
        }
    } else {
        let name = strip_ci(raw, "tag:").unwrap_or(raw);
        if !kind.is_policy {
            return Err(format!(
                "'{raw}' is not a scope of {} (use Global, Site:<name>{})",
                kind.noun,
                service_hint(kind)
            ));
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_. ".contains(c))
        {
            return Err(format!("'{raw}' is not a valid policy name"));
        }
        (format!("Tag:{name}"), Tag)
    };
    if !kind.scopes.contains(&scope) {
        return Err(format!(
            "{} cannot be created at scope '{canon}'",
            kind.noun
        ));
    }
    Ok(canon)
}

/// The kind whose identity is a SIP URI (Lync's PrimaryUri).
pub const ACCESS_NUMBER: &str = "CsDialInConferencingAccessNumber";

/// A collection member's name: a domain (lower-cased) for the domain lists, a SIP URI
/// (`sip:user@domain`, lower-cased) for dial-in access numbers, otherwise a name.
fn named_identity(kind: &Kind, raw: &str) -> Result<String, String> {
    if kind.noun == ACCESS_NUMBER {
        return confab_store::meetings::normalize_address(raw)
            .map(|a| format!("sip:{a}"))
            .map_err(|_| {
                format!("'{raw}' is not a SIP URI such as sip:dialin@example.test (the access number's PrimaryUri)")
            });
    }
    // a PSTN gateway is named like a host: its FQDN or IP address (v6 too), lower-cased
    let gateway = kind.noun == "CsPstnGateway";
    let domain = kind.noun.ends_with("Domain") || gateway;
    let ok = raw.len() <= 255
        && raw.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || if gateway {
                    "-.:".contains(c)
                } else if domain {
                    "-.".contains(c)
                } else {
                    "-_. ".contains(c)
                }
        })
        && !raw.starts_with(['.', '-'])
        && !raw.ends_with(['.', '-']);
    if !ok {
        return Err(if gateway {
            format!("'{raw}' is not a gateway's host name or IP address")
        } else if domain {
            format!("'{raw}' is not a domain name")
        } else {
            format!("'{raw}' is not a valid name (letters, digits, '-', '_', '.', space)")
        });
    }
    Ok(if domain {
        raw.to_ascii_lowercase()
    } else {
        raw.to_string()
    })
}

fn service_hint(kind: &Kind) -> String {
    kind.scopes
        .iter()
        .filter_map(|s| {
            if let Service(r) = s {
                Some(format!(" or Service:{r}:<pool FQDN>"))
            } else {
                None
            }
        })
        .collect()
}

pub fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` rather than slicing: a multi-byte character across the prefix's end is no match,
    // not a panic
    s.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// Sort key putting Global first, then sites, services and tags.
pub fn scope_rank(identity: &str) -> (u8, String) {
    let r = if identity == "Global" {
        0
    } else if identity.starts_with("Site:") {
        1
    } else if identity.starts_with("Service:") {
        2
    } else {
        3
    };
    (r, identity.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(noun: &str) -> Kind {
        kinds().into_iter().find(|k| k.noun == noun).unwrap()
    }

    #[test]
    fn identities() {
        let m = kind("CsMeetingConfiguration");
        assert_eq!(canonical_identity(&m, "global").unwrap(), "Global");
        assert_eq!(
            canonical_identity(&m, "site:Redmond").unwrap(),
            "Site:Redmond"
        );
        assert_eq!(
            canonical_identity(&m, "service:userserver:pool.example.test").unwrap(),
            "Service:UserServer:pool.example.test"
        );
        assert!(canonical_identity(&m, "service:Registrar:pool")
            .unwrap_err()
            .contains("Service:UserServer"));
        assert!(canonical_identity(&m, "Redmond")
            .unwrap_err()
            .contains("not a scope"));
        assert!(canonical_identity(&m, "site:*")
            .unwrap_err()
            .contains("wildcards"));
        let p = kind("CsConferencingPolicy");
        assert_eq!(
            canonical_identity(&p, "DefaultConferencing").unwrap(),
            "Tag:DefaultConferencing"
        );
        assert_eq!(canonical_identity(&p, "tag:X").unwrap(), "Tag:X");
    }

    #[test]
    fn defaults_follow_lync() {
        let d = kind("CsMeetingConfiguration").defaults();
        assert_eq!(d["PstnCallersBypassLobby"], json!(true));
        assert_eq!(d["DesignateAsPresenter"], json!("Company"));
        let f = kind("CsFileTransferFilterConfiguration").defaults();
        assert!(f["Extensions"].as_array().unwrap().contains(&json!(".exe")));
        assert_eq!(
            kind("CsConferencingConfiguration").defaults()["ClientMediaPortRangeEnabled"],
            json!(false)
        );
        assert_eq!(
            kind("CsClientPolicy").defaults()["DisableRTFIm"],
            Value::Null
        );
    }
}
