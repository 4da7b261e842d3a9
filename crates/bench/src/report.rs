//! What the bench prints after a run: the goals' summary, then each scenario's tables, in
//! markdown, read off `results.json`. BENCHMARKS.md is written by hand from them; nothing here
//! writes prose or a file.

use serde_json::{Value, json};

use crate::cost;
use crate::goals;
use crate::stats::f;
use crate::table::{Table, num};

/// A column: its header, the JSON pointer of its cell in a row, and the cell's decimals.
type Col = (&'static str, &'static str, usize);

/// A table of `rows`, one cell per column of `cols`, its title `what` with when and how
/// `scenario` measured it.
fn table(
    scenario: &Value,
    what: &str,
    rows: impl IntoIterator<Item = Value>,
    cols: &[Col],
) -> Table {
    let cells = |row: Value| {
        let at = |(_, pointer, digits): &Col| cell(row.pointer(pointer), *digits);
        cols.iter().map(at).collect()
    };
    Table {
        title: title(scenario, what),
        header: cols.iter().map(|c| c.0).collect(),
        rows: rows.into_iter().map(cells).collect(),
    }
}

/// A value as a cell: numbers with `digits` decimals, arrays as lists, `–` when absent.
fn cell(v: Option<&Value>, digits: usize) -> String {
    match v {
        Some(Value::Number(x)) => num(x.as_f64().unwrap_or(f64::NAN), digits),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x), digits))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "–".into(),
        Some(other) => other.to_string(),
    }
}

/// The elements of an array of the results, cloned (none when it is not one).
fn each(v: &Value) -> impl Iterator<Item = Value> + '_ {
    v.as_array().into_iter().flatten().cloned()
}

/// "what (date, `command`)": a title naming when and how its figures were measured.
fn title(scenario: &Value, what: &str) -> String {
    let date = scenario["date"].as_str().unwrap_or("date not recorded");
    let command = scenario["command"].as_str().unwrap_or("make bench");
    format!("{what} ({date}, `{command}`)")
}

/// Every table of a run's results: the summary first, then each scenario's present.
pub(crate) fn tables(r: &Value) -> Vec<Table> {
    type Scenario = fn(&Value) -> Vec<Table>;
    let scenarios: [(&str, Scenario); 12] = [
        ("fanout", fanout),
        ("delivery", delivery),
        ("delivery_sdk", delivery),
        ("latency", latency),
        ("capacity", capacity),
        ("throughput", throughput),
        ("artifacts", artifacts),
        ("recovery", recovery),
        ("drain", drain),
        ("sweep", sweep),
        ("presence", presence),
        ("compare", compare),
    ];
    let mut out = vec![goals::summary(r)];
    for (key, tables) in scenarios {
        if let Some(v) = r.get(key).filter(|v| v.is_object()) {
            out.extend(tables(v));
        }
    }
    out.extend(
        cost::model(r)
            .map(|m| costs(&m, &r["fanout"]))
            .into_iter()
            .flatten(),
    );
    out
}

/// The tables on stdout, under a line naming the machine.
pub(crate) fn print(r: &Value) {
    let m = &r["machine"];
    let quick = r["quick"] == true;
    println!(
        "# devhive-bench results, {}: {} CPUs, {}, {} GB, {}/{}{}\n",
        cell(r.get("date"), 0),
        m["cpus"],
        cell(m.get("cpu"), 0),
        num(f(&m["memory_gb"]), 0),
        cell(m.get("os"), 0),
        cell(m.get("arch"), 0),
        if quick {
            " (BENCH_QUICK: reduced sizes, not the goals' conditions)"
        } else {
            ""
        }
    );
    for table in tables(r) {
        print!("{table}");
    }
}

