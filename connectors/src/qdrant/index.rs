//! The index itself: [`QdrantIndex`], a [`VectorIndex`] and a [`VectorStore`].

use std::sync::{Arc, PoisonError, RwLock};

use switchboard_operators::retrieval::snapshot::Snapshot;
use switchboard_operators::retrieval::{
    Filter, Hit, VectorBackend, VectorIndex, VectorStore, VectorStoreError,
};

use super::binding::{binding_of, Binding};
use super::connection::{qdrant_client_version, versions_compatible, Connection};
use super::error::QdrantError;
use super::naming::{collection_name, validate_prefix, validate_version};
use super::search::search;
use super::settings::QdrantSettings;
use super::sync::sync_collections;

/// A [`VectorIndex`] whose vectors live in Qdrant (see the module docs).
///
/// Cloning is cheap: clones share the connection and runtime, and each has its own snapshot
/// binding (a clone starts with the original's), so one connection can serve a retriever per
/// snapshot.
pub struct QdrantIndex {
    conn: Arc<Connection>,
    binding: RwLock<Option<Arc<Binding>>>,
}

impl Clone for QdrantIndex {
    fn clone(&self) -> Self {
        QdrantIndex {
            conn: Arc::clone(&self.conn),
            binding: RwLock::new(self.bound()),
        }
    }
}

impl std::fmt::Debug for QdrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bound = self.bound();
        f.debug_struct("QdrantIndex")
            .field("settings", &self.conn.settings)
            .field("version", &bound.as_ref().map(|b| b.version.as_str()))
            .field("vectors", &bound.as_ref().map_or(0, |b| b.len))
            .finish()
    }
}

impl QdrantIndex {
    /// Connects to the Qdrant server at `url` (gRPC, e.g. `http://127.0.0.1:6334`) and checks
    /// that it answers. Collections are named `{collection_prefix}_{version}_{locale-slug}`.
    pub fn connect(
        url: &str,
        api_key: Option<String>,
        collection_prefix: &str,
    ) -> Result<QdrantIndex, QdrantError> {
        let mut settings = QdrantSettings::new(url);
        settings.api_key = api_key;
        settings.collection_prefix = collection_prefix.to_owned();
        QdrantIndex::connect_with(settings)
    }

    /// Connects with `settings` and checks that the server answers (a health check; a server
    /// whose major version differs from the client's, or whose minor version is more than one
    /// apart, is logged as a warning).
    pub fn connect_with(settings: QdrantSettings) -> Result<QdrantIndex, QdrantError> {
        let index = QdrantIndex::connect_lazy(settings)?;
        let reply = index
            .conn
            .runtime
            .block_on(index.conn.client.health_check())?
            .map_err(QdrantError::request(format!(
                "health check of {}",
                index.conn.settings.url
            )))?;
        tracing::info!(
            url = %index.conn.settings.url,
            server_version = %reply.version,
            "connected to Qdrant"
        );
        if !versions_compatible(qdrant_client_version(), &reply.version) {
            tracing::warn!(
                server_version = %reply.version,
                client_version = qdrant_client_version(),
                "Qdrant server and client versions may be incompatible"
            );
        }
        Ok(index)
    }

    /// An index for `settings` without contacting the server: connections are made on first
    /// use, so an unreachable server shows up as failed syncs and searches.
    pub fn connect_lazy(settings: QdrantSettings) -> Result<QdrantIndex, QdrantError> {
        validate_prefix(&settings.collection_prefix)?;
        if settings.url.trim().is_empty() {
            return Err(QdrantError::BadUrl {
                url: settings.url.clone(),
                message: "empty".into(),
            });
        }
        Ok(QdrantIndex {
            conn: Arc::new(Connection::open(settings)?),
            binding: RwLock::new(None),
        })
    }

