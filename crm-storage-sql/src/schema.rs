//! The DDL both adapters migrate with (all but SQLite's single-dialect migration 4), generated from one description
//! per table: the written columns of a
//! [`Table`] (their [`Kind`] typed by [`Dialect::column_type`]), which of them may be NULL, the keys and the
//! indexes. SQLite keys its tables on their primary key (`WITHOUT ROWID`; the SQLite adapter's migration 26 rebuilds
//! the wide `leads` and `pipelines` keyed by rowid); where the dialects' indexes differ (SQLite
//! covers the reports' columns, since a row lookup there reads the wide JSON), the description says so.

use crate::commerce::{
    ALLOCATIONS, ATTACHMENTS, CAMPAIGNS, CAMPAIGN_COSTS, CATEGORIES, CONTRACTS, DOCUMENTS,
    MEETINGS, MEETING_PEOPLE, PAYMENT_ATTEMPTS, PRODUCTS, QUOTATIONS, RATES, REPRESENTATIVES,
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
    let typed: Vec<(&str, String)> = columns
        .iter()
        .map(|(c, k)| {
            let null = if nullable.contains(c) {
                ""
            } else {
                " NOT NULL"
            };
            (*c, format!("{}{null}", dialect.column_type(*k)))
        })
        .collect();
    create_typed(dialect, name, &typed, keys, true)
}

/// `CREATE TABLE` of columns whose type (and constraints) are spelled out, with its `keys`; `keyed` says whether
/// the table is keyed on its primary key on SQLite (`WITHOUT ROWID`: not for an `AUTOINCREMENT` journal).
fn create_typed(
    dialect: Dialect,
    name: &str,
    columns: &[(&str, String)],
    keys: &[&str],
    keyed: bool,
) -> String {
    let width = columns.iter().map(|c| c.0.len()).max().unwrap_or(0);
    let mut lines: Vec<String> = columns
        .iter()
        .map(|(c, ty)| format!("    {c:width$} {ty}"))
        .collect();
    lines.extend(keys.iter().map(|k| format!("    {k}")));
    let rowid = match dialect {
        Dialect::Sqlite if keyed => " WITHOUT ROWID",
        _ => "",
    };
    format!("CREATE TABLE {name} (\n{}\n){rowid};\n", lines.join(",\n"))
}

/// A column of [`init`]: its name and `NOT NULL` type, or its nullable type, on `dialect`; `None` where the dialect's
/// schema has no such column.
type Col<'a> = Option<(&'a str, String)>;

fn req(dialect: Dialect, name: &str, kind: Kind) -> Col<'_> {
    Some((name, format!("{} NOT NULL", dialect.column_type(kind))))
}

fn opt(dialect: Dialect, name: &str, kind: Kind) -> Col<'_> {
    Some((name, dialect.column_type(kind).to_string()))
}

/// A column only PostgreSQL's (`pg`) or only SQLite's schema has.
fn only(dialect: Dialect, pg: bool, col: Col<'_>) -> Col<'_> {
    col.filter(|_| (dialect == Dialect::Postgres) == pg)
}

fn typed<'a>(
    dialect: Dialect,
    name: &str,
    columns: Vec<Col<'a>>,
    keys: &[&str],
    keyed: bool,
) -> String {
    let columns: Vec<(&str, String)> = columns.into_iter().flatten().collect();
    create_typed(dialect, name, &columns, keys, keyed)
}

