//! One async function per storage behaviour. Each panics (with a message saying what broke) on failure.

use crate::actor::Context;
use crate::dedupe::MatchKind;
use crate::error::Error;
use crate::event::{CommentTarget, EventKind, RequestStatus};
use crate::id::{LeadId, PartnerId, TenantId, UserId};
use crate::lead::{LeadCommand, LeadPatch, NewLead, StatusKind, TransitionError};
use crate::money::{Currency, Money};
use crate::partner::{NewPartner, PartnerPatch, PartnerRole};
use crate::pipeline::{LostReason, NewPipeline, NewStage, Pipeline, Requirement};
use crate::request::{NewRequest, RequestCommand};
use crate::service::CrmService;
use crate::store::StoreExt;
use crate::store::{
    ChangeSet, LeadQuery, LeadSort, PageRequest, RequestQuery, Store, TimelineOf, Write,
};
use crate::time::{Clock, FixedClock};
use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;

/// The fixture every check builds on: a fresh tenant with the seed pipeline, a fixed clock, two users.
pub struct World {
    /// The service over the store under test.
    pub crm: CrmService,
    /// The clock (2026-03-02 09:00 UTC at the start).
    pub clock: Arc<FixedClock>,
    /// The tenant.
    pub tenant: TenantId,
    /// A sales agent acting through the API.
    pub ctx: Context,
    /// The agent.
    pub agent: UserId,
    /// A second user.
    pub manager: UserId,
    /// The seed pipeline.
    pub pipeline: Pipeline,
    /// The seed lost reasons.
    pub reasons: Vec<LostReason>,
}

debug_tenant!(World => tenant);

impl World {
    /// Builds the fixture on `store`.
    pub async fn new(store: &Arc<dyn Store>) -> World {
        let store = store.clone();
        let clock = Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
        ));
        let crm = CrmService::builder()
            .store(store)
            .clock(clock.clone())
            .build()
            .unwrap();
        let tenant = TenantId::new();
        let agent = UserId::new();
        let ctx = Context::user(tenant, agent);
        let pipeline = crm.setup_tenant(&ctx).await.expect("setup_tenant");
        let reasons = crm.lost_reasons(tenant).await.expect("lost reasons");
        World {
            crm,
            clock,
            tenant,
            ctx,
            agent,
            manager: UserId::new(),
            pipeline,
            reasons,
        }
    }

    /// The store under test.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.crm.store()
    }

    /// A stage of the seed pipeline by name.
    pub fn stage(&self, name: &str) -> crate::id::StageId {
        self.pipeline.stage_named(name).expect("seed stage").id
    }

    /// Creates a company partner.
    pub async fn partner(&self, name: &str) -> PartnerId {
        self.crm
            .create_partner(
                &self.ctx,
                NewPartner::company(name).with_role(PartnerRole::Customer),
            )
            .await
            .expect("create partner")
            .record
            .id
    }

    /// Enters a lead for a new partner.
    pub async fn lead(&self, title: &str, revenue: Option<&str>) -> crate::lead::Lead {
        let p = self.partner(&format!("{title} Partner")).await;
        let mut n = NewLead::for_partner(p, title).with_owner(self.agent);
        n.expected_revenue = revenue.map(|r| Money::parse(r, "EUR").unwrap());
        self.crm
            .enter_lead(&self.ctx, n)
            .await
            .expect("enter lead")
            .record
    }

    /// Applies a command at the lead's current version.
    pub async fn act(&self, lead: LeadId, cmd: LeadCommand) -> crate::Result<crate::lead::Lead> {
        let v = self.crm.lead(self.tenant, lead).await?.version;
        self.crm
            .transition(&self.ctx, lead, v, cmd)
            .await
            .map(|o| o.record)
    }

    /// Advances the clock.
    pub fn tick(&self, minutes: i64) {
        self.clock.advance(Duration::minutes(minutes));
    }
}

fn eur(s: &str) -> Money {
    Money::parse(s, "EUR").unwrap()
}

fn is_not_found(r: &crate::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::NotFound { .. }))
}

