//! The presence server (RFC 3856 presence agent for every local user): PUBLISH (RFC 3903),
//! SUBSCRIBE/NOTIFY (RFC 6665) for `presence` and `presence.winfo` (RFC 3857), documents
//! from several devices combined (PIDF, RFC 3863), and what each watcher sees filtered by
//! the presentity's Lync 2013 privacy relationship with the watcher (privacy.rs).

use crate::core::{behind_nat, random_token, uri_dest, Core, Job, Shard, SERVER_NAME};
use crate::net::{Dest, Outgoing, Source};
use crate::users::user_key;
use bytes::Bytes;
use confab_sip::pidf::{self, Level, Presence as Pidf};
use confab_sip::values::NameAddr;
use confab_sip::{response_to, HeaderName, Message, Method, Text, Uri};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Package {
    Presence,
    Winfo,
}

impl Package {
    fn parse(event: &str) -> Option<Package> {
        let name = event.split(';').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("presence") {
            Some(Package::Presence)
        } else if name.eq_ignore_ascii_case("presence.winfo") {
            Some(Package::Winfo)
        } else {
            None
        }
    }

    pub fn event(self) -> &'static str {
        match self {
            Package::Presence => "presence",
            Package::Winfo => "presence.winfo",
        }
    }
}

struct Publication {
    /// Stable for the publication's life (the pool's shared copy is keyed by it).
    id: String,
    etag: String,
    expires_at: Instant,
    doc: Arc<Pidf>,
    /// The front end of the pool that took it, when another one (pool/).
    owner: Option<Arc<str>>,
}

pub(crate) struct Subscription {
    pub package: Package,
    /// watcher and presentity as user@domain keys
    pub watcher: String,
    pub presentity: String,
    pub call_id: String,
    pub our_tag: String,
    /// The SUBSCRIBE's From (our To), and its To with our tag (our From).
    pub their_from: String,
    pub our_from: String,
    pub target: String,
    pub routes: Vec<String>,
    pub dest: Dest,
    pub cseq: u32,
    pub expires_at: Instant,
    pub winfo_version: u32,
}

#[derive(Default)]
struct State {
    publications: HashMap<String, Vec<Publication>>,
    subs: HashMap<u64, Subscription>,
    /// presentity → subscriptions (both packages)
    by_presentity: HashMap<String, Vec<u64>>,
    /// (Call-ID, our tag) → subscription, for in-dialog SUBSCRIBE
    by_dialog: HashMap<(String, String), u64>,
    /// Publications in all (the sum of `publications`' lengths), and subscriptions per
    /// watcher: the `[limits]` on them are checked without a scan.
    pub_total: usize,
    subs_by_watcher: HashMap<String, usize>,
}

#[derive(Default)]
pub struct PresenceServer {
    state: Mutex<State>,
}

/// What a NOTIFY should say.
pub(crate) struct NotifyPlan {
    pub req: Message,
    pub dest: Dest,
}

impl PresenceServer {
    pub fn subscription_count(&self) -> usize {
        self.state.lock().subs.len()
    }

    /// (watcher, presentity, package) of every subscription, at most `max`.
    pub(crate) fn subscriptions_list(&self, max: usize) -> Vec<(String, String, Package)> {
        self.state
            .lock()
            .subs
            .values()
            .take(max)
            .map(|s| (s.watcher.clone(), s.presentity.clone(), s.package))
            .collect()
    }

    pub fn publication_count(&self) -> usize {
        self.state.lock().pub_total
    }

    /// Subscriptions held by `watcher` (user@domain).
    pub fn subscriptions_of(&self, watcher: &str) -> usize {
        self.state
            .lock()
            .subs_by_watcher
            .get(watcher)
            .copied()
            .unwrap_or(0)
    }

