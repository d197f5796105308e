//! Set-up shared by the tests: the example scheme's directory, the command-line tool, a customer with the example
//! organisation's directory over SQLite, a product.

// Each test crate uses some of these.
#![allow(dead_code)]

use crm_core::actor::Context;
use crm_core::comms::{RuleEngine, StaticDirectory};
use crm_core::partner::{NewContact, NewPartner, Partner};
use crm_core::service::{CrmService, RulesHook};
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
    let plain = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
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
