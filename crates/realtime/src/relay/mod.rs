//! The relay: LISTENs on `cache_invalidate` and turns the triggers' notifications into
//! broadcaster invocations (DESIGN "Postgres side").
//!
//! A reader task owns the dedicated listener connection and forwards what it hears; when the
//! connection drops it reconnects with capped backoff and, because NOTIFY has no replay, the
//! relay then sends a `resync` to every client. The coalescer batches bursts: a notification
//! that follows a quiet gap with none goes out at once (a lone commit pays no batching delay);
//! one that follows another closely opens a batch, which waits the quiet gap for more, up to a
//! 50 ms window, and sends one event per (project, resource, action): a single id in the
//! trigger form, several as `data.ids` (at most 100; beyond that the ids are left out and
//! clients refetch the whole resource).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::postgres::CHANNEL;
use realtime_client::Invoker;

/// The longest a notification waits for others to join its batch.
pub const WINDOW: Duration = Duration::from_millis(50);
/// A batch closes when no notification arrives for this long; a notification after this long
/// without one is sent at once.
pub const QUIET_GAP: Duration = Duration::from_millis(2);
/// Ids listed in one coalesced event.
pub const MAX_IDS: usize = 100;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// What the triggers send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notification {
    pub resource: String,
    pub id: String,
    pub action: String,
    pub project_id: String,
    #[serde(default)]
    pub timestamp: Option<String>,
}

enum Heard {
    /// The listener is (re)connected; `true` after a reconnect.
    Connected(bool),
    /// A notification and when the reader received it.
    Payload(String, Instant),
    Lost,
}

/// The relay: where to listen, whom to invoke.
pub struct Relay {
    pub database_url: String,
    pub invoker: Arc<dyn Invoker>,
    pub function: String,
    ready: watch::Sender<bool>,
}

impl Relay {
    pub fn new(
        database_url: impl Into<String>,
        invoker: Arc<dyn Invoker>,
        function: impl Into<String>,
    ) -> Self {
        Relay {
            database_url: database_url.into(),
            invoker,
            function: function.into(),
            ready: watch::Sender::new(false),
        }
    }

    /// `true` while the listener is connected and listening.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Run until the task is dropped or aborted.
    pub async fn run(&self) {
        let (tx, rx) = mpsc::channel::<Heard>(4096);
        let listen = listen(self.database_url.clone(), tx);
        tokio::join!(listen, self.coalesce(rx));
    }

    /// Turn what the reader heard into invocations, until the reader stops.
    async fn coalesce(&self, mut rx: mpsc::Receiver<Heard>) {
        // When the last notification arrived: one after a quiet gap is sent on its own.
        // Arrival, not processing, times: notifications queued while an invocation was
        // being made still arrived together and still coalesce.
        let mut last_heard: Option<Instant> = None;
        while let Some(heard) = rx.recv().await {
            match heard {
                Heard::Connected(reconnected) => {
                    self.ready.send_replace(true);
                    if reconnected {
                        tracing::warn!(
                            "relay reconnected: changes may have been missed; sending resync to every client"
                        );
                        self.invoke(json!({"project_id": "*", "type": "resync"}))
                            .await;
                    }
                }
                Heard::Lost => {
                    self.ready.send_replace(false);
                }
                Heard::Payload(first, heard_at) => {
                    let after_quiet = last_heard
                        .is_none_or(|t| heard_at.saturating_duration_since(t) > QUIET_GAP);
                    last_heard = Some(heard_at);
                    let mut batch = Batch::default();
                    batch.add(&first);
                    let window_ends = Instant::now() + WINDOW;
                    let mut lost = false;
                    // A notification after a quiet gap goes out alone; one that follows
                    // another closely waits for the rest of its burst.
                    if !after_quiet {
                        loop {
                            let wait = QUIET_GAP
                                .min(window_ends.saturating_duration_since(Instant::now()));
                            match tokio::time::timeout(wait, rx.recv()).await {
                                Ok(Some(Heard::Payload(p, heard_at))) => {
                                    last_heard = Some(heard_at);
                                    batch.add(&p);
                                }
                                Ok(Some(Heard::Lost)) => {
                                    lost = true;
                                    break;
                                }
                                Ok(Some(Heard::Connected(_))) | Ok(None) | Err(_) => break,
                            }
                        }
                    }
                    for payload in batch.events() {
                        self.invoke(payload).await;
                    }
                    if lost {
                        self.ready.send_replace(false);
                    }
                }
            }
        }
    }

    async fn invoke(&self, payload: Value) {
        let bytes = payload.to_string().into_bytes();
        if let Err(e) = self.invoker.invoke(&self.function, bytes, true).await {
            tracing::error!(error = %e, project_id = %payload["project_id"], "relay could not invoke the broadcaster");
        }
    }
}

