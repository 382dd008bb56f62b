//! The topology's metrics listener (axum): `GET /metrics` (Prometheus text) and
//! `GET /aggregates?since=MINUTE` (the live per-minute counts as JSON). It binds to the
//! configured address (localhost by default) and answers nothing else. Connections are served by
//! `switchboard_gateway::http_serve`, so a client that never completes its request head is
//! disconnected after [`HEADER_READ_TIMEOUT`].

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use switchboard_topology::metrics::Metrics;

/// Longest a request's handler may take to answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a client may take to send a complete request head (slowloris guard; see
/// `switchboard_gateway::http_serve`).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The listener's routes behind the per-request timeout: a request whose handler takes longer
/// than [`REQUEST_TIMEOUT`] is answered 408.
pub fn app(metrics: Arc<Metrics>) -> Router {
    router(metrics).layer(axum::middleware::from_fn(|request, next: axum::middleware::Next| async move {
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
        }
    }))
}

/// Serves the routes on `listen` until the process ends: a client that has not sent a complete
/// request head within [`HEADER_READ_TIMEOUT`] is disconnected, and a request that takes longer
/// than [`REQUEST_TIMEOUT`] to answer gets 408.
pub async fn serve(listen: std::net::SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, "metrics at /metrics");
    serve_on(listener, metrics, HEADER_READ_TIMEOUT, std::future::pending()).await
}

/// [`serve`] on a bound listener with a chosen header read timeout, until `shutdown` completes
/// (then requests in flight are finished); for tests and embedders.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    header_read_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    switchboard_gateway::http_serve::serve(listener, app(metrics), header_read_timeout, shutdown).await
}
