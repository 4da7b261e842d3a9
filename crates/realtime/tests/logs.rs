//! Logs are one JSON object per line, and lifecycle events carry `route`, `connection_id`,
//! `user_id` and `project_id` as top-level fields (what `aws logs tail` and Logs Insights read).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{CONNECTION, PROJECT, USER, ws_fixture};
use realtime::connection::auth::Authenticator;
use realtime::connection::lifecycle::{Limits, on_connect, on_disconnect, on_message};
use realtime::memory::MemberList;
use serde_json::Value;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect()
    }
}

fn find<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
}

#[tokio::test(flavor = "current_thread")]
async fn lifecycle_logs_are_json_lines_with_ids() {
    let captured = Captured::default();
    let sink = captured.clone();
    let _guard = tracing::subscriber::set_default(realtime::runtime::telemetry::json_subscriber(
        move || sink.clone(),
    ));

    let (store, _, _) = common::dynamo_store().await;
    let members = MemberList::new([(PROJECT, USER)]);
    let authenticator = Authenticator::new(&common::dev_jwt());
    assert_eq!(
        on_connect(
            &*store,
            None,
            &members,
            &authenticator,
            &Limits::default(),
            &ws_fixture("connect")
        )
        .await
        .status_code,
        200
    );
    on_message(
        &*store,
        None,
        None,
        &members,
        &authenticator,
        &Limits::default(),
        &ws_fixture("subscribe"),
    )
    .await;
    on_message(
        &*store,
        None,
        None,
        &members,
        &authenticator,
        &Limits::default(),
        &common::message(CONNECTION, "$default", "{oops"),
    )
    .await;
    on_message(
        &*store,
        None,
        None,
        &members,
        &authenticator,
        &Limits::default(),
        &ws_fixture("unsubscribe"),
    )
    .await;
    on_disconnect(&*store, None, &ws_fixture("disconnect")).await;
    on_connect(
        &*store,
        None,
        &members,
        &authenticator,
        &Limits::default(),
        &ws_fixture("connect-bad-token"),
    )
    .await;

    let lines = captured.lines();
    let (user, project) = (USER.to_string(), PROJECT.to_string());
    for (message, route) in [
        ("connected", "$connect"),
        ("subscribed", "subscribe"),
        ("unsubscribed", "unsubscribe"),
    ] {
        let line = find(&lines, message);
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["connection_id"], CONNECTION, "{line}");
        assert_eq!(line["user_id"], user.as_str(), "{line}");
        assert_eq!(line["project_id"], project.as_str(), "{line}");
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].is_string());
    }
    let refused = find(&lines, "message refused");
    assert_eq!(
        (refused["route"].as_str(), refused["connection_id"].as_str()),
        (Some("$default"), Some(CONNECTION))
    );
    assert_eq!(refused["level"], "WARN");
    let gone = find(&lines, "disconnected");
    assert_eq!(
        (gone["route"].as_str(), gone["connection_id"].as_str()),
        (Some("$disconnect"), Some(CONNECTION))
    );
    let denied = find(&lines, "connect refused");
    assert_eq!(denied["project_id"], project.as_str());
    assert_eq!(denied["code"], "unauthorized");
}
