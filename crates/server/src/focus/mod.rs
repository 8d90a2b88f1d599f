//! The conference focus (RFC 4353, RFC 4579) and its meetings, as a service of the request
//! pipeline.
//!
//! A meeting's conference URI is Lync's focus URI,
//! `sip:<organizer>@<domain>;gruu;opaque=app:conf:focus:id:<key>`: `classify` recognises it
//! ([`Destination::Conference`]), the pipeline proves the caller's origin, and the focus
//! decides at once from the meeting (read from the central store by a store worker, never
//! under a lock), the organizer's CsConferencingPolicy and CsMeetingConfiguration
//! (`admission.rs`): join, wait in the lobby, or a clear refusal.
//!
//! The focus is the conference's user agent: it answers the INVITE itself (its own To tag,
//! a Contact with `isfocus`), retransmits the 2xx until the ACK (RFC 3261 §13.3.1.4), and
//! holds one dialog per participant. Requests inside those dialogs are recognised by the
//! dialog the focus made (Call-ID and the focus's own random tag) *and* by coming from the
//! participant's own flow (address): a guessed or overheard tag from elsewhere is not enough.
//! Audio goes through the media plane (`confab-media`): each participant is a leg of the
//! meeting's room; a lobby leg hears the lobby tone and nothing of the meeting, and is not
//! on the roster.
//!
//! Modules: `admission.rs` (who gets in: pure rules), `dialog.rs` (the focus's dialogs),
//! `subscriptions.rs` and `roster.rs` (the conference event package, RFC 4575), `im.rs`
//! (conference IM: a MESSAGE from a participant reaches every other one, the sender
//! named), `live.rs` (what leaders do: admit, deny, mute, remove — REST, and RFC 4579 REFER
//! with `method=BYE`); this file holds the joins, the calls and the timers.
//!
//! The meetings live in the central store; the live state of a conference (its
//! participants, lobby and subscriptions) is held by the server that hosts it, as Lync's
//! MCUs do.

pub mod admission;
pub(crate) mod attendant;
mod dialin;
pub(crate) mod dialog;
mod dialout;
mod im;
pub(crate) mod keypad;
mod live;
pub(crate) mod roster;
mod subscriptions;

pub(crate) use dialin::{access_number_of, DEFAULT_LANG};
pub use dialin::{Lookup, SpeechPart, SpeechTo};
use dialog::{fix_to, rename_from, Dialog};
pub use live::{LiveAction, LiveFailure, LiveParticipant, LiveView, MeetingAction};
use subscriptions::Subscription;

use crate::core::{random_token, Core, Shard, SERVER_NAME};
use crate::net::{Dest, Outgoing, Source};
use crate::pipeline::Verdict;
use admission::{Access, Caller, Decision, Presenters, Role, Rules};
use bytes::Bytes;
use confab_media::{Engine, LegId, LegMode, MediaError, MediaEvent, RoomId};
use confab_sip::values::NameAddr;
use confab_sip::{response_to, HeaderName, Message, Method, Uri};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The prefix of a focus URI's `opaque` parameter (Lync also uses `app:conf:audio-video`).
const OPAQUE_PREFIXES: &[&str] = &["app:conf:focus:id:", "app:conf:audio-video:id:"];
/// Methods the focus takes.
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, SUBSCRIBE, REFER, INFO";
/// Conference subscriptions: the shortest and longest expiry granted.
const SUB_MIN: u64 = 60;
const SUB_MAX: u64 = 3600;
/// Participants (lobby included) in all meetings hosted here, and subscriptions per meeting:
/// the tables are bounded.
const MAX_SUBS_PER_MEETING: usize = 1024;
/// The largest MESSAGE body conference IM relays.
const MAX_IM_BYTES: usize = 16 * 1024;

/// A conference URI, as the Request-URI named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfAddr {
    /// The organizer (`user@domain`, lower case).
    pub organizer: String,
    pub key: String,
}

/// A join waiting for its meeting to be read from the store.
#[derive(Debug)]
pub struct JoinRequest {
    /// The server transaction of the INVITE, and its shard.
    pub shard: usize,
    pub key: String,
    pub req: Message,
    pub conf: ConfAddr,
    pub caller: Caller,
    pub src: Source,
}

/// The focus: live conferences and the media plane.
pub struct Focus {
    state: Mutex<State>,
    /// When the store's expired meetings are next removed.
    next_expiry: Mutex<Option<Instant>>,
    media: Option<Engine>,
    /// The attendant's and the keypad's spoken prompts (with the media plane).
    prompts: Option<std::sync::Arc<confab_media::Prompts>>,
    lobby_timeout: Duration,
    max_participants: usize,
    /// The keys of meetings whose roster, lobby or lock changed (or that ended), for the
    /// web's live meeting pages. Bounded: a receiver that lags just re-reads everything.
    changes: tokio::sync::broadcast::Sender<std::sync::Arc<str>>,
}

/// How many change notifications wait for a slow receiver before it lags.
const CHANGES_CAPACITY: usize = 256;

#[derive(Default)]
struct State {
    /// Live conferences by meeting key.
    confs: HashMap<String, Conf>,
    /// (Call-ID, the focus's tag) → (meeting key, participant or subscription id).
    dialogs: HashMap<(String, String), (String, DialogRef)>,
    next_room: u64,
    /// Failed leader PINs per meeting, caller number and gateway (dial-in rate limits).
    pin_failures: dialin::PinLimiter,
    /// Dial-outs ringing, by Call-ID.
    dial_outs: HashMap<String, dialout::DialOut>,
}

impl State {
    /// The media room of a meeting (a new one when it is not live).
    fn room_of(&mut self, key: &str) -> RoomId {
        match self.confs.get(key) {
            Some(c) => c.room,
            None => self.new_room(),
        }
    }

    fn new_room(&mut self) -> RoomId {
        self.next_room += 1;
        RoomId(self.next_room)
    }

