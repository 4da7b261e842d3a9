//! `$connect`: authenticate, check membership when a project is given, hold the user to the
//! connection cap and the connect rate, record the connection, then check membership again.
//!
//! 401 for any token problem, 403 for a non-member, 400 for a malformed project id, 503 when
//! membership or the store cannot answer, 429 over the user's connection cap or connect rate.
//! No connection is written unless the answer is 200 (the user's connect-rate record counts
//! every authenticated attempt).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue};
use uuid::Uuid;

use super::limits::Limits;
use super::route::{ROUTE_CONNECT, check_member, parse_project, refuse, serves, store_unavailable};
use crate::connection::auth::{self, Authenticator, Identity};
use crate::connection::membership::Membership;
use crate::connection::store::{Connection, Listings, MessageRate, RateBuckets, Records};
use crate::delivery::presence::Presence;
use crate::time::EpochMs;
use crate::wire::client::{ErrorCode, ErrorFrame};

/// A refusal, and the user it refused when the token was read.
type Refusal = (Option<Uuid>, ErrorFrame);

/// What `$connect` was asked: the connection and the project given, if any.
struct Attempt<'a> {
    request: &'a ApiGatewayWebsocketProxyRequest,
    connection_id: &'a str,
    project_param: Option<&'a str>,
}

/// An attempt that passed every check: who, under which token, into which project.
struct Admitted {
    identity: Identity,
    select_subprotocol: bool,
    project: Option<Uuid>,
}

/// `$connect` (see the module's documentation for the answers).
pub async fn on_connect(
    store: &(impl Records + Listings + RateBuckets + ?Sized),
    presence: Option<&Presence>,
    membership: &dyn Membership,
    authenticator: &Authenticator,
    limits: &Limits,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let query = &request.query_string_parameters;
    let attempt = Attempt {
        request,
        connection_id: request
            .request_context
            .connection_id
            .as_deref()
            .unwrap_or_default(),
        project_param: query
            .first("project_id")
            .or_else(|| query.first("projectId")),
    };
    let admitted = match admit(&attempt, store, membership, authenticator, limits).await {
        Ok(admitted) => admitted,
        Err(refusal) => return attempt.refuse(refusal),
    };
    if let Err(refusal) = record(&attempt, &admitted, store, membership).await {
        return attempt.refuse(refusal);
    }
    let (connection_id, user) = (attempt.connection_id, admitted.identity.user);
    tracing::info!(
        route = ROUTE_CONNECT,
        connection_id,
        user_id = %user,
        project_id = admitted.project.map(|p| p.to_string()),
        "connected"
    );
    // A project given at connect is a subscription: the user may have come online in it.
    if let (Some(presence), Some(project)) = (presence, admitted.project) {
        presence.joined(connection_id, user, project, false).await;
    }
    accepted(admitted.select_subprotocol)
}

impl Attempt<'_> {
    /// Log a refusal with the ids involved, and answer it.
    fn refuse(&self, (user, error): Refusal) -> ApiGatewayProxyResponse {
        tracing::warn!(
            route = ROUTE_CONNECT,
            connection_id = self.connection_id,
            user_id = user.map(|u| u.to_string()),
            project_id = self.project_param,
            code = error.code.as_str(),
            reason = %error.message,
            "connect refused"
        );
        refuse(error)
    }
}

/// Every check before anything is written: the event, the token, the project and membership,
/// the user's connection cap and connect rate.
async fn admit(
    attempt: &Attempt<'_>,
    store: &(impl Listings + RateBuckets + ?Sized),
    membership: &dyn Membership,
    authenticator: &Authenticator,
    limits: &Limits,
) -> Result<Admitted, Refusal> {
    if attempt.connection_id.is_empty() {
        let error = ErrorFrame::new(ErrorCode::BadRequest, "event has no connectionId");
        return Err((None, error));
    }
    let route = attempt.request.request_context.route_key.as_deref();
    serves(&[ROUTE_CONNECT], route).map_err(|e| (None, e))?;
    let (identity, select_subprotocol) = authenticate(attempt.request, authenticator)
        .await
        .map_err(|e| (None, e))?;
    let user = identity.user;
    let refused = |error| (Some(user), error);
    let project = attempt
        .project_param
        .map(parse_project)
        .transpose()
        .map_err(refused)?;
    if let Some(project) = project {
        check_member(membership, project, user)
            .await
            .map_err(refused)?;
    }
    check_user_cap(store, user, limits.max_connections_per_user)
        .await
        .map_err(refused)?;
    check_connect_rate(store, user, limits.connect_rate)
        .await
        .map_err(refused)?;
    Ok(Admitted {
        identity,
        select_subprotocol,
        project,
    })
}

