//! `Store` for SQLite.

use crate::config::SqliteConfig;
use crate::error::{corrupt, map};
use crate::pool::Threads;
use crate::rows::{blob, contains_pattern, doc, parse, uuid};
use crate::rows::{docs_of, docs_of_any};
use async_trait::async_trait;
use crm_core::dedupe::DedupeKey;
use crm_core::event::{CommentTarget, DomainEvent};
use crm_core::id::{PartnerId, PipelineId, TenantId};
use crm_core::lead::Lead;
use crm_core::money::{units_to_decimal, Currency};
use crm_core::partner::Partner;
use crm_core::pipeline::Pipeline;
use crm_core::request::Request;
use crm_core::store::{
    partner_search_text, request_sort_key, Board, BoardColumn, BulkLoad, BulkStep, ChangeSet,
    CurrencyTotal, Cursor, Key, KeyMatch, LeadQuery, LeadSort, Page, Record, Write,
};
use crm_core::{Error, Result, StorageErrorKind};
use crm_storage_sql::{fetch, Dialect};
use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, TransactionBehavior,
};
use rusqlite_migration::{Migrations, M};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// The embedded SQLite store: one writer thread, reader threads, WAL, embedded migrations.
///
/// ```
/// # futures::executor::block_on(async {
/// use crm_storage_sqlite::SqliteStore;
/// use crm_core::store::StoreExt;
/// use crm_core::id::TenantId;
/// let store = SqliteStore::open_in_memory().unwrap();
/// assert!(store.pipelines(TenantId::new()).await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    threads: Arc<Threads>,
    /// The directory of a store opened with [`SqliteStore::open_temporary`], removed when the last handle drops
    /// (after the connection threads were told to stop: declared after `threads`, so dropped after it).
    temporary: Option<Arc<tempfile::TempDir>>,
}

/// Migrations 1 (leads), 2 (commerce), 3 (outbox), 6 (sales), 7 (attachments), 8 (sales timers), 9 (portal) and
/// 10 and 11 (host references), 12 (settings), 13 (merges), 14 (subject keys), 15 (lead merges), 16 (the sales
/// roll-ups, `crm_storage_sql::rollup`), 17 (the segments' roll-ups), 18 (campaign holdouts), 19 (lead scores) and
/// 20 (a document's lines only in `document_lines`), 21 (the day roll-up), 22 (bulk loading), 23 (the campaign
/// leads' indexes), 24 (the lead's campaign as a column) and 25 (the campaign roll-ups), generated from `crm_storage_sql::schema` as PostgreSQL's are
/// (26 and 27 are SQLite's alone: 26 rebuilds the leads and pipelines keyed by rowid, [`wide_tables_with_rowid`], and
/// 27 indexes the partners' names, [`PARTNER_NAMES`]; 28, the customer year roll-up, is PostgreSQL's 25).
static GENERATED: std::sync::LazyLock<[String; 23]> = std::sync::LazyLock::new(|| {
    [
        crm_storage_sql::schema::init(Dialect::Sqlite),
        crm_storage_sql::schema::commerce(Dialect::Sqlite),
        crm_storage_sql::schema::outbox(Dialect::Sqlite),
        crm_storage_sql::schema::sales(Dialect::Sqlite),
        crm_storage_sql::schema::attachments(Dialect::Sqlite),
        crm_storage_sql::schema::sales_timers(Dialect::Sqlite),
        crm_storage_sql::schema::portal(Dialect::Sqlite),
        crm_storage_sql::schema::host_refs(Dialect::Sqlite),
        crm_storage_sql::schema::contact_and_lead_refs(Dialect::Sqlite),
        crm_storage_sql::schema::settings(Dialect::Sqlite),
        crm_storage_sql::schema::merges(Dialect::Sqlite),
        crm_storage_sql::schema::subject_keys(Dialect::Sqlite),
        crm_storage_sql::schema::lead_merges(Dialect::Sqlite),
        crm_storage_sql::rollup::schema(Dialect::Sqlite),
        crm_storage_sql::rollup::partner_schema(Dialect::Sqlite),
        crm_storage_sql::schema::holdouts(Dialect::Sqlite),
        crm_storage_sql::schema::lead_scores(Dialect::Sqlite),
        crm_storage_sql::schema::lines_only(Dialect::Sqlite),
        crm_storage_sql::rollup::day_schema(Dialect::Sqlite),
        crm_storage_sql::bulk::schema(Dialect::Sqlite),
        crm_storage_sql::schema::campaign_leads(Dialect::Sqlite),
        crm_storage_sql::schema::lead_campaign_column(Dialect::Sqlite),
        crm_storage_sql::rollup::campaign_schema(Dialect::Sqlite),
    ]
});

/// The score sort key of a lead row `l` (the `leads_by_score` index's expression).
static SCORE_KEY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crm_storage_sql::schema::lead_score_key(Dialect::Sqlite, "l.doc"));

/// The most writes a change set has to commit on the caller's thread (see `commit_changes`).
const SMALL_COMMIT: usize = 64;

/// How many migrations are SQL ([`migration_sql`]); migration 26 ([`wide_tables_with_rowid`]) is a hook after them,
/// and 27 ([`PARTNER_NAMES`]), 28 ([`YEARS`], the customer year roll-up), 29 ([`DOCUMENTS_COLUMNS_ONLY`]), 30
/// ([`BOUGHT_CATEGORIES_ONLY`]), 31 ([`NO_LINE_CATEGORY_INDEX`]) and 32 ([`TARGET_COUNTS`]) SQL again.
const SQL_MIGRATIONS: usize = 25;

/// How many migrations there are.
const MIGRATIONS: usize = SQL_MIGRATIONS + 7;

/// Migration 27: the index of the partners' names and merge marks a segment reads (`partners_names`; see the file).
const PARTNER_NAMES: &str = include_str!("../migrations/0027_partner_names.sql");

/// Migration 28: the customer year roll-up (`crm_storage_sql::rollup::YEARS`), filled from the documents already
/// recorded.
static YEARS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crm_storage_sql::rollup::year_schema(Dialect::Sqlite));

/// Migration 29: a document's stored JSON keeps only what its columns do not
/// (`crm_storage_sql::schema::documents_columns_only`).
static DOCUMENTS_COLUMNS_ONLY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crm_storage_sql::schema::documents_columns_only(Dialect::Sqlite));

/// Migration 30: the bought roll-up keeps categories only (`crm_storage_sql::rollup::bought_categories_only`).
static BOUGHT_CATEGORIES_ONLY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(crm_storage_sql::rollup::bought_categories_only);

/// Migration 31: the lines' category index gives way to the documents' day index
/// (`crm_storage_sql::schema::lines_without_category_index`).
static NO_LINE_CATEGORY_INDEX: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(crm_storage_sql::schema::lines_without_category_index);

/// Migration 32: the campaign report's counts of the targets (`crm_storage_sql::target_counts`), filled from the
/// targets already stored.
static TARGET_COUNTS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crm_storage_sql::target_counts::schema(Dialect::Sqlite));

/// The migrations' statements, in order.
fn migration_sql() -> [&'static str; SQL_MIGRATIONS] {
    [
        &GENERATED[0],
        &GENERATED[1],
        &GENERATED[2],
        include_str!("../migrations/0004_lead_campaign.sql"),
        include_str!("../migrations/0005_timers.sql"),
        &GENERATED[3],
        &GENERATED[4],
        &GENERATED[5],
        &GENERATED[6],
        &GENERATED[7],
        &GENERATED[8],
        &GENERATED[9],
        &GENERATED[10],
        &GENERATED[11],
        &GENERATED[12],
        &GENERATED[13],
        &GENERATED[14],
        &GENERATED[15],
        &GENERATED[16],
        &GENERATED[17],
        &GENERATED[18],
        &GENERATED[19],
        &GENERATED[20],
        &GENERATED[21],
        &GENERATED[22],
    ]
}

fn migrations() -> Migrations<'static> {
    let mut all: Vec<M<'static>> = migration_sql().into_iter().map(M::up).collect();
    all.push(M::up_with_hook("", wide_tables_with_rowid));
    all.push(M::up(PARTNER_NAMES));
    all.push(M::up(&YEARS));
    all.push(M::up(&DOCUMENTS_COLUMNS_ONLY));
    all.push(M::up(&BOUGHT_CATEGORIES_ONLY));
    all.push(M::up(&NO_LINE_CATEGORY_INDEX));
    all.push(M::up(&TARGET_COUNTS));
    Migrations::new(all)
}

/// The tables migration 26 keys by rowid: their rows carry a document of about 1 KB, which overflows a page's share
/// of a key. Partners (about 850 bytes a row, most within a page's share) stay keyed by `(tenant, id)`: keyed by
/// rowid, the segment at M, which seeks a partner per candidate in key order, took 0.91 s instead of 0.83 s (a
/// search of the key's index, then of the rowid).
const WIDE_TABLES: [&str; 2] = ["leads", "pipelines"];

/// Migration 26: each of [`WIDE_TABLES`] becomes a rowid table keyed by a unique index on `(tenant, id)`, its
/// columns, rows and indexes otherwise as they were (read from the schema, so the rebuild names every index the
/// earlier migrations made).
///
/// A lead's row is about 1 KB (its document), a quarter of a page; a pipeline's more. In a `WITHOUT ROWID` table the whole row is the b-tree's key, interior pages included: an interior page
/// holds a few keys, the tree is deep, and a row that overflows its page is read whole, overflow and all, for each
/// comparison of a search (`accessPayload` reads the overflow from the file, past the page cache: a system call a
/// comparison). Measured on a copy of M's leads: 20,000 random key lookups took 175 ms as `WITHOUT ROWID` and
/// 74 ms keyed by rowid (a 128 MiB cache, the file in the OS cache), in 397k pages against 263k. SQLite's own
/// advice keeps `WITHOUT ROWID` to rows under about a twentieth of a page.
///
/// Runs with foreign keys off ([`migrate`]): dropping an old table would otherwise check the rows referring to it.
fn wide_tables_with_rowid(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    WIDE_TABLES.iter().try_for_each(|t| with_rowid(tx, t))
}

