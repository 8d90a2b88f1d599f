#!/usr/bin/env python3
# A copy of ../shared/bench/janus/janus_bridge.py (the project's shared bench code), kept beside
# confab_mcu.py, which imports its generator and measurements; run it as documented below.
"""Janus AudioBridge as a measured reference mixer, driven with plain RTP.

Drives Janus 1.1.2 (Debian 12 package ``janus``) over its HTTP API on
loopback: creates an AudioBridge room, joins K *plain-RTP* participants
(the ``rtp`` object of the ``join`` request, no WebRTC), makes each one send
a G.711 mu-law (or Opus) sine tone at its own frequency every 20 ms, and
receives each participant's mix (everyone but itself) on its own UDP port.

Everything stays on 127.0.0.1: Janus HTTP on 127.0.0.1:8188, Janus's RTP
sockets in 26000-29999 (plugin ``rtp_port_range``), the generator's sockets
in 20000-25999.  No STUN/TURN, no other transports, no event handlers.

Requirements: ``apt-get install -y janus`` (1.1.2-1 on bookworm), Python 3
with numpy.  Opus mode uses the system ``libopus.so.0`` through ctypes (it
is a dependency of janus), so no extra package is needed.

Modes (all start a private Janus with configs written to --workdir, run it
in the foreground as a child process tracked by PID, and stop it by that PID
on exit; /etc/janus is not touched):

  # correctness: 3 participants, each must hear the other two tones, not its own
  python3 janus_bridge.py verify --codec pcmu
  python3 janus_bridge.py verify --codec opus

  # capacity: one room of K participants, 20 s measured window each
  python3 janus_bridge.py bench --ks 10,50,100,200 --duration 20

  # capacity: many rooms of 5 (R rooms x 5)
  python3 janus_bridge.py bench --rooms 2,10,20,40 --per-room 5 --duration 20

  # write only the Janus config folder (to inspect, or to run Janus yourself)
  python3 janus_bridge.py config --workdir /tmp/janus-bench
  janus -C /tmp/janus-bench/conf/janus.jcfg -F /tmp/janus-bench/conf -o

Useful options: --sampling-rate 8000|16000|48000 (room mixing rate, default
16000), --json-out FILE (append one JSON object per run), --no-start
--janus-pid PID (use a Janus you started yourself with the same config).

What is measured per run (over the --duration window that starts --warmup s
after the last join):
  * Janus CPU: utime+stime delta of /proc/<pid>/stat, as % of one core
    (janus_cpu_pct), the same from per-thread /proc/<pid>/task/*/schedstat
    (janus_sched_pct; ns precision), split by thread kind (room mixer
    "mixer R", per-participant encoder "mixer R P", per-participant plain-RTP
    receive "rtp R P", rest = core/HTTP/idle per-handle "hloop"), and the
    threads' summed run-queue delay (janus_runq_wait_pct);
  * generator CPU (this process, os.times()), and whole-machine busy % from
    /proc/stat (2 cores = 200 %) so that other load on the box is visible;
  * mix timing: per participant inter-arrival of received mix packets using
    kernel receive timestamps (SO_TIMESTAMPNS): mean, max, count > 40 ms;
    received vs expected packets; sequence gaps;
  * generator pacing: how late sends were vs their schedule;
  * a spectral self-check on the first 3 participants (own tone absent,
    others present).
"""

import argparse
import ctypes
import ctypes.util
import http.client
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np

# ----------------------------------------------------------------------------
# constants
HOST = "127.0.0.1"
HTTP_PORT = 8188
JANUS_RTP_RANGE = "26000-29999"      # AudioBridge plain-RTP sockets (Janus side)
JANUS_ICE_RANGE = "25000-25999"      # WebRTC media range (unused here)
GEN_PORT_BASE = 20000                # generator sockets: 20000, 20002, ...
GEN_PORT_MAX = 25998
PTIME = 0.020
SO_TIMESTAMPNS = 35                  # Linux; not exported by Python's socket module
JANUS_LIBDIR = "/usr/lib/x86_64-linux-gnu/janus"
CLK_TCK = os.sysconf("SC_CLK_TCK")

