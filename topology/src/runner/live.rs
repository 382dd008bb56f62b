//! The live runner: the graph on Kafka, for `switchboard run` (one process), `switchboard
//! submit` (one process of a cluster) and `switchboard replay` (a bounded range into the sinks).
//!
//! Each process has **one** Kafka consumer, for its disjoint share of the partitions (partition
//! `p` belongs to process `p mod processes`), read by the [`Feeder`] thread of the process's
//! first worker. That worker feeds what has arrived as one epoch; an exchange by partition
//! spreads the records over the process's workers, each analysing its share in one batch (a
//! dialogue's turns stay together and in order), the session exchange then keys them by
//! dialogue, and the worker goes on at once: many epochs are in flight (understood, answered,
//! their replies on the way, their rows waiting for the next ClickHouse group insert). The
//! other workers feed nothing; they advance their inputs when woken (or on the idle tick). The offsets of an epoch
//! are committed only after the probe behind the sinks has passed it — that is, after
//! ClickHouse and the broker acknowledged every output of that epoch and of every earlier one,
//! on every worker. Too much in flight pauses the feeder. One consumer per process rather than
//! one per worker: a broker that re-reads the partitions of every waiting fetch (nisshi 0.8.1)
//! does a third less idle work with a gateway and a two-worker topology.

use super::feeder::{Fed, Feeder, Position, Wakers};
use super::stop::StopSpreader;
use crate::graph::{self, GraphConfig};
use crate::metrics::Metrics;
use crate::time::{wall_clock_ms, Clock, Time};
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_sinks::clickhouse::ClickHouseSink;
use std::collections::VecDeque;
use switchboard_sinks::group_commit::GroupCommitConfig;
use switchboard_sinks::live::{restored_sessions, LiveOutputs, LiveSink, LiveTargets};
use switchboard_sources::kafka::{EndPosition, KafkaSource, StartPosition};
use switchboard_schemas::SourceRecord;
use timely::dataflow::operators::Exchange;
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
    /// Longest a worker of a cluster process waits before it advances its input with nothing
    /// to read (its peers in other processes wait for that); a single process's workers wake
    /// each other and tick every 250 ms (or this, if longer) for the session's timers.
    pub poll_wait: Duration,
    /// Records read and not yet durable, per process, above which reading pauses.
    pub max_in_flight: usize,
    /// The ClickHouse group commit.
    pub group_commit: GroupCommitConfig,
    /// Output topics.
    pub targets: LiveTargets,
    /// Processing time source.
    pub clock: Clock,
    /// Whether to show a progress bar (bounded runs).
    pub progress: bool,
}

/// Longest a worker parks while it drains at the end of a run before it looks again.
const PARK: Duration = Duration::from_millis(20);

/// The feeder's longest wait in the consumer (it returns as soon as a record is there) between
/// two looks at its commit requests.
const FEEDER_POLL: Duration = Duration::from_millis(100);

