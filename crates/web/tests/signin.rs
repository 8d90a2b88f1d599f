//! Sign-in throttling over real HTTP on loopback: a flood of wrong passwords from one
//! address is answered 429 without evaluating them, while another administrator signing in
//! from another address gets a token within a bounded time; failed and throttled sign-ins
//! are in the audit log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_store::{AuditEntry, AuditFilter, Store};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

struct Server {
    url: String,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store
        .add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    store
        .add_admin(
            "other",
            "otherpassword1",
            &["CsViewOnlyAdministrator".into()],
        )
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
        url: format!("http://{addr}/api/v1/tokens"),
        store,
        _dir: dir,
    }
}

/// A client whose connections come from `ip` (any address of 127.0.0.0/8 is local).
fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn sign_in(
    c: &Client,
    url: &str,
    name: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    let res = c
        .post(url)
        .json(&json!({"name": name, "password": password}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

fn sign_in_entries(store: &Store) -> Vec<AuditEntry> {
    store
        .query_audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.command == "sign-in")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_flood_is_throttled_while_another_administrator_signs_in() {
    let s = start().await;
    let flooder = client_from("127.0.0.1");
    let flood_seen = Arc::new(tokio::sync::Notify::new());
    let mut flood = vec![];
    for i in 0..200 {
        let (c, url, seen) = (flooder.clone(), s.url.clone(), flood_seen.clone());
        flood.push(tokio::spawn(async move {
            let r = sign_in(&c, &url, "root", &format!("wrong-password-{i}")).await;
            if r.0 == StatusCode::TOO_MANY_REQUESTS {
                seen.notify_one();
            }
            r
        }));
    }
    // once the flood is being refused, another administrator signs in from elsewhere
    tokio::time::timeout(Duration::from_secs(20), flood_seen.notified())
        .await
        .expect("the flood is throttled");
    let started = Instant::now();
    let (status, _, body) =
        sign_in(&client_from("127.0.0.2"), &s.url, "other", "otherpassword1").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token"].as_str().map(str::len), Some(64), "{body}");
    assert!(
        took < Duration::from_secs(5),
        "the other admin waited {took:?}"
    );

    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for t in flood {
        let (status, retry, body) = t.await.unwrap();
        *counts.entry(status.as_u16()).or_default() += 1;
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(retry.is_some_and(|r| r >= 1), "Retry-After: {retry:?}");
                assert_eq!(body["kind"], "throttled", "{body}");
            }
            StatusCode::UNAUTHORIZED => {}
            other => panic!("flood answered {other}: {body}"),
        }
    }
    eprintln!("flood answered {counts:?}; the other administrator waited {took:?}");
    let evaluated = counts.get(&401).copied().unwrap_or(0);
    assert!(
        (1..=12).contains(&evaluated),
        "only about 10 wrong passwords per address are evaluated: {counts:?}"
    );
    assert!(counts.get(&429).copied().unwrap_or(0) >= 188, "{counts:?}");

    // every evaluated failure is audited, and the throttling once (written off the request
    // path: wait for it)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = sign_in_entries(&s.store);
        let failed = log
            .iter()
            .filter(|e| e.admin == "root" && e.result.starts_with("refused"))
            .count();
        let throttled = log
            .iter()
            .filter(|e| e.result.starts_with("throttled"))
            .count();
        if failed == evaluated && throttled >= 1 {
            assert!(log
                .iter()
                .all(|e| !e.success && e.origin.starts_with("rest 127.0.0.1:")));
            assert!(
                throttled <= 2,
                "one entry per episode, not per attempt: {log:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{failed}/{evaluated} failures, {throttled} throttled: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // the flooded account itself is throttled for a while, from anywhere (documented)
    let (status, retry, body) =
        sign_in(&client_from("127.0.0.3"), &s.url, "root", "rootpassword1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
    assert!(
        body["error"].as_str().unwrap().contains("account"),
        "{body}"
    );
}

/// Junk names cost neither an evaluation nor an audit entry (they still count against the
/// address); an overlong password for a real name is a failed sign-in.
#[tokio::test]
async fn malformed_names_are_refused_without_evaluation_or_audit() {
    let s = start().await;
    let c = client_from("127.0.0.1");
    let long = "x".repeat(300);
    for (name, password) in [("bad name; DROP", "whatever1"), ("root", long.as_str())] {
        let (status, _, body) = sign_in(&c, &s.url, name, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = sign_in_entries(&s.store);
        if !log.is_empty() {
            assert_eq!(log.len(), 1, "{log:?}");
            assert_eq!(log[0].admin, "root");
            assert!(!log[0].success && log[0].result.starts_with("refused"));
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // a right password still works from there
    let (status, _, body) = sign_in(&c, &s.url, "root", "rootpassword1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
