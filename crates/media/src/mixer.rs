//! The mixer, with no I/O: a [`Room`] of legs, one [`Room::tick`] per 20 ms.
//!
//! Each tick takes one frame per leg from its jitter buffer, decodes the heard legs to
//! linear PCM at the mixing rate, finds the talkers (frame energy above a threshold, with
//! a short hangover), sums the talkers with saturation, and sends each talker the sum
//! minus its own voice, encoded in its own codec with its own encoder, and every other
//! listener the full sum, encoded ONCE per codec for the whole room (Asterisk softmix's
//! design: the cost grows with the talkers, not the participants).
//!
//! Modes: `Active` is heard and hears; `Muted` hears but is not heard; `Lobby` hears only
//! the lobby tone (a soft 425 Hz beep, half a second every two seconds) and is not heard;
//! `Held` neither hears nor is heard and is sent nothing. RFC 4733 events are reported by
//! [`Room::push_rtp`] and never mixed or relayed.
//!
//! Dial-in additions: each leg has a bounded queue of prompts ([`Room::play`]) that it
//! hears instead of the lobby tone, or over its mix (with an encode of its own that tick);
//! a room has a bounded queue of announcements ([`Room::announce`]) added into what every
//! `Active`/`Muted` leg hears; a leg's decoded audio can be recorded ([`Room::record`])
//! whatever its mode; and a leg can be taken out of one room and put into another with all
//! its state ([`Room::detach`], [`Room::attach`]). Ends of prompts and recordings are
//! collected with [`Room::take_events`].

use crate::clip::Clip;
use crate::codec::{Codec, CodecError, Decoder, Encoder, FRAME, MAX_ENCODED, MIX_RATE};
use crate::dtmf::DtmfDetector;
use crate::jitter::{JitterBuffer, Playout};
use crate::rtp::{self, Rtp, HEADER_LEN};
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

/// A conference's media room (chosen by the caller, e.g. the meeting's row id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

/// One participant's media leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// What a leg hears and whether it is heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegMode {
    /// Heard and hears.
    Active,
    /// Hears, not heard.
    Muted,
    /// Hears only the lobby tone; not heard.
    Lobby,
    /// Neither (on hold): nothing is sent to it.
    Held,
}

/// Mean square energy (per sample, at the mixing rate) above which a frame is speech:
/// an RMS of 300, about -41 dBFS.
pub const TALK_THRESHOLD: i64 = 300 * 300;
/// Ticks a talker stays a talker after its energy drops (200 ms): no flapping between
/// its own encoder and the shared one within a word.
pub const HANGOVER: u8 = 10;
/// Lobby tone: frequency, amplitude and pattern (ticks on, ticks per period).
pub const LOBBY_HZ: u32 = 425;
const LOBBY_AMPLITUDE: f64 = 2500.0;
const LOBBY_ON_TICKS: u32 = 25;
const LOBBY_PERIOD_TICKS: u32 = 100;
/// 17 periods of 425 Hz fit exactly in 640 samples at 16 kHz.
const LOBBY_TABLE: usize = 640;
/// Prompts queued per leg (more are refused).
pub const MAX_PROMPTS: usize = 32;
/// Announcements queued per room (more are refused).
pub const MAX_ANNOUNCEMENTS: usize = 8;
/// The longest recording, in samples at the mixing rate (10 s).
pub const MAX_RECORDING: usize = 10 * MIX_RATE as usize;

fn lobby_table() -> &'static [i16; LOBBY_TABLE] {
    static T: OnceLock<[i16; LOBBY_TABLE]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0i16; LOBBY_TABLE];
        for (i, v) in t.iter_mut().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * LOBBY_HZ as f64 * i as f64 / MIX_RATE as f64;
            *v = (ph.sin() * LOBBY_AMPLITUDE) as i16;
        }
        t
    })
}

/// A leg's negotiated parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegConfig {
    pub codec: Codec,
    /// The payload type we send and accept for audio.
    pub pt: u8,
    /// The telephone-event payload type, if negotiated.
    pub dtmf_pt: Option<u8>,
    /// Our SSRC for what we send it.
    pub ssrc: u32,
    pub mode: LegMode,
    /// The SDP lets us send to it (not sendonly/inactive/c=0.0.0.0 on its side).
    pub send: bool,
    /// The SDP says it sends to us.
    pub hear: bool,
}

