#!/usr/bin/env python3
"""Markdown tables of one ../shared/bench/compare.sh run: Kamailio against confab (and, when
the run had it, `floor`: crates/server/examples/sipp_floor.rs, the least a server can do).

Usage: bench/table.py RESULTS_DIR
Throughput: for each scenario and transport, each server's max held rate, the ratio, sipp's
p50/p99 at each server's max held rate, confab's own p99 there (from confab_sojourn.txt,
written by bench/sojourn.py during the run, when present) and confab's highest held rate
with sipp's p99 <= 10 ms.
Latency at twice Kamailio: at 2x Kamailio's max held rate, whether confab held it, confab's
own p99 and sipp's p99 there, and sipp's p99 against the floor at the same rate (what sipp
adds by itself on this machine).
Cost: server CPU-seconds per 1000 flows at the highest rate both servers held, and what
each process used at the first rate confab did not hold (sipp's UAC, its UAS, confab).
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


def uac_cpu(d, sc, tr, rate):
    """sipp UAC CPU % of the step (from /usr/bin/time: wall user sys)."""
    try:
        e, u, s = open(os.path.join(d, f"confab_{sc}_{tr}", f"{sc}_{rate}", "time.txt")).read().split()[-3:]
        return round((float(u) + float(s)) / float(e) * 100)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def sojourn(d):
    """{(scenario, 'u1'|'t1', rate): p99 in ms} from bench/sojourn.py."""
    out = {}
    try:
        for line in open(os.path.join(d, "confab_sojourn.txt")):
            f = line.split()
            if len(f) == 8 and f[2].isdigit():
                out[(f[0], {"udp": "u1", "tcp": "t1"}[f[1]], int(f[2]))] = f[5]
    except FileNotFoundError:
        pass
    return out


def max_held(st):
    held = [r for r, s in st.items() if s["held"]]
    return max(held) if held else None


def main():
    d = sys.argv[1]
    own = sojourn(d)
    rows = []
    for tr, trname in TRANSPORTS.items():
        for sc in SCENARIOS:
            k = steps(os.path.join(d, f"kamailio_{sc}_{tr}", "summary.txt"))
            c = steps(os.path.join(d, f"confab_{sc}_{tr}", "summary.txt"))
            fl = steps(os.path.join(d, f"floor_{sc}_{tr}", "summary.txt"))
            if k or c:
                rows.append((sc, tr, trname, k, c, fl))

    print("| scenario | transport | Kamailio max held | confab max held | ratio | sipp p50/p99 ms at max (Kamailio / confab) | confab's own p99 ms at its max | confab max held with sipp p99 ≤ 10 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for sc, tr, trname, k, c, fl in rows:
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
        fast = [r for r, st in c.items() if st["held"] and int(st["p99"]) <= 10]
        fast = f"{max(fast)}/s" if fast else "-"
        mine = own.get((sc, tr, cm), "-") if cm else "-"
        print(f"| {sc} | {trname} | {fmt(km, k)} | {fmt(cm, c)} | {ratio} | {lat(km, k)} / {lat(cm, c)} | {mine} | {fast} |")

    print()
    print("| scenario | transport | 2× Kamailio's max held | confab held it | confab's own p99 ms there | sipp p50/p99 ms there: confab / floor | floor max held |")
    print("|---|---|---|---|---|---|---|")
    for sc, tr, trname, k, c, fl in rows:
        km = max_held(k)
        if not km:
            continue
        r = 2 * km
        held = "yes" if r in c and c[r]["held"] else ("no" if r in c else "not run")
        lat = lambda st: f"{st[r]['p50']}/{st[r]['p99']}" if r in st else "-"
        fm = max_held(fl)
        print(f"| {sc} | {trname} | {r}/s | {held} | {own.get((sc, tr, r), '-')} | {lat(c)} / {lat(fl)} | {f'{fm}/s' if fm else '-'} |")

    print()
    print("| scenario | transport | rate both held | server CPU-s per 1000 flows there (Kamailio / confab) | ratio | at confab's first failed rate: sipp UAC / sipp UAS / confab CPU |")
    print("|---|---|---|---|---|---|")
    for sc, tr, trname, k, c, fl in rows:
        both = [r for r in k if k[r]["held"] and r in c and c[r]["held"]]
        if both:
            r = max(both)
            ck, cc = k[r]["srv"] / r * 10, c[r]["srv"] / r * 10  # % of a core -> CPU-s per 1000 flows
            cost = f"{ck:.3f} / {cc:.3f}"
            ratio = f"{ck / cc:.1f}×" if cc else "-"
            r = f"{r}/s"
        else:
            r, cost, ratio = "-", "-", "-"
        failed = sorted(x for x in c if not c[x]["held"])
        if failed:
            f = failed[0]
            uac = uac_cpu(d, sc, tr, f)
            uas = c[f]["cli"] - uac if uac is not None else None
            pct = lambda v: "-" if v is None else f"{v}%"
            limit = f"{f}/s: {pct(uac)} / {pct(uas) if sc in ('message', 'call') else '-'} / {c[f]['srv']}%"
        else:
            limit = "none failed (the top rate offered)"
        print(f"| {sc} | {trname} | {r} | {cost} | {ratio} | {limit} |")


if __name__ == "__main__":
    main()
