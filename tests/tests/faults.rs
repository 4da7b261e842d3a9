//! Lambda and API Gateway as AWS documents them, played by the dev server: an asynchronous
//! invocation may be delivered twice, and one whose attempts fail is retried twice, then
//! dead-lettered (`--invoke-duplicate-rate`, `--invoke-error-rate`, `--invoke-retry-ms`); a
//! duplicate reaches the client under its first `seq` and `event_id`, so the client drops it.
//! `$disconnect` may never run (`--disconnect-loss-rate`): the connection's item stays, and a
//! broadcast to it neither delivers nor evicts a connection that may still be connecting.

use devserver::Running;
use devserver::cli::StoreKind;
use e2e::dev::*;
use serde_json::json;
use uuid::Uuid;

async fn invoke_async(server: &Running, payload: &serde_json::Value) {
    let out = lambda(server)
        .invoke()
        .function_name("broadcaster")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_invocation_reaches_the_client_twice_under_one_seq() {
    let server = start(StoreKind::Memory, |o| {
        o.invoke_duplicate_rate = 1.0;
        o.fault_seed = 7;
    })
    .await;
    let project = Uuid::new_v4();
    let (mut ws, _) = client(&server, project).await;
    invoke_async(
        &server,
        &json!({"project_id": project, "type": "task_updated", "data": {"id": "t1"}}),
    )
    .await;
    let (first, second) = (recv(&mut ws).await, recv(&mut ws).await);
    assert_eq!(first["data"]["id"], json!("t1"), "{first}");
    assert_eq!(
        (&second["seq"], &second["event_id"]),
        (&first["seq"], &first["event_id"]),
        "the duplicate is the same event: {second}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_invocation_is_retried_twice_then_dead_lettered() {
    let server = start(StoreKind::Memory, |o| {
        o.invoke_error_rate = 1.0;
        o.invoke_retry_ms = 10;
    })
    .await;
    let project = Uuid::new_v4();
    invoke_async(
        &server,
        &json!({"project_id": project, "type": "task_updated", "data": {"id": "t1"}}),
    )
    .await;
    let dead = async {
        while server.app.invoke_queue.dead_lettered() == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, dead)
        .await
        .expect("dead-lettered after its retries");
    assert_eq!(server.app.invoke_queue.dead_lettered(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_disconnect_leaves_the_item_and_a_broadcast_keeps_it() {
    let server = start(StoreKind::Memory, |o| o.disconnect_loss_rate = 1.0).await;
    let project = Uuid::new_v4();
    let (ws, _) = client(&server, project).await;
    drop(ws);
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 0))
        .await
        .expect("the socket is gone");
    assert_eq!(
        connections_of(&server.app, project).await.len(),
        1,
        "no $disconnect removed the item"
    );
    let summary = invoke_broadcaster(
        &server,
        &json!({"project_id": project, "type": "task_updated", "data": {"id": "t1"}}),
    )
    .await;
    // 410 from a connection younger than the connecting grace: counted failed, kept.
    assert_eq!(
        (
            &summary["recipients"],
            &summary["delivered"],
            &summary["gone"],
            &summary["failed"]
        ),
        (&json!(1), &json!(0), &json!(0), &json!(1)),
        "{summary}"
    );
    server.shutdown().await;
}
