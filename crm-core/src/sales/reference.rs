//! The plain meaning of a quotation's totals, in decimal arithmetic, line by line as a person would compute them on
//! paper: the property test in `crm-core/tests/quotation.rs` compares [`price`](super::price) (exact 128-bit
//! integers) with it on random quotations. It assumes amounts small enough for `Decimal` to stay exact (28 digits),
//! which the test's generators respect.

use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::BTreeMap;

/// One line for the reference: quantity, unit price, discount percent, tax code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLine {
    /// Quantity.
    pub quantity: Decimal,
    /// Unit price.
    pub unit_price: Decimal,
    /// Discount percent.
    pub discount_percent: Decimal,
    /// Tax code.
    pub tax: String,
}

/// The reference totals: each line's net, then per tax code (base, tax), then net, tax and total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTotals {
    /// Each line's rounded net.
    pub nets: Vec<Decimal>,
    /// Per code: (base, tax).
    pub taxes: BTreeMap<String, (Decimal, Decimal)>,
    /// Sum of the nets.
    pub net: Decimal,
    /// Sum of the taxes.
    pub tax: Decimal,
    /// Net plus tax.
    pub total: Decimal,
}

fn round(v: Decimal, places: u32) -> Decimal {
    v.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero)
}

/// Totals of `lines` rounded to `places` decimal places, with `percent(code)` the tax percent of a code.
pub fn totals(lines: &[RefLine], places: u32, percent: impl Fn(&str) -> Decimal) -> RefTotals {
    let hundred = Decimal::ONE_HUNDRED;
    let nets: Vec<Decimal> = lines
        .iter()
        .map(|l| {
            round(
                l.quantity * l.unit_price * (hundred - l.discount_percent) / hundred,
                places,
            )
        })
        .collect();
    let mut taxes: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for (l, net) in lines.iter().zip(&nets) {
        taxes.entry(l.tax.clone()).or_default().0 += net;
    }
    for (code, (base, tax)) in taxes.iter_mut() {
        *tax = round(*base * percent(code) / hundred, places);
    }
    let net: Decimal = nets.iter().sum();
    let tax: Decimal = taxes.values().map(|t| t.1).sum();
    RefTotals {
        nets,
        taxes,
        net,
        tax,
        total: net + tax,
    }
}
