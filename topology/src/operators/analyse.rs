//! `analyse`: decodes, masks and understands each epoch's records as one batch, with the model
//! and knowledge-base versions that the versions collection holds at the epoch's time (an as-of
//! join of the record stream with the collection).

use crate::metrics::Metrics;
use crate::time::{Clock, RecordClock, Time};
use crate::versions::{VersionRecord, VersionsAsOf};
use differential_dataflow::collection::VecCollection;
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_operators::analysis::{analyze_batch, Expiry, PartitionWatermarks};
use switchboard_operators::stage::Stage;
use switchboard_operators::understand::Understand;
use switchboard_schemas::SourceRecord;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// Turn analysis on a stream of source records.
pub trait AnalyseStream<'s> {
    /// Each epoch's records, analysed as one batch with the versions of `versions` as of the
    /// epoch (the epoch waits until the collection's frontier has passed it).
    fn analyse(
        &self,
        versions: VecCollection<'s, Time, VersionRecord, isize>,
        understand: Arc<dyn Understand>,
        clock: Clock,
        expiry: Option<Arc<Expiry>>,
        metrics: Option<Arc<Metrics>>,
    ) -> Stream<'s, Time, Vec<Stage>>;
}

/// The first wait before retrying an epoch whose understanding failed in a way that can pass.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest wait between two retries.
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl<'s> AnalyseStream<'s> for Stream<'s, Time, Vec<SourceRecord>> {
    fn analyse(
        &self,
        versions: VecCollection<'s, Time, VersionRecord, isize>,
        understand: Arc<dyn Understand>,
        clock: Clock,
        expiry: Option<Arc<Expiry>>,
        metrics: Option<Arc<Metrics>>,
    ) -> Stream<'s, Time, Vec<Stage>> {
        let scope = self.scope();
        self.clone()
            .binary_frontier(versions.inner, Pipeline, Pipeline, "Analyse", move |_cap, info| {
                let activator = scope.activator_for(info.address.clone());
                // The next retry's wait after a failure that can pass (doubles to 5 s).
                let mut backoff = RETRY_FIRST;
                let mut stash: BTreeMap<Time, (Capability<Time>, Vec<SourceRecord>)> = BTreeMap::new();
                let mut versions_as_of = VersionsAsOf::default();
                let mut watermarks = PartitionWatermarks::default();
                move |(input, frontier), (versions_input, versions_frontier), output| {
                    input.for_each_stamp(|cap, data| {
                        let Some(cap) = cap.retain_least(0) else { return };
                        let entry = stash.entry(*cap.time()).or_insert_with(|| (cap, Vec::new()));
                        for batch in data {
                            entry.1.append(batch);
                        }
                    });
                    versions_input.for_each(|_, updates| versions_as_of.absorb(updates.drain(..)));
                    let ready: Vec<Time> = super::frontier::ready_times(&stash, frontier)
                        .into_iter()
                        .filter(|t| !versions_frontier.less_equal(t))
                        .collect();
                    for time in ready {
                        let Some((cap, records)) = stash.remove(&time) else { continue };
                        let started = std::time::Instant::now();
                        let pinned = versions_as_of.at(time);
                        let now = RecordClock { clock, epoch_now: clock.now(time) };
                        let staged = match analyze_batch(&records, understand.as_ref(), &pinned, now, &mut watermarks, expiry.as_deref()) {
                            Ok(staged) => {
                                backoff = RETRY_FIRST;
                                staged
                            }
                            Err(e) => {
                                // Nothing of the epoch is decided or committed: it (and every
                                // later one) waits, and the worker goes on with other work.
                                tracing::warn!(error = %e, time, records = records.len(), retry_in_ms = backoff.as_millis() as u64,
                                    "understanding failed and can pass; retrying the epoch");
                                if let Some(m) = &metrics {
                                    m.understand_retried();
                                }
                                stash.insert(time, (cap, records));
                                activator.activate_after(backoff);
                                backoff = (backoff * 2).min(RETRY_MAX);
                                break;
                            }
                        };
                        if let Some(m) = &metrics {
                            m.record_stage("understand", started.elapsed());
                            if clock == Clock::Wall {
                                m.record_turn_stage("understood", records.iter().map(|r| r.timestamp_ms));
                            }
                        }
                        output.session(&cap).give_iterator(staged.into_iter());
                    }
                }
            })
            .container::<Vec<Stage>>()
    }
}
