//! Understanding a batch of turns: the intent classifier and the knowledge retrieval behind
//! one interface, so the graph can batch a whole epoch and tests can use a small double.
//!
//! [`ModelUnderstanding`] is the real one: per locale an [`IntentModel`] and one shared
//! [`Retriever`]. Each batch is embedded once per locale (the same vectors feed the classifier
//! head and the vector search), results are cached by normalised text ([`crate::intent::normalize_text`], as in training) in an LRU, and new model
//! versions or knowledge-base snapshots are picked up between batches without a restart.

use crate::intent::classifier::IntentModel;
use crate::retrieval::{Retriever, RetrieverConfig, Snapshot, SnapshotWatcher};
use crate::session::RetrievedAnswer;
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
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

/// Classifies and retrieves for a batch of (locale, PII-masked text) turns.
pub trait Understand: Send + Sync {
    /// One [`Understanding`] per input, in order. Confidences and scores are rounded to four
    /// decimals so that results do not depend on how turns were batched.
    fn understand(&self, batch: &[(Locale, &str)]) -> Result<Vec<Understanding>, String>;
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
}

struct Loaded {
    models: HashMap<Locale, Arc<IntentModel>>,
    model_stamps: HashMap<Locale, Option<SystemTime>>,
    retriever: Arc<Retriever>,
}

/// The real understanding: classifier per locale + knowledge retrieval, hot-reloaded.
pub struct ModelUnderstanding {
    config: UnderstandingConfig,
    loaded: RwLock<Loaded>,
    watcher: Mutex<(SnapshotWatcher, Instant)>,
    cache: Mutex<LruCache<(Locale, String), Understanding>>,
}

fn model_stamp(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(crate::intent::classifier::META_FILE)).and_then(|m| m.modified()).ok()
}

