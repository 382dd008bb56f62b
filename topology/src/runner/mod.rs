//! Running the graph: [`live`] on Kafka (one process, a cluster process, or a bounded range)
//! and [`recorded`] in process on a recording, with virtual time and captured outputs.

mod feeder;
pub mod live;
pub mod recorded;
mod stop;
