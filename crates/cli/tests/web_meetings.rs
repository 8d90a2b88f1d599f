//! The meeting pages, the web scheduler and the dial-in page (docs/web.md), over HTTPS on
//! loopback: a meeting's page for anyone with its URL and 404s for everything else; the
//! live roster, lobby and controls for leaders only; CSRF on every change; the
//! server-sent-events stream; scheduling and deleting meetings; the dial-in page and PIN.
//! A SIP participant (a raw user agent of common/) joins the meetings; the end-to-end test
//! runs the flow in headless Chromium with baresip participants.

mod common;
#[path = "common/console.rs"]
mod console;

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::browser::{screenshot_dir, Browser};
use common::*;
use confab_sip::{HeaderName, Message, Method};
use console::{port_free, Log};
use reqwest::StatusCode;

// ---------------------------------------------------------------------------------------
// The server

struct Web {
    server: Server,
    internal: u16,
    external: u16,
}

/// confab with meetings (its MCU on `media`..`media+99`) and the web site's two faces.
fn web_server(users: u32, media: u16) -> Web {
    let (internal, external) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let server = Server::start(
        users,
        &format!(
            "[meetings]\nmedia_port_min = {media}\nmedia_port_max = {}\nrtp_timeout_secs = 60\nlobby_timeout_secs = 120\n\n\
             [web]\ninternal = \"127.0.0.1:{internal}\"\nexternal = \"127.0.0.1:{external}\"\n",
            media + 99
        ),
    );
    wait_until("the web site answers", Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", internal)).is_ok()
    });
    Web {
        server,
        internal,
        external,
    }
}

impl Web {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.internal)
    }
}

/// A meeting of user0001's (`confab meeting create`): (key, conference URI, conference ID).
fn create_meeting(s: &Server, args: &[&str]) -> (String, String, String) {
    let mut a = vec!["meeting", "create", "--json", "--organizer", "user0001"];
    a.extend_from_slice(args);
    let out = s.cli(&a);
    let v = first_json(&out).unwrap_or_else(|| panic!("no JSON object in {out}"));
    let f = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("no {k} in {v}"))
            .to_string()
    };
    (f("key"), f("uri"), f("conference_id"))
}

/// An access number in region Redmond, which the Global dial plan lists.
fn add_access_number(s: &Server) {
    s.cli(ADD_ROOT);
    s.configure(
        "New-CsDialInConferencingAccessNumber -PrimaryUri \"sip:dialin@example.test\" \
         -DisplayNumber \"+1 (425) 555-0100\" -DisplayName \"Redmond <HQ>\" -LineUri \"tel:+14255550100\" \
         -Regions \"Redmond\" -PrimaryLanguage \"en-US\" -SecondaryLanguages fr-CA; \
         Set-CsDialPlan -DialinConferencingRegion Redmond",
    );
}

// ---------------------------------------------------------------------------------------
// A browser without a browser: reqwest with a cookie jar, blocking

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF token in the page: {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Http {
    fn new() -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Http { rt, client }
    }

    fn page(&self, req: reqwest::RequestBuilder) -> Page {
        self.rt.block_on(async {
            let r = req.send().await.expect("an HTTP answer");
            let status = r.status();
            let location = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            Page {
                status,
                location,
                body: r.text().await.unwrap_or_default(),
            }
        })
    }

    fn get(&self, url: &str) -> Page {
        self.page(self.client.get(url))
    }

    fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        self.page(self.client.post(url).form(form))
    }

    fn sign_in(&self, w: &Web, user: &str) {
        let p = self.post(
            &w.url("/_/signin"),
            &[
                ("as", "user"),
                ("next", "/_/meet"),
                ("name", &format!("{user}@example.test")),
                ("password", &format!("pw-{user}")),
            ],
        );
        assert_eq!(
            p.status,
            StatusCode::SEE_OTHER,
            "sign-in of {user}: {}",
            p.body
        );
    }
}

// ---------------------------------------------------------------------------------------
// A SIP participant

struct Participant {
    ua: Ua,
    _rtp: UdpSocket,
}

