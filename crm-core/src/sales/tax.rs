//! A tenant's tax table: named rates (standard, reduced, exempt, …), each valid over a span of days.
//!
//! A quotation line names a rate by its code; the percent that applies is the one in force on the quotation's issue
//! day, so a table can carry a rate change (Romania's VAT went from 19 % to 21 % and the reduced 9 % / 5 % to 11 % on
//! 2025-08-01) and quotations issued on either side of it price correctly.

use crate::error::{Error, Result};
use crate::time::check_business_date;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The most decimal places a tax percent may carry.
pub const TAX_PERCENT_SCALE: u32 = 4;

/// One rate of a tax table: a code lines name, a label for documents, the percent, and the days it is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    /// The code a quotation line names (`"S"`, `"R"`, `"E"`, …); several entries share a code over different days.
    pub code: String,
    /// The label printed on documents (`"TVA 21%"`).
    pub label: String,
    /// The percent, 0 to 100 with at most [`TAX_PERCENT_SCALE`] decimal places.
    pub percent: Decimal,
    /// The first day it applies.
    pub from: NaiveDate,
    /// The last day it applies (inclusive); `None` while it is in force.
    pub until: Option<NaiveDate>,
}

impl TaxRate {
    /// A rate in force from `from` on.
    pub fn new(code: &str, label: &str, percent: Decimal, from: NaiveDate) -> Self {
        Self {
            code: code.into(),
            label: label.into(),
            percent,
            from,
            until: None,
        }
    }

    /// The same rate, ending on `until` (inclusive).
    pub fn until(mut self, until: NaiveDate) -> Self {
        self.until = Some(until);
        self
    }

    fn applies_on(&self, day: NaiveDate) -> bool {
        self.from <= day && self.until.is_none_or(|u| day <= u)
    }
}

/// A validated tax table: codes are non-empty, percents lie in 0..=100, and the spans of one code never overlap, so
/// a code names at most one percent on any day.
///
/// ```
/// use crm_core::sales::TaxTable;
/// use chrono::NaiveDate;
/// use rust_decimal::Decimal;
/// let ro = TaxTable::romania();
/// let before = NaiveDate::from_ymd_opt(2025, 7, 31).unwrap();
/// let after = NaiveDate::from_ymd_opt(2025, 8, 1).unwrap();
/// assert_eq!(ro.rate("S", before).unwrap().percent, Decimal::from(19));
/// assert_eq!(ro.rate("S", after).unwrap().percent, Decimal::from(21));
/// assert_eq!(ro.rate("R", after).unwrap().percent, Decimal::from(11));
/// assert!(ro.rate("X", after).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaxTable {
    rates: Vec<TaxRate>,
}

impl<'de> Deserialize<'de> for TaxTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            rates: Vec<TaxRate>,
        }
        let raw = Raw::deserialize(d)?;
        TaxTable::new(raw.rates).map_err(serde::de::Error::custom)
    }
}

impl TaxTable {
    /// Validates a table.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `rates[i].code`, `rates[i].percent`, `rates[i].from` or `rates[i].until` and the
    /// reason: an empty code or label, a percent outside 0..=100 or with more than [`TAX_PERCENT_SCALE`] places, a
    /// span that ends before it starts or lies outside the business calendar, or two spans of one code that overlap.
    pub fn new(rates: Vec<TaxRate>) -> Result<Self> {
        for (i, r) in rates.iter().enumerate() {
            let field = |f: &str| format!("rates[{i}].{f}");
            let code = r.code.trim();
            if code.is_empty() || code.len() > 16 {
                return Err(Error::invalid(
                    field("code"),
                    "give a code of 1 to 16 characters",
                ));
            }
            if r.label.trim().is_empty() || r.label.len() > 64 {
                return Err(Error::invalid(
                    field("label"),
                    "give a label of 1 to 64 characters",
                ));
            }
            super::percent(&field("percent"), r.percent)?;
            check_business_date(&field("from"), r.from)?;
            if let Some(u) = r.until {
                check_business_date(&field("until"), u)?;
                if u < r.from {
                    return Err(Error::invalid(
                        field("until"),
                        format!("{u} is before the rate starts ({})", r.from),
                    ));
                }
            }
            for (j, o) in rates[..i].iter().enumerate() {
                let disjoint =
                    r.until.is_some_and(|u| u < o.from) || o.until.is_some_and(|u| u < r.from);
                if o.code.trim() == code && !disjoint {
                    return Err(Error::invalid(
                        field("from"),
                        format!("rate `{code}` overlaps rates[{j}] of the same code"),
                    ));
                }
            }
        }
        Ok(Self { rates })
    }

    /// Romania's VAT: standard 19 % until 2025-07-31 and 21 % from 2025-08-01 (`S`); reduced 9 % then 11 % (`R`);
    /// the former 5 % reduced rate until 2025-07-31 (`R5`); exempt (`E`, 0 %).
    pub fn romania() -> Self {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a valid day");
        let change = day(2025, 8, 1);
        let eve = day(2025, 7, 31);
        let start = day(2000, 1, 1);
        Self::new(vec![
            TaxRate::new("S", "TVA 19%", Decimal::from(19), start).until(eve),
            TaxRate::new("S", "TVA 21%", Decimal::from(21), change),
            TaxRate::new("R", "TVA 9%", Decimal::from(9), start).until(eve),
            TaxRate::new("R", "TVA 11%", Decimal::from(11), change),
            TaxRate::new("R5", "TVA 5%", Decimal::from(5), start).until(eve),
            TaxRate::new("E", "Scutit TVA", Decimal::ZERO, start),
        ])
        .expect("the built-in table is valid")
    }

    /// The rate `code` names on `day`.
    ///
    /// # Errors
    /// [`Error::Invalid`] on field `tax` when no rate of that code is in force on that day.
    pub fn rate(&self, code: &str, day: NaiveDate) -> Result<&TaxRate> {
        self.rates
            .iter()
            .find(|r| r.code.trim() == code.trim() && r.applies_on(day))
            .ok_or_else(|| {
                Error::invalid("tax", format!("no tax rate `{code}` is in force on {day}"))
            })
    }

    /// Every rate, in the order given.
    pub fn rates(&self) -> &[TaxRate] {
        &self.rates
    }
}

impl Default for TaxTable {
    /// [`TaxTable::romania`]: the product's home market.
    fn default() -> Self {
        Self::romania()
    }
}
