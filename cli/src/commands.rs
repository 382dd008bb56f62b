//! The CLI's commands, as library functions (the binary only parses arguments).

use crate::config::TopologyConfig;
use crate::BadInput;
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use switchboard_operators::intent::{self, IntentModel, TrainOptions};
use switchboard_connectors::qdrant::QdrantIndex;
use switchboard_operators::retrieval::{kb, RetrieverConfig, Snapshot, VectorBackend};
use switchboard_operators::understand::{ModelUnderstanding, UnderstandingConfig};
use switchboard_replay::backfill::{BackfillOptions, Range, Target};
use switchboard_replay::deterministic::Outcome;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::Locale;
use switchboard_sinks::live::LiveTargets;
use switchboard_sources::kafka::StartPosition;
use switchboard_topology::metrics::Metrics;
use switchboard_topology::runner::live::{self, Layout, RunOptions, RunReport};
use switchboard_topology::{Clock, GraphConfig};

pub(crate) fn locale_of(name: &str) -> Result<Locale> {
    Locale::parse(name)
        .ok_or_else(|| anyhow!(BadInput(format!("unknown locale `{name}` in the configuration (zh-CN or en)"))))
}

/// The vector index named by the configuration's `vector_backend`.
pub fn vector_backend(name: &str) -> Result<VectorBackend> {
    match name {
        "exact" | "" => Ok(VectorBackend::exact()),
        "qdrant" => match QdrantIndex::from_env() {
            Ok(Some(index)) => Ok(VectorBackend::from(index)),
            Ok(None) => Err(anyhow!(BadInput("vector_backend: qdrant needs QDRANT_URL (e.g. http://127.0.0.1:6334)".into()))),
            Err(e) => Err(anyhow!("cannot reach Qdrant for vector_backend: qdrant: {}", switchboard_operators::Error::from(e))),
        },
        other => Err(anyhow!(BadInput(format!("unknown vector_backend `{other}` in the configuration (exact or qdrant)")))),
    }
}

/// How often live runs look for new model versions and knowledge-base snapshots.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Loads the intent models and knowledge base the configuration names; they hot-reload new
/// versions (checked every [`RELOAD_EVERY`]).
pub fn build_understanding(config: &TopologyConfig) -> Result<Arc<ModelUnderstanding>> {
    build_understanding_reloading(config, Some(RELOAD_EVERY))
}

/// As [`build_understanding`], looking for new versions every `reload_every`, or never (`None`:
/// runs on record time use the versions loaded at their start from beginning to end, so that a
/// `kb load` during a `switchboard test`, `replay` or `shadow` cannot change its outputs midway).
fn build_understanding_reloading(config: &TopologyConfig, reload_every: Option<Duration>) -> Result<Arc<ModelUnderstanding>> {
    let mut intent_models = HashMap::new();
    for (locale, dir) in &config.intent_models {
        intent_models.insert(locale_of(locale)?, dir.clone());
    }
    let locales: Vec<Locale> = intent_models.keys().copied().collect();
    let understanding_config = UnderstandingConfig {
        intent_models,
        knowledge_base: config.knowledge_base.clone(),
        retrieval: RetrieverConfig {
            threshold: config.retrieval_threshold.resolve().map_err(|e| anyhow!(BadInput(e)))?,
            ..RetrieverConfig::default()
        },
        cache_capacity: 10_000,
        reload_every: reload_every.unwrap_or(Duration::MAX),
        vector_backend: vector_backend(&config.vector_backend)?,
    };
    let understanding = match &config.model_server {
        // Classify (and embed for retrieval) on the model server; caches and retrieval stay here.
        Some(server) => {
            let backend = switchboard_connectors::model_server::client::RemoteIntentBackend::connect(server, locales)?;
            ModelUnderstanding::with_backend(understanding_config, Arc::new(backend))
        }
        None => ModelUnderstanding::load(understanding_config),
    }
    .map_err(|e| anyhow!("{e} (deploy/dev/prepare.sh trains the demo models and loads the demo knowledge base)"))?;
    let (models, kb) = understanding.versions();
    tracing::info!(?models, kb = %kb, "models and knowledge base loaded");
    Ok(Arc::new(understanding))
}

