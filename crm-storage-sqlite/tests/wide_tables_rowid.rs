//! Migration 26 rebuilds `leads` and `pipelines` keyed by rowid (their rows, about 1 KB, are too wide to be a
//! `WITHOUT ROWID` b-tree's key): every row, column and index as before, the rows referring to them still
//! pointing at them, foreign keys enforced again afterwards, and the engine reading and moving the leads as before.

use crm_core::actor::Context;
use crm_core::id::{TenantId, UserId};
use crm_core::lead::{LeadCommand, LeadPartner, NewLead};
use crm_core::partner::NewPartner;
use crm_core::service::CrmService;
use crm_storage_sqlite::SqliteStore;
use rusqlite::types::Value;
use std::path::Path;
use std::sync::Arc;

const TABLES: [&str; 2] = ["leads", "pipelines"];

/// Every row of `table`, every column, in key order.
fn rows(c: &rusqlite::Connection, table: &str) -> Vec<Vec<Value>> {
    let mut s = c
        .prepare(&format!("SELECT * FROM {table} ORDER BY tenant, id"))
        .unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The definitions of the indexes on `table` (not the primary key's), by name.
fn indexes(c: &rusqlite::Connection, table: &str) -> Vec<(String, String)> {
    let mut s = c
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    s.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn table_sql(c: &rusqlite::Connection, table: &str) -> String {
    c.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )
    .unwrap()
}

/// The file at `path` as migration 25 left it: each of the tables `WITHOUT ROWID`, with the same rows and indexes,
/// and neither the partners' names index (27) nor the customer year roll-up (28).
fn rewind_to_25(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA foreign_keys = OFF; BEGIN;")
        .unwrap();
    for table in TABLES {
        let body = table_sql(&c, table)
            .trim_start_matches("CREATE TABLE ")
            .trim_start_matches(&format!("\"{table}\""))
            .trim_start_matches(table)
            .to_string();
        let defs: Vec<String> = indexes(&c, table).into_iter().map(|(_, sql)| sql).collect();
        c.execute_batch(&format!(
            "CREATE TABLE {table}_keyed {body} WITHOUT ROWID; \
             INSERT INTO {table}_keyed SELECT * FROM {table}; \
             DROP TABLE {table}; ALTER TABLE {table}_keyed RENAME TO {table}; {};",
            defs.join("; ")
        ))
        .unwrap();
        assert!(table_sql(&c, table).ends_with("WITHOUT ROWID"));
    }
    c.execute_batch(
        "DROP INDEX partners_names; DROP TABLE sales_years; DROP TABLE campaign_target_counts; \
         PRAGMA user_version = 25; COMMIT;",
    )
    .unwrap();
}

#[tokio::test]
async fn migration_26_keys_the_leads_by_rowid_and_keeps_every_row_and_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.sqlite");
    let sqlite = SqliteStore::open_file(&path).expect("open");
    let crm = CrmService::builder()
        .store(Arc::new(sqlite.clone()))
        .build()
        .unwrap();
    let ctx = Context::user(TenantId::new(), UserId::new());
    let pipeline = crm.setup_tenant(&ctx).await.unwrap();
    let offer = pipeline.stage_named("Offer").unwrap().id;
    let mut ids = Vec::new();
    for title in ["forklifts", "pallets", "racks"] {
        let new = NewLead::new(
            LeadPartner::New {
                partner: NewPartner::company(format!("{title} SRL")),
            },
            title,
        );
        ids.push(crm.enter_lead(&ctx, new).await.unwrap().record.id());
    }
    // A stage move: rows in other tables that refer to the lead.
    crm.transition(&ctx, ids[0], 1, LeadCommand::MoveTo { stage: offer })
        .await
        .unwrap();
    let leads_before: Vec<_> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(crm.lead(ctx.tenant, *id).await.unwrap());
        }
        v
    };
    drop((crm, sqlite));

    let before: Vec<_> = {
        let c = rusqlite::Connection::open(&path).unwrap();
        TABLES
            .iter()
            .map(|t| {
                let sql = table_sql(&c, t);
                assert!(
                    !sql.contains("WITHOUT ROWID"),
                    "a new file's {t} are keyed by rowid: {sql}"
                );
                (rows(&c, t), indexes(&c, t))
            })
            .collect()
    };
    assert_eq!(before[0].0.len(), 3, "three leads");
    assert_eq!(before[1].0.len(), 1, "one pipeline");
    assert!(before[0].1.len() > 10, "{:?}", before[0].1);

    rewind_to_25(&path);
    let reopened = SqliteStore::open_file(&path).expect("migrate");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for (t, (rows_before, indexes_before)) in TABLES.iter().zip(&before) {
            let sql = table_sql(&c, t);
            assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
            assert_eq!(
                &rows(&c, t),
                rows_before,
                "every row and column of {t} as before"
            );
            assert_eq!(
                &indexes(&c, t),
                indexes_before,
                "every index of {t} as before"
            );
        }
        let dangling: i64 = c
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            dangling, 0,
            "the rows referring to the leads still find them"
        );
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            version, 32,
            "migrated to the latest (32, the campaign report's counts of the targets)"
        );
        let made: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('partners_names', 'sales_years')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(made, 2, "migrations 27 and 28 ran after the rebuild");
    }
    let enforced: i64 = reopened
        .with_writer(|c| {
            c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .map_err(|e| {
                    crm_core::Error::storage(crm_core::StorageErrorKind::Other, e.to_string())
                })
        })
        .await
        .unwrap();
    assert_eq!(
        enforced, 1,
        "foreign keys are enforced again after the migration"
    );

    let crm = CrmService::builder()
        .store(Arc::new(reopened))
        .build()
        .unwrap();
    for lead in &leads_before {
        assert_eq!(&crm.lead(ctx.tenant, lead.id()).await.unwrap(), lead);
    }
    let moved = crm
        .transition(&ctx, ids[1], 1, LeadCommand::MoveTo { stage: offer })
        .await
        .unwrap()
        .record;
    assert_eq!((moved.stage(), moved.version()), (offer, 2));
}
