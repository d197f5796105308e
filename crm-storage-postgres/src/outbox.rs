//! The transactional outbox and in-app inboxes on PostgreSQL (`crm_core::outbox::OutboxStore`).
//!
//! Messages are enqueued only by `Write::EnqueueOutbox` inside `Store::commit` ([`enqueue`] runs in the change's
//! transaction). Claims are one `UPDATE … WHERE (tenant, id) IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, so
//! dispatchers in any number of processes never claim the same message while its lease runs, and never wait on
//! each other.

use crate::error::{corrupt, map_pg};
use crate::rows;
use crate::store::{PgStore, Tx};
use async_trait::async_trait;
use chrono::Duration;
use crm_core::id::{InboxItemId, OutboxId, TenantId, UserId};
use crm_core::outbox::{
    InboxItem, InboxWrite, OutboxMessage, OutboxRef, OutboxStatus, OutboxStore, Settlement,
};
use crm_core::store::{Cursor, Page, PageRequest};
use crm_core::time::{from_micros, Timestamp};
use crm_core::{Error, Result};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

fn code(s: OutboxStatus) -> i16 {
    match s {
        OutboxStatus::Pending => 0,
        OutboxStatus::Delivered => 1,
        OutboxStatus::Dead => 2,
    }
}

fn status_of(c: i16) -> Result<OutboxStatus> {
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

fn to_json<T: serde::Serialize>(v: &T) -> Result<Json<serde_json::Value>> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| Error::invalid("record", format!("cannot be serialised: {e}")))
}

/// Inserts a message in the commit's transaction; an existing (tenant, idempotency key) makes it a no-op.
pub(crate) async fn enqueue(tx: &Tx<'_>, m: &OutboxMessage) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (tenant, id, idempotency_key, status, attempts, next_attempt_us, last_error,
                 created_us, delivered_us, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant, idempotency_key) DO NOTHING",
        )
        .await
        .map_err(map_pg)?;
    tx.execute(
        &stmt,
        &[
            m.tenant.as_uuid(),
            m.id.as_uuid(),
            &m.idempotency_key,
            &code(m.status),
            &(m.attempts.min(i32::MAX as u32) as i32),
            &m.next_attempt_at.timestamp_micros(),
            &m.last_error,
            &m.created_at.timestamp_micros(),
            &m.delivered_at.map(|t| t.timestamp_micros()),
            &to_json(m)?,
        ],
    )
    .await
    .map_err(map_pg)?;
    Ok(())
}

const COLUMNS: &str = "doc, status, attempts, next_attempt_us, last_error, delivered_us";

fn message(r: &Row) -> Result<OutboxMessage> {
    let mut m: OutboxMessage = rows::doc(r, 0, "outbox message")?;
    m.status = status_of(r.get(1))?;
    m.attempts = r.get::<_, i32>(2).max(0) as u32;
    m.next_attempt_at = time(r.get(3))?;
    m.last_error = r.get(4);
    m.delivered_at = r.get::<_, Option<i64>>(5).map(time).transpose()?;
    Ok(m)
}

fn inbox_item(r: &Row) -> Result<InboxItem> {
    let mut i: InboxItem = rows::doc(r, 0, "inbox item")?;
    i.read_at = r.get::<_, Option<i64>>(1).map(time).transpose()?;
    Ok(i)
}

fn paged<T>(mut items: Vec<T>, keys: Vec<(i64, Uuid)>, limit: u32) -> Page<T> {
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

impl PgStore {
    async fn outbox_one(&self, tenant: TenantId, id: OutboxId) -> Result<OutboxMessage> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE tenant = $1 AND id = $2");
        let rows = self.query(&sql, &[tenant.as_uuid(), id.as_uuid()]).await?;
        match rows.first() {
            Some(r) => message(r),
            None => Err(Error::not_found(OutboxId::ENTITY, id)),
        }
    }

    /// Runs an UPDATE on a pending message of the tenant (`$1` tenant, `$2` id, then `extra`); when it matched
    /// nothing, says why.
    async fn update_pending(
        &self,
        tenant: TenantId,
        id: OutboxId,
        sql: &str,
        extra: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        delivered_is_ok: bool,
    ) -> Result<()> {
        let mut p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![tenant.as_uuid(), id.as_uuid()];
        p.extend_from_slice(extra);
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(map_pg)?;
        let n = client.execute(&stmt, &p).await.map_err(map_pg)?;
        drop(client);
        if n == 1 {
            return Ok(());
        }
        let current = self.outbox_one(tenant, id).await?;
        if delivered_is_ok && current.status == OutboxStatus::Delivered {
            return Ok(());
        }
        Err(Error::invalid(
            "status",
            format!("message {id} is {}, not pending", current.status.as_str()),
        ))
    }
}

