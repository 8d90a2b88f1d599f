//! The dial-in page (Lync's `Dialin` simple URL; both faces).
//!
//! - `GET /_/dialin`: the dial-in access numbers (CsDialInConferencingAccessNumber) grouped
//!   by region, by Priority, with their languages — for anyone. A signed-in user also sees
//!   their assigned meeting's conference ID (when they have one), their PIN state, and a
//!   form to set their dial-in PIN.
//! - `POST /_/dialin/pin`: sets the signed-in user's PIN exactly as REST's
//!   `PUT /api/v1/me/pin` does (the user's CsPinPolicy; a refusal shows the policy's
//!   message; audited without the PIN). The PIN is never shown, put in a URL or logged.

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use confab_policy::{DialInConferencingAccessNumber as Number, Document};
use confab_store::MeetingKind;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::page;
use super::session::{UserSession, Viewer};
use super::Site;
use crate::{blocking, store_failure, ApiError};

pub(crate) fn routes() -> Router<Site> {
    Router::new()
        .route("/_/dialin", get(dialin_page))
        .route("/_/dialin/pin", post(set_pin))
}

/// A region and its numbers: (identity, number).
type Regions = Vec<(String, Vec<(String, Number)>)>;

/// Every access number by region (regions by name; numbers by Priority, then identity); a
/// number in no region is listed under "(no region)".
fn regions(store: &confab_store::Store) -> Result<Regions, ApiError> {
    let mut numbers: Vec<(String, Number)> = store
        .list_config(Number::DEF.noun)
        .map_err(store_failure)?
        .into_iter()
        .map(|d| (d.identity, Number::from_body(&d.body).0))
        .collect();
    numbers.sort_by(|(a, x), (b, y)| {
        (x.priority, a.to_ascii_lowercase()).cmp(&(y.priority, b.to_ascii_lowercase()))
    });
    let mut out: Regions = vec![];
    for (id, n) in numbers {
        let mut names: Vec<String> = n
            .regions
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        if names.is_empty() {
            names.push("(no region)".into());
        }
        for r in names {
            match out
                .iter_mut()
                .find(|(name, _)| name.eq_ignore_ascii_case(&r))
            {
                Some((_, list)) => list.push((id.clone(), n.clone())),
                None => out.push((r, vec![(id.clone(), n.clone())])),
            }
        }
    }
    out.sort_by_key(|(r, _)| r.to_ascii_lowercase());
    Ok(out)
}

/// What a signed-in user sees besides the numbers.
struct Mine {
    conference_id: Option<String>,
    pin: Value,
}

async fn mine(site: &Site, me: &UserSession) -> Result<Mine, ApiError> {
    let store = site.api.store.clone();
    let me = me.user.clone();
    blocking(move || {
        let assigned = store
            .meetings(Some(&me))
            .map_err(store_failure)?
            .into_iter()
            .find(|m| m.kind == MeetingKind::Assigned)
            .map(|m| m.conference_id);
        let user = crate::pins::user_of(&store, &me)?;
        let pin = crate::pins::info_json(&store, &user)?;
        Ok(Mine {
            conference_id: assigned,
            pin,
        })
    })
    .await
}

async fn dialin_page(State(site): State<Site>, viewer: Viewer) -> Response {
    render(&site, &viewer, None, StatusCode::OK).await
}

/// The outcome of a PIN change to show: (is it an error, message).
type Notice<'a> = Option<(bool, &'a str)>;

async fn render(site: &Site, viewer: &Viewer, notice: Notice<'_>, status: StatusCode) -> Response {
    let store = site.api.store.clone();
    let regions = match blocking(move || regions(&store)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mine = match &viewer.user {
        Some(me) => match mine(site, me).await {
            Ok(m) => Some((me, m)),
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let mut res = page::page(
        "Dial-in conferencing",
        viewer,
        html! {
            section.card #numbers {
                h2 { "Access numbers" }
                @if regions.is_empty() {
                    p #no-numbers { "There are no dial-in access numbers." }
                }
                @for (region, numbers) in &regions {
                    h3 { (region) }
                    table.region data-region=(region) {
                        thead { tr { th { "Number" } th { "Name" } th { "Languages" } } }
                        tbody {
                            @for (_, n) in numbers {
                                tr {
                                    td { a href=(n.line_uri) {
                                        (if n.display_number.is_empty() { &n.line_uri } else { &n.display_number }) } }
                                    td { (n.display_name) }
                                    td { (std::iter::once(n.primary_language.as_str())
                                            .chain(n.secondary_languages.iter().map(String::as_str))
                                            .collect::<Vec<_>>().join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some((me, m)) = &mine {
                section.card #mine {
                    h2 { "Your dial-in details" }
                    @match &m.conference_id {
                        Some(id) => p { "Your assigned meeting's conference ID: " b #my-conference-id { (id) } },
                        None => p #no-assigned { "You have no assigned meeting (schedule one on "
                            a href="/_/meet" { "your meetings" } " page)." },
                    }
                    p #pin-state {
                        @if m.pin["is_pin_set"].as_bool() == Some(true) { "Your PIN is set" } @else { "You have no PIN" }
                        @if m.pin["is_locked_out"].as_bool() == Some(true) { " (locked out: set a new one)" }
                        @if let Some(e) = m.pin["expires"].as_str() { "; it expires " (e) }
                        "."
                    }
                    form #pin-form method="post" action="/_/dialin/pin" {
                        @if let Some((err, msg)) = notice {
                            @if err { p.error #pin-message role="alert" { (msg) } }
                            @else { p.ok #pin-message role="status" { (msg) } }
                        }
                        input type="hidden" name="csrf" value=(me.csrf);
                        label { "New PIN (at least " (m.pin["min_length"].as_i64().unwrap_or(5)) " digits)"
                            input #pin name="pin" type="password" inputmode="numeric" autocomplete="off" required maxlength="64"; }
                        label { "Again" input #pin2 name="pin2" type="password" inputmode="numeric" autocomplete="off" required maxlength="64"; }
                        button #pin-submit type="submit" { "Set PIN" }
                    }
                }
            } @else {
                p.small { a #dialin-signin href="/_/signin?next=/_/dialin" { "Sign in" } " to see your conference ID and set your PIN." }
            }
        },
    )
    .into_response();
    *res.status_mut() = status;
    res
}

#[derive(Deserialize)]
struct PinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    pin2: String,
}

async fn set_pin(
    State(site): State<Site>,
    viewer: Viewer,
    me: UserSession,
    peer: Option<ConnectInfo<std::net::SocketAddr>>,
    form: Result<Form<PinForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return page::error_page(
            StatusCode::BAD_REQUEST,
            "Refused",
            "The form was malformed.",
        );
    };
    if f.pin != f.pin2 {
        return render(
            &site,
            &viewer,
            Some((true, "The two PINs differ.")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let origin = match peer {
        Some(ConnectInfo(p)) => format!("web {p}"),
        None => "web unknown".into(),
    };
    match crate::pins::set_own_pin(&site.api, me.user.clone(), f.pin, origin).await {
        Ok(_) => {
            render(
                &site,
                &viewer,
                Some((false, "Your PIN is set.")),
                StatusCode::OK,
            )
            .await
        }
        Err(ApiError {
            status, message, ..
        }) if status == StatusCode::BAD_REQUEST => {
            render(
                &site,
                &viewer,
                Some((true, &message)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}
