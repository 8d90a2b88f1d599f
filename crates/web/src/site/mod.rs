//! The web site: what Lync's web services serve, on an internal and an external face.
//!
//! | path (canonical) | internal | external | what |
//! | --- | --- | --- | --- |
//! | `/_/meet/{user}/{key}` | yes | yes | a meeting's page ([`meet`]) |
//! | `/_/meet` | yes | yes | the web scheduler: a user's meetings |
//! | `/_/dialin` | yes | yes | access numbers, a user's conference ID and PIN ([`dialin`]) |
//! | `/_/cscp/…` | yes | **no** | the Control Panel ([`cscp`]) |
//! | `/_/signin`, `/_/signout` | yes | yes | sessions ([`session`]) |
//! | `/_/static/…` | yes | yes | the CSS and JavaScript, served by confab itself |
//! | `/autodiscover/autodiscoverservice.svc/root[/user]` | yes | yes | [`autodiscover`] |
//! | `/api/v1/…`, `/metrics` | yes | **no** | the REST API ([`crate`]) |
//!
//! Simple URLs ([`urls`]) are aliases of the entry points: a request whose host and path
//! fall under a `Meet`, `Dialin` or `Cscp` simple URL (`https://meet.example.test/alice/KEY`,
//! `https://lync.example.test/Dialin`) is rewritten to the canonical path before routing,
//! and so is `lyncdiscover.<domain>` / `lyncdiscoverinternal.<domain>` to autodiscover. The
//! path forms `/meet/…`, `/dialin` and `/cscp` work on every host (so a fresh server with no
//! simple URLs has a usable site). Nothing under `/_/` is ever rewritten.
//!
//! Every response carries the security headers of [`security_headers`]; every change (a
//! method other than GET/HEAD) passes [`session::csrf_guard`].

pub mod autodiscover;
pub(crate) mod cscp;
pub mod dialin;
pub mod listen;
pub mod meet;
pub mod page;
pub mod session;
pub mod urls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Which of Lync's two web sites a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// Lync's internal web site (443): everything, the Control Panel and REST API included.
    Internal,
    /// The external web site (4443, published by the reverse proxy): meetings, dial-in,
    /// autodiscover and sign-in only.
    External,
}

impl Face {
    pub fn as_str(self) -> &'static str {
        match self {
            Face::Internal => "internal",
            Face::External => "external",
        }
    }
}

/// Where this server's SIP listeners are, for autodiscover.
#[derive(Clone, Debug, Default)]
pub struct SipAccess {
    /// The FQDN clients use for the internal SIP listener (the pool's name).
    pub internal_fqdn: String,
    /// The internal SIP listener's port (TLS if there is one, else TCP).
    pub internal_port: u16,
    /// The transport of that listener ("TLS" or "TCP").
    pub internal_transport: String,
    /// The SIP access for clients outside (the Access Edge's public name and port); `None`:
    /// the internal one.
    pub external: Option<(String, u16)>,
}

/// What the site needs beyond the API's state.
#[derive(Clone, Debug, Default)]
pub struct SiteSettings {
    /// The SIP domains served (their Meet URLs, `lyncdiscover.<domain>`).
    pub domains: Vec<String>,
    /// This server's Lync site (Site: simple URL configurations apply to it).
    pub site: Option<String>,
    pub sip: SipAccess,
    /// Reverse proxies whose `X-Forwarded-For` is believed ([`client_of`]).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// The site's state: the API's, plus the settings and the simple URL cache.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) api: AppState,
    pub(crate) settings: Arc<SiteSettings>,
    pub(crate) urls: Arc<urls::UrlCache>,
    pub(crate) face: Face,
    /// The server's counters over the last hours (the Control Panel's Home charts).
    pub(crate) history: Arc<cscp::History>,
}

impl Site {
    pub(crate) fn new(api: crate::SiteApi, face: Face) -> Site {
        Site {
            urls: api.urls.clone(),
            settings: api.settings.clone(),
            history: api.history.clone(),
            api: api.state,
            face,
        }
    }
}

/// The site of one face, ready to serve with peer addresses
/// (`into_make_service_with_connect_info::<SocketAddr>()`, or [`listen::serve_tls`]).
pub fn app(api: crate::SiteApi, face: Face) -> Router {
    let site = Site::new(api, face);
    let mut pages = Router::new()
        .route("/_/static/:file", get(page::asset))
        .merge(session::routes())
        .merge(autodiscover::routes())
        .merge(meet::routes())
        .merge(dialin::routes());
    if face == Face::Internal {
        pages = pages
            .merge(crate::api_routes(site.api.clone()))
            .merge(cscp::routes());
    }
    let routed = pages
        .fallback(not_found)
        .with_state(site.clone())
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            security_headers,
        ));
    // simple URLs are resolved before routing (a layer around the whole router)
    Router::new()
        .fallback_service(routed)
        .layer(axum::middleware::from_fn_with_state(site, rewrite))
}

async fn not_found() -> Response {
    page::error_page(StatusCode::NOT_FOUND, "Not found", "There is no page here.")
}

