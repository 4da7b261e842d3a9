//! Helpers for tests against a running dev server: start one on a free port over either
//! store, mint tokens, connect real WebSocket clients, and build real AWS SDK clients for its
//! Management API and Lambda Invoke API.

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use devserver::cli::{DevOptions, StoreKind};
use devserver::{DevServer, Running};
use futures::{SinkExt, StreamExt, TryStreamExt};
use realtime::runtime::config::{self, Config};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(10);

/// A dev server on a free port with `tweak` applied to the default options.
pub async fn start(kind: StoreKind, tweak: impl FnOnce(&mut DevOptions)) -> Running {
    start_with(kind, tweak, &[(config::MEMBERSHIP, "none".to_owned())]).await
}

/// [`start`] with these configuration variables (none set by default: give `MEMBERSHIP` or
/// `DATABASE_URL`).
pub async fn start_with(
    kind: StoreKind,
    tweak: impl FnOnce(&mut DevOptions),
    vars: &[(&'static str, String)],
) -> Running {
    let mut options = DevOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        store: Some(kind),
        ..DevOptions::default()
    };
    tweak(&mut options);
    // Presence frames are off unless a test turns them on (tests/tests/presence.rs): the
    // other suites count every frame their clients get.
    let mut config = Config::default().with(config::PRESENCE_MAX_SUBSCRIBERS, "0".to_owned());
    for (name, value) in vars {
        config = config.with(name, value.clone());
    }
    if kind == StoreKind::Dynamodb {
        // DynamoDB Local, unless the caller put something in front of it (tests/faults).
        if !vars
            .iter()
            .any(|(name, _)| *name == config::AWS_ENDPOINT_URL_DYNAMODB)
        {
            config = config.with(config::AWS_ENDPOINT_URL_DYNAMODB, dynamodb_local());
        }
        config = config.with(config::CONNECTIONS_TABLE, format!("dev-{}", Uuid::new_v4()));
    }
    DevServer::new(options, config)
        .await
        .expect("dev server config")
        .start()
        .await
        .expect("listen")
}

/// DynamoDB Local's address, as `make test` exports it.
pub fn dynamodb_local() -> String {
    std::env::var(config::AWS_ENDPOINT_URL_DYNAMODB)
        .expect("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`")
}

/// DynamoDB as AWS documents it in front of DynamoDB Local (`tests/faults/dynamodb.py` with
/// `args`), for as long as the returned value lives; and its endpoint.
pub fn faulty_dynamodb(args: &[&str]) -> (FaultProxy, String) {
    use std::io::BufRead;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/faults/dynamodb.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(["--upstream", &dynamodb_local()])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs tests/faults/dynamodb.py");
    let stdout = child.stdout.take().unwrap();
    let proxy = FaultProxy(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the fault proxy prints where it listens");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the fault proxy did not start: {line:?}"))
        .to_owned();
    (proxy, format!("http://{addr}"))
}

