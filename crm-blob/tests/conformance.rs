//! The blob-store contract (`crm_core::conformance::attachments::check_blob_store`) on every store of this crate:
//! a directory, and `object_store`'s in-memory and local-filesystem stores. Each check counts every file or object
//! the store holds (temporary ones included), so a refused or failed upload that left anything behind fails it.

use crm_blob::{FsBlobStore, ObjectBlobStore};
use crm_core::conformance::attachments::check_blob_store;
use futures_util::StreamExt;
use object_store::ObjectStore;
use std::path::Path;
use std::sync::Arc;

/// The files under `dir`, recursively.
fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .map(|e| e.expect("an entry").path())
            .map(|p| if p.is_dir() { files(&p) } else { 1 })
            .sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_blob_store_conformance() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().to_path_buf();
    check_blob_store(Arc::new(FsBlobStore::new(&root)), || {
        let n = files(&root);
        async move { n }
    })
    .await;
    assert_eq!(files(&root.join("tmp")), 0, "no temporary file is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_blob_store_in_memory_conformance() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let counted = store.clone();
    check_blob_store(Arc::new(ObjectBlobStore::new(store)), || {
        let listing = counted.list(None);
        async move { listing.count().await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_blob_store_on_local_files_conformance() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().to_path_buf();
    let local =
        object_store::local::LocalFileSystem::new_with_prefix(&root).expect("a local store");
    check_blob_store(Arc::new(ObjectBlobStore::new(Arc::new(local))), || {
        let n = files(&root);
        async move { n }
    })
    .await;
}