    /// Removes every publication of `aor` (its last device signed out: what those devices
    /// published no longer describes anyone, as Lync drops an endpoint's publications with
    /// its sign-in). Returns whether there were any.
    /// Returns the ids of the publications removed (the pool is told of those this server
    /// removes).
    pub(crate) fn drop_publications(&self, aor: &str) -> Vec<String> {
        let mut st = self.state.lock();
        match st.publications.remove(aor) {
            Some(list) => {
                st.pub_total -= list.len();
                list.into_iter().map(|p| p.id).collect()
            }
            None => vec![],
        }
    }

    /// A publication another front end of the pool shared (or removed), applied here;
    /// `own`: this front end's own from before a restart. Returns whether the presentity's
    /// documents changed.
    pub(crate) fn apply_shared(
        &self,
        p: &confab_store::SharedPublication,
        own: bool,
        expires_at: Option<Instant>,
    ) -> bool {
        let mut st = self.state.lock();
        let st = &mut *st;
        let list = st.publications.entry(p.presentity.clone()).or_default();
        let before = list.len();
        let had = list.iter().position(|x| x.id == p.publication);
        let changed = match (had, expires_at) {
            (Some(i), None) => {
                list.remove(i);
                true
            }
            (None, None) => false,
            (Some(i), Some(until)) if p.doc.is_empty() => {
                // a refresh whose document the store never had: keep ours
                list[i].etag = p.etag.clone();
                list[i].expires_at = until;
                false
            }
            (None, Some(_)) if p.doc.is_empty() => false,
            (had, Some(until)) => {
                let doc = match Pidf::parse(p.doc.as_bytes()) {
                    Ok(d) => Arc::new(d),
                    Err(e) => {
                        tracing::warn!(presentity = %p.presentity, "shared publication with a bad document: {e}");
                        return false;
                    }
                };
                let owner = (!own).then(|| Arc::<str>::from(p.front_end.as_str()));
                let new = Publication {
                    id: p.publication.clone(),
                    etag: p.etag.clone(),
                    expires_at: until,
                    doc,
                    owner,
                };
                match had {
                    Some(i) => {
                        let same = list[i].doc.to_xml() == new.doc.to_xml();
                        list[i] = new;
                        !same
                    }
                    None => {
                        list.push(new);
                        true
                    }
                }
            }
        };
        st.pub_total = st.pub_total + list.len() - before;
        if list.is_empty() {
            st.publications.remove(&p.presentity);
        }
        changed
    }

