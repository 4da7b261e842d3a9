//! Every project event, kept for a while in the order it was sent, so that a client that was
//! away resumes instead of refetching (DESIGN "Events table", "Sequence and recovery").
//!
//! The `EventStore` port: the broadcaster [`append`](EventStore::append)s each project event
//! before fan-out and gets its `seq` (one more than the stream's head, atomically); a retried
//! invocation with the same `event_id` gets its first `seq` and frame back instead of a new
//! one. `subscribe` reads the [`head`](EventStore::head) and, with `since`, the events after it
//! ([`EventStore::since`]). `epoch` names the stream's generation: a client whose epoch differs
//! starts over. Adapters: [`crate::aws::events`] (DynamoDB) and [`crate::memory::events`].

use async_trait::async_trait;
use uuid::Uuid;

use crate::connection::store::StoreError;
use crate::settings::{Bounded, ConfigError, Env};

/// How long events are kept unless configured otherwise (`EVENT_RETENTION_S`).
pub const DEFAULT_RETENTION_S: i64 = 24 * 60 * 60;
/// The DynamoDB events table; unset turns recovery off.
pub const EVENTS_TABLE: &str = "EVENTS_TABLE";
/// How long events are kept for recovery, in seconds (60..=1,209,600).
pub const EVENT_RETENTION_S: &str = "EVENT_RETENTION_S";
/// Most events one `recovered` reply carries.
pub const MAX_RECOVERED_EVENTS: usize = 100;
/// Most bytes of events one `recovered` reply carries (API Gateway's route response is 128 KB).
pub const MAX_RECOVERED_BYTES: usize = 96 * 1024;

/// A stream of numbered events, by its key in the events table: a project's events
/// (`project#<id>`) or a user's direct messages (`user#<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stream(String);

impl Stream {
    /// The stream of a project's events.
    pub fn project(project: Uuid) -> Self {
        Stream(format!("project#{project}"))
    }

    /// The stream of a user's direct messages.
    pub fn user(user: Uuid) -> Self {
        Stream(format!("user#{user}"))
    }

    /// Its key in the events table.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream's head: the last `seq` given and the stream's generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub epoch: String,
}

/// An appended event: its `seq` and the frame stored (and delivered) under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub epoch: String,
    pub frame: String,
    /// `true` when the `event_id` was already in the stream (a retried invocation).
    pub repeated: bool,
}

/// What `since` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Every event after `since`, in order (possibly none).
    Events(Vec<String>),
    /// Another epoch, events gone past retention, or more than fits: refetch everything.
    Reset,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Append the event `event_id` to `stream`: `render(seq)` is the frame stored and
    /// delivered under the `seq` given. A repeated `event_id` returns its first seq and frame.
    async fn append(
        &self,
        stream: &Stream,
        event_id: Uuid,
        render: &(dyn Fn(u64) -> String + Send + Sync),
    ) -> Result<Appended, StoreError>;

    /// The stream's head (created with a new epoch when the stream has none).
    async fn head(&self, stream: &Stream) -> Result<Head, StoreError>;

    /// The events after `since` if the stream is still in `epoch` and holds all of them, and
    /// they fit in [`MAX_RECOVERED_EVENTS`] and [`MAX_RECOVERED_BYTES`].
    async fn since(
        &self,
        stream: &Stream,
        epoch: &str,
        since: u64,
    ) -> Result<(Head, Recovery), StoreError>;
}

/// Whether `frames` (the events after `since`, up to `head`) can be recovered: all present and
/// within the reply's bounds.
pub fn recovery(since: u64, head: u64, frames: Vec<(u64, String)>) -> Recovery {
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

/// The event store's settings: `EVENTS_TABLE` (unset: no recovery) and `EVENT_RETENTION_S`
/// (60..=1,209,600, default [`DEFAULT_RETENTION_S`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub table: Option<String>,
    pub retention_s: i64,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[EVENTS_TABLE, EVENT_RETENTION_S];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        const RETENTION: Bounded = Bounded::new(
            EVENT_RETENTION_S,
            DEFAULT_RETENTION_S as usize,
            60,
            1_209_600,
        );
        Ok(Settings {
            table: env.var(EVENTS_TABLE).map(str::to_owned),
            retention_s: RETENTION.read(env)? as i64,
        })
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
        assert_eq!(recovery(5, 5, vec![]), Recovery::Events(vec![]));
        assert_eq!(
            recovery(3, 5, frames(4..=5)),
            Recovery::Events(vec!["{\"seq\":4}".into(), "{\"seq\":5}".into()])
        );
        assert_eq!(
            recovery(3, 5, frames(5..=5)),
            Recovery::Reset,
            "one is gone"
        );
        assert_eq!(
            recovery(0, 101, frames(1..=101)),
            Recovery::Reset,
            "over 100"
        );
        assert_eq!(
            recovery(9, 5, vec![]),
            Recovery::Reset,
            "since past the head"
        );
        let big = vec![(1, "x".repeat(MAX_RECOVERED_BYTES + 1))];
        assert_eq!(recovery(0, 1, big), Recovery::Reset, "over 96 KB");
        let with_gap_marker = vec![(1, "a".to_owned()), (2, String::new()), (3, "c".to_owned())];
        assert_eq!(
            recovery(0, 3, with_gap_marker),
            Recovery::Events(vec!["a".into(), "c".into()])
        );
    }
}
