//! The operations console: a page at `GET /console` that polls JSON endpoints under
//! `/console/api/…`, all reading the ClickHouse table `switchboard.events` (one row per event,
//! text already PII-masked by the topology).
//!
//! | route | what |
//! |---|---|
//! | `GET /console` | the page (`static/console.html`): charts, tables, a per-dialogue trace |
//! | `GET /console/vendor/chart.umd.min.js` | Chart.js 4 (vendored, MIT; licence at `/console/vendor/chart.js.LICENSE.md`) |
//! | `GET /console/api/summary?minutes=N&prefix=P` | [`Summary`] over the last N minutes |
//! | `GET /console/api/dialogues?minutes=N&prefix=P&limit=L` | the most recently active dialogues ([`DialogueListItem`]) |
//! | `GET /console/api/dialogue/{dialogue_id}` | every event of one dialogue ([`Trace`]) |
//! | `GET /console/api/live?minutes=N` | the topology's live per-minute counts ([`crate::live`]) |
//!
//! `minutes` defaults to 15 and is clamped to 1..=1440; `prefix` (optional) keeps only dialogues
//! whose id starts with it; `limit` defaults to 20 and is clamped to 1..=100. A parameter that
//! does not parse answers 400, a dialogue without events 404, and a ClickHouse that is down,
//! slow or failing 503 — always with a JSON body `{"error":"…","code":"…"}` that the page shows.
//!
//! Queries are bound with the `clickhouse` crate's `?` parameters (nothing a user typed is ever
//! formatted into SQL), read with `FINAL` (an event written twice counts once), run with
//! `readonly=2` and `max_execution_time=10`, and use only ClickHouse 18.16 syntax. At most
//! [`MAX_CONCURRENT_QUERIES`] API requests query ClickHouse at a time, and a summary is cached for
//! [`SUMMARY_CACHE`] so that many open pages cost one set of queries.
//!
//! Latency percentiles are `quantilesTiming` over `latency_ms` of `answer_generated` and
//! `handoff_requested` rows: exact below 1 s, 16 ms steps up to 30 s, and clamped at 30 000 ms.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::ClickHouseSettings;
use tokio::sync::Semaphore;

/// The console page served at `/console`.
pub const CONSOLE_PAGE: &str = include_str!("../static/console.html");

/// Chart.js 4.6.1 (`dist/chart.umd.min.js` from npm, unmodified), served at
/// `/console/vendor/chart.umd.min.js`.
pub const CHART_JS: &str = include_str!("../static/vendor/chart.umd.min.js");

/// Chart.js's MIT licence, served next to it.
const CHART_JS_LICENSE: &str = include_str!("../static/vendor/chart.js.LICENSE.md");

/// Default window of the summary and the dialogue list, in minutes.
pub const DEFAULT_MINUTES: u32 = 15;
/// Longest window, in minutes (one day).
pub const MAX_MINUTES: u32 = 1440;
/// Most events returned for one dialogue.
pub const MAX_TRACE_EVENTS: usize = 2000;
/// Most API requests querying ClickHouse at once; more wait up to 5 s, then get 503.
pub const MAX_CONCURRENT_QUERIES: usize = 4;
/// How long a summary is reused for the same window and prefix.
pub const SUMMARY_CACHE: Duration = Duration::from_secs(2);
/// How long one API request may take in ClickHouse before it answers 503.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The clarifying questions the topology answers with when it did not understand a turn
/// (`switchboard_operators::render::clarify`, zh-CN and en). A turn answered with one of these
/// counts as unresolved, like a turn handed off. Keep in sync with `operators/src/render.rs`.
pub const CLARIFYING_ANSWERS: [&str; 2] = [
    "抱歉，我还没完全理解您的问题。能再具体描述一下吗？比如涉及哪个订单、商品或业务。",
    "Sorry, I'm not sure I understood. Could you tell me a bit more, for example which order, product or service this is about?",
];

const TOP_INTENTS: u32 = 15;
const TOP_UNRESOLVED: u32 = 10;
const TOP_REASONS: u32 = 20;
const MAX_ID_CHARS: usize = crate::protocol::MAX_ID_CHARS;
const SUMMARY_CACHE_ENTRIES: usize = 64;
const PERMIT_WAIT: Duration = Duration::from_secs(5);

