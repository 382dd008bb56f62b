//! `switchboard shadow` on the shipped recordings with the real models and knowledge base:
//! a knowledge base with one entry reworded changes exactly the turns answered from it (the
//! same report on 1, 2 and 4 workers), a retrained model's report counts what a direct
//! comparison of two separate `switchboard test` runs counts, a range of `user.said` gives the
//! report its recording gives, and a failing gate exits 1 with one line naming it.
//!
//! Needs the demo models and knowledge base (`deploy/dev/prepare.sh`, run by `deploy/dev/test.sh`);
//! the range test also the broker.

mod common;

use common::{recordings, recordings_dir, root, run_id};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The entry reworded, a phrase of its answer, and what replaces the phrase.
const ENTRY: &str = "zh-return-goods-001";
const OLD: &str = "的退货申请已提交";
const NEW: &str = "的退货申请已经登记成功";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-shadow-{name}-{}", run_id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).env("SWITCHBOARD_LOG", "warn").output().expect("run switchboard")
}

fn shadow(recording: &Path, extra: &[&str], out: &Path) -> Output {
    let mut args = vec!["shadow", recording.to_str().expect("path"), "--out", out.to_str().expect("path")];
    args.extend_from_slice(extra);
    switchboard(&args)
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report.json")).expect("report json")
}

/// The demo knowledge base (both locales) in one file, with `ENTRY`'s answer reworded.
fn reworded_kb(dir: &Path) -> PathBuf {
    let mut lines = Vec::new();
    for file in ["kb.zh.jsonl", "kb.en.jsonl"] {
        let text = std::fs::read_to_string(root().join("operators/data/kb").join(file)).expect("demo kb");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut entry: Value = serde_json::from_str(line).expect("kb line");
            if entry["id"] == ENTRY {
                let answer = entry["answer"].as_str().expect("answer").to_string();
                assert!(answer.contains(OLD), "{ENTRY}'s answer no longer says {OLD}: {answer}");
                entry["answer"] = Value::String(answer.replace(OLD, NEW));
            }
            lines.push(entry.to_string());
        }
    }
    let path = dir.join("kb.reworded.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write kb");
    path
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).expect("events").lines().map(|l| serde_json::from_str(l).expect("event json")).collect()
}

/// Per user turn (dialogue, client message id): intent, answer text, entry, handed off.
type Turns = BTreeMap<(String, String), (Option<String>, Option<String>, Option<String>, bool)>;

fn turns_of(events: &[Value]) -> Turns {
    let mut turns = Turns::new();
    for e in events {
        let key = (e["dialogue_id"].as_str().unwrap_or("").to_string(), e["client_msg_id"].as_str().unwrap_or("").to_string());
        let text = |field: &str| e[field].as_str().map(String::from);
        match e["kind"].as_str().unwrap_or("") {
            "user_said" => {
                turns.entry(key).or_default();
            }
            "intent_recognized" => turns.entry(key).or_default().0 = text("intent"),
            "answer_generated" => turns.entry(key).or_default().1 = text("text"),
            "knowledge_retrieved" => turns.entry(key).or_default().2 = text("entry_id"),
            "handoff_requested" => turns.entry(key).or_default().3 = true,
            "turn_queued" => {
                turns.entry(key).or_default();
            }
            _ => {}
        }
    }
    turns
}

