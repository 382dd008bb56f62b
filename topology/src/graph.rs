//! The dataflow graph: source records → decode and mask → understand (intent + retrieval,
//! batched per epoch) → exchange by dialogue → session (state, slot filling, handoff, idle
//! close) → sinks. Sinks flush everything of an epoch before the epoch's capability is
//! released, so a probe after the sinks tells which epochs are durable: the Kafka offsets of
//! those epochs may be committed (frontier-driven commit).

use crate::decode::{decode_turn, Turn};
use crate::stage::{dialogue_hash, Stage};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_operators::session::{asks_for_human, SessionConfig, SessionSnapshot, Sessions, TurnAnalysis};
use switchboard_operators::understand::Understand;
use switchboard_operators::{pii, render};
use switchboard_schemas::{Event, EventBody};
use switchboard_sources::SourceRecord;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::{ProbeHandle, Stream};

/// Dataflow time: milliseconds (wall clock in `run`, record time in `test`).
pub type Time = u64;

/// Where processing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The epoch's timestamp (record time): deterministic, for tests and replays.
    Virtual,
    /// The wall clock at processing.
    Wall,
}

impl Clock {
    fn now(self, time: Time) -> i64 {
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

/// Where an epoch's output events go. `flush` must return only once they are durable.
pub trait EventSink: 'static {
    /// Writes all events of one epoch. An error stops the worker (fail-stop): offsets of the
    /// epoch are never committed, so a restart redoes it.
    fn flush(&mut self, time: Time, events: Vec<Event>) -> Result<(), String>;

    /// Saves the session state of the dialogues an epoch changed; called after [`flush`] of
    /// the same epoch (a saved state never runs ahead of durable outputs). The default keeps
    /// nothing (tests on recordings, replays).
    ///
    /// [`flush`]: EventSink::flush
    fn save_sessions(&mut self, _time: Time, _sessions: Vec<SessionSnapshot>) -> Result<(), String> {
        Ok(())
    }
}

/// What the session operator emits: events for the sinks, and changed session state to save.
#[derive(Debug, Clone)]
pub enum Output {
    /// An output event.
    Event(Event),
    /// A dialogue's changed state (or its close).
    Session(SessionSnapshot),
}

/// What the graph needs besides its input.
#[derive(Clone)]
pub struct GraphConfig {
    /// Intent and retrieval.
    pub understand: Arc<dyn Understand>,
    /// Session tuning.
    pub session: SessionConfig,
    /// Processing time source.
    pub clock: Clock,
    /// Where per-operator timings go, if anywhere.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Where the live per-minute counts go, if anywhere.
    pub aggregates: Option<Arc<crate::aggregates::LiveAggregates>>,
}

/// Builds the graph on `input` and returns the probe that tells which epochs are durable.
/// `restored` carries saved session state (at time 0, before any turn); it may be empty.
pub fn build<'s>(
    input: Stream<'s, Time, Vec<SourceRecord>>,
    restored: Stream<'s, Time, Vec<SessionSnapshot>>,
    config: GraphConfig,
    sink: Box<dyn EventSink>,
) -> ProbeHandle<Time> {
    let versions = crate::versions::versions_collection(input.clone(), config.understand.clone());
    let staged = understand_stage(input, versions, config.understand.clone(), config.clock, config.metrics.clone());
    let outputs = session_stage(staged, restored, config.session.clone(), config.clock, config.metrics.clone());
    if let Some(live) = &config.aggregates {
        crate::aggregates::aggregate_stage(events_only(outputs.clone()), live.clone());
    }
    let probe = ProbeHandle::new();
    sink_stage(outputs, sink).probe_with(&probe);
    probe
}

/// The events among the session operator's outputs.
fn events_only<'s>(outputs: Stream<'s, Time, Vec<Output>>) -> Stream<'s, Time, Vec<Event>> {
    outputs
        .unary(Pipeline, "Events", |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, batch| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    let mut session = output.session(&cap);
                    for item in batch.drain(..) {
                        if let Output::Event(event) = item {
                            session.give(event);
                        }
                    }
                });
            }
        })
        .container::<Vec<Event>>()
}

