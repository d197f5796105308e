//! The account and campaign-progress statements. Sums are of 10^-4 integer units (SQLite returns them as
//! integers, PostgreSQL as exact numerics); the rows fold into the report types with the pure functions of
//! `crm_core::commerce` (`Progress::tally`, `OpenItem::of`, `Balance::of`).

use crate::{Dialect, Param, Sql};
use chrono::NaiveDate;
use crm_core::commerce::day_number;
use crm_core::id::{CampaignId, PartnerId, TenantId};

/// `(agent, outcome code, count)` of a campaign's targets, grouped.
pub fn progress(dialect: Dialect, tenant: TenantId, campaign: CampaignId) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let c = sql.bind(*campaign.as_uuid());
    sql.text = format!(
        "SELECT agent, outcome, count(*) FROM campaign_targets WHERE tenant = {t} AND campaign = {c} \
         GROUP BY agent, outcome"
    );
    sql
}

/// `(document JSON, open units)` of a partner's invoices and bills still open at the end of `as_of`: documents,
/// payments (by their allocations) and correcting credit notes issued after it do not count.
pub fn open_items(dialect: Dialect, tenant: TenantId, partner: PartnerId, as_of: NaiveDate) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let p = sql.bind(*partner.as_uuid());
    let day = sql.bind(Param::Day(day_number(as_of)));
    sql.text = format!(
        "SELECT doc, open FROM (\
           SELECT {doc} AS doc, d.total_units \
             - COALESCE((SELECT sum(a.amount_units) FROM allocations a \
                 JOIN documents p ON p.tenant = a.tenant AND p.id = a.document \
                 WHERE a.tenant = d.tenant AND a.partner = d.partner AND a.target_kind = d.kind \
                 AND a.target_number = d.number AND p.issue_day <= {day}), 0) \
             - CASE WHEN d.kind = 0 THEN COALESCE((SELECT sum(x.total_units) FROM documents x \
                 WHERE x.tenant = d.tenant AND x.partner = d.partner AND x.kind = 1 \
                 AND x.corrects = d.number AND x.issue_day <= {day}), 0) ELSE 0 END AS open \
           FROM documents d WHERE d.tenant = {t} AND d.partner = {p} AND d.kind IN (0, 2) \
             AND d.issue_day <= {day}) AS items \
         WHERE open <> 0",
        doc = match dialect {
            Dialect::Sqlite => "d.doc",
            Dialect::Postgres => "d.doc::text",
        }
    );
    sql
}

/// `(currency, receivable units, payable units)` of a partner at the end of `as_of`, by currency code.
pub fn balances(dialect: Dialect, tenant: TenantId, partner: PartnerId, as_of: NaiveDate) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let p = sql.bind(*partner.as_uuid());
    let day = sql.bind(Param::Day(day_number(as_of)));
    let currency = match dialect {
        Dialect::Sqlite => "currency",
        Dialect::Postgres => "currency::text",
    };
    sql.text = format!(
        "SELECT {currency}, \
           sum(CASE WHEN kind = 0 THEN total_units WHEN kind = 1 THEN -total_units \
                    WHEN kind = 3 AND COALESCE(direction, 0) = 0 THEN -total_units ELSE 0 END), \
           sum(CASE WHEN kind = 2 THEN total_units WHEN kind = 3 AND direction = 1 THEN -total_units ELSE 0 END) \
         FROM documents WHERE tenant = {t} AND partner = {p} AND issue_day <= {day} \
         GROUP BY currency ORDER BY {}",
        dialect.text("currency")
    );
    sql
}
