//! `CommerceStore` on PostgreSQL: products, documents, rates, campaigns and the reports, pushed down to SQL.
//!
//! The statements, the rows they write and the decoding of what the reports read are built once in
//! `crm_storage_sql::commerce` (the SQLite adapter runs the same): reports are GROUP BY queries over bigint 10^-4
//! units, already converted into the reporting currency when a document was recorded; segments are one SELECT over
//! `partners` whose WHERE clause is generated from the criteria tree. Text keys are compared and ordered with
//! `COLLATE "C"` (byte order), whatever the database's collation. What is this adapter's: running the steps of a
//! write inside its transaction, and the bulk rows of ingest.

use crate::error::map_pg;
use crate::rows::{self, Table, Value};
use crate::store::{PgStore, Sql, Tx};
use crm_core::commerce::CommerceWrite;
use crm_core::Result;
use crm_storage_sql::commerce;
use crm_storage_sql::Dialect;

/// The commit's transaction, running the shared statements of a commerce write.
pub(crate) struct InTx<'a, 'c>(pub(crate) &'a Tx<'c>);

impl commerce::Exec for InTx<'_, '_> {
    async fn execute(&self, sql: crm_storage_sql::Sql) -> Result<u64> {
        let sql = Sql::from(sql);
        let stmt = self.0.prepare_cached(&sql.text).await.map_err(map_pg)?;
        self.0
            .execute(&stmt, &rows::params(&sql.params))
            .await
            .map_err(map_pg)
    }

    async fn first_int(&self, sql: crm_storage_sql::Sql) -> Result<Option<i64>> {
        let sql = Sql::from(sql);
        let stmt = self.0.prepare_cached(&sql.text).await.map_err(map_pg)?;
        Ok(self
            .0
            .query_opt(&stmt, &rows::params(&sql.params))
            .await
            .map_err(map_pg)?
            .map(|r| r.get::<_, i64>(0)))
    }

    async fn texts(&self, sql: crm_storage_sql::Sql) -> Result<Vec<String>> {
        let sql = Sql::from(sql);
        Ok(self
            .0
            .query(&sql.text, &rows::params(&sql.params))
            .await
            .map_err(map_pg)?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect())
    }
}

/// Applies one commerce write inside the commit's transaction.
pub(crate) async fn apply(tx: &Tx<'_>, w: &CommerceWrite) -> Result<()> {
    commerce::apply(&InTx(tx), Dialect::Postgres, w).await
}

/// Whether `tenant` has a bulk load open, in the ingest's transaction (its ingests then leave the roll-ups alone).
pub(crate) async fn bulk_open(tx: &Tx<'_>, tenant: crm_core::id::TenantId) -> Result<bool> {
    let sql = crm_storage_sql::bulk::is_open(Dialect::Postgres, tenant);
    Ok(commerce::Exec::first_int(&InTx(tx), sql)
        .await?
        .unwrap_or(0)
        > 0)
}

/// One step of a bulk load inside the transaction `tx` (see [`crm_storage_sql::bulk`]).
pub(crate) async fn bulk_step(
    tx: &Tx<'_>,
    tenant: crm_core::id::TenantId,
    step: crm_core::store::BulkStep,
) -> Result<crm_core::store::BulkLoad> {
    crm_storage_sql::bulk::step(&InTx(tx), Dialect::Postgres, tenant, step).await
}

/// Finishes every bulk load left open, inside the transaction `tx` (see [`crm_storage_sql::bulk::recover`]).
pub(crate) async fn bulk_recover(tx: &Tx<'_>) -> Result<Vec<crm_core::id::TenantId>> {
    crm_storage_sql::bulk::recover(&InTx(tx), Dialect::Postgres).await
}

/// The rows an insert-only commerce write adds, per table (for ingest).
pub(crate) fn ingest_rows(w: &CommerceWrite) -> Result<Vec<(&'static Table, Vec<Value>)>> {
    Ok(commerce::ingest_rows(w)?
        .into_iter()
        .map(|(t, row)| (t, row.into_iter().map(rows::bind).collect()))
        .collect())
}

// ------------------------------------------------------------------------------------------------ reads

// The reads are the shared ones of `crm_storage_sql::commerce`, run by `PgStore`'s `Runner`.
crm_storage_sql::commerce_store!(PgStore);
