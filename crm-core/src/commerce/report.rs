//! Report rows: what adapters sum (integer units, exact) and what the reports show (derived in one place, here,
//! so every adapter derives margins, averages, ROI and changes identically).

use super::campaign::OutcomeKind;
use super::document::DocumentKind;
use super::period::{Bucket, Period};
use crate::error::{Error, Result};
use crate::id::{CampaignId, DocumentId, PartnerId, UserId};
use crate::money::{units_to_decimal, Currency};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What profitability rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The customer (key: partner id).
    Customer,
    /// The partner group at issue time.
    Group,
    /// The industry name at issue time.
    Industry,
    /// The country of the primary location at issue time.
    Country,
    /// The region of the primary location at issue time.
    Region,
    /// The city of the primary location at issue time.
    City,
    /// The account owner at issue time (key: user id).
    Owner,
    /// The campaign (key: campaign id).
    Campaign,
}

impl GroupBy {
    /// Every grouping.
    pub const ALL: [GroupBy; 8] = [
        Self::Customer,
        Self::Group,
        Self::Industry,
        Self::Country,
        Self::Region,
        Self::City,
        Self::Owner,
        Self::Campaign,
    ];

    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Group => "group",
            Self::Industry => "industry",
            Self::Country => "country",
            Self::Region => "region",
            Self::City => "city",
            Self::Owner => "owner",
            Self::Campaign => "campaign",
        }
    }
}

/// Which end of the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankOrder {
    /// Highest gross profit first.
    Top,
    /// Lowest gross profit first.
    Bottom,
}

/// Keep only the top or bottom `n` groups by gross profit over the period (ties by key, absent key first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rank {
    /// Which end.
    pub order: RankOrder,
    /// How many (1–10 000).
    pub n: u32,
}

/// What an adapter sums for profitability: sales invoices and credit notes in the reporting currency whose issue
/// date is in `period`, grouped by `group_by` (and bucket). With `rank` (and no bucket) only the ranked groups,
/// in rank order; otherwise ordered by key then bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumsQuery {
    /// Issue dates.
    pub period: Period,
    /// Grouping.
    pub group_by: GroupBy,
    /// Buckets.
    pub bucket: Option<Bucket>,
    /// The reporting currency (documents converted into another are not counted).
    pub reporting: Currency,
    /// Ranking pushed down (only without buckets).
    pub rank: Option<Rank>,
}

impl SumsQuery {
    /// The sums of every group over a period in the `reporting` currency, no buckets, no ranking.
    pub fn by(group_by: GroupBy, period: Period, reporting: Currency) -> Self {
        Self {
            period,
            group_by,
            bucket: None,
            reporting,
            rank: None,
        }
    }
}

/// One group's (and bucket's) exact sums.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProfitSums {
    /// The group key (`None` when the attribute is absent).
    pub key: Option<String>,
    /// The bucket index ([`Bucket::index`]) when bucketed.
    pub bucket: Option<i64>,
    /// Net revenue in 10^-4 reporting units.
    pub revenue_units: i128,
    /// Net cost of goods in 10^-4 reporting units.
    pub cost_units: i128,
    /// Number of sales invoices (credit notes not counted).
    pub invoices: u64,
}

impl ProfitSums {
    /// Gross profit units.
    pub fn profit_units(&self) -> i128 {
        self.revenue_units - self.cost_units
    }
}

/// Sorts sums the way [`SumsQuery`] promises: rank order when ranked, else key then bucket; then truncates.
pub fn order_sums(sums: &mut Vec<ProfitSums>, q: &SumsQuery) {
    match q.rank.filter(|_| q.bucket.is_none()) {
        Some(r) => {
            sums.sort_by(|a, b| {
                let by = match r.order {
                    RankOrder::Top => b.profit_units().cmp(&a.profit_units()),
                    RankOrder::Bottom => a.profit_units().cmp(&b.profit_units()),
                };
                by.then_with(|| a.key.cmp(&b.key))
            });
            sums.truncate(r.n as usize);
        }
        None => sums.sort_by(|a, b| a.key.cmp(&b.key).then(a.bucket.cmp(&b.bucket))),
    }
}

