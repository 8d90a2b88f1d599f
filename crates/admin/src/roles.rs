//! Role-based access control with Lync 2013's built-in roles. A role is a list of cmdlets
//! and scopes; an administrator may run a cmdlet if one of their roles lists it (and, for a
//! site-scoped role, only on that site's objects). Unlike Lync, this holds for every caller:
//! local shell, remote shell and REST alike.

/// Lync Server 2013 cmdlets that roles may list. Those confab does not implement yet are
/// still known, so role definitions and `@{Remove=…}` edits behave as in Lync.
pub const LYNC_CMDLETS: &[&str] = &[
    // users
    "Get-CsUser",
    "Set-CsUser",
    "New-CsUser",
    "Remove-CsUser",
    "Enable-CsUser",
    "Disable-CsUser",
    // confab's own: users' SIP passwords (Lync: Active Directory's)
    "Set-CsUserPassword",
    "Move-CsUser",
    "Get-CsAdUser",
    // admin roles
    "Get-CsAdminRole",
    "New-CsAdminRole",
    "Set-CsAdminRole",
    "Remove-CsAdminRole",
    "Get-CsAdminRoleAssignment",
    // meeting / conferencing
    "Get-CsMeetingConfiguration",
    "New-CsMeetingConfiguration",
    "Set-CsMeetingConfiguration",
    "Remove-CsMeetingConfiguration",
    "Get-CsConferencingConfiguration",
    "New-CsConferencingConfiguration",
    "Set-CsConferencingConfiguration",
    "Remove-CsConferencingConfiguration",
    "Get-CsConferencingPolicy",
    "New-CsConferencingPolicy",
    "Set-CsConferencingPolicy",
    "Remove-CsConferencingPolicy",
    "Grant-CsConferencingPolicy",
    "Get-CsDialInConferencingConfiguration",
    "New-CsDialInConferencingConfiguration",
    "Set-CsDialInConferencingConfiguration",
    "Remove-CsDialInConferencingConfiguration",
    "Get-CsDialInConferencingAccessNumber",
    "New-CsDialInConferencingAccessNumber",
    "Set-CsDialInConferencingAccessNumber",
    "Remove-CsDialInConferencingAccessNumber",
    "Get-CsPinPolicy",
    "New-CsPinPolicy",
    "Set-CsPinPolicy",
    "Remove-CsPinPolicy",
    "Grant-CsPinPolicy",
    // client
    "Get-CsClientPolicy",
    "New-CsClientPolicy",
    "Set-CsClientPolicy",
    "Remove-CsClientPolicy",
    "Grant-CsClientPolicy",
    "Get-CsPrivacyConfiguration",
    "Set-CsPrivacyConfiguration",
    // filters, web services, applications
    "Get-CsImFilterConfiguration",
    "New-CsImFilterConfiguration",
    "Set-CsImFilterConfiguration",
    "Remove-CsImFilterConfiguration",
    "Get-CsFileTransferFilterConfiguration",
    "New-CsFileTransferFilterConfiguration",
    "Set-CsFileTransferFilterConfiguration",
    "Remove-CsFileTransferFilterConfiguration",
    "Get-CsWebServiceConfiguration",
    "New-CsWebServiceConfiguration",
    "Set-CsWebServiceConfiguration",
    "Remove-CsWebServiceConfiguration",
    "New-CsWebTrustedCACertificate",
    "Get-CsServerApplication",
    "New-CsServerApplication",
    "Set-CsServerApplication",
    "Remove-CsServerApplication",
    // external access
    "Get-CsExternalAccessPolicy",
    "New-CsExternalAccessPolicy",
    "Set-CsExternalAccessPolicy",
    "Remove-CsExternalAccessPolicy",
    "Grant-CsExternalAccessPolicy",
    "Get-CsAccessEdgeConfiguration",
    "Set-CsAccessEdgeConfiguration",
    "Get-CsAllowedDomain",
    "New-CsAllowedDomain",
    "Set-CsAllowedDomain",
    "Remove-CsAllowedDomain",
    "Get-CsBlockedDomain",
    "New-CsBlockedDomain",
    "Set-CsBlockedDomain",
    "Remove-CsBlockedDomain",
    // voice
    "Get-CsDialPlan",
    "New-CsDialPlan",
    "Set-CsDialPlan",
    "Remove-CsDialPlan",
    "Grant-CsDialPlan",
    "Get-CsVoiceNormalizationRule",
    "New-CsVoiceNormalizationRule",
    "Set-CsVoiceNormalizationRule",
    "Remove-CsVoiceNormalizationRule",
    "Get-CsVoicePolicy",
    "New-CsVoicePolicy",
    "Set-CsVoicePolicy",
    "Remove-CsVoicePolicy",
    "Grant-CsVoicePolicy",
    "Get-CsVoiceRoute",
    "New-CsVoiceRoute",
    "Set-CsVoiceRoute",
    "Remove-CsVoiceRoute",
    "Get-CsVoiceRoutingPolicy",
    "New-CsVoiceRoutingPolicy",
    "Set-CsVoiceRoutingPolicy",
    "Remove-CsVoiceRoutingPolicy",
    "Grant-CsVoiceRoutingPolicy",
    "New-CsVoiceRegex",
    "Get-CsPstnUsage",
    "Set-CsPstnUsage",
    "Get-CsTrunkConfiguration",
    "New-CsTrunkConfiguration",
    "Set-CsTrunkConfiguration",
    "Remove-CsTrunkConfiguration",
    "Get-CsOutboundTranslationRule",
    "New-CsOutboundTranslationRule",
    "Set-CsOutboundTranslationRule",
    "Remove-CsOutboundTranslationRule",
    // confab's own, in the place of Topology Builder's PSTN gateways
    "Get-CsPstnGateway",
    "New-CsPstnGateway",
    "Set-CsPstnGateway",
    "Remove-CsPstnGateway",
    "Get-CsVoiceTestConfiguration",
    "New-CsVoiceTestConfiguration",
    "Set-CsVoiceTestConfiguration",
    "Remove-CsVoiceTestConfiguration",
    "Test-CsVoiceTestConfiguration",
    // the Test- cmdlets of enterprise voice (issue #17 part 5)
    "Test-CsVoiceNormalizationRule",
    "Test-CsDialPlan",
    "Test-CsVoiceRoute",
    "Test-CsVoicePolicy",
    "Test-CsVoiceUser",
    "Test-CsTrunkConfiguration",
    // hosted voicemail (Lync: Exchange UM; confab: a voicemail server's SIP URI)
    "Get-CsHostedVoicemailPolicy",
    "New-CsHostedVoicemailPolicy",
    "Set-CsHostedVoicemailPolicy",
    "Remove-CsHostedVoicemailPolicy",
    "Grant-CsHostedVoicemailPolicy",
    // confab's own, in the place of SEFAUtil: users' call forwarding
    "Get-CsUserCallForwarding",
    "Set-CsUserCallForwarding",
    // servers
    "Get-CsService",
    "Start-CsWindowsService",
    "Stop-CsWindowsService",
    "Get-CsWindowsService",
    "Test-CsRegistration",
    "Test-CsIM",
    "Test-CsPresence",
    "Test-CsP2PAV",
    "Get-CsSite",
    "Get-CsPool",
    "Get-CsComputer",
    "Get-CsUserPoolInfo",
    // confab's own: a user's registered endpoints, and their live sessions
    "Get-CsUserRegistration",
    "Get-CsUserSession",
    "Get-CsTopology",
    // help desk
    "Lock-CsClientPin",
    "Unlock-CsClientPin",
    "Set-CsClientPin",
    "Get-CsClientPinInfo",
    // archiving
    "Get-CsArchivingConfiguration",
    "Set-CsArchivingConfiguration",
    "Get-CsArchivingPolicy",
    "New-CsArchivingPolicy",
    "Set-CsArchivingPolicy",
    "Remove-CsArchivingPolicy",
    "Grant-CsArchivingPolicy",
    // response groups
    "Get-CsRgsWorkflow",
    "New-CsRgsWorkflow",
    "Set-CsRgsWorkflow",
    "Remove-CsRgsWorkflow",
    "Get-CsRgsQueue",
    "New-CsRgsQueue",
    "Set-CsRgsQueue",
    "Remove-CsRgsQueue",
    "Get-CsRgsAgentGroup",
    "New-CsRgsAgentGroup",
    "Set-CsRgsAgentGroup",
    "Remove-CsRgsAgentGroup",
    // E9-1-1 locations
    "Get-CsLisLocation",
    "Set-CsLisLocation",
    "Remove-CsLisLocation",
    "Get-CsLisSubnet",
    "Set-CsLisSubnet",
    "Remove-CsLisSubnet",
    // persistent chat
    "Get-CsPersistentChatRoom",
    "New-CsPersistentChatRoom",
    "Set-CsPersistentChatRoom",
    "Remove-CsPersistentChatRoom",
    "Get-CsPersistentChatCategory",
    "New-CsPersistentChatCategory",
    "Set-CsPersistentChatCategory",
    "Remove-CsPersistentChatCategory",
    "Get-CsPersistentChatPolicy",
    "Set-CsPersistentChatPolicy",
    // backup
    "Export-CsConfiguration",
    "Import-CsConfiguration",
    "Export-CsUserData",
    "Import-CsUserData",
    // static routes
    "Get-CsStaticRoutingConfiguration",
    "New-CsStaticRoutingConfiguration",
    "Set-CsStaticRoutingConfiguration",
    "Remove-CsStaticRoutingConfiguration",
    "New-CsStaticRoute",
    // simple URLs
    "Get-CsSimpleUrlConfiguration",
    "New-CsSimpleUrlConfiguration",
    "Set-CsSimpleUrlConfiguration",
    "Remove-CsSimpleUrlConfiguration",
    "New-CsSimpleUrl",
    "New-CsSimpleUrlEntry",
    // confab extras
    "Get-CsInformationBarrier",
    "New-CsInformationBarrier",
    "Set-CsInformationBarrier",
    "Remove-CsInformationBarrier",
    "Get-CsAuditLog",
    "New-CsClonedPolicy",
    "Get-CsMeeting",
    "New-CsMeeting",
    "Remove-CsMeeting",
    "Get-CsDefenseConfiguration",
    "Set-CsDefenseConfiguration",
];

