//! The topology's metrics listener (axum): `GET /metrics` (Prometheus text) and
//! `GET /aggregates?since=MINUTE` (the live per-minute counts as JSON). It binds to the
//! configured address (localhost by default) and answers nothing else.

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use switchboard_topology::metrics::Metrics;

/// Longest a request may take to arrive and be answered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(serde::Deserialize)]
struct Since {
    #[serde(default)]
    since: Option<String>,
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}

async fn aggregates_json(State(metrics): State<Arc<Metrics>>, Query(query): Query<Since>) -> impl IntoResponse {
    // An absent or invalid `since` means every kept minute.
    let since = query.since.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    ([(CONTENT_TYPE, "application/json")], metrics.live_aggregates().to_json(since))
}

/// The listener's routes.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/aggregates", get(aggregates_json))
        .with_state(metrics)
}

/// Serves the routes on `listen` until the process ends; a request that takes longer than
/// [`REQUEST_TIMEOUT`] is dropped.
pub async fn serve(listen: std::net::SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, "metrics at /metrics");
    let app = router(metrics).layer(axum::middleware::from_fn(|request, next: axum::middleware::Next| async move {
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
        }
    }));
    axum::serve(listener, app).await
}
