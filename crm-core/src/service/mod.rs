//! The service: validation → pure transition → one storage transaction → events handed on.
//!
//! [`CrmService`] holds no I/O of its own: it loads through the [`Store`], decides with the pure functions of this
//! crate, commits one [`ChangeSet`] per operation (the change, its events — which are the activity log — and its
//! stage-history step, plus whatever the [`CommitHook`]s add, such as the rules' outbox rows) and then hands the
//! committed events to every [`EventSubscriber`].

mod commerce;
mod consent;
mod contact;
pub(crate) mod erase;
mod import;
mod lead_merge;
mod merge;
mod portal;
mod rules;
mod seal;

pub use commerce::{
    message_key, CommerceService, DocumentOutcome, OutcomeResult, SendRate, BUDGET_ALERTS_KEY,
    SEND_HORIZON_KEY,
};
pub use consent::{consent_gate, Gate};
pub use erase::Erased;
pub use import::{ContactRow, ImportMode, ImportRow, Imported, RowOutcome};
pub use portal::{
    Account, Invited, PortalRequest, PortalRequestKind, PortalService, Statement,
    INVITATION_TEMPLATE, LOGIN_TEMPLATE, MAX_HISTORY, MAX_PAGE, MAX_REQUEST_BODY,
};
pub use rules::{decision_writes, RulesHook};
pub use seal::{open_events, open_feed};

use crate::actor::Context;
use crate::comms::{Directory, RuleEngine};
use crate::dedupe::{self, DedupeKey, DuplicateCandidate, MatchKind};
use crate::error::{Error, Result};
use crate::event::{CommentTarget, DomainEvent, EventKind, StageHistoryEntry, Subject};
use crate::id::{LeadId, PartnerId, PipelineId, RequestId, TenantId};
use crate::lead::{self, Facts, Lead, LeadCommand, LeadPartner, NewLead, StatusKind};
use crate::partner::{NewPartner, Partner, PartnerPatch};
use crate::pipeline::{LostReason, NewPipeline, Pipeline, Requirement};
use crate::request::{Comment, NewRequest, Request, RequestCommand};
use crate::store::StoreExt;
use crate::store::{
    Board, ChangeSet, Funnel, Key, LeadQuery, Page, PageRequest, Record, RequestQuery, Store,
    TimelineOf, Write,
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
    /// Inspects or extends `changes`; an error aborts the whole operation and nothing is written. `loaded` holds
    /// the records the service read for the change and does not write (the lead's partner, the request's lead, …).
    fn before_commit(&self, ctx: &Context, changes: &mut ChangeSet, loaded: &Loaded) -> Result<()>;
}

/// A lead's partner and the partner's subject key, when read with the lead.
type PartnerAndKey = (Option<Partner>, Option<crate::erasure::SubjectKey>);

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
    /// Documents read (the invoice or payment an event is about, when the change set does not write it).
    pub documents: Vec<crate::commerce::Document>,
    /// Campaigns read (the campaign an event is about, when the change set does not write it).
    pub campaigns: Vec<crate::commerce::Campaign>,
    /// Data subjects' keys read with the records (sealing the change's events reads only the others).
    pub keys: Vec<crate::erasure::SubjectKey>,
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
    commerce: Option<Arc<dyn crate::commerce::CommerceStore>>,
    clock: Arc<dyn Clock>,
    hooks: Vec<Arc<dyn CommitHook>>,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
    name_similarity: u8,
}

/// Builds a [`CrmService`].
#[derive(Debug, Default)]
pub struct CrmServiceBuilder {
    store: Option<Arc<dyn Store>>,
    commerce: Option<Arc<dyn crate::commerce::CommerceStore>>,
    clock: Option<Arc<dyn Clock>>,
    rules: Option<RulesHook>,
    hooks: Vec<Arc<dyn CommitHook>>,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
    name_similarity: Option<u8>,
}

impl CrmServiceBuilder {
    /// The similarity (percent, Jaro–Winkler of the normalised names) at or above which a partner with a name
    /// close to a new one's is reported as a duplicate candidate ([`MatchKind::SimilarName`]); 90 by default,
    /// 100 turns it off. Values above 100 read as 100.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::{actor::Context, conformance::model::MemStore, id::TenantId, partner::NewPartner, service::CrmService};
    /// # futures::executor::block_on(async {
    /// let crm = CrmService::builder().store(Arc::new(MemStore::new())).name_similarity(80).build()?;
    /// let ctx = Context::system(TenantId::new());
    /// crm.create_partner(&ctx, NewPartner::company("Acme Industries SRL")).await?;
    /// let found = crm.find_duplicates(ctx.tenant, &NewPartner::company("Acme Industrial")).await?;
    /// assert!(found[0].explain().starts_with("similar name acme industries"));
    /// # Ok::<(), crm_core::Error>(()) }).unwrap();
    /// ```
    pub fn name_similarity(mut self, percent: u8) -> Self {
        self.name_similarity = Some(percent.min(100));
        self
    }

    /// The store (required).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::{actor::Context, conformance::model::MemStore, id::TenantId, service::CrmService};
    /// use crm_core::store::{Store, StoreExt};
    /// # futures::executor::block_on(async {
    /// let store: Arc<dyn Store> = Arc::new(MemStore::new());
    /// let crm = CrmService::builder().store(store.clone()).build()?;
    /// let ctx = Context::system(TenantId::new());
    /// let pipeline = crm.setup_tenant(&ctx).await?;
    /// // The service wrote through the store it was given.
    /// assert_eq!(store.pipelines(ctx.tenant).await?, vec![pipeline]);
    /// # Ok::<(), crm_core::Error>(()) }).unwrap();
    /// ```
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The commerce store the lead service reads quotations from, for stages that require a sent quotation
    /// ([`Requirement::QuotationSent`]); usually the same adapter as the store. Without it such a stage refuses
    /// every move with [`Error::Invalid`] on `requirements`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::{conformance::model::MemStore, service::CrmService};
    /// let mem = Arc::new(MemStore::new());
    /// let crm = CrmService::builder().store(mem.clone()).commerce(mem).build().unwrap();
    /// # let _ = crm;
    /// ```
    pub fn commerce(mut self, commerce: Arc<dyn crate::commerce::CommerceStore>) -> Self {
        self.commerce = Some(commerce);
        self
    }

    /// The clock (the system clock by default).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use chrono::{TimeZone, Utc};
    /// use crm_core::{actor::Context, conformance::model::MemStore, id::TenantId, service::CrmService};
    /// use crm_core::{partner::NewPartner, time::FixedClock};
    /// # futures::executor::block_on(async {
    /// let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    /// let crm = CrmService::builder()
    ///     .store(Arc::new(MemStore::new()))
    ///     .clock(Arc::new(FixedClock::new(at)))
    ///     .build()?;
    /// let ctx = Context::system(TenantId::new());
    /// let partner = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert_eq!(partner.created_at(), at);
    /// # Ok::<(), crm_core::Error>(()) }).unwrap();
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a commit hook.
    ///
    /// # Examples
    ///
    /// A hook that refuses every change of a read-only tenant:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::{actor::Context, conformance::model::MemStore, id::TenantId, partner::NewPartner};
    /// use crm_core::{service::{CommitHook, CrmService, Loaded}, store::ChangeSet, Error, Result};
    /// #[derive(Debug)]
    /// struct ReadOnly;
    /// impl CommitHook for ReadOnly {
    ///     fn before_commit(&self, _: &Context, _: &mut ChangeSet, _: &Loaded) -> Result<()> {
    ///         Err(Error::invalid("tenant", "this tenant is read-only"))
    ///     }
    /// }
    /// # futures::executor::block_on(async {
    /// let crm = CrmService::builder().store(Arc::new(MemStore::new())).hook(Arc::new(ReadOnly)).build()?;
    /// let ctx = Context::system(TenantId::new());
    /// let err = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await.unwrap_err();
    /// assert_eq!(err.field(), Some("tenant"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn hook(mut self, hook: Arc<dyn CommitHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Adds an event subscriber.
    ///
    /// # Examples
    ///
    /// A subscriber counting the events of committed changes:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use crm_core::{actor::Context, conformance::model::MemStore, id::TenantId, partner::NewPartner};
    /// use crm_core::{event::DomainEvent, service::{CrmService, EventSubscriber}};
    /// #[derive(Debug, Default)]
    /// struct Count(AtomicUsize);
    /// #[async_trait::async_trait]
    /// impl EventSubscriber for Count {
    ///     async fn publish(&self, events: &[DomainEvent]) {
    ///         self.0.fetch_add(events.len(), Ordering::SeqCst);
    ///     }
    /// }
    /// # futures::executor::block_on(async {
    /// let count = Arc::new(Count::default());
    /// let crm = CrmService::builder().store(Arc::new(MemStore::new())).subscriber(count.clone()).build()?;
    /// crm.create_partner(&Context::system(TenantId::new()), NewPartner::company("Acme SRL")).await?;
    /// assert_eq!(count.0.load(Ordering::SeqCst), 1); // PartnerCreated
    /// # Ok::<(), crm_core::Error>(()) }).unwrap();
    /// ```
    pub fn subscriber(mut self, s: Arc<dyn EventSubscriber>) -> Self {
        self.subscribers.push(s);
        self
    }

