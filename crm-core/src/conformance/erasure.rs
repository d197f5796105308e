//! Erasing a person on a backend: a natural person with a record of every kind, and a company's contact. After the
//! erasure no read, timeline, feed, outbox or record of theirs holds their name, e-mail address, phone number,
//! street or tax id; amounts, numbers and balances are unchanged; a same-named contact of another partner is left
//! alone; the bad inputs are refused with nothing written.

use super::commerce::Shop;
use crate::commerce::{Allocation, CommerceStore, CommerceStoreExt, NewDocument};
use crate::consent::NewConsent;
use crate::event::{CommentTarget, EventKind};
use crate::kinds::PaymentDirection;
use crate::lead::NewLead;
use crate::merge::{Link, LinkKind};
use crate::outbox::{OutboxStatus, OutboxStore};
use crate::page::PageRequest;
use crate::partner::{LocationKind, NewContact, NewLocation, NewPartner, Partner};
use crate::request::NewRequest;
use crate::sales::{AttachedTo, Attendee, Participant, Reply};
use crate::store::{Backend, Key, Record, Store, StoreExt, TimelineOf};
use crate::Error;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The person's values that must be gone.
pub const PERSON: [&str; 6] = [
    "Ilinca Vasilescu-Teodorescu",
    "ilinca.vt@posta.example",
    "+40 722 123 456",
    "+40722123456",
    "Strada Lalelelor 17",
    "2850101123456",
];

/// The company contact's values that must be gone.
pub const CONTACT: [&str; 4] = [
    "Radu Constantinescu-Bran",
    "radu.cb@acme.example",
    "+40 733 987 654",
    "+40733987654",
];

fn contact(name: &str, email: &str, phone: Option<&str>) -> NewContact {
    NewContact {
        name: name.into(),
        email: Some(email.into()),
        phone: phone.map(str::to_string),
        ..NewContact::default()
    }
}

/// Every value of `values` found in `text`, without case.
pub fn found<'a>(text: &str, values: &[&'a str]) -> Vec<&'a str> {
    let text = text.to_lowercase();
    values
        .iter()
        .filter(|v| text.contains(&v.to_lowercase()))
        .copied()
        .collect()
}

/// Everything the engine's reads give about `partner` and the tenant's outbox, as one JSON text.
async fn everything(backend: &Arc<dyn Backend>, shop: &Shop, partner: &Partner) -> String {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let outbox: Arc<dyn OutboxStore> = backend.clone();
    let (crm, t) = (&shop.w.crm, shop.w.tenant);
    let page = PageRequest {
        limit: 500,
        ..PageRequest::default()
    };
    let mut out = vec![
        serde_json::to_value(crm.partner(t, partner.id).await.expect("partner")).expect("json"),
    ];
    let json = |x: &dyn erased_json::Json| x.json();
    let links = store
        .fetch(t, &Key::PartnerLinks(partner.id))
        .await
        .expect("links");
    let mut leads = Vec::new();
    let mut requests = Vec::new();
    for r in links {
        let Record::Link(Link { kind, id, .. }) = r else {
            panic!("a link read gave {r:?}")
        };
        let v = match kind {
            LinkKind::Lead => {
                leads.push(crate::id::LeadId::from_uuid(id));
                json(
                    &store
                        .lead(t, crate::id::LeadId::from_uuid(id))
                        .await
                        .expect("lead"),
                )
            }
            LinkKind::Request => {
                requests.push(crate::id::RequestId::from_uuid(id));
                json(
                    &store
                        .request(t, crate::id::RequestId::from_uuid(id))
                        .await
                        .expect("request"),
                )
            }
            LinkKind::Document => json(
                &commerce
                    .document(t, crate::id::DocumentId::from_uuid(id))
                    .await
                    .expect("document"),
            ),
            LinkKind::Quotation => json(
                &commerce
                    .quotation(t, crate::id::QuotationId::from_uuid(id))
                    .await
                    .expect("quotation"),
            ),
            LinkKind::Contract => json(
                &commerce
                    .contract(t, crate::id::ContractId::from_uuid(id))
                    .await
                    .expect("contract"),
            ),
            LinkKind::Meeting => json(
                &commerce
                    .meeting(t, crate::id::MeetingId::from_uuid(id))
                    .await
                    .expect("meeting"),
            ),
            LinkKind::Attachment => json(
                &commerce
                    .attachment(t, crate::id::AttachmentId::from_uuid(id))
                    .await
                    .expect("attachment"),
            ),
            LinkKind::Representative => json(
                &commerce
                    .representative(t, crate::id::RepresentativeId::from_uuid(id))
                    .await
                    .expect("representative"),
            ),
            LinkKind::CampaignTarget => json(
                &commerce
                    .campaign_targets(t, crate::id::CampaignId::from_uuid(id), &page)
                    .await
                    .expect("targets")
                    .items,
            ),
            _ => serde_json::Value::Null,
        };
        out.push(v);
    }
    let mut timelines = vec![TimelineOf::Partner(partner.id)];
    timelines.extend(leads.iter().map(|l| TimelineOf::Lead(*l)));
    timelines.extend(requests.iter().map(|r| TimelineOf::Request(*r)));
    for of in timelines {
        out.push(json(
            &crm.timeline(t, of, &page).await.expect("timeline").items,
        ));
    }
    let mut targets = vec![CommentTarget::Partner(partner.id)];
    targets.extend(leads.iter().map(|l| CommentTarget::Lead(*l)));
    targets.extend(requests.iter().map(|r| CommentTarget::Request(*r)));
    for target in targets {
        out.push(json(
            &store
                .comments(t, target, &page)
                .await
                .expect("comments")
                .items,
        ));
    }
    out.push(json(&crm.events_since(t, 0, 10_000).await.expect("feed")));
    for status in [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
    ] {
        out.push(json(
            &outbox
                .list_outbox(t, status, &page)
                .await
                .expect("outbox")
                .items,
        ));
    }
    serde_json::Value::Array(out).to_string()
}

