use super::*;
use bytes_of::msg;

mod bytes_of {
    use confab_sip::Message;

    pub fn msg(text: &str) -> Message {
        let wire = text.replace('\n', "\r\n");
        confab_sip::parse_message(wire.into_bytes().into()).expect("test message parses")
    }
}

fn request(method: &str, from: &str, to: &str, extra: &str) -> Message {
    msg(&format!(
        "{method} sip:{to} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\nFrom: <sip:{from}>;tag=a\nTo: <sip:{to}>\n\
         Call-ID: c1\nCSeq: 1 {method}\nMax-Forwards: 70\n{extra}Content-Length: 5\n\nhello"
    ))
}

fn response(status: u16) -> Message {
    msg(&format!(
        "SIP/2.0 {status} Whatever\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\nFrom: <sip:a@x.test>;tag=a\nTo: <sip:b@x.test>;tag=b\n\
         Call-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
    ))
}

fn ctx(from_federated: bool, to_federated: bool) -> Context<'static> {
    Context {
        direction: Direction::In,
        source: "127.0.0.1:5070".parse().unwrap(),
        transport: "udp",
        from_federated,
        to_federated,
    }
}

struct Loaded {
    filters: Filters,
    errors: Vec<LoadError>,
    _dir: tempfile::TempDir,
}

/// Loads scripts given as (name, critical, priority, source).
fn load_with(scripts: &[(&str, bool, i64, &str)], limits: &Limits) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let mut apps = vec![];
    for (name, critical, priority, source) in scripts {
        std::fs::write(dir.path().join(format!("{name}.rhai")), source).unwrap();
        apps.push(AppConfig {
            identity: format!("Service:Registrar:pool.x.test/{name}"),
            uri: format!("http://x.test/{name}"),
            script_name: format!("{name}.rhai"),
            enabled: true,
            critical: *critical,
            priority: *priority,
        });
    }
    let (filters, errors) = Filters::load(&apps, dir.path(), limits);
    Loaded {
        filters,
        errors,
        _dir: dir,
    }
}

