//! Prometheus metrics of the topology: events in and out by kind, per-operator latency
//! histograms, end-to-end turn latency, and consumer lag, served as text at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::Duration;
use crate::time::wall_clock_ms;
use switchboard_schemas::Event;

type Labels = Vec<(String, String)>;

/// All metrics of one process.
pub struct Metrics {
    registry: Mutex<Registry>,
    records_in: Counter,
    events_out: Family<Labels, Counter>,
    stage_seconds: Family<Labels, Histogram>,
    turn_latency_ms: Histogram,
    consumer_lag: Gauge,
    committed_epochs: Counter,
    clickhouse_inserts: Family<Labels, Counter>,
    clickhouse_rows: Family<Labels, Counter>,
    turn_stage_ms: Family<Labels, Histogram>,
    understand_retries: Counter,
    live: std::sync::Arc<crate::aggregates::LiveAggregates>,
    stage_totals: Mutex<std::collections::BTreeMap<String, StageTotal>>,
}

/// What one operator's epochs took in all (the sums behind `stage_seconds`), for reports that
/// compare runs (`switchboard shadow`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTotal {
    /// Epochs timed.
    pub epochs: u64,
    /// Their total time, seconds.
    pub seconds: f64,
    /// The longest epoch, seconds.
    pub max_seconds: f64,
}

