//! `CommerceStore` for SQLite: products, documents, rates, campaigns and the reports, pushed down to SQL.
//!
//! Reports are GROUP BY queries over integer columns (10^-4 units, already converted into the reporting currency
//! when the document was recorded); segments are one SELECT over `partners` whose WHERE clause is generated from
//! the criteria tree, with every leaf written so that it is never NULL (so `NOT` keeps two-valued logic, as the
//! reference evaluator has).

use crate::error::map;
use crate::rows::{bind, blob, doc, docs_of, parse, uuid};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::NaiveDate;
use crm_core::commerce::{
    day_number, Balance, Bucket, CampaignStatus, CampaignSums, CampaignTarget, CommerceStore,
    CommerceWrite, Criteria, Document, GroupBy, OpenItem, OutcomeKind, PaymentDirection, Period,
    ProfitSums, Progress, RankOrder, SegmentMember, SumsQuery,
};
use crm_core::commerce::{CommerceKey, CommerceRecord};
use crm_core::id::{CampaignId, PartnerId, TenantId, UserId};
use crm_core::money::{decimal_to_units, Currency};
use crm_core::store::{Cursor, Page, PageRequest};
use crm_core::{Error, Result};
use crm_storage_sql::segment::segment_sql;
use crm_storage_sql::{day_bounds, fetch, micro_bounds, report, Dialect};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use uuid::Uuid;

fn b(u: &Uuid) -> Value {
    Value::Blob(blob(u).to_vec())
}

fn ob(u: Option<&Uuid>) -> Value {
    u.map(b).unwrap_or(Value::Null)
}

fn ot(s: Option<&str>) -> Value {
    s.map(|s| Value::Text(s.to_string())).unwrap_or(Value::Null)
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

/// After a versioned UPDATE matched nothing: missing, or changed by someone else.
fn conflict(
    tx: &Connection,
    sql_version: &str,
    key: &[Value],
    entity: &'static str,
    id: String,
    expected: u64,
) -> Error {
    match tx
        .query_row(sql_version, params_from_iter(key.iter()), |r| {
            r.get::<_, i64>(0)
        })
        .optional()
    {
        Ok(Some(actual)) => Error::Conflict {
            entity,
            id,
            expected,
            actual: actual as u64,
        },
        Ok(None) => Error::not_found(entity, id),
        Err(e) => map(e),
    }
}

fn exec(tx: &Connection, sql: &str, p: Vec<Value>) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params_from_iter(p))
}

/// What a versioned update is about: the entity, its key in messages and the version it expects.
type Guarded = (&'static str, String, u64);

fn versioned_update(
    tx: &Connection,
    sql: &str,
    p: Vec<Value>,
    version_sql: &str,
    key: Vec<Value>,
    (entity, id, expected): Guarded,
) -> Result<()> {
    let n = exec(tx, sql, p).map_err(map)?;
    if n == 0 {
        return Err(conflict(tx, version_sql, &key, entity, id, expected));
    }
    Ok(())
}

fn status_code(s: CampaignStatus) -> i64 {
    match s {
        CampaignStatus::Draft => 0,
        CampaignStatus::Active => 1,
        CampaignStatus::Closed => 2,
    }
}

fn micros(t: Option<crm_core::time::Timestamp>) -> Value {
    t.map(|t| Value::Integer(t.timestamp_micros()))
        .unwrap_or(Value::Null)
}

fn insert_document_rows(tx: &Connection, d: &Document) -> Result<()> {
    let tenant = d.tenant();
    let t = tenant.as_uuid();
    for (n, l) in d.lines().iter().enumerate() {
        exec(
            tx,
            "INSERT INTO document_lines (tenant, document, n, partner, kind, issue_day, product, category, quantity_units, revenue_units, cost_units) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            vec![
                b(t),
                b(d.id().as_uuid()),
                Value::Integer(n as i64),
                b(d.partner().as_uuid()),
                Value::Integer(d.kind().code() as i64),
                Value::Integer(day_number(d.issue_date()) as i64),
                b(l.product.as_uuid()),
                ob(l.category.as_ref().map(|c| c.as_uuid())),
                Value::Integer(l.quantity_units),
                Value::Integer(l.revenue_units),
                Value::Integer(l.cost_units),
            ],
        )
        .map_err(map)?;
    }
    let kind = d
        .direction()
        .unwrap_or(PaymentDirection::Received)
        .settles();
    for (n, a) in d.allocations().iter().enumerate() {
        exec(
            tx,
            "INSERT INTO allocations (tenant, document, n, partner, target_kind, target_number, amount_units) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            vec![
                b(t),
                b(d.id().as_uuid()),
                Value::Integer(n as i64),
                b(d.partner().as_uuid()),
                Value::Integer(kind.code() as i64),
                Value::Text(a.number.clone()),
                Value::Integer(decimal_to_units(a.amount).unwrap_or(0)),
            ],
        )
        .map_err(map)?;
    }
    Ok(())
}

