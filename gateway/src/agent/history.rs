//! What the agent side reads from ClickHouse (`switchboard.events`, `switchboard.sessions`):
//! the open queue when an instance starts, a waiting dialogue's details, and a dialogue's masked
//! transcript. Read-only, bound parameters, `FINAL`, bounded in rows and time.

use super::desk::{Owned, Waiting};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_schemas::ownership::Owner;
use switchboard_schemas::settings::ClickHouseSettings;
use switchboard_schemas::session::DialogueState;
use switchboard_schemas::{Event, EventBody};

/// Longest a read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most events of a transcript.
pub(crate) const MAX_TRANSCRIPT: u64 = 500;

/// A read-only ClickHouse client for the agent side.
pub(crate) struct History {
    client: clickhouse::Client,
    /// Detail lookups run at most this many at a time: under load many dialogues are handed
    /// off at once, and each lookup is three `FINAL` reads.
    lookups: tokio::sync::Semaphore,
}

/// Detail lookups in flight at once.
const LOOKUPS: usize = 2;

#[derive(Deserialize, clickhouse::Row)]
struct PayloadRow {
    payload: String,
}

#[derive(Deserialize, clickhouse::Row)]
struct StateRow {
    state: String,
}

/// One event of a transcript, as the agent page shows it (texts are masked).
#[derive(Debug, Clone, Serialize, Deserialize, clickhouse::Row)]
pub(crate) struct TranscriptEvent {
    /// The event's kind.
    pub(crate) kind: String,
    /// Event time, Unix ms.
    pub(crate) occurred_at_ms: u64,
    /// The masked text (what the user or the agent said, the answer, the handoff detail).
    pub(crate) text: String,
    /// The intent, where the kind has one.
    pub(crate) intent: String,
    /// Handoff, ownership or close reason, where the kind has one.
    pub(crate) reason: String,
    /// The agent an agent's message or an ownership change names, else empty.
    pub(crate) agent: String,
}

impl History {
    /// A client for `settings` (nothing is contacted until a read).
    pub(crate) fn new(settings: &ClickHouseSettings) -> History {
        History { client: crate::console::queries::read_only_client(settings, READ_TIMEOUT), lookups: tokio::sync::Semaphore::new(LOOKUPS) }
    }

    /// The payload of the dialogue's latest event of `kind`, if any.
    async fn latest(&self, dialogue_id: &str, kind: &str) -> Result<Option<Event>, clickhouse::error::Error> {
        let rows = self
            .client
            .query(
                "SELECT payload FROM events FINAL WHERE dialogue_id = ? AND kind = ? \
                 ORDER BY occurred_at_ms DESC LIMIT 1",
            )
            .bind(dialogue_id)
            .bind(kind)
            .fetch_all::<PayloadRow>()
            .await?;
        Ok(rows.first().and_then(|r| switchboard_schemas::decode(r.payload.as_bytes()).ok()))
    }

    /// The dialogues whose last ownership change (in the last day) left them waiting or with
    /// an agent.
    pub(crate) async fn open_queue(&self) -> Result<(Vec<Waiting>, Vec<Owned>), String> {
        let rows = tokio::time::timeout(
            READ_TIMEOUT,
            self.client
                .query(
                    "SELECT argMax(payload, occurred_at_ms) AS payload FROM events FINAL \
                     WHERE kind = 'ownership_changed' AND occurred_at >= now() - 86400 \
                     GROUP BY dialogue_id LIMIT 10000",
                )
                .fetch_all::<PayloadRow>(),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let (mut waiting, mut owned) = (Vec::new(), Vec::new());
        for row in rows {
            let Ok(event) = switchboard_schemas::decode(row.payload.as_bytes()) else { continue };
            let EventBody::OwnershipChanged(o) = &event.body else { continue };
            match (o.owner, &o.agent) {
                (Owner::Waiting, _) => waiting.push(Waiting {
                    dialogue_id: event.dialogue_id.clone(),
                    reason: o.handoff_reason.map_or("handoff", |r| r.as_str()).to_string(),
                    since_ms: event.occurred_at,
                    locale: None,
                    last_intent: None,
                    slots: BTreeMap::new(),
                }),
                (Owner::Agent, Some(agent)) => {
                    owned.push(Owned { dialogue_id: event.dialogue_id.clone(), agent: agent.clone(), since_ms: event.occurred_at })
                }
                _ => {}
            }
        }
        Ok((waiting, owned))
    }

    /// A waiting dialogue's locale, last intent and slots (what is known of them).
    pub(crate) async fn details(
        &self,
        dialogue_id: &str,
    ) -> Result<(Option<String>, Option<String>, BTreeMap<String, String>), String> {
        let _permit = self.lookups.acquire().await.map_err(|_| "lookups closed".to_string())?;
        let read = async {
            let said = self.latest(dialogue_id, "user_said").await?;
            let intent = self.latest(dialogue_id, "intent_recognized").await?;
            let state = self
                .client
                .query("SELECT state FROM sessions FINAL WHERE dialogue_id = ? LIMIT 1")
                .bind(dialogue_id)
                .fetch_all::<StateRow>()
                .await?;
            Ok::<_, clickhouse::error::Error>((said, intent, state))
        };
        let (said, intent, state) = tokio::time::timeout(READ_TIMEOUT, read)
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let locale = said.and_then(|e| match e.body {
            EventBody::UserSaid(u) => Some(u.locale.as_str().to_string()),
            _ => None,
        });
        let last_intent = intent.and_then(|e| match e.body {
            EventBody::IntentRecognized(i) => Some(i.intent),
            _ => None,
        });
        let slots = state
            .first()
            .and_then(|r| serde_json::from_str::<DialogueState>(&r.state).ok())
            .map(|s| s.slots)
            .unwrap_or_default();
        Ok((locale, last_intent, slots))
    }

    /// The dialogue's events by time (masked texts), at most [`MAX_TRANSCRIPT`].
    pub(crate) async fn transcript(&self, dialogue_id: &str) -> Result<Vec<TranscriptEvent>, String> {
        tokio::time::timeout(
            READ_TIMEOUT,
            self.client
                .query(
                    // A queued turn's text is its user_said's: one line per turn.
                    "SELECT kind, occurred_at_ms, text, intent, reason, agent FROM events FINAL \
                     WHERE dialogue_id = ? AND kind IN ('user_said', 'answer_generated', 'handoff_requested', \
                     'ownership_changed', 'agent_said', 'dialogue_closed') \
                     ORDER BY occurred_at_ms LIMIT ?",
                )
                .bind(dialogue_id)
                .bind(MAX_TRANSCRIPT)
                .fetch_all::<TranscriptEvent>(),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())
    }
}
