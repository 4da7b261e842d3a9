//! API Gateway events built from real sockets and HTTP requests, in the exact shape AWS sends,
//! so the handlers cannot tell the dev server from API Gateway.

use aws_lambda_events::apigw::{
    ApiGatewayRequestIdentity, ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayWebsocketProxyRequest,
    ApiGatewayWebsocketProxyRequestContext,
};
use http::HeaderMap;
use realtime::aws_lambda_events;
use realtime::time::EpochMs;

pub const API_ID: &str = "local";

/// Who and where a connection is: what API Gateway puts in every event of the connection.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub connection_id: String,
    pub connected_at: EpochMs,
    pub domain_name: String,
    pub stage: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn context(
    c: &ConnectionContext,
    route: &str,
    event_type: &str,
) -> ApiGatewayWebsocketProxyRequestContext {
    let now = EpochMs::now();
    let mut identity = ApiGatewayRequestIdentity::default();
    identity.source_ip = Some(c.source_ip.clone());
    identity.user_agent = c.user_agent.clone();
    let mut ctx = ApiGatewayWebsocketProxyRequestContext::default();
    ctx.route_key = Some(route.to_owned());
    ctx.event_type = Some(event_type.to_owned());
    ctx.message_direction = Some("IN".to_owned());
    ctx.stage = Some(c.stage.clone());
    ctx.domain_name = Some(c.domain_name.clone());
    ctx.connection_id = Some(c.connection_id.clone());
    ctx.connected_at = c.connected_at.0;
    ctx.request_time_epoch = now.0;
    ctx.request_id = Some(request_id());
    ctx.extended_request_id = ctx.request_id.clone();
    ctx.apiid = Some(API_ID.to_owned());
    ctx.identity = identity;
    ctx
}

/// `$connect`: headers and query string of the upgrade request.
pub fn connect(
    c: &ConnectionContext,
    headers: &HeaderMap,
    raw_query: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = context(c, realtime::connection::lifecycle::ROUTE_CONNECT, "CONNECT");
    event.headers = headers.clone();
    event.multi_value_headers = headers.clone();
    if let Some(q) = raw_query.filter(|q| !q.is_empty())
        && let Ok(map) = q.parse::<aws_lambda_events::query_map::QueryMap>()
    {
        event.query_string_parameters = map.clone();
        event.multi_value_query_string_parameters = map;
    }
    event
}

/// A message on `route` (`body` is base64 when `binary`).
pub fn message(
    c: &ConnectionContext,
    route: &str,
    body: String,
    binary: bool,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    let mut ctx = context(c, route, "MESSAGE");
    ctx.message_id = Some(request_id());
    event.request_context = ctx;
    event.body = Some(body);
    event.is_base64_encoded = binary;
    event
}

/// `$disconnect` with the close code and reason.
pub fn disconnect(
    c: &ConnectionContext,
    status_code: u16,
    reason: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    let mut ctx = context(
        c,
        realtime::connection::lifecycle::ROUTE_DISCONNECT,
        "DISCONNECT",
    );
    ctx.disconnect_status_code = Some(i64::from(status_code));
    ctx.disconnect_reason = Some(reason.to_owned());
    event.request_context = ctx;
    event
}

/// An HTTP API (payload v2) request for the status route.
pub fn http_get(
    route_key: &str,
    path: &str,
    headers: &HeaderMap,
    path_parameters: [(&str, String); 1],
    source_ip: String,
) -> ApiGatewayV2httpRequest {
    let mut description = ApiGatewayV2httpRequestContextHttpDescription::default();
    description.method = http::Method::GET;
    description.path = Some(path.to_owned());
    description.protocol = Some("HTTP/1.1".to_owned());
    description.source_ip = Some(source_ip);
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.route_key = Some(route_key.to_owned());
    ctx.stage = Some("$default".to_owned());
    ctx.request_id = Some(request_id());
    ctx.apiid = Some(API_ID.to_owned());
    ctx.time_epoch = EpochMs::now().0;
    ctx.http = description;
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(path.to_owned());
    event.headers = headers.clone();
    event.path_parameters = path_parameters
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    event.request_context = ctx;
    event
}
