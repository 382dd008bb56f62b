//! Fine-tuning the encoder together with an intent head, in Rust with candle's autograd.
//!
//! The base encoder's weights become trainable variables of a BERT built from differentiable
//! operations ([`super::trainable_bert`]; all layers, or only the upper
//! [`FineTuneOptions::layers`]); a cosine classifier over the mean-pooled, L2-normalised
//! embedding (the inference path's sentence embedding) is initialised at the class centroids and
//! trained with them by AdamW on cross-entropy, with early stopping on a stratified validation
//! split. The best epoch's encoder is written as a model folder (`config.json`, the tokenizer,
//! `model.safetensors`) that [`Encoder::load`](super::Encoder::load) reads like any other, so
//! the packed CPU path and the padded candle path both serve it; the intent head and its
//! temperature are then fitted on the new embeddings as for a frozen encoder
//! ([`train_fine_tuned`]). Deterministic for a seed on one machine.

use super::data::{normalize_text, stratified_folds, Example};
use super::encoder::{mean_pool_normalised, padded_batch, resolve_model_dir, MAX_TOKENS};
use super::train::index_labels;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use super::trainable_bert::{Sizes, TrainableBert};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The folder, inside a fine-tuned intent model's folder, that holds its encoder.
pub const ENCODER_DIR: &str = "encoder";

/// How the encoder is fine-tuned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FineTuneOptions {
    /// Upper transformer layers trained (0: all layers and the embeddings).
    pub layers: usize,
    /// Upper bound on epochs over the training split.
    pub epochs: usize,
    /// AdamW learning rate of the encoder (the classifier gets 20×).
    pub learning_rate: f64,
    /// Texts per step.
    pub batch_size: usize,
    /// Epochs without a validation-loss improvement before stopping.
    pub patience: usize,
    /// Scale of the cosine logits.
    pub scale: f64,
    /// Share of each label held out for early stopping (labels with ≥ 3 examples).
    pub validation_fraction: f64,
}

impl Default for FineTuneOptions {
    fn default() -> Self {
        FineTuneOptions { layers: 0, epochs: 6, learning_rate: 1e-4, batch_size: 16, patience: 2, scale: 20.0, validation_fraction: 0.15 }
    }
}

/// What [`fine_tune`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneReport {
    /// Examples trained on and held out.
    pub n_train: usize,
    /// Examples held out for early stopping.
    pub n_validation: usize,
    /// Epochs run, and the one whose weights were kept.
    pub epochs_run: usize,
    /// The kept epoch (0: the base encoder was best).
    pub best_epoch: usize,
    /// Validation accuracy of the cosine classifier before (centroids of the base encoder) and
    /// after fine-tuning.
    pub validation_accuracy_before: Option<f64>,
    /// After.
    pub validation_accuracy_after: Option<f64>,
    /// Parameters trained.
    pub trained_parameters: usize,
    /// Seconds spent.
    pub seconds: f64,
}

/// The base encoder's weights as trainable variables.
struct Trainable {
    model: TrainableBert,
    varmap: VarMap,
    tokenizer: Tokenizer,
    device: Device,
}

fn model_error(dir: &Path, message: impl Into<String>) -> Error {
    Error::Model { dir: dir.to_path_buf(), message: message.into() }
}

/// The weights of a model folder, by name without a `bert.`-style prefix.
fn read_weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let safetensors = dir.join("model.safetensors");
    let pth = dir.join("pytorch_model.bin");
    let raw: Vec<(String, Tensor)> = if safetensors.exists() {
        candle_core::safetensors::load(&safetensors, device)?.into_iter().collect()
    } else if pth.exists() {
        candle_core::pickle::read_all(&pth)?
    } else {
        return Err(model_error(dir, "neither model.safetensors nor pytorch_model.bin found"));
    };
    Ok(raw
        .into_iter()
        .map(|(name, tensor)| {
            let name = ["bert.", "roberta."].iter().find_map(|p| name.strip_prefix(p)).map(str::to_string).unwrap_or(name);
            (name, tensor)
        })
        .collect())
}

