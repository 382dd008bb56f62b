#!/usr/bin/env bash
# README command 2: installs and starts every service, runs the whole test suite against the
# real services, and stops what it started. Exit status is the test suite's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

was_running=0
kafka_ready >/dev/null 2>&1 && clickhouse_ready >/dev/null 2>&1 && was_running=1
"$ROOT/deploy/dev/up.sh"
if [ "$was_running" = 0 ]; then trap '"$ROOT/deploy/dev/down.sh"' EXIT; fi

export SWITCHBOARD_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export SWITCHBOARD_CLICKHOUSE_URL="http://127.0.0.1:$CLICKHOUSE_HTTP_PORT"
export SWITCHBOARD_MODELS="$ROOT/models"
export SWITCHBOARD_STATE="$STATE"
cd "$ROOT"
say "building"
cargo build --workspace --bins --locked
"$ROOT/deploy/dev/prepare.sh" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard"
install_chromium  # for cli/tests/browser_e2e.rs
check_dependencies  # licenses and bans (deny.toml); advisories need GitHub, left out
install_kubectl; install_k8s_validator  # for cli/tests/k8s_manifests.rs
say "running the test suite"
cargo test --workspace --locked "$@"