/// The fault proxy's process, stopped when dropped.
pub struct FaultProxy(std::process::Child);

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dev server over DynamoDB Local with `DATABASE_URL` set (so membership is checked in
/// Postgres and the relay runs), returned once the relay listens.
pub async fn start_with_relay(database_url: &str) -> Running {
    let server = start_with(
        StoreKind::Dynamodb,
        |_| {},
        &[(config::DATABASE_URL, database_url.to_owned())],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(20), server.relay_ready())
        .await
        .expect("relay listening");
    server
}

/// A new database on the throwaway Postgres, migrated; its URL.
pub async fn migrated_database() -> String {
    let admin = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests with `make test`");
    let url =
        realtime::postgres::create_database(&admin, &format!("t_{}", Uuid::new_v4().simple()))
            .await
            .expect("create database");
    realtime::postgres::migrate(&url).await.expect("migrate");
    url
}

pub fn token(user: Uuid) -> String {
    let jwt = realtime::connection::auth::JwtConfig {
        secret: realtime::connection::auth::DEV_JWT_SECRET
            .as_bytes()
            .to_vec(),
        issuer: None,
        audience: None,
    };
    realtime::connection::auth::mint(&jwt, user, 600)
}

pub async fn connect(server: &Running, path_and_query: &str) -> Result<Ws, tungstenite::Error> {
    let url = format!("ws://{}{path_and_query}", server.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
}

/// A client of `project` (subscribed at connect) for a new user.
pub async fn client(server: &Running, project: Uuid) -> (Ws, Uuid) {
    let user = Uuid::new_v4();
    let ws = connect(
        server,
        &format!("/?token={}&project_id={project}", token(user)),
    )
    .await
    .expect("connect");
    (ws, user)
}

pub async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// The next text frame as JSON (control frames skipped), failing after `WAIT`.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no frame in time")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Wait for the server's close frame and return its code.
pub async fn closed_with(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| u16::from(f.code)).unwrap_or(1005);
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Ping and expect `pong` as the very next message: proves nothing else was queued first.
pub async fn nothing_pending(ws: &mut Ws) {
    send(ws, json!({"action": "ping"})).await;
    assert_eq!(
        recv(ws).await,
        json!({"type": "pong"}),
        "an unexpected frame arrived before pong"
    );
}

pub fn management(server: &Running) -> aws_sdk_apigatewaymanagement::Client {
    let conf = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!(
            "{}/{}",
            server.http_url(),
            server.app.options.stage
        ))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(realtime::realtime_client::http::client())
        // Each call is one request, so the test sees the server's answer, not the retry policy's.
        .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(conf)
}

/// Every connection a store listing yields, all pages.
pub async fn listed(
    pages: realtime::connection::store::PageStream<'_>,
) -> Vec<realtime::connection::store::Subscriber> {
    let pages: Vec<_> = pages.try_collect().await.unwrap();
    pages.into_iter().flatten().collect()
}

/// The connection ids of `project`, by user.
pub async fn connections_of(app: &devserver::state::App, project: Uuid) -> Vec<(Uuid, String)> {
    listed(app.store().project_subscribers(project))
        .await
        .into_iter()
        .map(|s| (s.user_id, s.connection_id))
        .collect()
}

/// The connection ids `user` holds, as the store has them.
pub async fn connections_of_user(app: &devserver::state::App, user: Uuid) -> Vec<String> {
    listed(app.store().user_connections(user))
        .await
        .into_iter()
        .map(|s| s.connection_id)
        .collect()
}

pub async fn connection_of(server: &Running, project: Uuid, user: Uuid) -> String {
    connections_of(&server.app, project)
        .await
        .into_iter()
        .find(|(u, _)| *u == user)
        .expect("connection in the store")
        .1
}

pub async fn all_disconnected(server: &Running) {
    tokio::time::timeout(WAIT, server.app.gateway.wait_open(|n| n == 0))
        .await
        .expect("sockets did not close");
}

/// A raw HTTP/1.1 GET (the status endpoint).
pub async fn http_get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, _, body) = http(addr, "GET", path, &headers).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A raw HTTP/1.1 request: the status, the head's header lines (lower-cased) and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{extra}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A Lambda client for the dev server's Invoke API (one request per call, no retries).
pub fn lambda(server: &Running) -> aws_sdk_lambda::Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .endpoint_url(server.http_url())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(realtime::realtime_client::http::client())
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

/// Invoke the broadcaster synchronously through the Invoke API; its JSON result (fan-out has
/// finished when this returns).
pub async fn invoke_broadcaster(server: &Running, payload: &Value) -> Value {
    let out = lambda(server)
        .invoke()
        .function_name("broadcaster")
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 200);
    assert!(
        out.function_error().is_none(),
        "function error: {:?}",
        out.payload()
    );
    serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap()
}

/// Assert `reply` acknowledges a subscription to `project`, with the stream's position
/// (`seq`, `epoch`: the dev server keeps events for recovery); the position.
pub fn subscribed(reply: &Value, project: Uuid) -> (u64, String) {
    assert_eq!(
        (&reply["type"], &reply["message"], &reply["project_id"]),
        (&json!("subscribed"), &json!("subscribed"), &json!(project)),
        "{reply}"
    );
    let seq = reply["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("a seq: {reply}"));
    let epoch = reply["epoch"]
        .as_str()
        .unwrap_or_else(|| panic!("an epoch: {reply}"));
    (seq, epoch.to_owned())
}
