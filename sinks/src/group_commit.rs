//! ClickHouse group commit: the rows of every epoch in flight (events, then session
//! snapshots) coalesced into few large inserts, at most one per table every
//! [`GroupCommitConfig::interval`], as ClickHouse advises (many small inserts make many parts
//! and, under load, "too many parts"). One writer task per process serves every worker.
//!
//! Each epoch waits for the insert that carries its rows; within one insert cycle the events
//! go in before the session snapshots, so a saved state never runs ahead of its events.

use crate::clickhouse::{ClickHouseSink, SessionRow};
use crate::retry::retry;
use crate::sink::FlushObserver;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use switchboard_schemas::Event;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How often and how large the group inserts are.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Longest an epoch's rows wait for their insert to start (and the shortest gap between
    /// two inserts into a table under load).
    pub interval: Duration,
    /// An insert starts early once this many rows are waiting.
    pub max_rows: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig { interval: Duration::from_millis(200), max_rows: 200_000 }
    }
}

struct Job {
    events: Vec<Event>,
    sessions: Vec<SessionRow>,
    done: oneshot::Sender<Result<()>>,
}

/// The handle workers write through; the writer task stops when every handle is gone.
#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        clickhouse: Arc<ClickHouseSink>,
        config: GroupCommitConfig,
        observer: Option<Arc<dyn FlushObserver>>,
    ) -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        runtime.spawn(writer(receiver, clickhouse, config, observer));
        GroupCommit { jobs }
    }

    /// Writes `events` and then `sessions` with the next group insert; returns once ClickHouse
    /// has acknowledged both (transient failures are retried inside).
    pub async fn write(&self, events: Vec<Event>, sessions: Vec<SessionRow>) -> Result<()> {
        if events.is_empty() && sessions.is_empty() {
            return Ok(());
        }
        let (done, outcome) = oneshot::channel();
        self.jobs.send(Job { events, sessions, done }).map_err(|_| Error::WriterStopped)?;
        outcome.await.map_err(|_| Error::WriterStopped)?
    }
}

async fn writer(
    mut receiver: mpsc::UnboundedReceiver<Job>,
    clickhouse: Arc<ClickHouseSink>,
    config: GroupCommitConfig,
    observer: Option<Arc<dyn FlushObserver>>,
) {
    let mut last_insert: Option<Instant> = None;
    while let Some(first) = receiver.recv().await {
        // Gather for one interval from the first waiting epoch (less if the last insert was
        // long ago and nothing else is waiting: a lone turn on an idle system is not held up
        // longer than needed), or until enough rows wait.
        let deadline = match last_insert {
            Some(at) if at.elapsed() < config.interval => at + config.interval,
            _ => Instant::now() + config.interval.min(Duration::from_millis(20)),
        };
        let mut rows = first.events.len() + first.sessions.len();
        let mut jobs = vec![first];
        while rows < config.max_rows {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(job)) => {
                    rows += job.events.len() + job.sessions.len();
                    jobs.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let mut events = Vec::new();
        let mut sessions = Vec::new();
        let mut waiting = Vec::with_capacity(jobs.len());
        for job in jobs {
            events.extend(job.events);
            sessions.extend(job.sessions);
            waiting.push(job.done);
        }
        last_insert = Some(Instant::now());
        let result = insert(&clickhouse, &events, &sessions, observer.as_deref()).await;
        let shared = result.err().map(Arc::new);
        for done in waiting {
            // An epoch whose worker stopped no longer waits; nothing to tell it.
            let _ = done.send(match &shared {
                None => Ok(()),
                Some(e) => Err(Error::Shared(e.clone())),
            });
        }
    }
}

async fn insert(clickhouse: &ClickHouseSink, events: &[Event], sessions: &[SessionRow], observer: Option<&dyn FlushObserver>) -> Result<()> {
    if !events.is_empty() {
        let started = std::time::Instant::now();
        retry("inserting events", || clickhouse.write(events)).await?;
        if let Some(observer) = observer {
            observer.inserted("events", events.len(), started.elapsed());
        }
    }
    if !sessions.is_empty() {
        let started = std::time::Instant::now();
        retry("saving sessions", || clickhouse.write_sessions(sessions)).await?;
        if let Some(observer) = observer {
            observer.inserted("sessions", sessions.len(), started.elapsed());
        }
    }
    Ok(())
}
