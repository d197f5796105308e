//! A bulk load on a SQLite file: the non-unique indexes are dropped while it is open and built again by its
//! finish, and a process killed mid-load leaves nothing wrong behind: opening the file finishes the load (the
//! indexes are built again, the roll-ups count the ingested documents). The load itself runs in crm-core's
//! conformance suite (`check_bulk_load`).

use crm_core::commerce::CommerceStore;
use crm_core::id::TenantId;
use crm_core::store::{BulkStep, Store};
use crm_storage_sql::{Runner, Sql};
use crm_storage_sqlite::SqliteStore;
use std::path::Path;
use std::sync::Arc;

/// The environment variable that makes this test's binary the child which loads and is killed.
const CHILD: &str = "CRM_BULK_CHILD_FILE";

/// Every index of the file: (name, definition), by name.
async fn indexes(store: &SqliteStore) -> Vec<(String, String)> {
    let sql = Sql {
        dialect: store.dialect(),
        text: "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
            .into(),
        params: Vec::new(),
    };
    store
        .rows(sql, true)
        .await
        .expect("the catalog")
        .iter()
        .map(|r| {
            (
                r[0].text("name").unwrap().to_string(),
                r[1].text("sql").unwrap().to_string(),
            )
        })
        .collect()
}

fn parts(sqlite: &SqliteStore) -> (Arc<dyn Store>, Arc<dyn CommerceStore>) {
    (Arc::new(sqlite.clone()), Arc::new(sqlite.clone()))
}

/// The child: opens `file`, leaves a bulk load open with documents ingested, writes the tenant beside the file and
/// kills itself (no destructor, no finish).
async fn child(file: &Path) -> ! {
    let sqlite = SqliteStore::open_file(file).expect("open");
    let (store, commerce) = parts(&sqlite);
    let tenant = crm_core::conformance::commerce::bulk_load_left_open(&store, &commerce).await;
    std::fs::write(file.with_extension("tenant"), tenant.to_string()).expect("tenant file");
    std::process::abort();
}

#[tokio::test]
async fn a_load_killed_midway_is_finished_when_the_file_opens_again() {
    if let Ok(file) = std::env::var(CHILD) {
        child(Path::new(&file)).await;
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("crm.sqlite");
    let before = {
        let sqlite = SqliteStore::open_file(&file).expect("open");
        indexes(&sqlite).await
    };
    assert!(before.iter().any(|(n, _)| n == "documents_partner"));
    let status = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .args([
            "--exact",
            "a_load_killed_midway_is_finished_when_the_file_opens_again",
            "--nocapture",
        ])
        .env(CHILD, &file)
        .status()
        .expect("run the child");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        status.signal(),
        Some(6),
        "the child was killed (SIGABRT): {status:?}"
    );
    let tenant: TenantId = std::fs::read_to_string(file.with_extension("tenant"))
        .expect("the child wrote its tenant before it was killed")
        .parse()
        .expect("a tenant id");

    // The load is still open in the file: the non-unique indexes are gone, the unique ones kept.
    {
        let conn = rusqlite::Connection::open(&file).expect("raw open");
        let open: i64 = conn
            .query_row("SELECT count(*) FROM bulk_loads", [], |r| r.get(0))
            .expect("loads");
        assert_eq!(open, 1);
        let left: Vec<String> = conn
            .prepare("SELECT sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .expect("catalog");
        assert!(!left.is_empty() && left.iter().all(|s| s.starts_with("CREATE UNIQUE")));
    }

    let sqlite = SqliteStore::open_file(&file).expect("open again");
    let (_, commerce) = parts(&sqlite);
    crm_core::conformance::commerce::assert_bulk_load_finished(&commerce, tenant).await;
    assert_eq!(
        indexes(&sqlite).await,
        before,
        "every index is back as it was"
    );
}

#[tokio::test]
async fn a_finished_load_leaves_every_index_as_it_was() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("crm.sqlite");
    let sqlite = SqliteStore::open_file(&file).expect("open");
    let (store, commerce) = parts(&sqlite);
    let before = indexes(&sqlite).await;
    let tenant = crm_core::conformance::commerce::bulk_load_left_open(&store, &commerce).await;
    let during = indexes(&sqlite).await;
    assert!(during.len() < before.len());
    assert!(during
        .iter()
        .all(|(_, sql)| sql.starts_with("CREATE UNIQUE")));
    let done = crm_core::conformance::commerce::bulk(&commerce, tenant, BulkStep::Finish)
        .await
        .expect("finish");
    assert!(done.rebuilt && done.deferred_indexes == 0, "{done:?}");
    // The finish's one large transaction is copied into the file and the write-ahead log truncated.
    let wal = std::fs::metadata(file.with_extension("sqlite-wal")).expect("the log");
    assert_eq!(wal.len(), 0);
    assert_eq!(indexes(&sqlite).await, before);
    crm_core::conformance::commerce::assert_bulk_load_finished(&commerce, tenant).await;
}

/// Migration 31 drops the lines' category index: also when a bulk load had put it aside (its definition saved to
/// be built again by the load's finish), the saved definition goes too, so no finish builds it back; and the
/// documents' day index is there.
#[tokio::test]
async fn the_category_index_put_aside_by_a_load_is_not_built_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("crm.sqlite");
    let definition =
        "CREATE INDEX document_lines_category ON document_lines (tenant, category, partner, \
                      issue_day, quantity_units) WHERE category IS NOT NULL";
    {
        let sqlite = SqliteStore::open_file(&file).expect("open");
        let names: Vec<String> = indexes(&sqlite).await.into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"documents_day".to_string()), "{names:?}");
        assert!(!names.contains(&"document_lines_category".to_string()));
        // Back to migration 30 with a load open: the index put aside.
        let text = format!(
            "INSERT INTO deferred_indexes (name, definition) VALUES ('document_lines_category', '{definition}'); \
             DROP INDEX documents_day; DROP TABLE campaign_target_counts; PRAGMA user_version = 30;"
        );
        sqlite
            .with_writer(move |c| {
                c.execute_batch(&text)
                    .map_err(|e| crm_core::Error::invalid("sql", e.to_string()))
            })
            .await
            .unwrap();
    }
    let sqlite = SqliteStore::open_file(&file).expect("migrate");
    let names: Vec<String> = indexes(&sqlite).await.into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"documents_day".to_string()), "{names:?}");
    assert!(!names.contains(&"document_lines_category".to_string()));
    let sql = Sql {
        dialect: sqlite.dialect(),
        text: "SELECT count(*) FROM deferred_indexes WHERE name = 'document_lines_category'".into(),
        params: Vec::new(),
    };
    let rows = sqlite.rows(sql, true).await.unwrap();
    assert_eq!(
        rows[0][0].count("count").unwrap(),
        0,
        "nothing builds it back"
    );
}
