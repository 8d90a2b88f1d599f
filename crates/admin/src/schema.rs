//! Lync's configuration objects: their nouns, the scopes they live at, their properties with
//! Lync 2013's names, types and defaults (../shared/reference/lync-2013.md §3).
//!
//! One table drives the generic Get-/Set-/New-/Remove- cmdlets, type checking of values,
//! defaults for objects never written, and the output.

use serde_json::{json, Value};

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

#[derive(Clone, Debug)]
pub struct Prop {
    pub name: &'static str,
    pub ty: PropType,
    pub default: Value,
}

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
}

impl Kind {
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// A document with every property at its default.
    pub fn defaults(&self) -> serde_json::Map<String, Value> {
        self.props
            .iter()
            .map(|p| (p.name.to_string(), p.default.clone()))
            .collect()
    }

    /// "ConferencingPolicy" for CsConferencingPolicy (the -PolicyType of New-CsClonedPolicy).
    pub fn short_name(&self) -> &'static str {
        self.noun.strip_prefix("Cs").unwrap_or(self.noun)
    }
}

fn b(name: &'static str, v: bool) -> Prop {
    Prop {
        name,
        ty: PropType::Bool,
        default: json!(v),
    }
}
fn ob(name: &'static str) -> Prop {
    Prop {
        name,
        ty: PropType::OptBool,
        default: Value::Null,
    }
}
fn int(name: &'static str, v: i64, min: i64, max: i64) -> Prop {
    Prop {
        name,
        ty: PropType::Int { min, max },
        default: json!(v),
    }
}
fn s(name: &'static str, v: &str, max_len: usize) -> Prop {
    Prop {
        name,
        ty: PropType::Str { max_len },
        default: json!(v),
    }
}
fn e(name: &'static str, values: &'static [&'static str], v: &str) -> Prop {
    Prop {
        name,
        ty: PropType::Enum(values),
        default: json!(v),
    }
}
fn list(name: &'static str, v: &[&str]) -> Prop {
    Prop {
        name,
        ty: PropType::StrList,
        default: json!(v),
    }
}

use ScopeKind::*;

const FILE_EXTENSIONS: &[&str] = &[
    ".ade",
    ".adp",
    ".app",
    ".asp",
    ".bas",
    ".bat",
    ".cer",
    ".chm",
    ".cmd",
    ".com",
    ".cpl",
    ".crt",
    ".csh",
    ".exe",
    ".fxp",
    ".grp",
    ".hlp",
    ".hta",
    ".inf",
    ".ins",
    ".isp",
    ".its",
    ".js",
    ".jse",
    ".ksh",
    ".lnk",
    ".mad",
    ".maf",
    ".mag",
    ".mam",
    ".maq",
    ".mar",
    ".mas",
    ".mat",
    ".mau",
    ".mav",
    ".maw",
    ".mda",
    ".mdb",
    ".mde",
    ".mdt",
    ".mdw",
    ".mdz",
    ".msc",
    ".msi",
    ".msp",
    ".mst",
    ".ocx",
    ".ops",
    ".pcd",
    ".pif",
    ".pl",
    ".pnp",
    ".prf",
    ".prg",
    ".pst",
    ".reg",
    ".scf",
    ".scr",
    ".sct",
    ".shb",
    ".shs",
    ".tmp",
    ".url",
    ".vb",
    ".vbe",
    ".vbs",
    ".vsd",
    ".vsmacros",
    ".vss",
    ".vst",
    ".vsw",
    ".ws",
    ".wsc",
    ".wsf",
    ".wsh",
];

const URL_PREFIXES: &[&str] = &[
    "callto:", "file:", "ftp.", "ftp:", "gopher:", "href", "http:", "https:", "ldap:", "mailto:",
    "news:", "nntp:", "sip:", "sips:", "tel:", "telnet:", "www*.",
];

/// Every configuration object confab knows.
pub fn kinds() -> Vec<Kind> {
    let port = |name: &'static str, v: i64| int(name, v, 1024, 65535);
    let range = |name: &'static str, v: i64| int(name, v, 1, 65535);
    vec![
        Kind {
            noun: "CsMeetingConfiguration",
            scopes: &[Global, Site, Service("UserServer")],
            is_policy: false,
            get_set_only: false,
            props: vec![
                b("PstnCallersBypassLobby", true),
                e(
                    "DesignateAsPresenter",
                    &["None", "Company", "Everyone"],
                    "Company",
                ),
                b("AssignedConferenceTypeByDefault", true),
                b("EnableAssignedConferenceType", true),
                b("AdmitAnonymousUsersByDefault", true),
                b("RequireRoomSystemsAuthorization", false),
                b("AllowConferenceRecording", true),
                s("LogoURL", "", 1024),
                s("HelpURL", "", 1024),
                s("LegalURL", "", 1024),
                s("CustomFooterText", "", 1024),
            ],
        },
        Kind {
            noun: "CsConferencingConfiguration",
            scopes: &[Global, Site, Service("ConferencingServer")],
            is_policy: false,
            get_set_only: false,
            props: vec![
                int("MaxContentStorageMb", 500, 50, 1024),
                int("MaxUploadFileSizeMb", 500, 1, 1024),
                s("ContentGracePeriod", "15.00:00:00", 32),
                int("MaxBandwidthPerAppSharingServiceMb", 375, 1, 10000),
                port("ClientAudioPort", 5350),
                range("ClientAudioPortRange", 40),
                port("ClientVideoPort", 5350),
                range("ClientVideoPortRange", 40),
                port("ClientAppSharingPort", 5350),
                range("ClientAppSharingPortRange", 40),
                port("ClientFileTransferPort", 5350),
                range("ClientFileTransferPortRange", 40),
                port("ClientMediaPort", 5350),
                range("ClientMediaPortRange", 40),
                port("ClientSipDynamicPort", 7100),
                range("ClientSipDynamicPortRange", 3),
                b("ClientMediaPortRangeEnabled", false),
            ],
        },
        Kind {
            noun: "CsConferencingPolicy",
            scopes: &[Global, Site, Tag],
            is_policy: true,
            get_set_only: false,
            props: vec![
                b("AllowIPAudio", true),
                b("AllowIPVideo", true),
                b("AllowMultiView", true),
                b("AllowParticipantControl", true),
                b("AllowAnnotations", true),
                b("DisablePowerPointAnnotations", false),
                b("AllowUserToScheduleMeetingsWithAppSharing", true),
                b("AllowNonEnterpriseVoiceUsersToDialOut", false),
                b("AllowAnonymousUsersToDialOut", false),
                b("AllowAnonymousParticipantsInMeetings", true),
                b("AllowExternalUsersToSaveContent", true),
                b("AllowExternalUserControl", false),
                b("AllowExternalUsersToRecordMeeting", false),
                b("AllowPolls", true),
                b("AllowSharedNotes", true),
                b("EnableDialInConferencing", true),
                e(
                    "EnableAppDesktopSharing",
                    &["Desktop", "SingleApplication", "None"],
                    "Desktop",
                ),
                b("AllowConferenceRecording", false),
                b("EnableP2PRecording", false),
                b("EnableFileTransfer", true),
                b("EnableP2PFileTransfer", true),
                b("EnableP2PVideo", true),
                b("AllowLargeMeetings", false),
                b("EnableDataCollaboration", true),
                e("MaxVideoConferenceResolution", &["CIF", "VGA"], "VGA"),
                int("MaxMeetingSize", 250, 2, 1000),
                int("AudioBitRateKb", 200, 20, 200),
                int("VideoBitRateKb", 50000, 1, 50000),
                int("AppSharingBitRateKb", 50000, 1, 50000),
                int("FileTransferBitRateKb", 50000, 1, 50000),
                int("TotalReceiveVideoBitRateKb", 6000, 1, 50000),
                b("EnableMultiViewJoin", true),
            ],
        },
        Kind {
            noun: "CsClientPolicy",
            scopes: &[Global, Site, Tag],
            is_policy: true,
            get_set_only: false,
            props: vec![
                ob("DisableRTFIm"),
                ob("DisableHtmlIm"),
                ob("DisableEmoticons"),
                ob("DisableInkIM"),
                ob("DisableSavingIM"),
                ob("EnableURL"),
                s("IMWarning", "", 256),
                ob("BlockConversationFromFederatedContacts"),
                ob("EnableUnencryptedFileTransfer"),
                ob("EnableAppearOffline"),
                ob("DisableCalendarPresence"),
                ob("DisableFreeBusyInfo"),
                ob("DisableMeetingSubjectAndLocation"),
                ob("DisablePresenceNote"),
                e(
                    "DisplayPhoto",
                    &["NoPhoto", "PhotosFromADOnly", "AllPhotos"],
                    "AllPhotos",
                ),
                int("MaximumNumberOfContacts", 250, 0, 1000),
                int("MaxPhotoSizeKB", 30, 1, 1000),
                e("TracingLevel", &["Off", "Light", "Full"], "Light"),
            ],
        },
        Kind {
            noun: "CsImFilterConfiguration",
            scopes: &[Global, Site],
            is_policy: false,
            get_set_only: false,
            props: vec![
                b("Enabled", true),
                e("Action", &["Allow", "Warn", "Block"], "Allow"),
                list("Prefixes", URL_PREFIXES),
                b("IgnoreLocal", true),
                b("BlockFileExtension", true),
                s("AllowMessage", "", 256),
                s("WarnMessage", "", 256),
            ],
        },
        Kind {
            noun: "CsFileTransferFilterConfiguration",
            scopes: &[Global, Site],
            is_policy: false,
            get_set_only: false,
            props: vec![
                b("Enabled", true),
                e("Action", &["Block", "BlockAll"], "Block"),
                list("Extensions", FILE_EXTENSIONS),
            ],
        },
        Kind {
            noun: "CsWebServiceConfiguration",
            scopes: &[Global, Site, Service("WebServer")],
            is_policy: false,
            get_set_only: false,
            props: vec![
                Prop {
                    name: "TrustedCACerts",
                    ty: PropType::ObjList {
                        key: "Thumbprint",
                        made_by: "New-CsWebTrustedCACertificate",
                    },
                    default: json!([]),
                },
                b("InferCertChainFromSSL", false),
                e(
                    "UseWindowsAuth",
                    &["Negotiate", "NTLM", "None"],
                    "Negotiate",
                ),
                b("UseCertificateAuth", true),
                b("UsePinAuth", true),
                int("MaxGroupSizeToExpand", 100, 1, 100000),
            ],
        },
        Kind {
            noun: "CsExternalAccessPolicy",
            scopes: &[Global, Site, Tag],
            is_policy: true,
            get_set_only: false,
            props: vec![
                b("EnableFederationAccess", false),
                b("EnableXmppAccess", false),
                b("EnablePublicCloudAccess", false),
                b("EnablePublicCloudAudioVideoAccess", false),
                b("EnableOutsideAccess", false),
            ],
        },
        // confab's own: flood and password-guessing defence (Lync's Edge had it built in,
        // without settings). Until an administrator sets it, confab.toml's [defence] applies.
        Kind {
            noun: "CsDefenseConfiguration",
            scopes: &[Global],
            is_policy: false,
            get_set_only: true,
            props: vec![
                b("Enabled", true),
                int("MessagesPerSecond", 1000, 1, 1_000_000),
                int("Burst", 2000, 1, 10_000_000),
                int("BanSeconds", 60, 1, 86_400),
                list("TrustedAddresses", &[]),
                int("MaxAuthFailuresPerUser", 10, 1, 10_000),
                int("MaxAuthFailuresPerAddress", 20, 1, 10_000),
                int("AuthWindowSeconds", 60, 1, 86_400),
                int("AuthRetrySeconds", 2, 0, 86_400),
                int("LockoutSeconds", 30, 1, 86_400),
                int("MaxLockoutSeconds", 900, 1, 604_800),
            ],
        },
        Kind {
            noun: "CsAccessEdgeConfiguration",
            scopes: &[Global],
            is_policy: false,
            get_set_only: true,
            props: vec![
                b("AllowAnonymousUsers", false),
                b("AllowFederatedUsers", false),
                b("AllowOutsideUsers", true),
                b("BeClearingHouse", false),
                b("EnablePartnerDiscovery", false),
                b("EnableArchivingDisclaimer", false),
                b("KeepCrlsUpToDateForPeers", true),
                b("MarkSourceVerifiableOnOutgoingMessages", true),
                int("OutgoingTlsCountForFederatedPartners", 4, 1, 100),
                int("MaxContactsPerDiscoveredPartner", 1000, 1, 100000),
                e(
                    "VerificationLevel",
                    &[
                        "AlwaysVerifiable",
                        "AlwaysUnverifiable",
                        "UseSourceVerification",
                    ],
                    "UseSourceVerification",
                ),
            ],
        },
        Kind {
            noun: "CsAllowedDomain",
            scopes: &[Named],
            is_policy: false,
            get_set_only: false,
            props: vec![
                s("ProxyFqdn", "", 255),
                s("Comment", "", 256),
                b("MarkForMonitoring", false),
            ],
        },
        Kind {
            noun: "CsBlockedDomain",
            scopes: &[Named],
            is_policy: false,
            get_set_only: false,
            props: vec![s("Comment", "", 256)],
        },
        Kind {
            noun: "CsStaticRoutingConfiguration",
            scopes: &[Global, Site, Service("Registrar")],
            is_policy: false,
            get_set_only: false,
            props: vec![Prop {
                name: "Route",
                ty: PropType::ObjList {
                    key: "MatchUri",
                    made_by: "New-CsStaticRoute",
                },
                default: json!([]),
            }],
        },
        // confab's own: Lync needed a third-party product for ethical walls.
        Kind {
            noun: "CsInformationBarrier",
            scopes: &[Named],
            is_policy: false,
            get_set_only: false,
            props: vec![
                list("SegmentA", &[]),
                list("SegmentB", &[]),
                b("Enabled", true),
                s("Description", "", 256),
            ],
        },
    ]
}

/// CsServerApplication properties (a collection keyed `Service:<Role>:<fqdn>/<Name>`).
pub fn server_application_props() -> Vec<Prop> {
    vec![
        s("Uri", "", 1024),
        s("ScriptName", "", 1024),
        b("Enabled", false),
        b("Critical", true),
        int("Priority", -1, -1, 1000),
    ]
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

/// A collection member's name: a domain (lower-cased) for the domain lists, otherwise a name.
fn named_identity(kind: &Kind, raw: &str) -> Result<String, String> {
    let domain = kind.noun.ends_with("Domain");
    let ok = raw.len() <= 255
        && raw.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || if domain {
                    "-.".contains(c)
                } else {
                    "-_. ".contains(c)
                }
        })
        && !raw.starts_with(['.', '-'])
        && !raw.ends_with(['.', '-']);
    if !ok {
        return Err(if domain {
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
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
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
