//! Two broadcaster builds on the same 10,000 clients, runs alternated, so that a change to the
//! delivery path is measured against the build before it in one run (same machine, same
//! moment, same connections). `make bench SCENARIO=compare BASELINE_BROADCASTER=<path>`; it
//! prints its figures; part of `make bench` when `BASELINE_BROADCASTER` is given.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::scenarios::fanout::{BroadcasterBuild, fanout_server, run_broadcaster};
use crate::stats::*;

/// Posts in flight: the deployed default.
pub(crate) const CONCURRENCY: usize = 400;

/// The clients a fan-out reaches: the dev server's table and address, one project, `n` clients.
pub(crate) struct Subscribed<'a> {
    pub(crate) table: &'a str,
    pub(crate) addr: SocketAddr,
    pub(crate) project: Uuid,
    pub(crate) n: usize,
}

/// Two broadcaster builds, one event each per round, `rounds` rounds in ABBA order (so that
/// neither always runs first: warm caches, drifting load); each one's times (invoke → last
/// client, ms). Every run must reach every client.
pub(crate) async fn alternate(
    builds: [BroadcasterBuild<'_>; 2],
    to: &Subscribed<'_>,
    rounds: usize,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> [Vec<f64>; 2] {
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (t, delivered, _, _) = run_broadcaster(
                builds[i],
                to.table,
                to.addr,
                to.project,
                to.n,
                CONCURRENCY,
                rx,
            )
            .await;
            assert_eq!(
                delivered,
                to.n,
                "{}: every client reached",
                builds[i].0.display()
            );
            times[i].push(t);
        }
    }
    times
}

pub async fn run(opts: &BenchOptions) -> Value {
    let baseline = opts.baseline_broadcaster.clone().expect(
        "SCENARIO=compare needs BASELINE_BROADCASTER, the release broadcaster to compare with",
    );
    let current = sibling("broadcaster");
    let (n, repeats) = if opts.quick { (1000, 2) } else { (10_000, 15) };
    let (_server, addr, table) = fanout_server(&[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let project = Uuid::new_v4();
    eprintln!("compare: {n} clients, {repeats} alternated runs of each build");
    let _clients = clients(addr, Some(project), n, Some(tx)).await;
    let target = Subscribed {
        table: &table,
        addr,
        project,
        n,
    };
    let [base_ms, current_ms] = alternate(
        [(&baseline, &[]), (&current, &[])],
        &target,
        repeats,
        &mut rx,
    )
    .await;
    let (b, c) = (median(&base_ms), median(&current_ms));
    eprintln!(
        "  baseline median {b:.1} ms {base_ms:?}\n  current  median {c:.1} ms {current_ms:?}\n  current / baseline = {:.3}",
        c / b
    );
    let result = json!({
        "date": realtime::rfc3339(realtime::time::EpochMs::now()),
        "clients": n, "concurrency": CONCURRENCY, "post_latency_ms": 20, "rate_limit_per_s": 10000,
        "baseline": baseline.display().to_string(),
        "baseline_runs_ms": base_ms, "current_runs_ms": current_ms,
        "baseline_median_ms": b, "current_median_ms": c, "ratio": c / b,
    });
    result
}
