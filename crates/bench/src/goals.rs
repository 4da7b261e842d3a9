//! The summary: every goal of [`crate::targets`] beside the figure it is judged by, its floor,
//! met or missed, and whether the figure is measured or modelled, read off `results.json`.

use serde_json::Value;

use crate::cost;
use crate::stats::f;
use crate::table::{Table, num};
use crate::targets as t;

/// A goal's bound on its figure.
#[derive(Clone, Copy)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
}
use Bound::*;

/// One goal, judged on its figure (`None`: not run).
struct Goal {
    scenario: &'static str,
    figure: String,
    value: Option<f64>,
    unit: &'static str,
    bound: Bound,
    floor: String,
    modelled: bool,
}

fn goal(
    scenario: &'static str,
    figure: impl Into<String>,
    value: Option<f64>,
    unit: &'static str,
    bound: Bound,
) -> Goal {
    let (figure, floor) = (figure.into(), "–".into());
    Goal {
        scenario,
        figure,
        value,
        unit,
        bound,
        floor,
        modelled: false,
    }
}

impl Goal {
    /// The floor beside the figure, in its unit, with what it is.
    fn floor(self, floor: f64, what: &str) -> Self {
        let floor = format!("{}{what}", with_unit(floor, self.unit));
        Goal { floor, ..self }
    }

    fn modelled(self) -> Self {
        Goal {
            modelled: true,
            ..self
        }
    }

    fn row(self) -> Vec<String> {
        let (bound, sign) = match self.bound {
            AtMost(b) => (b, "≤"),
            AtLeast(b) => (b, "≥"),
        };
        let goal = match self.unit {
            "$" => format!("{sign} ${bound}"),
            unit => format!("{sign} {bound}{unit}"),
        };
        let met = self
            .value
            .filter(|v| v.is_finite())
            .map(|v| match self.bound {
                AtMost(_) => v <= bound,
                AtLeast(_) => v >= bound,
            });
        let status = match met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not run",
        };
        let value = self
            .value
            .map_or("not run".into(), |v| with_unit(v, self.unit));
        let kind = if self.modelled {
            "modelled"
        } else {
            "measured"
        };
        let rest = [status, kind, self.scenario].map(String::from);
        [self.figure, value, goal, self.floor]
            .into_iter()
            .chain(rest)
            .collect()
    }
}

/// `x` with three significant digits (none past the point from 100 on), in `unit` ("$" before).
fn with_unit(x: f64, unit: &str) -> String {
    let digits = if x.abs() >= 100.0 {
        0
    } else {
        (2.0 - x.abs().log10().floor()).max(0.0) as usize
    };
    match unit {
        "$" => format!("${}", num(x, digits)),
        _ => format!("{}{unit}", num(x, digits)),
    }
}

/// The summary table of a run's results: the goals of the scenarios it holds.
pub(crate) fn summary(r: &Value) -> Table {
    let judged = [fanout, delivery, others].iter().flat_map(|judge| judge(r));
    let held = judged.filter(|g| r.get(g.scenario).is_some_and(Value::is_object));
    let rows: Vec<Vec<String>> = held.chain(costs(r)).map(Goal::row).collect();
    let count = |status: &str| rows.iter().filter(|row| row[4] == status).count();
    let (met, missed, not_run) = (count("met"), count("**missed**"), count("not run"));
    Table {
        title: format!("summary: {met} met, {missed} missed, {not_run} not run"),
        header: vec![
            "figure", "value", "goal", "floor", "status", "kind", "scenario",
        ],
        rows,
    }
}

/// A number of the results at `pointer`.
fn at(r: &Value, pointer: &str) -> Option<f64> {
    r.pointer(pointer)?.as_f64()
}

/// The most of a field over an array of the results.
fn most(r: &Value, array: &str, field: &str) -> Option<f64> {
    let items = r.pointer(array)?.as_array()?.iter();
    items.filter_map(|x| at(x, field)).reduce(f64::max)
}

/// The fan-out at N = 10,000 and the default concurrency.
fn fanout(r: &Value) -> Vec<Goal> {
    let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY as u64;
    let sizes = r["fanout"]["results"].as_array().into_iter().flatten();
    let big = sizes.clone().find(|size| size["clients"] == 10_000);
    let cells = big
        .and_then(|b| b["sweep"].as_array())
        .into_iter()
        .flatten();
    let d = cells
        .clone()
        .find(|c| c["concurrency"] == default)
        .unwrap_or(&Value::Null);
    let (ms, floor) = (at(d, "/median_ms"), f(&d["floor_ms"]));
    let go = big.and_then(|b| at(b, "/go_baseline/measured_ms"));
    let what = format!("fan-out to 10,000, concurrency {default}, over TLS");
    let (peak, peak_goal) = (at(d, "/peak_rss_mb"), AtMost(t::BROADCASTER_PEAK_RSS_MB));
    vec![
        goal("fanout", what, ms, " ms", AtMost(t::FANOUT_10K_MS)).floor(floor, " (quota model)"),
        goal(
            "fanout",
            "the same ÷ its floor",
            ms.map(|ms| ms / floor),
            "×",
            AtMost(t::FANOUT_OVER_FLOOR),
        ),
        goal(
            "fanout",
            "the same against DevHive's Go broadcaster",
            go.zip(ms).map(|(go, ms)| go / ms),
            "×",
            AtLeast(t::GO_SPEEDUP),
        ),
        goal(
            "fanout",
            "broadcaster peak RSS, fan-out to 10,000",
            peak,
            " MB",
            peak_goal,
        ),
    ]
}

