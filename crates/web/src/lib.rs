//! confab's REST API: the admin shell's cmdlets over HTTP and JSON.
//!
//! Every route that does something runs a script through [`confab_admin::Session::run`], so
//! the REST API has exactly the shell's checks (cmdlet and parameter names, value types,
//! role-based access control) and writes the same audit log (origin `rest <peer ip:port>`).
//! Resource routes (`/users`, `/config/…`) build the equivalent cmdlet text from the request,
//! quoting every value (see [`script`]), so input can never add commands of its own.
//!
//! | route | auth | runs |
//! | --- | --- | --- |
//! | `POST /api/v1/tokens` `{"name","password"}` | none | issues a bearer token (throttled: see [`signin`]) |
//! | `DELETE /api/v1/tokens` | bearer | revokes the caller's token |
//! | `POST /api/v1/cmdlets` `{"command"}` | bearer | the command text |
//! | `GET /api/v1/users` | bearer | `Get-CsUser` |
//! | `POST /api/v1/users` `{"SipAddress","Password","DisplayName"?,"OU"?}` | bearer | `New-CsUser -Identity 'sip:{SipAddress}' -Password '…' …` (201 with the user) |
//! | `GET /api/v1/users/{address}` | bearer | `Get-CsUser -Identity 'sip:{address}'` |
//! | `PATCH /api/v1/users/{address}` `{"Enabled": false}` | bearer | `Set-CsUser -Identity 'sip:{address}' -Enabled $false` |
//! | `DELETE /api/v1/users/{address}` | bearer | `Remove-CsUser -Identity 'sip:{address}'` (204) |
//! | `GET /api/v1/config/{noun}` | bearer | `Get-{noun}` |
//! | `GET /api/v1/config/{noun}/{identity}` | bearer | `Get-{noun} -Identity '{identity}'` |
//! | `PATCH /api/v1/config/{noun}/{identity}` `{"Prop": value}` | bearer | `Set-{noun} -Identity '{identity}' -Prop value` |
//! | `GET /api/v1/meetings[?organizer=…]` | bearer or user | `Get-CsMeeting`; a user: their own meetings |
//! | `POST /api/v1/meetings` `{"organizer","kind","access",…}` | bearer or user | `New-CsMeeting …`; a user: for themselves |
//! | `GET /api/v1/meetings/{key}` | bearer or user | `Get-CsMeeting -Identity '{key}'` (404 for someone else's, to a user) |
//! | `DELETE /api/v1/meetings/{key}` | bearer or user | `Remove-CsMeeting -Identity '{key}'` |
//! | `GET /api/v1/meetings/{key}/roster` | bearer or user | the live roster and lobby ([`LiveMeetings`]) |
//! | `POST /api/v1/meetings/{key}/participants/{id}/{admit,deny,mute,unmute,remove}` | bearer or user | live control ([`LiveMeetings::act`]) |
//! | `POST /api/v1/meetings/{key}/{lock,unlock,end}` | bearer or user | lock, unlock or end a live meeting ([`LiveMeetings::meeting_act`]) |
//! | `PUT /api/v1/me/password` `{"current","new"}` | user | the caller's own SIP password ([`password`]) |
//! | `GET /api/v1/openapi.json` | none | the OpenAPI 3.0 description |
//! | `GET /metrics` | none | the SIP server's counters in Prometheus' text format (counts only, no names or addresses) |
//!
//! "user" is HTTP Basic with a user's SIP address and password (see [`meetings`]).
//!
//! Store calls block (SQLite behind a mutex, Argon2 for passwords): they all run in
//! [`tokio::task::spawn_blocking`]. Sign-ins are throttled per address and per account, and
//! at most two passwords are evaluated at a time ([`signin`]); failed sign-ins and refused
//! commands are written to the audit log. Commands are logged with their secrets redacted,
//! as in the audit log.

mod forwarding;
pub mod meetings;
pub mod openapi;
mod password;
mod pins;
pub mod script;
pub mod signin;
pub mod site;

pub use meetings::{
    Actor, LiveAction, LiveError, LiveMeetings, LiveParticipant, LiveRoster, MeetingAction,
};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_admin::ExecError;
use confab_store::{Admin, Store};
use serde_json::{json, Map, Value};

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1";

