//! BENCHMARKS.md's section on the cost of one delivery (`scenarios::delivery`): the
//! broadcaster's CPU per post cold and warm over TLS and plain HTTP, its connections, the dev
//! server's CPU beside it, and the goals of issue 35 with the Lambda model they imply.

use std::fmt::Write;

use serde_json::Value;

use crate::cost;
use crate::report_fields::f;
use crate::report_summary::{Goal, Report};
use crate::targets;

/// The section, when the results hold the scenario.
pub(crate) fn delivery(out: &mut Report, r: &Value) {
    let Some(d) = r.get("delivery") else { return };
    let _ = writeln!(
        out,
        "## 1b. The cost of one delivery\n\n{}\n",
        crate::report_fields::run_line(d)
    );
    let _ = writeln!(
        out,
        "One event to N = {} subscribed clients at concurrency {}, by the release `broadcaster` \
         under a local Runtime API: a fresh process handed two invocations of the same fan-out. \
         **Cold**: the process's CPU from exec to the end of the first invocation (start-up, SDK \
         clients, every TLS handshake), per post. **Warm**: the second invocation's CPU, same \
         process, per post. CPU is the sum of the process's threads' time on CPU \
         (`/proc/<pid>/task/*/schedstat`, nanoseconds); connections are the process's TCP \
         sockets to the dev server after each invocation (`/proc/<pid>/fd`, `/proc/<pid>/net/tcp`): \
         over TLS each new one is a full handshake. The dev server (`dev --tls`, DynamoDB Local \
         store, {} ms added per post, API Gateway's quota) answers HTTPS and plain HTTP on one \
         port; its own CPU per post (the Management API request and the WebSocket frame) is beside \
         the broadcaster's so that the emulator is not taken for the function. {} runs of each, \
         alternated; medians, runs in brackets.\n",
        d["clients"], d["concurrency"], d["post_latency_ms"], d["repeats"]
    );
    let _ = writeln!(
        out,
        "| posting over | cold µs a post | warm µs a post | connections opened cold / warm | dev server µs a post cold / warm | delivered (min) |\n|---|---|---|---|---|---|"
    );
    rows(out, d, "");
    // The run before the lean sender, kept in results.json by hand: the SDK's PostToConnection.
    if let Some(before) = r.get("delivery_sdk") {
        let note = format!(
            ", SDK sender (measured {}, commit {})",
            before["date"].as_str().unwrap_or("before"),
            before["commit"].as_str().unwrap_or("before")
        );
        rows(out, before, &note);
    }
    floors(out, d);
    goals(out, d);
}

