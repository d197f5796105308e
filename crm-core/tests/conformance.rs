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

/// The blob-store contract on the reference blob store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_blob_store_conformance() {
    use crm_core::conformance::model::MemBlobStore;
    let blobs = Arc::new(MemBlobStore::new());
    let counted = blobs.clone();
    crm_core::conformance::attachments::check_blob_store(blobs, || {
        let n = counted.len();
        async move { n }
    })
    .await;
}
