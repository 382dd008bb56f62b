//! Recording Kafka traffic, and the golden-file side of the deterministic test runner
//! (comparison, readable diffs, blessing). The runs themselves — backfill and deterministic
//! test — execute the graph in `topology`, which calls into this crate.

pub mod golden;
pub mod record;
