//! Authorization for a connection's whole life, end to end: real WebSocket clients on the dev
//! server over DynamoDB Local (and Postgres where membership matters), the broadcaster invoked
//! through the dev server's Lambda Invoke API with the real SDK client.
//!
//! Removal (by the trigger through the relay, and by a `member_removed` invocation), a
//! subscribe racing a removal, token expiry and refresh, the per-user connection cap, the
//! per-connection message rate, and the fixed `resync` frame.

use std::time::{Duration, Instant};

use devserver::Running;
use devserver::cli::StoreKind;
use e2e::dev::*;
use e2e::pg::Projects;
use futures::{SinkExt, StreamExt};
use realtime::connection::auth::{Claims, DEV_JWT_SECRET, NumericDate, mint_claims};
use realtime::runtime::config;
use realtime::time::{EpochMs, EpochSecs};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use uuid::Uuid;

/// A token for `user` whose `exp` is `exp` (epoch seconds), signed with `secret`.
fn token_until(user: Uuid, exp: EpochSecs, secret: &str) -> String {
    let claims = Claims {
        sub: user.to_string(),
        exp: NumericDate(exp.0 as u64),
        nbf: None,
        iat: None,
        iss: None,
        aud: None,
    };
    mint_claims(secret.as_bytes(), &claims)
}

/// A dev server on DynamoDB Local, membership off, holding each user to `max` connections.
async fn capped(max: usize) -> Running {
    start_with(
        StoreKind::Dynamodb,
        |_| {},
        &[
            (config::MEMBERSHIP, "none".to_owned()),
            (config::MAX_CONNECTIONS_PER_USER, max.to_string()),
        ],
    )
    .await
}

/// The error frame of a `$connect` refused with 429.
fn refused_with_429<T: std::fmt::Debug>(result: Result<T, tungstenite::Error>) -> Value {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = response.body().as_deref().unwrap_or_default();
            serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
        }
        other => panic!("the connect must get 429, got {other:?}"),
    }
}

async fn subscribed_client(server: &Running, token: &str, project: Uuid) -> Ws {
    connect(server, &format!("/?token={token}&project_id={project}"))
        .await
        .expect("connect")
}

async fn event_to(server: &Running, project: Uuid, n: usize) -> Value {
    invoke_broadcaster(
        server,
        &json!({"project_id": project, "type": "message_created", "data": {"n": n, "body": "secret"}}),
    )
    .await
}

/// Frames until `unsubscribed`, which must come with the revocation reason.
async fn until_revoked(ws: &mut Ws, project: Uuid) -> Vec<Value> {
    let mut before = Vec::new();
    loop {
        let frame = recv(ws).await;
        if frame["type"] == "unsubscribed" {
            assert_eq!(
                frame,
                json!({"type": "unsubscribed", "project_id": project, "reason": "membership_revoked"})
            );
            return before;
        }
        before.push(frame);
    }
}

/// The removal of `user` from `project` (the trigger's DELETE of the pair) is the last frame
/// `ws` gets before the revocation notice; that frame.
async fn removal_then_notice(ws: &mut Ws, project: Uuid, user: Uuid) -> Value {
    let mut seen = until_revoked(ws, project).await;
    let removal = seen
        .pop()
        .expect("the removal is delivered before the notice");
    assert_eq!(
        (&removal["resource"], &removal["action"], &removal["id"]),
        (
            &json!("project_members"),
            &json!("DELETE"),
            &json!(format!("{project}:{user}"))
        )
    );
    removal
}

