//! The DDL both adapters migrate with, generated from one description per table: the written columns of a
//! [`Table`] (their [`Kind`] typed by [`Dialect::column_type`]), which of them may be NULL, the keys and the
//! indexes. SQLite keys its tables on their primary key (`WITHOUT ROWID`); where the dialects' indexes differ (SQLite
//! covers the reports' columns, since a row lookup there reads the wide JSON), the description says so.

use crate::commerce::{
    ALLOCATIONS, CAMPAIGNS, CAMPAIGN_COSTS, CAMPAIGN_TARGETS, CATEGORIES, DOCUMENTS,
    DOCUMENT_LINES, PRODUCTS, RATES,
};
use crate::{Dialect, Kind, Table};

impl Dialect {
    /// The column type a [`Kind`] is stored as.
    pub fn column_type(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Self::Sqlite, Kind::Uuid) => "BLOB",
            (Self::Sqlite, Kind::Text | Kind::Ccy | Kind::Json) => "TEXT",
            (Self::Sqlite, Kind::Numeric) => "NUMERIC",
            (Self::Sqlite, _) => "INTEGER",
            (Self::Postgres, Kind::Uuid) => "uuid",
            (Self::Postgres, Kind::Text) => "text",
            (Self::Postgres, Kind::Ccy) => "char(3)",
            (Self::Postgres, Kind::I16) => "smallint",
            (Self::Postgres, Kind::I32) => "integer",
            (Self::Postgres, Kind::I64) => "bigint",
            (Self::Postgres, Kind::Bool) => "boolean",
            (Self::Postgres, Kind::Numeric) => "numeric",
            (Self::Postgres, Kind::Json) => "jsonb",
        }
    }
}

/// `CREATE TABLE` of `columns` (all `NOT NULL` but the `nullable` ones) with its `keys` (primary key, unique and
/// foreign-key constraints).
pub fn create_table(
    dialect: Dialect,
    name: &str,
    columns: &[(&str, Kind)],
    nullable: &[&str],
    keys: &[&str],
) -> String {
    let width = columns.iter().map(|c| c.0.len()).max().unwrap_or(0);
    let mut lines: Vec<String> = columns
        .iter()
        .map(|(c, k)| {
            let null = if nullable.contains(c) {
                ""
            } else {
                " NOT NULL"
            };
            format!("    {c:width$} {}{null}", dialect.column_type(*k))
        })
        .collect();
    lines.extend(keys.iter().map(|k| format!("    {k}")));
    let rowid = match dialect {
        Dialect::Sqlite => " WITHOUT ROWID",
        Dialect::Postgres => "",
    };
    format!("CREATE TABLE {name} (\n{}\n){rowid};\n", lines.join(",\n"))
}

fn table(dialect: Dialect, t: &Table, nullable: &[&str], keys: &[&str]) -> String {
    create_table(dialect, t.name, t.columns, nullable, keys)
}

