//! The rules of meeting creation, in one place for the CLI (`confab meeting create`), the
//! shell (`New-CsMeeting`) and the REST API (administrators through the cmdlet, users signed
//! in with their SIP password directly): the effective CsMeetingConfiguration and the
//! organizer's CsConferencingPolicy decide the kind, the presenters and the lobby bypass
//! when the request leaves them open, and whether an assigned meeting may exist at all
//! (a request with an end time is for a private meeting).
//! See docs/meetings.md.

pub use confab_policy::{ConferencingPolicy, MeetingConfiguration};
use confab_policy::{DesignateAsPresenter, Document};
use confab_store::meetings::normalize_address;
use confab_store::{Access, Meeting, MeetingKind, NewMeeting, Presenters, Store, StoreError};
use serde_json::{json, Value};

use crate::object::Obj;

/// The CsMeetingConfiguration in force for meetings at `site`: the `Site:<site>` document
/// if there is one, else Global, else Lync's defaults.
pub fn effective_meeting_configuration(
    store: &Store,
    site: Option<&str>,
) -> Result<MeetingConfiguration, StoreError> {
    crate::policies::policy_of(store, None, site)
}

/// The CsConferencingPolicy of the user `user_key` (`user@domain`, any case, `sip:`
/// allowed): the `Tag:` policy granted to them (Grant-CsConferencingPolicy, recorded in
/// CsUserPolicyAssignment) if it still exists, else the `Site:<site>` policy, else Global,
/// else Lync's defaults. `NoSuchUser` for a user the store does not have.
pub fn conferencing_policy_for(
    store: &Store,
    user_key: &str,
    site: Option<&str>,
) -> Result<ConferencingPolicy, StoreError> {
    let (_, a) = crate::policies::user_and_assignment(store, user_key)?;
    crate::policies::policy_of(store, a.conferencing_policy.as_deref(), site)
}

/// A dial-in access number as a meeting lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccessNumber {
    /// The SIP URI identifying it (Lync's PrimaryUri), e.g. `sip:dialin@example.test`.
    pub uri: String,
    /// As shown to people, e.g. `+1 (425) 555-0100`.
    pub display_number: String,
    /// `tel:+14255550100`.
    pub line_uri: String,
    /// The primary language first, then the secondary ones.
    pub languages: Vec<String>,
}

/// The dial-in access numbers a meeting of `organizer` lists: those whose Regions hold the
/// DialinConferencingRegion of the organizer's CsDialPlan (granted, else Site, else
/// Global), by Priority then identity. None when that region is empty or the organizer's
/// CsConferencingPolicy has EnableDialInConferencing $false. `NoSuchUser` for an unknown
/// organizer.
pub fn dial_in_numbers(store: &Store, organizer: &str) -> Result<Vec<AccessNumber>, StoreError> {
    dial_in_numbers_at(store, organizer, None)
}

/// [`dial_in_numbers`] with the policies of `site`.
pub fn dial_in_numbers_at(
    store: &Store,
    organizer: &str,
    site: Option<&str>,
) -> Result<Vec<AccessNumber>, StoreError> {
    use confab_policy::DialInConferencingAccessNumber as Number;
    let plan = crate::pins::dial_plan_for(store, organizer, site)?;
    let region = plan.dialin_conferencing_region.trim();
    if region.is_empty()
        || !conferencing_policy_for(store, organizer, site)?.enable_dial_in_conferencing
    {
        return Ok(vec![]);
    }
    let mut numbers: Vec<(String, Number)> = store
        .list_config(Number::DEF.noun)?
        .into_iter()
        .map(|d| (d.identity, Number::from_body(&d.body).0))
        .filter(|(_, n)| {
            n.regions
                .iter()
                .any(|r| r.trim().eq_ignore_ascii_case(region))
        })
        .collect();
    numbers.sort_by(|(a, x), (b, y)| {
        (x.priority, a.to_ascii_lowercase()).cmp(&(y.priority, b.to_ascii_lowercase()))
    });
    Ok(numbers
        .into_iter()
        .map(|(uri, n)| AccessNumber {
            uri,
            display_number: n.display_number,
            line_uri: n.line_uri,
            languages: std::iter::once(n.primary_language)
                .chain(n.secondary_languages)
                .collect(),
        })
        .collect())
}

