//! The CLI's commands, as library functions (the binary only parses arguments).

use crate::config::TopologyConfig;
use crate::graph::{Clock, GraphConfig};
use crate::live_sink::LiveTargets;
use crate::metrics::Metrics;
use crate::run::{self, Layout, RunOptions, RunReport};
use crate::BadInput;
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use switchboard_operators::intent::{self, IntentModel, TrainOptions};
use switchboard_operators::retrieval::qdrant::QdrantIndex;
use switchboard_operators::retrieval::{kb, RetrieverConfig, Snapshot, VectorBackend};
use switchboard_operators::understand::{ModelUnderstanding, UnderstandingConfig};
use switchboard_replay::golden::{compare, read_golden, Comparison};
use switchboard_schemas::settings::KafkaSettings;
use switchboard_schemas::Locale;
use switchboard_sources::kafka::{EndPosition, StartPosition};

/// An offset or time range of a topic.
#[derive(Debug, Clone)]
pub struct Range {
    /// Where to start.
    pub start: StartPosition,
    /// Where to stop (exclusive).
    pub end: EndPosition,
}

fn locale_of(name: &str) -> Result<Locale> {
    match name {
        "zh-CN" | "zh" => Ok(Locale::ZhCn),
        "en" => Ok(Locale::En),
        other => Err(anyhow!(BadInput(format!("unknown locale `{other}` in the configuration (zh-CN or en)")))),
    }
}

/// The vector index named by the configuration's `vector_backend`.
pub fn vector_backend(name: &str) -> Result<VectorBackend> {
    match name {
        "exact" | "" => Ok(VectorBackend::Exact),
        "qdrant" => match QdrantIndex::from_env() {
            Ok(Some(index)) => Ok(VectorBackend::Qdrant(index)),
            Ok(None) => Err(anyhow!(BadInput("vector_backend: qdrant needs QDRANT_URL (e.g. http://127.0.0.1:6334)".into()))),
            Err(e) => Err(anyhow!("cannot reach Qdrant for vector_backend: qdrant: {e}")),
        },
        other => Err(anyhow!(BadInput(format!("unknown vector_backend `{other}` in the configuration (exact or qdrant)")))),
    }
}

