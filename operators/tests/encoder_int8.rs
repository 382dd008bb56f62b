//! The 8-bit packed pass (`SWITCHBOARD_ENCODER_PRECISION=int8`) against the f32 packed pass on
//! every held-out utterance: the embeddings stay close (cosine ≥ 0.99 each, ≥ 0.995 on
//! average) and the nearest intent centroid rarely moves. On a CPU with integer dot products
//! (AVX512-VNNI or AVX-VNNI, as on the machines this project is measured on) the shapes that
//! fit candle's integer tiles must really run in 8 bits; elsewhere every layer stays f32 and the
//! test says so and fails, since it would check nothing. The held-out accuracy of both is in the
//! README ("The live path"). Needs the models from `deploy/models/fetch.sh`.

use candle_core::Device;
use switchboard_operators::intent::packed::has_int8_kernels;
use switchboard_operators::intent::{load_examples, resolve_model_dir, Encoder, ForwardPass};

fn load(model: &str, pass: ForwardPass) -> Encoder {
    Encoder::load_with(&resolve_model_dir(model), Device::Cpu, pass)
        .unwrap_or_else(|e| panic!("{e} (run deploy/models/fetch.sh, or set SWITCHBOARD_MODELS)"))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Both are L2-normalised.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn int8_close_to_f32(model: &str, data: &str, expect_int8: usize) {
    assert!(has_int8_kernels(), "this CPU has no integer dot products (VNNI): the 8-bit pass would run in f32 and this test would check nothing");
    let f32_pass = load(model, ForwardPass::Packed);
    let int8_pass = load(model, ForwardPass::PackedInt8);
    let (int8, all) = int8_pass.int8_layers();
    assert_eq!(f32_pass.int8_layers().0, 0, "{model}: the f32 pass must not quantise");
    assert_eq!(int8, expect_int8, "{model}: {int8} of {all} dense layers in 8 bits");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(data);
    let texts: Vec<String> = load_examples(&path).expect("held-out data").into_iter().map(|e| e.text).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (mut worst, mut sum, mut identical) = (1f32, 0f32, 0usize);
    for batch in refs.chunks(32) {
        let a = f32_pass.embed(batch).expect("f32");
        let b = int8_pass.embed(batch).expect("int8");
        for (x, y) in a.iter().zip(&b) {
            let c = cosine(x, y);
            worst = worst.min(c);
            sum += c;
            identical += usize::from(x == y);
        }
    }
    let mean = sum / refs.len() as f32;
    println!("{model}: {int8}/{all} layers int8, cosine to f32 min {worst:.4} mean {mean:.5} over {} texts", refs.len());
    assert!(identical < refs.len(), "{model}: int8 embeddings identical to f32: nothing was quantised");
    assert!(worst >= 0.99, "{model}: an 8-bit embedding is only {worst} (cosine) from f32");
    assert!(mean >= 0.995, "{model}: mean cosine to f32 {mean}");
}

#[test]
fn m3e_small_int8_stays_close_to_f32() {
    // 4 layers × (qkv, attention output, intermediate, output): every one is 512 or 2048 wide.
    int8_close_to_f32("m3e-small", "data/intents/test.zh.jsonl", 16);
}

#[test]
fn minilm_int8_stays_close_to_f32() {
    // 384 wide in: only the 1536-wide output projection of each of the 6 layers fits the tiles.
    int8_close_to_f32("all-minilm-l6-v2", "data/intents/test.en.jsonl", 6);
}
