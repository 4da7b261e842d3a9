//! Delivery: one event to every live connection of a project. [`broadcaster`] validates an
//! invocation, appends it to its project's stream in [`events`] (its `seq`) and reports; [`fanout`] pages the project index and posts with bounded
//! concurrency; [`sender`] is the port one post goes through; [`revocation`] ends what a
//! connection may receive when its token expires or its membership ends; [`sweeper`] sends the
//! reconnect hint before API Gateway's 2-hour cut through the same fan-out.

pub mod broadcaster;
pub mod events;
pub mod fanout;
pub mod presence;
pub mod revocation;
pub mod sender;
pub mod sweeper;
