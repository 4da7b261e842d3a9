//! Scenario 4, Throughput: many clients in many projects, a steady rate of events through the Invoke API
//! for a while; delivered / expected and delivery latency.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::stats::*;

/// When each event was sent, by event id.
type Sent = Arc<std::sync::Mutex<HashMap<Uuid, Instant>>>;

/// Count the clients' receipts of sent events until 15 s pass without one; (count, latencies).
async fn collect(mut rx: mpsc::UnboundedReceiver<Receipt>, sent: Sent) -> (usize, Vec<f64>) {
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
}

pub async fn run(opts: &BenchOptions) -> Value {
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
    let (server, addr) = dev_server(&["--store", "dynamodb", "--post-latency-ms", "20"], &env);
    let server_pid = server.0.id();
    let (tx, rx) = mpsc::unbounded_channel();
    let ids: Vec<Uuid> = (0..projects).map(|_| Uuid::new_v4()).collect();
    eprintln!(
        "throughput: {} clients in {projects} projects, {rate} events/s for {seconds} s",
        projects * per_project
    );
    let mut held = Vec::new();
    for p in &ids {
        held.extend(clients(addr, Some(*p), per_project, Some(tx.clone())).await);
    }
    let lambda = realtime::realtime_client::sdk::local_lambda_client(&format!("http://{addr}"));
    let sent: Sent = Arc::default();
    let collector = tokio::spawn(collect(rx, sent.clone()));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(interval);
    let total = rate * seconds as usize;
    let cpu_before = cpu_seconds(server_pid);
    let began = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let event_id = Uuid::new_v4();
        let payload = json!({"project_id": ids[i % projects], "type": "bench_throughput", "data": {"i": i}, "event_id": event_id});
        sent.lock().unwrap().insert(event_id, Instant::now());
        let call = lambda
            .invoke()
            .function_name("broadcaster")
            .invocation_type(
                realtime::realtime_client::aws_sdk_lambda::types::InvocationType::Event,
            )
            .payload(
                realtime::realtime_client::aws_sdk_lambda::primitives::Blob::new(
                    payload.to_string(),
                ),
            );
        tokio::spawn(async move {
            let _ = call.send().await;
        });
    }
    let sending_s = began.elapsed().as_secs_f64();
    // The dev server's CPU over the sending, as a share of one core, and its memory under load.
    let cpu_percent = 100.0 * (cpu_seconds(server_pid) - cpu_before) / sending_s;
    let rss_mb = status_kb(server_pid, "VmRSS:") as f64 / 1024.0;
    let peak_rss_mb = status_kb(server_pid, "VmHWM:") as f64 / 1024.0;
    drop(tx);
    let (received, latencies) = collector.await.unwrap();
    drop(held);
    let expected = total * per_project;
    eprintln!(
        "  delivered {received}/{expected} ({:.3} %), p50 {:.1} ms, p99 {:.1} ms; dev server CPU {cpu_percent:.0} % of a core, RSS {rss_mb:.0} MB (peak {peak_rss_mb:.0} MB)",
        100.0 * received as f64 / expected as f64,
        median(&latencies),
        percentile(&latencies, 99.0)
    );
    json!({"clients": projects * per_project, "projects": projects, "events_per_s": rate, "seconds": seconds,
           "sending_s": sending_s, "expected": expected, "delivered": received,
           "delivered_ratio": received as f64 / expected as f64, "p50_ms": median(&latencies),
           "p99_ms": percentile(&latencies, 99.0), "max_ms": percentile(&latencies, 100.0), "post_latency_ms": 20,
           "dev_server_cpu_percent": cpu_percent, "dev_server_rss_mb": rss_mb, "dev_server_peak_rss_mb": peak_rss_mb})
}
