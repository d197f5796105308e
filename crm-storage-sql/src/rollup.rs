//! The sales roll-ups: what every profitability report groups by, summed per month, kept in the transaction that
//! changes a sales document.
//!
//! `sales_months` holds, per tenant, reporting currency, grouping ([`GroupBy`], as `dim`), month (the
//! [`Bucket::Month`] index) and key, the sums of the sales invoices and credit notes issued in that month: revenue
//! and cost units, invoices, documents. A document counts once in each grouping (eight rows). Documents carry the
//! partner's reporting attributes at issue time, so a partner moving group changes no past month: only recording,
//! replacing or re-pointing a document (a partner merge) changes a roll-up, and each of those does it in its own
//! transaction with one statement that adds (or subtracts) the document as stored ([`apply_documents`]). A report
//! over a period reads the whole months from the roll-ups and the partial months at its edges from `sales_days`
//! (the same sums per day, every grouping but the customer's) or, by customer, from the documents
//! ([`sales_rows`]), so it scans the months and days it covers, not the documents.
//!
//! A key is the grouping's value as text (PostgreSQL) or as stored (SQLite: a partner, owner or campaign id stays
//! its 16-byte blob); an absent attribute is the empty text, which no validated attribute is (a group, industry or
//! location field that trims to nothing is stored as absent), and reads back as `NULL`. A row whose documents
//! all left (a replacement into another month) keeps zero sums and zero documents: reads skip groups with no
//! document, as the line-level sums have no row for them.
//!
//! Segments read two more, kept by the same calls: `partner_last_sales` (each partner's last sales invoice day,
//! for "lapsed" and "bought after") and `bought_months` (each partner's net quantity per category and month, for
//! "bought" a category; a product's are read from its lines, see [`BOUGHT`]); a segment's sales volumes read the
//! customer's roll-ups. A last sale cannot be
//! subtracted, so subtracting a document marks its partner's row (`last_sale` NULL) and the addition that follows
//! in the same transaction recomputes every marked partner and the document's own from its invoices (an index
//! seek each), then drops the partners left without any.

use crate::commerce::{group_column, stored_column};
use crate::run::{corrupt, Runner};
use crate::{day_number, Dialect, Param, Sql};
use chrono::{Datelike, NaiveDate};
use crm_core::commerce::{
    Bucket, CampaignDifference, DocumentDifference, DocumentKind, FactDifference, GroupBy, Item,
    PartnerFact, Period, RollupAction, RollupCheck, RollupDifference, RollupSums,
};
use crm_core::id::{CampaignId, CategoryId, DocumentId, PartnerId, ProductId, TenantId};
use crm_core::money::Currency;
use crm_core::Result;
use uuid::Uuid;

/// The roll-up table.
pub const TABLE: &str = "sales_months";

/// The day roll-up: the same sums per day, for every grouping but the customer's (a customer's day is about one
/// document, so the documents' covering index answers it as fast). A period's partial months at its edges read it
/// instead of the documents.
pub const DAYS: &str = "sales_days";

/// The customer year roll-up: the same sums per customer and calendar year (the customer's grouping alone). A
/// report by customer over a period holding whole years reads one row per customer and year instead of twelve
/// months, in key order: a segment's sales volume over a year, and profitability by customer over one, without
/// summing or sorting a year's months per customer.
pub const YEARS: &str = "sales_years";

/// The table of each partner's last sales invoice day.
pub const LAST_SALES: &str = "partner_last_sales";

/// The table of each partner's net quantity of a category (`kind` 1) per month. Products (`kind` 0) were kept too
/// until SQLite's migration 30 (PostgreSQL's 27): a partner buys a product about once a month at most, so their
/// rows were about one per line, a copy of the lines' index by product (`document_lines_product`, which "bought a
/// product" reads instead) that cost as much space again. A category's month gathers many lines.
pub const BOUGHT: &str = "bought_months";

/// Migration (SQLite's 30, PostgreSQL's 27): the bought roll-up keeps categories only ([`BOUGHT`]).
pub fn bought_categories_only() -> String {
    format!("DELETE FROM {BOUGHT} WHERE kind = 0;\n")
}

/// The campaign roll-up: each customer's net revenue (reporting units) from a campaign's sales per calendar month,
/// quarter and year and over all time (`grain` 0 to 3 as [`campaign_span`] numbers them, `idx` the bucket's index,
/// 0 for all time). Customers invoiced in a period do not add up across its months, so the campaign report's count
/// of them is kept per calendar bucket ([`CAMPAIGN_REACH`]) and this table is what keeps that count exact.
pub const CAMPAIGN_CUSTOMERS: &str = "campaign_customers";

/// The number of customers whose row of [`CAMPAIGN_CUSTOMERS`] is positive, per campaign and calendar bucket.
pub const CAMPAIGN_REACH: &str = "campaign_reach";

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

/// The groupings the day roll-up keeps: all but the customer's.
fn day_dims() -> String {
    let rows: Vec<String> = GroupBy::ALL
        .iter()
        .filter(|g| **g != GroupBy::Customer)
        .map(|g| format!("SELECT {} AS dim", dim(*g)))
        .collect();
    format!("({})", rows.join(" UNION ALL "))
}

/// What a roll-up sums per: the month ([`TABLE`]), the day ([`DAYS`]) or, by customer, the year ([`YEARS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Month,
    Day,
    Year,
}

impl Grain {
    /// The roll-up table.
    fn table(self) -> &'static str {
        match self {
            Self::Month => TABLE,
            Self::Day => DAYS,
            Self::Year => YEARS,
        }
    }

    /// The table's period column.
    fn column(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Day => "day",
            Self::Year => "year",
        }
    }
}

/// `SELECT tenant, reporting, dim, month, key, revenue, cost, invoices, documents` of the sales documents matching
/// `filter`, summed per roll-up row and multiplied by `sign`.
fn summed(dialect: Dialect, filter: &str, sign: i64) -> String {
    summed_per(dialect, Grain::Month, filter, sign)
}

/// [`summed`] per `grain`: for [`Grain::Day`], `month` holds the day number, and the customer's grouping is left
/// out; for [`Grain::Year`], `month` holds the year, and only the customer's grouping is in.
fn summed_per(dialect: Dialect, grain: Grain, filter: &str, sign: i64) -> String {
    summed_rows(dialect, grain, filter, sign, false)
}

/// [`summed_per`]; with `one` (a filter that selects one document), the document's own values, one row per
/// grouping, with no `GROUP BY`: one document's keys differ in every grouping, and SQLite builds a temporary b-tree
/// for every grouping statement it runs.
fn summed_rows(dialect: Dialect, grain: Grain, filter: &str, sign: i64, one: bool) -> String {
    let big = |e: String| match dialect {
        Dialect::Sqlite => e,
        Dialect::Postgres => format!("CAST({e} AS bigint)"),
    };
    let (sum, count, group) = if one {
        ("", "1", "")
    } else {
        ("sum", "count(*)", " GROUP BY 1, 2, 3, 4, 5")
    };
    format!(
        "SELECT tenant, reporting, x.dim AS dim, {period} AS month, {key} AS k, {rev} AS rev, {cost} AS cost, \
         {inv} AS inv, {docs} AS docs \
         FROM documents CROSS JOIN {dims} AS x WHERE {filter} AND kind IN (0, 1){group}",
        key = key_case(dialect),
        rev = big(format!("{sign} * {sum}(revenue_units)")),
        cost = big(format!("{sign} * {sum}(cost_units)")),
        inv = big(format!("{sign} * {sum}(CASE WHEN kind = 0 THEN 1 ELSE 0 END)")),
        docs = big(format!("{sign} * {count}")),
        period = match grain {
            Grain::Month => "month_idx",
            Grain::Day => "issue_day",
            Grain::Year => "year_idx",
        },
        dims = match grain {
            Grain::Month => dims(),
            Grain::Day => day_dims(),
            Grain::Year => format!("(SELECT {} AS dim)", dim(GroupBy::Customer)),
        },
    )
}