/// Rebuilds `table` as a rowid table (see [`wide_tables_with_rowid`]); nothing when it is one already.
fn with_rowid(tx: &rusqlite::Transaction<'_>, table: &str) -> rusqlite_migration::HookResult {
    let definition: String = tx.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    let Some(keyed) = definition.trim_end().strip_suffix("WITHOUT ROWID") else {
        // Keyed by rowid already (a test's schema rewound to an earlier version): nothing to rebuild.
        return Ok(());
    };
    // `CREATE TABLE leads (…)` as the first migrations wrote it, or `"leads"` as a rename writes it.
    let quoted = format!("\"{table}\"");
    let body = keyed
        .strip_prefix("CREATE TABLE ")
        .and_then(|t| {
            t.strip_prefix(quoted.as_str())
                .or_else(|| t.strip_prefix(table))
        })
        .map(str::trim_start)
        .filter(|t| t.starts_with('('))
        .ok_or_else(|| {
            rusqlite_migration::HookError::Hook(format!(
                "unexpected definition of {table}: {definition}"
            ))
        })?;
    let indexes: Vec<String> = tx
        .prepare(
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL \
             ORDER BY name",
        )?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let columns = columns.join(", ");
    let mut batch = format!(
        "CREATE TABLE {table}_rowid {body};\n\
         INSERT INTO {table}_rowid ({columns}) SELECT {columns} FROM {table} ORDER BY tenant, id;\n\
         DROP TABLE {table};\n\
         ALTER TABLE {table}_rowid RENAME TO {table};\n"
    );
    for index in indexes {
        batch.push_str(&index);
        batch.push_str(";\n");
    }
    tx.execute_batch(&batch)?;
    Ok(())
}

/// Migrates `conn` to the latest schema, foreign-key enforcement off for the run and restored after: a migration
/// that rebuilds a table (26) drops the old one, and with enforcement on that drop deletes its rows first and
/// checks the rows referring to them (SQLite's procedure for other kinds of table schema changes turns it off).
/// The pragma cannot change inside a transaction, so it is set around the migrations, not in one.
fn migrate(conn: &mut Connection) -> Result<()> {
    let enforced: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(map)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(map)?;
    let migrated = migrations().to_latest(conn).map_err(|e| {
        Error::storage(
            StorageErrorKind::Config,
            format!("migrating the SQLite schema failed: {e}"),
        )
    });
    if enforced {
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(map)?;
    }
    migrated
}

/// Prepared statements each of the store's connections keeps: the engine runs a few hundred distinct statements,
/// and rusqlite's default of 16 let a mixed workload (a transition, a document, a report) evict and parse again the
/// ones the next call needs.
const STATEMENT_CACHE: usize = 256;

fn configure(conn: &Connection, config: &SqliteConfig, file: bool) -> Result<()> {
    conn.busy_timeout(config.busy_timeout).map_err(map)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if config.read_only {
        return conn.execute_batch("PRAGMA query_only = ON;").map_err(map);
    }
    if file {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(map)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::storage(
                StorageErrorKind::Config,
                format!("could not switch to WAL (journal mode is {mode})"),
            ));
        }
    }
    let sync = if config.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    // secure_delete: what a change removes (an erased person's values, a deleted key) is overwritten in the file,
    // not left in free space for a copy of the file to carry.
    let cache_kib = i64::from(config.writer_cache_mib.max(1)) * 1024;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync}; PRAGMA secure_delete = ON; \
         PRAGMA cache_size = -{cache_kib};"
    ))
    .map_err(map)
}

/// Fails unless the schema of `conn` is the current one: `why` says how to migrate it.
fn check_current(conn: &Connection, why: &str) -> Result<()> {
    let current = migrations().current_version(conn).map_err(|e| {
        Error::storage(
            StorageErrorKind::Config,
            format!("reading the schema version failed: {e}"),
        )
    })?;
    let latest = std::num::NonZeroUsize::new(MIGRATIONS)
        .map(rusqlite_migration::SchemaVersion::Inside)
        .unwrap_or(rusqlite_migration::SchemaVersion::NoneSet);
    if current != latest {
        return Err(Error::storage(
            StorageErrorKind::Config,
            format!("the schema is at {current}, not the current one: {why}"),
        ));
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database described by `config`; with
    /// [`SqliteConfig::read_only`], opens the existing file for reading only and changes nothing.
    pub fn open(config: SqliteConfig) -> Result<Self> {
        let flags = if config.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI
        };
        let (mut writer, readers) = match &config.path {
            None if config.read_only => {
                return Err(Error::invalid(
                    "read_only",
                    "an in-memory database has nothing to read: open a file read-only",
                ))
            }
            None => (Connection::open_in_memory().map_err(map)?, Vec::new()),
            Some(path) => {
                let w = Connection::open_with_flags(path, flags).map_err(|e| {
                    Error::storage(
                        StorageErrorKind::Config,
                        format!("cannot open SQLite file {}: {e}", path.display()),
                    )
                })?;
                (w, Vec::new())
            }
        };
        configure(&writer, &config, config.path.is_some())?;
        if config.read_only {
            check_current(
                &writer,
                "open the file once with SqliteStore::open_file so it is migrated",
            )?;
        } else {
            migrate(&mut writer)?;
            // A bulk load a crash left open is finished now: the indexes are built again and its tenants'
            // roll-ups rebuilt, before any reader connects.
            in_transaction(&mut writer, crate::commerce::bulk_recover)?;
        }
        let mut readers = readers;
        let mut inline = Vec::new();
        if let Some(path) = &config.path {
            // `config.readers` connections on their threads, as many again for short reads on the caller's thread.
            for i in 0..config.readers * 2 {
                let r = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(map)?;
                r.busy_timeout(config.busy_timeout).map_err(map)?;
                r.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                r.execute_batch("PRAGMA query_only = ON;").map_err(map)?;
                // Parse the schema now, not in the first query each connection happens to serve: with the tables
                // and indexes of every migration that parse is 0.5–1 ms, ten times a short report.
                r.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
                    .map_err(map)?;
                if i < config.readers {
                    readers.push(r);
                } else {
                    inline.push(r);
                }
            }
        }
        // The checkpointer's own connection, for a file the store writes.
        let checkpointer = match &config.path {
            Some(path) if config.background_checkpoints && !config.read_only => {
                let c = Connection::open_with_flags(path, flags).map_err(map)?;
                c.busy_timeout(config.busy_timeout).map_err(map)?;
                Some(c)
            }
            _ => None,
        };
        Ok(Self {
            threads: Arc::new(Threads::start(writer, readers, inline, checkpointer)),
            temporary: None,
        })
    }

    /// A store on a connection the host holds and shares with its own work on the same file: when the host has a
    /// transaction open on it (`BEGIN`), every engine change is a savepoint inside it, so the host's ERP writes and
    /// the engine's records, events and outbox messages commit or roll back together (no back-office
    /// synchronisation); reads see the host's uncommitted rows. Engine calls run on the caller's thread while they
    /// hold the connection's lock, one at a time.
    ///
    /// The schema is migrated here when the connection has no transaction open; inside one, it must already be
    /// current (else [`Error::Storage`] of kind `Config`).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use crm_storage_sqlite::{rusqlite::Connection, SqliteStore};
    /// use crm_core::store::StoreExt;
    /// use crm_core::id::TenantId;
    /// use std::sync::{Arc, Mutex};
    /// let conn = Arc::new(Mutex::new(Connection::open_in_memory().unwrap()));
    /// let store = SqliteStore::on_host_connection(conn.clone()).unwrap();
    /// conn.lock().unwrap().execute_batch("BEGIN").unwrap();
    /// // … the host's statements, and the engine's changes through `store` …
    /// assert!(store.pipelines(TenantId::new()).await.unwrap().is_empty());
    /// conn.lock().unwrap().execute_batch("ROLLBACK").unwrap();
    /// # });
    /// ```
    pub fn on_host_connection(conn: Arc<std::sync::Mutex<Connection>>) -> Result<Self> {
        {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            if c.is_autocommit() {
                migrate(&mut c)?;
            } else {
                check_current(
                    &c,
                    "open the file once with SqliteStore::open_file (or lend the connection before BEGIN) so it is migrated",
                )?;
            }
        }
        Ok(Self {
            threads: Arc::new(Threads::shared(conn)),
            temporary: None,
        })
    }

    /// An in-memory database (for tests and examples).
    pub fn open_in_memory() -> Result<Self> {
        Self::open(SqliteConfig::memory())
    }

    /// A database file (WAL, reader threads: everything a file store does) in a fresh directory under the system's
    /// temporary directory, removed with its files when the last clone of the store is dropped: for tests and
    /// throwaway runs that need a file's behaviour without leaving one behind.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use crm_storage_sqlite::SqliteStore;
    /// use crm_core::store::StoreExt;
    /// use crm_core::id::TenantId;
    /// let store = SqliteStore::open_temporary().unwrap();
    /// let dir = store.temporary_dir().unwrap().to_path_buf();
    /// assert!(dir.join("crm.sqlite").exists());
    /// assert!(store.pipelines(TenantId::new()).await.unwrap().is_empty());
    /// drop(store);
    /// assert!(!dir.exists());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] of kind `Config` when the directory cannot be made, else as [`SqliteStore::open`].
    pub fn open_temporary() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("crm-sqlite-")
            .tempdir()
            .map_err(|e| {
                Error::storage(
                    StorageErrorKind::Config,
                    format!("making a temporary directory failed: {e}"),
                )
            })?;
        let mut store = Self::open(SqliteConfig::file(dir.path().join("crm.sqlite")))?;
        store.temporary = Some(Arc::new(dir));
        Ok(store)
    }

    /// The directory of a store opened with [`SqliteStore::open_temporary`] (`None` for any other).
    pub fn temporary_dir(&self) -> Option<&std::path::Path> {
        self.temporary.as_deref().map(tempfile::TempDir::path)
    }

    /// A database file at `path`, created and migrated if needed.
    pub fn open_file(path: impl Into<std::path::PathBuf>) -> Result<Self> {
        Self::open(SqliteConfig::file(path))
    }

    /// Runs a closure on the writer connection (for adapter extensions such as the outbox).
    pub async fn with_writer<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.threads.write(f).await
    }

    /// Runs a closure on a reader connection (for adapter extensions and benchmarks' baselines).
    pub async fn with_reader<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.threads.read(f).await
    }
}

