//! Dial-in conferencing: calls to a dial-in access number (CsDialInConferencingAccessNumber,
//! from a PSTN gateway that is a trusted peer, or from one of our users) reach the
//! conferencing attendant (`attendant.rs`), which joins them to the meeting their
//! conference ID names; keypad commands during a meeting (`keypad.rs`); entry and exit
//! announcements (CsDialInConferencingConfiguration); keys by RFC 4733 (reported by the
//! MCU) or SIP INFO.
//!
//! A caller with the attendant is a participant of a table of its own ([`ATTENDANT`]) with
//! a media room of its own: it hears prompts and nothing of any meeting. Joining moves its
//! dialog and its leg into the meeting (the leg keeps its sockets, codec and RTP sequence).
//! What needs the store (the meeting by conference ID, the leader's PIN) or speech (names)
//! is an effect, never done under a lock.

use super::attendant::{Act, Attendant, Verified};
use super::keypad::Command;
use super::*;
use confab_media::{Clip, Prompt};
use std::net::IpAddr;
use std::sync::Arc;

/// What a conference ID names.
#[derive(Debug)]
pub enum Lookup {
    /// No meeting (or none open to dial-in).
    Unknown,
    /// A meeting this front end may host.
    Found(Box<confab_store::Meeting>),
    /// A meeting live on another front end of the pool, which dial-in cannot reach from
    /// here (docs/pool.md).
    Elsewhere,
}

/// The key of the attendant's table (no meeting key contains '@').
pub(crate) const ATTENDANT: &str = "@attendant";
/// Failed leader PINs allowed in [`PIN_WINDOW`] per meeting, per caller number and per
/// gateway, beyond the store's per-user lockout.
const PIN_FAILURES_PER_MEETING: u32 = 20;
const PIN_FAILURES_PER_CALLER: u32 = 10;
const PIN_FAILURES_PER_GATEWAY: u32 = 50;
const PIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The language of prompts when nothing says otherwise.
pub(crate) const DEFAULT_LANG: &str = "en-US";

/// A dial-in caller with the attendant.
#[derive(Debug)]
pub(crate) struct DialIn {
    attendant: Attendant,
    /// The access number called (its identity).
    access: String,
    /// The caller's number (From of a gateway's call) or user (`user@domain`).
    caller: String,
    gateway: IpAddr,
    meeting: Option<Box<confab_store::Meeting>>,
    /// The tag of the attendant's prompts to this caller (`Engine::play_tagged`): a key
    /// that stops them moves it on, so the end of the stopped prompts (or of speech still
    /// being made for them) is told from the end of those queued after.
    prompts: u32,
}

/// Failed leader PINs per meeting, per caller number and per gateway over [`PIN_WINDOW`]:
/// PIN guessing is slowed down beyond the store's per-user lockout (which a guesser could
/// otherwise spread over many users, or use to lock every leader out from one gateway).
#[derive(Default)]
pub(crate) struct PinLimiter {
    counts: HashMap<String, (u32, Instant)>,
}

impl PinLimiter {
    /// The most keys kept: expired ones are dropped beyond it, and past it new ones are
    /// not counted (the counts already there still limit).
    const MAX_KEYS: usize = 10_000;

    fn keys(meeting: &str, caller: &str, gateway: IpAddr) -> [(String, u32); 3] {
        [
            (format!("m:{meeting}"), PIN_FAILURES_PER_MEETING),
            (format!("n:{caller}"), PIN_FAILURES_PER_CALLER),
            (format!("g:{gateway}"), PIN_FAILURES_PER_GATEWAY),
        ]
    }

    /// Whether a PIN check for this meeting, caller and gateway is refused for now.
    pub(crate) fn limited(
        &self,
        meeting: &str,
        caller: &str,
        gateway: IpAddr,
        now: Instant,
    ) -> bool {
        Self::keys(meeting, caller, gateway).iter().any(|(k, max)| {
            self.counts.get(k).is_some_and(|(n, since)| {
                *n >= *max && now.saturating_duration_since(*since) < PIN_WINDOW
            })
        })
    }

