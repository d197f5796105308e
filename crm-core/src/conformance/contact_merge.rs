//! Merging contacts of one partner on a backend: the fields chosen with their reasons, the lead, meeting and
//! representative that named the merged contact moved to the survivor and back on undo, the merged id resolving
//! to the survivor, and the bad inputs refused with nothing written.

use super::commerce::Shop;
use crate::commerce::{CommerceStore, CommerceStoreExt};
use crate::event::EventKind;
use crate::lead::{LeadPatch, NewLead};
use crate::merge::Reason;
use crate::page::PageRequest;
use crate::partner::{NewContact, NewPartner, Partner};
use crate::sales::{Attendee, Participant, Reply};
use crate::store::{Backend, Store, StoreExt, TimelineOf};
use crate::Error;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The contact a representative is.
async fn contact_of(
    commerce: &Arc<dyn CommerceStore>,
    t: crate::id::TenantId,
    rep: crate::id::RepresentativeId,
) -> crate::id::ContactId {
    commerce
        .representative(t, rep)
        .await
        .expect("rep")
        .contact()
}

/// Merging a contact entered twice, with a lead, a meeting and a representative, then undoing it; the bad inputs.
pub async fn check_contact_merge(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (crm, cs, ctx, t) = (&shop.w.crm, &shop.cs, &shop.w.ctx, shop.w.tenant);
    let contact =
        |name: &str, email: Option<&str>, phone: Option<&str>, role: Option<&str>| NewContact {
            name: name.into(),
            email: email.map(str::to_string),
            phone: phone.map(str::to_string),
            role: role.map(str::to_string),
            ..NewContact::default()
        };
    let mut acme = NewPartner::company("Acme Distribuție SRL");
    acme.contacts
        .push(contact("Ana Pop", Some("ana@acme.example"), None, None));
    acme.contacts.push(contact(
        "Ana Pop",
        Some("ana.pop@home.example"),
        Some("+40 722 000 111"),
        Some("buyer"),
    ));
    acme.contacts.push(contact(
        "Bogdan Ene",
        Some("bogdan@acme.example"),
        None,
        None,
    ));
    let acme = crm.create_partner(ctx, acme).await.expect("acme").record;
    let (ana, twin, bogdan) = (
        acme.contacts()[0].id,
        acme.contacts()[1].id,
        acme.contacts()[2].id,
    );
    let mut deal = NewLead::for_partner(acme.id(), "Shelving");
    deal.contact = Some(twin);
    let lead = crm.enter_lead(ctx, deal).await.expect("lead").record;
    let mut meeting = super::sales::meeting_for(&shop.w, &lead);
    meeting.partner = Some(acme.id());
    for (who, name, email) in [
        (twin, "Ana Pop", "ana.pop@home.example"),
        (bogdan, "Bogdan Ene", "bogdan@acme.example"),
    ] {
        meeting.attendees.push(Attendee {
            who: Participant::Contact {
                partner: acme.id(),
                contact: who,
            },
            name: name.into(),
            email: email.into(),
            reply: Reply::NeedsAction,
        });
    }
    let meeting = cs.schedule_meeting(ctx, meeting).await.expect("meeting");
    let portal = crate::service::PortalService::new(cs.clone());
    let invited = portal
        .invite(ctx, acme.id(), twin, crate::portal::Rights::all())
        .await
        .expect("representative");
    let rep = invited.representative.id();
    let acme = crm.partner(t, acme.id()).await.expect("acme");

    // The plan: each field with its source and reason, the three records that move.
    let none = BTreeMap::new();
    let plan = cs
        .plan_contact_merge(t, acme.id(), ana, &[twin], &none)
        .await
        .expect("plan");
    let reason = |f: &str| {
        let c = plan.fields.iter().find(|c| c.field == f).expect("field");
        (c.from, c.reason)
    };
    assert_eq!(reason("name"), (ana, Reason::Same));
    assert_eq!(reason("email"), (ana, Reason::Kept));
    assert_eq!(reason("phone"), (twin, Reason::OnlyValue));
    assert_eq!(reason("role"), (twin, Reason::OnlyValue));
    assert_eq!(plan.moves.len(), 3, "{:?}", plan.moves);

    let picks = BTreeMap::from([("email".to_string(), twin)]);
    let picked = cs
        .plan_contact_merge(t, acme.id(), ana, &[twin], &picks)
        .await
        .expect("picked");
    assert_eq!(
        picked.contact.email.as_deref(),
        Some("ana.pop@home.example")
    );
    assert!(picked
        .fields
        .iter()
        .any(|c| c.field == "email" && c.reason == Reason::Picked && c.from == twin));

    // Bad input, nothing written.
    let stranger = crate::id::ContactId::new();
    let unknown = BTreeMap::from([("shoe_size".to_string(), ana)]);
    let outsider = BTreeMap::from([("email".to_string(), bogdan)]);
    let cases: [(
        &[crate::id::ContactId],
        &BTreeMap<String, crate::id::ContactId>,
        &str,
    ); 5] = [
        (&[ana], &none, "merged[0]"),
        (&[], &none, "merged"),
        (&[stranger], &none, "merged[0]"),
        (&[twin], &unknown, "picks"),
        (&[twin], &outsider, "picks.email"),
    ];
    for (merged, picks, field) in cases {
        let err = cs
            .plan_contact_merge(t, acme.id(), ana, merged, picks)
            .await
            .expect_err("refused");
        assert_eq!(err.field(), Some(field), "{err:?}");
    }
    let other = crate::actor::Context::user(crate::id::TenantId::new(), shop.w.agent);
    assert!(matches!(
        cs.merge_contacts(&other, &plan).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        cs.plan_contact_merge(other.tenant, acme.id(), ana, &[twin], &none)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        crm.partner(t, acme.id()).await.expect("acme"),
        acme,
        "nothing written"
    );

    // The merge.
    let merged = cs.merge_contacts(ctx, &plan).await.expect("merge").record;
    let survivor = merged.contact(ana).expect("survivor").clone();
    assert_eq!(merged.contacts().len(), 2);
    assert_eq!(
        (
            survivor.email.as_deref(),
            survivor.phone.as_deref(),
            survivor.role.as_deref()
        ),
        (
            Some("ana@acme.example"),
            Some("+40 722 000 111"),
            Some("buyer")
        )
    );
    assert_eq!(
        merged.contact(twin).map(|c| c.id),
        Some(ana),
        "the merged id finds the survivor"
    );
    assert_eq!(crm.partner(t, acme.id()).await.expect("acme"), merged);
    assert_eq!(
        store.lead(t, lead.id).await.expect("lead").contact,
        Some(ana)
    );
    let m = commerce.meeting(t, meeting.id()).await.expect("meeting");
    let who: Vec<_> = m.attendees().iter().map(|a| a.who).collect();
    assert!(
        who.contains(&Participant::Contact {
            partner: acme.id(),
            contact: ana
        }),
        "{who:?}"
    );
    assert!(who.contains(&Participant::Contact {
        partner: acme.id(),
        contact: bogdan
    }));
    assert_eq!(contact_of(&commerce, t, rep).await, ana);
    let log = crm
        .timeline(t, TimelineOf::Partner(acme.id()), &PageRequest::first(20))
        .await
        .expect("timeline");
    assert!(
        matches!(&log.items[0].kind, EventKind::ContactsMerged { survivor, moved: 3, .. } if *survivor == ana)
    );
    let journal = merged.contact_merges()[0].id;

    // A stale plan is refused.
    assert!(matches!(
        cs.merge_contacts(ctx, &plan).await,
        Err(Error::Conflict { .. })
    ));

    // Undo: everything back.
    let undone = cs
        .undo_contact_merge(ctx, acme.id(), journal)
        .await
        .expect("undo")
        .record;
    let mut back: Vec<_> = undone.contacts().to_vec();
    back.sort_by_key(|c| c.id);
    let mut was: Vec<_> = acme.contacts().to_vec();
    was.sort_by_key(|c| c.id);
    assert_eq!(back, was);
    assert_eq!(undone.contact(twin).map(|c| c.id), Some(twin));
    assert_eq!(
        store.lead(t, lead.id).await.expect("lead").contact,
        Some(twin)
    );
    assert_eq!(contact_of(&commerce, t, rep).await, twin);
    let m = commerce.meeting(t, meeting.id()).await.expect("meeting");
    assert_eq!(m.attendees(), meeting.attendees());
    let err = cs
        .undo_contact_merge(ctx, acme.id(), journal)
        .await
        .expect_err("twice");
    assert_eq!(err.field(), Some("merge"), "{err:?}");

    // Merged again, a moved record changes: the undo names it.
    let plan = cs
        .plan_contact_merge(t, acme.id(), ana, &[twin], &none)
        .await
        .expect("plan");
    let merged: Partner = cs.merge_contacts(ctx, &plan).await.expect("merge").record;
    let moved = store.lead(t, lead.id).await.expect("lead");
    let patch = LeadPatch {
        title: Some("Shelving, two floors".into()),
        ..LeadPatch::default()
    };
    crm.transition(
        ctx,
        lead.id,
        moved.version,
        crate::lead::LeadCommand::Update(patch),
    )
    .await
    .expect("edit");
    let journal = merged.contact_merges().last().expect("journal").id;
    match cs.undo_contact_merge(ctx, acme.id(), journal).await {
        Err(Error::Conflict {
            entity: "lead", id, ..
        }) => assert_eq!(id, lead.id.to_string()),
        other => panic!("the undo should name the changed lead: {other:?}"),
    }
    assert_eq!(
        crm.partner(t, acme.id()).await.expect("acme"),
        merged,
        "nothing written"
    );

    // Erasing the person by the merged contact's id erases the survivor, and the journal's snapshots of both.
    let erased = crm
        .erase_contact(ctx, acme.id(), twin)
        .await
        .expect("erase");
    assert_eq!(erased.person, *ana.as_uuid());
    let doc = serde_json::to_string(&crm.partner(t, acme.id()).await.expect("acme")).expect("json");
    for gone in [
        "ana@acme.example",
        "ana.pop@home.example",
        "+40 722 000 111",
        "Ana Pop",
    ] {
        assert!(!doc.contains(gone), "{gone} in {doc}");
    }
    assert!(doc.contains("bogdan@acme.example"), "the colleague stays");
}