impl Trainable {
    fn load(dir: &Path) -> Result<(Trainable, String)> {
        let device = Device::Cpu;
        let config_text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| model_error(dir, format!("config.json: {e}")))?;
        let config: serde_json::Value = serde_json::from_str(&config_text).map_err(|e| model_error(dir, format!("config.json: {e}")))?;
        let sizes = Sizes::from_config(&config).ok_or_else(|| model_error(dir, "config.json is not a BERT config"))?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = TrainableBert::load(vb, sizes)?;
        let weights = read_weights(dir, &device)?;
        for (name, var) in varmap.data().lock().map_err(|_| model_error(dir, "weights lock poisoned"))?.iter() {
            let tensor = weights.get(name).ok_or_else(|| model_error(dir, format!("the weights lack {name}")))?;
            var.set(&tensor.to_dtype(DType::F32)?)?;
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| model_error(dir, format!("tokenizer.json: {e}")))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, pad_id, pad_token: "[PAD]".into(), ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| model_error(dir, format!("tokenizer truncation: {e}")))?;
        Ok((Trainable { model, varmap, tokenizer, device }, config_text))
    }

    /// Mean-pooled, L2-normalised embeddings of `texts`, `(n, dim)`, on the autograd graph.
    fn embed(&self, texts: &[&str]) -> Result<Tensor> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let (ids, types, mask) = padded_batch(&encodings, &self.device)?;
        let hidden = self.model.forward(&ids, &types, &mask)?;
        Ok(mean_pool_normalised(&hidden, &mask)?)
    }

    /// Embeddings of many texts, off the graph.
    fn embed_detached(&self, texts: &[String], batch: usize) -> Result<Tensor> {
        let mut parts = Vec::new();
        for chunk in texts.chunks(batch.max(1)) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            parts.push(self.embed(&refs)?.detach());
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The variables trained for `layers` upper layers (0: all), by name.
    fn trained_vars(&self, layers: usize, total_layers: usize) -> Result<Vec<(String, Var)>> {
        let data = self.varmap.data().lock().map_err(|_| Error::Training("weights lock poisoned".into()))?;
        let first = total_layers.saturating_sub(layers);
        let mut vars: Vec<(String, Var)> = data
            .iter()
            .filter(|(name, _)| {
                layers == 0
                    || name
                        .strip_prefix("encoder.layer.")
                        .and_then(|rest| rest.split('.').next())
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| n >= first)
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(vars)
    }

    fn snapshot(vars: &[(String, Var)]) -> Result<Vec<Tensor>> {
        Ok(vars.iter().map(|(_, v)| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>()?)
    }

    /// Writes the encoder as a model folder: its config, tokenizer files and weights.
    fn save(&self, base: &Path, config_text: &str, out: &Path) -> Result<()> {
        let io = |path: PathBuf| move |source| Error::Io { path, source };
        std::fs::create_dir_all(out).map_err(io(out.to_path_buf()))?;
        std::fs::write(out.join("config.json"), config_text).map_err(io(out.join("config.json")))?;
        for file in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"] {
            if base.join(file).exists() {
                std::fs::copy(base.join(file), out.join(file)).map_err(io(out.join(file)))?;
            }
        }
        let data = self.varmap.data().lock().map_err(|_| Error::Training("weights lock poisoned".into()))?;
        let tensors: HashMap<String, Tensor> = data.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        let tmp = out.join("model.safetensors.tmp");
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, out.join("model.safetensors")).map_err(io(out.join("model.safetensors")))?;
        Ok(())
    }
}

fn normalize_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let norms = x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norms)
}

/// Per-class mean of `embeddings` (rows `idx`), normalised: `(labels, dim)`.
fn centroids(embeddings: &Tensor, targets: &[usize], idx: &[usize], labels: usize) -> Result<Tensor> {
    let dim = embeddings.dim(1)?;
    let rows = embeddings.to_vec2::<f32>()?;
    let mut sums = vec![vec![0f32; dim]; labels];
    for &i in idx {
        for (s, x) in sums[targets[i]].iter_mut().zip(&rows[i]) {
            *s += x;
        }
    }
    let flat: Vec<f32> = sums.into_iter().flatten().collect();
    Ok(normalize_rows(&Tensor::from_vec(flat, (labels, dim), embeddings.device())?)?)
}

/// Loss and accuracy of the cosine classifier `weights` on rows `idx` of `embeddings`.
fn score(embeddings: &Tensor, weights: &Tensor, targets: &[usize], idx: &[usize], scale: f64) -> Result<(f64, f64)> {
    if idx.is_empty() {
        return Ok((0.0, 0.0));
    }
    let rows = Tensor::from_vec(idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), idx.len(), embeddings.device())?;
    let x = embeddings.index_select(&rows, 0)?;
    let logits = (x.matmul(&normalize_rows(weights)?.t()?)? * scale)?;
    let gold = Tensor::from_vec(idx.iter().map(|&i| targets[i] as u32).collect::<Vec<_>>(), idx.len(), embeddings.device())?;
    let loss = candle_nn::loss::cross_entropy(&logits, &gold)?.to_scalar::<f32>()? as f64;
    let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let correct = predicted.iter().zip(idx).filter(|(p, &i)| **p as usize == targets[i]).count();
    Ok((loss, correct as f64 / idx.len() as f64))
}

