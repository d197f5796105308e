//! `CommerceStore` on PostgreSQL: products, documents, rates, campaigns and the reports, pushed down to SQL.
//!
//! The same layout and queries as the SQLite adapter (a reader who knows one knows the other): reports are GROUP
//! BY queries over bigint 10^-4 units, already converted into the reporting currency when a document was
//! recorded; segments are one SELECT over `partners` whose WHERE clause is generated from the criteria tree, with
//! every leaf written so that it is never NULL (so `NOT` keeps two-valued logic, as the reference evaluator has).
//! Text keys are compared and ordered with `COLLATE "C"` (byte order), whatever the database's collation.

use crate::error::{corrupt, map_pg};
use crate::rows::{self, Table, Value};
use crate::store::{insert, PgStore, Sql, Tx};
use async_trait::async_trait;
use chrono::NaiveDate;
use crm_core::commerce::{
    day_number, Balance, Bucket, Campaign, CampaignCost, CampaignStatus, CampaignSums,
    CampaignTarget, Category, CommerceStore, CommerceWrite, Criteria, Document, ExchangeRate,
    GroupBy, OpenItem, OutcomeKind, PaymentDirection, Period, Product, ProfitSums, Progress,
    RankOrder, SegmentMember, SumsQuery,
};
use crm_core::commerce::{CommerceKey, CommerceRecord};
use crm_core::id::{CampaignId, PartnerId, TenantId, UserId};
use crm_core::money::{decimal_to_units, Currency};
use crm_core::store::{Cursor, Page, PageRequest};
use crm_core::{Error, Result};
use crm_storage_sql::segment::segment_sql;
use crm_storage_sql::{day_bounds, fetch, micro_bounds, report, Dialect};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tokio_postgres::types::{Json, Type};
use uuid::Uuid;

pub(crate) const CATEGORIES: Table = Table {
    name: "product_categories",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("code", Type::TEXT),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const PRODUCTS: Table = Table {
    name: "products",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("code", Type::TEXT),
        ("category", Type::UUID),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const RATES: Table = Table {
    name: "exchange_rates",
    columns: &[
        ("tenant", Type::UUID),
        ("from_ccy", Type::BPCHAR),
        ("to_ccy", Type::BPCHAR),
        ("day", Type::INT4),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const CAMPAIGNS: Table = Table {
    name: "campaigns",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("status", Type::INT2),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const DOCUMENTS: Table = Table {
    name: "documents",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("kind", Type::INT2),
        ("number", Type::TEXT),
        ("partner", Type::UUID),
        ("issue_day", Type::INT4),
        ("due_day", Type::INT4),
        ("month_idx", Type::INT8),
        ("quarter_idx", Type::INT8),
        ("year_idx", Type::INT8),
        ("currency", Type::BPCHAR),
        ("total_units", Type::INT8),
        ("reporting", Type::BPCHAR),
        ("revenue_units", Type::INT8),
        ("cost_units", Type::INT8),
        ("campaign", Type::UUID),
        ("corrects", Type::TEXT),
        ("direction", Type::INT2),
        ("grp", Type::TEXT),
        ("industry", Type::TEXT),
        ("owner", Type::UUID),
        ("country", Type::TEXT),
        ("region", Type::TEXT),
        ("city", Type::TEXT),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const DOCUMENT_LINES: Table = Table {
    name: "document_lines",
    columns: &[
        ("tenant", Type::UUID),
        ("document", Type::UUID),
        ("n", Type::INT4),
        ("partner", Type::UUID),
        ("kind", Type::INT2),
        ("issue_day", Type::INT4),
        ("product", Type::UUID),
        ("category", Type::UUID),
        ("quantity_units", Type::INT8),
        ("revenue_units", Type::INT8),
        ("cost_units", Type::INT8),
    ],
};

pub(crate) const ALLOCATIONS: Table = Table {
    name: "allocations",
    columns: &[
        ("tenant", Type::UUID),
        ("document", Type::UUID),
        ("n", Type::INT4),
        ("partner", Type::UUID),
        ("target_kind", Type::INT2),
        ("target_number", Type::TEXT),
        ("amount_units", Type::INT8),
    ],
};

pub(crate) const CAMPAIGN_COSTS: Table = Table {
    name: "campaign_costs",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("campaign", Type::UUID),
        ("day", Type::INT4),
        ("reporting", Type::BPCHAR),
        ("amount_units", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const CAMPAIGN_TARGETS: Table = Table {
    name: "campaign_targets",
    columns: &[
        ("tenant", Type::UUID),
        ("campaign", Type::UUID),
        ("partner", Type::UUID),
        ("agent", Type::UUID),
        ("request", Type::UUID),
        ("outcome", Type::INT2),
        ("outcome_at", Type::INT8),
        ("reached_at", Type::INT8),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

fn json<T: serde::Serialize>(v: &T) -> Result<Value> {
    let v = serde_json::to_value(v)
        .map_err(|e| Error::invalid("record", format!("cannot be serialised: {e}")))?;
    Ok(Box::new(Json(v)))
}

fn opt_uuid(u: Option<&Uuid>) -> Value {
    Box::new(u.copied())
}

fn status_code(s: CampaignStatus) -> i16 {
    match s {
        CampaignStatus::Draft => 0,
        CampaignStatus::Active => 1,
        CampaignStatus::Closed => 2,
    }
}

pub(crate) fn category_row(c: &Category) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*c.tenant().as_uuid()),
        Box::new(*c.id().as_uuid()),
        Box::new(c.code().to_owned()),
        Box::new(c.version() as i64),
        json(c)?,
    ])
}

pub(crate) fn product_row(p: &Product) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*p.tenant().as_uuid()),
        Box::new(*p.id().as_uuid()),
        Box::new(p.code().to_owned()),
        opt_uuid(p.category().as_ref().map(|c| c.as_uuid())),
        Box::new(p.version() as i64),
        json(p)?,
    ])
}

pub(crate) fn rate_row(r: &ExchangeRate) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*r.tenant().as_uuid()),
        Box::new(r.from().code().to_string()),
        Box::new(r.to().code().to_string()),
        Box::new(day_number(r.on())),
        json(r)?,
    ])
}

