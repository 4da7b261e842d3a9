//! The Lambda handlers driven by the API Gateway fixtures of `tests/events/`, on DynamoDB
//! Local, the way the runtime calls them: `LambdaEvent::new(payload, Context::default())`.

mod common;

use std::sync::Arc;

use common::{CONNECTION, PROJECT, USER, body_json, count_items, http_fixture, ws_fixture};
use realtime::connection::auth::Authenticator;
use realtime::connection::lifecycle::Limits;
use realtime::connection::store::{ConnectionStore, Listings, Records};
use realtime::lambda_runtime::{Context, LambdaEvent};
use realtime::memory::MemberList;
use realtime::runtime::handlers::{Connect, Disconnect, Messages, Status};
use serde_json::json;
use uuid::Uuid;

struct World {
    connect: Connect,
    disconnect: Disconnect,
    message: Messages,
    status: Status,
    store: Arc<dyn ConnectionStore>,
    members: Arc<MemberList>,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl World {
    async fn new() -> Self {
        let (store, client, table) = common::dynamo_store().await;
        let store: Arc<dyn ConnectionStore> = store;
        let members = Arc::new(MemberList::new([(PROJECT, USER)]));
        let authenticator = Arc::new(Authenticator::new(&common::dev_jwt()));
        World {
            connect: Connect {
                store: store.clone(),
                presence: None,
                membership: members.clone(),
                authenticator: authenticator.clone(),
                limits: Limits::default(),
            },
            disconnect: Disconnect {
                store: store.clone(),
                presence: None,
            },
            message: Messages {
                store: store.clone(),
                events: None,
                presence: None,
                membership: members.clone(),
                authenticator: authenticator.clone(),
                limits: Limits::default(),
            },
            status: Status {
                store: store.clone(),
                membership: members.clone(),
                authenticator,
            },
            store,
            members,
            client,
            table,
        }
    }

    async fn items(&self) -> usize {
        count_items(&self.client, &self.table).await
    }

    async fn send(&self, fixture: &str) -> serde_json::Value {
        let response = self
            .message
            .handle(event(ws_fixture(fixture)))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200, "{fixture}");
        body_json(&response.body)
    }

    async fn status_of(
        &self,
        request: realtime::aws_lambda_events::apigw::ApiGatewayV2httpRequest,
    ) -> (i64, serde_json::Value) {
        let response = self.status.handle(event(request)).await.unwrap();
        (response.status_code, body_json(&response.body))
    }
}

