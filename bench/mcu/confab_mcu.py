#!/usr/bin/env python3
"""confab's audio MCU and Janus AudioBridge, driven by one generator and measured alike.

The generator and the measurements are janus_bridge.py's (a copy of
../shared/bench/janus/janus_bridge.py sits beside this file and is imported): K
plain-RTP participants, each sending a G.711 mu-law or Opus sine tone at its own
frequency every 20 ms from its own UDP port on 127.0.0.1, each receiving its mix on that
port.  What differs between the two servers is only how a participant joins:

  * confab (--server confab): by SIP, as any client would.  One UDP INVITE per
    participant to the meeting's conference URI (from `confab meeting create --json`),
    From an anonymous caller (an Everyone meeting admits it directly), with an SDP offer
    for PCMU (PT 0) or opus/48000/2 (PT 111); the 200 OK's SDP (c=, m= port) says where
    to send RTP; the ACK goes to the 200's Contact (new branch, To with its tag); every
    participant sends BYE at the end.  Requests the server sends in the dialogs are
    answered 200; 200 retransmissions get the ACK again.
  * Janus (--server janus): by Janus's HTTP API, plain-RTP `join` (janus_bridge.py's
    setup_rooms).

Measured per run, over --duration seconds that start --warmup s after the last join
(janus_bridge.py's measures, the same code):
  * server CPU: utime+stime from /proc/<pid>/stat over the window, as % of one core,
    per participant, and per thread kind from /proc/<pid>/task/*/schedstat;
  * generator CPU (this process) and whole-machine busy %;
  * mix timing at the receivers (kernel receive timestamps): packets received vs
    expected, inter-arrival mean/max, gaps > 40 ms (a 20 ms deadline missed somewhere),
    sequence gaps; and, for confab, the MCU's own counters from /metrics when present
    (confab_mcu_ticks_total, confab_mcu_late_ticks_total, confab_mcu_legs);
  * the spectral check: in each checked participant's mix its own tone is absent
    (< -20 dB) and every room-mate's tone present;
  * mouth-to-ear latency added by the mixer: in every room participant 1 (the probe)
    sends its tone as a 200 ms burst once a second (silence between), and participant 0
    times the burst's onset in its mix: onset playout time (arrival timestamp of the
    packet holding the onset + the onset's offset in it) minus the time the probe sent
    the packet that starts the burst, less the detector's own offset measured on the
    probe's signal decoded directly (generator codec delay and detector bias).  The
    others' tones keep 250 Hz away from the probe's 1000 Hz so the detector (20 ms
    Hann-windowed demodulation at 1000 Hz) sees the probe alone.

Modes:
  python3 bench/mcu/confab_mcu.py verify --server confab --codec pcmu
  python3 bench/mcu/confab_mcu.py bench --server confab --codec pcmu --ks 10,50,100,200
  python3 bench/mcu/confab_mcu.py bench --server confab --codec opus --rooms 2,10,20 --per-room 5
  python3 bench/mcu/confab_mcu.py bench --server janus ...        (same options)

For confab the script makes a private data directory and configuration in --workdir
(users user0000.., one meeting per room with access Everyone, MaxMeetingSize raised when
a room needs it), starts `confab serve` as its child (stopped by its PID at the end) and
reads /metrics.  Everything stays on 127.0.0.1: confab SIP 5080/udp, HTTP 8088, MCU RTP
ports 30000-35999; the generator's SIP socket 5199, its RTP sockets 20000-25998; Janus's
ports as in janus_bridge.py.
"""

import argparse
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import janus_bridge as jb  # noqa: E402  (our copy, beside this file)
from janus_bridge import HOST, PTIME, log  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CONFAB_SIP_PORT = 5080
CONFAB_HTTP_PORT = 8088
GEN_SIP_PORT = 5199
MEDIA_PORT_MIN, MEDIA_PORT_MAX = 30000, 35999
DOMAIN = "example.test"
PROBE_FREQ = 1000          # participant 1 of every room: a 200 ms burst once a second
PROBE_GUARD = 250          # no other tone within 1000 +- 250 Hz
BURST_FRAMES = 10          # 10 x 20 ms of tone, then 40 frames of silence
FRAMES_PER_CYCLE = 50


# ----------------------------------------------------------------------------
# participants: janus_bridge's Participant, with a room layout that leaves room for the
# latency probe, and silence / burst patterns

def room_freqs(n):
    """n distinct tone frequencies; index 1 is the probe (1000 Hz) and no other is within
    PROBE_GUARD of it.  n <= 8: janus_bridge's fixed set (1000 Hz is its index 1)."""
    if n <= 8:
        return jb.tone_freqs(n)
    lo_a, lo_b = 200, PROBE_FREQ - PROBE_GUARD
    hi_a, hi_b = PROBE_FREQ + PROBE_GUARD, 3300
    span = (lo_b - lo_a) + (hi_b - hi_a)
    step = span / (n - 1)
    fs = []
    for i in range(n - 1):
        x = i * step
        fs.append(int(round(lo_a + x if x < lo_b - lo_a else hi_a + x - (lo_b - lo_a))))
    return [fs[0], PROBE_FREQ] + fs[1:]


