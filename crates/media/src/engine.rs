//! The driver: rooms on a few dedicated OS threads (not the tokio runtime), each pacing
//! absolute 20 ms deadlines over non-blocking UDP sockets.
//!
//! The SIP side calls [`Engine`] from anywhere and never waits on the mixing threads: the
//! offer is negotiated and the leg's sockets are bound on the caller's thread, then the
//! leg is handed over on a bounded channel. Each room lives on one thread (the least
//! loaded when its first leg arrives). Every tick a thread receives everything pending on
//! its legs' sockets, checks each datagram's source, feeds the jitter buffers, mixes and
//! sends.
//!
//! Source rules: RTP and RTCP are taken only from the IP address the SDP named (the
//! port may be latched, symmetric RTP, from that same IP only); when a remote port range
//! is set (Lync's ClientMediaPortRangeEnabled with ClientAudioPort/ClientAudioPortRange)
//! a datagram from a source port outside it is dropped and counted, and an offer whose
//! port is outside it is refused. Oversized and malformed datagrams are dropped and
//! counted.
//!
//! Dial-in additions: prompts per leg and announcements per room (queued on the room's
//! thread), recording a leg's decoded audio, moving a leg to another room — on another
//! thread, the leg (sockets, codec state, jitter buffer, sequence and timestamp, counters,
//! queued prompts, a recording) is handed over on that thread's command queue, and the
//! target thread, told to expect it, keeps the commands that arrive for it meanwhile —
//! and dial-out legs (our offer first, the answer later).

use crate::clip::Clip;
use crate::codec::{Codec, MIX_RATE};
use crate::mixer::{CodecState, DetachedLeg, LegConfig, Pushed, Room, RoomEvent, MAX_RECORDING};
pub use crate::mixer::{LegId, LegMode, RoomId};
use crate::rtp::{self, MAX_PACKET};
use crate::sdp::{self, Negotiated, Offer, SdpError};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// The mixing period.
pub const TICK: Duration = Duration::from_millis(20);
/// Events kept for the focus before the oldest is dropped.
pub const EVENT_QUEUE: usize = 1024;
/// Commands queued per mixing thread.
const COMMAND_QUEUE: usize = 1024;
/// Datagrams read per socket per tick (a flood cannot starve the other legs).
const MAX_READS_PER_TICK: usize = 32;
/// Interval between our RTCP sender reports.
const SR_INTERVAL: Duration = Duration::from_secs(5);
/// Commands kept for a leg on its way from another thread (more are dropped).
const MAX_WAITING_COMMANDS: usize = 64;
/// A leg expected from another thread that has not come after this is given up.
const EXPECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The address we bind and put in SDP c=.
    pub bind_ip: IpAddr,
    /// Our RTP ports (even RTP, odd RTCP = RTP + 1).
    pub port_min: u16,
    pub port_max: u16,
    /// Mixing threads.
    pub threads: usize,
    /// A leg that sends neither RTP nor RTCP for this long is reported (default 30 s).
    pub rtp_timeout: Duration,
    /// Codec preference order (default Opus, PCMU, PCMA).
    pub codecs: Vec<Codec>,
    /// Most legs at once.
    pub max_legs: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            // Lync's A/V conferencing media ports.
            port_min: 49152,
            port_max: 57500,
            threads: thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
            rtp_timeout: Duration::from_secs(30),
            codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
            max_legs: 1000,
        }
    }
}

/// What the engine tells the focus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// An RFC 4733 key press (once per press).
    Dtmf { leg: LegId, digit: char },
    /// The leg sent neither RTP nor RTCP for `rtp_timeout` (reported once).
    Timeout { leg: LegId },
    /// Everything queued with [`Engine::play`] for the leg has been played (or stopped):
    /// `tag`, the last clip's ([`Engine::play_tagged`]; 0 by [`Engine::play`]).
    PromptDone { leg: LegId, tag: u32 },
    /// A recording started with [`Engine::record`] ended (its maximum reached, or
    /// [`Engine::stop_recording`]): the leg's decoded audio.
    Recorded { leg: LegId, clip: Arc<Clip> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// No codec of ours in the offer (→ 488).
    NoCommonCodec,
    /// The offer does not parse or names nothing usable (→ 488).
    BadSdp(String),
    /// The offer's RTP port is outside the clients' audio port range (→ 488).
    PortOutsideRange(u16),
    /// No free RTP/RTCP port pair in our range (→ 503).
    NoPorts,
    /// `max_legs` reached, or a mixing thread's command queue is full (→ 503).
    Full,
    /// The engine stopped, or the leg is not (or no longer) open.
    Closed,
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::NoCommonCodec => f.write_str("no common audio codec"),
            MediaError::BadSdp(m) => write!(f, "bad SDP: {m}"),
            MediaError::PortOutsideRange(p) => write!(
                f,
                "media port {p} is outside the allowed client audio port range"
            ),
            MediaError::NoPorts => f.write_str("no free media port"),
            MediaError::Full => f.write_str("media engine at capacity"),
            MediaError::Closed => f.write_str("media leg or engine closed"),
        }
    }
}

impl std::error::Error for MediaError {}

impl From<SdpError> for MediaError {
    fn from(e: SdpError) -> Self {
        match e {
            SdpError::Bad(m) => MediaError::BadSdp(m),
            SdpError::NoCommonCodec => MediaError::NoCommonCodec,
        }
    }
}

/// Counters, summed over the mixing threads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub legs: usize,
    pub rooms: usize,
    pub ticks: u64,
    /// Ticks that started more than 20 ms late or ran longer than 20 ms.
    pub late_ticks: u64,
    /// The longest tick's work, in microseconds.
    pub max_tick_us: u64,
    /// Total tick work, in microseconds (CPU per participant = this / ticks / legs).
    pub busy_us: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// All received datagrams not used (the sum of the four below and unknown PTs).
    pub dropped_packets: u64,
    pub dropped_wrong_source: u64,
    pub dropped_port_range: u64,
    pub dropped_malformed: u64,
    pub dropped_oversize: u64,
    /// Frames encoded (own and shared) and decoded.
    pub encodes: u64,
    pub decodes: u64,
    pub dtmf_events: u64,
    pub timeouts: u64,
    /// Events dropped because nobody read them.
    pub events_dropped: u64,
    /// Prompts and announcements refused because their queue was full (32 per leg, 8
    /// per room).
    pub prompts_dropped: u64,
    /// Legs moved to another room (`move_leg`), and of them to another thread.
    pub moves: u64,
    pub moves_between_threads: u64,
}