/// Why a console API request failed; answered as JSON `{"error":…,"code":…}`.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A query parameter or path segment is invalid (400).
    #[error("invalid {name}: {reason}")]
    BadRequest {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The dialogue has no events (404).
    #[error("no events for this dialogue")]
    NotFound,
    /// ClickHouse could not be reached or refused the query (503).
    #[error("clickhouse at {url}: {source}")]
    ClickHouse {
        /// The server's URL.
        url: String,
        /// The client's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// ClickHouse did not answer within [`QUERY_TIMEOUT`] (503).
    #[error("clickhouse at {url} did not answer within {} s", QUERY_TIMEOUT.as_secs())]
    Timeout {
        /// The server's URL.
        url: String,
    },
    /// Too many console requests are querying ClickHouse already (503).
    #[error("too many console queries in flight; retry shortly")]
    Busy,
}

impl ConsoleError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::ClickHouse { .. } | ConsoleError::Timeout { .. } | ConsoleError::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// A short machine-readable code (`bad_request`, `not_found`, `clickhouse_unavailable`,
    /// `clickhouse_error`, `clickhouse_timeout`, `busy`).
    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::BadRequest { .. } => "bad_request",
            ConsoleError::NotFound => "not_found",
            ConsoleError::ClickHouse { source: clickhouse::error::Error::Network(_), .. } => "clickhouse_unavailable",
            ConsoleError::ClickHouse { .. } => "clickhouse_error",
            ConsoleError::Timeout { .. } => "clickhouse_timeout",
            ConsoleError::Busy => "busy",
        }
    }

    /// The message shown to the console user. ClickHouse's own error text (which may quote the
    /// query) stays in the gateway log.
    fn public_message(&self) -> String {
        match self {
            ConsoleError::ClickHouse { url, source: clickhouse::error::Error::Network(_) } => {
                format!("cannot reach ClickHouse at {url}")
            }
            ConsoleError::ClickHouse { url, .. } => {
                format!("the ClickHouse query at {url} failed; see the gateway log")
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self, "console query failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "console request refused");
        }
        let body = serde_json::json!({ "error": self.public_message(), "code": self.code() });
        json_response(status, &body)
    }
}

/// A JSON response in which `<`, `>` and `&` are written as `\u003c`, `\u003e` and `\u0026`
/// (they can only occur inside JSON strings, so the data is unchanged): even a client that
/// sniffed the body as HTML would find no markup in it.
fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let text = match serde_json::to_string(value) {
        Ok(text) => text,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot encode a response");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal encoding error").into_response();
        }
    };
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            c => escaped.push(c),
        }
    }
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        escaped,
    )
        .into_response()
}

type ApiResult<T> = Result<T, ConsoleError>;

/// The console's state: a ClickHouse client, a limit on concurrent queries and the summary cache.
struct Console {
    client: clickhouse::Client,
    url: String,
    permits: Semaphore,
    cache: Mutex<HashMap<SummaryKey, (Instant, Arc<Summary>)>>,
}

/// A summary's window length and dialogue-id prefix.
type SummaryKey = (u32, String);

/// The console's routes (`/console`, `/console/vendor/…`, `/console/api/…`), reading from the
/// ClickHouse in `settings`. [`crate::serve`] merges them in when
/// [`GatewayConfig::clickhouse`](crate::GatewayConfig::clickhouse) is set; nothing is contacted
/// until a request comes.
pub fn router(settings: &ClickHouseSettings) -> Router {
    let mut client = clickhouse::Client::default()
        .with_url(&settings.url)
        .with_database(&settings.database)
        .with_user(&settings.user)
        // 18.16 lacks RowBinaryWithNamesAndTypes, which validation needs.
        .with_validation(false)
        // The console only reads, and never for long.
        .with_setting("readonly", "2")
        .with_setting("max_execution_time", QUERY_TIMEOUT.as_secs().to_string());
    if let Some(password) = &settings.password {
        client = client.with_password(password);
    }
    let console = Arc::new(Console {
        client,
        url: settings.url.clone(),
        permits: Semaphore::new(MAX_CONCURRENT_QUERIES),
        cache: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/vendor/chart.umd.min.js", get(chart_js))
        .route("/console/vendor/chart.js.LICENSE.md", get(chart_js_license))
        .route("/console/api/summary", get(summary))
        .route("/console/api/dialogues", get(dialogues))
        .route("/console/api/dialogue/{dialogue_id}", get(trace))
        .with_state(console)
        .route("/console/api/live", get(crate::live::live))
}

// ---------------------------------------------------------------------------------------------
// Static files
// ---------------------------------------------------------------------------------------------

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                     frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        CONSOLE_PAGE,
    )
        .into_response()
}

