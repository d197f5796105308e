//! Bulk loading ([`BulkStep`], run as `CommerceStore::rollups` with `RollupAction::Bulk`), written once for both
//! adapters.
//!
//! Recording a document through the commit path updates, besides its own rows, every index keyed by partner and
//! product and four roll-up tables: at a million customers those pages are all over the file, so a large import
//! spends its time on random page writes. A bulk load defers both: `Begin` records the tenant in [`LOADS`] and,
//! the first time, saves the definition of every non-unique index in [`DEFERRED`] and drops the index (unique
//! indexes and primary keys stay: they are constraints); while the tenant is in [`LOADS`], its ingests insert rows
//! only, without the roll-up statements. `Finish` removes the tenant, builds the saved indexes again when no load
//! is left open (one sorted build each, `CREATE INDEX IF NOT EXISTS`, so a half-done finish can run again), and
//! rebuilds the tenant's roll-ups from its documents (as `rebuild_rollups` does), all in one transaction.
//!
//! Each step is one transaction, so after a crash either it happened or it did not: the saved definitions and the
//! open loads are the marker. [`recover`] finishes every load left open and builds any index still saved: SQLite
//! runs it when it opens a file (one process owns an embedded file), PostgreSQL when the host calls
//! `PgStore::finish_bulk_loads` (connecting never finishes another process's load).

use crate::commerce::Exec;
use crate::schema::create_table;
use crate::{Dialect, Kind, Sql};
use crm_core::commerce::{RollupAction, RollupCheck};
use crm_core::id::TenantId;
use crm_core::store::{BulkLoad, BulkStep};
use crm_core::Result;

/// The open bulk loads, one row per tenant.
pub const LOADS: &str = "bulk_loads";

/// The first key of the PostgreSQL advisory lock that serialises bulk steps ("bulk" in ASCII); the second is the
/// schema's, so stores in other schemas of the database never wait for each other.
const STEP_LOCK: i32 = 0x6275_6c6b;

/// The indexes dropped until the last open bulk load finishes: name and `CREATE INDEX` statement.
pub const DEFERRED: &str = "deferred_indexes";

/// The bulk-loading migration (SQLite's 22, PostgreSQL's 21): [`LOADS`] and [`DEFERRED`].
pub fn schema(dialect: Dialect) -> String {
    format!(
        "{}{}",
        create_table(
            dialect,
            LOADS,
            &[("tenant", Kind::Uuid)],
            &[],
            &["PRIMARY KEY (tenant)"],
        ),
        create_table(
            dialect,
            DEFERRED,
            &[("name", Kind::Text), ("definition", Kind::Text)],
            &[],
            &["PRIMARY KEY (name)"],
        )
    )
}

/// The statement naming every index a bulk load defers and its definition: the non-unique indexes of the store's
/// schema not saved yet.
fn deferrable(dialect: Dialect) -> Sql {
    let text = match dialect {
        Dialect::Sqlite => format!(
            "INSERT INTO {DEFERRED} (name, definition) SELECT name, sql FROM sqlite_schema \
             WHERE type = 'index' AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%' \
             AND name NOT IN (SELECT name FROM {DEFERRED}) ON CONFLICT (name) DO NOTHING"
        ),
        // The schema's own indexes first, their definitions after: `pg_get_indexdef` of an index another
        // session drops meanwhile (in another schema) fails, so it never sees the others. Names are saved
        // schema-qualified, so the drop never reaches another schema of the search path.
        Dialect::Postgres => format!(
            "INSERT INTO {DEFERRED} (name, definition) \
             WITH own AS MATERIALIZED (SELECT i.indexrelid, \
             quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND NOT i.indisunique) \
             SELECT name, pg_get_indexdef(indexrelid) FROM own \
             WHERE name NOT IN (SELECT name FROM {DEFERRED}) ON CONFLICT (name) DO NOTHING"
        ),
    };
    plain(dialect, text)
}

/// A statement without parameters.
fn plain(dialect: Dialect, text: String) -> Sql {
    crate::commerce::with(dialect, text, Vec::new())
}

