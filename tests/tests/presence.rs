//! Presence, typing and direct messages end to end (DESIGN "Presence, typing, direct
//! messages"): real WebSocket clients on the dev server, on its memory store and on DynamoDB
//! Local; the broadcaster invoked through the dev server's Lambda Invoke API with the real SDK
//! client.

use std::collections::BTreeSet;
use std::time::Instant;

use devserver::Running;
use devserver::cli::StoreKind;
use e2e::dev::*;
use realtime::connection::store::Connection;
use realtime::runtime::config;
use realtime::time::{EpochMs, EpochSecs};
use serde_json::{Value, json};
use uuid::Uuid;

/// A dev server with presence on (the other suites turn it off) and a message rate that lets
/// 50 messages a second through, so that only the typing window drops any.
async fn server(kind: StoreKind) -> Running {
    start_with(
        kind,
        |_| {},
        &[
            (config::MEMBERSHIP, "none".to_owned()),
            (config::PRESENCE_MAX_SUBSCRIBERS, "100".to_owned()),
            (config::CLIENT_MESSAGE_RATE, "1000".to_owned()),
        ],
    )
    .await
}

/// A connection of `user`, not subscribed yet.
async fn tab(server: &Running, user: Uuid) -> Ws {
    connect(server, &format!("/?token={}", token(user)))
        .await
        .expect("connect")
}

/// Subscribe `ws` to `project`; the `online` list of the reply.
async fn subscribe(ws: &mut Ws, project: Uuid) -> BTreeSet<Uuid> {
    send(ws, json!({"action": "subscribe", "project_id": project})).await;
    let reply = recv(ws).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    reply["online"]
        .as_array()
        .unwrap_or_else(|| panic!("an online list: {reply}"))
        .iter()
        .map(|u| Uuid::parse_str(u.as_str().unwrap()).unwrap())
        .collect()
}

fn presence(project: Uuid, user: Uuid, state: &str) -> Value {
    json!({"type": "presence", "project_id": project, "user_id": user, "state": state})
}

/// Close `ws` and wait until the server has run its `$disconnect` (and the presence it sends).
async fn close(server: &Running, mut ws: Ws) {
    let before = server.app.gateway.open_count();
    ws.close(None).await.unwrap();
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n < before))
        .await
        .expect("$disconnect ran");
}

