//! # crm: the CRM engine that ERPs embed
//!
//! A library the host ERP links directly: leads and pipelines, partners, requests, an append-only activity log,
//! campaigns, profitability and communication rules, stored in the host's own database (embedded SQLite by
//! default, PostgreSQL for scale) — no second system and no synchronisation.
//!
//! [`Crm`] holds **one backend** (a storage adapter implementing every storage trait, see [`Backend`]) and hands
//! out each capability from it:
//!
//! - [`Crm::leads`]: partners, pipelines, leads and their transitions, requests, comments, timelines
//!   ([`LeadService`]);
//! - [`Crm::commerce`]: products, documents, exchange rates, balances, segments, campaigns and profitability, and
//!   the documents a lead lives on: quotations, contracts and meetings ([`CommerceService`], types in [`sales`];
//!   quotation PDFs in `crm::pdf` with the `pdf` feature, on by default), and the files attached to leads,
//!   partners, requests, quotations and contracts, whose bytes stream to a [`BlobStore`] ([`FsBlobStore`] in a
//!   directory, [`ObjectBlobStore`] over any `object_store`; see [`CrmBuilder::blob_store`]);
//! - [`Crm::outbox`], [`Crm::dispatcher`], [`Crm::inbox_notifier`] and [`Crm::task_notifier`]: the transactional
//!   outbox the communication rules write to, and its delivery;
//! - [`Crm::tick`]: the rules' timers, when a rule engine was given to [`CrmBuilder::rules`].
//!
//! Writes take a [`Context`] (tenant, actor, channel) and commit in one transaction with their events (the activity
//! log); reads take the [`TenantId`](id::TenantId) whose rows they return.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
//! use crm::{Crm, Context, NewLead, LeadPartner, NewPartner, LeadCommand, Money};
//! use crm::id::{TenantId, UserId};
//! let crm = Crm::builder().sqlite_in_memory().build().await?;
//! let ctx = Context::user(TenantId::new(), UserId::new());
//! crm.leads().setup_tenant(&ctx).await?;
//! let lead = crm
//!     .leads()
//!     .enter_lead(&ctx, NewLead::new(LeadPartner::New { partner: NewPartner::company("Acme SRL") }, "Forklifts")
//!         .with_revenue(Money::parse("12000", "EUR")?))
//!     .await?
//!     .record;
//! let won = crm.leads().transition(&ctx, lead.id(), lead.version(), LeadCommand::Win).await?.record;
//! assert_eq!(won.probability(), 100);
//! # Ok(()) }
//! ```

#[cfg(feature = "sqlite")]
use std::path::PathBuf;
use std::sync::Arc;

pub use async_trait::async_trait;
/// Where attachment bytes live: [`FsBlobStore`], [`ObjectBlobStore`], and the `object_store` crate they use.
pub use crm_blob as blob;
pub use crm_blob::{FsBlobStore, ObjectBlobStore};
pub use crm_core;
pub use crm_core::actor::{Actor, Context, Source};
pub use crm_core::commerce;
pub use crm_core::commerce::{CommerceStore, CommerceStoreExt, RateSource};
pub use crm_core::comms::{Directory, RuleEngine, StaticDirectory};
pub use crm_core::contact;
pub use crm_core::dedupe::DuplicateCandidate;
pub use crm_core::error::{Error, Result, StorageErrorKind};
pub use crm_core::event::{
    CommentTarget, DomainEvent, EventKind, RequestStatus, StageHistoryEntry, Subject,
};
pub use crm_core::lead::{Lead, LeadCommand, LeadPartner, LeadPatch, NewLead, StatusKind};
pub use crm_core::money::{Currency, Money};
pub use crm_core::outbox::{
    Channel, Notifier, OutboxMessage, OutboxStatus, OutboxStore, OutboxStoreExt, RetryPolicy,
};
pub use crm_core::partner::{NewContact, NewPartner, Partner, PartnerPatch, PartnerRole};
pub use crm_core::pipeline::{LostReason, NewPipeline, Pipeline, Stage, StageKind};
pub use crm_core::request::{Comment, NewRequest, Request, RequestCommand};
pub use crm_core::sales;
/// Self-service: representatives, rights, principals, and what the portal service takes and returns.
pub mod portal {
    pub use crm_core::portal::*;
    pub use crm_core::service::{
        Account, Invited, PortalRequest, PortalRequestKind, PortalService, Statement,
        INVITATION_TEMPLATE, LOGIN_TEMPLATE, MAX_HISTORY, MAX_PAGE, MAX_REQUEST_BODY,
    };
}
pub use crm_core::merge::{MergePlan, PartnerMerge};
pub use crm_core::sales::BlobStore;
pub use crm_core::service::CommerceService;
pub use crm_core::service::Erased;
pub use crm_core::service::PortalService;
pub use crm_core::service::RulesHook;
pub use crm_core::service::{
    message_key, CommitHook, CrmService as LeadService, Entered, EventSubscriber, Loaded, Outcome,
    SendRate,
};
pub use crm_core::store::{
    Backend, Board, BulkLoad, BulkStep, Funnel, LeadQuery, LeadSort, Page, PageRequest,
    RequestQuery, Store, StoreExt, TimelineOf,
};
pub use crm_core::time::{Clock, FixedClock, SystemClock, Timestamp};
pub use crm_core::{
    actor, comms, consent, dedupe, event, id, lead, merge, money, outbox, partner, pipeline,
    request, service, store, time,
};
pub use crm_delivery as delivery;
pub use crm_delivery::{ChannelRouter, DispatchReport, Dispatcher, InboxNotifier};
pub use crm_delivery::{TaskNotifier, TickReport};
/// Quotation PDFs typeset from an editable Typst template (feature `pdf`).
#[cfg(feature = "pdf")]
pub use crm_pdf as pdf;
/// The self-service web portal: an axum `Router` the host mounts (feature `web`).
#[cfg(feature = "web")]
pub use crm_portal as web;
/// Explainable lead scoring (feature `scoring`): fitted on the tenant's won and lost leads, stored on the open leads
/// (`LeadSort::ScoreDesc`, `lead_scored` for the rules), each score with its reasons.
#[cfg(feature = "scoring")]
pub use crm_scoring as scoring;

