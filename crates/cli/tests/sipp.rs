//! Third-party clients against a running confab: the sipp scenarios of the benchmark
//! (options, reg_auth, unreg_all, message, call, publish, subscribe) over UDP and TCP at a low rate, every
//! call must succeed; and sipsak OPTIONS and REGISTER. Needs `sipp` and `sipsak`
//! (Debian packages sip-tester and sipsak; .ci/run installs them).

mod common;
use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const USERS: u32 = 60;

/// sipp's `[authentication]` puts the server's address in the digest `uri`, not the
/// Request-URI: confab accepts that only when told to (as bench/confab.toml does).
const SIPP_CONFIG: &str = "[auth]\naccept_server_digest_uri = true\n";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// users.csv / pairs.csv like ../shared/bench/sipp/gen_csv.sh: user;auth[;peer].
fn write_csv(dir: &Path) {
    let mut users = String::from("SEQUENTIAL\n");
    let mut pairs = String::from("SEQUENTIAL\n");
    for i in 0..USERS {
        let me = format!("user{i:04}");
        let peer = format!("user{:04}", (i + USERS / 2) % USERS);
        let auth = format!("[authentication username={me} password=pw-{me}]");
        users.push_str(&format!("{me};{auth}\n"));
        pairs.push_str(&format!("{me};{auth};{peer}\n"));
    }
    std::fs::write(dir.join("users.csv"), users).unwrap();
    std::fs::write(dir.join("pairs.csv"), pairs).unwrap();
}

fn sipp_args(s: &Server, transport: &str, contact_port: u16) -> Vec<String> {
    let ct = if transport == "u1" { "udp" } else { "tcp" };
    [
        "-i",
        "127.0.0.1",
        "-t",
        transport,
        "-nostdin",
        "-recv_timeout",
        "5000",
        "-timeout",
        "60",
        "-default_behaviors",
        "all,-abortunexp",
        "-key",
        "domain",
        DOMAIN,
        "-key",
        "contact_host",
        "127.0.0.1",
        "-key",
        "ct_transport",
        ct,
        "-key",
        "expires",
        "3600",
        "-key",
        "pub_expires",
        "600",
        "-key",
        "sub_expires",
        "600",
        "-key",
        "sub_expires2",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "-key".into(),
        "contact_port".into(),
        contact_port.to_string(),
    ])
    .chain([format!("127.0.0.1:{}", s.port)])
    .collect()
}

/// Runs one sipp UAC scenario for every user; asserts all calls succeeded.
fn run_uac(s: &Server, dir: &Path, transport: &str, xml: &str, csv: &str, contact_port: u16) {
    run_uac_with(
        s,
        dir,
        transport,
        xml,
        csv,
        contact_port,
        &["-key", "pub_expires2", "0"],
    );
}

fn run_uac_with(
    s: &Server,
    dir: &Path,
    transport: &str,
    xml: &str,
    csv: &str,
    contact_port: u16,
    extra: &[&str],
) {
    let out = Command::new("timeout")
        .args(["-k", "5", "90", "sipp"])
        .args(sipp_args(s, transport, contact_port))
        .args(extra)
        .arg("-sf")
        .arg(scenario(xml))
        .arg("-inf")
        .arg(dir.join(csv))
        .args([
            "-p",
            &free_port("127.0.0.1").to_string(),
            "-r",
            "30",
            "-m",
            &USERS.to_string(),
        ])
        .current_dir(dir)
        .output()
        .expect("sipp is installed (apt-get install sip-tester)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref();
    let ok_line = text
        .lines()
        .rfind(|l| l.contains("Successful call"))
        .unwrap_or("")
        .to_string();
    let count: u32 = ok_line
        .split('|')
        .nth(2)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        out.status.success() && count == USERS,
        "{xml} over {transport}: {count}/{USERS} successful (exit {:?})\n{}",
        out.status.code(),
        text.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

struct Uas(Child);
impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_uas(s: &Server, dir: &Path, transport: &str, xml: &str) -> (Uas, u16) {
    let port = free_port("127.0.0.1");
    let child = Command::new("sipp")
        .args(sipp_args(s, transport, port))
        .arg("-sf")
        .arg(scenario(xml))
        .args(["-p", &port.to_string(), "-m", "100000", "-bg"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // ready once it holds its port
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("sipp to listen", Duration::from_secs(10), || {
        if transport == "u1" {
            std::net::UdpSocket::bind(addr).is_err()
        } else {
            std::net::TcpListener::bind(addr).is_err()
        }
    });
    (Uas(child), port)
}

fn all_scenarios(transport: &str) {
    let s = Server::start(USERS, SIPP_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let unused = free_port("127.0.0.1");
    run_uac(&s, dir.path(), transport, "options", "users.csv", unused);
    run_uac(&s, dir.path(), transport, "reg_auth", "users.csv", unused);
    run_uac(&s, dir.path(), transport, "unreg_all", "users.csv", unused);
    for (uas_xml, uac_xml) in [("uas_message", "uac_message"), ("uas_call", "uac_call")] {
        let (_uas, port) = start_uas(&s, dir.path(), transport, uas_xml);
        run_uac(&s, dir.path(), transport, "reg_auth", "users.csv", port);
        run_uac(&s, dir.path(), transport, uac_xml, "pairs.csv", port);
        run_uac(&s, dir.path(), transport, "unreg_all", "users.csv", port);
    }
    // presence: publish then remove; seed, then subscribe/notify/unsubscribe
    run_uac(&s, dir.path(), transport, "publish", "users.csv", unused);
    run_uac_with(
        &s,
        dir.path(),
        transport,
        "publish_seed",
        "users.csv",
        unused,
        &["-key", "pub_expires", "3600"],
    );
    run_uac(&s, dir.path(), transport, "subscribe", "pairs.csv", unused);
}

/// Kamailio 5.6 loses the document on a body-less refresh PUBLISH; confab must not:
/// publish + refresh (no body), then every subscriber must still get <basic>open</basic>.
fn refresh_keeps_document(transport: &str) {
    let s = Server::start(USERS, SIPP_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let unused = free_port("127.0.0.1");
    run_uac_with(
        &s,
        dir.path(),
        transport,
        "publish",
        "users.csv",
        unused,
        &["-key", "pub_expires2", "3600"],
    );
    run_uac(&s, dir.path(), transport, "subscribe", "pairs.csv", unused);
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
    let text =
        String::from_utf8_lossy(&bad.stdout).to_string() + String::from_utf8_lossy(&bad.stderr).as_ref();
    assert!(
        !bad.status.success() && text.contains("authorization failed"),
        "{text}"
    );
}
