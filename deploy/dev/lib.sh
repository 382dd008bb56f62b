# Shared helpers for the dev scripts. Sourced, not run.
# Every function is idempotent: it skips work that is already done.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SWITCHBOARD_STATE:-$ROOT/.switchboard}
CACHE=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}
KAFKA_PORT=${SWITCHBOARD_KAFKA_PORT:-9092}
CLICKHOUSE_HTTP_PORT=${SWITCHBOARD_CLICKHOUSE_HTTP_PORT:-8123}
CLICKHOUSE_TCP_PORT=${SWITCHBOARD_CLICKHOUSE_TCP_PORT:-9000}
NISSHI_VERSION=0.8.1
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$STATE" "$CACHE"

say() { printf '[switchboard] %s\n' "$*" >&2; }
die() { printf '[switchboard] FAILED: %s\n' "$*" >&2; exit 1; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

# pid_alive NAME: the process recorded in $STATE/NAME.pid is running.
pid_alive() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

apt_install() {
  if ! dpkg -s "$@" >/dev/null 2>&1; then
    say "installing Debian packages: $*"
    if [ ! -f "$CACHE/apt-updated" ] || [ -n "$(find "$CACHE/apt-updated" -mmin +1440)" ]; then
      apt-get update -qq && touch "$CACHE/apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
      || die "apt-get install $* failed"
  fi
}

# ---------- nisshi (Kafka protocol broker; tansu renamed) ----------
# nisshi 0.8.1 does not wake a waiting fetch on produce (it re-reads after halving sleeps), so the
# clients' fetch.wait.max.ms (SWITCHBOARD_KAFKA_FETCH_WAIT_MS, 100) trades latency against idle
# broker CPU (README, "Known limits of the broker").

install_broker() {
  if command -v nisshi >/dev/null && nisshi --version 2>/dev/null | grep -q "$NISSHI_VERSION"; then
    return 0
  fi
  # Its rama 0.4 dependencies declare rustc 1.96; it builds and runs with 1.95 (SERVICES.md).
  say "installing nisshi $NISSHI_VERSION (cargo install; 11-20 min the first time)"
  cargo install nisshi --version "$NISSHI_VERSION" --locked --ignore-rust-version >"$CACHE/nisshi-install.log" 2>&1 \
    || die "cargo install nisshi failed; see $CACHE/nisshi-install.log"
}

kafka_ready() { timeout 2 nisshi topic list --broker "tcp://127.0.0.1:$KAFKA_PORT"; }

start_broker() {
  if kafka_ready >/dev/null 2>&1; then say "nisshi already answering on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  mkdir -p "$STATE/nisshi"
  say "starting nisshi on 127.0.0.1:$KAFKA_PORT (data: $STATE/nisshi/nisshi.db)"
  # The sqlite path is taken relative to the working directory, so start from the data dir.
  ( cd "$STATE/nisshi" && exec setsid nisshi broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine sqlite://nisshi.db ${BROKER_EXTRA_ARGS:-} \
      >>"$STATE/nisshi/broker.log" 2>&1 ) &
  echo $! >"$STATE/broker.pid"
  wait_until 30 "nisshi" kafka_ready || die "nisshi did not answer within 30 s; see $STATE/nisshi/broker.log"
}

# stop_broker: SIGTERM (nisshi takes about 5 s to free its port), then waits for the port.
stop_broker() {
  stop_pidfile broker
  wait_until 15 "broker port free" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT) 2>/dev/null" \
    || die "the broker port $KAFKA_PORT is still taken 15 s after the broker stopped"
}

# user.said holds what users typed, unmasked: it keeps records for
# SWITCHBOARD_USER_SAID_RETENTION_MS (default 7 days), with cleanup.policy=delete set explicitly
# too (README "Retention"); bot.said and the dead letter keep the broker's default (7 days, as
# Kafka). Applied at creation only: the broker's CLI cannot change an existing topic's settings.
create_topics() {
  local existing; existing=$(kafka_ready 2>/dev/null || true)
  local retention=${SWITCHBOARD_USER_SAID_RETENTION_MS:-604800000}
  [[ $retention =~ ^[1-9][0-9]*$ ]] || die "SWITCHBOARD_USER_SAID_RETENTION_MS=$retention is not a positive number of milliseconds"
  for topic in user.said bot.said switchboard.dead-letter; do
    if ! grep -qx "$topic" <<<"$existing" && ! grep -q "\"$topic\"\|\b$topic\b" <<<"$existing"; then
      local config=()
      [ "$topic" = user.said ] && config=(--config cleanup.policy=delete --config "retention.ms=$retention")
      say "creating topic $topic (${SWITCHBOARD_PARTITIONS:-8} partitions${config:+, retention $retention ms})"
      timeout 10 nisshi topic create "$topic" --partitions "${SWITCHBOARD_PARTITIONS:-8}" "${config[@]}" --silent \
        --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null || die "could not create topic $topic"
    fi
  done
}

