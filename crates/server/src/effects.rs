//! Store I/O as *effects*, run by a small worker pool off the receive loops.
//!
//! The core never calls the store under a shard lock or on a receive thread. Where a
//! request or a timer needs the store (keep a message for an offline user, read or delete
//! the next stored message, write an audit entry, reload the configuration and contact
//! lists), the core queues an [`Effect`] and, for a request, leaves its server
//! transaction without an answer. A worker runs the effect ([`Core::run_effect`]: only
//! store calls, no lock of the core held) and feeds the [`Completion`] back in
//! ([`Core::complete_at`]), which takes the shard lock again and answers: the `202` for
//! a stored message is sent only after the store committed it.
//!
//! The queue is bounded: an effect a request causes (storing a message, an audit entry)
//! is refused when [`EFFECT_QUEUE`] are waiting, and the request is answered 503 with
//! Retry-After instead. The effects of delivering stored messages are not refused (a
//! refusal would lose track of a delivery under way); they are bounded by themselves, one
//! delivery per recipient at a time, and one reload waiting at a time.
//!
//! The server runs [`STORE_WORKERS`] workers (`server.rs`); a test harness drains the
//! queue itself with [`Core::run_pending_effects`].

use crate::core::{Core, Job};
use crate::net::Outgoing;
use confab_sip::{HeaderName, Message};
use confab_store::{Claim, StoreError};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Effects a request may have waiting before the next one is answered 503.
pub const EFFECT_QUEUE: usize = 1024;
/// Workers running effects (each one store call at a time).
pub const STORE_WORKERS: usize = 4;

/// Runs a store call whose completion a transaction or a delivery waits for; a panic in it
/// becomes an error, so the request is still answered (500) and the delivery state is
/// released instead of waiting forever.
fn unpanicked<T>(what: &str, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("internal error (panic) while {what}");
        Err(StoreError::Invalid(format!("internal error while {what}")))
    })
}

/// Store work the core asked for.
#[derive(Debug)]
pub enum Effect {
    /// Keep a MESSAGE for an offline user, then answer server transaction `key`.
    StoreMessage {
        shard: usize,
        key: String,
        req: Box<Message>,
        user: String,
        domain: String,
        sender: String,
        content_type: String,
        extra_headers: String,
    },
    /// Read the oldest stored message of `aor` (its delivery is marked under way).
    FetchOffline { aor: String },
    /// A stored message was delivered (2xx): delete it, then deliver the next.
    DeleteDelivered { aor: String, id: i64 },
    /// A refusal by policy for the audit log.
    Audit {
        origin: String,
        command: String,
        result: String,
    },
    /// Read the configuration, server applications and contact lists again if changed.
    Reload,
    /// Read the meeting an INVITE to a conference URI joins, then answer its server
    /// transaction (the focus decides: join, lobby or refusal).
    Join(Box<crate::focus::JoinRequest>),
    /// A live meeting hosted here ended (the pool's record of its host goes).
    MeetingEnded { key: String },
    /// A meeting was used (its expiry counts from its last use).
    TouchMeeting { id: i64 },
    /// Delete the meetings expired at `now` (Unix seconds).
    ExpireMeetings { now: i64 },
    /// The meeting a dial-in caller's conference ID names (attendant participant `id`).
    FindConference { id: u32, conference_id: String },
    /// A dial-in leader's extension or number and PIN (attendant participant `id`).
    VerifyPin {
        id: u32,
        number: String,
        pin: String,
        /// The meeting's organizer (`user@domain`): with PinAuthType OrganizerOnly the only
        /// leader taken.
        organizer: String,
        organizer_only: bool,
    },
    /// Speech (prompts, names) made audio and played to a leg or a meeting.
    Speak {
        to: crate::focus::SpeechTo,
        lang: String,
        parts: Vec<crate::focus::SpeechPart>,
    },
}

