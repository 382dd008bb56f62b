//! The daily jobs on recorded and historical traffic: `switchboard record` ([`record`]: a topic
//! range into a recording file), `switchboard replay` ([`backfill`]: a range of `user.said`
//! through the graph into the sinks, on record time), `switchboard test` ([`deterministic`]:
//! a recording through the graph in process, compared with its golden file, [`golden`]) and
//! `switchboard shadow` ([`shadow`]: the current and a candidate version over the same turns,
//! every difference reported).

#![deny(missing_docs)]

pub mod backfill;
pub mod deterministic;
mod error;
pub mod golden;
pub mod record;
pub mod shadow;

pub use error::{Error, Result};