/// CSV and JSON import and export (the `crm-io` crate): [`io::import_csv`], [`io::export`].
#[cfg(feature = "io")]
pub use crm_io as io;
/// Exact decimals (quantities, prices, rates), as the engine's types take them.
pub use rust_decimal::Decimal;

#[cfg(feature = "sqlite")]
pub use crm_storage_sqlite as sqlite;

#[cfg(feature = "postgres")]
pub use crm_storage_postgres as postgres;

#[cfg(feature = "rules")]
pub use crm_rules as rules;

/// The engine: one [`Backend`] and the services over it, built with [`Crm::builder`]. Cheap to clone; share it.
#[derive(Debug, Clone)]
pub struct Crm {
    backend: Arc<dyn Backend>,
    leads: LeadService,
    commerce: CommerceService,
    portal: PortalService,
    rules: Option<(Arc<dyn RuleEngine>, Arc<dyn Directory>)>,
}

impl Crm {
    /// A builder.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// assert_eq!(crm.commerce().reporting().code(), "EUR"); // the default reporting currency
    /// # Ok(()) }
    /// ```
    pub fn builder() -> CrmBuilder {
        CrmBuilder::default()
    }

    /// Partners, pipelines, leads, requests, comments and timelines.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm::{LeadPartner, NewLead, NewPartner};
    /// let pipeline = crm.leads().setup_tenant(&ctx).await?;
    /// let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// let lead = crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts")).await?.record;
    /// assert_eq!(lead.stage(), pipeline.stages()[0].id);
    /// assert_eq!(crm.leads().lead(ctx.tenant, lead.id()).await?, lead);
    /// # Ok(()) }
    /// ```
    pub fn leads(&self) -> &LeadService {
        &self.leads
    }

