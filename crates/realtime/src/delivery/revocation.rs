//! Where authorization ends during a connection's life (DESIGN "Connection life"): a token that
//! expired closes its connection at the next delivery, and a membership that ended unsubscribes
//! every connection of that user from that project.
//!
//! Both are decided against the store with conditional writes, so that of several broadcasts
//! finding the same connection exactly one tells it, and a subscription that raced the removal
//! is ended all the same.

use std::time::{Duration, Instant};

use futures::StreamExt;
use uuid::Uuid;

use crate::connection::store::{Listings, Records, StoreError, Subscriptions};
use crate::delivery::sender::{ConnectionSender, PostOutcome, Retries, post_until};
use crate::time::EpochSecs;
use crate::wire::client::{REASON_MEMBERSHIP_REVOKED, Reply};

/// Close a connection whose token expired at or before `now`: delete its item, tell it
/// `token_expired`, close it. `true` when this call closed it (it was expired and still there).
pub async fn expire(
    store: &(impl Records + ?Sized),
    sender: &dyn ConnectionSender,
    connection_id: &str,
    now: EpochSecs,
    deadline: Instant,
) -> bool {
    match store.remove_expired(connection_id, now).await {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            // Nothing was delivered to it either way; the next delivery tries again.
            tracing::error!(connection_id, error = %e, "cannot remove a connection whose token expired");
            return false;
        }
    }
    let frame = Reply::token_expired().to_json();
    let told = within(deadline, sender.post(connection_id, frame.as_bytes())).await;
    let closed = within(deadline, sender.close(connection_id)).await;
    tracing::info!(connection_id, told = ?told, closed = ?closed, "token expired; connection closed");
    true
}

/// How long after a write the user index may still not show it: DynamoDB's GSIs are
/// eventually consistent, and AWS says writes "propagate to a GSI within 1 second" (AWS
/// re:Post knowledge center, "dynamodb-missing-table-items-gsi"); twice that, for margin.
pub const USER_INDEX_SETTLE: Duration = Duration::from_secs(2);

/// End `user`'s subscriptions to `project` (their membership ended): every connection of the
/// user still subscribed to it is unsubscribed and told `unsubscribed` with
/// `"reason":"membership_revoked"`. Returns how many were ended.
///
/// Every connection the user index lists is tried with a conditional write on the table
/// itself, so a subscription the (eventually consistent) index does not show yet still ends.
/// A connection written just before the removal may be missing from the index altogether, so
/// the index is read twice: now, and again [`USER_INDEX_SETTLE`] later (when the deadline
/// allows). A connection written after the removal committed re-checks membership itself
/// (`$connect` and `subscribe` check again after their write).
pub async fn revoke(
    store: &(impl Listings + Subscriptions + ?Sized),
    sender: &dyn ConnectionSender,
    project: Uuid,
    user: Uuid,
    deadline: Instant,
) -> Result<usize, StoreError> {
    let mut ended = revoke_listed(store, sender, project, user, deadline).await?;
    if Instant::now() + USER_INDEX_SETTLE < deadline {
        tokio::time::sleep(USER_INDEX_SETTLE).await;
        ended += revoke_listed(store, sender, project, user, deadline).await?;
    } else {
        tracing::warn!(user_id = %user, project_id = %project, "no time left to read the user index again after a revocation");
    }
    Ok(ended)
}

/// One pass of [`revoke`] over the connections the user index lists now.
async fn revoke_listed(
    store: &(impl Listings + Subscriptions + ?Sized),
    sender: &dyn ConnectionSender,
    project: Uuid,
    user: Uuid,
    deadline: Instant,
) -> Result<usize, StoreError> {
    let frame = Reply::unsubscribed_by_server(project, REASON_MEMBERSHIP_REVOKED).to_json();
    let mut ended = 0;
    let (throttled, retrying) = Default::default();
    let counts = Retries {
        throttled: &throttled,
        retrying: &retrying,
    };
    let backoff = crate::backoff::Backoff::default();
    let mut pages = store.user_connections(user);
    while let Some(page) = pages.next().await {
        for connection in page? {
            let id = connection.connection_id;
            if store.unsubscribe_from(&id, project).await? {
                ended += 1;
                let told =
                    post_until(sender, backoff, &id, frame.as_bytes(), deadline, counts).await;
                tracing::info!(connection_id = %id, user_id = %user, project_id = %project, told = ?told, "membership revoked; unsubscribed");
            }
        }
    }
    Ok(ended)
}

/// `call`'s outcome, or `Retry` once `deadline` has passed.
async fn within(
    deadline: Instant,
    call: impl std::future::Future<Output = PostOutcome>,
) -> PostOutcome {
    tokio::time::timeout_at(deadline.into(), call)
        .await
        .unwrap_or_else(|_| PostOutcome::Retry("no answer before the deadline".to_owned()))
}
