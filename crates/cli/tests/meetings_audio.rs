//! Meetings with real audio: baresip clients (Debian's baresip-core 1.0.0) dial a meeting's
//! conference URI through confab's focus and talk through its audio MCU, all on 127.0.0.1.
//!
//! Each client sends a sine tone of its own frequency (baresip's `ausine` source: the
//! `audio_source ausine,<Hz>` device string is the frequency; it only runs at 48 kHz
//! stereo, baresip resamples it to the codec) and records what it hears (the `sndfile`
//! audio filter writes `dump-<time>-dec.wav` into `snd_path`: the decoded audio at the
//! codec's rate, one file per call, written as the packets are decoded). After the call,
//! the recordings are analysed with a Goertzel filter over 100 ms Hann-windowed blocks:
//! each participant must hear the others' tones and not its own (mix-minus), a participant
//! in the lobby nothing of the meeting.
//!
//! The tones (600, 1000, 1300 and 1700 Hz) are chosen so that no sum or difference of
//! two of them, nor twice one minus another, lands on a third (a clipped mix must not
//! fake a participant's own tone), and away from the lobby beep (425 Hz).
//!
//! baresip is driven through its `stdio` UI module (commands on stdin, console output read
//! back), as in baresip.rs; confab runs with `--sip-trace` (its log is printed when a
//! test fails). Ports: confab and the clients use one block of 25 ports in 5400-5499 (SIP
//! 5300-5399 belongs to baresip.rs, so both files can run at once), and the MCU a range of
//! 100 ports of its own in 25000-25399 (below the kernel's ephemeral ports, so that no
//! client socket of another test takes them).

mod common;

use common::{first_json, free_port, Server, DOMAIN};
#[path = "common/audio.rs"]
mod audio;
#[path = "common/console.rs"]
mod console;

use console::{port_free, strip_ansi, Log};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A whole test (setup, calls, analysis) must be done within this.
const TOTAL: Duration = Duration::from_secs(55);
/// One step (waiting for one output line, or for the roster) may take at most this long.
const STEP: Duration = Duration::from_secs(15);
/// How long the participants talk once everybody is in (the deliberate audio window).
const TALK: Duration = Duration::from_secs(4);

/// The tones. None of them is a simple sum or difference of two others.
const TONE_A: f64 = 600.0;
const TONE_B: f64 = 1000.0;
const TONE_C: f64 = 1700.0;
const TONE_D: f64 = 1300.0;
/// The lobby beep the MCU plays to a participant waiting in the lobby.
const LOBBY_BEEP: f64 = 425.0;

/// A tone heard is at least this loud (mean amplitude per 100 ms block, full scale 32768):
/// ausine sends about 16000, so this leaves room for any gain the mixer applies.
const HEARD: f64 = 1000.0;
/// Its own tone is at least 20 dB (amplitude x 0.1) below the weakest tone it hears.
const OWN_TONE_MAX: f64 = 0.1;
/// A tone that must not be heard (the meeting, from the lobby) is 40 dB (x 0.01) below
/// what the same client hears of it once admitted, in every 100 ms block.
const SILENT_MAX: f64 = 0.01;

// ---------------------------------------------------------------------------------------
// Ports

/// One block of 25 ports in 5400-5499: confab's SIP port, then per client (at most four)
/// a SIP port (baresip also binds TLS on the next one) and four RTP/RTCP ports; and the
/// MCU's own media port range.
struct Ports {
    confab: u16,
    base: u16,
    media: (u16, u16),
}

impl Ports {
    fn sip(&self, i: usize) -> u16 {
        assert!(i < 4);
        self.base + 1 + 2 * i as u16
    }
    fn rtp(&self, i: usize) -> (u16, u16) {
        let first = self.base + 9 + 4 * i as u16;
        (first, first + 3)
    }
}

/// Blocks already taken by a test of this process (the tests run in parallel threads, and a
/// block stays free to `port_free` until its processes have bound it).
static CLAIMED: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A test's block goes back to the others when the test is done (its processes are gone
/// by then: the clients and the server are dropped before the ports).
impl Drop for Ports {
    fn drop(&mut self) {
        CLAIMED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&b| b != self.base);
    }
}

