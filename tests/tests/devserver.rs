//! The dev server with real WebSocket clients (tokio-tungstenite) and the real
//! `aws-sdk-apigatewaymanagement` client, once over the memory store and once over DynamoDB Local.

use std::time::{Duration, Instant};

use aws_sdk_apigatewaymanagement::primitives::Blob;
use devserver::cli::StoreKind;
use e2e::dev::*;
use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

async fn connect_subscribe_ping_and_legacy_join(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let (project, user) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ws = connect(&server, &format!("/?token={}", token(user)))
        .await
        .expect("good token opens");
    send(
        &mut ws,
        json!({"action": "subscribe", "project_id": project}),
    )
    .await;
    subscribed(&recv(&mut ws).await, project);
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    send(
        &mut ws,
        json!({"action": "subscribe", "project_id": "nope"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "bad_request");

    // The old local URL and the older message form.
    let other = Uuid::new_v4();
    let mut old = connect(
        &server,
        &format!("/api/v1/messages/ws?token={}", token(Uuid::new_v4())),
    )
    .await
    .unwrap();
    send(
        &mut old,
        json!({"type": "join_project", "project_id": other}),
    )
    .await;
    subscribed(&recv(&mut old).await, other);
    send(&mut old, json!({"type": "leave_project"})).await;
    assert_eq!(recv(&mut old).await, json!({"type": "unsubscribed"}));

    // The token as a subprotocol, on the stage path.
    let mut request = format!("ws://{}/dev?project_id={project}", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("devhive, {}", token(Uuid::new_v4()))
            .parse()
            .unwrap(),
    );
    let (mut sub, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("subprotocol token opens");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "devhive"
    );
    nothing_pending(&mut sub).await;

    assert_eq!(connections_of(&server.app, project).await.len(), 2);
    let (code, status) = http_get(
        server.addr,
        &format!("/api/v1/projects/{project}/ws/status"),
        Some(&token(user)),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(status["project_clients"], 2);
    assert_eq!(
        http_get(
            server.addr,
            &format!("/api/v1/projects/{project}/ws/status"),
            None
        )
        .await
        .0,
        401
    );

    drop((ws, old, sub));
    all_disconnected(&server).await;
    assert!(
        connections_of(&server.app, project).await.is_empty(),
        "$disconnect removed every connection"
    );
    server.shutdown().await;
}

async fn bad_token_is_refused_with_401_and_no_socket(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let project = Uuid::new_v4();
    for query in [
        "/",
        "/?token=garbage",
        &format!("/?token={}x&project_id={project}", token(Uuid::new_v4())),
    ] {
        match connect(&server, query).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{query}")
            }
            other => panic!("{query}: expected HTTP 401, got {other:?}"),
        }
    }
    match connect(
        &server,
        &format!("/?token={}&project_id=not-a-uuid", token(Uuid::new_v4())),
    )
    .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    assert_eq!(server.app.gateway.open_count(), 0, "no socket was opened");
    assert!(connections_of(&server.app, project).await.is_empty());
    server.shutdown().await;
}

async fn management_api_with_the_real_sdk(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let project = Uuid::new_v4();
    let (mut a, user_a) = client(&server, project).await;
    let (mut b, _) = client(&server, project).await;
    let id_a = connection_of(&server, project, user_a).await;
    let api = management(&server);

    api.post_to_connection()
        .connection_id(&id_a)
        .data(Blob::new(r#"{"type":"hello"}"#))
        .send()
        .await
        .expect("post");
    assert_eq!(recv(&mut a).await, json!({"type": "hello"}));
    nothing_pending(&mut b).await;

    let info = api
        .get_connection()
        .connection_id(&id_a)
        .send()
        .await
        .expect("get");
    let connected_at = info
        .connected_at()
        .expect("connectedAt")
        .to_millis()
        .unwrap();
    assert!(
        (realtime::time::EpochMs::now().0 - connected_at).abs() < 60_000,
        "connectedAt is recent"
    );
    assert!(info.last_active_at().unwrap().to_millis().unwrap() >= connected_at);
    assert_eq!(info.identity().unwrap().source_ip(), Some("127.0.0.1"));

    api.delete_connection()
        .connection_id(&id_a)
        .send()
        .await
        .expect("delete");
    assert_eq!(closed_with(&mut a).await, 1000);
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 1))
        .await
        .unwrap();
    assert_eq!(
        server.app.store().get(&id_a).await.unwrap(),
        None,
        "$disconnect ran"
    );

    let gone = api
        .post_to_connection()
        .connection_id(&id_a)
        .data(Blob::new("late"))
        .send()
        .await
        .unwrap_err();
    assert!(
        gone.into_service_error().is_gone_exception(),
        "post after close is GoneException"
    );
    let gone = api
        .get_connection()
        .connection_id("unknown0000000=")
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_gone_exception());
    nothing_pending(&mut b).await;
    let app = server.app.clone();
    server.shutdown().await;
    assert_eq!(closed_with(&mut b).await, 1001, "shutdown closes with 1001");
    assert!(
        connections_of(&app, project).await.is_empty(),
        "shutdown ran $disconnect"
    );
}

