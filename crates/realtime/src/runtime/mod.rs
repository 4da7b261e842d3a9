//! Running the library: the environment read once ([`config`]), the one wiring from
//! configuration to handlers ([`wiring`]), the Lambda entry points ([`handlers`]) and the
//! deadline they work to ([`deadline`]), and JSON logs ([`telemetry`]); each function's
//! `main` is [`crate::lambda_main!`].

pub mod config;
pub mod deadline;
pub mod handlers;
pub mod secrets;
pub mod telemetry;
pub mod wiring;

/// The tokio runtime a function runs on: one thread. Lambda runs one invocation at a time,
/// below 1,769 MB on less than one vCPU, and a multi-threaded runtime spent ~40 % more CPU per
/// post (docs/performance.md "One thread for every function").
pub fn function_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A Lambda function's `main`: JSON logs, its handler built from the environment (or one clear
/// line and exit 1), then the Lambda runtime's loop, on [`function_runtime`].
/// `realtime::lambda_main!(realtime::runtime::handlers::Connect);` is all of `functions/connect`.
#[macro_export]
macro_rules! lambda_main {
    ($handler:ty) => {
        fn main() -> Result<(), $crate::lambda_runtime::Error> {
            $crate::runtime::function_runtime()?.block_on(async {
                $crate::runtime::telemetry::init();
                let config = $crate::runtime::config::Config::from_env();
                let handler =
                    $crate::runtime::config::or_exit(<$handler>::from_config(&config).await);
                let service = $crate::lambda_runtime::service_fn(|event| handler.handle(event));
                $crate::lambda_runtime::run(service).await
            })
        }
    };
}
