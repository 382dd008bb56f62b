//! The ClickHouse sink: one row per event in `switchboard.events` (ReplacingMergeTree keyed by
//! event_id, so writing an event twice leaves one row after merge and `FINAL` reads one).
//! Inserts are RowBinary and parameterised: no text a user typed is ever part of SQL.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use switchboard_schemas::settings::ClickHouseSettings;
use switchboard_schemas::{Event, EventBody};

/// One row of `switchboard.events`.
#[derive(Debug, Clone, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct EventRow {
    /// The event's 16-byte id.
    #[serde(with = "::clickhouse::serde::uuid")]
    pub event_id: uuid::Uuid,
    /// Its dialogue.
    pub dialogue_id: String,
    /// Its kind (`user_said`, …).
    pub kind: String,
    /// Schema version it was written with.
    pub schema_version: u16,
    /// Event time, seconds.
    pub occurred_at: u32,
    /// Event time, milliseconds.
    pub occurred_at_ms: u64,
    /// Intent label, where the kind has one.
    pub intent: String,
    /// Confidence, where the kind has one.
    pub confidence: f32,
    /// Latency from the user's turn, where the kind has one.
    pub latency_ms: u32,
    /// The UserSaid this event answers (nil UUID when none).
    #[serde(with = "::clickhouse::serde::uuid")]
    pub in_reply_to: uuid::Uuid,
    /// The client's message id, where the kind has one.
    pub client_msg_id: String,
    /// The event's main text (masked by the topology before it gets here).
    pub text: String,
    /// Classifier version, where the kind has one.
    pub model_version: String,
    /// Knowledge-base version, where the kind has one.
    pub kb_version: String,
    /// Handoff, close or dead-letter reason, where the kind has one.
    pub reason: String,
    /// The whole event as JSON.
    pub payload: String,
    /// The agent account the event names, where the kind has one (`0003_agent.sql`).
    pub agent: String,
}

impl EventRow {
    /// The row for an event. The caller is responsible for masking PII first.
    pub fn from_event(event: &Event) -> Self {
        let mut row = EventRow {
            event_id: event.event_id.0,
            dialogue_id: event.dialogue_id.clone(),
            kind: event.kind().as_str().to_string(),
            schema_version: event.schema_version,
            occurred_at: u32::try_from(event.occurred_at.max(0) / 1000).unwrap_or(u32::MAX),
            occurred_at_ms: u64::try_from(event.occurred_at).unwrap_or(0),
            intent: String::new(),
            confidence: 0.0,
            latency_ms: 0,
            in_reply_to: uuid::Uuid::nil(),
            client_msg_id: String::new(),
            text: String::new(),
            model_version: String::new(),
            kb_version: String::new(),
            reason: String::new(),
            payload: String::from_utf8_lossy(&switchboard_schemas::encode(event)).into_owned(),
            agent: event.body.agent().unwrap_or_default().to_string(),
        };
        match &event.body {
            EventBody::UserSaid(b) => {
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.text.clone();
            }
            EventBody::IntentRecognized(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.masked_text.clone();
                row.intent = b.intent.clone();
                row.confidence = b.confidence;
                row.model_version = b.model_version.clone();
            }
            EventBody::KnowledgeRetrieved(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.entry_id.clone().unwrap_or_default();
                row.confidence = b.score;
                row.kb_version = b.kb_version.clone();
            }
            EventBody::AnswerGenerated(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.text.clone();
                row.intent = b.intent.clone();
                row.confidence = b.confidence;
                row.latency_ms = b.latency_ms;
            }
            EventBody::HandoffRequested(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.detail.clone();
                row.reason = b.reason.as_str().to_string();
                row.latency_ms = b.latency_ms;
            }
            EventBody::DialogueClosed(b) => {
                row.reason = format!("{:?}", b.reason).to_lowercase();
            }
            EventBody::DeadLetter(b) => {
                row.text = b.payload.clone();
                row.reason = b.reason.clone();
            }
            EventBody::AgentClaim(_) | EventBody::AgentReturn(_) | EventBody::AgentClose(_) => {}
            EventBody::AgentMessage(b) => {
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.text.clone();
            }
            EventBody::OwnershipChanged(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.text = b.owner.as_str().to_string();
                row.reason = b.reason.as_str().to_string();
            }
            EventBody::TurnQueued(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.masked_text.clone();
            }
            EventBody::AgentSaid(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.client_msg_id = b.client_msg_id.clone();
                row.text = b.text.clone();
            }
            EventBody::AgentActionRefused(b) => {
                row.in_reply_to = b.in_reply_to.0;
                row.text = b.action.as_str().to_string();
                row.reason = b.reason.as_str().to_string();
            }
        }
        row
    }
}

