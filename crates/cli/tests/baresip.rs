//! Two real baresip clients (Debian package baresip-core, 1.0.0) against a running confab,
//! all on 127.0.0.1: both register (401 digest challenge, then 200), user0001 sends an
//! instant MESSAGE to user0002, then calls user0002 (INVITE answered with /accept, ACK,
//! hung up with BYE 200), everything through confab (outbound proxy + Record-Route).
//! A second test loads baresip's presence module in both clients: each watches the other
//! through confab's presence server (SUBSCRIBE/NOTIFY, PUBLISH), and sees it go offline,
//! online again, and offline when it quits.
//!
//! baresip is driven through its `stdio` UI module (commands written to its stdin, its
//! console output read back); confab runs with `--sip-trace` so the test can also check
//! the messages that crossed the proxy. Ports: 5300-5399 only. No DNS: the domain
//! example.test is never resolved (the outbound proxy is an IP address, `dns_server` points
//! at 127.0.0.1, and all media/SIP addresses are 127.0.0.1).
//!
//! confab runs with its defaults: in particular MD5-only challenges. baresip 1.0.0 uses
//! libre 1.1.0, whose digest client (src/sip/auth.c) aborts with ENOSYS ("Register: Function
//! not implemented") as soon as *any* WWW-/Proxy-Authenticate header has an algorithm other
//! than MD5, which is why `[auth] sha256` is off by default.

#[path = "common/console.rs"]
mod console;

use console::{port_free, Log};
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";
/// Everything (setup, registration, message, call) must be done within this.
const TOTAL: Duration = Duration::from_secs(50);
/// One step (waiting for one output line) may take at most this long.
const STEP: Duration = Duration::from_secs(15);

/// Port plan inside one free block of 25 ports: confab, two SIP ports per client
/// (baresip binds UDP+TCP on the port and TLS on port+1), ten RTP ports per client.
struct Ports {
    confab: u16,
    sip: [u16; 2],
    rtp: [u16; 2],
}

/// Blocks already taken by a test of this process (the tests run in parallel threads, and a
/// block stays free to `port_free` until its processes have bound it).
static CLAIMED: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn pick_ports() -> Ports {
    let mut claimed = CLAIMED.lock().unwrap();
    for base in (5300u16..=5375).step_by(25) {
        if !claimed.contains(&base) && (base..base + 25).all(port_free) {
            claimed.push(base);
            return Ports {
                confab: base,
                sip: [base + 2, base + 4],
                rtp: [base + 6, base + 16],
            };
        }
    }
    panic!("no block of 25 free ports in 127.0.0.1:5300-5399");
}

struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: Log,
    /// Set once the test asked the process to quit: its exit is then no failure.
    may_exit: bool,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e} ({cmd:?})"));
        let log = Log::default();
        log.attach(child.stdout.take().unwrap());
        log.attach(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Proc {
            name: name.to_string(),
            child,
            stdin,
            log,
            may_exit: false,
        }
    }
}

/// Owns every process of the test; kills them all when dropped (also on panic), and on
/// panic prints their output.
struct Procs {
    list: Vec<Proc>,
    start: Instant,
    /// The test's directory (data, configs): removed after the processes are gone.
    _tmp: tempfile::TempDir,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.list {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if std::thread::panicking() {
            for p in &self.list {
                eprintln!("\n======== output of {} ========\n{}", p.name, p.log.text());
            }
        }
    }
}

impl Procs {
    fn get(&mut self, name: &str) -> &mut Proc {
        self.list.iter_mut().find(|p| p.name == name).unwrap()
    }

    fn log(&self, name: &str) -> String {
        self.list
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .log
            .text()
    }

