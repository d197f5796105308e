//! Merging partners on a backend: every kind of record a partner has moves to the survivor and back on undo, the
//! tombstone resolves to the survivor, and the bad inputs are refused with nothing written.

use super::commerce::Shop;
use crate::commerce::{
    Channel, CommerceStore, CommerceStoreExt, Criteria, LastSale, NewCampaign, NewDocument,
};
use crate::event::{CommentTarget, EventKind};
use crate::id::{
    AttachmentId, CampaignId, ContractId, DocumentId, LeadId, MeetingId, PartnerId, QuotationId,
    RepresentativeId, RequestId,
};
use crate::lead::NewLead;
use crate::merge::{Link, LinkKind};
use crate::page::PageRequest;
use crate::partner::{NewContact, NewPartner, Partner, PartnerPatch};
use crate::request::NewRequest;
use crate::sales::AttachedTo;
use crate::store::{Backend, Key, Record, Store, StoreExt, TimelineOf};
use crate::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Every partner: bought or never bought.
fn everyone() -> Criteria {
    let never = Criteria::LastSale {
        when: LastSale::Never,
    };
    Criteria::Or {
        any: vec![
            never.clone(),
            Criteria::Not {
                not: Box::new(never),
            },
        ],
    }
}

/// The records pointing at `p`, by (kind, id), with their versions.
async fn links(
    store: &Arc<dyn Store>,
    shop: &Shop,
    p: PartnerId,
) -> BTreeMap<(LinkKind, uuid::Uuid), u64> {
    store
        .fetch(shop.w.tenant, &Key::PartnerLinks(p))
        .await
        .expect("links")
        .into_iter()
        .map(|r| match r {
            Record::Link(Link { kind, id, version }) => ((kind, id), version),
            other => panic!("a link read gave {other:?}"),
        })
        .collect()
}

/// The partner a record's stored document names, and its version, read through the record's own key (so the
/// document, not only the indexed column, is checked).
async fn owner(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    shop: &Shop,
    kind: LinkKind,
    id: uuid::Uuid,
    of: PartnerId,
) -> Option<(PartnerId, u64)> {
    let t = shop.w.tenant;
    Some(match kind {
        LinkKind::Lead => {
            let l = store.lead(t, LeadId::from_uuid(id)).await.expect("lead");
            (l.partner(), l.version())
        }
        LinkKind::Request => {
            let r = store
                .request(t, RequestId::from_uuid(id))
                .await
                .expect("request");
            (r.partner()?, r.version())
        }
        LinkKind::Comment => {
            let page = store
                .comments(t, CommentTarget::Partner(of), &PageRequest::default())
                .await
                .expect("comments");
            let c = page.items.iter().find(|c| *c.id().as_uuid() == id)?;
            match c.target() {
                CommentTarget::Partner(p) => (p, 0),
                _ => return None,
            }
        }
        LinkKind::Document => {
            let d = commerce
                .document(t, DocumentId::from_uuid(id))
                .await
                .expect("document");
            (d.partner(), d.version())
        }
        LinkKind::Quotation => {
            let q = commerce
                .quotation(t, QuotationId::from_uuid(id))
                .await
                .expect("quotation");
            (q.partner(), q.version())
        }
        LinkKind::Contract => {
            let c = commerce
                .contract(t, ContractId::from_uuid(id))
                .await
                .expect("contract");
            (c.partner(), c.version())
        }
        LinkKind::Meeting => {
            let m = commerce
                .meeting(t, MeetingId::from_uuid(id))
                .await
                .expect("meeting");
            (m.partner()?, m.version())
        }
        LinkKind::Attachment => {
            let a = commerce
                .attachment(t, AttachmentId::from_uuid(id))
                .await
                .expect("attachment");
            match a.target() {
                AttachedTo::Partner(p) => (p, a.version()),
                _ => return None,
            }
        }
        LinkKind::Representative => {
            let r = commerce
                .representative(t, RepresentativeId::from_uuid(id))
                .await
                .expect("representative");
            (r.partner(), r.version())
        }
        LinkKind::PaymentAttempt => {
            let a = commerce
                .payment_attempt_by_key(t, "merge")
                .await
                .expect("payment attempt")?;
            (a.partner(), a.version())
        }
        _ => {
            let page = commerce
                .campaign_targets(t, CampaignId::from_uuid(id), &PageRequest::default())
                .await
                .expect("campaign targets");
            let target = page.items.iter().find(|x| x.partner() == of)?;
            (target.partner(), target.version())
        }
    })
}

