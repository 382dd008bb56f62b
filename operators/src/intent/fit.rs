//! Fitting a classification [`Head`] on frozen sentence embeddings with candle-nn's AdamW
//! (early stopping on a stratified validation split), plus temperature scaling. Everything here
//! runs on the CPU: the head is tiny.

use super::data::stratified_split;
use super::head::{matrix, Head};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Hyper-parameters of the head's optimisation (the public `TrainOptions` carries them).
#[derive(Debug, Clone)]
pub(crate) struct FitOptions {
    pub hidden: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub patience: usize,
    pub validation_fraction: f64,
    pub seed: u64,
    pub temperature_prior: f64,
}

/// What fitting a head produced.
pub(crate) struct Fitted {
    pub head: Head,
    pub temperature: f64,
    pub n_train: usize,
    pub n_validation: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub train_accuracy: f64,
    pub validation_accuracy: Option<f64>,
    pub validation_nll: Option<f64>,
    pub validation_nll_calibrated: Option<f64>,
}

/// Mean negative log-likelihood of `targets` under `softmax(logits / temperature)`.
pub(crate) fn mean_nll(logits: &[Vec<f32>], targets: &[usize], temperature: f64) -> f64 {
    if logits.is_empty() {
        return 0.0;
    }
    let total: f64 = logits
        .iter()
        .zip(targets)
        .map(|(row, &t)| {
            let scaled: Vec<f64> = row.iter().map(|&z| f64::from(z) / temperature).collect();
            let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + scaled.iter().map(|z| (z - max).exp()).sum::<f64>().ln();
            lse - scaled[t]
        })
        .sum();
    total / logits.len() as f64
}

/// Range searched for the temperature.
pub(crate) const MIN_TEMPERATURE: f64 = 0.05;
/// Range searched for the temperature.
pub(crate) const MAX_TEMPERATURE: f64 = 20.0;

