//! Helpers shared by the integration tests: DynamoDB Local tables, API Gateway fixtures from
//! `tests/events/`, and the identities those fixtures carry.
#![allow(dead_code)]

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::Select;
use realtime::aws::dynamo::{DynamoStore, create_table};
use realtime::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayWebsocketProxyRequest,
};
use realtime::connection::auth::{DEV_JWT_SECRET, JwtConfig};
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Identities in the fixtures.
pub const USER: Uuid = Uuid::from_u128(0x11111111_1111_4111_8111_111111111111);
pub const PROJECT: Uuid = Uuid::from_u128(0xaaaaaaaa_aaaa_4aaa_8aaa_aaaaaaaaaaaa);
pub const CONNECTION: &str = "Yp3sNdx0IAMCKfQ=";

pub fn dev_jwt() -> JwtConfig {
    JwtConfig {
        secret: DEV_JWT_SECRET.as_bytes().to_vec(),
        issuer: None,
        audience: None,
    }
}

/// A DynamoDB client for DynamoDB Local. Fails (never skips) when the harness is not running.
pub async fn dynamo_client() -> Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .expect("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts DynamoDB Local");
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "tests only talk to DynamoDB Local, not {endpoint}"
    );
    Client::new(&realtime::runtime::config::sdk_config())
}

/// A new, empty connections table on DynamoDB Local.
pub async fn fresh_table() -> (Client, String) {
    let client = dynamo_client().await;
    let table = format!("connections-{}", Uuid::new_v4());
    create_table(&client, &table)
        .await
        .expect("create table on DynamoDB Local");
    (client, table)
}

/// A DynamoDB store over a fresh table, with the client and table name for raw checks.
pub async fn dynamo_store() -> (Arc<DynamoStore>, Client, String) {
    let (client, table) = fresh_table().await;
    (
        Arc::new(DynamoStore::new(client.clone(), table.clone())),
        client,
        table,
    )
}

/// Every connection item in the table, expired or not, counted by a consistent scan.
pub async fn count_items(client: &Client, table: &str) -> usize {
    let mut total = 0;
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .select(Select::Count)
            // Connections only: rate and presence records (no user_id) share the table.
            .filter_expression("attribute_exists(user_id)")
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        total += out.count as usize;
        start = out.last_evaluated_key;
        if start.is_none() {
            return total;
        }
    }
}

/// A fixture of `tests/events/`.
pub fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = format!(
        "{}/../../tests/events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A WebSocket fixture with its times moved to now (connection items expire 24 h after
/// `connectedAt`, so the fixture's fixed date would make them expire).
pub fn ws_fixture(name: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event: ApiGatewayWebsocketProxyRequest = fixture(name);
    let now = realtime::time::EpochMs::now();
    event.request_context.connected_at = now.0;
    event.request_context.request_time_epoch = now.0;
    event
}

pub fn http_fixture(name: &str) -> ApiGatewayV2httpRequest {
    fixture(name)
}

/// The same WebSocket event for another connection id.
pub fn with_connection(
    mut event: ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
) -> ApiGatewayWebsocketProxyRequest {
    event.request_context.connection_id = Some(connection_id.to_owned());
    event
}

/// A message event on `route` with `body`, for connection `connection_id`.
pub fn message(connection_id: &str, route: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = with_connection(ws_fixture("ping"), connection_id);
    event.request_context.route_key = Some(route.to_owned());
    event.body = Some(body.to_owned());
    event
}

/// The body of a response, parsed as JSON.
pub fn body_json(body: &Option<realtime::aws_lambda_events::encodings::Body>) -> serde_json::Value {
    match body {
        Some(realtime::aws_lambda_events::encodings::Body::Text(t)) => {
            serde_json::from_str(t).expect("JSON body")
        }
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// A new, empty database on the throwaway Postgres; its URL. Fails (never skips) without it.
pub async fn fresh_database() -> String {
    let admin = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests with `make test`, which starts Postgres");
    realtime::postgres::create_database(&admin, &format!("t_{}", Uuid::new_v4().simple()))
        .await
        .expect("create a test database")
}
