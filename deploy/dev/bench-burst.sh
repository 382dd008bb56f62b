#!/usr/bin/env bash
# Overload: a burst well above capacity, then how soon the system answers in time again.
#
#   deploy/dev/bench-burst.sh [--rate 1200] [--duration 20s] [--connections 1000] [--mix zipf]
#
# Starts the services, the release topology and the gateway like run.sh (per-address limits
# raised: all load comes from this one address), sends the burst with `switchboard loadgen`
# (open loop), and from the moment its sending ends sends one-second probes (5 connections, 5
# turns/s) until a probe is answered in time (P99 < 500 ms, no timeout). Prints one JSON line:
# the burst's report (sent, answered, handoffs, timeouts, the share answered in time) and the
# seconds from the burst's end to the first probe answered in time. Reports are kept in
# $SWITCHBOARD_STATE/bench/burst-<UTC time>/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rate=1200 duration=20s connections=1000 mix=zipf
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --mix) mix=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench-burst.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS="$connections"
export SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS=$((connections * 64))
export SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS="$connections"
"$ROOT/deploy/dev/run.sh" >&2
bin="${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard}"
url="ws://${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}/ws"
dir="$STATE/bench/burst-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$dir"

seconds=${duration%s}
[[ $seconds =~ ^[0-9]+$ ]] || die "--duration takes whole seconds (e.g. 20s)"
say "burst: $mix at $rate turns/s for ${seconds} s through $connections connections"
"$bin" loadgen --url "$url" --connections "$connections" --rate "$rate" --duration "${seconds}s" --mix "$mix" \
  >"$dir/burst.json" 2>"$dir/burst.log" &
burst=$!
sleep "$seconds"
ended=$(date +%s.%N)
# From the end of sending (the burst's last turns may still be waiting), one-second probes.
probe=0
while :; do
  probe=$((probe + 1))
  start=$(date +%s.%N)
  "$bin" loadgen --url "$url" --connections 5 --rate 5 --duration 1s --mix "$mix" >"$dir/probe-$probe.json" 2>/dev/null || true
  if python3 - "$dir/probe-$probe.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(1)  # no report: the probe could not run (a failed probe, not a broken script)
sys.exit(0 if r["sent"] > 0 and r["timeouts"] == 0 and r["errors"] == 0 and r["p99_ms"] < 500 else 1)
PY
  then break; fi
  [ "$probe" -lt 120 ] || die "no probe answered in time within 120 probes"
done
wait "$burst" || die "the burst's loadgen failed; see $dir/burst.log"
python3 - "$dir/burst.json" "$ended" "$start" "$probe" "$rate" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ended, start, probes, rate = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
in_time = r["answered"] + r["handoffs"] - r.get("timeout_handoffs", 0) + r.get("queued", 0)
print(json.dumps({
    "rate": rate, "sent": r["sent"], "answered": r["answered"], "handoffs": r["handoffs"], "queued": r.get("queued", 0),
    "timeout_handoffs": r.get("timeout_handoffs"), "timeouts": r["timeouts"], "errors": r["errors"],
    "refused_busy": r.get("error_codes", {}).get("server_busy", 0), "share_replied_in_time": round(in_time / max(r["sent"], 1), 3),
    "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
    "seconds_from_burst_end_to_a_probe_answered_in_time": round(max(start - ended, 0.0), 1), "probes": probes,
}))
PY
