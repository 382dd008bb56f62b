#!/usr/bin/env python3
"""Verify the intent JSONL files: format, label set, per-label counts,
exact duplicates (within/across files), near-duplicates between train and test,
and number formats. Exit code 1 on any hard error.

Usage:  python3 scripts/verify.py [--table]   (run from anywhere)
"""
import collections
import difflib
import json
import os
import re
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from build import LABELS  # noqa: E402

FILES = ["train.zh.jsonl", "test.zh.jsonl", "train.en.jsonl", "test.en.jsonl",
         "oos.zh.jsonl", "oos.en.jsonl"]
errors, warnings = [], []


def load(name):
    rows = []
    with open(os.path.join(DIR, name), encoding="utf-8") as f:
        for i, ln in enumerate(f, 1):
            try:
                obj = json.loads(ln)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{name}:{i} invalid JSON: {e}")
                continue
            if not isinstance(obj, dict) or set(obj) != {"text", "label"}:
                errors.append(f"{name}:{i} keys must be exactly text,label: {obj}")
                continue
            if not isinstance(obj["text"], str) or not obj["text"].strip():
                errors.append(f"{name}:{i} empty text")
            if obj["text"] != obj["text"].strip():
                errors.append(f"{name}:{i} leading/trailing whitespace")
            rows.append((obj["text"], obj["label"], i))
    return rows


def norm(t):
    t = unicodedata.normalize("NFKC", t).lower()
    k = "".join(ch for ch in t if unicodedata.category(ch)[0] in "LNS")
    return k or "".join(t.split())  # punctuation-only lines compare raw


def shape(t):
    """Normalised form with ids masked, for near-duplicate comparison."""
    t = unicodedata.normalize("NFKC", t).lower()
    t = re.sub(r"[a-z]{0,3}\d{4,}", "#", t)
    return "".join(ch for ch in t if unicodedata.category(ch)[0] in "LNS#" or ch == "#")


def lev_le1(a, b):
    if abs(len(a) - len(b)) > 1:
        return False
    if a == b:
        return True
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[i + 1:] == b[i + 1:] or a[i:] == b[i + 1:] or a[i + 1:] == b[i:]


