//! The transactional outbox and in-app inboxes on SQLite (`crm_core::outbox::OutboxStore`).
//!
//! Messages are enqueued only by `Write::EnqueueOutbox` inside `Store::commit` ([`enqueue`] runs in the change's
//! transaction); the dispatcher's claims and outcomes are single statements on the writer thread, so two
//! dispatchers in one process never claim the same message while its lease runs.

use crate::error::{corrupt, map};
use crate::rows::bind;
use crate::rows::{blob, doc, parse, uuid};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::Duration;
use crm_core::id::{InboxItemId, OutboxId, TenantId, UserId};
use crm_core::outbox::{
    InboxItem, InboxWrite, OutboxMessage, OutboxRef, OutboxStatus, OutboxStore, Settlement,
};
use crm_core::store::{Page, PageRequest};
use crm_core::time::{from_micros, Timestamp};
use crm_core::{Error, Result};
use crm_storage_sql::outbox as shared;
use crm_storage_sql::{Dialect, Param};
use rusqlite::params_from_iter;
use rusqlite::{params, Connection, OptionalExtension, Row};

fn code(s: OutboxStatus) -> i16 {
    shared::status_code(s)
}

fn status_of(c: i64) -> Result<OutboxStatus> {
    shared::status_of(c).ok_or_else(|| corrupt("outbox status", c))
}

fn time(micros: i64) -> Result<Timestamp> {
    from_micros(micros).ok_or_else(|| corrupt("time", micros))
}

/// Inserts a message in the commit's transaction; an existing (tenant, idempotency key) makes it a no-op.
pub(crate) fn enqueue(tx: &Connection, m: &OutboxMessage) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (tenant, id, idempotency_key, status, attempts, next_attempt_at, last_error, created_at, \
         delivered_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (tenant, idempotency_key) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            blob(m.tenant.as_uuid()),
            blob(m.id.as_uuid()),
            m.idempotency_key,
            code(m.status),
            m.attempts as i64,
            m.next_attempt_at.timestamp_micros(),
            m.last_error,
            m.created_at.timestamp_micros(),
            m.delivered_at.map(|t| t.timestamp_micros()),
            doc(m),
        ])
    })
    .map(|_| ())
    .map_err(map)
}

const COLUMNS: &str = "doc, status, attempts, next_attempt_at, last_error, delivered_at";

fn message(r: &Row<'_>) -> Result<OutboxMessage> {
    let text: String = r.get(0).map_err(map)?;
    let mut m: OutboxMessage = parse("outbox message", &text)?;
    m.status = status_of(r.get(1).map_err(map)?)?;
    m.attempts = r.get::<_, i64>(2).map_err(map)? as u32;
    m.next_attempt_at = time(r.get(3).map_err(map)?)?;
    m.last_error = r.get(4).map_err(map)?;
    m.delivered_at = r
        .get::<_, Option<i64>>(5)
        .map_err(map)?
        .map(time)
        .transpose()?;
    Ok(m)
}

fn one(conn: &Connection, tenant: TenantId, id: OutboxId) -> Result<OutboxMessage> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE tenant = ?1 AND id = ?2");
    let mut s = conn.prepare_cached(&sql).map_err(map)?;
    let mut rows = s
        .query(params![blob(tenant.as_uuid()), blob(id.as_uuid())])
        .map_err(map)?;
    match rows.next().map_err(map)? {
        Some(r) => message(r),
        None => Err(Error::not_found(OutboxId::ENTITY, id)),
    }
}

