//! One WebSocket connection: reads client frames, enforces the limits, hands says to the broker
//! and writes the replies the hub routes to it.

use crate::auth;
use crate::hub::{AttachError, ConnId, SayDecision, Unanswered};
use crate::protocol::{parse_client_frame, ClientFrame, ErrorCode, Hello, Say, ServerFrame};
use crate::rate::TokenBucket;
use crate::state::{ConnGuard, Shared};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use crate::tokens::bound_user;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchboard_schemas::{Event, EventBody, HandoffRequested};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A write to the client that takes longer than this means the client is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the client's close frame after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How often a draining connection checks whether its dialogue has says in flight.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// WebSocket close codes used.
mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// What the loop does after handling one event.
enum Flow {
    Continue,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone; just stop.
    Stop,
}

enum Wake {
    Outbound(Option<ServerFrame>),
    Inbound(Option<Result<Message, axum::Error>>),
    Drain,
    Idle,
    DrainTick,
}

struct Conn {
    socket: WebSocket,
    shared: Arc<Shared>,
    id: ConnId,
    dialogue: Option<String>,
    outbox: Option<mpsc::UnboundedReceiver<ServerFrame>>,
    bucket: TokenBucket,
    /// The client's address.
    ip: IpAddr,
}

/// Serves one connection until it closes. `guard` holds its connection slot.
pub(crate) async fn run(socket: WebSocket, shared: Arc<Shared>, guard: ConnGuard) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let limits = &shared.config.limits;
    let bucket = TokenBucket::new(limits.rate_per_sec, limits.rate_burst, std::time::Instant::now());
    let mut conn = Conn { socket, shared: shared.clone(), id, dialogue: None, outbox: None, bucket, ip: guard.ip };
    tracing::debug!(conn = id, "connection opened");
    let flow = conn.serve().await;
    if let Flow::Close(code, reason) = flow {
        conn.close(code, reason).await;
    }
    if let Some(d) = &conn.dialogue {
        shared.hub.detach(d, id);
    }
    tracing::debug!(conn = id, dialogue_id = ?conn.dialogue, "connection closed");
    drop(guard);
}

/// Refuses a connection over the instance's cap, or over its address's cap when `per_address`:
/// `server_busy`, then close.
pub(crate) async fn refuse_busy(socket: WebSocket, shared: Arc<Shared>, per_address: bool) {
    shared.metrics.connections_refused.inc();
    shared.metrics.rejected(ErrorCode::ServerBusy);
    if per_address {
        shared.metrics.access_refused("address_connections");
        tracing::info!("connection refused: this address holds as many connections as one address may");
    } else {
        tracing::warn!("connection refused: connection cap reached");
    }
    let mut conn = Conn {
        socket,
        shared: shared.clone(),
        id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        dialogue: None,
        outbox: None,
        bucket: TokenBucket::new(1.0, 1, std::time::Instant::now()),
        ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    };
    if conn.send(ServerFrame::error(ErrorCode::ServerBusy, "too many connections; retry later")).await {
        conn.close(close_code::TRY_AGAIN_LATER, "server busy").await;
    }
}

