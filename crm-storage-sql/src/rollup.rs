//! The sales roll-ups: what every profitability report groups by, summed per month, kept in the transaction that
//! changes a sales document.
//!
//! `sales_months` holds, per tenant, reporting currency, grouping ([`GroupBy`], as `dim`), month (the
//! [`Bucket::Month`] index) and key, the sums of the sales invoices and credit notes issued in that month: revenue
//! and cost units, invoices, documents. A document counts once in each grouping (eight rows). Documents carry the
//! partner's reporting attributes at issue time, so a partner moving group changes no past month: only recording,
//! replacing or re-pointing a document (a partner merge) changes a roll-up, and each of those does it in its own
//! transaction with one statement that adds (or subtracts) the document as stored ([`apply_documents`]). A report
//! over a period reads the whole months from the roll-ups and the partial months at its edges from the documents
//! ([`sales_rows`]), so it scans the months it covers, not the documents.
//!
//! A key is the grouping's value as text (PostgreSQL) or as stored (SQLite: a partner, owner or campaign id stays
//! its 16-byte blob); an absent attribute is the empty text, which no validated attribute is (a group, industry or
//! location field that trims to nothing is stored as absent), and reads back as `NULL`. A row whose documents
//! all left (a replacement into another month) keeps zero sums and zero documents: reads skip groups with no
//! document, as the line-level sums have no row for them.

use crate::commerce::{group_column, stored_column};
use crate::run::{corrupt, Runner};
use crate::{day_number, Dialect, Param, Sql};
use chrono::{Datelike, NaiveDate};
use crm_core::commerce::{
    Bucket, GroupBy, Period, RollupAction, RollupCheck, RollupDifference, RollupSums,
};
use crm_core::id::TenantId;
use crm_core::money::Currency;
use crm_core::Result;
use uuid::Uuid;

/// The roll-up table.
pub const TABLE: &str = "sales_months";

/// The most document ids one roll-up statement names (SQLite binds each).
pub const IDS_PER_STATEMENT: usize = 500;

/// A grouping's code in `sales_months.dim`: its position in [`GroupBy::ALL`].
pub fn dim(g: GroupBy) -> i16 {
    GroupBy::ALL.iter().position(|x| *x == g).unwrap_or(0) as i16
}

/// `(SELECT 0 AS dim UNION ALL …)`: one row per grouping.
fn dims() -> String {
    let rows: Vec<String> = (0..GroupBy::ALL.len())
        .map(|i| format!("SELECT {i} AS dim"))
        .collect();
    format!("({})", rows.join(" UNION ALL "))
}

/// A document's key in grouping `g`, the empty text when absent.
fn key_of(dialect: Dialect, g: GroupBy) -> String {
    format!("COALESCE({}, '')", group_column(dialect, g))
}

/// `CASE x.dim WHEN 0 THEN <key> … END`: a document's key in the grouping of the row of [`dims`] it is joined to.
fn key_case(dialect: Dialect) -> String {
    let arms: Vec<String> = GroupBy::ALL
        .iter()
        .map(|g| format!("WHEN {} THEN {}", dim(*g), key_of(dialect, *g)))
        .collect();
    format!("CASE x.dim {} END", arms.join(" "))
}

/// `SELECT tenant, reporting, dim, month, key, revenue, cost, invoices, documents` of the sales documents matching
/// `filter`, summed per roll-up row and multiplied by `sign`.
fn summed(dialect: Dialect, filter: &str, sign: i64) -> String {
    let big = |e: String| match dialect {
        Dialect::Sqlite => e,
        Dialect::Postgres => format!("CAST({e} AS bigint)"),
    };
    format!(
        "SELECT tenant, reporting, x.dim AS dim, month_idx AS month, {key} AS k, {rev} AS rev, {cost} AS cost, \
         {inv} AS inv, {docs} AS docs \
         FROM documents CROSS JOIN {dims} AS x WHERE {filter} AND kind IN (0, 1) GROUP BY 1, 2, 3, 4, 5",
        key = key_case(dialect),
        rev = big(format!("{sign} * sum(revenue_units)")),
        cost = big(format!("{sign} * sum(cost_units)")),
        inv = big(format!("{sign} * sum(CASE WHEN kind = 0 THEN 1 ELSE 0 END)")),
        docs = big(format!("{sign} * count(*)")),
        dims = dims(),
    )
}