/// The broadcaster's HTTP client alone, per transport: what a new connection costs it.
fn floors(out: &mut Report, d: &Value) {
    let rows: Vec<_> = [("tls", "TLS"), ("http", "plain HTTP")]
        .into_iter()
        .filter_map(|(key, label)| Some((label, d["transports"][key].get("client_floor")?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nWhat a new connection costs the broadcaster's HTTP client alone \
         (`realtime_client::http::RawClient`, the same rustls and crypto provider, the dev \
         server's certificate), on one thread, its CPU read from `/proc/thread-self/schedstat`: \
         {} requests each on a new connection (`Connection: close`) less as many on one kept-alive \
         connection. *Full*: resumption off, a full handshake (as each of a cold invocation's \
         simultaneous connects, none of which has a ticket to resume). *Resumed*: TLS 1.3 \
         resumption from the tickets of the connection before, as the client does by default. A cold invocation with C posts in flight over \
         HTTP/1.1 opens at least C connections, none cheaper than a resumed one: C resumed ones \
         on top of the warm cost are its floor.\n\n\
         | transport | a new connection, full, µs | resumed, µs |\n|---|---|---|",
        rows[0].1["samples"]
    );
    for (label, floor) in rows {
        let _ = writeln!(
            out,
            "| {label} | {:.0} | {:.0} |",
            f(&floor["connection_us"]),
            f(&floor["resumed_connection_us"])
        );
    }
}

/// One row per transport of a run; `note` after the transport's name.
fn rows(out: &mut Report, d: &Value, note: &str) {
    let sender = match d["sender"].as_str() {
        Some("sdk") => "",
        _ => ", lean sender",
    };
    for (key, label) in [
        ("tls", "TLS (as on AWS)"),
        ("http", "plain HTTP (comparison)"),
    ] {
        let Some(t) = d["transports"].get(key) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {label}{sender}{note} | {:.0} ({}) | {:.0} ({}) | {:.0} / {:.0} | {:.0} / {:.0} | {} |",
            f(&t["cold_cpu_us_per_post"]),
            runs(&t["cold_cpu_us_per_post_runs"]),
            f(&t["warm_cpu_us_per_post"]),
            runs(&t["warm_cpu_us_per_post_runs"]),
            f(&t["cold_connections"]),
            f(&t["warm_new_connections"]),
            f(&t["server_cold_cpu_us_per_post"]),
            f(&t["server_warm_cpu_us_per_post"]),
            t["delivered_min"]
        );
    }
}

/// The TLS figures the goals are judged on.
struct TlsFigures {
    cold: f64,
    warm: f64,
    cold_floor: String,
    /// The share of a vCPU the broadcaster gets at the template's memory.
    share: f64,
}

const WARM_FLOOR: &str = "not measured (see the notes)";

impl TlsFigures {
    fn of(d: &Value, t: &Value) -> Self {
        let (cold, warm) = (f(&t["cold_cpu_us_per_post"]), f(&t["warm_cpu_us_per_post"]));
        // The cold floor: the warm cost plus the connections a cold invocation cannot do
        // without (one per post in flight), none cheaper than a resumed one.
        let n = f(&d["clients"]).max(1.0);
        let needed = f(&d["concurrency"]).min(n);
        let cold_floor = match t["client_floor"].get("resumed_connection_us") {
            Some(us) => format!(
                "{:.0} µs: the warm cost + {needed:.0} new connections × {:.0} µs (resumed) ÷ {n:.0} posts",
                warm + needed * f(us) / n,
                f(us)
            ),
            None => format!("{warm:.0} µs (warm)"),
        };
        TlsFigures {
            cold,
            warm,
            cold_floor,
            share: (cost::BROADCASTER_GB * 1024.0 / cost::MB_PER_VCPU).min(1.0),
        }
    }

    /// 10,000 posts' CPU on Lambda at the template's memory, in ms.
    fn modelled(&self) -> f64 {
        10_000.0 * self.warm / 1000.0 / self.share
    }
}

/// The goals on the TLS figures, with the modelled Lambda fan-out.
fn goals(out: &mut Report, d: &Value) {
    let Some(t) = d["transports"].get("tls") else {
        return;
    };
    let x = TlsFigures::of(d, t);
    let section = "1b. The cost of one delivery";
    let n = format!("N = {}, concurrency {}", d["clients"], d["concurrency"]);
    let warm_verdict = out.judge(
        d,
        Goal {
            id: "WARM_CPU_US_PER_POST",
            section,
            goal: format!(
                "broadcaster CPU a post over TLS, warm ({n}) ≤ {:.0} µs",
                targets::WARM_CPU_US_PER_POST
            ),
            measured: format!("{:.0} µs", x.warm),
            floor: WARM_FLOOR.into(),
            met: Some(x.warm <= targets::WARM_CPU_US_PER_POST),
        },
    );
    let cold_verdict = out.judge(
        d,
        Goal {
            id: "COLD_CPU_US_PER_POST",
            section,
            goal: format!(
                "the same, cold: start-up and handshakes included ≤ {:.0} µs",
                targets::COLD_CPU_US_PER_POST
            ),
            measured: format!("{:.0} µs", x.cold),
            floor: x.cold_floor.clone(),
            met: Some(x.cold <= targets::COLD_CPU_US_PER_POST),
        },
    );
    let lambda_verdict = out.judge(
        d,
        Goal {
            id: "FANOUT_10K_LAMBDA_MODELLED_MS",
            section,
            goal: format!(
                "fan-out to 10,000 on Lambda at {:.0} MB, the warm CPU alone ≤ {:.0} ms",
                cost::BROADCASTER_GB * 1024.0,
                targets::FANOUT_10K_LAMBDA_MODELLED_MS
            ),
            measured: format!("{:.0} ms *modelled*", x.modelled()),
            floor: format!("{:.0} ms *modelled* (one vCPU)", 10_000.0 * x.warm / 1000.0),
            met: Some(x.modelled() <= targets::FANOUT_10K_LAMBDA_MODELLED_MS),
        },
    );
    goals_table(out, &x, [warm_verdict, cold_verdict, lambda_verdict]);
}

/// The section's own table of its three goals (warm, cold, the Lambda model).
fn goals_table(out: &mut Report, x: &TlsFigures, [warm, cold, lambda]: [&str; 3]) {
    let _ = writeln!(
        out,
        "\n| goal (over TLS) | measured | floor | |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| warm ≤ {:.0} µs of broadcaster CPU a post | {:.0} µs | {WARM_FLOOR} | {warm} |",
        targets::WARM_CPU_US_PER_POST,
        x.warm,
    );
    let _ = writeln!(
        out,
        "| cold ≤ {:.0} µs a post, everything included | {:.0} µs | {} | {cold} |",
        targets::COLD_CPU_US_PER_POST,
        x.cold,
        x.cold_floor,
    );
    let _ = writeln!(
        out,
        "| 10,000-connection fan-out on Lambda at {:.0} MB ≤ {:.0} ms (*modelled*: 10,000 × the warm CPU a post ÷ {:.2} of a vCPU; a cold sandbox's handshakes come on top: section 1's model) | {:.0} ms *modelled* | {:.0} ms *modelled*: the same CPU at one vCPU | {lambda} |\n",
        cost::BROADCASTER_GB * 1024.0,
        targets::FANOUT_10K_LAMBDA_MODELLED_MS,
        x.share,
        x.modelled(),
        10_000.0 * x.warm / 1000.0,
    );
}

fn runs(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| format!("{:.0}", f(x)))
        .collect::<Vec<_>>()
        .join(", ")
}