def lev(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def near(a, b):
    if max(len(a), len(b)) >= 3 and lev_le1(a, b):
        return True
    lo, hi = sorted((a, b), key=len)
    # a short line padded with a few chars ("人工" -> "人工人工", "agent" -> "agent pls")
    if len(lo) >= 2 and lo in hi and len(hi) - len(lo) <= 4 and len(lo) * 2 >= len(hi):
        return True
    if len(hi) >= 6 and abs(len(a) - len(b)) <= 2 and lev(a, b) <= 2:
        return True
    sm = difflib.SequenceMatcher(None, a, b)
    if sm.real_quick_ratio() < 0.8 or sm.quick_ratio() < 0.8:
        return False
    return sm.ratio() >= 0.8


data = {n: load(n) for n in FILES}

# labels
allowed = set(LABELS)
for n, rows in data.items():
    for text, label, i in rows:
        if n.startswith("oos"):
            if label != "out_of_scope":
                errors.append(f"{n}:{i} label must be out_of_scope")
        elif label not in allowed:
            errors.append(f"{n}:{i} unknown label {label}")

# exact duplicates within and across all files (normalised)
seen = {}
for n, rows in data.items():
    for text, label, i in rows:
        k = norm(text)
        if k in seen:
            errors.append(f"duplicate: {n}:{i} {text!r} == {seen[k]}")
        else:
            seen[k] = f"{n}:{i} {text!r}"

# near duplicates between train and test (same language, same label) = leakage;
# near pairs across labels are deliberate minimal pairs and only listed;
# any OOS line close to a training line is an error.
minimal_pairs = []
for lang in ("zh", "en"):
    tr = [(shape(t), t, l) for t, l, _ in data[f"train.{lang}.jsonl"]]
    for other in (f"test.{lang}.jsonl", f"oos.{lang}.jsonl"):
        for t2, l2, i2 in data[other]:
            s2 = shape(t2)
            for s1, t1, l1 in tr:
                if near(s1, s2):
                    if l1 == l2 or other.startswith("oos"):
                        errors.append(f"near-dup train/{other}: {t1!r} [{l1}] ~ {t2!r} [{l2}]")
                    else:
                        minimal_pairs.append(f"{t1!r} [{l1}] ~ {t2!r} [{l2}]")

# numbers: order ids 8-12 digits, phones 11 digits, never 16-19 digit runs
for n, rows in data.items():
    for text, label, i in rows:
        for run in re.findall(r"\d+", text):
            if len(run) >= 16:
                errors.append(f"{n}:{i} digit run of {len(run)} digits: {text}")
        for m in re.findall(r"订单号?\s*(\d+)", text):
            if not 8 <= len(m) <= 12:
                errors.append(f"{n}:{i} order number not 8-12 digits: {text}")

# counts
counts = {n: collections.Counter(l for _, l, _ in rows) for n, rows in data.items()}
for lab in LABELS:
    a, b = counts["train.zh.jsonl"][lab], counts["test.zh.jsonl"][lab]
    if a < 30 or b < 10:
        errors.append(f"zh {lab}: train {a} (<30?) test {b} (<10?)")
en_labels = sorted(set(counts["train.en.jsonl"]) | set(counts["test.en.jsonl"]))
for lab in en_labels:
    a, b = counts["train.en.jsonl"][lab], counts["test.en.jsonl"][lab]
    if a < 20 or b < 8:
        errors.append(f"en {lab}: train {a} (<20?) test {b} (<8?)")
if len(en_labels) < 22:
    errors.append(f"only {len(en_labels)} English labels")

# feature coverage (informational)
zh_all = [t for f in ("train.zh.jsonl", "test.zh.jsonl") for t, _, _ in data[f]]
feat = {
    "with order number (8-12 digits)": sum(bool(re.search(r"(?<!\d)\d{8,12}(?!\d)", t)) for t in zh_all),
    "with mobile number": sum(bool(re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", t)) for t in zh_all),
    "with tracking number": sum(bool(re.search(r"(SF|YT|JT|JDX|ZTO)\d{10,}", t)) for t in zh_all),
    "mixed zh/en": sum(bool(re.search(r"[a-zA-Z]{2,}", t)) for t in zh_all),
    "with emoji": sum(any(unicodedata.category(c) == "So" for c in t) for t in zh_all),
    "length >= 30 chars": sum(len(t) >= 30 for t in zh_all),
    "length <= 4 chars": sum(len(t) <= 4 for t in zh_all),
}

# ---- report
print("file totals:")
for n in FILES:
    print(f"  {n:16s} {len(data[n]):5d} lines, {len(counts[n])} labels")
print()
print(f"{'label':18s} {'zh_train':>8s} {'zh_test':>8s} {'en_train':>8s} {'en_test':>8s}")
for lab in LABELS:
    c = [counts[f][lab] for f in FILES[:4]]
    print(f"{lab:18s} " + " ".join(f"{x:8d}" for x in c))
print()
print(f"English labels ({len(en_labels)}): {', '.join(en_labels)}")
print("zh feature coverage (train+test):")
for k, v in feat.items():
    print(f"  {k}: {v}")
if "--table" in sys.argv:
    print()
    print("| label | zh train | zh test | en train | en test |")
    print("|---|---:|---:|---:|---:|")
    for lab in LABELS:
        c = [counts[f][lab] for f in FILES[:4]]
        print(f"| {lab} | " + " | ".join(str(x) if x else "–" for x in c) + " |")
    tot = [len(data[f]) for f in FILES[:4]]
    print("| **total** | " + " | ".join(str(x) for x in tot) + " |")
print()
print(f"cross-label minimal pairs train~test (intended hard cases): {len(minimal_pairs)}")
for p in minimal_pairs:
    print("  ", p)
print()
for w in warnings:
    print("WARN", w)
if errors:
    for e in errors:
        print("ERROR", e)
    print(f"\n{len(errors)} error(s)")
    sys.exit(1)
print("OK: all checks passed")
