//! BENCHMARKS.md's fan-out section (`scenarios::fanout`): the concurrency sweep per size over
//! TLS, the plain-HTTP row beside it, the seed's algorithm, and the goals at N = 10,000.

use std::fmt::Write;

use serde_json::Value;

use crate::cost;
use crate::report_fields::{f, run_line};
use crate::report_summary::{Goal, Report};
use crate::targets;

pub(crate) fn fanout(out: &mut Report, r: &Value) {
    let Some(fan) = r.get("fanout") else { return };
    let _ = writeln!(out, "## 1. Fan-out\n\n{}\n", run_line(fan));
    let tls = fan["transport"] == "tls";
    let _ = writeln!(
        out,
        "One project, N subscribed clients; the dev server's Management API adds {} ms per call and \
         allows {} requests/s with bursts of {} (API Gateway's account default). Time from the \
         broadcaster receiving the invocation to the last client receiving the event; the \
         broadcaster is the release `broadcaster` binary under a local Runtime API, a fresh process \
         per run (cold SDK clients and connections, as a cold Lambda), posting {}, its peak RSS \
         (VmHWM) and CPU time (user + system, start-up included) read from `/proc`: on Lambda at \
         512 MB that CPU gets about 0.29 of a vCPU (a full one at 1,769 MB). {} runs per cell. \
         *Floor* (modelled): the lower bound that concurrency and quota allow, \
         `max(⌈N / concurrency⌉ × latency, (N − burst) / rate + latency)`.\n",
        fan["post_latency_ms"],
        fan["rate_limit_per_s"],
        fan["burst"],
        if tls {
            "over HTTPS as on AWS (`dev --tls`, its CA as `AWS_CA_BUNDLE`; the last row of each \
             table: the same over plain HTTP, for comparison)"
        } else {
            "over plain HTTP (before `dev --tls`)"
        },
        fan["repeats"]
    );
    for row in fan["results"].as_array().into_iter().flatten() {
        size(out, row);
    }
    goals(out, fan);
}

/// The table of one size, the index read and the seed's algorithm.
fn size(out: &mut Report, row: &Value) {
    let n = row["clients"].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "N = {n}:\n\n| concurrency | median ms | floor ms | × floor | runs ms | delivered (min) | posts answered 429 (runs) | broadcaster CPU ms (µs a post) | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|"
    );
    let cells = row["sweep"].as_array().into_iter().flatten();
    for c in cells.chain(row.get("plain_http")) {
        cell(out, c, n);
    }
    let index = &row["index_read"];
    if index.is_object() {
        let _ = writeln!(
            out,
            "\nReading the project index alone (the broadcaster's store code, every page, nothing \
             posted) took {:.0} ms on DynamoDB Local ({} items, {} page(s)): part of every run above.",
            f(&index["median_ms"]),
            index["items"],
            index["pages"]
        );
    }
    let seed = &row["seed_baseline"];
    if let Some(t) = seed["measured_ms"].as_f64() {
        let best = row["sweep"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| f(&c["median_ms"]))
            .fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            out,
            "\nThe seed's algorithm (one GSI page, one post at a time, plain HTTP), measured in the \
             same run: {t:.0} ms, {}/{n} delivered. The best cell above is **{:.0}×** faster.",
            seed["delivered"],
            t / best
        );
    } else if seed.get("skipped").is_some() {
        let _ = writeln!(
            out,
            "\nThe seed's algorithm at N = {n}: not run (long: `BENCH_LONG=1` runs it)."
        );
    }
    let _ = writeln!(out);
}

