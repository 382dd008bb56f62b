//! Retrieval quality on the demo knowledge base with the real encoders: hit@1 and hit@3 of the
//! expected entry, with the intent filter set to the evaluation line's intent.
//!
//! Needs `operators/data/kb/` and the models from `deploy/models/fetch.sh` (or
//! `SWITCHBOARD_MODELS`). A missing file fails the test; it never skips.

use std::path::{Path, PathBuf};

use switchboard_operators::intent::{resolve_model_dir, Encoder};
use switchboard_operators::retrieval::{kb, Retriever, RetrieverConfig, Snapshot};
use switchboard_schemas::Locale;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/kb")
        .join(name)
}

struct EvalLine {
    question: String,
    intent: String,
    expected_id: String,
}

fn eval_lines(path: &Path, locale: Locale) -> Vec<EvalLine> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the demo evaluation set must exist)",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            let field = |name: &str| {
                v[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}:{}: no `{name}`", path.display(), i + 1))
                    .to_owned()
            };
            assert_eq!(
                field("locale"),
                locale.as_str(),
                "{}:{}",
                path.display(),
                i + 1
            );
            EvalLine {
                question: field("question"),
                intent: field("intent"),
                expected_id: field("expected_id"),
            }
        })
        .collect()
}

struct Figures {
    n: usize,
    hit1: f64,
    hit3: f64,
    vector_hit1: f64,
    accepted: f64,
}

fn evaluate(locale: Locale, model: &str, kb_file: &str, eval_file: &str) -> Figures {
    let kb_path = data(kb_file);
    assert!(kb_path.is_file(), "{} must exist", kb_path.display());
    let entries = kb::parse_kb_file(&kb_path).unwrap_or_else(|e| panic!("{e}"));
    let encoder = Encoder::load(&resolve_model_dir(model))
        .unwrap_or_else(|e| panic!("{e} (run deploy/models/fetch.sh, or set SWITCHBOARD_MODELS)"));
    let snapshot = Snapshot::build(entries, |l| (l == locale).then_some(&encoder))
        .unwrap_or_else(|e| panic!("{e}"));
    let retriever = Retriever::new(snapshot.clone(), RetrieverConfig::default()).expect("index");
    let vector_only = Retriever::new(
        snapshot,
        RetrieverConfig {
            vector_weight: 1.0,
            ..Default::default()
        },
    )
    .expect("index");

    let lines = eval_lines(&data(eval_file), locale);
    assert!(!lines.is_empty(), "{eval_file} is empty");
    let questions: Vec<&str> = lines.iter().map(|l| l.question.as_str()).collect();
    let vectors = encoder
        .embed(&questions)
        .expect("embed evaluation questions");
    let (mut hit1, mut hit3, mut vhit1, mut accepted) = (0, 0, 0, 0);
    for (line, vector) in lines.iter().zip(&vectors) {
        let ranked = retriever.rank(locale, Some(&line.intent), &line.question, vector, 3);
        let ids: Vec<&str> = ranked.iter().map(|r| r.entry.id.as_str()).collect();
        if ids.first() == Some(&line.expected_id.as_str()) {
            hit1 += 1;
        } else {
            println!(
                "  miss@1 `{}`: expected {}, got {:?} (scores {:?})",
                line.question,
                line.expected_id,
                ids,
                ranked
                    .iter()
                    .map(|r| (r.vector_score, r.lexical_score))
                    .collect::<Vec<_>>()
            );
        }
        if ids.contains(&line.expected_id.as_str()) {
            hit3 += 1;
        }
        let v = vector_only.rank(locale, Some(&line.intent), &line.question, vector, 1);
        if v.first().is_some_and(|r| r.entry.id == line.expected_id) {
            vhit1 += 1;
        }
        if retriever
            .retrieve(locale, Some(&line.intent), &line.question, vector)
            .is_some()
        {
            accepted += 1;
        }
    }
    // Score distributions: the top-1 score of correctly answered paraphrases (intent-filtered)
    // and of out-of-scope utterances (no intent filter: the best any entry offers).
    let mut correct: Vec<f32> = lines
        .iter()
        .zip(&vectors)
        .filter_map(|(line, vector)| {
            let top = retriever.rank(locale, Some(&line.intent), &line.question, vector, 1);
            top.first().filter(|r| r.entry.id == line.expected_id).map(|r| r.score)
        })
        .collect();
    let oos_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "data/intents/oos.{}.jsonl",
        if locale == Locale::ZhCn { "zh" } else { "en" }
    ));
    let oos: Vec<String> = std::fs::read_to_string(&oos_file)
        .expect("out-of-scope set")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(String::from))
        .collect();
    let oos_refs: Vec<&str> = oos.iter().map(String::as_str).collect();
    let oos_vectors = encoder.embed(&oos_refs).expect("embed out-of-scope");
    let mut out_of_scope: Vec<f32> = oos
        .iter()
        .zip(&oos_vectors)
        .filter_map(|(text, vector)| retriever.rank(locale, None, text, vector, 1).first().map(|r| r.score))
        .collect();
    correct.sort_by(f32::total_cmp);
    out_of_scope.sort_by(f32::total_cmp);
    let pct = |v: &[f32], q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f32::NAN);
    println!(
        "  {}: correct top-1 scores p5 {:.3} p10 {:.3} p50 {:.3}; out-of-scope top-1 p50 {:.3} p90 {:.3} max {:.3}",
        locale.as_str(),
        pct(&correct, 0.05),
        pct(&correct, 0.10),
        pct(&correct, 0.5),
        pct(&out_of_scope, 0.5),
        pct(&out_of_scope, 0.9),
        pct(&out_of_scope, 1.0)
    );
    let n = lines.len();
    let rate = |k: usize| k as f64 / n as f64;
    Figures {
        n,
        hit1: rate(hit1),
        hit3: rate(hit3),
        vector_hit1: rate(vhit1),
        accepted: rate(accepted),
    }
}

/// The encoder named by `variable` (a name or a folder, e.g. the `encoder/` of a fine-tuned
/// model, to measure retrieval in its space), else `default`.
fn encoder_or(variable: &str, default: &str) -> String {
    std::env::var(variable).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn report(label: &str, f: &Figures) {
    println!(
        "{label}: n={} hit@1={:.3} hit@3={:.3} (vector only hit@1={:.3}), above threshold {:.3}",
        f.n, f.hit1, f.hit3, f.vector_hit1, f.accepted
    );
}

#[test]
fn m3e_small_on_the_chinese_demo_kb_has_hit_at_3_of_at_least_0_8() {
    let encoder = encoder_or("SWITCHBOARD_RETRIEVAL_ENCODER_ZH", "m3e-small");
    let f = evaluate(Locale::ZhCn, &encoder, "kb.zh.jsonl", "eval.zh.jsonl");
    report(&format!("zh-CN {encoder}"), &f);
    assert!(f.hit3 >= 0.8, "hit@3 {:.3} < 0.8", f.hit3);
}

#[test]
fn minilm_on_the_english_demo_kb_has_hit_at_3_of_at_least_0_8() {
    let encoder = encoder_or("SWITCHBOARD_RETRIEVAL_ENCODER_EN", "all-minilm-l6-v2");
    let f = evaluate(Locale::En, &encoder, "kb.en.jsonl", "eval.en.jsonl");
    report(&format!("en {encoder}"), &f);
    assert!(f.hit3 >= 0.8, "hit@3 {:.3} < 0.8", f.hit3);
}
