//! `/api/v1/meetings`: meetings for their organizers and for administrators, and live
//! meeting control (roster, lobby, mute, remove) routed to the conference focus of this
//! process through [`LiveMeetings`].
//!
//! Two kinds of caller:
//! - an **administrator** with a bearer token: every route runs the shell's cmdlets
//!   (`Get-CsMeeting`, `New-CsMeeting`, `Remove-CsMeeting`), so RBAC, OU scopes and the
//!   audit log are the shell's; live control needs the right to run `Remove-CsMeeting` on
//!   the meeting's organizer and is audited too;
//! - a **user** with HTTP Basic `user@domain:password` (their SIP password, checked against
//!   the stored HA1 in constant time, throttled by the same gate as admin sign-ins): they
//!   see and manage only meetings they organize; someone else's key is a 404, as is a key
//!   that does not exist.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use confab_admin::meetings::{meeting_obj, MeetingRequest};
use confab_store::{Access, MeetingKind, Presenters, Store};
use serde_json::{json, Map, Value};

use crate::script::quote_str;
use crate::{
    blocking, is_not_found, json_object, origin, output_json, refusal_response, run_script, signin,
    store_failure, ApiError, AppState, Caller, SignIn,
};

// ----- the live side (implemented by the server's conference focus) ---------------------------

/// The conference focus of this process, as the REST API sees it.
pub trait LiveMeetings: Send + Sync + 'static {
    /// Roster and lobby of a meeting live on this server; None when it is not live here.
    fn roster(&self, key: &str) -> Option<LiveRoster>;
    /// `actor` must be the organizer or a presenter of the live meeting, or an administrator.
    fn act(
        &self,
        key: &str,
        actor: &Actor,
        participant: &str,
        action: LiveAction,
    ) -> Result<(), LiveError>;
    /// Lock, unlock or end the live meeting; `actor` as for [`LiveMeetings::act`].
    fn meeting_act(&self, key: &str, actor: &Actor, action: MeetingAction)
        -> Result<(), LiveError>;
    /// Whether `user` (`user@domain`) leads the live meeting (its organizer, or a presenter
    /// in it); None when it is not live here.
    fn may_lead(&self, key: &str, user: &str) -> Option<bool>;
    /// Keys of meetings whose roster, lobby or lock changed, or that ended (a bounded
    /// channel: a lagging receiver re-reads what it shows).
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>>;
}

/// What to do with a whole live meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeetingAction {
    /// Everyone but leaders waits in the lobby (the `*7` keypad lock).
    Lock,
    Unlock,
    /// Everyone gets a BYE, the conference ends (the meeting itself stays scheduled).
    End,
}

impl MeetingAction {
    pub const NAMES: &'static [&'static str] = &["lock", "unlock", "end"];

    pub fn parse(s: &str) -> Option<MeetingAction> {
        Some(match s.to_ascii_lowercase().as_str() {
            "lock" => MeetingAction::Lock,
            "unlock" => MeetingAction::Unlock,
            "end" => MeetingAction::End,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            MeetingAction::Lock => "lock",
            MeetingAction::Unlock => "unlock",
            MeetingAction::End => "end",
        }
    }
}

/// Who asks for a live action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// An administrator (already checked: their roles allow `Remove-CsMeeting` on the
    /// meeting's organizer).
    Admin(String),
    /// A user signed in with their SIP password: `user@domain`, lower case.
    User(String),
}

/// What to do with a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveAction {
    /// Let a participant waiting in the lobby in.
    Admit,
    /// Refuse a participant waiting in the lobby.
    Deny,
    Mute,
    Unmute,
    /// Remove a participant from the meeting.
    Remove,
    /// Have the focus call someone in (the participant segment is the callee's SIP URI).
    DialOut,
}

impl LiveAction {
    /// The route segments, as accepted.
    pub const NAMES: &'static [&'static str] =
        &["admit", "deny", "mute", "unmute", "remove", "dialout"];

    pub fn parse(s: &str) -> Option<LiveAction> {
        Some(match s.to_ascii_lowercase().as_str() {
            "admit" => LiveAction::Admit,
            "deny" => LiveAction::Deny,
            "mute" => LiveAction::Mute,
            "unmute" => LiveAction::Unmute,
            "remove" | "eject" => LiveAction::Remove,
            "dialout" => LiveAction::DialOut,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LiveAction::Admit => "admit",
            LiveAction::Deny => "deny",
            LiveAction::Mute => "mute",
            LiveAction::Unmute => "unmute",
            LiveAction::Remove => "remove",
            LiveAction::DialOut => "dialout",
        }
    }
}

