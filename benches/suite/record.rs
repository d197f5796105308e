//! The baseline of recording one sales document: what a hand-written recorder runs in one transaction on the same
//! schema, with prepared statements and values computed in Rust — the partner checked, the document row and its
//! line rows inserted, the eight month, seven day and one year rows of the sales roll-ups, the last sale and the bought months
//! upserted (`VALUES … ON CONFLICT DO UPDATE`), for a campaign's document its four campaign roll-up rows and the
//! counts of invoiced customers they move, the event appended. The engine's side reads the partner, the
//! products, the campaign, the number and the rate before it writes, and derives the roll-up rows from the rows it
//! inserted (`INSERT … SELECT`): the workload measures what that costs.
//!
//! The texts use `$n` placeholders (PostgreSQL's; SQLite gets them as `?n`).

use crm_core::commerce::{Bucket, Document, DocumentKind, GroupBy};
use crm_storage_sql::Param;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// One row of `table` (the engine's column order).
fn insert(table: &crm_storage_sql::Table) -> String {
    let cols: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let ps: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        cols.join(", "),
        ps.join(", ")
    )
}

/// The document row (its JSON without the lines, as the engine stores it).
pub static DOCUMENT_INSERT: LazyLock<String> =
    LazyLock::new(|| insert(&crm_storage_sql::commerce::DOCUMENTS));

/// One line row.
pub static LINE_INSERT: LazyLock<String> =
    LazyLock::new(|| insert(&crm_storage_sql::commerce::DOCUMENT_LINES));

/// `INSERT INTO table … VALUES rows ON CONFLICT DO UPDATE` adding to a sales roll-up (`period` its month or day
/// column).
fn rollup_upsert(table: &str, period: &str, rows: &[String]) -> String {
    format!(
        "INSERT INTO {table} (tenant, reporting, dim, {period}, key, revenue_units, cost_units, invoices, \
         documents) VALUES {} ON CONFLICT (tenant, reporting, dim, {period}, key) DO UPDATE SET \
         revenue_units = {table}.revenue_units + excluded.revenue_units, \
         cost_units = {table}.cost_units + excluded.cost_units, \
         invoices = {table}.invoices + excluded.invoices, \
         documents = {table}.documents + excluded.documents",
        rows.join(", ")
    )
}

/// The eight month rows of the sales roll-up (one per grouping), in one statement: `$1` tenant, `$2` reporting,
/// `$3` month, `$4`–`$7` revenue, cost, invoices, documents, `$8`… each grouping's key.
pub static MONTHS_UPSERT: LazyLock<String> = LazyLock::new(|| {
    let rows: Vec<String> = (0..GroupBy::ALL.len())
        .map(|dim| format!("($1, $2, {dim}, $3, ${}, $4, $5, $6, $7)", 8 + dim))
        .collect();
    rollup_upsert("sales_months", "month", &rows)
});

/// The seven day rows of the day roll-up (every grouping but the customer's), in one statement: `$1` tenant, `$2`
/// reporting, `$3` day, `$4`–`$7` revenue, cost, invoices, documents, `$8`… each grouping's key.
pub static DAYS_UPSERT: LazyLock<String> = LazyLock::new(|| {
    let rows: Vec<String> = (1..GroupBy::ALL.len())
        .map(|dim| format!("($1, $2, {dim}, $3, ${}, $4, $5, $6, $7)", 7 + dim))
        .collect();
    rollup_upsert("sales_days", "day", &rows)
});

/// The customer's row of the year roll-up: `$1` tenant, `$2` reporting, `$3` year, `$4`–`$7` revenue, cost,
/// invoices, documents, `$8` the customer's key.
pub static YEARS_UPSERT: LazyLock<String> = LazyLock::new(|| {
    rollup_upsert(
        "sales_years",
        "year",
        &["($1, $2, 0, $3, $8, $4, $5, $6, $7)".to_string()],
    )
});

/// The partner's last sale, kept as the later of the stored day and this invoice's.
pub const LAST_SALE_UPSERT: &str =
    "INSERT INTO partner_last_sales (tenant, partner, last_sale) VALUES ($1, $2, $3) \
     ON CONFLICT (tenant, partner) DO UPDATE SET last_sale = CASE WHEN excluded.last_sale > \
     partner_last_sales.last_sale THEN excluded.last_sale ELSE partner_last_sales.last_sale END";

/// One bought month of a category (kind 1; the roll-up keeps no products).
pub const BOUGHT_UPSERT: &str = "INSERT INTO bought_months (tenant, kind, item, month, partner, quantity_units) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, kind, item, month, partner) DO UPDATE SET \
     quantity_units = bought_months.quantity_units + excluded.quantity_units";

