//! The call plan a proxied call carries when enterprise voice decides where it goes next:
//! failover between gateways (each branch carries the ways out after it), Lync's fast
//! failover timer, team members who ring after a delay, and where the call goes when nobody
//! answers, the user is busy or declines (forwarding, voicemail). The proxy (`proxy.rs`)
//! asks it when a branch ends; its timers come back through [`CallTimer`].

use crate::core::{Core, Shard, Target, TimerRef};
use crate::net::Outgoing;
use confab_sip::{HeaderName, Message, Text};
use std::time::{Duration, Instant};

/// A call plan's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTimer {
    /// Branch `idx` (a gateway) has not started ringing: try the next way out.
    FastFailover(usize),
    /// Nobody answered in time: stop ringing, go to the unanswered target.
    NoAnswer,
    /// The delayed target `i` (a team member) starts ringing.
    Delayed(usize),
}

/// What happens to a call beyond its first branches.
#[derive(Default)]
pub(crate) struct CallPlan {
    /// Targets that join later (team call): after the delay, if nobody answered yet.
    pub(crate) delayed: Vec<(Duration, Option<Target>)>,
    /// Ring this long before going to `unanswered` (None: ring until the callee answers).
    pub(crate) no_answer: Option<Duration>,
    /// Where a call nobody answered goes (forwarding on no answer, voicemail): started
    /// together, each with its own failover.
    pub(crate) unanswered: Vec<Target>,
    /// Where a call goes when the callee is busy (486).
    pub(crate) busy: Vec<Target>,
    /// Where a call goes when the callee declines (603).
    pub(crate) declined: Vec<Target>,
}

impl CallPlan {
    /// The call has gone somewhere else: no other hand-off after this one.
    fn handed_off(&mut self) {
        self.no_answer = None;
        self.unanswered.clear();
        self.busy.clear();
        self.declined.clear();
        for d in &mut self.delayed {
            d.1 = None;
        }
    }
}