    /// The conference and participant a media leg belongs to.
    fn leg_owner(&self, leg: LegId) -> Option<(String, u32)> {
        self.confs.iter().find_map(|(k, c)| {
            c.participants
                .iter()
                .find(|p| p.leg == Some(leg))
                .map(|p| (k.clone(), p.id))
        })
    }

    /// All participants of all conferences (lobby included).
    fn participants(&self) -> usize {
        self.confs.values().map(|c| c.participants.len()).sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialogRef {
    Participant(u32),
    Subscription(u32),
}

/// A participant (in the meeting or in its lobby).
struct Participant {
    id: u32,
    /// The user's URI as the roster shows it.
    user: String,
    /// The proven `user@domain` of an enterprise or federated caller.
    key: Option<String>,
    display: String,
    role: Role,
    caller: Caller,
    lobby: bool,
    joined: Instant,
    muted: bool,
    on_hold: bool,
    leg: Option<LegId>,
    dialog: Dialog,
    /// The 2xx to retransmit until the ACK (unreliable transports), with its schedule.
    unacked: Option<Retransmit>,
    /// A dial-in caller still with the conferencing attendant (in the attendant's table).
    dial_in: Option<Box<dialin::DialIn>>,
    /// Came through a dial-in access number: the language of its prompts.
    lang: Option<String>,
    /// The name announced and read in roll calls (recorded by a dial-in caller).
    name: Option<std::sync::Arc<confab_media::Clip>>,
    keypad: keypad::Keypad,
}

impl Participant {
    /// A participant in the meeting (not the lobby), heard, with nothing else known yet:
    /// its key is the caller's proven address, if any.
    fn new(id: u32, caller: Caller, leg: LegId, dialog: Dialog, now: Instant) -> Participant {
        let key = match &caller {
            Caller::Enterprise(k) | Caller::Federated(k) => Some(k.clone()),
            Caller::Anonymous => None,
        };
        Participant {
            id,
            user: String::new(),
            key,
            display: String::new(),
            role: Role::Attendee,
            caller,
            lobby: false,
            joined: now,
            muted: false,
            on_hold: false,
            leg: Some(leg),
            dialog,
            unacked: None,
            dial_in: None,
            lang: None,
            name: None,
            keypad: Default::default(),
        }
    }
}

struct Retransmit {
    bytes: Bytes,
    cseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// A live conference.
struct Conf {
    key: String,
    uri: String,
    subject: String,
    rules: Rules,
    room: RoomId,
    participants: Vec<Participant>,
    subs: Vec<Subscription>,
    next_id: u32,
    /// Locked by a leader (`*7`): everyone but leaders waits in the lobby.
    locked: bool,
    /// Entry and exit announcements (`*9`; CsDialInConferencingConfiguration
    /// EntryExitAnnouncementsEnabledByDefault).
    announce: bool,
    /// Announce names (UseNames) rather than tones (ToneOnly).
    names: bool,
    /// The language of announcements (of the first dial-in caller's access number).
    lang: String,
}

impl Conf {
    fn participant(&self, id: u32) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id == id)
    }
    fn participant_mut(&mut self, id: u32) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| p.id == id)
    }
    fn endpoint(&self, p: &Participant) -> String {
        format!("{};ep=p{}", self.uri, p.id)
    }
    fn entry(&self, p: &Participant) -> roster::Entry {
        roster::Entry {
            user: p.user.clone(),
            endpoint: self.endpoint(p),
            display: p.display.clone(),
            role: p.role.as_str(),
            muted: p.muted,
            on_hold: p.on_hold,
        }
    }
    fn active(&self) -> impl Iterator<Item = &Participant> {
        self.participants.iter().filter(|p| !p.lobby)
    }
    /// Is `id` the organizer or a presenter in the meeting (not in the lobby)?
    fn is_leader(&self, id: u32) -> bool {
        self.participant(id)
            .is_some_and(|p| !p.lobby && p.role == Role::Presenter)
    }
    /// The participant a REST / REFER target names: `p3`, its endpoint URI, or a user's
    /// URI or `user@domain`.
    fn find(&self, name: &str) -> Option<u32> {
        let name = name.trim().trim_start_matches('<').trim_end_matches('>');
        if let Some(n) = name.strip_prefix('p').and_then(|n| n.parse::<u32>().ok()) {
            return self.participant(n).map(|p| p.id);
        }
        if let Some(ep) = name
            .rsplit_once(";ep=p")
            .and_then(|(_, n)| n.parse::<u32>().ok())
        {
            return self.participant(ep).map(|p| p.id);
        }
        let bare = name.strip_prefix("sip:").unwrap_or(name);
        let bare = bare.split(';').next().unwrap_or(bare);
        self.participants
            .iter()
            .find(|p| {
                p.key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(bare))
                    || p.user
                        .strip_prefix("sip:")
                        .is_some_and(|u| u.eq_ignore_ascii_case(bare))
            })
            .map(|p| p.id)
    }
}

/// What to send once the focus lock is released.
#[derive(Default)]
struct Sends {
    requests: Vec<(Message, Dest)>,
    raw: Vec<(Dest, Bytes)>,
    close_legs: Vec<LegId>,
}

impl Focus {
    pub fn new(
        media: Option<Engine>,
        prompts_dir: std::path::PathBuf,
        lobby_timeout: Duration,
        max_participants: usize,
    ) -> Focus {
        let prompts = media
            .as_ref()
            .map(|_| std::sync::Arc::new(confab_media::Prompts::new(prompts_dir.clone())));
        Focus {
            state: Mutex::new(State::default()),
            next_expiry: Mutex::new(None),
            media,
            prompts,
            lobby_timeout,
            max_participants,
            changes: tokio::sync::broadcast::channel(CHANGES_CAPACITY).0,
        }
    }

