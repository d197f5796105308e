//! Data-quality checks: the host's references on leads and contacts (partners' are in `checks`).

use super::checks::World;
use crate::error::Error;
use crate::lead::{LeadCommand, LeadPatch, NewLead};
use crate::partner::{NewContact, NewPartner, Partner, PartnerPatch};
use crate::store::{ChangeSet, Store, StoreExt, Write};
use crate::time::Clock;
use std::sync::Arc;

/// A contact named `name` with the host's code `code`.
fn person(name: &str, code: Option<&str>) -> NewContact {
    NewContact {
        name: name.into(),
        host_ref: code.map(Into::into),
        ..NewContact::default()
    }
}

/// A company `name` with these contacts.
async fn company(w: &World, name: &str, contacts: Vec<NewContact>) -> Result<Partner, Error> {
    let mut new = NewPartner::company(name);
    new.contacts = contacts;
    w.crm.create_partner(&w.ctx, new).await.map(|e| e.record)
}

/// Whether `e` is the store's unique-index refusal of an `entity`.
fn refused_by_index(e: &Error, entity: &str) -> bool {
    matches!(e, Error::AlreadyExists { entity: got, .. } if *got == entity)
}

/// Commits `racer` straight to the store, past the service's check of its codes: the store's unique index refuses
/// it as an existing `entity`, and nothing of it is written.
pub(super) async fn race_partner(
    w: &World,
    store: &Arc<dyn Store>,
    racer: NewPartner,
    entity: &str,
) {
    let racer = racer.build(w.tenant, w.clock.now()).expect("valid");
    let keys = crate::dedupe::keys_of(&racer);
    let insert = Write::InsertPartner {
        partner: racer.clone(),
        keys,
    };
    let raced = store
        .commit(w.tenant, ChangeSet::from_iter([insert]))
        .await
        .unwrap_err();
    assert!(refused_by_index(&raced, entity), "{raced:?}");
    let read = store.partner(w.tenant, racer.id).await;
    assert!(matches!(read, Err(Error::NotFound { .. })), "{read:?}");
}