pub(crate) fn campaign_row(c: &Campaign) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*c.tenant().as_uuid()),
        Box::new(*c.id().as_uuid()),
        Box::new(status_code(c.status())),
        Box::new(c.version() as i64),
        json(c)?,
    ])
}

pub(crate) fn document_row(d: &Document) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*d.tenant().as_uuid()),
        Box::new(*d.id().as_uuid()),
        Box::new(d.kind().code()),
        Box::new(d.number().to_owned()),
        Box::new(*d.partner().as_uuid()),
        Box::new(day_number(d.issue_date())),
        Box::new(d.due_date().map(day_number)),
        Box::new(Bucket::Month.index(d.issue_date())),
        Box::new(Bucket::Quarter.index(d.issue_date())),
        Box::new(Bucket::Year.index(d.issue_date())),
        Box::new(d.currency().code().to_string()),
        Box::new(d.total_units()),
        Box::new(d.rate().reporting.code().to_string()),
        Box::new(d.revenue_units()),
        Box::new(d.cost_units()),
        opt_uuid(d.campaign().as_ref().map(|c| c.as_uuid())),
        Box::new(d.corrects().map(str::to_owned)),
        Box::new(
            d.direction()
                .map(|x| matches!(x, PaymentDirection::Sent) as i16),
        ),
        Box::new(d.attrs().group.clone()),
        Box::new(d.attrs().industry.clone()),
        opt_uuid(d.attrs().owner.as_ref().map(|o| o.as_uuid())),
        Box::new(d.attrs().country.clone()),
        Box::new(d.attrs().region.clone()),
        Box::new(d.attrs().city.clone()),
        Box::new(d.version() as i64),
        json(d)?,
    ])
}