fn fanout(fan: &Value) -> Vec<Table> {
    let cols = [
        ("concurrency", "/c", 0),
        ("median ms", "/at/median_ms", 0),
        ("floor ms", "/at/floor_ms", 0),
        ("× floor", "/ratio", 2),
        ("runs ms", "/at/runs_ms", 0),
        ("delivered (min)", "/at/delivered_min", 0),
        ("429s (runs)", "/at/throttled_runs", 0),
        ("CPU ms", "/at/broadcaster_cpu_ms", 0),
        ("CPU µs a post", "/us", 0),
        ("peak RSS MB", "/at/peak_rss_mb", 1),
    ];
    let mut out = Vec::new();
    for size in each(&fan["results"]) {
        let n = f(&size["clients"]);
        let cells = each(&size["sweep"]).chain(size.get("plain_http").cloned());
        let rows = cells.map(|c| {
            let plain = if c["transport"] == "http" {
                " (plain HTTP)"
            } else {
                ""
            };
            let ratio = f(&c["median_ms"]) / f(&c["floor_ms"]);
            let us = f(&c["broadcaster_cpu_ms"]) * 1000.0 / n;
            json!({"c": format!("{}{plain}", c["concurrency"]), "ratio": ratio, "us": us, "at": c})
        });
        let what = format!("fanout, N = {n}, over TLS; plain HTTP in its row");
        out.push(table(fan, &what, rows, &cols));
    }
    let baselines = each(&fan["results"]).map(|size| {
        let sweep = each(&size["sweep"]).map(|c| f(&c["median_ms"]));
        let best = sweep.fold(f64::INFINITY, f64::min);
        let go = f(&size["go_baseline"]["measured_ms"]);
        json!({"at": size, "faster": go / best})
    });
    let cols = [
        ("N", "/at/clients", 0),
        ("index read ms", "/at/index_read/median_ms", 0),
        ("items", "/at/index_read/items", 0),
        ("pages", "/at/index_read/pages", 0),
        (
            "Go broadcaster's algorithm ms",
            "/at/go_baseline/measured_ms",
            0,
        ),
        ("its deliveries", "/at/go_baseline/delivered", 0),
        ("best cell, × faster", "/faster", 0),
    ];
    let what = "fanout: the index read alone; DevHive's Go broadcaster";
    out.push(table(fan, what, baselines, &cols));
    out.extend(lambda_model(fan));
    out
}

/// The fan-out to 10,000 at the default concurrency on Lambda: its CPU on a vCPU's share.
fn lambda_model(fan: &Value) -> Option<Table> {
    let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY as u64;
    let size = each(&fan["results"]).find(|r| r["clients"] == 10_000)?;
    let cell = each(&size["sweep"]).find(|c| c["concurrency"] == default)?;
    let cpu = f(&cell["broadcaster_cpu_ms"]);
    let at = |mb: f64| json!([mb, cost::vcpu_share(mb), cpu, cost::lambda_ms(0.0, cpu, mb)]);
    let cols = [
        ("memory MB", "/0", 0),
        ("vCPU share", "/1", 2),
        ("CPU ms here", "/2", 0),
        ("least ms", "/3", 0),
    ];
    let what = "fanout to 10,000 at the default concurrency on Lambda, modelled from its CPU here";
    let rows = [at(cost::BROADCASTER_MB), at(cost::MB_PER_VCPU)];
    Some(table(fan, what, rows, &cols))
}

