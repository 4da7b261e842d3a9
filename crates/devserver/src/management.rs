//! The API Gateway Management API (`/@connections/{id}`, also under `/{stage}/`): POST
//! delivers to the socket, GET describes the connection, DELETE closes it. Errors carry the
//! status, `x-amzn-errortype` header and JSON body the AWS SDK turns into typed errors
//! (`GoneException`, `LimitExceededException`, `PayloadTooLargeException`).
//!
//! [`post_to_connection`] is the post itself; the HTTP route and [`DirectSender`] (the dev
//! server's broadcaster with `--delivery direct`) both call it, so both see the same faults,
//! limits and 410s.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use realtime::sender::{ConnectionSender, PostOutcome};

use axum::body::Bytes;
use axum::extract::ws::Message;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::Fault;
use crate::server::App;

/// Largest payload PostToConnection accepts (API Gateway: 128 KB).
pub const MAX_POST_BYTES: usize = 128 * 1024;

pub fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", error_type),
            ("content-type", "application/json"),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "the connection is gone")
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Throttled => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "rate exceeded",
        ),
        Fault::Internal => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "injected fault",
        ),
    }
}

fn connection_id(params: &HashMap<String, String>) -> &str {
    params.get("id").map(String::as_str).unwrap_or_default()
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

/// PostToConnection: fault injection (latency, throttle, errors), the size limit, then one
/// frame to the socket, text when the payload is UTF-8 and binary otherwise.
pub async fn post_to_connection(app: &App, connection_id: &str, body: Bytes) -> Posted {
    if let Some(fault) = app.faults.apply().await {
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
    match app.gateway.post(connection_id, message).await {
        Ok(()) => Posted::Delivered,
        Err(_) => Posted::Gone,
    }
}

pub async fn post(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    match post_to_connection(&app, connection_id(&params), body).await {
        Posted::Delivered => StatusCode::OK.into_response(),
        Posted::Gone => gone(),
        Posted::TooLarge => aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "payload over 128 KB",
        ),
        Posted::Faulted(fault) => fault_response(fault),
    }
}

/// The broadcaster's [`ConnectionSender`] with `--delivery direct`: [`post_to_connection`]
/// without HTTP, its answers classified as `ManagementApiSender` classifies the HTTP ones.
pub struct DirectSender {
    /// Weak: the sender lives inside the [`App`] it posts through.
    pub app: Weak<App>,
}

#[async_trait]
impl ConnectionSender for DirectSender {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> PostOutcome {
        let Some(app) = self.app.upgrade() else {
            return PostOutcome::Failed("the dev server has stopped".to_owned());
        };
        // Each post is its own task, so a broadcast's socket writes spread over the worker
        // threads (API Gateway spreads them over its fleet) instead of queueing on one.
        let id = connection_id.to_owned();
        let body = Bytes::copy_from_slice(payload);
        let posted = tokio::spawn(async move { post_to_connection(&app, &id, body).await }).await;
        let Ok(posted) = posted else {
            return PostOutcome::Failed("the post's task failed".to_owned());
        };
        match posted {
            Posted::Delivered => PostOutcome::Delivered,
            Posted::Gone => PostOutcome::Gone,
            Posted::TooLarge => PostOutcome::Failed("HTTP 413: payload over 128 KB".to_owned()),
            Posted::Faulted(Fault::Throttled) => PostOutcome::Retry("HTTP 429".to_owned()),
            Posted::Faulted(Fault::Internal) => PostOutcome::Retry("HTTP 500".to_owned()),
        }
    }
}

/// The open socket a GET or DELETE names, after fault injection; or the error response.
async fn open_socket(
    app: &App,
    params: &HashMap<String, String>,
) -> Result<Arc<crate::gateway::Socket>, Response> {
    if let Some(fault) = app.faults.apply().await {
        return Err(fault_response(fault));
    }
    app.gateway.get(connection_id(params)).ok_or_else(gone)
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let socket = match open_socket(&app, &params).await {
        Ok(socket) => socket,
        Err(response) => return response,
    };
    let mut identity = json!({ "sourceIp": socket.ctx.source_ip });
    if let Some(agent) = &socket.ctx.user_agent {
        identity["userAgent"] = json!(agent);
    }
    let body = json!({
        "connectedAt": realtime::rfc3339(socket.ctx.connected_at),
        "lastActiveAt": realtime::rfc3339(socket.last_active_at()),
        "identity": identity,
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let socket = match open_socket(&app, &params).await {
        Ok(socket) => socket,
        Err(response) => return response,
    };
    socket.close(1000, "").await;
    StatusCode::NO_CONTENT.into_response()
}
