//! Dial-out: a leader asks the focus to call someone into the meeting (RFC 4579 §5.4:
//! REFER to the focus with a `Refer-To` that is not `method=BYE`; or REST). The focus is
//! then the caller: an INVITE with the MCU's offer to the user's registered contact, the
//! answer applied to the leg, the ACK, and the callee joins directly (people a presenter
//! adds bypass the lobby). The organizer's CsConferencingPolicy decides whether anonymous
//! presenters may dial out (AllowAnonymousUsersToDialOut). Phone numbers need voice routes
//! (enterprise voice), which confab does not have yet: a `tel:` target is refused, named.

use super::dialog::Dialog;
use super::*;
use crate::net::Dest;

/// Dial-outs ringing at once on this server.
const MAX_PENDING: usize = 64;
/// How long a dial-out rings before the focus cancels it.
const RING_TIMEOUT: Duration = Duration::from_secs(45);

/// A call the focus placed, not answered yet.
pub(super) struct DialOut {
    conf_key: String,
    leg: LegId,
    dialog: Dialog,
    target_key: String,
    invite: Message,
    started: Instant,
    cancelled: bool,
    /// The participant whose in-dialog REFER asked for it (told the outcome).
    referrer: Option<u32>,
}

/// Why a dial-out cannot start: a SIP status and reason.
pub(crate) type Refusal = (u16, String);