/// Cmdlets every authenticated administrator may run: they only shape output.
pub const ALWAYS_ALLOWED: &[&str] = &[
    "Select-Object",
    "Format-List",
    "Format-Table",
    "fl",
    "ft",
    "Get-Help",
    "Get-Command",
    "Where-Object",
    "Sort-Object",
    "Measure-Object",
    // writes only what the caller could read, only into the export folder; audited
    "Export-Csv",
];

pub const BUILTIN_ROLES: &[&str] = &[
    "CsAdministrator",
    "CsUserAdministrator",
    "CsVoiceAdministrator",
    "CsServerAdministrator",
    "CsViewOnlyAdministrator",
    "CsHelpDesk",
    "CsArchivingAdministrator",
    "CsResponseGroupAdministrator",
    "CsResponseGroupManager",
    "CsLocationAdministrator",
    "CsPersistentChatAdministrator",
];

/// What every viewing role may run: the `Get-` cmdlets, except the audit log (which shows
/// every administrator's commands: CsAdministrator only).
const VIEW: &[&str] = &[
    "Get-CsUser",
    "Get-CsAdUser",
    "Get-CsAdminRole",
    "Get-CsAdminRoleAssignment",
    "Get-CsMeetingConfiguration",
    "Get-CsConferencingConfiguration",
    "Get-CsConferencingPolicy",
    "Get-CsDialInConferencingConfiguration",
    "Get-CsDialInConferencingAccessNumber",
    "Get-CsPinPolicy",
    "Get-CsClientPolicy",
    "Get-CsPrivacyConfiguration",
    "Get-CsImFilterConfiguration",
    "Get-CsFileTransferFilterConfiguration",
    "Get-CsWebServiceConfiguration",
    "Get-CsSimpleUrlConfiguration",
    "Get-CsServerApplication",
    "Get-CsExternalAccessPolicy",
    "Get-CsAccessEdgeConfiguration",
    "Get-CsAllowedDomain",
    "Get-CsBlockedDomain",
    "Get-CsDialPlan",
    "Get-CsVoiceNormalizationRule",
    "Get-CsVoicePolicy",
    "Get-CsVoiceRoute",
    "Get-CsVoiceRoutingPolicy",
    "Get-CsPstnUsage",
    "Get-CsTrunkConfiguration",
    "Get-CsOutboundTranslationRule",
    "Get-CsPstnGateway",
    "Get-CsVoiceTestConfiguration",
    "Get-CsHostedVoicemailPolicy",
    "Get-CsUserCallForwarding",
    "Get-CsService",
    "Get-CsWindowsService",
    "Get-CsSite",
    "Get-CsPool",
    "Get-CsComputer",
    "Get-CsUserPoolInfo",
    "Get-CsUserRegistration",
    "Get-CsUserSession",
    "Get-CsTopology",
    "Get-CsClientPinInfo",
    "Get-CsArchivingConfiguration",
    "Get-CsArchivingPolicy",
    "Get-CsRgsWorkflow",
    "Get-CsRgsQueue",
    "Get-CsRgsAgentGroup",
    "Get-CsLisLocation",
    "Get-CsLisSubnet",
    "Get-CsPersistentChatRoom",
    "Get-CsPersistentChatCategory",
    "Get-CsPersistentChatPolicy",
    "Get-CsStaticRoutingConfiguration",
    "Get-CsInformationBarrier",
    "Get-CsDefenseConfiguration",
    "Get-CsMeeting",
];

