//! Trains the intent classifier on `operators/data/intents/train.<lang>.jsonl`, scores it on
//! `test.<lang>.jsonl`, and compares confidences on `oos.<lang>.jsonl`.
//!
//! ```text
//! cargo run --release -p switchboard-operators --example intent_eval -- zh m3e-small \
//!     [--hidden N] [--lr X] [--wd X] [--prior X] [--epochs N] [--patience N] [--cv K] [--save DIR]
//! ```

use std::path::Path;
use std::sync::Arc;
use switchboard_operators::intent::classifier::{
    cross_validate, evaluate, load_examples, pick_threshold, threshold_curve, train_with_encoder,
    TrainOptions,
};
use switchboard_operators::intent::{resolve_model_dir, Encoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lang = args.first().map(String::as_str).unwrap_or("zh");
    let encoder_name = args.get(1).map(String::as_str).unwrap_or(if lang == "zh" {
        "m3e-small"
    } else {
        "all-minilm-l6-v2"
    });
    let mut options = TrainOptions::default();
    let (mut cv, mut save) = (0usize, None::<String>);
    let mut i = 2;
    while i + 1 < args.len() {
        let value = &args[i + 1];
        match args[i].as_str() {
            "--hidden" => options.hidden = value.parse()?,
            "--lr" => options.learning_rate = value.parse()?,
            "--wd" => options.weight_decay = value.parse()?,
            "--prior" => options.temperature_prior = value.parse()?,
            "--epochs" => options.max_epochs = value.parse()?,
            "--patience" => options.patience = value.parse()?,
            "--seed" => options.seed = value.parse()?,
            "--cv" => cv = value.parse()?,
            "--save" => save = Some(value.clone()),
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/intents");
    let train_set = load_examples(data.join(format!("train.{lang}.jsonl")))?;
    let test_set = load_examples(data.join(format!("test.{lang}.jsonl")))?;
    let oos_set = load_examples(data.join(format!("oos.{lang}.jsonl")))?;
    let started = std::time::Instant::now();
    let encoder = Arc::new(Encoder::load(&resolve_model_dir(encoder_name))?);
    println!(
        "encoder {encoder_name} (dim {}) loaded in {:.1}s",
        encoder.dim(),
        started.elapsed().as_secs_f64()
    );
    println!("options {}", serde_json::to_string(&options)?);

    let (model, report) =
        train_with_encoder(&train_set, encoder.clone(), encoder_name, &options, true)?;
    println!("train {}", serde_json::to_string(&report)?);
    println!("version {}", model.version());

    let started = std::time::Instant::now();
    let eval = evaluate(&model, &test_set)?;
    println!(
        "test: n={} accuracy={:.4} macro_f1={:.4} ({:.1}s)",
        eval.n,
        eval.accuracy,
        eval.macro_f1,
        started.elapsed().as_secs_f64()
    );
    let mut worst: Vec<_> = eval
        .per_label
        .iter()
        .filter(|(_, s)| s.support > 0)
        .collect();
    worst.sort_by(|a, b| a.1.f1.total_cmp(&b.1.f1));
    for (label, s) in worst.iter().take(5) {
        println!(
            "  weakest {label}: p={:.2} r={:.2} f1={:.2}",
            s.precision, s.recall, s.f1
        );
    }

    let test_texts: Vec<&str> = test_set.iter().map(|e| e.text.as_str()).collect();
    let oos_texts: Vec<&str> = oos_set.iter().map(|e| e.text.as_str()).collect();
    let test_pred = model.classify(&test_texts)?;
    let oos_pred = model.classify(&oos_texts)?;
    let mean = |p: &[switchboard_operators::intent::Prediction]| {
        p.iter().map(|p| f64::from(p.confidence)).sum::<f64>() / p.len().max(1) as f64
    };
    let below = |p: &[switchboard_operators::intent::Prediction], t: f32| {
        p.iter().filter(|p| p.confidence < t).count() as f64 / p.len().max(1) as f64
    };
    let correct: Vec<_> = test_pred
        .iter()
        .zip(&test_set)
        .filter(|(p, e)| p.label == e.label)
        .map(|(p, _)| p.clone())
        .collect();
    let wrong: Vec<_> = test_pred
        .iter()
        .zip(&test_set)
        .filter(|(p, e)| p.label != e.label)
        .map(|(p, _)| p.clone())
        .collect();
    println!(
        "confidence: T={:.3} | test mean {:.3} (correct {:.3}, wrong {:.3}), below 0.5: {:.3} | oos mean {:.3}, below 0.5: {:.3}",
        model.temperature(),
        mean(&test_pred),
        mean(&correct),
        mean(&wrong),
        below(&test_pred, 0.5),
        mean(&oos_pred),
        below(&oos_pred, 0.5),
    );

    // Hand-off trade-off on test ∪ oos (an answered oos utterance counts as wrong).
    let mut all_pred = test_pred.clone();
    all_pred.extend(oos_pred.iter().cloned());
    let gold: Vec<&str> = test_set
        .iter()
        .chain(&oos_set)
        .map(|e| e.label.as_str())
        .collect();
    let thresholds: Vec<f32> = (1..=19).map(|i| i as f32 * 0.05).collect();
    let curve = threshold_curve(&all_pred, &gold, &thresholds);
    for p in curve
        .iter()
        .filter(|p| ((p.threshold * 20.0).round() as i32) % 2 == 0)
    {
        println!(
            "  t={:.2}: coverage {:.3} accuracy {:.3} (answered {}/{}) oos answered {}",
            p.threshold,
            p.coverage,
            p.accuracy,
            p.answered,
            p.n,
            oos_pred
                .iter()
                .filter(|o| o.confidence >= p.threshold)
                .count()
        );
    }
    for target in [0.95, 0.98] {
        if let Some(p) = pick_threshold(&curve, target) {
            println!(
                "  lowest threshold with accuracy ≥ {target}: {:.2} (coverage {:.3})",
                p.threshold, p.coverage
            );
        }
    }

    if cv >= 2 {
        let started = std::time::Instant::now();
        let report = cross_validate(&train_set, &encoder, cv, &options)?;
        println!(
            "{cv}-fold CV on train: accuracy={:.4} macro_f1={:.4} ({:.1}s)",
            report.accuracy,
            report.macro_f1,
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = save {
        model.save(&dir)?;
        println!("saved to {dir}");
    }
    Ok(())
}
