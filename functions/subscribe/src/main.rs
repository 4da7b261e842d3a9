//! Lambda `subscribe`: a thin shell over `realtime::runtime::handlers::Messages`.

use realtime::lambda_runtime::{self, Error, service_fn};
use realtime::runtime::config::{Config, or_exit};
use realtime::runtime::handlers::Messages;

// One thread: Lambda runs one invocation at a time, below 1,769 MB on less than one vCPU, and
// a multi-threaded runtime spent ~40 % more CPU per post (BENCHMARKS.md, "Fan-out").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    realtime::runtime::telemetry::init();
    let handler = or_exit(Messages::from_config(&Config::from_env()).await);
    lambda_runtime::run(service_fn(|event| handler.handle(event))).await
}
