#!/usr/bin/env python3
"""Where one benchmark step's time and CPU went, from two snapshots taken around it.

    bench_breakdown.py snapshot OUT.json   # metrics of topology and gateway + CPU ticks of each process
    bench_breakdown.py report BEFORE.json AFTER.json   # one JSON object on stdout

A snapshot reads the topology's /metrics (SWITCHBOARD_BENCH_TOPOLOGY_METRICS, default
http://127.0.0.1:9100/metrics), the gateway's (SWITCHBOARD_BENCH_GATEWAY_METRICS with the bearer
token in SWITCHBOARD_BENCH_GATEWAY_TOKEN_FILE; skipped when unset) and /proc/PID/stat of the
processes named in SWITCHBOARD_BENCH_PIDS ("name=pid name=pid"). The report gives, per turn
stage, the mean ms from the gateway receiving a turn to reaching that stage over the step
(histogram sum and count deltas), the ClickHouse inserts per second and rows per insert, and
each process's CPU as a share of one core.
"""
import json, os, re, sys, time, urllib.request

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)')


def scrape(url, token_file=None):
    if not url:
        return {}
    request = urllib.request.Request(url)
    if token_file:
        with open(token_file) as f:
            request.add_header("Authorization", "Bearer " + f.read().strip())
    try:
        text = urllib.request.urlopen(request, timeout=5).read().decode()
    except Exception as e:  # a missing endpoint leaves that part of the report empty
        print(f"bench_breakdown: cannot read {url}: {e}", file=sys.stderr)
        return {}
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except OSError:
        return None


def machine_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return [sum(fields) - idle, sum(fields)]


def snapshot(path):
    pids = dict(p.split("=", 1) for p in os.environ.get("SWITCHBOARD_BENCH_PIDS", "").split() if "=" in p)
    snap = {
        "at": time.time(),
        "topology": scrape(os.environ.get("SWITCHBOARD_BENCH_TOPOLOGY_METRICS", "http://127.0.0.1:9100/metrics")),
        "gateway": scrape(os.environ.get("SWITCHBOARD_BENCH_GATEWAY_METRICS"), os.environ.get("SWITCHBOARD_BENCH_GATEWAY_TOKEN_FILE")),
        "ticks": {name: ticks(pid) for name, pid in pids.items()},
        "machine": machine_ticks(),
    }
    with open(path, "w") as f:
        json.dump(snap, f)


def delta(a, b, key):
    return b.get(key, 0.0) - a.get(key, 0.0)


def mean(a, b, name, labels="", scale=1.0):
    count = delta(a, b, name + "_count" + labels)
    return round(scale * delta(a, b, name + "_sum" + labels) / count, 1) if count > 0 else None


def report(before_path, after_path):
    a, b = json.load(open(before_path)), json.load(open(after_path))
    seconds = max(b["at"] - a["at"], 1e-9)
    t0, t1, g0, g1 = a["topology"], b["topology"], a["gateway"], b["gateway"]
    stages = {}
    stages["gateway_produce_acked"] = mean(g0, g1, "switchboard_gateway_kafka_produce_seconds", scale=1000.0)
    for stage in ["polled", "understood", "decided", "handed_over", "reply_acked", "durable"]:
        stages[stage] = mean(t0, t1, "switchboard_turn_stage_ms", f'{{stage="{stage}"}}')
    stages["gateway_reply_received"] = mean(g0, g1, "switchboard_gateway_reply_received_ms")
    inserts = {}
    for table in ["events", "sessions"]:
        n = delta(t0, t1, f'switchboard_clickhouse_inserts_total{{table="{table}"}}')
        rows = delta(t0, t1, f'switchboard_clickhouse_rows_total{{table="{table}"}}')
        inserts[table] = {"inserts_per_s": round(n / seconds, 2), "rows_per_insert": round(rows / n) if n else None}
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for name, start in a["ticks"].items():
        end = b["ticks"].get(name)
        if start is not None and end is not None:
            cpu[name] = round(100.0 * (end - start) / hz / seconds, 1)
    busy = b["machine"][0] - a["machine"][0]
    total = max(b["machine"][1] - a["machine"][1], 1)
    print(json.dumps({"seconds": round(seconds, 1), "turn_stage_mean_ms": stages, "clickhouse": inserts,
                      "cpu_pct_of_core": cpu, "machine_busy_pct": round(100.0 * busy / total, 1)}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
