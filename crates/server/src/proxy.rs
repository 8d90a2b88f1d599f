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

impl ProxyCtx {
    /// Branches still waiting for a final response (index and client key), except `skip`.
    fn pending_branches(&self, skip: Option<usize>) -> Vec<(usize, String)> {
        self.branches
            .iter()
            .enumerate()
            .filter(|(i, b)| Some(*i) != skip && b.final_status.is_none())
            .map(|(i, b)| (i, b.client_key.clone()))
            .collect()
    }
}

impl Core {
    /// Forwards the request of server transaction `key` to every target in parallel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn proxy(
        &self,
        shard: &mut Shard,
        shard_idx: usize,
        key: &str,
        msg: Message,
        src: &Source,
        targets: Vec<Target>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let method = msg.method().cloned().expect("request");
        let is_invite = method == Method::Invite;
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
        // The dialog our Record-Route entries are signed for (Call-ID, the initiator's tag),
        // and the entry for the caller's side: only for a request that is record-routed.
        let dialog = record_route.then(|| {
            (
                base.call_id().map_or("", |c| c.as_str()),
                base.from_hdr().and_then(|f| f.tag()).unwrap_or(""),
            )
        });
        let caller_token =
            dialog.map(|(call_id, tag)| self.route_tokens.sign(call_id, tag, caller_flow.as_ref()));

        let pid = self.next_id();
        let mut ctx = ProxyCtx {
            server_key: key.to_string(),
            request: msg,
            branches: Vec::with_capacity(targets.len()),
            best: None,
            challenges: vec![],
            final_sent: false,
            is_invite,
            timer_c_fired: false,
        };
        let ingress = Listen {
            transport: src.transport,
            addr: src.local,
        };
        let kind = if is_invite {
            Kind::Invite
        } else {
            Kind::NonInvite
        };
        let is_sips = |m: &Message| {
            m.uri()
                .is_some_and(|u| u.len() >= 5 && u.as_bytes()[..5].eq_ignore_ascii_case(b"sips:"))
        };
        let sips_request = is_sips(&base);
        let (mut insecure_refused, mut too_many_headers) = (0, 0);
        for t in targets {
            let Some(egress) = self.egress(&t.dest) else {
                tracing::info!(dest = %t.dest.addr, transport = t.dest.transport.as_str(), "no listener for this transport");
                continue;
            };
            let mut fwd = base.clone();
            if let Some(u) = &t.uri {
                fwd.set_uri(Text::from(u.as_str()));
            }
            // RFC 5630 §3.1.3: a sips: request goes to its next hop over TLS only.
            // The original Request-URI counts: the registered contact it is rewritten to may
            // be a sip: URI.
            if (sips_request || is_sips(&fwd)) && !t.dest.transport.is_secure() {
                tracing::info!(dest = %t.dest.addr, transport = t.dest.transport.as_str(), "sips: request not sent over an insecure transport");
                insecure_refused += 1;
                continue;
            }
            if let (Some(caller_token), Some((call_id, tag))) = (&caller_token, dialog) {
                if ingress != egress || t.flow {
                    // RFC 5658 double Record-Route: one entry per side.
                    let callee_token =
                        self.route_tokens
                            .sign(call_id, tag, t.flow.then_some(&t.dest));
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
                too_many_headers += 1;
                continue;
            }
            let bytes = fwd.to_bytes();
            let ckey = client_key(&branch, false);
            let entry = ClientEntry {
                txn: ClientTransaction::new(kind, t.dest.transport.is_reliable(), self.timers, now),
                notify_sub: None,
                request: fwd,
                bytes: bytes.clone(),
                dest: t.dest,
                proxy: Some(pid),
                branch_idx: ctx.branches.len(),
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
            ctx.branches.push(Branch {
                client_key: ckey,
                final_status: None,
                provisional: false,
                cancel_wanted: false,
                cancelled: false,
            });
        }
        if ctx.branches.is_empty() {
            let req = ctx.request;
            if too_many_headers > 0 {
                return self.reply(
                    shard,
                    key,
                    &req,
                    513,
                    Some("Message Too Large: too many header fields to forward"),
                    now,
                    out,
                );
            }
            if insecure_refused > 0 {
                return self.reply(
                    shard,
                    key,
                    &req,
                    480,
                    Some("sips: target is not reachable over TLS"),
                    now,
                    out,
                );
            }
            return self.reply(
                shard,
                key,
                &req,
                503,
                Some("No usable transport to the destination"),
                now,
                out,
            );
        }
        if is_invite {
            shard.schedule(now + TIMER_C, TimerRef::TimerC(pid));
        }
        shard.proxies.insert(pid, ctx);
        if let Some(e) = shard.server.get_mut(key) {
            e.proxy = Some(pid);
        }
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
        if status >= 200 {
            return self.proxy_branch_final(shard, shard_idx, pid, idx, status, resp, now, out);
        }
        let Some(ctx) = shard.proxies.get_mut(&pid) else {
            return;
        };
        let b = &mut ctx.branches[idx];
        b.provisional = true;
        let cancel_now = b.cancel_wanted && !b.cancelled;
        let ckey = b.client_key.clone();
        let forward = status != 100 && !ctx.final_sent;
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
            send_now = Some(resp);
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
            let all_done = ctx.branches.iter().all(|b| b.final_status.is_some());
            if all_done && !ctx.final_sent {
                ctx.final_sent = true;
                let mut best = ctx.best.take().expect("at least this response");
                let best_status = best.status().unwrap_or(500);
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
            for (i, k) in ctx.pending_branches(Some(idx)) {
                self.cancel_branch(shard, shard_idx, pid, i, &k, now, out);
            }
        }
        if let Some(r) = send_now {
            self.send_upstream(shard, &skey, r, now, out);
        }
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
    fn cancel_branch(
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
                for (i, k) in ctx.pending_branches(None) {
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
