#!/usr/bin/env bash
# The pool's benchmark (BENCHMARKS.md "A pool of front ends"), in one run on PostgreSQL:
#   sqlite - one front end on the default embedded store (a pool of one), 2 workers
#   alone  - one front end, [pool] enabled = false (registrations in its memory only), 2 workers
#   shared - the same front end with the shared location (the default), 2 workers
#   pool   - two front ends (127.0.0.1 and 127.0.0.2), 1 worker each, sipp split between them
#            (users 0-4999 through the first, 5000-9999 through the second, at the same time)
# each with ../shared/bench's reg and call scenarios over UDP. PostgreSQL runs on the same
# 2 cores. Results: bench-results/pool-<date>/.
#
# Usage: bench/pool/run.sh            (after cargo build --release --bin confab)
# Environment: CONFAB_BENCH_POSTGRES (default: the CI's confab_ci database), RATES (one
#   front end), POOL_RATES (each of the two), DURATION, SCENARIOS (default "reg call"),
#   MODES (default "alone shared"), SQLITE=0 / POOL=0 to leave those out, POOL_WORKERS
#   (worker threads of each pool front end, default 1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH=${BENCH:-$ROOT/../shared/bench}
BIN=$ROOT/target/release/confab
PG=${CONFAB_BENCH_POSTGRES:-postgres://confab_ci:confab_ci@127.0.0.1:5432/confab_ci}
SCHEMA=confab_bench_pool
STORE="$PG?options=-c%20search_path%3D$SCHEMA"
export RATES=${RATES:-"4000 8000 12000 16000 24000 32000"}
export DURATION=${DURATION:-6} MAX_CALLS=${MAX_CALLS:-40000} PAUSE=${PAUSE:-2}
SCENARIOS=${SCENARIOS:-"reg call"}
# each front end of the pool gets half the users and half the load: finer steps
POOL_RATES=${POOL_RATES:-"1000 2000 3000 4000 6000 8000 12000 16000"}
OUTDIR=${OUTDIR:-$ROOT/bench-results/pool-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR"
[[ -x $BIN ]] || { echo "build first: cargo build --release --bin confab" >&2; exit 2; }

psql "$PG" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" >/dev/null
"$BIN" user seed --store "$STORE" --domain example.test --count 10000 --init >/dev/null

PIDS=()
# (the servers are started in command substitutions: not our children, so no `wait`)
stop_all() {
  for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do
    for _ in $(seq 100); do [[ -n $p ]] && kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  PIDS=()
}
trap stop_all EXIT

# start_fe NAME IP ENABLED WORKERS [STORE] -> prints the pid
start_fe() {
  local name=$1 ip=$2 enabled=$3 workers=$4 store=${5:-$STORE} dir=$OUTDIR/$1
  mkdir -p "$dir"
  cat > "$dir/confab.toml" <<TOML
listen = ["$ip:5080"]
domains = ["example.test"]
workers = $workers
[defence]
trusted = ["127.0.0.1", "127.0.0.2"]
[auth]
accept_server_digest_uri = true
[pool]
enabled = $enabled
name = "$name"
[log]
level = "warn"
TOML
  "$BIN" serve --config "$dir/confab.toml" --data "$dir" --store "$store" >"$dir/out.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    sipsak -s "sip:$ip:5080" -H 127.0.0.1 >/dev/null 2>&1 && { echo "$pid"; return; }
    sleep 0.2
  done
  echo "front end $name did not start" >&2; cat "$dir/out.log" >&2; exit 1
}

held() { grep -h "MAX HELD" "$1" | tail -1; }

run_one() {   # label scenario ip pid [env...]
  local label=$1 sc=$2 ip=$3 pid=$4; shift 4
  env "$@" SERVER_PID=$pid OUT="$OUTDIR/$label-$sc" LOCAL_IP=$ip \
    "$BENCH/bench.sh" "$ip" 5080 example.test "$sc" > "$OUTDIR/$label-$sc.txt" 2>&1 || true
  echo "$label $sc: $(held "$OUTDIR/$label-$sc.txt")"
}

if [[ ${SQLITE:-1} == 1 ]]; then
  "$BIN" user seed --data "$OUTDIR/sqlite-store" --domain example.test --count 10000 --init >/dev/null
  pid=$(start_fe fe-sqlite 127.0.0.1 true 2 "$OUTDIR/sqlite-store"); PIDS+=("$pid")
  for sc in $SCENARIOS; do run_one sqlite "$sc" 127.0.0.1 "$pid"; done
  stop_all
fi

for mode in ${MODES:-alone shared}; do
  enabled=$([[ $mode == alone ]] && echo false || echo true)
  pid=$(start_fe "fe-$mode" 127.0.0.1 "$enabled" 2); PIDS+=("$pid")
  for sc in $SCENARIOS; do run_one "$mode" "$sc" 127.0.0.1 "$pid"; done
  stop_all
done

[[ ${POOL:-1} == 1 ]] || { echo "results in $OUTDIR"; exit 0; }
pa=$(start_fe fe-a 127.0.0.1 true "${POOL_WORKERS:-1}"); PIDS+=("$pa")
pb=$(start_fe fe-b 127.0.0.2 true "${POOL_WORKERS:-1}"); PIDS+=("$pb")
for sc in $SCENARIOS; do
  run_one pool-a "$sc" 127.0.0.1 "$pa" RATES="$POOL_RATES" USERS_FIRST=0 USERS=5000 &
  run_one pool-b "$sc" 127.0.0.2 "$pb" RATES="$POOL_RATES" USERS_FIRST=5000 USERS=5000 UAS_PORT=5091 &
  wait
done
stop_all
psql "$PG" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null
echo "results in $OUTDIR"
