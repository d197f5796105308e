//! Erasure leaves nothing a query or a backup of the server reads: after [`erase_everywhere`], no row of any table
//! of the store's schema (each read whole, as text) and no line of a `pg_dump` of it made afterwards holds the
//! erased people's names, e-mail addresses, phone numbers, street or tax id. (The server's own write-ahead log and
//! the dead row versions until `VACUUM` are the operator's, as for any PostgreSQL data: see ARCHITECTURE.md.)

mod common;

use crm_core::conformance::erasure::{erase_everywhere, found as found_in};
use crm_core::store::Backend;
use std::sync::Arc;

#[tokio::test]
async fn an_erased_person_is_in_no_table_and_no_dump() {
    let Some(url) = common::url() else { return };
    let config = common::config(&url);
    let schema = config.schema.clone();
    let store = crm_storage_postgres::PgStore::connect(config)
        .await
        .expect("connect to the test server");
    let backend: Arc<dyn Backend> = Arc::new(store);
    let (_, values) = erase_everywhere(&backend).await;

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() > 20, "the schema's tables: {tables:?}");
    for table in &tables {
        let rows = client
            .query(&format!("SELECT t::text FROM {schema}.{table} t"), &[])
            .await
            .expect("rows");
        let text: String = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        assert_eq!(
            found_in(&text, &values),
            Vec::<&str>::new(),
            "table {table}"
        );
    }

    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--schema", &schema, "--dbname", &url])
        .output()
        .expect("pg_dump runs (scripts/test installs PostgreSQL)");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("COPY"), "a real dump");
    assert_eq!(found_in(&dump, &values), Vec::<&str>::new(), "pg_dump");
    // The search is not blind: the namesake at another partner, who was not erased, is in the dump.
    assert_eq!(
        found_in(&dump, &["radu@alt.example"]),
        vec!["radu@alt.example"]
    );
}
