//! The reconnect sweep: API Gateway closes every connection after 2 hours, so once a minute
//! every connection that reaches 1 h 55 min in that minute gets
//! `{"type":"reconnect","reason":"max_duration"}` and its client opens the next connection
//! before this one is cut (make-before-break). The due connections are one partition of the
//! `reconnect_at-index`, read page by page: never a table scan. Delivery is ordinary fan-out
//! (bounded concurrency, retries, 410s removed). A minute the schedule misses sends no hint for
//! it; clients still replace their connection on their own timer. A connection the hint finds
//! gone has left its project: presence tells the others, as after any fan-out.

use std::time::Instant;

use serde_json::{Value, json};

use crate::connection::store::StoreError;
use crate::delivery::fanout::{Delivered, FanOut};
use crate::delivery::presence::Presence;
use crate::time::EpochMs;
use crate::wire::events::RECONNECT_HINT;

/// Send the hint to every connection due in the minute of `now`.
pub async fn sweep(
    fanout: &FanOut,
    presence: Option<&Presence>,
    now: EpochMs,
    deadline: Instant,
) -> Result<Value, StoreError> {
    let started = Instant::now();
    let minute = now.minute();
    let pages = fanout.store.reconnect_due(minute);
    let Delivered { summary, left } = fanout
        .deliver(pages, RECONNECT_HINT.as_bytes(), None, deadline)
        .await?;
    if let Some(presence) = presence {
        presence.follow_up_until(None, left, deadline).await;
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        minute,
        recipients = summary.recipients,
        delivered = summary.delivered,
        gone = summary.gone,
        failed = summary.failed,
        duration_ms,
        "reconnect sweep"
    );
    Ok(json!({
        "minute": minute,
        "recipients": summary.recipients,
        "delivered": summary.delivered,
        "gone": summary.gone,
        "failed": summary.failed,
    }))
}
