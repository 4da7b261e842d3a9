//! Bad messages on the message routes: each gets an `error` frame with the right code as the
//! route response, nothing panics, and the stored connection is unchanged.

mod common;

use std::sync::Arc;

use common::{PROJECT, USER, body_json, message};
use realtime::connection::auth::Authenticator;
use realtime::connection::lifecycle::{Limits, on_message};
use realtime::connection::store::{Connection, Records};
use realtime::memory::MemberList;
use realtime::wire::client::MAX_CLIENT_MESSAGE_BYTES;
use serde_json::json;

#[tokio::test]
async fn bad_messages_get_error_frames_and_change_nothing() {
    let (store, client, table) = common::dynamo_store().await;
    let members = Arc::new(MemberList::new([(PROJECT, USER)]));
    let authenticator = Authenticator::new(&common::dev_jwt());
    let before = Connection::new(
        "conn-1",
        USER,
        Some(PROJECT),
        realtime::time::EpochMs::now(),
    );
    store.insert(&before).await.unwrap();
    let stranger = uuid::Uuid::new_v4();

    let oversized = format!(
        r#"{{"action":"ping","pad":"{}"}}"#,
        "x".repeat(MAX_CLIENT_MESSAGE_BYTES)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("invalid JSON", "{not json".into(), "bad_request"),
        ("empty body", String::new(), "bad_request"),
        ("JSON array", "[]".into(), "bad_request"),
        ("JSON string", r#""subscribe""#.into(), "bad_request"),
        ("no action or type", "{}".into(), "bad_request"),
        (
            "unknown action",
            r#"{"action":"explode"}"#.into(),
            "bad_request",
        ),
        (
            "unknown type",
            r#"{"type":"explode"}"#.into(),
            "bad_request",
        ),
        (
            "action not a string",
            r#"{"action":7}"#.into(),
            "bad_request",
        ),
        (
            "subscribe without project",
            r#"{"action":"subscribe"}"#.into(),
            "bad_request",
        ),
        (
            "subscribe with non-UUID project",
            r#"{"action":"subscribe","project_id":"abc"}"#.into(),
            "bad_request",
        ),
        (
            "subscribe with numeric project",
            r#"{"action":"subscribe","project_id":42}"#.into(),
            "bad_request",
        ),
        (
            "subscribe with null project",
            r#"{"action":"subscribe","project_id":null}"#.into(),
            "bad_request",
        ),
        (
            "join_project without project",
            r#"{"type":"join_project"}"#.into(),
            "bad_request",
        ),
        (
            "join_project with object project",
            r#"{"type":"join_project","project_id":{}}"#.into(),
            "bad_request",
        ),
        ("body over 32 KB", oversized, "too_large"),
        (
            "subscribe to a project of strangers",
            format!(r#"{{"action":"subscribe","project_id":"{stranger}"}}"#),
            "forbidden",
        ),
    ];
    for (name, body, code) in &cases {
        for route in ["subscribe", "$default"] {
            let response = on_message(
                &*store,
                None,
                None,
                &*members,
                &authenticator,
                &Limits::default(),
                &message("conn-1", route, body),
            )
            .await;
            assert_eq!(
                response.status_code, 200,
                "{name}: replies travel as the route response"
            );
            let frame = body_json(&response.body);
            assert_eq!(frame["type"], "error", "{name}");
            assert_eq!(frame["code"], *code, "{name} on {route}: {frame}");
            assert!(
                frame["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{name}: message explains"
            );
        }
        assert_eq!(
            store.get("conn-1").await.unwrap().as_ref(),
            Some(&before),
            "{name}: connection unchanged"
        );
    }

    // Binary frames arrive base64-encoded and are refused.
    let mut binary = message("conn-1", "$default", "AAEC");
    binary.is_base64_encoded = true;
    assert_eq!(
        body_json(
            &on_message(
                &*store,
                None,
                None,
                &*members,
                &authenticator,
                &Limits::default(),
                &binary
            )
            .await
            .body
        )["code"],
        "bad_request"
    );

    // A message from a connection the store does not know: not_found, nothing created.
    let ghost = format!(r#"{{"action":"subscribe","project_id":"{PROJECT}"}}"#);
    assert_eq!(
        body_json(
            &on_message(
                &*store,
                None,
                None,
                &*members,
                &authenticator,
                &Limits::default(),
                &message("ghost", "subscribe", &ghost)
            )
            .await
            .body
        )["code"],
        "not_found"
    );
    assert_eq!(
        body_json(
            &on_message(
                &*store,
                None,
                None,
                &*members,
                &authenticator,
                &Limits::default(),
                &message("ghost", "unsubscribe", r#"{"action":"unsubscribe"}"#)
            )
            .await
            .body
        )["code"],
        "not_found"
    );
    assert_eq!(common::count_items(&client, &table).await, 1);
    assert_eq!(store.get("conn-1").await.unwrap().as_ref(), Some(&before));

    // And a good message still works afterwards.
    let ping = on_message(
        &*store,
        None,
        None,
        &*members,
        &authenticator,
        &Limits::default(),
        &message("conn-1", "ping", r#"{"action":"ping"}"#),
    )
    .await;
    assert_eq!(body_json(&ping.body), json!({"type": "pong"}));
}
