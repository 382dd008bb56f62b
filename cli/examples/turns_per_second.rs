//! The topology's run report: turns per second from `user.said` to `bot.said` through a real
//! `switchboard run` (broker, ClickHouse, models), and the per-epoch time of each operator.
//!
//! It produces a backlog of turns (a Zipf mix of utterances, or all-unique ones) on fresh topics,
//! starts `switchboard run` on them with its own ClickHouse database, counts the replies on the
//! replies topic, and prints one JSON line: turns, seconds from the first to the last reply,
//! turns/s, and P50/P99 per stage (`understand`, `session`, `sink`, per epoch, from the
//! Prometheus histograms: the upper bound of the bucket holding the quantile).
//!
//! With `--mode backfill` it runs `switchboard replay` over the backlog instead (into its own
//! database) and prints records/s and ClickHouse events/s of the backfill.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/turns_per_second --turns 4000 --mix unique --workers 2
//! target/release/examples/turns_per_second --turns 200000 --mode backfill --workers 2
//! ```
//! Needs the dev services and demo models (`deploy/dev/up.sh`, `deploy/dev/prepare.sh`) and the
//! environment `deploy/dev/test.sh` exports.

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_cli::loadgen::{Mix, Texts};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
use switchboard_schemas::{decode, encode, Event, EventBody, EventId, Locale, UserSaid};
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sources::admin::ensure_topics;

struct Options {
    turns: usize,
    mix: Mix,
    workers: usize,
    binary: String,
    backfill: bool,
}

fn options() -> Result<Options> {
    let mut o = Options { turns: 4000, mix: Mix::Zipf, workers: 2, binary: default_binary(), backfill: false };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--turns" => o.turns = value.parse().context("--turns")?,
            "--mix" => o.mix = value.parse().map_err(|e| anyhow!("--mix: {e}"))?,
            "--workers" => o.workers = value.parse().context("--workers")?,
            "--switchboard" => o.binary = value,
            "--mode" => o.backfill = match value.as_str() {
                "run" => false,
                "backfill" => true,
                other => bail!("--mode {other}: run or backfill"),
            },
            other => bail!("unknown flag {other} (--turns N --mix zipf|unique --workers W --mode run|backfill --switchboard PATH)"),
        }
    }
    Ok(o)
}

/// The `switchboard` binary next to this example (`target/<profile>/switchboard`).
fn default_binary() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.parent()).map(|d| d.join("switchboard")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "switchboard".into())
}

