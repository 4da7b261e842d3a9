//! Lambda `disconnect`: a thin shell over `realtime::runtime::handlers::Disconnect`.

use realtime::lambda_runtime::{self, Error, service_fn};
use realtime::runtime::config::{Config, or_exit};
use realtime::runtime::handlers::Disconnect;

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtime::runtime::telemetry::init();
    let handler = or_exit(Disconnect::from_config(&Config::from_env()).await);
    lambda_runtime::run(service_fn(|event| handler.handle(event))).await
}
