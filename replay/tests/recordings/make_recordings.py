#!/usr/bin/env python3
"""Writes the golden-test recordings (CONTRACT format, one Kafka record a line).

Deterministic: fixed ids and times. Re-run only to change the scenarios, then re-bless with
`switchboard test RECORDING --golden RECORDING.golden.ndjson --bless`.
"""
import json

T0 = 1_764_000_000_000


def uid(n):
    return f"0193a000-0000-7000-8000-{n:012x}"


class Recording:
    def __init__(self, name):
        self.name, self.lines, self.offsets, self.n = name, [], {}, 0

    def record(self, dialogue, at, value, partition=None):
        p = partition if partition is not None else sum(dialogue.encode()) % 8
        o = self.offsets.get(p, 0)
        self.offsets[p] = o + 1
        self.lines.append({"topic": "user.said", "partition": p, "offset": o,
                           "timestamp_ms": at + 3, "key": dialogue, "value": value})

    def say(self, dialogue, at, text, locale="zh-CN", user="u-1"):
        self.n += 1
        event = {"event_id": uid(hash((self.name, self.n)) % (1 << 47) + self.n), "dialogue_id": dialogue,
                 "schema_version": 1, "occurred_at": at, "kind": "user_said",
                 "client_msg_id": f"m-{self.n}", "user_id": user, "locale": locale, "text": text}
        self.record(dialogue, at, event)
        return event["client_msg_id"]

    def agent(self, dialogue, at, kind, agent, **fields):
        """An agent's action (agent_claim, agent_message, agent_return, agent_close), as a gateway
        produces it on user.said."""
        self.n += 1
        event = {"event_id": uid(self.n), "dialogue_id": dialogue, "schema_version": 1, "occurred_at": at,
                 "kind": kind, "agent": agent, **fields}
        self.record(dialogue, at, event)

    def timeout(self, dialogue, at, msg):
        """A gateway's answer timeout for the say with client_msg_id `msg` (its event id is filled
        in by resolve_replies once the ids are final)."""
        self.n += 1
        event = {"event_id": uid(self.n), "dialogue_id": dialogue, "schema_version": 1, "occurred_at": at,
                 "kind": "handoff_requested", "in_reply_to": "@" + msg, "client_msg_id": msg,
                 "reason": "timeout", "detail": "no answer in time", "latency_ms": 5000}
        self.record(dialogue, at, event)

    def write(self):
        self.lines.sort(key=lambda l: (l["timestamp_ms"], l["partition"], l["offset"]))
        # Offsets follow append (time) order within each partition, as on a broker.
        next_offset = {}
        for l in self.lines:
            l["offset"] = next_offset.get(l["partition"], 0)
            next_offset[l["partition"]] = l["offset"] + 1
        with open(f"{self.name}.ndjson", "w", encoding="utf-8") as f:
            for l in self.lines:
                f.write(json.dumps(l, ensure_ascii=False) + "\n")


def resolve_replies(r):
    # A timeout names the say it is for by client_msg_id until the ids are final.
    said = {l["value"]["client_msg_id"]: l["value"]["event_id"] for l in r.lines
            if isinstance(l["value"], dict) and l["value"].get("kind") == "user_said"}
    for l in r.lines:
        v = l["value"]
        if isinstance(v, dict) and str(v.get("in_reply_to", "")).startswith("@"):
            v["in_reply_to"] = said[v["in_reply_to"][1:]]


def stable_ids(r):
    # Python's hash() is salted per process: replace with a counter-based id.
    for i, l in enumerate(r.lines):
        if isinstance(l["value"], dict) and "event_id" in l["value"]:
            l["value"]["event_id"] = uid(i + 1 + 1000 * len(r.name))


# 1. Multi-turn slot filling: the bot asks for the order number and completes the answer.
r = Recording("slot_filling")
r.say("d-return", T0, "我要退货")
r.say("d-return", T0 + 4_000, "订单号是 2024113051")
r.say("d-track", T0 + 1_000, "我的快递到哪了")
r.say("d-track", T0 + 6_000, "单号 SF1234567890")
r.say("d-en", T0 + 2_000, "I want to return my order", locale="en")
r.say("d-en", T0 + 9_000, "order 3021948576", locale="en")
r.say("d-direct", T0 + 3_000, "订单 2024113051 我要退货")
r.say("d-invoice", T0 + 5_000, "怎么开发票")
r.say("d-return", T0 + 3_700_000, "你好")  # after the idle timeout: a new session
stable_ids(r); r.write()

# 2. PII in every field a user can type, zh and en, spaced and dashed.
r = Recording("pii_everywhere")
r.say("d-pii-1", T0, "我的手机号是 138 1234 5678，帮我查下物流", user="13812345678")
r.say("d-pii-1", T0 + 2_000, "身份证 110101199003071233 银行卡 6222 0212 3456 7890 128 都被盗刷了")
r.say("d-pii-2", T0 + 1_000, "email me at zhang.san@example.com or call +86-139-8765-4321", locale="en",
      user="zhang.san@example.com")
r.say("d-pii-2", T0 + 3_000, "my card 4111-1111-1111-1111 was charged twice", locale="en")
r.say("d-pii-3", T0 + 4_000, "退款到 6217 0000 1234 5670 这张卡吗，手机15900001111")
stable_ids(r); r.write()

