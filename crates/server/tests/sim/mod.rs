//! A simulated-clock harness for whole-core scenarios (in the style of quinn-proto's test
//! `Pair`): a [`Core`] with an in-memory store and no sockets, simulated user agents that
//! exchange messages with it through [`Core::handle_at`] and the `Outgoing` list, and a
//! fake clock that advances in timer ticks, running [`Core::tick_at`] and, each simulated
//! second, [`Core::sweep_at`]. Store work (effects) runs synchronously when the harness
//! says so, so a test can look between a request and the store's commit.
//! Nothing sleeps: an hour of protocol time takes milliseconds.

#![allow(dead_code)]

use bytes::Bytes;
use confab_server::clock::WallClock;
use confab_server::config::{Config, Transport};
use confab_server::core::Core;
use confab_server::net::{Outgoing, Source};
use confab_server::users::UserCache;
use confab_sip::digest::{self, Challenge};
use confab_sip::{parse_message, response_to, HeaderName, Message, Method, Text};
use confab_store::Store;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SERVER: &str = "127.0.0.1:5060";
pub const DOMAIN: &str = "example.test";
/// The simulated clock's step (the server's timer tick).
pub const TICK: Duration = confab_server::timer_wheel::TICK;

pub struct Sim {
    pub core: Core,
    pub store: Arc<Store>,
    /// The simulated clock.
    pub now: Instant,
    last_sweep: Instant,
    /// What the core sent, by destination, not yet read by a user agent.
    wire: HashMap<SocketAddr, VecDeque<Message>>,
    out: Vec<Outgoing>,
}

/// A simulated user agent on UDP at 127.0.0.1:`port`.
pub struct Ua {
    pub user: String,
    password: String,
    pub src: Source,
    cseq: u32,
    nc: u32,
    pub call_id: String,
    pub tag: String,
}

impl Sim {
    /// A core serving example.test with users alice, bob and carol (password: name + "pw"),
    /// a UDP listener at 127.0.0.1:5060, nobody registered.
    pub fn new() -> Sim {
        let store = Store::open_in_memory().unwrap();
        for u in ["alice", "bob", "carol"] {
            store
                .add_user(&confab_store::NewUser {
                    username: u,
                    domain: DOMAIN,
                    display_name: u,
                    password: &format!("{u}pw"),
                })
                .unwrap();
        }
        let users = Arc::new(UserCache::default());
        users.refresh(&store).unwrap();
        let mut cfg = Config {
            listen: vec![SERVER.into()],
            domains: vec![DOMAIN.into()],
            ..Config::default()
        };
        // every simulated UA is on loopback: the flood defence would ban them together
        cfg.defence.enabled = false;
        let store = Arc::new(store);
        let mut core = Core::new(cfg, users, Some(store.clone()));
        core.policies.refresh(&store).unwrap();
        // the simulated clock starts here; wall-clock seconds follow it, not the host's
        let now = Instant::now();
        core.wall = WallClock::fixed(now, 1_700_000_000);
        Sim {
            core,
            store,
            now,
            last_sweep: now,
            wire: HashMap::new(),
            out: vec![],
        }
    }

    pub fn ua(&self, user: &str, port: u16) -> Ua {
        Ua {
            user: user.into(),
            password: format!("{user}pw"),
            src: Source {
                transport: Transport::Udp,
                local: SERVER.parse().unwrap(),
                remote: SocketAddr::from(([127, 0, 0, 1], port)),
                conn: None,
                overloaded: false,
            },
            cseq: 0,
            nc: 0,
            call_id: format!("{user}-call-1"),
            tag: format!("{user}-tag"),
        }
    }

    /// The core receives `msg` from `src` now; store work it queues is left waiting.
    pub fn send_only(&mut self, src: &Source, msg: &Message) {
        self.core
            .handle_at(msg.to_bytes(), src, self.now, &mut self.out);
        self.pump();
    }

    /// The core receives `msg` from `src` now, and the store workers catch up.
    pub fn send(&mut self, src: &Source, msg: &Message) {
        self.send_only(src, msg);
        self.run_effects();
    }

    /// Runs the queued store work (as the server's workers do); returns how much ran.
    pub fn run_effects(&mut self) -> usize {
        let n = self.core.run_pending_effects(self.now, &mut self.out);
        self.pump();
        n
    }

