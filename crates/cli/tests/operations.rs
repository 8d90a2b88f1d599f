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

/// Starts `confab serve` on `cfg` until it prints its TLS certificate line; returns the
/// SHA-256 fingerprint it states.
fn served_fingerprint(cfg: &std::path::Path) -> String {
    let mut child = confab()
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server states its TLS certificate");
        if l.starts_with("TLS certificate") {
            break l;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    line.rsplit("SHA-256 ").next().unwrap().trim().to_string()
}

fn with_tls(dir: &std::path::Path) -> std::path::PathBuf {
    let port = free_port("127.0.0.1");
    let cfg = dir.join("confab.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"tls:127.0.0.1:{port}\"]\ndomains = [\"example.test\"]\ndata_dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

fn run(args: &[&str], cfg: &std::path::Path) -> (bool, String) {
    let out = confab().args(args).arg("--config").arg(cfg).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref(),
    )
}

#[test]
fn backup_and_restore_keep_the_tls_identity_with_the_key_sealed() {
    use std::os::unix::fs::PermissionsExt;
    let a = tempfile::tempdir().unwrap();
    let cfg_a = with_tls(a.path());
    let before = served_fingerprint(&cfg_a);
    let pass = a.path().join("pass");
    std::fs::write(&pass, "a long enough passphrase\n").unwrap();
    let wrong = a.path().join("wrong");
    std::fs::write(&wrong, "another long passphrase\n").unwrap();
    let file = a.path().join("backup.db");
    let f = file.to_str().unwrap();
    let (ok, out) = run(&["backup", f, "--passphrase-file", pass.to_str().unwrap()], &cfg_a);
    assert!(ok, "{out}");
    assert!(out.contains("sealed"), "{out}");
    let raw = std::fs::read(&file).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"PRIVATE KEY"), "the key is not in the clear");

    let b = tempfile::tempdir().unwrap();
    let cfg_b = with_tls(b.path());
    // no passphrase, or a wrong one: refused, and nothing restored
    let (ok, out) = run(&["restore", f], &cfg_b);
    assert!(!ok && out.contains("--passphrase-file"), "{out}");
    let (ok, out) = run(&["restore", f, "--passphrase-file", wrong.to_str().unwrap()], &cfg_b);
    assert!(!ok && out.contains("wrong passphrase"), "{out}");
    assert!(!b.path().join("data/confab.db").exists());
    let (ok, out) = run(&["restore", f, "--passphrase-file", pass.to_str().unwrap()], &cfg_b);
    assert!(ok, "{out}");
    let key = b.path().join("data/tls/key.pem");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(served_fingerprint(&cfg_b), before, "the restored server has the same certificate");

    // without a passphrase the backup says the key is left out, and holds the certificate
    let c = tempfile::tempdir().unwrap();
    let cfg_c = with_tls(c.path());
    let file2 = a.path().join("nokey.db");
    let (ok, out) = run(&["backup", file2.to_str().unwrap()], &cfg_a);
    assert!(ok && out.contains("not in the backup"), "{out}");
    let (ok, out) = run(&["restore", file2.to_str().unwrap()], &cfg_c);
    assert!(ok && out.contains("not its key"), "{out}");
    assert_eq!(
        std::fs::read(c.path().join("data/tls/cert.pem")).unwrap(),
        std::fs::read(a.path().join("data/tls/cert.pem")).unwrap()
    );
}

#[test]
fn ports_lists_every_port_the_configuration_opens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("confab.toml");
    std::fs::write(
        &cfg,
        "listen = [\"127.0.0.1:5060\", \"tls:127.0.0.2:5061\", \"wss:127.0.0.3:7443\"]\n\
         domains = [\"example.test\"]\n\
         [http]\nlisten = \"127.0.0.1:8080\"\n\
         [web]\ninternal = \"127.0.0.1:443\"\nexternal_http = \"127.0.0.1:8081\"\n\
         [meetings]\nmedia_address = \"127.0.0.4\"\nmedia_port_min = 20000\nmedia_port_max = 20999\n",
    )
    .unwrap();
    let out = confab().args(["ports", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "udp 127.0.0.1 5060 sip",
            "tcp 127.0.0.1 5060 sip",
            "tcp 127.0.0.2 5061 sip-tls",
            "tcp 127.0.0.3 7443 sip-wss",
            "tcp 127.0.0.1 443 web-internal-https",
            "tcp 127.0.0.1 8081 web-external-http",
            "tcp 127.0.0.1 8080 rest-api",
            "udp 127.0.0.4 20000-20999 media",
        ]
    );
    // nothing was opened or created
    assert!(!dir.path().join("confab-data").exists());
}
