//! What a delivery and an active user-day cost, modelled from what this run measured.
//!
//! Nothing here is measured on AWS: the prices are list prices and the quantities come from the
//! run's own figures (the fan-out's duration, the connection item's size) or from the design
//! (how many requests and writes each step makes). Kept apart from the report so the arithmetic
//! is tested on its own and every figure it prints says which inputs it used.

use serde_json::{Value, json};

/// List prices, us-east-1, 2026-11: arm64 Lambda per request and per GB-second; API Gateway
/// WebSocket per message (sent or received, 32 KB units) and per connection minute; DynamoDB
/// on-demand per write and read request unit.
pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
pub const APIGW_MESSAGE: f64 = 1.00 / 1e6;
pub const APIGW_CONNECTION_MINUTE: f64 = 0.25 / 1e6;
pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;

/// The broadcaster's memory (template.yaml `BroadcasterFunction`): 1,024 MB, chosen from the
/// measured CPU a post (BENCHMARKS.md, "The cost of one delivery"): 0.58 of a vCPU runs a
/// 10,000-connection fan-out's posts in under 1.5 s (modelled), and while the function is
/// CPU-bound its cost per post does not depend on the memory (GB-seconds = CPU seconds ×
/// 1,769 / 1,024 below one vCPU).
pub const BROADCASTER_GB: f64 = 1.0;
/// Lambda's CPU share: one vCPU at 1,769 MB, in proportion below it.
pub const MB_PER_VCPU: f64 = 1769.0;

/// The least a broadcaster at `gb` runs for, from the wall time measured here (`ms`, on whole
/// cores) and its CPU time (`cpu_ms`), which on Lambda gets `gb / 1.769` of a vCPU.
pub fn lambda_ms(ms: f64, cpu_ms: f64, gb: f64) -> f64 {
    let share = (gb * 1024.0 / MB_PER_VCPU).min(1.0);
    ms.max(cpu_ms / share)
}
/// One event's append to the events table: the head's `UpdateItem` (1 WRU) and a two-item
/// `TransactWriteItems` (2 × 2 WRU, items under 1 KB).
pub const APPEND_WRU: f64 = 5.0;

/// The active user-day: a tab open 8 hours receiving 500 events.
const DAY_MINUTES: f64 = 480.0;
const DAY_EVENTS: f64 = 500.0;
/// The web client's keepalive (`clients/web/src/index.ts`, 480000 ms), answered by API
/// Gateway's mock integration (no Lambda): a ping and a pong each.
const KEEPALIVE_MINUTES: f64 = 8.0;
/// API Gateway ends a connection after 2 hours; the sweeper's hint replaces it.
const CONNECTION_MINUTES: f64 = 120.0;
/// Per connection: `subscribe`, `subscribed` and the reconnect hint.
const MESSAGES_PER_CONNECTION: f64 = 3.0;
/// Per connection: `$connect`, `subscribe`, `$disconnect` invocations, each assumed 80 ms at
/// 256 MB (modelled: the handlers' durations on AWS were not measured here).
const HANDLERS_PER_CONNECTION: f64 = 3.0;
const HANDLER_GB_SECONDS: f64 = 0.080 * 0.25;
/// Per connection: the put, the subscribe update and the delete, each with its index writes.
const WRU_PER_CONNECTION: f64 = 10.0;
/// The audience a user-day's events are fanned out to (its share of each fan-out).
const DAY_AUDIENCE: u64 = 1_000;

/// GSI reads per delivery: eventually consistent, 0.5 RRU per 4 KB of items read.
fn rru_per_delivery(item_bytes: f64) -> f64 {
    item_bytes / 4096.0 * 0.5
}

/// Per million deliveries to events of `audience` clients, the fan-out measured at `ms` wall
/// and `cpu_ms` of the broadcaster's CPU (billed for the longer of the two on Lambda's share).
pub fn per_million(audience: u64, ms: f64, cpu_ms: f64, item_bytes: f64) -> Value {
    let events = 1e6 / audience as f64;
    let messages = 1e6 * APIGW_MESSAGE;
    let billed = lambda_ms(ms, cpu_ms, BROADCASTER_GB).ceil();
    let broadcaster =
        events * (LAMBDA_REQUEST + billed / 1000.0 * BROADCASTER_GB * LAMBDA_GB_SECOND);
    let reads = 1e6 * rru_per_delivery(item_bytes) * DYNAMODB_RRU;
    let appends = events * APPEND_WRU * DYNAMODB_WRU;
    let total = messages + broadcaster + reads + appends;
    json!({"audience": audience, "fanout_ms": ms, "cpu_ms": cpu_ms, "billed_ms": billed, "messages": messages, "broadcaster": broadcaster,
           "gsi_reads": reads, "appends": appends, "total": total,
           "over_floor": total / messages})
}

