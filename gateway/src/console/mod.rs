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
//! | `GET /console/shadow`, `/console/shadow/{name}` | the reports of `switchboard shadow` ([`shadow`]) |
//! | `GET /console/api/agents?minutes=N&prefix=P` | the human-agent side: queue, time to claim and to first reply, outcomes, per agent ([`AgentsReport`]; definitions in `agents.rs`) |
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
//!
//! The module is split by concern: `model` (limits, [`ConsoleError`], the JSON documents and the
//! pure computations), `queries` (the ClickHouse client, the SQL and its rows), `routes` (the
//! HTTP handlers), and for the human agents `agents` (the report and its computation) and
//! `agents_api` (its SQL, cache and handler). Everything public is re-exported here.

mod agents;
mod agents_api;
mod model;
pub(crate) mod queries;
mod routes;
pub mod shadow;

pub use agents::{
    AgentStats, AgentsReport, Outcomes, QueuePoint, Timing, ABANDON_AFTER, LOOKBACK, MAX_AGENTS, MAX_AGENT_ROWS,
};
pub use model::{
    ConsoleError, DialogueListItem, Handoffs, IntentCount, KindCounts, Latency, MinutePoint, ReasonCount, Summary,
    Trace, TraceEvent, UnresolvedQuestion, CLARIFYING_ANSWERS, DEFAULT_MINUTES, MAX_CONCURRENT_QUERIES, MAX_MINUTES,
    MAX_TRACE_EVENTS, QUERY_TIMEOUT, SUMMARY_CACHE,
};
pub use routes::{CHART_JS, CONSOLE_PAGE};

use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use switchboard_schemas::settings::ClickHouseSettings;

/// The console's routes (`/console`, `/console/vendor/…`, `/console/api/…`), reading from the
/// ClickHouse in `settings`. The gateway's `serve` merges them in when
/// `GatewayConfig::clickhouse` is set; nothing is contacted until a request comes.
pub fn router(settings: &ClickHouseSettings) -> Router {
    let console = Arc::new(queries::Console::new(settings));
    let agents = Arc::new(agents_api::AgentsApi::new(console.clone()));
    Router::new()
        .route("/console", get(routes::page))
        .route("/console/", get(routes::page))
        .route("/console/vendor/chart.umd.min.js", get(routes::chart_js))
        .route("/console/vendor/chart.js.LICENSE.md", get(routes::chart_js_license))
        .route("/console/api/summary", get(routes::summary))
        .route("/console/api/dialogues", get(routes::dialogues))
        .route("/console/api/dialogue/{dialogue_id}", get(routes::trace))
        .with_state(console)
        .route("/console/api/agents", get(agents_api::agents))
        .with_state(agents)
        .route("/console/api/live", get(crate::live::live))
}
