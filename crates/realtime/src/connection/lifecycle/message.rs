//! The message routes: parse the body, count it against the connection's rate, refuse it once
//! the token has expired (but a `refresh`), and hand it to its own module; the reply frame is
//! the route response. Anything that cannot be parsed gets an `error` frame.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};

use super::context::Context;
use super::limits::Limits;
use super::route::{ROUTE_DEFAULT, reply, response, serves_messages, store_unavailable};
use super::{refresh, subscribe, subscribe_user, typing, unsubscribe};
use crate::connection::auth::Authenticator;
use crate::connection::membership::Membership;
use crate::connection::store::{Admission, Connection, ConnectionStore, StoreError};
use crate::delivery::events::EventStore;
use crate::delivery::presence::Presence;
use crate::time::EpochMs;
use crate::wire::client::{ClientMessage, ErrorCode, ErrorFrame, Reply};

/// Message routes: the reply frame as the route response (nothing for a `typing`).
pub async fn on_message(
    store: &dyn ConnectionStore,
    events: Option<&dyn EventStore>,
    presence: Option<&Presence>,
    membership: &dyn Membership,
    authenticator: &Authenticator,
    limits: &Limits,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let route = request
        .request_context
        .route_key
        .as_deref()
        .unwrap_or(ROUTE_DEFAULT);
    let ctx = Context {
        store,
        events,
        presence,
        membership,
        authenticator,
        route,
        connection_id: request
            .request_context
            .connection_id
            .as_deref()
            .unwrap_or_default(),
    };
    let result = match parse(request) {
        Ok(message) => handle(&ctx, limits, message).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(Some(message)) => reply(message),
        Ok(None) => response(200, String::new()),
        Err(error) => {
            tracing::warn!(route, connection_id = ctx.connection_id, code = error.code.as_str(), reason = %error.message, "message refused");
            reply(Reply::Error(error))
        }
    }
}

/// The message in the event, if this is a message route and a text frame.
fn parse(request: &ApiGatewayWebsocketProxyRequest) -> Result<ClientMessage, ErrorFrame> {
    serves_messages(request.request_context.route_key.as_deref())?;
    if request.is_base64_encoded {
        return Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            "binary messages are not supported",
        ));
    }
    ClientMessage::parse(request.body.as_deref().unwrap_or_default())
}

/// Admit `message`, then act on it in its own module. `None`: nothing to answer (a `typing`).
async fn handle(
    ctx: &Context<'_>,
    limits: &Limits,
    message: ClientMessage,
) -> Result<Option<Reply>, ErrorFrame> {
    let now = EpochMs::now();
    let connection = admit(ctx, limits, &message, now).await?;
    let reply = match message {
        ClientMessage::Ping => {
            tracing::debug!(route = ctx.route, connection_id = ctx.connection_id, "ping");
            Reply::Pong
        }
        ClientMessage::Subscribe {
            project_id,
            since,
            epoch,
        } => subscribe::subscribe(ctx, connection, project_id, since, epoch).await?,
        ClientMessage::Unsubscribe => unsubscribe::unsubscribe(ctx).await?,
        ClientMessage::Refresh { token } => refresh::refresh(ctx, connection, &token).await?,
        ClientMessage::Typing { project_id } => {
            typing::typing(ctx, connection, project_id, now).await?;
            return Ok(None);
        }
        ClientMessage::SubscribeUser { since, epoch } => {
            subscribe_user::subscribe_user(ctx, connection, since, epoch).await
        }
    };
    Ok(Some(reply))
}

/// The connection as stored, once `message` is admitted: `ping` is never rate limited (it is
/// how a client checks its connection and costs no write); every other message is counted
/// against the connection's rate first. Once the token has expired, only `refresh` passes.
async fn admit(
    ctx: &Context<'_>,
    limits: &Limits,
    message: &ClientMessage,
    now: EpochMs,
) -> Result<Connection, ErrorFrame> {
    let (store, connection_id) = (ctx.store, ctx.connection_id);
    let connection = if *message == ClientMessage::Ping {
        store
            .get(connection_id)
            .await
            .map_err(store_unavailable)?
            .ok_or_else(|| store_unavailable(StoreError::NotFound))?
    } else {
        let rate = limits.message_rate;
        match store
            .admit(connection_id, rate, now)
            .await
            .map_err(store_unavailable)?
        {
            Admission::Admitted(connection) => connection,
            Admission::Limited => {
                return Err(ErrorFrame::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} messages a second (bursts of {}); this one was dropped",
                        rate.per_second, rate.burst
                    ),
                ));
            }
        }
    };
    let refresh = matches!(message, ClientMessage::Refresh { .. });
    if !refresh && connection.token_expired(now.secs()) {
        return Err(ErrorFrame::token_expired());
    }
    Ok(connection)
}
