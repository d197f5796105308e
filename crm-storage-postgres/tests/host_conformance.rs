//! The one conformance registry (every check, the scenarios and the property tests) on a store inside the host's
//! own transaction (`PgStore::in_host_transaction`): each test migrates a fresh schema, opens a connection of the
//! host's with `search_path` on it, begins the host's transaction and never commits it. Every engine change is a
//! savepoint in it and every read sees its uncommitted rows. Nothing is excluded: every check holds there.
//! Skipped plainly without `CRM_TEST_POSTGRES_URL` (a failure when `CRM_REQUIRE_POSTGRES=1`).

mod common;

use crm_core::store::Backend;
use crm_storage_postgres::PgStore;
use std::sync::Arc;

/// The host's connection with its transaction begun, and the engine's store on it, in a freshly migrated schema.
async fn host_transaction() -> Option<(Arc<tokio_postgres::Client>, PgStore, String)> {
    let url = common::url()?;
    let config = common::config(&url);
    let schema = config.schema.clone();
    PgStore::connect(config.clone())
        .await
        .expect("migrate the engine's schema once");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the host's connection");
    tokio::spawn(connection);
    // Its own statement: in one query string with BEGIN, the SET would belong to the transaction.
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("the host's search path");
    client
        .batch_execute("BEGIN; CREATE TABLE erp_invoices (number text PRIMARY KEY)")
        .await
        .expect("the host's transaction");
    let client = Arc::new(client);
    let store = PgStore::in_host_transaction(client.clone(), config);
    Some((client, store, schema))
}

async fn backend() -> Option<Arc<dyn Backend>> {
    Some(Arc::new(host_transaction().await?.1))
}

crm_core::backend_conformance_tests!(backend());

/// Every scenario runs inside the host's transaction without ending it (refused steps roll back to their
/// savepoints only), and the host's ROLLBACK then leaves none of the engine's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_stay_inside_the_host_transaction_and_roll_back_with_it() {
    let Some((client, store, schema)) = host_transaction().await else {
        return;
    };
    let backend: Arc<dyn Backend> = Arc::new(store);
    crm_core::conformance::check_scenarios(&backend).await;
    let count = |table: &'static str| {
        let client = client.clone();
        async move {
            client
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert!(count("partners").await > 0 && count("documents").await > 0);
    // Still the host's transaction: its own table, created after BEGIN, is there until the rollback.
    assert_eq!(count("erp_invoices").await, 0);
    client.batch_execute("ROLLBACK").await.unwrap();
    for table in crm_core::conformance::scenario::SCENARIO_TABLES {
        assert_eq!(count(table).await, 0, "{table} after the host's rollback");
    }
    let gone = client
        .query_one(
            "SELECT to_regclass($1)::text IS NULL",
            &[&format!("{schema}.erp_invoices")],
        )
        .await
        .unwrap()
        .get::<_, bool>(0);
    assert!(gone, "the host's table went with its transaction");
}
