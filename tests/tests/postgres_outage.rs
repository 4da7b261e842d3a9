//! Postgres goes away and comes back (its own test binary: it stops the shared test server).
//! While it is down, membership fails closed (`unavailable`, nothing written); every change
//! committed before, around and after the restart reaches the client (the outbox keeps what
//! the relay had not delivered yet; NOTIFY alone would not).

use std::collections::HashSet;
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

    // Changes committed just before the stop: some are still in the outbox when it comes.
    let mut before = Vec::new();
    for _ in 0..20 {
        before.push(db.message(db.p).await.to_string());
    }
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
    let mut after = Vec::new();
    for _ in 0..20 {
        after.push(db.message(db.p).await.to_string());
    }
    let mut want: HashSet<String> = before.into_iter().chain(after).collect();
    while !want.is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(30), recv(&mut subscribed))
            .await
            .expect("every committed change arrives");
        assert_eq!(event["resource"], "message", "{event}");
        // A batch the relay was delivering when Postgres stopped comes again (same event id).
        // Changes committed together arrive coalesced, as `data.ids`.
        let data = &event["data"];
        let ids = match data["ids"].as_array() {
            Some(ids) => ids.iter().filter_map(|v| v.as_str()).collect(),
            None => vec![data["id"].as_str().expect("a record id")],
        };
        for id in ids {
            want.remove(id);
        }
    }

    send(
        &mut lobby,
        json!({"action": "subscribe", "project_id": db.p}),
    )
    .await;
    e2e::dev::subscribed(&recv(&mut lobby).await, db.p);
    server.shutdown().await;
}
