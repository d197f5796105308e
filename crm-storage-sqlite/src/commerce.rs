//! `CommerceStore` for SQLite: products, documents, rates, campaigns and the reports, pushed down to SQL.
//!
//! Reports are GROUP BY queries over integer columns (10^-4 units, already converted into the reporting currency
//! when the document was recorded); segments are one SELECT over `partners` whose WHERE clause is generated from
//! the criteria tree, with every leaf written so that it is never NULL (so `NOT` keeps two-valued logic, as the
//! reference evaluator has).

use crate::error::map;
use crate::rows::{bind, blob, docs_of, parse, uuid};
use crate::SqliteStore;
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
use crm_storage_sql::{fetch, report, Dialect, Sql};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use uuid::Uuid;

fn b(u: &Uuid) -> Value {
    Value::Blob(blob(u).to_vec())
}

fn already(e: rusqlite::Error, entity: &'static str, key: String) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        ) {
            return Error::AlreadyExists { entity, key };
        }
    }
    map(e)
}

fn exec(tx: &Connection, sql: &Sql) -> rusqlite::Result<usize> {
    tx.prepare_cached(&sql.text)?
        .execute(params_from_iter(sql.params.iter().map(bind)))
}

/// Runs the statements of one commerce write (built in `crm_storage_sql::commerce`) inside the commit's transaction.
pub(crate) fn apply(tx: &Connection, w: &CommerceWrite) -> Result<()> {
    for step in commerce::steps(Dialect::Sqlite, w)? {
        match step {
            Step::Insert { sql, entity, key } => {
                exec(tx, &sql).map_err(|e| already(e, entity, key))?;
            }
            Step::Update {
                sql,
                current,
                entity,
                id,
                expected,
            } => {
                if exec(tx, &sql).map_err(map)? == 0 {
                    let stored = tx
                        .query_row(
                            &current.text,
                            params_from_iter(current.params.iter().map(bind)),
                            |r| r.get::<_, i64>(0),
                        )
                        .optional()
                        .map_err(map)?;
                    return Err(commerce::missed_update(entity, id, expected, stored));
                }
            }
            Step::Run(sql) => {
                exec(tx, &sql).map_err(map)?;
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ reads

fn docs<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    p: Vec<Value>,
    what: &str,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(p), |r| r.get::<_, String>(0))
        .map_err(map)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(parse(what, &r.map_err(map)?)?);
    }
    Ok(out)
}

fn key_text(v: Value) -> Result<Option<String>> {
    Ok(match v {
        Value::Null => None,
        Value::Blob(bytes) => Some(uuid(&bytes)?.to_string()),
        Value::Text(t) => Some(t),
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(r.to_string()),
    })
}

fn profit_sums(c: &Connection, tenant: TenantId, q: &SumsQuery) -> Result<Vec<ProfitSums>> {
    let sql = commerce::profit_sums(Dialect::Sqlite, tenant, q);
    let mut stmt = c.prepare_cached(&sql.text).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(sql.params.iter().map(bind)), |r| {
            Ok((
                r.get::<_, Value>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(map)?;
    let mut out = Vec::new();
    for r in rows {
        let (k, bk, rev, cost, n) = r.map_err(map)?;
        out.push(ProfitSums {
            key: key_text(k)?,
            bucket: bk,
            revenue_units: rev as i128,
            cost_units: cost as i128,
            invoices: n as u64,
        });
    }
    Ok(out)
}

fn open_items(
    c: &Connection,
    tenant: TenantId,
    partner: PartnerId,
    as_of: NaiveDate,
) -> Result<Vec<OpenItem>> {
    let sql = report::open_items(Dialect::Sqlite, tenant, partner, as_of);
    let mut stmt = c.prepare_cached(&sql.text).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(sql.params.iter().map(bind)), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(map)?;
    let mut out = Vec::new();
    for r in rows {
        let (text, open) = r.map_err(map)?;
        let d: Document = parse("document", &text)?;
        out.push(OpenItem::of(&d, open as i128, as_of));
    }
    crm_core::commerce::order_open_items(&mut out);
    Ok(out)
}

fn balances(
    c: &Connection,
    tenant: TenantId,
    partner: PartnerId,
    as_of: NaiveDate,
) -> Result<Vec<Balance>> {
    let sql = report::balances(Dialect::Sqlite, tenant, partner, as_of);
    let mut stmt = c.prepare_cached(&sql.text).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(sql.params.iter().map(bind)), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(map)?;
    let items = open_items(c, tenant, partner, as_of)?;
    let mut out = Vec::new();
    for r in rows {
        let (ccy, rec, pay) = r.map_err(map)?;
        let currency = Currency::parse(&ccy).map_err(|e| crate::error::corrupt("currency", e))?;
        out.push(Balance::of(currency, rec as i128, pay as i128, &items));
    }
    Ok(out)
}

/// The one row of a shared statement, as integers.
fn one_row<const N: usize>(c: &Connection, sql: &Sql) -> Result<[i64; N]> {
    c.prepare_cached(&sql.text)
        .and_then(|mut st| {
            st.query_row(params_from_iter(sql.params.iter().map(bind)), |r| {
                let mut out = [0; N];
                for (i, v) in out.iter_mut().enumerate() {
                    *v = r.get(i)?;
                }
                Ok(out)
            })
        })
        .map_err(map)
}

fn campaign_sums(
    c: &Connection,
    tenant: TenantId,
    campaign: CampaignId,
    period: Option<Period>,
    reporting: Currency,
) -> Result<CampaignSums> {
    let q = commerce::campaign_sums(Dialect::Sqlite, tenant, campaign, period, reporting);
    let mut s = CampaignSums::default();
    let [targets, reached] = one_row(c, &q.targets)?;
    (s.targets, s.reached) = (targets as u64, reached as u64);
    {
        let mut st = c.prepare_cached(&q.outcomes.text).map_err(map)?;
        let rows = st
            .query_map(params_from_iter(q.outcomes.params.iter().map(bind)), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(map)?;
        for r in rows {
            let (o, n) = r.map_err(map)?;
            let o = OutcomeKind::from_code(o as i16)
                .ok_or_else(|| crate::error::corrupt("outcome", o))?;
            s.outcomes.insert(o, n as u64);
        }
    }
    let [leads, won] = one_row(c, &q.leads)?;
    (s.leads, s.won) = (leads as u64, won as u64);
    let [rev, cost] = one_row(c, &q.money)?;
    (s.revenue_units, s.cost_units) = (rev as i128, cost as i128);
    let [invoiced] = one_row(c, &q.invoiced)?;
    s.invoiced_customers = invoiced as u64;
    let [spent] = one_row(c, &q.costs)?;
    s.campaign_cost_units = spent as i128;
    Ok(s)
}

fn progress(c: &Connection, tenant: TenantId, campaign: CampaignId) -> Result<Vec<Progress>> {
    let sql = report::progress(Dialect::Sqlite, tenant, campaign);
    let mut st = c.prepare_cached(&sql.text).map_err(map)?;
    let rows = st
        .query_map(params_from_iter(sql.params.iter().map(bind)), |r| {
            Ok((
                r.get::<_, Option<Vec<u8>>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(map)?;
    let mut tallies = Vec::new();
    for r in rows {
        let (agent, outcome, n) = r.map_err(map)?;
        let outcome = outcome
            .map(|o| {
                OutcomeKind::from_code(o as i16).ok_or_else(|| crate::error::corrupt("outcome", o))
            })
            .transpose()?;
        let agent = agent.map(|a| uuid(&a).map(UserId::from_uuid)).transpose()?;
        tallies.push((agent, outcome, n as u64));
    }
    Ok(Progress::tally(tallies))
}

#[async_trait]
impl CommerceStore for SqliteStore {
    async fn fetch_commerce(
        &self,
        tenant: TenantId,
        key: &CommerceKey,
    ) -> Result<Vec<CommerceRecord>> {
        let (sql, doc) = fetch::commerce_key(Dialect::Sqlite, tenant, key)?;
        self.with_reader(move |c| {
            docs_of(c, &sql)?
                .iter()
                .map(|d| doc.commerce_record(d))
                .collect()
        })
        .await
    }

    async fn campaign_targets(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        page: &PageRequest,
    ) -> Result<Page<CampaignTarget>> {
        page.validate()?;
        let page = page.clone();
        self.with_reader(move |c| {
            let after = match &page.after {
                Some(cur) => cur.decode()?.1,
                None => Uuid::nil(),
            };
            let mut items: Vec<CampaignTarget> = docs(
                c,
                "SELECT doc FROM campaign_targets WHERE tenant = ?1 AND campaign = ?2 AND partner > ?3 ORDER BY partner LIMIT ?4",
                vec![b(tenant.as_uuid()), b(campaign.as_uuid()), b(&after), Value::Integer(page.limit as i64 + 1)],
                "campaign target",
            )?;
            let next = if items.len() > page.limit as usize {
                items.truncate(page.limit as usize);
                items.last().map(|t| Cursor::encode(0, *t.partner().as_uuid()))
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn segment(
        &self,
        tenant: TenantId,
        criteria: &Criteria,
        as_of: NaiveDate,
        reporting: Currency,
    ) -> Result<Vec<SegmentMember>> {
        criteria.check()?;
        let sql = segment_sql(Dialect::Sqlite, tenant, criteria, as_of, reporting);
        self.with_reader(move |c| {
            let p: Vec<Value> = sql.params.iter().map(bind).collect();
            let sql = sql.text;
            let mut st = c.prepare(&sql).map_err(map)?;
            let rows = st
                .query_map(params_from_iter(p), |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(map)?;
            let mut out = Vec::new();
            for r in rows {
                let (id, name) = r.map_err(map)?;
                out.push(SegmentMember {
                    partner: PartnerId::from_uuid(uuid(&id)?),
                    name,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn profit_sums(&self, tenant: TenantId, query: &SumsQuery) -> Result<Vec<ProfitSums>> {
        let q = query.clone();
        self.with_reader(move |c| profit_sums(c, tenant, &q)).await
    }

    async fn campaign_sums(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        period: Option<Period>,
        reporting: Currency,
    ) -> Result<CampaignSums> {
        self.with_reader(move |c| campaign_sums(c, tenant, campaign, period, reporting))
            .await
    }

    async fn progress(&self, tenant: TenantId, campaign: CampaignId) -> Result<Vec<Progress>> {
        self.with_reader(move |c| progress(c, tenant, campaign))
            .await
    }

    async fn open_items(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: NaiveDate,
    ) -> Result<Vec<OpenItem>> {
        self.with_reader(move |c| open_items(c, tenant, partner, as_of))
            .await
    }

    async fn balances(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: NaiveDate,
    ) -> Result<Vec<Balance>> {
        self.with_reader(move |c| balances(c, tenant, partner, as_of))
            .await
    }
}
