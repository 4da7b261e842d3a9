//! One behavioural suite for every `EventStore` adapter: each case runs against the memory
//! store and against the DynamoDB store on DynamoDB Local (DESIGN "Events table", "Sequence
//! and recovery"), and the broadcaster's use of it: nothing is delivered without a seq.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use realtime::connection::store::{Connection, Records, StoreError};
use realtime::delivery::events::{
    Appended, EventStore, Head, MAX_RECOVERED_EVENTS, Recovery, Stream,
};
use realtime::delivery::fanout::FanOut;
use realtime::delivery::sender::{ConnectionSender, PostOutcome};
use realtime::memory::{MemoryEventStore, MemoryStore};
use serde_json::{Value, json};
use uuid::Uuid;

async fn memory(retention_s: i64) -> Arc<dyn EventStore> {
    Arc::new(MemoryEventStore::new(retention_s))
}

async fn dynamodb(retention_s: i64) -> Arc<dyn EventStore> {
    let client = common::dynamo_client().await;
    let table = format!("events-{}", Uuid::new_v4());
    realtime::aws::events::create_table(&client, &table)
        .await
        .expect("create the events table on DynamoDB Local");
    Arc::new(realtime::aws::events::DynamoEventStore::new(
        client,
        table,
        retention_s,
    ))
}

fn frame(seq: u64) -> String {
    json!({"type": "task_updated", "seq": seq}).to_string()
}

async fn append(store: &dyn EventStore, stream: &Stream, id: Uuid) -> Appended {
    store.append(stream, id, &frame).await.unwrap()
}

async fn appends_are_consecutive_and_a_repeat_keeps_its_first_seq(store: Arc<dyn EventStore>) {
    let stream = Stream::project(Uuid::new_v4());
    let first = store.head(&stream).await.unwrap();
    assert_eq!(first.seq, 0, "a new stream starts at 0");
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut seqs = Vec::new();
    for id in &ids {
        let a = append(&*store, &stream, *id).await;
        assert!(!a.repeated);
        assert_eq!(a.epoch, first.epoch, "the epoch holds");
        assert_eq!(a.frame, frame(a.seq));
        seqs.push(a.seq);
    }
    assert_eq!(seqs, [1, 2, 3]);
    let again = append(&*store, &stream, ids[1]).await;
    assert_eq!(
        (again.seq, again.repeated, again.frame.as_str()),
        (2, true, frame(2).as_str())
    );
    // The repeat may use up a seq of its own (the DynamoDB adapter finds repeats by a failed
    // condition); it carries no event: the stream still recovers exactly the three.
    let head = store.head(&stream).await.unwrap();
    assert!(head.seq == 3 || head.seq == 4, "{head:?}");
    assert_eq!(head.epoch, first.epoch);
    assert_eq!(
        store.since(&stream, &head.epoch, 0).await.unwrap().1,
        Recovery::Events(vec![frame(1), frame(2), frame(3)])
    );
    // Streams are separate.
    let other = Stream::project(Uuid::new_v4());
    assert_eq!(append(&*store, &other, ids[0]).await.seq, 1);
}