/// The broadcaster's CPU a post over TLS, cold and warm, and what the warm one means on Lambda.
fn delivery(r: &Value) -> Vec<Goal> {
    let tls = &r["delivery"]["transports"]["tls"];
    let (cold, warm) = (
        at(tls, "/cold_cpu_us_per_post"),
        at(tls, "/warm_cpu_us_per_post"),
    );
    // A cold invocation needs a connection per post in flight, none cheaper than a resumed one.
    let posts = f(&r["delivery"]["clients"]).max(1.0);
    let needed = f(&r["delivery"]["concurrency"]).min(posts);
    let resumed = f(&tls["client_floor"]["resumed_connection_us"]);
    let cold_floor = warm.map_or(f64::NAN, |w| w + needed * resumed / posts);
    let one_vcpu = warm.map(|w| 10_000.0 * w / 1000.0);
    let lambda = one_vcpu.map(|ms| ms / cost::vcpu_share(cost::BROADCASTER_MB));
    let on_lambda = format!(
        "fan-out to 10,000 on Lambda at {} MB, warm CPU",
        cost::BROADCASTER_MB
    );
    let (warm_goal, cold_goal) = (
        AtMost(t::WARM_CPU_US_PER_POST),
        AtMost(t::COLD_CPU_US_PER_POST),
    );
    vec![
        goal(
            "delivery",
            "broadcaster CPU a post over TLS, warm",
            warm,
            " µs",
            warm_goal,
        ),
        goal(
            "delivery",
            "the same, cold (start-up, handshakes)",
            cold,
            " µs",
            cold_goal,
        )
        .floor(cold_floor, " (resumed handshakes)"),
        goal(
            "delivery",
            on_lambda,
            lambda,
            " ms",
            AtMost(t::FANOUT_10K_LAMBDA_MODELLED_MS),
        )
        .floor(one_vcpu.unwrap_or(f64::NAN), " (one vCPU)")
        .modelled(),
    ]
}

/// The goals of the other scenarios, each on its figure in the results.
fn others(r: &Value) -> Vec<Goal> {
    let direct = f(&r["latency"]["direct"]["last_client"]["p99_ms"]);
    let delivered = at(r, "/throughput/delivered_ratio").map(|x| x * 100.0);
    let bootstrap = most(r, "/artifacts/functions", "/arm64_bootstrap_bytes").map(|b| b / 1e6);
    let start = most(
        r,
        "/artifacts/functions",
        "/start_to_first_request_ms/median",
    );
    let drain_floor = f(&r["drain"]["floor_invoke_free"]["rows_per_s"]);
    vec![
        goal(
            "latency",
            "commit → last of 1,000 clients over TLS, p99",
            at(r, "/latency/https/last_client/p99_ms"),
            " ms",
            AtMost(t::COMMIT_TO_CLIENT_P99_MS),
        )
        .floor(direct, " (posts in-process)"),
        goal(
            "capacity",
            "dev server memory per idle connection (the most)",
            most(r, "/capacity/steps", "/bytes_per_connection"),
            " B",
            AtMost(t::BYTES_PER_IDLE_CONNECTION),
        ),
        goal(
            "throughput",
            "100 events/s to 10,000 clients for 60 s: delivered",
            delivered,
            " %",
            AtLeast(t::DELIVERED_RATIO * 100.0),
        ),
        goal(
            "artifacts",
            "the largest arm64 `bootstrap`",
            bootstrap,
            " MB",
            AtMost(t::BOOTSTRAP_BYTES as f64 / 1e6),
        ),
        goal(
            "artifacts",
            "exec → first Runtime API request, median (the slowest)",
            start,
            " ms",
            AtMost(t::START_TO_FIRST_REQUEST_MS),
        ),
        goal(
            "recovery",
            "what the append adds to a fan-out to 1,000, p50",
            at(r, "/recovery/append/added_p50_ms"),
            " ms",
            AtMost(t::APPEND_ADDED_P50_MS),
        ),
        goal(
            "recovery",
            "a `subscribe` recovering 100 events, p99",
            at(r, "/recovery/subscribe_recovering_100/p99_ms"),
            " ms",
            AtMost(t::RECOVERING_SUBSCRIBE_P99_MS),
        ),
        goal(
            "drain",
            "the relay draining 100,000 rows",
            at(r, "/drain/aws_shaped/rows_per_s"),
            " rows/s",
            AtLeast(t::DRAIN_ROWS_PER_S),
        )
        .floor(drain_floor, " at most (Postgres alone)"),
    ]
}

