//! Access requests on an SQLite store: everything held about a partner or one of its contacts, and nothing of
//! anyone else.

use crm_core::commerce::{CommerceStore, NewDocument};
use crm_core::conformance::commerce::Shop;
use crm_core::event::CommentTarget;
use crm_core::lead::NewLead;
use crm_core::partner::NewContact;
use crm_core::partner::PartnerPatch;
use crm_core::request::NewRequest;
use crm_core::store::Store;
use crm_io::{access_request, AccessSummary, IoError, Person};
use crm_storage_sqlite::SqliteStore;
use serde_json::Value;
use std::sync::Arc;

async fn request(
    shop: &Shop,
    commerce: &Arc<dyn CommerceStore>,
    person: &Person,
) -> (AccessSummary, Value, String) {
    let mut out = Vec::new();
    let c: &dyn CommerceStore = commerce.as_ref();
    let summary = access_request(&shop.w.crm, Some(c), shop.w.tenant, person, &mut out)
        .await
        .expect("access request");
    let text = String::from_utf8(out).expect("utf-8");
    (summary, serde_json::from_str(&text).expect("json"), text)
}

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a day")
}

#[tokio::test]
async fn an_access_request_holds_everything_about_the_person_and_nothing_else() {
    let sqlite = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let store: Arc<dyn Store> = sqlite.clone();
    let commerce: Arc<dyn CommerceStore> = sqlite.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (crm, ctx) = (&shop.w.crm, &shop.w.ctx);
    let ana = shop.customer("Ana Pop").await;
    let contacts = vec![
        NewContact {
            name: "Ana Pop".into(),
            email: Some("ana@pop.example".into()),
            host_ref: Some("P-1".into()),
            ..NewContact::default()
        },
        NewContact {
            name: "Ion Pop".into(),
            email: Some("ion@pop.example".into()),
            ..NewContact::default()
        },
    ];
    let patch = PartnerPatch {
        contacts: Some(contacts),
        ..PartnerPatch::default()
    };
    let ana = crm
        .update_partner(ctx, ana.id(), ana.version(), patch)
        .await
        .expect("contacts")
        .record;
    let ion = ana.contacts()[1].id;
    let mut deal = NewLead::for_partner(ana.id(), "Kitchen for Ana");
    deal.contact = Some(ana.contacts()[0].id);
    let lead = crm.enter_lead(ctx, deal).await.expect("lead").record;
    let other_lead = crm
        .enter_lead(ctx, NewLead::for_partner(ana.id(), "Ion's desk"))
        .await
        .expect("lead")
        .record;
    let req = crm
        .open_request(
            ctx,
            NewRequest::on_lead(lead.id(), "Measure the kitchen", shop.w.agent),
        )
        .await;
    let req = req.expect("request").record;
    crm.comment(
        ctx,
        CommentTarget::Request(req.id()),
        "Ana prefers mornings",
    )
    .await
    .expect("comment");
    let line = vec![shop.line(0, "1", "100", "60")];
    shop.record(NewDocument::invoice(
        "F-1",
        ana.id(),
        day(2026, 1, 10),
        "RON",
        line.clone(),
    ))
    .await;
    // Someone else, in the same tenant: none of it may appear.
    let globex = shop.customer("Globex SA").await;
    crm.enter_lead(ctx, NewLead::for_partner(globex.id(), "Globex secret deal"))
        .await
        .expect("lead");
    shop.record(NewDocument::invoice(
        "F-2",
        globex.id(),
        day(2026, 1, 11),
        "RON",
        line,
    ))
    .await;

    let (summary, doc, text) = request(&shop, &commerce, &Person::Partner(ana.id())).await;
    assert_eq!(doc["subject"]["partner"]["name"], "Ana Pop");
    let count = |name: &str| {
        summary
            .sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    };
    assert_eq!(count("leads"), Some(2));
    assert_eq!(count("requests"), Some(1));
    assert_eq!(count("comments"), Some(1));
    assert_eq!(count("documents"), Some(1));
    assert!(count("activity").is_some_and(|n| n >= 4), "{summary:?}");
    assert_eq!(doc["documents"][0]["number"], "F-1");
    assert!(text.contains("Ana prefers mornings") && text.contains("ion@pop.example"));
    assert!(
        !text.contains("Globex") && !text.contains("F-2"),
        "another partner's data leaked"
    );
    // One contact: its own record and lead, not the other contact's nor the partner's other leads.
    let (_, doc, text) = request(&shop, &commerce, &Person::ContactRef("P-1".into())).await;
    assert_eq!(doc["subject"]["contact"]["email"], "ana@pop.example");
    assert_eq!(doc["subject"]["partner"]["name"], "Ana Pop");
    assert_eq!(doc["leads"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["leads"][0]["title"], "Kitchen for Ana");
    assert!(!text.contains(&other_lead.id().to_string()));
    assert!(
        !doc["subject"].to_string().contains("Ion Pop"),
        "the other contact is not the subject"
    );
    let (_, doc, _) = request(&shop, &commerce, &Person::Contact(ana.id(), ion)).await;
    assert_eq!(doc["subject"]["contact"]["name"], "Ion Pop");
    assert_eq!(doc["leads"].as_array().map(Vec::len), Some(0));
    // A lead merged into another is still held about the person: the access request lists it.
    let plan = crm
        .plan_lead_merge(
            shop.w.tenant,
            lead.id(),
            &[other_lead.id()],
            &Default::default(),
        )
        .await
        .expect("plan");
    crm.merge_leads(ctx, &plan).await.expect("merge");
    let (summary, _, text) = request(&shop, &commerce, &Person::Partner(ana.id())).await;
    let leads = summary.sections.iter().find(|(n, _)| *n == "leads");
    assert_eq!(leads.map(|(_, c)| *c), Some(2), "{summary:?}");
    assert!(text.contains("Ion's desk"));
    // Unknown people, a contact named under another partner, and another tenant: not found, nothing written.
    let cases = [
        (shop.w.tenant, Person::ContactRef("P-404".into())),
        (shop.w.tenant, Person::Contact(globex.id(), ion)),
        (crm_core::id::TenantId::new(), Person::Partner(ana.id())),
    ];
    let mut out = Vec::new();
    for (tenant, person) in &cases {
        let e = access_request(crm, None, *tenant, person, &mut out).await;
        let not_found = matches!(e, Err(IoError::Engine(crm_core::Error::NotFound { .. })));
        assert!(not_found, "{person:?}: {e:?}");
    }
    assert!(out.is_empty(), "nothing is written for a person not found");
}

#[tokio::test]
async fn after_an_erasure_the_access_request_and_the_activity_export_hold_only_the_pseudonym() {
    let sqlite = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let store: Arc<dyn Store> = sqlite.clone();
    let commerce: Arc<dyn CommerceStore> = sqlite.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (crm, ctx) = (&shop.w.crm, &shop.w.ctx);
    let mut new = crm_core::partner::NewPartner::person("Sorina Bălănescu");
    new.contacts.push(NewContact {
        name: "Sorina Bălănescu".into(),
        email: Some("sorina@balanescu.example".into()),
        phone: Some("+40 744 555 666".into()),
        ..NewContact::default()
    });
    let sorina = crm.create_partner(ctx, new).await.expect("person").record;
    let deal = NewLead::for_partner(sorina.id(), "Garden for Sorina Bălănescu");
    crm.enter_lead(ctx, deal).await.expect("lead");
    crm.comment(
        ctx,
        CommentTarget::Partner(sorina.id()),
        "Sorina Bălănescu called from +40 744 555 666",
    )
    .await
    .expect("comment");
    let (_, _, before) = request(&shop, &commerce, &Person::Partner(sorina.id())).await;
    assert!(before.contains("sorina@balanescu.example"));

    let erased = shop
        .cs
        .erase_partner(ctx, sorina.id())
        .await
        .expect("erase");
    let (_, json, after) = request(&shop, &commerce, &Person::Partner(sorina.id())).await;
    for gone in [
        "Sorina",
        "Bălănescu",
        "sorina@balanescu.example",
        "744 555 666",
        "+40744555666",
    ] {
        assert!(!after.contains(gone), "{gone} in {after}");
    }
    assert!(after.contains(&erased.pseudonym), "{json}");
    let mut out = Vec::new();
    crm_io::export(
        crm,
        shop.w.tenant,
        &crm_io::Export::Activities { after: 0 },
        crm_io::Format::JsonLines,
        &mut out,
        |_| {},
    )
    .await
    .expect("activity export");
    let activities = String::from_utf8(out).expect("utf-8");
    assert!(activities.contains("erased"), "{activities}");
    assert!(!activities.contains("Sorina"), "{activities}");
}
