//! The console's live view: the per-minute counts each topology process keeps with differential
//! dataflow (`GET /aggregates` on its metrics listener), fetched and summed across processes.
//!
//! `GET /console/api/live?minutes=N` answers [`LiveView`]. The topology processes are named by
//! `SWITCHBOARD_TOPOLOGY_METRICS` (comma-separated `host:port`, default `127.0.0.1:9100`, the
//! topology's default `metrics_listen`). A process that does not answer within a second is listed
//! in `unreachable` and the others are still summed. These counts are each process's since it
//! started (a live view); the console's history comes from ClickHouse.

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_schemas::aggregates::AggregateRow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest `/aggregates` body read from one process.
const MAX_BODY: u64 = 4 << 20;

/// One counted key, as the topology serves it and as the view returns it (summed): the shared
/// [`AggregateRow`] of `switchboard_schemas::aggregates`, under its former name here.
pub type LiveRow = AggregateRow;

/// The answer of `/console/api/live`.
#[derive(Debug, Serialize)]
pub struct LiveView {
    /// Processes that answered.
    pub sources: usize,
    /// Processes that did not (`host:port`).
    pub unreachable: Vec<String>,
    /// Summed rows, in (minute, metric, label) order.
    pub rows: Vec<AggregateRow>,
}

/// The topology metrics addresses from `SWITCHBOARD_TOPOLOGY_METRICS`.
pub fn topology_addresses() -> Vec<String> {
    std::env::var("SWITCHBOARD_TOPOLOGY_METRICS")
        .unwrap_or_else(|_| "127.0.0.1:9100".into())
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

async fn fetch(address: &str, since_minute: i64) -> Option<Vec<AggregateRow>> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let request = format!("GET /aggregates?since={since_minute} HTTP/1.0\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.take(MAX_BODY).read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return None;
        }
        serde_json::from_str(body).ok()
    };
    tokio::time::timeout(Duration::from_secs(1), work).await.ok().flatten()
}

/// Sums rows of several processes by key.
pub fn merge(parts: impl IntoIterator<Item = Vec<AggregateRow>>) -> Vec<AggregateRow> {
    let mut sums: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    for row in parts.into_iter().flatten() {
        *sums.entry((row.minute, row.metric, row.label)).or_insert(0) += row.count;
    }
    sums.into_iter().map(|((minute, metric, label), count)| AggregateRow { minute, metric, label, count }).collect()
}

/// `?minutes=N` (1..=120, default 15).
#[derive(Debug, Deserialize)]
pub struct LiveParams {
    minutes: Option<String>,
}

/// `GET /console/api/live`.
pub async fn live(Query(params): Query<LiveParams>) -> Response {
    let minutes: i64 = match params.minutes.as_deref().map(str::parse::<i64>) {
        None => 15,
        Some(Ok(m)) => m.clamp(1, 120),
        Some(Err(_)) => {
            let body = serde_json::json!({"error": "minutes must be a whole number", "code": "bad_parameter"});
            return (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response();
        }
    };
    let now_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_millis() / 60_000) as i64)
        .unwrap_or(0);
    let addresses = topology_addresses();
    let fetched = futures::future::join_all(addresses.iter().map(|a| fetch(a, now_minute - minutes + 1))).await;
    let mut unreachable = Vec::new();
    let mut parts = Vec::new();
    for (address, rows) in addresses.iter().zip(fetched) {
        match rows {
            Some(rows) => parts.push(rows),
            None => unreachable.push(address.clone()),
        }
    }
    let view = LiveView { sources: parts.len(), unreachable, rows: merge(parts) };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(view)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(minute: i64, metric: &str, count: i64) -> AggregateRow {
        AggregateRow { minute, metric: metric.into(), label: String::new(), count }
    }

    #[test]
    fn rows_of_processes_are_summed_by_key() {
        let merged = merge(vec![vec![row(1, "turns", 2), row(2, "turns", 1)], vec![row(1, "turns", 3)]]);
        assert_eq!(merged, vec![row(1, "turns", 5), row(2, "turns", 1)]);
    }
}