/// The cost model's two goals: per million deliveries (the costliest audience) and a user-day.
fn costs(r: &Value) -> Vec<Goal> {
    let Some(m) = cost::model(r) else {
        return Vec::new();
    };
    let rows = m["per_million"].as_array().into_iter().flatten();
    let worst = rows.max_by(|a, b| f(&a["over_floor"]).total_cmp(&f(&b["over_floor"])));
    let day = &m["user_day"];
    let parts = [
        "events",
        "keepalive",
        "per_connection_messages",
        "connection_minutes",
    ];
    let api_gateway: f64 = parts.iter().map(|k| f(&day[*k])).sum();
    let audience = worst.map_or(Value::Null, |w| w["audience"].clone());
    let what = format!("cost a million deliveries ÷ the messages' (the most: {audience} an event)");
    let over = worst.and_then(|w| at(w, "/over_floor"));
    vec![
        goal("cost", what, over, "×", AtMost(t::COST_OVER_MESSAGE_FLOOR))
            .floor(1.0, " = $1.00")
            .modelled(),
        goal(
            "cost",
            "an active user-day",
            at(day, "/total"),
            "$",
            AtMost(t::USER_DAY_DOLLARS),
        )
        .floor(api_gateway, " (API Gateway alone)")
        .modelled(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_goal_is_judged_on_its_figure_and_a_skipped_run_is_not_run() {
        let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY;
        let r = json!({
            "fanout": {"results": [{"clients": 10000,
                "sweep": [{"concurrency": default, "median_ms": 1400.0, "floor_ms": 520.0,
                           "peak_rss_mb": 40.0}],
                "go_baseline": {"skipped": "long"}}]},
            "delivery": {"clients": 2000, "concurrency": 400,
                "transports": {"tls": {"cold_cpu_us_per_post": 320.0, "warm_cpu_us_per_post": 20.0,
                                       "client_floor": {"resumed_connection_us": 400.0}}}},
            "recovery": {"subscribe_recovering_100": {"p99_ms": 25.0}},
        });
        let summary = summary(&r);
        let row = |figure: &str| {
            let found = summary.rows.iter().find(|row| row[0].starts_with(figure));
            found
                .unwrap_or_else(|| panic!("no {figure} in {:?}", summary.rows))
                .clone()
        };
        assert_eq!(
            row("fan-out to 10,000")[1..5],
            ["1400 ms", "≤ 1500 ms", "520 ms (quota model)", "met"]
        );
        assert_eq!(
            row("the same ÷")[1..5],
            ["2.69×", "≤ 1.5×", "–", "**missed**"]
        );
        assert_eq!(
            row("the same against")[1..5],
            ["not run", "≥ 100×", "–", "not run"]
        );
        assert_eq!(row("broadcaster peak RSS")[4], "**missed**");
        assert_eq!(row("broadcaster CPU a post")[4], "met");
        // The cold floor: 20 µs warm + 400 connections × 400 µs ÷ 2,000 posts.
        assert_eq!(row("the same, cold")[3], "100 µs (resumed handshakes)");
        // 10,000 × 20 µs on 1,024/1,769 of a vCPU, labelled modelled.
        let lambda = row("fan-out to 10,000 on Lambda");
        assert_eq!(
            lambda[1..],
            [
                "346 ms",
                "≤ 1500 ms",
                "200 ms (one vCPU)",
                "met",
                "modelled",
                "delivery"
            ]
        );
        assert_eq!(row("a `subscribe` recovering")[4], "**missed**");
        // A scenario the results do not hold is not judged; a figure missing from one they
        // hold is not run; the cost needs the sweep's item size.
        assert_eq!(row("what the append adds")[4], "not run");
        assert_eq!(summary.rows.len(), 9);
        assert_eq!(summary.title, "summary: 3 met, 4 missed, 2 not run");
    }

    #[test]
    fn figures_keep_three_significant_digits() {
        assert_eq!(with_unit(0.000_789_9, "$"), "$0.000790");
        assert_eq!(with_unit(97.75, " %"), "97.8 %");
        assert_eq!(with_unit(5.966_728, " MB"), "5.97 MB");
        assert_eq!(with_unit(17_721.4, " rows/s"), "17721 rows/s");
    }

    #[test]
    fn the_summary_of_an_empty_run_is_empty() {
        assert!(summary(&json!({})).rows.is_empty());
    }
}
