//! `realtime-client`: what an HTTP handler links to publish DevHive Realtime events — the typed
//! events, the broadcaster's invocation payload, event ids, and a [`Publisher`] that sends each
//! event with one asynchronous Lambda Invoke and never fails the caller's request.
//!
//! It is deliberately small (no database driver, no DynamoDB, no JWT): see the README for the
//! dependency budget. The `realtime` library uses the same definitions.
#![doc = include_str!("../README.md")]

pub mod events;
pub mod http;
pub mod invocation;
mod open_cap;
pub mod publisher;
pub mod sdk;
pub mod trust;

pub use aws_sdk_lambda;
pub use events::EventType;
pub use invocation::{
    DIRECT_MESSAGE, Invocation, MAX_DIRECT_DATA_BYTES, MAX_INVOCATION_BYTES, event_id_for,
    new_event_id,
};
pub use publisher::{Invoker, LambdaInvoker, PublishError, Publisher};