async fn concurrent_appends_get_distinct_consecutive_seqs(store: Arc<dyn EventStore>) {
    let stream = Stream::project(Uuid::new_v4());
    let id_twice = Uuid::new_v4();
    let appends = (0..20).map(|i| {
        let (store, stream) = (store.clone(), stream.clone());
        let id = if i < 2 { id_twice } else { Uuid::new_v4() };
        tokio::spawn(async move { store.append(&stream, id, &frame).await.unwrap() })
    });
    let results: Vec<Appended> = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let twice: Vec<u64> = results[..2].iter().map(|a| a.seq).collect();
    assert_eq!(
        twice[0], twice[1],
        "the same event id gets one seq: {twice:?}"
    );
    let mut seqs: Vec<u64> = results[1..].iter().map(|a| a.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 19, "19 distinct events, 19 distinct seqs");
    let (stream_head, recovery) = store.since(&stream, &results[0].epoch, 0).await.unwrap();
    // Every event, in seq order, once; a seq lost to a duplicate's race carries no event.
    let Recovery::Events(frames) = recovery else {
        panic!("all within bounds: {stream_head:?}")
    };
    assert_eq!(frames.len(), 19);
    let order: Vec<u64> = frames
        .iter()
        .map(|f| {
            serde_json::from_str::<Value>(f).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

async fn since_recovers_or_resets(store: Arc<dyn EventStore>) {
    let stream = Stream::project(Uuid::new_v4());
    for _ in 0..5 {
        append(&*store, &stream, Uuid::new_v4()).await;
    }
    let epoch = store.head(&stream).await.unwrap().epoch;
    let (head, found) = store.since(&stream, &epoch, 2).await.unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(found, Recovery::Events(vec![frame(3), frame(4), frame(5)]));
    assert_eq!(
        store.since(&stream, &epoch, 5).await.unwrap().1,
        Recovery::Events(vec![]),
        "nothing missed"
    );
    assert_eq!(
        store.since(&stream, "another-epoch", 2).await.unwrap().1,
        Recovery::Reset
    );
    assert_eq!(
        store.since(&stream, &epoch, 9).await.unwrap().1,
        Recovery::Reset,
        "past the head"
    );
    for _ in 0..MAX_RECOVERED_EVENTS {
        append(&*store, &stream, Uuid::new_v4()).await;
    }
    assert_eq!(
        store.since(&stream, &epoch, 4).await.unwrap().1,
        Recovery::Reset,
        "101 missed"
    );
    assert!(matches!(
        store.since(&stream, &epoch, 5).await.unwrap().1,
        Recovery::Events(e) if e.len() == MAX_RECOVERED_EVENTS
    ));
}

/// A client chooses `since`: at the edges (0, 2^53, 2^64 - 1) with the stream's own epoch the
/// store answers (events or reset), never overflows.
async fn since_at_the_edges_answers(store: Arc<dyn EventStore>) {
    let stream = Stream::project(Uuid::new_v4());
    append(&*store, &stream, Uuid::new_v4()).await;
    let epoch = store.head(&stream).await.unwrap().epoch;
    assert_eq!(
        store.since(&stream, &epoch, 0).await.unwrap().1,
        Recovery::Events(vec![frame(1)])
    );
    for since in [1u64 << 53, u64::MAX - 1, u64::MAX] {
        let (head, found) = store.since(&stream, &epoch, since).await.unwrap();
        assert_eq!((head.seq, found), (1, Recovery::Reset), "since {since}");
    }
}

async fn events_past_retention_are_not_recovered(store: Arc<dyn EventStore>) {
    // Retention 0: every event expires as it is written (DynamoDB's TTL would delete it later;
    // reads filter it now).
    let stream = Stream::project(Uuid::new_v4());
    let epoch = store.head(&stream).await.unwrap().epoch;
    append(&*store, &stream, Uuid::new_v4()).await;
    assert_eq!(
        store.since(&stream, &epoch, 0).await.unwrap().1,
        Recovery::Reset
    );
}

macro_rules! suite {
    ($($case:ident => $retention:expr),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $case() { super::$case(super::memory($retention).await).await })*
        }
        mod dynamodb_store {
            $(#[tokio::test] async fn $case() { super::$case(super::dynamodb($retention).await).await })*
        }
    };
}

suite!(
    appends_are_consecutive_and_a_repeat_keeps_its_first_seq => 3600,
    concurrent_appends_get_distinct_consecutive_seqs => 3600,
    since_recovers_or_resets => 3600,
    since_at_the_edges_answers => 3600,
    events_past_retention_are_not_recovered => 0,
);

/// An event store that cannot be reached.
struct Down;

#[async_trait]
impl EventStore for Down {
    async fn append(
        &self,
        _: &Stream,
        _: Uuid,
        _: &(dyn Fn(u64) -> String + Send + Sync),
    ) -> Result<Appended, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn head(&self, _: &Stream) -> Result<Head, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn since(&self, _: &Stream, _: &str, _: u64) -> Result<(Head, Recovery), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[derive(Default)]
struct Counting(std::sync::Mutex<Vec<Value>>);

#[async_trait]
impl ConnectionSender for Counting {
    async fn post(&self, _: &str, payload: &[u8]) -> PostOutcome {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::from_slice(payload).unwrap());
        PostOutcome::Delivered
    }
    async fn close(&self, _: &str) -> PostOutcome {
        PostOutcome::Delivered
    }
}

#[tokio::test]
async fn the_broadcaster_delivers_with_seq_and_nothing_without_one() {
    let connections = Arc::new(MemoryStore::new());
    let project = Uuid::new_v4();
    connections
        .insert(&Connection::new(
            "c1",
            Uuid::new_v4(),
            Some(project),
            realtime::time::EpochMs::now(),
        ))
        .await
        .unwrap();
    let sender = Arc::new(Counting::default());
    let fanout = FanOut::new(connections, sender.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = json!({"project_id": project, "type": "task_updated", "data": {"id": "t1"}});

    let events = MemoryEventStore::new(3600);
    for (request, want_seq) in [("r1", 1), ("r2", 2), ("r1", 1)] {
        realtime::delivery::broadcaster::invoke(
            &fanout,
            Some(&events),
            None,
            &event,
            request,
            deadline,
        )
        .await
        .unwrap();
        let got = sender.0.lock().unwrap().pop().unwrap();
        assert_eq!(got["seq"], want_seq, "{request}: {got}");
    }

    let failed =
        realtime::delivery::broadcaster::invoke(&fanout, Some(&Down), None, &event, "r3", deadline)
            .await;
    assert!(
        failed.is_err(),
        "a store failure fails the invocation, so Lambda retries it"
    );
    assert!(
        sender.0.lock().unwrap().is_empty(),
        "and nothing was delivered"
    );
}
