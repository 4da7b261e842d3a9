//! End-to-end helpers: where the workspace's built binaries are, and a minimal Lambda Runtime
//! API that hands a function binary events and collects its responses, so that the `main` of
//! each function is exercised as Lambda runs it.

pub mod dev;
pub mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// Path of a binary built by `cargo build --workspace` (the test binary lives in
/// `target/<profile>/deps/`, the function binaries one level up).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `make test` (it builds the workspace first)",
        path.display()
    );
    path
}

/// What the function posted back for one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(serde_json::Value),
    Error(serde_json::Value),
}

/// A Lambda Runtime API on 127.0.0.1 (one request per connection, `connection: close`) that serves `events` in order, one per `next` call, and
/// reports each outcome. After the last event, `next` is never answered, as on a warm, idle
/// sandbox.
pub struct RuntimeApi {
    pub addr: String,
    outcomes: mpsc::Receiver<Outcome>,
}

impl RuntimeApi {
    pub fn start(events: Vec<serde_json::Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, outcomes) = mpsc::channel();
        std::thread::spawn(move || {
            let mut events = events.into_iter().enumerate();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Some((path, body, mut stream)) = read_request(stream) else {
                    continue;
                };
                if path.ends_with("/invocation/next") {
                    let Some((i, event)) = events.next() else {
                        // Park the connection: no more work, as when a sandbox idles.
                        std::mem::forget(stream);
                        continue;
                    };
                    let body = event.to_string();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                         lambda-runtime-aws-request-id: req-{i}\r\nlambda-runtime-deadline-ms: {}\r\n\
                         lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\n\
                         lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                        body.len(),
                        now_ms() + 30_000
                    );
                    let _ = stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(body.as_bytes()));
                } else {
                    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let outcome = if path.ends_with("/response") {
                        Outcome::Response(value)
                    } else {
                        Outcome::Error(value)
                    };
                    let _ = stream.write_all(
                        b"HTTP/1.1 202 Accepted\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                    );
                    if tx.send(outcome).is_err() {
                        return;
                    }
                }
            }
        });
        RuntimeApi { addr, outcomes }
    }

    /// The next outcome the function reported, waiting at most `timeout`.
    pub fn outcome(&self, timeout: Duration) -> Outcome {
        self.outcomes
            .recv_timeout(timeout)
            .expect("the function did not answer in time")
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn read_request(stream: TcpStream) -> Option<(String, Vec<u8>, TcpStream)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body, reader.into_inner()))
}

/// A fixture of `tests/events/`, with its connection times moved to now.
pub fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if let Some(ctx) = event
        .get_mut("requestContext")
        .and_then(|c| c.as_object_mut())
        && ctx.contains_key("connectedAt")
    {
        let now = now_ms() as u64;
        ctx.insert("connectedAt".into(), now.into());
        ctx.insert("requestTimeEpoch".into(), now.into());
    }
    event
}
