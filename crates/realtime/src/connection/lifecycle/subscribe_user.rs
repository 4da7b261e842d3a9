//! `subscribe_user`: where the client stands in its user's direct-message stream (DESIGN
//! "Presence, typing, direct messages"); nothing is written, every connection of the user
//! receives its direct messages anyway.

use super::context::Context;
use crate::connection::store::Connection;
use crate::delivery::events::Stream;
use crate::recovery::{Position, position};
use crate::wire::client::Reply;

/// The `subscribed_user` reply for `connection`'s user.
pub(super) async fn subscribe_user(
    ctx: &Context<'_>,
    connection: Connection,
    since: Option<u64>,
    epoch: Option<String>,
) -> Reply {
    let user_id = connection.user_id;
    let Position {
        seq,
        epoch,
        recovered,
        reset,
    } = position(
        ctx.events,
        &Stream::user(user_id),
        since,
        epoch,
        ctx.connection_id,
    )
    .await;
    tracing::info!(route = ctx.route, connection_id = ctx.connection_id, user_id = %user_id, "subscribed to direct messages");
    Reply::SubscribedUser {
        user_id,
        seq,
        epoch,
        recovered,
        reset,
    }
}
