//! The filesystem blob store.

use async_trait::async_trait;
use crm_core::id::TenantId;
use crm_core::sales::{BlobStore, ByteStream, ContentDigest, ContentHash, StoredBlob};
use crm_core::{Error, Result, StorageErrorKind};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How many bytes a read hands out per chunk.
const READ_CHUNK: usize = 64 * 1024;

/// Attachment bytes in a directory: `<root>/<tenant>/<hh>/<sha256 hex>`, written through `<root>/tmp/` (a file is
/// streamed there, synced, then renamed to its address, or dropped when the address exists). Needs a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm_core::Result<()> {
/// use crm_blob::FsBlobStore;
/// use crm_core::conformance::model::{read_all, stream_of};
/// use crm_core::id::TenantId;
/// use crm_core::sales::BlobStore;
/// let dir = tempfile::tempdir().unwrap();
/// let blobs = FsBlobStore::new(dir.path());
/// let tenant = TenantId::new();
/// let blob = blobs.put(tenant, stream_of(&b"hello"[..]), 1024).await?;
/// assert_eq!(read_all(blobs.get(tenant, &blob.hash).await?).await?, b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::storage_caused(
        StorageErrorKind::Unavailable,
        format!("blob store: cannot {what} {}: {e}", path.display()),
        e,
    )
}

/// A temporary file removed when dropped unless it was moved to its address: on every error path, and when the
/// upload's future is dropped midway.
struct Temp {
    path: PathBuf,
    moved: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.moved {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl FsBlobStore {
    /// A store in `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory it keeps the bytes in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, tenant: TenantId, hash: &ContentHash) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(crate::address(tenant, hash));
        p
    }

    /// Streams `content` into `temp`, hashing and counting.
    async fn write(
        &self,
        temp: &Path,
        mut content: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredBlob> {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .await
            .map_err(|e| io_error("create", temp, e))?;
        let mut digest = ContentDigest::new(max_bytes);
        while let Some(chunk) = content.next().await {
            file.write_all(&digest.take(chunk)?)
                .await
                .map_err(|e| io_error("write", temp, e))?;
        }
        file.flush().await.map_err(|e| io_error("write", temp, e))?;
        file.sync_all()
            .await
            .map_err(|e| io_error("sync", temp, e))?;
        Ok(digest.finish())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, tenant: TenantId, content: ByteStream, limit: u64) -> Result<StoredBlob> {
        let dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_error("create", &dir, e))?;
        let mut temp = Temp {
            path: dir.join(format!("{}.part", uuid::Uuid::now_v7())),
            moved: false,
        };
        let blob = self.write(&temp.path, content, limit).await?;
        let dest = self.path_of(tenant, &blob.hash);
        let exists = tokio::fs::try_exists(&dest)
            .await
            .map_err(|e| io_error("read", &dest, e))?;
        if !exists {
            let parent = dest.parent().unwrap_or(&self.root);
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error("create", parent, e))?;
            // Atomic on one filesystem; a concurrent upload of the same bytes renames the same content over it.
            tokio::fs::rename(&temp.path, &dest)
                .await
                .map_err(|e| io_error("move", &dest, e))?;
            temp.moved = true;
            // The new name is durable once its directory is synced.
            #[cfg(unix)]
            tokio::fs::File::open(parent)
                .await
                .map_err(|e| io_error("open", parent, e))?
                .sync_all()
                .await
                .map_err(|e| io_error("sync", parent, e))?;
        }
        Ok(blob)
    }

    async fn get(&self, tenant: TenantId, hash: &ContentHash) -> Result<ByteStream> {
        let path = self.path_of(tenant, hash);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found("blob", hash))
            }
            Err(e) => return Err(io_error("open", &path, e)),
        };
        Ok(futures_util::stream::try_unfold(file, |mut f| async move {
            let mut buf = vec![0u8; READ_CHUNK];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((bytes::Bytes::from(buf), f)))
        })
        .boxed())
    }

    async fn contains(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        let path = self.path_of(tenant, hash);
        tokio::fs::try_exists(&path)
            .await
            .map_err(|e| io_error("read", &path, e))
    }

    async fn delete(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool> {
        let path = self.path_of(tenant, hash);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("delete", &path, e)),
        }
    }
}
