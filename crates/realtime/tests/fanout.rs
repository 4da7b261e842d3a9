//! The fan-out engine against a scripted sender: what is retried, what is removed, what is
//! never touched, how many posts run at once, and that posting starts before paging ends.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use realtime::backoff::Backoff;
use realtime::connection::store::{
    Connection, ConnectionStore, Listings, Records, StoreError, reconnect_minute,
};
use realtime::delivery::fanout::{FanOut, Summary};
use realtime::delivery::sender::{ConnectionSender, PostOutcome};
use realtime::memory::MemoryStore;
use realtime::realtime_client::{EventType, Invocation, Invoker, PublishError, Publisher};
use realtime::time::{EpochMs, EpochSecs};
use realtime::wire::invocation::Broadcast;
use serde_json::{Value, json};
use uuid::Uuid;

/// When the test's connections opened: a minute ago, past the fan-out's connecting grace (a
/// 410 from a younger one is not taken as gone).
fn opened() -> EpochMs {
    EpochMs::now().minus_ms(60_000)
}

/// A sender that answers from a script per connection (default: delivered), and records.
#[derive(Default)]
struct Scripted {
    /// Outcomes to give, in order, before answering Delivered.
    script: Mutex<HashMap<String, Vec<PostOutcome>>>,
    delivered: Mutex<Vec<(String, Value)>>,
    /// Connections closed (`DeleteConnection`), in order.
    closed: Mutex<Vec<String>>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Always answer this (overrides the script).
    always: Option<PostOutcome>,
    latency: Duration,
}

impl Scripted {
    fn script(&self, id: &str, outcomes: Vec<PostOutcome>) {
        self.script.lock().unwrap().insert(id.to_owned(), outcomes);
    }
    fn delivered_ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self
            .delivered
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

#[async_trait]
impl ConnectionSender for Scripted {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> PostOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(outcome) = &self.always {
            return outcome.clone();
        }
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(connection_id)
            .and_then(|s| (!s.is_empty()).then(|| s.remove(0)));
        let outcome = next.unwrap_or(PostOutcome::Delivered);
        if outcome == PostOutcome::Delivered {
            self.delivered.lock().unwrap().push((
                connection_id.to_owned(),
                serde_json::from_slice(payload).unwrap(),
            ));
        }
        outcome
    }

    async fn close(&self, connection_id: &str) -> PostOutcome {
        self.closed.lock().unwrap().push(connection_id.to_owned());
        PostOutcome::Delivered
    }
}

fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    }
}

async fn project_with(store: &dyn ConnectionStore, n: usize) -> (Uuid, Vec<String>) {
    let project = Uuid::new_v4();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("c{i:04}");
        store
            .insert(&Connection::new(
                &id,
                Uuid::new_v4(),
                Some(project),
                opened(),
            ))
            .await
            .unwrap();
        ids.push(id);
    }
    (project, ids)
}

fn event(project: Uuid, extra: Value) -> Broadcast {
    let mut payload = json!({"project_id": project, "type": "task_updated", "data": {"id": "t1"}});
    payload
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Broadcast::parse(&payload, Uuid::new_v4(), "2026-11-22T05:00:00.000Z").unwrap()
}

