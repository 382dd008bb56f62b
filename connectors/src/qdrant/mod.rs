//! A [`VectorIndex`] backed by a [Qdrant](https://qdrant.tech) server, and the
//! [`VectorStore`] that syncs each knowledge-base snapshot to it.
//!
//! [`QdrantIndex`] keeps the question vectors of a [`Snapshot`] in Qdrant: one collection per
//! (snapshot version, locale), named `{prefix}_{version}_{locale-slug}`
//! ([`collection_name`], e.g. `switchboard_kb_3f2a…_zh-cn`), with cosine distance and the
//! locale's vector width. Point `i` of a collection is row `i` of the locale's vectors
//! ([`point_id`]), with the payload `{entry_index, question_index, intent, locale}` and a
//! keyword payload index on `intent`. Since the version is a content hash, a collection's
//! content never changes: syncing the same snapshot again (from another replica, or after a
//! restart) rewrites the same points.
//!
//! # Contract
//!
//! Searches follow the [`VectorIndex`] contract of [`ExactIndex`]: one hit
//! per entry (its best question), best first, ties broken by entry index then question index,
//! and the score is `dot(query, unit question vector)` (Qdrant's cosine times the query's
//! norm, so unit queries get the plain cosine). Qdrant is asked for questions, not entries:
//! [`QdrantIndex`] fetches `k × (most questions of one entry)` questions and asks for more when
//! a score tie at the boundary could change the answer ([`ranking_is_final`]), then ranks them
//! locally ([`rank_entries`]). Results equal those of `ExactIndex` when Qdrant searches exactly:
//! always with [`QdrantSettings::exact`] set, and in practice for small collections (Qdrant
//! scans segments below its indexing threshold, 10 000 vectors by default, without HNSW).
//! A zero query vector returns nothing (its cosine is undefined).
//!
//! [`VectorIndex::try_search`] is synchronous: the index owns a small Tokio runtime (one worker
//! thread) that runs the gRPC client. Called from inside another Tokio runtime, a search blocks
//! on a short-lived helper thread instead, so it never panics there; it still blocks the calling
//! thread, like any [`VectorIndex`]. A failed search (server down, timeout, missing collection)
//! is an error of [`VectorIndex::try_search`] ([`QdrantError::is_transient`] tells whether it may
//! pass); [`VectorIndex::search`] logs it with `tracing` and returns no hit, and so does the
//! [`Retriever`]'s `retrieve`: the retriever then finds nothing and the bot asks the user to
//! clarify.
//!
//! # Selecting it
//!
//! The topology picks the vector backend from its configuration key `vector_backend`:
//! `exact` (the default) is [`VectorBackend::exact`], an in-process [`ExactIndex`] per snapshot;
//! `qdrant` calls [`QdrantIndex::from_env`] once at start-up (failing start-up when it returns
//! `Ok(None)`, i.e. `QDRANT_URL` is unset, or an error) and makes it the backend
//! ([`VectorBackend::from`]); for each snapshot it serves (the first one and every one a
//! [`SnapshotWatcher`](switchboard_operators::retrieval::SnapshotWatcher) reports), the backend
//! syncs the snapshot to Qdrant on a clone of the index ([`QdrantIndex::sync_snapshot`]) and
//! builds a [`Retriever`] over it. By hand:
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard_connectors::qdrant::QdrantIndex;
//! use switchboard_operators::retrieval::{Retriever, RetrieverConfig, Snapshot};
//!
//! # fn serve(snapshot: Snapshot) -> Result<(), Box<dyn std::error::Error>> {
//! let qdrant = QdrantIndex::from_env()?.expect("vector_backend: qdrant needs QDRANT_URL");
//! // A clone shares the connection but has its own snapshot binding, so the retriever of
//! // the previous snapshot keeps searching its own collections until it is dropped.
//! let index = qdrant.clone();
//! index.sync_snapshot(&snapshot)?; // or attach_snapshot where another process syncs
//! let retriever = Retriever::with_index(snapshot, Arc::new(index), RetrieverConfig::default());
//! # Ok(()) }
//! ```
//!
//! Environment ([`QdrantSettings::from_env`]):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `QDRANT_URL` | gRPC endpoint, e.g. `http://127.0.0.1:6334`; unset or empty: no Qdrant |
//! | `QDRANT_API_KEY` | API key, optional |
//! | `QDRANT_COLLECTION_PREFIX` | collection name prefix, default `switchboard_kb` |
//!
//! [`ExactIndex`]: switchboard_operators::retrieval::ExactIndex
//! [`Retriever`]: switchboard_operators::retrieval::Retriever
//! [`Snapshot`]: switchboard_operators::retrieval::Snapshot
//! [`VectorBackend::exact`]: switchboard_operators::retrieval::VectorBackend::exact
//! [`VectorBackend::from`]: switchboard_operators::retrieval::VectorBackend
//! [`VectorIndex`]: switchboard_operators::retrieval::VectorIndex
//! [`VectorIndex::search`]: switchboard_operators::retrieval::VectorIndex::search
//! [`VectorIndex::try_search`]: switchboard_operators::retrieval::VectorIndex::try_search
//! [`VectorStore`]: switchboard_operators::retrieval::VectorStore

mod binding;
mod connection;
mod error;
mod index;
mod names;
mod naming;
mod ranking;
mod search;
mod settings;
mod sync;

pub use error::QdrantError;
pub use index::QdrantIndex;
pub use names::{
    DEFAULT_COLLECTION_PREFIX, DEFAULT_TIMEOUT, ENV_API_KEY, ENV_COLLECTION_PREFIX, ENV_URL,
    FIELD_ENTRY_INDEX, FIELD_INTENT, FIELD_LOCALE, FIELD_QUESTION_INDEX,
};
pub use naming::{
    collection_name, locale_slug, point_id, question_of_point, validate_prefix, validate_version,
};
pub use ranking::{fetch_limit, rank_entries, ranking_is_final};
pub use settings::QdrantSettings;