/// A leg's decoder and encoder, made for its codec.
pub struct CodecState {
    pub dec: Decoder,
    pub enc: Encoder,
}

impl CodecState {
    pub fn new(codec: Codec) -> Result<CodecState, CodecError> {
        Ok(CodecState {
            dec: Decoder::new(codec)?,
            enc: Encoder::new(codec)?,
        })
    }
}

/// What one received RTP packet was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Audio,
    /// A key press completed (once per press).
    Dtmf(char),
    /// Part of a telephone-event that reports nothing (yet).
    Event,
    /// A payload type that was not negotiated: dropped.
    UnknownPt,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub tx_octets: u64,
    pub unknown_pt: u64,
}

/// A queue of clips played one after the other, without a gap between them: each with how
/// far it has played and its caller's tag.
type ClipQueue = VecDeque<(Arc<Clip>, usize, u32)>;

/// Fills `out` from the front of `q`, popping the clips it finishes; the rest of `out`
/// (once the queue is empty) is silence. When it emptied the queue: the last clip's tag.
fn fill_from(q: &mut ClipQueue, out: &mut [i16; FRAME]) -> Option<u32> {
    let mut last = None;
    let mut n = 0;
    while n < FRAME {
        let Some((clip, pos, tag)) = q.front_mut() else {
            break;
        };
        let pcm = clip.pcm();
        let take = pcm.len().saturating_sub(*pos).min(FRAME - n);
        out[n..n + take].copy_from_slice(&pcm[*pos..*pos + take]);
        *pos += take;
        n += take;
        if *pos >= pcm.len() {
            last = Some(*tag);
            q.pop_front();
        }
    }
    out[n..].fill(0);
    last.filter(|_| q.is_empty())
}

/// A recording in progress: its buffer's capacity is reserved when it starts.
struct Recording {
    buf: Vec<i16>,
    max: usize,
}

impl Recording {
    fn finish(self) -> Arc<Clip> {
        Arc::new(Clip::from_pcm16k(self.buf))
    }
}

/// What a leg's prompts and recording report (see [`Room::take_events`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomEvent {
    /// Everything queued for the leg with [`Room::play`] has been played (or stopped): the
    /// tag of the last clip.
    PromptDone(LegId, u32),
    /// A recording reached its maximum.
    Recorded(LegId, Arc<Clip>),
}

/// A leg taken out of a room with all its state (codec state, jitter buffer, sequence
/// number and timestamp, counters, queued prompts, a recording in progress), to be put
/// into another room with [`Room::attach`].
pub struct DetachedLeg(MixLeg);

impl DetachedLeg {
    pub fn id(&self) -> LegId {
        self.0.id
    }
}

struct MixLeg {
    id: LegId,
    cfg: LegConfig,
    seq: u16,
    ts: u32,
    marker: bool,
    jitter: JitterBuffer,
    dtmf: DtmfDetector,
    dec: Decoder,
    enc: Encoder,
    pcm: [i16; FRAME],
    hang: u8,
    talker: bool,
    counters: LegCounters,
    prompts: ClipQueue,
    recording: Option<Recording>,
    /// Events raised in a tick, collected by `take_events`: the queue emptied (its last
    /// clip's tag), a recording ended.
    prompt_done: Option<u32>,
    recorded: Option<Arc<Clip>>,
}

/// One codec's shared frame for this tick.
struct Shared {
    enc: Option<Encoder>,
    valid: bool,
    len: usize,
    buf: [u8; MAX_ENCODED],
}

impl Shared {
    fn new() -> Shared {
        Shared {
            enc: None,
            valid: false,
            len: 0,
            buf: [0; MAX_ENCODED],
        }
    }

