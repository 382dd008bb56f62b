-- The open dialogues' session state, saved by `switchboard run` in the same flush as each
-- epoch's events (after them) and read back when a process starts, so a restart continues
-- dialogues where they were (slots, the answer waiting for a slot, unresolved count).
-- ReplacingMergeTree by dialogue_id, newest `version` (the epoch's time) wins under FINAL;
-- a closed dialogue is a row with closed = 1 and no state.
CREATE TABLE IF NOT EXISTS switchboard.sessions (
    dialogue_id     String,
    state           String,
    closed          UInt8,
    version         UInt64,
    inserted_at     DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY dialogue_id
;
