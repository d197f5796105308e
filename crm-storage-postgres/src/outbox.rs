//! The transactional outbox and in-app inboxes on PostgreSQL (`crm_core::outbox::OutboxStore`).
//!
//! Messages are enqueued only by `Write::EnqueueOutbox` inside `Store::commit` ([`enqueue`] runs in the change's
//! transaction). Claims are one `UPDATE … WHERE (tenant, id) IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, so
//! dispatchers in any number of processes never claim the same message while its lease runs, and never wait on
//! each other.

use crate::commerce::InTx;
use crate::store::{PgStore, Tx};
use crm_core::outbox::OutboxMessage;
use crm_core::Result;
use crm_storage_sql::commerce::Exec;
use crm_storage_sql::Dialect;

/// Inserts a message in the commit's transaction; an existing (tenant, idempotency key) makes it a no-op.
pub(crate) async fn enqueue(tx: &Tx<'_>, m: &OutboxMessage) -> Result<()> {
    let sql = crm_storage_sql::outbox::enqueue(Dialect::Postgres, m)?;
    InTx(tx).execute(sql).await.map(|_| ())
}

// The store's methods are the shared ones of `crm_storage_sql::outbox`, run by `PgStore`'s `Runner`.
crm_storage_sql::outbox_store!(PgStore);