/// Migration 2, commerce: products, documents with their lines and allocations, exchange rates, campaigns, cost
/// entries and targets.
///
/// Money is 64-bit integer 10^-4 units (`crm_core::money::Money::to_units`, never REAL), already converted into the
/// reporting currency when a document is recorded, so every report is a GROUP BY over integers and equals the
/// reference calculation exactly. Days are integer day numbers (`crm_core::commerce::day_number`); the bucket
/// indexes (month, quarter, year) are stored so GROUP BY needs no date arithmetic. Documents carry the partner's
/// reporting attributes at issue time (group, industry, owner, location), so profitability groups without a join.
/// The tenant leads every key and no foreign key crosses tenants. On PostgreSQL this migration also adds the index
/// of the campaign report's lead count (SQLite's is migration 4).
pub fn commerce(dialect: Dialect) -> String {
    let sqlite = dialect == Dialect::Sqlite;
    // SQLite's covering indexes: a report never visits the wide `documents` rows. Profitability scans
    // `documents_sales` by period and groups on any of its columns; segments probe `documents_partner` per partner;
    // the campaign report reads `documents_campaign`.
    let (sales, partner, campaign) = if sqlite {
        (
            ", grp, industry, owner, country, region, city, campaign, month_idx, quarter_idx, year_idx",
            ", reporting, revenue_units",
            ", kind, reporting, partner, revenue_units, cost_units",
        )
    } else {
        ("", "", "")
    };
    let mut ddl = [
        table(dialect, &CATEGORIES, &[], &["PRIMARY KEY (tenant, id)", "UNIQUE (tenant, code)"]),
        table(
            dialect,
            &PRODUCTS,
            &["category"],
            &[
                "PRIMARY KEY (tenant, id)",
                "UNIQUE (tenant, code)",
                "FOREIGN KEY (tenant, category) REFERENCES product_categories (tenant, id)",
            ],
        ),
        table(dialect, &RATES, &[], &["PRIMARY KEY (tenant, from_ccy, to_ccy, day)"]),
        table(dialect, &CAMPAIGNS, &[], &["PRIMARY KEY (tenant, id)"]),
        table(
            dialect,
            &DOCUMENTS,
            &[
                "due_day", "campaign", "corrects", "direction", "grp", "industry", "owner", "country",
                "region", "city",
            ],
            &[
                "PRIMARY KEY (tenant, id)",
                "UNIQUE (tenant, kind, number)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
                "FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)",
            ],
        ),
        format!(
            "CREATE INDEX documents_sales ON documents (tenant, reporting, issue_day, kind, partner, revenue_units, \
             cost_units{sales});\n\
             CREATE INDEX documents_partner ON documents (tenant, partner, kind, issue_day{partner});\n\
             CREATE INDEX documents_campaign ON documents (tenant, campaign, issue_day{campaign}) \
             WHERE campaign IS NOT NULL;\n\
             CREATE INDEX documents_corrects ON documents (tenant, partner, corrects) WHERE corrects IS NOT NULL;\n"
        ),
        table(
            dialect,
            &DOCUMENT_LINES,
            &["category"],
            &[
                "PRIMARY KEY (tenant, document, n)",
                "FOREIGN KEY (tenant, document) REFERENCES documents (tenant, id)",
                "FOREIGN KEY (tenant, product) REFERENCES products (tenant, id)",
            ],
        ),
        "CREATE INDEX document_lines_product ON document_lines (tenant, product, partner, issue_day, quantity_units);\n\
         CREATE INDEX document_lines_category ON document_lines (tenant, category, partner, issue_day, quantity_units) \
         WHERE category IS NOT NULL;\n"
            .to_string(),
        table(
            dialect,
            &ALLOCATIONS,
            &[],
            &[
                "PRIMARY KEY (tenant, document, n)",
                "FOREIGN KEY (tenant, document) REFERENCES documents (tenant, id)",
            ],
        ),
        "CREATE INDEX allocations_target ON allocations (tenant, partner, target_kind, target_number);\n".to_string(),
        table(
            dialect,
            &CAMPAIGN_COSTS,
            &[],
            &[
                "PRIMARY KEY (tenant, id)",
                "FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)",
            ],
        ),
        "CREATE INDEX campaign_costs_campaign ON campaign_costs (tenant, campaign, day);\n".to_string(),
        table(
            dialect,
            &CAMPAIGN_TARGETS,
            &["agent", "request", "outcome", "outcome_at", "reached_at"],
            &[
                "PRIMARY KEY (tenant, campaign, partner)",
                "FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
            ],
        ),
        "CREATE UNIQUE INDEX campaign_targets_request ON campaign_targets (tenant, request) \
         WHERE request IS NOT NULL;\n"
            .to_string(),
    ]
    .join("\n");
    if !sqlite {
        ddl.push_str(
            "\nCREATE INDEX leads_by_campaign ON leads (tenant, ((doc -> 'source' ->> 'campaign')), created_us)\n    \
             WHERE doc -> 'source' ->> 'campaign' IS NOT NULL;\n",
        );
    }
    ddl
}

/// Migration 3, the transactional outbox and the in-app inboxes (`crm_core::outbox`).
///
/// A message's immutable part is in `doc`; its delivery state lives in columns (status 0 pending, 1 delivered,
/// 2 dead) so that claims and outcomes are single UPDATEs. The idempotency key is unique per tenant. Times are
/// microseconds (columns named by [`Dialect::col`]).
pub fn outbox(dialect: Dialect) -> String {
    let c = |fact| dialect.col(fact);
    let (next, created, delivered, read, user) = (
        c("next_attempt"),
        c("created"),
        c("delivered"),
        c("read"),
        c("user"),
    );
    let desc = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " DESC",
    };
    [
        create_table(
            dialect,
            "outbox",
            &[
                ("tenant", Kind::Uuid),
                ("id", Kind::Uuid),
                ("idempotency_key", Kind::Text),
                ("status", Kind::I16),
                ("attempts", Kind::I32),
                (&next, Kind::I64),
                ("last_error", Kind::Text),
                (&created, Kind::I64),
                (&delivered, Kind::I64),
                ("doc", Kind::Json),
            ],
            &["last_error", &delivered],
            &[
                "PRIMARY KEY (tenant, id)",
                "UNIQUE (tenant, idempotency_key)",
            ],
        ),
        format!(
            "CREATE INDEX outbox_due ON outbox ({next}, id) WHERE status = 0;\n\
             CREATE INDEX outbox_by_status ON outbox (tenant, status, {created}, id);\n"
        ),
        create_table(
            dialect,
            "inbox",
            &[
                ("tenant", Kind::Uuid),
                ("id", Kind::Uuid),
                (&user, Kind::Uuid),
                ("message", Kind::Uuid),
                (&created, Kind::I64),
                (&read, Kind::I64),
                ("doc", Kind::Json),
            ],
            &[&read],
            &["PRIMARY KEY (tenant, id)", "UNIQUE (tenant, message)"],
        ),
        format!(
            "CREATE INDEX inbox_by_user ON inbox (tenant, {user}, {created}{desc}, id{desc});\n\
             CREATE INDEX inbox_unread ON inbox (tenant, {user}) WHERE {read} IS NULL;\n"
        ),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_typed_per_dialect() {
        let t = create_table(
            Dialect::Sqlite,
            "t",
            &[("tenant", Kind::Uuid), ("note", Kind::Text)],
            &["note"],
            &["PRIMARY KEY (tenant)"],
        );
        assert_eq!(
            t,
            "CREATE TABLE t (\n    tenant BLOB NOT NULL,\n    note   TEXT,\n    PRIMARY KEY (tenant)\n) WITHOUT ROWID;\n"
        );
        assert!(outbox(Dialect::Postgres).contains("usr        uuid NOT NULL"));
        assert!(commerce(Dialect::Postgres).contains("currency      char(3) NOT NULL"));
    }
}