fn offer(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// `user` dials the conference URI (answering the digest challenge); the final status.
fn join(s: &Server, user: &str, uri: &str) -> (Participant, u16) {
    let mut ua = Ua::udp(user, s.addr());
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut inv = ua.request(Method::Invite, uri, uri);
    inv.set_body("application/sdp", offer(rtp.local_addr().unwrap().port()));
    ua.send(&inv);
    let mut r = ua.expect_response(&Method::Invite, inv.cseq().unwrap().seq, 200..=699);
    let mut sent = inv.clone();
    if r.status() == Some(407) {
        ua.send(&ack_for(&inv, &r));
        sent = ua.authorize(&inv, &r);
        ua.send(&sent);
        r = ua.expect_response(&Method::Invite, sent.cseq().unwrap().seq, 200..=699);
    }
    let status = r.status().unwrap_or(0);
    if status == 200 {
        let focus = r
            .header(&HeaderName::Contact)
            .map(|c| uri_of(c))
            .unwrap_or_default();
        let ack = ua.in_dialog(
            Method::Ack,
            &focus,
            &[],
            &sent.header(&HeaderName::From).unwrap().to_string(),
            &r.header(&HeaderName::To).unwrap().to_string(),
            sent.call_id().unwrap(),
            sent.cseq().unwrap().seq,
        );
        ua.send(&ack);
    } else {
        ua.send(&ack_for(&sent, &r));
    }
    (Participant { ua, _rtp: rtp }, status)
}

/// Waits (bounded) for a BYE from the focus and answers it.
fn expect_bye(p: &mut Participant) -> Message {
    let bye = p.ua.expect_request(Method::Bye);
    let resp = p.ua.reply(&bye, 200, "");
    p.ua.send(&resp);
    bye
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn a_meeting_page_shows_how_to_join_and_unknown_keys_are_404() {
    let w = web_server(4, 23000);
    add_access_number(&w.server);
    let (key, uri, conf_id) = create_meeting(&w.server, &["--subject", "Budget <review>"]);
    let http = Http::new();

    // anyone with the URL, signed in or not, on both faces
    for base in [w.url(""), format!("https://127.0.0.1:{}", w.external)] {
        let p = http.get(&format!("{base}/meet/user0001/{key}"));
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        assert!(
            p.body.contains("Budget &lt;review&gt;"),
            "the subject, escaped: {}",
            p.body
        );
        assert!(p.body.contains("user0001@example.test"), "the organizer");
        assert!(
            p.body.contains(&format!("href=\"{uri}\"")),
            "the sip: link to {uri}: {}",
            p.body
        );
        assert!(p.body.contains(&conf_id), "the conference ID");
        assert!(
            p.body.contains("+1 (425) 555-0100") && p.body.contains("en-US, fr-CA"),
            "the access number: {}",
            p.body
        );
        assert!(!p.body.contains("data-live"), "no roster for the anonymous");
    }
    // the canonical path, any case of the key
    assert_eq!(
        http.get(&w.url(&format!("/_/meet/user0001/{}", key.to_lowercase())))
            .status,
        StatusCode::OK
    );

    // an unknown key, another organizer's user name, a malformed key: 404 revealing nothing
    let other = if key.starts_with('A') { "B" } else { "A" };
    let unknown = format!("{other}{}", &key[1..]);
    for path in [
        format!("/meet/user0001/{unknown}"),
        format!("/meet/user0002/{key}"),
        "/meet/user0001/x'<script>".to_string(),
        format!("/meet/user0001/{key}/nothing"),
    ] {
        let p = http.get(&w.url(&path));
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !p.body.contains(&conf_id) && !p.body.contains("Budget"),
            "{path} reveals nothing"
        );
    }

    // an expired meeting (its expiry passed; the server removes it within a minute)
    let (old, _, old_id) = create_meeting(&w.server, &["--subject", "Old"]);
    let db = rusqlite::Connection::open(w.server.data().join(confab_store::DB_FILE_NAME)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let n = db
        .execute(
            "UPDATE meetings SET expires_at = 1000 WHERE meeting_key = ?1",
            [&old],
        )
        .unwrap();
    assert_eq!(n, 1);
    let p = http.get(&w.url(&format!("/meet/user0001/{old}")));
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(!p.body.contains(&old_id));
}

#[test]
fn leaders_see_the_roster_and_control_it_others_are_refused() {
    let w = web_server(4, 23100);
    let (key, uri, _) = create_meeting(&w.server, &["--access", "Invited"]);
    let page = w.url(&format!("/_/meet/user0001/{key}"));
    let act = format!("{page}/act");

    // the organizer, signed in: the roster (not started yet) and its live stream
    let org = Http::new();
    org.sign_in(&w, "user0001");
    let p = org.get(&page);
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body
            .contains(&format!("data-live=\"/_/meet/user0001/{key}/events\"")),
        "{}",
        p.body
    );
    assert!(p.body.contains("has not started"));
    let org_csrf = p.csrf();

    // user0002, not invited, waits in the lobby; the organizer sees it
    let (mut guest, status) = join(&w.server, "user0002", &uri);
    assert_eq!(status, 200);
    let p = org.get(&page);
    assert!(p.body.contains("Lobby (1)"), "{}", p.body);
    assert!(p.body.contains("user0002@example.test"));
    let pid = {
        let at = p.body.find("id=\"admit-").expect("an admit button");
        let rest = &p.body[at + 10..];
        rest[..rest.find('"').unwrap()].to_string()
    };

    // someone else signed in: the page, no controls; their actions refused
    let other = Http::new();
    other.sign_in(&w, "user0003");
    let p = other.get(&page);
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        !p.body.contains("data-live") && !p.body.contains("admit-"),
        "{}",
        p.body
    );
    let p = other.post(
        &act,
        &[
            ("csrf", &p.csrf()),
            ("action", "admit"),
            ("participant", &pid),
        ],
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    let p = other.get(&format!("{page}/events"));
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    // signed out: refused (no session, no token)
    let anon = Http::new();
    let p = anon.post(
        &act,
        &[("csrf", ""), ("action", "admit"), ("participant", &pid)],
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // the organizer's session without the token, or with a wrong one: 403
    let p = org.post(&act, &[("action", "admit"), ("participant", &pid)]);
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = org.post(
        &act,
        &[
            ("csrf", "0123456789abcdef0123456789abcdef"),
            ("action", "admit"),
            ("participant", &pid),
        ],
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // …and a token from another session does not do either
    let p = org.post(
        &act,
        &[
            ("csrf", &other.get(&page).csrf()),
            ("action", "admit"),
            ("participant", &pid),
        ],
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // nothing changed: still in the lobby
    assert!(org.get(&page).body.contains("Lobby (1)"));

    // the organizer admits, mutes, locks
    let p = org.post(
        &act,
        &[
            ("csrf", &org_csrf),
            ("action", "admit"),
            ("participant", &pid),
        ],
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = org.get(&page);
    assert!(
        p.body.contains("Lobby (0)") && p.body.contains("In the meeting (1)"),
        "{}",
        p.body
    );
    let p = org.post(
        &act,
        &[
            ("csrf", &org_csrf),
            ("action", "mute"),
            ("participant", &pid),
        ],
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(org
        .get(&page)
        .body
        .contains(&format!("id=\"unmute-{pid}\"")));
    // admitting someone who is not in the lobby is refused with a message
    let p = org.post(
        &act,
        &[
            ("csrf", &org_csrf),
            ("action", "admit"),
            ("participant", &pid),
        ],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("not in the lobby"), "{}", p.body);
    let p = org.post(&act, &[("csrf", &org_csrf), ("action", "lock")]);
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(org.get(&page).body.contains("Locked"));
    // an unknown action changes nothing
    let p = org.post(&act, &[("csrf", &org_csrf), ("action", "explode")]);
    assert_eq!(p.status, StatusCode::BAD_REQUEST);

    // an administrator allowed Remove-CsMeeting on the organizer leads it too (internal
    // face), audited; on the external face their session does not count
    w.server.cli(ADD_ROOT);
    let admin = Http::new();
    let p = admin.post(
        &w.url("/_/signin"),
        &[
            ("as", "admin"),
            ("next", "/_/meet"),
            ("name", "root"),
            ("password", ADMIN_PASSWORD),
        ],
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = admin.get(&page);
    assert!(
        p.body.contains("data-live") && p.body.contains("meeting-unlock"),
        "{}",
        p.body
    );
    let p = admin.post(&act, &[("csrf", &p.csrf()), ("action", "unlock")]);
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(org.get(&page).body.contains("In progress."));
    let audit = confab_store::Store::open(w.server.data())
        .unwrap()
        .query_audit(&confab_store::AuditFilter::default())
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.command.contains(&format!("meeting unlock {key}"))
                && e.origin.starts_with("web ")),
        "{audit:?}"
    );
    let ext = admin.get(&format!(
        "https://127.0.0.1:{}/_/meet/user0001/{key}",
        w.external
    ));
    assert!(!ext.body.contains("data-live"));

    // end: the participant gets a BYE, the page says it has not started (nobody in it)
    let p = org.post(&act, &[("csrf", &org_csrf), ("action", "end")]);
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    expect_bye(&mut guest);
    assert!(org.get(&page).body.contains("has not started"));
}

#[test]
fn the_events_stream_pushes_the_roster_when_someone_joins_and_ends_with_the_meeting() {
    let w = web_server(4, 23200);
    let (key, uri, _) = create_meeting(&w.server, &["--access", "Invited"]);
    let org = Http::new();
    org.sign_in(&w, "user0001");
    let events = w.url(&format!("/_/meet/user0001/{key}/events"));
    let mut resp = org
        .rt
        .block_on(async { org.client.get(&events).send().await })
        .expect("the stream");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    let read_until = |resp: &mut reqwest::Response, needle: &str, text: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !text.contains(needle) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no {needle:?} in the stream: {text}"));
            let chunk = org
                .rt
                .block_on(async { tokio::time::timeout(left, resp.chunk()).await })
                .unwrap_or_else(|_| panic!("no {needle:?} in the stream: {text}"))
                .expect("the stream goes on")
                .expect("the stream goes on");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    // first the current state
    read_until(&mut resp, "has not started", &mut text);
    assert!(
        text.starts_with("event: update") || text.contains("\nevent: update"),
        "{text}"
    );
    text.clear();
    // someone joins: an update with them in the lobby
    let (mut guest, status) = join(&w.server, "user0002", &uri);
    assert_eq!(status, 200);
    read_until(&mut resp, "user0002@example.test", &mut text);
    assert!(
        text.contains("event: update") && text.contains("Lobby (1)"),
        "{text}"
    );
    text.clear();
    // the meeting ends (REST, as the organizer): an update, then `end`
    let p = org.page(
        org.client
            .post(w.url(&format!("/api/v1/meetings/{key}/end")))
            .basic_auth("user0001@example.test", Some("pw-user0001")),
    );
    assert_eq!(p.status, StatusCode::NO_CONTENT, "{}", p.body);
    expect_bye(&mut guest);
    read_until(&mut resp, "event: end", &mut text);
    assert!(text.contains("has ended"), "{text}");

    // streams are bounded per viewer
    let open: Vec<reqwest::Response> = (0..8)
        .map(|_| {
            org.rt
                .block_on(async { org.client.get(&events).send().await })
                .unwrap()
        })
        .collect();
    assert!(open.iter().all(|r| r.status() == StatusCode::OK));
    let ninth = org
        .rt
        .block_on(async { org.client.get(&events).send().await })
        .unwrap();
    assert_eq!(ninth.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(open);
}

#[test]
fn rest_locks_unlocks_and_ends_meetings() {
    let w = web_server(4, 23300);
    let (key, uri, _) = create_meeting(
        &w.server,
        &["--access", "SameEnterprise", "--presenters", "None"],
    );
    let http = Http::new();
    let rest = |who: &str, what: &str| {
        http.page(
            http.client
                .post(w.url(&format!("/api/v1/meetings/{key}/{what}")))
                .basic_auth(format!("{who}@example.test"), Some(format!("pw-{who}"))),
        )
    };
    // not live yet
    assert_eq!(rest("user0001", "lock").status, StatusCode::NOT_FOUND);
    let (_a, status) = join(&w.server, "user0002", &uri);
    assert_eq!(status, 200);
    // not a leader: a 404 as for a meeting that does not exist
    assert_eq!(rest("user0003", "lock").status, StatusCode::NOT_FOUND);
    assert_eq!(rest("user0001", "lock").status, StatusCode::NO_CONTENT);
    let roster = http.page(
        http.client
            .get(w.url(&format!("/api/v1/meetings/{key}/roster")))
            .basic_auth("user0001@example.test", Some("pw-user0001")),
    );
    assert!(roster.body.contains("\"locked\":true"), "{}", roster.body);
    // locked: another enterprise user now waits in the lobby
    let (_b, status) = join(&w.server, "user0003", &uri);
    assert_eq!(status, 200);
    let roster = http.page(
        http.client
            .get(w.url(&format!("/api/v1/meetings/{key}/roster")))
            .basic_auth("user0001@example.test", Some("pw-user0001")),
    );
    let v: serde_json::Value = serde_json::from_str(&roster.body).unwrap();
    assert_eq!(v["lobby"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(rest("user0001", "unlock").status, StatusCode::NO_CONTENT);
    assert_eq!(rest("user0001", "explode").status, StatusCode::NOT_FOUND);
    assert_eq!(rest("user0001", "end").status, StatusCode::NO_CONTENT);
    assert_eq!(
        rest("user0001", "end").status,
        StatusCode::NOT_FOUND,
        "no longer live"
    );
    let api = http.get(&w.url("/api/v1/openapi.json"));
    assert!(api.body.contains("meetingLock") && api.body.contains("meetingEnd"));
}

#[test]
fn users_schedule_and_delete_meetings_on_the_web_scheduler() {
    let w = web_server(4, 23400);
    let http = Http::new();
    // signed out: to the sign-in page
    let p = http.get(&w.url("/meet"));
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.location.unwrap().starts_with("/_/signin"));
    http.sign_in(&w, "user0001");
    let p = http.get(&w.url("/_/meet"));
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("no meetings yet"));
    let csrf = p.csrf();

    // refusals are shown on the form, and nothing is made
    let p = http.post(
        &w.url("/_/meet"),
        &[
            ("csrf", &csrf),
            ("subject", "Past"),
            ("end", "2001-01-01T10:00"),
        ],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(
        p.body.contains("in the past") && p.body.contains("value=\"Past\""),
        "{}",
        p.body
    );
    let p = http.post(
        &w.url("/_/meet"),
        &[("csrf", &csrf), ("subject", "X"), ("access", "Public")],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(
        p.body.contains("Locked, Invited, SameEnterprise, Everyone"),
        "{}",
        p.body
    );
    let p = http.post(
        &w.url("/_/meet"),
        &[
            ("csrf", &csrf),
            ("subject", "X"),
            ("kind", "Assigned"),
            ("end", "2099-01-01T10:00"),
        ],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    let p = http.post(
        &w.url("/_/meet"),
        &[
            ("csrf", &csrf),
            ("subject", "X"),
            ("invitees", "not an address"),
        ],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    // without the token: 403
    let p = http.post(&w.url("/_/meet"), &[("subject", "No token")]);
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let store = confab_store::Store::open(w.server.data()).unwrap();
    assert!(
        store
            .meetings(Some("user0001@example.test"))
            .unwrap()
            .is_empty(),
        "nothing half-made"
    );

    // a private meeting
    let p = http.post(
        &w.url("/_/meet"),
        &[
            ("csrf", &csrf),
            ("subject", "Planning"),
            ("end", "2099-03-04T05:06"),
            ("kind", "Private"),
            ("access", "Everyone"),
            ("presenters", "None"),
            ("pstn_bypass_lobby", "yes"),
            ("invitees", "user0002@example.test, user0003@example.test"),
        ],
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let list = store.meetings(Some("user0001@example.test")).unwrap();
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(m.subject, "Planning");
    assert_eq!(m.access, confab_store::Access::Everyone);
    assert_eq!(m.presenters, confab_store::Presenters::None);
    assert!(m.pstn_bypass_lobby);
    assert_eq!(m.invitees.len(), 2);
    assert_eq!(m.end_at, Some(4076283960));
    // listed with its meet URL (no Meet simple URL: the path form on this host)
    let p = http.get(&w.url("/_/meet"));
    let url = format!("https://127.0.0.1:{}/meet/user0001/{}", w.internal, m.key);
    assert!(
        p.body.contains(&url) && p.body.contains(&m.conference_id),
        "{}",
        p.body
    );
    // the assigned meeting, with the defaults
    let p = http.post(
        &w.url("/_/meet"),
        &[("csrf", &csrf), ("subject", "Mine"), ("kind", "Assigned")],
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(
        store.meetings(Some("user0001@example.test")).unwrap().len(),
        2
    );

    // someone else cannot delete it; the organizer can
    let other = Http::new();
    other.sign_in(&w, "user0002");
    let ocsrf = other.get(&w.url("/_/meet")).csrf();
    let p = other.post(
        &w.url(&format!("/_/meet/user0001/{}/delete", m.key)),
        &[("csrf", &ocsrf)],
    );
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = http.post(
        &w.url(&format!("/_/meet/user0001/{}/delete", m.key)),
        &[("csrf", &csrf)],
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        store.meetings(Some("user0001@example.test")).unwrap().len(),
        1
    );
}

#[test]
fn the_dial_in_page_lists_numbers_and_sets_pins_under_the_policy() {
    let w = web_server(4, 23500);
    add_access_number(&w.server);
    let http = Http::new();
    let p = http.get(&format!("https://127.0.0.1:{}/dialin", w.external));
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("Redmond")
            && p.body.contains("+1 (425) 555-0100")
            && p.body.contains("en-US, fr-CA")
    );
    assert!(p.body.contains("Redmond &lt;HQ&gt;"), "escaped: {}", p.body);
    assert!(!p.body.contains("pin-form"), "no PIN form signed out");

    http.sign_in(&w, "user0001");
    let p = http.get(&w.url("/dialin"));
    assert!(
        p.body.contains("no assigned meeting") && p.body.contains("You have no PIN"),
        "{}",
        p.body
    );
    let (_, _, conf_id) = create_meeting(&w.server, &["--assigned"]);
    let p = http.get(&w.url("/_/dialin"));
    assert!(
        p.body.contains(&conf_id),
        "the assigned meeting's conference ID: {}",
        p.body
    );
    let csrf = p.csrf();

    // too short: the policy's message; nothing set
    let p = http.post(
        &w.url("/_/dialin/pin"),
        &[("csrf", &csrf), ("pin", "123"), ("pin2", "123")],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("at least 5"), "{}", p.body);
    assert!(
        !p.body.contains("\"123\"") && !p.body.contains(">123<"),
        "the PIN is not shown"
    );
    // the two differ
    let p = http.post(
        &w.url("/_/dialin/pin"),
        &[("csrf", &csrf), ("pin", "70713"), ("pin2", "70714")],
    );
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    // no token: 403
    let p = http.post(
        &w.url("/_/dialin/pin"),
        &[("pin", "70713"), ("pin2", "70713")],
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let store = confab_store::Store::open(w.server.data()).unwrap();
    assert!(
        !store
            .client_pin_info("user0001@example.test")
            .unwrap()
            .is_pin_set
    );
    // a good one
    let p = http.post(
        &w.url("/_/dialin/pin"),
        &[("csrf", &csrf), ("pin", "70713"), ("pin2", "70713")],
    );
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("Your PIN is set") && !p.body.contains("70713"));
    assert!(
        store
            .client_pin_info("user0001@example.test")
            .unwrap()
            .is_pin_set
    );
    // audited without the PIN, and not in the log
    assert!(!w.server.log_text().contains("70713"));
}

// ---------------------------------------------------------------------------------------
// End to end: headless Chromium and baresip

/// A block of loopback ports for the end-to-end test: confab's SIP port, then two per
/// baresip client (SIP, and TLS on the next one), four RTP ports each from `base + 10`; the
/// MCU's media ports on their own range. 5500-5524 (baresip.rs has 5300-5399,
/// meetings_audio.rs 5400-5499) and 25400-25499 (meetings_audio.rs: 25000-25399).
const E2E_PORTS: u16 = 5500;
const E2E_MEDIA: u16 = 25400;

/// One baresip client: its stdio UI, console and recordings.
struct Baresip {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    log: Log,
    rec: PathBuf,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "\n======== output of baresip {} ========\n{}",
                self.name,
                self.log.text()
            );
        }
    }
}

impl Baresip {
    /// Starts baresip as `user` (a seeded user with its digest password), client `idx` of
    /// the block, sending a sine tone of `tone` Hz and recording what it hears.
    fn start(root: &Path, user: &'static str, idx: u16, tone: u32, confab: u16) -> Baresip {
        let dir = root.join(format!("baresip-{user}"));
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        let sip = E2E_PORTS + 1 + 2 * idx;
        let rtp = E2E_PORTS + 10 + 4 * idx;
        let config = format!(
            "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{sip}\nnet_interface\t\t127.0.0.1\n\
             dns_server\t\t127.0.0.1:53\ncall_local_timeout\t60\ncall_max_calls\t\t4\n\
             audio_player\t\taubridge,{user}\naudio_alert\t\taubridge,{user}\naudio_source\t\tausine,{tone}\n\
             ausrc_srate\t\t48000\nausrc_channels\t\t2\nrtp_ports\t\t{rtp}-{}\nsnd_path\t\t{}\n\
             module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tstdio.so\nmodule\t\t\tg711.so\n\
             module\t\t\tausine.so\nmodule\t\t\taubridge.so\nmodule\t\t\tsndfile.so\n\
             module_tmp\t\taccount.so\nmodule_app\t\tmenu.so\n",
            rtp + 3,
            rec.display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "\"{user}\" <sip:{user}@{DOMAIN}>;auth_pass=pw-{user};outbound=\"sip:127.0.0.1:{confab};transport=udp\";regint=0;answermode=manual;audio_codecs=PCMU/8000/1\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting baresip (apt-get install baresip-core)");
        let log = Log::default();
        log.attach(child.stdout.take().unwrap());
        log.attach(child.stderr.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        let b = Baresip {
            name: user,
            child,
            stdin,
            log,
            rec,
        };
        b.wait_for("ready", 0, "baresip is ready.");
        b
    }

    fn command(&mut self, line: &str) {
        eprintln!("{} <- {line}", self.name);
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits (bounded) until its console has `needle` after byte `from`; the offset after it.
    fn wait_for(&self, what: &str, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.log.text();
            if let Some(i) = text.get(from..).and_then(|t| t.find(needle)) {
                eprintln!("{}: {what}", self.name);
                return from + i + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for baresip {}: {what} ({needle:?})",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Dials `uri` and waits until the call is established.
    fn dial(&mut self, uri: &str) -> usize {
        let from = self.log.text().len();
        self.command(&format!("/dial {uri}"));
        self.wait_for("call established", from, "Call established: ")
    }

    /// What it heard (its one call's decoded audio, being written), first channel.
    fn recording(&self) -> (u32, Vec<f32>) {
        let files: Vec<PathBuf> = std::fs::read_dir(&self.rec)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "{}: one recording, found {files:?}",
            self.name
        );
        wav(&std::fs::read(&files[0]).unwrap())
    }

    fn quit(&mut self) {
        self.command("/quit");
    }
}

/// A 16-bit PCM WAV file (one being written: up to its last whole frame): rate, first channel.
fn wav(b: &[u8]) -> (u32, Vec<f32>) {
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    assert!(
        b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE",
        "not a WAV file"
    );
    let (mut pos, mut channels, mut rate) = (12, 1u16, 8000u32);
    while pos + 8 <= b.len() {
        let size = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if &b[pos..pos + 4] == b"fmt " {
            channels = u16_at(body + 2);
            rate = u32_at(body + 4);
            assert_eq!(u16_at(body + 14), 16, "16-bit PCM");
        } else if &b[pos..pos + 4] == b"data" {
            let avail = b.len() - body;
            let len = if size == 0 || size > avail {
                avail
            } else {
                size
            };
            let frame = 2 * channels as usize;
            let samples = b[body..body + len - len % frame]
                .chunks_exact(frame)
                .map(|f| i16::from_le_bytes([f[0], f[1]]) as f32)
                .collect();
            return (rate, samples);
        }
        pos = body + size + size % 2;
    }
    (rate, vec![])
}

/// The mean amplitude (full scale 32768) of the tone `freq` over 100 ms blocks (Goertzel).
fn tone_level(x: &[f32], rate: u32, freq: f64) -> f64 {
    let n = (rate / 10) as usize;
    let blocks: Vec<f64> = x
        .chunks_exact(n)
        .map(|b| {
            let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
            let coeff = 2.0 * w.cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for v in b {
                let s0 = *v as f64 + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / n as f64
        })
        .collect();
    assert!(!blocks.is_empty(), "fewer than 100 ms to analyse");
    blocks.iter().sum::<f64>() / blocks.len() as f64
}

fn shot(b: &Browser, name: &str) {
    if let Some(dir) = screenshot_dir() {
        b.screenshot(&dir.join(format!("{name}.png")));
    }
}

#[test]
fn in_chromium_a_user_schedules_a_meeting_and_leads_it_with_a_baresip_participant() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(240);
    while !(E2E_PORTS..E2E_PORTS + 25).all(port_free) {
        assert!(
            Instant::now() < deadline,
            "ports {E2E_PORTS}-{} are taken",
            E2E_PORTS + 24
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let internal = free_port("127.0.0.1");
    let server = Server::start_with(
        "127.0.0.1",
        E2E_PORTS,
        5,
        &format!(
            "[meetings]\nmedia_port_min = {E2E_MEDIA}\nmedia_port_max = {}\nrtp_timeout_secs = 30\n\n\
             [web]\ninternal = \"127.0.0.1:{internal}\"\n",
            E2E_MEDIA + 99
        ),
    );
    add_access_number(&server);
    // the Meet simple URL of example.test (meet URLs are https://meet.example.test/user/KEY)
    // and the Dialin one
    server.configure(
        "$e = New-CsSimpleUrlEntry -Url \"https://meet.example.test\"; \
         $m = New-CsSimpleUrl -Component \"meet\" -Domain \"example.test\" -SimpleUrlEntry $e -ActiveUrl \"https://meet.example.test\"; \
         $d = New-CsSimpleUrlEntry -Url \"https://dialin.example.test\"; \
         $di = New-CsSimpleUrl -Component \"dialin\" -Domain \"*\" -SimpleUrlEntry $d -ActiveUrl \"https://dialin.example.test\"; \
         Set-CsSimpleUrlConfiguration -Identity Global -SimpleUrl @{Add=$m,$di}",
    );
    // Chromium resolves every name to 127.0.0.1; the port is the test's
    let site = format!("https://meet.example.test:{internal}");
    let b = Browser::start();

    // sign in on the Meet URL's root (the scheduler), schedule a meeting
    b.goto(&format!("{site}/"));
    wait_until("the sign-in page", Duration::from_secs(15), || {
        b.current_url().contains("/_/signin")
    });
    b.fill("input[name=name]", "user0001@example.test");
    b.fill("input[name=password]", "pw-user0001");
    b.click("button[type=submit]");
    b.wait_text("main", "Schedule a meeting");
    b.fill("#subject", "Quarterly review");
    b.select("#kind", "Private");
    b.select("#access", "Invited");
    b.fill("#invitees", "user0003@example.test");
    b.click("#schedule-submit");
    b.wait_text("#meetings", "Quarterly review");
    shot(&b, "web-scheduler");
    let meet_url = b.text("#meetings a.meet-url");
    let key = meet_url.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        meet_url,
        format!("https://meet.example.test/user0001/{key}")
    );
    let store = confab_store::Store::open(server.data()).unwrap();
    let m = store
        .meeting("user0001@example.test", &key)
        .unwrap()
        .expect("the meeting");
    assert_eq!(m.access, confab_store::Access::Invited);

    // its meet URL (with the test's port): the page, the roster not started
    b.goto(&format!("{site}/user0001/{key}"));
    b.wait_text("#meeting", &m.conference_id);
    b.wait_text("#meeting-state", "has not started");
    assert!(b.text("#dialin-numbers").contains("+1 (425) 555-0100"));
    // a mark that a reload would wipe out: the updates below arrive without one
    b.eval("window.confabMark = 42; return 0");

    // user0003 (invited) joins and talks at 1000 Hz; user0002 waits in the lobby
    let root = tempfile::tempdir().unwrap();
    let mut speaker = Baresip::start(root.path(), "user0003", 0, 1000, E2E_PORTS);
    let mut guest = Baresip::start(root.path(), "user0002", 1, 600, E2E_PORTS);
    speaker.dial(&m.uri());
    b.wait_text("#participants", "user0003");
    guest.dial(&m.uri());
    b.wait_text("#lobby", "user0002");
    assert_eq!(
        b.eval("return window.confabMark"),
        serde_json::json!(42),
        "updated without a reload"
    );
    shot(&b, "meeting-page");

    // admit it: it hears the meeting
    let pid =
        b.eval("return document.querySelector('#lobby tr[data-participant]').dataset.participant");
    let pid = pid.as_str().unwrap().to_string();
    let before = {
        let (rate, x) = guest.recording();
        x.len() as f64 / rate as f64
    };
    b.click(&format!("#admit-{pid}"));
    b.wait_text("#participants", "user0002");
    b.wait_text("#lobby-empty", "Nobody");
    let deadline = Instant::now() + Duration::from_secs(15);
    let heard = loop {
        let (rate, x) = guest.recording();
        let from = ((before + 1.0) * rate as f64) as usize;
        if x.len() >= from + rate as usize {
            break tone_level(&x[from..], rate, 1000.0);
        }
        assert!(
            Instant::now() < deadline,
            "user0002's recording did not grow after the admission"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        heard >= 1000.0,
        "admitted, user0002 hears user0003's 1000 Hz tone (level {heard:.1})"
    );

    // mute it, then remove it: gone from the roster, its call ended
    b.click(&format!("#mute-{pid}"));
    b.wait_text("#participants", "muted");
    assert!(b.exists(&format!("#unmute-{pid}")));
    let from = guest.log.text().len();
    b.click(&format!("#remove-{pid}"));
    b.wait_text_gone("#participants", "user0002");
    guest.wait_for(
        "removed: the focus closed the session",
        from,
        "session closed",
    );

    // lock: the page says so; then end the meeting: user0003's call ends, the page too
    b.eval("window.confabMark = 43; return 0");
    b.click("#meeting-lock");
    b.wait_text("#meeting-state", "Locked");
    let from = speaker.log.text().len();
    b.click("#meeting-end");
    speaker.wait_for(
        "the meeting ended: the focus closed the session",
        from,
        "session closed",
    );
    b.wait_text("#meeting-state", "not started");
    speaker.quit();
    guest.quit();

    // the dial-in page (its own simple URL, so its own sign-in): the assigned meeting's
    // conference ID, a refused PIN, then a good one
    let (_, _, assigned_id) = create_meeting(&server, &["--assigned"]);
    b.goto(&format!("https://dialin.example.test:{internal}/"));
    b.wait_text("#numbers", "+1 (425) 555-0100");
    b.click("#dialin-signin");
    b.fill("input[name=name]", "user0001@example.test");
    b.fill("input[name=password]", "pw-user0001");
    b.click("button[type=submit]");
    b.wait_text("#mine", "Your dial-in details");
    b.wait_text("#my-conference-id", &assigned_id);
    b.fill("#pin", "123");
    b.fill("#pin2", "123");
    b.click("#pin-submit");
    b.wait_text("#pin-message", "at least 5");
    b.fill("#pin", "70713");
    b.fill("#pin2", "70713");
    b.click("#pin-submit");
    b.wait_text("#pin-message", "Your PIN is set");
    shot(&b, "dialin-page");
    assert!(
        store
            .client_pin_info("user0001@example.test")
            .unwrap()
            .is_pin_set
    );
    assert!(!b.source().contains("70713"));
}