/// A saved definition, made idempotent: `CREATE INDEX IF NOT EXISTS …` (both catalogs store it as `CREATE INDEX
/// name ON …`).
fn if_not_exists(definition: &str) -> String {
    match definition.strip_prefix("CREATE INDEX ") {
        Some(rest) if !rest.starts_with("IF NOT EXISTS") => {
            format!("CREATE INDEX IF NOT EXISTS {rest}")
        }
        _ => definition.to_string(),
    }
}

/// Where loading stands for `tenant` (`rebuilt` false).
async fn state<E: Exec>(tx: &E, dialect: Dialect, tenant: TenantId) -> Result<BulkLoad> {
    let open = tx
        .first_int(tenant_load(dialect, tenant, ""))
        .await?
        .unwrap_or(0)
        > 0;
    let count = |table: &str| plain(dialect, format!("SELECT count(*) FROM {table}"));
    let loads = tx.first_int(count(LOADS)).await?.unwrap_or(0);
    let deferred = tx.first_int(count(DEFERRED)).await?.unwrap_or(0);
    Ok(BulkLoad {
        open,
        open_loads: u32::try_from(loads).unwrap_or(u32::MAX),
        deferred_indexes: u32::try_from(deferred).unwrap_or(u32::MAX),
        rebuilt: false,
    })
}

/// On PostgreSQL, waits until no other bulk step runs in the database: a `Begin` that saved and dropped the
/// indexes while a `Finish` built them again could lose a definition. The lock is released when the transaction
/// ends. (SQLite has one writer.)
async fn one_at_a_time<E: Exec>(tx: &E, dialect: Dialect) -> Result<()> {
    if dialect == Dialect::Postgres {
        tx.execute(plain(
            dialect,
            format!("SELECT pg_advisory_xact_lock({STEP_LOCK}, hashtext(current_schema()))"),
        ))
        .await?;
    }
    Ok(())
}

/// One step of `tenant`'s bulk load, inside the adapter's transaction `tx` (see the [module docs](self)).
///
/// # Errors
///
/// The adapter's.
pub async fn step<E: Exec>(
    tx: &E,
    dialect: Dialect,
    tenant: TenantId,
    step: BulkStep,
) -> Result<BulkLoad> {
    if step != BulkStep::Status {
        one_at_a_time(tx, dialect).await?;
    }
    match step {
        BulkStep::Status => state(tx, dialect, tenant).await,
        BulkStep::Begin => {
            let (mut open, t) = Sql::for_tenant(dialect, tenant);
            open.text = format!(
                "INSERT INTO {LOADS} (tenant) VALUES ({t}) ON CONFLICT (tenant) DO NOTHING"
            );
            tx.execute(open).await?;
            tx.execute(deferrable(dialect)).await?;
            let names = tx
                .texts(plain(
                    dialect,
                    format!("SELECT name FROM {DEFERRED} ORDER BY name"),
                ))
                .await?;
            for name in names {
                tx.execute(plain(dialect, format!("DROP INDEX IF EXISTS {name}")))
                    .await?;
            }
            state(tx, dialect, tenant).await
        }
        BulkStep::Finish => finish(tx, dialect, Some(tenant)).await,
    }
}

/// Finishes `tenant`'s load (when open: its roll-ups are rebuilt) and, when no load is left open, builds the
/// deferred indexes again; with no tenant, only the latter.
async fn finish<E: Exec>(tx: &E, dialect: Dialect, tenant: Option<TenantId>) -> Result<BulkLoad> {
    let mut was_open = false;
    if let Some(tenant) = tenant {
        let (mut close, t) = Sql::for_tenant(dialect, tenant);
        close.text = format!("DELETE FROM {LOADS} WHERE tenant = {t}");
        was_open = tx.execute(close).await? > 0;
    }
    let left = tx
        .first_int(plain(dialect, format!("SELECT count(*) FROM {LOADS}")))
        .await?
        .unwrap_or(0);
    if left == 0 {
        let definitions = tx
            .texts(plain(
                dialect,
                format!("SELECT definition FROM {DEFERRED} ORDER BY name"),
            ))
            .await?;
        for d in definitions {
            tx.execute(plain(dialect, if_not_exists(&d))).await?;
        }
        tx.execute(plain(dialect, format!("DELETE FROM {DEFERRED}")))
            .await?;
    }
    // The indexes first: the rebuild's statements read the documents through them.
    if let (Some(tenant), true) = (tenant, was_open) {
        for sql in crate::rollup::rebuild_sql(dialect, tenant, crate::rollup::Rebuild::Load) {
            tx.execute(sql).await?;
        }
    }
    let mut out = match tenant {
        Some(t) => state(tx, dialect, t).await?,
        None => BulkLoad::default(),
    };
    out.rebuilt = was_open;
    Ok(out)
}