/// `INSERT INTO sales_months … ON CONFLICT DO UPDATE` adding `rows` (a [`summed`] select) to the stored sums.
fn upsert(rows: &str) -> String {
    format!(
        "INSERT INTO {TABLE} (tenant, reporting, dim, month, key, revenue_units, cost_units, invoices, documents) \
         {rows} ON CONFLICT (tenant, reporting, dim, month, key) DO UPDATE SET \
         revenue_units = {TABLE}.revenue_units + excluded.revenue_units, \
         cost_units = {TABLE}.cost_units + excluded.cost_units, \
         invoices = {TABLE}.invoices + excluded.invoices, \
         documents = {TABLE}.documents + excluded.documents"
    )
}

/// The statement adding (`sign` 1) or subtracting (`sign` -1) the stored sales documents `ids` of `tenant` to or
/// from the roll-ups. Run it after inserting a document, and around an update of one (subtract before, add
/// after), in the same transaction; documents that are not sales (bills, payments) change nothing.
pub fn apply_documents(dialect: Dialect, tenant: TenantId, ids: &[Uuid], sign: i64) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let among = match dialect {
        Dialect::Postgres => format!("id = ANY({})", sql.bind(Param::Uuids(ids.to_vec()))),
        Dialect::Sqlite => {
            let ps: Vec<String> = ids.iter().map(|id| sql.bind(*id)).collect();
            format!("id IN ({})", ps.join(", "))
        }
    };
    sql.text = upsert(&summed(dialect, &format!("tenant = {t} AND {among}"), sign));
    sql
}

/// Migration (SQLite's 16, PostgreSQL's 15): the roll-up table, filled from the documents already recorded.
pub fn schema(dialect: Dialect) -> String {
    let (uuid, ccy, key, without_rowid) = match dialect {
        Dialect::Sqlite => ("BLOB", "TEXT", "", " WITHOUT ROWID"),
        // PostgreSQL keys are text (ids in their text form, as the reports group them).
        Dialect::Postgres => ("uuid", "char(3)", " text", ""),
    };
    format!(
        "CREATE TABLE {TABLE} (tenant {uuid} NOT NULL, reporting {ccy} NOT NULL, dim smallint NOT NULL, \
         month bigint NOT NULL, key{key} NOT NULL, revenue_units bigint NOT NULL, cost_units bigint NOT NULL, \
         invoices bigint NOT NULL, documents bigint NOT NULL, \
         PRIMARY KEY (tenant, reporting, dim, month, key)){without_rowid};\n{};\n",
        upsert(&summed(dialect, "true", 1))
    )
}

/// The first and last [`Bucket::Month`] index of a run of whole months.
pub type Months = (i64, i64);

/// A period's whole months (when it covers one) and the day ranges (first and last day) at its edges that are not
/// whole months.
pub fn split(p: Period) -> (Option<Months>, Vec<(NaiveDate, NaiveDate)>) {
    let (from, to) = (p.from(), p.to());
    let month = |d: NaiveDate| Bucket::Month.index(d);
    let first = month(from) + i64::from(from.day() != 1);
    let last_day = to.succ_opt().is_none_or(|n| n.day() == 1);
    let last = month(to) - i64::from(!last_day);
    let start = Bucket::Month.start_of(first);
    let after = Bucket::Month.start_of(last + 1);
    match (first <= last, start, after) {
        (true, Some(start), Some(after)) => {
            let mut edges = Vec::new();
            if from < start {
                edges.push((from, start.pred_opt().unwrap_or(start)));
            }
            if to >= after {
                edges.push((after, to));
            }
            (Some((first, last)), edges)
        }
        _ => (None, vec![(from, to)]),
    }
}

/// A bucket's index from a roll-up's month (`month` holds [`Bucket::Month`]'s index; indexes are positive within
/// the business dates, so integer division is the floor).
fn bucket_of_month(dialect: Dialect, b: Option<Bucket>) -> String {
    let e = match b {
        None => return null_bucket(dialect).to_string(),
        Some(Bucket::Month) => "month".to_string(),
        Some(Bucket::Quarter) => "month / 3".to_string(),
        Some(Bucket::Year) => "month / 12".to_string(),
    };
    match dialect {
        Dialect::Sqlite => e,
        Dialect::Postgres => format!("CAST({e} AS bigint)"),
    }
}

fn null_bucket(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "NULL",
        Dialect::Postgres => "NULL::bigint",
    }
}

/// A bucket's index from a document's stored indexes.
fn bucket_of_document(dialect: Dialect, b: Option<Bucket>) -> &'static str {
    match b {
        None => null_bucket(dialect),
        Some(Bucket::Month) => "month_idx",
        Some(Bucket::Quarter) => "quarter_idx",
        Some(Bucket::Year) => "year_idx",
    }
}