impl ModelUnderstanding {
    /// Loads every configured model and the current knowledge-base snapshot.
    pub fn load(config: UnderstandingConfig) -> Result<Self, String> {
        let mut models = HashMap::new();
        let mut model_stamps = HashMap::new();
        for (locale, dir) in &config.intent_models {
            let model = IntentModel::load(dir)
                .map_err(|e| format!("intent model for {} at {}: {e}", locale.as_str(), dir.display()))?;
            models.insert(*locale, Arc::new(model));
            model_stamps.insert(*locale, model_stamp(dir));
        }
        let snapshot = Snapshot::load_current(&config.knowledge_base).map_err(|e| {
            format!("knowledge base at {}: {e} (load one with `switchboard kb load FILE`)", config.knowledge_base.display())
        })?;
        let watcher = SnapshotWatcher::with_loaded(config.knowledge_base.clone(), snapshot.version.clone());
        let retriever = Retriever::new(snapshot, config.retrieval).map_err(|e| e.to_string())?;
        let capacity = NonZeroUsize::new(config.cache_capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(ModelUnderstanding {
            loaded: RwLock::new(Loaded { models, model_stamps, retriever: Arc::new(retriever) }),
            watcher: Mutex::new((watcher, Instant::now())),
            cache: Mutex::new(LruCache::new(capacity)),
            config,
        })
    }

    /// The loaded versions: (locale, model version) pairs and the snapshot version.
    pub fn versions(&self) -> (Vec<(Locale, String)>, String) {
        let Ok(loaded) = self.loaded.read() else { return (Vec::new(), String::new()) };
        let mut models: Vec<(Locale, String)> =
            loaded.models.iter().map(|(l, m)| (*l, m.version().to_string())).collect();
        models.sort_by_key(|(l, _)| l.as_str());
        (models, loaded.retriever.snapshot().version.clone())
    }

    /// Looks for new model folders and snapshots (at most every `reload_every`); swaps them in
    /// without disturbing batches in flight. Failures keep the old versions and are logged.
    pub fn reload_if_changed(&self) {
        let Ok(mut watcher) = self.watcher.lock() else { return };
        if watcher.1.elapsed() < self.config.reload_every {
            return;
        }
        watcher.1 = Instant::now();
        let mut changed = false;
        match watcher.0.poll() {
            Ok(Some(snapshot)) => match Retriever::new(snapshot, self.config.retrieval) {
                Ok(r) => {
                    tracing::info!(version = %r.snapshot().version, "knowledge base snapshot swapped in");
                    if let Ok(mut loaded) = self.loaded.write() {
                        loaded.retriever = Arc::new(r);
                        changed = true;
                    }
                }
                Err(e) => tracing::error!(error = %e, "new knowledge base snapshot rejected"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read knowledge base snapshot"),
        }
        for (locale, dir) in &self.config.intent_models {
            let stamp = model_stamp(dir);
            let old = self.loaded.read().ok().and_then(|l| l.model_stamps.get(locale).cloned()).flatten();
            if stamp.is_none() || stamp == old {
                continue;
            }
            match IntentModel::load(dir) {
                Ok(model) => {
                    tracing::info!(locale = locale.as_str(), version = model.version(), "intent model swapped in");
                    if let Ok(mut loaded) = self.loaded.write() {
                        loaded.models.insert(*locale, Arc::new(model));
                        loaded.model_stamps.insert(*locale, stamp);
                        changed = true;
                    }
                }
                Err(e) => tracing::error!(locale = locale.as_str(), error = %e, "new intent model rejected"),
            }
        }
        if changed {
            if let Ok(mut cache) = self.cache.lock() {
                cache.clear();
            }
        }
    }

    fn compute(&self, locale: Locale, texts: &[&str]) -> Result<Vec<Understanding>, String> {
        let (model, retriever) = {
            let loaded = self.loaded.read().map_err(|_| "model lock poisoned".to_string())?;
            let model = loaded
                .models
                .get(&locale)
                .cloned()
                .ok_or_else(|| format!("no intent model configured for locale {}", locale.as_str()))?;
            (model, loaded.retriever.clone())
        };
        let vectors = model.encoder().embed(texts).map_err(|e| e.to_string())?;
        let predictions = model.predict_embeddings(&vectors).map_err(|e| e.to_string())?;
        let kb_version = retriever.snapshot().version.clone();
        Ok(texts
            .iter()
            .zip(vectors.iter().zip(predictions))
            .map(|(text, (vector, p))| {
                let retrieved = retriever.retrieve(locale, Some(&p.label), text, vector).map(|r| RetrievedAnswer {
                    entry_id: r.entry.id.clone(),
                    score: round_score(r.score),
                    template: r.entry.answer.clone(),
                    required_slots: r.entry.slots.clone(),
                });
                Understanding {
                    intent: p.label,
                    confidence: round_score(p.confidence),
                    model_version: model.version().to_string(),
                    retrieved,
                    kb_version: kb_version.clone(),
                }
            })
            .collect())
    }
}

impl Understand for ModelUnderstanding {
    fn understand(&self, batch: &[(Locale, &str)]) -> Result<Vec<Understanding>, String> {
        self.reload_if_changed();
        let mut out: Vec<Option<Understanding>> = vec![None; batch.len()];
        let mut misses: HashMap<Locale, Vec<(usize, String)>> = HashMap::new();
        {
            let mut cache = self.cache.lock().map_err(|_| "cache lock poisoned".to_string())?;
            for (i, (locale, text)) in batch.iter().enumerate() {
                let key = (*locale, crate::intent::normalize_text(text));
                match cache.get(&key) {
                    Some(hit) => out[i] = Some(hit.clone()),
                    None => misses.entry(*locale).or_default().push((i, key.1)),
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
            let results = self.compute(locale, &unique)?;
            let by_text: HashMap<&str, &Understanding> = unique.iter().copied().zip(results.iter()).collect();
            let mut cache = self.cache.lock().map_err(|_| "cache lock poisoned".to_string())?;
            for (i, key) in items {
                if let Some(u) = by_text.get(key.as_str()) {
                    out[*i] = Some((*u).clone());
                    cache.put((locale, key.clone()), (*u).clone());
                }
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, u)| u.ok_or_else(|| format!("turn {i} was not understood")))
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
