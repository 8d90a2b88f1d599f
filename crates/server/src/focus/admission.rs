//! Who gets into a meeting, and how: joins, waits in the lobby, or is refused — decided at
//! once from the meeting, the caller's proven origin and the organizer's policy (Lync 2013:
//! access levels Locked / Invited / SameEnterprise / Everyone, "Locked overrides any
//! bypass", CsConferencingPolicy MaxMeetingSize / AllowIPAudio /
//! AllowAnonymousParticipantsInMeetings, CsMeetingConfiguration
//! AdmitAnonymousUsersByDefault). Pure: no I/O, no clock.

/// The meeting's access level ("Who gets in directly?").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only the organizer; everyone else is refused.
    Locked,
    /// The organizer, presenters and the people invited; others wait in the lobby.
    Invited,
    /// Everyone of the organisation; federated and anonymous callers wait.
    SameEnterprise,
    /// Everyone gets in directly (anonymous callers when the policy allows them).
    Everyone,
}

/// Who may present (CsMeetingConfiguration DesignateAsPresenter, per meeting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presenters {
    None,
    Company,
    Everyone,
}

/// Where the caller really comes from (the pipeline's proven origin, not the From header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A user of ours, proven by digest (or a trusted peer's word): `user@domain`.
    Enterprise(String),
    /// A user of a federated partner domain (`user@domain`, or the domain alone).
    Federated(String),
    /// Nobody proven: an anonymous or unauthenticated caller.
    Anonymous,
}

/// What the focus needs to know of the meeting and the organizer's policy.
#[derive(Clone, Debug)]
pub struct Rules {
    pub organizer: String,
    pub access: Access,
    pub presenters: Presenters,
    pub assigned: bool,
    pub invitees: Vec<String>,
    /// CsConferencingPolicy MaxMeetingSize (participants and lobby together).
    pub max_size: usize,
    /// CsConferencingPolicy AllowIPAudio.
    pub allow_ip_audio: bool,
    /// CsConferencingPolicy AllowAnonymousParticipantsInMeetings.
    pub allow_anonymous: bool,
    /// CsMeetingConfiguration AdmitAnonymousUsersByDefault: when false, anonymous callers
    /// wait in the lobby even of an Everyone meeting.
    pub admit_anonymous: bool,
}

/// The role a participant holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Presenter,
    Attendee,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Presenter => "presenter",
            Role::Attendee => "attendee",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Join(Role),
    Lobby(Role),
    Refuse(u16, &'static str),
}

impl Rules {
    /// The role `caller` has in this meeting.
    pub(crate) fn role_of(&self, caller: &Caller) -> Role {
        match caller {
            Caller::Enterprise(k) if *k == self.organizer => Role::Presenter,
            Caller::Enterprise(_) => match self.presenters {
                Presenters::Company | Presenters::Everyone => Role::Presenter,
                Presenters::None => Role::Attendee,
            },
            // an assigned (reusable) meeting never makes outsiders presenters
            Caller::Federated(_) | Caller::Anonymous
                if self.presenters == Presenters::Everyone && !self.assigned =>
            {
                Role::Presenter
            }
            _ => Role::Attendee,
        }
    }

    /// Decides the join of a phone caller who did not sign in as a leader (a dial-in
    /// caller): bounded by MaxMeetingSize; in directly when the meeting lets callers bypass
    /// the lobby (PstnCallersBypassLobby), else the lobby; a Locked meeting overrides any
    /// bypass (the caller waits for a leader). AllowIPAudio and the anonymous-participant
    /// policy are about IP clients, not phone callers.
    pub(crate) fn admit_phone(&self, present: usize, bypass_lobby: bool) -> Decision {
        if present >= self.max_size {
            return Decision::Refuse(486, "Meeting full (MaxMeetingSize)");
        }
        if bypass_lobby && self.access != Access::Locked {
            Decision::Join(Role::Attendee)
        } else {
            Decision::Lobby(Role::Attendee)
        }
    }