/// The temperature minimising `n · mean NLL + prior · (ln T)²` over
/// `[MIN_TEMPERATURE, MAX_TEMPERATURE]`: a grid over ln T, then golden-section refinement
/// around the best grid point. `prior = 0` is plain NLL minimisation; a small prior only
/// matters when the validation set is tiny (a perfectly separated handful of examples would
/// otherwise drive T to the lower bound). No examples give T = 1.
pub(crate) fn fit_temperature(logits: &[Vec<f32>], targets: &[usize], prior: f64) -> f64 {
    if logits.is_empty() {
        return 1.0;
    }
    let n = logits.len() as f64;
    let objective = |u: f64| n * mean_nll(logits, targets, u.exp()) + prior * u * u;
    let (lo, hi) = (MIN_TEMPERATURE.ln(), MAX_TEMPERATURE.ln());
    const STEPS: usize = 120;
    let step = (hi - lo) / STEPS as f64;
    let (mut best_u, mut best) = (0.0, objective(0.0));
    for i in 0..=STEPS {
        let u = lo + step * i as f64;
        let v = objective(u);
        if v < best {
            best = v;
            best_u = u;
        }
    }
    let (mut a, mut b) = ((best_u - step).max(lo), (best_u + step).min(hi));
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..40 {
        let c = b - ratio * (b - a);
        let d = a + ratio * (b - a);
        if objective(c) < objective(d) {
            b = d;
        } else {
            a = c;
        }
    }
    let u = (a + b) / 2.0;
    if objective(u) <= best {
        u.exp()
    } else {
        best_u.exp()
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

fn accuracy(logits: &[Vec<f32>], targets: &[usize]) -> f64 {
    if logits.is_empty() {
        return 0.0;
    }
    let correct = logits
        .iter()
        .zip(targets)
        .filter(|(row, &t)| argmax(row) == t)
        .count();
    correct as f64 / logits.len() as f64
}

/// Trains a head on `embeddings[i]`, `targets[i]` for `i` in `subset`: a stratified
/// validation split (see [`stratified_split`]) drives early stopping on validation NLL (the
/// best epoch's weights are kept) and then the temperature fit. Without validation examples
/// (every label has fewer than 3) training runs `max_epochs` and T = 1.
pub(crate) fn fit(
    embeddings: &[Vec<f32>],
    targets: &[usize],
    subset: &[usize],
    dim: usize,
    n_labels: usize,
    options: &FitOptions,
    progress: bool,
) -> Result<Fitted> {
    if options.batch_size == 0 || options.max_epochs == 0 {
        return Err(Error::Training(
            "batch_size and max_epochs must be positive".into(),
        ));
    }
    if !(options.learning_rate > 0.0 && options.learning_rate.is_finite()) {
        return Err(Error::Training(format!(
            "learning_rate must be positive, got {}",
            options.learning_rate
        )));
    }
    if !(0.0..0.9).contains(&options.validation_fraction) {
        return Err(Error::Training(format!(
            "validation_fraction must be in [0, 0.9), got {}",
            options.validation_fraction
        )));
    }
    let subset_targets: Vec<usize> = subset.iter().map(|&i| targets[i]).collect();
    let (train_pos, val_pos) =
        stratified_split(&subset_targets, options.validation_fraction, options.seed);
    let train_idx: Vec<usize> = train_pos.iter().map(|&p| subset[p]).collect();
    let val_idx: Vec<usize> = val_pos.iter().map(|&p| subset[p]).collect();
    if train_idx.is_empty() {
        return Err(Error::Training("no training examples".into()));
    }

    let device = Device::Cpu;
    let x_train = matrix(train_idx.iter().map(|&i| &embeddings[i]), dim)?;
    let y_train_vec: Vec<u32> = train_idx.iter().map(|&i| targets[i] as u32).collect();
    let y_train = Tensor::from_vec(y_train_vec.clone(), train_idx.len(), &device)?;
    let y_val_usize: Vec<usize> = val_idx.iter().map(|&i| targets[i]).collect();
    let val_x: Vec<Vec<f32>> = val_idx.iter().map(|&i| embeddings[i].clone()).collect();

    let head = Head::init(dim, options.hidden, n_labels, options.seed)?;
    let params = ParamsAdamW {
        lr: options.learning_rate,
        weight_decay: options.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut optimizer = candle_nn::AdamW::new(head.vars(), params)?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut order: Vec<u32> = (0..train_idx.len() as u32).collect();

    let bar = if progress {
        ProgressBar::new(options.max_epochs as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("training head {bar:40} {pos}/{len} epochs {msg}")
    {
        bar.set_style(style);
    }

    let has_val = !val_idx.is_empty();
    let mut best = (f64::INFINITY, 0usize, head.snapshot()?);
    let mut epochs_run = 0;
    for epoch in 1..=options.max_epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(options.batch_size) {
            let idx = Tensor::from_vec(chunk.to_vec(), chunk.len(), &device)?;
            let xb = x_train.index_select(&idx, 0)?;
            let yb = y_train.index_select(&idx, 0)?;
            let loss = candle_nn::loss::cross_entropy(&head.forward(&xb)?, &yb)?;
            optimizer.backward_step(&loss)?;
        }
        epochs_run = epoch;
        bar.inc(1);
        if has_val {
            let val_loss = mean_nll(&head.logits(&val_x)?, &y_val_usize, 1.0);
            bar.set_message(format!("val nll {val_loss:.4}"));
            if val_loss < best.0 - 1e-5 {
                best = (val_loss, epoch, head.snapshot()?);
            } else if epoch - best.1 >= options.patience {
                break;
            }
        }
    }
    let best_epoch = if has_val {
        head.restore(&best.2)?;
        best.1
    } else {
        epochs_run
    };
    bar.finish_and_clear();

    let train_logits = head.forward(&x_train)?.to_vec2::<f32>()?;
    let train_targets: Vec<usize> = y_train_vec.iter().map(|&t| t as usize).collect();
    let (temperature, validation_accuracy, validation_nll, validation_nll_calibrated) = if has_val {
        let val_logits = head.logits(&val_x)?;
        let t = fit_temperature(&val_logits, &y_val_usize, options.temperature_prior);
        (
            t,
            Some(accuracy(&val_logits, &y_val_usize)),
            Some(mean_nll(&val_logits, &y_val_usize, 1.0)),
            Some(mean_nll(&val_logits, &y_val_usize, t)),
        )
    } else {
        (1.0, None, None, None)
    };
    Ok(Fitted {
        train_accuracy: accuracy(&train_logits, &train_targets),
        head,
        temperature,
        n_train: train_idx.len(),
        n_validation: val_idx.len(),
        epochs_run,
        best_epoch,
        validation_accuracy,
        validation_nll,
        validation_nll_calibrated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_recovers_overconfidence() {
        // Logits that are 3x too sharp for a 70%-accurate classifier.
        let mut logits = Vec::new();
        let mut targets = Vec::new();
        for i in 0..100 {
            logits.push(vec![6.0, 0.0]);
            targets.push(if i < 70 { 0 } else { 1 });
        }
        let t = fit_temperature(&logits, &targets, 0.0);
        // Optimum: softmax(6/T) = 0.7 -> 6/T = ln(7/3).
        let want = 6.0 / (7.0f64 / 3.0).ln();
        assert!((t - want).abs() < 1e-3, "{t} vs {want}");
    }

    #[test]
    fn fits_separable_blobs() {
        let mut emb = Vec::new();
        let mut y = Vec::new();
        for i in 0..60 {
            let label = i % 3;
            let mut v = vec![0.05f32 * ((i * 7 % 5) as f32); 8];
            v[label] += 1.0;
            emb.push(v);
            y.push(label);
        }
        let subset: Vec<usize> = (0..60).collect();
        for hidden in [0, 16] {
            let options = FitOptions {
                hidden,
                learning_rate: 0.02,
                weight_decay: 0.01,
                batch_size: 16,
                max_epochs: 200,
                patience: 20,
                validation_fraction: 0.15,
                seed: 1,
                temperature_prior: 0.0,
            };
            let fitted = fit(&emb, &y, &subset, 8, 3, &options, false).expect("fit");
            assert_eq!(fitted.train_accuracy, 1.0);
            assert_eq!(fitted.n_validation, 9);
            assert!(fitted.temperature > 0.0);
        }
    }
}