/// Hold the listener connection: forward every notification, reconnect with capped backoff.
async fn listen(database_url: String, tx: mpsc::Sender<Heard>) {
    let mut connected_before = false;
    let mut delay = BACKOFF_START;
    loop {
        let listener = async {
            let mut l = PgListener::connect(&database_url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "relay cannot listen; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_CAP);
                continue;
            }
        };
        delay = BACKOFF_START;
        tracing::info!(channel = CHANNEL, "relay listening");
        if tx.send(Heard::Connected(connected_before)).await.is_err() {
            return;
        }
        connected_before = true;
        loop {
            let heard = match listener.try_recv().await {
                Ok(Some(n)) => Heard::Payload(n.payload().to_owned(), Instant::now()),
                Ok(None) | Err(_) => Heard::Lost,
            };
            let lost = matches!(heard, Heard::Lost);
            if tx.send(heard).await.is_err() {
                return;
            }
            if lost {
                tracing::warn!("relay lost its database connection");
                break;
            }
        }
    }
}

/// The broadcaster payloads the relay makes of these notifications when they arrive in one
/// burst (tests and the fuzz suite; the relay itself batches as it hears them).
#[cfg(feature = "dev")]
pub fn coalesce<'a>(notifications: impl IntoIterator<Item = &'a str>) -> Vec<Value> {
    let mut batch = Batch::default();
    for n in notifications {
        batch.add(n);
    }
    batch.events()
}

/// Notifications grouped by (project, resource, action), in order of first appearance.
#[derive(Default)]
struct Batch {
    order: Vec<(String, String, String)>,
    groups: HashMap<(String, String, String), Group>,
}

#[derive(Default)]
struct Group {
    ids: Vec<String>,
    seen: std::collections::HashSet<String>,
    timestamp: Option<String>,
}

