//! Multi-touch attribution: which campaigns earned each sale's gross profit.
//!
//! A **touch** is a campaign reaching a partner on a day: targeted by it (its launch day; a held-out partner is not
//! touched), reached by its call (the day the call first reached them), sent its e-mail or text message (the day the
//! host reported it delivered) and, separately, opened it (the day reported), a lead the campaign brought (the
//! lead's creation day), or a meeting held about such a lead (the day it started; a scheduled or cancelled meeting
//! touches nobody). A sale (a sales invoice or credit note issued in the report's period) is credited to the touches
//! of its partner on or before its issue day and at most `lookback_days` before it, ordered by day, then kind, then
//! campaign. The models:
//!
//! - **invoice link** (the default, and today's campaign report): the whole gross profit to the campaign the host
//!   linked the invoice to when issuing it;
//! - **first touch** / **last touch**: all of it to the earliest / latest touch;
//! - **linear**: equal shares per touch;
//! - **time decay**: a touch `a` days before the sale weighs `2^(−a ÷ half-life)`;
//! - **position based**: 40 % to the first touch, 40 % to the last, 20 % shared by those between (one touch takes
//!   all; two take half each).
//!
//! Credits are exact: each sale's gross profit (10^-4 units) is split by the largest-remainder method (the floor
//! of each share, then one unit at a time to the largest remainders, earlier touches first on a tie), so the
//! credits of one sale always sum to its gross profit. A sale no touch (or no link) reaches is **unattributed**, a
//! row of its own. The store reads the sales and touches ([`AttributionInputs`]); [`finish_attribution`] credits
//! them.

use super::period::Period;
use crate::error::{Error, Result};
use crate::id::{CampaignId, DocumentId, PartnerId};
use crate::money::{units_to_decimal, Currency};
use chrono::NaiveDate;
use rust_decimal::{Decimal, MathematicalOps};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The longest lookback, in days (ten years).
pub const MAX_LOOKBACK_DAYS: u32 = 3_650;

/// How a touch reached a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchKind {
    /// Targeted by the campaign (its launch day).
    Targeted,
    /// The campaign's call reached the partner.
    Reached,
    /// The campaign's e-mail or text message was reported delivered (the day of the report).
    Messaged,
    /// The campaign's e-mail was reported opened.
    Opened,
    /// The campaign brought a lead of the partner.
    Lead,
    /// A meeting about a lead the campaign brought was held (the day it started).
    Meeting,
}

/// One touch (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Touch {
    /// The partner touched.
    pub partner: PartnerId,
    /// The day.
    pub on: NaiveDate,
    /// How.
    pub kind: TouchKind,
    /// The campaign.
    pub campaign: CampaignId,
}

/// One sale to credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sale {
    /// The partner.
    pub partner: PartnerId,
    /// The issue day.
    pub issue_date: NaiveDate,
    /// The document.
    pub document: DocumentId,
    /// The campaign the host linked it to.
    pub campaign: Option<CampaignId>,
    /// Revenue less cost of goods (10^-4 units of the reporting currency).
    pub gross_profit_units: i128,
}

/// What an attribution report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionScope {
    /// The sales' issue days.
    pub period: Period,
    /// How many days before a sale a touch still counts (1 to [`MAX_LOOKBACK_DAYS`]).
    pub lookback_days: u32,
    /// The reporting currency.
    pub reporting: Currency,
}

impl AttributionScope {
    /// The first day a touch can count on: `lookback_days` before the period's first day.
    pub fn first_touch_day(&self) -> NaiveDate {
        self.period
            .from()
            .checked_sub_days(chrono::Days::new(u64::from(self.lookback_days)))
            .unwrap_or(NaiveDate::MIN)
    }

    /// Checks the lookback (field `lookback_days`).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `lookback_days` outside 1 to [`MAX_LOOKBACK_DAYS`].
    pub fn check(&self) -> Result<()> {
        if !(1..=MAX_LOOKBACK_DAYS).contains(&self.lookback_days) {
            return Err(Error::invalid(
                "lookback_days",
                format!("{} is outside 1-{MAX_LOOKBACK_DAYS}", self.lookback_days),
            ));
        }
        Ok(())
    }
}