/// Decodes, masks and understands each epoch's records as one batch, with the model and
/// knowledge-base versions that the versions collection holds at the epoch's time (an as-of join
/// of the turn stream with the collection).
fn understand_stage<'s>(
    input: Stream<'s, Time, Vec<SourceRecord>>,
    versions: differential_dataflow::collection::VecCollection<'s, Time, crate::versions::VersionRecord, isize>,
    understand: Arc<dyn Understand>,
    clock: Clock,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> Stream<'s, Time, Vec<Stage>> {
    input
        .binary_frontier(versions.inner, Pipeline, Pipeline, "Understand", move |_cap, _info| {
            let mut stash: BTreeMap<Time, (timely::dataflow::operators::Capability<Time>, Vec<SourceRecord>)> =
                BTreeMap::new();
            let mut versions_as_of = crate::versions::VersionsAsOf::default();
            let mut watermarks = PartitionWatermarks::default();
            move |(input, frontier), (versions_input, versions_frontier), output| {
                input.for_each_stamp(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    let entry = stash.entry(*cap.time()).or_insert_with(|| (cap, Vec::new()));
                    for batch in data {
                        entry.1.append(batch);
                    }
                });
                versions_input.for_each(|_, updates| versions_as_of.absorb(updates.drain(..)));
                let ready: Vec<Time> = ready_times(&stash, frontier)
                    .into_iter()
                    .filter(|t| !versions_frontier.less_equal(t))
                    .collect();
                for time in ready {
                    let Some((cap, records)) = stash.remove(&time) else { continue };
                    let started = std::time::Instant::now();
                    let pinned = versions_as_of.at(time);
                    let now = RecordClock { clock, epoch_now: clock.now(time) };
                    let staged = understand_batch(&records, understand.as_ref(), &pinned, now, &mut watermarks);
                    if let Some(m) = &metrics {
                        m.record_stage("understand", started.elapsed());
                    }
                    output.session(&cap).give_iterator(staged.into_iter());
                }
            }
        })
        .container::<Vec<Stage>>()
}

/// The highest record time read so far from each source partition, in read order (a
/// partition's records reach one worker, in offset order).
#[derive(Debug, Default)]
pub struct PartitionWatermarks(std::collections::HashMap<i32, i64>);

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

/// Decodes and analyses one batch of records with the given model and knowledge-base versions.
pub fn understand_batch(
    records: &[SourceRecord],
    understand: &dyn Understand,
    versions: &switchboard_operators::understand::Versions,
    clock: RecordClock,
    watermarks: &mut PartitionWatermarks,
) -> Vec<Stage> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut turns: Vec<Pending> = Vec::new();
    for record in records {
        let watermark = watermarks.observe(record);
        let now_ms = clock.at(record);
        match decode_turn(record, now_ms) {
            Ok(turn) => {
                let masked = pii::mask(&turn.said.text).into_owned();
                turns.push(Pending { turn, masked, record_time: record.timestamp_ms, now_ms, watermark });
            }
            Err(events) => out.extend(events.into_iter().map(Stage::Emit)),
        }
    }
    let queries: Vec<(switchboard_schemas::Locale, &str)> =
        turns.iter().map(|p| (p.turn.said.locale, p.masked.as_str())).collect();
    match understand.understand(&queries, versions) {
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
            for Pending { turn, now_ms, .. } in &turns {
                let record = SourceRecord {
                    topic: switchboard_schemas::topics::USER_SAID.into(),
                    partition: turn.partition,
                    offset: turn.offset,
                    timestamp_ms: turn.event.occurred_at,
                    key: Some(turn.event.dialogue_id.clone()),
                    value: switchboard_schemas::encode(&turn.event),
                };
                out.extend(crate::decode::dead_letter(&record, &reason, *now_ms).into_iter().map(Stage::Emit));
            }
        }
    }
    out
}

