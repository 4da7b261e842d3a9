//! Lambda `relay`: a thin shell over `realtime::runtime::handlers::RelayFunction` (every
//! minute: drain the Postgres outbox into broadcaster invocations until the deadline).

use realtime::lambda_runtime::{self, Error, service_fn};
use realtime::runtime::config::{Config, or_exit};
use realtime::runtime::handlers::RelayFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtime::runtime::telemetry::init();
    let handler = or_exit(RelayFunction::from_config(&Config::from_env()).await);
    lambda_runtime::run(service_fn(|event| handler.handle(event))).await
}
