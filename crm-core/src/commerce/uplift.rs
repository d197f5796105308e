//! A campaign's measured success: the outcomes of its targets beside those of its holdout over a window after the
//! launch, on the product text's criteria (reactivated, sales volume, bought the promoted products), their
//! difference (the uplift) with a confidence interval, and the incremental gross profit and ROI it implies.
//!
//! The store sums each group ([`OutcomeSums`], pushed down to SQL); [`finish_uplift`] derives the report from the
//! sums with exact decimal arithmetic. The interval of a difference of two proportions is Newcombe's hybrid score
//! interval (Newcombe 1998, "Interval estimation for the difference between independent proportions", method 10):
//! each proportion's Wilson score interval, combined as
//! `δ − √((p₁−l₁)² + (u₂−p₂)²)` to `δ + √((u₁−p₁)² + (p₂−l₂)²)`. It keeps its coverage near the nominal level
//! for small groups and rates near 0 or 1, where the textbook Wald interval does not, and it needs no resampling,
//! so a report is the same every time it is read.

use super::campaign::{Campaign, Holdout};
use super::period::Period;
use super::segment::Item;
use crate::error::{Error, Result};
use crate::id::CampaignId;
use crate::money::{units_to_decimal, Currency};
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The most products and categories one outcome query names as promoted.
pub const MAX_PROMOTED: usize = 64;

/// The places rates and interval bounds are rounded to.
const RATE_DP: u32 = 6;

/// The confidence level of the intervals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// 90 %.
    P90,
    /// 95 % (the default).
    #[default]
    P95,
    /// 99 %.
    P99,
}

impl Confidence {
    /// The two-sided standard normal quantile `z` (to 15 digits).
    pub fn z(self) -> Decimal {
        match self {
            Self::P90 => Decimal::new(1_644_853_626_951_472, 15),
            Self::P95 => Decimal::new(1_959_963_984_540_054, 15),
            Self::P99 => Decimal::new(2_575_829_303_548_901, 15),
        }
    }
}

/// What a campaign's outcomes are measured over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeQuery {
    /// The days the outcomes are counted in.
    pub window: Period,
    /// The products and categories the campaign promoted (none: "bought" is not measured).
    #[serde(default)]
    pub promoted: Vec<Item>,
    /// The reporting currency of the sums.
    pub reporting: Currency,
}

impl OutcomeQuery {
    /// Checks the promoted items: at most [`MAX_PROMOTED`], none twice (field `promoted`).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `promoted`.
    pub fn check(&self) -> Result<()> {
        if self.promoted.len() > MAX_PROMOTED {
            return Err(Error::invalid(
                "promoted",
                format!("at most {MAX_PROMOTED} products and categories"),
            ));
        }
        if self.promoted.iter().collect::<BTreeSet<_>>().len() != self.promoted.len() {
            return Err(Error::invalid("promoted", "an item is listed twice"));
        }
        Ok(())
    }
}

/// One group's sums (the targets, or the holdout) over an [`OutcomeQuery`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSums {
    /// Partners in the group.
    pub partners: u64,
    /// Partners whose net sales (invoices less credit notes) in the window are above zero.
    pub reactivated: u64,
    /// Partners whose net quantity of at least one promoted item in the window is above zero.
    pub bought: u64,
    /// The group's net revenue in the window (10^-4 units of the reporting currency).
    pub revenue_units: i128,
    /// The group's net cost of goods in the window (10^-4 units).
    pub cost_units: i128,
}

/// The sums of a campaign's targets and of its holdout, as the store computes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeSums {
    /// The targets (not held out).
    pub targets: GroupSums,
    /// The holdout.
    pub holdout: GroupSums,
}

/// An estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// The point estimate.
    pub estimate: Decimal,
    /// The lower bound.
    pub low: Decimal,
    /// The upper bound.
    pub high: Decimal,
}

impl Interval {
    /// Whether `x` lies within the bounds.
    pub fn contains(&self, x: Decimal) -> bool {
        self.low <= x && x <= self.high
    }
}

fn rate(x: u64, n: u64) -> Option<Decimal> {
    (n > 0).then(|| Decimal::from(x) / Decimal::from(n))
}

fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(RATE_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// The Wilson score interval `(low, high)` of a proportion `x / n` (unrounded); `None` when `n` is zero or `x`
/// exceeds it.
///
/// ```
/// use crm_core::commerce::{wilson, Confidence};
/// let (low, high) = wilson(0, 10, Confidence::P95).unwrap();
/// assert_eq!(low, rust_decimal::Decimal::ZERO);
/// assert_eq!(high.round_dp(4).to_string(), "0.2775");
/// ```
pub fn wilson(x: u64, n: u64, confidence: Confidence) -> Option<(Decimal, Decimal)> {
    if n == 0 || x > n {
        return None;
    }
    let z = confidence.z();
    let z2 = z * z;
    let (xd, nd) = (Decimal::from(x), Decimal::from(n));
    let p = xd / nd;
    let denominator = Decimal::ONE + z2 / nd;
    let centre = (p + z2 / (Decimal::TWO * nd)) / denominator;
    let spread = (p * (Decimal::ONE - p) / nd + z2 / (Decimal::from(4) * nd * nd)).sqrt()?;
    let half = z * spread / denominator;
    Some((
        (centre - half).max(Decimal::ZERO),
        (centre + half).min(Decimal::ONE),
    ))
}

/// The difference `x₁/n₁ − x₂/n₂` with Newcombe's hybrid score interval (see the module docs), rounded to six
/// places; `None` when a group is empty.
///
/// ```
/// use crm_core::commerce::{proportion_difference, Confidence};
/// // Newcombe (1998), table II, example (a): 56/70 against 48/80.
/// let d = proportion_difference(56, 70, 48, 80, Confidence::P95).unwrap();
/// assert_eq!(d.estimate.to_string(), "0.2");
/// assert_eq!((d.low.round_dp(4).to_string(), d.high.round_dp(4).to_string()), ("0.0524".into(), "0.3339".into()));
/// ```
pub fn proportion_difference(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    confidence: Confidence,
) -> Option<Interval> {
    let (p1, p2) = (rate(x1, n1)?, rate(x2, n2)?);
    let (l1, u1) = wilson(x1, n1, confidence)?;
    let (l2, u2) = wilson(x2, n2, confidence)?;
    let d = p1 - p2;
    let below = ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt()?;
    let above = ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()?;
    Some(Interval {
        estimate: round(d),
        low: round(d - below),
        high: round(d + above),
    })
}

/// One group's outcomes in a [`UpliftReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOutcome {
    /// Partners in the group.
    pub partners: u64,
    /// Reactivated: net sales in the window above zero.
    pub reactivated: u64,
    /// Reactivated ÷ partners (six places); `None` for an empty group.
    pub reactivation_rate: Option<Decimal>,
    /// Bought a promoted product or category in the window.
    pub bought: u64,
    /// Bought ÷ partners (six places); `None` for an empty group or without promoted items.
    pub bought_rate: Option<Decimal>,
    /// Net revenue in the window.
    pub revenue: Decimal,
    /// Net revenue less cost of goods.
    pub gross_profit: Decimal,
    /// Gross profit per partner (four places); `None` for an empty group.
    pub gross_profit_per_partner: Option<Decimal>,
}

fn group_outcome(g: &GroupSums, promoted: bool) -> GroupOutcome {
    let gp = g.revenue_units - g.cost_units;
    GroupOutcome {
        partners: g.partners,
        reactivated: g.reactivated,
        reactivation_rate: rate(g.reactivated, g.partners).map(round),
        bought: g.bought,
        bought_rate: rate(g.bought, g.partners).filter(|_| promoted).map(round),
        revenue: units_to_decimal(g.revenue_units),
        gross_profit: units_to_decimal(gp),
        gross_profit_per_partner: (g.partners > 0).then(|| {
            units_to_decimal(divide_rounded(gp, i128::from(g.partners)).unwrap_or_default())
        }),
    }
}

/// `a ÷ b` rounded half away from zero; `None` when `b` is zero.
fn divide_rounded(a: i128, b: i128) -> Option<i128> {
    if b == 0 {
        return None;
    }
    let (q, r) = (a / b, a % b);
    let away = r.unsigned_abs().checked_mul(2)? >= b.unsigned_abs();
    Some(if away { q + a.signum() * b.signum() } else { q })
}

