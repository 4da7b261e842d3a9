//! One behavioural suite for every `ConnectionStore` adapter: each case runs against the
//! memory store and against the DynamoDB store on DynamoDB Local, with small pages forced so
//! that paging is exercised.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use realtime::connection::store::{
    Admission, CONNECTION_TTL_SECONDS, Connection, ConnectionStore, Listings, MessageRate,
    StoreError, reconnect_minute,
};
use realtime::memory::MemoryStore;
use realtime::time::{EpochMs, EpochSecs};
use uuid::Uuid;

const PAGE: usize = 10;

/// A store under test and a way to count its raw items (expired ones included).
struct Subject {
    store: Arc<dyn ConnectionStore>,
    dynamo: Option<(aws_sdk_dynamodb::Client, String)>,
    memory: Option<Arc<MemoryStore>>,
}

impl Subject {
    async fn memory() -> Self {
        let store = Arc::new(MemoryStore::with_page_size(PAGE));
        Subject {
            store: store.clone(),
            dynamo: None,
            memory: Some(store),
        }
    }

    async fn dynamo() -> Self {
        let (client, table) = common::fresh_table().await;
        let store = realtime::aws::dynamo::DynamoStore::new(client.clone(), table.clone())
            .with_page_limit(PAGE as i32);
        Subject {
            store: Arc::new(store),
            dynamo: Some((client, table)),
            memory: None,
        }
    }

    async fn raw_items(&self) -> usize {
        match (&self.dynamo, &self.memory) {
            (Some((client, table)), _) => common::count_items(client, table).await,
            (_, Some(m)) => m.approximate_total().await.unwrap() as usize,
            _ => unreachable!(),
        }
    }
}

fn live(id: &str, user: Uuid, project: Option<Uuid>) -> Connection {
    Connection::new(id, user, project, EpochMs::now())
}

fn expired(id: &str, user: Uuid, project: Option<Uuid>) -> Connection {
    let connected_at = EpochMs::now().minus_ms((CONNECTION_TTL_SECONDS + 60) * 1000);
    let c = Connection::new(id, user, project, connected_at);
    assert!(!c.is_live(EpochSecs::now()));
    c
}

async fn ids_of(store: &dyn ConnectionStore, project: Uuid) -> (Vec<String>, usize) {
    let pages: Vec<_> = store
        .project_subscribers(project)
        .try_collect()
        .await
        .expect("list");
    let count = pages.len();
    assert!(pages.iter().all(|p| !p.is_empty()), "pages are never empty");
    (
        pages
            .into_iter()
            .flatten()
            .map(|s| s.connection_id)
            .collect(),
        count,
    )
}

async fn insert_get_roundtrip(s: Subject) {
    let user = Uuid::new_v4();
    let project = Uuid::new_v4();
    let c = live("conn-a", user, Some(project));
    s.store.insert(&c).await.unwrap();
    assert_eq!(s.store.get("conn-a").await.unwrap(), Some(c));
    assert_eq!(s.store.get("conn-missing").await.unwrap(), None);
    let page: Vec<_> = s
        .store
        .project_subscribers(project)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0][0].user_id, user);
    assert_eq!(page[0][0].connection_id, "conn-a");
}

async fn subscribe_moves_between_projects(s: Subject) {
    let (p1, p2) = (Uuid::new_v4(), Uuid::new_v4());
    s.store
        .insert(&live("conn-a", Uuid::new_v4(), None))
        .await
        .unwrap();
    assert!(
        ids_of(&*s.store, p1).await.0.is_empty(),
        "unsubscribed connections are not in the index"
    );
    let after = s.store.subscribe("conn-a", p1).await.unwrap();
    assert_eq!(after.project_id, Some(p1));
    assert_eq!(ids_of(&*s.store, p1).await.0, vec!["conn-a"]);
    s.store.subscribe("conn-a", p2).await.unwrap();
    assert!(ids_of(&*s.store, p1).await.0.is_empty());
    assert_eq!(ids_of(&*s.store, p2).await.0, vec!["conn-a"]);
}

async fn unsubscribe_removes_from_index(s: Subject) {
    let p = Uuid::new_v4();
    s.store
        .insert(&live("conn-a", Uuid::new_v4(), Some(p)))
        .await
        .unwrap();
    s.store
        .insert(&live("conn-b", Uuid::new_v4(), Some(p)))
        .await
        .unwrap();
    let old = s.store.unsubscribe("conn-a").await.unwrap();
    assert_eq!(
        old.project_id,
        Some(p),
        "unsubscribe returns the connection as it was"
    );
    assert_eq!(ids_of(&*s.store, p).await.0, vec!["conn-b"]);
    let still = s
        .store
        .get("conn-a")
        .await
        .unwrap()
        .expect("connection stays open");
    assert_eq!(still.project_id, None);
    assert_eq!(
        s.store.unsubscribe("conn-gone").await,
        Err(StoreError::NotFound)
    );
}

