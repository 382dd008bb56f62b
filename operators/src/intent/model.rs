//! Intent inference: a trained [`IntentModel`] (an [`Encoder`] plus a classifier head and its
//! temperature) loaded from a model folder, classifying texts through an LRU cache of
//! predictions.
//!
//! # Model folder
//!
//! `head.safetensors` (the head's weights: `out.weight` `(labels, in)`, `out.bias`, and for an
//! MLP `hidden.weight` `(hidden, dim)`, `hidden.bias`) and `model.json`
//! (see [`ModelMeta`]).

use super::data::normalize_text;
use super::encoder::{resolve_model_dir, Encoder};
use super::head::{self, Head};
use crate::{Error, Result};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Default number of cached predictions.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Most texts [`IntentModel::classify`] hands the encoder in one call; a batch with more cache
/// misses than this is encoded in several calls (bounding padding memory).
pub const MAX_ENCODE_BATCH: usize = 64;
/// The `format` written to and accepted from `model.json`.
pub const MODEL_FORMAT: u32 = 1;
/// Name of the weights file in a model folder.
pub const HEAD_FILE: &str = "head.safetensors";
/// Name of the metadata file in a model folder.
pub const META_FILE: &str = "model.json";
/// How many alternatives [`Prediction::top`] holds (fewer when the model has fewer labels).
pub const TOP_K: usize = 3;

/// One classified text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most likely label.
    pub label: String,
    /// Its calibrated probability: the max of `softmax(logits / T)`.
    pub confidence: f32,
    /// The [`TOP_K`] most likely labels with their probabilities, best first.
    pub top: Vec<(String, f32)>,
    /// For a model with an out-of-scope signal ([`super::scope`]): the similarity to the
    /// nearest class centroid. Below the model's threshold the confidence is 0 (abstained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_scope: Option<f32>,
}

/// The contents of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Folder format, [`MODEL_FORMAT`].
    pub format: u32,
    /// `<8 hex>`: a hash of what the model was trained from (data, encoder, options; see
    /// [`training_version`](super::train::training_version)), so the same inputs give the same
    /// version on any machine (golden outputs name it); `trained_at` says when.
    pub version: String,
    /// The encoder as given at training: a model name or a folder (see [`resolve_model_dir`]).
    pub encoder: String,
    /// Labels, in output order.
    pub labels: Vec<String>,
    /// Softmax temperature (> 0).
    pub temperature: f64,
    /// Embedding width.
    pub dim: usize,
    /// Hidden width (0: logistic regression).
    pub hidden: usize,
    /// Training time, RFC 3339 UTC.
    pub trained_at: String,
    /// Training metrics (a [`TrainReport`](super::TrainReport) for models made by
    /// [`train`](super::train)).
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Set when the encoder was fine-tuned with the head (`encoder` then names the base it
    /// started from; the fine-tuned one is in the model folder's `encoder/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tune: Option<super::finetune::FineTuneOptions>,
}

/// Counters of the prediction cache and the encoder, since the model was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Texts answered from the cache.
    pub hits: u64,
    /// Texts not found in the cache (duplicates within one batch count once each).
    pub misses: u64,
    /// Calls to [`Encoder::embed`].
    pub encoder_calls: u64,
    /// Texts sent to the encoder (distinct normalised misses).
    pub encoded_texts: u64,
    /// Predictions now cached.
    pub entries: usize,
    /// Cache capacity (0: no cache).
    pub capacity: usize,
}

/// A trained intent classifier: encoder + head + temperature + prediction cache.
/// `Send + Sync`: share it behind an `Arc` and call [`classify`](Self::classify) from any thread.
pub struct IntentModel {
    encoder: Arc<Encoder>,
    head: Head,
    scope: Option<super::scope::Scope>,
    meta: ModelMeta,
    cache: Option<Mutex<LruCache<String, Prediction>>>,
    cache_capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    encoder_calls: AtomicU64,
    encoded_texts: AtomicU64,
}

fn lock_cache(
    cache: &Mutex<LruCache<String, Prediction>>,
) -> MutexGuard<'_, LruCache<String, Prediction>> {
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn new_cache(capacity: usize) -> Option<Mutex<LruCache<String, Prediction>>> {
    NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c)))
}