/// [`CommerceStore::rollups`](crm_core::commerce::CommerceStore::rollups) of an adapter: a bulk-load step in the
/// adapter's transaction ([`AdapterStore::bulk_step`](crate::store::AdapterStore::bulk_step)), or the check or
/// rebuild of [`crate::rollup::rollups`].
///
/// # Errors
///
/// The adapter's.
pub async fn rollups<R: crate::store::AdapterStore + ?Sized>(
    r: &R,
    tenant: TenantId,
    action: RollupAction,
) -> Result<RollupCheck> {
    match action {
        RollupAction::Bulk(step) => Ok(RollupCheck {
            bulk: Some(r.bulk_step(tenant, step).await?),
            ..RollupCheck::default()
        }),
        other => crate::rollup::rollups(r, tenant, other).await,
    }
}

/// The tenants with a bulk load open (a crash left them so when the store is being opened).
///
/// # Errors
///
/// The adapter's.
pub async fn open_loads<E: Exec>(tx: &E, dialect: Dialect) -> Result<Vec<TenantId>> {
    let text = match dialect {
        Dialect::Sqlite => format!("SELECT lower(hex(tenant)) FROM {LOADS} ORDER BY tenant"),
        Dialect::Postgres => format!("SELECT tenant::text FROM {LOADS} ORDER BY tenant"),
    };
    tx.texts(plain(dialect, text))
        .await?
        .iter()
        .map(|t| {
            uuid::Uuid::parse_str(t)
                .map(TenantId::from_uuid)
                .map_err(|e| crate::corrupt("bulk load tenant", e))
        })
        .collect()
}

/// Finishes every bulk load left open and builds every index still deferred, in the adapter's transaction `tx`
/// (each adapter runs it when it opens a store); the tenants whose loads it finished.
///
/// # Errors
///
/// The adapter's.
pub async fn recover<E: Exec>(tx: &E, dialect: Dialect) -> Result<Vec<TenantId>> {
    one_at_a_time(tx, dialect).await?;
    let tenants = open_loads(tx, dialect).await?;
    for t in &tenants {
        finish(tx, dialect, Some(*t)).await?;
    }
    finish(tx, dialect, None).await?;
    Ok(tenants)
}

/// Whether `tenant` has a bulk load open: its ingests then leave the roll-ups alone (the adapters ask in the
/// ingest's transaction).
///
/// On PostgreSQL the ingest takes a share lock on the tenant's load, so a `Finish` waits for the ingests under way
/// and its rebuild counts their documents (SQLite has one writer: nothing runs between them).
pub fn is_open(dialect: Dialect, tenant: TenantId) -> Sql {
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR SHARE",
    };
    tenant_load(dialect, tenant, lock)
}

/// `SELECT count(*)` of `tenant`'s open load (0 or 1), its row locked as `lock` says (`""` or ` FOR SHARE`).
fn tenant_load(dialect: Dialect, tenant: TenantId, lock: &str) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    sql.text =
        format!("SELECT count(*) FROM (SELECT 1 FROM {LOADS} WHERE tenant = {t}{lock}) AS x");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_definition_runs_again_without_failing() {
        assert_eq!(
            if_not_exists("CREATE INDEX a ON t (x)"),
            "CREATE INDEX IF NOT EXISTS a ON t (x)"
        );
        assert_eq!(
            if_not_exists("CREATE INDEX IF NOT EXISTS a ON t (x)"),
            "CREATE INDEX IF NOT EXISTS a ON t (x)"
        );
        assert_eq!(
            if_not_exists("CREATE INDEX a ON crm.t USING btree (x)"),
            "CREATE INDEX IF NOT EXISTS a ON crm.t USING btree (x)"
        );
    }
}
