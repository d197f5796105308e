//! No back-office synchronisation: the host ERP issues an invoice in its own database transaction and the engine
//! records it in the same one, so both commit, or both roll back.
//!
//! The host shares its SQLite connection with the engine (`SqliteStore::on_host_connection`); every engine change is
//! a savepoint inside the host's transaction. On PostgreSQL the same is `PgStore::in_host_transaction(client, ..)` on
//! a connection where the host ran `BEGIN` (see `tests/host_transaction.rs`).
//!
//! Run with `cargo run --example host_transaction` (writes `target/host_transaction/erp.sqlite`).

use chrono::NaiveDate;
use crm::commerce::{DocumentKind, NewDocument, NewLine, NewProduct};
use crm::id::{TenantId, UserId};
use crm::sqlite::rusqlite::Connection;
use crm::sqlite::SqliteStore;
use crm::Decimal;
use crm::{CommerceStoreExt, Context, Crm, NewPartner, PartnerRole, StoreExt};
use std::sync::{Arc, Mutex};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new("target/host_transaction");
    std::fs::create_dir_all(dir)?;
    let file = dir.join("erp.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }

    // The host's own connection and table; the engine's schema lives in the same file.
    let conn = Arc::new(Mutex::new(Connection::open(&file)?));
    conn.lock().map_err(|_| "lock")?.execute_batch(
        "CREATE TABLE erp_invoices (number TEXT PRIMARY KEY, total TEXT NOT NULL)",
    )?;
    let crm = Crm::builder()
        .backend(Arc::new(SqliteStore::on_host_connection(conn.clone())?))
        .build()
        .await?;
    let tenant = TenantId::new();
    let ctx = Context::user(tenant, UserId::new());

    // Master data, committed on its own (the connection has no transaction open: each change commits).
    let customer = crm
        .leads()
        .create_partner(
            &ctx,
            NewPartner::company("Fabrica de Mobilă SRL").with_role(PartnerRole::Customer),
        )
        .await?
        .record;
    let product = crm
        .commerce()
        .record_product(
            &ctx,
            NewProduct {
                code: "CNC-1".into(),
                name: "CNC machine".into(),
                category: None,
            },
            None,
        )
        .await?
        .record()
        .clone();
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).ok_or("a date")?;
    let lines = || {
        vec![NewLine::new(
            product.id(),
            Decimal::ONE,
            Decimal::new(84_000, 0),
            Decimal::new(61_000, 0),
        )]
    };

    // The ERP issues invoice F-1 and the engine records it, in one transaction that the ERP then rolls back (say
    // its stock check failed): neither the ERP's row nor the engine's document (nor their events) remain.
    for (number, outcome) in [("F-1", "ROLLBACK"), ("F-2", "COMMIT")] {
        {
            let c = conn.lock().map_err(|_| "lock")?;
            c.execute_batch("BEGIN")?;
            c.execute("INSERT INTO erp_invoices VALUES (?1, '84000.00')", [number])?;
        }
        crm.commerce()
            .record_document(
                &ctx,
                NewDocument::invoice(number, customer.id(), day, "EUR", lines()),
            )
            .await?;
        conn.lock().map_err(|_| "lock")?.execute_batch(outcome)?;
        let erp: i64 = conn.lock().map_err(|_| "lock")?.query_row(
            "SELECT COUNT(*) FROM erp_invoices WHERE number = ?1",
            [number],
            |r| r.get(0),
        )?;
        let engine = crm
            .backend()
            .document_by_number(tenant, DocumentKind::Invoice, number)
            .await?
            .is_some();
        println!(
            "{number}: the host ran {outcome}; ERP invoice rows: {erp}; engine document recorded: {engine}"
        );
    }
    let events = crm.backend().events_since(tenant, 0, 100).await?.len();
    let partner = crm.backend().partner(tenant, customer.id()).await?;
    println!(
        "the engine's activity log holds {events} events for {} (none from the rolled-back invoice)",
        partner.name()
    );
    Ok(())
}