/// `INSERT INTO sales_months … ON CONFLICT DO UPDATE` adding `rows` (a [`summed`] select) to the stored sums.
fn upsert(rows: &str) -> String {
    upsert_into(Grain::Month, rows)
}

/// [`upsert`] into `grain`'s table (`rows` a [`summed_per`] select of the same grain).
fn upsert_into(grain: Grain, rows: &str) -> String {
    let (table, period) = (grain.table(), grain.column());
    format!(
        "INSERT INTO {table} (tenant, reporting, dim, {period}, key, revenue_units, cost_units, invoices, \
         documents) {rows} ON CONFLICT (tenant, reporting, dim, {period}, key) DO UPDATE SET \
         revenue_units = {table}.revenue_units + excluded.revenue_units, \
         cost_units = {table}.cost_units + excluded.cost_units, \
         invoices = {table}.invoices + excluded.invoices, \
         documents = {table}.documents + excluded.documents"
    )
}

/// `id IN (…)` (SQLite) or `id = ANY(…)` (PostgreSQL; `id = …` for one id) over `ids`, bound once.
pub(crate) fn among(sql: &mut Sql, column: &str, ids: &[Uuid]) -> String {
    match sql.dialect {
        // One id (recording a document) as an equality: for a tenant its statistics have not seen yet, PostgreSQL's
        // planner expects about one row of it and kept `= ANY` as a filter over a scan of the tenant's rows, which
        // grew with every document the tenant recorded; an equality on an index's column is always a condition of
        // the index.
        Dialect::Postgres if ids.len() == 1 => format!("{column} = {}", sql.bind(ids[0])),
        Dialect::Postgres => format!("{column} = ANY({})", sql.bind(Param::Uuids(ids.to_vec()))),
        Dialect::Sqlite => {
            let ps: Vec<String> = ids.iter().map(|id| sql.bind(*id)).collect();
            format!("{column} IN ({})", ps.join(", "))
        }
    }
}

/// `SELECT tenant, kind, item, month, partner, q` of the lines of the sales documents `d` matching `filter`: the
/// net quantity per category (kind 1), month and partner, multiplied by `sign`; sums of zero are left out.
fn bought(dialect: Dialect, filter: &str, sign: i64) -> String {
    let q = match dialect {
        Dialect::Sqlite => format!("{sign} * sum(q)"),
        Dialect::Postgres => format!("CAST({sign} * sum(q) AS bigint)"),
    };
    // The lines are read by their documents' key. A plain `l.category IS NOT NULL` is a range of the partial
    // category index, which also covers what this reads, and SQLite's planner took it over the key (every line with
    // a category of the tenant, for one document's): the `CASE` is the same test, but no index's.
    format!(
        "SELECT tenant, kind, item, month, partner, {q} AS q FROM (SELECT d.tenant AS tenant, 1 AS kind, \
         l.category AS item, d.month_idx AS month, d.partner AS partner, l.quantity_units AS q \
         FROM documents d JOIN document_lines l ON l.tenant = d.tenant AND l.document = d.id \
         WHERE {filter} AND d.kind IN (0, 1) AND CASE WHEN l.category IS NULL THEN 0 ELSE 1 END = 1) AS y \
         GROUP BY tenant, kind, item, month, partner HAVING sum(q) <> 0"
    )
}

/// `INSERT INTO bought_months … ON CONFLICT DO UPDATE` adding `rows` (a [`bought`] select).
fn bought_upsert(rows: &str) -> String {
    format!(
        "INSERT INTO {BOUGHT} (tenant, kind, item, month, partner, quantity_units) {rows} \
         ON CONFLICT (tenant, kind, item, month, partner) DO UPDATE SET \
         quantity_units = {BOUGHT}.quantity_units + excluded.quantity_units"
    )
}

/// `SELECT tenant, partner, last` of the partners matching `filter` (on `documents`) that have a sales invoice.
fn last_sales(filter: &str) -> String {
    format!(
        "SELECT tenant, partner, max(issue_day) AS last FROM documents WHERE {filter} AND kind = 0 \
         GROUP BY tenant, partner"
    )
}

/// The `(grain, idx)` of [`CAMPAIGN_REACH`] that answers a campaign report over `period` (all time when `None`):
/// a whole calendar month (grain 0), quarter (1) or year (2), or all time (3, index 0); `None` for any other
/// period, which the documents answer.
pub fn campaign_span(period: Option<Period>) -> Option<(i16, i64)> {
    let Some(p) = period else {
        return Some((3, 0));
    };
    if p == Period::ALL {
        return Some((3, 0));
    }
    [Bucket::Month, Bucket::Quarter, Bucket::Year]
        .into_iter()
        .zip(0..)
        .find_map(|(b, grain)| {
            let i = b.index(p.from());
            let whole = b.start_of(i) == Some(p.from())
                && b.start_of(i + 1).and_then(|next| next.pred_opt()) == Some(p.to());
            whole.then_some((grain, i))
        })
}

/// `SELECT tenant, reporting, campaign, grain, idx, partner, rev` of the campaign sales documents matching `filter`:
/// each customer's net revenue per campaign and calendar bucket ([`CAMPAIGN_CUSTOMERS`]' rows), multiplied by
/// `sign`.
fn campaign_rows(dialect: Dialect, filter: &str, sign: i64) -> String {
    let rev = match dialect {
        Dialect::Sqlite => format!("{sign} * sum(revenue_units)"),
        Dialect::Postgres => format!("CAST({sign} * sum(revenue_units) AS bigint)"),
    };
    format!(
        "SELECT tenant, reporting, campaign, g.grain AS grain, \
         CASE g.grain WHEN 0 THEN month_idx WHEN 1 THEN quarter_idx WHEN 2 THEN year_idx ELSE 0 END AS idx, \
         partner, {rev} AS rev FROM documents CROSS JOIN (SELECT 0 AS grain UNION ALL SELECT 1 AS grain \
         UNION ALL SELECT 2 AS grain UNION ALL SELECT 3 AS grain) AS g \
         WHERE {filter} AND campaign IS NOT NULL AND kind IN (0, 1) GROUP BY 1, 2, 3, 4, 5, 6"
    )
}

/// Adds `sign` (1 or -1) times the number of positive [`CAMPAIGN_CUSTOMERS`] rows among the keys of `rows` (a
/// [`campaign_rows`] select) to [`CAMPAIGN_REACH`]: run with -1 before those rows change and with 1 after, so a
/// customer crossing zero either way moves the count by one.
fn reach_adjust(dialect: Dialect, rows: &str, sign: i64) -> String {
    let n = match dialect {
        Dialect::Sqlite => format!("{sign} * count(*)"),
        Dialect::Postgres => format!("CAST({sign} * count(*) AS bigint)"),
    };
    format!(
        "INSERT INTO {CAMPAIGN_REACH} (tenant, reporting, grain, idx, campaign, customers) \
         SELECT c.tenant, c.reporting, c.grain, c.idx, c.campaign, {n} FROM ({rows}) AS k \
         CROSS JOIN {CAMPAIGN_CUSTOMERS} c WHERE c.tenant = k.tenant AND c.reporting = k.reporting \
         AND c.campaign = k.campaign AND c.grain = k.grain AND c.idx = k.idx AND c.partner = k.partner \
         AND c.revenue_units > 0 GROUP BY c.tenant, c.reporting, c.grain, c.idx, c.campaign \
         ON CONFLICT (tenant, reporting, grain, idx, campaign) DO UPDATE SET \
         customers = {CAMPAIGN_REACH}.customers + excluded.customers"
    )
}

