//! Why a snapshot could not be built, saved or loaded.

use std::path::{Path, PathBuf};

use switchboard_schemas::Locale;

/// Why a snapshot could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Entries of this locale exist but no encoder was given for it.
    #[error("no encoder for locale {}", .0.as_str())]
    NoEncoder(Locale),
    /// The encoder failed.
    #[error("embedding {} questions: {source}", locale.as_str())]
    Embed {
        /// The locale being embedded.
        locale: Locale,
        /// The encoder's error (a [`crate::Error`]).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The encoder returned the wrong number of vectors, a wrong width or non-finite values.
    #[error("encoder {encoder}: {message}")]
    BadEmbedding {
        /// The encoder's name.
        encoder: String,
        /// What was wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A snapshot file is malformed or inconsistent with the others.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The root has no `current` file.
    #[error("{}: no current snapshot", root.display())]
    NoCurrent {
        /// The snapshot root.
        root: PathBuf,
    },
    /// A version string that is not lower-case hex (refused as a folder name).
    #[error("invalid snapshot version `{0}`")]
    BadVersion(String),
}

/// Maps an I/O error on `path`.
pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A [`SnapshotError::Corrupt`] about `path`.
pub(super) fn corrupt(path: &Path, message: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}
