#!/usr/bin/env bash
# Chaos under load: the whole system (nisshi, ClickHouse, `switchboard run`, two gateways) serves
# chat clients that behave like the chat page (cli/examples/chaos_clients.rs: they reconnect to
# the other gateway, resume their dialogue and re-send unanswered says), twice with the same
# deterministic workload: once without faults (the baseline), once while, in turn,
#   kill -9 of the topology, kill -9 of gateway A, kill -9 of the broker, kill -9 of ClickHouse,
#   and a SIGTERM drain of gateway B
# happen (each restarted at once, as a supervisor would). Then it reports, from the clients and
# from ClickHouse: turns sent, answered, lost (must be 0), applied twice (must be 0: two
# user_said rows for one client message, two outcomes for one turn, or two different answers to
# one say), the answers compared say by say with the baseline, and P99 during and after faults.
#
# usage: deploy/dev/chaos.sh [--clients N] [--rate R] [--duration S] [--seed N] [--gap S]
#   --clients 400, --rate 40 (says/s in total), --duration 170 (s of sending), --gap 25 (s between
#   faults; the first at 20 s). SWITCHBOARD_BIN=path skips the release build.
#   The gateways' answer timeout is CHAOS_ANSWER_TIMEOUT_MS (30000 here: an outage should delay a
#   turn, not turn it into a timeout handoff) and the topology expires turns after
#   CHAOS_EXPIRE_MS (25000). Writes $STATE/chaos/<time>/ (report.md, report.json, logs).
# Exit status 1 when a turn was lost or applied twice.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

clients=400 rate=40 duration=170 seed=7 gap=25
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --gap) gap=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
answer_timeout=${CHAOS_ANSWER_TIMEOUT_MS:-30000}
expire_ms=${CHAOS_EXPIRE_MS:-25000}

"$ROOT/deploy/dev/up.sh"
cd "$ROOT"
target="${CARGO_TARGET_DIR:-$ROOT/target}/release"
bin=${SWITCHBOARD_BIN:-}
if [ -z "$bin" ]; then
  say "building switchboard and the chaos clients (release)"
  cargo build --release --locked -p switchboard --bins --examples
  bin="$target/switchboard"
fi
clients_bin="$(dirname "$bin")/examples/chaos_clients"
[ -x "$clients_bin" ] || die "$clients_bin is missing (cargo build --release -p switchboard --examples)"
export SWITCHBOARD_MODELS="$ROOT/models" SWITCHBOARD_STATE="$STATE"
"$ROOT/deploy/dev/prepare.sh" "$bin"

run_dir="$STATE/chaos/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir"
machine="$(hostname): $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
say "machine: $machine; results in $run_dir"
echo "$machine" >"$run_dir/machine.txt"

export SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=$((clients * 4))
export SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS=$((clients * 64))
export SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS=$((clients * 4))
export SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS=$answer_timeout
# The gateways share their resume-token key (as a deployment's gateways do, from a Secret): a
# client resumes its dialogue on whichever gateway it reaches.
keys="$run_dir/resume-keys"
(umask 077; printf 'chaos:%s\n' "$(head -c 48 /dev/urandom | base64 -w0)" >"$keys")
export SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE=$keys
ports=(18080 18081 18090 18091)
for p in "${ports[@]}"; do port_free "$p" || die "port $p is taken (another chaos run?)"; done

