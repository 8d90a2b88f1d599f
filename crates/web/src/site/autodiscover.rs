//! Autodiscover (Lync's `lyncdiscover.<domain>` and `lyncdiscoverinternal.<domain>`): where
//! a client finds the web services and the SIP listeners. Answered with JSON in Lync's
//! shape (docs/web.md "Autodiscover"):
//!
//! `GET /autodiscover/autodiscoverservice.svc/root` →
//! `{"AccessLocation": "Internal"|"External", "Root": {"Links": [{"token": "User", "href": …}]}}`
//!
//! `GET /autodiscover/autodiscoverservice.svc/root/user` →
//! `{"AccessLocation", "SipServerInternalAccess": {"fqdn", "port"}, "SipClientInternalAccess",
//! "SipServerExternalAccess", "SipClientExternalAccess", "Links": [{"token": "Meet"|"Dialin"|
//! "Self"|"Root", "href"}]}`
//!
//! Nothing in it is secret (the same facts are in DNS); it needs no sign-in, and is served
//! on the HTTP listeners too (clients try `http://lyncdiscover.<domain>` first).

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{Face, Site};

/// The root document's canonical path (lower case; matched without regard to case).
pub const ROOT: &str = "/autodiscover/autodiscoverservice.svc/root";

pub(crate) fn routes() -> Router<Site> {
    Router::new()
        .route(ROOT, get(root))
        .route("/Autodiscover/AutodiscoverService.svc/root", get(root))
        .route(&format!("{ROOT}/user"), get(user))
        .route("/Autodiscover/AutodiscoverService.svc/root/user", get(user))
}

fn location(face: Face) -> &'static str {
    match face {
        Face::Internal => "Internal",
        Face::External => "External",
    }
}

/// `https://<host the client used>` (the host of the request, without our port: behind the
/// reverse proxy clients see 443).
fn base(site: &Site, req: &Request) -> String {
    let host = super::request_host(req).unwrap_or_else(|| site.api.pool.to_string());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    format!("https://{host}")
}

async fn root(State(site): State<Site>, req: Request) -> Response {
    let b = base(&site, &req);
    Json(json!({
        "AccessLocation": location(site.face),
        "Root": {"Links": [
            {"token": "Self", "href": format!("{b}{ROOT}")},
            {"token": "User", "href": format!("{b}{ROOT}/user")},
        ]},
    }))
    .into_response()
}

async fn user(State(site): State<Site>, req: Request) -> Response {
    let b = base(&site, &req);
    let urls = site.urls.current(&site).await;
    let sip = &site.settings.sip;
    let internal = json!({"fqdn": sip.internal_fqdn, "port": sip.internal_port.to_string()});
    let external = match &sip.external {
        Some((fqdn, port)) => json!({"fqdn": fqdn, "port": port.to_string()}),
        None => internal.clone(),
    };
    let mut links: Vec<Value> = vec![
        json!({"token": "Self", "href": format!("{b}{ROOT}/user")}),
        json!({"token": "Root", "href": format!("{b}{ROOT}")}),
    ];
    for d in &site.settings.domains {
        links.push(json!({
            "token": "Meet",
            "domain": d,
            "href": urls.active("Meet", Some(d)).map(str::to_string).unwrap_or_else(|| format!("{b}/meet")),
        }));
    }
    links.push(json!({"token": "Dialin", "href": super::urls::dialin_url(&urls, &b)}));
    Json(json!({
        "AccessLocation": location(site.face),
        "SipServerInternalAccess": internal,
        "SipClientInternalAccess": internal,
        "SipServerExternalAccess": external,
        "SipClientExternalAccess": external,
        "Transport": sip.internal_transport,
        "Links": links,
    }))
    .into_response()
}