/// Deliver `b` (its event, or its `cache_invalidate` when too large) to its audience, as the
/// broadcaster does once it has the frame.
async fn broadcast(
    fanout: &FanOut,
    b: &Broadcast,
    deadline: Instant,
) -> Result<Summary, StoreError> {
    let frame = realtime::delivery::fanout::deliverable(&b.event);
    let to = fanout.recipients(&b.audience);
    let exclude = b.exclude_connection_id.as_deref();
    Ok(fanout
        .deliver(to, frame.as_bytes(), exclude, deadline)
        .await?
        .summary)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn delivers_to_every_live_subscriber_but_the_excluded_one() {
    let store = Arc::new(MemoryStore::with_page_size(7));
    let (project, ids) = project_with(&*store, 30).await;
    store
        .insert(&Connection::new(
            "other",
            Uuid::new_v4(),
            Some(Uuid::new_v4()),
            opened(),
        ))
        .await
        .unwrap();
    let expired = Connection::new(
        "expired",
        Uuid::new_v4(),
        Some(project),
        EpochMs::now().minus_ms(25 * 3600 * 1000),
    );
    store.insert(&expired).await.unwrap();
    let sender = Arc::new(Scripted::default());
    let fanout = FanOut::new(store.clone(), sender.clone());
    let summary = broadcast(
        &fanout,
        &event(project, json!({"exclude_connection_id": "c0003"})),
        soon(),
    )
    .await
    .unwrap();
    assert_eq!(
        summary,
        Summary {
            recipients: 29,
            delivered: 29,
            gone: 0,
            failed: 0,
            ..Summary::default()
        }
    );
    let want: Vec<_> = ids.iter().filter(|id| *id != "c0003").cloned().collect();
    assert_eq!(sender.delivered_ids(), want);
    let (_, body) = &sender.delivered.lock().unwrap()[0];
    assert_eq!(body["type"], "task_updated");
    assert_eq!(body["project_id"], json!(project));
    assert!(body["event_id"].is_string() && body["timestamp"].is_string());
}

#[tokio::test]
async fn retries_throttles_and_server_errors_and_removes_only_the_gone() {
    let store = Arc::new(MemoryStore::new());
    let (project, ids) = project_with(&*store, 6).await;
    let sender = Arc::new(Scripted::default());
    sender.script(
        "c0000",
        vec![PostOutcome::Throttled, PostOutcome::Throttled],
    );
    sender.script("c0001", vec![PostOutcome::Retry("HTTP 500".into())]);
    sender.script("c0002", vec![PostOutcome::Gone]);
    sender.script("c0003", vec![PostOutcome::Failed("403 Forbidden".into())]);
    sender.script(
        "c0004",
        vec![PostOutcome::Retry("timeout".into()), PostOutcome::Gone],
    );
    let fanout = FanOut::new(store.clone(), sender.clone()).with_backoff(fast());
    let summary = broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!(
        summary,
        Summary {
            recipients: 6,
            delivered: 3,
            gone: 2,
            failed: 1,
            throttled: 2,
            ..Summary::default()
        }
    );
    assert_eq!(sender.delivered_ids(), vec!["c0000", "c0001", "c0005"]);
    for id in &ids {
        let kept = store.get(id).await.unwrap().is_some();
        assert_eq!(
            kept,
            id != "c0002" && id != "c0004",
            "{id}: only 410s are removed"
        );
    }
}

/// A 410 from a connection opened moments ago may mean its `$connect` has not returned yet:
/// it is kept (and counted failed); the same answer from an older one removes it.
#[tokio::test]
async fn a_410_from_a_connection_still_connecting_keeps_it() {
    let store = Arc::new(MemoryStore::new());
    let project = Uuid::new_v4();
    let now = EpochMs::now();
    for (id, at) in [
        ("young", now.minus_ms(1_000)),
        ("old", now.minus_ms(60_000)),
    ] {
        let c = Connection::new(id, Uuid::new_v4(), Some(project), at);
        store.insert(&c).await.unwrap();
    }
    let sender = Arc::new(Scripted::default());
    sender.script("young", vec![PostOutcome::Gone]);
    sender.script("old", vec![PostOutcome::Gone]);
    let fanout = FanOut::new(store.clone(), sender.clone());
    let summary = broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!((summary.gone, summary.failed), (1, 1), "{summary:?}");
    assert!(store.get("young").await.unwrap().is_some());
    assert!(store.get("old").await.unwrap().is_none());
}

/// A post that hangs longer than the time left (the SDK's attempt timeout is 3 s) still ends
/// at the deadline: the invocation returns before Lambda's timeout.
#[tokio::test]
async fn a_hanging_post_ends_at_the_deadline() {
    let store = Arc::new(MemoryStore::new());
    let (project, ids) = project_with(&*store, 5).await;
    let sender = Arc::new(Scripted {
        latency: Duration::from_secs(3),
        ..Default::default()
    });
    let fanout = FanOut::new(store.clone(), sender.clone());
    let began = Instant::now();
    let summary = broadcast(
        &fanout,
        &event(project, json!({})),
        Instant::now() + Duration::from_millis(200),
    )
    .await
    .unwrap();
    assert!(
        began.elapsed() < Duration::from_millis(1500),
        "returned {:?} after a 200 ms deadline",
        began.elapsed()
    );
    assert_eq!(
        (summary.recipients, summary.delivered, summary.failed),
        (5, 0, 5)
    );
    for id in &ids {
        assert!(store.get(id).await.unwrap().is_some(), "kept");
    }
}

#[tokio::test]
async fn gives_up_at_the_deadline_and_keeps_the_connection() {
    let store = Arc::new(MemoryStore::new());
    let (project, ids) = project_with(&*store, 3).await;
    let sender = Arc::new(Scripted {
        always: Some(PostOutcome::Retry("429".into())),
        ..Default::default()
    });
    let fanout = FanOut::new(store.clone(), sender.clone()).with_backoff(Backoff {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(40),
    });
    let began = Instant::now();
    let summary = broadcast(
        &fanout,
        &event(project, json!({})),
        Instant::now() + Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert_eq!(
        summary,
        Summary {
            recipients: 3,
            delivered: 0,
            gone: 0,
            failed: 3,
            ..Summary::default()
        }
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "stops at the deadline"
    );
    assert!(
        sender.calls.load(Ordering::SeqCst) > 3,
        "retried before giving up"
    );
    for id in &ids {
        assert!(
            store.get(id).await.unwrap().is_some(),
            "a throttled connection is never evicted"
        );
    }
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let store = Arc::new(MemoryStore::with_page_size(50));
    let (project, _) = project_with(&*store, 300).await;
    let sender = Arc::new(Scripted {
        latency: Duration::from_millis(5),
        ..Default::default()
    });
    let fanout = FanOut::new(store, sender.clone()).with_concurrency(16);
    let summary = broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!(summary.delivered, 300);
    let max = sender.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 16, "at most 16 posts at once, saw {max}");
    assert!(max >= 8, "posts do run concurrently, saw {max}");
}

struct Notifying(Arc<tokio::sync::Notify>);

#[async_trait]
impl ConnectionSender for Notifying {
    async fn post(&self, _: &str, _: &[u8]) -> PostOutcome {
        self.0.notify_one();
        PostOutcome::Delivered
    }
    async fn close(&self, _: &str) -> PostOutcome {
        PostOutcome::Delivered
    }
}

/// What the test below relies on: the store's second page waits for the notification.
#[tokio::test]
async fn the_gated_store_holds_its_second_page_until_notified() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let store = MemoryStore::with_page_size(10).with_second_page_after(gate.clone());
    let (project, _) = project_with(&store, 25).await;
    let mut pages = store.project_subscribers(project);
    assert_eq!(pages.next().await.unwrap().unwrap().len(), 10);
    let early = tokio::time::timeout(Duration::from_millis(200), pages.next()).await;
    assert!(early.is_err(), "the second page waits for the notification");
    gate.notify_one();
    assert_eq!(pages.next().await.unwrap().unwrap().len(), 10);
}

