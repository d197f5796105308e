//! A segment's criteria tree as one statement, set-based: each per-partner aggregate the tree asks about is computed
//! once for all partners by a grouped scan (a CTE) of the roll-ups (`crate::rollup`: the last sales, the customer
//! months, the bought months) and of the documents or lines of a period's partial months at its edges, and the
//! partners are joined to those.
//!
//! At 1M customers the earlier per-partner correlated subqueries cost 4.8× the hand-written grouped query; the
//! grouped scans cost about the same as it. What a match needs ([`Criteria::needs`], split per CTE) decides the join:
//! on SQLite the query is driven from the first CTE a match needs a row of, smallest first, the other CTEs are
//! left-joined to it and the partner is sought last (`CROSS JOIN` fixes the order, so only partners with activity
//! that every roll-up condition kept are looked at, in [`PARTNER_NAMES`] when nothing else of them is asked); on
//! PostgreSQL those CTEs are inner-joined and the planner chooses the order.

use crate::{Dialect, Param, Sql};
use chrono::NaiveDate;
use crm_core::commerce::{day_number, BoughtMode, Criteria, Item, LastSale, Needs};
use crm_core::id::TenantId;
use crm_core::money::Currency;

/// SQLite's narrow index of the partners' names and merge marks, `(tenant, id, merged_into, name)` (the SQLite
/// adapter's migration 27): a segment whose criteria read nothing else of a partner reads it instead of the
/// partner's row. A `WITHOUT ROWID` table's interior pages hold whole rows, and a partner's is about 850 bytes, so
/// at 1M partners a seek of the table descends nine levels of wide records (about 3 µs); the index's entries are
/// about 70 bytes.
pub const PARTNER_NAMES: &str = "partners_names";

/// The statement selecting `(id, name)` of the tenant's partners matching `criteria` on day `as_of` (volumes in
/// `reporting`), ordered by id. It checks the criteria first ([`Criteria::check`]), so no statement is ever built
/// from a tree that is too deep, too large or ill-formed.
///
/// # Errors
/// [`crm_core::Error::Invalid`] naming the path of the first bad part of the tree (e.g. `criteria.all[1].items`).
///
/// ```
/// use crm_core::commerce::{Criteria, LastSale};
/// use crm_storage_sql::{segment::segment_sql, Dialect};
/// let lapsed = Criteria::Not { not: Box::new(Criteria::LastSale { when: LastSale::WithinDays { days: 90 } }) };
/// let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
/// let eur = crm_core::money::Currency::parse("EUR").unwrap();
/// let sql = segment_sql(Dialect::Postgres, crm_core::id::TenantId::new(), &lapsed, day, eur).unwrap();
/// assert!(sql.text.contains("FROM partner_last_sales"));
/// assert_eq!(sql.params.len(), 2);
/// ```
pub fn segment_sql(
    dialect: Dialect,
    tenant: TenantId,
    criteria: &Criteria,
    as_of: NaiveDate,
    reporting: Currency,
) -> crm_core::Result<Sql> {
    criteria.check()?;
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let mut plan = Plan::default();
    let cond = condition(criteria, as_of, reporting, &t, &mut sql, &mut plan);
    sql.text = plan.statement(dialect, &t, &cond, &criteria.needs());
    Ok(sql)
}

/// The CTEs a tree needs, each one row per partner.
///
/// - `v<n>`: per sales-volume criterion (numbered in the tree's order, depth first), the partners' net revenue `v`
///   in its period: the whole months from the customer roll-up, the partial months at its edges from the documents;
/// - `b<n>`: per bought item (product or category in a period, numbered as [`Criteria::needs`] numbers them), the
///   partners' net quantity `q`: whole months from the bought roll-up, the edges from the lines;
/// - `l`: the partners' last sale day `last` (the last-sales roll-up, one row per partner with an invoice).
#[derive(Debug, Default)]
struct Plan {
    /// Whether a criterion reads the partner's own attributes (its group, roles, industry, locations, tags): its
    /// row, not only its name.
    reads_row: bool,
    uses_last: bool,
    volumes: Vec<String>,
    bought: Vec<String>,
}