/// What [`sales_rows`] reads.
#[derive(Debug, Clone)]
pub struct SalesRows<'a> {
    /// The placeholder of the tenant.
    pub tenant: &'a str,
    /// The placeholder of the reporting currency's code.
    pub reporting: &'a str,
    /// The grouping.
    pub group_by: GroupBy,
    /// The bucket.
    pub bucket: Option<Bucket>,
    /// One key the rows are limited to: as the roll-ups store it, and as the documents' column does (`None`: every
    /// key). Each is bound only where it is used (PostgreSQL types every placeholder from its use).
    pub key: Option<(Param, Param)>,
    /// The issue dates.
    pub period: Period,
}

/// `(rk, rb, rrev, rcost, rn, rd)` rows of the sales in `q`'s period: key (the empty text when absent), bucket,
/// revenue units, cost units, invoices, documents; several rows per key and bucket, to be summed (the names differ
/// from the sums' usual ones, so an ORDER BY over the sums never reads a row's value instead). The whole months
/// come from the roll-ups, the partial months at the edges from the documents.
pub fn sales_rows(sql: &mut Sql, q: SalesRows<'_>) -> String {
    let dialect = sql.dialect;
    let (t, r) = (q.tenant, q.reporting);
    let (months, edges) = split(q.period);
    let mut parts = Vec::new();
    if let Some((m1, m2)) = months {
        let (a, b) = (sql.bind(m1), sql.bind(m2));
        let key = q.key.as_ref().map_or(String::new(), |(k, _)| {
            format!(" AND key = {}", sql.bind(k.clone()))
        });
        parts.push(format!(
            "SELECT key AS rk, {bk} AS rb, revenue_units AS rrev, cost_units AS rcost, invoices AS rn, documents AS rd \
             FROM {TABLE} WHERE tenant = {t} AND reporting = {r} AND dim = {dim} AND month BETWEEN {a} AND {b}{key}",
            bk = bucket_of_month(dialect, q.bucket),
            dim = dim(q.group_by),
        ));
    }
    for (from, to) in edges {
        let (a, b) = (
            sql.bind(Param::Day(day_number(from))),
            sql.bind(Param::Day(day_number(to))),
        );
        let key = q.key.as_ref().map_or(String::new(), |(_, k)| {
            format!(
                " AND {} = {}",
                // The column as stored (PostgreSQL's ids uncast), so the key binds as its own type.
                stored_column(q.group_by),
                sql.bind(k.clone())
            )
        });
        parts.push(format!(
            "SELECT {rk} AS rk, {bk} AS rb, revenue_units AS rrev, cost_units AS rcost, \
             CASE WHEN kind = 0 THEN 1 ELSE 0 END AS rn, 1 AS rd FROM documents \
             WHERE tenant = {t} AND reporting = {r} AND issue_day BETWEEN {a} AND {b} AND kind IN (0, 1){key}",
            rk = key_of(dialect, q.group_by),
            bk = bucket_of_document(dialect, q.bucket),
        ));
    }
    parts.join(" UNION ALL ")
}

/// The statement listing the roll-up rows of `tenant` that differ from the documents: `(side, reporting, dim,
/// month, key, revenue, cost, invoices, documents)`, side 0 what the documents give, 1 what is stored (a row
/// of zero sums counts as none), at most `limit` rows.
fn differences_sql(dialect: Dialect, tenant: TenantId, limit: usize) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let lines = summed(dialect, &format!("tenant = {t}"), 1);
    let n = sql.bind(limit as i64);
    sql.text = format!(
        "WITH lines AS (SELECT reporting, dim, month, k, rev, cost, inv, docs FROM ({lines}) AS l), \
         stored AS (SELECT reporting, dim, month, key AS k, revenue_units AS rev, cost_units AS cost, \
         invoices AS inv, documents AS docs FROM {TABLE} WHERE tenant = {t} AND (documents <> 0 OR \
         revenue_units <> 0 OR cost_units <> 0 OR invoices <> 0)) \
         SELECT 0 AS side, * FROM (SELECT * FROM lines EXCEPT SELECT * FROM stored) AS a \
         UNION ALL SELECT 1 AS side, * FROM (SELECT * FROM stored EXCEPT SELECT * FROM lines) AS b \
         ORDER BY 2, 3, 4, 5, 1 LIMIT {n}"
    );
    sql
}

/// The statements replacing `tenant`'s roll-ups by the sums of its documents (run in one transaction; on
/// PostgreSQL the first locks the table against concurrent recordings, which wait for the rebuild).
fn rebuild_sql(dialect: Dialect, tenant: TenantId) -> Vec<Sql> {
    let mut out = Vec::new();
    if dialect == Dialect::Postgres {
        let mut lock = Sql::new(dialect);
        lock.text = format!("LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE");
        out.push(lock);
    }
    let (mut delete, t) = Sql::for_tenant(dialect, tenant);
    delete.text = format!("DELETE FROM {TABLE} WHERE tenant = {t}");
    out.push(delete);
    let (mut insert, t) = Sql::for_tenant(dialect, tenant);
    insert.text = upsert(&summed(dialect, &format!("tenant = {t}"), 1));
    out.push(insert);
    out
}

