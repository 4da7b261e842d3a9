//! Structured logs: one JSON object per line, the format `aws logs tail` and CloudWatch Logs
//! Insights read field by field. Every binary calls [`init`] first; tests build the same
//! subscriber over a buffer with [`json_subscriber`] to assert on what is logged.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Build the project's JSON log subscriber writing to `writer`. Level from `RUST_LOG`
/// (default `info`): a level (`debug`) and/or per-target levels (`info,realtime::relay=debug`);
/// span and field filters are not supported (they would link a regex engine into every
/// Lambda). Event fields sit at the top level of each line (`connection_id`,
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
        .with_writer(writer)
        .finish()
        .with(level_filter(std::env::var("RUST_LOG").ok().as_deref()))
}

/// `RUST_LOG`'s directives, or `info` when unset or unparsable.
fn level_filter(directives: Option<&str>) -> Targets {
    directives
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Install the JSON subscriber on stdout for the whole process (idempotent).
pub fn init() {
    let _ = tracing::subscriber::set_global_default(json_subscriber(std::io::stdout));
}

#[cfg(test)]
mod tests {
    use super::level_filter;
    use tracing::Level;

    #[test]
    fn rust_log_sets_the_level_default_info() {
        let unset = level_filter(None);
        assert!(unset.would_enable("realtime::relay", &Level::INFO));
        assert!(!unset.would_enable("realtime::relay", &Level::DEBUG));

        let debug = level_filter(Some("debug"));
        assert!(debug.would_enable("hyper_util", &Level::DEBUG));

        let per_target = level_filter(Some("warn,realtime::relay=debug"));
        assert!(per_target.would_enable("realtime::relay", &Level::DEBUG));
        assert!(!per_target.would_enable("realtime::delivery::fanout", &Level::INFO));
        assert!(per_target.would_enable("realtime::delivery::fanout", &Level::WARN));

        let garbage = level_filter(Some("=[{bad"));
        assert!(garbage.would_enable("realtime", &Level::INFO));
        assert!(!garbage.would_enable("realtime", &Level::DEBUG));
    }
}