/// CsUserAdministrator: enable, disable and move users, grant existing policies; no policy
/// edits, no exports.
const USER_ADMIN: &[&str] = &[
    "Set-CsUser",
    // confab's directory: creating and deleting users (Lync: Active Directory, then
    // Enable-CsUser / Disable-CsUser -Identity … and AD's own tools)
    "New-CsUser",
    "Remove-CsUser",
    "Enable-CsUser",
    "Disable-CsUser",
    // confab's: users' SIP passwords (Lync: Active Directory's)
    "Set-CsUserPassword",
    "Move-CsUser",
    "Grant-CsConferencingPolicy",
    "Grant-CsClientPolicy",
    "Grant-CsExternalAccessPolicy",
    "Grant-CsDialPlan",
    "Grant-CsVoicePolicy",
    "Grant-CsVoiceRoutingPolicy",
    "Grant-CsArchivingPolicy",
    "Grant-CsPinPolicy",
    "Grant-CsHostedVoicemailPolicy",
    // users' call forwarding (confab's, in the place of SEFAUtil)
    "Set-CsUserCallForwarding",
    // users' dial-in PINs, as in Lync
    "Set-CsClientPin",
    "Lock-CsClientPin",
    "Unlock-CsClientPin",
    // meetings are their organizers' (users'): made and removed like other per-user
    // changes; CsAdministrator has them all, the viewing roles Get-CsMeeting
    "New-CsMeeting",
    "Remove-CsMeeting",
];