/// Why a live action failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveError {
    /// The meeting is not live on this server.
    NotLive,
    NoSuchParticipant,
    /// The actor is neither organizer nor presenter.
    Forbidden,
    /// The action does not apply (e.g. admitting someone who is not in the lobby).
    Invalid(String),
}

/// A live meeting: who is in it, who waits in the lobby.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveRoster {
    pub participants: Vec<LiveParticipant>,
    pub lobby: Vec<LiveParticipant>,
    /// Locked by a leader: everyone but leaders waits in the lobby.
    pub locked: bool,
}

/// One participant of a live meeting.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LiveParticipant {
    /// What the participant routes take (e.g. the participant's SIP URI or entity).
    pub id: String,
    pub display: String,
    /// "organizer", "presenter", "attendee".
    pub role: String,
    pub muted: bool,
    /// "organizer", "enterprise", "federated", "anonymous", "pstn".
    pub origin: String,
}

// ----- callers -----------------------------------------------------------------------------------

/// An administrator by bearer token, or a user by HTTP Basic with their SIP password.
pub(crate) enum MeetingCaller {
    Admin(Caller),
    /// `user@domain`, lower case.
    User(String),
}

/// The longest Basic credentials considered (user@domain, a colon, a password).
const MAX_BASIC_LEN: usize = 1024;

fn basic_credentials(parts: &Parts) -> Option<Result<(String, String), ApiError>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let value = value.to_str().ok()?.trim();
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bad = || ApiError::unauthorized("malformed Basic credentials");
    let b64 = b64.trim();
    if b64.len() > MAX_BASIC_LEN * 4 / 3 + 4 {
        return Some(Err(bad()));
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return Some(Err(bad()));
    };
    let Ok(text) = String::from_utf8(raw) else {
        return Some(Err(bad()));
    };
    let Some((user, password)) = text.split_once(':') else {
        return Some(Err(bad()));
    };
    Some(Ok((user.to_string(), password.to_string())))
}

/// Constant-time comparison of two equal-length hex digests.
fn same_digest(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `password` is `address`'s SIP password: the MD5 HA1 over the stored user name
/// and domain (the digest realm) compared with the stored one. A disabled or unknown user
/// never signs in (the same work is done for an unknown one).
fn verify_sip_password(
    store: &Store,
    address: &str,
    password: &str,
) -> Result<Option<String>, ApiError> {
    use confab_sip::digest::{ha1, Algorithm};
    let Ok(key) = confab_store::meetings::normalize_address(address) else {
        return Ok(None);
    };
    let (u, d) = key.split_once('@').unwrap_or((&key, ""));
    let user = store.get_user(u, d).map_err(store_failure)?;
    let (name, stored) = match &user {
        Some(user) => (user.username.as_str(), user.ha1_md5.as_str()),
        None => (u, "00000000000000000000000000000000"),
    };
    let computed = ha1(Algorithm::Md5, name, d, password);
    let ok = same_digest(&computed, stored) && user.as_ref().is_some_and(|u| u.enabled);
    Ok(ok.then_some(key))
}

/// The answer to a refused user sign-in.
fn user_unauthorized() -> Response {
    let mut res = ApiError::unauthorized("invalid user or password").into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"confab\", charset=\"UTF-8\""),
    );
    res
}

