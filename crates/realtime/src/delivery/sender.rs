//! Delivering one message to one connection, or closing it: the `ConnectionSender` port.
//!
//! Production posts through the API Gateway Management API (`PostToConnection`,
//! [`crate::aws::management_api`]); the dev server answers the same API, so the same adapter
//! runs locally. Each adapter classifies its answers into a [`PostOutcome`] so that fan-out can
//! act on them without reading a transport's errors: only `Gone` (410) ever removes a connection;
//! throttling, server errors and timeouts are worth retrying; anything else is a failure
//! that leaves the connection alone.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;

use crate::backoff::Backoff;

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

/// Where [`post_until`] counts: posts answered 429 (each retry), and whether a post was retried
/// for another reason (told once, by the first).
#[derive(Clone, Copy)]
pub struct Retries<'a> {
    pub throttled: &'a AtomicUsize,
    pub retrying: &'a AtomicBool,
}

/// Post to one connection, retrying what is worth retrying (throttling, 5xx, timeouts) with
/// `backoff` until `deadline`: a fan-out's posts, and a revocation's `unsubscribed`.
pub async fn post_until(
    sender: &dyn ConnectionSender,
    backoff: Backoff,
    connection_id: &str,
    payload: &[u8],
    deadline: Instant,
    retries: Retries<'_>,
) -> PostOutcome {
    let mut attempt = 0;
    loop {
        // No post outlives the deadline, whatever the transport's own timeout: past it the
        // invocation must report and return before Lambda's timeout (or Lambda retries it and
        // everyone gets the event again).
        let Ok(outcome) =
            tokio::time::timeout_at(deadline.into(), sender.post(connection_id, payload)).await
        else {
            tracing::warn!(
                connection_id,
                attempts = attempt + 1,
                "no answer before the deadline; connection kept"
            );
            return PostOutcome::Retry("no answer before the deadline".to_owned());
        };
        match outcome {
            PostOutcome::Throttled | PostOutcome::Retry(_) => {
                if outcome == PostOutcome::Throttled {
                    retries.throttled.fetch_add(1, Ordering::Relaxed);
                } else if !retries.retrying.swap(true, Ordering::Relaxed) {
                    // Said at once, once a fan-out: an unreachable Management API (a wrong
                    // WEBSOCKET_ENDPOINT, no dev server) is otherwise only told at the deadline.
                    tracing::warn!(
                        connection_id,
                        ?outcome,
                        "a post failed and is retried until the deadline"
                    );
                }
                let delay = backoff.delay(attempt);
                if Instant::now() + delay >= deadline {
                    tracing::warn!(
                        connection_id,
                        attempts = attempt + 1,
                        ?outcome,
                        "not delivered before the deadline; connection kept"
                    );
                    return outcome;
                }
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            PostOutcome::Failed(reason) => {
                tracing::warn!(connection_id, %reason, "post refused; connection kept");
                return PostOutcome::Failed(reason);
            }
            done => return done,
        }
    }
}