    /// Types one command line into baresip's stdio UI ("/dial ...", "/accept", ...).
    fn command(&mut self, name: &str, line: &str) {
        eprintln!(
            "[{:5.1}s] {name} <- {line}",
            self.start.elapsed().as_secs_f32()
        );
        let p = self.get(name);
        let stdin = p.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until the output of `name` contains `needle` at or after byte `from`; returns
    /// the byte offset just after the first such occurrence.
    fn wait_for(&mut self, name: &str, what: &str, from: usize, needle: &str) -> usize {
        self.wait_until(name, what, |text| {
            text.get(from..)
                .and_then(|t| t.find(needle))
                .map(|i| from + i + needle.len())
        })
    }

    /// Waits until `pred` returns Some for the output of `name`. Fails if a process died
    /// or time ran out.
    fn wait_until(
        &mut self,
        name: &str,
        what: &str,
        pred: impl Fn(&str) -> Option<usize>,
    ) -> usize {
        let deadline = (Instant::now() + STEP).min(self.start + TOTAL);
        loop {
            let text = self.log(name);
            if let Some(pos) = pred(&text) {
                eprintln!(
                    "[{:5.1}s] {name}: {what}",
                    self.start.elapsed().as_secs_f32()
                );
                return pos;
            }
            self.check_alive(name, what);
            if Instant::now() > deadline {
                panic!("timed out waiting for {name}: {what}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if a process exited that was not asked to.
    fn check_alive(&mut self, name: &str, what: &str) {
        for p in self.list.iter_mut().filter(|p| !p.may_exit) {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("{} exited ({st}) while waiting for {name}: {what}", p.name);
            }
        }
    }

    /// Lists baresip's contacts (`/contacts`, which shows the presence state of each one
    /// when the presence module is loaded) until the entry of `peer` shows `status`
    /// ("Online", "Offline", "Busy" or "Unknown").
    fn wait_contact_status(&mut self, name: &str, peer: &str, status: &str) {
        let what = format!("/contacts shows {peer} {status}");
        let deadline = (Instant::now() + STEP).min(self.start + TOTAL);
        let uri = format!("<sip:{peer}@{DOMAIN}>");
        let mut last = String::new();
        loop {
            let from = self.log(name).len();
            {
                let stdin = self.get(name).stdin.as_mut().unwrap();
                stdin.write_all(b"/contacts\n").unwrap();
                stdin.flush().unwrap();
            }
            // The list is printed at once: its header, then one line per contact.
            let listed = Instant::now() + Duration::from_secs(1);
            while Instant::now() < listed {
                let text = self.log(name);
                let entry = text.get(from..).and_then(|t| {
                    let list = &t[t.find("--- Contacts")?..];
                    list.lines().find(|l| l.contains(&uri)).map(str::to_string)
                });
                if let Some(entry) = entry {
                    last = entry;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if last.split_whitespace().any(|w| w == status) {
                eprintln!(
                    "[{:5.1}s] {name}: {what}: {}",
                    self.start.elapsed().as_secs_f32(),
                    last.trim()
                );
                return;
            }
            self.check_alive(name, &what);
            if Instant::now() > deadline {
                panic!("timed out waiting for {name}: {what} (last listed: {last:?})");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits (bounded) for a process that was asked to quit to exit by itself.
    fn wait_exit(&mut self, name: &str) -> std::process::ExitStatus {
        let deadline = (Instant::now() + STEP).min(self.start + TOTAL);
        loop {
            if let Some(st) = self.get(name).child.try_wait().unwrap() {
                eprintln!(
                    "[{:5.1}s] {name} exited ({st})",
                    self.start.elapsed().as_secs_f32()
                );
                return st;
            }
            self.check_alive(name, "its exit");
            if Instant::now() > deadline {
                panic!("timed out waiting for {name} to exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn confab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_confab"))
}

/// Sends SIP OPTIONS over UDP until confab answers 200 (bounded).
fn wait_server_ready(port: u16, procs: &mut Procs) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0.. {
        let req = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{i};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{DOMAIN}>;tag=ready{i}\r\n\
             To: <sip:127.0.0.1:{port}>\r\n\
             Call-ID: ready-{i}-{}@127.0.0.1\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            std::process::id()
        );
        let _ = sock.send_to(req.as_bytes(), ("127.0.0.1", port));
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if buf[..n].starts_with(b"SIP/2.0 200") {
                return;
            }
        }
        if let Ok(Some(st)) = procs.get("confab").child.try_wait() {
            panic!("confab exited ({st}) before answering OPTIONS");
        }
        assert!(
            Instant::now() < deadline,
            "confab did not answer OPTIONS on 127.0.0.1:{port}"
        );
    }
}

/// baresip configuration directory for one client: config, accounts, contacts. With
/// `presence`, the presence module is loaded, the account publishes its state
/// (`pubint`) and the peer's contact entry is subscribed to (`;presence=p2p`: in baresip
/// 1.0.0 the only contacts the presence module SUBSCRIBEs to; the SUBSCRIBE goes to the
/// contact's AOR through the outbound proxy, so confab answers it).
fn baresip_dir(
    root: &Path,
    idx: usize,
    user: &str,
    peer: &str,
    ports: &Ports,
    presence: bool,
) -> PathBuf {
    let dir = root.join(user);
    std::fs::create_dir_all(&dir).unwrap();
    let (sip, rtp) = (ports.sip[idx], ports.rtp[idx]);
    // No audio hardware: ausine (48 kHz stereo sine) as source, resampled to PCMU; the
    // aubridge module as a sink that plays to nowhere.
    let config = format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip}\n\
         net_interface\t\t127.0.0.1\n\
         dns_server\t\t127.0.0.1:53\n\
         call_local_timeout\t60\n\
         call_max_calls\t\t4\n\
         audio_player\t\taubridge,{user}\n\
         audio_alert\t\taubridge,{user}\n\
         audio_source\t\tausine,440\n\
         ausrc_srate\t\t48000\n\
         ausrc_channels\t\t2\n\
         rtp_ports\t\t{rtp}-{}\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tstdio.so\n\
         module\t\t\tg711.so\n\
         module\t\t\tausine.so\n\
         module\t\t\taubridge.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tcontact.so\n\
         module_app\t\tmenu.so\n\
         {}",
        rtp + 9,
        if presence {
            "module_app\t\tpresence.so\n"
        } else {
            ""
        }
    );
    std::fs::write(dir.join("config"), config).unwrap();
    let account = format!(
        "<sip:{user}@{DOMAIN}>;auth_pass=pw-{user};outbound=\"sip:127.0.0.1:{};transport=udp\";regint=600;{}answermode=manual\n",
        ports.confab,
        if presence { "pubint=600;" } else { "" }
    );
    std::fs::write(dir.join("accounts"), account).unwrap();
    // The contact module's /message sends to the current contact: the first (only) one.
    let params = if presence { ";presence=p2p" } else { "" };
    std::fs::write(
        dir.join("contacts"),
        format!("\"peer\" <sip:{peer}@{DOMAIN}>{params}\n"),
    )
    .unwrap();
    dir
}

/// One SIP message from confab's --sip-trace output.
#[derive(Debug)]
struct Traced {
    /// "recv" or "send"
    dir: &'static str,
    /// peer address, e.g. "127.0.0.1:5304"
    peer: String,
    start: String,
    text: String,
}

impl Traced {
    fn cseq_method(&self) -> &str {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("CSeq:").or_else(|| l.strip_prefix("cseq:")))
            .and_then(|v| v.split_whitespace().nth(1))
            .unwrap_or("")
    }
    fn is_response(&self, code: &str, method: &str) -> bool {
        self.start.starts_with(&format!("SIP/2.0 {code}")) && self.cseq_method() == method
    }
    fn is_request(&self, method: &str) -> bool {
        self.start.starts_with(&format!("{method} "))
    }
}

/// Splits the trace at its "recv from UDP a:p" / "send to UDP a:p" log lines.
fn parse_trace(log: &str) -> Vec<Traced> {
    let mut out: Vec<Traced> = Vec::new();
    for line in log.lines() {
        let marker = [("recv from ", "recv"), ("send to ", "send")]
            .into_iter()
            .find_map(|(m, d)| {
                line.find(m)
                    .filter(|_| line.contains(" INFO"))
                    .map(|i| (d, &line[i + m.len()..]))
            });
        if let Some((dir, rest)) = marker {
            // rest = "UDP 127.0.0.1:5304"
            let peer = rest.split_whitespace().last().unwrap_or("").to_string();
            out.push(Traced {
                dir,
                peer,
                start: String::new(),
                text: String::new(),
            });
            continue;
        }
        if let Some(m) = out.last_mut() {
            if m.start.is_empty() && !line.trim().is_empty() {
                m.start = line.trim().to_string();
            }
            m.text.push_str(line);
            m.text.push('\n');
        }
    }
    out
}

fn find<'a>(trace: &'a [Traced], what: &str, pred: impl Fn(&Traced) -> bool) -> &'a Traced {
    trace
        .iter()
        .find(|m| pred(m))
        .unwrap_or_else(|| panic!("not in confab's SIP trace: {what}"))
}

/// Starts everything a test needs: confab (seeded users, --sip-trace) and two baresip
/// clients user0001 and user0002, each with the other as its contact.
fn start(t0: Instant, presence: bool) -> (Procs, Ports) {
    if Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        panic!("baresip is not installed (apt-get install -y baresip-core)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let root = root.as_path();
    let data = root.join("data");
    let ports = pick_ports();
    eprintln!(
        "ports: confab {}, baresip sip {:?}, rtp {:?}+10",
        ports.confab, ports.sip, ports.rtp
    );

    let out = confab()
        .args(["user", "seed", "--init", "--data"])
        .arg(&data)
        .args(["--domain", DOMAIN, "--count", "10"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut procs = Procs {
        list: Vec::new(),
        start: t0,
        _tmp: tmp,
    };
    let mut cmd = confab();
    cmd.arg("serve").arg("--data").arg(&data).args([
        "--listen",
        &format!("127.0.0.1:{}", ports.confab),
        "--domain",
        DOMAIN,
        "--sip-trace",
    ]);
    procs.list.push(Proc::spawn("confab", cmd));
    wait_server_ready(ports.confab, &mut procs);
    eprintln!(
        "[{:5.1}s] confab is answering on 127.0.0.1:{}",
        t0.elapsed().as_secs_f32(),
        ports.confab
    );

    let (a, b) = ("user0001", "user0002");
    for (idx, (me, peer)) in [(a, b), (b, a)].into_iter().enumerate() {
        let dir = baresip_dir(root, idx, me, peer, &ports, presence);
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir).current_dir(&dir);
        procs.list.push(Proc::spawn(me, cmd));
    }
    (procs, ports)
}

#[test]
fn baresip_register_message_call() {
    let t0 = Instant::now();
    let (mut procs, ports) = start(t0, false);
    let (a, b) = ("user0001", "user0002");

    // 1. Both register: 401 challenge answered, 200 OK.
    let mut pos_a = procs.wait_for(
        a,
        "registered (200 OK)",
        0,
        &format!("{a}@{DOMAIN}: {{0/UDP/v4}} 200 OK"),
    );
    let mut pos_b = procs.wait_for(
        b,
        "registered (200 OK)",
        0,
        &format!("{b}@{DOMAIN}: {{0/UDP/v4}} 200 OK"),
    );

    // 2. MESSAGE user0001 -> user0002 (the contact module sends to the current contact).
    let text = format!(
        "hello user0002, this is user0001 (confab e2e {})",
        std::process::id()
    );
    procs.command(a, &format!("/message {text}"));
    pos_b = procs.wait_for(
        b,
        "received the MESSAGE",
        pos_b,
        &format!("sip:{a}@{DOMAIN}: \"{text}\""),
    );

    // 3. Call: user0001 dials, user0002 accepts, both established.
    let (dial_a, dial_b) = (pos_a, pos_b);
    procs.command(a, &format!("/dial sip:{b}@{DOMAIN}"));
    pos_b = procs.wait_for(
        b,
        "incoming call",
        pos_b,
        &format!("Incoming call from:  sip:{a}@{DOMAIN}"),
    );
    procs.command(b, "/accept");
    pos_a = procs.wait_for(
        a,
        "call established",
        pos_a,
        &format!("{a}@{DOMAIN}: Call established: sip:{b}@{DOMAIN}"),
    );
    pos_b = procs.wait_for(
        b,
        "call established",
        pos_b,
        &format!("{b}@{DOMAIN}: Call established: sip:{a}@{DOMAIN}"),
    );
    // RTP flows directly between the clients, on 127.0.0.1 (logged before or after "Call
    // established": the callee may send before the caller has its 200 OK).
    for (user, from, established) in [(a, dial_a, pos_a), (b, dial_b, pos_b)] {
        let at = procs.wait_for(
            user,
            "receiving RTP from 127.0.0.1",
            from,
            "incoming rtp for 'audio' established, receiving from 127.0.0.1:",
        );
        eprintln!(
            "  ({user} logged it {} bytes {} \"Call established\")",
            at.abs_diff(established),
            if at < established { "before" } else { "after" }
        );
    }
    // Keep the call up a little (baresip only reports a duration of at least 1 s).
    std::thread::sleep(Duration::from_millis(1200));

    // 4. user0001 hangs up: BYE through confab, user0002 sees the session closed.
    procs.command(a, "/hangup");
    procs.wait_for(
        a,
        "call terminated",
        pos_a,
        &format!("Call with sip:{b}@{DOMAIN} terminated"),
    );
    procs.wait_for(
        b,
        "session closed by the BYE",
        pos_b,
        &format!("sip:{a}@{DOMAIN}: session closed"),
    );
    procs.wait_for(
        b,
        "call terminated",
        pos_b,
        &format!("Call with sip:{a}@{DOMAIN} terminated"),
    );

    // 5. What crossed confab. Let the last response reach the trace first.
    procs.wait_until("confab", "BYE 200 relayed", |s| {
        parse_trace(s)
            .iter()
            .any(|m| m.dir == "send" && m.is_response("200", "BYE"))
            .then_some(0)
    });
    let trace = parse_trace(&procs.log("confab"));
    let (pa, pb) = (
        format!("127.0.0.1:{}", ports.sip[0]),
        format!("127.0.0.1:{}", ports.sip[1]),
    );
    let proxy = format!("127.0.0.1:{}", ports.confab);
    for m in &trace {
        assert!(
            m.peer.starts_with("127.0.0.1:"),
            "confab exchanged SIP with {}: {}",
            m.peer,
            m.start
        );
    }
    for (user, peer) in [(a, &pa), (b, &pb)] {
        find(&trace, &format!("401 to {user}'s REGISTER"), |m| {
            m.dir == "send"
                && &m.peer == peer
                && m.is_response("401", "REGISTER")
                && m.text.contains("algorithm=MD5")
        });
        find(&trace, &format!("200 to {user}'s REGISTER"), |m| {
            m.dir == "send" && &m.peer == peer && m.is_response("200", "REGISTER")
        });
    }
    // MESSAGE: challenged (407), then forked to user0002's contact, 200 back to user0001.
    find(&trace, "407 to the MESSAGE", |m| {
        m.dir == "send" && m.peer == pa && m.is_response("407", "MESSAGE")
    });
    find(&trace, "MESSAGE relayed to user0002", |m| {
        m.dir == "send" && m.peer == pb && m.is_request("MESSAGE") && m.text.contains(&text)
    });
    find(&trace, "200 from user0002 to the MESSAGE", |m| {
        m.dir == "recv" && m.peer == pb && m.is_response("200", "MESSAGE")
    });
    find(&trace, "200 relayed to user0001 for the MESSAGE", |m| {
        m.dir == "send" && m.peer == pa && m.is_response("200", "MESSAGE")
    });
    // INVITE: 407, then relayed record-routed with SDP on 127.0.0.1; 200 and ACK end to end.
    find(&trace, "407 to the INVITE", |m| {
        m.dir == "send" && m.peer == pa && m.is_response("407", "INVITE")
    });
    let invite = find(&trace, "INVITE relayed to user0002", |m| {
        m.dir == "send" && m.peer == pb && m.is_request("INVITE")
    });
    assert!(
        invite
            .text
            .lines()
            .any(|l| l.starts_with("Record-Route:") && l.contains(&proxy)),
        "relayed INVITE is not record-routed through {proxy}:\n{}",
        invite.text
    );
    assert!(
        invite.text.contains("c=IN IP4 127.0.0.1"),
        "SDP not on 127.0.0.1:\n{}",
        invite.text
    );
    find(&trace, "200 from user0002 to the INVITE", |m| {
        m.dir == "recv" && m.peer == pb && m.is_response("200", "INVITE")
    });
    find(&trace, "200 relayed to user0001 for the INVITE", |m| {
        m.dir == "send" && m.peer == pa && m.is_response("200", "INVITE")
    });
    find(&trace, "ACK from user0001 (2xx, in dialog)", |m| {
        m.dir == "recv"
            && m.peer == pa
            && m.is_request("ACK")
            && m.text.contains("Route:")
            && m.text.contains(&proxy)
    });
    find(&trace, "ACK relayed to user0002", |m| {
        m.dir == "send" && m.peer == pb && m.is_request("ACK")
    });
    // BYE from user0001 via the Record-Route, 200 back.
    find(&trace, "BYE from user0001", |m| {
        m.dir == "recv" && m.peer == pa && m.is_request("BYE")
    });
    find(&trace, "BYE relayed to user0002", |m| {
        m.dir == "send" && m.peer == pb && m.is_request("BYE")
    });
    find(&trace, "200 from user0002 to the BYE", |m| {
        m.dir == "recv" && m.peer == pb && m.is_response("200", "BYE")
    });
    find(&trace, "200 relayed to user0001 for the BYE", |m| {
        m.dir == "send" && m.peer == pa && m.is_response("200", "BYE")
    });

    let n = trace.len();
    drop(procs);
    eprintln!(
        "baresip end-to-end test passed: {n} SIP messages through confab in {:.1} s",
        t0.elapsed().as_secs_f32()
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
}

/// Presence through confab: both clients load baresip's presence module, which SUBSCRIBEs
/// (Event: presence, through the outbound proxy) to the contacts marked `;presence=p2p` and
/// PUBLISHes the account's own state (`pubint`). confab is the presence agent of both users:
/// it answers the SUBSCRIBEs with 200 and NOTIFYs (application/pidf+xml), takes the
/// PUBLISHes (200 + SIP-ETag), and NOTIFYs each change to the watcher.
///
/// baresip 1.0.0 knows two states of its own, set with `/presence_online` and
/// `/presence_offline` (published as `<basic>open</basic>` / `<basic>closed</basic>`); a
/// contact's state shows in `/contacts` (Online/Offline/Busy/Unknown), and each change
/// after the first is logged as "<sip:...> changed status from X to Y".
#[test]
fn baresip_clients_watch_each_others_presence() {
    let t0 = Instant::now();
    let (mut procs, ports) = start(t0, true);
    let (a, b) = ("user0001", "user0002");
    let (ua, ub) = (format!("sip:{a}@{DOMAIN}"), format!("sip:{b}@{DOMAIN}"));

    // 1. Both register.
    procs.wait_for(
        a,
        "registered (200 OK)",
        0,
        &format!("{a}@{DOMAIN}: {{0/UDP/v4}} 200 OK"),
    );
    let pos_b = procs.wait_for(
        b,
        "registered (200 OK)",
        0,
        &format!("{b}@{DOMAIN}: {{0/UDP/v4}} 200 OK"),
    );

    // 2. Each watches the other (SUBSCRIBE, 200, NOTIFY open): both show the other Online.
    procs.wait_contact_status(a, b, "Online");
    procs.wait_contact_status(b, a, "Online");

    // 3. user0002 goes offline: PUBLISH closed, confab NOTIFYs user0001.
    let pos_a = procs.log(a).len();
    procs.command(b, "/presence_offline");
    let pos_b = procs.wait_for(
        b,
        "own status set offline",
        pos_b,
        &format!("update status of '{ub}' from 'Online' to 'Offline'"),
    );
    let pos_a = procs.wait_for(
        a,
        "sees user0002 go offline",
        pos_a,
        &format!("<{ub}> changed status from Online to Offline"),
    );
    procs.wait_contact_status(a, b, "Offline");

    // 4. ... and back online.
    procs.command(b, "/presence_online");
    procs.wait_for(
        b,
        "own status set online",
        pos_b,
        &format!("update status of '{ub}' from 'Offline' to 'Online'"),
    );
    let pos_a = procs.wait_for(
        a,
        "sees user0002 back online",
        pos_a,
        &format!("<{ub}> changed status from Offline to Online"),
    );
    procs.wait_contact_status(a, b, "Online");
    // user0001 was not affected.
    procs.wait_contact_status(b, a, "Online");

    // 5. user0002 quits: it removes its publication (PUBLISH Expires: 0), ends its
    // subscription and unregisters; user0001 sees it offline.
    procs.get(b).may_exit = true;
    procs.command(b, "/quit");
    procs.wait_for(
        a,
        "sees user0002 offline after it quit",
        pos_a,
        &format!("<{ub}> changed status from Online to Offline"),
    );
    procs.wait_contact_status(a, b, "Offline");
    procs.wait_exit(b);

    // 6. What crossed confab. Let the un-REGISTER's answer reach the trace first.
    let (pa, pb) = (
        format!("127.0.0.1:{}", ports.sip[0]),
        format!("127.0.0.1:{}", ports.sip[1]),
    );
    procs.wait_until("confab", "user0002's un-REGISTER answered", |s| {
        let trace = parse_trace(s);
        let unreg = trace.iter().position(|m| {
            m.dir == "recv"
                && m.peer == pb
                && m.is_request("REGISTER")
                && m.text.to_ascii_lowercase().contains("expires=0")
        })?;
        trace[unreg..]
            .iter()
            .any(|m| m.dir == "send" && m.peer == pb && m.is_response("200", "REGISTER"))
            .then_some(0)
    });
    let trace = parse_trace(&procs.log("confab"));
    for m in &trace {
        assert!(
            m.peer.starts_with("127.0.0.1:"),
            "confab exchanged SIP with {}: {}",
            m.peer,
            m.start
        );
    }
    // No presence request was refused (other than the digest challenges).
    for m in &trace {
        let method = m.cseq_method();
        if m.dir == "send"
            && ["SUBSCRIBE", "PUBLISH"].contains(&method)
            && m.start.starts_with("SIP/2.0 ")
            && !m.start.starts_with("SIP/2.0 2")
            && !m.start.starts_with("SIP/2.0 401")
            && !m.start.starts_with("SIP/2.0 407")
        {
            panic!("confab refused a {method}:\n{}", m.text);
        }
        if m.dir == "recv"
            && method == "NOTIFY"
            && m.start.starts_with("SIP/2.0 ")
            && !m.start.starts_with("SIP/2.0 2")
        {
            panic!("a client refused confab's NOTIFY:\n{}", m.text);
        }
    }
    let pidf = |m: &Traced, basic: &str| {
        m.text
            .to_ascii_lowercase()
            .contains("content-type: application/pidf+xml")
            && m.text.contains(&format!("<basic>{basic}</basic>"))
    };
    for (me, peer_uri, addr) in [(a, &ub, &pa), (b, &ua, &pb)] {
        find(
            &trace,
            &format!("{me}'s SUBSCRIBE (Event: presence) to its peer"),
            |m| {
                m.dir == "recv"
                    && &m.peer == addr
                    && m.is_request("SUBSCRIBE")
                    && m.start.contains(peer_uri.as_str())
                    && m.text
                        .lines()
                        .any(|l| l.to_ascii_lowercase().starts_with("event: presence"))
            },
        );
        find(&trace, &format!("200 to {me}'s SUBSCRIBE"), |m| {
            m.dir == "send" && &m.peer == addr && m.is_response("200", "SUBSCRIBE")
        });
        find(&trace, &format!("NOTIFY (pidf, open) to {me}"), |m| {
            m.dir == "send" && &m.peer == addr && m.is_request("NOTIFY") && pidf(m, "open")
        });
        find(&trace, &format!("200 from {me} to a NOTIFY"), |m| {
            m.dir == "recv" && &m.peer == addr && m.is_response("200", "NOTIFY")
        });
        find(&trace, &format!("{me}'s PUBLISH (pidf)"), |m| {
            m.dir == "recv" && &m.peer == addr && m.is_request("PUBLISH") && pidf(m, "open")
        });
        find(
            &trace,
            &format!("200 with SIP-ETag to {me}'s PUBLISH"),
            |m| {
                m.dir == "send"
                    && &m.peer == addr
                    && m.is_response("200", "PUBLISH")
                    && m.text.to_ascii_lowercase().contains("sip-etag:")
            },
        );
    }
    find(&trace, "user0002's PUBLISH closed", |m| {
        m.dir == "recv" && m.peer == pb && m.is_request("PUBLISH") && pidf(m, "closed")
    });
    find(&trace, "NOTIFY (pidf, closed) to user0001", |m| {
        m.dir == "send" && m.peer == pa && m.is_request("NOTIFY") && pidf(m, "closed")
    });

    let n = trace.len();
    drop(procs);
    eprintln!(
        "baresip presence test passed: {n} SIP messages through confab in {:.1} s",
        t0.elapsed().as_secs_f32()
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
}
