//! The web site's security over real sockets: headers, cookies, CSRF, sign-in throttling,
//! sessions that end, open redirects, what the external face refuses, simple URL routing and
//! autodiscover, and robustness against bad clients (oversized, slow, many, garbage).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Server, ADD_ROOT, ADMIN_PASSWORD};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;

struct Web {
    server: Server,
    internal: u16,
    external: u16,
    internal_http: u16,
    external_http: u16,
}

fn web_server_with(users: u32, extra: &str) -> Web {
    let ports: Vec<u16> = (0..4).map(|_| free_port("127.0.0.1")).collect();
    let server = Server::start(
        users,
        &format!(
            "[web]\ninternal = \"127.0.0.1:{}\"\nexternal = \"127.0.0.1:{}\"\n\
             internal_http = \"127.0.0.1:{}\"\nexternal_http = \"127.0.0.1:{}\"\n{extra}",
            ports[0], ports[1], ports[2], ports[3]
        ),
    );
    Web {
        server,
        internal: ports[0],
        external: ports[1],
        internal_http: ports[2],
        external_http: ports[3],
    }
}

fn web_server(users: u32) -> Web {
    web_server_with(users, "")
}

impl Web {
    fn i(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.internal)
    }
    fn e(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.external)
    }
    /// Nothing in the server's log says it panicked.
    fn assert_no_panic(&self) {
        let log = self.server.log_text();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }
}

/// An HTTPS client: no cookie store (cookies are sent by hand), no redirects followed.
fn client() -> Client {
    client_with(|b| b)
}

fn client_with(
    f: impl FnOnce(reqwest::blocking::ClientBuilder) -> reqwest::blocking::ClientBuilder,
) -> Client {
    f(Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20)))
    .build()
    .unwrap()
}

