#!/usr/bin/env bash
# README command 1: starts the services and the switchboard system on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/deploy/dev/up.sh"
cd "$ROOT"
if [ -n "${SWITCHBOARD_BIN:-}" ]; then
  bin=$SWITCHBOARD_BIN
  say "using $bin (SWITCHBOARD_BIN: not built here)"
else
  say "building switchboard (release)"
  cargo build --release --locked -p switchboard
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard"
fi
export SWITCHBOARD_MODELS="$ROOT/models" SWITCHBOARD_STATE="$STATE"
"$ROOT/deploy/dev/prepare.sh" "$bin"
"$bin" --help
if ! pid_alive topology; then
  say "starting the topology (log: $STATE/topology.log, metrics: http://127.0.0.1:9100/metrics)"
  ( exec setsid "$bin" run --workers "${SWITCHBOARD_WORKERS:-2}" >>"$STATE/topology.log" 2>&1 ) &
  echo $! >"$STATE/topology.pid"
fi
# The resume-token keys: one per machine, kept across restarts (mode 600), so that a dialogue
# resumes after the gateway restarts. Rotate by adding a new first line.
keys="${SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE:-$STATE/resume-keys}"
if [ ! -s "$keys" ]; then
  ( umask 077; printf 'k%s:%s\n' "$(date +%Y%m%d)" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$keys" )
fi
export SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE="$keys"
export SWITCHBOARD_USERS_FILE="${SWITCHBOARD_USERS_FILE:-$STATE/users.json}"
admin="${SWITCHBOARD_GATEWAY_ADMIN_LISTEN:-127.0.0.1:8081}"
if ! pid_alive gateway; then
  say "starting the gateway (log: $STATE/gateway.log; console and agent page at http://$admin/ after a login)"
  ( exec setsid "$bin" gateway --listen "${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}" >>"$STATE/gateway.log" 2>&1 ) &
  echo $! >"$STATE/gateway.pid"
fi
wait_until 60 gateway curl -sf "http://${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}/healthz" \
  || die "the gateway did not answer within 60 s; see $STATE/gateway.log"
pid_alive topology || die "the topology exited; see $STATE/topology.log"
say "Switchboard is up: chat at http://${SWITCHBOARD_GATEWAY_LISTEN:-127.0.0.1:8080}/ — stop everything with deploy/dev/down.sh"
if [ ! -s "$SWITCHBOARD_USERS_FILE" ]; then
  say "console and agent page: http://$admin/console and /agent need an account; create one with"
  say "  SWITCHBOARD_USERS_FILE=$SWITCHBOARD_USERS_FILE $bin user add NAME --role admin   (password on standard input)"
else
  say "console: http://$admin/console · agent page: http://$admin/agent (log in with an account of $SWITCHBOARD_USERS_FILE)"
fi