/// The sales of a scope and the touches that may credit them, as the store reads them: the count and gross
/// profit of all the period's sales invoices and credit notes (in the reporting currency); each of those sales
/// that is linked to a campaign or whose partner has a touch (a store may list more: a sale no touch reaches and
/// no link credits changes nothing); and every touch whose day falls from
/// [`AttributionScope::first_touch_day`] to the period's last day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionInputs {
    /// How many sales the period has.
    pub total_sales: u64,
    /// Their gross profit (10^-4 units).
    pub total_units: i128,
    /// The sales that may be credited.
    pub sales: Vec<Sale>,
    /// The touches.
    pub touches: Vec<Touch>,
}

impl AttributionInputs {
    /// Sorts both lists into their canonical order (sales by partner, day and document; touches by partner, day,
    /// kind and campaign) and drops repeated touches, so two stores' inputs compare equal.
    pub fn normalize(&mut self) {
        self.sales.sort_unstable();
        self.touches.sort_unstable();
        self.touches.dedup();
    }
}

/// An attribution model (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Model {
    /// The invoice's own campaign link.
    InvoiceLink,
    /// The earliest touch.
    FirstTouch,
    /// The latest touch.
    LastTouch,
    /// Equal shares.
    Linear,
    /// Halving every `half_life_days` before the sale.
    TimeDecay {
        /// The half-life in days (at least 1).
        half_life_days: u32,
    },
    /// 40 % first, 40 % last, 20 % between.
    PositionBased,
}

impl Model {
    /// Every model, time decay with a 7-day half-life.
    pub const ALL: [Model; 6] = [
        Model::InvoiceLink,
        Model::FirstTouch,
        Model::LastTouch,
        Model::Linear,
        Model::TimeDecay { half_life_days: 7 },
        Model::PositionBased,
    ];

    /// Its name in reports: `invoice_link`, `first_touch`, …, `time_decay_7d`, `position_based`.
    pub fn label(&self) -> String {
        match self {
            Self::InvoiceLink => "invoice_link".into(),
            Self::FirstTouch => "first_touch".into(),
            Self::LastTouch => "last_touch".into(),
            Self::Linear => "linear".into(),
            Self::TimeDecay { half_life_days } => format!("time_decay_{half_life_days}d"),
            Self::PositionBased => "position_based".into(),
        }
    }

    /// Checks the model (field `models[i].half_life_days` for a zero half-life).
    fn check(&self, i: usize) -> Result<()> {
        if let Self::TimeDecay { half_life_days: 0 } = self {
            return Err(Error::invalid(
                format!("models[{i}].half_life_days"),
                "a half-life is at least one day",
            ));
        }
        Ok(())
    }

    /// Time decay's per-day factor `2^(−1 ÷ h)` (computed once per report: `powd` is a series); `None` for the
    /// other models.
    fn decay_base(&self) -> Option<Decimal> {
        match self {
            Self::TimeDecay { half_life_days } => Some(
                Decimal::TWO
                    .checked_powd(-(Decimal::ONE / Decimal::from(*half_life_days.max(&1))))
                    .unwrap_or(Decimal::ZERO),
            ),
            _ => None,
        }
    }

    /// The integer weights of `touches` (ordered, all within the lookback of `sale`), one per touch; `base` is
    /// [`Model::decay_base`].
    fn weights(&self, sale: &Sale, touches: &[Touch], base: Option<Decimal>) -> Vec<u128> {
        let n = touches.len();
        let mut w = vec![0u128; n];
        if n == 0 {
            return w;
        }
        match self {
            Self::InvoiceLink => {}
            Self::FirstTouch => w[0] = 1,
            Self::LastTouch => w[n - 1] = 1,
            Self::Linear => w.iter_mut().for_each(|x| *x = 1),
            Self::PositionBased if n <= 2 => w.iter_mut().for_each(|x| *x = 1),
            Self::PositionBased => {
                // 2(n−2) : 1 … 1 : 2(n−2), of a total 5(n−2): 40 %, 20 % ÷ (n−2) each, 40 %.
                w.iter_mut().for_each(|x| *x = 1);
                w[0] = 2 * (n as u128 - 2);
                w[n - 1] = 2 * (n as u128 - 2);
            }
            Self::TimeDecay { .. } => {
                use rust_decimal::prelude::ToPrimitive;
                // b = 2^(−1 ÷ h), then b^age by squaring: the same decimal steps on every machine.
                let b = base.or_else(|| self.decay_base()).unwrap_or(Decimal::ZERO);
                for (x, t) in w.iter_mut().zip(touches) {
                    let age = (sale.issue_date - t.on).num_days().max(0);
                    let f = b.checked_powi(age).unwrap_or(Decimal::ZERO);
                    // To twelve places, never below one part in 10^12.
                    *x = (f * Decimal::new(1_000_000_000_000, 0))
                        .trunc()
                        .to_u128()
                        .unwrap_or(0)
                        .max(1);
                }
            }
        }
        w
    }
}

