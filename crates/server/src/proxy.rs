//! The stateful proxy (RFC 3261 §16): forking, response aggregation, CANCEL, Timer C,
//! Record-Route, and stateless relay of ACKs for 2xx.

use crate::config::Listen;
use crate::core::{
    behind_nat, build_cancel, client_key, random_token, uri_dest, via_dest, Branch, ClientEntry,
    Core, ProxyCtx, Shard, Target, TimerRef, BRANCH_PREFIX,
};
use crate::net::{Outgoing, SendFailure, Source};
use confab_sip::transaction::{ClientTransaction, Kind, State};
use confab_sip::values::{NameAddr, Via};
use confab_sip::{response_to, HeaderName, Message, Method, Text, Uri};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const TIMER_C: Duration = Duration::from_secs(180);

/// Adds `received` and fills `rport` on the sender's Via (RFC 3261 §18.2.1, RFC 3581).
fn stamp_via(value: &str, src: &Source) -> Option<String> {
    let via = Via::parse(value).ok()?;
    let wants_rport = via.param("rport").is_some_and(str::is_empty);
    let ip = src.remote.ip();
    let host_matches = via
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|h| h == ip);
    if !wants_rport && host_matches {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 40);
    let mut first = true;
    for part in value.split(';') {
        let name = part.split('=').next().unwrap_or("").trim();
        if !first && (name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("rport")) {
            continue;
        }
        if !first {
            out.push(';');
        }
        out.push_str(part);
        first = false;
    }
    if !host_matches || wants_rport {
        out.push_str(&format!(";received={ip}"));
    }
    if wants_rport {
        out.push_str(&format!(";rport={}", src.remote.port()));
    }
    Some(out)
}

/// A Record-Route entry of ours: its user part is a token signed for the dialog (and the
/// flow to its party when it names one), so in-dialog requests prove they belong to a dialog
/// confab record-routed (route_token.rs).
fn record_route_value(l: &Listen, token: &str) -> String {
    format!(
        "<sip:{token}@{};transport={};lr>",
        Core::hostport(l),
        l.transport.param()
    )
}

/// Ranks final responses for §16.7 step 6: 6xx beats everything, then the lowest class
/// (3xx < 4xx < 5xx); 503 is the least useful.
fn rank(status: u16) -> u32 {
    match status {
        600..=699 => 0,
        503 => 900,
        s => s as u32,
    }
}

/// Whether a request's Request-URI is a sips: URI.
fn is_sips(m: &Message) -> bool {
    m.uri()
        .is_some_and(|u| u.len() >= 5 && u.as_bytes()[..5].eq_ignore_ascii_case(b"sips:"))
}

/// Why a branch was not sent.
pub(crate) enum Unsent {
    NoListener,
    Insecure,
    TooManyHeaders,
}

impl ProxyCtx {
    /// Branches still waiting for a final response (index and client key), except `skip`.
    pub(crate) fn pending_branches(&self, skip: Option<usize>) -> Vec<(usize, String)> {
        self.branches
            .iter()
            .enumerate()
            .filter(|(i, b)| Some(*i) != skip && b.final_status.is_none())
            .map(|(i, b)| (i, b.client_key.clone()))
            .collect()
    }
}

impl Core {
    /// Forwards the request of server transaction `key` to every target in parallel; a
    /// call plan (enterprise voice: failover, forwarding, team call, voicemail) may add
    /// branches later (`voice/calls.rs`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn proxy(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        key: &str,
        msg: Message,
        src: &Source,
        targets: Vec<Target>,
        plan: Option<Box<crate::voice::CallPlan>>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let method = msg.method().cloned().expect("request");
        let is_invite = method == Method::Invite;
        if method == Method::Bye {
            if let Some(c) = msg.call_id() {
                shard.call_down(c.as_str(), &self.active_calls);
            }
        }
        if is_invite {
            let trying = response_to(&msg, 100, None, None);
            self.respond(shard, key, trying, now, out);
        }
        let initial = msg.to_hdr().is_some_and(|t| t.tag().is_none());
        let record_route =
            initial && matches!(method, Method::Invite | Method::Subscribe | Method::Refer);
        let via = msg.top_via().expect("validated");
        let caller_flow = behind_nat(&via, src).then(|| src.flow());

