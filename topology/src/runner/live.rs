//! The live runner: the graph on Kafka, for `switchboard run` (one process), `switchboard
//! submit` (one process of a cluster) and `switchboard replay` (a bounded range into the sinks).
//!
//! Each worker owns a disjoint share of the partitions, feeds one epoch per poll, and commits
//! the offsets of an epoch only after the probe behind the sinks has passed it — that is, after
//! ClickHouse and the broker acknowledged every output of that epoch on every worker.

use crate::graph::{self, GraphConfig};
use crate::metrics::Metrics;
use crate::time::{wall_clock_ms, Clock, Time};
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sinks::live::{restored_sessions, LiveSink, LiveTargets};
use switchboard_sources::kafka::{EndPosition, KafkaSource, StartPosition};
use timely::dataflow::InputHandle;

/// How workers are laid out.
#[derive(Debug, Clone)]
pub enum Layout {
    /// One process with this many worker threads.
    Process(usize),
    /// One process of a cluster.
    Cluster {
        /// Worker threads in this process.
        workers: usize,
        /// This process's index in `hosts`.
        process: usize,
        /// `host:port` of every process.
        hosts: Vec<String>,
    },
}

impl Layout {
    fn timely_config(&self) -> timely::Config {
        match self {
            Layout::Process(n) => timely::Config::process((*n).max(1)),
            Layout::Cluster { workers, process, hosts } => timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: (*workers).max(1),
                    process: *process,
                    addresses: hosts.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: timely::WorkerConfig::default(),
            },
        }
    }
}

/// What a run reads and where its outputs go.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker layout.
    pub layout: Layout,
    /// Consumer group whose committed offsets are the restart point.
    pub group_id: String,
    /// Input topic.
    pub topic: String,
    /// Where to start.
    pub start: StartPosition,
    /// Where to stop (None: run until stopped).
    pub end: Option<EndPosition>,
    /// Whether to commit offsets (not for replays).
    pub commit: bool,
    /// Most records per worker and epoch.
    pub batch_max: usize,
    /// Longest wait for the first record of an epoch.
    pub poll_wait: Duration,
    /// Output topics.
    pub targets: LiveTargets,
    /// Processing time source.
    pub clock: Clock,
    /// Whether to show a progress bar (bounded runs).
    pub progress: bool,
}

/// Longest a worker parks while it waits for its peers before it looks again.
const PARK: Duration = Duration::from_millis(20);

/// Set by SIGTERM/SIGINT: workers finish their epoch, commit, and stop.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// What a bounded run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunReport {
    /// Records read.
    pub records: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// Runs the graph until stopped (or until the end of a bounded range) with the given