#[axum::async_trait]
impl FromRequestParts<AppState> for MeetingCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<MeetingCaller, Response> {
        let (address, password) = match basic_credentials(parts) {
            None => {
                return Caller::from_request_parts(parts, state)
                    .await
                    .map(MeetingCaller::Admin)
                    .map_err(IntoResponse::into_response)
            }
            Some(Err(e)) => return Err(e.into_response()),
            Some(Ok(c)) => c,
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
        let ip = peer
            .as_ref()
            .map(|ConnectInfo(a)| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        match sign_in_user(state, address, password, ip, &origin(peer))
            .await
            .map_err(IntoResponse::into_response)?
        {
            SignIn::Signed(key) => Ok(MeetingCaller::User(key)),
            SignIn::Invalid => Err(user_unauthorized()),
            SignIn::Refused(r) => Err(r),
        }
    }
}

/// A user signs in with their SIP address and password (throttled like administrators,
/// their account names kept apart by a `sip:` prefix): the REST API's HTTP Basic and the
/// web site's sign-in page. `Signed` carries `user@domain`, lower case.
pub(crate) async fn sign_in_user(
    state: &AppState,
    address: String,
    password: String,
    ip: std::net::IpAddr,
    origin: &str,
) -> Result<SignIn, ApiError> {
    let plausible = confab_store::meetings::normalize_address(&address).is_ok()
        && password.len() <= confab_store::MAX_PASSWORD_LEN;
    // users' account names are kept apart from administrators' ("sip:" prefix)
    let account = format!("sip:{}", address.to_ascii_lowercase());
    let ticket = match state
        .sign_in
        .admit(ip, plausible.then_some(account.as_str()))
    {
        Ok(t) => t,
        Err(r) => {
            if matches!(r, signin::Refusal::Throttled { first: true, .. }) {
                tracing::warn!(%origin, "user sign-ins throttled");
            }
            return Ok(SignIn::Refused(refusal_response(&r)));
        }
    };
    if !plausible {
        drop(ticket); // a failure
        return Ok(SignIn::Invalid);
    }
    let permit = match ticket.turn().await {
        Ok(p) => p,
        Err(r) => {
            ticket.not_evaluated();
            return Ok(SignIn::Refused(refusal_response(&r)));
        }
    };
    let store = state.store.clone();
    let verified = blocking(move || {
        let r = verify_sip_password(&store, &address, &password);
        drop(permit);
        r
    })
    .await?;
    match verified {
        Some(key) => {
            ticket.succeeded();
            Ok(SignIn::Signed(key))
        }
        None => {
            drop(ticket); // a failure
            tracing::warn!(%origin, "user sign-in refused");
            Ok(SignIn::Invalid)
        }
    }
}

// ----- handlers ----------------------------------------------------------------------------------

fn key_of(key: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(key) = key?;
    confab_store::meetings::normalize_key(&key)
        .ok_or_else(|| ApiError::not_found(format!("no such meeting: {key:?}")))
}

fn no_such_meeting(key: &str) -> ApiError {
    ApiError::not_found(format!("no such meeting: {key}"))
}

/// A meeting's JSON with `DialIn`: the access numbers its organizer's dial plan lists
/// (`[{display_number, line_uri, uri, languages}]`, by Priority), besides the shell's
/// `DialInNumbers` (display numbers only).
fn with_dial_in(store: &Store, mut obj: Value) -> Result<Value, ApiError> {
    let organizer = obj
        .get("Organizer")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(o), Some(m)) = (organizer, obj.as_object_mut()) {
        let numbers = match confab_admin::meetings::dial_in_numbers(store, &o) {
            Ok(n) => n,
            // the organizer went away meanwhile
            Err(confab_store::StoreError::NoSuchUser(_)) => vec![],
            Err(e) => return Err(store_failure(e)),
        };
        m.insert(
            "DialInNumbers".into(),
            confab_admin::meetings::dial_in_display(&numbers),
        );
        m.insert("DialIn".into(), json!(numbers));
    }
    Ok(obj)
}