#[tokio::test]
async fn posting_starts_before_the_last_page_is_read() {
    let posted = Arc::new(tokio::sync::Notify::new());
    // The second page waits for a post: an engine that read every page first would hang.
    let store = Arc::new(MemoryStore::with_page_size(10).with_second_page_after(posted.clone()));
    let (project, _) = project_with(&*store, 25).await;
    let fanout = FanOut::new(store, Arc::new(Notifying(posted)));
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        broadcast(&fanout, &event(project, json!({})), soon()),
    )
    .await
    .expect("fan-out must post while paging")
    .unwrap();
    assert_eq!(summary.delivered, 25);
}

#[tokio::test]
async fn oversized_events_go_out_as_cache_invalidate() {
    let store = Arc::new(MemoryStore::new());
    let (project, _) = project_with(&*store, 2).await;
    let sender = Arc::new(Scripted::default());
    let fanout = FanOut::new(store, sender.clone());
    let big = json!({"data": {"id": "t-9", "blob": "x".repeat(200 * 1024)}});
    let summary = broadcast(&fanout, &event(project, big), soon())
        .await
        .unwrap();
    assert_eq!(summary.delivered, 2);
    for (_, body) in sender.delivered.lock().unwrap().iter() {
        assert_eq!(body["type"], "cache_invalidate");
        assert_eq!(
            (body["resource"].as_str(), body["action"].as_str()),
            (Some("task"), Some("UPDATE"))
        );
        assert_eq!(body["data"]["id"], "t-9");
    }
}