/// The rows of a document's lines.
pub(crate) fn line_rows(d: &Document) -> Vec<Vec<Value>> {
    d.lines()
        .iter()
        .enumerate()
        .map(|(n, l)| -> Vec<Value> {
            vec![
                Box::new(*d.tenant().as_uuid()),
                Box::new(*d.id().as_uuid()),
                Box::new(n as i32),
                Box::new(*d.partner().as_uuid()),
                Box::new(d.kind().code()),
                Box::new(day_number(d.issue_date())),
                Box::new(*l.product.as_uuid()),
                opt_uuid(l.category.as_ref().map(|c| c.as_uuid())),
                Box::new(l.quantity_units),
                Box::new(l.revenue_units),
                Box::new(l.cost_units),
            ]
        })
        .collect()
}

/// The rows of a document's allocations.
pub(crate) fn allocation_rows(d: &Document) -> Vec<Vec<Value>> {
    let kind = d
        .direction()
        .unwrap_or(PaymentDirection::Received)
        .settles()
        .code();
    d.allocations()
        .iter()
        .enumerate()
        .map(|(n, a)| -> Vec<Value> {
            vec![
                Box::new(*d.tenant().as_uuid()),
                Box::new(*d.id().as_uuid()),
                Box::new(n as i32),
                Box::new(*d.partner().as_uuid()),
                Box::new(kind),
                Box::new(a.number.clone()),
                Box::new(decimal_to_units(a.amount).unwrap_or(0)),
            ]
        })
        .collect()
}

pub(crate) fn cost_row(c: &CampaignCost) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*c.tenant().as_uuid()),
        Box::new(*c.id().as_uuid()),
        Box::new(*c.campaign().as_uuid()),
        Box::new(day_number(c.date())),
        Box::new(c.rate().reporting.code().to_string()),
        Box::new(c.amount_units()),
        json(c)?,
    ])
}

pub(crate) fn target_row(t: &CampaignTarget) -> Result<Vec<Value>> {
    Ok(vec![
        Box::new(*t.tenant().as_uuid()),
        Box::new(*t.campaign().as_uuid()),
        Box::new(*t.partner().as_uuid()),
        opt_uuid(t.agent().as_ref().map(|a| a.as_uuid())),
        opt_uuid(t.request().as_ref().map(|r| r.as_uuid())),
        Box::new(t.outcome().map(|o| o.code())),
        Box::new(t.outcome_at().map(|x| x.timestamp_micros())),
        Box::new(t.reached_at().map(|x| x.timestamp_micros())),
        Box::new(t.version() as i64),
        json(t)?,
    ])
}

/// Runs a version-checked UPDATE whose key is the first `key_len` values of `row` and whose expected version is
/// the last value; 0 rows is a conflict naming the stored version, or not found.
async fn versioned(
    tx: &Tx<'_>,
    sql: &str,
    row: Vec<Value>,
    version_sql: &str,
    key_len: usize,
    (entity, id, expected): (&'static str, String, u64),
) -> Result<()> {
    let stmt = tx.prepare_cached(sql).await.map_err(map_pg)?;
    let n = tx
        .execute(&stmt, &rows::params(&row))
        .await
        .map_err(map_pg)?;
    if n == 1 {
        return Ok(());
    }
    let stmt = tx.prepare_cached(version_sql).await.map_err(map_pg)?;
    match tx
        .query_opt(&stmt, &rows::params(&row[..key_len]))
        .await
        .map_err(map_pg)?
    {
        Some(r) => Err(Error::Conflict {
            entity,
            id,
            expected,
            actual: r.get::<_, i64>(0) as u64,
        }),
        None => Err(Error::not_found(entity, id)),
    }
}

/// `UPDATE t SET <columns after the key> WHERE <key> AND version = $n`.
fn update_sql(table: &Table, key: &[&str]) -> String {
    let sets: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .skip(key.len())
        .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
        .collect();
    let conds: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE {} AND version = ${}",
        table.name,
        sets.join(", "),
        conds.join(" AND "),
        table.columns.len() + 1
    )
}

fn version_sql(table: &Table, key: &[&str]) -> String {
    let conds: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    format!(
        "SELECT version FROM {} WHERE {}",
        table.name,
        conds.join(" AND ")
    )
}