/// A partner is stored and read back exactly, and updates bump its version.
pub async fn check_partner_round_trip(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let input = NewPartner::company("Fabrica de Mobilă SRL")
        .with_role(PartnerRole::Customer)
        .with_role(PartnerRole::Vendor)
        .with_contact("Ana Pop", Some("ana@mobila.ro"), Some("+40 721 234 567"))
        .with_tax_id("RO123456")
        .with_group("furniture")
        .with_industry("Furniture manufacturing", Some("3101"));
    let created = w.crm.create_partner(&w.ctx, input).await.unwrap().record;
    let read = w.crm.partner(w.tenant, created.id).await.unwrap();
    assert_eq!(read, created, "partner round trip");
    let updated = w
        .crm
        .update_partner(
            &w.ctx,
            created.id,
            1,
            PartnerPatch {
                name: Some("Mobila SA".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .record;
    assert_eq!(updated.version, 2);
    assert_eq!(w.crm.partner(w.tenant, created.id).await.unwrap(), updated);
}

/// Ids of another tenant read as not found, and another tenant's queries see nothing.
pub async fn check_tenant_isolation(store: &Arc<dyn Store>) {
    let a = World::new(store).await;
    let b = World::new(store).await;
    let lead = a.lead("Isolated", Some("100")).await;
    let req = a
        .crm
        .open_request(&a.ctx, NewRequest::on_lead(lead.id, "Call", a.agent))
        .await
        .unwrap()
        .record;
    assert!(
        is_not_found(&store.lead(b.tenant, lead.id).await),
        "lead visible to another tenant"
    );
    assert!(
        is_not_found(&store.partner(b.tenant, lead.partner).await),
        "partner visible to another tenant"
    );
    assert!(
        is_not_found(&store.request(b.tenant, req.id).await),
        "request visible to another tenant"
    );
    assert!(
        is_not_found(&store.pipeline(b.tenant, a.pipeline.id).await),
        "pipeline visible to another tenant"
    );
    assert!(is_not_found(&store.board(b.tenant, a.pipeline.id).await));
    assert!(is_not_found(
        &store
            .timeline(b.tenant, TimelineOf::Lead(lead.id), &PageRequest::default())
            .await
    ));
    assert!(is_not_found(&store.stage_history(b.tenant, lead.id).await));
    let q = LeadQuery {
        partner: Some(lead.partner),
        ..Default::default()
    };
    assert!(store
        .query_leads(b.tenant, &q)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .query_requests(
            b.tenant,
            &RequestQuery {
                assignee: Some(a.agent),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .events_since(b.tenant, 0, 1000)
        .await
        .unwrap()
        .iter()
        .all(|(_, e)| e.tenant == b.tenant));
    // Acting on another tenant's lead through the service is not found too.
    let r = b.crm.transition(&b.ctx, lead.id, 1, LeadCommand::Win).await;
    assert!(is_not_found(&r), "{r:?}");
}

/// A change set carrying another tenant's record is refused whole.
pub async fn check_commit_refuses_foreign_tenant(store: &Arc<dyn Store>) {
    let a = World::new(store).await;
    let b = World::new(store).await;
    let p = NewPartner::company("Foreign")
        .build(b.tenant, a.clock.now())
        .unwrap();
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertPartner {
        partner: p.clone(),
        keys: vec![],
    });
    let e = store.commit(a.tenant, cs).await.unwrap_err();
    assert_eq!(e.field(), Some("tenant"), "{e}");
    assert!(is_not_found(&store.partner(b.tenant, p.id).await));
    assert!(is_not_found(&store.partner(a.tenant, p.id).await));
}

/// A pipeline written as raw data through the change set is checked like a built one: one without an open stage
/// (where new leads start) is refused, and nothing is written.
pub async fn check_commit_refuses_raw_pipeline(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut raw = NewPipeline::seed_default()
        .build(w.tenant, w.clock.now())
        .unwrap();
    raw.is_default = false;
    raw.stages
        .retain(|s| s.kind == crate::pipeline::StageKind::Won);
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertPipeline(raw.clone()));
    let e = store.commit(w.tenant, cs.clone()).await.unwrap_err();
    assert_eq!(e.field(), Some("stages"), "{e}");
    let e = store.ingest(w.tenant, cs).await.unwrap_err();
    assert_eq!(e.field(), Some("stages"), "ingest: {e}");
    assert!(is_not_found(&store.pipeline(w.tenant, raw.id).await));
}

/// Inserting an existing key is `AlreadyExists`.
pub async fn check_insert_existing_is_already_exists(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let p = NewPartner::company("Twice")
        .build(w.tenant, w.clock.now())
        .unwrap();
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertPartner {
        partner: p.clone(),
        keys: vec![],
    });
    store.commit(w.tenant, cs.clone()).await.unwrap();
    let e = store.commit(w.tenant, cs).await.unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
}

/// A stale version is a `Conflict` naming the stored version, and nothing of the stale change is written.
pub async fn check_stale_version_is_conflict(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let lead = w.lead("Contested", None).await;
    let mut first = lead.clone();
    first.title = "First".into();
    first.version = 2;
    let mut second = lead.clone();
    second.title = "Second".into();
    second.version = 2;
    let mut cs1 = ChangeSet::new();
    cs1.push(Write::UpdateLead {
        lead: first.clone(),
        expected_version: 1,
    });
    store.commit(w.tenant, cs1).await.unwrap();
    let before = store
        .timeline(w.tenant, TimelineOf::Lead(lead.id), &PageRequest::default())
        .await
        .unwrap();
    let mut cs2 = ChangeSet::new();
    cs2.push(Write::AppendEvent(crate::event::DomainEvent::new(
        &w.ctx,
        w.clock.now(),
        crate::service::lead_subject(&lead),
        EventKind::LeadUpdated { changes: vec![] },
    )));
    cs2.push(Write::UpdateLead {
        lead: second,
        expected_version: 1,
    });
    let e = store.commit(w.tenant, cs2).await.unwrap_err();
    match e {
        Error::Conflict {
            expected, actual, ..
        } => assert_eq!((expected, actual), (1, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.lead(w.tenant, lead.id).await.unwrap(),
        first,
        "the first writer's change stands"
    );
    let after = store
        .timeline(w.tenant, TimelineOf::Lead(lead.id), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        before, after,
        "the conflicting change set's event was not written"
    );
    // Through the service: a stale version is a conflict too, and retrying on the fresh version works.
    let e = w
        .crm
        .transition(&w.ctx, lead.id, 1, LeadCommand::Win)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }) && e.is_retryable());
    w.crm
        .transition(&w.ctx, lead.id, 2, LeadCommand::Win)
        .await
        .unwrap();
    // An update of a missing record is not found.
    let mut ghost = lead.clone();
    ghost.id = LeadId::new();
    ghost.version = 2;
    let mut cs = ChangeSet::new();
    cs.push(Write::UpdateLead {
        lead: ghost,
        expected_version: 1,
    });
    assert!(matches!(
        store.commit(w.tenant, cs).await,
        Err(Error::NotFound { .. })
    ));
}

/// All writes of a change set commit, or none.
pub async fn check_change_set_is_atomic(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let p1 = NewPartner::company("Atomic One")
        .build(w.tenant, w.clock.now())
        .unwrap();
    let lead = w.lead("Existing", None).await;
    let mut stale = lead.clone();
    stale.version = 6;
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertPartner {
        partner: p1.clone(),
        keys: crate::dedupe::keys_of(&p1),
    });
    cs.push(Write::UpdateLead {
        lead: stale,
        expected_version: 5,
    });
    assert!(store.commit(w.tenant, cs).await.is_err());
    assert!(
        is_not_found(&store.partner(w.tenant, p1.id).await),
        "first write of a failed change set persisted"
    );
    assert!(store
        .partners_by_keys(w.tenant, &crate::dedupe::keys_of(&p1))
        .await
        .unwrap()
        .is_empty());
    // A lead referencing a partner that does not exist (in this tenant) is refused.
    let other = World::new(store).await;
    let foreign_partner = other.partner("Elsewhere").await;
    let mut l2 = lead.clone();
    l2.id = LeadId::new();
    l2.partner = foreign_partner;
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertLead(l2.clone()));
    let e = store.commit(w.tenant, cs).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    assert!(is_not_found(&store.lead(w.tenant, l2.id).await));
}

