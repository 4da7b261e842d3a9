//! Lambda `connect`: a thin shell over `realtime::runtime::handlers::Connect`.

use realtime::lambda_runtime::{self, Error, service_fn};
use realtime::runtime::config::{Config, or_exit};
use realtime::runtime::handlers::Connect;

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtime::runtime::telemetry::init();
    let handler = or_exit(Connect::from_config(&Config::from_env()).await);
    lambda_runtime::run(service_fn(|event| handler.handle(event))).await
}
