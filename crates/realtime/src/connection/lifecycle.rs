//! The WebSocket connection lifecycle: `$connect`, `$disconnect`, and the message routes
//! (`subscribe`, `unsubscribe`, `ping`, `$default`).
//!
//! These functions take and return API Gateway's own event types, so the Lambdas pass events
//! straight through and the dev server builds the same events from real sockets. Replies travel
//! as the route response body (two-way routes). Bad input gets an `error` frame or a 4xx, a log
//! line with the ids involved, and no store change.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use http::{HeaderMap, HeaderValue};
use uuid::Uuid;

use crate::connection::auth::{self, Authenticator};
use crate::connection::membership::Membership;
use crate::connection::store::{Connection, ConnectionStore, StoreError};
use crate::wire::client::{ClientMessage, ErrorCode, ErrorFrame, Reply};

/// Route keys, as API Gateway names them.
pub const ROUTE_CONNECT: &str = "$connect";
pub const ROUTE_DISCONNECT: &str = "$disconnect";
pub const ROUTE_DEFAULT: &str = "$default";

/// A response with `status` and a JSON `body`.
pub fn response(status: u16, body: String) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = i64::from(status);
    r.body = Some(Body::Text(body));
    r
}

fn reply(message: Reply) -> ApiGatewayProxyResponse {
    response(200, message.to_json())
}

fn refuse(error: ErrorFrame) -> ApiGatewayProxyResponse {
    response(error.code.http_status(), Reply::Error(error).to_json())
}

/// Whether the membership port lets `user` into `project`, as an error frame when it does not.
pub async fn check_member(
    membership: &dyn Membership,
    project: Uuid,
    user: Uuid,
) -> Result<(), ErrorFrame> {
    match membership.is_member(project, user).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ErrorFrame::new(
            ErrorCode::Forbidden,
            "not a member of this project",
        )),
        Err(e) => {
            tracing::error!(project_id = %project, user_id = %user, error = %e, "membership check failed; denying");
            Err(ErrorFrame::new(
                ErrorCode::Unavailable,
                "membership cannot be checked right now",
            ))
        }
    }
}

fn store_unavailable(e: StoreError) -> ErrorFrame {
    match e {
        StoreError::NotFound => ErrorFrame::new(ErrorCode::NotFound, "connection is closed"),
        StoreError::Unavailable(_) => {
            ErrorFrame::new(ErrorCode::Unavailable, "connection store unavailable")
        }
    }
}

fn parse_project(value: &str) -> Result<Uuid, ErrorFrame> {
    Uuid::parse_str(value)
        .map_err(|_| ErrorFrame::new(ErrorCode::BadRequest, "project_id must be a UUID"))
}

/// `$connect`: authenticate, check membership when a project is given, record the connection.
///
/// 401 for any token problem, 403 for a non-member, 400 for a malformed project id, 503 when
/// membership or the store cannot answer. Nothing is written unless the answer is 200.
pub async fn on_connect(
    store: &dyn ConnectionStore,
    membership: &dyn Membership,
    authenticator: &Authenticator,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &request.request_context;
    let connection_id = ctx.connection_id.as_deref().unwrap_or_default();
    let query = &request.query_string_parameters;
    let project_param = query
        .first("project_id")
        .or_else(|| query.first("projectId"));
    let log_refusal = |user: Option<Uuid>, error: &ErrorFrame| {
        tracing::warn!(
            route = ROUTE_CONNECT,
            connection_id,
            user_id = user.map(|u| u.to_string()),
            project_id = project_param,
            code = error.code.as_str(),
            reason = %error.message,
            "connect refused"
        );
    };
    if connection_id.is_empty() {
        let error = ErrorFrame::new(ErrorCode::BadRequest, "event has no connectionId");
        log_refusal(None, &error);
        return refuse(error);
    }

    let authenticated =
        auth::token_from_request(query.first("token"), &request.headers).and_then(|source| {
            Ok((
                authenticator.verify(source.token)?,
                source.select_subprotocol,
            ))
        });
    let (user, select_subprotocol) = match authenticated {
        Ok(ok) => ok,
        Err(e) => {
            let error = ErrorFrame::new(ErrorCode::Unauthorized, e.to_string());
            log_refusal(None, &error);
            return refuse(error);
        }
    };

    let project = match project_param.map(parse_project).transpose() {
        Ok(p) => p,
        Err(error) => {
            log_refusal(Some(user), &error);
            return refuse(error);
        }
    };
    if let Some(project) = project
        && let Err(error) = check_member(membership, project, user).await
    {
        log_refusal(Some(user), &error);
        return refuse(error);
    }

    let connected_at = if ctx.connected_at > 0 {
        ctx.connected_at
    } else {
        crate::epoch_millis()
    };
    let connection = Connection::new(connection_id, user, project, connected_at);
    if let Err(e) = store.insert(&connection).await {
        tracing::error!(route = ROUTE_CONNECT, connection_id, user_id = %user, error = %e, "cannot record connection");
        // A write that timed out may still have happened: the refused connection must not
        // stay stored (it would be counted and posted to until its TTL).
        if let Err(e) = store.remove(connection_id).await {
            tracing::error!(route = ROUTE_CONNECT, connection_id, error = %e, "cannot remove the refused connection; TTL will expire it");
        }
        return refuse(store_unavailable(e));
    }
    tracing::info!(
        route = ROUTE_CONNECT,
        connection_id,
        user_id = %user,
        project_id = project.map(|p| p.to_string()),
        "connected"
    );

    let mut ok = ApiGatewayProxyResponse::default();
    ok.status_code = 200;
    if select_subprotocol {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(auth::SUBPROTOCOL),
        );
        ok.headers = headers;
    }
    ok
}