/// Host references on leads and contacts: found by the code, unique in the tenant (refused by field in the
/// service, by the store's unique index when writes race), free in another tenant, which does not see them;
/// changing or clearing a code moves the lookup; a contact keeps its id when the code names it though its name
/// changed; two contacts of one partner may not share a code.
pub async fn check_lead_and_contact_host_refs(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.tenant;
    // Contacts.
    let acme = company(
        &w,
        "Acme SRL",
        vec![person("Ana Pop", Some(" P-1 ")), person("Ion", None)],
    )
    .await
    .expect("acme");
    let (found, ana) = w.crm.contact_by_ref(t, "P-1").await.expect("by ref");
    assert_eq!((found.id, ana.name.as_str()), (acme.id, "Ana Pop"));
    assert_eq!(ana.host_ref.as_deref(), Some("P-1"), "trimmed");
    let taken = company(&w, "Globex", vec![person("Ana", Some("P-1"))])
        .await
        .unwrap_err();
    assert_eq!(taken.field(), Some("contacts[0].host_ref"), "{taken:?}");
    let twice = company(
        &w,
        "Twice",
        vec![person("A", Some("P-9")), person("B", Some("P-9"))],
    )
    .await
    .unwrap_err();
    assert_eq!(twice.field(), Some("contacts[1].host_ref"), "{twice:?}");
    assert!(matches!(
        w.crm.contact_by_ref(t, "P-9").await,
        Err(Error::NotFound { .. })
    ));
    // Racing past the service's check, the store's unique index refuses the second partner.
    let mut racer = NewPartner::company("Racer SRL");
    racer.contacts.push(person("R", Some("P-1")));
    race_partner(&w, store, racer, "contact").await;
    // Renamed but named by the code: the same contact; the code moves with a change; a removed contact frees it.
    let renamed = PartnerPatch {
        contacts: Some(vec![
            person("Ion", None),
            person("Ana Popescu", Some("P-1")),
        ]),
        ..PartnerPatch::default()
    };
    let acme = w
        .crm
        .update_partner(&w.ctx, acme.id, acme.version, renamed)
        .await
        .expect("renamed")
        .record;
    let (_, again) = w.crm.contact_by_ref(t, "P-1").await.expect("still");
    assert_eq!((again.id, again.name.as_str()), (ana.id, "Ana Popescu"));
    let moved = PartnerPatch {
        contacts: Some(vec![person("Ana Popescu", Some("P-2"))]),
        ..PartnerPatch::default()
    };
    let acme = w
        .crm
        .update_partner(&w.ctx, acme.id, acme.version, moved)
        .await
        .expect("moved")
        .record;
    assert!(matches!(
        w.crm.contact_by_ref(t, "P-1").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        w.crm.contact_by_ref(t, "P-2").await.expect("new code").1.id,
        ana.id
    );
    let globex = company(&w, "Globex", vec![person("Ana", Some("P-1"))])
        .await
        .expect("P-1 is free again");
    let removed = PartnerPatch {
        contacts: Some(Vec::new()),
        ..PartnerPatch::default()
    };
    w.crm
        .update_partner(&w.ctx, acme.id, acme.version, removed)
        .await
        .expect("removed");
    assert!(matches!(
        w.crm.contact_by_ref(t, "P-2").await,
        Err(Error::NotFound { .. })
    ));
    // Leads.
    let deal = |code: &str| NewLead::for_partner(globex.id, "Deal").with_host_ref(code);
    let lead = w
        .crm
        .enter_lead(&w.ctx, deal("OPP-1"))
        .await
        .expect("lead")
        .record;
    assert_eq!(w.crm.lead_by_ref(t, "OPP-1").await.expect("by ref"), lead);
    let dup = w.crm.enter_lead(&w.ctx, deal("OPP-1")).await.unwrap_err();
    assert_eq!(dup.field(), Some("host_ref"), "{dup:?}");
    let pipeline = w.pipeline.clone();
    let (racer, _) = deal("OPP-1")
        .build(t, globex.id, &pipeline, w.clock.now())
        .expect("valid");
    let raced = store
        .commit(t, ChangeSet::from_iter([Write::InsertLead(racer.clone())]))
        .await
        .unwrap_err();
    assert!(
        refused_by_index(&raced, "lead") || refused_by_index(&raced, "record"),
        "{raced:?}"
    );
    assert!(matches!(
        store.lead(t, racer.id).await,
        Err(Error::NotFound { .. })
    ));
    let second = w
        .crm
        .enter_lead(&w.ctx, deal("OPP-2"))
        .await
        .expect("second")
        .record;
    let recode = |code: Option<&str>| {
        LeadCommand::Update(LeadPatch {
            host_ref: Some(code.map(Into::into)),
            ..LeadPatch::default()
        })
    };
    let clash = w
        .crm
        .transition(&w.ctx, second.id, second.version, recode(Some("OPP-1")))
        .await
        .unwrap_err();
    assert_eq!(clash.field(), Some("host_ref"), "{clash:?}");
    let lead = w
        .crm
        .transition(&w.ctx, lead.id, lead.version, recode(Some("OPP-3")))
        .await
        .expect("recoded")
        .record;
    assert!(matches!(
        w.crm.lead_by_ref(t, "OPP-1").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        w.crm.lead_by_ref(t, "OPP-3").await.expect("new code").id,
        lead.id
    );
    let lead = w
        .crm
        .transition(&w.ctx, lead.id, lead.version, recode(None))
        .await
        .expect("cleared")
        .record;
    assert_eq!(lead.host_ref, None);
    assert!(matches!(
        w.crm.lead_by_ref(t, "OPP-3").await,
        Err(Error::NotFound { .. })
    ));
    // Another tenant: the codes are free there and ours are not seen.
    let other = World::new(store).await;
    assert!(matches!(
        other.crm.lead_by_ref(other.tenant, "OPP-2").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        other.crm.contact_by_ref(other.tenant, "P-1").await,
        Err(Error::NotFound { .. })
    ));
    let theirs = company(&other, "Theirs", vec![person("X", Some("P-1"))])
        .await
        .expect("free there");
    let their_deal = NewLead::for_partner(theirs.id, "Deal").with_host_ref("OPP-2");
    other
        .crm
        .enter_lead(&other.ctx, their_deal)
        .await
        .expect("free there");
    assert_eq!(
        w.crm.contact_by_ref(t, "P-1").await.expect("ours").0.id,
        globex.id
    );
    assert_eq!(
        w.crm.lead_by_ref(t, "OPP-2").await.expect("ours").id,
        second.id
    );
    // Bad codes, by field.
    let long = "x".repeat(crate::partner::MAX_HOST_REF + 1);
    for bad in [long.as_str(), "a\u{0}b"] {
        let e = w.crm.enter_lead(&w.ctx, deal(bad)).await.unwrap_err();
        assert_eq!(e.field(), Some("host_ref"), "{bad:?}");
        let e = company(&w, "Bad", vec![person("B", Some(bad))])
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("contacts[0].host_ref"), "{bad:?}");
        assert_eq!(
            w.crm.lead_by_ref(t, bad).await.unwrap_err().field(),
            Some("host_ref")
        );
        assert_eq!(
            w.crm.contact_by_ref(t, bad).await.unwrap_err().field(),
            Some("host_ref")
        );
    }
}
