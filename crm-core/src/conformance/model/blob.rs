//! The reference blob store, and a wrapper that fails mid-write, for the attachment checks.

use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::sales::{BlobStore, ByteStream, ContentDigest, ContentHash, StoredBlob};
use crate::StorageErrorKind;
use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The reference [`BlobStore`]: every tenant's bytes in memory, by tenant and hash. Streams in chunk by chunk
/// (checking the limit on each), keeps nothing unless the whole stream arrived.
#[derive(Debug, Default)]
pub struct MemBlobStore {
    blobs: Mutex<BTreeMap<(TenantId, ContentHash), bytes::Bytes>>,
}

impl MemBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many blobs it holds, over every tenant.
    pub fn len(&self) -> usize {
        self.blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl BlobStore for MemBlobStore {
    async fn put(
        &self,
        tenant: TenantId,
        mut content: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredBlob> {
        let mut digest = ContentDigest::new(max_bytes);
        let mut kept = Vec::new();
        while let Some(chunk) = content.next().await {
            kept.extend_from_slice(&digest.take(chunk)?);
        }
        let blob = digest.finish();
        self.blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((tenant, blob.hash))
            .or_insert_with(|| kept.into());
        Ok(blob)
    }

    async fn get(&self, tenant: TenantId, hash: &ContentHash) -> Result<ByteStream> {
        let bytes = self
            .blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant, *hash))
            .cloned()
            .ok_or_else(|| Error::not_found("blob", hash))?;
        Ok(futures_util::stream::iter([Ok(bytes)]).boxed())
    }

    async fn contains(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        Ok(self
            .blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(tenant, *hash)))
    }

    async fn delete(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        Ok(self
            .blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(tenant, *hash))
            .is_some())
    }
}

/// A blob store whose writes fail after `after` bytes (a full disk, a dropped connection): the inner store sees its
/// source fail there (so it must keep nothing), and the caller gets [`Error::Storage`] of kind `Unavailable`.
#[derive(Debug)]
pub struct FailingBlobStore {
    inner: Arc<dyn BlobStore>,
    after: u64,
}

impl FailingBlobStore {
    /// `inner`, failing every write after `after` bytes.
    pub fn new(inner: Arc<dyn BlobStore>, after: u64) -> Self {
        Self { inner, after }
    }
}

#[async_trait]
impl BlobStore for FailingBlobStore {
    async fn put(&self, tenant: TenantId, content: ByteStream, limit: u64) -> Result<StoredBlob> {
        let after = self.after;
        let mut seen = 0u64;
        let failing = content
            .map(move |chunk| {
                let chunk = chunk?;
                seen += chunk.len() as u64;
                if seen > after {
                    return Err(std::io::Error::other("the disk is full"));
                }
                Ok(chunk)
            })
            .boxed();
        match self.inner.put(tenant, failing, limit).await {
            Err(Error::Invalid { reason, .. }) if reason.contains("the disk is full") => {
                Err(Error::storage(
                    StorageErrorKind::Unavailable,
                    "the blob store failed mid-write",
                ))
            }
            other => other,
        }
    }

    async fn get(&self, tenant: TenantId, hash: &ContentHash) -> Result<ByteStream> {
        self.inner.get(tenant, hash).await
    }

    async fn contains(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        self.inner.contains(tenant, hash).await
    }

    async fn delete(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        self.inner.delete(tenant, hash).await
    }
}

/// `bytes` as a [`ByteStream`] of one chunk (for examples and tests).
pub fn stream_of(bytes: impl Into<bytes::Bytes>) -> ByteStream {
    futures_util::stream::iter([Ok(bytes.into())]).boxed()
}

/// Every byte of `stream`, collected (for examples and tests: the engine itself never buffers a whole file).
///
/// # Errors
///
/// [`Error::Storage`] when the stream fails.
pub async fn read_all(mut stream: ByteStream) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Error::storage_caused(StorageErrorKind::Other, "the stream failed", e))?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
