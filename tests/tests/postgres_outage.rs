//! Postgres goes away and comes back (its own test binary: it stops the shared test server).
//! While it is down, membership fails closed (`unavailable`, nothing written); when it is back,
//! the relay reconnects, tells every client to `resync`, and later changes arrive again.

use std::process::Command;
use std::time::Duration;

use e2e::dev::*;
use e2e::pg::Projects;
use serde_json::json;
use tokio_tungstenite::tungstenite;

fn pg_ctl(args: &[&str]) {
    let bin = std::env::var("PG_BIN").expect("PG_BIN is not set: run the tests with `make test`");
    let data =
        std::env::var("PG_DATA").expect("PG_DATA is not set: run the tests with `make test`");
    let pg_ctl = format!("{bin}/pg_ctl");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &pg_ctl]);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let status = cmd
        .args(["-D", &data, "-w", "-t", "60"])
        .args(args)
        .status()
        .expect("pg_ctl");
    assert!(status.success(), "pg_ctl {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_membership_survive_a_postgres_restart() {
    let db = Projects::create().await;
    let server = start_with_relay(&db.url).await;
    let mut subscribed = connect(
        &server,
        &format!("/?token={}&project_id={}", token(db.member_p), db.p),
    )
    .await
    .unwrap();
    let mut lobby = connect(&server, &format!("/?token={}", token(db.member_p)))
        .await
        .unwrap();

    pg_ctl(&["stop", "-m", "fast"]);
    send(
        &mut lobby,
        json!({"action": "subscribe", "project_id": db.p}),
    )
    .await;
    assert_eq!(
        recv(&mut lobby).await["code"],
        "unavailable",
        "membership fails closed"
    );
    assert_eq!(
        connections_of(&server.app, db.p).await.len(),
        1,
        "nothing written"
    );
    match connect(
        &server,
        &format!("/?token={}&project_id={}", token(db.member_p), db.p),
    )
    .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => {
            panic!("connect with a project while the database is down must be 503, got {other:?}")
        }
    }

    // `restart` starts the stopped server with the options it last ran with.
    pg_ctl(&["restart", "-m", "fast"]);
    let resync = tokio::time::timeout(Duration::from_secs(30), recv(&mut subscribed))
        .await
        .expect("resync after the reconnect");
    assert_eq!(resync["type"], "resync");
    assert_eq!(resync["project_id"], "*");

    let id = db.message(db.p).await;
    let event = recv(&mut subscribed).await;
    assert_eq!(
        (event["resource"].as_str(), event["data"]["id"].as_str()),
        (Some("message"), Some(id.to_string().as_str()))
    );

    send(
        &mut lobby,
        json!({"action": "subscribe", "project_id": db.p}),
    )
    .await;
    // The lobby connection also got the resync (it is connected, though not subscribed).
    let mut reply = recv(&mut lobby).await;
    if reply["type"] == "resync" {
        reply = recv(&mut lobby).await;
    }
    assert_eq!(
        reply,
        json!({"type": "subscribed", "message": "subscribed", "project_id": db.p})
    );
    server.shutdown().await;
}
