//! The replay crate's error type.

/// Everything recording, backfilling and deterministic testing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker refused or is unreachable, or a recording could not be read or written.
    #[error(transparent)]
    Source(#[from] switchboard_sources::Error),
    /// The graph's run failed (a sink, a source, the workers).
    #[error(transparent)]
    Topology(#[from] switchboard_topology::Error),
    /// What was asked cannot be done as asked (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A file (a golden file, a recording) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the failure can pass by itself (a broker or ClickHouse that is briefly away).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Source(e) => e.is_transient(),
            Error::Topology(e) => e.is_transient(),
            Error::Io { .. } | Error::Usage(_) => false,
        }
    }
}

/// `Result` with the replay crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