/// Serialises what the reads return.
mod erased_json {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("json")
        }
    }
}

/// Builds a natural person with a record of every kind and a company with a contact, erases both people after the
/// bad inputs, checks every read; returns the tenant and the values no storage of it may hold any more (all but the
/// contact's name, which a namesake at another partner keeps), for the adapters' tests to search their tables and
/// files for.
pub async fn erase_everywhere(
    backend: &Arc<dyn Backend>,
) -> (crate::id::TenantId, Vec<&'static str>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (crm, cs, ctx, t) = (&shop.w.crm, &shop.cs, &shop.w.ctx, shop.w.tenant);
    let [name, email, phone, _, street, tax] = PERSON;

    let mut new = NewPartner::person(name);
    new.tax_id = Some(tax.into());
    new.locations.push(NewLocation {
        kind: LocationKind::Billing,
        street: Some(street.into()),
        city: Some("Cluj-Napoca".into()),
        region: Some("CJ".into()),
        postal_code: Some("400001".into()),
        country: "RO".into(),
    });
    new.contacts.push(contact(name, email, Some(phone)));
    let person = crm.create_partner(ctx, new).await.expect("person").record;
    let me = person.contacts()[0].id;
    let [radu, radu_email, radu_phone, _] = CONTACT;
    let mut acme = NewPartner::company("Acme Distribuție SRL");
    acme.contacts
        .push(contact(radu, radu_email, Some(radu_phone)));
    acme.contacts
        .push(contact("Elena Dobrescu", "elena@acme.example", None));
    let acme = crm.create_partner(ctx, acme).await.expect("acme").record;
    let radu_id = acme.contacts()[0].id;
    // A namesake at another partner: their data is theirs, and stays.
    let mut other = NewPartner::company("Alt Client SRL");
    other.contacts.push(contact(radu, "radu@alt.example", None));
    let other = crm.create_partner(ctx, other).await.expect("other").record;

    // The person's records: a lead (and its twin merged into it: the journal holds both), a request, comments
    // naming them, a consent, an invoice, a quotation and its contract, a meeting they attend (its invitation in the
    // outbox), an attachment, a portal representative, and a duplicate merged into them.
    let lead = crm
        .enter_lead(
            ctx,
            NewLead::for_partner(person.id, format!("Offer for {name}")),
        )
        .await
        .expect("lead")
        .record;
    let mut twin = NewLead::for_partner(person.id, format!("{name}'s offer"));
    twin.description = Some(format!("Call {phone} or write to {email}"));
    let twin = crm.enter_lead(ctx, twin).await.expect("twin").record;
    let plan = crm
        .plan_lead_merge(t, lead.id, &[twin.id], &Default::default())
        .await
        .expect("lead merge plan");
    crm.merge_leads(ctx, &plan).await.expect("lead merge");
    let lead = crm.lead(t, lead.id).await.expect("the survivor");
    let request = crm
        .open_request(
            ctx,
            NewRequest {
                partner: Some(person.id),
                ..NewRequest::on_lead(
                    lead.id,
                    &format!("Call {name} back on {phone}"),
                    shop.w.agent,
                )
            },
        )
        .await
        .expect("request")
        .record;
    crm.comment(
        ctx,
        CommentTarget::Partner(person.id),
        &format!("Spoke with {name}, {email}"),
    )
    .await
    .expect("comment");
    crm.comment(
        ctx,
        CommentTarget::Request(request.id),
        &format!("{name} asked for a call"),
    )
    .await
    .expect("comment");
    crm.comment(
        ctx,
        CommentTarget::Partner(acme.id),
        &format!("{radu} ({radu_email}) wants a discount"),
    )
    .await
    .expect("comment");
    let consent = NewConsent {
        channel: "email".into(),
        purpose: "marketing".into(),
        granted: true,
        source: "web form".into(),
        proof: Some(format!("signed by {name}")),
    };
    let person = crm
        .record_consent(
            ctx,
            person.id,
            crm.partner(t, person.id).await.expect("p").version,
            me,
            consent.clone(),
        )
        .await
        .expect("consent")
        .record;
    crm.record_consent(ctx, acme.id, acme.version, radu_id, consent)
        .await
        .expect("consent");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("a day");
    let invoice = shop
        .record(
            NewDocument::invoice(
                "F-E1",
                person.id,
                day,
                "RON",
                vec![shop.line(0, "2", "50", "30")],
            )
            .due(day),
        )
        .await;
    let quotation = cs
        .create_quotation(ctx, super::sales::quotation_for(&lead, "100"))
        .await
        .expect("quotation");
    super::sales::contract_from(cs, ctx, &quotation).await;
    let mut meeting = super::sales::meeting_for(&shop.w, &lead);
    meeting.partner = Some(person.id);
    meeting.attendees.push(Attendee {
        who: Participant::Contact {
            partner: person.id,
            contact: me,
        },
        name: name.into(),
        email: email.into(),
        reply: Reply::NeedsAction,
    });
    cs.schedule_meeting(ctx, meeting).await.expect("meeting");
    let file = cs
        .attach(
            ctx,
            crate::sales::NewAttachment {
                target: AttachedTo::Partner(person.id),
                name: format!("{name} ID.txt"),
                shared_with_partner: true,
            },
            super::model::stream_of(&b"identity card"[..]),
        )
        .await
        .expect("attachment");
    let portal = crate::service::PortalService::new(cs.clone());
    portal
        .invite(ctx, person.id, me, crate::portal::Rights::all())
        .await
        .expect("representative");
    let twin = crm
        .create_partner(ctx, NewPartner::person(name).with_host_ref("DUP-1"))
        .await
        .expect("twin")
        .record;
    let plan = crm
        .plan_partner_merge(t, person.id, &[twin.id], &BTreeMap::new())
        .await
        .expect("plan");
    crm.merge_partners(ctx, &plan).await.expect("merge");

    let person = crm.partner(t, person.id).await.expect("person");
    let seen = everything(backend, &shop, &person).await;
    assert_eq!(
        found(&seen, &PERSON[..3]),
        PERSON[..3].to_vec(),
        "the reads hold the person before"
    );

    // Bad input, nothing written.
    let version = |p: &Partner| p.version;
    let err = cs.erase_partner(ctx, acme.id).await.expect_err("a company");
    assert_eq!(err.field(), Some("partner"), "{err:?}");
    let err = cs
        .erase_partner(ctx, person.id)
        .await
        .expect_err("open items");
    assert!(
        err.field() == Some("partner") && err.to_string().contains("open item"),
        "{err:?}"
    );
    let err = crm
        .erase_contact(ctx, acme.id, crate::id::ContactId::new())
        .await
        .expect_err("no such contact");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let stranger = crate::actor::Context::user(crate::id::TenantId::new(), shop.w.agent);
    let err = cs
        .erase_partner(&stranger, person.id)
        .await
        .expect_err("another tenant's");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let unchanged = crm.partner(t, person.id).await.expect("person");
    assert_eq!(
        (unchanged.name(), version(&unchanged)),
        (name, version(&person))
    );

    // Paid, the person can go.
    let mut pay = NewDocument::payment(
        "P-E1",
        person.id,
        day,
        "RON",
        PaymentDirection::Received,
        invoice.total(),
    );
    pay.allocations = vec![Allocation {
        number: "F-E1".into(),
        amount: invoice.total(),
    }];
    shop.record(pay).await;
    let balances = cs.balances(t, person.id, None).await.expect("balances");
    let erased = cs
        .erase_partner(ctx, person.id)
        .await
        .expect("erase the person");
    let err = cs.erase_partner(ctx, person.id).await.expect_err("twice");
    assert_eq!(err.field(), Some("partner"), "{err:?}");
    let gone = crm
        .erase_contact(ctx, acme.id, radu_id)
        .await
        .expect("erase the contact");
    assert_eq!(gone.partner.contacts()[0].name, gone.pseudonym);

    // Nothing the engine reads back names them; the log kept its entries, erased.
    let after = crm.partner(t, person.id).await.expect("person");
    assert_eq!(after.name(), erased.pseudonym);
    assert_eq!(after.tax_id(), None);
    assert_eq!(after.locations()[0].street, None);
    assert_eq!(after.locations()[0].city.as_deref(), Some("Cluj-Napoca"));
    let seen = everything(backend, &shop, &after).await;
    assert_eq!(
        found(&seen, &PERSON),
        Vec::<&str>::new(),
        "after erasure: {seen}"
    );
    assert_eq!(
        found(&seen, &CONTACT),
        Vec::<&str>::new(),
        "after erasure: {seen}"
    );
    let acme_now = crm.partner(t, acme.id).await.expect("acme");
    let seen_acme = everything(backend, &shop, &acme_now).await;
    assert_eq!(
        found(&seen_acme, &CONTACT),
        Vec::<&str>::new(),
        "{seen_acme}"
    );
    assert!(
        seen_acme.contains("elena@acme.example"),
        "the colleague stays"
    );
    assert!(seen_acme.contains("Acme Distribuție SRL"));
    let log = crm
        .timeline(t, TimelineOf::Partner(person.id), &PageRequest::first(200))
        .await
        .expect("timeline");
    assert!(log
        .items
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Erased { kind } if kind == "partner_created")));
    assert!(log.items.iter().any(|e| matches!(&e.kind, EventKind::PersonErased { pseudonym, .. } if *pseudonym == erased.pseudonym)));
    assert!(!log
        .items
        .iter()
        .any(|e| matches!(e.kind, EventKind::Sealed { .. })));

    // The namesake elsewhere is untouched.
    let other_now = crm.partner(t, other.id).await.expect("other");
    assert_eq!(other_now.contacts()[0].name, radu);
    assert_eq!(
        other_now.contacts()[0].email.as_deref(),
        Some("radu@alt.example")
    );

    // The file is gone, bytes and all.
    assert!(
        cs.open_attachment(t, file.id()).await.is_err(),
        "the file is removed"
    );

    // Amounts, numbers and balances are the law's and the reports': unchanged.
    let kept = commerce.document(t, invoice.id()).await.expect("invoice");
    assert_eq!(
        (kept.number(), kept.total()),
        (invoice.number(), invoice.total())
    );
    assert_eq!(
        cs.balances(t, person.id, None).await.expect("balances"),
        balances
    );

    // Life goes on: a new event about the erased partner is sealed under a new key and reads back.
    crm.comment(ctx, CommentTarget::Partner(person.id), "closed the file")
        .await
        .expect("comment after");
    let log = crm
        .timeline(t, TimelineOf::Partner(person.id), &PageRequest::first(1))
        .await
        .expect("timeline");
    assert!(
        matches!(&log.items[0].kind, EventKind::CommentAdded { excerpt, .. } if excerpt == "closed the file"),
        "{:?}",
        log.items[0]
    );
    // The contact's name stays in the tenant: the namesake at another partner has it.
    let mut values = PERSON.to_vec();
    values.extend(&CONTACT[1..]);
    (t, values)
}

