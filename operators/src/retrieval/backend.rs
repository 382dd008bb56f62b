//! Where a retriever's vectors live: a [`VectorStore`] turns each knowledge-base snapshot into
//! the [`VectorIndex`] its [`Retriever`] searches. [`ExactStore`] (the default) indexes the
//! snapshot in process; stores outside the process (the Qdrant index of the
//! `switchboard-connectors` crate) implement the same trait.
//!
//! [`VectorBackend`] is the store a [`ModelUnderstanding`](crate::understand::ModelUnderstanding)
//! builds its retrievers with (configuration key `vector_backend` of the topology).

use std::sync::Arc;

use super::index::{ExactIndex, VectorIndex};
use super::retriever::{Retriever, RetrieverConfig};
use super::snapshot::Snapshot;
use crate::Result;

/// Something that can hold the question vectors of snapshots and search them.
pub trait VectorStore: Send + Sync {
    /// The index over `snapshot`'s question vectors, ready to search: built, uploaded or
    /// attached as the store needs. Each call returns an index of its own, so that the index of
    /// an older snapshot keeps serving (its retriever) until it is dropped.
    fn index_snapshot(&self, snapshot: &Snapshot) -> Result<Arc<dyn VectorIndex>>;

    /// A short description for logs and `Debug` (`Exact`, `Qdrant("http://…")`).
    fn describe(&self) -> String;
}

/// The in-process store: an [`ExactIndex`] per snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactStore;

impl VectorStore for ExactStore {
    fn index_snapshot(&self, snapshot: &Snapshot) -> Result<Arc<dyn VectorIndex>> {
        Ok(Arc::new(ExactIndex::from_snapshot(snapshot)?))
    }

    fn describe(&self) -> String {
        "Exact".to_string()
    }
}

/// The vector store retrievers are built with: [`ExactStore`] unless another one is given.
/// Cheap to clone (clones share the store).
#[derive(Clone)]
pub struct VectorBackend {
    store: Arc<dyn VectorStore>,
}

impl VectorBackend {
    /// The in-process exact index (the default).
    pub fn exact() -> VectorBackend {
        VectorBackend::new(Arc::new(ExactStore))
    }

    /// Retrievers search `store`.
    pub fn new(store: Arc<dyn VectorStore>) -> VectorBackend {
        VectorBackend { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// A retriever over `snapshot` searching this backend's index of it.
    pub fn retriever(&self, snapshot: Snapshot, config: RetrieverConfig) -> Result<Retriever> {
        let index = self.store.index_snapshot(&snapshot)?;
        Ok(Retriever::with_index(snapshot, index, config))
    }
}

impl Default for VectorBackend {
    fn default() -> Self {
        VectorBackend::exact()
    }
}

impl std::fmt::Debug for VectorBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.store.describe())
    }
}
