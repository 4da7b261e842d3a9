//! The WebSocket connection lifecycle: `$connect`, `$disconnect`, and the message routes
//! (`subscribe`, `unsubscribe`, `ping`, `refresh`, `$default`).
//!
//! Authorization holds for the connection's whole life (DESIGN "Connection life"): `$connect`
//! stores the token's `exp`, every message but `refresh` is refused once it has passed, a
//! `refresh` moves it, a subscribe re-checks membership after its write so that it cannot
//! outlive a removal it raced, and the per-user and per-connection limits are enforced here,
//! with their state in the store, so every Lambda instance sees the same counts.
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
use crate::connection::store::{Admission, Connection, ConnectionStore, MessageRate, StoreError};
use crate::delivery::events::{EventStore, Recovery, project_stream, user_stream};
use crate::delivery::presence::{Presence, TYPING_WINDOW_MS};
use crate::wire::client::{ClientMessage, ErrorCode, ErrorFrame, Reply};

/// Route keys, as API Gateway names them.
pub const ROUTE_CONNECT: &str = "$connect";
pub const ROUTE_DISCONNECT: &str = "$disconnect";
pub const ROUTE_DEFAULT: &str = "$default";

/// Open connections one user may hold unless configured otherwise (`MAX_CONNECTIONS_PER_USER`).
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: usize = 20;

/// The per-user and per-connection bounds of DESIGN "Connection life".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MAX_CONNECTIONS_PER_USER`: the next `$connect` gets 429.
    pub max_connections_per_user: usize,
    /// `CLIENT_MESSAGE_RATE`: past it a message gets `rate_limited` and is dropped.
    pub message_rate: MessageRate,
    /// `$connect`s one user may make: past it the next one gets 429.
    pub connect_rate: MessageRate,
}

/// `$connect`s per user: twice as many at once as the user may hold connections (every tab
/// reconnecting after a blip, and again), then one a second.
pub fn connect_rate(max_connections_per_user: usize) -> MessageRate {
    MessageRate {
        per_second: 1,
        burst: u32::try_from(max_connections_per_user.max(1).saturating_mul(2)).unwrap_or(u32::MAX),
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_user: DEFAULT_MAX_CONNECTIONS_PER_USER,
            message_rate: MessageRate::default(),
            connect_rate: connect_rate(DEFAULT_MAX_CONNECTIONS_PER_USER),
        }
    }
}

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
        StoreError::Unavailable(_) | StoreError::TableMissing(_) => {
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
/// membership or the store cannot answer, 429 over the user's connection cap or connect rate.
/// No connection is written unless the answer is 200 (the user's connect-rate record counts
/// every authenticated attempt).
pub async fn on_connect(
    store: &dyn ConnectionStore,
    presence: Option<&Presence>,
    membership: &dyn Membership,
    authenticator: &Authenticator,
    limits: &Limits,
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
    if let Err(error) = serves(&[ROUTE_CONNECT], ctx.route_key.as_deref()) {
        log_refusal(None, &error);
        return refuse(error);
    }

    let authenticated = match auth::token_from_request(query.first("token"), &request.headers) {
        Ok(source) => authenticator
            .authenticate_current(source.token)
            .await
            .map(|identity| (identity, source.select_subprotocol)),
        Err(e) => Err(e),
    };
    let (identity, select_subprotocol) = match authenticated {
        Ok(ok) => ok,
        Err(e) => {
            let error = ErrorFrame::new(ErrorCode::Unauthorized, e.to_string());
            log_refusal(None, &error);
            return refuse(error);
        }
    };
    let user = identity.user;

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

    if let Err(error) = check_user_cap(store, user, limits.max_connections_per_user).await {
        log_refusal(Some(user), &error);
        return refuse(error);
    }
    if let Err(error) = check_connect_rate(store, user, limits.connect_rate).await {
        log_refusal(Some(user), &error);
        return refuse(error);
    }

    let connected_at = if ctx.connected_at > 0 {
        ctx.connected_at
    } else {
        crate::epoch_millis()
    };
    let connection = Connection::new(connection_id, user, project, connected_at)
        .with_token_exp(identity.expires_at);
    if let Err(e) = store.insert(&connection).await {
        tracing::error!(route = ROUTE_CONNECT, connection_id, user_id = %user, error = %e, "cannot record connection");
        // A write that timed out may still have happened: the refused connection must not
        // stay stored (it would be counted and posted to until its TTL).
        if let Err(e) = store.remove(connection_id).await {
            tracing::error!(route = ROUTE_CONNECT, connection_id, error = %e, "cannot remove the refused connection; TTL will expire it");
        }
        return refuse(store_unavailable(e));
    }
    // As subscribe does: a removal committed between the first check and the write is seen
    // here, and its revocation may have run before the item existed, so nothing else would
    // end this subscription.
    if let Some(project) = project
        && let Err(error) = check_member(membership, project, user).await
    {
        if let Err(e) = store.remove(connection_id).await {
            tracing::error!(route = ROUTE_CONNECT, connection_id, error = %e, "cannot remove a connection whose membership ended; TTL will expire it");
        }
        log_refusal(Some(user), &error);
        return refuse(error);
    }
    tracing::info!(
        route = ROUTE_CONNECT,
        connection_id,
        user_id = %user,
        project_id = project.map(|p| p.to_string()),
        "connected"
    );
    // A project given at connect is a subscription: the user may have come online in it.
    if let (Some(presence), Some(project)) = (presence, project) {
        presence.joined(connection_id, user, project, false).await;
    }

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
    store: &dyn ConnectionStore,
    user: Uuid,
    rate: MessageRate,
) -> Result<(), ErrorFrame> {
    let bucket = format!("connect#{user}");
    match store
        .take_token(&bucket, rate, crate::epoch_millis())
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
    store: &dyn ConnectionStore,
    user: Uuid,
    max: usize,
) -> Result<(), ErrorFrame> {
    use futures::StreamExt;
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

/// Refuse an event of a route this function does not serve (a `$disconnect` event given to
/// `subscribe`, say), naming both. An event without a route key is taken as the expected one.
fn serves(routes: &[&str], route: Option<&str>) -> Result<(), ErrorFrame> {
    match route {
        Some(r) if !routes.contains(&r) => Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            format!(
                "this function serves the {} route{}, not {r}: check the API's integrations",
                routes.join(", "),
                if routes.len() > 1 { "s" } else { "" }
            ),
        )),
        _ => Ok(()),
    }
}

