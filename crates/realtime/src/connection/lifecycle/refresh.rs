//! `refresh`: a new token of the same user moves the connection's `token_exp`; another user's,
//! a forged one or one already past its `exp` answers `unauthorized` and changes nothing.

use super::context::Context;
use super::route::store_unavailable;
use crate::connection::store::Connection;
use crate::time::EpochSecs;
use crate::wire::client::{ErrorCode, ErrorFrame, Reply};

/// Refresh `connection` with `token`; the `refreshed` reply.
pub(super) async fn refresh(
    ctx: &Context<'_>,
    connection: Connection,
    token: &str,
) -> Result<Reply, ErrorFrame> {
    let (route, connection_id) = (ctx.route, ctx.connection_id);
    let user = connection.user_id;
    let unauthorized = |reason: String| {
        tracing::warn!(route, connection_id, user_id = %user, %reason, "refresh refused");
        ErrorFrame::new(ErrorCode::Unauthorized, reason)
    };
    let identity = ctx
        .authenticator
        .authenticate_current(token)
        .await
        .map_err(|e| unauthorized(e.to_string()))?;
    if identity.user != user {
        return Err(unauthorized(
            "the new token is for another user; reconnect instead".to_owned(),
        ));
    }
    // The signature check tolerates clock skew on `exp`; a refresh does not: a token that has
    // already expired would answer `refreshed` with a past `expires_at`.
    if identity.expires_at <= EpochSecs::now() {
        return Err(unauthorized(format!(
            "the new token expired at {} (exp); get a fresh one",
            identity.expires_at
        )));
    }
    ctx.store
        .refresh(connection_id, user, identity.expires_at)
        .await
        .map_err(store_unavailable)?;
    tracing::info!(route, connection_id, user_id = %user, token_exp = identity.expires_at.0, "token refreshed");
    Ok(Reply::Refreshed {
        expires_at: identity.expires_at,
    })
}
