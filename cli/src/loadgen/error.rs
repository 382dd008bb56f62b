//! Why a load run could not be done.

/// Why a load run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An option is out of range.
    #[error("invalid {option}: {reason}")]
    Invalid {
        /// The option.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Not a single connection could be opened.
    #[error("no connection to {url} could be opened ({attempted} tried): {first_error}")]
    NoConnections {
        /// The URL.
        url: String,
        /// Connections tried.
        attempted: usize,
        /// The first failure.
        first_error: String,
    },
}

/// Short for `Result<T, LoadError>`.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;
