//! `PUT /api/v1/me/password` `{"current","new"}`: users change their own SIP password,
//! signed in with it (HTTP Basic, the same throttled sign-in as `/me/pin`). The current
//! password is checked again through the sign-in throttle (a wrong one is a 403 and changes
//! nothing); the new one follows `confab_store::validate_password`. On success the old
//! password stops working at once (for SIP and the web) and the user's web sessions end.
//! Every attempt past sign-in is written to the audit log under `sip:<user>`, never with a
//! password. Administrators use `Set-CsUserPassword`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_store::StoreError;
use serde_json::{json, Value};

use crate::meetings::{sign_in_user, MeetingCaller};
use crate::pins::{me, user_of};
use crate::{blocking, json_object, origin, store_failure, ApiError, AppState, SignIn};

fn field(m: &serde_json::Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match m.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a string"))),
        None => Err(ApiError::bad_request(format!("missing '{name}'"))),
    }
}

fn audit(store: &confab_store::Store, address: &str, origin: &str, ok: bool, result: &str) {
    let command = format!("Set-CsUserPassword -Identity sip:{address} -Password ******** (self)");
    if let Err(e) = store.append_audit(&format!("sip:{address}"), origin, &command, ok, result) {
        tracing::error!(error = %e, "could not write a password change to the audit log");
    }
}

pub(crate) async fn put_password(
    State(state): State<AppState>,
    peer: Option<ConnectInfo<SocketAddr>>,
    caller: MeetingCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let me = me(caller, "Set-CsUserPassword")?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "current" | "new")) {
        return Err(ApiError::bad_request(format!(
            "unknown field '{k}' (accepted: current, new)"
        )));
    }
    let current = field(&m, "current")?;
    let new = field(&m, "new")?;
    confab_store::validate_password(&new).map_err(|e| match e {
        StoreError::Invalid(msg) => ApiError::bad_request(format!("'new': {msg}")),
        e => ApiError::bad_request(format!("'new': {e}")),
    })?;
    let ip = peer
        .as_ref()
        .map(|ConnectInfo(a)| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let origin = origin(peer);
    // the current password again, counted by the sign-in throttle like any sign-in
    match sign_in_user(&state, me.clone(), current, ip, &origin).await? {
        SignIn::Signed(_) => {}
        SignIn::Invalid => {
            let (store, who, o) = (state.store.clone(), me.clone(), origin.clone());
            blocking(move || {
                audit(
                    &store,
                    &who,
                    &o,
                    false,
                    "refused: the current password is wrong",
                );
                Ok(())
            })
            .await?;
            tracing::warn!(user = %me, %origin, "password change refused: wrong current password");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "denied",
                "'current' is not your current password; nothing changed",
            ));
        }
        SignIn::Refused(r) => return Ok(r),
    }
    let store = state.store.clone();
    let o = origin.clone();
    let address = blocking(move || {
        let user = user_of(&store, &me)?;
        let address = user.address();
        let r = store.set_password(&user.username, &user.domain, &new);
        match &r {
            Ok(()) => audit(&store, &address, &o, true, "ok"),
            Err(e) => audit(&store, &address, &o, false, &e.to_string()),
        }
        match r {
            Ok(()) => Ok(address),
            Err(StoreError::Invalid(m)) => Err(ApiError::bad_request(format!("'new': {m}"))),
            Err(e) => Err(store_failure(e)),
        }
    })
    .await?;
    tracing::info!(user = %address, %origin, "user changed their password");
    Ok(Json(json!({
        "user": format!("sip:{address}"),
        "changed": true,
        "web_sessions_ended": true,
    }))
    .into_response())
}