    /// An index from the environment (`QDRANT_URL`, `QDRANT_API_KEY`,
    /// `QDRANT_COLLECTION_PREFIX`), connected with [`QdrantIndex::connect_with`]; `Ok(None)`
    /// when `QDRANT_URL` is unset or blank.
    pub fn from_env() -> Result<Option<QdrantIndex>, QdrantError> {
        match QdrantSettings::from_env()? {
            Some(settings) => QdrantIndex::connect_with(settings).map(Some),
            None => Ok(None),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &QdrantSettings {
        &self.conn.settings
    }

    /// The version of the snapshot searched, if one is bound.
    pub fn version(&self) -> Option<String> {
        self.bound().map(|b| b.version.clone())
    }

    /// The collection names of `snapshot`, one per locale with vectors, in snapshot order.
    pub fn collections(&self, snapshot: &Snapshot) -> Vec<String> {
        snapshot
            .locales
            .iter()
            .map(|l| {
                collection_name(
                    &self.conn.settings.collection_prefix,
                    &snapshot.version,
                    l.locale,
                )
            })
            .collect()
    }

    /// Stores `snapshot` in Qdrant and makes searches use it.
    ///
    /// For each locale: creates the collection (cosine distance, the locale's width) unless it
    /// exists — an existing one must have the same width and distance — creates the keyword
    /// payload index on `intent`, and upserts every question vector (point id = row index,
    /// payload `{entry_index, question_index, intent, locale}`), waiting until Qdrant has
    /// applied each upsert. Safe to repeat and to run from several processes at once. On error
    /// the previously bound snapshot stays bound.
    pub fn sync_snapshot(&self, snapshot: &Snapshot) -> Result<(), QdrantError> {
        let binding = self.binding_of(snapshot)?;
        let conn = &self.conn;
        conn.runtime
            .block_on(sync_collections(&conn.client, snapshot, &binding))??;
        tracing::info!(
            version = %binding.version,
            vectors = binding.len,
            collections = ?binding.locales.values().map(|l| l.collection.as_str()).collect::<Vec<_>>(),
            "knowledge snapshot synced to Qdrant"
        );
        self.bind(binding);
        Ok(())
    }

    /// Makes searches use `snapshot`'s collections without writing to Qdrant (for processes
    /// where another one runs [`QdrantIndex::sync_snapshot`]). Checks the snapshot but does not
    /// contact the server: missing collections show up as failed searches.
    pub fn attach_snapshot(&self, snapshot: &Snapshot) -> Result<(), QdrantError> {
        let binding = self.binding_of(snapshot)?;
        self.bind(binding);
        Ok(())
    }

    /// Deletes `snapshot`'s collections (those that exist), e.g. an old version no replica
    /// serves any more. Returns how many were deleted. Does not change the bound snapshot.
    pub fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<usize, QdrantError> {
        validate_version(&snapshot.version)?;
        let names = self.collections(snapshot);
        let client = &self.conn.client;
        let deleted = self.conn.runtime.block_on(async {
            let mut deleted = 0;
            for name in &names {
                let exists = client
                    .collection_exists(name.as_str())
                    .await
                    .map_err(QdrantError::request(format!("check collection {name}")))?;
                if exists {
                    client
                        .delete_collection(name.as_str())
                        .await
                        .map_err(QdrantError::request(format!("delete collection {name}")))?;
                    deleted += 1;
                }
            }
            Ok::<usize, QdrantError>(deleted)
        })??;
        Ok(deleted)
    }

    fn bound(&self) -> Option<Arc<Binding>> {
        self.binding
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn bind(&self, binding: Binding) {
        *self.binding.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(binding));
    }

    /// Checks `snapshot` and describes its collections.
    fn binding_of(&self, snapshot: &Snapshot) -> Result<Binding, QdrantError> {
        binding_of(&self.conn.settings.collection_prefix, snapshot)
    }
}

impl VectorIndex for QdrantIndex {
    /// See [`VectorIndex::try_search`] and the module docs: a failed request (server down,
    /// timeout, missing collection) is an error; nothing bound, a zero, non-finite or
    /// wrongly sized query, or `k` = 0 give no hit.
    fn try_search(
        &self,
        query: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Hit>, VectorStoreError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let Some(binding) = self.bound() else {
            return Ok(Vec::new());
        };
        Ok(search(&self.conn, &binding, query, filter, k)?)
    }

    /// See [`VectorIndex::search`]; a failed request is logged and gives no hit.
    fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let Some(binding) = self.bound() else {
            return Vec::new();
        };
        match search(&self.conn, &binding, query, filter, k) {
            Ok(hits) => hits,
            Err(error) => {
                tracing::error!(
                    %error,
                    version = %binding.version,
                    locale = filter.locale.as_str(),
                    intent = filter.intent.as_deref().unwrap_or(""),
                    "Qdrant search failed; returning no hit"
                );
                Vec::new()
            }
        }
    }

    fn len(&self) -> usize {
        self.bound().map_or(0, |b| b.len)
    }
}

/// Each snapshot is synced ([`QdrantIndex::sync_snapshot`]) on a clone of the index: the clone
/// shares the connection and binds its own snapshot, so the retriever of the previous snapshot
/// keeps its collections until it is dropped.
impl VectorStore for QdrantIndex {
    fn index_snapshot(
        &self,
        snapshot: &Snapshot,
    ) -> switchboard_operators::Result<Arc<dyn VectorIndex>> {
        let index = self.clone();
        index.sync_snapshot(snapshot)?;
        Ok(Arc::new(index))
    }

    fn describe(&self) -> String {
        format!("Qdrant({:?})", self.conn.settings.url)
    }
}

/// `vector_backend: qdrant`: retrievers search this index (see [`VectorStore`]).
impl From<QdrantIndex> for VectorBackend {
    fn from(index: QdrantIndex) -> VectorBackend {
        VectorBackend::new(Arc::new(index))
    }
}