/// One active user-day, the fan-out to [`DAY_AUDIENCE`] billed at `fanout_ms`.
pub fn user_day(fanout_ms: f64, item_bytes: f64) -> Value {
    let connections = DAY_MINUTES / CONNECTION_MINUTES;
    let pings = DAY_MINUTES / KEEPALIVE_MINUTES;
    let lambda_requests = connections * HANDLERS_PER_CONNECTION;
    let delivery_gb_s =
        DAY_EVENTS * fanout_ms.ceil() / 1000.0 * BROADCASTER_GB / DAY_AUDIENCE as f64;
    let items = [
        ("events", DAY_EVENTS * APIGW_MESSAGE),
        ("keepalive", 2.0 * pings * APIGW_MESSAGE),
        (
            "per_connection_messages",
            connections * MESSAGES_PER_CONNECTION * APIGW_MESSAGE,
        ),
        ("connection_minutes", DAY_MINUTES * APIGW_CONNECTION_MINUTE),
        (
            "lambda",
            lambda_requests * LAMBDA_REQUEST
                + (lambda_requests * HANDLER_GB_SECONDS + delivery_gb_s) * LAMBDA_GB_SECOND,
        ),
        (
            "dynamodb",
            connections * WRU_PER_CONNECTION * DYNAMODB_WRU
                + DAY_EVENTS * rru_per_delivery(item_bytes) * DYNAMODB_RRU,
        ),
    ];
    let total: f64 = items.iter().map(|(_, v)| v).sum();
    let mut out: serde_json::Map<String, Value> = items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    out.insert("total".into(), json!(total));
    out.insert("pings".into(), json!(pings));
    out.insert("connections".into(), json!(connections));
    out.insert("audience".into(), json!(DAY_AUDIENCE));
    out.insert("fanout_ms".into(), json!(fanout_ms));
    Value::Object(out)
}

/// Both models from a run's results: the fan-out medians at the default concurrency and the
/// sweep's connection item size. `None` when the run lacks either.
pub fn model(results: &Value) -> Option<Value> {
    let item = results["sweep"]["item_bytes_p50"].as_f64()?;
    let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY as u64;
    let cell = |n: u64| -> Option<&Value> {
        results["fanout"]["results"]
            .as_array()?
            .iter()
            .find(|r| r["clients"] == n)?["sweep"]
            .as_array()?
            .iter()
            .find(|c| c["concurrency"] == default)
    };
    // (wall ms, CPU ms); runs without the CPU column count none.
    let at = |n: u64| -> Option<(f64, f64)> {
        let c = cell(n)?;
        Some((
            c["median_ms"].as_f64()?,
            c["broadcaster_cpu_ms"].as_f64().unwrap_or(0.0),
        ))
    };
    let rows: Vec<Value> = [100, 1_000, 10_000]
        .into_iter()
        .filter_map(|n| {
            let (ms, cpu) = at(n)?;
            Some(per_million(n, ms, cpu, item))
        })
        .collect();
    let (day_ms, day_cpu) = at(DAY_AUDIENCE)?;
    let day = user_day(lambda_ms(day_ms, day_cpu, BROADCASTER_GB), item);
    Some(json!({"item_bytes": item, "per_million": rows, "user_day": day}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < b * 0.01
    }

    #[test]
    fn a_million_deliveries_cost_the_messages_and_a_little_more() {
        // 1,000 clients per event, fanned out in 280 ms, items of 186 bytes: 1,000 events.
        let m = per_million(1_000, 280.0, 0.0, 186.0);
        assert!(close(m["messages"].as_f64().unwrap(), 1.0));
        // 1,000 × ($0.0000002 + 0.28 s × 1 GB × $0.0000133334)
        assert!(close(
            m["broadcaster"].as_f64().unwrap(),
            0.003_733_4 + 0.000_2
        ));
        // 1e6 × 186 / 4096 × 0.5 RRU × $0.125 / 1e6
        assert!(close(m["gsi_reads"].as_f64().unwrap(), 0.002_838));
        assert!(close(m["appends"].as_f64().unwrap(), 0.003_125));
        assert!(close(m["over_floor"].as_f64().unwrap(), 1.0099));
        // A smaller audience pays the per-event parts more often.
        assert!(per_million(100, 82.0, 0.0, 186.0)["total"].as_f64() > m["total"].as_f64());
        // CPU-bound: 200 ms of CPU on 1,024/1,769 of a vCPU bills 346 ms, not the 280 measured.
        let cpu = per_million(1_000, 280.0, 200.0, 186.0);
        assert!(close(cpu["billed_ms"].as_f64().unwrap(), 346.0));
        assert!(cpu["broadcaster"].as_f64() > m["broadcaster"].as_f64());
    }

    #[test]
    fn lambda_runs_at_least_as_long_as_its_cpu_share_allows() {
        assert_eq!(lambda_ms(280.0, 100.0, 1.769), 280.0);
        assert!(close(
            lambda_ms(280.0, 130.0, 0.5),
            130.0 / (512.0 / 1769.0)
        ));
        // Above 1,769 MB a single-threaded broadcaster still has one vCPU.
        assert_eq!(lambda_ms(100.0, 300.0, 3.0), 300.0);
    }

    #[test]
    fn an_active_user_day_is_mostly_messages() {
        let d = user_day(280.0, 186.0);
        assert_eq!(d["pings"], 60.0);
        assert_eq!(d["connections"], 4.0);
        assert!(close(d["keepalive"].as_f64().unwrap(), 0.000_120));
        assert!(close(d["total"].as_f64().unwrap(), 0.000_785));
    }

    #[test]
    fn the_model_needs_the_fanout_and_the_item_size() {
        assert!(model(&json!({})).is_none());
        let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY;
        let fanout = json!({"results": [{"clients": 1000, "sweep": [{"concurrency": default, "median_ms": 280.0}]}]});
        let m = model(&json!({"fanout": fanout, "sweep": {"item_bytes_p50": 186.0}})).unwrap();
        assert_eq!(m["per_million"].as_array().unwrap().len(), 1);
        assert!(close(m["user_day"]["total"].as_f64().unwrap(), 0.000_785));
    }
}
