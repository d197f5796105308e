//! Exchange rates: dated, supplied by the host, stored with every converted document.
//!
//! A document is converted into the tenant's reporting currency at its issue date, once, when it is recorded; the
//! rate used is stored with it, so a report never depends on today's rate (EspoCRM's mistake) and never sums mixed
//! currencies (Twenty's).

use crate::error::{Error, Result};
use crate::money::{Currency, MONEY_SCALE};
use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// How far back a stored rate still counts for a date by default (weekends and holidays have no fixing of their
/// own): [`RateRule::default`]. A tenant that keeps monthly rates sets a longer age, or none.
pub const MAX_RATE_AGE_DAYS: i64 = 7;

/// The most days a [`RateRule`] may allow (a hundred years).
pub const MAX_RATE_RULE_DAYS: u32 = 36_525;

/// Which stored rate converts a document: the latest one on or before its issue date, at most `max_age_days` older
/// than it (any age when there is no maximum). A rate dated after the document never applies. The default is
/// [`MAX_RATE_AGE_DAYS`] days (daily fixings, with weekends and holidays); a tenant whose treasury records one rate a
/// month sets [`RateRule::within_days`]`(31)`, and one that wants the latest rate whatever its age,
/// [`RateRule::latest`]. Set per tenant on the commerce service
/// ([`crate::service::CommerceService::with_tenant_rate_rule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateRule {
    max_age_days: Option<u32>,
}

impl Default for RateRule {
    fn default() -> Self {
        Self {
            max_age_days: Some(MAX_RATE_AGE_DAYS as u32),
        }
    }
}

impl RateRule {
    /// The latest rate on or before the date, at most `days` older than it (0: only a rate of that very day).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `max_age_days` above [`MAX_RATE_RULE_DAYS`].
    pub fn within_days(days: u32) -> Result<Self> {
        if days > MAX_RATE_RULE_DAYS {
            return Err(Error::invalid(
                "max_age_days",
                format!("at most {MAX_RATE_RULE_DAYS} (or no maximum: RateRule::latest)"),
            ));
        }
        Ok(Self {
            max_age_days: Some(days),
        })
    }

    /// The latest rate on or before the date, whatever its age.
    pub fn latest() -> Self {
        Self { max_age_days: None }
    }

    /// The most days a rate may be older than the date it converts; `None` for any age.
    pub fn max_age_days(&self) -> Option<u32> {
        self.max_age_days
    }

    /// Whether a rate recorded for `rate_day` converts a document of `on`.
    pub fn accepts(&self, rate_day: NaiveDate, on: NaiveDate) -> bool {
        rate_day <= on
            && self
                .max_age_days
                .is_none_or(|d| (on - rate_day).num_days() <= i64::from(d))
    }
}

/// The most decimal places a rate may have.
pub const RATE_SCALE: u32 = 10;

/// The largest rate accepted: a billion units of one currency for one of another is beyond any real pair and
/// a typing mistake (a rate of 1e28 would overflow every conversion).
pub const MAX_RATE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

record! {
    /// One unit of `from` is worth `rate` units of `to` on day `on`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ExchangeRate {
        /// The tenant the rate was recorded for.
        tenant: crate::id::TenantId,
        /// The currency converted from.
        from: Currency,
        /// The currency converted to.
        to: Currency,
        /// The day the rate applies from.
        on: NaiveDate,
        /// Units of `to` per unit of `from` (positive, at most [`MAX_RATE`], at most [`RATE_SCALE`] places).
        rate: Decimal,
    }
}

impl ExchangeRate {
    /// A validated rate.
    pub fn new(
        tenant: crate::id::TenantId,
        from: Currency,
        to: Currency,
        on: NaiveDate,
        rate: Decimal,
    ) -> Result<Self> {
        if from == to {
            return Err(Error::invalid(
                "to",
                "a rate converts between two different currencies",
            ));
        }
        crate::time::check_business_date("on", on)?;
        check_rate("rate", rate)?;
        Ok(Self {
            tenant,
            from,
            to,
            on,
            rate: rate.normalize(),
        })
    }
}

