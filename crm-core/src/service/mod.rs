//! The service: validation → pure transition → one storage transaction → events handed on.
//!
//! [`CrmService`] holds no I/O of its own: it loads through the [`Store`], decides with the pure functions of this
//! crate, commits one [`ChangeSet`] per operation (the change, its events — which are the activity log — and its
//! stage-history step, plus whatever the [`CommitHook`]s add, such as the rules' outbox rows) and then hands the
//! committed events to every [`EventSubscriber`].

mod commerce;
mod rules;

pub use commerce::{CommerceService, DocumentOutcome, OutcomeResult};
pub use rules::{decision_writes, RulesHook};

use crate::actor::Context;
use crate::dedupe::{self, DuplicateCandidate};
use crate::error::{Error, Result};
use crate::event::{CommentTarget, DomainEvent, EventKind, StageHistoryEntry, Subject};
use crate::id::{LeadId, PartnerId, PipelineId, RequestId, TenantId};
use crate::lead::{self, Facts, Lead, LeadCommand, LeadPartner, NewLead, StatusKind};
use crate::partner::{NewPartner, Partner, PartnerPatch};
use crate::pipeline::{LostReason, NewPipeline, Pipeline, Requirement};
use crate::request::{Comment, NewRequest, Request, RequestCommand};
use crate::store::StoreExt;
use crate::store::{
    Board, ChangeSet, Funnel, LeadQuery, Page, PageRequest, RequestQuery, Store, TimelineOf, Write,
};
use crate::time::{Clock, SystemClock, Timestamp};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

/// Receives the events of every committed change, after the commit.
///
/// Delivery is in-process and best effort (a subscriber that fails must handle it itself); for durable delivery
/// read [`Store::events_since`] or use the rules' transactional outbox.
#[async_trait]
pub trait EventSubscriber: Send + Sync + Debug {
    /// Called once per committed change with its events, in order.
    async fn publish(&self, events: &[DomainEvent]);
}

/// Sees every change set before it is committed, and may add writes to it (in the same transaction) or refuse it.
///
/// The rules engine uses this to evaluate guards and to write the actions it decides into the outbox atomically
/// with the change that triggered them.
pub trait CommitHook: Send + Sync + Debug {
    /// Inspects or extends `changes`; an error aborts the whole operation and nothing is written.
    fn before_commit(&self, ctx: &Context, changes: &mut ChangeSet) -> Result<()>;

    /// Like [`CommitHook::before_commit`], with the records the service loaded for the change (the lead's partner,
    /// the request's lead, …) that the change set does not write. The service calls this one; the default forwards
    /// to `before_commit`.
    fn before_commit_loaded(
        &self,
        ctx: &Context,
        changes: &mut ChangeSet,
        loaded: &Loaded,
    ) -> Result<()> {
        let _ = loaded;
        self.before_commit(ctx, changes)
    }
}

/// Records the service read while deciding a change and does not write: context for [`CommitHook`]s (the rules
/// see the partner of a lead that moved, for example). Never persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Leads read.
    pub leads: Vec<Lead>,
    /// Partners read.
    pub partners: Vec<Partner>,
    /// Requests read.
    pub requests: Vec<Request>,
}

/// A record and the events its change produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    /// The record after the change.
    pub record: T,
    /// The events committed with it.
    pub events: Vec<DomainEvent>,
}

/// A newly entered record, with the duplicates it may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered<T> {
    /// The record.
    pub record: T,
    /// Partners that look like the same one, each with its reasons.
    pub duplicates: Vec<DuplicateCandidate>,
    /// The events committed with it.
    pub events: Vec<DomainEvent>,
}

/// The engine's service API. Cheap to clone; share it.
#[derive(Debug, Clone)]
pub struct CrmService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hooks: Vec<Arc<dyn CommitHook>>,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
}

/// Builds a [`CrmService`].
#[derive(Debug, Default)]
pub struct CrmServiceBuilder {
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
    hooks: Vec<Arc<dyn CommitHook>>,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
}

