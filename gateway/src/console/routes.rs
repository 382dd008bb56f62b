//! The console's HTTP side: the static files, the API handlers and their JSON responses.

use super::model::{check_id, parse_limit, window, ApiResult, ConsoleError, Params};
use super::queries::{build_trace, compute_summary, list_dialogues, trace_rows, Console};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// The console page served at `/console`.
pub const CONSOLE_PAGE: &str = include_str!("../../static/console.html");

/// Chart.js 4.6.1 (`dist/chart.umd.min.js` from npm, unmodified), served at
/// `/console/vendor/chart.umd.min.js`.
pub const CHART_JS: &str = include_str!("../../static/vendor/chart.umd.min.js");

/// Chart.js's MIT licence, served next to it.
const CHART_JS_LICENSE: &str = include_str!("../../static/vendor/chart.js.LICENSE.md");

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
pub(super) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
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

// ---------------------------------------------------------------------------------------------
// Static files
// ---------------------------------------------------------------------------------------------

/// `GET /console`: the page, with the logged-in user's bar (name, role, logout form and CSRF
/// token) when the admin guard identified one.
pub(crate) async fn page(identity: Option<axum::Extension<crate::admin::Identity>>) -> Response {
    let bar = identity.map(|axum::Extension(i)| crate::admin::account_bar(&i)).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
                     frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        CONSOLE_PAGE.replace("<!--SB-ACCOUNT-->", &bar),
    )
        .into_response()
}

/// `GET /console/vendor/chart.umd.min.js`.
pub(crate) async fn chart_js() -> Response {
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

/// `GET /console/vendor/chart.js.LICENSE.md`.
pub(crate) async fn chart_js_license() -> Response {
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
// API
// ---------------------------------------------------------------------------------------------

pub(super) fn params(query: Result<Query<Params>, QueryRejection>) -> ApiResult<Params> {
    query.map(|Query(p)| p).map_err(|e| ConsoleError::BadRequest { name: "query string", reason: e.body_text() })
}

/// `GET /console/api/summary`.
pub(crate) async fn summary(
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

/// `GET /console/api/dialogues`.
pub(crate) async fn dialogues(
    State(console): State<Arc<Console>>,
    query: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let params = params(query)?;
    let w = window(&params)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let rows = console.run(list_dialogues(&console.client, &w, limit)).await?;
    Ok(json_response(StatusCode::OK, &rows))
}

/// `GET /console/api/dialogue/{dialogue_id}`.
pub(crate) async fn trace(State(console): State<Arc<Console>>, Path(dialogue_id): Path<String>) -> ApiResult<Response> {
    check_id("dialogue_id", &dialogue_id, false)?;
    let rows = console.run(trace_rows(&console.client, &dialogue_id)).await?;
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
