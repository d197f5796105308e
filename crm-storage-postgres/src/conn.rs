//! Where the store's connections come from: its own pool, or one connection the host holds with its own transaction
//! open (so the host's ERP writes and the engine's commit or roll back together).
//!
//! Every statement of the adapter runs through [`Conn`] (one operation's connection) and every change through
//! [`Tx`]: a pooled transaction, or a savepoint inside the host's transaction. A failed change rolls back to its
//! savepoint and leaves the host's transaction usable.

use crate::error::{map_pg, map_pool};
use crm_core::{Error, Result};
use deadpool_postgres::Pool;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, CopyInSink, Row, Statement, ToStatement};

/// A connection a host lends the engine: a plain `tokio_postgres::Client` or a pooled `deadpool_postgres::Object`,
/// on which the host has begun its own transaction (`BEGIN`). See [`crate::PgStore::in_host_transaction`].
pub trait HostClient: Send + Sync + 'static {
    /// The connection.
    fn client(&self) -> &Client;
}

impl HostClient for Client {
    fn client(&self) -> &Client {
        self
    }
}

impl HostClient for deadpool_postgres::Object {
    fn client(&self) -> &Client {
        self
    }
}

impl<C: HostClient> HostClient for Arc<C> {
    fn client(&self) -> &Client {
        (**self).client()
    }
}

/// The host's connection, with the engine's statement cache and a gate that lets one engine operation at a time
/// use it (a change is a savepoint; two interleaved would not be).
pub(crate) struct HostConn {
    client: Box<dyn HostClient>,
    gate: Arc<tokio::sync::Mutex<()>>,
    statements: Mutex<HashMap<String, Statement>>,
}

impl HostConn {
    pub(crate) fn new(client: Box<dyn HostClient>) -> Self {
        Self {
            client,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            statements: Mutex::new(HashMap::new()),
        }
    }

    async fn prepare_cached(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = self.client.client().prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// Where a connection keeps its prepared statements: the pool's cache of the connection, or the engine's cache of
/// the host's.
enum Cache<'a> {
    Pool(&'a deadpool_postgres::StatementCache),
    Host(&'a HostConn),
}

/// The statement methods of [`Conn`] and [`Tx`] (each has `client()` and `cache()`): `prepare_cached` through the
/// connection's cache, and the listed ones run on the client as they are.
macro_rules! on_client {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        /// A statement prepared once per connection.
        pub(crate) async fn prepare_cached(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
            match self.cache() {
                Cache::Pool(cache) => cache.prepare(self.client(), sql).await,
                Cache::Host(host) => host.prepare_cached(sql).await,
            }
        }

        $(
            pub(crate) async fn $name<T: ?Sized + ToStatement>(
                &self,
                statement: &T,
                $($arg: $ty),*
            ) -> Result<$ret, tokio_postgres::Error> {
                self.client().$name(statement, $($arg),*).await
            }
        )*
    };
}

/// The store's source of connections.
#[derive(Clone)]
pub(crate) enum Source {
    /// Its own pool: each operation takes a connection, each change is a transaction.
    Pool(Pool),
    /// The host's connection: each change is a savepoint in the host's transaction.
    Host(Arc<HostConn>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pool(p) => {
                let s = p.status();
                f.debug_struct("Pool")
                    .field("size", &s.size)
                    .field("available", &s.available)
                    .finish()
            }
            Self::Host(_) => f.write_str("HostTransaction"),
        }
    }
}

impl Source {
    /// A connection for one operation.
    pub(crate) async fn conn(&self) -> Result<Conn> {
        match self {
            Self::Pool(p) => Ok(Conn::Pooled(p.get().await.map_err(map_pool)?)),
            Self::Host(h) => {
                let guard = h.gate.clone().lock_owned().await;
                Ok(Conn::Host {
                    conn: h.clone(),
                    _turn: guard,
                })
            }
        }
    }
}

/// One operation's connection (a pooled one is large, but lives only for one operation on the stack).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Conn {
    Pooled(deadpool_postgres::Object),
    /// The host's connection, and this operation's turn on it (held until the operation ends).
    Host {
        conn: Arc<HostConn>,
        _turn: tokio::sync::OwnedMutexGuard<()>,
    },
}

