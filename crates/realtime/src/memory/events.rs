//! In-memory `EventStore`: the dev server's default and the reference the DynamoDB adapter is
//! tested against. Each stream gets a new epoch when first used, so a restarted dev server
//! tells resuming clients to start over.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use crate::connection::store::StoreError;
use crate::delivery::events::{Appended, EventStore, Head, Recovery, Stream};
use crate::time::EpochSecs;

/// Events kept per stream at most, whatever their age (older ones go first; a client that
/// needed them gets `reset`).
pub const MAX_EVENTS_PER_STREAM: usize = 10_000;

struct StreamState {
    head: Head,
    /// seq → (frame, expires_at, event id).
    events: BTreeMap<u64, (String, EpochSecs, Uuid)>,
    by_event_id: HashMap<Uuid, u64>,
}

/// Streams in memory, events kept `retention_s`.
pub struct MemoryEventStore {
    streams: Mutex<HashMap<Stream, StreamState>>,
    retention_s: i64,
}

impl MemoryEventStore {
    pub fn new(retention_s: i64) -> Self {
        MemoryEventStore {
            streams: Mutex::default(),
            retention_s,
        }
    }

    fn with_stream<T>(&self, stream: &Stream, f: impl FnOnce(&mut StreamState) -> T) -> T {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let now = EpochSecs::now();
        let s = streams
            .entry(stream.clone())
            .or_insert_with(|| StreamState {
                head: Head {
                    seq: 0,
                    epoch: Uuid::new_v4().simple().to_string(),
                },
                events: BTreeMap::new(),
                by_event_id: HashMap::new(),
            });
        // What DynamoDB's TTL would have deleted by now (it filters the same way on read).
        while let Some((&seq, (_, expires, _))) = s.events.first_key_value() {
            if *expires > now && s.events.len() <= MAX_EVENTS_PER_STREAM {
                break;
            }
            if let Some((_, _, id)) = s.events.remove(&seq) {
                s.by_event_id.remove(&id);
            }
        }
        f(s)
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &Stream,
        event_id: Uuid,
        render: &(dyn Fn(u64) -> String + Send + Sync),
    ) -> Result<Appended, StoreError> {
        let expires = EpochSecs::now().plus_secs(self.retention_s);
        Ok(self.with_stream(stream, |s| {
            if let Some(&seq) = s.by_event_id.get(&event_id)
                && let Some((frame, _, _)) = s.events.get(&seq)
            {
                return Appended {
                    seq,
                    epoch: s.head.epoch.clone(),
                    frame: frame.clone(),
                    repeated: true,
                };
            }
            s.head.seq += 1;
            let seq = s.head.seq;
            let frame = render(seq);
            s.events.insert(seq, (frame.clone(), expires, event_id));
            s.by_event_id.insert(event_id, seq);
            Appended {
                seq,
                epoch: s.head.epoch.clone(),
                frame,
                repeated: false,
            }
        }))
    }

    async fn head(&self, stream: &Stream) -> Result<Head, StoreError> {
        Ok(self.with_stream(stream, |s| s.head.clone()))
    }

    async fn since(
        &self,
        stream: &Stream,
        epoch: &str,
        since: u64,
    ) -> Result<(Head, Recovery), StoreError> {
        Ok(self.with_stream(stream, |s| {
            let head = s.head.clone();
            if head.epoch != epoch {
                return (head, Recovery::Reset);
            }
            let frames = s
                .events
                // Excluded, not `since + 1..`: a client's `since` may be u64::MAX.
                .range((std::ops::Bound::Excluded(since), std::ops::Bound::Unbounded))
                .take(crate::delivery::events::MAX_RECOVERED_EVENTS + 1)
                .map(|(seq, (f, _, _))| (*seq, f.clone()))
                .collect();
            let found = crate::recovery::from_frames(since, head.seq, frames);
            (head, found)
        }))
    }
}
