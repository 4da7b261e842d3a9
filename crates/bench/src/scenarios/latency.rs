//! Scenario 2, Commit to client: INSERT → trigger → NOTIFY → relay → broadcaster → post → clients, once
//! per delivery mode of the dev server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::stats::*;

/// Commit → client, once per way the dev server's relay and broadcaster reach its APIs:
/// `https` (its Invoke and Management APIs over TLS, `dev --tls`: the path AWS runs), `http`
/// (the same over plain HTTP, a labelled comparison) and `direct` (the posts in-process).
pub async fn run(opts: &BenchOptions) -> Value {
    let mut runs = serde_json::Map::new();
    for (key, delivery, tls) in [
        ("https", "http", true),
        ("http", "http", false),
        ("direct", "direct", false),
    ] {
        runs.insert(key.into(), run_once(opts, delivery, tls).await);
    }
    Value::Object(runs)
}

async fn run_once(opts: &BenchOptions, delivery: &str, tls: bool) -> Value {
    let commits = if opts.quick { 100 } else { 1000 };
    let n = if opts.quick { 100 } else { 1000 };
    let admin = require("DATABASE_URL");
    let (url, projects) = database(&admin, 1).await;
    let project = projects[0];
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let mut env = services_env();
    env.push(("DATABASE_URL", url.clone()));
    let args = ["--store", "memory", "--delivery", delivery];
    // The clients connect over plain WebSocket either way: a `--tls` server answers both.
    let (_server, addr) = match tls {
        true => {
            let (server, endpoint) = dev_server_tls(&args, &env);
            (server, endpoint.addr)
        }
        false => dev_server(&args, &env),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    eprintln!("commit → client ({delivery} delivery): {n} clients, {commits} commits");
    let _clients = clients(addr, Some(project), n, Some(tx)).await;
    // The relay listens once the server is up; a first commit proves the path is live.
    let warm = Uuid::new_v4();
    sqlx::query("INSERT INTO messages (id, project_id, content) VALUES ($1, $2, 'warm')")
        .bind(warm)
        .bind(project)
        .execute(&mut db)
        .await
        .unwrap();
    let warm_id = warm.to_string();
    receipts(&mut rx, n, Duration::from_secs(30), |r| {
        r.data_id.as_deref() == Some(warm_id.as_str())
    })
    .await;
    let (mut first, mut last, mut lost) = (Vec::new(), Vec::new(), 0);
    let started = Instant::now();
    for _ in 0..commits {
        if started.elapsed() > Duration::from_secs(300) {
            break;
        }
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        sqlx::query("INSERT INTO messages (id, project_id, content) VALUES ($1, $2, 'bench')")
            .bind(id)
            .bind(project)
            .execute(&mut db)
            .await
            .unwrap();
        let key = id.to_string();
        let (count, f, l) = receipts(&mut rx, n, Duration::from_secs(10), |r| {
            r.data_id.as_deref() == Some(key.as_str())
        })
        .await;
        lost += n - count;
        if let (Some(f), Some(l)) = (f, l) {
            first.push(ms(f.duration_since(t0)));
            last.push(ms(l.duration_since(t0)));
        }
    }
    let summary = |v: &[f64]| json!({"p50_ms": median(v), "p99_ms": percentile(v, 99.0), "max_ms": percentile(v, 100.0)});
    eprintln!(
        "  last client: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; lost {lost}",
        median(&last),
        percentile(&last, 99.0),
        percentile(&last, 100.0)
    );
    json!({"clients": n, "commits": last.len(), "lost_deliveries": lost, "first_client": summary(&first), "last_client": summary(&last)})
}
