//! `devhive-bench`: the benchmarks of BENCHMARKS.md, driven by this one process (`make bench`).
//!
//! The dev server and the broadcaster run as their own release processes (so each one's memory
//! is its own) and every client is a real WebSocket from here, on 127.0.0.x addresses only.
//! Every loop is bounded in count and time. Results go to `target/bench/results.json` and the
//! tables read off them to stdout (BENCHMARKS.md is written by hand from those tables); timings
//! never fail anything. The goals are in [`targets`], once each.

use std::path::PathBuf;

use clap::Parser;
use clap::builder::FalseyValueParser;
use serde_json::{Value, json};

mod clients;
mod cost;
mod goals;
mod procs;
mod report;
mod scenarios;
mod stats;
mod table;
mod targets;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every scenario below (`compare` only when a baseline is given).
    All,
    Fanout,
    /// The broadcaster's CPU per post, cold and warm, over TLS and plain HTTP.
    Delivery,
    Latency,
    Capacity,
    Throughput,
    Artifacts,
    /// What recovery costs: the append, and subscribe with 100 to recover.
    Recovery,
    /// The relay's drain rate for a 100,000-row backlog, beside its floor.
    Drain,
    /// The reconnect sweep's duration and cost per 1,000 connection-hours.
    Sweep,
    /// Presence posts when 1,000 users connect at once, per bound.
    Presence,
    /// Two broadcaster builds on the same clients (needs `BASELINE_BROADCASTER`).
    Compare,
}

impl Scenario {
    /// The order `all` runs them in; each one's results are kept under [`Scenario::key`].
    const EVERY: [Scenario; 11] = [
        Scenario::Artifacts,
        Scenario::Capacity,
        Scenario::Latency,
        Scenario::Delivery,
        Scenario::Fanout,
        Scenario::Throughput,
        Scenario::Recovery,
        Scenario::Drain,
        Scenario::Sweep,
        Scenario::Presence,
        Scenario::Compare,
    ];

    pub fn key(self) -> String {
        format!("{self:?}").to_lowercase()
    }
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
    #[arg(long, env = "BENCH_QUICK", value_parser = FalseyValueParser::new())]
    pub quick: bool,
    /// Also the long runs: DevHive's Go broadcaster's algorithm at 10,000 clients and the unbounded presence
    /// storm in one project (several minutes each).
    #[arg(long, env = "BENCH_LONG", value_parser = FalseyValueParser::new())]
    pub long: bool,
    /// Seconds of the throughput scenario.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 60)]
    pub seconds: u64,
    /// Where results.json goes.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// The release broadcaster binary the `compare` scenario measures this build against.
    #[arg(long, env = "BASELINE_BROADCASTER")]
    pub baseline_broadcaster: Option<PathBuf>,
    /// Print the tables of the existing results.json (under `--out`) without running anything.
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
        let read = std::fs::read_to_string(&path).map_err(|e| e.to_string());
        match read.and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string())) {
            Ok(results) => return report::print(&results),
            Err(e) => {
                eprintln!("--render-only needs {} from a run: {e}", path.display());
                std::process::exit(2);
            }
        }
    }
    // A single scenario updates its part of the previous results and keeps the others.
    let path = opts.out.join("results.json");
    let mut results: serde_json::Map<String, Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    results.insert(
        "date".into(),
        json!(realtime::rfc3339(realtime::time::EpochMs::now())),
    );
    results.insert("machine".into(), machine());
    results.insert("quick".into(), json!(opts.quick));
    results.insert("long".into(), json!(opts.long));
    std::fs::create_dir_all(&opts.out).expect("output directory");
    for scenario in Scenario::EVERY {
        let wanted = match opts.scenario {
            Scenario::All => scenario != Scenario::Compare || opts.baseline_broadcaster.is_some(),
            one => one == scenario,
        };
        if !wanted {
            continue;
        }
        let started = std::time::Instant::now();
        let mut v = match scenario {
            Scenario::Artifacts => scenarios::artifacts::run(&opts).await,
            Scenario::Capacity => scenarios::capacity::run(&opts).await,
            Scenario::Latency => scenarios::latency::run(&opts).await,
            Scenario::Fanout => scenarios::fanout::run(&opts).await,
            Scenario::Delivery => scenarios::delivery::run(&opts).await,
            Scenario::Throughput => scenarios::throughput::run(&opts).await,
            Scenario::Recovery => scenarios::recovery::run(&opts).await,
            Scenario::Drain => scenarios::drain::run(&opts).await,
            Scenario::Sweep => scenarios::sweep::run(&opts).await,
            Scenario::Presence => scenarios::presence::run(&opts).await,
            Scenario::Compare => scenarios::compare::run(&opts).await,
            Scenario::All => unreachable!("not in EVERY"),
        };
        v["date"] = json!(realtime::rfc3339(realtime::time::EpochMs::now()));
        v["command"] = json!(format!(
            "make bench SCENARIO={}{}{}",
            scenario.key(),
            if opts.long { " BENCH_LONG=1" } else { "" },
            if opts.quick { " BENCH_QUICK=1" } else { "" }
        ));
        v["took_s"] = json!(started.elapsed().as_secs_f64());
        results.insert(scenario.key(), v);
        // Written after each scenario, so a run cut short keeps what it measured.
        std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap())
            .expect("write results.json");
    }
    eprintln!("results: {}", path.display());
    report::print(&Value::Object(results));
}