    /// Notifications of changed meetings (their keys): roster, lobby, lock, end.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<str>> {
        self.changes.subscribe()
    }

    /// Tells the receivers that meeting `key` changed (never blocks; nobody listening is
    /// fine).
    fn changed(&self, key: &str) {
        if self.changes.receiver_count() > 0 && key != dialin::ATTENDANT {
            let _ = self.changes.send(std::sync::Arc::from(key));
        }
    }

    pub fn media(&self) -> Option<&Engine> {
        self.media.as_ref()
    }

    pub fn prompts(&self) -> Option<&std::sync::Arc<confab_media::Prompts>> {
        self.prompts.as_ref()
    }

    /// Participants in all live meetings here (lobby included).
    pub fn participants(&self) -> usize {
        self.state.lock().participants()
    }

    /// Whether it is time to remove expired meetings (once a minute, and at start).
    pub(crate) fn expiry_due(&self, now: Instant) -> bool {
        let mut next = self.next_expiry.lock();
        if next.is_some_and(|t| now < t) {
            return false;
        }
        *next = Some(now + Duration::from_secs(60));
        true
    }

    /// Live meetings here.
    pub fn meetings(&self) -> usize {
        self.state.lock().confs.len()
    }
}

/// The conference a Request-URI names, if it is a focus URI.
pub(crate) fn conference_of(ruri: &Uri<'_>, domain: &str) -> Option<ConfAddr> {
    let opaque = ruri.param("opaque")?;
    if !opaque
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("app:conf:"))
    {
        return None;
    }
    // a conference URI with a key that cannot be one names no meeting (404), never the
    // organizer's own phone
    let key = OPAQUE_PREFIXES
        .iter()
        .find_map(|p| opaque.strip_prefix(p))
        .filter(|k| !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("");
    Some(ConfAddr {
        organizer: crate::users::user_key(ruri.user.unwrap_or(""), domain),
        key: key.to_string(),
    })
}

/// The caller as the focus judges it, from the pipeline's proven origin.
pub(crate) fn caller_of(
    origin: &crate::pipeline::authenticate::Origin,
    sender: &crate::pipeline::classify::Sender,
) -> Caller {
    use crate::pipeline::authenticate::Origin;
    use crate::pipeline::classify::Sender;
    match origin {
        Origin::LocalUser(k) => Caller::Enterprise(k.clone()),
        // a trusted peer (a gateway, another server of ours) vouches for its From
        Origin::TrustedPeer | Origin::Gateway(_) => match sender {
            Sender::Local { key } => Caller::Enterprise(key.clone()),
            _ => Caller::Anonymous,
        },
        Origin::Partner(domain) => Caller::Federated(
            sender
                .key()
                .map(str::to_string)
                .unwrap_or_else(|| domain.clone()),
        ),
        // an unverified foreign sender proves nothing: anonymous
        Origin::Remote(_) | Origin::Anonymous(_) | Origin::Dialog => Caller::Anonymous,
    }
}

/// A meeting from the store, as the focus's rules.
pub(crate) fn rules_of(
    m: &confab_store::Meeting,
    policy: &confab_policy::ConferencingPolicy,
    meeting_cfg: &confab_policy::MeetingConfiguration,
) -> Rules {
    Rules {
        organizer: m.organizer.to_ascii_lowercase(),
        access: match m.access {
            confab_store::Access::Locked => Access::Locked,
            confab_store::Access::Invited => Access::Invited,
            confab_store::Access::SameEnterprise => Access::SameEnterprise,
            confab_store::Access::Everyone => Access::Everyone,
        },
        presenters: match m.presenters {
            confab_store::Presenters::None => Presenters::None,
            confab_store::Presenters::Company => Presenters::Company,
            confab_store::Presenters::Everyone => Presenters::Everyone,
        },
        assigned: m.kind == confab_store::MeetingKind::Assigned,
        invitees: m.invitees.iter().map(|i| i.to_ascii_lowercase()).collect(),
        max_size: usize::try_from(policy.max_meeting_size).unwrap_or(2).max(2),
        allow_ip_audio: policy.allow_ip_audio,
        allow_anonymous: policy.allow_anonymous_participants_in_meetings,
        admit_anonymous: meeting_cfg.admit_anonymous_users_by_default,
    }
}

/// Whether an SDP offer puts the sender on hold (RFC 3264 §8.4: its audio stream sendonly
/// or inactive, or the old c=0.0.0.0), read with the MCU's own SDP parser.
fn sdp_holds(sdp: &[u8]) -> bool {
    let Some(offer) = std::str::from_utf8(sdp)
        .ok()
        .and_then(|s| confab_media::sdp::parse_offer(s).ok())
    else {
        return false;
    };
    let audio = offer
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0);
    let direction = audio.and_then(|m| m.direction).unwrap_or(offer.direction);
    let conn = audio.and_then(|m| m.conn).or(offer.conn);
    !direction.receives() || conn.is_some_and(|c| c.is_unspecified())
}

fn media_status(e: &MediaError) -> (u16, String) {
    match e {
        MediaError::NoPorts | MediaError::Full => (503, format!("Media unavailable: {e}")),
        MediaError::Closed => (500, format!("Media plane stopped: {e}")),
        _ => (488, format!("Not Acceptable Here: {e}")),
    }
}

impl Core {
    /// Whether `msg` (with a To tag) is inside a dialog of the focus.
    pub(crate) fn is_focus_dialog(&self, msg: &Message) -> bool {
        let (Some(cid), Some(tag)) = (msg.call_id(), msg.to_hdr().and_then(|t| t.tag())) else {
            return false;
        };
        self.focus
            .state
            .lock()
            .dialogs
            .contains_key(&(cid.to_string(), tag.to_string()))
    }

