//! The GSI propagation window on DynamoDB as AWS documents it (DESIGN "Sequence and recovery"):
//! `tests/faults/dynamodb.py` in front of DynamoDB Local keeps each write out of the indexes for
//! a while, as DynamoDB's eventually consistent GSIs may. A client that has just subscribed is
//! then missing from `project_id-index`, and an event broadcast at once does not reach it; the
//! one position re-check a client makes after the window (`clients/web`'s `recheckMs`) gets it
//! back. Without the lag the same event reaches the client live.

use devserver::Running;
use devserver::cli::StoreKind;
use e2e::dev::*;
use realtime::runtime::config;
use serde_json::json;
use uuid::Uuid;

async fn server_on(endpoint: String) -> Running {
    start_with(
        StoreKind::Dynamodb,
        |_| {},
        &[
            (config::MEMBERSHIP, "none".to_owned()),
            (config::AWS_ENDPOINT_URL_DYNAMODB, endpoint),
        ],
    )
    .await
}

/// A client just subscribed to a new project (its seq and epoch), then one event broadcast to
/// that project, and the broadcaster's answer.
async fn subscribe_then_broadcast(server: &Running) -> (Ws, Uuid, u64, String, serde_json::Value) {
    let project = Uuid::new_v4();
    let mut ws = connect(server, &format!("/?token={}", token(Uuid::new_v4())))
        .await
        .unwrap();
    send(
        &mut ws,
        json!({"action": "subscribe", "project_id": project}),
    )
    .await;
    let (seq, epoch) = subscribed(&recv(&mut ws).await, project);
    let event = json!({"project_id": project, "type": "task_updated", "data": {"id": "t1"}});
    let summary = invoke_broadcaster(server, &event).await;
    (ws, project, seq, epoch, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_right_after_subscribe_misses_a_lagging_index_and_the_recheck_recovers_it() {
    // A fixed 3 s: far longer than subscribing and broadcasting take, so the miss is certain.
    let (_proxy, endpoint) = faulty_dynamodb(&["--gsi-lag-ms", "3000", "--gsi-lag-min-ms", "3000"]);
    let server = server_on(endpoint).await;
    let (mut ws, project, seq, epoch, summary) = subscribe_then_broadcast(&server).await;
    assert_eq!(
        summary["recipients"],
        json!(0),
        "the index does not list the new subscriber yet: {summary}"
    );

    // The client's re-check: subscribe again from the seq it holds.
    send(
        &mut ws,
        json!({"action": "subscribe", "project_id": project, "since": seq, "epoch": epoch}),
    )
    .await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["type"], json!("subscribed"), "{reply}");
    let recovered = reply["recovered"].as_array().expect("recovered events");
    assert_eq!(recovered.len(), 1, "{reply}");
    assert_eq!(
        (&recovered[0]["seq"], &recovered[0]["data"]["id"]),
        (&json!(seq + 1), &json!("t1"))
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_lag_the_same_event_arrives_live() {
    let (_proxy, endpoint) = faulty_dynamodb(&[]);
    let server = server_on(endpoint).await;
    let (mut ws, _, seq, _, summary) = subscribe_then_broadcast(&server).await;
    assert_eq!(summary["recipients"], json!(1), "{summary}");
    let frame = recv(&mut ws).await;
    assert_eq!(
        (&frame["seq"], &frame["data"]["id"]),
        (&json!(seq + 1), &json!("t1"))
    );
    server.shutdown().await;
}