/// The rows of each statement, in order, on one connection (one snapshot).
/// Each statement's rows; several in one read transaction (a savepoint, which nests in a host's transaction): one
/// snapshot for the batch, and the file's read locks taken once instead of once per statement.
fn cells_of_each(
    c: &mut Connection,
    sqls: &[crm_storage_sql::Sql],
) -> Result<Vec<Vec<Vec<crm_storage_sql::Cell>>>> {
    let each = |c: &Connection| -> Result<Vec<_>> {
        sqls.iter()
            .map(|sql| crate::rows::cells_of(c, sql, false))
            .collect()
    };
    if sqls.len() < 2 {
        return each(c);
    }
    let sp = c.savepoint().map_err(map)?;
    let out = each(&sp)?;
    sp.commit().map_err(map)?;
    Ok(out)
}

#[async_trait]
impl crm_storage_sql::Runner for SqliteStore {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn rows(
        &self,
        sql: crm_storage_sql::Sql,
        once: bool,
    ) -> Result<Vec<Vec<crm_storage_sql::Cell>>> {
        self.threads
            .read(move |c| crate::rows::cells_of(c, &sql, once))
            .await
    }

    async fn rows_batch(
        &self,
        sqls: Vec<crm_storage_sql::Sql>,
    ) -> Result<Vec<Vec<Vec<crm_storage_sql::Cell>>>> {
        self.threads.read(move |c| cells_of_each(c, &sqls)).await
    }

    async fn rows_short(
        &self,
        sqls: Vec<crm_storage_sql::Sql>,
    ) -> Result<Vec<Vec<Vec<crm_storage_sql::Cell>>>> {
        self.threads
            .read_short(move |c| cells_of_each(c, &sqls))
            .await
    }

    async fn rows_merged(
        &self,
        sqls: Vec<crm_storage_sql::Sql>,
        keys: usize,
    ) -> Result<crm_storage_sql::Merged> {
        self.threads
            .read(move |c| crate::rows::merged_of(c, &sqls, keys))
            .await
    }

    async fn write_rows(
        &self,
        sql: crm_storage_sql::Sql,
    ) -> Result<Vec<Vec<crm_storage_sql::Cell>>> {
        self.threads
            .write(move |c| crate::rows::cells_of(c, &sql, false))
            .await
    }

    async fn execute(&self, sql: crm_storage_sql::Sql) -> Result<u64> {
        self.threads
            .write(move |c| crate::rows::execute(c, &sql))
            .await
    }

    async fn execute_all(&self, sqls: Vec<crm_storage_sql::Sql>) -> Result<Vec<u64>> {
        self.threads
            .write(move |c| {
                in_transaction(c, |tx| {
                    sqls.iter()
                        .map(|sql| crate::rows::execute(tx, sql))
                        .collect()
                })
            })
            .await
    }
}

/// Runs `f` in one transaction on `conn`; on a connection where the host has a transaction open (see
/// [`SqliteStore::on_host_connection`]), in a savepoint of it.
fn in_transaction<T>(conn: &mut Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    if !conn.is_autocommit() {
        let sp = conn.savepoint_with_name("crm_change").map_err(map)?;
        let out = f(&sp)?;
        sp.commit().map_err(map)?;
        return Ok(out);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map)?;
    let out = f(&tx)?;
    tx.commit().map_err(map)?;
    Ok(out)
}

// ------------------------------------------------------------------------------------------------ writes

fn already(e: rusqlite::Error, entity: &'static str, id: impl std::fmt::Display) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        ) {
            return Error::AlreadyExists {
                entity,
                key: id.to_string(),
            };
        }
    }
    map(e)
}

