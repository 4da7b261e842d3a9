//! Lambda `broadcaster`: a thin shell over `realtime::handlers::Broadcaster`.

use realtime::config::{Config, or_exit};
use realtime::handlers::Broadcaster;
use realtime::lambda_runtime::{self, Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtime::telemetry::init();
    let handler = or_exit(Broadcaster::from_config(&Config::from_env()).await);
    lambda_runtime::run(service_fn(|event| handler.handle(event))).await
}