/// Bad input through the service leaves nothing behind (no half-created partner or lead).
pub async fn check_failed_operation_writes_nothing(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let before = store.events_since(w.tenant, 0, 10_000).await.unwrap().len();
    let mut bad = NewLead::new(
        crate::lead::LeadPartner::New {
            partner: NewPartner::company("Half Written SRL"),
        },
        "   ",
    );
    bad.expected_revenue = Some(eur("10"));
    let e = w.crm.enter_lead(&w.ctx, bad).await.unwrap_err();
    assert_eq!(e.field(), Some("title"));
    let mut neg = NewLead::new(
        crate::lead::LeadPartner::New {
            partner: NewPartner::company("Negative SRL"),
        },
        "Neg",
    );
    neg.expected_revenue = Some(eur("-1"));
    assert_eq!(
        w.crm.enter_lead(&w.ctx, neg).await.unwrap_err().field(),
        Some("expected_revenue")
    );
    let mut prob = NewLead::new(
        crate::lead::LeadPartner::New {
            partner: NewPartner::company("Prob SRL"),
        },
        "Prob",
    );
    prob.probability = Some(101);
    assert_eq!(
        w.crm.enter_lead(&w.ctx, prob).await.unwrap_err().field(),
        Some("probability")
    );
    let mut unknown = NewLead::new(
        crate::lead::LeadPartner::New {
            partner: NewPartner::company("Unknown SRL"),
        },
        "Unknown",
    );
    unknown.stage = Some(crate::id::StageId::new());
    assert_eq!(
        w.crm.enter_lead(&w.ctx, unknown).await.unwrap_err().field(),
        Some("stage")
    );
    let mut nopipe = NewLead::new(
        crate::lead::LeadPartner::New {
            partner: NewPartner::company("NoPipe SRL"),
        },
        "x",
    );
    nopipe.pipeline = Some(crate::id::PipelineId::new());
    assert!(matches!(
        w.crm.enter_lead(&w.ctx, nopipe).await,
        Err(Error::NotFound {
            entity: "pipeline",
            ..
        })
    ));
    let after = store.events_since(w.tenant, 0, 10_000).await.unwrap().len();
    assert_eq!(before, after, "a refused operation wrote events");
    let q = LeadQuery {
        text: Some("SRL".into()),
        ..Default::default()
    };
    assert!(store
        .query_leads(w.tenant, &q)
        .await
        .unwrap()
        .items
        .is_empty());
    // An unassigned request with a due date in the past is refused.
    let lead = w.lead("Requests", None).await;
    let mut r = NewRequest::on_lead(lead.id, "Call", w.agent);
    r.assignee = None;
    r.due = Some(w.clock.now() - Duration::days(1));
    assert_eq!(
        w.crm.open_request(&w.ctx, r).await.unwrap_err().field(),
        Some("assignee")
    );
}

/// Enter → move → lose (with reason) → reopen → win, with stage history, time in stage and funnel.
pub async fn check_lead_lifecycle(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let lead = w.lead("Forklifts", Some("12000")).await;
    assert_eq!(lead.probability, 10);
    w.tick(60);
    let l = w
        .act(
            lead.id,
            LeadCommand::MoveTo {
                stage: w.stage("Qualification"),
            },
        )
        .await
        .unwrap();
    assert_eq!((l.version, l.probability), (2, 30));
    w.tick(120);
    let e = w
        .act(
            lead.id,
            LeadCommand::Lose {
                reason: None,
                competitor: None,
                note: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Transition(TransitionError::MissingLostReason)),
        "{e:?}"
    );
    let e = w
        .act(
            lead.id,
            LeadCommand::Lose {
                reason: Some(crate::id::LostReasonId::new()),
                competitor: None,
                note: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Transition(TransitionError::UnknownLostReason { .. })
        ),
        "{e:?}"
    );
    let l = w
        .act(
            lead.id,
            LeadCommand::Lose {
                reason: Some(w.reasons[0].id),
                competitor: Some("Rival SA".into()),
                note: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((l.status.kind(), l.probability), (StatusKind::Lost, 0));
    let e = w
        .act(
            lead.id,
            LeadCommand::MoveTo {
                stage: w.stage("Offer"),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Transition(TransitionError::NotOpen { .. })),
        "{e:?}"
    );
    w.tick(30);
    let l = w
        .act(lead.id, LeadCommand::Reopen { stage: None })
        .await
        .unwrap();
    assert_eq!(
        (l.status.kind(), l.stage, l.probability),
        (StatusKind::Open, w.stage("Qualification"), 30)
    );
    w.tick(30);
    let l = w.act(lead.id, LeadCommand::Win).await.unwrap();
    assert_eq!(
        (l.status.kind(), l.stage, l.probability),
        (StatusKind::Won, w.stage("Contract"), 100)
    );
    assert_eq!(w.crm.lead(w.tenant, lead.id).await.unwrap(), l);
    let h = w.crm.stage_history(w.tenant, lead.id).await.unwrap();
    let steps: Vec<_> = h.iter().map(|s| (s.to, s.status)).collect();
    assert_eq!(
        steps,
        vec![
            (w.stage("Record"), StatusKind::Open),
            (w.stage("Qualification"), StatusKind::Open),
            (w.stage("Qualification"), StatusKind::Lost),
            (w.stage("Qualification"), StatusKind::Open),
            (w.stage("Contract"), StatusKind::Won),
        ]
    );
    let tis = crate::lead::time_in_stage(&h, w.clock.now());
    assert_eq!(
        tis,
        vec![
            (w.stage("Record"), 3600),
            (w.stage("Qualification"), 120 * 60 + 30 * 60)
        ]
    );
    let f = w.crm.funnel(w.tenant, w.pipeline.id, None).await.unwrap();
    let reached: Vec<u64> = f.steps.iter().map(|s| s.2).collect();
    assert_eq!(reached, vec![1, 0, 1, 0, 0, 1]);
    assert_eq!(
        (f.won, f.lost, f.win_rate()),
        (1, 0, Some(Decimal::ONE_HUNDRED))
    );
    let tl = w
        .crm
        .timeline(
            w.tenant,
            TimelineOf::Lead(lead.id),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = tl.items.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "lead_won",
            "lead_stage_moved",
            "lead_reopened",
            "lead_lost",
            "lead_stage_moved",
            "lead_entered"
        ],
        "timeline newest first"
    );
}

/// Stage requirements refuse a move with a typed error naming the requirement.
pub async fn check_stage_requirements(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut np = NewPipeline::seed_default();
    np.name = "Guarded".into();
    np.is_default = false;
    np.stages[3] = NewStage::open("Offer", 50).requiring(Requirement::Field {
        field: crate::pipeline::LeadField::ExpectedRevenue,
    });
    np.stages[4] = NewStage::open("Negotiation", 70).requiring(Requirement::RequestDone {
        kind: "quotation".into(),
    });
    let p = w.crm.create_pipeline(&w.ctx, np).await.unwrap();
    let partner = w.partner("Guarded Partner").await;
    let mut n = NewLead::for_partner(partner, "Guarded lead");
    n.pipeline = Some(p.id);
    let lead = w.crm.enter_lead(&w.ctx, n).await.unwrap().record;
    let offer = p.stage_named("Offer").unwrap().id;
    let nego = p.stage_named("Negotiation").unwrap().id;
    let e = w
        .act(lead.id, LeadCommand::MoveTo { stage: offer })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transition(TransitionError::UnmetRequirement { stage, .. }) if stage == "Offer"),
        "{e:?}"
    );
    w.act(
        lead.id,
        LeadCommand::Update(LeadPatch {
            expected_revenue: Some(Some(eur("5000"))),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    w.act(lead.id, LeadCommand::MoveTo { stage: offer })
        .await
        .unwrap();
    let e = w
        .act(lead.id, LeadCommand::MoveTo { stage: nego })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Transition(TransitionError::UnmetRequirement { .. })
        ),
        "{e:?}"
    );
    let r = w
        .crm
        .open_request(
            &w.ctx,
            NewRequest::on_lead(lead.id, "Send quotation", w.agent).of_kind("quotation"),
        )
        .await
        .unwrap()
        .record;
    w.crm
        .change_request(
            &w.ctx,
            r.id,
            1,
            RequestCommand::SetStatus {
                status: RequestStatus::Done,
            },
        )
        .await
        .unwrap();
    let l = w
        .act(lead.id, LeadCommand::MoveTo { stage: nego })
        .await
        .unwrap();
    assert_eq!(l.stage, nego);
}

