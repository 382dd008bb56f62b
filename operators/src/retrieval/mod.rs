//! Knowledge retrieval: pick the knowledge-base entry that answers a user's turn.
//!
//! * [`kb`]: knowledge-base files (JSON Lines / YAML), parsing and validation.
//! * [`snapshot`]: entries plus question embeddings, content-versioned, saved and loaded
//!   without re-embedding, with an atomically swapped `current` pointer.
//! * [`index`]: the [`VectorIndex`] trait and the exact in-process [`ExactIndex`].
//! * [`VectorStore`] / [`VectorBackend`]: which index a snapshot is searched with (the
//!   in-process [`ExactStore`] by default; a remote store such as Qdrant comes from the
//!   `switchboard-connectors` crate).
//! * [`lexical`]: character n-gram TF-IDF similarity.
//! * [`Retriever`]: combines both: `score = w · cosine + (1 − w) · lexical`.
//!
//! ```no_run
//! use switchboard_operators::intent::{resolve_model_dir, Encoder};
//! use switchboard_operators::retrieval::{kb, Retriever, RetrieverConfig, Snapshot};
//! use switchboard_schemas::Locale;
//!
//! let zh = Encoder::load(&resolve_model_dir("m3e-small"))?;
//! let entries = kb::parse_kb_file("operators/data/kb/kb.zh.jsonl")?;
//! let snapshot = Snapshot::build(entries, |l| (l == Locale::ZhCn).then_some(&zh))?;
//! let retriever = Retriever::new(snapshot, RetrieverConfig::default())?;
//! let text = "我买的东西想退掉";
//! let query = zh.embed_one(text)?;
//! if let Some(hit) = retriever.retrieve(Locale::ZhCn, Some("return_goods"), text, &query) {
//!     println!("{} {:.3}", hit.entry.id, hit.score);
//! }
//! # Ok::<(), switchboard_operators::Error>(())
//! ```

mod backend;
pub mod index;
pub mod kb;
pub mod lexical;
mod retriever;
mod sha256;
pub mod snapshot;

pub use backend::{ExactStore, VectorBackend, VectorStore};
pub use index::{
    ExactIndex, ExactIndexBuilder, Filter, Hit, IndexError, VectorIndex, VectorStoreError,
};
pub use kb::{parse_kb_file, KbEntry, KbError};
pub use lexical::LexicalIndex;
pub use retriever::{Retrieved, Retriever, RetrieverConfig, Thresholds};
pub use snapshot::{Embedder, Snapshot, SnapshotError, SnapshotWatcher};
