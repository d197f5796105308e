//! Calendar periods and report buckets.

use crate::error::{Error, Result};
use crate::time::check_business_date;
use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// A period of whole days, both ends included, within [`crate::time::MIN_BUSINESS_DATE`] and
/// [`crate::time::MAX_BUSINESS_DATE`] (checked by every constructor and by deserialisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawPeriod")]
pub struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

checked_form! {
    /// The serde form of [`Period`], checked by [`Period::new`] on the way in.
    RawPeriod for Period { from: NaiveDate, to: NaiveDate } via Period::new
}

impl Period {
    /// Every business day, [`crate::time::MIN_BUSINESS_DATE`] to [`crate::time::MAX_BUSINESS_DATE`].
    pub const ALL: Period = Period {
        from: crate::time::MIN_BUSINESS_DATE,
        to: crate::time::MAX_BUSINESS_DATE,
    };

    /// The days from `from` to `to`, both included. An end before the start is [`Error::Invalid`] on `period`; a
    /// day outside the business dates on `period.from` or `period.to`.
    ///
    /// ```
    /// use crm_core::commerce::Period;
    /// use chrono::NaiveDate;
    /// let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// assert_eq!(Period::new(d(1, 1), d(1, 31)).unwrap().days(), 31);
    /// assert_eq!(Period::new(d(2, 1), d(1, 31)).unwrap_err().field(), Some("period"));
    /// ```
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self> {
        Self::named("period", from, to)
    }

    /// Like [`Period::new`], naming `field` (`field.from`, `field.to`) in the error.
    pub fn named(field: &str, from: NaiveDate, to: NaiveDate) -> Result<Self> {
        check_business_date(&format!("{field}.from"), from)?;
        check_business_date(&format!("{field}.to"), to)?;
        if to < from {
            return Err(Error::invalid(
                field,
                format!("the period is empty: it ends ({to}) before it starts ({from})"),
            ));
        }
        Ok(Self { from, to })
    }

    /// The first day.
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// The last day (included).
    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// Whether `d` lies in the period.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }

    /// The number of days.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The period of the same length just before this one (it may start before the business dates: it is only
    /// compared with).
    pub fn previous(&self) -> Period {
        // A period lies within the business dates, so the one before it lies well inside chrono's calendar; the
        // fallbacks are never taken.
        let len = Days::new(self.days().unsigned_abs());
        Period {
            from: self.from.checked_sub_days(len).unwrap_or(NaiveDate::MIN),
            to: self.from.pred_opt().unwrap_or(NaiveDate::MIN),
        }
    }

    /// A whole calendar year.
    pub fn year(year: i32) -> Result<Period> {
        let from = NaiveDate::from_ymd_opt(year, 1, 1)
            .ok_or_else(|| Error::invalid("year", format!("{year} is out of range")))?;
        let to = NaiveDate::from_ymd_opt(year, 12, 31)
            .ok_or_else(|| Error::invalid("year", format!("{year} is out of range")))?;
        check_business_date("year", from)?;
        check_business_date("year", to)?;
        Ok(Period { from, to })
    }
}

/// The width of a report bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Calendar month.
    Month,
    /// Calendar quarter.
    Quarter,
    /// Calendar year.
    Year,
}

impl Bucket {
    /// The bucket's index: months since year 0 (month), quarters since year 0, or the year. Adapters compute the
    /// same integer from the stored date (`year * 12 + month - 1`, `year * 4 + (month - 1) / 3`, `year`).
    pub fn index(&self, d: NaiveDate) -> i64 {
        let (y, m) = (d.year() as i64, d.month0() as i64);
        match self {
            Self::Month => y * 12 + m,
            Self::Quarter => y * 4 + m / 3,
            Self::Year => y,
        }
    }

    /// The first day of the bucket with index `i`.
    pub fn start_of(&self, i: i64) -> Option<NaiveDate> {
        let (y, m0) = match self {
            Self::Month => (i.div_euclid(12), i.rem_euclid(12)),
            Self::Quarter => (i.div_euclid(4), i.rem_euclid(4) * 3),
            Self::Year => (i, 0),
        };
        NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m0 as u32 + 1, 1)
    }

    /// The first day of the bucket holding `d`.
    pub fn start(&self, d: NaiveDate) -> NaiveDate {
        self.start_of(self.index(d)).unwrap_or(d)
    }

    /// The word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }
}

/// Days since 0001-01-01 (day 1): the integer form adapters store and index dates in.
pub fn day_number(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

/// The inverse of [`day_number`].
pub fn from_day_number(n: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn buckets() {
        for (b, date, start) in [
            (Bucket::Month, d(2026, 2, 17), d(2026, 2, 1)),
            (Bucket::Quarter, d(2026, 5, 31), d(2026, 4, 1)),
            (Bucket::Quarter, d(2026, 12, 31), d(2026, 10, 1)),
            (Bucket::Year, d(2026, 7, 4), d(2026, 1, 1)),
        ] {
            assert_eq!(b.start(date), start, "{b:?} {date}");
            assert_eq!(b.index(b.start_of(b.index(date)).unwrap()), b.index(date));
        }
        assert_eq!(
            Bucket::Month.index(d(2026, 1, 1)) - 1,
            Bucket::Month.index(d(2025, 12, 31))
        );
    }

    #[test]
    fn previous_period_has_the_same_length() {
        let p = Period::new(d(2026, 3, 1), d(2026, 3, 31)).unwrap();
        let q = p.previous();
        assert_eq!(q.days(), 31);
        assert_eq!(q.to(), d(2026, 2, 28));
    }

    #[test]
    fn periods_outside_business_dates_are_refused_and_previous_never_panics() {
        let e = Period::new(NaiveDate::MIN, d(2026, 1, 1)).unwrap_err();
        assert_eq!(e.field(), Some("period.from"), "{e}");
        let e = Period::new(d(2026, 1, 1), NaiveDate::MAX).unwrap_err();
        assert_eq!(e.field(), Some("period.to"), "{e}");
        let e = Period::named("q.period", d(1899, 12, 31), d(2026, 1, 1)).unwrap_err();
        assert_eq!(e.field(), Some("q.period.from"), "{e}");
        assert!(e.to_string().contains("1900-01-01 to 2200-12-31"), "{e}");
        for json in [
            r#"{"from":"-262000-01-01","to":"-262000-12-31"}"#,
            r#"{"from":"2026-01-01","to":"+262000-12-31"}"#,
        ] {
            let e = serde_json::from_str::<Period>(json).unwrap_err();
            assert!(e.to_string().contains("outside the dates"), "{json}: {e}");
        }
        assert!(Period::year(1899).is_err());
        assert!(Period::year(2201).is_err());
        assert_eq!(Period::year(i32::MAX).unwrap_err().field(), Some("year"));
        let widest = Period::new(d(1900, 1, 1), d(2200, 12, 31)).unwrap();
        let before = widest.previous();
        assert_eq!(
            (before.days(), before.to()),
            (widest.days(), d(1899, 12, 31))
        );
    }

    #[test]
    fn empty_period_refused_in_json_too() {
        let e = serde_json::from_str::<Period>(r#"{"from":"2026-02-01","to":"2026-01-01"}"#);
        assert!(e.is_err());
        assert_eq!(day_number(d(1, 1, 1)), 1);
        assert_eq!(
            from_day_number(day_number(d(2026, 5, 5))),
            Some(d(2026, 5, 5))
        );
    }
}
