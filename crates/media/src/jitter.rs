//! A per-leg jitter buffer in front of the mixer.
//!
//! Packets are slotted by sequence number in a fixed ring of [`SLOTS`] payload buffers
//! (allocated once). Playout starts [`MIN_DELAY`] frames after the first packet of a
//! talkspurt and then takes one frame per 20 ms tick. Reordered packets land in their
//! slot, duplicates and packets older than the playout point are dropped, a missing frame
//! is reported as lost (the decoder conceals it). The delay adapts gently: a late packet
//! raises the target by one frame (up to [`MAX_DELAY`]), a long calm spell lowers it by
//! one, and a buffer that stays deeper than the target drops one frame per half second.
//! A new SSRC, a sequence jump beyond the ring or a timestamp jump that the sequence
//! numbers do not explain resynchronises; so does a sender that stops (an empty buffer
//! for [`IDLE_FRAMES`] ticks): the next packet starts a new talkspurt.

/// Ring size in frames (320 ms at 20 ms).
pub const SLOTS: usize = 16;
/// Largest payload kept (larger ones are dropped).
pub const MAX_PAYLOAD: usize = 1276;
/// Initial and smallest playout delay, in 20 ms frames (40 ms).
pub const MIN_DELAY: u16 = 2;
/// Largest playout delay, in frames (120 ms).
pub const MAX_DELAY: u16 = 6;
/// Empty ticks in a row after which the stream is considered stopped.
pub const IDLE_FRAMES: u32 = 5;
/// Ticks without a late packet before the target delay is lowered by one frame.
const CALM_TICKS: u32 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct JitterStats {
    pub pushed: u64,
    pub played: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicate: u64,
    pub resyncs: u64,
    pub dropped_oversize: u64,
    pub skipped: u64,
}

/// What a tick gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The next frame's payload.
    Frame(&'a [u8]),
    /// The frame due now is missing (lost or late): conceal it.
    Lost,
    /// Nothing is playing (not started, prefilling, or the sender stopped).
    Idle,
}

struct Slot {
    seq: u16,
    full: bool,
    len: usize,
    data: Box<[u8; MAX_PAYLOAD]>,
}

pub struct JitterBuffer {
    slots: Vec<Slot>,
    ssrc: Option<u32>,
    /// The sequence number due at the next playout, once started.
    next: Option<u16>,
    /// The timestamp and sequence number of the last accepted packet (jump detection).
    last: Option<(u16, u32)>,
    /// Ticks left before playout starts.
    prefill: u16,
    target: u16,
    empty_run: u32,
    calm: u32,
    deep_run: u32,
    ts_per_frame: u32,
    pub stats: JitterStats,
}

