//! The REST API's live meeting routes (confab-web's `LiveMeetings`) on this process's
//! conference focus: roster and lobby, admit / deny / mute / unmute / remove.

use confab_server::core::Core;
use confab_server::focus::{
    LiveAction as FocusAction, LiveFailure, LiveParticipant as FocusParticipant,
};
use confab_server::transport::Transports;
use confab_web::meetings::{
    Actor, LiveAction, LiveError, LiveMeetings, LiveParticipant, LiveRoster,
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
        })
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
