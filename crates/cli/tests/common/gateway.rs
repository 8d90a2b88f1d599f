//! sipp standing in as a PSTN gateway (or a voicemail server): a UAS over TCP on a loopback
//! address that answers every INVITE as told and keeps what it received.

use super::wait_until;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How a sipp gateway answers an INVITE.
#[derive(Clone, Copy)]
pub enum Answer {
    /// 180, 200, then takes the ACK and the BYE.
    Ok,
    /// 100 then this final status, then takes the ACK.
    Fail(u16),
    /// Nothing at all: takes the INVITE and stays silent.
    Silent,
}

fn gateway_scenario(a: Answer) -> String {
    let head = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="gateway">
  <recv request="INVITE" crlf="true"/>
{trying}"#;
    let trying_send = r#"  <send><![CDATA[
SIP/2.0 100 Trying
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"#;
    let reply = |status: u16, reason: &str| {
        format!(
            r#"  <send><![CDATA[
SIP/2.0 {status} {reason}
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=gw[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:gw@[local_ip]:[local_port];transport=tcp>
Content-Length: 0

]]></send>
"#
        )
    };
    let head = head.replace(
        "{trying}",
        if matches!(a, Answer::Silent) {
            ""
        } else {
            trying_send
        },
    );
    let body = match a {
        Answer::Ok => format!(
            "{}{}  <recv request=\"ACK\"/>\n  <recv request=\"BYE\"/>\n{}",
            reply(180, "Ringing"),
            reply(200, "OK"),
            reply(200, "OK")
        ),
        Answer::Fail(s) => format!("{}  <recv request=\"ACK\"/>\n", reply(s, "Failed")),
        Answer::Silent => "  <pause milliseconds=\"60000\"/>\n".to_string(),
    };
    format!("{head}{body}</scenario>\n")
}

/// A sipp UAS on `ip:port` over TCP answering every call as told; keeps what it received.
pub struct Gateway {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub fn start(ip: &str, port: u16, a: Answer) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let sf = dir.path().join("gw.xml");
        std::fs::write(&sf, gateway_scenario(a)).unwrap();
        let log = dir.path().join("messages.log");
        // sipp itself (not under timeout(1), whose death would leave sipp running), ended
        // by Drop, or by its own global timeout; its control socket on a free port
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&sf)
            .args([
                "-i",
                ip,
                "-p",
                &port.to_string(),
                "-t",
                "t1",
                "-nostdin",
                "-timeout",
                "120",
            ])
            .args(["-cp", &free_udp_port(ip).to_string()])
            .args(["-trace_msg", "-message_file"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp is installed (apt-get install sip-tester)");
        let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
        wait_until("the sipp gateway listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        Gateway {
            child,
            log,
            _dir: dir,
        }
    }

    /// The INVITEs it received, once there are `n` (sipp writes its log when it will).
    pub fn wait_invites(&self, n: usize) -> Vec<String> {
        wait_until(
            "the gateway logs the INVITEs",
            Duration::from_secs(10),
            || self.invites().len() >= n,
        );
        self.invites()
    }

    /// The INVITEs it received (their text).
    pub fn invites(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.split("----------------------------------------------- ")
            .filter(|m| m.contains("message received") && m.contains("\nINVITE "))
            .map(|m| m.to_string())
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP port nobody uses on `ip` (sipp's control socket).
pub fn free_udp_port(ip: &str) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
