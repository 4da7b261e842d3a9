//! Resuming after a reconnect (DESIGN "Sequence and recovery"): a client that was away asks
//! for the events after the last `seq` it holds and gets them back, or is told to refetch.
//!
//! All of it, in the order it happens:
//! - the broadcaster appends every project event (and direct message) to its stream before
//!   fan-out and gets its `seq` (the [`EventStore`] port, `crate::delivery::events`; adapters
//!   `crate::aws::events` on DynamoDB and `crate::memory::events`);
//! - a client's `subscribe` / `subscribe_user` with `since` and `epoch`
//!   (`crate::wire::client`) is answered with its [`Position`] in the stream: the head, and the
//!   events after `since` or `reset` ([`position`]);
//! - whether what the store found can be sent back is [`from_frames`]: all present, in order,
//!   within [`MAX_RECOVERED_EVENTS`] and [`MAX_RECOVERED_BYTES`];
//! - the browser client (`clients/web`) tracks the highest `seq` below which it has seen every
//!   event, fills gaps and re-checks its position once after subscribing by re-subscribing
//!   with `since`.

use serde_json::Value;

use crate::delivery::events::{EventStore, Stream};

/// Most events one `recovered` reply carries.
pub const MAX_RECOVERED_EVENTS: usize = 100;
/// Most bytes of events one `recovered` reply carries (API Gateway's route response is 128 KB).
pub const MAX_RECOVERED_BYTES: usize = 96 * 1024;

/// What `since` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Every event after `since`, in order (possibly none).
    Events(Vec<String>),
    /// Another epoch, events gone past retention, or more than fits: refetch everything.
    Reset,
}

/// Whether `frames` (the events after `since`, up to `head`) can be recovered: all present and
/// within the reply's bounds.
pub fn from_frames(since: u64, head: u64, frames: Vec<(u64, String)>) -> Recovery {
    if head < since {
        return Recovery::Reset;
    }
    let missing = (head - since) as usize;
    if missing > MAX_RECOVERED_EVENTS || frames.len() != missing {
        return Recovery::Reset;
    }
    let consecutive = frames
        .iter()
        .enumerate()
        .all(|(i, (seq, _))| *seq == since + 1 + i as u64);
    let bytes: usize = frames.iter().map(|(_, f)| f.len()).sum();
    if !consecutive || bytes > MAX_RECOVERED_BYTES {
        return Recovery::Reset;
    }
    // An empty frame marks a seq given to a duplicate that lost its race: no event.
    Recovery::Events(
        frames
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| !f.is_empty())
            .collect(),
    )
}

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
pub async fn position(
    events: Option<&dyn EventStore>,
    stream: &Stream,
    since: Option<u64>,
    epoch: Option<String>,
    connection_id: &str,
) -> Position {
    let Some(events) = events else {
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
            tracing::error!(connection_id, %stream, error = %e, "event store unavailable; the client is told to refetch");
            Position {
                reset: Some(true),
                ..Position::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, String)> {
        range.map(|s| (s, format!("{{\"seq\":{s}}}"))).collect()
    }

    #[test]
    fn recovery_needs_every_event_in_bounds() {
        assert_eq!(from_frames(5, 5, vec![]), Recovery::Events(vec![]));
        assert_eq!(
            from_frames(3, 5, frames(4..=5)),
            Recovery::Events(vec!["{\"seq\":4}".into(), "{\"seq\":5}".into()])
        );
        assert_eq!(
            from_frames(3, 5, frames(5..=5)),
            Recovery::Reset,
            "one is gone"
        );
        assert_eq!(
            from_frames(0, 101, frames(1..=101)),
            Recovery::Reset,
            "over 100"
        );
        assert_eq!(
            from_frames(9, 5, vec![]),
            Recovery::Reset,
            "since past the head"
        );
        let big = vec![(1, "x".repeat(MAX_RECOVERED_BYTES + 1))];
        assert_eq!(from_frames(0, 1, big), Recovery::Reset, "over 96 KB");
        let with_gap_marker = vec![(1, "a".to_owned()), (2, String::new()), (3, "c".to_owned())];
        assert_eq!(
            from_frames(0, 3, with_gap_marker),
            Recovery::Events(vec!["a".into(), "c".into()])
        );
    }
}
