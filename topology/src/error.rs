//! The topology's error type: what can stop a run.

/// Everything a run of the graph can fail with. The runner, not an operator, decides to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sink could not make an epoch durable (after its retries): the epoch was not released,
    /// so its offsets were not committed and a restart redoes it.
    #[error("sink failed: {0}")]
    Sink(#[from] switchboard_sinks::Error),
    /// ClickHouse did not answer at the start of a run.
    #[error("ClickHouse is not reachable (deploy/dev/up.sh starts it): {0}")]
    ClickHouseUnreachable(#[source] switchboard_sinks::Error),
    /// A source could not be opened or read, or offsets could not be committed.
    #[error("worker {worker}: {source}")]
    Source {
        /// The worker (global index).
        worker: usize,
        /// What the source reported.
        source: switchboard_sources::Error,
    },
    /// The timely workers could not be started (e.g. a cluster address that does not bind).
    #[error("cannot start workers: {0}")]
    Start(String),
    /// A worker thread panicked.
    #[error("worker failed: {0}")]
    WorkerPanicked(String),
}

impl Error {
    /// Whether the failure can pass by itself, so that a restart (or a retry) can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Sink(e) | Error::ClickHouseUnreachable(e) => e.is_transient(),
            Error::Source { source, .. } => source.is_transient(),
            Error::Start(_) | Error::WorkerPanicked(_) => false,
        }
    }
}

/// `Result` with the topology's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
