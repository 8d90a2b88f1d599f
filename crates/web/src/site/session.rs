//! Web sessions and CSRF protection.
//!
//! - A user signs in with their SIP address and password, an administrator with their admin
//!   name and password, on `/_/signin` (throttled and audited exactly as the REST API's
//!   sign-ins). Each gets a cookie of their own: `__Host-confab-user` (the store's
//!   user sessions) and `__Host-confab-admin` (an admin token): `Secure`, `HttpOnly`,
//!   `SameSite=Strict`, `Path=/`, no `Domain` (the `__Host-` prefix makes browsers insist).
//! - Every change (a method other than GET, HEAD, OPTIONS) outside the REST API, which
//!   never reads cookies, must come from our own pages: a cross-site `Sec-Fetch-Site` or an
//!   `Origin` of another host is refused, and the request must carry the session's CSRF
//!   token (form field `csrf` or header `X-CSRF-Token`), derived from the session token by
//!   SHA-256 so it needs no storage and dies with the session. Sign-in itself needs no token
//!   (there is no session yet) but gets the origin check.

use std::net::{IpAddr, Ipv4Addr};

use axum::body::Body;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use confab_store::Admin;
use maud::html;
use serde::Deserialize;

use super::page::{self, Html};
use super::Site;
use crate::{blocking, store_failure, SignIn};

/// A user's session cookie.
pub const USER_COOKIE: &str = "__Host-confab-user";
/// An administrator's session cookie.
pub const ADMIN_COOKIE: &str = "__Host-confab-admin";
/// How long a web session lasts.
pub const SESSION_TTL_SECS: u64 = 8 * 3600;
/// The largest form body the CSRF check reads.
const MAX_FORM: usize = 256 * 1024;

/// Routes: the sign-in page and form, sign-out.
pub(crate) fn routes() -> Router<Site> {
    Router::new()
        .route("/_/signin", get(signin_page).post(signin))
        .route("/_/signout", post(signout))
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The CSRF token of a session token.
pub fn csrf_of(token: &str) -> String {
    let h = confab_sip::digest::Algorithm::Sha256.hex(format!("confab-csrf\0{token}").as_bytes());
    h[..32].to_string()
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("a valid cookie")
}

fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", 0)
}

/// A signed-in user (`user@domain`, lower case).
#[derive(Clone, Debug)]
pub struct UserSession {
    pub user: String,
    /// For forms: the CSRF token of this session.
    pub csrf: String,
}

/// A signed-in administrator (their roles as stored now).
#[derive(Clone, Debug)]
pub struct AdminSession {
    pub admin: Admin,
    /// The admin token (the REST API's bearer token too).
    pub token: String,
    pub csrf: String,
}

/// The way to the sign-in page, back to where the visitor was.
fn to_signin(kind: &str, parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let q = serde_urlencoded::to_string([("as", kind), ("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/_/signin?{q}")).into_response()
}

/// The user of the request's session, if any (no redirect).
pub(crate) async fn user_of(
    site: &Site,
    headers: &HeaderMap,
) -> Result<Option<UserSession>, Response> {
    let Some(token) = cookie(headers, USER_COOKIE).map(str::to_string) else {
        return Ok(None);
    };
    let store = site.api.store.clone();
    let t = token.clone();
    let user = blocking(move || store.user_session(&t).map_err(store_failure))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(user.map(|user| UserSession {
        user,
        csrf: csrf_of(&token),
    }))
}

/// The administrator of the request's session, if any (no redirect).
pub(crate) async fn admin_of(
    site: &Site,
    headers: &HeaderMap,
) -> Result<Option<AdminSession>, Response> {
    let Some(token) = cookie(headers, ADMIN_COOKIE).map(str::to_string) else {
        return Ok(None);
    };
    let store = site.api.store.clone();
    let t = token.clone();
    let admin = blocking(move || store.token_admin(&t).map_err(store_failure))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(admin.map(|admin| AdminSession {
        admin,
        csrf: csrf_of(&token),
        token,
    }))
}

#[axum::async_trait]
impl FromRequestParts<Site> for UserSession {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, site: &Site) -> Result<Self, Response> {
        match user_of(site, &parts.headers).await? {
            Some(u) => Ok(u),
            None => Err(to_signin("user", parts)),
        }
    }
}

