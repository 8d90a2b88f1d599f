//! The pool's background work: writing this front end's binding changes (batched: one
//! transaction takes whatever waits), following the others' changes, the heartbeat and
//! membership, offline messages stored elsewhere, and pruning old rows. Store calls run on
//! blocking threads; what they cause is sent like the timer tick's output.

use super::{address_text, parse_address, Member, Pool, Shared};
use crate::core::{Core, Job};
use crate::transport::Transports;
use confab_store::pool::{DEAD_AFTER_MS, KEEP_REMOVED_MS};
use confab_store::{FrontEnd, LiveSession, SharedPublication, Store};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows read per poll (a front end far behind catches up over a few polls).
const POLL_ROWS: usize = 10_000;
/// Binding changes written per transaction at most.
const WRITE_BATCH: usize = 2_048;
/// Live sessions are reported every this many heartbeats (seconds).
const SESSIONS_EVERY: u64 = 2;

/// The front end's record for the store at `now_ms`.
fn record(core: &Core, pool: &Pool, state: &str, now_ms: i64) -> FrontEnd {
    let load = serde_json::json!({
        "registrations": core.location.count_own_bindings(),
        "subscriptions": core.presence.subscription_count(),
        "connections": pool.connections.load(Ordering::Relaxed),
        "calls": core.active_calls(),
        "transactions": core.transactions(),
        "meetings": core.focus.meetings(),
    });
    FrontEnd {
        name: pool.name.to_string(),
        address: pool.address.as_ref().map(address_text).unwrap_or_default(),
        site: core.cfg.site.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: pool.started_ms,
        heartbeat_at: now_ms,
        state: state.to_string(),
        load: load.to_string(),
    }
}

/// Joins the pool at start, before serving: the connections this front end held before a
/// restart are gone (their bindings removed), then the whole shared location is read —
/// the others' bindings as remote ones, this front end's own that survive (reached at
/// their address) as its own.
pub fn join(core: &Core, store: &Store) -> Result<(usize, usize), confab_store::StoreError> {
    let Some(pool) = &core.pool else {
        return Ok((0, 0));
    };
    // two live front ends with one name would take each other's rows for their own
    let mine = pool.address.as_ref().map(address_text).unwrap_or_default();
    let now_ms = crate::clock::real_unix_ms();
    if let Some(twin) = store
        .front_ends()?
        .into_iter()
        .find(|f| *f.name == *pool.name && f.alive(now_ms) && f.address != mine)
    {
        return Err(confab_store::StoreError::Invalid(format!(
            "another front end named {} is running at {} (give each front end its own [pool] name)",
            twin.name, twin.address
        )));
    }
    let dropped = store.drop_flows_of(&pool.name)?;
    // meetings it hosted ended with it
    store.release_meetings(None, &pool.name)?;
    if dropped > 0 {
        tracing::info!("{dropped} registrations over connections closed by the restart removed");
    }
    // the others first: what a dead one held over its connections is not taken in
    refresh_members(core, pool, &store.front_ends()?, now_ms);
    let (counts, _) = read_whole(core, pool, store, true, Instant::now(), now_ms)?;
    let newest = store.newest_message_id()?;
    pool.messages_seen.store(newest, Ordering::Relaxed);
    store.heartbeat(&record(core, pool, "Active", now_ms))?;
    Ok(counts)
}

/// Reads the whole shared location and the shared publications into memory and moves the
/// followers' marks to where they were read. At start (`starting`) this front end's own rows
/// are taken back as its own; otherwise (a follower that fell behind) the other front ends'
/// entries in memory are dropped first and its own rows are skipped (memory has them).
/// Returns how many bindings and publications were read, and the presentities whose
/// presence may have changed.
fn read_whole(
    core: &Core,
    pool: &Pool,
    store: &Store,
    starting: bool,
    now: Instant,
    now_ms: i64,
) -> Result<((usize, usize), Vec<String>), confab_store::StoreError> {
    let mut touched = vec![];
    if !starting {
        touched.extend(core.location.remove_where(|b| b.owner.is_some()));
        touched.extend(core.presence.drop_owned_by(|_| true));
    }
    // front ends known dead: their connections' bindings and their publications went
    // with them (as refresh_members drops them when it sees one die)
    let dead: Vec<String> = pool
        .members
        .read()
        .iter()
        .filter(|(_, m)| !m.beating)
        .map(|(name, _)| name.to_string())
        .collect();
    let of_dead = |fe: &str| dead.iter().any(|d| d == fe);
    let seq = store.registrations_seq()?;
    let rows = store.registrations(None, now_ms)?;
    for r in &rows {
        let own = r.front_end == *pool.name;
        if !own && r.flow.is_some() && of_dead(&r.front_end) {
            continue;
        }
        if (starting || !own) && core.apply_shared(r, own, now, now_ms) {
            touched.push(r.aor.clone());
        }
    }
    pool.applied.store(seq, Ordering::Relaxed);
    let (pubs, pub_seq) = store.publications(now_ms)?;
    for p in &pubs {
        let own = p.front_end == *pool.name;
        if !own && of_dead(&p.front_end) {
            continue;
        }
        if (starting || !own) && apply_publication(core, p, own, now, now_ms) {
            touched.push(p.presentity.clone());
        }
    }
    pool.applied_pubs.store(pub_seq, Ordering::Relaxed);
    touched.sort();
    touched.dedup();
    Ok(((rows.len(), pubs.len()), touched))
}