#[derive(Default)]
struct ThreadCounters {
    ticks: AtomicU64,
    late_ticks: AtomicU64,
    max_tick_us: AtomicU64,
    busy_us: AtomicU64,
    rx_packets: AtomicU64,
    tx_packets: AtomicU64,
    dropped_packets: AtomicU64,
    dropped_wrong_source: AtomicU64,
    dropped_port_range: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_oversize: AtomicU64,
    encodes: AtomicU64,
    decodes: AtomicU64,
    dtmf_events: AtomicU64,
    timeouts: AtomicU64,
    prompts_dropped: AtomicU64,
    moves: AtomicU64,
    moves_between_threads: AtomicU64,
}

/// What the API side and the threads share (the threads never hold the API side, so the
/// last `Engine` dropped closes the command channels and the threads end).
struct Shared {
    events: Mutex<VecDeque<MediaEvent>>,
    event_ready: Condvar,
    events_dropped: AtomicU64,
    threads: Vec<ThreadCounters>,
}

impl Shared {
    fn push_event(&self, ev: MediaEvent) {
        let mut q = lock(&self.events);
        if q.len() >= EVENT_QUEUE {
            q.pop_front();
            self.events_dropped.fetch_add(1, Relaxed);
        }
        q.push_back(ev);
        drop(q);
        self.event_ready.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct LegInfo {
    room: RoomId,
    thread: usize,
    port: u16,
    session_id: u64,
    version: u64,
    codec: Codec,
    /// A dial-out leg waiting for the answer to our offer.
    pending: bool,
    /// The remote is a client (the clients' port range applies), not a gateway.
    client: bool,
}

struct State {
    legs: HashMap<LegId, LegInfo>,
    /// Room → (thread, legs).
    rooms: HashMap<RoomId, (usize, usize)>,
    thread_legs: Vec<usize>,
    ports_used: HashSet<u16>,
    next_port: u16,
    next_leg: u64,
    remote_range: Option<RangeInclusive<u16>>,
}

struct Inner {
    cfg: EngineConfig,
    shared: Arc<Shared>,
    /// The threads hold these weakly (to hand legs to each other), so the last `Engine`
    /// dropped still closes the channels.
    txs: Arc<Vec<SyncSender<Cmd>>>,
    state: Mutex<State>,
}

/// The audio MCU. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Where a leg's remote is, as the SDP says.
#[derive(Clone, Copy, Debug)]
struct Remote {
    ip: IpAddr,
    rtp: SocketAddr,
    rtcp: SocketAddr,
    mux: bool,
    /// The remote says it sends (so silence counts toward the timeout).
    sends: bool,
    /// A client of ours: the clients' audio port range applies (not to a PSTN gateway).
    client: bool,
}

impl Remote {
    /// Nobody yet (a dial-out leg before the answer): nothing is taken, nothing sent.
    fn none(family_of: IpAddr) -> Remote {
        let ip = if family_of.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        };
        Remote {
            ip,
            rtp: SocketAddr::new(ip, 0),
            rtcp: SocketAddr::new(ip, 0),
            mux: false,
            sends: false,
            client: true,
        }
    }

    fn of(n: &Negotiated) -> Remote {
        Remote {
            ip: n.remote_ip,
            rtp: SocketAddr::new(n.remote_ip, n.remote_port),
            rtcp: SocketAddr::new(
                n.remote_ip,
                if n.rtcp_mux {
                    n.remote_port
                } else {
                    n.remote_rtcp_port
                },
            ),
            mux: n.rtcp_mux,
            sends: n.remote_sends(),
            client: true,
        }
    }

    fn for_client(mut self, client: bool) -> Remote {
        self.client = client;
        self
    }
}

enum Cmd {
    Add {
        room: RoomId,
        leg: LegId,
        cfg: LegConfig,
        state: Box<CodecState>,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        remote: Remote,
    },
    Update {
        leg: LegId,
        cfg: LegConfig,
        state: Option<Box<CodecState>>,
        remote: Remote,
    },
    Mode {
        leg: LegId,
        mode: LegMode,
    },
    Close {
        leg: LegId,
    },
    Range(Option<RangeInclusive<u16>>),
    Play {
        leg: LegId,
        clip: Arc<Clip>,
        tag: u32,
    },
    StopPlaying {
        leg: LegId,
    },
    Announce {
        room: RoomId,
        clip: Arc<Clip>,
    },
    Record {
        leg: LegId,
        buf: Vec<i16>,
        max: usize,
    },
    StopRecording {
        leg: LegId,
    },
    /// To another room on the same thread.
    Move {
        leg: LegId,
        room: RoomId,
        mode: LegMode,
    },
    /// To the leg's thread: take it out and hand it to thread `to` (an `Attach`).
    Detach {
        leg: LegId,
        to: usize,
        room: RoomId,
        mode: LegMode,
    },
    /// To the target thread, before the `Detach`: keep the leg's commands until it comes.
    Expect {
        leg: LegId,
    },
    Attach(Box<Moved>),
    /// The leg to expect will not come (it was gone when the `Detach` arrived).
    Gone {
        leg: LegId,
    },
}

impl Cmd {
    /// The leg a command is for (kept while the leg is on its way from another thread).
    fn leg(&self) -> Option<LegId> {
        match self {
            Cmd::Update { leg, .. }
            | Cmd::Mode { leg, .. }
            | Cmd::Close { leg }
            | Cmd::Play { leg, .. }
            | Cmd::StopPlaying { leg }
            | Cmd::Record { leg, .. }
            | Cmd::StopRecording { leg }
            | Cmd::Move { leg, .. }
            | Cmd::Detach { leg, .. } => Some(*leg),
            Cmd::Add { .. }
            | Cmd::Range(_)
            | Cmd::Announce { .. }
            | Cmd::Expect { .. }
            | Cmd::Attach(_)
            | Cmd::Gone { .. } => None,
        }
    }
}

/// A leg on its way between threads.
struct Moved {
    leg: DetachedLeg,
    net: NetLeg,
    room: RoomId,
    mode: LegMode,
    /// When the thread it left last ticked it.
    last_tick: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lync_client_audio_port_range() {
        assert_eq!(client_audio_port_range(true, 5350, 40), Some(5350..=5389));
        assert_eq!(client_audio_port_range(false, 5350, 40), None);
        assert_eq!(client_audio_port_range(true, 0, 40), None);
        assert_eq!(client_audio_port_range(true, 5350, 0), None);
        assert_eq!(
            client_audio_port_range(true, 65530, 40),
            Some(65530..=65535)
        );
    }
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

impl Engine {
    /// Starts the mixing threads.
    pub fn start(cfg: EngineConfig) -> std::io::Result<Engine> {
        if cfg.port_min > cfg.port_max || cfg.port_max == u16::MAX {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "bad media port range",
            ));
        }
        if cfg.codecs.is_empty() {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "no codecs configured",
            ));
        }
        let threads = cfg.threads.max(1);
        let shared = Arc::new(Shared {
            events: Mutex::new(VecDeque::with_capacity(64)),
            event_ready: Condvar::new(),
            events_dropped: AtomicU64::new(0),
            threads: (0..threads).map(|_| ThreadCounters::default()).collect(),
        });
        let mut txs = Vec::with_capacity(threads);
        let mut rxs = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel(COMMAND_QUEUE);
            txs.push(tx);
            rxs.push(rx);
        }
        let txs = Arc::new(txs);
        for (i, rx) in rxs.into_iter().enumerate() {
            let sh = shared.clone();
            let timeout = cfg.rtp_timeout;
            let peers = Arc::downgrade(&txs);
            thread::Builder::new()
                .name(format!("confab-mix-{i}"))
                .spawn(move || MixThread::new(i, sh, rx, peers, timeout).run())?;
        }
        let first = cfg.port_min + (cfg.port_min & 1);
        Ok(Engine {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    legs: HashMap::new(),
                    rooms: HashMap::new(),
                    thread_legs: vec![0; threads],
                    ports_used: HashSet::new(),
                    next_port: first,
                    next_leg: 1,
                    remote_range: None,
                }),
                cfg,
                shared,
                txs,
            }),
        })
    }

    fn negotiate(
        &self,
        offer: &str,
        prefs: &[Codec],
        client: bool,
    ) -> Result<(Offer, Negotiated), MediaError> {
        let parsed = sdp::parse_offer(offer)?;
        let neg = sdp::negotiate(&parsed, prefs)?;
        self.check_remote(&neg, client)?;
        Ok((parsed, neg))
    }

    /// The remote's address family is ours; a client's port is inside the clients' range.
    fn check_remote(&self, neg: &Negotiated, client: bool) -> Result<(), MediaError> {
        if !neg.remote_ip.is_unspecified()
            && neg.remote_ip.is_ipv4() != self.inner.cfg.bind_ip.is_ipv4()
        {
            return Err(MediaError::BadSdp(format!(
                "the offer's address {} is not of our address family",
                neg.remote_ip
            )));
        }
        if client && !neg.remote_ip.is_unspecified() {
            let st = lock(&self.inner.state);
            if let Some(r) = &st.remote_range {
                if !r.contains(&neg.remote_port) {
                    return Err(MediaError::PortOutsideRange(neg.remote_port));
                }
            }
        }
        Ok(())
    }

    fn leg_config(neg: &Negotiated, mode: LegMode) -> LegConfig {
        LegConfig {
            codec: neg.codec,
            pt: neg.pt,
            dtmf_pt: neg.dtmf_pt,
            ssrc: random_u64() as u32,
            mode,
            send: neg.we_send(),
            hear: neg.remote_sends(),
        }
    }

    fn send(&self, thread: usize, cmd: Cmd) -> Result<(), MediaError> {
        match self.inner.txs[thread].try_send(cmd) {
            Ok(()) => Ok(()),
            // Full: the thread drains its queue every tick, so this waits at most about
            // one tick; it happens only after 1024 commands within one tick.
            Err(TrySendError::Full(cmd)) => self.inner.txs[thread]
                .send(cmd)
                .map_err(|_| MediaError::Closed),
            Err(TrySendError::Disconnected(_)) => Err(MediaError::Closed),
        }
    }

    /// Reserves a port pair (under the lock), binds it (outside), retries on a port
    /// someone else holds.
    fn bind_pair(&self) -> Result<(u16, UdpSocket, UdpSocket), MediaError> {
        let cfg = &self.inner.cfg;
        let first = cfg.port_min + (cfg.port_min & 1);
        if first >= cfg.port_max {
            return Err(MediaError::NoPorts);
        }
        // Pairs (p, p + 1) with p even and p + 1 <= port_max.
        let pairs = (cfg.port_max - first).div_ceil(2) as usize;
        let mut tried = 0;
        while tried < pairs {
            let port = {
                let mut st = lock(&self.inner.state);
                let mut found = None;
                while tried < pairs {
                    tried += 1;
                    let p = st.next_port;
                    st.next_port = if p as u32 + 2 + 1 > cfg.port_max as u32 {
                        first
                    } else {
                        p + 2
                    };
                    if !st.ports_used.contains(&p) {
                        st.ports_used.insert(p);
                        found = Some(p);
                        break;
                    }
                }
                match found {
                    Some(p) => p,
                    None => return Err(MediaError::NoPorts),
                }
            };
            let bind = |p: u16| -> std::io::Result<UdpSocket> {
                let s = UdpSocket::bind(SocketAddr::new(cfg.bind_ip, p))?;
                s.set_nonblocking(true)?;
                Ok(s)
            };
            match (bind(port), bind(port + 1)) {
                (Ok(a), Ok(b)) => return Ok((port, a, b)),
                _ => {
                    lock(&self.inner.state).ports_used.remove(&port);
                }
            }
        }
        Err(MediaError::NoPorts)
    }

    /// Negotiates `offer` (an SDP body), binds the leg's sockets, adds it to the room in
    /// `mode`, returns the SDP answer to put in the 200 OK.
    pub fn open_leg(
        &self,
        room: RoomId,
        offer: &str,
        mode: LegMode,
    ) -> Result<(LegId, String), MediaError> {
        self.open_leg_for(room, offer, mode, true)
    }

    /// [`Engine::open_leg`] for a remote that is a client (`client`: the clients' audio
    /// port range applies, Lync's ClientMediaPortRangeEnabled) or not (a PSTN gateway,
    /// whose media ports are its own).
    pub fn open_leg_for(
        &self,
        room: RoomId,
        offer: &str,
        mode: LegMode,
        client: bool,
    ) -> Result<(LegId, String), MediaError> {
        let (parsed, neg) = self.negotiate(offer, &self.inner.cfg.codecs, client)?;
        let state = CodecState::new(neg.codec).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let (leg, thread, port, rtp_sock, rtcp_sock, session_id) =
            self.reserve(room, neg.codec, false)?;
        if let Some(info) = lock(&self.inner.state).legs.get_mut(&leg) {
            info.client = client;
        }
        let answer = sdp::build_answer(&parsed, &neg, self.inner.cfg.bind_ip, port, session_id, 1);
        self.add(
            thread,
            Cmd::Add {
                room,
                leg,
                cfg: Self::leg_config(&neg, mode),
                state: Box::new(state),
                rtp: rtp_sock,
                rtcp: rtcp_sock,
                remote: Remote::of(&neg).for_client(client),
            },
        )?;
        Ok((leg, answer))
    }

    /// Reserves a leg in `room` (it counts toward `max_legs` while its sockets are
    /// bound) and binds its port pair: (leg, thread, port, RTP socket, RTCP socket,
    /// session id).
    #[allow(clippy::type_complexity)]
    fn reserve(
        &self,
        room: RoomId,
        codec: Codec,
        pending: bool,
    ) -> Result<(LegId, usize, u16, UdpSocket, UdpSocket, u64), MediaError> {
        let (leg, thread) = {
            let mut st = lock(&self.inner.state);
            if st.legs.len() >= self.inner.cfg.max_legs {
                return Err(MediaError::Full);
            }
            let thread = match st.rooms.get(&room) {
                Some(&(t, _)) => t,
                None => (0..st.thread_legs.len())
                    .min_by_key(|&t| st.thread_legs[t])
                    .unwrap_or(0),
            };
            st.rooms.entry(room).or_insert((thread, 0)).1 += 1;
            st.thread_legs[thread] += 1;
            let leg = LegId(st.next_leg);
            st.next_leg += 1;
            st.legs.insert(
                leg,
                LegInfo {
                    room,
                    thread,
                    port: 0,
                    session_id: 0,
                    version: 1,
                    codec,
                    pending,
                    client: true,
                },
            );
            (leg, thread)
        };
        let (port, rtp_sock, rtcp_sock) = match self.bind_pair() {
            Ok(x) => x,
            Err(e) => {
                self.forget(leg);
                return Err(e);
            }
        };
        let session_id = random_u64() >> 1;
        if let Some(info) = lock(&self.inner.state).legs.get_mut(&leg) {
            info.port = port;
            info.session_id = session_id;
        }
        Ok((leg, thread, port, rtp_sock, rtcp_sock, session_id))
    }

    /// Hands a reserved leg (`Cmd::Add`) to its thread; on failure forgets it.
    fn add(&self, thread: usize, cmd: Cmd) -> Result<(), MediaError> {
        let leg = match &cmd {
            Cmd::Add { leg, .. } => *leg,
            _ => return Err(MediaError::Closed),
        };
        let sent = match self.inner.txs[thread].try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(MediaError::Full),
            Err(TrySendError::Disconnected(_)) => Err(MediaError::Closed),
        };
        if let Err(e) = sent {
            self.forget(leg);
            return Err(e);
        }
        Ok(())
    }

    /// Sends a command for `leg` to the thread the books say it is on, holding the books
    /// while sending (so commands for a leg stay in order with its moves).
    fn send_to_leg(&self, leg: LegId, cmd: Cmd) -> Result<(), MediaError> {
        let st = lock(&self.inner.state);
        let thread = st
            .legs
            .get(&leg)
            .map(|i| i.thread)
            .ok_or(MediaError::Closed)?;
        let r = self.send(thread, cmd);
        drop(st);
        r
    }

    /// Removes a leg from the books (its sockets close where they are dropped).
    fn forget(&self, leg: LegId) -> Option<LegInfo> {
        let mut st = lock(&self.inner.state);
        let info = st.legs.remove(&leg)?;
        if info.port != 0 {
            st.ports_used.remove(&info.port);
        }
        st.thread_legs[info.thread] = st.thread_legs[info.thread].saturating_sub(1);
        if let Some(r) = st.rooms.get_mut(&info.room) {
            r.1 = r.1.saturating_sub(1);
            if r.1 == 0 {
                st.rooms.remove(&info.room);
            }
        }
        Some(info)
    }

    /// A re-INVITE's offer on an existing leg (hold = sendonly/inactive/c=0.0.0.0, resume,
    /// new address): returns the new answer (same ports, o= version incremented).
    pub fn update_leg(&self, leg: LegId, offer: &str) -> Result<String, MediaError> {
        let (current, client) = lock(&self.inner.state)
            .legs
            .get(&leg)
            .map(|i| (i.codec, i.client))
            .ok_or(MediaError::Closed)?;
        // Keep the codec if the new offer still has it.
        let mut prefs = Vec::with_capacity(self.inner.cfg.codecs.len());
        prefs.push(current);
        prefs.extend(
            self.inner
                .cfg
                .codecs
                .iter()
                .copied()
                .filter(|c| *c != current),
        );
        let (parsed, neg) = self.negotiate(offer, &prefs, client)?;
        let state = if neg.codec != current {
            Some(Box::new(
                CodecState::new(neg.codec).map_err(|e| MediaError::BadSdp(e.to_string()))?,
            ))
        } else {
            None
        };
        let mut st = lock(&self.inner.state);
        let info = st.legs.get_mut(&leg).ok_or(MediaError::Closed)?;
        if info.pending {
            return Err(MediaError::BadSdp(
                "the leg is waiting for the answer to our offer".into(),
            ));
        }
        info.version += 1;
        info.codec = neg.codec;
        let (thread, port, session_id, version) =
            (info.thread, info.port, info.session_id, info.version);
        let answer = sdp::build_answer(
            &parsed,
            &neg,
            self.inner.cfg.bind_ip,
            port,
            session_id,
            version,
        );
        self.send(
            thread,
            Cmd::Update {
                leg,
                cfg: Self::leg_config(&neg, LegMode::Active),
                state,
                remote: Remote::of(&neg).for_client(client),
            },
        )?;
        drop(st);
        Ok(answer)
    }

    pub fn set_mode(&self, leg: LegId, mode: LegMode) {
        let _ = self.send_to_leg(leg, Cmd::Mode { leg, mode });
    }

    /// Closes a leg (also a dial-out leg before its answer, or one being moved): its
    /// queued prompts and a recording in progress are dropped without an event.
    pub fn close_leg(&self, leg: LegId) {
        // Out of the books first: no command for it can follow the Close.
        if let Some(info) = self.forget(leg) {
            let _ = self.send(info.thread, Cmd::Close { leg });
        }
    }

    /// Clients' audio port range (None = any): Lync's ClientMediaPortRangeEnabled/ClientAudioPort/Range.
    pub fn set_remote_port_range(&self, range: Option<RangeInclusive<u16>>) {
        lock(&self.inner.state).remote_range = range.clone();
        for t in 0..self.inner.txs.len() {
            let _ = self.send(t, Cmd::Range(range.clone()));
        }
    }

    /// Events for the focus (bounded; oldest dropped with a counter if nobody reads).
    pub fn poll_event(&self) -> Option<MediaEvent> {
        lock(&self.inner.shared.events).pop_front()
    }

    /// Or a blocking wait with timeout, for a driver thread of the focus.
    pub fn wait_event(&self, timeout: Duration) -> Option<MediaEvent> {
        let deadline = Instant::now() + timeout;
        let mut q = lock(&self.inner.shared.events);
        loop {
            if let Some(ev) = q.pop_front() {
                return Some(ev);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            q = match self
                .inner
                .shared
                .event_ready
                .wait_timeout(q, deadline - now)
            {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    pub fn stats(&self) -> EngineStats {
        let (legs, rooms) = {
            let st = lock(&self.inner.state);
            (st.legs.len(), st.rooms.len())
        };
        let mut s = EngineStats {
            legs,
            rooms,
            ..Default::default()
        };
        for t in &self.inner.shared.threads {
            s.ticks += t.ticks.load(Relaxed);
            s.late_ticks += t.late_ticks.load(Relaxed);
            s.max_tick_us = s.max_tick_us.max(t.max_tick_us.load(Relaxed));
            s.busy_us += t.busy_us.load(Relaxed);
            s.rx_packets += t.rx_packets.load(Relaxed);
            s.tx_packets += t.tx_packets.load(Relaxed);
            s.dropped_packets += t.dropped_packets.load(Relaxed);
            s.dropped_wrong_source += t.dropped_wrong_source.load(Relaxed);
            s.dropped_port_range += t.dropped_port_range.load(Relaxed);
            s.dropped_malformed += t.dropped_malformed.load(Relaxed);
            s.dropped_oversize += t.dropped_oversize.load(Relaxed);
            s.encodes += t.encodes.load(Relaxed);
            s.decodes += t.decodes.load(Relaxed);
            s.dtmf_events += t.dtmf_events.load(Relaxed);
            s.timeouts += t.timeouts.load(Relaxed);
            s.prompts_dropped += t.prompts_dropped.load(Relaxed);
            s.moves += t.moves.load(Relaxed);
            s.moves_between_threads += t.moves_between_threads.load(Relaxed);
        }
        s.events_dropped = self.inner.shared.events_dropped.load(Relaxed);
        s
    }

    pub fn leg_codec(&self, leg: LegId) -> Option<Codec> {
        lock(&self.inner.state).legs.get(&leg).map(|i| i.codec)
    }

    /// Our RTP port for a leg (the one in its answer).
    pub fn leg_port(&self, leg: LegId) -> Option<u16> {
        lock(&self.inner.state).legs.get(&leg).map(|i| i.port)
    }
}

/// The clients' audio port range from Lync's CsConferencingConfiguration:
/// `ClientMediaPortRangeEnabled`, `ClientAudioPort` (the first port) and
/// `ClientAudioPortRange` (how many): `None` when disabled, or when the numbers do not
/// make a port range (then no range is enforced rather than every client refused).
pub fn client_audio_port_range(
    enabled: bool,
    port: i64,
    count: i64,
) -> Option<RangeInclusive<u16>> {
    if !enabled || !(1..=65535).contains(&port) || count < 1 {
        return None;
    }
    let last = (port + count - 1).min(65535);
    Some(port as u16..=last as u16)
}

// ---------------------------------------------------------------------------------------
// The mixing threads.

struct NetLeg {
    id: LegId,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    remote: Remote,
    last_rx: Instant,
    timed_out: bool,
    last_sr: Instant,
    /// Handed over from another thread, which last ticked it then: the first tick here
    /// advances its timestamp by the ticks it missed.
    resumed: Option<Instant>,
}

struct ThreadRoom {
    id: RoomId,
    room: Room,
    /// Index-aligned with the room's legs.
    net: Vec<NetLeg>,
    encodes_seen: u64,
    decodes_seen: u64,
}

/// Per-tick counters, published to the atomics once per tick.
#[derive(Default)]
struct Local {
    rx: u64,
    tx: u64,
    dropped: u64,
    wrong_source: u64,
    port_range: u64,
    malformed: u64,
    oversize: u64,
    dtmf: u64,
    timeouts: u64,
}

/// A leg on its way here from another thread, and the commands for it that came first.
struct Expected {
    leg: LegId,
    since: Instant,
    cmds: Vec<Cmd>,
}

struct MixThread {
    index: usize,
    shared: Arc<Shared>,
    rx: Receiver<Cmd>,
    /// The other threads' command queues (weak: see `Inner::txs`).
    peers: Weak<Vec<SyncSender<Cmd>>>,
    rtp_timeout: Duration,
    rooms: Vec<ThreadRoom>,
    range: Option<RangeInclusive<u16>>,
    buf: Box<[u8; 2048]>,
    local: Local,
    expected: Vec<Expected>,
    /// Hand-overs whose target queue was full, retried every tick.
    outbox: Vec<(usize, Cmd)>,
    /// When the last tick started.
    last_tick: Instant,
}

enum Flow {
    Go,
    Stop,
}

impl MixThread {
    fn new(
        index: usize,
        shared: Arc<Shared>,
        rx: Receiver<Cmd>,
        peers: Weak<Vec<SyncSender<Cmd>>>,
        rtp_timeout: Duration,
    ) -> MixThread {
        MixThread {
            index,
            shared,
            rx,
            peers,
            rtp_timeout,
            rooms: Vec::new(),
            range: None,
            buf: Box::new([0; 2048]),
            local: Local::default(),
            expected: Vec::new(),
            outbox: Vec::new(),
            last_tick: Instant::now(),
        }
    }

    fn find(&self, leg: LegId) -> Option<(usize, usize)> {
        self.rooms
            .iter()
            .enumerate()
            .find_map(|(r, tr)| tr.net.iter().position(|n| n.id == leg).map(|i| (r, i)))
    }

    /// The index of a room on this thread, made if it is not here.
    fn room_index(&mut self, room: RoomId) -> usize {
        match self.rooms.iter().position(|r| r.id == room) {
            Some(r) => r,
            None => {
                self.rooms.push(ThreadRoom {
                    id: room,
                    room: Room::new(),
                    net: Vec::new(),
                    encodes_seen: 0,
                    decodes_seen: 0,
                });
                self.rooms.len() - 1
            }
        }
    }

    /// Takes a leg out of its room (the room goes when it is empty).
    fn take(&mut self, r: usize, i: usize) -> (DetachedLeg, NetLeg) {
        let tr = &mut self.rooms[r];
        let mix = tr.room.detach(i);
        let net = tr.net.swap_remove(i);
        if tr.net.is_empty() {
            self.rooms.swap_remove(r);
        }
        (mix, net)
    }

    fn put(&mut self, room: RoomId, mix: DetachedLeg, net: NetLeg, mode: LegMode) {
        let r = self.room_index(room);
        let tr = &mut self.rooms[r];
        tr.room.attach(mix, mode, 0);
        tr.net.push(net);
    }

    /// Sends a command to another thread without waiting: a full queue keeps it in the
    /// outbox for the next tick; a closed one (the engine stopping) drops it.
    fn forward(&mut self, to: usize, cmd: Cmd) {
        let Some(peers) = self.peers.upgrade() else {
            return;
        };
        let Some(tx) = peers.get(to) else {
            return;
        };
        if let Err(TrySendError::Full(cmd)) = tx.try_send(cmd) {
            self.outbox.push((to, cmd));
        }
    }

    fn retry_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let Some(peers) = self.peers.upgrade() else {
            self.outbox.clear();
            return;
        };
        let mut i = 0;
        while i < self.outbox.len() {
            let (to, cmd) = self.outbox.swap_remove(i);
            if let Err(TrySendError::Full(cmd)) = peers[to].try_send(cmd) {
                // Back where it was; on to the next.
                self.outbox.push((to, cmd));
                let last = self.outbox.len() - 1;
                self.outbox.swap(i, last);
                i += 1;
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        if let Some(leg) = cmd.leg() {
            if self.find(leg).is_none() {
                if let Some(e) = self.expected.iter_mut().find(|e| e.leg == leg) {
                    // On its way here: kept until it comes.
                    if e.cmds.len() < MAX_WAITING_COMMANDS {
                        e.cmds.push(cmd);
                    }
                } else if let Cmd::Detach { leg, to, .. } = cmd {
                    // Gone (closed) before it could leave: the target stops expecting it.
                    self.forward(to, Cmd::Gone { leg });
                }
                return;
            }
        }
        match cmd {
            Cmd::Add {
                room,
                leg,
                cfg,
                state,
                rtp,
                rtcp,
                remote,
            } => {
                let r = self.room_index(room);
                let tr = &mut self.rooms[r];
                tr.room.add_prepared(leg, cfg, *state);
                let now = Instant::now();
                tr.net.push(NetLeg {
                    id: leg,
                    rtp,
                    rtcp,
                    remote,
                    last_rx: now,
                    timed_out: false,
                    last_sr: now,
                    resumed: None,
                });
            }
            Cmd::Update {
                leg,
                cfg,
                state,
                remote,
            } => {
                if let Some((r, i)) = self.find(leg) {
                    let tr = &mut self.rooms[r];
                    tr.room.update_leg(i, cfg, state.map(|b| *b));
                    let n = &mut tr.net[i];
                    n.remote = remote;
                    n.last_rx = Instant::now();
                    n.timed_out = false;
                }
            }
            Cmd::Mode { leg, mode } => {
                if let Some((r, i)) = self.find(leg) {
                    self.rooms[r].room.set_mode(i, mode);
                }
            }
            Cmd::Close { leg } => {
                if let Some((r, i)) = self.find(leg) {
                    let tr = &mut self.rooms[r];
                    tr.room.remove_leg(i);
                    tr.net.swap_remove(i);
                    if tr.net.is_empty() {
                        self.rooms.swap_remove(r);
                    }
                }
            }
            Cmd::Range(r) => self.range = r,
            Cmd::Play { leg, clip, tag } => {
                if let Some((r, i)) = self.find(leg) {
                    if !self.rooms[r].room.play_tagged(i, clip, tag) {
                        self.shared.threads[self.index]
                            .prompts_dropped
                            .fetch_add(1, Relaxed);
                        tracing::warn!(leg = leg.0, "prompt queue full (32): prompt dropped");
                    }
                }
            }
            Cmd::StopPlaying { leg } => {
                if let Some((r, i)) = self.find(leg) {
                    if let Some(tag) = self.rooms[r].room.stop_playing(i) {
                        self.shared.push_event(MediaEvent::PromptDone { leg, tag });
                    }
                }
            }
            Cmd::Announce { room, clip } => {
                if let Some(tr) = self.rooms.iter_mut().find(|r| r.id == room) {
                    if !tr.room.announce(clip) {
                        self.shared.threads[self.index]
                            .prompts_dropped
                            .fetch_add(1, Relaxed);
                        tracing::warn!(room = room.0, "announcement queue full (8): dropped");
                    }
                }
            }
            Cmd::Record { leg, buf, max } => {
                if let Some((r, i)) = self.find(leg) {
                    if let Some(clip) = self.rooms[r].room.record(i, buf, max) {
                        self.shared.push_event(MediaEvent::Recorded { leg, clip });
                    }
                }
            }
            Cmd::StopRecording { leg } => {
                if let Some((r, i)) = self.find(leg) {
                    if let Some(clip) = self.rooms[r].room.stop_recording(i) {
                        self.shared.push_event(MediaEvent::Recorded { leg, clip });
                    }
                }
            }
            Cmd::Move { leg, room, mode } => {
                if let Some((r, i)) = self.find(leg) {
                    if self.rooms[r].id == room {
                        self.rooms[r].room.set_mode(i, mode);
                    } else {
                        let (mix, net) = self.take(r, i);
                        self.put(room, mix, net, mode);
                    }
                    self.shared.threads[self.index].moves.fetch_add(1, Relaxed);
                }
            }
            Cmd::Detach {
                leg,
                to,
                room,
                mode,
            } => {
                if let Some((r, i)) = self.find(leg) {
                    let (mix, net) = self.take(r, i);
                    let moved = Box::new(Moved {
                        leg: mix,
                        net,
                        room,
                        mode,
                        last_tick: self.last_tick,
                    });
                    let c = &self.shared.threads[self.index];
                    c.moves.fetch_add(1, Relaxed);
                    c.moves_between_threads.fetch_add(1, Relaxed);
                    self.forward(to, Cmd::Attach(moved));
                }
            }
            Cmd::Expect { leg } => {
                if !self.expected.iter().any(|e| e.leg == leg) {
                    self.expected.push(Expected {
                        leg,
                        since: Instant::now(),
                        cmds: Vec::new(),
                    });
                }
            }
            Cmd::Attach(moved) => {
                let Moved {
                    leg,
                    mut net,
                    room,
                    mode,
                    last_tick,
                } = *moved;
                let id = leg.id();
                net.resumed = Some(last_tick);
                self.put(room, leg, net, mode);
                // What came for it meanwhile, in order.
                if let Some(k) = self.expected.iter().position(|e| e.leg == id) {
                    let e = self.expected.swap_remove(k);
                    for c in e.cmds {
                        self.handle(c);
                    }
                }
            }
            Cmd::Gone { leg } => {
                self.expected.retain(|e| e.leg != leg);
            }
        }
    }

    fn drain_commands(&mut self) -> Flow {
        self.retry_outbox();
        if !self.expected.is_empty() {
            let now = Instant::now();
            self.expected
                .retain(|e| now.duration_since(e.since) < EXPECT_TIMEOUT);
        }
        loop {
            match self.rx.try_recv() {
                Ok(c) => self.handle(c),
                Err(TryRecvError::Empty) => return Flow::Go,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
    }

    fn run(mut self) {
        let mut due = Instant::now() + TICK;
        loop {
            if let Flow::Stop = self.drain_commands() {
                return;
            }
            if self.rooms.is_empty() {
                // Idle: sleep on the command channel instead of ticking.
                match self.rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(c) => self.handle(c),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                due = Instant::now() + TICK;
                continue;
            }
            let now = Instant::now();
            if now < due {
                thread::sleep(due - now);
                continue;
            }
            let start = Instant::now();
            let lateness = start - due;
            self.tick(start);
            self.last_tick = start;
            let work = start.elapsed();
            let c = &self.shared.threads[self.index];
            c.ticks.fetch_add(1, Relaxed);
            let us = work.as_micros() as u64;
            c.busy_us.fetch_add(us, Relaxed);
            c.max_tick_us.fetch_max(us, Relaxed);
            if lateness > TICK || work > TICK {
                c.late_ticks.fetch_add(1, Relaxed);
            }
            due += TICK;
            // Far behind (the machine stalled): start a new schedule rather than burst.
            if Instant::now() > due + 5 * TICK {
                due = Instant::now() + TICK;
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        let range = self.range.clone();
        let timeout = self.rtp_timeout;
        for tr in &mut self.rooms {
            let ThreadRoom {
                id: _,
                room,
                net,
                encodes_seen,
                decodes_seen,
            } = tr;
            // Receive.
            for (i, n) in net.iter_mut().enumerate() {
                if let Some(t) = n.resumed.take() {
                    // Ticks missed on the way between threads (at most a few).
                    let gap = now.saturating_duration_since(t).as_micros() as u64;
                    let ticks = (gap + TICK.as_micros() as u64 / 2) / TICK.as_micros() as u64;
                    room.skip_ticks(i, ticks.saturating_sub(1).min(50) as u32);
                }
                for on_rtcp_port in [false, true] {
                    for _ in 0..MAX_READS_PER_TICK {
                        let sock = if on_rtcp_port { &n.rtcp } else { &n.rtp };
                        let (len, src) = match sock.recv_from(&mut self.buf[..]) {
                            Ok(x) => x,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                            // ICMP errors surface here (connection refused): ignore.
                            Err(_) => continue,
                        };
                        if len > MAX_PACKET {
                            self.local.oversize += 1;
                            self.local.dropped += 1;
                            continue;
                        }
                        if src.ip() != n.remote.ip {
                            self.local.wrong_source += 1;
                            self.local.dropped += 1;
                            continue;
                        }
                        if let Some(r) = range.as_ref().filter(|_| n.remote.client) {
                            if !r.contains(&src.port()) {
                                self.local.port_range += 1;
                                self.local.dropped += 1;
                                continue;
                            }
                        }
                        let pkt = &self.buf[..len];
                        if on_rtcp_port || rtp::is_rtcp(pkt) {
                            if (!on_rtcp_port && !n.remote.mux) || rtp::parse_rtcp(pkt).is_err() {
                                self.local.malformed += 1;
                                self.local.dropped += 1;
                                continue;
                            }
                            self.local.rx += 1;
                            n.last_rx = now;
                            if n.remote.mux {
                                n.remote.rtcp = SocketAddr::new(n.remote.ip, src.port());
                            } else if on_rtcp_port {
                                n.remote.rtcp = src;
                            }
                            continue;
                        }
                        let Ok(p) = rtp::parse(pkt) else {
                            self.local.malformed += 1;
                            self.local.dropped += 1;
                            continue;
                        };
                        match room.push_rtp(i, &p) {
                            Pushed::UnknownPt => {
                                self.local.malformed += 1;
                                self.local.dropped += 1;
                                continue;
                            }
                            Pushed::Dtmf(digit) => {
                                self.local.dtmf += 1;
                                self.shared
                                    .push_event(MediaEvent::Dtmf { leg: n.id, digit });
                            }
                            Pushed::Audio | Pushed::Event => {}
                        }
                        self.local.rx += 1;
                        n.last_rx = now;
                        // Symmetric RTP: latch the port, from the SDP's IP only.
                        if src != n.remote.rtp {
                            n.remote.rtp = src;
                        }
                    }
                }
                if n.remote.sends && !n.timed_out && now.duration_since(n.last_rx) > timeout {
                    n.timed_out = true;
                    self.local.timeouts += 1;
                    self.shared.push_event(MediaEvent::Timeout { leg: n.id });
                }
            }
            // Mix and send.
            let mut tx = 0u64;
            room.tick(|i, pkt| {
                let n = &net[i];
                if n.rtp.send_to(pkt, n.remote.rtp).is_ok() {
                    tx += 1;
                }
            });
            self.local.tx += tx;
            let shared = &self.shared;
            room.take_events(|ev| {
                shared.push_event(match ev {
                    RoomEvent::PromptDone(leg, tag) => MediaEvent::PromptDone { leg, tag },
                    RoomEvent::Recorded(leg, clip) => MediaEvent::Recorded { leg, clip },
                })
            });
            // RTCP sender reports for the legs we send to.
            for (i, n) in net.iter_mut().enumerate() {
                if now.duration_since(n.last_sr) >= SR_INTERVAL && !n.remote.ip.is_unspecified() {
                    n.last_sr = now;
                    let (ssrc, ts, packets, octets) = room.sender_info(i);
                    if packets > 0 {
                        let mut sr = [0u8; 64];
                        let len = rtp::build_sr(&mut sr, ssrc, rtp::ntp_now(), ts, packets, octets);
                        let sock = if n.remote.mux { &n.rtp } else { &n.rtcp };
                        let _ = sock.send_to(&sr[..len], n.remote.rtcp);
                    }
                }
            }
            let c = &self.shared.threads[self.index];
            c.encodes
                .fetch_add(room.stats.encodes - *encodes_seen, Relaxed);
            c.decodes
                .fetch_add(room.stats.decodes - *decodes_seen, Relaxed);
            *encodes_seen = room.stats.encodes;
            *decodes_seen = room.stats.decodes;
        }
        let l = std::mem::take(&mut self.local);
        let c = &self.shared.threads[self.index];
        for (a, v) in [
            (&c.rx_packets, l.rx),
            (&c.tx_packets, l.tx),
            (&c.dropped_packets, l.dropped),
            (&c.dropped_wrong_source, l.wrong_source),
            (&c.dropped_port_range, l.port_range),
            (&c.dropped_malformed, l.malformed),
            (&c.dropped_oversize, l.oversize),
            (&c.dtmf_events, l.dtmf),
            (&c.timeouts, l.timeouts),
        ] {
            if v != 0 {
                a.fetch_add(v, Relaxed);
            }
        }
    }
}

// ----- dial-in: prompts, announcements, moving legs, recording, dial-out ----------------
impl Engine {
    /// Queues `clip` for the leg to hear (bounded: at most 32 queued; more are dropped with
    /// a warning). While it has something queued, a leg in `Lobby` hears the prompt instead
    /// of the lobby tone, an `Active`/`Muted` leg hears it over its mix; `Held` hears
    /// nothing. [`MediaEvent::PromptDone`] when the queue is empty again.
    ///
    /// Clips follow each other without a gap. A held leg (or one whose SDP says it
    /// receives nothing) hears nothing, but its prompts still play out in time, so the
    /// event comes. Prompts go with the leg when it is moved; an unknown leg is ignored.
    pub fn play(&self, leg: LegId, clip: Arc<Clip>) {
        self.play_tagged(leg, clip, 0);
    }

    /// [`Engine::play`] with a tag that [`MediaEvent::PromptDone`] reports when this clip
    /// was the queue's last: whoever stops prompts tells the stopped ones' end from the end
    /// of those it queued after.
    pub fn play_tagged(&self, leg: LegId, clip: Arc<Clip>, tag: u32) {
        let _ = self.send_to_leg(leg, Cmd::Play { leg, clip, tag });
    }

    /// Drops what is queued for the leg (then [`MediaEvent::PromptDone`]).
    ///
    /// (Only if something was queued: the event comes once per emptied queue.)
    pub fn stop_playing(&self, leg: LegId) {
        let _ = self.send_to_leg(leg, Cmd::StopPlaying { leg });
    }

    /// Plays `clip` once to every leg of the room that hears the meeting (`Active` or
    /// `Muted`; not `Lobby` or `Held`), mixed into what they hear.
    ///
    /// One at a time, 8 queued at most per room (more are dropped with a warning). A
    /// leg's own prompt plays over it. An unknown room is ignored.
    pub fn announce(&self, room: RoomId, clip: Arc<Clip>) {
        let st = lock(&self.inner.state);
        if let Some(&(thread, _)) = st.rooms.get(&room) {
            let _ = self.send(thread, Cmd::Announce { room, clip });
        }
    }

    /// Moves a leg (its sockets, codec state, counters, queued prompts) to another room,
    /// possibly on another mixing thread, in `mode`.
    ///
    /// A room new to the engine is made on the leg's own thread. Commands for the leg
    /// made after this call act on it in its new room (a thread expecting a leg keeps
    /// them until it arrives). `Closed` for an unknown leg; `Full` when the target
    /// thread's command queue is full (then nothing moved). Moving to its own room only
    /// sets the mode.
    pub fn move_leg(&self, leg: LegId, room: RoomId, mode: LegMode) -> Result<(), MediaError> {
        let mut st = lock(&self.inner.state);
        let (from, old) = st
            .legs
            .get(&leg)
            .map(|i| (i.thread, i.room))
            .ok_or(MediaError::Closed)?;
        if old == room {
            return self.send(from, Cmd::Mode { leg, mode });
        }
        let to = st.rooms.get(&room).map_or(from, |&(t, _)| t);
        if to != from {
            match self.inner.txs[to].try_send(Cmd::Expect { leg }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(MediaError::Full),
                Err(TrySendError::Disconnected(_)) => return Err(MediaError::Closed),
            }
        }
        if let Some(r) = st.rooms.get_mut(&old) {
            r.1 = r.1.saturating_sub(1);
            if r.1 == 0 {
                st.rooms.remove(&old);
            }
        }
        st.rooms.entry(room).or_insert((to, 0)).1 += 1;
        st.thread_legs[from] = st.thread_legs[from].saturating_sub(1);
        st.thread_legs[to] += 1;
        if let Some(info) = st.legs.get_mut(&leg) {
            info.room = room;
            info.thread = to;
        }
        let cmd = if to == from {
            Cmd::Move { leg, room, mode }
        } else {
            Cmd::Detach {
                leg,
                to,
                room,
                mode,
            }
        };
        let r = self.send(from, cmd);
        drop(st);
        r
    }

    /// Records what the leg says (decoded, 16 kHz) for at most `max`, then
    /// [`MediaEvent::Recorded`].
    ///
    /// At most 10 s. Time counts whether or not it sends (silence is recorded then), in
    /// any mode, also while prompts play to it. A recording already running on the leg
    /// ends (its `Recorded` first). An unknown leg is ignored.
    pub fn record(&self, leg: LegId, max: Duration) {
        let max = ((max.as_millis().min(u64::MAX as u128) as u64).saturating_mul(MIX_RATE as u64)
            / 1000)
            .min(MAX_RECORDING as u64) as usize;
        // The buffer is made here, not on the mixing thread.
        let buf = Vec::with_capacity(max);
        let _ = self.send_to_leg(leg, Cmd::Record { leg, buf, max });
    }

    /// Ends a recording early (then [`MediaEvent::Recorded`] with what was heard).
    pub fn stop_recording(&self, leg: LegId) {
        let _ = self.send_to_leg(leg, Cmd::StopRecording { leg });
    }

    /// Dial-out: a new leg in `room` (sockets bound, silent until answered) and our SDP
    /// offer (the engine's codecs and telephone-event) for the INVITE.
    ///
    /// Until [`Engine::answer_leg`] the leg is sent nothing, not heard, takes no
    /// datagram and cannot time out; `close_leg` works as for any leg (a call that is not
    /// answered).
    pub fn offer_leg(&self, room: RoomId, mode: LegMode) -> Result<(LegId, String), MediaError> {
        let codecs = &self.inner.cfg.codecs;
        let first = codecs[0];
        // A codec state for the first codec; the answer may change it.
        let state = CodecState::new(first).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let (leg, thread, port, rtp_sock, rtcp_sock, session_id) =
            self.reserve(room, first, true)?;
        let offer = sdp::build_offer(self.inner.cfg.bind_ip, port, codecs, session_id, 1);
        self.add(
            thread,
            Cmd::Add {
                room,
                leg,
                cfg: LegConfig {
                    codec: first,
                    pt: sdp::offered_pt(first),
                    dtmf_pt: None,
                    ssrc: random_u64() as u32,
                    mode,
                    send: false,
                    hear: false,
                },
                state: Box::new(state),
                rtp: rtp_sock,
                rtcp: rtcp_sock,
                remote: Remote::none(self.inner.cfg.bind_ip),
            },
        )?;
        Ok((leg, offer))
    }

    /// The answer to [`Engine::offer_leg`]'s offer: the leg starts sending and hearing.
    ///
    /// The answer must take one of the offered codecs with our payload type (its first
    /// one that we offered wins), telephone-event (optional) with ours, and name an
    /// address of our family (and a port inside the clients' range when one is set):
    /// otherwise `BadSdp`/`NoCommonCodec`/`PortOutsideRange` and the leg still waits
    /// (the caller closes it). `Closed` for an unknown leg; `BadSdp` for a leg with no
    /// offer outstanding (already answered, or opened from an offer).
    pub fn answer_leg(&self, leg: LegId, answer: &str) -> Result<(), MediaError> {
        let parsed = sdp::parse_offer(answer)?;
        let neg = sdp::negotiate_answer(&parsed, &self.inner.cfg.codecs)?;
        self.check_remote(&neg, true)?;
        let state = CodecState::new(neg.codec).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let mut st = lock(&self.inner.state);
        let info = st.legs.get_mut(&leg).ok_or(MediaError::Closed)?;
        if !info.pending {
            return Err(MediaError::BadSdp(
                "the leg has no offer waiting for an answer".into(),
            ));
        }
        info.pending = false;
        info.codec = neg.codec;
        let thread = info.thread;
        let r = self.send(
            thread,
            Cmd::Update {
                leg,
                cfg: Self::leg_config(&neg, LegMode::Active),
                state: Some(Box::new(state)),
                remote: Remote::of(&neg),
            },
        );
        drop(st);
        r
    }
}