/// Splits `amount` by `weights` exactly (see the [module docs](self)): the shares sum to `amount`; all zero when
/// every weight is zero.
pub fn split_exact(amount: i128, weights: &[u128]) -> Vec<i128> {
    let total: u128 = weights.iter().sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let a = amount.unsigned_abs();
    let mut shares = Vec::with_capacity(weights.len());
    let mut rest: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    let mut given = 0u128;
    for (i, w) in weights.iter().enumerate() {
        // a × w ÷ total without overflow: a < 2^127, w ≤ total.
        let (q, r) = mul_div(a, *w, total);
        shares.push(q);
        given += q;
        rest.push((r, i));
    }
    // Largest remainder first, the earlier touch on a tie.
    rest.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut left = a - given;
    for (_, i) in rest {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    let sign = amount.signum();
    shares
        .into_iter()
        .map(|s| sign * i128::try_from(s).unwrap_or(i128::MAX))
        .collect()
}

/// `(⌊a × w ÷ t⌋, a × w mod t)` for `w ≤ t` (so the quotient fits): the 256-bit product divided bit by bit when it
/// does not fit 128 bits.
fn mul_div(a: u128, w: u128, t: u128) -> (u128, u128) {
    if let Some(p) = a.checked_mul(w) {
        return (p / t, p % t);
    }
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (w1, w0) = (w >> 64, w & MASK);
    let (ll, lh, hl, hh) = (a0 * w0, a0 * w1, a1 * w0, a1 * w1);
    let (mid, mid_carry) = lh.overflowing_add(hl);
    let (lo, lo_carry) = ll.overflowing_add(mid << 64);
    let hi = hh + (mid >> 64) + (u128::from(mid_carry) << 64) + u128::from(lo_carry);
    let (mut q, mut r) = (0u128, 0u128);
    for i in (0..256u32).rev() {
        let bit = if i >= 128 {
            (hi >> (i - 128)) & 1
        } else {
            (lo >> i) & 1
        };
        let carry = r >> 127;
        r = (r << 1) | bit;
        if carry == 1 || r >= t {
            r = r.wrapping_sub(t);
            if i < 128 {
                q |= 1 << i;
            }
        }
    }
    (q, r)
}

/// One row of an [`AttributionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionRow {
    /// The model's label ([`Model::label`]).
    pub model: String,
    /// The campaign (`None`: the sales no touch reached).
    pub campaign: Option<CampaignId>,
    /// The campaign's name (`unattributed` for `None`).
    pub name: String,
    /// Sales credited (in part or whole).
    pub sales: u64,
    /// Gross profit credited.
    pub gross_profit: Decimal,
}

/// Every campaign's credited gross profit under each model, side by side (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionReport {
    /// The sales' period.
    pub period: Period,
    /// The lookback, in days.
    pub lookback_days: u32,
    /// The reporting currency.
    pub currency: Currency,
    /// The models, in the order asked.
    pub models: Vec<Model>,
    /// The sales in the period.
    pub sales: u64,
    /// Their gross profit (each model's rows sum to it).
    pub gross_profit: Decimal,
    /// Per model (in order), per campaign credited by name then id, then the unattributed row (the period's sales
    /// the model credits to no campaign, and their gross profit).
    pub rows: Vec<AttributionRow>,
}

/// Checks a list of models: at least one, none twice, each valid (fields `models`, `models[i].half_life_days`).
///
/// # Errors
///
/// [`Error::Invalid`] naming the field.
pub fn check_models(models: &[Model]) -> Result<()> {
    if models.is_empty() {
        return Err(Error::invalid("models", "name at least one model"));
    }
    for (i, m) in models.iter().enumerate() {
        m.check(i)?;
        if models[..i].contains(m) {
            return Err(Error::invalid(
                format!("models[{i}]"),
                "a model is listed twice",
            ));
        }
    }
    Ok(())
}

/// The credits of one sale under `model`: per campaign, its share of the sale's gross profit (`None`: unattributed).
/// `touches` are the partner's touches in canonical order; only those within the lookback of the sale count.
pub fn credit_sale(
    model: Model,
    sale: &Sale,
    touches: &[Touch],
    lookback_days: u32,
) -> BTreeMap<Option<CampaignId>, i128> {
    credit_with(model, model.decay_base(), sale, touches, lookback_days)
}

