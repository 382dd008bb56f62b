//! Where events leave the topology: ClickHouse (idempotent on event_id), Kafka (`bot.said`,
//! idempotent producer), the dead letter, and files.

pub mod clickhouse;
mod error;
pub mod file;
pub mod kafka;

pub use error::{Error, Result};
