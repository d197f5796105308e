//! # crm-storage-postgres: the CRM engine's storage on PostgreSQL
//!
//! The key design decision: **each record is stored whole, as its serde JSON in a `jsonb` column, next to the few
//! typed columns the queries of [`crm_core::store::Store`] filter, sort and sum on.** Reads decode the document, so
//! the schema never lags the domain types; the typed columns (ids, status, money as `NUMERIC(20,4)` with its
//! currency, times as microseconds) carry the indexes, and the reports (board sums, funnel) run in SQL, exactly.
//!
//! - [`PgStore::connect`] opens a [deadpool](deadpool_postgres) pool of tokio-postgres connections and applies the
//!   embedded, versioned migrations under a transaction-scoped advisory lock (two processes starting at once do not
//!   race). Statements are prepared once per connection and cached.
//! - [`Store::commit`](crm_core::store::Store::commit) is one transaction; updates are version-checked
//!   (`UPDATE … WHERE tenant = $1 AND id = $2 AND version = $n`), so a stale version is a conflict and nothing is
//!   written. [`Store::ingest`](crm_core::store::Store::ingest) streams binary `COPY` per table
//!   ([`IngestMode::Copy`]) or multi-row `INSERT`s ([`IngestMode::Insert`]).
//! - [`PgStore`] implements [`crm_core::store::Store`], [`crm_core::commerce::CommerceStore`] (products, documents,
//!   campaigns; reports and segments as SQL over bigint units) and [`crm_core::outbox::OutboxStore`] (claims with
//!   `FOR UPDATE SKIP LOCKED`, so dispatchers in several processes never take the same message).
//! - The tenant leads every primary key, foreign key and index; no foreign key crosses tenants, so the schema
//!   distributes by tenant (Citus) unchanged.
//! - Native errors map into [`crm_core::Error`]: unique violation → `AlreadyExists`, serialization failure and
//!   deadlock → `Storage { kind: Retryable }`, lost connection → `Unavailable`, bad credentials or missing database
//!   → `Config`.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use crm_storage_postgres::{PgConfig, PgStore};
//! let store = PgStore::connect(PgConfig::from_url("postgres://crm:secret@127.0.0.1/crm")).await?;
//! # let _ = store; Ok(()) }
//! ```

mod commerce;
mod config;
mod conn;
mod error;
mod migrations;
mod outbox;
mod rows;
mod store;

pub use config::{IngestMode, PgConfig};
pub use conn::HostClient;
pub use rows::{bind as param_value, Value as ParamValue};
pub use store::{Explain, PgStore};
