#!/usr/bin/env bash
# The whole-system benchmark: broker, ClickHouse, topology, gateway and the real models on this
# machine, driven by `switchboard loadgen` (open loop) through C WebSocket connections.
#
# For each mix (zipf: a few frequent questions, caches help; unique: every turn is encoded), the
# rate steps up (default 50, 100, 200, … turns/s, D each) until a step fails, then bisects
# between the last passing and the first failing rate. A step passes when every connection
# opened, P99 < the latency bound and errors + timeouts < the error bound. Prints a Markdown
# table (also in $SWITCHBOARD_STATE/bench/RUN/summary.md) beside the raw loadgen JSON reports.
#
#   deploy/dev/bench-system.sh [--connections 1000] [--duration 30s] [--rates "50 100 200 …"]
#                              [--mixes "zipf unique"] [--refine 2] [--p99-ms 500] [--max-error-pct 0.1]
#
# Services are started (or reused) like deploy/dev/run.sh does, from the release build; the
# topology and gateway it starts itself are stopped at the end, those it found running stay (a
# running gateway whose open-files limit is too low and cannot be raised is restarted first).
# SWITCHBOARD_GATEWAY_LISTEN (default 127.0.0.1:8080) and SWITCHBOARD_WORKERS (default 2) as
# for run.sh; SWITCHBOARD_TOPOLOGY_CONFIG=FILE starts the topology with that --config; SWITCHBOARD_BIN=PATH skips the release build and uses that binary (for trying the
# script). Run it on a quiet machine: everything, the load generator included, shares it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

connections=1000 duration=30s rates="50 100 200 400 800 1600 3200 6400" mixes="zipf unique"
refine=2 p99_bound_ms=500 max_error_pct=0.1
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --mixes) mixes=$2; shift 2 ;;
    --refine) refine=$2; shift 2 ;;
    --p99-ms) p99_bound_ms=$2; shift 2 ;;
    --max-error-pct) max_error_pct=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench-system.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
listen=${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}
url="ws://$listen/ws"

# ---------- limits: C client sockets here, C server sockets in the gateway ----------
need_files=$(( connections + 1024 ))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need_files" ]; then
  ulimit -Hn "$need_files" 2>/dev/null || die "the hard open-files limit $(ulimit -Hn) is below $need_files (run as root or raise it)"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n "$need_files" || die "cannot raise the open-files limit to $need_files"
say "open-files limit $(ulimit -n); net.core.somaxconn $(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo ?);" \
    "local ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo ?)"
# The gateway refuses connections over SWITCHBOARD_GATEWAY_MAX_CONNECTIONS (default 10 000) and
# rate-limits each connection to SWITCHBOARD_GATEWAY_RATE_PER_SEC frames/s (default 5).
# All load comes from this one address, so the per-address limits (256 connections, 10 hellos/s,
# 1 024 dialogues by default; they stop one client from exhausting the gateway) are raised for
# the gateway this script starts. A gateway found running keeps its own settings.
export SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS="${SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS:-$connections}"
# The load generator starts a new dialogue after each handoff (as the chat page's "back to the
# bot" does), so at high rates one address holds many more dialogues than connections.
export SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS="${SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS:-$((connections * 64))}"
export SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS="${SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS:-$connections}"
if [ "${SWITCHBOARD_GATEWAY_MAX_CONNECTIONS:-10000}" -lt "$connections" ]; then
  die "SWITCHBOARD_GATEWAY_MAX_CONNECTIONS=${SWITCHBOARD_GATEWAY_MAX_CONNECTIONS} is below --connections $connections"
fi

# gateway_files_ok: whether the running gateway may hold C connections; raises its soft limit
# (or, with the privilege, its hard one) with prlimit when it can.
gateway_files_ok() {
  local pid; pid=$(cat "$STATE/gateway.pid")
  local soft hard
  read -r soft hard < <(awk '/^Max open files/ {print $4, $5}' "/proc/$pid/limits")
  [ "$soft" = unlimited ] || [ "$soft" -ge "$need_files" ] && return 0
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$need_files" ]; then
    say "raising the open-files limit of the running gateway (pid $pid) from $soft to $need_files"
    prlimit --pid "$pid" --nofile="$need_files:$hard" && return 0
  else
    prlimit --pid "$pid" --nofile="$need_files:$need_files" 2>/dev/null && return 0
  fi
  return 1
}

# The gateway this script starts serves /metrics on its admin listener to a bearer token, so
# each step's report can say where the time went (deploy/dev/bench_breakdown.py).
admin_listen=${SWITCHBOARD_GATEWAY_ADMIN_LISTEN:-127.0.0.1:8081}
metrics_token="$STATE/bench-metrics-token"
start_gateway() {
  say "starting the gateway on $listen (log: $STATE/gateway.log)"
  [ -s "$metrics_token" ] || (umask 077; head -c 24 /dev/urandom | base64 >"$metrics_token")
  ( export SWITCHBOARD_GATEWAY_METRICS_TOKEN_FILE="$metrics_token"
    exec setsid "$bin" gateway --listen "$listen" --admin-listen "$admin_listen" >>"$STATE/gateway.log" 2>&1 ) &
  echo $! >"$STATE/gateway.pid"
}

