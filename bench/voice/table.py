#!/usr/bin/env python3
"""Markdown table of one bench/voice/run.sh run (OUT/results.txt, OUT/status.txt).

Usage: bench/voice/table.py OUT

For each server: its max held rate of routed calls (the highest offered rate with fewer than
HOLD_FAIL_PCT % failed calls and at least HOLD_RATIO of the rate achieved), sipp's p50/p99
call setup there, the server's CPU-ms per answered call at its max held rate, and at the
highest rate both servers held (the figure that does not depend on where each one saturated).
Then confab against Kamailio: the ratio of max held rates and of CPU per call (the goal of
issue #17: at least 2x the rate with fewer CPU-seconds per call).
"""
import os
import re
import sys

# server rate achieved calls ok fail% retrans p50 p90 p99 max srvCPU cliCPU rest ms/call held
ROW = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)"
                 r"\s+(\d+)%\s+(\d+)%\s+(\d+)%\s+(\S+)\s+(yes|no)\s*$")


def load(out):
    steps = {}
    try:
        for line in open(os.path.join(out, "results.txt")):
            m = ROW.match(line)
            if not m:
                continue
            sv, rate = m.group(1), int(m.group(2))
            mspc = m.group(15)
            steps.setdefault(sv, {})[rate] = {
                "p50": m.group(8), "p99": m.group(10), "srv": int(m.group(12)), "cli": int(m.group(13)),
                "rest": int(m.group(14)), "mspc": None if mspc == "-" else float(mspc), "held": m.group(16) == "yes",
            }
    except FileNotFoundError:
        pass
    status = {}
    try:
        for line in open(os.path.join(out, "status.txt")):
            sv, _, what = line.strip().partition(": ")
            status[sv] = what
    except FileNotFoundError:
        pass
    return steps, status


def max_held(st):
    held = [r for r, s in st.items() if s["held"]]
    return max(held) if held else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    return f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    steps, status = load(out)
    servers = [s for s in ("kamailio", "confab") if s in steps or s in status]
    both = None
    if all(s in steps for s in ("kamailio", "confab")):
        common = [r for r in steps["kamailio"] if r in steps["confab"]
                  and steps["kamailio"][r]["held"] and steps["confab"][r]["held"]]
        both = max(common) if common else None
    print("| server | max held calls/s | sipp p50/p99 ms at max | server CPU at max | server CPU-ms per call at max |"
          f" server CPU-ms per call at {fmt(both, '/s')} (both held) |")
    print("|---|---|---|---|---|---|")
    for sv in servers:
        st = steps.get(sv, {})
        mh = max_held(st)
        if mh is None:
            why = status.get(sv, "")
            if not why or why.startswith("measured"):
                why = f"no rate held (lowest tried: {min(st)}/s)" if st else "no result"
            print(f"| {sv} | not measured: {why} | - | - | - | - |")
            continue
        top = max(st)
        note = " (the highest rate tried)" if mh == top else ""
        s = st[mh]
        atboth = st[both]["mspc"] if both is not None else None
        print(f"| {sv} | {mh}{note} | {s['p50']}/{s['p99']} | {s['srv']}% | {fmt(s['mspc'])} | {fmt(atboth)} |")
    k, c = steps.get("kamailio", {}), steps.get("confab", {})
    mk, mc = max_held(k), max_held(c)
    if mk and mc:
        print()
        rate_ratio = mc / mk
        line = f"confab / Kamailio max held rate: {rate_ratio:.2f}x"
        if both is not None and k[both]["mspc"] and c[both]["mspc"]:
            line += (f"; CPU per call at {both}/s: Kamailio {k[both]['mspc']:.3f} ms, confab "
                     f"{c[both]['mspc']:.3f} ms ({k[both]['mspc'] / c[both]['mspc']:.2f}x less for confab)")
        print(line + ".")
        goal = rate_ratio >= 2 and both is not None and (c[both]["mspc"] or 1e9) < (k[both]["mspc"] or 0)
        print(f"Goal of issue #17 (>= 2x Kamailio's rate with fewer CPU-seconds per call): {'met' if goal else 'not met'}.")


if __name__ == "__main__":
    main()
