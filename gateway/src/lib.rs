//! The WebSocket edge of Switchboard: accepts user turns over WebSocket, publishes `UserSaid`
//! events to Kafka (`user.said`, key = dialogue id, `acks=all`, idempotent unless turned off), reads answers
//! and handoffs from `bot.said` and routes each to the connection holding its dialogue. It also
//! serves the chat page (`/`), `/healthz` and `/metrics`.
//!
//! The protocol is the one of the contract (`ws://HOST/ws`, JSON text frames):
//!
//! | client → server | server → client |
//! |---|---|
//! | `{"type":"hello","dialogue_id":…?,"user_id":…,"locale":"zh-CN"\|"en","token":…?}` | `{"type":"welcome","dialogue_id":…}` |
//! | `{"type":"say","client_msg_id":…,"text":…}` | `answer`, `handoff` or `error` — exactly one per say |
//! | | `{"type":"reconnect","after_ms":N}` while draining |
//!
//! Guarantees:
//! - a say is accepted only once the broker acknowledged it; otherwise the client gets
//!   `unavailable`;
//! - a retried say (same dialogue and `client_msg_id`) is not produced twice, and the client gets
//!   one reply for it;
//! - replies survive a reconnect to the same instance: pending says and unsent replies belong to
//!   the dialogue, not the connection; no answer within the answer timeout gives a `handoff`
//!   with reason `timeout`;
//! - logs carry ids and lengths, never the user's text.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_gateway::Error> {
//! let config = switchboard_gateway::GatewayConfig::from_env()?;
//! switchboard_gateway::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! The load generator (`switchboard loadgen`) is a WebSocket client, not part of the server: it
//! lives in the `switchboard` command-line crate (`cli/src/loadgen`).

#![deny(missing_docs)]

pub mod accounts;
pub mod admin;
mod agent;
pub mod auth;
mod config;
mod connection;
pub mod console;
pub mod http_serve;
mod error;
mod hub;
mod kafka;
pub mod live;
pub mod metrics;
mod per_address;
pub mod protocol;
pub mod rate;
mod server;
mod state;
#[cfg(test)]
mod tests;
pub mod tokens;

pub use config::{ConfigError, GatewayConfig, Limits, Secret};
pub use console::ConsoleError;
pub use error::{Error, Result};
pub use protocol::FrameError;
pub use server::{serve, Gateway, CHAT_PAGE};