async fn one_user_is_one_presence_however_many_tabs(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut watcher = tab(&server, bob).await;
    assert_eq!(
        subscribe(&mut watcher, project).await,
        BTreeSet::from([bob])
    );

    let mut first = tab(&server, alice).await;
    assert_eq!(
        subscribe(&mut first, project).await,
        BTreeSet::from([alice, bob])
    );
    assert_eq!(recv(&mut watcher).await, presence(project, alice, "online"));
    let mut second = tab(&server, alice).await;
    subscribe(&mut second, project).await;
    let mut third = tab(&server, alice).await;
    assert_eq!(
        subscribe(&mut third, project).await,
        BTreeSet::from([alice, bob])
    );
    // A tab subscribing again to the same project (a client filling a gap) is no arrival.
    subscribe(&mut first, project).await;
    // Alice's own tabs hear nothing of her; the watcher heard her once.
    nothing_pending(&mut watcher).await;
    nothing_pending(&mut first).await;

    close(&server, first).await;
    close(&server, second).await;
    nothing_pending(&mut watcher).await;
    close(&server, third).await;
    assert_eq!(
        recv(&mut watcher).await,
        presence(project, alice, "offline")
    );

    // A connection found gone by a broadcast (its $disconnect never ran) counts as leaving.
    let carol = Uuid::new_v4();
    let ghost = Connection::new(
        "ghost0000000000=",
        carol,
        Some(project),
        EpochMs::now().minus_ms(60_000),
    );
    server.app.store().insert(&ghost).await.unwrap();
    let result = invoke_broadcaster(
        &server,
        &json!({"project_id": project, "type": "task_updated", "data": {"id": "t-1"}}),
    )
    .await;
    assert_eq!(
        (result["delivered"].as_u64(), result["gone"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(recv(&mut watcher).await["type"], "task_updated");
    assert_eq!(
        recv(&mut watcher).await,
        presence(project, carol, "offline")
    );
    nothing_pending(&mut watcher).await;
    server.shutdown().await;
}

async fn typing_reaches_the_others_at_most_once_per_window(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bobs = tab(&server, bob).await;
    subscribe(&mut bobs, project).await;
    let mut typist = tab(&server, alice).await;
    subscribe(&mut typist, project).await;
    let mut other_tab = tab(&server, alice).await;
    subscribe(&mut other_tab, project).await;
    assert_eq!(recv(&mut bobs).await, presence(project, alice, "online"));

    let typing = json!({"type": "typing", "project_id": project, "user_id": alice});
    send(
        &mut typist,
        json!({"action": "typing", "project_id": project}),
    )
    .await;
    nothing_pending(&mut typist).await; // no echo, no reply; and the typing was handled first
    assert_eq!(recv(&mut bobs).await, typing);
    assert_eq!(
        recv(&mut other_tab).await,
        typing,
        "the user's other tabs hear it"
    );

    // 50 more within about a second: the window (2 s) lets at most one more through per 2 s
    // since the first.
    let started = Instant::now();
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(20));
    for _ in 0..50 {
        ticks.tick().await;
        send(
            &mut typist,
            json!({"action": "typing", "project_id": project}),
        )
        .await;
    }
    nothing_pending(&mut typist).await;
    let windows = started.elapsed().as_millis() as usize / 2000 + 1;
    let mut heard = 0;
    loop {
        send(&mut bobs, json!({"action": "ping"})).await;
        let frame = recv(&mut bobs).await;
        if frame == json!({"type": "pong"}) {
            break;
        }
        assert_eq!(frame, typing);
        heard += 1;
        assert_eq!(recv(&mut bobs).await, json!({"type": "pong"}));
    }
    assert!(
        heard < windows,
        "{heard} typing frames in {windows} window(s) after the first"
    );

    // Typing for a project the connection is not subscribed to is refused.
    let elsewhere = Uuid::new_v4();
    send(
        &mut typist,
        json!({"action": "typing", "project_id": elsewhere}),
    )
    .await;
    let refused = recv(&mut typist).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("forbidden")),
        "{refused}"
    );
    nothing_pending(&mut bobs).await;
    server.shutdown().await;
}

fn direct(user: Uuid, n: usize) -> Value {
    json!({"user_id": user, "type": "direct_message", "data": {"n": n, "text": "psst"}})
}

