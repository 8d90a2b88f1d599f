//! The pool (docs/pool.md): several front ends on one store.
//!
//! - `front_ends`: each front end's name, the address the others forward to, its state and
//!   a heartbeat written every second. A front end whose heartbeat is older than
//!   [`DEAD_AFTER_MS`] is dead: the others stop sending to the connections it held.
//! - `registrations`: the shared location, one row per binding, written by the front end
//!   that took the REGISTER (which holds the binding's connection, its *flow*). Every
//!   change gets the next `seq` (assigned under a lock, so the order of `seq` is the order
//!   of commits) and the others follow with [`Store::registrations_since`]. A removed
//!   binding stays a while as a tombstone (`expires_at` 0) so followers see the removal.
//! - offline messages are claimed by the front end delivering them (a lease), so a message
//!   is delivered by one front end, once.

use crate::db::{vals, Backend, Conn, Row, Value};
use crate::messages::{message_from_row, MESSAGE_COLUMNS};
use crate::{now_ms, Store, StoreError, StoredMessage};

/// A front end whose heartbeat is older than this is dead (milliseconds).
pub const DEAD_AFTER_MS: i64 = 5_000;
/// Tombstones and expired rows are deleted this long after they changed (milliseconds):
/// a follower that has not read the changes for longer reloads everything.
pub const KEEP_REMOVED_MS: i64 = 60_000;
/// Key of the advisory lock that orders registration writes on PostgreSQL.
const PG_LOCATION_LOCK: i64 = 0x636f_6e66_6c6f; // "confl o"

/// One front end of the pool, as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontEnd {
    pub name: String,
    /// `transport:ip:port` of its SIP listener for the others (`tcp:127.0.0.2:5060`).
    pub address: String,
    pub site: Option<String>,
    pub version: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// `Active`, `Stopped` (shut down cleanly) or `Isolated` (lost the store: refuses work).
    pub state: String,
    /// JSON object of counters (registrations, connections, …).
    pub load: String,
}

impl FrontEnd {
    /// Alive at `now_ms`: active, with a recent heartbeat.
    pub fn alive(&self, now_ms: i64) -> bool {
        self.state == "Active" && now_ms - self.heartbeat_at <= DEAD_AFTER_MS
    }

    /// The pool it belongs to: its site's (`Global` without one).
    pub fn pool(&self) -> &str {
        self.site.as_deref().unwrap_or("Global")
    }

    /// Its state as administrators see it at `now_ms` (Get-CsComputer, `confab status`):
    /// Active, Unavailable (active but silent for longer than [`DEAD_AFTER_MS`]), Stopped or
    /// Isolated.
    pub fn shown_state(&self, now_ms: i64) -> &str {
        match self.state.as_str() {
            "Active" if now_ms - self.heartbeat_at > DEAD_AFTER_MS => "Unavailable",
            s => s,
        }
    }
}

/// A presence publication (PUBLISH) as the pool shares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedPublication {
    /// `user@domain`, lower case.
    pub presentity: String,
    /// Stable id of the publication (its entity tag changes with each refresh).
    pub publication: String,
    pub etag: String,
    /// The PIDF document.
    pub doc: String,
    /// Unix millis; 0 for a removed publication.
    pub expires_at: i64,
    pub front_end: String,
    pub seq: i64,
}

impl SharedPublication {
    pub fn removed(&self) -> bool {
        self.expires_at == 0
    }
}

const PUB_COLUMNS: &str = "presentity, publication, etag, doc, expires_at, front_end, seq";

fn pub_from_row(r: &Row) -> Result<SharedPublication, StoreError> {
    Ok(SharedPublication {
        presentity: r.get(0)?,
        publication: r.get(1)?,
        etag: r.get(2)?,
        doc: r.get(3)?,
        expires_at: r.get(4)?,
        front_end: r.get(5)?,
        seq: r.get(6)?,
    })
}

/// One live session of a user as a front end last reported it: a call (`peer`: the other
/// party), a presence subscription (`peer`: the presentity watched) or a seat in a meeting
/// (`peer`: the meeting's key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSession {
    pub front_end: String,
    /// `Call`, `Subscription` or `Meeting`.
    pub kind: String,
    /// `user@domain`, lower case.
    pub user_key: String,
    pub peer: String,
    /// Unix millis.
    pub since: i64,
}

/// Live sessions a front end reports at most (the rest are left out of the report).
pub const MAX_LIVE_SESSIONS: usize = 20_000;

