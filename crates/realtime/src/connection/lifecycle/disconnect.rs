//! `$disconnect`: forget the connection, and tell presence the user may have left. Always 200:
//! API Gateway ignores the answer, and a connection that is already gone is not an error.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};

use super::route::{ROUTE_DISCONNECT, refuse, response, serves};
use crate::connection::store::Records;
use crate::delivery::presence::Presence;

/// `$disconnect` (see the module's documentation).
pub async fn on_disconnect(
    store: &(impl Records + ?Sized),
    presence: Option<&Presence>,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &request.request_context;
    let connection_id = ctx.connection_id.as_deref().unwrap_or_default();
    if let Err(error) = serves(&[ROUTE_DISCONNECT], ctx.route_key.as_deref()) {
        tracing::error!(route = ctx.route_key.as_deref(), connection_id, reason = %error.message, "event of another route; nothing done");
        return refuse(error);
    }
    // With presence on, the item is read first: its user and project are who left.
    let leaving = match presence {
        Some(_) => store.get(connection_id).await.ok().flatten(),
        None => None,
    };
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
    if let (Some(presence), Some(c)) = (presence, leaving)
        && let Some(project) = c.project_id
    {
        presence.left(connection_id, c.user_id, project).await;
    }
    response(200, String::new())
}
