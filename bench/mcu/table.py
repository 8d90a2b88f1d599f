#!/usr/bin/env python3
"""Side-by-side tables from confab_mcu.py --json-out files (confab and Janus runs).

  python3 bench/mcu/table.py mcu.jsonl [more.jsonl ...]

Per codec and layout (one room of K, rooms of 5) and server: every run (K, server CPU %,
% per participant, generator CPU, mix packets received, gaps > 40 ms, MCU late ticks,
latency p50/p95, spectral check), then a summary: the largest K with no 20 ms deadline
missed (no receiver gap > 40 ms, >= 99 % of the mix packets received, no late MCU tick
where the server reports ticks, spectral check passed), the CPU per participant there,
and the participants per core that figure gives (100 / % per participant); the latency the
mixer adds over the clean runs whose generator kept its pace (p50 range, highest p95).
"""

import json
import sys


def layout(r):
    return "one room" if r["rooms"] == 1 else f"rooms of {r['participants'] // r['rooms']}"


def mcu(r, name):
    for k, v in r.get("mcu_metrics", {}).items():
        if k.split("{", 1)[0] == name:
            return v
    return None


def clean(r):
    late = mcu(r, "confab_mcu_late_ticks_total")
    return (r["gaps_gt40ms"] == 0 and r["rx_mean"] >= 0.99 * r["rx_expected_per_part"]
            and (late is None or late == 0) and r["selfcheck_ok"])


def latency_range(rs):
    """Latency over the clean runs whose generator kept its 20 ms pace (sends never more
    than 20 ms late: a starved generator sends in bursts, which empties or overfills the
    mixers' buffers and says nothing about the mixer): p50 range, highest p95."""
    ok = [r for r in rs if clean(r) and r.get("gen_late_max_ms", 1e9) <= 20 and "lat_p50_ms" in r
          and r.get("lat_found") == r.get("lat_bursts")]
    if not ok:
        return "-"
    lo, hi = min(r["lat_p50_ms"] for r in ok), max(r["lat_p50_ms"] for r in ok)
    return f"{lo}-{hi} (p95 ≤ {max(r['lat_p95_ms'] for r in ok)}; {len(ok)} runs)"


def main(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    if r.get("participants"):
                        rows.append(r)
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    groups = {}
    for r in rows:
        groups.setdefault((r["codec"], layout(r), str(r.get("talkers_per_room", "all"))), []).append(r)
    summary = []
    order = lambda k: (k[2] != "all", k[0] != "pcmu", k[1] != "one room", k)
    for (codec, lay, talk), rs in sorted(groups.items(), key=lambda kv: order(kv[0])):
        print(f"\n### {codec.upper()}, {lay}" + ("" if talk == "all" else f", {talk} talkers per room") + "\n")
        print("| server | K | server CPU % | % per participant | generator CPU % | machine busy % | load avg "
              "| mix rx / expected | gaps > 40 ms | MCU late / ticks | latency p50 / p95 ms | mix check |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        best = {}
        for r in sorted(rs, key=lambda r: (r["server"], r["participants"])):
            late, ticks = mcu(r, "confab_mcu_late_ticks_total"), mcu(r, "confab_mcu_ticks_total")
            lt = f"{int(late)} / {int(ticks)}" if late is not None and ticks is not None else "-"
            lat = f"{r['lat_p50_ms']} / {r['lat_p95_ms']}" if "lat_p50_ms" in r else "-"
            print(f"| {r['server']} | {r['participants']} | {r['server_cpu_pct']} | {r['server_cpu_pct_per_part']} "
                  f"| {r['gen_cpu_pct']} | {r['machine_busy_pct']} | {r.get('loadavg1', '-')} "
                  f"| {r['rx_mean']} / {r['rx_expected_per_part']} "
                  f"| {r['gaps_gt40ms']} | {lt} | {lat} | {'ok' if r['selfcheck_ok'] else 'FAIL'} |")
            if clean(r) and r["participants"] >= best.get(r["server"], {"participants": -1})["participants"]:
                best[r["server"]] = r
        for srv, r in best.items():
            summary.append((codec, lay, talk, srv, r))
    if failed:
        print("\nRuns that could not be measured:\n")
        for r in failed:
            print(f"* {r['server']} {r['codec']} {r['label']}: {r['error']}")
    print("\n### Summary: largest clean run, CPU per participant there, participants per core\n")
    print("| codec | layout | Janus: largest clean K, % of a core per participant, participants per core "
          "| confab: the same | confab / Janus participants per core | Janus: added latency ms, p50 "
          "| confab: added latency ms, p50 |")
    print("|---|---|---|---|---|---|---|")
    by = {}
    for codec, lay, talk, srv, r in summary:
        by.setdefault((codec, lay, talk), {})[srv] = r
    for (codec, lay, talk), d in sorted(by.items(), key=lambda kv: order(kv[0])):
        lay2 = lay + ("" if talk == "all" else f" ({talk} talking)")
        cells, per = [], {}
        for srv in ("janus", "confab"):
            r = d.get(srv)
            if r is None:
                cells.append("none clean")
                continue
            p = r["server_cpu_pct_per_part"]
            per[srv] = 100 / p if p else None
            cells.append(f"{r['participants']}, {p} %, {round(per[srv]) if per[srv] else '-'}")
        ratio = (f"{per['confab'] / per['janus']:.1f}×" if per.get("confab") and per.get("janus") else "-")
        lat = " | ".join(latency_range([r for r in groups[(codec, lay, talk)] if r["server"] == s])
                         for s in ("janus", "confab"))
        print(f"| {codec} | {lay2} | {cells[0]} | {cells[1]} | {ratio} | {lat} |")


if __name__ == "__main__":
    main(sys.argv[1:])