/// Claims a free block. When another process (e.g. a second run of this file) holds them
/// all, waits (bounded) for one to be released.
fn pick_ports() -> Ports {
    // four blocks for the tests of this file (run in parallel): a test may wait for
    // others to finish
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        {
            let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
            for (i, base) in (5400u16..=5475).step_by(25).enumerate() {
                if !claimed.contains(&base) && (base..base + 25).all(port_free) {
                    claimed.push(base);
                    let media = 25000 + 100 * i as u16;
                    return Ports {
                        confab: base,
                        base,
                        media: (media, media + 99),
                    };
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no block of 25 free ports in 127.0.0.1:5400-5499"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------
// baresip processes

/// Who a client is.
#[derive(Clone)]
struct Spec {
    /// Name in the test's messages ("user0001", "guest1").
    name: &'static str,
    /// The account's address of record.
    aor: String,
    /// Digest password (enterprise users); none for an anonymous guest.
    password: Option<String>,
    /// The frequency of the tone it sends (Hz).
    tone: f64,
    /// What `audio_codecs` allows, in baresip's `name/rate/channels` form.
    codecs: &'static str,
}

impl Spec {
    /// A seeded user of ours ("user0001"), who signs in with its digest password.
    fn user(name: &'static str, tone: f64, codecs: &'static str) -> Spec {
        Spec {
            name,
            aor: format!("{name}@{DOMAIN}"),
            password: Some(format!("pw-{name}")),
            tone,
            codecs,
        }
    }

    /// An anonymous caller (no account of ours, no registration, no credentials).
    fn guest(name: &'static str, tone: f64) -> Spec {
        Spec {
            name,
            aor: "anonymous@anonymous.invalid".into(),
            password: None,
            tone,
            codecs: "PCMU/8000/1",
        }
    }
}

struct Client {
    spec: Spec,
    child: Child,
    stdin: ChildStdin,
    log: Log,
    /// Where sndfile writes its recordings.
    rec: PathBuf,
    /// Set once the test asked the client to quit: its exit is then no failure.
    may_exit: bool,
}

/// The clients of one test; kills them all when dropped (also on panic), and on panic
/// prints their output.
struct Clients {
    list: Vec<Client>,
    start: Instant,
    root: PathBuf,
}

impl Drop for Clients {
    fn drop(&mut self) {
        for c in &mut self.list {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
        if std::thread::panicking() {
            for c in &self.list {
                eprintln!(
                    "\n======== output of baresip {} ========\n{}",
                    c.spec.name,
                    c.log.text()
                );
            }
        }
    }
}

impl Clients {
    fn new(start: Instant, root: &Path) -> Clients {
        if Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            panic!("baresip is not installed (apt-get install -y baresip-core)");
        }
        Clients {
            list: Vec::new(),
            start,
            root: root.to_path_buf(),
        }
    }

    fn elapsed(&self) -> f32 {
        self.start.elapsed().as_secs_f32()
    }

    /// Starts baresip for `spec` as client number `idx` of the port block, and waits until
    /// it is ready. No registration (`regint=0`): calling needs none.
    fn spawn(&mut self, spec: Spec, ports: &Ports) {
        let idx = self.list.len();
        let dir = self.root.join(format!("baresip-{}", spec.name));
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        let sip = ports.sip(idx);
        let (rtp_min, rtp_max) = ports.rtp(idx);
        // No audio hardware: ausine as the source, the aubridge module as a sink that
        // plays to nowhere; sndfile records the decoded audio.
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip}\n\
             net_interface\t\t127.0.0.1\n\
             dns_server\t\t127.0.0.1:53\n\
             call_local_timeout\t60\n\
             call_max_calls\t\t4\n\
             audio_player\t\taubridge,{name}\n\
             audio_alert\t\taubridge,{name}\n\
             audio_source\t\tausine,{tone}\n\
             ausrc_srate\t\t48000\n\
             ausrc_channels\t\t2\n\
             rtp_ports\t\t{rtp_min}-{rtp_max}\n\
             snd_path\t\t{rec}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tstdio.so\n\
             module\t\t\tg711.so\n\
             module\t\t\topus.so\n\
             module\t\t\tausine.so\n\
             module\t\t\taubridge.so\n\
             module\t\t\tsndfile.so\n\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            name = spec.name,
            tone = spec.tone as u32,
            rec = rec.display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let auth = match &spec.password {
            Some(p) => format!(";auth_pass={p}"),
            None => String::new(),
        };
        let account = format!(
            "\"{name}\" <sip:{aor}>{auth};outbound=\"sip:127.0.0.1:{proxy};transport=udp\";regint=0;answermode=manual;audio_codecs={codecs}\n",
            name = spec.name,
            aor = spec.aor,
            proxy = ports.confab,
            codecs = spec.codecs,
        );
        std::fs::write(dir.join("accounts"), account).unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();

        let mut cmd = Command::new("baresip");
        cmd.arg("-f")
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting baresip for {}: {e}", spec.name));
        let log = Log::default();
        log.attach(child.stdout.take().unwrap());
        log.attach(child.stderr.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        let name = spec.name;
        self.list.push(Client {
            spec,
            child,
            stdin,
            log,
            rec,
            may_exit: false,
        });
        self.wait_for(name, "ready", 0, "baresip is ready.");
    }

    fn get(&mut self, name: &str) -> &mut Client {
        self.list
            .iter_mut()
            .find(|c| c.spec.name == name)
            .unwrap_or_else(|| panic!("no client {name}"))
    }

    fn log(&mut self, name: &str) -> String {
        self.get(name).log.text()
    }

    /// Types one command line into baresip's stdio UI ("/dial ...", "/hangup", ...).
    fn command(&mut self, name: &str, line: &str) {
        eprintln!("[{:5.1}s] {name} <- {line}", self.elapsed());
        let c = self.get(name);
        c.stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        c.stdin.flush().unwrap();
    }

    /// Waits until the output of `name` contains `needle` at or after byte `from`; returns
    /// the byte offset just after the first such occurrence.
    fn wait_for(&mut self, name: &str, what: &str, from: usize, needle: &str) -> usize {
        let deadline = (Instant::now() + STEP).min(self.start + TOTAL);
        loop {
            let text = self.log(name);
            if let Some(i) = text.get(from..).and_then(|t| t.find(needle)) {
                eprintln!("[{:5.1}s] {name}: {what}", self.elapsed());
                return from + i + needle.len();
            }
            self.check_alive(name, what);
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name}: {what} ({needle:?})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if a client exited that was not asked to.
    fn check_alive(&mut self, name: &str, what: &str) {
        for c in self.list.iter_mut().filter(|c| !c.may_exit) {
            if let Ok(Some(st)) = c.child.try_wait() {
                panic!(
                    "baresip {} exited ({st}) while waiting for {name}: {what}",
                    c.spec.name
                );
            }
        }
    }

    /// Dials the conference URI and waits until the call is established and RTP from
    /// the MCU arrives. Returns the log offset after the call was established, and the
    /// address the RTP comes from.
    fn join(&mut self, name: &str, uri: &str) -> (usize, String) {
        let from = self.log(name).len();
        self.command(name, &format!("/dial {uri}"));
        let pos = self.wait_for(name, "call established", from, "Call established: ");
        // on the one codec its account allows ("PCMU/8000/1" -> "PCMU 8000Hz 1ch")
        let codec: Vec<&str> = self.get(name).spec.codecs.split('/').collect();
        let decoder = format!(
            "Set audio decoder: {} {}Hz {}ch",
            codec[0], codec[1], codec[2]
        );
        self.wait_for(name, &decoder, from, &decoder);
        // logged just before or after "Call established"
        let needle = "incoming rtp for 'audio' established, receiving from ";
        let at = self.wait_for(name, "RTP from the MCU", from, needle);
        let text = self.log(name);
        let addr = text[at..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string();
        (pos, addr)
    }

    /// Presses phone keys in `name`'s call (baresip 1.0 sends each as an RFC 4733
    /// telephone-event), at a person's keying pace.
    fn keys(&mut self, name: &str, digits: &str) {
        eprintln!("[{:5.1}s] {name} keys {digits}", self.elapsed());
        for d in digits.chars() {
            let c = self.get(name);
            c.stdin.write_all(d.to_string().as_bytes()).unwrap();
            c.stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Hangs up the calls of `names` (one command each, in a row, so that they leave the
    /// meeting at nearly the same moment), waits until each call is over, then makes each
    /// client quit and waits for it to exit, so that its recordings are closed.
    fn hang_up_and_quit(&mut self, names: &[&str]) {
        let from: Vec<usize> = names.iter().map(|n| self.log(n).len()).collect();
        for n in names {
            self.command(n, "/hangup");
        }
        for (n, from) in names.iter().zip(from) {
            self.wait_for(n, "call terminated", from, " terminated (duration: ");
        }
        self.quit(names);
    }

    /// Makes the clients quit and waits (bounded) for them to exit.
    fn quit(&mut self, names: &[&str]) {
        for n in names {
            self.get(n).may_exit = true;
            self.command(n, "/quit");
        }
        let deadline = (Instant::now() + STEP).min(self.start + TOTAL);
        for n in names {
            loop {
                if let Some(st) = self.get(n).child.try_wait().unwrap() {
                    eprintln!("[{:5.1}s] {n} exited ({st})", self.elapsed());
                    break;
                }
                assert!(Instant::now() < deadline, "baresip {n} did not quit");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The recording of what `name` heard (its one call's decoded audio).
    fn recording_path(&mut self, name: &str) -> PathBuf {
        let rec = self.get(name).rec.clone();
        let files: Vec<PathBuf> = std::fs::read_dir(&rec)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "{name}: expected one decoded recording in {}, found {files:?}",
            rec.display()
        );
        files.into_iter().next().unwrap()
    }

    /// How many sample frames `name`'s recording holds so far (it is written as the
    /// packets are decoded): a mark to cut the recording at, once it is complete.
    fn recording_mark(&mut self, name: &str) -> usize {
        let path = self.recording_path(name);
        let bytes = std::fs::read(&path).unwrap();
        let wav = Wav::parse(&bytes)
            .unwrap_or_else(|e| panic!("{name}: recording {}: {e}", path.display()));
        eprintln!(
            "[{:5.1}s] {name}: {:.2} s recorded so far",
            self.elapsed(),
            wav.samples.len() as f64 / wav.rate as f64
        );
        wav.samples.len()
    }

    /// Waits (bounded) until `name`'s recording holds at least `secs` seconds.
    fn wait_recorded(&mut self, name: &str, secs: f64) {
        let deadline = (Instant::now() + STEP).min(self.start + TOTAL);
        loop {
            let wav = self.recording(name);
            if wav.secs() >= secs {
                eprintln!(
                    "[{:5.1}s] {name}: {:.2} s recorded",
                    self.elapsed(),
                    wav.secs()
                );
                return;
            }
            self.check_alive(name, "its recording");
            assert!(
                Instant::now() < deadline,
                "{name}: only {:.2} s recorded, waited for {secs} s",
                wav.secs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn recording(&mut self, name: &str) -> Wav {
        let path = self.recording_path(name);
        let bytes = std::fs::read(&path).unwrap();
        Wav::parse(&bytes).unwrap_or_else(|e| panic!("{name}: recording {}: {e}", path.display()))
    }
}

// ---------------------------------------------------------------------------------------
// Recordings and tones

/// A WAV recording (16-bit PCM), first channel only.
struct Wav {
    rate: u32,
    samples: Vec<f32>,
}

impl Wav {
    /// Parses RIFF/WAVE 16-bit PCM. A file still being written (its sizes not yet filled
    /// in by libsndfile) is read up to its last whole frame.
    fn parse(b: &[u8]) -> Result<Wav, String> {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
            return Err("not a RIFF/WAVE file".into());
        }
        let mut pos = 12;
        let mut fmt: Option<(u16, u16, u32, u16)> = None;
        while pos + 8 <= b.len() {
            let id = &b[pos..pos + 4];
            let size = u32_at(pos + 4) as usize;
            let body = pos + 8;
            if id == b"fmt " {
                if body + 16 > b.len() {
                    return Err("short fmt chunk".into());
                }
                fmt = Some((
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 14),
                ));
            } else if id == b"data" {
                let (format, channels, rate, bits) = fmt.ok_or("data before fmt")?;
                if format != 1 || bits != 16 || channels == 0 || rate == 0 {
                    return Err(format!(
                        "not 16-bit PCM (format {format}, {bits} bits, {channels} channels, {rate} Hz)"
                    ));
                }
                let avail = b.len() - body;
                let len = if size == 0 || size > avail {
                    avail
                } else {
                    size
                };
                let frame = 2 * channels as usize;
                let samples = b[body..body + len - len % frame]
                    .chunks_exact(frame)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]) as f32)
                    .collect();
                return Ok(Wav { rate, samples });
            }
            pos = body + size + size % 2;
        }
        Err("no data chunk".into())
    }

    fn secs(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }

    /// The samples from `from` seconds to `to` seconds (negative: from the end).
    fn span(&self, from: f64, to: f64) -> &[f32] {
        let at = |s: f64| {
            let s = if s < 0.0 { self.secs() + s } else { s };
            ((s.max(0.0) * self.rate as f64) as usize).min(self.samples.len())
        };
        let (a, b) = (at(from), at(to));
        &self.samples[a..b.max(a)]
    }
}

/// The level of the tone `freq` in `x`: its amplitude (full scale 32768) in each 100 ms
/// Hann-windowed block (Goertzel), as (mean, max) over the blocks.
fn tone_level(x: &[f32], rate: u32, freq: f64) -> (f64, f64) {
    let n = (rate / 10) as usize;
    let window: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect();
    let gain: f64 = window.iter().sum();
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut sum, mut max, mut blocks) = (0.0, 0.0f64, 0);
    for block in x.chunks_exact(n) {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for (v, h) in block.iter().zip(&window) {
            let s0 = *v as f64 * h + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        let amplitude = 2.0 * power.max(0.0).sqrt() / gain;
        sum += amplitude;
        max = max.max(amplitude);
        blocks += 1;
    }
    assert!(blocks > 0, "fewer than 100 ms of audio to analyse");
    (sum / blocks as f64, max)
}

/// Checks that `x` (what `who` heard) holds each tone of `heard` (mean amplitude at least
/// `HEARD`) and that `own` is at least 20 dB below the weakest of them. Returns the mean
/// levels of `heard`.
fn assert_hears(who: &str, x: &[f32], rate: u32, heard: &[f64], own: f64) -> Vec<f64> {
    let levels: Vec<f64> = heard.iter().map(|f| tone_level(x, rate, *f).0).collect();
    let own_level = tone_level(x, rate, own).0;
    eprintln!(
        "{who} ({:.2} s at {rate} Hz): {} own {own} Hz {own_level:.1}",
        x.len() as f64 / rate as f64,
        heard
            .iter()
            .zip(&levels)
            .map(|(f, l)| format!("{f} Hz {l:.1}, "))
            .collect::<String>()
    );
    for (f, l) in heard.iter().zip(&levels) {
        assert!(
            *l >= HEARD,
            "{who} does not hear the {f} Hz tone (level {l:.1}, want >= {HEARD})"
        );
    }
    let weakest = levels.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        own_level <= OWN_TONE_MAX * weakest,
        "{who} hears its own {own} Hz tone: level {own_level:.1}, only {:.1} dB below the weakest other ({weakest:.1})",
        20.0 * (weakest / own_level.max(1e-9)).log10()
    );
    levels
}

/// Checks that none of `tones` is heard in `x`: in no 100 ms block is a tone louder than
/// 40 dB below `reference` (how loud the same client hears it when it should).
fn assert_silent(who: &str, x: &[f32], rate: u32, tones: &[f64], reference: f64) {
    for f in tones {
        let (mean, max) = tone_level(x, rate, *f);
        eprintln!(
            "{who} ({:.2} s): {f} Hz mean {mean:.1}, max {max:.1} (limit {:.1})",
            x.len() as f64 / rate as f64,
            SILENT_MAX * reference
        );
        assert!(
            max <= SILENT_MAX * reference,
            "{who} hears the {f} Hz tone: a 100 ms block at level {max:.1} (limit {:.1})",
            SILENT_MAX * reference
        );
    }
}

// ---------------------------------------------------------------------------------------
// The server and meetings

/// confab with meetings: its MCU on the block's own media ports, the REST API on `http`.
fn start_server(ports: &Ports, http: u16) -> Server {
    let config = format!(
        "[meetings]\n\
         media_port_min = {}\n\
         media_port_max = {}\n\
         lobby_timeout_secs = 60\n\
         rtp_timeout_secs = 10\n\
         [http]\n\
         listen = \"127.0.0.1:{http}\"\n",
        ports.media.0, ports.media.1
    );
    Server::start_with("127.0.0.1", ports.confab, 10, &config)
}

struct Meeting {
    uri: String,
    key: String,
    conference_id: String,
}

/// `confab meeting create --organizer user0001 --access ACCESS --json`.
fn create_meeting(server: &Server, access: &str) -> Meeting {
    let out = server.cli(&[
        "meeting",
        "create",
        "--organizer",
        "user0001",
        "--access",
        access,
        "--json",
    ]);
    let v = first_json(&out).unwrap_or_else(|| panic!("no JSON from meeting create: {out}"));
    let field = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("meeting create: no {k:?} in {v}"))
            .to_string()
    };
    let m = Meeting {
        uri: field("uri"),
        key: field("key"),
        conference_id: field("conference_id"),
    };
    assert!(
        m.uri.starts_with("sip:user0001@example.test;") && m.uri.contains(&m.key),
        "conference URI {:?} (key {:?})",
        m.uri,
        m.key
    );
    m
}

/// One SIP message of confab's `--sip-trace` log.
struct Traced {
    /// Sent by confab (else received).
    send: bool,
    /// The peer's address ("127.0.0.1:5407").
    peer: String,
    /// The message, from its start line.
    text: String,
}

/// Splits confab's log at its "recv from UDP a:p" / "send to UDP a:p" lines; a message
/// ends at the next log line (one that starts with a timestamp).
fn sip_trace(log: &str) -> Vec<Traced> {
    let mut out: Vec<Traced> = Vec::new();
    let mut in_msg = false;
    for line in log.lines() {
        let line = strip_ansi(line);
        let b = line.as_bytes();
        let logged = b.len() > 11 && b[..4].iter().all(u8::is_ascii_digit) && b[10] == b'T';
        if logged {
            in_msg = false;
            let marker = [("recv from ", false), ("send to ", true)]
                .into_iter()
                .find_map(|(m, send)| line.find(m).map(|i| (send, &line[i + m.len()..])));
            if let Some((send, rest)) = marker {
                let peer = rest.split_whitespace().last().unwrap_or("").to_string();
                out.push(Traced {
                    send,
                    peer,
                    text: String::new(),
                });
                in_msg = true;
            }
            continue;
        }
        if let Some(m) = out.last_mut().filter(|_| in_msg) {
            if !(m.text.is_empty() && line.trim().is_empty()) {
                m.text.push_str(line.trim_end());
                m.text.push('\n');
            }
        }
    }
    out
}

/// Checks in confab's trace how the focus answered the INVITE of the client at `addr`:
/// challenged (407) first when it is one of our users, not when it is an anonymous guest;
/// then 200 with an SDP answer on the MCU's address.
fn assert_invite_answered(
    trace: &[Traced],
    who: &str,
    addr: &str,
    challenged: bool,
    ports: &Ports,
) {
    let is_response = |m: &Traced, code: &str| {
        m.send
            && m.peer == addr
            && m.text.starts_with(&format!("SIP/2.0 {code}"))
            && m.text
                .lines()
                .any(|l| l.starts_with("CSeq:") && l.ends_with(" INVITE"))
    };
    assert_eq!(
        trace.iter().any(|m| is_response(m, "407")),
        challenged,
        "{who}: {} 407 to its INVITE in confab's trace",
        if challenged { "no" } else { "a" }
    );
    let ok = trace
        .iter()
        .find(|m| is_response(m, "200"))
        .unwrap_or_else(|| panic!("{who}: no 200 to its INVITE in confab's trace"));
    let port: u16 = ok
        .text
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{who}: no m=audio in the 200:\n{}", ok.text));
    assert!(
        ok.text.contains("c=IN IP4 127.0.0.1") && (ports.media.0..=ports.media.1).contains(&port),
        "{who}: the focus's SDP answer is not on the MCU's ports {:?}:\n{}",
        ports.media,
        ok.text
    );
}

/// Checks that the MCU's RTP comes from 127.0.0.1 within the configured media ports.
fn assert_media_port(who: &str, addr: &str, ports: &Ports) {
    let (ip, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{who}: RTP source {addr:?}"));
    let port: u16 = port
        .parse()
        .unwrap_or_else(|_| panic!("{who}: RTP source {addr:?}"));
    assert_eq!(ip, "127.0.0.1", "{who}: RTP from {addr}");
    assert!(
        (ports.media.0..=ports.media.1).contains(&port),
        "{who}: RTP from {addr}, outside the MCU's ports {:?}",
        ports.media
    );
}

/// The organizer's view of a meeting through the REST API (`confab meeting ...
/// --server`), signed in with user0001's SIP password.
struct Organizer {
    url: String,
    password_file: PathBuf,
    key: String,
}

impl Organizer {
    fn run(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = vec!["meeting"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--server",
            &self.url,
            "--user",
            "user0001@example.test",
            "--password-file",
            self.password_file.to_str().unwrap(),
        ]);
        let out = common::confab()
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + String::from_utf8_lossy(&out.stderr).as_ref();
        assert!(out.status.success(), "confab {all:?} failed: {text}");
        text
    }

    /// The roster: `{participants: [...], lobby: [...]}`.
    fn roster(&self) -> serde_json::Value {
        let out = self.run(&["roster", &self.key, "--json"]);
        first_json(&out).unwrap_or_else(|| panic!("no JSON from meeting roster: {out}"))
    }

    /// Polls the roster (bounded) until `cond` holds; returns it.
    fn wait_roster(
        &self,
        what: &str,
        t0: Instant,
        cond: impl Fn(&[serde_json::Value], &[serde_json::Value]) -> bool,
    ) -> serde_json::Value {
        let deadline = (Instant::now() + STEP).min(t0 + TOTAL);
        loop {
            let r = self.roster();
            let list = |k: &str| r[k].as_array().cloned().unwrap_or_default();
            if cond(&list("participants"), &list("lobby")) {
                eprintln!("[{:5.1}s] roster: {what}", t0.elapsed().as_secs_f32());
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the roster: {what} (last: {r})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests

/// Three clients with three tones in one meeting, each on the codec given; each hears the
/// two others and not itself.
fn three_participants(specs: [Spec; 3]) {
    let ports = pick_ports();
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&ports, free_port("127.0.0.1"));
    eprintln!(
        "[{:5.1}s] confab on 127.0.0.1:{}, MCU ports {:?}",
        t0.elapsed().as_secs_f32(),
        ports.confab,
        ports.media
    );
    let meeting = create_meeting(&server, "SameEnterprise");
    let mut clients = Clients::new(t0, tmp.path());
    for s in &specs {
        clients.spawn(s.clone(), &ports);
    }
    for s in &specs {
        let (_, rtp) = clients.join(s.name, &meeting.uri);
        assert_media_port(s.name, &rtp, &ports);
    }
    // Everybody is in: let them talk (the deliberate audio window), then all leave.
    std::thread::sleep(TALK);
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    clients.hang_up_and_quit(&names);
    let trace = sip_trace(&server.log_text());
    for (i, s) in specs.iter().enumerate() {
        let addr = format!("127.0.0.1:{}", ports.sip(i));
        assert_invite_answered(&trace, s.name, &addr, true, &ports);
    }

    // Analyse the last seconds of each recording, when all three were in the meeting
    // (the first to join heard nobody at first); the very end is left out (hang-ups).
    for s in &specs {
        let wav = clients.recording(s.name);
        assert!(
            wav.secs() >= 3.0,
            "{}: only {:.2} s recorded",
            s.name,
            wav.secs()
        );
        let others: Vec<f64> = specs
            .iter()
            .filter(|o| o.name != s.name)
            .map(|o| o.tone)
            .collect();
        let who = format!("{} ({})", s.name, s.codecs);
        assert_hears(&who, wav.span(-3.0, -0.3), wav.rate, &others, s.tone);
    }
    drop(clients);
    drop(server);
    eprintln!("passed in {:.1} s", t0.elapsed().as_secs_f32());
    assert!(t0.elapsed() < Duration::from_secs(60));
}

#[test]

fn three_baresip_participants_hear_the_others_not_themselves() {
    three_participants([
        Spec::user("user0001", TONE_A, "PCMU/8000/1"),
        Spec::user("user0002", TONE_B, "PCMU/8000/1"),
        Spec::user("user0003", TONE_C, "PCMU/8000/1"),
    ]);
}

#[test]

fn opus_and_g711_participants_in_one_meeting_hear_the_others_not_themselves() {
    three_participants([
        Spec::user("user0001", TONE_A, "opus/48000/2"),
        Spec::user("user0002", TONE_B, "PCMU/8000/1"),
        Spec::user("user0003", TONE_C, "PCMA/8000/1"),
    ]);
}

/// A SameEnterprise meeting: user0001 (the organizer) and user0002 talk; an anonymous
/// guest waits in the lobby (on the REST roster's `lobby`, not among its participants),
/// hearing the lobby beep and nothing of the meeting while the meeting hears nothing of
/// it; the organizer admits it and then all three hear each other; a second guest is
/// denied and its call is ended by a BYE.
#[test]

fn lobby_guest_hears_nothing_until_admitted_and_a_denied_guest_is_hung_up() {
    let ports = pick_ports();
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let http = free_port("127.0.0.1");
    let server = start_server(&ports, http);
    let meeting = create_meeting(&server, "SameEnterprise");
    let password_file = tmp.path().join("organizer-password");
    std::fs::write(&password_file, "pw-user0001\n").unwrap();
    let org = Organizer {
        url: format!("http://127.0.0.1:{http}"),
        password_file,
        key: meeting.key.clone(),
    };

    let (a, b) = (
        Spec::user("user0001", TONE_A, "PCMU/8000/1"),
        Spec::user("user0002", TONE_B, "PCMU/8000/1"),
    );
    let guest = Spec::guest("guest1", TONE_D);
    let denied = Spec::guest("guest2", TONE_C);
    let mut clients = Clients::new(t0, tmp.path());
    for s in [&a, &b, &guest, &denied] {
        clients.spawn(s.clone(), &ports);
    }

    // 1. The two enterprise users join directly.
    for s in [&a, &b] {
        let (_, rtp) = clients.join(s.name, &meeting.uri);
        assert_media_port(s.name, &rtp, &ports);
    }
    org.wait_roster("two participants, nobody waiting", t0, |p, l| {
        p.len() == 2 && l.is_empty()
    });

    // 2. The guest calls: its call is answered (it hears the lobby beep), and it waits in
    // the lobby, not on the roster of participants.
    clients.join(guest.name, &meeting.uri);
    let roster = org.wait_roster("the guest in the lobby", t0, |p, l| {
        p.len() == 2 && l.len() == 1
    });
    let guest_id = roster["lobby"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("lobby entry without an id: {roster}"))
        .to_string();
    // The deliberate window: the guest waits while the others talk.
    std::thread::sleep(Duration::from_secs(3));
    let guest_mark = clients.recording_mark(guest.name);
    let a_mark = clients.recording_mark(a.name);

    // 3. The organizer admits the guest: it joins the participants.
    org.run(&["admit", &meeting.key, &guest_id]);
    org.wait_roster("the guest admitted", t0, |p, l| {
        p.len() == 3 && l.is_empty()
    });
    std::thread::sleep(TALK);

    // 4. A second guest waits in the lobby and is denied: the focus ends its call (BYE).
    let (denied_pos, _) = clients.join(denied.name, &meeting.uri);
    let roster = org.wait_roster("the second guest in the lobby", t0, |p, l| {
        p.len() == 3 && l.len() == 1
    });
    let denied_id = roster["lobby"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(denied_id, guest_id);
    // Let it wait long enough to have heard something (a whole lobby beep period).
    clients.wait_recorded(denied.name, 2.2);
    org.run(&["deny", &meeting.key, &denied_id]);
    clients.wait_for(
        denied.name,
        "call closed by the focus",
        denied_pos,
        "session closed",
    );
    // ... by a BYE from the focus, which the guest answered 200.
    let guest_addr = format!("127.0.0.1:{}", ports.sip(3));
    // (baresip may print "session closed" before its 200 reaches confab's log: wait for it)
    common::wait_until(
        "the denied guest's 200 to the focus's BYE in confab's trace",
        STEP,
        || {
            let trace = sip_trace(&server.log_text());
            let Some(bye) = trace
                .iter()
                .position(|m| m.send && m.peer == guest_addr && m.text.starts_with("BYE "))
            else {
                return false;
            };
            trace[bye..].iter().any(|m| {
                !m.send
                    && m.peer == guest_addr
                    && m.text.starts_with("SIP/2.0 200")
                    && m.text
                        .lines()
                        .any(|l| l.starts_with("CSeq:") && l.ends_with(" BYE"))
            })
        },
    );
    org.wait_roster("nobody left in the lobby", t0, |p, l| {
        p.len() == 3 && l.is_empty()
    });

    clients.hang_up_and_quit(&[a.name, b.name, guest.name]);
    clients.quit(&[denied.name]);
    // The users signed in (407, then 200), the guests were not asked to.
    let trace = sip_trace(&server.log_text());
    for (i, s) in [&a, &b, &guest, &denied].into_iter().enumerate() {
        let addr = format!("127.0.0.1:{}", ports.sip(i));
        assert_invite_answered(&trace, s.name, &addr, s.password.is_some(), &ports);
    }

    // 5. What each heard. The guest, once admitted: both meeting tones, not its own.
    let g = clients.recording(guest.name);
    let rate = g.rate;
    let cut = guest_mark as f64 / rate as f64;
    let admitted = assert_hears(
        "guest1 after admission",
        g.span(cut + 1.0, -0.3),
        rate,
        &[TONE_A, TONE_B],
        TONE_D,
    );
    // In the lobby: neither meeting tone (40 dB below what it hears once admitted), and
    // the lobby beep.
    let lobby = &g.samples[..guest_mark];
    assert!(
        lobby.len() as u32 >= rate,
        "guest1: only {:.2} s recorded in the lobby",
        lobby.len() as f64 / rate as f64
    );
    let weakest = admitted.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_silent(
        "guest1 in the lobby",
        lobby,
        rate,
        &[TONE_A, TONE_B],
        weakest,
    );
    let (_, beep) = tone_level(lobby, rate, LOBBY_BEEP);
    eprintln!("guest1 in the lobby: {LOBBY_BEEP} Hz beep at {beep:.1} (largest 100 ms block)");
    assert!(
        beep >= HEARD,
        "guest1 did not hear the lobby beep ({LOBBY_BEEP} Hz) in the lobby: level {beep:.1}"
    );

    // The organizer: user0002 all along, the guest only once admitted.
    let w = clients.recording(a.name);
    let cut = a_mark as f64 / w.rate as f64;
    let after = assert_hears(
        "user0001 after the admission",
        w.span(cut + 1.0, -0.3),
        w.rate,
        &[TONE_B, TONE_D],
        TONE_A,
    );
    assert_hears(
        "user0001 before the admission",
        w.span(cut - 2.5, cut),
        w.rate,
        &[TONE_B],
        TONE_A,
    );
    assert_silent(
        "user0001 while the guest waited",
        w.span(cut - 2.5, cut),
        w.rate,
        &[TONE_D],
        after[1],
    );

    // The denied guest heard the lobby beep and nothing of the meeting.
    let d = clients.recording(denied.name);
    let (_, beep) = tone_level(&d.samples, d.rate, LOBBY_BEEP);
    assert!(
        beep >= HEARD,
        "guest2 did not hear the lobby beep: level {beep:.1}"
    );
    assert_silent(
        "guest2 (denied)",
        &d.samples,
        d.rate,
        &[TONE_A, TONE_B, TONE_D],
        weakest,
    );

    drop(clients);
    drop(server);
    eprintln!("passed in {:.1} s", t0.elapsed().as_secs_f32());
    assert!(t0.elapsed() < Duration::from_secs(60));
}

/// The analysis itself, on synthetic signals: a tone is found at its level, an absent one
/// is not, in mono and in recordings parsed from WAV bytes.
#[test]
fn tone_analysis_finds_the_tones_present_and_not_the_absent() {
    let rate = 8000u32;
    let x: Vec<f32> = (0..rate * 2)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (8000.0 * (2.0 * std::f64::consts::PI * TONE_B * t).sin()
                + 4000.0 * (2.0 * std::f64::consts::PI * TONE_C * t).sin()) as f32
        })
        .collect();
    let (b, _) = tone_level(&x, rate, TONE_B);
    let (c, _) = tone_level(&x, rate, TONE_C);
    let (a, a_max) = tone_level(&x, rate, TONE_A);
    assert!((b - 8000.0).abs() < 80.0, "{b}");
    assert!((c - 4000.0).abs() < 40.0, "{c}");
    assert!(a_max < 1.0, "{a}");
    assert_hears("synthetic", &x, rate, &[TONE_B, TONE_C], TONE_A);

    // The same as a 16-bit stereo WAV file whose sizes were never filled in.
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 4).to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data\0\0\0\0");
    for v in &x {
        let s = (*v as i16).to_le_bytes();
        wav.extend_from_slice(&s);
        wav.extend_from_slice(&[0, 0]);
    }
    wav.push(0); // half a frame: ignored
    let parsed = Wav::parse(&wav).unwrap();
    assert_eq!(parsed.rate, rate);
    assert_eq!(parsed.samples.len(), x.len());
    assert_hears(
        "synthetic wav",
        parsed.span(0.5, -0.5),
        rate,
        &[TONE_B, TONE_C],
        TONE_A,
    );
    assert!(Wav::parse(b"RIFF\0\0\0\0WAVEdata\0\0\0\0").is_err());
    assert!(Wav::parse(b"not a wav").is_err());
}

/// Waits until confab's log has `n` lines with all of `needles`.
fn wait_log_lines(server: &Server, what: &str, needles: &[&str], n: usize) {
    let deadline = Instant::now() + STEP;
    loop {
        let log = server.log_text();
        let found = log
            .lines()
            .map(strip_ansi)
            .filter(|l| needles.iter().all(|x| l.contains(x)))
            .count();
        if found >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "confab never logged {what} ({n})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two baresip users call the dial-in access number (its `sip:<number>@<domain>;user=phone`
/// form) and key the conference ID by RFC 4733 telephone-events, and `#` at the leader
/// question (SIP INFO keys, which baresip 1.0 cannot send, are sipp's in dialin.rs). The attendant's prompts are speech in what they record,
/// and once in, each hears the other two and not itself.
#[test]
fn baresip_callers_dial_in_by_conference_id_with_rfc4733() {
    let ports = pick_ports();
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&ports, free_port("127.0.0.1"));
    server.cli(common::ADD_ROOT);
    server.configure(
        "New-CsDialInConferencingAccessNumber -PrimaryUri \"sip:dialin@example.test\" \
         -DisplayNumber \"+1 425 555 0100\" -LineUri \"tel:+14255550100\" -Regions Redmond \
         -PrimaryLanguage en-US; \
         Set-CsDialInConferencingConfiguration -Identity Global -EntryExitAnnouncementsType ToneOnly",
    );
    let meeting = create_meeting(&server, "Everyone");
    let mut clients = Clients::new(t0, tmp.path());
    let a = Spec::user("user0001", TONE_A, "PCMU/8000/1");
    let b = Spec::user("user0002", TONE_B, "PCMU/8000/1");
    let c = Spec::user("user0003", TONE_C, "PCMU/8000/1");
    for s in [&a, &b, &c] {
        clients.spawn(s.clone(), &ports);
    }
    clients.join("user0001", &meeting.uri);
    for (i, name) in ["user0002", "user0003"].into_iter().enumerate() {
        let from = clients.log(name).len();
        clients.command(name, "/dial sip:+14255550100@example.test;user=phone");
        clients.wait_for(name, "call established", from, "Call established: ");
        wait_log_lines(
            &server,
            "the attendant answering",
            &["dial-in call answered by the attendant"],
            i + 1,
        );
        clients.keys(name, &format!("{}#", meeting.conference_id));
        wait_log_lines(
            &server,
            "the conference ID found",
            &["conference ID looked up", "found=true"],
            i + 1,
        );
        clients.keys(name, "#");
        wait_log_lines(
            &server,
            "the caller joining",
            &["dial-in caller joined"],
            i + 1,
        );
    }
    std::thread::sleep(TALK);
    clients.hang_up_and_quit(&["user0001", "user0002", "user0003"]);
    for (s, others) in [
        (&a, vec![TONE_B, TONE_C]),
        (&b, vec![TONE_A, TONE_C]),
        (&c, vec![TONE_A, TONE_B]),
    ] {
        let wav = clients.recording(s.name);
        assert_hears(s.name, wav.span(-3.0, -0.3), wav.rate, &others, s.tone);
    }
    // the attendant's welcome, in what the callers heard first: speech (loud, mostly in
    // the telephone band), not silence and not a tone
    for name in ["user0002", "user0003"] {
        let wav = clients.recording(name);
        let x = wav.span(0.2, 2.2);
        let (level, band) = (
            audio::rms(x),
            audio::band_energy_ratio(x, wav.rate as f64, 300.0, 3400.0),
        );
        assert!(
            level > 300.0 && band > 0.6,
            "{name}: the welcome prompt (rms {level:.0}, speech band {band:.2})"
        );
    }
    drop(clients);
    drop(server);
    assert!(t0.elapsed() < Duration::from_secs(90));
}
