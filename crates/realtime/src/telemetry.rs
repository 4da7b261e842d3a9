//! Structured logs: one JSON object per line, the format `aws logs tail` and CloudWatch Logs
//! Insights read field by field. Every binary calls [`init`] first; tests build the same
//! subscriber over a buffer with [`json_subscriber`] to assert on what is logged.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Build the project's JSON log subscriber writing to `writer`. Level from `RUST_LOG`
/// (default `info`). Event fields sit at the top level of each line (`connection_id`,
/// `user_id`, `project_id`, `route`, …) next to `level`, `timestamp` and `message`.
pub fn json_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(writer)
        .finish()
}

/// Install the JSON subscriber on stdout for the whole process (idempotent).
pub fn init() {
    let _ = tracing::subscriber::set_global_default(json_subscriber(std::io::stdout));
}
