//! The operators' error type: one [`Error`] for the whole crate, and [`Result`].
//!
//! Errors of a part that does not depend on this type keep their own type and convert into
//! [`Error`] (`#[from]`): [`KbError`], [`SnapshotError`], [`IndexError`], [`VectorStoreError`],
//! [`RenderError`]. The errors of intent inference (formerly `BackendError`) are variants of
//! [`Error`] itself.
//!
//! [`Error::is_transient`] tells a failure that may pass when tried again (a model server or
//! vector store that cannot be reached, a version still loading, an I/O timeout) from one that
//! will not (bad input, bad model files, a bad configuration).

use std::path::PathBuf;

use crate::render::templates::RenderError;
use crate::retrieval::index::{IndexError, VectorStoreError};
use crate::retrieval::kb::KbError;
use crate::retrieval::snapshot::SnapshotError;

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
    Kb(#[from] KbError),
    /// A knowledge-base snapshot could not be built, saved or loaded.
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The active snapshot of a knowledge-base root could not be loaded.
    #[error("knowledge base at {}: {source} (load one with `switchboard kb load FILE`)", root.display())]
    KnowledgeBase {
        /// The snapshot root.
        root: PathBuf,
        /// Why its snapshot could not be loaded.
        #[source]
        source: SnapshotError,
    },
    /// A vector index could not be built.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// A vector store (e.g. Qdrant) could not be configured, reached, synced or searched.
    #[error("{0}")]
    VectorStore(#[from] VectorStoreError),
    /// An answer template could not be rendered.
    #[error("render: {0}")]
    Render(#[from] RenderError),
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
    /// No intent model is configured (or served) for the locale.
    #[error("no intent model configured for locale {0}")]
    NoModel(&'static str),
    /// A remote intent backend (a model server) could not be reached or refused the request.
    #[error("intent backend unavailable: {0}")]
    Unavailable(String),
    /// A remote intent backend answered something malformed (wrong count, empty version, …).
    #[error("intent backend answered badly: {0}")]
    BadAnswer(String),
    /// The asked-for intent model version is not (or not yet, or no longer) loaded.
    #[error("intent model version {version} for {locale} is not loaded")]
    VersionGone {
        /// The locale.
        locale: &'static str,
        /// The version asked for.
        version: String,
    },
    /// The asked-for knowledge-base snapshot is not (or no longer) loaded.
    #[error("knowledge-base snapshot {0} is no longer loaded")]
    SnapshotGone(String),
    /// No knowledge-base snapshot is loaded yet.
    #[error("no knowledge-base snapshot loaded")]
    NoSnapshot,
    /// A lock was poisoned by a panic elsewhere; names what the lock guards.
    #[error("{0} lock poisoned")]
    Poisoned(&'static str),
}

/// `Result` with the operators' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether trying again later may succeed: true for a model server or vector store that
    /// cannot be reached (or answers too late), a model version or knowledge-base snapshot not
    /// loaded (yet), and I/O that timed out or was interrupted; false for bad input, bad model
    /// or knowledge-base files, bad configuration and bugs.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable(_)
            | Error::VersionGone { .. }
            | Error::SnapshotGone(_)
            | Error::NoSnapshot => true,
            Error::VectorStore(e) => e.is_transient(),
            Error::Io { source, .. } => io_is_transient(source),
            Error::Kb(KbError::Io { source, .. }) => io_is_transient(source),
            Error::Snapshot(e) | Error::KnowledgeBase { source: e, .. } => snapshot_is_transient(e),
            Error::Model { .. }
            | Error::Tokenizer(_)
            | Error::Tensor(_)
            | Error::Kb(_)
            | Error::Index(_)
            | Error::Render(_)
            | Error::Data { .. }
            | Error::Training(_)
            | Error::NoModel(_)
            | Error::BadAnswer(_)
            | Error::Poisoned(_) => false,
        }
    }
}

/// I/O errors that may pass: timeouts, interruptions and dropped connections.
fn io_is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
    )
}

fn snapshot_is_transient(e: &SnapshotError) -> bool {
    match e {
        SnapshotError::Io { source, .. } => io_is_transient(source),
        SnapshotError::Embed { source, .. } => source
            .downcast_ref::<Error>()
            .is_some_and(Error::is_transient),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_or_not() {
        assert!(Error::Unavailable("connection refused".into()).is_transient());
        assert!(Error::VersionGone {
            locale: "en",
            version: "abc".into()
        }
        .is_transient());
        assert!(Error::SnapshotGone("ff".into()).is_transient());
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow disk");
        assert!(Error::Io {
            path: "x".into(),
            source: timeout
        }
        .is_transient());
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert!(!Error::Io {
            path: "x".into(),
            source: missing
        }
        .is_transient());
        let store = |transient| VectorStoreError::new("qdrant", transient, "down");
        assert!(Error::from(store(true)).is_transient());
        assert!(!Error::from(store(false)).is_transient());
        assert_eq!(Error::from(store(true)).to_string(), "qdrant: down");
        assert!(!Error::Model {
            dir: "m".into(),
            message: "no head".into()
        }
        .is_transient());
        assert!(!Error::NoModel("en").is_transient());
        assert!(!Error::Training("no examples".into()).is_transient());
        let embed = SnapshotError::Embed {
            locale: switchboard_schemas::Locale::En,
            source: Box::new(Error::Unavailable("model server".into())),
        };
        assert!(Error::from(embed).is_transient());
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
