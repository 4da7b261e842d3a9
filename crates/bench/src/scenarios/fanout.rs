//! Scenario 1, Fan-out: one event to N subscribed clients by the release `broadcaster` binary under a
//! local Runtime API, swept over concurrency, beside the algorithm of DevHive's Go
//! broadcaster (one GSI page, one post at a time).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::runtime_api::{Outcome, RuntimeApi};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::stats::*;

/// The broadcaster to run: its binary and any environment beyond the bench's own.
pub(crate) type BroadcasterBuild<'a> = (&'a std::path::Path, &'a [(&'a str, String)]);

/// One broadcaster process, one invocation; (invoke → last client ms, delivered, peak RSS kB,
/// the broadcaster's own response with its process CPU added).
pub(crate) async fn run_broadcaster(
    (binary, extra_env): BroadcasterBuild<'_>,
    table: &str,
    addr: SocketAddr,
    project: Uuid,
    n: usize,
    concurrency: usize,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> (f64, usize, u64, Value) {
    let event_id = Uuid::new_v4();
    let payload = json!({"project_id": project, "type": "bench_fanout", "data": {"n": n}, "event_id": event_id});
    let runtime = RuntimeApi::start(vec![payload]);
    let concurrency = concurrency.to_string();
    let mut env = vec![("BROADCAST_CONCURRENCY", concurrency)];
    env.extend(extra_env.iter().map(|(k, v)| (*k, v.clone())));
    let process = function(binary, 512, &runtime.addr, table, addr, &env);
    let t0 = runtime
        .handed_out(Duration::from_secs(30))
        .expect("the broadcaster asked for its event");
    let (count, _, last) = receipts(rx, n, Duration::from_secs(120), |r| {
        r.event_id == Some(event_id)
    })
    .await;
    let outcome = tokio::task::spawn_blocking(move || runtime.outcome(Duration::from_secs(60)))
        .await
        .unwrap();
    let peak = status_kb(process.0.id(), "VmHWM:");
    // The whole process's CPU (start-up included): what a Lambda's share of a vCPU must run.
    let cpu_s = cpu_seconds(process.0.id());
    drop(process);
    let mut response = match outcome {
        Outcome::Response(v) => v,
        Outcome::Error(e) => json!({"error": e}),
    };
    response["process_cpu_s"] = json!(cpu_s);
    let delivered = response["delivered"].as_u64().unwrap_or(0) as usize;
    assert!(count <= n);
    (
        last.map_or(f64::NAN, |l| ms(l.duration_since(t0))),
        delivered.min(count),
        peak,
        response,
    )
}

/// How long reading the project index takes on this run's DynamoDB Local, with the store code
/// the broadcaster runs (every page, nothing posted): the part of each fan-out that is the
/// local database's, not the posts'.
async fn index_read_ms(table: &str, project: Uuid) -> (f64, usize, usize) {
    use futures::StreamExt;
    use realtime::connection::store::Listings;
    let sdk = realtime::runtime::config::sdk_config();
    let store = realtime::aws::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let t0 = Instant::now();
    let mut pages = store.project_subscribers(project);
    let (mut count, mut pages_read) = (0, 0);
    while let Some(page) = pages.next().await {
        count += page.expect("read the project index").len();
        pages_read += 1;
    }
    (ms(t0.elapsed()), count, pages_read)
}

/// The algorithm of DevHive's Go broadcaster: one GSI page, one post at a time.
async fn go_baseline(
    table: &str,
    addr: SocketAddr,
    project: Uuid,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
    n: usize,
) -> (f64, usize) {
    use realtime::delivery::sender::ConnectionSender;
    let sdk = realtime::runtime::config::sdk_config();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sender =
        realtime::aws::management_api::ManagementApiSender::local(&format!("http://{addr}/dev"));
    let event_id = Uuid::new_v4();
    let payload =
        json!({"type": "bench_fanout", "project_id": project, "data": {}, "event_id": event_id})
            .to_string();
    let t0 = Instant::now();
    let page = dynamo
        .query()
        .table_name(table)
        .index_name(realtime::connection::store::PROJECT_INDEX)
        .key_condition_expression("project_id = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S(project.to_string()),
        )
        .send()
        .await
        .expect("query");
    let mut posted = 0;
    for item in page.items() {
        if let Some(Ok(id)) = item.get("connection_id").map(|v| v.as_s()) {
            let _ = sender.post(id, payload.as_bytes()).await;
            posted += 1;
        }
    }
    // Its reach is the one page: wait for those (all n only when the page held them all).
    let (count, _, last) = receipts(rx, posted.min(n), Duration::from_secs(300), |r| {
        r.event_id == Some(event_id)
    })
    .await;
    (last.map_or(f64::NAN, |l| ms(l.duration_since(t0))), count)
}

/// API Gateway's round trip for one post, as the dev server models it.
pub(crate) const POST_LATENCY_MS: u64 = 20;
/// API Gateway's default account throttle (requests a second, shared with every API in the
/// region) and its burst: the quota model of every fan-out figure.
pub(crate) const RATE_LIMIT: u32 = 10_000;
pub(crate) const BURST: u32 = 5_000;

/// The dev server of the fan-out runs over a fresh table: [`POST_LATENCY_MS`] per post,
/// [`RATE_LIMIT`] posts a second with bursts of [`BURST`]; `extra_env` adds to its environment.
pub(crate) fn fanout_server(extra_env: &[(&'static str, String)]) -> (Proc, SocketAddr, String) {
    let (env, table) = fanout_env(extra_env);
    let (server, addr) = dev_server(
        &fanout_args().iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    );
    (server, addr, table)
}

/// [`fanout_server`] with `--tls`: HTTPS (and plain HTTP) on one address.
pub(crate) fn fanout_server_tls(extra_env: &[(&'static str, String)]) -> (Proc, Endpoint, String) {
    let (env, table) = fanout_env(extra_env);
    let (server, endpoint) = dev_server_tls(
        &fanout_args().iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    );
    (server, endpoint, table)
}

/// The fan-out server's environment over a fresh table, and the table.
fn fanout_env(extra_env: &[(&'static str, String)]) -> (Vec<(&'static str, String)>, String) {
    let table = format!("bench-fanout-{}", Uuid::new_v4().simple());
    let mut env = services_env();
    env.push(("CONNECTIONS_TABLE", table.clone()));
    env.extend_from_slice(extra_env);
    (env, table)
}

/// The fan-out server's flags: the store, API Gateway's latency and quota.
fn fanout_args() -> Vec<String> {
    [
        "--store",
        "dynamodb",
        "--post-latency-ms",
        &POST_LATENCY_MS.to_string(),
        "--rate-limit",
        &RATE_LIMIT.to_string(),
        "--burst",
        &BURST.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// One size of the sweep: its clients, the table they are on and how often each cell runs.
struct Size<'a> {
    table: &'a str,
    endpoint: &'a Endpoint,
    project: Uuid,
    n: usize,
    repeats: usize,
}

pub async fn run(opts: &BenchOptions) -> Value {
    let sizes: &[usize] = if opts.quick {
        &[100, 1000]
    } else {
        &[100, 1000, 10_000]
    };
    let sweep: &[usize] = if opts.quick {
        &[50, 200]
    } else {
        &[25, 50, 100, 200, 400, 800]
    };
    let repeats = if opts.quick { 1 } else { 3 };
    let (_server, endpoint, table) = fanout_server_tls(&[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut rows = Vec::new();
    for &n in sizes {
        let project = Uuid::new_v4();
        eprintln!("fan-out: {n} clients");
        let _clients = clients(endpoint.addr, Some(project), n, Some(tx.clone())).await;
        let size = Size {
            table: &table,
            endpoint: &endpoint,
            project,
            n,
            repeats,
        };
        let index = index_read(&size).await;
        let mut by_concurrency = Vec::new();
        for &c in sweep {
            by_concurrency.push(cell(&size, c, Transport::Tls, &mut rx).await);
        }
        let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY;
        let plain = cell(&size, default, Transport::Http, &mut rx).await;
        // The Go broadcaster's algorithm at every size, 10,000 included (measured, not
        // extrapolated: its one page reaches only part of them). At 10,000 it takes minutes:
        // only with BENCH_LONG=1.
        let baseline = if n < 10_000 || opts.long {
            let (t, count) = go_baseline(&table, endpoint.addr, project, &mut rx, n).await;
            eprintln!("  Go broadcaster's algorithm: {t:.0} ms ({count}/{n} delivered)");
            json!({"measured_ms": t, "delivered": count})
        } else {
            eprintln!("  Go broadcaster's algorithm: skipped (BENCH_LONG=1)");
            json!({"skipped": "long: BENCH_LONG=1 runs it"})
        };
        rows.push(
            json!({"clients": n, "transport": "tls", "sweep": by_concurrency,
                         "plain_http": plain, "go_baseline": baseline, "index_read": index}),
        );
    }
    json!({"post_latency_ms": POST_LATENCY_MS, "rate_limit_per_s": RATE_LIMIT, "burst": BURST,
           "repeats": repeats, "transport": "tls", "results": rows})
}

/// The project index read alone, `size.repeats` times: its median and runs.
async fn index_read(size: &Size<'_>) -> Value {
    let mut reads = Vec::new();
    for _ in 0..size.repeats {
        reads.push(index_read_ms(size.table, size.project).await);
    }
    let read_ms: Vec<f64> = reads.iter().map(|r| r.0).collect();
    let (items, pages) = (reads[0].1, reads[0].2);
    eprintln!(
        "  the project index alone: {:.0} ms ({items} items, {pages} pages, DynamoDB Local)",
        median(&read_ms)
    );
    json!({"median_ms": median(&read_ms), "runs_ms": read_ms, "items": items, "pages": pages})
}

/// One cell of the sweep: `size.repeats` fresh broadcasters at concurrency `c`, posting over
/// `transport`.
async fn cell(
    size: &Size<'_>,
    c: usize,
    transport: Transport,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> Value {
    let (n, broadcaster) = (size.n, sibling("broadcaster"));
    let env = size.endpoint.function_env(transport);
    let (mut times, mut peaks, mut delivered) = (Vec::new(), Vec::new(), usize::MAX);
    let (mut throttled, mut failed, mut cpu_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..size.repeats {
        let (t, d, peak, summary) = run_broadcaster(
            (&broadcaster, &env),
            size.table,
            size.endpoint.addr,
            size.project,
            n,
            c,
            rx,
        )
        .await;
        times.push(t);
        peaks.push(peak as f64);
        delivered = delivered.min(d);
        throttled.push(summary["throttled"].as_u64().unwrap_or(0));
        cpu_ms.push(f(&summary["process_cpu_s"]) * 1000.0);
        failed.push(summary["failed"].clone());
    }
    let floor = fanout_floor_ms(
        n,
        c,
        POST_LATENCY_MS as f64,
        f64::from(RATE_LIMIT),
        BURST as usize,
    );
    eprintln!(
        "  concurrency {c:4} over {}: median {:8.1} ms (model floor {floor:.0} ms, {:.2}×), delivered {delivered}/{n}, peak RSS {:.1} MB",
        transport.key(),
        median(&times),
        median(&times) / floor,
        median(&peaks) / 1024.0
    );
    json!({"concurrency": c, "transport": transport.key(), "median_ms": median(&times), "runs_ms": times,
           "floor_ms": floor, "throttled_runs": throttled, "failed_runs": failed,
           "broadcaster_cpu_ms": median(&cpu_ms), "broadcaster_cpu_runs_ms": cpu_ms,
           "delivered_min": delivered, "peak_rss_mb": median(&peaks) / 1024.0})
}
