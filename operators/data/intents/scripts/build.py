#!/usr/bin/env python3
"""Build the Switchboard intent JSONL files from the hand-written lists.

Usage:  python3 scripts/build.py        (run from data/intents/)
Writes train/test/oos *.jsonl next to this scripts/ folder.
Deterministic: placeholder values come from a fixed-seed RNG.
"""
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import zh_ecom, zh_account_aftersales, zh_finance_service, en_data, oos_data  # noqa: E402

LABELS = [
    "return_goods", "exchange_goods", "refund_progress", "track_logistics",
    "change_address", "invoice", "cancel_order", "urge_shipping",
    "product_inquiry", "size_advice", "coupon", "member_points",
    "account_security", "reset_password", "change_phone", "logout_account",
    "payment_failed", "price_protection", "damaged_goods", "missing_item",
    "warranty_repair", "delivery_time", "pickup_locker", "shipping_fee",
    "reject_delivery", "repayment", "bill_inquiry", "credit_limit",
    "card_loss", "installment", "overdue", "transfer_failed", "bind_card",
    "interest_fee", "complaint", "human_agent", "greeting", "thanks",
    "goodbye", "business_hours", "modify_order", "order_status",
]
assert len(LABELS) == 42 and len(set(LABELS)) == 42

rng = random.Random(20241130)


def oid():
    n = rng.randint(8, 12)
    if rng.random() < 0.35 and n >= 10:
        # date-prefixed style, e.g. 2024113051
        y = rng.choice(["2023", "2024", "2025"])
        m = "%02d" % rng.randint(1, 12)
        d = "%02d" % rng.randint(1, 28)
        rest = "".join(rng.choice("0123456789") for _ in range(n - 8))
        return y + m + d + rest
    # first digit 2-9 so an 11-digit order id never looks like a mainland mobile number
    return str(rng.randint(2, 9)) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def phone():
    second = rng.choice("35789")
    return "1" + second + "".join(rng.choice("0123456789") for _ in range(9))


def trk():
    prefix, n = rng.choice([("SF", 12), ("SF", 10), ("YT", 13), ("JT", 13), ("JDX", 12), ("ZTO", 12)])
    return prefix + "".join(rng.choice("0123456789") for _ in range(n))


def card4():
    return "".join(rng.choice("0123456789") for _ in range(4))


FILL = {"{oid}": oid, "{phone}": phone, "{trk}": trk, "{card4}": card4}


def fill(t):
    for k, f in FILL.items():
        while k in t:
            t = t.replace(k, f(), 1)
    return t


def lines(block):
    out = []
    for ln in block.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        out.append(ln)
    return out


def collect(dicts):
    train, test = [], []
    merged = {}
    for d in dicts:
        for k, v in d.items():
            assert k not in merged, k
            assert k in LABELS, k
            merged[k] = v
    for label in LABELS:
        if label not in merged:
            continue
        tr, te = merged[label]
        train += [(t, label) for t in lines(tr)]
        test += [(t, label) for t in lines(te)]
    return train, test


def write(name, rows):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def main():
    zh_train, zh_test = collect([zh_ecom.D, zh_account_aftersales.D, zh_finance_service.D])
    en_train, en_test = collect([en_data.D])
    templates = {
        "train.zh.jsonl": zh_train, "test.zh.jsonl": zh_test,
        "train.en.jsonl": en_train, "test.en.jsonl": en_test,
        "oos.zh.jsonl": [(t, "out_of_scope") for t in oos_data.ZH if t.strip()],
        "oos.en.jsonl": [(t, "out_of_scope") for t in oos_data.EN if t.strip()],
    }
    for name in sorted(templates):
        rows = [(fill(t), lab) for t, lab in templates[name]]
        write(name, rows)
    print("written:", ", ".join(sorted(templates)))


if __name__ == "__main__":
    main()
