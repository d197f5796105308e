//! The engine's own time rule through the facade: `Crm::tick` expires the sent quotations past their validity,
//! and the rules react to the expiry like to any change.

use chrono::{Duration, TimeZone, Utc};
use crm::id::{TenantId, UserId};
use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
use crm::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationStatus, QuotationTerms};
use crm::{
    CommerceStoreExt, Context, Crm, Currency, FixedClock, LeadPartner, Money, NewLead, NewPartner,
    OutboxStatus, OutboxStore, PageRequest, StaticDirectory,
};
use std::sync::Arc;

#[tokio::test]
async fn a_tick_expires_quotations_past_their_validity_and_the_rules_hear_of_it() {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let (tenant, ana) = (TenantId::new(), UserId::new());
    let ctx = Context::user(tenant, ana);
    let code =
        r#"fn on_quotation_expired(ev) { notify("owner", "Quotation expired", ev.lead.title); }"#;
    let rules = RuleSet::compile([RuleSource::new("expired", code)], Limits::default()).unwrap();
    let directory = StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None);
    let crm = Crm::builder()
        .sqlite_in_memory()
        .clock(clock.clone())
        .rules(Arc::new(RhaiRuleEngine::new(rules)), Arc::new(directory))
        .build()
        .await
        .unwrap();
    crm.leads().setup_tenant(&ctx).await.unwrap();
    let partner = LeadPartner::New {
        partner: NewPartner::company("Acme SRL"),
    };
    let lead = crm
        .leads()
        .enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana))
        .await
        .unwrap()
        .record;
    let today = crm::Clock::now(&*clock).date_naive();
    let offer = |days: i64| NewQuotation {
        lead: Some(lead.id()),
        partner: lead.partner(),
        currency: Currency::parse("RON").unwrap(),
        terms: QuotationTerms {
            lines: vec![QuotationLine::new(
                "Forklift",
                1.into(),
                Money::parse("90000", "RON").unwrap(),
                "S",
            )],
            valid_until: today + Duration::days(days),
            terms: None,
        },
    };
    let sales = crm.commerce();
    let short = sales.create_quotation(&ctx, offer(1)).await.unwrap();
    let long = sales.create_quotation(&ctx, offer(60)).await.unwrap();
    for q in [&short, &long] {
        sales
            .quotation_command(&ctx, q.id(), 1, QuotationCommand::Send)
            .await
            .unwrap();
    }
    crm.tick(tenant, 100).await.unwrap();
    let status = |id| async move { sales.store().quotation(tenant, id).await.unwrap().status() };
    assert_eq!(
        status(short.id()).await,
        QuotationStatus::Sent,
        "still valid"
    );
    clock.advance(Duration::days(3));
    crm.tick(tenant, 100).await.unwrap();
    assert_eq!(status(short.id()).await, QuotationStatus::Expired);
    assert_eq!(status(long.id()).await, QuotationStatus::Sent);
    let pending = crm
        .outbox()
        .list_outbox(tenant, OutboxStatus::Pending, &PageRequest::default())
        .await
        .unwrap();
    let told: Vec<_> = pending
        .items
        .iter()
        .filter(|m| m.rule == "expired")
        .map(|m| (m.recipient.user, m.payload.body.clone()))
        .collect();
    assert_eq!(told, [(Some(ana), "Forklifts".to_string())]);
    // Ticking again expires nothing more and tells nobody again.
    crm.tick(tenant, 100).await.unwrap();
    let again = crm
        .outbox()
        .list_outbox(tenant, OutboxStatus::Pending, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(again.items.len(), pending.items.len());
}
