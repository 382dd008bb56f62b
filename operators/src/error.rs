//! The operators' error type.

use std::path::PathBuf;

/// Everything an operator can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model folder lacks a file or holds an unreadable one.
    #[error("model {dir}: {message}")]
    Model {
        /// The model folder.
        dir: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The tokenizer refused an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A knowledge-base file is unreadable or invalid.
    #[error("knowledge base: {0}")]
    Kb(#[from] crate::retrieval::KbError),
    /// A knowledge-base snapshot could not be built, saved or loaded.
    #[error("snapshot: {0}")]
    Snapshot(#[from] crate::retrieval::SnapshotError),
    /// A vector index could not be built.
    #[error("index: {0}")]
    Index(#[from] crate::retrieval::IndexError),
    /// The Qdrant vector index could not be configured, reached or synced.
    #[cfg(feature = "qdrant")]
    #[error("qdrant: {0}")]
    Qdrant(#[from] crate::retrieval::qdrant::QdrantError),
    /// An answer template could not be rendered.
    #[error("render: {0}")]
    Render(#[from] crate::render::RenderError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a data file (JSONL) is malformed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// Training or evaluation was asked for something it cannot do (no examples, a single
    /// label, bad options, …).
    #[error("training: {0}")]
    Training(String),
}

/// `Result` with the operators' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