impl Plan {
    fn statement(&self, dialect: Dialect, t: &str, cond: &str, needs: &Needs) -> String {
        // Smallest first: a volume's partners (sales in its period), a bought item's, then every partner with a
        // sale. SQLite is driven from the first one a match requires.
        let mut ctes = Vec::new();
        let mut aliases = Vec::new();
        for (i, body) in self.volumes.iter().enumerate() {
            ctes.push(format!("v{} AS ({body})", i + 1));
            aliases.push((format!("v{}", i + 1), needs.volumes.contains(&(i + 1))));
        }
        for (i, body) in self.bought.iter().enumerate() {
            ctes.push(format!("b{} AS ({body})", i + 1));
            aliases.push((format!("b{}", i + 1), needs.bought.contains(&(i + 1))));
        }
        if self.uses_last {
            ctes.push(format!(
                "l AS (SELECT partner, last_sale AS last FROM {} WHERE tenant = {t})",
                crate::rollup::LAST_SALES
            ));
            aliases.push(("l".to_string(), needs.last_sale));
        }
        let from = match dialect {
            Dialect::Sqlite => {
                // Only the name and the merge mark: SQLite's planner takes the table's key for `(tenant, id)` unless
                // told, though the narrow index answers alone.
                let partners = if self.reads_row {
                    "partners p".to_string()
                } else {
                    format!("partners p INDEXED BY {PARTNER_NAMES}")
                };
                let driver = aliases.iter().find(|(_, needed)| *needed).map(|(a, _)| a);
                // The partner is joined last: its row is wide (a seek costs several times a roll-up's), so it is
                // sought only for the candidates every roll-up condition kept.
                let key = driver.map_or_else(|| "p.id".to_string(), |d| format!("{d}.partner"));
                let mut from = driver.cloned().unwrap_or_else(|| partners.clone());
                for (a, _) in aliases.iter().filter(|(a, _)| Some(a) != driver) {
                    from.push_str(&format!(" LEFT JOIN {a} ON {a}.partner = {key}"));
                }
                if let Some(d) = driver {
                    from.push_str(&format!(
                        " CROSS JOIN {partners} ON p.tenant = {t} AND p.id = {d}.partner"
                    ));
                }
                from
            }
            Dialect::Postgres => {
                let mut from = "partners p".to_string();
                for (a, needed) in &aliases {
                    let join = if *needed { "JOIN" } else { "LEFT JOIN" };
                    from.push_str(&format!(" {join} {a} ON {a}.partner = p.id"));
                }
                from
            }
        };
        let with = if ctes.is_empty() {
            String::new()
        } else {
            format!("WITH {} ", ctes.join(", "))
        };
        format!(
            "{with}SELECT p.id, p.name FROM {from} WHERE p.tenant = {t} AND p.merged_into IS NULL AND {cond} \
             ORDER BY p.id"
        )
    }
}

/// `(partner, q)`: each partner's net quantity `q` of `item` over `period` (its partners with any). A category's
/// whole months come from the bought roll-up and its edges from the lines of those days' documents; a product's
/// whole period from its lines (their index by product: the roll-up keeps no products, see
/// [`crate::rollup::BOUGHT`]).
pub(crate) fn bought_rows(
    sql: &mut Sql,
    t: &str,
    item: &Item,
    period: crm_core::commerce::Period,
) -> String {
    let (id, (months, edges)) = match item {
        Item::Product(x) => (*x.as_uuid(), (None, vec![(period.from(), period.to())])),
        Item::Category(x) => (*x.as_uuid(), crate::rollup::split(period)),
    };
    let i = sql.bind(id);
    let mut branches = Vec::new();
    if let Some((m1, m2)) = months {
        let (a, b) = (sql.bind(m1), sql.bind(m2));
        branches.push(format!(
            "SELECT partner, quantity_units AS q FROM {} WHERE tenant = {t} AND kind = 1 \
             AND item = {i} AND month BETWEEN {a} AND {b}",
            crate::rollup::BOUGHT
        ));
    }
    for (from, to) in edges {
        let f = sql.bind(Param::Day(day_number(from)));
        let to = sql.bind(Param::Day(day_number(to)));
        branches.push(match item {
            Item::Product(_) => format!(
                "SELECT l.partner AS partner, l.quantity_units AS q FROM document_lines l \
                 WHERE l.tenant = {t} AND l.product = {i} AND l.issue_day BETWEEN {f} AND {to}"
            ),
            // A category's partial months: the sales documents of those days (`documents_day`), their lines by
            // key. The lines keep no index by category (the bought roll-up answers the whole months).
            Item::Category(_) => format!(
                "SELECT l.partner AS partner, l.quantity_units AS q FROM documents d \
                 JOIN document_lines l ON l.tenant = d.tenant AND l.document = d.id \
                 WHERE d.tenant = {t} AND d.issue_day BETWEEN {f} AND {to} AND d.kind IN (0, 1) \
                 AND l.category = {i}"
            ),
        });
    }
    format!(
        "SELECT partner, sum(q) AS q FROM ({}) AS x GROUP BY partner",
        branches.join(" UNION ALL ")
    )
}

/// The customers' net sales over `period` in `reporting` (placeholder `r`), one row `(partner, v, c)` (revenue
/// and cost units) per customer with any: the roll-ups' whole months and the edges' documents, as profitability
/// by customer reads them.
pub(crate) fn customer_sales(
    sql: &mut Sql,
    t: &str,
    r: &str,
    period: crm_core::commerce::Period,
) -> String {
    let rows = crate::rollup::sales_rows(
        sql,
        crate::rollup::SalesRows {
            tenant: t,
            reporting: r,
            group_by: crm_core::commerce::GroupBy::Customer,
            bucket: None,
            key: None,
            period,
        },
    );
    // The key is the partner (PostgreSQL keys ids as text).
    let partner = match sql.dialect {
        Dialect::Sqlite => "rk",
        Dialect::Postgres => "CAST(rk AS uuid)",
    };
    format!("SELECT {partner} AS partner, sum(rrev) AS v, sum(rcost) AS c FROM ({rows}) AS u GROUP BY rk")
}

