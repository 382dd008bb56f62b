//! The state shared by the HTTP server and every WebSocket connection, and the connection slot
//! that bounds how many connections are open.

use crate::config::GatewayConfig;
use crate::hub::Hub;
use crate::kafka::Publisher;
use crate::metrics::Metrics;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::watch;

/// State shared by every request and connection.
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    pub(crate) hub: Arc<Hub>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) metrics: Arc<Metrics>,
    /// `true` once the gateway drains.
    pub(crate) drain: watch::Sender<bool>,
    /// Open WebSocket connections.
    pub(crate) connections: watch::Sender<usize>,
    pub(crate) next_conn: AtomicU64,
}

/// A connection slot; released on drop.
pub(crate) struct ConnGuard {
    shared: Arc<Shared>,
}

impl ConnGuard {
    /// Takes a slot if the cap allows.
    pub(crate) fn try_acquire(shared: &Arc<Shared>) -> Option<ConnGuard> {
        let max = shared.config.limits.max_connections;
        let taken = shared.connections.send_if_modified(|n| {
            if *n < max {
                *n += 1;
                true
            } else {
                false
            }
        });
        if taken {
            shared.metrics.connections.inc();
            Some(ConnGuard { shared: shared.clone() })
        } else {
            None
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.connections.send_modify(|n| *n = n.saturating_sub(1));
        self.shared.metrics.connections.dec();
    }
}