async fn insert_as(
    tx: &Tx<'_>,
    table: &Table,
    row: Vec<Value>,
    entity: &'static str,
    key: String,
) -> Result<()> {
    insert(tx, table, row, &key).await.map_err(|e| match e {
        Error::AlreadyExists { .. } => Error::AlreadyExists { entity, key },
        other => other,
    })
}

async fn insert_document_rows(tx: &Tx<'_>, d: &Document) -> Result<()> {
    for row in line_rows(d) {
        insert(tx, &DOCUMENT_LINES, row, d.number()).await?;
    }
    for row in allocation_rows(d) {
        insert(tx, &ALLOCATIONS, row, d.number()).await?;
    }
    Ok(())
}

/// Applies one commerce write inside the commit's transaction.
pub(crate) async fn apply(tx: &Tx<'_>, w: &CommerceWrite) -> Result<()> {
    const ID: &[&str] = &["tenant", "id"];
    match w {
        CommerceWrite::InsertCategory(c) => {
            insert_as(
                tx,
                &CATEGORIES,
                category_row(c)?,
                "product category",
                c.code().to_owned(),
            )
            .await
        }
        CommerceWrite::UpdateCategory {
            category: c,
            expected_version,
        } => {
            crm_storage_sql::check_next_version(
                "product category",
                c.version(),
                *expected_version,
            )?;
            let mut row = category_row(c)?;
            row.push(Box::new(*expected_version as i64));
            versioned(
                tx,
                &update_sql(&CATEGORIES, ID),
                row,
                &version_sql(&CATEGORIES, ID),
                2,
                ("product category", c.code().to_owned(), *expected_version),
            )
            .await
        }
        CommerceWrite::InsertProduct(p) => {
            insert_as(
                tx,
                &PRODUCTS,
                product_row(p)?,
                "product",
                p.code().to_owned(),
            )
            .await
        }
        CommerceWrite::UpdateProduct {
            product: p,
            expected_version,
        } => {
            crm_storage_sql::check_next_version("product", p.version(), *expected_version)?;
            let mut row = product_row(p)?;
            row.push(Box::new(*expected_version as i64));
            versioned(
                tx,
                &update_sql(&PRODUCTS, ID),
                row,
                &version_sql(&PRODUCTS, ID),
                2,
                ("product", p.code().to_owned(), *expected_version),
            )
            .await
        }
        CommerceWrite::InsertDocument(d) => {
            insert_as(
                tx,
                &DOCUMENTS,
                document_row(d)?,
                "document",
                format!("{} {}", d.kind().as_str(), d.number()),
            )
            .await?;
            insert_document_rows(tx, d).await
        }
        CommerceWrite::ReplaceDocument {
            document: d,
            expected_version,
        } => {
            crm_storage_sql::check_next_version("document", d.version(), *expected_version)?;
            let mut row = document_row(d)?;
            row.push(Box::new(*expected_version as i64));
            versioned(
                tx,
                &update_sql(&DOCUMENTS, ID),
                row,
                &version_sql(&DOCUMENTS, ID),
                2,
                ("document", d.number().to_owned(), *expected_version),
            )
            .await?;
            for table in ["document_lines", "allocations"] {
                let stmt = tx
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE tenant = $1 AND document = $2"
                    ))
                    .await
                    .map_err(map_pg)?;
                tx.execute(&stmt, &[d.tenant().as_uuid(), d.id().as_uuid()])
                    .await
                    .map_err(map_pg)?;
            }
            insert_document_rows(tx, d).await
        }
        CommerceWrite::InsertRate(r) => {
            insert_as(
                tx,
                &RATES,
                rate_row(r)?,
                "exchange rate",
                format!("{}/{} on {}", r.from(), r.to(), r.on()),
            )
            .await
        }
        CommerceWrite::InsertCampaign(c) => {
            insert_as(
                tx,
                &CAMPAIGNS,
                campaign_row(c)?,
                "campaign",
                c.id().to_string(),
            )
            .await
        }
        CommerceWrite::UpdateCampaign {
            campaign: c,
            expected_version,
        } => {
            crm_storage_sql::check_next_version("campaign", c.version(), *expected_version)?;
            let mut row = campaign_row(c)?;
            row.push(Box::new(*expected_version as i64));
            versioned(
                tx,
                &update_sql(&CAMPAIGNS, ID),
                row,
                &version_sql(&CAMPAIGNS, ID),
                2,
                ("campaign", c.id().to_string(), *expected_version),
            )
            .await
        }
        CommerceWrite::InsertCampaignCost(c) => {
            insert_as(
                tx,
                &CAMPAIGN_COSTS,
                cost_row(c)?,
                "campaign cost entry",
                c.id().to_string(),
            )
            .await
        }
        CommerceWrite::InsertCampaignTarget(t) => {
            insert_as(
                tx,
                &CAMPAIGN_TARGETS,
                target_row(t)?,
                "campaign target",
                t.partner().to_string(),
            )
            .await
        }
        CommerceWrite::UpdateCampaignTarget {
            target: t,
            expected_version,
        } => {
            const KEY: &[&str] = &["tenant", "campaign", "partner"];
            crm_storage_sql::check_next_version("campaign target", t.version(), *expected_version)?;
            let mut row = target_row(t)?;
            row.push(Box::new(*expected_version as i64));
            versioned(
                tx,
                &update_sql(&CAMPAIGN_TARGETS, KEY),
                row,
                &version_sql(&CAMPAIGN_TARGETS, KEY),
                3,
                (
                    "campaign target",
                    t.partner().to_string(),
                    *expected_version,
                ),
            )
            .await
        }
        _ => Err(Error::invalid("writes", "unsupported write")),
    }
}

