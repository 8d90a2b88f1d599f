//! The documents, with Lync 2013's names, types, defaults and scopes
//! (../shared/reference/lync-2013.md §3), and for each property whether confab enforces it.
//!
//! Mark a property `Enforced` only when the server really acts on it (name the place);
//! everything else is `NotEnforced` with the reason, so `Get-Help` and the warnings of
//! `Set-`/`New-` tell administrators the truth.

use crate::Enforcement::{Enforced, Informational, NotEnforced};
use crate::PropType::{self, Bool, Enum, Int, ObjList, OptBool, Str, StrList};
use crate::ScopeKind::{Global, Named, Service, Site, Tag};
use serde::{Deserialize, Serialize};

const fn int(min: i64, max: i64) -> PropType {
    Int { min, max }
}
const fn text(max_len: usize) -> PropType {
    Str { max_len }
}
const PORT: PropType = int(1024, 65535);
const RANGE: PropType = int(1, 65535);

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const NO_CONTENT: crate::Enforcement = NotEnforced(
    "confab's meetings carry audio and IM only: no content, sharing, whiteboard, polls or notes yet",
);
const NO_VIDEO: crate::Enforcement =
    NotEnforced("confab's meetings carry audio only: the MCU mixes no video");
const NO_RECORDING: crate::Enforcement = NotEnforced("confab does not record meetings or calls");
const NO_PROVISIONING: crate::Enforcement = NotEnforced(
    "a client setting: confab does not provision clients (no in-band provisioning) yet",
);
const NO_WEB: crate::Enforcement = NotEnforced("confab has no web services (Lync's IIS site) yet");

/// Lync's default IM filter prefixes.
pub const URL_PREFIXES: &[&str] = &[
    "callto:", "file:", "ftp.", "ftp:", "gopher:", "href", "http:", "https:", "ldap:", "mailto:",
    "news:", "nntp:", "sip:", "sips:", "tel:", "telnet:", "www*.",
];

