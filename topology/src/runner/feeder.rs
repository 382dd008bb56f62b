//! The feeder: one thread per process that owns the process's Kafka consumer, long-polls it,
//! and hands batches to the process's first worker through a channel. The worker never blocks
//! in the consumer, so it keeps stepping the dataflow (finishing epochs, releasing durable ones)
//! while the feeder waits at the broker; a delivered batch wakes every worker of the process, so
//! the others advance their inputs at once and the epoch is not held up by their idle tick.
//!
//! Offsets are committed by the feeder, on the worker's request, for epochs the worker has
//! seen become durable. Backpressure: while the worker has too much in flight it pauses the
//! feeder, which then stops polling (the broker keeps the records).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};
use crate::metrics::Metrics;
use switchboard_schemas::SourceRecord;
use switchboard_sources::kafka::KafkaSource;

/// Next offset per partition.
pub(crate) type Position = BTreeMap<i32, i64>;

/// What the feeder hands over.
pub(crate) enum Fed {
    /// Records, and the position after them.
    Batch(Vec<SourceRecord>, Position),
    /// A bounded source read everything up to its end.
    End,
    /// The source failed for good.
    Failed(switchboard_sources::Error),
}

/// The workers of one process, woken together when any feeder delivers.
#[derive(Default)]
pub(crate) struct Wakers {
    threads: Mutex<Vec<Thread>>,
    generation: AtomicU64,
    ended: AtomicBool,
}

impl Wakers {
    /// Registers the calling thread (a worker).
    pub(crate) fn register(&self) {
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).push(std::thread::current());
    }

    /// Increments the generation and unparks every worker.
    fn wake_all(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        for thread in self.threads.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            thread.unpark();
        }
    }

    /// Marks the process's input as ended (a bounded range read to its end) and wakes every
    /// worker.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Whether the process's input ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Changes whenever some feeder delivered: a worker that sees a new generation advances
    /// its input even with nothing to feed, so that its peers' epochs can complete.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

struct Control {
    stop: AtomicBool,
    paused: AtomicBool,
    commit: Mutex<Option<Position>>,
}

/// A worker's handle on its feeder thread.
pub(crate) struct Feeder {
    batches: Receiver<Fed>,
    control: Arc<Control>,
    thread: Option<JoinHandle<KafkaSource>>,
}

impl Feeder {
    /// Starts the feeder thread for `source`.
    pub(crate) fn spawn(
        mut source: KafkaSource,
        worker: usize,
        batch_max: usize,
        poll_wait: Duration,
        wakers: Arc<Wakers>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (sender, batches) = sync_channel(4);
        let control = Arc::new(Control { stop: AtomicBool::new(false), paused: AtomicBool::new(false), commit: Mutex::new(None)});
        let ctl = control.clone();
        let thread = std::thread::Builder::new().name(format!("feeder-{worker}")).spawn(move || {
            let mut last_lag = Instant::now() - Duration::from_secs(60);
            let mut ended = false;
            while !ctl.stop.load(Ordering::Acquire) {
                if let Some(position) = ctl.commit.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    // A failed commit loses nothing: the outputs are durable and a later commit
                    // covers them; at worst a restart redoes a few epochs (same event ids).
                    match source.commit(&position) {
                        Ok(()) => metrics.epoch_committed(),
                        Err(e) => tracing::warn!(worker, error = %e, "offset commit failed; retrying later"),
                    }
                }
                if last_lag.elapsed() >= Duration::from_secs(5) {
                    if let Ok(lag) = source.lag() {
                        metrics.set_lag(lag);
                    }
                    last_lag = Instant::now();
                }
                if ended || ctl.paused.load(Ordering::Acquire) {
                    std::thread::park_timeout(Duration::from_millis(50));
                    continue;
                }
                if source.finished() {
                    ended = true;
                    if sender.send(Fed::End).is_err() {
                        break;
                    }
                    wakers.wake_all();
                    continue;
                }
                match source.poll_batch(batch_max, poll_wait) {
                    Ok(batch) if batch.is_empty() => {}
                    Ok(batch) => {
                        let position = source.position().clone();
                        if sender.send(Fed::Batch(batch, position)).is_err() {
                            break;
                        }
                        wakers.wake_all();
                    }
                    Err(e) => {
                        let _ = sender.send(Fed::Failed(e));
                        wakers.wake_all();
                        ended = true;
                    }
                }
            }
            source
        })?;
        Ok(Feeder { batches, control, thread: Some(thread) })
    }

    /// The next delivery, if one is waiting.
    pub(crate) fn try_next(&self) -> Option<Fed> {
        match self.batches.try_recv() {
            Ok(fed) => Some(fed),
            Err(TryRecvError::Empty) => None,
            // The feeder thread is gone (it panicked): nothing more will come.
            Err(TryRecvError::Disconnected) => Some(Fed::End),
        }
    }

    /// Pauses (or resumes) polling.
    pub(crate) fn set_paused(&self, paused: bool) {
        let was = self.control.paused.swap(paused, Ordering::AcqRel);
        if was && !paused {
            if let Some(thread) = &self.thread {
                thread.thread().unpark();
            }
        }
    }

    /// Asks the feeder to commit `position` (replacing an earlier request not yet done).
    pub(crate) fn request_commit(&self, position: Position) {
        *self.control.commit.lock().unwrap_or_else(|p| p.into_inner()) = Some(position);
    }

    /// Stops the feeder and gives the source back (for the final commit on the worker).
    pub(crate) fn stop(mut self) -> Option<KafkaSource> {
        self.control.stop.store(true, Ordering::Release);
        let thread = self.thread.take()?;
        thread.thread().unpark();
        // A feeder blocked on a full channel wakes when the receiver goes.
        drop(self.batches);
        thread.join().ok()
    }
}
