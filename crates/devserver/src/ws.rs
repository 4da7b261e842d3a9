//! WebSocket connections: the upgrade becomes `$connect`, each frame a message on the route
//! API Gateway would select (`$request.body.action`), the close `$disconnect`, all through the
//! same handlers the Lambdas run (`realtime::runtime::handlers`). API Gateway's limits are
//! emulated: 32 KB frames, 128 KB messages (close 1009), the idle timeout and the maximum
//! duration, with the reconnect hint a few minutes before it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use futures::stream::SplitStream;
use realtime::aws_lambda_events::encodings::Body;
use realtime::connection::lifecycle::ROUTE_DEFAULT;
use realtime::wire::events::RECONNECT_HINT;
use serde::Deserialize;

use crate::events::{self, ConnectionContext};
use crate::gateway::Socket;
use crate::state::{App, lambda_event, or_internal_error};

pub const MAX_FRAME_BYTES: usize = 32 * 1024;
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Initial read buffer per socket (allocated up front, grown on demand): client messages are
/// small, and idle sockets dominate the dev server's memory.
pub const READ_BUFFER_BYTES: usize = 256;
/// Close codes API Gateway uses.
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_NO_STATUS: u16 = 1005;
const CLOSE_ABNORMAL: u16 = 1006;

use realtime::wire::client::MESSAGE_ROUTES;

/// API Gateway's route selection: the `action` of a JSON body when it names a route, else `$default`.
pub fn route_key(body: &str) -> &'static str {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        action: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Probe>(body)
        .ok()
        .and_then(|p| p.action)
        .and_then(|a| MESSAGE_ROUTES.into_iter().find(|r| *r == a))
        .unwrap_or(ROUTE_DEFAULT)
}

/// A connection id in API Gateway's shape (16 characters ending in `=`).
pub fn new_connection_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id: String = bytes[..15]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    id.push('=');
    id
}

/// The old local WebSocket URL, still served.
pub const LEGACY_PATH: &str = "/api/v1/messages/ws";

/// `GET /` (and `/api/v1/messages/ws`, `/{stage}`): run `$connect`, then upgrade or refuse.
/// A browser's plain `GET /` gets the dev console instead; any other single-segment path than
/// the stage is not a WebSocket endpoint (404).
pub async fn upgrade(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let path = uri.path();
    let stage_path = path.strip_prefix('/') == Some(app.options.stage.as_str());
    if path != "/" && path != LEGACY_PATH && !stage_path {
        return crate::not_found::not_found(State(app), uri).await;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) if path == "/" => return crate::console::page(&app).await,
        Err(rejection) => {
            return (
                rejection.status(),
                format!(
                    "{}: {path} is a WebSocket endpoint; connect with a WebSocket client \
                     (ws://HOST{path}?token=TOKEN)\n",
                    rejection.body_text()
                ),
            )
                .into_response();
        }
    };
    let ctx = ConnectionContext {
        connection_id: new_connection_id(),
        connected_at: realtime::time::EpochMs::now(),
        domain_name: headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned(),
        stage: app.options.stage.clone(),
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
    };
    let event = events::connect(&ctx, &headers, uri.query());
    let response = or_internal_error(app.handlers.connect.handle(lambda_event(event)).await);
    if !(200..300).contains(&response.status_code) {
        let status = StatusCode::from_u16(response.status_code as u16)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match response.body {
            Some(Body::Text(t)) => t,
            _ => String::new(),
        };
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let mut ws = ws
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0);
    if let Some(protocol) = response
        .headers
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|p| p.to_str().ok())
    {
        ws = ws.protocols([protocol.to_owned()]);
    }
    // Shared by both callbacks: whatever a callback captures stays in the connection's task
    // for its whole life, so they capture pointers rather than the context itself.
    let ctx = Arc::new(ctx);
    let failed_app = app.clone();
    let failed_ctx = ctx.clone();
    ws.on_failed_upgrade(move |error| {
        tracing::warn!(connection_id = %failed_ctx.connection_id, %error, "upgrade failed after $connect");
        tokio::spawn(async move {
            let event = events::disconnect(&failed_ctx, CLOSE_ABNORMAL, "upgrade failed");
            or_internal_error(failed_app.handlers.disconnect.handle(lambda_event(event)).await);
        });
    })
    .on_upgrade(move |socket| serve(app, ctx, socket))
}

