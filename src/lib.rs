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
//! - [`Crm::commerce`]: products, documents, exchange rates, balances, segments, campaigns and profitability
//!   ([`CommerceService`]);
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
//! let won = crm.leads().transition(&ctx, lead.id, lead.version, LeadCommand::Win).await?.record;
//! assert_eq!(won.probability, 100);
//! # Ok(()) }
//! ```

#[cfg(feature = "sqlite")]
use std::path::PathBuf;
use std::sync::Arc;

pub use async_trait::async_trait;
pub use crm_core;
pub use crm_core::actor::{Actor, Context, Source};
pub use crm_core::commerce;
pub use crm_core::commerce::{CommerceStore, CommerceStoreExt, RateSource};
pub use crm_core::comms::{Directory, RuleEngine, StaticDirectory};
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
pub use crm_core::service::CommerceService;
pub use crm_core::service::RulesHook;
pub use crm_core::service::{
    CommitHook, CrmService as LeadService, Entered, EventSubscriber, Loaded, Outcome,
};
pub use crm_core::store::{
    Backend, Board, Funnel, LeadQuery, LeadSort, Page, PageRequest, RequestQuery, Store, StoreExt,
    TimelineOf,
};
pub use crm_core::time::{Clock, FixedClock, SystemClock, Timestamp};
pub use crm_core::{
    actor, comms, dedupe, event, id, lead, money, outbox, partner, pipeline, request, service,
    store, time,
};
pub use crm_delivery as delivery;
pub use crm_delivery::{ChannelRouter, DispatchReport, Dispatcher, InboxNotifier};
pub use crm_delivery::{TaskNotifier, TickReport};

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
    rules: Option<(Arc<dyn RuleEngine>, Arc<dyn Directory>)>,
}

impl Crm {
    /// A builder.
    pub fn builder() -> CrmBuilder {
        CrmBuilder::default()
    }

    /// Partners, pipelines, leads, requests, comments and timelines.
    pub fn leads(&self) -> &LeadService {
        &self.leads
    }

    /// Products, documents, exchange rates, balances and open items, segments, campaigns and profitability.
    pub fn commerce(&self) -> &CommerceService {
        &self.commerce
    }

    /// The backend every capability reads and writes.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The transactional outbox (messages the rules decided) and the in-app inboxes.
    pub fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.backend.clone()
    }

    /// The clock every service uses.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.leads.clock()
    }

    /// A dispatcher delivering the outbox through `notifier` (route channels with a [`ChannelRouter`]).
    pub fn dispatcher(&self, notifier: Arc<dyn Notifier>) -> Dispatcher {
        Dispatcher::new(self.outbox(), notifier, self.clock().clone())
    }

    /// Delivers in-app messages into the users' inboxes of this backend.
    pub fn inbox_notifier(&self) -> InboxNotifier {
        InboxNotifier::new(self.outbox(), self.clock().clone())
    }

    /// Delivers task messages by opening requests through this engine.
    pub fn task_notifier(&self) -> TaskNotifier {
        TaskNotifier::new(self.leads.clone())
    }

    /// Evaluates the rules' timers for `tenant` at the clock's time (at most `limit` candidates per timer) and
    /// commits what they decided, in one transaction; returns what fired.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on field `rules` when the engine was built without [`CrmBuilder::rules`]; a storage error
    /// when the candidates cannot be read or the decisions cannot be committed (nothing is then committed).
    pub async fn tick(&self, tenant: id::TenantId, limit: u32) -> Result<TickReport> {
        let (engine, directory) = self.rules.as_ref().ok_or_else(|| {
            Error::invalid(
                "rules",
                "no rule engine: give one to Crm::builder().rules(..)",
            )
        })?;
        let store: Arc<dyn Store> = self.backend.clone();
        let report = crm_delivery::tick(
            self.clock().now(),
            tenant,
            engine.as_ref(),
            directory.as_ref(),
            &store,
            limit,
        )
        .await?;
        if !report.changes.writes.is_empty() {
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

/// Builds a [`Crm`]: pick a backend (an SQLite file, in-memory SQLite, a PostgreSQL URL, or any [`Backend`]),
/// optionally a clock, the reporting currency, a rate source, the communication rules, commit hooks and event
/// subscribers.
#[derive(Debug, Default)]
pub struct CrmBuilder {
    backend: BackendChoice,
    clock: Option<Arc<dyn Clock>>,
    reporting: Option<Currency>,
    rate_source: Option<Arc<dyn RateSource>>,
    rules: Option<(Arc<dyn RuleEngine>, Arc<dyn Directory>)>,
    hooks: Vec<Arc<dyn CommitHook>>,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
}

impl CrmBuilder {
    /// Keep the data in an SQLite file (created and migrated if needed).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.backend = BackendChoice::SqlitePath(path.into());
        self
    }

    /// Keep the data in an in-memory SQLite database (tests, examples).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_in_memory(mut self) -> Self {
        self.backend = BackendChoice::SqliteMemory;
        self
    }

    /// Keep the data in PostgreSQL at `url` (`postgres://user:password@host:port/db`), migrated on start.
    #[cfg(feature = "postgres")]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.backend = BackendChoice::Postgres(url.into());
        self
    }

    /// Use any backend (an adapter opened by the host, or a decorator around one).
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = BackendChoice::Given(backend);
        self
    }

    /// Use this clock (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The currency reports and profitability are stated in (EUR by default); documents are converted into it
    /// once, at their issue date.
    pub fn reporting_currency(mut self, currency: Currency) -> Self {
        self.reporting = Some(currency);
        self
    }

    /// Where exchange rates come from when none is stored for a document's date.
    pub fn rate_source(mut self, source: Arc<dyn RateSource>) -> Self {
        self.rate_source = Some(source);
        self
    }

    /// The communication rules: every change is shown to `engine` inside its transaction (guards may refuse it;
    /// decided actions are written to the outbox atomically), recipients resolved through `directory`; timers run
    /// through [`Crm::tick`].
    pub fn rules(mut self, engine: Arc<dyn RuleEngine>, directory: Arc<dyn Directory>) -> Self {
        self.rules = Some((engine, directory));
        self
    }

    /// Add a commit hook.
    pub fn hook(mut self, hook: Arc<dyn CommitHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Add an event subscriber.
    pub fn subscriber(mut self, s: Arc<dyn EventSubscriber>) -> Self {
        self.subscribers.push(s);
        self
    }

    /// Opens the backend (creating and migrating its schema when needed) and builds the engine.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on field `backend` when none was chosen, or on `currency` when the default cannot be
    /// parsed; a storage error when the database cannot be opened or migrated.
    pub async fn build(self) -> Result<Crm> {
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
        let mut leads = LeadService::builder().store(backend.clone());
        if let Some(c) = self.clock {
            leads = leads.clock(c);
        }
        if let Some((engine, directory)) = &self.rules {
            leads = leads.hook(Arc::new(RulesHook::new(engine.clone(), directory.clone())));
        }
        for h in self.hooks {
            leads = leads.hook(h);
        }
        for s in self.subscribers {
            leads = leads.subscriber(s);
        }
        let leads = leads.build()?;
        let reporting = match self.reporting {
            Some(c) => c,
            None => Currency::parse("EUR")?,
        };
        let mut commerce = CommerceService::new(leads.clone(), backend.clone(), reporting);
        if let Some(s) = self.rate_source {
            commerce = commerce.with_rate_source(s);
        }
        Ok(Crm {
            backend,
            leads,
            commerce,
            rules: self.rules,
        })
    }
}
