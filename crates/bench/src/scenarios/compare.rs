//! Two broadcaster builds on the same 10,000 clients, runs alternated, so that a change to the
//! delivery path is measured against the build before it in one run (same machine, same
//! moment, same connections). `make bench SCENARIO=compare BASELINE_BROADCASTER=<path>`; it
//! prints its figures and writes `target/bench/compare.json`, and leaves BENCHMARKS.md alone.

use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::scenarios::fanout::{fanout_server, run_broadcaster};
use crate::stats::*;

/// Posts in flight: the deployed default.
const CONCURRENCY: usize = 400;

pub async fn run(opts: &BenchOptions) -> Value {
    let baseline = opts.baseline_broadcaster.clone().expect(
        "SCENARIO=compare needs BASELINE_BROADCASTER, the release broadcaster to compare with",
    );
    let current = sibling("broadcaster");
    let (n, repeats) = if opts.quick { (1000, 2) } else { (10_000, 15) };
    let (_server, addr, table) = fanout_server();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let project = Uuid::new_v4();
    eprintln!("compare: {n} clients, {repeats} alternated runs of each build");
    let _clients = clients(addr, Some(project), n, Some(tx)).await;
    let (mut base_ms, mut current_ms) = (Vec::new(), Vec::new());
    for round in 0..repeats {
        // ABBA order, so that neither build always runs first (warm caches, drifting load).
        let mut pair = [(&baseline, &mut base_ms), (&current, &mut current_ms)];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (binary, times) in pair {
            let (t, delivered, _) = run_broadcaster(
                (binary, &[]),
                &table,
                addr,
                project,
                n,
                CONCURRENCY,
                &mut rx,
            )
            .await;
            assert_eq!(delivered, n, "{}: every client reached", binary.display());
            times.push(t);
        }
    }
    let (b, c) = (median(&base_ms), median(&current_ms));
    eprintln!(
        "  baseline median {b:.1} ms {base_ms:?}\n  current  median {c:.1} ms {current_ms:?}\n  current / baseline = {:.3}",
        c / b
    );
    let result = json!({
        "date": realtime::rfc3339(realtime::epoch_millis()),
        "clients": n, "concurrency": CONCURRENCY, "post_latency_ms": 20, "rate_limit_per_s": 10000,
        "baseline": baseline.display().to_string(),
        "baseline_runs_ms": base_ms, "current_runs_ms": current_ms,
        "baseline_median_ms": b, "current_median_ms": c, "ratio": c / b,
    });
    std::fs::create_dir_all(&opts.out).expect("output directory");
    let path = opts.out.join("compare.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result).unwrap())
        .expect("write compare.json");
    eprintln!("results: {}", path.display());
    result
}