impl Conn {
    fn client(&self) -> &Client {
        match self {
            Self::Pooled(o) => o,
            Self::Host { conn, .. } => conn.client.client(),
        }
    }

    fn cache(&self) -> Cache<'_> {
        match self {
            Self::Pooled(o) => Cache::Pool(&o.statement_cache),
            Self::Host { conn, .. } => Cache::Host(conn),
        }
    }

    on_client! {
        query(params: &[&(dyn ToSql + Sync)]) -> Vec<Row>;
        execute(params: &[&(dyn ToSql + Sync)]) -> u64;
    }

    /// Begins a change: a transaction on a pooled connection, a savepoint in the host's transaction (refused with
    /// [`Error::Invalid`] on `transaction` when the host has not begun one).
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>> {
        match self {
            Self::Pooled(o) => Ok(Tx::Pooled(o.transaction().await.map_err(map_pg)?)),
            Self::Host { conn: h, .. } => {
                let savepoint = h
                    .client
                    .client()
                    .batch_execute("SAVEPOINT crm_change")
                    .await;
                if let Err(e) = savepoint {
                    if e.code() == Some(&tokio_postgres::error::SqlState::NO_ACTIVE_SQL_TRANSACTION)
                    {
                        return Err(Error::invalid(
                            "transaction",
                            "the host's connection has no open transaction: run BEGIN on it before lending it to the engine",
                        ));
                    }
                    return Err(map_pg(e));
                }
                Ok(Tx::Host(h))
            }
        }
    }
}

/// One change: all of it or none of it.
pub(crate) enum Tx<'a> {
    Pooled(deadpool_postgres::Transaction<'a>),
    Host(&'a HostConn),
}

impl Tx<'_> {
    fn client(&self) -> &Client {
        match self {
            Self::Pooled(t) => t.client(),
            Self::Host(h) => h.client.client(),
        }
    }

    fn cache(&self) -> Cache<'_> {
        match self {
            Self::Pooled(t) => Cache::Pool(&t.statement_cache),
            Self::Host(h) => Cache::Host(h),
        }
    }

    on_client! {
        execute(params: &[&(dyn ToSql + Sync)]) -> u64;
        query(params: &[&(dyn ToSql + Sync)]) -> Vec<Row>;
        query_opt(params: &[&(dyn ToSql + Sync)]) -> Option<Row>;
        query_one(params: &[&(dyn ToSql + Sync)]) -> Row;
        copy_in() -> CopyInSink<bytes::Bytes>;
    }

    /// Makes the change part of the transaction (commits it; releases the savepoint in the host's).
    pub(crate) async fn commit(self) -> Result<()> {
        self.end(true).await
    }

    /// Ends the change by its outcome: commits it when `ran` is `Ok`, else rolls it back and returns the error.
    pub(crate) async fn finish<T>(self, ran: Result<T>) -> Result<T> {
        match ran {
            Ok(out) => {
                self.commit().await?;
                Ok(out)
            }
            Err(e) => {
                self.rollback().await?;
                Err(e)
            }
        }
    }

    /// Undoes the change (rolls back; back to the savepoint in the host's transaction, which stays usable).
    pub(crate) async fn rollback(self) -> Result<()> {
        self.end(false).await
    }

    async fn end(self, commit: bool) -> Result<()> {
        match self {
            Self::Pooled(t) if commit => t.commit().await,
            Self::Pooled(t) => t.rollback().await,
            Self::Host(h) => {
                let sql = if commit {
                    "RELEASE SAVEPOINT crm_change"
                } else {
                    "ROLLBACK TO SAVEPOINT crm_change; RELEASE SAVEPOINT crm_change"
                };
                h.client.client().batch_execute(sql).await
            }
        }
        .map_err(map_pg)
    }
}