async fn chart_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        CHART_JS,
    )
        .into_response()
}

async fn chart_js_license() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        CHART_JS_LICENSE,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// The raw query parameters; parsed by hand so that a bad one answers JSON.
#[derive(Debug, Default, Deserialize)]
struct Params {
    minutes: Option<String>,
    prefix: Option<String>,
    limit: Option<String>,
}

/// A window and a dialogue-id prefix, validated.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    minutes: u32,
    prefix: String,
    /// Start of the window, Unix seconds.
    from_s: u32,
    /// End of the window (now), Unix milliseconds.
    to_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `minutes` clamped to 1..=1440 (default 15).
fn parse_minutes(raw: Option<&str>) -> ApiResult<u32> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_MINUTES),
        Some(s) => s.parse::<u64>().map(|m| m.clamp(1, u64::from(MAX_MINUTES)) as u32).map_err(|_| {
            ConsoleError::BadRequest { name: "minutes", reason: "expected a whole number of minutes".into() }
        }),
    }
}

/// `limit` clamped to 1..=100 (default 20).
fn parse_limit(raw: Option<&str>) -> ApiResult<u32> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(20),
        Some(s) => s
            .parse::<u64>()
            .map(|m| m.clamp(1, 100) as u32)
            .map_err(|_| ConsoleError::BadRequest { name: "limit", reason: "expected a whole number".into() }),
    }
}

/// A dialogue id or prefix: at most 128 characters, no control characters.
fn check_id(name: &'static str, value: &str, allow_empty: bool) -> ApiResult<()> {
    let chars = value.chars().count();
    if (!allow_empty && chars == 0) || chars > MAX_ID_CHARS || value.chars().any(char::is_control) {
        return Err(ConsoleError::BadRequest {
            name,
            reason: format!(
                "must have {} to {MAX_ID_CHARS} characters and no control characters",
                if allow_empty { 0 } else { 1 }
            ),
        });
    }
    Ok(())
}

fn window(params: &Params) -> ApiResult<Window> {
    let minutes = parse_minutes(params.minutes.as_deref())?;
    let prefix = params.prefix.clone().unwrap_or_default();
    check_id("prefix", &prefix, true)?;
    let to_ms = now_ms();
    let from_s = u32::try_from((to_ms / 1000).saturating_sub(u64::from(minutes) * 60)).unwrap_or(u32::MAX);
    Ok(Window { minutes, prefix, from_s, to_ms })
}

fn params(query: Result<Query<Params>, QueryRejection>) -> ApiResult<Params> {
    query.map(|Query(p)| p).map_err(|e| ConsoleError::BadRequest { name: "query string", reason: e.body_text() })
}

// ---------------------------------------------------------------------------------------------
// Running queries
// ---------------------------------------------------------------------------------------------

impl Console {
    /// Runs `work` (one API request's queries) under a permit and the time limit.
    async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> ApiResult<T> {
        let _permit = tokio::time::timeout(PERMIT_WAIT, self.permits.acquire())
            .await
            .map_err(|_| ConsoleError::Busy)?
            .map_err(|_| ConsoleError::Busy)?;
        match tokio::time::timeout(QUERY_TIMEOUT, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(ConsoleError::ClickHouse { url: self.url.clone(), source }),
            Err(_) => Err(ConsoleError::Timeout { url: self.url.clone() }),
        }
    }

    fn cached(&self, key: &SummaryKey) -> Option<Arc<Summary>> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|(at, _)| at.elapsed() < SUMMARY_CACHE).map(|(_, s)| s.clone())
    }

    fn remember(&self, key: SummaryKey, summary: Arc<Summary>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < SUMMARY_CACHE);
            if cache.len() >= SUMMARY_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), summary));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GET /console/api/summary
// ---------------------------------------------------------------------------------------------

