//! The outbox's and the inboxes' statements, and what their outcome means.
//!
//! The two schemas name their time columns differently (SQLite `…_at`, PostgreSQL `…_us`, both microseconds; the
//! inbox's person is `user` on SQLite, `usr` on PostgreSQL, a reserved word there): [`Dialect::col`] maps them.

use crate::{corrupt, keyset, Cell, Dialect, Param, Runner, Sql};
use chrono::Duration;
use crm_core::id::{OutboxId, TenantId, UserId};
use crm_core::outbox::{InboxItem, InboxWrite, OutboxMessage, OutboxRef, OutboxStatus, Settlement};
use crm_core::store::{Page, PageRequest};
use crm_core::time::{from_micros, Timestamp};
use crm_core::{Error, Result};
use uuid::Uuid;

/// A status as both schemas store it.
pub fn status_code(s: OutboxStatus) -> i16 {
    match s {
        OutboxStatus::Pending => 0,
        OutboxStatus::Delivered => 1,
        OutboxStatus::Dead => 2,
    }
}

/// A stored status code back; `None` for a code no version of the engine wrote.
pub fn status_of(code: i64) -> Option<OutboxStatus> {
    match code {
        0 => Some(OutboxStatus::Pending),
        1 => Some(OutboxStatus::Delivered),
        2 => Some(OutboxStatus::Dead),
        _ => None,
    }
}

impl Dialect {
    /// A JSON document bound as text into a JSON column.
    pub fn json(self, placeholder: String) -> String {
        match self {
            Self::Sqlite => placeholder,
            Self::Postgres => format!("({placeholder}::text)::jsonb"),
        }
    }

    /// The column the outbox and inbox keep a fact in: `next_attempt`, `delivered`, `created`, `read` (times) or
    /// `user`.
    pub fn col(self, fact: &str) -> String {
        match (self, fact) {
            (Self::Postgres, "user") => "usr".to_string(),
            (_, "user") => "user".to_string(),
            (Self::Sqlite, f) => format!("{f}_at"),
            (Self::Postgres, f) => format!("{f}_us"),
        }
    }
}