async fn direct_messages_reach_every_tab_of_the_user_and_recover(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut tabs = vec![tab(&server, alice).await, tab(&server, alice).await];
    subscribe(&mut tabs[0], project).await;
    let mut bobs = tab(&server, bob).await;
    subscribe(&mut bobs, project).await;
    assert_eq!(recv(&mut tabs[0]).await, presence(project, bob, "online"));

    send(&mut tabs[1], json!({"action": "subscribe_user"})).await;
    let head = recv(&mut tabs[1]).await;
    assert_eq!(
        (&head["type"], &head["user_id"]),
        (&json!("subscribed_user"), &json!(alice)),
        "{head}"
    );
    let (seq0, epoch) = (
        head["seq"].as_u64().unwrap(),
        head["epoch"].as_str().unwrap().to_owned(),
    );

    let result = invoke_broadcaster(&server, &direct(alice, 0)).await;
    assert_eq!(
        (result["recipients"].as_u64(), result["delivered"].as_u64()),
        (Some(2), Some(2))
    );
    for ws in &mut tabs {
        let frame = recv(ws).await;
        assert_eq!(
            (
                &frame["type"],
                &frame["user_id"],
                &frame["data"]["n"],
                frame["seq"].as_u64()
            ),
            (
                &json!("direct_message"),
                &json!(alice),
                &json!(0),
                Some(seq0 + 1)
            ),
            "{frame}"
        );
        assert!(frame.get("project_id").is_none(), "{frame}");
    }
    nothing_pending(&mut bobs).await;

    // Away for five messages: subscribe_user with since recovers them, in order.
    for ws in tabs {
        close(&server, ws).await;
    }
    assert_eq!(recv(&mut bobs).await, presence(project, alice, "offline"));
    for n in 1..=5 {
        let result = invoke_broadcaster(&server, &direct(alice, n)).await;
        assert_eq!(result["recipients"], 0);
    }
    let mut back = tab(&server, alice).await;
    send(
        &mut back,
        json!({"action": "subscribe_user", "since": seq0 + 1, "epoch": epoch}),
    )
    .await;
    let reply = recv(&mut back).await;
    assert_eq!(reply["type"], "subscribed_user", "{reply}");
    assert_eq!(reply["seq"].as_u64(), Some(seq0 + 6));
    assert!(reply.get("reset").is_none(), "{reply}");
    let recovered: Vec<(u64, u64)> = reply["recovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["seq"].as_u64().unwrap(), f["data"]["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        recovered,
        (1..=5).map(|n| (seq0 + 1 + n, n)).collect::<Vec<_>>()
    );
    nothing_pending(&mut bobs).await;

    // An invocation without a valid recipient is refused, naming the field.
    for bad in [
        json!({"user_id": "nobody", "type": "direct_message", "data": {}}),
        json!({"type": "direct_message", "data": {}}),
    ] {
        let refused = invoke_broadcaster(&server, &bad).await;
        let field = refused["error"]["field"].as_str();
        assert!(matches!(field, Some("user_id" | "project_id")), "{refused}");
    }
    nothing_pending(&mut back).await;

    // A direct message whose frame would not fit API Gateway's 128 KB message is refused
    // before anything is stored (it has no smaller form to send instead).
    let big = json!({"user_id": alice, "type": "direct_message", "data": {"text": "x".repeat(200 * 1024)}});
    let refused = invoke_broadcaster(&server, &big).await;
    assert_eq!(refused["error"]["field"], "data", "{refused}");
    nothing_pending(&mut back).await;
    // A `since` at the top of u64 with the stream's own epoch answers `reset`, on the user
    // stream and on a project's; the head shows nothing was stored.
    send(
        &mut back,
        json!({"action": "subscribe_user", "since": u64::MAX, "epoch": epoch}),
    )
    .await;
    let reply = recv(&mut back).await;
    assert_eq!(
        (&reply["type"], reply["seq"].as_u64(), &reply["reset"]),
        (&json!("subscribed_user"), Some(seq0 + 6), &json!(true)),
        "{reply}"
    );
    send(
        &mut back,
        json!({"action": "subscribe", "project_id": project}),
    )
    .await;
    let head = recv(&mut back).await;
    send(
        &mut back,
        json!({"action": "subscribe", "project_id": project, "since": u64::MAX, "epoch": head["epoch"]}),
    )
    .await;
    let reply = recv(&mut back).await;
    assert_eq!(
        (&reply["type"], &reply["seq"], &reply["reset"]),
        (&json!("subscribed"), &head["seq"], &json!(true)),
        "{reply}"
    );
    server.shutdown().await;
}

/// A tab that closes and comes straight back (a reload, a blip) is announced offline at once
/// and online again: `$disconnect` waits for nothing, and the receivers debounce the pair
/// (`clients/web` shows an offline only when no online follows within 3 s).
async fn a_user_who_comes_straight_back_is_announced_leaving_and_back(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut watcher = tab(&server, bob).await;
    subscribe(&mut watcher, project).await;
    let mut first = tab(&server, alice).await;
    subscribe(&mut first, project).await;
    assert_eq!(recv(&mut watcher).await, presence(project, alice, "online"));

    first.close(None).await.unwrap();
    assert_eq!(
        recv(&mut watcher).await,
        presence(project, alice, "offline")
    );
    let mut again = tab(&server, alice).await;
    subscribe(&mut again, project).await;
    assert_eq!(recv(&mut watcher).await, presence(project, alice, "online"));
    close(&server, again).await;
    assert_eq!(
        recv(&mut watcher).await,
        presence(project, alice, "offline")
    );
    server.shutdown().await;
}