/// How long a token from `POST /api/v1/tokens` stays valid.
pub const TOKEN_TTL_SECS: u64 = 3600;

/// Serves the API on `listener` until the task is dropped or the listener fails. Peer
/// addresses are recorded in the audit log, so this serves with connect info.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    pool: String,
    metrics: Option<MetricsSource>,
) -> std::io::Result<()> {
    serve_with(listener, store, pool, metrics, ApiOptions::default()).await
}

/// [`serve`] with options: the export folder, the sign-in limits.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    pool: String,
    metrics: Option<MetricsSource>,
    options: ApiOptions,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "REST API listening");
    }
    axum::serve(
        listener,
        router_with(store, pool, metrics, options)
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// What the API may do beyond the store.
#[derive(Clone, Default)]
pub struct ApiOptions {
    /// The folder export and import cmdlets write and read (`<data_dir>/export`); `None`:
    /// they are refused.
    pub export_dir: Option<PathBuf>,
    /// Sign-in throttling.
    pub sign_in: signin::SignInLimits,
    /// The conference focus of this process, for the live meeting routes
    /// (`/api/v1/meetings/{key}/roster`, `…/participants/{id}/{action}`); `None`: they
    /// answer 404 `not_live`.
    pub live_meetings: Option<Arc<dyn LiveMeetings>>,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("export_dir", &self.export_dir)
            .field("sign_in", &self.sign_in)
            .field("live_meetings", &self.live_meetings.is_some())
            .finish()
    }
}

/// The API's routes, for embedding (serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`, or the audit log says
/// `rest unknown` and every caller shares one sign-in throttle). `pool` is the FQDN used in
/// `Service:` scopes.
pub fn router(store: Arc<Store>, pool: String, metrics: Option<MetricsSource>) -> Router {
    router_with(store, pool, metrics, ApiOptions::default())
}

/// [`router`] with options.
pub fn router_with(
    store: Arc<Store>,
    pool: String,
    metrics: Option<MetricsSource>,
    options: ApiOptions,
) -> Router {
    let state = app_state(store, pool, metrics, options);
    api_routes(state.clone())
        .fallback(not_found)
        .with_state(state)
}

fn app_state(
    store: Arc<Store>,
    pool: String,
    metrics: Option<MetricsSource>,
    options: ApiOptions,
) -> AppState {
    AppState {
        store,
        pool: Arc::from(pool),
        metrics: metrics.map(|render| MetricsCache {
            render,
            last: Arc::default(),
        }),
        export_dir: options.export_dir.map(Arc::from),
        sign_in: signin::Gate::new(options.sign_in),
        live: options.live_meetings,
    }
}

/// The REST API's routes (`/api/v1/…`, `/metrics`) with their state, for any router.
pub(crate) fn api_routes<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    let api = Router::new()
        .route("/tokens", post(login).delete(logout))
        .route("/cmdlets", post(run_cmdlets))
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/:address",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route("/config/:noun", get(list_config))
        .route(
            "/config/:noun/:identity",
            get(get_config).patch(patch_config),
        )
        .route("/meetings", get(meetings::list).post(meetings::create))
        .route(
            "/meetings/:key",
            get(meetings::get_one).delete(meetings::remove),
        )
        .route("/meetings/:key/roster", get(meetings::roster))
        .route("/meetings/:key/lock", post(meetings::meeting_action_lock))
        .route(
            "/meetings/:key/unlock",
            post(meetings::meeting_action_unlock),
        )
        .route("/meetings/:key/end", post(meetings::meeting_action_end))
        .route("/me/pin", get(pins::get_pin).put(pins::put_pin))
        .route("/me/password", axum::routing::put(password::put_password))
        .route(
            "/me/forwarding",
            get(forwarding::get_forwarding)
                .put(forwarding::put_forwarding)
                .delete(forwarding::delete_forwarding),
        )
        .route(
            "/meetings/:key/participants/:id/:action",
            post(meetings::act),
        )
        .route("/openapi.json", get(openapi_json))
        .route("/*rest", axum::routing::any(not_found));
    Router::new()
        .nest(API_PREFIX, api)
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::map_response(json_405))
        .with_state(state)
}

