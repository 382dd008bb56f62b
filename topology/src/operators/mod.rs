//! The graph's operators, one per file, each an extension trait on timely's `Stream` (the
//! way timely's own `dataflow/operators` are written).

mod analyse;
mod events;
mod frontier;
mod session;
mod sink;

pub use analyse::AnalyseStream;
pub use events::EventsStream;
pub use session::SessionStream;
pub use sink::SinkStream;