/// `INSERT INTO campaign_customers … ON CONFLICT DO UPDATE` adding `rows` (a [`campaign_rows`] select).
fn campaign_upsert(rows: &str) -> String {
    format!(
        "INSERT INTO {CAMPAIGN_CUSTOMERS} (tenant, reporting, campaign, grain, idx, partner, revenue_units) {rows} \
         ON CONFLICT (tenant, reporting, campaign, grain, idx, partner) DO UPDATE SET \
         revenue_units = {CAMPAIGN_CUSTOMERS}.revenue_units + excluded.revenue_units"
    )
}

/// The statements filling the campaign roll-ups from the documents matching `filter` (a condition on `tenant` or
/// none, which the customers' rows are filtered by too), into empty tables.
fn campaign_fill(dialect: Dialect, filter: &str) -> [String; 2] {
    [
        format!(
            "INSERT INTO {CAMPAIGN_CUSTOMERS} (tenant, reporting, campaign, grain, idx, partner, revenue_units) {}",
            campaign_rows(dialect, filter, 1)
        ),
        format!(
            "INSERT INTO {CAMPAIGN_REACH} (tenant, reporting, grain, idx, campaign, customers) \
             SELECT tenant, reporting, grain, idx, campaign, count(*) FROM {CAMPAIGN_CUSTOMERS} \
             WHERE {filter} AND revenue_units > 0 GROUP BY tenant, reporting, grain, idx, campaign"
        ),
    ]
}

/// Migration (SQLite's 25, PostgreSQL's 24): the campaign roll-ups ([`CAMPAIGN_CUSTOMERS`], [`CAMPAIGN_REACH`]),
/// filled from the documents already recorded.
pub fn campaign_schema(dialect: Dialect) -> String {
    let (uuid, ccy, without_rowid) = match dialect {
        Dialect::Sqlite => ("BLOB", "TEXT", " WITHOUT ROWID"),
        Dialect::Postgres => ("uuid", "char(3)", ""),
    };
    let [customers, reach] = campaign_fill(dialect, "true");
    format!(
        "CREATE TABLE {CAMPAIGN_CUSTOMERS} (tenant {uuid} NOT NULL, reporting {ccy} NOT NULL, \
         campaign {uuid} NOT NULL, grain smallint NOT NULL, idx bigint NOT NULL, partner {uuid} NOT NULL, \
         revenue_units bigint NOT NULL, \
         PRIMARY KEY (tenant, reporting, campaign, grain, idx, partner)){without_rowid};\n\
         CREATE TABLE {CAMPAIGN_REACH} (tenant {uuid} NOT NULL, reporting {ccy} NOT NULL, grain smallint NOT NULL, \
         idx bigint NOT NULL, campaign {uuid} NOT NULL, customers bigint NOT NULL, \
         PRIMARY KEY (tenant, reporting, grain, idx, campaign)){without_rowid};\n\
         {customers};\n{reach};\n"
    )
}

/// The statements adding (`sign` 1) or subtracting (`sign` -1) the stored sales documents `ids` of `tenant` to or
/// from the roll-ups, in order. Run them after inserting a document, and around an update of one (subtract
/// before, add after), in the same transaction; documents that are not sales (bills, payments) change nothing.
pub fn apply_documents(dialect: Dialect, tenant: TenantId, ids: &[Uuid], sign: i64) -> Vec<Sql> {
    apply(dialect, tenant, ids, sign, true)
}

/// The statements adding an ingest's sales documents `documents` and campaign targets `targets` (`(campaign,
/// partner)`), whose rows it wrote without their upkeep, to the roll-ups and the campaign report's counts:
/// [`apply_documents`] [`IDS_PER_STATEMENT`] documents at a time, then
/// [`target_counts::apply_ingested`](crate::target_counts::apply_ingested). Run them in the ingest's transaction,
/// unless the tenant has a bulk load open (whose finish rebuilds them).
pub fn apply_ingested(
    dialect: Dialect,
    tenant: TenantId,
    documents: &[Uuid],
    targets: &[(Uuid, Uuid)],
) -> Vec<Sql> {
    documents
        .chunks(IDS_PER_STATEMENT)
        .flat_map(|ids| apply_documents(dialect, tenant, ids, 1))
        .chain(crate::target_counts::apply_ingested(
            dialect, tenant, targets,
        ))
        .collect()
}

/// The statements adding the document `d`, just inserted, to the roll-ups: [`apply_documents`] with its kind and
/// campaign known, so nothing when it is not a sale (its statements would find nothing to add), and none of the
/// campaign roll-up's statements when it has no campaign. A replacement runs [`apply_documents`] both ways (the
/// stored version `d` no longer describes, and the partners its subtraction marked for their last sale).
pub fn apply_document(dialect: Dialect, d: &crm_core::commerce::Document) -> Vec<Sql> {
    use crm_core::commerce::DocumentKind;
    if !matches!(d.kind(), DocumentKind::Invoice | DocumentKind::CreditNote) {
        return Vec::new();
    }
    apply(
        dialect,
        d.tenant(),
        &[*d.id().as_uuid()],
        1,
        d.campaign().is_some(),
    )
}

/// [`apply_documents`], the campaign roll-up's statements only with `campaigns`.
fn apply(dialect: Dialect, tenant: TenantId, ids: &[Uuid], sign: i64, campaigns: bool) -> Vec<Sql> {
    let one = ids.len() == 1;
    // One statement with the tenant and `ids` bound once, `column IN (ids)` handed to `body` with the tenant.
    let statement = |column: &str, body: &dyn Fn(&str, &str) -> String| {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let ids = among(&mut sql, column, ids);
        sql.text = body(&t, &ids);
        sql
    };
    let partners = |t: &str, ids: &str| {
        format!("partner IN (SELECT partner FROM documents WHERE tenant = {t} AND {ids})")
    };
    let grains = |grain: Grain| {
        statement("id", &|t, ids| {
            upsert_into(
                grain,
                &summed_rows(
                    dialect,
                    grain,
                    &format!("tenant = {t} AND {ids}"),
                    sign,
                    one,
                ),
            )
        })
    };
    let mut out = vec![
        grains(Grain::Month),
        grains(Grain::Day),
        grains(Grain::Year),
        statement("d.id", &|t, ids| {
            // The lines by their document too, not only through the join (see `among`).
            let lines = ids
                .strip_prefix("d.id")
                .map(|rest| format!(" AND l.document{rest}"))
                .unwrap_or_default();
            bought_upsert(&bought(
                dialect,
                &format!("d.tenant = {t} AND {ids}{lines}"),
                sign,
            ))
        }),
    ];
    // The campaign roll-up: the positive customers among the documents' rows leave the count, the rows change,
    // and the positive ones are counted again.
    let keys = |t: &str, ids: &str| campaign_rows(dialect, &format!("tenant = {t} AND {ids}"), 1);
    if campaigns {
        out.push(statement("id", &|t, ids| {
            reach_adjust(dialect, &keys(t, ids), -1)
        }));
        out.push(statement("id", &|t, ids| {
            campaign_upsert(&campaign_rows(
                dialect,
                &format!("tenant = {t} AND {ids}"),
                sign,
            ))
        }));
        out.push(statement("id", &|t, ids| {
            reach_adjust(dialect, &keys(t, ids), 1)
        }));
    }
    if sign < 0 {
        out.push(statement("id", &|t, ids| {
            format!(
                "UPDATE {LAST_SALES} SET last_sale = NULL WHERE tenant = {t} AND {}",
                partners(t, ids)
            )
        }));
    } else {
        out.push(statement("id", &|t, ids| {
            format!(
                "INSERT INTO {LAST_SALES} (tenant, partner, last_sale) {} \
                 ON CONFLICT (tenant, partner) DO UPDATE SET last_sale = excluded.last_sale",
                // One IN over a UNION (an OR of two IN lists made SQLite scan the tenant's documents).
                last_sales(&format!(
                    "tenant = {t} AND partner IN (SELECT partner FROM documents WHERE tenant = {t} AND {ids} \
                     UNION SELECT partner FROM {LAST_SALES} WHERE tenant = {t} AND last_sale IS NULL)"
                ))
            )
        }));
        let (mut drop, t) = Sql::for_tenant(dialect, tenant);
        drop.text = format!("DELETE FROM {LAST_SALES} WHERE tenant = {t} AND last_sale IS NULL");
        out.push(drop);
    }
    out
}

