//! Points in time, typed by their unit. Epoch milliseconds (when a connection opened, when a
//! message arrived, a rate bucket's theoretical arrival time) and epoch seconds (the tables'
//! `expires_at` TTL attribute, a token's `exp`) are different units, and were both bare `i64`:
//! a value of one passed where the other was meant compiled, and was off by a factor of 1000.
//! Each unit is now a type of its own and going from one to the other is a named conversion.
//! The number inside (`.0`) is what is stored and sent: DynamoDB attributes, JSON (serialized
//! as the bare number), log fields.
//!
//! Spans of time (a rate's interval, a window, a TTL) stay plain numbers named for their unit
//! (`interval_ms`, `CONNECTION_TTL_SECONDS`); only points in time are typed. This module uses
//! nothing else of the crate, so that every module may use it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as milliseconds since the Unix epoch.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct EpochMs(pub i64);

/// A point in time as seconds since the Unix epoch.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct EpochSecs(pub i64);

impl EpochMs {
    /// The system clock now (the epoch itself if the clock is set before it).
    pub fn now() -> Self {
        EpochMs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        )
    }

    /// The second this millisecond falls in (rounded down, before the epoch too).
    pub const fn secs(self) -> EpochSecs {
        EpochSecs(self.0.div_euclid(1000))
    }

    /// The epoch minute this millisecond falls in.
    pub const fn minute(self) -> i64 {
        self.0.div_euclid(60_000)
    }

    /// `ms` milliseconds later.
    pub const fn plus_ms(self, ms: i64) -> Self {
        EpochMs(self.0 + ms)
    }

    /// `ms` milliseconds earlier.
    pub const fn minus_ms(self, ms: i64) -> Self {
        EpochMs(self.0 - ms)
    }

    /// Milliseconds from `earlier` to this one (negative when `earlier` is later).
    pub const fn ms_since(self, earlier: EpochMs) -> i64 {
        self.0 - earlier.0
    }
}

impl EpochSecs {
    /// The system clock now, to the second (rounded down).
    pub fn now() -> Self {
        EpochMs::now().secs()
    }

    /// The first millisecond of this second (saturating at the ends of `i64`).
    pub const fn ms(self) -> EpochMs {
        EpochMs(self.0.saturating_mul(1000))
    }

    /// The epoch minute this second falls in.
    pub const fn minute(self) -> i64 {
        self.0.div_euclid(60)
    }

    /// `secs` seconds later.
    pub const fn plus_secs(self, secs: i64) -> Self {
        EpochSecs(self.0 + secs)
    }

    /// `secs` seconds earlier.
    pub const fn minus_secs(self, secs: i64) -> Self {
        EpochSecs(self.0 - secs)
    }
}

/// The bare number, as stored and sent.
impl fmt::Display for EpochMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The bare number, as stored and sent.
impl fmt::Display for EpochSecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_down_also_before_the_epoch() {
        assert_eq!(EpochMs(1_795_665_600_999).secs(), EpochSecs(1_795_665_600));
        assert_eq!(EpochMs(-1).secs(), EpochSecs(-1));
        assert_eq!(EpochSecs(1_795_665_600).ms(), EpochMs(1_795_665_600_000));
        assert_eq!(EpochSecs(i64::MAX).ms(), EpochMs(i64::MAX));
        assert_eq!(EpochMs(119_999).minute(), 1);
        assert_eq!(EpochMs(119_999).secs().minute(), 1);
        assert_eq!(EpochMs(-1).minute(), -1);
    }

    #[test]
    fn arithmetic_stays_in_its_unit() {
        let at = EpochMs(1_000);
        assert_eq!(at.plus_ms(250), EpochMs(1_250));
        assert_eq!(at.minus_ms(1_250), EpochMs(-250));
        assert_eq!(at.plus_ms(250).ms_since(at), 250);
        let s = EpochSecs(60);
        assert_eq!(s.plus_secs(30), EpochSecs(90));
        assert_eq!(s.minus_secs(90), EpochSecs(-30));
        assert!(EpochSecs(1) < EpochSecs(2));
    }

    #[test]
    fn serialized_and_displayed_as_the_bare_number() {
        assert_eq!(
            serde_json::to_string(&EpochSecs(1_800_000_000)).unwrap(),
            "1800000000"
        );
        assert_eq!(serde_json::to_string(&EpochMs(-5)).unwrap(), "-5");
        assert_eq!(
            serde_json::from_str::<EpochSecs>("1800000000").unwrap(),
            EpochSecs(1_800_000_000)
        );
        assert_eq!(EpochMs(42).to_string(), "42");
        assert_eq!(EpochSecs(7).to_string(), "7");
    }

    #[test]
    fn now_agrees_across_units() {
        let (ms, secs) = (EpochMs::now(), EpochSecs::now());
        assert!(ms.0 > 1_700_000_000_000);
        assert!((secs.0 - ms.secs().0).abs() <= 1);
    }
}
