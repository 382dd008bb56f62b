# Shared helpers for the dev scripts. Sourced, not run.
# Every function is idempotent: it skips work that is already done.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SWITCHBOARD_STATE:-$ROOT/.switchboard}
CACHE=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}
KAFKA_PORT=${SWITCHBOARD_KAFKA_PORT:-9092}
CLICKHOUSE_HTTP_PORT=${SWITCHBOARD_CLICKHOUSE_HTTP_PORT:-8123}
CLICKHOUSE_TCP_PORT=${SWITCHBOARD_CLICKHOUSE_TCP_PORT:-9000}
TANSU_VERSION=0.6.0
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

# ---------- tansu (Kafka protocol broker) ----------

install_tansu() {
  if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  say "installing tansu $TANSU_VERSION with sqlite storage (cargo install; 12-27 min the first time)"
  cargo install "tansu@$TANSU_VERSION" --locked --features libsql >"$CACHE/tansu-install.log" 2>&1 \
    || die "cargo install tansu failed; see $CACHE/tansu-install.log"
}

kafka_ready() { timeout 2 tansu topic list --broker "tcp://127.0.0.1:$KAFKA_PORT"; }

start_tansu() {
  if kafka_ready >/dev/null 2>&1; then say "tansu already answering on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  mkdir -p "$STATE/tansu"
  say "starting tansu on 127.0.0.1:$KAFKA_PORT (data: $STATE/tansu/tansu.db)"
  # The sqlite path is taken relative to the working directory, so start from the data dir.
  ( cd "$STATE/tansu" && exec setsid tansu broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine sqlite://tansu.db ${TANSU_EXTRA_ARGS:-} \
      >>"$STATE/tansu/broker.log" 2>&1 ) &
  echo $! >"$STATE/tansu.pid"
  wait_until 30 "tansu" kafka_ready || die "tansu did not answer within 30 s; see $STATE/tansu/broker.log"
}

create_topics() {
  local existing; existing=$(kafka_ready 2>/dev/null || true)
  for topic in user.said bot.said switchboard.dead-letter; do
    if ! grep -qx "$topic" <<<"$existing" && ! grep -q "\"$topic\"\|\b$topic\b" <<<"$existing"; then
      say "creating topic $topic (${SWITCHBOARD_PARTITIONS:-8} partitions)"
      timeout 10 tansu topic create "$topic" --partitions "${SWITCHBOARD_PARTITIONS:-8}" \
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
