//! Scenario 5, Artifacts: the arm64 `bootstrap` sizes from `make build`, and each function binary's time
//! from exec to its first Runtime API request.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::runtime_api::RuntimeApi;

use crate::BenchOptions;
use crate::procs::*;
use crate::stats::*;

pub async fn run(opts: &BenchOptions) -> Value {
    let functions = [
        "connect",
        "disconnect",
        "subscribe",
        "status",
        "broadcaster",
        "sweeper",
        "relay",
    ];
    let runs = if opts.quick { 5 } else { 20 };
    let mut rows = Vec::new();
    for f in functions {
        let arm64 = std::fs::metadata(format!("target/lambda/{f}/bootstrap"))
            .ok()
            .map(|m| m.len());
        let binary = sibling(f);
        let host = std::fs::metadata(&binary).ok().map(|m| m.len());
        let mut starts = Vec::new();
        for _ in 0..runs {
            let runtime = RuntimeApi::start(Vec::new());
            let mut cmd = Command::new(&binary);
            cmd.envs(services_env().iter().map(|(k, v)| (*k, v.as_str())))
                .env("AWS_LAMBDA_RUNTIME_API", &runtime.addr)
                .env("AWS_LAMBDA_FUNCTION_NAME", f)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("CONNECTIONS_TABLE", "bench")
                .env("JWT_SECRET", realtime::connection::auth::DEV_JWT_SECRET)
                .env("WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/dev")
                // The relay's pool connects on first use: an address nothing listens on.
                .env("DATABASE_URL", "postgres://bench@127.0.0.1:9/bench")
                .env("BROADCASTER_FUNCTION_NAME", "broadcaster")
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let t0 = Instant::now();
            let Ok(child) = cmd.spawn() else { break };
            let _process = Proc(child);
            if let Some(t1) = runtime.first_request(Duration::from_secs(10)) {
                starts.push(ms(t1.duration_since(t0)));
            }
        }
        eprintln!(
            "artifacts: {f}: arm64 {:?} bytes, start → first runtime request median {:.1} ms",
            arm64,
            median(&starts)
        );
        rows.push(json!({"function": f, "arm64_bootstrap_bytes": arm64, "host_binary_bytes": host,
                         "start_to_first_request_ms": {"median": median(&starts), "p90": percentile(&starts, 90.0), "runs": starts.len()}}));
    }
    json!({"functions": rows})
}
