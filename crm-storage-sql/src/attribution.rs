//! The reads of an attribution report ([`crm_core::commerce::attribution`]), one batch (one snapshot): the period's
//! sales count and gross profit from the roll-ups, the sales a touch or link may credit (those of partners some
//! campaign targeted or brought a lead for, and the linked ones), the targets of launched campaigns with the day
//! their call reached them, the launched campaigns (their launch day is in their document), the leads with a
//! source campaign created in range and the meetings held in range about such leads. The touches' days are filtered here, in Rust, exactly as the reference does.

use crate::run::{corrupt, Runner};
use crate::Cell;
use crate::{micro_bounds, Dialect, Param, Sql};
use crm_core::commerce::day_number;
use crm_core::commerce::{
    from_day_number, AttributionInputs, AttributionScope, Campaign, Period, Sale, Touch, TouchKind,
};
use crm_core::id::{CampaignId, DocumentId, PartnerId, TenantId};
use crm_core::Result;
use std::collections::BTreeMap;

/// The six statements of [`attribution_inputs`], in order: totals, sales, targets, campaigns, leads, held meetings
/// about leads with a source campaign.
///
/// ```
/// use crm_core::commerce::{AttributionScope, Period};
/// use crm_storage_sql::{attribution::attribution_sql, Dialect};
/// let scope = AttributionScope {
///     period: Period::year(2026).unwrap(),
///     lookback_days: 90,
///     reporting: crm_core::money::Currency::parse("EUR").unwrap(),
/// };
/// let sql = attribution_sql(Dialect::Postgres, crm_core::id::TenantId::new(), &scope);
/// assert_eq!(sql.len(), 6);
/// // The totals of a whole year read the customer year roll-up.
/// assert!(sql[0].text.contains("sales_years"));
/// ```
pub fn attribution_sql(dialect: Dialect, tenant: TenantId, scope: &AttributionScope) -> Vec<Sql> {
    let created = match dialect {
        Dialect::Sqlite => "created_at",
        Dialect::Postgres => "created_us",
    };
    let totals = {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let r = sql.bind(scope.reporting.code());
        let rows = crate::rollup::sales_rows(
            &mut sql,
            crate::rollup::SalesRows {
                tenant: &t,
                reporting: &r,
                group_by: crm_core::commerce::GroupBy::Customer,
                bucket: None,
                key: None,
                period: scope.period,
            },
        );
        sql.text = format!(
            "SELECT COALESCE(sum(rd), 0), COALESCE(sum(rrev - rcost), 0) FROM ({rows}) AS s"
        );
        sql
    };
    let sales = {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let r = sql.bind(scope.reporting.code());
        let a = sql.bind(Param::Day(day_number(scope.period.from())));
        let b = sql.bind(Param::Day(day_number(scope.period.to())));
        // The partners a campaign touched are joined, not tested with `IN (subquery)` inside an `OR`: PostgreSQL
        // hashes such a subquery only when it expects it to fit in `work_mem`, and otherwise rescans it for every
        // document (at M, a million leads for each of 450k documents).
        sql.text = format!(
            "SELECT d.partner, d.issue_day, d.id, d.campaign, d.revenue_units - d.cost_units FROM documents d \
             LEFT JOIN (SELECT partner FROM campaign_targets WHERE tenant = {t} AND holdout = 0 \
               UNION SELECT partner FROM leads WHERE tenant = {t} AND campaign IS NOT NULL) AS touched \
               ON touched.partner = d.partner \
             WHERE d.tenant = {t} AND d.kind IN (0, 1) AND d.reporting = {r} AND d.issue_day BETWEEN {a} AND {b} \
             AND (d.campaign IS NOT NULL OR touched.partner IS NOT NULL)"
        );
        sql
    };
    let targets = {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let delivered = dialect.json_text("doc", &["send", "delivered_at"]);
        let opened = dialect.json_text("doc", &["send", "opened_at"]);
        sql.text = format!(
            "SELECT campaign, partner, reached_at, {delivered}, {opened} FROM campaign_targets \
             WHERE tenant = {t} AND holdout = 0"
        );
        sql
    };
    let campaigns = {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let doc = match dialect {
            Dialect::Sqlite => "doc",
            Dialect::Postgres => "doc::text",
        };
        sql.text = format!("SELECT {doc} FROM campaigns WHERE tenant = {t} AND status <> 0");
        sql
    };
    let leads = {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let first = Period::new(scope.first_touch_day(), scope.period.to()).ok();
        let (m1, m2) = micro_bounds(first);
        let (a, b) = (sql.bind(m1), sql.bind(m2));
        sql.text = format!(
            "SELECT campaign, partner, {created} FROM leads WHERE tenant = {t} AND campaign IS NOT NULL \
             AND status <> 3 AND {created} >= {a} AND {created} < {b}"
        );
        sql
    };
    let meetings = {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let first = Period::new(scope.first_touch_day(), scope.period.to()).ok();
        let (m1, m2) = micro_bounds(first);
        let (a, b) = (sql.bind(m1), sql.bind(m2));
        let held = crate::commerce::meeting_status_code(crm_core::sales::MeetingStatus::Held);
        sql.text = format!(
            "SELECT l.campaign, l.partner, m.starts_us FROM meetings m JOIN leads l ON l.tenant = m.tenant \
             AND l.id = m.lead WHERE m.tenant = {t} AND m.status = {held} AND m.starts_us >= {a} \
             AND m.starts_us < {b} AND l.status <> 3 AND l.campaign IS NOT NULL"
        );
        sql
    };
    vec![totals, sales, targets, campaigns, leads, meetings]
}