/// The statement settling message `id` of `tenant` (see [`settled`] for what its row count means).
pub fn settle(dialect: Dialect, tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<Sql> {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(*id.as_uuid());
    let pending = status_code(OutboxStatus::Pending);
    let (set, from) = match how {
        Settlement::Delivered { at } => (
            format!(
                "status = {}, {} = {}",
                status_code(OutboxStatus::Delivered),
                dialect.col("delivered"),
                sql.bind(at.timestamp_micros())
            ),
            pending,
        ),
        Settlement::Retry { error, at } => (
            format!(
                "last_error = {}, {} = {}",
                sql.bind(error.as_str()),
                dialect.col("next_attempt"),
                sql.bind(at.timestamp_micros())
            ),
            pending,
        ),
        Settlement::Dead { error } => (
            format!(
                "status = {}, last_error = {}",
                status_code(OutboxStatus::Dead),
                sql.bind(error.as_str())
            ),
            pending,
        ),
        Settlement::Revive { now } => (
            format!(
                "status = {pending}, attempts = 0, {} = {}",
                dialect.col("next_attempt"),
                sql.bind(now.timestamp_micros())
            ),
            status_code(OutboxStatus::Dead),
        ),
        _ => {
            return Err(Error::invalid(
                "settlement",
                "a settlement this version of the engine does not know",
            ))
        }
    };
    sql.text =
        format!("UPDATE outbox SET {set} WHERE tenant = {t} AND id = {i} AND status = {from}");
    Ok(sql)
}

/// What settling meant, given how many rows [`settle`] changed and, when none, the message's status now (`None`:
/// there is no such message in the tenant).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown message; [`Error::Invalid`] on `status` when the message is not pending (not
/// dead, for [`Settlement::Revive`]). Delivering an already delivered message is not an error.
pub fn settled(
    how: &Settlement,
    id: OutboxId,
    changed: u64,
    now: Option<OutboxStatus>,
) -> Result<()> {
    if changed > 0 {
        return Ok(());
    }
    let status = now.ok_or_else(|| Error::not_found(OutboxId::ENTITY, id))?;
    match how {
        Settlement::Delivered { .. } if status == OutboxStatus::Delivered => Ok(()),
        Settlement::Revive { .. } => Err(Error::invalid(
            "status",
            format!(
                "message {id} is {}: only dead messages can be retried",
                status.as_str()
            ),
        )),
        _ => Err(Error::invalid(
            "status",
            format!("message {id} is {}, not pending", status.as_str()),
        )),
    }
}

/// The statement reading message `by` of `tenant`, selecting `columns` (the adapter's row layout).
pub fn find(dialect: Dialect, tenant: TenantId, by: &OutboxRef, columns: &str) -> Result<Sql> {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let cond = match by {
        OutboxRef::Id(id) => format!("id = {}", sql.bind(*id.as_uuid())),
        OutboxRef::Key(key) => format!("idempotency_key = {}", sql.bind(key.as_str())),
        _ => {
            return Err(Error::invalid(
                "by",
                "a reference this version of the engine does not know",
            ))
        }
    };
    sql.text = format!("SELECT {columns} FROM outbox WHERE tenant = {t} AND {cond}");
    Ok(sql)
}

/// The error for a [`find`] that read nothing.
pub fn not_found(by: &OutboxRef) -> Error {
    match by {
        OutboxRef::Id(id) => Error::not_found(OutboxId::ENTITY, id),
        OutboxRef::Key(key) => Error::not_found(OutboxId::ENTITY, key),
        _ => Error::not_found(OutboxId::ENTITY, "?"),
    }
}

/// The statement changing an inbox; `doc` is the item's stored JSON (the adapter's serialisation), for a put.
/// A put that changes no row found the message already there; a read-state change that changes none found no item.
pub fn inbox_write(dialect: Dialect, write: &InboxWrite, doc: Option<Param>) -> Result<Sql> {
    let mut sql = Sql::new(dialect);
    sql.text = match write {
        InboxWrite::Put(item) => {
            let vals = [
                sql.bind(*item.tenant.as_uuid()),
                sql.bind(*item.id.as_uuid()),
                sql.bind(*item.user.as_uuid()),
                sql.bind(*item.message.as_uuid()),
                sql.bind(item.created_at.timestamp_micros()),
                match item.read_at {
                    Some(t) => sql.bind(t.timestamp_micros()),
                    None => "NULL".to_string(),
                },
                dialect.json(sql.bind(doc.ok_or_else(|| {
                    Error::invalid("doc", "an inbox put carries the item's document")
                })?)),
            ];
            format!(
                "INSERT INTO inbox (tenant, id, {}, message, {}, {}, doc) VALUES ({}) \
                 ON CONFLICT (tenant, message) DO NOTHING",
                dialect.col("user"),
                dialect.col("created"),
                dialect.col("read"),
                vals.join(", ")
            )
        }
        InboxWrite::SetRead {
            tenant,
            user,
            item,
            read_at,
        } => {
            let t = sql.bind(*tenant.as_uuid());
            let u = sql.bind(*user.as_uuid());
            let i = sql.bind(*item.as_uuid());
            let at = match read_at {
                Some(at) => sql.bind(at.timestamp_micros()),
                None => "NULL".to_string(),
            };
            format!(
                "UPDATE inbox SET {} = {at} WHERE tenant = {t} AND {} = {u} AND id = {i}",
                dialect.col("read"),
                dialect.col("user")
            )
        }
        _ => {
            return Err(Error::invalid(
                "write",
                "an inbox write this version of the engine does not know",
            ))
        }
    };
    Ok(sql)
}

// ------------------------------------------------------------------------------------------------ the store

/// The columns a message is read from, in [`message`]'s order.
fn columns(dialect: Dialect) -> String {
    format!(
        "{}, status, attempts, {}, last_error, {}",
        dialect.doc(),
        dialect.col("next_attempt"),
        dialect.col("delivered")
    )
}

fn time(cell: &Cell) -> Result<Option<Timestamp>> {
    cell.opt_int("time")?
        .map(|us| {
            i64::try_from(us)
                .ok()
                .and_then(from_micros)
                .ok_or_else(|| corrupt("time", us))
        })
        .transpose()
}

/// A message from the row of [`columns`].
fn message(row: &[Cell]) -> Result<OutboxMessage> {
    let mut m: OutboxMessage =
        crate::fetch::Doc::parse_as(row[0].text("outbox message")?, "outbox message")?;
    let code = row[1].int("outbox status")?;
    m.status = i64::try_from(code)
        .ok()
        .and_then(status_of)
        .ok_or_else(|| corrupt("outbox status", code))?;
    m.attempts = row[2].int("attempts")?.clamp(0, i128::from(u32::MAX)) as u32;
    m.next_attempt_at = time(&row[3])?.ok_or_else(|| corrupt("time", "NULL"))?;
    m.last_error = row[4].opt_text();
    m.delivered_at = time(&row[5])?;
    Ok(m)
}

/// The statement enqueueing a message in a commit's transaction: an existing (tenant, idempotency key) makes it a
/// no-op.
///
/// # Errors
///
/// [`Error::Invalid`] when the message cannot be serialised.
pub fn enqueue(dialect: Dialect, m: &OutboxMessage) -> Result<Sql> {
    let mut sql = Sql::new(dialect);
    let vals = [
        sql.bind(*m.tenant.as_uuid()),
        sql.bind(*m.id.as_uuid()),
        sql.bind(m.idempotency_key.as_str()),
        sql.bind(status_code(m.status)),
        sql.bind(m.attempts.min(i32::MAX as u32) as i32),
        sql.bind(m.next_attempt_at.timestamp_micros()),
        sql.bind(Param::or_null(m.last_error.clone(), crate::Kind::Text)),
        sql.bind(m.created_at.timestamp_micros()),
        sql.bind(Param::or_null(
            m.delivered_at.map(|t| t.timestamp_micros()),
            crate::Kind::I64,
        )),
        sql.bind(Param::json(m)?),
    ];
    sql.text = format!(
        "INSERT INTO outbox (tenant, id, idempotency_key, status, attempts, {}, last_error, {}, {}, doc) \
         VALUES ({}) ON CONFLICT (tenant, idempotency_key) DO NOTHING",
        dialect.col("next_attempt"),
        dialect.col("created"),
        dialect.col("delivered"),
        vals.join(", ")
    );
    Ok(sql)
}

/// `OutboxStore::claim_due` on a [`Runner`]: one `UPDATE … RETURNING` leases up to `limit` due messages (PostgreSQL
/// skips the rows another claim holds, so dispatchers never wait on each other).
pub async fn claim_due<R: Runner + ?Sized>(
    r: &R,
    now: Timestamp,
    lease: Duration,
    limit: u32,
) -> Result<Vec<OutboxMessage>> {
    let dialect = r.dialect();
    let mut sql = Sql::new(dialect);
    let until = sql.bind((now + lease).timestamp_micros());
    let now = sql.bind(now.timestamp_micros());
    let limit = sql.bind(i64::from(limit));
    let next = dialect.col("next_attempt");
    let skip = match dialect {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    sql.text = format!(
        "UPDATE outbox SET attempts = attempts + 1, {next} = {until} WHERE (tenant, id) IN \
         (SELECT tenant, id FROM outbox WHERE status = 0 AND {next} <= {now} \
         ORDER BY {next}, id LIMIT {limit}{skip}) RETURNING {}",
        columns(dialect)
    );
    let mut out = r
        .write_rows(sql)
        .await?
        .iter()
        .map(|row| message(row))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|m| (m.created_at, m.id));
    Ok(out)
}

/// `OutboxStore::settle` on a [`Runner`].
pub async fn run_settle<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    id: OutboxId,
    how: &Settlement,
) -> Result<()> {
    let changed = r.execute(settle(r.dialect(), tenant, id, how)?).await?;
    let now = if changed == 0 {
        match find_outbox(r, tenant, &OutboxRef::Id(id)).await {
            Ok(m) => Some(m.status),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    settled(how, id, changed, now)
}

/// `OutboxStore::find_outbox` on a [`Runner`].
pub async fn find_outbox<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    by: &OutboxRef,
) -> Result<OutboxMessage> {
    let dialect = r.dialect();
    let sql = find(dialect, tenant, by, &columns(dialect))?;
    match r.rows(sql, false).await?.first() {
        Some(row) => message(row),
        None => Err(not_found(by)),
    }
}

/// `OutboxStore::list_outbox` on a [`Runner`]: oldest first.
pub async fn list_outbox<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    status: OutboxStatus,
    page: &PageRequest,
) -> Result<Page<OutboxMessage>> {
    let dialect = r.dialect();
    let created = dialect.col("created");
    keyed_page(r, page, message, |after| {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let s = sql.bind(status_code(status));
        let after = keyset(&mut sql, &created, ">", after);
        let l = sql.bind(i64::from(page.limit) + 1);
        sql.text = format!(
            "SELECT {}, {created}, id FROM outbox WHERE tenant = {t} AND status = {s}{after} \
             ORDER BY {created}, id LIMIT {l}",
            columns(dialect)
        );
        sql
    })
    .await
}