/// The SQL of the `events` table (`deploy/clickhouse/migrations/0001_events.sql`).
pub const EVENTS_MIGRATION: &str = include_str!("../../deploy/clickhouse/migrations/0001_events.sql");

/// The SQL of the `sessions` table (`deploy/clickhouse/migrations/0002_sessions.sql`).
pub const SESSIONS_MIGRATION: &str = include_str!("../../deploy/clickhouse/migrations/0002_sessions.sql");

/// The SQL adding the `agent` column to `events` (`deploy/clickhouse/migrations/0003_agent.sql`).
pub const AGENT_MIGRATION: &str = include_str!("../../deploy/clickhouse/migrations/0003_agent.sql");

/// One row of `switchboard.sessions`: a dialogue's saved state (JSON), or a closed marker.
#[derive(Debug, Clone, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct SessionRow {
    /// The dialogue.
    pub dialogue_id: String,
    /// Its state as JSON; empty when closed.
    pub state: String,
    /// 1 once the dialogue has closed.
    pub closed: u8,
    /// Newest wins: the epoch time that wrote it.
    pub version: u64,
}

/// Writes events to `switchboard.events`.
pub struct ClickHouseSink {
    client: ::clickhouse::Client,
    url: String,
}

impl ClickHouseSink {
    /// A sink for the server and database in `settings`.
    pub fn new(settings: &ClickHouseSettings) -> Self {
        let mut client = ::clickhouse::Client::default()
            .with_url(&settings.url)
            .with_database(&settings.database)
            .with_user(&settings.user)
            // 18.16 lacks RowBinaryWithNamesAndTypes, which validation needs.
            .with_validation(false);
        if let Some(password) = &settings.password {
            client = client.with_password(password);
        }
        ClickHouseSink { client, url: settings.url.clone() }
    }

    /// The underlying client, for queries.
    pub fn client(&self) -> &::clickhouse::Client {
        &self.client
    }

    pub(crate) fn error(&self, source: ::clickhouse::error::Error) -> Error {
        Error::ClickHouse { url: self.url.clone(), source }
    }

    /// Inserts the events in one batch and waits until ClickHouse has acknowledged it.
    pub async fn write(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<EventRow>("events").await.map_err(|e| self.error(e))?;
        for event in events {
            insert.write(&EventRow::from_event(event)).await.map_err(|e| self.error(e))?;
        }
        insert.end().await.map_err(|e| self.error(e))
    }

