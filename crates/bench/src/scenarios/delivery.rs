//! Scenario: the cost of one delivery. The release `broadcaster` under a local Runtime API,
//! a fresh process handed two invocations of the same fan-out (N clients, concurrency 400),
//! posting to the dev server's Management API over TLS (as on AWS) or plain HTTP (a labelled
//! comparison): its CPU per post **cold** (process start, first invocation, every handshake
//! included) and **warm** (the next invocation, same process), the connections it opened in
//! each (over TLS: full TLS handshakes), and the dev server's own CPU per post beside them, so
//! that the emulator is never taken for the function. Beside them, what a new connection costs
//! the broadcaster's HTTP client alone: the floor of a cold invocation.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::runtime_api::{Outcome, RuntimeApi};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::scenarios::fanout::{POST_LATENCY_MS, fanout_server_tls};
use crate::stats::*;

/// Clients of the measured fan-out.
pub(crate) const CLIENTS: usize = 2_000;
/// Posts in flight: the deployed default.
pub(crate) const CONCURRENCY: usize = 400;
/// Requests of each kind measured for the floors.
const FLOOR_SAMPLES: usize = 200;

/// What one broadcaster process is measured by at a point in time.
struct Reading {
    cpu_s: f64,
    server_cpu_s: f64,
    connections: BTreeSet<u64>,
}

fn read(process: &Proc, server: &Proc, port: u16) -> Reading {
    Reading {
        cpu_s: cpu_seconds_fine(process.0.id()),
        server_cpu_s: cpu_seconds_fine(server.0.id()),
        connections: connections_to(process.0.id(), port),
    }
}

/// Where the measured fan-out goes.
struct Target<'a> {
    server: &'a Proc,
    endpoint: &'a Endpoint,
    table: &'a str,
    project: Uuid,
    n: usize,
}

pub async fn run(opts: &BenchOptions) -> Value {
    let n = if opts.quick { 200 } else { CLIENTS };
    let repeats = if opts.quick { 1 } else { 3 };
    let (server, endpoint, table) = fanout_server_tls(&[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let project = Uuid::new_v4();
    eprintln!("delivery cost: {n} clients, concurrency {CONCURRENCY}");
    let connected = clients(endpoint.addr, Some(project), n, Some(tx)).await;
    // Those that connected are the audience (a few may fail to on a busy machine).
    let target = Target {
        server: &server,
        endpoint: &endpoint,
        table: &table,
        project,
        n: connected.len(),
    };
    let transports = [Transport::Tls, Transport::Http];
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); transports.len()];
    // Alternated, so that neither transport always runs on a cooler machine.
    for _ in 0..repeats {
        for (i, &transport) in transports.iter().enumerate() {
            let run = measure(&target, transport, &mut rx).await;
            eprintln!("  {}: {run}", transport.key());
            runs[i].push(run);
        }
    }
    let mut by_transport = serde_json::Map::new();
    for (transport, runs) in transports.iter().zip(runs) {
        let mut summary = summarise(runs);
        summary["client_floor"] = client_floor(&endpoint, *transport);
        by_transport.insert(transport.key().into(), summary);
    }
    json!({"clients": target.n, "concurrency": CONCURRENCY, "repeats": repeats,
           "post_latency_ms": POST_LATENCY_MS, "transports": by_transport})
}