/// The rows an insert-only commerce write adds, per table (for ingest).
pub(crate) fn ingest_rows(w: &CommerceWrite) -> Result<Vec<(&'static Table, Vec<Value>)>> {
    static C: &Table = &CATEGORIES;
    static P: &Table = &PRODUCTS;
    static R: &Table = &RATES;
    static K: &Table = &CAMPAIGNS;
    static D: &Table = &DOCUMENTS;
    static L: &Table = &DOCUMENT_LINES;
    static A: &Table = &ALLOCATIONS;
    static CC: &Table = &CAMPAIGN_COSTS;
    static T: &Table = &CAMPAIGN_TARGETS;
    Ok(match w {
        CommerceWrite::InsertCategory(c) => vec![(C, category_row(c)?)],
        CommerceWrite::InsertProduct(p) => vec![(P, product_row(p)?)],
        CommerceWrite::InsertRate(r) => vec![(R, rate_row(r)?)],
        CommerceWrite::InsertCampaign(c) => vec![(K, campaign_row(c)?)],
        CommerceWrite::InsertDocument(d) => {
            let mut out = vec![(D, document_row(d)?)];
            out.extend(line_rows(d).into_iter().map(|r| (L, r)));
            out.extend(allocation_rows(d).into_iter().map(|r| (A, r)));
            out
        }
        CommerceWrite::InsertCampaignCost(c) => vec![(CC, cost_row(c)?)],
        CommerceWrite::InsertCampaignTarget(t) => vec![(T, target_row(t)?)],
        _ => {
            return Err(Error::invalid(
                "writes",
                "an update; ingest takes only inserts",
            ))
        }
    })
}

// ------------------------------------------------------------------------------------------------ reads

