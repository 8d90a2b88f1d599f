//! Meeting pages and the web scheduler (Lync's meet URL and its web scheduler).
//!
//! - `GET /_/meet/{user}/{key}` (the Meet simple URL `https://meet.<domain>/{user}/{KEY}`
//!   rewrites here; both faces): the meeting's subject, organizer, how to join (a `sip:`
//!   link to the conference URI, the dial-in access numbers of the organizer's region with
//!   their languages, the conference ID). Anyone with the URL sees it; an unknown key, a
//!   key with another organizer's user name, or an expired meeting is a plain 404.
//! - Leaders — the organizer, a presenter in the live meeting (signed in with their SIP
//!   password), or an administrator whose roles allow `Remove-CsMeeting` on the organizer
//!   (internal face) — also see the live roster and lobby with admit / deny / mute / unmute /
//!   remove buttons and lock / unlock / end meeting, posting to `…/act`. The roster is
//!   refilled from `…/events`, a server-sent-events stream (`update` events carrying the
//!   re-rendered fragment whenever the focus reports a change; `end` when the meeting
//!   ends); at most [`MAX_STREAMS_PER_VIEWER`] streams per viewer and [`MAX_STREAMS`] in all.
//! - `GET /_/meet` (the Meet URL's root; signed-in users): the user's meetings and a form
//!   to schedule one, made as REST's `POST /api/v1/meetings` makes it for a user;
//!   `POST /_/meet/{user}/{key}/delete` deletes one of the user's own meetings.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use confab_admin::meetings::{AccessNumber, MeetingRequest};
use confab_store::{Access, Meeting, MeetingKind, Presenters};
use maud::{html, Markup};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::page;
use super::session::{UserSession, Viewer};
use super::Site;
use crate::meetings::{Actor, LiveAction, LiveError, LiveRoster, MeetingAction};
use crate::{blocking, store_failure, ApiError};

/// Server-sent-event streams one viewer may hold open.
pub const MAX_STREAMS_PER_VIEWER: usize = 8;
/// Server-sent-event streams in all.
pub const MAX_STREAMS: usize = 256;
/// Keep-alive comments on an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Longest participant id taken from a form.
const MAX_PARTICIPANT_LEN: usize = 512;

pub(crate) fn routes() -> Router<Site> {
    Router::new()
        .route("/_/meet", get(scheduler).post(schedule))
        .route("/_/meet/:user/:key", get(meeting_page))
        .route("/_/meet/:user/:key/act", post(act))
        .route("/_/meet/:user/:key/events", get(events))
        .route("/_/meet/:user/:key/delete", post(delete))
}

fn not_found() -> Response {
    page::error_page(StatusCode::NOT_FOUND, "Not found", "There is no page here.")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The meeting a meet URL names: its key, with the organizer's user name; the same plain 404
/// for an unknown key, another organizer's user name, or an expired meeting.
async fn meeting_of(site: &Site, user: &str, key: &str) -> Result<Meeting, Response> {
    let Some(key) = confab_store::meetings::normalize_key(key) else {
        return Err(not_found());
    };
    let store = site.api.store.clone();
    let m = blocking(move || store.meeting_by_key(&key).map_err(store_failure))
        .await
        .map_err(IntoResponse::into_response)?;
    m.filter(|m| {
        let org_user = m
            .organizer
            .split_once('@')
            .map_or(m.organizer.as_str(), |(u, _)| u);
        org_user.eq_ignore_ascii_case(user) && m.expires_at.is_none_or(|t| t > now_secs())
    })
    .ok_or_else(not_found)
}

/// Who may lead the meeting from the page: the organizer, a presenter in the live
/// meeting, or an administrator allowed `Remove-CsMeeting` on the organizer.
async fn leader_of(site: &Site, viewer: &Viewer, m: &Meeting) -> Result<Option<Actor>, Response> {
    if let Some(u) = &viewer.user {
        let is_leader = u.user.eq_ignore_ascii_case(&m.organizer)
            || site
                .api
                .live
                .as_ref()
                .and_then(|l| l.may_lead(&m.key, &u.user))
                .unwrap_or(false);
        if is_leader {
            return Ok(Some(Actor::User(u.user.clone())));
        }
    }
    if let Some(a) = &viewer.admin {
        let store = site.api.store.clone();
        let (admin, key) = (a.admin.clone(), m.key.clone());
        let allowed = blocking(move || {
            let principal = confab_admin::principal_for(&store, &admin).map_err(store_failure)?;
            Ok(confab_admin::meetings::authorize_live_control(&store, &principal, &key).is_ok())
        })
        .await
        .map_err(IntoResponse::into_response)?;
        if allowed {
            return Ok(Some(Actor::Admin(a.admin.name.clone())));
        }
    }
    Ok(None)
}

/// The page's base path (`/_/meet/{user}/{key}`, the user name as the meeting has it).
fn base_path(m: &Meeting) -> String {
    let user = m
        .organizer
        .split_once('@')
        .map_or(m.organizer.as_str(), |(u, _)| u);
    format!("/_/meet/{user}/{}", m.key)
}

/// `https://<the request's host>`: the fallback base of meet URLs.
fn request_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("https://{host}")
}

