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
//! # async fn demo() -> Result<(), switchboard_cli::loadgen::LoadError> {
//! use std::time::Duration;
//! use switchboard_cli::loadgen::{self, LoadOptions, Mix};
//! let mut options = LoadOptions::new("ws://127.0.0.1:8080/ws");
//! options.connections = 20;
//! options.rate = 50.0;
//! options.duration = Duration::from_secs(3);
//! options.mix = Mix::Zipf;
//! let report = loadgen::run(options).await?;
//! println!("{}", serde_json::to_string(&report).unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! The module is split into `client` (one connection), `texts` (what is said) and `error`.

mod client;
mod error;
mod texts;

pub use error::{LoadError, Result};
pub use texts::{utterances, Mix, Texts, ZIPF_S};

use client::{connection, open, Say, Socket, Stats, CLOSE_TIMEOUT, WRITE_TIMEOUT};
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_schemas::Locale;
use tokio::sync::mpsc;
use tokio::time::Instant;

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
/// `queued`, `errors` and `timeouts`.
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
    /// Of those, the gateway's `timeout` handoffs: says not answered within its answer timeout.
    pub timeout_handoffs: u64,
    /// Says answered with `queued`: their dialogue was handed off earlier and waits for, or is
    /// with, a human agent.
    pub queued: u64,
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
        timeout_handoffs: all.timeout_handoffs,
        queued: all.queued,
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
        queued = report.queued,
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
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
