//! One connection of a load run: opening it (handshake, `hello`, `welcome`), then sending its
//! says and matching the replies, counting what happened to each.

use futures::{SinkExt, StreamExt};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use switchboard_schemas::Locale;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for one say frame to be written.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the close handshake at the end.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// An open WebSocket connection to the gateway.
pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens one connection: handshake, `hello`, `welcome`.
pub(super) async fn open(url: &str, user_id: &str, locale: Locale) -> std::result::Result<Socket, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    let hello = serde_json::json!({"type": "hello", "user_id": user_id, "locale": locale.as_str()});
    ws.send(Message::Text(hello.to_string().into())).await.map_err(|e| format!("sending hello: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value =
                    serde_json::from_str(t.as_str()).map_err(|_| "the server sent invalid JSON".to_string())?;
                return match v["type"].as_str() {
                    Some("welcome") => Ok(ws),
                    Some("error") => Err(format!(
                        "hello refused: {} ({})",
                        v["code"].as_str().unwrap_or("?"),
                        v["message"].as_str().unwrap_or("")
                    )),
                    other => Err(format!("expected welcome, got {}", other.unwrap_or("a frame without type"))),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "closed before welcome{}",
                    frame.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("before welcome: {e}")),
            None => return Err("closed before welcome".into()),
        }
    }
}

/// One say handed to a connection.
pub(super) struct Say {
    pub(super) client_msg_id: String,
    pub(super) text: String,
    /// When it was scheduled; latency is measured from here.
    pub(super) at: Instant,
    pub(super) seq: u64,
}

/// What one connection counted.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) latencies: Vec<f64>,
    pub(super) answered: u64,
    pub(super) handoffs: u64,
    pub(super) timeout_handoffs: u64,
    pub(super) queued: u64,
    pub(super) errors: u64,
    pub(super) timeouts: u64,
    pub(super) error_codes: BTreeMap<String, u64>,
}

impl Stats {
    pub(super) fn error(&mut self, code: &str) {
        self.errors += 1;
        *self.error_codes.entry(code.to_string()).or_default() += 1;
    }

    pub(super) fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.answered += other.answered;
        self.handoffs += other.handoffs;
        self.timeout_handoffs += other.timeout_handoffs;
        self.queued += other.queued;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        for (code, n) in other.error_codes {
            *self.error_codes.entry(code).or_default() += n;
        }
    }
}

/// The unanswered says of one connection and the error frames charged to a guess.
#[derive(Default)]
struct Pending {
    /// client_msg_id → (sequence number, scheduled time).
    says: HashMap<String, (u64, Instant)>,
    /// Says an `error` frame was charged to (error frames carry no id).
    guessed: HashMap<String, ()>,
}

impl Pending {
    /// A reply (`answer` or `handoff`) for `id`: its latency, or `None` if it is not ours
    /// (a duplicate). When the say had been charged with an error, the error really belonged to
    /// another say: the oldest one left takes it.
    fn reply(&mut self, id: &str, now: Instant) -> Option<f64> {
        if let Some((_, at)) = self.says.remove(id) {
            return Some(ms(now - at));
        }
        if self.guessed.remove(id).is_some() {
            if let Some(oldest) = self.says.iter().min_by_key(|(_, (seq, _))| *seq).map(|(k, _)| k.clone()) {
                self.says.remove(&oldest);
                self.guessed.insert(oldest, ());
            }
            // The latency of the say itself is unknown now (it was removed when charged).
            return Some(f64::NAN);
        }
        None
    }

