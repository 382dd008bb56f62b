#!/bin/sh
# One process of the timely cluster (switchboard submit), run by the topology StatefulSet.
#
# - Process index: the pod's ordinal, the suffix of its name (switchboard-topology-2 -> 2).
# - Hosts: every pod of the StatefulSet by its stable DNS name under the headless Service
#   (publishNotReadyAddresses, so a pod resolves before it is ready), one host:port a line.
# - Size: the number of consecutive pod names that resolve (at least MIN_CLUSTER_SIZE, at most
#   MAX_CLUSTER_SIZE), stable over two looks. A timely cluster has a fixed size, so when the
#   StatefulSet is scaled (KEDA, on consumer lag) and the size seen in DNS changes, this process
#   stops with status 1; its peers then lose it and stop too (fail-stop), and every pod restarts
#   with the new size from the committed offsets. Nothing is lost or answered twice.
set -eu
: "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${STATEFULSET:?}" "${SERVICE:?}"
TIMELY_PORT=${TIMELY_PORT:-2101}
WORKERS=${WORKERS:-2}
MIN_CLUSTER_SIZE=${MIN_CLUSTER_SIZE:-1}
MAX_CLUSTER_SIZE=${MAX_CLUSTER_SIZE:-16}
HOSTS=${HOSTS_FILE:-/etc/switchboard/hosts}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}
RESIZE_CHECK_SECONDS=${RESIZE_CHECK_SECONDS:-15}

ordinal="${POD_NAME##*-}"
case "$ordinal" in
  ''|*[!0-9]*) echo "entrypoint: cannot take a process index from pod name '$POD_NAME'" >&2; exit 2 ;;
esac

pod_host() { echo "$STATEFULSET-$1.$SERVICE.$POD_NAMESPACE.svc.cluster.local"; }

discover_size() {
  n=0
  while [ "$n" -lt "$MAX_CLUSTER_SIZE" ] && getent hosts "$(pod_host "$n")" >/dev/null 2>&1; do
    n=$((n + 1))
  done
  echo "$n"
}

# Wait until this pod and at least MIN_CLUSTER_SIZE pods resolve, and the count is stable.
size=0
for _ in $(seq 1 60); do
  first=$(discover_size)
  sleep "$SETTLE_SECONDS"
  second=$(discover_size)
  if [ "$first" = "$second" ] && [ "$second" -gt "$ordinal" ] && [ "$second" -ge "$MIN_CLUSTER_SIZE" ]; then
    size=$second
    break
  fi
done
if [ "$size" -eq 0 ]; then
  echo "entrypoint: the cluster's pod names did not resolve under $SERVICE in time" >&2
  exit 1
fi

: >"$HOSTS"
i=0
while [ "$i" -lt "$size" ]; do
  echo "$(pod_host "$i"):$TIMELY_PORT" >>"$HOSTS"
  i=$((i + 1))
done
echo "entrypoint: process $ordinal of $size, $WORKERS workers each" >&2

switchboard submit --hosts "$HOSTS" --process "$ordinal" --workers "$WORKERS" \
  --config "${CONFIG_FILE:-/etc/switchboard/config/config.yaml}" &
child=$!
stopping=0
trap 'stopping=1; kill -TERM "$child" 2>/dev/null' TERM INT
while kill -0 "$child" 2>/dev/null; do
  sleep "$RESIZE_CHECK_SECONDS" &
  wait $! 2>/dev/null || true
  now=$(discover_size)
  if [ "$stopping" = 0 ] && kill -0 "$child" 2>/dev/null && [ "$now" != "$size" ] && [ "$now" -gt 0 ]; then
    echo "entrypoint: the cluster is now $now processes (was $size); restarting to rejoin at the new size" >&2
    kill -KILL "$child" 2>/dev/null || true
    exit 1
  fi
done
wait "$child"