/// Amounts round-trip exactly and board sums are exact, per currency.
pub async fn check_money_is_exact(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w.lead("A", Some("0.1")).await;
    let b = w.lead("B", Some("0.2")).await;
    let p = w.partner("Lei").await;
    let ron = w
        .crm
        .enter_lead(
            &w.ctx,
            NewLead::for_partner(p, "C")
                .with_revenue(Money::parse("1234567890.1234", "RON").unwrap()),
        )
        .await
        .unwrap()
        .record;
    assert_eq!(
        store.lead(w.tenant, a.id).await.unwrap().expected_revenue,
        Some(eur("0.1"))
    );
    assert_eq!(
        store
            .lead(w.tenant, ron.id)
            .await
            .unwrap()
            .expected_revenue
            .unwrap()
            .amount(),
        Decimal::from_str("1234567890.1234").unwrap()
    );
    let board = store.board(w.tenant, w.pipeline.id).await.unwrap();
    let record = &board.columns[0];
    assert_eq!(record.count, 3);
    let eur_c = Currency::parse("EUR").unwrap();
    let t = record.totals.iter().find(|t| t.currency == eur_c).unwrap();
    assert_eq!(t.expected, Decimal::from_str("0.3").unwrap());
    assert_eq!(t.weighted, Decimal::from_str("0.03").unwrap());
    let r = record
        .totals
        .iter()
        .find(|t| t.currency.code() == "RON")
        .unwrap();
    assert_eq!(r.weighted, Decimal::from_str("123456789.01234").unwrap());
    assert_eq!(
        record.totals.len(),
        2,
        "currencies are never summed together"
    );
    let _ = b;
}

/// The board has a column per stage in order, counts open and won leads, and leaves lost ones out.
pub async fn check_board(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let l1 = w.lead("One", Some("100")).await;
    let l2 = w.lead("Two", Some("200")).await;
    let l3 = w.lead("Three", Some("300")).await;
    let _l4 = w.lead("Four", None).await;
    w.act(
        l1.id,
        LeadCommand::MoveTo {
            stage: w.stage("Offer"),
        },
    )
    .await
    .unwrap();
    w.act(l2.id, LeadCommand::Win).await.unwrap();
    w.act(
        l3.id,
        LeadCommand::Lose {
            reason: Some(w.reasons[1].id),
            competitor: None,
            note: None,
        },
    )
    .await
    .unwrap();
    let b = w.crm.board(w.tenant, w.pipeline.id).await.unwrap();
    let names: Vec<_> = b.columns.iter().map(|c| c.name.as_str()).collect();
    let seeded: Vec<_> = w
        .pipeline
        .stages()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names, seeded,
        "one column per stage of the seed pipeline, in order"
    );
    let counts: Vec<_> = b.columns.iter().map(|c| c.count).collect();
    assert_eq!(counts, [1, 0, 0, 1, 0, 1]);
    assert_eq!(b.columns[3].totals[0].weighted, Decimal::from(50));
    assert_eq!(b.columns[5].totals[0].expected, Decimal::from(200));
    assert!(
        b.columns[0].totals.is_empty(),
        "a lead without revenue adds to the count only"
    );
}

/// Lead queries filter by pipeline, stage, status, owner, partner, tag and text.
pub async fn check_query_filters(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let acme = w
        .crm
        .create_partner(
            &w.ctx,
            NewPartner::company("Acme Utilaje").with_contact(
                "Ion",
                Some("ion@acme-utilaje.ro"),
                None,
            ),
        )
        .await
        .unwrap()
        .record;
    let mut n = NewLead::for_partner(acme.id, "Excavator rental")
        .with_tag("Heavy")
        .with_owner(w.manager);
    n.expected_revenue = Some(eur("900"));
    let x = w.crm.enter_lead(&w.ctx, n).await.unwrap().record;
    let y = w.lead("Office chairs", Some("50")).await;
    w.act(y.id, LeadCommand::Win).await.unwrap();
    let q = |f: &dyn Fn(&mut LeadQuery)| {
        let mut q = LeadQuery::default();
        f(&mut q);
        q
    };
    let ids = |p: crate::store::Page<crate::lead::Lead>| {
        p.items.into_iter().map(|l| l.id).collect::<Vec<_>>()
    };
    let run = |q: LeadQuery| async move { ids(store.query_leads(w.tenant, &q).await.unwrap()) };
    let (manager, contract) = (w.manager, w.stage("Contract"));
    let filters: [(&str, LeadQuery, Vec<LeadId>); 9] = [
        ("tag", q(&|q| q.tag = Some("heavy".into())), vec![x.id]),
        (
            "status",
            q(&|q| q.status = Some(StatusKind::Won)),
            vec![y.id],
        ),
        ("owner", q(&|q| q.owner = Some(manager)), vec![x.id]),
        ("partner", q(&|q| q.partner = Some(acme.id)), vec![x.id]),
        ("stage", q(&|q| q.stage = Some(contract)), vec![y.id]),
        (
            "title, case-insensitive",
            q(&|q| q.text = Some("EXCAV".into())),
            vec![x.id],
        ),
        (
            "partner name",
            q(&|q| q.text = Some("utilaje".into())),
            vec![x.id],
        ),
        (
            "contact e-mail",
            q(&|q| q.text = Some("ion@acme".into())),
            vec![x.id],
        ),
        (
            "LIKE wildcards are literal",
            q(&|q| q.text = Some("100%_".into())),
            Vec::new(),
        ),
    ];
    for (what, query, want) in filters {
        assert_eq!(run(query).await, want, "{what}");
    }
    let pipeline = w.pipeline.id;
    assert_eq!(run(q(&|q| q.pipeline = Some(pipeline))).await.len(), 2);
}

