//! BENCHMARKS.md opens with one table of every goal: the figure, the goal, its floor, met or
//! missed, when and by which command it was measured, and, for a missed goal, its cause. The
//! sections below it print the same figures with their detail; here each section hands its
//! verdict to the [`Report`] it writes into, so the summary cannot disagree with them.

use std::fmt::{self, Write};

use serde_json::Value;

use crate::targets::verdict;

/// The report being written: the sections' text and the goals they judged.
#[derive(Default)]
pub(crate) struct Report {
    text: String,
    goals: Vec<Judged>,
}

/// One goal as the summary prints it.
pub(crate) struct Goal {
    /// The goal's constant in `targets.rs` (and its key in [`CAUSES`]).
    pub id: &'static str,
    /// The section that shows the figure, e.g. "1. Fan-out".
    pub section: &'static str,
    /// What is measured, with its goal: "fan-out to 10,000, ≤ 1,500 ms".
    pub goal: String,
    /// The figure, labelled *modelled* when it is.
    pub measured: String,
    /// The floor beside it, or why there is none.
    pub floor: String,
    /// `None` when the figure was not run.
    pub met: Option<bool>,
}

/// Why a goal was missed when last measured, by the goal's constant: written by hand after
/// the analysis in the notes, printed only while the goal is missed.
const CAUSES: &[(&str, &str)] = &[
    (
        "FANOUT_10K_MS",
        "two cores run the broadcaster's cold TLS handshakes, the dev server (API Gateway) and 10,000 clients at once ([notes](#issue-35-the-cost-of-one-delivery-over-tls-2026-12-06-07200825-utc))",
    ),
    (
        "FANOUT_OVER_FLOOR",
        "two cores run the broadcaster's cold TLS handshakes, the dev server (API Gateway) and 10,000 clients at once: at concurrency 400 the posts wait for CPU, not for the quota; fewer in flight come closest to the floor (section 1's tables, [notes](#issue-35-the-cost-of-one-delivery-over-tls-2026-12-06-07200825-utc))",
    ),
    (
        "WARM_CPU_US_PER_POST",
        "hyper's HTTP/1.1 client, the runtime, allocation, SigV4 and rustls's records per post ([profile](#profile-of-the-broadcaster-over-tls-2026-12-06))",
    ),
    (
        "COLD_CPU_US_PER_POST",
        "the goal is under its floor: 400 posts in flight over HTTP/1.1 need 400 connections, each a TLS handshake costing at least a resumed one's CPU; certificate verification (ECDSA P-256) and key exchange are most of it ([profile](#profile-of-the-broadcaster-over-tls-2026-12-06))",
    ),
    (
        "COMMIT_TO_CLIENT_P99_MS",
        "relay, Invoke, broadcaster, Management API and WebSocket frontend in one dev server process on two cores, terminating TLS on both sides of every post; the floor column (the posts in-process) shows how much of it is this machine, not the path",
    ),
    (
        "DELIVERED_RATIO",
        "10,000 deliveries a second through one dev server process that is also Lambda's Invoke queue: the queue (1,000) filled ([notes](#goals-missed-in-the-2026-11-26-run-and-why))",
    ),
    (
        "BOOTSTRAP_BYTES",
        "presence links the Management API client into `subscribe`; `make build` enforces 6.3 MB ([notes](#goals-missed-in-the-2026-11-26-run-and-why))",
    ),
    (
        "APPEND_ADDED_P50_MS",
        "DynamoDB Local's latency: two sequential requests (an `UpdateItem`, a two-item transaction) before the first post; DynamoDB itself not measured ([notes](#goals-missed-in-the-2026-11-26-run-and-why))",
    ),
    (
        "RECOVERING_SUBSCRIBE_P99_MS",
        "DynamoDB Local's latency for the one query ([notes](#goals-missed-in-the-2026-11-26-run-and-why))",
    ),
    (
        "SEED_SPEEDUP",
        "follows from the fan-out's time at 10,000 ([notes](#goals-missed-in-the-2026-11-26-run-and-why))",
    ),
    (
        "COST_OVER_MESSAGE_FLOOR",
        "at 100 clients an event, a fresh broadcaster process per event pays a cold sandbox's handshakes every time (notes)",
    ),
];

impl Write for Report {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.text.write_str(s)
    }
}

impl Report {
    /// Record `goal`, measured by the scenario whose results are `scenario` (its date and
    /// command are the summary's); its verdict, for the section's own table.
    pub(crate) fn judge(&mut self, scenario: &Value, goal: Goal) -> &'static str {
        let word = goal.met.map_or("–", verdict);
        let date = scenario["date"].as_str().unwrap_or("");
        let command = scenario["command"].as_str().unwrap_or("make bench");
        self.goals.push(Judged {
            goal,
            date: date.get(..10).unwrap_or(date).to_owned(),
            command: command.to_owned(),
        });
        word
    }

    /// The summary table, then the sections' text.
    pub(crate) fn finish(self, head: &str) -> String {
        let mut out = String::from(head);
        let met = self
            .goals
            .iter()
            .filter(|g| g.goal.met == Some(true))
            .count();
        let missed = self
            .goals
            .iter()
            .filter(|g| g.goal.met == Some(false))
            .count();
        let _ = writeln!(
            out,
            "## Summary\n\nEvery goal of `crates/bench/src/targets.rs` with the figure it is \
             judged by ({met} met, {missed} missed, {} not run), from the section named beside it, \
             where the figure's conditions and raw runs are. Causes of missed goals are written by \
             hand (`crates/bench/src/report_summary.rs`) from the analysis in the notes.\n\n\
             | section | goal | measured | floor | status | date | command | cause, when missed |\n\
             |---|---|---|---|---|---|---|---|",
            self.goals.len() - met - missed
        );
        for j in &self.goals {
            let g = &j.goal;
            let cause = match g.met {
                Some(false) => CAUSES
                    .iter()
                    .find(|(id, _)| *id == g.id)
                    .map_or("not analysed yet", |(_, cause)| cause),
                _ => "–",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | `{}` | {cause} |",
                g.section,
                g.goal,
                g.measured,
                g.floor,
                g.met.map_or("not run", verdict),
                j.date,
                j.command,
            );
        }
        out.push('\n');
        out + &self.text
    }
}

/// A goal with when and how its figure was measured.
struct Judged {
    goal: Goal,
    date: String,
    command: String,
}
