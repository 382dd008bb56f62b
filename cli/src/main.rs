//! The `switchboard` command line. Exit status: 0 success, 2 bad usage or bad input, 1 other
//! failure; errors go to stderr in one line.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard_cli::cli_time::parse_timestamp;
use switchboard_cli::commands;
use switchboard_cli::BadInput;

/// Switchboard: an event-driven customer-service engine.
#[derive(Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the topology in one process: user.said → answers on bot.said and events in ClickHouse.
    Run {
        /// Timely worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// YAML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// WebSocket edge: chat page at /, WebSocket at /ws; console, agent page and metrics on the
    /// admin listener.
    Gateway {
        /// Address to listen on (default 127.0.0.1:8080, or SWITCHBOARD_GATEWAY_LISTEN).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Address of the admin listener (default 127.0.0.1:8081, or
        /// SWITCHBOARD_GATEWAY_ADMIN_LISTEN; `off` serves none).
        #[arg(long)]
        admin_listen: Option<String>,
    },
    /// Run one process of a timely cluster (hosts file: one host:port a line).
    Submit {
        /// Hosts file.
        #[arg(long)]
        hosts: PathBuf,
        /// This process's index (0-based line of the hosts file).
        #[arg(long)]
        process: usize,
        /// Worker threads in this process.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// YAML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Capture Kafka records of a topic into a recording (NDJSON).
    Record {
        /// Topic to record.
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        range: RangeArgs,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Keep user.said texts and user ids as typed instead of masking their PII; the file then
        /// holds personal data (a warning says so) and is written with mode 600.
        #[arg(long)]
        raw: bool,
    },
    /// Backfill: re-run the topology over a range of user.said into the sinks, idempotently,
    /// never changing what the live run recorded.
    Replay {
        #[command(flatten)]
        range: RangeArgs,
        /// Write every output of the range into this ClickHouse database (created when missing;
        /// default: the live database's name with `_backfill`). Never the live database.
        #[arg(long, conflicts_with = "fill_gaps")]
        into: Option<String>,
        /// Write into the live database only the outputs of turns it has no outcome for (turns
        /// the live run skipped, dead-lettered or lost); nothing it recorded is written again.
        #[arg(long)]
        fill_gaps: bool,
        /// Also write answers and handoffs to this topic (default: ClickHouse only).
        #[arg(long)]
        output_topic: Option<String>,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// YAML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Deterministic run on recorded traffic; exit 1 with a diff when outputs differ from the golden file.
    Test {
        /// The recording.
        recording: PathBuf,
        /// Golden output file.
        #[arg(long)]
        golden: PathBuf,
        /// Write the golden file instead of comparing.
        #[arg(long)]
        bless: bool,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// YAML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the current and a candidate version (intent models, knowledge base) over the same
    /// recorded turns and report every difference (report.json, report.html); exit 1 when a
    /// --fail-if gate fails.
    Shadow {
        /// A recording (or give --from-offset / --from-time for a range of user.said).
        #[arg(conflicts_with_all = ["from_offset", "from_time", "to_offset", "to_time"])]
        recording: Option<PathBuf>,
        #[command(flatten)]
        range: RangeArgs,
        /// Candidate intent models: a folder with one model folder per locale (zh-CN or zh, en).
        #[arg(long)]
        candidate_models: Option<PathBuf>,
        /// Candidate knowledge base (YAML or JSONL, as `kb load` takes).
        #[arg(long)]
        candidate_kb: Option<PathBuf>,
        /// A rollout gate, e.g. 'changed_answers > 2%' or 'handoff_rate_delta > 0.5pp' (repeatable).
        #[arg(long = "fail-if")]
        fail_if: Vec<String>,
        /// Report folder (report.json, report.html, timings.json).
        #[arg(long)]
        out: PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// YAML configuration file (the current version).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Train or evaluate an intent classifier.
    Intent {
        #[command(subcommand)]
        command: IntentCommand,
    },
    /// Manage the knowledge base.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// WebSocket load: prints JSON with p50/p95/p99/max ms, sent, answered, errors.
    Loadgen {
        /// Gateway WebSocket URL, e.g. ws://127.0.0.1:8080/ws.
        #[arg(long)]
        url: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Says per second in total (open loop).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Duration, e.g. 30s, 2m or plain seconds.
        #[arg(long, default_value = "30s")]
        duration: String,
        /// Utterance mix: zipf or unique.
        #[arg(long, default_value = "zipf")]
        mix: String,
    },
    /// Check that the broker, its topics, ClickHouse and the models are reachable.
    Doctor,
    /// Delete events and saved sessions older than their retention from ClickHouse (run daily).
    Retention {
        /// Days events are kept (by occurred_at).
        #[arg(long, env = switchboard_cli::retention::EVENTS_DAYS_ENV, default_value_t = switchboard_cli::retention::DEFAULT_EVENTS_DAYS)]
        events_days: u32,
        /// Days saved session states are kept (by inserted_at).
        #[arg(long, env = switchboard_cli::retention::SESSIONS_DAYS_ENV, default_value_t = switchboard_cli::retention::DEFAULT_SESSIONS_DAYS)]
        sessions_days: u32,
        /// Longest wait, in seconds, for ClickHouse to finish a delete.
        #[arg(long, default_value_t = 600)]
        wait_seconds: u64,
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Manage operator and agent accounts of the admin listener.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The model server: intent classification and embeddings over gRPC.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Serve Classify and Embed (tonic gRPC, batched), plain or with mutual TLS.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = switchboard_connectors::model_server::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Mutual TLS: a folder with ca.pem, server.pem and server.key (deploy/tls/make-test-ca.sh);
        /// clients must present a certificate signed by ca.pem.
        #[arg(long)]
        tls_dir: Option<PathBuf>,
        /// YAML configuration file (its intent_models are served).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = number.parse().map_err(|_| anyhow!(BadInput(format!("--duration `{text}` is not like 30s, 2m or 90"))))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => bail!(BadInput(format!("--duration `{text}`: unknown unit `{unit}` (ms, s, m, h)"))),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        bail!(BadInput(format!("--duration `{text}` must be positive")));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[derive(Subcommand)]
enum IntentCommand {
    /// Train a classifier on JSONL ({"text","label"} a line).
    Train {
        /// Training data.
        #[arg(long)]
        data: PathBuf,
        /// Encoder name (under $SWITCHBOARD_MODELS) or folder.
        #[arg(long)]
        encoder: String,
        /// Output model folder.
        #[arg(long)]
        out: PathBuf,
        /// Fine-tune the encoder with the head (saved in the model folder as `encoder/`).
        #[arg(long)]
        fine_tune: bool,
        /// Upper transformer layers fine-tuned (0: all).
        #[arg(long, default_value_t = 0, requires = "fine_tune")]
        fine_tune_layers: usize,
        /// Most fine-tuning epochs (early stopping on a validation split ends sooner).
        #[arg(long, default_value_t = 6, requires = "fine_tune")]
        fine_tune_epochs: usize,
        /// Fine-tuning learning rate of the encoder (AdamW).
        #[arg(long, default_value_t = 1e-4, requires = "fine_tune")]
        fine_tune_lr: f64,
    },
    /// Evaluate: print {"accuracy","macro_f1","n"} as JSON.
    Eval {
        /// Labelled data.
        #[arg(long)]
        data: PathBuf,
        /// Trained model folder.
        #[arg(long)]
        model: PathBuf,
        /// Stratified K-fold cross-validation on the data (training with the model's settings)
        /// instead of evaluating the model as trained.
        #[arg(long)]
        folds: Option<usize>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account, or give an existing one this role and a new password. The password comes
    /// from standard input (one line) or from the file named by SWITCHBOARD_USER_PASSWORD_FILE,
    /// never from an argument; the users file is SWITCHBOARD_USERS_FILE (default
    /// $SWITCHBOARD_STATE/users.json).
    Add {
        /// Login name (letters, digits and . _ @ -).
        name: String,
        /// viewer, agent, supervisor or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum KbCommand {
    /// Validate, embed and publish a knowledge base (YAML or JSONL); running topologies swap to it.
    Load {
        /// Knowledge-base files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// YAML configuration file (for the snapshot root and encoders).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// An offset or time range.
#[derive(Args)]
struct RangeArgs {
    /// Start offsets, PARTITION:OFFSET,… (this or --from-time is required)
    #[arg(long, conflicts_with = "from_time")]
    from_offset: Option<String>,
    /// Start time (ms since the epoch or RFC 3339 UTC).
    #[arg(long)]
    from_time: Option<String>,
    /// End offsets (exclusive), PARTITION:OFFSET,…
    #[arg(long, conflicts_with = "to_time")]
    to_offset: Option<String>,
    /// End time (exclusive; ms since the epoch or RFC 3339 UTC).
    #[arg(long)]
    to_time: Option<String>,
}

impl RangeArgs {
    fn parse(&self) -> Result<switchboard_replay::backfill::Range> {
        use switchboard_sources::kafka::{parse_offsets, EndPosition, StartPosition};
        let bad = |e: String| anyhow!(BadInput(e));
        let start = match (&self.from_offset, &self.from_time) {
            (Some(o), _) => StartPosition::Offsets(parse_offsets(o).map_err(|e| bad(format!("--from-offset: {e}")))?),
            (None, Some(t)) => StartPosition::Time(parse_timestamp(t).map_err(|e| bad(format!("--from-time: {e}")))?),
            (None, None) => bail!(BadInput("give --from-offset or --from-time".into())),
        };
        let end = match (&self.to_offset, &self.to_time) {
            (Some(o), _) => EndPosition::Offsets(parse_offsets(o).map_err(|e| bad(format!("--to-offset: {e}")))?),
            (None, Some(t)) => EndPosition::Time(parse_timestamp(t).map_err(|e| bad(format!("--to-time: {e}")))?),
            (None, None) => EndPosition::HighWatermark,
        };
        Ok(switchboard_replay::backfill::Range { start, end })
    }

    /// The range as given on the command line.
    fn describe(&self) -> String {
        [("from-offset", &self.from_offset), ("from-time", &self.from_time), ("to-offset", &self.to_offset), ("to-time", &self.to_time)]
            .iter()
            .filter_map(|(name, v)| v.as_ref().map(|v| format!("--{name} {v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    encoder_threads(&cli.command);
    warn_if_int8(&cli.command);
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("switchboard: {line}");
            if e.chain().any(|c| c.downcast_ref::<BadInput>().is_some()) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// With two or more timely workers, each worker's encoder runs its matrix products on its own
/// thread (`CANDLE_NUM_THREADS=1` unless set): the workers already use the cores, and candle's
/// pool of helper threads spins while it waits, taking the CPU the broker and the other workers
/// need (measured: unique traffic at 100 turns/s with the pool, 175 without; README, "The live
/// path"). Called before any thread starts.
fn encoder_threads(command: &Command) {
    let workers = match command {
        Command::Run { workers, .. } | Command::Submit { workers, .. } | Command::Replay { workers, .. } => *workers,
        _ => return,
    };
    if workers >= 2 && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Golden files and shadow reports are made in f32, the same bytes on every machine; 8-bit
/// inference depends on the CPU's instructions, so say so when it is on for such a run.
fn warn_if_int8(command: &Command) {
    if matches!(command, Command::Test { .. } | Command::Shadow { .. })
        && switchboard_operators::intent::packed::Precision::from_env() == Ok(switchboard_operators::intent::packed::Precision::Int8)
    {
        eprintln!(
            "switchboard: warning: SWITCHBOARD_ENCODER_PRECISION=int8: the outputs depend on this CPU's \
             instructions and may differ from golden files made in f32 (unset it for reference runs)"
        );
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Fails fast, in one line, when the broker refuses the credentials or does not answer
/// (librdkafka itself would retry forever).
fn check_kafka_access() -> Result<()> {
    let settings = switchboard_schemas::settings::KafkaSettings::from_env()?;
    switchboard_sources::access::check(&settings, switchboard_sources::access::timeout_from_env())?;
    Ok(())
}

fn run(cli: Cli) -> Result<ExitCode> {
    if matches!(
        cli.command,
        Command::Run { .. } | Command::Gateway { .. } | Command::Submit { .. } | Command::Record { .. } | Command::Replay { .. }
    ) {
        check_kafka_access()?;
    }
    match cli.command {
        Command::Run { workers, config } => {
            commands::run_topology(switchboard_topology::runner::live::Layout::Process(workers), config.as_deref(), &runtime()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gateway { listen, admin_listen } => {
            let mut config = switchboard_gateway::GatewayConfig::from_env().map_err(|e| anyhow!(BadInput(e.to_string())))?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            match admin_listen.as_deref().map(str::trim) {
                None => {}
                Some("off") => config.admin.listen = None,
                Some(addr) => {
                    config.admin.listen = Some(
                        addr.parse().map_err(|e| anyhow!(BadInput(format!("--admin-listen {addr:?}: {e}"))))?,
                    )
                }
            }
            let rt = runtime()?;
            rt.block_on(switchboard_gateway::serve(config, commands::stop_requested()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit { hosts, process, workers, config } => {
            let text = std::fs::read_to_string(&hosts)
                .with_context(|| BadInput(format!("cannot read hosts file {}", hosts.display())))?;
            let hosts: Vec<String> =
                text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
            if process >= hosts.len() {
                bail!(BadInput(format!("--process {process} but the hosts file lists {} processes", hosts.len())));
            }
            let layout = switchboard_topology::runner::live::Layout::Cluster { workers, process, hosts };
            commands::run_topology(layout, config.as_deref(), &runtime()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Record { topic, range, out, raw } => {
            let range = range.parse()?;
            if raw {
                eprintln!(
                    "switchboard: warning: --raw: {} will hold unmasked personal data (phone, ID and card \
                     numbers, e-mail addresses) as users typed them; it is written with mode 600: keep it \
                     private and delete it when done",
                    out.display()
                );
            }
            let n = commands::record(&topic, &range, &out, raw)?;
            let how = if raw { "raw" } else { "PII masked" };
            eprintln!("recorded {n} records of {topic} into {} ({how})", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { range, into, fill_gaps, output_topic, workers, config } => {
            let range = range.parse()?;
            let live = switchboard_schemas::settings::ClickHouseSettings::from_env()?.database;
            let target = match into {
                _ if fill_gaps => switchboard_replay::backfill::Target::FillGaps,
                Some(database) if database == live => bail!(BadInput(format!(
                    "--into {database}: that is the live database; a replay there would replace what users were told (use --fill-gaps to write only the turns it has no outcome for)"
                ))),
                Some(database) if database.is_empty() || !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    bail!(BadInput(format!("--into `{database}`: a database name is letters, digits and _")))
                }
                Some(database) => switchboard_replay::backfill::Target::Database(database),
                None => switchboard_replay::backfill::Target::beside(&live),
            };
            let report = commands::replay(&range, target, output_topic, workers, config.as_deref(), &runtime()?)?;
            if report.records == 0 {
                eprintln!("switchboard replay: the range holds no records (nothing was written); check --from-… and --to-… against the topic's first and last records");
            }
            println!(
                "{}",
                serde_json::json!({
                    "records": report.records,
                    "seconds": report.seconds,
                    "records_per_second": if report.seconds > 0.0 { report.records as f64 / report.seconds } else { 0.0 },
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { recording, golden, bless, workers, config } => {
            commands::test_recording(&recording, &golden, bless, workers, config.as_deref())
        }
        Command::Shadow { recording, range, candidate_models, candidate_kb, fail_if, out, workers, config } => {
            use switchboard_cli::shadow::{ShadowInput, ShadowOptions};
            let input = match recording {
                Some(path) => ShadowInput::Recording(path),
                None if range.from_offset.is_none() && range.from_time.is_none() => {
                    bail!(BadInput("give a RECORDING, or --from-offset / --from-time for a range of user.said".into()))
                }
                None => ShadowInput::Range(range.parse()?, range.describe()),
            };
            let options = ShadowOptions { input, candidate_models, candidate_kb, gates: fail_if, out, workers, config };
            switchboard_cli::shadow::shadow(&options)
        }
        Command::Intent { command: IntentCommand::Train { data, encoder, out, fine_tune, fine_tune_layers, fine_tune_epochs, fine_tune_lr } } => {
            let fine = fine_tune.then(|| switchboard_operators::intent::FineTuneOptions {
                layers: fine_tune_layers,
                epochs: fine_tune_epochs,
                learning_rate: fine_tune_lr,
                ..Default::default()
            });
            let summary = commands::intent_train(&data, &encoder, &out, fine)?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Intent { command: IntentCommand::Eval { data, model, folds } } => {
            println!("{}", commands::intent_eval(&data, &model, folds)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Kb { command: KbCommand::Load { files, config } } => {
            let version = commands::kb_load(&files, config.as_deref())?;
            println!("{version}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Loadgen { url, connections, rate, duration, mix } => {
            let mut options = switchboard_cli::loadgen::LoadOptions::new(url);
            options.connections = connections;
            options.rate = rate;
            options.duration = parse_duration(&duration)?;
            options.mix = mix.parse().map_err(|e| anyhow!(BadInput(format!("--mix: {e}"))))?;
            options.validate().map_err(|e| anyhow!(BadInput(e.to_string())))?;
            let report = runtime()?.block_on(switchboard_cli::loadgen::run(options))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Model { command: ModelCommand::Serve { listen, tls_dir, config } } => {
            commands::model_serve(listen, tls_dir, config.as_deref(), &runtime()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Add { name, role } } => {
            let line = commands::user_add(&name, &role)?;
            eprintln!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention { events_days, sessions_days, wait_seconds, dry_run } => {
            let policy = switchboard_cli::retention::Policy {
                events_days,
                sessions_days,
                wait: std::time::Duration::from_secs(wait_seconds),
                dry_run,
            };
            println!("{}", commands::retention(&policy, &runtime()?)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => {
            let checks = runtime()?.block_on(switchboard_cli::doctor::run_checks());
            let mut failed = false;
            for check in checks {
                match check.outcome {
                    Ok(detail) => println!("ok    {:<24} {detail}", check.name),
                    Err(problem) => {
                        failed = true;
                        println!("FAIL  {:<24} {problem}", check.name)
                    }
                }
            }
            Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}