impl CrmServiceBuilder {
    /// The store (required).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a commit hook.
    pub fn hook(mut self, hook: Arc<dyn CommitHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Adds an event subscriber.
    pub fn subscriber(mut self, s: Arc<dyn EventSubscriber>) -> Self {
        self.subscribers.push(s);
        self
    }

    /// Builds the service; fails when no store was given.
    pub fn build(self) -> Result<CrmService> {
        Ok(CrmService {
            store: self.store.ok_or_else(|| {
                Error::invalid("store", "a store is required: give one to the builder")
            })?,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            hooks: self.hooks,
            subscribers: self.subscribers,
        })
    }
}

impl CrmService {
    /// A builder.
    pub fn builder() -> CrmServiceBuilder {
        CrmServiceBuilder::default()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Commits a change set through the hooks, then publishes its events. Every write path ends here.
    ///
    /// When hooks are installed, the records the change set's events concern but do not write (the partner of a
    /// lead that moved, the lead of a request) are read first and handed to the hooks as [`Loaded`] context.
    pub async fn commit(&self, ctx: &Context, changes: ChangeSet) -> Result<Vec<DomainEvent>> {
        let loaded = if self.hooks.is_empty() {
            Loaded::default()
        } else {
            self.load_context(ctx.tenant, &changes).await?
        };
        self.commit_loaded(ctx, changes, &loaded).await
    }

    /// Reads the subjects of `changes`' events that it does not write itself.
    async fn load_context(&self, tenant: TenantId, changes: &ChangeSet) -> Result<Loaded> {
        let mut written = std::collections::BTreeSet::new();
        for w in &changes.writes {
            match w {
                Write::InsertLead(l) | Write::UpdateLead { lead: l, .. } => {
                    written.insert(*l.id.as_uuid())
                }
                Write::InsertPartner { partner: p, .. }
                | Write::UpdatePartner { partner: p, .. } => written.insert(*p.id.as_uuid()),
                Write::InsertRequest(r) | Write::UpdateRequest { request: r, .. } => {
                    written.insert(*r.id.as_uuid())
                }
                _ => false,
            };
        }
        let mut loaded = Loaded::default();

        for e in changes.events() {
            let s = e.subject;
            if let Some(id) = s.partner.filter(|id| written.insert(*id.as_uuid())) {
                loaded
                    .partners
                    .extend(found(self.store.partner(tenant, id).await)?);
            }
            if let Some(id) = s.lead.filter(|id| written.insert(*id.as_uuid())) {
                loaded
                    .leads
                    .extend(found(self.store.lead(tenant, id).await)?);
            }
            if let Some(id) = s.request.filter(|id| written.insert(*id.as_uuid())) {
                loaded
                    .requests
                    .extend(found(self.store.request(tenant, id).await)?);
            }
        }
        Ok(loaded)
    }

    /// [`CrmService::commit`] with the records the caller loaded, handed to the hooks as context.
    pub async fn commit_loaded(
        &self,
        ctx: &Context,
        mut changes: ChangeSet,
        loaded: &Loaded,
    ) -> Result<Vec<DomainEvent>> {
        for h in &self.hooks {
            h.before_commit_loaded(ctx, &mut changes, loaded)?;
        }
        let events: Vec<DomainEvent> = changes.events().cloned().collect();
        self.store.commit(ctx.tenant, changes).await?;
        if !events.is_empty() {
            for s in &self.subscribers {
                s.publish(&events).await;
            }
        }
        Ok(events)
    }

    fn event(
        &self,
        ctx: &Context,
        now: Timestamp,
        subject: Subject,
        kind: EventKind,
    ) -> DomainEvent {
        DomainEvent::new(ctx, now, subject, kind)
    }

    // ---------------------------------------------------------------- tenant set-up

    /// Gives a tenant the seed pipeline and lost reasons if it has no pipeline yet; returns its default pipeline.
    pub async fn setup_tenant(&self, ctx: &Context) -> Result<Pipeline> {
        let existing = self.store.pipelines(ctx.tenant).await?;
        if let Some(p) = existing.iter().find(|p| p.is_default).or(existing.first()) {
            return Ok(p.clone());
        }
        let now = self.clock.now();
        let pipeline = NewPipeline::seed_default().build(ctx.tenant, now)?;
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertPipeline(pipeline.clone()));
        if self.store.lost_reasons(ctx.tenant).await?.is_empty() {
            for r in LostReason::seed_defaults(ctx.tenant) {
                cs.push(Write::InsertLostReason(r));
            }
        }
        self.commit(ctx, cs).await?;
        Ok(pipeline)
    }

