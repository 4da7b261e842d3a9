//! Every goal the benchmarks are judged by, named once. The report prints each beside its
//! figure; nothing else in the crate writes a threshold.

/// Fan-out to 10,000 clients, invocation to last client.
pub const FANOUT_10K_MS: f64 = 1_500.0;
/// Fan-out to 10,000 clients: measured time over the quota model's floor.
pub const FANOUT_OVER_FLOOR: f64 = 1.15;
/// Fan-out speed-up over the seed's algorithm at 10,000 clients.
pub const SEED_SPEEDUP: f64 = 100.0;
/// Broadcaster peak RSS at 10,000 recipients.
pub const BROADCASTER_PEAK_RSS_MB: f64 = 64.0;
/// Commit to last of 1,000 clients, p99.
pub const COMMIT_TO_CLIENT_P99_MS: f64 = 15.0;
/// Dev server memory per idle connection.
pub const BYTES_PER_IDLE_CONNECTION: f64 = 5_120.0;
/// Sustained load: delivered / expected.
pub const DELIVERED_RATIO: f64 = 1.0;
/// Each arm64 `bootstrap`.
pub const BOOTSTRAP_BYTES: u64 = 6_000_000;
/// Exec to first Runtime API request.
pub const START_TO_FIRST_REQUEST_MS: f64 = 20.0;

/// `met` or `**missed**`.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_say_missed_loudly() {
        assert_eq!(verdict(true), "met");
        assert_eq!(verdict(false), "**missed**");
    }
}
