//! Intent classification throughput on the demo Chinese model (m3e-small + logistic head):
//! one unique utterance, a batch of 32 unique utterances (one encoder pass), and a batch of 32
//! answered from the LRU cache keyed by normalised text. Throughput is reported in
//! classifications per second. The encoder alone is measured with both forward passes: packed
//! (the CPU default) and candle's padded `BertModel`, for the ratio between them.
//!
//! Needs the trained demo model (`deploy/dev/prepare.sh`): `$SWITCHBOARD_STATE/intent/zh`
//! (default `.switchboard/intent/zh` at the workspace root) and the encoders under
//! `$SWITCHBOARD_MODELS`. Skips (prints why) when the model is missing.
//!
//! Run with `cargo bench --workspace --bench intent` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard_operators::intent::{load_examples, resolve_model_dir, Encoder, ForwardPass, IntentModel};

const BATCH: usize = 32;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model_dir() -> PathBuf {
    let state = std::env::var("SWITCHBOARD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".switchboard"));
    state.join("intent/zh")
}

/// The held-out Chinese test utterances: distinct short texts the model has not seen.
fn utterances() -> Vec<String> {
    let mut texts: Vec<String> =
        load_examples(workspace().join("operators/data/intents/test.zh.jsonl"))
            .expect("operators/data/intents/test.zh.jsonl")
            .into_iter()
            .map(|e| e.text)
            .collect();
    texts.sort();
    texts.dedup();
    texts
}

fn classify(c: &mut Criterion) {
    if std::env::var_os("SWITCHBOARD_MODELS").is_none() {
        // The encoder is resolved under SWITCHBOARD_MODELS, else the workspace's models/.
        std::env::set_var("SWITCHBOARD_MODELS", workspace().join("models"));
    }
    let dir = model_dir();
    let uncached = match IntentModel::load(&dir) {
        Ok(model) => model.with_cache_capacity(0),
        Err(e) => {
            eprintln!("intent bench skipped: {e} (run deploy/dev/prepare.sh)");
            return;
        }
    };
    let cached = IntentModel::load(&dir).expect("model loads twice");
    let texts = utterances();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let mut group = c.benchmark_group("intent_classify");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .sample_size(20);

    // No cache: every call runs the encoder, so each text is "unique" to the model.
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("single_unique", |b| {
        b.iter(|| {
            next = (next + 1) % refs.len();
            black_box(uncached.classify(&[refs[next]]).expect("classify"))
        })
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    let batches: Vec<&[&str]> = refs.chunks_exact(BATCH).collect();
    let mut next = 0usize;
    group.bench_function("batch32_unique", |b| {
        b.iter(|| {
            next = (next + 1) % batches.len();
            black_box(uncached.classify(batches[next]).expect("classify"))
        })
    });

    // Warm the cache with one batch, then every call is answered from it.
    let hot = batches[0];
    cached.classify(hot).expect("warm the cache");
    group.bench_function("batch32_cache_hit", |b| {
        b.iter(|| black_box(cached.classify(hot).expect("classify")))
    });
    // Where the time goes: the encoder alone, 32 texts one by one and in one pass.
    let encoder = uncached.encoder().clone();
    let mut next = 0usize;
    group.bench_function("encoder_32_singles", |b| {
        b.iter(|| {
            next = (next + 1) % batches.len();
            for text in batches[next] {
                black_box(encoder.embed(&[*text]).expect("embed"));
            }
        })
    });
    let mut next = 0usize;
    group.bench_function("encoder_batch32", |b| {
        b.iter(|| {
            next = (next + 1) % batches.len();
            black_box(encoder.embed(batches[next]).expect("embed"))
        })
    });
    let padded = Encoder::load_with(&resolve_model_dir(encoder.name()), candle_core::Device::Cpu, ForwardPass::Padded)
        .expect("the padded pass loads the same encoder");
    let mut next = 0usize;
    group.bench_function("encoder_batch32_padded", |b| {
        b.iter(|| {
            next = (next + 1) % batches.len();
            black_box(padded.embed(batches[next]).expect("embed"))
        })
    });
    group.finish();
    let stats = cached.cache_stats();
    assert_eq!(
        stats.encoder_calls, 1,
        "cache-hit runs must not call the encoder: {stats:?}"
    );
}

criterion_group!(benches, classify);
criterion_main!(benches);
