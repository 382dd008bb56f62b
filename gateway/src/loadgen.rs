//! A WebSocket load generator for the gateway (`switchboard loadgen`).
//!
//! **Open loop**: says are scheduled at the target rate (total across connections, spread over
//! them round-robin) whatever the replies do, so a slow system shows up as latency and timeouts
//! instead of silently lowering the load. Each connection sends one `hello` (a new dialogue) and
//! then its share of `say` frames; the latency of a say runs from its scheduled send time to the
//! `answer`, `handoff` or `error` frame for it (matched by `client_msg_id`; an `error` frame
//! carries no id and is charged to the connection's newest unanswered say, corrected if an
//! answer for that say turns up later).
//!
//! Bounded in count and time: at most `rate × duration` says, connections opened at most
//! [`CONNECT_CONCURRENCY`] at a time within [`CONNECT_PHASE`], and everything stops at
//! `duration` + [`GRACE`] after the first say; a say unanswered by then is a *timeout*. It only
//! ever connects to the given URL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_gateway::loadgen::LoadError> {
//! use std::time::Duration;
//! use switchboard_gateway::loadgen::{self, LoadOptions, Mix};
//! let mut options = LoadOptions::new("ws://127.0.0.1:8080/ws");
//! options.connections = 20;
//! options.rate = 50.0;
//! options.duration = Duration::from_secs(3);
//! options.mix = Mix::Zipf;
//! let report = loadgen::run(options).await?;
//! println!("{}", serde_json::to_string(&report).unwrap_or_default());
//! # Ok(()) }
//! ```

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use switchboard_schemas::Locale;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long after the last scheduled say replies are still waited for.
pub const GRACE: Duration = Duration::from_secs(10);
/// Most connections being opened at the same time.
pub const CONNECT_CONCURRENCY: usize = 64;
/// Longest wait for one connection's handshake and `welcome`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time spent opening connections; attempts not finished by then count as refused.
pub const CONNECT_PHASE: Duration = Duration::from_secs(60);
/// Most connections.
pub const MAX_CONNECTIONS: usize = 20_000;
/// Highest rate, says per second.
pub const MAX_RATE: f64 = 100_000.0;
/// Longest duration.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Most says in one run (`rate × duration`).
pub const MAX_SAYS: u64 = 10_000_000;

/// The Zipf exponent of [`Mix::Zipf`].
pub const ZIPF_S: f64 = 1.1;

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How the texts of the says are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mix {
    /// Built-in customer-service utterances of the locale, sampled with Zipf's law (s = 1.1):
    /// a few questions are very frequent, many are rare — like real traffic, caches included.
    #[default]
    Zipf,
    /// Like `Zipf`, but each text is made unique with a counter phrase (`（第N次，…）` or
    /// ` (#N, …)`) so that no cache can answer it.
    Unique,
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mix::Zipf => "zipf",
            Mix::Unique => "unique",
        })
    }
}

impl std::str::FromStr for Mix {
    type Err = LoadError;

    /// `zipf` or `unique` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zipf" => Ok(Mix::Zipf),
            "unique" => Ok(Mix::Unique),
            _ => Err(LoadError::Invalid { option: "mix", reason: "expected zipf or unique".into() }),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// The gateway's WebSocket URL, `ws://HOST:PORT/ws` (the only address connected to).
    pub url: String,
    /// Connections (each one dialogue), 1 to [`MAX_CONNECTIONS`].
    pub connections: usize,
    /// Says per second in total, across all connections (open loop), above 0 and at most
    /// [`MAX_RATE`].
    pub rate: f64,
    /// How long says are sent.
    pub duration: Duration,
    /// How texts are chosen.
    pub mix: Mix,
    /// The dialogues' locale (`hello.locale`) and the language of the texts.
    pub locale: Locale,
}

impl LoadOptions {
    /// Options for `url` with the defaults: 10 connections, 10 says/s, 10 s, [`Mix::Zipf`],
    /// zh-CN.
    pub fn new(url: impl Into<String>) -> Self {
        LoadOptions {
            url: url.into(),
            connections: 10,
            rate: 10.0,
            duration: Duration::from_secs(10),
            mix: Mix::Zipf,
            locale: Locale::ZhCn,
        }
    }

