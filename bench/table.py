#!/usr/bin/env python3
"""Markdown table of one ../shared/bench/compare.sh run: Kamailio against confab.

Usage: bench/table.py RESULTS_DIR [CPU_RATE]
For each scenario and transport: each server's max held rate, the ratio, p50/p99 at its
max held rate, confab's highest held rate with p99 <= 10 ms, and server CPU at CPU_RATE
flows/s (default 2000, a rate both hold).
"""
import os
import re
import sys

SCENARIOS = ["options", "reg", "message", "call", "publish", "subscribe"]
TRANSPORTS = {"u1": "UDP", "t1": "TCP"}
# scenario tr rate achieved calls ok fail% retrans p50 p90 p99 p99.9 max srvCPU cliCPU held
ROW = re.compile(r"^(\w+)\s+(u1|t1)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+([\d.]+)%\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(\d+)%\s+(yes|no)")


def steps(path):
    out = {}
    try:
        for line in open(path):
            m = ROW.match(line)
            if m:
                rate = int(m.group(3))
                out[rate] = {"p50": m.group(7), "p99": m.group(9), "srv": int(m.group(12)), "cli": int(m.group(13)), "held": m.group(14) == "yes"}
    except FileNotFoundError:
        pass
    return out


def max_held(st):
    held = [r for r, s in st.items() if s["held"]]
    return max(held) if held else None


def main():
    d = sys.argv[1]
    cpu_rate = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    print(f"| scenario | transport | Kamailio max held | confab max held | ratio | p50/p99 ms at max (Kamailio / confab) | confab max held with p99 ≤ 10 ms | server CPU at {cpu_rate}/s (Kamailio / confab) |")
    print("|---|---|---|---|---|---|---|---|")
    for tr, trname in TRANSPORTS.items():
        for sc in SCENARIOS:
            k = steps(os.path.join(d, f"kamailio_{sc}_{tr}", "summary.txt"))
            c = steps(os.path.join(d, f"confab_{sc}_{tr}", "summary.txt"))
            if not k and not c:
                continue
            km, cm = max_held(k), max_held(c)
            top = max(list(k) + list(c))

            def fmt(m, st):
                if m is None:
                    return "-"
                return f"≥ {m}/s" if m == top and st[m]["held"] else f"{m}/s"

            ratio = f"{cm / km:.1f}×" if km and cm else "-"
            if km == cm == top:
                ratio = "both at the top"
            lat = lambda m, st: f"{st[m]['p50']}/{st[m]['p99']}" if m else "-"
            cpu = lambda st: f"{st[cpu_rate]['srv']}%" if cpu_rate in st else "-"
            fast = [r for r, st in c.items() if st["held"] and int(st["p99"]) <= 10]
            fast = f"{max(fast)}/s" if fast else "-"
            print(f"| {sc} | {trname} | {fmt(km, k)} | {fmt(cm, c)} | {ratio} | {lat(km, k)} / {lat(cm, c)} | {fast} | {cpu(k)} / {cpu(c)} |")


if __name__ == "__main__":
    main()
