//! Scoring intent models: [`cross_validate`] (train and score per fold) and [`evaluate`] (a
//! trained model on labelled examples), both reported as an [`EvalReport`].

use super::data::{normalize_text, stratified_folds, Example};
use super::encoder::Encoder;
use super::fit;
use super::metrics::EvalReport;
use super::model::{to_prediction, IntentModel};
use super::train::{embed_all, index_labels, require_per_label, TrainOptions};
use crate::{Error, Result};

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
    require_per_label(&labels, &targets, folds, &format!("{folds}-fold cross-validation"))?;
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
        let fitted = fit::fit(
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

/// [`cross_validate`] with the encoder fine-tuned inside every fold (from the base `encoder`,
/// on the fold's training part only, into a temporary folder) before the head is fitted.
pub fn cross_validate_fine_tuned(
    examples: &[Example],
    encoder: &str,
    folds: usize,
    options: &TrainOptions,
    fine: &super::finetune::FineTuneOptions,
    progress: bool,
) -> Result<EvalReport> {
    let (labels, targets) = index_labels(examples)?;
    if folds < 2 || folds > examples.len() {
        return Err(Error::Training(format!("folds must be in 2..={}, got {folds}", examples.len())));
    }
    require_per_label(&labels, &targets, folds, &format!("{folds}-fold cross-validation"))?;
    let texts: Vec<String> = examples.iter().map(|e| normalize_text(&e.text)).collect();
    let fold_of = stratified_folds(&targets, folds, options.seed);
    let scratch = std::env::temp_dir().join(format!("switchboard-cv-{}-{}", std::process::id(), options.seed));
    let mut gold = Vec::with_capacity(examples.len());
    let mut predicted = Vec::with_capacity(examples.len());
    for fold in 0..folds {
        let train_idx: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] != fold).collect();
        let test_idx: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] == fold).collect();
        if test_idx.is_empty() {
            continue;
        }
        let part: Vec<Example> = train_idx.iter().map(|&i| examples[i].clone()).collect();
        let dir = scratch.join(format!("fold-{fold}"));
        super::finetune::fine_tune(&part, encoder, &dir, fine, options.seed, progress)?;
        let tuned = Encoder::load(&dir)?;
        let embeddings = embed_all(&tuned, &texts, options.embed_batch_size, false)?;
        let part_targets: Vec<usize> = targets.clone();
        let fitted = fit::fit(&embeddings, &part_targets, &train_idx, tuned.dim(), labels.len(), &options.fit_options(), false)?;
        let test_x: Vec<Vec<f32>> = test_idx.iter().map(|&i| embeddings[i].clone()).collect();
        for (row, &i) in fitted.head.logits(&test_x)?.iter().zip(&test_idx) {
            gold.push(examples[i].label.clone());
            predicted.push(to_prediction(row, fitted.temperature, &labels).label);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&scratch);
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
