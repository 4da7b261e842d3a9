//! The Lambda deadline, as the functions that run until it use it: the broadcaster stops
//! retrying posts, the sweeper stops hinting and the relay stops claiming a margin before it,
//! so that each reports and returns before Lambda's timeout (or Lambda retries the whole
//! invocation and everyone gets the event again).

use std::time::{Duration, Instant};

use crate::time::EpochMs;

/// Time kept back from the invocation's deadline to report and clean up.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
// Removing gone connections after the deadline fits in the margin.
const _: () =
    assert!(crate::delivery::fanout::CLEANUP_GRACE.as_millis() < DEADLINE_MARGIN.as_millis());
/// Deadline when the caller gives none (tests, `Context::default()`).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(25);

/// The deadline to stop retrying: the Lambda deadline (epoch ms; 0 when unknown) less a margin
/// ([`DEADLINE_MARGIN`], or a third of the time left when that is shorter, as under a local
/// emulator's short timeouts).
pub fn deadline_from(lambda_deadline_ms: u64) -> Instant {
    deadline_with_margin(lambda_deadline_ms, DEADLINE_MARGIN)
}

/// The Lambda deadline (epoch ms; 0 when unknown) less `margin`, or less a third of the time
/// left when that is shorter.
pub fn deadline_with_margin(lambda_deadline_ms: u64, margin: Duration) -> Instant {
    let left = time_left(lambda_deadline_ms);
    Instant::now() + left - margin.min(left / 3)
}

/// The time left before the Lambda deadline (epoch ms). [`DEFAULT_BUDGET`] when there is none
/// (0), or when it is no epoch time at all: `cargo lambda watch` sends its timeout (600,000)
/// where Lambda sends the deadline.
fn time_left(lambda_deadline_ms: u64) -> Duration {
    let now_ms = EpochMs::now().0.max(0) as u64;
    const A_DAY_MS: u64 = 24 * 60 * 60 * 1000;
    if lambda_deadline_ms == 0 || lambda_deadline_ms + A_DAY_MS < now_ms {
        DEFAULT_BUDGET
    } else {
        Duration::from_millis(lambda_deadline_ms.saturating_sub(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_keep_a_margin() {
        let in_ten_s = EpochMs::now().0 as u64 + 10_000;
        let d = deadline_from(in_ten_s).saturating_duration_since(Instant::now());
        assert!(
            d <= Duration::from_secs(10) - DEADLINE_MARGIN + Duration::from_millis(50),
            "{d:?}"
        );
        assert!(d >= Duration::from_secs(8), "{d:?}");
        assert!(deadline_from(0) > Instant::now() + Duration::from_secs(20));
        assert!(
            deadline_from(600_000) > Instant::now() + Duration::from_secs(20),
            "a timeout where the deadline belongs (cargo lambda watch) is no deadline"
        );
        // A short deadline keeps two thirds of it, not nothing.
        let in_one_s = EpochMs::now().0 as u64 + 1_000;
        let d = deadline_from(in_one_s).saturating_duration_since(Instant::now());
        assert!(
            d >= Duration::from_millis(600) && d <= Duration::from_millis(680),
            "{d:?}"
        );
    }
}
