//! The commerce conformance suite (every check and the commerce property test) on a real PostgreSQL server, each
//! test in its own schema; skipped plainly without `CRM_TEST_POSTGRES_URL`.

mod common;

use crm_core::commerce::CommerceStore;
use crm_core::store::Store;
use std::sync::Arc;

async fn stores() -> Option<(Arc<dyn Store>, Arc<dyn CommerceStore>)> {
    let s = Arc::new(common::store().await?);
    Some((s.clone(), s))
}

crm_core::commerce_conformance_tests!(stores());