ALL_PLUGINS = ["libjanus_audiobridge.so", "libjanus_duktape.so", "libjanus_echotest.so",
               "libjanus_lua.so", "libjanus_nosip.so", "libjanus_recordplay.so",
               "libjanus_sip.so", "libjanus_streaming.so", "libjanus_textroom.so",
               "libjanus_videocall.so", "libjanus_videoroom.so", "libjanus_voicemail.so"]
OTHER_TRANSPORTS = ["libjanus_websockets.so", "libjanus_mqtt.so", "libjanus_nanomsg.so",
                    "libjanus_pfunix.so", "libjanus_rabbitmq.so"]
ALL_EVH = ["libjanus_gelfevh.so", "libjanus_mqttevh.so", "libjanus_nanomsgevh.so",
           "libjanus_rabbitmqevh.so", "libjanus_sampleevh.so", "libjanus_wsevh.so"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# Janus configuration (private folder; /etc/janus stays as the package left it)

def write_config(workdir, http_port=HTTP_PORT, debug_level=4):
    conf = os.path.join(workdir, "conf")
    os.makedirs(conf, exist_ok=True)
    disabled_plugins = ",".join(p for p in ALL_PLUGINS if p != "libjanus_audiobridge.so")
    files = {
        "janus.jcfg": f"""# written by janus_bridge.py: loopback only, AudioBridge + HTTP only
general: {{
	configs_folder = "{conf}"
	plugins_folder = "{JANUS_LIBDIR}/plugins"
	transports_folder = "{JANUS_LIBDIR}/transports"
	events_folder = "{JANUS_LIBDIR}/events"
	loggers_folder = "{JANUS_LIBDIR}/loggers"
	debug_level = {debug_level}
	interface = "127.0.0.1"        # no local-IP autodetection
	server_name = "janus-bench"
	session_timeout = 60
}}
certificates: {{
}}
media: {{
	ipv6 = false
	rtp_port_range = "{JANUS_ICE_RANGE}"
}}
nat: {{
	# no stun_server / turn_server / turn_rest_api / nat_1_1_mapping: nothing leaves the box
	nice_debug = false
	ice_enforce_list = "lo"
	ignore_mdns = true
}}
plugins: {{
	disable = "{disabled_plugins}"
}}
transports: {{
	disable = "{",".join(OTHER_TRANSPORTS)}"
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
events: {{
	broadcast = false
	disable = "{",".join(ALL_EVH)}"
}}
""",
        "janus.transport.http.jcfg": f"""general: {{
	json = "compact"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"               # bind to loopback only
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
cors: {{
}}
certificates: {{
}}
""",
        "janus.plugin.audiobridge.jcfg": f"""general: {{
	local_ip = "127.0.0.1"         # plain-RTP sockets bind here (no autodetection)
	rtp_port_range = "{JANUS_RTP_RANGE}"
	events = false
}}
# no static rooms: rooms are created through the API with allow_rtp_participants = true
""",
    }
    for name, text in files.items():
        with open(os.path.join(conf, name), "w") as f:
            f.write(text)
    return conf


class JanusProcess:
    """Janus in the foreground as our child; stopped by its PID only."""

    def __init__(self, workdir, http_port=HTTP_PORT, debug_level=4):
        self.workdir = workdir
        self.http_port = http_port
        self.conf = write_config(workdir, http_port, debug_level)
        self.logpath = os.path.join(workdir, "janus.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=20.0):
        self.logf = open(self.logpath, "w")
        cmd = ["janus", "-C", os.path.join(self.conf, "janus.jcfg"), "-F", self.conf, "-o"]
        log("starting:", " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"janus exited early rc={self.proc.returncode}, see {self.logpath}")
            try:
                c = http.client.HTTPConnection(HOST, self.http_port, timeout=2)
                c.request("GET", "/janus/info")
                info = json.loads(c.getresponse().read())
                c.close()
                log(f"janus up: pid {self.proc.pid}, version {info.get('version_string')}, "
                    f"plugins {list(info.get('plugins', {}).keys())}, "
                    f"transports {list(info.get('transports', {}).keys())}")
                return info
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("janus did not answer on HTTP in time")

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        log(f"stopping janus pid {self.proc.pid}")
        os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.logf.close()


# ----------------------------------------------------------------------------
# Janus HTTP API client (one session, one handle per participant)

class JanusSession:
    def __init__(self, port=HTTP_PORT):
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=15)
        self.tx = 0
        self.events = {}           # transaction -> event
        self.cv = threading.Condition()
        self.n_events = 0
        self.stop = False
        self.pconn = None
        r = self._post("/janus", {"janus": "create"})
        self.sid = r["data"]["id"]
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()

    def _txid(self):
        self.tx += 1
        return f"t{self.tx}"

    def _post(self, path, body):
        body = dict(body)
        body.setdefault("transaction", self._txid())
        data = json.dumps(body)
        for attempt in range(2):
            try:
                self.conn.request("POST", path, data, {"Content-Type": "application/json"})
                r = json.loads(self.conn.getresponse().read())
                break
            except (http.client.HTTPException, OSError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=15)
        if r.get("janus") == "error":
            raise RuntimeError(f"janus error: {r}")
        return r

    def _poll(self):
        """Long-poll the session: drains events (joined notifications pile up otherwise)
        and keeps the session alive.  Bounded by self.stop and the session's life."""
        conn = self.pconn = http.client.HTTPConnection(HOST, self.port, timeout=40)
        rid = 0
        while not self.stop:
            rid += 1
            try:
                conn.request("GET", f"/janus/{self.sid}?maxev=500&rid={rid}")
                r = json.loads(conn.getresponse().read())
            except (http.client.HTTPException, OSError, ValueError):
                if self.stop:
                    break
                conn.close()
                conn = self.pconn = http.client.HTTPConnection(HOST, self.port, timeout=40)
                time.sleep(0.2)
                continue
            evs = r if isinstance(r, list) else [r]
            with self.cv:
                for ev in evs:
                    if ev.get("janus") == "error" and ev.get("error", {}).get("code") == 458:
                        self.stop = True    # session gone
                    self.n_events += 1
                    t = ev.get("transaction")
                    if t and ev.get("janus") == "event":
                        self.events[t] = ev
                self.cv.notify_all()
        conn.close()

    def attach(self):
        r = self._post(f"/janus/{self.sid}", {"janus": "attach", "plugin": "janus.plugin.audiobridge"})
        return r["data"]["id"]

    def request(self, hid, body):
        """Synchronous plugin request (create, destroy, list...)."""
        r = self._post(f"/janus/{self.sid}/{hid}", {"janus": "message", "body": body})
        return r["plugindata"]["data"]

    def send_async(self, hid, body):
        t = self._txid()
        r = self._post(f"/janus/{self.sid}/{hid}", {"janus": "message", "body": body, "transaction": t})
        if r.get("janus") != "ack":
            raise RuntimeError(f"expected ack, got {r}")
        return t

    def wait_event(self, t, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while t not in self.events:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no event for transaction {t}")
                self.cv.wait(left)
            return self.events.pop(t)

    def destroy(self):
        self.stop = True
        try:
            self._post(f"/janus/{self.sid}", {"janus": "destroy"})
        except Exception as e:  # noqa: BLE001 - best effort teardown
            log("session destroy:", e)
        # the pending long-poll would otherwise sit until Janus's 30 s long-poll timeout
        try:
            if self.pconn.sock:
                self.pconn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.poller.join(timeout=45)
        self.conn.close()


# ----------------------------------------------------------------------------
# codecs

def ulaw_encode(x):
    """int16 numpy array -> mu-law bytes (ITU-T G.711, as in Sun's g711.c)."""
    x = np.asarray(x, dtype=np.int32)
    sign = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exp = np.floor(np.log2(mag)).astype(np.int32) - 7
    exp = np.clip(exp, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    return ((((exp << 4) | mant) ^ sign) & 0xFF).astype(np.uint8).tobytes()


def _ulaw_table():
    u = np.arange(256, dtype=np.int32)
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


ULAW_DEC = _ulaw_table()


def ulaw_decode(b):
    return ULAW_DEC[np.frombuffer(b, dtype=np.uint8)]


class Opus:
    """Minimal ctypes binding to the system libopus (a janus dependency)."""
    APPLICATION_VOIP = 2048

    def __init__(self):
        name = ctypes.util.find_library("opus") or "libopus.so.0"
        lib = ctypes.CDLL(name)
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                            ctypes.POINTER(ctypes.c_int)]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                    ctypes.c_void_p, ctypes.c_int32]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                    ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self.lib = lib

    def encoder(self, rate):
        err = ctypes.c_int(0)
        enc = self.lib.opus_encoder_create(rate, 1, self.APPLICATION_VOIP, ctypes.byref(err))
        if err.value != 0:
            raise RuntimeError(f"opus_encoder_create {err.value}")
        return enc

    def encode(self, enc, pcm):
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        out = ctypes.create_string_buffer(1500)
        n = self.lib.opus_encode(enc, pcm.ctypes.data, len(pcm), out, 1500)
        if n < 0:
            raise RuntimeError(f"opus_encode {n}")
        return out.raw[:n]

    def decoder(self, rate):
        err = ctypes.c_int(0)
        dec = self.lib.opus_decoder_create(rate, 1, ctypes.byref(err))
        if err.value != 0:
            raise RuntimeError(f"opus_decoder_create {err.value}")
        return dec

    def decode(self, dec, data, rate):
        n_max = rate // 50 * 6
        pcm = np.zeros(n_max, dtype=np.int16)
        buf = ctypes.create_string_buffer(data, len(data))
        n = self.lib.opus_decode(dec, buf, len(data), pcm.ctypes.data, n_max, 0)
        if n < 0:
            raise RuntimeError(f"opus_decode {n}")
        return pcm[:n]


# ----------------------------------------------------------------------------
# participants

def tone_freqs(k):
    """Distinct integer frequencies (Hz) in 200..3300, >= 3 Hz apart for k <= 1000."""
    if k <= 8:
        base = [440, 1000, 2200, 700, 1500, 2900, 550, 1800]
        return base[:k]
    step = 3100.0 / k
    return [200 + int(round(i * step)) for i in range(k)]


class Participant:
    __slots__ = ("idx", "room", "freq", "sock", "port", "jport", "hid", "uid", "ssrc", "seq",
                 "ts", "ts_step", "pt", "frames", "fi", "rx_n", "rx_last", "rx_sum", "rx_max",
                 "rx_gaps", "rx_seq", "rx_seqgaps", "capture", "cap", "first_rx")

    def __init__(self, idx, room, freq, port, codec, amp, opus=None, rng=None):
        self.idx, self.room, self.freq, self.port = idx, room, freq, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((HOST, port))
        self.sock.setblocking(False)
        self.jport = None
        self.ssrc = (rng or random).getrandbits(32)
        self.seq = (rng or random).getrandbits(16)
        self.ts = (rng or random).getrandbits(32)
        phase = (rng or random).random() * 2 * np.pi
        # one second of audio = 50 frames; integer Hz => seamless loop
        if codec == "opus":
            self.pt, self.ts_step, rate = 111, 960, 48000
            t = np.arange(2 * rate) / rate
            pcm = (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)
            enc = opus.encoder(rate)
            n = rate // 50
            frames = [opus.encode(enc, pcm[i * n:(i + 1) * n]) for i in range(100)]
            self.frames = frames[50:]          # encoder warmed up on the first second
        else:
            self.pt, self.ts_step, rate = 0, 160, 8000
            t = np.arange(rate) / rate
            pcm = np.round(amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)
            u = ulaw_encode(pcm)
            self.frames = [u[i * 160:(i + 1) * 160] for i in range(50)]
        self.fi = 0
        self.capture = False
        self.cap = []
        self.reset_rx()

    def reset_rx(self):
        self.rx_n = 0
        self.rx_last = None
        self.rx_sum = 0.0
        self.rx_max = 0.0
        self.rx_gaps = 0
        self.rx_seq = None
        self.rx_seqgaps = 0
        self.first_rx = None

    def packet(self):
        hdr = struct.pack("!BBHII", 0x80, self.pt, self.seq, self.ts, self.ssrc)
        pkt = hdr + self.frames[self.fi]
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + self.ts_step) & 0xFFFFFFFF
        self.fi = (self.fi + 1) % len(self.frames)
        return pkt

    def close(self):
        self.sock.close()


def parse_ts(anc):
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(data) >= 16:
            s, ns = struct.unpack("qq", data[:16])
            return s + ns * 1e-9
    return time.time()


# ----------------------------------------------------------------------------
# /proc helpers

def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime


def proc_threads(pid):
    """{tid: (comm, run_seconds, runqueue_wait_seconds)} for every live thread of pid,
    from /proc/<pid>/task/<tid>/schedstat (scheduler clock, ns precision; the
    kernel here has CONFIG_SCHED_INFO=y, tick-based cputime accounting)."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"{base}/{tid}/schedstat") as f:
                run_ns, wait_ns = f.read().split()[:2]
        except OSError:
            continue
        out[tid] = (comm, int(run_ns) / 1e9, int(wait_ns) / 1e9)
    return out


def thread_kind(comm):
    w = comm.split()
    if w and w[0] == "rtp":
        return "rtp_rx"
    if w and w[0] == "mixer":
        return "part_enc" if len(w) >= 3 else "room_mix"
    return "core"


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1]
    return None


def sys_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]), idle


def self_cpu():
    t = os.times()
    return t.user + t.system





class CpuWindow:
    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.t = time.monotonic()
        self.j = proc_cpu(self.pid)
        self.jt = proc_threads(self.pid)
        self.g = self_cpu()
        self.gt = proc_threads(os.getpid())
        self.s = sys_cpu()

    def stop(self):
        dt = time.monotonic() - self.t
        j = proc_cpu(self.pid) - self.j
        jt = proc_threads(self.pid)
        g = self_cpu() - self.g
        gt = proc_threads(os.getpid())
        s1 = sys_cpu()
        tot = s1[0] - self.s[0]
        idle = s1[1] - self.s[1]
        kinds, jrun, jwait = {}, 0.0, 0.0
        for tid, (comm, run, wait) in jt.items():
            _, run0, wait0 = self.jt.get(tid, (comm, 0.0, 0.0))
            kinds[thread_kind(comm)] = kinds.get(thread_kind(comm), 0.0) + (run - run0)
            jrun += run - run0
            jwait += wait - wait0
        grun = sum(run - self.gt.get(tid, (comm, 0.0, 0.0))[1] for tid, (comm, run, _) in gt.items())
        ncpu = os.cpu_count() or 1
        return {
            "window_s": round(dt, 2),
            "janus_cpu_pct": round(100 * j / dt, 2),
            "janus_sched_pct": round(100 * jrun / dt, 2),
            "janus_runq_wait_pct": round(100 * jwait / dt, 2),
            "janus_by_thread_pct": {k: round(100 * v / dt, 2) for k, v in sorted(kinds.items())},
            "gen_sched_pct": round(100 * grun / dt, 2),
            "janus_threads": int(proc_status(self.pid, "Threads") or 0),
            "janus_rss_kb": int(proc_status(self.pid, "VmRSS") or 0),
            "gen_cpu_pct": round(100 * g / dt, 2),
            # /proc/stat is tick-sampled (CONFIG_TICK_CPU_ACCOUNTING): rough at low load
            "machine_busy_pct": round(100 * ncpu * (tot - idle) / tot, 1) if tot else None,
            "loadavg1": float(open("/proc/loadavg").read().split()[0]),
            "other_load_pct": round(100 * ncpu * (tot - idle) / tot - 100 * (j + g) / dt, 1) if tot else None,
        }


# ----------------------------------------------------------------------------
# the run

def setup_rooms(sess, hid_admin, rooms, sampling_rate, codec, parts, join_timeout=60.0):
    for room in rooms:
        r = sess.request(hid_admin, {"request": "create", "room": room, "permanent": False,
                                     "description": f"bench {room}", "sampling_rate": sampling_rate,
                                     "allow_rtp_participants": True, "audiolevel_ext": False,
                                     "is_private": True})
        if r.get("audiobridge") != "created":
            raise RuntimeError(f"create room failed: {r}")
    txs = []
    for p in parts:
        p.hid = sess.attach()
        body = {"request": "join", "room": p.room, "display": f"p{p.idx}-{p.freq}Hz",
                "codec": codec,
                "rtp": {"ip": HOST, "port": p.port}}
        if codec == "opus":
            body["rtp"]["payload_type"] = p.pt
        txs.append(sess.send_async(p.hid, body))
    deadline = time.monotonic() + join_timeout
    for p, t in zip(parts, txs):
        ev = sess.wait_event(t, timeout=max(1.0, deadline - time.monotonic()))
        d = ev["plugindata"]["data"]
        if d.get("audiobridge") != "joined" or "rtp" not in d:
            raise RuntimeError(f"join failed: {d}")
        p.uid = d["id"]
        p.jport = d["rtp"]["port"]
        if d["rtp"]["ip"] != HOST:
            raise RuntimeError(f"janus expects RTP at {d['rtp']['ip']}, not loopback")
        p.sock.connect((HOST, p.jport))     # symmetric RTP: Janus connect()s to our port
    return txs


def media_loop(parts, warmup, duration, cpu, capture_last_s=4.0):
    """Send every participant's tone every 20 ms (staggered over the 20 ms),
    receive mixes with kernel timestamps.  Bounded by warmup+duration."""
    k = len(parts)
    ep = select.epoll()
    byfd = {}
    for p in parts:
        ep.register(p.sock.fileno(), select.EPOLLIN)
        byfd[p.sock.fileno()] = p
    offs = [i * PTIME / k for i in range(k)]
    anc = socket.CMSG_SPACE(16)
    t0 = time.monotonic() + 0.02
    t_meas = t0 + warmup
    t_end = t_meas + duration
    t_cap = t_end - capture_last_s
    nxt, cycle = 0, 0
    late_max, late_over5, sent, send_err = 0.0, 0, 0, 0
    measuring = capturing = False
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if not measuring and now >= t_meas:
            cpu.start()
            for p in parts:
                p.reset_rx()
            late_max, late_over5, sent = 0.0, 0, 0
            measuring = True
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
            try:
                p.sock.send(p.packet())
                sent += 1
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
            p = byfd[fd]
            s = p.sock
            while True:
                try:
                    data, ad, _, _ = s.recvmsg(2048, anc)
                except BlockingIOError:
                    break
                except OSError:       # e.g. ICMP refused before Janus is ready
                    break
                if len(data) < 12:
                    continue
                ts = parse_ts(ad)
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
    res = cpu.stop()
    ep.close()
    n = [p.rx_n for p in parts]
    ia = [p.rx_sum / (p.rx_n - 1) for p in parts if p.rx_n > 1]
    res.update({
        "rx_expected_per_part": int(duration / PTIME),
        "rx_min": min(n), "rx_mean": round(sum(n) / k, 1),
        "silent_parts": sum(1 for x in n if x == 0),
        "ia_mean_ms": round(1000 * sum(ia) / len(ia), 2) if ia else None,
        "ia_max_ms": round(1000 * max(p.rx_max for p in parts), 1),
        "gaps_gt40ms": sum(p.rx_gaps for p in parts),
        "parts_with_gap": sum(1 for p in parts if p.rx_gaps),
        "seq_lost": sum(p.rx_seqgaps for p in parts),
        "gen_sent": sent, "gen_send_err": send_err,
        "gen_late_max_ms": round(1000 * late_max, 2),
        "gen_late_gt5ms": late_over5,
    })
    return res


def spectrum_check(p, all_parts, codec, opus=None, rate_rx=8000):
    """Own tone must be absent from p's mix, the room-mates' tones present."""
    if not p.cap:
        return {"part": p.idx, "ok": False, "why": "nothing captured"}
    cap = sorted(p.cap, key=lambda x: x[0])   # no wrap handling needed for 4 s of capture
    if codec == "opus":
        dec = opus.decoder(rate_rx)
        pcm = np.concatenate([opus.decode(dec, b, rate_rx) for _, b in cap])
    else:
        rate_rx = 8000
        pcm = np.concatenate([ulaw_decode(b) for _, b in cap])
    n = min(len(pcm), 2 * rate_rx)
    x = pcm[-n:].astype(np.float64)
    win = np.hanning(n)
    spec = np.abs(np.fft.rfft(x * win)) / (win.sum() / 2)
    res_hz = rate_rx / n

    def level(f):
        b = int(round(f / res_hz))
        return float(spec[max(b - 2, 0):b + 3].max())

    mates = [q for q in all_parts if q.room == p.room and q is not p]
    own = level(p.freq)
    others = [level(q.freq) for q in mates]
    if not others:
        return {"part": p.idx, "ok": False, "why": "alone in room"}
    weakest, median = min(others), float(np.median(others))
    db = lambda a, b: 20 * np.log10((a + 1e-9) / (b + 1e-9))
    out = {
        "part": p.idx, "freq": p.freq,
        "own_level": round(own, 1),
        "others_min_level": round(weakest, 1),
        "others_median_level": round(median, 1),
        "others_max_level": round(max(others), 1),
        # own tone, had it been mixed in, would sit at about the others' level (same amplitude)
        "own_vs_median_other_db": round(db(own, median), 1),
        "own_vs_weakest_other_db": round(db(own, weakest), 1),
        "weakest_vs_median_other_db": round(db(weakest, median), 1),
        "pcm_peak": int(np.abs(pcm[-n:]).max()),
    }
    # own tone absent (< -20 dB, i.e. < 10 % amplitude) and every room-mate's tone present
    out["ok"] = bool(out["own_vs_median_other_db"] < -20 and out["weakest_vs_median_other_db"] > -12)
    return out


def run_once(args, janus_pid, rooms_spec, label):
    """rooms_spec: list of (room_id, n_participants)."""
    rng = random.Random(12345)
    opus = Opus() if args.codec == "opus" else None
    parts = []
    port = GEN_PORT_BASE
    gidx = 0
    for room, n in rooms_spec:
        freqs = tone_freqs(n)
        # keep the mix (n-1 random-phase tones, RMS = amp*sqrt((n-1)/2)) well below full
        # scale: Janus 1.1.2 does not saturate, it truncates int32 -> int16 (wraps)
        amp = min(args.amp, int(args.mix_rms / np.sqrt(max(n - 1, 1) / 2.0)))
        for i in range(n):
            if port > GEN_PORT_MAX:
                raise RuntimeError("generator port range exhausted")
            p = Participant(gidx, room, freqs[i], port, args.codec, amp, opus, rng)
            p.capture = i < args.check_parts
            parts.append(p)
            port += 2
            gidx += 1
    sess = JanusSession(args.http_port)
    hid_admin = sess.attach()
    t_join = time.monotonic()
    try:
        setup_rooms(sess, hid_admin, [r for r, _ in rooms_spec], args.sampling_rate, args.codec, parts)
        join_s = time.monotonic() - t_join
        log(f"{label}: {len(parts)} participants joined in {join_s:.1f}s "
            f"(janus ports {min(p.jport for p in parts)}..{max(p.jport for p in parts)})")
        cpu = CpuWindow(janus_pid)
        res = media_loop(parts, args.warmup, args.duration, cpu)
        checks = [spectrum_check(p, parts, args.codec, opus, args.sampling_rate if args.codec == "opus" else 8000)
                  for p in parts if p.capture]
        k = len(parts)
        res = {"label": label, "codec": args.codec, "sampling_rate": args.sampling_rate,
               "rooms": len(rooms_spec), "participants": k, "join_s": round(join_s, 1), **res,
               "janus_cpu_pct_per_part": round(res["janus_cpu_pct"] / k, 3),
               "gen_cpu_pct_per_part": round(res["gen_cpu_pct"] / k, 3),
               "selfcheck_ok": all(c["ok"] for c in checks), "selfcheck": checks,
               "janus_events_drained": sess.n_events}
    finally:
        for room, _ in rooms_spec:
            try:
                sess.request(hid_admin, {"request": "destroy", "room": room})
            except Exception as e:  # noqa: BLE001 - best effort teardown
                log("room destroy:", e)
        sess.destroy()
        for p in parts:
            p.close()
    return res


def idle_baseline(pid, seconds):
    cpu = CpuWindow(pid)
    cpu.start()
    time.sleep(seconds)
    r = cpu.stop()
    return {"label": "idle (no rooms)", "participants": 0, **r}


def print_table(rows):
    hdr = ("| run | K | Janus CPU % (schedstat) | Janus % per part | room-mix / part-enc / rtp-rx / core % | Janus runq wait % "
           "| gen CPU % (schedstat) | machine busy % | rx / expected | ia mean ms | ia max ms | gaps > 40 ms | gen late max ms | selfcheck |")
    print(hdr)
    print("|" + "|".join(["---"] * (hdr.count("|") - 1)) + "|")
    for r in rows:
        bt = r.get("janus_by_thread_pct", {})
        split = " / ".join(str(bt.get(k, 0)) for k in ("room_mix", "part_enc", "rtp_rx", "core"))
        head = (f"| {r['label']} | {r['participants']} | {r['janus_cpu_pct']} ({r['janus_sched_pct']}) |"
                f" {r.get('janus_cpu_pct_per_part', '-')} | {split} | {r['janus_runq_wait_pct']} "
                f"| {r['gen_cpu_pct']} ({r['gen_sched_pct']}) | {r['machine_busy_pct']} ")
        if r.get("participants"):
            print(head + f"| {r['rx_mean']} / {r['rx_expected_per_part']} | {r['ia_mean_ms']} | {r['ia_max_ms']} "
                  f"| {r['gaps_gt40ms']} ({r['parts_with_gap']} parts) | {r['gen_late_max_ms']} "
                  f"| {'ok' if r['selfcheck_ok'] else 'FAIL'} |")
        else:
            print(head + "| - | - | - | - | - | - |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["verify", "bench", "config"])
    ap.add_argument("--codec", choices=["pcmu", "opus"], default="pcmu")
    ap.add_argument("--sampling-rate", type=int, default=16000, choices=[8000, 16000, 24000, 48000])
    ap.add_argument("--ks", default="10,50,100,200", help="bench: participants in one room")
    ap.add_argument("--rooms", default="", help="bench: numbers of rooms (of --per-room each) instead of --ks")
    ap.add_argument("--per-room", type=int, default=5)
    ap.add_argument("--k", type=int, default=3, help="verify: participants")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--idle", type=float, default=5.0, help="bench: idle-baseline seconds (0 = skip)")
    ap.add_argument("--amp", type=int, default=6000, help="max tone amplitude (scaled down for big rooms)")
    ap.add_argument("--mix-rms", type=float, default=5000.0,
                    help="target RMS of a participant's mix; tone amplitude = min(--amp, this/sqrt((n-1)/2))")
    ap.add_argument("--check-parts", type=int, default=3, help="participants per room to spectrum-check")
    ap.add_argument("--workdir", default="/tmp/janus-bench")
    ap.add_argument("--http-port", type=int, default=HTTP_PORT)
    ap.add_argument("--debug-level", type=int, default=4)
    ap.add_argument("--no-start", action="store_true", help="use an already running Janus")
    ap.add_argument("--janus-pid", type=int, help="PID of that Janus (for CPU accounting)")
    ap.add_argument("--json-out", help="append one JSON object per run to this file")
    args = ap.parse_args()

    if args.mode == "config":
        print(write_config(args.workdir, args.http_port, args.debug_level))
        return 0

    janus = None
    if args.no_start:
        if not args.janus_pid:
            ap.error("--no-start needs --janus-pid")
        pid = args.janus_pid
    else:
        janus = JanusProcess(args.workdir, args.http_port, args.debug_level)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    rows = []
    try:
        if janus:
            janus.start()
            pid = janus.pid
            time.sleep(1.0)
        if args.mode == "verify":
            args.check_parts = args.k
            r = run_once(args, pid, [(1001, args.k)], f"verify-{args.codec}")
            for c in r["selfcheck"]:
                log(f"participant {c['part']} ({c['freq']} Hz): own tone {c['own_vs_median_other_db']} dB "
                    f"vs the other tones (own {c['own_level']}, others {c['others_min_level']}..{c['others_max_level']}) "
                    f"-> {'OK' if c['ok'] else 'FAIL'}")
            rows.append(r)
        else:
            if args.idle > 0:
                rows.append(idle_baseline(pid, args.idle))
            if args.rooms:
                for nr in [int(x) for x in args.rooms.split(",") if x]:
                    spec = [(2000 + i, args.per_room) for i in range(nr)]
                    rows.append(run_once(args, pid, spec, f"{nr}x{args.per_room}"))
                    log(json.dumps({k: v for k, v in rows[-1].items() if k != "selfcheck"}))
                    time.sleep(2.0)
            else:
                for k in [int(x) for x in args.ks.split(",") if x]:
                    rows.append(run_once(args, pid, [(1000 + k, k)], f"1x{k}"))
                    log(json.dumps({k2: v for k2, v in rows[-1].items() if k2 != "selfcheck"}))
                    time.sleep(2.0)
    finally:
        if janus:
            janus.stop()
    if args.json_out:
        with open(args.json_out, "a") as f:
            for r in rows:
                f.write(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), **r}) + "\n")
    print_table(rows)
    return 0 if all(r.get("selfcheck_ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
