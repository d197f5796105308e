//! The one conformance registry (every check of every capability and the property tests) on SQLite, both on a WAL
//! file with reader threads and on an in-memory database.

use crm_core::store::Backend;
use crm_storage_sqlite::SqliteStore;
use std::sync::Arc;

async fn file_backend() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(
        SqliteStore::open_temporary().expect("open a temporary file store"),
    ))
}

async fn memory_backend() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(SqliteStore::open_in_memory().expect("open")))
}

mod file {
    crm_core::backend_conformance_tests!(super::file_backend());
}

mod memory {
    crm_core::backend_conformance_tests!(super::memory_backend());
}
