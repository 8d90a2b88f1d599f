#!/usr/bin/env bash
# Routed calls to phone numbers: Kamailio 5.6 (dialplan + dispatcher) against confab, in one run.
#
# Usage: bench/voice/run.sh [SERVER...]      SERVER: kamailio | confab   (default: kamailio confab)
#
# For each server, in turn: generate the routing data (gen.py: a dial plan of 50 rules, 200
# voice routes, two gateways), start the server with it on 127.0.0.1 (Kamailio
# bench/voice/kamailio.cfg on :5070, confab `serve --config bench/confab.toml` on :5080,
# both with 2 workers), start two gateways (sipp UAS uas_gateway.xml on 127.0.0.1:5091 and
# :5092, UDP), check routing (20 calls must be answered) and failover (the first gateway
# answering 503, 20 calls must still be answered, by the second), register the callers,
# then offer calls at increasing rates. A call: INVITE sip:<10 digits>@example.test ->
# 407 -> ACK, INVITE with digest -> normalised to +1NXXNXXXXXX, routed, sent to a gateway
# round-robin -> 100/180/200, ACK, held HOLD_MS, BYE (all through the server, record-routed):
# ../shared/bench/sipp/uac_call.xml, the baseline's call scenario, with gen.py's calls.csv.
# Each step prints:
#   server rate achieved calls ok fail% retrans p50 p90 p99 max(ms) srvCPU% cliCPU% rest% srvCPU-ms/call held
# (rest = the machine's busy CPU outside the server and sipp: the kernel's share of loopback,
# and anything else running — a step with a large rest was disturbed; 100% = one core)
# "held" = < HOLD_FAIL_PCT % of the calls failed and >= HOLD_RATIO x the rate achieved.
# The end: a markdown table (max held calls/s, server CPU-ms per call) -> OUT/table.md.
# A server whose routing check fails is reported as such (with the answers it gave) and
# not loaded; the run goes on with the next server. Exit status 0 when every server was
# measured, 3 when one failed its check, 2 on a setup error.
#
# Environment (defaults):
#   RATES="500 1000 1500 2000 2500 3000 4000 5000 6000 8000 10000 12000"   offered calls/s, ascending
#   DURATION=10 (at most 20)  MAX_CALLS=40000         per step: calls = min(MAX_CALLS, rate*DURATION)
#   HOLD_MS=1000              how long each call is held before the BYE
#   USERS=10000               callers user0000.. (each Enterprise Voice enabled, with a LineURI)
#   HOLD_FAIL_PCT=0.1 HOLD_RATIO=0.95 STOP_ON_FAIL=1 PAUSE=3 RECV_TIMEOUT_MS=5000
#   KAM_CHILDREN=2  CONFAB_WORKERS=2                  the same core budget for both
#   CONFAB_BIN=<target>/release/confab (CARGO_TARGET_DIR or ./target)  CONFAB_CONFIG=bench/confab.toml
#   QUIET_PCT=30 QUIET_WAIT=120   before each step wait (at most QUIET_WAIT s) for the machine's
#                                 busy CPU to fall below QUIET_PCT % of a core (QUIET_WAIT=0: never)
#   DISTURBED_PCT=60              a step not held while more than this % of a core was busy
#                                 outside the benchmark is run once more (disturbed.txt)
#   NICE=0                        scheduling niceness of the servers and sipp (e.g. -10 on a machine
#                                 shared with builds: the same for both servers; needs root)
#   GW_TRANSPORT=udp              how the servers reach the gateways: udp | tcp (the callers: UDP)
#   CHECK_ONLY=1                  only start, load, and check routing and failover (no load steps)
#   SHARED_BENCH=../shared/bench  OUT=./bench-results/<date>_voice
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
if [[ -z ${SHARED_BENCH:-} ]]; then
  for d in "$REPO/../shared/bench" "$REPO/../../shared/bench"; do [[ -d $d ]] && { SHARED_BENCH=$d; break; }; done
fi
[[ -n ${SHARED_BENCH:-} && -f $SHARED_BENCH/lib/common.sh ]] || { echo "ERROR: the shared harness (../shared/bench) is not found; set SHARED_BENCH" >&2; exit 2; }
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)
HARNESS=$SHARED_BENCH
# shellcheck source=/dev/null
source "$SHARED_BENCH/lib/common.sh"    # die, log, tree_cpu_ticks, stat_col, rtt_*, $LOOP, $SIPP_DIR