    /// The communication rules: a [`RulesHook`] asking `engine` inside the commit of every change (people resolved
    /// through `directory`), run before every hook added with [`CrmServiceBuilder::hook`]. A second call replaces
    /// the first.
    ///
    /// # Examples
    ///
    /// An engine whose guard refuses every change:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::comms::{Decision, Refusal, RuleEngine, StaticDirectory, Trigger, Views};
    /// use crm_core::{actor::Context, conformance::model::MemStore, id::TenantId, partner::NewPartner};
    /// use crm_core::{error::TransitionError, service::CrmService, Error};
    /// #[derive(Debug)]
    /// struct Closed;
    /// impl RuleEngine for Closed {
    ///     fn evaluate(&self, _: &Trigger, _: &Views) -> Decision {
    ///         let refusal = Refusal { rule: "closed".into(), reason: "the office is closed".into() };
    ///         Decision { refusal: Some(refusal), ..Decision::default() }
    ///     }
    /// }
    /// # futures::executor::block_on(async {
    /// let tenant = TenantId::new();
    /// let crm = CrmService::builder()
    ///     .store(Arc::new(MemStore::new()))
    ///     .rules(Arc::new(Closed), Arc::new(StaticDirectory::new(tenant)))
    ///     .build()?;
    /// let err = crm.create_partner(&Context::system(tenant), NewPartner::company("Acme SRL")).await.unwrap_err();
    /// assert!(matches!(err, Error::Transition(TransitionError::RefusedByRule { .. })));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn rules(mut self, engine: Arc<dyn RuleEngine>, directory: Arc<dyn Directory>) -> Self {
        self.rules = Some(RulesHook::new(engine, directory));
        self
    }

    /// Builds the service; fails when no store was given.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::{conformance::model::MemStore, service::CrmService};
    /// assert!(CrmService::builder().store(Arc::new(MemStore::new())).build().is_ok());
    /// let err = CrmService::builder().build().unwrap_err();
    /// assert_eq!(err.field(), Some("store"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on field `store` when no store was given.
    pub fn build(self) -> Result<CrmService> {
        Ok(CrmService {
            store: self.store.ok_or_else(|| {
                Error::invalid("store", "a store is required: give one to the builder")
            })?,
            commerce: self.commerce,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            hooks: self
                .rules
                .map(|r| Arc::new(r) as Arc<dyn CommitHook>)
                .into_iter()
                .chain(self.hooks)
                .collect(),
            subscribers: self.subscribers,
            name_similarity: self.name_similarity.unwrap_or(dedupe::NAME_SIMILARITY),
        })
    }
}

impl CrmService {
    /// A builder.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use crm_core::{conformance::model::MemStore, id::TenantId, service::CrmService};
    /// # futures::executor::block_on(async {
    /// let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// assert!(crm.pipelines(TenantId::new()).await?.is_empty());
    /// # Ok::<(), crm_core::Error>(()) }).unwrap();
    /// ```
    pub fn builder() -> CrmServiceBuilder {
        CrmServiceBuilder::default()
    }

