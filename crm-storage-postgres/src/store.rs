//! [`PgStore`]: the [`Store`] trait on PostgreSQL.

use crate::config::{IngestMode, PgConfig};
use crate::error::{entity_of_table, map_pg, map_pool};
use crate::migrations;
use crate::rows::{self, Table, Value};
use async_trait::async_trait;
use crm_core::dedupe::DedupeKey;
use crm_core::event::DomainEvent;
use crm_core::id::{PartnerId, PipelineId, TenantId};
use crm_core::lead::Lead;
use crm_core::money::Currency;
use crm_core::partner::Partner;
use crm_core::store::StoreExt;
use crm_core::store::{
    Board, BoardColumn, BulkLoad, BulkStep, ChangeSet, CurrencyTotal, Key, KeyMatch, LeadQuery,
    Page, Record, RequestQuery, TimelineOf, Write,
};
use crm_core::time::to_micros;
use crm_core::{Error, Result, StorageErrorKind};
use crm_storage_sql::{fetch, Dialect};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;
use uuid::Uuid;

pub(crate) use crate::conn::Tx;
use crate::conn::{Conn, HostClient, HostConn, Source};

/// The PostgreSQL store: a pool of connections to one database schema.
///
/// Cheap to clone (the pool is shared). Every method takes a connection from the pool for the duration of one
/// statement or transaction; statements are prepared once per connection and cached.
#[derive(Clone)]
pub struct PgStore {
    source: Source,
    config: Arc<PgConfig>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("config", &self.config)
            .field("connections", &self.source)
            .finish()
    }
}

/// A query whose plan [`PgStore::explain`] shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Explain {
    /// The query of [`Store::timeline`](crm_core::store::Store::timeline) (first page of `limit`).
    Timeline(TenantId, TimelineOf, u32),
    /// The aggregate query of [`Store::board`](crm_core::store::Store::board).
    Board(TenantId, PipelineId),
    /// The query of [`Store::query_leads`](crm_core::store::Store::query_leads).
    Leads(TenantId, LeadQuery),
    /// The query of [`Store::query_requests`](crm_core::store::Store::query_requests).
    Requests(TenantId, RequestQuery),
    /// The query of [`CommerceStore::fetch_commerce`](crm_core::commerce::CommerceStore::fetch_commerce).
    Commerce(TenantId, crm_core::commerce::CommerceKey),
}

/// A statement and its parameters, built once and run or explained.
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<Value>,
}

impl From<crm_storage_sql::Sql> for Sql {
    fn from(s: crm_storage_sql::Sql) -> Self {
        Self {
            text: s.text,
            params: s.params.into_iter().map(rows::bind).collect(),
        }
    }
}

impl Sql {
    pub(crate) fn new() -> Self {
        Self {
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub(crate) fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }
}

use crm_storage_sql::like_contains;

impl PgStore {
    /// Connects, checks the credentials and database, and brings the schema up to date.
    ///
    /// A refused connection is [`Error::Storage`] of kind [`StorageErrorKind::Unavailable`]; a wrong password, a
    /// missing database or a bad configuration is kind [`StorageErrorKind::Config`] (or [`Error::Invalid`] naming
    /// the field). Needs a Tokio runtime.
    pub async fn connect(config: PgConfig) -> Result<Self> {
        let pg = config.to_tokio()?;
        let timeout = Duration::from_millis(config.connect_timeout_ms);
        // One direct connection first, so start-up errors surface as such and migrations run before any pooled use.
        let (mut client, conn) = match tokio::time::timeout(timeout, pg.connect(NoTls)).await {
            Ok(r) => r.map_err(|e| start_error(e, &config))?,
            Err(_) => {
                return Err(Error::storage(
                    StorageErrorKind::Unavailable,
                    format!(
                        "no answer from PostgreSQL within {} ms; is the server up and reachable?",
                        config.connect_timeout_ms
                    ),
                ))
            }
        };
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        let migrated = if config.read_only {
            migrations::check_current(&client, &config.schema)
                .await
                .map(|()| Vec::new())
        } else {
            migrations::run(&mut client, &config.schema).await
        };
        drop(client);
        let _ = task.await;
        let applied = migrated?;
        if !applied.is_empty() {
            tracing::info!(schema = %config.schema, ?applied, "applied migrations");
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| Error::storage(StorageErrorKind::Config, e.to_string()))?;
        Ok(Self {
            source: Source::Pool(pool),
            config: Arc::new(config),
        })
    }

