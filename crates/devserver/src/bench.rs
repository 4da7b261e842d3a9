//! `devhive-realtime bench`: the benchmarks of BENCHMARKS.md, driven by this one process.
//!
//! The dev server and the broadcaster run as their own release processes (so each one's memory
//! is its own) and every client is a real WebSocket from here, on 127.0.0.x addresses only.
//! Every loop is bounded in count and time. Results go to `target/bench/results.json` and
//! `BENCHMARKS.md`; timings never fail anything.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::SplitSink;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};
use uuid::Uuid;

use crate::runtime_api::{Outcome, RuntimeApi};

type Ws = WebSocketStream<tokio::net::TcpStream>;
type Sink = SplitSink<Ws, Message>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    All,
    Fanout,
    Latency,
    Capacity,
    Throughput,
    Artifacts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Which scenario to run.
    #[arg(long, env = "SCENARIO", value_enum, default_value = "all")]
    pub scenario: Scenario,
    /// Smaller sizes and shorter runs (a smoke run of the harness).
    #[arg(long, env = "BENCH_QUICK")]
    pub quick: bool,
    /// Seconds of the throughput scenario.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 60)]
    pub seconds: u64,
    /// Where results.json goes.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// The report to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub report: PathBuf,
    /// Re-render the report from the existing results.json without running anything.
    #[arg(long)]
    pub render_only: bool,
}

// ------------------------------------------------------------------ processes

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("current exe")
        .with_file_name(name)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `devhive-realtime dev` with `args`, started and its address read from the banner.
fn dev_server(args: &[&str], env: &[(&str, String)]) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.arg("dev").args(["--addr", "127.0.0.1:0"]).args(args);
    for var in [
        "DATABASE_URL",
        "MEMBERSHIP",
        "CONNECTIONS_TABLE",
        "JWT_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dev server");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("ws://")) {
                let addr = url
                    .trim_start_matches("ws://")
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dev server banner")
        .parse()
        .expect("address");
    (Proc(child), addr)
}

// ------------------------------------------------------------------ clients

#[derive(Debug, Clone)]
struct Receipt {
    event_id: Option<Uuid>,
    data_id: Option<String>,
    at: Instant,
}

#[derive(Deserialize)]
struct Frame {
    event_id: Option<Uuid>,
    data: Option<FrameData>,
}

#[derive(Deserialize)]
struct FrameData {
    id: Option<String>,
}

fn token(user: Uuid) -> String {
    let jwt = realtime::auth::JwtConfig {
        secret: realtime::auth::DEV_JWT_SECRET.as_bytes().to_vec(),
        issuer: None,
        audience: None,
    };
    realtime::auth::mint(&jwt, user, 3600)
}

/// Open one WebSocket from source address 127.0.0.`source`.
async fn open(addr: SocketAddr, path_and_query: &str, source: u8) -> Option<Ws> {
    let socket = TcpSocket::new_v4().ok()?;
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
            0,
        ))
        .ok()?;
    let stream = socket.connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{addr}{path_and_query}");
    client_async_with_config(url, stream, Some(config))
        .await
        .ok()
        .map(|(ws, _)| ws)
}