/// Access numbers as the shell shows them (DialInNumbers of Get-/New-CsMeeting): their
/// display numbers, or line URIs when they have none.
pub fn dial_in_display(numbers: &[AccessNumber]) -> Value {
    json!(numbers
        .iter()
        .map(|n| if n.display_number.is_empty() {
            n.line_uri.clone()
        } else {
            n.display_number.clone()
        })
        .collect::<Vec<_>>())
}

/// What a caller asks for; `None` leaves a value to the configuration and policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeetingRequest {
    /// `user@domain` (or `sip:user@domain`) of an existing user.
    pub organizer: String,
    pub kind: Option<MeetingKind>,
    pub access: Option<Access>,
    pub subject: Option<String>,
    pub presenters: Option<Presenters>,
    pub pstn_bypass_lobby: Option<bool>,
    pub invitees: Vec<String>,
    /// Unix seconds (private meetings).
    pub end_at: Option<i64>,
    /// The site whose CsMeetingConfiguration and CsConferencingPolicy apply (`None`: Global).
    pub site: Option<String>,
}

/// A meeting made (or, for an assigned one that already existed, found), with what the
/// caller should be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub meeting: Meeting,
    pub warnings: Vec<String>,
}

/// Lync's default access for a new meeting: people from the organizer's company get in
/// directly, everyone else waits in the lobby.
pub const DEFAULT_ACCESS: Access = Access::SameEnterprise;

/// Applies the rules (module docs) and creates the meeting. Refusals are
/// `StoreError::Invalid` with a message naming the setting.
pub fn create_meeting(store: &Store, req: &MeetingRequest) -> Result<Created, StoreError> {
    let organizer = normalize_address(&req.organizer)?;
    let site = req.site.as_deref();
    let cfg = effective_meeting_configuration(store, site)?;
    // an unknown organizer is reported here, before anything else
    let policy = conferencing_policy_for(store, &organizer, site)?;
    let kind = match req.kind {
        Some(MeetingKind::Assigned) if !cfg.enable_assigned_conference_type => {
            return Err(StoreError::Invalid(
                "assigned meetings are turned off (CsMeetingConfiguration EnableAssignedConferenceType is $false); create a private meeting".into(),
            ))
        }
        Some(MeetingKind::Assigned) if req.end_at.is_some() => {
            return Err(StoreError::Invalid(
                "an assigned meeting has no end time (it never expires); make a private meeting"
                    .into(),
            ))
        }
        Some(k) => k,
        // a meeting with an end is a one-time meeting
        None if req.end_at.is_some() => MeetingKind::Private,
        None if cfg.assigned_conference_type_by_default && cfg.enable_assigned_conference_type => {
            MeetingKind::Assigned
        }
        None => MeetingKind::Private,
    };
    let presenters = req.presenters.unwrap_or(match cfg.designate_as_presenter {
        DesignateAsPresenter::None => Presenters::None,
        DesignateAsPresenter::Company => Presenters::Company,
        DesignateAsPresenter::Everyone => Presenters::Everyone,
    });
    let access = req.access.unwrap_or(DEFAULT_ACCESS);
    let mut warnings = vec![];
    let existing = if kind == MeetingKind::Assigned {
        store
            .meetings(Some(&organizer))?
            .into_iter()
            .find(|m| m.kind == MeetingKind::Assigned)
    } else {
        None
    };
    let meeting = match existing {
        Some(m) => {
            warnings.push(format!(
                "{organizer} already has an assigned meeting; it is returned unchanged (an assigned meeting keeps its key, conference ID and settings)"
            ));
            m
        }
        None => store.create_meeting(&NewMeeting {
            organizer: organizer.clone(),
            kind,
            access,
            subject: req.subject.clone().unwrap_or_default(),
            presenters,
            pstn_bypass_lobby: req
                .pstn_bypass_lobby
                .unwrap_or(cfg.pstn_callers_bypass_lobby),
            invitees: req.invitees.clone(),
            end_at: req.end_at,
        })?,
    };
    if meeting.access == Access::Everyone && !policy.allow_anonymous_participants_in_meetings {
        warnings.push(format!(
            "the conferencing policy of {organizer} has AllowAnonymousParticipantsInMeetings $false: anonymous callers will be refused although the access is Everyone"
        ));
    }
    if kind == MeetingKind::Assigned
        && req.presenters == Some(Presenters::Everyone)
        && meeting.presenters == Presenters::Company
    {
        warnings.push(
            "an assigned meeting cannot make everyone a presenter; presenters are Company".into(),
        );
    }
    Ok(Created { meeting, warnings })
}