/// Loads the intent models and knowledge base the configuration names.
pub fn build_understanding(config: &TopologyConfig) -> Result<Arc<ModelUnderstanding>> {
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
        reload_every: Duration::from_secs(2),
        vector_backend: vector_backend(&config.vector_backend)?,
    };
    let understanding = match &config.model_server {
        // Classify (and embed for retrieval) on the model server; caches and retrieval stay here.
        Some(server) => {
            let backend = crate::model_server::client::RemoteIntentBackend::connect(server, locales)?;
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
    use crate::model_server::{server, tls};
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

fn graph_config(config: &TopologyConfig, clock: Clock, metrics: Option<Arc<Metrics>>) -> Result<GraphConfig> {
    let aggregates = metrics.as_ref().map(|m| m.live_aggregates());
    Ok(GraphConfig { understand: build_understanding(config)?, session: config.session(), clock, metrics, aggregates })
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
        run::STOP.store(true, std::sync::atomic::Ordering::Relaxed);
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
            if let Err(e) = crate::metrics::serve(addr, m).await {
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
        targets: LiveTargets {
            replies_topic: Some(config.replies_topic.clone()),
            dead_letter_topic: Some(config.dead_letter_topic.clone()),
            sessions: true,
        },
        clock: Clock::Wall,
        progress: false,
    };
    run::run(options, graph, metrics, runtime)?;
    Ok(())
}

/// `switchboard replay`: re-runs a range into ClickHouse (and optionally a topic).
pub fn replay(range: &Range, output_topic: Option<String>, workers: usize, config_path: Option<&Path>, runtime: &tokio::runtime::Runtime) -> Result<RunReport> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    let metrics = Arc::new(Metrics::new());
    let graph = graph_config(&config, Clock::Virtual, Some(metrics.clone()))?;
    install_stop_handler(runtime);
    let options = RunOptions {
        layout: Layout::Process(workers),
        group_id: format!("{}-replay", config.group_id),
        topic: config.input_topic.clone(),
        start: range.start.clone(),
        end: Some(range.end.clone()),
        commit: false,
        batch_max: config.batch_max,
        poll_wait: Duration::from_millis(200),
        targets: LiveTargets { replies_topic: output_topic, dead_letter_topic: None, sessions: false },
        clock: Clock::Virtual,
        progress: true,
    };
    run::run(options, graph, metrics, runtime)
}

/// `switchboard record`.
pub fn record(topic: &str, range: &Range, out: &Path) -> Result<u64> {
    let settings = KafkaSettings::from_env()?;
    Ok(switchboard_replay::record::record(&settings, topic, &range.start, Some(&range.end), out, true)?)
}

/// `switchboard test`: exit 0 when the output equals the golden file (or it was blessed), 1
/// with a diff on stderr otherwise.
pub fn test_recording(recording: &Path, golden: &Path, bless: bool, workers: usize, config_path: Option<&Path>) -> Result<ExitCode> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    let records = switchboard_sources::recording::read_recording(recording).map_err(|e| anyhow!(BadInput(e.to_string())))?;
    let graph = graph_config(&config, Clock::Virtual, None)?;
    let events = crate::deterministic::run_recording(records, workers, graph)?;
    let text = switchboard_sinks::file::to_ndjson(&events);
    if bless {
        std::fs::write(golden, &text).with_context(|| format!("cannot write {}", golden.display()))?;
        eprintln!("blessed {} ({} events)", golden.display(), events.len());
        return Ok(ExitCode::SUCCESS);
    }
    let want = read_golden(golden).with_context(|| format!("cannot read {}", golden.display()))?;
    match compare(&want, &text) {
        Comparison::Same => {
            eprintln!("{}: {} events, identical to {}", recording.display(), events.len(), golden.display());
            Ok(ExitCode::SUCCESS)
        }
        Comparison::Different(diff) => {
            eprintln!("{}: output differs from {}:\n{diff}", recording.display(), golden.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// `switchboard intent train`: prints a JSON summary.
pub fn intent_train(data: &Path, encoder: &str, out: &Path) -> Result<String> {
    let examples = intent::load_examples(data).map_err(|e| anyhow!(BadInput(e.to_string())))?;
    let (model, report) = intent::train(&examples, encoder, &TrainOptions::default(), true)?;
    model.save(out).with_context(|| format!("cannot save the model to {}", out.display()))?;
    Ok(serde_json::json!({ "model": out, "version": model.version(), "report": report }).to_string())
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
            intent::cross_validate(&examples, model.encoder(), k, &options)?
        }
        None => intent::evaluate(&model, &examples)?,
    };
    Ok(serde_json::json!({ "accuracy": report.accuracy, "macro_f1": report.macro_f1, "n": report.n }).to_string())
}

/// `switchboard kb load`: validates and embeds the files, publishes the snapshot, prints its version.
pub fn kb_load(files: &[PathBuf], config_path: Option<&Path>) -> Result<String> {
    let config = TopologyConfig::load(config_path).map_err(|e| anyhow!(BadInput(format!("{e:#}"))))?;
    let entries = kb::load_kb(files).map_err(|e| anyhow!(BadInput(e.to_string())))?;
    // Each locale's questions are embedded with the encoder of that locale's intent model, so
    // queries (embedded by the model) and entries share one vector space.
    let mut encoders: HashMap<Locale, intent::Encoder> = HashMap::new();
    for (name, dir) in &config.intent_models {
        let locale = locale_of(name)?;
        let model_encoder = IntentModel::load(dir)
            .map(|m| m.meta().encoder.clone())
            .unwrap_or_else(|_| default_encoder(locale).to_string());
        let encoder = intent::Encoder::load(&intent::resolve_model_dir(&model_encoder))?;
        encoders.insert(locale, encoder);
    }
    let snapshot = Snapshot::build(entries, |l| encoders.get(&l))?;
    snapshot.publish(&config.knowledge_base)?;
    Ok(snapshot.version.clone())
}

fn default_encoder(locale: Locale) -> &'static str {
    match locale {
        Locale::ZhCn => "m3e-small",
        Locale::En => "all-minilm-l6-v2",
    }
}
