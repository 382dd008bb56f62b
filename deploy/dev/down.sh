#!/usr/bin/env bash
# Stops the services that deploy/dev/up.sh started, and the secure Kafka mode if secure-up.sh
# (or a test) started it (their data stays in SWITCHBOARD_STATE).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for name in gateway topology broker clickhouse; do stop_pidfile "$name"; done
stop_secure_kafka
