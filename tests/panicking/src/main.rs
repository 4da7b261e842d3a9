//! A test fixture, never deployed: a Lambda whose handler panics when the event asks it to.
//! The functions' release builds rely on `panic = "unwind"` (Cargo.toml): lambda_runtime then
//! turns a handler's panic into that one invocation's error, and the process serves the next.
//! With `abort` the process would die with the invocation. tests/invoke.sh serves this binary
//! under `cargo lambda watch --release` (the workspace's release profile, as cargo-lambda
//! builds the functions) and checks that the invocation after a panic is the process's second.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Invocations this process has been handed, the panicking one included.
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let invocation = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
    if event.payload.get("panic") == Some(&Value::Bool(true)) {
        panic!("asked to panic (invocation {invocation})");
    }
    Ok(json!({ "invocation": invocation, "pid": std::process::id() }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
