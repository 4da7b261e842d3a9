//! What presence costs when everyone arrives at once: 1,000 connections of 1,000 users connect to their project together,
//! through the release dev server (its `$connect` runs the connect function's code, presence
//! posts go through its Management API at 20 ms a post under the 10,000/s quota, DynamoDB
//! Local). Measured: the presence frames the clients received (each one a post API Gateway
//! bills), the time the 1,000 connects took, per layout (one project of 1,000; 100 projects
//! of 10) and per bound (`PRESENCE_MAX_SUBSCRIBERS` 100, the default, and 1,000, which leaves
//! this run unbounded). Beside each: the count the design predicts, Σ over arrivals of the
//! connections already there, up to the bound. `make bench SCENARIO=presence`; prints its
//! figures. The unbounded storm in one project takes minutes: only with `BENCH_LONG=1`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::BenchOptions;
use crate::clients::*;
use crate::scenarios::fanout::fanout_server;

/// The presence posts the design predicts for `per_project` users arriving one after another
/// in each of `projects` projects, with bound `bound`: arrival k (1-based) tells the k − 1
/// already there while k ≤ bound, nobody past it.
pub(crate) fn predicted_posts(projects: usize, per_project: usize, bound: usize) -> usize {
    let told = per_project.min(bound);
    projects * told * told.saturating_sub(1) / 2
}

/// Presence frames received until none has come for `quiet`.
async fn count_presence(rx: &mut mpsc::UnboundedReceiver<Receipt>, quiet: Duration) -> usize {
    let mut count = 0;
    while let Ok(Some(r)) = tokio::time::timeout(quiet, rx.recv()).await {
        if r.kind.as_deref() == Some("presence") {
            count += 1;
        }
    }
    count
}

pub async fn run(opts: &BenchOptions) -> Value {
    let users = if opts.quick { 200 } else { 1000 };
    let mut rows = Vec::new();
    for bound in [100usize, users] {
        for projects in [1usize, users / 10] {
            let per_project = users / projects;
            if bound >= per_project && projects == 1 && !opts.long {
                eprintln!(
                    "presence: {users} users in one project, unbounded: skipped (BENCH_LONG=1)"
                );
                rows.push(json!({"users": users, "projects": projects, "bound": bound,
                                 "skipped": "long: BENCH_LONG=1 runs it",
                                 "predicted_posts": predicted_posts(projects, per_project, bound),
                                 "unbounded_posts": predicted_posts(projects, per_project, usize::MAX)}));
                continue;
            }
            let (server, addr, _table) =
                fanout_server(&[("PRESENCE_MAX_SUBSCRIBERS", bound.to_string())]);
            let (tx, mut rx) = mpsc::unbounded_channel();
            eprintln!("presence: {users} users in {projects} project(s), bound {bound}");
            let started = Instant::now();
            let groups = futures::future::join_all(
                (0..projects)
                    .map(|_| clients(addr, Some(Uuid::new_v4()), per_project, Some(tx.clone()))),
            )
            .await;
            let connect_s = started.elapsed().as_secs_f64();
            let connected: usize = groups.iter().map(Vec::len).sum();
            // Every $connect answered after its presence posts were made: what is still on its
            // way is in flight to the sockets; a quiet second ends the count.
            let posts = count_presence(&mut rx, Duration::from_secs(2)).await;
            let predicted = predicted_posts(projects, per_project, bound);
            eprintln!(
                "  {connected} connected in {connect_s:.2} s; presence posts {posts} (the design predicts {predicted}; \
                 unbounded it would be {})",
                predicted_posts(projects, per_project, usize::MAX)
            );
            rows.push(json!({"users": users, "projects": projects, "bound": bound,
                             "connected": connected, "connect_s": connect_s,
                             "presence_posts": posts, "predicted_posts": predicted,
                             "unbounded_posts": predicted_posts(projects, per_project, usize::MAX)}));
            drop(groups);
            drop(server);
        }
    }
    let result = json!({
        "date": realtime::rfc3339(realtime::time::EpochMs::now()),
        "command": "make bench SCENARIO=presence",
        "rows": rows,
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prediction_counts_those_already_there_up_to_the_bound() {
        assert_eq!(predicted_posts(1, 3, 100), 3); // 0 + 1 + 2
        assert_eq!(predicted_posts(1, 1000, 100), 4950);
        assert_eq!(predicted_posts(1, 1000, usize::MAX), 499_500);
        assert_eq!(predicted_posts(100, 10, 100), 4500);
    }
}
