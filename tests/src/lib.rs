//! End-to-end helpers: where the workspace's built binaries are, the local Lambda Runtime API of
//! `testkit` (so that the `main` of each function is exercised as Lambda runs it), and helpers
//! for the dev server ([`dev`]) and Postgres ([`pg`]).

pub mod dev;
pub mod pg;

/// One `multi_thread` test per case on each dev server store: `$case(kind)` runs in
/// `memory::$case` and `dynamodb::$case`.
#[macro_export]
macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(::devserver::cli::StoreKind::Memory).await })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(::devserver::cli::StoreKind::Dynamodb).await })*
        }
    };
}

use std::path::PathBuf;

pub use testkit::runtime_api::{Outcome, RuntimeApi};

/// Path of a binary built by `cargo build --workspace` (the test binary lives in
/// `target/<profile>/deps/`, the function binaries one level up).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `make test` (it builds the workspace first)",
        path.display()
    );
    path
}

/// A fixture of `tests/events/`, with its connection times moved to now.
pub fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if let Some(ctx) = event
        .get_mut("requestContext")
        .and_then(|c| c.as_object_mut())
        && ctx.contains_key("connectedAt")
    {
        let now = realtime::time::EpochMs::now().0;
        ctx.insert("connectedAt".into(), now.into());
        ctx.insert("requestTimeEpoch".into(), now.into());
    }
    event
}