async fn subscribe_after_disconnect_creates_nothing(s: Subject) {
    let p = Uuid::new_v4();
    s.store
        .insert(&live("conn-a", Uuid::new_v4(), None))
        .await
        .unwrap();
    s.store.remove("conn-a").await.unwrap();
    assert_eq!(s.raw_items().await, 0);
    assert_eq!(
        s.store.subscribe("conn-a", p).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.store.subscribe("never-connected", p).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.raw_items().await,
        0,
        "a late subscribe must not recreate the item"
    );
    assert!(ids_of(&*s.store, p).await.0.is_empty());
    s.store
        .remove("conn-a")
        .await
        .expect("removing an absent connection is fine");
}

async fn expired_items_are_never_returned(s: Subject) {
    let p = Uuid::new_v4();
    s.store
        .insert(&expired("conn-old", Uuid::new_v4(), Some(p)))
        .await
        .unwrap();
    s.store
        .insert(&expired("conn-old-2", Uuid::new_v4(), None))
        .await
        .unwrap();
    s.store
        .insert(&live("conn-new", Uuid::new_v4(), Some(p)))
        .await
        .unwrap();
    // TTL may or may not have deleted them yet; either way they must be invisible.
    assert_eq!(s.store.get("conn-old").await.unwrap(), None);
    assert_eq!(ids_of(&*s.store, p).await.0, vec!["conn-new"]);
    assert_eq!(
        s.store.subscribe("conn-old-2", p).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.store.unsubscribe("conn-old").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(ids_of(&*s.store, p).await.0, vec!["conn-new"]);
}

async fn listing_spans_many_pages(s: Subject) {
    let (p, other) = (Uuid::new_v4(), Uuid::new_v4());
    let n = PAGE * 3 + 7;
    let mut want = HashSet::new();
    for i in 0..n {
        let id = format!("conn-{i:03}");
        s.store
            .insert(&live(&id, Uuid::new_v4(), Some(p)))
            .await
            .unwrap();
        want.insert(id);
        if i % 4 == 0 {
            // Interleave expired members of the same project and members of another one.
            s.store
                .insert(&expired(&format!("conn-{i:03}-x"), Uuid::new_v4(), Some(p)))
                .await
                .unwrap();
            s.store
                .insert(&live(
                    &format!("conn-{i:03}-o"),
                    Uuid::new_v4(),
                    Some(other),
                ))
                .await
                .unwrap();
        }
    }
    let (ids, pages) = ids_of(&*s.store, p).await;
    assert!(
        pages >= 3,
        "expected at least 3 pages of {PAGE}, got {pages}"
    );
    assert_eq!(ids.len(), n, "each live connection exactly once");
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), want);
    // The listing is a stream: taking the first page does not read the rest.
    let first = s
        .store
        .project_subscribers(p)
        .next()
        .await
        .unwrap()
        .unwrap();
    assert!(first.len() <= PAGE);
}

async fn remove_deletes(s: Subject) {
    let p = Uuid::new_v4();
    s.store
        .insert(&live("conn-a", Uuid::new_v4(), Some(p)))
        .await
        .unwrap();
    s.store.remove("conn-a").await.unwrap();
    assert_eq!(s.store.get("conn-a").await.unwrap(), None);
    assert!(ids_of(&*s.store, p).await.0.is_empty());
    assert_eq!(s.raw_items().await, 0);
}

async fn everyone_spans_pages_and_skips_expired(s: Subject) {
    let n = PAGE * 2 + 3;
    for i in 0..n {
        let project = (i % 3 != 0).then(Uuid::new_v4);
        s.store
            .insert(&live(&format!("all-{i:03}"), Uuid::new_v4(), project))
            .await
            .unwrap();
    }
    s.store
        .insert(&expired("all-old", Uuid::new_v4(), Some(Uuid::new_v4())))
        .await
        .unwrap();
    let pages: Vec<_> = s.store.all_subscribers().try_collect().await.unwrap();
    assert!(
        pages.len() >= 2,
        "pages of at most {PAGE}: got {}",
        pages.len()
    );
    let ids: HashSet<String> = pages
        .into_iter()
        .flatten()
        .map(|s| s.connection_id)
        .collect();
    assert_eq!(ids.len(), n);
    assert!(!ids.contains("all-old"));
}