DOMAIN=example.test
export HARNESS_DOMAINS=$DOMAIN
IP=127.0.0.1
SERVERS=${*:-kamailio confab}
RATES=${RATES:-"500 1000 1500 2000 2500 3000 4000 5000 6000 8000 10000 12000"}
DURATION=${DURATION:-10}
MAX_CALLS=${MAX_CALLS:-40000}
HOLD_MS=${HOLD_MS:-1000}
USERS=${USERS:-10000}
HOLD_FAIL_PCT=${HOLD_FAIL_PCT:-0.1}
HOLD_RATIO=${HOLD_RATIO:-0.95}
STOP_ON_FAIL=${STOP_ON_FAIL:-1}
PAUSE=${PAUSE:-3}
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-5000}
SETUP_RATE=${SETUP_RATE:-2000}
KAM_CHILDREN=${KAM_CHILDREN:-2}
KAM_PORT=5070
CONFAB_WORKERS=${CONFAB_WORKERS:-2}
CONFAB_PORT=5080
CONFAB_BIN=${CONFAB_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/confab}
CONFAB_CONFIG=${CONFAB_CONFIG:-$REPO/bench/confab.toml}
GW1_PORT=5091 GW2_PORT=5092 REG_CONTACT_PORT=5099
GW_TRANSPORT=${GW_TRANSPORT:-udp}
case $GW_TRANSPORT in udp) GW_T=u1 ;; tcp) GW_T=t1 ;; *) die "GW_TRANSPORT must be udp or tcp" ;; esac
CHECK_CALLS=20
QUIET_PCT=${QUIET_PCT:-30}
QUIET_WAIT=${QUIET_WAIT:-120}
DISTURBED_PCT=${DISTURBED_PCT:-60}
CHECK_ONLY=${CHECK_ONLY:-0}
NICE=${NICE:-0}
[[ $NICE =~ ^-?[0-9]+$ ]] && (( NICE >= -20 && NICE <= 19 )) || die "NICE must be -20..19"

for s in $SERVERS; do case $s in kamailio|confab) ;; *) die "unknown server '$s' (kamailio | confab)";; esac; done
(( DURATION >= 1 && DURATION <= 20 )) || die "DURATION must be 1..20 s"
(( USERS >= 1 && USERS <= 10000 )) || die "USERS must be 1..10000"
prev=0; for r in $RATES; do [[ $r =~ ^[0-9]+$ ]] && (( r > prev )) || die "RATES must be ascending integers"; prev=$r; done
for t in sipp sipsak python3 bc; do command -v $t >/dev/null || die "$t is not installed (apt-get install -y sip-tester sipsak python3 bc)"; done

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-${RESULTS_DIR:-$PWD/bench-results}/${STAMP}_voice}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
DATA=$OUT/data
RESULTS=$OUT/results.txt     # one line per step, all servers
: >"$RESULTS"
STATUS=$OUT/status.txt       # server: measured | check failed: ...
: >"$STATUS"

SERVER_PID= GW1_PID= GW2_PID= NAME= PORT=

