//! The intent classifier: a small head (multinomial logistic regression, or a one-hidden-layer
//! MLP) trained on frozen, L2-normalised sentence embeddings from an [`Encoder`], with
//! temperature-scaled confidences and an LRU cache of predictions.
//!
//! ```no_run
//! use switchboard_operators::intent::classifier::{load_examples, train, IntentModel, TrainOptions};
//! # fn main() -> switchboard_operators::Result<()> {
//! let examples = load_examples("operators/data/intents/train.zh.jsonl")?;
//! let (model, report) = train(&examples, "m3e-small", &TrainOptions::default(), true)?;
//! model.save("models/intent-zh")?;
//! let model = IntentModel::load("models/intent-zh")?;
//! let predictions = model.classify(&["我要退货", "快递到哪了"])?;
//! # let _ = (report, predictions);
//! # Ok(()) }
//! ```
//!
//! # Model folder
//!
//! `head.safetensors` (the head's weights: `out.weight` `(labels, in)`, `out.bias`, and for an
//! MLP `hidden.weight` `(hidden, dim)`, `hidden.bias`) and `model.json`
//! (see [`ModelMeta`]).

pub use super::data::{
    load_examples, normalize_text, parse_examples, stratified_folds, stratified_split,
    validation_count, Example,
};
pub use super::metrics::{
    pick_threshold, threshold_curve, threshold_point, EvalReport, LabelStats, ThresholdPoint,
};

use super::encoder::{resolve_model_dir, Encoder};
use super::head::{self, FitOptions, Fitted, Head};
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
}

/// Training hyper-parameters. The defaults suit a few dozen to a few thousand examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    /// Width of the hidden ReLU layer; 0 trains multinomial logistic regression.
    pub hidden: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW (decoupled) weight decay.
    pub weight_decay: f64,
    /// Mini-batch size for the head.
    pub batch_size: usize,
    /// Upper bound on epochs.
    pub max_epochs: usize,
    /// Early stopping: epochs without a validation-NLL improvement before stopping.
    pub patience: usize,
    /// Share of each label held out for early stopping and temperature fitting (at least one
    /// example per label with ≥ 3 examples; none for rarer labels). 0 disables validation.
    pub validation_fraction: f64,
    /// Seed for the split, the shuffles, the initialisation and the folds.
    pub seed: u64,
    /// How many texts go to the encoder at once while embedding the training set.
    pub embed_batch_size: usize,
    /// LRU capacity of the trained model's prediction cache (0 disables it).
    pub cache_capacity: usize,
    /// Weight of a log-normal prior on the temperature centred on 1 (the temperature minimises
    /// `Σ NLL + prior · (ln T)²` on the validation split). 0 is plain NLL minimisation; the
    /// default 1 only matters for tiny validation sets.
    pub temperature_prior: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            hidden: 0,
            learning_rate: 1e-2,
            weight_decay: 1e-2,
            batch_size: 32,
            max_epochs: 300,
            patience: 20,
            validation_fraction: 0.15,
            seed: 42,
            embed_batch_size: 32,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            temperature_prior: 1.0,
        }
    }
}

impl TrainOptions {
    fn fit_options(&self) -> FitOptions {
        FitOptions {
            hidden: self.hidden,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            max_epochs: self.max_epochs,
            patience: self.patience,
            validation_fraction: self.validation_fraction,
            seed: self.seed,
            temperature_prior: self.temperature_prior,
        }
    }
}

/// What [`train`] did; also stored as `metrics` in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Examples given.
    pub n_examples: usize,
    /// Examples the head was fitted on.
    pub n_train: usize,
    /// Examples held out for early stopping and calibration.
    pub n_validation: usize,
    /// Distinct labels.
    pub n_labels: usize,
    /// Embedding width.
    pub dim: usize,
    /// Hidden width (0: logistic regression).
    pub hidden: usize,
    /// Epochs run before stopping.
    pub epochs_run: usize,
    /// Epoch whose weights were kept (best validation NLL).
    pub best_epoch: usize,
    /// Accuracy on the fitted examples.
    pub train_accuracy: f64,
    /// Accuracy on the validation split.
    pub validation_accuracy: Option<f64>,
    /// Validation NLL before temperature scaling.
    pub validation_nll: Option<f64>,
    /// Validation NLL after temperature scaling.
    pub validation_nll_calibrated: Option<f64>,
    /// The fitted temperature.
    pub temperature: f64,
    /// Seconds spent embedding.
    pub embed_seconds: f64,
    /// Seconds spent fitting the head.
    pub train_seconds: f64,
    /// The options trained with (so `model.json` records how to retrain or cross-validate).
    pub options: TrainOptions,
}