fn group_column(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Customer => "partner::text",
        GroupBy::Group => "grp",
        GroupBy::Industry => "industry",
        GroupBy::Country => "country",
        GroupBy::Region => "region",
        GroupBy::City => "city",
        GroupBy::Owner => "owner::text",
        GroupBy::Campaign => "campaign::text",
    }
}

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
        let key = group_column(q.group_by);
        let bucket = match q.bucket {
            None => "NULL::bigint",
            Some(Bucket::Month) => "month_idx",
            Some(Bucket::Quarter) => "quarter_idx",
            Some(Bucket::Year) => "year_idx",
        };
        let mut sql = Sql::new();
        let t = sql.bind(*tenant.as_uuid());
        let r = sql.bind(q.reporting.code().to_string());
        let f = sql.bind(day_number(q.period.from()));
        let to = sql.bind(day_number(q.period.to()));
        // The rank's n is a parameter, so the statement cache holds one statement per shape, not per n.
        let order = match q.rank.filter(|_| q.bucket.is_none()) {
            Some(rank) => {
                let n = sql.bind(i64::from(rank.n));
                format!(
                    "ORDER BY rev - cost {}, k COLLATE \"C\" ASC NULLS FIRST LIMIT {n}",
                    if rank.order == RankOrder::Top {
                        "DESC"
                    } else {
                        "ASC"
                    }
                )
            }
            None => "ORDER BY k COLLATE \"C\" NULLS FIRST, bk NULLS FIRST".to_string(),
        };
        sql.text = format!(
            "SELECT k, bk, rev, cost, n FROM (\
             SELECT {key} AS k, {bucket} AS bk, sum(revenue_units) AS rev, sum(cost_units) AS cost, \
             count(*) FILTER (WHERE kind = 0) AS n \
             FROM documents WHERE tenant = {t} AND reporting = {r} AND issue_day BETWEEN {f} AND {to} \
             AND kind IN (0, 1) GROUP BY 1, 2) AS sums {order}"
        );
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
        let (df, dt) = day_bounds(period);
        let (mf, mt) = micro_bounds(period);
        let t = *tenant.as_uuid();
        let c = *campaign.as_uuid();
        let ccy = reporting.code().to_string();
        let mut s = CampaignSums::default();
        let row = self
            .query(
                "SELECT count(*), count(*) FILTER (WHERE reached_at >= $3 AND reached_at < $4)
                 FROM campaign_targets WHERE tenant = $1 AND campaign = $2",
                &[&t, &c, &mf, &mt],
            )
            .await?;
        s.targets = row[0].get::<_, i64>(0) as u64;
        s.reached = row[0].get::<_, i64>(1) as u64;
        for r in self
            .query(
                "SELECT outcome, count(*) FROM campaign_targets WHERE tenant = $1 AND campaign = $2
                 AND outcome IS NOT NULL AND outcome_at >= $3 AND outcome_at < $4 GROUP BY outcome",
                &[&t, &c, &mf, &mt],
            )
            .await?
        {
            s.outcomes
                .insert(outcome_of(r.get(0))?, r.get::<_, i64>(1) as u64);
        }
        let row = self
            .query(
                "SELECT count(*), count(*) FILTER (WHERE status = 1) FROM leads
                 WHERE tenant = $1 AND (doc -> 'source' ->> 'campaign') = $2
                 AND created_us >= $3 AND created_us < $4",
                &[&t, &campaign.to_string(), &mf, &mt],
            )
            .await?;
        s.leads = row[0].get::<_, i64>(0) as u64;
        s.won = row[0].get::<_, i64>(1) as u64;
        let row = self
            .query(
                "SELECT sum(revenue_units), sum(cost_units) FROM documents WHERE tenant = $1 AND campaign = $2
                 AND kind IN (0, 1) AND reporting = $3 AND issue_day BETWEEN $4 AND $5",
                &[&t, &c, &ccy, &df, &dt],
            )
            .await?;
        s.revenue_units = units(row[0].get(0))?;
        s.cost_units = units(row[0].get(1))?;
        let row = self
            .query(
                "SELECT count(*) FROM (SELECT partner FROM documents WHERE tenant = $1 AND campaign = $2
                 AND kind IN (0, 1) AND reporting = $3 AND issue_day BETWEEN $4 AND $5
                 GROUP BY partner HAVING sum(revenue_units) > 0) AS invoiced",
                &[&t, &c, &ccy, &df, &dt],
            )
            .await?;
        s.invoiced_customers = row[0].get::<_, i64>(0) as u64;
        let row = self
            .query(
                "SELECT sum(amount_units) FROM campaign_costs WHERE tenant = $1 AND campaign = $2
                 AND reporting = $3 AND day BETWEEN $4 AND $5",
                &[&t, &c, &ccy, &df, &dt],
            )
            .await?;
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
