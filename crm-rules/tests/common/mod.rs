//! Set-up shared by the tests: the example scheme's directory, the command-line tool, a customer with the example
//! organisation's directory over SQLite, a product.

// Each test crate uses some of these.
#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use crm_core::actor::Context;
use crm_core::comms::{RuleEngine, StaticDirectory};
use crm_core::partner::{NewContact, NewPartner, Partner};
use crm_core::service::{CrmService, RulesHook};
use crm_core::store::Store;
use crm_core::time::FixedClock;
use crm_rules::fixtures::Org;
use crm_storage_sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The example scheme (`examples/rules`).
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules")
}

/// Runs the command-line tool: whether it succeeded, and what it printed (stdout, then stderr).
pub fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crm-rules"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// An in-memory SQLite store and a clock fixed at 09:00 UTC on the day `y-m-d`.
pub fn memory_store_at(y: i32, m: u32, d: u32) -> (Arc<SqliteStore>, Arc<FixedClock>) {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap(),
    ));
    (store, clock)
}

/// A service over `store` and `clock` that runs no hooks.
pub fn plain_service(store: Arc<dyn Store>, clock: &Arc<FixedClock>) -> CrmService {
    CrmService::builder()
        .store(store)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Sets up the tenant of `ctx` and creates the company `name` in it.
pub async fn tenant_with_company(crm: &CrmService, ctx: &Context, name: &str) -> Partner {
    crm.setup_tenant(ctx).await.unwrap();
    crm.create_partner(ctx, NewPartner::company(name))
        .await
        .unwrap()
        .record
}

/// Asserts that `text` holds each of `parts`, and shows `text` when one is missing.
#[track_caller]
pub fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
}

/// Asserts that a run of the tool (`(ok, output)`) succeeded with each of `parts` in its output; returns the output.
#[track_caller]
pub fn passed_with((ok, out): (bool, String), parts: &[&str]) -> String {
    assert!(ok, "{out}");
    assert_has(&out, parts);
    out
}

/// Asserts that a run of the tool (`(ok, output)`) failed with each of `parts` in its output; returns the output.
#[track_caller]
pub fn failed_with((ok, out): (bool, String), parts: &[&str]) -> String {
    assert!(!ok, "{out}");
    assert_has(&out, parts);
    out
}

/// Records the product `P-1` (a panel) and returns its id.
pub async fn panel(
    commerce: &crm_core::service::CommerceService,
    ctx: &Context,
) -> crm_core::id::ProductId {
    commerce
        .record_product(
            ctx,
            crm_core::commerce::NewProduct {
                code: "P-1".into(),
                name: "Panel".into(),
                category: None,
            },
            None,
        )
        .await
        .unwrap()
        .record()
        .id()
}

/// Creates the customer `Customer Ltd` (owned by `owner`) whose primary contact is Maria, and returns it with the
/// organisation's directory, which knows that contact, and the service whose commits run `engine`.
pub async fn customer_and_rules(
    org: &Org,
    store: &Arc<SqliteStore>,
    clock: &Arc<FixedClock>,
    ctx: &Context,
    owner: Option<&str>,
    engine: Arc<dyn RuleEngine>,
) -> (Partner, Arc<StaticDirectory>, CrmService) {
    let plain = plain_service(store.clone(), clock);
    let mut customer = NewPartner::company("Customer Ltd");
    customer.owner = owner.map(Org::user_id);
    customer.contacts.push(NewContact {
        name: "Maria Georgescu".into(),
        role: Some("primary".into()),
        email: Some("maria@customer.example".into()),
        ..Default::default()
    });
    let customer = plain.create_partner(ctx, customer).await.unwrap().record;
    let directory = Arc::new(org.directory().with_contact(
        customer.id(),
        "primary",
        "Maria Georgescu",
        "maria@customer.example",
    ));
    let crm = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .hook(Arc::new(RulesHook::new(engine, directory.clone())))
        .build()
        .unwrap();
    (customer, directory, crm)
}
