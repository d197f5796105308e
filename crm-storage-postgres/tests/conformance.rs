//! The one conformance registry (every check of every capability and the property tests) on a real PostgreSQL
//! server, each test in its own schema; skipped plainly without `CRM_TEST_POSTGRES_URL` (a failure when
//! `CRM_REQUIRE_POSTGRES=1`).

mod common;

use crm_core::store::Backend;
use std::sync::Arc;

async fn backend() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(common::store().await?))
}

crm_core::backend_conformance_tests!(backend());
