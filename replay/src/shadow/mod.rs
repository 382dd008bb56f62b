//! `switchboard shadow`: the current and a candidate version of the bot (intent models,
//! knowledge base) over the same recorded turns, in one deterministic pass on record time, and
//! a report of every difference: `report.json` for machines, `report.html` for people (both
//! byte-identical for the same inputs on any number of workers), `timings.json` with what each
//! version's stages took (measured, so not part of the byte-identical pair), and gates that fail
//! a rollout.

pub mod compare;
pub mod gates;
mod html;

use crate::{Error, Result};
use compare::{Comparison, TurnDiff, Versions};
use gates::{Gate, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use switchboard_schemas::{Event, SourceRecord};
use switchboard_topology::metrics::Metrics;
use switchboard_topology::GraphConfig;

/// Version of the report's layout (`report.json`'s `report_format`).
pub const REPORT_FORMAT: u32 = 1;

/// Changed dialogues shown side by side in the report.
pub const SAMPLE_DIALOGUES: usize = 20;

/// Changed turns listed one by one (the counts always cover all of them).
pub const MAX_CHANGED_TURNS: usize = 5_000;

/// Both versions' outputs and what their stages took.
pub struct ShadowRun {
    /// The current version's events, canonical order.
    pub current: Vec<Event>,
    /// The candidate's.
    pub candidate: Vec<Event>,
    /// Measured stage times per version.
    pub timings: Timings,
}

/// What one stage took in one version.
#[derive(Debug, Clone, Serialize)]
pub struct StageTiming {
    /// Epochs the stage ran.
    pub epochs: u64,
    /// Their total, ms.
    pub total_ms: f64,
    /// Mean per epoch, ms.
    pub mean_ms: f64,
    /// The longest epoch, ms.
    pub max_ms: f64,
}

/// Measured per-stage times of both versions (`timings.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    /// Worker threads.
    pub workers: usize,
    /// Wall time of the whole pass, seconds.
    pub seconds: f64,
    /// Stage → timing, current version.
    pub current: BTreeMap<String, StageTiming>,
    /// Stage → timing, candidate.
    pub candidate: BTreeMap<String, StageTiming>,
}

fn stage_timings(metrics: &Metrics) -> BTreeMap<String, StageTiming> {
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    metrics
        .stage_totals()
        .into_iter()
        .map(|(stage, t)| {
            let total_ms = t.seconds * 1000.0;
            let mean_ms = if t.epochs == 0 { 0.0 } else { total_ms / t.epochs as f64 };
            (stage, StageTiming { epochs: t.epochs, total_ms: round(total_ms), mean_ms: round(mean_ms), max_ms: round(t.max_seconds * 1000.0) })
        })
        .collect()
}

/// Runs the `current` and the `candidate` graph configuration (each its own understanding; the
/// same session rules) over `records` in one pass with `workers` threads, each graph timed by
/// its own metrics.
pub fn run(records: Vec<SourceRecord>, workers: usize, current: GraphConfig, candidate: GraphConfig) -> Result<ShadowRun> {
    let started = std::time::Instant::now();
    let (m_current, m_candidate) = (Arc::new(Metrics::new()), Arc::new(Metrics::new()));
    let mut a = current;
    a.metrics = Some(m_current.clone());
    a.aggregates = None;
    let mut b = candidate;
    b.metrics = Some(m_candidate.clone());
    b.aggregates = None;
    let mut outputs = switchboard_topology::runner::recorded::run_recording_versions(records, workers, vec![a, b])?;
    let candidate = outputs.pop().unwrap_or_default();
    let current = outputs.pop().unwrap_or_default();
    let timings = Timings {
        workers,
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        current: stage_timings(&m_current),
        candidate: stage_timings(&m_candidate),
    };
    Ok(ShadowRun { current, candidate, timings })
}

/// Rates of both versions and their differences, in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RateSummary {
    /// The current version's.
    pub current: compare::Rates,
    /// The candidate's.
    pub candidate: compare::Rates,
    /// Candidate minus current handoff rate, percentage points.
    pub handoff_rate_delta_pp: f64,
    /// Candidate minus current clarify rate, percentage points.
    pub clarify_rate_delta_pp: f64,
}