    /// A store that runs every operation on `client`, a connection the host holds **with its own transaction
    /// open**, so the engine's writes (records, events, outbox messages) commit or roll back with the host's:
    /// no back-office synchronisation. Each engine change is a savepoint in the host's transaction (a refused change
    /// rolls back to it and the host's transaction goes on); reads see the host's uncommitted rows.
    ///
    /// The connection's `search_path` must reach the engine's schema (`SET search_path TO crm, public` when the
    /// engine's tables are in `crm`), and the schema must be migrated (by [`PgStore::connect`] once). Engine calls
    /// on one such store take turns; the host runs its own statements on the same connection between them. A change
    /// without an open transaction is [`Error::Invalid`] on `transaction`. `config` is used for the ingest path only.
    ///
    /// ```no_run
    /// # async fn demo(url: &str) -> crm_core::Result<()> {
    /// use crm_storage_postgres::{PgConfig, PgStore};
    /// use std::sync::Arc;
    /// let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    /// tokio::spawn(connection);
    /// let client = Arc::new(client);
    /// client.batch_execute("BEGIN").await.unwrap();
    /// // … the host's own statements on `client` …
    /// let engine = PgStore::in_host_transaction(client.clone(), PgConfig::default());
    /// // … engine operations through `engine` (or `Crm::builder().backend(Arc::new(engine))`) …
    /// client.batch_execute("COMMIT").await.unwrap(); // or ROLLBACK: nothing of either stays
    /// # Ok(()) }
    /// ```
    pub fn in_host_transaction(client: impl HostClient, config: PgConfig) -> Self {
        Self {
            source: Source::Host(Arc::new(HostConn::new(Box::new(client)))),
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Runs the migrations again (a no-op when the schema is up to date); returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i32>> {
        let Source::Pool(pool) = &self.source else {
            return Err(Error::invalid(
                "transaction",
                "migrations run on the store's own pool (PgStore::connect), not inside a host's transaction",
            ));
        };
        let mut client = pool.get().await.map_err(map_pool)?;
        let c: &mut tokio_postgres::Client = &mut client;
        migrations::run(c, &self.config.schema).await
    }

    /// Finishes every bulk load left open ([`BulkStep`](crm_core::store::BulkStep)) and builds every
    /// index still deferred, in one transaction; returns the tenants whose loads it finished. A process that loads
    /// in bulk and crashes leaves its load open: PostgreSQL serves many processes, so opening a store never
    /// finishes another one's load (SQLite's `open` does, as one process owns an embedded file); the host runs
    /// this at start-up when it knows no load is under way, or finishes the tenant's load with
    /// `bulk_load(tenant, BulkStep::Finish)`.
    ///
    /// ```no_run
    /// # async fn demo(store: crm_storage_postgres::PgStore) -> crm_core::Result<()> {
    /// let finished = store.finish_bulk_loads().await?;
    /// println!("{} loads a crash left open are finished", finished.len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The server's: nothing is changed then.
    pub async fn finish_bulk_loads(&self) -> Result<Vec<TenantId>> {
        let mut client = self.client().await?;
        let tx = client.begin().await?;
        let ran = crate::commerce::bulk_recover(&tx).await;
        tx.finish(ran).await
    }

    /// The plan PostgreSQL chooses for one of the store's queries (`EXPLAIN`, text format).
    pub async fn explain(&self, what: Explain) -> Result<String> {
        let sql = match &what {
            Explain::Timeline(t, of, limit) => Sql::from(crm_storage_sql::store::timeline_sql(
                Dialect::Postgres,
                *t,
                *of,
                None,
                *limit,
            )),
            Explain::Board(t, p) => board_sql(*t, *p),
            Explain::Leads(t, q) => leads_sql(*t, q, None)?,
            Explain::Requests(t, q) => Sql::from(crm_storage_sql::store::requests_sql(
                Dialect::Postgres,
                *t,
                q,
                None,
            )),
            Explain::Commerce(t, key) => {
                Sql::from(fetch::commerce_key(Dialect::Postgres, *t, key)?.0)
            }
        };
        let client = self.client().await?;
        let rows = client
            .query(&format!("EXPLAIN {}", sql.text), &rows::params(&sql.params))
            .await
            .map_err(map_pg)?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// A connection for one operation (for the adapter's other modules).
    pub(crate) async fn client(&self) -> Result<Conn> {
        self.source.conn().await
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(map_pg)?;
        client.query(&stmt, params).await.map_err(map_pg)
    }

    pub(crate) async fn run(&self, sql: &Sql) -> Result<Vec<tokio_postgres::Row>> {
        self.query(&sql.text, &rows::params(&sql.params)).await
    }

    /// Runs a one-off statement (not kept in the statement cache).
    pub(crate) async fn run_uncached(&self, sql: &Sql) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        client
            .query(sql.text.as_str(), &rows::params(&sql.params))
            .await
            .map_err(map_pg)
    }
}

#[async_trait]
impl crm_storage_sql::Runner for PgStore {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn rows(
        &self,
        sql: crm_storage_sql::Sql,
        once: bool,
    ) -> Result<Vec<Vec<crm_storage_sql::Cell>>> {
        let sql = Sql::from(sql);
        let rows = if once {
            self.run_uncached(&sql).await?
        } else {
            self.run(&sql).await?
        };
        rows.iter().map(rows::cells).collect()
    }

    async fn write_rows(
        &self,
        sql: crm_storage_sql::Sql,
    ) -> Result<Vec<Vec<crm_storage_sql::Cell>>> {
        self.rows(sql, false).await
    }

    async fn execute(&self, sql: crm_storage_sql::Sql) -> Result<u64> {
        let sql = Sql::from(sql);
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql.text).await.map_err(map_pg)?;
        client
            .execute(&stmt, &rows::params(&sql.params))
            .await
            .map_err(map_pg)
    }

    async fn execute_all(&self, sqls: Vec<crm_storage_sql::Sql>) -> Result<Vec<u64>> {
        let mut client = self.client().await?;
        let tx = client.begin().await?;
        let ran = async {
            let mut out = Vec::with_capacity(sqls.len());
            for sql in sqls {
                let sql = Sql::from(sql);
                out.push(
                    tx.execute(&sql.text, &rows::params(&sql.params))
                        .await
                        .map_err(map_pg)?,
                );
            }
            Ok::<_, Error>(out)
        }
        .await;
        tx.finish(ran).await
    }
}

/// Classifies a failure to open the first connection.
fn start_error(e: tokio_postgres::Error, config: &PgConfig) -> Error {
    let mapped = map_pg(e);
    let target = format!(
        "database `{}` on {}:{} as `{}`",
        config
            .url
            .as_deref()
            .and_then(|u| u.rsplit('/').next())
            .map(|s| s.split('?').next().unwrap_or(s).to_string())
            .unwrap_or_else(|| config.dbname.clone()),
        config.host,
        config.port,
        config.user
    );
    match mapped {
        Error::Storage {
            kind: StorageErrorKind::Config,
            message,
            source,
        } => Error::Storage {
            kind: StorageErrorKind::Config,
            message: format!(
                "cannot open {target}: {message}; check the user, password and database name"
            ),
            source,
        },
        Error::Storage {
            kind: StorageErrorKind::Unavailable,
            message,
            source,
        } => Error::Storage {
            kind: StorageErrorKind::Unavailable,
            message: format!(
                "cannot reach PostgreSQL: {message}; is the server running and the host and port right?"
            ),
            source,
        },
        other => other,
    }
}

// ------------------------------------------------------------------------------------------------- writes

/// Runs an `INSERT` of one row; a duplicate key is [`Error::AlreadyExists`] naming `entity` and `key`.
pub(crate) async fn insert(
    tx: &Tx<'_>,
    table: &Table,
    row: Vec<Value>,
    key: impl fmt::Display,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(&table.insert_sql(Dialect::Postgres, 1))
        .await
        .map_err(map_pg)?;
    tx.execute(&stmt, &rows::params(&row))
        .await
        .map_err(|e| match map_pg(e) {
            Error::AlreadyExists { .. } => Error::AlreadyExists {
                entity: entity_of_table(table.name),
                key: key.to_string(),
            },
            other => other,
        })?;
    Ok(())
}

/// A record of a versioned table: its `(tenant, id)` key.
trait Keyed {
    fn key(&self) -> (TenantId, Uuid);
}

/// [`Keyed`] for records with `tenant()` and `id()`.
macro_rules! keyed {
    ($($record:ty),*) => {
        $(
            impl Keyed for $record {
                fn key(&self) -> (TenantId, Uuid) {
                    (self.tenant(), *self.id().as_uuid())
                }
            }
        )*
    };
}

keyed!(Partner, Lead, crm_core::request::Request);

/// A version-checked update of `record` (its `row` of `table`, keyed by (tenant, id)): 0 rows is a conflict (naming the stored version) or not found.
async fn update<R: Keyed>(
    tx: &Tx<'_>,
    table: &Table,
    record: &R,
    row: fn(&R) -> Result<Vec<Value>>,
    expected: u64,
) -> Result<()> {
    let (tenant, id) = record.key();
    let mut row = row(record)?;
    row.push(Box::new(expected as i64));
    let stmt = tx
        .prepare_cached(&table.update_sql(Dialect::Postgres, 2))
        .await
        .map_err(map_pg)?;
    let n = tx
        .execute(&stmt, &rows::params(&row))
        .await
        .map_err(map_pg)?;
    if n == 1 {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(&table.version_sql(Dialect::Postgres, 2))
        .await
        .map_err(map_pg)?;
    let stored = tx
        .query_opt(&stmt, &[tenant.as_uuid(), &id])
        .await
        .map_err(map_pg)?
        .map(|r| r.get::<_, i64>(0));
    let entity = entity_of_table(table.name);
    Err(crm_storage_sql::commerce::missed_update(
        entity,
        id.to_string(),
        expected,
        stored,
    ))
}

/// Replaces the rows of a set table (`partner_keys`, `lead_tags`: `(tenant, value, owner)`) of one owner with
/// `values`; a `fresh` owner has none to delete.
async fn replace_set(
    tx: &Tx<'_>,
    (table, value, owner): (&str, &str, &str),
    (tenant, id): (TenantId, Uuid),
    values: Vec<String>,
    fresh: bool,
) -> Result<()> {
    if !fresh {
        let stmt = tx
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE tenant = $1 AND {owner} = $2"
            ))
            .await
            .map_err(map_pg)?;
        tx.execute(&stmt, &[tenant.as_uuid(), &id])
            .await
            .map_err(map_pg)?;
    }
    if values.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} (tenant, {value}, {owner}) SELECT $1, v, $2 FROM unnest($3::text[]) AS v"
        ))
        .await
        .map_err(map_pg)?;
    tx.execute(&stmt, &[tenant.as_uuid(), &id, &values])
        .await
        .map_err(map_pg)?;
    Ok(())
}