/// [`credit_sale`] with the model's [`Model::decay_base`] worked out by the caller.
fn credit_with(
    model: Model,
    base: Option<Decimal>,
    sale: &Sale,
    touches: &[Touch],
    lookback_days: u32,
) -> BTreeMap<Option<CampaignId>, i128> {
    let mut out = BTreeMap::new();
    if model == Model::InvoiceLink {
        out.insert(sale.campaign, sale.gross_profit_units);
        return out;
    }
    let first = sale
        .issue_date
        .checked_sub_days(chrono::Days::new(u64::from(lookback_days)))
        .unwrap_or(NaiveDate::MIN);
    let eligible: Vec<Touch> = touches
        .iter()
        .filter(|t| t.partner == sale.partner && t.on <= sale.issue_date && t.on >= first)
        .copied()
        .collect();
    if eligible.is_empty() {
        out.insert(None, sale.gross_profit_units);
        return out;
    }
    let weights = model.weights(sale, &eligible, base);
    let shares = split_exact(sale.gross_profit_units, &weights);
    for ((t, share), w) in eligible.iter().zip(shares).zip(&weights) {
        // A touch the model gives no weight (not the first, under first touch) credits nothing, not even zero.
        if *w > 0 {
            *out.entry(Some(t.campaign)).or_insert(0) += share;
        }
    }
    out
}

/// Credits every sale of `inputs` under each of `models` and builds the report; `names` gives the campaigns'
/// names (an unnamed campaign shows its id).
///
/// # Errors
///
/// [`Error::Invalid`] as [`check_models`] and [`AttributionScope::check`] say.
pub fn finish_attribution(
    mut inputs: AttributionInputs,
    names: &BTreeMap<CampaignId, String>,
    scope: &AttributionScope,
    models: &[Model],
) -> Result<AttributionReport> {
    scope.check()?;
    check_models(models)?;
    inputs.normalize();
    let mut by_partner: BTreeMap<PartnerId, Vec<Touch>> = BTreeMap::new();
    for t in &inputs.touches {
        by_partner.entry(t.partner).or_default().push(*t);
    }
    let mut rows = Vec::new();
    for model in models {
        let base = model.decay_base();
        let mut sums: BTreeMap<CampaignId, (u64, i128)> = BTreeMap::new();
        let (mut credited_sales, mut credited_units) = (0u64, 0i128);
        for sale in &inputs.sales {
            let touches = by_partner
                .get(&sale.partner)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let credits = credit_with(*model, base, sale, touches, scope.lookback_days);
            let mut credited = false;
            for (campaign, units) in credits {
                if let Some(c) = campaign {
                    let e = sums.entry(c).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += units;
                    credited_units += units;
                    credited = true;
                }
            }
            credited_sales += u64::from(credited);
        }
        let name = |c: &CampaignId| names.get(c).cloned().unwrap_or_else(|| c.to_string());
        let mut model_rows: Vec<AttributionRow> = sums
            .into_iter()
            .map(|(campaign, (sales, units))| AttributionRow {
                model: model.label(),
                name: name(&campaign),
                campaign: Some(campaign),
                sales,
                gross_profit: units_to_decimal(units),
            })
            .collect();
        model_rows.sort_by(|a, b| (&a.name, a.campaign).cmp(&(&b.name, b.campaign)));
        model_rows.push(AttributionRow {
            model: model.label(),
            campaign: None,
            name: "unattributed".into(),
            sales: inputs.total_sales.saturating_sub(credited_sales),
            gross_profit: units_to_decimal(inputs.total_units - credited_units),
        });
        rows.extend(model_rows);
    }
    Ok(AttributionReport {
        period: scope.period,
        lookback_days: scope.lookback_days,
        currency: scope.reporting,
        models: models.to_vec(),
        sales: inputs.total_sales,
        gross_profit: units_to_decimal(inputs.total_units),
        rows,
    })
}

