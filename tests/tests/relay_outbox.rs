//! The outbox relay against a real Postgres, with recording invokers in place of Lambda: a
//! relay that was not running loses nothing, two relays deliver each row once, an unreachable
//! Invoke loses nothing, a slow invocation holds back only its own rows, and a row the
//! broadcaster would refuse is dead-lettered without blocking the rows behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use e2e::pg::Projects;
use realtime::realtime_client::{Invoker, PublishError};
use realtime::relay::Relay;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

/// Records every record id it is invoked with (a coalesced event's `data.ids` counted one by
/// one), with when; optionally fails until `fail_until`, and stalls invocations for one project.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, Instant)>>,
    count: Mutex<Option<watch::Sender<usize>>>,
    fail_until: Mutex<Option<Instant>>,
    slow_project: Mutex<Option<(String, Duration)>>,
}

impl Recorder {
    fn counter(&self) -> watch::Receiver<usize> {
        let (tx, rx) = watch::channel(self.seen.lock().unwrap().len());
        *self.count.lock().unwrap() = Some(tx);
        rx
    }

    fn ids(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (id, _) in self.seen.lock().unwrap().iter() {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts
    }

    fn when(&self, id: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, t)| *t)
    }
}

#[async_trait]
impl Invoker for Recorder {
    async fn invoke(
        &self,
        _function: &str,
        payload: Vec<u8>,
        _asynchronous: bool,
    ) -> Result<Option<Vec<u8>>, PublishError> {
        let fail_until = *self.fail_until.lock().unwrap();
        if fail_until.is_some_and(|t| Instant::now() < t) {
            return Err(PublishError::Invoke("connection refused".into()));
        }
        let payload: Value = serde_json::from_slice(&payload).unwrap();
        let slow = self.slow_project.lock().unwrap().clone();
        if let Some((project, delay)) = slow
            && payload["project_id"] == project
        {
            tokio::time::sleep(delay).await;
        }
        let ids: Vec<String> = match payload["data"]["ids"].as_array() {
            Some(ids) => ids.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            None => vec![payload["id"].as_str().expect("a record id").to_owned()],
        };
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        seen.extend(ids.into_iter().map(|id| (id, now)));
        if let Some(tx) = &*self.count.lock().unwrap() {
            tx.send_replace(seen.len());
        }
        Ok(None)
    }
}

fn relay(url: &str, invoker: Arc<Recorder>) -> Arc<Relay> {
    Arc::new(Relay::new(url, invoker, "broadcaster", 8, Duration::from_millis(1000)).unwrap())
}

fn spawn(relay: &Arc<Relay>) -> tokio::task::JoinHandle<()> {
    let relay = relay.clone();
    tokio::spawn(async move { relay.run().await })
}

/// Until the relay has finished (deleted or dead-lettered, committed) `n` rows.
async fn until_done(relay: &Relay, n: u64) {
    let mut done = relay.done();
    tokio::time::timeout(Duration::from_secs(60), done.wait_for(|d| *d >= n))
        .await
        .expect("rows finished in time")
        .unwrap();
}

async fn until_recorded(counter: &mut watch::Receiver<usize>, n: usize) {
    tokio::time::timeout(Duration::from_secs(60), counter.wait_for(|c| *c >= n))
        .await
        .expect("every change delivered in time")
        .unwrap();
}

