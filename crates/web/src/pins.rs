//! `/api/v1/me/pin`: users set and inspect their own dial-in PIN with their SIP password
//! (HTTP Basic, the same sign-in and throttling as the users' meeting routes). A new PIN
//! follows the user's CsPinPolicy (`confab_admin::pins`): a refused one is a 400 naming the
//! rule. Administrators use `Set-CsClientPin` & co. through `POST /api/v1/cmdlets`.
//! A user's change is written to the audit log under `sip:<user>` (the PIN never).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Json;
use confab_store::{StoreError, User};
use serde_json::{json, Value};

use crate::meetings::MeetingCaller;
use crate::{blocking, json_object, origin, store_failure, ApiError, AppState};

/// The signed-in user, or a 403 for an administrator's token (these routes are a user's
/// own); `admin_cmdlets` names what administrators use instead.
pub(crate) fn me(caller: MeetingCaller, admin_cmdlets: &str) -> Result<String, ApiError> {
    match caller {
        MeetingCaller::User(me) => Ok(me),
        MeetingCaller::Admin(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "denied",
            format!("/me routes are for users signed in with their SIP password (HTTP Basic); administrators use {admin_cmdlets}"),
        )),
    }
}

const PIN_CMDLETS: &str = "Set-CsClientPin and Get-CsClientPinInfo";

pub(crate) fn user_of(store: &confab_store::Store, me: &str) -> Result<User, ApiError> {
    let (u, d) = me.split_once('@').unwrap_or((me, ""));
    store
        .get_user(u, d)
        .map_err(store_failure)?
        .ok_or_else(|| ApiError::not_found(format!("no such user: {me}")))
}

/// The caller's PIN state as JSON (never the PIN or its hash).
pub(crate) fn info_json(store: &confab_store::Store, user: &User) -> Result<Value, ApiError> {
    use confab_admin::meetings::rfc3339;
    let address = user.address();
    let info = store.client_pin_info(&address).map_err(store_failure)?;
    let policy =
        confab_admin::pins::pin_policy_for(store, &address, None).map_err(store_failure)?;
    Ok(json!({
        "user": format!("sip:{address}"),
        "is_pin_set": info.is_pin_set,
        "is_locked_out": info.is_locked_out,
        "last_changed": info.last_changed.map(rfc3339),
        "expires": confab_admin::pins::expires_at(&info, &policy).map(rfc3339),
        "failed_attempts": info.failed_attempts,
        "min_length": confab_admin::pins::min_length(&policy),
    }))
}

pub(crate) async fn get_pin(
    State(state): State<AppState>,
    caller: MeetingCaller,
) -> Result<Json<Value>, ApiError> {
    let me = me(caller, PIN_CMDLETS)?;
    let store = state.store.clone();
    blocking(move || {
        let user = user_of(&store, &me)?;
        info_json(&store, &user).map(Json)
    })
    .await
}

pub(crate) async fn put_pin(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let me = me(caller, PIN_CMDLETS)?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "pin") {
        return Err(ApiError::bad_request(format!(
            "unknown field '{k}' (accepted: pin)"
        )));
    }
    let pin = match m.get("pin") {
        Some(Value::String(p)) => p.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "'pin' must be a string of digits (in quotes, so leading zeros stay)",
            ))
        }
        None => return Err(ApiError::bad_request("missing 'pin'")),
    };
    set_own_pin(&state, me, pin, origin(peer)).await.map(Json)
}

/// A user sets their own PIN (REST's `PUT /api/v1/me/pin`, the dial-in page): checked by
/// their CsPinPolicy (a refusal is a 400 with the policy's message), audited under
/// `sip:<user>` without the PIN. Their PIN state after.
pub(crate) async fn set_own_pin(
    state: &AppState,
    me: String,
    pin: String,
    origin: String,
) -> Result<Value, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let user = user_of(&store, &me)?;
        let address = user.address();
        let command = format!("Set-CsClientPin -Identity sip:{address} -Pin ******** (self)");
        let r = confab_admin::pins::set_pin(
            &store,
            &address,
            Some(&pin),
            None,
            confab_admin::pins::now(),
        );
        let (ok, result) = match &r {
            Ok(_) => (true, "ok".to_string()),
            Err(e) => (false, e.to_string()),
        };
        store
            .append_audit(&format!("sip:{address}"), &origin, &command, ok, &result)
            .map_err(store_failure)?;
        match r {
            Ok(_) => info_json(&store, &user),
            Err(StoreError::Invalid(m)) => Err(ApiError::bad_request(m)),
            Err(e) => Err(store_failure(e)),
        }
    })
    .await
}
