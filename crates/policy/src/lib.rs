//! confab's configuration documents: one typed definition of each, shared by the admin
//! shell (which validates, stores and prints them) and the server (which enforces them).
//!
//! Every Lync document is a serde struct in [`docs`] whose fields carry Lync 2013's names
//! (../shared/reference/lync-2013.md §3) and whose `Default` is Lync's default, with a
//! table ([`DocDef`]) giving each property's type and range, the scopes the document may
//! live at, and whether confab enforces the property ([`Enforcement`]). Both sides read
//! these, so the admin shell's defaults and the server's cannot drift apart, and no
//! setting is silently inert: a property the server does not act on says so
//! (`Get-Help`, and a warning when it is set).
//!
//! Documents are stored as JSON objects keyed by those names; [`Document::from_body`]
//! reads one, falling back to the default for a property that does not parse (and naming
//! it), and [`effective`] picks the document in force for a server from its placement
//! (Service:<Role>:<pool> over Site:<site> over Global, as Lync resolves them).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The scopes a document may live at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    Global,
    Site,
    /// `Service:<Role>:<fqdn>` with the given role (e.g. "UserServer").
    Service(&'static str),
    /// Per-user policies: `Tag:<Name>` (written as just `<Name>` by administrators).
    Tag,
    /// Members of a collection named by a free identifier, e.g. a domain (CsAllowedDomain).
    Named,
}

/// A property's type, with the bounds the admin shell checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropType {
    Bool,
    /// A boolean that may be unset ($null: "the client decides"), as in CsClientPolicy.
    OptBool,
    Int {
        min: i64,
        max: i64,
    },
    Str {
        max_len: usize,
    },
    Enum(&'static [&'static str]),
    StrList,
    /// A list of objects made by a New- cmdlet (TrustedCACerts by New-CsWebTrustedCACertificate,
    /// Route by New-CsStaticRoute); `key` names the field that identifies an entry.
    ObjList {
        key: &'static str,
        made_by: &'static str,
    },
}

/// Whether confab acts on a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// The server enforces it; the note says where and how.
    Enforced(&'static str),
    /// Stored and shown, but confab does nothing with it yet; the note says why.
    NotEnforced(&'static str),
    /// Describes the object (a comment, a description): nothing to enforce.
    Informational,
}

impl Enforcement {
    pub fn is_enforced(&self) -> bool {
        !matches!(self, Enforcement::NotEnforced(_))
    }

    pub fn note(&self) -> &'static str {
        match self {
            Enforcement::Enforced(n) | Enforcement::NotEnforced(n) => n,
            Enforcement::Informational => "describes the object",
        }
    }
}

/// One property of a document.
#[derive(Clone, Copy, Debug)]
pub struct PropDef {
    /// Lync's name, e.g. "PstnCallersBypassLobby".
    pub name: &'static str,
    pub ty: PropType,
    pub enforcement: Enforcement,
}

/// One kind of document: its noun, scopes, properties and defaults.
#[derive(Debug)]
pub struct DocDef {
    /// The noun of the cmdlets, e.g. "CsMeetingConfiguration".
    pub noun: &'static str,
    pub scopes: &'static [ScopeKind],
    /// Policies (Tag: scope, Grant-Cs…Policy, clonable) rather than settings.
    pub is_policy: bool,
    /// Only Get- and Set- exist (a single global object such as CsAccessEdgeConfiguration).
    pub get_set_only: bool,
    /// Whether the server reads documents of this kind at all (for a collection such as
    /// CsBlockedDomain, a member's existence is what is enforced).
    pub read_by_server: bool,
    pub props: &'static [PropDef],
    defaults: fn() -> Map<String, Value>,
    unreadable: fn(&Map<String, Value>) -> Vec<String>,
}

impl DocDef {
    pub fn prop(&self, name: &str) -> Option<&'static PropDef> {
        self.props
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// A document with every property at its default (the typed struct's `Default`).
    pub fn defaults(&self) -> Map<String, Value> {
        (self.defaults)()
    }