def pattern_pcm(rate, freq, amp, phase, on_frames, seconds):
    """`seconds` of a tone gated on for the first on_frames frames of every second."""
    n = np.arange(seconds * rate)
    pcm = amp * np.sin(2 * np.pi * freq * n / rate + phase)
    gate = (n % rate) < on_frames * (rate // 50)
    return np.round(pcm * gate).astype(np.int16)


def pattern_frames(codec, freq, amp, opus, on_frames, phase=0.0):
    """One second (50 frames) of the pattern, encoded; loops seamlessly."""
    if codec == "opus":
        rate, n = 48000, 960
        pcm = pattern_pcm(rate, freq, amp, phase, on_frames, 2)
        enc = opus.encoder(rate)
        frames = [opus.encode(enc, pcm[i * n:(i + 1) * n]) for i in range(100)]
        return frames[50:]         # encoder warmed up on the first second
    rate, n = 8000, 160
    u = jb.ulaw_encode(pattern_pcm(rate, freq, amp, phase, on_frames, 1))
    return [u[i * n:(i + 1) * n] for i in range(50)]


class Leg(jb.Participant):
    """A participant plus its SIP dialog (confab) and latency-probe state."""

    def __init__(self, idx, room, ridx, freq, port, codec, amp, opus, rng, role):
        super().__init__(idx, room, freq, port, codec, amp, opus, rng)
        self.ridx = ridx               # index in its room
        self.role = role               # "talker", "probe", "silent"
        if role == "probe":
            self.frames = pattern_frames(codec, freq, amp, opus, BURST_FRAMES)
        elif role == "silent":
            self.frames = pattern_frames(codec, freq, 0, opus, 0)
        self.burst_tx = []             # wall-clock send times of the probe's burst starts
        self.listen = False            # capture the whole window for latency
        self.lat = []                  # (seq, kernel rx time, payload)
        self.raddr = None              # where to send RTP (the answer's c= and m= port)
        # SIP (confab)
        self.uri = None
        self.call_id = None
        self.from_tag = None
        self.branch = None
        self.state = "new"
        self.status = None
        self.t_sent = 0.0
        self.t_next = 0.0
        self.retx = 0
        self.invite = None
        self.ack = None
        self.bye = None
        self.to_hdr = None
        self.target = None
        self.routes = []
        self.dest = None
        self.sdp = None


# ----------------------------------------------------------------------------
# a small SIP user agent for the generator (UDP, RFC 3261 UAC: INVITE/ACK/BYE)

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported"}


def parse_sip(data):
    """-> (start line, [(lower-case name, value)], body) or None for garbage."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head, sep, body = text.partition("\r\n\r\n")
    if not sep:
        return None
    lines = head.split("\r\n")
    hdrs = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + line.strip())
            continue
        name, colon, val = line.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        hdrs.append((COMPACT.get(name, name), val.strip()))
    return lines[0], hdrs, body


def hget(hdrs, name):
    for n, v in hdrs:
        if n == name:
            return v
    return None


def hall(hdrs, name):
    """Every value of a header, comma-separated lists split (outside <> and quotes)."""
    out = []
    for n, v in hdrs:
        if n != name:
            continue
        depth, quote, cur = 0, False, ""
        for ch in v:
            if ch == '"':
                quote = not quote
            elif not quote and ch == "<":
                depth += 1
            elif not quote and ch == ">":
                depth -= 1
            if ch == "," and depth == 0 and not quote:
                out.append(cur.strip())
                cur = ""
            else:
                cur += ch
        if cur.strip():
            out.append(cur.strip())
    return out


def addr_uri(v):
    """The URI of a name-addr or addr-spec header value."""
    m = re.search(r"<([^>]*)>", v)
    if m:
        return m.group(1)
    return v.split(";", 1)[0].strip()


def uri_hostport(uri, default):
    """(ip, port) of a sip: URI when its host is an IPv4 literal, else `default`."""
    m = re.match(r"sips?:(?:[^@;>]*@)?([0-9.]+)(?::(\d+))?", uri)
    if not m:
        return default
    return m.group(1), int(m.group(2) or 5060)


def sdp_offer(port, codec):
    if codec == "opus":
        pt, maps = 111, ["a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=0"]
    else:
        pt, maps = 0, ["a=rtpmap:0 PCMU/8000"]
    sid = random.getrandbits(31)
    lines = ["v=0", f"o=bench {sid} 1 IN IP4 {HOST}", "s=confab-mcu-bench", f"c=IN IP4 {HOST}",
             "t=0 0", f"m=audio {port} RTP/AVP {pt}", *maps, "a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def parse_answer(body, codec):
    """-> (ip, port, payload type) from an SDP answer, or raise ValueError."""
    ip, port, pts, maps, media_ip = None, None, [], {}, None
    in_audio = False
    for line in body.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if line.startswith("c=IN IP4 "):
            if in_audio:
                media_ip = line[9:].split("/")[0]
            elif port is None:
                ip = line[9:].split("/")[0]
        elif line.startswith("m="):
            f = line[2:].split()
            in_audio = f[0] == "audio" and port is None
            if in_audio:
                port = int(f[1])
                pts = [int(x) for x in f[3:]]
        elif in_audio and line.startswith("a=rtpmap:"):
            k, _, enc = line[9:].partition(" ")
            maps[int(k)] = enc.lower()
    ip = media_ip or ip
    if ip is None or not port:
        raise ValueError(f"no audio address in answer: {body!r}")
    want = "opus/48000" if codec == "opus" else "pcmu/8000"
    for pt in pts:
        enc = maps.get(pt, "pcmu/8000" if pt == 0 else "")
        if enc.startswith(want):
            return ip, port, pt
    raise ValueError(f"answer has no {want}: {body!r}")


class SipUA:
    """One UDP socket for every participant's dialog; bounded waits everywhere."""

    def __init__(self, server, port=GEN_SIP_PORT):
        self.server = server
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((HOST, port))
        self.sock.setblocking(False)
        self.by_cid = {}
        self.remote_byes = 0
        self.stray = 0

    def close(self):
        self.sock.close()

    def _send(self, data, dest):
        try:
            self.sock.sendto(data, dest)
        except OSError as e:
            log(f"sip send to {dest}: {e}")

    @staticmethod
    def _branch():
        return "z9hG4bK" + "%016x" % random.getrandbits(64)

    def _via(self, branch):
        return f"SIP/2.0/UDP {HOST}:{self.port};rport;branch={branch}"

    def _from(self, p):
        return f'"bench p{p.idx}" <sip:anonymous@anonymous.invalid>;tag={p.from_tag}'

    def start_invite(self, p, uri, codec):
        p.uri = uri
        p.call_id = "%032x@bench" % random.getrandbits(128)
        p.from_tag = "%012x" % random.getrandbits(48)
        p.branch = self._branch()
        p.sdp = sdp_offer(p.port, codec)
        body = p.sdp.encode()
        head = (f"INVITE {uri} SIP/2.0\r\n"
                f"Via: {self._via(p.branch)}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: {self._from(p)}\r\n"
                f"To: <{uri}>\r\n"
                f"Call-ID: {p.call_id}\r\n"
                "CSeq: 1 INVITE\r\n"
                f"Contact: <sip:bench{p.idx}@{HOST}:{self.port}>\r\n"
                "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n"
                "User-Agent: confab-mcu-bench\r\n"
                "Content-Type: application/sdp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        p.invite = head.encode() + body
        p.state = "calling"
        p.t_sent = time.monotonic()
        p.t_next = p.t_sent + 0.5
        p.retx = 0
        self.by_cid[p.call_id] = p
        self._send(p.invite, self.server)

    def _in_dialog(self, p, method, cseq, branch):
        routes = "".join(f"Route: {r}\r\n" for r in p.routes)
        return (f"{method} {p.target} SIP/2.0\r\n"
                f"Via: {self._via(branch)}\r\n"
                f"{routes}"
                "Max-Forwards: 70\r\n"
                f"From: {self._from(p)}\r\n"
                f"To: {p.to_hdr}\r\n"
                f"Call-ID: {p.call_id}\r\n"
                f"CSeq: {cseq} {method}\r\n"
                "User-Agent: confab-mcu-bench\r\n"
                "Content-Length: 0\r\n\r\n").encode()

    def start_bye(self, p):
        p.bye = self._in_dialog(p, "BYE", 2, self._branch())
        p.state = "leaving"
        p.t_sent = time.monotonic()
        p.t_next = p.t_sent + 0.5
        p.retx = 0
        self._send(p.bye, p.dest)

    def _answer(self, hdrs, status="200 OK"):
        vias = "".join(f"Via: {v}\r\n" for n, v in hdrs if n == "via")
        to = hget(hdrs, "to") or ""
        if ";tag=" not in to:
            to += ";tag=%08x" % random.getrandbits(32)
        return (f"SIP/2.0 {status}\r\n{vias}From: {hget(hdrs, 'from')}\r\nTo: {to}\r\n"
                f"Call-ID: {hget(hdrs, 'call-id')}\r\nCSeq: {hget(hdrs, 'cseq')}\r\n"
                "Content-Length: 0\r\n\r\n").encode()

    def pump(self):
        """Handle every datagram waiting on the socket."""
        while True:
            try:
                data, src = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                return
            msg = parse_sip(data)
            if msg is None:
                self.stray += 1
                continue
            start, hdrs, body = msg
            if start.startswith("SIP/2.0 "):
                self._response(start, hdrs, body)
            else:
                self._request(start, hdrs, src)

    def _request(self, start, hdrs, src):
        method = start.split(" ", 1)[0]
        if method == "ACK":
            return
        p = self.by_cid.get(hget(hdrs, "call-id"))
        if method == "BYE" and p is not None:
            if p.state == "up":
                self.remote_byes += 1
            p.state = "gone"
        status = "200 OK" if p is not None or method == "OPTIONS" else "481 Call/Transaction Does Not Exist"
        if method == "INVITE":
            status = "488 Not Acceptable Here"   # no re-INVITEs expected in this benchmark
        self._send(self._answer(hdrs, status), src)

    def _response(self, start, hdrs, body):
        p = self.by_cid.get(hget(hdrs, "call-id"))
        if p is None:
            self.stray += 1
            return
        try:
            code = int(start.split()[1])
        except (IndexError, ValueError):
            self.stray += 1
            return
        cseq = (hget(hdrs, "cseq") or "").split()
        method = cseq[1] if len(cseq) == 2 else ""
        if method == "BYE":
            if code >= 200 and p.state == "leaving":
                p.state = "left"
                p.status = code
            return
        if method != "INVITE":
            return
        if code < 200:
            if p.state == "calling":
                p.state = "proceeding"
            return
        to = hget(hdrs, "to") or ""
        if code >= 300:
            if p.state in ("calling", "proceeding"):
                p.state = "failed"
                p.status = start
            # hop-by-hop ACK: same branch, Request-URI of the INVITE
            ack = (f"ACK {p.uri} SIP/2.0\r\nVia: {self._via(p.branch)}\r\nMax-Forwards: 70\r\n"
                   f"From: {self._from(p)}\r\nTo: {to}\r\nCall-ID: {p.call_id}\r\n"
                   "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode()
            self._send(ack, self.server)
            return
        if p.state in ("calling", "proceeding"):
            contact = hget(hdrs, "contact")
            if ";tag=" not in to or not contact:
                p.state = "failed"
                p.status = f"{start} (no To tag or Contact)"
                return
            try:
                p.raddr_ip, p.raddr_port, p.pt = parse_answer(body, "opus" if p.pt != 0 else "pcmu")
            except ValueError as e:
                p.state = "failed"
                p.status = f"{start} ({e})"
                return
            p.raddr = (p.raddr_ip, p.raddr_port)
            p.to_hdr = to
            p.target = addr_uri(contact)
            p.routes = list(reversed(hall(hdrs, "record-route")))
            hop = addr_uri(p.routes[0]) if p.routes else p.target
            p.dest = uri_hostport(hop, self.server)
            p.ack = self._in_dialog(p, "ACK", 1, self._branch())
            p.state = "up"
            p.sock.connect(p.raddr)
        if p.ack is not None:
            self._send(p.ack, p.dest)     # first 200, or a retransmission of it

    def run_transactions(self, parts, window, timeout, start_fn, busy_states, retx_fn):
        """Start start_fn(p) for each part with at most `window` in flight, retransmit
        (RFC 3261 timer A/E doubling from 0.5 s, capped at 4 s), give up after `timeout`."""
        todo = list(parts)
        inflight = []
        deadline = time.monotonic() + timeout + 2.0 * len(parts) / max(window, 1)
        while (todo or inflight) and time.monotonic() < deadline:
            while todo and len(inflight) < window:
                p = todo.pop(0)
                start_fn(p)
                inflight.append(p)
            r, _, _ = select.select([self.sock], [], [], 0.02)
            if r:
                self.pump()
            now = time.monotonic()
            still = []
            for p in inflight:
                if p.state not in busy_states:
                    continue
                if now - p.t_sent > timeout:
                    p.status = p.status or f"timeout in state {p.state}"
                    p.state = "failed"
                    continue
                if p.state != "proceeding" and now >= p.t_next:
                    p.retx += 1
                    p.t_next = now + min(0.5 * 2 ** p.retx, 4.0)
                    retx_fn(p)
                still.append(p)
            inflight = still
        for p in inflight + todo:
            p.status = p.status or f"not finished in state {p.state}"
            p.state = "failed"

    def join_all(self, parts, codec, window=20, timeout=16.0):
        self.run_transactions(parts, window, timeout,
                              lambda p: self.start_invite(p, p.uri, codec),
                              ("calling", "proceeding"),
                              lambda p: self._send(p.invite, self.server))
        failed = [p for p in parts if p.state != "up"]
        return failed

    def leave_all(self, parts, window=50, timeout=8.0):
        up = [p for p in parts if p.state == "up"]
        self.run_transactions(up, window, timeout, self.start_bye, ("leaving",),
                              lambda p: self._send(p.bye, p.dest))
        return sum(1 for p in up if p.state == "left" and p.status == 200)


# ----------------------------------------------------------------------------
# servers under test

def http_get(port, path, timeout=5.0):
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def parse_metrics(text):
    """Prometheus text -> {name{labels}: value} for confab_mcu_* and process CPU lines."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        if not line.startswith("confab_mcu"):
            continue
        try:
            k, v = line.rsplit(None, 1)
            out[k] = float(v)
        except ValueError:
            continue
    return out


class JanusTarget:
    name = "janus"

    def __init__(self, args):
        self.args = args
        self.proc = None
        self.pid = args.pid
        self.sess = None

    def start(self, n_rooms, max_room):
        if self.args.no_start:
            return
        self.proc = jb.JanusProcess(self.args.workdir, jb.HTTP_PORT, self.args.debug_level)
        self.proc.start()
        self.pid = self.proc.pid

    def join(self, rooms_spec, parts):
        self.sess = jb.JanusSession(jb.HTTP_PORT)
        self.hid = self.sess.attach()
        jb.setup_rooms(self.sess, self.hid, [r for r, _ in rooms_spec], self.args.sampling_rate,
                       self.args.codec, parts)
        for p in parts:
            p.raddr = (HOST, p.jport)
        return []

    def leave(self, rooms_spec, parts):
        for room, _ in rooms_spec:
            try:
                self.sess.request(self.hid, {"request": "destroy", "room": room})
            except Exception as e:  # noqa: BLE001 - best effort teardown
                log("room destroy:", e)
        self.sess.destroy()
        return len(parts)

    def metrics(self):
        return {}

    def wait_idle(self, timeout=10.0):
        time.sleep(2.0)      # as janus_bridge.py: the rooms were destroyed synchronously

    def extra_fds(self):
        return []

    def pump(self):
        pass

    def stop(self):
        if self.proc:
            self.proc.stop()

    thread_kind = staticmethod(jb.thread_kind)


class ConfabTarget:
    name = "confab"

    def __init__(self, args):
        self.args = args
        self.proc = None
        self.pid = args.pid
        self.ua = None
        self.uris = {}
        tdir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
        self.bin = args.confab_bin or os.path.join(tdir, "release", "confab")
        self.data = os.path.join(args.workdir, "data")
        self.cfg = os.path.join(args.workdir, "confab-mcu.toml")

    def _cli(self, *a, env=None):
        cmd = [self.bin, *a, "--config", self.cfg, "--data", self.data]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                           env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()} {r.stdout.strip()}")
        return r.stdout

    def write_config(self):
        os.makedirs(self.args.workdir, exist_ok=True)
        with open(self.cfg, "w") as f:
            f.write(f"""# written by bench/mcu/confab_mcu.py: loopback only
listen = ["{HOST}:{CONFAB_SIP_PORT}"]
domains = ["{DOMAIN}"]
workers = {self.args.workers}

# the generator sends every INVITE from one address: do not let the flood defence ban it
[defence]
trusted = ["{HOST}"]

[http]
listen = "{HOST}:{CONFAB_HTTP_PORT}"

[meetings]
media_port_min = {MEDIA_PORT_MIN}
media_port_max = {MEDIA_PORT_MAX}
mixer_threads = {self.args.mixer_threads}
max_participants = 3000
""")

    def prepare(self, n_rooms, max_room):
        """Fresh data directory: users, an administrator for MaxMeetingSize, one meeting
        per room (organizer user0001.. , access Everyone: anonymous callers join)."""
        if os.path.exists(self.data):
            subprocess.run(["rm", "-rf", "--", self.data], check=True)
        os.makedirs(self.data)
        self.write_config()
        self._cli("user", "seed", "--count", str(n_rooms + 1))
        pw = "bench-admin-%08x" % random.getrandbits(32)
        self._cli("admin", "add", "bench", "--role", "CsAdministrator", "--password", pw)
        shell = lambda cmd: self._cli("shell", "--admin", "bench", "-c", cmd, env={"CONFAB_ADMIN_PASSWORD": pw})
        if max_room > 250:      # Lync's default MaxMeetingSize is 250 (range 2-1000)
            shell(f"Set-CsConferencingPolicy -Identity Global -MaxMeetingSize {min(max_room + 10, 1000)}")
        for i in range(n_rooms):
            org = f"user{i + 1:04d}"
            try:
                out = self._cli("meeting", "create", "--organizer", org, "--access", "Everyone",
                                "--subject", f"bench room {i}", "--json")
                self.uris[i] = json.loads(out[out.index("{"):])["uri"]
            except RuntimeError as e:
                if "unrecognized subcommand" not in str(e):
                    raise
                # a confab without `confab meeting`: the shell's New-CsMeeting does the same
                out = shell(f'New-CsMeeting -Organizer {org} -Access Everyone -Subject "bench room {i}"')
                m = re.search(r"^Uri\s*:\s*(\S+)", out, re.M)
                if not m:
                    raise RuntimeError(f"New-CsMeeting gave no Uri: {out}")
                self.uris[i] = m.group(1)
        log(f"confab: {n_rooms} meetings created, e.g. {self.uris[0]}")

    def start(self, n_rooms, max_room):
        if self.args.no_start:
            if not self.uris:
                raise RuntimeError("--no-start with confab needs --uris FILE")
            return
        self.prepare(n_rooms, max_room)
        self.logf = open(os.path.join(self.args.workdir, "confab.log"), "w")
        cmd = [self.bin, "serve", "--config", self.cfg, "--data", self.data]
        log("starting:", " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"confab exited early rc={self.proc.returncode}, see {self.logf.name}")
            try:
                http_get(CONFAB_HTTP_PORT, "/metrics", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("confab did not answer /metrics in time")
        log(f"confab up: pid {self.pid}; MCU metrics: {sorted(self.metrics()) or 'none'}")

    def metrics(self):
        try:
            return parse_metrics(http_get(CONFAB_HTTP_PORT, "/metrics"))
        except OSError:
            return {}

    def join(self, rooms_spec, parts):
        if self.ua is None:
            self.ua = SipUA((HOST, CONFAB_SIP_PORT))
        rooms = {room: i for i, (room, _) in enumerate(rooms_spec)}
        for p in parts:
            p.uri = self.uris[rooms[p.room]]
        failed = self.ua.join_all(parts, self.args.codec, window=self.args.join_window)
        return failed

    def leave(self, rooms_spec, parts):
        n = self.ua.leave_all(parts)
        for p in parts:
            self.ua.by_cid.pop(p.call_id, None)
        return n

    def wait_idle(self, timeout=15.0):
        """Until the MCU has no legs (when it reports them), bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.metrics()
            legs = m.get("confab_mcu_legs")
            if legs is None:
                time.sleep(2.0)
                return
            if legs == 0:
                return
            time.sleep(0.1)
        log("confab: MCU legs still present after the BYEs")

    def extra_fds(self):
        return [self.ua.sock] if self.ua else []

    def pump(self):
        if self.ua:
            self.ua.pump()

    def stop(self):
        if self.ua:
            self.ua.close()
        if not self.proc or self.proc.poll() is not None:
            return
        log(f"stopping confab pid {self.proc.pid}")
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.logf.close()

    @staticmethod
    def thread_kind(comm):
        # confab-mix-0, confab-mix-1 -> "mixer"; tokio workers, store workers ... -> by name
        if comm.startswith("confab-mix"):
            return "mixer"
        return re.sub(r"[-_ ]?\d+$", "", comm) or "other"


# ----------------------------------------------------------------------------
# the media loop: janus_bridge.media_loop plus the latency probe, RTCP filtered out,
# and the SIP socket served during the run

def media_loop(parts, target, warmup, duration, cpu, capture_last_s=4.0):
    k = len(parts)
    ep = select.epoll()
    byfd = {}
    for p in parts:
        ep.register(p.sock.fileno(), select.EPOLLIN)
        byfd[p.sock.fileno()] = p
    extra = {s.fileno() for s in target.extra_fds()}
    for fd in extra:
        ep.register(fd, select.EPOLLIN)
    offs = [i * PTIME / k for i in range(k)]
    anc = socket.CMSG_SPACE(16)
    t0 = time.monotonic() + 0.02
    t_meas = t0 + warmup
    t_end = t_meas + duration
    t_cap = t_end - capture_last_s
    nxt, cycle = 0, 0
    late_max, late_over5, sent, send_err, rtcp = 0.0, 0, 0, 0, 0
    measuring = capturing = False
    m0 = {}
    while True:
        now = time.monotonic()
        if not measuring and now >= t_meas:
            m0 = target.metrics()
            cpu.start()
            for p in parts:
                p.reset_rx()
                p.burst_tx = []
                p.lat = []
            late_max, late_over5, sent, rtcp = 0.0, 0, 0, 0
            measuring = True
        if now >= t_end:
            break
        if not capturing and now >= t_cap:
            capturing = True
            for p in parts:
                if p.capture:
                    p.cap = []
        while True:
            due = t0 + cycle * PTIME + offs[nxt]
            if due > now:
                break
            p = parts[nxt]
            burst = p.role == "probe" and p.fi == 0
            try:
                p.sock.send(p.packet())
                sent += 1
                if burst and measuring:
                    p.burst_tx.append(time.time())
            except OSError:
                send_err += 1
            late = now - due
            if late > late_max:
                late_max = late
            if late > 0.005:
                late_over5 += 1
            nxt += 1
            if nxt == k:
                nxt = 0
                cycle += 1
        wait = min(due - time.monotonic(), t_end - time.monotonic(), 0.01)
        for fd, _ in ep.poll(max(wait, 0.0)):
            if fd in extra:
                target.pump()
                continue
            p = byfd[fd]
            s = p.sock
            while True:
                try:
                    data, ad, _, _ = s.recvmsg(2048, anc)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if len(data) < 12:
                    continue
                if 72 <= (data[1] & 0x7F) <= 76:     # RTCP (PT 200-204) on a muxed port
                    rtcp += 1
                    continue
                ts = jb.parse_ts(ad)
                seq = (data[2] << 8) | data[3]
                if p.rx_last is not None:
                    d = ts - p.rx_last
                    p.rx_sum += d
                    if d > p.rx_max:
                        p.rx_max = d
                    if d > 0.040:
                        p.rx_gaps += 1
                    gap = (seq - p.rx_seq) & 0xFFFF
                    if 1 < gap < 1000:
                        p.rx_seqgaps += gap - 1
                else:
                    p.first_rx = ts
                p.rx_last = ts
                p.rx_seq = seq
                p.rx_n += 1
                if capturing and p.capture:
                    p.cap.append((seq, data[12:]))
                if measuring and p.listen:
                    p.lat.append((seq, ts, data[12:]))
    res = cpu.stop()
    m1 = target.metrics()
    ep.close()
    n = [p.rx_n for p in parts]
    ia = [p.rx_sum / (p.rx_n - 1) for p in parts if p.rx_n > 1]
    res = {k2.replace("janus_", "server_"): v for k2, v in res.items()}
    res.update({
        "rx_expected_per_part": int(duration / PTIME),
        "rx_min": min(n), "rx_mean": round(sum(n) / k, 1),
        "silent_parts": sum(1 for x in n if x == 0),
        "ia_mean_ms": round(1000 * sum(ia) / len(ia), 2) if ia else None,
        "ia_max_ms": round(1000 * max(p.rx_max for p in parts), 1),
        "gaps_gt40ms": sum(p.rx_gaps for p in parts),
        "parts_with_gap": sum(1 for p in parts if p.rx_gaps),
        "seq_lost": sum(p.rx_seqgaps for p in parts),
        "rtcp_rx": rtcp,
        "gen_sent": sent, "gen_send_err": send_err,
        "gen_late_max_ms": round(1000 * late_max, 2),
        "gen_late_gt5ms": late_over5,
    })
    if m1:
        mcu = {}
        for key, v in m1.items():
            name = key.split("{", 1)[0]
            if name.endswith("_total"):
                mcu[key] = v - m0.get(key, 0.0)
            else:
                mcu[key] = v
        res["mcu_metrics"] = mcu
    return res


# ----------------------------------------------------------------------------
# latency: the probe's burst onset in a listener's mix

def envelope(pcm, freq, rate):
    n = np.arange(len(pcm))
    z = pcm.astype(np.float64) * np.exp(-2j * np.pi * freq * n / rate)
    h = np.hanning(int(0.02 * rate))
    h /= h.sum()
    return 2 * np.abs(np.convolve(z, h, mode="same"))


def onset_after(env, t, t_send, win=(-0.05, 0.6)):
    """First sample (in playout time t) where the envelope crosses half-way from its floor
    to the burst's plateau, in the window after t_send; None if no burst stands out."""
    idx = np.nonzero((t >= t_send + win[0]) & (t <= t_send + win[1]))[0]
    if len(idx) < 10:
        return None
    a, b = idx[0], idx[-1] + 1
    seg = env[a:b]
    base, top = np.percentile(seg, 10), np.percentile(seg, 95)
    if top < 4 * base + 20:
        return None
    k = np.argmax(seg >= base + 0.5 * (top - base))
    return float(t[a + k])


def decode_stream(pkts, codec, opus, rate):
    """[(seq, ts, payload)] -> (pcm, playout time per sample): packets in sequence order,
    each played from its arrival; a missing packet is silence (or Opus PLC)."""
    if not pkts:
        return None, None
    base = pkts[0][0]
    ext = []
    last = None
    off = 0
    for seq, ts, pl in pkts:
        if last is not None and seq < last and last - seq > 30000:
            off += 65536
        last = seq
        ext.append((seq + off - base, ts, pl))
    ext.sort(key=lambda x: x[0])
    n = rate // 50
    dec = opus.decoder(rate) if codec == "opus" else None
    pcm, tt = [], []
    prev, prev_ts = None, None
    for s, ts, pl in ext:
        if prev is not None and s == prev:
            continue                       # duplicate
        if prev is not None and 1 < s - prev < 50:
            for j in range(1, s - prev):   # missing frames: silence, timed after the last
                pcm.append(np.zeros(n, dtype=np.int16))
                tt.append(prev_ts + j * PTIME + np.arange(n) / rate)
        frame = opus.decode(dec, pl, rate) if dec else jb.ulaw_decode(pl)
        pcm.append(frame)
        tt.append(ts + np.arange(len(frame)) / rate)
        prev, prev_ts = s, ts
    return np.concatenate(pcm).astype(np.float64), np.concatenate(tt)


def calibrate(probe, codec, opus, rate):
    """The detector's offset on the probe's own signal decoded directly (no mixer)."""
    frames = probe.frames * 3
    n = rate // 50
    dec = opus.decoder(rate) if codec == "opus" else None
    pcm = np.concatenate([opus.decode(dec, f, rate) if dec else jb.ulaw_decode(f) for f in frames])
    t = np.arange(len(pcm)) / rate
    env = envelope(pcm.astype(np.float64), probe.freq, rate)
    t_send = FRAMES_PER_CYCLE * n / rate          # frame 0 of the second cycle
    o = onset_after(env, t, t_send)
    return (o - t_send) if o is not None else 0.0


def latency(parts, codec, opus, rate, t_last):
    out = []
    calib = None
    for lis in (p for p in parts if p.listen):
        probe = next((q for q in parts if q.room == lis.room and q.role == "probe"), None)
        if probe is None or not lis.lat:
            continue
        if calib is None:
            calib = calibrate(probe, codec, opus, rate)
        pcm, t = decode_stream(lis.lat, codec, opus, rate)
        env = envelope(pcm, probe.freq, rate)
        for ts in probe.burst_tx:
            if ts > t_last - 0.7:
                continue
            o = onset_after(env, t, ts)
            # an onset before the burst was sent is a detector failure (another sound at the
            # probe's frequency, e.g. concealment of lost packets), not a latency
            out.append(None if o is None or o - ts - calib < 0 else o - ts - calib)
    found = [x for x in out if x is not None]
    r = {"lat_bursts": len(out), "lat_found": len(found),
         "lat_calib_ms": round(1000 * (calib or 0.0), 2)}
    if found:
        a = np.array(found) * 1000
        r.update({"lat_p50_ms": round(float(np.median(a)), 1),
                  "lat_p95_ms": round(float(np.percentile(a, 95)), 1),
                  "lat_min_ms": round(float(a.min()), 1), "lat_max_ms": round(float(a.max()), 1)})
    return r


# ----------------------------------------------------------------------------
# one run

def run_once(args, target, rooms_spec, label):
    rng = random.Random(12345)
    opus = jb.Opus() if args.codec == "opus" else None
    parts = []
    port = jb.GEN_PORT_BASE
    gidx = 0
    for ri, (room, n) in enumerate(rooms_spec):
        freqs = room_freqs(n)
        talkers = min(args.talkers or n, n)
        amp = int(min(args.amp, args.mix_rms / np.sqrt(max(talkers - 1, 1) / 2.0)))
        amp = max(amp, args.min_amp)
        for i in range(n):
            if port > jb.GEN_PORT_MAX:
                raise RuntimeError("generator port range exhausted")
            role = "probe" if i == 1 else ("talker" if i < talkers else "silent")
            p = Leg(gidx, room, i, freqs[i], port, args.codec, amp, opus, rng, role)
            p.capture = i < args.check_parts
            p.listen = i == 0 and ri < args.latency_rooms
            parts.append(p)
            port += 2
            gidx += 1
    t_join = time.monotonic()
    try:
        failed = target.join(rooms_spec, parts)
        join_s = time.monotonic() - t_join
        if failed:
            why = {}
            for p in failed:
                why[str(p.status)] = why.get(str(p.status), 0) + 1
            raise RuntimeError(f"{label}: {len(failed)} of {len(parts)} joins failed: {why}")
        log(f"{label}: {len(parts)} participants joined in {join_s:.1f}s "
            f"(server ports {min(p.raddr[1] for p in parts)}..{max(p.raddr[1] for p in parts)})")
        cpu = jb.CpuWindow(target.pid)
        jb.thread_kind = target.thread_kind
        res = media_loop(parts, target, args.warmup, args.duration, cpu)
        t_last = time.time()
        rate_rx = args.sampling_rate if args.codec == "opus" else 8000
        ok_parts = [q for q in parts if q.role == "talker"]
        checks = [jb.spectrum_check(p, ok_parts, args.codec, opus, rate_rx) for p in parts if p.capture]
        lat = latency(parts, args.codec, opus, rate_rx, t_last)
        k = len(parts)
        res = {"label": label, "server": target.name, "codec": args.codec,
               "rooms": len(rooms_spec), "participants": k,
               "talkers_per_room": args.talkers or "all", "join_s": round(join_s, 1), **res, **lat,
               "server_cpu_pct_per_part": round(res["server_cpu_pct"] / k, 3),
               "gen_cpu_pct_per_part": round(res["gen_cpu_pct"] / k, 3),
               "selfcheck_ok": all(c["ok"] for c in checks), "selfcheck": checks}
        if target.name == "janus":
            res["sampling_rate"] = args.sampling_rate
        else:
            res["sip_remote_byes"] = target.ua.remote_byes
    finally:
        left = 0
        try:
            left = target.leave(rooms_spec, parts)
        finally:
            for p in parts:
                p.close()
        log(f"{label}: {left} left")
    return res


def idle_baseline(target, seconds):
    cpu = jb.CpuWindow(target.pid)
    jb.thread_kind = target.thread_kind
    cpu.start()
    time.sleep(seconds)
    r = cpu.stop()
    r = {k.replace("janus_", "server_"): v for k, v in r.items()}
    return {"label": "idle", "server": target.name, "participants": 0, **r}


def print_table(rows):
    hdr = ("| server | run | K | CPU % (schedstat) | % per participant | by thread % | runq wait % "
           "| gen CPU % | machine busy % | rx / expected | ia max ms | gaps > 40 ms | MCU late ticks "
           "| latency p50 / p95 ms (bursts) | selfcheck |")
    print(hdr)
    print("|" + "|".join(["---"] * (hdr.count("|") - 1)) + "|")
    for r in rows:
        if "error" in r:
            print(f"| {r['server']} | {r['label']} | {r['participants']} | run failed: {r['error']} |")
            continue
        bt = r.get("server_by_thread_pct", {})
        split = ", ".join(f"{k} {v}" for k, v in bt.items() if v >= 0.05)
        head = (f"| {r['server']} | {r['label']} | {r['participants']} | {r['server_cpu_pct']} "
                f"({r['server_sched_pct']}) | {r.get('server_cpu_pct_per_part', '-')} | {split} "
                f"| {r['server_runq_wait_pct']} | {r['gen_cpu_pct']} | {r['machine_busy_pct']} ")
        if not r.get("participants"):
            print(head + "| - | - | - | - | - | - |")
            continue
        mcu = r.get("mcu_metrics", {})
        late = next((v for k, v in mcu.items() if k.startswith("confab_mcu_late_ticks_total")), None)
        ticks = next((v for k, v in mcu.items() if k.startswith("confab_mcu_ticks_total")), None)
        late_s = f"{int(late)} / {int(ticks)}" if late is not None and ticks is not None else "-"
        lat = (f"{r['lat_p50_ms']} / {r['lat_p95_ms']} ({r['lat_found']}/{r['lat_bursts']})"
               if "lat_p50_ms" in r else f"- ({r.get('lat_found', 0)}/{r.get('lat_bursts', 0)})")
        print(head + f"| {r['rx_mean']} / {r['rx_expected_per_part']} | {r['ia_max_ms']} "
              f"| {r['gaps_gt40ms']} ({r['parts_with_gap']} parts) | {late_s} | {lat} "
              f"| {'ok' if r['selfcheck_ok'] else 'FAIL'} |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["verify", "bench"])
    ap.add_argument("--server", choices=["confab", "janus"], default="confab")
    ap.add_argument("--codec", choices=["pcmu", "opus"], default="pcmu")
    ap.add_argument("--sampling-rate", type=int, default=16000, choices=[8000, 16000, 24000, 48000],
                    help="Janus room mixing rate (confab mixes at 16 kHz); Opus mixes are decoded at it")
    ap.add_argument("--ks", default="10,50,100,200", help="bench: participants in one room")
    ap.add_argument("--rooms", default="", help="bench: numbers of rooms (of --per-room each) instead of --ks")
    ap.add_argument("--per-room", type=int, default=5)
    ap.add_argument("--k", type=int, default=3, help="verify: participants")
    ap.add_argument("--talkers", type=int, default=0,
                    help="participants per room sending a tone (0 = all); the rest send silence")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--idle", type=float, default=5.0, help="bench: idle-baseline seconds (0 = skip)")
    ap.add_argument("--amp", type=int, default=6000, help="max tone amplitude (scaled down for big rooms)")
    ap.add_argument("--min-amp", type=int, default=700,
                    help="least tone amplitude: 700 (RMS 495) keeps every tone, even at 3.3 kHz after "
                         "G.711 decoding and confab's 8->16 kHz interpolation (-3 dB there), above confab's "
                         "talker threshold (RMS 300), so every participant is mixed, as in Janus")
    ap.add_argument("--mix-rms", type=float, default=5000.0,
                    help="target RMS of a participant's mix; tone amplitude = min(--amp, this/sqrt((n-1)/2))")
    ap.add_argument("--check-parts", type=int, default=3, help="participants per room to spectrum-check")
    ap.add_argument("--latency-rooms", type=int, default=4, help="rooms whose participant 0 times the probe")
    ap.add_argument("--join-window", type=int, default=20, help="confab: INVITEs in flight at once")
    ap.add_argument("--workers", type=int, default=2, help="confab: SIP worker threads")
    ap.add_argument("--mixer-threads", type=int, default=2, help="confab: [meetings] mixer_threads")
    ap.add_argument("--confab-bin", help="default: $CARGO_TARGET_DIR or ./target, release/confab")
    ap.add_argument("--workdir", default="")
    ap.add_argument("--debug-level", type=int, default=4, help="janus")
    ap.add_argument("--no-start", action="store_true", help="janus: use a running Janus (--pid)")
    ap.add_argument("--pid", type=int, help="PID of the running server (with --no-start)")
    ap.add_argument("--json-out", help="append one JSON object per run to this file")
    args = ap.parse_args()
    if not args.workdir:
        args.workdir = f"/tmp/mcu-bench-{args.server}"
    if args.no_start and (args.server != "janus" or not args.pid):
        ap.error("--no-start is for --server janus, with --pid")

    if args.mode == "verify":
        plan = [[(1001, args.k)]]
        args.check_parts = args.k
        args.idle = 0
    elif args.rooms:
        plan = [[(2000 + i, args.per_room) for i in range(int(nr))] for nr in args.rooms.split(",") if nr]
    else:
        plan = [[(1000 + int(k), int(k))] for k in args.ks.split(",") if k]
    n_rooms = max(len(spec) for spec in plan)
    max_room = max(n for spec in plan for _, n in spec)

    target = (ConfabTarget if args.server == "confab" else JanusTarget)(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    rows = []
    try:
        target.start(n_rooms, max_room)
        time.sleep(1.0)
        if args.idle > 0:
            rows.append(idle_baseline(target, args.idle))
            if args.json_out:
                with open(args.json_out, "a") as f:
                    f.write(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), **rows[-1]}) + "\n")
        for spec in plan:
            label = f"verify-{args.codec}" if args.mode == "verify" else (
                f"{len(spec)}x{spec[0][1]}")
            try:
                rows.append(run_once(args, target, spec, label))
            except (RuntimeError, OSError, TimeoutError, ValueError) as e:
                # a run that cannot even be measured (e.g. joins refused, the machine so
                # overloaded that the generator never reached its window) is reported as such
                log(f"{label}: run failed: {e}")
                rows.append({"label": label, "server": target.name, "codec": args.codec,
                             "participants": sum(n for _, n in spec), "error": str(e)})
            if args.json_out:
                with open(args.json_out, "a") as f:
                    f.write(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), **rows[-1]}) + "\n")
            if "error" in rows[-1]:
                target.wait_idle()
                continue
            log(json.dumps({k: v for k, v in rows[-1].items() if k != "selfcheck"}))
            if args.mode == "verify":
                for c in rows[-1]["selfcheck"]:
                    log(f"participant {c['part']} ({c['freq']} Hz): own tone {c.get('own_vs_median_other_db')} dB "
                        f"vs the others -> {'OK' if c['ok'] else 'FAIL'}")
            target.wait_idle()
    finally:
        target.stop()
    print_table(rows)
    return 0 if all(r.get("selfcheck_ok", True) and "error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
