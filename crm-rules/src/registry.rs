//! One communication scheme per tenant, loaded and replaced at run time without a restart.
//!
//! A [`SchemeRegistry`] is a [`RuleEngine`]: give it to `crm_core::service::RulesHook` (or `Crm::builder().rules`)
//! and every change is shown to the scheme of the tenant it belongs to (the trigger's tenant), the default scheme
//! when the tenant has none of its own; `crm_delivery::tick` asks it for that tenant's timers
//! ([`RuleEngine::timers_for`]). Loading a tenant's scheme compiles it first and swaps it in atomically: an
//! evaluation already running finishes with the scheme it started with, the next one sees the new scheme, and a
//! scheme that does not compile is refused with its [`RulesError`] while the tenant keeps the one it had.

use crate::engine::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
use crate::error::RulesError;
use crm_core::comms::{Decision, RuleEngine, TimerTrigger, Trigger, Views};
use crm_core::id::TenantId;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The schemes of many tenants, with a default for the tenants without one.
///
/// # Examples
///
/// ```
/// use crm_core::comms::{RuleEngine, TimerTrigger};
/// use crm_core::id::TenantId;
/// use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource, SchemeRegistry};
///
/// let quiet = RuleSet::compile([RuleSource::new("quiet", "fn on_lead_won(ev) {}")], Limits::default())?;
/// let registry = SchemeRegistry::new(RhaiRuleEngine::new(quiet));
/// let acme = TenantId::new();
/// let idle = RuleSource::new(
///     "idle",
///     r#"fn timers() { ["lead_idle:3"] }
///        fn on_lead_idle(t) { notify("owner", "Idle", t.lead.title); }"#,
/// );
/// registry.load_sources(acme, [idle])?;
/// assert_eq!(registry.timers_for(acme), [TimerTrigger::LeadIdle { days: 3 }]);
/// assert!(registry.timers_for(TenantId::new()).is_empty()); // the default scheme has no timers
///
/// // A scheme that does not compile is refused, and Acme keeps the one it had.
/// let broken = RuleSource::new("idle", "fn on_lead_idle(t) { notify( }");
/// assert!(registry.load_sources(acme, [broken]).is_err());
/// assert_eq!(registry.timers_for(acme), [TimerTrigger::LeadIdle { days: 3 }]);
/// # Ok::<(), crm_rules::RulesError>(())
/// ```
#[derive(Debug)]
pub struct SchemeRegistry {
    default: RwLock<Arc<RhaiRuleEngine>>,
    tenants: RwLock<HashMap<TenantId, Arc<RhaiRuleEngine>>>,
    limits: Limits,
}

impl SchemeRegistry {
    /// A registry whose tenants all use `default` until they are given their own scheme; schemes loaded later
    /// compile under [`Limits::default`].
    pub fn new(default: RhaiRuleEngine) -> Self {
        Self {
            default: RwLock::new(Arc::new(default)),
            tenants: RwLock::new(HashMap::new()),
            limits: Limits::default(),
        }
    }

    /// Schemes loaded from now on ([`SchemeRegistry::load_dir`], [`SchemeRegistry::load_sources`]) compile and
    /// run under `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The engine evaluating `tenant`'s changes: its own scheme's, else the default's.
    pub fn engine(&self, tenant: TenantId) -> Arc<RhaiRuleEngine> {
        let own = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            .cloned();
        own.unwrap_or_else(|| {
            self.default
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }

    /// The rule set evaluating `tenant`'s changes now.
    pub fn scheme(&self, tenant: TenantId) -> Arc<RuleSet> {
        self.engine(tenant).rules()
    }

    /// Whether `tenant` has a scheme of its own (else it uses the default).
    pub fn has_own(&self, tenant: TenantId) -> bool {
        self.tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&tenant)
    }

    /// Compiles the scheme in `dir` (its rules and, when present, its `org.toml`; see
    /// [`RhaiRuleEngine::from_dir`]) and makes it `tenant`'s, replacing the one it had. Returns the new rule set.
    ///
    /// # Errors
    ///
    /// What [`RhaiRuleEngine::from_dir`] returns: [`RulesError::Io`], [`RulesError::Fixture`] (a malformed
    /// `org.toml`), [`RulesError::Compile`] or [`RulesError::Many`]. The tenant then keeps the scheme it had.
    pub fn load_dir(&self, tenant: TenantId, dir: &Path) -> Result<Arc<RuleSet>, RulesError> {
        let engine = RhaiRuleEngine::from_dir(dir, self.limits)?;
        Ok(self.install(tenant, engine))
    }

    /// Compiles `sources` and makes them `tenant`'s scheme, replacing the one it had. Returns the new rule set.
    ///
    /// # Errors
    ///
    /// [`RulesError::Compile`] or [`RulesError::Many`] when a rule does not compile (too large, a syntax error, an
    /// entry point or field that does not exist, bad timers); the tenant then keeps the scheme it had.
    pub fn load_sources(
        &self,
        tenant: TenantId,
        sources: impl IntoIterator<Item = RuleSource>,
    ) -> Result<Arc<RuleSet>, RulesError> {
        let set = RuleSet::compile(sources, self.limits)?;
        Ok(self.install(tenant, RhaiRuleEngine::new(set)))
    }

    /// Makes `engine` `tenant`'s, atomically; returns its rule set.
    pub fn install(&self, tenant: TenantId, engine: RhaiRuleEngine) -> Arc<RuleSet> {
        let engine = Arc::new(engine);
        let rules = engine.rules();
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, engine);
        rules
    }

    /// Gives `tenant` the default scheme again; returns the scheme it had, if it had its own.
    pub fn remove(&self, tenant: TenantId) -> Option<Arc<RuleSet>> {
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&tenant)
            .map(|e| e.rules())
    }

    /// Replaces the default scheme, atomically; returns the one it replaces.
    pub fn set_default(&self, engine: RhaiRuleEngine) -> Arc<RuleSet> {
        let mut d = self.default.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *d, Arc::new(engine)).rules()
    }
}

impl RuleEngine for SchemeRegistry {
    fn evaluate(&self, trigger: &Trigger, views: &Views) -> Decision {
        self.engine(trigger.tenant()).evaluate(trigger, views)
    }

    /// The default scheme's timers (a tenant's own are [`RuleEngine::timers_for`]).
    fn timers(&self) -> Vec<TimerTrigger> {
        self.default
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .timers()
    }

    fn timers_for(&self, tenant: TenantId) -> Vec<TimerTrigger> {
        self.engine(tenant).timers()
    }
}
