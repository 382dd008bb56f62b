#!/usr/bin/env bash
# README command 1: starts the services and the switchboard system on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/deploy/dev/up.sh"
cd "$ROOT"
say "building switchboard (release)"
cargo build --release --locked -p switchboard-topology
bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard"
"$bin" --help
say "services are up; stop them with deploy/dev/down.sh"
