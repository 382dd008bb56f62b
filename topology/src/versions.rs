//! The intent-model and knowledge-base versions as a differential-dataflow collection, and the
//! as-of lookup that joins it with the turns.
//!
//! Worker 0 asks the understanding which versions are loaded ([`Understand::available_versions`])
//! each time the dataflow frontier moves. A change becomes two updates of the collection
//! `(component, version)` at the frontier's time: `-1` for the old version, `+1` for the new one.
//! The updates are broadcast, so every worker holds the same collection. A batch of turns at time
//! `t` is understood with the versions the collection holds at `t` ([`VersionsAsOf`]): a
//! knowledge-base update or a new model is a diff that flows through the graph, the turns before
//! it keep their versions and every turn after it, on every worker, gets the new ones, without
//! a restart.

use crate::time::Time;
use differential_dataflow::collection::{AsCollection, VecCollection};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_operators::understand::{Understand, Versions};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::Stream;

/// One element of the versions collection: (component, version).
pub type VersionRecord = (String, String);

/// The updates that turn the collection holding `old` into one holding `new`.
pub fn version_diffs(old: &Versions, new: &Versions) -> Vec<(VersionRecord, isize)> {
    let mut diffs = Vec::new();
    for (component, version) in old {
        if new.get(component) != Some(version) {
            diffs.push(((component.clone(), version.clone()), -1));
        }
    }
    for (component, version) in new {
        if old.get(component) != Some(version) {
            diffs.push(((component.clone(), version.clone()), 1));
        }
    }
    diffs
}

/// The versions collection on any stream of the graph's input.
pub trait VersionsStream<'s> {
    /// The versions collection, driven by the progress of this stream: worker 0 polls the
    /// understanding whenever the stream's frontier moves and emits the changes at that
    /// frontier; all workers receive them.
    fn versions(&self, understand: Arc<dyn Understand>) -> VecCollection<'s, Time, VersionRecord, isize>;
}

impl<'s, D: Clone + 'static> VersionsStream<'s> for Stream<'s, Time, Vec<D>> {
    fn versions(&self, understand: Arc<dyn Understand>) -> VecCollection<'s, Time, VersionRecord, isize> {
        let is_first_worker = self.scope().index() == 0;
        self.clone()
            .unary_frontier(Pipeline, "Versions", move |cap, _info| {
                // Only worker 0 decides versions; the others hold no capability and emit nothing.
                let mut held = if is_first_worker { Some(cap) } else { None };
                let mut emitted = Versions::new();
                move |(input, frontier), output| {
                    input.for_each(|_, _| {});
                    let Some(cap) = held.as_mut() else { return };
                    let current = understand.available_versions();
                    let diffs = version_diffs(&emitted, &current);
                    if !diffs.is_empty() {
                        let at = *cap.time();
                        output.session(&*cap).give_iterator(diffs.into_iter().map(|(record, diff)| (record, at, diff)));
                        emitted = current;
                    }
                    match frontier.frontier().iter().min().copied() {
                        Some(low) if *cap.time() < low => cap.downgrade(&low),
                        Some(_) => {}
                        None => held = None,
                    }
                }
            })
            .container::<Vec<(VersionRecord, Time, isize)>>()
            .broadcast()
            .as_collection()
    }
}

/// The versions collection as of a time: accumulates the collection's updates and answers, for a
/// batch at time `t` once every update at or before `t` has arrived, which version of each
/// component the collection holds at `t`.
#[derive(Debug, Default)]
pub struct VersionsAsOf {
    pending: BTreeMap<Time, Vec<(VersionRecord, isize)>>,
    accumulated: BTreeMap<VersionRecord, isize>,
}

impl VersionsAsOf {
    /// Takes updates from the collection's stream.
    pub fn absorb(&mut self, updates: impl IntoIterator<Item = (VersionRecord, Time, isize)>) {
        for (record, time, diff) in updates {
            self.pending.entry(time).or_default().push((record, diff));
        }
    }

    /// The versions at `time`. Call with non-decreasing times, and only once the collection's
    /// frontier has passed `time`. A component whose count is not positive is absent; if two
    /// versions of one component were ever present at once, the greatest wins (deterministic).
    pub fn at(&mut self, time: Time) -> Versions {
        let due: Vec<Time> = self.pending.range(..=time).map(|(t, _)| *t).collect();
        for t in due {
            for (record, diff) in self.pending.remove(&t).unwrap_or_default() {
                let count = self.accumulated.entry(record.clone()).or_insert(0);
                *count += diff;
                if *count == 0 {
                    self.accumulated.remove(&record);
                }
            }
        }
        self.accumulated
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|((component, version), _)| (component.clone(), version.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(pairs: &[(&str, &str)]) -> Versions {
        pairs.iter().map(|(c, v)| (c.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_new_version_is_one_retraction_and_one_addition() {
        let old = versions(&[("kb", "a"), ("intent/en", "m1")]);
        let new = versions(&[("kb", "b"), ("intent/en", "m1")]);
        assert_eq!(
            version_diffs(&old, &new),
            vec![(("kb".into(), "a".into()), -1), (("kb".into(), "b".into()), 1)]
        );
        assert!(version_diffs(&new, &new).is_empty());
    }

    #[test]
    fn batches_see_the_versions_in_effect_at_their_time() {
        let mut as_of = VersionsAsOf::default();
        as_of.absorb(vec![(("kb".into(), "a".into()), 0, 1)]);
        as_of.absorb(vec![(("kb".into(), "a".into()), 10, -1), (("kb".into(), "b".into()), 10, 1)]);
        assert_eq!(as_of.at(5), versions(&[("kb", "a")]));
        assert_eq!(as_of.at(9), versions(&[("kb", "a")]));
        assert_eq!(as_of.at(10), versions(&[("kb", "b")]));
        assert_eq!(as_of.at(20), versions(&[("kb", "b")]));
    }
}
