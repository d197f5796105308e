//! The communication schema end to end on the embedded SQLite store: the classic scheme of `examples/rules/`
//! decides notifications, e-mails and tasks inside each change's transaction; the scheduler escalates an idle lead;
//! the dispatcher delivers to the in-app inboxes, to e-mail and to the task notifier.
//!
//! Run with `cargo run --example communication`. E-mails are recorded and printed; set `CRM_SMTP_ADDR=host:port` to send them
//! through that SMTP server instead (for example under `scripts/with-smtp`, which exports `CRM_TEST_SMTP_ADDR`).

#[path = "common/delivery.rs"]
mod delivery;
#[path = "common/pipeline.rs"]
mod pipeline;

use chrono::{Duration, TimeZone, Utc};
use crm::id::TenantId;
use crm::rules::fixtures::Org;
use crm::rules::notify::Templates;
use crm::rules::{Limits, RhaiRuleEngine, RuleSet};
use crm::{
    Context, Crm, FixedClock, LeadCommand, LeadPartner, Money, NewContact, NewLead, NewPartner,
    OutboxStore, PageRequest,
};
use std::path::Path;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> crm::Result<()> {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules");
    let org = Org::load(&rules.join("org.toml")).expect("examples/rules/org.toml");
    let set = RuleSet::load_dir(&rules, Limits::default()).expect("the example rules compile");
    let engine = Arc::new(RhaiRuleEngine::new(set).with_known_roles(org.roles.clone()));
    let templates = Arc::new(Templates::load_dir(&rules.join("templates")).expect("templates"));

    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let tenant: TenantId = Org::tenant();
    let ana = Org::user_id("ana");
    let ctx = Context::user(tenant, ana);

    // One engine: in-memory SQLite, the scheme deciding in every change's transaction, the host's directory of its
    // organisation (the customers' contacts are read from the partners themselves).
    let crm = Crm::builder()
        .sqlite_in_memory()
        .clock(clock.clone())
        .rules(engine, Arc::new(org.directory()))
        .build()
        .await?;
    let leads = crm.leads();
    let mut customer = NewPartner::company("Customer Ltd");
    customer.contacts.push(NewContact {
        name: "Maria Georgescu".into(),
        role: Some("primary".into()),
        email: Some("maria@customer.example".into()),
        ..Default::default()
    });
    let customer = leads.create_partner(&ctx, customer).await?.record;
    let pipeline = leads.setup_tenant(&ctx).await?;
    let stage = |name: &str| pipeline.stage_named(name).expect("seed stage").id;

    println!("Ana enters two leads and works one through to a won contract.");
    let solar = leads
        .enter_lead(
            &ctx,
            NewLead::new(LeadPartner::Existing { id: customer.id() }, "Solar roof")
                .with_revenue(Money::parse("80000", "EUR")?)
                .with_owner(ana),
        )
        .await?
        .record;
    let mystery = leads
        .enter_lead(
            &ctx,
            NewLead::new(LeadPartner::Existing { id: customer.id() }, "Mystery roof")
                .with_owner(ana),
        )
        .await?
        .record;
    match leads
        .transition(
            &ctx,
            mystery.id(),
            mystery.version(),
            LeadCommand::MoveTo {
                stage: stage("Negotiation"),
            },
        )
        .await
    {
        Err(e) => println!("  moving \"Mystery roof\" to Negotiation: {e}"),
        Ok(_) => println!("  (the guard did not refuse)"),
    }
    let lead =
        pipeline::move_through(leads, &ctx, &pipeline, solar, &["Offer", "Negotiation"]).await?;
    leads
        .transition(&ctx, lead.id(), lead.version(), LeadCommand::Win)
        .await?;

    println!("Four days pass; the scheduler ticks.");
    clock.advance(Duration::days(4));
    let report = crm.tick(tenant, 100).await?;
    for f in &report.firings {
        println!("  timer {} fired ({})", f.timer, f.key);
    }

    println!("The dispatcher delivers the outbox.");
    let (r, emails) = delivery::deliver(&crm, templates.clone(), 50).await?;
    println!(
        "  {} delivered, {} to retry, {} dead",
        r.delivered, r.retried, r.dead
    );
    for (to, t) in emails {
        println!(
            "  e-mail to {to}: {}\n    {}",
            t.subject,
            t.text.trim().replace('\n', "\n    ")
        );
    }

    println!("Inboxes:");
    for u in &org.users {
        let items = crm
            .outbox()
            .inbox(tenant, Org::user_id(&u.key), false, &PageRequest::default())
            .await?
            .items;
        for i in items.iter().rev() {
            println!("  {:<14} [{}] {}", u.name, i.rule, i.subject);
        }
    }
    for r in leads.requests_of_lead(tenant, lead.id()).await? {
        println!(
            "Request opened by the rules: \"{}\" for {}",
            r.title(),
            r.assignee()
        );
    }
    Ok(())
}
