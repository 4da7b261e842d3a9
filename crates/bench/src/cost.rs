//! What a delivery and an active user-day cost, modelled from what this run measured.
//!
//! Nothing here is measured on AWS: the prices are list prices and the quantities come from the
//! run's own figures (the fan-out's duration and CPU, the connection item's size), from the
//! design (how many requests and writes each step makes) or from the durations below, each
//! labelled with where it comes from. Kept apart from the tables so the arithmetic is tested on
//! its own.

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

/// The broadcaster's memory, MB (template.yaml `BroadcasterFunction`). Its billed duration is
/// not a constant: the fan-out scenario's measured time and CPU, through [`lambda_ms`].
pub const BROADCASTER_MB: f64 = 1024.0;
/// Lambda's CPU share: one vCPU at 1,769 MB, in proportion below it.
pub const MB_PER_VCPU: f64 = 1769.0;

/// A handler the user-day bills per connection: its duration per invocation and its memory.
pub struct Handler {
    /// The route, as API Gateway names it.
    pub route: &'static str,
    /// The template's function (its `MemorySize` is [`Handler::mb`]).
    pub function: &'static str,
    /// Billed milliseconds per invocation.
    pub ms: f64,
    pub mb: f64,
    /// Where [`Handler::ms`] comes from.
    pub source: &'static str,
}

/// `$connect`: JWT check, membership, the connect-rate bucket, the connection's put, presence.
pub const CONNECT: Handler = Handler {
    route: "$connect",
    function: "ConnectFunction",
    ms: 80.0,
    mb: 256.0,
    source: "modelled: assumed, not measured (no AWS account here)",
};
/// `subscribe`: a read, a membership query, a conditional update.
pub const SUBSCRIBE: Handler = Handler {
    route: "subscribe",
    function: "SubscribeFunction",
    ms: 80.0,
    mb: 256.0,
    source: "modelled: assumed; the recovery scenario measured a subscribe recovering 100 events \
             at ~10 ms p50 on the dev server and DynamoDB Local",
};
/// `$disconnect`: a read, a delete, presence's offline posts sent at once.
pub const DISCONNECT: Handler = Handler {
    route: "$disconnect",
    function: "DisconnectFunction",
    ms: 80.0,
    mb: 128.0,
    source: "modelled: assumed, not measured; no sleep in it since the offline debounce moved \
             to the receivers",
};
/// The handlers of every connection, in the order a connection calls them.
pub const HANDLERS: [Handler; 3] = [CONNECT, SUBSCRIBE, DISCONNECT];
/// What `$disconnect` held on a user's last tab in a project before the offline debounce moved
/// to the receivers: presence's 3 s wait inside the function (modelled: the sleep's length,
/// billed whole).
pub const LAST_TAB_HOLD_BEFORE_MS: f64 = 3_000.0;

/// The least a broadcaster at `mb` runs for, from the wall time measured here (`ms`, on whole
/// cores) and its CPU time (`cpu_ms`), which on Lambda gets `mb / 1,769` of a vCPU.
pub fn lambda_ms(ms: f64, cpu_ms: f64, mb: f64) -> f64 {
    ms.max(cpu_ms / vcpu_share(mb))
}

/// The share of a vCPU Lambda gives a function of `mb` (single-threaded: one at most).
pub fn vcpu_share(mb: f64) -> f64 {
    (mb / MB_PER_VCPU).min(1.0)
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
/// The user's last tab closing in the day: the tab closed at its end. The 2-hour replacements
/// open the next connection before closing the old one, so theirs is never the last.
const LAST_TAB_CLOSES: f64 = 1.0;
/// Per connection: `subscribe`, `subscribed` and the reconnect hint.
const MESSAGES_PER_CONNECTION: f64 = 3.0;
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
    let billed = lambda_ms(ms, cpu_ms, BROADCASTER_MB).ceil();
    let broadcaster =
        events * (LAMBDA_REQUEST + billed / 1000.0 * BROADCASTER_MB / 1024.0 * LAMBDA_GB_SECOND);
    let reads = 1e6 * rru_per_delivery(item_bytes) * DYNAMODB_RRU;
    let appends = events * APPEND_WRU * DYNAMODB_WRU;
    let total = messages + broadcaster + reads + appends;
    json!({"audience": audience, "fanout_ms": ms, "cpu_ms": cpu_ms, "billed_ms": billed,
           "messages": messages, "broadcaster": broadcaster, "gsi_reads": reads,
           "appends": appends, "total": total, "over_floor": total / messages})
}