    /// Checks the options; [`run`] does this first.
    pub fn validate(&self) -> Result<()> {
        let invalid = |option, reason: &str| Err(LoadError::Invalid { option, reason: reason.into() });
        let url = self.url.trim();
        let Some(rest) = url.strip_prefix("ws://") else {
            return if url.starts_with("wss://") {
                invalid("url", "wss:// is not supported by this build; use ws://")
            } else {
                invalid("url", "must start with ws:// (for example ws://127.0.0.1:8080/ws)")
            };
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return invalid("url", "must name a host (and no user info): ws://HOST:PORT/ws");
        }
        if url.parse::<tokio_tungstenite::tungstenite::http::Uri>().is_err() {
            return invalid("url", "is not a valid URL");
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return invalid("connections", &format!("must be 1 to {MAX_CONNECTIONS}"));
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= MAX_RATE) {
            return invalid("rate", &format!("must be a number above 0 and at most {MAX_RATE}"));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return invalid("duration", "must be above 0 and at most 24 h");
        }
        if self.total_says() > MAX_SAYS {
            return invalid("rate", &format!("rate × duration must be at most {MAX_SAYS} says"));
        }
        Ok(())
    }

    /// The number of says the run schedules: one every `1 / rate` seconds within `duration`.
    pub fn total_says(&self) -> u64 {
        let exact = self.rate * self.duration.as_secs_f64();
        // Say k goes out at k / rate; those before `duration` are sent.
        let n = (exact - 1e-9).ceil();
        if n.is_finite() && n > 0.0 {
            n.min(u64::MAX as f64) as u64
        } else {
            0
        }
    }
}

/// What a run measured. Every scheduled say ends in exactly one of `answered`, `handoffs`,
/// `errors` and `timeouts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Median latency, ms (0 without replies).
    pub p50_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Says scheduled (and sent, unless their connection was gone: those are errors).
    pub sent: u64,
    /// Says answered with `answer`.
    pub answered: u64,
    /// Says answered with `handoff` (including the gateway's `timeout` handoffs).
    pub handoffs: u64,
    /// Says answered with `error`, or lost with their connection.
    pub errors: u64,
    /// Says without any reply within [`GRACE`] after the end.
    pub timeouts: u64,
    /// Errors by code (`rate_limited`, `unavailable`, …, and `connection_lost`).
    pub error_codes: BTreeMap<String, u64>,
    /// Connections opened (hello answered with welcome).
    pub connections: usize,
    /// Connections that could not be opened.
    pub connect_errors: usize,
    /// The first connection error, if any.
    pub connect_error: Option<String>,
    /// The target rate, says per second.
    pub rate: f64,
    /// The rate achieved while sending, says per second.
    pub achieved_rate: f64,
    /// The sending time asked for, seconds.
    pub duration_s: f64,
    /// The whole run (sending and waiting for replies, not connecting), seconds.
    pub elapsed_s: f64,
    /// The text mix.
    pub mix: Mix,
}

/// Why a load run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An option is out of range.
    #[error("invalid {option}: {reason}")]
    Invalid {
        /// The option.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Not a single connection could be opened.
    #[error("no connection to {url} could be opened ({attempted} tried): {first_error}")]
    NoConnections {
        /// The URL.
        url: String,
        /// Connections tried.
        attempted: usize,
        /// The first failure.
        first_error: String,
    },
}