/// The stateful session operator, keyed by dialogue. Saved state arrives on `restored` at
/// time 0 and is put back before any turn; each epoch's changed dialogues go out as
/// [`Output::Session`] after its events.
fn session_stage<'s>(
    staged: Stream<'s, Time, Vec<Stage>>,
    restored: Stream<'s, Time, Vec<SessionSnapshot>>,
    config: SessionConfig,
    clock: Clock,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> Stream<'s, Time, Vec<Output>> {
    let exchange = Exchange::new(|s: &Stage| dialogue_hash(s.dialogue_id()));
    let restore_exchange = Exchange::new(|s: &SessionSnapshot| dialogue_hash(&s.dialogue_id));
    staged
        .binary_frontier(restored, exchange, restore_exchange, "Session", move |cap, _info| {
            let mut sessions = Sessions::new(config);
            let mut stash: BTreeMap<Time, Vec<Stage>> = BTreeMap::new();
            // Held at the input frontier so idle closes can be emitted as event time advances.
            let mut clock_cap = Some(cap);
            move |(input, frontier), (restored_input, restored_frontier), output| {
                restored_input.for_each(|_, snapshots| {
                    for snapshot in snapshots.drain(..) {
                        sessions.restore(snapshot);
                    }
                });
                input.for_each_stamp(|cap, data| {
                    let Some(time) = cap.least().copied() else { return };
                    let entry = stash.entry(time).or_default();
                    for batch in data {
                        entry.append(batch);
                    }
                });
                let Some(held) = clock_cap.as_mut() else { return };
                // Turns wait until every saved state has been put back.
                let ready: Vec<Time> =
                    ready_times(&stash, frontier).into_iter().filter(|t| !restored_frontier.less_equal(t)).collect();
                for time in ready {
                    let Some(mut items) = stash.remove(&time) else { continue };
                    let started = std::time::Instant::now();
                    let now = clock.now(time);
                    let at = held.delayed(&time.max(*held.time()));
                    let mut session = output.session(&at);
                    if clock == Clock::Wall {
                        // Dialogues idle before this epoch close before its turns are seen.
                        session.give_iterator(sessions.close_idle(i64::try_from(time).unwrap_or(i64::MAX)).into_iter().map(Output::Event));
                    }
                    items.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
                    for item in items {
                        match item {
                            Stage::Emit(e) => session.give(Output::Event(e)),
                            // Redone after a restart: its outputs are durable and its effect is in
                            // the restored state.
                            Stage::Turn { analysis, partition, offset, .. }
                                if sessions.applied(&analysis.said.dialogue_id, partition, offset) =>
                            {
                                tracing::debug!(dialogue = %analysis.said.dialogue_id, partition, offset, "turn already applied; skipped");
                            }
                            // On record time, idle closes follow each partition's own
                            // watermark, so poll boundaries never change what a replay writes.
                            Stage::Turn { analysis, partition, record_time, partition_watermark, .. } if clock == Clock::Virtual => {
                                session.give_iterator(
                                    sessions
                                        .on_turn_in_lane(*analysis, partition, partition_watermark, record_time)
                                        .into_iter()
                                        .map(Output::Event),
                                )
                            }
                            Stage::Turn { analysis, partition, offset, .. } => {
                                let seen_at = i64::try_from(time).unwrap_or(i64::MAX);
                                let dialogue = analysis.said.dialogue_id.clone();
                                session.give_iterator(sessions.on_turn(*analysis, seen_at, now).into_iter().map(Output::Event));
                                sessions.mark_applied(&dialogue, partition, offset);
                            }
                        }
                    }
                    session.give_iterator(sessions.take_changes().into_iter().map(Output::Session));
                    if let Some(m) = &metrics {
                        m.record_stage("session", started.elapsed());
                    }
                }
                match frontier.frontier().iter().min().copied() {
                    Some(low) => {
                        if clock == Clock::Wall {
                            let mut closes: Vec<Output> =
                                sessions.close_idle(i64::try_from(low).unwrap_or(i64::MAX)).into_iter().map(Output::Event).collect();
                            closes.extend(sessions.take_changes().into_iter().map(Output::Session));
                            if !closes.is_empty() {
                                output.session(&*held).give_iterator(closes.into_iter());
                            }
                        }
                        if *held.time() < low {
                            held.downgrade(&low);
                        }
                    }
                    None => {
                        // End of input. A recording or a replay has really ended: every dialogue
                        // closes at its own idle deadline. A live run is only stopping: its
                        // dialogues go on after the restart, so none is closed.
                        if clock == Clock::Virtual {
                            let closes = sessions.close_idle(i64::MAX);
                            output.session(&*held).give_iterator(closes.into_iter().map(Output::Event));
                        }
                        clock_cap = None;
                    }
                }
            }
        })
        .container::<Vec<Output>>()
}