/// A profitability query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfitQuery {
    /// Issue dates.
    pub period: Period,
    /// Grouping.
    pub group_by: GroupBy,
    /// Period buckets.
    pub bucket: Option<Bucket>,
    /// Compare with the previous period (or, bucketed, each bucket with the one before).
    pub compare: bool,
    /// Top / bottom N groups.
    pub rank: Option<Rank>,
}

impl ProfitQuery {
    /// Customer profitability over a period, all customers, no buckets.
    pub fn by(group_by: GroupBy, period: Period) -> Self {
        Self {
            period,
            group_by,
            bucket: None,
            compare: false,
            rank: None,
        }
    }

    /// Checks the ranking size.
    pub fn check(&self) -> Result<()> {
        if let Some(r) = self.rank {
            if r.n == 0 || r.n > 10_000 {
                return Err(Error::invalid(
                    "rank.n",
                    format!("{} is outside 1–10000", r.n),
                ));
            }
        }
        Ok(())
    }
}

/// One row of the profitability report (amounts in the reporting currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfitRow {
    /// Group key (partner, user or campaign id; or the attribute's text).
    pub key: Option<String>,
    /// A readable label (the partner's or campaign's name) when the service knows one.
    pub label: Option<String>,
    /// First day of the bucket, when bucketed.
    pub bucket: Option<NaiveDate>,
    /// Net revenue.
    pub revenue: Decimal,
    /// Net cost of goods.
    pub cost: Decimal,
    /// Revenue − cost.
    pub gross_profit: Decimal,
    /// Gross profit ÷ revenue × 100, two places; `None` without revenue.
    pub margin_pct: Option<Decimal>,
    /// Sales invoices.
    pub invoices: u64,
    /// Revenue ÷ invoices, two places; `None` without invoices.
    pub average_invoice: Option<Decimal>,
    /// Gross profit in the previous period (or bucket), when compared.
    pub previous_gross_profit: Option<Decimal>,
    /// Change of gross profit against it in percent, two places; `None` when it was zero or not compared.
    pub change_pct: Option<Decimal>,
}

/// The profitability report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfitReport {
    /// The query.
    pub query: ProfitQuery,
    /// The reporting currency.
    pub currency: Currency,
    /// The rows.
    pub rows: Vec<ProfitRow>,
}

/// `num ÷ den × 100` rounded half-even to two places; `None` when `den` is zero.
pub fn pct(num: i128, den: i128) -> Option<Decimal> {
    if den == 0 {
        return None;
    }
    let (n, d) = (
        Decimal::from_i128_with_scale(num, 0),
        Decimal::from_i128_with_scale(den, 0),
    );
    n.checked_mul(Decimal::ONE_HUNDRED)?
        .checked_div(d)
        .map(|v| {
            let mut v = v.round_dp(2);
            v.rescale(2);
            v
        })
}

fn units(u: i128) -> Decimal {
    units_to_decimal(u)
}

/// Derives the report rows from current sums and, when comparing, the previous ones (same grouping; bucketed:
/// the sums must include the bucket before the first).
pub fn finish_profitability(
    q: &ProfitQuery,
    current: &[ProfitSums],
    previous: Option<&[ProfitSums]>,
) -> Vec<ProfitRow> {
    let prev: BTreeMap<(Option<String>, Option<i64>), i128> = previous
        .unwrap_or_default()
        .iter()
        .map(|s| ((s.key.clone(), s.bucket), s.profit_units()))
        .collect();
    let cur: BTreeMap<(Option<String>, Option<i64>), i128> = current
        .iter()
        .map(|s| ((s.key.clone(), s.bucket), s.profit_units()))
        .collect();
    let first_bucket = q.bucket.map(|b| b.index(q.period.from()));
    current
        .iter()
        .filter(|s| match (s.bucket, first_bucket) {
            (Some(i), Some(f)) => i >= f,
            _ => true,
        })
        .map(|s| {
            let gp = s.profit_units();
            let previous_gp = if q.compare {
                Some(match s.bucket {
                    None => prev.get(&(s.key.clone(), None)).copied().unwrap_or(0),
                    Some(i) => cur.get(&(s.key.clone(), Some(i - 1))).copied().unwrap_or(0),
                })
            } else {
                None
            };
            ProfitRow {
                key: s.key.clone(),
                label: None,
                bucket: s.bucket.and_then(|i| q.bucket.and_then(|b| b.start_of(i))),
                revenue: units(s.revenue_units),
                cost: units(s.cost_units),
                gross_profit: units(gp),
                margin_pct: pct(gp, s.revenue_units),
                invoices: s.invoices,
                average_invoice: (s.invoices > 0).then(|| {
                    let mut v = (units(s.revenue_units) / Decimal::from(s.invoices)).round_dp(2);
                    v.rescale(2);
                    v
                }),
                previous_gross_profit: previous_gp.map(units),
                change_pct: previous_gp.and_then(|p| pct(gp - p, p.abs())),
            }
        })
        .collect()
}

