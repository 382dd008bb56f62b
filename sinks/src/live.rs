//! The live sinks of `switchboard run` and `switchboard replay`: every event to ClickHouse,
//! the replies ([`is_reply`]: answers, handoffs, ownership changes, queued turns, agents'
//! messages and refusals) to `bot.said`, dead letters to `switchboard.dead-letter`.
//!
//! Replies leave as soon as the graph hands an epoch over: they are given to the producer on the
//! worker's thread, and nobody waits for ClickHouse before seeing an answer. The rest happens
//! in the background: once the broker acknowledged the epoch's replies, its events and then its
//! session snapshots go to ClickHouse with the next group insert ([`GroupCommit`]), and only
//! then is the epoch reported durable (so its offsets may be committed). Transient failures are
//! retried with backoff for up to [`RETRY_FOR`]; then the epoch fails and the runner stops the
//! process (fail-stop).

use crate::clickhouse::{ClickHouseSink, SessionRow};
use crate::group_commit::{GroupCommit, GroupCommitConfig};
use crate::kafka::KafkaSink;
pub use crate::retry::RETRY_FOR;
use crate::retry::retry;
use crate::sink::{Durable, EventSink, FlushObserver, Time};
use crate::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use switchboard_schemas::session::SessionSnapshot;
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::{topics, Event, EventBody, HandoffReason};

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
    /// Fill-gaps backfill into the live database: only the outputs of turns it holds no
    /// outcome for are written ([`crate::gaps`]).
    pub fill_gaps: bool,
}

impl Default for LiveTargets {
    fn default() -> Self {
        LiveTargets {
            replies_topic: Some(topics::BOT_SAID.into()),
            dead_letter_topic: Some(topics::DEAD_LETTER.into()),
            sessions: true,
            fill_gaps: false,
        }
    }
}

/// The outputs of one process, shared by its workers: one producer, one ClickHouse writer.
pub struct LiveOutputs {
    runtime: tokio::runtime::Handle,
    kafka: Mutex<KafkaSink>,
    kafka_settings: KafkaSettings,
    clickhouse: Arc<ClickHouseSink>,
    commits: GroupCommit,
    targets: LiveTargets,
    observer: Option<Arc<dyn FlushObserver>>,
    /// Events handed over and not yet durable, for backpressure.
    in_flight: AtomicUsize,
}

impl LiveOutputs {
    /// Connects the producer and starts the ClickHouse writer on `runtime`.
    pub fn new(
        runtime: tokio::runtime::Handle,
        clickhouse: Arc<ClickHouseSink>,
        kafka_settings: KafkaSettings,
        targets: LiveTargets,
        group_commit: GroupCommitConfig,
        observer: Option<Arc<dyn FlushObserver>>,
    ) -> Result<Arc<Self>> {
        let kafka = KafkaSink::new(&kafka_settings)?;
        let commits = GroupCommit::start(&runtime, clickhouse.clone(), group_commit, observer.clone());
        Ok(Arc::new(LiveOutputs {
            runtime,
            kafka: Mutex::new(kafka),
            kafka_settings,
            clickhouse,
            commits,
            targets,
            observer,
            in_flight: AtomicUsize::new(0),
        }))
    }

