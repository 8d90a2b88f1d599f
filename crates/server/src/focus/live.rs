//! What leaders do: the organizer and presenters (REST, the CLI through it, and RFC 4579
//! REFER with `method=BYE`) admit, deny, mute and remove participants.

use super::*;

impl Core {
    /// REFER to the conference URI (out of dialog).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conference_refer(
        &self,
        shard: &mut Shard,
        msg: &Message,
        conf: &ConfAddr,
        caller: &Caller,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let pid = {
            let st = self.focus.state.lock();
            let Some(c) = st.confs.get(&conf.key) else {
                return Verdict::reply(480, "The meeting has not started");
            };
            match participant_of(c, caller, src) {
                Some(p) => p,
                None => return Verdict::reply(403, "Only presenters may remove participants"),
            }
        };
        let tag = random_token(16);
        self.refer_from(shard, msg, &conf.key, pid, &tag, src, now, out)
    }

    /// RFC 4579 §5.5: a presenter removes a participant (`Refer-To: <uri;method=BYE>` or
    /// `<uri?method=BYE>`). Answered 202, then a NOTIFY with the outcome.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refer_from(
        &self,
        shard: &mut Shard,
        msg: &Message,
        conf_key: &str,
        pid: u32,
        tag: &str,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let Some(refer_to) = msg.header(&HeaderName::ReferTo).map(|t| t.to_string()) else {
            return Verdict::reply(400, "REFER without Refer-To");
        };
        let lower = refer_to.to_ascii_lowercase();
        if !lower.contains("method=bye") {
            if lower.contains("method=") && !lower.contains("method=invite") {
                return Verdict::reply(
                    501,
                    "The focus takes REFER with method=BYE (removal) or INVITE (dial-out)",
                );
            }
            return self.refer_dial_out(shard, msg, conf_key, pid, tag, &refer_to, src, now, out);
        }
        let target = refer_to
            .trim()
            .trim_start_matches('<')
            .split(['?', '>'])
            .next()
            .unwrap_or("")
            .replace(";method=BYE", "")
            .replace(";method=bye", "");
        let mut sends = Sends::default();
        let uri;
        {
            let mut st = self.focus.state.lock();
            let Some(c) = st.confs.get(conf_key) else {
                return Verdict::reply(481, "Call/Transaction Does Not Exist");
            };
            if !c.is_leader(pid) {
                return Verdict::reply(
                    403,
                    "Only the organizer and presenters may remove participants",
                );
            }
            let Some(victim) = c.find(&target) else {
                return Verdict::reply(404, "No such participant");
            };
            uri = c.uri.clone();
            tracing::info!(meeting = %conf_key, by = pid, participant = victim, "removed by a presenter");
            self.remove_participant(&mut st, conf_key, victim, true, now, &mut sends);
        }
        let mut resp = self.focus_response(msg, 202, Some("Accepted"), tag, &uri, src);
        if msg.to_hdr().is_some_and(|t| t.tag().is_some()) {
            fix_to(&mut resp, msg);
        }
        // the implicit subscription's outcome (RFC 3515 §2.4.5), in the REFER's dialog: the
        // referrer's call with the focus, or the dialog this REFER made
        let sent = {
            let mut st = self.focus.state.lock();
            self.refer_notify_in(&mut st, msg, conf_key, pid, tag, src, 200, true)
        };
        sends.requests.extend(sent);
        self.flush_locked(shard, sends, out);
        Verdict::Respond(Box::new(resp))
    }

    /// (user@domain, meeting key, joined) of every identified participant here, at most
    /// `max` (the pool's live sessions).
    pub(crate) fn meeting_seats(&self, max: usize) -> Vec<(String, String, Instant)> {
        let st = self.focus.state.lock();
        st.confs
            .iter()
            .filter(|(k, _)| k.as_str() != super::dialin::ATTENDANT)
            .flat_map(|(k, c)| {
                c.participants
                    .iter()
                    .filter_map(move |p| p.key.clone().map(|u| (u, k.clone(), p.joined)))
            })
            .take(max)
            .collect()
    }

    /// The roster and lobby of a live meeting (for REST and the CLI).
    pub fn live_roster(&self, key: &str) -> Option<LiveView> {
        let st = self.focus.state.lock();
        let c = st.confs.get(key)?;
        let view = |p: &Participant| LiveParticipant {
            id: format!("p{}", p.id),
            user: p.user.clone(),
            display: p.display.clone(),
            role: p.role.as_str(),
            muted: p.muted,
            origin: match &p.caller {
                Caller::Anonymous if p.lang.is_some() => "phone",
                Caller::Enterprise(_) => "enterprise",
                Caller::Federated(_) => "federated",
                Caller::Anonymous => "anonymous",
            },
        };
        Some(LiveView {
            organizer: c.rules.organizer.clone(),
            locked: c.locked,
            participants: c
                .participants
                .iter()
                .filter(|p| !p.lobby)
                .map(view)
                .collect(),
            lobby: c
                .participants
                .iter()
                .filter(|p| p.lobby)
                .map(view)
                .collect(),
        })
    }

    /// Whether `user` (`user@domain`) may lead the live meeting: its organizer, or a
    /// presenter in it.
    pub fn may_lead(&self, key: &str, user: &str) -> Option<bool> {
        let st = self.focus.state.lock();
        let c = st.confs.get(key)?;
        Some(
            c.rules.organizer.eq_ignore_ascii_case(user)
                || c.participants.iter().any(|p| {
                    !p.lobby
                        && p.role == Role::Presenter
                        && p.key
                            .as_deref()
                            .is_some_and(|k| k.eq_ignore_ascii_case(user))
                }),
        )
    }

    /// A leader's action on a participant of a live meeting.
    pub fn live_act(
        &self,
        key: &str,
        participant: &str,
        action: LiveAction,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), LiveFailure> {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            let c = st.confs.get_mut(key).ok_or(LiveFailure::NotLive)?;
            let id = c.find(participant).ok_or(LiveFailure::NoSuchParticipant)?;
            let p = c
                .participant_mut(id)
                .ok_or(LiveFailure::NoSuchParticipant)?;
            match action {
                LiveAction::Admit => {
                    if !p.lobby {
                        return Err(LiveFailure::Invalid("not in the lobby".into()));
                    }
                    self.admit_from_lobby(&mut st, key, id, now, &mut sends);
                }
                LiveAction::Deny => {
                    if !p.lobby {
                        return Err(LiveFailure::Invalid("not in the lobby (use remove)".into()));
                    }
                    tracing::info!(meeting = %key, participant = id, "denied entry");
                    self.remove_participant(&mut st, key, id, true, now, &mut sends);
                }
                LiveAction::Mute | LiveAction::Unmute => {
                    if p.lobby {
                        return Err(LiveFailure::Invalid("in the lobby".into()));
                    }
                    p.muted = action == LiveAction::Mute;
                    if let (Some(m), Some(leg)) = (&self.focus.media, p.leg) {
                        m.set_mode(leg, leg_mode(p));
                    }
                    self.roster_changed(&mut st, key, &[id], &[], now, &mut sends);
                }
                LiveAction::Remove => {
                    tracing::info!(meeting = %key, participant = id, "removed");
                    self.remove_participant(&mut st, key, id, true, now, &mut sends);
                }
            }
        }
        self.flush(sends, now, out);
        Ok(())
    }
}