/// CsVoiceAdministrator: voice settings and policies, and Response Group.
const VOICE_ADMIN: &[&str] = &[
    "New-CsDialPlan",
    "Set-CsDialPlan",
    "Remove-CsDialPlan",
    "Grant-CsDialPlan",
    "New-CsVoiceNormalizationRule",
    "Set-CsVoiceNormalizationRule",
    "Remove-CsVoiceNormalizationRule",
    "New-CsVoicePolicy",
    "Set-CsVoicePolicy",
    "Remove-CsVoicePolicy",
    "Grant-CsVoicePolicy",
    "New-CsVoiceRoute",
    "Set-CsVoiceRoute",
    "Remove-CsVoiceRoute",
    "New-CsVoiceRoutingPolicy",
    "Set-CsVoiceRoutingPolicy",
    "Remove-CsVoiceRoutingPolicy",
    "Grant-CsVoiceRoutingPolicy",
    "New-CsVoiceRegex",
    "Set-CsPstnUsage",
    "New-CsTrunkConfiguration",
    "Set-CsTrunkConfiguration",
    "Remove-CsTrunkConfiguration",
    "New-CsOutboundTranslationRule",
    "Set-CsOutboundTranslationRule",
    "Remove-CsOutboundTranslationRule",
    "New-CsPstnGateway",
    "Set-CsPstnGateway",
    "Remove-CsPstnGateway",
    "New-CsVoiceTestConfiguration",
    "Set-CsVoiceTestConfiguration",
    "Remove-CsVoiceTestConfiguration",
    "Test-CsVoiceTestConfiguration",
    "Test-CsVoiceNormalizationRule",
    "Test-CsDialPlan",
    "Test-CsVoiceRoute",
    "Test-CsVoicePolicy",
    "Test-CsVoiceUser",
    "Test-CsTrunkConfiguration",
    "New-CsHostedVoicemailPolicy",
    "Set-CsHostedVoicemailPolicy",
    "Remove-CsHostedVoicemailPolicy",
    "Grant-CsHostedVoicemailPolicy",
    "Set-CsUserCallForwarding",
];

