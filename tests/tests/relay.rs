//! The trigger path end to end: a committed row change in Postgres → trigger → NOTIFY → the
//! dev server's relay → broadcaster → WebSocket clients of that project, with membership
//! checked against `project_members`.

use std::collections::HashMap;

use devserver::Running;
use e2e::dev::*;
use e2e::pg::Projects;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use uuid::Uuid;

async fn server(db: &Projects) -> Running {
    start_with_relay(&db.url).await
}

async fn member(server: &Running, user: Uuid, project: Uuid) -> Ws {
    connect(
        server,
        &format!("/?token={}&project_id={project}", token(user)),
    )
    .await
    .expect("a member connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_message_reaches_its_project_and_no_other() {
    let db = Projects::create().await;
    let server = server(&db).await;
    let mut p_client = member(&server, db.member_p, db.p).await;
    let mut q_client = member(&server, db.member_q, db.q).await;

    let id = db.message(db.p).await;
    let event = recv(&mut p_client).await;
    assert_eq!(event["type"], "cache_invalidate");
    assert_eq!(
        (event["resource"].as_str(), event["action"].as_str()),
        (Some("message"), Some("INSERT"))
    );
    assert_eq!(event["project_id"], json!(db.p));
    assert_eq!(event["data"]["id"], json!(id));
    nothing_pending(&mut q_client).await;
    nothing_pending(&mut p_client).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_is_checked_at_connect_and_at_subscribe() {
    let db = Projects::create().await;
    let server = server(&db).await;
    match connect(
        &server,
        &format!("/?token={}&project_id={}", token(db.stranger), db.p),
    )
    .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a non-member must be refused with 403, got {other:?}"),
    }
    let mut lobby = connect(&server, &format!("/?token={}", token(db.stranger)))
        .await
        .unwrap();
    send(
        &mut lobby,
        json!({"action": "subscribe", "project_id": db.p}),
    )
    .await;
    assert_eq!(recv(&mut lobby).await["code"], "forbidden");
    assert!(
        connections_of(&server.app, db.p).await.is_empty(),
        "nothing written"
    );

    let mut ok = connect(&server, &format!("/?token={}", token(db.member_p)))
        .await
        .unwrap();
    send(&mut ok, json!({"action": "subscribe", "project_id": db.p})).await;
    subscribed(&recv(&mut ok).await, db.p);
    send(&mut ok, json!({"type": "join_project", "project_id": db.q})).await;
    assert_eq!(
        recv(&mut ok).await["code"],
        "forbidden",
        "a member of P is not a member of Q"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_row_update_arrives_as_a_handful_of_events() {
    let db = Projects::create().await;
    let server = server(&db).await;
    let mut client = member(&server, db.member_p, db.p).await;
    let mut other = member(&server, db.member_q, db.q).await;
    let p = db.p;
    db.exec(&format!("INSERT INTO tasks (project_id, title) SELECT '{p}', 'task ' || n FROM generate_series(1, 10000) AS n")).await;
    db.exec(&format!(
        "UPDATE tasks SET status = 'done' WHERE project_id = '{p}'"
    ))
    .await;
    let marker = db.message(p).await;

    // Each invocation is queued like Lambda's asynchronous invocations and several run at once,
    // so events of different invocations may arrive out of commit order (as on AWS): read until
    // the marker and both statements' events have arrived.
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut events = 0;
    let mut marker_seen = false;
    let seen = |counts: &HashMap<(String, String), usize>, action: &str| {
        counts.contains_key(&("task".to_owned(), action.to_owned()))
    };
    while !(marker_seen && seen(&counts, "INSERT") && seen(&counts, "UPDATE")) {
        let event = recv(&mut client).await;
        events += 1;
        assert!(events <= 40, "far too many events for two statements");
        if event["resource"] == "message" {
            assert_eq!(event["data"]["id"], json!(marker));
            marker_seen = true;
            continue;
        }
        assert_eq!(event["resource"], "task");
        // A batch of 2–100 rows lists them in `data.ids`; a larger one leaves them out (the
        // whole resource is invalidated). Which batches a burst splits into depends on timing.
        if let Some(ids) = event["data"].get("ids") {
            let n = ids.as_array().map_or(0, Vec::len);
            assert!(
                (2..=100).contains(&n),
                "data.ids lists 2 to 100 ids, got {n}"
            );
        }
        *counts
            .entry((
                event["resource"].as_str().unwrap().into(),
                event["action"].as_str().unwrap().into(),
            ))
            .or_default() += 1;
    }
    let updates = counts[&("task".to_owned(), "UPDATE".to_owned())];
    let inserts = counts[&("task".to_owned(), "INSERT".to_owned())];
    assert!(
        (1..=10).contains(&updates),
        "10,000 updated rows → {updates} events"
    );
    assert!(
        (1..=10).contains(&inserts),
        "10,000 inserted rows → {inserts} events"
    );
    nothing_pending(&mut other).await;
    server.shutdown().await;
}

/// `devhive-realtime relay` as its own process, the way it runs on a container or a VM:
/// it invokes the broadcaster through the dev server's Lambda Invoke API (standard
/// `AWS_ENDPOINT_URL_LAMBDA`), stops cleanly on SIGTERM, and a change committed while it was
/// stopped is delivered by the next process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_subcommand_runs_as_its_own_process() {
    use std::process::{Command, Stdio};
    let db = Projects::create().await;
    // A dev server without a relay of its own (no DATABASE_URL), membership off.
    let server = start(devserver::cli::StoreKind::Memory, |_| {}).await;
    let mut client = member(&server, db.member_p, db.p).await;
    let spawn = || {
        Command::new(e2e::workspace_binary("devhive-realtime"))
            .arg("relay")
            .env_clear()
            .env("DATABASE_URL", &db.url)
            .env("BROADCASTER_FUNCTION_NAME", "broadcaster")
            .env("AWS_ENDPOINT_URL_LAMBDA", server.http_url())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the relay")
    };
    let mut relay = spawn();
    let first = db.message(db.p).await;
    let first_event = recv(&mut client).await;
    assert_eq!(first_event["data"]["id"], json!(first));

    let status = Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = relay.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "stops cleanly on SIGTERM");

    let while_stopped = db.message(db.p).await;
    let mut relay = spawn();
    // If SIGTERM came between the first invocation and the deletion of its row, the next
    // process sends it again: alone, under the same event id (clients drop it as a repeat),
    // or coalesced with the change that waited (an invalidation twice is harmless).
    let (first, while_stopped) = (json!(first), json!(while_stopped));
    loop {
        let event = recv(&mut client).await;
        let data = &event["data"];
        let ids: Vec<Value> = match data["ids"].as_array() {
            Some(ids) => ids.clone(),
            None => vec![data["id"].clone()],
        };
        assert!(
            ids.iter().all(|id| *id == first || *id == while_stopped),
            "{event}"
        );
        if ids == [first.clone()] {
            assert_eq!(
                event["event_id"], first_event["event_id"],
                "a repeat alone keeps its id"
            );
        }
        if ids.contains(&while_stopped) {
            break;
        }
    }
    nothing_pending(&mut client).await;
    relay.kill().ok();
    relay.wait().ok();
    server.shutdown().await;
}
