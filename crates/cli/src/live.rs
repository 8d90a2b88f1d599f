//! The REST API's live meeting routes (confab-web's `LiveMeetings`) on this process's
//! conference focus: roster and lobby, admit / deny / mute / unmute / remove.

use confab_server::core::Core;
use confab_server::focus::{
    LiveAction as FocusAction, LiveFailure, LiveParticipant as FocusParticipant,
    MeetingAction as FocusMeetingAction,
};
use confab_server::transport::Transports;
use confab_web::meetings::{
    Actor, LiveAction, LiveError, LiveMeetings, LiveParticipant, LiveRoster, MeetingAction,
};
use std::sync::Arc;
use std::time::Instant;

pub struct Live {
    pub core: Arc<Core>,
    pub transports: Arc<Transports>,
}

fn participant(p: FocusParticipant, organizer: &str) -> LiveParticipant {
    let is_organizer = p
        .user
        .strip_prefix("sip:")
        .is_some_and(|u| u.eq_ignore_ascii_case(organizer));
    LiveParticipant {
        id: p.id,
        display: p.display,
        role: if is_organizer { "organizer" } else { p.role }.to_string(),
        muted: p.muted,
        origin: if is_organizer { "organizer" } else { p.origin }.to_string(),
    }
}

fn failure(e: LiveFailure) -> LiveError {
    match e {
        LiveFailure::NotLive => LiveError::NotLive,
        LiveFailure::NoSuchParticipant => LiveError::NoSuchParticipant,
        LiveFailure::Invalid(m) => LiveError::Invalid(m),
    }
}

impl Live {
    /// A user must lead the live meeting (administrators were checked by the caller).
    fn authorize(&self, key: &str, actor: &Actor) -> Result<(), LiveError> {
        if let Actor::User(u) = actor {
            match self.core.may_lead(key, u) {
                None => return Err(LiveError::NotLive),
                Some(false) => return Err(LiveError::Forbidden),
                Some(true) => {}
            }
        }
        Ok(())
    }

    /// The BYEs and NOTIFYs an action caused go out on the SIP transports.
    fn dispatch(&self, mut out: Vec<confab_server::net::Outgoing>) {
        let t = self.transports.clone();
        tokio::runtime::Handle::current().spawn(async move { t.dispatch(&mut out).await });
    }
}

impl LiveMeetings for Live {
    fn roster(&self, key: &str) -> Option<LiveRoster> {
        let key = key.to_ascii_uppercase();
        let v = self.core.live_roster(&key)?;
        let org = v.organizer.clone();
        Some(LiveRoster {
            participants: v
                .participants
                .into_iter()
                .map(|p| participant(p, &org))
                .collect(),
            lobby: v.lobby.into_iter().map(|p| participant(p, &org)).collect(),
            locked: v.locked,
        })
    }

    fn meeting_act(
        &self,
        key: &str,
        actor: &Actor,
        action: MeetingAction,
    ) -> Result<(), LiveError> {
        let key = key.to_ascii_uppercase();
        self.authorize(&key, actor)?;
        let action = match action {
            MeetingAction::Lock => FocusMeetingAction::Lock,
            MeetingAction::Unlock => FocusMeetingAction::Unlock,
            MeetingAction::End => FocusMeetingAction::End,
        };
        let mut out = vec![];
        self.core
            .live_meeting(&key, action, Instant::now(), &mut out)
            .map_err(failure)?;
        self.dispatch(out);
        Ok(())
    }

    fn may_lead(&self, key: &str, user: &str) -> Option<bool> {
        self.core.may_lead(&key.to_ascii_uppercase(), user)
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<str>> {
        self.core.focus.subscribe_changes()
    }

    fn act(
        &self,
        key: &str,
        actor: &Actor,
        who: &str,
        action: LiveAction,
    ) -> Result<(), LiveError> {
        let key = key.to_ascii_uppercase();
        if let Actor::User(u) = actor {
            match self.core.may_lead(&key, u) {
                None => return Err(LiveError::NotLive),
                Some(false) => return Err(LiveError::Forbidden),
                Some(true) => {}
            }
        }
        let mut out = vec![];
        if action == LiveAction::DialOut {
            self.core
                .live_dial_out(&key, who, Instant::now(), &mut out)
                .map_err(|e| match e {
                    LiveFailure::NotLive => LiveError::NotLive,
                    LiveFailure::NoSuchParticipant => LiveError::NoSuchParticipant,
                    LiveFailure::Invalid(m) => LiveError::Invalid(m),
                })?;
            let t = self.transports.clone();
            tokio::runtime::Handle::current().spawn(async move { t.dispatch(&mut out).await });
            return Ok(());
        }
        let action = match action {
            LiveAction::DialOut => unreachable!("handled above"),
            LiveAction::Admit => FocusAction::Admit,
            LiveAction::Deny => FocusAction::Deny,
            LiveAction::Mute => FocusAction::Mute,
            LiveAction::Unmute => FocusAction::Unmute,
            LiveAction::Remove => FocusAction::Remove,
        };
        self.core
            .live_act(&key, who, action, Instant::now(), &mut out)
            .map_err(|e| match e {
                LiveFailure::NotLive => LiveError::NotLive,
                LiveFailure::NoSuchParticipant => LiveError::NoSuchParticipant,
                LiveFailure::Invalid(m) => LiveError::Invalid(m),
            })?;
        // the BYEs and NOTIFYs it caused go out on the SIP transports
        let t = self.transports.clone();
        tokio::runtime::Handle::current().spawn(async move { t.dispatch(&mut out).await });
        Ok(())
    }
}
