//! Where events leave the topology: the [`EventSink`] seam the graph writes through, and every
//! sink behind it: ClickHouse (idempotent on event_id), Kafka (`bot.said`, idempotent
//! producer), the dead letter, the live sink that combines them ([`live`]), and files.

#![deny(missing_docs)]

pub mod clickhouse;
mod error;
pub mod file;
pub mod gaps;
pub mod group_commit;
pub mod kafka;
pub mod live;
mod retry;
mod sink;

pub use error::{Error, Result};
pub use sink::{Durable, EventSink, FlushObserver, Time};
