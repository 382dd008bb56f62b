//! The HTTP servers: the public listener (`/`, `/ws`, `/healthz` and nothing else) and the admin
//! listener (logins, the console, the agent page, `/metrics`: see [`crate::admin`]), and the
//! graceful drain.

use crate::config::GatewayConfig;
use crate::connection;
use crate::error::{Error, Result};
use crate::agent::AgentSide;
use crate::http_serve;
use crate::hub::Hub;
use crate::kafka::{BotSaidReader, Publisher};
use crate::metrics::Metrics;
use crate::per_address::{client_ip, PerAddress};
use crate::state::{ConnGuard, NoSlot, Shared};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The chat page served at `/`.
pub const CHAT_PAGE: &str = include_str!("../static/chat.html");

/// A gateway bound to its address and connected to Kafka, ready to [`run`](Gateway::run).
///
/// ```no_run
/// # async fn demo() -> Result<(), switchboard_gateway::Error> {
/// use switchboard_gateway::{Gateway, GatewayConfig};
/// let mut config = GatewayConfig::from_env()?;
/// config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
/// let gateway = Gateway::bind(config).await?;
/// println!("listening on {}", gateway.local_addr());
/// gateway.run(async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub struct Gateway {
    shared: Arc<Shared>,
    listener: TcpListener,
    local_addr: SocketAddr,
    admin: Option<(TcpListener, SocketAddr)>,
    reader: Option<BotSaidReader>,
}

impl Gateway {
    /// Creates the idempotent producer, assigns every `bot.said` partition at its high watermark
    /// and binds the listen address. Fails if the broker cannot be reached, a topic is missing or
    /// the address is taken.
    pub async fn bind(config: GatewayConfig) -> Result<Gateway> {
        let publisher = Publisher::kafka(&config)?;
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::for_config(metrics.clone(), &config));
        let agents = AgentSide::new(config.clickhouse.as_ref());
        let reader = BotSaidReader::start(&config, hub.clone(), agents.clone(), metrics.clone()).await?;
        agents.load_queue();
        let mut gateway = Self::bind_with(config, publisher, hub, agents, metrics).await?;
        gateway.reader = Some(reader);
        Ok(gateway)
    }

    pub(crate) async fn bind_with(
        config: GatewayConfig,
        publisher: Publisher,
        hub: Arc<Hub>,
        agents: AgentSide,
        metrics: Arc<Metrics>,
    ) -> Result<Gateway> {
        let listener =
            TcpListener::bind(config.listen).await.map_err(|source| Error::Bind { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.listen, source })?;
        let admin = match config.admin.listen {
            None => None,
            Some(addr) => {
                let admin = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
                let bound = admin.local_addr().map_err(|source| Error::Bind { addr, source })?;
                Some((admin, bound))
            }
        };
        if config.resume_keys.is_ephemeral() {
            tracing::warn!(
                "no SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE: resume tokens are signed with a key made at start, so a \
                 dialogue resumes only on this instance and only until it restarts"
            );
        }
        let limits = &config.limits;
        let per_address = PerAddress::new(
            limits.max_connections_per_address,
            limits.hello_rate_per_address,
            (limits.hello_rate_per_address * 5.0).ceil().min(f64::from(u32::MAX)) as u32,
        );
        let shared = Arc::new(Shared {
            per_address,
            desk: agents.desk,
            history: agents.history,
            config,
            hub,
            publisher: Arc::new(publisher),
            metrics,
            drain: watch::channel(false).0,
            connections: watch::channel(0).0,
            next_conn: AtomicU64::new(1),
        });
        Ok(Gateway { shared, listener, local_addr, admin, reader: None })
    }

    /// The public listener's address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's address actually bound, if it has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves until `shutdown` resolves, then drains: stops accepting connections and says,
    /// sends `{"type":"reconnect","after_ms":N}` to every client, keeps delivering replies until
    /// every pending say is answered or timed out (at most [`GatewayConfig::drain_timeout`]),
    /// closes the connections and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Gateway { shared, listener, local_addr, admin, reader } = self;
        tracing::info!(
            addr = %local_addr,
            instance = %shared.config.instance_id,
            user_said = %shared.config.user_said_topic,
            bot_said = %shared.config.bot_said_topic,
            "gateway listening"
        );
        let gc = tokio::spawn(gc_loop(shared.clone()));
        let admin_task = admin.map(|(listener, addr)| {
            tracing::info!(%addr, "admin listener (console, agent page, metrics) listening");
            let app = crate::admin::router(shared.clone());
            let mut drain = shared.drain.subscribe();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = drain.wait_for(|d| *d).await;
                };
                http_serve::serve(listener, app, http_serve::DEFAULT_HEADER_READ_TIMEOUT, stop).await
            })
        });
        let app = router(shared.clone());
        let signal = {
            let shared = shared.clone();
            async move {
                shutdown.await;
                tracing::info!("draining: no new connections or says; clients told to reconnect");
                shared.drain.send_replace(true);
            }
        };
        let served = http_serve::serve(listener, app, http_serve::DEFAULT_HEADER_READ_TIMEOUT, signal).await;
        // The listener is closed; WebSocket connections drain on their own, bounded.
        let mut open = shared.connections.subscribe();
        let limit = shared.config.drain_timeout() + Duration::from_secs(2) + Duration::from_secs(2);
        if tokio::time::timeout(limit, open.wait_for(|n| *n == 0)).await.is_err() {
            tracing::warn!(open = *open.borrow(), "drain deadline passed with connections still open");
        }
        if let Some(reader) = reader {
            reader.stop().await;
        }
        shared.publisher.flush().await;
        gc.abort();
        if let Some(task) = admin_task {
            // Agent WebSockets close with the drain; a stuck admin request does not hold the stop.
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "admin listener failed"),
                Ok(_) => {}
                Err(_) => tracing::warn!("admin listener still busy at stop"),
            }
        }
        tracing::info!("gateway stopped");
        served.map_err(Error::Serve)
    }
}

/// Serves the gateway on `config.listen` until `shutdown` resolves, then drains (see
/// [`Gateway::run`]). This is what `switchboard gateway` runs.
pub async fn serve(config: GatewayConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    Gateway::bind(config).await?.run(shutdown).await
}

/// The public listener's routes: the chat page, `/ws` and `/healthz`; anything else is 404.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(chat_page))
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let max = shared.config.limits.max_message_bytes;
    let ip = client_ip(peer, &headers, shared.config.client_ip_header.as_deref());
    let guard = ConnGuard::try_acquire(&shared, ip);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            match guard {
                Ok(guard) => connection::run(socket, shared, guard).await,
                Err(NoSlot::Instance) => connection::refuse_busy(socket, shared, false).await,
                Err(NoSlot::Address) => connection::refuse_busy(socket, shared, true).await,
            }
        })
}

async fn chat_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                     frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        CHAT_PAGE,
    )
        .into_response()
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let draining = *shared.drain.borrow();
    let body = serde_json::json!({
        "status": if draining { "draining" } else { "ok" },
        "instance": shared.config.instance_id,
        "connections": *shared.connections.borrow(),
        // Agents connected to this instance's admin listener (the chat page says when none is).
        "agents_online": shared.desk.online(),
    });
    let status = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn gc_loop(shared: Arc<Shared>) {
    let period = (shared.config.resume_window / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        shared.hub.gc();
    }
}
