//! `switchboard replay`: re-runs an offset or time range of `user.said` through the graph on
//! record time, into ClickHouse (and, when asked, a replies topic), idempotently: output ids
//! derive from the input, so a second replay of the same range rewrites the same rows.

use crate::Result;
use std::sync::Arc;
use std::time::Duration;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sinks::live::LiveTargets;
use switchboard_sources::kafka::{EndPosition, StartPosition};
use switchboard_topology::metrics::Metrics;
use switchboard_topology::runner::live::{self, Layout, RunOptions, RunReport};
use switchboard_topology::{Clock, GraphConfig};

/// An offset or time range of a topic.
#[derive(Debug, Clone)]
pub struct Range {
    /// Where to start.
    pub start: StartPosition,
    /// Where to stop (exclusive).
    pub end: EndPosition,
}

/// What a backfill reads and where it writes.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The range of the input topic.
    pub range: Range,
    /// The input topic (`user.said`).
    pub topic: String,
    /// The consumer group of the live run; the backfill uses `<group>-replay` and commits nothing.
    pub group_id: String,
    /// Worker threads.
    pub workers: usize,
    /// Most records per worker and epoch.
    pub batch_max: usize,
    /// Records read and not yet durable above which reading pauses.
    pub max_in_flight: usize,
    /// The ClickHouse group commit.
    pub group_commit: switchboard_sinks::group_commit::GroupCommitConfig,
    /// Also write answers and handoffs to this topic (default: ClickHouse only).
    pub output_topic: Option<String>,
}

/// Runs the backfill with `graph` (its clock is set to record time) and returns what it read.
pub fn backfill(
    options: BackfillOptions,
    mut graph: GraphConfig,
    metrics: Arc<Metrics>,
    kafka: KafkaSettings,
    clickhouse: ClickHouseSettings,
    runtime: &tokio::runtime::Runtime,
) -> Result<RunReport> {
    graph.clock = Clock::Virtual;
    let run = RunOptions {
        layout: Layout::Process(options.workers),
        group_id: format!("{}-replay", options.group_id),
        topic: options.topic,
        start: options.range.start,
        end: Some(options.range.end),
        commit: false,
        batch_max: options.batch_max,
        poll_wait: Duration::from_millis(200),
        max_in_flight: options.max_in_flight,
        group_commit: options.group_commit,
        targets: LiveTargets { replies_topic: options.output_topic, dead_letter_topic: None, sessions: false },
        clock: Clock::Virtual,
        progress: true,
    };
    Ok(live::run(run, graph, metrics, kafka, clickhouse, runtime)?)
}