fn event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn lifecycle_through_the_fixtures() {
    let w = World::new().await;

    let r = w
        .connect
        .handle(event(ws_fixture("connect")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 200);
    assert!(
        r.headers.get("sec-websocket-protocol").is_none(),
        "no subprotocol was offered"
    );
    let stored = w
        .store
        .get(CONNECTION)
        .await
        .unwrap()
        .expect("connection recorded");
    assert_eq!((stored.user_id, stored.project_id), (USER, Some(PROJECT)));
    assert_eq!(
        stored.expires_at.0,
        stored.connected_at.0 / 1000 + 24 * 3600
    );

    assert_eq!(
        w.send("subscribe").await,
        json!({"type": "subscribed", "message": "subscribed", "project_id": PROJECT})
    );
    assert_eq!(w.send("ping").await, json!({"type": "pong"}));

    let (code, status) = w.status_of(http_fixture("status")).await;
    assert_eq!(code, 200);
    assert_eq!(status["project_clients"], 1);
    assert_eq!(status["user_ids"], json!([USER]));
    assert!(status["total_clients"].is_u64());

    assert_eq!(w.send("unsubscribe").await, json!({"type": "unsubscribed"}));
    assert_eq!(
        w.status_of(http_fixture("status")).await.1["project_clients"],
        0
    );
    assert_eq!(
        w.store.get(CONNECTION).await.unwrap().unwrap().project_id,
        None
    );

    // The older `type` form on $default.
    assert_eq!(
        w.send("default").await,
        json!({"type": "subscribed", "message": "subscribed", "project_id": PROJECT})
    );
    assert_eq!(
        w.store.get(CONNECTION).await.unwrap().unwrap().project_id,
        Some(PROJECT)
    );

    let r = w
        .disconnect
        .handle(event(ws_fixture("disconnect")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(w.items().await, 0);
    assert_eq!(
        w.send("subscribe").await["code"],
        "not_found",
        "a closed connection cannot subscribe"
    );
    assert_eq!(w.items().await, 0);
}

#[tokio::test]
async fn token_in_the_subprotocol_header_selects_devhive() {
    let w = World::new().await;
    let r = w
        .connect
        .handle(event(ws_fixture("connect-protocol-header")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.headers.get("sec-websocket-protocol").unwrap(), "devhive");
    // `projectId` is accepted as an alias of `project_id`.
    assert_eq!(
        w.store.get(CONNECTION).await.unwrap().unwrap().project_id,
        Some(PROJECT)
    );
}

#[tokio::test]
async fn connect_without_a_project_is_not_subscribed() {
    let w = World::new().await;
    assert_eq!(
        w.connect
            .handle(event(ws_fixture("connect-no-project")))
            .await
            .unwrap()
            .status_code,
        200
    );
    let stored = w.store.get(CONNECTION).await.unwrap().unwrap();
    assert_eq!(stored.project_id, None);
}

#[tokio::test]
async fn bad_token_fixture_is_refused_with_401() {
    let w = World::new().await;
    let r = w
        .connect
        .handle(event(ws_fixture("connect-bad-token")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 401);
    assert_eq!(body_json(&r.body)["code"], "unauthorized");
    assert_eq!(w.items().await, 0);
}

#[tokio::test]
async fn non_member_is_refused_at_connect_and_at_subscribe() {
    let w = World::new().await;
    let other = Uuid::new_v4();
    let mut request = ws_fixture("connect");
    request.query_string_parameters = format!(
        "token={}&project_id={other}",
        request.query_string_parameters.first("token").unwrap()
    )
    .parse()
    .unwrap();
    let r = w.connect.handle(event(request)).await.unwrap();
    assert_eq!(r.status_code, 403);
    assert_eq!(body_json(&r.body)["code"], "forbidden");
    assert_eq!(w.items().await, 0);

    assert_eq!(
        w.connect
            .handle(event(ws_fixture("connect-no-project")))
            .await
            .unwrap()
            .status_code,
        200
    );
    let body = format!(r#"{{"action":"subscribe","project_id":"{other}"}}"#);
    let r = w
        .message
        .handle(event(common::message(CONNECTION, "subscribe", &body)))
        .await
        .unwrap();
    assert_eq!(body_json(&r.body)["code"], "forbidden");
    assert_eq!(
        w.store.get(CONNECTION).await.unwrap().unwrap().project_id,
        None,
        "nothing written"
    );

    // A member passes.
    w.members.add(other, USER);
    let r = w
        .message
        .handle(event(common::message(CONNECTION, "subscribe", &body)))
        .await
        .unwrap();
    assert_eq!(body_json(&r.body)["type"], "subscribed");
}

#[tokio::test]
async fn membership_failure_denies_with_unavailable() {
    let w = World::new().await;
    w.members.set_failing(true);
    let r = w
        .connect
        .handle(event(ws_fixture("connect")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 503);
    assert_eq!(body_json(&r.body)["code"], "unavailable");
    assert_eq!(w.items().await, 0);

    w.members.set_failing(false);
    assert_eq!(
        w.connect
            .handle(event(ws_fixture("connect-no-project")))
            .await
            .unwrap()
            .status_code,
        200
    );
    w.members.set_failing(true);
    assert_eq!(w.send("subscribe").await["code"], "unavailable");
    assert_eq!(
        w.store.get(CONNECTION).await.unwrap().unwrap().project_id,
        None,
        "nothing written"
    );
    let (code, body) = w.status_of(http_fixture("status")).await;
    assert_eq!((code, body["code"].as_str()), (503, Some("unavailable")));
}

#[tokio::test]
async fn status_requires_a_member_bearer_token() {
    let w = World::new().await;
    let mut request = http_fixture("status");
    request.headers.remove("authorization");
    let (status, body) = w.status_of(request).await;
    assert_eq!(status, 401);
    // The refusal names the header this endpoint takes (not the WebSocket's ?token=).
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("Authorization: Bearer"), "{body}");

    let mut request = http_fixture("status");
    request
        .headers
        .insert("authorization", "Bearer not.a.jwt".parse().unwrap());
    assert_eq!(w.status_of(request).await.0, 401);

    let mut request = http_fixture("status");
    request
        .headers
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(w.status_of(request).await.0, 401);

    let mut request = http_fixture("status");
    request
        .path_parameters
        .insert("projectId".into(), Uuid::new_v4().to_string());
    assert_eq!(w.status_of(request).await.0, 403);

    let mut request = http_fixture("status");
    request
        .path_parameters
        .insert("projectId".into(), "not-a-uuid".into());
    assert_eq!(w.status_of(request).await.0, 400);
}

#[tokio::test]
async fn status_counts_connections_and_distinct_users() {
    let w = World::new().await;
    let second_user = Uuid::new_v4();
    for (id, user) in [("c1", USER), ("c2", USER), ("c3", second_user)] {
        w.store
            .insert(&realtime::connection::store::Connection::new(
                id,
                user,
                Some(PROJECT),
                realtime::time::EpochMs::now(),
            ))
            .await
            .unwrap();
    }
    w.store
        .insert(&realtime::connection::store::Connection::new(
            "c4",
            USER,
            Some(Uuid::new_v4()),
            realtime::time::EpochMs::now(),
        ))
        .await
        .unwrap();
    let (code, body) = w.status_of(http_fixture("status")).await;
    assert_eq!(code, 200);
    assert_eq!(body["project_clients"], 3);
    let mut want = vec![USER, second_user];
    want.sort();
    assert_eq!(body["user_ids"], json!(want));
}

#[tokio::test]
async fn a_connect_whose_write_timed_out_leaves_nothing_stored() {
    // The insert is written, then reported as a timeout.
    let store = Arc::new(realtime::memory::MemoryStore::new().with_inserts_timing_out());
    let connect = Connect {
        store: store.clone(),
        presence: None,
        membership: Arc::new(MemberList::new([(PROJECT, USER)])),
        authenticator: Arc::new(Authenticator::new(&common::dev_jwt())),
        limits: Limits::default(),
    };
    let r = connect.handle(event(ws_fixture("connect"))).await.unwrap();
    assert!(r.status_code >= 500, "refused: {}", r.status_code);
    assert_eq!(
        store.get(CONNECTION).await.unwrap(),
        None,
        "the refused connection is not kept"
    );
    assert_eq!(store.approximate_total().await.unwrap(), 0);
}

#[tokio::test]
async fn each_handler_refuses_another_routes_event_naming_both() {
    let w = World::new().await;
    let reply = w.send("disconnect").await;
    assert_eq!(reply["code"], "bad_request");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("$disconnect") && message.contains("subscribe"),
        "{message}"
    );
    let r = w
        .connect
        .handle(event(ws_fixture("subscribe")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 400);
    let body = body_json(&r.body);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("$connect") && message.contains("subscribe"),
        "{message}"
    );
    let r = w
        .disconnect
        .handle(event(ws_fixture("connect")))
        .await
        .unwrap();
    assert_eq!(r.status_code, 400);
    assert_eq!(w.items().await, 0, "nothing written by any of them");
}
