//! Money that cannot be added wrongly.
//!
//! [`Money`] pairs a [`Decimal`] amount with an ISO 4217 [`Currency`]. There is no `Add` across currencies:
//! [`Money::checked_add`] refuses a mismatch, and totals over mixed currencies are kept per currency
//! ([`Totals`]). Storage keeps amounts as scaled integers ([`Money::to_units`], four decimal places), never as
//! floating point.

use crate::error::{Error, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The number of decimal places every stored amount keeps.
pub const MONEY_SCALE: u32 = 4;

/// An ISO 4217 currency code of money a business invoices in: validated against the standard's list, without the
/// codes that are not money (`XXX` no currency, `XTS` testing, the precious metals `XAU` `XAG` `XPT` `XPD`,
/// accounting units such as `XDR`: ISO's "special" codes) and the funds (`CLF`, `USN`, …).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses a three-letter ISO 4217 code (upper case), e.g. `"RON"`.
    ///
    /// ```
    /// use crm_core::money::Currency;
    /// assert_eq!(Currency::parse("EUR").unwrap().code(), "EUR");
    /// assert!(Currency::parse("XYZ").is_err());
    /// assert!(Currency::parse("XXX").is_err());
    /// ```
    pub fn parse(code: &str) -> Result<Self> {
        let c = iso_currency::Currency::from_code(code).ok_or_else(|| {
            Error::invalid(
                "currency",
                format!("`{code}` is not an ISO 4217 currency code"),
            )
        })?;
        if c.is_special() || c.is_fund() {
            let what = if c.is_fund() {
                "a fund code"
            } else {
                "a special code (no currency, testing, precious metal or unit of account)"
            };
            return Err(Error::invalid(
                "currency",
                format!("`{code}` ({}) is {what}, not a currency", c.name()),
            ));
        }
        Ok(Self(c))
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// The number of minor-unit digits (2 for EUR, 0 for JPY).
    pub fn minor_digits(&self) -> u32 {
        self.0.exponent().map(u32::from).unwrap_or(0)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in one currency.
///
/// ```
/// use crm_core::money::{Currency, Money};
/// use rust_decimal::Decimal;
/// let ron = Currency::parse("RON").unwrap();
/// let a = Money::new(Decimal::new(1050, 2), ron).unwrap();
/// let b = Money::new(Decimal::new(250, 2), ron).unwrap();
/// assert_eq!(a.checked_add(&b).unwrap().amount(), Decimal::new(1300, 2));
/// let eur = Money::new(Decimal::ONE, Currency::parse("EUR").unwrap()).unwrap();
/// assert!(a.checked_add(&eur).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawMoney")]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

checked_form! {
    /// The serde form of [`Money`], checked by [`Money::new`] on the way in so JSON cannot bypass the bounds.
    RawMoney for Money { amount: Decimal, currency: Currency } via Money::new
}

/// The largest absolute amount storable as a scaled 64-bit integer at [`MONEY_SCALE`].
fn max_amount() -> Decimal {
    Decimal::from_i128_with_scale(i64::MAX as i128, MONEY_SCALE)
}

impl Money {
    /// An amount in a currency. Refuses more than [`MONEY_SCALE`] decimal places and amounts beyond what storage
    /// keeps exactly (about ±922 trillion).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self> {
        let amount = amount.normalize();
        if amount.scale() > MONEY_SCALE {
            return Err(Error::invalid(
                "amount",
                format!("{amount} has more than {MONEY_SCALE} decimal places"),
            ));
        }
        if amount.abs() > max_amount() {
            return Err(Error::invalid(
                "amount",
                format!("{amount} is too large to store exactly"),
            ));
        }
        Ok(Self { amount, currency })
    }

    /// Parses an amount and a currency code: `Money::parse("12.50", "EUR")`.
    pub fn parse(amount: &str, currency: &str) -> Result<Self> {
        let currency = Currency::parse(currency)?;
        let amount = Decimal::from_str_exact(amount.trim()).map_err(|e| {
            Error::invalid("amount", format!("`{amount}` is not a decimal number: {e}"))
        })?;
        Self::new(amount, currency)
    }

    /// Zero in a currency.
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: Decimal::ZERO,
            currency,
        }
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// Adds two amounts of the same currency; a different currency is an error, never a silent sum.
    pub fn checked_add(&self, other: &Money) -> Result<Money> {
        self.same_currency(other)?;
        Money::new(self.amount + other.amount, self.currency)
    }

    /// Subtracts two amounts of the same currency.
    pub fn checked_sub(&self, other: &Money) -> Result<Money> {
        self.same_currency(other)?;
        Money::new(self.amount - other.amount, self.currency)
    }

    /// Multiplies by a plain factor (a quantity, a probability), rounding half-even to [`MONEY_SCALE`] places.
    pub fn times(&self, factor: Decimal) -> Result<Money> {
        let v = self
            .amount
            .checked_mul(factor)
            .ok_or_else(|| Error::invalid("amount", "overflow"))?;
        Money::new(v.round_dp(MONEY_SCALE), self.currency)
    }

    fn same_currency(&self, other: &Money) -> Result<()> {
        if self.currency != other.currency {
            return Err(Error::invalid(
                "currency",
                format!("cannot combine {} with {}", self.currency, other.currency),
            ));
        }
        Ok(())
    }

    /// The amount as an integer of 10^-[`MONEY_SCALE`] units, the exact form storage sums.
    pub fn to_units(&self) -> i64 {
        decimal_to_units(self.amount).expect("Money::new bounds the amount")
    }

    /// The inverse of [`Money::to_units`].
    pub fn from_units(units: i64, currency: Currency) -> Self {
        Self {
            amount: units_to_decimal(units as i128),
            currency,
        }
    }
}

/// Converts a decimal with at most [`MONEY_SCALE`] places into scaled integer units, or `None` when it does not fit.
pub fn decimal_to_units(amount: Decimal) -> Option<i64> {
    let mut a = amount;
    a.rescale(MONEY_SCALE);
    if a.scale() != MONEY_SCALE {
        return None;
    }
    i64::try_from(a.mantissa()).ok()
}

/// Converts scaled integer units (possibly a wide sum) back into a normalised decimal.
pub fn units_to_decimal(units: i128) -> Decimal {
    Decimal::from_i128_with_scale(units, MONEY_SCALE).normalize()
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits().max(self.amount.scale());
        write!(f, "{:.*} {}", digits as usize, self.amount, self.currency)
    }
}

