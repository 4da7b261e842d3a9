//! `unsubscribe` (and the older `leave_project`): the connection leaves its project, and
//! presence is told at once (an unsubscribe is a choice, not a blip).

use super::context::Context;
use super::route::store_unavailable;
use crate::wire::client::{ErrorFrame, Reply};

/// Unsubscribe the connection; the `unsubscribed` reply.
pub(super) async fn unsubscribe(ctx: &Context<'_>) -> Result<Reply, ErrorFrame> {
    let connection_id = ctx.connection_id;
    let old = ctx
        .store
        .unsubscribe(connection_id)
        .await
        .map_err(store_unavailable)?;
    tracing::info!(
        route = ctx.route,
        connection_id,
        user_id = %old.user_id,
        project_id = old.project_id.map(|p| p.to_string()),
        "unsubscribed"
    );
    if let (Some(presence), Some(project)) = (ctx.presence, old.project_id) {
        presence.left(connection_id, old.user_id, project).await;
    }
    Ok(Reply::unsubscribed())
}
