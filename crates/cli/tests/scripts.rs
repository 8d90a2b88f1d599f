//! Server applications (SIP filter scripts) with the real binary: applications created with
//! `confab shell -c 'New-CsServerApplication ...'`, then SIP requests and their effect; the
//! example scripts; a looping script; Critical and non-critical scripts that fail to load.

mod common;
use common::*;
use confab_sip::{HeaderName, Message, Method};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/examples")
}

/// The first administrator, then the scripts in <data>/scripts.
fn prepare(data: &Path, scripts: &[(&str, &str)]) {
    let (ok, out) = confab_as_admin(data, ADD_ROOT);
    assert!(ok, "{out}");
    std::fs::create_dir_all(data.join("scripts")).unwrap();
    for (name, source) in scripts {
        std::fs::write(data.join("scripts").join(name), source).unwrap();
    }
}

fn shell(data: &Path, script: &str) {
    let (ok, out) = confab_as_admin(data, &["shell", "-c", script]);
    assert!(ok, "{script}\n{out}");
}

fn new_app(data: &Path, name: &str, script: &str, critical: bool, priority: i64) {
    let crit = if critical { "$true" } else { "$false" };
    shell(
        data,
        &format!(
            "New-CsServerApplication -Identity Service:Registrar:pool.example.test/{name} -Uri http://example.test/{name} \
             -ScriptName {script} -Enabled $true -Critical {crit} -Priority {priority}"
        ),
    );
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers
        .get(&HeaderName::parse(name.to_string().into()))
        .map(|v| v.as_str())
}

/// A request from a user of another domain, sent from `ua`'s socket.
fn foreign_request(
    ua: &mut Ua,
    method: Method,
    from: &str,
    to: &str,
    extra: &[(&str, &str)],
) -> Message {
    let mut m = ua.request(method, to, to);
    m.headers
        .set(HeaderName::From, format!("<{from}>;tag={}", ua.from_tag));
    m.headers.remove_all(&HeaderName::Contact);
    m.headers.push(
        HeaderName::Contact,
        format!("<sip:x@{}>", host_port(&ua.local)),
    );
    for (n, v) in extra {
        m.headers
            .push(HeaderName::parse(n.to_string().into()), v.to_string());
    }
    m
}

/// MESSAGE from `alice` to `bob`; returns what bob received (answered 200) and alice's final response.
fn message(alice: &mut Ua, bob: &mut Ua, extra: &[(&str, &str)]) -> (Option<Message>, Message) {
    alice.new_call();
    let mut req = alice.request(Method::Message, &bob.aor(), &bob.aor());
    for (n, v) in extra {
        req.headers
            .push(HeaderName::parse(n.to_string().into()), v.to_string());
    }
    req.set_body("text/plain", b"hello".to_vec());
    alice.send(&req);
    let seq = req.cseq().unwrap().seq;
    let mut got = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no final response");
        if let Some(m) = bob.recv_timeout(Duration::from_millis(20)) {
            if m.method() == Some(&Method::Message) {
                bob.reply(&m, 200, "bobtag");
                got = Some(m);
            }
        }
        if let Some(r) = alice.recv_timeout(Duration::from_millis(20)) {
            match r.status() {
                Some(407) if r.cseq().unwrap().seq == seq => {
                    let again = alice.authorize(&req, &r);
                    alice.send(&again);
                }
                Some(s) if s >= 200 => {
                    return (
                        got.or_else(|| bob.recv_timeout(Duration::from_millis(200))),
                        r,
                    )
                }
                _ => {}
            }
        }
    }
}