async fn remove_many_deletes_them_all(s: Subject) {
    let p = Uuid::new_v4();
    let ids: Vec<String> = (0..40).map(|i| format!("rm-{i:02}")).collect();
    for id in &ids {
        s.store
            .insert(&live(id, Uuid::new_v4(), Some(p)))
            .await
            .unwrap();
    }
    s.store.remove_many(&ids[..33]).await.unwrap();
    let (left, _) = ids_of(&*s.store, p).await;
    assert_eq!(left, ids[33..].to_vec());
    assert_eq!(s.raw_items().await, 7);
    s.store.remove_many(&[]).await.unwrap();
}

/// The reconnect index: among 3,000 connections opened over three hours, one minute's query
/// finds exactly those that reach 1 h 55 min in that minute, over many pages, live ones only.
async fn reconnect_due_finds_exactly_one_minute(s: Subject) {
    let base = EpochMs::now().minus_ms(2 * 3600 * 1000);
    let opened: Vec<(String, EpochMs)> = (0..3000)
        .map(|i| (format!("due-{i:04}"), base.plus_ms(i * 3_600)))
        .collect();
    futures::stream::iter(opened.iter())
        .for_each_concurrent(32, |(id, at)| {
            let store = s.store.clone();
            async move {
                let c = Connection::new(id.clone(), Uuid::new_v4(), None, *at);
                store.insert(&c).await.unwrap();
            }
        })
        .await;
    let minute = reconnect_minute(base.plus_ms(1500 * 3_600));
    let mut expected: Vec<String> = opened
        .iter()
        .filter(|(_, at)| reconnect_minute(*at) == minute)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        (16..=17).contains(&expected.len()),
        "one minute of connections opened 3.6 s apart"
    );
    // An item of the same minute whose TTL has passed (DynamoDB deletes it days late).
    let mut stale = Connection::new(
        "due-stale",
        Uuid::new_v4(),
        None,
        base.plus_ms(1500 * 3_600),
    );
    stale.expires_at = EpochSecs::now().minus_secs(1);
    s.store.insert(&stale).await.unwrap();

    let pages: Vec<_> = s.store.reconnect_due(minute).try_collect().await.unwrap();
    assert!(pages.len() >= 2, "the minute spans pages of {PAGE}");
    let mut found: Vec<String> = pages
        .into_iter()
        .flatten()
        .map(|c| c.connection_id)
        .collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(
        reconnect_minute(base) * 60 - base.secs().0,
        6900 - base.secs().0.rem_euclid(60),
        "due 1 h 55 min after connecting"
    );
}

async fn token_exp_round_trips_and_is_indexed(s: Subject) {
    let (user, p) = (Uuid::new_v4(), Uuid::new_v4());
    let c = live("conn-a", user, Some(p)).with_token_exp(EpochSecs(1_900_000_000));
    s.store.insert(&c).await.unwrap();
    assert_eq!(s.store.get("conn-a").await.unwrap(), Some(c));
    let listed: Vec<_> = s.store.project_subscribers(p).try_collect().await.unwrap();
    assert_eq!(
        listed[0][0].token_exp,
        EpochSecs(1_900_000_000),
        "the project index projects it"
    );
    let mine: Vec<_> = s.store.user_connections(user).try_collect().await.unwrap();
    assert_eq!(
        (mine[0][0].token_exp, mine[0][0].project_id),
        (EpochSecs(1_900_000_000), Some(p)),
        "the user index projects token_exp and project_id"
    );
}

async fn user_connections_lists_only_that_users_live_ones(s: Subject) {
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    for i in 0..(PAGE + 3) {
        s.store
            .insert(&live(&format!("u-{i:02}"), user, None))
            .await
            .unwrap();
    }
    s.store.insert(&live("other", other, None)).await.unwrap();
    s.store.insert(&expired("old", user, None)).await.unwrap();
    let mut ids: Vec<String> = s
        .store
        .user_connections(user)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .map(|c| c.connection_id)
        .collect();
    ids.sort();
    let want: Vec<String> = (0..(PAGE + 3)).map(|i| format!("u-{i:02}")).collect();
    assert_eq!(ids, want);
    s.store.remove("u-00").await.unwrap();
    let left: usize = s
        .store
        .user_connections(user)
        .map(|p| p.unwrap().len())
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(left, PAGE + 2);
}