// ----- the meeting page -----------------------------------------------------------------------

async fn meeting_page(
    State(site): State<Site>,
    viewer: Viewer,
    Path((user, key)): Path<(String, String)>,
) -> Response {
    let m = match meeting_of(&site, &user, &key).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let store = site.api.store.clone();
    let organizer = m.organizer.clone();
    let looked_up = blocking(move || {
        let numbers = match confab_admin::meetings::dial_in_numbers(&store, &organizer) {
            Ok(n) => n,
            Err(confab_store::StoreError::NoSuchUser(_)) => vec![],
            Err(e) => return Err(store_failure(e)),
        };
        let (u, d) = organizer.split_once('@').unwrap_or((&organizer, ""));
        let name = store
            .get_user(u, d)
            .map_err(store_failure)?
            .map(|u| u.display_name)
            .filter(|n| !n.trim().is_empty());
        Ok((numbers, name))
    })
    .await;
    let (numbers, name) = match looked_up {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let leader = match leader_of(&site, &viewer, &m).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let base = base_path(&m);
    let roster = leader.as_ref().map(|_| live_roster(&site, &m.key));
    let title = if m.subject.trim().is_empty() {
        "Meeting".to_string()
    } else {
        m.subject.clone()
    };
    let csrf = viewer.csrf().to_string();
    page::page(
        &title,
        &viewer,
        html! {
            section.card #meeting {
                p { "Organizer: " b #organizer { (name.as_deref().unwrap_or(&m.organizer)) }
                    @if name.is_some() { " (" (m.organizer) ")" } }
                h2 { "Join" }
                p { "With a SIP client (Lync, Skype for Business, or any SIP phone): "
                    a #join href=(m.uri()) { "join the meeting" } }
                p.small { "Conference URI: " code #conference-uri { (m.uri()) } }
                h2 { "Join by phone" }
                @if numbers.is_empty() {
                    p #no-dialin { "This meeting has no dial-in access numbers." }
                } @else {
                    (numbers_table(&numbers))
                }
                p { "Conference ID: " b #conference-id { (m.conference_id) } }
            }
            @if let Some(roster) = roster {
                section.card #leading {
                    h2 { "Lead the meeting" }
                    div #roster data-live=(format!("{base}/events")) aria-live="polite" {
                        (roster_fragment(roster.as_ref(), &base, &csrf, false))
                    }
                }
            } @else if viewer.user.is_none() {
                p.small { "The organizer and presenters "
                    a href=(format!("/_/signin?next={base}")) { "sign in" }
                    " to see the roster and the lobby." }
            }
        },
    )
    .into_response()
}

fn numbers_table(numbers: &[AccessNumber]) -> Markup {
    html! {
        table #dialin-numbers {
            thead { tr { th { "Number" } th { "Languages" } } }
            tbody {
                @for n in numbers {
                    tr {
                        td { a href=(n.line_uri) {
                            (if n.display_number.is_empty() { &n.line_uri } else { &n.display_number }) } }
                        td { (n.languages.join(", ")) }
                    }
                }
            }
        }
    }
}

