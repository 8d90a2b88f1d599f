//! A hashed timer wheel for the transaction timers of one shard: scheduling and firing
//! are O(1) (a binary heap is O(log n), with a cache miss per level, and a shard holds
//! tens of thousands of pending timers under load: every Timer B/F/J/L lives 32 s).
//!
//! Slots are [`TICK`] wide and the wheel spans [`SLOTS`] of them (41 s): a timer further
//! out waits in its slot for another turn. Timers fire at the first `take_due` at or after
//! their deadline, never early; order within a tick is unspecified.

use std::time::{Duration, Instant};

/// Width of a slot: the server's timer tick.
pub const TICK: Duration = Duration::from_millis(10);
const SLOTS: usize = 4096;

pub struct TimerWheel<T> {
    slots: Box<[Vec<(Instant, T)>]>,
    origin: Instant,
    /// The earliest tick that may still hold a due timer.
    current: u64,
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        TimerWheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            origin: Instant::now(),
            current: 0,
        }
    }
}

impl<T> TimerWheel<T> {
    fn tick_of(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / TICK.as_nanos()) as u64
    }

    pub fn schedule(&mut self, at: Instant, what: T) {
        // a deadline already past goes to the current slot: it fires at the next take_due
        let tick = self.tick_of(at).max(self.current);
        self.slots[(tick % SLOTS as u64) as usize].push((at, what));
    }

    /// Moves every timer whose deadline is at or before `now` into `due`.
    pub fn take_due(&mut self, now: Instant, due: &mut Vec<(Instant, T)>) {
        let target = self.tick_of(now);
        // each slot once, however long since the last call
        let visits = (target.saturating_sub(self.current) + 1).min(SLOTS as u64);
        for t in self.current..self.current + visits {
            let slot = &mut self.slots[(t % SLOTS as u64) as usize];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].0 <= now {
                    due.push(slot.swap_remove(i));
                } else {
                    i += 1; // later in this tick, or a later turn of the wheel
                }
            }
        }
        // the target tick's slot may still hold timers later within the tick
        self.current = self.current.max(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(w: &TimerWheel<u32>) -> usize {
        w.slots.iter().map(Vec::len).sum()
    }

    fn due(w: &mut TimerWheel<u32>, now: Instant) -> Vec<u32> {
        let mut d = vec![];
        w.take_due(now, &mut d);
        let mut v: Vec<u32> = d.into_iter().map(|(_, x)| x).collect();
        v.sort();
        v
    }

    #[test]
    fn fires_at_or_after_the_deadline_never_before() {
        let mut w = TimerWheel::default();
        let t0 = w.origin;
        let ms = Duration::from_millis;
        w.schedule(t0 + ms(25), 1);
        w.schedule(t0 + ms(21), 2);
        w.schedule(t0 + ms(500), 3);
        w.schedule(t0 + ms(32_000), 4);
        assert_eq!(due(&mut w, t0 + ms(20)), Vec::<u32>::new());
        // same 10 ms tick: only the one that is due
        assert_eq!(due(&mut w, t0 + ms(22)), vec![2]);
        assert_eq!(due(&mut w, t0 + ms(25)), vec![1]);
        assert_eq!(due(&mut w, t0 + ms(499)), Vec::<u32>::new());
        assert_eq!(pending(&w), 2);
        assert_eq!(due(&mut w, t0 + ms(600)), vec![3]);
        assert_eq!(due(&mut w, t0 + ms(31_999)), Vec::<u32>::new());
        assert_eq!(due(&mut w, t0 + ms(32_000)), vec![4]);
        assert_eq!(pending(&w), 0);
    }

    #[test]
    fn timers_beyond_one_turn_wait_for_their_turn() {
        let mut w = TimerWheel::default();
        let t0 = w.origin;
        let turn = TICK * SLOTS as u32;
        w.schedule(t0 + turn + Duration::from_millis(5), 1);
        w.schedule(t0 + turn * 3, 2);
        // passes its slot on the first turn without firing it
        let mut now = t0;
        while now < t0 + turn {
            now += TICK;
            assert_eq!(due(&mut w, now), Vec::<u32>::new(), "{:?}", now - t0);
        }
        assert_eq!(due(&mut w, t0 + turn + Duration::from_millis(10)), vec![1]);
        // a long pause (no calls for several turns) fires everything overdue at once
        assert_eq!(due(&mut w, t0 + turn * 5), vec![2]);
        assert_eq!(pending(&w), 0);
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_the_next_call() {
        let mut w = TimerWheel::default();
        let t0 = w.origin;
        let ms = Duration::from_millis;
        assert_eq!(due(&mut w, t0 + ms(1000)), Vec::<u32>::new());
        w.schedule(t0 + ms(10), 7);
        w.schedule(t0 + ms(1000), 8);
        assert_eq!(due(&mut w, t0 + ms(1000)), vec![7, 8]);
    }
}