/// `$disconnect`: forget the connection. Always 200: API Gateway ignores the answer, and a
/// connection that is already gone is not an error.
pub async fn on_disconnect(
    store: &dyn ConnectionStore,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &request.request_context;
    let connection_id = ctx.connection_id.as_deref().unwrap_or_default();
    match store.remove(connection_id).await {
        Ok(()) => tracing::info!(
            route = ROUTE_DISCONNECT,
            connection_id,
            status_code = ctx.disconnect_status_code,
            reason = ctx.disconnect_reason.as_deref(),
            "disconnected"
        ),
        Err(e) => tracing::error!(
            route = ROUTE_DISCONNECT,
            connection_id,
            error = %e,
            "cannot remove connection; TTL will expire it"
        ),
    }
    response(200, String::new())
}

/// Message routes: answer `subscribe`/`join_project`, `unsubscribe`/`leave_project` and `ping`
/// with the reply frame as the route response; anything else gets an `error` frame.
pub async fn on_message(
    store: &dyn ConnectionStore,
    membership: &dyn Membership,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &request.request_context;
    let route = ctx.route_key.as_deref().unwrap_or(ROUTE_DEFAULT);
    let connection_id = ctx.connection_id.as_deref().unwrap_or_default();
    let result = if request.is_base64_encoded {
        Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            "binary messages are not supported",
        ))
    } else {
        match ClientMessage::parse(request.body.as_deref().unwrap_or_default()) {
            Ok(message) => handle(store, membership, route, connection_id, message).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(message) => reply(message),
        Err(error) => {
            tracing::warn!(route, connection_id, code = error.code.as_str(), reason = %error.message, "message refused");
            reply(Reply::Error(error))
        }
    }
}

async fn handle(
    store: &dyn ConnectionStore,
    membership: &dyn Membership,
    route: &str,
    connection_id: &str,
    message: ClientMessage,
) -> Result<Reply, ErrorFrame> {
    match message {
        ClientMessage::Ping => {
            tracing::debug!(route, connection_id, "ping");
            Ok(Reply::Pong)
        }
        ClientMessage::Subscribe { project_id } => {
            let connection = store
                .get(connection_id)
                .await
                .map_err(store_unavailable)?
                .ok_or_else(|| store_unavailable(StoreError::NotFound))?;
            let user = connection.user_id;
            if let Err(error) = check_member(membership, project_id, user).await {
                tracing::warn!(route, connection_id, user_id = %user, project_id = %project_id, code = error.code.as_str(), "subscribe refused");
                return Err(error);
            }
            store
                .subscribe(connection_id, project_id)
                .await
                .map_err(store_unavailable)?;
            tracing::info!(
                route,
                connection_id,
                user_id = %user,
                project_id = %project_id,
                previous_project_id = connection.project_id.map(|p| p.to_string()),
                "subscribed"
            );
            Ok(Reply::subscribed(project_id))
        }
        ClientMessage::Unsubscribe => {
            let old = store
                .unsubscribe(connection_id)
                .await
                .map_err(store_unavailable)?;
            tracing::info!(
                route,
                connection_id,
                user_id = %old.user_id,
                project_id = old.project_id.map(|p| p.to_string()),
                "unsubscribed"
            );
            Ok(Reply::Unsubscribed)
        }
    }
}