/// Runs a page query whose rows end in their `(created, id)` key (one more than the page holds) and reads each
/// row's item with `item`; `statement` builds the query from the page's keyset (after validating the page).
async fn keyed_page<R: Runner + ?Sized, T>(
    r: &R,
    page: &PageRequest,
    item: impl Fn(&[Cell]) -> Result<T>,
    statement: impl FnOnce(Option<(i64, Uuid)>) -> Sql,
) -> Result<Page<T>> {
    let rows = r.rows(statement(crate::page_after(page)?), false).await?;
    let items = rows
        .iter()
        .map(|row| item(row))
        .collect::<Result<Vec<_>>>()?;
    let keys = rows
        .iter()
        .map(|row| key(row))
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::paginate_keyed(items, keys, page.limit))
}

/// The `(created, id)` key at the end of a row.
fn key(row: &[Cell]) -> Result<(i64, Uuid)> {
    let n = row.len();
    let k = row[n - 2].int("time")?;
    let k = i64::try_from(k).map_err(|e| corrupt("time", e))?;
    Ok((k, row[n - 1].uuid("id")?))
}

/// `OutboxStore::inbox_write` on a [`Runner`].
pub async fn run_inbox_write<R: Runner + ?Sized>(r: &R, write: &InboxWrite) -> Result<bool> {
    let doc = match write {
        InboxWrite::Put(item) => {
            Some(Param::Text(serde_json::to_string(item).map_err(|e| {
                Error::invalid("item", format!("cannot be serialised: {e}"))
            })?))
        }
        _ => None,
    };
    let changed = r.execute(inbox_write(r.dialect(), write, doc)?).await?;
    match write {
        InboxWrite::SetRead { item, .. } if changed == 0 => {
            Err(Error::not_found(crm_core::id::InboxItemId::ENTITY, item))
        }
        _ => Ok(changed == 1),
    }
}