/// One fresh broadcaster process, two invocations of one fan-out each.
async fn measure(
    to: &Target<'_>,
    transport: Transport,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> Value {
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    let events = ids
        .iter()
        .map(|id| json!({"project_id": to.project, "type": "bench_delivery", "data": {"n": to.n}, "event_id": id}))
        .collect();
    let runtime = RuntimeApi::start(events);
    let mut env = vec![("BROADCAST_CONCURRENCY", CONCURRENCY.to_string())];
    env.extend(to.endpoint.function_env(transport));
    let port = to.endpoint.addr.port();
    let start = read(to.server, to.server, port);
    let process = function(
        &sibling("broadcaster"),
        512,
        &runtime.addr,
        to.table,
        to.endpoint.addr,
        &env,
    );
    block(|| runtime.handed_out(Duration::from_secs(30))).expect("the first invocation");
    let cold = invocation(&runtime, ids[0], to.n, rx).await;
    // The second event is handed out as the first invocation ends: read the process then (it
    // has just received it and is waiting on DynamoDB's answer before its first post).
    block(|| runtime.handed_out(Duration::from_secs(30))).expect("the second invocation");
    let after_cold = read(&process, to.server, port);
    let warm = invocation(&runtime, ids[1], to.n, rx).await;
    let after_warm = read(&process, to.server, port);
    drop(process);
    let posts = |v: &Value| f(&v["delivered"]).max(1.0);
    let per_post_us = |s: f64, v: &Value| s * 1e6 / posts(v);
    json!({
        "cold": cold, "warm": warm,
        "cold_cpu_us_per_post": per_post_us(after_cold.cpu_s, &cold),
        "warm_cpu_us_per_post": per_post_us(after_warm.cpu_s - after_cold.cpu_s, &warm),
        "cold_connections": after_cold.connections.len(),
        "warm_new_connections": after_warm.connections.difference(&after_cold.connections).count(),
        "server_cold_cpu_us_per_post": per_post_us(after_cold.server_cpu_s - start.server_cpu_s, &cold),
        "server_warm_cpu_us_per_post": per_post_us(after_warm.server_cpu_s - after_cold.server_cpu_s, &warm),
    })
}

/// Wait for invocation `id` to reach `n` clients and end; the broadcaster's answer with the
/// clients' count.
async fn invocation(
    runtime: &RuntimeApi,
    id: Uuid,
    n: usize,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> Value {
    let (count, _, _) = receipts(rx, n, Duration::from_secs(120), |r| r.event_id == Some(id)).await;
    let mut answer = match block(|| runtime.outcome(Duration::from_secs(60))) {
        Outcome::Response(v) => v,
        Outcome::Error(e) => json!({"error": e}),
    };
    answer["received"] = json!(count);
    answer
}

/// The broadcaster's HTTP client alone (`realtime_client::http::RawClient`, its rustls and
/// crypto provider, the dev server's certificate), on one thread running its own runtime,
/// whose CPU time is read from `/proc/thread-self/schedstat`: `FLOOR_SAMPLES` requests on one
/// kept-alive connection, then as many each on a new connection (`Connection: close`) with
/// resumption off (a full handshake over TLS, as each of a cold invocation's simultaneous
/// connects), then as many with it on (TLS 1.3 resumption from the tickets of the connection
/// before, as the client does by default). Each new connection's cost is its request's
/// less a kept-alive one's. A cold invocation with C posts in flight opens at least C
/// connections, so it cannot cost less than C full ones.
fn client_floor(endpoint: &Endpoint, transport: Transport) -> Value {
    let scheme = match transport {
        Transport::Tls => "https",
        Transport::Http => "http",
    };
    let url = format!("{scheme}://{}/bench-floor", endpoint.addr);
    let ca = realtime_client::trust::read_ca_bundle(&endpoint.ca).expect("the dev server's CA");
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client = |resume: bool| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(ca.clone());
            let mut tls = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            if !resume {
                tls.resumption = rustls::client::Resumption::disabled();
            }
            realtime_client::http::RawClient::with_tls(tls, None, Some(1))
        };
        let send = |raw: &realtime_client::http::RawClient, close: bool| {
            let mut request = http::Request::get(&url);
            if close {
                request = request.header(http::header::CONNECTION, "close");
            }
            let request = request
                .body(aws_smithy_types::body::SdkBody::empty())
                .expect("a request");
            let raw = raw.clone();
            async move { raw.send(request).await.expect("the dev server answers") }
        };
        let (one, no_resumption) = (client(true), client(false));
        runtime.block_on(async {
            // The first connection (and the client's one-time set-up) is not measured.
            send(&one, false).await;
            let start = thread_cpu_s();
            for _ in 0..FLOOR_SAMPLES {
                send(&one, false).await;
            }
            let kept = thread_cpu_s() - start;
            send(&one, true).await;
            send(&no_resumption, true).await;
            let start = thread_cpu_s();
            for _ in 0..FLOOR_SAMPLES {
                send(&no_resumption, true).await;
            }
            let full = thread_cpu_s() - start;
            let start = thread_cpu_s();
            for _ in 0..FLOOR_SAMPLES {
                send(&one, true).await;
            }
            let resumed = thread_cpu_s() - start;
            let per = |s: f64| s * 1e6 / FLOOR_SAMPLES as f64;
            json!({"request_us": per(kept), "connection_us": per(full - kept),
                   "resumed_connection_us": per(resumed - kept), "samples": FLOOR_SAMPLES})
        })
    });
    thread.join().expect("the floor's thread")
}

/// This thread's time on CPU, seconds.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

/// A blocking wait on the bench's runtime.
fn block<T>(wait: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(wait)
}

/// Medians of the runs of one transport, and the runs.
fn summarise(runs: Vec<Value>) -> Value {
    let median_of = |key: &str| median(&runs.iter().map(|r| f(&r[key])).collect::<Vec<_>>());
    let runs_of = |key: &str| runs.iter().map(|r| r[key].clone()).collect::<Vec<_>>();
    let delivered_min = runs
        .iter()
        .flat_map(|r| [f(&r["cold"]["delivered"]), f(&r["warm"]["delivered"])])
        .fold(f64::INFINITY, f64::min);
    let mut out = json!({"delivered_min": delivered_min as u64, "runs": runs_of("cold").iter().zip(runs_of("warm")).map(|(c, w)| json!({"cold": c, "warm": w})).collect::<Vec<_>>()});
    for key in [
        "cold_cpu_us_per_post",
        "warm_cpu_us_per_post",
        "cold_connections",
        "warm_new_connections",
        "server_cold_cpu_us_per_post",
        "server_warm_cpu_us_per_post",
    ] {
        out[key] = json!(median_of(key));
        out[format!("{key}_runs")] = json!(runs_of(key));
    }
    out
}
