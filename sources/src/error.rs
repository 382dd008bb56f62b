//! The sources' error type.

/// Everything a source can fail with.
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
}

/// `Result` with the sources' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