#[axum::async_trait]
impl FromRequestParts<Site> for AdminSession {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, site: &Site) -> Result<Self, Response> {
        if site.face != super::Face::Internal {
            return Err(page::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no page here.",
            ));
        }
        match admin_of(site, &parts.headers).await? {
            Some(a) => Ok(a),
            None => Err(to_signin("admin", parts)),
        }
    }
}

/// Whoever is signed in, for pages anyone may see (the header shows who).
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    pub user: Option<UserSession>,
    pub admin: Option<AdminSession>,
}

#[axum::async_trait]
impl FromRequestParts<Site> for Viewer {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, site: &Site) -> Result<Self, Response> {
        let user = user_of(site, &parts.headers).await?;
        let admin = if site.face == super::Face::Internal {
            admin_of(site, &parts.headers).await?
        } else {
            None
        };
        Ok(Viewer { user, admin })
    }
}

impl Viewer {
    /// A CSRF token for forms (the user's, else the admin's; empty when nobody signed in).
    pub fn csrf(&self) -> &str {
        self.user
            .as_ref()
            .map(|u| u.csrf.as_str())
            .or(self.admin.as_ref().map(|a| a.csrf.as_str()))
            .unwrap_or("")
    }
}

#[derive(Deserialize, Default)]
struct SigninQuery {
    #[serde(default, rename = "as")]
    kind: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// Only a local path is a place to go back to (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2048 =>
        {
            n.to_string()
        }
        _ => "/_/meet".to_string(),
    }
}

fn signin_form(kind: &str, next: &str, message: Option<&str>) -> Html {
    let admin = kind == "admin";
    let (title, who, hint) = if admin {
        (
            "Sign in to the Control Panel",
            "Administrator name",
            "An administrator's name and password, as for the shell.",
        )
    } else {
        (
            "Sign in",
            "SIP address",
            "Your SIP address (alice@example.test) and password.",
        )
    };
    page::page(
        title,
        &Viewer::default(),
        html! {
            form.card method="post" action="/_/signin" {
                p { (hint) }
                @if let Some(m) = message { p.error role="alert" { (m) } }
                input type="hidden" name="as" value=(kind);
                input type="hidden" name="next" value=(next);
                label { (who) input name="name" autocomplete="username" required autofocus; }
                label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

async fn signin_page(State(site): State<Site>, Query(q): Query<SigninQuery>) -> Response {
    let kind = match q.kind.as_deref() {
        Some("admin") if site.face == super::Face::Internal => "admin",
        _ => "user",
    };
    signin_form(kind, &safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Deserialize)]
struct SigninForm {
    #[serde(default, rename = "as")]
    kind: String,
    #[serde(default)]
    next: String,
    name: String,
    password: String,
}

async fn signin(State(site): State<Site>, req: Request) -> Response {
    // behind a trusted reverse proxy: the client it names ([web] trusted_proxies)
    let peer = super::client_of(&site, req.extensions(), req.headers());
    let f = match Form::<SigninForm>::from_request(req, &()).await {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return page::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is too large.",
            );
        }
        Err(_) => {
            return page::error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The sign-in form was malformed.",
            );
        }
    };
    let ip = peer
        .map(|p| p.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let origin = match peer {
        Some(p) => format!("web {p}"),
        None => "web unknown".into(),
    };
    let next = safe_next(Some(&f.next));
    let admin = f.kind == "admin" && site.face == super::Face::Internal;
    let outcome = if admin {
        crate::sign_in_admin(
            &site.api,
            f.name.trim().to_string(),
            f.password,
            ip,
            origin,
            SESSION_TTL_SECS,
        )
        .await
    } else {
        crate::meetings::sign_in_user(
            &site.api,
            f.name.trim().to_string(),
            f.password,
            ip,
            &origin,
        )
        .await
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    match outcome {
        SignIn::Signed(x) => {
            let (cookie_name, token) = if admin {
                (ADMIN_COOKIE, x)
            } else {
                let store = site.api.store.clone();
                match blocking(move || {
                    store
                        .issue_user_session(&x, SESSION_TTL_SECS)
                        .map_err(store_failure)
                })
                .await
                {
                    Ok(t) => (USER_COOKIE, t),
                    Err(e) => return e.into_response(),
                }
            };
            let mut res = Redirect::to(&next).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(cookie_name, &token, SESSION_TTL_SECS),
            );
            res
        }
        SignIn::Invalid => {
            let kind = if admin { "admin" } else { "user" };
            let mut res =
                signin_form(kind, &next, Some("The name or password is wrong.")).into_response();
            *res.status_mut() = StatusCode::UNAUTHORIZED;
            res
        }
        SignIn::Refused(r) => {
            let status = r.status();
            let mut res = page::error_page(
                status,
                "Try again later",
                "Too many sign-ins: wait a little and try again.",
            );
            if let Some(ra) = r.headers().get(header::RETRY_AFTER) {
                res.headers_mut().insert(header::RETRY_AFTER, ra.clone());
            }
            res
        }
    }
}

/// Signs out of both sessions (the form carries the CSRF token: nobody signs you out from
/// another site).
async fn signout(State(site): State<Site>, headers: HeaderMap) -> Response {
    let user = cookie(&headers, USER_COOKIE).map(str::to_string);
    let admin = cookie(&headers, ADMIN_COOKIE).map(str::to_string);
    let store = site.api.store.clone();
    let _ = blocking(move || {
        if let Some(t) = user {
            store.revoke_user_session(&t).map_err(store_failure)?;
        }
        if let Some(t) = admin {
            store.revoke_token(&t).map_err(store_failure)?;
        }
        Ok(())
    })
    .await;
    let mut res = Redirect::to("/_/signin").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(USER_COOKIE));
    res.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(ADMIN_COOKIE));
    res
}

