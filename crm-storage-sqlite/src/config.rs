//! Configuration of the SQLite store.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Where and how the SQLite store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file; `None` keeps everything in memory (one connection, lost on drop).
    pub path: Option<PathBuf>,
    /// Reader connections (each on its own thread) for file databases. Reads never wait for the writer (WAL).
    pub readers: usize,
    /// How long a connection waits for a lock before failing with a retryable error.
    pub busy_timeout: Duration,
    /// `PRAGMA synchronous`: `NORMAL` (default with WAL: durable except on power loss of the last commits) or `FULL`.
    pub synchronous_full: bool,
    /// Open an existing file for reading only (see [`SqliteConfig::read_only`]).
    pub read_only: bool,
    /// The writer connection's page cache in MiB (`PRAGMA cache_size`; SQLite's own default is 2 MiB). Recording
    /// a document changes pages of several indexes keyed by partner and product, scattered over the file; with
    /// 2 MiB nearly each of those pages is read again through the operating system on every change. The readers
    /// keep SQLite's default, so a report's memory stays small. Taken as at least 1. The bundled SQLite pools the
    /// page caches of all the process's connections: a host connection that keeps a large cache full can leave the
    /// writer only part of this one, so a host frees its own after bulk work (`PRAGMA shrink_memory`).
    pub writer_cache_mib: u32,
    /// Copy the write-ahead log into a file database on a thread of its own (the default), so a commit seldom
    /// waits for a checkpoint; `false` keeps SQLite's own: the commit that fills the log past 1,000 pages copies
    /// it. Either way a log past a bound is copied by the commit that reaches it (see
    /// [`SqliteConfig::with_background_checkpoints`]).
    pub background_checkpoints: bool,
}

/// [`SqliteConfig::writer_cache_mib`] unless set.
pub const DEFAULT_WRITER_CACHE_MIB: u32 = 128;

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: None,
            readers: 2,
            busy_timeout: Duration::from_secs(5),
            synchronous_full: false,
            read_only: false,
            writer_cache_mib: DEFAULT_WRITER_CACHE_MIB,
            background_checkpoints: true,
        }
    }
}

impl SqliteConfig {
    /// A file database at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// An in-memory database.
    pub fn memory() -> Self {
        Self::default()
    }

    /// The writer's page cache in MiB (see [`SqliteConfig::writer_cache_mib`]).
    pub fn with_writer_cache_mib(mut self, mib: u32) -> Self {
        self.writer_cache_mib = mib;
        self
    }

    /// Whether checkpoints run on a thread of their own ([`SqliteConfig::background_checkpoints`]). With them,
    /// a commit that leaves the log past 1,000 pages asks that thread for a passive checkpoint and returns; only
    /// a log that still reaches 4,096 pages (16 MiB: writes that never pause, or a long read holding the
    /// checkpoint back) is checkpointed by the commit that reaches it, as SQLite does by itself at 1,000.
    ///
    /// ```
    /// use crm_storage_sqlite::SqliteConfig;
    /// let config = SqliteConfig::file("crm.sqlite").with_background_checkpoints(false);
    /// assert!(!config.background_checkpoints);
    /// assert!(SqliteConfig::file("crm.sqlite").background_checkpoints);
    /// ```
    pub fn with_background_checkpoints(mut self, on: bool) -> Self {
        self.background_checkpoints = on;
        self
    }

    /// Opens the existing file for reading only: it is neither created nor migrated, every connection is
    /// `query_only`, so a write fails and the file is left as it was (for dry runs such as `crm-rules replay`). The
    /// schema must be the current one.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}