impl Core {
    /// Starts a dial-out from meeting `conf_key` to `target` (a SIP URI of one of our
    /// users); `anonymous` says the asking leader is anonymous. Returns the INVITE to send
    /// (after the locks are released) and where.
    pub(super) fn start_dial_out(
        &self,
        st: &mut State,
        conf_key: &str,
        target: &str,
        referrer: Option<u32>,
        anonymous: bool,
        now: Instant,
    ) -> Result<(Message, Dest), Refusal> {
        let media = self
            .focus
            .media
            .as_ref()
            .ok_or((480, "Conferencing is not available".to_string()))?;
        let c = st
            .confs
            .get(conf_key)
            .ok_or((481, "The meeting is not live".to_string()))?;
        if anonymous
            && !self
                .policies
                .get()
                .conferencing_policy(&c.rules.organizer)
                .allow_anonymous_users_to_dial_out
        {
            return Err((
                403,
                "Anonymous presenters may not dial out in this meeting (AllowAnonymousUsersToDialOut)".into(),
            ));
        }
        let raw = target.trim().trim_start_matches('<');
        let raw = raw.split(['>', '?']).next().unwrap_or("").trim();
        let uri = Uri::parse(raw).map_err(|_| (400, format!("Not a URI: {raw:.64}")))?;
        let phone = uri.scheme == confab_sip::Scheme::Tel
            || uri
                .param("user")
                .is_some_and(|u| u.eq_ignore_ascii_case("phone"));
        // a number: a user's LineURI, or the PSTN through the organizer's voice policy
        let (key, pstn) = if phone {
            let raw = uri.user.unwrap_or("");
            match self.dial_out_number(&c.rules.organizer, raw)? {
                Err(key) => (key, None),
                Ok((number, t)) => (number, Some(t)),
            }
        } else {
            let (Some(user), true) = (uri.user, self.is_our_domain(uri.host)) else {
                return Err((
                    403,
                    "The focus dials out to users of this server only".into(),
                ));
            };
            (crate::users::user_key(user, uri.host), None)
        };
        if c.participants
            .iter()
            .any(|p| p.key.as_deref() == Some(key.as_str()))
        {
            return Err((486, format!("{key} is already in the meeting")));
        }
        if c.participants.len() >= c.rules.max_size {
            return Err((486, "Meeting full (MaxMeetingSize)".into()));
        }
        if st.dial_outs.len() >= MAX_PENDING || st.participants() >= self.focus.max_participants {
            return Err((503, "Too many calls under way on this server".into()));
        }
        let is_number = pstn.is_some();
        let t = match pstn {
            Some(t) => t,
            None => {
                let targets = self.binding_targets(self.location.lookup(&key, now));
                targets
                    .into_iter()
                    .next()
                    .ok_or_else(|| (480, format!("{key} is not signed in")))?
            }
        };
        let egress = self
            .egress(&t.dest)
            .ok_or((503, "No listener to reach the callee".to_string()))?;
        let (leg, offer) = media
            .offer_leg(c.room, LegMode::Active)
            .map_err(|e| media_status(&e))?;
        let call_id = random_token(20);
        let our_tag = random_token(16);
        let ruri = t.uri.clone().unwrap_or_else(|| format!("sip:{key}"));
        let from = format!(
            "\"{}\" <{}>;tag={our_tag}",
            c.subject.replace('"', ""),
            c.uri
        );
        let to = if is_number {
            format!("<tel:{key}>")
        } else {
            format!("<sip:{key}>")
        };
        let Some(via) = self.own_via(&t.dest) else {
            media.close_leg(leg);
            return Err((503, "No listener to reach the callee".into()));
        };
        let mut inv = Message::request(Method::Invite, confab_sip::Text::from(ruri.as_str()));
        inv.headers.push(HeaderName::Via, via);
        inv.headers.push(HeaderName::MaxForwards, "70");
        for r in &t.path {
            inv.headers.push(HeaderName::Route, r.clone());
        }
        inv.headers.push(HeaderName::From, from.clone());
        inv.headers.push(HeaderName::To, to.clone());
        inv.headers.push(HeaderName::CallId, call_id.clone());
        inv.headers.push(HeaderName::CSeq, "1 INVITE");
        let params = c.uri.split_once(';').map(|(_, p)| p).unwrap_or("");
        let user_part = c
            .uri
            .strip_prefix("sip:")
            .and_then(|u| u.split_once('@'))
            .map(|(u, _)| u)
            .unwrap_or("focus");
        inv.headers.push(
            HeaderName::Contact,
            format!(
                "<sip:{user_part}@{};transport={};{params}>;isfocus",
                Core::hostport(&egress),
                egress.transport.param()
            ),
        );
        inv.headers.push(HeaderName::Allow, ALLOW);
        inv.headers.push(HeaderName::Server, SERVER_NAME);
        inv.set_body("application/sdp", Bytes::from(offer));
        let dialog = Dialog {
            call_id: call_id.clone(),
            ours: from,
            our_tag,
            theirs: to,
            their_tag: String::new(),
            target: ruri,
            routes: t.path.clone(),
            dest: t.dest,
            cseq: 1,
        };
        tracing::info!(meeting = %conf_key, callee = %key, "dialling out");
        st.dial_outs.insert(
            call_id.clone(),
            DialOut {
                conf_key: conf_key.to_string(),
                leg,
                dialog,
                target_key: key,
                invite: inv.clone(),
                started: now,
                cancelled: false,
                referrer,
            },
        );
        Ok((inv, t.dest))
    }