async fn admit_allows_a_burst_then_the_rate(s: Subject) {
    let rate = MessageRate::per_second(10);
    s.store
        .insert(&live("conn-a", Uuid::new_v4(), None))
        .await
        .unwrap();
    let now = EpochMs::now();
    let mut admitted = 0;
    for _ in 0..30 {
        if let Admission::Admitted(c) = s.store.admit("conn-a", rate, now).await.unwrap() {
            assert_eq!(c.connection_id, "conn-a");
            admitted += 1;
        }
    }
    assert_eq!(admitted, 20, "a burst of twice the rate");
    assert_eq!(
        s.store
            .admit("conn-a", rate, now.plus_ms(99))
            .await
            .unwrap(),
        Admission::Limited
    );
    assert!(matches!(
        s.store
            .admit("conn-a", rate, now.plus_ms(100))
            .await
            .unwrap(),
        Admission::Admitted(_)
    ));
    // Another connection has its own allowance; a closed one is not found.
    s.store
        .insert(&live("conn-b", Uuid::new_v4(), None))
        .await
        .unwrap();
    assert!(matches!(
        s.store.admit("conn-b", rate, now).await.unwrap(),
        Admission::Admitted(_)
    ));
    assert_eq!(
        s.store.admit("gone", rate, now).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.raw_items().await, 2, "admitting creates nothing");
}