async fn idle_timeout_closes_and_disconnects(kind: StoreKind) {
    let server = start(kind, |o| o.idle_timeout_s = 1).await;
    let project = Uuid::new_v4();
    let (mut ws, _) = client(&server, project).await;
    assert_eq!(connections_of(&server.app, project).await.len(), 1);
    assert_eq!(closed_with(&mut ws).await, 1001);
    all_disconnected(&server).await;
    assert!(connections_of(&server.app, project).await.is_empty());
    server.shutdown().await;
}

async fn maximum_duration_closes_and_disconnects(kind: StoreKind) {
    let server = start(kind, |o| {
        o.idle_timeout_s = 3600;
        o.max_duration_s = 2;
    })
    .await;
    let project = Uuid::new_v4();
    let (mut ws, _) = client(&server, project).await;
    let opened = Instant::now();
    // The reconnect hint comes first (halfway through so short a lifetime; 5 minutes before
    // API Gateway's 2 hours), while the socket is still open, then the close.
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "reconnect", "reason": "max_duration"})
    );
    let hinted = opened.elapsed();
    nothing_pending(&mut ws).await;
    assert_eq!(closed_with(&mut ws).await, 1001);
    assert!(
        opened.elapsed() > hinted,
        "the hint arrived before the close"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(3600),
        "closed by the lifetime, not the idle timer"
    );
    all_disconnected(&server).await;
    assert!(connections_of(&server.app, project).await.is_empty());
    server.shutdown().await;
}

async fn oversized_message_closes_with_1009(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let project = Uuid::new_v4();
    let (mut ws, _) = client(&server, project).await;
    let big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(129 * 1024));
    ws.send(Message::text(big)).await.unwrap();
    assert_eq!(closed_with(&mut ws).await, u16::from(CloseCode::Size));
    all_disconnected(&server).await;
    assert!(connections_of(&server.app, project).await.is_empty());
    server.shutdown().await;
}

async fn posts_for_one_project_never_reach_another(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let (p1, p2) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ones = Vec::new();
    let mut twos = Vec::new();
    for _ in 0..3 {
        ones.push(client(&server, p1).await.0);
        twos.push(client(&server, p2).await.0);
    }
    let api = management(&server);
    for (_, id) in connections_of(&server.app, p1).await {
        let event = json!({"type": "task_updated", "project_id": p1});
        api.post_to_connection()
            .connection_id(id)
            .data(Blob::new(event.to_string()))
            .send()
            .await
            .unwrap();
    }
    for ws in &mut ones {
        assert_eq!(recv(ws).await["project_id"], json!(p1));
    }
    for ws in &mut twos {
        nothing_pending(ws).await;
    }
    server.shutdown().await;
}