/// A campaign document's four rows of the campaign roll-up (its customer's net revenue per calendar month,
/// quarter, year and all time): `$1` tenant, `$2` reporting, `$3` campaign, `$4` partner, `$5`–`$7` the month,
/// quarter and year indexes, `$8` revenue.
pub const CAMPAIGN_CUSTOMERS_UPSERT: &str =
    "INSERT INTO campaign_customers (tenant, reporting, campaign, grain, \
     idx, partner, revenue_units) VALUES ($1, $2, $3, 0, $5, $4, $8), ($1, $2, $3, 1, $6, $4, $8), \
     ($1, $2, $3, 2, $7, $4, $8), ($1, $2, $3, 3, 0, $4, $8) \
     ON CONFLICT (tenant, reporting, campaign, grain, idx, partner) DO UPDATE SET \
     revenue_units = campaign_customers.revenue_units + excluded.revenue_units";

/// After [`CAMPAIGN_CUSTOMERS_UPSERT`] (same values): each of the four rows whose revenue crossed zero moves its
/// bucket's count of invoiced customers by one.
pub const CAMPAIGN_REACH_UPSERT: &str = "INSERT INTO campaign_reach (tenant, reporting, grain, idx, campaign, \
     customers) SELECT c.tenant, c.reporting, c.grain, c.idx, c.campaign, \
     CASE WHEN c.revenue_units > 0 THEN 1 ELSE -1 END FROM (SELECT 0 AS grain, CAST($5 AS bigint) AS idx \
     UNION ALL SELECT 1, CAST($6 AS bigint) UNION ALL SELECT 2, CAST($7 AS bigint) UNION ALL SELECT 3, 0) AS g \
     CROSS JOIN campaign_customers c WHERE c.tenant = $1 AND c.reporting = $2 AND c.campaign = $3 \
     AND c.grain = g.grain AND c.idx = g.idx AND c.partner = $4 \
     AND (c.revenue_units > 0) <> (c.revenue_units - CAST($8 AS bigint) > 0) \
     ON CONFLICT (tenant, reporting, grain, idx, campaign) DO UPDATE SET \
     customers = campaign_reach.customers + excluded.customers";

/// The statements recording the sales document `d` (an invoice or credit note), with their values. Keys are
/// written as each schema stores them: ids as text on PostgreSQL (`pg`), as stored (blobs) on SQLite; an absent
/// attribute as the empty text.
pub fn statements(d: &Document, pg: bool) -> Result<Vec<(&'static str, Vec<Param>)>, String> {
    let tenant = Param::Uuid(*d.tenant().as_uuid());
    let mut out = vec![(
        DOCUMENT_INSERT.as_str(),
        crm_storage_sql::commerce::document_row(d).map_err(|e| e.to_string())?,
    )];
    for row in crm_storage_sql::commerce::line_rows(d) {
        out.push((LINE_INSERT.as_str(), row));
    }
    let month = Bucket::Month.index(d.issue_date());
    let id_key = |id: Option<uuid::Uuid>| match id {
        None => Param::Text(String::new()),
        Some(u) if pg => Param::Text(u.to_string()),
        Some(u) => Param::Uuid(u),
    };
    let text_key = |t: &Option<String>| Param::Text(t.clone().unwrap_or_default());
    let attrs = d.attrs();
    let mut months = vec![
        tenant.clone(),
        Param::Text(d.rate().reporting.code().to_string()),
        Param::I64(month),
        Param::I64(d.revenue_units()),
        Param::I64(d.cost_units()),
        Param::I64(i64::from(d.kind() == DocumentKind::Invoice)),
        Param::I64(1),
    ];
    for g in GroupBy::ALL {
        months.push(match g {
            GroupBy::Customer => id_key(Some(*d.partner().as_uuid())),
            GroupBy::Group => text_key(&attrs.group),
            GroupBy::Industry => text_key(&attrs.industry),
            GroupBy::Country => text_key(&attrs.country),
            GroupBy::Region => text_key(&attrs.region),
            GroupBy::City => text_key(&attrs.city),
            GroupBy::Owner => id_key(attrs.owner.map(|o| *o.as_uuid())),
            GroupBy::Campaign => id_key(d.campaign().map(|c| *c.as_uuid())),
        });
    }
    assert_eq!(
        GroupBy::ALL[0],
        GroupBy::Customer,
        "the day rows skip the first grouping"
    );
    let mut days = months.clone();
    days[2] = Param::Day(crm_core::commerce::day_number(d.issue_date()));
    days.remove(7);
    let mut years = months[..8].to_vec();
    years[2] = Param::I64(Bucket::Year.index(d.issue_date()));
    out.push((MONTHS_UPSERT.as_str(), months));
    out.push((DAYS_UPSERT.as_str(), days));
    out.push((YEARS_UPSERT.as_str(), years));
    let partner = Param::Uuid(*d.partner().as_uuid());
    if d.kind() == DocumentKind::Invoice {
        out.push((
            LAST_SALE_UPSERT,
            vec![
                tenant.clone(),
                partner.clone(),
                Param::Day(crm_core::commerce::day_number(d.issue_date())),
            ],
        ));
    }
    if let Some(c) = d.campaign() {
        let values = vec![
            tenant.clone(),
            Param::Text(d.rate().reporting.code().to_string()),
            Param::Uuid(*c.as_uuid()),
            partner.clone(),
            Param::I64(month),
            Param::I64(Bucket::Quarter.index(d.issue_date())),
            Param::I64(Bucket::Year.index(d.issue_date())),
            Param::I64(d.revenue_units()),
        ];
        out.push((CAMPAIGN_CUSTOMERS_UPSERT, values.clone()));
        out.push((CAMPAIGN_REACH_UPSERT, values));
    }
    let mut bought: BTreeMap<uuid::Uuid, i64> = BTreeMap::new();
    for l in d.lines() {
        if let Some(c) = l.category {
            *bought.entry(*c.as_uuid()).or_default() += l.quantity_units;
        }
    }
    for (item, q) in bought.into_iter().filter(|(_, q)| *q != 0) {
        out.push((
            BOUGHT_UPSERT,
            vec![
                tenant.clone(),
                Param::I16(1),
                Param::Uuid(item),
                Param::I64(month),
                partner.clone(),
                Param::I64(q),
            ],
        ));
    }
    Ok(out)
}

