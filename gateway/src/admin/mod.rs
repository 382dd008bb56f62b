//! The admin listener (default `127.0.0.1:8081`): everything that is not for customers.
//!
//! | route | who |
//! |---|---|
//! | `GET /login`, `POST /login`, `POST /logout` | anyone (logout needs the session and its CSRF token) |
//! | `GET /healthz` | anyone |
//! | `GET /` | a redirect to `/console` |
//! | `/console`, `/console/vendor/…`, `/console/api/…` | viewer and up |
//! | `GET /metrics` | viewer and up, or `Authorization: Bearer` with the metrics token |
//! | `/agent`, `/agent/ws`, `/agent/api/…` | agent and up |
//!
//! A login is a server-side session (in this process's memory) behind the `sb_admin` cookie:
//! HttpOnly, SameSite=Strict, `Secure` when configured, expiring after
//! [`AdminConfig::session_idle`] without use and [`AdminConfig::session_max`] after the login;
//! logout deletes it. Every request checks the session's account against the users file, so a
//! removed account is logged out at once. Without a login an API answers 401 and a page
//! redirects to `/login`; a role too low gets 403; a state-changing request needs the session's
//! CSRF token (header `X-CSRF-Token`; the pages carry it), and a WebSocket from a browser an
//! `Origin` of this host. With several gateway instances behind one admin address, route a
//! user to one instance (sticky sessions): logins are not shared between instances.

mod config;
pub(crate) mod guard;
pub(crate) mod login;
mod users;

pub use config::AdminConfig;
pub use guard::Identity;

use crate::metrics::Metrics;
use crate::state::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, MemoryStore, SessionManagerLayer};
use users::UserStore;

/// The admin listener's shared state.
pub(crate) struct Admin {
    pub(crate) config: AdminConfig,
    pub(crate) users: UserStore,
    pub(crate) account_attempts: DefaultKeyedRateLimiter<String>,
    pub(crate) address_attempts: DefaultKeyedRateLimiter<IpAddr>,
    pub(crate) client_ip_header: Option<String>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Admin {
    fn new(config: AdminConfig, client_ip_header: Option<String>, metrics: Arc<Metrics>) -> Admin {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Admin {
            users: UserStore::new(config.users_file.clone()),
            account_attempts: RateLimiter::keyed(per_minute(config.login_per_account_per_minute)),
            address_attempts: RateLimiter::keyed(per_minute(config.login_per_address_per_minute)),
            config,
            client_ip_header,
            metrics,
        }
    }

    /// Drops the limiters' entries that are back to a full quota once they hold many keys, so
    /// that attempts with ever new names or addresses cannot grow them without bound.
    fn forget_old_attempts(&self) {
        if self.account_attempts.len() > 100_000 {
            self.account_attempts.retain_recent();
        }
        if self.address_attempts.len() > 100_000 {
            self.address_attempts.retain_recent();
        }
    }

    /// Whether the request's `Authorization: Bearer` is the metrics token.
    fn bearer_opens_metrics(&self, headers: &axum::http::HeaderMap) -> bool {
        let Some(token) = &self.config.metrics_token else { return false };
        let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
        let expected = String::from_utf8_lossy(token.expose());
        given.strip_prefix("Bearer ").is_some_and(|g| guard::same_text(g.trim(), &expected))
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The admin listener's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let config = shared.config.admin.clone();
    let admin = Arc::new(Admin::new(config.clone(), shared.config.client_ip_header.clone(), shared.metrics.clone()));
    let idle = i64::try_from(config.session_idle.as_secs()).unwrap_or(i64::MAX);
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_name("sb_admin")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(config.secure_cookie)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(idle)));
    let mut viewer = Router::new().route("/metrics", get(metrics)).with_state(shared.clone());
    if let Some(clickhouse) = &shared.config.clickhouse {
        viewer = viewer.merge(crate::console::router(clickhouse));
    }
    if let Some(folder) = &config.shadow_reports {
        viewer = viewer.merge(crate::console::shadow::router(folder.clone()));
    }
    let viewer = viewer.route_layer(middleware::from_fn_with_state(admin.clone(), guard::viewer));
    let agent = crate::agent::router(shared.clone()).route_layer(middleware::from_fn_with_state(admin.clone(), guard::agent));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/login", get(login::page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/healthz", get(|| async { (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#) }))
        .with_state(admin)
        .merge(viewer)
        .merge(agent)
        .layer(sessions)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], shared.metrics.render()).into_response()
}

/// The bar the admin pages show: who is logged in, and the logout form with the CSRF token.
pub(crate) fn account_bar(identity: &Identity) -> String {
    format!(
        r#"<meta name="csrf-token" content="{csrf}"><form method="post" action="/logout" class="account" id="account"><span id="whoami" data-user="{user}">{user} · {role}</span> <input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="logout">退出 / Log out</button></form>"#,
        csrf = login::escape(&identity.csrf),
        user = login::escape(&identity.user),
        role = identity.role.as_str(),
    )
}
