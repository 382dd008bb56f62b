//! Retrying writes whose failure can pass (an unreachable or overloaded server).

use crate::Result;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a write keeps retrying before the epoch fails and the run stops (fail-stop).
pub const RETRY_FOR: Duration = Duration::from_secs(300);

/// Runs `attempt` until it succeeds, with exponential backoff (0.1 s doubling to 5 s), for up
/// to [`RETRY_FOR`], as long as the error can pass ([`crate::Error::is_transient`]); then
/// returns its last error.
pub(crate) async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        if !error.is_transient() || started.elapsed() >= RETRY_FOR {
            return Err(error);
        }
        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "{what} failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