/// After an UPDATE matched no row: the record is missing, or someone else changed it.
fn conflict_or_missing(
    tx: &Connection,
    table: &str,
    entity: &'static str,
    tenant: &TenantId,
    id: &Uuid,
    expected: u64,
) -> Error {
    let sql = format!("SELECT version FROM {table} WHERE tenant = ?1 AND id = ?2");
    match tx
        .query_row(&sql, params![blob(tenant.as_uuid()), blob(id)], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
    {
        Ok(Some(actual)) => Error::Conflict {
            entity,
            id: id.to_string(),
            expected,
            actual: actual as u64,
        },
        Ok(None) => Error::not_found(entity, id),
        Err(e) => map(e),
    }
}

/// Replaces a partner's duplicate keys and its contacts' host references (one another partner's contact has is
/// `AlreadyExists`).
/// A `fresh` partner (just inserted) has none to delete.
fn put_partner_keys(tx: &Connection, p: &Partner, keys: &[DedupeKey], fresh: bool) -> Result<()> {
    let t = blob(p.tenant().as_uuid());
    let id = blob(p.id().as_uuid());
    let stale = if fresh {
        &[][..]
    } else {
        &["partner_keys", "contact_refs"][..]
    };
    for table in stale {
        let sql = format!("DELETE FROM {table} WHERE tenant = ?1 AND partner = ?2");
        tx.prepare_cached(&sql)
            .and_then(|mut s| s.execute(params![t, id]))
            .map_err(map)?;
    }
    let mut ins = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO partner_keys (tenant, key, partner) VALUES (?1, ?2, ?3)",
        )
        .map_err(map)?;
    for k in keys {
        ins.execute(params![t, k.encoded(), id]).map_err(map)?;
    }
    let mut refs = tx
        .prepare_cached(
            "INSERT INTO contact_refs (tenant, host_ref, partner, contact) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(map)?;
    for c in p.contacts() {
        if let Some(r) = c.host_ref.as_deref() {
            refs.execute(params![t, r, id, blob(c.id.as_uuid())])
                .map_err(|e| already(e, "contact", r))?;
        }
    }
    Ok(())
}

/// Writes a lead's tags; for an update (`replace`), only the difference from the stored ones: a stage move keeps
/// the tags, and deleting and inserting them again rewrote both of the table's b-trees on every move.
fn put_lead_tags(tx: &Connection, l: &Lead, replace: bool) -> Result<()> {
    let t = blob(l.tenant().as_uuid());
    let id = blob(l.id().as_uuid());
    let mut new: std::collections::BTreeSet<&str> = l.tags().iter().map(String::as_str).collect();
    if replace {
        let old: Vec<String> = tx
            .prepare_cached("SELECT tag FROM lead_tags WHERE tenant = ?1 AND lead = ?2")
            .and_then(|mut s| {
                s.query_map(params![t, id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(map)?;
        for tag in old {
            if !new.remove(tag.as_str()) {
                tx.prepare_cached(
                    "DELETE FROM lead_tags WHERE tenant = ?1 AND tag = ?2 AND lead = ?3",
                )
                .and_then(|mut s| s.execute(params![t, tag, id]))
                .map_err(map)?;
            }
        }
    }
    let mut ins = tx
        .prepare_cached("INSERT INTO lead_tags (tenant, tag, lead) VALUES (?1, ?2, ?3)")
        .map_err(map)?;
    for tag in new {
        ins.execute(params![t, tag, id]).map_err(map)?;
    }
    Ok(())
}

fn opt_blob(u: Option<&Uuid>) -> Option<[u8; 16]> {
    u.map(blob)
}

fn lead_columns(l: &Lead) -> (Option<&'static str>, Option<i64>, i64) {
    let currency = l.expected_revenue().map(|m| m.currency().code());
    let units = l.expected_revenue().map(|m| m.to_units());
    (currency, units, LeadSort::ExpectedRevenueDesc.key(l))
}

fn apply_write(tx: &Connection, w: &Write) -> Result<()> {
    match w {
        Write::InsertPartner { partner: p, keys } => {
            tx.prepare_cached(
                "INSERT INTO partners (tenant, id, name, search, grp, owner, version, doc, host_ref, merged_into) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| s.execute(params_from_iter(partner_row(p))))
            .map_err(|e| already(e, "partner", p.id().as_uuid()))?;
            put_partner_keys(tx, p, keys, true)
        }
        Write::UpdatePartner {
            partner: p,
            expected_version,
            keys,
        } => {
            update_versioned(
                tx,
                "UPDATE partners SET name = ?3, search = ?4, grp = ?5, owner = ?6, version = ?7, doc = ?8, \
                 host_ref = ?9, merged_into = ?10 WHERE tenant = ?1 AND id = ?2 AND version = ?11",
                partner_row(p),
                Versioned::new("partners", "partner", p.tenant(), p.id().as_uuid(), p.version()),
                *expected_version,
            )?;
            put_partner_keys(tx, p, keys, false)
        }
        Write::InsertPipeline(p) => tx
            .prepare_cached("INSERT INTO pipelines (tenant, id, created_at, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| {
                s.execute(params![
                    blob(p.tenant().as_uuid()),
                    blob(p.id().as_uuid()),
                    p.created_at().timestamp_micros(),
                    p.version() as i64,
                    doc(p)
                ])
            })
            .map(|_| ())
            .map_err(|e| already(e, "pipeline", p.id().as_uuid())),
        Write::InsertLostReason(r) => tx
            .prepare_cached("INSERT INTO lost_reasons (tenant, id, doc) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![blob(r.tenant().as_uuid()), blob(r.id().as_uuid()), doc(r)]))
            .map(|_| ())
            .map_err(|e| already(e, "lost reason", r.id().as_uuid())),
        Write::InsertLead(l) => {
            tx.prepare_cached(
                "INSERT INTO leads (tenant, id, partner, pipeline, stage, status, owner, currency, expected_units, revenue_key, \
                 probability, created_at, updated_at, title_lc, version, doc, host_ref, campaign) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )
            .and_then(|mut s| s.execute(params_from_iter(lead_row(l, true))))
            .map_err(|e| already(e, "lead", l.id().as_uuid()))?;
            put_lead_tags(tx, l, false)
        }
        Write::UpdateLead { lead: l, expected_version } => {
            update_lead(tx, l, *expected_version)?;
            put_lead_tags(tx, l, true)
        }
        Write::InsertRequest(r) => tx
            .prepare_cached(
                "INSERT INTO requests (tenant, id, lead, partner, assignee, active, due_key, version, doc, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| s.execute(params_from_iter(request_row(r))))
            .map(|_| ())
            .map_err(|e| already(e, "request", r.id().as_uuid())),
        Write::UpdateRequest {
            request: r,
            expected_version,
        } => update_versioned(
            tx,
            "UPDATE requests SET lead = ?3, partner = ?4, assignee = ?5, active = ?6, due_key = ?7, version = ?8, doc = ?9, \
             created_at = ?10 WHERE tenant = ?1 AND id = ?2 AND version = ?11",
            request_row(r),
            Versioned::new("requests", "request", r.tenant(), r.id().as_uuid(), r.version()),
            *expected_version,
        ),
        Write::InsertComment(c) => {
            let target = match c.target() {
                CommentTarget::Lead(id) => *id.as_uuid(),
                CommentTarget::Partner(id) => *id.as_uuid(),
                CommentTarget::Request(id) => *id.as_uuid(),
            };
            tx.prepare_cached("INSERT INTO comments (tenant, id, target, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut s| {
                    s.execute(params![
                        blob(c.tenant().as_uuid()),
                        blob(c.id().as_uuid()),
                        blob(&target),
                        c.created_at().timestamp_micros(),
                        doc(c)
                    ])
                })
                .map(|_| ())
                .map_err(|e| already(e, "comment", c.id().as_uuid()))
        }
        Write::AppendEvent(e) => tx
            .prepare_cached("INSERT INTO events (tenant, id, at, lead, partner, request, kind, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .and_then(|mut s| s.execute(params_from_iter(event_row(e))))
            .map(|_| ())
            .map_err(|err| already(err, "event", e.id.as_uuid())),
        Write::AppendStageHistory(h) => tx
            .prepare_cached("INSERT INTO stage_history (tenant, lead, pipeline, to_stage, status, at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .and_then(|mut s| {
                s.execute(params![
                    blob(h.tenant.as_uuid()),
                    blob(h.lead.as_uuid()),
                    blob(h.pipeline.as_uuid()),
                    blob(h.to.as_uuid()),
                    h.status.code(),
                    h.at.timestamp_micros(),
                    doc(h)
                ])
            })
            .map(|_| ())
            .map_err(map),
        Write::Commerce(c) => crate::commerce::apply(tx, c),
        Write::PutSetting(setting) => tx
            .prepare_cached(
                "INSERT INTO settings (tenant, key, doc) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant, key) DO UPDATE SET doc = excluded.doc",
            )
            .and_then(|mut s| {
                s.execute(params![blob(setting.tenant().as_uuid()), setting.key(), doc(setting)])
            })
            .map(|_| ())
            .map_err(map),
        Write::EnqueueOutbox(m) => crate::outbox::enqueue(tx, m),
        Write::Repoint { .. }
        | Write::RepointLead { .. }
        | Write::InsertMerge(_)
        | Write::UpdateMerge { .. }
        | Write::InsertLeadMerge(_)
        | Write::UpdateLeadMerge { .. } => crate::commerce::merge_write(tx, w),
        Write::InsertSubjectKey(k) => crate::commerce::insert_key(tx, k),
        Write::Erase(e) => crate::commerce::erase(tx, e),
        other => Err(Error::invalid(
            "writes",
            format!("this SQLite store does not support the write {:?}", std::mem::discriminant(other)),
        )),
    }
}

/// The values of a row, in its statement's parameter order.
type Row<'a> = Vec<Box<dyn rusqlite::ToSql + 'a>>;

/// A partner's row: tenant, id, name, search, grp, owner, version, doc, host_ref, merged_into.
fn partner_row(p: &Partner) -> Row<'_> {
    vec![
        Box::new(blob(p.tenant().as_uuid())),
        Box::new(blob(p.id().as_uuid())),
        Box::new(p.name()),
        Box::new(partner_search_text(p)),
        Box::new(p.group()),
        Box::new(opt_blob(p.owner().as_ref().map(|o| o.as_uuid()))),
        Box::new(p.version() as i64),
        Box::new(doc(p)),
        Box::new(p.host_ref()),
        Box::new(opt_blob(p.merged_into().as_ref().map(|o| o.as_uuid()))),
    ]
}

/// A lead's row: tenant, id, partner, pipeline, stage, status, owner, currency, expected_units, revenue_key,
/// probability, created_at (only with `created`: an update leaves it), updated_at, title_lc, version, doc, host_ref,
/// campaign.
/// The lead columns an update may change besides `version` and `doc`, each in one or more indexes.
const LEAD_COLUMNS: [&str; 13] = [
    "partner",
    "pipeline",
    "stage",
    "status",
    "owner",
    "currency",
    "expected_units",
    "revenue_key",
    "probability",
    "updated_at",
    "title_lc",
    "host_ref",
    "campaign",
];

/// `l`'s values of [`LEAD_COLUMNS`], in order.
fn lead_values(l: &Lead) -> [Value; 13] {
    let (currency, units, rkey) = lead_columns(l);
    let id = |u: &Uuid| Value::Blob(blob(u).to_vec());
    [
        id(l.partner().as_uuid()),
        id(l.pipeline().as_uuid()),
        id(l.stage().as_uuid()),
        Value::Integer(l.status().kind().code().into()),
        l.owner().map_or(Value::Null, |o| id(o.as_uuid())),
        currency.map_or(Value::Null, |c| Value::Text(c.to_string())),
        units.map_or(Value::Null, Value::Integer),
        Value::Integer(rkey),
        Value::Integer(l.probability().into()),
        Value::Integer(l.updated_at().timestamp_micros()),
        Value::Text(l.title().to_lowercase()),
        l.host_ref()
            .map_or(Value::Null, |r| Value::Text(r.to_string())),
        l.source().campaign.map_or(Value::Null, |c| id(c.as_uuid())),
    ]
}

/// Updates a lead (version-checked), setting only the indexed columns whose values changed: SQLite rewrites the
/// entry of every index on a column an `UPDATE` sets, equal value or not, so a stage move that set all twelve
/// wrote the owner's, the partner's and the revenue index's pages as well. The row's current values are read
/// first, from the page the update writes.
fn update_lead(tx: &Connection, l: &Lead, expected: u64) -> Result<()> {
    crm_storage_sql::check_next_version("lead", l.version(), expected)?;
    let t = blob(l.tenant().as_uuid());
    let id = blob(l.id().as_uuid());
    let old: Option<Vec<Value>> = tx
        .prepare_cached(&format!(
            "SELECT {} FROM leads WHERE tenant = ?1 AND id = ?2 AND version = ?3",
            LEAD_COLUMNS.join(", ")
        ))
        .and_then(|mut s| {
            s.query_row(params![t, id, expected as i64], |r| {
                (0..LEAD_COLUMNS.len())
                    .map(|i| r.get::<_, Value>(i))
                    .collect()
            })
            .optional()
        })
        .map_err(map)?;
    let missing =
        || conflict_or_missing(tx, "leads", "lead", &l.tenant(), l.id().as_uuid(), expected);
    let Some(old) = old else {
        return Err(missing());
    };
    let mut set = vec!["version = ?4".to_string(), "doc = ?5".to_string()];
    let mut values: Vec<Value> = vec![
        Value::Blob(t.to_vec()),
        Value::Blob(id.to_vec()),
        Value::Integer(expected as i64),
        Value::Integer(l.version() as i64),
        Value::Text(doc(l)),
    ];
    for ((column, new), old) in LEAD_COLUMNS.iter().zip(lead_values(l)).zip(old) {
        if new != old {
            values.push(new);
            set.push(format!("{column} = ?{}", values.len()));
        }
    }
    let n = tx
        .prepare_cached(&format!(
            "UPDATE leads SET {} WHERE tenant = ?1 AND id = ?2 AND version = ?3",
            set.join(", ")
        ))
        .and_then(|mut s| s.execute(params_from_iter(values)))
        .map_err(map)?;
    if n == 0 {
        return Err(missing());
    }
    Ok(())
}

fn lead_row(l: &Lead, created: bool) -> Row<'_> {
    let (currency, units, rkey) = lead_columns(l);
    let mut row: Row<'_> = vec![
        Box::new(blob(l.tenant().as_uuid())),
        Box::new(blob(l.id().as_uuid())),
        Box::new(blob(l.partner().as_uuid())),
        Box::new(blob(l.pipeline().as_uuid())),
        Box::new(blob(l.stage().as_uuid())),
        Box::new(l.status().kind().code()),
        Box::new(opt_blob(l.owner().as_ref().map(|o| o.as_uuid()))),
        Box::new(currency),
        Box::new(units),
        Box::new(rkey),
        Box::new(l.probability()),
    ];
    if created {
        row.push(Box::new(l.created_at().timestamp_micros()));
    }
    row.push(Box::new(l.updated_at().timestamp_micros()));
    row.push(Box::new(l.title().to_lowercase()));
    row.push(Box::new(l.version() as i64));
    row.push(Box::new(doc(l)));
    row.push(Box::new(l.host_ref()));
    row.push(Box::new(opt_blob(
        l.source().campaign.as_ref().map(|c| c.as_uuid()),
    )));
    row
}

/// A request's row: tenant, id, lead, partner, assignee, active, due_key, version, doc, created_at.
fn request_row(r: &Request) -> Row<'_> {
    vec![
        Box::new(blob(r.tenant().as_uuid())),
        Box::new(blob(r.id().as_uuid())),
        Box::new(r.lead().map(|l| blob(l.as_uuid()))),
        Box::new(r.partner().map(|p| blob(p.as_uuid()))),
        Box::new(blob(r.assignee().as_uuid())),
        Box::new(r.status().is_active() as i64),
        Box::new(request_sort_key(r)),
        Box::new(r.version() as i64),
        Box::new(doc(r)),
        Box::new(r.created_at().timestamp_micros()),
    ]
}

/// An event's row: tenant, id, at, lead, partner, request, kind, doc.
fn event_row(e: &DomainEvent) -> Row<'_> {
    let subject = |x: Option<&Uuid>| Box::new(opt_blob(x));
    vec![
        Box::new(blob(e.tenant.as_uuid())),
        Box::new(blob(e.id.as_uuid())),
        Box::new(e.at.timestamp_micros()),
        subject(e.subject.lead.as_ref().map(|x| x.as_uuid())),
        subject(e.subject.partner.as_ref().map(|x| x.as_uuid())),
        subject(e.subject.request.as_ref().map(|x| x.as_uuid())),
        Box::new(e.kind.stored_name()),
        Box::new(doc(e)),
    ]
}

/// The stored row a versioned update replaces: its table, entity name, key and new version.
struct Versioned<'a> {
    table: &'static str,
    entity: &'static str,
    tenant: TenantId,
    id: &'a Uuid,
    version: u64,
}

impl<'a> Versioned<'a> {
    fn new(
        table: &'static str,
        entity: &'static str,
        tenant: TenantId,
        id: &'a Uuid,
        version: u64,
    ) -> Self {
        Self {
            table,
            entity,
            tenant,
            id,
            version,
        }
    }
}

/// Runs `sql` with `row` then `expected` as its parameters, when the record's new version follows `expected`:
/// conflict (or not found) when no stored row had that version.
fn update_versioned(
    tx: &Connection,
    sql: &str,
    mut row: Row<'_>,
    target: Versioned<'_>,
    expected: u64,
) -> Result<()> {
    crm_storage_sql::check_next_version(target.entity, target.version, expected)?;
    row.push(Box::new(expected as i64));
    let n = tx
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params_from_iter(row)))
        .map_err(map)?;
    if n == 0 {
        return Err(conflict_or_missing(
            tx,
            target.table,
            target.entity,
            &target.tenant,
            target.id,
            expected,
        ));
    }
    Ok(())
}