fn document_values(d: &Document) -> Vec<Value> {
    vec![
        b(d.tenant().as_uuid()),
        b(d.id().as_uuid()),
        Value::Integer(d.kind().code() as i64),
        Value::Text(d.number().to_owned()),
        b(d.partner().as_uuid()),
        Value::Integer(day_number(d.issue_date()) as i64),
        d.due_date()
            .map(|x| Value::Integer(day_number(x) as i64))
            .unwrap_or(Value::Null),
        Value::Integer(Bucket::Month.index(d.issue_date())),
        Value::Integer(Bucket::Quarter.index(d.issue_date())),
        Value::Integer(Bucket::Year.index(d.issue_date())),
        Value::Text(d.currency().code().into()),
        Value::Integer(d.total_units()),
        Value::Text(d.rate().reporting.code().into()),
        Value::Integer(d.revenue_units()),
        Value::Integer(d.cost_units()),
        ob(d.campaign().as_ref().map(|c| c.as_uuid())),
        ot(d.corrects()),
        d.direction()
            .map(|x| Value::Integer(matches!(x, PaymentDirection::Sent) as i64))
            .unwrap_or(Value::Null),
        ot(d.attrs().group.as_deref()),
        ot(d.attrs().industry.as_deref()),
        ob(d.attrs().owner.as_ref().map(|o| o.as_uuid())),
        ot(d.attrs().country.as_deref()),
        ot(d.attrs().region.as_deref()),
        ot(d.attrs().city.as_deref()),
        Value::Integer(d.version() as i64),
        Value::Text(doc(d)),
    ]
}

const DOC_COLS: &str = "tenant, id, kind, number, partner, issue_day, due_day, month_idx, quarter_idx, year_idx, currency, \
     total_units, reporting, revenue_units, cost_units, campaign, corrects, direction, grp, industry, owner, country, region, city, version, doc";

fn target_values(t: &CampaignTarget) -> Vec<Value> {
    vec![
        b(t.tenant().as_uuid()),
        b(t.campaign().as_uuid()),
        b(t.partner().as_uuid()),
        ob(t.agent().as_ref().map(|a| a.as_uuid())),
        ob(t.request().as_ref().map(|r| r.as_uuid())),
        t.outcome()
            .map(|o| Value::Integer(o.code() as i64))
            .unwrap_or(Value::Null),
        micros(t.outcome_at()),
        micros(t.reached_at()),
        Value::Integer(t.version() as i64),
        Value::Text(doc(t)),
    ]
}