/// Lync's default blocked file extensions.
pub const FILE_EXTENSIONS: &[&str] = &[
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

// ----- meetings and conferencing (partly enforced: the rules of meeting creation) --------------------------------------------

lync_enum! {
    pub enum DesignateAsPresenter { None, Company, Everyone } default Company
}

document! {
    /// CsMeetingConfiguration.
    pub struct MeetingConfiguration = "CsMeetingConfiguration" {
        scopes: [Global, Site, Service("UserServer")],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    pstn_callers_bypass_lobby: bool = true => "PstnCallersBypassLobby", Bool,
        Enforced("the default lobby bypass for dial-in callers of a new meeting (confab_admin::meetings::create_meeting: confab meeting create, New-CsMeeting, REST)");
    designate_as_presenter: DesignateAsPresenter = DesignateAsPresenter::Company
        => "DesignateAsPresenter", Enum(DesignateAsPresenter::VALUES),
        Enforced("the default presenters of a new meeting (confab_admin::meetings::create_meeting); an assigned meeting makes Everyone Company");
    assigned_conference_type_by_default: bool = true
        => "AssignedConferenceTypeByDefault", Bool,
        Enforced("the kind of a new meeting when none is asked for (confab_admin::meetings::create_meeting)");
    enable_assigned_conference_type: bool = true
        => "EnableAssignedConferenceType", Bool,
        Enforced("$false refuses assigned meetings (confab_admin::meetings::create_meeting)");
    admit_anonymous_users_by_default: bool = true
        => "AdmitAnonymousUsersByDefault", Bool, Enforced("$false: anonymous callers wait in the lobby even of an Everyone meeting (focus/admission.rs)");
    require_room_systems_authorization: bool = false
        => "RequireRoomSystemsAuthorization", Bool, NotEnforced("confab knows no room systems");
    allow_conference_recording: bool = true => "AllowConferenceRecording", Bool, NO_RECORDING;
    logo_url: String = String::new() => "LogoURL", text(1024), NO_WEB;
    help_url: String = String::new() => "HelpURL", text(1024), NO_WEB;
    legal_url: String = String::new() => "LegalURL", text(1024), NO_WEB;
    custom_footer_text: String = String::new() => "CustomFooterText", text(1024), NO_WEB;
}

document! {
    /// CsConferencingConfiguration.
    pub struct ConferencingConfiguration = "CsConferencingConfiguration" {
        scopes: [Global, Site, Service("ConferencingServer")],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    max_content_storage_mb: i64 = 500 => "MaxContentStorageMb", int(50, 1024), NO_CONTENT;
    max_upload_file_size_mb: i64 = 500 => "MaxUploadFileSizeMb", int(1, 1024), NO_CONTENT;
    content_grace_period: String = "15.00:00:00".into()
        => "ContentGracePeriod", text(32), NO_CONTENT;
    max_bandwidth_per_app_sharing_service_mb: i64 = 375
        => "MaxBandwidthPerAppSharingServiceMb", int(1, 10000), NO_CONTENT;
    client_audio_port: i64 = 5350 => "ClientAudioPort", PORT, Enforced("with ClientMediaPortRangeEnabled: the MCU refuses offers (488) and drops RTP/RTCP from clients' ports outside ClientAudioPort .. +ClientAudioPortRange (confab-media engine); a PSTN gateway (trusted peer) calling a dial-in access number is no client and is not held to it");
    client_audio_port_range: i64 = 40 => "ClientAudioPortRange", RANGE, Enforced("with ClientMediaPortRangeEnabled: the size of the clients' audio port range the MCU accepts");
    client_video_port: i64 = 5350 => "ClientVideoPort", PORT, NO_VIDEO;
    client_video_port_range: i64 = 40 => "ClientVideoPortRange", RANGE, NO_VIDEO;
    client_app_sharing_port: i64 = 5350 => "ClientAppSharingPort", PORT, NO_CONTENT;
    client_app_sharing_port_range: i64 = 40 => "ClientAppSharingPortRange", RANGE, NO_CONTENT;
    client_file_transfer_port: i64 = 5350 => "ClientFileTransferPort", PORT, NO_CONTENT;
    client_file_transfer_port_range: i64 = 40
        => "ClientFileTransferPortRange", RANGE, NO_CONTENT;
    client_media_port: i64 = 5350 => "ClientMediaPort", PORT, NotEnforced("the combined range of clients without per-modality ranges: confab checks the audio range (ClientAudioPort) only");
    client_media_port_range: i64 = 40 => "ClientMediaPortRange", RANGE, NotEnforced("the combined range of clients without per-modality ranges: confab checks the audio range (ClientAudioPortRange) only");
    client_sip_dynamic_port: i64 = 7100 => "ClientSipDynamicPort", PORT, NO_PROVISIONING;
    client_sip_dynamic_port_range: i64 = 3 => "ClientSipDynamicPortRange", RANGE, NO_PROVISIONING;
    client_media_port_range_enabled: bool = false
        => "ClientMediaPortRangeEnabled", Bool, Enforced("$True: the MCU takes audio only from clients' ports in ClientAudioPort .. +ClientAudioPortRange (offers outside: 488; packets: dropped)");
}

lync_enum! {
    pub enum AppDesktopSharing { Desktop, SingleApplication, None } default Desktop
}
lync_enum! {
    pub enum VideoResolution { CIF, VGA } default VGA
}

document! {
    /// CsConferencingPolicy.
    pub struct ConferencingPolicy = "CsConferencingPolicy" {
        scopes: [Global, Site, Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    allow_ip_audio: bool = true => "AllowIPAudio", Bool, Enforced("$false: the organizer's meetings refuse audio joins with 488 (focus/admission.rs)");
    allow_ip_video: bool = true => "AllowIPVideo", Bool, NO_VIDEO;
    allow_multi_view: bool = true => "AllowMultiView", Bool, NO_VIDEO;
    allow_participant_control: bool = true => "AllowParticipantControl", Bool, NO_CONTENT;
    allow_annotations: bool = true => "AllowAnnotations", Bool, NO_CONTENT;
    disable_power_point_annotations: bool = false
        => "DisablePowerPointAnnotations", Bool, NO_CONTENT;
    allow_user_to_schedule_meetings_with_app_sharing: bool = true
        => "AllowUserToScheduleMeetingsWithAppSharing", Bool, NO_CONTENT;
    allow_non_enterprise_voice_users_to_dial_out: bool = false
        => "AllowNonEnterpriseVoiceUsersToDialOut", Bool, Enforced("$false: meetings of an organizer without Enterprise Voice cannot dial out to phone numbers (403); dial-out to numbers is routed by the organizer's voice policy (voice/routing.rs)");
    allow_anonymous_users_to_dial_out: bool = false
        => "AllowAnonymousUsersToDialOut", Bool, Enforced("$false: an anonymous presenter's REFER asking the focus to call someone in is refused with 403 (focus/dialout.rs)");
    allow_anonymous_participants_in_meetings: bool = true
        => "AllowAnonymousParticipantsInMeetings", Bool, Enforced("$false: anonymous callers are refused with 403 by the organizer's meetings (focus/admission.rs)");
    allow_external_users_to_save_content: bool = true
        => "AllowExternalUsersToSaveContent", Bool, NO_CONTENT;
    allow_external_user_control: bool = false => "AllowExternalUserControl", Bool, NO_CONTENT;
    allow_external_users_to_record_meeting: bool = false
        => "AllowExternalUsersToRecordMeeting", Bool, NO_RECORDING;
    allow_polls: bool = true => "AllowPolls", Bool, NO_CONTENT;
    allow_shared_notes: bool = true => "AllowSharedNotes", Bool, NO_CONTENT;
    enable_dial_in_conferencing: bool = true => "EnableDialInConferencing", Bool, Enforced("$false: the attendant takes no conference ID of the organizer's meetings (focus/dialin.rs), and the meetings list no dial-in numbers");
    enable_app_desktop_sharing: AppDesktopSharing = AppDesktopSharing::Desktop
        => "EnableAppDesktopSharing", Enum(AppDesktopSharing::VALUES), NO_CONTENT;
    allow_conference_recording: bool = false => "AllowConferenceRecording", Bool, NO_RECORDING;
    enable_p2p_recording: bool = false => "EnableP2PRecording", Bool, NO_RECORDING;
    enable_file_transfer: bool = true => "EnableFileTransfer", Bool, NO_CONTENT;
    enable_p2p_file_transfer: bool = true => "EnableP2PFileTransfer", Bool,
        NotEnforced("peer-to-peer file transfer is governed by CsFileTransferFilterConfiguration only");
    enable_p2p_video: bool = true => "EnableP2PVideo", Bool,
        NotEnforced("confab relays signalling only and does not look at the media of calls");
    allow_large_meetings: bool = false => "AllowLargeMeetings", Bool, NotEnforced("confab bounds meetings by MaxMeetingSize and [meetings] max_participants only");
    enable_data_collaboration: bool = true => "EnableDataCollaboration", Bool, NO_CONTENT;
    max_video_conference_resolution: VideoResolution = VideoResolution::VGA
        => "MaxVideoConferenceResolution", Enum(VideoResolution::VALUES), NO_VIDEO;
    max_meeting_size: i64 = 250 => "MaxMeetingSize", int(2, 1000), Enforced("joins beyond it (participants and lobby together) are refused with 486 (focus/admission.rs)");
    audio_bit_rate_kb: i64 = 200 => "AudioBitRateKb", int(20, 200), NotEnforced("the MCU's Opus encoder runs at its own fixed bit rate");
    video_bit_rate_kb: i64 = 50000 => "VideoBitRateKb", int(1, 50000), NO_VIDEO;
    app_sharing_bit_rate_kb: i64 = 50000 => "AppSharingBitRateKb", int(1, 50000), NO_CONTENT;
    file_transfer_bit_rate_kb: i64 = 50000
        => "FileTransferBitRateKb", int(1, 50000), NO_CONTENT;
    total_receive_video_bit_rate_kb: i64 = 6000
        => "TotalReceiveVideoBitRateKb", int(1, 50000), NO_VIDEO;
    enable_multi_view_join: bool = true => "EnableMultiViewJoin", Bool, NO_VIDEO;
}

// ----- dial-in conferencing, PINs, dial plans ------------------------------------------------

lync_enum! {
    pub enum EntryExitAnnouncementsType { UseNames, ToneOnly } default UseNames
}
lync_enum! {
    pub enum PinAuthType { Everyone, OrganizerOnly } default Everyone
}

document! {
    /// CsDialInConferencingConfiguration: how the conferencing attendant treats dial-in callers.
    pub struct DialInConferencingConfiguration = "CsDialInConferencingConfiguration" {
        scopes: [Global, Site],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    entry_exit_announcements_enabled_by_default: bool = false
        => "EntryExitAnnouncementsEnabledByDefault", Bool,
        Enforced("a meeting announces joins and departures until a leader turns it off with *9 (focus/keypad.rs)");
    entry_exit_announcements_type: EntryExitAnnouncementsType = EntryExitAnnouncementsType::UseNames
        => "EntryExitAnnouncementsType", Enum(EntryExitAnnouncementsType::VALUES),
        Enforced("UseNames: the caller's recorded name (or the client's display name, spoken) before \"joined\"/\"left\"; ToneOnly: a rising or falling tone (focus/attendant.rs)");
    enable_name_recording: bool = true => "EnableNameRecording", Bool,
        Enforced("dial-in callers who are not leaders record their name before joining, when names are announced (focus/attendant.rs)");
    pin_auth_type: PinAuthType = PinAuthType::Everyone => "PinAuthType", Enum(PinAuthType::VALUES),
        Enforced("OrganizerOnly: only the meeting's organizer may sign in as leader with extension and PIN (focus/attendant.rs)");
}

document! {
    /// CsPinPolicy: the rules of users' dial-in PINs.
    pub struct PinPolicy = "CsPinPolicy" {
        scopes: [Global, Site, Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    description: String = String::new() => "Description", text(1024), Informational;
    min_password_length: i64 = 5 => "MinPasswordLength", int(4, 24),
        Enforced("Set-CsClientPin and users' own PINs (REST) are refused when shorter (confab_admin::pins)");
    pin_history_count: i64 = 0 => "PINHistoryCount", int(0, 20),
        Enforced("a new PIN may not be any of the user's last PINHistoryCount PINs (confab_admin::pins)");
    pin_lifetime: i64 = 0 => "PINLifetime", int(0, 999),
        Enforced("days a PIN is valid (0: never expires); an expired PIN no longer signs a leader in (focus/attendant.rs)");
    allow_common_patterns: bool = false => "AllowCommonPatterns", Bool,
        Enforced("$false refuses PINs of one repeated digit, consecutive digits (12345, 98765) and the user's own extension or number (confab_admin::pins)");
    maximum_logon_attempts: i64 = 0 => "MaximumLogonAttempts", int(0, 100),
        Enforced("failed PIN sign-ins, across calls, after which the PIN is locked out (Lock-CsClientPin state) until Unlock-CsClientPin or a new PIN; 0 (Lync's unset): 10");
}

/// What MaximumLogonAttempts 0 (Lync's "not set") means: a PIN locks after 10 failures.
pub const DEFAULT_PIN_MAX_FAILURES: u32 = 10;

impl PinPolicy {
    /// Failed PIN sign-ins after which the PIN locks (`Store::verify_client_pin`'s
    /// `max_failures`): MaximumLogonAttempts, 0 meaning [`DEFAULT_PIN_MAX_FAILURES`].
    pub fn max_failures(&self) -> u32 {
        match self.maximum_logon_attempts {
            n if n <= 0 => DEFAULT_PIN_MAX_FAILURES,
            n => u32::try_from(n).unwrap_or(u32::MAX),
        }
    }

    /// Days a PIN is valid (`Store::verify_client_pin`'s `lifetime_days`): PINLifetime,
    /// 0 for never.
    pub fn lifetime_days(&self) -> u32 {
        u32::try_from(self.pin_lifetime.max(0)).unwrap_or(u32::MAX)
    }
}

/// A normalization rule of a dial plan (made by New-CsVoiceNormalizationRule; its Identity
/// is `<plan scope>/<Name>`). The list's order is the rules' Priority (0 first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NormalizationRule {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    /// A .NET regular expression over the dialled number.
    #[serde(rename = "Pattern")]
    pub pattern: String,
    /// A .NET replacement string (`$1`…).
    #[serde(rename = "Translation")]
    pub translation: String,
    /// Lowest first; equal to the rule's place in the plan's list.
    #[serde(rename = "Priority")]
    pub priority: i64,
    #[serde(rename = "IsInternalExtension")]
    pub is_internal_extension: bool,
}

/// The name of the rule every new dial plan gets (reference §4: `<scope>/Prefix All`).
pub const DEFAULT_NORMALIZATION_RULE: &str = "Prefix All";

impl Default for NormalizationRule {
    /// New-CsVoiceNormalizationRule's defaults: `^(\d{11})$` → `+$1`.
    fn default() -> Self {
        NormalizationRule {
            name: String::new(),
            description: String::new(),
            pattern: r"^(\d{11})$".into(),
            translation: "+$1".into(),
            priority: 0,
            is_internal_extension: false,
        }
    }
}

fn default_normalization_rules() -> Vec<NormalizationRule> {
    vec![NormalizationRule {
        name: DEFAULT_NORMALIZATION_RULE.into(),
        ..Default::default()
    }]
}

document! {
    /// CsDialPlan: how the numbers a user (or a gateway, at `Service:PstnGateway:<id>`)
    /// dials are normalised to E.164.
    pub struct DialPlan = "CsDialPlan" {
        scopes: [Global, Site, Service("Registrar"), Service("PstnGateway"), Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    description: String = String::new() => "Description", text(1024), Informational;
    simple_name: String = String::new() => "SimpleName", text(256), Informational;
    dialin_conferencing_region: String = String::new()
        => "DialinConferencingRegion", text(256),
        Enforced("the dial-in access numbers of this region are the ones a meeting of a user under this plan lists (confab_admin::meetings)");
    external_access_prefix: String = String::new() => "ExternalAccessPrefix", text(4),
        NotEnforced("confab does not strip an external access prefix: write it into the normalization rules");
    optimize_device_dialing: bool = false => "OptimizeDeviceDialing", Bool,
        NotEnforced("confab does not strip an external access prefix: write it into the normalization rules");
    normalization_rules: Vec<NormalizationRule> = default_normalization_rules()
        => "NormalizationRules",
        ObjList { key: "Name", made_by: "New-CsVoiceNormalizationRule" },
        Enforced("a call to a number is normalised with the caller's dial plan, a gateway's inbound call with the gateway's plan (Service:PstnGateway:), lowest Priority first (crates/server/src/voice/routing.rs)");
}

// ----- enterprise voice ------------------------------------------------------------------------

document! {
    /// CsPstnUsage: the one global list of PSTN usage names that link voice policies to
    /// voice routes.
    pub struct PstnUsage = "CsPstnUsage" {
        scopes: [Global],
        policy: false,
        get_set_only: true,
        read_by_server: false,
    }
    usage: Vec<String> = vec![] => "Usage", StrList, NotEnforced(
        "the list itself routes nothing: calls follow the usages voice policies and routes name (crates/server/src/voice/); the shell accepts only usages listed here and refuses to remove one in use");
}

lync_enum! {
    pub enum CallForwardingSimulRingUsageType { VoicePolicyUsage, InternalOnly, CustomUsage }
    default VoicePolicyUsage
}

document! {
    /// CsVoicePolicy: which PSTN usages a user may call through, and the call features
    /// allowed.
    pub struct VoicePolicy = "CsVoicePolicy" {
        scopes: [Global, Site, Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    name: String = String::new() => "Name", text(256), Informational;
    description: String = String::new() => "Description", text(1024), Informational;
    pstn_usages: Vec<String> = vec![] => "PstnUsages", StrList, Enforced("a user's calls to numbers try these usages in order (crates/server/src/voice/routing.rs)");
    allow_simul_ring: bool = true => "AllowSimulRing", Bool, Enforced("a user's simultaneous ring rings only when this is $true, at call time (crates/server/src/voice/features.rs) and when set (confab_admin::forwarding)");
    allow_call_forwarding: bool = true => "AllowCallForwarding", Bool, Enforced("a user's immediate, unanswered and busy forwarding (to anything but voicemail) apply only when this is $true (crates/server/src/voice/features.rs, confab_admin::forwarding)");
    allow_pstn_rerouting: bool = true => "AllowPSTNReRouting", Bool, NotEnforced("confab has no WAN between sites: calls to our users never go through the PSTN");
    enable_delegation: bool = true => "EnableDelegation", Bool, NotEnforced("confab has no delegates");
    enable_team_call: bool = true => "EnableTeamCall", Bool, Enforced("a user's team members ring only when this is $true (crates/server/src/voice/features.rs, confab_admin::forwarding)");
    enable_call_transfer: bool = true => "EnableCallTransfer", Bool, NotEnforced("confab relays REFER between endpoints and does not stop transfers");
    enable_call_park: bool = false => "EnableCallPark", Bool,
        NotEnforced("confab has no call park");
    enable_malicious_call_tracing: bool = false => "EnableMaliciousCallTracing", Bool,
        NotEnforced("confab has no malicious call tracing");
    enable_bw_policy_override: bool = false => "EnableBWPolicyOverride", Bool,
        NotEnforced("confab has no call admission control (bandwidth policies)");
    prevent_pstn_toll_bypass: bool = false => "PreventPSTNTollBypass", Bool, NotEnforced("confab has no network regions (call admission control)");
    call_forwarding_simul_ring_usage_type: CallForwardingSimulRingUsageType =
        CallForwardingSimulRingUsageType::VoicePolicyUsage
        => "CallForwardingSimulRingUsageType", Enum(CallForwardingSimulRingUsageType::VALUES),
        Enforced("forwarding and simultaneous ring to a number use the policy's usages, CustomCallForwardingSimulRingUsages, or no PSTN at all (InternalOnly) (crates/server/src/voice/features.rs)");
    custom_call_forwarding_simul_ring_usages: Vec<String> = vec![]
        => "CustomCallForwardingSimulRingUsages", StrList, Enforced("with CallForwardingSimulRingUsageType CustomUsage, the usages of forwarding and simultaneous ring to numbers (crates/server/src/voice/features.rs)");
    enable_voicemail_escape_timer: bool = false => "EnableVoicemailEscapeTimer", Bool,
        NotEnforced("confab does not detect a mobile's voicemail answering a simultaneous ring");
    pstn_voicemail_escape_timer: i64 = 1500 => "PSTNVoicemailEscapeTimer", int(0, 8000),
        NotEnforced("confab does not detect a mobile's voicemail answering a simultaneous ring");
}

/// New-CsVoiceRoute's default NumberPattern (Lync's sample route `LocalRoute` has
/// `^(\+1[0-9]{10})$`).
pub const DEFAULT_ROUTE_PATTERN: &str = r"[0-9]{10}";

document! {
    /// CsVoiceRoute: which numbers go to which gateways for which PSTN usages (the identity
    /// is the route's name).
    pub struct VoiceRoute = "CsVoiceRoute" {
        scopes: [Named],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    description: String = String::new() => "Description", text(1024), Informational;
    number_pattern: String = DEFAULT_ROUTE_PATTERN.into() => "NumberPattern", text(1024),
        Enforced("calls to numbers matching it take this route (crates/server/src/voice/routing.rs, confab_voice::candidates)");
    pstn_usages: Vec<String> = vec![] => "PstnUsages", StrList, Enforced("calls of users whose voice policy has one of these usages can take this route (confab_voice::candidates)");
    pstn_gateway_list: Vec<String> = vec![] => "PstnGatewayList", StrList, Enforced("the route's calls go to these gateways, round robin, each once, failing over on 408, 5xx or no ringing (crates/server/src/voice/routing.rs)");
    priority: i64 = 0 => "Priority", int(0, 10_000), Enforced("matching routes of one usage are tried lowest first (confab_voice::candidates)");
    suppress_caller_id: bool = false => "SuppressCallerId", Bool, Enforced("the gateway gets an anonymous From and Privacy: id, or AlternateCallerId (crates/server/src/voice/routing.rs)");
    alternate_caller_id: String = String::new() => "AlternateCallerId", text(64),
        Enforced("with SuppressCallerId, the number the gateway gets as the caller (crates/server/src/voice/routing.rs)");
}

/// An outbound translation rule of a trunk (made by New-CsOutboundTranslationRule; its
/// Identity is `<trunk scope>/<Name>`). The list's order is the rules' Priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundTranslationRule {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Pattern")]
    pub pattern: String,
    #[serde(rename = "Translation")]
    pub translation: String,
    #[serde(rename = "Priority")]
    pub priority: i64,
}

impl Default for OutboundTranslationRule {
    /// New-CsOutboundTranslationRule's defaults: `^\+(\d*)$` → `$1` (drop the plus).
    fn default() -> Self {
        OutboundTranslationRule {
            name: String::new(),
            description: String::new(),
            pattern: r"^\+(\d*)$".into(),
            translation: "$1".into(),
            priority: 0,
        }
    }
}

lync_enum! {
    pub enum SrtpMode { Required, Optional, NotSupported } default Required
}

document! {
    /// CsTrunkConfiguration: how confab talks to a PSTN gateway (Global, Site, or
    /// `Service:PstnGateway:<gateway>` for one gateway).
    pub struct TrunkConfiguration = "CsTrunkConfiguration" {
        scopes: [Global, Site, Service("PstnGateway")],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    description: String = String::new() => "Description", text(1024), Informational;
    concentrated_topology: bool = true => "ConcentratedTopology", Bool,
        NotEnforced("confab has no Mediation Server: it talks to gateways itself");
    enable_bypass: bool = false => "EnableBypass", Bool,
        NotEnforced("confab relays signalling only: media never passes a Mediation Server");
    enable_refer_support: bool = true => "EnableReferSupport", Bool, NotEnforced("confab relays REFER end to end; it does not turn transfers into new calls for the gateway");
    enable_3pcc_refer: bool = false => "Enable3pccRefer", Bool, NotEnforced("confab relays REFER end to end; it does not turn transfers into new calls for the gateway");
    enable_session_timer: bool = false => "EnableSessionTimer", Bool, NotEnforced("confab relays Session-Expires end to end and keeps no session timer of its own");
    enable_fast_failover_timer: bool = true => "EnableFastFailoverTimer", Bool,
        Enforced("a gateway not ringing within [voice] fast_failover_secs (10 s) is given up for the next (crates/server/src/voice/calls.rs)");
    enable_pidf_lo_support: bool = false => "EnablePIDFLOSupport", Bool,
        NotEnforced("confab has no location (E9-1-1) service");
    enable_rtp_latching: bool = false => "EnableRTPLatching", Bool,
        NotEnforced("confab relays signalling only and does not touch the media of calls");
    srtp_mode: SrtpMode = SrtpMode::Required => "SRTPMode", Enum(SrtpMode::VALUES),
        NotEnforced("confab relays signalling only: the endpoints and the gateway negotiate SRTP");
    max_early_dialogs: i64 = 20 => "MaxEarlyDialogs", int(1, 1000), NotEnforced("confab relays every early dialog a gateway forks");
    remove_plus_from_uri: bool = false => "RemovePlusFromUri", Bool, Enforced("the Request-URI to the gateway has no + (crates/server/src/voice/mod.rs)");
    rtcp_active_calls: bool = true => "RTCPActiveCalls", Bool,
        NotEnforced("confab relays signalling only and does not touch the media of calls");
    rtcp_calls_on_hold: bool = true => "RTCPCallsOnHold", Bool,
        NotEnforced("confab relays signalling only and does not touch the media of calls");
    forward_pai: bool = false => "ForwardPAI", Bool, Enforced("the gateway gets P-Asserted-Identity with the caller's LineURI number (crates/server/src/voice/routing.rs)");
    forward_call_history: bool = false => "ForwardCallHistory", Bool, Enforced("a forwarded call reaches this gateway with Diversion and History-Info only when $true (crates/server/src/voice/features.rs)");
    outbound_translation_rules_list: Vec<OutboundTranslationRule> = vec![]
        => "OutboundTranslationRulesList",
        ObjList { key: "Name", made_by: "New-CsOutboundTranslationRule" },
        Enforced("the number the gateway gets, first matching rule by Priority (crates/server/src/voice/routing.rs, confab_voice::translate)");
    pstn_usages: Vec<String> = vec![] => "PstnUsages", StrList, NotEnforced(
        "inter-trunk routing (calls from one gateway out through another) is not written");
}

lync_enum! {
    pub enum GatewayTransport { TCP, TLS, UDP } default TCP
}

document! {
    /// confab's own CsPstnGateway, in the place of Lync's Topology Builder: a PSTN
    /// gateway's address, port and transport (the identity is the `<id>` of
    /// `PstnGateway:<id>`, its IP address or name).
    pub struct PstnGateway = "CsPstnGateway" {
        scopes: [Named],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    address: String = String::new() => "Address", text(64), Enforced("calls to the gateway go to this IP address, and calls from it (TCP/TLS) are its inbound calls (crates/server/src/voice/mod.rs)");
    port: i64 = 5060 => "Port", RANGE, Enforced("calls to the gateway go to this port (crates/server/src/voice/mod.rs)");
    transport: GatewayTransport = GatewayTransport::TCP
        => "Transport", Enum(GatewayTransport::VALUES), Enforced("calls to the gateway go over this transport; only a TCP or TLS gateway can bring calls in (a UDP source address proves nothing)");
    description: String = String::new() => "Description", text(1024), Informational;
}

document! {
    /// CsDialInConferencingAccessNumber: a number PSTN callers dial to reach the conferencing
    /// attendant (the identity is its SIP URI, Lync's PrimaryUri, e.g. sip:dialin@example.test).
    pub struct DialInConferencingAccessNumber = "CsDialInConferencingAccessNumber" {
        scopes: [Named],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    display_number: String = String::new() => "DisplayNumber", text(64),
        Enforced("how meetings list the number to callers (confab meeting show, Get-CsMeeting DialInNumbers, REST; confab_admin::meetings::dial_in_numbers)");
    display_name: String = String::new() => "DisplayName", text(256),
        Enforced("the dial-in page names the number with it (confab_web::site::dialin)");
    line_uri: String = String::new() => "LineUri", text(64),
        Enforced("calls to this tel: number (or sip:<number>@<domain>;user=phone) reach the conferencing attendant (pipeline/classify.rs)");
    regions: Vec<String> = vec![] => "Regions", StrList,
        Enforced("meetings of organizers whose dial plan has one of these DialinConferencingRegion values list this number (confab_admin::meetings)");
    primary_language: String = "en-US".to_string() => "PrimaryLanguage", text(16),
        Enforced("the language the attendant speaks on this number (confab-media prompts)");
    secondary_languages: Vec<String> = vec![] => "SecondaryLanguages", StrList,
        NotEnforced("callers cannot choose another language from the keypad yet");
    priority: i64 = 0 => "Priority", int(0, 1000),
        Enforced("the order of the numbers a meeting lists within a region (lowest first)");
}

// ----- hosted voicemail ------------------------------------------------------------------------

document! {
    /// CsHostedVoicemailPolicy: where the voicemail of users with HostedVoiceMail is (Lync:
    /// hosted Exchange UM). In confab, Destination is the SIP URI of a voicemail server
    /// (an IP address, optional port and transport: no DNS); Lync takes an FQDN there.
    pub struct HostedVoicemailPolicy = "CsHostedVoicemailPolicy" {
        scopes: [Global, Site, Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    destination: String = String::new() => "Destination", text(256),
        Enforced("unanswered, declined and forwarded-to-voicemail calls of users with HostedVoiceMail go to this SIP URI (crates/server/src/voice/)");
    organization: String = String::new() => "Organization", text(1024), Informational;
    description: String = String::new() => "Description", text(1024), Informational;
}

impl HostedVoicemailPolicy {
    /// Destination parsed; `None` when empty (no voicemail) or not such a URI (the shell
    /// refuses those, so only a document written by other means has one).
    pub fn destination(&self) -> Option<VoicemailDestination> {
        VoicemailDestination::parse(&self.destination)
            .ok()
            .flatten()
    }
}

/// A transport a voicemail server is reached over (`;transport=` of Destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoicemailTransport {
    Udp,
    Tcp,
    Tls,
}

impl VoicemailTransport {
    /// The `;transport=` value, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            VoicemailTransport::Udp => "udp",
            VoicemailTransport::Tcp => "tcp",
            VoicemailTransport::Tls => "tls",
        }
    }
}

/// CsHostedVoicemailPolicy's Destination: `sip:[user@]<IP address>[:port][;transport=udp|tcp|tls]`
/// (`sips:` means TLS). IPv6 addresses go in brackets. No other parameters, no names (confab
/// does not resolve names here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicemailDestination {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part (`voicemail` of `sip:voicemail@127.0.0.1`), if any.
    pub user: Option<String>,
    pub ip: std::net::IpAddr,
    /// The port given, if any ([`VoicemailDestination::port`] has the default).
    pub explicit_port: Option<u16>,
    /// The transport given, if any ([`VoicemailDestination::transport`] has the default).
    pub explicit_transport: Option<VoicemailTransport>,
}

impl VoicemailDestination {
    /// `Ok(None)` for an empty value (no voicemail server); an error naming the problem
    /// otherwise.
    pub fn parse(raw: &str) -> Result<Option<VoicemailDestination>, String> {
        let t = raw.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let form = "write sip:[user@]<IP address>[:port][;transport=udp|tcp|tls], e.g. sip:voicemail@127.0.0.1:5090;transport=tcp (confab does not resolve names)";
        let err = |why: &str| format!("'{raw}' is not a voicemail server's SIP URI: {why}; {form}");
        if t.len() > 256 {
            return Err(err("too long"));
        }
        let lower = t.to_ascii_lowercase();
        // (`lower` has `t`'s byte positions: only ASCII letters change)
        let (secure, rest) = if lower.starts_with("sips:") {
            (true, &t[5..])
        } else if lower.starts_with("sip:") {
            (false, &t[4..])
        } else {
            return Err(err("it does not start with sip: or sips:"));
        };
        let (hostport, params) = match rest.split_once(';') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let (user, hostport) = match hostport.rsplit_once('@') {
            Some((u, h)) => {
                let ok = !u.is_empty()
                    && u.len() <= 64
                    && u.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"-_.+*".contains(&c));
                if !ok {
                    return Err(err(
                        "the user part may hold letters, digits and - _ . + * only",
                    ));
                }
                (Some(u.to_string()), h)
            }
            None => (None, hostport),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| err("an IPv6 address needs its closing ]"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| err("after ] only :port may follow"))?,
                ),
            };
            let ip = h
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("the host in brackets is not an IPv6 address"))?;
            (std::net::IpAddr::V6(ip), port)
        } else {
            let (h, p) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            let ip = h
                .parse::<std::net::Ipv4Addr>()
                .map_err(|_| err("the host is not an IP address (IPv6 in brackets)"))?;
            (std::net::IpAddr::V4(ip), p)
        };
        let explicit_port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&n| n != 0 && p.bytes().all(|c| c.is_ascii_digit()))
                    .ok_or_else(|| err("the port is not 1 to 65535"))?,
            ),
        };
        let explicit_transport = match params {
            None => None,
            Some(p) => {
                let v = strip_prefix_ci(p, "transport=")
                    .ok_or_else(|| err("the only parameter allowed is ;transport="))?;
                Some(match v.to_ascii_lowercase().as_str() {
                    "udp" if !secure => VoicemailTransport::Udp,
                    "tcp" if !secure => VoicemailTransport::Tcp,
                    "tls" => VoicemailTransport::Tls,
                    _ if secure => return Err(err("a sips: URI goes over TLS")),
                    _ => return Err(err("the transport is not udp, tcp or tls")),
                })
            }
        };
        Ok(Some(VoicemailDestination {
            secure,
            user,
            ip: host,
            explicit_port,
            explicit_transport,
        }))
    }

    /// The transport to use: the one given, else TLS for `sips:`, else UDP (RFC 3263 §4.1 for
    /// a numeric host without a transport).
    pub fn transport(&self) -> VoicemailTransport {
        match self.explicit_transport {
            Some(t) => t,
            None if self.secure => VoicemailTransport::Tls,
            None => VoicemailTransport::Udp,
        }
    }

    /// The port to use: the one given, else 5061 for TLS, else 5060.
    pub fn port(&self) -> u16 {
        self.explicit_port.unwrap_or(match self.transport() {
            VoicemailTransport::Tls => 5061,
            _ => 5060,
        })
    }

    /// Where to send: the IP address and [`VoicemailDestination::port`].
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ip, self.port())
    }
}

impl std::fmt::Display for VoicemailDestination {
    /// The canonical spelling (lower-case scheme and transport; what the shell stores).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match self.ip {
            std::net::IpAddr::V4(ip) => write!(f, "{ip}")?,
            std::net::IpAddr::V6(ip) => write!(f, "[{ip}]")?,
        }
        if let Some(p) = self.explicit_port {
            write!(f, ":{p}")?;
        }
        if let Some(t) = self.explicit_transport {
            write!(f, ";transport={}", t.as_str())?;
        }
        Ok(())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|h| h.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

// ----- clients and IM --------------------------------------------------------------------------

lync_enum! {
    pub enum DisplayPhoto { NoPhoto, PhotosFromADOnly, AllPhotos } default AllPhotos
}
lync_enum! {
    pub enum TracingLevel { Off, Light, Full } default Light
}

document! {
    /// CsClientPolicy. Most properties are null by default: "the client decides".
    pub struct ClientPolicy = "CsClientPolicy" {
        scopes: [Global, Site, Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    disable_rtf_im: Option<bool> = None => "DisableRTFIm", OptBool, Enforced(
        "the proxy refuses rich-text MESSAGEs (415) of a sender or local recipient under this \
         policy, or keeps their plain-text alternative (edge.rs filter_message)");
    disable_html_im: Option<bool> = None => "DisableHtmlIm", OptBool, NO_PROVISIONING;
    disable_emoticons: Option<bool> = None => "DisableEmoticons", OptBool, NO_PROVISIONING;
    disable_ink_im: Option<bool> = None => "DisableInkIM", OptBool, NO_PROVISIONING;
    disable_saving_im: Option<bool> = None => "DisableSavingIM", OptBool, NO_PROVISIONING;
    enable_url: Option<bool> = None => "EnableURL", OptBool, NO_PROVISIONING;
    im_warning: String = String::new() => "IMWarning", text(256), NO_PROVISIONING;
    block_conversation_from_federated_contacts: Option<bool> = None
        => "BlockConversationFromFederatedContacts", OptBool, NotEnforced(
            "federated contacts are admitted by CsExternalAccessPolicy EnableFederationAccess only");
    enable_unencrypted_file_transfer: Option<bool> = None
        => "EnableUnencryptedFileTransfer", OptBool, NO_PROVISIONING;
    enable_appear_offline: Option<bool> = None => "EnableAppearOffline", OptBool, NO_PROVISIONING;
    disable_calendar_presence: Option<bool> = None
        => "DisableCalendarPresence", OptBool, NotEnforced(
            "the presence server publishes what clients send; it does not strip calendar data yet");
    disable_free_busy_info: Option<bool> = None
        => "DisableFreeBusyInfo", OptBool, NotEnforced(
            "the presence server publishes what clients send; it does not strip free/busy yet");
    disable_meeting_subject_and_location: Option<bool> = None
        => "DisableMeetingSubjectAndLocation", OptBool, NotEnforced(
            "the presence server publishes what clients send; it does not strip meeting details yet");
    disable_presence_note: Option<bool> = None
        => "DisablePresenceNote", OptBool, NotEnforced(
            "the presence server publishes what clients send; it does not strip notes yet");
    display_photo: DisplayPhoto = DisplayPhoto::AllPhotos
        => "DisplayPhoto", Enum(DisplayPhoto::VALUES), NO_PROVISIONING;
    maximum_number_of_contacts: i64 = 250 => "MaximumNumberOfContacts", int(0, 1000), NotEnforced(
        "contact lists are limited to 1000 entries by the store, whatever the policy says");
    max_photo_size_kb: i64 = 30 => "MaxPhotoSizeKB", int(1, 1000), NO_PROVISIONING;
    tracing_level: TracingLevel = TracingLevel::Light
        => "TracingLevel", Enum(TracingLevel::VALUES), NO_PROVISIONING;
}

lync_enum! {
    pub enum ImFilterAction { Allow, Warn, Block } default Allow
}

document! {
    /// CsImFilterConfiguration (Lync's IIMFilter application).
    pub struct ImFilterConfiguration = "CsImFilterConfiguration" {
        scopes: [Global, Site],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    enabled: bool = true => "Enabled", Bool,
        Enforced("the proxy runs the URL filter on MESSAGE bodies (edge.rs filter_message)");
    action: ImFilterAction = ImFilterAction::Allow
        => "Action", Enum(ImFilterAction::VALUES), Enforced(
            "Allow prefixes links with '_', Warn prepends WarnMessage, Block refuses with 403");
    prefixes: Vec<String> = strings(URL_PREFIXES) => "Prefixes", StrList,
        Enforced("the link prefixes the filter looks for");
    ignore_local: bool = true => "IgnoreLocal", Bool, Enforced(
        "messages between two internal users are not link-filtered (pipeline/authorize.rs)");
    block_file_extension: bool = true => "BlockFileExtension", Bool, Enforced(
        "links to files with an extension of CsFileTransferFilterConfiguration are refused (403)");
    allow_message: String = String::new() => "AllowMessage", text(256), NotEnforced(
        "Action Allow prefixes links but adds no banner");
    warn_message: String = String::new() => "WarnMessage", text(256),
        Enforced("prepended to messages with links under Action Warn");
}

lync_enum! {
    pub enum FileTransferAction { Block, BlockAll } default Block
}

document! {
    /// CsFileTransferFilterConfiguration.
    pub struct FileTransferFilterConfiguration = "CsFileTransferFilterConfiguration" {
        scopes: [Global, Site],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    enabled: bool = true => "Enabled", Bool, Enforced(
        "the proxy checks file-transfer offers in INVITEs (edge.rs filter_file_transfer)");
    action: FileTransferAction = FileTransferAction::Block
        => "Action", Enum(FileTransferAction::VALUES),
        Enforced("Block refuses listed extensions, BlockAll every file transfer (403)");
    extensions: Vec<String> = strings(FILE_EXTENSIONS) => "Extensions", StrList,
        Enforced("file names (and IM links, with BlockFileExtension) with these are refused");
}

// ----- web services ------------------------------------------------------------------------------

/// An entry of TrustedCACerts (made by New-CsWebTrustedCACertificate).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustedCaCert {
    /// SHA-1 thumbprint, 40 hex digits.
    #[serde(rename = "Thumbprint")]
    pub thumbprint: String,
    #[serde(rename = "CAStore")]
    pub ca_store: String,
}

lync_enum! {
    pub enum WindowsAuth { Negotiate, NTLM, None } default Negotiate
}

document! {
    /// CsWebServiceConfiguration.
    pub struct WebServiceConfiguration = "CsWebServiceConfiguration" {
        scopes: [Global, Site, Service("WebServer")],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    trusted_ca_certs: Vec<TrustedCaCert> = vec![] => "TrustedCACerts",
        ObjList { key: "Thumbprint", made_by: "New-CsWebTrustedCACertificate" },
        Enforced("TLS peers whose certificate (or a chain certificate) has one of these \
                  SHA-1 thumbprints are trusted (tls.rs)");
    infer_cert_chain_from_ssl: bool = false => "InferCertChainFromSSL", Bool, NO_WEB;
    use_windows_auth: WindowsAuth = WindowsAuth::Negotiate
        => "UseWindowsAuth", Enum(WindowsAuth::VALUES), NO_WEB;
    use_certificate_auth: bool = true => "UseCertificateAuth", Bool, NO_WEB;
    use_pin_auth: bool = true => "UsePinAuth", Bool, NO_WEB;
    max_group_size_to_expand: i64 = 100 => "MaxGroupSizeToExpand", int(1, 100000), NO_WEB;
}

/// A URL of a simple URL (made by New-CsSimpleUrlEntry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimpleUrlEntry {
    #[serde(rename = "Url")]
    pub url: String,
}

/// A simple URL (made by New-CsSimpleUrl): the `Meet` URL of a SIP domain, the `Dialin`
/// URL or the `Cscp` (Control Panel, "Admin") URL, with the URLs it answers to and the
/// one in use. Checked by [`crate::simple_url::check_configuration`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimpleUrl {
    /// `Meet`, `Dialin` or `Cscp`.
    #[serde(rename = "Component")]
    pub component: String,
    /// The SIP domain of a `Meet` URL; `*` for `Dialin` and `Cscp`.
    #[serde(rename = "Domain")]
    pub domain: String,
    #[serde(rename = "SimpleUrlEntry")]
    pub simple_url_entry: Vec<SimpleUrlEntry>,
    /// One of the entries' Url.
    #[serde(rename = "ActiveUrl")]
    pub active_url: String,
}

const SIMPLE_URLS_ROUTE: crate::Enforcement = crate::Enforcement::Enforced(
    "the web site routes requests by them and hands out their ActiveUrls (crates/web/src/site/urls.rs)",
);

document! {
    /// CsSimpleUrlConfiguration: the meet, dial-in and Control Panel URLs (site wins over
    /// Global).
    pub struct SimpleUrlConfiguration = "CsSimpleUrlConfiguration" {
        scopes: [Global, Site],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    simple_url: Vec<SimpleUrl> = vec![] => "SimpleUrl",
        ObjList { key: "ActiveUrl", made_by: "New-CsSimpleUrl" }, SIMPLE_URLS_ROUTE;
}

// ----- the Edge ------------------------------------------------------------------------------------

document! {
    /// CsExternalAccessPolicy. In Lync 2013 everything defaults to False.
    pub struct ExternalAccessPolicy = "CsExternalAccessPolicy" {
        scopes: [Global, Site, Tag],
        policy: true,
        get_set_only: false,
        read_by_server: true,
    }
    enable_federation_access: bool = false => "EnableFederationAccess", Bool, Enforced(
        "users under this policy may reach, and be reached by, federated domains (edge.rs)");
    enable_xmpp_access: bool = false => "EnableXmppAccess", Bool,
        NotEnforced("confab has no XMPP gateway");
    enable_public_cloud_access: bool = false => "EnablePublicCloudAccess", Bool,
        NotEnforced("confab has no public IM connectivity");
    enable_public_cloud_audio_video_access: bool = false
        => "EnablePublicCloudAudioVideoAccess", Bool,
        NotEnforced("confab has no public IM connectivity");
    enable_outside_access: bool = false => "EnableOutsideAccess", Bool, Enforced(
        "users under this policy may sign in from outside [edge] internal_networks (core.rs)");
}

document! {
    /// confab's own: flood and password-guessing defence (Lync's Edge had it built in,
    /// without settings). Until an administrator sets it, confab.toml's [defence] applies.
    pub struct DefenseConfiguration = "CsDefenseConfiguration" {
        scopes: [Global],
        policy: false,
        get_set_only: true,
        read_by_server: true,
    }
    enabled: bool = true => "Enabled", Bool, Enforced("defence.rs: rate limits and lockouts");
    messages_per_second: i64 = 1000 => "MessagesPerSecond", int(1, 1_000_000),
        Enforced("defence.rs: an address sending more on average is banned");
    burst: i64 = 2000 => "Burst", int(1, 10_000_000),
        Enforced("defence.rs: the burst an address may send");
    ban_seconds: i64 = 60 => "BanSeconds", int(1, 86_400),
        Enforced("defence.rs: how long a flooding address is ignored");
    trusted_addresses: Vec<String> = vec![] => "TrustedAddresses", StrList,
        Enforced("defence.rs: addresses never limited");
    max_auth_failures_per_user: i64 = 10 => "MaxAuthFailuresPerUser", int(1, 10_000),
        Enforced("defence.rs: failed digest attempts before a user is locked");
    max_auth_failures_per_address: i64 = 20 => "MaxAuthFailuresPerAddress", int(1, 10_000),
        Enforced("defence.rs: accounts with failed sign-ins from one address before it is locked");
    auth_window_seconds: i64 = 60 => "AuthWindowSeconds", int(1, 86_400),
        Enforced("defence.rs: the window failed attempts are counted in");
    auth_retry_seconds: i64 = 2 => "AuthRetrySeconds", int(0, 86_400),
        Enforced("defence.rs: after a failure, the same account from the same address is refused unchecked and uncounted this long (doubling)");
    lockout_seconds: i64 = 30 => "LockoutSeconds", int(1, 86_400),
        Enforced("defence.rs: the first lockout");
    max_lockout_seconds: i64 = 900 => "MaxLockoutSeconds", int(1, 604_800),
        Enforced("defence.rs: the longest lockout (each doubles)");
}

lync_enum! {
    pub enum VerificationLevel { AlwaysVerifiable, AlwaysUnverifiable, UseSourceVerification }
    default UseSourceVerification
}

const NO_EDGE_EXTRA: crate::Enforcement = NotEnforced("confab's Edge has no such feature yet");

document! {
    /// CsAccessEdgeConfiguration (global only).
    pub struct AccessEdgeConfiguration = "CsAccessEdgeConfiguration" {
        scopes: [Global],
        policy: false,
        get_set_only: true,
        read_by_server: true,
    }
    allow_anonymous_users: bool = false => "AllowAnonymousUsers", Bool,
        NotEnforced("confab admits no anonymous users whatever this says (no meetings yet)");
    allow_federated_users: bool = false => "AllowFederatedUsers", Bool,
        Enforced("federation with other domains at all (edge.rs)");
    allow_outside_users: bool = true => "AllowOutsideUsers", Bool, Enforced(
        "users outside [edge] internal_networks may sign in at all (edge.rs check_remote_access)");
    be_clearing_house: bool = false => "BeClearingHouse", Bool, NO_EDGE_EXTRA;
    enable_partner_discovery: bool = false => "EnablePartnerDiscovery", Bool, Enforced(
        "domains not on the allowed list are accepted (without DNS, reached by static routes only)");
    enable_archiving_disclaimer: bool = false => "EnableArchivingDisclaimer", Bool,
        NotEnforced("confab does not archive IM");
    keep_crls_up_to_date_for_peers: bool = true => "KeepCrlsUpToDateForPeers", Bool,
        NotEnforced("confab does not fetch certificate revocation lists");
    mark_source_verifiable_on_outgoing_messages: bool = true
        => "MarkSourceVerifiableOnOutgoingMessages", Bool, NO_EDGE_EXTRA;
    outgoing_tls_count_for_federated_partners: i64 = 4
        => "OutgoingTlsCountForFederatedPartners", int(1, 100),
        NotEnforced("one connection per partner route is opened on demand");
    max_contacts_per_discovered_partner: i64 = 1000
        => "MaxContactsPerDiscoveredPartner", int(1, 100000), NO_EDGE_EXTRA;
    verification_level: VerificationLevel = VerificationLevel::UseSourceVerification
        => "VerificationLevel", Enum(VerificationLevel::VALUES), NotEnforced(
            "inbound federated requests are always source-verified against the partner's route");
}

document! {
    /// CsAllowedDomain: a federation partner (the identity is the domain).
    pub struct AllowedDomain = "CsAllowedDomain" {
        scopes: [Named],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    proxy_fqdn: String = String::new() => "ProxyFqdn", text(255), Enforced(
        "when an IP address, the partner's next hop (TLS, port 5061); names need DNS, which \
         confab does not use: give the partner a static route");
    comment: String = String::new() => "Comment", text(256), Informational;
    mark_for_monitoring: bool = false => "MarkForMonitoring", Bool,
        NotEnforced("confab has no monitoring of federation partners");
}

document! {
    /// CsBlockedDomain (the identity is the domain).
    pub struct BlockedDomain = "CsBlockedDomain" {
        scopes: [Named],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    comment: String = String::new() => "Comment", text(256), Informational;
}

lync_enum! {
    pub enum RouteTransport { TLS, TCP } default TLS
}

/// A static route (made by New-CsStaticRoute).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaticRoute {
    #[serde(rename = "Transport")]
    pub transport: RouteTransport,
    /// An IP address: confab does not resolve names.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Unset: 5061 for TLS, 5060 for TCP.
    #[serde(rename = "Port")]
    pub port: Option<u16>,
    #[serde(rename = "MatchUri")]
    pub match_uri: String,
    #[serde(rename = "UseDefaultCertificate")]
    pub use_default_certificate: bool,
    #[serde(rename = "TLSCertIssuer")]
    pub tls_cert_issuer: String,
    #[serde(rename = "TLSCertSerialNumber")]
    pub tls_cert_serial_number: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
}

impl Default for StaticRoute {
    fn default() -> Self {
        StaticRoute {
            transport: RouteTransport::TLS,
            destination: String::new(),
            port: None,
            match_uri: String::new(),
            use_default_certificate: true,
            tls_cert_issuer: String::new(),
            tls_cert_serial_number: String::new(),
            enabled: true,
        }
    }
}

document! {
    /// CsStaticRoutingConfiguration.
    pub struct StaticRoutingConfiguration = "CsStaticRoutingConfiguration" {
        scopes: [Global, Site, Service("Registrar")],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    route: Vec<StaticRoute> = vec![] => "Route",
        ObjList { key: "MatchUri", made_by: "New-CsStaticRoute" },
        Enforced("requests for a matching domain go to the route's destination (an IP address; \
                  routes naming a host are skipped); certificate issuer and serial are not checked");
}

document! {
    /// confab's own: an ethical wall between two segments (Lync needed a third-party product).
    pub struct InformationBarrier = "CsInformationBarrier" {
        scopes: [Named],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    segment_a: Vec<String> = vec![] => "SegmentA", StrList,
        Enforced("no request passes between the segments (403 and an audit entry)");
    segment_b: Vec<String> = vec![] => "SegmentB", StrList,
        Enforced("no request passes between the segments (403 and an audit entry)");
    enabled: bool = true => "Enabled", Bool, Enforced("a disabled barrier stops nothing");
    description: String = String::new() => "Description", text(256), Informational;
}

document! {
    /// CsServerApplication: a SIP filter script (identity `Service:Registrar:<pool>/<Name>`).
    pub struct ServerApplication = "CsServerApplication" {
        scopes: [Service("Registrar")],
        policy: false,
        get_set_only: false,
        read_by_server: true,
    }
    uri: String = String::new() => "Uri", text(1024), Informational;
    script_name: String = String::new() => "ScriptName", text(1024),
        Enforced("the Rhai script run for each message (filters.rs)");
    enabled: bool = false => "Enabled", Bool, Enforced("only enabled applications run");
    critical: bool = true => "Critical", Bool,
        Enforced("a critical application that cannot load stops the server at startup");
    priority: i64 = -1 => "Priority", int(-1, 1000),
        Enforced("applications run in this order (-1: after the others)");
}

/// confab's record of a user's per-user policies (`CsUserPolicyAssignment`, keyed
/// `user@domain`): policy short name (e.g. "ClientPolicy") → the Tag: name granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserPolicyAssignment {
    #[serde(rename = "ConferencingPolicy", skip_serializing_if = "Option::is_none")]
    pub conferencing_policy: Option<String>,
    #[serde(rename = "ClientPolicy", skip_serializing_if = "Option::is_none")]
    pub client_policy: Option<String>,
    #[serde(
        rename = "ExternalAccessPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_access_policy: Option<String>,
    #[serde(rename = "PinPolicy", skip_serializing_if = "Option::is_none")]
    pub pin_policy: Option<String>,
    #[serde(rename = "DialPlan", skip_serializing_if = "Option::is_none")]
    pub dial_plan: Option<String>,
    #[serde(rename = "VoicePolicy", skip_serializing_if = "Option::is_none")]
    pub voice_policy: Option<String>,
    #[serde(
        rename = "HostedVoicemailPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub hosted_voicemail_policy: Option<String>,
}

impl UserPolicyAssignment {
    /// The kind under which assignments are stored.
    pub const KIND: &'static str = "CsUserPolicyAssignment";

    /// The tag granted for a policy kind (by short name, e.g. "ClientPolicy").
    pub fn get(&self, policy: &str) -> Option<&str> {
        match policy {
            "ConferencingPolicy" => self.conferencing_policy.as_deref(),
            "ClientPolicy" => self.client_policy.as_deref(),
            "ExternalAccessPolicy" => self.external_access_policy.as_deref(),
            "PinPolicy" => self.pin_policy.as_deref(),
            "DialPlan" => self.dial_plan.as_deref(),
            "VoicePolicy" => self.voice_policy.as_deref(),
            "HostedVoicemailPolicy" => self.hosted_voicemail_policy.as_deref(),
            _ => None,
        }
    }
}
