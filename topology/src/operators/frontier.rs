//! Frontier helpers shared by the operators.

use crate::time::Time;
use std::collections::BTreeMap;
use timely::progress::frontier::MutableAntichain;

/// The stashed times, in order, that the input frontier has passed (no more input can arrive
/// for them).
pub(super) fn ready_times<V>(stash: &BTreeMap<Time, V>, frontier: &MutableAntichain<Time>) -> Vec<Time> {
    stash.keys().copied().filter(|t| !frontier.less_equal(t)).collect()
}