fn model_error(dir: &Path, message: impl Into<String>) -> Error {
    Error::Model {
        dir: dir.to_path_buf(),
        message: message.into(),
    }
}

impl IntentModel {
    /// A model from its parts, with an empty cache of `cache_capacity` entries.
    pub(super) fn assemble(
        encoder: Arc<Encoder>,
        head: Head,
        meta: ModelMeta,
        cache_capacity: usize,
    ) -> IntentModel {
        IntentModel {
            encoder,
            head,
            scope: None,
            meta,
            cache: new_cache(cache_capacity),
            cache_capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            encoder_calls: AtomicU64::new(0),
            encoded_texts: AtomicU64::new(0),
        }
    }

    /// Gives the model an out-of-scope signal.
    pub(super) fn set_scope(&mut self, scope: super::scope::Scope) {
        self.scope = Some(scope);
    }

    /// The out-of-scope signal, when the model has one.
    pub fn scope(&self) -> Option<&super::scope::Scope> {
        self.scope.as_ref()
    }

    /// Replaces `model.json`'s `metrics`.
    pub(super) fn set_metrics(&mut self, metrics: serde_json::Value) {
        self.meta.metrics = metrics;
    }

    /// Marks the model as trained on an encoder fine-tuned with `options`: `model.json` records
    /// them and the version covers them.
    pub(super) fn set_fine_tune(&mut self, options: super::finetune::FineTuneOptions) {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.meta.version.as_bytes());
        hasher.update(serde_json::to_string(&options).unwrap_or_default().as_bytes());
        self.meta.version = hasher.finalize()[..4].iter().map(|b| format!("{b:02x}")).collect();
        self.meta.fine_tune = Some(options);
    }

    /// The encoder folder of the model in `dir`: its own `encoder/` when fine-tuned, else the
    /// base encoder named in `model.json` (resolved with [`resolve_model_dir`]).
    pub fn encoder_dir(dir: impl AsRef<Path>) -> Result<std::path::PathBuf> {
        let dir = dir.as_ref();
        let meta = read_meta(dir)?;
        Ok(Self::encoder_dir_of(dir, &meta))
    }

    fn encoder_dir_of(dir: &Path, meta: &ModelMeta) -> std::path::PathBuf {
        if meta.fine_tune.is_some() {
            dir.join(super::finetune::ENCODER_DIR)
        } else {
            resolve_model_dir(&meta.encoder)
        }
    }

    /// Loads a model folder and its encoder (`model.json`'s `encoder`, resolved with
    /// [`resolve_model_dir`]). The cache gets [`DEFAULT_CACHE_CAPACITY`].
    pub fn load(dir: impl AsRef<Path>) -> Result<IntentModel> {
        let dir = dir.as_ref();
        let meta = read_meta(dir)?;
        let encoder_dir = Self::encoder_dir_of(dir, &meta);
        if !encoder_dir.join("config.json").exists() {
            return Err(model_error(
                dir,
                format!(
                    "encoder `{}` resolves to {}, which holds no config.json (set SWITCHBOARD_MODELS, \
                     or use IntentModel::load_with_encoder)",
                    meta.encoder,
                    encoder_dir.display()
                ),
            ));
        }
        let encoder = Encoder::load(&encoder_dir)?;
        Self::finish_load(dir, meta, Arc::new(encoder))
    }

    /// Loads a model folder on an already loaded encoder (several models can share one). The
    /// encoder's width must match the model's `dim`; a different encoder name only logs a
    /// warning.
    pub fn load_with_encoder(dir: impl AsRef<Path>, encoder: Arc<Encoder>) -> Result<IntentModel> {
        let dir = dir.as_ref();
        let meta = read_meta(dir)?;
        if meta.fine_tune.is_some() {
            // A fine-tuned model carries its own encoder; a shared one would not match it.
            return Self::load(dir);
        }
        let expected = resolve_model_dir(&meta.encoder);
        let expected_name = expected
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if expected_name != encoder.name() {
            tracing::warn!(
                model = %dir.display(),
                trained_with = %meta.encoder,
                given = encoder.name(),
                "intent model loaded on a different encoder than it was trained with"
            );
        }
        Self::finish_load(dir, meta, encoder)
    }

    fn finish_load(dir: &Path, meta: ModelMeta, encoder: Arc<Encoder>) -> Result<IntentModel> {
        if encoder.dim() != meta.dim {
            return Err(model_error(
                dir,
                format!(
                    "dim mismatch: model.json says dim {} but encoder `{}` embeds {} dimensions",
                    meta.dim,
                    encoder.name(),
                    encoder.dim()
                ),
            ));
        }
        let head = Head::load(
            &dir.join(HEAD_FILE),
            meta.dim,
            meta.hidden,
            meta.labels.len(),
        )?;
        let centroids = dir.join(super::scope::CENTROIDS_FILE);
        let scope = if centroids.exists() { Some(super::scope::Scope::load(&centroids, meta.labels.len(), meta.dim)?) } else { None };
        let mut model = Self::assemble(encoder, head, meta, DEFAULT_CACHE_CAPACITY);
        model.scope = scope;
        Ok(model)
    }

    /// Writes `head.safetensors` and `model.json` into `dir` (created if missing). Each file is
    /// written under a temporary name and renamed, `model.json` last.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let head_tmp = dir.join(format!("{HEAD_FILE}.tmp"));
        self.head.save(&head_tmp)?;
        let head_path = dir.join(HEAD_FILE);
        std::fs::rename(&head_tmp, &head_path).map_err(io(&head_path))?;
        let centroids = dir.join(super::scope::CENTROIDS_FILE);
        match &self.scope {
            Some(scope) => {
                let tmp = dir.join(format!("{}.tmp", super::scope::CENTROIDS_FILE));
                scope.save(&tmp)?;
                std::fs::rename(&tmp, &centroids).map_err(io(&centroids))?;
            }
            None if centroids.exists() => std::fs::remove_file(&centroids).map_err(io(&centroids))?,
            None => {}
        }
        let json = serde_json::to_string_pretty(&self.meta)
            .map_err(|e| model_error(dir, format!("cannot serialise model.json: {e}")))?;
        let meta_tmp = dir.join(format!("{META_FILE}.tmp"));
        std::fs::write(&meta_tmp, json + "\n").map_err(io(&meta_tmp))?;
        let meta_path = dir.join(META_FILE);
        std::fs::rename(&meta_tmp, &meta_path).map_err(io(&meta_path))?;
        Ok(())
    }

    /// Replaces the prediction cache by an empty one of `capacity` entries (0 disables it).
    pub fn with_cache_capacity(mut self, capacity: usize) -> IntentModel {
        self.cache = new_cache(capacity);
        self.cache_capacity = capacity;
        self
    }

    /// Empties the prediction cache (the counters are kept).
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.cache {
            lock_cache(cache).clear();
        }
    }

    /// Cache and encoder counters.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            encoder_calls: self.encoder_calls.load(Ordering::Relaxed),
            encoded_texts: self.encoded_texts.load(Ordering::Relaxed),
            entries: self
                .cache
                .as_ref()
                .map(|c| lock_cache(c).len())
                .unwrap_or(0),
            capacity: self.cache_capacity,
        }
    }

    /// The model's version string (`model.json`'s `version`).
    pub fn version(&self) -> &str {
        &self.meta.version
    }

    /// The labels, in output order.
    pub fn labels(&self) -> &[String] {
        &self.meta.labels
    }

    /// The softmax temperature.
    pub fn temperature(&self) -> f64 {
        self.meta.temperature
    }

    /// Everything in `model.json`.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The encoder (shareable with [`load_with_encoder`](Self::load_with_encoder)).
    pub fn encoder(&self) -> &Arc<Encoder> {
        &self.encoder
    }

    /// Classifies a batch. Texts are normalised ([`normalize_text`]); those whose normal form
    /// is cached are answered without the encoder, the distinct others are embedded together
    /// (one encoder call per [`MAX_ENCODE_BATCH`] of them), classified and cached.
    pub fn classify(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        let keys: Vec<String> = texts.iter().map(|t| normalize_text(t)).collect();
        let mut out: Vec<Option<Prediction>> = vec![None; keys.len()];
        let mut pending: Vec<&str> = Vec::new();
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut hits = 0u64;
        {
            let mut cache = self.cache.as_ref().map(lock_cache);
            for (i, key) in keys.iter().enumerate() {
                if let Some(found) = cache.as_mut().and_then(|c| c.get(key.as_str())) {
                    out[i] = Some(found.clone());
                    hits += 1;
                } else if !slot.contains_key(key.as_str()) {
                    slot.insert(key.as_str(), pending.len());
                    pending.push(key.as_str());
                }
            }
        }
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses
            .fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
        if pending.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }

        let mut fresh = Vec::with_capacity(pending.len());
        for chunk in pending.chunks(MAX_ENCODE_BATCH) {
            self.encoder_calls.fetch_add(1, Ordering::Relaxed);
            self.encoded_texts
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let embeddings = self.encoder.embed(chunk)?;
            fresh.extend(self.predict_embeddings(&embeddings)?);
        }
        if let Some(cache) = &self.cache {
            let mut cache = lock_cache(cache);
            for (key, prediction) in pending.iter().zip(&fresh) {
                cache.put((*key).to_string(), prediction.clone());
            }
        }
        Ok(keys
            .iter()
            .zip(out)
            .map(|(key, cached)| cached.unwrap_or_else(|| fresh[slot[key.as_str()]].clone()))
            .collect())
    }

    /// Classifies one text (see [`classify`](Self::classify)).
    pub fn classify_one(&self, text: &str) -> Result<Prediction> {
        self.classify(&[text])?
            .pop()
            .ok_or_else(|| Error::Training("empty prediction batch".into()))
    }

    /// Classifies embeddings made by this model's encoder (no cache, no counters). The head
    /// was trained on embeddings of [normalised](normalize_text) texts, so embed
    /// `normalize_text(text)` to get exactly what [`classify`](Self::classify) gives.
    pub fn predict_embeddings(&self, embeddings: &[Vec<f32>]) -> Result<Vec<Prediction>> {
        let logits = self.head.logits(embeddings)?;
        Ok(logits
            .iter()
            .zip(embeddings)
            .map(|(row, embedding)| {
                let mut prediction = to_prediction(row, self.meta.temperature, &self.meta.labels);
                if let Some(scope) = &self.scope {
                    let similarity = scope.similarity(embedding);
                    prediction.in_scope = Some(similarity);
                    if !scope.in_scope(similarity) {
                        prediction.confidence = 0.0;
                    }
                }
                prediction
            })
            .collect())
    }
}