fn stage_ms_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 16))
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let records_in = Counter::default();
        let events_out = Family::<Labels, Counter>::default();
        let stage_seconds = Family::<Labels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let turn_latency_ms = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        let consumer_lag = Gauge::default();
        let committed_epochs = Counter::default();
        registry.register("records_in", "Records read from user.said", records_in.clone());
        registry.register("events_out", "Events written to the sinks, by kind", events_out.clone());
        registry.register("stage_seconds", "Time spent per operator and epoch", stage_seconds.clone());
        registry.register("turn_latency_ms", "From UserSaid occurred_at to the reply", turn_latency_ms.clone());
        registry.register("consumer_lag", "Records behind the high watermark on owned partitions", consumer_lag.clone());
        registry.register("committed_epochs", "Epochs whose offsets were committed", committed_epochs.clone());
        let clickhouse_inserts = Family::<Labels, Counter>::default();
        let clickhouse_rows = Family::<Labels, Counter>::default();
        registry.register("clickhouse_inserts", "Group inserts into ClickHouse, by table", clickhouse_inserts.clone());
        registry.register("clickhouse_rows", "Rows written by the group inserts, by table", clickhouse_rows.clone());
        let understand_retries = Counter::default();
        registry.register(
            "understand_retries",
            "Epochs whose understanding failed in a way that can pass (model server, vector store, version loading) and were retried",
            understand_retries.clone(),
        );
        let turn_stage_ms = Family::<Labels, Histogram>::new_with_constructor(stage_ms_histogram as fn() -> Histogram);
        registry.register(
            "turn_stage_ms",
            "Per turn, ms from the gateway receiving it to reaching a stage: polled (read from the broker), \
             understood, decided (the session's answer or handoff), handed_over (reply given to the producer), \
             reply_acked (the broker acknowledged the reply), durable (its epoch's rows in ClickHouse)",
            turn_stage_ms.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            records_in,
            events_out,
            stage_seconds,
            turn_latency_ms,
            consumer_lag,
            committed_epochs,
            clickhouse_inserts,
            clickhouse_rows,
            turn_stage_ms,
            understand_retries,
            live: std::sync::Arc::new(crate::aggregates::LiveAggregates::new()),
            stage_totals: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// The live per-minute counts this process serves at `/aggregates`.
    pub fn live_aggregates(&self) -> std::sync::Arc<crate::aggregates::LiveAggregates> {
        self.live.clone()
    }

    /// Counts records read.
    pub fn record_in(&self, n: usize) {
        self.records_in.inc_by(n as u64);
    }

    /// Records one operator's time on one epoch.
    pub fn record_stage(&self, stage: &str, took: Duration) {
        self.stage_seconds.get_or_create(&vec![("stage".into(), stage.into())]).observe(took.as_secs_f64());
        if let Ok(mut totals) = self.stage_totals.lock() {
            let total = totals.entry(stage.to_string()).or_default();
            total.epochs += 1;
            total.seconds += took.as_secs_f64();
            total.max_seconds = total.max_seconds.max(took.as_secs_f64());
        }
    }

    /// Every operator's [`StageTotal`] so far, by stage name (`understand`, `session`, `sink`, …).
    pub fn stage_totals(&self) -> std::collections::BTreeMap<String, StageTotal> {
        self.stage_totals.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Records events handed to the sinks: events out by kind, reply latencies (the
    /// `decided` and `handed_over` stages of each answered turn).
    pub fn record_out(&self, events: &[Event]) {
        let now = wall_clock_ms();
        let mut latencies = Vec::new();
        for e in events {
            self.events_out.get_or_create(&vec![("kind".into(), e.kind().as_str().into())]).inc();
            if let Some(said_at) = e.turn_said_at() {
                latencies.push((e.occurred_at - said_at, now - said_at));
            }
        }
        if latencies.is_empty() {
            return;
        }
        // One family guard at a time: get_or_create holds the family's lock while its guard
        // lives, and creating a second label set meanwhile would wait for it forever.
        for (decided, _) in &latencies {
            self.turn_latency_ms.observe(*decided as f64);
        }
        let histogram = self.turn_stage_ms.get_or_create(&vec![("stage".into(), "decided".into())]);
        for (decided, _) in &latencies {
            histogram.observe(*decided as f64);
        }
        drop(histogram);
        let histogram = self.turn_stage_ms.get_or_create(&vec![("stage".into(), "handed_over".into())]);
        for (_, handed_over) in &latencies {
            histogram.observe((*handed_over).max(0) as f64);
        }
    }

    /// Records, for turns the gateway received at `said_at` (ms), how long they took to reach
    /// `stage` (now).
    pub fn record_turn_stage(&self, stage: &str, said_at: impl IntoIterator<Item = i64>) {
        let now = wall_clock_ms();
        let histogram = self.turn_stage_ms.get_or_create(&vec![("stage".into(), stage.into())]);
        for at in said_at {
            histogram.observe((now - at).max(0) as f64);
        }
    }

    /// Counts an epoch whose understanding is retried.
    pub fn understand_retried(&self) {
        self.understand_retries.inc();
    }

    /// Sets the consumer lag.
    pub fn set_lag(&self, lag: i64) {
        self.consumer_lag.set(lag);
    }

    /// Counts a committed epoch.
    pub fn epoch_committed(&self) {
        self.committed_epochs.inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = encode(&mut out, &registry);
        }
        out
    }
}

impl switchboard_sinks::FlushObserver for Metrics {
    fn handed_over(&self, events: &[Event]) {
        self.record_out(events);
    }

    fn durable(&self, took: Duration, replies: &[Event]) {
        self.record_stage("sink", took);
        self.record_turn_stage("durable", replies.iter().filter_map(Event::turn_said_at));
    }

    fn replies_acked(&self, replies: &[Event]) {
        self.record_turn_stage("reply_acked", replies.iter().filter_map(Event::turn_said_at));
    }

    fn inserted(&self, table: &str, rows: usize, took: Duration) {
        self.clickhouse_inserts.get_or_create(&vec![("table".into(), table.into())]).inc();
        self.clickhouse_rows.get_or_create(&vec![("table".into(), table.into())]).inc_by(rows as u64);
        self.record_stage(&format!("clickhouse_insert_{table}"), took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{AnswerGenerated, EventBody, EventId};

    #[test]
    fn answered_turns_fill_every_stage_and_rendering_never_waits() {
        let answer = Event::new(
            "d",
            wall_clock_ms(),
            EventBody::AnswerGenerated(AnswerGenerated {
                in_reply_to: EventId::new_v7(),
                client_msg_id: "m".into(),
                text: "ok".into(),
                intent: "greet".into(),
                confidence: 0.9,
                latency_ms: 12,
            }),
        );
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let metrics = Metrics::new();
            metrics.record_out(std::slice::from_ref(&answer));
            metrics.record_turn_stage("polled", [answer.occurred_at - 12]);
            let _ = done.send(metrics.render());
        });
        let text = finished.recv_timeout(Duration::from_secs(10)).expect("recording and rendering finish (no lock held twice)");
        for stage in ["decided", "handed_over", "polled"] {
            assert!(text.contains(&format!("switchboard_turn_stage_ms_count{{stage=\"{stage}\"}} 1")), "{stage} in {text}");
        }
    }
}
