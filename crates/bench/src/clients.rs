//! Benchmark clients: real WebSockets from 127.0.0.x source addresses (so that many thousands
//! fit in the port range), each reader reporting every frame's arrival time as a [`Receipt`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::SplitSink;
use serde::Deserialize;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};
use uuid::Uuid;

pub(crate) type Ws = WebSocketStream<tokio::net::TcpStream>;
pub(crate) type Sink = SplitSink<Ws, Message>;

#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub(crate) event_id: Option<Uuid>,
    pub(crate) data_id: Option<String>,
    /// The frame's `type`.
    pub(crate) kind: Option<String>,
    pub(crate) at: Instant,
}

#[derive(Deserialize)]
pub(crate) struct Frame {
    event_id: Option<Uuid>,
    data: Option<FrameData>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct FrameData {
    id: Option<String>,
}

pub(crate) fn token(user: Uuid) -> String {
    let jwt = realtime::connection::auth::JwtConfig {
        secret: realtime::connection::auth::DEV_JWT_SECRET
            .as_bytes()
            .to_vec(),
        issuer: None,
        audience: None,
    };
    realtime::connection::auth::mint(&jwt, user, 3600)
}

/// Open one WebSocket from source address 127.0.0.`source`.
pub(crate) async fn open(addr: SocketAddr, path_and_query: &str, source: u8) -> Option<Ws> {
    let socket = TcpSocket::new_v4().ok()?;
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
            0,
        ))
        .ok()?;
    let stream = socket.connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{addr}{path_and_query}");
    client_async_with_config(url, stream, Some(config))
        .await
        .ok()
        .map(|(ws, _)| ws)
}

/// `n` clients of `project` (or of no project); their readers report every frame to `tx`.
/// Returns the write halves (dropping them closes the sockets).
pub(crate) async fn clients(
    addr: SocketAddr,
    project: Option<Uuid>,
    n: usize,
    tx: Option<mpsc::UnboundedSender<Receipt>>,
) -> Vec<Sink> {
    let started = Instant::now();
    let opened: Vec<Option<Ws>> = futures::stream::iter(0..n)
        .map(|i| {
            let query = match project {
                Some(p) => format!("/?token={}&project_id={p}", token(Uuid::new_v4())),
                None => format!("/?token={}", token(Uuid::new_v4())),
            };
            async move { open(addr, &query, 1 + (i % 8) as u8).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut sinks = Vec::with_capacity(n);
    for ws in opened.into_iter().flatten() {
        let (sink, mut stream) = ws.split();
        if let Some(tx) = tx.clone() {
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        let at = Instant::now();
                        if let Ok(frame) = serde_json::from_str::<Frame>(&text) {
                            let data_id = frame.data.and_then(|d| d.id);
                            if tx
                                .send(Receipt {
                                    event_id: frame.event_id,
                                    data_id,
                                    kind: frame.kind,
                                    at,
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
        sinks.push(sink);
    }
    eprintln!(
        "  {} of {n} clients connected in {:.1} s",
        sinks.len(),
        started.elapsed().as_secs_f64()
    );
    sinks
}

/// Wait for `expected` receipts matching `matches`; (count, first, last).
pub(crate) async fn receipts(
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
    expected: usize,
    limit: Duration,
    matches: impl Fn(&Receipt) -> bool,
) -> (usize, Option<Instant>, Option<Instant>) {
    let deadline = tokio::time::Instant::now() + limit;
    let (mut count, mut first, mut last) = (0, None::<Instant>, None::<Instant>);
    while count < expected {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) if matches(&r) => {
                count += 1;
                first = Some(first.map_or(r.at, |f| f.min(r.at)));
                last = Some(last.map_or(r.at, |l| l.max(r.at)));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (count, first, last)
}