/// A changed dialogue, every turn with both versions' handling.
#[derive(Debug, Clone, Serialize)]
pub struct DialogueSample {
    /// The dialogue.
    pub dialogue_id: String,
    /// Its turns that changed.
    pub changed_turns: usize,
    /// All its turns, in order.
    pub turns: Vec<TurnDiff>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`REPORT_FORMAT`].
    pub report_format: u32,
    /// What was replayed (the recording as given, or the range of the topic).
    pub input: String,
    /// Records read.
    pub records: usize,
    /// User turns compared.
    pub turns: u64,
    /// The versions named by the current version's outputs.
    pub current: Versions,
    /// The versions named by the candidate's outputs.
    pub candidate: Versions,
    /// Turns whose intent, answer, entry, handoff decision or kind of reply changed.
    pub changed: compare::Changed,
    /// Handoff, clarify and answer rates and their deltas.
    pub rates: RateSummary,
    /// Intent confusion between the versions (current → candidate), most frequent first.
    pub confusion: Vec<compare::Confusion>,
    /// Changed dialogues side by side (at most [`SAMPLE_DIALOGUES`], most changed first).
    pub sample_dialogues: Vec<DialogueSample>,
    /// Every changed turn (at most [`MAX_CHANGED_TURNS`]), in dialogue and time order.
    pub changed_turns: Vec<TurnDiff>,
    /// Changed turns left out of `changed_turns`.
    pub changed_turns_omitted: u64,
    /// The gates and their verdicts, in the order given.
    pub gates: Vec<Verdict>,
}

fn points(x: f64) -> f64 {
    (x * 100.0 * 1e6).round() / 1e6
}

/// Builds the report of a run, evaluating `gates`.
pub fn report(input: &str, records: usize, run: &ShadowRun, gates: &[Gate]) -> Report {
    let comparison: Comparison = compare::compare(&run.current, &run.candidate);
    let verdicts = gates.iter().map(|g| g.check(&comparison)).collect();
    let mut by_dialogue: BTreeMap<&str, Vec<&TurnDiff>> = BTreeMap::new();
    for t in &comparison.all {
        by_dialogue.entry(t.dialogue_id.as_str()).or_default().push(t);
    }
    let mut samples: Vec<DialogueSample> = by_dialogue
        .into_iter()
        .filter_map(|(id, turns)| {
            let changed = turns.iter().filter(|t| !t.changes.is_empty()).count();
            (changed > 0).then(|| DialogueSample { dialogue_id: id.to_string(), changed_turns: changed, turns: turns.into_iter().cloned().collect() })
        })
        .collect();
    samples.sort_by(|a, b| b.changed_turns.cmp(&a.changed_turns).then_with(|| a.dialogue_id.cmp(&b.dialogue_id)));
    samples.truncate(SAMPLE_DIALOGUES);
    let changed: Vec<TurnDiff> = comparison.all.iter().filter(|t| !t.changes.is_empty()).cloned().collect();
    let omitted = changed.len().saturating_sub(MAX_CHANGED_TURNS) as u64;
    Report {
        report_format: REPORT_FORMAT,
        input: input.to_string(),
        records,
        turns: comparison.turns,
        current: compare::versions(&run.current),
        candidate: compare::versions(&run.candidate),
        rates: RateSummary {
            handoff_rate_delta_pp: points(comparison.candidate.handoff_rate - comparison.current.handoff_rate),
            clarify_rate_delta_pp: points(comparison.candidate.clarify_rate - comparison.current.clarify_rate),
            current: comparison.current.clone(),
            candidate: comparison.candidate.clone(),
        },
        changed: comparison.changed.clone(),
        confusion: comparison.confusion.clone(),
        sample_dialogues: samples,
        changed_turns: changed.into_iter().take(MAX_CHANGED_TURNS).collect(),
        changed_turns_omitted: omitted,
        gates: verdicts,
    }
}

/// Writes `report.json`, `report.html` and `timings.json` into `dir` (created if missing).
pub fn write(dir: &Path, report: &Report, timings: &Timings) -> Result<()> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("report.json");
    let json = serde_json::to_string_pretty(report).map_err(|e| io(&path)(e.into()))?;
    std::fs::write(&path, json + "\n").map_err(io(&path))?;
    let path = dir.join("report.html");
    std::fs::write(&path, html::render(report)).map_err(io(&path))?;
    let path = dir.join("timings.json");
    let json = serde_json::to_string_pretty(timings).map_err(|e| io(&path)(e.into()))?;
    std::fs::write(&path, json + "\n").map_err(io(&path))?;
    Ok(())
}
