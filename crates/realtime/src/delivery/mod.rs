//! Delivery: one event to every live connection of a project. [`broadcaster`] validates an
//! invocation and reports; [`fanout`] pages the project index and posts with bounded
//! concurrency; [`sender`] is the port one post goes through; [`sweeper`] sends the reconnect
//! hint before API Gateway's 2-hour cut through the same fan-out.

pub mod broadcaster;
pub mod fanout;
pub mod sender;
pub mod sweeper;