    /// Counts a failed PIN check.
    pub(crate) fn failed(&mut self, meeting: &str, caller: &str, gateway: IpAddr, now: Instant) {
        if self.counts.len() >= Self::MAX_KEYS {
            self.counts
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < PIN_WINDOW);
        }
        for (k, _) in Self::keys(meeting, caller, gateway) {
            if self.counts.len() >= Self::MAX_KEYS && !self.counts.contains_key(&k) {
                continue;
            }
            let e = self.counts.entry(k).or_insert((0, now));
            if now.saturating_duration_since(e.1) >= PIN_WINDOW {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }
}

impl Conf {
    /// The language of the meeting's announcements.
    fn lang(&self) -> &str {
        if self.lang.is_empty() {
            DEFAULT_LANG
        } else {
            &self.lang
        }
    }
}

impl Participant {
    /// How the participant is named aloud: the name they recorded, else their display
    /// name spoken.
    fn spoken_name(&self) -> SpeechPart {
        match &self.name {
            Some(clip) => SpeechPart::Clip(clip.clone()),
            None => SpeechPart::Text(self.display.clone()),
        }
    }
}

impl State {
    /// The dial-in caller `id` of the attendant's table.
    fn dial_in(&mut self, id: u32) -> Option<&mut DialIn> {
        self.confs
            .get_mut(ATTENDANT)
            .and_then(|c| c.participant_mut(id))
            .and_then(|p| p.dial_in.as_deref_mut())
    }
}

/// Where speech goes: one leg (a prompt) or a whole meeting (an announcement).
#[derive(Clone, Copy, Debug)]
pub enum SpeechTo {
    Leg(LegId),
    /// A caller with the attendant, as its prompts tagged this (dropped when a key stopped
    /// the prompts since: `DialIn::prompts`).
    Attendant(LegId, u32),
    Room(RoomId),
}

/// A piece of speech, made into audio by a worker (speech may run espeak-ng).
#[derive(Clone, Debug)]
pub enum SpeechPart {
    Prompt(Prompt),
    /// A name, spoken.
    Text(String),
    Clip(Arc<Clip>),
}

/// The access number a Request-URI names: a `tel:` URI or `sip:<number>@<our domain>` with
/// the number of one's LineUri, or its own SIP URI. Returns (identity, language).
pub(crate) fn access_number_of(
    ruri: &Uri<'_>,
    numbers: &[(String, confab_policy::DialInConferencingAccessNumber)],
    ours: bool,
) -> Option<(String, String)> {
    if numbers.is_empty() {
        return None;
    }
    let number = match ruri.scheme {
        confab_sip::Scheme::Tel => ruri.user,
        _ if ours => ruri.user,
        _ => None,
    }?;
    // the digits of a number, punctuation and parameters left out (no allocation: this
    // runs for every request to one of our addresses once access numbers exist)
    fn digits(s: &str) -> impl Iterator<Item = char> + '_ {
        s.split(';')
            .next()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
    }
    let has_digits = digits(number).next().is_some();
    // `sip:<user>@<host>`, the access number's own URI
    let names_uri = |id: &str| {
        ruri.scheme != confab_sip::Scheme::Tel
            && id.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:"))
            && id[4..].split_once('@').is_some_and(|(u, h)| {
                u.eq_ignore_ascii_case(number) && h.eq_ignore_ascii_case(ruri.host)
            })
    };
    numbers
        .iter()
        .find(|(id, n)| {
            let line = n.line_uri.trim();
            let line = line.strip_prefix("tel:").unwrap_or(line);
            (has_digits && digits(number).eq(digits(line))) || names_uri(id)
        })
        .map(|(id, n)| {
            let lang = if n.primary_language.trim().is_empty() {
                DEFAULT_LANG.to_string()
            } else {
                n.primary_language.trim().to_string()
            };
            (id.clone(), lang)
        })
}