    /// Drops the publications other front ends hold whose owner `owner` picks (those that
    /// died, or all before reading the shared copies again); returns their presentities.
    pub(crate) fn drop_owned_by(&self, owner: impl Fn(&str) -> bool) -> Vec<String> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let mut touched = vec![];
        let mut removed = 0;
        st.publications.retain(|aor, list| {
            let before = list.len();
            list.retain(|p| !p.owner.as_deref().is_some_and(&owner));
            if list.len() != before {
                removed += before - list.len();
                touched.push(aor.clone());
            }
            !list.is_empty()
        });
        st.pub_total -= removed;
        touched
    }

    /// Live publications of `aor`, oldest first.
    fn docs(&self, aor: &str, now: Instant) -> Vec<Arc<Pidf>> {
        let st = self.state.lock();
        st.publications
            .get(aor)
            .map(|v| {
                v.iter()
                    .filter(|p| p.expires_at > now)
                    .map(|p| p.doc.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remove_sub(st: &mut State, id: u64) -> Option<Subscription> {
        let s = st.subs.remove(&id)?;
        if let Some(n) = st.subs_by_watcher.get_mut(&s.watcher) {
            *n -= 1;
            if *n == 0 {
                st.subs_by_watcher.remove(&s.watcher);
            }
        }
        if let Some(v) = st.by_presentity.get_mut(&s.presentity) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                st.by_presentity.remove(&s.presentity);
            }
        }
        st.by_dialog.remove(&(s.call_id.clone(), s.our_tag.clone()));
        Some(s)
    }

    pub(crate) fn subs_of(&self, presentity: &str, package: Package) -> Vec<u64> {
        let st = self.state.lock();
        st.by_presentity
            .get(presentity)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|id| st.subs.get(id).is_some_and(|s| s.package == package))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Live publications and UDP subscriptions, for saving (TCP watchers lose their
    /// connection in a restart and subscribe again).
    pub(crate) fn export(
        &self,
        clock: &crate::state::Clock,
    ) -> (
        Vec<crate::state::SavedPublication>,
        Vec<crate::state::SavedSubscription>,
    ) {
        let st = self.state.lock();
        let pubs = st
            .publications
            .iter()
            .flat_map(|(aor, list)| {
                list.iter().map(move |p| crate::state::SavedPublication {
                    aor: aor.clone(),
                    etag: p.etag.clone(),
                    expires: clock.to_unix(p.expires_at),
                    doc: p.doc.to_xml(),
                })
            })
            .collect();
        let subs = st
            .subs
            .values()
            .filter(|s| s.dest.transport == crate::config::Transport::Udp)
            .map(|s| crate::state::SavedSubscription {
                winfo: s.package == Package::Winfo,
                watcher: s.watcher.clone(),
                presentity: s.presentity.clone(),
                call_id: s.call_id.clone(),
                our_tag: s.our_tag.clone(),
                their_from: s.their_from.clone(),
                our_from: s.our_from.clone(),
                target: s.target.clone(),
                routes: s.routes.clone(),
                dest: s.dest.addr,
                cseq: s.cseq,
                expires: clock.to_unix(s.expires_at),
            })
            .collect();
        (pubs, subs)
    }

    /// Takes back saved state; returns how many publications and subscriptions.
    pub(crate) fn import(
        &self,
        clock: &crate::state::Clock,
        pubs: Vec<crate::state::SavedPublication>,
        subs: Vec<crate::state::SavedSubscription>,
        mut next_id: impl FnMut() -> u64,
    ) -> (usize, usize) {
        let mut st = self.state.lock();
        let (mut np, mut ns) = (0, 0);
        for p in pubs {
            let (Some(expires_at), Ok(doc)) =
                (clock.to_instant(p.expires), Pidf::parse(p.doc.as_bytes()))
            else {
                continue;
            };
            st.publications.entry(p.aor).or_default().push(Publication {
                id: random_token(16),
                etag: p.etag,
                expires_at,
                doc: Arc::new(doc),
                owner: None,
            });
            st.pub_total += 1;
            np += 1;
        }
        for s in subs {
            let Some(expires_at) = clock.to_instant(s.expires) else {
                continue;
            };
            let id = next_id();
            st.by_presentity
                .entry(s.presentity.clone())
                .or_default()
                .push(id);
            st.by_dialog
                .insert((s.call_id.clone(), s.our_tag.clone()), id);
            *st.subs_by_watcher.entry(s.watcher.clone()).or_default() += 1;
            st.subs.insert(
                id,
                Subscription {
                    package: if s.winfo {
                        Package::Winfo
                    } else {
                        Package::Presence
                    },
                    watcher: s.watcher,
                    presentity: s.presentity,
                    call_id: s.call_id,
                    our_tag: s.our_tag,
                    their_from: s.their_from,
                    our_from: s.our_from,
                    target: s.target,
                    routes: s.routes,
                    dest: Dest {
                        transport: crate::config::Transport::Udp,
                        addr: s.dest,
                        conn: None,
                    },
                    cseq: s.cseq,
                    expires_at,
                    winfo_version: 0,
                },
            );
            ns += 1;
        }
        (np, ns)
    }

    pub(crate) fn drop_sub(&self, id: u64) -> Option<String> {
        let mut st = self.state.lock();
        Self::remove_sub(&mut st, id).map(|s| s.presentity)
    }
}

fn event_header(msg: &Message) -> Option<&Text> {
    msg.header(&HeaderName::Event)
}

impl Core {
    /// Whether this request is for the presence agent (rather than to be proxied).
    pub(crate) fn is_presence_request(&self, msg: &Message) -> bool {
        match msg.method() {
            Some(Method::Publish) => true,
            Some(Method::Subscribe) => {
                event_header(msg).is_some_and(|e| Package::parse(e).is_some())
            }
            _ => false,
        }
    }

    /// In-dialog SUBSCRIBE for one of our subscriptions?
    pub(crate) fn is_our_subscription_dialog(&self, msg: &Message) -> bool {
        if msg.method() != Some(&Method::Subscribe) {
            return false;
        }
        let (Some(cid), Some(tag)) = (
            msg.call_id(),
            msg.to_hdr().and_then(|t| t.tag().map(str::to_owned)),
        ) else {
            return false;
        };
        self.presence
            .state
            .lock()
            .by_dialog
            .contains_key(&(cid.to_string(), tag))
    }

    /// PUBLISH (RFC 3903 §6). `publisher` is the authenticated user key.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_publish(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        presentity: &str,
        publisher: Option<&str>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let err = |code: u16, reason: &str| self.error_response(msg, code, reason);
        let resp = (|| {
            match event_header(msg).map(|e| Package::parse(e)) {
                Some(Some(Package::Presence)) => {}
                _ => {
                    let mut r = err(489, "Bad Event");
                    r.headers.push(HeaderName::AllowEvents, "presence");
                    return r;
                }
            }
            if publisher != Some(presentity) {
                return err(403, "Only the presentity may publish its presence");
            }
            let expires = msg.expires().unwrap_or(self.cfg.presence.default_expires);
            if expires != 0 && expires < self.cfg.presence.min_expires {
                let mut r = err(423, "Interval Too Brief");
                r.headers.push(
                    HeaderName::MinExpires,
                    self.cfg.presence.min_expires.to_string(),
                );
                return r;
            }
            let expires = expires.min(self.cfg.presence.max_expires);
            let doc = if msg.body.is_empty() {
                None
            } else {
                let ct = msg
                    .header(&HeaderName::ContentType)
                    .map(|c| c.to_ascii_lowercase())
                    .unwrap_or_default();
                if !ct.starts_with("application/pidf+xml") {
                    let mut r = err(415, "Unsupported Media Type");
                    r.headers.push(HeaderName::Accept, "application/pidf+xml");
                    return r;
                }
                match Pidf::parse(&msg.body) {
                    Ok(d) => Some(Arc::new(d)),
                    Err(e) => return err(400, &format!("Bad PIDF: {e}")),
                }
            };
            let if_match = msg
                .header(&HeaderName::SipIfMatch)
                .map(|v| v.trim().to_string());
            let new_etag = random_token(16);
            let limits = &self.cfg.limits;
            let mut guard = self.presence.state.lock();
            let st = &mut *guard;
            let list = st.publications.entry(presentity.to_string()).or_default();
            let before = list.len();
            list.retain(|p| p.expires_at > now);
            st.pub_total -= before - list.len();
            let changed;
            // what the pool's other front ends are told: (id, Some(body) or None: removed)
            let shared: Option<(String, Option<bytes::Bytes>)>;
            match if_match {
                Some(tag) => {
                    let Some(i) = list.iter().position(|p| p.etag == tag) else {
                        drop(guard);
                        return err(412, "Conditional Request Failed");
                    };
                    if expires == 0 {
                        shared = Some((list.remove(i).id, None));
                        st.pub_total -= 1;
                        changed = true;
                    } else {
                        // body-less refresh keeps the document (§4.3); a body modifies it
                        changed = doc.is_some();
                        if let Some(d) = doc {
                            list[i].doc = d;
                        }
                        list[i].etag = new_etag.clone();
                        list[i].expires_at = now + Duration::from_secs(expires as u64);
                        // refreshed here: this front end holds it now
                        list[i].owner = None;
                        shared = Some((
                            list[i].id.clone(),
                            Some(if changed {
                                msg.body.clone()
                            } else {
                                Default::default()
                            }),
                        ));
                    }
                }
                None => {
                    let Some(d) = doc else {
                        drop(guard);
                        return err(400, "PUBLISH without a body needs SIP-If-Match");
                    };
                    if expires == 0 {
                        drop(guard);
                        return err(400, "Initial PUBLISH with Expires 0");
                    }
                    if list.len() >= limits.max_publications_per_user {
                        drop(guard);
                        return err(
                            403,
                            &format!(
                                "Too many presence publications for this user (limit {})",
                                limits.max_publications_per_user
                            ),
                        );
                    }
                    if st.pub_total >= limits.max_publications {
                        drop(guard);
                        let mut r = err(503, "Presence publication table full");
                        r.headers.push(HeaderName::RetryAfter, "60");
                        return r;
                    }
                    st.pub_total += 1;
                    let id = random_token(16);
                    shared = Some((id.clone(), Some(msg.body.clone())));
                    list.push(Publication {
                        id,
                        etag: new_etag.clone(),
                        expires_at: now + Duration::from_secs(expires as u64),
                        doc: d,
                        owner: None,
                    });
                    changed = true;
                }
            }
            if list.is_empty() {
                st.publications.remove(presentity);
            }
            drop(guard);
            if let Some((id, body)) = shared {
                let until = now + Duration::from_secs(expires as u64);
                self.share_publication(presentity, id, &new_etag, body, until);
            }
            if changed {
                shard.jobs.push(Job::NotifyWatchers(presentity.to_string()));
            }
            let mut r = response_to(msg, 200, None, Some(&random_token(10)));
            if expires > 0 {
                r.headers.push(HeaderName::SipETag, new_etag);
            }
            r.headers.push(HeaderName::Expires, expires.to_string());
            r.headers.push(HeaderName::Server, SERVER_NAME);
            r
        })();
        self.respond(shard, key, resp, now, out);
    }

    /// Initial SUBSCRIBE to a local presentity. `watcher` is the watcher's user@domain key.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_subscribe(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        src: &Source,
        presentity: &str,
        watcher: &str,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let err = |code: u16, reason: &str| self.error_response(msg, code, reason);
        let package = event_header(msg)
            .and_then(|e| Package::parse(e))
            .expect("checked by is_presence_request");
        if package == Package::Winfo && watcher != presentity {
            return self.respond(
                shard,
                key,
                err(403, "Only the presentity may watch its watchers"),
                now,
                out,
            );
        }
        let expires = msg.expires().unwrap_or(self.cfg.presence.default_expires);
        if expires != 0 && expires < self.cfg.presence.min_expires {
            let mut r = err(423, "Interval Too Brief");
            r.headers.push(
                HeaderName::MinExpires,
                self.cfg.presence.min_expires.to_string(),
            );
            return self.respond(shard, key, r, now, out);
        }
        let expires = expires.min(self.cfg.presence.max_expires);
        let Some(contact) = msg
            .header(&HeaderName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|c| c.uri_str.to_string())
        else {
            return self.respond(shard, key, err(400, "SUBSCRIBE without Contact"), now, out);
        };
        if !Uri::parse(&contact)
            .is_ok_and(|u| matches!(u.scheme, confab_sip::Scheme::Sip | confab_sip::Scheme::Sips))
        {
            return self.respond(shard, key, err(400, "Contact must be a SIP URI"), now, out);
        }
        let routes: Vec<String> = msg
            .headers
            .get_all(&HeaderName::RecordRoute)
            .map(|r| r.to_string())
            .collect();
        let Some(dest) = self.dialog_dest(msg, src, &contact, &routes) else {
            return self.respond(
                shard,
                key,
                err(
                    400,
                    "Watcher's Contact is not reachable (host must be an IP address)",
                ),
                now,
                out,
            );
        };
        let our_tag = random_token(12);
        let to = msg.header(&HeaderName::To).expect("validated");
        let our_from = format!("{to};tag={our_tag}");
        let call_id = msg.call_id().expect("validated").to_string();
        let id = self.next_id();
        let sub = Subscription {
            package,
            watcher: watcher.to_string(),
            presentity: presentity.to_string(),
            call_id: call_id.clone(),
            our_tag: our_tag.clone(),
            their_from: msg
                .header(&HeaderName::From)
                .expect("validated")
                .to_string(),
            our_from,
            target: contact,
            routes,
            dest,
            cseq: 0,
            expires_at: now + Duration::from_secs(expires as u64),
            winfo_version: 0,
        };
        {
            let limits = &self.cfg.limits;
            let mut st = self.presence.state.lock();
            let full = if st.subs.len() >= limits.max_subscriptions {
                let mut r = err(503, "Presence subscription table full");
                r.headers.push(HeaderName::RetryAfter, "60");
                Some(r)
            } else if st.subs_by_watcher.get(watcher).copied().unwrap_or(0)
                >= limits.max_subscriptions_per_user
            {
                Some(err(
                    403,
                    &format!(
                        "Too many presence subscriptions for this watcher (limit {})",
                        limits.max_subscriptions_per_user
                    ),
                ))
            } else {
                None
            };
            if let Some(r) = full {
                drop(st);
                return self.respond(shard, key, r, now, out);
            }
            *st.subs_by_watcher.entry(watcher.to_string()).or_default() += 1;
            st.subs.insert(id, sub);
            st.by_presentity
                .entry(presentity.to_string())
                .or_default()
                .push(id);
            st.by_dialog.insert((call_id, our_tag.clone()), id);
        }
        let mut r = response_to(msg, 200, None, Some(&our_tag));
        r.headers.push(HeaderName::Expires, expires.to_string());
        r.headers.push(HeaderName::Contact, self.own_contact(src));
        r.headers.push(HeaderName::Server, SERVER_NAME);
        self.respond(shard, key, r, now, out);
        // RFC 6665 §4.2.1.2: an immediate NOTIFY with the current state (terminated for a fetch)
        shard.jobs.push(Job::NotifySub(id));
        if package == Package::Presence {
            shard.jobs.push(Job::Winfo(presentity.to_string()));
        }
    }

    /// In-dialog SUBSCRIBE: refresh or unsubscribe (Expires 0).
    pub(crate) fn handle_resubscribe(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let tag = msg
            .to_hdr()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        let cid = msg.call_id().map(|c| c.to_string()).unwrap_or_default();
        let expires = msg.expires().unwrap_or(self.cfg.presence.default_expires);
        if expires != 0 && expires < self.cfg.presence.min_expires {
            let mut r = self.error_response(msg, 423, "Interval Too Brief");
            r.headers.push(
                HeaderName::MinExpires,
                self.cfg.presence.min_expires.to_string(),
            );
            return self.respond(shard, key, r, now, out);
        }
        let expires = expires.min(self.cfg.presence.max_expires);
        let found = {
            let mut st = self.presence.state.lock();
            match st.by_dialog.get(&(cid, tag.clone())).copied() {
                Some(id) => {
                    let s = st.subs.get_mut(&id).expect("indexed");
                    s.expires_at = now + Duration::from_secs(expires as u64);
                    if let Some(c) = msg
                        .header(&HeaderName::Contact)
                        .and_then(|c| NameAddr::parse(c).ok())
                    {
                        if Uri::parse(c.uri_str).is_ok_and(|u| {
                            matches!(u.scheme, confab_sip::Scheme::Sip | confab_sip::Scheme::Sips)
                        }) {
                            s.target = c.uri_str.to_string();
                        }
                    }
                    Some((id, s.package, s.presentity.clone()))
                }
                None => None,
            }
        };
        let Some((id, package, presentity)) = found else {
            return self.reply(
                shard,
                key,
                msg,
                481,
                Some("Subscription Does Not Exist"),
                now,
                out,
            );
        };
        let mut r = response_to(msg, 200, None, Some(&tag));
        r.headers.push(HeaderName::Expires, expires.to_string());
        r.headers.push(HeaderName::Server, SERVER_NAME);
        self.respond(shard, key, r, now, out);
        shard.jobs.push(Job::NotifySub(id));
        if expires == 0 && package == Package::Presence {
            shard.jobs.push(Job::Winfo(presentity));
        }
    }

    /// Where in-dialog requests to a peer go: its first Record-Route, or its flow when it
    /// is behind NAT or on TCP, or its Contact.
    pub(crate) fn dialog_dest(
        &self,
        msg: &Message,
        src: &Source,
        contact: &str,
        routes: &[String],
    ) -> Option<Dest> {
        if let Some(first) = routes.first() {
            return NameAddr::parse(first)
                .ok()
                .and_then(|na| uri_dest(&na.uri()));
        }
        let via = msg.top_via()?;
        let contact_uri = Uri::parse(contact).ok()?;
        if behind_nat(&via, src) || src.transport.is_reliable() {
            return Some(src.flow());
        }
        uri_dest(&contact_uri)
    }

    pub(crate) fn own_contact(&self, src: &Source) -> String {
        let l = crate::config::Listen {
            transport: src.transport,
            addr: src.local,
        };
        format!(
            "<sip:{};transport={}>",
            Core::hostport(&l),
            src.transport.param()
        )
    }

    /// The document `watcher` may see of `presentity` now.
    pub(crate) fn presence_view(&self, presentity: &str, watcher: &str, now: Instant) -> Pidf {
        let entity = format!("sip:{presentity}");
        let level = self.privacy.level(presentity, watcher);
        if level == Level::Blocked {
            return pidf::basic(&entity, false);
        }
        let docs = self.presence.docs(presentity, now);
        let doc = if docs.is_empty() {
            // no publication: what the registrar knows
            pidf::basic(&entity, !self.location.lookup(presentity, now).is_empty())
        } else {
            let refs: Vec<&Pidf> = docs.iter().map(|d| d.as_ref()).collect();
            pidf::combine(&entity, &refs)
        };
        pidf::view(&doc, level)
    }

    /// Whether the presentity is in Do Not Disturb (from its published documents).
    pub(crate) fn is_dnd(&self, presentity: &str, now: Instant) -> bool {
        self.presence
            .docs(presentity, now)
            .iter()
            .any(|d| pidf::is_dnd(d))
    }

    /// Builds the NOTIFY for subscription `id` (None if it is gone). Terminated
    /// subscriptions are removed here, after their last NOTIFY is built.
    pub(crate) fn plan_notify(
        &self,
        id: u64,
        reason: Option<&str>,
        now: Instant,
    ) -> Option<NotifyPlan> {
        // Gather under the lock, build the body outside it (the view takes the lock too).
        let (package, presentity, watcher, expires_at) = {
            let st = self.presence.state.lock();
            let s = st.subs.get(&id)?;
            (
                s.package,
                s.presentity.clone(),
                s.watcher.clone(),
                s.expires_at,
            )
        };
        let terminated = reason.is_some() || expires_at <= now;
        let (ctype, body) = match package {
            Package::Presence => (
                "application/pidf+xml",
                self.presence_view(&presentity, &watcher, now).to_xml(),
            ),
            Package::Winfo => {
                let watchers = self.watchers_of(&presentity);
                let version = {
                    let mut st = self.presence.state.lock();
                    let s = st.subs.get_mut(&id)?;
                    let v = s.winfo_version;
                    s.winfo_version += 1;
                    v
                };
                (
                    "application/watcherinfo+xml",
                    pidf::watcherinfo(&format!("sip:{presentity}"), version, true, &watchers),
                )
            }
        };
        let mut st = self.presence.state.lock();
        let s = st.subs.get_mut(&id)?;
        s.cseq += 1;
        let mut req = Message::request(Method::Notify, Text::from(s.target.as_str()));
        req.headers.push(HeaderName::Via, self.own_via(&s.dest)?);
        req.headers.push(HeaderName::MaxForwards, "70");
        for r in &s.routes {
            req.headers.push(HeaderName::Route, r.clone());
        }
        req.headers.push(HeaderName::From, s.our_from.clone());
        req.headers.push(HeaderName::To, s.their_from.clone());
        req.headers.push(HeaderName::CallId, s.call_id.clone());
        req.headers
            .push(HeaderName::CSeq, format!("{} NOTIFY", s.cseq));
        if let Some(l) = self.egress(&s.dest) {
            req.headers.push(
                HeaderName::Contact,
                format!(
                    "<sip:{};transport={}>",
                    Core::hostport(&l),
                    l.transport.param()
                ),
            );
        }
        req.headers.push(HeaderName::Event, package.event());
        let state = if terminated {
            format!("terminated;reason={}", reason.unwrap_or("timeout"))
        } else {
            format!(
                "active;expires={}",
                s.expires_at.saturating_duration_since(now).as_secs().max(1)
            )
        };
        req.headers.push(HeaderName::SubscriptionState, state);
        req.headers.push(HeaderName::Server, SERVER_NAME);
        req.set_body(ctype, Bytes::from(body));
        let dest = s.dest;
        if terminated {
            PresenceServer::remove_sub(&mut st, id);
        }
        Some(NotifyPlan { req, dest })
    }

    fn watchers_of(&self, presentity: &str) -> Vec<pidf::Watcher> {
        let st = self.presence.state.lock();
        st.by_presentity
            .get(presentity)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| st.subs.get(id).map(|s| (id, s)))
                    .filter(|(_, s)| s.package == Package::Presence)
                    .map(|(id, s)| pidf::Watcher {
                        id: format!("w{id}"),
                        uri: format!("sip:{}", s.watcher),
                        status: "active",
                        event: "subscribe",
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn notify(
        &self,
        id: u64,
        reason: Option<&str>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        if let Some(plan) = self.plan_notify(id, reason, now) {
            self.send_own_request(plan.req, plan.dest, Some(id), now, out);
        }
    }

    /// Every second: expired publications (watchers are told) and subscriptions (a final
    /// NOTIFY with reason=timeout).
    pub(crate) fn presence_sweep(
        &self,
        now: Instant,
        jobs: &mut Vec<Job>,
        out: &mut Vec<Outgoing>,
    ) {
        let (changed, expired): (Vec<String>, Vec<u64>) = {
            let mut st = self.presence.state.lock();
            let mut changed = vec![];
            let mut gone = 0;
            st.publications.retain(|aor, list| {
                let before = list.len();
                list.retain(|p| p.expires_at > now);
                if list.len() != before {
                    gone += before - list.len();
                    changed.push(aor.clone());
                }
                !list.is_empty()
            });
            st.pub_total -= gone;
            let expired = st
                .subs
                .iter()
                .filter(|(_, s)| s.expires_at <= now)
                .map(|(id, _)| *id)
                .collect();
            (changed, expired)
        };
        // Presentities that were disabled or removed: their subscriptions end (RFC 6665
        // reasons "deactivated" and "noresource").
        let gone: Vec<(u64, &'static str)> = {
            let st = self.presence.state.lock();
            st.subs
                .iter()
                .filter_map(|(id, s)| {
                    let (u, d) = s.presentity.rsplit_once('@')?;
                    match self.users.get(u, d) {
                        None => Some((*id, "noresource")),
                        Some(user) if !user.enabled => Some((*id, "deactivated")),
                        Some(_) => None,
                    }
                })
                .collect()
        };
        for (id, reason) in gone {
            self.notify(id, Some(reason), now, out);
        }
        for aor in changed {
            jobs.push(Job::NotifyWatchers(aor));
        }
        for id in expired {
            let presentity = self
                .presence
                .state
                .lock()
                .subs
                .get(&id)
                .map(|s| (s.presentity.clone(), s.package));
            self.notify(id, Some("timeout"), now, out);
            if let Some((p, Package::Presence)) = presentity {
                jobs.push(Job::Winfo(p));
            }
        }
    }

    /// The user key a SIP URI names when it is one of ours.
    pub(crate) fn local_aor(&self, uri: &Uri) -> Option<String> {
        let user = uri.user?;
        let domain = if self.is_our_domain(uri.host) {
            uri.host.to_ascii_lowercase()
        } else if self.is_us(uri.host, uri.port) {
            self.default_domain().to_string()
        } else {
            return None;
        };
        Some(user_key(user, &domain))
    }
}
