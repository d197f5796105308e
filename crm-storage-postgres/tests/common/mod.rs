//! Shared set-up of the PostgreSQL tests: the server comes from `CRM_TEST_POSTGRES_URL`, each test gets a fresh
//! schema, and without a server the suite says plainly that it was skipped (or fails when `CRM_REQUIRE_POSTGRES=1`).

#![allow(dead_code)]

use crm_core::store::Store;
use crm_storage_postgres::{PgConfig, PgStore};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The message printed when no server is configured.
pub const SKIPPED: &str =
    "Postgres suite SKIPPED: set CRM_TEST_POSTGRES_URL or run scripts/test (or scripts/with-postgres cargo test)";

/// The test server's URL; `None` (after saying so) when there is none and none is required.
pub fn url() -> Option<String> {
    match std::env::var("CRM_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var("CRM_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("CRM_REQUIRE_POSTGRES=1 but CRM_TEST_POSTGRES_URL is not set: the Postgres suite must run");
            }
            // Once per test binary, written to the stderr handle directly: libtest captures `println!` and
            // `eprintln!` of passing tests, and a skip must be seen.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "\n{SKIPPED}\n");
            });
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "crm_t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
    )
}

/// A configuration for the test server with a fresh schema.
pub fn config(url: &str) -> PgConfig {
    PgConfig::from_url(url)
        .with_schema(fresh_schema())
        .with_pool_size(8)
}

/// A store in a fresh schema, or `None` when the suite is skipped.
pub async fn store() -> Option<PgStore> {
    let url = url()?;
    Some(
        PgStore::connect(config(&url))
            .await
            .expect("connect to the test server"),
    )
}

/// The same, as the trait object the conformance suite takes.
pub async fn dyn_store() -> Option<Arc<dyn Store>> {
    store().await.map(|s| Arc::new(s) as Arc<dyn Store>)
}

/// A service over `store` and a fresh tenant set up in it: the store as the trait object the service holds, the
/// service, a user's context in the tenant and the tenant's seed pipeline.
pub async fn tenant_service(
    store: PgStore,
) -> (
    Arc<dyn Store>,
    crm_core::service::CrmService,
    crm_core::actor::Context,
    crm_core::pipeline::Pipeline,
) {
    let store: Arc<dyn Store> = Arc::new(store);
    let crm = crm_core::service::CrmService::builder()
        .store(store.clone())
        .build()
        .unwrap();
    let ctx =
        crm_core::actor::Context::user(crm_core::id::TenantId::new(), crm_core::id::UserId::new());
    let pipeline = crm.setup_tenant(&ctx).await.unwrap();
    (store, crm, ctx, pipeline)
}

/// Asserts that each of `leads` stands at version 1 + `changes(id)` (it was entered at 1): `what` went wrong
/// otherwise.
pub async fn assert_versions(
    crm: &crm_core::service::CrmService,
    tenant: crm_core::id::TenantId,
    leads: &[crm_core::id::LeadId],
    changes: impl Fn(&crm_core::id::LeadId) -> u64,
    what: &str,
) {
    for id in leads {
        let lead = crm.lead(tenant, *id).await.unwrap();
        assert_eq!(lead.version(), 1 + changes(id), "lead {id}: {what}");
    }
}

/// A partner named `name` and `n` leads of it (`Lead 0` …), entered through `crm`; their ids.
pub async fn partner_with_leads(
    crm: &crm_core::service::CrmService,
    ctx: &crm_core::actor::Context,
    name: &str,
    n: usize,
) -> Vec<crm_core::id::LeadId> {
    use crm_core::lead::NewLead;
    use crm_core::partner::NewPartner;
    let partner = crm
        .create_partner(ctx, NewPartner::company(name))
        .await
        .unwrap()
        .record
        .id();
    let mut leads = Vec::with_capacity(n);
    for i in 0..n {
        let l = crm
            .enter_lead(ctx, NewLead::for_partner(partner, format!("Lead {i}")))
            .await
            .unwrap()
            .record;
        leads.push(l.id());
    }
    leads
}

/// The tenant's whole event log through `events_since`, asserting its positions are dense and ordered (1, 2, …).
pub async fn whole_log(
    store: &Arc<dyn Store>,
    tenant: crm_core::id::TenantId,
) -> Vec<(u64, crm_core::event::DomainEvent)> {
    let mut log = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.events_since(tenant, after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.0;
        // As the engine reads its log: opened (events about partners are stored sealed).
        let batch = crm_core::service::open_feed(store.as_ref(), tenant, batch)
            .await
            .unwrap();
        log.extend(batch);
    }
    let positions: Vec<u64> = log.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "positions are dense and ordered: no hole in the log"
    );
    log
}