fn load(source: &str) -> Filters {
    let l = load_with(&[("t", false, 0, source)], &Limits::default());
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.filters
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

#[test]
fn no_scripts_pass() {
    let f = Filters::empty();
    assert!(f.is_empty());
    assert_eq!(
        f.run(
            &request("MESSAGE", "a@x.test", "b@x.test", ""),
            &ctx(false, false)
        ),
        Outcome::pass()
    );
}

#[test]
fn the_message_view() {
    let f = load(
        r#"
        if msg.kind == "request" && msg.method == "MESSAGE" && msg.direction == "in" && msg.status == 0
            && msg.request_uri == "sip:b@x.test" && msg.from == "sip:a@x.test" && msg.from_user == "a"
            && msg.to_domain == "x.test" && msg.body == "hello" && msg.source == "127.0.0.1:5070"
            && msg.source_ip == "127.0.0.1" && msg.source_port == 5070 && msg.transport == "udp"
            && msg.header("subject") == "hi" && msg.header("X-None") == "" && msg.headers["subject"][0] == "hi"
            && msg.call_id == "c1" && !msg.from_federated && msg.to_federated {
            respond(299, "all seen");
        }
        "#,
    );
    let out = f.run(
        &request("MESSAGE", "a@x.test", "b@x.test", "Subject: hi\n"),
        &ctx(false, true),
    );
    assert_eq!(
        out.verdict,
        Verdict::Respond {
            status: 299,
            reason: "all seen".into()
        }
    );
}

#[test]
fn each_verdict() {
    let m = request("MESSAGE", "a@x.test", "b@x.test", "");
    let c = ctx(false, false);
    assert_eq!(
        load("respond(486)").run(&m, &c).verdict,
        Verdict::Respond {
            status: 486,
            reason: "Busy Here".into()
        }
    );
    assert_eq!(
        load("drop(); respond(500, \"never\")").run(&m, &c).verdict,
        Verdict::Drop
    );
    assert_eq!(
        load("set_next_hop(\"sip:127.0.0.2:5080;transport=tcp\")")
            .run(&m, &c)
            .verdict,
        Verdict::Route("sip:127.0.0.2:5080;transport=tcp".into())
    );
    let out = load("add_header(\"X-A\", \"1\"); remove_header(\"Subject\")").run(&m, &c);
    assert_eq!(out.verdict, Verdict::Pass);
    assert_eq!(
        out.edits,
        vec![
            HeaderEdit::Add("X-A".into(), "1".into()),
            HeaderEdit::Remove("Subject".into())
        ]
    );
    let mut m2 = request("MESSAGE", "a@x.test", "b@x.test", "Subject: s\n");
    out.apply_edits(&mut m2);
    assert_eq!(
        m2.headers
            .get(&HeaderName::parse("x-a".into()))
            .unwrap()
            .as_str(),
        "1"
    );
    assert!(m2.headers.get(&HeaderName::Subject).is_none());
}

#[test]
fn bad_calls_are_script_errors_and_the_message_passes() {
    let m = request("MESSAGE", "a@x.test", "b@x.test", "");
    let c = ctx(false, false);
    for bad in [
        "add_header(\"Via\", \"x\")",
        "remove_header(\"call-id\")",
        "add_header(\"X-A\", \"1\\r\\nX-Injected: 2\")",
        "add_header(\"bad name\", \"1\")",
        "set_next_hop(\"sip:gw.example.com\")",
        "respond(100)",
        "respond(486, \"two\\nlines\")",
        "undefined_function()",
        "throw \"oops\"",
    ] {
        let out = load(bad).run(&m, &c);
        assert_eq!(out, Outcome::pass(), "{bad}");
    }
}

#[test]
fn critical_failure_answers_500() {
    let l = load_with(
        &[(
            "crit",
            true,
            0,
            "add_header(\"X-A\", \"1\"); throw \"oops\"",
        )],
        &Limits::default(),
    );
    let out = l.filters.run(
        &request("MESSAGE", "a@x.test", "b@x.test", ""),
        &ctx(false, false),
    );
    assert_eq!(
        out.verdict,
        Verdict::Respond {
            status: 500,
            reason: "Server application http://x.test/crit failed".into()
        }
    );
    assert!(out.edits.is_empty(), "a failed script's edits are ignored");
    // a response still passes
    assert_eq!(
        l.filters.run(&response(486), &ctx(false, false)),
        Outcome::pass()
    );
}

#[test]
fn responses() {
    let f = load("if msg.kind == \"response\" && msg.status == 486 && msg.method == \"INVITE\" { respond(480, \"Unavailable\") }");
    assert_eq!(
        f.run(&response(486), &ctx(false, false)).verdict,
        Verdict::Respond {
            status: 480,
            reason: "Unavailable".into()
        }
    );
    assert_eq!(
        f.run(&response(200), &ctx(false, false)).verdict,
        Verdict::Pass
    );
    // a 2xx cannot be turned into a failure, a final response cannot be dropped
    assert_eq!(
        load("respond(480)").run(&response(200), &ctx(false, false)),
        Outcome::pass()
    );
    assert_eq!(
        load("drop()").run(&response(486), &ctx(false, false)),
        Outcome::pass()
    );
    assert_eq!(
        load("drop()")
            .run(&response(180), &ctx(false, false))
            .verdict,
        Verdict::Drop
    );
}

#[test]
fn priority_order_chain_and_edits_seen_by_later_scripts() {
    let l = load_with(
        &[
            (
                "last",
                false,
                -1,
                "if msg.header(\"X-Step\") == \"1\" { respond(488, \"saw step\") }",
            ),
            ("second", false, 5, "set_next_hop(\"sip:127.0.0.9\")"),
            ("first", false, 1, "add_header(\"X-Step\", \"1\")"),
        ],
        &Limits::default(),
    );
    assert_eq!(
        l.filters
            .identities()
            .iter()
            .map(|i| i.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        ["first", "second", "last"]
    );
    let out = l.filters.run(
        &request("MESSAGE", "a@x.test", "b@x.test", ""),
        &ctx(false, false),
    );
    assert_eq!(
        out.verdict,
        Verdict::Respond {
            status: 488,
            reason: "saw step".into()
        }
    );
    assert_eq!(
        out.edits,
        vec![HeaderEdit::Add("X-Step".into(), "1".into())]
    );
}

#[test]
fn a_loop_is_stopped_by_the_operation_limit() {
    let f = load("loop { }");
    let t = Instant::now();
    assert_eq!(
        f.run(
            &request("MESSAGE", "a@x.test", "b@x.test", ""),
            &ctx(false, false)
        ),
        Outcome::pass()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_loop_is_stopped_by_the_deadline() {
    let limits = Limits {
        max_operations: 0,
        timeout: Duration::from_millis(30),
        ..Limits::default()
    };
    let l = load_with(&[("spin", true, 0, "let n = 0; loop { n += 1; }")], &limits);
    let t = Instant::now();
    let out = l.filters.run(
        &request("MESSAGE", "a@x.test", "b@x.test", ""),
        &ctx(false, false),
    );
    assert!(
        t.elapsed() >= Duration::from_millis(30) && t.elapsed() < Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(matches!(out.verdict, Verdict::Respond { status: 500, .. }));
}

#[test]
fn memory_limits_stop_huge_data() {
    let m = request("MESSAGE", "a@x.test", "b@x.test", "");
    let c = ctx(false, false);
    for hog in [
        "let s = \"xxxxxxxx\"; loop { s += s; }",
        "let a = []; loop { a.push(1); }",
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        "fn f(n) { f(n + 1) } f(0)",
    ] {
        let l = load_with(&[("hog", true, 0, hog)], &Limits::default());
        assert!(
            matches!(
                l.filters.run(&m, &c).verdict,
                Verdict::Respond { status: 500, .. }
            ),
            "{hog}"
        );
    }
}

#[test]
fn load_errors_name_the_line() {
    let l = load_with(
        &[
            ("bad", true, 0, "let x = 1;\nlet y = ;\n"),
            ("good", false, 0, "drop()"),
        ],
        &Limits::default(),
    );
    assert_eq!(l.errors.len(), 1);
    let e = l.errors[0].to_string();
    assert!(
        e.contains("bad.rhai") && e.contains("line 2") && l.errors[0].critical,
        "{e}"
    );
    assert_eq!(l.filters.identities().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let missing = AppConfig {
        identity: "Service:Registrar:p/m".into(),
        uri: "http://x/m".into(),
        script_name: "nope.rhai".into(),
        enabled: true,
        critical: false,
        priority: 0,
    };
    let disabled = AppConfig {
        enabled: false,
        ..missing.clone()
    };
    let (f, errors) = Filters::load(&[missing, disabled], dir.path(), &Limits::default());
    assert!(f.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("cannot read"), "{}", errors[0]);
}

#[test]
fn sandbox_has_no_modules_or_eval() {
    let l = load_with(
        &[("imp", false, 0, "import \"x\" as x;")],
        &Limits::default(),
    );
    assert!(
        l.errors.len() == 1
            || l.filters.run(
                &request("MESSAGE", "a@x.test", "b@x.test", ""),
                &ctx(false, false)
            ) == Outcome::pass()
    );
    let l = load_with(&[("ev", false, 0, "eval(\"drop()\")")], &Limits::default());
    assert_eq!(l.errors.len(), 1, "eval is not a function scripts may call");
}

#[test]
fn example_hide_presence_from_federation() {
    let f = load(&example("hide_presence_from_federation.rhai"));
    let presence = "Event: presence\n";
    // a federated watcher is refused, a local one is not
    let sub = request("SUBSCRIBE", "z@y.test", "a@x.test", presence);
    assert!(matches!(
        f.run(&sub, &ctx(true, false)).verdict,
        Verdict::Respond { status: 403, .. }
    ));
    assert_eq!(f.run(&sub, &ctx(false, false)).verdict, Verdict::Pass);
    // a local user subscribing to a partner, publishing to one, and winfo too
    assert!(matches!(
        f.run(
            &request(
                "SUBSCRIBE",
                "a@x.test",
                "z@y.test",
                "Event: presence.winfo\n"
            ),
            &ctx(false, true)
        )
        .verdict,
        Verdict::Respond { status: 403, .. }
    ));
    assert!(matches!(
        f.run(
            &request("NOTIFY", "a@x.test", "z@y.test", presence),
            &ctx(false, true)
        )
        .verdict,
        Verdict::Respond { status: 403, .. }
    ));
    // IM and other event packages pass
    assert_eq!(
        f.run(
            &request("MESSAGE", "z@y.test", "a@x.test", ""),
            &ctx(true, false)
        )
        .verdict,
        Verdict::Pass
    );
    assert_eq!(
        f.run(
            &request("SUBSCRIBE", "z@y.test", "a@x.test", "Event: dialog\n"),
            &ctx(true, false)
        )
        .verdict,
        Verdict::Pass
    );
    assert_eq!(
        f.run(&response(200), &ctx(true, false)).verdict,
        Verdict::Pass
    );
}

#[test]
fn example_block_domain() {
    let f = load(&example("block_domain.rhai"));
    let out = f.run(
        &request("MESSAGE", "spam@blocked.example", "a@x.test", ""),
        &ctx(true, false),
    );
    assert_eq!(
        out.verdict,
        Verdict::Respond {
            status: 403,
            reason: "Domain blocked.example is blocked".into()
        }
    );
    assert!(matches!(
        f.run(
            &request("INVITE", "a@x.test", "b@sub.blocked.example", ""),
            &ctx(false, true)
        )
        .verdict,
        Verdict::Respond { status: 403, .. }
    ));
    assert_eq!(
        f.run(
            &request("MESSAGE", "a@notblocked.example", "a@x.test", ""),
            &ctx(true, false)
        )
        .verdict,
        Verdict::Pass
    );
}

#[test]
fn example_add_header() {
    let f = load(&example("add_header.rhai"));
    let out = f.run(
        &request(
            "MESSAGE",
            "a@x.test",
            "b@x.test",
            "X-Internal-Note: secret\n",
        ),
        &ctx(false, false),
    );
    assert_eq!(out.verdict, Verdict::Pass);
    let mut m = request(
        "MESSAGE",
        "a@x.test",
        "b@x.test",
        "X-Internal-Note: secret\n",
    );
    out.apply_edits(&mut m);
    assert_eq!(
        m.headers
            .get(&HeaderName::parse("X-Confab-Filter".into()))
            .unwrap()
            .as_str(),
        "MESSAGE from 127.0.0.1 over udp"
    );
    assert!(m
        .headers
        .get(&HeaderName::parse("X-Internal-Note".into()))
        .is_none());
}

#[test]
fn changed_files_are_noticed() {
    let l = load_with(&[("t", false, 0, "drop()")], &Limits::default());
    assert!(!l.filters.changed_on_disk());
    std::fs::remove_file(l._dir.path().join("t.rhai")).unwrap();
    assert!(l.filters.changed_on_disk());
}
