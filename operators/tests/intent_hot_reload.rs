//! Hot reload of the intent model while turns are understood without pause: a thread keeps
//! understanding batches (new texts and cached ones) with the versions the understanding
//! reports, while the test publishes new model versions: first into the configured folder in
//! place — only its weights at first (a half-written folder, which must not be loaded), then its
//! `model.json` — and then as a new version directory, by atomically re-pointing the configured
//! path (a symlink) at it.
//!
//! Asserted: no batch errors and no turn is missing; every result names the model version it
//! was pinned to, and its label belongs to that version's label set (the new version has a
//! different, smaller label set); each new version answers within a bounded wait; once it
//! does, no later batch goes back to an older one.
//!
//! Needs the demo Chinese model and knowledge base (`deploy/dev/prepare.sh`) and the m3e-small
//! encoder (`SWITCHBOARD_MODELS`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_operators::intent::classifier::{HEAD_FILE, META_FILE};
use switchboard_operators::intent::{train_with_encoder, Example, IntentModel, TrainOptions};
use switchboard_operators::retrieval::RetrieverConfig;
use switchboard_operators::understand::{
    model_component, ModelUnderstanding, Understand, Understanding, UnderstandingConfig,
};
use switchboard_schemas::Locale;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn state_dir() -> PathBuf {
    std::env::var("SWITCHBOARD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".switchboard"))
}

/// A small, different model: three labels instead of the demo's 42.
fn tiny_examples() -> Vec<Example> {
    let data: &[(&str, &[&str])] = &[
        (
            "refund_only",
            &[
                "我要退货",
                "申请退款",
                "买错了可以退吗",
                "退货流程是什么",
                "钱什么时候退回来",
                "七天无理由退货",
            ],
        ),
        (
            "where_is_parcel",
            &[
                "我的快递到哪了",
                "什么时候发货",
                "物流一直没更新",
                "包裹几天能到",
                "怎么还没收到货",
                "查一下快递",
            ],
        ),
        (
            "forgot_password",
            &[
                "忘记密码了",
                "怎么修改登录密码",
                "账号登不上去",
                "重置密码",
                "密码被锁定了",
                "找回密码",
            ],
        ),
    ];
    data.iter()
        .flat_map(|(label, texts)| {
            texts.iter().map(move |t| Example {
                text: t.to_string(),
                label: label.to_string(),
            })
        })
        .collect()
}

/// Renames `from` onto `to` after writing it: the reader sees the old file or the new one.
fn publish(from: &Path, to: &Path) {
    let tmp = to.with_extension("publishing");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

#[derive(Debug)]
struct Round {
    pinned: String,
    results: Result<Vec<Understanding>, switchboard_operators::Error>,
    asked: usize,
}

#[test]
fn a_new_model_version_is_picked_up_while_turns_flow_and_every_result_names_its_version() {
    if std::env::var_os("SWITCHBOARD_MODELS").is_none() {
        std::env::set_var("SWITCHBOARD_MODELS", workspace().join("models"));
    }
    let demo = state_dir().join("intent/zh");
    let temp = std::env::temp_dir().join(format!("switchboard-hot-reload-{}", std::process::id()));
    // The configured path is a symlink to a version directory.
    let live = temp.join("zh");
    let staging = temp.join("staging");
    std::fs::create_dir_all(temp.join("v1")).expect("mkdir");
    std::os::unix::fs::symlink("v1", &live).expect("symlink zh -> v1");
    for file in [HEAD_FILE, META_FILE] {
        std::fs::copy(demo.join(file), live.join(file))
            .expect("copy the demo model (deploy/dev/prepare.sh)");
    }

    let old = IntentModel::load(&live).expect("demo model loads");
    let old_labels: BTreeSet<String> = old.labels().iter().cloned().collect();
    let options = TrainOptions {
        max_epochs: 60,
        patience: 10,
        validation_fraction: 0.0,
        ..TrainOptions::default()
    };
    let (new, _) = train_with_encoder(
        &tiny_examples(),
        old.encoder().clone(),
        "m3e-small",
        &options,
        false,
    )
    .expect("train tiny model");
    new.save(&staging).expect("save the new version aside");
    let new_labels: BTreeSet<String> = new.labels().iter().cloned().collect();
    assert_ne!(old.version(), new.version());
    // A third version, for the new-directory swap: same labels, another seed.
    let (third, _) = train_with_encoder(
        &tiny_examples(),
        old.encoder().clone(),
        "m3e-small",
        &TrainOptions {
            seed: 7,
            ..options.clone()
        },
        false,
    )
    .expect("train the third model");
    assert_ne!(third.version(), new.version());
    let labels_of: HashMap<String, BTreeSet<String>> = [
        (old.version().to_string(), old_labels),
        (new.version().to_string(), new_labels.clone()),
        (third.version().to_string(), new_labels),
    ]
    .into_iter()
    .collect();

    let understanding = Arc::new(
        ModelUnderstanding::load(UnderstandingConfig {
            intent_models: [(Locale::ZhCn, live.clone())].into_iter().collect(),
            knowledge_base: state_dir().join("kb"),
            retrieval: RetrieverConfig::default(),
            cache_capacity: 1000,
            reload_every: Duration::from_millis(100),
            vector_backend: Default::default(),
        })
        .expect("understanding loads (deploy/dev/prepare.sh makes the knowledge base)"),
    );
    let component = model_component(Locale::ZhCn);

    // Turns flow continuously: each batch has new texts (encoder) and repeated ones (cache).
    let rounds: Arc<Mutex<Vec<Round>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (understanding, rounds, stop, component) = (
            understanding.clone(),
            rounds.clone(),
            stop.clone(),
            component.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let fresh = [
                    format!("第{n}次问：我的快递到哪了"),
                    format!("订单{n}我要退货"),
                ];
                let batch: Vec<(Locale, &str)> = vec![
                    (Locale::ZhCn, "我要退货"),
                    (Locale::ZhCn, fresh[0].as_str()),
                    (Locale::ZhCn, "忘记密码了"),
                    (Locale::ZhCn, fresh[1].as_str()),
                ];
                let versions = understanding.available_versions();
                let pinned = versions.get(&component).cloned().unwrap_or_default();
                let results = understanding.understand(&batch, &versions);
                rounds.lock().expect("rounds").push(Round {
                    pinned,
                    results,
                    asked: batch.len(),
                });
            }
        })
    };
    let wait_rounds = |at_least: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while rounds.lock().expect("rounds").len() < at_least {
            assert!(
                Instant::now() < deadline,
                "{what}: fewer than {at_least} batches in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_rounds(3, "before publishing");

    // Half-written: the new weights are in place but model.json is still the old one.
    publish(&staging.join(HEAD_FILE), &live.join(HEAD_FILE));
    let before_meta = rounds.lock().expect("rounds").len();
    std::thread::sleep(Duration::from_millis(600)); // six reload periods
    wait_rounds(before_meta + 3, "while half-written");
    let half_written_end = rounds.lock().expect("rounds").len();

    // Waits until a batch runs with `version`; its index and how long it took.
    let wait_for = |version: &str| {
        let published = Instant::now();
        let deadline = published + Duration::from_secs(20);
        loop {
            let first = rounds
                .lock()
                .expect("rounds")
                .iter()
                .position(|r| r.pinned == version);
            if let Some(i) = first {
                break (i, published.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "version {version} was not picked up within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // model.json last: the version is complete.
    publish(&staging.join(META_FILE), &live.join(META_FILE));
    let (switched_at, switch_wait) = wait_for(new.version());
    wait_rounds(switched_at + 3, "after the switch");

    // A new version directory, complete before the symlink is atomically re-pointed at it.
    third.save(temp.join("v3")).expect("save the third version");
    std::os::unix::fs::symlink("v3", temp.join("zh.next")).expect("symlink");
    std::fs::rename(temp.join("zh.next"), &live).expect("re-point zh -> v3");
    let (third_at, third_wait) = wait_for(third.version());
    wait_rounds(third_at + 3, "after the directory swap");
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker thread");

    let rounds = rounds.lock().expect("rounds");
    for (i, round) in rounds.iter().enumerate() {
        let results = round
            .results
            .as_ref()
            .unwrap_or_else(|e| panic!("batch {i} failed: {e}"));
        assert_eq!(results.len(), round.asked, "batch {i} lost turns");
        let labels = labels_of
            .get(&round.pinned)
            .unwrap_or_else(|| panic!("batch {i} pinned unknown {}", round.pinned));
        for u in results {
            assert_eq!(
                u.model_version, round.pinned,
                "batch {i}: a result names another version than it ran with"
            );
            assert!(
                labels.contains(&u.intent),
                "batch {i}: label {} is not one of version {}'s",
                u.intent,
                round.pinned
            );
        }
        if i < half_written_end {
            assert_eq!(
                round.pinned,
                old.version(),
                "batch {i} used a half-written model folder"
            );
        }
        if i >= switched_at && i < third_at {
            assert_eq!(
                round.pinned,
                new.version(),
                "batch {i} went back to the old version"
            );
        }
        if i >= third_at {
            assert_eq!(
                round.pinned,
                third.version(),
                "batch {i} went back from the new directory"
            );
        }
    }
    // The new version classifies with its own labels.
    let last = rounds
        .last()
        .and_then(|r| r.results.as_ref().ok())
        .expect("last batch");
    assert_eq!(last[0].intent, "refund_only");
    assert_eq!(last[2].intent, "forgot_password");
    eprintln!(
        "{} batches; in place: switched at batch {switched_at}, {switch_wait:?} after model.json was \
         published; new directory: switched at batch {third_at}, {third_wait:?} after the symlink moved",
        rounds.len(),
    );
    drop(rounds);
    let _ = std::fs::remove_dir_all(&temp);
}