/// The distinct campaigns a list of inputs names.
pub fn campaigns_of(inputs: &AttributionInputs) -> BTreeSet<CampaignId> {
    inputs
        .touches
        .iter()
        .map(|t| t.campaign)
        .chain(inputs.sales.iter().filter_map(|s| s.campaign))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n)
    }

    #[test]
    fn the_wide_path_divides_exactly() {
        let big = u128::MAX >> 1;
        assert_eq!(mul_div(big, 3, 3), (big, 0));
        assert_eq!(mul_div(big, big - 1, big), (big - 1, 0));
        assert_eq!(mul_div(big, 1, big), (1, 0));
        // 2^127 × 3 ÷ 4 = 3 × 2^125.
        assert_eq!(mul_div(1 << 127, 3, 4), (3 << 125, 0));
    }

    #[test]
    fn position_based_is_forty_twenty_forty() {
        let sale = Sale {
            partner: PartnerId::new(),
            issue_date: day(10),
            document: DocumentId::new(),
            campaign: None,
            gross_profit_units: 1_000_000,
        };
        let cs: Vec<CampaignId> = (0..4).map(|_| CampaignId::new()).collect();
        let touches: Vec<Touch> = cs
            .iter()
            .enumerate()
            .map(|(i, c)| Touch {
                partner: sale.partner,
                on: day(i as i64),
                kind: TouchKind::Targeted,
                campaign: *c,
            })
            .collect();
        let credits = credit_sale(Model::PositionBased, &sale, &touches, 30);
        let got: Vec<i128> = cs.iter().map(|c| credits[&Some(*c)]).collect();
        assert_eq!(got, vec![400_000, 100_000, 100_000, 400_000]);
        let decay = credit_sale(Model::TimeDecay { half_life_days: 1 }, &sale, &touches, 30);
        // Ages 10, 9, 8, 7 days: weights 1 : 2 : 4 : 8.
        let got: Vec<i128> = cs.iter().map(|c| decay[&Some(*c)]).collect();
        assert_eq!(got, vec![66_667, 133_333, 266_667, 533_333]);
        // Outside the lookback: unattributed.
        let none = credit_sale(Model::Linear, &sale, &touches, 2);
        assert_eq!(
            none.into_iter().collect::<Vec<_>>(),
            vec![(None, 1_000_000)]
        );
    }

    #[test]
    fn bad_models_are_named() {
        assert_eq!(check_models(&[]).unwrap_err().field(), Some("models"));
        let e = check_models(&[Model::Linear, Model::TimeDecay { half_life_days: 0 }]).unwrap_err();
        assert_eq!(e.field(), Some("models[1].half_life_days"));
        let e = check_models(&[Model::Linear, Model::Linear]).unwrap_err();
        assert_eq!(e.field(), Some("models[1]"));
    }

    proptest! {
        #[test]
        fn credits_sum_to_the_gross_profit(
            gp in any::<i64>(),
            ages in prop::collection::vec((0i64..60, 0usize..3, 0usize..3), 0..12),
            half_life in 1u32..30,
            lookback in 1u32..90,
        ) {
            let sale = Sale {
                partner: PartnerId::new(),
                issue_date: day(60),
                document: DocumentId::new(),
                campaign: None,
                gross_profit_units: i128::from(gp),
            };
            let cs: Vec<CampaignId> = (0..3).map(|_| CampaignId::new()).collect();
            let kinds = [TouchKind::Targeted, TouchKind::Reached, TouchKind::Lead];
            let mut touches: Vec<Touch> = ages
                .iter()
                .map(|(a, k, c)| Touch { partner: sale.partner, on: day(60 - a), kind: kinds[*k], campaign: cs[*c] })
                .collect();
            touches.sort_unstable();
            touches.dedup();
            for model in [Model::FirstTouch, Model::LastTouch, Model::Linear,
                          Model::TimeDecay { half_life_days: half_life }, Model::PositionBased] {
                let credits = credit_sale(model, &sale, &touches, lookback);
                prop_assert_eq!(credits.values().sum::<i128>(), sale.gross_profit_units, "{:?}", model);
            }
            let weights: Vec<u128> = ages.iter().map(|(a, _, _)| *a as u128).collect();
            let shares = split_exact(i128::from(gp), &weights);
            if weights.iter().any(|w| *w > 0) {
                prop_assert_eq!(shares.iter().sum::<i128>(), i128::from(gp));
            }
        }

        #[test]
        fn the_wide_path_agrees_with_the_narrow_one(a in any::<u64>(), w in 0u64..1 << 62, extra in 0u64..1 << 62) {
            let t = u128::from(w) + u128::from(extra) + 1;
            let (a, w) = (u128::from(a), u128::from(w));
            let narrow = ((a * w) / t, (a * w) % t);
            // Scale both sides by 2^64: the product no longer fits, the quotient and remainder scale alike.
            let (q, r) = mul_div(a << 64, w, t);
            let wide_q = (narrow.0 << 64) + ((narrow.1 << 64) / t);
            prop_assert_eq!(q, wide_q);
            prop_assert_eq!(r, (narrow.1 << 64) % t);
        }
    }
}