    /// Writes session rows to `sessions`.
    pub async fn write_sessions(&self, rows: &[SessionRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<SessionRow>("sessions").await.map_err(|e| self.error(e))?;
        for row in rows {
            insert.write(row).await.map_err(|e| self.error(e))?;
        }
        insert.end().await.map_err(|e| self.error(e))
    }

    /// The newest row of every dialogue that is still open.
    pub async fn open_sessions(&self) -> Result<Vec<SessionRow>> {
        self.client
            .query("SELECT dialogue_id, state, closed, version FROM sessions FINAL WHERE closed = 0")
            .fetch_all::<SessionRow>()
            .await
            .map_err(|e| self.error(e))
    }

    /// Creates `database` with its `events` and `sessions` tables from the project's migrations (the SQL
    /// `deploy/dev/up.sh` applies to `switchboard`), for tests, benchmarks and backfills into a
    /// separate database. `database` must be a plain identifier (letters, digits, `_`). Calling
    /// it again on the same database changes nothing.
    pub async fn create_database(&self, database: &str) -> Result<()> {
        if database.is_empty() || !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::ClickHouse {
                url: self.url.clone(),
                source: ::clickhouse::error::Error::Custom(format!("`{database}` is not a plain database name")),
            });
        }
        // 18.16 needs the setting for LowCardinality columns; newer servers ignore it.
        let client = self.client.clone().with_setting("allow_experimental_low_cardinality_type", "1");
        client.query(&format!("CREATE DATABASE IF NOT EXISTS {database}")).execute().await.map_err(|e| self.error(e))?;
        for migration in [EVENTS_MIGRATION, SESSIONS_MIGRATION, AGENT_MIGRATION] {
            if migration == AGENT_MIGRATION && self.has_column(&client, database, "events", "agent").await? {
                // 18.16 has no ADD COLUMN IF NOT EXISTS.
                continue;
            }
            let ddl: String = migration
                .lines()
                .filter(|l| !l.starts_with("--") && l.trim() != ";")
                .collect::<Vec<_>>()
                .join("\n")
                .replace("switchboard.", &format!("{database}."));
            client.query(&ddl).execute().await.map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    async fn has_column(&self, client: &::clickhouse::Client, database: &str, table: &str, column: &str) -> Result<bool> {
        client
            .query("SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?")
            .bind(database)
            .bind(table)
            .bind(column)
            .fetch_one::<u64>()
            .await
            .map(|n| n > 0)
            .map_err(|e| self.error(e))
    }

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<()> {
        self.client.query("SELECT 1").fetch_one::<u8>().await.map(|_| ()).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{AgentAction, AgentActionRefused, AgentMessage, EventId, Owner, OwnershipChanged, OwnershipReason, RefusalReason};

    #[test]
    fn ownership_kinds_fill_the_agent_column_and_their_own_fields() {
        let cause = EventId::from_bytes([3; 16]);
        let message = Event::new(
            "d",
            1_000,
            EventBody::AgentMessage(AgentMessage { agent: "li.na".into(), client_msg_id: "a-1".into(), text: "您好".into() }),
        );
        let row = EventRow::from_event(&message);
        assert_eq!((row.kind.as_str(), row.agent.as_str(), row.text.as_str(), row.client_msg_id.as_str()), ("agent_message", "li.na", "您好", "a-1"));
        let changed = Event::new(
            "d",
            1_000,
            EventBody::OwnershipChanged(OwnershipChanged {
                in_reply_to: cause,
                owner: Owner::Waiting,
                agent: None,
                reason: OwnershipReason::Handoff,
                handoff_reason: Some(switchboard_schemas::HandoffReason::Timeout),
            }),
        );
        let row = EventRow::from_event(&changed);
        assert_eq!((row.text.as_str(), row.reason.as_str(), row.agent.as_str()), ("waiting", "handoff", ""));
        assert_eq!(row.in_reply_to, cause.0);
        assert!(row.payload.contains("\"handoff_reason\":\"timeout\""), "{}", row.payload);
        let refused = Event::new(
            "d",
            1_000,
            EventBody::AgentActionRefused(AgentActionRefused {
                in_reply_to: cause,
                agent: "wang".into(),
                action: AgentAction::Claim,
                reason: RefusalReason::AlreadyClaimed,
                owner: Some("li.na".into()),
            }),
        );
        let row = EventRow::from_event(&refused);
        assert_eq!((row.agent.as_str(), row.text.as_str(), row.reason.as_str()), ("wang", "claim", "already_claimed"));
    }

    #[test]
    fn the_agent_migration_adds_one_column() {
        let sql: String = AGENT_MIGRATION.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
        assert!(sql.contains("ADD COLUMN agent String"), "{sql}");
        assert!(!sql.contains("IF NOT EXISTS"), "18.16 cannot parse it");
    }
}
