//! The transactional outbox and in-app inboxes on SQLite (`crm_core::outbox::OutboxStore`).
//!
//! Messages are enqueued only by `Write::EnqueueOutbox` inside `Store::commit` ([`enqueue`] runs in the change's
//! transaction); the dispatcher's claims and outcomes are single statements on the writer thread, so two
//! dispatchers in one process never claim the same message while its lease runs.

use crm_core::outbox::OutboxMessage;
use crm_core::Result;
use crm_storage_sql::Dialect;
use rusqlite::Connection;

/// Inserts a message in the commit's transaction; an existing (tenant, idempotency key) makes it a no-op.
pub(crate) fn enqueue(tx: &Connection, m: &OutboxMessage) -> Result<()> {
    let sql = crm_storage_sql::outbox::enqueue(Dialect::Sqlite, m)?;
    crate::rows::execute(tx, &sql).map(|_| ())
}

// The store's methods are the shared ones of `crm_storage_sql::outbox`, run by `SqliteStore`'s `Runner`.
crm_storage_sql::outbox_store!(crate::SqliteStore);
