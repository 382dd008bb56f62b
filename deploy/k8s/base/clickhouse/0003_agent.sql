-- The agent account an event names (agents' claims, messages, returns and closes, ownership
-- changes, queued turns, agents' messages to users, refusals); empty for the other kinds.
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: applied once, by name (deploy/dev/lib.sh).
ALTER TABLE switchboard.events ADD COLUMN agent String DEFAULT ''
;
