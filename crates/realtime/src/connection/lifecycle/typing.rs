//! `typing`: only from a connection subscribed to the project; at most one per connection per
//! [`TYPING_WINDOW_MS`] (and the user's own rate, in presence) reaches the others. Nothing is
//! answered; the rest are dropped without a reply.

use uuid::Uuid;

use super::context::Context;
use super::route::store_unavailable;
use crate::connection::store::Connection;
use crate::delivery::presence::TYPING_WINDOW_MS;
use crate::time::EpochMs;
use crate::wire::client::{ErrorCode, ErrorFrame};

/// Tell `project_id`'s other connections that `connection`'s user is typing, if admitted.
pub(super) async fn typing(
    ctx: &Context<'_>,
    connection: Connection,
    project_id: Uuid,
    now: EpochMs,
) -> Result<(), ErrorFrame> {
    let (route, connection_id) = (ctx.route, ctx.connection_id);
    if connection.project_id != Some(project_id) {
        return Err(ErrorFrame::new(
            ErrorCode::Forbidden,
            "typing goes to the project this connection is subscribed to: subscribe first",
        ));
    }
    let Some(presence) = ctx.presence else {
        return Err(ErrorFrame::new(
            ErrorCode::Unavailable,
            "typing is off here: the message function has no WEBSOCKET_ENDPOINT",
        ));
    };
    let admitted = ctx
        .store
        .typing(connection_id, project_id, now, TYPING_WINDOW_MS)
        .await
        .map_err(store_unavailable)?;
    if admitted {
        presence
            .typing(connection_id, connection.user_id, project_id)
            .await
            .map_err(store_unavailable)?;
    } else {
        tracing::debug!(route, connection_id, "typing within its window; dropped");
    }
    Ok(())
}
