#!/usr/bin/env bash
# Stops the broker started by up.sh (SIGTERM) and starts it again on the same data; used by
# the crash tests. Waits until it answers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
stop_broker
start_broker