/// Applies a change set in one transaction; on a connection where the host has a transaction open (see
/// [`SqliteStore::on_host_connection`]), in a savepoint of it, so a failed change leaves the host's transaction
/// usable and a host's rollback takes the change with it.
fn apply_all(conn: &mut Connection, tenant: TenantId, changes: &ChangeSet) -> Result<()> {
    changes.check(tenant)?;
    let hosted = !conn.is_autocommit();
    in_transaction(conn, |tx| {
        changes.writes().iter().try_for_each(|w| apply_write(tx, w))
    })?;
    if !hosted
        && changes
            .writes()
            .iter()
            .any(|w| matches!(w, Write::Erase(_)))
    {
        // The pages the erasure replaced are still in the write-ahead log until a checkpoint copies the new ones
        // into the database and truncates it (in a host's transaction, the host checkpoints after it commits).
        crate::pool::checkpoint_truncate(conn, TRUNCATE_PATIENCE).map_err(map)?;
    }
    Ok(())
}

/// How long a truncating checkpoint (after an erasure or a bulk load's finish) is tried again while the
/// checkpointer's thread runs one.
const TRUNCATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies an ingest's writes in one transaction: each document's and campaign target's rows without their roll-up
/// statements, then the batch's documents added to the roll-ups and its targets to the campaign report's counts a
/// few hundred per statement, unless the tenant has a bulk load open (whose finish rebuilds them).
fn ingest_all(conn: &mut Connection, tenant: TenantId, changes: &ChangeSet) -> Result<()> {
    use crm_core::commerce::CommerceWrite;
    changes.check(tenant)?;
    in_transaction(conn, |tx| {
        let mut documents = Vec::new();
        let mut targets = Vec::new();
        for w in changes.writes() {
            match w {
                Write::Commerce(c) => {
                    match c {
                        CommerceWrite::InsertDocument(d) => documents.push(*d.id().as_uuid()),
                        CommerceWrite::InsertCampaignTarget(t) => {
                            targets.push((*t.campaign().as_uuid(), *t.partner().as_uuid()))
                        }
                        _ => {}
                    }
                    crate::commerce::apply_ingest(tx, c)?;
                }
                other => apply_write(tx, other)?,
            }
        }
        if (documents.is_empty() && targets.is_empty()) || crate::commerce::bulk_open(tx, tenant)? {
            return Ok(());
        }
        for sql in
            crm_storage_sql::rollup::apply_ingested(Dialect::Sqlite, tenant, &documents, &targets)
        {
            crate::rows::execute(tx, &sql)?;
        }
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------------ reads

fn tb(t: &TenantId) -> Vec<u8> {
    blob(t.as_uuid()).to_vec()
}

fn one_doc<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    tenant: &TenantId,
    id: &Uuid,
    entity: &'static str,
) -> Result<T> {
    let text: Option<String> = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(params![blob(tenant.as_uuid()), blob(id)], |r| r.get(0))
                .optional()
        })
        .map_err(map)?;
    match text {
        Some(t) => parse(entity, &t),
        None => Err(Error::not_found(entity, id)),
    }
}

fn docs<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    entity: &str,
) -> Result<Vec<T>> {
    #[cfg(test)]
    plan_tests::record(sql);
    let mut stmt = conn.prepare_cached(sql).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0))
        .map_err(map)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(parse(entity, &r.map_err(map)?)?);
    }
    Ok(out)
}

/// Splits `limit + 1` fetched rows into a page, with a cursor after the last returned item.
fn page_of<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}

fn keyset(
    sql: &mut String,
    params: &mut Vec<Value>,
    key_col: &str,
    id_col: &str,
    after: Option<&Cursor>,
    descending: bool,
) -> Result<()> {
    if let Some(c) = after {
        let (k, id) = c.decode()?;
        let op = if descending { "<" } else { ">" };
        sql.push_str(&format!(
            " AND ({key_col} {op} ? OR ({key_col} = ? AND {id_col} {op} ?))"
        ));
        params.push(Value::Integer(k));
        params.push(Value::Integer(k));
        params.push(Value::Blob(blob(&id).to_vec()));
    }
    let dir = if descending { "DESC" } else { "ASC" };
    sql.push_str(&format!(" ORDER BY {key_col} {dir}, {id_col} {dir}"));
    Ok(())
}

fn query_leads(conn: &Connection, tenant: TenantId, q: &LeadQuery) -> Result<Page<Lead>> {
    q.page.validate()?;
    let mut sql = String::from("SELECT l.doc FROM leads l WHERE l.tenant = ?");
    let mut p: Vec<Value> = vec![Value::Blob(tb(&tenant))];
    let mut eq = |col: &str, v: Option<Value>, sql: &mut String| {
        if let Some(v) = v {
            sql.push_str(&format!(" AND l.{col} = ?"));
            p.push(v);
        }
    };
    let b = |u: &Uuid| Value::Blob(blob(u).to_vec());
    eq("pipeline", q.pipeline.map(|x| b(x.as_uuid())), &mut sql);
    eq("stage", q.stage.map(|x| b(x.as_uuid())), &mut sql);
    eq(
        "status",
        q.status.map(|s| Value::Integer(s.code() as i64)),
        &mut sql,
    );
    if q.status.is_none() {
        // Merged leads are tombstones: listed only when asked for by status.
        sql.push_str(" AND l.status <> 3");
    }
    eq("owner", q.owner.map(|x| b(x.as_uuid())), &mut sql);
    eq("partner", q.partner.map(|x| b(x.as_uuid())), &mut sql);
    if let Some(tag) = q.tag_needle() {
        sql.push_str(" AND EXISTS (SELECT 1 FROM lead_tags t WHERE t.tenant = l.tenant AND t.tag = ? AND t.lead = l.id)");
        p.push(Value::Text(tag));
    }
    if let Some(t) = q.updated_before {
        sql.push_str(" AND l.updated_at < ?");
        p.push(Value::Integer(t.timestamp_micros()));
    }
    if let Some(d) = q.close_before {
        // ISO dates compare as text: the expression of the `leads_close` index (migration 0005).
        sql.push_str(" AND json_extract(l.doc, '$.expected_close') < ?");
        p.push(Value::Text(d.format("%Y-%m-%d").to_string()));
    }
    if let Some(needle) = q.text_needle() {
        let pat = contains_pattern(&needle);
        sql.push_str(
            " AND (l.title_lc LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM partners pa WHERE pa.tenant = l.tenant \
             AND pa.id = l.partner AND pa.search LIKE ? ESCAPE '\\'))",
        );
        p.push(Value::Text(pat.clone()));
        p.push(Value::Text(pat));
    }
    let col = match q.sort {
        LeadSort::CreatedDesc | LeadSort::CreatedAsc => "l.created_at",
        LeadSort::UpdatedDesc => "l.updated_at",
        LeadSort::ExpectedRevenueDesc => "l.revenue_key",
        LeadSort::ScoreDesc => SCORE_KEY.as_str(),
    };
    keyset(
        &mut sql,
        &mut p,
        col,
        "l.id",
        q.page.after.as_ref(),
        q.sort.descending(),
    )?;
    sql.push_str(" LIMIT ?");
    p.push(Value::Integer(q.page.limit as i64 + 1));
    let items: Vec<Lead> = docs(conn, &sql, &p, "lead")?;
    let sort = q.sort;
    Ok(page_of(items, q.page.limit, |l| {
        Cursor::encode(sort.key(l), *l.id().as_uuid())
    }))
}