impl Core {
    /// An out-of-dialog request to a dial-in access number (after authentication: the
    /// caller is a trusted peer or one of our users).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serve_attendant(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        access: (String, String),
        caller: Caller,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        if msg.to_hdr().is_some_and(|t| t.tag().is_some()) {
            return Verdict::reply(481, "Call/Transaction Does Not Exist");
        }
        match msg.method() {
            Some(Method::Invite) => {}
            Some(Method::Options) => {
                let mut r = response_to(msg, 200, None, Some(&random_token(10)));
                r.headers.push(HeaderName::Allow, ALLOW);
                r.headers.push(HeaderName::Accept, "application/sdp");
                return Verdict::Respond(Box::new(r));
            }
            Some(Method::Ack) => return Verdict::Drop,
            Some(Method::Bye | Method::Cancel | Method::Info) => {
                return Verdict::reply(481, "Call/Transaction Does Not Exist")
            }
            _ => {
                let mut r = self.error_response(msg, 405, "Method Not Allowed");
                r.headers
                    .push(HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
                return Verdict::Respond(Box::new(r));
            }
        }
        let (Some(media), Some(_)) = (self.focus.media.as_ref(), self.store.as_ref()) else {
            return Verdict::reply(480, "Conferencing is not available on this server");
        };
        let offer = match std::str::from_utf8(&msg.body) {
            Ok(o) if !o.trim().is_empty() => o,
            _ => return Verdict::reply(488, "The attendant needs an SDP offer in the INVITE"),
        };
        let our_tag = random_token(16);
        let dialog = match Dialog::new(msg, src, self, &our_tag) {
            Ok(d) => d,
            Err(v) => return v,
        };
        let (access_id, lang) = access;
        // a gateway vouches for the phone number in its From; a user of ours is that user
        let gateway = self.origin_is_peer(src);
        let caller_number = match &caller {
            Caller::Enterprise(k) if !gateway => k.clone(),
            _ => msg
                .from_hdr()
                .and_then(|f| {
                    f.uri()
                        .user
                        .map(|u| u.split(';').next().unwrap_or("").to_string())
                })
                .filter(|u| !u.is_empty() && u.len() <= 32)
                .unwrap_or_else(|| "unknown".into()),
        };
        let record_names = {
            let p = self.policies.get();
            let cfg = p.dial_in_configuration();
            cfg.enable_name_recording
                && cfg.entry_exit_announcements_type
                    == confab_policy::EntryExitAnnouncementsType::UseNames
        };
        let mut sends = Sends::default();
        let resp = {
            let mut st = self.focus.state.lock();
            if st.participants() >= self.focus.max_participants {
                return Verdict::reply(503, "Conferencing capacity reached on this server");
            }
            let room = st.new_room();
            // a gateway's media ports are its own: the clients' port range is for clients
            let (leg, answer) = match media.open_leg_for(room, offer, LegMode::Active, !gateway) {
                Ok(x) => x,
                Err(e) => {
                    let (s, r) = media_status(&e);
                    return Verdict::Reply(s, Some(r));
                }
            };
            let c = st
                .confs
                .entry(ATTENDANT.to_string())
                .or_insert_with(|| Conf {
                    key: ATTENDANT.to_string(),
                    uri: access_id.clone(),
                    subject: "Conferencing attendant".into(),
                    rules: attendant_rules(),
                    room: RoomId(0),
                    participants: vec![],
                    subs: vec![],
                    next_id: 0,
                    locked: false,
                    announce: false,
                    names: false,
                    lang: DEFAULT_LANG.into(),
                });
            c.next_id += 1;
            let id = c.next_id;
            let mut resp = response_to(msg, 200, None, Some(&our_tag));
            resp.headers.push(HeaderName::Server, SERVER_NAME);
            resp.headers
                .push(HeaderName::Contact, self.attendant_contact(&access_id, src));
            resp.headers.push(HeaderName::Allow, ALLOW);
            resp.set_body("application/sdp", Bytes::from(answer));
            let (attendant, acts) = Attendant::start(record_names);
            tracing::info!(access = %access_id, caller = %caller_number, participant = id, "dial-in call answered by the attendant");
            // (no federated caller reaches the attendant: authorize refuses them)
            let mut p = Participant::new(id, caller, leg, dialog, now);
            p.display = caller_number.clone();
            p.unacked = self.retransmit_2xx(&resp, msg, src, now);
            p.lang = Some(lang);
            p.dial_in = Some(Box::new(DialIn {
                attendant,
                access: access_id,
                caller: caller_number,
                gateway: src.remote.ip(),
                meeting: None,
                prompts: 0,
            }));
            c.participants.push(p);
            let dkey = (
                msg.call_id().map(|c| c.to_string()).unwrap_or_default(),
                our_tag,
            );
            st.dialogs
                .insert(dkey, (ATTENDANT.to_string(), DialogRef::Participant(id)));
            self.attendant_acts(&mut st, id, acts, now, &mut sends);
            resp
        };
        self.respond(shard, key, resp, now, out);
        self.flush_locked(shard, sends, out);
        Verdict::Done
    }

    /// Whether `src` is a trusted peer (a gateway).
    fn origin_is_peer(&self, src: &Source) -> bool {
        self.cfg
            .trust
            .is_trusted_peer(src.transport, src.remote.ip())
    }

    /// The attendant's Contact: its access number's URI at this server's address.
    fn attendant_contact(&self, access: &str, src: &Source) -> String {
        let l = crate::config::Listen {
            transport: src.transport,
            addr: src.local,
        };
        let user = access
            .strip_prefix("sip:")
            .and_then(|u| u.split_once('@'))
            .map(|(u, _)| u)
            .filter(|u| {
                u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
            })
            .unwrap_or("attendant");
        format!(
            "<sip:{user}@{};transport={}>",
            Core::hostport(&l),
            src.transport.param()
        )
    }