    /// The properties of `body` the typed struct cannot read (a value of the wrong type):
    /// what the admin shell stores must read back, in the server, exactly as written.
    pub fn unreadable(&self, body: &Map<String, Value>) -> Vec<String> {
        (self.unreadable)(body)
    }

    /// The default of one property.
    pub fn default_of(&self, name: &str) -> Value {
        self.defaults().remove(name).unwrap_or(Value::Null)
    }

    /// Properties confab does not act on yet.
    pub fn not_enforced(&self) -> impl Iterator<Item = &'static PropDef> {
        self.props.iter().filter(|p| !p.enforcement.is_enforced())
    }

    /// Whether the server reads this document at all.
    pub fn is_enforced(&self) -> bool {
        self.read_by_server
    }
    /// "ConferencingPolicy" for CsConferencingPolicy (the -PolicyType of New-CsClonedPolicy,
    /// and the key of a user's assignment).
    pub fn short_name(&self) -> &'static str {
        self.noun.strip_prefix("Cs").unwrap_or(self.noun)
    }
}

/// A configuration document with its typed definition.
pub trait Document: Serialize + DeserializeOwned + Default + Clone {
    const DEF: &'static DocDef;

    /// Reads a stored body. Unknown keys are ignored; a property whose value does not fit
    /// its type takes its default and is named in the second value.
    fn from_body(body: &Map<String, Value>) -> (Self, Vec<String>) {
        if let Ok(t) = serde_json::from_value(Value::Object(body.clone())) {
            return (t, vec![]);
        }
        let mut good = Map::new();
        let mut bad = vec![];
        for (k, v) in body {
            let one: Map<String, Value> = [(k.clone(), v.clone())].into_iter().collect();
            if serde_json::from_value::<Self>(Value::Object(one)).is_ok() {
                good.insert(k.clone(), v.clone());
            } else {
                bad.push(k.clone());
            }
        }
        (
            serde_json::from_value(Value::Object(good)).unwrap_or_default(),
            bad,
        )
    }

    /// The body to store.
    fn to_body(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

fn defaults_of<T: Document>() -> Map<String, Value> {
    T::default().to_body()
}

fn unreadable_of<T: Document>(body: &Map<String, Value>) -> Vec<String> {
    T::from_body(body).1
}

/// Declares a document: the serde struct (fields renamed to Lync's names, `Default` =
/// Lync's defaults) and its [`DocDef`] table, from one list.
macro_rules! document {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $noun:literal {
            scopes: [$($scope:expr),* $(,)?],
            policy: $policy:expr,
            get_set_only: $gso:expr,
            read_by_server: $read:expr $(,)?
        }
        $(
            $(#[$fmeta:meta])*
            $field:ident : $ty:ty = $default:expr => $lync:literal, $pty:expr, $enf:expr;
        )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $lync)]
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $( $field: $default, )*
                }
            }
        }

        impl $crate::Document for $name {
            const DEF: &'static $crate::DocDef = &$crate::DocDef {
                noun: $noun,
                scopes: &[$($scope),*],
                is_policy: $policy,
                get_set_only: $gso,
                read_by_server: $read,
                props: &[
                    $( $crate::PropDef { name: $lync, ty: $pty, enforcement: $enf }, )*
                ],
                defaults: $crate::defaults_of::<$name>,
                unreadable: $crate::unreadable_of::<$name>,
            };
        }
    };
}

/// Declares an enumerated property type: variants spelled as Lync spells the values.
macro_rules! lync_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($v:ident),+ $(,)? } default $d:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum $name { $($v),+ }

        impl $name {
            /// The values, as the admin shell accepts and prints them.
            pub const VALUES: &'static [&'static str] = &[$(stringify!($v)),+];
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$d
            }
        }
    };
}

pub mod docs;
pub mod simple_url;

pub use docs::*;

