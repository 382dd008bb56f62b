//! `GET /login` (the form), `POST /login` (form fields `username`, `password`, optional `next`)
//! and `POST /logout` (needs the session's CSRF token, as form field `csrf` or header
//! `X-CSRF-Token`).
//!
//! Login attempts are throttled per account and per client address (HTTP 429 with
//! `Retry-After`); the password is checked with argon2id off the async threads; a successful
//! login gets a new session id (no fixation) and a fresh CSRF token. A client that asks for JSON
//! (`Accept: application/json`) gets `{"user","role","csrf"}` instead of a redirect.

use super::guard::{json_error, same_text, Login, LOGIN_KEY};
use super::{now_secs, Admin};
use crate::per_address::client_ip;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use rand::RngCore;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_sessions::Session;

const LOGIN_PAGE: &str = include_str!("../../static/login.html");

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `?next=` of the login page.
#[derive(Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// The logout form's field.
#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `GET /login`.
pub(crate) async fn page(Query(q): Query<NextQuery>) -> Response {
    login_page(StatusCode::OK, "", q.next.as_deref())
}

/// `POST /login`.
pub(crate) async fn login(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Response {
    let json = wants_json(&headers);
    let ip = client_ip(peer, &headers, admin.client_ip_header.as_deref());
    let name = form.username.trim().to_string();
    // Only names an account can have become keys of the per-account limiter (bounded keys).
    let account_allowed = !crate::accounts::valid_name(&name) || admin.account_attempts.check_key(&name).is_ok();
    admin.forget_old_attempts();
    if admin.address_attempts.check_key(&ip).is_err() || !account_allowed {
        admin.metrics.login("throttled");
        tracing::warn!(%ip, "login throttled");
        let mut response = if json {
            json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many login attempts; wait a minute")
        } else {
            login_page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts; wait a minute. 尝试次数过多，请稍后再试。", form.next.as_deref())
        };
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let accounts = admin.users.accounts();
    let password = form.password;
    let checked = tokio::task::spawn_blocking(move || {
        accounts.as_ref().as_ref().and_then(|a| a.verify(&name, &password).map(|acc| (acc.name.clone(), acc.role)))
    })
    .await
    .ok()
    .flatten();
    let Some((user, role)) = checked else {
        admin.metrics.login("refused");
        tracing::info!(%ip, "login refused: wrong username or password");
        return if json {
            json_error(StatusCode::UNAUTHORIZED, "unauthorized", "wrong username or password")
        } else {
            login_page(StatusCode::UNAUTHORIZED, "Wrong username or password. 用户名或密码错误。", form.next.as_deref())
        };
    };
    let mut csrf = [0u8; 32];
    rand::rng().fill_bytes(&mut csrf);
    let login = Login { user: user.clone(), csrf: hex::encode(csrf), at: now_secs() };
    let stored = async {
        session.cycle_id().await?;
        session.insert(LOGIN_KEY, &login).await
    };
    if let Err(e) = stored.await {
        tracing::error!(error = %e, "admin session store failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, "session store failed").into_response();
    }
    admin.metrics.login("accepted");
    tracing::info!(%user, role = role.as_str(), %ip, "logged in");
    if json {
        let body = serde_json::json!({ "user": user, "role": role.as_str(), "csrf": login.csrf });
        return ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
            .into_response();
    }
    let default = if role.allows(crate::accounts::Role::Agent) { "/agent" } else { "/console" };
    Redirect::to(safe_next(form.next.as_deref()).unwrap_or(default)).into_response()
}

/// `POST /logout`: ends the session server-side.
pub(crate) async fn logout(
    headers: HeaderMap,
    session: Session,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let login = session.get::<Login>(LOGIN_KEY).await.ok().flatten();
    let Some(login) = login else {
        return if wants_json(&headers) {
            json_error(StatusCode::UNAUTHORIZED, "unauthorized", "not logged in")
        } else {
            Redirect::to("/login").into_response()
        };
    };
    let given = form
        .ok()
        .and_then(|Form(f)| f.csrf)
        .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string));
    if !given.is_some_and(|g| same_text(&g, &login.csrf)) {
        return json_error(StatusCode::FORBIDDEN, "csrf", "missing or wrong CSRF token");
    }
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "admin session store failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, "session store failed").into_response();
    }
    tracing::info!(user = %login.user, "logged out");
    if wants_json(&headers) {
        return StatusCode::NO_CONTENT.into_response();
    }
    Redirect::to("/login").into_response()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

/// A redirect target after login: a local path only (no scheme, no `//host`, no backslash).
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.starts_with('/') && !n.starts_with("//") && n.chars().all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
    })
}

fn login_page(status: StatusCode, message: &str, next: Option<&str>) -> Response {
    let page = LOGIN_PAGE
        .replace("{{message}}", &escape(message))
        .replace("{{next}}", safe_next(next).unwrap_or(""));
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page,
    )
        .into_response()
}

/// HTML-escapes text for an element's content or a quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/console")), Some("/console"));
        assert_eq!(safe_next(Some("//evil.example")), None);
        assert_eq!(safe_next(Some("https://evil.example")), None);
        assert_eq!(safe_next(Some("/\\evil")), None);
        assert_eq!(safe_next(Some("/a?b=<x>")), None);
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
