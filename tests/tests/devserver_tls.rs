//! `devhive-realtime dev --tls` as a process (`make dev DEV_ARGS=--tls`): it prints its CA, a
//! WebSocket client trusting that CA connects over WSS, and the real broadcaster binary, given
//! `AWS_CA_BUNDLE`, posts to it over HTTPS through the AWS SDK, as does the dev server's own
//! broadcaster behind its Invoke API; without the CA, the same SDK refuses the server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use e2e::{Outcome, RuntimeApi, workspace_binary};
use futures::StreamExt;
use realtime::delivery::sender::{ConnectionSender, PostOutcome};
use realtime_client::Invoker;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Kills a child process when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The dev server with `--tls` over DynamoDB Local; its address and the CA path its banner
/// printed.
fn dev_server_tls(ca_out: &std::path::Path, table: &str) -> (Reap, String, PathBuf) {
    let mut child = Command::new(workspace_binary("devhive-realtime"))
        .args([
            "dev",
            "--addr",
            "127.0.0.1:0",
            "--store",
            "dynamodb",
            "--tls",
        ])
        .arg("--tls-ca-out")
        .arg(ca_out)
        .env("CONNECTIONS_TABLE", table)
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env_remove("MEMBERSHIP")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reap = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut addr, mut ca) = (None, None);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(url) = words.iter().find(|w| w.starts_with("wss://")) {
                let host = url.trim_start_matches("wss://").split('/').next().unwrap();
                addr.get_or_insert(host.to_owned());
            }
            if line.trim_start().starts_with("TLS CA") {
                ca = words.get(2).map(PathBuf::from);
            }
            if line.contains("Get a token") {
                let _ = tx.send((addr.take(), ca.take()));
            }
        }
    });
    let (addr, ca) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the dev server's banner");
    (
        reap,
        addr.expect("a wss:// URL in the banner"),
        ca.expect("the CA in the banner"),
    )
}

fn trusting(ca: &std::path::Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The broadcaster binary under a local Runtime API, posting to `endpoint`, one event.
fn broadcast(
    endpoint: &str,
    ca_bundle: &std::path::Path,
    table: &str,
    event: serde_json::Value,
) -> serde_json::Value {
    let runtime = RuntimeApi::start(vec![event]);
    let mut cmd = Command::new(workspace_binary("broadcaster"));
    for var in realtime::runtime::config::ALL_VARIABLES
        .iter()
        .filter(|v| **v != realtime::runtime::config::AWS_ENDPOINT_URL_DYNAMODB)
    {
        cmd.env_remove(var);
    }
    let child = cmd
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "broadcaster")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("CONNECTIONS_TABLE", table)
        .env("MEMBERSHIP", "none")
        .env("WEBSOCKET_ENDPOINT", endpoint)
        .env("AWS_CA_BUNDLE", ca_bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _reap = Reap(child);
    match runtime.outcome(Duration::from_secs(30)) {
        Outcome::Response(v) => v,
        Outcome::Error(e) => panic!("invocation error: {e}"),
    }
}

/// The next text frame of type `kind` on `ws` (others are skipped), within 10 s.
async fn next_of_type<S>(ws: &mut S, kind: &str) -> serde_json::Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let frame = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if v["type"] == kind {
                        return v;
                    }
                }
                other => panic!("the socket ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), frame)
        .await
        .unwrap_or_else(|_| panic!("no {kind} frame over WSS"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_the_printed_ca_and_sdk_posts_over_https_with_aws_ca_bundle() {
    let dir = std::env::temp_dir().join(format!("devhive-tls-{}", Uuid::new_v4()));
    let table = format!("dev-tls-{}", Uuid::new_v4());
    let (_server, addr, ca) = dev_server_tls(&dir.join("ca.pem"), &table);
    assert_eq!(ca, dir.join("ca.pem"), "the CA is where --tls-ca-out says");
    let port = addr.rsplit(':').next().unwrap();

    // A WebSocket client over TLS, trusting the printed CA, named as a browser names it.
    let project = Uuid::new_v4();
    let token = e2e::dev::token(Uuid::new_v4());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(trusting(&ca)))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the printed CA");
    let url = format!("wss://localhost:{port}/?token={token}&project_id={project}");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("WebSocket upgrade over TLS");

    // The real broadcaster posts to it through the SDK over HTTPS, trusting AWS_CA_BUNDLE.
    let endpoint = format!("https://127.0.0.1:{port}/dev");
    let event = json!({"project_id": project, "type": "over_tls", "data": {"ok": true}});
    let summary = broadcast(&endpoint, &ca, &table, event);
    assert_eq!(
        (&summary["recipients"], &summary["delivered"]),
        (&json!(1), &json!(1)),
        "{summary}"
    );
    let frame = next_of_type(&mut ws, "over_tls").await;
    assert_eq!(frame["data"], json!({"ok": true}));

    // The dev server's own broadcaster (behind its Invoke API, over HTTPS with the CA) posts to
    // its Management API over HTTPS with the deployed broadcaster's sender.
    let ca_der: Vec<_> = CertificateDer::pem_file_iter(&ca)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lambda = realtime_client::sdk::local_lambda_client_with(
        &format!("https://127.0.0.1:{port}"),
        realtime_client::http::client_trusting(ca_der),
    );
    let event = json!({"project_id": project, "type": "from_the_dev_server", "data": {"n": 2}});
    let answer = realtime_client::LambdaInvoker::new(lambda)
        .invoke("broadcaster", event.to_string().into_bytes(), false)
        .await
        .expect("Invoke over HTTPS")
        .expect("a RequestResponse result");
    let summary: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        (&summary["recipients"], &summary["delivered"]),
        (&json!(1), &json!(1)),
        "{summary}"
    );
    let frame = next_of_type(&mut ws, "from_the_dev_server").await;
    assert_eq!(frame["data"], json!({"n": 2}));

    // Without the CA (the system's authorities only), the SDK's client refuses the server.
    let untrusting = realtime::aws::management_api::ManagementApiSender::local(&endpoint);
    match untrusting.post("nobody", b"{}").await {
        PostOutcome::Retry(reason) => assert!(
            reason.to_lowercase().contains("certificate"),
            "a certificate error: {reason}"
        ),
        other => panic!("refused by the TLS handshake, not {other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}
