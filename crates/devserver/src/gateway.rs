//! The live sockets, by connection id, and the Management API's fault model: what
//! `PostToConnection` posts to, reads and closes. [`Gateway::post_to_connection`] is the post
//! itself; the HTTP route and the in-process sender (`--delivery direct`) both call it, so both
//! see the same faults, limits and 410s.
//!
//! Each socket's write half sits behind a lock, so a post writes straight to the socket from
//! the request that made it (no per-connection queue to allocate or drain), and a 200 from
//! `POST /@connections/{id}` means the frame was handed to the socket. What bounds a
//! connection's backlog is the socket's own buffers: a client that stops reading fills them,
//! its next write cannot finish within [`SEND_TIMEOUT`], and it is closed
//! ([`CLOSE_SLOW_CONSUMER`]) and answered 410 from then on, so that no post waits on it longer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU16, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::SinkExt;
use futures::stream::SplitSink;
use realtime::time::EpochMs;
use tokio::sync::{Mutex, Notify, watch};

use crate::events::ConnectionContext;
use crate::faults::{Fault, Faults};

/// Largest payload PostToConnection accepts (API Gateway: 128 KB).
pub const MAX_POST_BYTES: usize = 128 * 1024;
/// How long one frame may take to reach a socket's buffers: past it the client has stopped
/// reading (shorter than the Management API client's 3 s timeout, so the post answers 410).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The close code of a client that stopped reading its messages.
pub const CLOSE_SLOW_CONSUMER: u16 = 1008;
/// How long a close frame or the close handshake may wait on a socket that is not reading.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// One open socket.
pub struct Socket {
    pub ctx: Arc<ConnectionContext>,
    last_active_at: AtomicI64,
    /// `None` once [`Socket::finish`] has dropped it (with the stream dropped, that closes
    /// the TCP connection).
    sink: Mutex<Option<SplitSink<WebSocket, Message>>>,
    /// Set when the server closes the socket; wakes the socket's reader.
    closed_with: AtomicU16,
    closing: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// No such open connection (API Gateway's 410 GoneException).
    Gone,
}

impl Socket {
    pub fn new(ctx: Arc<ConnectionContext>, sink: SplitSink<WebSocket, Message>) -> Self {
        Socket {
            last_active_at: AtomicI64::new(ctx.connected_at.0),
            ctx,
            sink: Mutex::new(Some(sink)),
            closed_with: AtomicU16::new(0),
            closing: Notify::new(),
        }
    }

    pub fn touch(&self) {
        self.last_active_at
            .store(EpochMs::now().0, Ordering::Relaxed);
    }

    pub fn last_active_at(&self) -> EpochMs {
        EpochMs(self.last_active_at.load(Ordering::Relaxed))
    }

    /// Write one frame.
    pub async fn send(&self, message: Message) -> Result<(), PostError> {
        if self.closed_with.load(Ordering::Acquire) != 0 {
            return Err(PostError::Gone);
        }
        let write = async {
            match self.sink.lock().await.as_mut() {
                Some(sink) => sink.send(message).await.map_err(|_| PostError::Gone),
                None => Err(PostError::Gone),
            }
        };
        match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(gone)) => Err(gone),
            Err(_) => {
                tracing::warn!(
                    connection_id = %self.ctx.connection_id,
                    "client is not reading its messages; closing it"
                );
                self.close(CLOSE_SLOW_CONSUMER, "client is not reading its messages")
                    .await;
                Err(PostError::Gone)
            }
        }
    }

    /// Close from the server side with `code`; the reader notices and runs `$disconnect`.
    pub async fn close(&self, code: u16, reason: &'static str) {
        if self
            .closed_with
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let send = async {
                if let Some(sink) = self.sink.lock().await.as_mut() {
                    let _ = sink.send(Message::Close(Some(frame))).await;
                }
            };
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, send).await;
            self.closing.notify_one();
        }
    }

    /// The close code the server sent, once it closed the socket.
    pub fn closed_with(&self) -> Option<u16> {
        Some(self.closed_with.load(Ordering::Acquire)).filter(|&c| c != 0)
    }

    /// Resolves when the server closes the socket.
    pub async fn closing(&self) {
        self.closing.notified().await
    }

    /// Flush and close the write half (completes a close handshake the peer started), then
    /// drop it: with the read half dropped too, the TCP connection closes, so the client's
    /// `close()` is answered before `$disconnect` runs, as on API Gateway.
    pub async fn finish(&self) {
        let Some(mut sink) = self.sink.lock().await.take() else {
            return;
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
    }
}

/// What one PostToConnection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Delivered,
    /// No such open connection (410).
    Gone,
    /// Over [`MAX_POST_BYTES`] (413).
    TooLarge,
    /// An injected fault (429 or 500).
    Faulted(Fault),
}

/// The registry of open sockets, and the faults every Management API call goes through.
pub struct Gateway {
    sockets: RwLock<HashMap<String, Arc<Socket>>>,
    /// Sockets accepted and not yet through `$disconnect`.
    open: watch::Sender<usize>,
    pub faults: Faults,
}

impl Gateway {
    pub fn new(faults: Faults) -> Self {
        Gateway {
            sockets: RwLock::default(),
            open: watch::Sender::new(0),
            faults,
        }
    }

    /// PostToConnection: fault injection (latency, throttle, errors), the size limit, then one
    /// frame to the socket, text when the payload is UTF-8 and binary otherwise.
    pub async fn post_to_connection(&self, connection_id: &str, body: axum::body::Bytes) -> Posted {
        if let Some(fault) = self.faults.apply().await {
            return Posted::Faulted(fault);
        }
        if body.len() > MAX_POST_BYTES {
            return Posted::TooLarge;
        }
        let message = match std::str::from_utf8(&body) {
            Ok(_) => {
                Message::Text(axum::extract::ws::Utf8Bytes::try_from(body).expect("checked UTF-8"))
            }
            Err(_) => Message::Binary(body),
        };
        match self.post(connection_id, message).await {
            Ok(()) => Posted::Delivered,
            Err(_) => Posted::Gone,
        }
    }

    pub fn register(&self, socket: Arc<Socket>) {
        let id = socket.ctx.connection_id.clone();
        self.sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, socket);
        self.open.send_modify(|n| *n += 1);
    }

    /// Remove from the registry: from now on posts answer 410.
    pub fn unregister(&self, connection_id: &str) {
        self.sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(connection_id);
    }

    /// The socket's `$disconnect` has run.
    pub fn disconnected(&self) {
        self.open.send_modify(|n| *n = n.saturating_sub(1));
    }

    pub fn get(&self, connection_id: &str) -> Option<Arc<Socket>> {
        self.sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(connection_id)
            .cloned()
    }

    /// Deliver one frame to a connection.
    pub async fn post(&self, connection_id: &str, message: Message) -> Result<(), PostError> {
        self.get(connection_id)
            .ok_or(PostError::Gone)?
            .send(message)
            .await
    }

    /// Close every socket with `code` (shutdown).
    pub async fn close_all(&self, code: u16, reason: &'static str) {
        let all: Vec<_> = self
            .sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        futures::future::join_all(all.iter().map(|s| s.close(code, reason))).await;
    }

    /// Wait until the number of sockets not yet through `$disconnect` satisfies `pred`.
    pub async fn wait_open(&self, pred: impl Fn(usize) -> bool) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|n| pred(*n)).await;
    }

    pub fn open_count(&self) -> usize {
        *self.open.borrow()
    }
}