    /// Answers `msg` with a response built here (To tag and Contact of the focus).
    fn focus_response(
        &self,
        msg: &Message,
        status: u16,
        reason: Option<&str>,
        tag: &str,
        conf_uri: &str,
        src: &Source,
    ) -> Message {
        let mut r = response_to(msg, status, reason, Some(tag));
        r.headers.push(HeaderName::Server, SERVER_NAME);
        if (200..300).contains(&status) {
            r.headers
                .push(HeaderName::Contact, self.focus_contact(conf_uri, src));
            r.headers.push(HeaderName::Allow, ALLOW);
        }
        r
    }

    /// A 2xx of the focus to retransmit until the ACK (RFC 3261 §13.3.1.4): over an
    /// unreliable transport only.
    fn retransmit_2xx(
        &self,
        resp: &Message,
        req: &Message,
        src: &Source,
        now: Instant,
    ) -> Option<Retransmit> {
        (!src.transport.is_reliable()).then(|| Retransmit {
            bytes: resp.to_bytes(),
            cseq: req.cseq().map(|c| c.seq).unwrap_or(0),
            next: now + self.timers.t1,
            interval: self.timers.t1,
            give_up: now + self.timers.t1x64(),
        })
    }

    /// The focus's Contact: the conference URI at this server's address, with `isfocus`.
    fn focus_contact(&self, conf_uri: &str, src: &Source) -> String {
        let l = crate::config::Listen {
            transport: src.transport,
            addr: src.local,
        };
        let (user, rest) = conf_uri
            .strip_prefix("sip:")
            .and_then(|u| u.split_once('@'))
            .unwrap_or(("focus", ""));
        let params = rest.split_once(';').map(|(_, p)| p).unwrap_or("");
        format!(
            "<sip:{user}@{};transport={};{params}>;isfocus",
            Core::hostport(&l),
            src.transport.param()
        )
    }

