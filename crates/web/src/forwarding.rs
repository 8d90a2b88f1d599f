//! `/api/v1/me/forwarding`: users read and set their own call forwarding (immediate,
//! simultaneous ring, team call, unanswered and busy targets; `confab_voice::CallForwarding`
//! as JSON) with their SIP password (HTTP Basic, the same sign-in and throttling as the
//! users' meeting and PIN routes). New settings are checked against the user's policies
//! (`confab_admin::forwarding::check_forwarding`): a refused one is a 400 naming the
//! setting and the policy property, and nothing changes. Administrators use
//! `Get-CsUserCallForwarding` / `Set-CsUserCallForwarding` through `POST /api/v1/cmdlets`.
//! A user's change is written to the audit log under `sip:<user>`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use confab_store::{Store, User};
use confab_voice::CallForwarding;
use serde_json::Value;

use crate::meetings::MeetingCaller;
use crate::pins::{me, user_of};
use crate::{blocking, origin, store_failure, ApiError, AppState};

const ADMIN_CMDLETS: &str = "Get-CsUserCallForwarding and Set-CsUserCallForwarding";

fn as_json(f: &CallForwarding) -> Json<Value> {
    Json(serde_json::to_value(f).unwrap_or(Value::Null))
}

pub(crate) async fn get_forwarding(
    State(state): State<AppState>,
    caller: MeetingCaller,
) -> Result<Json<Value>, ApiError> {
    let me = me(caller, ADMIN_CMDLETS)?;
    let store = state.store.clone();
    blocking(move || {
        Ok(as_json(&CallForwarding::from_stored(
            user_of(&store, &me)?.call_forwarding.as_deref(),
        )))
    })
    .await
}

pub(crate) async fn put_forwarding(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let me = me(caller, ADMIN_CMDLETS)?;
    let body = body?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8 JSON"))?
        .to_string();
    let origin = origin(peer);
    let store = state.store.clone();
    blocking(move || {
        let user = user_of(&store, &me)?;
        let f = CallForwarding::from_json(&text).map_err(ApiError::bad_request);
        let checked = f.and_then(|f| {
            confab_admin::forwarding::check_forwarding(&store, &user.address(), &f)
                .map(|()| f)
                .map_err(ApiError::bad_request)
        });
        let shown = match &checked {
            Ok(f) => f.to_json(),
            Err(_) => "(refused)".to_string(),
        };
        store_settings(&store, &user, &origin, checked, &shown)
    })
    .await
}

pub(crate) async fn delete_forwarding(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
) -> Result<Json<Value>, ApiError> {
    let me = me(caller, ADMIN_CMDLETS)?;
    let origin = origin(peer);
    let store = state.store.clone();
    blocking(move || {
        let user = user_of(&store, &me)?;
        store_settings(
            &store,
            &user,
            &origin,
            Ok(CallForwarding::default()),
            "-Clear",
        )
    })
    .await
}

/// Stores checked settings (the defaults as NULL) and audits the attempt either way.
fn store_settings(
    store: &Store,
    user: &User,
    origin: &str,
    checked: Result<CallForwarding, ApiError>,
    shown: &str,
) -> Result<Json<Value>, ApiError> {
    let address = user.address();
    let r = checked.and_then(|f| {
        let json = (!f.is_default()).then(|| f.to_json());
        store
            .set_call_forwarding(&user.username, &user.domain, json.as_deref())
            .map_err(|e| match e {
                confab_store::StoreError::Invalid(m) => ApiError::bad_request(m),
                e => store_failure(e),
            })?;
        Ok(f)
    });
    let (ok, result) = match &r {
        Ok(_) => (true, "ok".to_string()),
        Err(e) => (false, e.message.clone()),
    };
    let command = format!("Set-CsUserCallForwarding -Identity sip:{address} {shown} (self)");
    store
        .append_audit(&format!("sip:{address}"), origin, &command, ok, &result)
        .map_err(store_failure)?;
    r.map(|f| as_json(&f))
}
