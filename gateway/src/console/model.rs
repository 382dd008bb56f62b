//! The console's data: its limits, its error, the validated request parameters, the JSON
//! documents the API answers, and the pure computations behind them (no I/O here).

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchboard_schemas::clarify::{CLARIFY_EN, CLARIFY_ZH};

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
/// (zh-CN and en, [`switchboard_schemas::clarify`], the texts the operators render). A turn
/// answered with one of these counts as unresolved, like a turn handed off.
pub const CLARIFYING_ANSWERS: [&str; 2] = [CLARIFY_ZH, CLARIFY_EN];

const MAX_ID_CHARS: usize = crate::protocol::MAX_ID_CHARS;

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
    pub(crate) fn public_message(&self) -> String {
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

/// What a console API handler returns.
pub(crate) type ApiResult<T> = Result<T, ConsoleError>;

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// The raw query parameters; parsed by hand so that a bad one answers JSON.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    pub(crate) minutes: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) limit: Option<String>,
}

/// A window and a dialogue-id prefix, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    pub(crate) minutes: u32,
    pub(crate) prefix: String,
    /// Start of the window, Unix seconds.
    pub(crate) from_s: u32,
    /// End of the window (now), Unix milliseconds.
    pub(crate) to_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `minutes` clamped to 1..=1440 (default 15).
pub(crate) fn parse_minutes(raw: Option<&str>) -> ApiResult<u32> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_MINUTES),
        Some(s) => s.parse::<u64>().map(|m| m.clamp(1, u64::from(MAX_MINUTES)) as u32).map_err(|_| {
            ConsoleError::BadRequest { name: "minutes", reason: "expected a whole number of minutes".into() }
        }),
    }
}

/// `limit` clamped to 1..=100 (default 20).
pub(crate) fn parse_limit(raw: Option<&str>) -> ApiResult<u32> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(20),
        Some(s) => s
            .parse::<u64>()
            .map(|m| m.clamp(1, 100) as u32)
            .map_err(|_| ConsoleError::BadRequest { name: "limit", reason: "expected a whole number".into() }),
    }
}

/// A dialogue id or prefix: at most 128 characters, no control characters.
pub(crate) fn check_id(name: &'static str, value: &str, allow_empty: bool) -> ApiResult<()> {
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

/// The window of a summary or a dialogue list: the last `minutes` up to now.
pub(crate) fn window(params: &Params) -> ApiResult<Window> {
    let minutes = parse_minutes(params.minutes.as_deref())?;
    let prefix = params.prefix.clone().unwrap_or_default();
    check_id("prefix", &prefix, true)?;
    let to_ms = now_ms();
    let from_s = u32::try_from((to_ms / 1000).saturating_sub(u64::from(minutes) * 60)).unwrap_or(u32::MAX);
    Ok(Window { minutes, prefix, from_s, to_ms })
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

/// A quantile as JSON can carry it: `None` when absent or not finite.
pub(crate) fn finite(q: Option<&f32>) -> Option<f64> {
    q.map(|v| f64::from(*v)).filter(|v| v.is_finite())
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

/// Pipeline order of the kinds, for events within the same millisecond.
pub(crate) fn stage(kind: &str) -> u8 {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn clarifying_answers_are_the_rendered_texts() {
        assert_eq!(
            CLARIFYING_ANSWERS,
            [
                "抱歉，我还没完全理解您的问题。能再具体描述一下吗？比如涉及哪个订单、商品或业务。",
                "Sorry, I'm not sure I understood. Could you tell me a bit more, for example which order, product or service this is about?",
            ]
        );
    }
}