/// [`with_dial_in`] for every object of an admin route's output.
async fn admin_with_dial_in(
    state: &AppState,
    mut out: Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let objs = out
        .0
        .get_mut("objects")
        .and_then(Value::as_array_mut)
        .map(std::mem::take);
    if let Some(objs) = objs {
        let store = state.store.clone();
        let done = blocking(move || {
            objs.into_iter()
                .map(|o| with_dial_in(&store, o))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        out.0["objects"] = Value::Array(done);
    }
    Ok(out)
}

fn objects(objs: Vec<Value>, warnings: Vec<String>) -> Json<Value> {
    Json(json!({"objects": objs, "warnings": warnings}))
}

/// An admin's run of a meeting cmdlet: not-found errors become 404.
async fn admin_run(
    state: &AppState,
    caller: Caller,
    origin: String,
    script: String,
) -> Result<confab_admin::Output, ApiError> {
    run_script(state, caller.admin, origin, script)
        .await
        .map_err(|(api, e)| match e {
            Some(e) if is_not_found(&e) => ApiError::not_found(e.to_string()),
            _ => api,
        })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "organizer") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter '{k}' (accepted: organizer)"
        )));
    }
    match caller {
        MeetingCaller::Admin(c) => {
            let script = match q.get("organizer") {
                Some(o) => format!("Get-CsMeeting -Organizer {}", quote_str(o)),
                None => "Get-CsMeeting".to_string(),
            };
            let out = admin_run(&state, c, origin(peer), script.clone()).await?;
            admin_with_dial_in(&state, output_json(out, Some(&script))).await
        }
        MeetingCaller::User(me) => {
            if q.get("organizer").is_some_and(|o| {
                confab_store::meetings::normalize_address(o).ok().as_deref() != Some(&me)
            }) {
                return Ok(objects(vec![], vec![]));
            }
            let store = state.store.clone();
            let list = blocking(move || {
                store
                    .meetings(Some(&me))
                    .map_err(store_failure)?
                    .iter()
                    .map(|m| with_dial_in(&store, meeting_obj(m).to_json()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            Ok(objects(list, vec![]))
        }
    }
}

pub(crate) async fn get_one(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let key = key_of(key)?;
    match caller {
        MeetingCaller::Admin(c) => {
            let script = format!("Get-CsMeeting -Identity {}", quote_str(&key));
            let out = admin_run(&state, c, origin(peer), script.clone()).await?;
            if out.objects.is_empty() {
                return Err(no_such_meeting(&key));
            }
            admin_with_dial_in(&state, output_json(out, Some(&script))).await
        }
        MeetingCaller::User(me) => {
            let store = state.store.clone();
            let k = key.clone();
            let m = blocking(move || {
                store
                    .meeting(&me, &k)
                    .map_err(store_failure)?
                    .map(|m| with_dial_in(&store, meeting_obj(&m).to_json()))
                    .transpose()
            })
            .await?;
            let m = m.ok_or_else(|| no_such_meeting(&key))?;
            Ok(objects(vec![m], vec![]))
        }
    }
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let key = key_of(key)?;
    match caller {
        MeetingCaller::Admin(c) => {
            let script = format!("Remove-CsMeeting -Identity {}", quote_str(&key));
            admin_run(&state, c, origin(peer), script).await?;
        }
        MeetingCaller::User(me) => {
            let store = state.store.clone();
            let k = key.clone();
            let removed =
                blocking(move || store.remove_meeting(&me, &k).map_err(store_failure)).await?;
            if !removed {
                return Err(no_such_meeting(&key));
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The fields `POST /api/v1/meetings` takes.
const CREATE_FIELDS: &[&str] = &[
    "organizer",
    "kind",
    "access",
    "subject",
    "presenters",
    "pstn_bypass_lobby",
    "invitees",
    "end",
    "site",
];

fn opt_str(m: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a string"))),
    }
}

fn parsed<T: std::str::FromStr<Err = confab_store::StoreError>>(
    m: &Map<String, Value>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    opt_str(m, name)?
        .map(|v| {
            v.parse::<T>().map_err(|e| {
                ApiError::bad_request(format!(
                    "'{name}': {}",
                    match e {
                        confab_store::StoreError::Invalid(m) => m,
                        e => e.to_string(),
                    }
                ))
            })
        })
        .transpose()
}

/// A create request, checked: every field known and of its type.
fn create_request(m: &Map<String, Value>) -> Result<MeetingRequest, ApiError> {
    if let Some(k) = m.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field '{k}' (accepted: {})",
            CREATE_FIELDS.join(", ")
        )));
    }
    let pstn_bypass_lobby = match m.get("pstn_bypass_lobby") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::bad_request(
                "'pstn_bypass_lobby' must be true or false",
            ))
        }
    };
    let invitees = match m.get("invitees") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_request("'invitees' must be a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "'invitees' must be a list of strings",
            ))
        }
    };
    let end_at = opt_str(m, "end")?
        .map(|e| {
            confab_admin::meetings::parse_rfc3339(&e)
                .map_err(|msg| ApiError::bad_request(format!("'end': {msg}")))
        })
        .transpose()?;
    Ok(MeetingRequest {
        organizer: opt_str(m, "organizer")?.unwrap_or_default(),
        kind: parsed::<MeetingKind>(m, "kind")?,
        access: parsed::<Access>(m, "access")?,
        subject: opt_str(m, "subject")?,
        presenters: parsed::<Presenters>(m, "presenters")?,
        pstn_bypass_lobby,
        invitees,
        end_at,
        site: opt_str(m, "site")?,
    })
}