    /// The store.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm_core::store::StoreExt;
    /// let pipeline = crm.setup_tenant(&ctx).await?;
    /// assert_eq!(crm.store().pipeline(ctx.tenant, pipeline.id()).await?, pipeline);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// let before = chrono::Utc::now();
    /// assert!(crm.clock().now() >= before); // the system clock by default
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Commits a change set through the hooks, then publishes its events. Every write path ends here; hosts write through the
    /// service's named operations, never a raw change set.
    ///
    /// When hooks are installed, the records the change set's events concern but do not write (the partner of a
    /// lead that moved, the lead of a request) are read first and handed to the hooks as [`Loaded`] context.
    ///
    /// # Errors
    ///
    /// What the store refuses, and then nothing is written: [`Error::Invalid`] on field `tenant` for a write of
    /// another tenant, on the pipeline's fields (`stages`, `stages[2].probability`, …) for a raw pipeline that
    /// breaks [`Pipeline::check`](crate::pipeline::Pipeline::check), on field `writes` (on PostgreSQL, the referring
    /// column) for a write referring to a record the tenant does not have; [`Error::AlreadyExists`] for an insert of
    /// an existing record; [`Error::Conflict`] for an update whose expected version is stale; [`Error::Storage`]
    /// when the store cannot be read or the change cannot be committed (nothing is then written), and whatever a
    /// [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    /// [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    pub(crate) async fn commit(
        &self,
        ctx: &Context,
        changes: ChangeSet,
    ) -> Result<Vec<DomainEvent>> {
        self.commit_known(ctx, changes, Loaded::default()).await
    }

    /// [`CrmService::commit`] with records the caller read already (`known`): the hooks' context reads only the
    /// others.
    async fn commit_known(
        &self,
        ctx: &Context,
        changes: ChangeSet,
        known: Loaded,
    ) -> Result<Vec<DomainEvent>> {
        let loaded = if self.hooks.is_empty() {
            known
        } else {
            self.load_context(ctx.tenant, &changes, known).await?
        };
        self.commit_loaded(ctx, changes, &loaded).await
    }

    /// Reads the subjects of `changes`' events that it does not write itself, and `known` does not hold.
    async fn load_context(
        &self,
        tenant: TenantId,
        changes: &ChangeSet,
        known: Loaded,
    ) -> Result<Loaded> {
        let mut written = std::collections::BTreeSet::new();
        written.extend(known.leads.iter().map(|l| *l.id.as_uuid()));
        written.extend(known.partners.iter().map(|p| *p.id.as_uuid()));
        written.extend(known.requests.iter().map(|r| *r.id.as_uuid()));
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
        let mut loaded = known;

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
    ///
    /// # Errors
    ///
    /// Those of [`CrmService::commit`], without its context reads.
    pub(crate) async fn commit_loaded(
        &self,
        ctx: &Context,
        mut changes: ChangeSet,
        loaded: &Loaded,
    ) -> Result<Vec<DomainEvent>> {
        for h in &self.hooks {
            h.before_commit(ctx, &mut changes, loaded)?;
        }
        let events: Vec<DomainEvent> = changes.events().cloned().collect();
        let ring = seal::seal(self.store.as_ref(), ctx.tenant, &mut changes, loaded).await?;
        match self.store.commit(ctx.tenant, changes.clone()).await {
            // Another commit gave a subject its first key meanwhile: seal again with the stored one.
            Err(Error::AlreadyExists {
                entity: "subject key",
                ..
            }) => {
                let mut again = seal::unseal(changes, &ring)?;
                seal::seal(self.store.as_ref(), ctx.tenant, &mut again, loaded).await?;
                self.store.commit(ctx.tenant, again).await?;
            }
            other => other?,
        }
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

    /// The change set of `write` and its event `kind` about `subject` at `now`.
    fn change(
        &self,
        ctx: &Context,
        now: Timestamp,
        write: Write,
        subject: Subject,
        kind: EventKind,
    ) -> ChangeSet {
        let event = Write::AppendEvent(self.event(ctx, now, subject, kind));
        [write, event].into_iter().collect()
    }

    /// Commits `changes` ([`CrmService::commit`]) and returns `record` with the events committed.
    async fn commit_outcome<T>(
        &self,
        ctx: &Context,
        changes: ChangeSet,
        record: T,
    ) -> Result<Outcome<T>> {
        let events = self.commit(ctx, changes).await?;
        Ok(Outcome { record, events })
    }

    // ---------------------------------------------------------------- tenant set-up

    /// Gives a tenant the seed pipeline and lost reasons if it has no pipeline yet; returns its default pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// let pipeline = crm.setup_tenant(&ctx).await?;
    /// assert!(pipeline.is_default());
    /// assert_eq!(pipeline.stages().len(), 6);
    /// assert_eq!(crm.lost_reasons(ctx.tenant).await?.len(), 5);
    /// // A tenant that has a pipeline keeps it.
    /// assert_eq!(crm.setup_tenant(&ctx).await?, pipeline);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then written),
    /// and whatever a [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    /// [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm_core::pipeline::{MovePolicy, NewPipeline, NewStage};
    /// let input = NewPipeline {
    ///     name: "Service contracts".into(),
    ///     stages: vec![NewStage::open("Visit", 20), NewStage::won("Signed")],
    ///     policy: MovePolicy::ForwardOnly,
    ///     is_default: false,
    /// };
    /// let p = crm.create_pipeline(&ctx, input.clone()).await?;
    /// assert_eq!(p.stages()[1].probability, 100);
    /// let no_open_stage = NewPipeline { stages: vec![NewStage::won("Signed")], ..input };
    /// assert_eq!(crm.create_pipeline(&ctx, no_open_stage).await.unwrap_err().field(), Some("stages"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field that breaks [`Pipeline::check`](crate::pipeline::Pipeline::check):
    /// `name`, `stages` (none, more than 50, or no open stage), `stages[i].name` (empty, too long or repeated),
    /// `stages[i].probability` (over 100, or not 100 on a won stage), `stages[i].requirements` (a request kind that
    /// is not a tag); [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is
    /// then written), and whatever a [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`]
    /// carrying [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    pub async fn create_pipeline(&self, ctx: &Context, input: NewPipeline) -> Result<Pipeline> {
        let p = input.build(ctx.tenant, self.clock.now())?;
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertPipeline(p.clone()));
        self.commit(ctx, cs).await?;
        Ok(p)
    }

    /// Adds a lost reason to the tenant's list.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// let reason = crm.add_lost_reason(&ctx, "Went bankrupt").await?;
    /// assert!(reason.active());
    /// let err = crm.add_lost_reason(&ctx, "went BANKRUPT").await.unwrap_err();
    /// assert!(matches!(err, Error::AlreadyExists { entity: "lost reason", .. }));
    /// assert_eq!(crm.add_lost_reason(&ctx, "  ").await.unwrap_err().field(), Some("name"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on field `name` (empty, longer than 200 characters, control characters);
    /// [`Error::AlreadyExists`] when the tenant has a reason of that name (case-insensitive); [`Error::Storage`]
    /// when the store cannot be read or the change cannot be committed (nothing is then written), and whatever a
    /// [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    /// [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// let pipelines = crm.pipelines(ctx.tenant).await?;
    /// assert_eq!(pipelines.len(), 1);
    /// assert_eq!(pipelines[0].name(), "Sales");
    /// assert!(crm.pipelines(TenantId::new()).await?.is_empty()); // another tenant's
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>> {
        self.store.pipelines(tenant).await
    }

    /// The tenant's lost reasons.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// let reasons = crm.lost_reasons(ctx.tenant).await?;
    /// assert!(reasons.iter().any(|r| r.name() == "Too expensive"));
    /// assert!(crm.lost_reasons(TenantId::new()).await?.is_empty()); // another tenant's
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn lost_reasons(&self, tenant: TenantId) -> Result<Vec<LostReason>> {
        self.store.lost_reasons(tenant).await
    }

    // ---------------------------------------------------------------- partners

    /// Partners that look like `probe`, each with the reasons it matched.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// use crm_core::partner::NewPartner;
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL").with_tax_id("RO123456")).await?.record;
    /// let probe = NewPartner::company("ACME S.R.L.").with_tax_id("RO 123 456");
    /// let found = crm.find_duplicates(ctx.tenant, &probe).await?;
    /// assert_eq!(found[0].partner, acme.id());
    /// assert!(found[0].is_strong()); // the same tax id
    /// assert!(crm.find_duplicates(ctx.tenant, &NewPartner::company("Globex")).await?.is_empty());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read. The probe is not validated: a probe with no usable key
    /// finds nothing.
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
        let probe_name = dedupe::normalize_name(&probe.name);
        let mut by: BTreeMap<PartnerId, DuplicateCandidate> = BTreeMap::new();
        for m in matches {
            let c = by.entry(m.partner).or_insert_with(|| DuplicateCandidate {
                partner: m.partner,
                name: m.name.clone(),
                reasons: Vec::new(),
                score: 0,
            });
            let reason = match m.key.kind {
                // A shared word brings the name to be scored: a reason only when the whole names are alike.
                MatchKind::NameToken => {
                    let theirs = dedupe::normalize_name(&m.name);
                    let (Some(ours), Some(theirs)) = (probe_name.as_deref(), theirs) else {
                        continue;
                    };
                    let alike = dedupe::similarity(ours, &theirs);
                    if ours == theirs || alike < self.name_similarity || self.name_similarity >= 100
                    {
                        continue;
                    }
                    c.score = c.score.max(alike.saturating_sub(10));
                    DedupeKey {
                        kind: MatchKind::SimilarName,
                        value: theirs,
                    }
                }
                kind => {
                    c.score = c.score.max(kind.score());
                    m.key
                }
            };
            if !c.reasons.contains(&reason) {
                c.reasons.push(reason);
            }
        }
        let mut out: Vec<_> = by.into_values().filter(|c| !c.reasons.is_empty()).collect();
        for c in &mut out {
            // The same number in E.164 says what its last nine digits say.
            if c.reasons.iter().any(|r| r.kind == MatchKind::E164) {
                c.reasons.retain(|r| r.kind != MatchKind::Phone);
            }
            c.reasons.sort();
        }
        out.sort_by(|a, b| {
            (b.score, b.reasons.len())
                .cmp(&(a.score, a.reasons.len()))
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// use crm_core::partner::NewPartner;
    /// let ana = |p: NewPartner| p.with_contact("Ana Pop", Some("ana@acme.example"), None);
    /// let acme = crm.create_partner(&ctx, ana(NewPartner::company("Acme SRL"))).await?;
    /// assert_eq!(acme.record.version(), 1);
    /// assert!(acme.duplicates.is_empty());
    /// // The same e-mail again: created anyway, the match reported.
    /// let again = crm.create_partner(&ctx, ana(NewPartner::company("Acme Industries"))).await?;
    /// assert_eq!(again.duplicates[0].partner, acme.record.id());
    /// let bad = NewPartner::company("Globex").with_contact("Ion", Some("not an address"), None);
    /// assert_eq!(crm.create_partner(&ctx, bad).await.unwrap_err().field(), Some("contacts[0].email"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field: `name`, `contacts[i].name`, `contacts[i].role`, `contacts[i].email`,
    /// `contacts[i].phone`, `locations[i].street` (`city`, `region`, `postal_code`, `country`), `industry.name`,
    /// `industry.code`, `turnover.amount` (negative), `turnover.year`, `tax_id`, `website`, `group`, `tags`,
    /// `host_ref` (too long, control characters, or another partner's already; [`Error::AlreadyExists`] when two
    /// creations race for it); duplicates are reported, never refused; [`Error::Storage`] when the store cannot be read or the change cannot
    /// be committed (nothing is then written), and whatever a [`CommitHook`] returns (a rule's guard refuses with
    /// [`Error::Transition`] carrying [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    pub async fn create_partner(
        &self,
        ctx: &Context,
        input: NewPartner,
    ) -> Result<Entered<Partner>> {
        let duplicates = self.find_duplicates(ctx.tenant, &input).await?;
        let p = input.build(ctx.tenant, self.clock.now())?;
        self.host_ref_free(&p).await?;
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// use crm_core::partner::{NewPartner, PartnerPatch};
    /// let p = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let patch = PartnerPatch { name: Some("Acme Industries SRL".into()), ..Default::default() };
    /// let updated = crm.update_partner(&ctx, p.id(), p.version(), patch.clone()).await?.record;
    /// assert_eq!((updated.name(), updated.version()), ("Acme Industries SRL", 2));
    /// // Version 1 is stale now.
    /// let err = crm.update_partner(&ctx, p.id(), 1, patch).await.unwrap_err();
    /// assert!(matches!(err, Error::Conflict { expected: 1, actual: 2, .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner is not the tenant's; [`Error::Conflict`] when `expected_version` is
    /// stale; [`Error::Invalid`] naming the field: `name`, `roles` (empty), `contacts[i].name` (`role`, `email`,
    /// `phone`), `locations[i].street` (`city`, `region`, `postal_code`, `country`), `industry.name`,
    /// `industry.code`, `turnover.amount`, `turnover.year`, `tax_id`, `group`, `tags`, `host_ref` (as for
    /// [`CrmService::create_partner`]); [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then written), and whatever a
    /// [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    /// [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)). A patch that changes nothing returns the
    /// partner as it is, with no events.
    pub async fn update_partner(
        &self,
        ctx: &Context,
        id: PartnerId,
        expected_version: u64,
        patch: PartnerPatch,
    ) -> Result<Outcome<Partner>> {
        let current = self.store.partner(ctx.tenant, id).await?;
        if let Some(to) = current.merged_into {
            return Err(Error::invalid(
                "id",
                format!("partner {id} was merged into {to}: change that partner"),
            ));
        }
        check_version("partner", id, expected_version, current.version)?;
        let now = self.clock.now();
        let (next, changes) = current.patched(patch, now)?;
        let codes = |p: &Partner| {
            let contacts = p.contacts().iter().map(|c| c.host_ref.clone());
            std::iter::once(p.host_ref.clone())
                .chain(contacts)
                .collect::<Vec<_>>()
        };
        if codes(&next) != codes(&current) {
            self.host_ref_free(&next).await?;
        }
        if changes.is_empty() {
            return Ok(Outcome {
                record: current,
                events: Vec::new(),
            });
        }
        let write = Write::UpdatePartner {
            keys: dedupe::keys_of(&next),
            partner: next.clone(),
            expected_version,
        };
        let subject = Subject {
            partner: Some(id),
            ..Default::default()
        };
        let cs = self.change(
            ctx,
            now,
            write,
            subject,
            EventKind::PartnerUpdated { changes },
        );
        self.commit_outcome(ctx, cs, next).await
    }

    /// The partner the host knows by `host_ref` (its ERP's own code); [`Error::NotFound`] when the tenant has none.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm_core::partner::NewPartner;
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL").with_host_ref("C-0042")).await?.record;
    /// assert_eq!(crm.partner_by_ref(ctx.tenant, "C-0042").await?.id(), acme.id());
    /// let taken = crm.create_partner(&ctx, NewPartner::company("Globex").with_host_ref("C-0042")).await;
    /// assert_eq!(taken.unwrap_err().field(), Some("host_ref"));
    /// let other = TenantId::new(); // another tenant may use the same code, and does not see this one
    /// assert!(matches!(crm.partner_by_ref(other, "C-0042").await, Err(Error::NotFound { .. })));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no partner with this reference; [`Error::Invalid`] on `host_ref`
    /// when it is empty, too long or has control characters; [`Error::Storage`] when the store cannot be read.
    pub async fn partner_by_ref(&self, tenant: TenantId, host_ref: &str) -> Result<Partner> {
        let r = required_ref(host_ref)?;
        let p = self
            .store
            .partner_by_ref(tenant, &r)
            .await?
            .ok_or_else(|| Error::not_found("partner", r))?;
        self.live(tenant, p).await
    }

    /// Refuses a host reference another partner of the tenant has, or a contact's reference another partner's
    /// contact has, by field (the unique indexes stay the last word when two changes race). One read for all the
    /// partner's codes.
    async fn host_ref_free(&self, p: &Partner) -> Result<()> {
        let codes: Vec<String> = p.host_ref().map(str::to_string).into_iter().collect();
        let contacts: Vec<String> = p
            .contacts()
            .iter()
            .filter_map(|c| c.host_ref.clone())
            .collect();
        let mut owners = import::CodeOwners::default();
        for other in self
            .partners_by_codes(p.tenant(), &codes, &contacts)
            .await?
        {
            owners.add(&other, None);
        }
        owners.check(p)
    }

    /// The partners holding any of `codes` or any of `contact_codes`, read a thousand codes at a time.
    async fn partners_by_codes(
        &self,
        tenant: TenantId,
        codes: &[String],
        contact_codes: &[String],
    ) -> Result<Vec<Partner>> {
        let max = crate::page::PageRequest::MAX as usize;
        let mut found = Vec::new();
        for i in 0..codes.len().max(contact_codes.len()).div_ceil(max) {
            let part = |v: &[String]| {
                v.iter()
                    .skip(i * max)
                    .take(max)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            found.extend(
                self.store
                    .partners_by_refs(tenant, &part(codes), &part(contact_codes))
                    .await?,
            );
        }
        Ok(found)
    }

    /// Refuses a lead's host reference another lead of the tenant has.
    async fn lead_ref_free(&self, l: &Lead) -> Result<()> {
        let Some(r) = l.host_ref() else {
            return Ok(());
        };
        match self.store.lead_by_ref(l.tenant(), r).await? {
            Some(other) if other.id() != l.id() => Err(Error::invalid(
                "host_ref",
                format!("lead {} has this reference", other.id()),
            )),
            _ => Ok(()),
        }
    }

    /// Stores the tenant's setting `key` (a new value replaces the old one): small named JSON values such as an
    /// import's column mapping. Settings are configuration, not actions with a customer: they are not in the
    /// activity log.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// let mapping = serde_json::json!({ "name": "Denumire", "ref": "Cod" });
    /// crm.put_setting(&ctx, "import.mapping.partners.erp", mapping.clone()).await?;
    /// assert_eq!(crm.setting(ctx.tenant, "import.mapping.partners.erp").await?, Some(mapping));
    /// assert_eq!(crm.setting(TenantId::new(), "import.mapping.partners.erp").await?, None);
    /// assert_eq!(crm.put_setting(&ctx, "Bad Key", serde_json::json!(1)).await.unwrap_err().field(), Some("key"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `key` (1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`) or `value` (more than
    /// 64 KiB as JSON); [`Error::Storage`] when it cannot be stored (nothing is then written).
    pub async fn put_setting(
        &self,
        ctx: &Context,
        key: &str,
        value: serde_json::Value,
    ) -> Result<()> {
        let setting = crate::setting::Setting::new(ctx.tenant, key, value, self.clock.now())?;
        let cs = ChangeSet::from_iter([Write::PutSetting(setting)]);
        self.store.commit(ctx.tenant, cs).await
    }

    /// The tenant's setting `key`, if it has one.
    ///
    /// # Examples
    ///
    /// See [`CrmService::put_setting`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `key` when it cannot be a key; [`Error::Storage`] when the store cannot be read.
    pub async fn setting(&self, tenant: TenantId, key: &str) -> Result<Option<serde_json::Value>> {
        let key = crate::setting::check_key(key)?;
        Ok(self
            .store
            .setting(tenant, &key)
            .await?
            .map(|s| s.value().clone()))
    }

    /// The lead the host knows by `host_ref` (its ERP's own number for the opportunity); [`Error::NotFound`] when
    /// the tenant has none.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// let acme = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// let lead = crm.enter_lead(&ctx, NewLead::new(acme, "Forklifts").with_host_ref("OPP-7")).await?.record;
    /// assert_eq!(crm.lead_by_ref(ctx.tenant, "OPP-7").await?.id(), lead.id());
    /// assert!(matches!(crm.lead_by_ref(ctx.tenant, "OPP-8").await, Err(Error::NotFound { .. })));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no lead with this reference; [`Error::Invalid`] on `host_ref` when it
    /// is empty, too long or has control characters; [`Error::Storage`] when the store cannot be read.
    pub async fn lead_by_ref(&self, tenant: TenantId, host_ref: &str) -> Result<Lead> {
        let r = required_ref(host_ref)?;
        let found = self
            .store
            .lead_by_ref(tenant, &r)
            .await?
            .ok_or_else(|| Error::not_found("lead", r))?;
        self.live_lead(tenant, found.id).await
    }

    /// The contact the host knows by `host_ref`, with the partner it belongs to; [`Error::NotFound`] when no
    /// contact of the tenant has it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm_core::partner::{NewContact, NewPartner};
    /// let mut acme = NewPartner::company("Acme SRL");
    /// acme.contacts.push(NewContact { name: "Ana Pop".into(), host_ref: Some("P-17".into()), ..Default::default() });
    /// let acme = crm.create_partner(&ctx, acme).await?.record;
    /// let (partner, ana) = crm.contact_by_ref(ctx.tenant, "P-17").await?;
    /// assert_eq!((partner.id(), ana.name.as_str()), (acme.id(), "Ana Pop"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no contact of the tenant has this reference; [`Error::Invalid`] on `host_ref` when
    /// it is empty, too long or has control characters; [`Error::Storage`] when the store cannot be read.
    pub async fn contact_by_ref(
        &self,
        tenant: TenantId,
        host_ref: &str,
    ) -> Result<(Partner, crate::partner::Contact)> {
        let r = required_ref(host_ref)?;
        let partner = self.store.partner_by_contact_ref(tenant, &r).await?;
        let found = partner.and_then(|p| {
            let c = p
                .contacts()
                .iter()
                .find(|c| c.host_ref.as_deref() == Some(r.as_str()))?;
            Some((c.clone(), p))
        });
        let (contact, partner) = found.ok_or_else(|| Error::not_found("contact", &r))?;
        Ok((partner, contact))
    }

    /// A partner.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm_core::{id::PartnerId, partner::NewPartner};
    /// let p = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert_eq!(crm.partner(ctx.tenant, p.id()).await?, p);
    /// let err = crm.partner(ctx.tenant, PartnerId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "partner", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner is not the tenant's (another tenant's reads as not found);
    /// [`Error::Storage`] when the store cannot be read. A partner merged into another (a tombstone) reads as the
    /// partner it was merged into.
    pub async fn partner(&self, tenant: TenantId, id: PartnerId) -> Result<Partner> {
        let p = self.store.partner(tenant, id).await?;
        self.live(tenant, p).await
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # let pipeline = crm.setup_tenant(&ctx).await?;
    /// use crm_core::{lead::{LeadPartner, NewLead}, money::Money, partner::NewPartner};
    /// let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// let input = NewLead::new(partner, "Forklifts").with_revenue(Money::parse("12000", "EUR")?);
    /// let entered = crm.enter_lead(&ctx, input).await?;
    /// let lead = entered.record;
    /// assert_eq!((lead.stage(), lead.probability()), (pipeline.stages()[0].id, 10)); // the first stage
    /// assert_eq!(entered.events.len(), 2); // PartnerCreated, LeadEntered
    /// let mut sure = NewLead::for_partner(lead.partner(), "Pallets");
    /// sure.probability = Some(120);
    /// assert_eq!(crm.enter_lead(&ctx, sure).await.unwrap_err().field(), Some("probability"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] for a given pipeline or existing partner that is not the tenant's;
    /// - [`Error::Invalid`] on field `pipeline` when none is given and the tenant has none yet
    ///   ([`CrmService::setup_tenant`]); on `contact` when the contact is not one of the partner's; on `stage` when
    ///   the starting stage is not in the pipeline or is a won stage; on `title`, `description`, `probability` (over
    ///   100), `expected_revenue` (negative), `expected_close` (outside the business dates), `source.medium`,
    ///   `source.source` and `tags`; for a new partner, on its fields as in [`CrmService::create_partner`];
    /// - [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    ///   written), and whatever a [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    ///   [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    pub async fn enter_lead(&self, ctx: &Context, input: NewLead) -> Result<Entered<Lead>> {
        let now = self.clock.now();
        let pipeline = self.resolve_pipeline(ctx.tenant, input.pipeline).await?;
        let mut cs = ChangeSet::new();
        let mut duplicates = Vec::new();
        let partner = match &input.partner {
            LeadPartner::Existing { id } => self.store.partner(ctx.tenant, *id).await?,
            LeadPartner::New { partner } | LeadPartner::MatchOrCreate { partner } => {
                // The host's code names its partner: match-or-create finds it by the code first; a new partner
                // may not take a code another one has.
                let code = crate::partner::host_ref(partner.host_ref.as_deref())?;
                let known = match code {
                    Some(r) => self.store.partner_by_ref(ctx.tenant, &r).await?,
                    None => None,
                };
                if let Some(k) = known {
                    if matches!(input.partner, LeadPartner::New { .. }) {
                        let why = format!("partner {} has this reference", k.id());
                        return Err(Error::invalid("host_ref", why));
                    }
                    k
                } else {
                    duplicates = self.find_duplicates(ctx.tenant, partner).await?;
                    let strong: Vec<_> = duplicates.iter().filter(|d| d.is_strong()).collect();
                    if matches!(input.partner, LeadPartner::MatchOrCreate { .. })
                        && strong.len() == 1
                    {
                        let id = strong[0].partner;
                        duplicates.clear();
                        self.store.partner(ctx.tenant, id).await?
                    } else {
                        let p = partner.clone().build(ctx.tenant, now)?;
                        self.partner_writes(ctx, &p, &mut cs);
                        p
                    }
                }
            }
        };
        // A merged partner's id or code names its survivor.
        let partner = self.live(ctx.tenant, partner).await?;
        if let Some(c) = input.contact {
            if !partner.has_contact(c) {
                return Err(Error::invalid(
                    "contact",
                    format!("contact {c} is not a contact of partner `{}`", partner.name),
                ));
            }
        }
        let (lead, kind) = input.build(ctx.tenant, partner.id, &pipeline, now)?;
        self.lead_ref_free(&lead).await?;
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # let pipeline = crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::lead::{LeadCommand, TransitionError};
    /// let offer = pipeline.stage_named("Offer").unwrap().id;
    /// let moved = crm.transition(&ctx, lead.id(), lead.version(), LeadCommand::MoveTo { stage: offer }).await?.record;
    /// assert_eq!((moved.stage(), moved.probability(), moved.version()), (offer, 50, 2));
    /// // The version the caller had is stale now.
    /// let err = crm.transition(&ctx, lead.id(), lead.version(), LeadCommand::Win).await.unwrap_err();
    /// assert!(matches!(err, Error::Conflict { expected: 1, actual: 2, .. }));
    /// // Losing needs a reason from the tenant's list.
    /// let lose = LeadCommand::Lose { reason: None, competitor: None, note: None };
    /// let err = crm.transition(&ctx, lead.id(), moved.version(), lose).await.unwrap_err();
    /// assert!(matches!(err, Error::Transition(TransitionError::MissingLostReason)));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] when the lead is not the tenant's; [`Error::Conflict`] when `expected_version` is
    ///   stale;
    /// - [`Error::Transition`] naming the rule: [`NotOpen`](crate::lead::TransitionError::NotOpen) (moving, winning
    ///   or losing a won or lost lead), [`AlreadyOpen`](crate::lead::TransitionError::AlreadyOpen) (reopening an
    ///   open one), [`UnknownStage`](crate::lead::TransitionError::UnknownStage),
    ///   [`SameStage`](crate::lead::TransitionError::SameStage),
    ///   [`IllegalMove`](crate::lead::TransitionError::IllegalMove) (the pipeline's move policy),
    ///   [`UnmetRequirement`](crate::lead::TransitionError::UnmetRequirement) (a field or request the target stage
    ///   requires), [`MissingLostReason`](crate::lead::TransitionError::MissingLostReason),
    ///   [`UnknownLostReason`](crate::lead::TransitionError::UnknownLostReason) (not an active reason of the
    ///   tenant), [`NoWonStage`](crate::lead::TransitionError::NoWonStage) and
    ///   [`ReopenIntoWonStage`](crate::lead::TransitionError::ReopenIntoWonStage);
    /// - [`Error::Invalid`] on `competitor` and `note` when losing; when editing, on `contact` (not one of the
    ///   partner's), `title`, `description`, `expected_revenue` (negative), `probability` (over 100),
    ///   `expected_close` (outside the business dates) and `tags`;
    /// - [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    ///   written), and whatever a [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    ///   [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    ///
    /// A command that changes nothing (an edit to the same values) returns the lead as it is, with no events.
    pub async fn transition(
        &self,
        ctx: &Context,
        id: LeadId,
        expected_version: u64,
        cmd: LeadCommand,
    ) -> Result<Outcome<Lead>> {
        match self
            .transition_decided(ctx, id, expected_version, cmd)
            .await?
        {
            Ok((cs, lead, (partner, key))) => {
                // The partner and its key came with the lead: neither the rules' context nor the sealing of the
                // move's events reads them again.
                let known = Loaded {
                    partners: partner.into_iter().collect(),
                    keys: key.into_iter().collect(),
                    ..Loaded::default()
                };
                let events = self.commit_known(ctx, cs, known).await?;
                Ok(Outcome {
                    record: lead,
                    events,
                })
            }
            Err(unchanged) => Ok(Outcome {
                record: unchanged,
                events: Vec::new(),
            }),
        }
    }

    /// The writes of a lead transition (the updated lead, its events and stage-history step), not committed:
    /// `Ok(Err(lead))` when the command changes nothing. Other writers (accepting a quotation that wins its lead)
    /// commit them in their own change set.
    pub(crate) async fn transition_writes(
        &self,
        ctx: &Context,
        id: LeadId,
        expected_version: u64,
        cmd: LeadCommand,
    ) -> Result<std::result::Result<(ChangeSet, Lead), Lead>> {
        Ok(self
            .transition_decided(ctx, id, expected_version, cmd)
            .await?
            .map(|(cs, lead, _)| (cs, lead)))
    }

    /// [`CrmService::transition_writes`] with the lead's partner and its subject key when they came with the lead
    /// (the same read).
    async fn transition_decided(
        &self,
        ctx: &Context,
        id: LeadId,
        expected_version: u64,
        cmd: LeadCommand,
    ) -> Result<std::result::Result<(ChangeSet, Lead, PartnerAndKey), Lead>> {
        // The lead, its pipeline, its partner and the partner's key in one read; a merged lead's id names its
        // survivor.
        let mut read = self
            .store
            .fetch(ctx.tenant, &Key::LeadWithPipeline(id))
            .await?
            .into_iter();
        let (current, pipeline, partner, key) = match (read.next(), read.next()) {
            (Some(Record::Lead(l)), Some(Record::Pipeline(p)))
                if l.status.kind() != StatusKind::Merged =>
            {
                let (mut partner, mut key) = (None, None);
                for r in read {
                    match r {
                        Record::Partner(a) if a.id == l.partner => partner = Some(a),
                        Record::SubjectKey(k) if k.subject == *l.partner.as_uuid() => key = Some(k),
                        _ => {}
                    }
                }
                (l, p, partner, key)
            }
            (None, _) => return Err(Error::not_found("lead", id)),
            _ => {
                let l = self.live_lead(ctx.tenant, id).await?;
                let p = self.store.pipeline(ctx.tenant, l.pipeline).await?;
                (l, p, None, None)
            }
        };
        let id = current.id;
        check_version("lead", id, expected_version, current.version)?;
        let reasons = if matches!(cmd, LeadCommand::Lose { .. }) {
            self.store.lost_reasons(ctx.tenant).await?
        } else {
            Vec::new()
        };
        let needs = |want: fn(&Requirement) -> bool| {
            pipeline
                .stages
                .iter()
                .any(|s| s.requirements.iter().any(want))
        };
        let needs_requests = needs(|r| {
            matches!(
                r,
                Requirement::RequestDone { .. } | Requirement::NoOpenRequests
            )
        });
        let quotations = if needs(|r| matches!(r, Requirement::QuotationSent)) {
            self.quotation_statuses(ctx.tenant, id).await?
        } else {
            Vec::new()
        };
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
                let partner = match &partner {
                    Some(a) => a.clone(),
                    None => self.store.partner(ctx.tenant, current.partner).await?,
                };
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
            quotations: &quotations,
        };
        let t = lead::apply(&current, cmd, &pipeline, facts, now)?;
        if t.events.is_empty() {
            return Ok(Err(current));
        }
        if t.lead.host_ref != current.host_ref {
            self.lead_ref_free(&t.lead).await?;
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
        Ok(Ok((cs, t.lead, (partner, key))))
    }

    /// A lead.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::id::LeadId;
    /// let read = crm.lead(ctx.tenant, lead.id()).await?;
    /// assert_eq!((read.title(), read.version()), ("Forklifts", 1));
    /// let err = crm.lead(ctx.tenant, LeadId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "lead", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the lead is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn lead(&self, tenant: TenantId, id: LeadId) -> Result<Lead> {
        self.live_lead(tenant, id).await
    }

    /// Leads matching a query.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::store::{LeadQuery, PageRequest};
    /// let by_text = LeadQuery { text: Some("forklift".into()), ..Default::default() };
    /// let page = crm.query_leads(ctx.tenant, &by_text).await?;
    /// assert_eq!(page.items, vec![lead]);
    /// assert!(page.next.is_none()); // the last page
    /// let empty_page = LeadQuery { page: PageRequest::first(0), ..Default::default() };
    /// assert_eq!(crm.query_leads(ctx.tenant, &empty_page).await.unwrap_err().field(), Some("page.limit"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `page.limit` (outside 1–1000) or `page.after` (not a cursor this engine returned);
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn query_leads(&self, tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>> {
        query.page.validate()?;
        self.store.query_leads(tenant, query).await
    }

    /// The board of a pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # let pipeline = crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::id::PipelineId;
    /// let board = crm.board(ctx.tenant, pipeline.id()).await?;
    /// assert_eq!(board.columns.len(), 6);
    /// assert_eq!((board.columns[0].name.as_str(), board.columns[0].count), ("Record", 1));
    /// let err = crm.board(ctx.tenant, PipelineId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "pipeline", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the pipeline is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn board(&self, tenant: TenantId, pipeline: PipelineId) -> Result<Board> {
        self.store.board(tenant, pipeline).await
    }

    /// A lead's stage history.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # let pipeline = crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::lead::LeadCommand;
    /// let offer = pipeline.stage_named("Offer").unwrap().id;
    /// crm.transition(&ctx, lead.id(), lead.version(), LeadCommand::MoveTo { stage: offer }).await?;
    /// let steps = crm.stage_history(ctx.tenant, lead.id()).await?;
    /// assert_eq!(steps.len(), 2);
    /// assert_eq!((steps[0].from, steps[1].from, steps[1].to), (None, Some(lead.stage()), offer));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the lead is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn stage_history(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<StageHistoryEntry>> {
        self.store.lead(tenant, lead).await?;
        self.store.stage_history(tenant, lead).await
    }

    /// Seconds spent in each stage by a lead, up to now for its current stage.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # use chrono::{TimeZone, Utc};
    /// # let clock = Arc::new(crm_core::time::FixedClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()));
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).clock(clock.clone()).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// use chrono::Duration;
    /// use crm_core::lead::{LeadPartner, NewLead};
    /// let partner = LeadPartner::New { partner: crm_core::partner::NewPartner::company("Acme SRL") };
    /// let lead = crm.enter_lead(&ctx, NewLead::new(partner, "Forklifts")).await?.record;
    /// clock.advance(Duration::hours(2));
    /// assert_eq!(crm.time_in_stage(ctx.tenant, lead.id()).await?, vec![(lead.stage(), 7200)]);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the lead is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn time_in_stage(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<(crate::id::StageId, i64)>> {
        let h = self.stage_history(tenant, lead).await?;
        Ok(lead::time_in_stage(&h, self.clock.now()))
    }

    /// The funnel of a pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # let pipeline = crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::lead::LeadCommand;
    /// crm.transition(&ctx, lead.id(), lead.version(), LeadCommand::Win).await?;
    /// let funnel = crm.funnel(ctx.tenant, pipeline.id(), None).await?;
    /// assert_eq!((funnel.won, funnel.lost), (1, 0));
    /// let now = crm.clock().now();
    /// let err = crm.funnel(ctx.tenant, pipeline.id(), Some((now, now))).await.unwrap_err();
    /// assert_eq!(err.field(), Some("period"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `period` when its end is not after its start; [`Error::NotFound`] when the pipeline is
    /// not the tenant's; [`Error::Storage`] when the store cannot be read.
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
            CommentTarget::Lead(id) => lead_subject(&self.live_lead(tenant, id).await?),
            CommentTarget::Partner(id) => Subject {
                partner: Some(self.store.partner(tenant, id).await?.id),
                ..Default::default()
            },
            CommentTarget::Request(id) => request_subject(&self.store.request(tenant, id).await?),
        })
    }

    /// Adds a comment to a lead, partner or request.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{event::CommentTarget, id::LeadId};
    /// let out = crm.comment(&ctx, CommentTarget::Lead(lead.id()), "Called: wants a demo").await?;
    /// assert_eq!(out.record.body(), "Called: wants a demo");
    /// assert_eq!(out.events.len(), 1); // CommentAdded
    /// assert_eq!(crm.comment(&ctx, CommentTarget::Lead(lead.id()), " ").await.unwrap_err().field(), Some("body"));
    /// let err = crm.comment(&ctx, CommentTarget::Lead(LeadId::new()), "Hello").await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "lead", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `body` (empty, longer than 20 000 characters, control characters); [`Error::NotFound`]
    /// when the lead, partner or request is not the tenant's; [`Error::Storage`] when the store cannot be read or
    /// the change cannot be committed (nothing is then written), and whatever a [`CommitHook`] returns (a rule's
    /// guard refuses with [`Error::Transition`] carrying
    /// [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    pub async fn comment(
        &self,
        ctx: &Context,
        target: CommentTarget,
        body: &str,
    ) -> Result<Outcome<Comment>> {
        let now = self.clock.now();
        let subject = self.subject_of(ctx.tenant, target).await?;
        // A merged lead's id names its survivor.
        let target = match (target, subject.lead) {
            (CommentTarget::Lead(_), Some(live)) => CommentTarget::Lead(live),
            (t, _) => t,
        };
        let (c, kind) = Comment::new(ctx.tenant, target, ctx.actor.clone(), body, now)?;
        let cs = self.change(ctx, now, Write::InsertComment(c.clone()), subject, kind);
        self.commit_outcome(ctx, cs, c).await
    }

    /// Comments on a record, newest first.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{event::CommentTarget, store::PageRequest};
    /// let on_lead = CommentTarget::Lead(lead.id());
    /// crm.comment(&ctx, on_lead, "Called: wants a demo").await?;
    /// crm.comment(&ctx, on_lead, "Demo booked").await?;
    /// let first = crm.comments(ctx.tenant, on_lead, &PageRequest::first(1)).await?;
    /// assert_eq!(first.items.len(), 1);
    /// let rest = PageRequest { limit: 10, after: first.next };
    /// assert_eq!(crm.comments(ctx.tenant, on_lead, &rest).await?.items.len(), 1);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `page.limit` (outside 1–1000) or `page.after` (not a cursor this engine returned);
    /// [`Error::NotFound`] when the lead, partner or request is not the tenant's; [`Error::Storage`] when the store
    /// cannot be read.
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{event::RequestStatus, request::NewRequest};
    /// let agent = UserId::new();
    /// let input = NewRequest::on_lead(lead.id(), "Send the offer", agent).of_kind("quotation");
    /// let request = crm.open_request(&ctx, input).await?.record;
    /// assert_eq!(request.partner(), Some(lead.partner())); // taken from the lead
    /// assert_eq!(request.status(), RequestStatus::Open);
    /// let mut no_one = NewRequest::on_lead(lead.id(), "Call back", agent);
    /// no_one.assignee = None;
    /// assert_eq!(crm.open_request(&ctx, no_one).await.unwrap_err().field(), Some("assignee"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] when the lead or partner is not the tenant's;
    /// - [`Error::Invalid`] on `partner` when both are given and the partner is not the lead's; on `lead` when
    ///   neither is given; on `title`, `assignee` (none given), `due` (in the past), `kind` (not a tag) and
    ///   `description`;
    /// - [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    ///   written), and whatever a [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    ///   [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
    pub async fn open_request(
        &self,
        ctx: &Context,
        mut input: NewRequest,
    ) -> Result<Outcome<Request>> {
        let now = self.clock.now();
        let partner = match (input.lead, input.partner) {
            (Some(l), given) => {
                // A merged lead's id names its survivor.
                let lead = self.live_lead(ctx.tenant, l).await?;
                input.lead = Some(lead.id);
                let not_the_leads =
                    || Error::invalid("partner", "the partner is not the lead's partner");
                if let Some(p) = given.filter(|p| *p != lead.partner) {
                    // A merged partner's id names its survivor, which may be the lead's partner.
                    let named = match self.store.partner(ctx.tenant, p).await {
                        Ok(named) => self.live(ctx.tenant, named).await?,
                        Err(Error::NotFound { .. }) => return Err(not_the_leads()),
                        Err(e) => return Err(e),
                    };
                    if named.id != lead.partner {
                        return Err(not_the_leads());
                    }
                }
                Some(lead.partner)
            }
            (None, Some(p)) => {
                let p = self.store.partner(ctx.tenant, p).await?;
                Some(self.live(ctx.tenant, p).await?.id)
            }
            (None, None) => None,
        };
        let (r, kind) = input.build(ctx.tenant, partner, ctx.actor.clone(), now)?;
        let cs = self.change(
            ctx,
            now,
            Write::InsertRequest(r.clone()),
            request_subject(&r),
            kind,
        );
        self.commit_outcome(ctx, cs, r).await
    }

    /// Changes a request (status, assignee, due time) based on `expected_version`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{event::RequestStatus, request::{NewRequest, RequestCommand}};
    /// let r = crm.open_request(&ctx, NewRequest::on_lead(lead.id(), "Send the offer", UserId::new())).await?.record;
    /// let done = RequestCommand::SetStatus { status: RequestStatus::Done };
    /// let closed = crm.change_request(&ctx, r.id(), r.version(), done).await?.record;
    /// assert!(closed.closed_at().is_some());
    /// // A done request is reopened, not worked on.
    /// let resume = RequestCommand::SetStatus { status: RequestStatus::InProgress };
    /// let err = crm.change_request(&ctx, r.id(), closed.version(), resume).await.unwrap_err();
    /// assert_eq!(err.field(), Some("status"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] when the request is not the tenant's; [`Error::Conflict`] when `expected_version` is
    ///   stale;
    /// - [`Error::Invalid`] on `status` for a move [`Request::can_move`](crate::request::Request::can_move) refuses,
    ///   on `assignee` when reassigning to the current assignee, on `due` when rescheduling into the past;
    /// - [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    ///   written), and whatever a [`CommitHook`] returns (a rule's guard refuses with [`Error::Transition`] carrying
    ///   [`RefusedByRule`](crate::lead::TransitionError::RefusedByRule)).
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
        let write = Write::UpdateRequest {
            request: next.clone(),
            expected_version,
        };
        let cs = self.change(ctx, now, write, request_subject(&next), kind);
        self.commit_outcome(ctx, cs, next).await
    }

    /// A request.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{id::RequestId, request::NewRequest};
    /// let r = crm.open_request(&ctx, NewRequest::on_lead(lead.id(), "Send the offer", UserId::new())).await?.record;
    /// assert_eq!(crm.request(ctx.tenant, r.id()).await?, r);
    /// let err = crm.request(ctx.tenant, RequestId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "request", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the request is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn request(&self, tenant: TenantId, id: RequestId) -> Result<Request> {
        self.store.request(tenant, id).await
    }

    /// Requests matching a query, overdue first.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{request::NewRequest, store::RequestQuery};
    /// let (ana, ion) = (UserId::new(), UserId::new());
    /// crm.open_request(&ctx, NewRequest::on_lead(lead.id(), "Send the offer", ana)).await?;
    /// crm.open_request(&ctx, NewRequest::on_lead(lead.id(), "Visit", ion)).await?;
    /// let q = RequestQuery { assignee: Some(ana), ..Default::default() };
    /// let page = crm.query_requests(ctx.tenant, &q).await?;
    /// assert_eq!(page.items.len(), 1);
    /// assert_eq!(page.items[0].title(), "Send the offer");
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `page.limit` (outside 1–1000) or `page.after` (not a cursor this engine returned);
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn query_requests(
        &self,
        tenant: TenantId,
        query: &RequestQuery,
    ) -> Result<Page<Request>> {
        query.page.validate()?;
        self.store.query_requests(tenant, query).await
    }

    /// Every request on a lead (all pages).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{id::LeadId, request::NewRequest};
    /// for title in ["Send the offer", "Visit"] {
    ///     crm.open_request(&ctx, NewRequest::on_lead(lead.id(), title, UserId::new())).await?;
    /// }
    /// assert_eq!(crm.requests_of_lead(ctx.tenant, lead.id()).await?.len(), 2);
    /// assert!(crm.requests_of_lead(ctx.tenant, LeadId::new()).await?.is_empty()); // no lead, no requests
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read. An unknown lead is not an error: it has no requests.
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::{event::{CommentTarget, EventKind}, store::{PageRequest, TimelineOf}};
    /// crm.comment(&ctx, CommentTarget::Lead(lead.id()), "Called: wants a demo").await?;
    /// let page = crm.timeline(ctx.tenant, TimelineOf::Lead(lead.id()), &PageRequest::first(50)).await?;
    /// assert_eq!(page.items.len(), 2); // LeadEntered and CommentAdded
    /// assert!(page.items.iter().any(|e| matches!(e.kind, EventKind::CommentAdded { .. })));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `page.limit` (outside 1–1000) or `page.after` (not a cursor this engine returned);
    /// [`Error::NotFound`] when the lead, partner or request is not the tenant's; [`Error::Storage`] when the store
    /// cannot be read.
    pub async fn timeline(
        &self,
        tenant: TenantId,
        of: TimelineOf,
        page: &PageRequest,
    ) -> Result<Page<DomainEvent>> {
        page.validate()?;
        let page = self.store.timeline(tenant, of, page).await?;
        let next = page.next.clone();
        let items = open_events(self.store.as_ref(), tenant, page.items).await?;
        Ok(Page { items, next })
    }

    /// The tenant's events in commit order after position `after` (0 = from the start), at most `limit` (up to
    /// 10 000), with their positions, opened ([`open_events`]): what a host feeds its own subscribers from.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use crm_core::conformance::{model::MemStore, World};
    /// use crm_core::event::EventKind;
    /// use crm_core::store::Store;
    /// use std::sync::Arc;
    /// let store: Arc<dyn Store> = Arc::new(MemStore::new());
    /// let w = World::new(&store).await;
    /// w.partner("Ilinca Vasilescu").await;
    /// let feed = w.crm.events_since(w.tenant, 0, 100).await.unwrap();
    /// let created = feed.iter().find(|(_, e)| matches!(&e.kind, EventKind::PartnerCreated { .. })).unwrap();
    /// assert!(matches!(&created.1.kind, EventKind::PartnerCreated { name } if name == "Ilinca Vasilescu"));
    /// // As stored, it is sealed: the name is not in it.
    /// let (_, stored) = &store.events_since(w.tenant, 0, 100).await.unwrap()[created.0 as usize - 1];
    /// assert!(!serde_json::to_string(stored).unwrap().contains("Ilinca"));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read or an event does not open.
    pub async fn events_since(
        &self,
        tenant: TenantId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, DomainEvent)>> {
        let rows = self.store.events_since(tenant, after, limit).await?;
        open_feed(self.store.as_ref(), tenant, rows).await
    }
}