    /// An `error` frame: charged to the newest unanswered say (a refusal comes right after the
    /// say it refuses). Its latency, or `None` when nothing is pending.
    fn error(&mut self, now: Instant) -> Option<f64> {
        let newest = self.says.iter().max_by_key(|(_, (seq, _))| *seq).map(|(k, _)| k.clone())?;
        let (_, at) = self.says.remove(&newest)?;
        if self.guessed.len() > 10_000 {
            self.guessed.clear();
        }
        self.guessed.insert(newest, ());
        Some(ms(now - at))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Drives one connection until the schedule is done and every say is answered, or the deadline.
pub(super) async fn connection(mut ws: Socket, mut says: mpsc::UnboundedReceiver<Say>, deadline: Instant) -> Stats {
    let mut stats = Stats::default();
    let mut pending = Pending::default();
    let mut schedule_done = false;
    let mut lost = false;
    let mut draining = false;
    let record = |stats: &mut Stats, latency: Option<f64>| {
        if let Some(l) = latency.filter(|l| l.is_finite()) {
            stats.latencies.push(l);
        }
    };
    loop {
        if schedule_done && (lost || pending.says.is_empty()) {
            break;
        }
        tokio::select! {
            frame = ws.next(), if !lost => match frame {
                Some(Ok(Message::Text(t))) => {
                    let now = Instant::now();
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                        tracing::debug!("loadgen: invalid JSON frame ignored");
                        continue;
                    };
                    match v["type"].as_str() {
                        Some(kind @ ("answer" | "handoff" | "queued")) => {
                            let id = v["in_reply_to"].as_str().unwrap_or("");
                            match pending.reply(id, now) {
                                Some(latency) => {
                                    match kind {
                                        "answer" => stats.answered += 1,
                                        "handoff" => {
                                            stats.handoffs += 1;
                                            if v["reason"].as_str() == Some("timeout") {
                                                stats.timeout_handoffs += 1;
                                            }
                                        }
                                        _ => stats.queued += 1,
                                    }
                                    record(&mut stats, Some(latency));
                                }
                                None => tracing::debug!(client_msg_id = id, "loadgen: reply for no pending say ignored"),
                            }
                        }
                        Some("error") => {
                            let code = v["code"].as_str().unwrap_or("unknown");
                            match pending.error(now) {
                                Some(latency) => {
                                    stats.error(code);
                                    record(&mut stats, Some(latency));
                                }
                                None => tracing::debug!(code, "loadgen: error frame with nothing pending"),
                            }
                        }
                        Some("reconnect") => {
                            tracing::info!("loadgen: gateway draining; no more says on this connection");
                            draining = true;
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    lost = true;
                    for _ in pending.says.drain() {
                        stats.error("connection_lost");
                    }
                }
                Some(Ok(_)) => {}
            },
            say = says.recv(), if !schedule_done => match say {
                None => schedule_done = true,
                Some(say) if lost => { let _ = say; stats.error("connection_lost"); }
                Some(say) if draining => { let _ = say; stats.error("reconnect"); }
                Some(say) => {
                    let frame = serde_json::json!({"type": "say", "client_msg_id": say.client_msg_id, "text": say.text});
                    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Text(frame.to_string().into()))).await {
                        Ok(Ok(())) => { pending.says.insert(say.client_msg_id, (say.seq, say.at)); }
                        _ => {
                            lost = true;
                            stats.error("connection_lost");
                            for _ in pending.says.drain() {
                                stats.error("connection_lost");
                            }
                        }
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                // Says still queued for this connection were never sent: they time out too.
                says.close();
                while let Ok(_unsent) = says.try_recv() {
                    stats.timeouts += 1;
                }
                break;
            }
        }
    }
    stats.timeouts += pending.says.len() as u64;
    if !lost {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frames_are_charged_and_corrected() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.says.insert("a".into(), (0, t0));
        p.says.insert("b".into(), (1, t0));
        // The refusal is charged to the newest say, b …
        assert!(p.error(t0).is_some());
        assert!(p.says.contains_key("a"));
        // … but b gets answered: the error was a's.
        assert!(p.reply("b", t0).is_some());
        assert!(p.says.is_empty());
        // A duplicate answer is not ours.
        assert!(p.reply("b", t0).is_none());
        assert!(p.error(t0).is_none());
    }
}