/// A board column's lead count, and per currency the expected units and the probability-weighted units × 100.
type StageSums = (u64, BTreeMap<String, (i128, i128)>);

fn board(conn: &Connection, tenant: TenantId, pipeline: PipelineId) -> Result<Board> {
    let p: Pipeline = one_doc(
        conn,
        "SELECT doc FROM pipelines WHERE tenant = ?1 AND id = ?2",
        &tenant,
        pipeline.as_uuid(),
        "pipeline",
    )?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT stage, currency, probability, count(*), sum(expected_units) FROM leads \
             WHERE tenant = ?1 AND pipeline = ?2 AND status IN (0, 1) GROUP BY stage, currency, probability",
        )
        .map_err(map)?;
    // stage -> (count, currency -> (expected units, weighted units × 100))
    let mut acc: BTreeMap<Uuid, StageSums> = BTreeMap::new();
    let rows = stmt
        .query_map(params![tb(&tenant), blob(pipeline.as_uuid())], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .map_err(map)?;
    for row in rows {
        let (stage, currency, prob, count, sum) = row.map_err(map)?;
        let e = acc.entry(uuid(&stage)?).or_default();
        e.0 += count as u64;
        if let (Some(c), Some(s)) = (currency, sum) {
            let t = e.1.entry(c).or_default();
            t.0 += s as i128;
            t.1 += s as i128 * prob as i128;
        }
    }
    let mut columns = Vec::with_capacity(p.stages().len());
    for s in p.stages() {
        let (count, totals) = acc.remove(s.id.as_uuid()).unwrap_or_default();
        let totals = totals
            .into_iter()
            .map(|(c, (e, w))| {
                Ok(CurrencyTotal {
                    currency: Currency::parse(&c).map_err(|e| corrupt("currency", e))?,
                    expected: units_to_decimal(e),
                    weighted: (Decimal::from_i128_with_scale(w, crm_core::money::MONEY_SCALE + 2))
                        .normalize(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        columns.push(BoardColumn {
            stage: s.id,
            name: s.name.clone(),
            kind: s.kind,
            fold: s.fold,
            count,
            totals,
        });
    }
    Ok(Board {
        pipeline: p.id(),
        columns,
    })
}

fn partners_by_keys(
    conn: &Connection,
    tenant: TenantId,
    keys: &[DedupeKey],
) -> Result<Vec<KeyMatch>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; keys.len()].join(", ");
    let sql = format!(
        "SELECT k.partner, p.name, k.key FROM partner_keys k JOIN partners p ON p.tenant = k.tenant AND p.id = k.partner \
         WHERE k.tenant = ? AND k.key IN ({placeholders}) ORDER BY k.partner, k.key LIMIT 1000"
    );
    let mut p = vec![Value::Blob(tb(&tenant))];
    p.extend(keys.iter().map(|k| Value::Text(k.encoded())));
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(p.iter()), |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(map)?;
    let mut out = Vec::new();
    let mut partners = std::collections::BTreeSet::new();
    for r in rows {
        let (id, name, key) = r.map_err(map)?;
        let partner = PartnerId::from_uuid(uuid(&id)?);
        partners.insert(partner);
        if partners.len() > 100 {
            break;
        }
        out.push(KeyMatch {
            partner,
            name,
            key: DedupeKey::decode(&key).ok_or_else(|| corrupt("dedupe key", &key))?,
        });
    }
    Ok(out)
}

crm_storage_sql::store!(SqliteStore);

#[async_trait]
impl crm_storage_sql::store::AdapterStore for SqliteStore {
    async fn fetch_records(&self, tenant: TenantId, key: &Key) -> Result<Vec<Record>> {
        if let Key::PartnersByKeys(keys) = key {
            let keys = keys.clone();
            return self
                .threads
                .read(move |c| partners_by_keys(c, tenant, &keys))
                .await
                .map(|m| m.into_iter().map(Record::KeyMatch).collect());
        }
        key.check()?;
        match key {
            Key::PartnerLinks(p) => return crm_storage_sql::merge::links(self, tenant, *p).await,
            Key::Merge(id) => return crm_storage_sql::merge::merge(self, tenant, *id).await,
            Key::LeadLinks(l) => return crm_storage_sql::merge::lead_links(self, tenant, *l).await,
            Key::LeadWithPipeline(l) => return fetch::lead_with_pipeline(self, tenant, *l).await,
            Key::LeadMerge(id) => {
                return crm_storage_sql::merge::lead_merge(self, tenant, *id).await
            }
            Key::SubjectKeys(ids) => {
                return crm_storage_sql::erasure::keys(self, tenant, ids).await
            }
            _ => {}
        }
        let (sql, doc) = fetch::store_key(Dialect::Sqlite, tenant, key).ok_or_else(|| {
            Error::invalid("key", "a key this version of the engine does not know")
        })?;
        let must_exist = fetch::lead_exists(Dialect::Sqlite, tenant, key);
        // A record by id or host reference, a tenant's pipelines or lost reasons, a lead's stage history: short
        // reads, run without the hop; a list of up to a thousand partners hops.
        let short = !matches!(
            key,
            Key::PartnersAfter { .. } | Key::PartnersByRefs { .. } | Key::PartnersByKeys(_)
        );
        let read = move |c: &mut Connection| {
            if let Some((exists, missing)) = must_exist {
                if docs_of_any(c, &exists)? == 0 {
                    return Err(missing);
                }
            }
            docs_of(c, &sql)?.iter().map(|d| doc.record(d)).collect()
        };
        if short {
            self.threads.read_short(read).await
        } else {
            self.threads.read(read).await
        }
    }

    async fn commit_changes(&self, tenant: TenantId, changes: ChangeSet) -> Result<()> {
        // A change set of a few writes (a transition, a comment, a merge) commits on the caller's thread when the
        // writer connection is free; a large one, or an erasure (it checkpoints the WAL), on the writer thread.
        let small = changes.len() <= SMALL_COMMIT
            && !changes
                .writes()
                .iter()
                .any(|w| matches!(w, Write::Erase(_)));
        let commit = move |c: &mut Connection| apply_all(c, tenant, &changes);
        if small {
            self.threads.write_short(commit).await
        } else {
            self.threads.write(commit).await
        }
    }

    async fn ingest_changes(&self, tenant: TenantId, changes: ChangeSet) -> Result<u64> {
        changes.check_insert_only()?;
        self.threads
            .write(move |c| {
                ingest_all(c, tenant, &changes)?;
                Ok(changes.len() as u64)
            })
            .await
    }

    async fn bulk_step(&self, tenant: TenantId, step: BulkStep) -> Result<BulkLoad> {
        self.threads
            .write(move |c| {
                let hosted = !c.is_autocommit();
                let out = in_transaction(c, |tx| crate::commerce::bulk_step(tx, tenant, step))?;
                if step == BulkStep::Finish && out.rebuilt && !hosted {
                    // The finish wrote every index and roll-up in one transaction: gigabytes of write-ahead log at
                    // a million customers, copied into the file now and the log truncated.
                    crate::pool::checkpoint_truncate(c, TRUNCATE_PATIENCE).map_err(map)?;
                }
                Ok(out)
            })
            .await
    }

    async fn leads_page(&self, tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>> {
        let q = query.clone();
        self.threads.read(move |c| query_leads(c, tenant, &q)).await
    }

    async fn board_of(&self, tenant: TenantId, pipeline: PipelineId) -> Result<Board> {
        self.threads.read(move |c| board(c, tenant, pipeline)).await
    }
}

#[cfg(test)]
pub(crate) mod plan_tests {
    //! The dynamic queries use indexes: every SQL text that `docs` runs while the store answers the main queries is
    //! recorded, and `EXPLAIN QUERY PLAN` of each must search an index, never scan a table.

    use super::*;
    use crm_core::conformance::World;
    use crm_core::lead::StatusKind;
    use crm_core::store::{PageRequest, RequestQuery, Store, TimelineOf};
    use crm_core::time::Clock;
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// `EXPLAIN QUERY PLAN` of `sql` with every parameter NULL: its steps, joined by ` | `.
    async fn plan_of(store: &SqliteStore, sql: String) -> String {
        store
            .with_reader(move |c| {
                let mut stmt = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .map_err(crate::error::map)?;
                let nulls = vec![Value::Null; stmt.parameter_count()];
                let rows = stmt
                    .query_map(params_from_iter(nulls), |r| r.get::<_, String>(3))
                    .map_err(crate::error::map)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(crate::error::map)?;
                Ok(rows.join(" | "))
            })
            .await
            .unwrap()
    }

    /// Whether the program of `sql` opens `table` itself (an `OpenRead` of its root page), not only its indexes.
    /// SQLite's plan calls an index on an expression of a `WITHOUT ROWID` table's column "covering" and still seeks
    /// the table row of every entry, so the plan's word alone does not show a read from the index alone.
    async fn opens_table(store: &SqliteStore, sql: String, table: &'static str) -> bool {
        store
            .with_reader(move |c| {
                let root: i64 = c
                    .query_row(
                        "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                        [table],
                        |r| r.get(0),
                    )
                    .map_err(crate::error::map)?;
                let mut stmt = c
                    .prepare(&format!("EXPLAIN {sql}"))
                    .map_err(crate::error::map)?;
                let nulls = vec![Value::Null; stmt.parameter_count()];
                let opened = stmt
                    .query_map(params_from_iter(nulls), |r| {
                        Ok((r.get::<_, String>(1)?, r.get::<_, i64>(3)?))
                    })
                    .map_err(crate::error::map)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(crate::error::map)?
                    .into_iter()
                    .any(|(op, page)| op == "OpenRead" && page == root);
                Ok(opened)
            })
            .await
            .unwrap()
    }

    pub(crate) fn record(sql: &str) {
        SEEN.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sql.to_string());
    }

    #[tokio::test]
    async fn main_queries_search_indexes() {
        let store = SqliteStore::open_in_memory().unwrap();
        let arc: Arc<dyn Store> = Arc::new(store.clone());
        let w = World::new(&arc).await;
        let lead = w.lead("Planned", Some("10")).await;
        SEEN.lock().unwrap().clear();
        let page = PageRequest::first(50);
        for of in [
            TimelineOf::Lead(lead.id()),
            TimelineOf::Partner(lead.partner()),
        ] {
            store.timeline(w.tenant, of, &page).await.unwrap();
        }
        store
            .comments(w.tenant, CommentTarget::Lead(lead.id()), &page)
            .await
            .unwrap();
        // The lists', then the timers' candidates.
        let now = w.clock.now();
        for q in [
            LeadQuery {
                owner: Some(w.agent),
                ..Default::default()
            },
            LeadQuery {
                sort: LeadSort::UpdatedDesc,
                ..Default::default()
            },
            LeadQuery {
                stage: Some(lead.stage()),
                ..Default::default()
            },
            LeadQuery {
                status: Some(StatusKind::Open),
                updated_before: Some(now),
                sort: LeadSort::UpdatedDesc,
                ..Default::default()
            },
            LeadQuery {
                status: Some(StatusKind::Open),
                close_before: Some(now.date_naive()),
                sort: LeadSort::UpdatedDesc,
                ..Default::default()
            },
        ] {
            store.query_leads(w.tenant, &q).await.unwrap();
        }
        for q in [
            RequestQuery {
                assignee: Some(w.agent),
                active_only: true,
                ..Default::default()
            },
            RequestQuery {
                active_only: true,
                opened_before: Some(now),
                ..Default::default()
            },
            RequestQuery {
                active_only: true,
                due_after: Some(now),
                due_before: Some(now),
                ..Default::default()
            },
        ] {
            store.query_requests(w.tenant, &q).await.unwrap();
        }
        let seen = std::mem::take(&mut *SEEN.lock().unwrap());
        assert!(seen.len() >= 11, "{seen:?}");
        let board_sql = "SELECT stage, currency, probability, count(*), sum(expected_units) FROM leads \
             WHERE tenant = ?1 AND pipeline = ?2 AND status IN (0, 1) GROUP BY stage, currency, probability";
        let mut plans: Vec<(String, String)> = Vec::new();
        for sql in seen.into_iter().chain([board_sql.to_string()]) {
            let plan = plan_of(&store, sql.clone()).await;
            plans.push((sql, plan));
        }
        for (sql, plan) in &plans {
            assert!(
                plan.contains("USING") && !plan.contains("SCAN"),
                "{sql}\n  → {plan}"
            );
        }
        // Each timer reads a range of its own index: the candidates only, never every open lead or request.
        let all: Vec<&str> = plans.iter().map(|(_, p)| p.as_str()).collect();
        for index in [
            "INDEX leads_idle (tenant=? AND status=? AND updated_at<?)",
            "INDEX leads_close (tenant=? AND status=? AND <expr><?)",
            "INDEX requests_opened (tenant=? AND active=? AND created_at<?)",
            "INDEX requests_due (tenant=? AND active=? AND due_key>? AND due_key<?)",
        ] {
            assert!(all.iter().any(|p| p.contains(index)), "{index}: {all:?}");
        }
    }

    #[tokio::test]
    async fn profitability_reads_each_whole_month_in_key_order_without_a_sort() {
        use crm_core::commerce::{Bucket, GroupBy, Period, SumsQuery};
        let store = SqliteStore::open_in_memory().unwrap();
        let eur = crm_core::money::Currency::parse("EUR").unwrap();
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let mid = Period::new(day(2, 15), day(11, 14)).unwrap();
        for (by, bucket) in [
            (GroupBy::Customer, None),
            (GroupBy::Group, Some(Bucket::Quarter)),
        ] {
            let mut q = SumsQuery::by(by, mid, eur);
            q.bucket = bucket;
            let arms = crm_storage_sql::commerce::profit_arms(TenantId::new(), &q);
            // March to October, a statement each, then the two edges.
            assert_eq!(arms.len(), 10);
            for arm in &arms[..8] {
                let plan = plan_of(&store, arm.text.clone()).await;
                assert!(
                    plan.contains("sales_months USING PRIMARY KEY (tenant=? AND reporting=? AND dim=? AND month=?)")
                        && !plan.contains("TEMP B-TREE"),
                    "{plan}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_whole_year_by_customer_reads_the_year_roll_up_in_key_order_without_a_sort() {
        use crm_core::commerce::{Cmp, Criteria, GroupBy, Period, SumsQuery};
        let store = SqliteStore::open_in_memory().unwrap();
        let eur = crm_core::money::Currency::parse("EUR").unwrap();
        let year = Period::year(2025).unwrap();
        let arms = crm_storage_sql::commerce::profit_arms(
            TenantId::new(),
            &SumsQuery::by(GroupBy::Customer, year, eur),
        );
        assert_eq!(arms.len(), 1, "one statement for the year");
        let plan = plan_of(&store, arms[0].text.clone()).await;
        assert!(
            plan.contains(
                "sales_years USING PRIMARY KEY (tenant=? AND reporting=? AND dim=? AND year=?)"
            ) && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
        // A segment's volume over the year: one row per customer, grouped as read.
        let volume = Criteria::SalesVolume {
            period: year,
            cmp: Cmp::Gt,
            amount: crm_core::money::Money::from_units(1, eur),
        };
        let sql = crm_storage_sql::segment::segment_sql(
            Dialect::Sqlite,
            TenantId::new(),
            &volume,
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            eur,
        )
        .unwrap();
        let plan = plan_of(&store, sql.text).await;
        assert!(
            plan.contains("SEARCH sales_years USING PRIMARY KEY")
                && !plan.contains("TEMP B-TREE FOR GROUP BY")
                && !plan.contains("sales_months"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn attribution_reads_the_campaign_leads_from_their_indexes_not_the_lead_rows() {
        use crm_core::commerce::{AttributionScope, Period};
        let store = SqliteStore::open_in_memory().unwrap();
        let scope = AttributionScope {
            period: Period::year(2026).unwrap(),
            lookback_days: 90,
            reporting: crm_core::money::Currency::parse("EUR").unwrap(),
        };
        let sqls =
            crm_storage_sql::attribution::attribution_sql(Dialect::Sqlite, TenantId::new(), &scope);
        let mut plans = Vec::new();
        for sql in &sqls {
            plans.push(plan_of(&store, sql.text.clone()).await);
        }
        // The partners campaign leads touched (the sales' statement), then the leads brought in the window.
        assert!(
            plans[1].contains("COVERING INDEX leads_campaign_partner (tenant=?)"),
            "{}",
            plans[1]
        );
        assert!(
            plans[4].contains("COVERING INDEX leads_campaign_created (tenant=? AND created_at>? AND created_at<?)"),
            "{}",
            plans[4]
        );
        // Read from the indexes alone: no lead row is sought.
        for i in [1, 4] {
            assert!(
                !opens_table(&store, sqls[i].text.clone(), "leads").await,
                "{}",
                sqls[i].text
            );
        }
    }

    #[tokio::test]
    async fn a_segment_seeks_the_partners_last_and_reads_their_names_from_the_narrow_index() {
        use crm_core::commerce::{BoughtMode, Cmp, Criteria, Item, LastSale, Period};
        let store = SqliteStore::open_in_memory().unwrap();
        let eur = crm_core::money::Currency::parse("EUR").unwrap();
        let year = Period::year(2025).unwrap();
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let facts = vec![
            Criteria::lapsed(LastSale::WithinDays { days: 90 }),
            Criteria::SalesVolume {
                period: year,
                cmp: Cmp::Gt,
                amount: crm_core::money::Money::from_units(200_000_000, eur),
            },
            Criteria::Bought {
                mode: BoughtMode::Any,
                items: vec![Item::Category(crm_core::id::CategoryId::new())],
                period: year,
            },
        ];
        let example = Criteria::And { all: facts.clone() };
        let sql = crm_storage_sql::segment::segment_sql(
            Dialect::Sqlite,
            TenantId::new(),
            &example,
            as_of,
            eur,
        )
        .unwrap();
        let plan = plan_of(&store, sql.text.clone()).await;
        // Driven from the volume's roll-up; the partner is sought after the other roll-ups, in the index of names.
        let steps: Vec<&str> = plan.split(" | ").collect();
        let at = |what: &str| steps.iter().position(|s| s.contains(what));
        let partner = at("SEARCH p USING COVERING INDEX partners_names (tenant=? AND id=?");
        assert!(partner.is_some(), "{plan}");
        assert!(at("SCAN v1") < at("SEARCH b1"), "{plan}");
        assert!(at("SEARCH b1") < at("SEARCH partner_last_sales"), "{plan}");
        assert!(at("SEARCH partner_last_sales") < partner, "{plan}");
        assert!(!opens_table(&store, sql.text, "partners").await);
        // A criterion on the partner's own attributes still reads its row.
        let mut grouped = facts;
        grouped.push(Criteria::Group {
            name: "Retail".to_string(),
        });
        let sql = crm_storage_sql::segment::segment_sql(
            Dialect::Sqlite,
            TenantId::new(),
            &Criteria::And { all: grouped },
            as_of,
            eur,
        )
        .unwrap();
        assert!(opens_table(&store, sql.text, "partners").await);
    }

    #[tokio::test]
    async fn the_bought_upkeep_reads_the_documents_lines_by_their_key() {
        let store = SqliteStore::open_in_memory().unwrap();
        let ids = [uuid::Uuid::now_v7()];
        let upkeep =
            crm_storage_sql::rollup::apply_documents(Dialect::Sqlite, TenantId::new(), &ids, 1);
        let bought = upkeep
            .into_iter()
            .find(|s| s.text.contains("INSERT INTO bought_months"))
            .expect("the bought months are kept");
        let plan = plan_of(&store, bought.text).await;
        assert!(
            plan.contains("SEARCH l USING PRIMARY KEY (tenant=? AND document=?)"),
            "{plan}"
        );
        assert!(!plan.contains("document_lines_category"), "{plan}");
    }

    #[tokio::test]
    async fn a_bought_product_reads_its_lines_index_and_a_category_its_months() {
        use crm_core::commerce::{BoughtMode, Criteria, Item, Period};
        let store = SqliteStore::open_in_memory().unwrap();
        let eur = crm_core::money::Currency::parse("EUR").unwrap();
        let year = Period::year(2025).unwrap();
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let bought = |item| Criteria::Bought {
            mode: BoughtMode::Any,
            items: vec![item],
            period: year,
        };
        let plan_for = |c: Criteria| {
            let store = store.clone();
            async move {
                let sql = crm_storage_sql::segment::segment_sql(
                    Dialect::Sqlite,
                    TenantId::new(),
                    &c,
                    as_of,
                    eur,
                )
                .unwrap();
                plan_of(&store, sql.text).await
            }
        };
        let product = plan_for(bought(Item::Product(crm_core::id::ProductId::new()))).await;
        assert!(
            product
                .contains("USING COVERING INDEX document_lines_product (tenant=? AND product=?)"),
            "{product}"
        );
        assert!(!product.contains("bought_months"), "{product}");
        let category = plan_for(bought(Item::Category(crm_core::id::CategoryId::new()))).await;
        assert!(category.contains("bought_months"), "{category}");
        assert!(!category.contains("document_lines"), "{category}");
        // A period from mid-month: the edges' documents by day, their lines by key.
        let mid = Criteria::Bought {
            mode: BoughtMode::Any,
            items: vec![Item::Category(crm_core::id::CategoryId::new())],
            period: Period::new(
                chrono::NaiveDate::from_ymd_opt(2025, 2, 15).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2025, 11, 14).unwrap(),
            )
            .unwrap(),
        };
        let edges = plan_for(mid).await;
        assert!(
            edges.contains("SEARCH d USING COVERING INDEX documents_day (tenant=? AND issue_day>? AND issue_day<?)"),
            "{edges}"
        );
        assert!(
            edges.contains("SEARCH l USING PRIMARY KEY (tenant=? AND document=?)"),
            "{edges}"
        );
        assert!(edges.contains("bought_months"), "{edges}");
    }

    #[tokio::test]
    async fn the_timers_document_keys_and_a_records_attachments_search_their_indexes() {
        use crm_core::commerce::{CommerceKey, DocumentKind};
        let store = SqliteStore::open_in_memory().unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let keys = [
            (
                CommerceKey::DocumentsDue {
                    kind: DocumentKind::Invoice,
                    from: day,
                    before: day,
                },
                "INDEX documents_due (tenant=? AND kind=? AND due_day>? AND due_day<?)",
            ),
            (
                CommerceKey::DocumentsRenewing { from: day, to: day },
                "INDEX documents_renewing (tenant=? AND <expr>>? AND <expr><?)",
            ),
            (
                CommerceKey::QuotationsExpiring { before: day },
                "INDEX quotations_expiring (tenant=? AND valid_until<?)",
            ),
            (
                CommerceKey::MeetingsStarting {
                    from: day.and_hms_opt(0, 0, 0).unwrap().and_utc(),
                    before: day.and_hms_opt(23, 0, 0).unwrap().and_utc(),
                },
                "INDEX meetings_starting (tenant=? AND starts_us>? AND starts_us<?)",
            ),
            (
                CommerceKey::AttachmentsOf(crm_core::sales::AttachedTo::Lead(
                    crm_core::id::LeadId::new(),
                )),
                "INDEX attachments_of (tenant=? AND target_kind=? AND target=?)",
            ),
        ];
        for (key, index) in keys {
            let (sql, _) = fetch::commerce_key(Dialect::Sqlite, TenantId::new(), &key).unwrap();
            let plan = plan_of(&store, sql.text).await;
            assert!(
                plan.contains(index) && !plan.contains("SCAN"),
                "{key:?}: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn the_campaign_lead_count_reads_its_covering_index() {
        let store = SqliteStore::open_in_memory().unwrap();
        let sql = crm_storage_sql::commerce::campaign_sums(
            Dialect::Sqlite,
            TenantId::new(),
            crm_core::id::CampaignId::new(),
            None,
            Currency::parse("EUR").unwrap(),
        )
        .leads
        .text;
        let plan = plan_of(&store, sql.clone()).await;
        assert!(
            plan.contains("COVERING INDEX leads_by_campaign") && !plan.contains("SCAN"),
            "{plan}"
        );
        assert!(
            !opens_table(&store, sql, "leads").await,
            "no lead row is sought"
        );
    }

    #[tokio::test]
    async fn every_campaigns_sums_read_their_indexes() {
        let store = SqliteStore::open_in_memory().unwrap();
        let statements = crm_storage_sql::commerce::campaigns_sums(
            Dialect::Sqlite,
            TenantId::new(),
            None,
            Currency::parse("EUR").unwrap(),
        );
        // The leads by their campaign's covering index; each campaign's sales one range of `documents_campaign`,
        // driven from the campaigns (the only scan is of the tenant's campaigns' primary key).
        let leads = plan_of(&store, statements[3].text.clone()).await;
        assert!(
            leads.contains("COVERING INDEX leads_by_campaign"),
            "{leads}"
        );
        assert!(
            !opens_table(&store, statements[3].text.clone(), "leads").await,
            "no lead row is sought"
        );
        // All time (as any whole calendar month, quarter or year): the customers' counts kept per bucket.
        let invoiced = plan_of(&store, statements[5].text.clone()).await;
        assert!(
            invoiced.contains("SEARCH campaign_reach USING PRIMARY KEY (tenant=? AND reporting=? AND grain=? AND idx=?)"),
            "{invoiced}"
        );
        // Any other period: the documents' covering index, a range per campaign.
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let mid = crm_core::commerce::Period::new(d(1, 15), d(3, 10)).unwrap();
        let statements = crm_storage_sql::commerce::campaigns_sums(
            Dialect::Sqlite,
            TenantId::new(),
            Some(mid),
            Currency::parse("EUR").unwrap(),
        );
        let invoiced = plan_of(&store, statements[5].text.clone()).await;
        assert!(
            invoiced.contains("COVERING INDEX documents_campaign (tenant=? AND campaign=? AND issue_day>? AND issue_day<?)"),
            "{invoiced}"
        );
    }
}

#[cfg(test)]
mod migration_tests {
    //! Migration 0005 gives existing requests their opening time, to the microsecond, from their documents.

    use super::*;
    use chrono::TimeZone;
    use crm_core::actor::Actor;
    use crm_core::request::NewRequest;
    use crm_core::store::{RequestQuery, Store};
    use crm_core::time::Timestamp;

    #[tokio::test]
    async fn existing_requests_get_their_opening_time_from_their_documents() {
        let path = std::env::temp_dir().join(format!("crm-migration-{}.db", uuid::Uuid::now_v7()));
        let tenant = TenantId::new();
        let opened = chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_457);
        let (request, _) = NewRequest::on_lead(
            crm_core::id::LeadId::new(),
            "Call",
            crm_core::id::UserId::new(),
        )
        .build(tenant, Some(PartnerId::new()), Actor::System, opened)
        .unwrap();
        {
            // A database as version 4 left it, with one request (no lead or partner rows: foreign keys are off for
            // this insert).
            let mut c = Connection::open(&path).unwrap();
            Migrations::new(migration_sql()[..4].iter().map(|sql| M::up(sql)).collect())
                .to_latest(&mut c)
                .unwrap();
            c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
            let mut v = request_row(&request);
            v.pop();
            c.execute(
                "INSERT INTO requests (tenant, id, lead, partner, assignee, active, due_key, version, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params_from_iter(v),
            )
            .unwrap();
        }
        let store = SqliteStore::open_file(&path).unwrap();
        let query = |before: Timestamp| RequestQuery {
            opened_before: Some(before),
            ..Default::default()
        };
        let at = store
            .query_requests(tenant, &query(opened + chrono::Duration::microseconds(1)))
            .await
            .unwrap()
            .items;
        assert_eq!(at, vec![request.clone()]);
        assert!(store
            .query_requests(tenant, &query(opened))
            .await
            .unwrap()
            .items
            .is_empty());
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

#[cfg(test)]
mod cache_tests {
    //! The writer's page cache is what the configuration says; the readers keep SQLite's default.

    use super::*;

    #[tokio::test]
    async fn the_writer_has_its_configured_page_cache_and_the_readers_the_default() {
        let path = std::env::temp_dir().join(format!("crm-cache-{}.db", uuid::Uuid::now_v7()));
        fn size(c: &mut Connection) -> Result<i64> {
            c.query_row("PRAGMA cache_size", [], |r| r.get(0))
                .map_err(map)
        }
        let cache = |store: SqliteStore| async move {
            let w = store.with_writer(size).await.unwrap();
            (w, store.with_reader(size).await.unwrap())
        };
        let default = SqliteStore::open(SqliteConfig::file(&path)).unwrap();
        assert_eq!(
            cache(default).await,
            (-i64::from(crate::DEFAULT_WRITER_CACHE_MIB) * 1024, -2000)
        );
        let small = SqliteStore::open(SqliteConfig::file(&path).with_writer_cache_mib(3)).unwrap();
        assert_eq!(cache(small).await, (-3 * 1024, -2000));
        // Zero is taken as one MiB, never as SQLite's "no cache".
        let zero = SqliteStore::open(SqliteConfig::file(&path).with_writer_cache_mib(0)).unwrap();
        assert_eq!(cache(zero).await.0, -1024);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