/// Waits (bounded) until the running server has reloaded its applications.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn example_scripts_and_a_looping_script_on_a_running_server() {
    let s = Server::start(3, "");
    let read = |n: &str| std::fs::read_to_string(examples().join(n)).unwrap();
    prepare(
        s.data(),
        &[
            ("add_header.rhai", &read("add_header.rhai")),
            ("block_domain.rhai", &read("block_domain.rhai")),
            (
                "hide_presence_from_federation.rhai",
                &read("hide_presence_from_federation.rhai"),
            ),
            ("spin.rhai", "let n = 0; loop { n += 1; }"),
        ],
    );
    // federation with partner.test, whose Edge is 127.0.0.2
    shell(
        s.data(),
        "Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true",
    );
    shell(s.data(), "New-CsAllowedDomain -Identity partner.test");
    shell(
        s.data(),
        r#"$r = New-CsStaticRoute -TCPRoute -Destination "127.0.0.2" -Port 5099 -MatchUri "partner.test"; Set-CsStaticRoutingConfiguration -Identity global -Route @{Add=$r}"#,
    );
    shell(
        s.data(),
        "Set-CsExternalAccessPolicy -Identity Global -EnableFederationAccess $true",
    );

    let mut alice = Ua::udp("user0000", s.addr());
    let mut bob = Ua::udp("user0001", s.addr());
    assert_eq!(bob.register(600).status(), Some(200));

    // add_header: a stamped header arrives, the internal one is stripped
    new_app(s.data(), "AddHeader", "add_header.rhai", false, 1);
    until("the add_header application", || {
        let (got, resp) = message(&mut alice, &mut bob, &[("X-Internal-Note", "secret")]);
        assert_eq!(resp.status(), Some(200));
        let got = got.expect("bob got the MESSAGE");
        match header(&got, "X-Confab-Filter") {
            Some(v) => {
                assert_eq!(v, "MESSAGE from 127.0.0.1 over udp");
                assert!(header(&got, "X-Internal-Note").is_none(), "stripped");
                true
            }
            None => false,
        }
    });

    // block_domain: requests from the blocked domain get 403
    new_app(s.data(), "BlockDomain", "block_domain.rhai", true, 2);
    let mut spammer = Ua::udp_on("127.0.0.2", "spam", s.addr());
    until("the block_domain application", || {
        spammer.new_call();
        let req = foreign_request(
            &mut spammer,
            Method::Message,
            "sip:spam@blocked.example",
            &bob.aor(),
            &[],
        );
        spammer.send(&req);
        let r = spammer.expect_response(&Method::Message, req.cseq().unwrap().seq, 200..=699);
        r.status() == Some(403)
            && r.reason().unwrap().as_str() == "Domain blocked.example is blocked"
    });

    // hide_presence_from_federation: a partner's presence subscription is refused, its IM passes
    new_app(
        s.data(),
        "HidePresence",
        "hide_presence_from_federation.rhai",
        true,
        3,
    );
    let mut partner = Ua::udp_on("127.0.0.2", "zoe", s.addr());
    until("the hide_presence application", || {
        partner.new_call();
        let req = foreign_request(
            &mut partner,
            Method::Subscribe,
            "sip:zoe@partner.test",
            &bob.aor(),
            &[("Event", "presence"), ("Expires", "600")],
        );
        partner.send(&req);
        let r = partner.expect_response(&Method::Subscribe, req.cseq().unwrap().seq, 200..=699);
        r.status() == Some(403)
            && r.reason().unwrap().as_str() == "Presence is not shared with federated partners"
    });
    partner.new_call();
    let mut im = foreign_request(
        &mut partner,
        Method::Message,
        "sip:zoe@partner.test",
        &bob.aor(),
        &[],
    );
    im.set_body("text/plain", b"hi from the partner".to_vec());
    partner.send(&im);
    let got = bob.expect_request(Method::Message);
    assert_eq!(&got.body[..], b"hi from the partner");
    assert_eq!(
        header(&got, "X-Confab-Filter"),
        Some("MESSAGE from 127.0.0.2 over udp")
    );
    bob.reply(&got, 200, "bobtag2");
    assert_eq!(
        partner
            .expect_response(&Method::Message, im.cseq().unwrap().seq, 200..=699)
            .status(),
        Some(200)
    );
    // a local watcher still gets presence
    alice.new_call();
    let mut sub = alice.request(Method::Subscribe, &bob.aor(), &bob.aor());
    sub.headers.push(HeaderName::Event, "presence");
    sub.headers.push(HeaderName::Expires, "600");
    assert_eq!(alice.send_authenticated(sub).status(), Some(200));

    // a script that loops is stopped by its limit; as a non-critical application the
    // message passes, and the failure is logged
    shell(
        s.data(),
        "Remove-CsServerApplication -Identity Service:Registrar:pool.example.test/AddHeader",
    );
    new_app(s.data(), "Spin", "spin.rhai", false, 0);
    until("the spinning application", || {
        s.log_text()
            .contains("Service:Registrar:pool.example.test/Spin")
    });
    let t = Instant::now();
    let (got, resp) = message(&mut alice, &mut bob, &[]);
    assert_eq!(resp.status(), Some(200));
    assert!(
        got.is_some_and(|m| header(&m, "X-Confab-Filter").is_none()),
        "AddHeader was removed"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    until("the logged failure", || {
        s.log_text().contains("filter script failed")
    });
    let log = s.log_text();
    assert!(
        log.contains("Too many operations") || log.contains("Script terminated"),
        "{log}"
    );
}

/// `confab serve` on a prepared data directory: (exited with failure, log) within 20 s.
fn serve_outcome(data: &Path) -> (Option<bool>, String) {
    let port = free_port("127.0.0.1");
    let cfg = data.join("confab.toml");
    std::fs::write(
        &cfg,
        format!("listen = [\"127.0.0.1:{port}\"]\ndomains = [\"{DOMAIN}\"]\n"),
    )
    .unwrap();
    let log = data.join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut exited = None;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            exited = Some(!st.success());
            break;
        }
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    (exited, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn a_critical_script_that_fails_to_load_stops_startup() {
    let d = tempfile::tempdir().unwrap();
    prepare(d.path(), &[("broken.rhai", "let x = 1;\nlet y = ;\n")]);
    new_app(d.path(), "Broken", "broken.rhai", true, 0);
    let (failed, log) = serve_outcome(d.path());
    assert_eq!(failed, Some(true), "the server must not start:\n{log}");
    assert!(
        log.contains("Service:Registrar:pool.example.test/Broken") && log.contains("line 2"),
        "{log}"
    );
}

#[test]
fn a_non_critical_script_that_fails_to_load_is_skipped() {
    let d = tempfile::tempdir().unwrap();
    prepare(d.path(), &[("broken.rhai", "let x = 1;\nlet y = ;\n")]);
    new_app(d.path(), "Broken", "broken.rhai", false, 0);
    let (failed, log) = serve_outcome(d.path());
    assert_eq!(failed, None, "the server starts:\n{log}");
    assert!(
        log.contains("skipped server application Service:Registrar:pool.example.test/Broken")
            && log.contains("line 2"),
        "{log}"
    );
}