/// Sums kept per currency: the only correct way to total amounts of mixed currencies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals(BTreeMap<Currency, Decimal>);

impl Totals {
    /// An empty total.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an amount to its currency's total.
    pub fn add(&mut self, m: &Money) {
        *self.0.entry(m.currency()).or_default() += m.amount();
    }

    /// The total in one currency (zero if none).
    pub fn get(&self, currency: Currency) -> Money {
        Money {
            amount: self
                .0
                .get(&currency)
                .copied()
                .unwrap_or_default()
                .normalize(),
            currency,
        }
    }

    /// Every non-empty currency's total, ordered by currency code.
    pub fn iter(&self) -> impl Iterator<Item = Money> + '_ {
        self.0.iter().map(|(c, a)| Money {
            amount: a.normalize(),
            currency: *c,
        })
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_currency_is_named() {
        let e = Money::parse("1", "ABC").unwrap_err();
        assert_eq!(e.field(), Some("currency"));
    }

    #[test]
    fn codes_that_are_not_money_are_refused() {
        // No currency, testing, precious metals, accounting units and funds are ISO codes but not money a
        // business invoices in.
        for code in [
            "XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "CLF", "USN",
        ] {
            let e = Currency::parse(code).unwrap_err();
            assert_eq!(e.field(), Some("currency"), "{code}");
            assert!(e.to_string().contains("not a currency"), "{code}: {e}");
            assert!(Money::parse("1", code).is_err(), "{code}");
            assert!(serde_json::from_str::<Currency>(&format!("\"{code}\"")).is_err());
        }
        for code in [
            "EUR", "RON", "USD", "JPY", "CHF", "XOF", "XAF", "XCD", "XPF",
        ] {
            assert_eq!(Currency::parse(code).unwrap().code(), code);
        }
    }

    #[test]
    fn too_many_decimals_refused() {
        let e = Money::parse("1.00001", "EUR").unwrap_err();
        assert_eq!(e.field(), Some("amount"));
        assert!(Money::parse("1.0001", "EUR").is_ok());
    }

    #[test]
    fn units_round_trip() {
        for s in ["0", "1", "-1.5", "123456.7891", "0.0001"] {
            let m = Money::parse(s, "RON").unwrap();
            assert_eq!(Money::from_units(m.to_units(), m.currency()), m, "{s}");
        }
    }

    #[test]
    fn mixed_currency_totals_stay_apart() {
        let mut t = Totals::new();
        t.add(&Money::parse("1.5", "EUR").unwrap());
        t.add(&Money::parse("2", "RON").unwrap());
        t.add(&Money::parse("1", "EUR").unwrap());
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(t.get(eur), Money::parse("2.5", "EUR").unwrap());
        assert_eq!(t.iter().count(), 2);
    }

    #[test]
    fn serde_refuses_what_new_refuses() {
        let e =
            serde_json::from_str::<Money>(r#"{"amount":"0.00001","currency":"EUR"}"#).unwrap_err();
        assert!(e.to_string().contains("decimal places"), "{e}");
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"XXQ"}"#).is_err());
    }

    #[test]
    fn serde_keeps_decimals_exact() {
        let m = Money::parse("0.1", "EUR").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"0.1","currency":"EUR"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
    }
}