/// The exact sums of a campaign report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSums {
    /// Targets snapshotted at launch.
    pub targets: u64,
    /// Targets first reached in the period.
    pub reached: u64,
    /// Targets whose latest outcome, recorded in the period, is each kind.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
    /// Leads with the campaign as source, entered in the period.
    pub leads: u64,
    /// Of those, won.
    pub won: u64,
    /// Distinct customers whose net campaign revenue in the period is above zero.
    pub invoiced_customers: u64,
    /// Net campaign revenue (10^-4 reporting units).
    pub revenue_units: i128,
    /// Net campaign cost of goods.
    pub cost_units: i128,
    /// Campaign cost entries dated in the period.
    pub campaign_cost_units: i128,
}

/// One campaign's report sums, as [`CampaignMeasuresExt::campaigns_sums`](super::CampaignMeasuresExt::campaigns_sums)
/// lists every campaign of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTotals {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its name.
    pub name: String,
    /// Its sums over the period asked (zero where it has nothing).
    pub sums: CampaignSums,
}

/// One step of the campaign funnel and its conversion from the step before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// The step.
    pub step: String,
    /// How many.
    pub count: u64,
    /// Percent of the step before (two places); `None` for the first step or when the step before is zero.
    pub conversion_pct: Option<Decimal>,
}

/// The campaign report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its name.
    pub name: String,
    /// The period reported (`None`: all time).
    pub period: Option<Period>,
    /// The reporting currency.
    pub currency: Currency,
    /// Targets.
    pub targets: u64,
    /// Reached.
    pub reached: u64,
    /// Interested.
    pub interested: u64,
    /// Leads.
    pub leads: u64,
    /// Won.
    pub won: u64,
    /// Invoiced customers.
    pub invoiced_customers: u64,
    /// Net revenue.
    pub revenue: Decimal,
    /// Net cost of goods.
    pub cost_of_goods: Decimal,
    /// Revenue − cost of goods.
    pub gross_profit: Decimal,
    /// Campaign cost.
    pub campaign_cost: Decimal,
    /// Gross profit − campaign cost.
    pub net_profit: Decimal,
    /// Net profit ÷ campaign cost × 100, two places; `None` without cost.
    pub roi_pct: Option<Decimal>,
    /// The funnel: targets → reached → interested → leads → won → invoiced.
    pub funnel: Vec<FunnelStep>,
    /// Latest outcome counts.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
}

/// Derives the campaign report from its sums.
pub fn finish_campaign(
    campaign: CampaignId,
    name: &str,
    period: Option<Period>,
    currency: Currency,
    s: &CampaignSums,
) -> CampaignReport {
    let interested = s
        .outcomes
        .get(&OutcomeKind::Interested)
        .copied()
        .unwrap_or(0);
    let gp = s.revenue_units - s.cost_units;
    let net = gp - s.campaign_cost_units;
    let steps = [
        ("targets", s.targets),
        ("reached", s.reached),
        ("interested", interested),
        ("leads", s.leads),
        ("won", s.won),
        ("invoiced", s.invoiced_customers),
    ];
    let funnel = steps
        .iter()
        .enumerate()
        .map(|(i, (n, c))| FunnelStep {
            step: n.to_string(),
            count: *c,
            conversion_pct: (i > 0)
                .then(|| pct(*c as i128, steps[i - 1].1 as i128))
                .flatten(),
        })
        .collect();
    CampaignReport {
        campaign,
        name: name.to_string(),
        period,
        currency,
        targets: s.targets,
        reached: s.reached,
        interested,
        leads: s.leads,
        won: s.won,
        invoiced_customers: s.invoiced_customers,
        revenue: units(s.revenue_units),
        cost_of_goods: units(s.cost_units),
        gross_profit: units(gp),
        campaign_cost: units(s.campaign_cost_units),
        net_profit: units(net),
        roi_pct: pct(net, s.campaign_cost_units),
        funnel,
        outcomes: s.outcomes.clone(),
    }
}

