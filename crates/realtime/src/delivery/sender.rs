//! Delivering one message to one connection, or closing it: the `ConnectionSender` port.
//!
//! Production posts through the API Gateway Management API (`PostToConnection`,
//! [`crate::aws::management_api`]); the dev server answers the same API, so the same adapter
//! runs locally. Each adapter classifies its answers into a [`PostOutcome`] so that fan-out can
//! act on them without reading a transport's errors: only `Gone` (410) ever removes a connection;
//! throttling, server errors and timeouts are worth retrying; anything else is a failure
//! that leaves the connection alone.

use async_trait::async_trait;

/// What happened to one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered,
    /// A `close` was done: the connection is being closed.
    Closed,
    /// The connection is gone (410): remove it.
    Gone,
    /// Throttled (429): try again later; counted as `Throttled`.
    Throttled,
    /// A server error or a timeout (the reason): try again later.
    Retry(String),
    /// Refused for another reason: do not retry, do not remove.
    Failed(String),
}

#[async_trait]
pub trait ConnectionSender: Send + Sync {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> PostOutcome;

    /// Close the connection from the server side (`DeleteConnection`); API Gateway then runs
    /// `$disconnect`. `Closed`, or `Gone` when it was already closed.
    async fn close(&self, connection_id: &str) -> PostOutcome;
}
