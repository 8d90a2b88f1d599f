//! Third-party clients against a running confab: the sipp scenarios of the benchmark
//! (options, reg_auth, unreg_all, message, call, publish, subscribe) over UDP and TCP at a low rate, every
//! call must succeed; and sipsak OPTIONS and REGISTER. Needs `sipp` and `sipsak`
//! (Debian packages sip-tester and sipsak; .ci/run installs them).

mod common;
use common::sipp::*;
use common::*;
use std::process::Command;

fn all_scenarios(transport: &str) {
    let s = Server::start(USERS, SIPP_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let unused = free_port("127.0.0.1");
    run_uac(
        s.addr(),
        dir.path(),
        transport,
        "options",
        "users.csv",
        unused,
    );
    run_uac(
        s.addr(),
        dir.path(),
        transport,
        "reg_auth",
        "users.csv",
        unused,
    );
    run_uac(
        s.addr(),
        dir.path(),
        transport,
        "unreg_all",
        "users.csv",
        unused,
    );
    for (uas_xml, uac_xml) in [("uas_message", "uac_message"), ("uas_call", "uac_call")] {
        let (_uas, port) = start_uas(s.addr(), dir.path(), transport, uas_xml);
        run_uac(
            s.addr(),
            dir.path(),
            transport,
            "reg_auth",
            "users.csv",
            port,
        );
        run_uac(s.addr(), dir.path(), transport, uac_xml, "pairs.csv", port);
        run_uac(
            s.addr(),
            dir.path(),
            transport,
            "unreg_all",
            "users.csv",
            port,
        );
    }
    // presence: publish then remove; seed, then subscribe/notify/unsubscribe
    run_uac(
        s.addr(),
        dir.path(),
        transport,
        "publish",
        "users.csv",
        unused,
    );
    run_uac_with(
        s.addr(),
        dir.path(),
        transport,
        "publish_seed",
        "users.csv",
        unused,
        &["-key", "pub_expires", "3600"],
    );
    run_uac(
        s.addr(),
        dir.path(),
        transport,
        "subscribe",
        "pairs.csv",
        unused,
    );
}

/// Kamailio 5.6 loses the document on a body-less refresh PUBLISH; confab must not:
/// publish + refresh (no body), then every subscriber must still get <basic>open</basic>.
fn refresh_keeps_document(transport: &str) {
    let s = Server::start(USERS, SIPP_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let unused = free_port("127.0.0.1");
    run_uac_with(
        s.addr(),
        dir.path(),
        transport,
        "publish",
        "users.csv",
        unused,
        &["-key", "pub_expires2", "3600"],
    );
    run_uac(
        s.addr(),
        dir.path(),
        transport,
        "subscribe",
        "pairs.csv",
        unused,
    );
}

#[test]
fn sipp_publish_refresh_keeps_the_document_udp() {
    refresh_keeps_document("u1");
}

#[test]
fn sipp_publish_refresh_keeps_the_document_tcp() {
    refresh_keeps_document("t1");
}

#[test]
fn sipp_scenarios_over_udp() {
    all_scenarios("u1");
}

#[test]
fn sipp_scenarios_over_tcp() {
    all_scenarios("t1");
}

#[test]
fn sipsak_options_and_register() {
    // sipsak 0.9.8 cuts five-digit ports short in its URIs: use a four-digit one
    let s = Server::start_with("127.0.0.1", free_port_in(5400..5500), 5, "");
    let target = format!("sip:127.0.0.1:{}", s.port);
    let out = Command::new("sipsak")
        .args(["-s", &target, "-vv"])
        .output()
        .expect("sipsak is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("SIP/2.0 200 OK"),
        "{text}"
    );

    // usrloc mode: register, check, unregister; -u gives the digest user name
    let sipsak_reg = |password: &str| {
        Command::new("sipsak")
            .args(["-U", "-x", "120", "-C", "sip:user0001@127.0.0.1:5999", "-s"])
            .arg(format!("sip:user0001@127.0.0.1:{}", s.port))
            .args(["-u", "user0001", "-a", password, "-vv"])
            .output()
            .unwrap()
    };
    let good = sipsak_reg("pw-user0001");
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success() && text.contains("usrloc tests completed successful"),
        "{text}"
    );
    let bad = sipsak_reg("wrong");
    let text = String::from_utf8_lossy(&bad.stdout).to_string()
        + String::from_utf8_lossy(&bad.stderr).as_ref();
    assert!(
        !bad.status.success() && text.contains("authorization failed"),
        "{text}"
    );
}
