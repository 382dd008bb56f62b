//! The console's ClickHouse side: the client and its limits (concurrent queries, time limit,
//! summary cache), the SQL of each API endpoint and the rows it reads.
//!
//! Queries are bound with the `clickhouse` crate's `?` parameters (nothing a user typed is ever
//! formatted into SQL), read with `FINAL`, run with `readonly=2` and `max_execution_time`, and
//! use only ClickHouse 18.16 syntax.

use super::model::{
    finite, stage, ApiResult, ConsoleError, DialogueListItem, Handoffs, IntentCount, KindCounts, Latency, MinutePoint,
    ReasonCount, Summary, Trace, TraceEvent, UnresolvedQuestion, Window, CLARIFYING_ANSWERS, MAX_CONCURRENT_QUERIES,
    MAX_TRACE_EVENTS, QUERY_TIMEOUT, SUMMARY_CACHE,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::ClickHouseSettings;
use tokio::sync::Semaphore;

const TOP_INTENTS: u32 = 15;
const TOP_UNRESOLVED: u32 = 10;
const TOP_REASONS: u32 = 20;
const SUMMARY_CACHE_ENTRIES: usize = 64;
const PERMIT_WAIT: Duration = Duration::from_secs(5);

/// The console's state: a ClickHouse client, a limit on concurrent queries and the summary cache.
pub(crate) struct Console {
    pub(crate) client: clickhouse::Client,
    url: String,
    permits: Semaphore,
    cache: Mutex<HashMap<SummaryKey, (Instant, Arc<Summary>)>>,
}

/// A client for the ClickHouse in `settings` that only reads (`readonly=2`), and never for
/// longer than `limit`. Nothing is contacted until a query runs.
pub(crate) fn read_only_client(settings: &ClickHouseSettings, limit: std::time::Duration) -> clickhouse::Client {
    let mut client = clickhouse::Client::default()
        .with_url(&settings.url)
        .with_database(&settings.database)
        .with_user(&settings.user)
        // 18.16 lacks RowBinaryWithNamesAndTypes, which validation needs.
        .with_validation(false)
        .with_setting("readonly", "2")
        .with_setting("max_execution_time", limit.as_secs().to_string());
    if let Some(password) = &settings.password {
        client = client.with_password(password);
    }
    client
}

/// A summary's window length and dialogue-id prefix.
pub(crate) type SummaryKey = (u32, String);

impl Console {
    /// A client for the ClickHouse in `settings`; nothing is contacted until a query runs.
    pub(crate) fn new(settings: &ClickHouseSettings) -> Self {
        Console {
            client: read_only_client(settings, QUERY_TIMEOUT),
            url: settings.url.clone(),
            permits: Semaphore::new(MAX_CONCURRENT_QUERIES),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `work` (one API request's queries) under a permit and the time limit.
    pub(crate) async fn run<T>(
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

    /// The cached summary of `key`, if it is recent enough.
    pub(crate) fn cached(&self, key: &SummaryKey) -> Option<Arc<Summary>> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|(at, _)| at.elapsed() < SUMMARY_CACHE).map(|(_, s)| s.clone())
    }

    /// Caches a summary (and forgets stale ones).
    pub(crate) fn remember(&self, key: SummaryKey, summary: Arc<Summary>) {
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

/// The queries of one summary, run concurrently, and the summary made of their rows.
pub(crate) async fn compute_summary(
    client: &clickhouse::Client,
    w: &Window,
) -> Result<Summary, clickhouse::error::Error> {
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

/// The `limit` most recently active dialogues of the window.
pub(crate) async fn list_dialogues(
    client: &clickhouse::Client,
    w: &Window,
    limit: u32,
) -> Result<Vec<DialogueListItem>, clickhouse::error::Error> {
    client
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
        .fetch_all::<DialogueListItem>()
        .await
}

// ---------------------------------------------------------------------------------------------
// GET /console/api/dialogue/{dialogue_id}
// ---------------------------------------------------------------------------------------------

/// One event of a dialogue, as read for its trace.
#[derive(Debug, Deserialize, clickhouse::Row)]
pub(crate) struct TraceRow {
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

/// The events of one dialogue by time, at most [`MAX_TRACE_EVENTS`] + 1 (to tell a truncation).
pub(crate) async fn trace_rows(
    client: &clickhouse::Client,
    dialogue_id: &str,
) -> Result<Vec<TraceRow>, clickhouse::error::Error> {
    client
        .query(
            "SELECT event_id, kind, occurred_at_ms, intent, confidence, latency_ms, in_reply_to, \
             client_msg_id, text, model_version, kb_version, reason, payload \
             FROM events FINAL WHERE dialogue_id = ? ORDER BY occurred_at_ms LIMIT ?",
        )
        .bind(dialogue_id)
        .bind(MAX_TRACE_EVENTS as u64 + 1)
        .fetch_all::<TraceRow>()
        .await
}

/// Orders the rows and computes each one's latency from its `user_said`.
pub(crate) fn build_trace(dialogue_id: String, mut rows: Vec<TraceRow>) -> Trace {
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
}