/// The token from the query or the subprotocol header, verified; and whether the response must
/// select the `devhive` subprotocol.
async fn authenticate(
    request: &ApiGatewayWebsocketProxyRequest,
    authenticator: &Authenticator,
) -> Result<(Identity, bool), ErrorFrame> {
    let token = request.query_string_parameters.first("token");
    let unauthorized = |e: auth::AuthError| ErrorFrame::new(ErrorCode::Unauthorized, e.to_string());
    let source = auth::token_from_request(token, &request.headers).map_err(unauthorized)?;
    let identity = authenticator
        .authenticate_current(source.token)
        .await
        .map_err(unauthorized)?;
    Ok((identity, source.select_subprotocol))
}

/// Write the connection, then check membership again: a removal committed between the first
/// check and the write is seen here, and its revocation may have run before the item existed,
/// so nothing else would end this subscription. A refused connection is removed again.
async fn record(
    attempt: &Attempt<'_>,
    admitted: &Admitted,
    store: &(impl Records + ?Sized),
    membership: &dyn Membership,
) -> Result<(), Refusal> {
    let (connection_id, user) = (attempt.connection_id, admitted.identity.user);
    let opened = attempt.request.request_context.connected_at;
    let connected_at = if opened > 0 {
        EpochMs(opened)
    } else {
        EpochMs::now()
    };
    let connection = Connection::new(connection_id, user, admitted.project, connected_at)
        .with_token_exp(admitted.identity.expires_at);
    let refused = match store.insert(&connection).await {
        Err(e) => {
            tracing::error!(route = ROUTE_CONNECT, connection_id, user_id = %user, error = %e, "cannot record connection");
            store_unavailable(e)
        }
        Ok(()) => match admitted.project {
            Some(project) => match check_member(membership, project, user).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            },
            None => return Ok(()),
        },
    };
    // A write that timed out may still have happened: the refused connection must not stay
    // stored (it would be counted and posted to until its TTL).
    if let Err(e) = store.remove(connection_id).await {
        tracing::error!(route = ROUTE_CONNECT, connection_id, error = %e, "cannot remove the refused connection; TTL will expire it");
    }
    Err((Some(user), refused))
}

/// The 200 that opens the socket, selecting `devhive` when the token came as a subprotocol.
fn accepted(select_subprotocol: bool) -> ApiGatewayProxyResponse {
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

/// Refuse a `$connect` over the user's connect rate: the bucket lives in the store, so every
/// Lambda instance counts the same connects. A store error refuses.
async fn check_connect_rate(
    store: &(impl RateBuckets + ?Sized),
    user: Uuid,
    rate: MessageRate,
) -> Result<(), ErrorFrame> {
    let bucket = format!("connect#{user}");
    match store
        .take_token(&bucket, rate, EpochMs::now())
        .await
        .map_err(store_unavailable)?
    {
        None => Ok(()),
        Some(wait_ms) => Err(ErrorFrame::new(
            ErrorCode::RateLimited,
            format!(
                "this user opened {} connections at once, or more than {} a second after that; retry in {wait_ms} ms",
                rate.burst, rate.per_second
            ),
        )),
    }
}

/// Refuse a user who already holds `max` open connections. The count comes from the user
/// index, so connects racing each other may pass it by a few; a store error refuses.
async fn check_user_cap(
    store: &(impl Listings + ?Sized),
    user: Uuid,
    max: usize,
) -> Result<(), ErrorFrame> {
    let mut open = 0;
    let mut pages = store.user_connections(user);
    while let Some(page) = pages.next().await {
        open += page.map_err(store_unavailable)?.len();
        if open >= max {
            return Err(ErrorFrame::new(
                ErrorCode::RateLimited,
                format!(
                    "this user already has {max} open connections (MAX_CONNECTIONS_PER_USER); close one first"
                ),
            ));
        }
    }
    Ok(())
}