/// A shared publication applied here; whether the presentity's documents changed.
fn apply_publication(
    core: &Core,
    p: &SharedPublication,
    own: bool,
    now: Instant,
    now_ms: i64,
) -> bool {
    let until = (!p.removed() && p.expires_at > now_ms)
        .then(|| core.wall.instant_of_unix_ms(p.expires_at, now));
    core.presence.apply_shared(p, own, until)
}

/// What this front end reports of its live sessions: each party of a call it proxied that
/// is one of our users, each watcher's subscription, each identified meeting participant.
fn live_sessions(core: &Core, pool: &Pool, now: Instant, now_ms: i64) -> Vec<LiveSession> {
    use confab_store::pool::MAX_LIVE_SESSIONS as MAX;
    let at = |t: Instant| now_ms - now.saturating_duration_since(t).as_millis() as i64;
    let row = |kind: &str, user: String, peer: String, since: i64| LiveSession {
        front_end: pool.name.to_string(),
        kind: kind.to_string(),
        user_key: user,
        peer,
        since,
    };
    let mut out = vec![];
    for (since, caller, callee) in core.calls_up(MAX) {
        let peer = |p: &Option<String>| p.clone().unwrap_or_else(|| "(outside)".into());
        if let Some(c) = &caller {
            out.push(row("Call", c.clone(), peer(&callee), at(since)));
        }
        if let Some(c) = &callee {
            out.push(row("Call", c.clone(), peer(&caller), at(since)));
        }
    }
    for (watcher, presentity, package) in core.presence.subscriptions_list(MAX) {
        out.push(row(
            "Subscription",
            watcher,
            format!("{presentity} ({})", package.event()),
            now_ms,
        ));
    }
    for (user, meeting, joined) in core.meeting_seats(MAX) {
        out.push(row("Meeting", user, meeting, at(joined)));
    }
    out.truncate(MAX);
    out
}

/// A clean stop: recorded as `Stopped`, so the others stop sending here at once; the
/// bindings over this front end's connections are removed (the connections close).
pub fn leave(core: &Core) -> Result<(), confab_store::StoreError> {
    let (Some(pool), Some(store)) = (&core.pool, &core.store) else {
        return Ok(());
    };
    store.heartbeat(&record(core, pool, "Stopped", crate::clock::real_unix_ms()))?;
    store.replace_live_sessions(&pool.name, &[])?;
    store.drop_flows_of(&pool.name)?;
    store.release_meetings(None, &pool.name)?;
    Ok(())
}

