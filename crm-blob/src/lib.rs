//! # crm-blob: where the bytes of attachments live
//!
//! Two implementations of [`crm_core::sales::BlobStore`], the port the commerce service streams attachment bytes
//! through:
//!
//! - [`FsBlobStore`], the default: a directory, `<root>/<tenant>/<hh>/<sha256 hex>` (`hh` the first two hex digits).
//! - [`ObjectBlobStore`]: any [`object_store::ObjectStore`] (S3-compatible, GCS, Azure, the local filesystem,
//!   memory), `<tenant>/<hh>/<sha256 hex>` under it.
//!
//! Both stream: a file is written chunk by chunk to a temporary name while it is hashed and counted, and only then
//! moved to its content address (or dropped, when the tenant has those bytes already), so the same file twice is
//! stored once and a failed or refused upload (over the limit, a failing source, a failing disk or network) leaves
//! nothing behind. Reads stream too. Each tenant has its own space: one tenant can neither read nor probe another's
//! bytes. The I/O lives here, so crm-core stays free of it.

mod fs;
mod object;

pub use fs::FsBlobStore;
pub use object::ObjectBlobStore;
/// The `object_store` crate this one is built on, so a host builds its store (S3, GCS, Azure with that crate's
/// features enabled in its own manifest, or local files and memory) against the same version.
pub use object_store;

use crm_core::id::TenantId;
use crm_core::sales::ContentHash;

/// The content address of `hash` for `tenant`: `<tenant>/<hh>/<hex>`.
fn address(tenant: TenantId, hash: &ContentHash) -> [String; 3] {
    let hex = hash.to_string();
    [tenant.to_string(), hex[..2].to_string(), hex]
}