fn is_too_big(error: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(Error::Capacity(_)) = e.downcast_ref::<Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// One connection, from upgrade to `$disconnect`: registered here, then served by [`run`].
/// Not an `async fn`: an async fn's arguments stay in its future for as long as it runs, and
/// the WebSocket and context would add ~500 bytes to every idle connection (BENCHMARKS.md).
fn serve(
    app: Arc<App>,
    ctx: Arc<ConnectionContext>,
    socket: WebSocket,
) -> impl Future<Output = ()> + Send {
    let (sink, stream) = socket.split();
    let socket = Arc::new(Socket::new(ctx, sink));
    app.gateway.register(socket.clone());
    run(app, socket, stream)
}

async fn run(app: Arc<App>, socket: Arc<Socket>, mut stream: SplitStream<WebSocket>) {
    // One timer for every limit: it fires at the idle deadline, at the reconnect hint (a few
    // minutes before the end, as the sweeper does on AWS), or at the end of the connection's
    // lifetime, whichever is first (one timer per socket instead of three).
    let idle_timeout = app.options.idle_timeout();
    let started = tokio::time::Instant::now();
    let ends_at = started + app.options.max_duration();
    let hint_at = started + app.options.reconnect_hint_after();
    let mut hinted = false;
    let next_deadline = move |hinted: bool| {
        let deadline = (tokio::time::Instant::now() + idle_timeout).min(ends_at);
        if hinted {
            deadline
        } else {
            deadline.min(hint_at)
        }
    };
    let timer = tokio::time::sleep_until(next_deadline(hinted));
    tokio::pin!(timer);

    let (code, reason): (u16, String) = loop {
        tokio::select! {
            () = socket.closing() => break (socket.closed_with().unwrap_or(CLOSE_GOING_AWAY), "closed by the server".into()),
            () = &mut timer => {
                let now = tokio::time::Instant::now();
                if !hinted && now >= hint_at && now < ends_at {
                    hinted = true;
                    let _ = Box::pin(socket.send(Message::Text(RECONNECT_HINT.into()))).await;
                    timer.as_mut().reset(next_deadline(hinted));
                    continue;
                }
                let reason = if now >= ends_at { "maximum connection duration" } else { "idle timeout" };
                Box::pin(socket.close(CLOSE_GOING_AWAY, "Going away")).await;
                break (CLOSE_GOING_AWAY, reason.into());
            }
            frame = stream.next() => {
                let (body, binary) = match frame {
                    Some(Ok(Message::Text(text))) => (text.as_str().to_owned(), false),
                    // Binary frames reach `$default` base64-encoded, as API Gateway passes them.
                    Some(Ok(Message::Binary(data))) => (BASE64.encode(&data), true),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        socket.touch();
                        timer.as_mut().reset(next_deadline(hinted));
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or((CLOSE_NO_STATUS, String::new()), |f| (f.code, f.reason.as_str().to_owned()));
                    }
                    Some(Err(error)) if is_too_big(&error) => {
                        Box::pin(socket.close(CLOSE_TOO_BIG, "Message too big")).await;
                        break (CLOSE_TOO_BIG, "message too big".into());
                    }
                    Some(Err(_)) | None => break (CLOSE_ABNORMAL, "connection lost".into()),
                };
                socket.touch();
                timer.as_mut().reset(next_deadline(hinted));
                // Boxed: the event and the handler's state exist only while a message is in
                // flight, instead of enlarging every idle connection's task (BENCHMARKS.md).
                Box::pin(handle_message(&app, &socket, body, binary)).await;
            }
        }
    };

    // The read half goes first: once `disconnect` has closed and dropped the write half, the
    // TCP connection is closed and the client has its answer before `$disconnect` runs.
    drop(stream);
    // Boxed, like the per-message work: the `$disconnect` event is a large struct, and held
    // across an await here it would be part of every idle connection's task (BENCHMARKS.md).
    Box::pin(disconnect(&app, &socket, code, reason)).await;
}

/// After the socket closed: out of the registry, close handshake finished, `$disconnect`.
async fn disconnect(app: &App, socket: &Socket, code: u16, reason: String) {
    app.gateway.unregister(&socket.ctx.connection_id);
    socket.finish().await;
    // API Gateway runs `$disconnect` on a best-effort basis: `--disconnect-loss-rate` plays
    // the ones it never runs (the item stays until a post finds it gone, or its TTL).
    if app.gateway.faults.disconnect_lost() {
        tracing::warn!(connection_id = %socket.ctx.connection_id, "injected: $disconnect not run");
    } else {
        let event = events::disconnect(&socket.ctx, code, &reason);
        or_internal_error(app.handlers.disconnect.handle(lambda_event(event)).await);
    }
    app.gateway.disconnected();
}

/// One client message through the message route API Gateway would pick; the reply goes back on
/// the socket.
async fn handle_message(app: &App, socket: &Socket, body: String, binary: bool) {
    let route = if binary {
        ROUTE_DEFAULT
    } else {
        route_key(&body)
    };
    let event = events::message(&socket.ctx, route, body, binary);
    let response = or_internal_error(app.handlers.message.handle(lambda_event(event)).await);
    if let Some(Body::Text(reply)) = response.body
        && !reply.is_empty()
    {
        let _ = socket.send(Message::Text(reply.into())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_action_field() {
        assert_eq!(
            route_key(r#"{"action":"subscribe","project_id":"x"}"#),
            "subscribe"
        );
        assert_eq!(route_key(r#"{"action":"ping"}"#), "ping");
        assert_eq!(route_key(r#"{"action":"unsubscribe"}"#), "unsubscribe");
        assert_eq!(route_key(r#"{"action":"explode"}"#), "$default");
        assert_eq!(route_key(r#"{"action":7}"#), "$default");
        assert_eq!(route_key(r#"{"type":"join_project"}"#), "$default");
        assert_eq!(route_key("not json"), "$default");
    }

    /// The size of a type `F` returns, without calling it.
    fn output_size<F, A, B, C, Fut>(_: &F) -> usize
    where
        F: Fn(A, B, C) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every idle connection holds one of these futures: keep what exists only while a message
    /// or the disconnect is handled out of it (boxed), and the arguments small. It was 2,384
    /// bytes when the `$disconnect` event was held across an await (BENCHMARKS.md, capacity).
    #[test]
    fn the_per_connection_future_stays_small() {
        let size = output_size(&run);
        assert!(size <= 512, "run() future is {size} bytes");
        assert_eq!(output_size(&serve), size, "serve adds nothing to it");
    }

    #[test]
    fn connection_ids_look_like_api_gateways() {
        let id = new_connection_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('=') && id[..15].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(id, new_connection_id());
    }
}