/// `switchboard model serve`: the configuration's intent models over gRPC until SIGTERM.
pub fn model_serve(
    listen: std::net::SocketAddr,
    tls_dir: Option<PathBuf>,
    config_path: Option<&Path>,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    use switchboard_connectors::model_server::{server, tls};
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    if let Some(dir) = &tls_dir {
        for name in [tls::CA_FILE, tls::SERVER_CERT_FILE, tls::SERVER_KEY_FILE] {
            if !dir.join(name).is_file() {
                return Err(anyhow!(BadInput(format!(
                    "--tls-dir {}: no {name} (deploy/tls/make-test-ca.sh makes a test CA)",
                    dir.display()
                ))));
            }
        }
    }
    let mut dirs = HashMap::new();
    for (locale, dir) in &config.intent_models {
        dirs.insert(locale_of(locale)?, dir.clone());
    }
    let backend = switchboard_operators::intent::backend::LocalIntentBackend::load(dirs)
        .map_err(|e| anyhow!("{e} (deploy/dev/prepare.sh trains the demo models)"))?;
    let options = server::ServeOptions { listen, tls_dir, reload_every: Duration::from_secs(2) };
    runtime.block_on(server::serve(options, Arc::new(backend), async {
        stop_requested().await;
        tracing::info!("model server stopping");
    }))?;
    Ok(())
}

pub(crate) fn graph_config(config: &TopologyConfig, clock: Clock, metrics: Option<Arc<Metrics>>) -> Result<GraphConfig> {
    let reload_every = (clock == Clock::Wall).then_some(RELOAD_EVERY);
    let mut graph = GraphConfig::new(build_understanding_reloading(config, reload_every)?, config.session(), clock);
    graph.aggregates = metrics.as_ref().map(|m| m.live_aggregates());
    graph.metrics = metrics;
    if clock == Clock::Wall && config.expire_turns_after_ms > 0 {
        let after = i64::try_from(config.expire_turns_after_ms).unwrap_or(i64::MAX);
        graph.expiry = Some(Arc::new(switchboard_operators::analysis::Expiry::after(after)));
    }
    Ok(graph)
}