    /// Products, documents, exchange rates, balances and open items, segments, campaigns and profitability.
    ///
    /// # Examples
    ///
    /// Documents, converted into the reporting currency (EUR by default) at their issue date:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use chrono::{Duration, NaiveDate};
    /// use crm::commerce::{NewDocument, NewLine, NewProduct};
    /// use crm::NewPartner;
    /// use rust_decimal::Decimal;
    /// let acme = crm.leads().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let drill = NewProduct { code: "P-1".into(), name: "Drill".into(), category: None };
    /// let drill = crm.commerce().record_product(&ctx, drill, None).await?.record().id();
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// crm.commerce().record_rate(&ctx, "RON", "EUR", on, Decimal::new(2, 1)).await?; // 1 RON = 0.2 EUR
    /// let line = NewLine::new(drill, Decimal::from(2), Decimal::from(500), Decimal::from(300)); // 2 × 500 RON
    /// let invoice = NewDocument::invoice("INV-1", acme.id(), on, "RON", vec![line]).due(on + Duration::days(30));
    /// assert!(crm.commerce().record_document(&ctx, invoice.clone()).await?.recorded.changed());
    /// assert!(!crm.commerce().record_document(&ctx, invoice).await?.recorded.changed()); // the same again: a no-op
    /// let balances = crm.commerce().balances(ctx.tenant, acme.id(), Some(on)).await?;
    /// assert_eq!((balances[0].currency.code(), balances[0].receivable), ("RON", Decimal::from(1000)));
    /// # Ok(()) }
    /// ```
    ///
    /// A telemarketing campaign, from its segment to its report:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// # let agent = UserId::new();
    /// # let ctx = Context::user(TenantId::new(), agent);
    /// use chrono::NaiveDate;
    /// use crm::commerce::{CallOutcome, Channel, Criteria, NewCampaign, Period};
    /// use crm::{NewPartner, PartnerRole};
    /// crm.leads().setup_tenant(&ctx).await?; // interested customers become leads in its default pipeline
    /// crm.leads().create_partner(&ctx, NewPartner::company("Acme SRL").with_role(PartnerRole::Customer)).await?;
    /// let march = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    /// let campaign = crm.commerce().create_campaign(&ctx, NewCampaign {
    ///     name: "Spring calls".into(), channel: Channel::Telemarketing, period: Period::new(march(1), march(31))?,
    ///     owner: agent, agents: vec![agent], script: None, budget: None,
    ///     criteria: Some(Criteria::Role { role: PartnerRole::Customer }),
    /// }).await?;
    /// let launch = crm.commerce().launch_campaign(&ctx, campaign.id(), campaign.version()).await?;
    /// assert_eq!(launch.calls.len(), 1); // one call to each customer, for the agent
    /// let called = crm.commerce().record_call_outcome(&ctx, launch.calls[0].id(), CallOutcome::Interested).await?;
    /// assert!(called.lead.is_some());
    /// let report = crm.commerce().campaign_report(ctx.tenant, campaign.id(), None).await?;
    /// assert_eq!((report.targets, report.interested, report.leads), (1, 1, 1));
    /// let all = crm.commerce().campaign_reports(ctx.tenant, None).await?; // every campaign's, in one snapshot
    /// assert_eq!(all, vec![report]);
    /// crm.commerce().close_campaign(&ctx, campaign.id(), launch.campaign.version()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// An e-mail campaign, from its message to its progress (the outbox's dispatcher delivers the e-mails; the host
    /// passes on what its mail provider reports):
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// # let owner = UserId::new();
    /// # let ctx = Context::user(TenantId::new(), owner);
    /// use chrono::NaiveDate;
    /// use crm::commerce::send::{CampaignMessage, DeliveryReport, SendStatus};
    /// use crm::commerce::{Channel, Criteria, NewCampaign, Period};
    /// use crm::consent::NewConsent;
    /// use crm::{NewContact, NewPartner, PartnerRole};
    /// let mut acme = NewPartner::company("Acme SRL").with_role(PartnerRole::Customer);
    /// acme.contacts.push(NewContact { name: "Maria Pop".into(), email: Some("maria@acme.example".into()), ..Default::default() });
    /// let acme = crm.leads().create_partner(&ctx, acme).await?.record;
    /// let yes = NewConsent { channel: "email".into(), purpose: "marketing".into(), granted: true,
    ///     source: "newsletter form".into(), proof: None };
    /// crm.leads().record_consent(&ctx, acme.id(), acme.version(), acme.contacts()[0].id, yes).await?;
    /// let march = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    /// let campaign = crm.commerce().create_campaign(&ctx, NewCampaign {
    ///     name: "Spring pumps".into(), channel: Channel::Email, period: Period::new(march(1), march(31))?,
    ///     owner, agents: vec![], script: None, budget: None,
    ///     criteria: Some(Criteria::Role { role: PartnerRole::Customer }),
    /// }).await?;
    /// let message = CampaignMessage::email("{{ campaign.name }}", "Dear {{ contact.name }}, {{ campaign.offer }}.")
    ///     .with_offer("10% off every pump");
    /// let campaign = crm.commerce().set_campaign_message(&ctx, campaign.id(), campaign.version(), message).await?;
    /// crm.commerce().launch_campaign(&ctx, campaign.id(), campaign.version()).await?;
    /// let sent = crm.commerce().send_campaign(&ctx, campaign.id()).await?;
    /// assert_eq!(sent.queued, 1);
    /// assert_eq!(crm.commerce().send_campaign(&ctx, campaign.id()).await?.queued, 0); // never twice
    /// let key = crm::message_key(campaign.id(), acme.id()); // the outbox message's idempotency key
    /// crm.commerce().report_campaign_message(&ctx, &key, DeliveryReport::Opened).await?;
    /// let progress = crm.commerce().progress(ctx.tenant, campaign.id()).await?;
    /// assert_eq!(progress[0].messages.get(&SendStatus::Opened), Some(&1));
    /// # Ok(()) }
    /// ```
    pub fn commerce(&self) -> &CommerceService {
        &self.commerce
    }

    /// Self-service: the staff invite a partner's contacts as representatives with rights; a representative logs in
    /// with the invitation and reads its own partner's statement, documents and requests, opens requests, answers
    /// quotations and asks for contracts. Every read carries the tenant and the partner in its statement.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm::portal::{PortalRequest, PortalRequestKind, Right, Rights};
    /// use crm::{NewContact, NewPartner, PageRequest};
    /// let mut acme = NewPartner::company("Acme SRL");
    /// acme.owner = Some(UserId::new());
    /// acme.contacts.push(NewContact { name: "Maria".into(), email: Some("maria@acme.example".into()), ..Default::default() });
    /// let acme = crm.leads().create_partner(&ctx, acme).await?.record;
    /// let rights = Rights::none().with(Right::Statement).with(Right::Requests);
    /// let invited = crm.portal().invite(&ctx, acme.id(), acme.contacts()[0].id, rights).await?;
    /// // The token reaches Maria by e-mail (the outbox); her link brings it back:
    /// let maria = crm.portal().login(ctx.tenant, invited.token.as_str()).await?;
    /// let statement = crm.portal().statement(&maria, None).await?;
    /// assert!(statement.open_items.is_empty());
    /// let ask = PortalRequest { kind: PortalRequestKind::Question, title: "Prices".into(), body: "For 2027?".into() };
    /// crm.portal().open_request(&maria, ask).await?;
    /// assert_eq!(crm.portal().requests(&maria, PageRequest::first(10)).await?.items.len(), 1);
    /// assert!(matches!(crm.portal().documents(&maria, None, 10).await, Err(Error::Forbidden { right: "documents" })));
    /// # Ok(()) }
    /// ```
    pub fn portal(&self) -> &PortalService {
        &self.portal
    }

