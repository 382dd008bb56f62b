#!/usr/bin/env bash
# Stops the secure Kafka mode started by secure-up.sh (the plain broker keeps running).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
stop_secure_kafka