async fn injected_faults_reach_the_sdk_as_typed_errors(kind: StoreKind) {
    let throttled = start(kind, |o| o.fault_429 = 1.0).await;
    let api = management(&throttled);
    let err = api
        .post_to_connection()
        .connection_id("any000000000000=")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_limit_exceeded_exception());
    throttled.shutdown().await;

    let broken = start(kind, |o| o.fault_500 = 1.0).await;
    let err = management(&broken)
        .get_connection()
        .connection_id("any000000000000=")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    broken.shutdown().await;

    let slow = start(kind, |o| o.post_latency_ms = 300).await;
    let began = Instant::now();
    let _ = management(&slow)
        .get_connection()
        .connection_id("any000000000000=")
        .send()
        .await;
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "latency is added to every call"
    );
    slow.shutdown().await;

    let limited = start(kind, |o| o.rate_limit = 5).await;
    let api = management(&limited);
    let mut throttles = 0;
    for _ in 0..20 {
        if let Err(e) = api
            .get_connection()
            .connection_id("any000000000000=")
            .send()
            .await
            && e.into_service_error().is_limit_exceeded_exception()
        {
            throttles += 1;
        }
    }
    assert!(
        throttles >= 10,
        "a 5 requests/s bucket throttles most of a burst of 20, got {throttles}"
    );
    limited.shutdown().await;
}

e2e::both_stores!(
    connect_subscribe_ping_and_legacy_join,
    bad_token_is_refused_with_401_and_no_socket,
    management_api_with_the_real_sdk,
    idle_timeout_closes_and_disconnects,
    maximum_duration_closes_and_disconnects,
    oversized_message_closes_with_1009,
    posts_for_one_project_never_reach_another,
    injected_faults_reach_the_sdk_as_typed_errors,
);

/// DynamoDB Local keeps its tables in memory: restarted under a running dev server, the table
/// is gone. The dev server notices and re-creates it instead of failing forever.
#[tokio::test]
async fn a_lost_table_is_recreated() {
    let server = start(StoreKind::Dynamodb, |_| {}).await;
    let project = Uuid::new_v4();
    let (_before, _) = client(&server, project).await;
    // The server's table is its own (`dev-<uuid>`): the one that holds this project.
    let dynamo = aws_sdk_dynamodb::Client::new(&realtime::runtime::config::sdk_config());
    let mut lost = None;
    for t in dynamo.list_tables().send().await.unwrap().table_names() {
        let items = dynamo.scan().table_name(t).send().await.unwrap();
        let holds =
            |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
                i.get("project_id").and_then(|v| v.as_s().ok()) == Some(&project.to_string())
            };
        if t.starts_with("dev-") && items.items().iter().any(holds) {
            lost = Some(t.clone());
        }
    }
    let lost = lost.expect("the dev server's table");
    dynamo
        .delete_table()
        .table_name(&lost)
        .send()
        .await
        .unwrap();

    // The server re-creates the table (within a second or so); a connection then is recorded.
    let recreated = async {
        while dynamo
            .describe_table()
            .table_name(&lost)
            .send()
            .await
            .is_err()
        {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, recreated)
        .await
        .expect("the dev server re-created its table");
    let (mut after, _) = client(&server, project).await;
    send(&mut after, json!({"action": "ping"})).await;
    assert_eq!(recv(&mut after).await, json!({"type": "pong"}));
    assert_eq!(connections_of(&server.app, project).await.len(), 1);
    server.shutdown().await;
}

/// A client that trickles its request head is cut off after the handshake timeout, and a
/// request head over the size limit is refused: neither holds a socket of the server.
#[tokio::test]
async fn slow_or_oversized_handshakes_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(StoreKind::Memory, |o| o.handshake_timeout_s = 1).await;
    let opened = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closed the trickling connection");
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );

    let mut big = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let header = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    let _ = big.write_all(header.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, big.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the oversized request was refused and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    server.shutdown().await;
}