/// What an effect found, fed back into the core.
#[derive(Debug)]
pub enum Completion {
    Stored {
        shard: usize,
        key: String,
        req: Box<Message>,
        aor: String,
        result: Result<i64, StoreError>,
    },
    Fetched {
        aor: String,
        result: Result<Claim, StoreError>,
    },
    Deleted {
        aor: String,
        id: i64,
        result: Result<bool, StoreError>,
    },
    /// Presentities whose contact lists changed.
    Reloaded {
        owners: Vec<String>,
    },
    /// The meeting a join asked for.
    /// (In a pool: the live meeting's host when another front end is.)
    Joined(
        Box<crate::focus::JoinRequest>,
        Result<Option<confab_store::Meeting>, StoreError>,
        Option<String>,
    ),
    /// The meeting of a dial-in caller's conference ID: none, or one this front end may
    /// host, or (`Elsewhere`) one live on another front end of the pool.
    ConferenceFound {
        id: u32,
        result: Result<crate::focus::Lookup, StoreError>,
    },
    /// A dial-in leader's PIN, checked.
    PinVerified {
        id: u32,
        verified: crate::focus::attendant::Verified,
    },
    Done,
}

/// The bounded queue between the core and the workers.
#[derive(Default)]
pub struct EffectQueue {
    q: Mutex<VecDeque<Effect>>,
    ready: tokio::sync::Notify,
}

