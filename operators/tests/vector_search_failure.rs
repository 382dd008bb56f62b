//! A failed vector search fails the understanding of the batch with a transient error (which the
//! topology retries with backoff) instead of finding nothing and answering with a clarifying
//! question; once the store answers again the same batch is understood with its retrieved entry.
//!
//! Needs the demo Chinese model and knowledge base (`deploy/dev/prepare.sh`) and the m3e-small
//! encoder (`SWITCHBOARD_MODELS`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_operators::retrieval::{
    ExactStore, Filter, Hit, RetrieverConfig, Snapshot, VectorBackend, VectorIndex, VectorStore,
    VectorStoreError,
};
use switchboard_operators::understand::{ModelUnderstanding, Understand, UnderstandingConfig};
use switchboard_schemas::Locale;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn state_dir() -> PathBuf {
    std::env::var("SWITCHBOARD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".switchboard"))
}

/// An exact index that fails every search while `down` is set, like a remote store that went away.
struct Flaky {
    inner: Arc<dyn VectorIndex>,
    down: Arc<AtomicBool>,
}

impl VectorIndex for Flaky {
    fn try_search(&self, query: &[f32], filter: &Filter, k: usize) -> Result<Vec<Hit>, VectorStoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(VectorStoreError::new("flaky", true, "connection refused"));
        }
        self.inner.try_search(query, filter, k)
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

struct FlakyStore {
    down: Arc<AtomicBool>,
}

impl VectorStore for FlakyStore {
    fn index_snapshot(&self, snapshot: &Snapshot) -> switchboard_operators::Result<Arc<dyn VectorIndex>> {
        Ok(Arc::new(Flaky { inner: ExactStore.index_snapshot(snapshot)?, down: self.down.clone() }))
    }

    fn describe(&self) -> String {
        "Flaky".to_string()
    }
}

#[test]
fn a_failed_vector_search_is_a_transient_error_not_an_empty_result() {
    if std::env::var_os("SWITCHBOARD_MODELS").is_none() {
        std::env::set_var("SWITCHBOARD_MODELS", workspace().join("models"));
    }
    let down = Arc::new(AtomicBool::new(true));
    let understanding = ModelUnderstanding::load(UnderstandingConfig {
        intent_models: [(Locale::ZhCn, state_dir().join("intent/zh"))].into_iter().collect(),
        knowledge_base: state_dir().join("kb"),
        retrieval: RetrieverConfig::default(),
        cache_capacity: 0,
        reload_every: Duration::from_secs(3600),
        vector_backend: VectorBackend::new(Arc::new(FlakyStore { down: down.clone() })),
    })
    .expect("understanding loads (deploy/dev/prepare.sh makes the model and knowledge base)");
    let versions = understanding.available_versions();
    let batch = [(Locale::ZhCn, "我要退货，运费谁出？")];

    let error = understanding.understand(&batch, &versions).expect_err("the search failed");
    assert!(error.is_transient(), "a store that went away may come back: {error}");
    assert!(error.to_string().contains("connection refused"), "{error}");

    down.store(false, Ordering::SeqCst);
    let understood = understanding.understand(&batch, &versions).expect("the store is back");
    let retrieved = understood[0].retrieved.as_ref().expect("the demo knowledge base answers a return question");
    assert!(!retrieved.entry_id.is_empty());
}