/// Asserts every record of `expected` (kind, id → version) points at `at` at that version, through both the link
/// read and the record's own read.
async fn assert_held(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    shop: &Shop,
    at: PartnerId,
    expected: &BTreeMap<(LinkKind, uuid::Uuid), u64>,
    when: &str,
) {
    let held = links(store, shop, at).await;
    for ((kind, id), version) in expected {
        assert_eq!(
            held.get(&(*kind, *id)),
            Some(version),
            "{when}: the {} {id} should point at {at} at version {version}; links: {held:?}",
            kind.entity()
        );
        let read = owner(store, commerce, shop, *kind, *id, at).await;
        assert_eq!(
            read,
            Some((at, *version)),
            "{when}: the stored {} {id} should name partner {at} at version {version}",
            kind.entity()
        );
    }
}

/// A partner with a coded contact, an e-mail and a location.
async fn partner(shop: &Shop, name: &str, code: &str) -> Partner {
    let mut new = NewPartner::company(name).with_host_ref(code);
    new.contacts.push(NewContact {
        name: format!("{name} buyer"),
        email: Some(format!("buyer@{}.example", code.to_lowercase())),
        host_ref: Some(format!("{code}-C")),
        ..NewContact::default()
    });
    shop.w
        .crm
        .create_partner(&shop.w.ctx, new)
        .await
        .expect("partner")
        .record
}

