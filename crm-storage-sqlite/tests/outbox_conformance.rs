//! The outbox conformance checks and the outbox model property test on SQLite (a WAL file and memory).

use crm_core::outbox::OutboxStore;
use crm_core::store::Store;
use crm_storage_sqlite::{SqliteConfig, SqliteStore};
use std::sync::Arc;

type Pair = Option<(Arc<dyn Store>, Arc<dyn OutboxStore>)>;

async fn file_store() -> Pair {
    let dir = std::env::temp_dir().join(format!("crm-outbox-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let s = Arc::new(SqliteStore::open(SqliteConfig::file(dir.join("crm.sqlite"))).expect("open"));
    Some((s.clone(), s))
}

async fn memory_store() -> Pair {
    let s = Arc::new(SqliteStore::open_in_memory().expect("open"));
    Some((s.clone(), s))
}

mod file {
    crm_core::outbox_conformance_tests!(super::file_store());
}

mod memory {
    crm_core::outbox_conformance_tests!(super::memory_store());
}