/// Progress of a campaign's calls for one agent (or, with `agent: None`, the whole campaign).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The agent.
    pub agent: Option<UserId>,
    /// Targets given to the agent.
    pub targets: u64,
    /// Targets with a final outcome (interested, not interested, wrong contact).
    pub done: u64,
    /// Targets still to call.
    pub remaining: u64,
    /// Latest outcome counts.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
    /// Targets by the state of their message (e-mail and SMS campaigns; empty before a send): queued, delivered,
    /// opened, bounced, unsubscribed, and those skipped (no address, no consent, not rendered).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub messages: BTreeMap<super::send::SendStatus, u64>,
}

impl Progress {
    /// Folds grouped `(agent, latest outcome, message state, count)` rows of a campaign's targets into its
    /// progress: the total first (agent `None`), then one row per agent by agent id. Adapters compute the rows with
    /// one GROUP BY.
    ///
    /// ```
    /// use crm_core::commerce::{send::SendStatus, OutcomeKind, Progress};
    /// use crm_core::id::UserId;
    /// let ana = UserId::new();
    /// let p = Progress::tally([
    ///     (Some(ana), Some(OutcomeKind::Interested), None, 2),
    ///     (Some(ana), None, None, 3),
    ///     (None, None, Some(SendStatus::Opened), 1),
    /// ]);
    /// assert_eq!((p[0].targets, p[0].done, p[0].remaining), (6, 2, 4));
    /// assert_eq!(p[0].messages.get(&SendStatus::Opened), Some(&1));
    /// assert_eq!((p[1].agent, p[1].targets), (Some(ana), 5));
    /// ```
    pub fn tally(
        rows: impl IntoIterator<
            Item = (
                Option<UserId>,
                Option<OutcomeKind>,
                Option<super::send::SendStatus>,
                u64,
            ),
        >,
    ) -> Vec<Progress> {
        let mut total = Progress::default();
        let mut by: BTreeMap<UserId, Progress> = BTreeMap::new();
        for (agent, outcome, send, n) in rows {
            let mut rows: Vec<&mut Progress> = vec![&mut total];
            if let Some(a) = agent {
                rows.push(by.entry(a).or_insert_with(|| Progress {
                    agent: Some(a),
                    ..Default::default()
                }));
            }
            for p in rows {
                p.targets += n;
                if outcome.is_some_and(OutcomeKind::is_final) {
                    p.done += n;
                } else {
                    p.remaining += n;
                }
                if let Some(o) = outcome {
                    *p.outcomes.entry(o).or_default() += n;
                }
                if let Some(s) = send {
                    *p.messages.entry(s).or_default() += n;
                }
            }
        }
        std::iter::once(total).chain(by.into_values()).collect()
    }
}

/// A document still (partly) unsettled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenItem {
    /// The document.
    pub document: DocumentId,
    /// Invoice or vendor bill.
    pub kind: DocumentKind,
    /// The host's number.
    pub number: String,
    /// Issue date.
    pub issue_date: NaiveDate,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// Currency.
    pub currency: Currency,
    /// Total.
    pub total: Decimal,
    /// Settled by payments and correcting credit notes.
    pub settled: Decimal,
    /// Total − settled.
    pub open: Decimal,
    /// Days past the due date on the as-of day (0 when not due yet or nothing is open).
    pub days_overdue: i64,
}

impl OpenItem {
    /// The open item of invoice or bill `d` with `open_units` (10^-4) still open on `as_of`.
    pub fn of(d: &super::document::Document, open_units: i128, as_of: NaiveDate) -> OpenItem {
        let open = units_to_decimal(open_units);
        OpenItem {
            document: d.id,
            kind: d.kind,
            number: d.number.clone(),
            issue_date: d.issue_date,
            due_date: d.due_date,
            currency: d.currency,
            total: d.total,
            settled: units_to_decimal(d.total_units() as i128 - open_units),
            open,
            days_overdue: days_overdue(open, d.due_date, as_of),
        }
    }
}

