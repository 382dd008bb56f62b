//! Understanding a batch of turns: the intent classifier and the knowledge retrieval behind
//! one interface, so the graph can batch a whole epoch and tests can use a small double.
//!
//! [`ModelUnderstanding`] is the real one: an [`IntentBackend`] (in process, per locale an
//! `IntentModel`: [`LocalIntentBackend`]; or a model server over gRPC) and one shared
//! [`Retriever`]. Each batch is embedded once per locale (the same vectors feed the classifier
//! head and the vector search), results are cached by normalised text ([`crate::intent::normalize_text`], as in training) and
//! versions in an LRU, and new model versions or knowledge-base snapshots are loaded without a
//! restart.
//!
//! Which versions a batch uses is not decided here but by the caller: [`Understand::available_versions`]
//! reports what is loaded (the topology turns it into a differential collection of versions that
//! it joins with the turns), and [`Understand::understand`] takes the versions to use. The last
//! few versions of each component stay loaded so that a batch pinned to an older version while a
//! newer one arrives is still understood by exactly the version it names.

use crate::intent::backend::{IntentBackend, LocalIntentBackend};
use crate::retrieval::{Retriever, RetrieverConfig, Snapshot, SnapshotWatcher};
use crate::session::RetrievedAnswer;
use crate::{Error, Result};
use lru::LruCache;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use switchboard_schemas::Locale;

/// What was understood of one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    /// Winning intent label.
    pub intent: String,
    /// Calibrated confidence.
    pub confidence: f32,
    /// The classifier version that decided.
    pub model_version: String,
    /// The knowledge-base answer, if one passed the retrieval threshold.
    pub retrieved: Option<RetrievedAnswer>,
    /// The knowledge-base snapshot searched.
    pub kb_version: String,
}

/// Component name → version: `intent/zh-CN`, `intent/en` (classifier versions) and `kb` (the
/// knowledge-base snapshot). See [`model_component`] and [`KB_COMPONENT`].
pub type Versions = BTreeMap<String, String>;

/// The component name of the intent model of `locale` in [`Versions`].
pub fn model_component(locale: Locale) -> String {
    format!("intent/{}", locale.as_str())
}

/// The component name of the knowledge base in [`Versions`].
pub const KB_COMPONENT: &str = "kb";

/// Classifies and retrieves for a batch of (locale, PII-masked text) turns.
pub trait Understand: Send + Sync {
    /// The newest loaded version of every component. May look for and load new versions first
    /// (hot reload); never blocks on a reload for long.
    fn available_versions(&self) -> Versions;

    /// One [`Understanding`] per input, in order, computed with exactly the components named in
    /// `versions` (a component not named uses its newest version). Confidences and scores are
    /// rounded to four decimals so that results do not depend on how turns were batched.
    ///
    /// Fails for the whole batch; [`Error::is_transient`] tells whether the same batch may
    /// succeed later (a model server unreachable, a pinned version not loaded).
    fn understand(
        &self,
        batch: &[(Locale, &str)],
        versions: &Versions,
    ) -> Result<Vec<Understanding>>;
}

/// Rounds a score to four decimals (batched inference differs in the last bits).
pub fn round_score(x: f32) -> f32 {
    (x * 10_000.0).round() / 10_000.0
}

/// Where [`ModelUnderstanding`] loads from.
#[derive(Debug, Clone)]
pub struct UnderstandingConfig {
    /// Trained intent model folder per locale.
    pub intent_models: HashMap<Locale, PathBuf>,
    /// Knowledge-base snapshot root (with its `current` pointer).
    pub knowledge_base: PathBuf,
    /// Retrieval tuning.
    pub retrieval: RetrieverConfig,
    /// Results cached by normalised text.
    pub cache_capacity: usize,
    /// How often to look for new model versions and snapshots.
    pub reload_every: Duration,
    /// The vector store behind retrieval (the in-process exact index by default).
    pub vector_backend: crate::retrieval::VectorBackend,
}

/// How many versions of each component stay loaded.
const VERSIONS_KEPT: usize = 3;

/// Loaded versions, oldest first, newest last (never empty).
/// (The intent models' versions are kept by the [`IntentBackend`].)
struct Loaded {
    retrievers: Vec<Arc<Retriever>>,
}

/// Appends `item` as the newest version and forgets the oldest beyond [`VERSIONS_KEPT`].
fn push_version<T>(list: &mut Vec<T>, item: T) {
    list.push(item);
    if list.len() > VERSIONS_KEPT {
        list.remove(0);
    }
}

