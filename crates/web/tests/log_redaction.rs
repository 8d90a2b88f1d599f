//! The REST API's log redacts secrets in commands as the audit log does. (A test binary of
//! its own: it installs the process-wide log subscriber.)

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use confab_store::Store;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn commands_are_logged_with_their_secrets_redacted() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.seed_users("example.test", "user", 1, "pw-").unwrap();
    store
        .add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(confab_web::serve(
        listener,
        store,
        "example.test".into(),
        None,
    ));
    let base = format!("http://{addr}/api/v1");
    let c = reqwest::Client::new();
    let token: Value = c
        .post(format!("{base}/tokens"))
        .json(&json!({"name": "root", "password": "rootpassword1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap();
    for command in [
        "Set-CsUser -Identity sip:user0000@example.test -Password hunter2-secret",
        "Get-CsUser -Pin:4711-secret-pin",
        "Set-CsUser -Identity sip:user0000@example.test -DisplayName Shown",
    ] {
        c.post(format!("{base}/cmdlets"))
            .bearer_auth(token)
            .json(&json!({ "command": command }))
            .send()
            .await
            .unwrap();
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("REST command failed"), "{text}");
    assert!(text.contains("-Password ********"), "{text}");
    assert!(text.contains("-Pin:********"), "{text}");
    assert!(
        text.contains("-DisplayName Shown"),
        "not everything is hidden: {text}"
    );
    for secret in ["hunter2-secret", "4711-secret-pin", "rootpassword1"] {
        assert!(!text.contains(secret), "{secret} logged: {text}");
    }
}