    /// An out-of-dialog request to a conference URI (after authentication and policy).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serve_conference(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        conf: ConfAddr,
        caller: Caller,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        if msg.to_hdr().is_some_and(|t| t.tag().is_some()) {
            return Verdict::reply(481, "Call/Transaction Does Not Exist");
        }
        if conf.key.is_empty() || !conf.organizer.contains('@') || conf.organizer.starts_with('@') {
            return Verdict::reply(404, "No such meeting");
        }
        // in a pool: a meeting live on another front end (its roster, IM, REFER) is served
        // there; a join (INVITE) finds its host through the store
        if msg.method() != Some(&Method::Invite) {
            if let Some(fe) = self.pool.as_ref().and_then(|p| p.meeting_host(&conf.key)) {
                let target = crate::pipeline::Target {
                    via_pool: true,
                    ..crate::pipeline::Target::hop(fe)
                };
                let idx = crate::core::shard_of(msg.call_id().map(|c| c.as_str()).unwrap_or(""));
                self.proxy(
                    shard,
                    idx,
                    key,
                    msg.clone(),
                    src,
                    vec![target],
                    None,
                    now,
                    out,
                );
                return Verdict::Done;
            }
        }
        match msg.method() {
            Some(Method::Invite) => {
                if self.store.is_none() || self.focus.media.is_none() {
                    return Verdict::reply(480, "Conferencing is not available on this server");
                }
                self.reply(shard, key, msg, 100, None, now, out);
                let effect = crate::effects::Effect::Join(Box::new(JoinRequest {
                    shard: crate::core::shard_of(msg.call_id().map(|c| c.as_str()).unwrap_or("")),
                    key: key.to_string(),
                    req: msg.clone(),
                    conf,
                    caller,
                    src: *src,
                }));
                if !self.submit(effect) {
                    self.reply_store_busy(shard, key, msg, now, out);
                }
                Verdict::Done
            }
            Some(Method::Options) => {
                let mut r = self.focus_response(
                    msg,
                    200,
                    None,
                    &random_token(10),
                    msg.uri().map(|u| u.as_str()).unwrap_or(""),
                    src,
                );
                r.headers.push(HeaderName::Accept, "application/sdp");
                Verdict::Respond(Box::new(r))
            }
            Some(Method::Subscribe) => {
                self.conference_subscribe(shard, msg, &conf, &caller, src, now, out)
            }
            Some(Method::Message) => self.conference_im(shard, msg, &conf, &caller, src, out),
            Some(Method::Refer) => self.conference_refer(shard, msg, &conf, &caller, src, now, out),
            Some(Method::Ack) => Verdict::Drop,
            Some(Method::Bye | Method::Cancel | Method::Info | Method::Notify) => {
                Verdict::reply(481, "Call/Transaction Does Not Exist")
            }
            _ => {
                let mut r = self.error_response(msg, 405, "Method Not Allowed");
                r.headers.push(HeaderName::Allow, ALLOW);
                Verdict::Respond(Box::new(r))
            }
        }
    }

    /// Completes a join once a store worker has read the meeting.
    pub(crate) fn complete_join(
        &self,
        j: JoinRequest,
        meeting: Result<Option<confab_store::Meeting>, confab_store::StoreError>,
        host: Option<String>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        if let (Some(pool), Ok(Some(m))) = (&self.pool, &meeting) {
            pool.note_meeting_host(&m.key, host.as_deref());
        }
        if let (Some(host), Ok(Some(_))) = (&host, &meeting) {
            return self.join_elsewhere(j, host, now, out);
        }
        let JoinRequest {
            shard: shard_idx,
            key,
            req,
            conf,
            caller,
            src,
        } = j;
        let (key, req, src) = (key.as_str(), &req, &src);
        let mut sends = Sends::default();
        // under the INVITE's shard lock: a CANCEL (487) or a timeout that ended the
        // transaction while the store was read leaves nobody half-joined
        let mut shard = self.shards[shard_idx].lock();
        if shard.server.get(key).is_none_or(|e| e.txn.is_final()) {
            return;
        }
        let verdict = match meeting {
            Err(e) => {
                tracing::error!("reading a meeting: {e}");
                Err(Verdict::reply(500, "Could not read the meeting"))
            }
            Ok(None) => Err(Verdict::reply(404, "No such meeting")),
            Ok(Some(m)) if !m.organizer.eq_ignore_ascii_case(&conf.organizer) => {
                Err(Verdict::reply(404, "No such meeting"))
            }
            Ok(Some(m)) => self.join(req, &m, caller, src, now, &mut sends),
        };
        match verdict {
            Ok(resp) => self.respond(&mut shard, key, resp, now, out),
            Err(Verdict::Reply(s, r)) => {
                self.reply(&mut shard, key, req, s, r.as_deref(), now, out)
            }
            Err(Verdict::Respond(r)) => self.respond(&mut shard, key, *r, now, out),
            Err(_) => self.remove_server(&mut shard, key),
        }
        self.unlock_and_run(shard, now, out);
        self.flush(sends, now, out);
    }

    /// The meeting is live on another front end of the pool: the INVITE goes there (a
    /// pool Route entry; that front end admits the caller as this one asserted it).
    fn join_elsewhere(&self, j: JoinRequest, host: &str, now: Instant, out: &mut Vec<Outgoing>) {
        let mut shard = self.shards[j.shard].lock();
        if shard.server.get(&j.key).is_none_or(|e| e.txn.is_final()) {
            return;
        }
        match self.pool.as_ref().and_then(|p| p.alive_member(host)) {
            Some(fe) => {
                // the participant's dialog, kept to hang up for the host if it dies
                let dialog = match Dialog::new(&j.req, &j.src, self, "") {
                    Ok(d) => d,
                    Err(Verdict::Reply(status, reason)) => {
                        self.reply(
                            &mut shard,
                            &j.key,
                            &j.req,
                            status,
                            reason.as_deref(),
                            now,
                            out,
                        );
                        return self.unlock_and_run(shard, now, out);
                    }
                    Err(_) => return self.unlock_and_run(shard, now, out),
                };
                tracing::info!(meeting = %j.conf.key, front_end = host, "meeting hosted by another front end: joining there");
                let target = crate::pipeline::Target {
                    via_pool: true,
                    ..crate::pipeline::Target::hop(fe)
                };
                self.proxy(
                    &mut shard,
                    j.shard,
                    &j.key,
                    j.req.clone(),
                    &j.src,
                    vec![target],
                    None,
                    now,
                    out,
                );
                let pid = shard.server.get(&j.key).and_then(|e| e.proxy);
                if let Some(ctx) = pid.and_then(|pid| shard.proxies.get_mut(&pid)) {
                    ctx.seat = Some(Box::new(crate::core::RemoteSeat {
                        host: host.to_string(),
                        dialog,
                    }));
                }
            }
            None => self.reply(
                &mut shard,
                &j.key,
                &j.req,
                503,
                Some("The meeting's front end is unavailable"),
                now,
                out,
            ),
        }
        self.unlock_and_run(shard, now, out);
    }

    /// Admission, then the leg and the 200 (or a refusal).
    fn join(
        &self,
        req: &Message,
        m: &confab_store::Meeting,
        caller: Caller,
        src: &Source,
        now: Instant,
        sends: &mut Sends,
    ) -> Result<Message, Verdict> {
        let p = self.policies.get();
        let rules = rules_of(
            m,
            &p.conferencing_policy(&m.organizer),
            p.meeting_configuration(),
        );
        let media = self
            .focus
            .media
            .as_ref()
            .expect("checked before the lookup");
        let offer = std::str::from_utf8(&req.body)
            .map_err(|_| Verdict::reply(400, "SDP body is not UTF-8"))?;
        if offer.trim().is_empty() {
            // no offer in the INVITE (offer in the ACK) is not supported by the focus
            return Err(Verdict::reply(
                488,
                "The focus needs an SDP offer in the INVITE",
            ));
        }
        let our_tag = random_token(16);
        let dialog = Dialog::new(req, src, self, &our_tag)?;
        let mut st = self.focus.state.lock();
        if st.participants() >= self.focus.max_participants {
            return Err(Verdict::reply(
                503,
                "Conferencing capacity reached on this server",
            ));
        }
        let present = st.confs.get(&m.key).map_or(0, |c| c.participants.len());
        let live_locked = st.confs.get(&m.key).is_some_and(|c| c.locked);
        let (lobby, role) = match rules.admit(&caller, present) {
            Decision::Refuse(status, reason) => {
                tracing::info!(meeting = %m.key, ?caller, status, reason, "join refused");
                return Err(Verdict::reply(status, reason));
            }
            // a meeting a leader locked (`*7`): only leaders get in directly
            Decision::Join(role) => (live_locked && role != Role::Presenter, role),
            Decision::Lobby(role) => (true, role),
        };
        let room = st.room_of(&m.key);
        let mode = if lobby {
            LegMode::Lobby
        } else {
            LegMode::Active
        };
        let (leg, answer) = media.open_leg(room, offer, mode).map_err(|e| {
            let (s, r) = media_status(&e);
            Verdict::Reply(s, Some(r))
        })?;
        let from = req.from_hdr();
        let display = from
            .as_ref()
            .and_then(|f| f.display.map(|d| d.trim().trim_matches('"').to_string()))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| match &caller {
                Caller::Enterprise(k) | Caller::Federated(k) => k.clone(),
                Caller::Anonymous => "Guest".to_string(),
            });
        let user = match &caller {
            Caller::Enterprise(k) | Caller::Federated(k) if k.contains('@') => format!("sip:{k}"),
            _ => format!("sip:guest-{}@anonymous.invalid", random_token(8)),
        };
        let conf_uri = m.uri();
        let conf = self.conf_for(&mut st, m, rules, room, None);
        conf.next_id += 1;
        let id = conf.next_id;
        let mut resp = self.focus_response(req, 200, None, &our_tag, &conf_uri, src);
        resp.set_body("application/sdp", Bytes::from(answer));
        tracing::info!(meeting = %m.key, participant = id, ?caller, lobby, "joined");
        let mut p = Participant::new(id, caller, leg, dialog, now);
        p.user = user;
        p.display = display;
        p.role = role;
        p.lobby = lobby;
        p.on_hold = sdp_holds(&req.body);
        p.unacked = self.retransmit_2xx(&resp, req, src, now);
        conf.participants.push(p);
        let dkey = (
            req.call_id().map(|c| c.to_string()).unwrap_or_default(),
            our_tag,
        );
        st.dialogs
            .insert(dkey, (m.key.clone(), DialogRef::Participant(id)));
        if !lobby {
            self.entered(&mut st, &m.key, id, now, sends);
        } else {
            self.focus.changed(&m.key);
        }
        drop(st);
        // last use (the expiry of a meeting counts from it): a store worker's job; when
        // the queue is full the meeting keeps its earlier last use
        let _ = self.submit(crate::effects::Effect::TouchMeeting { id: m.id });
        Ok(resp)
    }

    /// The ACK for a 2xx of the focus; true when it was one (it is then absorbed).
    pub(crate) fn focus_ack(&self, msg: &Message, src: &Source) -> bool {
        let (Some(cid), Some(tag)) = (msg.call_id(), msg.to_hdr().and_then(|t| t.tag())) else {
            return false;
        };
        let mut st = self.focus.state.lock();
        let Some((conf, DialogRef::Participant(id))) =
            st.dialogs.get(&(cid.to_string(), tag.to_string())).cloned()
        else {
            return false;
        };
        if let Some(p) = st.confs.get_mut(&conf).and_then(|c| c.participant_mut(id)) {
            if p.dialog.dest.addr.ip() == src.remote.ip() {
                let seq = msg.cseq().map(|c| c.seq).unwrap_or(0);
                if p.unacked.as_ref().is_some_and(|u| u.cseq == seq) {
                    p.unacked = None;
                }
            }
        }
        true
    }

    /// A request inside a dialog of the focus.
    pub(crate) fn serve_focus_dialog(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let (Some(cid), Some(tag)) = (msg.call_id(), msg.to_hdr().and_then(|t| t.tag())) else {
            return Verdict::reply(481, "Call/Transaction Does Not Exist");
        };
        let dkey = (cid.to_string(), tag.to_string());
        let mut sends = Sends::default();
        let verdict = {
            let mut st = self.focus.state.lock();
            let Some((conf_key, dref)) = st.dialogs.get(&dkey).cloned() else {
                return Verdict::reply(481, "Call/Transaction Does Not Exist");
            };
            let Some(conf) = st.confs.get_mut(&conf_key) else {
                return Verdict::reply(481, "Call/Transaction Does Not Exist");
            };
            let from_tag = msg.from_hdr().and_then(|f| f.tag()).unwrap_or("");
            // the dialog is proven by the focus's own tag *and* the participant's flow
            let (their_tag, their_ip, pid) = match dref {
                DialogRef::Participant(id) => match conf.participant(id) {
                    Some(p) => (p.dialog.their_tag.clone(), p.dialog.dest.addr.ip(), id),
                    None => return Verdict::reply(481, "Call/Transaction Does Not Exist"),
                },
                DialogRef::Subscription(sid) => match conf.subs.iter().find(|s| s.id == sid) {
                    Some(s) => (
                        s.dialog.their_tag.clone(),
                        s.dialog.dest.addr.ip(),
                        s.participant,
                    ),
                    None => return Verdict::reply(481, "Call/Transaction Does Not Exist"),
                },
            };
            if their_tag != from_tag || their_ip != src.remote.ip() {
                tracing::info!(src = %src.remote, "in-dialog request to the focus from outside the dialog");
                return Verdict::reply(481, "Call/Transaction Does Not Exist");
            }
            match (msg.method(), dref) {
                (Some(Method::Bye), DialogRef::Participant(id)) => {
                    tracing::info!(meeting = %conf_key, participant = id, "left");
                    self.remove_participant(&mut st, &conf_key, id, false, now, &mut sends);
                    Verdict::Reply(200, None)
                }
                (Some(Method::Invite), DialogRef::Participant(id)) => {
                    self.reinvite(&mut st, &conf_key, id, msg, tag, src, now, &mut sends)
                }
                (Some(Method::Subscribe), DialogRef::Subscription(sid)) => {
                    self.resubscribe(&mut st, &conf_key, sid, msg, tag, src, now, &mut sends)
                }
                (Some(Method::Message), _) => {
                    drop(st);
                    return self.conference_im_from(shard, msg, &conf_key, pid, out);
                }
                (Some(Method::Refer), _) => {
                    drop(st);
                    return self.refer_from(shard, msg, &conf_key, pid, tag, src, now, out);
                }
                // a key by SIP INFO (application/dtmf-relay or application/dtmf)
                (Some(Method::Info), DialogRef::Participant(id)) => {
                    let ct = msg
                        .header(&HeaderName::ContentType)
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                    match attendant::info_digit(&ct, &msg.body) {
                        Some(key) => {
                            self.on_key(&mut st, &conf_key, id, key, now, &mut sends);
                            Verdict::Reply(200, None)
                        }
                        None if msg.body.is_empty() => Verdict::Reply(200, None),
                        None if ct.to_ascii_lowercase().starts_with("application/dtmf") => {
                            Verdict::reply(400, "Unreadable DTMF signal")
                        }
                        None => Verdict::Reply(200, None),
                    }
                }
                (Some(Method::Info | Method::Options | Method::Update), _) => {
                    Verdict::Reply(200, None)
                }
                (Some(Method::Notify), _) => Verdict::reply(481, "No subscription of the focus"),
                _ => {
                    let mut r = self.error_response(msg, 405, "Method Not Allowed");
                    r.headers.push(HeaderName::Allow, ALLOW);
                    Verdict::Respond(Box::new(r))
                }
            }
        };
        let verdict = match verdict {
            // answers inside the dialog carry the focus's tag (already in the To)
            Verdict::Reply(s, r) => {
                let mut resp = response_to(msg, s, r.as_deref(), None);
                resp.headers.push(HeaderName::Server, SERVER_NAME);
                self.respond(shard, key, resp, now, out);
                Verdict::Done
            }
            v => v,
        };
        // requests of the focus (NOTIFY, BYE) go out after the answer
        self.flush_locked(shard, sends, out);
        verdict
    }

    #[allow(clippy::too_many_arguments)]
    fn reinvite(
        &self,
        st: &mut State,
        conf_key: &str,
        id: u32,
        msg: &Message,
        tag: &str,
        src: &Source,
        now: Instant,
        sends: &mut Sends,
    ) -> Verdict {
        let media = self.focus.media.as_ref().expect("a leg exists");
        let Some(conf) = st.confs.get_mut(conf_key) else {
            return Verdict::reply(481, "Call/Transaction Does Not Exist");
        };
        let conf_uri = conf.uri.clone();
        let Some(p) = conf.participant_mut(id) else {
            return Verdict::reply(481, "Call/Transaction Does Not Exist");
        };
        let Some(leg) = p.leg else {
            return Verdict::reply(488, "No media");
        };
        let offer = String::from_utf8_lossy(&msg.body);
        let answer = match media.update_leg(leg, &offer) {
            Ok(a) => a,
            Err(e) => {
                let (s, r) = media_status(&e);
                return Verdict::Reply(s, Some(r));
            }
        };
        // a new remote target (RFC 3261 §12.2.2)
        if let Some(c) = msg
            .header(&HeaderName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
        {
            p.dialog.target = c.uri_str.to_string();
        }
        let hold = sdp_holds(&msg.body);
        let changed = hold != p.on_hold;
        p.on_hold = hold;
        if !p.lobby {
            media.set_mode(leg, leg_mode(p));
        }
        let mut resp = self.focus_response(msg, 200, None, tag, &conf_uri, src);
        resp.headers.remove_all(&HeaderName::To);
        resp.headers.push(
            HeaderName::To,
            msg.header(&HeaderName::To)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        );
        resp.set_body("application/sdp", Bytes::from(answer));
        if let Some(r) = self.retransmit_2xx(&resp, msg, src, now) {
            p.unacked = Some(r);
        }
        let lobby = p.lobby;
        if changed && !lobby {
            self.roster_changed(st, conf_key, &[id], &[], now, sends);
        }
        Verdict::Respond(Box::new(resp))
    }

    /// Takes a participant out: its leg closed, its subscriptions ended, the roster told;
    /// `hang_up` sends the BYE (the focus ends the call; otherwise the participant did).
    fn remove_participant(
        &self,
        st: &mut State,
        conf_key: &str,
        id: u32,
        hang_up: bool,
        now: Instant,
        sends: &mut Sends,
    ) {
        let Some(c) = st.confs.get_mut(conf_key) else {
            return;
        };
        let Some(i) = c.participants.iter().position(|p| p.id == id) else {
            return;
        };
        self.focus.changed(conf_key);
        let mut p = c.participants.remove(i);
        let gone = (!p.lobby).then(|| (p.user.clone(), c.endpoint(&p)));
        if gone.is_some() && c.participants.iter().any(|o| !o.lobby) {
            self.announce(c, &p, false);
        }
        if let Some(leg) = p.leg.take() {
            sends.close_legs.push(leg);
        }
        if hang_up {
            if let Some(req) = p.dialog.request(self, Method::Bye) {
                sends.requests.push((req, p.dialog.dest));
            }
        }
        st.dialogs
            .remove(&(p.dialog.call_id.clone(), p.dialog.our_tag.clone()));
        let subs: Vec<u32> = c
            .subs
            .iter()
            .filter(|s| s.participant == id)
            .map(|s| s.id)
            .collect();
        for sid in subs {
            self.end_subscription(st, conf_key, sid, "deactivated", now, sends);
        }
        let empty = st
            .confs
            .get(conf_key)
            .is_none_or(|c| c.participants.is_empty());
        if empty {
            if let Some(c) = st.confs.remove(conf_key) {
                if c.key != dialin::ATTENDANT {
                    tracing::info!(meeting = %c.key, "meeting ended (nobody left)");
                    if self.pool.is_some() {
                        self.submit_internal(crate::effects::Effect::MeetingEnded {
                            key: c.key.clone(),
                        });
                    }
                }
                for s in c.subs {
                    st.dialogs.remove(&(s.dialog.call_id, s.dialog.our_tag));
                }
            }
        } else if let Some(g) = gone {
            self.roster_changed(st, conf_key, &[], &[g], now, sends);
        }
    }

    /// Sends what was decided under the focus lock, while a shard is locked (a service of
    /// the pipeline): the focus's own requests wait until the shard is released (they may
    /// belong to the same shard).
    fn flush_locked(&self, shard: &mut Shard, sends: Sends, out: &mut Vec<Outgoing>) {
        if let Some(media) = &self.focus.media {
            for leg in sends.close_legs {
                media.close_leg(leg);
            }
        }
        for (dest, bytes) in sends.raw {
            self.send(dest, bytes, None, out);
        }
        for (req, dest) in sends.requests {
            shard
                .jobs
                .push(crate::core::Job::SendOwn(Box::new(req), dest));
        }
    }

    /// Sends what was decided under the focus lock (no shard locked).
    fn flush(&self, sends: Sends, now: Instant, out: &mut Vec<Outgoing>) {
        if let Some(media) = &self.focus.media {
            for leg in sends.close_legs {
                media.close_leg(leg);
            }
        }
        for (dest, bytes) in sends.raw {
            self.send(dest, bytes, None, out);
        }
        for (req, dest) in sends.requests {
            self.send_own_request(req, dest, None, now, out);
        }
    }

    /// The focus's timers: 2xx retransmission, the lobby timeout, subscription expiry.
    pub(crate) fn focus_tick(&self, now: Instant, out: &mut Vec<Outgoing>) {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            if st.confs.is_empty() && st.dial_outs.is_empty() {
                return;
            }
            let mut remove = vec![];
            let mut expired_subs = vec![];
            let t2 = self.timers.t2;
            for (k, c) in st.confs.iter_mut() {
                for p in &mut c.participants {
                    if let Some(u) = &mut p.unacked {
                        if now >= u.give_up {
                            tracing::info!(meeting = %k, participant = p.id, "no ACK for the 2xx: hanging up");
                            remove.push((k.clone(), p.id));
                            continue;
                        }
                        if now >= u.next {
                            sends.raw.push((p.dialog.dest, u.bytes.clone()));
                            u.interval = (u.interval * 2).min(t2);
                            u.next = now + u.interval;
                        }
                    }
                    if p.lobby
                        && now.saturating_duration_since(p.joined) >= self.focus.lobby_timeout
                    {
                        tracing::info!(meeting = %k, participant = p.id, "nobody admitted the caller: lobby timeout");
                        remove.push((k.clone(), p.id));
                    }
                }
                for s in &c.subs {
                    if now >= s.expires {
                        expired_subs.push((k.clone(), s.id));
                    }
                }
            }
            for (k, id) in remove {
                self.remove_participant(&mut st, &k, id, true, now, &mut sends);
            }
            self.attendant_tick(&mut st, now, &mut sends);
            self.dial_out_tick(&mut st, now, &mut sends);
            for (k, sid) in expired_subs {
                self.end_subscription(&mut st, &k, sid, "timeout", now, &mut sends);
            }
        }
        self.flush(sends, now, out);
    }

    /// What the media plane reports: a participant gone silent is hung up.
    pub fn on_media_event(&self, ev: MediaEvent, now: Instant, out: &mut Vec<Outgoing>) {
        match ev {
            MediaEvent::Timeout { leg } => {
                let mut sends = Sends::default();
                {
                    let mut st = self.focus.state.lock();
                    if let Some((k, id)) = st.leg_owner(leg) {
                        tracing::info!(meeting = %k, participant = id, "no RTP or RTCP: hanging up");
                        self.remove_participant(&mut st, &k, id, true, now, &mut sends);
                    }
                }
                self.flush(sends, now, out);
            }
            ev @ (MediaEvent::Dtmf { .. }
            | MediaEvent::PromptDone { .. }
            | MediaEvent::Recorded { .. }) => self.dial_in_media_event(ev, now, out),
        }
    }

    /// Hangs up every participant (server shutdown).
    pub fn focus_end_all(&self, now: Instant, out: &mut Vec<Outgoing>) {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            let all: Vec<(String, u32)> = st
                .confs
                .iter()
                .flat_map(|(k, c)| c.participants.iter().map(|p| (k.clone(), p.id)))
                .collect();
            for (k, id) in all {
                self.remove_participant(&mut st, &k, id, true, now, &mut sends);
            }
        }
        self.flush(sends, now, out);
    }
}