/// [`CommerceStore::rollups`](crm_core::commerce::CommerceStore::rollups) on a [`Runner`].
///
/// # Errors
///
/// The adapter's; [`crm_core::Error::Storage`] of kind `Corrupt` on a row that does not decode.
pub async fn rollups<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    action: RollupAction,
) -> Result<RollupCheck> {
    let dialect = r.dialect();
    let limit = 2 * RollupCheck::MAX_LISTED + 1;
    let rows = r
        .rows(differences_sql(dialect, tenant, limit), true)
        .await?;
    let more = rows.len() == limit;
    let mut differences: Vec<RollupDifference> = Vec::new();
    for row in &rows {
        let side = row[0].int("side")?;
        let code = row[1].text("reporting currency")?;
        let reporting =
            Currency::parse(code.trim()).map_err(|e| corrupt("reporting currency", e))?;
        let d = row[2].int("grouping")?;
        let group_by = usize::try_from(d)
            .ok()
            .and_then(|i| GroupBy::ALL.get(i).copied())
            .ok_or_else(|| corrupt("grouping", d))?;
        let month = i64::try_from(row[3].int("month")?).map_err(|e| corrupt("month", e))?;
        let key = row[4].opt_text().filter(|k| !k.is_empty());
        let sums = RollupSums {
            revenue_units: row[5].int("revenue units")?,
            cost_units: row[6].int("cost units")?,
            invoices: row[7].count("invoices")?,
            documents: row[8].count("documents")?,
        };
        let same = |x: &RollupDifference| {
            x.reporting == reporting && x.group_by == group_by && x.month == month && x.key == key
        };
        if !differences.last().is_some_and(same) {
            differences.push(RollupDifference {
                reporting,
                group_by,
                month,
                key,
                stored: None,
                lines: None,
            });
        }
        let Some(diff) = differences.last_mut() else {
            continue;
        };
        if side == 0 {
            diff.lines = Some(sums);
        } else {
            diff.stored = Some(sums);
        }
    }
    let more = more || differences.len() > RollupCheck::MAX_LISTED;
    differences.truncate(RollupCheck::MAX_LISTED);
    let rebuilt = action == RollupAction::Rebuild;
    if rebuilt {
        r.execute_all(rebuild_sql(dialect, tenant)).await?;
    }
    Ok(RollupCheck {
        differences,
        more,
        rebuilt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn months(p: Period) -> Option<(NaiveDate, NaiveDate)> {
        split(p).0.map(|(a, b)| {
            (
                Bucket::Month.start_of(a).unwrap(),
                Bucket::Month.start_of(b).unwrap(),
            )
        })
    }

    #[test]
    fn a_period_splits_into_whole_months_and_its_edges() {
        let p = Period::new(d(2026, 1, 1), d(2026, 12, 31)).unwrap();
        assert_eq!(months(p), Some((d(2026, 1, 1), d(2026, 12, 1))));
        assert!(split(p).1.is_empty());

        let p = Period::new(d(2026, 1, 15), d(2026, 3, 10)).unwrap();
        assert_eq!(months(p), Some((d(2026, 2, 1), d(2026, 2, 1))));
        assert_eq!(
            split(p).1,
            vec![
                (d(2026, 1, 15), d(2026, 1, 31)),
                (d(2026, 3, 1), d(2026, 3, 10))
            ]
        );

        // Within one month, or across a boundary without a whole month: all from the documents.
        let p = Period::new(d(2026, 2, 2), d(2026, 2, 27)).unwrap();
        assert_eq!(split(p), (None, vec![(d(2026, 2, 2), d(2026, 2, 27))]));
        let p = Period::new(d(2026, 1, 31), d(2026, 2, 1)).unwrap();
        assert_eq!(split(p), (None, vec![(d(2026, 1, 31), d(2026, 2, 1))]));

        // February's last day in a leap year ends a whole month.
        let p = Period::new(d(2028, 2, 1), d(2028, 2, 29)).unwrap();
        assert_eq!(months(p), Some((d(2028, 2, 1), d(2028, 2, 1))));
        // The last business day.
        let last = crm_core::time::MAX_BUSINESS_DATE;
        let p = Period::new(d(last.year(), last.month(), 1), last).unwrap();
        assert!(split(p).1.is_empty());
    }
}
