//! `switchboard replay`: re-runs an offset or time range of `user.said` through the graph on
//! record time, into ClickHouse (and, when asked, a replies topic), idempotently: output ids
//! derive from the input, so a second replay of the same range rewrites the same rows.
//!
//! A replay never changes what the live run recorded (what users were told). It writes either
//! - into a database of its own ([`Target::Database`], by default the live one's name with
//!   `_backfill`): every output of the range, to study a new model or rebuild history beside
//!   the live rows; or
//! - into the live database, filling gaps only ([`Target::FillGaps`]): the outputs of turns the
//!   live run has no outcome for (skipped, dead-lettered, lost); nothing it recorded is written
//!   again.
//!
//! Either way no session state is saved and no dialogue still open at the end of the range is
//! closed ([`EndOfInput::KeepOpen`]): the live run may go on with it.

use crate::Result;
use std::sync::Arc;
use std::time::Duration;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sinks::live::LiveTargets;
use switchboard_sources::kafka::{EndPosition, StartPosition};
use switchboard_topology::metrics::Metrics;
use switchboard_topology::runner::live::{self, Layout, RunOptions, RunReport};
use switchboard_topology::{Clock, EndOfInput, GraphConfig};

/// An offset or time range of a topic.
#[derive(Debug, Clone)]
pub struct Range {
    /// Where to start.
    pub start: StartPosition,
    /// Where to stop (exclusive).
    pub end: EndPosition,
}

/// Where a backfill writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every output of the range into this database (created with the project's tables when
    /// missing); never the live one.
    Database(String),
    /// Into the live database, only the outputs of turns it holds no outcome for.
    FillGaps,
}

impl Target {
    /// The default target beside the live database `live`: `<live>_backfill`.
    pub fn beside(live: &str) -> Target {
        Target::Database(format!("{live}_backfill"))
    }
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
    /// Which database, and which of the outputs.
    pub target: Target,
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
    graph.end_of_input = EndOfInput::KeepOpen;
    let clickhouse = match &options.target {
        Target::Database(database) if *database == clickhouse.database => {
            return Err(crate::Error::Usage(format!(
                "a replay into the live database `{database}` would replace what users were told; write into another database or fill gaps only"
            )))
        }
        Target::Database(database) => {
            // Created through the live database's connection (the new one does not exist yet).
            let live = switchboard_sinks::clickhouse::ClickHouseSink::new(&clickhouse);
            runtime.block_on(live.create_database(database)).map_err(switchboard_topology::Error::Sink)?;
            ClickHouseSettings { database: database.clone(), ..clickhouse }
        }
        Target::FillGaps => clickhouse,
    };
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
        targets: LiveTargets {
            replies_topic: options.output_topic,
            dead_letter_topic: None,
            sessions: false,
            fill_gaps: options.target == Target::FillGaps,
        },
        clock: Clock::Virtual,
        progress: true,
    };
    Ok(live::run(run, graph, metrics, kafka, clickhouse, runtime)?)
}