/// Every document kind an administrator configures with the generic cmdlets, in the order
/// `Get-Help` lists them.
pub fn definitions() -> &'static [&'static DocDef] {
    static DEFS: [&DocDef; 25] = [
        MeetingConfiguration::DEF,
        ConferencingConfiguration::DEF,
        ConferencingPolicy::DEF,
        ClientPolicy::DEF,
        ImFilterConfiguration::DEF,
        FileTransferFilterConfiguration::DEF,
        WebServiceConfiguration::DEF,
        SimpleUrlConfiguration::DEF,
        ExternalAccessPolicy::DEF,
        DefenseConfiguration::DEF,
        AccessEdgeConfiguration::DEF,
        AllowedDomain::DEF,
        BlockedDomain::DEF,
        StaticRoutingConfiguration::DEF,
        InformationBarrier::DEF,
        DialInConferencingConfiguration::DEF,
        PinPolicy::DEF,
        DialPlan::DEF,
        DialInConferencingAccessNumber::DEF,
        PstnUsage::DEF,
        VoicePolicy::DEF,
        VoiceRoute::DEF,
        TrunkConfiguration::DEF,
        PstnGateway::DEF,
        HostedVoicemailPolicy::DEF,
    ];
    &DEFS
}

/// The definition of a noun (case-insensitive), including CsServerApplication.
pub fn definition(noun: &str) -> Option<&'static DocDef> {
    definitions()
        .iter()
        .copied()
        .chain([ServerApplication::DEF])
        .find(|d| d.noun.eq_ignore_ascii_case(noun))
}

/// The scope of a stored (canonical) identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    Global,
    Site(&'a str),
    Service {
        role: &'a str,
        fqdn: &'a str,
    },
    Tag(&'a str),
    /// A collection member (a domain, a barrier name).
    Named(&'a str),
}

impl<'a> Scope<'a> {
    pub fn of(identity: &'a str) -> Scope<'a> {
        if identity.eq_ignore_ascii_case("Global") {
            return Scope::Global;
        }
        if let Some(site) = strip_ci(identity, "Site:") {
            return Scope::Site(site);
        }
        if let Some(rest) = strip_ci(identity, "Service:") {
            if let Some((role, fqdn)) = rest.split_once(':') {
                // a server application's identity goes on with /<Name>
                let fqdn = fqdn.split('/').next().unwrap_or(fqdn);
                return Scope::Service { role, fqdn };
            }
        }
        if let Some(tag) = strip_ci(identity, "Tag:") {
            return Scope::Tag(tag);
        }
        Scope::Named(identity)
    }
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Where a server stands in the topology: its site and its pool (the FQDN of `Service:`
/// scopes). Documents at other sites or services are not in force on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub site: Option<String>,
    pub pool: Option<String>,
}

impl Placement {
    /// How specific a document at `identity` is for this server: Some(2) for its service,
    /// Some(1) for its site, Some(0) for Global, None when it is not in force here (another
    /// site or pool, a per-user policy, a collection member).
    pub fn rank(&self, identity: &str, def: &DocDef) -> Option<u8> {
        let eq =
            |a: &str, b: &Option<String>| b.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(a));
        match Scope::of(identity) {
            Scope::Global => Some(0),
            Scope::Site(s) if eq(s, &self.site) && def.scopes.contains(&ScopeKind::Site) => Some(1),
            Scope::Service { role, fqdn }
                if eq(fqdn, &self.pool)
                    && def.scopes.iter().any(
                        |k| matches!(k, ScopeKind::Service(r) if r.eq_ignore_ascii_case(role)),
                    ) =>
            {
                Some(2)
            }
            _ => None,
        }
    }
}

/// The document in force for a server at `at` among `docs` (identity, document): the most
/// specific of Service:<Role>:<pool>, Site:<site> and Global. None: no document applies
/// (the defaults do).
pub fn effective<'d, T>(def: &DocDef, docs: &'d [(String, T)], at: &Placement) -> Option<&'d T> {
    docs.iter()
        .filter_map(|(id, d)| at.rank(id, def).map(|r| (r, d)))
        .max_by_key(|(r, _)| *r)
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests;