        let mut base = msg.clone();
        let mf = base.max_forwards().unwrap_or(70);
        base.headers.set(
            HeaderName::MaxForwards,
            mf.saturating_sub(1).min(70).to_string(),
        );
        if let Some(v) = base
            .headers
            .get(&HeaderName::Via)
            .and_then(|v| stamp_via(v, src))
        {
            let first = base
                .headers
                .0
                .iter_mut()
                .find(|h| h.name == HeaderName::Via)
                .expect("has Via");
            first.value = Text::from(v);
        }
        // The entry for the caller's side, signed for the dialog (Call-ID, the initiator's
        // tag): only for a request that is record-routed.
        let caller_token = record_route.then(|| {
            self.route_tokens.sign(
                base.call_id().map_or("", |c| c.as_str()),
                base.from_hdr().and_then(|f| f.tag()).unwrap_or(""),
                caller_flow.as_ref(),
            )
        });
        let sips = is_sips(&base);
        let pid = self.next_id();
        shard.proxies.insert(
            pid,
            ProxyCtx {
                server_key: key.to_string(),
                request: msg,
                branches: Vec::with_capacity(targets.len()),
                best: None,
                challenges: vec![],
                final_sent: false,
                is_invite,
                timer_c_fired: false,
                base,
                caller_token,
                ingress: Listen {
                    transport: src.transport,
                    addr: src.local,
                },
                sips,
                plan,
                cancelled: false,
                seat: None,
            },
        );
        let (mut insecure_refused, mut too_many_headers) = (0, 0);
        for t in targets {
            let Err((why, rest)) = self.add_branch(shard, shard_idx, pid, t, now, out) else {
                continue;
            };
            match why {
                Unsent::Insecure => insecure_refused += 1,
                Unsent::TooManyHeaders => too_many_headers += 1,
                Unsent::NoListener => {}
            }
            // a gateway that cannot be reached from here: the next way out
            if let Some(next) = Target::chain(rest) {
                self.start_alternative(shard, shard_idx, pid, next, now, out);
            }
        }
        let started = shard
            .proxies
            .get(&pid)
            .is_some_and(|c| !c.branches.is_empty());
        if !started {
            // nothing could be sent: a plan may still have somewhere to go
            if self.plan_on_no_branch(shard, shard_idx, pid, now, out) {
                self.arm_plan_timers(shard, pid, now);
                if is_invite {
                    shard.schedule(now + TIMER_C, TimerRef::TimerC(pid));
                }
                if let Some(e) = shard.server.get_mut(key) {
                    e.proxy = Some(pid);
                }
                return;
            }
            let req = shard.proxies.remove(&pid).expect("inserted").request;
            let (status, reason) = if too_many_headers > 0 {
                (513, "Message Too Large: too many header fields to forward")
            } else if insecure_refused > 0 {
                (480, "sips: target is not reachable over TLS")
            } else {
                (503, "No usable transport to the destination")
            };
            return self.reply(shard, key, &req, status, Some(reason), now, out);
        }
        self.arm_plan_timers(shard, pid, now);
        if is_invite {
            shard.schedule(now + TIMER_C, TimerRef::TimerC(pid));
        }
        if let Some(e) = shard.server.get_mut(key) {
            e.proxy = Some(pid);
        }
    }

    /// Sends the proxied request of context `pid` to one more target (a new branch).
    pub(crate) fn add_branch(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        t: Target,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), (Unsent, Vec<Target>)> {
        let Some(egress) = self.egress(&t.dest) else {
            tracing::info!(dest = %t.dest.addr, transport = t.dest.transport.as_str(), "no listener for this transport");
            return Err((Unsent::NoListener, t.failover));
        };
        let Some(ctx) = shard.proxies.get(&pid) else {
            return Err((Unsent::NoListener, t.failover));
        };
        let mut fwd = ctx.base.clone();
        let caller_token = ctx.caller_token.clone();
        let ingress = ctx.ingress;
        let sips_request = ctx.sips;
        let is_invite = ctx.is_invite;
        if let Some(u) = &t.uri {
            fwd.set_uri(Text::from(u.as_str()));
        }
        // RFC 5630 §3.1.3: a sips: request goes to its next hop over TLS only.
        // The original Request-URI counts: the registered contact it is rewritten to may
        // be a sip: URI.
        if (sips_request || is_sips(&fwd)) && !t.dest.transport.is_secure() {
            tracing::info!(dest = %t.dest.addr, transport = t.dest.transport.as_str(), "sips: request not sent over an insecure transport");
            return Err((Unsent::Insecure, t.failover));
        }
        if let Some(e) = &t.edits {
            e.apply(&mut fwd);
        }
        if let Some(caller_token) = &caller_token {
            let call_id = fwd.call_id().map_or("", |c| c.as_str()).to_string();
            let tag = fwd
                .from_hdr()
                .and_then(|f| f.tag())
                .unwrap_or("")
                .to_string();
            if ingress != egress || t.flow {
                // RFC 5658 double Record-Route: one entry per side.
                let callee_token =
                    self.route_tokens
                        .sign(&call_id, &tag, t.flow.then_some(&t.dest));
                fwd.headers.push_front(
                    HeaderName::RecordRoute,
                    record_route_value(&ingress, caller_token),
                );
                fwd.headers.push_front(
                    HeaderName::RecordRoute,
                    record_route_value(&egress, &callee_token),
                );
            } else {
                fwd.headers.push_front(
                    HeaderName::RecordRoute,
                    record_route_value(&ingress, caller_token),
                );
            }
        }
        for p in t.path.iter().rev() {
            fwd.headers.push_front(HeaderName::Route, p.clone());
        }
        if t.via_pool {
            // another front end of the pool holds the contact's connection (it sends the
            // request over that flow) or the meeting (pool/)
            let call_id = fwd.call_id().map_or("", |c| c.as_str());
            let from_tag = fwd.from_hdr().and_then(|f| f.tag()).unwrap_or("");
            let seq = fwd.cseq().map_or(0, |c| c.seq);
            let token = self.route_tokens.sign_pool(
                call_id,
                from_tag,
                seq,
                t.pool_flow.as_ref(),
                crate::clock::real_unix_ms() as u64 / 1000,
            );
            fwd.headers.push_front(
                HeaderName::Route,
                format!(
                    "<sip:{token}@{};transport={};lr>",
                    t.dest.addr,
                    t.dest.transport.param()
                ),
            );
        }
        let branch = format!("{BRANCH_PREFIX}{}", random_token(16));
        fwd.headers.push_front(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={branch}",
                egress.transport.as_str(),
                Core::hostport(&egress)
            ),
        );
        // our Via and Record-Route must not take it past what a parser accepts (ours too)
        if fwd.headers.0.len() > confab_sip::parse::MAX_HEADER_FIELDS {
            return Err((Unsent::TooManyHeaders, t.failover));
        }
        let kind = if is_invite {
            Kind::Invite
        } else {
            Kind::NonInvite
        };
        let bytes = fwd.to_bytes();
        let ckey = client_key(&branch, false);
        let branch_idx = shard.proxies.get(&pid).map_or(0, |c| c.branches.len());
        let entry = ClientEntry {
            txn: ClientTransaction::new(kind, t.dest.transport.is_reliable(), self.timers, now),
            notify_sub: None,
            request: fwd,
            bytes: bytes.clone(),
            dest: t.dest,
            proxy: Some(pid),
            branch_idx,
            is_cancel: false,
            ack: None,
            scheduled: None,
            dial_out: None,
        };
        shard.client.insert(ckey.clone(), entry);
        self.txn_count.fetch_add(1, Ordering::Relaxed);
        self.reschedule_client(shard, &ckey);
        self.send(
            t.dest,
            bytes,
            Some(SendFailure {
                shard: shard_idx,
                client_key: ckey.clone(),
            }),
            out,
        );
        let fast_failover = t.pstn;
        if let Some(ctx) = shard.proxies.get_mut(&pid) {
            ctx.branches.push(Branch {
                client_key: ckey,
                final_status: None,
                provisional: false,
                cancel_wanted: false,
                cancelled: false,
                ringing: false,
                from_rewritten: t.edits.as_ref().is_some_and(|e| e.from.is_some()),
                pstn: t.pstn,
                failover: t.failover,
                abandoned: false,
            });
        }
        if fast_failover {
            self.arm_fast_failover(shard, pid, branch_idx, now);
        }
        Ok(())
    }

    /// A response arrived on branch `idx` of proxy context `pid` (our Via still on top).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn proxy_response(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        idx: usize,
        mut resp: Message,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let status = resp.status().unwrap_or(500);
        resp.headers.remove_first(&HeaderName::Via);
        // a branch whose From we rewrote (caller ID to a gateway): the caller gets its own back
        if let Some(ctx) = shard.proxies.get(&pid) {
            if ctx.branches.get(idx).is_some_and(|b| b.from_rewritten) {
                if let Some(from) = ctx.request.header(&HeaderName::From) {
                    resp.headers.set(HeaderName::From, from.clone());
                }
            }
        }
        if status >= 200 {
            return self.proxy_branch_final(shard, shard_idx, pid, idx, status, resp, now, out);
        }
        let Some(ctx) = shard.proxies.get_mut(&pid) else {
            return;
        };
        let b = &mut ctx.branches[idx];
        b.provisional = true;
        b.ringing |= status > 100;
        let cancel_now = b.cancel_wanted && !b.cancelled;
        let ckey = b.client_key.clone();
        let forward = status != 100 && !ctx.final_sent && !b.abandoned;
        let skey = ctx.server_key.clone();
        if cancel_now {
            self.cancel_branch(shard, shard_idx, pid, idx, &ckey, now, out);
        }
        if forward {
            self.respond(shard, &skey, resp, now, out);
        }
    }

    /// Branch `idx` ended with `status` (`resp` has our Via removed): forward or aggregate.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn proxy_branch_final(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        idx: usize,
        status: u16,
        resp: Message,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(ctx) = shard.proxies.get_mut(&pid) else {
            if (200..300).contains(&status) {
                self.forward_upstream_stateless(resp, out);
            }
            return;
        };
        if ctx.branches[idx].final_status.is_some() {
            // a further 2xx on an INVITE branch still goes upstream (§16.7 step 5)
            if (200..300).contains(&status) && ctx.is_invite {
                let skey = ctx.server_key.clone();
                self.send_upstream(shard, &skey, resp, now, out);
            }
            return;
        }
        ctx.branches[idx].final_status = Some(status);
        let skey = ctx.server_key.clone();
        let mut cancel_others = false;
        let mut send_now: Option<Message> = None;
        if (200..300).contains(&status) {
            ctx.final_sent = true;
            cancel_others = ctx.is_invite;
            let new_call = ctx.is_invite && ctx.request.to_hdr().is_some_and(|t| t.tag().is_none());
            if new_call {
                if let Some(c) = ctx.request.call_id().map(|c| c.to_string()) {
                    let seat = ctx.seat.take().and_then(|mut s| {
                        let to = resp.header(&HeaderName::To)?;
                        let tag = resp.to_hdr()?.tag()?.to_string();
                        s.dialog.answered_with(to, &tag);
                        Some(s)
                    });
                    let up = crate::core::CallUp {
                        since: now,
                        caller: ctx.request.from_hdr().and_then(|f| self.party_of(&f.uri())),
                        callee: ctx.request.to_hdr().and_then(|t| self.party_of(&t.uri())),
                        seat,
                    };
                    shard.call_up(&c, up, &self.active_calls);
                }
            }
            send_now = Some(resp);
        } else {
            let b = &mut ctx.branches[idx];
            // a gateway that failed (408, 5xx): the next way out, in the branch's place
            if b.pstn
                && !b.abandoned
                && !ctx.final_sent
                && !ctx.cancelled
                && !b.failover.is_empty()
                && confab_voice::fails_over(Some(status))
            {
                let next = Target::chain(std::mem::take(&mut b.failover)).expect("not empty");
                tracing::info!(status, "gateway failed: trying the next one");
                self.start_alternative(shard, shard_idx, pid, next, now, out);
                self.forget_if_done(shard, pid);
                return;
            }
            if b.abandoned {
                // given up by the call plan: its answer is not the call's
            } else {
                if status == 401 || status == 407 {
                    for name in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
                        for v in resp.headers.get_all(&name) {
                            ctx.challenges.push((name.clone(), v.clone()));
                        }
                    }
                }
                if status >= 600 && ctx.is_invite {
                    cancel_others = true;
                }
                let better = match &ctx.best {
                    None => true,
                    Some(b) => rank(status) < rank(b.status().unwrap_or(500)),
                };
                if better {
                    ctx.best = Some(resp);
                }
            }
            let all_done = ctx.branches.iter().all(|b| b.final_status.is_some());
            if all_done && !ctx.final_sent {
                let best_status = ctx.best.as_ref().map_or(408, |b| b.status().unwrap_or(500));
                // the call plan's next step (busy, declined, unanswered: forwarding, voicemail)
                if !ctx.cancelled
                    && self.plan_on_failure(shard, shard_idx, pid, best_status, now, out)
                {
                    self.forget_if_done(shard, pid);
                    return;
                }
                let Some(ctx) = shard.proxies.get_mut(&pid) else {
                    return;
                };
                ctx.final_sent = true;
                let mut best = match ctx.best.take() {
                    Some(b) => b,
                    None => self.error_response(&ctx.request, 408, "Request Timeout (no answer)"),
                };
                if best_status == 503 {
                    // §16.7 step 6: a 503 from downstream must not make the client back off from us.
                    best = response_to(
                        &best,
                        500,
                        Some("Server Internal Error (downstream unavailable)"),
                        None,
                    );
                }
                if best_status == 401 || best_status == 407 {
                    best.headers.remove_all(&HeaderName::WwwAuthenticate);
                    best.headers.remove_all(&HeaderName::ProxyAuthenticate);
                    for (n, v) in ctx.challenges.drain(..) {
                        best.headers.push(n, v);
                    }
                }
                send_now = Some(best);
            }
        }
        if cancel_others {
            if let Some(ctx) = shard.proxies.get(&pid) {
                for (i, k) in ctx.pending_branches(Some(idx)) {
                    self.cancel_branch(shard, shard_idx, pid, i, &k, now, out);
                }
            }
        }
        if let Some(r) = send_now {
            self.send_upstream(shard, &skey, r, now, out);
        }
        self.forget_if_done(shard, pid);
    }

    /// Drops proxy context `pid` once its answer is sent and every branch has ended.
    pub(crate) fn forget_if_done(&self, shard: &mut Shard, pid: u64) {
        if let Some(ctx) = shard.proxies.get(&pid) {
            if ctx.final_sent && ctx.branches.iter().all(|b| b.final_status.is_some()) {
                shard.proxies.remove(&pid);
            }
        }
    }

    /// Sends a response on the server transaction, or statelessly if it is gone.
    fn send_upstream(
        &self,
        shard: &mut Shard,
        skey: &str,
        resp: Message,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        if shard.server.contains_key(skey) {
            self.respond(shard, skey, resp, now, out);
        } else {
            self.forward_upstream_stateless(resp, out);
        }
    }

    fn forward_upstream_stateless(&self, resp: Message, out: &mut Vec<Outgoing>) {
        let Some(dest) = resp.top_via().and_then(|v| via_dest(&v)) else {
            return;
        };
        self.send(dest, resp.to_bytes(), None, out);
    }

    /// CANCELs branch `idx` (RFC 3261 §9.1): only once it has had a provisional response;
    /// before that the CANCEL waits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cancel_branch(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        idx: usize,
        ckey: &str,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(entry) = shard.client.get(ckey) else {
            return;
        };
        if entry.txn.kind() != Kind::Invite {
            return;
        }
        let proceeding = entry.txn.state() == State::Proceeding;
        let Some(ctx) = shard.proxies.get_mut(&pid) else {
            return;
        };
        let b = &mut ctx.branches[idx];
        if b.cancelled || b.final_status.is_some() {
            return;
        }
        if !proceeding {
            b.cancel_wanted = true;
            return;
        }
        b.cancelled = true;
        let cancel = build_cancel(&entry.request);
        let dest = entry.dest;
        let bytes = cancel.to_bytes();
        let branch = entry
            .request
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let cancel_key = client_key(&branch, true);
        shard.client.insert(
            cancel_key.clone(),
            ClientEntry {
                txn: ClientTransaction::new(
                    Kind::NonInvite,
                    dest.transport.is_reliable(),
                    self.timers,
                    now,
                ),
                notify_sub: None,
                request: cancel,
                bytes: bytes.clone(),
                dest,
                proxy: Some(pid),
                branch_idx: idx,
                is_cancel: true,
                ack: None,
                scheduled: None,
                dial_out: None,
            },
        );
        self.txn_count.fetch_add(1, Ordering::Relaxed);
        self.reschedule_client(shard, &cancel_key);
        self.send(
            dest,
            bytes,
            Some(SendFailure {
                shard: shard_idx,
                client_key: cancel_key,
            }),
            out,
        );
    }

    /// Timer C (§16.8): cancel branches that ring too long; a branch that still has no
    /// final answer 64·T1 after that is treated as a 408.
    pub(crate) fn timer_c(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        pid: u64,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(ctx) = shard.proxies.get_mut(&pid) else {
            return;
        };
        let pending = ctx.pending_branches(None);
        if !ctx.timer_c_fired {
            ctx.timer_c_fired = true;
            ctx.plan = None; // rung too long: nowhere else to go
            for (i, k) in &pending {
                self.cancel_branch(shard, shard_idx, pid, *i, k, now, out);
            }
            shard.schedule(now + self.timers.t1x64(), TimerRef::TimerC(pid));
            return;
        }
        for (i, k) in pending {
            if let Some(e) = self.remove_client(shard, &k) {
                let timeout = self.error_response(&e.request, 408, "Request Timeout");
                self.proxy_branch_final(shard, shard_idx, pid, i, 408, timeout, now, out);
            }
        }
    }

    /// CANCEL (RFC 3261 §9.2, §16.10): answered here hop by hop, then propagated.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_cancel(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        key: &str,
        msg: Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let via = msg.top_via().expect("validated");
        let invite_key = {
            let mut k = key.to_string();
            if let Some(stripped) = k.strip_suffix("|CANCEL") {
                k = format!("{stripped}|INVITE");
            }
            k
        };
        shard.server.insert(
            key.to_string(),
            crate::core::ServerEntry::new(
                confab_sip::transaction::ServerTransaction::new(
                    Kind::NonInvite,
                    src.transport.is_reliable(),
                    self.timers,
                ),
                crate::core::reply_dest(src, Some(&via)),
            ),
        );
        self.txn_count.fetch_add(1, Ordering::Relaxed);
        let Some(inv) = shard.server.get(&invite_key) else {
            return self.reply(shard, key, &msg, 481, None, now, out);
        };
        let (pid, done) = (inv.proxy, inv.txn.is_final());
        self.reply(shard, key, &msg, 200, None, now, out);
        if done {
            return;
        }
        match pid.and_then(|p| shard.proxies.get(&p).map(|c| (p, c))) {
            Some((pid, ctx)) => {
                let pending = ctx.pending_branches(None);
                if let Some(ctx) = shard.proxies.get_mut(&pid) {
                    // the caller gave up: no failover, forwarding or voicemail after this
                    ctx.cancelled = true;
                    ctx.plan = None;
                }
                for (i, k) in pending {
                    self.cancel_branch(shard, shard_idx, pid, i, &k, now, out);
                }
            }
            None => {
                // answered locally and still pending: end it with 487
                let mut invite = msg.clone();
                invite.start = confab_sip::StartLine::Request {
                    method: Method::Invite,
                    uri: msg.uri().cloned().unwrap_or_default(),
                    version: confab_sip::message::SIP_VERSION,
                };
                let seq = msg.cseq().map(|c| c.seq).unwrap_or(1);
                invite
                    .headers
                    .set(HeaderName::CSeq, format!("{seq} INVITE"));
                self.reply(shard, &invite_key, &invite, 487, None, now, out);
            }
        }
    }

    /// ACK for a 2xx is end-to-end: relay it along the route set without a transaction.
    pub(crate) fn forward_stateless_ack(
        &self,
        mut msg: Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        // An ACK cannot be challenged: it is relayed only inside a dialog confab record-routed
        // (its signed Route entry), or to a local user's registered contact.
        let Ok(own) = self.strip_own_routes(&mut msg, src) else {
            return;
        };
        if msg.max_forwards() == Some(0) {
            return;
        }
        let dest = if let Some(r) = msg.headers.get(&HeaderName::Route) {
            if !own.signed {
                return;
            }
            NameAddr::parse(r).ok().and_then(|na| uri_dest(&na.uri()))
        } else if let Some(f) = own.flow {
            Some(f) // only a signed entry names a flow
        } else {
            let Some(uri_text) = msg.uri().cloned() else {
                return;
            };
            let Ok(uri) = Uri::parse(&uri_text) else {
                return;
            };
            match self.local_aor(&uri) {
                Some(aor) => self
                    .targets_for(&aor, now)
                    .into_iter()
                    .next()
                    .map(|t| t.dest),
                None if own.signed => uri_dest(&uri),
                None => return,
            }
        };
        let Some(dest) = dest else { return };
        let Some(egress) = self.egress(&dest) else {
            return;
        };
        let mf = msg.max_forwards().unwrap_or(70);
        msg.headers.set(
            HeaderName::MaxForwards,
            mf.saturating_sub(1).min(70).to_string(),
        );
        // our Via must not take it past what a parser accepts (ours too): such an ACK
        // cannot be relayed
        if msg.headers.0.len() >= confab_sip::parse::MAX_HEADER_FIELDS {
            return;
        }
        // The same ACK retransmitted must get the same branch (§16.11): derive it.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        msg.top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default()
            .hash(&mut h);
        msg.call_id().map(|c| c.to_string()).hash(&mut h);
        msg.headers.push_front(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={BRANCH_PREFIX}a{:016x}",
                egress.transport.as_str(),
                Core::hostport(&egress),
                h.finish()
            ),
        );
        self.send(dest, msg.to_bytes(), None, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;

    #[test]
    fn via_gets_received_and_rport() {
        let src = Source {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "10.0.0.9:4000".parse().unwrap(),
            conn: None,
            overloaded: false,
        };
        let v = stamp_via("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKx;rport", &src).unwrap();
        assert_eq!(
            v,
            "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKx;received=10.0.0.9;rport=4000"
        );
        assert_eq!(
            stamp_via("SIP/2.0/UDP 10.0.0.9:4000;branch=z9hG4bKx", &src),
            None
        );
    }

    #[test]
    fn ranking_prefers_6xx_then_lowest_class() {
        assert!(rank(603) < rank(302));
        assert!(rank(404) < rank(486) || rank(404) < rank(500));
        assert!(rank(500) < rank(503));
    }
}
