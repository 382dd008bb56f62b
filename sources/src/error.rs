//! The sources' error type.

/// Everything a source can fail with, the start-up access check (`access::check`) included.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker refused a request or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The topic does not exist on the broker.
    #[error("topic {0} does not exist (deploy/dev/up.sh creates the contract's topics)")]
    MissingTopic(String),
    /// Creating a topic failed.
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// Deleting a topic failed.
    #[error("cannot delete topic {topic}: {reason}")]
    DeleteTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },

    /// The broker refused the SASL credentials (wrong password or unknown user).
    #[error("Kafka authentication failed for user {user} at {brokers}: {reason}")]
    Authentication {
        /// The configured user name.
        user: String,
        /// The bootstrap brokers.
        brokers: String,
        /// What the client reported.
        reason: String,
    },
    /// No answer in time; without credentials this is also how a broker that requires SASL
    /// refuses a client (it drops the connection).
    #[error("Kafka at {brokers} did not answer within {waited_ms} ms{hint}: {reason}")]
    Unreachable {
        /// The bootstrap brokers.
        brokers: String,
        /// How long the check waited.
        waited_ms: u128,
        /// A hint at the likely cause.
        hint: &'static str,
        /// The last error the client reported.
        reason: String,
    },
    /// The broker accepted the connection and closed it before answering, again and again: how
    /// nisshi with `--authentication` refuses a client without credentials (and a TLS-only
    /// listener a plaintext client).
    #[error("Kafka at {brokers} closed the connection before answering{hint}: {reason}")]
    Refused {
        /// The bootstrap brokers.
        brokers: String,
        /// A hint at the likely cause.
        hint: &'static str,
        /// What the client reported.
        reason: String,
    },
    /// The client could not be created (a bad setting, e.g. an unreadable CA file).
    #[error("Kafka client for {brokers} cannot be created: {reason}")]
    Client {
        /// The bootstrap brokers.
        brokers: String,
        /// The client's error, as text (the line is complete without a source chain).
        reason: String,
    },
    /// A setting from the environment is not usable.
    #[error("{name}: {reason}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    // Recordings.

    /// A recording file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A recording line is not a valid record.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// Whether the failure can pass by itself (a broker that is restarting or briefly
    /// unreachable): worth retrying. Refused credentials, a missing topic or a bad client
    /// setting never will.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Kafka(_) | Error::Unreachable { .. })
    }
}

/// `Result` with the sources' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
