//! No back-office synchronisation: the engine runs inside the host's own transaction, so the invoice the host's ERP
//! issues and the engine's record of it (the document, the lead, their events, the messages the rules decided) commit
//! or roll back together — on PostgreSQL (a connection the host holds) and on SQLite (a connection the host shares).

use chrono::NaiveDate;
use crm::commerce::{NewDocument, NewLine, NewProduct};
use crm::id::TenantId;
use crm::rules::fixtures::Org;
use crm::rules::{Limits, RhaiRuleEngine, RuleSet};
use crm::sqlite::rusqlite::Connection;
use crm::sqlite::SqliteStore;
use crm::{
    Backend, CommerceStoreExt, Context, Crm, LeadCommand, NewLead, NewPartner, OutboxStatus,
    OutboxStore, PageRequest, StoreExt,
};
use rust_decimal::Decimal;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The example communication scheme, so entering a lead enqueues a message and a guard can refuse a move.
fn engine_on(backend: Arc<dyn Backend>) -> impl std::future::Future<Output = crm::Result<Crm>> {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules");
    let org = Org::load(&rules.join("org.toml")).expect("the example organisation");
    let set = RuleSet::load_dir(&rules, Limits::default()).expect("the example rules");
    let engine = Arc::new(RhaiRuleEngine::new(set).with_known_roles(org.roles.clone()));
    Crm::builder()
        .backend(backend)
        .rules(engine, Arc::new(org.directory()))
        .build()
}

/// What the engine writes for one sale, inside whatever transaction the backend is in: a pipeline, a partner, a
/// lead (whose rule enqueues a message), a product and an invoice. A move the scheme's guard refuses fails in the
/// middle without spoiling the host's transaction.
async fn engine_work(crm: &Crm, tenant: TenantId) -> crm::Result<()> {
    let ctx = Context::user(tenant, Org::user_id("ana"));
    let pipeline = crm.leads().setup_tenant(&ctx).await?;
    let partner = crm
        .leads()
        .create_partner(&ctx, NewPartner::company("Host Customer SRL"))
        .await?
        .record;
    let lead = crm
        .leads()
        .enter_lead(
            &ctx,
            NewLead::for_partner(partner.id(), "Forklifts").with_owner(Org::user_id("ana")),
        )
        .await?
        .record;
    let negotiation = pipeline.stage_named("Negotiation").expect("seed stage").id;
    let refused = crm
        .leads()
        .transition(
            &ctx,
            lead.id(),
            lead.version(),
            LeadCommand::MoveTo { stage: negotiation },
        )
        .await;
    assert!(refused.is_err(), "the guard refuses a move without revenue");
    let product = crm
        .commerce()
        .record_product(
            &ctx,
            NewProduct {
                code: "FL-1".into(),
                name: "Forklift".into(),
                category: None,
            },
            None,
        )
        .await?
        .record()
        .clone();
    let day = NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date");
    let line = NewLine::new(
        product.id(),
        Decimal::ONE,
        Decimal::new(1000, 0),
        Decimal::new(600, 0),
    );
    crm.commerce()
        .record_document(
            &ctx,
            NewDocument::invoice("F-1", partner.id(), day, "EUR", vec![line]),
        )
        .await?;
    Ok(())
}

/// After the host's ROLLBACK nothing of the engine's or the host's writes remains; after its COMMIT both remain.
fn assert_outcome(
    outcome: &str,
    (pipelines, events, outbox, invoice): (usize, usize, usize, bool),
    erp: i64,
) {
    if outcome == "ROLLBACK" {
        assert_eq!(
            (pipelines, events, outbox, invoice, erp),
            (0, 0, 0, false, 0)
        );
    } else {
        assert_eq!(pipelines, 1);
        assert!(
            events >= 3,
            "the partner, lead and invoice events: {events}"
        );
        assert!(outbox >= 1, "the new-lead rule's message");
        assert!(invoice);
        assert_eq!(erp, 2);
    }
}

