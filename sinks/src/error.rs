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
}

/// `Result` with the sinks' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
