//! Operating confab (issue #19): configuration mistakes named, logs fit for files and the
//! journal, and what the server says at start whatever the log level.

mod common;
use common::{confab, free_port};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let port = free_port("127.0.0.1");
    let cfg = dir.join("confab.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\ndomains = [\"example.test\"]\ndata_dir = \"{}\"\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn serve_says_where_it_listens_and_which_store_even_at_level_error_without_colours() {
    let dir = tempfile::tempdir().unwrap();
    let web = free_port("127.0.0.1");
    let cfg = write_config(
        dir.path(),
        &format!("[log]\nlevel = \"error\"\n[web]\ninternal = \"127.0.0.1:{web}\"\n"),
    );
    let mut child = confab()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = vec![];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.contains("web (internal) https")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no start-up summary; stderr: {seen:#?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = seen.join("\n");
    let db = dir.path().join("data").join("confab.db");
    assert!(all.contains(&format!("store in {}", db.display())), "{all}");
    assert!(all.contains("listening on sip UDP 127.0.0.1:"), "{all}");
    assert!(all.contains("listening on sip TCP 127.0.0.1:"), "{all}");
    assert!(all.contains(&format!("listening on web (internal) https 127.0.0.1:{web}")), "{all}");
    assert!(!all.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {all:?}");
}

#[test]
fn bad_config_values_are_named_by_key_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key) in [
        ("[log]\nlevel = \"verbose\"\n", "log.level"),
        ("[limits]\ntcp_idle_timeout = \"soon\"\n", "limits.tcp_idle_timeout"),
        ("[web]\ninternal = \"somewhere\"\n", "web.internal"),
        ("[web]\nexternal_sip = \"sip.example.test\"\n", "web.external_sip"),
        ("[web]\nintrenal = \"127.0.0.1:1\"\n", "intrenal"),
    ] {
        let cfg = write_config(dir.path(), extra);
        let out = confab()
            .args(["serve", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}: {err}");
        assert!(err.contains(key), "{extra}: {err}");
        assert!(err.contains("confab.toml"), "the file is named: {err}");
        assert!(!dir.path().join("data").exists(), "{extra}: nothing created");
    }
}
