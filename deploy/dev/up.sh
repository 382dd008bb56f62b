#!/usr/bin/env bash
# Installs (once) and starts every local service Switchboard needs, on 127.0.0.1:
#   nisshi (Kafka protocol, sqlite storage) :9092, ClickHouse :8123, the models in models/,
#   the topics and the ClickHouse schema. Idempotent: a second run on a warm machine takes seconds.
# Environment: SWITCHBOARD_STATE (data dir, default .switchboard/), SWITCHBOARD_CACHE
# (downloads, default ~/.cache/switchboard), SWITCHBOARD_KAFKA_PORT, SWITCHBOARD_CLICKHOUSE_HTTP_PORT.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
started=$(date +%s)

apt_install curl ca-certificates python3 unzip
install_clickhouse
fetch_models
install_broker
start_broker
create_topics
start_clickhouse
migrate_clickhouse
make_model_server_certs

say "services up in $(( $(date +%s) - started )) s: kafka 127.0.0.1:$KAFKA_PORT, clickhouse http://127.0.0.1:$CLICKHOUSE_HTTP_PORT, models $ROOT/models"
