-- One row per event of every kind, text already PII-masked.
-- ReplacingMergeTree on (dialogue_id, event_id): inserting an event twice leaves one row after
-- merge, and `FINAL` reads one. Types are those ClickHouse 18.16 and current releases share.
CREATE TABLE IF NOT EXISTS switchboard.events (
    event_id        UUID,
    dialogue_id     String,
    kind            LowCardinality(String),
    schema_version  UInt16,
    occurred_at     DateTime,
    occurred_at_ms  UInt64,
    intent          LowCardinality(String),
    confidence      Float32,
    latency_ms      UInt32,
    in_reply_to     UUID,
    client_msg_id   String,
    text            String,
    model_version   LowCardinality(String),
    kb_version      LowCardinality(String),
    reason          LowCardinality(String),
    payload         String,
    inserted_at     DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (dialogue_id, event_id)
;
