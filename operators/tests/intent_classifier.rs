//! The intent classifier on the real m3e-small encoder, with a small inline Chinese data set.
//! Needs the models from `deploy/models/fetch.sh` (or `SWITCHBOARD_MODELS`).

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use switchboard_operators::intent::classifier::{
    cross_validate, evaluate, load_examples, normalize_text, stratified_folds, stratified_split,
    threshold_curve, train_with_encoder, Example, IntentModel, TrainOptions,
};
use switchboard_operators::intent::{resolve_model_dir, Encoder};
use switchboard_operators::Error;

const TRAIN: &[(&str, &[&str])] = &[
    (
        "refund",
        &[
            "我要退货",
            "这个东西我不想要了，怎么退款",
            "申请退款",
            "买错了可以退吗",
            "退货流程是什么",
            "钱什么时候退回来",
            "质量有问题，我要求退款",
            "七天无理由退货怎么操作",
        ],
    ),
    (
        "shipping",
        &[
            "我的快递到哪了",
            "什么时候发货",
            "物流信息一直没更新",
            "包裹几天能到",
            "帮我查一下快递单号",
            "怎么还没收到货",
            "发的是什么快递",
            "配送太慢了，现在到哪里了",
        ],
    ),
    (
        "password",
        &[
            "忘记密码了怎么办",
            "怎么修改登录密码",
            "账号登不上去了",
            "重置密码收不到验证码",
            "密码输错被锁定了",
            "我想改一下账户密码",
            "登录提示密码错误",
            "找回密码",
        ],
    ),
    (
        "invoice",
        &[
            "怎么开发票",
            "我需要增值税专用发票",
            "发票抬头写错了能改吗",
            "电子发票在哪里下载",
            "可以开公司的发票吗",
            "发票什么时候寄出",
            "补开发票",
            "帮我开一张发票",
        ],
    ),
];

const HELD_OUT: &[(&str, &str)] = &[
    ("衣服尺码不合适，想退掉", "refund"),
    ("退款到账了吗", "refund"),
    ("不想要了能退钱吗", "refund"),
    ("我的包裹怎么还在路上", "shipping"),
    ("订单发货了没有", "shipping"),
    ("查一下物流", "shipping"),
    ("密码忘了登录不了", "password"),
    ("怎么更改密码", "password"),
    ("验证码收不到没法重置密码", "password"),
    ("开票信息怎么填", "invoice"),
    ("能给我开个发票吗", "invoice"),
    ("发票丢了能重新开吗", "invoice"),
];

const GIBBERISH: &[&str] = &[
    "asdfgh qwerty zxcv",
    "啊啊啊啊啊啊",
    "xq7 zz9 plmk",
    "蓝色的大象在月亮上跳舞",
    "????!!!",
    "嗯嗯哦哦呃",
];

fn train_examples() -> Vec<Example> {
    TRAIN
        .iter()
        .flat_map(|(label, texts)| texts.iter().map(move |t| Example::new(*t, *label)))
        .collect()
}

fn held_out() -> Vec<Example> {
    HELD_OUT.iter().map(|(t, l)| Example::new(*t, *l)).collect()
}

fn encoder() -> Arc<Encoder> {
    static ENCODER: OnceLock<Arc<Encoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let dir = resolve_model_dir("m3e-small");
            Arc::new(Encoder::load(&dir).unwrap_or_else(|e| {
                panic!("{e} (run deploy/models/fetch.sh, or set SWITCHBOARD_MODELS)")
            }))
        })
        .clone()
}

/// One model trained for all tests (training is deterministic).
fn model() -> &'static IntentModel {
    static MODEL: OnceLock<IntentModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let (model, report) = train_with_encoder(
            &train_examples(),
            encoder(),
            "m3e-small",
            &TrainOptions::default(),
            false,
        )
        .expect("training");
        eprintln!(
            "train report: {}",
            serde_json::to_string(&report).expect("json")
        );
        model
    })
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-intent-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn trains_to_90_percent_on_held_out_examples() {
    let model = model();
    assert_eq!(
        model.labels(),
        ["invoice", "password", "refund", "shipping"]
    );
    let report = evaluate(model, &held_out()).expect("evaluate");
    eprintln!(
        "held-out: {}",
        serde_json::to_string(&report).expect("json")
    );
    assert_eq!(report.n, HELD_OUT.len());
    assert!(
        report.accuracy >= 0.9,
        "held-out accuracy {}",
        report.accuracy
    );
    assert!(
        report.macro_f1 >= 0.85,
        "held-out macro-F1 {}",
        report.macro_f1
    );
    let (again, _) = train_with_encoder(
        &train_examples(),
        encoder(),
        "m3e-small",
        &TrainOptions::default(),
        false,
    )
    .expect("train");
    assert_eq!(again.version(), model.version(), "a fixed seed gives identical weights, hence the same version");
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(model);
    let prediction = model.classify_one("我要退货").expect("classify");
    assert_eq!(prediction.top.len(), 3);
    assert_eq!(prediction.top[0].0, prediction.label);
    assert!(prediction.top.windows(2).all(|w| w[0].1 >= w[1].1));
}