/// Takes the list of front ends: who is alive, and (for a front end that died) its
/// connections' bindings removed here. Returns the AoRs left with no binding, and the
/// front ends that died.
fn refresh_members(
    core: &Core,
    pool: &Pool,
    all: &[FrontEnd],
    now_ms: i64,
) -> (Vec<String>, Vec<String>) {
    let mut died = vec![];
    {
        let mut members = pool.members.write();
        let mut seen = std::collections::HashSet::new();
        for fe in all.iter().filter(|f| *f.name != *pool.name) {
            seen.insert(fe.name.as_str());
            let Some(dest) = parse_address(&fe.address) else {
                continue;
            };
            let unreachable_at = members
                .get(fe.name.as_str())
                .and_then(|m| m.unreachable_at)
                .filter(|t| fe.heartbeat_at <= *t);
            // a request that could not reach it stops sending to it at once; its death
            // (what it held dropped) is its heartbeat's silence
            let beating = fe.alive(now_ms);
            let alive = beating && unreachable_at.is_none();
            let was = members.get(fe.name.as_str()).map(|m| (m.alive, m.beating));
            if was.is_some_and(|(_, b)| b) && !beating {
                tracing::warn!(front_end = %fe.name, "front end of the pool stopped or silent: its connections' users must register again");
                died.push(fe.name.clone());
            }
            if was.is_none_or(|(a, _)| !a) && alive {
                tracing::info!(front_end = %fe.name, address = %fe.address, "front end of the pool is up");
            }
            members.insert(
                fe.name.as_str().into(),
                Member {
                    dest,
                    alive,
                    beating,
                    unreachable_at,
                },
            );
        }
        members.retain(|name, _| seen.contains(&**name));
    }
    core.defence.set_pool_peers(pool.member_ips());
    if died.is_empty() {
        return (vec![], died);
    }
    let mut touched = core.location.remove_where(|b| {
        b.flow.is_some()
            && b.owner
                .as_deref()
                .is_some_and(|o| died.iter().any(|d| d == o))
    });
    touched.extend(core.presence.drop_owned_by(|o| died.iter().any(|d| d == o)));
    touched.sort();
    touched.dedup();
    (touched, died)
}

