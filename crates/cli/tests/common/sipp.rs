//! sipp, the benchmark's load generator, as a test client: the scenarios of
//! ../shared/bench (copied in tests/sipp) at a low rate against a server, every call must
//! succeed. Needs `sipp` (Debian package sip-tester).

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const USERS: u32 = 60;

/// sipp's `[authentication]` puts the server's address in the digest `uri`, not the
/// Request-URI: confab accepts that only when told to (as bench/confab.toml does).
pub const SIPP_CONFIG: &str = "[auth]\naccept_server_digest_uri = true\n";

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// users.csv / pairs.csv like ../shared/bench/sipp/gen_csv.sh: user;auth[;peer].
pub fn write_csv(dir: &Path) {
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

pub fn sipp_args(target: SocketAddr, transport: &str, contact_port: u16) -> Vec<String> {
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
    .chain([target.to_string()])
    .collect()
}

/// Runs one sipp UAC scenario for every user; asserts all calls succeeded.
pub fn run_uac(
    target: SocketAddr,
    dir: &Path,
    transport: &str,
    xml: &str,
    csv: &str,
    contact_port: u16,
) {
    run_uac_with(
        target,
        dir,
        transport,
        xml,
        csv,
        contact_port,
        &["-key", "pub_expires2", "0"],
    );
}

pub fn run_uac_with(
    target: SocketAddr,
    dir: &Path,
    transport: &str,
    xml: &str,
    csv: &str,
    contact_port: u16,
    extra: &[&str],
) {
    let out = Command::new("timeout")
        .args(["-k", "5", "90", "sipp"])
        .args(sipp_args(target, transport, contact_port))
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
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
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

pub struct Uas(Child);
impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_uas(target: SocketAddr, dir: &Path, transport: &str, xml: &str) -> (Uas, u16) {
    let port = free_port("127.0.0.1");
    let child = Command::new("sipp")
        .args(sipp_args(target, transport, port))
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
