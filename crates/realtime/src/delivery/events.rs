//! Every project event, kept for a while in the order it was sent, so that a client that was
//! away resumes instead of refetching (DESIGN "Events table", "Sequence and recovery").
//!
//! The `EventStore` port: the broadcaster [`append`](EventStore::append)s each project event
//! before fan-out and gets its `seq` (one more than the stream's head, atomically); a retried
//! invocation with the same `event_id` gets its first `seq` and frame back instead of a new
//! one. `subscribe` reads the [`head`](EventStore::head) and, with `since`, the events after it
//! ([`EventStore::since`]; what a client gets back is [`crate::recovery`]'s). `epoch` names the stream's generation: a client whose epoch differs
//! starts over. Adapters: [`crate::aws::events`] (DynamoDB) and [`crate::memory::events`].

use async_trait::async_trait;
use uuid::Uuid;

use crate::connection::store::StoreError;
pub use crate::recovery::{MAX_RECOVERED_BYTES, MAX_RECOVERED_EVENTS, Recovery};
use crate::settings::{Bounded, ConfigError, Env};

/// How long events are kept unless configured otherwise (`EVENT_RETENTION_S`).
pub const DEFAULT_RETENTION_S: i64 = 24 * 60 * 60;
/// The DynamoDB events table; unset turns recovery off.
pub const EVENTS_TABLE: &str = "EVENTS_TABLE";
/// How long events are kept for recovery, in seconds (60..=1,209,600).
pub const EVENT_RETENTION_S: &str = "EVENT_RETENTION_S";

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
    /// they fit in [`MAX_RECOVERED_EVENTS`] and [`MAX_RECOVERED_BYTES`]
    /// ([`crate::recovery::from_frames`] decides).
    async fn since(
        &self,
        stream: &Stream,
        epoch: &str,
        since: u64,
    ) -> Result<(Head, Recovery), StoreError>;
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
