//! DevHive Realtime: everything the Lambdas and the dev server do, in one library.
//!
//! The functions under `functions/` are a few lines each: [`runtime::wiring`] turns the
//! environment ([`runtime::config::Config`]) into their handlers, and the dev server builds its
//! handlers through the same wiring. The library is grouped by concern:
//! - [`wire`]: what travels — client messages and replies, events, invocation payloads;
//! - [`connection`]: a connection's life — auth, membership, the connection store port, the
//!   `$connect`/`$disconnect`/message routes, status;
//! - [`delivery`]: the broadcaster, fan-out, and the sender port;
//! - [`recovery`]: resuming after a reconnect — the events after a client's `since`, or
//!   `reset`;
//! - [`relay`]: Postgres notifications into broadcaster invocations;
//! - adapters of the ports: [`aws`] (DynamoDB, Management API), [`postgres`] (membership,
//!   migrations), [`memory`] (dev server and tests);
//! - [`metrics`]: the CloudWatch metric lines delivery and the relay print;
//! - [`settings`]: what each component's settings share (it owns its own);
//! - [`time`]: points in time, typed by unit ([`time::EpochMs`], [`time::EpochSecs`]);
//! - [`runtime`]: configuration, wiring, the Lambda entry points, logs.
//!
//! Publishing (typed events, Lambda Invoke) is the small `realtime-client` crate, which HTTP
//! handlers link on its own; this crate uses its definitions.

pub mod aws;
pub mod backoff;
pub mod connection;
pub mod delivery;
pub mod memory;
pub mod metrics;
pub mod postgres;
pub mod recovery;
pub mod relay;
pub mod runtime;
pub mod settings;
pub mod time;
pub mod wire;

pub use aws_lambda_events;
pub use lambda_runtime;
pub use realtime_client;

/// `at` as an RFC 3339 UTC timestamp, always with milliseconds (`2026-11-22T05:00:00.120Z`),
/// the precision the Postgres trigger writes too.
pub fn rfc3339(at: time::EpochMs) -> String {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    let seconds = DateTime::from_secs(at.secs().0)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned());
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        at.0.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use crate::time::EpochMs;

    #[test]
    fn timestamps_always_carry_milliseconds() {
        assert_eq!(
            super::rfc3339(EpochMs(1_795_665_600_000)),
            "2026-11-26T04:00:00.000Z"
        );
        assert_eq!(
            super::rfc3339(EpochMs(1_795_665_600_120)),
            "2026-11-26T04:00:00.120Z"
        );
        assert_eq!(
            super::rfc3339(EpochMs(1_795_665_600_007)),
            "2026-11-26T04:00:00.007Z"
        );
    }
}
