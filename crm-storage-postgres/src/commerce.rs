//! `CommerceStore` on PostgreSQL: products, documents, rates, campaigns and the reports, pushed down to SQL.
//!
//! The same layout and queries as the SQLite adapter (a reader who knows one knows the other): reports are GROUP
//! BY queries over bigint 10^-4 units, already converted into the reporting currency when a document was
//! recorded; segments are one SELECT over `partners` whose WHERE clause is generated from the criteria tree, with
//! every leaf written so that it is never NULL (so `NOT` keeps two-valued logic, as the reference evaluator has).
//! Text keys are compared and ordered with `COLLATE "C"` (byte order), whatever the database's collation.

use crate::error::{corrupt, map_pg};
use crate::rows::{self, Table, Value};
use crate::store::{PgStore, Sql, Tx};
use async_trait::async_trait;
use chrono::NaiveDate;
use crm_core::commerce::{
    Balance, CampaignSums, CampaignTarget, CommerceStore, CommerceWrite, Criteria, Document,
    OpenItem, OutcomeKind, Period, ProfitSums, Progress, SegmentMember, SumsQuery,
};
use crm_core::commerce::{CommerceKey, CommerceRecord};
use crm_core::id::{CampaignId, PartnerId, TenantId, UserId};
use crm_core::money::Currency;
use crm_core::store::{Cursor, Page, PageRequest};
use crm_core::{Error, Result};
use crm_storage_sql::commerce::{self, Step};
use crm_storage_sql::segment::segment_sql;
use crm_storage_sql::{fetch, report, Dialect};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use uuid::Uuid;

/// Runs the statements of one commerce write (built in `crm_storage_sql::commerce`) inside the commit's transaction.
pub(crate) async fn apply(tx: &Tx<'_>, w: &CommerceWrite) -> Result<()> {
    for step in commerce::steps(Dialect::Postgres, w)? {
        match step {
            Step::Insert { sql, entity, key } => {
                let sql = Sql::from(sql);
                let stmt = tx.prepare_cached(&sql.text).await.map_err(map_pg)?;
                tx.execute(&stmt, &rows::params(&sql.params))
                    .await
                    .map_err(|e| match map_pg(e) {
                        Error::AlreadyExists { .. } => Error::AlreadyExists { entity, key },
                        other => other,
                    })?;
            }
            Step::Update {
                sql,
                current,
                entity,
                id,
                expected,
            } => {
                if execute(tx, sql).await? == 0 {
                    let current = Sql::from(current);
                    let stmt = tx.prepare_cached(&current.text).await.map_err(map_pg)?;
                    let stored = tx
                        .query_opt(&stmt, &rows::params(&current.params))
                        .await
                        .map_err(map_pg)?
                        .map(|r| r.get::<_, i64>(0));
                    return Err(commerce::missed_update(entity, id, expected, stored));
                }
            }
            Step::Run(sql) => {
                execute(tx, sql).await?;
            }
        }
    }
    Ok(())
}

async fn execute(tx: &Tx<'_>, sql: crm_storage_sql::Sql) -> Result<u64> {
    let sql = Sql::from(sql);
    let stmt = tx.prepare_cached(&sql.text).await.map_err(map_pg)?;
    tx.execute(&stmt, &rows::params(&sql.params))
        .await
        .map_err(map_pg)
}

/// The rows an insert-only commerce write adds, per table (for ingest).
pub(crate) fn ingest_rows(w: &CommerceWrite) -> Result<Vec<(&'static Table, Vec<Value>)>> {
    Ok(commerce::ingest_rows(w)?
        .into_iter()
        .map(|(t, row)| (t, row.into_iter().map(rows::bind).collect()))
        .collect())
}

// ------------------------------------------------------------------------------------------------ reads

/// A SUM over bigint comes back as NUMERIC: an exact integer.
fn units(d: Option<Decimal>) -> Result<i128> {
    let d = d.unwrap_or_default();
    d.to_i128()
        .filter(|_| d.fract().is_zero())
        .ok_or_else(|| corrupt("sum of units", d))
}

fn outcome_of(code: i16) -> Result<OutcomeKind> {
    OutcomeKind::from_code(code).ok_or_else(|| corrupt("outcome", code))
}

impl PgStore {
    async fn docs<T: serde::de::DeserializeOwned>(&self, sql: &Sql, what: &str) -> Result<Vec<T>> {
        self.run(sql)
            .await?
            .iter()
            .map(|r| rows::doc(r, 0, what))
            .collect()
    }
}

#[async_trait]
impl CommerceStore for PgStore {
    async fn fetch_commerce(
        &self,
        tenant: TenantId,
        key: &CommerceKey,
    ) -> Result<Vec<CommerceRecord>> {
        let (sql, doc) = fetch::commerce_key(Dialect::Postgres, tenant, key)?;
        self.run(&Sql::from(sql))
            .await?
            .iter()
            .map(|r| doc.commerce_record(r.get::<_, &str>(0)))
            .collect()
    }