/// The cmdlet whose right live meeting control (admit, deny, mute, unmute, remove a
/// participant over REST) requires of an administrator: whoever may remove a meeting may
/// run it.
pub const LIVE_CONTROL_CMDLET: &str = "Remove-CsMeeting";

/// Whether the administrator `principal` may control the live meeting `key` (roles and the
/// organizer's OU against their user scopes, as [`LIVE_CONTROL_CMDLET`] would be checked);
/// the meeting on success. Errors are the shell's: not found, denied, out of scope.
pub fn authorize_live_control(
    store: &Store,
    principal: &crate::Principal,
    key: &str,
) -> Result<Meeting, crate::ExecError> {
    use crate::ExecError;
    let cmdlet = LIVE_CONTROL_CMDLET;
    let failed = |message: String| ExecError::Failed {
        cmdlet: cmdlet.into(),
        message,
    };
    let meeting = store
        .meeting_by_key(key)
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| {
            failed(format!(
                "Management object not found for identity \"{key}\""
            ))
        })?;
    let (u, d) = meeting
        .organizer
        .split_once('@')
        .unwrap_or((&meeting.organizer, ""));
    let ou = store
        .get_user(u, d)
        .map_err(|e| failed(e.to_string()))?
        .and_then(|u| u.ou);
    let roles = &principal.roles;
    if !roles.iter().any(|r| r.permits(cmdlet)) {
        return Err(ExecError::Denied {
            cmdlet: cmdlet.into(),
            admin: principal.name.clone(),
            allowed_by: crate::roles::BUILTIN_ROLES
                .iter()
                .filter_map(|r| crate::roles::Role::builtin(r))
                .filter(|r| r.allows(cmdlet))
                .map(|r| r.identity)
                .collect(),
        });
    }
    if !roles
        .iter()
        .any(|r| r.permits(cmdlet) && r.covers_user(ou.as_deref()))
    {
        let mut scopes: Vec<String> = vec![];
        for r in roles.iter().filter(|r| r.permits(cmdlet)) {
            for sc in &r.user_scopes {
                if !scopes.contains(sc) {
                    scopes.push(sc.clone());
                }
            }
        }
        return Err(ExecError::OutOfScope {
            cmdlet: cmdlet.into(),
            admin: principal.name.clone(),
            object: match &ou {
                Some(ou) => format!("sip:{} ({ou})", meeting.organizer),
                None => format!("sip:{} (in no OU)", meeting.organizer),
            },
            scope_kind: "user",
            scopes,
        });
    }
    Ok(meeting)
}

/// Unix seconds as RFC 3339 UTC (`2026-12-06T23:28:13Z`).
pub fn rfc3339(secs: i64) -> String {
    let t = confab_sip::message::UtcTime::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Parses an RFC 3339 date-time (`2026-12-24T10:00:00Z`, `…+01:00`, fractional seconds
/// allowed) to unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 date-time such as 2026-12-24T10:00:00Z");
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let h: i64 = o[1..3].parse().map_err(|_| bad())?;
            let m: i64 = o[4..6].parse().map_err(|_| bad())?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let v = h * 3600 + m * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return Err(bad()),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    // days from the civil date (Howard Hinnant's algorithm)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

/// A meeting as JSON for `confab meeting … --json`: the stored fields (snake_case) with
/// `uri` and `meet_url`, times in unix seconds.
pub fn meeting_json(m: &Meeting) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("uri".into(), json!(m.uri()));
        o.insert("meet_url".into(), json!(m.meet_url()));
    }
    v
}