/// Fine-tunes the encoder `base` (a name or folder) on `examples` and writes it to `out` as a
/// model folder. `seed` fixes the split, the shuffles and so the result.
pub fn fine_tune(examples: &[Example], base: &str, out: &Path, options: &FineTuneOptions, seed: u64, progress: bool) -> Result<FineTuneReport> {
    let started = Instant::now();
    let (labels, targets) = index_labels(examples)?;
    let base_dir = resolve_model_dir(base);
    let (trainable, config_text) = Trainable::load(&base_dir)?;
    let total_layers = serde_json::from_str::<serde_json::Value>(&config_text)
        .ok()
        .and_then(|v| v["num_hidden_layers"].as_u64())
        .unwrap_or(0) as usize;
    let texts: Vec<String> = examples.iter().map(|e| normalize_text(&e.text)).collect();
    // Stratified split: fold 0 of round(1 / fraction) folds is the validation set.
    let folds = if options.validation_fraction > 0.0 { (1.0 / options.validation_fraction).round().max(2.0) as usize } else { 0 };
    let fold_of = if folds > 0 { stratified_folds(&targets, folds, seed) } else { vec![1; examples.len()] };
    let mut per_label = vec![0usize; labels.len()];
    for &t in &targets {
        per_label[t] += 1;
    }
    let validation: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] == 0 && per_label[targets[i]] >= 3).collect();
    let train: Vec<usize> = (0..examples.len()).filter(|i| !validation.contains(i)).collect();

    let frozen = trainable.embed_detached(&texts, 64)?;
    let head = Var::from_tensor(&centroids(&frozen, &targets, &train, labels.len())?)?;
    let (mut best_loss, before) = score(&frozen, head.as_tensor(), &targets, &validation, options.scale)?;
    let vars = trainable.trained_vars(options.layers, total_layers)?;
    let trained_parameters = vars.iter().map(|(_, v)| v.elem_count()).sum::<usize>() + head.elem_count();
    let params = |lr: f64| ParamsAdamW { lr, weight_decay: 0.01, ..Default::default() };
    let mut encoder_opt = AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), params(options.learning_rate))?;
    let mut head_opt = AdamW::new(vec![head.clone()], params(options.learning_rate * 20.0))?;
    let mut best = (Trainable::snapshot(&vars)?, head.as_tensor().copy()?, 0usize);
    let mut after = None;
    let steps_per_epoch = train.len().div_ceil(options.batch_size.max(1));
    let bar = if progress { ProgressBar::new((steps_per_epoch * options.epochs) as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("fine-tuning {bar:40} {pos}/{len} steps {elapsed} (ETA {eta}) {msg}") {
        bar.set_style(style);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut epochs_run = 0;
    let mut since_best = 0;
    for epoch in 1..=options.epochs {
        epochs_run = epoch;
        let mut order = train.clone();
        order.shuffle(&mut rng);
        for batch in order.chunks(options.batch_size.max(1)) {
            let refs: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            let x = trainable.embed(&refs)?;
            let logits = (x.matmul(&normalize_rows(head.as_tensor())?.t()?)? * options.scale)?;
            let gold = Tensor::from_vec(batch.iter().map(|&i| targets[i] as u32).collect::<Vec<_>>(), batch.len(), &trainable.device)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &gold)?;
            let grads = loss.backward()?;
            encoder_opt.step(&grads)?;
            head_opt.step(&grads)?;
            bar.inc(1);
        }
        if validation.is_empty() {
            best = (Trainable::snapshot(&vars)?, head.as_tensor().copy()?, epoch);
            continue;
        }
        let tuned = trainable.embed_detached(&texts, 64)?;
        let (loss, accuracy) = score(&tuned, head.as_tensor(), &targets, &validation, options.scale)?;
        bar.set_message(format!("epoch {epoch}: validation loss {loss:.3}, accuracy {accuracy:.3}"));
        if loss < best_loss {
            best_loss = loss;
            after = Some(accuracy);
            best = (Trainable::snapshot(&vars)?, head.as_tensor().copy()?, epoch);
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= options.patience {
                break;
            }
        }
    }
    bar.finish_and_clear();
    for ((_, var), saved) in vars.iter().zip(&best.0) {
        var.set(saved)?;
    }
    trainable.save(&base_dir, &config_text, out)?;
    Ok(FineTuneReport {
        n_train: train.len(),
        n_validation: validation.len(),
        epochs_run,
        best_epoch: best.2,
        validation_accuracy_before: (!validation.is_empty()).then_some(before),
        validation_accuracy_after: if validation.is_empty() { None } else { Some(after.unwrap_or(before)) },
        trained_parameters,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trainable encoder computes what the inference encoder computes (before training), so
    /// what it learns is what inference will see. Needs the m3e-small model (`deploy/models/fetch.sh`).
    #[test]
    fn the_trainable_encoder_embeds_like_the_inference_encoder() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/m3e-small");
        let (trainable, _) = Trainable::load(&dir).expect("m3e-small (deploy/models/fetch.sh)");
        let inference = super::super::Encoder::load(&dir).expect("encoder");
        let texts = ["我要退货", "喂，那个我的快递到底啥时候到啊", "不是退货，是换货"];
        let trained = trainable.embed(&texts).expect("embed").to_vec2::<f32>().expect("rows");
        let served = inference.embed(&texts).expect("embed");
        for (a, b) in trained.iter().zip(&served) {
            let gap = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(gap < 1e-4, "the embeddings differ by {gap}");
        }
    }
}