/// The sweeper's minute: the hint reaches exactly the connections due now, whatever their
/// project, and nobody else.
#[tokio::test]
async fn the_sweep_hints_only_the_connections_due_this_minute() {
    let store = Arc::new(MemoryStore::with_page_size(4));
    let now = EpochMs::now();
    // 1 h 55 min ago (due now), 1 h 50 min ago, and just now.
    let due_at = now.minus_ms((2 * 3600 - 5 * 60) * 1000);
    let mut due = Vec::new();
    for i in 0..9 {
        let project = (i % 2 == 0).then(Uuid::new_v4);
        let id = format!("due{i}");
        store
            .insert(&Connection::new(&id, Uuid::new_v4(), project, due_at))
            .await
            .unwrap();
        due.push(id);
    }
    for (id, at) in [("later", now.minus_ms(110 * 60 * 1000)), ("fresh", now)] {
        store
            .insert(&Connection::new(id, Uuid::new_v4(), None, at))
            .await
            .unwrap();
    }
    let sender = Arc::new(Scripted::default());
    sender.script("due3", vec![PostOutcome::Gone]);
    let fanout = FanOut::new(store.clone(), sender.clone());
    // The minute of `due_at + 1 h 55 min`, as the schedule would run it.
    let run_at = EpochMs(reconnect_minute(due_at) * 60_000 + 1_000);
    let result = realtime::delivery::sweeper::sweep(&fanout, None, run_at, soon())
        .await
        .unwrap();
    assert_eq!(
        (
            result["recipients"].as_u64(),
            result["delivered"].as_u64(),
            result["gone"].as_u64()
        ),
        (Some(9), Some(8), Some(1))
    );
    due.retain(|id| id != "due3");
    assert_eq!(sender.delivered_ids(), due);
    for (_, frame) in sender.delivered.lock().unwrap().iter() {
        assert_eq!(
            frame,
            &json!({"type": "reconnect", "reason": "max_duration"})
        );
    }
    assert!(
        store.get("due3").await.unwrap().is_none(),
        "a 410 removes the connection"
    );
}