impl Batch {
    fn add(&mut self, payload: &str) {
        let n: Notification = match serde_json::from_str(payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, payload, "malformed notification skipped");
                return;
            }
        };
        let key = (n.project_id, n.resource, n.action);
        let group = self.groups.entry(key.clone()).or_insert_with(|| {
            self.order.push(key);
            Group::default()
        });
        if group.seen.insert(n.id.clone()) {
            group.ids.push(n.id);
        }
        if n.timestamp.is_some() {
            group.timestamp = n.timestamp;
        }
    }

    /// One broadcaster payload per group; removed members in batches of at most
    /// [`MAX_IDS`], never without their ids, because the broadcaster revokes by those ids.
    fn events(mut self) -> Vec<Value> {
        let mut events = Vec::new();
        for key in self.order {
            let Some(group) = self.groups.remove(&key) else {
                continue;
            };
            let (project_id, resource, action) = key;
            let timestamp = group
                .timestamp
                .unwrap_or_else(|| crate::rfc3339(crate::epoch_millis()));
            let revocation = resource == "project_members" && action == "DELETE";
            let batches: Vec<&[String]> = if revocation {
                group.ids.chunks(MAX_IDS).collect()
            } else {
                vec![&group.ids]
            };
            for ids in batches {
                events.push(if ids.len() == 1 {
                    json!({"resource": resource, "id": ids[0], "action": action, "project_id": project_id, "timestamp": timestamp})
                } else {
                    let mut data = json!({ "timestamp": timestamp });
                    if ids.len() <= MAX_IDS {
                        data["ids"] = json!(ids);
                    }
                    json!({"project_id": project_id, "type": "cache_invalidate", "resource": resource, "action": action, "data": data})
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime_client::PublishError;
    use std::sync::Mutex;

    /// Records what the relay invokes; each invocation takes `latency` (a Lambda Invoke call
    /// takes milliseconds).
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Value>>, Duration);

    #[async_trait::async_trait]
    impl Invoker for Recorder {
        async fn invoke(
            &self,
            _function: &str,
            payload: Vec<u8>,
            _asynchronous: bool,
        ) -> Result<Option<Vec<u8>>, PublishError> {
            self.0
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&payload).unwrap());
            tokio::time::sleep(self.1).await;
            Ok(None)
        }
    }

    /// Feed `heard` to the coalescer and return what it invoked: per invocation, the single
    /// `id` or the `data.ids`. Everything is queued before it starts and the queue is closed,
    /// so it never waits: what it does follows from the arrival times alone.
    async fn relayed(heard: Vec<Heard>, latency: Duration) -> Vec<Vec<String>> {
        let recorder = Arc::new(Recorder(Mutex::default(), latency));
        let relay = Relay::new("postgres://unused", recorder.clone(), "broadcaster");
        let (tx, rx) = mpsc::channel(64);
        for h in heard {
            tx.send(h).await.unwrap();
        }
        drop(tx);
        relay.coalesce(rx).await;
        let invoked = recorder.0.lock().unwrap().clone();
        invoked
            .iter()
            .map(|v| match v.get("id") {
                Some(id) => vec![id.as_str().unwrap().to_owned()],
                None => v["data"]["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_str().unwrap().to_owned())
                    .collect(),
            })
            .collect()
    }

    fn heard(id: &str, at: Instant) -> Heard {
        Heard::Payload(note("p1", "task", id, "UPDATE"), at)
    }

    #[tokio::test]
    async fn a_notification_after_a_quiet_gap_goes_at_once_and_a_burst_coalesces() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let invoked = relayed(
            vec![
                // A lone commit: sent on its own, without waiting.
                heard("a", t0),
                // A burst after a quiet gap: its first notification goes at once, the rest (each
                // within the gap of the one before) coalesce into one event.
                heard("b", t0 + Duration::from_millis(10)),
                heard("c", t0 + Duration::from_millis(10) + us(100)),
                heard("d", t0 + Duration::from_millis(10) + us(200)),
                heard("e", t0 + Duration::from_millis(10) + us(300)),
            ],
            Duration::ZERO,
        )
        .await;
        assert_eq!(invoked, vec![vec!["a"], vec!["b"], vec!["c", "d", "e"]]);
    }

    #[tokio::test]
    async fn queued_notifications_coalesce_by_when_they_arrived_not_when_they_are_read() {
        // All heard within microseconds of each other; each invocation takes 5 ms, so the
        // coalescer reads them well after they arrived: only the first goes alone.
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let burst: Vec<Heard> = (0..50)
            .map(|i| heard(&format!("r{i}"), t0 + us(10 * i)))
            .collect();
        let invoked = relayed(burst, Duration::from_millis(5)).await;
        assert_eq!(invoked.len(), 2, "{invoked:?}");
        assert_eq!(invoked[0], vec!["r0"]);
        assert_eq!(invoked[1].len(), 49);
    }

    fn note(project: &str, resource: &str, id: &str, action: &str) -> String {
        json!({"resource": resource, "id": id, "action": action, "project_id": project, "timestamp": "t"}).to_string()
    }

    #[test]
    fn bursts_coalesce_per_project_resource_and_action() {
        let mut batch = Batch::default();
        for i in 0..3 {
            batch.add(&note("p1", "task", &format!("t{i}"), "UPDATE"));
        }
        batch.add(&note("p1", "task", "t1", "UPDATE"));
        batch.add(&note("p2", "task", "t9", "UPDATE"));
        batch.add(&note("p1", "task", "t7", "DELETE"));
        batch.add("not json");
        batch.add(r#"{"resource":"task"}"#);
        let events = batch.events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0],
            json!({"project_id": "p1", "type": "cache_invalidate", "resource": "task", "action": "UPDATE",
                   "data": {"ids": ["t0", "t1", "t2"], "timestamp": "t"}})
        );
        assert_eq!(
            events[1],
            json!({"resource": "task", "id": "t9", "action": "UPDATE", "project_id": "p2", "timestamp": "t"})
        );
        assert_eq!(events[2]["id"], "t7");
    }

    #[test]
    fn more_than_a_hundred_ids_invalidate_the_whole_resource() {
        let mut batch = Batch::default();
        for i in 0..=MAX_IDS {
            batch.add(&note("p1", "task", &format!("t{i}"), "UPDATE"));
        }
        let events = batch.events();
        assert_eq!(events.len(), 1);
        assert!(events[0]["data"].get("ids").is_none());
        assert_eq!(events[0]["data"]["timestamp"], "t");
    }

    #[test]
    fn removed_members_are_never_coalesced_past_their_ids() {
        let p = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
        let notes: Vec<String> = (0..250)
            .map(|i| {
                note(
                    p,
                    "project_members",
                    &format!("{p}:{}", uuid::Uuid::from_u128(i)),
                    "DELETE",
                )
            })
            .collect();
        let events = coalesce(notes.iter().map(String::as_str));
        let sizes: Vec<usize> = events
            .iter()
            .map(|e| e["data"]["ids"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn coalesced_events_are_valid_broadcasts() {
        let mut batch = Batch::default();
        let p = uuid::Uuid::new_v4().to_string();
        batch.add(&note(&p, "sprint", "s1", "INSERT"));
        batch.add(&note(&p, "sprint", "s2", "INSERT"));
        batch.add(&note(&p, "message", "m1", "INSERT"));
        for payload in batch.events() {
            let b = crate::wire::invocation::Broadcast::parse(&payload, uuid::Uuid::nil(), "now")
                .expect("broadcaster accepts it");
            assert_eq!(b.event.kind, "cache_invalidate");
        }
    }
}
