//! `GET /console/api/agents?minutes=N&prefix=P`: the SQL that reads the ownership events of a
//! window (and of [`LOOKBACK`] before it), the cache, and the handler. The report itself is
//! computed in Rust by `agents` (18.16 has no window functions; the rows are bounded by
//! [`MAX_AGENT_ROWS`]).
//!
//! Like the other endpoints: parameters bound with `?`, `FINAL`, `readonly=2`, the console's
//! query permits and time limit ([`super::QUERY_TIMEOUT`]), a report cached for
//! [`super::SUMMARY_CACHE`] per window and prefix, errors as [`super::ConsoleError`] JSON.
//! The `agent` column comes from `0003_agent.sql`; without it the query fails (503,
//! `clickhouse_error`).

use super::agents::{compute_report, AgentsReport, OwnershipRow, ReportWindow, LOOKBACK, MAX_AGENT_ROWS};
use super::model::{window, ApiResult, Params, Window, SUMMARY_CACHE};
use super::queries::{Console, SummaryKey};
use super::routes::{json_response, params};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const CACHE_ENTRIES: usize = 64;

/// The state of the agents endpoint: the console's client and permits, and its own cache.
pub(crate) struct AgentsApi {
    console: Arc<Console>,
    cache: Mutex<HashMap<SummaryKey, (Instant, Arc<AgentsReport>)>>,
}

impl AgentsApi {
    /// Shares `console`'s client, permits and time limit.
    pub(crate) fn new(console: Arc<Console>) -> Self {
        AgentsApi { console, cache: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, key: &SummaryKey) -> Option<Arc<AgentsReport>> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|(at, _)| at.elapsed() < SUMMARY_CACHE).map(|(_, r)| r.clone())
    }

    fn remember(&self, key: SummaryKey, report: Arc<AgentsReport>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < SUMMARY_CACHE);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), report));
        }
    }
}

/// The ownership rows of the window and the lookback before it, newest first, at most
/// [`MAX_AGENT_ROWS`] + 1 (to tell a truncation). Only what the report needs is read: the new
/// owner (`text`) of an `ownership_changed`, the action of a refusal, never a message's text.
async fn ownership_rows(
    client: &clickhouse::Client,
    w: &Window,
) -> Result<Vec<OwnershipRow>, clickhouse::error::Error> {
    let since_s = w.from_s.saturating_sub(LOOKBACK.as_secs() as u32);
    client
        .query(
            "SELECT dialogue_id, kind, occurred_at_ms, event_id, in_reply_to, \
             if(kind IN ('ownership_changed', 'agent_action_refused'), text, '') AS label, reason, agent \
             FROM events FINAL \
             WHERE kind IN ('ownership_changed', 'agent_said', 'agent_close', 'agent_action_refused') \
             AND occurred_at >= toDateTime(?) AND occurred_at_ms <= ? AND startsWith(dialogue_id, ?) \
             ORDER BY occurred_at_ms DESC, dialogue_id, event_id LIMIT ?",
        )
        .bind(since_s)
        .bind(w.to_ms)
        .bind(&w.prefix)
        .bind(MAX_AGENT_ROWS + 1)
        .fetch_all::<OwnershipRow>()
        .await
}

/// The report of a window: its rows read, then computed.
async fn report(client: &clickhouse::Client, w: &Window) -> Result<AgentsReport, clickhouse::error::Error> {
    let mut rows = ownership_rows(client, w).await?;
    let truncated = rows.len() as u64 > MAX_AGENT_ROWS;
    rows.truncate(MAX_AGENT_ROWS as usize);
    let window = ReportWindow {
        minutes: w.minutes,
        prefix: w.prefix.clone(),
        from_ms: u64::from(w.from_s) * 1000,
        to_ms: w.to_ms,
    };
    Ok(compute_report(&rows, &window, truncated))
}

/// `GET /console/api/agents`.
pub(crate) async fn agents(
    State(api): State<Arc<AgentsApi>>,
    query: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let params = params(query)?;
    let w = window(&params)?;
    let key = (w.minutes, w.prefix.clone());
    let report = match api.cached(&key) {
        Some(r) => r,
        None => {
            let r = Arc::new(api.console.run(report(&api.console.client, &w)).await?);
            tracing::debug!(minutes = w.minutes, waiting = r.waiting_now, agents = r.agents.len(), "console agents");
            api.remember(key, r.clone());
            r
        }
    };
    Ok(json_response(StatusCode::OK, report.as_ref()))
}