/// The versions one batch runs with.
struct Pinned {
    /// Intent model version per locale.
    models: HashMap<Locale, String>,
    retriever: Arc<Retriever>,
}

/// Cache key: locale, model version, snapshot version, normalised text.
type CacheKey = (Locale, String, String, String);

/// The real understanding: classifier per locale + knowledge retrieval, hot-reloaded.
pub struct ModelUnderstanding {
    config: UnderstandingConfig,
    backend: Arc<dyn IntentBackend>,
    loaded: RwLock<Loaded>,
    watcher: Mutex<(SnapshotWatcher, Instant)>,
    cache: Mutex<LruCache<CacheKey, Understanding>>,
}

impl ModelUnderstanding {
    /// Loads every configured model and the current knowledge-base snapshot.
    pub fn load(config: UnderstandingConfig) -> Result<Self> {
        let backend = LocalIntentBackend::load(config.intent_models.clone())?;
        Self::with_backend(config, Arc::new(backend))
    }

    /// Classifies with `backend` (e.g. a model server; `config.intent_models` is not read) and
    /// loads the current knowledge-base snapshot.
    pub fn with_backend(
        config: UnderstandingConfig,
        backend: Arc<dyn IntentBackend>,
    ) -> Result<Self> {
        let snapshot = Snapshot::load_current(&config.knowledge_base).map_err(|source| {
            Error::KnowledgeBase {
                root: config.knowledge_base.clone(),
                source,
            }
        })?;
        let watcher =
            SnapshotWatcher::with_loaded(config.knowledge_base.clone(), snapshot.version.clone());
        let retriever = config
            .vector_backend
            .retriever(snapshot, config.retrieval)?;
        let capacity = NonZeroUsize::new(config.cache_capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(ModelUnderstanding {
            backend,
            loaded: RwLock::new(Loaded {
                retrievers: vec![Arc::new(retriever)],
            }),
            watcher: Mutex::new((watcher, Instant::now())),
            cache: Mutex::new(LruCache::new(capacity)),
            config,
        })
    }

    /// The newest loaded versions: (locale, model version) pairs and the snapshot version.
    pub fn versions(&self) -> (Vec<(Locale, String)>, String) {
        let Ok(loaded) = self.loaded.read() else {
            return (Vec::new(), String::new());
        };
        let models = self.backend.versions();
        let kb = loaded
            .retrievers
            .last()
            .map(|r| r.snapshot().version.clone())
            .unwrap_or_default();
        (models, kb)
    }

    /// Resolves `versions` to loaded models and snapshot (newest where a component is not named).
    fn pin(&self, versions: &Versions) -> Result<Pinned> {
        let loaded = self.loaded.read().map_err(|_| Error::Poisoned("model"))?;
        // The backend checks that a named model version is still loaded when it classifies.
        let mut models = HashMap::new();
        for (locale, newest) in self.backend.versions() {
            let version = versions
                .get(&model_component(locale))
                .cloned()
                .unwrap_or(newest);
            models.insert(locale, version);
        }
        let retriever = match versions.get(KB_COMPONENT) {
            Some(wanted) => loaded
                .retrievers
                .iter()
                .find(|r| r.snapshot().version == *wanted)
                .ok_or_else(|| Error::SnapshotGone(wanted.clone()))?,
            None => loaded.retrievers.last().ok_or(Error::NoSnapshot)?,
        };
        Ok(Pinned {
            models,
            retriever: retriever.clone(),
        })
    }

    /// Looks for new model folders and snapshots (at most every `reload_every`) and loads them as
    /// the newest versions, keeping the previous ones for batches pinned to them. Failures keep
    /// the old versions and are logged.
    pub fn reload_if_changed(&self) {
        self.reload(false);
    }

    /// Looks for new versions now (`force`) or when `reload_every` has passed since the last look.
    fn reload(&self, force: bool) {
        let Ok(mut watcher) = self.watcher.lock() else {
            return;
        };
        if !force && watcher.1.elapsed() < self.config.reload_every {
            return;
        }
        watcher.1 = Instant::now();
        match watcher.0.poll() {
            Ok(Some(snapshot)) => match self
                .config
                .vector_backend
                .retriever(snapshot, self.config.retrieval)
            {
                Ok(r) => {
                    tracing::info!(version = %r.snapshot().version, "knowledge base snapshot loaded");
                    if let Ok(mut loaded) = self.loaded.write() {
                        push_version(&mut loaded.retrievers, Arc::new(r));
                    }
                }
                Err(e) => tracing::error!(error = %e, "new knowledge base snapshot rejected"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read knowledge base snapshot"),
        }
        self.backend.refresh();
    }

    fn compute(
        &self,
        locale: Locale,
        pinned: &Pinned,
        texts: &[&str],
    ) -> Result<Vec<Understanding>> {
        let version = pinned
            .models
            .get(&locale)
            .ok_or_else(|| Error::NoModel(locale.as_str()))?;
        let retriever = pinned.retriever.clone();
        let classified = self.backend.classify(locale, texts, Some(version))?;
        if classified.len() != texts.len() {
            return Err(Error::BadAnswer(format!(
                "intent backend gave {} results for {} texts",
                classified.len(),
                texts.len()
            )));
        }
        let kb_version = retriever.snapshot().version.clone();
        texts
            .iter()
            .zip(classified)
            .map(|(text, c)| {
                let p = c.prediction;
                // A vector search that fails (a remote store unreachable) fails the batch: the
                // caller retries a transient failure instead of answering with what a missing
                // index "found" (nothing, hence a clarifying question).
                let retrieved = retriever
                    .try_retrieve(locale, Some(&p.label), text, &c.vector)?
                    .map(|r| RetrievedAnswer {
                        entry_id: r.entry.id.clone(),
                        score: round_score(r.score),
                        template: r.entry.answer.clone(),
                        required_slots: r.entry.slots.clone(),
                    });
                Ok(Understanding {
                    intent: p.label,
                    confidence: round_score(p.confidence),
                    model_version: c.model_version,
                    retrieved,
                    kb_version: kb_version.clone(),
                })
            })
            .collect()
    }
}

impl Understand for ModelUnderstanding {
    fn available_versions(&self) -> Versions {
        self.reload_if_changed();
        let (models, kb) = self.versions();
        let mut versions: Versions = models
            .into_iter()
            .map(|(l, v)| (model_component(l), v))
            .collect();
        versions.insert(KB_COMPONENT.to_string(), kb);
        versions
    }

    fn understand(
        &self,
        batch: &[(Locale, &str)],
        versions: &Versions,
    ) -> Result<Vec<Understanding>> {
        match self.understand_pinned(batch, versions) {
            // Another process of a cluster (whose worker 0 decides the versions) may already
            // have loaded a version this one has not seen yet: look now, then try again.
            Err(Error::SnapshotGone(_) | Error::VersionGone { .. } | Error::NoSnapshot) => {
                self.reload(true);
                self.understand_pinned(batch, versions)
            }
            other => other,
        }
    }
}

impl ModelUnderstanding {
    fn understand_pinned(
        &self,
        batch: &[(Locale, &str)],
        versions: &Versions,
    ) -> Result<Vec<Understanding>> {
        let pinned = self.pin(versions)?;
        let kb_version = pinned.retriever.snapshot().version.clone();
        let cache_key = |locale: Locale, text: String| -> CacheKey {
            let model_version = pinned.models.get(&locale).cloned().unwrap_or_default();
            (locale, model_version, kb_version.clone(), text)
        };
        let mut out: Vec<Option<Understanding>> = vec![None; batch.len()];
        let mut misses: HashMap<Locale, Vec<(usize, String)>> = HashMap::new();
        {
            let mut cache = self.cache.lock().map_err(|_| Error::Poisoned("cache"))?;
            for (i, (locale, text)) in batch.iter().enumerate() {
                let normalized = crate::intent::normalize_text(text);
                match cache.get(&cache_key(*locale, normalized.clone())) {
                    Some(hit) => out[i] = Some(hit.clone()),
                    None => misses.entry(*locale).or_default().push((i, normalized)),
                }
            }
        }
        let mut locales: Vec<Locale> = misses.keys().copied().collect();
        locales.sort_by_key(|l| l.as_str());
        for locale in locales {
            let items = &misses[&locale];
            // Identical texts in one batch are computed once.
            let mut unique: Vec<&str> = items.iter().map(|(_, k)| k.as_str()).collect();
            unique.sort_unstable();
            unique.dedup();
            let results = self.compute(locale, &pinned, &unique)?;
            let by_text: HashMap<&str, &Understanding> =
                unique.iter().copied().zip(results.iter()).collect();
            let mut cache = self.cache.lock().map_err(|_| Error::Poisoned("cache"))?;
            for (i, key) in items {
                if let Some(u) = by_text.get(key.as_str()) {
                    out[*i] = Some((*u).clone());
                    cache.put(cache_key(locale, key.clone()), (*u).clone());
                }
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, u)| u.ok_or_else(|| Error::BadAnswer(format!("turn {i} was not understood"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_four_decimals() {
        assert_eq!(round_score(0.123_456), 0.1235);
        assert_eq!(round_score(1.0), 1.0);
    }
}