/// Short for `Result<T, LoadError>`.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs the load described by `options` and reports what it measured. Fails only on invalid
/// options or when no connection at all could be opened; everything else is counted.
pub async fn run(options: LoadOptions) -> Result<LoadReport> {
    options.validate()?;
    let url = options.url.trim().to_string();
    let nonce = format!("{:08x}", rand::random::<u32>());
    let total = options.total_says();
    tracing::info!(
        url = %url,
        connections = options.connections,
        rate = options.rate,
        duration_s = options.duration.as_secs_f64(),
        mix = %options.mix,
        says = total,
        "loadgen: opening connections"
    );

    // Connect, a bounded number at a time, within the connect phase.
    let phase_end = Instant::now() + CONNECT_PHASE;
    let locale = options.locale;
    let attempts: Vec<(usize, std::result::Result<Socket, String>)> = futures::stream::iter(0..options.connections)
        .map(|i| {
            let url = url.clone();
            let user = format!("loadgen-{nonce}-{i}");
            async move {
                let deadline = phase_end.min(Instant::now() + CONNECT_TIMEOUT);
                let outcome = match tokio::time::timeout_at(deadline, open(&url, &user, locale)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no welcome within {} s", CONNECT_TIMEOUT.as_secs())),
                };
                (i, outcome)
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let mut sockets = Vec::new();
    let mut connect_errors = 0usize;
    let mut first_error: Option<String> = None;
    for (i, outcome) in attempts {
        match outcome {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                connect_errors += 1;
                tracing::debug!(connection = i, error = %e, "loadgen: connection refused");
                first_error.get_or_insert(e);
            }
        }
    }
    if sockets.is_empty() {
        return Err(LoadError::NoConnections {
            url,
            attempted: options.connections,
            first_error: first_error.unwrap_or_else(|| "unknown".into()),
        });
    }
    if connect_errors > 0 {
        tracing::warn!(
            refused = connect_errors,
            opened = sockets.len(),
            first_error = first_error.as_deref().unwrap_or(""),
            "loadgen: some connections could not be opened"
        );
    }
    let opened = sockets.len();
    tracing::info!(opened, "loadgen: sending");

    // One task per connection; the schedule below feeds them.
    let start = Instant::now();
    let deadline = start + options.duration + GRACE;
    let mut senders = Vec::with_capacity(opened);
    let mut tasks = Vec::with_capacity(opened);
    for ws in sockets {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        tasks.push(tokio::spawn(connection(ws, rx, deadline)));
    }
    let mut texts = Texts::new(options.mix, options.locale, &nonce);
    let mut assigned = vec![0u64; opened];
    let mut unsent = Stats::default();
    for k in 0..total {
        let at = start + Duration::from_secs_f64(k as f64 / options.rate);
        tokio::time::sleep_until(at).await;
        let conn = (k % opened as u64) as usize;
        let say = Say { client_msg_id: format!("lg-{nonce}-{k}"), text: texts.next(k), at, seq: k };
        if senders[conn].send(say).is_err() {
            // The connection task ended early (it only does so at the deadline).
            unsent.error("connection_lost");
        } else {
            assigned[conn] += 1;
        }
    }
    let sending_s = start.elapsed().as_secs_f64();
    drop(senders);

    // Collect; a task that does not finish in time has all its says counted as timeouts.
    let mut all = unsent;
    for (i, task) in tasks.into_iter().enumerate() {
        let limit = deadline + CLOSE_TIMEOUT + WRITE_TIMEOUT + Duration::from_secs(2);
        let abort = task.abort_handle();
        match tokio::time::timeout_at(limit, task).await {
            Ok(Ok(stats)) => all.merge(stats),
            Ok(Err(e)) => {
                tracing::warn!(connection = i, error = %e, "loadgen: connection task failed");
                all.timeouts += assigned[i];
            }
            Err(_) => {
                abort.abort();
                tracing::warn!(connection = i, "loadgen: connection task overran the deadline");
                all.timeouts += assigned[i];
            }
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();

    let mut latencies = all.latencies;
    latencies.sort_by(f64::total_cmp);
    let mean = if latencies.is_empty() { 0.0 } else { latencies.iter().sum::<f64>() / latencies.len() as f64 };
    let report = LoadReport {
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        mean_ms: mean,
        sent: total,
        answered: all.answered,
        handoffs: all.handoffs,
        errors: all.errors,
        timeouts: all.timeouts,
        error_codes: all.error_codes,
        connections: opened,
        connect_errors,
        connect_error: first_error,
        rate: options.rate,
        achieved_rate: if sending_s > 0.0 { total as f64 / sending_s.max(options.duration.as_secs_f64()) } else { 0.0 },
        duration_s: options.duration.as_secs_f64(),
        elapsed_s,
        mix: options.mix,
    };
    tracing::info!(
        sent = report.sent,
        answered = report.answered,
        handoffs = report.handoffs,
        errors = report.errors,
        timeouts = report.timeouts,
        p50_ms = report.p50_ms,
        p99_ms = report.p99_ms,
        "loadgen: done"
    );
    Ok(report)
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Opens one connection: handshake, `hello`, `welcome`.
async fn open(url: &str, user_id: &str, locale: Locale) -> std::result::Result<Socket, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    let hello = serde_json::json!({"type": "hello", "user_id": user_id, "locale": locale.as_str()});
    ws.send(Message::Text(hello.to_string().into())).await.map_err(|e| format!("sending hello: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value =
                    serde_json::from_str(t.as_str()).map_err(|_| "the server sent invalid JSON".to_string())?;
                return match v["type"].as_str() {
                    Some("welcome") => Ok(ws),
                    Some("error") => Err(format!(
                        "hello refused: {} ({})",
                        v["code"].as_str().unwrap_or("?"),
                        v["message"].as_str().unwrap_or("")
                    )),
                    other => Err(format!("expected welcome, got {}", other.unwrap_or("a frame without type"))),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "closed before welcome{}",
                    frame.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("before welcome: {e}")),
            None => return Err("closed before welcome".into()),
        }
    }
}

/// One say handed to a connection.
struct Say {
    client_msg_id: String,
    text: String,
    /// When it was scheduled; latency is measured from here.
    at: Instant,
    seq: u64,
}

/// What one connection counted.
#[derive(Debug, Default)]
struct Stats {
    latencies: Vec<f64>,
    answered: u64,
    handoffs: u64,
    errors: u64,
    timeouts: u64,
    error_codes: BTreeMap<String, u64>,
}

impl Stats {
    fn error(&mut self, code: &str) {
        self.errors += 1;
        *self.error_codes.entry(code.to_string()).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.answered += other.answered;
        self.handoffs += other.handoffs;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        for (code, n) in other.error_codes {
            *self.error_codes.entry(code).or_default() += n;
        }
    }
}

/// The unanswered says of one connection and the error frames charged to a guess.
#[derive(Default)]
struct Pending {
    /// client_msg_id → (sequence number, scheduled time).
    says: HashMap<String, (u64, Instant)>,
    /// Says an `error` frame was charged to (error frames carry no id).
    guessed: HashMap<String, ()>,
}

impl Pending {
    /// A reply (`answer` or `handoff`) for `id`: its latency, or `None` if it is not ours
    /// (a duplicate). When the say had been charged with an error, the error really belonged to
    /// another say: the oldest one left takes it.
    fn reply(&mut self, id: &str, now: Instant) -> Option<f64> {
        if let Some((_, at)) = self.says.remove(id) {
            return Some(ms(now - at));
        }
        if self.guessed.remove(id).is_some() {
            if let Some(oldest) = self.says.iter().min_by_key(|(_, (seq, _))| *seq).map(|(k, _)| k.clone()) {
                self.says.remove(&oldest);
                self.guessed.insert(oldest, ());
            }
            // The latency of the say itself is unknown now (it was removed when charged).
            return Some(f64::NAN);
        }
        None
    }

    /// An `error` frame: charged to the newest unanswered say (a refusal comes right after the
    /// say it refuses). Its latency, or `None` when nothing is pending.
    fn error(&mut self, now: Instant) -> Option<f64> {
        let newest = self.says.iter().max_by_key(|(_, (seq, _))| *seq).map(|(k, _)| k.clone())?;
        let (_, at) = self.says.remove(&newest)?;
        if self.guessed.len() > 10_000 {
            self.guessed.clear();
        }
        self.guessed.insert(newest, ());
        Some(ms(now - at))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Drives one connection until the schedule is done and every say is answered, or the deadline.
async fn connection(mut ws: Socket, mut says: mpsc::UnboundedReceiver<Say>, deadline: Instant) -> Stats {
    let mut stats = Stats::default();
    let mut pending = Pending::default();
    let mut schedule_done = false;
    let mut lost = false;
    let mut draining = false;
    let record = |stats: &mut Stats, latency: Option<f64>| {
        if let Some(l) = latency.filter(|l| l.is_finite()) {
            stats.latencies.push(l);
        }
    };
    loop {
        if schedule_done && (lost || pending.says.is_empty()) {
            break;
        }
        tokio::select! {
            frame = ws.next(), if !lost => match frame {
                Some(Ok(Message::Text(t))) => {
                    let now = Instant::now();
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                        tracing::debug!("loadgen: invalid JSON frame ignored");
                        continue;
                    };
                    match v["type"].as_str() {
                        Some(kind @ ("answer" | "handoff")) => {
                            let id = v["in_reply_to"].as_str().unwrap_or("");
                            match pending.reply(id, now) {
                                Some(latency) => {
                                    if kind == "answer" { stats.answered += 1 } else { stats.handoffs += 1 }
                                    record(&mut stats, Some(latency));
                                }
                                None => tracing::debug!(client_msg_id = id, "loadgen: reply for no pending say ignored"),
                            }
                        }
                        Some("error") => {
                            let code = v["code"].as_str().unwrap_or("unknown");
                            match pending.error(now) {
                                Some(latency) => {
                                    stats.error(code);
                                    record(&mut stats, Some(latency));
                                }
                                None => tracing::debug!(code, "loadgen: error frame with nothing pending"),
                            }
                        }
                        Some("reconnect") => {
                            tracing::info!("loadgen: gateway draining; no more says on this connection");
                            draining = true;
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    lost = true;
                    for _ in pending.says.drain() {
                        stats.error("connection_lost");
                    }
                }
                Some(Ok(_)) => {}
            },
            say = says.recv(), if !schedule_done => match say {
                None => schedule_done = true,
                Some(say) if lost => { let _ = say; stats.error("connection_lost"); }
                Some(say) if draining => { let _ = say; stats.error("reconnect"); }
                Some(say) => {
                    let frame = serde_json::json!({"type": "say", "client_msg_id": say.client_msg_id, "text": say.text});
                    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Text(frame.to_string().into()))).await {
                        Ok(Ok(())) => { pending.says.insert(say.client_msg_id, (say.seq, say.at)); }
                        _ => {
                            lost = true;
                            stats.error("connection_lost");
                            for _ in pending.says.drain() {
                                stats.error("connection_lost");
                            }
                        }
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                // Says still queued for this connection were never sent: they time out too.
                says.close();
                while let Ok(_unsent) = says.try_recv() {
                    stats.timeouts += 1;
                }
                break;
            }
        }
    }
    stats.timeouts += pending.says.len() as u64;
    if !lost {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    stats
}

// ---------------------------------------------------------------------------------------------
// Texts
// ---------------------------------------------------------------------------------------------

/// Picks the texts of the says: the locale's built-in utterances sampled with Zipf's law, made
/// unique per say for [`Mix::Unique`]. Also used by the topology's benchmarks.
pub struct Texts {
    mix: Mix,
    locale: Locale,
    nonce: String,
    list: &'static [&'static str],
    /// Cumulative Zipf weights over `list`.
    cumulative: Vec<f64>,
    rng: rand::rngs::StdRng,
}

impl Texts {
    /// Texts of `mix` in `locale`; `nonce` makes unique texts differ between runs.
    pub fn new(mix: Mix, locale: Locale, nonce: &str) -> Self {
        use rand::SeedableRng;
        let list = utterances(locale);
        let mut sum = 0.0;
        let cumulative = (1..=list.len())
            .map(|rank| {
                sum += 1.0 / (rank as f64).powf(ZIPF_S);
                sum
            })
            .collect();
        Texts { mix, locale, nonce: nonce.to_string(), list, cumulative, rng: rand::rngs::StdRng::from_os_rng() }
    }

    /// A Zipf-distributed index into the list.
    fn zipf_index(&mut self) -> usize {
        use rand::Rng;
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = self.rng.random::<f64>() * total;
        self.cumulative.partition_point(|c| *c <= u).min(self.list.len().saturating_sub(1))
    }

    /// The text of say number `k`.
    pub fn next(&mut self, k: u64) -> String {
        let base = self.list.get(self.zipf_index()).copied().unwrap_or("你好");
        match (self.mix, self.locale) {
            (Mix::Zipf, _) => base.to_string(),
            (Mix::Unique, Locale::ZhCn) => format!("{base}（第{}次，{}）", k + 1, self.nonce),
            (Mix::Unique, Locale::En) => format!("{base} (#{}, {})", k + 1, self.nonce),
        }
    }
}

/// The built-in utterances of a locale, most frequent first (rank = Zipf rank).
pub fn utterances(locale: Locale) -> &'static [&'static str] {
    match locale {
        Locale::ZhCn => ZH_UTTERANCES,
        Locale::En => EN_UTTERANCES,
    }
}

const ZH_UTTERANCES: &[&str] = &[
    "我的快递到哪了",
    "怎么退货",
    "我要退款",
    "什么时候发货",
    "订单怎么取消",
    "转人工",
    "退款多久到账",
    "能不能催一下发货",
    "怎么修改收货地址",
    "发票怎么开",
    "你好",
    "物流好几天没更新了",
    "收到的商品坏了",
    "怎么换货",
    "优惠券用不了",
    "谢谢",
    "七天无理由退货怎么申请",
    "快递显示签收了但我没收到",
    "运费谁来出",
    "可以货到付款吗",
    "会员怎么开通",
    "积分怎么用",
    "怎么联系卖家",
    "商品缺货什么时候补",
    "下单后还能改颜色吗",
    "退货地址是哪里",
    "支付失败怎么办",
    "为什么扣了两次钱",
    "我要投诉",
    "订单号在哪里看",
    "能开增值税专用发票吗",
    "这个商品有保修吗",
    "保修期多久",
    "尺码不合适可以换吗",
    "包裹被退回了怎么办",
    "能不能指定快递公司",
    "今天下单明天能到吗",
    "偏远地区包邮吗",
    "退款申请被拒绝了",
    "怎么查看退款进度",
    "账号登录不上",
    "忘记密码怎么办",
    "怎么修改绑定的手机号",
    "怎么注销账号",
    "价格保护怎么申请",
    "刚买就降价了能退差价吗",
    "赠品没有收到",
    "少发了一件",
    "发错货了",
    "商品和描述不符",
    "外包装破损了",
    "能开发票抬头是公司吗",
    "电子发票在哪里下载",
    "分期付款怎么操作",
    "可以用花呗吗",
    "信用卡支付有手续费吗",
    "怎么申请售后",
    "售后电话是多少",
    "上门取件怎么预约",
    "快递员联系不上",
    "配送时间可以改吗",
    "能放快递柜吗",
    "海外可以发货吗",
    "关税谁承担",
    "预售商品什么时候发",
    "定金可以退吗",
    "尾款什么时候付",
    "活动什么时候开始",
    "满减怎么算",
    "优惠券过期了还能用吗",
    "新人优惠在哪里领",
    "邀请好友有奖励吗",
    "积分快过期了怎么办",
    "会员到期会自动续费吗",
    "怎么取消自动续费",
    "为什么我的订单被取消了",
    "订单一直显示待发货",
    "退货的运费险怎么理赔",
    "退货寄回去了多久处理",
    "换货寄出后多久能收到新的",
    "维修需要多长时间",
    "这款和那款有什么区别",
    "有没有现货",
    "可以批量采购吗",
    "企业采购有优惠吗",
    "怎么成为供应商",
    "门店地址在哪里",
    "营业时间是几点",
    "客服工作时间是什么时候",
    "你们是正品吗",
    "商品过敏了可以退吗",
    "食品拆封了能退吗",
    "生鲜坏了怎么赔",
    "家电安装收费吗",
    "安装师傅什么时候上门",
    "旧机回收怎么弄",
    "这个问题比较复杂，能不能帮我找个真人客服",
    "我已经问了三遍了，还是没解决",
    "你们的服务太差了",
    "算了不用了",
];

const EN_UTTERANCES: &[&str] = &[
    "Where is my order?",
    "How do I return an item?",
    "I want a refund",
    "When will my order ship?",
    "How can I cancel my order?",
    "I want to talk to a human agent",
    "How long does a refund take?",
    "Can you speed up the delivery?",
    "How do I change my shipping address?",
    "How do I get an invoice?",
    "Hi",
    "My tracking hasn't updated in days",
    "The item arrived damaged",
    "How do I exchange an item?",
    "My coupon doesn't work",
    "Thanks",
    "How do I request a return within 7 days?",
    "It says delivered but I never got it",
    "Who pays for return shipping?",
    "Can I pay cash on delivery?",
    "How do I become a member?",
    "How do I use my points?",
    "How can I contact the seller?",
    "When will this be back in stock?",
    "Can I change the color after ordering?",
    "What is the return address?",
    "My payment failed, what should I do?",
    "Why was I charged twice?",
    "I want to file a complaint",
    "Where can I find my order number?",
    "Can I get a VAT invoice?",
    "Does this product have a warranty?",
    "How long is the warranty?",
    "The size doesn't fit, can I swap it?",
    "My package was returned to sender",
    "Can I choose the courier?",
    "If I order today will it arrive tomorrow?",
    "Is shipping free to remote areas?",
    "My refund request was rejected",
    "How do I check my refund status?",
    "I can't log in to my account",
    "I forgot my password",
    "How do I change my phone number?",
    "How do I delete my account?",
    "How do I apply for price protection?",
    "The price dropped right after I bought it, can I get the difference back?",
    "I didn't receive the free gift",
    "One item is missing from my package",
    "You sent me the wrong item",
    "The product doesn't match the description",
    "The box was damaged",
    "Can the invoice be issued to my company?",
    "Where do I download the e-invoice?",
    "How do I pay in installments?",
    "Do you accept PayPal?",
    "Is there a fee for paying by credit card?",
    "How do I request after-sales service?",
    "What is the customer service phone number?",
    "How do I schedule a pickup for my return?",
    "I can't reach the delivery driver",
    "Can I change the delivery time?",
    "Can it be left in a parcel locker?",
    "Do you ship internationally?",
    "Who pays the import duties?",
    "When do pre-order items ship?",
    "Is the deposit refundable?",
    "When is the balance due?",
    "When does the sale start?",
    "How are the discounts calculated?",
    "Can I still use an expired coupon?",
    "Where do I get the new customer discount?",
    "Do I get a reward for inviting friends?",
    "My points are about to expire",
    "Will my membership renew automatically?",
    "How do I turn off auto-renewal?",
    "Why was my order cancelled?",
    "My order has been pending for days",
    "How do I claim return shipping insurance?",
    "How long until my return is processed?",
    "When will I get the replacement?",
    "How long does a repair take?",
    "What is the difference between these two models?",
    "Is this in stock?",
    "Can I buy in bulk?",
    "Do you have business discounts?",
    "How can I become a supplier?",
    "Where is your nearest store?",
    "What are your opening hours?",
    "When is customer service available?",
    "Are your products genuine?",
    "I had an allergic reaction, can I return it?",
    "Can I return opened food?",
    "The fresh produce went bad, will you compensate?",
    "Is installation free?",
    "When will the technician come?",
    "How does the trade-in program work?",
    "This is too complicated, please get me a real person",
    "I've asked three times and it's still not solved",
    "Your service is terrible",
    "Never mind",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let ok = LoadOptions::new("ws://127.0.0.1:8080/ws");
        assert!(ok.validate().is_ok());
        for (url, needle) in [
            ("http://127.0.0.1/ws", "ws://"),
            ("wss://example.invalid/ws", "wss://"),
            ("ws:///ws", "host"),
            ("ws://user@host/ws", "host"),
        ] {
            let err = LoadOptions { url: url.into(), ..ok.clone() }.validate().unwrap_err();
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
        assert!(LoadOptions { connections: 0, ..ok.clone() }.validate().is_err());
        assert!(LoadOptions { rate: f64::NAN, ..ok.clone() }.validate().is_err());
        assert!(LoadOptions { rate: 0.0, ..ok.clone() }.validate().is_err());
        assert!(LoadOptions { duration: Duration::ZERO, ..ok.clone() }.validate().is_err());
        let huge = LoadOptions { rate: MAX_RATE, duration: Duration::from_secs(3600), ..ok.clone() };
        assert!(huge.validate().unwrap_err().to_string().contains("rate × duration"));
    }

    #[test]
    fn the_schedule_has_rate_times_duration_says() {
        let o = |rate: f64, ms: u64| LoadOptions {
            rate,
            duration: Duration::from_millis(ms),
            ..LoadOptions::new("ws://h/ws")
        };
        assert_eq!(o(50.0, 3000).total_says(), 150);
        assert_eq!(o(10.0, 10_000).total_says(), 100);
        assert_eq!(o(0.5, 3000).total_says(), 2, "says at 0 s and 2 s");
        assert_eq!(o(3.0, 1).total_says(), 1);
    }

    #[test]
    fn mix_parses_and_prints() {
        assert_eq!("Zipf".parse::<Mix>().unwrap(), Mix::Zipf);
        assert_eq!("unique".parse::<Mix>().unwrap(), Mix::Unique);
        assert!("pareto".parse::<Mix>().is_err());
        assert_eq!(Mix::Unique.to_string(), "unique");
        assert_eq!(serde_json::to_value(Mix::Zipf).unwrap(), "zipf");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn utterance_lists_are_realistic_and_distinct() {
        for locale in [Locale::ZhCn, Locale::En] {
            let list = utterances(locale);
            assert!(list.len() >= 100, "{locale:?}: {}", list.len());
            let distinct: std::collections::HashSet<_> = list.iter().collect();
            assert_eq!(distinct.len(), list.len(), "{locale:?} has duplicates");
            assert!(list.iter().all(|t| !t.trim().is_empty() && t.chars().count() < 200));
        }
    }

    #[test]
    fn zipf_favours_the_head_and_unique_is_unique() {
        let mut t = Texts::new(Mix::Zipf, Locale::ZhCn, "n");
        let mut counts = HashMap::new();
        for k in 0..20_000 {
            *counts.entry(t.next(k)).or_insert(0u32) += 1;
        }
        let first = counts.get(ZH_UTTERANCES[0]).copied().unwrap_or(0);
        let tenth = counts.get(ZH_UTTERANCES[9]).copied().unwrap_or(0);
        // Expected ratio 10^1.1 ≈ 12.6.
        assert!(first > 6 * tenth.max(1), "rank 1: {first}, rank 10: {tenth}");
        assert!(counts.len() > 50, "the tail is sampled too: {}", counts.len());

        let mut t = Texts::new(Mix::Unique, Locale::ZhCn, "abcd");
        let texts: Vec<String> = (0..500).map(|k| t.next(k)).collect();
        let distinct: std::collections::HashSet<_> = texts.iter().collect();
        assert_eq!(distinct.len(), 500);
        assert!(texts[2].ends_with("（第3次，abcd）"), "{}", texts[2]);
        let mut t = Texts::new(Mix::Unique, Locale::En, "abcd");
        assert!(t.next(0).ends_with(" (#1, abcd)"));
    }

    #[test]
    fn error_frames_are_charged_and_corrected() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.says.insert("a".into(), (0, t0));
        p.says.insert("b".into(), (1, t0));
        // The refusal is charged to the newest say, b …
        assert!(p.error(t0).is_some());
        assert!(p.says.contains_key("a"));
        // … but b gets answered: the error was a's.
        assert!(p.reply("b", t0).is_some());
        assert!(p.says.is_empty());
        // A duplicate answer is not ours.
        assert!(p.reply("b", t0).is_none());
        assert!(p.error(t0).is_none());
    }
}
