//! Delivery: one event to every live connection of a project. [`broadcaster`] validates an
//! invocation and reports; [`fanout`] pages the project index and posts with bounded
//! concurrency; [`sender`] is the port one post goes through.

pub mod broadcaster;
pub mod fanout;
pub mod sender;