/// A campaign's measured success over a window (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpliftReport {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its name.
    pub name: String,
    /// The window measured.
    pub window: Period,
    /// The reporting currency.
    pub currency: Currency,
    /// The intervals' confidence level.
    pub confidence: Confidence,
    /// The holdout drawn at launch (`None`: the campaign has no control group, and no uplift is reported).
    pub holdout: Option<Holdout>,
    /// The promoted products and categories "bought" counts.
    pub promoted: Vec<Item>,
    /// The targets' outcomes.
    pub targets: GroupOutcome,
    /// The holdout's outcomes.
    pub control: GroupOutcome,
    /// Targets' reactivation rate − the holdout's, with its interval.
    pub reactivation_uplift: Option<Interval>,
    /// Targets' rate of buying a promoted item − the holdout's, with its interval (`None` without promoted items).
    pub bought_uplift: Option<Interval>,
    /// The targets' revenue less what the holdout's revenue per partner predicts for them.
    pub incremental_revenue: Option<Decimal>,
    /// The targets' gross profit less what the holdout's gross profit per partner predicts for them.
    pub incremental_gross_profit: Option<Decimal>,
    /// The campaign's recorded costs (all of them, in the reporting currency).
    pub campaign_cost: Decimal,
    /// (Incremental gross profit − campaign cost) ÷ campaign cost × 100, two places; `None` without a cost or
    /// without a holdout.
    pub incremental_roi_pct: Option<Decimal>,
}

/// The targets' sum less the holdout's sum scaled to the targets' size: `t − h × n_t ÷ n_h`, in units rounded half
/// away from zero; `None` without a holdout, or when it does not fit.
fn incremental(t: i128, h: i128, n_t: u64, n_h: u64) -> Option<i128> {
    let (n_t, n_h) = (i128::from(n_t), i128::from(n_h));
    let scaled = t.checked_mul(n_h)?.checked_sub(h.checked_mul(n_t)?)?;
    divide_rounded(scaled, n_h)
}