/// A connection the sweep's hint finds gone has left its project: with presence on, the
/// project's other connections hear `offline` (and nobody else hears anything).
#[tokio::test]
async fn a_connection_the_sweep_finds_gone_goes_offline_in_its_project() {
    let store = Arc::new(MemoryStore::new());
    let now = EpochMs::now();
    let due_at = now.minus_ms((2 * 3600 - 5 * 60) * 1000);
    let (project, elsewhere) = (Uuid::new_v4(), Uuid::new_v4());
    let (leaving, staying) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, user, project, at) in [
        ("due", leaving, project, due_at),
        ("other", staying, project, now),
        ("stranger", Uuid::new_v4(), elsewhere, now),
    ] {
        store
            .insert(&Connection::new(id, user, Some(project), at))
            .await
            .unwrap();
    }
    let sender = Arc::new(Scripted::default());
    sender.script("due", vec![PostOutcome::Gone]);
    let fanout = Arc::new(FanOut::new(store.clone(), sender.clone()));
    let presence = realtime::delivery::presence::Presence::new(fanout.clone(), 100);
    let run_at = EpochMs(reconnect_minute(due_at) * 60_000 + 1_000);
    let result = realtime::delivery::sweeper::sweep(&fanout, Some(&presence), run_at, soon())
        .await
        .unwrap();
    assert_eq!(result["gone"], 1);
    let offline =
        json!({"type": "presence", "project_id": project, "user_id": leaving, "state": "offline"});
    assert_eq!(
        *sender.delivered.lock().unwrap(),
        vec![("other".to_owned(), offline)]
    );
}

/// `$disconnect` of a user's last connection in a project announces it offline at once, with
/// no wait inside (it ran 3 s when it debounced; on the memory store it takes microseconds).
/// The receivers debounce (DESIGN "Presence, typing, direct messages").
#[tokio::test]
async fn disconnect_announces_the_last_tab_offline_without_waiting() {
    use realtime::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    let store = Arc::new(MemoryStore::new());
    let project = Uuid::new_v4();
    let (leaving, staying) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, user) in [("tab1", leaving), ("tab2", leaving), ("other", staying)] {
        store
            .insert(&Connection::new(id, user, Some(project), opened()))
            .await
            .unwrap();
    }
    let sender = Arc::new(Scripted::default());
    let fanout = Arc::new(FanOut::new(store.clone(), sender.clone()));
    let presence = realtime::delivery::presence::Presence::new(fanout.clone(), 100);
    assert!(
        presence
            .joined("tab1", leaving, project, false)
            .await
            .is_some()
    );
    sender.delivered.lock().unwrap().clear();
    let disconnect = |id: &str| {
        let mut request = ApiGatewayWebsocketProxyRequest::default();
        request.request_context.route_key = Some("$disconnect".to_owned());
        request.request_context.connection_id = Some(id.to_owned());
        request
    };
    let started = Instant::now();
    realtime::connection::lifecycle::on_disconnect(&*store, Some(&presence), &disconnect("tab1"))
        .await;
    assert!(
        sender.delivered.lock().unwrap().is_empty(),
        "the user still has tab2 there"
    );
    realtime::connection::lifecycle::on_disconnect(&*store, Some(&presence), &disconnect("tab2"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "$disconnect waited {:?}",
        started.elapsed()
    );
    let offline =
        json!({"type": "presence", "project_id": project, "user_id": leaving, "state": "offline"});
    assert_eq!(
        *sender.delivered.lock().unwrap(),
        vec![("other".to_owned(), offline)]
    );
}

#[tokio::test]
async fn resync_reaches_every_connection() {
    let store = Arc::new(MemoryStore::with_page_size(3));
    for (i, project) in [Some(Uuid::new_v4()), Some(Uuid::new_v4()), None]
        .into_iter()
        .cycle()
        .take(10)
        .enumerate()
    {
        store
            .insert(&Connection::new(
                format!("r{i}"),
                Uuid::new_v4(),
                project,
                opened(),
            ))
            .await
            .unwrap();
    }
    let expired = Connection::new(
        "gone",
        Uuid::new_v4(),
        None,
        EpochMs::now().minus_ms(25 * 3600 * 1000),
    );
    store.insert(&expired).await.unwrap();
    let sender = Arc::new(Scripted::default());
    let fanout = FanOut::new(store, sender.clone());
    let resync = Broadcast::parse(
        &json!({"project_id": "*", "type": "resync"}),
        Uuid::new_v4(),
        "now",
    )
    .unwrap();
    assert_eq!(
        broadcast(&fanout, &resync, soon()).await.unwrap().delivered,
        10,
        "every live connection, subscribed or not"
    );
    assert!(!sender.delivered_ids().contains(&"gone".to_owned()));
}