    /// Advances the simulated clock by `d` in timer ticks: timers fire, the sweep runs each
    /// simulated second, store work completes.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + TICK).min(end);
            self.core.tick_at(self.now, &mut self.out);
            if self.now.duration_since(self.last_sweep) >= Duration::from_secs(1) {
                self.last_sweep = self.now;
                self.core.sweep_at(self.now, &mut self.out);
            }
            self.run_effects();
        }
    }

    fn pump(&mut self) {
        for o in self.out.drain(..) {
            let m = parse_message(o.bytes.clone()).unwrap_or_else(|e| {
                panic!(
                    "the core sent an unparsable message ({e}): {}",
                    String::from_utf8_lossy(&o.bytes)
                )
            });
            self.wire.entry(o.dest.addr).or_default().push_back(m);
        }
    }

    /// Everything sent to `ua` so far.
    pub fn take(&mut self, ua: &Ua) -> Vec<Message> {
        self.wire
            .remove(&ua.src.remote)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// The requests sent to `ua` so far (responses are dropped).
    pub fn requests_to(&mut self, ua: &Ua) -> Vec<Message> {
        self.take(ua)
            .into_iter()
            .filter(|m| m.is_request())
            .collect()
    }

    /// The final response sent to `ua` for `req`, if there is one yet (provisional ones and
    /// anything else to `ua` are left out).
    pub fn final_for(&mut self, ua: &Ua, req: &Message) -> Option<Message> {
        let seq = req.cseq().map(|c| c.seq);
        let q = self.wire.get_mut(&ua.src.remote)?;
        let i = q.iter().position(|m| {
            m.status().is_some_and(|s| s >= 200)
                && m.cseq().map(|c| c.seq) == seq
                && m.call_id() == req.call_id()
        })?;
        q.remove(i)
    }

    /// Sends `req` from `ua`, answers a digest challenge once, returns the final response.
    pub fn transact(&mut self, ua: &mut Ua, req: Message) -> Message {
        self.send(&ua.src, &req);
        let r = self
            .final_for(ua, &req)
            .unwrap_or_else(|| panic!("no final response to {}", first_line(&req)));
        match r.status() {
            Some(401 | 407) => {
                let again = ua.authorize(req, &r);
                self.send(&ua.src, &again);
                self.final_for(ua, &again)
                    .unwrap_or_else(|| panic!("no final response to {}", first_line(&again)))
            }
            _ => r,
        }
    }

    /// Registers `ua` for `expires` seconds; asserts 200.
    pub fn register(&mut self, ua: &mut Ua, expires: u32) -> Message {
        let req = ua.register(expires);
        let r = self.transact(ua, req);
        assert_eq!(r.status(), Some(200), "REGISTER: {}", first_line(&r));
        r
    }

    /// `ua` answers a request it received.
    pub fn answer(&mut self, ua: &Ua, req: &Message, status: u16) {
        let resp = response_to(req, status, None, Some(&ua.tag));
        self.send(&ua.src, &resp);
    }
}

impl Ua {
    pub fn aor(&self) -> String {
        format!("sip:{}@{DOMAIN}", self.user)
    }

    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.src.remote)
    }

    pub fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    pub fn via(&self) -> String {
        format!(
            "SIP/2.0/UDP {};rport;branch=z9hG4bK{}{}{}",
            self.src.remote,
            self.user,
            self.cseq,
            self.call_id.len()
        )
    }

    /// A new out-of-dialog request to `ruri` (To the same).
    pub fn request(&mut self, method: Method, ruri: &str) -> Message {
        let seq = self.next_cseq();
        let mut m = Message::request(method.clone(), Text::from(ruri));
        m.headers.push(HeaderName::Via, self.via());
        m.headers.push(HeaderName::MaxForwards, "70");
        m.headers.push(
            HeaderName::From,
            format!("<{}>;tag={}", self.aor(), self.tag),
        );
        m.headers.push(HeaderName::To, format!("<{ruri}>"));
        m.headers.push(HeaderName::CallId, self.call_id.clone());
        m.headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        m.headers.push(HeaderName::Contact, self.contact());
        m
    }

    pub fn register(&mut self, expires: u32) -> Message {
        let mut m = self.request(Method::Register, &format!("sip:{DOMAIN}"));
        m.headers.set(HeaderName::To, format!("<{}>", self.aor()));
        m.headers
            .set(HeaderName::CallId, format!("{}-reg", self.user));
        m.headers.set(
            HeaderName::Contact,
            format!("{};expires={expires}", self.contact()),
        );
        m
    }

    pub fn message(&mut self, to: &str, text: &str) -> Message {
        self.call_id = format!("{}-msg-{}", self.user, self.cseq);
        let mut m = self.request(Method::Message, to);
        m.set_body("text/plain", text.to_string());
        m
    }

    /// `req` again with credentials for the challenge in `resp` (new CSeq and branch).
    pub fn authorize(&mut self, mut req: Message, resp: &Message) -> Message {
        let (challenge, answer) = if resp.status() == Some(401) {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        } else {
            (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            )
        };
        let ch = Challenge::parse(resp.header(&challenge).expect("a challenge")).unwrap();
        self.nc += 1;
        let method = req.method().unwrap().as_str().to_string();
        let uri = req.uri().unwrap().to_string();
        let value = digest::authorization(
            &ch,
            &self.user,
            &self.password,
            &method,
            &uri,
            "0a4f113b",
            self.nc,
        );
        let seq = self.next_cseq();
        req.headers.set(HeaderName::CSeq, format!("{seq} {method}"));
        req.headers.set(HeaderName::Via, self.via());
        req.headers.push(answer, value);
        req
    }
}

pub fn first_line(m: &Message) -> String {
    let b = m.to_bytes();
    String::from_utf8_lossy(&b)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}
