//! The one conformance registry (every check of every capability, the scenarios and the property tests) on the
//! reference model itself: [`MemStore`] with its commerce records and its [`MemoryOutbox`](crm_core::outbox::MemoryOutbox).
//! What the adapters must equal is thereby held to the same checks.

use crm_core::conformance::model::MemStore;
use crm_core::store::Backend;
use std::sync::Arc;

async fn backend() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(MemStore::new()))
}

crm_core::backend_conformance_tests!(backend());
