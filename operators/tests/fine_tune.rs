//! Fine-tuning the encoder with the head (`intent::fine_tune`, `train_fine_tuned`) on a few
//! labels of the phone-support set: the encoder's weights move, the same seed gives the same
//! encoder, and the saved model folder loads with its own encoder and classifies.
//!
//! Needs the m3e-small encoder (`deploy/models/fetch.sh` or `SWITCHBOARD_MODELS`).

use std::path::PathBuf;
use switchboard_operators::intent::{
    fine_tune, load_examples, resolve_model_dir, train_fine_tuned, Encoder, Example, FineTuneOptions, IntentModel, TrainOptions,
};

fn examples() -> Vec<Example> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/intents/phone.zh.jsonl");
    let all = load_examples(&path).expect("phone.zh.jsonl");
    let keep = ["return_goods", "exchange_goods", "request_refund", "refund_status"];
    all.into_iter().filter(|e| keep.contains(&e.label.as_str())).collect()
}

fn embed(dir: &std::path::Path, texts: &[&str]) -> Vec<Vec<f32>> {
    Encoder::load(dir).expect("encoder loads").embed(texts).expect("embed")
}

#[test]
fn fine_tuning_moves_the_encoder_deterministically_and_the_model_serves_it() {
    if std::env::var_os("SWITCHBOARD_MODELS").is_none() {
        std::env::set_var("SWITCHBOARD_MODELS", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    }
    let examples = examples();
    assert_eq!(examples.len(), 72);
    let work = std::env::temp_dir().join(format!("switchboard-fine-tune-{}", std::process::id()));
    // No validation split: both epochs are kept, so the encoder must have moved.
    let options = FineTuneOptions { layers: 1, epochs: 2, validation_fraction: 0.0, ..FineTuneOptions::default() };
    let (a, b) = (work.join("a"), work.join("b"));
    let report = fine_tune(&examples, "m3e-small", &a, &options, 7, false).expect("fine-tune");
    assert_eq!((report.epochs_run, report.best_epoch, report.n_validation), (2, 2, 0));
    assert!(report.trained_parameters > 0);
    fine_tune(&examples, "m3e-small", &b, &options, 7, false).expect("fine-tune again");

    let texts = ["不是退货，是换货", "钱退了没有啊"];
    let base = embed(&resolve_model_dir("m3e-small"), &texts);
    let (tuned, again) = (embed(&a, &texts), embed(&b, &texts));
    let cosine = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    assert!(cosine(&base[0], &tuned[0]) < 0.99999, "the encoder did not move");
    for (x, y) in tuned.iter().zip(&again) {
        let gap = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(gap < 1e-5, "the same seed gave another encoder (gap {gap})");
    }

    let out = work.join("model");
    let (model, _, _) = train_fine_tuned(&examples, "m3e-small", &out, &TrainOptions::default(), &options, false).expect("train");
    model.save(&out).expect("save");
    let loaded = IntentModel::load(&out).expect("the folder loads with its own encoder");
    assert_eq!(loaded.meta().fine_tune.as_ref(), Some(&options));
    assert_eq!(loaded.meta().encoder, "m3e-small", "the base it started from");
    assert_eq!(IntentModel::encoder_dir(&out).expect("encoder dir"), out.join("encoder"));
    let prediction = loaded.classify_one("我想换个尺码").expect("classify");
    assert!(loaded.labels().contains(&prediction.label));
    let _ = std::fs::remove_dir_all(&work);
}