fn get(c: &Client, url: &str) -> Response {
    c.get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The Set-Cookie header naming `name`.
fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The token of a Set-Cookie value.
fn token_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// The CSRF token of a session (what the pages put in their forms).
fn csrf_of(token: &str) -> String {
    confab_sip::digest::Algorithm::Sha256.hex(format!("confab-csrf\0{token}").as_bytes())[..32]
        .to_string()
}

/// Signs in on `base` (`kind` "user" or "admin") and returns the response.
fn sign_in_raw(
    c: &Client,
    base: &str,
    kind: &str,
    name: &str,
    password: &str,
    next: &str,
) -> Response {
    c.post(format!("{base}/_/signin"))
        .form(&[
            ("as", kind),
            ("next", next),
            ("name", name),
            ("password", password),
        ])
        .send()
        .expect("POST /_/signin")
}

/// Signs `user` in on the internal face and returns their session token.
fn sign_in(w: &Web, user: &str) -> String {
    let base = w.i("");
    let r = sign_in_raw(
        &client(),
        &base,
        "user",
        &format!("{user}@example.test"),
        &format!("pw-{user}"),
        "/_/meet",
    );
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{user} signs in");
    token_of(&set_cookie(&r, "__Host-confab-user").expect("a session cookie"))
}

/// The user a session token belongs to now (the store's view: what every page checks).
fn session_user(w: &Web, token: &str) -> Option<String> {
    confab_store::Store::open(w.server.data())
        .unwrap()
        .user_session(token)
        .unwrap()
}

#[test]
fn every_response_carries_the_security_headers() {
    let w = web_server(2);
    let c = client();
    let urls = [
        w.i("/_/signin"),
        w.i("/_/signin?as=admin"),
        w.e("/_/signin"),
        w.i("/no/such/page"),
        w.e("/_/cscp"),
        w.i("/autodiscover/autodiscoverservice.svc/root"),
        w.e("/autodiscover/autodiscoverservice.svc/root/user"),
        w.i("/api/v1/openapi.json"),
        w.i("/api/v1/users"),
    ];
    for url in &urls {
        let r = get(&c, url);
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{url}: {csp}"
        );
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{url}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["cache-control"], "no-store", "{url}");
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{url}"
        );
    }
    // a refused change has them too
    let r = c
        .post(w.i("/_/signout"))
        .form(&[("csrf", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().contains_key("content-security-policy"));
    // the assets are confab's own (no CDN) and may be cached (they hold nothing personal)
    for asset in ["confab.css", "confab.js"] {
        let r = get(&c, &w.e(&format!("/_/static/{asset}")));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public"));
    }
    // no page points anywhere but confab itself, and none has inline script or style
    let page = get(&c, &w.e("/_/signin")).text().unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert!(
        !page.contains("style=") && !page.contains("onclick") && !page.contains("<style"),
        "{page}"
    );
    assert!(
        page.contains("<script src=\"/_/static/confab.js\""),
        "{page}"
    );
    // the plain HTTP companions: the same headers but no HSTS (it means nothing there)
    for port in [w.internal_http, w.external_http] {
        for path in ["/autodiscover/autodiscoverservice.svc/root", "/_/signin"] {
            let r = get(&c, &format!("http://127.0.0.1:{port}{path}"));
            assert!(
                r.status() == 200 || r.status() == StatusCode::PERMANENT_REDIRECT,
                "{path}"
            );
            assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
            assert!(
                !r.headers().contains_key("strict-transport-security"),
                "{path}"
            );
        }
    }
    w.assert_no_panic();
}

#[test]
fn session_cookies_are_host_only_secure_httponly_and_strict() {
    let w = web_server(2);
    w.server.cli(ADD_ROOT);
    let c = client();
    let r = sign_in_raw(
        &c,
        &w.e(""),
        "user",
        "user0001@example.test",
        "pw-user0001",
        "/_/meet",
    );
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let user = set_cookie(&r, "__Host-confab-user").expect("the user's cookie");
    let r = sign_in_raw(&c, &w.i(""), "admin", "root", ADMIN_PASSWORD, "/_/cscp");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/_/cscp");
    let admin = set_cookie(&r, "__Host-confab-admin").expect("the admin's cookie");
    for cookie in [&user, &admin] {
        let attrs: Vec<String> = cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        for want in ["secure", "httponly", "samesite=strict", "path=/"] {
            assert!(
                attrs.iter().any(|a| a == want),
                "{want} missing in {cookie}"
            );
        }
        assert!(
            !attrs.iter().any(|a| a.starts_with("domain")),
            "a Domain in {cookie}"
        );
        let token = token_of(cookie);
        assert!(
            token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "{cookie}"
        );
    }
    // the external face has no administrators: an admin sign-in there is a user's, and fails
    let r = sign_in_raw(&c, &w.e(""), "admin", "root", ADMIN_PASSWORD, "/_/cscp");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&r, "__Host-confab-admin").is_none());
    let page = get(&c, &w.e("/_/signin?as=admin")).text().unwrap();
    assert!(
        page.contains("SIP address") && !page.contains("Administrator name"),
        "{page}"
    );
    w.assert_no_panic();
}