/// What the engine holds of `tenant`, read through a fresh store: (pipelines, events, outbox messages, invoice F-1).
async fn engine_rows(crm: &Crm, tenant: TenantId) -> (usize, usize, usize, bool) {
    let b = crm.backend();
    let pipelines = b.pipelines(tenant).await.unwrap().len();
    let events = b.events_since(tenant, 0, 1000).await.unwrap().len();
    let outbox = b
        .list_outbox(tenant, OutboxStatus::Pending, &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .len();
    let invoice = CommerceStoreExt::document_by_number(
        b.as_ref(),
        tenant,
        crm::commerce::DocumentKind::Invoice,
        "F-1",
    )
    .await
    .unwrap()
    .is_some();
    (pipelines, events, outbox, invoice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_host_rollback_takes_the_engine_writes_with_it_and_commit_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("erp.sqlite");
    SqliteStore::open_file(&file).expect("migrate the engine's schema once");
    let conn = Arc::new(Mutex::new(Connection::open(&file).unwrap()));
    conn.lock()
        .unwrap()
        .execute_batch("CREATE TABLE erp_invoices (number TEXT PRIMARY KEY)")
        .unwrap();
    let shared: Arc<dyn Backend> = Arc::new(SqliteStore::on_host_connection(conn.clone()).unwrap());
    let crm = engine_on(shared).await.unwrap();
    let reader = Crm::builder().sqlite_path(&file).build().await.unwrap();

    for (outcome, tenant) in [("ROLLBACK", TenantId::new()), ("COMMIT", TenantId::new())] {
        conn.lock()
            .unwrap()
            .execute_batch("BEGIN; INSERT INTO erp_invoices VALUES ('F-1-' || hex(randomblob(4)))")
            .unwrap();
        engine_work(&crm, tenant).await.unwrap();
        // The refused move rolled back to its savepoint only: the host's transaction goes on.
        conn.lock()
            .unwrap()
            .execute_batch("INSERT INTO erp_invoices VALUES ('F-2-' || hex(randomblob(4)))")
            .unwrap();
        conn.lock().unwrap().execute_batch(outcome).unwrap();
        let erp: i64 = conn
            .lock()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM erp_invoices", [], |r| r.get(0))
            .unwrap();
        assert_outcome(outcome, engine_rows(&reader, tenant).await, erp);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_host_rollback_takes_the_engine_writes_with_it_and_commit_keeps_them() {
    let Some(url) = std::env::var("CRM_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        assert_ne!(
            std::env::var("CRM_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "CRM_REQUIRE_POSTGRES=1 but CRM_TEST_POSTGRES_URL is not set"
        );
        eprintln!(
            "host transaction on PostgreSQL SKIPPED: set CRM_TEST_POSTGRES_URL or run scripts/test"
        );
        return;
    };
    use crm_storage_postgres::{PgConfig, PgStore};
    let schema = format!(
        "crm_host_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let config = PgConfig::from_url(&url).with_schema(schema.clone());
    let migrated = PgStore::connect(config.clone()).await.unwrap();
    let reader = Crm::builder()
        .backend(Arc::new(migrated))
        .build()
        .await
        .unwrap();

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    client
        .batch_execute(&format!(
            "SET search_path TO {schema}; CREATE TABLE erp_invoices (number text PRIMARY KEY)"
        ))
        .await
        .unwrap();
    let shared = PgStore::in_host_transaction(client.clone(), config);
    let crm = engine_on(Arc::new(shared.clone())).await.unwrap();

    // Without BEGIN the engine refuses to write rather than commit on its own.
    let e = crm
        .leads()
        .setup_tenant(&Context::user(TenantId::new(), Org::user_id("ana")))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("transaction"), "{e}");

    for (outcome, tenant) in [("ROLLBACK", TenantId::new()), ("COMMIT", TenantId::new())] {
        client
            .batch_execute("BEGIN; INSERT INTO erp_invoices VALUES ('F-1-' || gen_random_uuid())")
            .await
            .unwrap();
        engine_work(&crm, tenant).await.unwrap();
        client
            .batch_execute("INSERT INTO erp_invoices VALUES ('F-2-' || gen_random_uuid())")
            .await
            .unwrap();
        client.batch_execute(outcome).await.unwrap();
        let erp: i64 = client
            .query_one("SELECT COUNT(*) FROM erp_invoices", &[])
            .await
            .unwrap()
            .get(0);
        assert_outcome(outcome, engine_rows(&reader, tenant).await, erp);
    }
}