/// Derives the uplift report of `campaign` from its sums and its recorded costs (`cost_units`).
///
/// ```
/// use crm_core::commerce::{finish_uplift, Confidence, GroupSums, OutcomeQuery, OutcomeSums, Period};
/// # use crm_core::commerce::{Campaign, NewCampaign, Channel, Criteria};
/// # let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
/// # let campaign = NewCampaign { name: "Winback".into(), channel: Channel::Email,
/// #     period: Period::new(d(1, 1), d(3, 31)).unwrap(), owner: crm_core::id::UserId::new(), agents: vec![],
/// #     script: None, budget: None, criteria: None }
/// #     .build(crm_core::id::TenantId::new(), chrono::Utc::now()).unwrap().0;
/// let eur = crm_core::money::Currency::parse("EUR").unwrap();
/// let q = OutcomeQuery { window: Period::new(d(2, 1), d(4, 30)).unwrap(), promoted: vec![], reporting: eur };
/// let sums = OutcomeSums {
///     targets: GroupSums { partners: 900, reactivated: 180, bought: 0, revenue_units: 9_000_000_000, cost_units: 6_000_000_000 },
///     holdout: GroupSums { partners: 100, reactivated: 10, bought: 0, revenue_units: 500_000_000, cost_units: 300_000_000 },
/// };
/// let r = finish_uplift(&campaign, &q, Confidence::P95, &sums, 20_000_000).unwrap();
/// assert_eq!(r.reactivation_uplift.unwrap().estimate.to_string(), "0.1");
/// // 300,000 of gross profit against 20,000 × 900 ÷ 100 = 180,000 expected without the campaign.
/// assert_eq!(r.incremental_gross_profit.unwrap().to_string(), "120000");
/// assert_eq!(r.incremental_roi_pct.unwrap().to_string(), "5900.00");
/// ```
///
/// # Errors
///
/// [`Error::Invalid`] on `campaign` when it has no targets, and on `window` when the sums are too large to
/// scale (beyond 10^34 units).
pub fn finish_uplift(
    campaign: &Campaign,
    q: &OutcomeQuery,
    confidence: Confidence,
    s: &OutcomeSums,
    cost_units: i128,
) -> Result<UpliftReport> {
    if s.targets.partners == 0 {
        return Err(Error::invalid(
            "campaign",
            format!("campaign `{}` has no targets to measure", campaign.name()),
        ));
    }
    let promoted = !q.promoted.is_empty();
    let (t, h) = (&s.targets, &s.holdout);
    let controlled = h.partners > 0;
    let too_large = || Error::invalid("window", "the sums are too large to compare");
    let scale = |a: i128, b: i128| -> Result<Option<Decimal>> {
        if !controlled {
            return Ok(None);
        }
        incremental(a, b, t.partners, h.partners)
            .filter(|u| u.unsigned_abs() < 10u128.pow(34))
            .map(|u| Some(units_to_decimal(u)))
            .ok_or_else(too_large)
    };
    let (gp_t, gp_h) = (
        t.revenue_units - t.cost_units,
        h.revenue_units - h.cost_units,
    );
    let incremental_gross_profit = scale(gp_t, gp_h)?;
    let incremental_roi_pct = match (incremental(gp_t, gp_h, t.partners, h.partners), controlled) {
        (Some(inc), true) if cost_units > 0 => super::report::pct(
            inc.checked_sub(cost_units).ok_or_else(too_large)?,
            cost_units,
        ),
        _ => None,
    };
    Ok(UpliftReport {
        campaign: campaign.id(),
        name: campaign.name().to_string(),
        window: q.window,
        currency: q.reporting,
        confidence,
        holdout: campaign.holdout().copied(),
        promoted: q.promoted.clone(),
        targets: group_outcome(t, promoted),
        control: group_outcome(h, promoted),
        reactivation_uplift: proportion_difference(
            t.reactivated,
            t.partners,
            h.reactivated,
            h.partners,
            confidence,
        ),
        bought_uplift: promoted
            .then(|| proportion_difference(t.bought, t.partners, h.bought, h.partners, confidence))
            .flatten(),
        incremental_revenue: scale(t.revenue_units, h.revenue_units)?,
        incremental_gross_profit,
        campaign_cost: units_to_decimal(cost_units),
        incremental_roi_pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn newcombe_examples() {
        // Newcombe (1998), table II, method 10 (b) 9/10 − 3/10, and statsmodels 0.14's
        // `confint_proportions_2indep(method="newcomb")` on (c) 6/7 − 2/7, 10/10 − 0/20 and (d) 5/56 − 0/29.
        let at4 = |i: Interval| {
            (
                i.low.round_dp(4).to_string(),
                i.high.round_dp(4).to_string(),
            )
        };
        let d = |x1, n1, x2, n2| proportion_difference(x1, n1, x2, n2, Confidence::P95).unwrap();
        assert_eq!(at4(d(9, 10, 3, 10)), ("0.1705".into(), "0.8090".into()));
        assert_eq!(at4(d(6, 7, 2, 7)), ("0.0582".into(), "0.8062".into()));
        assert_eq!(at4(d(10, 10, 0, 20)), ("0.6791".into(), "1".into()));
        assert_eq!(at4(d(5, 56, 0, 29)), ("-0.0381".into(), "0.1926".into()));
        assert!(proportion_difference(1, 0, 0, 1, Confidence::P95).is_none());
    }

    #[test]
    fn promoted_items_are_checked() {
        let q = |promoted: Vec<Item>| OutcomeQuery {
            window: Period::year(2026).unwrap(),
            promoted,
            reporting: Currency::parse("EUR").unwrap(),
        };
        let many: Vec<Item> = (0..=MAX_PROMOTED)
            .map(|_| Item::Product(crate::id::ProductId::new()))
            .collect();
        assert_eq!(
            q(many.clone()).check().unwrap_err().field(),
            Some("promoted")
        );
        assert!(q(many[..MAX_PROMOTED].to_vec()).check().is_ok());
        let twice = vec![many[0], many[0]];
        assert_eq!(q(twice).check().unwrap_err().field(), Some("promoted"));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(divide_rounded(5, 2), Some(3));
        assert_eq!(divide_rounded(-5, 2), Some(-3));
        assert_eq!(divide_rounded(4, 3), Some(1));
        assert_eq!(divide_rounded(-4, -3), Some(1));
        assert_eq!(divide_rounded(1, 0), None);
        assert_eq!(incremental(i128::MAX, 1, 2, 3), None);
    }

    proptest! {
        #[test]
        fn intervals_hold_their_estimate_and_stay_in_range(
            n1 in 1u64..100_000, a in 0u64..=1000, n2 in 1u64..100_000, b in 0u64..=1000,
            c in prop::sample::select(vec![Confidence::P90, Confidence::P95, Confidence::P99]),
        ) {
            let (x1, x2) = (n1 * a / 1000, n2 * b / 1000);
            let i = proportion_difference(x1, n1, x2, n2, c).unwrap();
            prop_assert!(i.low <= i.estimate && i.estimate <= i.high, "{i:?}");
            prop_assert!(i.low >= -Decimal::ONE && i.high <= Decimal::ONE, "{i:?}");
            let wider = proportion_difference(x1, n1, x2, n2, Confidence::P99).unwrap();
            let narrower = proportion_difference(x1, n1, x2, n2, Confidence::P90).unwrap();
            prop_assert!(wider.low <= narrower.low && narrower.high <= wider.high);
        }
    }
}
