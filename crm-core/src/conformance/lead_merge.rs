//! Merging leads on a backend: the fields chosen with their reasons, every kind of record pointing at a merged lead
//! moved to the survivor and back on undo, the tombstones out of lists, boards, funnels and the campaign report,
//! the old ids and host references finding the survivor, and the bad inputs refused with nothing written.

use super::commerce::Shop;
use super::model::{stream_of, MemBlobStore};
use crate::commerce::CallOutcome;
use crate::commerce::{Channel, CommerceStore, CommerceStoreExt, NewCampaign};
use crate::event::RequestStatus;
use crate::event::{CommentTarget, EventKind};
use crate::id::{LeadId, TenantId};
use crate::lead::{LeadCommand, LeadPatch, NewLead, StatusKind};
use crate::merge::{LinkKind, Reason};
use crate::money::Money;
use crate::page::PageRequest;
use crate::request::{NewRequest, RequestCommand};
use crate::sales::{AttachedTo, NewAttachment};
use crate::store::{Backend, LeadQuery, Store, StoreExt, TimelineOf};
use crate::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn live(status: Option<StatusKind>) -> LeadQuery {
    LeadQuery {
        status,
        page: PageRequest::first(100),
        ..LeadQuery::default()
    }
}

/// Merging a lead entered twice (with a record of every kind) and a campaign's lead into one, then undoing it;
/// the bad inputs.
pub async fn check_lead_merge(backend: &Arc<dyn Backend>) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let cs = shop
        .cs
        .clone()
        .with_blob_store(Arc::new(MemBlobStore::new()));
    let (crm, ctx, t) = (&shop.w.crm, &shop.w.ctx, shop.w.tenant);
    let acme = shop.customer("Acme Lead SRL").await;
    let other = shop.customer("Other SRL").await;

    // A telemarketing campaign's call finds Acme interested: the campaign's lead.
    let campaign = cs
        .create_campaign(
            ctx,
            NewCampaign {
                criteria: Some(crate::commerce::Criteria::LastSale {
                    when: crate::commerce::LastSale::Never,
                }),
                ..shop.year_campaign("Calls", Channel::Telemarketing)
            },
        )
        .await
        .expect("campaign");
    let launch = cs
        .launch_campaign(ctx, campaign.id, campaign.version)
        .await
        .expect("launch");
    let call = launch
        .calls
        .iter()
        .find(|c| c.partner == Some(acme.id))
        .expect("Acme's call");
    let from_campaign = cs
        .record_call_outcome(
            &crate::actor::Context::user(t, call.assignee),
            call.id,
            CallOutcome::Interested,
        )
        .await
        .expect("interested")
        .lead
        .expect("the campaign's lead");
    let report = |c| {
        let cs = cs.clone();
        async move { cs.campaign_report(t, c, None).await.expect("report").leads }
    };
    assert_eq!(report(campaign.id).await, 1);

    // The survivor, and its twin with one record of every kind, moved on to the offer stage.
    let lead = crm
        .enter_lead(
            ctx,
            NewLead::for_partner(acme.id, "Forklifts").with_host_ref("L-A"),
        )
        .await
        .expect("lead")
        .record;
    let mut twin = NewLead::for_partner(acme.id, "Forklifts x3")
        .with_host_ref("L-B")
        .with_tag("web")
        .with_revenue(
            Money::new(
                rust_decimal::Decimal::new(90_000, 0),
                crate::money::Currency::parse("RON").expect("RON"),
            )
            .expect("money"),
        );
    twin.description = Some("Three, electric".into());
    let twin = crm.enter_lead(ctx, twin).await.expect("twin").record;
    shop.w.clock.advance(chrono::Duration::minutes(5));
    let offer = shop.w.pipeline.stage_named("Offer").expect("offer").id;
    let twin = crm
        .transition(
            ctx,
            twin.id,
            twin.version,
            LeadCommand::MoveTo { stage: offer },
        )
        .await
        .expect("to offer")
        .record;
    let request = crm
        .open_request(ctx, NewRequest::on_lead(twin.id, "Call back", shop.w.agent))
        .await
        .expect("request")
        .record;
    let comment = crm
        .comment(ctx, CommentTarget::Lead(twin.id), "Wants three")
        .await
        .expect("comment")
        .record;
    let quotation = cs
        .create_quotation(ctx, super::sales::quotation_for(&twin, "100"))
        .await
        .expect("quotation");
    let contract = super::sales::contract_from(&cs, ctx, &quotation).await;
    let meeting = cs
        .schedule_meeting(ctx, super::sales::meeting_for(&shop.w, &twin))
        .await
        .expect("meeting");
    let file = cs
        .attach(
            ctx,
            NewAttachment {
                target: AttachedTo::Lead(twin.id),
                name: "specs.txt".into(),
                shared_with_partner: false,
            },
            stream_of(&b"three forklifts"[..]),
        )
        .await
        .expect("attachment");
    let twin = store.lead(t, twin.id).await.expect("twin");
    let elsewhere = crm
        .enter_lead(ctx, NewLead::for_partner(other.id, "Forklifts"))
        .await
        .expect("another partner's lead")
        .record;
    let board = |n: &crate::store::Board| {
        let col = n.columns.iter().find(|c| c.stage == offer).expect("column");
        col.count
    };
    let board_before = board(&crm.board(t, shop.w.pipeline.id).await.expect("board"));
    let funnel = |f: &crate::store::Funnel| f.steps.iter().find(|s| s.0 == offer).expect("step").2;
    let funnel_before = funnel(
        &crm.funnel(t, shop.w.pipeline.id, None)
            .await
            .expect("funnel"),
    );

    // The plan: each field with its source and reason, every record that moves.
    let none = BTreeMap::new();
    let merged = [twin.id, from_campaign.id];
    let plan = crm
        .plan_lead_merge(t, lead.id, &merged, &none)
        .await
        .expect("plan");
    let reason = |f: &str| {
        let c = plan.fields().iter().find(|c| c.field == f).expect("field");
        (c.from, c.reason)
    };
    assert_eq!(reason("title"), (twin.id, Reason::Newest));
    assert_eq!(reason("description"), (twin.id, Reason::OnlyValue));
    assert_eq!(reason("expected_revenue"), (twin.id, Reason::OnlyValue));
    assert_eq!(reason("source"), (from_campaign.id, Reason::OnlyValue));
    let moving: BTreeSet<(LinkKind, uuid::Uuid)> = plan
        .moves()
        .iter()
        .map(|m| (m.link.kind, m.link.id))
        .collect();
    for want in [
        (LinkKind::Request, *request.id.as_uuid()),
        (LinkKind::Comment, *comment.id.as_uuid()),
        (LinkKind::Quotation, *quotation.id().as_uuid()),
        (LinkKind::Contract, *contract.id().as_uuid()),
        (LinkKind::Meeting, *meeting.id().as_uuid()),
        (LinkKind::Attachment, *file.id().as_uuid()),
        (LinkKind::CampaignTarget, *campaign.id.as_uuid()),
    ] {
        assert!(moving.contains(&want), "{want:?} should move: {moving:?}");
    }
    assert_eq!(plan.result().title(), "Forklifts x3");
    let picks = BTreeMap::from([("title".to_string(), lead.id)]);
    let picked = crm
        .plan_lead_merge(t, lead.id, &merged, &picks)
        .await
        .expect("picked");
    assert_eq!(picked.result().title(), "Forklifts");

    // Bad input, nothing written.
    let unknown = BTreeMap::from([("shoe_size".to_string(), lead.id)]);
    let outsider = BTreeMap::from([("title".to_string(), elsewhere.id)]);
    let cases: [(&[LeadId], &BTreeMap<String, LeadId>, &str); 5] = [
        (&[lead.id], &none, "merged"),
        (&[], &none, "merged"),
        (&[elsewhere.id], &none, "merged[0]"),
        (&[twin.id], &unknown, "picks"),
        (&[twin.id], &outsider, "picks.title"),
    ];
    for (merged, picks, field) in cases {
        let err = crm
            .plan_lead_merge(t, lead.id, merged, picks)
            .await
            .expect_err("refused");
        assert_eq!(err.field(), Some(field), "{err:?}");
    }
    let stranger = crate::actor::Context::user(TenantId::new(), shop.w.agent);
    assert!(matches!(
        crm.merge_leads(&stranger, &plan).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        crm.plan_lead_merge(stranger.tenant, lead.id, &merged, &none)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store.lead(t, twin.id).await.expect("twin"),
        twin,
        "nothing written"
    );

    // The merge.
    let journal = crm.merge_leads(ctx, &plan).await.expect("merge").record;
    let survivor = crm.lead(t, twin.id).await.expect("the old id");
    assert_eq!(survivor.id, lead.id, "the old id finds the survivor");
    assert_eq!(survivor.description.as_deref(), Some("Three, electric"));
    assert_eq!(survivor.stage, lead.stage, "the survivor keeps its stage");
    assert!(survivor.tags.contains("web"));
    assert_eq!(crm.lead_by_ref(t, "L-B").await.expect("by ref").id, lead.id);
    let tomb = store.lead(t, twin.id).await.expect("tombstone");
    assert_eq!(tomb.status.kind(), StatusKind::Merged);
    let listed: Vec<LeadId> = (crm.query_leads(t, &live(None)).await.expect("list").items)
        .iter()
        .map(|l| l.id)
        .collect();
    assert!(
        listed.contains(&lead.id)
            && !listed.contains(&twin.id)
            && !listed.contains(&from_campaign.id)
    );
    let tombs = crm
        .query_leads(t, &live(Some(StatusKind::Merged)))
        .await
        .expect("tombstones");
    assert_eq!(tombs.items.len(), 2);
    assert_eq!(
        board(&crm.board(t, shop.w.pipeline.id).await.expect("board")),
        board_before - 1,
        "the tombstone leaves the board"
    );
    assert_eq!(
        funnel(
            &crm.funnel(t, shop.w.pipeline.id, None)
                .await
                .expect("funnel")
        ),
        funnel_before - 1,
        "and the funnel"
    );
    assert_eq!(
        report(campaign.id).await,
        1,
        "the survivor is the campaign's lead now"
    );
    assert_eq!(
        crm.request(t, request.id).await.expect("request").lead,
        Some(lead.id)
    );
    let on_survivor = crm
        .comments(t, CommentTarget::Lead(lead.id), &PageRequest::first(10))
        .await
        .expect("comments");
    assert!(on_survivor.items.iter().any(|c| c.id == comment.id));
    assert_eq!(
        commerce
            .quotation(t, quotation.id())
            .await
            .expect("q")
            .lead(),
        Some(lead.id)
    );
    assert_eq!(
        commerce.contract(t, contract.id()).await.expect("c").lead(),
        Some(lead.id)
    );
    assert_eq!(
        commerce.meeting(t, meeting.id()).await.expect("m").lead(),
        Some(lead.id)
    );
    assert_eq!(
        commerce.attachment(t, file.id()).await.expect("a").target(),
        AttachedTo::Lead(lead.id)
    );
    let targets = commerce
        .campaign_targets(t, campaign.id, &PageRequest::first(10))
        .await
        .expect("targets");
    assert_eq!(targets.items[0].lead(), Some(lead.id));
    let log = crm
        .timeline(t, TimelineOf::Lead(lead.id), &PageRequest::first(5))
        .await
        .expect("timeline");
    assert!(
        matches!(&log.items[0].kind, EventKind::LeadsMerged { survivor, merged, .. }
        if *survivor == lead.id && merged.len() == 2)
    );

    // A stale plan, and merging a tombstone, are refused.
    assert!(matches!(
        crm.merge_leads(ctx, &plan).await,
        Err(Error::Conflict { .. })
    ));
    let err = crm
        .plan_lead_merge(t, lead.id, &[twin.id], &none)
        .await
        .expect_err("a tombstone");
    assert_eq!(err.field(), Some("merged[0]"), "{err:?}");

    // Undo: everything back.
    crm.undo_lead_merge(ctx, journal.id()).await.expect("undo");
    let back = store.lead(t, twin.id).await.expect("twin");
    assert_eq!(back.status, twin.status);
    assert_eq!(
        (back.title.as_str(), back.version),
        (twin.title.as_str(), twin.version + 2)
    );
    assert_eq!(
        crm.request(t, request.id).await.expect("request").lead,
        Some(twin.id)
    );
    assert_eq!(
        commerce.contract(t, contract.id()).await.expect("c").lead(),
        Some(twin.id)
    );
    assert_eq!(
        commerce.attachment(t, file.id()).await.expect("a").target(),
        AttachedTo::Lead(twin.id)
    );
    let targets = commerce
        .campaign_targets(t, campaign.id, &PageRequest::first(10))
        .await
        .expect("targets");
    assert_eq!(targets.items[0].lead(), Some(from_campaign.id));
    assert_eq!(
        crm.query_leads(t, &live(None))
            .await
            .expect("list")
            .items
            .len(),
        4
    );
    assert_eq!(
        board(&crm.board(t, shop.w.pipeline.id).await.expect("board")),
        board_before
    );
    let err = crm
        .undo_lead_merge(ctx, journal.id())
        .await
        .expect_err("twice");
    assert_eq!(err.field(), Some("merge"), "{err:?}");

    // Merged again, a moved record changes: the undo names it, and writes nothing.
    let plan = crm
        .plan_lead_merge(t, lead.id, &[twin.id], &none)
        .await
        .expect("plan");
    let journal = crm.merge_leads(ctx, &plan).await.expect("merge").record;
    let moved = crm.request(t, request.id).await.expect("request");
    let done = RequestCommand::SetStatus {
        status: RequestStatus::Done,
    };
    crm.change_request(ctx, request.id, moved.version, done)
        .await
        .expect("done");
    match crm.undo_lead_merge(ctx, journal.id()).await {
        Err(Error::Conflict {
            entity: "request",
            id,
            ..
        }) => assert_eq!(id, request.id.to_string()),
        other => panic!("the undo should name the changed request: {other:?}"),
    }
    assert_eq!(
        store.lead(t, twin.id).await.expect("twin").status.kind(),
        StatusKind::Merged,
        "nothing written"
    );

    // New records and commands naming the old id go to the survivor.
    let note = crm
        .comment(ctx, CommentTarget::Lead(twin.id), "Still three")
        .await
        .expect("comment")
        .record;
    assert_eq!(note.target, CommentTarget::Lead(lead.id));
    let current = crm.lead(t, lead.id).await.expect("survivor");
    let patch = LeadPatch {
        title: Some("Forklifts, three".into()),
        ..LeadPatch::default()
    };
    let edited = crm
        .transition(ctx, twin.id, current.version, LeadCommand::Update(patch))
        .await
        .expect("edit by the old id")
        .record;
    assert_eq!(
        (edited.id, edited.title.as_str()),
        (lead.id, "Forklifts, three")
    );
    match crm.undo_lead_merge(ctx, journal.id()).await {
        Err(Error::Conflict {
            entity: "lead", id, ..
        }) => assert_eq!(id, lead.id.to_string()),
        other => panic!("the undo should name the changed survivor: {other:?}"),
    }
}