#[tokio::test]
async fn dynamodb_removes_gone_connections_in_batches() {
    let (store, client, table) = common::dynamo_store().await;
    let (project, _) = project_with(&*store, 60).await;
    let sender = Arc::new(Scripted::default());
    for i in 0..53 {
        sender.script(&format!("c{i:04}"), vec![PostOutcome::Gone]);
    }
    let fanout = FanOut::new(store, sender.clone());
    let summary = broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!(
        summary,
        Summary {
            recipients: 60,
            delivered: 7,
            gone: 53,
            failed: 0,
            ..Summary::default()
        }
    );
    assert_eq!(common::count_items(&client, &table).await, 7);
}

/// Records invocations instead of calling Lambda.
#[derive(Default)]
struct RecordingInvoker(Mutex<Vec<(String, Value, bool)>>);

#[async_trait]
impl Invoker for RecordingInvoker {
    async fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Option<Vec<u8>>, PublishError> {
        self.0.lock().unwrap().push((
            function.to_owned(),
            serde_json::from_slice(&payload).unwrap(),
            asynchronous,
        ));
        Ok(None)
    }
}

#[tokio::test]
async fn the_client_invokes_asynchronously_with_an_event_id() {
    let invoker = Arc::new(RecordingInvoker::default());
    let client = Publisher::new(invoker.clone(), Some("broadcaster".into()));
    let project = Uuid::new_v4();
    let mut invocation = Invocation::new(project, EventType::MessageCreated, json!({"id": "m1"}));
    invocation.exclude_connection_id = Some("conn=".into());
    let id = client.publish_invocation(invocation).await.unwrap();
    let calls = invoker.0.lock().unwrap();
    let (function, payload, asynchronous) = &calls[0];
    assert_eq!((function.as_str(), *asynchronous), ("broadcaster", true));
    assert_eq!(
        payload,
        &json!({"project_id": project, "type": "message_created", "data": {"id": "m1"}, "event_id": id, "exclude_connection_id": "conn="})
    );
    // What the client sends is what the broadcaster accepts.
    let parsed = Broadcast::parse(payload, Uuid::nil(), "now").unwrap();
    assert_eq!(parsed.event.event_id, id);
}

#[tokio::test]
async fn the_client_refuses_oversized_payloads_before_invoking() {
    let invoker = Arc::new(RecordingInvoker::default());
    let client = Publisher::new(invoker.clone(), Some("broadcaster".into()));
    let big = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let err = client
        .try_publish(Invocation::new(
            Uuid::new_v4(),
            EventType::TaskUpdated,
            big.clone(),
        ))
        .await
        .unwrap_err();
    // The publishing call itself never fails the caller: it logs and returns no event id.
    assert_eq!(
        client
            .publish(Uuid::new_v4(), EventType::TaskUpdated, big)
            .await,
        None
    );
    assert!(matches!(err, PublishError::TooLarge(n) if n > 2 * 1024 * 1024));
    assert!(invoker.0.lock().unwrap().is_empty(), "nothing was invoked");
}

/// A direct message over what one frame holds is refused at publish, before any invoke (the
/// broadcaster would refuse it too: it has no smaller form).
#[tokio::test]
async fn the_client_refuses_a_direct_message_over_the_frame_limit() {
    let invoker = Arc::new(RecordingInvoker::default());
    let client = Publisher::new(invoker.clone(), Some("broadcaster".into()));
    let big = json!({"text": "x".repeat(200 * 1024)});
    let err = client
        .try_publish(Invocation::direct(Uuid::new_v4(), big.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PublishError::DirectMessageTooLarge(n) if n > 200 * 1024),
        "{err}"
    );
    assert!(err.to_string().contains("direct message"), "{err}");
    assert_eq!(client.direct_message(Uuid::new_v4(), big).await, None);
    assert!(invoker.0.lock().unwrap().is_empty(), "nothing was invoked");
    let small = client
        .direct_message(Uuid::new_v4(), json!({"text": "hi"}))
        .await;
    assert!(small.is_some() && invoker.0.lock().unwrap().len() == 1);
}

