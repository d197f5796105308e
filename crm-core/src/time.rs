//! Time: always UTC, always read through a [`Clock`] so tests are deterministic.

use chrono::{DateTime, Duration, DurationRound, Utc};
use std::fmt::Debug;
use std::sync::Mutex;

/// A point in time, UTC, with microsecond precision (what both storage adapters keep).
pub type Timestamp = DateTime<Utc>;

/// The source of "now" for the engine.
///
/// Implementations must return UTC instants truncated to whole microseconds, the precision every storage adapter
/// preserves; [`truncate_micros`] does that.
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// Truncates an instant to whole microseconds.
pub fn truncate_micros(t: Timestamp) -> Timestamp {
    t.duration_trunc(Duration::microseconds(1)).unwrap_or(t)
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_micros(Utc::now())
    }
}

/// A clock that stands still until told to move: for tests and replays.
///
/// ```
/// use crm_core::time::{Clock, FixedClock};
/// use chrono::{Duration, TimeZone, Utc};
/// let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap());
/// clock.advance(Duration::hours(2));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap());
/// ```
#[derive(Debug)]
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    /// A clock fixed at `at` (truncated to microseconds).
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(truncate_micros(at)))
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t = truncate_micros(*t + by);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = truncate_micros(at);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Microseconds since the Unix epoch: the integer form both adapters index on.
pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`]; `None` outside chrono's range.
pub fn from_micros(micros: i64) -> Option<Timestamp> {
    DateTime::<Utc>::from_timestamp_micros(micros)
}