/// What [`Store::claim_message`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// No message waits.
    Empty,
    /// Another front end is delivering the oldest one.
    HeldElsewhere,
    /// The oldest, now claimed.
    Message(StoredMessage),
}

/// One binding of the shared location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// `user@domain`, lower case.
    pub aor: String,
    /// The binding's identity within the AoR (instance + reg-id, or the contact URI).
    pub binding: String,
    pub contact: String,
    /// q-value ×1000.
    pub q: i64,
    /// Unix millis; 0 for a removed binding.
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: i64,
    pub instance: Option<String>,
    pub reg_id: Option<i64>,
    /// The connection (`t127.0.0.1_40000` form) at `front_end`, when the contact is reached
    /// over it.
    pub flow: Option<String>,
    /// Path header values, in order.
    pub path: Vec<String>,
    pub user_agent: Option<String>,
    /// `transport:ip:port` the REGISTER came from.
    pub source: String,
    /// The front end that wrote it (and holds its flow).
    pub front_end: String,
    /// Order of changes (set by the store).
    pub seq: i64,
}

impl Registration {
    pub fn removed(&self) -> bool {
        self.expires_at == 0
    }
}

const REG_COLUMNS: &str = "aor, binding, contact, q, expires_at, call_id, cseq, instance, reg_id, \
                           flow, path, user_agent, source, front_end, seq";

fn reg_from_row(r: &Row) -> Result<Registration, StoreError> {
    let path: String = r.get(10)?;
    Ok(Registration {
        aor: r.get(0)?,
        binding: r.get(1)?,
        contact: r.get(2)?,
        q: r.get(3)?,
        expires_at: r.get(4)?,
        call_id: r.get(5)?,
        cseq: r.get(6)?,
        instance: r.get(7)?,
        reg_id: r.get(8)?,
        flow: r.get(9)?,
        path: path
            .split('\n')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        user_agent: r.get(11)?,
        source: r.get(12)?,
        front_end: r.get(13)?,
        seq: r.get(14)?,
    })
}

fn fe_from_row(r: &Row) -> Result<FrontEnd, StoreError> {
    Ok(FrontEnd {
        name: r.get(0)?,
        address: r.get(1)?,
        site: r.get(2)?,
        version: r.get(3)?,
        started_at: r.get(4)?,
        heartbeat_at: r.get(5)?,
        state: r.get(6)?,
        load: r.get(7)?,
    })
}

/// The next `seq` values of `table` are taken under a lock held to the commit: on
/// PostgreSQL an advisory lock, on SQLite the write lock of the IMMEDIATE transaction.
fn lock_seq(tx: &Conn<'_>, table: &str) -> Result<i64, StoreError> {
    if tx.backend() == Backend::Postgres {
        tx.execute(
            &format!("SELECT pg_advisory_xact_lock({PG_LOCATION_LOCK})"),
            &[],
        )?;
    }
    tx.query_one(&format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"), &[])?
        .get(0)
}

/// The changes of `table` after `seq` by others than `me`: the newest `seq` is read first,
/// and every row up to it is committed (seqs are taken under a lock held to the commit), so
/// a reader that got fewer than `limit` rows has seen everything up to it.
#[allow(clippy::too_many_arguments)]
fn changes_since<T>(
    c: &Conn<'_>,
    table: &str,
    columns: &str,
    seq: i64,
    me: &str,
    limit: i64,
    from_row: fn(&Row) -> Result<T, StoreError>,
    seq_of: fn(&T) -> i64,
) -> Result<(Vec<T>, i64), StoreError> {
    let newest: i64 = c
        .query_one(&format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"), &[])?
        .get(0)?;
    if newest <= seq {
        return Ok((vec![], seq));
    }
    let rows = c.query(
        &format!(
            "SELECT {columns} FROM {table} WHERE seq > ?1 AND seq <= ?2 AND front_end <> ?3
             ORDER BY seq LIMIT ?4"
        ),
        vals![seq, newest, me, limit],
    )?;
    let rows: Vec<T> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    let seen = if (rows.len() as i64) < limit {
        newest
    } else {
        rows.last().map(seq_of).unwrap_or(newest)
    };
    Ok((rows, seen))
}

/// The last of each key's changes, in the order of those last changes (a multi-row upsert
/// may not touch one row twice).
fn last_of_each<'a, T, K: Eq + std::hash::Hash>(
    changes: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut last = std::collections::HashMap::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        last.insert(key(c), i);
    }
    changes
        .iter()
        .enumerate()
        .filter(|(i, c)| last.get(&key(c)) == Some(i))
        .map(|(_, c)| c)
        .collect()
}

