//! The conferencing attendant's spoken prompts: text per language, spoken by Debian's
//! `espeak-ng`, cached as WAV in a directory (the server's data directory) and in memory.
//! (Interface stub: the prompts work fills it in.)

use crate::clip::Clip;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything the attendant and the keypad say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prompt {
    /// "Welcome to the conferencing service."
    Welcome,
    /// "Please enter the conference ID, followed by the pound key."
    EnterConferenceId,
    /// "That conference ID was not recognised. Please try again."
    InvalidConferenceId,
    /// "If you are the leader, press star. Otherwise, please wait."
    LeaderQuestion,
    /// "Please enter your extension or phone number, followed by pound."
    EnterNumber,
    /// "Please enter your PIN, followed by pound."
    EnterPin,
    /// "That extension or PIN was not recognised. Please try again."
    InvalidPin,
    /// "Your PIN is locked. Please contact your administrator."
    PinLocked,
    /// "After the tone, please say your name, then press pound."
    RecordName,
    /// "You are now joining the meeting."
    Joining,
    /// "Please wait. Someone in the meeting will let you in shortly."
    Lobby,
    /// "This meeting is locked. Please wait for a leader to let you in."
    MeetingLockedWait,
    /// "Sorry, you could not join the meeting." (denied, full, not allowed)
    NotAdmitted,
    /// "Too many attempts. Goodbye."
    Goodbye,
    /// The keypad help: "Press star six to mute or unmute yourself. ..." (leaders hear more:
    /// `HelpLeader`).
    Help,
    HelpLeader,
    /// "You are muted." / "You are unmuted."
    Muted,
    Unmuted,
    /// "The audience is muted." / "The audience is unmuted."
    AudienceMuted,
    AudienceUnmuted,
    /// "The meeting is locked." / "The meeting is unlocked."
    Locked,
    Unlocked,
    /// "Everyone in the lobby has been admitted."
    LobbyAdmitted,
    /// "Entry and exit announcements are on." / "... off."
    AnnouncementsOn,
    AnnouncementsOff,
    /// "The participants are:" (the private roll call, followed by names)
    RollCall,
    /// "has joined the meeting." / "has left the meeting." (after a name)
    HasJoined,
    HasLeft,
    /// "That command is not available."
    NotAvailable,
    /// "Dial-in conferencing is not available for this meeting."
    DialInDisabled,
}

impl Prompt {
    pub const ALL: &'static [Prompt] = &[
        Prompt::Welcome,
        Prompt::EnterConferenceId,
        Prompt::InvalidConferenceId,
        Prompt::LeaderQuestion,
        Prompt::EnterNumber,
        Prompt::EnterPin,
        Prompt::InvalidPin,
        Prompt::PinLocked,
        Prompt::RecordName,
        Prompt::Joining,
        Prompt::Lobby,
        Prompt::MeetingLockedWait,
        Prompt::NotAdmitted,
        Prompt::Goodbye,
        Prompt::Help,
        Prompt::HelpLeader,
        Prompt::Muted,
        Prompt::Unmuted,
        Prompt::AudienceMuted,
        Prompt::AudienceUnmuted,
        Prompt::Locked,
        Prompt::Unlocked,
        Prompt::LobbyAdmitted,
        Prompt::AnnouncementsOn,
        Prompt::AnnouncementsOff,
        Prompt::RollCall,
        Prompt::HasJoined,
        Prompt::HasLeft,
        Prompt::NotAvailable,
        Prompt::DialInDisabled,
    ];
}

/// The prompt store. `Send + Sync`; the first use of a prompt may run `espeak-ng` (blocking):
/// call [`Prompts::prepare`] on a blocking thread at start.
pub struct Prompts {
    #[allow(dead_code)]
    dir: PathBuf,
}

impl Prompts {
    /// Prompts cached under `dir` (created if missing).
    pub fn new(dir: PathBuf) -> Prompts {
        Prompts { dir }
    }

    /// Whether speech can be made (espeak-ng found); otherwise prompts are tones.
    pub fn can_speak(&self) -> bool {
        false
    }

    /// Makes (or loads) every prompt of these languages (blocking).
    pub fn prepare(&self, langs: &[&str]) {
        let _ = langs;
    }

    /// A prompt in `lang` (a Lync language such as "en-US"; unknown ones fall back to en-US).
    /// Blocking the first time unless prepared.
    pub fn prompt(&self, lang: &str, p: Prompt) -> Arc<Clip> {
        let _ = (lang, p);
        Arc::new(Clip::tone(440.0, 300, 6000))
    }

    /// `text` spoken in `lang` (a participant's display name), cached (bounded). Blocking.
    pub fn speak(&self, lang: &str, text: &str) -> Arc<Clip> {
        let _ = (lang, text);
        Arc::new(Clip::tone(440.0, 300, 6000))
    }
}
