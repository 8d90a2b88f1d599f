#!/bin/sh
# The whole MCU comparison in one session: each group of runs (G.711 and Opus; one room of
# K and rooms of 5; every participant talking, and 3 talkers per room) on Janus
# AudioBridge and then on confab, group after group, so that both meet the same machine
# load; then the side-by-side tables. Results: $OUT/mcu.jsonl, $OUT/*.md, $OUT/*.log.
#   sh bench/mcu/run_all.sh [OUT]        (DURATION=10 by default; CONFAB_BIN to pin a binary)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-bench-results/mcu-$(date -u +%Y%m%d-%H%M%S)}
DURATION=${DURATION:-10}
mkdir -p "$OUT"
uptime | tee "$OUT/uptime-start.txt"
group() {  # name, args...
  name=$1; shift
  for server in janus confab; do
    extra=""
    [ "$server" = confab ] && [ -n "${CONFAB_BIN:-}" ] && extra="--confab-bin $CONFAB_BIN"
    # a run that misses deadlines or fails its mix check still writes its row; keep going
    python3 "$HERE/confab_mcu.py" bench --server "$server" --duration "$DURATION" \
      --json-out "$OUT/mcu.jsonl" $extra "$@" > "$OUT/$server-$name.md" 2> "$OUT/$server-$name.log" || true
    cat "$OUT/$server-$name.md"
    uptime >> "$OUT/uptime-runs.txt"
  done
}
group pcmu-1room  --codec pcmu --ks 10,50,100,200,400
group opus-1room  --codec opus --ks 10,50,100,150,200 --idle 0
group pcmu-rooms5 --codec pcmu --rooms 2,10,20,40,80 --per-room 5 --idle 0
group opus-rooms5 --codec opus --rooms 2,10,20,30,40 --per-room 5 --idle 0
group talk3-opus  --codec opus --ks 100,200 --talkers 3 --idle 0
group talk3-pcmu  --codec pcmu --ks 200,400 --talkers 3 --idle 0
uptime | tee "$OUT/uptime-end.txt"
python3 "$HERE/table.py" "$OUT/mcu.jsonl" | tee "$OUT/tables.md"
