//! Waiting between attempts, one way for everything that retries: fan-out's posts (with full
//! jitter, so that throttled posts do not come back together), the relay's claims and its
//! listener's reconnects, and the DynamoDB batch deletes' unprocessed items.

use std::time::Duration;

/// Exponential backoff capped at `cap`: attempt n may wait up to min(cap, base·2ⁿ).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    /// Fan-out's: 25 ms doubling to 2 s.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(25),
            cap: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The longest wait of attempt n: min(cap, base·2ⁿ).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap)
    }

    /// Full jitter: a uniform time in [0, ceiling(n)).
    pub fn delay(&self, attempt: u32) -> Duration {
        let unit = (uuid::Uuid::new_v4().as_u64_pair().0 >> 11) as f64 / (1u64 << 53) as f64;
        self.ceiling(attempt).mul_f64(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_to_the_cap_and_the_jitter_stays_under_it() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        };
        let ceilings: Vec<u128> = (0..8).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
        for n in 0..8 {
            assert!(b.delay(n) < b.ceiling(n));
        }
    }
}
