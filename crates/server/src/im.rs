//! Instant messaging (RFC 3428) beyond relaying: messages to a user with no registration
//! are kept in the store and answered 202; they are delivered in order when the user
//! registers again, one at a time, and removed only after a 2xx. They survive restarts.

use crate::core::{random_token, shard_of, Core, ServerEntry, Shard, SERVER_NAME};
use crate::effects::Effect;
use crate::net::{Dest, Outgoing, Source};
use crate::registrar::http_date;
use crate::users::UserCred;
use confab_sip::transaction::{Kind, ServerTransaction};
use confab_sip::{HeaderName, Message, Method, Text};
use confab_store::StoredMessage;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Headers worth replaying with a stored message.
const KEPT_HEADERS: [HeaderName; 2] = [HeaderName::Subject, HeaderName::Date];

impl Core {
    /// MESSAGE for a known user with no registration: store it (202) or say why not.
    pub(crate) fn store_offline(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        user: &UserCred,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let ct = msg
            .header(&HeaderName::ContentType)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "text/plain".into());
        if ct
            .to_ascii_lowercase()
            .starts_with("application/im-iscomposing+xml")
        {
            // typing notifications are only meaningful live
            return self.reply(
                shard,
                key,
                msg,
                480,
                Some("Temporarily Unavailable"),
                now,
                out,
            );
        }
        let limits = &self.cfg.im;
        if msg.body.len() > limits.max_stored_message_bytes {
            return self.reply(
                shard,
                key,
                msg,
                413,
                Some("Message too large to store for an offline user"),
                now,
                out,
            );
        }
        let sender = msg
            .header(&HeaderName::From)
            .map(|f| f.to_string())
            .unwrap_or_default();
        let mut extra = String::new();
        for h in KEPT_HEADERS.iter() {
            if let Some(v) = msg.header(h) {
                extra.push_str(&format!("{}: {v}\r\n", h.as_str()));
            }
        }
        if self.store.is_none() {
            return self.reply(
                shard,
                key,
                msg,
                480,
                Some("Temporarily Unavailable"),
                now,
                out,
            );
        }
        // The store writes on a worker; the 202 is sent when it has committed
        // (effects.rs). Until then the transaction absorbs retransmissions.
        let effect = Effect::StoreMessage {
            shard: shard_of(msg.call_id().map(|c| c.as_str()).unwrap_or("")),
            key: key.to_string(),
            req: Box::new(msg.clone()),
            user: user.username.clone(),
            domain: user.domain.clone(),
            sender,
            content_type: ct,
            extra_headers: extra,
        };
        if !self.submit(effect) {
            tracing::warn!("the store's queue is full: a message for an offline user is refused");
            self.reply_store_busy(shard, key, msg, now, out);
        }
    }

    /// Starts delivering the oldest stored message of `aor` when it has registrations:
    /// marks the delivery under way and has a store worker read the message.
    pub(crate) fn deliver_offline(&self, aor: &str, now: Instant) {
        if !self.offline_pending.lock().contains(aor) {
            return;
        }
        if self.store.is_none() {
            return;
        }
        let targets = self.targets_for(aor, now);
        if targets.is_empty() {
            return;
        }
        if !self.offline_delivering.lock().insert(aor.to_string()) {
            return; // one at a time keeps the order
        }
        self.submit_internal(Effect::FetchOffline {
            aor: aor.to_string(),
        });
    }

    /// Sends a stored message just read to the current registrations of `aor`, through the
    /// proxy (forking, retransmission, first 2xx wins) with an internal server transaction.
    pub(crate) fn deliver_stored(
        &self,
        aor: &str,
        m: StoredMessage,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let targets = self.targets_for(aor, now);
        let Some(listener) = self
            .listeners
            .first()
            .copied()
            .filter(|_| !targets.is_empty())
        else {
            // gone again while the store read: the next registration delivers it
            self.offline_delivering.lock().remove(aor);
            return;
        };
        let src = Source {
            transport: listener.transport,
            local: listener.addr,
            remote: listener.addr,
            conn: None,
            overloaded: false,
        };
        let mut req = Message::request(Method::Message, Text::from(format!("sip:{aor}")));
        let branch = format!("z9hG4bKcfbint{}", random_token(12));
        req.headers.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={branch}",
                listener.transport.as_str(),
                Core::hostport(&listener)
            ),
        );
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push(HeaderName::From, m.sender.clone());
        req.headers.push(HeaderName::To, format!("<sip:{aor}>"));
        let call_id = format!("{}@confab", random_token(20));
        req.headers.push(HeaderName::CallId, call_id.clone());
        req.headers.push(HeaderName::CSeq, "1 MESSAGE");
        let mut has_date = false;
        for line in m.headers.split("\r\n").filter(|l| !l.is_empty()) {
            if let Some((n, v)) = line.split_once(':') {
                has_date |= n.trim().eq_ignore_ascii_case("Date");
                req.headers.push(
                    HeaderName::parse(Text::from(n.trim())),
                    v.trim().to_string(),
                );
            }
        }
        if !has_date {
            let when = UNIX_EPOCH + Duration::from_secs(m.received_at.max(0) as u64);
            req.headers.push(HeaderName::Date, http_date(when));
        }
        req.headers.push(HeaderName::Server, SERVER_NAME);
        req.set_body(&m.content_type, m.body.clone());
        let key = format!("internal|{}|{branch}", m.id);
        let shard_idx = crate::core::shard_of(&call_id);
        let mut shard = self.shards[shard_idx].lock();
        let mut entry = ServerEntry::new(
            ServerTransaction::new(Kind::NonInvite, true, self.timers),
            Dest {
                transport: listener.transport,
                addr: listener.addr,
                conn: None,
            },
        );
        entry.internal = Some((aor.to_string(), m.id));
        shard.server.insert(key.clone(), entry);
        self.txn_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(to = aor, id = m.id, "delivering stored message");
        self.proxy(
            &mut shard, shard_idx, &key, req, &src, targets, None, now, out,
        );
        self.unlock_and_run(shard, now, out);
    }

    /// A stored message's delivery finished. Its delivery stays marked under way until
    /// the store has deleted it, so a registration meanwhile does not send it again.
    pub(crate) fn offline_done(&self, aor: &str, id: i64, status: u16) {
        if (200..300).contains(&status) && self.store.is_some() {
            self.submit_internal(Effect::DeleteDelivered {
                aor: aor.to_string(),
                id,
            });
        } else {
            self.offline_delivering.lock().remove(aor);
            tracing::info!(
                to = aor,
                id,
                status,
                "stored message not delivered; kept for the next registration"
            );
        }
    }
}