create_database() {
  local db=$1
  clickhouse_query "CREATE DATABASE IF NOT EXISTS $db" >/dev/null
  for f in "$ROOT"/deploy/clickhouse/migrations/*.sql; do
    local stmt=""
    while IFS= read -r line || [ -n "$line" ]; do
      if [ "$line" = ";" ]; then
        if [ -n "${stmt//[[:space:]]/}" ]; then clickhouse_query "${stmt//switchboard./$db.}" >/dev/null; fi
        stmt=""
      else
        stmt+="$line"$'\n'
      fi
    done < <(grep -v '^--' "$f")
    if [ -n "${stmt//[[:space:]]/}" ]; then clickhouse_query "${stmt//switchboard./$db.}" >/dev/null; fi
  done
}

# Per run: its topics, database, consumer group; the processes' pid files in $run_dir.
setup_run() {
  local mode=$1 id=$2
  db="sbchaos_${mode}_$id" in_topic="chaos.$mode.$id.user-said" out_topic="chaos.$mode.$id.bot-said"
  for topic in "$in_topic" "$out_topic" "chaos.$mode.$id.dead"; do
    timeout 10 nisshi topic create "$topic" --partitions 8 --silent --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null \
      || die "could not create topic $topic"
  done
  create_database "$db"
  config="$run_dir/$mode.yaml"
  # wait_timeout_ms: an hour. A dialogue waiting for an agent goes back to the bot when its wait
  # times out, on the live run's clock: whether a turn comes just before or just after that
  # depends on timing in any run, faults or not; with no timeout inside the run, the answers of
  # the two runs differ only where the faults changed something.
  printf 'input_topic: %s\nreplies_topic: %s\ndead_letter_topic: %s\ngroup_id: chaos-%s-%s\nmetrics_listen: ""\nexpire_turns_after_ms: %s\nwait_timeout_ms: 3600000\n' \
    "$in_topic" "$out_topic" "chaos.$mode.$id.dead" "$mode" "$id" "$expire_ms" >"$config"
}

start_topology() {
  ( export SWITCHBOARD_CLICKHOUSE_DATABASE=$db
    exec setsid "$bin" run --workers 2 --config "$config" >>"$run_dir/$mode.topology.log" 2>&1 ) &
  echo $! >"$run_dir/topology.pid"
}

start_gateway() {
  local name=$1 listen=$2 admin=$3
  ( export SWITCHBOARD_CLICKHOUSE_DATABASE=$db SWITCHBOARD_GATEWAY_USER_SAID_TOPIC=$in_topic SWITCHBOARD_GATEWAY_BOT_SAID_TOPIC=$out_topic
    exec setsid "$bin" gateway --listen "$listen" --admin-listen "$admin" >>"$run_dir/$mode.gateway-$name.log" 2>&1 ) &
  echo $! >"$run_dir/gateway-$name.pid"
  wait_until 60 "gateway $name" curl -sf "http://$listen/healthz" >/dev/null || die "gateway $name did not start; see $run_dir/$mode.gateway-$name.log"
}

kill9() {
  local f=$1
  [ -f "$f" ] || return 0
  kill -KILL -- "-$(cat "$f")" 2>/dev/null || kill -KILL "$(cat "$f")" 2>/dev/null || true
}
stop_run_process() {
  local f="$run_dir/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}
cleanup() { for p in topology gateway-a gateway-b; do stop_run_process "$p"; done; }
trap cleanup EXIT

fault() { # fault NAME: records when it happened (ms), then does it
  echo "{\"fault\": \"$1\", \"at_ms\": $(date +%s%3N)}" >>"$run_dir/faults.ndjson"
  say "fault: $1"
}

run_mode() {
  mode=$1
  local id; id=$(date +%s)
  setup_run "$mode" "$id"
  start_topology
  start_gateway a 127.0.0.1:18080 127.0.0.1:18081
  start_gateway b 127.0.0.1:18090 127.0.0.1:18091
  say "$mode: $clients clients, $rate says/s for $duration s (seed $seed)"
  "$clients_bin" --urls ws://127.0.0.1:18080/ws,ws://127.0.0.1:18090/ws --clients "$clients" --rate "$rate" \
    --duration "$duration" --seed "$seed" --grace 90 --out "$run_dir/$mode.says.ndjson" >"$run_dir/$mode.clients.json" \
    2>"$run_dir/$mode.clients.log" &
  local load=$!
  if [ "$mode" = chaos ]; then
    : >"$run_dir/faults.ndjson"
    sleep $((20 + 2))
    fault "kill -9 topology"; kill9 "$run_dir/topology.pid"; start_topology
    sleep "$gap"
    fault "kill -9 gateway A"; kill9 "$run_dir/gateway-a.pid"; start_gateway a 127.0.0.1:18080 127.0.0.1:18081
    sleep "$gap"
    fault "kill -9 broker"; kill9 "$STATE/broker.pid"; start_broker
    sleep "$gap"
    fault "kill -9 ClickHouse"; kill9 "$STATE/clickhouse.pid"; start_clickhouse
    sleep "$gap"
    fault "SIGTERM drain of gateway B"; stop_run_process gateway-b; start_gateway b 127.0.0.1:18090 127.0.0.1:18091
  fi
  wait "$load" || die "the chaos clients failed; see $run_dir/$mode.clients.log"
  cleanup
  clickhouse_query "SELECT
      countIf(kind = 'user_said') AS turns,
      (SELECT count() FROM (SELECT dialogue_id, client_msg_id FROM $db.events FINAL WHERE kind = 'user_said' GROUP BY dialogue_id, client_msg_id HAVING uniqExact(event_id) > 1)) AS said_twice,
      (SELECT count() FROM (SELECT in_reply_to FROM $db.events FINAL WHERE kind IN ('answer_generated', 'handoff_requested', 'turn_queued') GROUP BY in_reply_to HAVING count() > 1)) AS two_outcomes,
      (SELECT count() FROM $db.events FINAL WHERE kind = 'dead_letter') AS dead_letters
    FROM $db.events FINAL FORMAT JSONEachRow" >"$run_dir/$mode.clickhouse.json"
  say "$mode: $(cat "$run_dir/$mode.clients.json")"
  say "$mode: ClickHouse $(cat "$run_dir/$mode.clickhouse.json")"
}

run_mode baseline
run_mode chaos
python3 "$ROOT/deploy/dev/chaos_report.py" "$run_dir" "$machine" "$clients" "$rate" "$duration" "$answer_timeout"