/// The troubleshooting cmdlets (CsServerAdministrator, CsHelpDesk).
const TESTS: &[&str] = &[
    "Test-CsRegistration",
    "Test-CsIM",
    "Test-CsPresence",
    "Test-CsP2PAV",
    "Test-CsVoiceTestConfiguration",
    "Test-CsVoiceNormalizationRule",
    "Test-CsDialPlan",
    "Test-CsVoiceRoute",
    "Test-CsVoicePolicy",
    "Test-CsVoiceUser",
    "Test-CsTrunkConfiguration",
];

/// CsServerAdministrator: start and stop services, and the simple URLs (plus viewing and
/// [`TESTS`]).
const SERVER_ADMIN: &[&str] = &[
    "Start-CsWindowsService",
    "Stop-CsWindowsService",
    "Set-CsSimpleUrlConfiguration",
    "New-CsSimpleUrl",
    "New-CsSimpleUrlEntry",
];

/// CsHelpDesk: client PINs (plus viewing and [`TESTS`]).
const HELP_DESK: &[&str] = &["Lock-CsClientPin", "Unlock-CsClientPin", "Set-CsClientPin"];

/// CsArchivingAdministrator: archiving configuration and policies.
const ARCHIVING_ADMIN: &[&str] = &[
    "Set-CsArchivingConfiguration",
    "New-CsArchivingPolicy",
    "Set-CsArchivingPolicy",
    "Remove-CsArchivingPolicy",
    "Grant-CsArchivingPolicy",
];

/// CsResponseGroupAdministrator: the Response Group application.
const RGS_ADMIN: &[&str] = &[
    "Get-CsRgsWorkflow",
    "New-CsRgsWorkflow",
    "Set-CsRgsWorkflow",
    "Remove-CsRgsWorkflow",
    "Get-CsRgsQueue",
    "New-CsRgsQueue",
    "Set-CsRgsQueue",
    "Remove-CsRgsQueue",
    "Get-CsRgsAgentGroup",
    "New-CsRgsAgentGroup",
    "Set-CsRgsAgentGroup",
    "Remove-CsRgsAgentGroup",
];

/// CsResponseGroupManager: the workflows it manages, without creating or removing any.
const RGS_MANAGER: &[&str] = &[
    "Get-CsRgsWorkflow",
    "Set-CsRgsWorkflow",
    "Get-CsRgsQueue",
    "Set-CsRgsQueue",
    "Get-CsRgsAgentGroup",
    "Set-CsRgsAgentGroup",
];

