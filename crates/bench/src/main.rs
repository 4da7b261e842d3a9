//! `devhive-bench`: the benchmarks of BENCHMARKS.md, driven by this one process (`make bench`).
//!
//! The dev server and the broadcaster run as their own release processes (so each one's memory
//! is its own) and every client is a real WebSocket from here, on 127.0.0.x addresses only.
//! Every loop is bounded in count and time. Results go to `target/bench/results.json` and
//! `BENCHMARKS.md`; timings never fail anything. The goals are in [`targets`], once each.

use std::path::PathBuf;

use clap::Parser;
use serde_json::{Value, json};

mod clients;
mod procs;
mod report;
mod scenarios;
mod stats;
mod targets;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    All,
    Fanout,
    Latency,
    Capacity,
    Throughput,
    Artifacts,
    /// Two broadcaster builds on the same clients (not part of `all`; BENCHMARKS.md untouched).
    Compare,
    /// What recovery costs: the append, and subscribe with 100 to recover (not part of `all`).
    Recovery,
    /// The relay's drain rate for a 100,000-row backlog, beside its floor (not part of `all`).
    Drain,
    /// The reconnect sweep's duration and cost per 1,000 connection-hours (not part of `all`).
    Sweep,
    /// Presence posts when 1,000 users connect at once, per bound (not part of `all`).
    Presence,
}

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "devhive-bench",
    about = "DevHive Realtime benchmarks (run through `make bench`)"
)]
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
    /// The release broadcaster binary the `compare` scenario measures this build against.
    #[arg(long, env = "BASELINE_BROADCASTER")]
    pub baseline_broadcaster: Option<PathBuf>,
    /// Re-render the report from the existing results.json without running anything.
    #[arg(long)]
    pub render_only: bool,
}

#[tokio::main]
async fn main() {
    realtime::runtime::telemetry::init();
    run(BenchOptions::parse()).await;
}

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

async fn run(opts: BenchOptions) {
    if opts.render_only {
        let path = opts.out.join("results.json");
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("results.json"))
                .expect("JSON");
        return report::write_report(&results, &opts);
    }
    if opts.scenario == Scenario::Compare {
        scenarios::compare::run(&opts).await;
        return;
    }
    if opts.scenario == Scenario::Drain {
        scenarios::drain::run(&opts).await;
        return;
    }
    if opts.scenario == Scenario::Sweep {
        scenarios::sweep::run(&opts).await;
        return;
    }
    if opts.scenario == Scenario::Presence {
        scenarios::presence::run(&opts).await;
        return;
    }
    if opts.scenario == Scenario::Recovery {
        scenarios::recovery::run(&opts).await;
        return;
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
        results.insert(
            "artifacts".into(),
            stamp(scenarios::artifacts::run(&opts).await),
        );
    }
    if want(Scenario::Capacity) {
        results.insert(
            "capacity".into(),
            stamp(scenarios::capacity::run(&opts).await),
        );
    }
    if want(Scenario::Latency) {
        results.insert(
            "latency".into(),
            stamp(scenarios::latency::run(&opts).await),
        );
    }
    if want(Scenario::Fanout) {
        results.insert("fanout".into(), stamp(scenarios::fanout::run(&opts).await));
    }
    if want(Scenario::Throughput) {
        results.insert(
            "throughput".into(),
            stamp(scenarios::throughput::run(&opts).await),
        );
    }
    let results = Value::Object(results);
    std::fs::create_dir_all(&opts.out).expect("output directory");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap())
        .expect("write results.json");
    eprintln!("results: {}", path.display());
    report::write_report(&results, &opts);
}
