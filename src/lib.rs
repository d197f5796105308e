//! # crm: the CRM engine that ERPs embed
//!
//! A library the host ERP links directly: leads and pipelines, partners, requests, an append-only activity log,
//! campaigns, profitability, self-service and communication rules, stored in the host's own database (embedded
//! SQLite by default, PostgreSQL for scale) — no second system and no synchronisation.
//!
//! This facade re-exports the crates and adds [`Crm`], the service with a builder:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> crm::Result<()> {
//! use crm::{Crm, Context, NewLead, LeadPartner, NewPartner, LeadCommand, Money};
//! use crm::id::{TenantId, UserId};
//! let crm = Crm::builder().sqlite_in_memory().build()?;
//! let ctx = Context::user(TenantId::new(), UserId::new());
//! crm.setup_tenant(&ctx).await?;
//! let lead = crm
//!     .enter_lead(&ctx, NewLead::new(LeadPartner::New { partner: NewPartner::company("Acme SRL") }, "Forklifts")
//!         .with_revenue(Money::parse("12000", "EUR")?))
//!     .await?
//!     .record;
//! let won = crm.transition(&ctx, lead.id, lead.version, LeadCommand::Win).await?.record;
//! assert_eq!(won.probability, 100);
//! # Ok(()) }
//! ```

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

pub use crm_core;
pub use crm_core::actor::{Actor, Context, Source};
pub use crm_core::error::{Error, Result, StorageErrorKind};
pub use crm_core::event::{CommentTarget, DomainEvent, EventKind};
pub use crm_core::lead::{Lead, LeadCommand, LeadPartner, LeadPatch, NewLead, StatusKind};
pub use crm_core::money::{Currency, Money};
pub use crm_core::partner::{NewPartner, Partner, PartnerRole};
pub use crm_core::request::{NewRequest, Request, RequestCommand};
pub use crm_core::service::{CommitHook, CrmService, EventSubscriber};
pub use crm_core::store::{LeadQuery, PageRequest, RequestQuery, Store, TimelineOf};
pub use crm_core::{id, time};

#[cfg(feature = "sqlite")]
pub use crm_storage_sqlite as sqlite;

#[cfg(feature = "postgres")]
pub use crm_storage_postgres as postgres;

#[cfg(feature = "rules")]
pub use crm_rules as rules;

/// The engine: a [`CrmService`] over a store, built with [`Crm::builder`]. Every service method is available
/// through `Deref`.
#[derive(Debug, Clone)]
pub struct Crm {
    service: CrmService,
}

impl Crm {
    /// A builder.
    pub fn builder() -> CrmBuilder {
        CrmBuilder::default()
    }

    /// The service.
    pub fn service(&self) -> &CrmService {
        &self.service
    }
}

impl Deref for Crm {
    type Target = CrmService;
    fn deref(&self) -> &CrmService {
        &self.service
    }
}

#[derive(Debug, Default)]
enum StoreChoice {
    #[default]
    None,
    Given(Arc<dyn Store>),
    #[cfg(feature = "sqlite")]
    SqlitePath(PathBuf),
    #[cfg(feature = "sqlite")]
    SqliteMemory,
}

/// Builds a [`Crm`]: pick a store (an SQLite file, in-memory SQLite, or any [`Store`]), optionally a clock, commit
/// hooks (the rules engine) and event subscribers.
#[derive(Debug, Default)]
pub struct CrmBuilder {
    store: StoreChoice,
    inner: crm_core::service::CrmServiceBuilder,
}

impl CrmBuilder {
    /// Keep the data in an SQLite file (created and migrated if needed).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = StoreChoice::SqlitePath(path.into());
        self
    }

    /// Keep the data in an in-memory SQLite database (tests, examples).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_in_memory(mut self) -> Self {
        self.store = StoreChoice::SqliteMemory;
        self
    }

    /// Use any store.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = StoreChoice::Given(store);
        self
    }

    /// Use this clock (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn crm_core::time::Clock>) -> Self {
        self.inner = self.inner.clock(clock);
        self
    }

    /// Add a commit hook (for example the communication rules).
    pub fn hook(mut self, hook: Arc<dyn CommitHook>) -> Self {
        self.inner = self.inner.hook(hook);
        self
    }

    /// Add an event subscriber.
    pub fn subscriber(mut self, s: Arc<dyn EventSubscriber>) -> Self {
        self.inner = self.inner.subscriber(s);
        self
    }

    /// Opens the store and builds the engine.
    pub fn build(self) -> Result<Crm> {
        let store: Arc<dyn Store> = match self.store {
            StoreChoice::None => {
                return Err(Error::invalid(
                    "store",
                    "choose a store: sqlite_path, sqlite_in_memory or store",
                ))
            }
            StoreChoice::Given(s) => s,
            #[cfg(feature = "sqlite")]
            StoreChoice::SqlitePath(p) => Arc::new(crm_storage_sqlite::SqliteStore::open_file(p)?),
            #[cfg(feature = "sqlite")]
            StoreChoice::SqliteMemory => {
                Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory()?)
            }
        };
        Ok(Crm {
            service: self.inner.store(store).build()?,
        })
    }
}