/// CsLocationAdministrator: E9-1-1 locations and network identifiers.
const LOCATION_ADMIN: &[&str] = &[
    "Get-CsLisLocation",
    "Set-CsLisLocation",
    "Remove-CsLisLocation",
    "Get-CsLisSubnet",
    "Set-CsLisSubnet",
    "Remove-CsLisSubnet",
];

/// CsPersistentChatAdministrator: Persistent Chat rooms, categories and policy.
const PERSISTENT_CHAT_ADMIN: &[&str] = &[
    "Get-CsPersistentChatRoom",
    "New-CsPersistentChatRoom",
    "Set-CsPersistentChatRoom",
    "Remove-CsPersistentChatRoom",
    "Get-CsPersistentChatCategory",
    "New-CsPersistentChatCategory",
    "Set-CsPersistentChatCategory",
    "Remove-CsPersistentChatCategory",
    "Get-CsPersistentChatPolicy",
    "Set-CsPersistentChatPolicy",
];

/// Cmdlets only CsAdministrator may run — or a custom role cloned from it whose scopes are
/// Global — whatever a role's cmdlet list says: their output carries password equivalents
/// (every user's HA1 hashes), they replace users' credentials, or they define roles (which
/// could grant anything).
pub const ADMINISTRATOR_ONLY: &[&str] = &[
    "Export-CsUserData",
    "Import-CsUserData",
    "Import-CsConfiguration",
    "New-CsAdminRole",
    "Set-CsAdminRole",
    "Remove-CsAdminRole",
];

/// Whether `cmdlet` is one of [`ADMINISTRATOR_ONLY`].
pub fn administrator_only(cmdlet: &str) -> bool {
    ADMINISTRATOR_ONLY
        .iter()
        .any(|c| c.eq_ignore_ascii_case(cmdlet))
}

/// The cmdlet list of a built-in role: explicit lists after Lync 2013's documented roles
/// (see the reference notes), never a pattern over names.
pub fn builtin_cmdlets(role: &str) -> Option<Vec<String>> {
    let role = BUILTIN_ROLES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(role))?;
    let parts: &[&[&str]] = match *role {
        "CsAdministrator" => &[LYNC_CMDLETS],
        "CsUserAdministrator" => &[VIEW, USER_ADMIN],
        "CsVoiceAdministrator" => &[VIEW, VOICE_ADMIN, RGS_ADMIN],
        "CsServerAdministrator" => &[VIEW, TESTS, SERVER_ADMIN],
        "CsViewOnlyAdministrator" => &[VIEW],
        "CsHelpDesk" => &[VIEW, TESTS, HELP_DESK],
        "CsArchivingAdministrator" => &[VIEW, ARCHIVING_ADMIN],
        "CsResponseGroupAdministrator" => &[RGS_ADMIN],
        "CsResponseGroupManager" => &[RGS_MANAGER],
        "CsLocationAdministrator" => &[LOCATION_ADMIN],
        "CsPersistentChatAdministrator" => &[PERSISTENT_CHAT_ADMIN],
        _ => return None,
    };
    let mut out: Vec<String> = vec![];
    for c in parts.iter().flat_map(|p| p.iter()) {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    Some(out)
}

/// The canonical spelling of a cmdlet Lync knows (case-insensitive lookup).
pub fn canonical_cmdlet(name: &str) -> Option<&'static str> {
    LYNC_CMDLETS
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(name))
}

/// A role as the access check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub identity: String,
    pub template: Option<String>,
    pub cmdlets: Vec<String>,
    /// "Global" or "Site:<name>" entries.
    pub config_scopes: Vec<String>,
    pub user_scopes: Vec<String>,
    pub is_standard: bool,
}

impl Role {
    pub fn builtin(name: &str) -> Option<Role> {
        let identity = BUILTIN_ROLES
            .iter()
            .find(|r| r.eq_ignore_ascii_case(name))?;
        Some(Role {
            identity: identity.to_string(),
            template: None,
            cmdlets: builtin_cmdlets(identity)?,
            config_scopes: vec!["Global".into()],
            user_scopes: vec!["Global".into()],
            is_standard: true,
        })
    }