/// A client that stops reading fills its socket's buffers; the next frame cannot be written,
/// and it is closed (1008) and answered 410 from then on, while the other client of the
/// project gets every event and no broadcast waits on the stalled one for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_holds_up_no_one() {
    use futures::StreamExt;
    let server = start(StoreKind::Memory, |_| {}).await;
    let project = Uuid::new_v4();
    let (reader, _) = client(&server, project).await;
    let (_stalled, _) = client(&server, project).await; // never read from again
    let (count, mut received) = tokio::sync::watch::channel(0usize);
    let reading = tokio::spawn(async move {
        let mut reader = reader;
        while let Some(Ok(m)) = reader.next().await {
            if m.is_text() {
                count.send_modify(|n| *n += 1);
            }
        }
    });
    let blob = "x".repeat(100_000);
    let mut sent = 0;
    let mut gone_after = None;
    while sent < 1000 {
        let result = invoke_broadcaster(
            &server,
            &json!({"project_id": project, "type": "message_created", "data": {"blob": blob}}),
        )
        .await;
        sent += 1;
        // Answered 410: taken as gone, or, opened under 30 s ago (a $connect may still be
        // running then), kept and counted failed; either way no longer delivered.
        if result["gone"] == 1 || result["failed"] == 1 {
            gone_after = Some(sent);
            break;
        }
        assert_eq!(result["delivered"], 2, "{result}");
    }
    let gone_after = gone_after.expect("the stalled client was never closed");
    // Closed once its buffers were full: megabytes, not the first frames.
    assert!(gone_after > 5, "closed after {gone_after} frames");
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 1))
        .await
        .expect("the stalled socket went through $disconnect");
    let after = invoke_broadcaster(
        &server,
        &json!({"project_id": project, "type": "message_created", "data": {}}),
    )
    .await;
    assert_eq!(
        (&after["recipients"], &after["delivered"]),
        (&json!(1), &json!(1))
    );
    let want = sent + 1;
    tokio::time::timeout(WAIT, received.wait_for(|n| *n >= want))
        .await
        .expect("the reading client got every event")
        .unwrap();
    reading.abort();
    server.shutdown().await;
}

/// Only the documented paths are WebSocket endpoints; any other path answers 404 naming what
/// is served, and a browser's plain `GET /` gets the dev console, whose files (and the built
/// web client) are served from the web directory and nothing outside it.
#[tokio::test]
async fn other_paths_answer_404_and_a_browser_gets_the_console() {
    let web = std::env::temp_dir().join(format!("devhive-web-{}", Uuid::new_v4()));
    std::fs::create_dir_all(web.join("console")).unwrap();
    std::fs::create_dir_all(web.join("dist")).unwrap();
    std::fs::write(
        web.join("console/index.html"),
        "<title>console page</title>",
    )
    .unwrap();
    std::fs::write(web.join("console/console.js"), "export const page = 1;").unwrap();
    std::fs::write(web.join("dist/index.js"), "export const client = 1;").unwrap();
    std::fs::write(web.join("secret.txt"), "outside").unwrap();
    let dir = web.clone();
    let server = start(StoreKind::Memory, move |o| o.web_dir = dir).await;

    let (status, head, body) = http(server.addr, "GET", "/", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "<title>console page</title>")
    );
    assert!(head.contains("content-type: text/html"), "{head}");
    let (status, head, body) = http(server.addr, "GET", "/console/console.js", &[]).await;
    assert_eq!((status, body.as_str()), (200, "export const page = 1;"));
    assert!(head.contains("content-type: text/javascript"), "{head}");
    let (status, _, body) = http(server.addr, "GET", "/console/realtime.js", &[]).await;
    assert_eq!((status, body.as_str()), (200, "export const client = 1;"));
    for outside in [
        "/console/..%2Fsecret.txt",
        "/console/.hidden",
        "/console/nope.js",
    ] {
        let (status, _, body) = http(server.addr, "GET", outside, &[]).await;
        assert_eq!(status, 404, "{outside}");
        assert!(!body.contains("outside"), "{outside}: {body}");
    }

    let (status, _, body) = http(server.addr, "GET", "/foo", &[]).await;
    assert_eq!(status, 404);
    assert!(
        body.starts_with("/foo is not served here. WebSocket: /, /dev,"),
        "{body}"
    );
    let (status, _, body) = http(server.addr, "GET", "/dev", &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("/dev is a WebSocket endpoint"), "{body}");
    let token = token(Uuid::new_v4());
    match connect(&server, &format!("/foo?token={token}")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("a WebSocket on /foo: {other:?}"),
    }
    for path in ["/", "/dev", "/api/v1/messages/ws"] {
        let ws = connect(&server, &format!("{path}?token={token}")).await;
        assert!(ws.is_ok(), "{path}: {ws:?}");
    }
    server.shutdown().await;
    std::fs::remove_dir_all(web).unwrap();
}

