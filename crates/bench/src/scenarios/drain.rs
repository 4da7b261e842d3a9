//! The relay's drain rate (DESIGN "Outbox relay"): a backlog of 100,000 changes over 100
//! projects, committed at once, drained by the dev server's relay through its Invoke API into
//! the broadcaster, which posts through the Management API to one client per project — the
//! path AWS runs (relay → Lambda Invoke → broadcaster → PostToConnection). Beside it, the floor:
//! the same relay code draining the same backlog with an Invoke that costs nothing, so only
//! Postgres work (claim, delete) remains. `make bench SCENARIO=drain` (or all of
//! `make bench`); prints its figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use realtime::realtime_client::{Invoker, PublishError};
use realtime::relay::Relay;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;

/// The longest a drain may take before the run is reported unfinished.
const LIMIT: Duration = Duration::from_secs(300);

/// An Invoke that accepts everything at once: the relay's own cost is all that is left.
struct Accepting;

#[async_trait::async_trait]
impl Invoker for Accepting {
    async fn invoke(
        &self,
        _function: &str,
        _payload: Vec<u8>,
        _asynchronous: bool,
    ) -> Result<Option<Vec<u8>>, PublishError> {
        Ok(None)
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect")
}

/// Commit `rows` messages spread over `projects` in one transaction (one backlog at once),
/// the projects taking turns, so that each claim holds rows of every project (the relay
/// coalesces per project within a claim: this is the many-invocations case, not the best one).
async fn commit_backlog(db: &mut sqlx::PgConnection, projects: &[Uuid], rows: usize) {
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO messages (project_id, content) \
         SELECT p, 'bench' FROM generate_series(1, $2) n, unnest($1::uuid[]) p ORDER BY n",
    )
    .bind(projects)
    .bind((rows / projects.len()) as i32)
    .execute(&mut *db)
    .await
    .expect("the backlog");
    eprintln!(
        "  {rows} changes committed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn waiting(db: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM realtime_outbox")
        .fetch_one(&mut *db)
        .await
        .expect("count the outbox")
}

/// Wait until the outbox is empty; the seconds it took from `since`, or `None` past [`LIMIT`].
async fn drained(db: &mut sqlx::PgConnection, since: Instant) -> Option<f64> {
    while waiting(db).await > 0 {
        if since.elapsed() > LIMIT {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Some(since.elapsed().as_secs_f64())
}

fn figure(rows: usize, seconds: Option<f64>) -> Value {
    match seconds {
        Some(s) => json!({"rows": rows, "seconds": s, "rows_per_s": rows as f64 / s}),
        None => json!({"rows": rows, "seconds": null, "unfinished_after_s": LIMIT.as_secs()}),
    }
}

/// The relay over Postgres alone (an Invoke that costs nothing) draining `rows` changes over
/// `projects` projects: seconds, if it drained.
async fn floor(admin: &str, rows: usize, projects: usize, concurrency: usize) -> Option<f64> {
    eprintln!("drain floor: {rows} rows, the relay with an Invoke that costs nothing");
    let (url, ids) = database(admin, projects).await;
    let mut db = connect(&url).await;
    commit_backlog(&mut db, &ids, rows).await;
    let relay = Arc::new(
        Relay::new(
            &url,
            Arc::new(Accepting),
            "broadcaster",
            concurrency,
            realtime::relay::DEFAULT_POLL,
        )
        .expect("relay"),
    );
    let started = Instant::now();
    let running = tokio::spawn({
        let relay = relay.clone();
        async move { relay.run().await }
    });
    let floor = drained(&mut db, started).await;
    running.abort();
    eprintln!("  floor: {}", figure(rows, floor));
    floor
}

pub async fn run(opts: &BenchOptions) -> Value {
    let (rows, projects) = if opts.quick {
        (10_000, 10)
    } else {
        (100_000, 100)
    };
    let admin = require("DATABASE_URL");
    let concurrency = realtime::relay::DEFAULT_CONCURRENCY;

    // The floor: the relay over Postgres alone.
    let floor = floor(&admin, rows, projects, concurrency).await;

    // The path AWS runs, with one subscribed client per project.
    eprintln!(
        "drain: {rows} rows over {projects} projects, dev server relay → Invoke API → broadcaster → posts"
    );
    let (url, ids) = database(&admin, projects).await;
    let mut db = connect(&url).await;
    let mut env = services_env();
    env.push(("DATABASE_URL", url.clone()));
    let (_server, addr) = dev_server(&["--store", "memory", "--delivery", "http"], &env);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut sinks = Vec::new();
    for project in &ids {
        sinks.extend(clients(addr, Some(*project), 1, Some(tx.clone())).await);
    }
    drop(tx);
    // A first change proves the relay listens before the backlog is committed.
    let warm = Uuid::new_v4();
    sqlx::query("INSERT INTO messages (id, project_id, content) VALUES ($1, $2, 'warm')")
        .bind(warm)
        .bind(ids[0])
        .execute(&mut db)
        .await
        .unwrap();
    let warm_id = warm.to_string();
    receipts(&mut rx, 1, Duration::from_secs(30), |r| {
        r.data_id.as_deref() == Some(warm_id.as_str())
    })
    .await;
    // The clock starts when the backlog is committed: the relay can see none of it before.
    commit_backlog(&mut db, &ids, rows).await;
    let started = Instant::now();
    let aws = drained(&mut db, started).await;
    // Then the broadcasts accepted last land: frames until none arrives for a second (a
    // backlog's changes coalesce into "refetch the list" frames, so rows cannot be counted
    // at the clients; the last frame's arrival is when the clients were up to date).
    let mut frames = 0usize;
    let mut last = None;
    while let Ok(Some(receipt)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
        frames += 1;
        last = Some(receipt.at);
        if started.elapsed() > LIMIT {
            break;
        }
    }
    let landed = last.map(|at| at.duration_since(started).as_secs_f64());
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM realtime_outbox_dead")
        .fetch_one(&mut db)
        .await
        .expect("count the dead letters");
    eprintln!(
        "  outbox drained: {}; {frames} frames, the last {:.2} s after the commit; {dead} dead letters",
        figure(rows, aws),
        landed.unwrap_or(f64::NAN)
    );
    let result = json!({
        "rows": rows,
        "projects": projects,
        "relay_concurrency": concurrency,
        "claim_rows": realtime::relay::CLAIM_ROWS,
        "aws_shaped": figure(rows, aws),
        "frames_received": frames,
        "last_frame_after_s": landed,
        "floor_invoke_free": figure(rows, floor),
        "dead_letters": dead,
        "date": realtime::rfc3339(realtime::time::EpochMs::now()),
    });
    result
}