fn forbidden(why: &str) -> Response {
    page::error_page(StatusCode::FORBIDDEN, "Refused", why)
}

/// Whether `origin` (an Origin header's value) names the request's own host.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let o_host = if let Some(r) = rest.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest)
    };
    host.is_some_and(|h| h.eq_ignore_ascii_case(o_host))
}

/// The CSRF check of every change (see the module's text).
pub(crate) async fn csrf_guard(State(_site): State<Site>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let path = req.uri().path();
    // the REST API authenticates every request by header, never by cookie
    if path.starts_with("/api/") {
        return next.run(req).await;
    }
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
        })
    {
        return forbidden("This change came from another site.");
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if !same_origin(origin, super::request_host(&req).as_deref()) {
            return forbidden("This change came from another site.");
        }
    }
    if path == "/_/signin" {
        return next.run(req).await;
    }
    let expected: Vec<String> = [USER_COOKIE, ADMIN_COOKIE]
        .iter()
        .filter_map(|c| cookie(headers, c))
        .map(csrf_of)
        .collect();
    if expected.is_empty() {
        return forbidden("Sign in first.");
    }
    let ok = |t: &str| expected.iter().any(|e| constant_eq(e, t));
    if let Some(t) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        if ok(t) {
            return next.run(req).await;
        }
        return forbidden("The page has expired: reload it and try again.");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return forbidden("The page has expired: reload it and try again.");
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return page::error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "The form is too large.",
        );
    };
    let token = form_field(&bytes, "csrf");
    if !token.as_deref().is_some_and(ok) {
        return forbidden("The page has expired: reload it and try again.");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn constant_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// One field of an urlencoded form.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

use axum::extract::FromRequest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_and_checked() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-confab-user=abcdef12 ; x=<script>"),
        );
        assert_eq!(cookie(&h, USER_COOKIE), Some("abcdef12"));
        assert_eq!(cookie(&h, "x"), None, "only hex tokens are read");
        assert_eq!(cookie(&h, ADMIN_COOKIE), None);
    }

    #[test]
    fn only_local_paths_are_places_to_return_to() {
        assert_eq!(safe_next(Some("/_/meet/alice/K")), "/_/meet/alice/K");
        assert_eq!(safe_next(Some("//evil.test/x")), "/_/meet");
        assert_eq!(safe_next(Some("https://evil.test")), "/_/meet");
        assert_eq!(safe_next(Some("/\\evil.test")), "/_/meet");
    }

    #[test]
    fn origins_compare_by_host() {
        assert!(same_origin(
            "https://meet.example.test",
            Some("meet.example.test")
        ));
        assert!(same_origin("https://127.0.0.1:4443", Some("127.0.0.1")));
        assert!(!same_origin("https://evil.test", Some("meet.example.test")));
        assert!(!same_origin("null", Some("meet.example.test")));
        assert_eq!(csrf_of("ab").len(), 32);
        assert_ne!(csrf_of("ab"), csrf_of("ac"));
    }
}
