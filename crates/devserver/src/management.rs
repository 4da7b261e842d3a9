//! The API Gateway Management API (`/@connections/{id}`, also under `/{stage}/`): POST
//! delivers to the socket, GET describes the connection, DELETE closes it. Errors carry the
//! status, `x-amzn-errortype` header and JSON body the AWS SDK turns into typed errors
//! (`GoneException`, `LimitExceededException`, `PayloadTooLargeException`).

use std::collections::HashMap;
use std::sync::Arc;

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

async fn faulted(app: &App) -> Option<Response> {
    match app.faults.apply().await? {
        Fault::Throttled => Some(aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "rate exceeded",
        )),
        Fault::Internal => Some(aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "injected fault",
        )),
    }
}

fn connection_id(params: &HashMap<String, String>) -> &str {
    params.get("id").map(String::as_str).unwrap_or_default()
}

pub async fn post(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(fault) = faulted(&app).await {
        return fault;
    }
    if body.len() > MAX_POST_BYTES {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "payload over 128 KB",
        );
    }
    let message = match std::str::from_utf8(&body) {
        Ok(_) => {
            Message::Text(axum::extract::ws::Utf8Bytes::try_from(body).expect("checked UTF-8"))
        }
        Err(_) => Message::Binary(body),
    };
    match app.gateway.post(connection_id(&params), message).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(),
    }
}

/// The open socket a GET or DELETE names, after fault injection; or the error response.
async fn open_socket(
    app: &App,
    params: &HashMap<String, String>,
) -> Result<Arc<crate::gateway::Socket>, Response> {
    if let Some(fault) = faulted(app).await {
        return Err(fault);
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