/// Rows written per statement.
const ROWS_PER_INSERT: usize = 128;

/// `INSERT INTO table (columns) VALUES (…), (…) <conflict>` (`conflict`: an `ON CONFLICT`
/// clause, or empty), a statement per [`ROWS_PER_INSERT`] rows (one round trip each, not
/// one per row).
fn insert_rows(
    tx: &Conn<'_>,
    table: &str,
    columns: &str,
    conflict: &str,
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), StoreError> {
    let width = columns.split(',').count();
    let mut chunk: Vec<Value> = Vec::with_capacity(ROWS_PER_INSERT * width);
    let flush = |chunk: &mut Vec<Value>| -> Result<(), StoreError> {
        let n = chunk.len() / width;
        if n == 0 {
            return Ok(());
        }
        let tuples: Vec<String> = (0..n)
            .map(|r| {
                let cells: Vec<String> =
                    (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        tx.execute(
            &format!(
                "INSERT INTO {table} ({columns}) VALUES {} {conflict}",
                tuples.join(", ")
            ),
            chunk,
        )?;
        chunk.clear();
        Ok(())
    };
    for row in rows {
        chunk.extend(row);
        if chunk.len() >= ROWS_PER_INSERT * width {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)
}

fn lock_location(tx: &Conn<'_>) -> Result<i64, StoreError> {
    lock_seq(tx, "registrations")
}

impl Store {
    /// Records `fe` (insert or update): its heartbeat, state and load.
    pub fn heartbeat(&self, fe: &FrontEnd) -> Result<(), StoreError> {
        self.read(|c| {
            c.execute(
                "INSERT INTO front_ends
                    (name, address, site, version, started_at, heartbeat_at, state, load)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (name) DO UPDATE SET address = excluded.address,
                    site = excluded.site, version = excluded.version,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                    state = excluded.state, load = excluded.load",
                vals![
                    fe.name.as_str(),
                    fe.address.as_str(),
                    fe.site.clone(),
                    fe.version.as_str(),
                    fe.started_at,
                    fe.heartbeat_at,
                    fe.state.as_str(),
                    fe.load.as_str()
                ],
            )
        })?;
        Ok(())
    }

    /// Every front end the store has heard of, by name.
    pub fn front_ends(&self) -> Result<Vec<FrontEnd>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT name, address, site, version, started_at, heartbeat_at, state, load
                 FROM front_ends ORDER BY name",
                &[],
            )
        })?;
        rows.iter().map(fe_from_row).collect()
    }

    /// Forgets a front end that is not alive (Remove-CsComputer's job); `false` if there was
    /// none by that name. Its bindings go with it.
    pub fn remove_front_end(&self, name: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        self.transaction(|tx| {
            let Some(row) = tx.query_opt(
                "SELECT name, address, site, version, started_at, heartbeat_at, state, load
                 FROM front_ends WHERE name = ?1",
                vals![name],
            )?
            else {
                return Ok(false);
            };
            if fe_from_row(&row)?.alive(now) {
                return Err(StoreError::Invalid(format!(
                    "front end {name} is alive: stop it first"
                )));
            }
            let seq = lock_location(tx)?;
            tx.execute(
                "UPDATE registrations SET expires_at = 0, seq = ?2 + 1, changed_at = ?3
                 WHERE front_end = ?1 AND expires_at <> 0",
                vals![name, seq, now],
            )?;
            tx.execute("DELETE FROM front_ends WHERE name = ?1", vals![name])?;
            Ok(true)
        })
    }

    /// Writes binding changes (a removal is a row with `expires_at` 0) in one transaction,
    /// each with the next `seq`; returns the last `seq` given.
    pub fn write_registrations(&self, changes: &[Registration]) -> Result<i64, StoreError> {
        if changes.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        // the last change of each binding is its state: one row per binding in the batch
        let changes = last_of_each(changes, |r| (r.aor.as_str(), r.binding.as_str()));
        self.transaction(|tx| {
            let first = lock_location(tx)? + 1;
            let rows = changes.iter().enumerate().map(|(i, r)| {
                vec![
                    r.aor.as_str().into(),
                    r.binding.as_str().into(),
                    r.contact.as_str().into(),
                    r.q.into(),
                    r.expires_at.into(),
                    r.call_id.as_str().into(),
                    r.cseq.into(),
                    r.instance.clone().into(),
                    r.reg_id.into(),
                    r.flow.clone().into(),
                    r.path.join("\n").into(),
                    r.user_agent.clone().into(),
                    r.source.as_str().into(),
                    r.front_end.as_str().into(),
                    (first + i as i64).into(),
                    now.into(),
                ]
            });
            insert_rows(
                tx,
                "registrations",
                "aor, binding, contact, q, expires_at, call_id, cseq, instance, reg_id, flow, \
                 path, user_agent, source, front_end, seq, changed_at",
                "ON CONFLICT (aor, binding) DO UPDATE SET contact = excluded.contact, q = excluded.q, expires_at = excluded.expires_at, \
                 call_id = excluded.call_id, cseq = excluded.cseq, instance = excluded.instance, \
                 reg_id = excluded.reg_id, flow = excluded.flow, path = excluded.path, \
                 user_agent = excluded.user_agent, source = excluded.source, \
                 front_end = excluded.front_end, seq = excluded.seq, changed_at = excluded.changed_at",
                rows,
            )?;
            Ok(first + changes.len() as i64 - 1)
        })
    }

    /// Rows changed after `seq` (tombstones included) by other front ends than `me`, in
    /// order, at most `limit`; and the `seq` the reader has now seen up to. (The rows this
    /// front end wrote itself are skipped in the query, not read back: a single busy front
    /// end would otherwise read its own writes again.)
    pub fn registrations_since(
        &self,
        seq: i64,
        me: &str,
        limit: usize,
    ) -> Result<(Vec<Registration>, i64), StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            changes_since(
                c,
                "registrations",
                REG_COLUMNS,
                seq,
                me,
                limit,
                reg_from_row,
                |r| r.seq,
            )
        })
    }

    /// The last `seq` given (0: none).
    pub fn registrations_seq(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_one("SELECT COALESCE(MAX(seq), 0) FROM registrations", &[])?
                .get(0)
        })
    }

    /// Live bindings (not expired at `now_ms`), of one AoR or of everyone, by AoR.
    pub fn registrations(
        &self,
        aor: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Registration>, StoreError> {
        let rows = self.read(|c| match aor {
            Some(aor) => c.query(
                &format!(
                    "SELECT {REG_COLUMNS} FROM registrations WHERE aor = ?1 AND expires_at > ?2
                     ORDER BY aor, binding"
                ),
                vals![aor.to_ascii_lowercase(), now_ms],
            ),
            None => c.query(
                &format!(
                    "SELECT {REG_COLUMNS} FROM registrations WHERE expires_at > ?1
                     ORDER BY aor, binding"
                ),
                vals![now_ms],
            ),
        })?;
        rows.iter().map(reg_from_row).collect()
    }

    /// A front end starting again: the bindings it held over connections are gone with
    /// them (tombstoned); returns how many.
    pub fn drop_flows_of(&self, front_end: &str) -> Result<usize, StoreError> {
        let now = now_ms();
        self.transaction(|tx| {
            let seq = lock_location(tx)?;
            // one seq for all: followers read them in one go
            tx.execute(
                "UPDATE registrations SET expires_at = 0, seq = ?2 + 1, changed_at = ?3
                 WHERE front_end = ?1 AND flow IS NOT NULL AND flow NOT LIKE 'u%' AND expires_at <> 0",
                vals![front_end, seq, now],
            )
        })
    }

    /// Deletes tombstones and expired bindings that changed more than [`KEEP_REMOVED_MS`]
    /// ago; returns how many.
    pub fn prune_registrations(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        self.read(|c| {
            let n = c.execute(
                "DELETE FROM registrations WHERE expires_at < ?1 AND changed_at < ?2",
                vals![now, now - KEEP_REMOVED_MS],
            )?;
            Ok(n + c.execute(
                "DELETE FROM publications WHERE expires_at < ?1 AND changed_at < ?2",
                vals![now, now - KEEP_REMOVED_MS],
            )?)
        })
    }

    /// Writes publication changes (a removal has `expires_at` 0), each with the next
    /// `seq`.
    pub fn write_publications(&self, changes: &[SharedPublication]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        // a refresh keeps the document the row has: the batch's last change of a
        // publication takes the newest document of the batch with it
        let mut merged: Vec<SharedPublication> = vec![];
        let mut at = std::collections::HashMap::with_capacity(changes.len());
        for p in changes {
            match at.entry((p.presentity.as_str(), p.publication.as_str())) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    let m: &mut SharedPublication = &mut merged[*e.get()];
                    let doc = if p.doc.is_empty() {
                        std::mem::take(&mut m.doc)
                    } else {
                        p.doc.clone()
                    };
                    *m = SharedPublication { doc, ..p.clone() };
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(merged.len());
                    merged.push(p.clone());
                }
            }
        }
        self.transaction(|tx| {
            let first = lock_seq(tx, "publications")? + 1;
            let rows = merged.iter().enumerate().map(|(i, p)| {
                vec![
                    p.presentity.as_str().into(),
                    p.publication.as_str().into(),
                    p.etag.as_str().into(),
                    p.doc.as_str().into(),
                    p.expires_at.into(),
                    p.front_end.as_str().into(),
                    (first + i as i64).into(),
                    now.into(),
                ]
            });
            insert_rows(
                tx,
                "publications",
                "presentity, publication, etag, doc, expires_at, front_end, seq, changed_at",
                "ON CONFLICT (presentity, publication) DO UPDATE SET etag = excluded.etag, \
                 doc = CASE WHEN excluded.doc = '' THEN publications.doc ELSE excluded.doc END, \
                 expires_at = excluded.expires_at, front_end = excluded.front_end, \
                 seq = excluded.seq, changed_at = excluded.changed_at",
                rows,
            )
        })
    }

    /// Publication changes after `seq` by other front ends than `me`, as
    /// [`Store::registrations_since`].
    pub fn publications_since(
        &self,
        seq: i64,
        me: &str,
        limit: usize,
    ) -> Result<(Vec<SharedPublication>, i64), StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            changes_since(
                c,
                "publications",
                PUB_COLUMNS,
                seq,
                me,
                limit,
                pub_from_row,
                |p| p.seq,
            )
        })
    }

    /// Live publications (not expired at `now_ms`) and the last `seq` given.
    pub fn publications(&self, now_ms: i64) -> Result<(Vec<SharedPublication>, i64), StoreError> {
        self.transaction(|tx| {
            let seq: i64 = tx
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM publications", &[])?
                .get(0)?;
            let rows = tx.query(
                &format!(
                    "SELECT {PUB_COLUMNS} FROM publications WHERE expires_at > ?1 ORDER BY seq"
                ),
                vals![now_ms],
            )?;
            Ok((
                rows.iter().map(pub_from_row).collect::<Result<_, _>>()?,
                seq,
            ))
        })
    }

    /// Replaces what `front_end` reports of its live sessions (at most
    /// [`MAX_LIVE_SESSIONS`]).
    pub fn replace_live_sessions(
        &self,
        front_end: &str,
        sessions: &[LiveSession],
    ) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM live_sessions WHERE front_end = ?1",
                vals![front_end],
            )?;
            let rows = sessions.iter().take(MAX_LIVE_SESSIONS).map(|l| {
                vec![
                    front_end.into(),
                    l.kind.as_str().into(),
                    l.user_key.as_str().into(),
                    l.peer.as_str().into(),
                    l.since.into(),
                ]
            });
            insert_rows(
                tx,
                "live_sessions",
                "front_end, kind, user_key, peer, since",
                "",
                rows,
            )
        })
    }

    /// A user's live sessions, as reported by front ends that are alive at `now_ms`.
    pub fn live_sessions(
        &self,
        user_key: &str,
        now_ms: i64,
    ) -> Result<Vec<LiveSession>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT s.front_end, s.kind, s.user_key, s.peer, s.since
                 FROM live_sessions s JOIN front_ends f ON f.name = s.front_end
                 WHERE s.user_key = ?1 AND f.state = 'Active' AND f.heartbeat_at >= ?2
                 ORDER BY s.since, s.kind, s.peer",
                vals![user_key.to_ascii_lowercase(), now_ms - DEAD_AFTER_MS],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(LiveSession {
                    front_end: r.get(0)?,
                    kind: r.get(1)?,
                    user_key: r.get(2)?,
                    peer: r.get(3)?,
                    since: r.get(4)?,
                })
            })
            .collect()
    }

    /// Which front end hosts live meeting `key`: this one (`None`: it is now recorded as the
    /// host, the meeting was not live or its host is dead) or another that is alive.
    pub fn host_meeting(&self, key: &str, front_end: &str) -> Result<Option<String>, StoreError> {
        let now = now_ms();
        self.transaction(|tx| {
            if tx.backend() == Backend::Postgres {
                // two front ends taking the same meeting at once: one waits for the other
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(?1))",
                    vals![format!("confab-meeting:{key}")],
                )?;
            }
            let host: Option<String> = tx
                .query_opt(
                    "SELECT front_end FROM meeting_hosts WHERE meeting_key = ?1",
                    vals![key],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            if let Some(h) = host.filter(|h| h != front_end) {
                let alive = tx
                    .query_opt(
                        "SELECT name, address, site, version, started_at, heartbeat_at, state, load
                         FROM front_ends WHERE name = ?1",
                        vals![h.as_str()],
                    )?
                    .map(|r| fe_from_row(&r))
                    .transpose()?
                    .is_some_and(|f| f.alive(now));
                if alive {
                    return Ok(Some(h));
                }
            }
            tx.execute(
                "INSERT INTO meeting_hosts (meeting_key, front_end, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (meeting_key) DO UPDATE SET front_end = excluded.front_end,
                    since = excluded.since",
                vals![key, front_end, now],
            )?;
            Ok(None)
        })
    }

    /// Meeting `key` is no longer live on `front_end` (or, with `key` None, none is: the
    /// front end starts or stops).
    pub fn release_meetings(&self, key: Option<&str>, front_end: &str) -> Result<(), StoreError> {
        self.read(|c| match key {
            Some(k) => c.execute(
                "DELETE FROM meeting_hosts WHERE meeting_key = ?1 AND front_end = ?2",
                vals![k, front_end],
            ),
            None => c.execute(
                "DELETE FROM meeting_hosts WHERE front_end = ?1",
                vals![front_end],
            ),
        })?;
        Ok(())
    }

    /// Claims the recipient's oldest message for delivery by `front_end` for `lease_ms`,
    /// unless another front end's claim on it still holds (that one is delivering; messages
    /// go out in order, one at a time).
    pub fn claim_message(
        &self,
        recipient_key: &str,
        front_end: &str,
        lease_ms: i64,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        let key = recipient_key.to_ascii_lowercase();
        self.transaction(|tx| {
            let Some(row) = tx.query_opt(
                &format!(
                    "SELECT {MESSAGE_COLUMNS}, claimed_by, claimed_until FROM offline_messages
                     WHERE recipient_key = ?1 ORDER BY id LIMIT 1"
                ),
                vals![key.as_str()],
            )?
            else {
                return Ok(Claim::Empty);
            };
            let m = message_from_row(&row)?;
            let by: Option<String> = row.get(7)?;
            let until: Option<i64> = row.get(8)?;
            let held_by_other =
                by.as_deref().is_some_and(|b| b != front_end) && until.is_some_and(|u| u > now);
            if held_by_other {
                return Ok(Claim::HeldElsewhere);
            }
            tx.execute(
                "UPDATE offline_messages SET claimed_by = ?2, claimed_until = ?3 WHERE id = ?1",
                vals![m.id, front_end, now + lease_ms],
            )?;
            Ok(Claim::Message(m))
        })
    }

    /// The newest offline message's id (0: none).
    pub fn newest_message_id(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_one("SELECT COALESCE(MAX(id), 0) FROM offline_messages", &[])?
                .get(0)
        })
    }

    /// Messages stored after message `id` (recipient, id), oldest first, at most 1000: how
    /// a front end learns of messages another one stored.
    pub fn messages_since(&self, id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT recipient_key, id FROM offline_messages WHERE id > ?1 ORDER BY id
                 LIMIT 1000",
                vals![id],
            )
        })?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A front end record at 127.0.0.1:5060 with its heartbeat at `now`.
    fn fe_at(name: &str, state: &str, now: i64) -> FrontEnd {
        FrontEnd {
            name: name.into(),
            address: "tcp:127.0.0.1:5060".into(),
            site: None,
            version: "0".into(),
            started_at: now,
            heartbeat_at: now,
            state: state.into(),
            load: "{}".into(),
        }
    }

    fn reg(aor: &str, binding: &str, fe: &str, expires_at: i64) -> Registration {
        Registration {
            aor: aor.into(),
            binding: binding.into(),
            contact: format!("sip:{binding}@127.0.0.1:5070"),
            q: 1000,
            expires_at,
            call_id: "c".into(),
            cseq: 1,
            instance: None,
            reg_id: None,
            flow: Some("t127.0.0.1_40000".into()),
            path: vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()],
            user_agent: Some("ua".into()),
            source: "tcp:127.0.0.1:40000".into(),
            front_end: fe.into(),
            seq: 0,
        }
    }

    #[test]
    fn changes_are_followed_in_order_and_removals_seen() {
        let s = Store::open_in_memory().unwrap();
        let far = now_ms() + 60_000;
        let last = s
            .write_registrations(&[reg("a@x", "b1", "fe1", far), reg("b@x", "b1", "fe2", far)])
            .unwrap();
        assert_eq!(last, 2);
        let (all, seen) = s.registrations_since(0, "fe3", 100).unwrap();
        assert_eq!((all.len(), seen), (2, 2));
        // a front end does not read back its own rows, but sees past them
        let (others, seen) = s.registrations_since(0, "fe1", 100).unwrap();
        assert_eq!((others.len(), seen), (1, 2));
        assert_eq!(s.registrations_since(2, "fe3", 100).unwrap(), (vec![], 2));
        // a batch cut by the limit ends at its last row
        assert_eq!(s.registrations_since(0, "fe3", 1).unwrap().1, 1);
        assert_eq!(all[0].path, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(all[1].seq, 2);
        // a re-registration through another front end replaces the row
        s.write_registrations(&[reg("a@x", "b1", "fe2", far)])
            .unwrap();
        let (new, _) = s.registrations_since(2, "fe1", 100).unwrap();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].front_end, "fe2");
        assert_eq!(s.registrations(Some("A@x"), now_ms()).unwrap().len(), 1);
        // a removal is a tombstone followers see, and not a live binding
        s.write_registrations(&[reg("a@x", "b1", "fe2", 0)])
            .unwrap();
        let (gone, _) = s.registrations_since(3, "fe1", 100).unwrap();
        assert!(gone[0].removed());
        assert!(s.registrations(Some("a@x"), now_ms()).unwrap().is_empty());
        // a restarted front end loses its flows
        assert_eq!(s.drop_flows_of("fe2").unwrap(), 1);
        assert!(s.registrations(None, now_ms()).unwrap().is_empty());
        assert_eq!(s.registrations_seq().unwrap(), 5);
    }

    #[test]
    fn a_batch_is_written_in_chunks_and_keeps_each_bindings_last_change() {
        let s = Store::open_in_memory().unwrap();
        let far = now_ms() + 60_000;
        let mut batch: Vec<Registration> = (0..300)
            .map(|i| reg(&format!("u{i}@x"), "b", "fe1", far))
            .collect();
        batch.push(reg("u7@x", "b", "fe2", far));
        assert_eq!(s.write_registrations(&batch).unwrap(), 300);
        let all = s.registrations(None, now_ms()).unwrap();
        assert_eq!(all.len(), 300);
        let u7 = all.iter().find(|r| r.aor == "u7@x").unwrap();
        assert_eq!((u7.front_end.as_str(), u7.seq), ("fe2", 300));
        let mut seqs: Vec<i64> = all.iter().map(|r| r.seq).collect();
        seqs.sort();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    }

    #[test]
    fn publications_are_shared_and_a_refresh_keeps_the_document() {
        let s = Store::open_in_memory().unwrap();
        let far = now_ms() + 60_000;
        let p = |etag: &str, doc: &str, expires_at| SharedPublication {
            presentity: "a@x".into(),
            publication: "p1".into(),
            etag: etag.into(),
            doc: doc.into(),
            expires_at,
            front_end: "fe1".into(),
            seq: 0,
        };
        s.write_publications(&[p("e1", "<pidf/>", far)]).unwrap();
        // a body-less refresh: new tag, same document
        s.write_publications(&[p("e2", "", far)]).unwrap();
        let (live, seq) = s.publications(now_ms()).unwrap();
        assert_eq!(seq, 2);
        assert_eq!(
            (live[0].etag.as_str(), live[0].doc.as_str()),
            ("e2", "<pidf/>")
        );
        s.write_publications(&[p("e2", "", 0)]).unwrap();
        assert!(s.publications(now_ms()).unwrap().0.is_empty());
        assert!(s.publications_since(2, "fe2", 10).unwrap().0[0].removed());
    }

    #[test]
    fn a_meeting_has_one_live_host() {
        let s = Store::open_in_memory().unwrap();
        let now = now_ms();
        let fe = |name: &str, state: &str| fe_at(name, state, now);
        s.heartbeat(&fe("fe1", "Active")).unwrap();
        s.heartbeat(&fe("fe2", "Active")).unwrap();
        assert_eq!(s.host_meeting("K", "fe1").unwrap(), None);
        assert_eq!(s.host_meeting("K", "fe1").unwrap(), None);
        assert_eq!(s.host_meeting("K", "fe2").unwrap(), Some("fe1".into()));
        // its host stopped: the next one takes it
        s.heartbeat(&fe("fe1", "Stopped")).unwrap();
        assert_eq!(s.host_meeting("K", "fe2").unwrap(), None);
        s.release_meetings(Some("K"), "fe1").unwrap();
        assert_eq!(s.host_meeting("K", "fe1").unwrap(), Some("fe2".into()));
        s.release_meetings(None, "fe2").unwrap();
        assert_eq!(s.host_meeting("K", "fe1").unwrap(), None);
    }

    #[test]
    fn live_sessions_are_replaced_and_shown_for_live_front_ends() {
        let s = Store::open_in_memory().unwrap();
        let now = now_ms();
        let mut fe = fe_at("fe1", "Active", now);
        s.heartbeat(&fe).unwrap();
        let call = |peer: &str| LiveSession {
            front_end: "fe1".into(),
            kind: "Call".into(),
            user_key: "a@x".into(),
            peer: peer.into(),
            since: now,
        };
        s.replace_live_sessions("fe1", &[call("b@x"), call("c@x")])
            .unwrap();
        assert_eq!(s.live_sessions("A@x", now).unwrap().len(), 2);
        s.replace_live_sessions("fe1", &[call("c@x")]).unwrap();
        assert_eq!(s.live_sessions("a@x", now).unwrap(), vec![call("c@x")]);
        fe.state = "Stopped".into();
        s.heartbeat(&fe).unwrap();
        assert!(s.live_sessions("a@x", now).unwrap().is_empty());
    }

    #[test]
    fn front_ends_beat_and_die() {
        let s = Store::open_in_memory().unwrap();
        let now = now_ms();
        let mut fe = fe_at("fe1", "Active", now);
        s.heartbeat(&fe).unwrap();
        fe.heartbeat_at = now + 1000;
        s.heartbeat(&fe).unwrap();
        let all = s.front_ends().unwrap();
        assert_eq!(all, vec![fe.clone()]);
        assert!(all[0].alive(now + 1000));
        assert!(!all[0].alive(now + 1000 + DEAD_AFTER_MS + 1));
        assert!(s.remove_front_end("fe1").is_err(), "alive");
        fe.state = "Stopped".into();
        s.heartbeat(&fe).unwrap();
        assert!(s.remove_front_end("fe1").unwrap());
        assert!(!s.remove_front_end("fe1").unwrap());
    }

    #[test]
    fn one_front_end_delivers_a_message() {
        let s = Store::open_in_memory().unwrap();
        s.add_user(&crate::NewUser {
            username: "bob",
            domain: "x",
            display_name: "Bob",
            password: "pw-bob-12345",
        })
        .unwrap();
        s.store_message("bob", "x", "sip:a@x", "text/plain", b"hi", "", 10, 10_000)
            .unwrap();
        assert_eq!(s.messages_since(0).unwrap(), vec![("bob@x".to_string(), 1)]);
        let Claim::Message(m) = s.claim_message("bob@x", "fe1", 30_000).unwrap() else {
            panic!("no message")
        };
        assert_eq!(m.body, b"hi");
        let got = |fe: &str, lease| {
            matches!(
                s.claim_message("bob@x", fe, lease).unwrap(),
                Claim::Message(_)
            )
        };
        assert_eq!(
            s.claim_message("bob@x", "fe2", 30_000).unwrap(),
            Claim::HeldElsewhere
        );
        // the holder may take it again (a retry)
        assert!(got("fe1", 30_000));
        // an expired claim is anyone's
        assert!(got("fe1", -1));
        assert!(got("fe2", 30_000));
        s.delete_message(m.id).unwrap();
        assert_eq!(
            s.claim_message("bob@x", "fe2", 30_000).unwrap(),
            Claim::Empty
        );
    }
}