/// 100 events after the removal: every one reaches `kept`, none reaches `removed`.
async fn hundred_events_reach_only(
    server: &Running,
    project: Uuid,
    kept: &mut Ws,
    removed: &mut Ws,
) {
    for n in 0..100 {
        event_to(server, project, n).await;
    }
    for n in 0..100 {
        let frame = recv(kept).await;
        assert_eq!(
            (&frame["type"], &frame["data"]["n"]),
            (&json!("message_created"), &json!(n))
        );
    }
    // The invocations returned after their fan-out: anything for `removed` was posted before
    // this ping's pong.
    nothing_pending(removed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_in_postgres_is_unsubscribed_and_gets_nothing_after() {
    let db = Projects::create().await;
    let kept_user = Uuid::new_v4();
    db.exec(&format!(
        "INSERT INTO users (id, email) VALUES ('{kept_user}', 'k@x');
         INSERT INTO project_members (project_id, user_id) VALUES ('{}', '{kept_user}')",
        db.p
    ))
    .await;
    db.forget_outbox().await;
    let server = start_with_relay(&db.url).await;
    let mut removed = subscribed_client(&server, &token(db.member_p), db.p).await;
    let mut kept = subscribed_client(&server, &token(kept_user), db.p).await;

    db.exec(&format!(
        "DELETE FROM project_members WHERE project_id = '{}' AND user_id = '{}'",
        db.p, db.member_p
    ))
    .await;
    // The fixture's own inserts may arrive first (the relay drains the outbox from its
    // start); the removal itself is the last frame before the notice.
    let removal = removal_then_notice(&mut removed, db.p, db.member_p).await;
    assert_eq!(recv(&mut kept).await["id"], removal["id"]);

    hundred_events_reach_only(&server, db.p, &mut kept, &mut removed).await;
    // Re-subscribing is refused: the membership is gone.
    send(
        &mut removed,
        json!({"action": "subscribe", "project_id": db.p}),
    )
    .await;
    assert_eq!(recv(&mut removed).await["code"], "forbidden");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_invocation_unsubscribes_every_connection_of_that_user() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let (removed_user, kept_user) = (Uuid::new_v4(), Uuid::new_v4());
    let mut tabs = Vec::new();
    for _ in 0..2 {
        tabs.push(subscribed_client(&server, &token(removed_user), project).await);
    }
    let other_project = Uuid::new_v4();
    let mut elsewhere = subscribed_client(&server, &token(removed_user), other_project).await;
    let mut kept = subscribed_client(&server, &token(kept_user), project).await;

    let result = invoke_broadcaster(
        &server,
        &json!({"project_id": project, "type": "member_removed", "data": {"user_id": removed_user}}),
    )
    .await;
    assert_eq!(
        (&result["delivered"], &result["revoked"]),
        (&json!(3), &json!(2))
    );
    for tab in &mut tabs {
        assert_eq!(recv(tab).await["type"], "member_removed");
        assert!(until_revoked(tab, project).await.is_empty());
    }
    assert_eq!(recv(&mut kept).await["type"], "member_removed");
    nothing_pending(&mut elsewhere).await;

    let (first, rest) = tabs.split_at_mut(1);
    hundred_events_reach_only(&server, project, &mut kept, &mut first[0]).await;
    nothing_pending(&mut rest[0]).await;
    // The other project's subscription is untouched.
    event_to(&server, other_project, 7).await;
    assert_eq!(recv(&mut elsewhere).await["data"]["n"], 7);
    server.shutdown().await;
}

/// 50 rounds of a subscribe sent while its membership row is deleted, through the trigger and
/// the relay. The interleaving is left to chance here (the relay's path is slower than a
/// subscribe, so most rounds end by revocation); `crates/realtime/tests/revocation.rs` forces
/// the window between the subscribe's check and its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_racing_a_removal_never_ends_subscribed() {
    let db = Projects::create().await;
    let server = start_with_relay(&db.url).await;
    let (mut ended_by_revocation, mut refused) = (0, 0);
    for round in 0..50 {
        let user = Uuid::new_v4();
        db.exec(&format!(
            "INSERT INTO users (id, email) VALUES ('{user}', '{round}@x');
             INSERT INTO project_members (project_id, user_id) VALUES ('{}', '{user}')",
            db.p
        ))
        .await;
        let mut ws = connect(&server, &format!("/?token={}", token(user)))
            .await
            .unwrap();
        let removal = format!(
            "DELETE FROM project_members WHERE project_id = '{}' AND user_id = '{user}'",
            db.p
        );
        let (_, ()) = tokio::join!(
            send(&mut ws, json!({"action": "subscribe", "project_id": db.p})),
            db.exec(&removal)
        );
        // Either the subscribe saw the removal (forbidden), or the removal found the
        // subscription (unsubscribed, membership_revoked). Both may happen; neither may be
        // missing once the reply says subscribed.
        let (mut subscribed, mut revoked) = (false, false);
        loop {
            let frame = recv(&mut ws).await;
            match (frame["type"].as_str(), frame["code"].as_str()) {
                (Some("subscribed"), _) => subscribed = true,
                (Some("unsubscribed"), _) => {
                    assert_eq!(frame["reason"], "membership_revoked");
                    revoked = true;
                }
                (Some("error"), Some("forbidden")) => {
                    refused += 1;
                    break;
                }
                (Some("cache_invalidate"), _) => {}
                other => panic!("round {round}: unexpected {other:?} in {frame}"),
            }
            if subscribed && revoked {
                ended_by_revocation += 1;
                break;
            }
        }
        let ids = connections_of_user(&server.app, user).await;
        let stored = server.app.store().get(&ids[0]).await.unwrap().unwrap();
        assert_eq!(stored.project_id, None, "round {round}: still subscribed");
        ws.close(None).await.ok();
    }
    assert_eq!(ended_by_revocation + refused, 50);
    server.shutdown().await;
}

/// A membership moved to another project by UPDATE (not deleted) ends the old one: the old
/// member is revoked from the old project like a DELETE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_moved_by_update_is_revoked() {
    let db = Projects::create().await;
    let server = start_with_relay(&db.url).await;
    let mut moved = subscribed_client(&server, &token(db.member_p), db.p).await;
    db.exec(&format!(
        "UPDATE project_members SET project_id = '{}' WHERE project_id = '{}' AND user_id = '{}'",
        db.q, db.p, db.member_p
    ))
    .await;
    removal_then_notice(&mut moved, db.p, db.member_p).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_stops_delivery_and_a_refreshed_one_keeps_it() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let exp = EpochSecs::now().plus_secs(2);
    let (lapsing_user, refreshing_user) = (Uuid::new_v4(), Uuid::new_v4());
    let mut lapsing = subscribed_client(
        &server,
        &token_until(lapsing_user, exp, DEV_JWT_SECRET),
        project,
    )
    .await;
    let mut refreshing = subscribed_client(
        &server,
        &token_until(refreshing_user, exp, DEV_JWT_SECRET),
        project,
    )
    .await;

    // Refusals change nothing: another user's token, an expired one, a forged one.
    let long = EpochSecs::now().plus_secs(600);
    for (bad, why) in [
        (token(Uuid::new_v4()), "another sub"),
        (
            token_until(
                refreshing_user,
                EpochSecs::now().minus_secs(3600),
                DEV_JWT_SECRET,
            ),
            "expired",
        ),
        (
            token_until(
                refreshing_user,
                EpochSecs::now().minus_secs(10),
                DEV_JWT_SECRET,
            ),
            "expired within the signature check's clock-skew leeway",
        ),
        (
            token_until(refreshing_user, long, "another-secret-another-secret-0123"),
            "forged",
        ),
    ] {
        send(&mut refreshing, json!({"action": "refresh", "token": bad})).await;
        let reply = recv(&mut refreshing).await;
        assert_eq!(
            (&reply["type"], &reply["code"]),
            (&json!("error"), &json!("unauthorized")),
            "{why}: {reply}"
        );
    }
    let id = connections_of_user(&server.app, refreshing_user)
        .await
        .remove(0);
    assert_eq!(
        server
            .app
            .store()
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .token_exp,
        exp
    );
    send(
        &mut refreshing,
        json!({"action": "refresh", "token": token_until(refreshing_user, long, DEV_JWT_SECRET)}),
    )
    .await;
    assert_eq!(
        recv(&mut refreshing).await,
        json!({"type": "refreshed", "expires_at": long.0})
    );

    // Events go out every 100 ms across `exp`: the lapsing client gets each one broadcast
    // before it, then `token_expired` and a close, never an event after it; the refreshed
    // client gets every one.
    let started = Instant::now();
    let mut n = 0;
    let mut last_before_exp = None;
    let expired_at = loop {
        let sent_at = EpochMs::now();
        event_to(&server, project, n).await;
        assert_eq!(recv(&mut refreshing).await["data"]["n"], n);
        let frame = recv(&mut lapsing).await;
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "token_expired");
            break EpochMs::now();
        }
        assert_eq!(frame["data"]["n"], n);
        assert!(
            sent_at < exp.ms(),
            "an event broadcast after exp was delivered"
        );
        last_before_exp = Some(n);
        n += 1;
        assert!(started.elapsed() < Duration::from_secs(10), "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        last_before_exp.is_some(),
        "events before exp were delivered"
    );
    assert!(
        expired_at >= exp.ms(),
        "told token_expired only once exp has passed"
    );
    assert!(closed_with(&mut lapsing).await >= 1000);
    assert!(
        connections_of_user(&server.app, lapsing_user)
            .await
            .is_empty(),
        "its item is gone"
    );
    event_to(&server, project, 999).await;
    assert_eq!(recv(&mut refreshing).await["data"]["n"], 999);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_an_expired_connection_get_token_expired_except_refresh() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let user = Uuid::new_v4();
    // Within the verifier's 30 s leeway, so $connect accepts it, but already past.
    let past = EpochSecs::now().minus_secs(5);
    let mut ws = connect(
        &server,
        &format!("/?token={}", token_until(user, past, DEV_JWT_SECRET)),
    )
    .await
    .unwrap();
    for message in [
        json!({"action": "ping"}),
        json!({"action": "subscribe", "project_id": Uuid::new_v4()}),
        json!({"type": "join_project", "project_id": Uuid::new_v4()}),
    ] {
        send(&mut ws, message.clone()).await;
        assert_eq!(recv(&mut ws).await["code"], "token_expired", "{message}");
    }
    let later = EpochSecs::now().plus_secs(600);
    send(
        &mut ws,
        json!({"action": "refresh", "token": token_until(user, later, DEV_JWT_SECRET)}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "refreshed");
    nothing_pending(&mut ws).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_past_the_per_user_cap_gets_429_until_one_closes() {
    let server = capped(20).await;
    let user = Uuid::new_v4();
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(
            connect(&server, &format!("/?token={}", token(user)))
                .await
                .expect("within the cap"),
        );
    }
    let refused = refused_with_429(connect(&server, &format!("/?token={}", token(user))).await);
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("MAX_CONNECTIONS_PER_USER")),
        "{refused}"
    );
    // Another user is not affected.
    let _another = connect(&server, &format!("/?token={}", token(Uuid::new_v4())))
        .await
        .expect("another user");
    // The server registers a socket after its handshake's response: a client can be connected
    // before it is counted. All 21 counted first, so that 20 below means this close was handled.
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 21))
        .await
        .expect("every connection registered");
    let mut one = open.pop().unwrap();
    one.close(None).await.unwrap();
    // 21 open (20 of the user, 1 of another) until this close has run `$disconnect`.
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 20))
        .await
        .expect("$disconnect ran");
    connect(&server, &format!("/?token={}", token(user)))
        .await
        .expect("a slot was freed");
    server.shutdown().await;
}

