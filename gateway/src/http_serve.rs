//! Serving an axum [`Router`] over HTTP/1.1 with a **header read timeout**, for every listener
//! of Switchboard that faces clients it does not control (the topology's `/metrics`, the
//! gateway's listeners).
//!
//! `axum::serve` sets no timer on hyper's connection builder, so a client that opens a
//! connection and never finishes its request head (slowloris), or sends nothing at all, holds
//! the connection and its task forever; a per-request timeout middleware does not help, since
//! no request exists until the head is complete. Here every connection is served by hyper's
//! HTTP/1 builder with a [`TokioTimer`] and [`http1::Builder::header_read_timeout`]: the
//! timer starts as soon as hyper waits for a request head (on a fresh connection, and again
//! after each response on a kept-alive one), and a head not complete by then closes the
//! connection. HTTP/1 only, on purpose: hyper-util's automatic HTTP/1-or-2 builder first reads
//! the connection preface without any timeout, which would reopen the same hole. Upgrades
//! (WebSocket) work; each request carries [`ConnectInfo<SocketAddr>`] with the peer's address.
//!
//! ```no_run
//! # async fn demo(router: axum::Router) -> std::io::Result<()> {
//! use std::time::Duration;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
//! switchboard_gateway::http_serve::serve(listener, router, Duration::from_secs(5), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;

/// The header read timeout Switchboard's listeners use unless they say otherwise.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// open connection finish its request in flight (idle ones close at once) and returns once all
/// are closed. A client that has not sent a complete request head `header_read_timeout` after
/// the server started waiting for one is disconnected.
///
/// Errors of single connections (a reset, a timeout, a malformed request) are logged at debug
/// level and end only that connection; an error of `accept` that is not about one connection
/// (such as running out of file descriptors) is logged, waited out for 100 ms and retried,
/// as `axum::serve` does. The returned error is reserved for the listener itself.
pub async fn serve<F>(listener: TcpListener, router: Router, header_read_timeout: Duration, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    // Dropping the sender tells every connection to shut down gracefully; each connection task
    // holds a receiver of `closed_rx`'s channel, so `closed_tx.closed()` completes when the last
    // connection is gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let (closed_tx, closed_rx) = tokio::sync::watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => {
                    // Small frames (chat turns, WebSocket replies) go out at once, not after
                    // Nagle's delay.
                    let _ = pair.0.set_nodelay(true);
                    pair
                }
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.as_mut() => break,
        };
        let service = TowerToHyperService::new(WithPeer { router: router.clone(), peer });
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let mut stop = stop_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(closed);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(closed_rx);
    closed_tx.closed().await;
    Ok(())
}

/// Accept errors that concern one connection only (the peer gave up before it was accepted).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
    )
}

/// The router with the peer's address put into each request, as
/// `Router::into_make_service_with_connect_info` does for `axum::serve`.
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
}

impl tower_service::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <Router as tower_service::Service<hyper::Request<Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<hyper::Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        tower_service::Service::call(&mut self.router, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(timeout: Duration) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = Router::new()
            .route("/", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("hello {}", peer.ip()) }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, timeout, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    /// Reads until the server closes the connection; how long that took and what it sent.
    async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), seen)),
                Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn a_partial_request_line_is_cut_off_at_the_header_timeout() {
        let timeout = Duration::from_millis(500);
        let (addr, stop, server) = start(timeout).await;
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET / HT").await.expect("partial request line");
        let (took, _) = read_until_closed(&mut slow, Duration::from_secs(10)).await.expect("the connection was never closed");
        assert!(took >= timeout - Duration::from_millis(50), "closed after {took:?}, before the timeout");
        assert!(took < timeout + Duration::from_secs(3), "closed only after {took:?}");

        // A silent connection is cut off too, and a complete request is answered meanwhile.
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let mut ok = TcpStream::connect(addr).await.expect("connect");
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("request");
        let (_, answer) = read_until_closed(&mut ok, Duration::from_secs(10)).await.expect("answer");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello 127.0.0.1"), "{answer}");
        read_until_closed(&mut silent, Duration::from_secs(10)).await.expect("the silent connection was never closed");

        let _ = stop.send(());
        let outcome = tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("task");
        assert!(outcome.is_ok());
    }

    #[tokio::test]
    async fn shutdown_waits_for_the_request_in_flight() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let entered = std::sync::Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        let router = Router::new().route(
            "/slow",
            get(move || {
                let entered = entered.clone();
                let mut release = release_rx.clone();
                async move {
                    if let Some(tx) = entered.lock().ok().and_then(|mut e| e.take()) {
                        let _ = tx.send(());
                    }
                    let _ = release.wait_for(|r| *r).await;
                    "done"
                }
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, Duration::from_secs(5), async move {
            let _ = stopped.await;
        }));
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
        tokio::time::timeout(Duration::from_secs(10), entered_rx).await.expect("handler entered").expect("sender");
        let _ = stop.send(());
        // The listener is closed, but the request in flight still gets its answer.
        let refused = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if TcpStream::connect(addr).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        });
        refused.await.expect("the listener closes after the shutdown signal");
        assert!(!server.is_finished(), "returned before the request in flight was answered");
        let _ = release_tx.send(true);
        let (_, answer) = read_until_closed(&mut client, Duration::from_secs(10)).await.expect("answer, then close");
        assert!(String::from_utf8_lossy(&answer).ends_with("done"));
        let outcome = tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("task");
        assert!(outcome.is_ok());
    }
}