async fn replace_partner_keys(
    tx: &Tx<'_>,
    p: &Partner,
    keys: &[DedupeKey],
    fresh: bool,
) -> Result<()> {
    let keys = rows::encoded_keys(keys).into_iter().collect();
    let table = ("partner_keys", "key", "partner");
    replace_set(tx, table, p.key(), keys, fresh).await
}

/// Replaces a partner's rows of `contact_refs` (a reference another partner's contact has: `AlreadyExists`).
async fn replace_contact_refs(tx: &Tx<'_>, p: &Partner, fresh: bool) -> Result<()> {
    let (tenant, id) = p.key();
    if !fresh {
        let stmt = tx
            .prepare_cached("DELETE FROM contact_refs WHERE tenant = $1 AND partner = $2")
            .await
            .map_err(map_pg)?;
        tx.execute(&stmt, &[tenant.as_uuid(), &id])
            .await
            .map_err(map_pg)?;
    }
    for row in rows::contact_ref_rows(p) {
        insert(tx, CONTACT_REFS, row, p.id()).await?;
    }
    Ok(())
}

async fn replace_lead_tags(tx: &Tx<'_>, l: &Lead, fresh: bool) -> Result<()> {
    let tags = rows::lead_tags(l).into_iter().collect();
    replace_set(tx, ("lead_tags", "tag", "lead"), l.key(), tags, fresh).await
}

