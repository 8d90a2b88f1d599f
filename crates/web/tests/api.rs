//! The REST API over real HTTP on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use confab_store::{AuditFilter, Store};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

struct Server {
    base: String,
    store: Arc<Store>,
    client: Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.seed_users("example.test", "user", 3, "pw-").unwrap();
    let root = store
        .add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    let principal = confab_admin::principal_for(&store, &root).unwrap();
    let mut shell =
        confab_admin::Session::new(&store, principal, "local shell", "pool.example.test");
    shell
        .run("New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add=\"Set-CsUser\"}")
        .unwrap();
    store
        .add_admin("helpdesk", "helpdeskpass1", &["CsUserModifier".into()])
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(confab_web::serve(
        listener,
        store.clone(),
        "pool.example.test".into(),
        None,
    ));
    Server {
        base: format!("http://{addr}/api/v1"),
        store,
        client: Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn login(&self, name: &str, password: &str) -> String {
        let res = self
            .client
            .post(format!("{}/tokens", self.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["expires_in"], 3600);
        body["token"].as_str().unwrap().to_string()
    }

    async fn cmd(&self, token: &str, command: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}/cmdlets", self.base))
            .bearer_auth(token)
            .json(&json!({"command": command}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    async fn patch(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .patch(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    fn bypass_lobby(&self) -> Option<Value> {
        self.store
            .get_config("CsMeetingConfiguration", "Global")
            .unwrap()
            .and_then(|d| d.body.get("PstnCallersBypassLobby").cloned())
    }

    fn user_enabled(&self, name: &str) -> bool {
        self.store
            .get_user(name, "example.test")
            .unwrap()
            .unwrap()
            .enabled
    }

    fn rest_audit(&self) -> Vec<confab_store::AuditEntry> {
        self.store
            .query_audit(&AuditFilter::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.origin.starts_with("rest "))
            .collect()
    }
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, kind: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["kind"], kind, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn login_and_logout() {
    let s = start().await;
    let token = s.login("root", "rootpassword1").await;
    assert_eq!(token.len(), 64);

    for (name, password) in [("root", "wrong-password"), ("nobody", "rootpassword1")] {
        let res = s
            .client
            .post(format!("{}/tokens", s.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert_error(
            status,
            &res.json().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let res = s
        .client
        .post(format!("{}/tokens", s.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_error(
        status,
        &res.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    let (status, _) = s.get(&token, "/users").await;
    assert_eq!(status, StatusCode::OK);
    let res = s
        .client
        .delete(format!("{}/tokens", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, body) = s.get(&token, "/users").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn tokens_are_required() {
    let s = start().await;
    let res = s
        .client
        .post(format!("{}/cmdlets", s.base))
        .json(&json!({"command": "Get-CsUser"}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    let status = res.status();
    assert_error(
        status,
        &res.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, body) = s
        .cmd(
            "0123456789abcdef",
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let res = s
        .client
        .get(format!("{}/users", s.base))
        .header("Authorization", "Basic cm9vdDpyb290")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for path in [
        "/users",
        "/users/user0001@example.test",
        "/config/CsMeetingConfiguration",
        "/config/CsMeetingConfiguration/Global",
    ] {
        let res = s
            .client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, body) = s
        .patch(
            "bad",
            "/users/user0001@example.test",
            json!({"Enabled": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(s.user_enabled("user0001"));
    assert_eq!(s.bypass_lobby(), None);
    assert!(s.rest_audit().is_empty());
}

#[tokio::test]
async fn cmdlets_route() {
    let s = start().await;
    let root = s.login("root", "rootpassword1").await;
    let (status, body) = s.cmd(&root, "Get-CsMeetingConfiguration").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["objects"][0]["PstnCallersBypassLobby"], true, "{body}");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("PstnCallersBypassLobby"),
        "{body}"
    );

    let (status, body) = s
        .cmd(
            &root,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.cmd(&root, "Get-CsMeetingConfiguration").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["objects"][0]["PstnCallersBypassLobby"], false,
        "{body}"
    );
    assert_eq!(s.bypass_lobby(), Some(json!(false)));

    // a bad script changes nothing
    let (status, body) = s
        .cmd(
            &root,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $true; Get-CsFrobnicator",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "unknown_cmdlet");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Get-CsFrobnicator"),
        "{body}"
    );
    let (status, body) = s
        .cmd(
            &root,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $true -Frobnicate 3",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "unknown_parameter");
    assert!(
        body["error"].as_str().unwrap().contains("Frobnicate"),
        "{body}"
    );
    let (status, body) = s
        .cmd(
            &root,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby 'maybe'",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_value");
    let (status, body) = s
        .cmd(
            &root,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby ($true",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "parse");
    assert_eq!(s.bypass_lobby(), Some(json!(false)));

    let (status, body) = s.cmd(&root, "  ").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let res = s
        .client
        .post(format!("{}/cmdlets", s.base))
        .bearer_auth(&root)
        .json(&json!({"command": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let audit = s.rest_audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].admin, "root");
    assert!(audit[0].success);
    assert!(audit[0].command.contains("Set-CsMeetingConfiguration"));
    assert!(
        audit[0].origin.starts_with("rest 127.0.0.1:"),
        "{}",
        audit[0].origin
    );
}

#[tokio::test]
async fn rbac_applies() {
    let s = start().await;
    let helpdesk = s.login("helpdesk", "helpdeskpass1").await;
    let (status, body) = s
        .cmd(
            &helpdesk,
            "Set-CsUser -Identity sip:user0001@example.test -Enabled $false",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!s.user_enabled("user0001"));

    let (status, body) = s
        .cmd(
            &helpdesk,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "denied");
    assert!(
        body["error"].as_str().unwrap().contains("CsAdministrator"),
        "{body}"
    );
    assert_eq!(s.bypass_lobby(), None);
    let (status, body) = s
        .patch(
            &helpdesk,
            "/config/CsMeetingConfiguration/Global",
            json!({"PstnCallersBypassLobby": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "denied");
    assert_eq!(s.bypass_lobby(), None);

    // view-only cmdlets still work
    let (status, body) = s.get(&helpdesk, "/config/CsMeetingConfiguration").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // role changes apply to existing tokens at once
    s.store
        .set_admin_roles("helpdesk", &["CsAdministrator".into()])
        .unwrap();
    let (status, body) = s
        .cmd(
            &helpdesk,
            "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.bypass_lobby(), Some(json!(false)));
    s.store
        .set_admin_roles("helpdesk", &["CsViewOnlyAdministrator".into()])
        .unwrap();
    let (status, body) = s
        .patch(
            &helpdesk,
            "/users/user0002@example.test",
            json!({"Enabled": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "denied");
    assert!(s.user_enabled("user0002"));

    let audit = s.rest_audit();
    assert!(
        audit
            .iter()
            .any(|e| e.admin == "helpdesk" && e.success && e.command.contains("Set-CsUser")),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|e| e.admin == "helpdesk"
            && e.success
            && e.command.contains("Set-CsMeetingConfiguration")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn resource_routes() {
    let s = start().await;
    let root = s.login("root", "rootpassword1").await;

    let (status, body) = s.get(&root, "/users").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["command"], "Get-CsUser");
    assert_eq!(body["objects"].as_array().unwrap().len(), 3, "{body}");

    let (status, body) = s.get(&root, "/users/user0001@example.test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["objects"][0]["Identity"], "sip:user0001@example.test");
    assert_eq!(body["objects"][0]["Enabled"], true);
    let (status, body) = s.get(&root, "/users/nobody@example.test").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, body) = s
        .patch(
            &root,
            "/users/user0001@example.test",
            json!({"Enabled": false, "DisplayName": "O'Brien; Remove-CsUser x"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let u = s
        .store
        .get_user("user0001", "example.test")
        .unwrap()
        .unwrap();
    assert!(!u.enabled);
    assert_eq!(u.display_name, "O'Brien; Remove-CsUser x");
    let (status, body) = s
        .patch(
            &root,
            "/users/nobody@example.test",
            json!({"Enabled": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // bad property names and values
    let (status, body) = s
        .patch(
            &root,
            "/users/user0002@example.test",
            json!({"Enabled $false; Set-CsUser": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = s
        .patch(
            &root,
            "/users/user0002@example.test",
            json!({"Frobnicate": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "unknown_parameter");
    assert!(
        body["error"].as_str().unwrap().contains("Frobnicate"),
        "{body}"
    );
    let (status, body) = s
        .patch(
            &root,
            "/users/user0002@example.test",
            json!({"Identity": "sip:user0003@example.test", "Enabled": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = s
        .patch(&root, "/users/user0002@example.test", json!({}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = s
        .patch(&root, "/users/user0002@example.test", json!([1]))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(s.user_enabled("user0002") && s.user_enabled("user0000"));

    // configuration
    let (status, body) = s.get(&root, "/config/CsMeetingConfiguration").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["objects"][0]["Identity"], "Global", "{body}");
    let (status, body) = s
        .patch(
            &root,
            "/config/CsMeetingConfiguration/Global",
            json!({"PstnCallersBypassLobby": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.bypass_lobby(), Some(json!(false)));
    let (status, body) = s.get(&root, "/config/CsMeetingConfiguration/Global").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["objects"][0]["PstnCallersBypassLobby"], false,
        "{body}"
    );
    let (status, body) = s
        .patch(
            &root,
            "/config/CsMeetingConfiguration/Global",
            json!({"PstnCallersBypassLobby": "sometimes"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_value");
    let (status, body) = s
        .patch(
            &root,
            "/config/CsMeetingConfiguration/Global",
            json!({"Bogus": true}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "unknown_parameter");
    assert!(body["error"].as_str().unwrap().contains("Bogus"), "{body}");
    assert_eq!(s.bypass_lobby(), Some(json!(false)));

    let (status, body) = s
        .get(&root, "/config/CsMeetingConfiguration/Site:Nowhere")
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get(&root, "/config/CsFrobnicatorConfiguration").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get(&root, "/config/CsUser").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get(&root, "/config/Cs%3BRemove-CsUser").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = s.get(&root, "/nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let res = s
        .client
        .put(format!("{}/users", s.base))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    let audit = s.rest_audit();
    assert_eq!(audit.iter().filter(|e| e.success).count(), 2, "{audit:?}");
    assert!(
        audit.iter().any(|e| e.success
            && e.command
                .starts_with("Set-CsUser -Identity 'sip:user0001@example.test' ")
            && e.command.contains(" -Enabled $false")),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|e| e.success
            && e.command
                == "Set-CsMeetingConfiguration -Identity 'Global' -PstnCallersBypassLobby $false"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn openapi_document() {
    let s = start().await;
    let res = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    for path in [
        "/api/v1/tokens",
        "/api/v1/cmdlets",
        "/api/v1/users",
        "/api/v1/users/{address}",
        "/api/v1/config/{noun}",
        "/api/v1/config/{noun}/{identity}",
        "/api/v1/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["paths"]["/api/v1/tokens"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/tokens"]["delete"].is_object());
    assert!(doc["paths"]["/api/v1/users/{address}"]["patch"].is_object());
    assert!(doc["paths"]["/api/v1/config/{noun}/{identity}"]["patch"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["schemas"]["Error"]["required"],
        json!(["error", "kind"])
    );
    // every $ref resolves
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_string());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = vec![];
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

/// `/metrics` needs no sign-in: a burst of scrapes renders the counters once, and a
/// scrape after the short freshness window sees new values.
#[tokio::test]
async fn metrics_scrape_burst_renders_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let renders = Arc::new(AtomicUsize::new(0));
    let r = renders.clone();
    let metrics: confab_web::MetricsSource = Arc::new(move || {
        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
        format!("confab_renders_total {n}\n")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(confab_web::serve(
        listener,
        store,
        "pool.example.test".into(),
        Some(metrics),
    ));
    let client = Client::new();
    let mut bodies = vec![];
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        bodies.push(res.text().await.unwrap());
    }
    // at most one rendering per 100 ms window the scrapes spanned (on loopback they all
    // fit in one or two)
    let n = renders.load(Ordering::SeqCst);
    let windows = started.elapsed().as_millis() as usize / 100 + 2;
    assert!(
        n >= 1 && n <= windows,
        "{n} renders for 20 scrapes in {windows} windows"
    );
    assert_eq!(bodies[0], "confab_renders_total 1\n");
    // the cached rendering until its 100 ms are over, then a new one
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let later = client.get(&url).send().await.unwrap().text().await.unwrap();
        if later == format!("confab_renders_total {}\n", n + 1) {
            break;
        }
        assert_eq!(later, format!("confab_renders_total {n}\n"));
        assert!(std::time::Instant::now() < deadline, "never rendered again");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unenforced_properties_come_back_as_warnings() {
    let s = start().await;
    let root = s.login("root", "rootpassword1").await;
    let (status, body) = s
        .cmd(
            &root,
            "Set-CsClientPolicy -DisableHtmlIm $true -DisableRTFIm $true",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let warnings = body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{body}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("Set-CsClientPolicy: DisableHtmlIm is not enforced"),
        "{body}"
    );
    // the same through a resource route
    let (status, body) = s
        .patch(
            &root,
            "/config/CsImFilterConfiguration/Global",
            json!({"AllowMessage": "hi", "Action": "Warn"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let warnings: Vec<&str> = body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 1, "{body}");
    assert!(warnings[0].contains("AllowMessage"), "{body}");
    // an enforced change, and a read: an empty list
    let (_, body) = s
        .cmd(&root, "Set-CsClientPolicy -DisableRTFIm $false")
        .await;
    assert_eq!(body["warnings"], json!([]), "{body}");
    let (_, body) = s.get(&root, "/config/CsClientPolicy").await;
    assert_eq!(body["warnings"], json!([]), "{body}");
}

/// An OU-scoped administrator over the resource routes: the user list holds only their
/// users, another user is 403 (not changed), and the refusal is audited.
#[tokio::test]
async fn user_scopes_apply_to_the_resource_routes() {
    let s = start().await;
    s.store
        .set_user_ou(
            "user0001",
            "example.test",
            Some("OU=Sales,DC=example,DC=test"),
        )
        .unwrap();
    s.store
        .set_user_ou(
            "user0002",
            "example.test",
            Some("OU=Sales2,DC=example,DC=test"),
        )
        .unwrap();
    let root = s.login("root", "rootpassword1").await;
    let (status, body) = s
        .cmd(
            &root,
            r#"New-CsAdminRole -Identity SalesAdmins -Template CsUserAdministrator -UserScopes "OU:OU=Sales,DC=example,DC=test""#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.store
        .add_admin("sales", "salespassword1", &["SalesAdmins".into()])
        .unwrap();
    let sales = s.login("sales", "salespassword1").await;
    let (status, body) = s.get(&sales, "/users").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sip:user0001@example.test"], "{body}");
    assert_eq!(
        body["objects"][0]["OrganizationalUnit"],
        "OU=Sales,DC=example,DC=test"
    );
    let (status, body) = s.get(&sales, "/users/user0002@example.test").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "denied");
    let (status, body) = s
        .patch(
            &sales,
            "/users/user0002@example.test",
            json!({"Enabled": false}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "denied");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("outside the user scopes"),
        "{body}"
    );
    assert!(s.user_enabled("user0002"));
    let (status, body) = s
        .patch(
            &sales,
            "/users/user0001@example.test",
            json!({"Enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!s.user_enabled("user0001"));
    let audit = s.rest_audit();
    assert!(
        audit.iter().any(|e| e.admin == "sales"
            && !e.success
            && e.command.contains("user0002")
            && e.result.starts_with("refused")),
        "{audit:?}"
    );
}