# ---------- the system ----------
"$ROOT/deploy/dev/up.sh"
cd "$ROOT"
bin=${SWITCHBOARD_BIN:-}
if [ -z "$bin" ]; then
  say "building switchboard (release)"
  cargo build --release --locked -p switchboard
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard"
else
  say "using $bin (SWITCHBOARD_BIN: not built here; only a release build gives benchmark figures)"
fi
export SWITCHBOARD_MODELS="$ROOT/models" SWITCHBOARD_STATE="$STATE"
"$ROOT/deploy/dev/prepare.sh" "$bin"
started=()
cleanup() { for name in "${started[@]}"; do stop_pidfile "$name"; done; }
trap cleanup EXIT
if pid_alive topology; then
  say "reusing the running topology"
else
  say "starting the topology (log: $STATE/topology.log)"
  ( exec setsid "$bin" run --workers "${SWITCHBOARD_WORKERS:-2}" ${SWITCHBOARD_TOPOLOGY_CONFIG:+--config "$SWITCHBOARD_TOPOLOGY_CONFIG"} \
      >>"$STATE/topology.log" 2>&1 ) &
  echo $! >"$STATE/topology.pid"; started+=(topology)
fi
if ! pid_alive gateway; then
  start_gateway; started+=(gateway)
elif gateway_files_ok; then
  say "reusing the running gateway"
else
  # Its open-files limit is too low for C connections and cannot be raised from outside:
  # restart it under this shell's limit (it keeps running afterwards, as it was).
  say "the running gateway's open-files limit is below $need_files: restarting it"
  stop_pidfile gateway; start_gateway
fi
wait_until 60 gateway curl -sf "http://$listen/healthz" || die "the gateway did not answer within 60 s; see $STATE/gateway.log"
pid_alive topology || die "the topology exited; see $STATE/topology.log"

export SWITCHBOARD_BENCH_GATEWAY_METRICS="http://$admin_listen/metrics" SWITCHBOARD_BENCH_GATEWAY_TOKEN_FILE="$metrics_token"
pids() {
  local out="" name
  for name in topology gateway broker clickhouse; do
    [ -f "$STATE/$name.pid" ] && out+="$name=$(cat "$STATE/$name.pid") "
  done
  echo "$out"
}
export SWITCHBOARD_BENCH_PIDS="$(pids)"
breakdown=("$ROOT/deploy/dev/bench_breakdown.py")

run_dir="$STATE/bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
machine="$(hostname): $(nproc) cores ($cpu), $mem, $os"
settings="encoder ${SWITCHBOARD_ENCODER_PRECISION:-f32}, fetch.wait.max.ms ${SWITCHBOARD_KAFKA_FETCH_WAIT_MS:-100}, ${SWITCHBOARD_WORKERS:-2} workers"
say "machine: $machine; $settings"
echo "$machine" >"$run_dir/machine.txt"

# verdict REPORT CONNECTIONS: prints "pass" or "fail: why" for one loadgen JSON report.
verdict() {
  python3 - "$1" "$p99_bound_ms" "$max_error_pct" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bound, max_pct, want = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
bad = r["errors"] + r["timeouts"]
why = []
if r["connections"] < want:
    why.append(f"{want - r['connections']} connections refused ({r.get('connect_error')})")
if r["p99_ms"] >= bound:
    why.append(f"p99 {r['p99_ms']:.0f} ms")
if r["sent"] == 0 or 100.0 * bad / r["sent"] >= max_pct:
    why.append(f"{bad} errors+timeouts of {r['sent']}")
print("fail: " + ", ".join(why) if why else "pass")
PY
}

# drain: waits until a single probe turn is answered within the latency bound again, so a
# failed step's backlog does not spill into the next one.
drain() {
  local deadline=$(( $(date +%s) + 600 ))
  while :; do
    if "$bin" loadgen --url "$url" --connections 1 --rate 1 --duration 1s 2>/dev/null >"$run_dir/probe.json" \
       && [ "$(verdict "$run_dir/probe.json" 1)" = pass ]; then
      return 0
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "the system did not drain within 10 min"
    sleep 2
  done
}

