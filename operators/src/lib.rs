//! The conversation operators: session state, PII masking, intent recognition, retrieval and
//! answer rendering. Operators are plain functions and state machines over events; they never
//! talk to Kafka or ClickHouse (sources and sinks do), so each is unit-testable on its own.

mod error;
pub mod intent;
pub mod pii;
pub mod render;
pub mod retrieval;
pub mod session;
pub mod understand;

pub use error::{Error, Result};