/// `OutboxStore::inbox` on a [`Runner`]: newest first.
pub async fn inbox<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    user: UserId,
    unread_only: bool,
    page: &PageRequest,
) -> Result<Page<InboxItem>> {
    let dialect = r.dialect();
    let (created, read) = (dialect.col("created"), dialect.col("read"));
    let item = |row: &[Cell]| {
        let mut i: InboxItem =
            crate::fetch::Doc::parse_as(row[0].text("inbox item")?, "inbox item")?;
        i.read_at = time(&row[1])?;
        Ok(i)
    };
    keyed_page(r, page, item, |after| {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let u = sql.bind(*user.as_uuid());
        let unread = if unread_only {
            format!(" AND {read} IS NULL")
        } else {
            String::new()
        };
        let before = keyset(&mut sql, &created, "<", after);
        let l = sql.bind(i64::from(page.limit) + 1);
        sql.text = format!(
            "SELECT {}, {read}, {created}, id FROM inbox WHERE tenant = {t} AND {} = {u}{unread}{before} \
             ORDER BY {created} DESC, id DESC LIMIT {l}",
            dialect.doc(),
            dialect.col("user")
        );
        sql
    })
    .await
}

/// `OutboxStore::unread_count` on a [`Runner`].
pub async fn unread_count<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    user: UserId,
) -> Result<u64> {
    let dialect = r.dialect();
    let (owner, read) = (dialect.col("user"), dialect.col("read"));
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let u = sql.bind(*user.as_uuid());
    sql.text = format!(
        "SELECT count(*) FROM inbox WHERE tenant = {t} AND {owner} = {u} AND {read} IS NULL"
    );
    match r.rows(sql, false).await?.first() {
        Some(row) => row[0].count("unread items"),
        None => Ok(0),
    }
}

/// `impl OutboxStore for $store` (a [`Runner`]): every method is the shared one of this module.
#[macro_export]
macro_rules! outbox_store {
    ($store:ty) => {
        $crate::__forward_impl!($store: OutboxStore {
            fn claim_due(now: Timestamp, lease: Duration, limit: u32) -> Result<Vec<OutboxMessage>> = $crate::outbox::claim_due;
            fn settle(tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<()> = $crate::outbox::run_settle;
            fn find_outbox(tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage> = $crate::outbox::find_outbox;
            fn list_outbox(tenant: TenantId, status: OutboxStatus, page: &PageRequest) -> Result<Page<OutboxMessage>> = $crate::outbox::list_outbox;
            fn inbox_write(write: &InboxWrite) -> Result<bool> = $crate::outbox::run_inbox_write;
            fn inbox(tenant: TenantId, user: UserId, unread_only: bool, page: &PageRequest) -> Result<Page<InboxItem>> = $crate::outbox::inbox;
            fn unread_count(tenant: TenantId, user: UserId) -> Result<u64> = $crate::outbox::unread_count;
        });
    };
}
