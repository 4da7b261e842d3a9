//! `subscribe` (and the older `join_project`): check membership, point the connection at the
//! project, check membership again, tell presence, and answer where the client stands in the
//! project's stream.

use uuid::Uuid;

use super::context::Context;
use super::route::{check_member, store_unavailable};
use crate::connection::store::Connection;
use crate::delivery::events::Stream;
use crate::recovery::{Position, position};
use crate::wire::client::{ErrorFrame, Reply};

/// Subscribe `connection` to `project_id`; the `subscribed` reply (with `online` when presence
/// is on, and the recovered events or `reset` when `since` was given).
pub(super) async fn subscribe(
    ctx: &Context<'_>,
    connection: Connection,
    project_id: Uuid,
    since: Option<u64>,
    epoch: Option<String>,
) -> Result<Reply, ErrorFrame> {
    let (user, previous) = (connection.user_id, connection.project_id);
    write(ctx, connection, project_id).await?;
    let mut online = None;
    if let Some(presence) = ctx.presence {
        if let Some(old) = previous.filter(|old| *old != project_id) {
            presence.left(ctx.connection_id, user, old).await;
        }
        let renewed = previous == Some(project_id);
        online = presence
            .joined(ctx.connection_id, user, project_id, renewed)
            .await;
    }
    let Position {
        seq,
        epoch,
        recovered,
        reset,
    } = position(
        ctx.events,
        &Stream::project(project_id),
        since,
        epoch,
        ctx.connection_id,
    )
    .await;
    Ok(Reply::Subscribed {
        message: "subscribed".to_owned(),
        project_id,
        seq,
        epoch,
        recovered,
        reset,
        online,
    })
}

/// Check membership, subscribe, and check again: a removal committed between the first check
/// and the write is seen by the second, which undoes the subscription (a removal after the
/// second check finds the subscription and revokes it).
async fn write(
    ctx: &Context<'_>,
    connection: Connection,
    project_id: Uuid,
) -> Result<(), ErrorFrame> {
    let (store, route, connection_id) = (ctx.store, ctx.route, ctx.connection_id);
    let user = connection.user_id;
    let refused = |error: ErrorFrame| {
        tracing::warn!(route, connection_id, user_id = %user, project_id = %project_id, code = error.code.as_str(), "subscribe refused");
        error
    };
    check_member(ctx.membership, project_id, user)
        .await
        .map_err(refused)?;
    store
        .subscribe(connection_id, project_id)
        .await
        .map_err(store_unavailable)?;
    if let Err(error) = check_member(ctx.membership, project_id, user).await {
        if let Err(e) = store.unsubscribe_from(connection_id, project_id).await {
            tracing::error!(route, connection_id, user_id = %user, project_id = %project_id, error = %e, "cannot undo a subscription whose membership ended");
            return Err(store_unavailable(e));
        }
        return Err(refused(error));
    }
    tracing::info!(
        route,
        connection_id,
        user_id = %user,
        project_id = %project_id,
        previous_project_id = connection.project_id.map(|p| p.to_string()),
        "subscribed"
    );
    Ok(())
}
