#!/usr/bin/env python3
"""Writes a recording of demo traffic for `switchboard shadow` (README "Shadow replay"): one
dialogue per utterance of the held-out intent sets and the out-of-scope sets (zh and en), every
fifth with a second turn giving an order number. Deterministic: the same file every time.

usage: deploy/dev/make_demo_traffic.py OUT.ndjson
"""
import json
import sys
import uuid
import zlib
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "operators" / "data" / "intents"
SETS = [("test.zh.jsonl", "zh-CN"), ("test.en.jsonl", "en"), ("oos.zh.jsonl", "zh-CN"), ("oos.en.jsonl", "en")]
T0 = 1764000000000


def record(dialogue, message, locale, text, ts):
    event = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchboard-demo/{dialogue}/{message}")),
        "dialogue_id": dialogue, "schema_version": 1, "occurred_at": ts - 3, "kind": "user_said",
        "client_msg_id": message, "user_id": "u-" + dialogue, "locale": locale, "text": text,
    }
    return {"topic": "user.said", "partition": zlib.crc32(dialogue.encode()) % 8, "offset": 0,
            "timestamp_ms": ts, "key": dialogue, "value": event}


def main():
    records, i = [], 0
    for name, locale in SETS:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            dialogue, ts = f"d-{i:05d}", T0 + i * 1000
            records.append(record(dialogue, "m-1", locale, json.loads(line)["text"], ts))
            if i % 5 == 0:
                follow = f"订单号是 {2024113000 + i}" if locale == "zh-CN" else f"order {3021940000 + i}"
                records.append(record(dialogue, "m-2", locale, follow, ts + 5000))
            i += 1
    records.sort(key=lambda r: (r["timestamp_ms"], r["key"]))
    offsets = {}
    for r in records:
        r["offset"] = offsets.get(r["partition"], 0)
        offsets[r["partition"]] = r["offset"] + 1
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        for r in records:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} records, {i} dialogues -> {sys.argv[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