/// `n` messages in `project`, each in its own transaction; their ids.
async fn messages(db: &Projects, project: Uuid, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(db.message(project).await.to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_committed_while_no_relay_ran_are_each_delivered_once() {
    let db = Projects::create().await;
    let committed = messages(&db, db.p, 50).await;
    let recorder = Arc::new(Recorder::default());
    let mut counter = recorder.counter();
    let relay = relay(&db.url, recorder.clone());
    let task = spawn(&relay);
    until_recorded(&mut counter, 50).await;
    until_done(&relay, 50).await;
    let counts = recorder.ids();
    for id in &committed {
        assert_eq!(counts.get(id), Some(&1), "{id}");
    }
    assert_eq!(counts.len(), 50);
    assert_eq!(
        relay.outbox().waiting().await.unwrap(),
        0,
        "delivered rows are deleted"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_deliver_each_of_a_thousand_concurrent_changes_exactly_once() {
    let db = Projects::create().await;
    // 250 projects, so that the 4 writers' changes coalesce little and every id is listed.
    let projects: Vec<Uuid> = (0..250).map(|_| Uuid::new_v4()).collect();
    let values: Vec<String> = projects.iter().map(|p| format!("('{p}', 'p')")).collect();
    db.exec(&format!(
        "INSERT INTO projects (id, name) VALUES {}",
        values.join(",")
    ))
    .await;
    db.forget_outbox().await;

    let recorder = Arc::new(Recorder::default());
    let mut counter = recorder.counter();
    let (a, b) = (
        relay(&db.url, recorder.clone()),
        relay(&db.url, recorder.clone()),
    );
    let tasks = [spawn(&a), spawn(&b)];
    let writers = (0..4).map(|_| {
        let (url, projects) = (db.url.clone(), projects.clone());
        tokio::spawn(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut ids = Vec::new();
            for p in projects {
                let id = Uuid::new_v4();
                sqlx::query("INSERT INTO messages (id, project_id, content) VALUES ($1, $2, 'hi')")
                    .bind(id)
                    .bind(p)
                    .execute(&mut conn)
                    .await
                    .unwrap();
                ids.push(id.to_string());
            }
            ids
        })
    });
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    assert_eq!(committed.len(), 1000);
    until_recorded(&mut counter, 1000).await;
    let counts = recorder.ids();
    let wrong: Vec<_> = committed
        .iter()
        .filter(|id| counts.get(*id) != Some(&1))
        .collect();
    assert!(
        wrong.is_empty(),
        "not delivered exactly once: {}",
        wrong.len()
    );
    assert_eq!(counts.values().sum::<usize>(), 1000, "and nothing else");
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_invoke_for_ten_seconds_loses_nothing() {
    let db = Projects::create().await;
    let recorder = Arc::new(Recorder::default());
    *recorder.fail_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(10));
    let mut counter = recorder.counter();
    let relay = relay(&db.url, recorder.clone());
    let task = spawn(&relay);
    let committed = messages(&db, db.p, 50).await;
    until_recorded(&mut counter, 50).await;
    let counts = recorder.ids();
    assert!(
        committed.iter().all(|id| counts.get(id) == Some(&1)),
        "{counts:?}"
    );
    assert!(
        recorder
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|(_, t)| *t >= recorder.fail_until.lock().unwrap().unwrap()),
        "nothing was recorded while Invoke failed"
    );
    until_done(&relay, 50).await;
    assert_eq!(relay.outbox().waiting().await.unwrap(), 0);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_invocation_for_one_project_does_not_hold_back_another() {
    let db = Projects::create().await;
    let recorder = Arc::new(Recorder::default());
    *recorder.slow_project.lock().unwrap() = Some((db.p.to_string(), Duration::from_secs(3)));
    let mut counter = recorder.counter();
    let relay = relay(&db.url, recorder.clone());
    let task = spawn(&relay);
    let mut ready = relay.ready();
    tokio::time::timeout(Duration::from_secs(20), ready.wait_for(|r| *r))
        .await
        .expect("the relay listens")
        .unwrap();
    let slow = db.message(db.p).await.to_string();
    let mut delays = Vec::new();
    for n in 1..=5 {
        let fast = db.message(db.q).await.to_string();
        let committed = Instant::now();
        until_recorded(&mut counter, n).await;
        delays.push(recorder.when(&fast).unwrap() - committed);
    }
    let worst = delays.iter().max().unwrap();
    assert!(
        *worst <= Duration::from_millis(50),
        "project Q waited {worst:?} behind project P's slow invocation ({delays:?})"
    );
    assert!(
        recorder.when(&slow).is_none(),
        "P's invocation is still in flight"
    );
    until_recorded(&mut counter, 6).await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_is_dead_lettered_and_the_rows_after_it_are_delivered() {
    let db = Projects::create().await;
    let p = db.p;
    db.exec(&format!(
        "INSERT INTO realtime_outbox (payload) VALUES
           ('{{\"project_id\": \"{p}\", \"type\": \"message_created\", \"data\": {{}}, \"id\": \"before\"}}'),
           ('{{\"project_id\": \"not-a-uuid\", \"type\": \"message_created\"}}'),
           ('{{\"resource\": \"task\", \"id\": \"after\", \"action\": \"UPDATE\", \"project_id\": \"{p}\"}}')"
    ))
    .await;
    let recorder = Arc::new(Recorder::default());
    let _counter = recorder.counter();
    let relay = relay(&db.url, recorder.clone());
    let task = spawn(&relay);
    until_done(&relay, 3).await;
    let counts = recorder.ids();
    assert_eq!(
        (counts.get("before"), counts.get("after")),
        (Some(&1), Some(&1))
    );
    let dead = relay.outbox().dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].1.starts_with("project_id"),
        "the error names the field: {dead:?}"
    );
    assert_eq!(relay.outbox().waiting().await.unwrap(), 0);
    task.abort();
}