impl EffectQueue {
    /// Queues `e`; a `bounded` effect is refused (false) when the queue is full.
    pub(crate) fn push(&self, e: Effect, bounded: bool) -> bool {
        let mut q = self.q.lock();
        if bounded && q.len() >= EFFECT_QUEUE {
            return false;
        }
        q.push_back(e);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// The next effect, if any.
    pub fn pop(&self) -> Option<Effect> {
        self.q.lock().pop_front()
    }

    /// Waits for the next effect.
    pub async fn next(&self) -> Effect {
        loop {
            if let Some(e) = self.pop() {
                return e;
            }
            // a push between pop and here leaves a permit: no wake-up is lost
            self.ready.notified().await;
        }
    }

    pub fn len(&self) -> usize {
        self.q.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Core {
    /// Runs one effect: store calls only, no lock of the core held. Blocking: a worker
    /// thread's job.
    pub fn run_effect(&self, e: Effect) -> Completion {
        let Some(store) = self.store.as_deref() else {
            return Completion::Done;
        };
        match e {
            Effect::StoreMessage {
                shard,
                key,
                req,
                user,
                domain,
                sender,
                content_type,
                extra_headers,
            } => {
                let limits = &self.cfg.im;
                let result = unpanicked("storing a message", || {
                    store.store_message(
                        &user,
                        &domain,
                        &sender,
                        &content_type,
                        &req.body,
                        &extra_headers,
                        limits.max_stored_per_user,
                        limits.max_stored_bytes_per_user,
                    )
                });
                Completion::Stored {
                    shard,
                    key,
                    req,
                    aor: crate::users::user_key(&user, &domain),
                    result,
                }
            }
            Effect::FetchOffline { aor } => {
                let (user, domain) = aor.rsplit_once('@').unwrap_or((&aor, ""));
                let result = unpanicked("reading a stored message", || match &self.pool {
                    // in a pool, one front end delivers each message: a claim
                    Some(pool) => store.claim_message(&aor, &pool.name, crate::pool::CLAIM_MS),
                    None => store.pending_messages(user, domain, 1).map(|mut v| {
                        if v.is_empty() {
                            Claim::Empty
                        } else {
                            Claim::Message(v.remove(0))
                        }
                    }),
                });
                Completion::Fetched { aor, result }
            }
            Effect::DeleteDelivered { aor, id } => Completion::Deleted {
                result: unpanicked("deleting a delivered message", || store.delete_message(id)),
                aor,
                id,
            },
            Effect::Audit {
                origin,
                command,
                result,
            } => {
                if let Err(e) = store.append_audit("confab", &origin, &command, false, &result) {
                    tracing::warn!(%origin, %command, %result, "writing the audit log: {e}");
                }
                Completion::Done
            }
            Effect::Reload => {
                // taken: the next sweep may queue another (one waiting, one running at most;
                // a reload that failed or panicked does not stop the next)
                self.reload_queued.store(false, Ordering::Release);
                if let Err(e) = self.reload_policies(store) {
                    tracing::warn!("reloading policies: {e}");
                }
                if let Err(e) = self.scripts.refresh(store) {
                    tracing::warn!("reloading server applications: {e}");
                }
                let owners = match self.privacy.refresh(store) {
                    Ok(owners) => owners,
                    Err(e) => {
                        tracing::warn!("reloading contact lists: {e}");
                        vec![]
                    }
                };
                Completion::Reloaded { owners }
            }
            Effect::Join(j) => {
                let meeting = unpanicked("reading a meeting", || store.meeting_by_key(&j.conf.key));
                // in a pool, one front end hosts a live meeting: this one, or the one that
                // already does (the INVITE goes there)
                let host = match (&meeting, &self.pool) {
                    (Ok(Some(m)), Some(pool)) => match store.host_meeting(&m.key, &pool.name) {
                        Ok(h) => h,
                        Err(e) => {
                            tracing::warn!(meeting = %m.key, "recording the meeting's host: {e}");
                            None
                        }
                    },
                    _ => None,
                };
                Completion::Joined(j, meeting, host)
            }
            Effect::MeetingEnded { key } => {
                if let Some(pool) = &self.pool {
                    if let Err(e) = store.release_meetings(Some(&key), &pool.name) {
                        tracing::warn!(meeting = %key, "releasing the meeting's host: {e}");
                    }
                }
                Completion::Done
            }
            Effect::ExpireMeetings { now } => {
                match store.expire_meetings(now) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("{n} expired meetings removed"),
                    Err(e) => tracing::warn!("removing expired meetings: {e}"),
                }
                Completion::Done
            }
            Effect::FindConference { id, conference_id } => Completion::ConferenceFound {
                id,
                result: unpanicked("reading a meeting by conference ID", || {
                    let m = store.meeting_by_conference_id(&conference_id)?;
                    // in a pool the caller joins here: this front end hosts the meeting,
                    // unless another already does (not reachable from this attendant)
                    use crate::focus::Lookup;
                    match (m, &self.pool) {
                        (Some(m), Some(pool)) => match store.host_meeting(&m.key, &pool.name)? {
                            None => Ok(Lookup::Found(Box::new(m))),
                            Some(host) => {
                                tracing::warn!(meeting = %m.key, front_end = %host, "dial-in: the meeting is live on another front end of the pool, which this attendant cannot reach");
                                Ok(Lookup::Elsewhere)
                            }
                        },
                        (Some(m), None) => Ok(Lookup::Found(Box::new(m))),
                        (None, _) => Ok(Lookup::Unknown),
                    }
                }),
            },
            Effect::VerifyPin {
                id,
                number,
                pin,
                organizer,
                organizer_only,
            } => {
                use crate::focus::attendant::Verified;
                let now = self.wall.unix_at(Instant::now()) as i64;
                let checked = unpanicked("checking a PIN", || {
                    let Some(u) = store.user_by_number(&number)? else {
                        return Ok(Verified::Wrong);
                    };
                    if !u.enabled {
                        return Ok(Verified::Wrong);
                    }
                    let key = crate::users::user_key(&u.username, &u.domain);
                    let policy = self.policies.get().pin_policy(&key);
                    let (max, lifetime) = (policy.max_failures(), policy.lifetime_days());
                    let check = store.verify_client_pin(&key, &pin, max, lifetime, now)?;
                    tracing::debug!(user = %key, ?check, max, "dial-in PIN verified by the store");
                    Ok(match check {
                        confab_store::pins::PinCheck::Valid
                            if !organizer_only || key == organizer =>
                        {
                            Verified::Leader(key)
                        }
                        confab_store::pins::PinCheck::LockedOut => Verified::Locked,
                        _ => Verified::Wrong,
                    })
                });
                Completion::PinVerified {
                    id,
                    verified: checked.unwrap_or_else(|e| {
                        tracing::error!("checking a dial-in PIN: {e}");
                        Verified::Wrong
                    }),
                }
            }
            Effect::Speak { to, lang, parts } => {
                self.run_speech(to, &lang, parts);
                Completion::Done
            }
            Effect::TouchMeeting { id } => {
                if let Err(e) = store.touch_meeting(id, self.wall.unix_at(Instant::now()) as i64) {
                    tracing::warn!(meeting = id, "recording a meeting's use: {e}");
                }
                Completion::Done
            }
        }
    }

    /// Feeds a completed effect back in at `now`; what it causes is appended to `out`.
    pub fn complete_at(&self, c: Completion, now: Instant, out: &mut Vec<Outgoing>) {
        match c {
            Completion::Stored {
                shard: idx,
                key,
                req,
                aor,
                result,
            } => {
                let mut jobs = vec![];
                if result.is_ok() {
                    self.offline_pending.lock().insert(aor.clone());
                    // the recipient may have registered while the store wrote
                    jobs.push(Job::DeliverOffline(aor.clone()));
                }
                let mut shard = self.shards[idx].lock();
                match result {
                    Ok(id) => {
                        tracing::info!(to = %aor, id, "stored message for offline user");
                        if let Some(pool) = &self.pool {
                            pool.own_messages.lock().insert(id);
                        }
                        let r = Some("Accepted (stored for delivery)");
                        self.reply(&mut shard, &key, &req, 202, r, now, out);
                    }
                    Err(StoreError::MailboxFull { reason, .. }) => {
                        let r = format!("Recipient's message store is full ({reason})");
                        self.reply(&mut shard, &key, &req, 486, Some(&r), now, out);
                    }
                    Err(e) => {
                        tracing::error!("storing an offline message: {e}");
                        let r = Some("Could not store the message");
                        self.reply(&mut shard, &key, &req, 500, r, now, out);
                    }
                }
                self.unlock_and_run(shard, now, out);
                self.run_jobs(jobs, now, out);
            }
            Completion::Fetched { aor, result } => match result {
                Ok(Claim::Message(m)) => self.deliver_stored(&aor, m, now, out),
                Ok(Claim::Empty) => {
                    self.offline_pending.lock().remove(&aor);
                    self.offline_delivering.lock().remove(&aor);
                }
                // another front end of the pool delivers it; if it fails, the next
                // registration here tries again
                Ok(Claim::HeldElsewhere) => {
                    self.offline_delivering.lock().remove(&aor);
                }
                Err(e) => {
                    tracing::error!("reading stored messages: {e}");
                    self.offline_delivering.lock().remove(&aor);
                }
            },
            Completion::Deleted { aor, id, result } => {
                self.offline_delivering.lock().remove(&aor);
                match result {
                    Ok(_) => self.run_jobs(vec![Job::DeliverOffline(aor)], now, out),
                    Err(e) => tracing::error!("deleting delivered message {id}: {e}"),
                }
            }
            Completion::Reloaded { owners } => {
                self.run_jobs(
                    owners.into_iter().map(Job::NotifyWatchers).collect(),
                    now,
                    out,
                );
            }
            Completion::Joined(j, meeting, host) => self.complete_join(*j, meeting, host, now, out),
            Completion::ConferenceFound { id, result } => {
                self.conference_found(id, result, now, out)
            }
            Completion::PinVerified { id, verified } => self.pin_verified(id, verified, now, out),
            Completion::Done => {}
        }
    }

    /// Runs every queued effect here and now, and what they cause (for tests and tools
    /// that have no worker pool).
    pub fn run_pending_effects(&self, now: Instant, out: &mut Vec<Outgoing>) -> usize {
        let mut n = 0;
        // bounded: each effect may queue at most a few more (the next delivery)
        while n < 16 * EFFECT_QUEUE {
            let Some(e) = self.effects.pop() else { break };
            let c = self.run_effect(e);
            self.complete_at(c, now, out);
            n += 1;
        }
        n
    }

    /// Queues an effect a request caused; false (and the caller answers 503) when full.
    pub(crate) fn submit(&self, e: Effect) -> bool {
        self.effects.push(e, true)
    }

    /// Queues an effect of a delivery under way (bounded by one per recipient).
    pub(crate) fn submit_internal(&self, e: Effect) {
        self.effects.push(e, false);
    }

    /// Answers a request 503 with Retry-After because the store's queue is full.
    pub(crate) fn reply_store_busy(
        &self,
        shard: &mut crate::core::Shard,
        key: &str,
        req: &Message,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let mut resp = self.error_response(req, 503, "Service Unavailable (store busy)");
        resp.headers.push(HeaderName::RetryAfter, "1");
        self.respond(shard, key, resp, now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::unpanicked;

    #[test]
    fn a_panicking_store_call_becomes_an_error() {
        let r: Result<i64, _> = unpanicked("testing", || panic!("boom"));
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("internal error while testing"));
        assert_eq!(unpanicked("testing", || Ok(7)).unwrap(), 7);
    }
}