    /// The backend every capability reads and writes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm::StoreExt;
    /// let pipeline = crm.leads().setup_tenant(&ctx).await?;
    /// assert_eq!(crm.backend().pipelines(ctx.tenant).await?, vec![pipeline]);
    /// # Ok(()) }
    /// ```
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The transactional outbox (messages the rules decided) and the in-app inboxes.
    ///
    /// # Examples
    ///
    /// With a rule that notifies the owner of every new lead:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
    /// # use crm::{LeadPartner, NewLead, NewPartner, StaticDirectory};
    /// # let (tenant, ana) = (TenantId::new(), UserId::new());
    /// # let ctx = Context::user(tenant, ana);
    /// # let code = r#"fn on_lead_entered(ev) { notify("owner", `New lead: ${ev.title}`, "Call them."); }"#;
    /// # let rules = RuleSet::compile([RuleSource::new("welcome", code)], Limits::default()).expect("it compiles");
    /// # let engine = Arc::new(RhaiRuleEngine::new(rules));
    /// # let directory = Arc::new(StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None));
    /// # let crm = Crm::builder().sqlite_in_memory().rules(engine, directory).build().await?;
    /// # crm.leads().setup_tenant(&ctx).await?;
    /// # let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana)).await?.record;
    /// use crm::{OutboxStatus, OutboxStore, PageRequest};
    /// // The rule decided a notification in the same transaction as the lead:
    /// let pending = crm.outbox().list_outbox(tenant, OutboxStatus::Pending, &PageRequest::default()).await?;
    /// assert_eq!(pending.items.len(), 1);
    /// assert_eq!(pending.items[0].rule, "welcome");
    /// # Ok(()) }
    /// ```
    pub fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.backend.clone()
    }

    /// The clock every service uses.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// use chrono::{TimeZone, Utc};
    /// use crm::FixedClock;
    /// let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    /// let crm = Crm::builder().sqlite_in_memory().clock(Arc::new(FixedClock::new(at))).build().await?;
    /// assert_eq!(crm.clock().now(), at);
    /// # Ok(()) }
    /// ```
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.leads.clock()
    }

    /// A dispatcher delivering the outbox through `notifier` (route channels with a [`ChannelRouter`]); every
    /// e-mail about a lead, partner or request is logged on their timelines once delivered
    /// ([`Dispatcher::with_log`]).
    ///
    /// # Examples
    ///
    /// With a rule that notifies the owner of every new lead:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
    /// # use crm::{LeadPartner, NewLead, NewPartner, StaticDirectory};
    /// # let (tenant, ana) = (TenantId::new(), UserId::new());
    /// # let ctx = Context::user(tenant, ana);
    /// # let code = r#"fn on_lead_entered(ev) { notify("owner", `New lead: ${ev.title}`, "Call them."); }"#;
    /// # let rules = RuleSet::compile([RuleSource::new("welcome", code)], Limits::default()).expect("it compiles");
    /// # let engine = Arc::new(RhaiRuleEngine::new(rules));
    /// # let directory = Arc::new(StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None));
    /// # let crm = Crm::builder().sqlite_in_memory().rules(engine, directory).build().await?;
    /// # crm.leads().setup_tenant(&ctx).await?;
    /// # let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana)).await?.record;
    /// use crm::{Channel, ChannelRouter, OutboxStatus, OutboxStore, PageRequest};
    /// let router = ChannelRouter::new().route(Channel::InApp, Arc::new(crm.inbox_notifier()));
    /// let report = crm.dispatcher(Arc::new(router)).drain(100).await?;
    /// assert_eq!((report.delivered, report.retried, report.dead), (1, 0, 0));
    /// let pending = crm.outbox().list_outbox(tenant, OutboxStatus::Pending, &PageRequest::default()).await?;
    /// assert!(pending.items.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn dispatcher(&self, notifier: Arc<dyn Notifier>) -> Dispatcher {
        let log: Arc<dyn crm_core::store::Store> = self.backend.clone();
        Dispatcher::new(self.outbox(), notifier, self.clock().clone()).with_log(log)
    }

    /// Delivers in-app messages into the users' inboxes of this backend.
    ///
    /// # Examples
    ///
    /// With a rule that notifies the owner of every new lead:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
    /// # use crm::{LeadPartner, NewLead, NewPartner, StaticDirectory};
    /// # let (tenant, ana) = (TenantId::new(), UserId::new());
    /// # let ctx = Context::user(tenant, ana);
    /// # let code = r#"fn on_lead_entered(ev) { notify("owner", `New lead: ${ev.title}`, "Call them."); }"#;
    /// # let rules = RuleSet::compile([RuleSource::new("welcome", code)], Limits::default()).expect("it compiles");
    /// # let engine = Arc::new(RhaiRuleEngine::new(rules));
    /// # let directory = Arc::new(StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None));
    /// # let crm = Crm::builder().sqlite_in_memory().rules(engine, directory).build().await?;
    /// # crm.leads().setup_tenant(&ctx).await?;
    /// # let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana)).await?.record;
    /// use crm::{OutboxStore, PageRequest};
    /// crm.dispatcher(Arc::new(crm.inbox_notifier())).drain(100).await?;
    /// let inbox = crm.outbox().inbox(tenant, ana, false, &PageRequest::default()).await?;
    /// assert_eq!(inbox.items[0].subject, "New lead: Forklifts");
    /// assert_eq!(crm.outbox().unread_count(tenant, ana).await?, 1);
    /// # Ok(()) }
    /// ```
    pub fn inbox_notifier(&self) -> InboxNotifier {
        InboxNotifier::new(self.outbox(), self.clock().clone())
    }

    /// Delivers task messages by opening requests through this engine.
    ///
    /// # Examples
    ///
    /// With a rule that gives the owner of every new lead a task:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
    /// # use crm::{LeadPartner, NewLead, NewPartner, StaticDirectory};
    /// # let (tenant, ana) = (TenantId::new(), UserId::new());
    /// # let ctx = Context::user(tenant, ana);
    /// # let code = r#"fn on_lead_entered(ev) { open_request("owner", "Call the new lead"); }"#;
    /// # let rules = RuleSet::compile([RuleSource::new("call", code)], Limits::default()).expect("it compiles");
    /// # let engine = Arc::new(RhaiRuleEngine::new(rules));
    /// # let directory = Arc::new(StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None));
    /// # let crm = Crm::builder().sqlite_in_memory().rules(engine, directory).build().await?;
    /// # crm.leads().setup_tenant(&ctx).await?;
    /// # let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana)).await?.record;
    /// let report = crm.dispatcher(Arc::new(crm.task_notifier())).drain(100).await?;
    /// assert_eq!(report.delivered, 1);
    /// let requests = crm.leads().requests_of_lead(tenant, lead.id()).await?;
    /// assert_eq!((requests[0].title(), requests[0].assignee()), ("Call the new lead", ana));
    /// # Ok(()) }
    /// ```
    pub fn task_notifier(&self) -> TaskNotifier {
        TaskNotifier::new(self.leads.clone())
    }

    /// The scheduler's step for `tenant` at the clock's time: first the engine's own time rule, the expiry of the
    /// sent quotations past their validity ([`CommerceService::expire_quotations`], at most `limit`; their
    /// `quotation_expired` events reach the rules like any change's), then the rules' timers (at most `limit`
    /// candidates per timer), whose decisions commit in one transaction; returns what the timers fired.
    ///
    /// # Examples
    ///
    /// With a rule that reminds the owner of a lead idle for three days:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # use chrono::{TimeZone, Utc};
    /// # let clock = Arc::new(crm::FixedClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()));
    /// # use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
    /// # use crm::{LeadPartner, NewLead, NewPartner, StaticDirectory};
    /// # let (tenant, ana) = (TenantId::new(), UserId::new());
    /// # let ctx = Context::user(tenant, ana);
    /// # let code = r#"fn timers() { ["lead_idle:3"] }
    /// #     fn on_lead_idle(t) { notify("owner", "Idle lead", t.lead.title); }"#;
    /// # let rules = RuleSet::compile([RuleSource::new("idle", code)], Limits::default()).expect("it compiles");
    /// # let engine = Arc::new(RhaiRuleEngine::new(rules));
    /// # let directory = Arc::new(StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None));
    /// # let crm = Crm::builder().sqlite_in_memory().clock(clock.clone()).rules(engine, directory).build().await?;
    /// # crm.leads().setup_tenant(&ctx).await?;
    /// # let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana)).await?.record;
    /// use chrono::Duration;
    /// use crm::{OutboxStatus, OutboxStore, PageRequest};
    /// clock.advance(Duration::days(4));
    /// let report = crm.tick(tenant, 100).await?;
    /// assert_eq!(report.firings.len(), 1); // the lead is idle
    /// crm.tick(tenant, 100).await?; // ticking again enqueues nothing new
    /// let pending = crm.outbox().list_outbox(tenant, OutboxStatus::Pending, &PageRequest::default()).await?;
    /// assert_eq!(pending.items.len(), 1);
    /// // Without rules:
    /// let plain = Crm::builder().sqlite_in_memory().build().await?;
    /// assert_eq!(plain.tick(tenant, 100).await.unwrap_err().field(), Some("rules"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on field `rules` when the engine was built without [`CrmBuilder::rules`], on `timer` for a
    /// timer of the engine longer than [`MAX_TIMER_DAYS`](crm_core::comms::MAX_TIMER_DAYS) or past the calendar;
    /// [`Error::Storage`] when the candidates cannot be read or the decisions cannot be committed (nothing of the
    /// timers' is then committed; quotations already expired stay expired).
    pub async fn tick(&self, tenant: id::TenantId, limit: u32) -> Result<TickReport> {
        let (engine, directory) = self.rules.as_ref().ok_or_else(|| {
            Error::invalid(
                "rules",
                "no rule engine: give one to Crm::builder().rules(..)",
            )
        })?;
        let scheduler = Context {
            tenant,
            actor: crm_core::actor::Actor::System,
            source: crm_core::actor::Source::Scheduler,
        };
        self.commerce
            .expire_quotations(&scheduler, limit.max(1))
            .await?;
        let store: Arc<dyn Store> = self.backend.clone();
        let report = crm_delivery::tick(
            self.clock().now(),
            tenant,
            engine.as_ref(),
            directory.as_ref(),
            &self.backend,
            limit,
        )
        .await?;
        if !report.changes.writes().is_empty() {
            store.commit(tenant, report.changes.clone()).await?;
        }
        Ok(report)
    }
}