# 3. Handoff paths: explicit ask, low confidence, two unresolved turns in a row.
r = Recording("handoff_paths")
r.say("d-ask", T0, "别跟我扯了，转人工")
r.say("d-ask-en", T0 + 500, "I want to talk to a human agent", locale="en")
r.say("d-oos", T0 + 1_000, "帮我写一篇关于秋天的作文")
r.say("d-oos-en", T0 + 1_500, "what's the weather like on mars", locale="en")
r.say("d-gibberish", T0 + 2_000, "asdfghjkl qwerty")
r.say("d-gibberish", T0 + 4_000, "zxcvbnm poiuy")
r.say("d-ok", T0 + 5_000, "你们客服几点下班")
stable_ids(r); r.write()

# 4. Malformed records: each goes to the dead letter, and a turn that still names its
# dialogue and message gets a handoff instead of silence.
r = Recording("malformed_records")
r.say("d-good", T0, "你好")
r.record("d-bad-json", T0 + 100, "{\"kind\": \"user_said\", \"text\": 我要退货")
r.record("d-unknown-kind", T0 + 200, {"event_id": uid(9001), "dialogue_id": "d-unknown-kind", "schema_version": 1,
                                      "occurred_at": T0 + 200, "kind": "user_shouted", "text": "hi"})
r.record("d-future", T0 + 300, {"event_id": uid(9002), "dialogue_id": "d-future", "schema_version": 9,
                                "occurred_at": T0 + 300, "kind": "user_said", "client_msg_id": "m-future",
                                "user_id": "u", "locale": "zh-CN", "text": "新版本的事件"})
r.record("d-missing", T0 + 400, {"event_id": uid(9003), "dialogue_id": "d-missing", "schema_version": 1,
                                 "occurred_at": T0 + 400, "kind": "user_said", "client_msg_id": "m-missing",
                                 "user_id": "u", "locale": "zh-CN"})
r.record("d-long", T0 + 500, {"event_id": uid(9004), "dialogue_id": "d-long", "schema_version": 1,
                              "occurred_at": T0 + 500, "kind": "user_said", "client_msg_id": "m-long",
                              "user_id": "u", "locale": "zh-CN", "text": "退" * 5000})
r.record("d-pii-bad", T0 + 600, "not json, but my phone is 13812345678")
r.record("d-wrong-type", T0 + 700, {"event_id": uid(9005), "dialogue_id": "d-wrong-type", "schema_version": 1,
                                    "occurred_at": "yesterday", "kind": "user_said", "client_msg_id": "m-wrong",
                                    "user_id": "u", "locale": "zh-CN", "text": "hi"})
r.record("d-answer", T0 + 800, {"event_id": uid(9006), "dialogue_id": "d-answer", "schema_version": 1,
                                "occurred_at": T0 + 800, "kind": "dialogue_closed", "reason": "idle_timeout",
                                "turns": 1})
stable_ids(r); r.write()

# 5. Human agents: a handoff waits for an agent; two agents claim in the same millisecond and the
# first in the partition wins; the bot stays silent (turns queued) while the agent writes (PII
# masked); the agent returns the dialogue and the bot answers again; another agent closes a
# dialogue; a gateway's answer timeout queues a dialogue, nobody claims it, and after the wait
# the bot comes back with an apology; an agent steps into a dialogue the bot was answering.
r = Recording("agent_takeover")
r.say("d-agent", T0, "别跟我扯了，转人工")
r.agent("d-agent", T0 + 5_000, "agent_claim", "li.na")
r.agent("d-agent", T0 + 5_000, "agent_claim", "wang.wu")
r.say("d-agent", T0 + 8_000, "我的快递三天了还没到")
r.agent("d-agent", T0 + 9_000, "agent_message", "wang.wu", client_msg_id="a-1", text="我来处理吧")
r.agent("d-agent", T0 + 10_000, "agent_message", "li.na", client_msg_id="a-2",
        text="您好，我是客服李娜。方便留个手机号吗？或者打我们的热线 138 1234 5678")
r.say("d-agent", T0 + 20_000, "单号 SF1234567890，手机 13912345678")
r.agent("d-agent", T0 + 25_000, "agent_message", "li.na", client_msg_id="a-3", text="查到了，明天送达。")
r.agent("d-agent", T0 + 30_000, "agent_return", "li.na")
r.say("d-agent", T0 + 35_000, "你们客服几点下班")
r.say("d-close-en", T0 + 1_000, "I want to talk to a human agent", locale="en")
r.agent("d-close-en", T0 + 3_000, "agent_claim", "li.na")
r.agent("d-close-en", T0 + 4_000, "agent_close", "wang.wu")
r.agent("d-close-en", T0 + 6_000, "agent_message", "li.na", client_msg_id="a-4",
        text="Your refund went to card 4111 1111 1111 1111. Anything else?")
r.agent("d-close-en", T0 + 9_000, "agent_close", "li.na")
r.agent("d-close-en", T0 + 10_000, "agent_claim", "wang.wu")
late = r.say("d-timeout", T0 + 2_000, "我要退货")
r.timeout("d-timeout", T0 + 7_000, late)
r.say("d-timeout", T0 + 9_000, "订单号是 2024113051")
r.say("d-timeout", T0 + 200_000, "还有人吗？我要退货")
r.say("d-step-in", T0 + 4_000, "你们客服几点下班")
r.agent("d-step-in", T0 + 6_000, "agent_claim", "wang.wu")
r.say("d-step-in", T0 + 7_000, "好的谢谢")
r.agent("d-step-in", T0 + 12_000, "agent_return", "wang.wu")
stable_ids(r); resolve_replies(r); r.write()
