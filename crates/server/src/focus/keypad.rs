//! Keypad commands during a meeting (Lync's map, each after `*`): `*1` help, `*6` mute or
//! unmute yourself; for leaders `*3` private roll call, `*4` mute or unmute the audience,
//! `*7` lock or unlock the meeting, `*8` admit everyone in the lobby, `*9` entry and exit
//! announcements on or off. The keys are consumed by the MCU: nobody else hears them.
//! Pure: which command two keys make.

/// A command keyed during a meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    RollCall,
    MuteAudience,
    MuteSelf,
    Lock,
    AdmitLobby,
    Announcements,
}

impl Command {
    /// Commands only leaders (the organizer, presenters) may use.
    pub fn leaders_only(self) -> bool {
        !matches!(self, Command::Help | Command::MuteSelf)
    }
}

/// How long after `*` the command's digit may come.
pub const STAR_WINDOW: std::time::Duration = std::time::Duration::from_secs(3);

/// One participant's keypad: whether a `*` is waiting for its digit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keypad {
    star: Option<std::time::Instant>,
}

impl Keypad {
    /// A key; a command when it completes one.
    pub fn press(&mut self, key: char, now: std::time::Instant) -> Option<Command> {
        if key == '*' {
            self.star = Some(now);
            return None;
        }
        let star = self.star.take()?;
        if now.saturating_duration_since(star) > STAR_WINDOW {
            return None;
        }
        Some(match key {
            '1' => Command::Help,
            '3' => Command::RollCall,
            '4' => Command::MuteAudience,
            '6' => Command::MuteSelf,
            '7' => Command::Lock,
            '8' => Command::AdmitLobby,
            '9' => Command::Announcements,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn star_then_digit_makes_a_command() {
        let t = Instant::now();
        let mut k = Keypad::default();
        assert_eq!(k.press('6', t), None, "a digit alone is nothing");
        assert_eq!(k.press('*', t), None);
        assert_eq!(k.press('6', t), Some(Command::MuteSelf));
        assert_eq!(k.press('6', t), None, "one command per star");
        for (d, c) in [
            ('1', Command::Help),
            ('3', Command::RollCall),
            ('4', Command::MuteAudience),
            ('7', Command::Lock),
            ('8', Command::AdmitLobby),
            ('9', Command::Announcements),
        ] {
            k.press('*', t);
            assert_eq!(k.press(d, t), Some(c));
        }
        k.press('*', t);
        assert_eq!(k.press('2', t), None, "not a command");
        k.press('*', t);
        assert_eq!(k.press('6', t + Duration::from_secs(4)), None, "too late");
        assert!(Command::Lock.leaders_only() && !Command::MuteSelf.leaders_only());
    }
}