    /// The final response to a dial-out's INVITE (None: it timed out or could not be sent).
    pub(crate) fn dial_out_response(
        &self,
        call_id: &str,
        resp: Option<Message>,
        status: u16,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(media) = self.focus.media.as_ref() else {
            return;
        };
        let mut sends = Sends::default();
        let mut raw = vec![];
        {
            let mut st = self.focus.state.lock();
            let Some(mut d) = st.dial_outs.remove(call_id) else {
                return;
            };
            let answered = (200..300).contains(&status);
            let outcome = match (answered, resp.as_ref()) {
                (true, Some(r)) => {
                    // the dialog the answer made (RFC 3261 §12.1.2)
                    d.dialog.their_tag = r
                        .to_hdr()
                        .and_then(|t| t.tag().map(str::to_string))
                        .unwrap_or_default();
                    d.dialog.theirs = r
                        .header(&HeaderName::To)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    if let Some(c) = r
                        .header(&HeaderName::Contact)
                        .and_then(|c| NameAddr::parse(c).ok())
                    {
                        d.dialog.target = c.uri_str.to_string();
                    }
                    let mut rr: Vec<String> = r
                        .headers
                        .get_all(&HeaderName::RecordRoute)
                        .map(|x| x.to_string())
                        .collect();
                    rr.reverse();
                    d.dialog.routes = rr;
                    // the ACK: CSeq of the INVITE, a new branch
                    d.dialog.cseq = 0;
                    if let Some(ack) = d.dialog.request(self, Method::Ack) {
                        raw.push((d.dialog.dest, ack.to_bytes()));
                    }
                    d.dialog.cseq = 1;
                    let body = std::str::from_utf8(&r.body).unwrap_or("");
                    match (
                        media.answer_leg(d.leg, body),
                        st.confs.contains_key(&d.conf_key),
                    ) {
                        (Ok(()), true) => Ok(()),
                        (res, _) => {
                            // a bad answer, or the meeting ended meanwhile: hang up
                            if let Err(e) = res {
                                tracing::info!(meeting = %d.conf_key, callee = %d.target_key, "dial-out answer refused: {e}");
                            }
                            if let Some(bye) = d.dialog.request(self, Method::Bye) {
                                sends.requests.push((bye, d.dialog.dest));
                            }
                            Err(488)
                        }
                    }
                }
                _ => Err(status),
            };
            match outcome {
                Ok(()) => self.dial_out_joined(&mut st, d, now, &mut sends),
                Err(code) => {
                    tracing::info!(meeting = %d.conf_key, callee = %d.target_key, status = code, "dial-out failed");
                    sends.close_legs.push(d.leg);
                    self.refer_outcome(&mut st, &d.conf_key, d.referrer, code, &mut sends);
                }
            }
        }
        for (dest, bytes) in raw {
            self.send(dest, bytes, None, out);
        }
        self.flush(sends, now, out);
    }

    fn dial_out_joined(&self, st: &mut State, d: DialOut, now: Instant, sends: &mut Sends) {
        let Some(c) = st.confs.get_mut(&d.conf_key) else {
            return;
        };
        // a phone number called out is a phone caller; a user is who they are
        let phone = d.target_key.starts_with('+');
        let caller = if phone {
            Caller::Anonymous
        } else {
            Caller::Enterprise(d.target_key.clone())
        };
        let role = c.rules.role_of(&caller);
        c.next_id += 1;
        let id = c.next_id;
        let dkey = (d.dialog.call_id.clone(), d.dialog.our_tag.clone());
        tracing::info!(meeting = %d.conf_key, participant = id, callee = %d.target_key, "dial-out answered: joined");
        let mut p = Participant::new(id, caller, d.leg, d.dialog, now);
        p.user = if phone {
            format!("tel:{}", d.target_key)
        } else {
            format!("sip:{}", d.target_key)
        };
        p.display = d.target_key.clone();
        p.role = role;
        c.participants.push(p);
        st.dialogs
            .insert(dkey, (d.conf_key.clone(), DialogRef::Participant(id)));
        self.entered(st, &d.conf_key, id, now, sends);
        self.refer_outcome(st, &d.conf_key, d.referrer, 200, sends);
    }

    /// Tells the participant who asked for a dial-out how it ended (RFC 3515 NOTIFY).
    fn refer_outcome(
        &self,
        st: &mut State,
        conf_key: &str,
        referrer: Option<u32>,
        status: u16,
        sends: &mut Sends,
    ) {
        let Some(p) = referrer.and_then(|id| st.confs.get_mut(conf_key)?.participant_mut(id))
        else {
            return;
        };
        if let Some(n) = refer_notify(self, &mut p.dialog, status, true) {
            sends.requests.push((n, p.dialog.dest));
        }
    }

    /// Rings too long: CANCEL (the 487 then ends it).
    pub(super) fn dial_out_tick(&self, st: &mut State, now: Instant, sends: &mut Sends) {
        for d in st.dial_outs.values_mut() {
            if !d.cancelled && now.saturating_duration_since(d.started) >= RING_TIMEOUT {
                d.cancelled = true;
                tracing::info!(meeting = %d.conf_key, callee = %d.target_key, "dial-out not answered: cancelled");
                let cancel = crate::core::build_cancel(&d.invite);
                sends.requests.push((cancel, d.dialog.dest));
            }
        }
    }
}