/// Merging a partner that has every kind of record into another, then undoing it; the bad inputs.
pub async fn check_partner_merge(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (crm, cs, ctx, t) = (&shop.w.crm, &shop.cs, &shop.w.ctx, shop.w.tenant);

    // The twin, with one record of every kind; the campaign is launched before the survivor exists.
    let mut twin = partner(&shop, "Twin SRL", "TW").await;
    let twin_patch = PartnerPatch {
        website: Some(Some("twin.example".into())),
        tags: Some(BTreeSet::from(["vip".to_string()])),
        ..Default::default()
    };
    twin = crm
        .update_partner(ctx, twin.id(), twin.version(), twin_patch)
        .await
        .expect("twin's website")
        .record;
    let early = cs
        .create_campaign(
            ctx,
            NewCampaign {
                criteria: Some(everyone()),
                ..shop.year_campaign("Early", Channel::Email)
            },
        )
        .await
        .expect("campaign");
    cs.launch_campaign(ctx, early.id, early.version)
        .await
        .expect("launch");
    let survivor = partner(&shop, "Twin S.R.L.", "SV").await;
    let later = cs
        .create_campaign(
            ctx,
            NewCampaign {
                criteria: Some(everyone()),
                ..shop.year_campaign("Later", Channel::Email)
            },
        )
        .await
        .expect("campaign");
    cs.launch_campaign(ctx, later.id, later.version)
        .await
        .expect("launch");
    let lead = crm
        .enter_lead(ctx, NewLead::for_partner(twin.id(), "Deal"))
        .await
        .expect("lead")
        .record;
    crm.open_request(
        ctx,
        NewRequest {
            partner: Some(twin.id()),
            ..NewRequest::on_lead(lead.id(), "Call back", shop.w.agent)
        },
    )
    .await
    .expect("request");
    crm.comment(ctx, CommentTarget::Partner(twin.id()), "same company as SV")
        .await
        .expect("comment");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("a day");
    let invoice = shop
        .record(
            NewDocument::invoice(
                "F-M1",
                twin.id(),
                day,
                "RON",
                vec![shop.line(0, "1", "10", "1")],
            )
            .due(day),
        )
        .await;
    let quotation = cs
        .create_quotation(ctx, super::commerce::quotation_for(&lead, "100"))
        .await
        .expect("quotation");
    super::sales::contract_from(cs, ctx, &quotation).await;
    let mut meeting = super::commerce::meeting_for(&shop.w, &lead);
    meeting.partner = Some(twin.id());
    cs.schedule_meeting(ctx, meeting).await.expect("meeting");
    cs.attach(
        ctx,
        crate::sales::NewAttachment {
            target: AttachedTo::Partner(twin.id()),
            name: "kyc.txt".into(),
            shared_with_partner: true,
        },
        super::model::stream_of(&b"twin's papers"[..]),
    )
    .await
    .expect("attachment");
    let provider = Arc::new(super::portal::TestProvider::new(
        super::portal::ProviderMode::ConfirmLater,
    ));
    let portal = crate::service::PortalService::new(cs.clone()).with_payment_provider(provider);
    let invited = portal
        .invite(
            ctx,
            twin.id(),
            twin.contacts()[0].id,
            crate::portal::Rights::all(),
        )
        .await
        .expect("representative");
    let me = portal
        .login(t, invited.token.as_str())
        .await
        .expect("accept");
    portal
        .pay(
            &me,
            "merge",
            &[crate::portal::PayItem::all_of(invoice.id())],
        )
        .await
        .expect("pay");
    let twin = crm.partner(t, twin.id()).await.expect("twin");
    let before = links(&store, &shop, twin.id()).await;
    let kinds: BTreeSet<LinkKind> = before.keys().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        LinkKind::ALL.into_iter().collect(),
        "the twin should hold a record of every kind: {before:?}"
    );
    let survivor_before = links(&store, &shop, survivor.id()).await;

    // Bad input, nothing written.
    let plan = |merged: Vec<PartnerId>, picks: BTreeMap<String, PartnerId>| {
        let survivor = survivor.id();
        async move { crm.plan_partner_merge(t, survivor, &merged, &picks).await }
    };
    let field = |r: crate::Result<crate::merge::MergePlan>| {
        r.expect_err("refused").field().map(str::to_string)
    };
    assert_eq!(
        field(plan(vec![survivor.id()], BTreeMap::new()).await).as_deref(),
        Some("merged")
    );
    assert_eq!(
        field(plan(vec![], BTreeMap::new()).await).as_deref(),
        Some("merged")
    );
    assert_eq!(
        field(plan(vec![twin.id(), twin.id()], BTreeMap::new()).await).as_deref(),
        Some("merged")
    );
    let unknown = BTreeMap::from([("colour".to_string(), twin.id())]);
    assert_eq!(
        field(plan(vec![twin.id()], unknown).await).as_deref(),
        Some("picks")
    );
    let outsider = BTreeMap::from([("name".to_string(), PartnerId::new())]);
    assert_eq!(
        field(plan(vec![twin.id()], outsider).await).as_deref(),
        Some("picks.name")
    );
    let other = super::checks::World::new(&store).await;
    let foreign = other
        .crm
        .create_partner(&other.ctx, NewPartner::company("Twin SRL"))
        .await
        .expect("other tenant's partner")
        .record;
    assert!(
        matches!(
            plan(vec![foreign.id()], BTreeMap::new()).await,
            Err(Error::NotFound { .. })
        ),
        "another tenant's partner reads as not found"
    );

    // The plan: the name picked from the twin, the website its only value, every record of the twin moving but
    // the later campaign's target (the survivor is a target already).
    let picks = BTreeMap::from([("name".to_string(), twin.id())]);
    let the_plan = plan(vec![twin.id()], picks.clone()).await.expect("plan");
    let choice = |f: &str| {
        let c = the_plan
            .fields()
            .iter()
            .find(|c| c.field == f)
            .expect("a choice per field");
        (c.from, c.reason)
    };
    assert_eq!(choice("name"), (twin.id(), crate::merge::Reason::Picked));
    assert_eq!(
        choice("website"),
        (twin.id(), crate::merge::Reason::OnlyValue)
    );
    assert_eq!(the_plan.result().name(), "Twin SRL");
    assert_eq!(the_plan.kept().len(), 1, "{:?}", the_plan.kept());
    assert_eq!(the_plan.kept()[0].0.link.id, *later.id.as_uuid());
    assert_eq!(the_plan.moves().len(), before.len() - 1);

    // A stale plan: a moved record changed since it was read; nothing is written.
    let stale = plan(vec![twin.id()], BTreeMap::new()).await.expect("plan");
    let touched = crm.update_lead_title(&shop, lead.id()).await;
    let err = crm
        .merge_partners(ctx, &stale)
        .await
        .expect_err("a stale plan");
    assert!(
        matches!(err, Error::Conflict { entity: "lead", .. }),
        "{err}"
    );
    assert!(crm
        .partner(t, twin.id())
        .await
        .expect("twin")
        .merged_into()
        .is_none());
    let before = links(&store, &shop, twin.id()).await;
    assert_eq!(
        before.get(&(LinkKind::Lead, *lead.id().as_uuid())),
        Some(&touched)
    );

    // The merge.
    let the_plan = plan(vec![twin.id()], picks).await.expect("plan");
    let merge = crm.merge_partners(ctx, &the_plan).await.expect("merge");
    assert_eq!(merge.events.len(), 2, "one event per partner's timeline");
    let merge = merge.record;
    let kept_target = (LinkKind::CampaignTarget, *later.id.as_uuid());
    let moved: BTreeMap<_, u64> = before
        .iter()
        .filter(|(k, _)| **k != kept_target)
        .map(|((k, id), v)| ((*k, *id), if k.versioned() { v + 1 } else { 0 }))
        .collect();
    assert_held(
        &store,
        &commerce,
        &shop,
        survivor.id(),
        &moved,
        "after the merge",
    )
    .await;
    assert_eq!(
        links(&store, &shop, twin.id())
            .await
            .keys()
            .collect::<Vec<_>>(),
        vec![&kept_target],
        "only the kept campaign target stays with the tombstone"
    );
    let stored_twin = store.partner(t, twin.id()).await.expect("tombstone");
    assert_eq!(stored_twin.merged_into(), Some(survivor.id()));
    assert!(stored_twin.contacts().is_empty());
    assert_eq!(
        crm.partner(t, twin.id()).await.expect("resolved").id(),
        survivor.id()
    );
    assert_eq!(
        crm.partner_by_ref(t, "TW").await.expect("old code").id(),
        survivor.id()
    );
    let (holder, contact) = crm.contact_by_ref(t, "TW-C").await.expect("moved contact");
    assert_eq!(
        (holder.id(), contact.id),
        (survivor.id(), twin.contacts()[0].id)
    );
    let now = crm.partner(t, survivor.id()).await.expect("survivor");
    assert_eq!(
        (now.name(), now.website()),
        ("Twin SRL", Some("twin.example"))
    );
    assert!(now.tags().contains("vip") && now.contacts().len() == 2);
    assert_eq!(
        commerce
            .open_items(t, survivor.id(), day)
            .await
            .expect("open items")
            .len(),
        1,
        "the twin's invoice is the survivor's open item"
    );
    let members = commerce
        .segment(
            t,
            &everyone(),
            day,
            crate::money::Currency::parse("RON").expect("RON"),
        )
        .await
        .expect("segment");
    assert!(
        !members.iter().any(|m| m.partner == twin.id()),
        "a tombstone is in no segment"
    );
    let matches = store
        .partners_by_keys(t, &crate::dedupe::keys_of(&twin))
        .await
        .expect("duplicates");
    assert!(
        !matches.iter().any(|m| m.partner == twin.id()),
        "a tombstone matches no duplicate"
    );
    let timeline = crm
        .timeline(
            t,
            TimelineOf::Partner(survivor.id()),
            &PageRequest::default(),
        )
        .await
        .expect("timeline");
    assert!(timeline
        .items
        .iter()
        .any(|e| matches!(e.kind, EventKind::PartnersMerged { merge: m, .. } if m == merge.id())));
    // A tombstone is merged no more, changed no more.
    let again = crm
        .plan_partner_merge(t, survivor.id(), &[twin.id()], &BTreeMap::new())
        .await;
    assert_eq!(field(again).as_deref(), Some("merged[0]"));
    let into = crm
        .plan_partner_merge(t, twin.id(), &[survivor.id()], &BTreeMap::new())
        .await;
    assert_eq!(field(into).as_deref(), Some("survivor"));
    let edit = crm
        .update_partner(
            ctx,
            twin.id(),
            stored_twin.version(),
            PartnerPatch::default(),
        )
        .await;
    assert_eq!(edit.expect_err("a tombstone").field(), Some("id"));

    // The undo: everything back where it was, one version on.
    let undone = crm.undo_merge(ctx, merge.id()).await.expect("undo").record;
    assert!(undone.undone_at().is_some());
    let back: BTreeMap<_, u64> = moved
        .iter()
        .map(|((k, id), v)| ((*k, *id), if k.versioned() { v + 1 } else { 0 }))
        .chain(std::iter::once((kept_target, before[&kept_target])))
        .collect();
    assert_held(&store, &commerce, &shop, twin.id(), &back, "after the undo").await;
    assert_eq!(
        links(&store, &shop, survivor.id()).await.len(),
        survivor_before.len()
    );
    let restored = crm.partner(t, twin.id()).await.expect("restored");
    assert_eq!(
        (restored.name(), restored.contacts().len()),
        ("Twin SRL", 1)
    );
    assert!(restored.merged_into().is_none());
    assert_eq!(
        crm.contact_by_ref(t, "TW-C").await.expect("contact").0.id(),
        twin.id()
    );
    let survivor_now = crm.partner(t, survivor.id()).await.expect("survivor");
    assert_eq!(
        (survivor_now.name(), survivor_now.website()),
        ("Twin S.R.L.", None)
    );
    let twice = crm.undo_merge(ctx, merge.id()).await;
    assert_eq!(twice.expect_err("undone already").field(), Some("merge"));

    // Merged again; a moved record changes; the undo is refused naming it, and writes nothing.
    let the_plan = plan(vec![twin.id()], BTreeMap::new()).await.expect("plan");
    let merge = crm
        .merge_partners(ctx, &the_plan)
        .await
        .expect("merge")
        .record;
    crm.update_lead_title(&shop, lead.id()).await;
    let err = crm
        .undo_merge(ctx, merge.id())
        .await
        .expect_err("changed since");
    match err {
        Error::Conflict { entity, id, .. } => {
            assert_eq!((entity, id), ("lead", lead.id().to_string()));
        }
        other => panic!("expected a conflict naming the lead, got {other}"),
    }
    assert!(crm
        .merge_journal(t, merge.id())
        .await
        .expect("journal")
        .undone_at()
        .is_none());
    assert_eq!(
        crm.partner(t, twin.id()).await.expect("resolved").id(),
        survivor.id()
    );
    // Writes naming the merged partner's id land on the survivor: a document, a lead, a request.
    let late = shop
        .record(NewDocument::invoice(
            "F-M2",
            twin.id(),
            day,
            "RON",
            vec![shop.line(0, "1", "10", "1")],
        ))
        .await;
    assert_eq!(late.partner(), survivor.id());
    let late_lead = crm
        .enter_lead(ctx, NewLead::for_partner(twin.id(), "Later deal"))
        .await
        .expect("lead")
        .record;
    assert_eq!(late_lead.partner(), survivor.id());
    let ask = NewRequest {
        partner: Some(twin.id()),
        ..NewRequest::on_lead(late_lead.id(), "Call", shop.w.agent)
    };
    let late_request = crm.open_request(ctx, ask).await.expect("request").record;
    assert_eq!(late_request.partner(), Some(survivor.id()));
    // An import naming the merged partner's code changes nothing and reports the survivor; a contact imported
    // for that code joins the survivor.
    use crate::service::{ContactRow, ImportMode, ImportRow, RowOutcome};
    let row = ImportRow {
        line: 2,
        record: NewPartner::company("Twin SRL (from the ERP)").with_host_ref("TW"),
    };
    let done = crm
        .import_partners(ctx, vec![row], ImportMode::Commit)
        .await
        .expect("import");
    assert!(
        matches!(done[0].outcome, RowOutcome::Unchanged(id) if id == survivor.id()),
        "{:?}",
        done[0].outcome
    );
    let contact = ImportRow {
        line: 2,
        record: ContactRow {
            partner_ref: "TW".into(),
            contact: NewContact {
                name: "Ana Pop".into(),
                ..NewContact::default()
            },
        },
    };
    let done = crm
        .import_contacts(ctx, vec![contact], ImportMode::Commit)
        .await
        .expect("import");
    assert!(
        matches!(done[0].outcome, RowOutcome::Updated(id, _) if id == survivor.id()),
        "{:?}",
        done[0].outcome
    );
    assert!(store
        .partner(t, twin.id())
        .await
        .expect("tombstone")
        .contacts()
        .is_empty());
    // Another tenant's merge reads as not found.
    assert!(matches!(
        other.crm.undo_merge(&other.ctx, merge.id()).await,
        Err(Error::NotFound {
            entity: "merge",
            ..
        })
    ));
}

/// A lead's title changed (its version moves on); the new version.
trait TouchLead {
    async fn update_lead_title(&self, shop: &Shop, lead: LeadId) -> u64;
}

impl TouchLead for crate::service::CrmService {
    async fn update_lead_title(&self, shop: &Shop, lead: LeadId) -> u64 {
        let l = self.lead(shop.w.tenant, lead).await.expect("lead");
        let patch = crate::lead::LeadPatch {
            title: Some(format!("{} (again)", l.title())),
            ..Default::default()
        };
        self.transition(
            &shop.w.ctx,
            lead,
            l.version(),
            crate::lead::LeadCommand::Update(patch),
        )
        .await
        .expect("lead changed")
        .record
        .version()
    }
}
