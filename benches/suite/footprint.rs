//! Bytes per invoice line (#13): the engine's SQLite file against a plain schema holding the same facts.
//!
//! The engine's side is read from SQLite's `dbstat` table (pages in use, per table with its indexes), so free pages
//! and the WAL count for neither side. The plain side is a fresh file with the textbook schema an ERP would write
//! for the same documents: a `documents` row per document (id, tenant, kind, number, partner, issue and due day,
//! currency, total, reporting currency, revenue, cost, campaign, corrected number, direction), a `lines` row per
//! line (document, position, product, quantity, unit price, discount, unit cost: the facts a line is recorded
//! with, read from the engine's `document_lines`) and an `allocations` row per settled amount; ids as 16-byte
//! blobs, the primary keys, the unique document number, and one index each for a partner's documents and for the
//! sales by day — what a report over the lines needs. It is filled from the engine's file (`ATTACH`, one
//! `INSERT … SELECT` per table), so both hold the same documents.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The plain schema (see the module's docs).
pub const PLAIN_SCHEMA: &str = "
CREATE TABLE plain.documents (
    id BLOB PRIMARY KEY, tenant BLOB NOT NULL, kind INTEGER NOT NULL, number TEXT NOT NULL, partner BLOB NOT NULL,
    issue_day INTEGER NOT NULL, due_day INTEGER, currency TEXT NOT NULL, total_units INTEGER NOT NULL,
    reporting TEXT NOT NULL, revenue_units INTEGER NOT NULL, cost_units INTEGER NOT NULL, campaign BLOB,
    corrects TEXT, direction INTEGER);
CREATE UNIQUE INDEX plain.documents_number ON documents (tenant, kind, number);
CREATE INDEX plain.documents_partner ON documents (tenant, partner, issue_day);
CREATE INDEX plain.documents_day ON documents (tenant, issue_day);
CREATE TABLE plain.lines (
    document BLOB NOT NULL, n INTEGER NOT NULL, product BLOB NOT NULL, quantity TEXT NOT NULL,
    unit_price TEXT NOT NULL, discount_pct TEXT NOT NULL, unit_cost TEXT NOT NULL,
    PRIMARY KEY (document, n)) WITHOUT ROWID;
CREATE TABLE plain.allocations (
    document BLOB NOT NULL, n INTEGER NOT NULL, number TEXT NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (document, n)) WITHOUT ROWID;
";

/// What each side takes on disk for the same documents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Footprint {
    /// Document lines in the file (all tenants).
    pub lines: u64,
    /// Documents in the file (all tenants, every kind).
    pub documents: u64,
    /// Bytes of the engine's pages in use, per table with its indexes, largest first.
    pub tables: Vec<(String, u64)>,
    /// Bytes of the engine's commerce tables: documents, their lines and allocations, and the roll-ups kept from
    /// them, each with its indexes (`tables` names them).
    pub commerce_bytes: u64,
    /// Bytes of every page in use in the engine's file (leads, partners, the log and all).
    pub file_bytes: u64,
    /// Bytes of the plain schema's file holding the same documents.
    pub plain_bytes: u64,
}

/// The engine's tables that hold documents or what is derived from them alone.
pub const COMMERCE_TABLES: &[&str] = &[
    "documents",
    "document_lines",
    "allocations",
    "sales_months",
    "sales_days",
    "sales_years",
    "partner_last_sales",
    "bought_months",
    "campaign_customers",
    "campaign_reach",
];

impl Footprint {
    /// The engine's commerce bytes per line.
    pub fn commerce_per_line(&self) -> f64 {
        self.commerce_bytes as f64 / self.lines.max(1) as f64
    }

    /// The whole file's bytes per line.
    pub fn file_per_line(&self) -> f64 {
        self.file_bytes as f64 / self.lines.max(1) as f64
    }

    /// The plain schema's bytes per line.
    pub fn plain_per_line(&self) -> f64 {
        self.plain_bytes as f64 / self.lines.max(1) as f64
    }
}

fn se(e: rusqlite::Error) -> String {
    e.to_string()
}

/// Measures `db` (the engine's SQLite file) and fills a plain schema at `plain` (replaced, and removed again
/// afterwards) with the same documents.
///
/// # Errors
/// A message when a file cannot be read or written.
pub fn measure(db: &Path, plain: &Path) -> Result<Footprint, String> {
    let conn = Connection::open(db).map_err(se)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(se)?;
    let mut owner = BTreeMap::new();
    {
        let mut s = conn
            .prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')")
            .map_err(se)?;
        let rows = s
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(se)?;
        for r in rows {
            let (name, table) = r.map_err(se)?;
            owner.insert(name, table);
        }
    }
    let mut per_table: BTreeMap<String, u64> = BTreeMap::new();
    {
        let mut s = conn
            .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            .map_err(se)?;
        let rows = s
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(se)?;
        for r in rows {
            let (name, bytes) = r.map_err(se)?;
            // Automatic indexes and the schema itself belong to no named table: they count under their own name.
            let table = owner.get(&name).cloned().unwrap_or(name);
            *per_table.entry(table).or_default() += bytes as u64;
        }
    }
    let file_bytes = per_table.values().sum();
    let commerce_bytes = COMMERCE_TABLES
        .iter()
        .filter_map(|t| per_table.get(*t))
        .sum();
    let mut tables: Vec<(String, u64)> = per_table.into_iter().collect();
    tables.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let lines: i64 = conn
        .query_row("SELECT count(*) FROM document_lines", [], |r| r.get(0))
        .map_err(se)?;
    let documents: i64 = conn
        .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
        .map_err(se)?;
    let _ = std::fs::remove_file(plain);
    conn.execute(
        "ATTACH DATABASE ?1 AS plain",
        params![plain.to_string_lossy()],
    )
    .map_err(se)?;
    let filled = (|| {
        conn.execute_batch(
            "PRAGMA plain.journal_mode = OFF; PRAGMA plain.synchronous = OFF; BEGIN;",
        )?;
        conn.execute_batch(PLAIN_SCHEMA)?;
        conn.execute_batch(
            "INSERT INTO plain.documents SELECT id, tenant, kind, number, partner, issue_day, due_day, currency, \
                 total_units, reporting, revenue_units, cost_units, campaign, corrects, direction FROM main.documents;
             INSERT INTO plain.lines SELECT document, n, product, quantity, unit_price, discount_pct, \
                 unit_cost FROM main.document_lines;
             INSERT INTO plain.allocations SELECT d.id, a.key, a.value ->> '$.number', a.value ->> '$.amount' \
                 FROM main.documents d, json_each(d.doc, '$.allocations') a;
             COMMIT;",
        )
    })();
    let detached = conn.execute_batch("DETACH DATABASE plain");
    filled.map_err(se)?;
    detached.map_err(se)?;
    let p = Connection::open(plain).map_err(se)?;
    let plain_lines: i64 = p
        .query_row("SELECT count(*) FROM lines", [], |r| r.get(0))
        .map_err(se)?;
    // Pages in use, as `dbstat` counts the engine's.
    let plain_bytes: i64 = p
        .query_row(
            "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, \
             pragma_page_size",
            [],
            |r| r.get(0),
        )
        .map_err(se)?;
    drop(p);
    if plain_lines != lines {
        return Err(format!(
            "footprint: the plain schema holds {plain_lines} lines, the engine's file {lines}"
        ));
    }
    let _ = std::fs::remove_file(plain);
    Ok(Footprint {
        lines: lines as u64,
        documents: documents as u64,
        tables,
        commerce_bytes,
        file_bytes,
        plain_bytes: plain_bytes as u64,
    })
}