async fn refresh_moves_token_exp_for_the_same_user_only(s: Subject) {
    let user = Uuid::new_v4();
    s.store
        .insert(&live("conn-a", user, None).with_token_exp(EpochSecs(1_800_000_000)))
        .await
        .unwrap();
    assert_eq!(
        s.store
            .refresh("conn-a", Uuid::new_v4(), EpochSecs(1_900_000_000))
            .await,
        Err(StoreError::NotFound),
        "another user's token changes nothing"
    );
    assert_eq!(
        s.store.get("conn-a").await.unwrap().unwrap().token_exp,
        EpochSecs(1_800_000_000)
    );
    let c = s
        .store
        .refresh("conn-a", user, EpochSecs(1_900_000_000))
        .await
        .unwrap();
    assert_eq!(c.token_exp, EpochSecs(1_900_000_000));
    assert_eq!(
        s.store.refresh("gone", user, EpochSecs(1)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.raw_items().await, 1);
}

async fn unsubscribe_from_ends_only_that_project(s: Subject) {
    let (p, q) = (Uuid::new_v4(), Uuid::new_v4());
    let user = Uuid::new_v4();
    s.store
        .insert(&live("conn-a", user, Some(p)))
        .await
        .unwrap();
    s.store
        .insert(&live("conn-b", user, Some(q)))
        .await
        .unwrap();
    assert!(!s.store.unsubscribe_from("conn-b", p).await.unwrap());
    assert!(!s.store.unsubscribe_from("gone", p).await.unwrap());
    assert!(s.store.unsubscribe_from("conn-a", p).await.unwrap());
    assert!(
        !s.store.unsubscribe_from("conn-a", p).await.unwrap(),
        "only the first call ends it"
    );
    assert!(ids_of(&*s.store, p).await.0.is_empty());
    assert_eq!(ids_of(&*s.store, q).await.0, vec!["conn-b"]);
    assert_eq!(s.raw_items().await, 2);
}

async fn remove_expired_removes_only_expired_tokens_once(s: Subject) {
    let now = EpochSecs::now();
    let user = Uuid::new_v4();
    s.store
        .insert(&live("fresh", user, None).with_token_exp(now.plus_secs(60)))
        .await
        .unwrap();
    s.store
        .insert(&live("stale", user, None).with_token_exp(now.minus_secs(1)))
        .await
        .unwrap();
    assert!(!s.store.remove_expired("fresh", now).await.unwrap());
    assert!(s.store.remove_expired("stale", now).await.unwrap());
    assert!(!s.store.remove_expired("stale", now).await.unwrap());
    assert!(!s.store.remove_expired("gone", now).await.unwrap());
    assert_eq!(s.raw_items().await, 1);
    assert!(s.store.get("fresh").await.unwrap().is_some());
}

/// `typing` lets one through per window, only for the project the connection is subscribed
/// to, and none for a closed connection.
async fn typing_admits_one_per_window_for_the_subscribed_project(s: Subject) {
    let (user, project) = (Uuid::new_v4(), Uuid::new_v4());
    s.store
        .insert(&live("conn-t", user, Some(project)))
        .await
        .unwrap();
    let now = EpochMs::now();
    let typing = |at: EpochMs, p: Uuid| s.store.typing("conn-t", p, at, 2_000);
    assert!(typing(now, project).await.unwrap());
    assert!(
        !typing(now.plus_ms(1_999), project).await.unwrap(),
        "within the window"
    );
    assert!(
        typing(now.plus_ms(2_000), project).await.unwrap(),
        "the next window"
    );
    assert!(
        !typing(now.plus_ms(10_000), Uuid::new_v4()).await.unwrap(),
        "another project"
    );
    assert!(!s.store.typing("gone", project, now, 2_000).await.unwrap());
}

/// `project_sample` reads at most `limit` live subscribers and says whether there may be more.
async fn project_sample_reads_at_most_its_limit(s: Subject) {
    let project = Uuid::new_v4();
    for i in 0..5 {
        s.store
            .insert(&live(&format!("conn-{i}"), Uuid::new_v4(), Some(project)))
            .await
            .unwrap();
    }
    let mut expired = live("conn-x", Uuid::new_v4(), Some(project));
    expired.expires_at = EpochSecs::now().minus_secs(1);
    s.store.insert(&expired).await.unwrap();
    let (all, more) = s.store.project_sample(project, 10).await.unwrap();
    assert_eq!((all.len(), more), (5, false));
    assert!(all.iter().all(|c| c.connection_id != "conn-x"));
    let (three, more) = s.store.project_sample(project, 3).await.unwrap();
    assert_eq!(three.len(), 3);
    assert!(more, "more than the limit may be there");
}

/// `take_token`: a bucket per name, a burst then the rate, and the wait until the next one.
async fn take_token_allows_a_burst_then_says_how_long_to_wait(s: Subject) {
    let rate = MessageRate {
        per_second: 1,
        burst: 2,
    };
    let now = EpochMs::now();
    assert_eq!(s.store.take_token("b", rate, now).await.unwrap(), None);
    assert_eq!(s.store.take_token("b", rate, now).await.unwrap(), None);
    let wait = s.store.take_token("b", rate, now).await.unwrap();
    assert_eq!(wait, Some(1_000), "the third waits a whole interval");
    assert_eq!(
        s.store.take_token("other", rate, now).await.unwrap(),
        None,
        "each name is its own bucket"
    );
    assert_eq!(
        s.store
            .take_token("b", rate, now.plus_ms(1_000))
            .await
            .unwrap(),
        None
    );
    // The records are not connections: no listing shows them.
    let everyone: Vec<_> = s.store.all_subscribers().try_collect().await.unwrap();
    assert!(everyone.is_empty(), "{everyone:?}");
}

/// The announced presence of a (project, user): none at first, then changed by exactly one
/// of several announcements of the same state.
async fn presence_is_announced_once_per_change(s: Subject) {
    let (project, user) = (Uuid::new_v4(), Uuid::new_v4());
    let now = EpochMs::now();
    assert_eq!(
        s.store.announced_presence(project, user).await.unwrap(),
        None
    );
    let store = s.store.clone();
    let flips = futures::future::join_all(
        (0..4).map(|_| store.announce_presence(project, user, true, now)),
    )
    .await;
    let changed = flips.iter().filter(|f| *f.as_ref().unwrap()).count();
    assert_eq!(changed, 1, "{flips:?}");
    assert_eq!(
        s.store.announced_presence(project, user).await.unwrap(),
        Some(true)
    );
    assert!(
        s.store
            .announce_presence(project, user, false, now)
            .await
            .unwrap()
    );
    assert!(
        !s.store
            .announce_presence(project, user, false, now)
            .await
            .unwrap()
    );
    assert_eq!(
        s.store
            .announced_presence(project, Uuid::new_v4())
            .await
            .unwrap(),
        None,
        "another user"
    );
    let everyone: Vec<_> = s.store.all_subscribers().try_collect().await.unwrap();
    assert!(everyone.is_empty(), "{everyone:?}");
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $case() { super::$case(super::Subject::memory().await).await })*
        }
        mod dynamodb {
            $(#[tokio::test] async fn $case() { super::$case(super::Subject::dynamo().await).await })*
        }
    };
}

suite!(
    insert_get_roundtrip,
    subscribe_moves_between_projects,
    unsubscribe_removes_from_index,
    subscribe_after_disconnect_creates_nothing,
    expired_items_are_never_returned,
    listing_spans_many_pages,
    remove_deletes,
    everyone_spans_pages_and_skips_expired,
    remove_many_deletes_them_all,
    reconnect_due_finds_exactly_one_minute,
    token_exp_round_trips_and_is_indexed,
    user_connections_lists_only_that_users_live_ones,
    admit_allows_a_burst_then_the_rate,
    refresh_moves_token_exp_for_the_same_user_only,
    unsubscribe_from_ends_only_that_project,
    remove_expired_removes_only_expired_tokens_once,
    typing_admits_one_per_window_for_the_subscribed_project,
    project_sample_reads_at_most_its_limit,
    take_token_allows_a_burst_then_says_how_long_to_wait,
    presence_is_announced_once_per_change,
);