/// Hands out `n` event positions for `tenant`; returns the first.
///
/// The counter row stays locked until the transaction ends, so positions follow commit order. Callers take it as
/// the last lock of their transaction, which keeps the lock short and the lock order deadlock-free.
async fn allocate_positions(tx: &Tx<'_>, tenant: TenantId, n: usize) -> Result<i64> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO event_positions (tenant, last) VALUES ($1, $2)
             ON CONFLICT (tenant) DO UPDATE SET last = event_positions.last + EXCLUDED.last
             RETURNING last",
        )
        .await
        .map_err(map_pg)?;
    let n = n as i64;
    let row = tx
        .query_one(&stmt, &[tenant.as_uuid(), &n])
        .await
        .map_err(map_pg)?;
    Ok(row.get::<_, i64>(0) - n + 1)
}

async fn apply_write<'w>(
    tx: &Tx<'_>,
    w: &'w Write,
    events: &mut Vec<&'w DomainEvent>,
) -> Result<()> {
    match w {
        Write::InsertPartner { partner, keys } => {
            insert(
                tx,
                &rows::PARTNERS,
                rows::partner_row(partner)?,
                partner.id(),
            )
            .await?;
            replace_partner_keys(tx, partner, keys, true).await?;
            replace_contact_refs(tx, partner, true).await
        }
        Write::UpdatePartner {
            partner,
            expected_version,
            keys,
        } => {
            update(
                tx,
                &rows::PARTNERS,
                partner,
                rows::partner_row,
                *expected_version,
            )
            .await?;
            replace_partner_keys(tx, partner, keys, false).await?;
            replace_contact_refs(tx, partner, false).await
        }
        Write::InsertPipeline(p) => {
            insert(tx, &rows::PIPELINES, rows::pipeline_row(p)?, p.id()).await
        }
        Write::InsertLostReason(r) => {
            insert(tx, &rows::LOST_REASONS, rows::lost_reason_row(r)?, r.id()).await
        }
        Write::InsertLead(l) => {
            insert(tx, &rows::LEADS, rows::lead_row(l)?, l.id()).await?;
            replace_lead_tags(tx, l, true).await
        }
        Write::UpdateLead {
            lead,
            expected_version,
        } => {
            update(tx, &rows::LEADS, lead, rows::lead_row, *expected_version).await?;
            replace_lead_tags(tx, lead, false).await
        }
        Write::InsertRequest(r) => insert(tx, &rows::REQUESTS, rows::request_row(r)?, r.id()).await,
        Write::UpdateRequest {
            request,
            expected_version,
        } => {
            update(
                tx,
                &rows::REQUESTS,
                request,
                rows::request_row,
                *expected_version,
            )
            .await
        }
        Write::InsertComment(c) => insert(tx, &rows::COMMENTS, rows::comment_row(c)?, c.id()).await,
        Write::AppendEvent(e) => {
            events.push(e);
            Ok(())
        }
        Write::AppendStageHistory(h) => {
            let stmt = tx
                .prepare_cached(&rows::STAGE_HISTORY.insert_sql(Dialect::Postgres, 1))
                .await
                .map_err(map_pg)?;
            tx.execute(&stmt, &rows::params(&rows::stage_history_row(h)?))
                .await
                .map_err(map_pg)?;
            Ok(())
        }
        Write::Commerce(c) => crate::commerce::apply(tx, c).await,
        Write::PutSetting(setting) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO settings (tenant, key, doc) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant, key) DO UPDATE SET doc = EXCLUDED.doc",
                )
                .await
                .map_err(map_pg)?;
            let doc = serde_json::to_value(setting)
                .map_err(|e| Error::invalid("setting", format!("cannot be serialised: {e}")))?;
            let doc = tokio_postgres::types::Json(doc);
            tx.execute(&stmt, &[setting.tenant().as_uuid(), &setting.key(), &doc])
                .await
                .map_err(map_pg)?;
            Ok(())
        }
        Write::EnqueueOutbox(m) => crate::outbox::enqueue(tx, m).await,
        Write::Repoint { .. }
        | Write::RepointLead { .. }
        | Write::InsertMerge(_)
        | Write::UpdateMerge { .. }
        | Write::InsertLeadMerge(_)
        | Write::UpdateLeadMerge { .. } => {
            let tx = crate::commerce::InTx(tx);
            crm_storage_sql::merge::apply(&tx, Dialect::Postgres, w).await
        }
        Write::InsertSubjectKey(k) => {
            let tx = crate::commerce::InTx(tx);
            crm_storage_sql::erasure::insert_key(&tx, Dialect::Postgres, k).await
        }
        Write::Erase(e) => {
            let tx = crate::commerce::InTx(tx);
            crm_storage_sql::erasure::erase(&tx, Dialect::Postgres, e).await
        }
        _ => Err(Error::invalid("writes", "unsupported write")),
    }
}