/// connections. Returns the first failure of any worker: a sink that could not make an epoch
/// durable, a source that failed; the epochs not durable were not committed.
pub fn run(
    options: RunOptions,
    graph_config: GraphConfig,
    metrics: Arc<Metrics>,
    kafka: KafkaSettings,
    clickhouse: ClickHouseSettings,
    runtime: &tokio::runtime::Runtime,
) -> Result<RunReport> {
    let clickhouse = Arc::new(ClickHouseSink::new(&clickhouse));
    runtime.block_on(clickhouse.ping()).map_err(Error::ClickHouseUnreachable)?;
    let failure = graph_config.failure.clone();
    let handle = runtime.handle().clone();
    let started = Instant::now();
    let progress = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} records, {per_sec}, elapsed {elapsed}, ETA {eta} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let bar = progress.clone();
    if let Layout::Cluster { process, hosts, .. } = &options.layout {
        fail_stop_on_lost_peer(*process, hosts.len());
    }
    let options_for_workers = options.clone();
    let worker_failure = failure.clone();
    let guards = timely::execute(options.layout.timely_config(), move |worker| -> Result<u64> {
        let options = &options_for_workers;
        let index = worker.index();
        let peers = worker.peers();
        let mut source = KafkaSource::open(&kafka, &options.group_id, &options.topic, index, peers, &options.start, options.end.as_ref())
            .map_err(|source| Error::Source { worker: index, source })?;
        let process = match &options.layout {
            Layout::Cluster { process, .. } => *process,
            Layout::Process(_) => 0,
        };
        tracing::info!(process, worker = index, peers, partitions = ?source.partitions(), "worker owns partitions");
        // A bounded run's total: records up to the high watermark (an upper bound when the
        // range ends earlier).
        if let (Some(bar), Some(_)) = (&bar, &options.end) {
            if let Ok(lag) = source.lag() {
                bar.inc_length(lag.max(0) as u64);
            }
        }
        let observer: Arc<dyn switchboard_sinks::FlushObserver> = metrics.clone();
        let sink = LiveSink::new(handle.clone(), clickhouse.clone(), kafka.clone(), options.targets.clone(), Some(observer))?;
        // Worker 0 reads the saved sessions back; the exchange takes each to its worker.
        let restored = if index == 0 && options.targets.sessions {
            let rows = handle.block_on(clickhouse.open_sessions())?;
            let restored = restored_sessions(rows);
            tracing::info!(dialogues = restored.len(), "restored open dialogues");
            restored
        } else {
            Vec::new()
        };
        let mut input: InputHandle<Time, _> = InputHandle::new();
        let probe = worker.dataflow::<Time, _, _>(|scope| {
            let restored = timely::dataflow::operators::ToStream::to_stream(restored, scope);
            graph::build(input.to_stream(scope), restored, graph_config.clone(), Box::new(sink))
        });
        let mut time: Time = 0;
        let mut records_read: u64 = 0;
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now() - Duration::from_secs(60);
        let mut committed = source.position().clone();
        loop {
            if STOP.load(Ordering::Relaxed) || source.finished() || worker_failure.failed() {
                break;
            }
            let batch = source
                .poll_batch(options.batch_max, options.poll_wait)
                .map_err(|source| Error::Source { worker: index, source })?;
            let wall = u64::try_from(wall_clock_ms()).unwrap_or(0);
            let epoch = match options.clock {
                Clock::Wall => wall.max(time + 1),
                Clock::Virtual => batch
                    .iter()
                    .map(|r| u64::try_from(r.timestamp_ms).unwrap_or(0))
                    .max()
                    .unwrap_or(time)
                    .max(time + 1),
            };
            input.advance_to(epoch);
            time = epoch;
            records_read += batch.len() as u64;
            metrics.record_in(batch.len());
            if let Some(bar) = &bar {
                bar.inc(batch.len() as u64);
            }
            for record in batch {
                input.send(record);
            }
            input.advance_to(epoch + 1);
            // Every output of this epoch is durable once the probe passes it. Park while waiting
            // (a peer's message wakes the worker): spinning here took a core from the encoder
            // while another worker understood its batch.
            while probe.less_than(&(epoch + 1)) && !worker_failure.failed() {
                worker.step_or_park(Some(PARK));
            }
            if worker_failure.failed() {
                break;
            }
            let position = source.position().clone();
            if options.commit && position != committed && (last_commit.elapsed() >= Duration::from_millis(200)) {
                // A failed commit loses nothing: the outputs are durable and a later commit
                // covers them; at worst a restart redoes a few epochs (same event ids).
                match source.commit(&position) {
                    Ok(()) => {
                        committed = position;
                        metrics.epoch_committed();
                    }
                    Err(e) => tracing::warn!(worker = index, error = %e, "offset commit failed; retrying later"),
                }
                last_commit = Instant::now();
            }
            if last_lag.elapsed() >= Duration::from_secs(5) {
                if let Ok(lag) = source.lag() {
                    metrics.set_lag(lag);
                }
                last_lag = Instant::now();
            }
        }
        drop(input);
        if worker_failure.failed() {
            // The failed epoch is held back and never completes: stop without committing it
            // (or anything after it).
            return Ok(records_read);
        }
        while !probe.done() && !worker_failure.failed() {
            worker.step_or_park(Some(PARK));
        }
        let position = source.position().clone();
        if options.commit && position != committed && !worker_failure.failed() {
            source.commit(&position).map_err(|source| Error::Source { worker: index, source })?;
        }
        Ok(records_read)
    })
    .map_err(Error::Start)?;
    let mut records = 0;
    let mut first_error = None;
    for result in guards.join() {
        match result {
            Ok(Ok(n)) => records += n,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::WorkerPanicked(e));
            }
        }
    }
    if let Some(e) = failure.take() {
        return Err(Error::Sink(e));
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if let Some(bar) = progress {
        // The length was an upper bound (records up to the high watermark); finish at what
        // was read, not at that bound.
        bar.set_length(bar.position());
        bar.finish_with_message("done");
    }
    Ok(RunReport { records, seconds: started.elapsed().as_secs_f64() })
}

/// Makes a cluster process fail-stop when it loses a peer.
///
/// timely's network threads panic with "timely communication error: …" when a peer's
/// connection closes or fails; the local workers then panic on their poisoned queues and
/// timely's own guards panic again while joining. Instead of that cascade (and of any chance
/// of waiting forever for progress from a dead peer), the first such panic ends this process
/// at once with one clear line and exit status 1. Nothing is lost: offsets are committed only
/// for epochs that are durable on every worker, so restarting every process of the cluster
/// redoes the rest with the same event ids.
fn fail_stop_on_lost_peer(process: usize, processes: usize) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if message.starts_with("timely communication error") || message.starts_with("MergeQueue poisoned") {
            tracing::error!(process, processes, cause = %message, "lost a peer of the timely cluster; stopping (fail-stop)");
            eprintln!(
                "switchboard: process {process} of {processes} lost a peer of the timely cluster ({message}); \
                 fail-stop: restart every process of the cluster, they resume from the committed offsets"
            );
            std::process::exit(1);
        }
        previous(info);
    }));
}