/// The web site's share of the API: its state, the site's settings and the simple URL
/// cache, for [`site::app`] (one per process: both faces share them).
#[derive(Clone)]
pub struct SiteApi {
    pub(crate) state: AppState,
    pub(crate) settings: Arc<site::SiteSettings>,
    pub(crate) urls: Arc<site::urls::UrlCache>,
    pub(crate) history: Arc<site::cscp::History>,
}

impl SiteApi {
    pub fn new(
        store: Arc<Store>,
        pool: String,
        metrics: Option<MetricsSource>,
        options: ApiOptions,
        settings: site::SiteSettings,
    ) -> SiteApi {
        let state = app_state(store, pool, metrics, options);
        // the Control Panel's charts: the counters sampled every minute (on the caller's
        // runtime, until the last SiteApi goes)
        let history: Arc<site::cscp::History> = Arc::default();
        if let Some(m) = &state.metrics {
            history.start(m.clone());
        }
        SiteApi {
            state,
            settings: Arc::new(settings),
            urls: Arc::default(),
            history,
        }
    }
}

/// Renders the running SIP server's counters (Prometheus text); the API itself does not
/// depend on the server crate.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) pool: Arc<str>,
    pub(crate) metrics: Option<MetricsCache>,
    pub(crate) export_dir: Option<Arc<std::path::Path>>,
    pub(crate) sign_in: Arc<signin::Gate>,
    pub(crate) live: Option<Arc<dyn LiveMeetings>>,
}

/// The last rendering of the metrics: `/metrics` needs no sign-in, so a flood of scrapes
/// costs at most one rendering (which visits every location shard) per [`METRICS_FRESH`].
#[derive(Clone)]
pub(crate) struct MetricsCache {
    render: MetricsSource,
    last: Arc<std::sync::Mutex<Option<Rendered>>>,
}

/// When the metrics were rendered, and the text.
type Rendered = (std::time::Instant, Arc<str>);

const METRICS_FRESH: std::time::Duration = std::time::Duration::from_millis(100);

impl MetricsCache {
    fn text(&self) -> Arc<str> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match &*last {
            Some((at, text)) if at.elapsed() < METRICS_FRESH => text.clone(),
            _ => {
                let text: Arc<str> = (self.render)().into();
                *last = Some((std::time::Instant::now(), text.clone()));
                text
            }
        }
    }
}

/// `GET /metrics`: 404 when no SIP server runs in this process.
async fn metrics_text(State(st): State<AppState>) -> Response {
    match st.metrics {
        Some(m) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            m.text().to_string(),
        )
            .into_response(),
        None => not_found().await.into_response(),
    }
}

// ----- errors ------------------------------------------------------------------------------------

/// An error response: `{"error": message, "kind": kind}` with an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A script error: 403 for RBAC denials, 400 for everything else.
    pub fn from_exec(e: &ExecError) -> ApiError {
        let (status, kind) = match e {
            ExecError::Parse(_) => (StatusCode::BAD_REQUEST, "parse"),
            ExecError::UnknownCmdlet { .. } => (StatusCode::BAD_REQUEST, "unknown_cmdlet"),
            ExecError::UnknownParameter { .. } => (StatusCode::BAD_REQUEST, "unknown_parameter"),
            ExecError::BadValue { .. } => (StatusCode::BAD_REQUEST, "bad_value"),
            ExecError::Missing { .. } => (StatusCode::BAD_REQUEST, "missing"),
            ExecError::Denied { .. } | ExecError::OutOfScope { .. } => {
                (StatusCode::FORBIDDEN, "denied")
            }
            ExecError::Failed { message, .. }
                if message.starts_with("could not write the audit log") =>
            {
                (StatusCode::INTERNAL_SERVER_ERROR, "failed")
            }
            ExecError::Failed { .. } => (StatusCode::BAD_REQUEST, "failed"),
        };
        ApiError::new(status, kind, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({"error": self.message, "kind": self.kind})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"confab\""),
            );
        }
        res
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        ApiError::new(r.status(), "bad_request", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

/// "Cannot find …", "… does not exist", "Management object not found …": the object a
/// resource route names is absent.
fn is_not_found(e: &ExecError) -> bool {
    match e {
        ExecError::Failed { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("not found") || m.starts_with("cannot find") || m.contains("does not exist")
        }
        _ => false,
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// axum answers a wrong method with an empty 405; give it the JSON error body.
async fn json_405(res: Response) -> Response {
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "bad_request",
        "method not allowed on this route",
    )
    .into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "REST API worker failed");
        ApiError::internal("internal error")
    })?
}