/// The contents of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Folder format, [`MODEL_FORMAT`].
    pub format: u32,
    /// `<8 hex>`: a hash of the head's weights and the labels — a content version, so the same
    /// data, encoder and seed give the same version (golden outputs name it); `trained_at`
    /// says when.
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
    /// Training metrics (a [`TrainReport`] for models made by [`train`]).
    #[serde(default)]
    pub metrics: serde_json::Value,
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
    fn assemble(
        encoder: Arc<Encoder>,
        head: Head,
        meta: ModelMeta,
        cache_capacity: usize,
    ) -> IntentModel {
        IntentModel {
            encoder,
            head,
            meta,
            cache: new_cache(cache_capacity),
            cache_capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            encoder_calls: AtomicU64::new(0),
            encoded_texts: AtomicU64::new(0),
        }
    }

    /// Loads a model folder and its encoder (`model.json`'s `encoder`, resolved with
    /// [`resolve_model_dir`]). The cache gets [`DEFAULT_CACHE_CAPACITY`].
    pub fn load(dir: impl AsRef<Path>) -> Result<IntentModel> {
        let dir = dir.as_ref();
        let meta = read_meta(dir)?;
        let encoder_dir = resolve_model_dir(&meta.encoder);
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
        Ok(Self::assemble(encoder, head, meta, DEFAULT_CACHE_CAPACITY))
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
            .map(|row| to_prediction(row, self.meta.temperature, &self.meta.labels))
            .collect())
    }
}

