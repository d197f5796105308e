//! Time: always UTC, always read through a [`Clock`] so tests are deterministic.

use crate::error::{Error, Result};
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use std::fmt::Debug;
use std::sync::Mutex;

/// The first day the engine accepts in business data: periods, documents' issue and due dates, rates, campaign
/// costs, "as of" days, criteria dates, expected close dates. Earlier dates are typing mistakes (or probes), and
/// date arithmetic near the ends of the calendar would overflow.
pub const MIN_BUSINESS_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("1900-01-01 is a date"),
};

/// The last day the engine accepts in business data (see [`MIN_BUSINESS_DATE`]).
pub const MAX_BUSINESS_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2200, 12, 31) {
    Some(d) => d,
    None => panic!("2200-12-31 is a date"),
};

/// Checks `date` lies between [`MIN_BUSINESS_DATE`] and [`MAX_BUSINESS_DATE`] (both included); otherwise
/// [`Error::Invalid`] naming `field`.
///
/// ```
/// use crm_core::time::check_business_date;
/// use chrono::NaiveDate;
/// assert!(check_business_date("on", NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()).is_ok());
/// assert_eq!(check_business_date("on", NaiveDate::MAX).unwrap_err().field(), Some("on"));
/// ```
pub fn check_business_date(field: &str, date: NaiveDate) -> Result<NaiveDate> {
    if !(MIN_BUSINESS_DATE..=MAX_BUSINESS_DATE).contains(&date) {
        return Err(Error::invalid(
            field,
            format!(
                "{date} is outside the dates the engine accepts, {MIN_BUSINESS_DATE} to {MAX_BUSINESS_DATE}"
            ),
        ));
    }
    Ok(date)
}

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
