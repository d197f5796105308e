//! A host's shared connection: migrated when lent without a transaction open, refused with a typed error when the
//! schema is not current and the host already began its transaction (migrating inside it would mix DDL into the
//! host's unit of work).

use crm_core::store::StoreExt;
use crm_core::StorageErrorKind;
use crm_storage_sqlite::rusqlite::Connection;
use crm_storage_sqlite::SqliteStore;
use std::sync::{Arc, Mutex};

#[test]
fn an_unmigrated_connection_inside_a_transaction_is_refused_and_one_without_is_migrated() {
    let conn = Arc::new(Mutex::new(Connection::open_in_memory().unwrap()));
    conn.lock().unwrap().execute_batch("BEGIN").unwrap();
    let e = SqliteStore::on_host_connection(conn.clone()).unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::Config), "{e:?}");
    assert!(e.to_string().contains("migrated"), "{e}");
    conn.lock().unwrap().execute_batch("ROLLBACK").unwrap();
    let store = SqliteStore::on_host_connection(conn).unwrap();
    let tenant = crm_core::id::TenantId::new();
    assert!(futures::executor::block_on(store.pipelines(tenant))
        .unwrap()
        .is_empty());
}
