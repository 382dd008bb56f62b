//! The gateway's error type: the one [`Error`] of the crate and its [`Result`] alias.
//!
//! The narrower errors of the configuration ([`ConfigError`]), the console's API
//! ([`ConsoleError`], which also knows its HTTP status) and the protocol ([`FrameError`], which
//! knows its error frame) are variants of it and convert with `?`; their messages are unchanged.

use crate::config::ConfigError;
use crate::console::ConsoleError;
use crate::protocol::FrameError;

/// Why the gateway could not start or stopped with a failure, or why one request was refused.
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
    /// A console API request failed (the console answers it as JSON with the error's status).
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// A client frame was refused (the client gets the error frame; the connection goes on).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An account could not be added or the users file is not valid.
    #[error("{0}")]
    Account(String),
    /// The users file could not be read or written.
    #[error("users file {path}: {source}")]
    UsersFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Short for `Result<T, gateway::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