/// A `delivery` run: this build's (`delivery`), or the SDK sender's kept from before the lean
/// sender (`delivery_sdk`, with its commit).
fn delivery(d: &Value) -> Vec<Table> {
    let sender = if d["sender"] == "sdk" {
        "SDK `PostToConnection`"
    } else {
        "lean sender"
    };
    let commit = d["commit"]
        .as_str()
        .map_or(String::new(), |c| format!(", commit {c}"));
    let transports = [("tls", "TLS"), ("http", "plain HTTP")];
    let of =
        |(key, label): (&str, &str)| Some(json!({"over": label, "at": d["transports"].get(key)?}));
    let rows = transports.into_iter().filter_map(of);
    let cols = [
        ("posting over", "/over", 0),
        ("cold µs", "/at/cold_cpu_us_per_post", 0),
        ("cold runs", "/at/cold_cpu_us_per_post_runs", 0),
        ("warm µs", "/at/warm_cpu_us_per_post", 0),
        ("warm runs", "/at/warm_cpu_us_per_post_runs", 0),
        ("connections cold", "/at/cold_connections", 0),
        ("warm", "/at/warm_new_connections", 0),
        ("dev server µs cold", "/at/server_cold_cpu_us_per_post", 0),
        ("warm", "/at/server_warm_cpu_us_per_post", 0),
        ("delivered (min)", "/at/delivered_min", 0),
    ];
    let what = format!(
        "delivery, {sender}{commit}: broadcaster CPU a post, N = {}, concurrency {}, {} runs",
        d["clients"], d["concurrency"], d["repeats"]
    );
    let floor = |(key, label): (&str, &str)| {
        Some(json!({"over": label, "at": d["transports"][key].get("client_floor")?}))
    };
    let floors: Vec<Value> = transports.into_iter().filter_map(floor).collect();
    let floor_cols = [
        ("transport", "/over", 0),
        ("new connection, full handshake µs", "/at/connection_us", 0),
        ("resumed µs", "/at/resumed_connection_us", 0),
        ("a request, kept alive µs", "/at/request_us", 0),
    ];
    let client = "delivery: the broadcaster's HTTP client alone, CPU";
    let mut out = vec![table(d, &what, rows, &cols)];
    if !floors.is_empty() {
        out.push(table(d, client, floors, &floor_cols));
    }
    out
}

fn latency(l: &Value) -> Vec<Table> {
    let runs = ["https", "http", "direct"]
        .into_iter()
        .filter_map(|d| Some((d, l.get(d)?)));
    let rows = runs.flat_map(|(d, run)| {
        [
            ("first", &run["first_client"]),
            ("last", &run["last_client"]),
        ]
        .map(
            |(which, at)| json!({"d": d, "which": which, "at": at, "lost": run["lost_deliveries"]}),
        )
    });
    let cols = [
        ("delivery", "/d", 0),
        ("client", "/which", 0),
        ("p50 ms", "/at/p50_ms", 2),
        ("p99 ms", "/at/p99_ms", 2),
        ("max ms", "/at/max_ms", 2),
        ("lost", "/lost", 0),
    ];
    vec![table(l, "latency: commit to client", rows, &cols)]
}

fn capacity(c: &Value) -> Vec<Table> {
    let what = format!(
        "capacity: idle connections; RSS before {} MB, open files at most {}",
        num(f(&c["baseline_rss_mb"]), 1),
        c["open_file_limit"]
    );
    let cols = [
        ("connections", "/connections", 0),
        ("server RSS MB", "/rss_mb", 1),
        ("bytes per connection", "/bytes_per_connection", 0),
    ];
    vec![table(c, &what, each(&c["steps"]), &cols)]
}

fn throughput(t: &Value) -> Vec<Table> {
    let row = json!({"at": t, "percent": f(&t["delivered_ratio"]) * 100.0});
    let cols = [
        ("clients", "/at/clients", 0),
        ("projects", "/at/projects", 0),
        ("events/s", "/at/events_per_s", 0),
        ("s", "/at/seconds", 0),
        ("delivered", "/at/delivered", 0),
        ("expected", "/at/expected", 0),
        ("%", "/percent", 2),
        ("p50 ms", "/at/p50_ms", 1),
        ("p99 ms", "/at/p99_ms", 1),
        ("max ms", "/at/max_ms", 1),
        ("dev server CPU %", "/at/dev_server_cpu_percent", 0),
        ("RSS MB (peak)", "/at/dev_server_peak_rss_mb", 0),
    ];
    vec![table(t, "throughput: sustained load", [row], &cols)]
}

fn artifacts(a: &Value) -> Vec<Table> {
    let cols = [
        ("function", "/function", 0),
        ("bootstrap bytes", "/arm64_bootstrap_bytes", 0),
        (
            "start → first request ms, median",
            "/start_to_first_request_ms/median",
            1,
        ),
        ("p90", "/start_to_first_request_ms/p90", 1),
    ];
    let what = "artifacts: arm64 bootstrap sizes, start-up on this machine";
    vec![table(a, what, each(&a["functions"]), &cols)]
}

