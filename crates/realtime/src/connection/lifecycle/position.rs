//! Where a `subscribed` (or `subscribed_user`) reply puts the client in its stream (DESIGN
//! "Sequence and recovery"): the head, and with `since` the events after it or `reset`.

use serde_json::Value;

use super::context::Context;
use crate::delivery::events::{Recovery, Stream};

/// A reply's `seq`, `epoch`, `recovered` and `reset` (each left out of the frame when `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    pub seq: Option<u64>,
    pub epoch: Option<String>,
    pub recovered: Option<Vec<Value>>,
    pub reset: Option<bool>,
}

/// The position in `stream`: its head, read after the subscription was written (so every
/// later event either reaches the connection or shows as a gap), and with `since` the events
/// after it or `reset`. Without an event store, nothing; if the store cannot answer, `reset`
/// (the client refetches) rather than a failed subscribe.
pub(super) async fn position(
    ctx: &Context<'_>,
    stream: &Stream,
    since: Option<u64>,
    epoch: Option<String>,
) -> Position {
    let Some(events) = ctx.events else {
        return Position::default();
    };
    let found = match since {
        Some(since) => events
            .since(stream, epoch.as_deref().unwrap_or_default(), since)
            .await
            .map(|(head, recovery)| (head, Some(recovery))),
        None => events.head(stream).await.map(|head| (head, None)),
    };
    match found {
        Ok((head, recovery)) => Position {
            seq: Some(head.seq),
            epoch: Some(head.epoch),
            recovered: match &recovery {
                Some(Recovery::Events(frames)) => Some(
                    frames
                        .iter()
                        .filter_map(|f| serde_json::from_str(f).ok())
                        .collect(),
                ),
                _ => None,
            },
            reset: matches!(recovery, Some(Recovery::Reset)).then_some(true),
        },
        Err(e) => {
            tracing::error!(route = ctx.route, connection_id = ctx.connection_id, %stream, error = %e, "event store unavailable; the client is told to refetch");
            Position {
                reset: Some(true),
                ..Position::default()
            }
        }
    }
}
