//! The transactional outbox and in-app inboxes on PostgreSQL (`crm_core::outbox::OutboxStore`).
//!
//! Messages are enqueued only by `Write::EnqueueOutbox` inside `Store::commit` ([`enqueue`] runs in the change's
//! transaction). Claims are one `UPDATE … WHERE (tenant, id) IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, so
//! dispatchers in any number of processes never claim the same message while its lease runs, and never wait on
//! each other.

use crate::error::{corrupt, map_pg};
use crate::rows;
use crate::store::Sql;
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
use crm_storage_sql::outbox as shared;
use crm_storage_sql::{Dialect, Param};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

fn code(s: OutboxStatus) -> i16 {
    shared::status_code(s)
}

fn status_of(c: i16) -> Result<OutboxStatus> {
    shared::status_of(i64::from(c)).ok_or_else(|| corrupt("outbox status", c))
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

impl PgStore {
    async fn outbox_one(&self, tenant: TenantId, id: OutboxId) -> Result<OutboxMessage> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE tenant = $1 AND id = $2");
        let rows = self.query(&sql, &[tenant.as_uuid(), id.as_uuid()]).await?;
        match rows.first() {
            Some(r) => message(r),
            None => Err(Error::not_found(OutboxId::ENTITY, id)),
        }
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn settle(&self, tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<()> {
        let sql = Sql::from(shared::settle(Dialect::Postgres, tenant, id, how)?);
        let changed = {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql.text).await.map_err(map_pg)?;
            client
                .execute(&stmt, &rows::params(&sql.params))
                .await
                .map_err(map_pg)?
        };
        let now = if changed == 0 {
            match self.outbox_one(tenant, id).await {
                Ok(m) => Some(m.status),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        shared::settled(how, id, changed, now)
    }

    async fn find_outbox(&self, tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage> {
        let sql = Sql::from(shared::find(Dialect::Postgres, tenant, by, COLUMNS)?);
        match self.run(&sql).await?.first() {
            Some(r) => message(r),
            None => Err(shared::not_found(by)),
        }
    }

    async fn inbox_write(&self, write: &InboxWrite) -> Result<bool> {
        let doc = match write {
            InboxWrite::Put(item) => {
                Some(Param::Text(serde_json::to_string(item).map_err(|e| {
                    Error::invalid("item", format!("cannot be serialised: {e}"))
                })?))
            }
            _ => None,
        };
        let sql = Sql::from(shared::inbox_write(Dialect::Postgres, write, doc)?);
        let changed = {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql.text).await.map_err(map_pg)?;
            client
                .execute(&stmt, &rows::params(&sql.params))
                .await
                .map_err(map_pg)?
        };
        match write {
            InboxWrite::SetRead { item, .. } if changed == 0 => {
                Err(Error::not_found(InboxItemId::ENTITY, item))
            }
            _ => Ok(changed == 1),
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
        Ok(crm_storage_sql::paginate_keyed(items, keys, page.limit))
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
        Ok(crm_storage_sql::paginate_keyed(items, keys, page.limit))
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
