//! Stopping a cluster together: a SIGTERM reaches one process (a pod deleted, a rolling update),
//! but a timely cluster can only finish its epochs, and so commit them, with every worker. The
//! first worker that sees the stop broadcasts it through a tiny dataflow of its own; every
//! worker of every process then sets its process's stop flag, finishes, commits and exits, so
//! the whole cluster stops within moments instead of waiting for its peers' own signals.

use super::live::STOP;
use crate::time::Time;
use std::sync::atomic::Ordering;
use timely::dataflow::operators::core::Inspect;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::InputHandle;

type Control = InputHandle<Time, timely::container::CapacityContainerBuilder<Vec<u8>>>;

/// One worker's end of the stop dataflow.
pub(crate) struct StopSpreader {
    input: Option<Control>,
}

impl StopSpreader {
    /// Builds the stop dataflow on `worker` (every worker must, in the same order as its other
    /// dataflows).
    pub(crate) fn build(worker: &mut timely::worker::Worker) -> StopSpreader {
        let mut input: Control = InputHandle::new();
        worker.dataflow::<Time, _, _>(|scope| {
            input.to_stream(scope).broadcast().inspect(|_| {
                if !STOP.swap(true, Ordering::Relaxed) {
                    tracing::info!("a peer of the cluster is stopping; stopping too: finishing the current epoch and committing");
                }
            });
        });
        StopSpreader { input: Some(input) }
    }

    /// Tells every worker of the cluster to stop, once, if this process was told to.
    pub(crate) fn spread_if_stopping(&mut self) {
        if !STOP.load(Ordering::Relaxed) {
            return;
        }
        if let Some(mut input) = self.input.take() {
            input.send(1u8);
            input.flush();
            // Dropped: the stop dataflow completes once every worker has done the same.
        }
    }
}
