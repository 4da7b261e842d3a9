//! A subscribe that races a membership removal, with the interleaving forced rather than hoped
//! for: the removal commits, and its revocation runs, between the subscribe's membership check
//! and its write. The subscribe must not end subscribed (DESIGN "Connection life"). On
//! DynamoDB Local, through the same `on_message` and broadcaster the Lambdas run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{PROJECT, USER, body_json, message};
use realtime::connection::auth::Authenticator;
use realtime::connection::lifecycle::{Limits, on_connect, on_message};
use realtime::connection::membership::{Membership, MembershipError};
use realtime::connection::store::{Connection, ConnectionStore};
use realtime::delivery::fanout::FanOut;
use realtime::delivery::sender::{ConnectionSender, PostOutcome};
use realtime::memory::MemberList;
use serde_json::json;
use uuid::Uuid;

struct Accepting;

#[async_trait]
impl ConnectionSender for Accepting {
    async fn post(&self, _: &str, _: &[u8]) -> PostOutcome {
        PostOutcome::Delivered
    }
    async fn close(&self, _: &str) -> PostOutcome {
        PostOutcome::Delivered
    }
}

/// Membership whose first check answers from the list as it was, after the member has been
/// removed and the `member_removed` broadcast has run.
struct RemovedDuringFirstCheck {
    list: MemberList,
    fanout: FanOut,
    fired: AtomicBool,
}

#[async_trait]
impl Membership for RemovedDuringFirstCheck {
    async fn is_member(&self, project: Uuid, user: Uuid) -> Result<bool, MembershipError> {
        let answer = self.list.is_member(project, user).await;
        if !self.fired.swap(true, Ordering::SeqCst) {
            self.list.remove(project, user);
            let removal =
                json!({"project_id": project, "type": "member_removed", "data": {"user_id": user}});
            let deadline = Instant::now() + Duration::from_secs(10);
            let result = realtime::delivery::broadcaster::invoke(
                &self.fanout,
                None,
                None,
                &removal,
                "r",
                deadline,
            )
            .await
            .expect("the removal is broadcast");
            assert_eq!(result["revoked"], 0, "nothing was subscribed yet");
        }
        answer
    }
}

#[tokio::test]
async fn a_subscribe_whose_check_preceded_the_removal_does_not_stay_subscribed() {
    let (store, _, _) = common::dynamo_store().await;
    let store: Arc<dyn ConnectionStore> = store;
    store
        .insert(&Connection::new(
            "conn-1",
            USER,
            None,
            realtime::time::EpochMs::now(),
        ))
        .await
        .unwrap();
    let membership = RemovedDuringFirstCheck {
        list: MemberList::new([(PROJECT, USER)]),
        fanout: FanOut::new(store.clone(), Arc::new(Accepting)),
        fired: AtomicBool::new(false),
    };
    let authenticator = Authenticator::new(&common::dev_jwt());
    let body = json!({"action": "subscribe", "project_id": PROJECT}).to_string();
    let reply = on_message(
        &*store,
        None,
        None,
        &membership,
        &authenticator,
        &Limits::default(),
        &message("conn-1", "subscribe", &body),
    )
    .await;
    assert_eq!(body_json(&reply.body)["code"], "forbidden");
    assert_eq!(
        store.get("conn-1").await.unwrap().unwrap().project_id,
        None,
        "the subscription written after the removal was undone"
    );
}

/// The same race at `$connect` with a project: the check passes, the removal and its
/// revocation run before the connection is written, and the connect must be refused and leave
/// nothing stored (its revocation found nothing to end). Both stores.
async fn a_connect_whose_check_preceded_the_removal_is_refused(store: Arc<dyn ConnectionStore>) {
    let membership = RemovedDuringFirstCheck {
        list: MemberList::new([(PROJECT, USER)]),
        fanout: FanOut::new(store.clone(), Arc::new(Accepting)),
        fired: AtomicBool::new(false),
    };
    let authenticator = Authenticator::new(&common::dev_jwt());
    // The fixture's token is USER's, its project PROJECT.
    let mut request = common::ws_fixture("connect");
    request.request_context.connection_id = Some("conn-2".to_owned());
    let reply = on_connect(
        &*store,
        None,
        &membership,
        &authenticator,
        &Limits::default(),
        &request,
    )
    .await;
    assert_eq!(reply.status_code, 403, "{:?}", reply.body);
    assert_eq!(
        store.get("conn-2").await.unwrap(),
        None,
        "the connection written after the removal was removed"
    );
}