impl JitterBuffer {
    /// `ts_per_frame`: RTP timestamp units in 20 ms (160 for G.711, 960 for Opus).
    pub fn new(ts_per_frame: u32) -> JitterBuffer {
        JitterBuffer {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    seq: 0,
                    full: false,
                    len: 0,
                    data: Box::new([0; MAX_PAYLOAD]),
                })
                .collect(),
            ssrc: None,
            next: None,
            last: None,
            prefill: 0,
            target: MIN_DELAY,
            empty_run: 0,
            calm: 0,
            deep_run: 0,
            ts_per_frame,
            stats: JitterStats::default(),
        }
    }

    /// Forgets everything buffered (a codec change, a new SSRC, a resync).
    pub fn reset(&mut self) {
        for s in &mut self.slots {
            s.full = false;
        }
        self.next = None;
        self.last = None;
        self.ssrc = None;
    }

    pub fn set_ts_per_frame(&mut self, t: u32) {
        self.ts_per_frame = t;
        self.reset();
    }

    /// The current target playout delay in frames.
    pub fn target_delay(&self) -> u16 {
        self.target
    }

    /// Frames buffered from the playout point on.
    pub fn depth(&self) -> usize {
        self.slots.iter().filter(|s| s.full).count()
    }

    /// Takes a received packet.
    pub fn push(&mut self, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) {
        if payload.len() > MAX_PAYLOAD {
            self.stats.dropped_oversize += 1;
            return;
        }
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.stats.resyncs += 1;
            }
            self.reset();
            self.ssrc = Some(ssrc);
        } else if let Some((lseq, lts)) = self.last {
            // A timestamp jump the sequence numbers do not explain (more than 1 s off).
            let dseq = seq.wrapping_sub(lseq) as i16 as i64;
            let dts = ts.wrapping_sub(lts) as i32 as i64;
            let off = dts - dseq * self.ts_per_frame as i64;
            if off.abs() > 50 * self.ts_per_frame as i64 {
                self.stats.resyncs += 1;
                self.reset();
                self.ssrc = Some(ssrc);
            }
        }
        match self.next {
            None => {
                // Start of a talkspurt: play from this packet after the target delay.
                self.next = Some(seq);
                self.prefill = self.target;
            }
            Some(next) => {
                let ahead = seq.wrapping_sub(next) as i16;
                if ahead < 0 {
                    if ahead < -(SLOTS as i16) * 4 {
                        // Far behind: a sequence jump backwards, start over.
                        self.stats.resyncs += 1;
                        self.reset();
                        self.ssrc = Some(ssrc);
                        self.next = Some(seq);
                        self.prefill = self.target;
                    } else {
                        self.stats.late += 1;
                        self.calm = 0;
                        if self.target < MAX_DELAY {
                            self.target += 1;
                        }
                        return;
                    }
                } else if ahead as usize >= SLOTS {
                    // Beyond the ring: a jump forward; start over from this packet.
                    self.stats.resyncs += 1;
                    for s in &mut self.slots {
                        s.full = false;
                    }
                    self.next = Some(seq);
                    self.prefill = self.target;
                }
            }
        }
        let slot = &mut self.slots[seq as usize % SLOTS];
        if slot.full && slot.seq == seq {
            self.stats.duplicate += 1;
            return;
        }
        slot.seq = seq;
        slot.full = true;
        slot.len = payload.len();
        slot.data[..payload.len()].copy_from_slice(payload);
        self.last = Some((seq, ts));
        self.empty_run = 0;
        self.stats.pushed += 1;
    }

    /// One 20 ms tick's frame.
    pub fn pop(&mut self) -> Playout<'_> {
        let Some(next) = self.next else {
            return Playout::Idle;
        };
        if self.prefill > 0 {
            self.prefill -= 1;
            return Playout::Idle;
        }
        self.calm = self.calm.saturating_add(1);
        if self.calm >= CALM_TICKS {
            self.calm = 0;
            if self.target > MIN_DELAY {
                self.target -= 1;
            }
        }
        let depth = self.depth();
        if depth == 0 {
            self.empty_run += 1;
            if self.empty_run >= IDLE_FRAMES {
                // The sender stopped (silence suppression, hold, gone): wait for the
                // next talkspurt instead of counting losses forever.
                self.next = None;
                self.last = None;
                self.empty_run = 0;
                return Playout::Idle;
            }
        }
        // Too deep for too long: drop the frame due now to shorten the delay by one.
        let mut next = next;
        if depth > self.target as usize + 2 {
            self.deep_run += 1;
            if self.deep_run >= 25 {
                self.deep_run = 0;
                let i = next as usize % SLOTS;
                if self.slots[i].full && self.slots[i].seq == next {
                    self.slots[i].full = false;
                    self.stats.skipped += 1;
                    next = next.wrapping_add(1);
                }
            }
        } else {
            self.deep_run = 0;
        }
        self.next = Some(next.wrapping_add(1));
        let i = next as usize % SLOTS;
        let slot = &mut self.slots[i];
        if slot.full && slot.seq == next {
            slot.full = false;
            self.stats.played += 1;
            Playout::Frame(&slot.data[..slot.len])
        } else {
            self.stats.lost += 1;
            Playout::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(p: Playout<'_>) -> Option<u8> {
        match p {
            Playout::Frame(d) => Some(d[0]),
            _ => None,
        }
    }

    /// Pushes `seqs` (payload = low byte of seq).
    fn run(jb: &mut JitterBuffer, seqs: &[u16]) {
        for &s in seqs {
            jb.push(s, (s as i16 as i32 * 160) as u32, 7, &[s as u8]);
        }
    }

    #[test]
    fn in_order_after_prefill() {
        let mut jb = JitterBuffer::new(160);
        run(&mut jb, &[10, 11, 12, 13]);
        assert_eq!(jb.pop(), Playout::Idle);
        assert_eq!(jb.pop(), Playout::Idle);
        for s in 10..14u8 {
            assert_eq!(frame(jb.pop()), Some(s));
        }
    }

    #[test]
    fn reorder_and_duplicates() {
        let mut jb = JitterBuffer::new(160);
        run(&mut jb, &[1, 3, 2, 2, 3, 4]);
        assert_eq!(jb.stats.duplicate, 2);
        jb.pop();
        jb.pop();
        let got: Vec<_> = (0..4).map(|_| frame(jb.pop())).collect();
        assert_eq!(got, vec![Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn sequence_wrap() {
        let mut jb = JitterBuffer::new(160);
        run(&mut jb, &[65534, 0, 65535, 1]);
        jb.pop();
        jb.pop();
        let got: Vec<_> = (0..4).map(|_| frame(jb.pop())).collect();
        assert_eq!(got, vec![Some(254), Some(255), Some(0), Some(1)]);
        assert_eq!(jb.stats.resyncs, 0);
    }

    #[test]
    fn loss_late_and_adaptation() {
        let mut jb = JitterBuffer::new(160);
        run(&mut jb, &[1, 2, 4]);
        jb.pop();
        jb.pop();
        assert_eq!(frame(jb.pop()), Some(1));
        assert_eq!(frame(jb.pop()), Some(2));
        assert_eq!(jb.pop(), Playout::Lost); // 3 missing
        run(&mut jb, &[3]); // arrives too late
        assert_eq!(jb.stats.late, 1);
        assert_eq!(jb.target_delay(), MIN_DELAY + 1);
        assert_eq!(frame(jb.pop()), Some(4));
        assert_eq!(jb.stats.lost, 1);
    }

    #[test]
    fn ssrc_and_jumps_resync() {
        let mut jb = JitterBuffer::new(160);
        run(&mut jb, &[1, 2]);
        jb.push(5000, 0, 8, &[9]); // new SSRC
        assert_eq!(jb.stats.resyncs, 1);
        jb.pop();
        jb.pop();
        assert_eq!(frame(jb.pop()), Some(9));
        // A sequence jump forward beyond the ring.
        jb.push(9000, 160, 8, &[1]);
        assert_eq!(jb.stats.resyncs, 2);
        // A timestamp jump with consecutive sequence numbers.
        jb.push(9001, 160 + 16_000_000, 8, &[2]);
        assert_eq!(jb.stats.resyncs, 3);
        jb.pop();
        jb.pop();
        assert_eq!(frame(jb.pop()), Some(2));
    }

    #[test]
    fn sender_stops_then_resumes_behind() {
        let mut jb = JitterBuffer::new(160);
        run(&mut jb, &[1, 2]);
        for _ in 0..(2 + 2 + IDLE_FRAMES) {
            jb.pop();
        }
        assert_eq!(jb.pop(), Playout::Idle);
        // Resumes with the next sequence number, which is behind the old playout point.
        run(&mut jb, &[3, 4]);
        jb.pop();
        jb.pop();
        assert_eq!(frame(jb.pop()), Some(3));
        assert_eq!(jb.stats.late, 0);
    }

    #[test]
    fn bounded_and_oversize() {
        let mut jb = JitterBuffer::new(160);
        for s in 0..1000u16 {
            jb.push(s, s as u32 * 160, 1, &[0; 20]);
        }
        assert!(jb.depth() <= SLOTS);
        jb.push(1000, 1000 * 160, 1, &[0; MAX_PAYLOAD + 1]);
        assert_eq!(jb.stats.dropped_oversize, 1);
    }

    #[test]
    fn deep_buffer_is_drained_gently() {
        let mut jb = JitterBuffer::new(160);
        // A burst of 10 frames, then one per tick: depth stays above target.
        run(&mut jb, &(0..10).collect::<Vec<_>>());
        for s in 10u16..310 {
            jb.pop();
            jb.push(s, s as u32 * 160, 7, &[0]);
        }
        assert!(jb.stats.skipped >= 1);
        assert!(jb.depth() <= MIN_DELAY as usize + 4, "depth {}", jb.depth());
    }
}