pub(crate) fn store_failure(e: confab_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "REST API store error");
    ApiError::internal(format!("store error: {e}"))
}

/// A JSON object body.
fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let body = body?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn string_field(m: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match m.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a string"))),
        None => Err(ApiError::bad_request(format!("missing '{name}'"))),
    }
}

// ----- authentication ----------------------------------------------------------------------------

/// The administrator a valid bearer token belongs to (their roles as stored now).
struct Caller {
    admin: Admin,
    token: String,
}

fn bearer_token(parts: &Parts) -> Result<String, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing bearer token (Authorization: Bearer <token>)",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid Authorization header"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized(
            "expected Authorization: Bearer <token>",
        ));
    }
    Ok(token.to_string())
}

#[axum::async_trait]
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = bearer_token(parts)?;
        let store = state.store.clone();
        let t = token.clone();
        let admin = blocking(move || store.token_admin(&t).map_err(store_failure)).await?;
        match admin {
            Some(admin) => Ok(Caller { admin, token }),
            None => Err(ApiError::unauthorized("invalid or expired token")),
        }
    }
}

/// `rest <peer ip:port>`, the session origin in the audit log.
fn origin(peer: Option<ConnectInfo<SocketAddr>>) -> String {
    match peer {
        Some(ConnectInfo(addr)) => format!("rest {addr}"),
        None => "rest unknown".to_string(),
    }
}

// ----- running scripts ---------------------------------------------------------------------------

/// Runs `script` as `admin` (roles resolved now, so role changes apply at once).
pub(crate) async fn run_script(
    state: &AppState,
    admin: Admin,
    origin: String,
    script: String,
) -> Result<confab_admin::Output, (ApiError, Option<ExecError>)> {
    let store = state.store.clone();
    let pool = state.pool.clone();
    let export_dir = state.export_dir.clone();
    let res = blocking(move || {
        let principal = confab_admin::principal_for(&store, &admin).map_err(store_failure)?;
        let mut session = confab_admin::Session::new(&store, principal, &origin, &pool);
        if let Some(dir) = export_dir {
            session = session.with_export_dir(dir.to_path_buf());
        }
        let out = session.run(&script);
        // secrets redacted as in the audit log
        let command = confab_admin::cmdlets::redact(&script);
        match &out {
            Ok(_) => tracing::debug!(admin = %admin.name, %origin, %command, "REST command ran"),
            Err(e) => tracing::info!(admin = %admin.name, %origin, %command, error = %e, "REST command failed"),
        }
        Ok(out)
    })
    .await
    .map_err(|e| (e, None))?;
    res.map_err(|e| (ApiError::from_exec(&e), Some(e)))
}

fn output_json(out: confab_admin::Output, command: Option<&str>) -> Json<Value> {
    let objects: Vec<Value> = out.objects.iter().map(|o| o.to_json()).collect();
    let mut m = Map::new();
    if let Some(c) = command {
        m.insert("command".into(), Value::String(c.to_string()));
    }
    m.insert("objects".into(), Value::Array(objects));
    m.insert("text".into(), Value::String(out.text));
    m.insert(
        "warnings".into(),
        Value::Array(out.warnings.into_iter().map(Value::String).collect()),
    );
    Json(Value::Object(m))
}