/// `GET /console/api/summary`: the state of the service over a window.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Window length, minutes.
    pub minutes: u32,
    /// The dialogue-id prefix filtered on (empty: all dialogues).
    pub prefix: String,
    /// Start of the window, Unix ms.
    pub from_ms: u64,
    /// End of the window (when computed), Unix ms.
    pub to_ms: u64,
    /// Events per kind in the window.
    pub counts: KindCounts,
    /// User turns per second over the whole window.
    pub turns_per_second: f64,
    /// One point per minute of the window (zeros included), oldest first.
    pub series: Vec<MinutePoint>,
    /// End-to-end latency of answers and handoffs over the whole window.
    pub latency: Latency,
    /// The most frequent recognised intents (at most 15), most frequent first.
    pub intents: Vec<IntentCount>,
    /// Handoffs: rate per user turn and reasons.
    pub handoffs: Handoffs,
    /// The most frequent user texts whose turn was handed off or answered with a clarifying
    /// question (at most 10).
    pub unresolved: Vec<UnresolvedQuestion>,
}

/// Events per kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, clickhouse::Row)]
pub struct KindCounts {
    /// `user_said` rows (user turns).
    pub user_said: u64,
    /// `intent_recognized` rows.
    pub intent_recognized: u64,
    /// `knowledge_retrieved` rows.
    pub knowledge_retrieved: u64,
    /// `answer_generated` rows.
    pub answer_generated: u64,
    /// `handoff_requested` rows.
    pub handoff_requested: u64,
    /// `dialogue_closed` rows.
    pub dialogue_closed: u64,
    /// `dead_letter` rows.
    pub dead_letter: u64,
}

/// One minute of the window.
#[derive(Debug, Clone, Serialize)]
pub struct MinutePoint {
    /// Start of the minute, Unix ms.
    pub minute_ms: u64,
    /// User turns in that minute.
    pub turns: u64,
    /// `turns / 60`.
    pub turns_per_second: f64,
    /// Answers and handoffs in that minute.
    pub replies: u64,
    /// Median latency of those replies, ms (`null` without replies).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of those replies, ms (`null` without replies).
    pub p99_ms: Option<f64>,
}

/// Latency percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Answers and handoffs measured.
    pub count: u64,
    /// Median, ms (`null` without replies).
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms (`null` without replies).
    pub p99_ms: Option<f64>,
    /// Largest, ms (`null` without replies).
    pub max_ms: Option<u32>,
}

/// How often one intent was recognised.
#[derive(Debug, Clone, Serialize)]
pub struct IntentCount {
    /// The label.
    pub intent: String,
    /// `intent_recognized` rows with it.
    pub count: u64,
    /// Its share of all `intent_recognized` rows in the window.
    pub share: f64,
}

/// Handoffs in the window.
#[derive(Debug, Clone, Serialize)]
pub struct Handoffs {
    /// `handoff_requested` rows.
    pub total: u64,
    /// `total / user turns` (0 without turns).
    pub rate: f64,
    /// Per reason, most frequent first.
    pub reasons: Vec<ReasonCount>,
}

/// How often one handoff reason occurred.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonCount {
    /// `low_confidence`, `user_asked`, …
    pub reason: String,
    /// Handoffs with it.
    pub count: u64,
}