#[test]
fn changes_without_the_session_token_or_from_another_site_are_refused_and_change_nothing() {
    let w = web_server(3);
    let alice = sign_in(&w, "user0001");
    let bob = sign_in(&w, "user0002");
    let c = client();
    let url = w.i("/_/signout");
    let cookie = format!("__Host-confab-user={alice}");
    let good = csrf_of(&alice);
    let attempts: Vec<(&str, reqwest::blocking::RequestBuilder)> = vec![
        ("no token", c.post(&url).header("cookie", &cookie).form(&[("x", "1")])),
        ("an empty body", c.post(&url).header("cookie", &cookie)),
        ("a wrong token", c.post(&url).header("cookie", &cookie).form(&[("csrf", "0123456789abcdef0123456789abcdef")])),
        ("another session's token", c.post(&url).header("cookie", &cookie).form(&[("csrf", csrf_of(&bob))])),
        ("a wrong header token", c.post(&url).header("cookie", &cookie).header("x-csrf-token", csrf_of(&bob))),
        ("a cross-site Origin", c.post(&url).header("cookie", &cookie).header("origin", "https://evil.test").form(&[("csrf", good.as_str())])),
        ("Origin null", c.post(&url).header("cookie", &cookie).header("origin", "null").form(&[("csrf", good.as_str())])),
        ("Sec-Fetch-Site cross-site", c.post(&url).header("cookie", &cookie).header("sec-fetch-site", "cross-site").form(&[("csrf", good.as_str())])),
        ("Sec-Fetch-Site same-site", c.post(&url).header("cookie", &cookie).header("sec-fetch-site", "same-site").form(&[("csrf", good.as_str())])),
        (
            "a multipart form",
            c.post(&url)
                .header("cookie", &cookie)
                .header("content-type", "multipart/form-data; boundary=b")
                .body(format!("--b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{good}\r\n--b--\r\n")),
        ),
        ("no session at all", c.post(&url).form(&[("csrf", good.as_str())])),
        ("a token without its cookie", c.post(&url).header("cookie", format!("__Host-confab-user={bob}")).form(&[("csrf", good.as_str())])),
    ];
    for (what, req) in attempts {
        let r = req.send().unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(
            set_cookie(&r, "__Host-confab-user").is_none(),
            "{what}: no cookie change"
        );
        assert_eq!(
            session_user(&w, &alice).as_deref(),
            Some("user0001@example.test"),
            "{what}: the session lives"
        );
    }
    // the same change, made properly from our own page, ends the session on the server
    let r = c
        .post(&url)
        .header("cookie", &cookie)
        .header("origin", format!("https://127.0.0.1:{}", w.internal))
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", good.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&r, "__Host-confab-user").expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(session_user(&w, &alice), None, "signed out on the server");
    assert_eq!(
        session_user(&w, &bob).as_deref(),
        Some("user0002@example.test"),
        "others stay signed in"
    );
    // the header form of the token works too (scripts' fetch)
    let r = c
        .post(&url)
        .header("cookie", format!("__Host-confab-user={bob}"))
        .header("x-csrf-token", csrf_of(&bob))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(session_user(&w, &bob), None);
    // sign-in itself needs no token, but is refused from another site
    let r = c
        .post(w.i("/_/signin"))
        .header("origin", "https://evil.test")
        .form(&[
            ("name", "user0001@example.test"),
            ("password", "pw-user0001"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "__Host-confab-user").is_none());
    w.assert_no_panic();
}

#[test]
fn sign_in_is_throttled_per_address_and_sessions_end_with_the_user() {
    let w = web_server(3);
    w.server.cli(ADD_ROOT);
    let c = client();
    // a session made before, to be ended by disabling its user
    let carol = sign_in(&w, "user0002");
    // wrong passwords for different accounts from one address: 401 until the address's
    // limit (10, as the REST API's sign-ins), then 429 at once with Retry-After
    let mut statuses = vec![];
    for i in 0..14 {
        let r = sign_in_raw(
            &c,
            &w.e(""),
            "user",
            &format!("nobody{i}@example.test"),
            "wrong",
            "/_/meet",
        );
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            assert!(set_cookie(&r, "__Host-confab-user").is_none());
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // 10 failures, or one or two more if a failure was forgotten meanwhile (one per 6 s)
    assert!(
        (11..=13).contains(&statuses.len()),
        "throttled after 10 failures: {statuses:?}"
    );
    // throttled means not even the right password is looked at
    let r = sign_in_raw(
        &c,
        &w.e(""),
        "user",
        "user0001@example.test",
        "pw-user0001",
        "/_/meet",
    );
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&r, "__Host-confab-user").is_none());

    // a disabled user's session stops working at once
    assert_eq!(
        session_user(&w, &carol).as_deref(),
        Some("user0002@example.test")
    );
    let (ok, out) = common::confab_as_admin(
        w.server.data(),
        &[
            "shell",
            "-c",
            "Set-CsUser -Identity \"sip:user0002@example.test\" -Enabled $false",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        session_user(&w, &carol),
        None,
        "disabled: the session is over"
    );
    // and over HTTP: the old cookie leads to the sign-in page
    let r = c
        .get(w.i("/_/meet"))
        .header("cookie", format!("__Host-confab-user={carol}"))
        .send()
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/_/signin?as=user"));
    w.assert_no_panic();
}

#[test]
fn sign_in_returns_only_to_local_pages() {
    let w = web_server(2);
    let c = client();
    for (next, lands) in [
        ("//evil.test", "/_/meet"),
        ("//evil.test/_/meet", "/_/meet"),
        ("https://evil.test", "/_/meet"),
        ("http://evil.test/x", "/_/meet"),
        ("/\\evil.test", "/_/meet"),
        ("javascript:alert(1)", "/_/meet"),
        ("evil.test", "/_/meet"),
        ("", "/_/meet"),
        ("/_/dialin", "/_/dialin"),
    ] {
        let r = sign_in_raw(
            &c,
            &w.e(""),
            "user",
            "user0001@example.test",
            "pw-user0001",
            next,
        );
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.headers()["location"], lands, "next={next}");
        // and the form shown for it carries only a local place to go back to
        let page = get(
            &c,
            &format!("{}?next={}", w.e("/_/signin"), urlencode(next)),
        )
        .text()
        .unwrap();
        assert!(
            page.contains(&format!(
                "name=\"next\" value=\"{}\"",
                lands.replace('&', "&amp;")
            )),
            "{next}: {page}"
        );
    }
    w.assert_no_panic();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn the_external_face_refuses_the_admin_site_and_the_internal_face_serves_it() {
    let w = web_server(2);
    w.server.cli(ADD_ROOT);
    let c = client();
    for path in [
        "/_/cscp",
        "/_/cscp/users",
        "/cscp",
        "/CSCP/users",
        "/api/v1/users",
        "/api/v1/openapi.json",
        "/api/v1/tokens",
        "/metrics",
    ] {
        let r = get(&c, &w.e(path));
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "external {path}");
    }
    let r = c
        .post(w.e("/api/v1/tokens"))
        .json(&serde_json::json!({"name": "root", "password": ADMIN_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no admin token from outside"
    );
    // the internal face: the REST API (its own bearer authentication) and the metrics
    assert_eq!(
        get(&c, &w.i("/api/v1/openapi.json")).status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&c, &w.i("/api/v1/users")).status(),
        StatusCode::UNAUTHORIZED
    );
    let r = get(&c, &w.i("/metrics"));
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().unwrap().contains("# TYPE"));
    let r = c
        .post(w.i("/api/v1/tokens"))
        .json(&serde_json::json!({"name": "root", "password": ADMIN_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // the Control Panel: internal only
    let r = get(&c, &w.i("/_/cscp"));
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/_/signin?as=admin"));
    w.assert_no_panic();
}

#[test]
fn simple_urls_route_by_host_and_path_and_autodiscover_answers() {
    let w = web_server_with(2, "external_sip = \"sip.example.test:5061\"\n");
    w.server.cli(ADD_ROOT);
    w.server.configure(
        "$e = New-CsSimpleUrlEntry -Url \"https://meet.example.test\"; \
         $m = New-CsSimpleUrl -Component \"meet\" -Domain \"example.test\" -SimpleUrlEntry $e -ActiveUrl \"https://meet.example.test\"; \
         $f = New-CsSimpleUrlEntry -Url \"https://lync.example.test/Dialin\"; \
         $d = New-CsSimpleUrl -Component \"dialin\" -Domain \"*\" -SimpleUrlEntry $f -ActiveUrl \"https://lync.example.test/Dialin\"; \
         $g = New-CsSimpleUrlEntry -Url \"https://admin.example.test\"; \
         $a = New-CsSimpleUrl -Component \"Admin\" -Domain \"*\" -SimpleUrlEntry $g -ActiveUrl \"https://admin.example.test\"; \
         Set-CsSimpleUrlConfiguration -Identity Global -SimpleUrl @{Add=$m,$d,$a}",
    );
    let names = [
        "meet.example.test",
        "lync.example.test",
        "admin.example.test",
        "other.example.test",
        "lyncdiscover.example.test",
        "lyncdiscoverinternal.example.test",
        "unknown.test",
    ];
    let at = |port: u16| {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        client_with(|mut b| {
            for n in names {
                b = b.resolve(n, addr);
            }
            b
        })
    };
    let (ci, ce) = (at(w.internal), at(w.external));
    let (pi, pe) = (w.internal, w.external);
    // the server reads the simple URLs within a second: wait until autodiscover hands them out
    let user_doc = |c: &Client, url: &str| -> serde_json::Value { get(c, url).json().unwrap() };
    let disco = format!(
        "https://lyncdiscover.example.test:{pe}/autodiscover/autodiscoverservice.svc/root/user"
    );
    common::wait_until(
        "the simple URLs to be in force",
        Duration::from_secs(10),
        || {
            user_doc(&ce, &disco)["Links"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["href"] == "https://meet.example.test"))
        },
    );

    // autodiscover: the root at lyncdiscover.<domain> (any case), and the user document
    for (c, url, location) in [
        (
            &ce,
            format!("https://lyncdiscover.example.test:{pe}/"),
            "External",
        ),
        (
            &ce,
            format!("https://LyncDiscover.Example.TEST:{pe}/"),
            "External",
        ),
        (
            &ci,
            format!("https://lyncdiscoverinternal.example.test:{pi}/"),
            "Internal",
        ),
    ] {
        let r = get(c, &url);
        assert_eq!(r.status(), 200, "{url}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let j: serde_json::Value = r.json().unwrap();
        assert_eq!(j["AccessLocation"], location, "{url}: {j}");
        let links = j["Root"]["Links"].as_array().expect("Root.Links");
        let user = links
            .iter()
            .find(|l| l["token"] == "User")
            .expect("a User link");
        assert!(
            user["href"]
                .as_str()
                .unwrap()
                .ends_with("/autodiscover/autodiscoverservice.svc/root/user"),
            "{j}"
        );
    }
    let j = user_doc(&ci, &format!("https://lyncdiscoverinternal.example.test:{pi}/autodiscover/autodiscoverservice.svc/root/user"));
    assert_eq!(j["AccessLocation"], "Internal");
    assert_eq!(j["SipServerInternalAccess"]["fqdn"], "example.test", "{j}");
    assert_eq!(
        j["SipServerInternalAccess"]["port"],
        w.server.port.to_string(),
        "{j}"
    );
    assert_eq!(j["SipClientInternalAccess"], j["SipServerInternalAccess"]);
    assert_eq!(
        j["SipClientExternalAccess"]["fqdn"], "sip.example.test",
        "{j}"
    );
    assert_eq!(j["SipClientExternalAccess"]["port"], "5061", "{j}");
    assert_eq!(j["Transport"], "TCP");
    let links = j["Links"].as_array().unwrap();
    let link = |t: &str| {
        links
            .iter()
            .find(|l| l["token"] == t)
            .unwrap_or_else(|| panic!("no {t} link in {j}"))
    };
    assert_eq!(link("Meet")["href"], "https://meet.example.test");
    assert_eq!(link("Meet")["domain"], "example.test");
    assert_eq!(link("Dialin")["href"], "https://lync.example.test/Dialin");
    assert!(link("Self")["href"]
        .as_str()
        .unwrap()
        .starts_with("https://lyncdiscoverinternal.example.test"));
    // over plain HTTP too (clients try it first)
    let r = get(
        &client(),
        &format!(
            "http://127.0.0.1:{}/autodiscover/autodiscoverservice.svc/root",
            w.external_http
        ),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["AccessLocation"],
        "External"
    );

    // routing: a simple URL answers as its canonical path does; what it must not match
    // answers as a page that does not exist
    let same = |c: &Client, a: &str, b: &str| {
        let (ra, rb) = (get(c, a), get(c, b));
        let (sa, sb) = (ra.status(), rb.status());
        let loc = |r: &Response| {
            r.headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (la, lb) = (loc(&ra), loc(&rb));
        assert_eq!((sa, la), (sb, lb), "{a} answers as {b}");
        assert_eq!(ra.text().unwrap(), rb.text().unwrap(), "{a} answers as {b}");
        sb
    };
    let base = |h: &str, p: u16| format!("https://{h}:{p}");
    let nothing = base("127.0.0.1", pi) + "/_/no-such-page";
    let mut canonical_statuses = vec![];
    for (c, p) in [(&ci, pi), (&ce, pe)] {
        for (url, canonical) in [
            (
                base("meet.example.test", p) + "/user0001/ABCDEFGH",
                "/_/meet/user0001/ABCDEFGH",
            ),
            (
                base("MEET.example.test", p) + "/user0001/ABCDEFGH",
                "/_/meet/user0001/ABCDEFGH",
            ),
            (base("meet.example.test", p) + "/", "/_/meet"),
            (base("lync.example.test", p) + "/Dialin", "/_/dialin"),
            (base("lync.example.test", p) + "/DIALIN/", "/_/dialin"),
            (
                base("lync.example.test", p) + "/meet/user0001/ABCDEFGH",
                "/_/meet/user0001/ABCDEFGH",
            ),
            (base("other.example.test", p) + "/Dialin", "/_/dialin"),
        ] {
            canonical_statuses.push(same(c, &url, &(base("127.0.0.1", p) + canonical)));
        }
    }
    for url in [
        base("lync.example.test", pi) + "/Meeting/user0001/ABCDEFGH",
        base("lync.example.test", pi) + "/Dialing",
        base("lync.example.test", pi) + "/user0001/ABCDEFGH",
        base("other.example.test", pi) + "/user0001/ABCDEFGH",
        base("unknown.test", pi) + "/user0001/ABCDEFGH",
    ] {
        let r = get(&ci, &url);
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{url}");
        assert_eq!(
            r.text().unwrap(),
            get(&ci, &nothing).text().unwrap(),
            "{url}"
        );
    }
    // the Admin (Cscp) simple URL is the Control Panel's: never on the external face
    assert_eq!(
        get(&ce, &(base("admin.example.test", pe) + "/")).status(),
        StatusCode::NOT_FOUND
    );
    same(
        &ci,
        &(base("admin.example.test", pi) + "/"),
        &(base("127.0.0.1", pi) + "/_/cscp"),
    );
    // the canonical paths answer (a page or a sign-in redirect; a meeting that does not
    // exist is 404), so the checks above tell a routed URL from an unrouted one
    assert!(
        canonical_statuses
            .iter()
            .any(|s| *s != StatusCode::NOT_FOUND),
        "{canonical_statuses:?}"
    );
    w.assert_no_panic();
}

// ---- robustness: raw sockets ----

/// Accepts any certificate (the raw-socket tests are about the server's behaviour, not trust).
#[derive(Debug)]
struct AnyCert;

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection speaking HTTP/1.1 (ALPN), handshake done.
fn tls_connect(port: u16) -> Tls {
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCert))
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), "example.test".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("TLS handshake");
    }
    s
}