/// With nothing to read, a worker of a single process advances its input this often (for the
/// session's timers); its peers wake it as soon as any of them has records. A cluster process
/// cannot wake its peers in other processes, so there `poll_wait` (short) applies.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Between two offset commits at least this long.
const COMMIT_EVERY: Duration = Duration::from_millis(200);

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
    let observer: Arc<dyn switchboard_sinks::FlushObserver> = metrics.clone();
    let outputs = LiveOutputs::new(handle.clone(), clickhouse.clone(), kafka.clone(), options.targets.clone(), options.group_commit, Some(observer))?;
    let wakers = Arc::new(Wakers::default());
    let workers_here = match &options.layout {
        Layout::Process(n) | Layout::Cluster { workers: n, .. } => (*n).max(1),
    };
    let options_for_workers = options.clone();
    let worker_failure = failure.clone();
    let guards = timely::execute(options.layout.timely_config(), move |worker| -> Result<u64> {
        let options = &options_for_workers;
        let index = worker.index();
        let peers = worker.peers();
        // This process's index and the number of processes.
        let (process, processes) = match &options.layout {
            Layout::Cluster { process, hosts, .. } => (*process, hosts.len().max(1)),
            Layout::Process(_) => (0, 1),
        };
        // The process's first worker owns its consumer; the others read nothing themselves.
        let source = if index % workers_here == 0 {
            let source = KafkaSource::open(&kafka, &options.group_id, &options.topic, process, processes, &options.start, options.end.as_ref())
                .map_err(|source| Error::Source { worker: index, source })?;
            tracing::info!(process, worker = index, peers, partitions = ?source.partitions(), "process reads partitions");
            if let Some(expiry) = &graph_config.expiry {
                for (partition, high) in source.opened_at() {
                    expiry.opened(*partition, *high);
                }
            }
            // A bounded run's total: records up to the high watermark (an upper bound when
            // the range ends earlier).
            if let (Some(bar), Some(_)) = (&bar, &options.end) {
                if let Ok(lag) = source.lag() {
                    bar.inc_length(lag.max(0) as u64);
                }
            }
            Some(source)
        } else {
            None
        };
        let sink = LiveSink::new(outputs.clone());
        // Worker 0 reads the saved sessions back; the exchange takes each to its worker.
        let restored = if index == 0 && options.targets.sessions {
            let rows = handle.block_on(clickhouse.open_sessions())?;
            let restored = restored_sessions(rows);
            tracing::info!(dialogues = restored.len(), "restored open dialogues");
            restored
        } else {
            Vec::new()
        };
        let mut input: Input = InputHandle::new();
        let probe = worker.dataflow::<Time, _, _>(|scope| {
            let restored = timely::dataflow::operators::ToStream::to_stream(restored, scope);
            // The process's records go from its first worker to all of its workers by
            // partition (a dialogue's turns stay together, in order), so every core analyses.
            let first_here = (index / workers_here) * workers_here;
            let records = Exchange::exchange(input.to_stream(scope), move |r: &SourceRecord| {
                (first_here + (r.partition.max(0) as usize) % workers_here) as u64
            });
            graph::build(records, restored, graph_config.clone(), Box::new(sink))
        });
        let max_in_flight = options.max_in_flight.max(options.batch_max);
        let mut stop = StopSpreader::build(worker);
        let read = drive(worker, input, &probe, source, options, index, &wakers, &metrics, bar.as_ref(), &worker_failure, max_in_flight, &mut stop);
        // A worker that failed stops the cluster (its epochs can no longer complete); one that
        // reached the end of a bounded range just closes its end of the stop dataflow.
        if read.is_err() {
            STOP.store(true, Ordering::Relaxed);
            stop.spread_if_stopping();
        }
        read
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

/// The graph's input on each worker.
type Input = InputHandle<Time, timely::container::CapacityContainerBuilder<Vec<switchboard_schemas::SourceRecord>>>;

/// One worker's loop: feed what the feeder delivered as one epoch (the worker with the process's
/// consumer) or only advance the input (the others), step the dataflow, release the epochs the
/// probe has passed (committing their offsets), until stopped, failed or at the end of a
/// bounded range; then drain and make the final commit.
#[allow(clippy::too_many_arguments)]
fn drive(
    worker: &mut timely::worker::Worker,
    mut input: Input,
    probe: &timely::dataflow::ProbeHandle<Time>,
    source: Option<KafkaSource>,
    options: &RunOptions,
    index: usize,
    wakers: &Arc<Wakers>,
    metrics: &Arc<Metrics>,
    bar: Option<&indicatif::ProgressBar>,
    failure: &crate::output::Failure,
    max_in_flight: usize,
    stop: &mut StopSpreader,
) -> Result<u64> {
    wakers.register();
    let feeder = source
        .map(|source| Feeder::spawn(source, index, options.batch_max, FEEDER_POLL, wakers.clone(), metrics.clone()))
        .transpose()
        .map_err(|e| Error::Start(format!("cannot start the feeder thread of worker {index}: {e}")))?;
    let mut time: Time = 0;
    let mut records_read: u64 = 0;
    // Epochs fed and not yet durable: (epoch, position after it, records in it).
    let mut pending: VecDeque<(Time, Position, usize)> = VecDeque::new();
    let mut in_flight = 0usize;
    let mut fed_position: Option<Position> = None;
    let mut durable_position: Option<Position> = None;
    let mut requested: Option<Position> = None;
    let mut last_commit = Instant::now();
    let mut seen_generation = wakers.generation();
    let mut last_advance = Instant::now();
    let mut ended = false;
    let mut source_error = None;
    let idle_tick = match options.layout {
        Layout::Process(_) => IDLE_TICK.max(options.poll_wait),
        Layout::Cluster { .. } => options.poll_wait,
    };
    while !(STOP.load(Ordering::Relaxed) || failure.failed() || ended) {
        let mut batch = Vec::new();
        let mut position = None;
        while let Some(feeder) = feeder.as_ref().filter(|_| batch.len() < options.batch_max) {
            match feeder.try_next() {
                Some(Fed::Batch(records, after)) => {
                    batch.extend(records);
                    position = Some(after);
                }
                Some(Fed::End) => ended = true,
                Some(Fed::Failed(e)) => {
                    source_error = Some(e);
                    ended = true;
                }
                None => break,
            }
            if ended {
                break;
            }
        }
        if feeder.is_none() && wakers.ended() {
            // The process's consumer reached the end of a bounded range.
            ended = true;
        }
        let generation = wakers.generation();
        if !batch.is_empty() || generation != seen_generation || last_advance.elapsed() >= idle_tick {
            seen_generation = generation;
            last_advance = Instant::now();
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
            let n = batch.len();
            records_read += n as u64;
            metrics.record_in(n);
            if options.clock == Clock::Wall {
                metrics.record_turn_stage("polled", batch.iter().map(|r| r.timestamp_ms));
            }
            if let Some(bar) = bar {
                bar.inc(n as u64);
            }
            for record in batch {
                input.send(record);
            }
            input.advance_to(epoch + 1);
            if let Some(after) = position {
                pending.push_back((epoch, after.clone(), n));
                in_flight += n;
                fed_position = Some(after);
            }
        }
        worker.step_or_park(Some(idle_tick.saturating_sub(last_advance.elapsed())));
        stop.spread_if_stopping();
        while let Some((epoch, _, _)) = pending.front() {
            if probe.less_than(&(epoch + 1)) {
                break;
            }
            if let Some((_, after, n)) = pending.pop_front() {
                in_flight -= n;
                durable_position = Some(after);
            }
        }
        if let Some(feeder) = &feeder {
            feeder.set_paused(in_flight > max_in_flight);
        }
        if options.commit && durable_position != requested && last_commit.elapsed() >= COMMIT_EVERY {
            if let (Some(position), Some(feeder)) = (&durable_position, &feeder) {
                feeder.request_commit(position.clone());
                requested = durable_position.clone();
                last_commit = Instant::now();
            }
        }
    }
    if feeder.is_some() && ended {
        // Tell the process's other workers: their input ends too.
        wakers.end();
    }
    let source = feeder.and_then(Feeder::stop);
    if let Some(e) = source_error {
        return Err(Error::Source { worker: index, source: e });
    }
    if failure.failed() {
        // The failed epoch is held back and never completes: stop without committing it (or
        // anything after it).
        return Ok(records_read);
    }
    drop(input);
    while !probe.done() && !failure.failed() {
        worker.step_or_park(Some(PARK));
    }
    // Everything fed is durable now: commit up to the last record fed (not the feeder's own
    // position, which may be ahead of what was fed).
    if let (true, false, Some(source), Some(position)) = (options.commit, failure.failed(), source, fed_position) {
        source.commit(&position).map_err(|source| Error::Source { worker: index, source })?;
        metrics.epoch_committed();
    }
    Ok(records_read)
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
