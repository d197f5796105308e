//! The blob store over any `object_store`.

use async_trait::async_trait;
use crm_core::id::TenantId;
use crm_core::sales::{BlobStore, ByteStream, ContentDigest, ContentHash, StoredBlob};
use crm_core::{Error, Result, StorageErrorKind};
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::sync::Arc;

/// How many parts of one upload are in flight at once (each part is 5 MiB, `WriteMultipart`'s default).
const PARTS_IN_FLIGHT: usize = 2;

/// Attachment bytes in any [`ObjectStore`] (S3-compatible, GCS, Azure, the local filesystem, memory):
/// `<prefix>/<tenant>/<hh>/<sha256 hex>`. An upload is a multipart upload to `<prefix>/tmp/<uuid>` (at most a few
/// parts of 5 MiB buffered), then a copy to its address unless that exists (`copy_if_not_exists`; where the store
/// cannot do that atomically, a plain copy: the same address always holds the same bytes), then the temporary
/// object is deleted. Needs a tokio runtime (object_store spawns the part uploads).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm_core::Result<()> {
/// use crm_blob::ObjectBlobStore;
/// use crm_core::conformance::model::{read_all, stream_of};
/// use crm_core::id::TenantId;
/// use crm_core::sales::BlobStore;
/// use std::sync::Arc;
/// let blobs = ObjectBlobStore::new(Arc::new(object_store::memory::InMemory::new()));
/// let tenant = TenantId::new();
/// let blob = blobs.put(tenant, stream_of(&b"hello"[..]), 1024).await?;
/// assert_eq!(read_all(blobs.get(tenant, &blob.hash).await?).await?, b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

fn storage(what: &str, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. } => StorageErrorKind::Config,
        _ => StorageErrorKind::Unavailable,
    };
    Error::storage_caused(kind, format!("blob store: cannot {what}: {e}"), e)
}

impl ObjectBlobStore {
    /// A store at the root of `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self::with_prefix(store, Path::default())
    }

    /// A store under `prefix` of `store` (a bucket shared with other data).
    pub fn with_prefix(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix }
    }

    fn path_of(&self, tenant: TenantId, hash: &ContentHash) -> Path {
        crate::address(tenant, hash)
            .iter()
            .fold(self.prefix.clone(), |p, part| p.join(part.as_str()))
    }

    /// Streams `content` into a multipart upload at `temp`, hashing and counting; aborts the upload on any error.
    async fn upload(&self, temp: &Path, mut content: ByteStream, max: u64) -> Result<StoredBlob> {
        let upload = self
            .store
            .put_multipart(temp)
            .await
            .map_err(|e| storage("start an upload", e))?;
        let mut writer = WriteMultipart::new(upload);
        let mut digest = ContentDigest::new(max);
        while let Some(chunk) = content.next().await {
            let taken = match digest.take(chunk) {
                Ok(c) => writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map(|()| c),
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            match taken {
                Ok(c) => writer.put(c),
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(storage("upload", e));
                }
            }
        }
        writer.finish().await.map_err(|e| storage("upload", e))?;
        Ok(digest.finish())
    }

    /// Copies `temp` to `dest` unless `dest` exists.
    async fn settle(&self, temp: &Path, dest: &Path) -> Result<()> {
        if self.exists(dest).await? {
            return Ok(());
        }
        use object_store::Error as E;
        match self.store.copy_if_not_exists(temp, dest).await {
            Ok(()) | Err(E::AlreadyExists { .. }) => Ok(()),
            Err(E::NotSupported { .. } | E::NotImplemented { .. }) => self
                .store
                .copy(temp, dest)
                .await
                .map_err(|e| storage("copy", e)),
            Err(e) => Err(storage("copy", e)),
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage("read", e)),
        }
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, tenant: TenantId, content: ByteStream, limit: u64) -> Result<StoredBlob> {
        let temp = self
            .prefix
            .clone()
            .join("tmp")
            .join(uuid::Uuid::now_v7().to_string());
        let blob = self.upload(&temp, content, limit).await?;
        let settled = self.settle(&temp, &self.path_of(tenant, &blob.hash)).await;
        let deleted = match self.store.delete(&temp).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage("delete a temporary object", e)),
        };
        settled.and(deleted).map(|()| blob)
    }

    async fn get(&self, tenant: TenantId, hash: &ContentHash) -> Result<ByteStream> {
        match self.store.get(&self.path_of(tenant, hash)).await {
            Ok(r) => Ok(r
                .into_stream()
                .map(|c| c.map_err(std::io::Error::other))
                .boxed()),
            Err(object_store::Error::NotFound { .. }) => Err(Error::not_found("blob", hash)),
            Err(e) => Err(storage("read", e)),
        }
    }

    async fn contains(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        self.exists(&self.path_of(tenant, hash)).await
    }

    async fn delete(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        let path = self.path_of(tenant, hash);
        if !self.exists(&path).await? {
            return Ok(false);
        }
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(storage("delete", e)),
        }
    }
}