/// A resource route: runs its generated script; a missing object is a 404.
async fn run_resource(
    state: &AppState,
    caller: Caller,
    origin: String,
    script: String,
    single: bool,
) -> Result<Json<Value>, ApiError> {
    let out = run_script(state, caller.admin, origin, script.clone())
        .await
        .map_err(|(api, e)| match e {
            Some(e) if is_not_found(&e) => ApiError::not_found(e.to_string()),
            _ => api,
        })?;
    if single && out.objects.is_empty() {
        return Err(ApiError::not_found("no such object"));
    }
    Ok(output_json(out, Some(&script)))
}

// ----- handlers ----------------------------------------------------------------------------------

/// The answer to a throttled sign-in: 429 (or 503 when the server is busy with sign-ins in
/// all) with Retry-After.
fn refusal_response(r: &signin::Refusal) -> Response {
    let (status, kind, message, secs) = match r {
        signin::Refusal::Throttled {
            by,
            retry_after_secs,
            ..
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many failed sign-ins for this {by}; try again in {retry_after_secs} s"),
            *retry_after_secs,
        ),
        signin::Refusal::Busy { retry_after_secs } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("too many sign-ins in progress; try again in {retry_after_secs} s"),
            *retry_after_secs,
        ),
    };
    let mut res = ApiError::new(status, kind, message).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// The name an audit entry for a sign-in names: as given when it could be an account's,
/// otherwise a placeholder (the log keeps no arbitrary input).
fn audit_name(name: &str) -> &str {
    if confab_store::validate_admin_name(name).is_ok() {
        name
    } else {
        "(invalid name)"
    }
}

/// Writes a sign-in outcome to the audit log, off the async threads, without waiting.
fn audit_sign_in(store: &Arc<Store>, name: &str, origin: &str, result: String) {
    let (store, name, origin) = (
        store.clone(),
        audit_name(name).to_string(),
        origin.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store.append_audit(&name, &origin, "sign-in", false, &result) {
            tracing::error!(error = %e, "could not write a sign-in refusal to the audit log");
        }
    });
}