    /// Carries out what the attendant decided for participant `id` of its table.
    pub(super) fn attendant_acts(
        &self,
        st: &mut State,
        id: u32,
        acts: Vec<Act>,
        now: Instant,
        sends: &mut Sends,
    ) {
        for act in acts {
            let Some(p) = st
                .confs
                .get_mut(ATTENDANT)
                .and_then(|c| c.participant_mut(id))
            else {
                return;
            };
            let (Some(leg), Some(d)) = (p.leg, p.dial_in.as_mut()) else {
                return;
            };
            let lang = p.lang.clone().unwrap_or_else(|| DEFAULT_LANG.into());
            let media = self.focus.media.as_ref();
            match act {
                Act::Play(prompts) if prompts.is_empty() => {
                    d.prompts = d.prompts.wrapping_add(1);
                    if let Some(m) = media {
                        m.stop_playing(leg);
                    }
                }
                Act::Play(prompts) => {
                    self.speak(
                        SpeechTo::Attendant(leg, d.prompts),
                        &lang,
                        prompts.into_iter().map(SpeechPart::Prompt).collect(),
                    );
                }
                Act::Goodbye(prompt) => {
                    self.speak(
                        SpeechTo::Attendant(leg, d.prompts),
                        &lang,
                        vec![SpeechPart::Prompt(prompt)],
                    );
                    d.attendant
                        .leave_by(now + super::attendant::LEAVING_TIMEOUT);
                }
                Act::Lookup(conference_id) => {
                    let submitted =
                        self.submit(crate::effects::Effect::FindConference { id, conference_id });
                    if !submitted {
                        let acts = d.attendant.goodbye(Prompt::Goodbye);
                        return self.attendant_acts(st, id, acts, now, sends);
                    }
                }
                Act::Verify { number, pin } => {
                    let Some(m) = d.meeting.as_deref() else {
                        continue;
                    };
                    if st.pin_failures.limited(&m.key, &d.caller, d.gateway, now) {
                        tracing::warn!(meeting = %m.key, caller = %d.caller, gateway = %d.gateway, "dial-in PIN attempts rate limited");
                        let acts = d.attendant.verified(Verified::Locked);
                        return self.attendant_acts(st, id, acts, now, sends);
                    }
                    let organizer_only = self.policies.get().dial_in_configuration().pin_auth_type
                        == confab_policy::PinAuthType::OrganizerOnly;
                    let effect = crate::effects::Effect::VerifyPin {
                        id,
                        number,
                        pin,
                        organizer: m.organizer.to_ascii_lowercase(),
                        organizer_only,
                    };
                    if !self.submit(effect) {
                        let acts = d.attendant.goodbye(Prompt::Goodbye);
                        return self.attendant_acts(st, id, acts, now, sends);
                    }
                }
                Act::Record => {
                    if let Some(m) = media {
                        m.play_tagged(leg, Arc::new(Clip::tone(1000.0, 200, 6000)), d.prompts);
                        m.record(leg, super::attendant::NAME_MAX);
                    }
                }
                Act::StopRecording => {
                    if let Some(m) = media {
                        m.stop_recording(leg);
                    }
                }
                Act::Join { leader } => {
                    self.dial_in_join(st, id, leader, now, sends);
                    return;
                }
                Act::HangUp => {
                    self.remove_participant(st, ATTENDANT, id, true, now, sends);
                    return;
                }
            }
        }
    }

    /// Queues speech for a worker (prompts may need espeak-ng the first time).
    pub(super) fn speak(&self, to: SpeechTo, lang: &str, parts: Vec<SpeechPart>) {
        if parts.is_empty() {
            return;
        }
        let e = crate::effects::Effect::Speak {
            to,
            lang: lang.to_string(),
            parts,
        };
        if !self.submit(e) {
            tracing::warn!("speech dropped: the worker queue is full");
        }
    }

    /// A worker's part of [`Core::speak`]: the parts made audio, then played.
    pub(crate) fn run_speech(&self, to: SpeechTo, lang: &str, parts: Vec<SpeechPart>) {
        let (Some(media), Some(prompts)) = (self.focus.media.as_ref(), self.focus.prompts.as_ref())
        else {
            return;
        };
        let clips: Vec<Arc<Clip>> = parts
            .into_iter()
            .map(|p| match p {
                SpeechPart::Prompt(p) => prompts.prompt(lang, p),
                SpeechPart::Text(t) => prompts.speak(lang, &t),
                SpeechPart::Clip(c) => c,
            })
            .collect();
        match to {
            SpeechTo::Attendant(leg, tag) => {
                // under the focus lock, as the attendant stops prompts: nothing it stopped
                // (speech still being made then) plays after
                let mut st = self.focus.state.lock();
                let current = st
                    .leg_owner(leg)
                    .filter(|(key, _)| key == ATTENDANT)
                    .and_then(|(_, id)| st.dial_in(id))
                    .is_some_and(|d| d.prompts == tag);
                if current {
                    clips
                        .into_iter()
                        .for_each(|c| media.play_tagged(leg, c, tag));
                }
            }
            SpeechTo::Leg(leg) => clips.into_iter().for_each(|c| media.play(leg, c)),
            SpeechTo::Room(room) => clips.into_iter().for_each(|c| media.announce(room, c)),
        }
    }