    /// Decides one join. `present` counts the participants and the lobby already there.
    pub(crate) fn admit(&self, caller: &Caller, present: usize) -> Decision {
        if !self.allow_ip_audio {
            return Decision::Refuse(
                488,
                "IP audio is not allowed in this meeting (AllowIPAudio)",
            );
        }
        if present >= self.max_size {
            return Decision::Refuse(486, "Meeting full (MaxMeetingSize)");
        }
        let organizer = matches!(caller, Caller::Enterprise(k) if *k == self.organizer);
        let role = self.role_of(caller);
        if organizer {
            return Decision::Join(role);
        }
        if self.access == Access::Locked {
            return Decision::Refuse(403, "Meeting locked: only the organizer may join");
        }
        if *caller == Caller::Anonymous && !self.allow_anonymous {
            return Decision::Refuse(
                403,
                "Anonymous participants are not allowed in this meeting (AllowAnonymousParticipantsInMeetings)",
            );
        }
        let direct = match (self.access, caller) {
            (Access::Locked, _) => false,
            (Access::Invited, Caller::Enterprise(k) | Caller::Federated(k)) => {
                self.invitees.iter().any(|i| i.eq_ignore_ascii_case(k))
            }
            (Access::Invited, Caller::Anonymous) => false,
            (Access::SameEnterprise, Caller::Enterprise(_)) => true,
            (Access::SameEnterprise, _) => false,
            (Access::Everyone, Caller::Anonymous) => self.admit_anonymous,
            (Access::Everyone, _) => true,
        };
        if direct {
            Decision::Join(role)
        } else {
            Decision::Lobby(role)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(access: Access) -> Rules {
        Rules {
            organizer: "alice@example.test".into(),
            access,
            presenters: Presenters::Company,
            assigned: false,
            invitees: vec!["bob@example.test".into()],
            max_size: 250,
            allow_ip_audio: true,
            allow_anonymous: true,
            admit_anonymous: true,
        }
    }
    fn ent(k: &str) -> Caller {
        Caller::Enterprise(format!("{k}@example.test"))
    }

    #[test]
    fn organizer_always_joins_as_presenter_even_locked() {
        for a in [
            Access::Locked,
            Access::Invited,
            Access::SameEnterprise,
            Access::Everyone,
        ] {
            assert_eq!(
                rules(a).admit(&ent("alice"), 0),
                Decision::Join(Role::Presenter)
            );
        }
    }

    #[test]
    fn locked_refuses_everyone_else() {
        let r = rules(Access::Locked);
        for c in [
            ent("bob"),
            ent("carol"),
            Caller::Federated("x@partner.test".into()),
            Caller::Anonymous,
        ] {
            assert!(matches!(r.admit(&c, 1), Decision::Refuse(403, _)), "{c:?}");
        }
    }

    #[test]
    fn invited_lets_invitees_in_and_others_wait() {
        let r = rules(Access::Invited);
        assert_eq!(r.admit(&ent("bob"), 1), Decision::Join(Role::Presenter));
        assert_eq!(r.admit(&ent("carol"), 1), Decision::Lobby(Role::Presenter));
        assert_eq!(
            r.admit(&Caller::Anonymous, 1),
            Decision::Lobby(Role::Attendee)
        );
    }

    #[test]
    fn same_enterprise_lets_colleagues_in_and_outsiders_wait() {
        let r = rules(Access::SameEnterprise);
        assert_eq!(r.admit(&ent("carol"), 1), Decision::Join(Role::Presenter));
        assert_eq!(
            r.admit(&Caller::Federated("x@partner.test".into()), 1),
            Decision::Lobby(Role::Attendee)
        );
        assert_eq!(
            r.admit(&Caller::Anonymous, 1),
            Decision::Lobby(Role::Attendee)
        );
    }

    #[test]
    fn everyone_admits_anonymous_unless_policy_or_configuration_says_otherwise() {
        let mut r = rules(Access::Everyone);
        assert_eq!(
            r.admit(&Caller::Anonymous, 1),
            Decision::Join(Role::Attendee)
        );
        r.admit_anonymous = false;
        assert_eq!(
            r.admit(&Caller::Anonymous, 1),
            Decision::Lobby(Role::Attendee)
        );
        r.allow_anonymous = false;
        assert!(matches!(
            r.admit(&Caller::Anonymous, 1),
            Decision::Refuse(403, _)
        ));
    }

    #[test]
    fn max_meeting_size_refuses_the_next_caller_even_the_organizer() {
        let mut r = rules(Access::Everyone);
        r.max_size = 3;
        assert!(matches!(r.admit(&ent("carol"), 2), Decision::Join(_)));
        assert!(matches!(
            r.admit(&ent("carol"), 3),
            Decision::Refuse(486, _)
        ));
        assert!(matches!(
            r.admit(&ent("alice"), 3),
            Decision::Refuse(486, _)
        ));
    }

    #[test]
    fn no_ip_audio_refuses_audio_joins() {
        let mut r = rules(Access::Everyone);
        r.allow_ip_audio = false;
        assert!(matches!(
            r.admit(&ent("alice"), 0),
            Decision::Refuse(488, _)
        ));
    }

    #[test]
    fn presenters_follow_designate_as_presenter() {
        let mut r = rules(Access::Everyone);
        r.presenters = Presenters::None;
        assert_eq!(r.role_of(&ent("carol")), Role::Attendee);
        assert_eq!(r.role_of(&ent("alice")), Role::Presenter);
        r.presenters = Presenters::Everyone;
        assert_eq!(r.role_of(&Caller::Anonymous), Role::Presenter);
        r.assigned = true;
        assert_eq!(r.role_of(&Caller::Anonymous), Role::Attendee);
    }
}