/// The queries whose rows make a tenant's recording digest (`$1` the tenant): its documents' every column but their
/// ids and JSON (whose times are each side's clock), its lines' every column with their document's number for its
/// id, its events by kind and the roll-ups, ids as 32 hex digits on both backends (so the
/// smoke test can compare SQLite's digest with PostgreSQL's).
pub fn digest_queries(pg: bool) -> [&'static str; 7] {
    if pg {
        [
            "SELECT kind || ' ' || number || ' ' || replace(partner::text, '-', '') || ' ' || issue_day || ' ' || \
             COALESCE(due_day::text, '-') || ' ' || currency || ' ' || total_units || ' ' || reporting || ' ' || \
             revenue_units || ' ' || cost_units || ' ' || COALESCE(replace(campaign::text, '-', ''), '-') || ' ' || \
             COALESCE(corrects, '-') || ' ' || COALESCE(direction::text, '-') || ' ' || COALESCE(grp, '-') || ' ' || \
             COALESCE(industry, '-') || ' ' || COALESCE(replace(owner::text, '-', ''), '-') || ' ' || \
             COALESCE(country, '-') || ' ' || COALESCE(region, '-') || ' ' || COALESCE(city, '-') || ' ' || version \
             FROM documents WHERE tenant = $1",
            "SELECT d.kind || ' ' || d.number || ' ' || l.n || ' ' || replace(l.partner::text, '-', '') || ' ' || \
             l.kind || ' ' || l.issue_day || ' ' || replace(l.product::text, '-', '') || ' ' || \
             COALESCE(replace(l.category::text, '-', ''), '-') || ' ' || l.quantity_units || ' ' || \
             l.revenue_units || ' ' || l.cost_units || ' ' || l.quantity || ' ' || l.unit_price || ' ' || \
             l.discount_pct || ' ' || l.unit_cost || ' ' || l.net || ' ' || l.cost \
             FROM document_lines l JOIN documents d ON d.tenant = l.tenant AND d.id = l.document WHERE l.tenant = $1",
            "SELECT kind || ' ' || count(*) FROM events WHERE tenant = $1 GROUP BY kind",
            "SELECT dim || ' ' || month || ' ' || (CASE WHEN key ~ '^[0-9a-f]{8}-[0-9a-f]{4}-' \
             THEN replace(key, '-', '') ELSE key END) || ' ' || revenue_units || ' ' || cost_units || ' ' || \
             invoices || ' ' || documents FROM sales_months WHERE tenant = $1 AND documents <> 0",
            "SELECT 'b ' || kind || ' ' || replace(item::text, '-', '') || ' ' || month || ' ' || \
             replace(partner::text, '-', '') || ' ' || quantity_units \
             FROM bought_months WHERE tenant = $1 AND quantity_units <> 0 UNION ALL \
             SELECT 'l ' || replace(partner::text, '-', '') || ' ' || last_sale FROM partner_last_sales \
             WHERE tenant = $1",
            "SELECT dim || ' ' || day || ' ' || (CASE WHEN key ~ '^[0-9a-f]{8}-[0-9a-f]{4}-' \
             THEN replace(key, '-', '') ELSE key END) || ' ' || revenue_units || ' ' || cost_units || ' ' || \
             invoices || ' ' || documents FROM sales_days WHERE tenant = $1 AND documents <> 0 UNION ALL \
             SELECT 'y ' || year || ' ' || replace(key, '-', '') || ' ' || revenue_units || ' ' || cost_units \
             || ' ' || invoices || ' ' || documents FROM sales_years WHERE tenant = $1 AND documents <> 0",
            "SELECT 'c ' || grain || ' ' || idx || ' ' || replace(campaign::text, '-', '') || ' ' || \
             replace(partner::text, '-', '') || ' ' || revenue_units FROM campaign_customers \
             WHERE tenant = $1 AND revenue_units <> 0 UNION ALL \
             SELECT 'r ' || grain || ' ' || idx || ' ' || replace(campaign::text, '-', '') || ' ' || customers \
             FROM campaign_reach WHERE tenant = $1 AND customers <> 0",
        ]
    } else {
        [
            "SELECT kind || ' ' || number || ' ' || lower(hex(partner)) || ' ' || issue_day || ' ' || \
             COALESCE(due_day, '-') || ' ' || currency || ' ' || total_units || ' ' || reporting || ' ' || \
             revenue_units || ' ' || cost_units || ' ' || CASE WHEN campaign IS NULL THEN '-' ELSE lower(hex(campaign)) END || ' ' || \
             COALESCE(corrects, '-') || ' ' || COALESCE(direction, '-') || ' ' || COALESCE(grp, '-') || ' ' || \
             COALESCE(industry, '-') || ' ' || CASE WHEN owner IS NULL THEN '-' ELSE lower(hex(owner)) END || ' ' || \
             COALESCE(country, '-') || ' ' || COALESCE(region, '-') || ' ' || COALESCE(city, '-') || ' ' || version \
             FROM documents WHERE tenant = ?1",
            "SELECT d.kind || ' ' || d.number || ' ' || l.n || ' ' || lower(hex(l.partner)) || ' ' || l.kind || ' ' || \
             l.issue_day || ' ' || lower(hex(l.product)) || ' ' || CASE WHEN l.category IS NULL THEN '-' ELSE lower(hex(l.category)) END || ' ' || \
             l.quantity_units || ' ' || l.revenue_units || ' ' || l.cost_units || ' ' || l.quantity || ' ' || \
             l.unit_price || ' ' || l.discount_pct || ' ' || l.unit_cost || ' ' || l.net || ' ' || l.cost \
             FROM document_lines l JOIN documents d ON d.tenant = l.tenant AND d.id = l.document WHERE l.tenant = ?1",
            "SELECT kind || ' ' || count(*) FROM events WHERE tenant = ?1 GROUP BY kind",
            "SELECT dim || ' ' || month || ' ' || (CASE WHEN typeof(key) = 'blob' THEN lower(hex(key)) ELSE key END) \
             || ' ' || revenue_units || ' ' || cost_units || ' ' || invoices || ' ' || documents \
             FROM sales_months WHERE tenant = ?1 AND documents <> 0",
            "SELECT 'b ' || kind || ' ' || lower(hex(item)) || ' ' || month || ' ' || lower(hex(partner)) || ' ' || \
             quantity_units FROM bought_months WHERE tenant = ?1 AND quantity_units <> 0 UNION ALL \
             SELECT 'l ' || lower(hex(partner)) || ' ' || last_sale FROM partner_last_sales WHERE tenant = ?1",
            "SELECT dim || ' ' || day || ' ' || (CASE WHEN typeof(key) = 'blob' THEN lower(hex(key)) ELSE key END) \
             || ' ' || revenue_units || ' ' || cost_units || ' ' || invoices || ' ' || documents \
             FROM sales_days WHERE tenant = ?1 AND documents <> 0 UNION ALL \
             SELECT 'y ' || year || ' ' || lower(hex(key)) || ' ' || revenue_units || ' ' || cost_units || ' ' \
             || invoices || ' ' || documents FROM sales_years WHERE tenant = ?1 AND documents <> 0",
            "SELECT 'c ' || grain || ' ' || idx || ' ' || lower(hex(campaign)) || ' ' || lower(hex(partner)) || ' ' || \
             revenue_units FROM campaign_customers WHERE tenant = ?1 AND revenue_units <> 0 UNION ALL \
             SELECT 'r ' || grain || ' ' || idx || ' ' || lower(hex(campaign)) || ' ' || customers \
             FROM campaign_reach WHERE tenant = ?1 AND customers <> 0",
        ]
    }
}

/// A `$n` text as SQLite's `?n`.
pub fn sqlite_text(text: &str) -> String {
    text.replace('$', "?")
}