stop_pid() {   # stop_pid PID: TERM, wait up to 5 s, then KILL (only the PID given)
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
stop_gateways() { stop_pid "$GW1_PID"; stop_pid "$GW2_PID"; GW1_PID= GW2_PID=; }
stop_server() { stop_pid "$SERVER_PID"; SERVER_PID=; }
cleanup() { stop_gateways; stop_server; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

port_bound() {   # port_bound udp|tcp PORT: something listens on 127.0.0.1:PORT
  local flag=-lnu; [[ $1 == tcp ]] && flag=-lnt
  ss -H "$flag" "sport = :$2" 2>/dev/null | grep -q .
}
wait_port_free() {   # the previous server's or gateway's sockets are gone (max 10 s)
  local p
  for p in "$@"; do
    for _ in $(seq 1 100); do port_bound udp "$p" || port_bound tcp "$p" || break; sleep 0.1; done
    port_bound udp "$p" || port_bound tcp "$p" && die "port $p is busy (another server or sipp?)"
  done
  return 0
}

# options_ok PORT: the server answers an OPTIONS ping (sipsak, 1 s)
options_ok() { "$LOOP" timeout 3 sipsak -p $IP -r "$1" -H $IP -s "sip:$IP:$1" >/dev/null 2>&1; }
wait_options() {   # wait_options PORT PID LOG: max ~15 s
  for _ in $(seq 1 75); do
    options_ok "$1" && return 0
    kill -0 "$2" 2>/dev/null || { log "server died:"; tail -20 "$3" >&2; return 1; }
    sleep 0.2
  done
  log "no answer to OPTIONS on $IP:$1 within 15 s"; tail -20 "$3" >&2; return 1
}

start_kamailio() {
  local run=$OUT/kamailio-run
  command -v kamailio >/dev/null || die "kamailio is not installed (apt-get install -y kamailio kamailio-sqlite-modules)"
  mkdir -p "$run"
  "$SHARED_BENCH/kamailio/gen_db.sh" "$run/kamailio.sqlite" 10000 "$DOMAIN" >"$run/gen_db.log" 2>&1 \
    || { cat "$run/gen_db.log" >&2; die "gen_db.sh failed (apt-get install -y sqlite3 kamailio-sqlite-modules)"; }
  cp -r "$DATA/dbtext" "$DATA/dispatcher.list" "$run/"
  local args=(-f "$HERE/kamailio.cfg" -A "DBURL=\"sqlite:///$run/kamailio.sqlite\"" -A "DPURL=\"text://$run/dbtext\""
    -A "DSLIST=\"$run/dispatcher.list\"" -A "CTLSOCK=\"unix:$run/kamailio_ctl\"")
  kamailio -c "${args[@]}" >"$run/check.log" 2>&1 || { cat "$run/check.log" >&2; die "kamailio -c failed"; }
  wait_port_free $KAM_PORT
  nice -n "$NICE" "$LOOP" kamailio -DD -E "${args[@]}" -n "$KAM_CHILDREN" -m "${KAM_SHM_MB:-1024}" -M 16 -P "$run/kamailio.pid" -w "$run" \
    >"$run/kamailio.log" 2>&1 &
  SERVER_PID=$!
  wait_options $KAM_PORT "$SERVER_PID" "$run/kamailio.log" || die "kamailio did not start"
  # the dial plan as Kamailio loaded it: one number through dpid 1 and dpid 2
  if command -v kamcmd >/dev/null; then
    kamcmd -s "unix:$run/kamailio_ctl" dialplan.translate 1 s:2065550123 >"$run/dp_check.txt" 2>&1
    grep -q '+12065550123' "$run/dp_check.txt" || { cat "$run/dp_check.txt" >&2; die "kamailio's dialplan did not load the rules"; }
  fi
  log "kamailio $(kamailio -v 2>/dev/null | awk 'NR==1 {print $3}') started, pid $SERVER_PID, children=$KAM_CHILDREN, log $run/kamailio.log"
}

start_confab() {
  local dir=$OUT/confab-run data=$OUT/confab-run/data pw
  [[ -x $CONFAB_BIN ]] || die "$CONFAB_BIN not found: cargo build --release -p confab-cli (or set CONFAB_BIN)"
  mkdir -p "$dir"; rm -rf "$data"
  pw=bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  "$CONFAB_BIN" user seed --data "$data" --domain "$DOMAIN" --count 10000 --password-prefix pw- >"$dir/load.log" 2>&1 \
    && "$CONFAB_BIN" admin add bench --role CsAdministrator --password "$pw" --data "$data" >>"$dir/load.log" 2>&1 \
    || { cat "$dir/load.log" >&2; die "confab: seeding the users failed"; }
  # the voice configuration, with Lync's cmdlets; any error stops the script (exit status != 0)
  if ! CONFAB_ADMIN_PASSWORD=$pw "$CONFAB_BIN" shell --data "$data" --admin bench "$DATA/confab.ps1" \
      >"$dir/shell.out" 2>"$dir/shell.err"; then
    grep -v '^WARNING' "$dir/shell.err" | head -20 >&2; die "confab shell: the voice configuration did not load (see $dir/shell.err)"
  fi
  log "confab: voice configuration loaded ($(grep -c . "$DATA/confab.ps1") commands; $(grep -c '^WARNING' "$dir/shell.err") warnings in $dir/shell.err)"
  wait_port_free $CONFAB_PORT
  nice -n "$NICE" "$LOOP" "$CONFAB_BIN" serve --data "$data" --config "$CONFAB_CONFIG" --workers "$CONFAB_WORKERS" \
    >"$dir/confab.log" 2>&1 &
  SERVER_PID=$!
  wait_options $CONFAB_PORT "$SERVER_PID" "$dir/confab.log" || die "confab did not start"
  log "confab $("$CONFAB_BIN" --version 2>/dev/null | awk '{print $2}') started, pid $SERVER_PID, workers=$CONFAB_WORKERS, log $dir/confab.log"
  log "confab binary: $CONFAB_BIN, built $(date -u -r "$CONFAB_BIN" '+%F %T UTC'); source tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
}

# start_gateway DIR PORT XML [extra sipp args]: one gateway (sipp UAS, UDP); its PID in GW_PID
start_gateway() {
  local dir=$1 port=$2 xml=$3; shift 3
  mkdir -p "$dir"
  ( cd "$dir" && exec nice -n "$NICE" timeout -k 5 1800 "$LOOP" sipp -sf "$xml" -i $IP -p "$port" -t "$GW_T" \
      -m 50000000 -timeout 1790 -recv_timeout 15000 -nostdin -buff_size 2097152 -max_socket 5000 \
      -trace_err -error_file "$dir/errors.log" -max_log_size 2000000 "$@" >"$dir/screen.txt" 2>&1 ) &
  GW_PID=$!
}
start_gateways() {   # start_gateways TAG XML1 XML2 [extra sipp args for gateway 1]
  local tag=$1 x1=$2 x2=$3; shift 3
  wait_port_free $GW1_PORT $GW2_PORT
  start_gateway "$OUT/$NAME/gw1_$tag" $GW1_PORT "$x1" "$@"; GW1_PID=$GW_PID
  start_gateway "$OUT/$NAME/gw2_$tag" $GW2_PORT "$x2"; GW2_PID=$GW_PID
  for _ in $(seq 1 100); do port_bound "$GW_TRANSPORT" $GW1_PORT && port_bound "$GW_TRANSPORT" $GW2_PORT && return 0; sleep 0.1; done
  cat "$OUT/$NAME/gw1_$tag/screen.txt" "$OUT/$NAME/gw2_$tag/screen.txt" >&2
  die "the gateways did not start (ports $GW1_PORT/$GW2_PORT busy?)"
}

keys() {
  echo -key domain "$DOMAIN" -key contact_host "$IP" -key ct_transport udp -key expires 3600
}

# run_uac DIR RATE CALLS XML CSV [extra sipp args]: one bounded sipp UAC run
run_uac() {
  local dir=$1 rate=$2 calls=$3 xml=$4 inf=$5; shift 5
  local secs=$(( (calls + rate - 1) / rate ))
  local gto=$(( secs + RECV_TIMEOUT_MS / 1000 + HOLD_MS / 1000 + 10 ))
  local lim=$(( rate * (4 + HOLD_MS / 1000) + 100 ))
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  ( cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$dir/time.txt" \
      nice -n "$NICE" timeout -k 5 $(( gto + 15 )) "$LOOP" sipp "$IP:$PORT" -sf "$xml" -inf "$inf" \
      -i $IP -t u1 -r "$rate" -m "$calls" -l "$lim" \
      -recv_timeout "$RECV_TIMEOUT_MS" -timeout "$gto" -nostdin -buff_size 2097152 \
      -default_behaviors all,-abortunexp -max_socket 5000 -trace_stat -stf "$dir/stat.csv" -fd 1 \
      -trace_rtt -rtt_freq 100 -trace_err -error_file "$dir/errors.log" -max_log_size 2000000 \
      $(keys) "$@" >"$dir/screen.txt" 2>&1 )
  local rc=$?
  [[ -f $dir/errors.log ]] && { head -c 200000 "$dir/errors.log" >"$dir/errors.head"; rm -f "$dir/errors.log"; }
  return $rc
}

# answers DIR: the final answers sipp did not expect (challenges aside), with the number of
# messages (a server retransmits a final answer over UDP until the ACK)
answers() {
  grep -ohaE "received 'SIP/2\.0 [3-6][0-9]{2}[^\r']*" "$1"/errors.head 2>/dev/null | cut -c11- \
    | grep -vE '^SIP/2\.0 40[17] ' \
    | sort | uniq -c | sort -rn | head -5 \
    | awk '{ c = $1; $1 = ""; sub(/^ /, ""); printf "%s\"%s\" (%s messages)", (NR > 1 ? ", " : ""), $0, c }
           END { if (NR == 0) printf "no final answer (timeouts)" }'
}

# check: routed calls are answered, and fail over from a gateway answering 503
check_routing() {
  local dir=$OUT/$NAME/check ok inv1 inv2
  start_gateways ok "$HERE/uas_gateway.xml" "$HERE/uas_gateway.xml"
  run_uac "$dir" 10 $CHECK_CALLS "$SIPP_DIR/uac_call.xml" "$DATA/calls.csv" -d 100
  stop_gateways
  ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
  if [[ $ok != "$CHECK_CALLS" ]]; then
    echo "$NAME: check failed: $ok/$CHECK_CALLS routed calls answered; the server answered: $(answers "$dir")" | tee -a "$STATUS"
    return 1
  fi
  log "$NAME: routing check: $ok/$CHECK_CALLS calls answered by the gateways"
  dir=$OUT/$NAME/check_failover
  start_gateways failover "$HERE/uas_gateway_503.xml" "$HERE/uas_gateway.xml" -trace_msg
  run_uac "$dir" 10 $CHECK_CALLS "$SIPP_DIR/uac_call.xml" "$DATA/calls.csv" -d 100
  stop_gateways
  ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
  inv1=$(cat "$OUT/$NAME"/gw1_failover/*_messages.log 2>/dev/null | grep -c '^INVITE sip')
  if [[ $ok != "$CHECK_CALLS" || $inv1 -lt 1 ]]; then
    echo "$NAME: check failed: failover: $ok/$CHECK_CALLS calls answered with the first gateway answering 503 (it got $inv1 INVITEs); the server answered: $(answers "$dir")" | tee -a "$STATUS"
    return 1
  fi
  log "$NAME: failover check: $ok/$CHECK_CALLS calls answered; the 503 gateway got $inv1 INVITEs first"
  rm -f "$OUT/$NAME"/gw1_failover/*_messages.log
  return 0
}

# setup: every caller registered (Contact 127.0.0.1:5099, nobody listens there), as in the
# baseline's call benchmark; all must succeed
register_users() {   # register_users reg_auth|unreg_all
  local dir=$OUT/$NAME/setup_$1 ok
  run_uac "$dir" "$SETUP_RATE" "$USERS" "$SIPP_DIR/$1.xml" "$DATA/csv/users.csv" -key contact_port $REG_CONTACT_PORT
  ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
  [[ $ok == "$USERS" ]] || { log "$NAME: setup $1: $ok/$USERS ok (see $dir)"; return 1; }
  log "$NAME: setup $1: $ok/$USERS ok"
}

# tree_ticks PID: CPU ticks (utime+stime) of PID and all its descendants. The harness's
# tree_cpu_ticks hands /proc/*/stat to awk by name, and mawk gives up on a process that
# exits in between (and prints nothing); cat skips it.
tree_ticks() {
  local root=$1
  [[ -n $root && -d /proc/$root ]] || { echo 0; return; }
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$root" '
    { p = index($0, ") "); rest = substr($0, p + 2); split(rest, f, " ")
      ppid[$1] = f[2]; ticks[$1] = f[12] + f[13] }
    END {
      inset[root] = 1; changed = 1
      while (changed) { changed = 0
        for (q in ppid) if (!(q in inset) && (ppid[q] in inset)) { inset[q] = 1; changed = 1 } }
      s = 0; for (q in inset) s += ticks[q]; print s
    }'
}

# wait_quiet: before a step, wait (at most QUIET_WAIT s) until the machine is idle between
# steps: busy CPU over one second below QUIET_PCT % of one core (other builds on a shared
# machine would take the cores from the server under test)
wait_quiet() {
  local t0 b0 c0 b1 c1 busy waited=0
  while :; do
    read -r b0 c0 < <(sys_cpu); sleep 1; read -r b1 c1 < <(sys_cpu)
    busy=$(( (b1 - b0) * 100 * $(nproc) / (c1 - c0 > 0 ? c1 - c0 : 1) ))
    (( busy < QUIET_PCT )) && break
    (( waited == 0 )) && log "$NAME: the machine is busy ($busy% of a core outside the benchmark): waiting up to ${QUIET_WAIT}s"
    waited=$(( waited + 1 ))
    (( waited >= QUIET_WAIT )) && { log "$NAME: still busy ($busy%) after ${QUIET_WAIT}s: measuring anyway (see the rest column)"; break; }
  done
  (( waited > 0 && waited < QUIET_WAIT )) && log "$NAME: quiet after ${waited}s"
  return 0
}

# setup_span_s RTT_FILE: seconds from the first call's INVITE to the last call's 200 (rtd 1
# only: the BYE comes HOLD_MS later and is not part of the offered rate)
setup_span_s() {
  [[ -s $1 ]] || { echo 0; return; }
  awk -F';' 'NR > 1 && $3 == 1 { s = $1 - $2; e = $1; if (min == "" || s < min) min = s; if (max == "" || e > max) max = e }
             END { if (max == "") print 0; else printf "%.3f\n", (max - min) / 1000 }' "$1"
}

HDR=$(printf '%-8s %6s %8s %6s %6s %7s %7s %5s %5s %5s %6s %6s %6s %6s %8s %s' \
  server rate achieved calls ok fail% retrans p50 p90 p99 max srvCPU cliCPU rest ms/call held)

# step RATE [TRY]: one load step; prints the result line; returns 0 held, 1 not held, 2 saturated
step() {
  local rate=$1 try=${2:-}
  local calls=$(( rate * DURATION )); (( calls > MAX_CALLS )) && calls=$MAX_CALLS
  calls=$(( (calls + 99) / 100 * 100 ))
  local dir=$OUT/$NAME/call_$rate$try s0 s1 g0 g1 w0 w1 b0 b1 t0 t1
  s0=$(tree_ticks "$SERVER_PID"); g0=$(( $(tree_ticks "$GW1_PID") + $(tree_ticks "$GW2_PID") ))
  w0=$(date +%s.%N); read -r b0 t0 < <(sys_cpu)
  run_uac "$dir" "$rate" "$calls" "$SIPP_DIR/uac_call.xml" "$DATA/calls.csv" -d "$HOLD_MS"
  w1=$(date +%s.%N); read -r b1 t1 < <(sys_cpu)
  s1=$(tree_ticks "$SERVER_PID"); g1=$(( $(tree_ticks "$GW1_PID") + $(tree_ticks "$GW2_PID") ))
  local uac rtt ok retr span p50 p90 p99 p999 pmax n
  uac=$(awk 'NF == 3 { v = $2 + $3 } END { print v + 0 }' "$dir/time.txt" 2>/dev/null || echo 0)
  rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1)
  ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
  retr=$(stat_col "$dir/stat.csv" "Retransmissions(C)")
  span=$(setup_span_s "$rtt")
  read -r p50 p90 p99 p999 pmax n < <(rtt_percentiles "$rtt" 1)
  awk -v sv="$NAME" -v rate="$rate" -v calls="$calls" -v ok="$ok" -v retr="$retr" -v span="$span" \
      -v wall="$(echo "$w1 - $w0" | bc)" -v p50="$p50" -v p90="$p90" -v p99="$p99" -v pmax="$pmax" \
      -v ds="$((s1 - s0))" -v dg="$((g1 - g0))" -v hz="$(getconf CLK_TCK)" -v uac="${uac:-0}" \
      -v hf="$HOLD_FAIL_PCT" -v hr="$HOLD_RATIO" -v busy="$((b1 - b0))" -v tot="$((t1 - t0))" -v np="$(nproc)" '
    BEGIN {
      ach = (span > 0) ? ok / span : 0
      fail = (calls > 0) ? (calls - ok) * 100 / calls : 100
      srv = sprintf("%.0f%%", ds / hz / wall * 100)
      cli = sprintf("%.0f%%", (uac + dg / hz) / wall * 100)     # sipp UAC + both gateways
      # the rest of the machine: busy CPU not in the server or sipp (loopback work of the kernel
      # not charged to a process, and anything else running: other builds disturb the step)
      rest = (tot > 0) ? busy / tot * np * 100 - ds / hz / wall * 100 - (uac + dg / hz) / wall * 100 : 0
      if (rest < 0) rest = 0
      mspc = (ok > 0) ? sprintf("%.3f", ds / hz / ok * 1000) : "-"  # server CPU-ms per answered call
      held = (fail < hf && ach >= hr * rate) ? "yes" : "no"
      printf "%-8s %6d %8.0f %6d %6d %6.2f%% %7d %5s %5s %5s %6s %6s %6s %5.0f%% %8s %s\n",
        sv, rate, ach, calls, ok, fail, retr, p50, p90, p99, pmax, srv, cli, rest, mspc, held
      exit (held == "yes" ? 0 : ((fail > 5 || ach < 0.8 * rate) ? 2 : 1))
    }'
}

bench_server() {
  NAME=$1
  mkdir -p "$OUT/$NAME"
  case $NAME in
    kamailio) PORT=$KAM_PORT; start_kamailio ;;
    confab)   PORT=$CONFAB_PORT; start_confab ;;
  esac
  if ! check_routing; then stop_server; return 1; fi
  if [[ $CHECK_ONLY == 1 ]]; then
    stop_server; echo "$NAME: checked (routing and failover), not loaded (CHECK_ONLY=1)" | tee -a "$STATUS"; return 0
  fi
  start_gateways load "$HERE/uas_gateway.xml" "$HERE/uas_gateway.xml"
  register_users reg_auth || { echo "$NAME: setup failed: registering the callers" | tee -a "$STATUS"; stop_gateways; stop_server; return 1; }
  local best=0 rc line rate
  for rate in $RATES; do
    wait_quiet
    line=$(step "$rate"); rc=$?
    local rest; rest=$(awk '{ sub("%", "", $14); print int($14) }' <<<"$line")
    if [[ $rc != 0 ]] && (( rest > DISTURBED_PCT )); then
      # not held while something else ran: once more, when the machine is quiet again
      echo "$line  (disturbed: $rest% of a core used outside the benchmark; repeated)" | tee -a "$OUT/disturbed.txt"
      sleep "$PAUSE"; wait_quiet
      line=$(step "$rate" _again); rc=$?
    fi
    echo "$line" | tee -a "$RESULTS"
    [[ $rc == 0 ]] && best=$rate
    if [[ $rc == 2 && $STOP_ON_FAIL == 1 ]]; then
      echo "  ($NAME: saturated at $rate/s: > 5% failed or < 80% achieved; higher rates skipped)"; break
    fi
    sleep "$PAUSE"
  done
  register_users unreg_all || true
  stop_gateways
  stop_server
  echo "$NAME: measured, max held ${best}/s" >>"$STATUS"
  echo "MAX HELD $NAME: ${best}/s"
}

# the run itself is one function, read whole before it starts (an edit of this file during
# a run does not change the run)
main() {
  {
    echo "# routed calls $(date -Is): servers=[$SERVERS] rates=[$RATES] duration<=${DURATION}s max_calls=$MAX_CALLS hold=${HOLD_MS}ms callers=$USERS nice=$NICE nproc=$(nproc)"
    echo "# routing data: bench/voice/gen.py (50 normalization rules, 200 routes, 2 gateways $IP:$GW1_PORT/$GW2_PORT $GW_TRANSPORT)"
    echo "# latency = sipp rtd 1 (first INVITE -> 200, challenge included) in ms; srvCPU = server process tree,"
    echo "# cliCPU = sipp UAC + both gateways, rest = the rest of the machine (100% = one core);"
    echo "# ms/call = server CPU-ms per answered call"
  } | tee "$OUT/header.txt"

  python3 "$HERE/gen.py" "$DATA" --users "$USERS" --gw1-port $GW1_PORT --gw2-port $GW2_PORT --gw-transport "$GW_TRANSPORT" >"$OUT/gen.log" 2>&1 \
    || { cat "$OUT/gen.log" >&2; die "gen.py failed"; }
  "$SIPP_DIR/gen_csv.sh" 0 "$USERS" "$DATA/csv" >/dev/null || die "gen_csv.sh failed"

  echo "$HDR"
  failed=0
  for s in $SERVERS; do
    bench_server "$s" || failed=1
    sleep "$PAUSE"
  done

  python3 "$HERE/table.py" "$OUT" | tee "$OUT/table.md"
  echo "# raw output: $OUT"
  [[ $failed == 0 ]] || return 3
  return 0
}
main "$@"; exit $?
