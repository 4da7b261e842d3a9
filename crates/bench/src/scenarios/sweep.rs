//! What the reconnect sweep costs per 1,000 connection-hours, from a measured run: the release
//! `sweeper` under a local Runtime API, against DynamoDB Local and the dev server's Management
//! API (20 ms a post), with `due` connections in the current minute of `reconnect_at-index`
//! among `open` ones. Measured: the invocation's duration (event handed out → response, what
//! Lambda bills; each run is a fresh process, so a cold start's first invocation, init not
//! included), the hints the clients received, the index items the query read and their size,
//! peak RSS. `make bench SCENARIO=sweep`; prints its figures and the cost.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use testkit::runtime_api::{Outcome, RuntimeApi};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::cost::{APIGW_MESSAGE, DYNAMODB_RRU, DYNAMODB_WRU, LAMBDA_GB_SECOND, LAMBDA_REQUEST};
use crate::procs::*;
use crate::scenarios::fanout::{BURST, POST_LATENCY_MS, RATE_LIMIT, fanout_server};
use crate::stats::*;

/// The sweeper's memory (template.yaml `SweeperFunction`).
const SWEEPER_GB: f64 = 0.25;

/// One sweeper process, one scheduled invocation: (billed ms, response, peak RSS kB).
fn run_sweeper(table: &str, addr: std::net::SocketAddr) -> (f64, Value, u64) {
    let schedule =
        json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}});
    let runtime = RuntimeApi::start(vec![schedule]);
    let process = function(&sibling("sweeper"), 256, &runtime.addr, table, addr, &[]);
    let handed = runtime
        .handed_out(Duration::from_secs(30))
        .expect("the sweeper asked for its event");
    let outcome = runtime.outcome(Duration::from_secs(60));
    let billed = ms(handed.elapsed()).ceil();
    let peak = status_kb(process.0.id(), "VmHWM:");
    drop(process);
    match outcome {
        Outcome::Response(v) => (billed, v, peak),
        Outcome::Error(e) => panic!("the sweeper failed: {e}"),
    }
}

/// DynamoDB's size of an item: attribute names and values, strings as bytes, numbers as
/// ~1 byte per two digits plus one.
fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    _ => 8,
                }
        })
        .sum()
}

/// Put connections `ids` in epoch minute `minute` of `reconnect_at-index`.
async fn set_reconnect_at(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    ids: &[String],
    minute: i64,
) {
    for id in ids {
        dynamo
            .update_item()
            .table_name(table)
            .key(
                realtime::aws::dynamo::ATTR_CONNECTION_ID,
                AttributeValue::S(id.clone()),
            )
            .update_expression("SET #r = :m")
            .expression_attribute_names("#r", realtime::aws::dynamo::ATTR_RECONNECT_AT)
            .expression_attribute_values(":m", AttributeValue::N(minute.to_string()))
            .send()
            .await
            .expect("set reconnect_at");
    }
}

