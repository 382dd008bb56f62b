//! The Switchboard dataflow graph and its runners.
//!
//! - [`graph`]: the graph (analyse → session → sinks), built from the operators in
//!   [`operators`], one per file, each an extension trait on timely's `Stream`; a probe behind
//!   the sinks tells which epochs are durable (frontier-driven commit).
//! - [`versions`]: the model and knowledge-base versions as a differential collection, joined
//!   as of each epoch; [`aggregates`]: live per-minute counts.
//! - [`runner`]: the live runner on Kafka ([`runner::live`], like timely's `execute`) and the
//!   recorded runner in process ([`runner::recorded`], like `execute_directly`).
//! - [`testing`]: a deterministic keyword understanding, so the graph can be tested without a
//!   broker, ClickHouse or model files.
//!
//! The graph knows no service: it reads [`SourceRecord`](switchboard_schemas::SourceRecord)s
//! and writes through an [`EventSink`](switchboard_sinks::EventSink).

#![deny(missing_docs)]

pub mod aggregates;
mod error;
pub mod graph;
pub mod metrics;
pub mod operators;
mod output;
pub mod runner;
pub mod testing;
pub mod time;
pub mod versions;

pub use error::{Error, Result};
pub use graph::{build, EndOfInput, Failure, GraphConfig, Output};
pub use time::{Clock, Time};