    pub fn allows(&self, cmdlet: &str) -> bool {
        self.cmdlets.iter().any(|c| c.eq_ignore_ascii_case(cmdlet))
    }

    /// Whether an object at `identity` ("Global", "Site:X", "Service:…", "Tag:…", or a rule
    /// `<scope>/<Name>`) is within this role's configuration scopes: a Global scope covers
    /// everything, a `Site:X` scope the object whose scope is that whole identity (ignoring
    /// ASCII case) — `Site:Redmond` does not cover `Site:Redmond2`.
    pub fn covers(&self, identity: &str) -> bool {
        // a rule's identity is its scope, a slash and its name
        let scope = identity.split_once('/').map_or(identity, |(s, _)| s);
        self.config_scopes
            .iter()
            .any(|s| s.eq_ignore_ascii_case("global") || s.eq_ignore_ascii_case(scope))
    }

    /// Whether a user in the organisational unit `ou` (`None`: in none) is within this
    /// role's user scopes: a Global scope covers every user, `OU:<dn>` the users in that OU
    /// or below it (whole DN components, ignoring case; see [`confab_store::ou_within`]).
    pub fn covers_user(&self, ou: Option<&str>) -> bool {
        self.user_scopes.iter().any(|s| {
            s.eq_ignore_ascii_case("global")
                || match (crate::schema::strip_ci(s, "ou:"), ou) {
                    (Some(scope), Some(ou)) => confab_store::ou_within(ou, scope),
                    _ => false,
                }
        })
    }

    /// Whether this role may run the [`ADMINISTRATOR_ONLY`] cmdlets it lists: the built-in
    /// CsAdministrator, or a custom role cloned from it that is not narrowed by any scope.
    pub fn is_full_administrator(&self) -> bool {
        let unscoped = |scopes: &[String]| scopes.iter().any(|s| s.eq_ignore_ascii_case("global"));
        let cloned_from_admin = match (&self.template, self.is_standard) {
            (_, true) => self.identity == "CsAdministrator",
            (Some(t), false) => t.eq_ignore_ascii_case("CsAdministrator"),
            (None, false) => false,
        };
        cloned_from_admin && unscoped(&self.config_scopes) && unscoped(&self.user_scopes)
    }