/// Upper bound of the bucket holding quantile `q` of histogram `name{stage="…"}` in `text`.
fn quantile(text: &str, name: &str, stage: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&format!("stage=\"{stage}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets.iter().find(|(_, c)| *c >= q * total).map(|(le, _)| *le)
}

fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = options()?;
    let kafka = KafkaSettings::from_env()?;
    let clickhouse = ClickHouseSettings::from_env()?;
    let id = EventId::new_v7().to_string().replace('-', "");
    let (input, replies, dead) = (format!("bench.in.{id}"), format!("bench.out.{id}"), format!("bench.dead.{id}"));
    ensure_topics(&kafka, &[&input, &replies, &dead], 8).await?;
    let database = format!("sbbench_{}", &id[..16]);
    let sink = ClickHouseSink::new(&clickhouse);
    sink.create_database(&database).await?;
    let admin = sink.client().clone();

    // The backlog.
    let producer: FutureProducer = kafka.client_config().set("linger.ms", "5").create()?;
    let mut texts = Texts::new(o.mix, Locale::ZhCn, &id[..8]);
    let mut deliveries = Vec::new();
    for i in 0..o.turns {
        let event = Event::new(
            format!("bench-{:05}", i % 1000),
            chrono_ms(),
            EventBody::UserSaid(UserSaid { client_msg_id: format!("m{i}"), user_id: "u".into(), locale: Locale::ZhCn, text: texts.next(i as u64) }),
        );
        let payload = encode(&event);
        deliveries.push(producer.send_result(FutureRecord::to(&input).key(&event.dialogue_id).payload(&payload)).map_err(|(e, _)| e)?);
        // Below librdkafka's queue limit (100,000 messages).
        if deliveries.len() >= 20_000 {
            for d in deliveries.drain(..) {
                d.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for d in deliveries {
        d.await?.map_err(|(e, _)| e)?;
    }

    if o.backfill {
        return backfill(&o, &kafka, &input, &replies, &dead, &id, &database, &admin).await;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = std::env::temp_dir().join(format!("switchboard-bench-{id}.yaml"));
    std::fs::write(
        &config,
        format!("input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead}\ngroup_id: bench-{id}\nmetrics_listen: \"127.0.0.1:{port}\"\n"),
    )?;
    let mut child = Command::new(&o.binary)
        .args(["run", "--workers", &o.workers.to_string(), "--config"])
        .arg(&config)
        .env("SWITCHBOARD_CLICKHOUSE_DATABASE", &database)
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", o.binary))?;

    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("bench-reader-{id}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&replies])?;
    let mut answered = HashSet::new();
    let (mut first, mut last) = (None, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(1800);
    while answered.len() < o.turns {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("only {} of {} turns answered in time", answered.len(), o.turns);
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("switchboard run exited: {status}");
        }
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let Some(Ok(event)) = message.payload().map(decode) else { continue };
            let reply_to = match &event.body {
                EventBody::AnswerGenerated(b) => Some(b.in_reply_to),
                EventBody::HandoffRequested(b) => Some(b.in_reply_to),
                EventBody::TurnQueued(b) => Some(b.in_reply_to),
                _ => None,
            };
            if let Some(turn) = reply_to {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                answered.insert(turn);
            }
        }
    }
    let metrics = http_get(port, "/metrics").unwrap_or_default();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let _ = admin.query(&format!("DROP DATABASE IF EXISTS {database}")).execute().await;
    let _ = std::fs::remove_file(&config);

    let seconds = first.map(|f| (last - f).as_secs_f64()).unwrap_or(0.0).max(1e-3);
    let ms = |stage: &str, q: f64| quantile(&metrics, "switchboard_stage_seconds", stage, q).map(|s| s * 1000.0);
    let report = serde_json::json!({
        "turns": o.turns,
        "mix": o.mix.to_string(),
        "workers": o.workers,
        "seconds_first_to_last_reply": (seconds * 100.0).round() / 100.0,
        "turns_per_second": (o.turns as f64 / seconds).round(),
        "epoch_ms_p50_p99": {
            "understand": [ms("understand", 0.5), ms("understand", 0.99)],
            "session": [ms("session", 0.5), ms("session", 0.99)],
            "sink": [ms("sink", 0.5), ms("sink", 0.99)],
        },
    });
    println!("{report}");
    Ok(())
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `switchboard replay` over the whole backlog into `database`: records/s and events/s.
#[allow(clippy::too_many_arguments)]
async fn backfill(
    o: &Options,
    kafka: &KafkaSettings,
    input: &str,
    replies: &str,
    dead: &str,
    id: &str,
    database: &str,
    admin: &clickhouse::Client,
) -> Result<()> {
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let mut from = Vec::new();
    let mut to = Vec::new();
    for p in 0..8 {
        let (low, high) = consumer.fetch_watermarks(input, p, Duration::from_secs(10))?;
        from.push(format!("{p}:{low}"));
        to.push(format!("{p}:{high}"));
    }
    let config = std::env::temp_dir().join(format!("switchboard-bench-{id}.yaml"));
    std::fs::write(&config, format!("input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead}\ngroup_id: bench-{id}\nmetrics_listen: \"\"\n"))?;
    let started = Instant::now();
    let output = Command::new(&o.binary)
        .args(["replay", "--from-offset", &from.join(","), "--to-offset", &to.join(","), "--into", database])
        .args(["--workers", &o.workers.to_string(), "--config"])
        .arg(&config)
        .env("SWITCHBOARD_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("start {}", o.binary))?;
    let wall = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("switchboard replay failed: {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(line).with_context(|| format!("replay printed `{line}`"))?;
    let events: u64 = admin.query(&format!("SELECT count() FROM {database}.events")).fetch_one().await?;
    let _ = admin.query(&format!("DROP DATABASE IF EXISTS {database}")).execute().await;
    let _ = std::fs::remove_file(&config);
    let seconds = report["seconds"].as_f64().unwrap_or(wall).max(1e-3);
    println!(
        "{}",
        serde_json::json!({
            "mode": "backfill",
            "turns": o.turns,
            "mix": o.mix.to_string(),
            "workers": o.workers,
            "records": report["records"],
            "seconds": (seconds * 100.0).round() / 100.0,
            "seconds_with_start": (wall * 100.0).round() / 100.0,
            "records_per_second": (report["records"].as_f64().unwrap_or(0.0) / seconds).round(),
            "clickhouse_events": events,
            "events_per_second": (events as f64 / seconds).round(),
        })
    );
    Ok(())
}
