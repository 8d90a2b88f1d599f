//! The conference event package (RFC 4575): participants subscribe to the conference URI
//! and get the roster, full first, then partial on every change.

use super::*;

pub(super) struct Subscription {
    pub(super) id: u32,
    /// The participant the subscriber is.
    pub(super) participant: u32,
    pub(super) dialog: Dialog,
    pub(super) expires: Instant,
    pub(super) version: u64,
}

impl Subscription {
    /// A NOTIFY of the conference event package in this subscription: a roster document
    /// with `Subscription-State` active (and what is left of it), or, with `ended`, the
    /// terminated state and its reason.
    pub(super) fn notify(
        &mut self,
        core: &Core,
        body: Option<String>,
        ended: Option<&str>,
        now: Instant,
    ) -> Option<(Message, Dest)> {
        let mut req = self.dialog.request(core, Method::Notify)?;
        req.headers.push(HeaderName::Event, "conference");
        let state = match ended {
            None => format!(
                "active;expires={}",
                self.expires.saturating_duration_since(now).as_secs().max(1)
            ),
            Some(reason) => format!("terminated;reason={reason}"),
        };
        req.headers.push(HeaderName::SubscriptionState, state);
        if let Some(b) = body {
            req.set_body("application/conference-info+xml", Bytes::from(b));
        }
        Some((req, self.dialog.dest))
    }
}

impl Core {
    /// SUBSCRIBE to the conference event package (RFC 4575): participants only.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conference_subscribe(
        &self,
        shard: &mut Shard,
        msg: &Message,
        conf: &ConfAddr,
        caller: &Caller,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let event = msg
            .header(&HeaderName::Event)
            .map(|t| t.as_str())
            .unwrap_or("");
        if !event
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("conference")
        {
            let mut r = self.error_response(msg, 489, "Bad Event");
            r.headers.push(HeaderName::AllowEvents, "conference");
            return Verdict::Respond(Box::new(r));
        }
        let expires = msg
            .header(&HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u64>().ok())
            .unwrap_or(SUB_MAX);
        if expires == 0 {
            return Verdict::reply(481, "No such subscription");
        }
        let expires = expires.clamp(SUB_MIN, SUB_MAX);
        let mut sends = Sends::default();
        let resp = {
            let mut st = self.focus.state.lock();
            let Some(c) = st.confs.get_mut(&conf.key) else {
                return Verdict::reply(480, "The meeting has not started");
            };
            let Some(pid) = participant_of(c, caller, src) else {
                return Verdict::reply(403, "Only participants may see the roster");
            };
            if c.subs.len() >= MAX_SUBS_PER_MEETING {
                return Verdict::reply(503, "Too many subscriptions to this meeting");
            }
            let our_tag = random_token(16);
            let dialog = match Dialog::new(msg, src, self, &our_tag) {
                Ok(d) => d,
                Err(v) => return v,
            };
            c.next_id += 1;
            let sid = c.next_id;
            let uri = c.uri.clone();
            c.subs.push(Subscription {
                id: sid,
                participant: pid,
                dialog,
                expires: now + Duration::from_secs(expires),
                version: 0,
            });
            let ckey = c.key.clone();
            st.dialogs.insert(
                (
                    msg.call_id().map(|x| x.to_string()).unwrap_or_default(),
                    our_tag.clone(),
                ),
                (ckey.clone(), DialogRef::Subscription(sid)),
            );
            self.notify_full(&mut st, &ckey, sid, now, &mut sends);
            let mut r = self.focus_response(msg, 200, None, &our_tag, &uri, src);
            r.headers.push(HeaderName::Expires, expires.to_string());
            r
        };
        // the 200 first (on the transaction), then the first NOTIFY (a job run after it)
        self.flush_locked(shard, sends, out);
        Verdict::Respond(Box::new(resp))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn resubscribe(
        &self,
        st: &mut State,
        conf_key: &str,
        sid: u32,
        msg: &Message,
        tag: &str,
        src: &Source,
        now: Instant,
        sends: &mut Sends,
    ) -> Verdict {
        let expires = msg
            .header(&HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u64>().ok())
            .unwrap_or(SUB_MAX);
        let Some(c) = st.confs.get_mut(conf_key) else {
            return Verdict::reply(481, "No such subscription");
        };
        let uri = c.uri.clone();
        if expires == 0 {
            self.end_subscription(st, conf_key, sid, "timeout", now, sends);
            let mut r = self.focus_response(msg, 200, None, tag, &uri, src);
            fix_to(&mut r, msg);
            r.headers.push(HeaderName::Expires, "0");
            return Verdict::Respond(Box::new(r));
        }
        let expires = expires.clamp(SUB_MIN, SUB_MAX);
        if let Some(s) = c.subs.iter_mut().find(|s| s.id == sid) {
            s.expires = now + Duration::from_secs(expires);
        }
        self.notify_full(st, conf_key, sid, now, sends);
        let mut r = self.focus_response(msg, 200, None, tag, &uri, src);
        fix_to(&mut r, msg);
        r.headers.push(HeaderName::Expires, expires.to_string());
        Verdict::Respond(Box::new(r))
    }

    pub(super) fn end_subscription(
        &self,
        st: &mut State,
        conf_key: &str,
        sid: u32,
        reason: &str,
        now: Instant,
        sends: &mut Sends,
    ) {
        let Some(c) = st.confs.get_mut(conf_key) else {
            return;
        };
        let Some(i) = c.subs.iter().position(|s| s.id == sid) else {
            return;
        };
        let mut s = c.subs.remove(i);
        st.dialogs
            .remove(&(s.dialog.call_id.clone(), s.dialog.our_tag.clone()));
        sends
            .requests
            .extend(s.notify(self, None, Some(reason), now));
    }

    pub(super) fn notify_full(
        &self,
        st: &mut State,
        conf_key: &str,
        sid: u32,
        now: Instant,
        sends: &mut Sends,
    ) {
        let Some(c) = st.confs.get_mut(conf_key) else {
            return;
        };
        let entries: Vec<roster::Entry> = c.active().map(|p| c.entry(p)).collect();
        let (uri, subject, count) = (c.uri.clone(), c.subject.clone(), entries.len());
        let Some(s) = c.subs.iter_mut().find(|s| s.id == sid) else {
            return;
        };
        s.version += 1;
        let body = roster::document(
            &uri,
            &subject,
            s.version,
            count,
            roster::Change::Full(&entries),
        );
        sends.requests.extend(s.notify(self, Some(body), None, now));
    }

    /// A partial notification to every subscriber of the meeting.
    pub(super) fn roster_changed(
        &self,
        st: &mut State,
        conf_key: &str,
        changed: &[u32],
        gone: &[(String, String)],
        now: Instant,
        sends: &mut Sends,
    ) {
        self.focus.changed(conf_key);
        let Some(c) = st.confs.get_mut(conf_key) else {
            return;
        };
        let entries: Vec<roster::Entry> = changed
            .iter()
            .filter_map(|id| c.participant(*id))
            .filter(|p| !p.lobby)
            .map(|p| c.entry(p))
            .collect();
        let count = c.active().count();
        let uri = c.uri.clone();
        let subject = c.subject.clone();
        for s in &mut c.subs {
            s.version += 1;
            let body = roster::document(
                &uri,
                &subject,
                s.version,
                count,
                roster::Change::Partial {
                    changed: &entries,
                    gone,
                },
            );
            sends.requests.extend(s.notify(self, Some(body), None, now));
        }
    }
}
