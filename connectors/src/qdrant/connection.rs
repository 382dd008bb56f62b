//! The connection clones of a [`QdrantIndex`](super::QdrantIndex) share: the gRPC client and
//! the small Tokio runtime that drives it.

use std::future::Future;

use qdrant_client::Qdrant;

use super::error::QdrantError;
use super::settings::QdrantSettings;

/// A Tokio runtime that may be dropped anywhere (also inside another runtime, where dropping a
/// plain `Runtime` panics).
pub(super) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn new() -> Result<OwnedRuntime, QdrantError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-qdrant")
            .enable_all()
            .build()
            .map(|rt| OwnedRuntime(Some(rt)))
            .map_err(QdrantError::Runtime)
    }

    /// Runs `future` to completion on this runtime. Inside another Tokio runtime (where
    /// `block_on` would panic), it runs on a short-lived helper thread.
    pub(super) fn block_on<F>(&self, future: F) -> Result<F::Output, QdrantError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(rt) = self.0.as_ref() else {
            // Only during drop; kept as an error rather than a panic.
            return Err(QdrantError::Panicked);
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(rt.block_on(future));
        }
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("switchboard-qdrant-call".into())
                .spawn_scoped(scope, || rt.block_on(future))
                .map_err(QdrantError::Runtime)?;
            handle.join().map_err(|_| QdrantError::Panicked)
        })
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The connection shared by clones of a [`QdrantIndex`](super::QdrantIndex).
pub(super) struct Connection {
    // Field order: the client (and its channels) goes before the runtime that drives them.
    pub(super) client: Qdrant,
    pub(super) runtime: OwnedRuntime,
    pub(super) settings: QdrantSettings,
}

impl Connection {
    /// A client for `settings` (the URL and API key are checked, nothing is contacted).
    pub(super) fn open(settings: QdrantSettings) -> Result<Connection, QdrantError> {
        let runtime = OwnedRuntime::new()?;
        let mut config = Qdrant::from_url(settings.url.trim())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // The client's own check prints to stdout; connect_with checks instead.
            .skip_compatibility_check();
        if let Some(key) = &settings.api_key {
            config.set_api_key(key);
        }
        let client = config.build().map_err(|e| QdrantError::BadUrl {
            url: settings.url.clone(),
            message: e.to_string(),
        })?;
        Ok(Connection {
            client,
            runtime,
            settings,
        })
    }
}

/// The qdrant-client version this crate was built with (the major.minor it was written for).
pub(super) fn qdrant_client_version() -> &'static str {
    "1.20"
}

/// Qdrant's compatibility rule: same major version, minor versions at most one apart.
/// Unparsable versions count as compatible (nothing to warn about reliably).
pub(super) fn versions_compatible(client: &str, server: &str) -> bool {
    fn major_minor(v: &str) -> Option<(u64, u64)> {
        let mut parts = v.trim().trim_start_matches('v').split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
    match (major_minor(client), major_minor(server)) {
        (Some((cm, cn)), Some((sm, sn))) => cm == sm && cn.abs_diff(sn) <= 1,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        assert!(versions_compatible("1.20", "1.21.3"));
        assert!(versions_compatible("1.20", "v1.19.0"));
        assert!(!versions_compatible("1.20", "1.17.0"));
        assert!(!versions_compatible("1.20", "2.20.0"));
        assert!(versions_compatible("1.20", "dev"));
    }
}