/// One active user-day, the fan-out to [`DAY_AUDIENCE`] billed at `fanout_ms`, each last-tab
/// `$disconnect` billed `last_tab_hold_ms` beyond its [`DISCONNECT`] duration.
pub fn user_day(fanout_ms: f64, item_bytes: f64, last_tab_hold_ms: f64) -> Value {
    let connections = DAY_MINUTES / CONNECTION_MINUTES;
    let pings = DAY_MINUTES / KEEPALIVE_MINUTES;
    let gb_s = |ms: f64, mb: f64| ms / 1000.0 * mb / 1024.0;
    let handlers_gb_s = connections * HANDLERS.iter().map(|h| gb_s(h.ms, h.mb)).sum::<f64>()
        + LAST_TAB_CLOSES * gb_s(last_tab_hold_ms, DISCONNECT.mb);
    let delivery_gb_s = DAY_EVENTS * gb_s(fanout_ms.ceil(), BROADCASTER_MB) / DAY_AUDIENCE as f64;
    let lambda_requests = connections * HANDLERS.len() as f64;
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
            lambda_requests * LAMBDA_REQUEST + (handlers_gb_s + delivery_gb_s) * LAMBDA_GB_SECOND,
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
    out.insert("last_tab_hold_ms".into(), json!(last_tab_hold_ms));
    Value::Object(out)
}

/// Both models from a run's results: the fan-out medians at the default concurrency and the
/// sweep's connection item size. `user_day` bills the handlers' durations of today,
/// `user_day_before` the same with a last-tab `$disconnect` held [`LAST_TAB_HOLD_BEFORE_MS`].
/// `None` when the run lacks either input.
pub fn model(results: &Value) -> Option<Value> {
    let item = results["sweep"]["item_bytes_p50"].as_f64()?;
    let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY as u64;
    // (wall ms, CPU ms) at the default concurrency; runs without the CPU column count none.
    let at = |n: u64| -> Option<(f64, f64)> {
        let c = results["fanout"]["results"]
            .as_array()?
            .iter()
            .find(|r| r["clients"] == n)?["sweep"]
            .as_array()?
            .iter()
            .find(|c| c["concurrency"] == default)?;
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
    let billed = lambda_ms(day_ms, day_cpu, BROADCASTER_MB);
    Some(json!({"item_bytes": item, "per_million": rows,
                "user_day": user_day(billed, item, 0.0),
                "user_day_before": user_day(billed, item, LAST_TAB_HOLD_BEFORE_MS)}))
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
        assert_eq!(lambda_ms(280.0, 100.0, 1769.0), 280.0);
        assert!(close(
            lambda_ms(280.0, 130.0, 512.0),
            130.0 / (512.0 / 1769.0)
        ));
        // Above 1,769 MB a single-threaded broadcaster still has one vCPU.
        assert_eq!(lambda_ms(100.0, 300.0, 3072.0), 300.0);
    }

    #[test]
    fn an_active_user_day_is_mostly_messages() {
        let d = user_day(280.0, 186.0, 0.0);
        assert_eq!(d["pings"], 60.0);
        assert_eq!(d["connections"], 4.0);
        assert!(close(d["keepalive"].as_f64().unwrap(), 0.000_120));
        // Lambda: 12 requests, 4 × (80 ms × 0.25 GB × 2 + 80 ms × 0.125 GB) and 500 × 0.28 s
        // × 1 GB ÷ 1,000 of the fan-outs: $0.0000024 + 0.34 GB-s × $0.0000133334.
        assert!(close(d["lambda"].as_f64().unwrap(), 0.000_006_93));
        assert!(close(d["total"].as_f64().unwrap(), 0.000_785_3));
    }

    #[test]
    fn a_last_tab_held_three_seconds_bills_them_once_a_day() {
        let now = user_day(280.0, 186.0, 0.0)["total"].as_f64().unwrap();
        let before = user_day(280.0, 186.0, LAST_TAB_HOLD_BEFORE_MS)["total"]
            .as_f64()
            .unwrap();
        // 3 s × 0.125 GB × $0.0000133334, once.
        assert!(close(before - now, 0.000_005));
    }

    #[test]
    fn the_model_bills_each_function_at_the_template_memory() {
        let template = include_str!("../../../template.yaml");
        let memory = |function: &str| -> Option<f64> {
            let header = format!("  {function}:");
            // The resource's lines: those after its name indented deeper than it.
            template
                .lines()
                .skip_while(|l| *l != header)
                .skip(1)
                .take_while(|l| l.is_empty() || l.starts_with("   "))
                .find_map(|l| l.trim().strip_prefix("MemorySize:"))?
                .trim()
                .parse()
                .ok()
        };
        for h in HANDLERS {
            assert_eq!(memory(h.function), Some(h.mb), "{}", h.function);
        }
        assert_eq!(memory("BroadcasterFunction"), Some(BROADCASTER_MB));
    }

    #[test]
    fn the_model_needs_the_fanout_and_the_item_size() {
        assert!(model(&json!({})).is_none());
        let default = realtime::delivery::fanout::DEFAULT_CONCURRENCY;
        let fanout = json!({"results": [{"clients": 1000, "sweep": [{"concurrency": default, "median_ms": 280.0}]}]});
        let m = model(&json!({"fanout": fanout, "sweep": {"item_bytes_p50": 186.0}})).unwrap();
        assert_eq!(m["per_million"].as_array().unwrap().len(), 1);
        assert!(close(m["user_day"]["total"].as_f64().unwrap(), 0.000_785_3));
        assert!(m["user_day_before"]["total"].as_f64() > m["user_day"]["total"].as_f64());
    }
}