/// The rows of an insert-only change set, grouped per table in foreign-key order.
#[derive(Default)]
struct Batches {
    tables: Vec<(&'static Table, Vec<Vec<Value>>)>,
}

impl Batches {
    fn push(&mut self, table: &'static Table, row: Vec<Value>) {
        match self.tables.iter_mut().find(|(t, _)| t.name == table.name) {
            Some((_, rows)) => rows.push(row),
            None => self.tables.push((table, vec![row])),
        }
    }

    fn ordered(mut self) -> Vec<(&'static Table, Vec<Vec<Value>>)> {
        const ORDER: [&str; 20] = [
            "partners",
            "partner_keys",
            "contact_refs",
            "pipelines",
            "lost_reasons",
            "product_categories",
            "products",
            "campaigns",
            "leads",
            "lead_tags",
            "requests",
            "comments",
            "events",
            "stage_history",
            "exchange_rates",
            "documents",
            "document_lines",
            "allocations",
            "campaign_costs",
            "campaign_targets",
        ];
        self.tables.sort_by_key(|(t, _)| {
            ORDER
                .iter()
                .position(|n| *n == t.name)
                .unwrap_or(ORDER.len())
        });
        self.tables
    }
}

static PARTNERS: &Table = &rows::PARTNERS;
static PARTNER_KEYS: &Table = &rows::PARTNER_KEYS;
static CONTACT_REFS: &Table = &crm_storage_sql::schema::CONTACT_REFS;
static PIPELINES: &Table = &rows::PIPELINES;
static LOST_REASONS: &Table = &rows::LOST_REASONS;
static LEADS: &Table = &rows::LEADS;
static LEAD_TAGS: &Table = &rows::LEAD_TAGS;
static REQUESTS: &Table = &rows::REQUESTS;
static COMMENTS: &Table = &rows::COMMENTS;
static EVENTS: &Table = &rows::EVENTS;
static STAGE_HISTORY: &Table = &rows::STAGE_HISTORY;

async fn copy_rows(tx: &Tx<'_>, table: &Table, rows: &[Vec<Value>]) -> Result<u64> {
    let sink = tx.copy_in(&rows::copy_sql(table)).await.map_err(map_pg)?;
    let writer = BinaryCopyInWriter::new(sink, &rows::types(table));
    let mut writer = std::pin::pin!(writer);
    for row in rows {
        writer
            .as_mut()
            .write(&rows::params(row))
            .await
            .map_err(map_pg)?;
    }
    writer.as_mut().finish().await.map_err(map_pg)
}

async fn insert_rows(tx: &Tx<'_>, table: &Table, rows: &[Vec<Value>], batch: usize) -> Result<u64> {
    // PostgreSQL takes at most 65535 parameters per statement.
    let per = batch.min(65_535 / table.columns.len()).max(1);
    let mut n = 0;
    for chunk in rows.chunks(per) {
        let stmt = tx
            .prepare_cached(&table.insert_sql(Dialect::Postgres, chunk.len()))
            .await
            .map_err(map_pg)?;
        let params: Vec<&(dyn ToSql + Sync)> = chunk.iter().flat_map(|r| rows::params(r)).collect();
        n += tx.execute(&stmt, &params).await.map_err(map_pg)?;
    }
    Ok(n)
}

// ------------------------------------------------------------------------------------------------- reads

fn board_sql(tenant: TenantId, pipeline: PipelineId) -> Sql {
    let mut sql = Sql::new();
    let t = sql.bind(*tenant.as_uuid());
    let p = sql.bind(*pipeline.as_uuid());
    // Weighted = expected × probability × 0.01, multiplied (never divided) so NUMERIC keeps it exact.
    sql.text = format!(
        "SELECT stage, currency, count(*), sum(expected), sum(expected * probability * 0.01)
         FROM leads WHERE tenant = {t} AND pipeline = {p} AND status IN (0, 1)
         GROUP BY stage, currency"
    );
    sql
}

fn leads_sql(tenant: TenantId, q: &LeadQuery, after: Option<(i64, Uuid)>) -> Result<Sql> {
    use crm_core::store::LeadSort;
    let mut sql = Sql::new();
    let t = sql.bind(*tenant.as_uuid());
    let score_key;
    let key = match q.sort {
        LeadSort::CreatedDesc | LeadSort::CreatedAsc => "l.created_us",
        LeadSort::UpdatedDesc => "l.updated_us",
        LeadSort::ExpectedRevenueDesc => "l.revenue_key",
        LeadSort::ScoreDesc => {
            score_key = crm_storage_sql::schema::lead_score_key(Dialect::Postgres, "l.doc");
            score_key.as_str()
        }
    };
    let needle = q.text_needle();
    let mut text = String::from("SELECT l.doc FROM leads l");
    if needle.is_some() {
        text.push_str(" JOIN partners p ON p.tenant = l.tenant AND p.id = l.partner");
    }
    text.push_str(&format!(" WHERE l.tenant = {t}"));
    if let Some(v) = q.pipeline {
        text.push_str(&format!(" AND l.pipeline = {}", sql.bind(*v.as_uuid())));
    }
    if let Some(v) = q.stage {
        text.push_str(&format!(" AND l.stage = {}", sql.bind(*v.as_uuid())));
    }
    match q.status {
        Some(v) => text.push_str(&format!(" AND l.status = {}", sql.bind(v.code()))),
        // Merged leads are tombstones: listed only when asked for by status.
        None => text.push_str(" AND l.status <> 3"),
    }
    if let Some(v) = q.owner {
        text.push_str(&format!(" AND l.owner = {}", sql.bind(*v.as_uuid())));
    }
    if let Some(v) = q.partner {
        text.push_str(&format!(" AND l.partner = {}", sql.bind(*v.as_uuid())));
    }
    if let Some(tag) = q.tag_needle() {
        let tag = sql.bind(tag);
        text.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM lead_tags g WHERE g.tenant = l.tenant AND g.lead = l.id AND g.tag = {tag})"
        ));
    }
    if let Some(t) = q.updated_before {
        text.push_str(&format!(" AND l.updated_us < {}", sql.bind(to_micros(t))));
    }
    if let Some(d) = q.close_before {
        // ISO dates compare as text: the expression of the `leads_close` index (migration 0004).
        let d = sql.bind(d.format("%Y-%m-%d").to_string());
        text.push_str(&format!(
            " AND ((l.doc ->> 'expected_close')) COLLATE \"C\" < {d}"
        ));
    }
    if let Some(n) = &needle {
        let pat = sql.bind(like_contains(n));
        text.push_str(&format!(
            " AND (l.search LIKE {pat} ESCAPE '\\' OR p.search LIKE {pat} ESCAPE '\\')"
        ));
    }
    let (cmp, dir) = if q.sort.descending() {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some((k, id)) = after {
        let k = sql.bind(k);
        let id = sql.bind(id);
        text.push_str(&format!(" AND ({key}, l.id) {cmp} ({k}, {id})"));
    }
    let limit = sql.bind(i64::from(q.page.limit) + 1);
    text.push_str(&format!(" ORDER BY {key} {dir}, l.id {dir} LIMIT {limit}"));
    sql.text = text;
    Ok(sql)
}