    /// Whether this role lets its holder run `cmdlet` at all (scopes aside): it lists it,
    /// and for an [`ADMINISTRATOR_ONLY`] cmdlet it is a full administrator.
    pub fn permits(&self, cmdlet: &str) -> bool {
        self.allows(cmdlet) && (!administrator_only(cmdlet) || self.is_full_administrator())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_have_lyncs_shape() {
        let view = Role::builtin("csviewonlyadministrator").unwrap();
        assert!(view.allows("get-csuser") && view.allows("Get-CsVoiceRoutingPolicy"));
        assert!(!view.allows("Set-CsUser"));
        let users = Role::builtin("CsUserAdministrator").unwrap();
        assert!(users.allows("Set-CsUser") && users.allows("Grant-CsClientPolicy"));
        assert!(
            !users.allows("Set-CsClientPolicy"),
            "may grant policies, not edit them"
        );
        assert!(Role::builtin("CsAdministrator")
            .unwrap()
            .allows("New-CsAdminRole"));
        assert_eq!(BUILTIN_ROLES.len(), 11);
        for r in BUILTIN_ROLES {
            assert!(!builtin_cmdlets(r).unwrap().is_empty(), "{r}");
        }
    }

    /// Every name in every list is a cmdlet Lync knows, spelled canonically, once; and the
    /// substring accidents of the old rules are gone.
    #[test]
    fn builtin_lists_are_explicit_and_known() {
        for r in BUILTIN_ROLES {
            let list = builtin_cmdlets(r).unwrap();
            for (i, c) in list.iter().enumerate() {
                assert_eq!(canonical_cmdlet(c), Some(c.as_str()), "{r}: {c}");
                assert!(!list[..i].contains(c), "{r}: {c} twice");
            }
        }
        assert_eq!(
            builtin_cmdlets("CsAdministrator").unwrap().len(),
            LYNC_CMDLETS.len()
        );
        let users = Role::builtin("CsUserAdministrator").unwrap();
        for never in [
            "Export-CsUserData",
            "Import-CsUserData",
            "Get-CsAuditLog",
            "New-CsAdminRole",
        ] {
            assert!(!users.allows(never), "{never}");
        }
        for r in BUILTIN_ROLES.iter().filter(|r| **r != "CsAdministrator") {
            let role = Role::builtin(r).unwrap();
            for c in ADMINISTRATOR_ONLY {
                assert!(!role.allows(c), "{r} lists {c}");
            }
        }
        assert!(!Role::builtin("CsResponseGroupManager")
            .unwrap()
            .allows("New-CsRgsWorkflow"));
    }

    #[test]
    fn administrator_only_cmdlets_need_an_unscoped_administrator() {
        let admin = Role::builtin("CsAdministrator").unwrap();
        assert!(admin.permits("Export-CsUserData"));
        let mut clone = admin.clone();
        clone.identity = "MyAdmins".into();
        clone.is_standard = false;
        clone.template = Some("CsAdministrator".into());
        assert!(clone.permits("Export-CsUserData"));
        let mut site = clone.clone();
        site.config_scopes = vec!["Site:Redmond".into()];
        assert!(!site.permits("Export-CsUserData") && site.permits("Set-CsUser"));
        let mut ou = clone.clone();
        ou.user_scopes = vec!["OU:OU=Sales,DC=x".into()];
        assert!(!ou.permits("Export-CsUserData"));
        let mut viewer = Role::builtin("CsViewOnlyAdministrator").unwrap();
        viewer.identity = "Exporter".into();
        viewer.is_standard = false;
        viewer.template = Some("CsViewOnlyAdministrator".into());
        viewer.cmdlets.push("Export-CsUserData".into());
        assert!(viewer.allows("Export-CsUserData") && !viewer.permits("Export-CsUserData"));
    }

    #[test]
    fn scopes() {
        let mut r = Role::builtin("CsAdministrator").unwrap();
        r.config_scopes = vec!["Site:Redmond".into()];
        assert!(r.covers("site:redmond") && !r.covers("Global") && !r.covers("Site:Dublin"));
        assert!(!r.covers("Site:Redmond2"), "whole identities, not prefixes");
        assert!(!r.covers("Site:Redmon"));
        assert!(r.covers("Site:Redmond/Rule1") && !r.covers("Site:Redmond2/Rule1"));
        // multi-byte names neither panic nor match by accident
        r.config_scopes = vec!["Site:Zürich".into()];
        for id in [
            "Site:Zü",
            "Site:Z",
            "Site:Zürich2",
            "Sitë",
            "é",
            "Site:Züriché",
        ] {
            assert!(!r.covers(id), "{id}");
        }
        assert!(r.covers("Site:Zürich"));
        r.config_scopes = vec!["Site:Ré".into()];
        assert!(!r.covers("Site:R"));
    }

    #[test]
    fn user_scopes() {
        let mut r = Role::builtin("CsUserAdministrator").unwrap();
        assert!(r.covers_user(None) && r.covers_user(Some("OU=Sales,DC=x")));
        r.user_scopes = vec!["OU:OU=Sales,DC=example,DC=test".into()];
        assert!(r.covers_user(Some("OU=Sales,DC=example,DC=test")));
        assert!(r.covers_user(Some("OU=EMEA,ou=sales,DC=Example,DC=test")));
        assert!(!r.covers_user(Some("OU=XSales,DC=example,DC=test")));
        assert!(!r.covers_user(Some("DC=example,DC=test")));
        assert!(!r.covers_user(None), "a user in no OU is in no OU scope");
    }
}
