//! The out-of-scope signal (distance to the class centroids, `intent::scope`) against the
//! softmax confidence alone, on the shipped Chinese demo data: a model trained on
//! `train.zh.jsonl` with and without it, scored at the handoff threshold 0.75 on the held-out
//! `test.zh.jsonl` (coverage, accuracy of what is answered) and on `oos.zh.jsonl` (the share of
//! out-of-scope turns handed off or clarified: confidence below the threshold). Prints the
//! figures (README, "Intent recognition"); requires the signal to hand off more of the
//! out-of-scope turns while what is answered stays at least as accurate.
//!
//! Needs the m3e-small encoder (`deploy/models/fetch.sh` or `SWITCHBOARD_MODELS`). With
//! `SWITCHBOARD_OOS_ENCODER=DIR` the same is measured in another encoder's space, e.g. the
//! `encoder/` of a model made by `intent train --fine-tune` (README, the fine-tuned rows).

use std::path::PathBuf;
use std::sync::Arc;
use switchboard_operators::intent::{
    load_examples, resolve_model_dir, threshold_point, train_with_encoder, Encoder, Example, IntentModel, TrainOptions,
};

const HANDOFF_THRESHOLD: f32 = 0.75;

fn data(name: &str) -> Vec<Example> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/intents").join(name);
    load_examples(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Figures {
    coverage: f64,
    answered_accuracy: f64,
    oos_handled: f64,
}

fn figures(model: &IntentModel, test: &[Example], oos: &[Example]) -> Figures {
    let texts: Vec<&str> = test.iter().map(|e| e.text.as_str()).collect();
    let gold: Vec<&str> = test.iter().map(|e| e.label.as_str()).collect();
    let point = threshold_point(&model.classify(&texts).expect("classify"), &gold, HANDOFF_THRESHOLD);
    let oos_texts: Vec<&str> = oos.iter().map(|e| e.text.as_str()).collect();
    let handled = model.classify(&oos_texts).expect("classify").iter().filter(|p| p.confidence < HANDOFF_THRESHOLD).count();
    Figures { coverage: point.coverage, answered_accuracy: point.accuracy, oos_handled: handled as f64 / oos.len() as f64 }
}

#[test]
fn the_centroid_signal_hands_off_more_out_of_scope_turns() {
    if std::env::var_os("SWITCHBOARD_MODELS").is_none() {
        std::env::set_var("SWITCHBOARD_MODELS", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    }
    let (train, test, oos) = (data("train.zh.jsonl"), data("test.zh.jsonl"), data("oos.zh.jsonl"));
    let (name, dir) = match std::env::var("SWITCHBOARD_OOS_ENCODER") {
        Ok(dir) if !dir.is_empty() => (dir.clone(), PathBuf::from(dir)),
        _ => ("m3e-small".to_string(), resolve_model_dir("m3e-small")),
    };
    let encoder = Arc::new(Encoder::load(&dir).unwrap_or_else(|e| panic!("encoder {}: {e} (deploy/models/fetch.sh)", dir.display())));
    let plain = TrainOptions::default();
    let (confidence_only, _) = train_with_encoder(&train, encoder.clone(), &name, &plain, false).expect("train");
    let mut rows = Vec::new();
    let base = figures(&confidence_only, &test, &oos);
    rows.push(("confidence only".to_string(), base.coverage, base.answered_accuracy, base.oos_handled));
    let mut best = None;
    for keep in [0.99, 0.97, 0.95, 0.90] {
        let options = TrainOptions { in_scope_keep: Some(keep), ..plain.clone() };
        let (model, _) = train_with_encoder(&train, encoder.clone(), &name, &options, false).expect("train");
        let threshold = model.scope().expect("the model has the signal").threshold;
        let f = figures(&model, &test, &oos);
        rows.push((format!("+ centroids, keep {keep} (threshold {threshold:.3})"), f.coverage, f.answered_accuracy, f.oos_handled));
        if keep == 0.95 {
            best = Some(f);
        }
    }
    eprintln!("zh, encoder {name}, handoff threshold {HANDOFF_THRESHOLD}: coverage of test.zh / accuracy answered / oos.zh handed off or clarified");
    for (name, coverage, accuracy, handled) in &rows {
        eprintln!("| {name} | {coverage:.3} | {accuracy:.3} | {handled:.3} |");
    }
    let with = best.expect("keep 0.95 measured");
    assert!(with.oos_handled > base.oos_handled, "the signal must hand off more out-of-scope turns ({:.3} vs {:.3})", with.oos_handled, base.oos_handled);
    assert!(with.answered_accuracy >= base.answered_accuracy - 0.005, "and keep what is answered as accurate");
}