/// The prediction of one row of logits: softmax at `temperature`, best [`TOP_K`] labels.
pub(super) fn to_prediction(logits: &[f32], temperature: f64, labels: &[String]) -> Prediction {
    let probs = head::softmax(logits, temperature);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let top: Vec<(String, f32)> = order
        .iter()
        .take(TOP_K)
        .map(|&i| (labels[i].clone(), probs[i] as f32))
        .collect();
    let (label, confidence) = top.first().cloned().unwrap_or_default();
    Prediction {
        label,
        confidence,
        top,
        in_scope: None,
    }
}

fn read_meta(dir: &Path) -> Result<ModelMeta> {
    let path = dir.join(META_FILE);
    if !dir.is_dir() {
        return Err(model_error(dir, "intent model folder not found"));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| model_error(dir, format!("cannot read {META_FILE}: {e}")))?;
    let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| {
        model_error(
            dir,
            format!("{META_FILE} is not a valid intent model description: {e}"),
        )
    })?;
    if meta.format != MODEL_FORMAT {
        return Err(model_error(
            dir,
            format!(
                "{META_FILE} has format {}, expected {MODEL_FORMAT}",
                meta.format
            ),
        ));
    }
    if meta.labels.is_empty() {
        return Err(model_error(dir, format!("{META_FILE} lists no labels")));
    }
    if meta.labels.iter().collect::<BTreeSet<_>>().len() != meta.labels.len() {
        return Err(model_error(dir, format!("{META_FILE} lists a label twice")));
    }
    if !(meta.temperature > 0.0 && meta.temperature.is_finite()) {
        return Err(model_error(
            dir,
            format!(
                "{META_FILE} has temperature {}, expected > 0",
                meta.temperature
            ),
        ));
    }
    Ok(meta)
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<IntentModel>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_sorted() {
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let p = to_prediction(&[0.0, 3.0, 1.0, 2.0], 1.0, &labels);
        assert_eq!(p.label, "b");
        assert_eq!(
            p.top.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
            ["b", "d", "c"]
        );
        assert!((p.confidence - p.top[0].1).abs() < 1e-9);
    }
}
