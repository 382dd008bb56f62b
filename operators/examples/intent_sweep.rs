//! Hyper-parameter comparison for the intent head: embeds `train/test/oos.<lang>.jsonl` once
//! (cached under the system temp dir), then trains one head per configuration.
//!
//! ```text
//! cargo run -p switchboard-operators --example intent_sweep -- zh m3e-small "h=0,lr=0.01" "h=256,lr=0.003,wd=0.1"
//! ```
//! Keys: `h` hidden, `lr`, `wd`, `p` temperature prior, `e` max epochs, `pat` patience,
//! `bs` batch size, `seed`.

use std::path::Path;
use std::sync::Arc;
use switchboard_operators::intent::classifier::{
    load_examples, normalize_text, train_on_embeddings, EvalReport, Example, Prediction,
    TrainOptions,
};
use switchboard_operators::intent::{resolve_model_dir, Encoder};

type Matrix = Vec<Vec<f32>>;

fn embed(encoder: &Encoder, examples: &[Example]) -> Result<Matrix, Box<dyn std::error::Error>> {
    let texts: Vec<String> = examples.iter().map(|e| normalize_text(&e.text)).collect();
    let mut out = Vec::new();
    for chunk in texts.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(encoder.embed(&refs)?);
    }
    Ok(out)
}

/// Area under the ROC curve of "confidence separates in-domain (positive) from oos".
fn auroc(inside: &[f32], outside: &[f32]) -> f64 {
    let mut wins = 0.0;
    for a in inside {
        for b in outside {
            wins += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (inside.len() * outside.len()).max(1) as f64
}

/// Expected calibration error over 10 equal-width bins.
fn ece(predictions: &[Prediction], gold: &[&str]) -> f64 {
    let mut bins = [(0usize, 0.0f64, 0usize); 10];
    for (p, g) in predictions.iter().zip(gold) {
        let b = ((p.confidence * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += f64::from(p.confidence);
        bins[b].2 += usize::from(p.label == *g);
    }
    let n = predictions.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.0 > 0)
        .map(|&(count, conf, correct)| {
            (conf / count as f64 - correct as f64 / count as f64).abs() * count as f64 / n
        })
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lang = args.first().cloned().unwrap_or_else(|| "zh".into());
    let encoder_name = args.get(1).cloned().unwrap_or_else(|| "m3e-small".into());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/intents");
    let load = |kind: &str| load_examples(data.join(format!("{kind}.{lang}.jsonl")));
    let (train, test, oos) = (load("train")?, load("test")?, load("oos")?);
    let encoder = Arc::new(Encoder::load(&resolve_model_dir(&encoder_name))?);

    let cache =
        std::env::temp_dir().join(format!("switchboard-intent-emb-{lang}-{encoder_name}.json"));
    let cached: Option<(Matrix, Matrix, Matrix)> = std::fs::read_to_string(&cache)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let (train_x, test_x, oos_x) = match cached {
        Some(c)
            if c.0.len() == train.len() && c.1.len() == test.len() && c.2.len() == oos.len() =>
        {
            c
        }
        _ => {
            let started = std::time::Instant::now();
            let c = (
                embed(&encoder, &train)?,
                embed(&encoder, &test)?,
                embed(&encoder, &oos)?,
            );
            eprintln!(
                "embedded {} texts in {:.1}s",
                train.len() + test.len() + oos.len(),
                started.elapsed().as_secs_f64()
            );
            std::fs::write(&cache, serde_json::to_string(&c)?)?;
            c
        }
    };

    let test_gold: Vec<&str> = test.iter().map(|e| e.label.as_str()).collect();
    for config in args.iter().skip(2) {
        let mut o = TrainOptions::default();
        for kv in config.split(',') {
            let (k, v) = kv.split_once('=').ok_or("config is key=value,…")?;
            match k {
                "h" => o.hidden = v.parse()?,
                "lr" => o.learning_rate = v.parse()?,
                "wd" => o.weight_decay = v.parse()?,
                "p" => o.temperature_prior = v.parse()?,
                "e" => o.max_epochs = v.parse()?,
                "pat" => o.patience = v.parse()?,
                "bs" => o.batch_size = v.parse()?,
                "seed" => o.seed = v.parse()?,
                _ => return Err(format!("unknown key {k}").into()),
            }
        }
        let (model, report) =
            train_on_embeddings(&train, &train_x, encoder.clone(), &encoder_name, &o, false)?;
        let test_p = model.predict_embeddings(&test_x)?;
        let oos_p = model.predict_embeddings(&oos_x)?;
        let eval = EvalReport::compute(
            &test_gold,
            &test_p.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(),
        );
        let conf = |p: &[Prediction]| p.iter().map(|p| p.confidence).collect::<Vec<f32>>();
        let mean = |c: &[f32]| c.iter().map(|&x| f64::from(x)).sum::<f64>() / c.len().max(1) as f64;
        let (tc, oc) = (conf(&test_p), conf(&oos_p));
        println!(
            "{config:<32} acc {:.4} mF1 {:.4} | val acc {:.3} nll {:.3}->{:.3} T {:.3} ep {}/{} | test conf {:.3} ece {:.3} | oos conf {:.3} <0.5 {:.3} auroc {:.3} | {:.1}s",
            eval.accuracy,
            eval.macro_f1,
            report.validation_accuracy.unwrap_or(f64::NAN),
            report.validation_nll.unwrap_or(f64::NAN),
            report.validation_nll_calibrated.unwrap_or(f64::NAN),
            report.temperature,
            report.best_epoch,
            report.epochs_run,
            mean(&tc),
            ece(&test_p, &test_gold),
            mean(&oc),
            oc.iter().filter(|&&c| c < 0.5).count() as f64 / oc.len().max(1) as f64,
            auroc(&tc, &oc),
            report.train_seconds,
        );
    }
    Ok(())
}
