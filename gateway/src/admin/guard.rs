//! Who may use an admin route: the login kept in the session, checked against the users file on
//! every request, the role the route needs, and the CSRF token on every state-changing request.

use super::Admin;
use crate::accounts::Role;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower_sessions::Session;

/// The session key of the login.
pub(crate) const LOGIN_KEY: &str = "switchboard.login";

/// What a session holds once its user logged in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Login {
    /// The account.
    pub(crate) user: String,
    /// The CSRF token of this session (the pages carry it).
    pub(crate) csrf: String,
    /// When the login happened (Unix seconds).
    pub(crate) at: u64,
}

/// The logged-in user of a request, for the handlers behind the guard.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The account name.
    pub user: String,
    /// Its role now.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Lets a request through when its session belongs to an existing account whose role allows
/// `needed` (and, for a state-changing method, the `X-CSRF-Token` header matches); otherwise 401
/// (APIs), a redirect to the login page (pages) or 403.
pub(crate) async fn require(admin: Arc<Admin>, session: Session, mut request: Request, next: Next, needed: Role) -> Response {
    let path = request.uri().path().to_string();
    if path == "/metrics" && admin.bearer_opens_metrics(request.headers()) {
        return next.run(request).await;
    }
    let login = match session.get::<Login>(LOGIN_KEY).await {
        Ok(login) => login,
        Err(e) => {
            tracing::error!(error = %e, "admin session store failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "session store failed").into_response();
        }
    };
    let Some(login) = login else { return unauthenticated(&path, request.headers()) };
    let expired = super::now_secs().saturating_sub(login.at) > admin.config.session_max.as_secs();
    let account = if expired { None } else { admin.users.get(&login.user) };
    let Some(account) = account else {
        // Expired, or the account was removed: the session ends here, server-side.
        let _ = session.flush().await;
        return unauthenticated(&path, request.headers());
    };
    if !account.role.allows(needed) {
        tracing::info!(user = %account.name, role = account.role.as_str(), needed = needed.as_str(), %path, "admin route refused: role");
        return json_error(StatusCode::FORBIDDEN, "forbidden", &format!("this needs the {} role", needed.as_str()));
    }
    if changes_state(request.method()) && !same_token(request.headers().get("x-csrf-token"), &login.csrf) {
        return json_error(StatusCode::FORBIDDEN, "csrf", "missing or wrong CSRF token");
    }
    if is_websocket(request.headers()) && !same_origin(request.headers()) {
        return json_error(StatusCode::FORBIDDEN, "origin", "cross-origin WebSocket refused");
    }
    request.extensions_mut().insert(Identity { user: account.name, role: account.role, csrf: login.csrf });
    next.run(request).await
}

/// Viewer and up.
pub(crate) async fn viewer(State(admin): State<Arc<Admin>>, session: Session, request: Request, next: Next) -> Response {
    require(admin, session, request, next, Role::Viewer).await
}

/// Agent and up.
pub(crate) async fn agent(State(admin): State<Arc<Admin>>, session: Session, request: Request, next: Next) -> Response {
    require(admin, session, request, next, Role::Agent).await
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether `given` is the session's token (compared as digests, so the time taken does not tell
/// how much of it matched).
pub(crate) fn same_token(given: Option<&HeaderValue>, expected: &str) -> bool {
    given.and_then(|v| v.to_str().ok()).is_some_and(|v| same_text(v, expected))
}

/// Compares two secrets by their SHA-256 digests.
pub(crate) fn same_text(given: &str, expected: &str) -> bool {
    !expected.is_empty() && Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A browser's WebSocket carries `Origin`; it must name this host (cross-site WebSocket
/// hijacking). Clients that send no `Origin` are not browsers and carry the cookie on purpose.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

fn wants_json(path: &str, headers: &HeaderMap) -> bool {
    path == "/metrics"
        || path.starts_with("/console/api/")
        || path.starts_with("/agent/api/")
        || path.ends_with(".json")
        || path == "/agent/ws"
        || headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

fn unauthenticated(path: &str, headers: &HeaderMap) -> Response {
    if wants_json(path, headers) {
        return json_error(StatusCode::UNAUTHORIZED, "unauthorized", "log in first (POST /login)");
    }
    let next: String = path.chars().filter(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c)).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// A JSON error body `{"error":…,"code":…}` with `status`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "code": code }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
