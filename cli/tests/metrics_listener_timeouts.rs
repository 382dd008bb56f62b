//! The topology's metrics listener (`cli/src/metrics_http.rs`) on a real TCP socket: a client
//! that sends part of a request line and then nothing (slowloris) is disconnected at the header
//! read timeout, while complete requests to `/metrics` and `/aggregates` are answered; the
//! listener stops on its shutdown signal. Deadlines, not sleeps: every wait is a read that
//! returns when the server acts, bounded by a limit that fails the test.

use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_cli::metrics_http;
use switchboard_topology::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads until the server closes the connection, at most `limit`: how long it took and the bytes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), String::from_utf8_lossy(&seen).into_owned())),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("request");
    read_until_closed(&mut stream, Duration::from_secs(10)).await.expect("an answer within 10 s").1
}

#[tokio::test]
async fn a_slowloris_client_is_disconnected_at_the_header_timeout() {
    let header_timeout = Duration::from_millis(800);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(metrics_http::serve_on(listener, Arc::new(Metrics::new()), header_timeout, async move {
        let _ = stopped.await;
    }));

    // Part of a request line, then silence.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /metr").await.expect("partial request line");
    // Meanwhile the listener serves others.
    let metrics = get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let aggregates = get(addr, "/aggregates").await;
    assert!(aggregates.starts_with("HTTP/1.1 200") && aggregates.contains("application/json"), "{aggregates}");
    // The slow client is cut off once the header timeout has passed, not long after.
    let (took, _) = read_until_closed(&mut slow, header_timeout + Duration::from_secs(5))
        .await
        .expect("the slowloris connection was still open 5 s after the header timeout");
    assert!(took < header_timeout + Duration::from_secs(3), "closed only after {took:?}");

    // Headers trickled in one at a time still count as one head: the deadline is for all of it.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    trickle.write_all(b"GET /metrics HTTP/1.1\r\n").await.expect("request line");
    trickle.write_all(b"Host: localhost\r\n").await.expect("a header");
    let (took, answer) = read_until_closed(&mut trickle, header_timeout + Duration::from_secs(5))
        .await
        .expect("the unfinished head was still open 5 s after the header timeout");
    assert!(!answer.contains("200 OK"), "an unfinished head was answered: {answer}");
    assert!(started.elapsed() >= header_timeout - Duration::from_millis(100), "cut off after {took:?}, before the timeout");

    let _ = stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("the listener stops on its signal");
    assert!(result.expect("listener task").is_ok());
}
