//! Fault injection, for tests and benchmarks of the broadcaster, seeded by `--fault-seed`:
//! - the Management API: an added latency per call, random 429s and 500s, and API Gateway's
//!   account throttle as a token bucket (a steady rate, and a burst that a full bucket lets
//!   through at once);
//! - Lambda's asynchronous invocations (`lambda_api`): delivered twice at a rate, late by a
//!   random delay (so out of order), failing at a rate (then retried and dead-lettered);
//! - API Gateway's `$disconnect`, which it runs on a best-effort basis: lost at a rate.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cli::DevOptions;

/// What a call is answered with instead of being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttled,
    Internal,
}

pub struct Faults {
    latency: Duration,
    p429: f64,
    p500: f64,
    bucket: Option<Mutex<Bucket>>,
    rng: AtomicU64,
    invoke_duplicate: f64,
    invoke_delay: Duration,
    invoke_error: f64,
    disconnect_loss: f64,
}

struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Faults {
    pub fn new(options: &DevOptions) -> Self {
        let bucket = (options.rate_limit > 0).then(|| {
            Mutex::new(Bucket::new(
                options.rate_limit,
                options.burst,
                Instant::now(),
            ))
        });
        Faults {
            latency: Duration::from_millis(options.post_latency_ms),
            p429: options.fault_429,
            p500: options.fault_500,
            bucket,
            rng: AtomicU64::new(match options.fault_seed {
                0 => realtime::time::EpochMs::now().0 as u64 | 1,
                seed => seed,
            }),
            invoke_duplicate: options.invoke_duplicate_rate,
            invoke_delay: Duration::from_millis(options.invoke_delay_ms),
            invoke_error: options.invoke_error_rate,
            disconnect_loss: options.disconnect_loss_rate,
        }
    }

    /// Whether a closed connection's `$disconnect` is never run.
    pub fn disconnect_lost(&self) -> bool {
        self.disconnect_loss > 0.0 && self.uniform() < self.disconnect_loss
    }

    /// Whether an asynchronous invocation is delivered twice.
    pub fn invoke_twice(&self) -> bool {
        self.invoke_duplicate > 0.0 && self.uniform() < self.invoke_duplicate
    }

    /// How late an asynchronous invocation runs.
    pub fn invoke_delay(&self) -> Duration {
        self.invoke_delay.mul_f64(self.uniform())
    }

    /// Whether an attempt of an asynchronous invocation fails before its handler runs.
    pub fn invoke_fails(&self) -> bool {
        self.invoke_error > 0.0 && self.uniform() < self.invoke_error
    }

    /// Wait the configured latency, then decide whether the call fails.
    pub async fn apply(&self) -> Option<Fault> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if let Some(bucket) = &self.bucket
            && !bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(Instant::now())
        {
            return Some(Fault::Throttled);
        }
        if self.p429 > 0.0 && self.uniform() < self.p429 {
            return Some(Fault::Throttled);
        }
        if self.p500 > 0.0 && self.uniform() < self.p500 {
            return Some(Fault::Internal);
        }
        None
    }

    /// A uniform number in [0, 1) (splitmix64; good enough for fault injection).
    fn uniform(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Bucket {
    /// Full at the start: `burst` requests at once (half the rate when 0, at least one), then
    /// `rate` a second.
    fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(if burst == 0 { (rate / 2).max(1) } else { burst });
        Bucket {
            rate: f64::from(rate),
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(bucket: &mut Bucket, n: usize, at: Instant) -> usize {
        (0..n).filter(|_| bucket.take(at)).count()
    }

    #[test]
    fn a_full_bucket_lets_the_burst_through_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(10_000, 5_000, t0);
        assert_eq!(taken(&mut bucket, 8_000, t0), 5_000);
        // 100 ms at 10,000/s: 1,000 more, however many ask.
        assert_eq!(
            taken(&mut bucket, 8_000, t0 + Duration::from_millis(100)),
            1_000
        );
        // A long pause refills to the burst, never beyond.
        assert_eq!(
            taken(&mut bucket, 20_000, t0 + Duration::from_secs(60)),
            5_000
        );
    }

    #[test]
    fn the_default_burst_is_half_the_rate_as_on_api_gateway() {
        let t0 = Instant::now();
        assert_eq!(taken(&mut Bucket::new(10_000, 0, t0), 20_000, t0), 5_000);
        assert_eq!(taken(&mut Bucket::new(1, 0, t0), 10, t0), 1);
    }
}