fn recovery(v: &Value) -> Vec<Table> {
    let cols = [
        ("fan-out p50 ms, with the append", "/append/with_p50_ms", 1),
        ("without", "/append/without_p50_ms", 1),
        ("added", "/append/added_p50_ms", 1),
        (
            "`subscribe` recovering 100, p50 ms",
            "/subscribe_recovering_100/p50_ms",
            1,
        ),
        ("p99 ms", "/subscribe_recovering_100/p99_ms", 1),
        ("subscribes", "/subscribe_recovering_100/runs", 0),
    ];
    let what = format!(
        "recovery: the append on a fan-out to {} ({} rounds ABBA)",
        v["clients"], v["rounds"]
    );
    vec![table(v, &what, [v.clone()], &cols)]
}

fn drain(d: &Value) -> Vec<Table> {
    let cols = [
        ("rows/s", "/aws_shaped/rows_per_s", 0),
        ("s", "/aws_shaped/seconds", 2),
        (
            "floor: Postgres alone, rows/s",
            "/floor_invoke_free/rows_per_s",
            0,
        ),
        ("s", "/floor_invoke_free/seconds", 2),
        ("frames received", "/frames_received", 0),
        ("the last after s", "/last_frame_after_s", 2),
        ("dead letters", "/dead_letters", 0),
    ];
    let what = format!("drain: {} rows over {} projects", d["rows"], d["projects"]);
    vec![table(d, &what, [d.clone()], &cols)]
}

fn sweep(s: &Value) -> Vec<Table> {
    let cols = [
        ("due in the minute", "/due", 0),
        ("billed ms (p50)", "/billed_p50_ms", 0),
        ("floor ms", "/floor_ms", 0),
        ("index query RRU", "/query_rru", 1),
        ("peak RSS MB", "/peak_rss_mb", 1),
    ];
    let cost_cols = [
        ("item bytes", "/item_bytes_p50", 0),
        ("hints", "/cost_per_1000_connection_hours/hints", 7),
        (
            "index writes",
            "/cost_per_1000_connection_hours/index_writes",
            7,
        ),
        (
            "index queries",
            "/cost_per_1000_connection_hours/index_queries",
            7,
        ),
        (
            "invocations",
            "/cost_per_1000_connection_hours/invocations",
            7,
        ),
        ("compute", "/cost_per_1000_connection_hours/compute", 7),
        ("total", "/total", 5),
    ];
    let what = format!(
        "sweep: due connections among {} open, {} runs each",
        s["open"], s["runs"]
    );
    let cost = "sweep: cost per 1,000 connection-hours, modelled, $";
    vec![
        table(s, &what, each(&s["by_due"]), &cols),
        table(s, cost, [s.clone()], &cost_cols),
    ]
}

fn presence(p: &Value) -> Vec<Table> {
    let rows = each(&p["rows"]).map(|row| {
        let projects = row["projects"].as_u64().unwrap_or(1).max(1);
        let layout = format!(
            "{} × {projects}",
            row["users"].as_u64().unwrap_or(0) / projects
        );
        let run = if row.get("skipped").is_some() {
            "not run (`BENCH_LONG=1`)"
        } else {
            "run"
        };
        json!({"layout": layout, "run": run, "at": row})
    });
    let cols = [
        ("users × projects", "/layout", 0),
        ("`PRESENCE_MAX_SUBSCRIBERS`", "/at/bound", 0),
        ("run", "/run", 0),
        ("connected", "/at/connected", 0),
        ("in s", "/at/connect_s", 1),
        ("presence posts", "/at/presence_posts", 0),
        ("modelled, one after another", "/at/predicted_posts", 0),
        ("modelled, no bound", "/at/unbounded_posts", 0),
    ];
    vec![table(p, "presence: users connecting at once", rows, &cols)]
}

fn compare(c: &Value) -> Vec<Table> {
    let cols = [
        ("clients", "/clients", 0),
        ("baseline median ms", "/baseline_median_ms", 0),
        ("this build ms", "/current_median_ms", 0),
        ("ratio", "/ratio", 3),
    ];
    let what = "compare: two broadcaster builds on the same clients, ABBA";
    vec![table(c, what, [c.clone()], &cols)]
}