    /// Creates a pipeline.
    pub async fn create_pipeline(&self, ctx: &Context, input: NewPipeline) -> Result<Pipeline> {
        let p = input.build(ctx.tenant, self.clock.now())?;
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertPipeline(p.clone()));
        self.commit(ctx, cs).await?;
        Ok(p)
    }

    /// Adds a lost reason to the tenant's list.
    pub async fn add_lost_reason(&self, ctx: &Context, name: &str) -> Result<LostReason> {
        let r = LostReason::new(ctx.tenant, name)?;
        if self
            .store
            .lost_reasons(ctx.tenant)
            .await?
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&r.name))
        {
            return Err(Error::AlreadyExists {
                entity: "lost reason",
                key: r.name,
            });
        }
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertLostReason(r.clone()));
        self.commit(ctx, cs).await?;
        Ok(r)
    }

    /// The tenant's pipelines.
    pub async fn pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>> {
        self.store.pipelines(tenant).await
    }

    /// The tenant's lost reasons.
    pub async fn lost_reasons(&self, tenant: TenantId) -> Result<Vec<LostReason>> {
        self.store.lost_reasons(tenant).await
    }

    // ---------------------------------------------------------------- partners

    /// Partners that look like `probe`, each with the reasons it matched.
    pub async fn find_duplicates(
        &self,
        tenant: TenantId,
        probe: &NewPartner,
    ) -> Result<Vec<DuplicateCandidate>> {
        let keys = dedupe::keys_of_new(probe);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let matches = self.store.partners_by_keys(tenant, &keys).await?;
        let mut by: BTreeMap<PartnerId, DuplicateCandidate> = BTreeMap::new();
        for m in matches {
            let c = by.entry(m.partner).or_insert_with(|| DuplicateCandidate {
                partner: m.partner,
                name: m.name.clone(),
                reasons: Vec::new(),
            });
            if !c.reasons.contains(&m.key) {
                c.reasons.push(m.key);
            }
        }
        let mut out: Vec<_> = by.into_values().collect();
        for c in &mut out {
            c.reasons.sort();
        }
        out.sort_by(|a, b| {
            b.reasons
                .len()
                .cmp(&a.reasons.len())
                .then(a.partner.cmp(&b.partner))
        });
        Ok(out)
    }

    fn partner_writes(&self, ctx: &Context, p: &Partner, cs: &mut ChangeSet) {
        cs.push(Write::InsertPartner {
            partner: p.clone(),
            keys: dedupe::keys_of(p),
        });
        cs.push(Write::AppendEvent(self.event(
            ctx,
            p.created_at,
            Subject {
                partner: Some(p.id),
                ..Default::default()
            },
            EventKind::PartnerCreated {
                name: p.name.clone(),
            },
        )));
    }

    /// Creates a partner and reports the duplicates it may have (it is created anyway: the caller decides).
    pub async fn create_partner(
        &self,
        ctx: &Context,
        input: NewPartner,
    ) -> Result<Entered<Partner>> {
        let duplicates = self.find_duplicates(ctx.tenant, &input).await?;
        let p = input.build(ctx.tenant, self.clock.now())?;
        let mut cs = ChangeSet::new();
        self.partner_writes(ctx, &p, &mut cs);
        let events = self.commit(ctx, cs).await?;
        Ok(Entered {
            record: p,
            duplicates,
            events,
        })
    }

    /// Changes a partner's fields.
    pub async fn update_partner(
        &self,
        ctx: &Context,
        id: PartnerId,
        expected_version: u64,
        patch: PartnerPatch,
    ) -> Result<Outcome<Partner>> {
        let current = self.store.partner(ctx.tenant, id).await?;
        check_version("partner", id, expected_version, current.version)?;
        let now = self.clock.now();
        let (next, changes) = current.patched(patch, now)?;
        if changes.is_empty() {
            return Ok(Outcome {
                record: current,
                events: Vec::new(),
            });
        }
        let mut cs = ChangeSet::new();
        cs.push(Write::UpdatePartner {
            keys: dedupe::keys_of(&next),
            partner: next.clone(),
            expected_version,
        });
        cs.push(Write::AppendEvent(self.event(
            ctx,
            now,
            Subject {
                partner: Some(id),
                ..Default::default()
            },
            EventKind::PartnerUpdated { changes },
        )));
        let events = self.commit(ctx, cs).await?;
        Ok(Outcome {
            record: next,
            events,
        })
    }

    /// A partner.
    pub async fn partner(&self, tenant: TenantId, id: PartnerId) -> Result<Partner> {
        self.store.partner(tenant, id).await
    }

    // ---------------------------------------------------------------- leads

    async fn resolve_pipeline(&self, tenant: TenantId, id: Option<PipelineId>) -> Result<Pipeline> {
        match id {
            Some(id) => self.store.pipeline(tenant, id).await,
            None => {
                let all = self.store.pipelines(tenant).await?;
                all.iter()
                    .find(|p| p.is_default)
                    .or(all.first())
                    .cloned()
                    .ok_or_else(|| {
                        Error::invalid(
                            "pipeline",
                            "the tenant has no pipeline yet: call setup_tenant first",
                        )
                    })
            }
        }
    }

    /// Enters a lead, creating or matching its partner, and reports duplicate candidates of a new partner.
    ///
    /// One transaction holds the partner (if new), the lead, their events and the first stage-history step.
    pub async fn enter_lead(&self, ctx: &Context, input: NewLead) -> Result<Entered<Lead>> {
        let now = self.clock.now();
        let pipeline = self.resolve_pipeline(ctx.tenant, input.pipeline).await?;
        let mut cs = ChangeSet::new();
        let mut duplicates = Vec::new();
        let partner = match &input.partner {
            LeadPartner::Existing { id } => self.store.partner(ctx.tenant, *id).await?,
            LeadPartner::New { partner } | LeadPartner::MatchOrCreate { partner } => {
                duplicates = self.find_duplicates(ctx.tenant, partner).await?;
                let strong: Vec<_> = duplicates.iter().filter(|d| d.is_strong()).collect();
                if matches!(input.partner, LeadPartner::MatchOrCreate { .. }) && strong.len() == 1 {
                    let id = strong[0].partner;
                    duplicates.clear();
                    self.store.partner(ctx.tenant, id).await?
                } else {
                    let p = partner.clone().build(ctx.tenant, now)?;
                    self.partner_writes(ctx, &p, &mut cs);
                    p
                }
            }
        };
        if let Some(c) = input.contact {
            if !partner.has_contact(c) {
                return Err(Error::invalid(
                    "contact",
                    format!("contact {c} is not a contact of partner `{}`", partner.name),
                ));
            }
        }
        let (lead, kind) = input.build(ctx.tenant, partner.id, &pipeline, now)?;
        cs.push(Write::InsertLead(lead.clone()));
        cs.push(Write::AppendEvent(self.event(
            ctx,
            now,
            lead_subject(&lead),
            kind,
        )));
        cs.push(Write::AppendStageHistory(StageHistoryEntry {
            tenant: ctx.tenant,
            lead: lead.id,
            pipeline: pipeline.id,
            from: None,
            to: lead.stage,
            status: StatusKind::Open,
            at: now,
            actor: ctx.actor.clone(),
        }));
        let events = self.commit(ctx, cs).await?;
        Ok(Entered {
            record: lead,
            duplicates,
            events,
        })
    }

    /// Applies a command to a lead (move, win, lose, reopen, edit) based on `expected_version`.
    ///
    /// A stale version is [`Error::Conflict`]; a refused move is [`Error::Transition`] naming the rule.
    pub async fn transition(
        &self,
        ctx: &Context,
        id: LeadId,
        expected_version: u64,
        cmd: LeadCommand,
    ) -> Result<Outcome<Lead>> {
        let current = self.store.lead(ctx.tenant, id).await?;
        check_version("lead", id, expected_version, current.version)?;
        let pipeline = self.store.pipeline(ctx.tenant, current.pipeline).await?;
        let reasons = if matches!(cmd, LeadCommand::Lose { .. }) {
            self.store.lost_reasons(ctx.tenant).await?
        } else {
            Vec::new()
        };
        let needs_requests = pipeline.stages.iter().any(|s| {
            s.requirements
                .iter()
                .any(|r| !matches!(r, Requirement::Field { .. }))
        });
        let requests: Vec<_> = if needs_requests {
            self.requests_of_lead(ctx.tenant, id)
                .await?
                .into_iter()
                .map(|r| (r.kind, r.status))
                .collect()
        } else {
            Vec::new()
        };
        if let LeadCommand::Update(p) = &cmd {
            if let Some(Some(c)) = p.contact {
                let partner = self.store.partner(ctx.tenant, current.partner).await?;
                if !partner.has_contact(c) {
                    return Err(Error::invalid(
                        "contact",
                        format!("contact {c} is not a contact of partner `{}`", partner.name),
                    ));
                }
            }
        }
        let now = self.clock.now();
        let facts = Facts {
            lost_reasons: &reasons,
            requests: &requests,
        };
        let t = lead::apply(&current, cmd, &pipeline, facts, now)?;
        if t.events.is_empty() {
            return Ok(Outcome {
                record: current,
                events: Vec::new(),
            });
        }
        let mut cs = ChangeSet::new();
        cs.push(Write::UpdateLead {
            lead: t.lead.clone(),
            expected_version,
        });
        for k in t.events {
            cs.push(Write::AppendEvent(self.event(
                ctx,
                now,
                lead_subject(&t.lead),
                k,
            )));
        }
        if t.moved {
            cs.push(Write::AppendStageHistory(StageHistoryEntry {
                tenant: ctx.tenant,
                lead: id,
                pipeline: pipeline.id,
                from: Some(current.stage),
                to: t.lead.stage,
                status: t.lead.status.kind(),
                at: now,
                actor: ctx.actor.clone(),
            }));
        }
        let events = self.commit(ctx, cs).await?;
        Ok(Outcome {
            record: t.lead,
            events,
        })
    }

    /// A lead.
    pub async fn lead(&self, tenant: TenantId, id: LeadId) -> Result<Lead> {
        self.store.lead(tenant, id).await
    }

    /// Leads matching a query.
    pub async fn query_leads(&self, tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>> {
        query.page.validate()?;
        self.store.query_leads(tenant, query).await
    }

    /// The board of a pipeline.
    pub async fn board(&self, tenant: TenantId, pipeline: PipelineId) -> Result<Board> {
        self.store.board(tenant, pipeline).await
    }

    /// A lead's stage history.
    pub async fn stage_history(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<StageHistoryEntry>> {
        self.store.lead(tenant, lead).await?;
        self.store.stage_history(tenant, lead).await
    }

    /// Seconds spent in each stage by a lead, up to now for its current stage.
    pub async fn time_in_stage(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<(crate::id::StageId, i64)>> {
        let h = self.stage_history(tenant, lead).await?;
        Ok(lead::time_in_stage(&h, self.clock.now()))
    }

    /// The funnel of a pipeline.
    pub async fn funnel(
        &self,
        tenant: TenantId,
        pipeline: PipelineId,
        period: Option<(Timestamp, Timestamp)>,
    ) -> Result<Funnel> {
        if let Some((from, to)) = period {
            if to <= from {
                return Err(Error::invalid("period", "the end must be after the start"));
            }
        }
        self.store.funnel(tenant, pipeline, period).await
    }

    // ---------------------------------------------------------------- comments, requests, timelines

    async fn subject_of(&self, tenant: TenantId, target: CommentTarget) -> Result<Subject> {
        Ok(match target {
            CommentTarget::Lead(id) => lead_subject(&self.store.lead(tenant, id).await?),
            CommentTarget::Partner(id) => Subject {
                partner: Some(self.store.partner(tenant, id).await?.id),
                ..Default::default()
            },
            CommentTarget::Request(id) => request_subject(&self.store.request(tenant, id).await?),
        })
    }

    /// Adds a comment to a lead, partner or request.
    pub async fn comment(
        &self,
        ctx: &Context,
        target: CommentTarget,
        body: &str,
    ) -> Result<Outcome<Comment>> {
        let now = self.clock.now();
        let (c, kind) = Comment::new(ctx.tenant, target, ctx.actor.clone(), body, now)?;
        let subject = self.subject_of(ctx.tenant, target).await?;
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertComment(c.clone()));
        cs.push(Write::AppendEvent(self.event(ctx, now, subject, kind)));
        let events = self.commit(ctx, cs).await?;
        Ok(Outcome { record: c, events })
    }

    /// Comments on a record, newest first.
    pub async fn comments(
        &self,
        tenant: TenantId,
        target: CommentTarget,
        page: &PageRequest,
    ) -> Result<Page<Comment>> {
        page.validate()?;
        self.store.comments(tenant, target, page).await
    }

    /// Opens a request.
    pub async fn open_request(&self, ctx: &Context, input: NewRequest) -> Result<Outcome<Request>> {
        let now = self.clock.now();
        let partner = match (input.lead, input.partner) {
            (Some(l), given) => {
                let lead = self.store.lead(ctx.tenant, l).await?;
                if given.is_some_and(|p| p != lead.partner) {
                    return Err(Error::invalid(
                        "partner",
                        "the partner is not the lead's partner",
                    ));
                }
                Some(lead.partner)
            }
            (None, Some(p)) => Some(self.store.partner(ctx.tenant, p).await?.id),
            (None, None) => None,
        };
        let (r, kind) = input.build(ctx.tenant, partner, ctx.actor.clone(), now)?;
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertRequest(r.clone()));
        cs.push(Write::AppendEvent(self.event(
            ctx,
            now,
            request_subject(&r),
            kind,
        )));
        let events = self.commit(ctx, cs).await?;
        Ok(Outcome { record: r, events })
    }

    /// Changes a request (status, assignee, due time) based on `expected_version`.
    pub async fn change_request(
        &self,
        ctx: &Context,
        id: RequestId,
        expected_version: u64,
        cmd: RequestCommand,
    ) -> Result<Outcome<Request>> {
        let current = self.store.request(ctx.tenant, id).await?;
        check_version("request", id, expected_version, current.version)?;
        let now = self.clock.now();
        let (next, kind) = current.apply(cmd, now)?;
        let mut cs = ChangeSet::new();
        cs.push(Write::UpdateRequest {
            request: next.clone(),
            expected_version,
        });
        cs.push(Write::AppendEvent(self.event(
            ctx,
            now,
            request_subject(&next),
            kind,
        )));
        let events = self.commit(ctx, cs).await?;
        Ok(Outcome {
            record: next,
            events,
        })
    }

    /// A request.
    pub async fn request(&self, tenant: TenantId, id: RequestId) -> Result<Request> {
        self.store.request(tenant, id).await
    }

    /// Requests matching a query, overdue first.
    pub async fn query_requests(
        &self,
        tenant: TenantId,
        query: &RequestQuery,
    ) -> Result<Page<Request>> {
        query.page.validate()?;
        self.store.query_requests(tenant, query).await
    }

    /// Every request on a lead (all pages).
    pub async fn requests_of_lead(&self, tenant: TenantId, lead: LeadId) -> Result<Vec<Request>> {
        let mut q = RequestQuery {
            lead: Some(lead),
            page: PageRequest::first(PageRequest::MAX),
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.store.query_requests(tenant, &q).await?;
            out.extend(page.items);
            match page.next {
                Some(c) => q.page.after = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// A timeline, newest first.
    pub async fn timeline(
        &self,
        tenant: TenantId,
        of: TimelineOf,
        page: &PageRequest,
    ) -> Result<Page<DomainEvent>> {
        page.validate()?;
        self.store.timeline(tenant, of, page).await
    }
}

/// `Some` for a found record, `None` for a missing one, the error otherwise.
pub(crate) fn found<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(x) => Ok(Some(x)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Refuses early when the caller's version is already stale (the store checks again inside the transaction).
fn check_version(
    entity: &'static str,
    id: impl std::fmt::Display,
    expected: u64,
    actual: u64,
) -> Result<()> {
    if expected != actual {
        return Err(Error::Conflict {
            entity,
            id: id.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// The subject of a lead's events: the lead and its partner.
pub fn lead_subject(l: &Lead) -> Subject {
    Subject {
        partner: Some(l.partner),
        lead: Some(l.id),
        request: None,
    }
}

/// The subject of a request's events: the request, its lead and its partner.
pub fn request_subject(r: &Request) -> Subject {
    Subject {
        partner: r.partner,
        lead: r.lead,
        request: Some(r.id),
    }
}