    async fn campaign_targets(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        page: &PageRequest,
    ) -> Result<Page<CampaignTarget>> {
        page.validate()?;
        let after = match &page.after {
            Some(cur) => cur.decode()?.1,
            None => Uuid::nil(),
        };
        let mut sql = Sql::new();
        let t = sql.bind(*tenant.as_uuid());
        let c = sql.bind(*campaign.as_uuid());
        let a = sql.bind(after);
        let l = sql.bind(i64::from(page.limit) + 1);
        sql.text = format!(
            "SELECT doc FROM campaign_targets WHERE tenant = {t} AND campaign = {c} AND partner > {a} \
             ORDER BY partner LIMIT {l}"
        );
        let mut items: Vec<CampaignTarget> = self.docs(&sql, "campaign target").await?;
        let next = if items.len() > page.limit as usize {
            items.truncate(page.limit as usize);
            items
                .last()
                .map(|t| Cursor::encode(0, *t.partner().as_uuid()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn segment(
        &self,
        tenant: TenantId,
        criteria: &Criteria,
        as_of: NaiveDate,
        reporting: Currency,
    ) -> Result<Vec<SegmentMember>> {
        criteria.check()?;
        let sql = Sql::from(segment_sql(
            Dialect::Postgres,
            tenant,
            criteria,
            as_of,
            reporting,
        ));
        // Every criteria tree is its own statement: prepare it once, without filling the statement cache.
        Ok(self
            .run_uncached(&sql)
            .await?
            .iter()
            .map(|r| SegmentMember {
                partner: PartnerId::from_uuid(r.get(0)),
                name: r.get(1),
            })
            .collect())
    }

    async fn profit_sums(&self, tenant: TenantId, q: &SumsQuery) -> Result<Vec<ProfitSums>> {
        let sql = Sql::from(commerce::profit_sums(Dialect::Postgres, tenant, q));
        self.run(&sql)
            .await?
            .iter()
            .map(|row| {
                Ok(ProfitSums {
                    key: row.get(0),
                    bucket: row.get(1),
                    revenue_units: units(row.get(2))?,
                    cost_units: units(row.get(3))?,
                    invoices: row.get::<_, i64>(4) as u64,
                })
            })
            .collect()
    }

    async fn campaign_sums(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        period: Option<Period>,
        reporting: Currency,
    ) -> Result<CampaignSums> {
        let q = commerce::campaign_sums(Dialect::Postgres, tenant, campaign, period, reporting);
        let count = |r: &tokio_postgres::Row, i| r.get::<_, i64>(i) as u64;
        let mut s = CampaignSums::default();
        let row = self.run(&Sql::from(q.targets)).await?;
        (s.targets, s.reached) = (count(&row[0], 0), count(&row[0], 1));
        for r in self.run(&Sql::from(q.outcomes)).await? {
            s.outcomes.insert(outcome_of(r.get(0))?, count(&r, 1));
        }
        let row = self.run(&Sql::from(q.leads)).await?;
        (s.leads, s.won) = (count(&row[0], 0), count(&row[0], 1));
        let row = self.run(&Sql::from(q.money)).await?;
        s.revenue_units = units(row[0].get(0))?;
        s.cost_units = units(row[0].get(1))?;
        let row = self.run(&Sql::from(q.invoiced)).await?;
        s.invoiced_customers = count(&row[0], 0);
        let row = self.run(&Sql::from(q.costs)).await?;
        s.campaign_cost_units = units(row[0].get(0))?;
        Ok(s)
    }

    async fn progress(&self, tenant: TenantId, campaign: CampaignId) -> Result<Vec<Progress>> {
        let rows = self
            .run(&Sql::from(report::progress(
                Dialect::Postgres,
                tenant,
                campaign,
            )))
            .await?;
        let mut tallies = Vec::new();
        for r in rows {
            let agent: Option<Uuid> = r.get(0);
            let outcome = r.get::<_, Option<i16>>(1).map(outcome_of).transpose()?;
            tallies.push((
                agent.map(UserId::from_uuid),
                outcome,
                r.get::<_, i64>(2) as u64,
            ));
        }
        Ok(Progress::tally(tallies))
    }

    async fn open_items(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: NaiveDate,
    ) -> Result<Vec<OpenItem>> {
        let rows = self
            .run(&Sql::from(report::open_items(
                Dialect::Postgres,
                tenant,
                partner,
                as_of,
            )))
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let d: Document =
                serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| corrupt("document", e))?;
            out.push(OpenItem::of(&d, units(r.get(1))?, as_of));
        }
        crm_core::commerce::order_open_items(&mut out);
        Ok(out)
    }

    async fn balances(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: NaiveDate,
    ) -> Result<Vec<Balance>> {
        let rows = self
            .run(&Sql::from(report::balances(
                Dialect::Postgres,
                tenant,
                partner,
                as_of,
            )))
            .await?;
        let items = self.open_items(tenant, partner, as_of).await?;
        let mut out = Vec::new();
        for r in &rows {
            let code: String = r.get(0);
            let currency = Currency::parse(code.trim()).map_err(|e| corrupt("currency", e))?;
            out.push(Balance::of(
                currency,
                units(r.get(1))?,
                units(r.get(2))?,
                &items,
            ));
        }
        Ok(out)
    }
}