#[tokio::test]
async fn without_a_function_name_the_client_does_nothing() {
    let invoker = Arc::new(RecordingInvoker::default());
    let client = Publisher::new(invoker.clone(), None);
    assert_eq!(
        client
            .try_publish(Invocation::new(
                Uuid::new_v4(),
                EventType::Custom("note_pinned".into()),
                json!({})
            ))
            .await,
        Ok(None)
    );
    assert!(invoker.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_connection_past_its_token_gets_token_expired_and_is_closed_never_the_event() {
    let store = Arc::new(MemoryStore::new());
    let (project, _) = project_with(&*store, 3).await;
    let now = EpochSecs::now();
    let stale = Connection::new("stale", Uuid::new_v4(), Some(project), opened())
        .with_token_exp(now.minus_secs(1));
    store.insert(&stale).await.unwrap();
    let sender = Arc::new(Scripted::default());
    let fanout = FanOut::new(store.clone(), sender.clone());
    let summary = broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!((summary.delivered, summary.expired), (3, 1), "{summary:?}");
    let to_stale: Vec<Value> = sender
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| id == "stale")
        .map(|(_, frame)| frame.clone())
        .collect();
    assert_eq!(to_stale.len(), 1, "one frame, not the event: {to_stale:?}");
    assert_eq!(
        (&to_stale[0]["type"], &to_stale[0]["code"]),
        (&json!("error"), &json!("token_expired"))
    );
    assert_eq!(*sender.closed.lock().unwrap(), vec!["stale".to_owned()]);
    assert_eq!(store.get("stale").await.unwrap(), None, "its item is gone");

    // The next broadcast finds nothing to expire: it was told once.
    let again = broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!((again.delivered, again.expired), (3, 0));
    assert_eq!(sender.closed.lock().unwrap().len(), 1);
}

async fn member(store: &dyn ConnectionStore, id: &str, user: Uuid, project: Option<Uuid>) {
    store
        .insert(&Connection::new(id, user, project, opened()))
        .await
        .unwrap();
}

#[tokio::test]
async fn removing_a_member_delivers_the_event_then_ends_their_subscriptions() {
    let store = Arc::new(MemoryStore::new());
    let (project, other_project) = (Uuid::new_v4(), Uuid::new_v4());
    let (removed, kept) = (Uuid::new_v4(), Uuid::new_v4());
    member(&*store, "r1", removed, Some(project)).await;
    member(&*store, "r2", removed, Some(project)).await;
    member(&*store, "r3", removed, Some(other_project)).await;
    member(&*store, "k1", kept, Some(project)).await;
    let sender = Arc::new(Scripted::default());
    let fanout = FanOut::new(store.clone(), sender.clone());
    let removal =
        json!({"project_id": project, "type": "member_removed", "data": {"user_id": removed}});
    let result =
        realtime::delivery::broadcaster::invoke(&fanout, None, None, &removal, "req-1", soon())
            .await
            .unwrap();
    assert_eq!(
        (&result["delivered"], &result["revoked"]),
        (&json!(3), &json!(2))
    );
    let frames = sender.delivered.lock().unwrap().clone();
    for id in ["r1", "r2"] {
        let theirs: Vec<&Value> = frames
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(theirs.len(), 2, "{id}: the event, then the notice");
        assert_eq!(theirs[0]["type"], "member_removed");
        assert_eq!(
            *theirs[1],
            json!({"type": "unsubscribed", "project_id": project, "reason": "membership_revoked"})
        );
    }
    assert!(
        frames.iter().all(|(c, _)| c != "r3"),
        "another project is untouched"
    );
    assert_eq!(ids_in(&*store, project).await, vec!["k1"]);
    assert_eq!(ids_in(&*store, other_project).await, vec!["r3"]);

    // Nothing of the project reaches the removed member afterwards.
    sender.delivered.lock().unwrap().clear();
    broadcast(&fanout, &event(project, json!({})), soon())
        .await
        .unwrap();
    assert_eq!(sender.delivered_ids(), vec!["k1"]);
}

#[tokio::test]
async fn a_project_members_delete_from_the_trigger_revokes_each_named_member() {
    let store = Arc::new(MemoryStore::new());
    let project = Uuid::new_v4();
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (i, u) in users.iter().enumerate() {
        member(&*store, &format!("c{i}"), *u, Some(project)).await;
    }
    let sender = Arc::new(Scripted::default());
    let fanout = FanOut::new(store.clone(), sender.clone());
    // One row, as the trigger sends it; then two coalesced by the relay.
    let one = json!({"resource": "project_members", "id": format!("{project}:{}", users[0]),
                     "action": "DELETE", "project_id": project, "timestamp": "t"});
    let two = json!({"project_id": project, "type": "cache_invalidate", "resource": "project_members",
                     "action": "DELETE", "data": {"ids": [format!("{project}:{}", users[1]),
                     format!("{project}:{}", users[2])], "timestamp": "t"}});
    let first = realtime::delivery::broadcaster::invoke(&fanout, None, None, &one, "r1", soon())
        .await
        .unwrap();
    assert_eq!(first["revoked"], 1);
    assert_eq!(ids_in(&*store, project).await, vec!["c1", "c2"]);
    let second = realtime::delivery::broadcaster::invoke(&fanout, None, None, &two, "r2", soon())
        .await
        .unwrap();
    assert_eq!(second["revoked"], 2);
    assert!(ids_in(&*store, project).await.is_empty());
    // An INSERT of a member revokes nothing.
    member(&*store, "c9", users[0], Some(project)).await;
    let insert = json!({"resource": "project_members", "id": format!("{project}:{}", users[0]),
                        "action": "INSERT", "project_id": project, "timestamp": "t"});
    let third = realtime::delivery::broadcaster::invoke(&fanout, None, None, &insert, "r3", soon())
        .await
        .unwrap();
    assert_eq!(third["revoked"], 0);
    assert_eq!(ids_in(&*store, project).await, vec!["c9"]);
}

async fn ids_in(store: &dyn ConnectionStore, project: Uuid) -> Vec<String> {
    let mut ids: Vec<String> = store
        .project_subscribers(project)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|p| p.unwrap())
        .map(|s| s.connection_id)
        .collect();
    ids.sort();
    ids
}

/// Removing gone connections may outlast the posts' deadline by `CLEANUP_GRACE` only: a store
/// that hangs then cannot make the invocation run into Lambda's timeout.
#[tokio::test]
async fn a_hanging_clean_up_ends_within_the_grace_after_the_deadline() {
    use realtime::delivery::fanout::CLEANUP_GRACE;
    let store = Arc::new(MemoryStore::new().with_hanging_removes());
    let (project, _) = project_with(&*store, 3).await;
    let sender = Arc::new(Scripted::default());
    for i in 0..3 {
        sender.script(&format!("c{i:04}"), vec![PostOutcome::Gone]);
    }
    let fanout = FanOut::new(store, sender);
    let deadline = Instant::now() + Duration::from_millis(200);
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        broadcast(&fanout, &event(project, json!({})), deadline),
    )
    .await
    .expect("the clean-up is bounded")
    .unwrap();
    assert_eq!(summary.gone, 3);
    let over = Instant::now().saturating_duration_since(deadline);
    assert!(
        over < CLEANUP_GRACE + Duration::from_millis(300),
        "{over:?} past the deadline"
    );
    assert!(
        over >= CLEANUP_GRACE - Duration::from_millis(50),
        "it did wait for the store: {over:?}"
    );
}
