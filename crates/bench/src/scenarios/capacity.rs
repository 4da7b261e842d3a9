//! Scenario 3, Capacity: the dev server's memory per idle connection, at growing connection counts up to
//! the open-file limit.

use serde_json::{Value, json};

use crate::BenchOptions;
use crate::clients::*;
use crate::procs::*;
use crate::stats::*;

pub async fn run(opts: &BenchOptions) -> Value {
    // Each side holds one descriptor per connection, so the open-file limit bounds the sizes.
    let limit = open_file_limit();
    let most = limit.saturating_sub(500) as usize;
    let steps: Vec<usize> = if opts.quick {
        vec![1000, 5000]
    } else {
        [10_000, 50_000].into_iter().map(|n| n.min(most)).collect()
    };
    let (server, addr) = dev_server(&["--store", "memory"], &services_env());
    let pid = server.0.id();
    // One connection first, so one-time allocations are in the baseline.
    let warm = clients(addr, None, 1, None).await;
    let base = status_kb(pid, "VmRSS:");
    let mut held = Vec::new();
    let mut rows = Vec::new();
    for &n in &steps {
        let more = n.saturating_sub(held.len());
        eprintln!("capacity: opening {more} more idle connections (total {n})");
        held.extend(clients(addr, None, more, None).await);
        let rss = status_kb(pid, "VmRSS:");
        let per = (rss.saturating_sub(base) as f64 * 1024.0) / held.len() as f64;
        eprintln!(
            "  {} connections: server RSS {:.1} MB, {:.0} bytes per connection",
            held.len(),
            rss as f64 / 1024.0,
            per
        );
        rows.push(json!({"connections": held.len(), "rss_mb": rss as f64 / 1024.0, "bytes_per_connection": per}));
    }
    drop(held);
    drop(warm);
    json!({"baseline_rss_mb": base as f64 / 1024.0, "steps": rows, "open_file_limit": limit})
}

/// The soft limit on open files of this process (what `ulimit -n` could raise it to).
fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}