/// The cost model's tables: per million deliveries, the durations billed, the user-day. Its
/// inputs are the fan-out's (and the sweep's item size): its date and command are theirs.
fn costs(m: &Value, fan: &Value) -> Vec<Table> {
    let cols = [
        ("clients per event", "/audience", 0),
        ("fan-out ms here", "/fanout_ms", 0),
        ("CPU ms here", "/cpu_ms", 0),
        ("billed ms on Lambda", "/billed_ms", 0),
        ("messages", "/messages", 3),
        ("broadcaster", "/broadcaster", 4),
        ("GSI reads", "/gsi_reads", 4),
        ("event appends", "/appends", 4),
        ("total", "/total", 3),
        ("× floor", "/over_floor", 3),
    ];
    let handlers = cost::HANDLERS
        .iter()
        .map(|h| json!([h.route, h.function, h.ms, h.mb, h.source]));
    let source = "modelled from the fanout scenario: its time, or its CPU on a vCPU's share";
    let broadcaster = ["the fan-out to 1,000", "BroadcasterFunction"];
    let fanout = json!([
        broadcaster[0],
        broadcaster[1],
        m["user_day"]["fanout_ms"],
        cost::BROADCASTER_MB,
        source
    ]);
    let billed_cols = [
        ("route", "/0", 0),
        ("function", "/1", 0),
        ("ms an invocation", "/2", 0),
        ("MB", "/3", 0),
        ("from", "/4", 0),
    ];
    let (now, before) = (&m["user_day"], &m["user_day_before"]);
    let items = [
        "events",
        "keepalive",
        "per_connection_messages",
        "connection_minutes",
    ];
    let day = items
        .iter()
        .chain(&["lambda", "dynamodb", "total"])
        .map(|k| json!([k, now[k], before[k]]));
    let day_cols = [
        ("item", "/0", 0),
        ("now", "/1", 7),
        ("a last-tab `$disconnect` held 3 s", "/2", 7),
    ];
    vec![
        table(
            fan,
            "cost, modelled: per million deliveries, $",
            each(&m["per_million"]),
            &cols,
        ),
        table(
            fan,
            "cost, modelled: the durations a user-day bills",
            handlers.chain([fanout]),
            &billed_cols,
        ),
        table(fan, "cost, modelled: an active user-day, $", day, &day_cols),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The results of the run BENCHMARKS.md is written from, committed beside it.
    fn committed() -> Value {
        serde_json::from_str(include_str!("../../../bench-results.json")).expect("JSON")
    }

    #[test]
    fn a_table_is_markdown_with_its_title() {
        let rows = [json!({"a": 1.25, "b": [1, 2]}), json!({})];
        let t = table(
            &json!({"date": "d"}),
            "t",
            rows,
            &[("a", "/a", 1), ("b", "/b", 0)],
        );
        assert_eq!(
            t.to_string(),
            "### t (d, `make bench`)\n\n| a | b |\n|---|---|\n| 1.2 | 1, 2 |\n| – | – |\n\n"
        );
    }

    #[test]
    fn every_scenario_of_a_full_run_has_its_tables_and_every_cell_is_filled() {
        let tables = tables(&committed());
        let scenarios = [
            "fanout",
            "delivery",
            "latency",
            "capacity",
            "throughput",
            "artifacts",
            "recovery",
            "drain",
            "sweep",
            "presence",
            "cost",
        ];
        for what in scenarios {
            assert!(
                tables.iter().any(|t| t.title.starts_with(what)),
                "no {what} table"
            );
        }
        // A pointer that names no field shows as `–` everywhere; a column of only `–` is one.
        for t in &tables {
            for (i, header) in t.header.iter().enumerate() {
                assert!(
                    t.rows.iter().any(|row| row[i] != "–"),
                    "{}: {header} is empty",
                    t.title
                );
            }
        }
    }

    #[test]
    fn a_full_run_judges_every_goal_of_targets() {
        let goals = include_str!("targets.rs").matches("\npub const ").count();
        assert_eq!(goals::summary(&committed()).rows.len(), goals);
    }
}