fn currency_of(code: &str) -> Result<Currency> {
    Currency::parse(code.trim()).map_err(|e| crate::error::corrupt("currency", e))
}

crm_storage_sql::store!(PgStore);

#[async_trait]
impl crm_storage_sql::store::AdapterStore for PgStore {
    async fn fetch_records(&self, tenant: TenantId, key: &Key) -> Result<Vec<Record>> {
        if let Key::PartnersByKeys(keys) = key {
            return self
                .read_partners_by_keys(tenant, keys)
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
        let (sql, doc) = fetch::store_key(Dialect::Postgres, tenant, key).ok_or_else(|| {
            Error::invalid("key", "a key this version of the engine does not know")
        })?;
        if let Some((exists, missing)) = fetch::lead_exists(Dialect::Postgres, tenant, key) {
            if self.run(&Sql::from(exists)).await?.is_empty() {
                return Err(missing);
            }
        }
        self.run(&Sql::from(sql))
            .await?
            .iter()
            .map(|r| doc.record(r.get::<_, &str>(0)))
            .collect()
    }

    async fn commit_changes(&self, tenant: TenantId, changes: ChangeSet) -> Result<()> {
        changes.check(tenant)?;
        if changes.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.begin().await?;
        let applied = async {
            let mut events = Vec::new();
            for w in changes.writes() {
                apply_write(&tx, w, &mut events).await?;
            }
            if !events.is_empty() {
                let first = allocate_positions(&tx, tenant, events.len()).await?;
                for (i, e) in events.iter().enumerate() {
                    insert(
                        &tx,
                        &rows::EVENTS,
                        rows::event_row(e, first + i as i64)?,
                        e.id,
                    )
                    .await?;
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        tx.finish(applied).await
    }

    async fn ingest_changes(&self, tenant: TenantId, changes: ChangeSet) -> Result<u64> {
        changes.check_insert_only()?;
        changes.check(tenant)?;
        if changes.is_empty() {
            return Ok(0);
        }
        let mut batches = Batches::default();
        let mut events = Vec::new();
        let mut outbox = Vec::new();
        let mut documents = Vec::new();
        let mut targets = Vec::new();
        for w in changes.writes() {
            match w {
                Write::InsertPartner { partner, keys } => {
                    batches.push(PARTNERS, rows::partner_row(partner)?);
                    for k in rows::encoded_keys(keys) {
                        batches.push(PARTNER_KEYS, rows::partner_key_row(partner, &k));
                    }
                    for row in rows::contact_ref_rows(partner) {
                        batches.push(CONTACT_REFS, row);
                    }
                }
                Write::InsertPipeline(p) => batches.push(PIPELINES, rows::pipeline_row(p)?),
                Write::InsertLostReason(r) => batches.push(LOST_REASONS, rows::lost_reason_row(r)?),
                Write::InsertLead(l) => {
                    batches.push(LEADS, rows::lead_row(l)?);
                    for t in rows::lead_tags(l) {
                        batches.push(LEAD_TAGS, rows::lead_tag_row(l, &t));
                    }
                }
                Write::InsertRequest(r) => batches.push(REQUESTS, rows::request_row(r)?),
                Write::InsertComment(c) => batches.push(COMMENTS, rows::comment_row(c)?),
                Write::AppendEvent(e) => events.push(e),
                Write::AppendStageHistory(h) => {
                    batches.push(STAGE_HISTORY, rows::stage_history_row(h)?)
                }
                Write::Commerce(c) => {
                    match c {
                        crm_core::commerce::CommerceWrite::InsertDocument(d) => {
                            documents.push(*d.id().as_uuid())
                        }
                        crm_core::commerce::CommerceWrite::InsertCampaignTarget(t) => {
                            targets.push((*t.campaign().as_uuid(), *t.partner().as_uuid()))
                        }
                        _ => {}
                    }
                    for (table, row) in crate::commerce::ingest_rows(c)? {
                        batches.push(table, row);
                    }
                }
                Write::EnqueueOutbox(m) => outbox.push(m),
                Write::InsertSubjectKey(k) => batches.push(
                    &crm_storage_sql::schema::SUBJECT_KEYS,
                    rows::subject_key_row(k)?,
                ),
                _ => return Err(Error::invalid("writes", "unsupported write")),
            }
        }
        let mut client = self.client().await?;
        let tx = client.begin().await?;
        let applied = async {
            // Whether the tenant's bulk load is open, asked first: the share lock it takes makes a `Finish` wait
            // for this ingest, and taking it before the rows' locks keeps that wait from turning into a deadlock
            // with the finish's index builds.
            if !(documents.is_empty() && targets.is_empty())
                && crate::commerce::bulk_open(&tx, tenant).await?
            {
                documents.clear();
                targets.clear();
            }
            if !events.is_empty() {
                let first = allocate_positions(&tx, tenant, events.len()).await?;
                for (i, e) in events.iter().enumerate() {
                    batches.push(EVENTS, rows::event_row(e, first + i as i64)?);
                }
            }
            for (table, rows) in batches.ordered() {
                match self.config.ingest {
                    IngestMode::Copy => copy_rows(&tx, table, &rows).await?,
                    _ => insert_rows(&tx, table, &rows, self.config.insert_batch).await?,
                };
            }
            // The roll-ups gain the batch's sales documents and the campaign report's counts its targets, a few
            // hundred per statement, unless the tenant has a bulk load open (whose finish rebuilds them: both were
            // emptied above).
            for sql in crm_storage_sql::rollup::apply_ingested(
                Dialect::Postgres,
                tenant,
                &documents,
                &targets,
            ) {
                let sql = Sql::from(sql);
                tx.execute(&sql.text, &rows::params(&sql.params))
                    .await
                    .map_err(map_pg)?;
            }
            // Enqueueing skips an existing idempotency key, which COPY cannot: one upsert each.
            for m in outbox {
                crate::outbox::enqueue(&tx, m).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        tx.finish(applied).await?;
        Ok(changes.len() as u64)
    }

    async fn bulk_step(&self, tenant: TenantId, step: BulkStep) -> Result<BulkLoad> {
        let mut client = self.client().await?;
        let tx = client.begin().await?;
        let ran = crate::commerce::bulk_step(&tx, tenant, step).await;
        tx.finish(ran).await
    }

    async fn leads_page(&self, tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>> {
        let after = crm_storage_sql::page_after(&query.page)?;
        let sql = leads_sql(tenant, query, after)?;
        let rows = self.run(&sql).await?;
        let leads = rows
            .iter()
            .map(|r| rows::doc::<Lead>(r, 0, "lead"))
            .collect::<Result<Vec<_>>>()?;
        Ok(crm_storage_sql::paginate(leads, query.page.limit, |l| {
            (query.sort.key(l), *l.id().as_uuid())
        }))
    }

    async fn board_of(&self, tenant: TenantId, pipeline: PipelineId) -> Result<Board> {
        let p = self.pipeline(tenant, pipeline).await?;
        let rows = self.run(&board_sql(tenant, pipeline)).await?;
        // stage → (count, currency → (expected, weighted)).
        type Sums = (u64, BTreeMap<Currency, (Decimal, Decimal)>);
        let mut by: BTreeMap<Uuid, Sums> = BTreeMap::new();
        for r in &rows {
            let entry = by.entry(r.get(0)).or_default();
            entry.0 += r.get::<_, i64>(2) as u64;
            if let Some(code) = r.get::<_, Option<String>>(1) {
                let expected: Decimal = r.get(3);
                let weighted: Decimal = r.get(4);
                entry.1.insert(currency_of(&code)?, (expected, weighted));
            }
        }
        let columns = p
            .stages()
            .iter()
            .map(|s| {
                let sums = by.remove(s.id.as_uuid()).unwrap_or_default();
                BoardColumn {
                    stage: s.id,
                    name: s.name.clone(),
                    kind: s.kind,
                    fold: s.fold,
                    count: sums.0,
                    totals: sums
                        .1
                        .into_iter()
                        .map(|(currency, (e, w))| CurrencyTotal {
                            currency,
                            expected: e.normalize(),
                            weighted: w.normalize(),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Board { pipeline, columns })
    }
}

impl PgStore {
    async fn read_partners_by_keys(
        &self,
        tenant: TenantId,
        keys: &[DedupeKey],
    ) -> Result<Vec<KeyMatch>> {
        let keys: Vec<String> = rows::encoded_keys(keys).into_iter().collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "WITH m AS (
                     SELECT DISTINCT partner FROM partner_keys
                     WHERE tenant = $1 AND key = ANY($2) ORDER BY partner LIMIT 100)
                 SELECT k.partner, p.name, k.key
                 FROM m
                 JOIN partner_keys k ON k.tenant = $1 AND k.partner = m.partner AND k.key = ANY($2)
                 JOIN partners p ON p.tenant = $1 AND p.id = k.partner
                 ORDER BY k.partner, k.key",
                &[tenant.as_uuid(), &keys],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.get(2);
                Ok(KeyMatch {
                    partner: PartnerId::from_uuid(r.get(0)),
                    name: r.get(1),
                    key: DedupeKey::decode(&key)
                        .ok_or_else(|| crate::error::corrupt("partner key", &key))?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn update_sql_checks_the_version() {
        let s = rows::PIPELINES.update_sql(Dialect::Postgres, 2);
        assert_eq!(
            s,
            "UPDATE pipelines SET created_us = $3, doc = $4 WHERE tenant = $1 AND id = $2 AND version = $5"
        );
    }
}