fn leg_mode(p: &Participant) -> LegMode {
    if p.lobby {
        LegMode::Lobby
    } else if p.on_hold {
        LegMode::Held
    } else if p.muted {
        LegMode::Muted
    } else {
        LegMode::Active
    }
}

/// The participant a request out of the participant's dialogs comes from: the proven user
/// (enterprise or federated), or for an anonymous caller the flow its INVITE came on.
fn participant_of(c: &Conf, caller: &Caller, src: &Source) -> Option<u32> {
    let by_key = match caller {
        Caller::Enterprise(k) | Caller::Federated(k) => c
            .participants
            .iter()
            .find(|p| !p.lobby && p.key.as_deref() == Some(k.as_str())),
        Caller::Anonymous => None,
    };
    by_key
        .or_else(|| {
            c.participants
                .iter()
                .find(|p| !p.lobby && p.key.is_none() && p.dialog.dest.addr == src.remote)
        })
        .map(|p| p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_uris_are_recognised_and_others_are_not() {
        let u =
            Uri::parse("sip:Alice@example.test;gruu;opaque=app:conf:focus:id:AB12CD34").unwrap();
        assert_eq!(
            conference_of(&u, "example.test"),
            Some(ConfAddr {
                organizer: "alice@example.test".into(),
                key: "AB12CD34".into()
            })
        );
        // conference URIs whose key cannot be one: no meeting (404), not the organizer
        for bad in [
            "sip:alice@example.test;opaque=app:conf:focus:id:",
            "sip:alice@example.test;opaque=app:conf:focus:id:a%20b",
            "sip:alice@example.test;opaque=app:conf:chat:id:AB12",
            "sip:example.test;opaque=app:conf:focus:id:AB12",
        ] {
            let u = Uri::parse(bad).unwrap();
            let c = conference_of(&u, "example.test").expect(bad);
            assert!(
                c.key.is_empty() || c.organizer.starts_with('@'),
                "{bad}: {c:?}"
            );
        }
        // not conference URIs at all
        for other in [
            "sip:alice@example.test",
            "sip:alice@example.test;opaque=user:epid:x",
        ] {
            let u = Uri::parse(other).unwrap();
            assert_eq!(conference_of(&u, "example.test"), None, "{other}");
        }
    }

    #[test]
    fn hold_is_read_from_the_offer() {
        let sdp = |c: &str, a: &str| {
            format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n{a}")
        };
        assert!(sdp_holds(sdp("127.0.0.1", "a=sendonly\r\n").as_bytes()));
        assert!(sdp_holds(sdp("127.0.0.1", "a=inactive\r\n").as_bytes()));
        assert!(sdp_holds(sdp("0.0.0.0", "").as_bytes()));
        assert!(!sdp_holds(sdp("127.0.0.1", "a=sendrecv\r\n").as_bytes()));
        assert!(!sdp_holds(sdp("127.0.0.1", "a=recvonly\r\n").as_bytes()));
    }
}