/// A meeting as the shell (and the REST API) shows it: a `CsMeeting` record whose
/// Identity is the conference key.
pub fn meeting_obj(m: &Meeting) -> Obj {
    let time = |t: Option<i64>| t.map(rfc3339).map(Value::String).unwrap_or(Value::Null);
    Obj::record(
        "CsMeeting",
        vec![
            ("Identity".into(), json!(m.key)),
            ("Organizer".into(), json!(format!("sip:{}", m.organizer))),
            ("ConferenceId".into(), json!(m.conference_id)),
            ("Kind".into(), json!(m.kind.as_str())),
            ("Subject".into(), json!(m.subject)),
            ("Access".into(), json!(m.access.as_str())),
            ("Presenters".into(), json!(m.presenters.as_str())),
            ("PstnBypassLobby".into(), json!(m.pstn_bypass_lobby)),
            ("Invitees".into(), json!(m.invitees)),
            ("Uri".into(), json!(m.uri())),
            ("MeetUrl".into(), json!(m.meet_url())),
            ("CreatedAt".into(), json!(rfc3339(m.created_at))),
            ("EndTime".into(), time(m.end_at)),
            ("LastUsed".into(), time(m.last_used_at)),
            ("ExpiresAt".into(), time(m.expires_at)),
        ],
    )
}

/// [`meeting_obj`] with DialInNumbers (after ConferenceId): the display numbers of
/// `numbers` ([`dial_in_numbers`] of the organizer).
pub fn meeting_obj_with_numbers(m: &Meeting, numbers: &[AccessNumber]) -> Obj {
    let mut o = meeting_obj(m);
    if let Obj::Record { props, .. } = &mut o {
        let at = props
            .iter()
            .position(|(k, _)| k == "ConferenceId")
            .map_or(props.len(), |i| i + 1);
        props.insert(at, ("DialInNumbers".into(), dial_in_display(numbers)));
    }
    o
}

