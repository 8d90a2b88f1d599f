//! The conferencing attendant (Lync's Conferencing Attendant): what a dial-in caller hears
//! and keys, as a pure state machine — no I/O, no clock but the instants it is given.
//!
//! Welcome → conference ID and `#` (three tries) → the meeting is looked up → "if you are
//! the leader, press star" → a leader keys their extension or number and `#`, then their PIN
//! and `#` (three tries per call, and the store's lockout across calls) and joins as
//! themselves; anyone else (no `*` within a few seconds, or `#`) records their name when
//! names are announced, then joins as a phone caller (the lobby rules decide). Wrong input
//! past the tries, or silence, ends with a goodbye.

use confab_media::Prompt;
use std::time::{Duration, Instant};

/// Conference ID (and number, PIN) tries per call.
pub const TRIES: u8 = 3;
/// The longest conference ID, number or PIN keyed.
pub const MAX_DIGITS: usize = 24;
/// How long the caller has to key after a prompt ends (or since the last key).
pub const DIGIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the leader question waits for `*`.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(4);
/// The longest a goodbye may take before the call is ended anyway, should its end
/// (`PromptDone`) never come (speech that could not be made, a full prompt queue).
pub const LEAVING_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest recorded name.
pub const NAME_MAX: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    ConferenceId,
    LookingUp,
    Leader,
    Number,
    Pin,
    Verifying,
    /// The name prompt is playing; recording starts when it ends.
    NamePrompt,
    RecordingName,
    /// Joined (or joining): the attendant is done.
    Done,
    /// Saying goodbye: hang up when the prompt ends.
    Leaving,
}

/// What the attendant wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// Stop what is playing, then play these.
    Play(Vec<Prompt>),
    /// Look the meeting with this conference ID up.
    Lookup(String),
    /// Check this leader's number and PIN.
    Verify {
        number: String,
        pin: String,
    },
    /// Record the caller's name (a beep first).
    Record,
    StopRecording,
    /// Join the meeting: as the leader whose PIN was checked (`user@domain`), or as a phone
    /// caller.
    Join {
        leader: Option<String>,
    },
    /// Play the prompt, then hang up.
    Goodbye(Prompt),
    /// Hang up now (the goodbye has played).
    HangUp,
}

/// How a PIN check came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The user (`user@domain`) whose PIN it is.
    Leader(String),
    /// Wrong number or PIN (or a leader this meeting does not take).
    Wrong,
    /// The PIN is locked (too many failures), or the caller is rate limited.
    Locked,
}

/// One dial-in call before it joins.
#[derive(Debug)]
pub struct Attendant {
    step: Step,
    digits: String,
    number: String,
    id_tries: u8,
    pin_tries: u8,
    /// A prompt is playing: the key timeout starts when it ends.
    playing: bool,
    deadline: Option<Instant>,
    /// Callers record their name before joining (names are announced).
    record_names: bool,
}

impl Attendant {
    /// A new call: it is welcomed and asked for the conference ID.
    pub fn start(record_names: bool) -> (Attendant, Vec<Act>) {
        let a = Attendant {
            step: Step::ConferenceId,
            digits: String::new(),
            number: String::new(),
            id_tries: 0,
            pin_tries: 0,
            playing: true,
            deadline: None,
            record_names,
        };
        (
            a,
            vec![Act::Play(vec![Prompt::Welcome, Prompt::EnterConferenceId])],
        )
    }

    #[cfg(test)]
    pub fn step(&self) -> Step {
        self.step
    }

