//! Versioned migrations, embedded in the crate and applied under a transaction-scoped advisory lock.
//!
//! Each migration runs once, in version order, inside one transaction that first takes
//! `pg_advisory_xact_lock` on a key derived from the schema name: two processes starting at once queue on the lock,
//! and the second finds the first one's versions in `schema_migrations` and applies nothing. The lock is released
//! by the commit (or rollback), so a crashed migrator never leaves it held.

use crate::error::map_pg;
use crm_core::{Error, Result, StorageErrorKind};
use crm_storage_sql::{schema, Dialect};

/// One migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Its version (applied in increasing order).
    pub version: i32,
    /// A short name.
    pub name: &'static str,
    /// The SQL, generated from `crm_storage_sql::schema` (as SQLite's is).
    pub sql: fn() -> String,
}

impl Migration {
    const fn new(version: i32, name: &'static str, sql: fn() -> String) -> Self {
        Self { version, name, sql }
    }
}

/// Every migration this build knows.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::new(1, "initial", || schema::init(Dialect::Postgres)),
    Migration::new(2, "commerce", || schema::commerce(Dialect::Postgres)),
    Migration::new(3, "outbox", || schema::outbox(Dialect::Postgres)),
    Migration::new(4, "timers", || {
        include_str!("../migrations/0004_timers.sql").to_string()
    }),
    Migration::new(5, "sales", || schema::sales(Dialect::Postgres)),
    Migration::new(6, "attachments", || schema::attachments(Dialect::Postgres)),
    Migration::new(7, "sales_timers", || {
        schema::sales_timers(Dialect::Postgres)
    }),
    Migration::new(8, "portal", || schema::portal(Dialect::Postgres)),
    Migration::new(9, "host_refs", || schema::host_refs(Dialect::Postgres)),
    Migration::new(10, "contact_and_lead_refs", || {
        schema::contact_and_lead_refs(Dialect::Postgres)
    }),
    Migration::new(11, "settings", || schema::settings(Dialect::Postgres)),
    Migration::new(12, "merges", || schema::merges(Dialect::Postgres)),
    Migration::new(13, "subject_keys", || {
        schema::subject_keys(Dialect::Postgres)
    }),
    Migration::new(14, "lead_merges", || schema::lead_merges(Dialect::Postgres)),
    Migration::new(15, "sales_months", || {
        crm_storage_sql::rollup::schema(Dialect::Postgres)
    }),
    Migration::new(16, "partner_rollups", || {
        crm_storage_sql::rollup::partner_schema(Dialect::Postgres)
    }),
    Migration::new(17, "campaign_holdouts", || {
        schema::holdouts(Dialect::Postgres)
    }),
    Migration::new(18, "lead_scores", || schema::lead_scores(Dialect::Postgres)),
    Migration::new(19, "lines_only", || schema::lines_only(Dialect::Postgres)),
    Migration::new(20, "sales_days", || {
        crm_storage_sql::rollup::day_schema(Dialect::Postgres)
    }),
    Migration::new(21, "bulk_loads", || {
        crm_storage_sql::bulk::schema(Dialect::Postgres)
    }),
    Migration::new(22, "campaign_leads", || {
        schema::campaign_leads(Dialect::Postgres)
    }),
    Migration::new(23, "lead_campaign_column", || {
        schema::lead_campaign_column(Dialect::Postgres)
    }),
    Migration::new(24, "campaign_rollups", || {
        crm_storage_sql::rollup::campaign_schema(Dialect::Postgres)
    }),
    Migration::new(25, "sales_years", || {
        crm_storage_sql::rollup::year_schema(Dialect::Postgres)
    }),
    Migration::new(26, "documents_columns_only", || {
        schema::documents_columns_only(Dialect::Postgres)
    }),
    Migration::new(27, "bought_categories_only", || {
        crm_storage_sql::rollup::bought_categories_only()
    }),
    Migration::new(28, "lines_without_category_index", || {
        schema::lines_without_category_index()
    }),
    Migration::new(29, "campaign_target_counts", || {
        crm_storage_sql::target_counts::schema(Dialect::Postgres)
    }),
];

/// The advisory-lock key of a schema's migrations: FNV-1a of a fixed prefix and the schema name, so the key is the
/// same in every process and build.
pub(crate) fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "crm-storage-postgres/migrations/"
        .bytes()
        .chain(schema.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The versions recorded in the migrations table `table`, oldest first.
async fn applied_versions(
    c: &impl tokio_postgres::GenericClient,
    table: &str,
) -> std::result::Result<Vec<i32>, tokio_postgres::Error> {
    let rows = c
        .query(
            &format!("SELECT version FROM {table} ORDER BY version"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Fails unless `schema` holds every migration this build knows (for a read-only store, which migrates nothing).
pub(crate) async fn check_current(client: &tokio_postgres::Client, schema: &str) -> Result<()> {
    // `schema` was checked to be a plain identifier by PgConfig::validate.
    let applied = applied_versions(client, &format!("{schema}.schema_migrations"))
        .await
        .map_err(|e| {
            Error::storage(
                StorageErrorKind::Config,
                format!(
                    "schema `{schema}` has no migrations table ({}): migrate it first",
                    map_pg(e)
                ),
            )
        })?;
    let known: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    if applied != known {
        return Err(Error::storage(
            StorageErrorKind::Config,
            format!(
                "schema `{schema}` is at migrations {applied:?}, this build reads {known:?}: connect once without \
                 read_only so it is migrated (or upgrade the engine)"
            ),
        ));
    }
    Ok(())
}

/// Brings `schema` up to the newest version; returns the versions applied now (empty when it was up to date).
pub(crate) async fn run(client: &mut tokio_postgres::Client, schema: &str) -> Result<Vec<i32>> {
    let tx = client.transaction().await.map_err(map_pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await
        .map_err(map_pg)?;
    // `schema` was checked to be a plain identifier by PgConfig::validate.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(map_pg)?;
    let applied = applied_versions(&tx, "schema_migrations")
        .await
        .map_err(map_pg)?;
    let newest = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(v) = applied.iter().find(|v| **v > newest) {
        return Err(Error::storage(
            StorageErrorKind::Config,
            format!(
                "schema `{schema}` is at migration {v}, newer than this build knows ({newest}): upgrade the engine"
            ),
        ));
    }
    let mut now = Vec::new();
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        tx.batch_execute(&(m.sql)()).await.map_err(|e| {
            let e = map_pg(e);
            Error::storage(
                StorageErrorKind::Other,
                format!("migration {} ({}) failed: {e}", m.version, m.name),
            )
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(map_pg)?;
        now.push(m.version);
    }
    tx.commit().await.map_err(map_pg)?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_keys_are_stable() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(lock_key("crm"), lock_key("crm"));
        assert_ne!(lock_key("crm"), lock_key("crm2"));
    }
}