/// One row: a concurrency over one transport.
fn cell(out: &mut Report, c: &Value, n: u64) {
    let list = |key: &str, fmt: &dyn Fn(&Value) -> String| {
        c[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(fmt)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let runs = list("runs_ms", &|v| format!("{:.0}", f(v)));
    let throttled = list("throttled_runs", &Value::to_string);
    let label = match c["transport"].as_str() {
        Some("http") => format!("{} (plain HTTP)", c["concurrency"]),
        _ => c["concurrency"].to_string(),
    };
    let _ = writeln!(
        out,
        "| {label} | {:.0} | {:.0} | {:.2} | {runs} | {} | {throttled} | {:.0} ({:.0}) | {:.1} |",
        f(&c["median_ms"]),
        f(&c["floor_ms"]),
        f(&c["median_ms"]) / f(&c["floor_ms"]),
        c["delivered_min"],
        f(&c["broadcaster_cpu_ms"]),
        f(&c["broadcaster_cpu_ms"]) * 1000.0 / n as f64,
        f(&c["peak_rss_mb"])
    );
}

/// The run at N = 10,000 and its row at the default concurrency.
fn default_row(fan: &Value) -> Option<(&Value, &Value)> {
    let big = fan["results"]
        .as_array()?
        .iter()
        .find(|r| r["clients"] == 10_000)?;
    let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY;
    let d = big["sweep"]
        .as_array()?
        .iter()
        .find(|c| c["concurrency"] == default as u64)?;
    Some((big, d))
}

/// The goals at N = 10,000 with the default concurrency, and the Lambda model of its CPU.
fn goals(out: &mut Report, fan: &Value) {
    let Some((big, d)) = default_row(fan) else {
        return;
    };
    let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY;
    let (t, peak, floor) = (f(&d["median_ms"]), f(&d["peak_rss_mb"]), f(&d["floor_ms"]));
    let over = if fan["transport"] == "tls" {
        "over TLS"
    } else {
        "over plain HTTP"
    };
    let time = out.judge(
        fan,
        Goal {
            id: "FANOUT_10K_MS",
            section: "1. Fan-out",
            goal: format!(
                "fan-out to 10,000 at concurrency {default} {over} ≤ {:.0} ms",
                targets::FANOUT_10K_MS
            ),
            measured: format!("{t:.0} ms"),
            floor: format!("{floor:.0} ms (the quota model)"),
            met: Some(t <= targets::FANOUT_10K_MS),
        },
    );
    let ratio = out.judge(
        fan,
        Goal {
            id: "FANOUT_OVER_FLOOR",
            section: "1. Fan-out",
            goal: format!(
                "the same, ≤ {:.2}× the quota model's floor",
                targets::FANOUT_OVER_FLOOR
            ),
            measured: format!("{:.2}×", t / floor),
            floor: format!("1× = {floor:.0} ms"),
            met: Some(t / floor <= targets::FANOUT_OVER_FLOOR),
        },
    );
    let rss = out.judge(
        fan,
        Goal {
            id: "BROADCASTER_PEAK_RSS_MB",
            section: "1. Fan-out",
            goal: format!(
                "broadcaster peak RSS at 10,000 ≤ {:.0} MB",
                targets::BROADCASTER_PEAK_RSS_MB
            ),
            measured: format!("{peak:.1} MB"),
            floor: "–".into(),
            met: Some(peak <= targets::BROADCASTER_PEAK_RSS_MB),
        },
    );
    let _ = writeln!(
        out,
        "Goals at N = 10,000 with the default concurrency ({default}):\n\n| goal | measured | floor | |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| ≤ {:.0} ms | {t:.0} ms | {floor:.0} ms | {time} |",
        targets::FANOUT_10K_MS,
    );
    let _ = writeln!(
        out,
        "| ≤ {:.2}× the quota model's floor | {:.2}× | {floor:.0} ms | {ratio} |",
        targets::FANOUT_OVER_FLOOR,
        t / floor,
    );
    seed_goal(out, fan, &big["seed_baseline"], t);
    let _ = writeln!(
        out,
        "| broadcaster peak RSS ≤ {:.0} MB | {peak:.1} MB | – | {rss} |\n",
        targets::BROADCASTER_PEAK_RSS_MB,
    );
    lambda_model(out, f(&d["broadcaster_cpu_ms"]));
}

/// What the measured CPU of the fan-out means on Lambda at the template's memory (*modelled*).
fn lambda_model(out: &mut Report, cpu: f64) {
    if cpu > 0.0 {
        let _ = writeln!(
            out,
            "*Modelled* for Lambda: this fan-out's broadcaster used {cpu:.0} ms of CPU here ({:.0} µs a \
             post, on this machine's x86_64 cores, start-up and handshakes included). At the \
             template's {:.0} MB Lambda gives it {:.2} of a vCPU, so it cannot take less than {:.0} ms \
             there, however fast API Gateway answers; at 1,769 MB or more (one vCPU; the runtime is \
             single-threaded) no less than {cpu:.0} ms. Graviton's speed per post was not measured.\n",
            cpu * 1000.0 / 10_000.0,
            cost::BROADCASTER_GB * 1024.0,
            (cost::BROADCASTER_GB * 1024.0 / cost::MB_PER_VCPU).min(1.0),
            cost::lambda_ms(0.0, cpu, cost::BROADCASTER_GB),
        );
    }
}

fn seed_goal(out: &mut Report, fan: &Value, seed: &Value, t: f64) {
    let speedup = seed["measured_ms"].as_f64().map(|seed_ms| seed_ms / t);
    let verdict = out.judge(
        fan,
        Goal {
            id: "SEED_SPEEDUP",
            section: "1. Fan-out",
            goal: format!(
                "the same, ≥ {:.0}× the seed's algorithm",
                targets::SEED_SPEEDUP
            ),
            measured: speedup.map_or("not run (`BENCH_LONG=1`)".into(), |x| format!("{x:.0}×")),
            floor: "–".into(),
            met: speedup.map(|x| x >= targets::SEED_SPEEDUP),
        },
    );
    match seed["measured_ms"].as_f64() {
        Some(seed_ms) => {
            let _ = writeln!(
                out,
                "| ≥ {:.0}× the seed's algorithm | {:.0}× (the seed at N = 10,000: {:.1} s, reaching {} of 10,000) | – | {} |",
                targets::SEED_SPEEDUP,
                seed_ms / t,
                seed_ms / 1000.0,
                seed["delivered"],
                verdict
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| ≥ {:.0}× the seed's algorithm | not run (`BENCH_LONG=1`) | – | – |",
                targets::SEED_SPEEDUP
            );
        }
    }
}
