//! A campaign's outcome sums ([`crm_core::commerce::OutcomeSums`]) as one statement: the campaign's targets
//! (held out or not) left-joined to the customers' net sales over the window and, per promoted item, the partners'
//! net quantities, each a grouped scan of the roll-ups (whole months) and of the documents or lines at the window's
//! edges, as the segments read them (`crate::segment`); then one GROUP BY over the holdout flag.

use crate::run::{corrupt, Runner};
use crate::{Dialect, Sql};
use crm_core::commerce::{GroupSums, OutcomeQuery, OutcomeSums};
use crm_core::id::{CampaignId, TenantId};
use crm_core::Result;

/// The statement of [`crm_core::commerce::CampaignMeasuresExt::campaign_outcomes`]: rows `(holdout, partners,
/// reactivated, bought, revenue units, cost units)`, one per group present.
///
/// # Errors
/// [`crm_core::Error::Invalid`] on `promoted` ([`OutcomeQuery::check`]).
///
/// ```
/// use crm_core::commerce::{Item, OutcomeQuery, Period};
/// use crm_storage_sql::{uplift::outcomes_sql, Dialect};
/// let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
/// let q = OutcomeQuery {
///     window: Period::new(d(3, 15), d(6, 30)).unwrap(),
///     promoted: vec![
///         Item::Product(crm_core::id::ProductId::new()),
///         Item::Category(crm_core::id::CategoryId::new()),
///     ],
///     reporting: crm_core::money::Currency::parse("EUR").unwrap(),
/// };
/// let sql = outcomes_sql(Dialect::Sqlite, crm_core::id::TenantId::new(), crm_core::id::CampaignId::new(), &q).unwrap();
/// // A product's lines, a category's bought months.
/// assert!(sql.text.contains("FROM campaign_targets ct") && sql.text.contains("l.product = "));
/// assert!(sql.text.contains("bought_months"));
/// ```
pub fn outcomes_sql(
    dialect: Dialect,
    tenant: TenantId,
    campaign: CampaignId,
    q: &OutcomeQuery,
) -> Result<Sql> {
    q.check()?;
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let c = sql.bind(*campaign.as_uuid());
    let r = sql.bind(q.reporting.code());
    let mut ctes = vec![format!(
        "s AS ({})",
        crate::segment::customer_sales(&mut sql, &t, &r, q.window)
    )];
    let mut joins = String::new();
    let mut bought = Vec::new();
    for (i, item) in q.promoted.iter().enumerate() {
        ctes.push(format!(
            "b{i} AS ({})",
            crate::segment::bought_rows(&mut sql, &t, item, q.window)
        ));
        joins.push_str(&format!(" LEFT JOIN b{i} ON b{i}.partner = ct.partner"));
        bought.push(format!("COALESCE(b{i}.q, 0) > 0"));
    }
    let bought = if bought.is_empty() {
        "0".to_string()
    } else {
        format!("sum(CASE WHEN {} THEN 1 ELSE 0 END)", bought.join(" OR "))
    };
    let zero = match dialect {
        Dialect::Sqlite => "0",
        Dialect::Postgres => "0::bigint",
    };
    sql.text = format!(
        "WITH {} SELECT ct.holdout, count(*), sum(CASE WHEN COALESCE(s.v, 0) > 0 THEN 1 ELSE 0 END), {bought}, \
         COALESCE(sum(s.v), {zero}), COALESCE(sum(s.c), {zero}) \
         FROM campaign_targets ct LEFT JOIN s ON s.partner = ct.partner{joins} \
         WHERE ct.tenant = {t} AND ct.campaign = {c} GROUP BY ct.holdout",
        ctes.join(", ")
    );
    Ok(sql)
}

/// [`CampaignMeasuresExt::campaign_outcomes`](crm_core::commerce::CampaignMeasuresExt::campaign_outcomes) on a [`Runner`].
pub async fn campaign_outcomes<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    campaign: CampaignId,
    q: &OutcomeQuery,
) -> Result<OutcomeSums> {
    let sql = outcomes_sql(r.dialect(), tenant, campaign, q)?;
    let mut out = OutcomeSums::default();
    // Each window and item list is its own statement: run it once, without filling a statement cache.
    for row in r.rows(sql, true).await? {
        let g = GroupSums {
            partners: row[1].count("targets")?,
            reactivated: row[2].count("reactivated")?,
            bought: row[3].count("bought")?,
            revenue_units: row[4].int("sum of units")?,
            cost_units: row[5].int("sum of units")?,
        };
        match row[0].int("holdout")? {
            0 => out.targets = g,
            1 => out.holdout = g,
            other => return Err(corrupt("holdout", other)),
        }
    }
    Ok(out)
}