#[tokio::test]
async fn a_connect_racing_a_removal_is_refused_on_dynamodb() {
    let (store, _, _) = common::dynamo_store().await;
    a_connect_whose_check_preceded_the_removal_is_refused(store).await;
}

#[tokio::test]
async fn a_connect_racing_a_removal_is_refused_in_memory() {
    a_connect_whose_check_preceded_the_removal_is_refused(Arc::new(
        realtime::memory::MemoryStore::new(),
    ))
    .await;
}

/// The broadcaster's answer to USER's removal from PROJECT (`member_removed`).
async fn broadcast_removal(fanout: &FanOut) -> serde_json::Value {
    let removal =
        json!({"project_id": PROJECT, "type": "member_removed", "data": {"user_id": USER}});
    realtime::delivery::broadcaster::invoke(
        fanout,
        None,
        None,
        &removal,
        "r",
        Instant::now() + Duration::from_secs(10),
    )
    .await
    .expect("the removal is broadcast")
}

/// A connection subscribed a moment before the removal, which the (eventually consistent) user
/// index does not list yet when the revocation first reads it, is still revoked: the index is
/// read again after its propagation window.
#[tokio::test]
async fn a_revocation_ends_a_subscription_the_user_index_does_not_show_yet() {
    let store: Arc<dyn ConnectionStore> = Arc::new(
        realtime::memory::MemoryStore::new().with_user_index_lag(Duration::from_millis(500)),
    );
    store
        .insert(&Connection::new(
            "conn-3",
            USER,
            Some(PROJECT),
            realtime::time::EpochMs::now(),
        ))
        .await
        .unwrap();
    let fanout = FanOut::new(store.clone(), Arc::new(Accepting));
    let result = broadcast_removal(&fanout).await;
    assert_eq!(result["revoked"], 1, "{result}");
    assert_eq!(store.get("conn-3").await.unwrap().unwrap().project_id, None);
}

/// Answers 429 to the first `unsubscribed` posted to each connection, delivers the rest;
/// records what it delivered.
#[derive(Default)]
struct ThrottlingOnce {
    tried: std::sync::Mutex<std::collections::HashSet<String>>,
    delivered: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl ConnectionSender for ThrottlingOnce {
    async fn post(&self, id: &str, payload: &[u8]) -> PostOutcome {
        let frame = String::from_utf8_lossy(payload).into_owned();
        if frame.contains("membership_revoked") && self.tried.lock().unwrap().insert(id.to_owned())
        {
            return PostOutcome::Throttled;
        }
        self.delivered.lock().unwrap().push((id.to_owned(), frame));
        PostOutcome::Delivered
    }
    async fn close(&self, _: &str) -> PostOutcome {
        PostOutcome::Delivered
    }
}

/// The revoked member is told even when the Management API throttles the first try: the
/// `unsubscribed` is retried as a fan-out's posts are.
#[tokio::test]
async fn a_throttled_unsubscribed_is_retried() {
    let store: Arc<dyn ConnectionStore> = Arc::new(realtime::memory::MemoryStore::new());
    let opened = realtime::time::EpochMs::now().minus_ms(60_000);
    store
        .insert(&Connection::new("conn-4", USER, Some(PROJECT), opened))
        .await
        .unwrap();
    let sender = Arc::new(ThrottlingOnce::default());
    let fanout = FanOut::new(store.clone(), sender.clone());
    let result = broadcast_removal(&fanout).await;
    assert_eq!(result["revoked"], 1, "{result}");
    let delivered = sender.delivered.lock().unwrap().clone();
    assert!(
        delivered
            .iter()
            .any(|(id, f)| id == "conn-4" && f.contains("membership_revoked")),
        "{delivered:?}"
    );
}
