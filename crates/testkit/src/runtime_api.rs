//! A local Lambda Runtime API: hands a function binary events one by one and collects what it
//! posts back, the way the Lambda service drives a `provided.al2023` bootstrap. Tests use it to
//! run the real function binaries; `bench` uses it to time their start-up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    first_request: mpsc::Receiver<Instant>,
    handed_out: mpsc::Receiver<Instant>,
}

impl RuntimeApi {
    pub fn start(events: Vec<serde_json::Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, outcomes) = mpsc::channel();
        let (first_tx, first_request) = mpsc::channel();
        let (handout_tx, handed_out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut events = events.into_iter().enumerate();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Some((path, body, mut stream)) = read_request(stream) else {
                    continue;
                };
                let _ = first_tx.send(Instant::now());
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
                    let _ = handout_tx.send(Instant::now());
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
        RuntimeApi {
            addr,
            outcomes,
            first_request,
            handed_out,
        }
    }

    /// When the function first called the API (its start-up is over), waiting at most `timeout`.
    pub fn first_request(&self, timeout: Duration) -> Option<Instant> {
        self.first_request.recv_timeout(timeout).ok()
    }

    /// When the next event was handed to the function, waiting at most `timeout`.
    pub fn handed_out(&self, timeout: Duration) -> Option<Instant> {
        self.handed_out.recv_timeout(timeout).ok()
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
