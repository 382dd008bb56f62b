//! Turn analysis: one epoch's source records decoded, masked and understood as one batch, with
//! the model and knowledge-base versions pinned for that epoch. What comes out feeds the session
//! operator ([`Stage`]): analysed turns and the other inputs of the session (agents' actions,
//! handoffs) with their source position, and events that go straight to the sinks (the masked
//! `user_said`, dead letters).

use crate::decode::{dead_letter, decode_input, Input, Turn};
use crate::session::{asks_for_human, TurnAnalysis};
use crate::stage::Stage;
use crate::understand::{Understand, Versions};
use crate::{pii, render};
use std::collections::HashMap;
use switchboard_schemas::{Event, EventBody, HandoffRequested, Locale, SourceRecord};

/// Where processing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The record's own timestamp (record time): deterministic, for tests and replays.
    Virtual,
    /// The wall clock at processing.
    Wall,
}

impl Clock {
    /// The processing time of an epoch at dataflow time `time` (ms): the time itself on record
    /// time, the wall clock otherwise.
    pub fn now(self, time: u64) -> i64 {
        match self {
            Clock::Virtual => i64::try_from(time).unwrap_or(i64::MAX),
            Clock::Wall => wall_clock_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The highest record time read so far from each source partition, in read order (a
/// partition's records reach one worker, in offset order).
#[derive(Debug, Default)]
pub struct PartitionWatermarks(HashMap<i32, i64>);

impl PartitionWatermarks {
    /// Takes `record` into account and returns its partition's watermark.
    pub fn observe(&mut self, record: &SourceRecord) -> i64 {
        let mark = self.0.entry(record.partition).or_insert(i64::MIN);
        *mark = (*mark).max(record.timestamp_ms);
        *mark
    }
}

/// The processing time of a record: its own timestamp on record time, or the epoch's wall
/// clock (one reading per epoch) in a live run.
#[derive(Debug, Clone, Copy)]
pub struct RecordClock {
    /// Where time comes from.
    pub clock: Clock,
    /// The epoch's time on that clock.
    pub epoch_now: i64,
}

impl RecordClock {
    /// When `record` is processed.
    pub fn at(self, record: &SourceRecord) -> i64 {
        match self.clock {
            Clock::Virtual => record.timestamp_ms,
            Clock::Wall => self.epoch_now,
        }
    }
}

/// A decoded turn with its masked text, record time, processing time and partition watermark.
struct Pending {
    turn: Turn,
    masked: String,
    record_time: i64,
    now_ms: i64,
    watermark: i64,
}

/// An event for the session operator: a handoff or an agent's action goes through the session
/// (which decides what it does to the dialogue's owner), anything else (a dead letter) straight
/// to the sinks. With its record's partition, offset, time and partition watermark.
fn staged((event, partition, offset, record_time, partition_watermark): (Event, i32, i64, i64, i64)) -> Stage {
    match event.body {
        EventBody::DeadLetter(_) | EventBody::UserSaid(_) => Stage::Emit(event),
        _ => Stage::Action { event, partition, offset, record_time, partition_watermark },
    }
}

/// When turns expire (see [`analyze_batch`]).
#[derive(Debug, Default)]
pub struct Expiry {
    /// A turn met more than this many ms after it was said is expired.
    pub after_ms: i64,
    /// Per source partition, the high watermark when this run started reading it. A record
    /// before it may have been processed (and answered) by a run that crashed before committing
    /// it: it is redone as it was done then, never expired, so that what is recorded is what
    /// the user was told.
    pub redo_below: std::sync::RwLock<HashMap<i32, i64>>,
}

impl Expiry {
    /// Expiry after `after_ms`, with no partition opened yet.
    pub fn after(after_ms: i64) -> Self {
        Expiry { after_ms, redo_below: Default::default() }
    }

    /// Records where a run started reading `partition`.
    pub fn opened(&self, partition: i32, high_watermark: i64) {
        if let Ok(mut map) = self.redo_below.write() {
            map.insert(partition, high_watermark);
        }
    }

    /// Whether `record` may have been processed before this run started.
    fn may_be_redone(&self, record: &SourceRecord) -> bool {
        // Unknown partition (or a poisoned lock): assume a redo; never expire wrongly.
        self.redo_below.read().map_or(true, |map| map.get(&record.partition).is_none_or(|below| record.offset < *below))
    }
}

/// An expired turn's outputs: its masked `user_said` and the timeout handoff.
fn expired(turn: Turn, masked: String, now_ms: i64, limit: i64) -> [Stage; 2] {
    let mut said = turn.event;
    if let EventBody::UserSaid(body) = &mut said.body {
        body.text = masked;
        body.user_id = pii::mask(&body.user_id).into_owned();
    }
    let detail = format!("expired: met {} ms after it was said, past the {limit} ms answer timeout", now_ms - said.occurred_at);
    let handoff = HandoffRequested::timeout(&said.dialogue_id, said.event_id, &turn.said.client_msg_id, said.occurred_at, now_ms, detail);
    [Stage::Emit(said), Stage::Emit(handoff)]
}

/// An input event with its free texts PII-masked (an agent's message, a handoff's detail).
fn masked_input(mut event: Event) -> Event {
    match &mut event.body {
        EventBody::AgentMessage(m) => m.text = pii::mask(&m.text).into_owned(),
        EventBody::HandoffRequested(h) => h.detail = pii::mask(&h.detail).into_owned(),
        _ => {}
    }
    event
}

/// Decodes, masks and analyses one batch of records with the given model and knowledge-base
/// versions. A record that does not decode becomes a dead letter (and a handoff when it names
/// its dialogue and message); a batch that cannot be understood does too, turn by turn.
///
/// A failure that can pass (a model server or vector store unreachable, a version still
/// loading: [`crate::Error::is_transient`]) is returned instead: nothing of the batch is
/// decided, and the caller retries it later. Only what can never succeed is a dead letter.
///
/// With an [`Expiry`] (live runs only), a turn that has waited longer than its limit since the
/// gateway received it is expired: it is not understood or answered (under overload the model's
/// time goes to turns that can still be answered in time); its one recorded outcome is the
/// timeout handoff its user gets from the gateway (same derived id as the gateway's). A turn
/// read again after a restart is never expired (see [`Expiry::redo_below`]).
pub fn analyze_batch(
    records: &[SourceRecord],
    understand: &dyn Understand,
    versions: &Versions,
    clock: RecordClock,
    watermarks: &mut PartitionWatermarks,
    expiry: Option<&Expiry>,
) -> crate::Result<Vec<Stage>> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut turns: Vec<Pending> = Vec::new();
    for record in records {
        let watermark = watermarks.observe(record);
        let now_ms = clock.at(record);
        let at = |event| (event, record.partition, record.offset, record.timestamp_ms, watermark);
        match decode_input(record, now_ms) {
            Ok(Input::Turn(turn)) => {
                let masked = pii::mask(&turn.said.text).into_owned();
                let waited = now_ms - turn.event.occurred_at.min(record.timestamp_ms);
                match expiry.filter(|e| clock.clock == Clock::Wall && waited > e.after_ms && !e.may_be_redone(record)) {
                    Some(e) => out.extend(expired(turn, masked, now_ms, e.after_ms)),
                    None => turns.push(Pending { turn, masked, record_time: record.timestamp_ms, now_ms, watermark }),
                }
            }
            Ok(Input::Action(event)) => out.push(staged(at(masked_input(event)))),
            Err(events) => out.extend(events.into_iter().map(|e| staged(at(e)))),
        }
    }
    let queries: Vec<(Locale, &str)> = turns.iter().map(|p| (p.turn.said.locale, p.masked.as_str())).collect();
    match understand.understand(&queries, versions) {
        Err(e) if e.is_transient() => return Err(e),
        Ok(understood) if understood.len() == turns.len() => {
            for (Pending { turn, masked, record_time, watermark, .. }, u) in turns.into_iter().zip(understood) {
                let mut said = turn.event.clone();
                if let EventBody::UserSaid(body) = &mut said.body {
                    body.text = masked.clone();
                    body.user_id = pii::mask(&body.user_id).into_owned();
                }
                out.push(Stage::Emit(said.clone()));
                let analysis = TurnAnalysis {
                    client_msg_id: turn.said.client_msg_id.clone(),
                    locale: turn.said.locale,
                    slots: render::extract_slots(&masked),
                    asks_for_human: asks_for_human(&masked),
                    masked_text: masked,
                    intent: u.intent,
                    confidence: u.confidence,
                    model_version: u.model_version,
                    retrieved: u.retrieved,
                    kb_version: u.kb_version,
                    said,
                };
                out.push(Stage::Turn {
                    analysis: Box::new(analysis),
                    partition: turn.partition,
                    offset: turn.offset,
                    record_time,
                    partition_watermark: watermark,
                });
            }
        }
        result => {
            let reason = match result {
                Err(e) => format!("understanding failed: {e}"),
                Ok(v) => format!("understanding returned {} results for {} turns", v.len(), turns.len()),
            };
            tracing::error!(%reason, turns = turns.len(), "batch failed; turns go to the dead letter");
            for Pending { turn, now_ms, record_time, watermark, .. } in &turns {
                let record = SourceRecord {
                    topic: switchboard_schemas::topics::USER_SAID.into(),
                    partition: turn.partition,
                    offset: turn.offset,
                    timestamp_ms: turn.event.occurred_at,
                    key: Some(turn.event.dialogue_id.clone()),
                    value: switchboard_schemas::encode(&turn.event),
                };
                out.extend(
                    dead_letter(&record, &reason, *now_ms)
                        .into_iter()
                        .map(|e| staged((e, turn.partition, turn.offset, *record_time, *watermark))),
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::understand::Understanding;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use switchboard_schemas::{encode, EventId, HandoffReason, UserSaid};

    /// Counts the turns it is asked about; knows one intent.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Understand for Counting {
        fn available_versions(&self) -> Versions {
            Versions::new()
        }
        fn understand(&self, batch: &[(Locale, &str)], _: &Versions) -> crate::Result<Vec<Understanding>> {
            self.0.fetch_add(batch.len(), Ordering::Relaxed);
            Ok(batch
                .iter()
                .map(|_| Understanding { intent: "greet".into(), confidence: 0.99, model_version: "m".into(), retrieved: None, kb_version: "k".into() })
                .collect())
        }
    }

    fn record(said_at: i64, offset: i64) -> (SourceRecord, Event) {
        let said = Event::new(
            "d1",
            said_at,
            EventBody::UserSaid(UserSaid { client_msg_id: format!("m{offset}"), user_id: "u".into(), locale: Locale::ZhCn, text: "你好 13800138000".into() }),
        );
        let record = SourceRecord { topic: "user.said".into(), partition: 0, offset, timestamp_ms: said_at, key: Some("d1".into()), value: encode(&said) };
        (record, said)
    }

    #[test]
    fn a_turn_met_past_the_limit_is_recorded_with_the_gateways_timeout_handoff_not_understood() {
        let now = 1_000_000;
        let (fresh, _) = record(now - 100, 1);
        let (old, old_said) = record(now - 2_500, 2);
        let understand = Counting::default();
        let clock = RecordClock { clock: Clock::Wall, epoch_now: now };
        let expiry = Expiry::after(2_000);
        expiry.opened(0, 0);
        let out = analyze_batch(&[old, fresh], &understand, &Versions::new(), clock, &mut PartitionWatermarks::default(), Some(&expiry)).expect("analysed");
        assert_eq!(understand.0.load(Ordering::Relaxed), 1, "only the fresh turn went through the model");
        let handoffs: Vec<&Event> = out
            .iter()
            .filter_map(|s| match s {
                Stage::Emit(e) if matches!(e.body, EventBody::HandoffRequested(_)) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(handoffs.len(), 1);
        assert_eq!(handoffs[0].event_id, EventId::derived(old_said.event_id, "gateway-timeout"), "the same id the gateway gives it");
        let EventBody::HandoffRequested(h) = &handoffs[0].body else { unreachable!() };
        assert_eq!((h.reason, h.in_reply_to, h.client_msg_id.as_str(), h.latency_ms), (HandoffReason::Timeout, old_said.event_id, "m2", 2_500));
        let recorded_text: Vec<&str> = out
            .iter()
            .filter_map(|s| match s {
                Stage::Emit(Event { body: EventBody::UserSaid(u), .. }) => Some(u.text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(recorded_text.len(), 2, "both says are recorded");
        assert!(recorded_text.iter().all(|t| !t.contains("13800138000")), "masked: {recorded_text:?}");
        assert_eq!(out.iter().filter(|s| matches!(s, Stage::Turn { .. })).count(), 1, "only the fresh turn reaches the session");
    }

    #[test]
    fn a_turn_that_may_have_been_answered_before_a_restart_is_redone_not_expired() {
        let now = 1_000_000;
        let (old, _) = record(now - 2_500, 2);
        let understand = Counting::default();
        let expiry = Expiry::after(2_000);
        expiry.opened(0, 3); // offset 2 was already there when this run started reading
        let clock = RecordClock { clock: Clock::Wall, epoch_now: now };
        let out = analyze_batch(&[old], &understand, &Versions::new(), clock, &mut PartitionWatermarks::default(), Some(&expiry)).expect("analysed");
        assert_eq!(understand.0.load(Ordering::Relaxed), 1, "understood as the first time");
        assert_eq!(out.iter().filter(|s| matches!(s, Stage::Turn { .. })).count(), 1);
    }

    #[test]
    fn record_time_never_expires() {
        let (old, _) = record(1_000, 1);
        let understand = Counting::default();
        let clock = RecordClock { clock: Clock::Virtual, epoch_now: 1_000_000 };
        let expiry = Expiry::after(2_000);
        expiry.opened(0, 0);
        let out = analyze_batch(&[old], &understand, &Versions::new(), clock, &mut PartitionWatermarks::default(), Some(&expiry)).expect("analysed");
        assert_eq!(understand.0.load(Ordering::Relaxed), 1);
        assert_eq!(out.iter().filter(|s| matches!(s, Stage::Turn { .. })).count(), 1);
    }
}