/// The repository's console page exists and is built on the web client the server serves.
#[test]
fn the_console_page_imports_the_served_client() {
    let page = std::path::Path::new(devserver::cli::DEFAULT_WEB_DIR).join("console/index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let script = std::path::Path::new(devserver::cli::DEFAULT_WEB_DIR).join("console/console.js");
    let js = std::fs::read_to_string(&script).unwrap();
    assert!(html.contains("console.js"), "index.html loads console.js");
    assert!(
        js.contains("/console/realtime.js"),
        "console.js imports the built client"
    );
}

/// `GET /console/token` mints a token that authenticates its user, with the lifetime asked
/// for; bad input is named; beyond loopback nothing is minted.
#[tokio::test]
async fn console_tokens_authenticate_their_user_only_on_loopback() {
    let server = start(StoreKind::Memory, |_| {}).await;
    let user = Uuid::new_v4();
    let (status, _, body) = http(
        server.addr,
        "GET",
        &format!("/console/token?user_id={user}&ttl_s=60"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let minted: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(minted["user_id"], user.to_string());
    let now = realtime::time::EpochSecs::now().0;
    let exp = minted["exp"].as_i64().unwrap();
    assert!((now + 58..=now + 61).contains(&exp), "exp {exp}, now {now}");
    let token = minted["token"].as_str().unwrap();
    let project = Uuid::new_v4();
    let mut ws = connect(&server, &format!("/?token={token}&project_id={project}"))
        .await
        .expect("the minted token connects");
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    assert_eq!(connections_of_user(&server.app, user).await.len(), 1);

    for (query, names) in [
        ("user_id=nope", "user_id"),
        ("ttl_s=0", "ttl_s"),
        ("ttl_s=x", "ttl_s"),
    ] {
        let (status, _, body) =
            http(server.addr, "GET", &format!("/console/token?{query}"), &[]).await;
        assert_eq!(status, 400, "{query}");
        assert!(body.starts_with(names), "{query}: {body}");
    }
    server.shutdown().await;

    let open = start(StoreKind::Memory, |o| o.addr = "0.0.0.0:0".parse().unwrap()).await;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], open.addr.port()));
    let (status, _, body) = http(loopback, "GET", "/console/token", &[]).await;
    assert_eq!(status, 403);
    assert!(body.contains("loopback"), "{body}");
    open.shutdown().await;
}

/// The status endpoint answers a browser on an allowed origin: the preflight, then the GET
/// with `Access-Control-Allow-Origin`; another origin's preflight is refused.
#[tokio::test]
async fn the_status_endpoint_answers_cors_for_allowed_origins() {
    let server = start(StoreKind::Memory, |o| {
        o.cors_origins = "http://localhost:5173, https://app.example.com".into()
    })
    .await;
    let project = Uuid::new_v4();
    let path = format!("/api/v1/projects/{project}/ws/status");
    let preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ]
    };
    let (status, head, _) = http(
        server.addr,
        "OPTIONS",
        &path,
        &preflight("http://localhost:5173"),
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        head.contains("access-control-allow-origin: http://localhost:5173"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization"),
        "{head}"
    );
    let (status, head, _) = http(
        server.addr,
        "OPTIONS",
        &path,
        &preflight("https://evil.example"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    let user = Uuid::new_v4();
    let _ws = connect(
        &server,
        &format!("/?token={}&project_id={project}", token(user)),
    )
    .await
    .unwrap();
    let bearer = format!("Bearer {}", token(user));
    let (status, head, body) = http(
        server.addr,
        "GET",
        &path,
        &[
            ("authorization", &bearer),
            ("origin", "https://app.example.com"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("access-control-allow-origin: https://app.example.com"),
        "{head}"
    );
    let status_body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status_body["user_ids"], json!([user]));
    server.shutdown().await;
}