fn to_prediction(logits: &[f32], temperature: f64, labels: &[String]) -> Prediction {
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

/// Embeds `texts` (normalised) in batches of `batch`, with a progress bar if asked.
fn embed_all(
    encoder: &Encoder,
    texts: &[String],
    batch: usize,
    progress: bool,
) -> Result<Vec<Vec<f32>>> {
    let bar = if progress {
        ProgressBar::new(texts.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("embedding {bar:40} {pos}/{len} texts {elapsed}")
    {
        bar.set_style(style);
    }
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(encoder.embed(&refs)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Sorted distinct labels and each example's label index; errors on fewer than 2 labels.
fn index_labels(examples: &[Example]) -> Result<(Vec<String>, Vec<usize>)> {
    if examples.is_empty() {
        return Err(Error::Training("no examples".into()));
    }
    let labels: Vec<String> = examples
        .iter()
        .map(|e| e.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.len() < 2 {
        return Err(Error::Training(format!(
            "need at least 2 distinct labels, got {} ({})",
            labels.len(),
            labels.join(", ")
        )));
    }
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let targets = examples.iter().map(|e| index[e.label.as_str()]).collect();
    Ok((labels, targets))
}

/// Trains a model on `examples` with the encoder `encoder_name_or_dir` (a name such as
/// `m3e-small`, or a folder; stored as given in `model.json`). Texts are normalised and embedded
/// once (batches of `options.embed_batch_size`), then the head is fitted on the cached
/// embeddings; `progress` shows bars for both. Needs at least 2 distinct labels.
pub fn train(
    examples: &[Example],
    encoder_name_or_dir: &str,
    options: &TrainOptions,
    progress: bool,
) -> Result<(IntentModel, TrainReport)> {
    index_labels(examples)?;
    let encoder = Encoder::load(&resolve_model_dir(encoder_name_or_dir))?;
    train_with_encoder(
        examples,
        Arc::new(encoder),
        encoder_name_or_dir,
        options,
        progress,
    )
}

/// [`train`] on an already loaded encoder; `encoder_ref` is what `model.json` records as the
/// encoder (the name or folder [`IntentModel::load`] will resolve).
pub fn train_with_encoder(
    examples: &[Example],
    encoder: Arc<Encoder>,
    encoder_ref: &str,
    options: &TrainOptions,
    progress: bool,
) -> Result<(IntentModel, TrainReport)> {
    index_labels(examples)?;
    let texts: Vec<String> = examples.iter().map(|e| normalize_text(&e.text)).collect();
    let started = Instant::now();
    let embeddings = embed_all(&encoder, &texts, options.embed_batch_size, progress)?;
    let embed_seconds = started.elapsed().as_secs_f64();
    let (model, mut report) = train_on_embeddings(
        examples,
        &embeddings,
        encoder,
        encoder_ref,
        options,
        progress,
    )?;
    report.embed_seconds = embed_seconds;
    let mut meta = model.meta.clone();
    meta.metrics = serde_json::to_value(&report).unwrap_or_default();
    Ok((IntentModel { meta, ..model }, report))
}

/// [`train_with_encoder`] on embeddings already made by `encoder` from the examples'
/// [normalised](normalize_text) texts (`embeddings[i]` for `examples[i]`): for sweeping
/// hyper-parameters without re-embedding. `embed_seconds` in the report is 0.
pub fn train_on_embeddings(
    examples: &[Example],
    embeddings: &[Vec<f32>],
    encoder: Arc<Encoder>,
    encoder_ref: &str,
    options: &TrainOptions,
    progress: bool,
) -> Result<(IntentModel, TrainReport)> {
    let (labels, targets) = index_labels(examples)?;
    if embeddings.len() != examples.len() {
        return Err(Error::Training(format!(
            "{} embeddings for {} examples",
            embeddings.len(),
            examples.len()
        )));
    }
    let embed_seconds = 0.0;
    let started = Instant::now();
    let subset: Vec<usize> = (0..examples.len()).collect();
    let fitted = head::fit(
        embeddings,
        &targets,
        &subset,
        encoder.dim(),
        labels.len(),
        &options.fit_options(),
        progress,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    let Fitted {
        head,
        temperature,
        n_train,
        n_validation,
        epochs_run,
        best_epoch,
        train_accuracy,
        validation_accuracy,
        validation_nll,
        validation_nll_calibrated,
    } = fitted;
    let report = TrainReport {
        n_examples: examples.len(),
        n_train,
        n_validation,
        n_labels: labels.len(),
        dim: encoder.dim(),
        hidden: options.hidden,
        epochs_run,
        best_epoch,
        train_accuracy,
        validation_accuracy,
        validation_nll,
        validation_nll_calibrated,
        temperature,
        embed_seconds,
        train_seconds,
        options: options.clone(),
    };

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (_stamp, trained_at) = timestamps(now);
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let hash = head.fingerprint(&label_refs)?;
    let meta = ModelMeta {
        format: MODEL_FORMAT,
        version: format!("{:08x}", (hash ^ (hash >> 32)) as u32),
        encoder: encoder_ref.to_string(),
        labels,
        temperature,
        dim: encoder.dim(),
        hidden: options.hidden,
        trained_at,
        metrics: serde_json::to_value(&report).unwrap_or_default(),
    };
    Ok((
        IntentModel::assemble(encoder, head, meta, options.cache_capacity),
        report,
    ))
}

/// Stratified `folds`-fold cross-validation ([`stratified_folds`], seeded by `options.seed`):
/// every text is embedded once, a head is trained (with its own validation split) on each
/// fold's complement and scores the fold; the report pools all held-out predictions (argmax,
/// no threshold).
pub fn cross_validate(
    examples: &[Example],
    encoder: &Encoder,
    folds: usize,
    options: &TrainOptions,
) -> Result<EvalReport> {
    let (labels, targets) = index_labels(examples)?;
    if folds < 2 || folds > examples.len() {
        return Err(Error::Training(format!(
            "folds must be in 2..={}, got {folds}",
            examples.len()
        )));
    }
    let texts: Vec<String> = examples.iter().map(|e| normalize_text(&e.text)).collect();
    let embeddings = embed_all(encoder, &texts, options.embed_batch_size, false)?;
    let fold_of = stratified_folds(&targets, folds, options.seed);
    let mut gold = Vec::with_capacity(examples.len());
    let mut predicted = Vec::with_capacity(examples.len());
    for fold in 0..folds {
        let train_idx: Vec<usize> = (0..examples.len())
            .filter(|&i| fold_of[i] != fold)
            .collect();
        let test_idx: Vec<usize> = (0..examples.len())
            .filter(|&i| fold_of[i] == fold)
            .collect();
        if test_idx.is_empty() {
            continue;
        }
        let fitted = head::fit(
            &embeddings,
            &targets,
            &train_idx,
            encoder.dim(),
            labels.len(),
            &options.fit_options(),
            false,
        )?;
        let test_x: Vec<Vec<f32>> = test_idx.iter().map(|&i| embeddings[i].clone()).collect();
        for (row, &i) in fitted.head.logits(&test_x)?.iter().zip(&test_idx) {
            gold.push(examples[i].label.clone());
            predicted.push(to_prediction(row, fitted.temperature, &labels).label);
        }
    }
    Ok(EvalReport::compute(&gold, &predicted))
}

/// Classifies `examples` with `model` and scores the predictions against their labels.
pub fn evaluate(model: &IntentModel, examples: &[Example]) -> Result<EvalReport> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let predictions = model.classify(&texts)?;
    let gold: Vec<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    let predicted: Vec<&str> = predictions.iter().map(|p| p.label.as_str()).collect();
    Ok(EvalReport::compute(&gold, &predicted))
}

/// `YYYYMMDDTHHMM` and RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`) for a Unix time, UTC.
fn timestamps(unix: u64) -> (String, String) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}"),
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
    )
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
    fn timestamps_are_utc_civil() {
        assert_eq!(
            timestamps(0),
            ("19700101T0000".into(), "1970-01-01T00:00:00Z".into())
        );
        // 2026-11-24T21:30:05Z
        assert_eq!(timestamps(1_795_555_805).1, "2026-11-24T21:30:05Z");
    }

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