/// One user connecting to a project and closing in a loop cannot flood its members: whatever
/// the loop does, a member gets at most the user's arrival rate of `online` frames (a burst,
/// then 1 a second) and no more `offline`s than `online`s, and in the end the user is
/// announced offline.
async fn one_users_churn_is_bounded_by_the_arrival_rate(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (churner, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut watcher = tab(&server, bob).await;
    subscribe(&mut watcher, project).await;
    let started = Instant::now();
    let mut connects = 0;
    while started.elapsed() < std::time::Duration::from_secs(4) && connects < 36 {
        let ws = connect(
            &server,
            &format!("/?token={}&project_id={project}", token(churner)),
        )
        .await
        .expect("within the connect rate's burst");
        connects += 1;
        drop(ws); // closed without a close handshake, as a killed tab
    }
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 1))
        .await
        .expect("every $disconnect ran");
    // Every frame the churn caused is posted by now; ping marks the end.
    send(&mut watcher, json!({"action": "ping"})).await;
    let (mut onlines, mut offlines) = (0, 0);
    let mut last = None;
    loop {
        let frame = recv(&mut watcher).await;
        if frame["type"] == "pong" {
            break;
        }
        assert_eq!(frame["user_id"], json!(churner), "{frame}");
        match frame["state"].as_str() {
            Some("online") => onlines += 1,
            _ => offlines += 1,
        }
        assert!(
            offlines <= onlines,
            "an offline only after an online: {frame}"
        );
        last = Some(frame);
    }
    assert_eq!(
        last,
        Some(presence(project, churner, "offline")),
        "{connects} connects"
    );
    // Frames are read after the fact here, so their arrival times bunch; the bound is on how
    // many there are for the time the churn lasted: the arrival rate's burst, then 1 a second.
    let rate = realtime::delivery::presence::PRESENCE_RATE;
    let lasted = started.elapsed().as_secs_f64();
    assert!(
        (onlines as f64) <= rate.burst as f64 + lasted * rate.per_second as f64,
        "{onlines} online frames in {lasted:.1} s from {connects} connects"
    );
    server.shutdown().await;
}

/// Typing is bounded per user too, not only per connection: four tabs typing at once reach a
/// member twice (the user's burst), not four times.
async fn typing_of_one_user_is_bounded_across_tabs(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bobs = tab(&server, bob).await;
    subscribe(&mut bobs, project).await;
    let mut tabs = Vec::new();
    for _ in 0..4 {
        let mut t = tab(&server, alice).await;
        subscribe(&mut t, project).await;
        tabs.push(t);
    }
    assert_eq!(recv(&mut bobs).await, presence(project, alice, "online"));
    for t in &mut tabs {
        send(t, json!({"action": "typing", "project_id": project})).await;
    }
    for t in &mut tabs {
        // Each tab's typing was handled before its pong (frames from the others may come first).
        send(t, json!({"action": "ping"})).await;
        while recv(t).await["type"] != "pong" {}
    }
    let typing = json!({"type": "typing", "project_id": project, "user_id": alice});
    assert_eq!(recv(&mut bobs).await, typing);
    assert_eq!(recv(&mut bobs).await, typing);
    nothing_pending(&mut bobs).await;
    server.shutdown().await;
}

/// The `online` list leaves out users whose only connection's token has expired (nothing
/// more is delivered to them).
async fn the_online_list_leaves_out_expired_tokens(kind: StoreKind) {
    let server = server(kind).await;
    let project = Uuid::new_v4();
    let (lapsed, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let expired = Connection::new("lapsed000000000=", lapsed, Some(project), EpochMs::now())
        .with_token_exp(EpochSecs::now().minus_secs(1));
    server.app.store().insert(&expired).await.unwrap();
    let mut watcher = tab(&server, bob).await;
    send(
        &mut watcher,
        json!({"action": "subscribe", "project_id": project}),
    )
    .await;
    // Telling the project that bob arrived finds the lapsed connection expired (it is closed
    // and said to have left); the reply comes after.
    let reply = loop {
        let frame = recv(&mut watcher).await;
        if frame["type"] == "subscribed" {
            break frame;
        }
        assert_eq!(frame, presence(project, lapsed, "offline"));
    };
    assert_eq!(reply["online"], json!([bob]), "{reply}");
    server.shutdown().await;
}

e2e::both_stores!(
    one_user_is_one_presence_however_many_tabs,
    typing_reaches_the_others_at_most_once_per_window,
    direct_messages_reach_every_tab_of_the_user_and_recover,
    a_user_who_comes_straight_back_is_announced_leaving_and_back,
    one_users_churn_is_bounded_by_the_arrival_rate,
    the_online_list_leaves_out_expired_tokens,
    typing_of_one_user_is_bounded_across_tabs,
);