# step MIX RATE: one loadgen run; its report is kept; returns 0 when it passes.
step() {
  local mix=$1 rate=$2 report="$run_dir/$1-$2.json"
  say "$mix at $rate turns/s, $connections connections, $duration"
  if awk -v r="$rate" -v c="$connections" -v l="${SWITCHBOARD_GATEWAY_RATE_PER_SEC:-5}" 'BEGIN { exit !(r > c * l) }'; then
    say "  note: above the gateway's per-connection limit (SWITCHBOARD_GATEWAY_RATE_PER_SEC=${SWITCHBOARD_GATEWAY_RATE_PER_SEC:-5}):" \
        "rate_limited errors are expected; raise it for the gateway or use more connections"
  fi
  "${breakdown[@]}" snapshot "$run_dir/$mix-$rate.before.json"
  "$bin" loadgen --url "$url" --connections "$connections" --rate "$rate" --duration "$duration" --mix "$mix" \
    >"$report" 2>"$run_dir/$mix-$rate.log" || die "loadgen failed; see $run_dir/$mix-$rate.log"
  "${breakdown[@]}" snapshot "$run_dir/$mix-$rate.after.json"
  "${breakdown[@]}" report "$run_dir/$mix-$rate.before.json" "$run_dir/$mix-$rate.after.json" >"$run_dir/$mix-$rate.breakdown.json"
  say "  where the time went: $(cat "$run_dir/$mix-$rate.breakdown.json")"
  pid_alive topology || die "the topology exited during the run; see $STATE/topology.log"
  local v; v=$(verdict "$report" "$connections")
  python3 - "$report" "$v" <<'PY' >&2
import json, sys
r = json.load(open(sys.argv[1]))
print(f"[switchboard]   sent {r['sent']} answered {r['answered']} handoffs {r['handoffs']} queued {r.get('queued', 0)} errors {r['errors']} "
      f"timeouts {r['timeouts']} p50 {r['p50_ms']:.0f} p95 {r['p95_ms']:.0f} p99 {r['p99_ms']:.0f} ms: {sys.argv[2]}")
PY
  [ "$v" = pass ]
}

# Idle: everything up, no turns, for 10 s, after 20 s to settle (the gateway reads the open
# agent queue at start, the topology its saved sessions).
sleep 20
"${breakdown[@]}" snapshot "$run_dir/idle-before.json"
sleep 10
"${breakdown[@]}" snapshot "$run_dir/idle-after.json"
"${breakdown[@]}" report "$run_dir/idle-before.json" "$run_dir/idle-after.json" >"$run_dir/idle.json"
say "idle 10 s, CPU in % of one core: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_pct_of_core"])' "$run_dir/idle.json")"

rows=() details=()
for mix in $mixes; do
  drain
  best="" failed=""
  for rate in $rates; do
    if step "$mix" "$rate"; then best=$rate; else failed=$rate; break; fi
  done
  # Bisect between the last passing and the first failing rate.
  low=${best:-0} high=$failed
  for _ in $(seq 1 "$refine"); do
    [ -n "$high" ] || break
    mid=$(( (low + high) / 2 ))
    [ "$mid" -gt "$low" ] && [ "$mid" -lt "$high" ] || break
    drain
    if step "$mix" "$mid"; then low=$mid best=$mid; else high=$mid; fi
  done
  # The row shows the highest passing step, or the lowest (failing) one when none passed.
  shown=${best:-$failed}
  details+=("$(python3 - "$run_dir/$mix-$shown.breakdown.json" "$mix" "$shown" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
stages = ", ".join(f"{k} {v}" for k, v in b["turn_stage_mean_ms"].items() if v is not None)
cpu = ", ".join(f"{k} {v} %" for k, v in b["cpu_pct_of_core"].items())
ch = "; ".join(f"{t}: {v['inserts_per_s']} inserts/s of {v['rows_per_insert']} rows" for t, v in b["clickhouse"].items())
print(f"- {sys.argv[2]} at {sys.argv[3]} turns/s: mean ms since the gateway received the turn: {stages}. "
      f"CPU (% of one core): {cpu}; machine busy {b['machine_busy_pct']} %. ClickHouse {ch}.")
PY
)")
  rows+=("$(python3 - "$run_dir/$mix-$shown.json" "$mix" "$connections" "${best:-}" "${high:-}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
mix, conns, best, failed = sys.argv[2:6]
passing = f"**{float(best):g}**" if best else f"none ({r['rate']:g} failed)"
print(f"| {mix} | {conns} | {passing} | {failed or 'not reached'} | {r['sent']} | {r['answered']} + {r['handoffs']} + {r.get('queued', 0)} | "
      f"{r['errors'] + r['timeouts']} | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['p99_ms']:.0f} ms | {r['max_ms']:.0f} ms |")
PY
)")
done

{
  echo "Machine: $machine; $settings. ${connections} connections, $duration per step, pass = P99 < ${p99_bound_ms} ms and errors + timeouts < ${max_error_pct} %."
  echo
  echo "| mix | connections | highest passing rate (turns/s) | first failing rate | sent | answered + handoffs + queued | errors + timeouts | p50 | p95 | p99 | max |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Where the time went (deploy/dev/bench_breakdown.py; idle: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_pct_of_core"])' "$run_dir/idle.json") % of one core):"
  printf '%s\n' "${details[@]}"
} | tee "$run_dir/summary.md"
say "raw reports and summary in $run_dir"
