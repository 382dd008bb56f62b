//! The state shared by the HTTP server and every WebSocket connection, and the connection slot
//! that bounds how many connections are open.

use crate::config::GatewayConfig;
use crate::hub::Hub;
use crate::kafka::Publisher;
use crate::metrics::Metrics;
use crate::per_address::PerAddress;
use std::net::IpAddr;
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
    /// Connections and hello rates per client address.
    pub(crate) per_address: PerAddress,
    /// The agents' desk (agent connections and the queue).
    pub(crate) desk: Arc<crate::agent::Desk>,
    /// Transcript and queue reads, when ClickHouse is configured.
    pub(crate) history: Option<Arc<crate::agent::History>>,
}

/// A connection slot (of the instance and of the client's address); released on drop.
pub(crate) struct ConnGuard {
    shared: Arc<Shared>,
    /// The client's address.
    pub(crate) ip: IpAddr,
}

/// Why no connection slot was given.
pub(crate) enum NoSlot {
    /// The instance holds as many connections as it may.
    Instance,
    /// The client's address holds as many connections as one address may.
    Address,
}

impl ConnGuard {
    /// Takes a slot if the caps allow.
    pub(crate) fn try_acquire(shared: &Arc<Shared>, ip: IpAddr) -> Result<ConnGuard, NoSlot> {
        if !shared.per_address.try_open(ip) {
            return Err(NoSlot::Address);
        }
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
            Ok(ConnGuard { shared: shared.clone(), ip })
        } else {
            shared.per_address.close(ip);
            Err(NoSlot::Instance)
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.connections.send_modify(|n| *n = n.saturating_sub(1));
        self.shared.per_address.close(self.ip);
        self.shared.metrics.connections.dec();
    }
}
