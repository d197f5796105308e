//! The outbox conformance checks and the outbox model property test on a real PostgreSQL server, each test in its
//! own schema.

mod common;

use crm_core::outbox::OutboxStore;
use crm_core::store::Store;
use std::sync::Arc;

async fn pair() -> Option<(Arc<dyn Store>, Arc<dyn OutboxStore>)> {
    let s = Arc::new(common::store().await?);
    Some((s.clone() as Arc<dyn Store>, s as Arc<dyn OutboxStore>))
}

crm_core::outbox_conformance_tests!(pair());