impl Core {
    /// A leader's action on a whole live meeting: lock it (what the `*7` keypad command
    /// does: everyone but leaders waits in the lobby), unlock it, or end it (every
    /// participant, lobby included, gets a BYE and the conference ends).
    pub fn live_meeting(
        &self,
        key: &str,
        action: MeetingAction,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), LiveFailure> {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            if key == dialin::ATTENDANT {
                return Err(LiveFailure::NotLive);
            }
            let c = st.confs.get_mut(key).ok_or(LiveFailure::NotLive)?;
            match action {
                MeetingAction::Lock | MeetingAction::Unlock => {
                    let locked = action == MeetingAction::Lock;
                    if c.locked != locked {
                        c.locked = locked;
                        tracing::info!(meeting = %key, locked, "meeting lock changed by a leader");
                        self.focus.changed(key);
                    }
                }
                MeetingAction::End => {
                    let ids: Vec<u32> = c.participants.iter().map(|p| p.id).collect();
                    tracing::info!(meeting = %key, participants = ids.len(), "meeting ended by a leader");
                    for id in ids {
                        self.remove_participant(&mut st, key, id, true, now, &mut sends);
                    }
                }
            }
        }
        self.flush(sends, now, out);
        Ok(())
    }

    /// Lets a participant in from the lobby: it hears and is heard, shows on the roster,
    /// and is announced.
    pub(super) fn admit_from_lobby(
        &self,
        st: &mut State,
        key: &str,
        id: u32,
        now: Instant,
        sends: &mut Sends,
    ) {
        let Some(p) = st.confs.get_mut(key).and_then(|c| c.participant_mut(id)) else {
            return;
        };
        if !p.lobby {
            return;
        }
        p.lobby = false;
        p.joined = now;
        if let (Some(m), Some(leg)) = (&self.focus.media, p.leg) {
            m.set_mode(leg, leg_mode(p));
        }
        tracing::info!(meeting = %key, participant = id, "admitted from the lobby");
        self.entered(st, key, id, now, sends);
    }
}

/// A participant as REST and the CLI see it.
#[derive(Clone, Debug)]
pub struct LiveParticipant {
    pub id: String,
    pub user: String,
    pub display: String,
    pub role: &'static str,
    pub muted: bool,
    pub origin: &'static str,
}

#[derive(Clone, Debug)]
pub struct LiveView {
    pub organizer: String,
    /// Locked by a leader (`*7`, the web, REST): everyone but leaders waits in the lobby.
    pub locked: bool,
    pub participants: Vec<LiveParticipant>,
    pub lobby: Vec<LiveParticipant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveAction {
    Admit,
    Deny,
    Mute,
    Unmute,
    Remove,
}

/// A leader's action on a whole meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeetingAction {
    Lock,
    Unlock,
    End,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LiveFailure {
    NotLive,
    NoSuchParticipant,
    Invalid(String),
}