/// Applies one commerce write inside the commit's transaction.
pub(crate) fn apply(tx: &Connection, w: &CommerceWrite) -> Result<()> {
    match w {
        CommerceWrite::InsertCategory(c) => exec(
            tx,
            "INSERT INTO product_categories (tenant, id, code, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![b(c.tenant().as_uuid()), b(c.id().as_uuid()), Value::Text(c.code().to_owned()), Value::Integer(c.version() as i64), Value::Text(doc(c))],
        )
        .map(|_| ())
        .map_err(|e| already(e, "product category", c.code().to_owned())),
        CommerceWrite::UpdateCategory { category: c, expected_version } => {
            crm_storage_sql::check_next_version("product category", c.version(), *expected_version)?;
            versioned_update(
                tx,
                "UPDATE product_categories SET code = ?3, version = ?4, doc = ?5 WHERE tenant = ?1 AND id = ?2 AND version = ?6",
                vec![b(c.tenant().as_uuid()), b(c.id().as_uuid()), Value::Text(c.code().to_owned()), Value::Integer(c.version() as i64), Value::Text(doc(c)), Value::Integer(*expected_version as i64)],
                "SELECT version FROM product_categories WHERE tenant = ?1 AND id = ?2",
                vec![b(c.tenant().as_uuid()), b(c.id().as_uuid())],
                ("product category", c.code().to_owned(), *expected_version),
            )
        }
        CommerceWrite::InsertProduct(p) => exec(
            tx,
            "INSERT INTO products (tenant, id, code, category, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![b(p.tenant().as_uuid()), b(p.id().as_uuid()), Value::Text(p.code().to_owned()), ob(p.category().as_ref().map(|c| c.as_uuid())), Value::Integer(p.version() as i64), Value::Text(doc(p))],
        )
        .map(|_| ())
        .map_err(|e| already(e, "product", p.code().to_owned())),
        CommerceWrite::UpdateProduct { product: p, expected_version } => {
            crm_storage_sql::check_next_version("product", p.version(), *expected_version)?;
            versioned_update(
                tx,
                "UPDATE products SET code = ?3, category = ?4, version = ?5, doc = ?6 WHERE tenant = ?1 AND id = ?2 AND version = ?7",
                vec![b(p.tenant().as_uuid()), b(p.id().as_uuid()), Value::Text(p.code().to_owned()), ob(p.category().as_ref().map(|c| c.as_uuid())), Value::Integer(p.version() as i64), Value::Text(doc(p)), Value::Integer(*expected_version as i64)],
                "SELECT version FROM products WHERE tenant = ?1 AND id = ?2",
                vec![b(p.tenant().as_uuid()), b(p.id().as_uuid())],
                ("product", p.code().to_owned(), *expected_version),
            )
        }
        CommerceWrite::InsertDocument(d) => {
            let sql = format!(
                "INSERT INTO documents ({DOC_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
            );
            exec(tx, &sql, document_values(d))
                .map_err(|e| already(e, "document", format!("{} {}", d.kind().as_str(), d.number())))?;
            insert_document_rows(tx, d)
        }
        CommerceWrite::ReplaceDocument { document: d, expected_version } => {
            crm_storage_sql::check_next_version("document", d.version(), *expected_version)?;
            let tenant = d.tenant();
    let t = tenant.as_uuid();
            let mut p = document_values(d);
            p.push(Value::Integer(*expected_version as i64));
            versioned_update(
                tx,
                "UPDATE documents SET kind = ?3, number = ?4, partner = ?5, issue_day = ?6, due_day = ?7, month_idx = ?8, quarter_idx = ?9, \
                 year_idx = ?10, currency = ?11, total_units = ?12, reporting = ?13, revenue_units = ?14, cost_units = ?15, campaign = ?16, \
                 corrects = ?17, direction = ?18, grp = ?19, industry = ?20, owner = ?21, country = ?22, region = ?23, city = ?24, \
                 version = ?25, doc = ?26 WHERE tenant = ?1 AND id = ?2 AND version = ?27",
                p,
                "SELECT version FROM documents WHERE tenant = ?1 AND id = ?2",
                vec![b(t), b(d.id().as_uuid())],
                ("document", d.number().to_owned(), *expected_version),
            )?;
            for table in ["document_lines", "allocations"] {
                exec(tx, &format!("DELETE FROM {table} WHERE tenant = ?1 AND document = ?2"), vec![b(t), b(d.id().as_uuid())]).map_err(map)?;
            }
            insert_document_rows(tx, d)
        }
        CommerceWrite::InsertRate(r) => exec(
            tx,
            "INSERT INTO exchange_rates (tenant, from_ccy, to_ccy, day, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![b(r.tenant().as_uuid()), Value::Text(r.from().code().into()), Value::Text(r.to().code().into()), Value::Integer(day_number(r.on()) as i64), Value::Text(doc(r))],
        )
        .map(|_| ())
        .map_err(|e| already(e, "exchange rate", format!("{}/{} on {}", r.from(), r.to(), r.on()))),
        CommerceWrite::InsertCampaign(c) => exec(
            tx,
            "INSERT INTO campaigns (tenant, id, status, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![b(c.tenant().as_uuid()), b(c.id().as_uuid()), Value::Integer(status_code(c.status())), Value::Integer(c.version() as i64), Value::Text(doc(c))],
        )
        .map(|_| ())
        .map_err(|e| already(e, "campaign", c.id().to_string())),
        CommerceWrite::UpdateCampaign { campaign: c, expected_version } => {
            crm_storage_sql::check_next_version("campaign", c.version(), *expected_version)?;
            versioned_update(
                tx,
                "UPDATE campaigns SET status = ?3, version = ?4, doc = ?5 WHERE tenant = ?1 AND id = ?2 AND version = ?6",
                vec![b(c.tenant().as_uuid()), b(c.id().as_uuid()), Value::Integer(status_code(c.status())), Value::Integer(c.version() as i64), Value::Text(doc(c)), Value::Integer(*expected_version as i64)],
                "SELECT version FROM campaigns WHERE tenant = ?1 AND id = ?2",
                vec![b(c.tenant().as_uuid()), b(c.id().as_uuid())],
                ("campaign", c.id().to_string(), *expected_version),
            )
        }
        CommerceWrite::InsertCampaignCost(c) => exec(
            tx,
            "INSERT INTO campaign_costs (tenant, id, campaign, day, reporting, amount_units, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            vec![
                b(c.tenant().as_uuid()),
                b(c.id().as_uuid()),
                b(c.campaign().as_uuid()),
                Value::Integer(day_number(c.date()) as i64),
                Value::Text(c.rate().reporting.code().into()),
                Value::Integer(c.amount_units()),
                Value::Text(doc(c)),
            ],
        )
        .map(|_| ())
        .map_err(|e| already(e, "campaign cost entry", c.id().to_string())),
        CommerceWrite::InsertCampaignTarget(t) => exec(
            tx,
            "INSERT INTO campaign_targets (tenant, campaign, partner, agent, request, outcome, outcome_at, reached_at, version, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            target_values(t),
        )
        .map(|_| ())
        .map_err(|e| already(e, "campaign target", t.partner().to_string())),
        CommerceWrite::UpdateCampaignTarget { target: t, expected_version } => {
            crm_storage_sql::check_next_version("campaign target", t.version(), *expected_version)?;
            let mut p = target_values(t);
            p.push(Value::Integer(*expected_version as i64));
            versioned_update(
                tx,
                "UPDATE campaign_targets SET agent = ?4, request = ?5, outcome = ?6, outcome_at = ?7, reached_at = ?8, version = ?9, doc = ?10 \
                 WHERE tenant = ?1 AND campaign = ?2 AND partner = ?3 AND version = ?11",
                p,
                "SELECT version FROM campaign_targets WHERE tenant = ?1 AND campaign = ?2 AND partner = ?3",
                vec![b(t.tenant().as_uuid()), b(t.campaign().as_uuid()), b(t.partner().as_uuid())],
                ("campaign target", t.partner().to_string(), *expected_version),
            )
        }
        other => Err(Error::invalid("writes", format!("this SQLite store does not support the commerce write {:?}", std::mem::discriminant(other)))),
    }
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