fn changed_turns(report: &Value) -> BTreeSet<(String, String)> {
    report["changed_turns"]
        .as_array()
        .expect("changed_turns")
        .iter()
        .map(|t| (t["dialogue_id"].as_str().unwrap_or("").to_string(), t["client_msg_id"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn a_reworded_entry_changes_exactly_the_turns_answered_from_it_on_any_worker_count() {
    let dir = scratch("kb");
    let kb = reworded_kb(&dir);
    let mut expected_total = 0;
    for recording in recordings() {
        let name = recording.file_stem().and_then(|n| n.to_str()).unwrap_or("rec").to_string();
        let out = dir.join(&name);
        let output = shadow(&recording, &["--candidate-kb", kb.to_str().expect("path")], &out);
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let report = report(&out);
        // The current version's output is the golden file (golden_recordings checks that).
        let golden = events(&recording.with_extension("golden.ndjson"));
        let expected: BTreeSet<(String, String)> = turns_of(&golden)
            .into_iter()
            .filter(|(_, (_, answer, _, _))| answer.as_deref().is_some_and(|a| a.contains(OLD)))
            .map(|(k, _)| k)
            .collect();
        expected_total += expected.len();
        assert_eq!(changed_turns(&report), expected, "{name}: the changed turns are exactly those answered from {ENTRY}");
        assert_eq!(report["turns"].as_u64(), Some(turns_of(&golden).len() as u64), "{name}: every user turn compared");
        let changed = &report["changed"];
        assert_eq!((changed["answers"].as_u64(), changed["turns"].as_u64()), (Some(expected.len() as u64), Some(expected.len() as u64)), "{name}");
        for field in ["intents", "entries", "handoffs", "outcomes"] {
            assert_eq!(changed[field].as_u64(), Some(0), "{name}: {field}");
        }
        for t in report["changed_turns"].as_array().expect("changed") {
            assert_eq!(t["changes"], serde_json::json!(["answer"]), "{name}: {t}");
            assert!(t["current"]["answer"].as_str().is_some_and(|a| a.contains(OLD)), "{t}");
            assert!(t["candidate"]["answer"].as_str().is_some_and(|a| a.contains(NEW) && !a.contains(OLD)), "{t}");
        }
        assert_ne!(report["current"]["kb"], report["candidate"]["kb"], "{name}: the candidate names its own snapshot");
        assert_eq!(report["current"]["models"], report["candidate"]["models"], "{name}: same models");
        let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
        if !expected.is_empty() {
            assert!(html.contains(NEW) && html.contains(OLD), "{name}: the page shows both answers side by side");
            // Byte-identical on 2 and 4 workers.
            for workers in ["2", "4"] {
                let again = dir.join(format!("{name}-{workers}"));
                let output = shadow(&recording, &["--candidate-kb", kb.to_str().expect("path"), "--workers", workers], &again);
                assert!(output.status.success(), "{name} on {workers} workers: {}", String::from_utf8_lossy(&output.stderr));
                for file in ["report.json", "report.html"] {
                    let (a, b) = (std::fs::read(out.join(file)).expect("first"), std::fs::read(again.join(file)).expect("again"));
                    assert!(a == b, "{name}: {file} differs between 1 and {workers} workers");
                }
            }
        }
        let timings: Value = serde_json::from_str(&std::fs::read_to_string(out.join("timings.json")).expect("timings")).expect("json");
        for version in ["current", "candidate"] {
            assert!(timings[version]["understand"]["epochs"].as_u64().unwrap_or(0) > 0, "{name}: {timings}");
        }
    }
    assert!(expected_total >= 2, "the recordings answer from {ENTRY} in at least two turns ({expected_total})");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_gate_exits_1_with_one_line_naming_it_and_bad_gates_exit_2() {
    let dir = scratch("gate");
    let kb = reworded_kb(&dir);
    let recording = recordings_dir().join("slot_filling.ndjson");
    let kb = kb.to_str().expect("path");
    let out = dir.join("fail");
    let output = shadow(
        &recording,
        &["--candidate-kb", kb, "--fail-if", "handoff_rate_delta > 0.5pp", "--fail-if", "changed_answers > 2%"],
        &out,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("changed_answers > 2%") && !lines[0].contains("handoff_rate_delta"), "{stderr}");
    let report = report(&out);
    let verdicts: Vec<bool> = report["gates"].as_array().expect("gates").iter().map(|g| g["failed"].as_bool().unwrap_or(false)).collect();
    assert_eq!(verdicts, [false, true], "{}", report["gates"]);

    let output = shadow(&recording, &["--candidate-kb", kb, "--fail-if", "changed_intents > 0%"], &dir.join("pass"));
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    // A candidate that is one model folder, not a folder of them per locale: bad input.
    let state = PathBuf::from(std::env::var("SWITCHBOARD_STATE").unwrap_or_else(|_| root().join(".switchboard").display().to_string()));
    let output = shadow(&recording, &["--candidate-models", state.join("intent/zh").to_str().expect("p")], &dir.join("bad"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("one model folder") && stderr.contains("zh-CN"), "{stderr}");
    for gate in ["changed_answers > lots", "answers > 2%", "handoff_rate_delta > 1%"] {
        let output = shadow(&recording, &["--candidate-kb", kb, "--fail-if", gate], &dir.join("bad"));
        assert_eq!(output.status.code(), Some(2), "{gate}: {}", String::from_utf8_lossy(&output.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_retrained_model_is_reported_as_a_direct_comparison_of_two_runs_counts_it() {
    let dir = scratch("model");
    // The candidate: the demo Chinese model retrained on a third of its data.
    let data: Vec<String> = std::fs::read_to_string(root().join("operators/data/intents/train.zh.jsonl"))
        .expect("train data")
        .lines()
        .enumerate()
        .filter(|(i, l)| i % 3 == 0 && !l.trim().is_empty())
        .map(|(_, l)| l.to_string())
        .collect();
    let subset = dir.join("train.third.zh.jsonl");
    std::fs::write(&subset, data.join("\n") + "\n").expect("write data");
    let models = dir.join("candidate");
    let zh = models.join("zh");
    let output = switchboard(&["intent", "train", "--data", subset.to_str().expect("p"), "--encoder", "m3e-small", "--out", zh.to_str().expect("p")]);
    assert!(output.status.success(), "train: {}", String::from_utf8_lossy(&output.stderr));
    let state = PathBuf::from(std::env::var("SWITCHBOARD_STATE").unwrap_or_else(|_| root().join(".switchboard").display().to_string()));
    let config = dir.join("candidate.yaml");
    std::fs::write(
        &config,
        format!(
            "intent_models:\n  zh-CN: {}\n  en: {}\nknowledge_base: {}\n",
            zh.display(),
            state.join("intent/en").display(),
            state.join("kb").display()
        ),
    )
    .expect("config");

    let (mut any_change, mut all_turns) = (0, 0);
    for recording in recordings() {
        let name = recording.file_stem().and_then(|n| n.to_str()).unwrap_or("rec").to_string();
        let out = dir.join(&name);
        let output = shadow(&recording, &["--candidate-models", models.to_str().expect("p")], &out);
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let report = report(&out);
        // The direct comparison: the candidate's own run, against the golden (current) output.
        let direct = dir.join(format!("{name}.candidate.ndjson"));
        let output = switchboard(&["test", recording.to_str().expect("p"), "--golden", direct.to_str().expect("p"), "--bless", "--config", config.to_str().expect("p")]);
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let (before, after) = (turns_of(&events(&recording.with_extension("golden.ndjson"))), turns_of(&events(&direct)));
        let keys: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
        let mut counts = [0u64; 5];
        for k in &keys {
            let (a, b) = (before.get(*k).cloned().unwrap_or_default(), after.get(*k).cloned().unwrap_or_default());
            let diffs = [a.0 != b.0, a.1 != b.1, a.2 != b.2, a.3 != b.3];
            for (i, d) in diffs.iter().enumerate() {
                counts[i] += u64::from(*d);
            }
            counts[4] += u64::from(diffs.iter().any(|d| *d));
        }
        let changed = &report["changed"];
        let got = ["intents", "answers", "entries", "handoffs"].map(|f| changed[f].as_u64().unwrap_or(u64::MAX));
        assert_eq!(got[..], counts[..4], "{name}: intents, answers, entries, handoffs: report vs direct comparison");
        assert_eq!(changed["turns"].as_u64(), Some(counts[4]), "{name}: turns with any change");
        assert_eq!(report["turns"].as_u64(), Some(keys.len() as u64), "{name}");
        let version = std::fs::read_to_string(zh.join("model.json")).expect("model.json");
        let version: Value = serde_json::from_str(&version).expect("json");
        if report["candidate"]["models"]["zh-CN"].is_array() {
            assert_eq!(report["candidate"]["models"]["zh-CN"], serde_json::json!([version["version"]]), "{name}");
        }
        any_change += counts[4];
        all_turns += keys.len() as u64;
    }
    assert!(all_turns > 0);
    eprintln!("retrained model: {any_change} of {all_turns} turns changed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_of_user_said_gives_the_report_its_recording_gives() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use switchboard_schemas::settings::KafkaSettings;
    let dir = scratch("range");
    let kb = reworded_kb(&dir);
    let recording = recordings_dir().join("slot_filling.ndjson");
    let kafka = KafkaSettings::from_env().expect("kafka settings");
    let topic = format!("test.shadow.{}", run_id());
    switchboard_sources::admin::ensure_topics(&kafka, &[&topic], 8).await.expect("topic (is the broker up?)");
    // The recording's records, each into its own partition with its own timestamp.
    let producer: FutureProducer = kafka.client_config().create().expect("producer");
    for record in switchboard_sources::recording::read_recording(&recording).expect("recording") {
        let mut r = FutureRecord::to(&topic).payload(&record.value).partition(record.partition).timestamp(record.timestamp_ms);
        if let Some(key) = &record.key {
            r = r.key(key);
        }
        producer.send(r, std::time::Duration::from_secs(10)).await.map_err(|(e, _)| e).expect("produce");
    }
    let config = dir.join("range.yaml");
    std::fs::write(&config, format!("input_topic: {topic}\n")).expect("config");
    let kb = kb.to_str().expect("path");
    let from_file = dir.join("file");
    let output = shadow(&recording, &["--candidate-kb", kb], &from_file);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let from_range = dir.join("range");
    let output = switchboard(&[
        "shadow", "--from-time", "0", "--candidate-kb", kb, "--config", config.to_str().expect("p"), "--out", from_range.to_str().expect("p"),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (mut a, mut b) = (report(&from_file), report(&from_range));
    assert_eq!(b["input"], Value::String(format!("{topic} --from-time 0")));
    for r in [&mut a, &mut b] {
        r.as_object_mut().expect("object").remove("input");
    }
    assert!(a["changed"]["answers"].as_u64().unwrap_or(0) > 0, "{a}");
    assert_eq!(a, b, "the same turns from the broker give the same report");
    let _ = switchboard_sources::admin::delete_topics(&kafka, &[&topic]).await;
    let _ = std::fs::remove_dir_all(&dir);
}