    /// When [`Attendant::tick`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn play(&mut self, p: Vec<Prompt>) -> Vec<Act> {
        self.playing = true;
        self.deadline = None;
        vec![Act::Play(p)]
    }

    /// Ends the call with a prompt (e.g. the meeting refused the caller).
    pub fn goodbye(&mut self, p: Prompt) -> Vec<Act> {
        self.step = Step::Leaving;
        self.playing = true;
        self.deadline = None;
        vec![Act::Goodbye(p)]
    }

    /// The goodbye is being said: the call ends at `at` at the latest.
    pub fn leave_by(&mut self, at: Instant) {
        if self.step == Step::Leaving {
            self.deadline = Some(at);
        }
    }

    fn armed(&mut self, now: Instant) {
        let wait = if self.step == Step::Leader {
            LEADER_TIMEOUT
        } else {
            DIGIT_TIMEOUT
        };
        self.deadline = Some(now + wait);
    }

    /// A key (RFC 4733 or SIP INFO).
    pub fn digit(&mut self, d: char, now: Instant) -> Vec<Act> {
        match self.step {
            Step::ConferenceId | Step::Number | Step::Pin | Step::Leader => {}
            Step::RecordingName if d == '#' => return vec![Act::StopRecording],
            _ => return vec![],
        }
        // keying interrupts the prompt (barge-in: `Play` of nothing stops it) and restarts
        // the key timeout
        let mut acts = vec![];
        if self.playing {
            self.playing = false;
            acts.push(Act::Play(vec![]));
        }
        if self.step == Step::Leader {
            self.deadline = None;
            acts.extend(match d {
                '*' => {
                    self.step = Step::Number;
                    self.digits.clear();
                    self.play(vec![Prompt::EnterNumber])
                }
                // `#` (or any other key): not the leader
                _ => self.not_leader(),
            });
            return acts;
        }
        self.armed(now);
        if d != '#' {
            if d.is_ascii_digit() && self.digits.len() < MAX_DIGITS {
                self.digits.push(d);
            }
            return acts;
        }
        let entered = std::mem::take(&mut self.digits);
        match self.step {
            Step::ConferenceId => {
                if entered.is_empty() {
                    acts.extend(self.wrong_id());
                } else {
                    self.step = Step::LookingUp;
                    self.deadline = None;
                    acts.push(Act::Lookup(entered));
                }
            }
            Step::Number => {
                if entered.is_empty() {
                    acts.extend(self.play(vec![Prompt::EnterNumber]));
                } else {
                    self.number = entered;
                    self.step = Step::Pin;
                    acts.extend(self.play(vec![Prompt::EnterPin]));
                }
            }
            Step::Pin => {
                self.step = Step::Verifying;
                self.deadline = None;
                acts.push(Act::Verify {
                    number: std::mem::take(&mut self.number),
                    pin: entered,
                });
            }
            _ => {}
        }
        acts
    }

    fn wrong_id(&mut self) -> Vec<Act> {
        self.id_tries += 1;
        if self.id_tries >= TRIES {
            return self.goodbye(Prompt::Goodbye);
        }
        self.step = Step::ConferenceId;
        self.play(vec![Prompt::InvalidConferenceId, Prompt::EnterConferenceId])
    }

    fn not_leader(&mut self) -> Vec<Act> {
        if self.record_names {
            self.step = Step::NamePrompt;
            self.play(vec![Prompt::RecordName])
        } else {
            self.step = Step::Done;
            self.deadline = None;
            vec![Act::Join { leader: None }]
        }
    }

    /// Everything queued has played.
    pub fn prompt_done(&mut self, now: Instant) -> Vec<Act> {
        self.playing = false;
        match self.step {
            Step::Leaving => {
                self.step = Step::Done;
                vec![Act::HangUp]
            }
            Step::NamePrompt => {
                self.step = Step::RecordingName;
                vec![Act::Record]
            }
            Step::ConferenceId | Step::Leader | Step::Number | Step::Pin => {
                if self.digits.is_empty() {
                    self.armed(now);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    /// Time passes: a key timeout.
    pub fn tick(&mut self, now: Instant) -> Vec<Act> {
        if self.deadline.is_none_or(|d| now < d) {
            return vec![];
        }
        self.deadline = None;
        match self.step {
            Step::Leaving => {
                self.step = Step::Done;
                vec![Act::HangUp]
            }
            Step::Leader => self.not_leader(),
            // silence counts as a wrong try; keys without `#` are taken as entered
            Step::ConferenceId if !self.digits.is_empty() => self.digit('#', now),
            Step::ConferenceId => self.wrong_id(),
            Step::Number | Step::Pin => {
                if !self.digits.is_empty() {
                    return self.digit('#', now);
                }
                self.pin_failed()
            }
            _ => vec![],
        }
    }

    /// The meeting lookup: found (and open to dial-in callers) or not.
    pub fn looked_up(&mut self, found: bool) -> Vec<Act> {
        if self.step != Step::LookingUp {
            return vec![];
        }
        if !found {
            return self.wrong_id();
        }
        self.step = Step::Leader;
        self.play(vec![Prompt::LeaderQuestion])
    }

    fn pin_failed(&mut self) -> Vec<Act> {
        self.pin_tries += 1;
        if self.pin_tries >= TRIES {
            return self.goodbye(Prompt::Goodbye);
        }
        self.step = Step::Number;
        self.digits.clear();
        self.play(vec![Prompt::InvalidPin, Prompt::EnterNumber])
    }

    /// The PIN check.
    pub fn verified(&mut self, v: Verified) -> Vec<Act> {
        if self.step != Step::Verifying {
            return vec![];
        }
        match v {
            Verified::Leader(user) => {
                self.step = Step::Done;
                vec![Act::Join { leader: Some(user) }]
            }
            Verified::Wrong => self.pin_failed(),
            Verified::Locked => self.goodbye(Prompt::PinLocked),
        }
    }

    /// The recorded name arrived (or the recording ended).
    pub fn recorded(&mut self) -> Vec<Act> {
        if self.step != Step::RecordingName {
            return vec![];
        }
        self.step = Step::Done;
        vec![Act::Join { leader: None }]
    }
}

/// A key from a SIP INFO body: `application/dtmf-relay` (`Signal=5`, `Duration=160`) or
/// `application/dtmf` (the key alone).
pub fn info_digit(content_type: &str, body: &[u8]) -> Option<char> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let body = std::str::from_utf8(body).ok()?;
    let raw = match ct.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => body.trim(),
        _ => return None,
    };
    let mut chars = raw.chars();
    let c = chars.next()?.to_ascii_uppercase();
    if chars.next().is_some() {
        // RFC 4733 event numbers as text: 10 = '*', 11 = '#'
        return match raw {
            "10" => Some('*'),
            "11" => Some('#'),
            _ => None,
        };
    }
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(a: &mut Attendant, s: &str, now: Instant) -> Vec<Act> {
        s.chars().flat_map(|c| a.digit(c, now)).collect()
    }

    #[test]
    fn a_leader_keys_id_number_and_pin() {
        let t = Instant::now();
        let (mut a, acts) = Attendant::start(true);
        assert_eq!(
            acts,
            vec![Act::Play(vec![Prompt::Welcome, Prompt::EnterConferenceId])]
        );
        let acts = keys(&mut a, "1234567#", t);
        assert_eq!(acts.first(), Some(&Act::Play(vec![])), "barge-in");
        assert_eq!(acts.last(), Some(&Act::Lookup("1234567".into())));
        assert_eq!(
            a.looked_up(true),
            vec![Act::Play(vec![Prompt::LeaderQuestion])]
        );
        assert_eq!(
            keys(&mut a, "*", t),
            vec![Act::Play(vec![]), Act::Play(vec![Prompt::EnterNumber])]
        );
        let acts = keys(&mut a, "100#", t);
        assert_eq!(acts.last(), Some(&Act::Play(vec![Prompt::EnterPin])));
        let acts = keys(&mut a, "55555#", t);
        assert_eq!(
            acts.last(),
            Some(&Act::Verify {
                number: "100".into(),
                pin: "55555".into()
            })
        );
        assert_eq!(
            a.verified(Verified::Leader("alice@example.test".into())),
            vec![Act::Join {
                leader: Some("alice@example.test".into())
            }]
        );
        assert_eq!(a.step(), Step::Done);
    }

    #[test]
    fn three_wrong_ids_say_goodbye_and_hang_up() {
        let t = Instant::now();
        let (mut a, _) = Attendant::start(false);
        for i in 0..3 {
            keys(&mut a, "999#", t);
            let acts = a.looked_up(false);
            if i < 2 {
                assert_eq!(
                    acts,
                    vec![Act::Play(vec![
                        Prompt::InvalidConferenceId,
                        Prompt::EnterConferenceId
                    ])]
                );
            } else {
                assert_eq!(acts, vec![Act::Goodbye(Prompt::Goodbye)]);
            }
        }
        assert!(
            keys(&mut a, "1#", t).is_empty(),
            "keys after goodbye do nothing"
        );
        assert_eq!(a.prompt_done(t), vec![Act::HangUp]);
    }

    #[test]
    fn no_star_means_a_guest_who_records_a_name() {
        let t = Instant::now();
        let (mut a, _) = Attendant::start(true);
        keys(&mut a, "42#", t);
        a.looked_up(true);
        assert!(a.prompt_done(t).is_empty());
        assert!(a.tick(t + Duration::from_secs(1)).is_empty());
        assert_eq!(
            a.tick(t + LEADER_TIMEOUT),
            vec![Act::Play(vec![Prompt::RecordName])]
        );
        assert_eq!(a.prompt_done(t), vec![Act::Record]);
        assert_eq!(keys(&mut a, "#", t), vec![Act::StopRecording]);
        assert_eq!(a.recorded(), vec![Act::Join { leader: None }]);
        // without name recording, `#` at the question joins at once
        let (mut b, _) = Attendant::start(false);
        keys(&mut b, "42#", t);
        b.looked_up(true);
        assert_eq!(
            keys(&mut b, "#", t),
            vec![Act::Play(vec![]), Act::Join { leader: None }]
        );
    }

    #[test]
    fn wrong_pins_retry_then_goodbye_and_locked_pins_end_at_once() {
        let t = Instant::now();
        let (mut a, _) = Attendant::start(false);
        keys(&mut a, "42#", t);
        a.looked_up(true);
        keys(&mut a, "*", t);
        for i in 0..3 {
            keys(&mut a, "100#", t);
            keys(&mut a, "1111#", t);
            let acts = a.verified(Verified::Wrong);
            if i < 2 {
                assert_eq!(
                    acts,
                    vec![Act::Play(vec![Prompt::InvalidPin, Prompt::EnterNumber])]
                );
            } else {
                assert_eq!(acts, vec![Act::Goodbye(Prompt::Goodbye)]);
            }
        }
        let (mut b, _) = Attendant::start(false);
        keys(&mut b, "42#", t);
        b.looked_up(true);
        keys(&mut b, "*100#1111#", t);
        assert_eq!(
            b.verified(Verified::Locked),
            vec![Act::Goodbye(Prompt::PinLocked)]
        );
        // the goodbye's end went unnoticed: the call ends anyway
        let t = Instant::now();
        b.leave_by(t + LEAVING_TIMEOUT);
        assert!(b.tick(t).is_empty());
        assert_eq!(b.tick(t + LEAVING_TIMEOUT), vec![Act::HangUp]);
    }

    #[test]
    fn silence_times_out_as_a_wrong_try_and_keys_without_pound_are_taken() {
        let t = Instant::now();
        let (mut a, _) = Attendant::start(false);
        assert!(a.prompt_done(t).is_empty());
        assert!(a.tick(t + DIGIT_TIMEOUT / 2).is_empty());
        assert_eq!(
            a.tick(t + DIGIT_TIMEOUT),
            vec![Act::Play(vec![
                Prompt::InvalidConferenceId,
                Prompt::EnterConferenceId
            ])]
        );
        let t2 = t + DIGIT_TIMEOUT;
        a.prompt_done(t2);
        keys(&mut a, "77", t2);
        let acts = a.tick(t2 + DIGIT_TIMEOUT);
        assert_eq!(acts.last(), Some(&Act::Lookup("77".into())));
        // overlong input is bounded
        let (mut b, _) = Attendant::start(false);
        let long: String = std::iter::repeat_n('9', 200).collect();
        keys(&mut b, &long, t);
        let acts = keys(&mut b, "#", t);
        assert_eq!(acts.last(), Some(&Act::Lookup("9".repeat(MAX_DIGITS))));
    }

    #[test]
    fn info_bodies_give_keys() {
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal= #\r\n"),
            Some('#')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=*\r\n"),
            Some('*')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(info_digit("application/dtmf", b"7"), Some('7'));
        assert_eq!(info_digit("application/dtmf-relay", b"Signal=55\r\n"), None);
        assert_eq!(info_digit("application/dtmf-relay", b"Duration=100"), None);
        assert_eq!(info_digit("text/plain", b"Signal=1"), None);
        assert_eq!(info_digit("application/dtmf-relay", &[0xff, 0xfe]), None);
    }
}