/// Reads until the peer closes (or an error, or `limit`); returns what arrived and when it ended.
fn read_to_close(s: &mut impl Read, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (got, start.elapsed())
}

/// The site still answers (a fresh client, HTTP/1.1).
fn still_serving(w: &Web) {
    let r = get(&client_with(|b| b.http1_only()), &w.e("/_/signin"));
    assert_eq!(r.status(), 200);
}

#[test]
fn http2_and_http11_both_work() {
    let w = web_server(1);
    let r = get(&client(), &w.e("/_/signin"));
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN picks HTTP/2");
    assert_eq!(r.status(), 200);
    let r = get(&client_with(|b| b.http1_only()), &w.i("/_/signin"));
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);
    // a form post over HTTP/2 goes through the CSRF check as over HTTP/1.1
    let r = client()
        .post(w.e("/_/signout"))
        .form(&[("csrf", "x")])
        .send()
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    w.assert_no_panic();
}

#[test]
fn oversized_headers_and_bodies_are_refused_and_the_server_goes_on() {
    let w = web_server(2);
    // 1 MB of headers: 431 (or the connection closed), never a crash
    let mut s = tls_connect(w.external);
    let mut req = b"GET /_/signin HTTP/1.1\r\nHost: example.test\r\n".to_vec();
    for i in 0..1024 {
        req.extend_from_slice(format!("X-Big-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let _ = s.write_all(&req).and_then(|_| s.flush());
    let (got, _) = read_to_close(&mut s, Duration::from_secs(10));
    let head = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || head.starts_with("HTTP/1.1 431"), "{head}");
    still_serving(&w);
    // a 3 MB sign-in form: 413
    let big = "a".repeat(3 << 20);
    let c = client_with(|b| b.http1_only());
    // (the server may answer before the client has written the whole body and close: the
    // client then sees its write fail instead of the 413)
    match c
        .post(w.e("/_/signin"))
        .form(&[("name", big.as_str()), ("password", "x")])
        .send()
    {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    // a 1 MB form to a change: 413 before any work (the CSRF check reads at most 256 KB)
    let token = sign_in(&w, "user0001");
    let r = c
        .post(w.e("/_/signout"))
        .header("cookie", format!("__Host-confab-user={token}"))
        .form(&[("csrf", csrf_of(&token)), ("pad", "b".repeat(1 << 20))])
        .send();
    // the server may answer before the client has written the whole body and close: the
    // client then sees its write fail instead of the 413
    match r {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    assert!(session_user(&w, &token).is_some(), "nothing changed");
    // a huge JSON body to the REST API (internal): 413
    let r = c
        .post(w.i("/api/v1/tokens"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"name\":\"{}\",\"password\":\"x\"}}",
            "n".repeat(3 << 20)
        ))
        .send();
    match r {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    still_serving(&w);
    w.assert_no_panic();
}

#[test]
fn slow_garbage_and_many_clients_do_not_stop_the_site() {
    let w = web_server(1);
    // a client that never finishes its headers is cut off (HEADER_READ, 15 s) and one that
    // never finishes its TLS handshake too (HANDSHAKE, 10 s); meanwhile others are served
    let ext = w.external;
    let slow = std::thread::spawn(move || {
        let mut s = tls_connect(ext);
        s.write_all(b"GET /_/signin HTTP/1.1\r\nHost: example.test\r\nX-Slow: 1\r\n")
            .unwrap();
        s.flush().unwrap();
        read_to_close(&mut s, Duration::from_secs(40))
    });
    let mute = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", ext)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        read_to_close(&mut s, Duration::from_secs(40))
    });
    // the HTTP companions are bounded in time too (they are published on port 80)
    let plain_port = w.external_http;
    let slow_http = std::thread::spawn(move || {
        let mut h = TcpStream::connect(("127.0.0.1", plain_port)).unwrap();
        h.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        h.write_all(b"GET / HTTP/1.1\r\nHost: lyncdiscover.example.test\r\n")
            .unwrap();
        read_to_close(&mut h, Duration::from_secs(40))
    });
    // garbage instead of TLS: the connection is closed, nothing else happens
    let mut g = TcpStream::connect(("127.0.0.1", ext)).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = g.write_all(&garbage);
    let (got, took) = read_to_close(&mut g, Duration::from_secs(15));
    assert!(
        took < Duration::from_secs(11),
        "garbage is dropped at once ({took:?})"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/"),
        "no HTTP answer to garbage"
    );
    // plain HTTP on the HTTPS port: no HTTP answer, closed
    let mut p = TcpStream::connect(("127.0.0.1", ext)).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    p.write_all(b"GET /_/signin HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .unwrap();
    let (got, took) = read_to_close(&mut p, Duration::from_secs(15));
    assert!(
        took < Duration::from_secs(11),
        "plain HTTP is dropped ({took:?})"
    );
    assert!(
        !String::from_utf8_lossy(&got).starts_with("HTTP/"),
        "{got:?}"
    );
    // many idle connections at once: the site still serves
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", ext)).unwrap())
        .collect();
    let started = Instant::now();
    still_serving(&w);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served beside 300 idle connections"
    );
    // and the slow ones are served while the slow client waits
    let c = client();
    for _ in 0..5 {
        assert_eq!(get(&c, &w.i("/_/signin")).status(), 200);
    }
    let (got, took) = slow.join().unwrap();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(25),
        "cut off after HEADER_READ, took {took:?}"
    );
    let head = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || head.starts_with("HTTP/1.1 408"), "{head}");
    let (_, took) = mute.join().unwrap();
    assert!(
        took < Duration::from_secs(20),
        "a silent TLS client is dropped after HANDSHAKE, took {took:?}"
    );
    drop(idle);
    let (_, took) = slow_http.join().unwrap();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(25),
        "slow HTTP client cut off, took {took:?}"
    );
    still_serving(&w);
    w.assert_no_panic();
}
