//! The outbox's and the inboxes' statements, and what their outcome means.
//!
//! The two schemas name their time columns differently (SQLite `…_at`, PostgreSQL `…_us`, both microseconds; the
//! inbox's person is `user` on SQLite, `usr` on PostgreSQL, a reserved word there): [`Dialect::col`] maps them.

use crate::{Dialect, Param, Sql};
use crm_core::id::{OutboxId, TenantId};
use crm_core::outbox::{InboxWrite, OutboxRef, OutboxStatus, Settlement};
use crm_core::{Error, Result};

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
    let mut sql = Sql::new(dialect);
    let t = sql.bind(*tenant.as_uuid());
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
    let mut sql = Sql::new(dialect);
    let t = sql.bind(*tenant.as_uuid());
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