/// Migration 1, the lead-management tables: partners and their duplicate keys, pipelines, lost reasons, leads and
/// their tags, requests, comments, the events (the activity log and the feed of `events_since`) and the stage
/// history.
///
/// Every record keeps its full serde JSON in `doc` (the source of truth when reading) plus the columns the queries
/// of the Store trait filter, sort and sum on. The tenant leads every primary key, every foreign key and every
/// index, and no foreign key crosses tenants: the PostgreSQL layout distributes by tenant (Citus) as it is. Times
/// are microseconds since the Unix epoch, the same integers the keyset cursors carry. The schemas differ where
/// each engine is served best: SQLite keeps a lead's expected revenue as 10^-4 units and its lower-cased title,
/// PostgreSQL an exact `numeric` and a search text with CHECKs; SQLite orders the journal by an `AUTOINCREMENT`
/// `seq`, PostgreSQL by a per-tenant `pos` handed out through `event_positions` (its row lock orders positions as
/// the transactions commit, so a reader of `events_since` never skips one).
pub fn init(dialect: Dialect) -> String {
    use Kind::*;
    let d = dialect;
    let pg = d == Dialect::Postgres;
    let created = d.col("created");
    let updated = d.col("updated");
    let id_keys = ["PRIMARY KEY (tenant, id)"];
    let serial = || Some(("seq", "bigserial NOT NULL".to_string()));
    let lead_fks = [
        "PRIMARY KEY (tenant, id)",
        "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
        "FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id)",
    ];
    let lead_keys: Vec<&str> = if pg {
        lead_fks
            .iter()
            .copied()
            .chain(["CHECK ((expected IS NULL) = (currency IS NULL))"])
            .collect()
    } else {
        lead_fks.to_vec()
    };
    // Lead indexes: one per sort order, plus the common narrowing filters with the default order; on SQLite the
    // board's sums are covered.
    let (by, stage) = if pg {
        ("leads_by_", "pipeline, stage, status")
    } else {
        ("leads_", "stage")
    };
    let mut lead_indexes = String::new();
    if !pg {
        lead_indexes.push_str(
            "CREATE INDEX leads_board ON leads (tenant, pipeline, status, stage, currency, probability, expected_units);\n",
        );
    }
    for (name, cols) in [
        ("created", format!("{created}, id")),
        ("updated", format!("{updated}, id")),
        ("revenue", "revenue_key, id".to_string()),
        ("owner", format!("owner, {created}, id")),
        ("partner", format!("partner, {created}, id")),
        ("stage", format!("{stage}, {created}, id")),
    ] {
        lead_indexes.push_str(&format!(
            "CREATE INDEX {by}{name} ON leads (tenant, {cols});\n"
        ));
    }
    let by = if pg { "_by" } else { "" };
    let (due, desc) = if pg {
        ("due_key, id", " DESC")
    } else {
        ("active, due_key, id", "")
    };
    let (at, journal) = if pg { ("at_us", "pos") } else { ("at", "seq") };
    let event_indexes: String = ["lead", "partner", "request"]
        .iter()
        .map(|c| {
            format!(
                "CREATE INDEX events{by}_{c} ON events (tenant, {c}, {at}{desc}, id{desc}) WHERE {c} IS NOT NULL;\n"
            )
        })
        .collect();
    let pg_only = |ddl: &str| if pg { ddl.to_string() } else { String::new() };
    let mut sql = vec![
        typed(
            d,
            "partners",
            vec![
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                req(d, "name", Text),
                // crm_core::store::partner_search_text: lower-cased name and contacts' e-mails, for the text filter.
                req(d, "search", Text),
                only(d, false, opt(d, "grp", Text)),
                only(d, false, opt(d, "owner", Uuid)),
                req(d, "version", I64),
                only(d, true, req(d, "created_us", I64)),
                only(d, true, req(d, "updated_us", I64)),
                req(d, "doc", Json),
            ],
            &id_keys,
            true,
        ),
        // Normalised duplicate-detection keys (`email:ana@firma.ro`).
        typed(
            d,
            "partner_keys",
            vec![
                req(d, "tenant", Uuid),
                req(d, "key", Text),
                req(d, "partner", Uuid),
            ],
            &[
                "PRIMARY KEY (tenant, key, partner)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
            ],
            true,
        ),
        "CREATE INDEX partner_keys_by_partner ON partner_keys (tenant, partner);\n".to_string(),
        typed(
            d,
            "pipelines",
            vec![
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                only(d, true, serial()),
                req(d, &created, I64),
                only(d, false, req(d, "version", I64)),
                req(d, "doc", Json),
            ],
            &id_keys,
            true,
        ),
        pg_only("CREATE INDEX pipelines_by_age ON pipelines (tenant, created_us, seq);\n"),
        typed(
            d,
            "lost_reasons",
            vec![
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                only(d, true, serial()),
                only(d, true, req(d, "name", Text)),
                req(d, "doc", Json),
            ],
            &id_keys,
            true,
        ),
        pg_only("CREATE INDEX lost_reasons_in_order ON lost_reasons (tenant, seq);\n"),
        typed(
            d,
            "leads",
            vec![
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                req(d, "partner", Uuid),
                req(d, "pipeline", Uuid),
                req(d, "stage", Uuid),
                // 0 open, 1 won, 2 lost (StatusKind::code).
                if pg {
                    Some((
                        "status",
                        "smallint NOT NULL CHECK (status BETWEEN 0 AND 2)".to_string(),
                    ))
                } else {
                    req(d, "status", I16)
                },
                opt(d, "owner", Uuid),
                // The lower-cased title, for the text filter.
                only(d, true, req(d, "search", Text)),
                only(d, true, Some(("expected", "numeric(20,4)".to_string()))),
                opt(d, "currency", Ccy),
                // Money::to_units() of the expected revenue (the board's sums on SQLite).
                only(d, false, opt(d, "expected_units", I64)),
                // The expected revenue's units, i64::MIN without one: the ExpectedRevenueDesc sort key.
                req(d, "revenue_key", I64),
                if pg {
                    Some((
                        "probability",
                        "smallint NOT NULL CHECK (probability BETWEEN 0 AND 100)".to_string(),
                    ))
                } else {
                    req(d, "probability", I16)
                },
                req(d, &created, I64),
                req(d, &updated, I64),
                only(d, false, req(d, "title_lc", Text)),
                req(d, "version", I64),
                req(d, "doc", Json),
            ],
            &lead_keys,
            true,
        ),
        lead_indexes,
        typed(
            d,
            "lead_tags",
            vec![
                req(d, "tenant", Uuid),
                req(d, "tag", Text),
                req(d, "lead", Uuid),
            ],
            &[
                "PRIMARY KEY (tenant, tag, lead)",
                "FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)",
            ],
            true,
        ),
        "CREATE INDEX lead_tags_by_lead ON lead_tags (tenant, lead);\n".to_string(),
        typed(
            d,
            "requests",
            vec![
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                opt(d, "lead", Uuid),
                opt(d, "partner", Uuid),
                req(d, "assignee", Uuid),
                // 0 open, 1 in progress, 2 done, 3 cancelled.
                only(d, true, req(d, "status", I16)),
                // Open or in progress.
                req(d, "active", Bool),
                // request_sort_key: the due time in microseconds, i64::MAX without one.
                req(d, "due_key", I64),
                only(d, true, req(d, "created_us", I64)),
                req(d, "version", I64),
                req(d, "doc", Json),
            ],
            &[
                "PRIMARY KEY (tenant, id)",
                "FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
            ],
            true,
        ),
        ["assignee", "lead", "partner"]
            .iter()
            .map(|c| {
                format!("CREATE INDEX requests{by}_{c} ON requests (tenant, {c}, due_key, id);\n")
            })
            .chain([format!(
                "CREATE INDEX requests{by}_due ON requests (tenant, {due});\n"
            )])
            .collect(),
        typed(
            d,
            "comments",
            vec![
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                // 0 lead, 1 partner, 2 request.
                only(d, true, req(d, "target_kind", I16)),
                // The lead, partner or request id.
                req(d, "target", Uuid),
                req(d, &created, I64),
                req(d, "doc", Json),
            ],
            &id_keys,
            true,
        ),
        if pg {
            "CREATE INDEX comments_by_target ON comments (tenant, target_kind, target, created_us DESC, id DESC);\n"
                .to_string()
        } else {
            "CREATE INDEX comments_target ON comments (tenant, target, created_at, id);\n"
                .to_string()
        },
        typed(
            d,
            "events",
            vec![
                only(
                    d,
                    false,
                    Some(("seq", "INTEGER PRIMARY KEY AUTOINCREMENT".to_string())),
                ),
                req(d, "tenant", Uuid),
                req(d, "id", Uuid),
                only(d, true, req(d, "pos", I64)),
                req(d, at, I64),
                opt(d, "lead", Uuid),
                opt(d, "partner", Uuid),
                opt(d, "request", Uuid),
                req(d, "kind", Text),
                req(d, "doc", Json),
            ],
            if pg {
                &["PRIMARY KEY (tenant, id)", "UNIQUE (tenant, pos)"]
            } else {
                &["UNIQUE (tenant, id)"]
            },
            false,
        ),
        event_indexes,
    ];
    if pg {
        sql.push(typed(
            d,
            "event_positions",
            vec![
                Some(("tenant", "uuid NOT NULL PRIMARY KEY".to_string())),
                req(d, "last", I64),
            ],
            &[],
            false,
        ));
    } else {
        sql.push(format!(
            "CREATE INDEX events_tenant_{journal} ON events (tenant, {journal});\n"
        ));
    }
    sql.push(typed(
        d,
        "stage_history",
        vec![
            only(
                d,
                false,
                Some(("seq", "INTEGER PRIMARY KEY AUTOINCREMENT".to_string())),
            ),
            req(d, "tenant", Uuid),
            req(d, "lead", Uuid),
            only(d, true, serial()),
            req(d, "pipeline", Uuid),
            only(d, true, opt(d, "from_stage", Uuid)),
            req(d, "to_stage", Uuid),
            req(d, "status", I16),
            req(d, at, I64),
            req(d, "doc", Json),
        ],
        if pg {
            &[
                "PRIMARY KEY (tenant, lead, seq)",
                "FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)",
            ]
        } else {
            &["FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)"]
        },
        pg,
    ));
    sql.push(if pg {
        "CREATE INDEX stage_history_by_pipeline ON stage_history (tenant, pipeline, to_stage, lead);\n".to_string()
    } else {
        "CREATE INDEX stage_history_lead ON stage_history (tenant, lead, seq);\n\
         CREATE INDEX stage_history_funnel ON stage_history (tenant, pipeline, to_stage, lead);\n"
            .to_string()
    });
    sql.retain(|s| !s.is_empty());
    sql.join("\n")
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
            &DOCUMENT_LINES_2,
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
            &CAMPAIGN_TARGETS_2,
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

/// `document_lines` as migration 2 created it (the lines' migration, [`lines_only`], adds the line's own figures).
const DOCUMENT_LINES_2: Table = crate::table!("document_lines" {
    tenant: Uuid, document: Uuid, n: I32, partner: Uuid, kind: I16, issue_day: I32, product: Uuid,
    category: Uuid, quantity_units: I64, revenue_units: I64, cost_units: I64
});

/// The lines' migration (SQLite's 20, PostgreSQL's 19): a document's lines are kept only in `document_lines`.
/// Until now the document's JSON carried every line again (its product and category as text, its figures and its
/// derived amounts), more than half of what a line cost on disk; the line's own figures
/// ([`crate::commerce::LINE_DECIMALS`], decimal text as the JSON held them) become columns, filled from the JSON,
/// and the JSON loses its `lines`. Reads put them back ([`crate::commerce::document_doc`]).
pub fn lines_only(dialect: Dialect) -> String {
    let decimals = crate::commerce::LINE_DECIMALS;
    let ty = dialect.column_type(Kind::Text);
    let mut sql: String = decimals
        .iter()
        .map(|c| format!("ALTER TABLE document_lines ADD COLUMN {c} {ty} NOT NULL DEFAULT '0';\n"))
        .collect();
    let set = |value: &dyn Fn(&str) -> String| -> String {
        decimals
            .iter()
            .map(|c| format!("{c} = {}", value(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match dialect {
        Dialect::Sqlite => sql.push_str(&format!(
            "UPDATE document_lines SET {} FROM documents d \
             WHERE d.tenant = document_lines.tenant AND d.id = document_lines.document;\n\
             UPDATE documents SET doc = json_remove(doc, '$.lines');\n",
            set(&|c| format!("json_extract(d.doc, '$.lines[' || document_lines.n || '].{c}')"))
        )),
        Dialect::Postgres => sql.push_str(&format!(
            "UPDATE document_lines l SET {} FROM documents d WHERE d.tenant = l.tenant AND d.id = l.document;\n\
             UPDATE documents SET doc = doc - 'lines' WHERE doc ? 'lines';\n",
            set(&|c| format!("d.doc -> 'lines' -> l.n ->> '{c}'"))
        )),
    }
    sql
}

/// The documents' columns-only migration (SQLite's 29, PostgreSQL's 26): a document's stored JSON loses the fields
/// the `documents` row keeps as columns ([`crate::commerce::DOCUMENT_COLUMN_FIELDS`]: its ids, kind, number, dates,
/// currency, campaign, correction, direction, reporting sums, the partner's attributes and the version). They were
/// about four fifths of its `doc` (some 520 of 660 bytes at the benchmark's sizes). Reads put them back from the
/// columns ([`crate::commerce::document_doc`]).
pub fn documents_columns_only(dialect: Dialect) -> String {
    let fields = crate::commerce::DOCUMENT_COLUMN_FIELDS;
    match dialect {
        Dialect::Sqlite => {
            let paths: Vec<String> = fields.iter().map(|f| format!("'$.{f}'")).collect();
            format!(
                "UPDATE documents SET doc = json_remove(doc, {});\n",
                paths.join(", ")
            )
        }
        Dialect::Postgres => {
            let keys: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
            let keys = keys.join(", ");
            format!("UPDATE documents SET doc = doc - ARRAY[{keys}] WHERE doc ?| ARRAY[{keys}];\n")
        }
    }
}

/// The lines' category index dropped (SQLite's 31, PostgreSQL's 28). `document_lines_category` (a line's tenant,
/// category, partner, day and quantity: about 80 bytes a line, an eighth of what a line cost) served only the
/// partial months of "bought a category", whose whole months the bought roll-up answers. Those partial months now
/// read the sales documents of their days by a narrow index, `documents_day` (tenant, day, kind: under 50 bytes a
/// document, seven lines on average), and their lines by key. An index a bulk load had put aside is forgotten too.
pub fn lines_without_category_index() -> String {
    format!(
        "DROP INDEX IF EXISTS document_lines_category;\n\
         DELETE FROM {} WHERE name = 'document_lines_category';\n\
         CREATE INDEX IF NOT EXISTS documents_day ON documents (tenant, issue_day, kind);\n",
        crate::bulk::DEFERRED
    )
}

/// `campaign_targets` as migration 2 created it (the holdouts' migration adds `holdout`).
const CAMPAIGN_TARGETS_2: Table = crate::table!("campaign_targets" {
    tenant: Uuid, campaign: Uuid, partner: Uuid, agent: Uuid, request: Uuid, outcome: I16, outcome_at: I64,
    reached_at: I64, version: I64, doc: Json
});

/// The holdouts' migration (SQLite's 18, PostgreSQL's 17): a campaign target's `holdout` flag (1 for a partner
/// drawn into the campaign's holdout at launch, [`crm_core::commerce::Holdout`]); the reports of a campaign's
/// progress and calls count the others, its uplift groups by it.
pub fn holdouts(dialect: Dialect) -> String {
    format!(
        "ALTER TABLE campaign_targets ADD COLUMN holdout {} NOT NULL DEFAULT 0;\n",
        dialect.column_type(Kind::I16)
    )
}

/// The `ScoreDesc` sort key of a lead's document `doc` (`l.doc` in a query): its score's value, -1 without one, as
/// [`crm_core::store::LeadSort::key`] computes it. The `leads_by_score` index holds exactly this expression.
pub fn lead_score_key(dialect: Dialect, doc: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("coalesce(json_extract({doc}, '$.score.value'), -1)"),
        Dialect::Postgres => format!("coalesce((({doc} -> 'score') ->> 'value')::bigint, -1)"),
    }
}

/// The lead-scores migration (SQLite's 19, PostgreSQL's 18): the score lives in the lead's document (no new column,
/// no rewrite of existing rows), and an index on its sort key lets the board list a tenant's leads best first
/// without sorting them all.
pub fn lead_scores(dialect: Dialect) -> String {
    format!(
        "CREATE INDEX leads_by_score ON leads (tenant, ({}), id);\n",
        lead_score_key(dialect, "doc")
    )
}

/// The campaign leads' migration (SQLite's 23, PostgreSQL's 22): two partial indexes holding only the leads a
/// campaign brought, so attribution reads them without the lead documents. The partners a campaign touched
/// (`(tenant, partner, campaign)`, in partner order for the union with the targets) had been read through
/// `leads_partner` and each lead's row, a million random row reads at M (9.7 s of the report's 12 s with a cold
/// cache, 0.5 s from this index); the leads brought in a window (`(tenant, created, partner, campaign, status)`)
/// through `leads_created` and each row (1.4 s; 80 ms).
pub fn campaign_leads(dialect: Dialect) -> String {
    let source = dialect.json_text("doc", &["source", "campaign"]);
    let created = match dialect {
        Dialect::Sqlite => "created_at",
        Dialect::Postgres => "created_us",
    };
    format!(
        "CREATE INDEX leads_campaign_partner ON leads (tenant, partner, ({source})) WHERE {source} IS NOT NULL;\n\
         CREATE INDEX leads_campaign_created ON leads (tenant, {created}, partner, ({source}), status) \
         WHERE {source} IS NOT NULL;\n"
    )
}

/// The lead campaign column's migration (SQLite's 24, PostgreSQL's 23): the campaign that brought a lead becomes
/// a column (`campaign`, the id as every other id is stored) filled from the lead's document, and the three
/// campaign indexes are rebuilt on it. On an expression of `doc` they read as covering in SQLite's plan, but SQLite
/// still seeks every row of a `WITHOUT ROWID` table by its key to check it exists (an `OP_NotFound` on the table per
/// index entry): about 6 µs a lead at M, 108 ms of the campaign report's 166 ms. PostgreSQL's planner considers an
/// index-only scan only when the columns an expression reads are in the index, which `doc` is not. On a column both
/// read the index alone, and a lead update that leaves the campaign no longer rewrites these indexes' entries
/// (SQLite evaluates every partial or expression index that names `doc` on each update).
pub fn lead_campaign_column(dialect: Dialect) -> String {
    let source = dialect.json_text("doc", &["source", "campaign"]);
    let (created, fill) = match dialect {
        Dialect::Sqlite => ("created_at", format!("unhex(replace({source}, '-', ''))")),
        Dialect::Postgres => ("created_us", format!("({source})::uuid")),
    };
    format!(
        "ALTER TABLE leads ADD COLUMN campaign {};\n\
         UPDATE leads SET campaign = {fill} WHERE {source} IS NOT NULL;\n\
         DROP INDEX leads_by_campaign;\n\
         DROP INDEX leads_campaign_partner;\n\
         DROP INDEX leads_campaign_created;\n\
         CREATE INDEX leads_by_campaign ON leads (tenant, campaign, {created}, status) WHERE campaign IS NOT NULL;\n\
         CREATE INDEX leads_campaign_partner ON leads (tenant, partner, campaign) WHERE campaign IS NOT NULL;\n\
         CREATE INDEX leads_campaign_created ON leads (tenant, {created}, partner, campaign, status) \
         WHERE campaign IS NOT NULL;\n",
        dialect.column_type(Kind::Uuid)
    )
}

/// The sales timers' migration (SQLite's 8, PostgreSQL's 7): the indexes the quotation expiry rule reads (the sent
/// quotations by validity date, a partial index holding only sent ones) and the meeting reminders read (the
/// scheduled meetings by start).
/// The same statement in both dialects.
pub fn sales_timers(_dialect: Dialect) -> String {
    let sent = crate::commerce::quotation_status_code(crm_core::sales::QuotationStatus::Sent);
    let scheduled = crate::commerce::meeting_status_code(crm_core::sales::MeetingStatus::Scheduled);
    format!(
        "CREATE INDEX quotations_expiring ON quotations (tenant, valid_until, year, sequence, revision) \
         WHERE status = {sent};\n\
         CREATE INDEX meetings_starting ON meetings (tenant, starts_us, id) WHERE status = {scheduled};\n"
    )
}

/// The sales migration (SQLite's 6, PostgreSQL's 5): quotation revisions, contracts, and meetings with
/// their agenda rows. A number `(year, sequence, revision)` is
/// unique per tenant, so two quotations made at once cannot share one (the service takes the next); a lead's
/// quotations and a number's revisions are index range scans.
pub fn sales(dialect: Dialect) -> String {
    [
        table(
            dialect,
            &QUOTATIONS,
            &["lead"],
            &[
                "PRIMARY KEY (tenant, id)",
                "UNIQUE (tenant, year, sequence, revision)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
                "FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)",
            ],
        ),
        "CREATE INDEX quotations_lead ON quotations (tenant, lead, year, sequence, revision) \
         WHERE lead IS NOT NULL;\n"
            .to_string(),
        table(
            dialect,
            &CONTRACTS,
            &["quotation", "renews_on"],
            &[
                "PRIMARY KEY (tenant, id)",
                "UNIQUE (tenant, number)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
                "FOREIGN KEY (tenant, quotation) REFERENCES quotations (tenant, id)",
            ],
        ),
        "CREATE UNIQUE INDEX contracts_quotation ON contracts (tenant, quotation) WHERE quotation IS NOT NULL;\n\
         CREATE INDEX contracts_partner ON contracts (tenant, partner, starts_on);\n\
         CREATE INDEX contracts_renewing ON contracts (tenant, renews_on) WHERE renews_on IS NOT NULL;\n"
            .to_string(),
        table(
            dialect,
            &MEETINGS,
            &["lead"],
            &[
                "PRIMARY KEY (tenant, id)",
                "FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)",
            ],
        ),
        "CREATE INDEX meetings_lead ON meetings (tenant, lead, starts_us) WHERE lead IS NOT NULL;\n".to_string(),
        table(
            dialect,
            &MEETING_PEOPLE,
            &[],
            &[
                "PRIMARY KEY (tenant, user_id, starts_us, meeting)",
                "FOREIGN KEY (tenant, meeting) REFERENCES meetings (tenant, id)",
            ],
        ),
    ]
    .join("\n")
}

/// The attachments migration (SQLite's 7, PostgreSQL's 6): the metadata of the files attached to leads, partners,
/// requests, quotations and contracts (their bytes are in the blob store, never in the database). A record's
/// files, oldest first, are an index range scan on `(tenant, target_kind, target, at_us, id)`; the column of the
/// target's own kind carries its foreign key.
pub fn attachments(dialect: Dialect) -> String {
    [
        table(
            dialect,
            &ATTACHMENTS,
            &["lead", "partner", "request", "quotation", "contract"],
            &[
                "PRIMARY KEY (tenant, id)",
                "FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
                "FOREIGN KEY (tenant, request) REFERENCES requests (tenant, id)",
                "FOREIGN KEY (tenant, quotation) REFERENCES quotations (tenant, id)",
                "FOREIGN KEY (tenant, contract) REFERENCES contracts (tenant, id)",
            ],
        ),
        "CREATE INDEX attachments_of ON attachments (tenant, target_kind, target, at_us, id);\n"
            .to_string(),
    ]
    .join("\n")
}

/// The host-references migration (SQLite's 10, PostgreSQL's 9): a partner's host reference (its ERP's code),
/// unique in the tenant when given, and the index a lookup by it seeks.
pub fn host_refs(dialect: Dialect) -> String {
    format!(
        "ALTER TABLE partners ADD COLUMN host_ref {};\n\
         CREATE UNIQUE INDEX partners_host_ref ON partners (tenant, host_ref) WHERE host_ref IS NOT NULL;\n",
        dialect.column_type(Kind::Text)
    )
}

/// The second host-references migration (SQLite's 11, PostgreSQL's 10): a lead's host reference, unique in the
/// tenant when given, and the contacts' references (a contact lives in its partner's document, so its code is a row
/// of `contact_refs`, unique in the tenant, replaced with the partner's other rows on every write of the partner).
pub fn contact_and_lead_refs(dialect: Dialect) -> String {
    format!(
        "ALTER TABLE leads ADD COLUMN host_ref {};\n\
         CREATE UNIQUE INDEX leads_host_ref ON leads (tenant, host_ref) WHERE host_ref IS NOT NULL;\n{}\
         CREATE INDEX contact_refs_partner ON contact_refs (tenant, partner);\n",
        dialect.column_type(Kind::Text),
        table(
            dialect,
            &CONTACT_REFS,
            &[],
            &[
                "PRIMARY KEY (tenant, host_ref)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
            ],
        )
    )
}

/// The settings migration (SQLite's 12, PostgreSQL's 11): a tenant's named values ([`crm_core::setting`]).
pub fn settings(dialect: Dialect) -> String {
    table(dialect, &SETTINGS, &[], &["PRIMARY KEY (tenant, key)"])
}

/// The merges migration (SQLite's 13, PostgreSQL's 12): a partner's `merged_into` (set on a merge's tombstone; the
/// segments leave tombstones out) and the merges' journals ([`crm_core::merge::PartnerMerge`]), by survivor.
pub fn merges(dialect: Dialect) -> String {
    format!(
        "ALTER TABLE partners ADD COLUMN merged_into {};
{}         CREATE INDEX merges_survivor ON merges (tenant, survivor);
",
        dialect.column_type(Kind::Uuid),
        table(dialect, &MERGES, &[], &["PRIMARY KEY (tenant, id)"])
    )
}

/// The erasure migration (SQLite's 14, PostgreSQL's 13): the data subjects' keys the activity log is sealed under
/// ([`crm_core::erasure`]).
pub fn subject_keys(dialect: Dialect) -> String {
    table(
        dialect,
        &SUBJECT_KEYS,
        &[],
        &["PRIMARY KEY (tenant, subject)"],
    )
}

/// `subject_keys`: a partner's or contact's key; deleting it erases the events sealed under it.
pub const SUBJECT_KEYS: Table = crate::table!("subject_keys" {
    tenant: Uuid, subject: Uuid, doc: Json
});

/// The lead-merges migration (SQLite's 15, PostgreSQL's 14): the journals of lead merges
/// ([`crm_core::lead_merge::LeadMerge`]), by survivor. A merged lead is a tombstone by its status (3, merged), so
/// the `leads` table needs no new column (PostgreSQL's check of the status widens to take it).
pub fn lead_merges(dialect: Dialect) -> String {
    // PostgreSQL checks a lead's status code: the merged one (3) joins the range.
    let status = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => {
            "ALTER TABLE leads DROP CONSTRAINT leads_status_check;\n\
             ALTER TABLE leads ADD CONSTRAINT leads_status_check CHECK (status BETWEEN 0 AND 3);\n"
        }
    };
    format!(
        "{status}{}CREATE INDEX lead_merges_survivor ON lead_merges (tenant, survivor);\n",
        table(dialect, &LEAD_MERGES, &[], &["PRIMARY KEY (tenant, id)"])
    )
}

/// `lead_merges`: the journal of each merge of leads.
pub const LEAD_MERGES: Table = crate::table!("lead_merges" {
    tenant: Uuid, id: Uuid, survivor: Uuid, version: I64, doc: Json
});

/// `merges`: the journal of each merge of partners.
pub const MERGES: Table = crate::table!("merges" {
    tenant: Uuid, id: Uuid, survivor: Uuid, version: I64, doc: Json
});

/// `settings`: a tenant's named JSON values, one row per key.
pub const SETTINGS: Table = crate::table!("settings" {
    tenant: Uuid, key: Text, doc: Json
});

/// `contact_refs`: the host's code of a contact, the partner whose document holds the contact, and the contact.
pub const CONTACT_REFS: Table = crate::table!("contact_refs" {
    tenant: Uuid, host_ref: Text, partner: Uuid, contact: Uuid
});

/// The portal migration (SQLite's 9, PostgreSQL's 8): the partners' representatives (a pending invitation's token
/// digest unique per tenant, so a login finds one or none), the index a partner's documents are listed by, newest
/// first, in the portal, and the payment attempts (the idempotency key unique per tenant).
pub fn portal(dialect: Dialect) -> String {
    [
        table(
            dialect,
            &REPRESENTATIVES,
            &["token_digest"],
            &[
                "PRIMARY KEY (tenant, id)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
            ],
        ),
        "CREATE UNIQUE INDEX representatives_token ON representatives (tenant, token_digest) \
         WHERE token_digest IS NOT NULL;\n\
         CREATE INDEX representatives_partner ON representatives (tenant, partner, id);\n\
         CREATE INDEX representatives_email ON representatives (tenant, email, id);\n\
         CREATE INDEX documents_partner_recent ON documents (tenant, partner, issue_day DESC, id DESC);\n"
            .to_string(),
        table(
            dialect,
            &PAYMENT_ATTEMPTS,
            &[],
            &[
                "PRIMARY KEY (tenant, id)",
                "UNIQUE (tenant, pay_key)",
                "FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)",
            ],
        ),
        "CREATE INDEX payment_attempts_partner ON payment_attempts (tenant, partner, status, id);\n"
            .to_string(),
    ]
    .join("\n")
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
        assert!(init(Dialect::Sqlite).contains("seq      INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(init(Dialect::Postgres).contains("CREATE TABLE event_positions"));
    }
}
