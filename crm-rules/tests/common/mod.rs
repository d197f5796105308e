//! Set-up shared by the end-to-end tests on SQLite.

use crm_core::actor::Context;
use crm_core::comms::{RuleEngine, StaticDirectory};
use crm_core::partner::{NewContact, NewPartner, Partner};
use crm_core::service::{CrmService, RulesHook};
use crm_core::time::FixedClock;
use crm_rules::fixtures::Org;
use crm_storage_sqlite::SqliteStore;
use std::sync::Arc;

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
        customer.id,
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