/// Migration (SQLite's 16, PostgreSQL's 15): the roll-up table, filled from the documents already recorded.
pub fn schema(dialect: Dialect) -> String {
    grain_schema(dialect, Grain::Month)
}

/// The `CREATE TABLE` of `grain`'s roll-up and the statement filling it from the documents already recorded.
fn grain_schema(dialect: Dialect, grain: Grain) -> String {
    let (uuid, ccy, key, without_rowid) = match dialect {
        Dialect::Sqlite => ("BLOB", "TEXT", "", " WITHOUT ROWID"),
        // PostgreSQL keys are text (ids in their text form, as the reports group them).
        Dialect::Postgres => ("uuid", "char(3)", " text", ""),
    };
    let (table, period) = (grain.table(), grain.column());
    let ty = match grain {
        Grain::Month | Grain::Year => "bigint",
        Grain::Day => "integer",
    };
    format!(
        "CREATE TABLE {table} (tenant {uuid} NOT NULL, reporting {ccy} NOT NULL, dim smallint NOT NULL, \
         {period} {ty} NOT NULL, key{key} NOT NULL, revenue_units bigint NOT NULL, cost_units bigint NOT NULL, \
         invoices bigint NOT NULL, documents bigint NOT NULL, \
         PRIMARY KEY (tenant, reporting, dim, {period}, key)){without_rowid};\n{};\n",
        upsert_into(grain, &summed_per(dialect, grain, "true", 1))
    )
}

/// Migration (SQLite's 17, PostgreSQL's 16): the segments' roll-ups ([`LAST_SALES`], [`BOUGHT`]), filled from the
/// documents already recorded.
pub fn partner_schema(dialect: Dialect) -> String {
    let (uuid, without_rowid) = match dialect {
        Dialect::Sqlite => ("BLOB", " WITHOUT ROWID"),
        Dialect::Postgres => ("uuid", ""),
    };
    format!(
        "CREATE TABLE {LAST_SALES} (tenant {uuid} NOT NULL, partner {uuid} NOT NULL, last_sale integer, \
         PRIMARY KEY (tenant, partner)){without_rowid};\n\
         CREATE INDEX {LAST_SALES}_day ON {LAST_SALES} (tenant, last_sale);\n\
         INSERT INTO {LAST_SALES} (tenant, partner, last_sale) {};\n\
         CREATE TABLE {BOUGHT} (tenant {uuid} NOT NULL, kind smallint NOT NULL, item {uuid} NOT NULL, \
         month bigint NOT NULL, partner {uuid} NOT NULL, quantity_units bigint NOT NULL, \
         PRIMARY KEY (tenant, kind, item, month, partner)){without_rowid};\n\
         {};\n",
        last_sales("true"),
        bought_upsert(&bought(dialect, "true", 1)),
    )
}

/// Migration (SQLite's 21, PostgreSQL's 20): the day roll-up ([`DAYS`]), filled from the documents already
/// recorded.
pub fn day_schema(dialect: Dialect) -> String {
    grain_schema(dialect, Grain::Day)
}

/// Migration (SQLite's 28, PostgreSQL's 25): the customer year roll-up ([`YEARS`]), filled from the documents
/// already recorded.
pub fn year_schema(dialect: Dialect) -> String {
    grain_schema(dialect, Grain::Year)
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
    let parts: Vec<String> = parts(q.group_by, q.bucket, q.period, false)
        .into_iter()
        .map(|part| part_sql(sql, &q, part))
        .collect();
    parts.join(" UNION ALL ")
}

/// The most whole months [`sales_arms`] reads as a statement each (merged without a sort); a longer period's
/// months are one range, which SQLite sorts.
pub const MERGED_MONTHS: i64 = 60;

/// The `SELECT`s of [`sales_rows`] as statements of their own, each ordered by key and bucket (SQLite's order of
/// values), for [`crate::Runner::rows_merged`]: a whole month each when the period holds at most
/// [`MERGED_MONTHS`] of them, read in the roll-up's key order without a sort; the edges (a few days' documents or
/// day roll-ups) sorted. Every key is read (no [`SalesRows::key`]).
pub fn sales_arms(
    dialect: Dialect,
    tenant: TenantId,
    reporting: Currency,
    group_by: GroupBy,
    bucket: Option<Bucket>,
    period: Period,
) -> Vec<Sql> {
    parts(group_by, bucket, period, true)
        .into_iter()
        .map(|part| {
            let (mut sql, t) = Sql::for_tenant(dialect, tenant);
            let r = sql.bind(reporting.code());
            let q = SalesRows {
                tenant: &t,
                reporting: &r,
                group_by,
                bucket,
                key: None,
                period,
            };
            let text = part_sql(&mut sql, &q, part);
            // One month's or one day range's bucket is one value: the key alone orders them, which the roll-ups'
            // primary key gives a single month without a sort.
            let order = match part {
                Part::Months(a, b) | Part::Years(a, b) if a == b => "rk",
                Part::Days(..) => "rk",
                _ => "rk, rb",
            };
            sql.text = format!("{text} ORDER BY {order}");
            sql
        })
        .collect()
}

/// One `SELECT` of [`sales_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The whole months `a`–`b` of the month roll-up.
    Months(i64, i64),
    /// The whole years `a`–`b` of the customer year roll-up (by customer, with no bucket or a yearly one).
    Years(i64, i64),
    /// Days within one month, from the day roll-up.
    Days(NaiveDate, NaiveDate),
    /// Days within one month, from the documents (by customer).
    Documents(NaiveDate, NaiveDate),
}

/// The parts of `period` in order: by customer with no bucket or a yearly one, its whole years; its other whole
/// months (one part each when `each` and there are at most [`MERGED_MONTHS`]; the years too, one each when
/// `each`), then its edges, cut at month ends.
fn parts(group_by: GroupBy, bucket: Option<Bucket>, period: Period, each: bool) -> Vec<Part> {
    let (months, edges) = split(period);
    let mut out = Vec::new();
    let mut runs = Vec::new();
    if let Some((m1, m2)) = months {
        let yearly = group_by == GroupBy::Customer && matches!(bucket, None | Some(Bucket::Year));
        // The first and last year wholly within the months (a month index is the year times twelve plus its
        // month, and both are positive within the business dates).
        let (y1, y2) = ((m1 + 11).div_euclid(12), (m2 + 1).div_euclid(12) - 1);
        if yearly && y1 <= y2 {
            if m1 < y1 * 12 {
                runs.push((m1, y1 * 12 - 1));
            }
            if each {
                out.extend((y1..=y2).map(|y| Part::Years(y, y)));
            } else {
                out.push(Part::Years(y1, y2));
            }
            if y2 * 12 + 11 < m2 {
                runs.push((y2 * 12 + 12, m2));
            }
        } else {
            runs.push((m1, m2));
        }
    }
    for (m1, m2) in runs {
        if each && m2 - m1 < MERGED_MONTHS {
            out.extend((m1..=m2).map(|m| Part::Months(m, m)));
        } else {
            out.push(Part::Months(m1, m2));
        }
    }
    for (from, to) in edges {
        if group_by == GroupBy::Customer {
            // A customer's edge reads the documents whatever its length (a period without a whole month is one
            // edge, which may span two months).
            out.push(Part::Documents(from, to));
        } else {
            out.extend(
                by_month(from, to)
                    .into_iter()
                    .map(|(f, t)| Part::Days(f, t)),
            );
        }
    }
    out
}