/// Checks a rate is positive, at most [`MAX_RATE`], with at most [`RATE_SCALE`] decimal places.
pub fn check_rate(field: &str, rate: Decimal) -> Result<()> {
    if rate <= Decimal::ZERO {
        return Err(Error::invalid(
            field,
            format!("{rate} is not a positive rate"),
        ));
    }
    if rate > MAX_RATE {
        return Err(Error::invalid(
            field,
            format!("{rate} is over the largest rate accepted, {MAX_RATE}"),
        ));
    }
    if rate.normalize().scale() > RATE_SCALE {
        return Err(Error::invalid(
            field,
            format!("{rate} has more than {RATE_SCALE} decimal places"),
        ));
    }
    Ok(())
}

/// The rate a document was converted with, stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRate {
    /// The reporting currency.
    pub reporting: Currency,
    /// Units of the reporting currency per unit of the document's currency (1 when they are the same).
    pub rate: Decimal,
}

impl AppliedRate {
    /// The identity rate of a document already in the reporting currency.
    pub fn identity(reporting: Currency) -> Self {
        Self {
            reporting,
            rate: Decimal::ONE,
        }
    }

    /// Converts an amount of the document's currency into reporting-currency units (10^-4), rounding half away
    /// from zero to the reporting currency's minor unit. `field` is named on overflow.
    pub fn to_reporting_units(&self, amount: Decimal, field: &str) -> Result<i64> {
        let v = amount
            .checked_mul(self.rate)
            .ok_or_else(|| Error::invalid(field, "too large to convert"))?;
        let v = v.round_dp_with_strategy(
            self.reporting.minor_digits().min(MONEY_SCALE),
            RoundingStrategy::MidpointAwayFromZero,
        );
        crate::money::decimal_to_units(v)
            .ok_or_else(|| Error::invalid(field, "too large to store exactly"))
    }
}

/// Where dated rates come from: the host's treasury, a central-bank feed, or the stored table.
#[async_trait]
pub trait RateSource: Send + Sync + Debug {
    /// Units of `to` per unit of `from` valid on day `on`, or `None` when unknown.
    async fn rate(&self, from: Currency, to: Currency, on: NaiveDate) -> Result<Option<Decimal>>;
}

/// An in-memory table of dated rates a host can hand the engine as a [`RateSource`]: a rate applies from its day
/// until the next one, for at most [`MAX_RATE_AGE_DAYS`] days (the default [`RateRule`]). The stored table answers
/// the latest rate on or before a day, and the commerce service applies the tenant's [`RateRule`] to it.
#[derive(Debug, Clone, Default)]
pub struct RateTable(BTreeMap<(Currency, Currency), BTreeMap<NaiveDate, Decimal>>);

impl RateTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a rate.
    pub fn insert(
        &mut self,
        from: Currency,
        to: Currency,
        on: NaiveDate,
        rate: Decimal,
    ) -> Result<()> {
        crate::time::check_business_date("on", on)?;
        check_rate("rate", rate)?;
        self.0
            .entry((from, to))
            .or_default()
            .insert(on, rate.normalize());
        Ok(())
    }

    /// The rate for a day, following the table rule.
    pub fn get(&self, from: Currency, to: Currency, on: NaiveDate) -> Option<Decimal> {
        if from == to {
            return Some(Decimal::ONE);
        }
        let days = self.0.get(&(from, to))?;
        let (day, rate) = days.range(..=on).next_back()?;
        RateRule::default().accepts(*day, on).then_some(*rate)
    }
}

#[async_trait]
impl RateSource for RateTable {
    async fn rate(&self, from: Currency, to: Currency, on: NaiveDate) -> Result<Option<Decimal>> {
        Ok(self.get(from, to, on))
    }
}

