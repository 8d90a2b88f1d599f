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
    while !seen
        .iter()
        .any(|l: &String| l.contains("web (internal) https"))
    {
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
    assert!(
        all.contains(&format!(
            "listening on web (internal) https 127.0.0.1:{web}"
        )),
        "{all}"
    );
    assert!(
        !all.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {all:?}"
    );
}

#[test]
fn bad_config_values_are_named_by_key_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key) in [
        ("[log]\nlevel = \"verbose\"\n", "log.level"),
        (
            "[limits]\ntcp_idle_timeout = \"soon\"\n",
            "limits.tcp_idle_timeout",
        ),
        ("[web]\ninternal = \"somewhere\"\n", "web.internal"),
        (
            "[web]\nexternal_sip = \"sip.example.test\"\n",
            "web.external_sip",
        ),
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
        assert!(
            !dir.path().join("data").exists(),
            "{extra}: nothing created"
        );
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
    let out = confab()
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string()
            + String::from_utf8_lossy(&out.stderr).as_ref(),
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
    let (ok, out) = run(
        &["backup", f, "--passphrase-file", pass.to_str().unwrap()],
        &cfg_a,
    );
    assert!(ok, "{out}");
    assert!(out.contains("sealed"), "{out}");
    let raw = std::fs::read(&file).unwrap();
    assert!(
        !raw.windows(11).any(|w| w == b"PRIVATE KEY"),
        "the key is not in the clear"
    );

    let b = tempfile::tempdir().unwrap();
    let cfg_b = with_tls(b.path());
    // no passphrase, or a wrong one: refused, and nothing restored
    let (ok, out) = run(&["restore", f], &cfg_b);
    assert!(!ok && out.contains("--passphrase-file"), "{out}");
    let (ok, out) = run(
        &["restore", f, "--passphrase-file", wrong.to_str().unwrap()],
        &cfg_b,
    );
    assert!(!ok && out.contains("wrong passphrase"), "{out}");
    assert!(!b.path().join("data/confab.db").exists());
    let (ok, out) = run(
        &["restore", f, "--passphrase-file", pass.to_str().unwrap()],
        &cfg_b,
    );
    assert!(ok, "{out}");
    let key = b.path().join("data/tls/key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        served_fingerprint(&cfg_b),
        before,
        "the restored server has the same certificate"
    );

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
    let out = confab()
        .args(["ports", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

// ----- users from the shell and REST (issue #19 part 2) ---------------------------------------

use common::{
    basic_auth, confab_as_admin, first_json, host_port, wait_until, Server, Ua, ADD_ROOT,
    ADMIN_PASSWORD,
};
use confab_sip::{HeaderName, Method};
use serde_json::{json, Value};

/// REGISTER `ua` for an hour, saying it is `agent`; the final status.
fn register_as(ua: &mut Ua, agent: &str) -> u16 {
    let mut req = ua.request(Method::Register, &format!("sip:{}", ua.domain), &ua.aor());
    req.headers.push(HeaderName::Expires, "3600");
    req.headers.push(HeaderName::UserAgent, agent.to_string());
    ua.send_authenticated(req).status().unwrap()
}

/// A REST call: (status, JSON body or null).
fn http(method: &str, url: &str, auth: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = ureq::request(method, url);
    if let Some(a) = auth {
        r = r.set("Authorization", a);
    }
    let res = match body {
        Some(b) => r.send_json(b),
        None => r.call(),
    };
    match res {
        Ok(r) => {
            let code = r.status();
            (code, r.into_json().unwrap_or(Value::Null))
        }
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

fn bearer(http_port: u16, name: &str, password: &str) -> String {
    let (code, v) = http(
        "POST",
        &format!("http://127.0.0.1:{http_port}/api/v1/tokens"),
        None,
        Some(json!({"name": name, "password": password})),
    );
    assert_eq!(code, 200, "{v}");
    format!("Bearer {}", v["token"].as_str().unwrap())
}

#[test]
fn endpoints_shown_for_a_user_registered_from_two_clients() {
    let s = Server::start(2, "");
    s.cli(ADD_ROOT);
    let mut udp = Ua::udp("user0000", s.addr());
    let mut tcp = Ua::tcp("user0000", s.addr());
    assert_eq!(register_as(&mut udp, "Phone-UDP/1.0"), 200);
    assert_eq!(register_as(&mut tcp, "Desk-TCP/2.0"), 200);
    let (udp_src, tcp_src) = (host_port(&udp.local), host_port(&tcp.local));

    // the shell: both endpoints (written through to the store: wait for the second)
    let mut out = String::new();
    wait_until(
        "both registrations in the store",
        Duration::from_secs(10),
        || {
            let (ok, o) = confab_as_admin(
                s.data(),
                &[
                    "shell",
                    "-c",
                    "Get-CsUserRegistration -Identity sip:user0000@example.test | fl",
                ],
            );
            assert!(ok, "{o}");
            out = o;
            out.contains(&udp_src) && out.contains(&tcp_src)
        },
    );
    for (transport, src, agent) in [
        ("UDP", &udp_src, "Phone-UDP/1.0"),
        ("TCP", &tcp_src, "Desk-TCP/2.0"),
    ] {
        let block = out
            .split("\n\n")
            .find(|b| b.contains(src.as_str()))
            .unwrap_or_else(|| panic!("no endpoint from {src}: {out}"));
        assert!(
            block.contains(&format!("Transport     : {transport}\n")),
            "{block}"
        );
        assert!(block.contains(agent), "{block}");
    }

    // the CLI: text and JSON
    let text = s.cli(&["user", "show", "user0000@example.test"]);
    assert!(text.contains("Endpoints   : 2"), "{text}");
    for (transport, src, agent) in [
        ("UDP", &udp_src, "Phone-UDP/1.0"),
        ("TCP", &tcp_src, "Desk-TCP/2.0"),
    ] {
        // each endpoint is a block "  [n] Contact : …" with its own lines
        let block = text
            .split("  [")
            .find(|b| b.contains(&format!("SourceAddress : {src}\n")))
            .unwrap_or_else(|| panic!("no endpoint from {src}: {text}"));
        assert!(
            block.contains(&format!("Transport     : {transport}\n")),
            "{block}"
        );
        assert!(
            block.contains(&format!("UserAgent     : {agent}\n")),
            "{block}"
        );
        assert!(
            block.contains("Expires       : ") && block.contains(" UTC\n"),
            "{block}"
        );
        assert!(block.contains("FrontEnd      : "), "{block}");
    }
    let v = first_json(&s.cli(&["user", "show", "user0000@example.test", "--json"])).unwrap();
    let eps = v["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2, "{v}");
    for (transport, src, agent) in [
        ("UDP", &udp_src, "Phone-UDP/1.0"),
        ("TCP", &tcp_src, "Desk-TCP/2.0"),
    ] {
        let e = eps
            .iter()
            .find(|e| e["source_address"] == json!(src))
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(e["transport"], json!(transport), "{v}");
        assert_eq!(e["user_agent"], json!(agent), "{v}");
        assert!(e["contact"].as_str().unwrap().contains("user0000@"), "{v}");
        assert!(e["expires"].as_str().unwrap().ends_with("UTC"), "{v}");
    }
    // a user with no endpoint says so
    let text = s.cli(&["user", "show", "user0001"]);
    assert!(text.contains("Endpoints   : 0"), "{text}");

    // confab status: the store, and the front end's heartbeat counting both registrations
    let db = s.data().join("confab.db").display().to_string();
    let mut status = Value::Null;
    wait_until(
        "a heartbeat with both registrations",
        Duration::from_secs(10),
        || {
            status = first_json(&s.cli(&["status", "--json"])).unwrap();
            status["totals"]["registrations"] == json!(2)
        },
    );
    assert_eq!(status["store"], json!(db), "{status}");
    assert_eq!(status["backend"], json!("SQLite"), "{status}");
    let fes = status["front_ends"].as_array().unwrap();
    assert_eq!(fes.len(), 1, "{status}");
    assert_eq!(fes[0]["state"], json!("Active"), "{status}");
    assert_eq!(fes[0]["load"]["registrations"], json!(2), "{status}");
    assert!(fes[0]["load"]["subscriptions"].is_u64(), "{status}");
    assert_eq!(status["registered_endpoints"], json!(2), "{status}");
    let text = s.cli(&["status"]);
    assert!(text.contains(&format!("Store: {db} (SQLite)")), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains(" Active "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.split_whitespace().any(|w| w == "2"), "{text}");
    assert!(
        text.contains("REGISTRATIONS") && text.contains("CONNECTIONS") && text.contains("CALLS"),
        "{text}"
    );
    assert!(
        text.contains("Registered endpoints in the store: 2"),
        "{text}"
    );
}

#[test]
fn users_created_over_rest_passwords_set_by_administrators_and_by_users() {
    let http_port = free_port("127.0.0.1");
    let s = Server::start(3, &format!("[http]\nlisten = \"127.0.0.1:{http_port}\"\n"));
    let api = format!("http://127.0.0.1:{http_port}/api/v1");
    s.cli(ADD_ROOT);
    let (ok, out) = confab_as_admin(
        s.data(),
        &[
            "shell",
            "-c",
            r#"New-CsAdminRole -Identity SalesUsers -Template CsUserAdministrator -UserScopes "OU:OU=Sales,DC=example,DC=test""#,
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = confab_as_admin(
        s.data(),
        &[
            "admin",
            "add",
            "sales",
            "--role",
            "SalesUsers",
            "--password",
            "salespassword1",
        ],
    );
    assert!(ok, "{out}");
    let root = bearer(http_port, "root", ADMIN_PASSWORD);
    let sales = bearer(http_port, "sales", "salespassword1");
    let users = format!("{api}/users");

    // POST /users: bad input is a 400 naming the problem, and creates nobody
    for (body, says) in [
        (
            json!({"SipAddress": "sip:carol@example.test"}),
            "missing 'Password'",
        ),
        (json!({"Password": "carol secret"}), "missing 'SipAddress'"),
        (
            json!({"SipAddress": 7, "Password": "x"}),
            "'SipAddress' must be a string",
        ),
        (
            json!({"SipAddress": "sip:carol@example.test", "Password": "x", "Admin": true}),
            "unknown field 'Admin'",
        ),
        (
            json!({"SipAddress": "sip:carol@example.test", "Password": ""}),
            "password is empty",
        ),
        (
            json!({"SipAddress": "carol", "Password": "carol secret"}),
            "'SipAddress' must be a SIP address",
        ),
        (
            json!({"SipAddress": "sip:carol@example.test", "Password": "carol secret", "OU": "not a DN"}),
            "OU",
        ),
    ] {
        let (code, v) = http("POST", &users, Some(&root), Some(body.clone()));
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    // a delegated administrator outside their OU: 403, nobody created
    let (code, v) = http(
        "POST",
        &users,
        Some(&sales),
        Some(json!({"SipAddress": "sip:carol@example.test", "Password": "carol secret"})),
    );
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("user scopes"), "{v}");
    let (code, _) = http(
        "GET",
        &format!("{users}/carol@example.test"),
        Some(&root),
        None,
    );
    assert_eq!(code, 404);
    // within their OU: 201 with the user; the echoed command hides the password
    let (code, v) = http(
        "POST",
        &users,
        Some(&sales),
        Some(
            json!({"SipAddress": "sip:carol@example.test", "Password": "carol's secret", "DisplayName": "Carol", "OU": "OU=Sales,DC=example,DC=test"}),
        ),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        v["objects"][0]["SipAddress"],
        json!("sip:carol@example.test"),
        "{v}"
    );
    assert_eq!(v["objects"][0]["DisplayName"], json!("Carol"), "{v}");
    assert!(!v.to_string().contains("secret"), "{v}");
    let (code, v) = http(
        "POST",
        &users,
        Some(&root),
        Some(json!({"SipAddress": "carol@example.test", "Password": "another"})),
    );
    assert_eq!(code, 409, "{v}");
    // carol registers with her password once the server has her
    let mut carol = Ua::udp("carol", s.addr());
    carol.password = "carol's secret".into();
    wait_until("carol may register", Duration::from_secs(15), || {
        carol.register(60).status() == Some(200)
    });

    // Set-CsUserPassword: the old password stops working, the new one works; audited redacted
    let (ok, out) = confab_as_admin(
        s.data(),
        &[
            "shell",
            "-c",
            "Set-CsUserPassword -Identity sip:user0001@example.test -Password 'brand new secret'",
        ],
    );
    assert!(ok, "{out}");
    let mut new = Ua::udp("user0001", s.addr());
    new.password = "brand new secret".into();
    wait_until("the new password works", Duration::from_secs(15), || {
        new.register(60).status() == Some(200)
    });
    let mut old = Ua::udp("user0001", s.addr());
    let st = old.register(60).status().unwrap();
    assert!(st == 401 || st == 403, "the old password: {st}");
    let (ok, audit) = confab_as_admin(s.data(), &["shell", "-c", "Get-CsAuditLog | fl Command"]);
    assert!(ok, "{audit}");
    assert!(
        audit.contains("Set-CsUserPassword -Identity sip:user0001@example.test -Password ********"),
        "{audit}"
    );
    assert!(
        !audit.contains("brand new") && !audit.contains("carol's secret"),
        "{audit}"
    );
    // ... and a delegated administrator may not set it for a user outside their OU
    let (code, v) = http(
        "POST",
        &format!("{api}/cmdlets"),
        Some(&sales),
        Some(
            json!({"command": "Set-CsUserPassword -Identity sip:user0002@example.test -Password 'x y z'"}),
        ),
    );
    assert_eq!(code, 403, "{v}");
    // bad input names the parameter
    let (ok, out) = confab_as_admin(
        s.data(),
        &[
            "shell",
            "-c",
            "Set-CsUserPassword -Identity sip:user0001@example.test -Password ''",
        ],
    );
    assert!(
        !ok && out.contains("'Password'") && out.contains("password is empty"),
        "{out}"
    );

    // PUT /me/password: a wrong current password is a 403 and changes nothing
    let me = format!("{api}/me/password");
    let user2 = basic_auth("user0002@example.test:pw-user0002");
    let (code, v) = http(
        "PUT",
        &me,
        Some(&user2),
        Some(json!({"current": "wrong", "new": "mine now"})),
    );
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("current"), "{v}");
    let (code, v) = http("GET", &format!("{api}/me/pin"), Some(&user2), None);
    assert_eq!(code, 200, "the password is unchanged: {v}");
    let (code, v) = http(
        "PUT",
        &me,
        Some(&user2),
        Some(json!({"current": "pw-user0002", "new": ""})),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("'new'"), "{v}");
    let (code, v) = http(
        "PUT",
        &me,
        Some(&root),
        Some(json!({"current": "a", "new": "b"})),
    );
    assert_eq!(code, 403, "an administrator's token: {v}");
    // the right one: changed at once, for the web and for SIP
    let (code, v) = http(
        "PUT",
        &me,
        Some(&user2),
        Some(json!({"current": "pw-user0002", "new": "mine now"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["user"], json!("sip:user0002@example.test"), "{v}");
    let (code, _) = http("GET", &format!("{api}/me/pin"), Some(&user2), None);
    assert_eq!(code, 401, "the old password no longer signs in");
    let (code, _) = http(
        "GET",
        &format!("{api}/me/pin"),
        Some(&basic_auth("user0002@example.test:mine now")),
        None,
    );
    assert_eq!(code, 200);
    let mut u2 = Ua::udp("user0002", s.addr());
    u2.password = "mine now".into();
    wait_until(
        "user0002's new password works for SIP",
        Duration::from_secs(15),
        || u2.register(60).status() == Some(200),
    );
    let (ok, audit) = confab_as_admin(
        s.data(),
        &["shell", "-c", "Get-CsAuditLog | fl Admin, Command, Success"],
    );
    assert!(ok, "{audit}");
    assert!(audit.contains("sip:user0002@example.test"), "{audit}");
    assert!(!audit.contains("mine now"), "{audit}");

    // DELETE /users/{address}
    let (code, v) = http(
        "DELETE",
        &format!("{users}/carol@example.test"),
        Some(&sales),
        None,
    );
    assert_eq!(code, 204, "{v}");
    let (code, _) = http(
        "DELETE",
        &format!("{users}/carol@example.test"),
        Some(&root),
        None,
    );
    assert_eq!(code, 404);
}

#[test]
fn enable_user_checks_lync_parameters_and_changes_nothing_on_a_bad_one() {
    let s = Server::start(2, "");
    s.cli(ADD_ROOT);
    let sh = |script: &str| confab_as_admin(s.data(), &["shell", "-c", script]);
    let enabled = || {
        let (ok, out) = sh("Get-CsUser -Identity sip:user0001@example.test | fl Enabled");
        assert!(ok, "{out}");
        out.lines()
            .any(|l| l.starts_with("Enabled") && l.trim_end().ends_with("True"))
    };
    let (ok, out) = sh("Disable-CsUser -Identity sip:user0001@example.test");
    assert!(ok, "{out}");
    assert!(!enabled());
    // the pool the front end has joined (no site: Global) once its heartbeat is there
    wait_until("the front end's heartbeat", Duration::from_secs(10), || {
        sh("Get-CsPool").1.contains("Global")
    });
    for (script, param) in [
        ("Enable-CsUser -Identity sip:user0001@example.test -SipAddress sip:someone@example.test", "SipAddress"),
        ("Enable-CsUser -Identity sip:user0001@example.test -SipAddress user0001", "SipAddress"),
        ("Enable-CsUser -Identity sip:user0001@example.test -SipDomain other.test", "SipDomain"),
        ("Enable-CsUser -Identity sip:user0001@example.test -SipAddressType FirstLastName -SipDomain example.test", "SipAddressType"),
        ("Enable-CsUser -Identity sip:user0001@example.test -SipAddressType Nickname", "SipAddressType"),
        ("Enable-CsUser -Identity sip:user0001@example.test -RegistrarPool pool9.example.test", "RegistrarPool"),
    ] {
        let (ok, out) = sh(script);
        assert!(!ok && out.contains(&format!("'{param}'")), "{script}: {out}");
        assert!(!enabled(), "{script} changed nothing");
    }
    let (ok, out) = sh("Get-Help Enable-CsUser -Full");
    assert!(ok && out.contains("CHECKED, NOT ACTED ON"), "{out}");
    let (ok, out) = sh("Enable-CsUser -Identity sip:user0001@example.test -RegistrarPool Global -SipAddress SIP:User0001@Example.test -SipAddressType SAMAccountName -SipDomain example.test");
    assert!(ok, "{out}");
    assert!(enabled());
    // the user signs in again
    let mut ua = Ua::udp("user0001", s.addr());
    wait_until(
        "user0001 may register again",
        Duration::from_secs(15),
        || ua.register(60).status() == Some(200),
    );
}
