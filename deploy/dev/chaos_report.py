#!/usr/bin/env python3
"""The report of deploy/dev/chaos.sh: reads RUN_DIR's baseline and chaos results (the clients'
say records, the faults' times, ClickHouse's counts) and writes report.json and report.md.
Exit status 1 when a turn was lost or applied twice in the chaos run."""
import json
import os
import sys


def load_ndjson(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[round((len(values) - 1) * q)]


def window(says, lo, hi):
    lat = [s["latency_ms"] for s in says if lo <= s["sent_ms"] < hi and s["latency_ms"] is not None]
    n = sum(1 for s in says if lo <= s["sent_ms"] < hi)
    return {"says": n, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": max(lat) if lat else None}


def outcome(s):
    """What the user saw for a say: the reply kind and its text (answer) or reason (handoff)."""
    if s["kind"] == "answer":
        return ("answer", s["reply_text"])
    if s["kind"] == "handoff":
        return ("handoff", s["reason"])
    return (s["kind"], None)


def summary(run_dir, mode):
    says = load_ndjson(os.path.join(run_dir, f"{mode}.says.ndjson"))
    clients = json.load(open(os.path.join(run_dir, f"{mode}.clients.json")))
    ch_lines = open(os.path.join(run_dir, f"{mode}.clickhouse.json")).read().strip().splitlines()
    ch = json.loads(ch_lines[0]) if ch_lines else {}
    lost = [s for s in says if s["kind"] is None]
    twice_client = [s for s in says if s["answer_ids"] > 1]
    return says, {
        "sent": len(says),
        "answered": len(says) - len(lost),
        "lost": len(lost),
        "kinds": clients.get("kinds", {}),
        "answered_twice_differently": len(twice_client),
        "clickhouse_turns": int(ch.get("turns", 0)),
        "clickhouse_said_twice": int(ch.get("said_twice", 0)),
        "clickhouse_two_outcomes": int(ch.get("two_outcomes", 0)),
        "dead_letters": int(ch.get("dead_letters", 0)),
        "says_resent": clients.get("says_resent"),
        "resumed": clients.get("resumed"),
        "failed_connects": clients.get("failed_connects"),
        "resume_refused": clients.get("resume_refused"),
        "p50_ms": clients.get("p50_ms"),
        "p99_ms": clients.get("p99_ms"),
        "max_ms": clients.get("max_ms"),
    }


def main():
    run_dir, machine, clients, rate, duration, answer_timeout = sys.argv[1:7]
    base_says, base = summary(run_dir, "baseline")
    chaos_says, chaos = summary(run_dir, "chaos")
    faults = load_ndjson(os.path.join(run_dir, "faults.ndjson"))

    # Say by say against the baseline.
    by_key = {(s["client"], s["seq"]): s for s in base_says}
    same, differ, changes, examples = 0, 0, {}, []
    for s in chaos_says:
        b = by_key.get((s["client"], s["seq"]))
        if b is None or s["kind"] is None or b["kind"] is None:
            continue
        if outcome(s) == outcome(b):
            same += 1
        else:
            differ += 1
            key = f"{outcome(b)[0]}:{outcome(b)[1] if b['kind'] == 'handoff' else ''} -> {outcome(s)[0]}:{outcome(s)[1] if s['kind'] == 'handoff' else ''}"
            changes[key] = changes.get(key, 0) + 1
            if len(examples) < 5:
                examples.append({"text": s["text"], "baseline": outcome(b), "chaos": outcome(s)})

    windows = []
    for i, f in enumerate(faults):
        end = faults[i + 1]["at_ms"] if i + 1 < len(faults) else f["at_ms"] + 25_000
        windows.append({"fault": f["fault"], **window(chaos_says, f["at_ms"], end)})
    after_from = faults[-1]["at_ms"] + 20_000 if faults else 0
    after = window(chaos_says, after_from, 1 << 62)
    first_fault = faults[0]["at_ms"] if faults else 0
    before = window(chaos_says, 0, first_fault)

    report = {
        "machine": machine,
        "clients": int(clients),
        "rate": float(rate),
        "duration_s": float(duration),
        "gateway_answer_timeout_ms": int(answer_timeout),
        "baseline": base,
        "chaos": chaos,
        "compared_with_baseline": {"same": same, "different": differ, "changes": changes, "examples": examples},
        "chaos_latency": {"before_faults": before, "faults": windows, "after_faults": after},
    }
    with open(os.path.join(run_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)

    def fmt(v):
        return "–" if v is None else f"{v:,}" if isinstance(v, int) else str(v)

    lines = [
        f"Chaos run: {clients} clients, {rate} says/s for {duration} s, gateway answer timeout {answer_timeout} ms; {machine}",
        "",
        "| | baseline | chaos |",
        "|---|---|---|",
    ]
    for key in ["sent", "answered", "lost", "answered_twice_differently", "clickhouse_turns", "clickhouse_said_twice",
                "clickhouse_two_outcomes", "dead_letters", "says_resent", "resumed", "failed_connects", "resume_refused", "p50_ms", "p99_ms", "max_ms"]:
        lines.append(f"| {key} | {fmt(base.get(key))} | {fmt(chaos.get(key))} |")
    lines += ["", f"Answers compared say by say with the baseline: {same:,} the same, {differ:,} different."]
    for k, n in sorted(changes.items(), key=lambda kv: -kv[1]):
        lines.append(f"- {n} × {k}")
    lines += ["", "| window (chaos run) | says | P50 ms | P99 ms | max ms |", "|---|---|---|---|---|"]
    lines.append(f"| before the first fault | {fmt(before['says'])} | {fmt(before['p50_ms'])} | {fmt(before['p99_ms'])} | {fmt(before['max_ms'])} |")
    for w in windows:
        lines.append(f"| {w['fault']} (until the next) | {fmt(w['says'])} | {fmt(w['p50_ms'])} | {fmt(w['p99_ms'])} | {fmt(w['max_ms'])} |")
    lines.append(f"| after (20 s after the last fault on) | {fmt(after['says'])} | {fmt(after['p50_ms'])} | {fmt(after['p99_ms'])} | {fmt(after['max_ms'])} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(run_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    bad = chaos["lost"] + chaos["answered_twice_differently"] + chaos["clickhouse_said_twice"] + chaos["clickhouse_two_outcomes"]
    if bad:
        print(f"chaos: {chaos['lost']} lost, {chaos['answered_twice_differently']} answered twice, "
              f"{chaos['clickhouse_said_twice']} said twice, {chaos['clickhouse_two_outcomes']} with two outcomes", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
