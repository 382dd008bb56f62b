//! Why a Qdrant index could not be configured, connected, synced or searched.

use switchboard_operators::retrieval::VectorStoreError;

use super::names::MAX_PREFIX_LEN;

/// Why a Qdrant index could not be configured, connected or synced.
#[derive(Debug, thiserror::Error)]
pub enum QdrantError {
    /// The collection prefix is empty, too long or has characters other than ASCII letters,
    /// digits, `_` and `-`.
    #[error(
        "invalid Qdrant collection prefix `{0}` (1 to {MAX_PREFIX_LEN} ASCII letters, digits, `_` or `-`)"
    )]
    BadPrefix(String),
    /// The snapshot version cannot go into a collection name.
    #[error("invalid snapshot version `{0}` for a Qdrant collection name")]
    BadVersion(String),
    /// The URL is empty or the client refused it.
    #[error("invalid Qdrant URL `{url}`: {message}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// The client's runtime or helper thread could not be started.
    #[error("cannot start the Qdrant client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The helper thread running a request panicked.
    #[error("the Qdrant client thread panicked")]
    Panicked,
    /// A request to the server failed.
    #[error("Qdrant {operation}: {source}")]
    Request {
        /// What was being done (e.g. `upsert into kb_…_en`).
        operation: String,
        /// The client's error.
        #[source]
        source: Box<qdrant_client::QdrantError>,
    },
    /// An existing collection holds vectors of another width or distance than the snapshot's.
    #[error("Qdrant collection {collection}: {message}")]
    CollectionMismatch {
        /// The collection.
        collection: String,
        /// What differs.
        message: String,
    },
    /// The snapshot's vector blocks do not match its entries.
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

impl QdrantError {
    /// Wraps a client error of `operation`.
    pub(crate) fn request(
        operation: impl Into<String>,
    ) -> impl FnOnce(qdrant_client::QdrantError) -> Self {
        let operation = operation.into();
        move |source| QdrantError::Request {
            operation,
            source: Box::new(source),
        }
    }

    /// Whether trying again later may succeed: the server could not be reached, timed out, was
    /// overloaded or cancelled the request, or the client's runtime could not be started. A bad
    /// configuration, a mismatched collection or an inconsistent snapshot is not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            QdrantError::Request { source, .. } => client_error_is_transient(source),
            QdrantError::Runtime(_) => true,
            QdrantError::BadPrefix(_)
            | QdrantError::BadVersion(_)
            | QdrantError::BadUrl { .. }
            | QdrantError::Panicked
            | QdrantError::CollectionMismatch { .. }
            | QdrantError::Inconsistent(_) => false,
        }
    }
}

/// The gRPC codes qdrant-client itself reconnects on (it reports a connection that could not
/// be made as `Internal`), plus timeouts, overload and aborted requests.
fn client_error_is_transient(e: &qdrant_client::QdrantError) -> bool {
    use tonic::Code;
    match e {
        qdrant_client::QdrantError::ResponseError { status } => matches!(
            status.code(),
            Code::Internal
                | Code::Unavailable
                | Code::Cancelled
                | Code::Unknown
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
        ),
        qdrant_client::QdrantError::ResourceExhaustedError { .. } => true,
        qdrant_client::QdrantError::Io(_) => true,
        _ => false,
    }
}

/// A Qdrant failure as the operators' vector-store error (store `qdrant`).
impl From<QdrantError> for VectorStoreError {
    fn from(e: QdrantError) -> Self {
        VectorStoreError::new("qdrant", e.is_transient(), e)
    }
}

/// A Qdrant failure as the operators' error ([`switchboard_operators::Error::VectorStore`],
/// displayed `qdrant: …`).
impl From<QdrantError> for switchboard_operators::Error {
    fn from(e: QdrantError) -> Self {
        switchboard_operators::Error::VectorStore(e.into())
    }
}
