//! The candle encoders agree with sentence-transformers (mean pooling + L2 norm) within 1e-4,
//! on the reference vectors in `fixtures/reference_embeddings.json`, made by
//! `deploy/models/reference_embeddings.py`. Needs the models from `deploy/models/fetch.sh`.

use switchboard_operators::intent::{resolve_model_dir, Encoder};

fn reference() -> serde_json::Value {
    let text = include_str!("fixtures/reference_embeddings.json");
    serde_json::from_str(text).expect("fixture is JSON")
}

fn check(model: &str, batched: bool) {
    let dir = resolve_model_dir(model);
    let encoder = Encoder::load(&dir).unwrap_or_else(|e| {
        panic!("{e} (run deploy/models/fetch.sh, or set SWITCHBOARD_MODELS)")
    });
    let cases = reference()[model].as_array().expect("model in fixture").clone();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().expect("text")).collect();
    let vectors = if batched {
        encoder.embed(&texts).expect("embed batch")
    } else {
        texts.iter().map(|t| encoder.embed_one(t).expect("embed")).collect()
    };
    for (case, got) in cases.iter().zip(&vectors) {
        let want: Vec<f32> = case["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(got.len(), want.len(), "{model}: dimension");
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{model} batched={batched} `{}`: max |diff| {worst}", case["text"]);
    }
}

#[test]
fn m3e_small_embeds_wo_yao_tui_huo_like_the_reference() {
    check("m3e-small", false);
}

#[test]
fn m3e_small_batched_with_padding_matches_the_reference() {
    check("m3e-small", true);
}

#[test]
fn minilm_matches_the_reference() {
    check("all-minilm-l6-v2", true);
}

#[test]
fn missing_model_folder_is_a_clear_error() {
    let err = Encoder::load(std::path::Path::new("/nonexistent/model")).err().expect("error");
    assert!(err.to_string().contains("/nonexistent/model"), "{err}");
}
