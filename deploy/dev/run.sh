#!/usr/bin/env bash
# README command 1: starts the services and the switchboard system on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/deploy/dev/up.sh"
cd "$ROOT"
say "building switchboard (release)"
cargo build --release --locked -p switchboard
bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard"
export SWITCHBOARD_MODELS="$ROOT/models" SWITCHBOARD_STATE="$STATE"
"$ROOT/deploy/dev/prepare.sh" "$bin"
"$bin" --help
if ! pid_alive topology; then
  say "starting the topology (log: $STATE/topology.log, metrics: http://127.0.0.1:9100/metrics)"
  ( exec setsid "$bin" run --workers "${SWITCHBOARD_WORKERS:-2}" >>"$STATE/topology.log" 2>&1 ) &
  echo $! >"$STATE/topology.pid"
fi
if ! pid_alive gateway; then
  say "starting the gateway (log: $STATE/gateway.log)"
  ( exec setsid "$bin" gateway --listen "${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}" >>"$STATE/gateway.log" 2>&1 ) &
  echo $! >"$STATE/gateway.pid"
fi
wait_until 60 gateway curl -sf "http://${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}/healthz" \
  || die "the gateway did not answer within 60 s; see $STATE/gateway.log"
pid_alive topology || die "the topology exited; see $STATE/topology.log"
say "Switchboard is up: chat at http://${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}/ — stop everything with deploy/dev/down.sh"
