//! The candle encoders agree with sentence-transformers (mean pooling + L2 norm) within 1e-4,
//! on the reference vectors in `fixtures/reference_embeddings.json`, made by
//! `deploy/models/reference_embeddings.py` — with both forward passes (packed, the CPU
//! default, and candle's padded `BertModel`), which also agree with each other within 1e-5 on
//! every held-out utterance in mixed-length batches. Needs the models from
//! `deploy/models/fetch.sh`.

use candle_core::Device;
use switchboard_operators::intent::{load_examples, resolve_model_dir, Encoder, ForwardPass};

fn reference() -> serde_json::Value {
    let text = include_str!("fixtures/reference_embeddings.json");
    serde_json::from_str(text).expect("fixture is JSON")
}

fn load(model: &str, pass: ForwardPass) -> Encoder {
    Encoder::load_with(&resolve_model_dir(model), Device::Cpu, pass)
        .unwrap_or_else(|e| panic!("{e} (run deploy/models/fetch.sh, or set SWITCHBOARD_MODELS)"))
}

fn check(model: &str, batched: bool) {
    for pass in [ForwardPass::Packed, ForwardPass::Padded] {
        check_pass(model, batched, pass);
    }
}

fn check_pass(model: &str, batched: bool, pass: ForwardPass) {
    let encoder = load(model, pass);
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
        assert!(worst < 1e-4, "{model} {pass:?} batched={batched} `{}`: max |diff| {worst}", case["text"]);
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

/// The packed pass against candle's padded `BertModel`, batches of 32 mixed-length texts (plus
/// an empty text and one longer than the 128-token limit, which both passes truncate alike).
fn packed_agrees_with_padded(model: &str, data: &str) {
    let packed = load(model, ForwardPass::Packed);
    let padded = load(model, ForwardPass::Padded);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(data);
    let mut texts: Vec<String> = load_examples(&path).expect("held-out data").into_iter().map(|e| e.text).collect();
    texts.push(String::new());
    texts.push("很长的一句话，".repeat(40));
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut worst = 0f32;
    for batch in refs.chunks(32) {
        let a = packed.embed(batch).expect("packed");
        let b = padded.embed(batch).expect("padded");
        assert_eq!(a.len(), batch.len());
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max(x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max));
        }
    }
    assert!(worst < 1e-5, "{model}: packed and padded passes differ by up to {worst}");
}

#[test]
fn packed_pass_agrees_with_candle_bert_on_every_held_out_zh_utterance() {
    packed_agrees_with_padded("m3e-small", "data/intents/test.zh.jsonl");
}

#[test]
fn packed_pass_agrees_with_candle_bert_on_every_held_out_en_utterance() {
    packed_agrees_with_padded("all-minilm-l6-v2", "data/intents/test.en.jsonl");
}

#[test]
fn missing_model_folder_is_a_clear_error() {
    let err = Encoder::load(std::path::Path::new("/nonexistent/model")).err().expect("error");
    assert!(err.to_string().contains("/nonexistent/model"), "{err}");
}