async fn next_outbound(outbox: &mut Option<mpsc::UnboundedReceiver<ServerFrame>>) -> Option<ServerFrame> {
    match outbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    async fn serve(&mut self) -> Flow {
        let shared = self.shared.clone();
        let limits = &shared.config.limits;
        let mut drain = shared.drain.subscribe();
        let mut draining = false;
        let mut drain_deadline = Instant::now();
        let mut idle_deadline = Instant::now() + limits.idle_timeout;
        let mut drain_tick = tokio::time::interval(DRAIN_POLL);
        if *drain.borrow_and_update() {
            return self.begin_drain().await;
        }
        loop {
            let wake = tokio::select! {
                biased;
                out = next_outbound(&mut self.outbox) => Wake::Outbound(out),
                msg = self.socket.recv() => Wake::Inbound(msg),
                _ = drain.changed(), if !draining => Wake::Drain,
                _ = tokio::time::sleep_until(idle_deadline), if !draining => Wake::Idle,
                _ = drain_tick.tick(), if draining => Wake::DrainTick,
            };
            let flow = match wake {
                Wake::Outbound(Some(frame)) => {
                    if self.send(frame).await {
                        Flow::Continue
                    } else {
                        Flow::Stop
                    }
                }
                Wake::Outbound(None) => Flow::Close(close_code::NORMAL, "superseded by a newer connection"),
                Wake::Inbound(None) => Flow::Stop,
                Wake::Inbound(Some(Err(e))) => {
                    let text = e.to_string();
                    if text.contains("too long") || text.contains("Space limit") {
                        self.reject(ErrorCode::TooLarge, "frame too large").await;
                        Flow::Close(close_code::TOO_BIG, "frame too large")
                    } else {
                        tracing::debug!(conn = self.id, error = %text, "websocket protocol error");
                        Flow::Stop
                    }
                }
                Wake::Inbound(Some(Ok(message))) => {
                    idle_deadline = Instant::now() + limits.idle_timeout;
                    self.on_message(message, draining).await
                }
                Wake::Drain => {
                    draining = true;
                    drain_deadline = Instant::now() + shared.config.drain_timeout();
                    match self.begin_drain().await {
                        Flow::Continue => Flow::Continue,
                        other => other,
                    }
                }
                Wake::Idle => Flow::Close(close_code::NORMAL, "idle timeout"),
                Wake::DrainTick => self.drain_step(drain_deadline).await,
            };
            match flow {
                Flow::Continue => {}
                other => return other,
            }
        }
    }

    /// Tells the client to reconnect; a connection without a dialogue closes at once.
    async fn begin_drain(&mut self) -> Flow {
        let after_ms = self.shared.config.reconnect_after_ms;
        if !self.send(ServerFrame::Reconnect { after_ms }).await {
            return Flow::Stop;
        }
        if self.dialogue.is_none() {
            return Flow::Close(close_code::GOING_AWAY, "gateway draining");
        }
        Flow::Continue
    }

    /// Closes once every say of the dialogue is answered, or answers the rest with a `timeout`
    /// handoff at the deadline.
    async fn drain_step(&mut self, deadline: Instant) -> Flow {
        let Some(dialogue) = self.dialogue.clone() else {
            return Flow::Close(close_code::GOING_AWAY, "gateway draining");
        };
        let pending = self.shared.hub.pending(&dialogue);
        if pending > 0 && Instant::now() < deadline {
            return Flow::Continue;
        }
        if pending > 0 {
            for unanswered in self.shared.hub.expire_all(&dialogue) {
                let (shared, dialogue) = (self.shared.clone(), dialogue.clone());
                tokio::spawn(async move { record_timeout(&shared, &dialogue, &unanswered).await });
            }
        }
        // Write whatever the hub queued (answers, handoffs) before closing.
        let mut queued = Vec::new();
        if let Some(rx) = self.outbox.as_mut() {
            while let Ok(frame) = rx.try_recv() {
                queued.push(frame);
            }
        }
        for frame in queued {
            if !self.send(frame).await {
                return Flow::Stop;
            }
        }
        Flow::Close(close_code::GOING_AWAY, "gateway draining")
    }

    async fn on_message(&mut self, message: Message, draining: bool) -> Flow {
        match message {
            Message::Text(text) => self.on_text(text.as_str(), draining).await,
            Message::Binary(_) => {
                if !self.take_token() {
                    return self.reject(ErrorCode::RateLimited, "too many frames; slow down").await;
                }
                self.reject(ErrorCode::BadFrame, "binary frames are not supported; send JSON text").await
            }
            // Pings are answered by the WebSocket layer; they count against the frame rate like
            // any frame (a ping flood costs the client its rate, not the gateway its CPU).
            Message::Ping(_) | Message::Pong(_) => {
                if self.take_token() {
                    Flow::Continue
                } else {
                    self.reject(ErrorCode::RateLimited, "too many frames; slow down").await
                }
            }
            // The WebSocket layer answers the close; the stream ends next.
            Message::Close(_) => Flow::Continue,
        }
    }

    fn take_token(&mut self) -> bool {
        self.bucket.try_take(std::time::Instant::now())
    }

    async fn on_text(&mut self, text: &str, draining: bool) -> Flow {
        if !self.take_token() {
            return self.reject(ErrorCode::RateLimited, "too many frames; slow down").await;
        }
        let limits = &self.shared.config.limits;
        let (max, close_at, max_chars) = (limits.max_frame_bytes, limits.close_frame_bytes, limits.max_text_chars);
        if text.len() > close_at {
            let flow = self
                .reject(ErrorCode::TooLarge, &format!("frame of {} bytes is over the limit of {max}", text.len()))
                .await;
            return match flow {
                Flow::Continue => Flow::Close(close_code::TOO_BIG, "frame too large"),
                other => other,
            };
        }
        if text.len() > max {
            return self
                .reject(ErrorCode::TooLarge, &format!("frame of {} bytes is over the limit of {max}", text.len()))
                .await;
        }
        match parse_client_frame(text, max_chars) {
            Err(e) => self.reject(e.code, &e.message).await,
            Ok(ClientFrame::Hello(hello)) => self.on_hello(hello, draining).await,
            Ok(ClientFrame::Say(say)) => self.on_say(say, draining).await,
        }
    }

    async fn on_hello(&mut self, hello: Hello, draining: bool) -> Flow {
        if self.dialogue.is_some() {
            return self.reject(ErrorCode::BadFrame, "hello already received on this connection").await;
        }
        if draining {
            return self
                .reject_and_close(ErrorCode::Unavailable, "gateway draining; reconnect", close_code::GOING_AWAY)
                .await;
        }
        if !self.shared.per_address.allow_hello(self.ip) {
            self.shared.metrics.access_refused("address_hellos");
            return self
                .reject_and_close(ErrorCode::RateLimited, "too many hellos from this address; retry later", close_code::TRY_AGAIN_LATER)
                .await;
        }
        if let Some(secret) = &self.shared.config.hmac_secret {
            let valid = hello.token.as_deref().is_some_and(|t| auth::verify(secret.expose(), &hello.user_id, t));
            if !valid {
                tracing::info!(conn = self.id, "hello refused: missing or invalid token");
                return self
                    .reject_and_close(ErrorCode::Unauthorized, "missing or invalid token", close_code::POLICY)
                    .await;
            }
        }
        let config = &self.shared.config;
        let user_id = match bound_user(config.id_tokens.as_ref(), &hello.user_id, hello.id_token.as_deref()) {
            Ok(user) => user,
            Err(e) => {
                self.shared.metrics.access_refused("id_token");
                tracing::info!(conn = self.id, reason = %e, "hello refused: id token");
                return self.reject_and_close(ErrorCode::Unauthorized, &e.to_string(), close_code::POLICY).await;
            }
        };
        if let Some(dialogue_id) = &hello.dialogue_id {
            let now = std::time::SystemTime::now();
            if let Err(e) = config.resume_keys.verify(hello.resume_token.as_deref(), dialogue_id, &user_id, now) {
                self.shared.metrics.access_refused("resume_token");
                tracing::info!(conn = self.id, reason = %e, "hello refused: resume token");
                return self.reject_and_close(ErrorCode::Unauthorized, &e.to_string(), close_code::POLICY).await;
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let resumed = hello.dialogue_id.is_some();
        match self.shared.hub.attach(hello.dialogue_id.as_deref(), &user_id, hello.locale, self.ip, self.id, tx) {
            Ok(attachment) => {
                self.outbox = Some(rx);
                self.dialogue = Some(attachment.dialogue_id.clone());
                tracing::info!(
                    conn = self.id,
                    dialogue_id = %attachment.dialogue_id,
                    resumed,
                    backlog = attachment.backlog.len(),
                    "hello"
                );
                let resume_token =
                    config.resume_keys.issue(&attachment.dialogue_id, &user_id, std::time::SystemTime::now());
                if !self.send(ServerFrame::Welcome { dialogue_id: attachment.dialogue_id, resume_token }).await {
                    return Flow::Stop;
                }
                for frame in attachment.backlog {
                    if !self.send(frame).await {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            Err(AttachError::WrongUser) => {
                tracing::info!(conn = self.id, "hello refused: dialogue of another user");
                self.reject_and_close(
                    ErrorCode::Unauthorized,
                    "the dialogue belongs to another user",
                    close_code::POLICY,
                )
                .await
            }
            Err(AttachError::AddressBusy) => {
                self.shared.metrics.access_refused("address_dialogues");
                tracing::info!(conn = self.id, "hello refused: this address holds as many dialogues as one address may");
                self.reject_and_close(
                    ErrorCode::ServerBusy,
                    "too many dialogues from this address; retry later",
                    close_code::TRY_AGAIN_LATER,
                )
                .await
            }
            Err(AttachError::Busy) => {
                tracing::warn!(conn = self.id, "hello refused: dialogue cap reached");
                self.reject_and_close(
                    ErrorCode::ServerBusy,
                    "too many dialogues; retry later",
                    close_code::TRY_AGAIN_LATER,
                )
                .await
            }
        }
    }

    async fn on_say(&mut self, say: Say, draining: bool) -> Flow {
        let Some(dialogue) = self.dialogue.clone() else {
            return self.reject(ErrorCode::NotHello, "send a hello first").await;
        };
        if draining {
            return self.reject(ErrorCode::Unavailable, "gateway draining; reconnect and send again").await;
        }
        match self.shared.hub.begin_say(&dialogue, self.id, &say.client_msg_id, &say.text) {
            SayDecision::Produce(event) => {
                tracing::debug!(
                    conn = self.id,
                    dialogue_id = %dialogue,
                    client_msg_id = %say.client_msg_id,
                    chars = say.text.chars().count(),
                    "say"
                );
                spawn_produce(self.shared.clone(), *event);
                Flow::Continue
            }
            SayDecision::Absorbed | SayDecision::Replayed => {
                self.shared.metrics.says_deduplicated.inc();
                tracing::debug!(conn = self.id, dialogue_id = %dialogue, client_msg_id = %say.client_msg_id, "retried say not produced again");
                Flow::Continue
            }
            SayDecision::TooManyPending => {
                self.reject(ErrorCode::RateLimited, "too many messages waiting for an answer").await
            }
            SayDecision::Overloaded => {
                self.reject(ErrorCode::ServerBusy, "too many messages waiting for an answer on this server; send it again shortly").await
            }
            SayDecision::NotHeld => {
                self.reject_and_close(ErrorCode::Unavailable, "superseded by a newer connection", close_code::NORMAL)
                    .await
            }
        }
    }

    /// Sends an error frame and counts it.
    async fn reject(&mut self, code: ErrorCode, message: &str) -> Flow {
        self.shared.metrics.rejected(code);
        tracing::debug!(conn = self.id, code = code.as_str(), "frame refused");
        if self.send(ServerFrame::error(code, message)).await {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    async fn reject_and_close(&mut self, code: ErrorCode, message: &str, close: u16) -> Flow {
        match self.reject(code, message).await {
            Flow::Continue => Flow::Close(close, code.as_str()),
            other => other,
        }
    }

    /// Writes one frame; `false` when the client is gone or stopped reading.
    async fn send(&mut self, frame: ServerFrame) -> bool {
        let text = frame.to_json();
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(conn = self.id, error = %e, "write failed");
                false
            }
            Err(_) => {
                tracing::info!(conn = self.id, "client stopped reading; dropping the connection");
                false
            }
        }
    }

    /// Sends a close frame and waits (bounded) for the client's, so that nothing it sent is
    /// left unread when the socket closes.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        if tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Close(Some(frame)))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = self.socket.recv().await {} }).await;
    }
}

/// Produces a say in the background; on the acknowledgement, starts its answer timer.
fn spawn_produce(shared: Arc<Shared>, event: Event) {
    tokio::spawn(async move {
        let EventBody::UserSaid(said) = &event.body else { return };
        let client_msg_id = said.client_msg_id.clone();
        let dialogue_id = event.dialogue_id.clone();
        let event_id = event.event_id;
        let result = shared.publisher.publish(&event, &shared.metrics).await;
        let outcome = match &result {
            Ok(()) => {
                shared.metrics.says_accepted.inc();
                Ok(event_id)
            }
            Err(e) => {
                tracing::warn!(dialogue_id = %dialogue_id, client_msg_id = %client_msg_id, error = %e, "produce failed");
                Err(())
            }
        };
        if shared.hub.produced(&dialogue_id, &client_msg_id, outcome) {
            tracing::debug!(dialogue_id = %dialogue_id, client_msg_id = %client_msg_id, event_id = %event_id, "say accepted");
            tokio::time::sleep(shared.config.answer_timeout).await;
            if shared.hub.expire(&dialogue_id, &client_msg_id, event_id) {
                let unanswered = Unanswered { client_msg_id, user_said: event_id, accepted_at: event.occurred_at };
                record_timeout(&shared, &dialogue_id, &unanswered).await;
            }
        }
    });
}

/// Writes a say's answer timeout to `user.said` as a `handoff_requested` (reason `timeout`), so
/// that the session puts the dialogue in the queue and the console counts it. Its id derives from
/// the say's, so a retry or a second gateway's timeout of the same say is the same event. Retried
/// for a while: the user already got the handoff, the event must not be lost. `said.accepted_at`
/// is the say's event time (or, at the end of a drain, when the broker acknowledged it).
async fn record_timeout(shared: &Arc<Shared>, dialogue_id: &str, said: &Unanswered) {
    let detail = format!("no answer within {} ms", shared.config.answer_timeout.as_millis());
    let event = HandoffRequested::timeout(dialogue_id, said.user_said, &said.client_msg_id, said.accepted_at, crate::hub::now_ms(), detail);
    for attempt in 0..5u32 {
        match shared.publisher.publish(&event, &shared.metrics).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(dialogue_id = %event.dialogue_id, attempt, error = %e, "cannot record an answer timeout yet");
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
        }
    }
    tracing::error!(dialogue_id = %event.dialogue_id, event_id = %event.event_id, "answer timeout not recorded: the broker refused it");
}
