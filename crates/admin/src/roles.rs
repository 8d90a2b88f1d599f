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
    "Enable-CsUser",
    "Disable-CsUser",
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
    "Set-CsDialInConferencingConfiguration",
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
    "Get-CsPstnUsage",
    "Set-CsPstnUsage",
    "Get-CsTrunkConfiguration",
    "New-CsTrunkConfiguration",
    "Set-CsTrunkConfiguration",
    "Remove-CsTrunkConfiguration",
    "Get-CsVoiceTestConfiguration",
    "New-CsVoiceTestConfiguration",
    "Set-CsVoiceTestConfiguration",
    "Remove-CsVoiceTestConfiguration",
    "Test-CsVoiceTestConfiguration",
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
    // confab extras
    "Get-CsInformationBarrier",
    "New-CsInformationBarrier",
    "Set-CsInformationBarrier",
    "Remove-CsInformationBarrier",
    "Get-CsAuditLog",
    "New-CsClonedPolicy",
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
    "Where-Object",
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

fn verb(c: &str) -> &str {
    c.split('-').next().unwrap_or("")
}

fn has(c: &str, part: &str) -> bool {
    c.to_ascii_lowercase().contains(&part.to_ascii_lowercase())
}

/// The cmdlet list of a built-in role (Lync's documented intent; see the reference notes).
pub fn builtin_cmdlets(role: &str) -> Option<Vec<String>> {
    let role = BUILTIN_ROLES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(role))?;
    let pick = |f: &dyn Fn(&str) -> bool| {
        LYNC_CMDLETS
            .iter()
            .filter(|c| f(c))
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    };
    let get = |c: &str| verb(c) == "Get";
    let voice = |c: &str| {
        [
            "DialPlan",
            "VoiceNormalization",
            "VoicePolicy",
            "VoiceRoute",
            "VoiceRouting",
            "PstnUsage",
            "Trunk",
            "VoiceTest",
        ]
        .iter()
        .any(|p| has(c, p))
    };
    Some(match *role {
        "CsAdministrator" => pick(&|_| true),
        "CsUserAdministrator" => {
            pick(&|c| get(c) || has(c, "-CsUser") || verb(c) == "Grant" || c == "Move-CsUser")
        }
        "CsVoiceAdministrator" => pick(&|c| get(c) || voice(c) || has(c, "CsRgs")),
        "CsServerAdministrator" => {
            pick(&|c| get(c) || verb(c) == "Test" || has(c, "WindowsService"))
        }
        "CsViewOnlyAdministrator" => pick(&|c| get(c) && c != "Get-CsAuditLog"),
        "CsHelpDesk" => {
            pick(&|c| (get(c) && c != "Get-CsAuditLog") || verb(c) == "Test" || has(c, "ClientPin"))
        }
        "CsArchivingAdministrator" => pick(&|c| get(c) || has(c, "Archiving")),
        "CsResponseGroupAdministrator" => pick(&|c| has(c, "CsRgs")),
        "CsResponseGroupManager" => {
            pick(&|c| has(c, "CsRgs") && !c.starts_with("New-") && !c.starts_with("Remove-"))
        }
        "CsLocationAdministrator" => pick(&|c| has(c, "CsLis")),
        "CsPersistentChatAdministrator" => pick(&|c| has(c, "PersistentChat")),
        _ => unreachable!(),
    })
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

    /// Whether an object at `identity` ("Global", "Site:X", "Service:…", "Tag:…") is within
    /// this role's configuration scopes.
    pub fn covers(&self, identity: &str) -> bool {
        self.config_scopes.iter().any(|s| {
            s.eq_ignore_ascii_case("global")
                || (s.len() <= identity.len() && identity[..s.len()].eq_ignore_ascii_case(s))
        })
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

    #[test]
    fn scopes() {
        let mut r = Role::builtin("CsAdministrator").unwrap();
        r.config_scopes = vec!["Site:Redmond".into()];
        assert!(r.covers("site:redmond") && !r.covers("Global") && !r.covers("Site:Dublin"));
    }
}