fn group_column(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Customer => "partner",
        GroupBy::Group => "grp",
        GroupBy::Industry => "industry",
        GroupBy::Country => "country",
        GroupBy::Region => "region",
        GroupBy::City => "city",
        GroupBy::Owner => "owner",
        GroupBy::Campaign => "campaign",
    }
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
    let key = group_column(q.group_by);
    let bucket = match q.bucket {
        None => "NULL",
        Some(Bucket::Month) => "month_idx",
        Some(Bucket::Quarter) => "quarter_idx",
        Some(Bucket::Year) => "year_idx",
    };
    let order = match q.rank.filter(|_| q.bucket.is_none()) {
        Some(r) => format!(
            "ORDER BY SUM(revenue_units) - SUM(cost_units) {}, k ASC LIMIT {}",
            if r.order == RankOrder::Top {
                "DESC"
            } else {
                "ASC"
            },
            r.n
        ),
        None => "ORDER BY k, bk".to_string(),
    };
    let sql = format!(
        "SELECT {key} AS k, {bucket} AS bk, SUM(revenue_units), SUM(cost_units), SUM(kind = 0) FROM documents \
         WHERE tenant = ?1 AND reporting = ?2 AND issue_day BETWEEN ?3 AND ?4 AND kind IN (0, 1) GROUP BY k, bk {order}"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map(
            params![
                blob(tenant.as_uuid()),
                q.reporting.code(),
                day_number(q.period.from()),
                day_number(q.period.to())
            ],
            |r| {
                Ok((
                    r.get::<_, Value>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
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

fn campaign_sums(
    c: &Connection,
    tenant: TenantId,
    campaign: CampaignId,
    period: Option<Period>,
    reporting: Currency,
) -> Result<CampaignSums> {
    let t = blob(tenant.as_uuid());
    let cid = blob(campaign.as_uuid());
    let (df, dt) = day_bounds(period);
    let (df, dt) = (i64::from(df), i64::from(dt));
    let (mf, mt) = micro_bounds(period);
    let mut s = CampaignSums::default();
    let (targets, reached): (i64, i64) = c
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(reached_at >= ?3 AND reached_at < ?4), 0) FROM campaign_targets WHERE tenant = ?1 AND campaign = ?2",
        )
        .and_then(|mut st| st.query_row(params![t, cid, mf, mt], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(map)?;
    s.targets = targets as u64;
    s.reached = reached as u64;
    {
        let mut st = c
            .prepare_cached(
                "SELECT outcome, COUNT(*) FROM campaign_targets WHERE tenant = ?1 AND campaign = ?2 AND outcome IS NOT NULL \
                 AND outcome_at >= ?3 AND outcome_at < ?4 GROUP BY outcome",
            )
            .map_err(map)?;
        let rows = st
            .query_map(params![t, cid, mf, mt], |r| {
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
    let (leads, won): (i64, i64) = c
        .prepare_cached(CAMPAIGN_LEADS_SQL)
        .and_then(|mut st| {
            st.query_row(params![t, campaign.to_string(), mf, mt], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .map_err(map)?;
    s.leads = leads as u64;
    s.won = won as u64;
    let (rev, cost): (i64, i64) = c
        .prepare_cached(
            "SELECT COALESCE(SUM(revenue_units), 0), COALESCE(SUM(cost_units), 0) FROM documents WHERE tenant = ?1 AND campaign = ?2 \
             AND kind IN (0, 1) AND reporting = ?3 AND issue_day BETWEEN ?4 AND ?5",
        )
        .and_then(|mut st| st.query_row(params![t, cid, reporting.code(), df, dt], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(map)?;
    s.revenue_units = rev as i128;
    s.cost_units = cost as i128;
    let invoiced: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT partner FROM documents WHERE tenant = ?1 AND campaign = ?2 AND kind IN (0, 1) AND reporting = ?3 \
             AND issue_day BETWEEN ?4 AND ?5 GROUP BY partner HAVING SUM(revenue_units) > 0)",
        )
        .and_then(|mut st| st.query_row(params![t, cid, reporting.code(), df, dt], |r| r.get(0)))
        .map_err(map)?;
    s.invoiced_customers = invoiced as u64;
    let spent: i64 = c
        .prepare_cached(
            "SELECT COALESCE(SUM(amount_units), 0) FROM campaign_costs WHERE tenant = ?1 AND campaign = ?2 AND reporting = ?3 AND day BETWEEN ?4 AND ?5",
        )
        .and_then(|mut st| st.query_row(params![t, cid, reporting.code(), df, dt], |r| r.get(0)))
        .map_err(map)?;
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

/// The campaign report's lead count and wins: searches `leads_by_campaign` (migration 0004), whose expression and
/// partial-index condition this filter matches.
pub(crate) const CAMPAIGN_LEADS_SQL: &str = "SELECT COUNT(*), COALESCE(SUM(status = 1), 0) FROM leads \
     WHERE tenant = ?1 AND json_extract(doc, '$.source.campaign') = ?2 AND created_at >= ?3 AND created_at < ?4";

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
