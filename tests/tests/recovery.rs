//! Message recovery end to end (DESIGN "Sequence and recovery"): real WebSocket clients on the
//! dev server (connections on DynamoDB Local, events in its memory event store), the
//! broadcaster invoked through its Lambda Invoke API. A client that was away resumes with
//! `since` and gets exactly what a client that stayed received; what cannot be recovered is a
//! `reset`; a client that subscribes while events flow misses none after its `seq`.

use devserver::Running;
use devserver::cli::StoreKind;
use e2e::dev::*;
use serde_json::{Value, json};
use uuid::Uuid;

async fn event(server: &Running, project: Uuid, n: usize) {
    invoke_broadcaster(
        server,
        &json!({"project_id": project, "type": "task_updated", "data": {"id": format!("t{n}"), "n": n}}),
    )
    .await;
}

/// Subscribe `ws` to `project`, resuming after `since` in `epoch` when given; the reply.
async fn subscribe(ws: &mut Ws, project: Uuid, resume: Option<(u64, &str)>) -> Value {
    let mut message = json!({"action": "subscribe", "project_id": project});
    if let Some((since, epoch)) = resume {
        message["since"] = json!(since);
        message["epoch"] = json!(epoch);
    }
    send(ws, message).await;
    recv(ws).await
}

async fn lobby(server: &Running) -> Ws {
    connect(server, &format!("/?token={}", token(Uuid::new_v4())))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_away_for_thirty_events_resumes_with_exactly_what_it_missed() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let mut stayed = lobby(&server).await;
    subscribed(&subscribe(&mut stayed, project, None).await, project);
    event(&server, project, 0).await;
    let first = recv(&mut stayed).await;

    let mut away = lobby(&server).await;
    let (seq, epoch) = subscribed(&subscribe(&mut away, project, None).await, project);
    assert_eq!(first["seq"], json!(seq), "the head is the last event sent");
    away.close(None).await.unwrap();
    let mut missed = Vec::new();
    for n in 1..=30 {
        event(&server, project, n).await;
        missed.push(recv(&mut stayed).await);
    }

    let mut back = lobby(&server).await;
    let reply = subscribe(&mut back, project, Some((seq, &epoch))).await;
    let (head, same_epoch) = subscribed(&reply, project);
    assert_eq!((head, same_epoch.as_str()), (seq + 30, epoch.as_str()));
    assert_eq!(reply.get("reset"), None);
    assert_eq!(
        reply["recovered"],
        json!(missed),
        "field by field (seq, event_id, body) what the client that stayed received"
    );
    let seqs: Vec<u64> = missed.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (seq + 1..=seq + 30).collect::<Vec<_>>());
    // And from now on it receives as the other one does.
    event(&server, project, 31).await;
    assert_eq!(recv(&mut back).await, recv(&mut stayed).await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_recovered_is_a_reset() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let mut ws = lobby(&server).await;
    let (seq, epoch) = subscribed(&subscribe(&mut ws, project, None).await, project);
    ws.close(None).await.unwrap();
    for n in 0..101 {
        event(&server, project, n).await;
    }
    let mut back = lobby(&server).await;
    for (resume, why) in [
        ((seq, epoch.as_str()), "101 events missed"),
        ((seq + 100, "another-epoch"), "another epoch"),
        ((seq + 500, epoch.as_str()), "since past the head"),
    ] {
        let reply = subscribe(&mut back, project, Some(resume)).await;
        subscribed(&reply, project);
        assert_eq!(reply["reset"], true, "{why}: {reply}");
        assert_eq!(reply.get("recovered"), None, "{why}");
    }
    // Within bounds again: the last 100 come back.
    let reply = subscribe(&mut back, project, Some((seq + 1, &epoch))).await;
    assert_eq!(reply["recovered"].as_array().map(Vec::len), Some(100));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dev_server_tells_resuming_clients_to_start_over() {
    let project = Uuid::new_v4();
    let server = start(StoreKind::Memory, |_| {}).await;
    let mut ws = lobby(&server).await;
    let (seq, epoch) = subscribed(&subscribe(&mut ws, project, None).await, project);
    event(&server, project, 0).await;
    assert_eq!(recv(&mut ws).await["seq"], json!(seq + 1));
    server.shutdown().await;

    let restarted = start(StoreKind::Memory, |_| {}).await;
    let mut back = lobby(&restarted).await;
    let reply = subscribe(&mut back, project, Some((seq + 1, &epoch))).await;
    let (_, new_epoch) = subscribed(&reply, project);
    assert_ne!(new_epoch, epoch, "a new epoch");
    assert_eq!(reply["reset"], true);
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_subscribing_while_events_flow_misses_none_after_its_seq() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let flowing = {
        let lambda = lambda(&server);
        tokio::spawn(async move {
            for n in 0..60 {
                let payload =
                    json!({"project_id": project, "type": "task_updated", "data": {"n": n}});
                lambda
                    .invoke()
                    .function_name("broadcaster")
                    .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    let mut ws = lobby(&server).await;
    let (start, epoch) = subscribed(&subscribe(&mut ws, project, None).await, project);
    flowing.await.unwrap();
    let last = start.max(60);
    // What fan-out delivered, until the client has seen the last seq or is told nothing more
    // is coming (a ping answered after every invocation returned).
    let mut seen = std::collections::BTreeSet::new();
    send(&mut ws, json!({"action": "ping"})).await;
    loop {
        let frame = recv(&mut ws).await;
        if frame["type"] == "pong" {
            break;
        }
        seen.insert(frame["seq"].as_u64().unwrap());
    }
    // Fill any gap by re-subscribing after the highest seq seen without a gap.
    let mut contiguous = start;
    while seen.contains(&(contiguous + 1)) {
        contiguous += 1;
    }
    if contiguous < last {
        let reply = subscribe(&mut ws, project, Some((contiguous, &epoch))).await;
        for e in reply["recovered"].as_array().expect("the gap is recovered") {
            seen.insert(e["seq"].as_u64().unwrap());
        }
    }
    let want: std::collections::BTreeSet<u64> = (start + 1..=last).collect();
    assert!(
        want.is_subset(&seen),
        "every event after the subscribe's seq {start}: missing {:?}",
        want.difference(&seen).collect::<Vec<_>>()
    );
    server.shutdown().await;
}