/// `n` clients of `project` (or of no project); their readers report every frame to `tx`.
/// Returns the write halves (dropping them closes the sockets).
async fn clients(
    addr: SocketAddr,
    project: Option<Uuid>,
    n: usize,
    tx: Option<mpsc::UnboundedSender<Receipt>>,
) -> Vec<Sink> {
    let started = Instant::now();
    let opened: Vec<Option<Ws>> = futures::stream::iter(0..n)
        .map(|i| {
            let query = match project {
                Some(p) => format!("/?token={}&project_id={p}", token(Uuid::new_v4())),
                None => format!("/?token={}", token(Uuid::new_v4())),
            };
            async move { open(addr, &query, 1 + (i % 8) as u8).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut sinks = Vec::with_capacity(n);
    for ws in opened.into_iter().flatten() {
        let (sink, mut stream) = ws.split();
        if let Some(tx) = tx.clone() {
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        let at = Instant::now();
                        if let Ok(frame) = serde_json::from_str::<Frame>(&text) {
                            let data_id = frame.data.and_then(|d| d.id);
                            if tx
                                .send(Receipt {
                                    event_id: frame.event_id,
                                    data_id,
                                    at,
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
        sinks.push(sink);
    }
    eprintln!(
        "  {} of {n} clients connected in {:.1} s",
        sinks.len(),
        started.elapsed().as_secs_f64()
    );
    sinks
}

/// Wait for `expected` receipts matching `matches`; (count, first, last).
async fn receipts(
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
    expected: usize,
    limit: Duration,
    matches: impl Fn(&Receipt) -> bool,
) -> (usize, Option<Instant>, Option<Instant>) {
    let deadline = tokio::time::Instant::now() + limit;
    let (mut count, mut first, mut last) = (0, None::<Instant>, None::<Instant>);
    while count < expected {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) if matches(&r) => {
                count += 1;
                first = Some(first.map_or(r.at, |f| f.min(r.at)));
                last = Some(last.map_or(r.at, |l| l.max(r.at)));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (count, first, last)
}

// ------------------------------------------------------------------ statistics

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[rank.min(s.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn services_env() -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("MEMBERSHIP", "none".to_owned()),
    ];
    if let Ok(e) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        env.push(("AWS_ENDPOINT_URL_DYNAMODB", e));
    }
    env
}

fn require(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `make bench`, which starts the services"))
}

// ------------------------------------------------------------------ 1. fan-out

/// One broadcaster process, one invocation; (invoke → last client ms, delivered, peak RSS kB).
async fn run_broadcaster(
    table: &str,
    addr: SocketAddr,
    project: Uuid,
    n: usize,
    concurrency: usize,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> (f64, usize, u64) {
    let event_id = Uuid::new_v4();
    let payload = json!({"project_id": project, "type": "bench_fanout", "data": {"n": n}, "event_id": event_id});
    let runtime = RuntimeApi::start(vec![payload]);
    let mut cmd = Command::new(sibling("broadcaster"));
    cmd.envs(services_env().iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "broadcaster")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("CONNECTIONS_TABLE", table)
        .env("WEBSOCKET_ENDPOINT", format!("http://{addr}/dev"))
        .env("BROADCAST_CONCURRENCY", concurrency.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let process = Proc(
        cmd.spawn()
            .expect("start the broadcaster (build it with make bench)"),
    );
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
    drop(process);
    let delivered = match outcome {
        Outcome::Response(v) => v["delivered"].as_u64().unwrap_or(0) as usize,
        Outcome::Error(_) => 0,
    };
    assert!(count <= n);
    (
        last.map_or(f64::NAN, |l| ms(l.duration_since(t0))),
        delivered.min(count),
        peak,
    )
}

/// The seed's algorithm: one GSI page, one post at a time.
async fn seed_baseline(
    table: &str,
    addr: SocketAddr,
    project: Uuid,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
    n: usize,
) -> (f64, usize) {
    use realtime::sender::ConnectionSender;
    let sdk = realtime::config::sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sender = realtime::sender::ManagementApiSender::local(&format!("http://{addr}/dev"));
    let event_id = Uuid::new_v4();
    let payload =
        json!({"type": "bench_fanout", "project_id": project, "data": {}, "event_id": event_id})
            .to_string();
    let t0 = Instant::now();
    let page = dynamo
        .query()
        .table_name(table)
        .index_name(realtime::store::PROJECT_INDEX)
        .key_condition_expression("project_id = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S(project.to_string()),
        )
        .send()
        .await
        .expect("query");
    for item in page.items() {
        if let Some(Ok(id)) = item.get("connection_id").map(|v| v.as_s()) {
            let _ = sender.post(id, payload.as_bytes()).await;
        }
    }
    let (count, _, last) = receipts(rx, n, Duration::from_secs(300), |r| {
        r.event_id == Some(event_id)
    })
    .await;
    (last.map_or(f64::NAN, |l| ms(l.duration_since(t0))), count)
}

async fn fanout(opts: &BenchOptions) -> Value {
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
    let table = format!("bench-fanout-{}", Uuid::new_v4().simple());
    let mut env = services_env();
    env.push(("CONNECTIONS_TABLE", table.clone()));
    let (_server, addr) = dev_server(
        &[
            "--store",
            "dynamodb",
            "--post-latency-ms",
            "20",
            "--rate-limit",
            "10000",
        ],
        &env,
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut rows = Vec::new();
    for &n in sizes {
        let project = Uuid::new_v4();
        eprintln!("fan-out: {n} clients");
        let _clients = clients(addr, Some(project), n, Some(tx.clone())).await;
        let mut by_concurrency = Vec::new();
        for &c in sweep {
            let mut times = Vec::new();
            let mut peaks = Vec::new();
            let mut delivered = usize::MAX;
            for _ in 0..repeats {
                let (t, d, peak) = run_broadcaster(&table, addr, project, n, c, &mut rx).await;
                times.push(t);
                peaks.push(peak as f64);
                delivered = delivered.min(d);
            }
            eprintln!(
                "  concurrency {c:4}: median {:8.1} ms, delivered {delivered}/{n}, peak RSS {:.1} MB",
                median(&times),
                median(&peaks) / 1024.0
            );
            by_concurrency.push(json!({"concurrency": c, "median_ms": median(&times), "runs_ms": times,
                                       "delivered_min": delivered, "peak_rss_mb": median(&peaks) / 1024.0}));
        }
        let baseline = if n <= 1000 {
            let (t, count) = seed_baseline(&table, addr, project, &mut rx, n).await;
            eprintln!("  seed baseline: {t:.0} ms ({count}/{n} delivered)");
            json!({"measured_ms": t, "delivered": count})
        } else {
            json!(null)
        };
        rows.push(json!({"clients": n, "sweep": by_concurrency, "seed_baseline": baseline}));
    }
    json!({"post_latency_ms": 20, "rate_limit_per_s": 10000, "repeats": repeats, "results": rows})
}

// ------------------------------------------------------------------ 2. commit → client

/// Commit → client, once per delivery mode of the dev server's broadcaster: `http` (through
/// the local Management API, as on AWS) and `direct` (the same post in-process).
async fn latency(opts: &BenchOptions) -> Value {
    let mut runs = serde_json::Map::new();
    for delivery in ["http", "direct"] {
        runs.insert(delivery.into(), latency_run(opts, delivery).await);
    }
    Value::Object(runs)
}

async fn latency_run(opts: &BenchOptions, delivery: &str) -> Value {
    let commits = if opts.quick { 100 } else { 1000 };
    let n = if opts.quick { 100 } else { 1000 };
    let admin = require("DATABASE_URL");
    let url =
        realtime::postgres::create_database(&admin, &format!("bench_{}", Uuid::new_v4().simple()))
            .await
            .expect("database");
    realtime::postgres::migrate(&url).await.expect("migrate");
    let project = Uuid::new_v4();
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("INSERT INTO projects (id, name) VALUES ($1, 'bench')")
        .bind(project)
        .execute(&mut db)
        .await
        .unwrap();
    let mut env = services_env();
    env.push(("DATABASE_URL", url.clone()));
    let (_server, addr) = dev_server(&["--store", "memory", "--delivery", delivery], &env);
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

// ------------------------------------------------------------------ 3. capacity

async fn capacity(opts: &BenchOptions) -> Value {
    // Each side holds one descriptor per connection, so the open-file limit bounds the sizes.
    let limit = open_file_limit();
    let most = limit.saturating_sub(500) as usize;
    let steps: Vec<usize> = if opts.quick {
        vec![1000, 5000]
    } else {
        [10_000, 50_000].into_iter().map(|n| n.min(most)).collect()
    };
    let (server, addr) = dev_server(&["--store", "memory"], &services_env());
    let pid = server.0.id();
    // One connection first, so one-time allocations are in the baseline.
    let warm = clients(addr, None, 1, None).await;
    let base = status_kb(pid, "VmRSS:");
    let mut held = Vec::new();
    let mut rows = Vec::new();
    for &n in &steps {
        let more = n.saturating_sub(held.len());
        eprintln!("capacity: opening {more} more idle connections (total {n})");
        held.extend(clients(addr, None, more, None).await);
        let rss = status_kb(pid, "VmRSS:");
        let per = (rss.saturating_sub(base) as f64 * 1024.0) / held.len() as f64;
        eprintln!(
            "  {} connections: server RSS {:.1} MB, {:.0} bytes per connection",
            held.len(),
            rss as f64 / 1024.0,
            per
        );
        rows.push(json!({"connections": held.len(), "rss_mb": rss as f64 / 1024.0, "bytes_per_connection": per}));
    }
    drop(held);
    drop(warm);
    json!({"baseline_rss_mb": base as f64 / 1024.0, "steps": rows, "open_file_limit": limit})
}

/// The soft limit on open files of this process (what `ulimit -n` could raise it to).
fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

// ------------------------------------------------------------------ 4. throughput

async fn throughput(opts: &BenchOptions) -> Value {
    let (projects, per_project, rate) = if opts.quick {
        (20, 50, 50)
    } else {
        (100, 100, 100)
    };
    let seconds = if opts.quick {
        opts.seconds.min(10)
    } else {
        opts.seconds
    };
    let table = format!("bench-throughput-{}", Uuid::new_v4().simple());
    let mut env = services_env();
    env.push(("CONNECTIONS_TABLE", table));
    let (_server, addr) = dev_server(&["--store", "dynamodb", "--post-latency-ms", "20"], &env);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ids: Vec<Uuid> = (0..projects).map(|_| Uuid::new_v4()).collect();
    eprintln!(
        "throughput: {} clients in {projects} projects, {rate} events/s for {seconds} s",
        projects * per_project
    );
    let mut held = Vec::new();
    for p in &ids {
        held.extend(clients(addr, Some(*p), per_project, Some(tx.clone())).await);
    }
    let lambda = {
        let conf = realtime::aws_sdk_lambda::Config::builder()
            .behavior_version(realtime::aws_sdk_lambda::config::BehaviorVersion::latest())
            .endpoint_url(format!("http://{addr}"))
            .region(realtime::aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(realtime::aws_sdk_lambda::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            .http_client(realtime::http_client::client())
            .build();
        realtime::aws_sdk_lambda::Client::from_conf(conf)
    };
    let sent: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let collector = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut received = 0usize;
            while let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                if let Some(at) = r
                    .event_id
                    .and_then(|e| sent.lock().unwrap().get(&e).copied())
                {
                    received += 1;
                    latencies.push(ms(r.at.duration_since(at)));
                }
            }
            (received, latencies)
        })
    };
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(interval);
    let total = rate * seconds as usize;
    let began = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let event_id = Uuid::new_v4();
        let payload = json!({"project_id": ids[i % projects], "type": "bench_throughput", "data": {"i": i}, "event_id": event_id});
        sent.lock().unwrap().insert(event_id, Instant::now());
        let call = lambda
            .invoke()
            .function_name("broadcaster")
            .invocation_type(realtime::aws_sdk_lambda::types::InvocationType::Event)
            .payload(realtime::aws_sdk_lambda::primitives::Blob::new(
                payload.to_string(),
            ));
        tokio::spawn(async move {
            let _ = call.send().await;
        });
    }
    let sending_s = began.elapsed().as_secs_f64();
    drop(tx);
    let (received, latencies) = collector.await.unwrap();
    drop(held);
    let expected = total * per_project;
    eprintln!(
        "  delivered {received}/{expected} ({:.3} %), p50 {:.1} ms, p99 {:.1} ms",
        100.0 * received as f64 / expected as f64,
        median(&latencies),
        percentile(&latencies, 99.0)
    );
    json!({"clients": projects * per_project, "projects": projects, "events_per_s": rate, "seconds": seconds,
           "sending_s": sending_s, "expected": expected, "delivered": received,
           "delivered_ratio": received as f64 / expected as f64, "p50_ms": median(&latencies),
           "p99_ms": percentile(&latencies, 99.0), "max_ms": percentile(&latencies, 100.0), "post_latency_ms": 20})
}

// ------------------------------------------------------------------ 5. artifacts

async fn artifacts(opts: &BenchOptions) -> Value {
    let functions = [
        "connect",
        "disconnect",
        "subscribe",
        "status",
        "broadcaster",
    ];
    let runs = if opts.quick { 5 } else { 20 };
    let mut rows = Vec::new();
    for f in functions {
        let arm64 = std::fs::metadata(format!("target/lambda/{f}/bootstrap"))
            .ok()
            .map(|m| m.len());
        let binary = sibling(f);
        let host = std::fs::metadata(&binary).ok().map(|m| m.len());
        let mut starts = Vec::new();
        for _ in 0..runs {
            let runtime = RuntimeApi::start(Vec::new());
            let mut cmd = Command::new(&binary);
            cmd.envs(services_env().iter().map(|(k, v)| (*k, v.as_str())))
                .env("AWS_LAMBDA_RUNTIME_API", &runtime.addr)
                .env("AWS_LAMBDA_FUNCTION_NAME", f)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("CONNECTIONS_TABLE", "bench")
                .env("JWT_SECRET", realtime::auth::DEV_JWT_SECRET)
                .env("WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/dev")
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let t0 = Instant::now();
            let Ok(child) = cmd.spawn() else { break };
            let _process = Proc(child);
            if let Some(t1) = runtime.first_request(Duration::from_secs(10)) {
                starts.push(ms(t1.duration_since(t0)));
            }
        }
        eprintln!(
            "artifacts: {f}: arm64 {:?} bytes, start → first runtime request median {:.1} ms",
            arm64,
            median(&starts)
        );
        rows.push(json!({"function": f, "arm64_bootstrap_bytes": arm64, "host_binary_bytes": host,
                         "start_to_first_request_ms": {"median": median(&starts), "p90": percentile(&starts, 90.0), "runs": starts.len()}}));
    }
    json!({"functions": rows})
}

// ------------------------------------------------------------------ driver

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "cpu": cpu,
           "memory_gb": mem_kb as f64 / 1024.0 / 1024.0, "os": std::env::consts::OS, "arch": std::env::consts::ARCH})
}

pub async fn run(opts: BenchOptions) {
    if opts.render_only {
        let path = opts.out.join("results.json");
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("results.json"))
                .expect("JSON");
        return write_report(&results, &opts);
    }
    let want = |s: Scenario| opts.scenario == Scenario::All || opts.scenario == s;
    // A single scenario updates its part of the previous results and keeps the others.
    let path = opts.out.join("results.json");
    let mut results: serde_json::Map<String, Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    results.insert(
        "date".into(),
        json!(realtime::rfc3339(realtime::epoch_millis())),
    );
    results.insert("machine".into(), machine());
    results.insert("quick".into(), json!(opts.quick));
    let stamp = |mut v: Value| {
        v["date"] = json!(realtime::rfc3339(realtime::epoch_millis()));
        v
    };
    if want(Scenario::Artifacts) {
        results.insert("artifacts".into(), stamp(artifacts(&opts).await));
    }
    if want(Scenario::Capacity) {
        results.insert("capacity".into(), stamp(capacity(&opts).await));
    }
    if want(Scenario::Latency) {
        results.insert("latency".into(), stamp(latency(&opts).await));
    }
    if want(Scenario::Fanout) {
        results.insert("fanout".into(), stamp(fanout(&opts).await));
    }
    if want(Scenario::Throughput) {
        results.insert("throughput".into(), stamp(throughput(&opts).await));
    }
    let results = Value::Object(results);
    std::fs::create_dir_all(&opts.out).expect("output directory");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap())
        .expect("write results.json");
    eprintln!("results: {}", path.display());
    write_report(&results, &opts);
}

fn write_report(results: &Value, opts: &BenchOptions) {
    let previous = std::fs::read_to_string(&opts.report).unwrap_or_default();
    let notes = previous
        .find("\n## Notes")
        .map(|i| previous[i..].to_owned())
        .unwrap_or_default();
    std::fs::write(&opts.report, render(results, opts) + &notes).expect("write the report");
    eprintln!("report: {}", opts.report.display());
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// BENCHMARKS.md from the results (the `## Notes` section of the old file is kept after it).
fn render(r: &Value, opts: &BenchOptions) -> String {
    use std::fmt::Write;
    let m = &r["machine"];
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `make bench{}`, last run {} ({} CPUs: {}; {:.0} GB RAM; {}/{}). Release builds; \
         every client is a real WebSocket on 127.0.0.x; DynamoDB Local and Postgres 15 on the same \
         machine. Medians unless stated. Raw numbers: `target/bench/results.json`.{}\n",
        match opts.scenario {
            Scenario::All => String::new(),
            s => format!(" SCENARIO={s:?}").to_lowercase(),
        },
        r["date"].as_str().unwrap_or(""),
        m["cpus"],
        m["cpu"].as_str().unwrap_or(""),
        f(&m["memory_gb"]),
        m["os"].as_str().unwrap_or(""),
        m["arch"].as_str().unwrap_or(""),
        if opts.quick {
            " **Quick mode: reduced sizes, not the targets' conditions.**"
        } else {
            ""
        }
    );
    if let Some(fan) = r.get("fanout") {
        let _ = writeln!(
            out,
            "## 1. Fan-out\n\nRun {}.\n",
            fan["date"].as_str().unwrap_or("with the others")
        );
        let _ = writeln!(
            out,
            "One project, N subscribed clients; the dev server's Management API adds {} ms per call and \
             allows {} requests/s. Time from the broadcaster receiving the invocation to the last \
             client receiving the event; the broadcaster is the release `broadcaster` binary under a \
             local Runtime API, its peak RSS read from `/proc` (VmHWM). {} runs per cell.\n",
            fan["post_latency_ms"], fan["rate_limit_per_s"], fan["repeats"]
        );
        for row in fan["results"].as_array().into_iter().flatten() {
            let n = row["clients"].as_u64().unwrap_or(0);
            let _ = writeln!(
                out,
                "N = {n}:\n\n| concurrency | median ms | runs ms | delivered (min) | peak RSS MB |\n|---|---|---|---|---|"
            );
            for c in row["sweep"].as_array().into_iter().flatten() {
                let runs: Vec<String> = c["runs_ms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| format!("{:.0}", f(v)))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {} | {} | {:.1} |",
                    c["concurrency"],
                    f(&c["median_ms"]),
                    runs.join(", "),
                    c["delivered_min"],
                    f(&c["peak_rss_mb"])
                );
            }
            if let Some(t) = row["seed_baseline"]["measured_ms"].as_f64() {
                let best = row["sweep"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| f(&c["median_ms"]))
                    .fold(f64::INFINITY, f64::min);
                let _ = writeln!(
                    out,
                    "\nSeed algorithm (one GSI page, one post at a time): {t:.0} ms, {}/{n} delivered. Best fan-out is **{:.0}×** faster.",
                    row["seed_baseline"]["delivered"],
                    t / best
                );
            }
            let _ = writeln!(out);
        }
        if let Some(big) = fan["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["clients"] == 10_000))
        {
            let default = big["sweep"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["concurrency"] == realtime::fanout::DEFAULT_CONCURRENCY as u64);
            if let Some(d) = default {
                let t = f(&d["median_ms"]);
                let peak = f(&d["peak_rss_mb"]);
                let per_post_seed = fan["results"]
                    .as_array()
                    .and_then(|a| a.iter().find(|r| r["clients"] == 1000))
                    .map(|r| f(&r["seed_baseline"]["measured_ms"]) / 1000.0);
                let _ = writeln!(
                    out,
                    "Targets at N = 10,000 with the default concurrency ({}):\n",
                    realtime::fanout::DEFAULT_CONCURRENCY
                );
                let _ = writeln!(out, "| target | measured | |\n|---|---|---|");
                let _ = writeln!(out, "| ≤ 1,500 ms | {t:.0} ms | {} |", verdict(t <= 1500.0));
                if let Some(per) = per_post_seed {
                    let seed = per * 10_000.0;
                    let _ = writeln!(
                        out,
                        "| ≥ 100× the seed algorithm | {:.0}× (seed extrapolated from N = 1,000: {:.0} ms per post → {:.0} s) | {} |",
                        seed / t,
                        per,
                        seed / 1000.0,
                        verdict(seed / t >= 100.0)
                    );
                }
                let _ = writeln!(
                    out,
                    "| broadcaster peak RSS ≤ 64 MB | {peak:.1} MB | {} |\n",
                    verdict(peak <= 64.0)
                );
            }
        }
    }
    if let Some(l) = r.get("latency") {
        let _ = writeln!(
            out,
            "## 2. Commit to client\n\nRun {}.\n",
            l["date"].as_str().unwrap_or("with the others")
        );
        let any = l
            .get("http")
            .or_else(|| l.get("direct"))
            .unwrap_or(&Value::Null);
        let _ = writeln!(
            out,
            "INSERT into `messages` (autocommit) → trigger → NOTIFY → relay (in the dev server) → \
             broadcaster → post → {} subscribed clients; {} commits one after another for each delivery. \
             Memory store; no added Management API latency. `http`: the broadcaster posts through \
             the dev server's Management API with the AWS SDK, as on AWS; `direct` \
             (`--delivery direct`): the same post called in-process.\n",
            any["clients"], any["commits"]
        );
        let _ = writeln!(
            out,
            "| delivery | client | p50 ms | p99 ms | max ms | lost |\n|---|---|---|---|---|---|"
        );
        for delivery in ["http", "direct"] {
            let Some(run) = l.get(delivery) else { continue };
            for (which, key) in [("first", "first_client"), ("last", "last_client")] {
                let d = &run[key];
                let _ = writeln!(
                    out,
                    "| {delivery} | {which} | {:.2} | {:.2} | {:.2} | {} |",
                    f(&d["p50_ms"]),
                    f(&d["p99_ms"]),
                    f(&d["max_ms"]),
                    run["lost_deliveries"]
                );
            }
        }
        out.push('\n');
        for delivery in ["http", "direct"] {
            if let Some(run) = l.get(delivery) {
                let _ = writeln!(
                    out,
                    "Target p99 ≤ 15 ms (last client), {delivery} delivery: {}.\n",
                    verdict(f(&run["last_client"]["p99_ms"]) <= 15.0)
                );
            }
        }
    }
    if let Some(c) = r.get("capacity") {
        let _ = writeln!(
            out,
            "## 3. Capacity\n\nRun {}.\n",
            c["date"].as_str().unwrap_or("with the others")
        );
        let _ = writeln!(
            out,
            "Idle connections held by the release dev server (memory store), clients from 8 source \
             addresses. RSS before: {:.1} MB. Open files per process here: at most {} (the hard \
             limit; raising it is refused), which caps the sizes below.\n",
            f(&c["baseline_rss_mb"]),
            c["open_file_limit"]
        );
        let _ = writeln!(
            out,
            "| connections | server RSS MB | bytes per connection | target ≤ 5 KB |\n|---|---|---|---|"
        );
        for s in c["steps"].as_array().into_iter().flatten() {
            let per = f(&s["bytes_per_connection"]);
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.0} | {} |",
                s["connections"],
                f(&s["rss_mb"]),
                per,
                verdict(per <= 5120.0)
            );
        }
        let _ = writeln!(out);
    }
    if let Some(t) = r.get("throughput") {
        let ratio = f(&t["delivered_ratio"]);
        let _ = writeln!(
            out,
            "## 4. Throughput\n\nRun {}.\n",
            t["date"].as_str().unwrap_or("with the others")
        );
        let _ = writeln!(
            out,
            "{} clients in {} projects; {} events/s for {} s through the dev server's Lambda Invoke API \
             (`Event`), DynamoDB Local store, {} ms added per Management API call. Sending took {:.1} s.\n",
            t["clients"],
            t["projects"],
            t["events_per_s"],
            t["seconds"],
            t["post_latency_ms"],
            f(&t["sending_s"])
        );
        let _ = writeln!(
            out,
            "| delivered / expected | p50 ms | p99 ms | max ms |\n|---|---|---|---|"
        );
        let _ = writeln!(
            out,
            "| {} / {} = {:.4} % ({}) | {:.1} | {:.1} | {:.1} |\n",
            t["delivered"],
            t["expected"],
            ratio * 100.0,
            verdict(ratio >= 1.0),
            f(&t["p50_ms"]),
            f(&t["p99_ms"]),
            f(&t["max_ms"])
        );
    }
    if let Some(a) = r.get("artifacts") {
        let _ = writeln!(
            out,
            "## 5. Artifacts\n\nRun {}.\n",
            a["date"].as_str().unwrap_or("with the others")
        );
        let _ = writeln!(
            out,
            "`bootstrap` sizes from `make build` (cargo-lambda, release, arm64, `opt-level = \"s\"`, fat LTO, stripped; MB = 10^6 bytes). Start-up: process start to its first request to a local Runtime API, on this x86_64 machine (release build of the same code; no arm64 CPU here).\n"
        );
        let _ = writeln!(
            out,
            "| function | arm64 bootstrap | ≤ 6 MB | start → first request, median (p90) | ≤ 20 ms |\n|---|---|---|---|---|"
        );
        for row in a["functions"].as_array().into_iter().flatten() {
            let size = row["arm64_bootstrap_bytes"].as_u64();
            let start = &row["start_to_first_request_ms"];
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} ms ({:.1}) | {} |",
                row["function"].as_str().unwrap_or(""),
                size.map_or("not built (run make build)".to_owned(), |b| format!(
                    "{:.2} MB ({b} bytes)",
                    b as f64 / 1e6
                )),
                size.map_or("–", |b| verdict(b <= 6_000_000)),
                f(&start["median"]),
                f(&start["p90"]),
                verdict(f(&start["median"]) <= 20.0)
            );
        }
        let _ = writeln!(out);
    }
    out
}
