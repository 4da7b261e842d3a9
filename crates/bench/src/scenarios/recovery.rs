//! What recovery costs (DESIGN "Sequence and recovery"): the append before fan-out, measured as
//! one event to 1,000 clients by the release broadcaster with the events table and without it,
//! alternated on the same clients; and `subscribe` with 100 events to recover, on DynamoDB Local,
//! through the dev server's WebSocket route. `make bench SCENARIO=recovery`; prints its figures.

use std::time::Instant;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::scenarios::compare::{CONCURRENCY, Subscribed, alternate};
use crate::scenarios::fanout::fanout_server;
use crate::stats::*;

async fn events_table() -> String {
    let sdk = realtime::runtime::config::sdk_config();
    let table = format!("bench-events-{}", Uuid::new_v4().simple());
    realtime::aws::events::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
        .await
        .expect("create the events table on DynamoDB Local");
    table
}

pub async fn run(opts: &BenchOptions) -> Value {
    let (n, rounds, subscribes) = if opts.quick {
        (100, 2, 20)
    } else {
        (1000, 15, 200)
    };
    let events = events_table().await;
    // Many subscribes from one connection: lift its message rate for the measurement.
    let server_env = [
        ("EVENTS_TABLE", events.clone()),
        ("CLIENT_MESSAGE_RATE", "1000".to_owned()),
    ];
    let (_server, addr, table) = fanout_server(&server_env);

    // 1. The append: the same broadcaster with EVENTS_TABLE and without, alternated (ABBA).
    let (tx, mut rx) = mpsc::unbounded_channel();
    let project = Uuid::new_v4();
    eprintln!("recovery: {n} clients, {rounds} alternated runs with and without the events table");
    let _clients = clients(addr, Some(project), n, Some(tx)).await;
    let broadcaster = sibling("broadcaster");
    let with = &server_env[..1]; // EVENTS_TABLE
    let target = Subscribed {
        table: &table,
        addr,
        project,
        n,
    };
    let [on_ms, off_ms] = alternate(
        [(&broadcaster, with), (&broadcaster, &[])],
        &target,
        rounds,
        &mut rx,
    )
    .await;
    let (on, off) = (median(&on_ms), median(&off_ms));
    eprintln!(
        "  append: p50 {on:.1} ms with the events table, {off:.1} ms without (+{:.1} ms)",
        on - off
    );

    // 2. subscribe with 100 events to recover.
    let (p50, p99) = recovering_subscribes(addr, &events, subscribes).await;

    let result = json!({
        "date": realtime::rfc3339(realtime::time::EpochMs::now()),
        "clients": n, "rounds": rounds, "concurrency": CONCURRENCY, "post_latency_ms": 20,
        "append": {"with_events_table_runs_ms": on_ms, "without_runs_ms": off_ms,
                   "with_p50_ms": on, "without_p50_ms": off, "added_p50_ms": on - off},
        "subscribe_recovering_100": {"runs": subscribes, "p50_ms": p50, "p99_ms": p99},
    });
    result
}

/// `subscribes` subscribes of one client, each recovering 100 events of a stream appended to
/// the events table `events` first: their (p50, p99) ms.
async fn recovering_subscribes(
    addr: std::net::SocketAddr,
    events: &str,
    subscribes: usize,
) -> (f64, f64) {
    let stream_project = Uuid::new_v4();
    let sdk = realtime::runtime::config::sdk_config();
    let store = realtime::aws::events::DynamoEventStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        events.to_owned(),
        86_400,
    );
    use realtime::delivery::events::{EventStore, Stream};
    let stream = Stream::project(stream_project);
    let render = |seq: u64| {
        json!({"type": "task_updated", "project_id": stream_project, "seq": seq,
               "data": {"id": Uuid::new_v4(), "title": "a task of ordinary size", "status": "in_progress"},
               "event_id": Uuid::new_v4(), "timestamp": "2026-11-26T00:00:00.000Z"})
        .to_string()
    };
    for _ in 0..100 {
        store
            .append(&stream, Uuid::new_v4(), &render)
            .await
            .expect("append");
    }
    let head = store.head(&stream).await.expect("head");
    let ws = open(addr, &format!("/?token={}", token(Uuid::new_v4())), 9)
        .await
        .expect("a client");
    let (mut sink, mut frames) = ws.split();
    let ask = json!({"action": "subscribe", "project_id": stream_project,
                     "since": head.seq - 100, "epoch": head.epoch})
    .to_string();
    let mut times = Vec::new();
    for _ in 0..subscribes {
        let sent = Instant::now();
        sink.send(Message::text(ask.clone())).await.expect("send");
        let reply = loop {
            match frames.next().await {
                Some(Ok(Message::Text(t))) => break serde_json::from_str::<Value>(&t).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("no reply: {other:?}"),
            }
        };
        times.push(ms(sent.elapsed()));
        assert_eq!(
            reply["recovered"].as_array().map(Vec::len),
            Some(100),
            "100 recovered: {reply}"
        );
    }
    let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
    eprintln!(
        "  subscribe with 100 recovered: p50 {p50:.1} ms, p99 {p99:.1} ms ({subscribes} subscribes)"
    );
    (p50, p99)
}