async fn login(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match login_inner(state, peer, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn login_inner(
    state: AppState,
    peer: Option<ConnectInfo<SocketAddr>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let m = json_object(body)?;
    let name = string_field(&m, "name")?;
    let password = string_field(&m, "password")?;
    let ip = peer
        .as_ref()
        .map(|ConnectInfo(a)| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let origin = origin(peer);
    match sign_in_admin(&state, name, password, ip, origin, TOKEN_TTL_SECS).await? {
        SignIn::Signed(token) => {
            Ok(Json(json!({"token": token, "expires_in": TOKEN_TTL_SECS})).into_response())
        }
        SignIn::Invalid => Err(ApiError::unauthorized("invalid name or password")),
        SignIn::Refused(r) => Ok(r),
    }
}

/// The outcome of a sign-in.
pub(crate) enum SignIn {
    /// An administrator's new token, or a user's address (`user@domain`).
    Signed(String),
    /// Wrong name or password (counted against the address and the account).
    Invalid,
    /// Throttled or overloaded: the 429 / 503 answer.
    Refused(Response),
}

/// An administrator signs in with name and password (throttled, audited with `origin`); a
/// new token valid for `ttl_secs` on success. The REST API's `POST /tokens` and the web
/// site's sign-in page.
pub(crate) async fn sign_in_admin(
    state: &AppState,
    name: String,
    password: String,
    ip: std::net::IpAddr,
    origin: String,
    ttl_secs: u64,
) -> Result<SignIn, ApiError> {
    // a name or password no account can have is refused without evaluating anything
    let plausible = confab_store::validate_admin_name(&name).is_ok()
        && password.chars().count() <= confab_store::MAX_ADMIN_PASSWORD_LEN;
    let ticket = match state.sign_in.admit(ip, plausible.then_some(name.as_str())) {
        Ok(t) => t,
        Err(r) => {
            if let signin::Refusal::Throttled {
                first: true, by, ..
            } = &r
            {
                tracing::warn!(admin = %audit_name(&name), %origin, "admin sign-ins throttled");
                audit_sign_in(
                    &state.store,
                    &name,
                    &origin,
                    format!("throttled: too many failed sign-ins for this {by}; further attempts answered 429 for a while"),
                );
            }
            return Ok(SignIn::Refused(refusal_response(&r)));
        }
    };
    if !plausible {
        drop(ticket); // a failure
        tracing::warn!(%origin, "admin sign-in refused: malformed name or password");
        // a name no account can have is not an administrator's sign-in: not audited, so
        // junk costs no store write (it still counts against the address)
        if confab_store::validate_admin_name(&name).is_ok() {
            audit_sign_in(
                &state.store,
                &name,
                &origin,
                "refused: invalid name or password".into(),
            );
        }
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
    let (n, o) = (name.clone(), origin.clone());
    let token = blocking(move || {
        let verified = store.verify_admin(&n, &password);
        drop(permit); // the next evaluation may start
        let Some(admin) = verified.map_err(store_failure)? else {
            if let Err(e) = store.append_audit(
                audit_name(&n),
                &o,
                "sign-in",
                false,
                "refused: invalid name or password",
            ) {
                tracing::error!(error = %e, "could not write a sign-in refusal to the audit log");
            }
            return Ok(None);
        };
        store
            .issue_token(&admin.name, ttl_secs)
            .map(Some)
            .map_err(store_failure)
    })
    .await?;
    match token {
        Some(token) => {
            ticket.succeeded();
            tracing::info!(admin = %name, %origin, "admin sign-in");
            Ok(SignIn::Signed(token))
        }
        None => {
            drop(ticket); // a failure
            tracing::warn!(admin = %audit_name(&name), %origin, "admin sign-in refused");
            Ok(SignIn::Invalid)
        }
    }
}

async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let token = caller.token;
    blocking(move || store.revoke_token(&token).map_err(store_failure)).await?;
    tracing::info!(admin = %caller.admin.name, "REST token revoked");
    Ok(StatusCode::NO_CONTENT)
}

async fn run_cmdlets(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let m = json_object(body)?;
    let command = string_field(&m, "command")?;
    if command.trim().is_empty() {
        return Err(ApiError::bad_request("'command' is empty"));
    }
    let out = run_script(&state, caller.admin, origin(peer), command)
        .await
        .map_err(|(api, _)| api)?;
    Ok(output_json(out, None))
}

async fn list_users(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    run_resource(&state, caller, origin(peer), "Get-CsUser".into(), false).await
}

async fn get_user(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    address: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(address) = address?;
    let cmd = script::get_user(&address)?;
    run_resource(&state, caller, origin(peer), cmd, true).await
}

async fn patch_user(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    address: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(address) = address?;
    let props = json_object(body)?;
    let cmd = script::set_user(&address, &props)?;
    run_resource(&state, caller, origin(peer), cmd, false).await
}

/// `POST /users`: `New-CsUser`; 201 with the new user. The command echoed back has the
/// password redacted.
async fn create_user(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let props = json_object(body)?;
    let cmd = script::new_user(&props)?;
    let out = run_script(&state, caller.admin, origin(peer), cmd.clone())
        .await
        .map_err(|(api, e)| match e {
            Some(ExecError::Failed { message, .. }) if message.contains("already exists") => {
                ApiError::new(StatusCode::CONFLICT, "exists", message)
            }
            _ => api,
        })?;
    let command = confab_admin::cmdlets::redact(&cmd);
    Ok((StatusCode::CREATED, output_json(out, Some(&command))))
}

/// `DELETE /users/{address}`: `Remove-CsUser`; 204, or 404 for no such user.
async fn delete_user(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    address: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(address) = address?;
    let cmd = script::remove_user(&address)?;
    run_resource(&state, caller, origin(peer), cmd, false)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

async fn list_config(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    noun: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(noun) = noun?;
    let cmd = script::get_config(&noun, None)?;
    run_resource(&state, caller, origin(peer), cmd, false).await
}

async fn get_config(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((noun, identity)) = path?;
    let cmd = script::get_config(&noun, Some(&identity))?;
    run_resource(&state, caller, origin(peer), cmd, true).await
}

async fn patch_config(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((noun, identity)) = path?;
    let props = json_object(body)?;
    let cmd = script::set_config(&noun, &identity, &props)?;
    run_resource(&state, caller, origin(peer), cmd, false).await
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}