    /// The meeting a dial-in caller's conference ID named (read by a worker).
    pub(crate) fn conference_found(
        &self,
        id: u32,
        result: Result<Lookup, confab_store::StoreError>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            let Some(d) = st.dial_in(id) else {
                return;
            };
            let elsewhere = matches!(result, Ok(Lookup::Elsewhere));
            let meeting = match result {
                Ok(Lookup::Found(m)) => Some(m),
                Ok(Lookup::Unknown | Lookup::Elsewhere) => None,
                Err(e) => {
                    tracing::error!("reading a meeting by conference ID: {e}");
                    None
                }
            };
            // the organizer's CsConferencingPolicy EnableDialInConferencing
            let meeting = meeting.filter(|m| {
                let open = self
                    .policies
                    .get()
                    .conferencing_policy(&m.organizer)
                    .enable_dial_in_conferencing;
                if !open {
                    tracing::info!(meeting = %m.key, "dial-in refused: the organizer's policy has EnableDialInConferencing $false");
                }
                open
            });
            let found = meeting.is_some();
            tracing::info!(participant = id, found, "conference ID looked up");
            d.meeting = meeting;
            let acts = if elsewhere {
                // known, but not to be joined from here: no use trying again
                d.attendant.goodbye(Prompt::NotAdmitted)
            } else {
                d.attendant.looked_up(found)
            };
            self.attendant_acts(&mut st, id, acts, now, &mut sends);
        }
        self.flush(sends, now, out);
    }

    /// A leader's number and PIN, checked by a worker.
    pub(crate) fn pin_verified(
        &self,
        id: u32,
        verified: Verified,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            let Some(d) = st.dial_in(id) else {
                return;
            };
            let meeting = d
                .meeting
                .as_deref()
                .map(|m| m.key.clone())
                .unwrap_or_default();
            let (caller, gateway) = (d.caller.clone(), d.gateway);
            tracing::info!(participant = id, caller = %d.caller, ?verified, "dial-in leader PIN checked");
            let acts = d.attendant.verified(verified.clone());
            if !matches!(verified, Verified::Leader(_)) {
                st.pin_failures.failed(&meeting, &caller, gateway, now);
            }
            self.attendant_acts(&mut st, id, acts, now, &mut sends);
        }
        self.flush(sends, now, out);
    }

    /// Moves a caller from the attendant into its meeting (or its lobby), or refuses it
    /// with a prompt.
    fn dial_in_join(
        &self,
        st: &mut State,
        id: u32,
        leader: Option<String>,
        now: Instant,
        sends: &mut Sends,
    ) {
        let Some(media) = self.focus.media.as_ref() else {
            return;
        };
        let Some(a) = st.confs.get_mut(ATTENDANT) else {
            return;
        };
        let Some(i) = a.participants.iter().position(|p| p.id == id) else {
            return;
        };
        let Some(m) = a.participants[i]
            .dial_in
            .as_ref()
            .and_then(|d| d.meeting.clone())
        else {
            return;
        };
        let p = self.policies.get();
        let rules = rules_of(
            &m,
            &p.conferencing_policy(&m.organizer),
            p.meeting_configuration(),
        );
        drop(p);
        let present = st.confs.get(&m.key).map_or(0, |c| c.participants.len());
        let live_locked = st.confs.get(&m.key).is_some_and(|c| c.locked);
        let caller = match &leader {
            Some(k) => Caller::Enterprise(k.clone()),
            None => Caller::Anonymous,
        };
        let decision = match &leader {
            Some(_) => rules.admit(&caller, present),
            None => rules.admit_phone(present, m.pstn_bypass_lobby),
        };
        let (lobby, role) = match decision {
            Decision::Refuse(status, reason) => {
                tracing::info!(meeting = %m.key, participant = id, status, reason, "dial-in join refused");
                let Some(d) = st.dial_in(id) else {
                    return;
                };
                let acts = d.attendant.goodbye(Prompt::NotAdmitted);
                return self.attendant_acts(st, id, acts, now, sends);
            }
            Decision::Join(role) => (live_locked && role != Role::Presenter, role),
            Decision::Lobby(role) => (true, role),
        };
        // out of the attendant's table (the leg and the dialog stay)
        let a = st.confs.get_mut(ATTENDANT).expect("found above");
        let mut p = a.participants.remove(i);
        if a.participants.is_empty() {
            st.confs.remove(ATTENDANT);
        }
        let d = p.dial_in.take().expect("a dial-in caller");
        let lang = p.lang.clone().unwrap_or_else(|| DEFAULT_LANG.into());
        let room = st.room_of(&m.key);
        let conf = self.conf_for(st, &m, rules, room, Some(&lang));
        conf.next_id += 1;
        let new_id = conf.next_id;
        p.id = new_id;
        p.role = role;
        p.lobby = lobby;
        p.joined = now;
        p.caller = caller;
        match &leader {
            Some(k) => {
                p.user = format!("sip:{k}");
                p.key = Some(k.clone());
                p.display = k.clone();
            }
            None => {
                let number = &d.caller;
                p.user = if number.starts_with('+') || number.bytes().all(|b| b.is_ascii_digit()) {
                    format!("tel:{number}")
                } else {
                    format!("sip:phone-{}@anonymous.invalid", random_token(8))
                };
                p.key = None;
                p.display = format!("Phone {number}");
            }
        }
        p.keypad = Default::default();
        let leg = p.leg;
        let dkey = (p.dialog.call_id.clone(), p.dialog.our_tag.clone());
        tracing::info!(meeting = %m.key, participant = new_id, access = %d.access, leader = ?leader, lobby, "dial-in caller joined");
        let mode = leg_mode(&p);
        conf.participants.push(p);
        // a leader's lock, or the meeting's own access level Locked
        let locked = conf.locked || conf.rules.access == Access::Locked;
        st.dialogs
            .insert(dkey, (m.key.clone(), DialogRef::Participant(new_id)));
        if let Some(leg) = leg {
            if let Err(e) = media.move_leg(leg, room, mode) {
                tracing::error!(meeting = %m.key, participant = new_id, "moving a dial-in leg into the meeting: {e}");
            }
            let prompt = if !lobby {
                Prompt::Joining
            } else if locked {
                Prompt::MeetingLockedWait
            } else {
                Prompt::Lobby
            };
            self.speak(SpeechTo::Leg(leg), &lang, vec![SpeechPart::Prompt(prompt)]);
        }
        if !lobby {
            self.entered(st, &m.key, new_id, now, sends);
        } else {
            self.focus.changed(&m.key);
        }
        let _ = self.submit(crate::effects::Effect::TouchMeeting { id: m.id });
    }

    /// The live conference of meeting `m`, created when it is not live; its rules follow
    /// the meeting's (a leader's lock stays). `lang`: a dial-in caller's language, the
    /// meeting's announcements' when it has none yet.
    pub(super) fn conf_for<'a>(
        &self,
        st: &'a mut State,
        m: &confab_store::Meeting,
        rules: Rules,
        room: RoomId,
        lang: Option<&str>,
    ) -> &'a mut Conf {
        let conf = st.confs.entry(m.key.clone()).or_insert_with(|| {
            tracing::info!(meeting = %m.key, organizer = %m.organizer, "meeting started");
            let p = self.policies.get();
            let cfg = p.dial_in_configuration();
            Conf {
                key: m.key.clone(),
                uri: m.uri(),
                subject: m.subject.clone(),
                rules: rules.clone(),
                room,
                participants: vec![],
                subs: vec![],
                next_id: 0,
                locked: false,
                announce: cfg.entry_exit_announcements_enabled_by_default,
                names: cfg.entry_exit_announcements_type
                    == confab_policy::EntryExitAnnouncementsType::UseNames,
                lang: String::new(),
            }
        });
        conf.rules = rules;
        conf.subject = m.subject.clone();
        if let Some(lang) = lang.filter(|_| conf.lang.is_empty()) {
            conf.lang = lang.to_string();
        }
        conf
    }

    /// A participant is now in the meeting (joined, admitted, or called in): the roster
    /// shows it and the meeting hears it announced.
    pub(super) fn entered(
        &self,
        st: &mut State,
        key: &str,
        id: u32,
        now: Instant,
        sends: &mut Sends,
    ) {
        self.roster_changed(st, key, &[id], &[], now, sends);
        if let Some(c) = st.confs.get(key) {
            if let Some(p) = c.participant(id) {
                self.announce(c, p, true);
            }
        }
    }

    /// Entry and exit announcements to the meeting (when on): the participant's recorded
    /// name (or display name, spoken) and "joined"/"left" with UseNames, else a tone.
    pub(super) fn announce(&self, c: &Conf, p: &Participant, joined: bool) {
        if !c.announce || c.key == ATTENDANT {
            return;
        }
        let parts = if c.names {
            vec![
                p.spoken_name(),
                SpeechPart::Prompt(if joined {
                    Prompt::HasJoined
                } else {
                    Prompt::HasLeft
                }),
            ]
        } else {
            // a rising pair of tones for a join, a falling one for a departure
            let (a, b) = if joined {
                (600.0, 900.0)
            } else {
                (900.0, 600.0)
            };
            vec![SpeechPart::Clip(Arc::new(Clip::concat(&[
                &Clip::tone(a, 150, 6000),
                &Clip::tone(b, 150, 6000),
            ])))]
        };
        self.speak(SpeechTo::Room(c.room), c.lang(), parts);
    }

    /// A key from a participant (RFC 4733 through the MCU, or SIP INFO): the attendant's
    /// input, or a keypad command in a meeting.
    pub(super) fn on_key(
        &self,
        st: &mut State,
        conf_key: &str,
        id: u32,
        key: char,
        now: Instant,
        sends: &mut Sends,
    ) {
        if conf_key == ATTENDANT {
            let Some(d) = st.dial_in(id) else {
                return;
            };
            let acts = d.attendant.digit(key, now);
            return self.attendant_acts(st, id, acts, now, sends);
        }
        let Some(c) = st.confs.get_mut(conf_key) else {
            return;
        };
        let Some(p) = c.participant_mut(id) else {
            return;
        };
        let Some(cmd) = p.keypad.press(key, now) else {
            return;
        };
        self.keypad_command(st, conf_key, id, cmd, now, sends);
    }

    fn keypad_command(
        &self,
        st: &mut State,
        key: &str,
        id: u32,
        cmd: Command,
        now: Instant,
        sends: &mut Sends,
    ) {
        let media = self.focus.media.as_ref();
        let Some(c) = st.confs.get_mut(key) else {
            return;
        };
        let Some(p) = c.participant(id) else {
            return;
        };
        let (Some(leg), lobby) = (p.leg, p.lobby) else {
            return;
        };
        let lang = p.lang.clone().unwrap_or_else(|| c.lang().to_string());
        let leader = c.is_leader(id);
        tracing::info!(meeting = %key, participant = id, ?cmd, leader, "keypad command");
        let say = |parts: Vec<SpeechPart>| self.speak(SpeechTo::Leg(leg), &lang, parts);
        if lobby || (cmd.leaders_only() && !leader) {
            return say(vec![SpeechPart::Prompt(Prompt::NotAvailable)]);
        }
        match cmd {
            Command::Help => say(vec![SpeechPart::Prompt(if leader {
                Prompt::HelpLeader
            } else {
                Prompt::Help
            })]),
            Command::MuteSelf => {
                let Some(p) = c.participant_mut(id) else {
                    return;
                };
                p.muted = !p.muted;
                let muted = p.muted;
                if let Some(m) = media {
                    m.set_mode(leg, leg_mode(p));
                }
                self.roster_changed(st, key, &[id], &[], now, sends);
                say(vec![SpeechPart::Prompt(if muted {
                    Prompt::Muted
                } else {
                    Prompt::Unmuted
                })]);
            }
            Command::MuteAudience => {
                let mute = c
                    .participants
                    .iter()
                    .any(|p| !p.lobby && p.role != Role::Presenter && !p.muted);
                let mut changed = vec![];
                for p in c
                    .participants
                    .iter_mut()
                    .filter(|p| !p.lobby && p.role != Role::Presenter && p.muted != mute)
                {
                    p.muted = mute;
                    if let (Some(m), Some(l)) = (media, p.leg) {
                        m.set_mode(l, leg_mode(p));
                    }
                    changed.push(p.id);
                }
                if !changed.is_empty() {
                    self.roster_changed(st, key, &changed, &[], now, sends);
                }
                say(vec![SpeechPart::Prompt(if mute {
                    Prompt::AudienceMuted
                } else {
                    Prompt::AudienceUnmuted
                })]);
            }
            Command::Lock => {
                c.locked = !c.locked;
                let locked = c.locked;
                tracing::info!(meeting = %key, locked, "meeting lock changed by keypad");
                self.focus.changed(key);
                say(vec![SpeechPart::Prompt(if locked {
                    Prompt::Locked
                } else {
                    Prompt::Unlocked
                })]);
            }
            Command::AdmitLobby => {
                let waiting: Vec<u32> = c
                    .participants
                    .iter()
                    .filter(|p| p.lobby)
                    .map(|p| p.id)
                    .collect();
                for w in waiting {
                    self.admit_from_lobby(st, key, w, now, sends);
                }
                say(vec![SpeechPart::Prompt(Prompt::LobbyAdmitted)]);
            }
            Command::Announcements => {
                c.announce = !c.announce;
                let on = c.announce;
                say(vec![SpeechPart::Prompt(if on {
                    Prompt::AnnouncementsOn
                } else {
                    Prompt::AnnouncementsOff
                })]);
            }
            Command::RollCall => {
                let mut parts = vec![SpeechPart::Prompt(Prompt::RollCall)];
                parts.extend(
                    c.participants
                        .iter()
                        .filter(|p| !p.lobby && p.id != id)
                        .map(Participant::spoken_name),
                );
                say(parts);
            }
        }
    }

    /// What the MCU reports of a leg of a dial-in caller or participant: keys, the end of
    /// prompts, a recorded name.
    pub(super) fn dial_in_media_event(
        &self,
        ev: MediaEvent,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let leg = match &ev {
            MediaEvent::Dtmf { leg, .. }
            | MediaEvent::PromptDone { leg, .. }
            | MediaEvent::Recorded { leg, .. } => *leg,
            MediaEvent::Timeout { .. } => return,
        };
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            let Some((key, id)) = st.leg_owner(leg) else {
                return;
            };
            match ev {
                MediaEvent::Dtmf { digit, .. } => {
                    self.on_key(&mut st, &key, id, digit, now, &mut sends)
                }
                MediaEvent::PromptDone { tag, .. } if key == ATTENDANT => {
                    let Some(d) = st.dial_in(id) else {
                        return;
                    };
                    // the end of prompts a key stopped is no end of the current ones
                    if tag == d.prompts {
                        let acts = d.attendant.prompt_done(now);
                        self.attendant_acts(&mut st, id, acts, now, &mut sends);
                    }
                }
                MediaEvent::Recorded { clip, .. } => {
                    let Some(p) = st.confs.get_mut(&key).and_then(|c| c.participant_mut(id)) else {
                        return;
                    };
                    if !clip.is_empty() {
                        p.name = Some(clip);
                    }
                    if let Some(d) = p.dial_in.as_mut() {
                        let acts = d.attendant.recorded();
                        self.attendant_acts(&mut st, id, acts, now, &mut sends);
                    }
                }
                _ => {}
            }
        }
        self.flush(sends, now, out);
    }

    /// The attendant's key timeouts.
    pub(super) fn attendant_tick(&self, st: &mut State, now: Instant, sends: &mut Sends) {
        let Some(a) = st.confs.get_mut(ATTENDANT) else {
            return;
        };
        let mut due = vec![];
        for p in &mut a.participants {
            if let Some(d) = p.dial_in.as_mut() {
                if d.attendant.deadline().is_some_and(|t| now >= t) {
                    due.push((p.id, d.attendant.tick(now)));
                }
            }
        }
        for (id, acts) in due {
            self.attendant_acts(st, id, acts, now, sends);
        }
    }
}