/// [`meeting_json`] with `dial_in`: `[{display_number, line_uri, uri, languages}]`.
pub fn meeting_json_with_numbers(m: &Meeting, numbers: &[AccessNumber]) -> Value {
    let mut v = meeting_json(m);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "dial_in".into(),
            serde_json::to_value(numbers).unwrap_or_else(|_| json!([])),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_store::NewUser;

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-12-06T23:28:13Z"), Ok(1_796_599_693));
        assert_eq!(rfc3339(1_796_599_693), "2026-12-06T23:28:13Z");
        assert_eq!(
            parse_rfc3339("2026-12-07T00:28:13.250+01:00"),
            Ok(1_796_599_693)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00-00:30"),
            Ok(1_709_166_600)
        );
        for bad in [
            "",
            "2026-12-06",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-12-06T24:00:00Z",
            "2026-12-06T23:28:13",
            "2026-12-06T23:28:13+1:00",
            "2026-12-06T23:28:13.Z",
            "+026-12-06T23:28:13Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    fn store() -> Store {
        let s = Store::open_in_memory().unwrap();
        for u in ["alice", "bob"] {
            s.add_user(&NewUser {
                username: u,
                domain: "a.test",
                display_name: "",
                password: "pw",
            })
            .unwrap();
        }
        s
    }

    fn put(s: &Store, kind: &str, id: &str, body: Value) {
        s.put_config(kind, id, body.as_object().unwrap()).unwrap();
    }

    #[test]
    fn defaults_make_an_assigned_meeting_same_enterprise() {
        let s = store();
        let c = create_meeting(
            &s,
            &MeetingRequest {
                organizer: "alice@a.test".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.meeting.kind, MeetingKind::Assigned);
        assert_eq!(c.meeting.access, Access::SameEnterprise);
        assert_eq!(c.meeting.presenters, Presenters::Company);
        assert!(c.meeting.pstn_bypass_lobby);
        assert!(c.warnings.is_empty());
        let again = create_meeting(
            &s,
            &MeetingRequest {
                organizer: "sip:Alice@a.test".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(again.meeting, c.meeting);
        assert_eq!(again.warnings.len(), 1);
    }

    #[test]
    fn meeting_configuration_decides_kind_presenters_and_bypass() {
        let s = store();
        put(
            &s,
            "CsMeetingConfiguration",
            "Global",
            json!({
            "AssignedConferenceTypeByDefault": false, "EnableAssignedConferenceType": true,
            "DesignateAsPresenter": "None", "PstnCallersBypassLobby": false}),
        );
        let req = MeetingRequest {
            organizer: "alice@a.test".into(),
            ..Default::default()
        };
        let c = create_meeting(&s, &req).unwrap().meeting;
        assert_eq!(c.kind, MeetingKind::Private);
        assert_eq!(c.presenters, Presenters::None);
        assert!(!c.pstn_bypass_lobby);
        // asking explicitly still works while assigned meetings are enabled
        let a = create_meeting(
            &s,
            &MeetingRequest {
                kind: Some(MeetingKind::Assigned),
                ..req.clone()
            },
        )
        .unwrap();
        assert_eq!(a.meeting.kind, MeetingKind::Assigned);
        // a site document wins for that site only
        put(
            &s,
            "CsMeetingConfiguration",
            "Site:Redmond",
            json!({"EnableAssignedConferenceType": false}),
        );
        let e = create_meeting(
            &s,
            &MeetingRequest {
                kind: Some(MeetingKind::Assigned),
                site: Some("redmond".into()),
                ..req.clone()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("EnableAssignedConferenceType"),
            "{e}"
        );
        let p = create_meeting(
            &s,
            &MeetingRequest {
                site: Some("Redmond".into()),
                ..req.clone()
            },
        )
        .unwrap();
        assert_eq!(p.meeting.kind, MeetingKind::Private);
        assert_eq!(
            effective_meeting_configuration(&s, Some("Dublin"))
                .unwrap()
                .designate_as_presenter,
            DesignateAsPresenter::None
        );
    }

    #[test]
    fn a_granted_tag_policy_applies_to_its_user_only() {
        let s = store();
        put(
            &s,
            "CsConferencingPolicy",
            "Tag:NoAnon",
            json!({"AllowAnonymousParticipantsInMeetings": false}),
        );
        put(
            &s,
            "CsUserPolicyAssignment",
            "alice@a.test",
            json!({"ConferencingPolicy": "NoAnon"}),
        );
        assert!(
            !conferencing_policy_for(&s, "alice@a.test", None)
                .unwrap()
                .allow_anonymous_participants_in_meetings
        );
        assert!(
            conferencing_policy_for(&s, "bob@a.test", None)
                .unwrap()
                .allow_anonymous_participants_in_meetings
        );
        let everyone = |who: &str| MeetingRequest {
            organizer: who.into(),
            access: Some(Access::Everyone),
            kind: Some(MeetingKind::Private),
            ..Default::default()
        };
        let a = create_meeting(&s, &everyone("alice@a.test")).unwrap();
        assert_eq!(a.meeting.access, Access::Everyone, "stored as asked");
        assert!(
            a.warnings
                .iter()
                .any(|w| w.contains("AllowAnonymousParticipantsInMeetings")),
            "{:?}",
            a.warnings
        );
        assert!(create_meeting(&s, &everyone("bob@a.test"))
            .unwrap()
            .warnings
            .is_empty());
        assert!(matches!(
            conferencing_policy_for(&s, "zed@a.test", None),
            Err(StoreError::NoSuchUser(_))
        ));
        assert!(matches!(
            create_meeting(&s, &everyone("zed@a.test")),
            Err(StoreError::NoSuchUser(_))
        ));
    }
}
