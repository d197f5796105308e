//! The one conformance registry (every check, the scenarios and the property tests) on a store that runs on the
//! host's own connection (`SqliteStore::on_host_connection`): once inside a transaction the host began and never
//! commits (every engine change is then a savepoint in it, and every read sees its uncommitted rows), and once
//! on a host connection in autocommit mode. Nothing is excluded: every check holds on a lent connection.

use crm_core::store::Backend;
use crm_storage_sqlite::SqliteStore;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};

/// The host's connection with the engine's schema migrated on it, then the host's `BEGIN` (left open: what the
/// checks write is rolled back when the connection closes). The database is in memory so that nothing outlives
/// the test (savepoints inside the host's transaction behave the same on a file).
fn host_transaction() -> (Arc<Mutex<Connection>>, SqliteStore) {
    let conn = Connection::open_in_memory().expect("the host's connection");
    let conn = Arc::new(Mutex::new(conn));
    let store =
        SqliteStore::on_host_connection(conn.clone()).expect("migrated on the host's connection");
    conn.lock()
        .unwrap()
        .execute_batch("BEGIN; CREATE TABLE erp_invoices (number TEXT PRIMARY KEY)")
        .expect("the host's transaction");
    (conn, store)
}

async fn in_host_transaction() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(host_transaction().1))
}

/// The host's in-memory connection, lent without a transaction: each engine change is its own.
async fn on_host_connection() -> Option<Arc<dyn Backend>> {
    let conn = Arc::new(Mutex::new(
        Connection::open_in_memory().expect("the host's connection"),
    ));
    Some(Arc::new(
        SqliteStore::on_host_connection(conn).expect("migrated on the host's connection"),
    ))
}

mod host_transaction {
    crm_core::backend_conformance_tests!(super::in_host_transaction());
}

mod host_autocommit {
    crm_core::backend_conformance_tests!(super::on_host_connection());
}

/// Every scenario runs inside the host's transaction without ending it (refused steps roll back to their
/// savepoints only), and the host's ROLLBACK then leaves none of the engine's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_stay_inside_the_host_transaction_and_roll_back_with_it() {
    let (conn, store) = host_transaction();
    let backend: Arc<dyn Backend> = Arc::new(store);
    crm_core::conformance::check_scenarios(&backend).await;
    let count = |c: &Connection, table: &str| -> i64 {
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let c = conn.lock().unwrap();
    assert!(!c.is_autocommit(), "the host's transaction is still open");
    assert!(count(&c, "partners") > 0 && count(&c, "documents") > 0);
    c.execute_batch("ROLLBACK").unwrap();
    for table in crm_core::conformance::scenario::SCENARIO_TABLES {
        assert_eq!(count(&c, table), 0, "{table} after the host's rollback");
    }
}
