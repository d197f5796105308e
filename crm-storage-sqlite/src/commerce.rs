//! `CommerceStore` for SQLite: products, documents, rates, campaigns and the reports, pushed down to SQL.
//!
//! The statements, the rows they write and the decoding of what the reports read are built once in
//! `crm_storage_sql::commerce` (the PostgreSQL adapter runs the same): reports are GROUP BY queries over integer
//! columns (10^-4 units, already converted into the reporting currency when the document was recorded); segments are
//! one SELECT over `partners` whose WHERE clause is generated from the criteria tree. What is this adapter's: running
//! the steps of a write inside its transaction.

use crate::error::map;
use crate::rows::bind;
use crate::SqliteStore;
use crm_core::commerce::CommerceWrite;
use crm_core::{Error, Result, StorageErrorKind};
use crm_storage_sql::commerce;
use crm_storage_sql::{Dialect, Sql};
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// The commit's transaction, running the shared statements of a commerce write.
struct InTx<'a>(&'a Connection);

impl commerce::Exec for InTx<'_> {
    async fn execute(&self, sql: Sql) -> Result<u64> {
        crate::rows::execute(self.0, &sql)
    }

    async fn first_int(&self, sql: Sql) -> Result<Option<i64>> {
        let mut stmt = self.0.prepare_cached(&sql.text).map_err(map)?;
        stmt.query_row(params_from_iter(sql.params.iter().map(bind)), |r| r.get(0))
            .optional()
            .map_err(map)
    }

    async fn texts(&self, sql: Sql) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare(&sql.text).map_err(map)?;
        let rows = stmt
            .query_map(params_from_iter(sql.params.iter().map(bind)), |r| {
                r.get::<_, String>(0)
            })
            .map_err(map)?;
        rows.collect::<std::result::Result<_, _>>().map_err(map)
    }
}

/// Applies one commerce write inside the commit's transaction. The shared steps' future never waits (every
/// statement here runs synchronously), so one poll completes it, on whatever thread holds the connection.
pub(crate) fn apply(tx: &Connection, w: &CommerceWrite) -> Result<()> {
    let tx = InTx(tx);
    at_once(commerce::apply(&tx, Dialect::Sqlite, w))
}

/// Applies one insert-only commerce write of an ingest, without its roll-up statements (see
/// [`commerce::apply_ingest`]).
pub(crate) fn apply_ingest(tx: &Connection, w: &CommerceWrite) -> Result<()> {
    let tx = InTx(tx);
    at_once(commerce::apply_ingest(&tx, Dialect::Sqlite, w))
}

/// Whether `tenant` has a bulk load open (its ingests then leave the roll-ups alone).
pub(crate) fn bulk_open(tx: &Connection, tenant: crm_core::id::TenantId) -> Result<bool> {
    let tx = InTx(tx);
    let sql = crm_storage_sql::bulk::is_open(Dialect::Sqlite, tenant);
    Ok(at_once(commerce::Exec::first_int(&tx, sql))?.unwrap_or(0) > 0)
}

/// One step of a bulk load inside the transaction `tx` (see [`crm_storage_sql::bulk`]).
pub(crate) fn bulk_step(
    tx: &Connection,
    tenant: crm_core::id::TenantId,
    step: crm_core::store::BulkStep,
) -> Result<crm_core::store::BulkLoad> {
    let tx = InTx(tx);
    at_once(crm_storage_sql::bulk::step(
        &tx,
        Dialect::Sqlite,
        tenant,
        step,
    ))
}

/// Finishes the bulk loads a crash left open, inside the transaction `tx` (see [`crm_storage_sql::bulk::recover`]).
pub(crate) fn bulk_recover(tx: &Connection) -> Result<Vec<crm_core::id::TenantId>> {
    let tx = InTx(tx);
    at_once(crm_storage_sql::bulk::recover(&tx, Dialect::Sqlite))
}

/// Applies a merge's write (`Write::Repoint`, `RepointLead` and the journals) inside the commit's transaction.
pub(crate) fn merge_write(tx: &Connection, w: &crm_core::store::Write) -> Result<()> {
    let tx = InTx(tx);
    at_once(crm_storage_sql::merge::apply(&tx, Dialect::Sqlite, w))
}

/// Stores a data subject's key (`Write::InsertSubjectKey`).
pub(crate) fn insert_key(tx: &Connection, k: &crm_core::erasure::SubjectKey) -> Result<()> {
    let tx = InTx(tx);
    at_once(crm_storage_sql::erasure::insert_key(
        &tx,
        Dialect::Sqlite,
        k,
    ))
}

/// Erases a person (`Write::Erase`).
pub(crate) fn erase(tx: &Connection, e: &crm_core::erasure::Erasure) -> Result<()> {
    let tx = InTx(tx);
    at_once(crm_storage_sql::erasure::erase(&tx, Dialect::Sqlite, e))
}

/// Runs a shared write's future, which never waits here (every statement runs synchronously), so one poll
/// completes it, on whatever thread holds the connection.
fn at_once<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let future = std::pin::pin!(future);
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(done) => done,
        Poll::Pending => Err(Error::storage(
            StorageErrorKind::Other,
            "a synchronous commerce write waited",
        )),
    }
}

// ------------------------------------------------------------------------------------------------ reads

// The reads are the shared ones of `crm_storage_sql::commerce`, run by `SqliteStore`'s `Runner`.
crm_storage_sql::commerce_store!(SqliteStore);
