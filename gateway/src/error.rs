//! The gateway's error type.

use crate::config::ConfigError;

/// Why the gateway could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Kafka client could not be created or the broker refused a setup request.
    #[error("kafka {what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// A topic the gateway needs does not exist or has no partitions.
    #[error("topic {topic} is missing or has no partitions (run deploy/dev/up.sh or create it)")]
    MissingTopic {
        /// The topic.
        topic: String,
    },
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(#[source] std::io::Error),
}

/// Short for `Result<T, gateway::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