/// The message routes: everything but `$connect` and `$disconnect`.
fn serves_messages(route: Option<&str>) -> Result<(), ErrorFrame> {
    match route {
        Some(r @ (ROUTE_CONNECT | ROUTE_DISCONNECT)) => Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            format!(
                "this function serves the message routes ({}, {ROUTE_DEFAULT}), not {r}: check the API's integrations",
                crate::wire::client::MESSAGE_ROUTES.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// `$disconnect`: forget the connection. Always 200: API Gateway ignores the answer, and a
/// connection that is already gone is not an error.
pub async fn on_disconnect(
    store: &dyn ConnectionStore,
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
        presence.closed(connection_id, c.user_id, project).await;
    }
    response(200, String::new())
}

/// Message routes: answer `subscribe`/`join_project`, `unsubscribe`/`leave_project`, `ping`
/// and `refresh` with the reply frame as the route response; anything else gets an `error`
/// frame.
pub async fn on_message(
    store: &dyn ConnectionStore,
    events: Option<&dyn EventStore>,
    presence: Option<&Presence>,
    membership: &dyn Membership,
    authenticator: &Authenticator,
    limits: &Limits,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &request.request_context;
    let route = ctx.route_key.as_deref().unwrap_or(ROUTE_DEFAULT);
    let connection_id = ctx.connection_id.as_deref().unwrap_or_default();
    let result = if let Err(error) = serves_messages(ctx.route_key.as_deref()) {
        Err(error)
    } else if request.is_base64_encoded {
        Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            "binary messages are not supported",
        ))
    } else {
        match ClientMessage::parse(request.body.as_deref().unwrap_or_default()) {
            Ok(message) => {
                let ctx = Context {
                    store,
                    events,
                    presence,
                    membership,
                    authenticator,
                    route,
                    connection_id,
                };
                ctx.handle(limits, message).await
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(Some(message)) => reply(message),
        Ok(None) => response(200, String::new()),
        Err(error) => {
            tracing::warn!(route, connection_id, code = error.code.as_str(), reason = %error.message, "message refused");
            reply(Reply::Error(error))
        }
    }
}

/// A reply's `seq`, `epoch`, `recovered` and `reset`.
type Position = (
    Option<u64>,
    Option<String>,
    Option<Vec<serde_json::Value>>,
    Option<bool>,
);

/// What one message is handled with.
struct Context<'a> {
    store: &'a dyn ConnectionStore,
    events: Option<&'a dyn EventStore>,
    presence: Option<&'a Presence>,
    membership: &'a dyn Membership,
    authenticator: &'a Authenticator,
    route: &'a str,
    connection_id: &'a str,
}

impl Context<'_> {
    /// `ping` is never rate limited (it is how a client checks its connection and costs no
    /// write); every other message is counted against the connection's rate first. Once the
    /// token has expired, only `refresh` is acted on.
    /// `None`: nothing to answer (a `typing`).
    async fn handle(
        &self,
        limits: &Limits,
        message: ClientMessage,
    ) -> Result<Option<Reply>, ErrorFrame> {
        let (store, route, connection_id) = (self.store, self.route, self.connection_id);
        let now_ms = crate::epoch_millis();
        let connection = if message == ClientMessage::Ping {
            store
                .get(connection_id)
                .await
                .map_err(store_unavailable)?
                .ok_or_else(|| store_unavailable(StoreError::NotFound))?
        } else {
            match store
                .admit(connection_id, limits.message_rate, now_ms)
                .await
                .map_err(store_unavailable)?
            {
                Admission::Admitted(connection) => connection,
                Admission::Limited => {
                    let rate = limits.message_rate;
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
        if !refresh && connection.token_expired(now_ms.div_euclid(1000)) {
            return Err(ErrorFrame::token_expired());
        }
        let reply = match message {
            ClientMessage::Ping => {
                tracing::debug!(route, connection_id, "ping");
                Reply::Pong
            }
            ClientMessage::Subscribe {
                project_id,
                since,
                epoch,
            } => {
                let (user, previous) = (connection.user_id, connection.project_id);
                self.subscribe(connection, project_id).await?;
                let mut online = None;
                if let Some(presence) = self.presence {
                    if let Some(old) = previous.filter(|old| *old != project_id) {
                        presence.left(connection_id, user, old).await;
                    }
                    let renewed = previous == Some(project_id);
                    online = presence
                        .joined(connection_id, user, project_id, renewed)
                        .await;
                }
                let (seq, epoch, recovered, reset) = self
                    .position(&project_stream(project_id), since, epoch)
                    .await;
                Reply::Subscribed {
                    message: "subscribed".to_owned(),
                    project_id,
                    seq,
                    epoch,
                    recovered,
                    reset,
                    online,
                }
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
                if let (Some(presence), Some(project)) = (self.presence, old.project_id) {
                    presence.left(connection_id, old.user_id, project).await;
                }
                Reply::unsubscribed()
            }
            ClientMessage::Refresh { token } => self.refresh(connection, &token).await?,
            ClientMessage::Typing { project_id } => {
                return self
                    .typing(connection, project_id, now_ms)
                    .await
                    .map(|()| None);
            }
            ClientMessage::SubscribeUser { since, epoch } => {
                let user_id = connection.user_id;
                let (seq, epoch, recovered, reset) =
                    self.position(&user_stream(user_id), since, epoch).await;
                tracing::info!(route, connection_id, user_id = %user_id, "subscribed to direct messages");
                Reply::SubscribedUser {
                    user_id,
                    seq,
                    epoch,
                    recovered,
                    reset,
                }
            }
        };
        Ok(Some(reply))
    }

    /// `typing`: only from a connection subscribed to the project, at most one per connection
    /// per [`TYPING_WINDOW_MS`] reaches the others (the rest are dropped without a reply).
    async fn typing(
        &self,
        connection: Connection,
        project_id: Uuid,
        now_ms: i64,
    ) -> Result<(), ErrorFrame> {
        let (route, connection_id) = (self.route, self.connection_id);
        if connection.project_id != Some(project_id) {
            return Err(ErrorFrame::new(
                ErrorCode::Forbidden,
                "typing goes to the project this connection is subscribed to: subscribe first",
            ));
        }
        let Some(presence) = self.presence else {
            return Err(ErrorFrame::new(
                ErrorCode::Unavailable,
                "typing is off here: the message function has no WEBSOCKET_ENDPOINT",
            ));
        };
        let admitted = self
            .store
            .typing(connection_id, project_id, now_ms, TYPING_WINDOW_MS)
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

    /// Check membership, subscribe, and check again: a removal committed between the first
    /// check and the write is seen by the second, which undoes the subscription (a removal
    /// after the second check finds the subscription and revokes it).
    async fn subscribe(&self, connection: Connection, project_id: Uuid) -> Result<(), ErrorFrame> {
        let (store, route, connection_id) = (self.store, self.route, self.connection_id);
        let user = connection.user_id;
        let refused = |error: ErrorFrame| {
            tracing::warn!(route, connection_id, user_id = %user, project_id = %project_id, code = error.code.as_str(), "subscribe refused");
            error
        };
        check_member(self.membership, project_id, user)
            .await
            .map_err(refused)?;
        store
            .subscribe(connection_id, project_id)
            .await
            .map_err(store_unavailable)?;
        if let Err(error) = check_member(self.membership, project_id, user).await {
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

    /// A `subscribed` (or `subscribed_user`) reply's position in `stream`: its head, read
    /// after the subscription was written (so every later event either reaches the connection
    /// or shows as a gap), and with `since` the events after it or `reset`. Without an event
    /// store, nothing; if the store cannot answer, `reset` (the client refetches) rather than
    /// a failed subscribe.
    async fn position(&self, stream: &str, since: Option<u64>, epoch: Option<String>) -> Position {
        let Some(events) = self.events else {
            return (None, None, None, None);
        };
        let found = match since {
            Some(since) => events
                .since(stream, epoch.as_deref().unwrap_or_default(), since)
                .await
                .map(|(head, recovery)| (head, Some(recovery))),
            None => events.head(stream).await.map(|head| (head, None)),
        };
        let (mut seq, mut epoch, mut recovered, mut reset) = (None, None, None, None);
        match found {
            Ok((head, recovery)) => {
                seq = Some(head.seq);
                epoch = Some(head.epoch);
                match recovery {
                    Some(Recovery::Events(frames)) => {
                        recovered = Some(
                            frames
                                .iter()
                                .filter_map(|f| serde_json::from_str(f).ok())
                                .collect(),
                        )
                    }
                    Some(Recovery::Reset) => reset = Some(true),
                    None => {}
                }
            }
            Err(e) => {
                tracing::error!(route = self.route, connection_id = self.connection_id, stream, error = %e, "event store unavailable; the client is told to refetch");
                reset = Some(true);
            }
        }
        (seq, epoch, recovered, reset)
    }

    /// A new token for the same user moves `token_exp`; anything else changes nothing.
    async fn refresh(&self, connection: Connection, token: &str) -> Result<Reply, ErrorFrame> {
        let (route, connection_id) = (self.route, self.connection_id);
        let user = connection.user_id;
        let unauthorized = |reason: String| {
            tracing::warn!(route, connection_id, user_id = %user, %reason, "refresh refused");
            ErrorFrame::new(ErrorCode::Unauthorized, reason)
        };
        let identity = self
            .authenticator
            .authenticate_current(token)
            .await
            .map_err(|e| unauthorized(e.to_string()))?;
        if identity.user != user {
            return Err(unauthorized(
                "the new token is for another user; reconnect instead".to_owned(),
            ));
        }
        // The signature check tolerates clock skew on `exp`; a refresh does not: a token that
        // has already expired would answer `refreshed` with a past `expires_at`.
        if identity.expires_at <= crate::epoch_seconds() {
            return Err(unauthorized(format!(
                "the new token expired at {} (exp); get a fresh one",
                identity.expires_at
            )));
        }
        self.store
            .refresh(connection_id, user, identity.expires_at)
            .await
            .map_err(store_unavailable)?;
        tracing::info!(route, connection_id, user_id = %user, token_exp = identity.expires_at, "token refreshed");
        Ok(Reply::Refreshed {
            expires_at: identity.expires_at,
        })
    }
}