stop_pidfile() {
  local name=$1 f="$STATE/$1.pid"
  if pid_alive "$name"; then
    local pid; pid=$(cat "$f")
    say "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# ---------- ClickHouse ----------

install_clickhouse() {
  [ -x /usr/sbin/clickhouse-server ] && command -v clickhouse-client >/dev/null && return 0
  apt_install clickhouse-server clickhouse-client
}

clickhouse_ready() { curl -sf "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping"; }

start_clickhouse() {
  if clickhouse_ready >/dev/null 2>&1; then say "ClickHouse already answering on 127.0.0.1:$CLICKHOUSE_HTTP_PORT"; return 0; fi
  local dir="$STATE/clickhouse"
  mkdir -p "$dir/data" "$dir/log"
  cp /etc/clickhouse-server/users.xml "$dir/users.xml"
  sed -e "s#/var/lib/clickhouse/#$dir/data/#g" \
      -e "s#/var/log/clickhouse-server/#$dir/log/#g" \
      -e "s#<http_port>8123</http_port>#<http_port>$CLICKHOUSE_HTTP_PORT</http_port>#" \
      -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>#" \
      -e "s#<interserver_http_port>9009</interserver_http_port>##" \
      -e "s#<listen_host>::1</listen_host>##" \
      /etc/clickhouse-server/config.xml >"$dir/config.xml"
  say "starting ClickHouse on 127.0.0.1:$CLICKHOUSE_HTTP_PORT (data: $dir/data)"
  ( cd "$dir" && exec setsid /usr/sbin/clickhouse-server --config-file="$dir/config.xml" \
      >>"$dir/log/stdout.log" 2>&1 ) &
  echo $! >"$STATE/clickhouse.pid"
  wait_until 60 "ClickHouse" clickhouse_ready \
    || die "ClickHouse did not answer /ping within 60 s; see $dir/log/clickhouse-server.err.log"
}

# clickhouse_query SQL: runs SQL over HTTP, failing with ClickHouse's message.
# (18.16 needs allow_experimental_low_cardinality_type; newer servers ignore it.)
clickhouse_query() {
  local out
  if ! out=$(curl -sS --fail-with-body "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?allow_experimental_low_cardinality_type=1" --data-binary "$1" 2>&1); then
    die "ClickHouse refused: $1 -> $out"
  fi
  printf '%s' "$out"
}

migrate_clickhouse() {
  clickhouse_query "CREATE DATABASE IF NOT EXISTS switchboard" >/dev/null
  clickhouse_query "CREATE TABLE IF NOT EXISTS switchboard.schema_migrations (name String, applied_at DateTime) ENGINE = TinyLog" >/dev/null
  local applied; applied=$(clickhouse_query "SELECT name FROM switchboard.schema_migrations")
  for f in "$ROOT"/deploy/clickhouse/migrations/*.sql; do
    local name; name=$(basename "$f")
    grep -qx "$name" <<<"$applied" && continue
    say "applying ClickHouse migration $name"
    # One statement per file part, separated by lines holding only ';'.
    local stmt=""
    while IFS= read -r line || [ -n "$line" ]; do
      if [ "$line" = ";" ]; then
        [ -n "${stmt//[[:space:]]/}" ] && clickhouse_query "$stmt" >/dev/null
        stmt=""
      else
        stmt+="$line"$'\n'
      fi
    done < <(grep -v '^--' "$f")
    [ -n "${stmt//[[:space:]]/}" ] && clickhouse_query "$stmt" >/dev/null
    clickhouse_query "INSERT INTO switchboard.schema_migrations VALUES ('$name', now())" >/dev/null
  done
}

# ---------- models ----------

fetch_models() { "$ROOT/deploy/models/fetch.sh"; }

# ---------- model server mutual TLS ----------

# make_model_server_certs: a test CA, server and client certificates in $STATE/tls for
# `switchboard model serve --tls-dir` (the tests make their own in temporary folders).
make_model_server_certs() {
  command -v openssl >/dev/null || apt_install openssl
  "$ROOT/deploy/tls/make-test-ca.sh" "$STATE/tls" >/dev/null
}

# ---------- browser (end-to-end test) ----------

# install_chromium: headless Chromium, its chromedriver and a Chinese font, so the browser test
# (cli/tests/browser_e2e.rs) can run and its screenshots show the Chinese text.
install_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
     && dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
    return 0
  fi
  apt_install chromium chromium-driver fonts-wqy-microhei
}

# ---------- secure Kafka (SASL SCRAM-SHA-512, and TLS) for the security tests ----------
# Two more nisshi brokers beside the shared plain one (never touched), each with its own data
# dir and users:
#   127.0.0.1:$SECURE_KAFKA_PORT      SASL_PLAINTEXT (nisshi --authentication)
#   127.0.0.1:$SECURE_KAFKA_TLS_PORT  SASL_SSL: nisshi --authentication with its own TLS
#     (--cert/--key: the listener accepts TLS only; certificates from deploy/tls/make-test-ca.sh,
#     own copy in $SECURE_KAFKA_DIR/tls)
# User `switchboard`, password in $STATE/kafka-secure/switchboard.password (random, mode 600).
SECURE_KAFKA_PORT=${SWITCHBOARD_SECURE_KAFKA_PORT:-9094}
SECURE_KAFKA_TLS_PORT=${SWITCHBOARD_SECURE_KAFKA_TLS_PORT:-9095}
SECURE_KAFKA_DIR="$STATE/kafka-secure"

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
port_free() { ! port_open "$1"; }

# secure_kafka_password: the `switchboard` user's password (created once).
secure_kafka_password() {
  mkdir -p "$SECURE_KAFKA_DIR"; chmod 700 "$SECURE_KAFKA_DIR"
  local f="$SECURE_KAFKA_DIR/switchboard.password"
  if [ ! -s "$f" ]; then
    ( umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$f" )
  fi
  cat "$f"
}

# secure_broker_running NAME PORT: the broker recorded in $STATE/NAME.pid is a nisshi and PORT
# is open.
secure_broker_running() {
  pid_alive "$1" && [ "$(ps -o comm= -p "$(cat "$STATE/$1.pid")")" = nisshi ] && port_open "$2"
}

# start_secure_broker NAME PORT [BROKER ARGS...]: a nisshi with --authentication (and the given
# arguments, e.g. --cert/--key) on 127.0.0.1:PORT, data in $STATE/NAME. Its user and topics are
# created first, while it runs once with neither authentication nor TLS (nisshi's own CLI
# cannot log in, nor connect to a TLS listener).
start_secure_broker() {
  local name=$1 port=$2 dir="$STATE/$1"; shift 2
  if secure_broker_running "$name" "$port"; then return 0; fi
  stop_pidfile "$name"
  wait_until 15 "$name port free" port_free "$port" || die "port $port is taken by something else"
  mkdir -p "$dir"; chmod 700 "$dir"
  launch() {
    ( cd "$dir" && exec setsid nisshi broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine sqlite://nisshi.db "$@" >>"$dir/broker.log" 2>&1 9>&- ) &
    echo $! >"$STATE/$name.pid"
  }
  if [ ! -f "$dir/nisshi.db" ] || [ ! -f "$dir/nisshi-users-created" ]; then
    say "creating the Kafka user in $name (broker briefly without authentication)"
    launch
    wait_until 30 "$name" timeout 2 nisshi topic list --broker "tcp://127.0.0.1:$port" \
      || die "$name did not answer within 30 s; see $dir/broker.log"
    local password; password=$(secure_kafka_password)
    timeout 10 nisshi user create switchboard "$password" --mechanism scram512 \
      --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1 || die "could not create the Kafka user in $name"
    for topic in user.said bot.said switchboard.dead-letter; do
      timeout 10 nisshi topic create "$topic" --partitions "${SWITCHBOARD_PARTITIONS:-8}" --silent \
        --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1 || true
    done
    stop_pidfile "$name"
    wait_until 15 "$name port free" port_free "$port" || die "$name kept port $port after it stopped"
    touch "$dir/nisshi-users-created"
  fi
  say "starting $name on 127.0.0.1:$port (SASL SCRAM-SHA-512 required${1:+, TLS only})"
  launch --authentication "$@"
  wait_until 30 "$name" port_open "$port" || die "$name did not listen within 30 s; see $dir/broker.log"
}

# start_secure_kafka: both secure brokers; idempotent and safe to call from concurrent test
# processes (one at a time under a lock).
start_secure_kafka() {
  mkdir -p "$SECURE_KAFKA_DIR"; chmod 700 "$SECURE_KAFKA_DIR"
  (
    flock -w 120 9 || die "timed out waiting for the secure Kafka lock"
    secure_kafka_password >/dev/null
    command -v openssl >/dev/null || apt_install openssl
    "$ROOT/deploy/tls/make-test-ca.sh" "$SECURE_KAFKA_DIR/tls" >/dev/null
    start_secure_broker kafka-secure "$SECURE_KAFKA_PORT"
    start_secure_broker kafka-secure-tls "$SECURE_KAFKA_TLS_PORT" \
      --cert "$SECURE_KAFKA_DIR/tls/server.pem" --key "$SECURE_KAFKA_DIR/tls/server.key"
  ) 9>"$SECURE_KAFKA_DIR/.lock"
}

stop_secure_kafka() {
  stop_pidfile kafka-secure-tls
  stop_pidfile kafka-secure
}

# ---------- cargo-deny (license and ban checks of the dependency tree; see deny.toml) ----------

CARGO_DENY_VERSION=0.20.2
install_cargo_deny() {
  if command -v cargo-deny >/dev/null && cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    return 0
  fi
  say "installing cargo-deny $CARGO_DENY_VERSION (cargo install; about 5 minutes the first time)"
  nice cargo install "cargo-deny@$CARGO_DENY_VERSION" --locked >"$CACHE/cargo-deny-install.log" 2>&1 \
    || die "cargo install cargo-deny failed; see $CACHE/cargo-deny-install.log"
}

# check_dependencies: licenses and bans per deny.toml. Advisories are not checked here: they
# need the RustSec database from GitHub, which the CI machine cannot reach.
check_dependencies() {
  install_cargo_deny
  # `--offline` reads the whole dependency graph, dev-dependencies included: on a machine
  # whose cargo cache is empty nothing may have fetched those yet.
  ( cd "$ROOT" && cargo fetch --locked ) || die "cargo fetch failed (crates.io unreachable?)"
  say "checking dependency licenses and bans (cargo deny)"
  local log="$CACHE/cargo-deny-check.log"
  if ( cd "$ROOT" && cargo deny --offline check --hide-inclusion-graph licenses bans >"$log" 2>&1 ); then
    say "cargo deny: $(tail -n 1 "$log")"
  else
    grep -v '^warning\[duplicate\]' "$log" | grep -A 12 '^error' >&2 || cat "$log" >&2
    die "cargo deny check licenses bans failed (full report: $log)"
  fi
}

# ---------- Kubernetes manifests (cli/tests/k8s_manifests.rs) ----------

# install_kubectl: a kubectl for `kubectl kustomize` (renders deploy/k8s offline, no cluster);
# Debian's kubernetes-client when none is installed.
install_kubectl() {
  command -v kubectl >/dev/null && return 0
  apt_install kubernetes-client
}

# install_k8s_validator: kubernetes-validate (PyPI; ships the Kubernetes JSON schemas, works
# offline) in a venv under $CACHE; the manifest test uses it when present.
K8S_VALIDATE_VERSION=1.37.0
install_k8s_validator() {
  local venv="$CACHE/k8s-venv"
  if [ -x "$venv/bin/kubernetes-validate" ] && "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$K8S_VALIDATE_VERSION"; then
    return 0
  fi
  apt_install python3-venv
  say "installing kubernetes-validate $K8S_VALIDATE_VERSION into $venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q "kubernetes-validate==$K8S_VALIDATE_VERSION" \
    || die "pip install kubernetes-validate failed"
}