    fn get(&mut self, codec: Codec, pcm: &[i16; FRAME], encodes: &mut u64) -> &[u8] {
        if !self.valid {
            // Created on first use (an allocation once per room and codec, not per tick).
            let enc = match &mut self.enc {
                Some(e) => e,
                None => match Encoder::new(codec) {
                    Ok(e) => self.enc.insert(e),
                    Err(_) => return &[],
                },
            };
            self.len = enc.encode(pcm, &mut self.buf);
            self.valid = true;
            *encodes += 1;
        }
        &self.buf[..self.len]
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomStats {
    pub ticks: u64,
    /// Frames encoded (own and shared): the cost driver.
    pub encodes: u64,
    pub decodes: u64,
    /// Talkers in the last tick.
    pub talkers: usize,
    pub packets_out: u64,
    /// Ticks in which a leg heard a prompt, and in which the room heard an announcement.
    pub prompt_frames: u64,
    pub announcement_frames: u64,
}

pub struct Room {
    legs: Vec<MixLeg>,
    sum: [i32; FRAME],
    mix: [i16; FRAME],
    own: [i16; FRAME],
    lobby_pcm: [i16; FRAME],
    shared: [Shared; 3],
    lobby: [Shared; 3],
    lobby_tick: u32,
    own_buf: [u8; MAX_ENCODED],
    packet: [u8; HEADER_LEN + MAX_ENCODED],
    prompt_pcm: [i16; FRAME],
    announcements: ClipQueue,
    announce_pcm: [i16; FRAME],
    /// A leg has an event for `take_events`.
    events: bool,
    pub stats: RoomStats,
}

impl Default for Room {
    fn default() -> Self {
        Self::new()
    }
}

impl Room {
    pub fn new() -> Room {
        Room {
            legs: Vec::new(),
            sum: [0; FRAME],
            mix: [0; FRAME],
            own: [0; FRAME],
            lobby_pcm: [0; FRAME],
            shared: [Shared::new(), Shared::new(), Shared::new()],
            lobby: [Shared::new(), Shared::new(), Shared::new()],
            lobby_tick: 0,
            own_buf: [0; MAX_ENCODED],
            packet: [0; HEADER_LEN + MAX_ENCODED],
            prompt_pcm: [0; FRAME],
            announcements: VecDeque::with_capacity(MAX_ANNOUNCEMENTS),
            announce_pcm: [0; FRAME],
            events: false,
            stats: RoomStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// The index of a leg (indices change when a leg is removed: `swap_remove`).
    pub fn index_of(&self, id: LegId) -> Option<usize> {
        self.legs.iter().position(|l| l.id == id)
    }

    pub fn leg_id(&self, idx: usize) -> LegId {
        self.legs[idx].id
    }

    /// Adds a leg; returns its index (the last).
    pub fn add_leg(&mut self, id: LegId, cfg: LegConfig) -> Result<usize, CodecError> {
        let state = CodecState::new(cfg.codec)?;
        Ok(self.add_prepared(id, cfg, state))
    }

    /// Adds a leg whose codec state was made elsewhere (the engine makes it on the
    /// caller's thread, keeping libopus's set-up off the mixing thread).
    pub fn add_prepared(&mut self, id: LegId, cfg: LegConfig, state: CodecState) -> usize {
        let leg = MixLeg {
            id,
            cfg,
            seq: (cfg.ssrc >> 7) as u16,
            ts: cfg.ssrc.rotate_left(13),
            marker: true,
            jitter: JitterBuffer::new(cfg.codec.ts_per_frame()),
            dtmf: DtmfDetector::default(),
            dec: state.dec,
            enc: state.enc,
            pcm: [0; FRAME],
            hang: 0,
            talker: false,
            counters: LegCounters::default(),
            prompts: VecDeque::with_capacity(MAX_PROMPTS),
            recording: None,
            prompt_done: None,
            recorded: None,
        };
        self.legs.push(leg);
        self.legs.len() - 1
    }

    /// Removes a leg by `swap_remove` (the last leg takes its index). Its prompts and
    /// recording are dropped without an event.
    pub fn remove_leg(&mut self, idx: usize) -> LegId {
        self.legs.swap_remove(idx).id
    }

    /// Takes a leg out (by `swap_remove`) with all its state, for another room. Events it
    /// raised and nobody collected yet go with it.
    pub fn detach(&mut self, idx: usize) -> DetachedLeg {
        DetachedLeg(self.legs.swap_remove(idx))
    }

    /// Puts a detached leg in this room in `mode`; returns its index (the last). Its
    /// sequence numbers go on where they were; `skipped` ticks that passed while it was
    /// in no room advance its timestamp (as on hold).
    pub fn attach(&mut self, leg: DetachedLeg, mode: LegMode, skipped: u32) -> usize {
        let mut leg = leg.0;
        leg.cfg.mode = mode;
        leg.talker = false;
        leg.hang = 0;
        leg.ts = leg
            .ts
            .wrapping_add(leg.cfg.codec.ts_per_frame().wrapping_mul(skipped));
        if leg.prompt_done.is_some() || leg.recorded.is_some() {
            self.events = true;
        }
        self.legs.push(leg);
        self.legs.len() - 1
    }

    /// Advances a leg's timestamp by `ticks` it was not ticked (a hand-over between
    /// threads that took longer than a tick).
    pub fn skip_ticks(&mut self, idx: usize, ticks: u32) {
        let leg = &mut self.legs[idx];
        leg.ts = leg
            .ts
            .wrapping_add(leg.cfg.codec.ts_per_frame().wrapping_mul(ticks));
    }

    /// Queues a clip for the leg to hear; false (the clip is dropped) when
    /// [`MAX_PROMPTS`] are already queued.
    pub fn play(&mut self, idx: usize, clip: Arc<Clip>) -> bool {
        self.play_tagged(idx, clip, 0)
    }

    /// [`Room::play`] with a tag, reported with the end of the queue when this clip is
    /// the last: a caller that stops prompts tells their end from a later one's.
    pub fn play_tagged(&mut self, idx: usize, clip: Arc<Clip>, tag: u32) -> bool {
        let q = &mut self.legs[idx].prompts;
        if q.len() >= MAX_PROMPTS {
            return false;
        }
        q.push_back((clip, 0, tag));
        true
    }

    /// Drops the leg's queued prompts; the last one's tag if there were any (the caller
    /// reports the end of the prompts then).
    pub fn stop_playing(&mut self, idx: usize) -> Option<u32> {
        let leg = &mut self.legs[idx];
        let last = leg.prompts.back().map(|p| p.2);
        leg.prompts.clear();
        last
    }

    /// Prompts queued for the leg (the one playing included).
    pub fn prompts_queued(&self, idx: usize) -> usize {
        self.legs[idx].prompts.len()
    }

    /// Queues a clip that every `Active`/`Muted` leg hears, mixed into the room; false
    /// (dropped) when [`MAX_ANNOUNCEMENTS`] are already queued.
    pub fn announce(&mut self, clip: Arc<Clip>) -> bool {
        if self.announcements.len() >= MAX_ANNOUNCEMENTS {
            return false;
        }
        self.announcements.push_back((clip, 0, 0));
        true
    }

    /// Starts recording the leg's decoded audio (every tick, in any mode: silence while
    /// it sends nothing) into `buf` (cleared; its capacity should hold `max` samples,
    /// so that recording does not allocate) until `max` samples ([`MAX_RECORDING`] at
    /// most) are recorded, then [`RoomEvent::Recorded`]. A recording already running is
    /// ended and returned.
    pub fn record(&mut self, idx: usize, mut buf: Vec<i16>, max: usize) -> Option<Arc<Clip>> {
        buf.clear();
        let rec = Recording {
            buf,
            max: max.min(MAX_RECORDING),
        };
        let old = self.legs[idx].recording.replace(rec);
        old.map(Recording::finish)
    }

    /// Ends the leg's recording early, returning what it holds (None if it was not
    /// recording).
    pub fn stop_recording(&mut self, idx: usize) -> Option<Arc<Clip>> {
        self.legs[idx].recording.take().map(Recording::finish)
    }

    pub fn is_recording(&self, idx: usize) -> bool {
        self.legs[idx].recording.is_some()
    }

    /// Calls `f` with each event the last ticks raised (prompts finished, recordings
    /// full), once.
    pub fn take_events(&mut self, mut f: impl FnMut(RoomEvent)) {
        if !self.events {
            return;
        }
        self.events = false;
        for leg in &mut self.legs {
            if let Some(tag) = leg.prompt_done.take() {
                f(RoomEvent::PromptDone(leg.id, tag));
            }
            if let Some(clip) = leg.recorded.take() {
                f(RoomEvent::Recorded(leg.id, clip));
            }
        }
    }

    pub fn set_mode(&mut self, idx: usize, mode: LegMode) {
        let leg = &mut self.legs[idx];
        leg.cfg.mode = mode;
        if mode != LegMode::Active {
            leg.talker = false;
            leg.hang = 0;
        }
    }

    pub fn mode(&self, idx: usize) -> LegMode {
        self.legs[idx].cfg.mode
    }

    /// New negotiated parameters (a re-INVITE); a codec change needs the new codec's
    /// state (`state`), else the leg keeps its own. The leg keeps its SSRC and its mode.
    pub fn update_leg(&mut self, idx: usize, cfg: LegConfig, state: Option<CodecState>) {
        let leg = &mut self.legs[idx];
        if let Some(st) = state {
            leg.dec = st.dec;
            leg.enc = st.enc;
            leg.jitter.set_ts_per_frame(cfg.codec.ts_per_frame());
        } else if cfg.codec != leg.cfg.codec {
            return;
        }
        leg.cfg = LegConfig {
            ssrc: leg.cfg.ssrc,
            mode: leg.cfg.mode,
            ..cfg
        };
        leg.marker = true;
    }

    pub fn codec(&self, idx: usize) -> Codec {
        self.legs[idx].cfg.codec
    }

    pub fn counters(&self, idx: usize) -> LegCounters {
        self.legs[idx].counters
    }

    /// (our SSRC, current RTP timestamp, packets sent, octets sent) for an RTCP SR.
    pub fn sender_info(&self, idx: usize) -> (u32, u32, u32, u32) {
        let l = &self.legs[idx];
        (
            l.cfg.ssrc,
            l.ts,
            l.counters.tx_packets as u32,
            l.counters.tx_octets as u32,
        )
    }

    pub fn is_talker(&self, idx: usize) -> bool {
        self.legs[idx].talker
    }

    /// Takes a received (already source-checked) RTP packet for leg `idx`.
    pub fn push_rtp(&mut self, idx: usize, p: &Rtp<'_>) -> Pushed {
        let leg = &mut self.legs[idx];
        if p.pt == leg.cfg.pt {
            leg.counters.rx_packets += 1;
            leg.jitter.push(p.seq, p.ts, p.ssrc, p.payload);
            Pushed::Audio
        } else if Some(p.pt) == leg.cfg.dtmf_pt {
            leg.counters.rx_packets += 1;
            match leg.dtmf.push(p.ts, p.payload) {
                Some(c) => Pushed::Dtmf(c),
                None => Pushed::Event,
            }
        } else {
            leg.counters.unknown_pt += 1;
            Pushed::UnknownPt
        }
    }

    /// One 20 ms tick: `out(idx, packet)` is called with each RTP packet to send.
    pub fn tick(&mut self, mut out: impl FnMut(usize, &[u8])) {
        self.stats.ticks += 1;
        // 1. One frame per leg; decode the heard ones and find the talkers.
        let mut talkers = 0;
        self.sum.fill(0);
        for leg in &mut self.legs {
            let heard = leg.cfg.mode == LegMode::Active && leg.cfg.hear;
            let MixLeg {
                jitter,
                dec,
                pcm,
                recording,
                ..
            } = leg;
            // A recorded leg is decoded whatever its mode.
            let decode = heard || recording.is_some();
            let got = match jitter.pop() {
                Playout::Frame(payload) if decode => {
                    dec.decode(payload, pcm);
                    true
                }
                Playout::Lost if decode => {
                    dec.conceal(pcm);
                    true
                }
                _ => false,
            };
            if got {
                self.stats.decodes += 1;
            }
            if let Some(rec) = recording {
                let n = (rec.max - rec.buf.len()).min(FRAME);
                if got {
                    rec.buf.extend_from_slice(&pcm[..n]);
                } else {
                    rec.buf.resize(rec.buf.len() + n, 0);
                }
                if rec.buf.len() >= rec.max {
                    if let Some(rec) = recording.take() {
                        leg.recorded = Some(rec.finish());
                        self.events = true;
                    }
                }
            }
            let got = got && heard;
            if got {
                let e: i64 = leg
                    .pcm
                    .iter()
                    .map(|&s| (s as i32 * s as i32) as i64)
                    .sum::<i64>()
                    / FRAME as i64;
                if e > TALK_THRESHOLD {
                    leg.hang = HANGOVER;
                } else {
                    leg.hang = leg.hang.saturating_sub(1);
                }
            } else {
                leg.hang = 0;
            }
            leg.talker = leg.hang > 0;
            if leg.talker {
                talkers += 1;
                for (s, &v) in self.sum.iter_mut().zip(leg.pcm.iter()) {
                    *s += v as i32;
                }
            }
        }
        self.stats.talkers = talkers;
        // An announcement is part of what every Active/Muted leg hears (talkers' mix
        // minus themselves included).
        if !self.announcements.is_empty() {
            fill_from(&mut self.announcements, &mut self.announce_pcm);
            self.stats.announcement_frames += 1;
            for (s, &a) in self.sum.iter_mut().zip(self.announce_pcm.iter()) {
                *s += a as i32;
            }
        }
        for (m, &s) in self.mix.iter_mut().zip(self.sum.iter()) {
            *m = s.clamp(-32768, 32767) as i16;
        }
        for s in &mut self.shared {
            s.valid = false;
        }
        for s in &mut self.lobby {
            s.valid = false;
        }
        // The lobby tone for this tick.
        let lobby_on = self.lobby_tick % LOBBY_PERIOD_TICKS < LOBBY_ON_TICKS;
        let any_lobby = self.legs.iter().any(|l| l.cfg.mode == LegMode::Lobby);
        if any_lobby {
            if lobby_on {
                let t = lobby_table();
                let pos = (self.lobby_tick % LOBBY_PERIOD_TICKS) as usize;
                let base = pos * FRAME;
                let total = LOBBY_ON_TICKS as usize * FRAME;
                for (i, v) in self.lobby_pcm.iter_mut().enumerate() {
                    let n = base + i;
                    // 10 ms raised ramps at both ends: a soft beep, no click.
                    let edge = n.min(total - 1 - n).min(160) as i32;
                    *v = (t[n % LOBBY_TABLE] as i32 * edge / 160) as i16;
                }
            } else {
                self.lobby_pcm.fill(0);
            }
        }
        self.lobby_tick = self.lobby_tick.wrapping_add(1);
        // 2. Encode and send.
        for (idx, leg) in self.legs.iter_mut().enumerate() {
            let step = leg.cfg.codec.ts_per_frame();
            // Prompts play out in time even when the leg is sent nothing (held), so
            // their end is always reported.
            let prompting = !leg.prompts.is_empty();
            if prompting {
                if let Some(tag) = fill_from(&mut leg.prompts, &mut self.prompt_pcm) {
                    leg.prompt_done = Some(tag);
                    self.events = true;
                }
                self.stats.prompt_frames += 1;
            }
            if !leg.cfg.send || leg.cfg.mode == LegMode::Held {
                leg.ts = leg.ts.wrapping_add(step);
                leg.marker = true;
                continue;
            }
            let c = leg.cfg.codec;
            let payload: &[u8] = if prompting {
                // Its own frame: the prompt alone (in the lobby, instead of the tone), or
                // over what it hears.
                if leg.cfg.mode == LegMode::Lobby {
                    self.own.copy_from_slice(&self.prompt_pcm);
                } else {
                    let talker = leg.talker;
                    for (((o, &s), &p), &q) in self
                        .own
                        .iter_mut()
                        .zip(self.sum.iter())
                        .zip(leg.pcm.iter())
                        .zip(self.prompt_pcm.iter())
                    {
                        let mine = if talker { p as i32 } else { 0 };
                        *o = (s - mine + q as i32).clamp(-32768, 32767) as i16;
                    }
                }
                let n = leg.enc.encode(&self.own, &mut self.own_buf);
                self.stats.encodes += 1;
                &self.own_buf[..n]
            } else if leg.cfg.mode == LegMode::Lobby {
                self.lobby[c.index()].get(c, &self.lobby_pcm, &mut self.stats.encodes)
            } else if leg.talker {
                for ((o, &s), &p) in self.own.iter_mut().zip(self.sum.iter()).zip(leg.pcm.iter()) {
                    *o = (s - p as i32).clamp(-32768, 32767) as i16;
                }
                let n = leg.enc.encode(&self.own, &mut self.own_buf);
                self.stats.encodes += 1;
                &self.own_buf[..n]
            } else {
                self.shared[c.index()].get(c, &self.mix, &mut self.stats.encodes)
            };
            if payload.is_empty() {
                leg.ts = leg.ts.wrapping_add(step);
                continue;
            }
            rtp::write_header(
                &mut self.packet,
                leg.marker,
                leg.cfg.pt,
                leg.seq,
                leg.ts,
                leg.cfg.ssrc,
            );
            let n = HEADER_LEN + payload.len();
            self.packet[HEADER_LEN..n].copy_from_slice(payload);
            leg.marker = false;
            leg.seq = leg.seq.wrapping_add(1);
            leg.ts = leg.ts.wrapping_add(step);
            leg.counters.tx_packets += 1;
            leg.counters.tx_octets += payload.len() as u64;
            self.stats.packets_out += 1;
            out(idx, &self.packet[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(codec: Codec, ssrc: u32) -> LegConfig {
        LegConfig {
            codec,
            pt: codec.static_pt().unwrap_or(111),
            dtmf_pt: Some(101),
            ssrc,
            mode: LegMode::Active,
            send: true,
            hear: true,
        }
    }

    #[test]
    fn outgoing_rtp_is_continuous_and_held_gets_nothing() {
        let mut room = Room::new();
        room.add_leg(LegId(1), cfg(Codec::Pcmu, 11)).unwrap();
        room.add_leg(LegId(2), cfg(Codec::Pcma, 22)).unwrap();
        let mut got: Vec<(usize, u16, u32, u32, bool, usize)> = Vec::new();
        for t in 0..6 {
            if t == 3 {
                room.set_mode(1, LegMode::Held);
            }
            if t == 5 {
                room.set_mode(1, LegMode::Active);
            }
            room.tick(|i, p| {
                let r = rtp::parse(p).unwrap();
                got.push((i, r.seq, r.ts, r.ssrc, r.marker, r.payload.len()));
            });
        }
        let a: Vec<_> = got.iter().filter(|g| g.0 == 0).collect();
        assert_eq!(a.len(), 6);
        for w in a.windows(2) {
            assert_eq!(w[1].1, w[0].1.wrapping_add(1));
            assert_eq!(w[1].2, w[0].2.wrapping_add(160));
        }
        assert!(a[0].4 && !a[1].4);
        let b: Vec<_> = got.iter().filter(|g| g.0 == 1).collect();
        assert_eq!(b.len(), 4); // ticks 0,1,2 and 5
        assert_eq!(b[3].2, b[2].2.wrapping_add(3 * 160)); // time went on while held
        assert_eq!(b[3].1, b[2].1.wrapping_add(1)); // sequence did not
        assert!(b[3].4); // marker after the gap
        assert!(b.iter().all(|g| g.3 == 22 && g.5 == 160));
    }

    #[test]
    fn dtmf_is_consumed_not_mixed() {
        let mut room = Room::new();
        room.add_leg(LegId(1), cfg(Codec::Pcmu, 11)).unwrap();
        let pkt = |end: bool| {
            let mut v = vec![0u8; 12];
            rtp::write_header(&mut v, false, 101, 1, 500, 9);
            v.extend_from_slice(&[5, if end { 0x80 } else { 0 }, 0, 160]);
            v
        };
        let a = pkt(false);
        let b = pkt(true);
        assert_eq!(room.push_rtp(0, &rtp::parse(&a).unwrap()), Pushed::Event);
        assert_eq!(
            room.push_rtp(0, &rtp::parse(&b).unwrap()),
            Pushed::Dtmf('5')
        );
        assert_eq!(room.push_rtp(0, &rtp::parse(&b).unwrap()), Pushed::Event);
        let mut v = vec![0u8; 12];
        rtp::write_header(&mut v, false, 96, 1, 500, 9);
        v.push(1);
        assert_eq!(
            room.push_rtp(0, &rtp::parse(&v).unwrap()),
            Pushed::UnknownPt
        );
        assert_eq!(room.counters(0).unknown_pt, 1);
    }
}