/// Completes on SIGTERM or Ctrl-C (only Ctrl-C where no SIGTERM handler can be installed).
pub async fn stop_requested() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn install_stop_handler(runtime: &tokio::runtime::Runtime) {
    runtime.spawn(async {
        stop_requested().await;
        tracing::info!("stopping: finishing the current epoch and committing");
        live::STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// `switchboard run` / `submit`: the live topology until SIGTERM.
pub fn run_topology(layout: Layout, config_path: Option<&Path>, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    let metrics = Arc::new(Metrics::new());
    let graph = graph_config(&config, Clock::Wall, Some(metrics.clone()))?;
    if !config.metrics_listen.is_empty() {
        let addr = config
            .metrics_listen
            .parse()
            .map_err(|_| anyhow!(BadInput(format!("metrics_listen `{}` is not host:port", config.metrics_listen))))?;
        let m = metrics.clone();
        runtime.spawn(async move {
            if let Err(e) = crate::metrics_http::serve(addr, m).await {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
    }
    install_stop_handler(runtime);
    let options = RunOptions {
        layout,
        group_id: config.group_id.clone(),
        topic: config.input_topic.clone(),
        start: StartPosition::Committed,
        end: None,
        commit: true,
        batch_max: config.batch_max,
        poll_wait: Duration::from_millis(config.poll_wait_ms),
        max_in_flight: config.max_in_flight,
        group_commit: group_commit(&config),
        targets: LiveTargets {
            replies_topic: Some(config.replies_topic.clone()),
            dead_letter_topic: Some(config.dead_letter_topic.clone()),
            sessions: true,
            fill_gaps: false,
        },
        clock: Clock::Wall,
        progress: false,
    };
    live::run(options, graph, metrics, KafkaSettings::from_env()?, ClickHouseSettings::from_env()?, runtime)
        .map_err(|e| anyhow!(e).context("the topology stopped (fail-stop: uncommitted epochs are redone at the restart)"))?;
    Ok(())
}

/// The ClickHouse group commit of the topology's configuration.
fn group_commit(config: &TopologyConfig) -> switchboard_sinks::group_commit::GroupCommitConfig {
    switchboard_sinks::group_commit::GroupCommitConfig {
        interval: Duration::from_millis(config.clickhouse_insert_interval_ms.max(1)),
        ..Default::default()
    }
}

/// `switchboard replay`: re-runs a range into ClickHouse (and optionally a topic).
pub fn replay(range: &Range, target: Target, output_topic: Option<String>, workers: usize, config_path: Option<&Path>, runtime: &tokio::runtime::Runtime) -> Result<RunReport> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    let metrics = Arc::new(Metrics::new());
    let graph = graph_config(&config, Clock::Virtual, Some(metrics.clone()))?;
    install_stop_handler(runtime);
    let options = BackfillOptions {
        range: range.clone(),
        topic: config.input_topic.clone(),
        group_id: config.group_id.clone(),
        workers,
        batch_max: config.batch_max,
        max_in_flight: config.max_in_flight,
        group_commit: group_commit(&config),
        output_topic,
        target,
    };
    let clickhouse = ClickHouseSettings::from_env()?;
    Ok(switchboard_replay::backfill::backfill(options, graph, metrics, KafkaSettings::from_env()?, clickhouse, runtime)?)
}

/// `switchboard record`: PII in `user_said` texts and user ids masked unless `raw` (then the
/// file is written with mode 600).
pub fn record(topic: &str, range: &Range, out: &Path, raw: bool) -> Result<u64> {
    use switchboard_replay::record::Privacy;
    let settings = KafkaSettings::from_env()?;
    let privacy = if raw { Privacy::Raw } else { Privacy::Masked };
    Ok(switchboard_replay::record::record(&settings, topic, &range.start, Some(&range.end), out, true, privacy)?)
}

/// `switchboard retention`: the JSON line to print (one object per table).
pub fn retention(policy: &crate::retention::Policy, runtime: &tokio::runtime::Runtime) -> Result<String> {
    use crate::retention::RetentionError;
    let settings = ClickHouseSettings::from_env()?;
    let outcomes = runtime.block_on(crate::retention::apply(&settings, policy, std::time::SystemTime::now())).map_err(|e| match e {
        RetentionError::BadDays { .. } => anyhow!(BadInput(e.to_string())),
        other => anyhow!(other),
    })?;
    Ok(serde_json::json!({ "dry_run": policy.dry_run, "tables": outcomes }).to_string())
}

/// `switchboard test`: exit 0 when the output equals the golden file (or it was blessed), 1
/// with a diff on stderr otherwise.
pub fn test_recording(recording: &Path, golden: &Path, bless: bool, workers: usize, config_path: Option<&Path>) -> Result<ExitCode> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    if let Err(e) = switchboard_sources::recording::read_recording(recording) {
        return Err(anyhow!(BadInput(e.to_string())));
    }
    let graph = graph_config(&config, Clock::Virtual, None)?;
    match switchboard_replay::deterministic::test_recording(recording, golden, bless, workers, graph)? {
        Outcome::Blessed { events } => {
            eprintln!("blessed {} ({events} events)", golden.display());
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Same { events } => {
            eprintln!("{}: {events} events, identical to {}", recording.display(), golden.display());
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Different { diff } => {
            eprintln!("{}: output differs from {}:\n{diff}", recording.display(), golden.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// `switchboard intent train`: prints a JSON summary.
pub fn intent_train(data: &Path, encoder: &str, out: &Path, fine: Option<intent::FineTuneOptions>) -> Result<String> {
    let examples = intent::load_examples(data).map_err(|e| anyhow!(BadInput(e.to_string())))?;
    let started = std::time::Instant::now();
    let (model, report, tuned) = match &fine {
        Some(fine) => {
            let (model, report, tuned) = intent::train_fine_tuned(&examples, encoder, out, &TrainOptions::default(), fine, true)?;
            (model, report, Some(tuned))
        }
        None => {
            let (model, report) = intent::train(&examples, encoder, &TrainOptions::default(), true)?;
            (model, report, None)
        }
    };
    model.save(out).with_context(|| format!("cannot save the model to {}", out.display()))?;
    if fine.is_some() {
        // Found by `switchboard shadow` (README, "Shadow replay"): retrieval then runs in the
        // fine-tuned space, where similarity scores are lower than the base encoder's.
        eprintln!(
            "switchboard: note: with this model, queries and the knowledge base are embedded by the fine-tuned encoder, \
             whose similarity scores run lower than the base encoder's; recalibrate retrieval_threshold for it and compare \
             with `switchboard shadow` before rollout (README, \"Fine-tuning the encoder\")"
        );
    }
    Ok(serde_json::json!({
        "model": out, "version": model.version(), "report": report, "fine_tune": tuned,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
    .to_string())
}

/// `switchboard intent eval`: `{"accuracy","macro_f1","n"}`.
pub fn intent_eval(data: &Path, model_dir: &Path, folds: Option<usize>) -> Result<String> {
    let examples = intent::load_examples(data).map_err(|e| anyhow!(BadInput(e.to_string())))?;
    let model = IntentModel::load(model_dir)?;
    let report = match folds {
        Some(k) if k < 2 => return Err(anyhow!(BadInput("--folds must be at least 2".into()))),
        Some(k) => {
            let options: TrainOptions = serde_json::from_value(model.meta().metrics.get("options").cloned().unwrap_or_default())
                .unwrap_or_default();
            let report = match &model.meta().fine_tune {
                // Fine-tuned in every fold, from the base encoder, on the fold's training part.
                Some(fine) => intent::cross_validate_fine_tuned(&examples, &model.meta().encoder, k, &options, fine, true),
                None => intent::cross_validate(&examples, model.encoder(), k, &options),
            };
            // What the data cannot support (too few examples of a label for K folds) is bad input.
            report.map_err(|e| match e {
                switchboard_operators::Error::Training(message) => anyhow!(BadInput(message)),
                other => anyhow!(other),
            })?
        }
        None => intent::evaluate(&model, &examples)?,
    };
    Ok(serde_json::json!({ "accuracy": report.accuracy, "macro_f1": report.macro_f1, "n": report.n }).to_string())
}

/// `switchboard kb load`: validates and embeds the files, publishes the snapshot, prints its version.
pub fn kb_load(files: &[PathBuf], config_path: Option<&Path>) -> Result<String> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    let entries = kb::load_kb(files).map_err(|e| anyhow!(BadInput(e.to_string())))?;
    publish_kb(entries, &config.intent_models, &config.knowledge_base)
}

/// Embeds `entries` and publishes the snapshot under `root`; returns its version. Each locale's
/// questions are embedded with the encoder of that locale's intent model in `intent_models`, so
/// queries (embedded by the model) and entries share one vector space.
pub(crate) fn publish_kb(
    entries: Vec<switchboard_operators::retrieval::kb::KbEntry>,
    intent_models: &std::collections::BTreeMap<String, PathBuf>,
    root: &Path,
) -> Result<String> {
    let mut encoders: HashMap<Locale, intent::Encoder> = HashMap::new();
    for (name, dir) in intent_models {
        let locale = locale_of(name)?;
        // A fine-tuned model's own encoder, else the base it names (or the locale's default).
        let encoder_dir = IntentModel::encoder_dir(dir).unwrap_or_else(|_| intent::resolve_model_dir(default_encoder(locale)));
        let encoder = intent::Encoder::load(&encoder_dir)?;
        encoders.insert(locale, encoder);
    }
    let snapshot = Snapshot::build(entries, |l| encoders.get(&l))?;
    snapshot.publish(root)?;
    Ok(snapshot.version.clone())
}

fn default_encoder(locale: Locale) -> &'static str {
    match locale {
        Locale::ZhCn => "m3e-small",
        Locale::En => "all-minilm-l6-v2",
    }
}

/// `switchboard user add NAME --role ROLE`: the password from `SWITCHBOARD_USER_PASSWORD_FILE`
/// or standard input (piped; a terminal is refused, since it would echo the password). Returns
/// the line to print; never the password.
pub fn user_add(name: &str, role: &str) -> Result<String> {
    use std::io::{IsTerminal, Read};
    use switchboard_gateway::accounts::{self, Accounts, Role, Upsert};
    let role: Role = role.parse().map_err(|e: switchboard_gateway::Error| anyhow!(BadInput(format!("--role: {e}"))))?;
    let text = match std::env::var("SWITCHBOARD_USER_PASSWORD_FILE") {
        Ok(path) if !path.trim().is_empty() => std::fs::read_to_string(&path)
            .map_err(|e| anyhow!(BadInput(format!("SWITCHBOARD_USER_PASSWORD_FILE {path}: {e}"))))?,
        _ => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(anyhow!(BadInput(
                    "give the password on standard input (e.g. from a file or a password manager) or in \
                     SWITCHBOARD_USER_PASSWORD_FILE; it is never read from a terminal or an argument"
                        .into()
                )));
            }
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(|e| anyhow!(BadInput(format!("cannot read the password: {e}"))))?;
            text
        }
    };
    let password = accounts::password_from_text(&text);
    let path = accounts::users_file();
    let mut all = Accounts::load(&path)?;
    let outcome = all.upsert(name, role, password).map_err(|e| match e {
        switchboard_gateway::Error::Account(message) => anyhow!(BadInput(message)),
        other => anyhow!(other),
    })?;
    let verb = match outcome {
        Upsert::Added => "added",
        Upsert::Updated => "updated",
    };
    Ok(format!("{verb} {} {name} in {}", role.as_str(), path.display()))
}
