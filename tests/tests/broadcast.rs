//! The broadcaster through the dev server's Lambda Invoke API, called with the real
//! `aws-sdk-lambda` client, posting through the dev server's Management API to real
//! WebSocket clients, with connections on DynamoDB Local.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use devserver::Running;
use devserver::cli::{Delivery, StoreKind};
use e2e::dev::*;
use futures::StreamExt;
use realtime::connection::store::Connection;
use realtime::time::EpochMs;
use serde_json::{Value, json};
use uuid::Uuid;

/// `n` clients of `project`, with their connection ids, in connection order.
async fn clients(server: &Running, project: Uuid, n: usize) -> Vec<(Ws, String)> {
    let made: Vec<(Ws, Uuid)> = futures::stream::iter(0..n)
        .map(|_| client(server, project))
        .buffered(64)
        .collect()
        .await;
    let ids: HashMap<Uuid, String> = connections_of(&server.app, project)
        .await
        .into_iter()
        .collect();
    made.into_iter()
        .map(|(ws, user)| (ws, ids[&user].clone()))
        .collect()
}

fn summary(recipients: usize, delivered: usize, gone: usize, failed: usize) -> Value {
    json!({"recipients": recipients, "delivered": delivered, "gone": gone, "failed": failed, "expired": 0, "revoked": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_handlers_payload_reaches_everyone_but_the_excluded_client() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let (project, elsewhere) = (Uuid::new_v4(), Uuid::new_v4());
    let mut members = clients(&server, project, 4).await;
    let (mut outsider, _) = client(&server, elsewhere).await;
    let excluded = members[0].1.clone();
    let data = json!({"id": "5b1c0d9e-0000-4000-8000-000000000001", "content": "hello", "user_id": Uuid::new_v4()});
    // Exactly what the Go handlers send.
    let go_payload = json!({"projectId": project, "type": "message_created", "data": data, "exclude_connection_id": excluded});

    assert_eq!(
        invoke_broadcaster(&server, &go_payload).await,
        summary(3, 3, 0, 0)
    );
    let mut event_ids = HashSet::new();
    for (ws, _) in &mut members[1..] {
        let event = recv(ws).await;
        assert_eq!(event["type"], "message_created");
        assert_eq!(event["project_id"], json!(project));
        assert_eq!(event["data"], data);
        event_ids.insert(
            Uuid::parse_str(event["event_id"].as_str().unwrap()).expect("event_id is a UUID"),
        );
        let timestamp = event["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "RFC 3339: {timestamp}"
        );
    }
    assert_eq!(event_ids.len(), 1, "one event id per broadcast");
    nothing_pending(&mut members[0].0).await;
    nothing_pending(&mut outsider).await;

    // Asynchronous invocation (what handlers do): 202 at once, delivered in the background.
    let out = lambda(&server)
        .invoke()
        .function_name("broadcaster")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(go_payload.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 202);
    for (ws, _) in &mut members[1..] {
        assert_eq!(recv(ws).await["data"], data);
    }
    nothing_pending(&mut members[0].0).await;

    let missing = lambda(&server)
        .invoke()
        .function_name("nope")
        .payload(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .into_service_error()
            .is_resource_not_found_exception()
    );
    let invalid = invoke_broadcaster(
        &server,
        &json!({"projectId": "not-a-uuid", "type": "message_created"}),
    )
    .await;
    assert_eq!(
        invalid["error"]["field"], "project_id",
        "invalid input is answered, not retried"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_five_hundred_connections_over_many_pages_each_get_it_once() {
    let server = start(StoreKind::Dynamodb, |o| o.query_page_limit = 400).await;
    let project = Uuid::new_v4();
    let mut members = clients(&server, project, 2500).await;
    let payload = json!({"project_id": project, "type": "task_updated", "data": {"id": "t-1"}});
    assert_eq!(
        invoke_broadcaster(&server, &payload).await,
        summary(2500, 2500, 0, 0)
    );
    futures::stream::iter(members.iter_mut())
        .for_each_concurrent(256, |(ws, _)| async move {
            assert_eq!(recv(ws).await["data"]["id"], "t-1");
            nothing_pending(ws).await;
        })
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_and_only_closed_connections_are_removed() {
    faults_are_retried(Delivery::Http).await;
}

/// The same through `--delivery direct`: the in-process post sees the same faults and 410s and
/// is classified the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_delivery_retries_faults_and_removes_only_closed_connections() {
    faults_are_retried(Delivery::Direct).await;
}

async fn faults_are_retried(delivery: Delivery) {
    let server = start(StoreKind::Dynamodb, |o| {
        o.fault_429 = 0.30;
        o.fault_500 = 0.05;
        o.delivery = delivery;
    })
    .await;
    let project = Uuid::new_v4();
    // Creating the clients does not touch the Management API, so faults do not interfere.
    let mut members = clients(&server, project, 100).await;
    // Connections whose $disconnect never ran: still in the table, gone at API Gateway.
    for i in 0..20 {
        let stale = Connection::new(
            format!("stale{i:010}="),
            Uuid::new_v4(),
            Some(project),
            // Opened a minute ago: a 410 from a younger one may be a $connect still running.
            EpochMs::now().minus_ms(60_000),
        );
        server.app.store().insert(&stale).await.unwrap();
    }
    let payload = json!({"project_id": project, "type": "sprint_updated", "data": {"id": "s-1"}});
    let mut result = invoke_broadcaster(&server, &payload).await;
    let throttled = result
        .as_object_mut()
        .and_then(|r| r.remove("throttled"))
        .and_then(|t| t.as_u64())
        .unwrap_or(0);
    assert_eq!(result, summary(120, 100, 20, 0));
    // 30 % of posts answer 429: 120 posts cannot all escape it (p = 0.7^120).
    assert!(throttled > 0, "429s are counted as throttled");
    for (ws, id) in &mut members {
        assert_eq!(recv(ws).await["data"]["id"], "s-1");
        assert!(
            server.app.store().get(id).await.unwrap().is_some(),
            "a live connection is never removed"
        );
    }
    let left = connections_of(&server.app, project).await;
    assert_eq!(left.len(), 100);
    assert!(
        left.iter().all(|(_, id)| !id.starts_with("stale")),
        "410s were removed"
    );
    for (ws, _) in &mut members {
        nothing_pending(ws).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_128_kb_arrives_as_cache_invalidate() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let mut members = clients(&server, project, 3).await;
    let payload = json!({"project_id": project, "type": "task_updated",
                         "data": {"id": "t-42", "description": "x".repeat(200 * 1024)}});
    assert_eq!(
        invoke_broadcaster(&server, &payload).await,
        summary(3, 3, 0, 0)
    );
    for (ws, _) in &mut members {
        let event = recv(ws).await;
        assert_eq!(event["type"], "cache_invalidate");
        assert_eq!(
            (event["resource"].as_str(), event["action"].as_str()),
            (Some("task"), Some("UPDATE"))
        );
        assert_eq!(event["data"]["id"], "t-42");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_invocation_repeats_the_event_id() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let mut members = clients(&server, project, 2).await;
    let event_id = Uuid::new_v4();
    let payload = json!({"project_id": project, "type": "member_added", "data": {"user_id": "u1"}, "event_id": event_id});
    invoke_broadcaster(&server, &payload).await;
    invoke_broadcaster(&server, &payload).await;
    for (ws, _) in &mut members {
        let (first, second) = (recv(ws).await, recv(ws).await);
        assert_eq!(first["event_id"], json!(event_id));
        assert_eq!(
            second["event_id"],
            json!(event_id),
            "clients can drop the duplicate"
        );
    }
    server.shutdown().await;
}

/// A seeded generator, so a failing run can be replayed (the seed is in the failure message).
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomised_isolation_nothing_crosses_nothing_lost_nothing_doubled() {
    const PROJECTS: usize = 50;
    const PER_PROJECT: usize = 20;
    const EVENTS: usize = 1000;
    let seed = EpochMs::now().0 as u64;
    let mut rng = SplitMix(seed);
    let server = Arc::new(start(StoreKind::Dynamodb, |_| {}).await);
    let projects: Vec<Uuid> = (0..PROJECTS).map(|_| Uuid::new_v4()).collect();
    let mut members = Vec::new();
    for (p, project) in projects.iter().enumerate() {
        for (ws, _) in clients(&server, *project, PER_PROJECT).await {
            members.push((p, ws));
        }
    }

    // Random projects, some events excluding a random member of their project.
    let mut sent: Vec<HashSet<Uuid>> = vec![HashSet::new(); PROJECTS];
    let mut plans = Vec::new();
    for _ in 0..EVENTS {
        let p = rng.below(PROJECTS);
        let event_id = Uuid::new_v4();
        sent[p].insert(event_id);
        plans.push((p, event_id));
    }
    let results: Vec<Value> = futures::stream::iter(plans.iter())
        .map(|(p, event_id)| {
            let server = server.clone();
            let payload = json!({"project_id": projects[*p], "type": "task_updated", "data": {"n": 1}, "event_id": event_id});
            async move { invoke_broadcaster(&server, &payload).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in &results {
        assert_eq!(r, &summary(PER_PROJECT, PER_PROJECT, 0, 0), "seed {seed}");
    }

    futures::stream::iter(members.iter_mut())
        .for_each_concurrent(128, |(p, ws)| {
            let want = &sent[*p];
            let project = projects[*p];
            async move {
                let mut got = HashSet::new();
                for _ in 0..want.len() {
                    let event = recv(ws).await;
                    assert_eq!(
                        event["project_id"],
                        json!(project),
                        "seed {seed}: an event crossed projects"
                    );
                    let id = Uuid::parse_str(event["event_id"].as_str().unwrap()).unwrap();
                    assert!(got.insert(id), "seed {seed}: event {id} delivered twice");
                }
                assert_eq!(&got, want, "seed {seed}: events lost");
                nothing_pending(ws).await;
            }
        })
        .await;
    Arc::into_inner(server)
        .expect("no other handle")
        .shutdown()
        .await;
}

/// The Invoke API's queue of asynchronous invocations is bounded, in number and in bytes, as
/// Lambda's is: past it the caller gets 429 `TooManyRequestsException` (and the SDK's own
/// retries try again); what was accepted is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_invoke_queue_answers_too_many_requests() {
    let server = start(StoreKind::Memory, |o| {
        o.invoke_queue = 2;
        o.invoke_queue_mb = 1;
        // Each accepted invocation stays in the queue for at least this long.
        o.post_latency_ms = 2_000;
    })
    .await;
    let project = Uuid::new_v4();
    let (mut ws, _) = client(&server, project).await;
    let event = |n: u32, pad: usize| json!({"project_id": project, "type": "task_updated", "data": {"n": n, "pad": "x".repeat(pad)}});
    let send = |payload: Value| {
        let lambda = lambda(&server);
        async move {
            lambda
                .invoke()
                .function_name("broadcaster")
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(payload.to_string()))
                .send()
                .await
        }
    };
    // Bytes: one invocation of 0.6 MB fits the 1 MB budget, a second does not.
    assert_eq!(send(event(1, 600_000)).await.unwrap().status_code(), 202);
    let err = send(event(2, 600_000)).await.unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_too_many_requests_exception()),
        "{err:?}"
    );
    // Number: a second small one fits (two places), a third does not.
    assert_eq!(send(event(3, 0)).await.unwrap().status_code(), 202);
    let err = send(event(4, 0)).await.unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_too_many_requests_exception()),
        "{err:?}"
    );
    // The accepted ones arrive (the 0.6 MB one as the cache_invalidate of its resource, being
    // over 128 KB); the refused ones never do.
    let mut got: Vec<(String, Value)> = Vec::new();
    for _ in 0..2 {
        let frame = recv(&mut ws).await;
        got.push((
            frame["type"].as_str().unwrap().to_owned(),
            frame["data"]["n"].clone(),
        ));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("cache_invalidate".to_owned(), Value::Null),
            ("task_updated".to_owned(), json!(3))
        ]
    );
    nothing_pending(&mut ws).await;
    server.shutdown().await;
}

/// What a Rust HTTP handler links: `realtime-client`'s publisher, over the real Lambda SDK
/// client, against the dev server's Invoke API, reaches the project's clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_reaches_clients_through_the_invoke_api() {
    use realtime_client::{EventType, Invocation, LambdaInvoker, Publisher};
    let server = start(StoreKind::Memory, |_| {}).await;
    let project = Uuid::new_v4();
    let (mut sender_ws, sender_user) = client(&server, project).await;
    let (mut other_ws, _) = client(&server, project).await;
    let sender_conn = connection_of(&server, project, sender_user).await;
    let publisher = Publisher::new(
        Arc::new(LambdaInvoker::new(
            realtime_client::sdk::local_lambda_client(&server.http_url()),
        )),
        Some("broadcaster".into()),
    );
    let mut invocation = Invocation::new(
        project,
        EventType::MessageCreated,
        json!({"id": "m1", "content": "hello"}),
    );
    invocation.exclude_connection_id = Some(sender_conn);
    let event_id = publisher
        .publish_invocation(invocation)
        .await
        .expect("published");
    let got = recv(&mut other_ws).await;
    assert_eq!(
        (
            got["type"].as_str(),
            got["event_id"].as_str(),
            got["data"]["content"].as_str()
        ),
        (
            Some("message_created"),
            Some(event_id.to_string().as_str()),
            Some("hello")
        )
    );
    nothing_pending(&mut sender_ws).await;
    // A publisher pointed at a function the server does not know fails quietly: no event id,
    // and the caller's request goes on.
    let unknown = Publisher::new(
        Arc::new(LambdaInvoker::new(
            realtime_client::sdk::local_lambda_client(&server.http_url()),
        )),
        Some("no-such-function".into()),
    );
    assert_eq!(
        unknown
            .publish(project, EventType::TaskUpdated, json!({"id": "t"}))
            .await,
        None
    );
    nothing_pending(&mut other_ws).await;
    server.shutdown().await;
}