    /// Events handed to the sinks and not yet durable (all workers of the process).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn producer(&self) -> KafkaSink {
        self.kafka.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends the epoch's replies and dead letters now; the future resolves once acknowledged.
    fn send_replies(&self, replies: &[Event], dead: &[Event]) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let producer = self.producer();
        let replies = self.targets.replies_topic.as_ref().map(|topic| producer.send(topic, replies));
        let dead = self.targets.dead_letter_topic.as_ref().map(|topic| producer.send(topic, dead));
        async move {
            if let Some(replies) = replies {
                replies.await?;
            }
            if let Some(dead) = dead {
                dead.await?;
            }
            Ok(())
        }
    }

    /// Everything after the first send: retries of the replies, then the group insert.
    async fn finish(
        self: Arc<Self>,
        started: Instant,
        first_send: impl std::future::Future<Output = Result<()>>,
        replies: Vec<Event>,
        dead: Vec<Event>,
        events: Vec<Event>,
        sessions: Vec<SessionRow>,
    ) -> Result<()> {
        let sent = first_send.await;
        if let (Ok(()), Some(observer)) = (&sent, &self.observer) {
            observer.replies_acked(&replies);
        }
        if let Err(e) = sent {
            // The first failure goes through the shared retry (backoff, transient or not, the
            // time limit); every later attempt starts a new producer first: an idempotent
            // producer that lost its broker-side state (a broker restart) fails every later
            // send. Resent events keep their ids.
            let mut first = Some(e);
            retry("sending replies", || -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
                match first.take() {
                    Some(e) => Box::pin(std::future::ready(Err(e))),
                    None => {
                        self.renew_producer();
                        Box::pin(self.send_replies(&replies, &dead))
                    }
                }
            })
            .await?;
        }
        self.commits.write(events, sessions).await?;
        if let Some(observer) = &self.observer {
            observer.durable(started.elapsed(), &replies);
        }
        Ok(())
    }

    fn renew_producer(&self) {
        match KafkaSink::new(&self.kafka_settings) {
            Ok(fresh) => *self.kafka.lock().unwrap_or_else(|p| p.into_inner()) = fresh,
            Err(e) => tracing::warn!(error = %e, "cannot recreate the Kafka producer"),
        }
    }
}

/// One worker's handle on its process's [`LiveOutputs`].
pub struct LiveSink {
    outputs: Arc<LiveOutputs>,
}

impl LiveSink {
    /// A worker's sink writing through the process's outputs.
    pub fn new(outputs: Arc<LiveOutputs>) -> Self {
        LiveSink { outputs }
    }
}

impl EventSink for LiveSink {
    fn write_epoch(&mut self, time: Time, events: Vec<Event>, sessions: Vec<SessionSnapshot>, done: Durable) {
        let sessions = if self.outputs.targets.sessions { sessions } else { Vec::new() };
        let rows = match session_rows(time, sessions) {
            Ok(rows) => rows,
            Err(e) => return done(Err(e)),
        };
        if events.is_empty() && rows.is_empty() {
            return done(Ok(()));
        }
        let started = Instant::now();
        let outputs = self.outputs.clone();
        let count = events.len() + rows.len();
        outputs.in_flight.fetch_add(count, Ordering::Relaxed);
        if self.outputs.targets.fill_gaps {
            self.outputs.runtime.spawn(async move {
                let result = match outputs.gaps_of(events).await {
                    Ok(gaps) => {
                        let (replies, dead, first_send) = outputs.hand_over(&gaps);
                        outputs.clone().finish(started, first_send, replies, dead, gaps, rows).await
                    }
                    Err(e) => Err(e),
                };
                outputs.in_flight.fetch_sub(count, Ordering::Relaxed);
                done(result);
            });
            return;
        }
        let (replies, dead, first_send) = outputs.hand_over(&events);
        self.outputs.runtime.spawn(async move {
            let result = outputs.clone().finish(started, first_send, replies, dead, events, rows).await;
            outputs.in_flight.fetch_sub(count, Ordering::Relaxed);
            done(result);
        });
    }
}

impl LiveOutputs {
    /// Sends `events`' replies and dead letters now and tells the observer; returns them with
    /// the future of their first send.
    #[allow(clippy::type_complexity)]
    fn hand_over(&self, events: &[Event]) -> (Vec<Event>, Vec<Event>, impl std::future::Future<Output = Result<()>> + Send + 'static) {
        let replies: Vec<Event> = events.iter().filter(|e| is_reply(e)).cloned().collect();
        let dead: Vec<Event> = events.iter().filter(|e| matches!(e.body, EventBody::DeadLetter(_))).cloned().collect();
        let first_send = self.send_replies(&replies, &dead);
        if let Some(observer) = &self.observer {
            observer.handed_over(events);
        }
        (replies, dead, first_send)
    }

    /// The events of an epoch that fill gaps of the live database (read with retries).
    async fn gaps_of(&self, events: Vec<Event>) -> Result<Vec<Event>> {
        let mut dialogues: Vec<String> = events.iter().map(|e| e.dialogue_id.clone()).collect();
        dialogues.sort_unstable();
        dialogues.dedup();
        let recorded = retry("reading what the live run recorded", || self.clickhouse.recorded(&dialogues)).await?;
        Ok(crate::gaps::gaps_only(events, &recorded))
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
