//! The dev server against web pages it must not serve, black-box over real sockets: a request
//! addressed to a foreign name (DNS rebinding) reaches no route; the console's token endpoint
//! answers only its own page, and only under the development secret unless told otherwise; the
//! Invoke and Management APIs want what the AWS SDKs send (a Signature Version 4
//! `Authorization`, no CORS-simple content type), and the real SDK clients still work.

use std::net::SocketAddr;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use devserver::cli::StoreKind;
use e2e::both_stores;
use e2e::dev::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// The answer to one raw HTTP/1.1 request: status, head (lower-cased), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One raw HTTP/1.1 request to `addr` with this `Host` and request target, as a browser or a
/// script would send it; reads the head, then (unless it is a 101) the body its
/// `content-length` gives.
async fn raw(
    addr: SocketAddr,
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let upgrade = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("upgrade"));
    let connection = if upgrade { "" } else { "connection: close\r\n" };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {host}\r\n{extra}{connection}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "connection closed before the head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while status != 101 && body.len() < length {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("the body in time")
            .unwrap();
        assert!(n > 0, "connection closed before the body's end");
        body.extend_from_slice(&chunk[..n]);
    }
    Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A Signature Version 4 `Authorization` header for `service`, shaped as the SDKs write it
/// (the dev server does not verify the signature itself).
fn signed(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/{service}/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={}",
        "0123456789abcdef".repeat(4)
    )
}

/// Request headers, as (name, value).
type Headers<'a> = Vec<(&'a str, &'a str)>;

const INVOKE: &str = "/2015-03-31/functions/broadcaster/invocations";

fn direct(user: Uuid, text: &str) -> Value {
    json!({"user_id": user, "type": "direct_message", "data": {"text": text}})
}