/// [`CampaignMeasuresExt::attribution_inputs`](crm_core::commerce::CampaignMeasuresExt::attribution_inputs) on a [`Runner`].
pub async fn attribution_inputs<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    scope: &AttributionScope,
) -> Result<AttributionInputs> {
    scope.check()?;
    let [totals, sales, targets, campaigns, leads, meetings]: [Vec<Vec<crate::Cell>>; 6] = r
        .rows_batch(attribution_sql(r.dialect(), tenant, scope))
        .await?
        .try_into()
        .map_err(|_| corrupt("attribution", "a statement gave no result"))?;
    let (first, last) = (scope.first_touch_day(), scope.period.to());
    let in_range = |d: chrono::NaiveDate| first <= d && d <= last;
    let day_of = |micros: i128| {
        i64::try_from(micros)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.date_naive())
            .ok_or_else(|| corrupt("touch time", micros))
    };
    let mut inputs = AttributionInputs::default();
    if let Some(row) = totals.first() {
        inputs.total_sales = row[0].count("sales")?;
        inputs.total_units = row[1].int("sum of units")?;
    }
    for row in &sales {
        let day = row[1].int("issue day")?;
        inputs.sales.push(Sale {
            partner: PartnerId::from_uuid(row[0].uuid("partner")?),
            issue_date: i32::try_from(day)
                .ok()
                .and_then(from_day_number)
                .ok_or_else(|| corrupt("issue day", day))?,
            document: DocumentId::from_uuid(row[2].uuid("document")?),
            campaign: row[3].opt_uuid("campaign")?.map(CampaignId::from_uuid),
            gross_profit_units: row[4].int("gross profit units")?,
        });
    }
    let mut launched: BTreeMap<CampaignId, chrono::NaiveDate> = BTreeMap::new();
    for row in &campaigns {
        let c: Campaign = crate::fetch::Doc::parse_as(row[0].text("campaign")?, "campaign")?;
        if let Some(at) = c.launched_at() {
            launched.insert(c.id(), at.date_naive());
        }
    }
    for row in &targets {
        let campaign = CampaignId::from_uuid(row[0].uuid("campaign")?);
        let partner = PartnerId::from_uuid(row[1].uuid("partner")?);
        let mut touch = |on, kind| {
            if in_range(on) {
                inputs.touches.push(Touch {
                    partner,
                    on,
                    kind,
                    campaign,
                });
            }
        };
        if let Some(on) = launched.get(&campaign) {
            touch(*on, TouchKind::Targeted);
        }
        if let Some(at) = row[2].opt_int("reached at")? {
            touch(day_of(at)?, TouchKind::Reached);
        }
        for (cell, kind) in [(&row[3], TouchKind::Messaged), (&row[4], TouchKind::Opened)] {
            if let Cell::Text(at) = cell {
                let at = chrono::DateTime::parse_from_rfc3339(at)
                    .map_err(|e| corrupt("message time", e))?;
                touch(at.to_utc().date_naive(), kind);
            }
        }
    }
    for (rows, kind, time) in [
        (&leads, TouchKind::Lead, "lead created"),
        (&meetings, TouchKind::Meeting, "meeting start"),
    ] {
        for row in rows {
            let campaign = CampaignId::from_uuid(row[0].uuid("lead source campaign")?);
            let on = day_of(row[2].int(time)?)?;
            if in_range(on) {
                inputs.touches.push(Touch {
                    partner: PartnerId::from_uuid(row[1].uuid("partner")?),
                    on,
                    kind,
                    campaign,
                });
            }
        }
    }
    inputs.normalize();
    Ok(inputs)
}