/// Removes and returns, in time order, the stashed entries whose time the input frontier has
/// passed (no more input can arrive for them).
fn take_ready<V>(stash: &mut BTreeMap<Time, V>, frontier: &timely::progress::frontier::MutableAntichain<Time>) -> Vec<(Time, V)> {
    let ready = ready_times(stash, frontier);
    ready.into_iter().filter_map(|t| stash.remove(&t).map(|v| (t, v))).collect()
}

/// The stashed times, in order, that the input frontier has passed.
fn ready_times<V>(stash: &BTreeMap<Time, V>, frontier: &timely::progress::frontier::MutableAntichain<Time>) -> Vec<Time> {
    stash.keys().copied().filter(|t| !frontier.less_equal(t)).collect()
}

/// Orders one epoch's items deterministically: emits first, then turns by source position
/// (a partition's turns in offset order, as each dialogue's user sent them).
fn order_key(stage: &Stage) -> (i32, i64, u8, switchboard_schemas::EventId) {
    match stage {
        Stage::Turn { analysis, partition, offset, .. } => (*partition, *offset, 1, analysis.said.event_id),
        Stage::Emit(e) => (-1, -1, 0, e.event_id),
    }
}

/// Flushes each epoch's events to the sink once the epoch is complete, then saves the session
/// state the epoch changed.
fn sink_stage<'s>(outputs: Stream<'s, Time, Vec<Output>>, mut sink: Box<dyn EventSink>) -> Stream<'s, Time, Vec<()>> {
    outputs
        .unary_frontier(Pipeline, "Sink", move |_cap, _info| {
            let mut stash: BTreeMap<Time, (timely::dataflow::operators::Capability<Time>, Vec<Output>)> = BTreeMap::new();
            move |(input, frontier), _output: &mut timely::dataflow::operators::generic::OutputBuilderSession<'_, Time, timely::container::CapacityContainerBuilder<Vec<()>>>| {
                input.for_each_stamp(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    let entry = stash.entry(*cap.time()).or_insert_with(|| (cap, Vec::new()));
                    for batch in data {
                        entry.1.append(batch);
                    }
                });
                for (time, (cap, outputs)) in take_ready(&mut stash, frontier) {
                    let mut events = Vec::with_capacity(outputs.len());
                    let mut sessions = Vec::new();
                    for item in outputs {
                        match item {
                            Output::Event(e) => events.push(e),
                            Output::Session(s) => sessions.push(s),
                        }
                    }
                    let flushed = sink.flush(time, events).and_then(|()| sink.save_sessions(time, sessions));
                    if let Err(e) = flushed {
                        // Fail-stop: nothing of this epoch is committed; a restart redoes it.
                        tracing::error!(error = %e, time, "sink flush failed; stopping");
                        eprintln!("switchboard: sink failed: {e}");
                        std::process::exit(1);
                    }
                    drop(cap);
                }
            }
        })
        .container::<Vec<()>>()
}
