//! The graph's operators, one per file, each an extension trait on timely's `Stream` (the
//! way timely's own `dataflow/operators` are written).

mod analyse;
mod events;
mod session;
mod sink;

pub use analyse::AnalyseStream;
pub use events::EventsStream;
pub use session::SessionStream;
pub use sink::SinkStream;

use crate::time::Time;
use std::collections::BTreeMap;
use timely::progress::frontier::MutableAntichain;

/// The stashed times, in order, that the input frontier has passed (no more input can arrive
/// for them).
fn ready_times<V>(stash: &BTreeMap<Time, V>, frontier: &MutableAntichain<Time>) -> Vec<Time> {
    stash.keys().copied().filter(|t| !frontier.less_equal(t)).collect()
}