/// Header changes for one branch.
#[derive(Default, Debug)]
pub struct Edits {
    /// A new From (name-addr, no tag): the original tag is kept.
    pub from: Option<String>,
    /// Headers replaced (every header of that name goes).
    pub set: Vec<(&'static str, String)>,
    /// Headers removed.
    pub remove: Vec<&'static str>,
    /// Headers added after the others of their name.
    pub add: Vec<(&'static str, String)>,
}

fn remove_named(m: &mut Message, name: &str) {
    m.headers
        .0
        .retain(|h| !h.name.as_str().eq_ignore_ascii_case(name));
}

impl Edits {
    pub fn apply(&self, m: &mut Message) {
        if let Some(from) = &self.from {
            let tag = m
                .from_hdr()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default();
            m.headers.set(HeaderName::From, format!("{from};tag={tag}"));
        }
        for name in &self.remove {
            remove_named(m, name);
        }
        for (name, value) in &self.set {
            remove_named(m, name);
            m.headers
                .push(HeaderName::parse(Text::from(*name)), value.clone());
        }
        for (name, value) in &self.add {
            m.headers
                .push(HeaderName::parse(Text::from(*name)), value.clone());
        }
    }
}

impl Core {
    /// Starts `t` (or, when it cannot be sent, the ways out after it) as a new branch of
    /// proxy context `pid`. False: nothing could be sent.
    pub(crate) fn start_alternative(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        mut t: Target,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> bool {
        loop {
            match self.add_branch(shard, shard_idx, pid, t, now, out) {
                Ok(()) => return true,
                Err((_, rest)) => match Target::chain(rest) {
                    Some(next) => t = next,
                    None => return false,
                },
            }
        }
    }

    /// Every branch ended with `status` as the best answer: the plan's hand-off for it, if
    /// it has one (busy, declined, unanswered). True when the call went on somewhere.
    pub(crate) fn plan_on_failure(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        status: u16,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> bool {
        let Some(plan) = shard.proxies.get_mut(&pid).and_then(|c| c.plan.as_mut()) else {
            return false;
        };
        let next = match status {
            486 => std::mem::take(&mut plan.busy),
            603 => std::mem::take(&mut plan.declined),
            // 600 Busy Everywhere ends the call; the rest (480, 408, 404, 5xx...) is a call
            // nobody answered
            600..=699 => vec![],
            _ => std::mem::take(&mut plan.unanswered),
        };
        if next.is_empty() {
            return false;
        }
        plan.handed_off();
        tracing::info!(status, "call handed off (forwarding or voicemail)");
        if let Some(ctx) = shard.proxies.get_mut(&pid) {
            ctx.best = None; // the new branches' answers are the call's
        }
        let mut started = false;
        for t in next {
            started |= self.start_alternative(shard, shard_idx, pid, t, now, out);
        }
        started
    }

    /// No first branch could be sent (or there was none: the user is offline): the plan's
    /// hand-off for a call nobody can answer.
    pub(crate) fn plan_on_no_branch(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> bool {
        // team members ring now: there is no one to wait for
        let delayed: Vec<Target> = shard
            .proxies
            .get_mut(&pid)
            .and_then(|c| c.plan.as_mut())
            .map(|p| p.delayed.iter_mut().filter_map(|d| d.1.take()).collect())
            .unwrap_or_default();
        let mut started = false;
        for t in delayed {
            started |= self.start_alternative(shard, shard_idx, pid, t, now, out);
        }
        started || self.plan_on_failure(shard, shard_idx, pid, 480, now, out)
    }

    /// Schedules the plan's own timers (no answer, delayed targets).
    pub(crate) fn arm_plan_timers(&self, shard: &mut Shard, pid: u64, now: Instant) {
        let Some(plan) = shard.proxies.get(&pid).and_then(|c| c.plan.as_ref()) else {
            return;
        };
        let mut at: Vec<(Instant, CallTimer)> = plan
            .delayed
            .iter()
            .enumerate()
            .filter(|(_, d)| d.1.is_some())
            .map(|(i, d)| (now + d.0, CallTimer::Delayed(i)))
            .collect();
        if let (Some(d), false) = (plan.no_answer, plan.unanswered.is_empty()) {
            at.push((now + d, CallTimer::NoAnswer));
        }
        for (when, t) in at {
            shard.schedule(when, TimerRef::Call(pid, t));
        }
    }

    /// Lync's fast failover for branch `idx`, when its gateway's trunk has it on.
    pub(crate) fn arm_fast_failover(&self, shard: &mut Shard, pid: u64, idx: usize, now: Instant) {
        let dest = shard
            .proxies
            .get(&pid)
            .and_then(|c| c.branches.get(idx))
            .and_then(|b| shard.client.get(&b.client_key))
            .map(|e| e.dest);
        let on = dest.is_some_and(|d| {
            self.policies
                .get()
                .voice()
                .gateway_for_dest(&d)
                .is_none_or(|g| g.fast_failover)
        });
        if on {
            let after = Duration::from_secs(self.cfg.voice.fast_failover_secs);
            shard.schedule(
                now + after,
                TimerRef::Call(pid, CallTimer::FastFailover(idx)),
            );
        }
    }

    /// A call plan's timer fired.
    pub(crate) fn call_timer(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        t: CallTimer,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(ctx) = shard.proxies.get_mut(&pid) else {
            return;
        };
        if ctx.final_sent || ctx.cancelled {
            return;
        }
        match t {
            CallTimer::FastFailover(idx) => {
                let Some(b) = ctx.branches.get_mut(idx) else {
                    return;
                };
                if b.final_status.is_some() || b.ringing || b.abandoned {
                    return;
                }
                // the last way out too: given up, the call ends when its CANCEL is answered
                b.abandoned = true;
                let next = Target::chain(std::mem::take(&mut b.failover));
                let key = b.client_key.clone();
                tracing::info!("gateway not ringing within the fast failover time: given up");
                self.cancel_branch(shard, shard_idx, pid, idx, &key, now, out);
                if let Some(next) = next {
                    self.start_alternative(shard, shard_idx, pid, next, now, out);
                }
            }
            CallTimer::NoAnswer => {
                let next = match ctx.plan.as_mut() {
                    Some(p) if !p.unanswered.is_empty() => {
                        let n = std::mem::take(&mut p.unanswered);
                        p.handed_off();
                        n
                    }
                    _ => return,
                };
                tracing::info!("call not answered in time: handed off");
                let pending = ctx.pending_branches(None);
                for (i, _) in &pending {
                    ctx.branches[*i].abandoned = true;
                }
                ctx.best = None;
                for (i, k) in pending {
                    self.cancel_branch(shard, shard_idx, pid, i, &k, now, out);
                }
                for t in next {
                    self.start_alternative(shard, shard_idx, pid, t, now, out);
                }
            }
            CallTimer::Delayed(i) => {
                let Some(next) = ctx
                    .plan
                    .as_mut()
                    .and_then(|p| p.delayed.get_mut(i))
                    .and_then(|d| d.1.take())
                else {
                    return;
                };
                self.start_alternative(shard, shard_idx, pid, next, now, out);
            }
        }
    }
}
