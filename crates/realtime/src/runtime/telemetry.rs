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
    subscriber_with(writer, std::env::var("RUST_LOG").ok().as_deref())
}

/// [`json_subscriber`] with the directives given rather than read from `RUST_LOG`.
fn subscriber_with<W>(
    writer: W,
    directives: Option<&str>,
) -> impl tracing::Subscriber + Send + Sync + use<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        // The builder's own default stops at INFO; the directives below do the filtering.
        .with_max_level(tracing::Level::TRACE)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
        .with(level_filter(directives))
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
    use super::{level_filter, subscriber_with};
    use std::sync::{Arc, Mutex};
    use tracing::Level;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn logged(directives: Option<&str>) -> String {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(subscriber_with(buffer.clone(), directives), || {
            tracing::debug!(step = 1, "a debug line");
            tracing::info!(step = 2, "an info line");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn rust_log_debug_writes_debug_lines() {
        let debug = logged(Some("debug"));
        assert!(
            debug.contains("a debug line") && debug.contains("an info line"),
            "{debug}"
        );
        let per_target = logged(Some("info,realtime=debug"));
        assert!(per_target.contains("a debug line"), "{per_target}");
        let default = logged(None);
        assert!(
            !default.contains("a debug line") && default.contains("an info line"),
            "{default}"
        );
    }

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