/// A user's own meeting (`req.organizer` is the signed-in user), made as REST's
/// `POST /api/v1/meetings` makes it for users (the web scheduler too): the configuration's
/// and the organizer's policy's checks, their messages. The meeting and its JSON.
pub(crate) async fn create_for_user(
    state: &AppState,
    req: MeetingRequest,
) -> Result<(confab_admin::meetings::Created, Value), ApiError> {
    let store = state.store.clone();
    let (created, obj) = blocking(move || {
        let created =
            confab_admin::meetings::create_meeting(&store, &req).map_err(|e| match e {
                confab_store::StoreError::Invalid(m) => ApiError::bad_request(m),
                e @ confab_store::StoreError::TooManyMeetings { .. } => {
                    ApiError::new(StatusCode::CONFLICT, "limit", e.to_string())
                }
                e => store_failure(e),
            })?;
        let obj = with_dial_in(&store, meeting_obj(&created.meeting).to_json())?;
        Ok((created, obj))
    })
    .await?;
    tracing::info!(organizer = %created.meeting.organizer, key = %created.meeting.key, "meeting created by its organizer");
    Ok((created, obj))
}

/// `New-CsMeeting` with the request's values, each quoted.
fn new_meeting_script(r: &MeetingRequest) -> String {
    let mut s = format!("New-CsMeeting -Organizer {}", quote_str(&r.organizer));
    match r.kind {
        Some(MeetingKind::Private) => s.push_str(" -Private"),
        Some(MeetingKind::Assigned) => s.push_str(" -Assigned"),
        None => {}
    }
    if let Some(a) = r.access {
        s.push_str(&format!(" -Access {}", a.as_str()));
    }
    if let Some(p) = r.presenters {
        s.push_str(&format!(" -Presenters {}", p.as_str()));
    }
    if let Some(subject) = &r.subject {
        s.push_str(&format!(" -Subject {}", quote_str(subject)));
    }
    if let Some(b) = r.pstn_bypass_lobby {
        s.push_str(if b {
            " -PstnBypassLobby $true"
        } else {
            " -PstnBypassLobby $false"
        });
    }
    if !r.invitees.is_empty() {
        let list: Vec<String> = r.invitees.iter().map(|i| quote_str(i)).collect();
        s.push_str(&format!(" -Invitees @({})", list.join(", ")));
    }
    if let Some(e) = r.end_at {
        s.push_str(&format!(
            " -EndTime {}",
            quote_str(&confab_admin::meetings::rfc3339(e))
        ));
    }
    if let Some(site) = &r.site {
        s.push_str(&format!(" -Site {}", quote_str(site)));
    }
    s
}

pub(crate) async fn create(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let m = json_object(body)?;
    let mut req = create_request(&m)?;
    match caller {
        MeetingCaller::Admin(c) => {
            if req.organizer.is_empty() {
                return Err(ApiError::bad_request("missing 'organizer'"));
            }
            let script = new_meeting_script(&req);
            let out = admin_run(&state, c, origin(peer), script.clone()).await?;
            Ok((
                StatusCode::CREATED,
                admin_with_dial_in(&state, output_json(out, Some(&script))).await?,
            ))
        }
        MeetingCaller::User(me) => {
            if !req.organizer.is_empty()
                && confab_store::meetings::normalize_address(&req.organizer)
                    .ok()
                    .as_deref()
                    != Some(me.as_str())
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "denied",
                    "a user creates meetings they organize only",
                ));
            }
            req.organizer = me;
            let (created, obj) = create_for_user(&state, req).await?;
            Ok((StatusCode::CREATED, objects(vec![obj], created.warnings)))
        }
    }
}

// ----- live control ------------------------------------------------------------------------------

/// Longest participant id accepted.
const MAX_PARTICIPANT_LEN: usize = 512;

fn live_of(state: &AppState) -> Result<Arc<dyn LiveMeetings>, ApiError> {
    state.live.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_live",
            "no conference focus runs in this process",
        )
    })
}

fn not_live(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_live",
        format!("meeting {key} is not live on this server"),
    )
}