#[async_trait]
impl OutboxStore for PgStore {
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
        let sql = format!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_us = $1 WHERE (tenant, id) IN (
                 SELECT tenant, id FROM outbox WHERE status = 0 AND next_attempt_us <= $2
                 ORDER BY next_attempt_us, id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        );
        let rows = self.query(&sql, &[&until, &now, &i64::from(limit)]).await?;
        let mut out = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|m| (m.created_at, m.id));
        Ok(out)
    }

    async fn list_outbox(
        &self,
        tenant: TenantId,
        status: OutboxStatus,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        page.validate()?;
        let (k, i) = page
            .after
            .as_ref()
            .map(Cursor::decode)
            .transpose()?
            .unwrap_or((i64::MIN, Uuid::nil()));
        let sql = format!(
            "SELECT {COLUMNS}, created_us, id FROM outbox WHERE tenant = $1 AND status = $2
             AND (created_us, id) > ($3, $4) ORDER BY created_us, id LIMIT $5"
        );
        let rows = self
            .query(
                &sql,
                &[
                    tenant.as_uuid(),
                    &code(status),
                    &k,
                    &i,
                    &(i64::from(page.limit) + 1),
                ],
            )
            .await?;
        let items = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        let keys = rows.iter().map(|r| (r.get(6), r.get(7))).collect();
        Ok(paged(items, keys, page.limit))
    }

    async fn inbox(
        &self,
        tenant: TenantId,
        user: UserId,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<InboxItem>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::decode).transpose()?;
        let filter = if unread_only {
            "AND read_us IS NULL"
        } else {
            ""
        };
        let limit = i64::from(page.limit) + 1;
        let rows = match after {
            None => {
                let sql = format!(
                    "SELECT doc, read_us, created_us, id FROM inbox WHERE tenant = $1 AND usr = $2 {filter}
                     ORDER BY created_us DESC, id DESC LIMIT $3"
                );
                self.query(&sql, &[tenant.as_uuid(), user.as_uuid(), &limit])
                    .await?
            }
            Some((k, i)) => {
                let sql = format!(
                    "SELECT doc, read_us, created_us, id FROM inbox WHERE tenant = $1 AND usr = $2 {filter}
                     AND (created_us, id) < ($4, $5) ORDER BY created_us DESC, id DESC LIMIT $3"
                );
                self.query(&sql, &[tenant.as_uuid(), user.as_uuid(), &limit, &k, &i])
                    .await?
            }
        };
        let items = rows.iter().map(inbox_item).collect::<Result<Vec<_>>>()?;
        let keys = rows.iter().map(|r| (r.get(2), r.get(3))).collect();
        Ok(paged(items, keys, page.limit))
    }

    async fn unread_count(&self, tenant: TenantId, user: UserId) -> Result<u64> {
        let rows = self
            .query(
                "SELECT count(*) FROM inbox WHERE tenant = $1 AND usr = $2 AND read_us IS NULL",
                &[tenant.as_uuid(), user.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0) as u64)
    }
}

impl PgStore {
    async fn do_mark_delivered(&self, tenant: TenantId, id: OutboxId, at: Timestamp) -> Result<()> {
        self.update_pending(
            tenant,
            id,
            "UPDATE outbox SET status = 1, delivered_us = $3 WHERE tenant = $1 AND id = $2 AND status = 0",
            &[&at.timestamp_micros()],
            true,
        )
        .await
    }

    async fn do_mark_retry(
        &self,
        tenant: TenantId,
        id: OutboxId,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<()> {
        self.update_pending(
            tenant,
            id,
            "UPDATE outbox SET last_error = $3, next_attempt_us = $4 WHERE tenant = $1 AND id = $2 AND status = 0",
            &[&error, &retry_at.timestamp_micros()],
            false,
        )
        .await
    }

    async fn do_mark_dead(&self, tenant: TenantId, id: OutboxId, error: &str) -> Result<()> {
        self.update_pending(
            tenant,
            id,
            "UPDATE outbox SET status = 2, last_error = $3 WHERE tenant = $1 AND id = $2 AND status = 0",
            &[&error],
            false,
        )
        .await
    }

    async fn do_outbox_message(&self, tenant: TenantId, id: OutboxId) -> Result<OutboxMessage> {
        self.outbox_one(tenant, id).await
    }

    async fn do_outbox_by_key(&self, tenant: TenantId, key: &str) -> Result<OutboxMessage> {
        let sql =
            format!("SELECT {COLUMNS} FROM outbox WHERE tenant = $1 AND idempotency_key = $2");
        let rows = self.query(&sql, &[tenant.as_uuid(), &key]).await?;
        match rows.first() {
            Some(r) => message(r),
            None => Err(Error::not_found(OutboxId::ENTITY, key)),
        }
    }

    async fn do_retry_dead(
        &self,
        tenant: TenantId,
        id: OutboxId,
        now: Timestamp,
    ) -> Result<OutboxMessage> {
        let n = {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE outbox SET status = 0, attempts = 0, next_attempt_us = $3
                     WHERE tenant = $1 AND id = $2 AND status = 2",
                )
                .await
                .map_err(map_pg)?;
            client
                .execute(
                    &stmt,
                    &[tenant.as_uuid(), id.as_uuid(), &now.timestamp_micros()],
                )
                .await
                .map_err(map_pg)?
        };
        let m = self.outbox_one(tenant, id).await?;
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
    }

    async fn do_inbox_put(&self, item: InboxItem) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO inbox (tenant, id, usr, message, created_us, read_us, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, message) DO NOTHING",
            )
            .await
            .map_err(map_pg)?;
        let n = client
            .execute(
                &stmt,
                &[
                    item.tenant.as_uuid(),
                    item.id.as_uuid(),
                    item.user.as_uuid(),
                    item.message.as_uuid(),
                    &item.created_at.timestamp_micros(),
                    &item.read_at.map(|t| t.timestamp_micros()),
                    &to_json(&item)?,
                ],
            )
            .await
            .map_err(map_pg)?;
        Ok(n == 1)
    }

    async fn do_set_read(
        &self,
        tenant: TenantId,
        user: UserId,
        item: InboxItemId,
        read_at: Option<Timestamp>,
    ) -> Result<()> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE inbox SET read_us = $4 WHERE tenant = $1 AND usr = $2 AND id = $3",
            )
            .await
            .map_err(map_pg)?;
        let n = client
            .execute(
                &stmt,
                &[
                    tenant.as_uuid(),
                    user.as_uuid(),
                    item.as_uuid(),
                    &read_at.map(|t| t.timestamp_micros()),
                ],
            )
            .await
            .map_err(map_pg)?;
        if n == 0 {
            return Err(Error::not_found(InboxItemId::ENTITY, item));
        }
        Ok(())
    }
}
