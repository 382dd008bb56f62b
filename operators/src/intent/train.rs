//! Training intent models: [`TrainOptions`], [`train`] and its variants on an already loaded
//! encoder or on embeddings made beforehand, and the [`TrainReport`] they return. The head is
//! fitted by [`super::fit`].

use super::data::{normalize_text, Example};
use super::encoder::{resolve_model_dir, Encoder};
use super::fit::{self, FitOptions, Fitted};
use super::model::{IntentModel, ModelMeta, DEFAULT_CACHE_CAPACITY, MODEL_FORMAT};
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    /// Out-of-scope signal ([`super::scope`]): keep this share (e.g. 0.95) of the training
    /// examples in scope by their distance to the class centroids; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_scope_keep: Option<f64>,
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
            in_scope_keep: None,
        }
    }
}

impl TrainOptions {
    /// The head-fitting part of the options.
    pub(super) fn fit_options(&self) -> FitOptions {
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

/// Embeds `texts` (normalised) in batches of `batch`, with a progress bar if asked.
pub(super) fn embed_all(
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
pub(super) fn index_labels(examples: &[Example]) -> Result<(Vec<String>, Vec<usize>)> {
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

/// Fails with one clear line naming every label with fewer than `min` examples (`why` says what
/// needs that many).
pub(super) fn require_per_label(labels: &[String], targets: &[usize], min: usize, why: &str) -> Result<()> {
    let mut counts = vec![0usize; labels.len()];
    for &t in targets {
        counts[t] += 1;
    }
    let short: Vec<String> = labels.iter().zip(&counts).filter(|(_, &n)| n < min).map(|(l, n)| format!("`{l}` ({n})")).collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(Error::Training(format!(
        "{why} needs at least {min} examples per label; too few for {}: add examples, merge the label with another, or drop it",
        short.join(", ")
    )))
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
    let mut model = model;
    model.set_metrics(serde_json::to_value(&report).unwrap_or_default());
    Ok((model, report))
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
    let fitted = fit::fit(
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
    let meta = ModelMeta {
        format: MODEL_FORMAT,
        version: training_version(examples, encoder_ref, options),
        encoder: encoder_ref.to_string(),
        labels,
        temperature,
        dim: encoder.dim(),
        hidden: options.hidden,
        trained_at,
        metrics: serde_json::to_value(&report).unwrap_or_default(),
        fine_tune: None,
    };
    let mut model = IntentModel::assemble(encoder, head, meta, options.cache_capacity);
    if let Some(keep) = options.in_scope_keep {
        let (_, targets) = index_labels(examples)?;
        model.set_scope(super::scope::Scope::fit(embeddings, &targets, model.labels().len(), keep)?);
    }
    Ok((model, report))
}

/// [`train`] with the encoder fine-tuned first ([`fine_tune`](super::finetune::fine_tune), into
/// `out/encoder`, from the base `encoder_name_or_dir`); the head and its temperature are then
/// fitted on the fine-tuned embeddings. Save the model to the same `out`.
pub fn train_fine_tuned(
    examples: &[Example],
    encoder_name_or_dir: &str,
    out: &std::path::Path,
    options: &TrainOptions,
    fine: &super::finetune::FineTuneOptions,
    progress: bool,
) -> Result<(IntentModel, TrainReport, super::finetune::FineTuneReport)> {
    let (labels, targets) = index_labels(examples)?;
    require_per_label(&labels, &targets, 2, "fine-tuning")?;
    let encoder_dir = out.join(super::finetune::ENCODER_DIR);
    let tuned = super::finetune::fine_tune(examples, encoder_name_or_dir, &encoder_dir, fine, options.seed, progress)?;
    let encoder = Encoder::load(&encoder_dir)?;
    let (mut model, report) = train_with_encoder(examples, Arc::new(encoder), encoder_name_or_dir, options, progress)?;
    model.set_fine_tune(fine.clone());
    Ok((model, report, tuned))
}

/// The version of a model trained on `examples` with the encoder `encoder_ref` and `options`:
/// 8 hex digits of the SHA-256 of what went into training (the folder format, the encoder as
/// named, the options that shape the weights, every example's label and normalised text) —
/// not of the trained weights, whose last float bits differ between machines (CPU features,
/// thread counts). So a model trained from the same inputs has the same version on any
/// machine, golden files that name it hold everywhere, and new data, options or another
/// encoder give another version.
pub fn training_version(examples: &[Example], encoder_ref: &str, options: &TrainOptions) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(&MODEL_FORMAT.to_le_bytes());
    field(encoder_ref.as_bytes());
    // Runtime settings (cache size, embedding batch size) do not shape the weights.
    let shaping = TrainOptions { cache_capacity: 0, embed_batch_size: 0, ..options.clone() };
    field(serde_json::to_string(&shaping).unwrap_or_default().as_bytes());
    for example in examples {
        field(example.label.as_bytes());
        field(normalize_text(&example.text).as_bytes());
    }
    let digest = hasher.finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_too_few_examples_are_named() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let targets = vec![0, 0, 0, 1, 2, 2];
        let error = require_per_label(&labels, &targets, 2, "fine-tuning").expect_err("b has one");
        assert_eq!(
            error.to_string(),
            "training: fine-tuning needs at least 2 examples per label; too few for `b` (1): add examples, merge the label with another, or drop it"
        );
        assert!(require_per_label(&labels, &targets, 1, "training").is_ok());
    }

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
    fn the_version_names_the_training_inputs_not_the_weights() {
        let examples = |label: &str| {
            vec![
                Example { text: "我要退货".into(), label: label.into() },
                Example { text: "快递到哪了".into(), label: "track".into() },
            ]
        };
        let options = TrainOptions::default();
        let v = training_version(&examples("return"), "m3e-small", &options);
        assert_eq!(v.len(), 8);
        assert_eq!(v, training_version(&examples("return"), "m3e-small", &options));
        // Runtime-only settings do not change it; data, encoder and shaping options do.
        let runtime = TrainOptions { cache_capacity: 7, embed_batch_size: 3, ..options.clone() };
        assert_eq!(v, training_version(&examples("return"), "m3e-small", &runtime));
        assert_ne!(v, training_version(&examples("refund"), "m3e-small", &options));
        assert_ne!(v, training_version(&examples("return"), "all-minilm-l6-v2", &options));
        let seeded = TrainOptions { seed: options.seed + 1, ..options.clone() };
        assert_ne!(v, training_version(&examples("return"), "m3e-small", &seeded));
    }
}