/// Rewrites a simple URL (or a path form) to its canonical path.
async fn rewrite(State(site): State<Site>, mut req: Request, next: Next) -> Response {
    // HTTP/2 carries the host in `:authority`, not in a Host header: give every handler a
    // Host header whichever HTTP version the request came in
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    let host = request_host(&req);
    let path = req.uri().path().to_string();
    if let Some(new_path) = site.urls.canonical(&site, host.as_deref(), &path).await {
        let pq = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        let original = req.uri().clone();
        let mut parts = original.clone().into_parts();
        match pq.parse() {
            Ok(p) => parts.path_and_query = Some(p),
            Err(_) => return not_found().await,
        }
        match Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return not_found().await,
        }
        req.extensions_mut().insert(Rewritten(original));
    }
    next.run(req).await
}

/// The URI a request had before a simple URL was rewritten to its canonical path.
#[derive(Clone, Debug)]
pub struct Rewritten(pub Uri);

/// The request's host name (lower case, without the port): HTTP/2's `:authority` or
/// HTTP/1's `Host`.
pub(crate) fn request_host(req: &Request) -> Option<String> {
    let raw = req.uri().host().map(str::to_string).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    })?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else {
        raw.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, _)| h.to_string())
            .unwrap_or(raw)
    };
    Some(host.to_ascii_lowercase())
}

/// The Content-Security-Policy of every page: scripts and styles only from confab itself,
/// no inline script, no framing, forms only to confab.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response of the site, and no caching (the cookbook's recipe
/// asks the proxy not to cache; pages carry live meetings and sessions).
async fn security_headers(State(_site): State<Site>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, v: &'static str| {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(v));
        }
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // same-origin: a meeting's URL never leaks to another site, and our own form posts keep
    // their Origin (with no-referrer browsers send `Origin: null`)
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "strict-transport-security", "max-age=31536000");
    set(h, "cache-control", "no-store");
    res
}

/// The headers of the plain HTTP companions (autodiscover JSON and redirects): as
/// [`security_headers`] but without HSTS, which means nothing over plain HTTP.
pub(crate) async fn plain_http_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(v));
        }
    }
    res
}

/// The peer's address (from the listener), for sign-in throttling and the audit log.
pub(crate) fn peer_of(req_ext: &axum::http::Extensions) -> Option<SocketAddr> {
    req_ext
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The client's address: the peer, or — when the peer is one of `[web] trusted_proxies` —
/// the last address of `X-Forwarded-For` that is not a trusted proxy itself (port 0: the
/// header has none). Addresses a client wrote itself come before the proxy's entry and are
/// never believed; a header that does not parse gives the peer.
pub(crate) fn client_of(
    site: &Site,
    req_ext: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Option<SocketAddr> {
    let peer = peer_of(req_ext)?;
    forwarded_client(peer, &site.settings.trusted_proxies, headers)
}

fn forwarded_client(
    peer: SocketAddr,
    trusted: &[std::net::IpAddr],
    headers: &axum::http::HeaderMap,
) -> Option<SocketAddr> {
    let canon = |ip: std::net::IpAddr| ip.to_canonical();
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|t| canon(*t) == canon(ip));
    if !is_trusted(peer.ip()) {
        return Some(peer);
    }
    let mut entries = vec![];
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else { return Some(peer) };
        if v.len() > 1024 || entries.len() > 32 {
            return Some(peer);
        }
        for e in v.split(',') {
            let Ok(ip) = e.trim().parse::<std::net::IpAddr>() else {
                return Some(peer);
            };
            entries.push(ip);
        }
    }
    match entries.into_iter().rev().find(|ip| !is_trusted(*ip)) {
        Some(ip) => Some(SocketAddr::new(canon(ip), 0)),
        None => Some(peer),
    }
}

impl IntoResponse for page::Html {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.0.into_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn xff(v: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in v {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let proxy: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let trusted = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let c = |peer, h: &HeaderMap| forwarded_client(peer, &trusted, h).unwrap().to_string();
        // the proxy's own entry is the last one; what the client wrote before it is ignored
        assert_eq!(
            c(proxy, &xff(&["198.51.100.7, 203.0.113.9"])),
            "203.0.113.9:0"
        );
        assert_eq!(
            c(proxy, &xff(&["198.51.100.7", "203.0.113.9, 10.0.0.2"])),
            "203.0.113.9:0"
        );
        assert_eq!(c(proxy, &xff(&["2001:db8::1"])), "[2001:db8::1]:0");
        // no header, garbage, or only proxies: the peer
        assert_eq!(c(proxy, &HeaderMap::new()), "10.0.0.1:40000");
        assert_eq!(c(proxy, &xff(&["unknown, 203.0.113.9"])), "10.0.0.1:40000");
        assert_eq!(c(proxy, &xff(&["10.0.0.2"])), "10.0.0.1:40000");
        // from anyone else the header means nothing
        let other: SocketAddr = "203.0.113.50:5000".parse().unwrap();
        assert_eq!(c(other, &xff(&["198.51.100.7"])), "203.0.113.50:5000");
        assert_eq!(
            forwarded_client(proxy, &[], &xff(&["198.51.100.7"])).unwrap(),
            proxy
        );
    }
}