/// The `SELECT` of one part, binding into `sql`.
fn part_sql(sql: &mut Sql, q: &SalesRows<'_>, part: Part) -> String {
    let dialect = sql.dialect;
    let (t, r) = (q.tenant, q.reporting);
    match part {
        Part::Months(a, b) | Part::Years(a, b) => {
            let (table, column, bk) = match part {
                Part::Years(..) => (
                    YEARS,
                    "year",
                    // A yearly bucket is the year; `parts` reads years for no other bucket.
                    match q.bucket {
                        Some(Bucket::Year) => "year".to_string(),
                        _ => null_bucket(dialect).to_string(),
                    },
                ),
                _ => (TABLE, "month", bucket_of_month(dialect, q.bucket)),
            };
            // Every placeholder bound is used (PostgreSQL types each from its use).
            let range = if a == b {
                format!("{column} = {}", sql.bind(a))
            } else {
                let (a, b) = (sql.bind(a), sql.bind(b));
                format!("{column} BETWEEN {a} AND {b}")
            };
            let key = q.key.as_ref().map_or(String::new(), |(k, _)| {
                format!(" AND key = {}", sql.bind(k.clone()))
            });
            format!(
                "SELECT key AS rk, {bk} AS rb, revenue_units AS rrev, cost_units AS rcost, invoices AS rn, \
                 documents AS rd FROM {table} WHERE tenant = {t} AND reporting = {r} AND dim = {dim} AND {range}{key}",
                dim = dim(q.group_by),
            )
        }
        Part::Days(from, to) => {
            // The edges from the day roll-up, a part per month (the bucket of a part is one value).
            let (a, b) = (
                sql.bind(Param::Day(day_number(from))),
                sql.bind(Param::Day(day_number(to))),
            );
            let key = q.key.as_ref().map_or(String::new(), |(k, _)| {
                format!(" AND key = {}", sql.bind(k.clone()))
            });
            let bucket = match q.bucket {
                None => null_bucket(dialect).to_string(),
                Some(b) => match dialect {
                    Dialect::Sqlite => b.index(from).to_string(),
                    Dialect::Postgres => format!("CAST({} AS bigint)", b.index(from)),
                },
            };
            format!(
                "SELECT key AS rk, {bucket} AS rb, revenue_units AS rrev, cost_units AS rcost, invoices AS rn, \
                 documents AS rd FROM {DAYS} WHERE tenant = {t} AND reporting = {r} AND dim = {dim} \
                 AND day BETWEEN {a} AND {b}{key}",
                dim = dim(q.group_by),
            )
        }
        Part::Documents(from, to) => {
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
            format!(
                "SELECT {rk} AS rk, {bk} AS rb, revenue_units AS rrev, cost_units AS rcost, \
                 CASE WHEN kind = 0 THEN 1 ELSE 0 END AS rn, 1 AS rd FROM documents \
                 WHERE tenant = {t} AND reporting = {r} AND issue_day BETWEEN {a} AND {b} AND kind IN (0, 1){key}",
                rk = key_of(dialect, q.group_by),
                bk = bucket_of_document(dialect, q.bucket),
            )
        }
    }
}

/// The statement listing the roll-up rows of `tenant` that differ from the documents: `(side, grain, reporting,
/// dim, period, key, revenue, cost, invoices, documents)`, side 0 what the documents give, 1 what is stored (a row
/// of zero sums counts as none), grain 0 a month (`period` its index), 1 a day (`period` its day number) and 2 a
/// customer's year (`period` the year), at most `limit` rows.
fn differences_sql(dialect: Dialect, tenant: TenantId, limit: usize) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let n = sql.bind(limit as i64);
    let lines = |grain: Grain, g: u8| {
        let rows = summed_per(dialect, grain, &format!("tenant = {t}"), 1);
        format!(
            "SELECT {g} AS g, reporting, dim, month, k, rev, cost, inv, docs FROM ({rows}) AS l{g}"
        )
    };
    let stored = |grain: Grain, g: u8| {
        format!(
            "SELECT {g} AS g, reporting, dim, {} AS month, key AS k, revenue_units AS rev, cost_units AS cost, \
             invoices AS inv, documents AS docs FROM {} WHERE tenant = {t} AND (documents <> 0 OR \
             revenue_units <> 0 OR cost_units <> 0 OR invoices <> 0)",
            grain.column(),
            grain.table()
        )
    };
    sql.text = format!(
        "WITH lines AS ({} UNION ALL {} UNION ALL {}), stored AS ({} UNION ALL {} UNION ALL {}) \
         SELECT 0 AS side, * FROM (SELECT * FROM lines EXCEPT SELECT * FROM stored) AS a \
         UNION ALL SELECT 1 AS side, * FROM (SELECT * FROM stored EXCEPT SELECT * FROM lines) AS b \
         ORDER BY 2, 3, 4, 5, 6, 1 LIMIT {n}",
        lines(Grain::Month, 0),
        lines(Grain::Day, 1),
        lines(Grain::Year, 2),
        stored(Grain::Month, 0),
        stored(Grain::Day, 1),
        stored(Grain::Year, 2),
    );
    sql
}

/// The parts of the days `from`–`to` within one month each, in order.
fn by_month(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let month = Bucket::Month.index(start);
        let end = Bucket::Month
            .start_of(month + 1)
            .and_then(|next| next.pred_opt())
            .map_or(to, |last| last.min(to));
        out.push((start, end));
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    out
}

/// `CAST(NULL AS ty)` on PostgreSQL (so a union's column has a type from its first branch), `NULL` on SQLite.
fn null_of(dialect: Dialect, ty: &str) -> String {
    match dialect {
        Dialect::Sqlite => "NULL".to_string(),
        Dialect::Postgres => format!("CAST(NULL AS {ty})"),
    }
}

/// The statement listing the partner facts of `tenant` that differ from the documents: `(side, fact, partner,
/// kind, item, month, value)`, side 0 what the documents give, 1 what is stored; fact 0 the last sale (`value`
/// its day number), 1 a quantity bought (a quantity of zero counts as none); at most `limit` rows.
fn fact_differences_sql(dialect: Dialect, tenant: TenantId, limit: usize) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let n = sql.bind(limit as i64);
    let (kind, item, month) = (
        null_of(dialect, "smallint"),
        null_of(dialect, "uuid"),
        null_of(dialect, "bigint"),
    );
    sql.text = format!(
        "WITH ll AS (SELECT partner, last FROM ({last}) AS a), \
         sl AS (SELECT partner, last_sale AS last FROM {LAST_SALES} WHERE tenant = {t}), \
         lb AS (SELECT kind, item, month, partner, q FROM ({bought}) AS b), \
         sb AS (SELECT kind, item, month, partner, quantity_units AS q FROM {BOUGHT} \
         WHERE tenant = {t} AND quantity_units <> 0) \
         SELECT 0 AS side, 0 AS fact, partner, {kind} AS kind, {item} AS item, {month} AS month, \
         CAST(last AS bigint) AS v FROM (SELECT * FROM ll EXCEPT SELECT * FROM sl) AS a \
         UNION ALL SELECT 1, 0, partner, {kind}, {item}, {month}, CAST(last AS bigint) \
         FROM (SELECT * FROM sl EXCEPT SELECT * FROM ll) AS b \
         UNION ALL SELECT 0, 1, partner, kind, item, month, q FROM (SELECT * FROM lb EXCEPT SELECT * FROM sb) AS c \
         UNION ALL SELECT 1, 1, partner, kind, item, month, q FROM (SELECT * FROM sb EXCEPT SELECT * FROM lb) AS d \
         ORDER BY 2, 3, 4, 5, 6, 1 LIMIT {n}",
        last = last_sales(&format!("tenant = {t}")),
        bought = bought(dialect, &format!("d.tenant = {t}"), 1),
    );
    sql
}