/// A partner's balance in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The currency.
    pub currency: Currency,
    /// Invoices − credit notes − payments received: what the partner owes the tenant.
    pub receivable: Decimal,
    /// Vendor bills − payments sent: what the tenant owes the partner.
    pub payable: Decimal,
    /// The open amount of invoices past due on the as-of day.
    pub overdue: Decimal,
}

impl Balance {
    /// The balance in `currency` from its receivable and payable sums (10^-4 units), the overdue figure from the
    /// partner's open `items` on the same day.
    pub fn of(
        currency: Currency,
        receivable_units: i128,
        payable_units: i128,
        items: &[OpenItem],
    ) -> Balance {
        let overdue: i128 = items
            .iter()
            .filter(|i| {
                i.currency == currency && i.kind == DocumentKind::Invoice && i.days_overdue > 0
            })
            .map(|i| crate::money::decimal_to_units(i.open).unwrap_or(0) as i128)
            .sum();
        Balance {
            currency,
            receivable: units_to_decimal(receivable_units),
            payable: units_to_decimal(payable_units),
            overdue: units_to_decimal(overdue),
        }
    }
}

/// Sorts open items: by due date (none last), then number.
pub fn order_open_items(items: &mut [OpenItem]) {
    items.sort_by(|a, b| {
        (a.due_date.is_none(), a.due_date, a.kind, &a.number).cmp(&(
            b.due_date.is_none(),
            b.due_date,
            b.kind,
            &b.number,
        ))
    });
}

/// Days overdue on `as_of` of an item with `open` left and due date `due`.
pub fn days_overdue(open: Decimal, due: Option<NaiveDate>, as_of: NaiveDate) -> i64 {
    match due {
        Some(d) if open > Decimal::ZERO && d < as_of => (as_of - d).num_days(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_figures() {
        assert_eq!(pct(1, 3), Some(Decimal::new(3333, 2)));
        assert_eq!(pct(-50, 200), Some(Decimal::new(-2500, 2)));
        assert_eq!(pct(1, 0), None);
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let q = ProfitQuery {
            period: Period::new(d(2, 1), d(3, 31)).unwrap(),
            group_by: GroupBy::Customer,
            bucket: Some(Bucket::Month),
            compare: true,
            rank: None,
        };
        let jan = Bucket::Month.index(d(1, 1));
        let s = |b: i64, rev: i128, cost: i128, n| ProfitSums {
            key: Some("a".into()),
            bucket: Some(b),
            revenue_units: rev,
            cost_units: cost,
            invoices: n,
        };
        let rows = finish_profitability(
            &q,
            &[
                s(jan, 1_000_000, 500_000, 1),
                s(jan + 1, 3_000_000, 2_000_000, 2),
                s(jan + 2, 0, 0, 0),
            ],
            None,
        );
        assert_eq!(rows.len(), 2, "January only serves the comparison");
        assert_eq!(rows[0].bucket, Some(d(2, 1)));
        assert_eq!(rows[0].gross_profit, Decimal::from(100));
        assert_eq!(rows[0].change_pct, Some(Decimal::from(100)));
        assert_eq!(rows[0].margin_pct, Some(Decimal::new(3333, 2)));
        assert_eq!(rows[0].average_invoice, Some(Decimal::from(150)));
        assert_eq!(rows[1].change_pct, Some(Decimal::from(-100)));
        assert_eq!(rows[1].average_invoice, None);
    }

    #[test]
    fn ranking_order() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let q = SumsQuery {
            period: Period::new(d, d).unwrap(),
            group_by: GroupBy::Group,
            bucket: None,
            reporting: Currency::parse("EUR").unwrap(),
            rank: Some(Rank {
                order: RankOrder::Top,
                n: 2,
            }),
        };
        let s = |k: Option<&str>, p: i128| ProfitSums {
            key: k.map(Into::into),
            bucket: None,
            revenue_units: p,
            cost_units: 0,
            invoices: 1,
        };
        let mut v = vec![
            s(Some("b"), 5),
            s(None, 5),
            s(Some("a"), 1),
            s(Some("c"), 9),
        ];
        order_sums(&mut v, &q);
        assert_eq!(
            v.iter().map(|x| x.key.as_deref()).collect::<Vec<_>>(),
            vec![Some("c"), None]
        );
    }
}

/// What [`CommerceStore::rollups`](super::CommerceStore::rollups) does with the sales roll-ups.
///
/// The roll-ups are sums an adapter keeps per reporting currency, grouping ([`GroupBy`]), month and key, updated
/// in the transaction that records, replaces or re-points each sales document, so a report over whole months reads
/// them instead of the documents. The reference store has none (it sums the documents every time) and answers
/// every action with no difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollupAction {
    /// Recompute the sums from the documents and report every month whose stored sums differ.
    Verify,
    /// As `Verify`, then replace the tenant's roll-ups by the recomputed sums, in one transaction.
    Rebuild,
    /// A step of a bulk load (see [`BulkStep`](crate::store::BulkStep)): nothing is verified, and
    /// [`RollupCheck::bulk`] says where loading stands after it.
    Bulk(crate::store::BulkStep),
}

