//! The conversation operators: session state, PII masking, intent recognition, retrieval and
//! answer rendering. Operators are plain functions and state machines over events; they never
//! talk to Kafka or ClickHouse (sources and sinks do), so each is unit-testable on its own.
//!
//! Remote backends of the operators' traits (the Qdrant [`retrieval::VectorStore`], the gRPC
//! model server behind [`intent::backend::IntentBackend`]) live in the `switchboard-connectors`
//! crate. Every fallible operation returns the crate's [`Error`].

#![deny(missing_docs)]

pub mod analysis;
mod bot_reply;
pub mod decode;
mod error;
pub mod intent;
pub mod pii;
pub mod render;
pub mod retrieval;
pub mod ownership;
pub mod session;
pub mod stage;
pub mod understand;

pub use error::{Error, Result};