pub async fn run(opts: &BenchOptions) -> Value {
    let (open, dues, runs): (usize, &[usize], usize) = if opts.quick {
        (200, &[8, 100], 2)
    } else {
        (1000, &[8, 100, 1000], 5)
    };
    let (_server, addr, table) = fanout_server(&[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    eprintln!("sweep: {open} open connections");
    let _clients = clients(addr, Some(Uuid::new_v4()), open, Some(tx)).await;
    let sdk = realtime::runtime::config::sdk_config();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    // Connections only: the table also holds rate buckets and presence records (no user).
    let items: Vec<_> = scan_all(&dynamo, &table)
        .await
        .into_iter()
        .filter(|i| i.contains_key(realtime::aws::dynamo::ATTR_USER_ID))
        .collect();
    assert!(
        items.len() >= open,
        "{} items for {open} connections",
        items.len()
    );
    let ids: Vec<String> = items
        .iter()
        .filter_map(|i| {
            i.get(realtime::aws::dynamo::ATTR_CONNECTION_ID)?
                .as_s()
                .ok()
                .cloned()
        })
        .collect();
    let item_size = median(
        &items
            .iter()
            .map(|i| item_bytes(i) as f64)
            .collect::<Vec<_>>(),
    );

    let swept = Swept {
        dynamo: &dynamo,
        table: &table,
        ids: &ids,
        addr,
        item_size,
    };
    let mut rows = Vec::new();
    for &due in dues {
        rows.push(due_row(&swept, due, runs, &mut rx).await);
    }

    let (cost, total) = per_1000_connection_hours(&rows);
    let result = json!({
        "date": realtime::rfc3339(realtime::time::EpochMs::now()),
        "open": open, "runs": runs, "post_latency_ms": 20, "item_bytes_p50": item_size,
        "by_due": rows, "cost_per_1000_connection_hours": cost, "total": total,
    });
    result
}

/// What a sweep runs against: the table, its connections' ids, the dev server.
struct Swept<'a> {
    dynamo: &'a aws_sdk_dynamodb::Client,
    table: &'a str,
    ids: &'a [String],
    addr: std::net::SocketAddr,
    item_size: f64,
}

/// `runs` sweeps with `due` connections due in the current minute: the row of `due`.
async fn due_row(
    to: &Swept<'_>,
    due: usize,
    runs: usize,
    rx: &mut mpsc::UnboundedReceiver<Receipt>,
) -> Value {
    let (dynamo, table, ids, addr, item_size) =
        (to.dynamo, to.table, to.ids, to.addr, to.item_size);
    let mut billed = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs {
        // The due connections: `due` of them moved into the current minute (the sweeper reads
        // the clock itself; a run that lands in the next minute is repeated).
        let (response, ms_billed, peak) = loop {
            let minute = realtime::time::EpochMs::now().minute();
            set_reconnect_at(dynamo, table, &ids[..due], minute).await;
            while rx.try_recv().is_ok() {}
            let (ms_billed, response, peak) = tokio::task::spawn_blocking({
                let table = table.to_owned();
                move || run_sweeper(&table, addr)
            })
            .await
            .unwrap();
            if response["minute"].as_i64() == Some(minute) {
                break (response, ms_billed, peak);
            }
        };
        let (hints, _, _) = receipts(rx, due, Duration::from_secs(30), |r| {
            r.kind.as_deref() == Some("reconnect")
        })
        .await;
        assert_eq!(
            response["recipients"].as_u64(),
            Some(due as u64),
            "{response}"
        );
        assert_eq!(hints, due, "every due connection got its hint: {response}");
        billed.push(ms_billed);
        peaks.push(peak as f64);
    }
    // Move them out again so that the next size starts from none due.
    set_reconnect_at(dynamo, table, &ids[..due], 0).await;
    let p50 = median(&billed);
    let rru = ((due as f64 * item_size) / 4096.0).ceil().max(1.0) * 0.5;
    let floor = fanout_floor_ms(
        due,
        realtime::delivery::fanout::DEFAULT_CONCURRENCY,
        POST_LATENCY_MS as f64,
        f64::from(RATE_LIMIT),
        BURST as usize,
    );
    eprintln!(
        "  {due:>5} due: billed p50 {p50:.0} ms (model floor {floor:.0} ms), query {rru} RRU, \
         peak RSS {:.1} MB",
        median(&peaks) / 1024.0
    );
    json!({"due": due, "runs_billed_ms": billed, "billed_p50_ms": p50,
           "floor_ms": floor, "query_rru": rru,
           "peak_rss_mb": median(&peaks) / 1024.0})
}

/// Every item of `table`, page after page.
async fn scan_all(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = dynamo
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the bench table");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// The sweep's cost per 1,000 connection-hours (modelled from the 8-due row) and its total.
fn per_1000_connection_hours(rows: &[Value]) -> (Value, f64) {
    // Per 1,000 connection-hours, each connection living the full 2 hours (the most hints):
    // 500 hints an hour, ≈ 8.3 a minute, so the 8-due run's duration is a minute's.
    let minute_ms = rows[0]["billed_p50_ms"].as_f64().unwrap();
    let minute_rru = rows[0]["query_rru"].as_f64().unwrap();
    let cost = json!({
        "hints": 500.0 * APIGW_MESSAGE,
        "index_writes": 1000.0 * DYNAMODB_WRU,
        "index_queries": 60.0 * minute_rru * DYNAMODB_RRU,
        "invocations": 60.0 * LAMBDA_REQUEST,
        "compute": 60.0 * minute_ms / 1000.0 * SWEEPER_GB * LAMBDA_GB_SECOND,
    });
    let total: f64 = cost
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_f64)
        .sum();
    eprintln!(
        "  per 1,000 connection-hours: ${total:.6} (hints ${:.6}, index writes ${:.6}, queries ${:.7}, \
         invocations ${:.6}, compute ${:.7}); floor: the hints, $0.000500",
        cost["hints"].as_f64().unwrap(),
        cost["index_writes"].as_f64().unwrap(),
        cost["index_queries"].as_f64().unwrap(),
        cost["invocations"].as_f64().unwrap(),
        cost["compute"].as_f64().unwrap(),
    );
    (cost, total)
}