fn inbox_item(r: &Row<'_>) -> Result<InboxItem> {
    let text: String = r.get(0).map_err(map)?;
    let mut i: InboxItem = parse("inbox item", &text)?;
    i.read_at = r
        .get::<_, Option<i64>>(1)
        .map_err(map)?
        .map(time)
        .transpose()?;
    Ok(i)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn settle(&self, tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<()> {
        let sql = shared::settle(Dialect::Sqlite, tenant, id, how)?;
        let how = how.clone();
        self.with_writer(move |c| {
            let changed = c
                .execute(&sql.text, params_from_iter(sql.params.iter().map(bind)))
                .map_err(map)?;
            let now = if changed == 0 {
                match one(c, tenant, id) {
                    Ok(m) => Some(m.status),
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            shared::settled(&how, id, changed as u64, now)
        })
        .await
    }

    async fn find_outbox(&self, tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage> {
        let sql = shared::find(Dialect::Sqlite, tenant, by, COLUMNS)?;
        let by = by.clone();
        self.with_reader(move |c| {
            let mut s = c.prepare_cached(&sql.text).map_err(map)?;
            let mut rows = s
                .query(params_from_iter(sql.params.iter().map(bind)))
                .map_err(map)?;
            match rows.next().map_err(map)? {
                Some(r) => message(r),
                None => Err(shared::not_found(&by)),
            }
        })
        .await
    }

    async fn inbox_write(&self, write: &InboxWrite) -> Result<bool> {
        let doc = match write {
            InboxWrite::Put(item) => Some(Param::Text(doc(item))),
            _ => None,
        };
        let sql = shared::inbox_write(Dialect::Sqlite, write, doc)?;
        let missing = match write {
            InboxWrite::SetRead { item, .. } => Some(Error::not_found(InboxItemId::ENTITY, item)),
            _ => None,
        };
        self.with_writer(move |c| {
            let changed = c
                .execute(&sql.text, params_from_iter(sql.params.iter().map(bind)))
                .map_err(map)?;
            match missing {
                Some(e) if changed == 0 => Err(e),
                _ => Ok(changed == 1),
            }
        })
        .await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        let until = (now + lease).timestamp_micros();
        let now = now.timestamp_micros();
        self.with_writer(move |c| {
            let sql = format!(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1 WHERE (tenant, id) IN \
                 (SELECT tenant, id FROM outbox WHERE status = 0 AND next_attempt_at <= ?2 \
                  ORDER BY next_attempt_at, id LIMIT ?3) RETURNING {COLUMNS}"
            );
            let mut s = c.prepare_cached(&sql).map_err(map)?;
            let mut rows = s.query(params![until, now, limit as i64]).map_err(map)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(map)? {
                out.push(message(r)?);
            }
            out.sort_by_key(|m| (m.created_at, m.id));
            Ok(out)
        })
        .await
    }

    async fn list_outbox(
        &self,
        tenant: TenantId,
        status: OutboxStatus,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        page.validate()?;
        let page = page.clone();
        self.with_reader(move |c| {
            let after = page.after.as_ref().map(|a| a.decode()).transpose()?;
            let (k, i) = after
                .map(|(k, i)| (k, blob(&i).to_vec()))
                .unwrap_or((i64::MIN, vec![]));
            let sql = format!(
                "SELECT {COLUMNS}, created_at, id FROM outbox WHERE tenant = ?1 AND status = ?2 \
                 AND (created_at > ?3 OR (created_at = ?3 AND id > ?4)) ORDER BY created_at, id LIMIT ?5"
            );
            let mut s = c.prepare_cached(&sql).map_err(map)?;
            let mut rows = s
                .query(params![blob(tenant.as_uuid()), code(status), k, i, page.limit as i64 + 1])
                .map_err(map)?;
            let mut items = Vec::new();
            let mut keys = Vec::new();
            while let Some(r) = rows.next().map_err(map)? {
                items.push(message(r)?);
                let id: Vec<u8> = r.get(7).map_err(map)?;
                keys.push((r.get::<_, i64>(6).map_err(map)?, uuid(&id)?));
            }
            Ok(crm_storage_sql::paginate_keyed(items, keys, page.limit))
        })
        .await
    }

    async fn inbox(
        &self,
        tenant: TenantId,
        user: UserId,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<InboxItem>> {
        page.validate()?;
        let page = page.clone();
        self.with_reader(move |c| {
            let after = page.after.as_ref().map(|a| a.decode()).transpose()?;
            let (k, i) = after
                .map(|(k, i)| (k, blob(&i).to_vec()))
                .unwrap_or((i64::MAX, vec![0xff; 17]));
            let sql = format!(
                "SELECT doc, read_at, created_at, id FROM inbox WHERE tenant = ?1 AND user = ?2 {} \
                 AND (created_at < ?3 OR (created_at = ?3 AND id < ?4)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?5",
                if unread_only { "AND read_at IS NULL" } else { "" }
            );
            let mut s = c.prepare_cached(&sql).map_err(map)?;
            let mut rows = s
                .query(params![
                    blob(tenant.as_uuid()),
                    blob(user.as_uuid()),
                    k,
                    i,
                    page.limit as i64 + 1
                ])
                .map_err(map)?;
            let mut items = Vec::new();
            let mut keys = Vec::new();
            while let Some(r) = rows.next().map_err(map)? {
                items.push(inbox_item(r)?);
                let id: Vec<u8> = r.get(3).map_err(map)?;
                keys.push((r.get::<_, i64>(2).map_err(map)?, uuid(&id)?));
            }
            Ok(crm_storage_sql::paginate_keyed(items, keys, page.limit))
        })
        .await
    }

    async fn unread_count(&self, tenant: TenantId, user: UserId) -> Result<u64> {
        self.with_reader(move |c| {
            c.query_row(
                "SELECT count(*) FROM inbox WHERE tenant = ?1 AND user = ?2 AND read_at IS NULL",
                params![blob(tenant.as_uuid()), blob(user.as_uuid())],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(map)
            .map(|n| n.unwrap_or(0) as u64)
        })
        .await
    }
}