/// One month's sums of one group, as the roll-ups hold them or as the documents give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RollupSums {
    /// Net revenue in 10^-4 reporting units.
    pub revenue_units: i128,
    /// Net cost of goods in 10^-4 reporting units.
    pub cost_units: i128,
    /// Sales invoices.
    pub invoices: u64,
    /// Sales documents (invoices and credit notes).
    pub documents: u64,
}

/// A month, day or (by customer) year of one group whose stored roll-up differs from the documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupDifference {
    /// The reporting currency.
    pub reporting: Currency,
    /// The grouping.
    pub group_by: GroupBy,
    /// The month ([`Bucket::Month`]'s index).
    pub month: i64,
    /// The day, when the difference is in the day roll-up (which the partial months at a period's edges read;
    /// every grouping but the customer's); `None` for the month roll-up.
    #[serde(default)]
    pub day: Option<NaiveDate>,
    /// The year, when the difference is in the customer year roll-up (which the whole years of a period by customer
    /// read); `month` is then its January. `None` for the month and day roll-ups.
    #[serde(default)]
    pub year: Option<i32>,
    /// The group key (as [`ProfitSums::key`]).
    pub key: Option<String>,
    /// What the roll-ups hold (`None`: no row).
    pub stored: Option<RollupSums>,
    /// What the documents give (`None`: no sales).
    pub lines: Option<RollupSums>,
}

/// A partner's segment fact whose stored roll-up differs from the documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactDifference {
    /// The partner.
    pub partner: PartnerId,
    /// Which fact, and both sides of it.
    pub fact: PartnerFact,
}

/// One of a partner's facts that segments read, as the roll-ups hold it (`stored`) and as the documents give it
/// (`lines`); `None` is no row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum PartnerFact {
    /// The day of the partner's last sales invoice.
    LastSale {
        /// What the roll-ups hold.
        stored: Option<NaiveDate>,
        /// What the documents give.
        lines: Option<NaiveDate>,
    },
    /// The net quantity (10^-4 units) of a product or category the partner bought in a month.
    Bought {
        /// The product or category.
        item: super::Item,
        /// The month ([`Bucket::Month`]'s index).
        month: i64,
        /// What the roll-ups hold.
        stored: Option<i64>,
        /// What the documents give.
        lines: Option<i64>,
    },
}

/// A row of the campaign roll-up that differs from the documents: a customer's net revenue (units of the
/// reporting currency) from a campaign's sales in a calendar month, quarter or year or over all time, or the
/// number of customers whose net revenue there is positive (what the campaign report calls invoiced customers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDifference {
    /// The reporting currency.
    pub reporting: Currency,
    /// The campaign.
    pub campaign: CampaignId,
    /// The calendar bucket, `None` for all time.
    pub bucket: Option<Bucket>,
    /// The bucket's index ([`Bucket::index`]; 0 for all time).
    pub index: i64,
    /// The customer whose net revenue this is; `None` for the count of customers with a positive one.
    pub partner: Option<PartnerId>,
    /// What the roll-ups hold (`None`: no row, or zero).
    pub stored: Option<i64>,
    /// What the documents give (`None`: no row, or zero).
    pub lines: Option<i64>,
}