#[derive(Debug, Default)]
enum BackendChoice {
    #[default]
    None,
    Given(Arc<dyn Backend>),
    #[cfg(feature = "sqlite")]
    SqlitePath(PathBuf),
    #[cfg(feature = "sqlite")]
    SqliteMemory,
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl BackendChoice {
    /// The blob store used when the host gives none: files beside an SQLite file (`<file>.files`), memory beside an
    /// in-memory database; none otherwise.
    fn default_blob_store(&self) -> Option<Arc<dyn BlobStore>> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::SqlitePath(p) => {
                let mut files = p.clone().into_os_string();
                files.push(".files");
                Some(Arc::new(FsBlobStore::new(files)))
            }
            #[cfg(feature = "sqlite")]
            Self::SqliteMemory => {
                let memory = crm_blob::object_store::memory::InMemory::new();
                Some(Arc::new(ObjectBlobStore::new(Arc::new(memory))))
            }
            _ => None,
        }
    }
}

/// Builds a [`Crm`]: pick a backend (an SQLite file, in-memory SQLite, a PostgreSQL URL, or any [`Backend`]),
/// optionally a clock, the reporting currency, a rate source, the communication rules, commit hooks and event
/// subscribers.
#[derive(Debug, Default)]
pub struct CrmBuilder {
    backend: BackendChoice,
    /// The lead service's clock, rules hook, hooks and subscribers (its store is the backend, given at build).
    leads: crm_core::service::CrmServiceBuilder,
    reporting: Option<Currency>,
    rate_source: Option<Arc<dyn RateSource>>,
    rate_rules: Vec<(Option<id::TenantId>, commerce::RateRule)>,
    rules: Option<(Arc<dyn RuleEngine>, Arc<dyn Directory>)>,
    blob_store: Option<Arc<dyn BlobStore>>,
    payments: Option<Arc<dyn portal::PaymentProvider>>,
    login_base: Option<String>,
}