#[test]
fn save_load_round_trip_predicts_identically() {
    let model = model();
    let dir = temp_dir("roundtrip");
    model.save(&dir).expect("save");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).expect("model.json"))
            .expect("json");
    assert_eq!(meta["format"], 1);
    assert_eq!(meta["encoder"], "m3e-small");
    assert_eq!(meta["dim"], 512);
    assert_eq!(meta["version"], model.version());
    assert!(meta["temperature"].as_f64().is_some_and(|t| t > 0.0));
    assert_eq!(meta["metrics"]["options"]["seed"], 42);

    let texts: Vec<&str> = HELD_OUT
        .iter()
        .map(|(t, _)| *t)
        .chain(GIBBERISH.iter().copied())
        .collect();
    let normalised: Vec<String> = texts.iter().map(|t| normalize_text(t)).collect();
    let refs: Vec<&str> = normalised.iter().map(String::as_str).collect();
    let embeddings = encoder().embed(&refs).expect("embed");
    let before = model.predict_embeddings(&embeddings).expect("predict");
    for loaded in [
        IntentModel::load(&dir).expect("load"),
        IntentModel::load_with_encoder(&dir, encoder()).expect("load_with_encoder"),
    ] {
        assert_eq!(loaded.version(), model.version());
        assert_eq!(loaded.labels(), model.labels());
        assert_eq!(loaded.temperature(), model.temperature());
        assert_eq!(
            loaded.predict_embeddings(&embeddings).expect("predict"),
            before,
            "identical predictions"
        );
        let direct = loaded.classify(&texts).expect("classify");
        for (b, d) in before.iter().zip(&direct) {
            assert_eq!(b.label, d.label);
            assert!((b.confidence - d.confidence).abs() < 1e-4, "{b:?} vs {d:?}");
        }
    }

    // Corrupt folders give clear errors.
    let bad = temp_dir("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    let err = IntentModel::load_with_encoder(&bad, encoder())
        .err()
        .expect("no model.json")
        .to_string();
    assert!(err.contains("model.json"), "{err}");
    let mut meta_more = meta.clone();
    meta_more["labels"] = serde_json::json!(["a", "b", "c", "d", "e"]);
    std::fs::write(bad.join("model.json"), meta_more.to_string()).expect("write");
    std::fs::copy(dir.join("head.safetensors"), bad.join("head.safetensors")).expect("copy");
    let err = IntentModel::load_with_encoder(&bad, encoder())
        .err()
        .expect("label mismatch")
        .to_string();
    assert!(err.contains("label count mismatch"), "{err}");
    let mut meta_dim = meta.clone();
    meta_dim["dim"] = serde_json::json!(384);
    std::fs::write(bad.join("model.json"), meta_dim.to_string()).expect("write");
    let err = IntentModel::load_with_encoder(&bad, encoder())
        .err()
        .expect("dim mismatch")
        .to_string();
    assert!(err.contains("dim mismatch"), "{err}");
    std::fs::write(bad.join("model.json"), meta.to_string()).expect("write");
    std::fs::remove_file(bad.join("head.safetensors")).expect("rm");
    let err = IntentModel::load_with_encoder(&bad, encoder())
        .err()
        .expect("no head")
        .to_string();
    assert!(err.contains("head.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&bad);
}

#[test]
fn cache_hit_skips_the_encoder() {
    let dir = temp_dir("cache");
    model().save(&dir).expect("save");
    let model = IntentModel::load_with_encoder(&dir, encoder())
        .expect("load")
        .with_cache_capacity(2);
    let first = model
        .classify(&["我的快递到哪了？", "怎么开发票"])
        .expect("classify");
    let stats = model.cache_stats();
    assert_eq!(
        (
            stats.encoder_calls,
            stats.encoded_texts,
            stats.hits,
            stats.misses
        ),
        (1, 2, 0, 2)
    );

    // Same normal form: full-width punctuation, case and spacing differ.
    let again = model
        .classify(&["  我的快递到哪了?  ", "怎么开发票"])
        .expect("classify");
    let stats = model.cache_stats();
    assert_eq!(
        (stats.encoder_calls, stats.hits),
        (1, 2),
        "cache hits must not call the encoder"
    );
    assert_eq!(first, again);

    // A batch of one hit and two (duplicate) misses: one encoder call for one text.
    let mixed = model
        .classify(&["怎么开发票", "ＲＥＳＥＴ 密码", "reset   密码"])
        .expect("classify");
    let stats = model.cache_stats();
    assert_eq!(
        (stats.encoder_calls, stats.encoded_texts, stats.hits),
        (2, 3, 3)
    );
    assert_eq!(mixed[1], mixed[2]);
    assert_eq!(mixed[0], first[1]);
    assert_eq!(
        stats.entries, 2,
        "capacity 2 evicts the least recently used"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_jsonl_line_is_named() {
    let dir = temp_dir("jsonl");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("train.jsonl");
    std::fs::write(
        &path,
        "{\"text\":\"我要退货\",\"label\":\"refund\"}\n\n{\"text\":\"快递\",\"label\":\"shipping\"}\n{\"text\": \"broken\"\n",
    )
    .expect("write");
    let err = load_examples(&path).expect_err("line 4 is not JSON");
    assert!(matches!(err, Error::Data { line: 4, .. }), "{err}");
    assert!(err.to_string().contains("train.jsonl:4"), "{err}");

    std::fs::write(
        &path,
        "{\"text\":\"我要退货\",\"label\":\"refund\"}\n{\"text\":\"快递\"}\n",
    )
    .expect("write");
    let err = load_examples(&path).expect_err("missing label").to_string();
    assert!(
        err.contains("train.jsonl:2") && err.contains("label"),
        "{err}"
    );

    std::fs::write(&path, "{\"text\":\"我要退货\",\"label\":\"refund\"}\n{\"text\":\"快递\",\"label\":\"shipping\"}\n").expect("write");
    assert_eq!(load_examples(&path).expect("valid").len(), 2);
    let err = load_examples(dir.join("missing.jsonl"))
        .expect_err("missing file")
        .to_string();
    assert!(err.contains("missing.jsonl"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stratified_folds_keep_every_label_in_every_training_split() {
    let examples = train_examples();
    let labels: Vec<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    let all: BTreeSet<&str> = labels.iter().copied().collect();
    for k in [2, 3, 5, 8] {
        let folds = stratified_folds(&labels, k, 7);
        assert_eq!(folds, stratified_folds(&labels, k, 7), "deterministic");
        for f in 0..k {
            let train: BTreeSet<&str> = (0..labels.len())
                .filter(|&i| folds[i] != f)
                .map(|i| labels[i])
                .collect();
            let test: BTreeSet<&str> = (0..labels.len())
                .filter(|&i| folds[i] == f)
                .map(|i| labels[i])
                .collect();
            assert_eq!(train, all, "k={k} fold {f}: training split lacks a label");
            assert_eq!(
                test, all,
                "k={k} fold {f}: each label is spread over the folds"
            );
        }
    }
    let (train, val) = stratified_split(&labels, 0.15, 1);
    assert_eq!(val.len(), 4, "one per label (8 × 15% rounds to 1)");
    let val_labels: BTreeSet<&str> = val.iter().map(|&i| labels[i]).collect();
    assert_eq!(val_labels, all);
    assert_eq!(train.len() + val.len(), labels.len());

    let report =
        cross_validate(&examples, &encoder(), 4, &TrainOptions::default()).expect("cross-validate");
    eprintln!(
        "4-fold CV: accuracy {:.3} macro-F1 {:.3}",
        report.accuracy, report.macro_f1
    );
    assert_eq!(report.n, examples.len());
    assert!(report.accuracy >= 0.8, "CV accuracy {}", report.accuracy);
}

#[test]
fn calibrated_confidence_is_lower_for_gibberish() {
    let model = model();
    assert!(model.temperature() > 0.0 && model.temperature().is_finite());
    let in_domain: Vec<&str> = HELD_OUT.iter().map(|(t, _)| *t).collect();
    let mean = |texts: &[&str]| -> f32 {
        let p = model.classify(texts).expect("classify");
        p.iter().map(|p| p.confidence).sum::<f32>() / p.len() as f32
    };
    let (inside, outside) = (mean(&in_domain), mean(GIBBERISH));
    eprintln!(
        "temperature {:.3}: mean confidence in-domain {inside:.3}, gibberish {outside:.3}",
        model.temperature()
    );
    assert!(
        outside < inside,
        "gibberish {outside} vs in-domain {inside}"
    );

    let predictions = model.classify(&in_domain).expect("classify");
    let gold: Vec<&str> = HELD_OUT.iter().map(|(_, l)| *l).collect();
    let curve = threshold_curve(&predictions, &gold, &[0.0, 0.5, 0.99]);
    assert_eq!(curve[0].coverage, 1.0);
    assert!(curve.windows(2).all(|w| w[0].coverage >= w[1].coverage));
}