/// The statement listing the campaign roll-up rows of `tenant` that differ from the documents: `(side, fact,
/// reporting, campaign, grain, idx, partner, value)`, side 0 what the documents give, 1 what is stored; fact 0 a
/// customer's net revenue ([`CAMPAIGN_CUSTOMERS`]), 1 a count of customers ([`CAMPAIGN_REACH`], `partner` NULL); a
/// value of zero counts as none; at most `limit` rows.
fn campaign_differences_sql(dialect: Dialect, tenant: TenantId, limit: usize) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let n = sql.bind(limit as i64);
    let none = null_of(dialect, "uuid");
    sql.text = format!(
        "WITH lc AS (SELECT reporting, campaign, grain, idx, partner, rev FROM ({rows}) AS r WHERE rev <> 0), \
         sc AS (SELECT reporting, campaign, grain, idx, partner, revenue_units AS rev FROM {CAMPAIGN_CUSTOMERS} \
         WHERE tenant = {t} AND revenue_units <> 0), \
         lr AS (SELECT reporting, campaign, grain, idx, count(*) AS n FROM lc WHERE rev > 0 \
         GROUP BY reporting, campaign, grain, idx), \
         sr AS (SELECT reporting, campaign, grain, idx, customers AS n FROM {CAMPAIGN_REACH} \
         WHERE tenant = {t} AND customers <> 0) \
         SELECT 0 AS side, 0 AS fact, reporting, campaign, grain, idx, partner, rev AS v \
         FROM (SELECT * FROM lc EXCEPT SELECT * FROM sc) AS a \
         UNION ALL SELECT 1, 0, reporting, campaign, grain, idx, partner, rev FROM (SELECT * FROM sc EXCEPT SELECT * FROM lc) AS b \
         UNION ALL SELECT 0, 1, reporting, campaign, grain, idx, {none}, n FROM (SELECT * FROM lr EXCEPT SELECT * FROM sr) AS c \
         UNION ALL SELECT 1, 1, reporting, campaign, grain, idx, {none}, n FROM (SELECT * FROM sr EXCEPT SELECT * FROM lr) AS d \
         ORDER BY 2, 3, 4, 5, 6, 7, 1 LIMIT {n}",
        rows = campaign_rows(dialect, &format!("tenant = {t}"), 1),
    );
    sql
}

/// The campaign roll-up rows that differ, from [`campaign_differences_sql`]'s rows (the two sides of one row are
/// adjacent).
fn campaign_differences(rows: &[Vec<crate::run::Cell>]) -> Result<Vec<CampaignDifference>> {
    let mut out: Vec<CampaignDifference> = Vec::new();
    for row in rows {
        let side = row[0].int("side")?;
        let code = row[2].text("reporting currency")?;
        let reporting =
            Currency::parse(code.trim()).map_err(|e| corrupt("reporting currency", e))?;
        let campaign = CampaignId::from_uuid(row[3].uuid("campaign")?);
        let bucket = match row[4].int("grain")? {
            0 => Some(Bucket::Month),
            1 => Some(Bucket::Quarter),
            2 => Some(Bucket::Year),
            3 => None,
            g => return Err(corrupt("grain", g)),
        };
        let index =
            i64::try_from(row[5].int("bucket index")?).map_err(|e| corrupt("bucket index", e))?;
        let partner = row[6].opt_uuid("partner")?.map(PartnerId::from_uuid);
        let value = i64::try_from(row[7].int("value")?).map_err(|e| corrupt("value", e))?;
        let diff = CampaignDifference {
            reporting,
            campaign,
            bucket,
            index,
            partner,
            stored: None,
            lines: None,
        };
        let same = |x: &CampaignDifference| {
            (x.reporting, x.campaign, x.bucket, x.index, x.partner)
                == (
                    diff.reporting,
                    diff.campaign,
                    diff.bucket,
                    diff.index,
                    diff.partner,
                )
        };
        if !out.last().is_some_and(same) {
            out.push(diff);
        }
        if let Some(last) = out.last_mut() {
            if side == 0 {
                last.lines = Some(value);
            } else {
                last.stored = Some(value);
            }
        }
    }
    Ok(out)
}

/// What a rebuild starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rebuild {
    /// A repair ([`RollupAction::Rebuild`]): each document's sums are first set from its lines where they differ.
    Repair,
    /// The end of a bulk load: the loaded documents are kept as given, as an ingest outside a load keeps them (their
    /// sums are those `NewDocument::record` computed from their lines), and only the roll-ups, not kept during the
    /// load, are built.
    Load,
}

/// The statements replacing `tenant`'s roll-ups by the sums of its documents, for a repair once the documents' sums
/// are set from their lines where they differ (run in one transaction; on PostgreSQL the first locks the roll-up
/// tables against concurrent recordings, which wait for the rebuild).
pub(crate) fn rebuild_sql(dialect: Dialect, tenant: TenantId, from: Rebuild) -> Vec<Sql> {
    let mut out = Vec::new();
    if dialect == Dialect::Postgres {
        let mut lock = Sql::new(dialect);
        lock.text = format!(
            "LOCK TABLE {TABLE}, {DAYS}, {YEARS}, {LAST_SALES}, {BOUGHT}, {CAMPAIGN_CUSTOMERS}, {CAMPAIGN_REACH}, \
             {} IN SHARE ROW EXCLUSIVE MODE",
            crate::target_counts::TABLE
        );
        out.push(lock);
    }
    if from == Rebuild::Repair {
        out.push(documents_from_lines_sql(dialect, tenant));
    }
    let tenant_sql = |text: &dyn Fn(&str) -> String| {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        sql.text = text(&t);
        sql
    };
    for table in [
        TABLE,
        DAYS,
        YEARS,
        LAST_SALES,
        BOUGHT,
        CAMPAIGN_CUSTOMERS,
        CAMPAIGN_REACH,
    ] {
        out.push(tenant_sql(&|t| {
            format!("DELETE FROM {table} WHERE tenant = {t}")
        }));
    }
    out.push(tenant_sql(&|t| {
        upsert(&summed(dialect, &format!("tenant = {t}"), 1))
    }));
    out.push(tenant_sql(&|t| {
        upsert_into(
            Grain::Day,
            &summed_per(dialect, Grain::Day, &format!("tenant = {t}"), 1),
        )
    }));
    out.push(tenant_sql(&|t| {
        upsert_into(
            Grain::Year,
            &summed_per(dialect, Grain::Year, &format!("tenant = {t}"), 1),
        )
    }));
    out.push(tenant_sql(&|t| {
        format!(
            "INSERT INTO {LAST_SALES} (tenant, partner, last_sale) {}",
            last_sales(&format!("tenant = {t}"))
        )
    }));
    out.push(tenant_sql(&|t| {
        bought_upsert(&bought(dialect, &format!("d.tenant = {t}"), 1))
    }));
    // The tenant's placeholder is the same in every statement `tenant_sql` builds.
    let (_, t) = Sql::for_tenant(dialect, tenant);
    for text in campaign_fill(dialect, &format!("tenant = {t}")) {
        out.push(tenant_sql(&|_| text.clone()));
    }
    out.extend(crate::target_counts::rebuild_sql(dialect, tenant));
    out
}

/// Both sides of one fact, from its two one-sided halves (`None` when they are not the same fact).
fn merge(a: &PartnerFact, b: &PartnerFact) -> Option<PartnerFact> {
    match (a, b) {
        (
            PartnerFact::LastSale { stored, lines },
            PartnerFact::LastSale {
                stored: s2,
                lines: l2,
            },
        ) => Some(PartnerFact::LastSale {
            stored: stored.or(*s2),
            lines: lines.or(*l2),
        }),
        (
            PartnerFact::Bought {
                item,
                month,
                stored,
                lines,
            },
            PartnerFact::Bought {
                item: i2,
                month: m2,
                stored: s2,
                lines: l2,
            },
        ) if item == i2 && month == m2 => Some(PartnerFact::Bought {
            item: *item,
            month: *month,
            stored: stored.or(*s2),
            lines: lines.or(*l2),
        }),
        _ => None,
    }
}

