//! The agent side of the admin listener: the agent page (`/agent`) and, with the agent protocol,
//! the agent WebSocket (`/agent/ws`). Every route here is behind the admin guard (agent and up).

use crate::state::Shared;
use axum::extract::Extension;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The agent page served at `/agent`.
pub const AGENT_PAGE: &str = include_str!("../../static/agent.html");

/// The agent routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/agent", get(page)).with_state(shared)
}

async fn page(Extension(identity): Extension<crate::admin::Identity>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                     base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        AGENT_PAGE.replace("<!--SB-ACCOUNT-->", &crate::admin::account_bar(&identity)),
    )
        .into_response()
}
