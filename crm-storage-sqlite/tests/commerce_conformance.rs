//! The commerce conformance suite (every check and the commerce property test) on SQLite, both on an in-memory
//! database and on a WAL file with reader threads.

use crm_core::commerce::CommerceStore;
use crm_core::store::Store;
use crm_storage_sqlite::{SqliteConfig, SqliteStore};
use std::sync::Arc;

type Stores = Option<(Arc<dyn Store>, Arc<dyn CommerceStore>)>;

async fn file_store() -> Stores {
    let dir = std::env::temp_dir().join(format!("crm-commerce-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let s = Arc::new(
        SqliteStore::open(SqliteConfig::file(dir.join("crm.sqlite"))).expect("open file store"),
    );
    Some((s.clone(), s))
}

async fn memory_store() -> Stores {
    let s = Arc::new(SqliteStore::open_in_memory().expect("open"));
    Some((s.clone(), s))
}

mod file {
    crm_core::commerce_conformance_tests!(super::file_store());
}

mod memory {
    crm_core::commerce_conformance_tests!(super::memory_store());
}