/// Checks that the caller may see or control the meeting `key`; for an administrator the
/// principal's name.
async fn authorize_live(
    state: &AppState,
    caller: &MeetingCaller,
    key: &str,
) -> Result<Actor, ApiError> {
    let store = state.store.clone();
    let k = key.to_string();
    match caller {
        MeetingCaller::Admin(c) => {
            let admin = c.admin.clone();
            blocking(move || {
                let principal =
                    confab_admin::principal_for(&store, &admin).map_err(store_failure)?;
                match confab_admin::meetings::authorize_live_control(&store, &principal, &k) {
                    Ok(_) => Ok(Actor::Admin(admin.name)),
                    Err(e) if is_not_found(&e) => Err(no_such_meeting(&k)),
                    Err(e) => Err(ApiError::from_exec(&e)),
                }
            })
            .await
        }
        MeetingCaller::User(me) => {
            let me = me.clone();
            blocking(move || {
                // a meeting that does not exist is a 404 whoever asks; whether the user may
                // act on an existing one is the focus's decision (organizer or presenter)
                match store.meeting_by_key(&k).map_err(store_failure)? {
                    Some(_) => Ok(Actor::User(me)),
                    None => Err(no_such_meeting(&k)),
                }
            })
            .await
        }
    }
}

pub(crate) async fn roster(
    State(state): State<AppState>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let key = key_of(key)?;
    match authorize_live(&state, &caller, &key).await? {
        Actor::Admin(_) => {}
        Actor::User(me) => {
            // the roster is the organizer's to see (presenters see it in their client)
            let store = state.store.clone();
            let k = key.clone();
            let own = blocking(move || store.meeting(&me, &k).map_err(store_failure)).await?;
            if own.is_none() {
                return Err(no_such_meeting(&key));
            }
        }
    }
    let r = live_of(&state)?
        .roster(&key)
        .ok_or_else(|| not_live(&key))?;
    Ok(Json(serde_json::to_value(r).unwrap_or_else(|_| json!({}))))
}

pub(crate) async fn act(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((key, participant, action)) = path?;
    let key = confab_store::meetings::normalize_key(&key).ok_or_else(|| no_such_meeting(&key))?;
    let action = LiveAction::parse(&action).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown action '{action}' (accepted: {})",
            LiveAction::NAMES.join(", ")
        ))
    })?;
    if participant.is_empty()
        || participant.len() > MAX_PARTICIPANT_LEN
        || participant.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "the participant id is empty, too long or has control characters",
        ));
    }
    let actor = authorize_live(&state, &caller, &key).await?;
    let live = live_of(&state)?;
    let (k, p, a) = (key.clone(), participant.clone(), actor.clone());
    let result = blocking(move || Ok(live.act(&k, &a, &p, action))).await?;
    let is_user = matches!(actor, Actor::User(_));
    if let Actor::Admin(name) = &actor {
        let store = state.store.clone();
        let (name, origin) = (name.clone(), origin(peer));
        let command = format!(
            "meeting {} {key} participant {}",
            action.as_str(),
            quote_str(&participant)
        );
        let (ok, outcome) = match &result {
            Ok(()) => (true, "ok".to_string()),
            Err(e) => (false, format!("{e:?}")),
        };
        blocking(move || {
            store
                .append_audit(&name, &origin, &command, ok, &outcome)
                .map_err(store_failure)
        })
        .await?;
    }
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(LiveError::NotLive) => Err(not_live(&key)),
        Err(LiveError::NoSuchParticipant) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_participant",
            format!("no participant {participant:?} in meeting {key}"),
        )),
        // a user who is neither organizer nor presenter learns nothing about the meeting
        Err(LiveError::Forbidden) if is_user => Err(no_such_meeting(&key)),
        Err(LiveError::Forbidden) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "denied",
            "not allowed to control this meeting",
        )),
        Err(LiveError::Invalid(m)) => Err(ApiError::bad_request(m)),
    }
}

/// The answer to a failed live action (`participant`: the one named, if any).
fn live_failure(key: &str, participant: Option<&str>, is_user: bool, e: LiveError) -> ApiError {
    match e {
        LiveError::NotLive => not_live(key),
        LiveError::NoSuchParticipant => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_participant",
            format!(
                "no participant {:?} in meeting {key}",
                participant.unwrap_or("")
            ),
        ),
        // a user who is neither organizer nor presenter learns nothing about the meeting
        LiveError::Forbidden if is_user => no_such_meeting(key),
        LiveError::Forbidden => ApiError::new(
            StatusCode::FORBIDDEN,
            "denied",
            "not allowed to control this meeting",
        ),
        LiveError::Invalid(m) => ApiError::bad_request(m),
    }
}

