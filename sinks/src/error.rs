//! The sinks' error type.

/// Everything a sink can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ClickHouse refused a query or insert, or could not be reached.
    #[error("clickhouse at {url}: {source}")]
    ClickHouse {
        /// The server URL.
        url: String,
        /// The client error.
        source: ::clickhouse::error::Error,
    },
    /// Kafka refused a record, or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A value could not be encoded for writing.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why not.
        reason: String,
    },
    /// One failure shared by every epoch of a group insert (the same error, told to each).
    #[error("{0}")]
    Shared(std::sync::Arc<Error>),
    /// The writer that had the epoch's rows stopped before it could write them.
    #[error("the ClickHouse writer stopped")]
    WriterStopped,
}

impl Error {
    /// Whether the failure can pass by itself (an unreachable or overloaded server): worth
    /// retrying. A file that cannot be written or a value that cannot be encoded never will.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::ClickHouse { .. } | Error::Kafka(_) => true,
            Error::Shared(inner) => inner.is_transient(),
            Error::Io { .. } | Error::Encode { .. } | Error::WriterStopped => false,
        }
    }
}

/// `Result` with the sinks' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