impl CrmService {
    /// The statuses of a lead's quotation revisions, from the commerce store.
    async fn quotation_statuses(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<crate::kinds::QuotationStatus>> {
        use crate::commerce::CommerceStoreExt;
        let commerce = self.commerce.as_ref().ok_or_else(|| {
            Error::invalid(
                "requirements",
                "a stage requires a sent quotation, but the lead service has no commerce store to read quotations \
                 from (CrmServiceBuilder::commerce)",
            )
        })?;
        let quotations = commerce.quotations_of_lead(tenant, lead).await?;
        Ok(quotations.iter().map(|q| q.status()).collect())
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
pub(crate) fn check_version(
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

#[cfg(all(test, feature = "conformance"))]
mod tests {
    //! The crate-private commit path: what the host can no longer call directly still refuses what it must.
    use super::*;
    use crate::conformance::model::MemStore;
    use crate::id::UserId;
    use crate::pipeline::LostReason;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn commit_inserts_once_and_refuses_the_same_insert_again() {
        block_on(async {
            let crm = CrmService::builder()
                .store(Arc::new(MemStore::new()))
                .build()
                .unwrap();
            let ctx = Context::user(TenantId::new(), UserId::new());
            let reason = LostReason::new(ctx.tenant, "Went bankrupt").unwrap();
            let changes: ChangeSet = [Write::InsertLostReason(reason.clone())]
                .into_iter()
                .collect();
            let events = crm.commit(&ctx, changes.clone()).await.unwrap();
            assert!(events.is_empty(), "a lost reason has no event");
            assert!(crm
                .lost_reasons(ctx.tenant)
                .await
                .unwrap()
                .contains(&reason));
            let err = crm.commit(&ctx, changes).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::AlreadyExists {
                        entity: "lost reason",
                        ..
                    }
                ),
                "{err}"
            );
        });
    }

    #[test]
    fn commit_loaded_refuses_another_tenants_record_and_writes_nothing() {
        block_on(async {
            let crm = CrmService::builder()
                .store(Arc::new(MemStore::new()))
                .build()
                .unwrap();
            let ctx = Context::user(TenantId::new(), UserId::new());
            let reason = LostReason::new(TenantId::new(), "Went bankrupt").unwrap();
            let changes: ChangeSet = [Write::InsertLostReason(reason)].into_iter().collect();
            let err = crm
                .commit_loaded(&ctx, changes, &Loaded::default())
                .await
                .unwrap_err();
            assert_eq!(err.field(), Some("tenant"));
            assert!(crm.lost_reasons(ctx.tenant).await.unwrap().is_empty());
        });
    }
}

/// A host reference to look up: valid and not empty.
fn required_ref(host_ref: &str) -> Result<String> {
    crate::partner::host_ref(Some(host_ref))?.ok_or_else(|| Error::invalid("host_ref", "empty"))
}