/// Runs a meeting-level action for an authorized actor; an administrator's is audited
/// (`origin`). Shared by REST and the meeting page.
pub(crate) async fn run_meeting_action(
    state: &AppState,
    actor: Actor,
    key: &str,
    action: MeetingAction,
    origin: String,
) -> Result<(), LiveError> {
    let Some(live) = state.live.clone() else {
        return Err(LiveError::NotLive);
    };
    let (k, a) = (key.to_string(), actor.clone());
    let result = tokio::task::spawn_blocking(move || live.meeting_act(&k, &a, action))
        .await
        .unwrap_or(Err(LiveError::NotLive));
    audit_live(
        state,
        &actor,
        &origin,
        format!("meeting {} {key}", action.as_str()),
        &result,
    )
    .await;
    result
}

/// An administrator's live action in the audit log (users' are not: they act on their own
/// meetings, as from their client).
pub(crate) async fn audit_live(
    state: &AppState,
    actor: &Actor,
    origin: &str,
    command: String,
    result: &Result<(), LiveError>,
) {
    let Actor::Admin(name) = actor else {
        return;
    };
    let store = state.store.clone();
    let (name, origin) = (name.clone(), origin.to_string());
    let (ok, outcome) = match result {
        Ok(()) => (true, "ok".to_string()),
        Err(e) => (false, format!("{e:?}")),
    };
    let r = blocking(move || {
        store
            .append_audit(&name, &origin, &command, ok, &outcome)
            .map_err(store_failure)
    })
    .await;
    if r.is_err() {
        tracing::error!("could not write a live meeting action to the audit log");
    }
}

/// `POST /api/v1/meetings/{key}/{lock,unlock,end}`.
async fn meeting_action(
    state: AppState,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
    action: MeetingAction,
) -> Result<StatusCode, ApiError> {
    let key = key_of(key)?;
    let actor = authorize_live(&state, &caller, &key).await?;
    let is_user = matches!(actor, Actor::User(_));
    live_of(&state)?;
    run_meeting_action(&state, actor, &key, action, origin(peer))
        .await
        .map_err(|e| live_failure(&key, None, is_user, e))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn meeting_action_lock(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    meeting_action(state, peer, caller, key, MeetingAction::Lock).await
}

pub(crate) async fn meeting_action_unlock(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    meeting_action(state, peer, caller, key, MeetingAction::Unlock).await
}

pub(crate) async fn meeting_action_end(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    key: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    meeting_action(state, peer, caller, key, MeetingAction::End).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_every_value() {
        let r = MeetingRequest {
            organizer: "alice@a.test'; Remove-CsMeeting x".into(),
            kind: Some(MeetingKind::Private),
            subject: Some("it's $x".into()),
            invitees: vec!["b@a.test".into()],
            pstn_bypass_lobby: Some(false),
            ..Default::default()
        };
        let s = new_meeting_script(&r);
        assert_eq!(
            s,
            "New-CsMeeting -Organizer 'alice@a.test''; Remove-CsMeeting x' -Private -Subject 'it''s $x' -PstnBypassLobby $false -Invitees @('b@a.test')"
        );
        let parsed = confab_admin::parse(&s).unwrap();
        assert_eq!(parsed.statements.len(), 1);
    }

    #[test]
    fn create_requests_are_checked() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert!(create_request(&m(json!({"acess": "Everyone"})))
            .unwrap_err()
            .message
            .contains("unknown field 'acess'"));
        assert!(create_request(&m(json!({"access": "Public"})))
            .unwrap_err()
            .message
            .contains("Locked, Invited, SameEnterprise, Everyone"));
        assert!(create_request(&m(json!({"invitees": "x"}))).is_err());
        assert!(create_request(&m(json!({"end": "soon"}))).is_err());
        let r = create_request(&m(
            json!({"kind": "private", "access": "everyone", "end": "2099-01-01T00:00:00Z"}),
        ))
        .unwrap();
        assert_eq!(r.kind, Some(MeetingKind::Private));
        assert_eq!(r.access, Some(Access::Everyone));
        assert!(r.end_at.is_some());
    }

    #[test]
    fn digests_compare_whole() {
        assert!(same_digest("abcd", "abcd"));
        assert!(!same_digest("abcd", "abce"));
        assert!(!same_digest("abcd", "abc"));
    }
}