/// The error for a missing rate, naming the pair and the date.
pub fn missing_rate(from: Currency, to: Currency, on: NaiveDate) -> Error {
    Error::MissingRate {
        from: from.code().to_string(),
        to: to.code().to_string(),
        on,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_rate_rule_takes_the_latest_rate_up_to_its_age() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let week = RateRule::default();
        assert_eq!(week.max_age_days(), Some(7));
        assert!(week.accepts(d(1, 1), d(1, 8)), "seven days old");
        assert!(!week.accepts(d(1, 1), d(1, 9)), "eight days old");
        assert!(
            !week.accepts(d(1, 2), d(1, 1)),
            "never a rate of a later day"
        );
        let month = RateRule::within_days(31).unwrap();
        assert!(month.accepts(d(1, 1), d(2, 1)) && !month.accepts(d(1, 1), d(2, 2)));
        let same_day = RateRule::within_days(0).unwrap();
        assert!(same_day.accepts(d(3, 3), d(3, 3)) && !same_day.accepts(d(3, 2), d(3, 3)));
        let any = RateRule::latest();
        assert!(
            any.accepts(NaiveDate::MIN, NaiveDate::MAX),
            "no overflow at the extremes"
        );
        assert!(!any.accepts(NaiveDate::MAX, NaiveDate::MIN));
        let e = RateRule::within_days(MAX_RATE_RULE_DAYS + 1).unwrap_err();
        assert_eq!(e.field(), Some("max_age_days"));
        assert!(RateRule::within_days(MAX_RATE_RULE_DAYS)
            .unwrap()
            .accepts(d(1, 1), d(1, 1)));
    }

    #[test]
    fn absurd_rates_are_refused_with_the_bound() {
        for bad in [
            dec!(1e28),
            dec!(1000000000.0000000001),
            Decimal::MAX,
            dec!(0),
            dec!(-1),
            dec!(0.00000000001),
        ] {
            let e = check_rate("rate", bad).unwrap_err();
            assert_eq!(e.field(), Some("rate"), "{bad}");
        }
        let e = check_rate("rate", dec!(1e28)).unwrap_err();
        assert!(e.to_string().contains("1000000000"), "{e}");
        for good in [dec!(1000000000), dec!(0.0000000001), dec!(4.9731)] {
            assert!(check_rate("rate", good).is_ok(), "{good}");
        }
        let eur = Currency::parse("EUR").unwrap();
        let ron = Currency::parse("RON").unwrap();
        let on = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let t = crate::id::TenantId::new();
        assert!(ExchangeRate::new(t, eur, ron, on, dec!(1e28)).is_err());
        assert!(RateTable::new().insert(eur, ron, on, dec!(1e28)).is_err());
    }

    #[test]
    fn rates_outside_business_dates_are_refused() {
        let eur = Currency::parse("EUR").unwrap();
        let ron = Currency::parse("RON").unwrap();
        let t = crate::id::TenantId::new();
        for on in [NaiveDate::MAX, NaiveDate::MIN] {
            let e = ExchangeRate::new(t, eur, ron, on, dec!(4.97)).unwrap_err();
            assert_eq!(e.field(), Some("on"), "{e}");
            let e = RateTable::new()
                .insert(eur, ron, on, dec!(4.97))
                .unwrap_err();
            assert_eq!(e.field(), Some("on"), "{e}");
        }
    }

    #[test]
    fn table_rule_and_rounding() {
        let eur = Currency::parse("EUR").unwrap();
        let ron = Currency::parse("RON").unwrap();
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let mut t = RateTable::new();
        t.insert(eur, ron, d(1, 2), dec!(4.9731)).unwrap();
        assert_eq!(t.get(eur, ron, d(1, 1)), None);
        assert_eq!(t.get(eur, ron, d(1, 4)), Some(dec!(4.9731)));
        assert_eq!(t.get(eur, ron, d(1, 9)), Some(dec!(4.9731)));
        assert_eq!(t.get(eur, ron, d(1, 10)), None, "older than a week");
        assert_eq!(t.get(ron, eur, d(1, 4)), None, "no implicit inverse");
        assert_eq!(t.get(ron, ron, d(1, 4)), Some(Decimal::ONE));
        let applied = AppliedRate {
            reporting: ron,
            rate: dec!(4.9731),
        };
        // 10.01 EUR × 4.9731 = 49.780731 → 49.78 RON = 497800 units.
        assert_eq!(
            applied.to_reporting_units(dec!(10.01), "x").unwrap(),
            497_800
        );
        assert_eq!(
            applied.to_reporting_units(dec!(-10.01), "x").unwrap(),
            -497_800
        );
        assert!(t.insert(eur, ron, d(1, 3), dec!(0)).is_err());
        assert_eq!(
            missing_rate(eur, ron, d(1, 1)).to_string(),
            "no exchange rate from EUR to RON on 2026-01-01: record one and retry"
        );
    }
}