/// `$connect` has a per-user rate: with at most one open connection, connecting and closing
/// in a loop is refused with 429 once the burst (twice the cap) is spent, saying when to retry;
/// after that wait the user connects again, and another user was never affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_in_a_loop_gets_429_past_the_connect_rate() {
    let server = capped(1).await;
    let user = Uuid::new_v4();
    for _ in 0..2 {
        let mut ws = connect(&server, &format!("/?token={}", token(user)))
            .await
            .expect("within the burst");
        ws.close(None).await.unwrap();
        tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 0))
            .await
            .expect("$disconnect ran");
        // The cap reads the user index, which may show the closed connection a moment longer.
        tokio::time::timeout(WAIT, async {
            while !connections_of_user(&server.app, user).await.is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the user index forgets the closed connection");
    }
    let reply = refused_with_429(connect(&server, &format!("/?token={}", token(user))).await);
    assert_eq!(reply["code"], "rate_limited", "{reply}");
    let message = reply["message"].as_str().unwrap();
    let wait_ms = message
        .rsplit("retry in ")
        .next()
        .and_then(|m| m.trim_end_matches(" ms").parse::<u64>().ok())
        .unwrap_or_else(|| panic!("a wait in: {message}"));
    assert!(wait_ms > 0 && wait_ms <= 1000, "{message}");
    let _another = connect(&server, &format!("/?token={}", token(Uuid::new_v4())))
        .await
        .expect("another user is not limited");
    // The wait the refusal named is the one that works (this sleep is the behaviour tested).
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms + 50)).await;
    connect(&server, &format!("/?token={}", token(user)))
        .await
        .expect("after the named wait");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_message_rate_is_dropped_and_the_connection_stays() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let ws = subscribed_client(&server, &token(Uuid::new_v4()), project).await;
    let started = Instant::now();
    let (mut sink, mut stream) = ws.split();
    let burst = futures::stream::iter(0..100).map(|_| {
        Ok::<_, tungstenite::Error>(tungstenite::Message::text(
            json!({"action": "subscribe", "project_id": project}).to_string(),
        ))
    });
    sink.send_all(&mut burst.boxed()).await.unwrap();
    let mut replies = Vec::new();
    while replies.len() < 100 {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a reply")
        {
            Some(Ok(tungstenite::Message::Text(t))) => {
                replies.push(serde_json::from_str::<Value>(&t).unwrap())
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let elapsed_ms = started.elapsed().as_millis() as usize;
    let limited = replies
        .iter()
        .filter(|r| r["code"] == "rate_limited")
        .count();
    let admitted = replies.iter().filter(|r| r["type"] == "subscribed").count();
    assert_eq!(limited + admitted, 100, "{replies:?}");
    // A burst of 20, then one per 100 ms for as long as the burst took.
    assert!(admitted >= 20, "the burst allowance: {admitted}");
    assert!(
        admitted <= 20 + elapsed_ms / 100 + 1,
        "{admitted} admitted in {elapsed_ms} ms"
    );
    assert!(limited > 0);
    let mut ws = sink.reunite(stream).unwrap();
    nothing_pending(&mut ws).await;
    event_to(&server, project, 1).await;
    assert_eq!(
        recv(&mut ws).await["data"]["n"],
        1,
        "still subscribed and receiving"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_everyone_is_only_ever_the_fixed_resync_frame() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let mut ws = subscribed_client(&server, &token(Uuid::new_v4()), Uuid::new_v4()).await;
    let mut lobby = connect(&server, &format!("/?token={}", token(Uuid::new_v4())))
        .await
        .unwrap();
    let result = invoke_broadcaster(
        &server,
        &json!({"project_id": "*", "type": "resync", "resource": "task", "action": "DELETE",
                "data": {"content": "secret"}}),
    )
    .await;
    assert_eq!(result["delivered"], 2);
    for client in [&mut ws, &mut lobby] {
        let frame = recv(client).await;
        assert_eq!(
            (&frame["type"], &frame["project_id"], &frame["data"]),
            (&json!("resync"), &json!("*"), &json!({}))
        );
        assert!(
            frame.get("resource").is_none() && frame.get("action").is_none(),
            "{frame}"
        );
    }
    let refused = invoke_broadcaster(
        &server,
        &json!({"project_id": "*", "type": "message_created", "data": {}}),
    )
    .await;
    assert!(refused["error"].to_string().contains("resync"), "{refused}");
    nothing_pending(&mut ws).await;
    server.shutdown().await;
}