/// A partner's group, as the partners table keeps it.
fn partner_group(dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => "p.grp".to_string(),
        Dialect::Postgres => dialect.text(&dialect.json_text("p.doc", &["group"])),
    }
}

/// A 64-bit parameter compared with a sum (PostgreSQL sums bigints as numeric: say what the parameter is).
fn bigint(dialect: Dialect, placeholder: String) -> String {
    match dialect {
        Dialect::Sqlite => placeholder,
        Dialect::Postgres => format!("{placeholder}::bigint"),
    }
}

/// The WHERE clause of a tree over `partners p` and the plan's CTEs; every leaf is written so that it is never NULL,
/// so `NOT` keeps two-valued logic, as the reference evaluator has.
fn condition(
    c: &Criteria,
    as_of: NaiveDate,
    reporting: Currency,
    t: &str,
    sql: &mut Sql,
    plan: &mut Plan,
) -> String {
    let d = sql.dialect;
    let no = d.false_lit();
    match c {
        Criteria::LastSale { when } => {
            plan.uses_last = true;
            match when {
                LastSale::Never => "(l.last IS NULL)".to_string(),
                LastSale::Before { date } => {
                    format!(
                        "COALESCE(l.last < {}, {no})",
                        sql.bind(Param::Day(day_number(*date)))
                    )
                }
                LastSale::After { date } => {
                    format!(
                        "COALESCE(l.last > {}, {no})",
                        sql.bind(Param::Day(day_number(*date)))
                    )
                }
                LastSale::WithinDays { days } => {
                    let since = (day_number(as_of) as i64 - *days as i64)
                        .clamp(i32::MIN as i64, i32::MAX as i64)
                        as i32;
                    format!("COALESCE(l.last >= {}, {no})", sql.bind(Param::Day(since)))
                }
            }
        }
        Criteria::SalesVolume {
            period,
            cmp,
            amount,
        } => {
            let n = plan.volumes.len() + 1;
            let r = sql.bind(reporting.code());
            plan.volumes.push(customer_sales(sql, t, &r, *period));
            let a = bigint(d, sql.bind(amount.to_units()));
            format!("(COALESCE(v{n}.v, 0) {} {a})", cmp.sql())
        }
        Criteria::Bought {
            mode,
            items,
            period,
        } => {
            let parts: Vec<String> = items
                .iter()
                .map(|it| {
                    plan.bought.push(bought_rows(sql, t, it, *period));
                    format!("(COALESCE(b{}.q, 0) > 0)", plan.bought.len())
                })
                .collect();
            match mode {
                BoughtMode::Any => format!("({})", parts.join(" OR ")),
                BoughtMode::All => format!("({})", parts.join(" AND ")),
                BoughtMode::None => format!("(NOT ({}))", parts.join(" OR ")),
            }
        }
        Criteria::Group { name } => {
            plan.reads_row = true;
            let g = partner_group(d);
            format!("COALESCE({g} = {}, {no})", sql.bind(name.as_str()))
        }
        Criteria::Role { role } => {
            plan.reads_row = true;
            let r = serde_json::to_value(role)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let v = sql.bind(r);
            d.json_array_has_text("p.doc", "roles", &v)
        }
        Criteria::Industry { name } => {
            plan.reads_row = true;
            let n = sql.bind(name.as_str());
            let by_name = d.text(&d.json_text("p.doc", &["industry", "name"]));
            let by_code = d.text(&d.json_text("p.doc", &["industry", "code"]));
            format!("COALESCE({by_name} = {n} OR {by_code} = {n}, {no})")
        }
        Criteria::Location {
            country,
            region,
            city,
        } => {
            plan.reads_row = true;
            let mut conds = vec![d.true_lit().to_string()];
            for (field, v) in [("country", country), ("region", region), ("city", city)] {
                if let Some(v) = v {
                    let p = sql.bind(v.as_str());
                    conds.push(format!("{} = {p}", d.json_element_text(field)));
                }
            }
            d.json_array_any("p.doc", "locations", &conds.join(" AND "))
        }
        Criteria::Tag { tag } => {
            plan.reads_row = true;
            let v = sql.bind(tag.as_str());
            d.json_array_has_text("p.doc", "tags", &v)
        }
        Criteria::And { all: parts } | Criteria::Or { any: parts } => {
            let op = if matches!(c, Criteria::And { .. }) {
                " AND "
            } else {
                " OR "
            };
            let conds: Vec<String> = parts
                .iter()
                .map(|c| condition(c, as_of, reporting, t, sql, plan))
                .collect();
            format!("({})", conds.join(op))
        }
        Criteria::Not { not } => {
            format!("(NOT {})", condition(not, as_of, reporting, t, sql, plan))
        }
    }
}
