//! The API Gateway Management API (`/@connections/{id}`, also under `/{stage}/`): POST
//! delivers to the socket, GET describes the connection, DELETE closes it. Errors carry the
//! status, `x-amzn-errortype` header and JSON body the AWS SDK turns into typed errors
//! (`GoneException`, `LimitExceededException`, `PayloadTooLargeException`).
//!
//! The post itself is [`Gateway::post_to_connection`]; the HTTP route here and [`DirectSender`]
//! (the broadcaster's sender with `--delivery direct`) both call it.
//!
//! Every route wants what the SDKs send (`crate::guard`): an `Authorization` header shaped like
//! Signature Version 4 for `execute-api` (any key), and on POST no content type a web page
//! could send cross-origin without a preflight (the SDKs send `application/octet-stream`). So
//! a page the developer visits cannot post to, read or close their connections.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use realtime::delivery::sender::{ConnectionSender, PostOutcome};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::Fault;
use crate::gateway::{Gateway, Posted, Socket};
use crate::state::App;

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
    answer(Posted::Gone)
}

fn fault_response(fault: Fault) -> Response {
    answer(Posted::Faulted(fault))
}

/// What the Management API answers for `posted`: its status, AWS error type and message.
fn answer_of(posted: Posted) -> (StatusCode, &'static str, &'static str) {
    match posted {
        Posted::Delivered => (StatusCode::OK, "", ""),
        Posted::Gone => (StatusCode::GONE, "GoneException", "the connection is gone"),
        Posted::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "payload over 128 KB",
        ),
        Posted::Faulted(Fault::Throttled) => (
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "rate exceeded",
        ),
        Posted::Faulted(Fault::Internal) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "injected fault",
        ),
    }
}

fn answer(posted: Posted) -> Response {
    match answer_of(posted) {
        (StatusCode::OK, _, _) => StatusCode::OK.into_response(),
        (status, error_type, message) => aws_error(status, error_type, message),
    }
}

/// The error response unless the request is what the SDKs send: the signature's shape on every
/// call, and on a POST a content type no web page can send without a preflight.
fn unsigned(headers: &HeaderMap, post: bool) -> Option<Response> {
    if let Err(why) = crate::guard::sigv4(headers, "execute-api") {
        return Some(aws_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            &format!("the dev server's Management API refuses this request: {why}"),
        ));
    }
    match crate::guard::simple_content_type(headers) {
        Some(simple) if post => Some(aws_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaTypeException",
            &format!(
                "Content-Type {simple} is refused (web pages may send it cross-origin): post the \
                 data as application/octet-stream, as the AWS SDKs do"
            ),
        )),
        _ => None,
    }
}

fn connection_id(params: &HashMap<String, String>) -> &str {
    params.get("id").map(String::as_str).unwrap_or_default()
}

pub async fn post(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = unsigned(&headers, true) {
        return response;
    }
    answer(
        app.gateway
            .post_to_connection(connection_id(&params), body)
            .await,
    )
}

/// The broadcaster's [`ConnectionSender`] with `--delivery direct`: [`Gateway::post_to_connection`]
/// without HTTP, its answers classified by the one classification of the HTTP ones
/// ([`realtime::aws::management_api::classify`]).
pub struct DirectSender {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl ConnectionSender for DirectSender {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> PostOutcome {
        // Each post is its own task, so a broadcast's socket writes spread over the worker
        // threads (API Gateway spreads them over its fleet) instead of queueing on one.
        let id = connection_id.to_owned();
        let body = Bytes::copy_from_slice(payload);
        let gateway = self.gateway.clone();
        let posted = tokio::spawn(async move { gateway.post_to_connection(&id, body).await }).await;
        let Ok(posted) = posted else {
            return PostOutcome::Failed("the post's task failed".to_owned());
        };
        let (status, _, message) = answer_of(posted);
        realtime::aws::management_api::classify(status.as_u16(), message.as_bytes())
    }

    async fn close(&self, connection_id: &str) -> PostOutcome {
        match self.gateway.get(connection_id) {
            Some(socket) => {
                socket.close(1000, "").await;
                PostOutcome::Closed
            }
            None => PostOutcome::Gone,
        }
    }
}

/// The open socket a GET or DELETE names, after fault injection; or the error response.
async fn open_socket(app: &App, params: &HashMap<String, String>) -> Result<Arc<Socket>, Response> {
    if let Some(fault) = app.gateway.faults.apply().await {
        return Err(fault_response(fault));
    }
    app.gateway.get(connection_id(params)).ok_or_else(gone)
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = unsigned(&headers, false) {
        return response;
    }
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
    headers: HeaderMap,
) -> Response {
    if let Some(response) = unsigned(&headers, false) {
        return response;
    }
    let socket = match open_socket(&app, &params).await {
        Ok(socket) => socket,
        Err(response) => return response,
    };
    socket.close(1000, "").await;
    StatusCode::NO_CONTENT.into_response()
}
