//! The transactional outbox and in-app inboxes on SQLite (`crm_core::outbox::OutboxStore`).
//!
//! Messages are enqueued only by `Write::EnqueueOutbox` inside `Store::commit` ([`enqueue`] runs in the change's
//! transaction); the dispatcher's claims and outcomes are single statements on the writer thread, so two
//! dispatchers in one process never claim the same message while its lease runs.

use crate::error::{corrupt, map};
use crate::rows::{blob, doc, parse, uuid};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::Duration;
use crm_core::id::{InboxItemId, OutboxId, TenantId, UserId};
use crm_core::outbox::{
    InboxItem, InboxWrite, OutboxMessage, OutboxRef, OutboxStatus, OutboxStore, Settlement,
};
use crm_core::store::{Cursor, Page, PageRequest};
use crm_core::time::{from_micros, Timestamp};
use crm_core::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

fn code(s: OutboxStatus) -> i64 {
    match s {
        OutboxStatus::Pending => 0,
        OutboxStatus::Delivered => 1,
        OutboxStatus::Dead => 2,
    }
}

fn status_of(c: i64) -> Result<OutboxStatus> {
    Ok(match c {
        0 => OutboxStatus::Pending,
        1 => OutboxStatus::Delivered,
        2 => OutboxStatus::Dead,
        other => return Err(corrupt("outbox status", other)),
    })
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

/// Runs an UPDATE on a pending message of the tenant; when it matched nothing, says why.
fn update_pending(
    conn: &mut Connection,
    tenant: TenantId,
    id: OutboxId,
    sql: &str,
    extra: &[&dyn rusqlite::ToSql],
    delivered_is_ok: bool,
) -> Result<()> {
    let mut p: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(extra.len() + 2);
    let t = blob(tenant.as_uuid());
    let i = blob(id.as_uuid());
    p.push(&t);
    p.push(&i);
    p.extend_from_slice(extra);
    let n = conn.execute(sql, p.as_slice()).map_err(map)?;
    if n == 1 {
        return Ok(());
    }
    let current = one(conn, tenant, id)?;
    if delivered_is_ok && current.status == OutboxStatus::Delivered {
        return Ok(());
    }
    Err(Error::invalid(
        "status",
        format!("message {id} is {}, not pending", current.status.as_str()),
    ))
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
        match how {
            Settlement::Delivered { at } => self.do_mark_delivered(tenant, id, *at).await,
            Settlement::Retry { error, at } => self.do_mark_retry(tenant, id, error, *at).await,
            Settlement::Dead { error } => self.do_mark_dead(tenant, id, error).await,
            Settlement::Revive { now } => self.do_retry_dead(tenant, id, *now).await.map(|_| ()),
            _ => Err(Error::invalid(
                "settlement",
                "this store does not know the settlement",
            )),
        }
    }

    async fn find_outbox(&self, tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage> {
        match by {
            OutboxRef::Id(id) => self.do_outbox_message(tenant, *id).await,
            OutboxRef::Key(key) => self.do_outbox_by_key(tenant, key).await,
            _ => Err(Error::invalid(
                "by",
                "this store does not know the reference",
            )),
        }
    }

    async fn inbox_write(&self, write: &InboxWrite) -> Result<bool> {
        match write {
            InboxWrite::Put(item) => self.do_inbox_put(item.clone()).await,
            InboxWrite::SetRead {
                tenant,
                user,
                item,
                read_at,
            } => self
                .do_set_read(*tenant, *user, *item, *read_at)
                .await
                .map(|()| true),
            _ => Err(Error::invalid(
                "write",
                "this store does not know the inbox write",
            )),
        }
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
            Ok(paged(items, keys, page.limit))
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
            Ok(paged(items, keys, page.limit))
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

impl SqliteStore {
    async fn do_mark_delivered(&self, tenant: TenantId, id: OutboxId, at: Timestamp) -> Result<()> {
        let at = at.timestamp_micros();
        self.with_writer(move |c| {
            update_pending(
                c,
                tenant,
                id,
                "UPDATE outbox SET status = 1, delivered_at = ?3 WHERE tenant = ?1 AND id = ?2 AND status = 0",
                &[&at],
                true,
            )
        })
        .await
    }

    async fn do_mark_retry(
        &self,
        tenant: TenantId,
        id: OutboxId,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<()> {
        let (error, at) = (error.to_string(), retry_at.timestamp_micros());
        self.with_writer(move |c| {
            update_pending(
                c,
                tenant,
                id,
                "UPDATE outbox SET last_error = ?3, next_attempt_at = ?4 WHERE tenant = ?1 AND id = ?2 AND status = 0",
                &[&error, &at],
                false,
            )
        })
        .await
    }

    async fn do_mark_dead(&self, tenant: TenantId, id: OutboxId, error: &str) -> Result<()> {
        let error = error.to_string();
        self.with_writer(move |c| {
            update_pending(
                c,
                tenant,
                id,
                "UPDATE outbox SET status = 2, last_error = ?3 WHERE tenant = ?1 AND id = ?2 AND status = 0",
                &[&error],
                false,
            )
        })
        .await
    }

    async fn do_outbox_message(&self, tenant: TenantId, id: OutboxId) -> Result<OutboxMessage> {
        self.with_reader(move |c| one(c, tenant, id)).await
    }

    async fn do_outbox_by_key(&self, tenant: TenantId, key: &str) -> Result<OutboxMessage> {
        let key = key.to_string();
        self.with_reader(move |c| {
            let sql =
                format!("SELECT {COLUMNS} FROM outbox WHERE tenant = ?1 AND idempotency_key = ?2");
            let mut s = c.prepare_cached(&sql).map_err(map)?;
            let mut rows = s.query(params![blob(tenant.as_uuid()), key]).map_err(map)?;
            match rows.next().map_err(map)? {
                Some(r) => message(r),
                None => Err(Error::not_found(OutboxId::ENTITY, key.clone())),
            }
        })
        .await
    }

    async fn do_retry_dead(
        &self,
        tenant: TenantId,
        id: OutboxId,
        now: Timestamp,
    ) -> Result<OutboxMessage> {
        let now = now.timestamp_micros();
        self.with_writer(move |c| {
            let n = c
                .execute(
                    "UPDATE outbox SET status = 0, attempts = 0, next_attempt_at = ?3 \
                     WHERE tenant = ?1 AND id = ?2 AND status = 2",
                    params![blob(tenant.as_uuid()), blob(id.as_uuid()), now],
                )
                .map_err(map)?;
            let m = one(c, tenant, id)?;
            if n == 0 {
                return Err(Error::invalid(
                    "status",
                    format!(
                        "message {id} is {}: only dead messages can be retried",
                        m.status.as_str()
                    ),
                ));
            }
            Ok(m)
        })
        .await
    }

    async fn do_inbox_put(&self, item: InboxItem) -> Result<bool> {
        self.with_writer(move |c| {
            let n = c
                .execute(
                    "INSERT INTO inbox (tenant, id, user, message, created_at, read_at, doc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant, message) DO NOTHING",
                    params![
                        blob(item.tenant.as_uuid()),
                        blob(item.id.as_uuid()),
                        blob(item.user.as_uuid()),
                        blob(item.message.as_uuid()),
                        item.created_at.timestamp_micros(),
                        item.read_at.map(|t| t.timestamp_micros()),
                        doc(&item),
                    ],
                )
                .map_err(map)?;
            Ok(n == 1)
        })
        .await
    }

    async fn do_set_read(
        &self,
        tenant: TenantId,
        user: UserId,
        item: InboxItemId,
        read_at: Option<Timestamp>,
    ) -> Result<()> {
        let at = read_at.map(|t| t.timestamp_micros());
        self.with_writer(move |c| {
            let n = c
                .execute(
                    "UPDATE inbox SET read_at = ?4 WHERE tenant = ?1 AND user = ?2 AND id = ?3",
                    params![
                        blob(tenant.as_uuid()),
                        blob(user.as_uuid()),
                        blob(item.as_uuid()),
                        at
                    ],
                )
                .map_err(map)?;
            if n == 0 {
                return Err(Error::not_found(InboxItemId::ENTITY, item));
            }
            Ok(())
        })
        .await
    }
}

fn paged<T>(mut items: Vec<T>, keys: Vec<(i64, uuid::Uuid)>, limit: u32) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more {
        keys.get(limit as usize - 1)
            .map(|(k, id)| Cursor::encode(*k, *id))
    } else {
        None
    };
    Page { items, next }
}
