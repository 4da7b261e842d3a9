//! One module per scenario of BENCHMARKS.md; each `run` returns its raw results as JSON.

pub mod artifacts;
pub mod capacity;
pub mod compare;
pub mod delivery;
pub mod drain;
pub mod fanout;
pub mod latency;
pub mod presence;
pub mod recovery;
pub mod sweep;
pub mod throughput;