/// The attendant's table is no meeting: nobody is admitted to it by rules.
fn attendant_rules() -> Rules {
    Rules {
        organizer: String::new(),
        access: Access::Locked,
        presenters: Presenters::None,
        assigned: false,
        invitees: vec![],
        max_size: 0,
        allow_ip_audio: false,
        allow_anonymous: false,
        admit_anonymous: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_failures_are_limited_per_caller_meeting_and_gateway_for_a_window() {
        let t = Instant::now();
        let gw: IpAddr = "192.0.2.1".parse().unwrap();
        let other_gw: IpAddr = "192.0.2.2".parse().unwrap();
        let mut l = PinLimiter::default();
        for _ in 0..PIN_FAILURES_PER_CALLER {
            assert!(!l.limited("M1", "+1555", gw, t));
            l.failed("M1", "+1555", gw, t);
        }
        // that caller is stopped, on any meeting and gateway; another caller is not
        assert!(l.limited("M2", "+1555", other_gw, t));
        assert!(!l.limited("M2", "+1666", other_gw, t));
        // many callers on one meeting: the meeting is stopped
        for i in 0..PIN_FAILURES_PER_MEETING {
            l.failed("M3", &format!("+1{i}"), other_gw, t);
        }
        assert!(l.limited("M3", "+1999", "192.0.2.3".parse().unwrap(), t));
        // one gateway guessing across meetings and callers: the gateway is stopped
        let g3: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..PIN_FAILURES_PER_GATEWAY {
            l.failed(&format!("X{i}"), &format!("+2{i}"), g3, t);
        }
        assert!(l.limited("Y", "+3", g3, t));
        // the window passes
        assert!(!l.limited("M2", "+1555", other_gw, t + PIN_WINDOW));
        // the table is bounded
        for i in 0..PinLimiter::MAX_KEYS {
            l.failed(&format!("Z{i}"), "+4", gw, t);
        }
        assert!(l.counts.len() <= PinLimiter::MAX_KEYS);
    }

    #[test]
    fn access_numbers_by_tel_uri_number_or_their_own_uri() {
        let n = confab_policy::DialInConferencingAccessNumber {
            line_uri: "tel:+14255550100".into(),
            primary_language: "fr-FR".into(),
            ..Default::default()
        };
        let numbers = vec![("sip:dialin@example.test".to_string(), n)];
        let found = |u: &str, ours: bool| access_number_of(&Uri::parse(u).unwrap(), &numbers, ours);
        let want = Some(("sip:dialin@example.test".to_string(), "fr-FR".to_string()));
        assert_eq!(found("tel:+14255550100", false), want);
        assert_eq!(found("tel:+1-425-555-0100;phone-context=x", false), want);
        assert_eq!(
            found("sip:+14255550100@example.test;user=phone", true),
            want
        );
        assert_eq!(found("sip:dialin@example.test", true), want);
        assert_eq!(found("sip:+14255550100@elsewhere.test", false), None);
        assert_eq!(found("tel:+14255550199", false), None);
        assert_eq!(found("sip:alice@example.test", true), None);
    }
}