/// Runs the pool's background work until the process ends.
pub async fn run(
    core: Arc<Core>,
    t: Arc<Transports>,
    store: Arc<Store>,
    mut writes: tokio::sync::mpsc::Receiver<Shared>,
    poll_every: Duration,
) {
    let Some(pool_name) = core.pool.as_ref().map(|p| p.name.clone()) else {
        return;
    };
    let mut poll = tokio::time::interval(poll_every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut beat = tokio::time::interval(Duration::from_secs(1));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_ok = Instant::now();
    let mut last_poll_ok = Instant::now();
    let mut beats = 0u64;
    let mut out = vec![];
    loop {
        tokio::select! {
            first = writes.recv() => {
                let Some(first) = first else { return };
                let mut batch = vec![first];
                while batch.len() < WRITE_BATCH {
                    match writes.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let s = store.clone();
                let write = move || {
                    let (mut regs, mut pubs) = (vec![], vec![]);
                    for c in batch {
                        match c {
                            Shared::Binding(r) => regs.push(r),
                            Shared::Publication(p) => pubs.push(p),
                        }
                    }
                    s.write_registrations(&regs)?;
                    s.write_publications(&pubs)
                };
                match tokio::task::spawn_blocking(write).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("shared location: writing binding changes: {e}"),
                    Err(_) => tracing::error!("internal error while writing binding changes"),
                }
            }
            _ = poll.tick() => {
                let (c, s) = (core.clone(), store.clone());
                // far behind (the rows it missed may be pruned): read everything again
                let resync = last_poll_ok.elapsed() > Duration::from_millis(KEEP_REMOVED_MS as u64 / 2);
                let done = tokio::task::spawn_blocking(move || follow(&c, &s, resync)).await;
                match done {
                    Ok(Ok((jobs, offline))) => {
                        last_poll_ok = Instant::now();
                        let now = Instant::now();
                        core.run_jobs(jobs, now, &mut out);
                        for aor in offline {
                            core.deliver_offline(&aor, now);
                        }
                        t.dispatch(&mut out).await;
                    }
                    Ok(Err(e)) => tracing::warn!("shared location: reading changes: {e}"),
                    Err(_) => tracing::error!("internal error while reading the shared location"),
                }
            }
            _ = beat.tick() => {
                beats += 1;
                if let Some(p) = &core.pool {
                    p.connections.store(t.connection_count(), Ordering::Relaxed);
                }
                let (c, s) = (core.clone(), store.clone());
                let prune = beats.is_multiple_of(30);
                let report = beats.is_multiple_of(SESSIONS_EVERY);
                let done = tokio::task::spawn_blocking(move || {
                    let pool = c.pool.as_ref().expect("pool");
                    let now_ms = crate::clock::real_unix_ms();
                    let state = if pool.is_isolated() { "Isolated" } else { "Active" };
                    s.heartbeat(&record(&c, pool, state, now_ms))?;
                    if report {
                        s.replace_live_sessions(&pool.name, &live_sessions(&c, pool, Instant::now(), now_ms))?;
                    }
                    let all = s.front_ends()?;
                    if prune {
                        s.prune_registrations()?;
                    }
                    Ok::<_, confab_store::StoreError>(refresh_members(&c, pool, &all, now_ms))
                })
                .await;
                let pool = core.pool.as_ref().expect("pool");
                match done {
                    Ok(Ok((emptied, died))) => {
                        last_ok = Instant::now();
                        if pool.isolated.swap(false, Ordering::Relaxed) {
                            tracing::warn!(front_end = %pool_name, "the store answers again: taking new work");
                        }
                        let now = Instant::now();
                        let jobs = emptied.into_iter().map(Job::NotifyWatchers).collect();
                        core.run_jobs(jobs, now, &mut out);
                        core.end_seats_hosted_by(&died, now, &mut out);
                        t.dispatch(&mut out).await;
                    }
                    Ok(Err(e)) => tracing::warn!("pool heartbeat: {e}"),
                    Err(_) => tracing::error!("internal error in the pool heartbeat"),
                }
                // cut off for as long as the others take to call it dead: stop taking work
                if last_ok.elapsed() > Duration::from_millis(DEAD_AFTER_MS as u64)
                    && !pool.isolated.swap(true, Ordering::Relaxed)
                {
                    tracing::error!(front_end = %pool_name, "cannot reach the store: refusing new work (503) until it answers");
                }
            }
        }
    }
}

/// Reads one table's changes after `applied` in batches until none are left, applying them
/// (`apply` names the presentity whose presence changed) and moving `applied` on.
fn follow_changes<T>(
    applied: &std::sync::atomic::AtomicI64,
    jobs: &mut Vec<Job>,
    read: impl Fn(i64) -> Result<(Vec<T>, i64), confab_store::StoreError>,
    apply: impl Fn(&T) -> Option<String>,
) -> Result<(), confab_store::StoreError> {
    loop {
        let from = applied.load(Ordering::Relaxed);
        let (rows, seen) = read(from)?;
        for r in &rows {
            jobs.extend(apply(r).map(Job::NotifyWatchers));
        }
        applied.store(seen, Ordering::Relaxed);
        if rows.len() < POLL_ROWS || seen <= from {
            return Ok(());
        }
    }
}

/// Reads the others' binding and publication changes since the last poll and applies
/// them; returns the presence jobs they cause and the users with offline messages stored
/// elsewhere.
fn follow(
    core: &Core,
    store: &Store,
    resync: bool,
) -> Result<(Vec<Job>, Vec<String>), confab_store::StoreError> {
    let pool = core.pool.as_ref().expect("pool");
    let mut jobs = vec![];
    let (now, now_ms) = (Instant::now(), crate::clock::real_unix_ms());
    if resync {
        tracing::warn!("shared location: reading it again whole (fell behind)");
        let (_, touched) = read_whole(core, pool, store, false, now, now_ms)?;
        jobs.extend(touched.into_iter().map(Job::NotifyWatchers));
    } else {
        follow_changes(
            &pool.applied,
            &mut jobs,
            |from| store.registrations_since(from, &pool.name, POLL_ROWS),
            |r| {
                core.apply_shared(r, false, now, now_ms)
                    .then(|| r.aor.clone())
            },
        )?;
        follow_changes(
            &pool.applied_pubs,
            &mut jobs,
            |from| store.publications_since(from, &pool.name, POLL_ROWS),
            |p| apply_publication(core, p, false, now, now_ms).then(|| p.presentity.clone()),
        )?;
    }
    // users who signed in through another front end while messages this one knows of wait
    // for them (stored here, say, and read by the other before it committed): delivered
    // from here, through that front end (the store's claim keeps it to once)
    let mut offline: Vec<String> = {
        let pending = core.offline_pending.lock();
        jobs.iter()
            .filter_map(|j| match j {
                Job::NotifyWatchers(aor) if pending.contains(aor) => Some(aor.clone()),
                _ => None,
            })
            .collect()
    };
    // messages another front end stored: one of the front ends delivers (a claim)
    let seen = pool.messages_seen.load(Ordering::Relaxed);
    let stored = store.messages_since(seen)?;
    if let Some(newest) = stored.iter().map(|m| m.1).max() {
        pool.messages_seen.store(newest, Ordering::Relaxed);
        let mut own = pool.own_messages.lock();
        let mut pending = core.offline_pending.lock();
        for (aor, id) in stored {
            // stored here: this front end already knows (and may be delivering it)
            if own.remove(&id) {
                continue;
            }
            pending.insert(aor.clone());
            offline.push(aor);
        }
        // those gone before this read (delivered already) are not waited for any longer
        own.retain(|id| *id > newest);
    }
    Ok((jobs, offline))
}