/// What a count of a campaign's targets counts (see [`TargetCountDifference`]): every target, those reached on a
/// day, or those whose latest outcome, of a kind, was recorded on a day. Held-out targets count in none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TargetMeasure {
    /// The campaign's targets, held-out ones left out.
    Targets,
    /// The targets first reached on the day.
    Reached,
    /// The targets whose latest outcome, of this kind, was recorded on the day.
    Outcome(OutcomeKind),
}

/// A count of the campaign report's target roll-up that differs from the targets: how many targets of a campaign
/// a [`TargetMeasure`] counts, in all ([`TargetMeasure::Targets`], `day` `None`) or on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCountDifference {
    /// The campaign.
    pub campaign: CampaignId,
    /// What is counted.
    pub measure: TargetMeasure,
    /// The day (UTC) of the reach or the outcome; `None` for [`TargetMeasure::Targets`].
    pub day: Option<NaiveDate>,
    /// What the roll-up holds (`None`: no row, or zero).
    pub stored: Option<u64>,
    /// What the targets give (`None`: none).
    pub targets: Option<u64>,
}

/// A document whose reporting sums (what the roll-ups add up) differ from the sums of its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentDifference {
    /// The document.
    pub document: DocumentId,
    /// Its kind.
    pub kind: DocumentKind,
    /// Its number.
    pub number: String,
    /// Its revenue and cost units as stored with the document.
    pub stored: (i64, i64),
    /// The sums of its lines' revenue and cost units.
    pub lines: (i64, i64),
}

/// What a roll-up check found (and, for [`RollupAction::Rebuild`], repaired).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RollupCheck {
    /// The differing months, by currency, grouping, month and key; at most [`RollupCheck::MAX_LISTED`].
    pub differences: Vec<RollupDifference>,
    /// The differing partner facts (last sale, quantities bought), by fact and partner; at most
    /// [`RollupCheck::MAX_LISTED`].
    #[serde(default)]
    pub facts: Vec<FactDifference>,
    /// The differing rows of the campaign roll-up, by kind, currency, campaign, bucket and partner; at most
    /// [`RollupCheck::MAX_LISTED`].
    #[serde(default)]
    pub campaigns: Vec<CampaignDifference>,
    /// The documents whose reporting sums differ from their lines' (the roll-ups sum the documents' sums, so the
    /// lines are checked against those first), by id; at most [`RollupCheck::MAX_LISTED`]. A rebuild sets them
    /// from the lines before it sums the roll-ups.
    #[serde(default)]
    pub documents: Vec<DocumentDifference>,
    /// The differing counts of the campaign targets the campaign report reads (targets, reached, outcomes), by
    /// campaign, measure and day; at most [`RollupCheck::MAX_LISTED`].
    #[serde(default)]
    pub targets: Vec<TargetCountDifference>,
    /// Whether more differences exist than are listed.
    pub more: bool,
    /// Whether the roll-ups were rebuilt from the documents.
    pub rebuilt: bool,
    /// After a [`RollupAction::Bulk`] step, where bulk loading stands (`None` after a check or rebuild).
    #[serde(default)]
    pub bulk: Option<crate::store::BulkLoad>,
}

impl RollupCheck {
    /// The most differences a check lists.
    pub const MAX_LISTED: usize = 1000;

    /// The answer of a store that keeps no roll-ups (it sums the documents for every report): nothing differs,
    /// and a rebuild has nothing to rebuild.
    pub fn without_rollups(action: RollupAction) -> Self {
        Self {
            rebuilt: action == RollupAction::Rebuild,
            bulk: match action {
                RollupAction::Bulk(_) => Some(crate::store::BulkLoad::default()),
                _ => None,
            },
            ..Self::default()
        }
    }

    /// Whether the roll-ups equal the documents, and the documents their lines (before any rebuild).
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
            && self.facts.is_empty()
            && self.campaigns.is_empty()
            && self.documents.is_empty()
            && self.targets.is_empty()
    }
}
