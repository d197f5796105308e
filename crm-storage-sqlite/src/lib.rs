//! # crm-storage-sqlite: the embedded default store
//!
//! The key design decision: **one writer thread, reader threads, WAL.** rusqlite is synchronous and SQLite allows
//! one writer at a time, so every write runs on a single dedicated thread (no "database is locked" between our own
//! writers) and reads run on reader threads that see the last committed state. Async callers only await a oneshot
//! channel, so no runtime is blocked and none is required.
//!
//! Money is stored as scaled integers (never REAL or NUMERIC affinity, which would turn it into floats), times as
//! integer microseconds, ids as 16-byte blobs, and every table has the tenant in its primary and foreign keys.
//! Migrations are embedded (`migrations/`) and applied with `rusqlite_migration` on open.
//!
//! ```
//! # futures::executor::block_on(async {
//! use crm_core::service::CrmService;
//! use crm_core::actor::Context;
//! use crm_core::id::{TenantId, UserId};
//! use crm_storage_sqlite::SqliteStore;
//! use std::sync::Arc;
//! let crm = CrmService::builder().store(Arc::new(SqliteStore::open_in_memory().unwrap())).build().unwrap();
//! let ctx = Context::user(TenantId::new(), UserId::new());
//! let pipeline = crm.setup_tenant(&ctx).await.unwrap();
//! assert_eq!(pipeline.stages().len(), 6);
//! # });
//! ```

mod commerce;
mod config;
mod error;
mod outbox;
mod pool;
mod rows;
mod store;

pub use config::SqliteConfig;
/// The rusqlite this adapter is built with (a host sharing a connection with the engine uses the same).
pub use rusqlite;
pub use store::SqliteStore;