impl CrmBuilder {
    /// Keep the data in an SQLite file (created and migrated if needed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// let path = std::env::temp_dir().join(format!("crm-doc-{}.db", TenantId::new()));
    /// let pipeline = {
    ///     let crm = Crm::builder().sqlite_path(&path).build().await?;
    ///     crm.leads().setup_tenant(&ctx).await?
    /// };
    /// // Opened again, the file has the tenant's pipeline.
    /// let crm = Crm::builder().sqlite_path(&path).build().await?;
    /// assert_eq!(crm.leads().pipelines(ctx.tenant).await?, vec![pipeline]);
    /// # drop(crm);
    /// # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", path.display())); }
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    pub fn sqlite_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.backend = BackendChoice::SqlitePath(path.into());
        self
    }

    /// Keep the data in an in-memory SQLite database (tests, examples).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// assert!(crm.leads().pipelines(TenantId::new()).await?.is_empty()); // a new, empty database
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    pub fn sqlite_in_memory(mut self) -> Self {
        self.backend = BackendChoice::SqliteMemory;
        self
    }

    /// Keep the data in PostgreSQL at `url` (`postgres://user:password@host:port/db`), migrated on start.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// // Nothing listens on port 9 here: the engine reports the server unavailable (a retryable storage error).
    /// let err = Crm::builder().postgres("postgres://crm:secret@127.0.0.1:9/crm").build().await.unwrap_err();
    /// assert!(matches!(err, Error::Storage { kind: crm::StorageErrorKind::Unavailable, .. }));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.backend = BackendChoice::Postgres(url.into());
        self
    }

    /// Use any backend (an adapter opened by the host, or a decorator around one).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm::sqlite::SqliteStore;
    /// let store = Arc::new(SqliteStore::open_in_memory()?);
    /// let crm = Crm::builder().backend(store.clone()).build().await?;
    /// let pipeline = crm.leads().setup_tenant(&ctx).await?;
    /// use crm::StoreExt;
    /// assert_eq!(store.pipeline(ctx.tenant, pipeline.id()).await?, pipeline); // the host's handle sees it
    /// # Ok(()) }
    /// ```
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = BackendChoice::Given(backend);
        self
    }

    /// Use this clock (the system clock by default).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use chrono::{TimeZone, Utc};
    /// use crm::{FixedClock, NewPartner};
    /// let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    /// let crm = Crm::builder().sqlite_in_memory().clock(Arc::new(FixedClock::new(at))).build().await?;
    /// let acme = crm.leads().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert_eq!(acme.created_at(), at);
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.leads = self.leads.clock(clock);
        self
    }

    /// The currency reports and profitability are stated in (EUR by default); documents are converted into it
    /// once, at their issue date.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// use crm::Currency;
    /// let crm = Crm::builder().sqlite_in_memory().reporting_currency(Currency::parse("RON")?).build().await?;
    /// assert_eq!(crm.commerce().reporting().code(), "RON");
    /// # Ok(()) }
    /// ```
    pub fn reporting_currency(mut self, currency: Currency) -> Self {
        self.reporting = Some(currency);
        self
    }

    /// Where exchange rates come from when none is stored for a document's date.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// use chrono::NaiveDate;
    /// use crm::{commerce::RateTable, Currency};
    /// use rust_decimal::Decimal;
    /// let (usd, eur) = (Currency::parse("USD")?, Currency::parse("EUR")?);
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// let mut treasury = RateTable::new();
    /// treasury.insert(usd, eur, on, Decimal::new(92, 2))?; // the host's own rates
    /// let crm = Crm::builder().sqlite_in_memory().rate_source(Arc::new(treasury)).build().await?;
    /// assert_eq!(crm.commerce().resolve_rate(TenantId::new(), usd, on).await?.rate, Decimal::new(92, 2));
    /// # Ok(()) }
    /// ```
    pub fn rate_source(mut self, source: Arc<dyn RateSource>) -> Self {
        self.rate_source = Some(source);
        self
    }

    /// Which stored rate converts a document, for `tenant` (`None`: every tenant without a rule of its own): the
    /// latest on or before the issue date, at most as old as the rule allows (a week by default).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use crm::commerce::RateRule;
    /// use crm::id::TenantId;
    /// let monthly = TenantId::new();
    /// let crm = crm::Crm::builder()
    ///     .sqlite_in_memory()
    ///     .rate_rule(Some(monthly), RateRule::within_days(31)?)
    ///     .build()
    ///     .await?;
    /// assert_eq!(crm.commerce().rate_rule(monthly).max_age_days(), Some(31));
    /// assert_eq!(crm.commerce().rate_rule(TenantId::new()).max_age_days(), Some(7));
    /// # Ok(()) }
    /// ```
    pub fn rate_rule(mut self, tenant: Option<id::TenantId>, rule: commerce::RateRule) -> Self {
        self.rate_rules.push((tenant, rule));
        self
    }

    /// The host's payment gateway, through which partners' representatives pay open items in the portal
    /// ([`PortalService::pay`]); its answers that come later reach the engine through
    /// [`PortalService::gateway_answer`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// use crm::portal::{PaymentAttempt, PaymentProvider, ProviderAnswer};
    /// #[derive(Debug)]
    /// struct Gateway;
    /// #[crm::async_trait]
    /// impl PaymentProvider for Gateway {
    ///     async fn start(&self, attempt: &PaymentAttempt) -> crm::Result<ProviderAnswer> {
    ///         // Hand `attempt.total()` to the gateway under `attempt.key()`; it confirms by webhook.
    ///         Ok(ProviderAnswer::Pending { reference: format!("gw-{}", attempt.key()) })
    ///     }
    /// }
    /// let crm = Crm::builder().sqlite_in_memory().payment_provider(Arc::new(Gateway)).build().await?;
    /// # let _ = crm;
    /// # Ok(()) }
    /// ```
    pub fn payment_provider(mut self, provider: Arc<dyn portal::PaymentProvider>) -> Self {
        self.payments = Some(provider);
        self
    }

    /// The URL the portal's invitation e-mails link to, the token appended (`https://portal.example/login/`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// let crm = crm::Crm::builder().sqlite_in_memory().portal_login_base("https://portal.example/login/").build().await?;
    /// # let _ = crm;
    /// # Ok(()) }
    /// ```
    pub fn portal_login_base(mut self, base: impl Into<String>) -> Self {
        self.login_base = Some(base.into());
        self
    }

    /// The communication rules: every change is shown to `engine` inside its transaction (guards may refuse it;
    /// decided actions are written to the outbox atomically), recipients resolved through `directory`; timers run
    /// through [`Crm::tick`]. For one scheme per tenant, replaced at run time, pass a `crm::rules::SchemeRegistry`
    /// (each change is decided by its tenant's scheme, each tenant's tick fires its own scheme's timers).
    ///
    /// # Examples
    ///
    /// A rule that notifies the owner of every new lead, in-app:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// use crm::rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
    /// use crm::{LeadPartner, NewLead, NewPartner, OutboxStatus, OutboxStore, PageRequest, StaticDirectory};
    /// let (tenant, ana) = (TenantId::new(), UserId::new());
    /// let code = r#"fn on_lead_entered(ev) { notify("owner", `New lead: ${ev.title}`, "Call them."); }"#;
    /// let rules = RuleSet::compile([RuleSource::new("welcome", code)], Limits::default()).expect("it compiles");
    /// let directory = StaticDirectory::new(tenant).with_user(ana, "Ana", None, &["sales"], None);
    /// let crm = Crm::builder()
    ///     .sqlite_in_memory()
    ///     .rules(Arc::new(RhaiRuleEngine::new(rules)), Arc::new(directory))
    ///     .build()
    ///     .await?;
    /// let ctx = Context::user(tenant, ana);
    /// crm.leads().setup_tenant(&ctx).await?;
    /// let partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// crm.leads().enter_lead(&ctx, NewLead::new(partner, "Forklifts").with_owner(ana)).await?;
    /// let pending = crm.outbox().list_outbox(tenant, OutboxStatus::Pending, &PageRequest::default()).await?;
    /// assert_eq!(pending.items[0].rule, "welcome"); // decided in the lead's transaction
    /// # Ok(()) }
    /// ```
    pub fn rules(mut self, engine: Arc<dyn RuleEngine>, directory: Arc<dyn Directory>) -> Self {
        self.leads = self.leads.rules(engine.clone(), directory.clone());
        self.rules = Some((engine, directory));
        self
    }

    /// Where the bytes of attachments live. By default: for [`CrmBuilder::sqlite_path`], an [`FsBlobStore`] in the
    /// directory beside the file named like it with `.files` added (`crm.sqlite.files`); for
    /// [`CrmBuilder::sqlite_in_memory`], memory; for PostgreSQL or a given backend, none (attaching a file is then
    /// refused with a configuration error): give one, an [`ObjectBlobStore`] over S3 for instance.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm::blob::object_store::memory::InMemory;
    /// use crm::sales::{AttachedTo, NewAttachment};
    /// use crm::{NewPartner, ObjectBlobStore};
    /// let blobs = Arc::new(ObjectBlobStore::new(Arc::new(InMemory::new())));
    /// let crm = Crm::builder().sqlite_in_memory().blob_store(blobs).build().await?;
    /// let acme = crm.leads().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let file = NewAttachment { target: AttachedTo::Partner(acme.id()), name: "terms.txt".into(), shared_with_partner: true };
    /// let bytes = futures::stream::iter([Ok(bytes::Bytes::from_static(b"Payment in 30 days."))]);
    /// let a = crm.commerce().attach(&ctx, file, Box::pin(bytes)).await?;
    /// assert_eq!((a.media_type(), a.size()), ("text/plain", 19));
    /// # Ok(()) }
    /// ```
    pub fn blob_store(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blob_store = Some(blobs);
        self
    }

    /// Add a commit hook.
    ///
    /// # Examples
    ///
    /// A hook that refuses every change:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm::{CommitHook, Loaded, NewPartner};
    /// use crm::store::ChangeSet;
    /// #[derive(Debug)]
    /// struct ReadOnly;
    /// impl CommitHook for ReadOnly {
    ///     fn before_commit(&self, _: &Context, _: &mut ChangeSet, _: &Loaded) -> crm::Result<()> {
    ///         Err(Error::invalid("tenant", "this tenant is read-only"))
    ///     }
    /// }
    /// let crm = Crm::builder().sqlite_in_memory().hook(Arc::new(ReadOnly)).build().await?;
    /// let err = crm.leads().create_partner(&ctx, NewPartner::company("Acme SRL")).await.unwrap_err();
    /// assert_eq!(err.field(), Some("tenant"));
    /// # Ok(()) }
    /// ```
    pub fn hook(mut self, hook: Arc<dyn CommitHook>) -> Self {
        self.leads = self.leads.hook(hook);
        self
    }

    /// Add an event subscriber.
    ///
    /// # Examples
    ///
    /// A subscriber counting the committed events:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use crm::{DomainEvent, EventSubscriber, NewPartner};
    /// #[derive(Debug, Default)]
    /// struct Count(AtomicUsize);
    /// #[crm::async_trait]
    /// impl EventSubscriber for Count {
    ///     async fn publish(&self, events: &[DomainEvent]) {
    ///         self.0.fetch_add(events.len(), Ordering::SeqCst);
    ///     }
    /// }
    /// let count = Arc::new(Count::default());
    /// let crm = Crm::builder().sqlite_in_memory().subscriber(count.clone()).build().await?;
    /// crm.leads().create_partner(&ctx, NewPartner::company("Acme SRL")).await?;
    /// assert_eq!(count.0.load(Ordering::SeqCst), 1); // PartnerCreated
    /// # Ok(()) }
    /// ```
    pub fn subscriber(mut self, s: Arc<dyn EventSubscriber>) -> Self {
        self.leads = self.leads.subscriber(s);
        self
    }

    /// Opens the backend (creating and migrating its schema when needed) and builds the engine.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm::{Context, Crm, Error};
    /// # use crm::id::{TenantId, UserId};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
    ///
    /// let crm = Crm::builder().sqlite_in_memory().build().await?;
    /// assert!(crm.leads().pipelines(TenantId::new()).await?.is_empty());
    /// let err = Crm::builder().build().await.unwrap_err();
    /// assert_eq!(err.field(), Some("backend"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on field `backend` when none was chosen, on `currency` when the default cannot be parsed,
    /// on `url` when a PostgreSQL URL cannot be parsed; [`Error::Storage`] when the database cannot be opened or
    /// migrated (of kind [`StorageErrorKind::Unavailable`] when a PostgreSQL server does not answer,
    /// [`StorageErrorKind::Config`] for wrong credentials or a missing database).
    pub async fn build(self) -> Result<Crm> {
        let blobs = self
            .blob_store
            .or_else(|| self.backend.default_blob_store());
        let backend: Arc<dyn Backend> = match self.backend {
            BackendChoice::None => {
                return Err(Error::invalid(
                    "backend",
                    "choose a backend: sqlite_path, sqlite_in_memory, postgres or backend",
                ))
            }
            BackendChoice::Given(b) => b,
            #[cfg(feature = "sqlite")]
            BackendChoice::SqlitePath(p) => {
                Arc::new(crm_storage_sqlite::SqliteStore::open_file(p)?)
            }
            #[cfg(feature = "sqlite")]
            BackendChoice::SqliteMemory => {
                Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory()?)
            }
            #[cfg(feature = "postgres")]
            BackendChoice::Postgres(url) => Arc::new(
                crm_storage_postgres::PgStore::connect(crm_storage_postgres::PgConfig::from_url(
                    url,
                ))
                .await?,
            ),
        };
        // The rules hook runs first, then the host's hooks in the order they were added.
        let leads = self
            .leads
            .store(backend.clone())
            .commerce(backend.clone())
            .build()?;
        let reporting = match self.reporting {
            Some(c) => c,
            None => Currency::parse("EUR")?,
        };
        let mut commerce = CommerceService::new(leads.clone(), backend.clone(), reporting);
        if let Some(s) = self.rate_source {
            commerce = commerce.with_rate_source(s);
        }
        for (tenant, rule) in self.rate_rules {
            commerce = match tenant {
                Some(t) => commerce.with_tenant_rate_rule(t, rule),
                None => commerce.with_rate_rule(rule),
            };
        }
        if let Some(b) = blobs {
            commerce = commerce.with_blob_store(b);
        }
        let mut portal = PortalService::new(commerce.clone());
        if let Some(p) = self.payments {
            portal = portal.with_payment_provider(p);
        }
        if let Some(base) = self.login_base {
            portal = portal.with_login_base(base);
        }
        Ok(Crm {
            backend,
            leads,
            commerce,
            portal,
            rules: self.rules,
        })
    }
}

/// The README's embedding example, compiled as a doctest so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