/// [`erase_everywhere`], as a conformance check.
pub async fn check_erasure(backend: &Arc<dyn Backend>) {
    erase_everywhere(backend).await;
    a_namesake_of_a_stage_is_not_a_subject_of_its_moves(backend).await;
}

/// A stage move names stages, not people: it is sealed under the partner's key only, so erasing a contact who is
/// called like the stage leaves the move readable (and the move's commit reads no contacts).
async fn a_namesake_of_a_stage_is_not_a_subject_of_its_moves(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let w = super::World::new(&store).await;
    let mut acme = NewPartner::company("Stage Namesake SRL");
    acme.contacts.push(NewContact {
        name: "Offer".into(),
        email: Some("offer@namesake.example".into()),
        ..NewContact::default()
    });
    let acme = w
        .crm
        .create_partner(&w.ctx, acme)
        .await
        .expect("partner")
        .record;
    let lead = w
        .crm
        .enter_lead(&w.ctx, NewLead::for_partner(acme.id, "Shelves"))
        .await
        .expect("lead")
        .record;
    let offer = w.pipeline.stage_named("Offer").expect("offer").id;
    w.crm
        .transition(
            &w.ctx,
            lead.id,
            lead.version,
            crate::lead::LeadCommand::MoveTo { stage: offer },
        )
        .await
        .expect("move");
    w.crm
        .erase_contact(&w.ctx, acme.id, acme.contacts[0].id)
        .await
        .expect("erase");
    let log = w
        .crm
        .timeline(w.tenant, TimelineOf::Lead(lead.id), &PageRequest::first(20))
        .await
        .expect("timeline");
    assert!(
        log.items.iter().any(
            |e| matches!(&e.kind, EventKind::LeadStageMoved { to_name, .. } if to_name == "Offer")
        ),
        "the move still reads: {:?}",
        log.items.iter().map(|e| e.kind.name()).collect::<Vec<_>>()
    );
}
