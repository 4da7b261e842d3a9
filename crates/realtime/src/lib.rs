//! DevHive Realtime: everything the Lambdas and the dev server do, in one library.
//!
//! The functions under `functions/` are a few lines each: they read [`config::Config`], build
//! their clients once and hand every event to one function of this crate. AWS and Postgres
//! sit behind small ports ([`store::ConnectionStore`], [`membership::Membership`]) so the
//! same handler code runs on Lambda, in the dev server and in tests.

pub mod auth;
pub mod broadcast;
pub mod broadcaster;
pub mod config;
pub mod events;
pub mod fanout;
pub mod handlers;
pub mod http_client;
pub mod invocation;
pub mod lifecycle;
pub mod membership;
pub mod postgres;
pub mod protocol;
pub mod relay;
pub mod sender;
pub mod status;
pub mod store;
pub mod telemetry;

pub use aws_lambda_events;
pub use aws_sdk_lambda;
pub use lambda_runtime;

/// Current time as epoch seconds, the unit of the table's `expires_at` TTL attribute.
pub fn epoch_seconds() -> i64 {
    epoch_millis() / 1000
}

/// Current time as epoch milliseconds, the unit of `connected_at`.
pub fn epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Epoch milliseconds as an RFC 3339 UTC timestamp (`2026-11-22T05:00:00.123Z`).
pub fn rfc3339(epoch_millis: i64) -> String {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    DateTime::from_millis(epoch_millis)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
