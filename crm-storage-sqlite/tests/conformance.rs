//! The shared conformance suite (every check and the differential property test) on SQLite, both on an in-memory
//! database and on a WAL file with reader threads.

use crm_core::store::Store;
use crm_storage_sqlite::{SqliteConfig, SqliteStore};
use std::sync::Arc;

async fn file_store() -> Option<Arc<dyn Store>> {
    let dir = std::env::temp_dir().join(format!("crm-conformance-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store =
        SqliteStore::open(SqliteConfig::file(dir.join("crm.sqlite"))).expect("open file store");
    Some(Arc::new(store))
}

mod file {
    crm_core::conformance_tests!(super::file_store());
}

mod memory {
    crm_core::conformance_tests!(async {
        Some(
            std::sync::Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory().expect("open"))
                as std::sync::Arc<dyn crm_core::store::Store>,
        )
    });
}
