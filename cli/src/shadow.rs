//! `switchboard shadow`: builds the candidate (intent models, knowledge base) beside the
//! configuration's current ones, runs both over the same turns in one deterministic pass,
//! writes the report and applies the gates.

use crate::commands::{graph_config, locale_of, publish_kb};
use crate::config::TopologyConfig;
use crate::BadInput;
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchboard_operators::intent::IntentModel;
use switchboard_operators::retrieval::{kb, Snapshot};
use switchboard_replay::backfill::Range;
use switchboard_replay::shadow::{self, gates::Gate};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::SourceRecord;
use switchboard_topology::Clock;

/// The turns to replay.
pub enum ShadowInput {
    /// A recording file.
    Recording(PathBuf),
    /// A range of the configuration's input topic (`user.said`), and how it was given.
    Range(Range, String),
}

/// What `switchboard shadow` was asked.
pub struct ShadowOptions {
    /// The turns.
    pub input: ShadowInput,
    /// A folder with the candidate intent models, one subfolder per locale (`zh-CN` or `zh`,
    /// `en`; a locale without one keeps the current model).
    pub candidate_models: Option<PathBuf>,
    /// The candidate knowledge base (a file `kb load` takes).
    pub candidate_kb: Option<PathBuf>,
    /// `--fail-if` expressions.
    pub gates: Vec<String>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// The configuration (the current version).
    pub config: Option<PathBuf>,
}

fn bad(message: String) -> anyhow::Error {
    anyhow!(BadInput(message))
}

/// The candidate's intent model folders: the current ones, replaced per locale by what `dir`
/// holds (`dir/<locale>` as the configuration names it, or `dir/<name of the current folder>`).
fn candidate_models(current: &BTreeMap<String, PathBuf>, dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    if !dir.is_dir() {
        return Err(bad(format!("--candidate-models {}: not a folder", dir.display())));
    }
    let mut models = current.clone();
    let mut found = Vec::new();
    for (locale, folder) in current {
        let by_locale = dir.join(locale);
        let by_name = folder.file_name().map(|n| dir.join(n));
        let chosen = [Some(by_locale), by_name].into_iter().flatten().find(|d| d.is_dir());
        if let Some(chosen) = chosen {
            IntentModel::load(&chosen).map_err(|e| bad(format!("--candidate-models: {}: {e}", chosen.display())))?;
            found.push(locale.clone());
            models.insert(locale.clone(), chosen);
        }
    }
    if found.is_empty() {
        let expected: Vec<String> = current
            .iter()
            .map(|(locale, folder)| match folder.file_name() {
                Some(name) => format!("{locale} or {}", name.to_string_lossy()),
                None => locale.clone(),
            })
            .collect();
        let hint = if dir.join("model.json").is_file() {
            " — this is one model folder: put it in a folder as its locale's subfolder, e.g. CANDIDATES/zh-CN"
        } else {
            ""
        };
        return Err(bad(format!(
            "--candidate-models {}: no model folder for any locale (expected subfolders named {}){hint}",
            dir.display(),
            expected.join("; ")
        )));
    }
    tracing::info!(locales = ?found, "candidate intent models");
    Ok(models)
}

fn read_input(input: &ShadowInput, config: &TopologyConfig) -> Result<(String, Vec<SourceRecord>)> {
    match input {
        ShadowInput::Recording(path) => {
            let records = switchboard_sources::recording::read_recording(path).map_err(|e| bad(e.to_string()))?;
            Ok((path.display().to_string(), records))
        }
        ShadowInput::Range(range, given) => {
            let settings = KafkaSettings::from_env()?;
            switchboard_sources::access::check(&settings, switchboard_sources::access::timeout_from_env())?;
            let records = switchboard_replay::record::read_range(&settings, &config.input_topic, &range.start, Some(&range.end), true)?;
            Ok((format!("{} {given}", config.input_topic), records))
        }
    }
}

/// Runs `switchboard shadow`: exit 0, or 1 with one line naming the failed gate(s) on stderr.
pub fn shadow(options: &ShadowOptions) -> Result<ExitCode> {
    let gates: Vec<Gate> = options.gates.iter().map(|g| Gate::parse(g).map_err(|e| bad(e.to_string()))).collect::<Result<_>>()?;
    let config = TopologyConfig::load(options.config.as_deref()).map_err(|e| bad(format!("{e:#}")))?;
    for locale in config.intent_models.keys() {
        locale_of(locale)?;
    }
    let (input, records) = read_input(&options.input, &config)?;
    if records.is_empty() {
        eprintln!("switchboard shadow: {input} holds no records; the report compares no turns");
    }

    let mut candidate = config.clone();
    if let Some(dir) = &options.candidate_models {
        candidate.intent_models = candidate_models(&config.intent_models, dir)?;
        // The candidate classifies in this process, whatever serves the current models.
        candidate.model_server = None;
    }
    // The candidate's knowledge base, embedded with the candidate's encoders, in a folder of
    // its own (removed at the end): never published where the live topology would load it.
    let scratch = tempfile::Builder::new().prefix("switchboard-shadow-kb-").tempdir().context("cannot create a scratch folder")?;
    if options.candidate_kb.is_some() || options.candidate_models.is_some() {
        let entries = match &options.candidate_kb {
            Some(file) => kb::load_kb(std::slice::from_ref(file)).map_err(|e| bad(format!("--candidate-kb: {e}")))?,
            None => {
                Snapshot::load_current(&config.knowledge_base)
                    .map_err(|e| anyhow!("cannot read the current knowledge base in {}: {e}", config.knowledge_base.display()))?
                    .entries
            }
        };
        let version = publish_kb(entries, &candidate.intent_models, scratch.path())?;
        tracing::info!(%version, "candidate knowledge base");
        candidate.knowledge_base = scratch.path().to_path_buf();
    }

    let current_graph = graph_config(&config, Clock::Virtual, None)?;
    let candidate_graph = graph_config(&candidate, Clock::Virtual, None)?;
    let n = records.len();
    let run = shadow::run(records, options.workers, current_graph, candidate_graph)?;
    let report = shadow::report(&input, n, &run, &gates);
    shadow::write(&options.out, &report, &run.timings)?;
    println!(
        "{}",
        serde_json::json!({
            "turns": report.turns,
            "changed": report.changed,
            "handoff_rate_delta_pp": report.rates.handoff_rate_delta_pp,
            "clarify_rate_delta_pp": report.rates.clarify_rate_delta_pp,
            "report": options.out.join("report.html"),
            "seconds": run.timings.seconds,
        })
    );
    let failed: Vec<String> = report.gates.iter().filter(|v| v.failed).map(|v| format!("`{}` ({})", v.gate, v.value)).collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("switchboard shadow: gate failed: {} (report: {})", failed.join("; "), options.out.join("report.html").display());
    Ok(ExitCode::from(1))
}