fn live_roster(site: &Site, key: &str) -> Option<LiveRoster> {
    site.api.live.as_ref().and_then(|l| l.roster(key))
}

/// The roster, lobby and meeting controls (what the events stream re-renders).
fn roster_fragment(roster: Option<&LiveRoster>, base: &str, csrf: &str, ended: bool) -> Markup {
    let act = format!("{base}/act");
    let button = |action: &str, who: Option<(&str, &str)>, label: &str| {
        let (id, aria) = match who {
            Some((pid, display)) => (format!("{action}-{pid}"), format!("{label} {display}")),
            None => (format!("meeting-{action}"), label.to_string()),
        };
        html! {
            form.inline method="post" action=(act) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(action);
                @if let Some((pid, _)) = who { input type="hidden" name="participant" value=(pid); }
                button type="submit" id=(id) aria-label=(aria)
                    class=[matches!(action, "deny" | "remove" | "end").then_some("danger")] { (label) }
            }
        }
    };
    html! {
        @match roster {
            None => {
                @if ended {
                    p #meeting-state { "The meeting has ended." }
                } @else {
                    p #meeting-state { "The meeting has not started: nobody is in it." }
                }
            }
            Some(r) => {
                p #meeting-state {
                    @if r.locked { "Locked: everyone but the organizer and presenters waits in the lobby." }
                    @else { "In progress." }
                }
                div.actions {
                    @if r.locked { (button("unlock", None, "Unlock the meeting")) }
                    @else { (button("lock", None, "Lock the meeting")) }
                    (button("end", None, "End the meeting"))
                }
                h3 { "Lobby (" (r.lobby.len()) ")" }
                @if r.lobby.is_empty() {
                    p #lobby-empty { "Nobody is waiting." }
                } @else {
                    table #lobby {
                        thead { tr { th { "Name" } th { "From" } th { "" } } }
                        tbody {
                            @for p in &r.lobby {
                                tr data-participant=(p.id) {
                                    td { (p.display) }
                                    td { (p.origin) }
                                    td {
                                        (button("admit", Some((&p.id, &p.display)), "Admit"))
                                        (button("deny", Some((&p.id, &p.display)), "Deny"))
                                    }
                                }
                            }
                        }
                    }
                }
                h3 { "In the meeting (" (r.participants.len()) ")" }
                table #participants {
                    thead { tr { th { "Name" } th { "Role" } th { "From" } th { "Audio" } th { "" } } }
                    tbody {
                        @for p in &r.participants {
                            tr data-participant=(p.id) {
                                td { (p.display) }
                                td { (p.role) }
                                td { (p.origin) }
                                td { @if p.muted { "muted" } @else { "on" } }
                                td {
                                    @if p.muted { (button("unmute", Some((&p.id, &p.display)), "Unmute")) }
                                    @else { (button("mute", Some((&p.id, &p.display)), "Mute")) }
                                    @if p.role != "organizer" {
                                        (button("remove", Some((&p.id, &p.display)), "Remove"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ----- leading: actions -------------------------------------------------------------------------

#[derive(Deserialize)]
struct ActForm {
    action: String,
    #[serde(default)]
    participant: Option<String>,
}

async fn act(
    State(site): State<Site>,
    viewer: Viewer,
    Path((user, key)): Path<(String, String)>,
    peer: Option<axum::extract::ConnectInfo<std::net::SocketAddr>>,
    form: Result<Form<ActForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let m = match meeting_of(&site, &user, &key).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let actor = match leader_of(&site, &viewer, &m).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return page::error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "Only the organizer and presenters lead this meeting.",
            )
        }
        Err(r) => return r,
    };
    let Ok(Form(f)) = form else {
        return page::error_page(
            StatusCode::BAD_REQUEST,
            "Refused",
            "The form was malformed.",
        );
    };
    let Some(live) = site.api.live.clone() else {
        return back_with(
            StatusCode::NOT_FOUND,
            &m,
            "The meeting is not live on this server.",
        );
    };
    let origin = match peer {
        Some(p) => format!("web {}", p.0),
        None => "web unknown".into(),
    };
    let result = if let Some(action) = MeetingAction::parse(&f.action) {
        crate::meetings::run_meeting_action(&site.api, actor, &m.key, action, origin).await
    } else {
        let action = match LiveAction::parse(&f.action) {
            Some(a) if a != LiveAction::DialOut => a,
            _ => return back_with(StatusCode::BAD_REQUEST, &m, "Unknown action."),
        };
        let participant = f.participant.unwrap_or_default();
        if participant.is_empty()
            || participant.len() > MAX_PARTICIPANT_LEN
            || participant.chars().any(char::is_control)
        {
            return back_with(StatusCode::BAD_REQUEST, &m, "No participant named.");
        }
        let (k, a, p) = (m.key.clone(), actor.clone(), participant.clone());
        let result = tokio::task::spawn_blocking(move || live.act(&k, &a, &p, action))
            .await
            .unwrap_or(Err(LiveError::NotLive));
        let command = format!(
            "meeting {} {} participant {}",
            action.as_str(),
            m.key,
            crate::script::quote_str(&participant)
        );
        crate::meetings::audit_live(&site.api, &actor, &origin, command, &result).await;
        result
    };
    match result {
        Ok(()) => {
            let mut res = Redirect::to(&base_path(&m)).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res
        }
        Err(LiveError::NotLive) => back_with(
            StatusCode::NOT_FOUND,
            &m,
            "The meeting is not live on this server.",
        ),
        Err(LiveError::NoSuchParticipant) => {
            back_with(StatusCode::NOT_FOUND, &m, "That participant has left.")
        }
        Err(LiveError::Forbidden) => page::error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "Only the organizer and presenters lead this meeting.",
        ),
        Err(LiveError::Invalid(msg)) => {
            back_with(StatusCode::BAD_REQUEST, &m, &format!("Not done: {msg}."))
        }
    }
}

/// An error page leading back to the meeting.
fn back_with(status: StatusCode, m: &Meeting, message: &str) -> Response {
    let mut res = page::page(
        "Not done",
        &Viewer::default(),
        html! {
            p.error role="alert" { (message) }
            p { a href=(base_path(m)) { "Back to the meeting" } }
        },
    )
    .into_response();
    *res.status_mut() = status;
    res
}

// ----- leading: the events stream ---------------------------------------------------------------

/// Open streams by viewer.
fn streams() -> &'static Mutex<HashMap<String, usize>> {
    static S: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// One open stream, counted until dropped.
struct StreamSlot(String);

impl StreamSlot {
    fn take(viewer: &str) -> Option<StreamSlot> {
        let mut s = streams().lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = s.values().sum();
        let mine = s.get(viewer).copied().unwrap_or(0);
        if total >= MAX_STREAMS || mine >= MAX_STREAMS_PER_VIEWER {
            return None;
        }
        s.insert(viewer.to_string(), mine + 1);
        Some(StreamSlot(viewer.to_string()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut s = streams().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = s.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.0);
            }
        }
    }
}

struct StreamState {
    site: Site,
    key: String,
    base: String,
    csrf: String,
    rx: tokio::sync::broadcast::Receiver<Arc<str>>,
    first: bool,
    was_live: bool,
    done: bool,
    _slot: StreamSlot,
}

async fn events(
    State(site): State<Site>,
    viewer: Viewer,
    Path((user, key)): Path<(String, String)>,
) -> Response {
    let m = match meeting_of(&site, &user, &key).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let actor = match leader_of(&site, &viewer, &m).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    let Some(live) = site.api.live.clone() else {
        return not_found();
    };
    let who = match &actor {
        Actor::User(u) => format!("user:{u}"),
        Actor::Admin(a) => format!("admin:{a}"),
    };
    let Some(slot) = StreamSlot::take(&who) else {
        return page::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many pages",
            "Too many live meeting pages are open: close some and reload.",
        );
    };
    let state = StreamState {
        rx: live.changes(),
        base: base_path(&m),
        key: m.key.clone(),
        csrf: viewer.csrf().to_string(),
        site,
        first: true,
        was_live: false,
        done: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if !st.first {
            loop {
                match st.rx.recv().await {
                    Ok(k) if *k == *st.key => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        st.done = true;
                        let ev = Event::default().event("end").data("closed");
                        return Some((Ok::<Event, Infallible>(ev), st));
                    }
                }
            }
        }
        st.first = false;
        let roster = live_roster(&st.site, &st.key);
        let ended = roster.is_none() && st.was_live;
        st.was_live |= roster.is_some();
        let html = roster_fragment(roster.as_ref(), &st.base, &st.csrf, ended).into_string();
        if ended {
            // the update shows it ended; the `end` event follows on the next turn (a
            // receiver whose sender is gone)
            st.rx = tokio::sync::broadcast::channel(1).1;
        }
        Some((Ok(Event::default().event("update").data(html)), st))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

// ----- the web scheduler ------------------------------------------------------------------------

async fn scheduler(
    State(site): State<Site>,
    viewer: Viewer,
    me: UserSession,
    headers: HeaderMap,
) -> Response {
    scheduler_page(
        &site,
        &viewer,
        &me,
        &headers,
        None,
        &ScheduleForm::default(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize, Default, Clone)]
struct ScheduleForm {
    #[serde(default)]
    subject: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), from a datetime-local input; empty: none.
    #[serde(default)]
    end: String,
    /// "Private" or "Assigned"; empty: the default.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    access: String,
    #[serde(default)]
    presenters: String,
    /// "yes", "no", or empty: as the configuration says.
    #[serde(default)]
    pstn_bypass_lobby: String,
    /// Comma, space or line separated SIP addresses.
    #[serde(default)]
    invitees: String,
}

/// The form as a request (`organizer` set by the caller); a message for what cannot be read.
fn schedule_request(f: &ScheduleForm, me: &str) -> Result<MeetingRequest, String> {
    fn opt<T: std::str::FromStr<Err = confab_store::StoreError>>(
        v: &str,
        name: &str,
    ) -> Result<Option<T>, String> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<T>().map(Some).map_err(|e| match e {
            confab_store::StoreError::Invalid(m) => format!("{name}: {m}"),
            e => format!("{name}: {e}"),
        })
    }
    let end_at = match f.end.trim() {
        "" => None,
        e => {
            let full = match e.len() {
                16 => format!("{e}:00Z"),
                19 => format!("{e}Z"),
                _ => e.to_string(),
            };
            Some(
                confab_admin::meetings::parse_rfc3339(&full)
                    .map_err(|m| format!("End time: {m}"))?,
            )
        }
    };
    let invitees: Vec<String> = f
        .invitees
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok(MeetingRequest {
        organizer: me.to_string(),
        kind: opt::<MeetingKind>(&f.kind, "Meeting space")?,
        access: opt::<Access>(&f.access, "Access")?,
        subject: Some(f.subject.trim().to_string()).filter(|s| !s.is_empty()),
        presenters: opt::<Presenters>(&f.presenters, "Presenters")?,
        pstn_bypass_lobby: match f.pstn_bypass_lobby.trim() {
            "" => None,
            "yes" => Some(true),
            "no" => Some(false),
            _ => return Err("Phone callers: choose yes, no or the default".into()),
        },
        invitees,
        end_at,
        site: None,
    })
}

async fn schedule(
    State(site): State<Site>,
    viewer: Viewer,
    me: UserSession,
    headers: HeaderMap,
    form: Result<Form<ScheduleForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return page::error_page(
            StatusCode::BAD_REQUEST,
            "Refused",
            "The form was malformed.",
        );
    };
    let req = match schedule_request(&f, &me.user) {
        Ok(r) => r,
        Err(msg) => {
            return scheduler_page(
                &site,
                &viewer,
                &me,
                &headers,
                Some(&msg),
                &f,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    };
    match crate::meetings::create_for_user(&site.api, req).await {
        Ok(_) => {
            let mut res = Redirect::to("/_/meet").into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res
        }
        Err(ApiError {
            status, message, ..
        }) if status.is_client_error() => {
            scheduler_page(&site, &viewer, &me, &headers, Some(&message), &f, status).await
        }
        Err(e) => e.into_response(),
    }
}

async fn delete(
    State(site): State<Site>,
    me: UserSession,
    Path((user, key)): Path<(String, String)>,
) -> Response {
    // only one's own meetings: another's (or an unknown key) is a 404
    let mine = me.user.split_once('@').map_or(me.user.as_str(), |(u, _)| u);
    if !mine.eq_ignore_ascii_case(&user) {
        return not_found();
    }
    let store = site.api.store.clone();
    let who = me.user.clone();
    match blocking(move || store.remove_meeting(&who, &key).map_err(store_failure)).await {
        Ok(true) => {
            let mut res = Redirect::to("/_/meet").into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res
        }
        Ok(false) => not_found(),
        Err(e) => e.into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn scheduler_page(
    site: &Site,
    viewer: &Viewer,
    me: &UserSession,
    headers: &HeaderMap,
    error: Option<&str>,
    f: &ScheduleForm,
    status: StatusCode,
) -> Response {
    let store = site.api.store.clone();
    let who = me.user.clone();
    let meetings = match blocking(move || store.meetings(Some(&who)).map_err(store_failure)).await {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let urls = site.urls.current(site).await;
    let fallback = request_base(headers);
    let csrf = me.csrf.as_str();
    let select = |name: &str, label: &str, values: &[(&str, &str)], current: &str| {
        html! {
            label { (label)
                select name=(name) id=(name) {
                    @for (v, text) in values {
                        option value=(v) selected[current.eq_ignore_ascii_case(v)] { (text) }
                    }
                }
            }
        }
    };
    let mut res = page::page(
        "My meetings",
        viewer,
        html! {
            section.card.wide {
                h2 { "Meetings" }
                @if meetings.is_empty() {
                    p #no-meetings { "You have no meetings yet." }
                } @else {
                    table #meetings {
                        thead { tr { th { "Subject" } th { "Meeting space" } th { "Access" } th { "Conference ID" } th { "Meet URL" } th { "" } } }
                        tbody {
                            @for m in &meetings {
                                @let url = super::urls::meet_url(&urls, &m.organizer, &m.key, &fallback);
                                tr data-key=(m.key) {
                                    td { (if m.subject.is_empty() { "(no subject)" } else { &m.subject }) }
                                    td { (m.kind.as_str()) }
                                    td { (m.access.as_str()) }
                                    td { (m.conference_id) }
                                    td { a.meet-url href=(url) { (url) } }
                                    td {
                                        form.inline method="post" action=(format!("{}/delete", base_path(m))) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" id=(format!("delete-{}", m.key))
                                                aria-label=(format!("Delete {}", if m.subject.is_empty() { &m.key } else { &m.subject })) { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Schedule a meeting" }
                form #schedule method="post" action="/_/meet" {
                    @if let Some(e) = error { p.error #schedule-error role="alert" { (e) } }
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Subject" input #subject name="subject" maxlength="256" value=(f.subject); }
                    label { "Ends (UTC)" input #end name="end" type="datetime-local" value=(f.end); }
                    (select("kind", "Meeting space", &[("", "(default)"), ("Private", "A new meeting (private)"), ("Assigned", "My assigned meeting space")], &f.kind))
                    (select("access", "Who gets in directly", &[("", "(default)"), ("Locked", "Only me (Locked)"), ("Invited", "People I invite (Invited)"), ("SameEnterprise", "Anyone from my company (SameEnterprise)"), ("Everyone", "Anyone, including people outside (Everyone)")], &f.access))
                    (select("presenters", "Who is a presenter", &[("", "(default)"), ("None", "Only me (None)"), ("Company", "People from my company (Company)"), ("Everyone", "Everyone")], &f.presenters))
                    (select("pstn_bypass_lobby", "Phone callers bypass the lobby", &[("", "(default)"), ("yes", "Yes"), ("no", "No")], &f.pstn_bypass_lobby))
                    label { "Invitees (SIP addresses, comma separated)" textarea #invitees name="invitees" rows="2" { (f.invitees) } }
                    button #schedule-submit type="submit" { "Schedule" }
                }
            }
        },
    )
    .into_response();
    *res.status_mut() = status;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_forms_become_requests() {
        let f = ScheduleForm {
            subject: " Weekly ".into(),
            end: "2099-01-02T03:04".into(),
            kind: "private".into(),
            access: "Everyone".into(),
            presenters: "".into(),
            pstn_bypass_lobby: "yes".into(),
            invitees: "bob@example.test, carol@example.test\ndan@example.test".into(),
        };
        let r = schedule_request(&f, "alice@example.test").unwrap();
        assert_eq!(r.organizer, "alice@example.test");
        assert_eq!(r.subject.as_deref(), Some("Weekly"));
        assert_eq!(r.kind, Some(MeetingKind::Private));
        assert_eq!(r.access, Some(Access::Everyone));
        assert_eq!(r.presenters, None);
        assert_eq!(r.pstn_bypass_lobby, Some(true));
        assert_eq!(r.invitees.len(), 3);
        assert_eq!(
            r.end_at,
            Some(confab_admin::meetings::parse_rfc3339("2099-01-02T03:04:00Z").unwrap())
        );
        let bad = ScheduleForm {
            access: "Public".into(),
            ..Default::default()
        };
        let msg = schedule_request(&bad, "a@b.test").unwrap_err();
        assert!(
            msg.contains("Locked, Invited, SameEnterprise, Everyone"),
            "{msg}"
        );
        let bad = ScheduleForm {
            end: "soon".into(),
            ..Default::default()
        };
        assert!(schedule_request(&bad, "a@b.test")
            .unwrap_err()
            .starts_with("End time"));
        let default = ScheduleForm::default();
        assert_eq!(
            schedule_request(&default, "a@b.test")
                .unwrap()
                .pstn_bypass_lobby,
            None
        );
        let no = ScheduleForm {
            pstn_bypass_lobby: "no".into(),
            ..Default::default()
        };
        assert_eq!(
            schedule_request(&no, "a@b.test").unwrap().pstn_bypass_lobby,
            Some(false)
        );
        let bad = ScheduleForm {
            pstn_bypass_lobby: "maybe".into(),
            ..Default::default()
        };
        assert!(schedule_request(&bad, "a@b.test").is_err());
    }

    #[test]
    fn stream_slots_are_bounded() {
        let v = "user:bounded@example.test";
        let slots: Vec<StreamSlot> = (0..MAX_STREAMS_PER_VIEWER)
            .filter_map(|_| StreamSlot::take(v))
            .collect();
        assert_eq!(slots.len(), MAX_STREAMS_PER_VIEWER);
        assert!(StreamSlot::take(v).is_none());
        drop(slots);
        assert!(StreamSlot::take(v).is_some());
    }

    #[test]
    fn fragments_escape_and_carry_the_token() {
        let r = LiveRoster {
            participants: vec![],
            lobby: vec![crate::meetings::LiveParticipant {
                id: "p3".into(),
                display: "<b>Eve</b>".into(),
                role: "attendee".into(),
                muted: false,
                origin: "anonymous".into(),
            }],
            locked: true,
        };
        let h = roster_fragment(Some(&r), "/_/meet/alice/K", "tok", false).into_string();
        assert!(h.contains("&lt;b&gt;Eve"));
        assert!(h.contains("id=\"admit-p3\""));
        assert!(h.contains("value=\"tok\""));
        assert!(h.contains("meeting-unlock"));
        assert!(!h.contains("style="));
    }
}
