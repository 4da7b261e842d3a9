//! Management API fault injection, for tests and benchmarks of the broadcaster: an added
//! latency per call, random 429s and 500s, and API Gateway's account throttle as a token bucket.

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
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Faults {
    pub fn new(options: &DevOptions) -> Self {
        let bucket = (options.rate_limit > 0).then(|| {
            let rate = f64::from(options.rate_limit);
            Mutex::new(Bucket {
                rate,
                tokens: rate,
                last: Instant::now(),
            })
        });
        Faults {
            latency: Duration::from_millis(options.post_latency_ms),
            p429: options.fault_429,
            p500: options.fault_500,
            bucket,
            rng: AtomicU64::new(realtime::epoch_millis() as u64 | 1),
        }
    }

    /// Wait the configured latency, then decide whether the call fails.
    pub async fn apply(&self) -> Option<Fault> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if let Some(bucket) = &self.bucket
            && !bucket.lock().unwrap_or_else(|p| p.into_inner()).take()
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
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
