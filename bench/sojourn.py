#!/usr/bin/env python3
"""confab's own latency during each load step of ../shared/bench (bench.sh or compare.sh).

    python3 bench/sojourn.py RESULTS_DIR [METRICS_URL] &     # before starting the bench
    ... compare.sh / bench.sh with RESULTS_DIR ...
    kill %1                                                  # afterwards

sipp's latency includes sipp's own queues; on a 2-core machine shared with sipp that is
most of it at high rates. confab measures, for every message, the time from its receipt
(the kernel's receive timestamp for UDP) until what it caused was sent, and serves the
histogram at /metrics. This watches RESULTS_DIR for the folder bench.sh makes when a step
starts (`.../confab_<scenario>_<u1|t1>/<scenario>_<rate>`) and for the line it writes to
summary.txt when the step ends, reads /metrics at both moments, and appends the step's
percentiles (bucket upper bounds) to RESULTS_DIR/<compare folder>/confab_sojourn.txt.
Steps of a server whose folder does not start with `confab_` are ignored.
"""
import os
import re
import sys
import time
import urllib.request

ROOT = sys.argv[1] if len(sys.argv) > 1 else "bench-results"
URL = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8088/metrics"
TRANSPORT = {"u1": "udp", "un": "udp", "t1": "tcp", "tn": "tcp"}
STEP = re.compile(r"^(options|reg|message|call|publish|subscribe)_(\d+)$")
BUCKET = re.compile(r'^confab_sip_sojourn_seconds_bucket\{transport="(\w+)",le="([^"]+)"\} (\d+)')


def scrape():
    """{transport: [(le, cumulative count)]} and process CPU seconds."""
    text = urllib.request.urlopen(URL, timeout=5).read().decode()
    hist, cpu = {}, 0.0
    for line in text.splitlines():
        m = BUCKET.match(line)
        if m:
            le = float("inf") if m[2] == "+Inf" else float(m[2])
            hist.setdefault(m[1], []).append((le, int(m[3])))
        elif line.startswith("process_cpu_seconds_total "):
            cpu = float(line.split()[1])
    return hist, cpu


def quantile(buckets, q):
    total = buckets[-1][1]
    if total == 0:
        return None
    want = q * total
    for le, c in buckets:
        if c >= want:
            return le
    return float("inf")


def fmt_ms(le):
    if le is None:
        return "-"
    if le == float("inf"):
        return ">2500"
    return f"{le * 1000:g}"


def main():
    started = time.time()
    active = {}  # step dir -> (scenario, rate, transport, summary path, scrape at its start)
    seen = set()
    while True:
        # only ROOT/<run>/confab_<scenario>_<tr>/ folders of runs started after us: cheap
        # enough to poll while the benchmark runs
        for run in os.scandir(ROOT):
            if not run.is_dir() or run.stat().st_mtime < started - 1:
                continue
            for server in os.scandir(run.path):
                if not server.is_dir() or not server.name.startswith("confab_"):
                    continue
                tr = TRANSPORT.get(server.name.rsplit("_", 1)[-1], "udp")
                for step in os.scandir(server.path):
                    m = STEP.match(step.name)
                    if not m or step.path in seen or not step.is_dir():
                        continue
                    seen.add(step.path)
                    summary = os.path.join(server.path, "summary.txt")
                    active[step.path] = (m[1], int(m[2]), tr, summary, scrape())
        for path, (scenario, rate, tr, summary, (h0, c0)) in list(active.items()):
            try:
                lines = open(summary).read().splitlines()
            except OSError:
                continue
            done = [l for l in lines if re.match(rf"^{scenario}\s+\S+\s+{rate}\s", l)]
            if not done:
                continue
            h1, c1 = scrape()
            del active[path]
            b0 = dict(h0.get(tr, []))
            delta = [(le, c - b0.get(le, 0)) for le, c in h1.get(tr, [])]
            n = delta[-1][1] if delta else 0
            row = (f"{scenario:<9} {tr:<3} {rate:>6} {n:>8} "
                   + " ".join(f"{fmt_ms(quantile(delta, q)):>7}" for q in (0.5, 0.99, 0.999))
                   + f" {c1 - c0:>7.2f}")
            out = os.path.join(os.path.dirname(os.path.dirname(path)), "confab_sojourn.txt")
            new = not os.path.exists(out)
            with open(out, "a") as f:
                if new:
                    f.write("# confab's own sojourn per message, ms (bucket upper bounds), and its CPU-seconds in the step\n")
                    f.write(f"{'scenario':<9} {'tr':<3} {'rate':>6} {'messages':>8} {'p50':>7} {'p99':>7} {'p99.9':>7} {'cpu_s':>7}\n")
                f.write(row + "\n")
            print(row, flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