impl Core {
    /// The NOTIFY of a REFER's implicit subscription (RFC 3515 §2.4.5) with `status`, in
    /// the REFER's dialog: the referrer's call with the focus (a REFER inside it; `last`
    /// ends the subscription), or the dialog a REFER outside it made (always the last).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refer_notify_in(
        &self,
        st: &mut State,
        msg: &Message,
        conf_key: &str,
        pid: u32,
        tag: &str,
        src: &Source,
        status: u16,
        last: bool,
    ) -> Option<(Message, Dest)> {
        if msg.to_hdr().is_some_and(|t| t.tag().is_some()) {
            let p = st.confs.get_mut(conf_key)?.participant_mut(pid)?;
            refer_notify(self, &mut p.dialog, status, last).map(|n| (n, p.dialog.dest))
        } else {
            let mut d = Dialog::new(msg, src, self, tag).ok()?;
            refer_notify(self, &mut d, status, true).map(|n| (n, d.dest))
        }
    }
}

/// A NOTIFY of a REFER's implicit subscription with `status` as sipfrag (RFC 3515 §2.4.5).
pub(super) fn refer_notify(
    core: &Core,
    d: &mut Dialog,
    status: u16,
    last: bool,
) -> Option<Message> {
    let mut n = d.request(core, Method::Notify)?;
    n.headers.push(HeaderName::Event, "refer");
    n.headers.push(
        HeaderName::SubscriptionState,
        if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        },
    );
    n.set_body(
        "message/sipfrag;version=2.0",
        Bytes::from(format!(
            "SIP/2.0 {status} {}\r\n",
            confab_sip::message::reason_phrase(status)
        )),
    );
    Some(n)
}

impl Core {
    /// RFC 4579 §5.4: a leader's REFER asking the focus to call `refer_to` in. Answered 202
    /// and a NOTIFY "100 Trying"; the outcome follows in a NOTIFY of the leader's call (a
    /// REFER outside the call gets only the first, with its subscription ended).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refer_dial_out(
        &self,
        shard: &mut Shard,
        msg: &Message,
        conf_key: &str,
        pid: u32,
        tag: &str,
        refer_to: &str,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Verdict {
        let in_dialog = msg.to_hdr().is_some_and(|t| t.tag().is_some());
        let mut sends = Sends::default();
        let uri;
        {
            let mut st = self.focus.state.lock();
            let Some(c) = st.confs.get(conf_key) else {
                return Verdict::reply(481, "Call/Transaction Does Not Exist");
            };
            if !c.is_leader(pid) {
                return Verdict::reply(403, "Only the organizer and presenters may dial out");
            }
            uri = c.uri.clone();
            let anonymous = c
                .participant(pid)
                .is_some_and(|p| p.caller == Caller::Anonymous);
            let referrer = in_dialog.then_some(pid);
            match self.start_dial_out(&mut st, conf_key, refer_to, referrer, anonymous, now) {
                Ok(invite) => sends.requests.push(invite),
                Err((status, reason)) => return Verdict::Reply(status, Some(reason)),
            }
            sends
                .requests
                .extend(self.refer_notify_in(&mut st, msg, conf_key, pid, tag, src, 100, false));
        }
        let mut resp = self.focus_response(msg, 202, Some("Accepted"), tag, &uri, src);
        if in_dialog {
            fix_to(&mut resp, msg);
        }
        self.flush_locked(shard, sends, out);
        Verdict::Respond(Box::new(resp))
    }

    /// REST: has the focus call `target` into live meeting `key` (the caller, a leader of
    /// the meeting or an administrator, is checked by the REST layer).
    pub fn live_dial_out(
        &self,
        key: &str,
        target: &str,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), LiveFailure> {
        let mut sends = Sends::default();
        {
            let mut st = self.focus.state.lock();
            if !st.confs.contains_key(key) {
                return Err(LiveFailure::NotLive);
            }
            let invite = self
                .start_dial_out(&mut st, key, target, None, false, now)
                .map_err(|(status, reason)| LiveFailure::Invalid(format!("{status} {reason}")))?;
            sends.requests.push(invite);
        }
        self.flush(sends, now, out);
        Ok(())
    }
}