/// Every route, addressed to `evil.example` (as a DNS-rebinding page's requests are): 421 with
/// a body naming the flag, and nothing done. The same requests addressed to loopback names are
/// served; `--allow-host` serves another name.
async fn foreign_hosts_reach_no_route(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let addr = server.addr;
    let port = addr.port();
    let user = Uuid::new_v4();
    let (mut ws, _) = client(&server, Uuid::new_v4()).await;
    let tok = token(user);
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];
    let sig = signed("lambda");
    let api_sig = signed("execute-api");
    let dm = direct(user, "from a rebinding page").to_string();
    let project = Uuid::new_v4();
    let status_path = format!("/api/v1/projects/{project}/ws/status");
    let bearer = format!("Bearer {tok}");
    let ws_paths: Vec<String> = ["/", "/dev", "/api/v1/messages/ws"]
        .iter()
        .map(|p| format!("{p}?token={tok}"))
        .collect();
    let mut requests: Vec<(&str, String, Headers, String)> = Vec::new();
    for path in &ws_paths {
        requests.push(("GET", path.clone(), upgrade.to_vec(), String::new()));
    }
    requests.extend([
        ("GET", "/".to_owned(), vec![], String::new()),
        (
            "GET",
            "/console/console.js".to_owned(),
            vec![],
            String::new(),
        ),
        ("GET", "/console/token".to_owned(), vec![], String::new()),
        (
            "POST",
            INVOKE.to_owned(),
            vec![
                ("authorization", sig.as_str()),
                ("content-type", "application/json"),
            ],
            dm.clone(),
        ),
        (
            "POST",
            "/dev/@connections/AAAAAAAAAAAAAAA=".to_owned(),
            vec![
                ("authorization", api_sig.as_str()),
                ("content-type", "application/octet-stream"),
            ],
            "x".to_owned(),
        ),
        (
            "GET",
            "/@connections/AAAAAAAAAAAAAAA=".to_owned(),
            vec![("authorization", api_sig.as_str())],
            String::new(),
        ),
        (
            "DELETE",
            "/@connections/AAAAAAAAAAAAAAA=".to_owned(),
            vec![("authorization", api_sig.as_str())],
            String::new(),
        ),
        (
            "GET",
            status_path.clone(),
            vec![("authorization", bearer.as_str())],
            String::new(),
        ),
        (
            "OPTIONS",
            status_path.clone(),
            vec![
                ("origin", "http://evil.example"),
                ("access-control-request-method", "GET"),
            ],
            String::new(),
        ),
        ("GET", "/no/such/route".to_owned(), vec![], String::new()),
    ]);
    for (method, target, headers, body) in &requests {
        for evil in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
        ] {
            let answer = raw(addr, evil, method, target, headers, body).await;
            assert_eq!(
                answer.status, 421,
                "{method} {target} Host {evil}: {}",
                answer.body
            );
            assert!(
                answer.body.contains("--allow-host") && answer.body.contains("DNS rebinding"),
                "{}",
                answer.body
            );
        }
        // The same request addressed to the server by a loopback name is served (whatever the
        // route then answers: never 421).
        for own in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            "localhost".to_owned(),
            format!("[::1]:{port}"),
        ] {
            let answer = raw(addr, &own, method, target, headers, body).await;
            assert_ne!(
                answer.status, 421,
                "{method} {target} Host {own}: {}",
                answer.body
            );
        }
    }
    // A request in absolute form names its authority in the target: that counts too.
    let answer = raw(
        addr,
        &format!("127.0.0.1:{port}"),
        "GET",
        "http://evil.example/console/token",
        &[],
        "",
    )
    .await;
    assert_eq!(answer.status, 421, "{}", answer.body);
    // The user connects now: one invocation addressed to localhost reaches it, and nothing
    // else is pending, here or on the other socket.
    let mut target = connect(&server, &format!("/?token={}", token(user)))
        .await
        .unwrap();
    let answer = raw(
        addr,
        &format!("localhost:{port}"),
        "POST",
        INVOKE,
        &[
            ("authorization", sig.as_str()),
            ("content-type", "application/json"),
        ],
        &direct(user, "once").to_string(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(recv(&mut target).await["data"]["text"], "once");
    nothing_pending(&mut target).await;
    nothing_pending(&mut ws).await;
    server.shutdown().await;

    // --allow-host serves another name (as sam local's containers use), and only that one.
    let server = start(kind, |o| {
        o.allow_hosts = vec!["host.docker.internal".into()]
    })
    .await;
    let answer = raw(
        server.addr,
        "host.docker.internal:8080",
        "GET",
        "/console/token",
        &[],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = raw(
        server.addr,
        "evil.example",
        "GET",
        "/console/token",
        &[],
        "",
    )
    .await;
    assert_eq!(answer.status, 421, "{}", answer.body);
    assert!(
        answer.head.contains("content-type: text/plain"),
        "{}",
        answer.head
    );
    server.shutdown().await;
}

/// `GET /console/token` answers the console's own page (same origin, or no `Origin` at all:
/// curl, scripts) and refuses another page's request; a token is minted under another
/// `JWT_SECRET` than the development one only with `--console-tokens-any-secret`.
async fn console_tokens_only_for_the_own_page_and_the_dev_secret(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let own = format!("127.0.0.1:{}", server.addr.port());
    let own_origin = format!("http://{own}");
    for (headers, status) in [
        (vec![], 200),
        (vec![("origin", own_origin.as_str())], 200),
        (vec![("sec-fetch-site", "same-origin")], 200),
        (vec![("origin", "https://evil.example")], 403),
        (vec![("origin", "http://localhost:5173")], 403),
        (vec![("origin", "null")], 403),
        (vec![("sec-fetch-site", "cross-site")], 403),
    ] {
        let answer = raw(server.addr, &own, "GET", "/console/token", &headers, "").await;
        assert_eq!(answer.status, status, "{headers:?}: {}", answer.body);
        if status == 403 {
            assert!(
                answer.body.contains("console's own page"),
                "{}",
                answer.body
            );
            assert!(!answer.body.contains("token\""), "{}", answer.body);
        }
    }
    server.shutdown().await;

    const OTHER: &str = "a-secret-that-is-not-the-development-one";
    let vars = [
        (realtime::runtime::config::MEMBERSHIP, "none".to_owned()),
        (realtime::runtime::config::JWT_SECRET, OTHER.to_owned()),
    ];
    let server = start_with(kind, |_| {}, &vars).await;
    let answer = raw(
        server.addr,
        &format!("localhost:{}", server.addr.port()),
        "GET",
        "/console/token",
        &[],
        "",
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.body.contains("--console-tokens-any-secret"),
        "{}",
        answer.body
    );
    server.shutdown().await;

    let server = start_with(kind, |o| o.console_tokens_any_secret = true, &vars).await;
    let user = Uuid::new_v4();
    let answer = raw(
        server.addr,
        &format!("localhost:{}", server.addr.port()),
        "GET",
        &format!("/console/token?user_id={user}"),
        &[],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let minted: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(minted["user_id"], user.to_string());
    // Signed with JWT_SECRET: it opens a connection of that user.
    let mut ws = connect(
        &server,
        &format!("/?token={}", minted["token"].as_str().unwrap()),
    )
    .await
    .expect("the minted token connects");
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    assert_eq!(connections_of_user(&server.app, user).await.len(), 1);
    server.shutdown().await;
}

/// The Invoke API refuses what a web page can send (no signature, a CORS-simple content
/// type), delivering nothing; the real SDK client, and a raw signed JSON request (the dev
/// console's), still invoke.
async fn the_invoke_api_wants_a_signature_and_no_simple_content_type(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let host = format!("127.0.0.1:{}", server.addr.port());
    let user = Uuid::new_v4();
    let mut ws = connect(&server, &format!("/?token={}", token(user)))
        .await
        .unwrap();
    let dm = direct(user, "injected").to_string();
    let sig = signed("lambda");
    let api_sig = signed("execute-api");
    let refused: [(Headers, u16, &str); 8] = [
        // What a cross-origin form or fetch sends without a preflight.
        (
            vec![
                ("origin", "https://evil.example"),
                ("content-type", "text/plain;charset=UTF-8"),
            ],
            403,
            "Signature Version 4",
        ),
        (
            vec![("content-type", "application/json")],
            403,
            "no Authorization header",
        ),
        (
            vec![
                ("authorization", "Bearer x"),
                ("content-type", "application/json"),
            ],
            403,
            "AWS4-HMAC-SHA256",
        ),
        (
            vec![
                ("authorization", api_sig.as_str()),
                ("content-type", "application/json"),
            ],
            403,
            "Credential",
        ),
        (
            vec![
                ("authorization", sig.as_str()),
                ("content-type", "text/plain"),
            ],
            415,
            "text/plain",
        ),
        (
            vec![
                ("authorization", sig.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            415,
            "application/x-www-form-urlencoded",
        ),
        (
            vec![
                ("authorization", sig.as_str()),
                ("content-type", "multipart/form-data; boundary=x"),
            ],
            415,
            "multipart/form-data",
        ),
        (
            vec![
                ("origin", "https://evil.example"),
                ("authorization", sig.as_str()),
                ("content-type", "text/plain"),
            ],
            415,
            "text/plain",
        ),
    ];
    for (headers, status, names) in refused {
        let answer = raw(server.addr, &host, "POST", INVOKE, &headers, &dm).await;
        assert_eq!(answer.status, status, "{headers:?}: {}", answer.body);
        assert!(answer.body.contains(names), "{headers:?}: {}", answer.body);
        assert!(
            answer.head.contains("x-amzn-errortype: "),
            "{}",
            answer.head
        );
    }
    nothing_pending(&mut ws).await;

    // The dev console's request: signature-shaped, JSON.
    let answer = raw(
        server.addr,
        &host,
        "POST",
        INVOKE,
        &[
            ("authorization", &sig),
            ("content-type", "application/json"),
        ],
        &direct(user, "console").to_string(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(recv(&mut ws).await["data"]["text"], "console");
    // The real SDK (aws-sdk-lambda, as realtime-client builds it).
    let result = invoke_broadcaster(&server, &direct(user, "sdk")).await;
    assert_eq!(result["delivered"], 1, "{result}");
    assert_eq!(recv(&mut ws).await["data"]["text"], "sdk");
    let invoker = realtime::realtime_client::sdk::local_lambda_client(&server.http_url());
    let out = invoker
        .invoke()
        .function_name("broadcaster")
        .payload(aws_sdk_lambda::primitives::Blob::new(
            direct(user, "client").to_string(),
        ))
        .send()
        .await
        .expect("realtime-client's local Lambda client invokes");
    assert_eq!(out.status_code(), 200);
    assert_eq!(recv(&mut ws).await["data"]["text"], "client");
    nothing_pending(&mut ws).await;
    server.shutdown().await;
}

/// The Management API refuses unsigned calls and CORS-simple posts (nothing delivered, nothing
/// closed); the SDK client posts, describes and closes.
async fn the_management_api_wants_a_signature(kind: StoreKind) {
    let server = start(kind, |_| {}).await;
    let host = format!("127.0.0.1:{}", server.addr.port());
    let project = Uuid::new_v4();
    let (mut ws, user) = client(&server, project).await;
    let id = connection_of(&server, project, user).await;
    let path = format!("/dev/@connections/{id}");
    let sig = signed("execute-api");
    let lambda_sig = signed("lambda");
    for (method, headers, status) in [
        ("POST", vec![("content-type", "text/plain")], 403),
        (
            "POST",
            vec![("content-type", "application/octet-stream")],
            403,
        ),
        (
            "POST",
            vec![
                ("authorization", sig.as_str()),
                ("content-type", "text/plain"),
            ],
            415,
        ),
        (
            "POST",
            vec![
                ("authorization", lambda_sig.as_str()),
                ("content-type", "application/octet-stream"),
            ],
            403,
        ),
        ("GET", vec![], 403),
        ("DELETE", vec![], 403),
    ] {
        let answer = raw(server.addr, &host, method, &path, &headers, "{\"x\":1}").await;
        assert_eq!(
            answer.status, status,
            "{method} {headers:?}: {}",
            answer.body
        );
    }
    nothing_pending(&mut ws).await;

    let api = management(&server);
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"hello"}"#))
        .send()
        .await
        .expect("the SDK posts");
    assert_eq!(recv(&mut ws).await, json!({"type": "hello"}));
    api.get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("the SDK describes");
    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("the SDK closes");
    assert_eq!(closed_with(&mut ws).await, 1000);
    server.shutdown().await;
}

both_stores!(
    foreign_hosts_reach_no_route,
    console_tokens_only_for_the_own_page_and_the_dev_secret,
    the_invoke_api_wants_a_signature_and_no_simple_content_type,
    the_management_api_wants_a_signature,
);