/// The partner facts that differ, from [`fact_differences_sql`]'s rows.
fn fact_differences(rows: &[Vec<crate::run::Cell>]) -> Result<Vec<FactDifference>> {
    let mut out: Vec<FactDifference> = Vec::new();
    for row in rows {
        let side = row[0].int("side")?;
        let partner = PartnerId::from_uuid(row[2].uuid("partner")?);
        let value = row[6].opt_int("fact")?;
        let fact = if row[1].int("fact")? == 0 {
            let day = value
                .map(|v| {
                    i32::try_from(v)
                        .ok()
                        .and_then(crm_core::commerce::from_day_number)
                        .ok_or_else(|| corrupt("last sale", v))
                })
                .transpose()?;
            PartnerFact::LastSale {
                stored: day.filter(|_| side == 1),
                lines: day.filter(|_| side == 0),
            }
        } else {
            let id = row[4].uuid("item")?;
            let item = match row[3].int("item kind")? {
                0 => Item::Product(ProductId::from_uuid(id)),
                1 => Item::Category(CategoryId::from_uuid(id)),
                k => return Err(corrupt("item kind", k)),
            };
            let month = i64::try_from(row[5].int("month")?).map_err(|e| corrupt("month", e))?;
            let q = value
                .map(|v| i64::try_from(v).map_err(|e| corrupt("quantity", e)))
                .transpose()?;
            PartnerFact::Bought {
                item,
                month,
                stored: q.filter(|_| side == 1),
                lines: q.filter(|_| side == 0),
            }
        };
        // The two sides of one fact are adjacent rows: merge the second into the first.
        if let Some(last) = out.last_mut() {
            if last.partner == partner {
                if let Some(merged) = merge(&last.fact, &fact) {
                    last.fact = merged;
                    continue;
                }
            }
        }
        out.push(FactDifference { partner, fact });
    }
    Ok(out)
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
        let code = row[2].text("reporting currency")?;
        let reporting =
            Currency::parse(code.trim()).map_err(|e| corrupt("reporting currency", e))?;
        let d = row[3].int("grouping")?;
        let group_by = usize::try_from(d)
            .ok()
            .and_then(|i| GroupBy::ALL.get(i).copied())
            .ok_or_else(|| corrupt("grouping", d))?;
        let period = row[4].int("month")?;
        let (month, day, year) = match row[1].int("grain")? {
            0 => (
                i64::try_from(period).map_err(|e| corrupt("month", e))?,
                None,
                None,
            ),
            1 => {
                let day = i32::try_from(period)
                    .ok()
                    .and_then(crm_core::commerce::from_day_number)
                    .ok_or_else(|| corrupt("day", period))?;
                (Bucket::Month.index(day), Some(day), None)
            }
            2 => {
                // A year of the business dates (its January's month index is then in range too).
                let year = i32::try_from(period)
                    .ok()
                    .filter(|y| NaiveDate::from_ymd_opt(*y, 1, 1).is_some())
                    .ok_or_else(|| corrupt("year", period))?;
                (i64::from(year) * 12, None, Some(year))
            }
            g => return Err(corrupt("grain", g)),
        };
        let key = row[5].opt_text().filter(|k| !k.is_empty());
        let sums = RollupSums {
            revenue_units: row[6].int("revenue units")?,
            cost_units: row[7].int("cost units")?,
            invoices: row[8].count("invoices")?,
            documents: row[9].count("documents")?,
        };
        let same = |x: &RollupDifference| {
            x.reporting == reporting
                && x.group_by == group_by
                && x.month == month
                && x.day == day
                && x.year == year
                && x.key == key
        };
        if !differences.last().is_some_and(same) {
            differences.push(RollupDifference {
                reporting,
                group_by,
                month,
                day,
                year,
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
    let fact_rows = r
        .rows(fact_differences_sql(dialect, tenant, limit), true)
        .await?;
    let mut facts = fact_differences(&fact_rows)?;
    let campaign_rows = r
        .rows(campaign_differences_sql(dialect, tenant, limit), true)
        .await?;
    let mut campaigns = campaign_differences(&campaign_rows)?;
    let document_rows = r
        .rows(document_differences_sql(dialect, tenant, limit), true)
        .await?;
    let mut documents = document_differences(&document_rows)?;
    let target_rows = r
        .rows(
            crate::target_counts::differences_sql(dialect, tenant, limit),
            true,
        )
        .await?;
    let mut targets = crate::target_counts::differences(&target_rows)?;
    let more = more
        || target_rows.len() == limit
        || targets.len() > RollupCheck::MAX_LISTED
        || document_rows.len() == limit
        || documents.len() > RollupCheck::MAX_LISTED
        || fact_rows.len() == limit
        || campaign_rows.len() == limit
        || differences.len() > RollupCheck::MAX_LISTED
        || facts.len() > RollupCheck::MAX_LISTED
        || campaigns.len() > RollupCheck::MAX_LISTED;
    differences.truncate(RollupCheck::MAX_LISTED);
    facts.truncate(RollupCheck::MAX_LISTED);
    campaigns.truncate(RollupCheck::MAX_LISTED);
    documents.truncate(RollupCheck::MAX_LISTED);
    targets.truncate(RollupCheck::MAX_LISTED);
    let rebuilt = action == RollupAction::Rebuild;
    if rebuilt {
        r.execute_all(rebuild_sql(dialect, tenant, Rebuild::Repair))
            .await?;
    }
    Ok(RollupCheck {
        differences,
        facts,
        campaigns,
        documents,
        targets,
        more,
        rebuilt,
        bulk: None,
    })
}

/// `(id, rev, cost)` for each of `tenant`'s documents (placeholder `t`): the sums of its lines' reporting revenue and
/// cost, zero without lines. One grouped pass over the documents and their lines by key (at M on SQLite 8 s, where a
/// pair of correlated sums per document took 16 s; on PostgreSQL a join instead of two index searches a document).
fn line_sums(t: &str) -> String {
    format!(
        "SELECT d2.id AS id, CAST(coalesce(sum(l.revenue_units), 0) AS bigint) AS rev, \
         CAST(coalesce(sum(l.cost_units), 0) AS bigint) AS cost FROM documents d2 \
         LEFT JOIN document_lines l ON l.tenant = d2.tenant AND l.document = d2.id WHERE d2.tenant = {t} \
         GROUP BY d2.id"
    )
}

/// The statement listing `tenant`'s documents whose reporting sums differ from their lines': `(id, kind, number,
/// revenue, cost, lines' revenue, lines' cost)`, by id, at most `limit` rows.
fn document_differences_sql(dialect: Dialect, tenant: TenantId, limit: usize) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let n = sql.bind(limit as i64);
    sql.text = format!(
        "SELECT d.id, d.kind, d.number, d.revenue_units, d.cost_units, s.rev, s.cost FROM documents d \
         JOIN ({sums}) AS s ON s.id = d.id WHERE d.tenant = {t} \
         AND (d.revenue_units <> s.rev OR d.cost_units <> s.cost) ORDER BY d.id LIMIT {n}",
        sums = line_sums(&t)
    );
    sql
}

fn document_differences(rows: &[Vec<crate::run::Cell>]) -> Result<Vec<DocumentDifference>> {
    let small = |v: i128, what: &str| i64::try_from(v).map_err(|e| corrupt(what, e));
    rows.iter()
        .map(|row| {
            let code = row[1].int("document kind")?;
            let kind = i16::try_from(code)
                .ok()
                .and_then(DocumentKind::from_code)
                .ok_or_else(|| corrupt("document kind", code))?;
            Ok(DocumentDifference {
                document: DocumentId::from_uuid(row[0].uuid("document")?),
                kind,
                number: row[2].text("document number")?.to_string(),
                stored: (
                    small(row[3].int("revenue units")?, "revenue units")?,
                    small(row[4].int("cost units")?, "cost units")?,
                ),
                lines: (
                    small(row[5].int("revenue units")?, "revenue units")?,
                    small(row[6].int("cost units")?, "cost units")?,
                ),
            })
        })
        .collect()
}

/// The statement setting `tenant`'s documents' reporting sums from their lines where they differ (the first of a
/// repair: the roll-ups are then summed from what the lines give).
fn documents_from_lines_sql(dialect: Dialect, tenant: TenantId) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    sql.text = format!(
        "UPDATE documents SET revenue_units = s.rev, cost_units = s.cost FROM ({sums}) AS s \
         WHERE documents.tenant = {t} AND documents.id = s.id \
         AND (documents.revenue_units <> s.rev OR documents.cost_units <> s.cost)",
        sums = line_sums(&t)
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored document of `kind` with or without a campaign, as the commit path hands it over.
    fn document(kind: &str, campaign: bool) -> crm_core::commerce::Document {
        let campaign = if campaign {
            r#""0184d022-0000-7e96-bc81-214a33eea20a""#
        } else {
            "null"
        };
        serde_json::from_str(&format!(
            r#"{{"allocations":[],"attrs":{{"city":null,"country":null,"group":"g","industry":null,
                "owner":null,"region":null}},"campaign":{campaign},"corrects":null,"cost_units":3,
                "currency":"EUR","direction":null,"due_date":null,"id":"01856d33-f600-72e3-b67b-4bd1a59379bd",
                "issue_date":"2025-01-01","kind":"{kind}","number":"N-1",
                "partner":"018503a1-a0b7-7341-b181-fa9fe2be369d","rate":{{"rate":"1","reporting":"EUR"}},
                "recorded_at":"2025-01-01T12:00:00Z","renews_on":null,"revenue_units":5,
                "tenant":"0184d022-0000-7891-b837-9561aaec8ef1","total":"1","updated_at":"2025-01-01T12:00:00Z",
                "version":1,"lines":[]}}"#
        ))
        .expect("a document")
    }

    #[test]
    fn a_new_document_runs_only_the_upkeep_that_can_change() {
        let texts = |kind, campaign| -> Vec<String> {
            apply_document(Dialect::Sqlite, &document(kind, campaign))
                .into_iter()
                .map(|s| s.text)
                .collect()
        };
        assert!(texts("vendor_bill", true).is_empty(), "a bill is no sale");
        assert!(texts("payment", false).is_empty());
        let plain = texts("invoice", false);
        assert!(!plain
            .iter()
            .any(|t| t.contains(CAMPAIGN_CUSTOMERS) || t.contains(CAMPAIGN_REACH)));
        let campaign = texts("credit_note", true);
        assert_eq!(campaign.len(), plain.len() + 3, "{campaign:#?}");
        assert!(campaign.iter().any(|t| t.contains(CAMPAIGN_CUSTOMERS)));
        // One document's grouping sums are its own values, one row per grouping: no GROUP BY.
        for table in [TABLE, DAYS, YEARS] {
            let upkeep = plain
                .iter()
                .find(|t| t.starts_with(&format!("INSERT INTO {table} ")))
                .expect("each grain's upkeep");
            assert!(!upkeep.contains("GROUP BY"), "{upkeep}");
        }
        // Several documents, or a replacement's stored version, run every statement, grouped.
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let batch = apply_documents(Dialect::Sqlite, TenantId::new(), &ids, 1);
        assert_eq!(batch.len(), campaign.len());
        assert!(batch[0].text.contains("GROUP BY"));
    }

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
    fn days_split_into_parts_within_one_month() {
        assert_eq!(
            by_month(d(2026, 1, 31), d(2026, 2, 1)),
            vec![
                (d(2026, 1, 31), d(2026, 1, 31)),
                (d(2026, 2, 1), d(2026, 2, 1))
            ]
        );
        assert_eq!(
            by_month(d(2026, 12, 15), d(2027, 2, 3)),
            vec![
                (d(2026, 12, 15), d(2026, 12, 31)),
                (d(2027, 1, 1), d(2027, 1, 31)),
                (d(2027, 2, 1), d(2027, 2, 3))
            ]
        );
        assert_eq!(
            by_month(d(2028, 2, 10), d(2028, 2, 29)),
            vec![(d(2028, 2, 10), d(2028, 2, 29))]
        );
        let last = crm_core::time::MAX_BUSINESS_DATE;
        let first = d(last.year(), last.month(), 1);
        assert_eq!(by_month(first, last), vec![(first, last)]);
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

    #[test]
    fn postgres_upkeep_names_one_document_by_equality() {
        let (tenant, a, b) = (TenantId::new(), Uuid::now_v7(), Uuid::now_v7());
        for sql in apply_documents(Dialect::Postgres, tenant, &[a], 1) {
            assert!(!sql.text.contains("ANY("), "{}", sql.text);
            assert!(!sql.params.iter().any(|p| matches!(p, Param::Uuids(_))));
        }
        let bought = apply_documents(Dialect::Postgres, tenant, &[a], 1)
            .into_iter()
            .find(|s| s.text.contains(BOUGHT))
            .unwrap();
        assert!(
            bought.text.contains("d.id = $2") && bought.text.contains("l.document = $2"),
            "{}",
            bought.text
        );
        // A batch keeps one array parameter.
        let batch = apply_documents(Dialect::Postgres, tenant, &[a, b], 1);
        assert!(batch.iter().all(|s| !s.text.contains(" = $2 ")));
        assert!(batch
            .iter()
            .any(|s| s.text.contains("d.id = ANY($2)") && s.text.contains("l.document = ANY($2)")));
    }

    #[test]
    fn by_customer_whole_years_come_from_the_year_roll_up() {
        let month = |y: i64, m: i64| y * 12 + m - 1;
        let long = Period::new(d(2019, 6, 15), d(2026, 12, 31)).unwrap();
        assert_eq!(
            parts(GroupBy::Customer, None, long, false),
            vec![
                Part::Years(2020, 2026),
                Part::Months(month(2019, 7), month(2019, 12)),
                Part::Documents(d(2019, 6, 15), d(2019, 6, 30)),
            ]
        );
        // A statement each: every year, every month.
        let two = Period::new(d(2025, 2, 1), d(2026, 12, 31)).unwrap();
        let mut want = vec![Part::Years(2026, 2026)];
        want.extend((2..=12).map(|m| Part::Months(month(2025, m), month(2025, m))));
        assert_eq!(
            parts(GroupBy::Customer, Some(Bucket::Year), two, true),
            want
        );
        let year = Period::year(2025).unwrap();
        assert_eq!(
            parts(GroupBy::Customer, None, year, false),
            vec![Part::Years(2025, 2025)]
        );
        // A year that ends or starts mid-month is no whole year.
        let short = Period::new(d(2025, 1, 1), d(2025, 12, 30)).unwrap();
        assert_eq!(
            parts(GroupBy::Customer, None, short, false),
            vec![
                Part::Months(month(2025, 1), month(2025, 11)),
                Part::Documents(d(2025, 12, 1), d(2025, 12, 30)),
            ]
        );
        // Monthly or quarterly buckets, and every other grouping, read the months.
        for (g, b) in [
            (GroupBy::Customer, Some(Bucket::Month)),
            (GroupBy::Customer, Some(Bucket::Quarter)),
            (GroupBy::Group, None),
        ] {
            assert_eq!(
                parts(g, b, year, false),
                vec![Part::Months(month(2025, 1), month(2025, 12))]
            );
        }
    }
}
