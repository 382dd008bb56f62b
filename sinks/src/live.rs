//! The live sinks of `switchboard run` and `switchboard replay`: every event to ClickHouse,
//! the replies ([`is_reply`]: answers, handoffs, ownership changes, queued turns, agents'
//! messages and refusals) to `bot.said`, dead letters to `switchboard.dead-letter`. A flush
//! returns only when ClickHouse and the broker have acknowledged everything; transient failures
//! are retried with backoff for up to [`RETRY_FOR`], then the flush fails and the runner stops
//! the process (fail-stop).

use crate::clickhouse::{ClickHouseSink, SessionRow};
use crate::kafka::KafkaSink;
use crate::sink::{EventSink, FlushObserver, Time};
use crate::{Error, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::{topics, Event, EventBody, HandoffReason};

/// How long a flush keeps retrying before the worker gives up.
pub const RETRY_FOR: Duration = Duration::from_secs(300);

/// Which outputs a live sink writes.
#[derive(Debug, Clone)]
pub struct LiveTargets {
    /// Topic for answers and handoffs (`bot.said`), or none (replay into ClickHouse only).
    pub replies_topic: Option<String>,
    /// Topic for dead letters.
    pub dead_letter_topic: Option<String>,
    /// Whether session state is saved to (and, at start, read back from) ClickHouse's
    /// `sessions`: live runs do, replays (their own virtual-time dialogues) do not.
    pub sessions: bool,
}

impl Default for LiveTargets {
    fn default() -> Self {
        LiveTargets {
            replies_topic: Some(topics::BOT_SAID.into()),
            dead_letter_topic: Some(topics::DEAD_LETTER.into()),
            sessions: true,
        }
    }
}

/// ClickHouse + Kafka.
pub struct LiveSink {
    runtime: tokio::runtime::Handle,
    clickhouse: Arc<ClickHouseSink>,
    kafka: KafkaSink,
    kafka_settings: switchboard_schemas::settings::KafkaSettings,
    targets: LiveTargets,
    observer: Option<Arc<dyn FlushObserver>>,
}

impl LiveSink {
    /// A sink writing through the given clients.
    pub fn new(
        runtime: tokio::runtime::Handle,
        clickhouse: Arc<ClickHouseSink>,
        kafka_settings: switchboard_schemas::settings::KafkaSettings,
        targets: LiveTargets,
        observer: Option<Arc<dyn FlushObserver>>,
    ) -> Result<Self> {
        let kafka = KafkaSink::new(&kafka_settings)?;
        Ok(LiveSink { runtime, clickhouse, kafka, kafka_settings, targets, observer })
    }

    async fn write_once(&self, replies: &[Event], dead: &[Event], all: &[Event]) -> Result<()> {
        let kafka = async {
            if let Some(topic) = &self.targets.replies_topic {
                self.kafka.write(topic, replies).await?;
            }
            if let Some(topic) = &self.targets.dead_letter_topic {
                self.kafka.write(topic, dead).await?;
            }
            Ok(())
        };
        let clickhouse = self.clickhouse.write(all);
        let (k, c) = tokio::join!(kafka, clickhouse);
        k.and(c)
    }
}

impl EventSink for LiveSink {
    fn flush(&mut self, _time: Time, events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let replies: Vec<Event> = events.iter().filter(|e| is_reply(e)).cloned().collect();
        let dead: Vec<Event> = events.iter().filter(|e| matches!(e.body, EventBody::DeadLetter(_))).cloned().collect();
        retry("sink write", || match self.runtime.block_on(self.write_once(&replies, &dead, &events)) {
            Ok(()) => Ok(()),
            Err(e @ Error::Kafka(_)) => {
                // An idempotent producer that lost its broker-side state (a broker restart)
                // fails every later send: start a new one. Resent events keep their ids.
                match KafkaSink::new(&self.kafka_settings) {
                    Ok(fresh) => self.kafka = fresh,
                    Err(e) => tracing::warn!(error = %e, "cannot recreate the Kafka producer"),
                }
                Err(e)
            }
            Err(e) => Err(e),
        })?;
        if let Some(observer) = &self.observer {
            observer.flushed(&events, started.elapsed());
        }
        Ok(())
    }

    fn save_sessions(&mut self, time: Time, sessions: Vec<SessionSnapshot>) -> Result<()> {
        if !self.targets.sessions || sessions.is_empty() {
            return Ok(());
        }
        let rows = session_rows(time, sessions)?;
        retry("saving sessions", || self.runtime.block_on(self.clickhouse.write_sessions(&rows)))
    }
}

/// Whether an event goes to `bot.said` (the gateways): what the topology decided for a user or
/// an agent. A `handoff_requested` with reason `timeout` is not: a gateway made it (it came in on
/// `user.said` and is only recorded); the session's `ownership_changed` for it is.
pub fn is_reply(event: &Event) -> bool {
    match &event.body {
        EventBody::AnswerGenerated(_)
        | EventBody::OwnershipChanged(_)
        | EventBody::TurnQueued(_)
        | EventBody::AgentSaid(_)
        | EventBody::AgentActionRefused(_) => true,
        EventBody::HandoffRequested(h) => h.reason != HandoffReason::Timeout,
        EventBody::UserSaid(_)
        | EventBody::IntentRecognized(_)
        | EventBody::KnowledgeRetrieved(_)
        | EventBody::DialogueClosed(_)
        | EventBody::DeadLetter(_)
        | EventBody::AgentClaim(_)
        | EventBody::AgentMessage(_)
        | EventBody::AgentReturn(_)
        | EventBody::AgentClose(_) => false,
    }
}

/// Runs `attempt` until it succeeds, with exponential backoff (0.1 s doubling to 5 s), for up
/// to [`RETRY_FOR`], as long as the error can pass ([`Error::is_transient`]); then returns its
/// last error.
fn retry(what: &str, mut attempt: impl FnMut() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let error = match attempt() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !error.is_transient() || started.elapsed() >= RETRY_FOR {
            return Err(error);
        }
        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "{what} failed; retrying");
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The `sessions` rows for an epoch's changed dialogues, versioned by the epoch's time.
fn session_rows(time: Time, sessions: Vec<SessionSnapshot>) -> Result<Vec<SessionRow>> {
    sessions
        .into_iter()
        .map(|snapshot| {
            let state = match &snapshot.state {
                Some(state) => serde_json::to_string(state).map_err(|e| Error::Encode { what: format!("session state of {}", snapshot.dialogue_id), reason: e.to_string() })?,
                None => String::new(),
            };
            Ok(SessionRow { closed: u8::from(snapshot.state.is_none()), dialogue_id: snapshot.dialogue_id, state, version: time })
        })
        .collect()
}

/// Saved sessions as read back at start; a row whose state does not parse is reported and
/// left out (that dialogue starts afresh) rather than stopping the start.
pub fn restored_sessions(rows: Vec<SessionRow>) -> Vec<SessionSnapshot> {
    rows.into_iter()
        .filter_map(|row| match serde_json::from_str(&row.state) {
            Ok(state) => Some(SessionSnapshot { dialogue_id: row.dialogue_id, state: Some(state) }),
            Err(e) => {
                tracing::warn!(dialogue = %row.dialogue_id, error = %e, "saved session state does not parse; the dialogue starts afresh");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{AgentClaim, EventId, HandoffRequested, TurnQueued};

    fn handoff(reason: HandoffReason) -> Event {
        Event::new(
            "d",
            1,
            EventBody::HandoffRequested(HandoffRequested {
                in_reply_to: EventId::from_bytes([1; 16]),
                client_msg_id: "m".into(),
                reason,
                detail: String::new(),
                latency_ms: 0,
            }),
        )
    }

    #[test]
    fn replies_are_the_decisions_not_the_inputs() {
        assert!(is_reply(&handoff(HandoffReason::UserAsked)));
        assert!(!is_reply(&handoff(HandoffReason::Timeout)), "a gateway's own timeout is only recorded");
        let queued = Event::new(
            "d",
            1,
            EventBody::TurnQueued(TurnQueued { in_reply_to: EventId::from_bytes([1; 16]), client_msg_id: "m".into(), masked_text: "x".into(), agent: None }),
        );
        assert!(is_reply(&queued));
        assert!(!is_reply(&Event::new("d", 1, EventBody::AgentClaim(AgentClaim { agent: "li".into() }))));
    }
}