/// A user text that was not resolved.
#[derive(Debug, Clone, Serialize)]
pub struct UnresolvedQuestion {
    /// The (masked) text the user sent.
    pub text: String,
    /// How many unresolved turns had exactly this text.
    pub count: u64,
    /// When it was last said, Unix ms.
    pub last_ms: u64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct LatencyRow {
    count: u64,
    quantiles: Vec<f32>,
    max: u32,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct MinuteTurnsRow {
    minute: u32,
    turns: u64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct MinuteLatencyRow {
    minute: u32,
    count: u64,
    quantiles: Vec<f32>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct LabelCountRow {
    label: String,
    count: u64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct UnresolvedRow {
    text: String,
    count: u64,
    last_ms: u64,
}

const WINDOW: &str = "occurred_at >= toDateTime(?) AND startsWith(dialogue_id, ?)";

fn finite(q: Option<&f32>) -> Option<f64> {
    q.map(|v| f64::from(*v)).filter(|v| v.is_finite())
}

async fn summary(
    State(console): State<Arc<Console>>,
    query: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let params = params(query)?;
    let w = window(&params)?;
    let key = (w.minutes, w.prefix.clone());
    let summary = match console.cached(&key) {
        Some(s) => s,
        None => {
            let s = Arc::new(console.run(compute_summary(&console.client, &w)).await?);
            console.remember(key, s.clone());
            s
        }
    };
    Ok(json_response(StatusCode::OK, summary.as_ref()))
}

async fn compute_summary(client: &clickhouse::Client, w: &Window) -> Result<Summary, clickhouse::error::Error> {
    let counts = client
        .query(&format!(
            "SELECT countIf(kind = 'user_said'), countIf(kind = 'intent_recognized'), \
             countIf(kind = 'knowledge_retrieved'), countIf(kind = 'answer_generated'), \
             countIf(kind = 'handoff_requested'), countIf(kind = 'dialogue_closed'), \
             countIf(kind = 'dead_letter') \
             FROM events FINAL WHERE {WINDOW}"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .fetch_one::<KindCounts>();
    let latency = client
        .query(&format!(
            "SELECT count(), quantilesTiming(0.5, 0.99)(latency_ms), max(latency_ms) \
             FROM events FINAL WHERE kind IN ('answer_generated', 'handoff_requested') AND {WINDOW}"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .fetch_one::<LatencyRow>();
    let turns = client
        .query(&format!(
            "SELECT toUInt32(toStartOfMinute(occurred_at)) AS minute, count() \
             FROM events FINAL WHERE kind = 'user_said' AND {WINDOW} \
             GROUP BY minute ORDER BY minute"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .fetch_all::<MinuteTurnsRow>();
    let minute_latency = client
        .query(&format!(
            "SELECT toUInt32(toStartOfMinute(occurred_at)) AS minute, count(), \
             quantilesTiming(0.5, 0.99)(latency_ms) \
             FROM events FINAL WHERE kind IN ('answer_generated', 'handoff_requested') AND {WINDOW} \
             GROUP BY minute ORDER BY minute"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .fetch_all::<MinuteLatencyRow>();
    let intents = client
        .query(&format!(
            "SELECT intent, count() AS c FROM events FINAL \
             WHERE kind = 'intent_recognized' AND {WINDOW} \
             GROUP BY intent ORDER BY c DESC, intent LIMIT ?"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .bind(TOP_INTENTS)
        .fetch_all::<LabelCountRow>();
    let reasons = client
        .query(&format!(
            "SELECT reason, count() AS c FROM events FINAL \
             WHERE kind = 'handoff_requested' AND {WINDOW} \
             GROUP BY reason ORDER BY c DESC, reason LIMIT ?"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .bind(TOP_REASONS)
        .fetch_all::<LabelCountRow>();
    // A turn is unresolved when some reply to its UserSaid (in_reply_to = its event_id) is a
    // handoff or a clarifying question. `IN (subquery)` rather than a JOIN: plain 18.16 syntax.
    let unresolved = client
        .query(&format!(
            "SELECT text, count() AS c, max(occurred_at_ms) AS last_ms FROM events FINAL \
             WHERE kind = 'user_said' AND {WINDOW} AND event_id IN ( \
                 SELECT in_reply_to FROM events FINAL \
                 WHERE {WINDOW} AND (kind = 'handoff_requested' \
                     OR (kind = 'answer_generated' AND has(?, text)))) \
             GROUP BY text ORDER BY c DESC, last_ms DESC, text LIMIT ?"
        ))
        .bind(w.from_s)
        .bind(&w.prefix)
        .bind(w.from_s)
        .bind(&w.prefix)
        .bind(CLARIFYING_ANSWERS.to_vec())
        .bind(TOP_UNRESOLVED)
        .fetch_all::<UnresolvedRow>();
    let (counts, latency, turns, minute_latency, intents, reasons, unresolved) =
        tokio::try_join!(counts, latency, turns, minute_latency, intents, reasons, unresolved)?;

    let window_s = f64::from(w.minutes) * 60.0;
    let turns: HashMap<u32, u64> = turns.into_iter().map(|r| (r.minute, r.turns)).collect();
    let minute_latency: HashMap<u32, MinuteLatencyRow> = minute_latency.into_iter().map(|r| (r.minute, r)).collect();
    let first_minute = w.from_s - w.from_s % 60;
    let last_minute = u32::try_from(w.to_ms / 1000).unwrap_or(u32::MAX);
    let series = (first_minute..=last_minute)
        .step_by(60)
        .map(|minute| {
            let n = turns.get(&minute).copied().unwrap_or(0);
            let l = minute_latency.get(&minute);
            let replies = l.map_or(0, |l| l.count);
            MinutePoint {
                minute_ms: u64::from(minute) * 1000,
                turns: n,
                turns_per_second: n as f64 / 60.0,
                replies,
                p50_ms: l.filter(|_| replies > 0).and_then(|l| finite(l.quantiles.first())),
                p99_ms: l.filter(|_| replies > 0).and_then(|l| finite(l.quantiles.get(1))),
            }
        })
        .collect();
    let measured = latency.count > 0;
    let recognized = counts.intent_recognized.max(1) as f64;
    let rate = if counts.user_said == 0 { 0.0 } else { counts.handoff_requested as f64 / counts.user_said as f64 };
    Ok(Summary {
        minutes: w.minutes,
        prefix: w.prefix.clone(),
        from_ms: u64::from(w.from_s) * 1000,
        to_ms: w.to_ms,
        turns_per_second: counts.user_said as f64 / window_s,
        series,
        latency: Latency {
            count: latency.count,
            p50_ms: if measured { finite(latency.quantiles.first()) } else { None },
            p99_ms: if measured { finite(latency.quantiles.get(1)) } else { None },
            max_ms: measured.then_some(latency.max),
        },
        intents: intents
            .into_iter()
            .map(|r| IntentCount { share: r.count as f64 / recognized, intent: r.label, count: r.count })
            .collect(),
        handoffs: Handoffs {
            total: counts.handoff_requested,
            rate,
            reasons: reasons.into_iter().map(|r| ReasonCount { reason: r.label, count: r.count }).collect(),
        },
        unresolved: unresolved
            .into_iter()
            .map(|r| UnresolvedQuestion { text: r.text, count: r.count, last_ms: r.last_ms })
            .collect(),
        counts,
    })
}

// ---------------------------------------------------------------------------------------------
// GET /console/api/dialogues
// ---------------------------------------------------------------------------------------------

/// One entry of `GET /console/api/dialogues` (a JSON array, most recently active first).
#[derive(Debug, Clone, Serialize, Deserialize, clickhouse::Row)]
pub struct DialogueListItem {
    /// The dialogue.
    pub dialogue_id: String,
    /// Its first event in the window, Unix ms.
    pub first_ms: u64,
    /// Its last event in the window, Unix ms.
    pub last_ms: u64,
    /// User turns in the window.
    pub turns: u64,
    /// Handoffs in the window.
    pub handoffs: u64,
    /// Whether it closed in the window.
    pub closed: u64,
}

async fn dialogues(
    State(console): State<Arc<Console>>,
    query: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let params = params(query)?;
    let w = window(&params)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let rows = console
        .run(
            console
                .client
                .query(&format!(
                    "SELECT dialogue_id, min(occurred_at_ms) AS first_ms, max(occurred_at_ms) AS last_ms, \
                     countIf(kind = 'user_said') AS turns, countIf(kind = 'handoff_requested') AS handoffs, \
                     countIf(kind = 'dialogue_closed') AS closed \
                     FROM events FINAL WHERE kind != 'dead_letter' AND {WINDOW} \
                     GROUP BY dialogue_id ORDER BY last_ms DESC, dialogue_id LIMIT ?"
                ))
                .bind(w.from_s)
                .bind(&w.prefix)
                .bind(limit)
                .fetch_all::<DialogueListItem>(),
        )
        .await?;
    Ok(json_response(StatusCode::OK, &rows))
}

// ---------------------------------------------------------------------------------------------
// GET /console/api/dialogue/{dialogue_id}
// ---------------------------------------------------------------------------------------------

/// `GET /console/api/dialogue/{dialogue_id}`: every event of one dialogue.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The dialogue.
    pub dialogue_id: String,
    /// User turns (`user_said` events).
    pub turns: usize,
    /// Its events by `occurred_at_ms`, pipeline order within one millisecond; at most
    /// [`MAX_TRACE_EVENTS`].
    pub events: Vec<TraceEvent>,
    /// Whether events were left out (more than [`MAX_TRACE_EVENTS`]).
    pub truncated: bool,
}

/// One event of a [`Trace`]. Strings are data: the page shows them with `textContent`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEvent {
    /// The event's id.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
    /// Event time, Unix ms.
    pub occurred_at_ms: u64,
    /// The `user_said` this event replies to (`null` for a `user_said` and for events of no turn).
    pub in_reply_to: Option<String>,
    /// Milliseconds since that `user_said` (0 for a `user_said` itself; `null` when the
    /// `user_said` is not among the events).
    pub since_user_ms: Option<i64>,
    /// The client's message id.
    pub client_msg_id: String,
    /// The (masked) text: what the user said, the answer, the KB entry id, the handoff detail.
    pub text: String,
    /// The intent, where the kind has one.
    pub intent: String,
    /// The confidence (or retrieval score), where the kind has one.
    pub confidence: f32,
    /// The latency the topology recorded, where the kind has one.
    pub latency_ms: u32,
    /// Handoff, close or dead-letter reason.
    pub reason: String,
    /// Classifier version.
    pub model_version: String,
    /// Knowledge-base version.
    pub kb_version: String,
    /// The whole event as JSON text (a string, never markup).
    pub payload: String,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct TraceRow {
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: uuid::Uuid,
    kind: String,
    occurred_at_ms: u64,
    intent: String,
    confidence: f32,
    latency_ms: u32,
    #[serde(with = "clickhouse::serde::uuid")]
    in_reply_to: uuid::Uuid,
    client_msg_id: String,
    text: String,
    model_version: String,
    kb_version: String,
    reason: String,
    payload: String,
}

/// Pipeline order of the kinds, for events within the same millisecond.
fn stage(kind: &str) -> u8 {
    match kind {
        "user_said" => 0,
        "intent_recognized" => 1,
        "knowledge_retrieved" => 2,
        "answer_generated" => 3,
        "handoff_requested" => 4,
        "dialogue_closed" => 5,
        _ => 6,
    }
}

/// Orders the rows and computes each one's latency from its `user_said`.
fn build_trace(dialogue_id: String, mut rows: Vec<TraceRow>) -> Trace {
    let truncated = rows.len() > MAX_TRACE_EVENTS;
    rows.truncate(MAX_TRACE_EVENTS);
    rows.sort_by(|a, b| {
        (a.occurred_at_ms, stage(&a.kind), a.event_id).cmp(&(b.occurred_at_ms, stage(&b.kind), b.event_id))
    });
    let said: HashMap<uuid::Uuid, u64> =
        rows.iter().filter(|r| r.kind == "user_said").map(|r| (r.event_id, r.occurred_at_ms)).collect();
    let turns = said.len();
    let events = rows
        .into_iter()
        .map(|r| {
            let (in_reply_to, since_user_ms) = if r.kind == "user_said" {
                (None, Some(0))
            } else if r.in_reply_to.is_nil() {
                (None, None)
            } else {
                let since = said.get(&r.in_reply_to).map(|at| r.occurred_at_ms as i64 - *at as i64);
                (Some(r.in_reply_to.to_string()), since)
            };
            TraceEvent {
                event_id: r.event_id.to_string(),
                kind: r.kind,
                occurred_at_ms: r.occurred_at_ms,
                in_reply_to,
                since_user_ms,
                client_msg_id: r.client_msg_id,
                text: r.text,
                intent: r.intent,
                confidence: if r.confidence.is_finite() { r.confidence } else { 0.0 },
                latency_ms: r.latency_ms,
                reason: r.reason,
                model_version: r.model_version,
                kb_version: r.kb_version,
                payload: r.payload,
            }
        })
        .collect();
    Trace { dialogue_id, turns, events, truncated }
}

async fn trace(State(console): State<Arc<Console>>, Path(dialogue_id): Path<String>) -> ApiResult<Response> {
    check_id("dialogue_id", &dialogue_id, false)?;
    let rows = console
        .run(
            console
                .client
                .query(
                    "SELECT event_id, kind, occurred_at_ms, intent, confidence, latency_ms, in_reply_to, \
                     client_msg_id, text, model_version, kb_version, reason, payload \
                     FROM events FINAL WHERE dialogue_id = ? ORDER BY occurred_at_ms LIMIT ?",
                )
                .bind(&dialogue_id)
                .bind(MAX_TRACE_EVENTS as u64 + 1)
                .fetch_all::<TraceRow>(),
        )
        .await?;
    if rows.is_empty() {
        return Err(ConsoleError::NotFound);
    }
    tracing::debug!(dialogue_id = %dialogue_id, events = rows.len(), "console trace");
    let trace = build_trace(dialogue_id, rows);
    Ok(json_response(StatusCode::OK, &trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, at: u64, id: u128, reply_to: u128) -> TraceRow {
        TraceRow {
            event_id: uuid::Uuid::from_u128(id),
            kind: kind.into(),
            occurred_at_ms: at,
            intent: String::new(),
            confidence: f32::NAN,
            latency_ms: 0,
            in_reply_to: uuid::Uuid::from_u128(reply_to),
            client_msg_id: "m".into(),
            text: String::new(),
            model_version: String::new(),
            kb_version: String::new(),
            reason: String::new(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn minutes_and_limits_are_clamped_and_validated() {
        assert_eq!(parse_minutes(None).unwrap(), 15);
        assert_eq!(parse_minutes(Some("")).unwrap(), 15);
        assert_eq!(parse_minutes(Some("0")).unwrap(), 1);
        assert_eq!(parse_minutes(Some("60")).unwrap(), 60);
        assert_eq!(parse_minutes(Some("999999999999")).unwrap(), 1440);
        assert!(matches!(parse_minutes(Some("-3")), Err(ConsoleError::BadRequest { name: "minutes", .. })));
        assert!(matches!(parse_minutes(Some("1; DROP")), Err(ConsoleError::BadRequest { .. })));
        assert_eq!(parse_limit(Some("1000")).unwrap(), 100);
        assert!(check_id("dialogue_id", "", false).is_err());
        assert!(check_id("prefix", "", true).is_ok());
        assert!(check_id("dialogue_id", "a\u{0}b", false).is_err());
        assert!(check_id("dialogue_id", &"x".repeat(129), false).is_err());
    }

    #[test]
    fn trace_orders_by_time_then_stage_and_measures_from_the_user_turn() {
        let rows = vec![
            row("answer_generated", 1_100, 4, 1),
            row("intent_recognized", 1_000, 2, 1),
            row("user_said", 1_000, 1, 0),
            row("knowledge_retrieved", 1_040, 3, 1),
            row("handoff_requested", 5_000, 9, 77),
            row("dialogue_closed", 6_000, 10, 0),
        ];
        let t = build_trace("d".into(), rows);
        let order: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            order,
            [
                "user_said",
                "intent_recognized",
                "knowledge_retrieved",
                "answer_generated",
                "handoff_requested",
                "dialogue_closed"
            ]
        );
        let since: Vec<Option<i64>> = t.events.iter().map(|e| e.since_user_ms).collect();
        assert_eq!(since, [Some(0), Some(0), Some(40), Some(100), None, None]);
        assert_eq!(t.turns, 1);
        assert!(!t.truncated);
        assert_eq!(t.events[0].in_reply_to, None);
        assert_eq!(t.events[1].in_reply_to.as_deref(), Some(uuid::Uuid::from_u128(1).to_string().as_str()));
        assert_eq!(t.events[0].confidence, 0.0, "NaN never reaches JSON");
    }

    #[test]
    fn errors_answer_json_with_the_right_status() {
        let e = ConsoleError::Timeout { url: "http://ch:8123".into() };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code(), "clickhouse_timeout");
        let e = ConsoleError::ClickHouse {
            url: "http://ch:8123".into(),
            source: clickhouse::error::Error::BadResponse("Code: 62 ... SELECT secret".into()),
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.public_message().contains("secret"), "ClickHouse's text stays in the log");
        assert_eq!(ConsoleError::NotFound.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn json_never_carries_markup_characters() {
        use axum::body::to_bytes;
        let value = serde_json::json!({"text": "<script>alert(1)</script> & more"});
        let response = json_response(StatusCode::OK, &value);
        assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'), "{text}");
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn the_page_builds_no_markup_from_data() {
        assert!(!CONSOLE_PAGE.contains("innerHTML"));
        assert!(!CONSOLE_PAGE.contains("outerHTML"));
        assert!(!CONSOLE_PAGE.contains("insertAdjacentHTML"));
        assert!(!CONSOLE_PAGE.contains("document.write"));
        assert!(CONSOLE_PAGE.contains("/console/vendor/chart.umd.min.js"));
        assert!(CHART_JS.starts_with("/*!\n * Chart.js v4"));
    }
}