/// A lead's score: stored with its reasons, read back exactly, `lead_scored` in its timeline; the same score again
/// changes nothing; a new one bumps the version but not `updated_at`; above 100, or on a closed lead, is refused and
/// writes nothing; another tenant's lead reads as not found.
pub async fn check_lead_scores(store: &Arc<dyn Store>) {
    use crate::lead::{LeadScore, ScoreReason};
    let w = World::new(store).await;
    let lead = w.lead("Scored", Some("1000")).await;
    w.tick(5);
    let score = |value: u8, c: i64| LeadScore {
        value,
        reasons: vec![
            ScoreReason {
                feature: "past purchases".into(),
                contribution: Decimal::new(c, 2),
            },
            ScoreReason {
                feature: "not industry: retail".into(),
                contribution: Decimal::new(-37, 2),
            },
        ],
        scored_at: w.clock.now(),
    };
    let first = w
        .act(lead.id, LeadCommand::Score(score(82, 131)))
        .await
        .unwrap();
    assert_eq!(first.version, lead.version + 1);
    assert_eq!(
        first.updated_at, lead.updated_at,
        "a score is not work on the lead"
    );
    let read = store.lead(w.tenant, lead.id).await.unwrap();
    assert_eq!(read.score(), Some(&score(82, 131)));
    assert_eq!(read, first);
    // The same score later changes nothing.
    w.tick(60);
    let again = w
        .act(lead.id, LeadCommand::Score(score(82, 131)))
        .await
        .unwrap();
    assert_eq!(again.version, first.version);
    assert_eq!(store.lead(w.tenant, lead.id).await.unwrap(), first);
    // A new one replaces it.
    let second = w
        .act(lead.id, LeadCommand::Score(score(64, 90)))
        .await
        .unwrap();
    assert_eq!(second.version, first.version + 1);
    assert_eq!(second.score().map(|s| s.value), Some(64));
    let timeline = w
        .crm
        .timeline(w.tenant, TimelineOf::Lead(lead.id), &PageRequest::first(50))
        .await
        .unwrap();
    let scored: Vec<(u8, Option<u8>)> = timeline
        .items
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::LeadScored { value, previous } => Some((value, previous)),
            _ => None,
        })
        .collect();
    assert_eq!(scored, vec![(64, Some(82)), (82, None)], "newest first");
    // Bad scores: above 100, too many reasons, an empty feature; nothing written.
    let e = w
        .act(lead.id, LeadCommand::Score(score(101, 0)))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("score.value"), "{e}");
    let mut many = score(50, 0);
    many.reasons = vec![many.reasons[0].clone(); LeadScore::MAX_REASONS + 1];
    let e = w.act(lead.id, LeadCommand::Score(many)).await.unwrap_err();
    assert_eq!(e.field(), Some("score.reasons"), "{e}");
    let mut blank = score(50, 0);
    blank.reasons[0].feature = " ".into();
    let e = w.act(lead.id, LeadCommand::Score(blank)).await.unwrap_err();
    assert_eq!(e.field(), Some("score.reasons.feature"), "{e}");
    assert_eq!(store.lead(w.tenant, lead.id).await.unwrap(), second);
    // A closed lead is not scored.
    let won = w.act(lead.id, LeadCommand::Win).await.unwrap();
    let e = w
        .act(lead.id, LeadCommand::Score(score(99, 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Transition(TransitionError::NotOpen { .. })),
        "{e}"
    );
    assert_eq!(store.lead(w.tenant, lead.id).await.unwrap(), won);
    assert_eq!(
        won.score(),
        second.score(),
        "a won lead keeps its last score"
    );
    // Another tenant cannot score it.
    let other = Context::user(TenantId::new(), UserId::new());
    let e = w
        .crm
        .transition(
            &other,
            lead.id,
            won.version,
            LeadCommand::Score(score(1, 0)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
}

/// Keyset pagination returns every lead once, in order, for every sort, even with inserts between pages.
pub async fn check_keyset_pagination(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut all = Vec::new();
    for i in 0..7 {
        let rev = if i % 3 == 0 {
            None
        } else {
            Some(format!("{}", (i * 37) % 5 * 10))
        };
        let mut lead = w.lead(&format!("Lead {i}"), rev.as_deref()).await;
        // Scores with a tie (leads 1 and 4 score 40), one lead without (last by score).
        if i != 3 {
            let score = crate::lead::LeadScore {
                value: [90, 40, 75, 0, 40, 100, 5][i],
                reasons: Vec::new(),
                scored_at: w.clock.now(),
            };
            lead = w.act(lead.id, LeadCommand::Score(score)).await.unwrap();
        }
        all.push(lead);
        if i % 2 == 0 {
            w.tick(1);
        }
    }
    for sort in [
        LeadSort::CreatedDesc,
        LeadSort::CreatedAsc,
        LeadSort::UpdatedDesc,
        LeadSort::ExpectedRevenueDesc,
        LeadSort::ScoreDesc,
    ] {
        let mut expected = all.clone();
        expected.sort_by(|a, b| {
            let o = (sort.key(a), a.id).cmp(&(sort.key(b), b.id));
            if sort.descending() {
                o.reverse()
            } else {
                o
            }
        });
        let mut q = LeadQuery {
            sort,
            page: PageRequest::first(3),
            ..Default::default()
        };
        let mut got = Vec::new();
        loop {
            let page = store.query_leads(w.tenant, &q).await.unwrap();
            assert!(page.items.len() <= 3);
            got.extend(page.items.iter().map(|l| l.id));
            match page.next {
                Some(c) => q.page.after = Some(c),
                None => break,
            }
        }
        assert_eq!(
            got,
            expected.iter().map(|l| l.id).collect::<Vec<_>>(),
            "{sort:?}"
        );
    }
    // Inserting after the first page does not repeat or skip the others (newest-first: the new lead comes first).
    let mut q = LeadQuery {
        sort: LeadSort::CreatedAsc,
        page: PageRequest::first(4),
        ..Default::default()
    };
    let p1 = store.query_leads(w.tenant, &q).await.unwrap();
    w.tick(10);
    let newer = w.lead("Late", None).await;
    q.page.after = p1.next.clone();
    let p2 = store.query_leads(w.tenant, &q).await.unwrap();
    assert_eq!(p1.items.len() + p2.items.len(), all.len() + 1);
    assert_eq!(p2.items.last().unwrap().id, newer.id);
    assert!(p2.next.is_none());
    let bad = LeadQuery {
        page: PageRequest::first(0),
        ..Default::default()
    };
    assert_eq!(
        w.crm.query_leads(w.tenant, &bad).await.unwrap_err().field(),
        Some("page.limit")
    );
    let bad = LeadQuery {
        page: PageRequest {
            limit: 5,
            after: Some(crate::store::Cursor::from_string("garbage".into())),
        },
        ..Default::default()
    };
    assert_eq!(
        store.query_leads(w.tenant, &bad).await.unwrap_err().field(),
        Some("page.after")
    );
}

/// The timers' filters, pushed down: leads last changed before a cutoff (`updated_before`, strictly) and with an
/// expected close date before a day (`close_before`), requests opened before a cutoff (`opened_before`) and due in a
/// window (`due_after`, strictly, and `due_before`; a request without a due date is due after nothing), combined
/// with the other filters, in the query's order and across pages.
pub async fn check_timer_queries(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let t0 = w.clock.now();
    let mut leads = Vec::new();
    for (title, close) in [
        ("A", Some(-1)),
        ("D", Some(-3)),
        ("B", Some(0)),
        ("C", None),
    ] {
        let p = w.partner(&format!("{title} Partner")).await;
        let mut n = NewLead::for_partner(p, title).with_owner(w.agent);
        n.expected_close = close.map(|d| t0.date_naive() + Duration::days(d));
        leads.push(w.crm.enter_lead(&w.ctx, n).await.unwrap().record);
        w.clock.advance(Duration::days(1));
    }
    let (a, d, c) = (&leads[0], &leads[1], &leads[3]);
    // D is won at t0 + 4 days: changed after the cutoff, and not open.
    w.act(d.id, LeadCommand::Win).await.unwrap();
    let titles =
        |items: Vec<crate::lead::Lead>| items.into_iter().map(|l| l.title).collect::<Vec<_>>();
    let idle = LeadQuery {
        status: Some(StatusKind::Open),
        updated_before: Some(c.updated_at),
        sort: LeadSort::UpdatedDesc,
        ..Default::default()
    };
    let got = store.query_leads(w.tenant, &idle).await.unwrap().items;
    assert_eq!(
        titles(got),
        ["B", "A"],
        "open and changed before C was entered"
    );
    let all = LeadQuery {
        status: None,
        updated_before: Some(w.clock.now() + Duration::days(1)),
        ..idle.clone()
    };
    let got = store.query_leads(w.tenant, &all).await.unwrap().items;
    assert_eq!(titles(got), ["D", "C", "B", "A"]);
    // Page by page, one at a time.
    let mut q = LeadQuery {
        page: PageRequest::first(1),
        ..idle.clone()
    };
    let mut paged = Vec::new();
    loop {
        let page = store.query_leads(w.tenant, &q).await.unwrap();
        paged.extend(titles(page.items));
        match page.next {
            Some(cur) => q.page.after = Some(cur),
            None => break,
        }
    }
    assert_eq!(paged, ["B", "A"]);
    let past_close = LeadQuery {
        status: Some(StatusKind::Open),
        close_before: Some(t0.date_naive()),
        ..Default::default()
    };
    let got = store
        .query_leads(w.tenant, &past_close)
        .await
        .unwrap()
        .items;
    assert_eq!(
        titles(got),
        ["A"],
        "B closes today, C has no date, D is won"
    );
    let any_status = LeadQuery {
        status: None,
        sort: LeadSort::CreatedAsc,
        ..past_close.clone()
    };
    let got = store
        .query_leads(w.tenant, &any_status)
        .await
        .unwrap()
        .items;
    assert_eq!(titles(got), ["A", "D"]);

    // Requests on A, opened an hour apart: r1 due at +5 h, r2 without a due date, r3 due at +74 h, r4 (done) at +4 h.
    let now = w.clock.now();
    let mut reqs = Vec::new();
    for (title, due) in [
        ("r1", Some(5)),
        ("r2", None),
        ("r3", Some(72)),
        ("r4", Some(1)),
    ] {
        let mut n = NewRequest::on_lead(a.id, title, w.agent);
        n.due = due.map(|h| w.clock.now() + Duration::hours(h));
        reqs.push(w.crm.open_request(&w.ctx, n).await.unwrap().record);
        w.clock.advance(Duration::hours(1));
    }
    w.crm
        .change_request(
            &w.ctx,
            reqs[3].id,
            1,
            RequestCommand::SetStatus {
                status: RequestStatus::Done,
            },
        )
        .await
        .unwrap();
    let names = |items: Vec<crate::request::Request>| {
        items.into_iter().map(|r| r.title).collect::<Vec<_>>()
    };
    let opened = RequestQuery {
        active_only: true,
        opened_before: Some(reqs[2].created_at),
        ..Default::default()
    };
    let got = store.query_requests(w.tenant, &opened).await.unwrap().items;
    assert_eq!(
        names(got),
        ["r1", "r2"],
        "opened before r3, due order, no due date last"
    );
    let window = RequestQuery {
        active_only: true,
        due_after: Some(now + Duration::hours(4)),
        due_before: Some(now + Duration::days(4)),
        ..Default::default()
    };
    let got = store.query_requests(w.tenant, &window).await.unwrap().items;
    assert_eq!(names(got), ["r1", "r3"]);
    let strictly_after = RequestQuery {
        due_after: Some(now + Duration::hours(5)),
        ..window.clone()
    };
    let got = store
        .query_requests(w.tenant, &strictly_after)
        .await
        .unwrap()
        .items;
    assert_eq!(names(got), ["r3"]);
    let after_only = RequestQuery {
        active_only: false,
        due_after: Some(now),
        due_before: None,
        ..window
    };
    let got = store
        .query_requests(w.tenant, &after_only)
        .await
        .unwrap()
        .items;
    assert_eq!(
        names(got),
        ["r4", "r1", "r3"],
        "with the done one; never the one without a due date"
    );
}

/// Requests by assignee come overdue first, those without a due time last; filters narrow them.
pub async fn check_requests_overdue_first(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let lead = w.lead("Req", None).await;
    let now = w.clock.now();
    let mk = |title: &str, due: Option<i64>| {
        let mut r = NewRequest::on_lead(lead.id, title, w.agent);
        r.due = due.map(|h| now + Duration::hours(h));
        r
    };
    let later = w
        .crm
        .open_request(&w.ctx, mk("later", Some(48)))
        .await
        .unwrap()
        .record;
    let none = w
        .crm
        .open_request(&w.ctx, mk("whenever", None))
        .await
        .unwrap()
        .record;
    let soon = w
        .crm
        .open_request(&w.ctx, mk("soon", Some(1)))
        .await
        .unwrap()
        .record;
    let done = w
        .crm
        .open_request(&w.ctx, mk("done", Some(2)))
        .await
        .unwrap()
        .record;
    w.crm
        .change_request(
            &w.ctx,
            done.id,
            1,
            RequestCommand::SetStatus {
                status: RequestStatus::Done,
            },
        )
        .await
        .unwrap();
    w.clock.advance(Duration::hours(3));
    let q = RequestQuery {
        assignee: Some(w.agent),
        active_only: true,
        ..Default::default()
    };
    let got: Vec<_> = w
        .crm
        .query_requests(w.tenant, &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(got, vec![soon.id, later.id, none.id]);
    let overdue = RequestQuery {
        assignee: Some(w.agent),
        active_only: true,
        due_before: Some(w.clock.now()),
        ..Default::default()
    };
    let got: Vec<_> = store
        .query_requests(w.tenant, &overdue)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(got, vec![soon.id]);
    let mut paged = RequestQuery {
        lead: Some(lead.id),
        page: PageRequest::first(1),
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let p = store.query_requests(w.tenant, &paged).await.unwrap();
        all.extend(p.items.into_iter().map(|r| r.id));
        match p.next {
            Some(c) => paged.page.after = Some(c),
            None => break,
        }
    }
    assert_eq!(all, vec![soon.id, done.id, later.id, none.id]);
    assert!(store
        .request(w.tenant, done.id)
        .await
        .unwrap()
        .closed_at
        .is_some());
}

/// Comments come newest first; a partner's timeline includes its leads' and requests' events.
pub async fn check_comments_and_timelines(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let lead = w.lead("Talkative", None).await;
    for i in 0..3 {
        w.tick(1);
        w.crm
            .comment(&w.ctx, CommentTarget::Lead(lead.id), &format!("note {i}"))
            .await
            .unwrap();
    }
    let c = w
        .crm
        .comments(
            w.tenant,
            CommentTarget::Lead(lead.id),
            &PageRequest::first(2),
        )
        .await
        .unwrap();
    assert_eq!(
        c.items.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["note 2", "note 1"]
    );
    let c2 = w
        .crm
        .comments(
            w.tenant,
            CommentTarget::Lead(lead.id),
            &PageRequest {
                limit: 2,
                after: c.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        c2.items.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["note 0"]
    );
    assert!(c2.next.is_none());
    let r = w
        .crm
        .open_request(&w.ctx, NewRequest::on_lead(lead.id, "Visit", w.agent))
        .await
        .unwrap()
        .record;
    w.crm
        .comment(&w.ctx, CommentTarget::Request(r.id), "on the request")
        .await
        .unwrap();
    w.crm
        .comment(
            &w.ctx,
            CommentTarget::Partner(lead.partner),
            "on the partner",
        )
        .await
        .unwrap();
    let pt = w
        .crm
        .timeline(
            w.tenant,
            TimelineOf::Partner(lead.partner),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    let kinds: Vec<_> = pt.items.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "comment_added").count(), 5);
    assert!(
        kinds.contains(&"lead_entered")
            && kinds.contains(&"partner_created")
            && kinds.contains(&"request_opened")
    );
    let rt = w
        .crm
        .timeline(
            w.tenant,
            TimelineOf::Request(r.id),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(rt.items.len(), 2);
    assert!(
        pt.items
            .windows(2)
            .all(|p| (p[0].at, p[0].id) > (p[1].at, p[1].id)),
        "newest first"
    );
    let e = w
        .crm
        .comment(&w.ctx, CommentTarget::Lead(LeadId::new()), "ghost")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_eq!(
        w.crm
            .comment(&w.ctx, CommentTarget::Lead(lead.id), " ")
            .await
            .unwrap_err()
            .field(),
        Some("body")
    );
}

/// A new company `name` with the host's code `code`.
async fn coded(w: &World, name: &str, code: &str) -> Result<crate::partner::Partner, Error> {
    let new = NewPartner::company(name).with_host_ref(code);
    w.crm.create_partner(&w.ctx, new).await.map(|e| e.record)
}

/// Host references: a partner is found by the host's code; the code is unique in the tenant (refused by field in
/// the service, and by the store's unique index when two writes race), free in another tenant, which does not see
/// this one's; changing or clearing it moves the lookup; a bad code is refused by field.
pub async fn check_partner_host_refs(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let t = w.tenant;
    let acme = coded(&w, "Acme SRL", " C-0042 ").await.expect("acme");
    assert_eq!(acme.host_ref(), Some("C-0042"), "trimmed");
    let found = w.crm.partner_by_ref(t, "C-0042").await.expect("by ref");
    assert_eq!(found, acme);
    assert_eq!(store.partner(t, acme.id).await.expect("read"), acme, "kept");
    // Taken in the tenant: refused by field, nothing written.
    let taken = coded(&w, "Globex", "C-0042").await.unwrap_err();
    assert_eq!(taken.field(), Some("host_ref"), "{taken:?}");
    // Racing past the service's check, the store's unique index refuses the second row.
    let racer = NewPartner::company("Racer SRL").with_host_ref("C-0042");
    super::quality::race_partner(&w, store, racer, "partner").await;
    // Another tenant: the same code is free there, and this tenant's partner is not found by it.
    let other = World::new(store).await;
    assert!(matches!(
        other.crm.partner_by_ref(other.tenant, "C-0042").await,
        Err(Error::NotFound { .. })
    ));
    let theirs = coded(&other, "Theirs", "C-0042")
        .await
        .expect("free in another tenant");
    assert_eq!(
        w.crm.partner_by_ref(t, "C-0042").await.expect("ours").id,
        acme.id
    );
    assert_eq!(
        other
            .crm
            .partner_by_ref(other.tenant, "C-0042")
            .await
            .expect("theirs")
            .id,
        theirs.id
    );
    // Changing the code moves the lookup; the old code is free again; clearing it leaves none.
    let patch = |r: Option<&str>| PartnerPatch {
        host_ref: Some(r.map(str::to_string)),
        ..PartnerPatch::default()
    };
    let moved = w
        .crm
        .update_partner(&w.ctx, acme.id, acme.version, patch(Some("C-0043")))
        .await
        .expect("moved")
        .record;
    assert!(matches!(
        w.crm.partner_by_ref(t, "C-0042").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        w.crm
            .partner_by_ref(t, "C-0043")
            .await
            .expect("new code")
            .id,
        acme.id
    );
    let globex = coded(&w, "Globex", "C-0042")
        .await
        .expect("the old code is free");
    let clash = w
        .crm
        .update_partner(&w.ctx, globex.id, globex.version, patch(Some("C-0043")))
        .await
        .unwrap_err();
    assert_eq!(clash.field(), Some("host_ref"));
    let cleared = w
        .crm
        .update_partner(&w.ctx, acme.id, moved.version, patch(None))
        .await
        .expect("cleared")
        .record;
    assert_eq!(cleared.host_ref(), None);
    assert!(matches!(
        w.crm.partner_by_ref(t, "C-0043").await,
        Err(Error::NotFound { .. })
    ));
    // Bad codes, by field.
    let long = "x".repeat(crate::partner::MAX_HOST_REF + 1);
    for bad in [long.as_str(), "a\u{0}b"] {
        let e = coded(&w, "Bad", bad).await.unwrap_err();
        assert_eq!(e.field(), Some("host_ref"), "{bad:?}");
        assert_eq!(
            w.crm.partner_by_ref(t, bad).await.unwrap_err().field(),
            Some("host_ref")
        );
    }
    assert_eq!(
        w.crm.partner_by_ref(t, " ").await.unwrap_err().field(),
        Some("host_ref")
    );
    // A lead for a partner named by the host's code: match-or-create finds it by the code; a new one may not take it.
    let named = || NewPartner::company("Globex Romania").with_host_ref("C-0042");
    let matched = w
        .crm
        .enter_lead(
            &w.ctx,
            NewLead::new(
                crate::lead::LeadPartner::MatchOrCreate { partner: named() },
                "Renewal",
            ),
        )
        .await
        .expect("lead");
    assert_eq!(matched.record.partner, globex.id, "found by the code");
    assert!(matched
        .events
        .iter()
        .all(|e| !matches!(e.kind, EventKind::PartnerCreated { .. })));
    let refused = w
        .crm
        .enter_lead(
            &w.ctx,
            NewLead::new(crate::lead::LeadPartner::New { partner: named() }, "Other"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.field(), Some("host_ref"), "{refused:?}");
}

/// Duplicate candidates are found by e-mail, domain, phone, tax id and name, with reasons, within the tenant only.
pub async fn check_duplicates(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let existing = w
        .crm
        .create_partner(
            &w.ctx,
            NewPartner::company("S.C. Acme Distributie S.R.L.")
                .with_contact("Ana", Some("ana@acme.ro"), Some("0721 234 567"))
                .with_tax_id("RO 998877"),
        )
        .await
        .unwrap()
        .record;
    let probe = NewPartner::company("ACME Distributie SA")
        .with_contact("Ana P", Some("Ana+crm@ACME.ro"), Some("+40 721 234 567"))
        .with_tax_id("998877");
    let d = w.crm.find_duplicates(w.tenant, &probe).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].partner, existing.id);
    let kinds: Vec<_> = d[0].reasons.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            MatchKind::Email,
            MatchKind::Domain,
            MatchKind::E164,
            MatchKind::TaxId,
            MatchKind::Name
        ]
    );
    assert_eq!(d[0].score, 100, "the same e-mail and tax id");
    let entered = w.crm.create_partner(&w.ctx, probe.clone()).await.unwrap();
    assert_eq!(
        entered.duplicates.len(),
        1,
        "creating reports the candidate"
    );
    let other = World::new(store).await;
    assert!(
        other
            .crm
            .find_duplicates(other.tenant, &probe)
            .await
            .unwrap()
            .is_empty(),
        "no match across tenants"
    );
    let free = NewPartner::person("Someone").with_contact("S", Some("someone@gmail.com"), None);
    w.crm.create_partner(&w.ctx, free).await.unwrap();
    let probe2 =
        NewPartner::person("Other Person").with_contact("O", Some("other@gmail.com"), None);
    assert!(
        w.crm
            .find_duplicates(w.tenant, &probe2)
            .await
            .unwrap()
            .is_empty(),
        "free-mail domains do not match"
    );
    // Match-or-create reuses the one strong match.
    let n = NewLead::new(
        crate::lead::LeadPartner::MatchOrCreate {
            partner: NewPartner::company("Whatever").with_tax_id("RO998877X"),
        },
        "x",
    );
    let _ = n;
    let n = NewLead::new(
        crate::lead::LeadPartner::MatchOrCreate {
            partner: NewPartner::company("Acme New Name").with_contact(
                "Z",
                Some("ana@acme.ro"),
                None,
            ),
        },
        "Repeat business",
    );
    let e = w.crm.enter_lead(&w.ctx, n).await;
    assert!(e.is_ok(), "{e:?}");
}

/// The event feed returns a tenant's events in commit order with increasing positions.
pub async fn check_events_since(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let lead = w.lead("Feed", None).await;
    w.act(lead.id, LeadCommand::Win).await.unwrap();
    let all = w.crm.events_since(w.tenant, 0, 1000).await.unwrap();
    let kinds: Vec<_> = all.iter().map(|(_, e)| e.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "partner_created",
            "lead_entered",
            "lead_stage_moved",
            "lead_won"
        ]
    );
    assert!(all.windows(2).all(|p| p[0].0 < p[1].0));
    let rest = w.crm.events_since(w.tenant, all[1].0, 1000).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(w.crm.events_since(w.tenant, 0, 2).await.unwrap().len(), 2);
    // A position at or beyond the end gives nothing: it never wraps round to the start of the feed.
    let last = all[3].0;
    for after in [
        last,
        last + 1,
        i64::MAX as u64,
        i64::MAX as u64 + 1,
        u64::MAX - 1,
        u64::MAX,
    ] {
        let got = w.crm.events_since(w.tenant, after, 1000).await.unwrap();
        assert!(got.is_empty(), "events after position {after}: {got:?}");
    }
}

/// Bulk ingest writes everything in one transaction and refuses updates.
pub async fn check_ingest(store: &Arc<dyn Store>) {
    let w = World::new(store).await;
    let now = w.clock.now();
    let mut cs = ChangeSet::new();
    let mut leads = Vec::new();
    for i in 0..50 {
        let p = NewPartner::company(format!("Bulk {i}"))
            .build(w.tenant, now)
            .unwrap();
        let (l, _) = NewLead::for_partner(p.id, format!("Bulk lead {i}"))
            .with_revenue(eur(&format!("{i}.5")))
            .build(w.tenant, p.id, &w.pipeline, now)
            .unwrap();
        cs.push(Write::InsertPartner {
            keys: crate::dedupe::keys_of(&p),
            partner: p,
        });
        leads.push(l.clone());
        cs.push(Write::InsertLead(l));
    }
    assert_eq!(store.ingest(w.tenant, cs).await.unwrap(), 100);
    for l in &leads {
        assert_eq!(&store.lead(w.tenant, l.id).await.unwrap(), l);
    }
    let b = store.board(w.tenant, w.pipeline.id).await.unwrap();
    assert_eq!(b.columns[0].count, 50);
    assert_eq!(
        b.columns[0].totals[0].expected,
        Decimal::from_str("1250").unwrap()
    );
    let mut upd = leads[0].clone();
    upd.version = 2;
    let mut cs = ChangeSet::new();
    cs.push(Write::UpdateLead {
        lead: upd,
        expected_version: 1,
    });
    assert_eq!(
        store.ingest(w.tenant, cs).await.unwrap_err().field(),
        Some("writes")
    );
    let mut cs = ChangeSet::new();
    let p = NewPartner::company("Bulk fail")
        .build(w.tenant, now)
        .unwrap();
    cs.push(Write::InsertPartner {
        keys: vec![],
        partner: p.clone(),
    });
    cs.push(Write::InsertLead(leads[1].clone()));
    assert!(store.ingest(w.tenant, cs).await.is_err());
    assert!(
        is_not_found(&store.partner(w.tenant, p.id).await),
        "ingest is atomic"
    );
}
