//! The commerce service: validate → decide (pure) → one change set → the lead service's one commit path.

mod attachments;
mod contact_merge;
mod erase;
mod sales;
mod sends;

pub use sends::{message_key, SendRate, SEND_HORIZON_KEY};

use super::{lead_subject, request_subject, CrmService, Loaded};
use crate::actor::Context;
use crate::commerce::Period;
use crate::commerce::{
    finish_campaign, finish_profitability, Balance, CampaignReport, GroupBy, OpenItem, ProfitQuery,
    ProfitReport, ProfitSums, Progress, SumsQuery,
};
use crate::commerce::{finish_uplift, Holdout, OutcomeQuery, UpliftReport};
use crate::commerce::{missing_rate, AppliedRate, ExchangeRate, RateRule, RateSource};
use crate::commerce::{
    record_outcome, CallOutcome, Campaign, CampaignCost, CampaignTarget, Launch, NewCampaign,
    OutcomeKind,
};
use crate::commerce::{CampaignMeasuresExt, CommerceStoreExt};
use crate::commerce::{Category, NewCategory, NewProduct, Product, Recorded};
use crate::commerce::{CommerceKey, CommerceRecord, CommerceWrite};
use crate::commerce::{CommerceStore, SegmentMember};
use crate::commerce::{Criteria, Item};
use crate::commerce::{Document, DocumentFacts, DocumentKind, NewDocument, PaymentDirection};
use crate::error::{Error, Result};
use crate::event::{AgentCalls, DomainEvent, EventKind, StageHistoryEntry, Subject};
use crate::id::{CampaignId, PartnerId, ProductId, RequestId, TenantId};
use crate::lead::{Lead, LeadSource, NewLead, StatusKind};
use crate::money::{Currency, Money};
use crate::request::Request;
use crate::store::StoreExt;
use crate::store::{ChangeSet, Write};
use crate::typed_reads::{FromRecords, Pick};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A recorded document and the events committed with it (none when it was unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentOutcome {
    /// What happened.
    pub recorded: Recorded<Document>,
    /// The events.
    pub events: Vec<DomainEvent>,
}

/// What recording a call outcome changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeResult {
    /// The target.
    pub target: CampaignTarget,
    /// The call request.
    pub request: Request,
    /// The lead created when the partner was interested.
    pub lead: Option<Lead>,
    /// The events.
    pub events: Vec<DomainEvent>,
}

/// The commerce API: documents, rates, campaigns and reports, for one reporting currency.
#[derive(Debug, Clone)]
pub struct CommerceService {
    crm: CrmService,
    store: Arc<dyn CommerceStore>,
    reporting: Currency,
    rates: Vec<Arc<dyn RateSource>>,
    taxes: Arc<sales::TaxTables>,
    blobs: Option<Arc<dyn crate::sales::BlobStore>>,
    attachment_policies: Arc<PerTenant<crate::sales::AttachmentPolicy>>,
    rate_rules: Arc<PerTenant<RateRule>>,
    send_rates: Arc<PerTenant<SendRate>>,
    /// Serialises campaign sends, so a tenant's campaigns share its send rate.
    send_lock: Arc<futures_util::lock::Mutex<()>>,
}

/// A setting with a default and per-tenant overrides (the host's company settings, given when the service is built).
#[derive(Debug, Clone, Default)]
pub(crate) struct PerTenant<T> {
    pub(crate) default: T,
    pub(crate) tenants: std::collections::HashMap<TenantId, T>,
}

impl<T> PerTenant<T> {
    pub(crate) fn get(&self, tenant: TenantId) -> &T {
        self.tenants.get(&tenant).unwrap_or(&self.default)
    }
}

fn partner_field(e: Error, id: PartnerId) -> Error {
    match e {
        Error::NotFound { .. } => Error::invalid(
            "partner",
            format!("partner {id} is not a partner of this tenant"),
        ),
        e => e,
    }
}

/// The tenant setting of the budget alerts ([`CommerceService::set_budget_alerts`]): a JSON list of percents.
pub const BUDGET_ALERTS_KEY: &str = "campaign.budget_alerts";

/// Budget alerts checked: each 1–99 (the whole budget is always announced), at most 10, sorted without repeats.
fn check_budget_alerts(percents: &[u8]) -> Result<Vec<u8>> {
    if let Some(p) = percents.iter().find(|p| !(1..=99).contains(*p)) {
        return Err(Error::invalid(
            "budget_alerts",
            format!(
                "{p} % is not a share of 1 to 99 % (passing the whole budget is always announced)"
            ),
        ));
    }
    let mut alerts = percents.to_vec();
    alerts.sort_unstable();
    alerts.dedup();
    if alerts.len() > 10 {
        return Err(Error::invalid(
            "budget_alerts",
            format!("{} alerts; at most 10", alerts.len()),
        ));
    }
    Ok(alerts)
}

impl CommerceService {
    /// A service over the CRM service (for the base store, clock, hooks and subscribers) and the commerce store
    /// (usually the same adapter), reporting in `reporting`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let ron = Currency::parse("RON")?;
    /// let commerce = CommerceService::new(crm, store, ron);
    /// assert_eq!(commerce.reporting(), ron);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn new(crm: CrmService, store: Arc<dyn CommerceStore>, reporting: Currency) -> Self {
        Self {
            crm,
            store,
            reporting,
            rates: Vec::new(),
            taxes: Arc::default(),
            blobs: None,
            attachment_policies: Arc::default(),
            rate_rules: Arc::default(),
            send_rates: Arc::default(),
            send_lock: Arc::default(),
        }
    }

    /// Adds a host rate source, asked (in the order added) before the stored rates table.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use rust_decimal_macros::dec;
    /// let (ron, eur) = (Currency::parse("RON")?, Currency::parse("EUR")?);
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// let mut treasury = RateTable::new();
    /// treasury.insert(ron, eur, on, dec!(0.2))?;
    /// let commerce = commerce.with_rate_source(Arc::new(treasury));
    /// assert_eq!(commerce.resolve_rate(ctx.tenant, ron, on).await?.rate, dec!(0.2));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_rate_source(mut self, source: Arc<dyn RateSource>) -> Self {
        self.rates.push(source);
        self
    }

    /// Every tenant's stored rates follow `rule` (unless set for the tenant): which stored rate converts a document
    /// of a day. The default is [`RateRule::default`] (at most a week old).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::commerce::RateRule;
    /// let commerce = commerce.with_rate_rule(RateRule::within_days(31)?);
    /// assert_eq!(commerce.rate_rule(ctx.tenant).max_age_days(), Some(31));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_rate_rule(mut self, rule: RateRule) -> Self {
        Arc::make_mut(&mut self.rate_rules).default = rule;
        self
    }

    /// `tenant`'s stored rates follow `rule`, whatever the default (a tenant whose treasury records monthly rates).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::commerce::RateRule;
    /// let commerce = commerce.with_tenant_rate_rule(ctx.tenant, RateRule::latest());
    /// assert_eq!(commerce.rate_rule(ctx.tenant).max_age_days(), None);
    /// assert_eq!(commerce.rate_rule(TenantId::new()).max_age_days(), Some(7));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_tenant_rate_rule(mut self, tenant: TenantId, rule: RateRule) -> Self {
        Arc::make_mut(&mut self.rate_rules)
            .tenants
            .insert(tenant, rule);
        self
    }

    /// The rule `tenant`'s stored rates follow.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::with_tenant_rate_rule`].
    pub fn rate_rule(&self, tenant: TenantId) -> RateRule {
        *self.rate_rules.get(tenant)
    }

    /// The reporting currency.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// assert_eq!(commerce.reporting().code(), "EUR");
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn reporting(&self) -> Currency {
        self.reporting
    }

    /// The CRM service.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::partner::NewPartner;
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert_eq!(commerce.crm().partner(ctx.tenant, acme.id()).await?.name(), "Acme SRL");
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn crm(&self) -> &CrmService {
        &self.crm
    }

    /// The commerce store.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// # use crm_core::partner::NewPartner;
    /// # let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// assert!(commerce.store().balances(ctx.tenant, acme.id(), on).await?.is_empty()); // nothing invoiced yet
    /// assert!(commerce.store().product_by_code(ctx.tenant, "P-1").await?.is_none());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn store(&self) -> &Arc<dyn CommerceStore> {
        &self.store
    }

    pub(crate) fn today(&self) -> NaiveDate {
        self.crm.clock().now().date_naive()
    }

    /// The day a balance, open items or a segment is computed for: `as_of`, else today; a business date.
    fn as_of(&self, as_of: Option<NaiveDate>) -> Result<NaiveDate> {
        crate::time::check_business_date("as_of", as_of.unwrap_or_else(|| self.today()))
    }

    async fn commit(&self, ctx: &Context, cs: ChangeSet) -> Result<Vec<DomainEvent>> {
        self.crm.commit(ctx, cs).await
    }

    /// Commits `cs` with the documents and campaigns its events are about (and the change set does not write) as
    /// the hooks' context, so the rules see `ev.document` and `ev.campaign`.
    async fn commit_about(
        &self,
        ctx: &Context,
        cs: ChangeSet,
        documents: Vec<Document>,
        campaigns: Vec<Campaign>,
    ) -> Result<Vec<DomainEvent>> {
        if self.crm.hooks.is_empty() {
            return self.crm.commit_loaded(ctx, cs, &Loaded::default()).await;
        }
        let mut loaded = self
            .crm
            .load_context(ctx.tenant, &cs, Loaded::default())
            .await?;
        loaded.documents = documents;
        loaded.campaigns = campaigns;
        self.crm.commit_loaded(ctx, cs, &loaded).await
    }

    /// Commits one commerce write with one event about `subject`, through the hooks.
    async fn commit_one(
        &self,
        ctx: &Context,
        now: crate::time::Timestamp,
        subject: Subject,
        write: CommerceWrite,
        event: EventKind,
    ) -> Result<()> {
        let cs = ChangeSet::from_iter([
            Write::from(write),
            Write::AppendEvent(DomainEvent::new(ctx, now, subject, event)),
        ]);
        self.commit_about(ctx, cs, Vec::new(), Vec::new())
            .await
            .map(|_| ())
    }

    // ------------------------------------------------------------------ products and rates

    /// Records a category by its code: the same again is a no-op; a changed name needs the stored `version`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let tools = NewCategory { code: " TOOLS ".into(), name: "Tools".into() };
    /// let recorded = commerce.record_category(&ctx, tools, None).await?;
    /// assert!(matches!(&recorded, Recorded::Inserted(c) if c.code() == "TOOLS" && c.version() == 1));
    /// let no_code = NewCategory { code: "".into(), name: "Tools".into() };
    /// assert_eq!(commerce.record_category(&ctx, no_code, None).await.unwrap_err().field(), Some("code"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `code` or `name` (empty, too long, control characters), on `version` when the stored
    /// category has another name and no `version` is given; [`Error::Conflict`] when `version` is not the stored
    /// one; [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    /// written), and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn record_category(
        &self,
        ctx: &Context,
        input: NewCategory,
        version: Option<u64>,
    ) -> Result<Recorded<Category>> {
        self.record_by_code(
            ctx,
            "product category",
            CommerceKey::CategoryCode(crate::commerce::code("code", &input.code)?),
            |existing| {
                input
                    .clone()
                    .record(ctx.tenant, existing, version, self.crm.clock().now())
            },
            CommerceWrite::InsertCategory,
            |category, expected_version| CommerceWrite::UpdateCategory {
                category,
                expected_version,
            },
        )
        .await
    }

    /// Records by code: reads the stored record under `key` (its code), lets the pure `decide` choose between
    /// no-op, insert and versioned replace, and commits what it chose (nothing when unchanged). A concurrent insert
    /// of the same code ([`Error::AlreadyExists`] on `entity`) is decided once more against the winner's row.
    async fn record_by_code<T: Clone + Pick<CommerceRecord>>(
        &self,
        ctx: &Context,
        entity: &'static str,
        key: CommerceKey,
        decide: impl Fn(Option<&T>) -> Result<Recorded<T>>,
        insert: fn(T) -> CommerceWrite,
        replace: fn(T, u64) -> CommerceWrite,
    ) -> Result<Recorded<T>> {
        let mut raced = false;
        loop {
            let existing =
                Option::<T>::from_records(self.store.fetch_commerce(ctx.tenant, &key).await?);
            let r = decide(existing.as_ref())?;
            let w = match &r {
                Recorded::Unchanged(_) => return Ok(r),
                Recorded::Inserted(x) => insert(x.clone()),
                Recorded::Replaced {
                    record,
                    expected_version,
                } => replace(record.clone(), *expected_version),
            };
            let changes = ChangeSet {
                writes: vec![w.into()],
            };
            match self.commit(ctx, changes).await {
                Err(Error::AlreadyExists { entity: e, .. }) if e == entity && !raced => {
                    raced = true
                }
                other => return other.map(|_| r),
            }
        }
    }

    /// Records a product by its code: the same again is a no-op; a change needs the stored `version`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let drill = NewProduct { code: "P-1".into(), name: "Drill".into(), category: None };
    /// let recorded = commerce.record_product(&ctx, drill.clone(), None).await?;
    /// assert_eq!((recorded.record().name(), recorded.changed()), ("Drill", true));
    /// let in_unknown = NewProduct { category: Some(CategoryId::new()), ..drill };
    /// let err = commerce.record_product(&ctx, in_unknown, None).await.unwrap_err();
    /// assert_eq!(err.field(), Some("category"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `code` or `name` (empty, too long, control characters), on `category` when it is not a
    /// category of the tenant, on `version` when the stored product differs and no `version` is given;
    /// [`Error::Conflict`] when `version` is not the stored one; [`Error::Storage`] when the store cannot be read or
    /// the change cannot be committed (nothing is then written), and whatever a
    /// [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn record_product(
        &self,
        ctx: &Context,
        input: NewProduct,
        version: Option<u64>,
    ) -> Result<Recorded<Product>> {
        if let Some(c) = input.category {
            if self.store.categories(ctx.tenant, &[c]).await?.is_empty() {
                return Err(Error::invalid(
                    "category",
                    format!("category {c} is not a category of this tenant"),
                ));
            }
        }
        self.record_by_code(
            ctx,
            "product",
            CommerceKey::ProductCode(crate::commerce::code("code", &input.code)?),
            |existing| {
                input
                    .clone()
                    .record(ctx.tenant, existing, version, self.crm.clock().now())
            },
            CommerceWrite::InsertProduct,
            |product, expected_version| CommerceWrite::UpdateProduct {
                product,
                expected_version,
            },
        )
        .await
    }

    /// Records a dated rate (units of `to` per unit of `from`). The same rate again is a no-op; another rate for
    /// the same pair and day is [`Error::AlreadyExists`].
    ///
    /// Which recorded rate converts a document is the tenant's [`RateRule`]: the latest one on or before the
    /// document's issue date, never a later one, and at most [`MAX_RATE_AGE_DAYS`](crate::commerce::MAX_RATE_AGE_DAYS)
    /// (7) days older than it unless the tenant's rule says otherwise ([`CommerceService::with_tenant_rate_rule`]:
    /// `RateRule::within_days(31)` for monthly rates, `RateRule::latest()` for any age).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use rust_decimal_macros::dec;
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// let rate = commerce.record_rate(&ctx, "RON", "EUR", on, dec!(0.2010)).await?;
    /// assert_eq!((rate.from().code(), rate.rate().to_string().as_str()), ("RON", "0.201"));
    /// let err = commerce.record_rate(&ctx, "EUR", "EUR", on, dec!(1)).await.unwrap_err();
    /// assert_eq!(err.field(), Some("to"));
    /// let err = commerce.record_rate(&ctx, "RON", "EUR", on, dec!(-0.2)).await.unwrap_err();
    /// assert_eq!(err.field(), Some("rate"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `from` or `to` when not an ISO 4217 currency code, on `to` when it is `from`, on `on`
    /// outside the business dates, on `rate` when not positive, over [`MAX_RATE`](crate::commerce::MAX_RATE) or with
    /// more than 10 decimal places; [`Error::AlreadyExists`] when another rate is recorded for the pair on that day;
    /// [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then written),
    /// and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn record_rate(
        &self,
        ctx: &Context,
        from: &str,
        to: &str,
        on: NaiveDate,
        rate: Decimal,
    ) -> Result<ExchangeRate> {
        let from = Currency::parse(from.trim()).map_err(|_| {
            Error::invalid("from", format!("`{from}` is not an ISO 4217 currency code"))
        })?;
        let to = Currency::parse(to.trim()).map_err(|_| {
            Error::invalid("to", format!("`{to}` is not an ISO 4217 currency code"))
        })?;
        let r = ExchangeRate::new(ctx.tenant, from, to, on, rate)?;
        if let Some(old) = self
            .store
            .rate(ctx.tenant, from, to, on)
            .await?
            .filter(|o| o.on == on)
        {
            if old.rate == r.rate {
                return Ok(old);
            }
            return Err(Error::AlreadyExists {
                entity: "exchange rate",
                key: format!("{from}/{to} on {on}"),
            });
        }
        self.commit(
            ctx,
            ChangeSet {
                writes: vec![CommerceWrite::InsertRate(r.clone()).into()],
            },
        )
        .await?;
        Ok(r)
    }

    /// The rate converting `from` into the reporting currency on `on`: the host's sources first, then the stored
    /// table under the tenant's [`RateRule`] (the latest rate on or before `on`, at most a week old by default);
    /// [`Error::MissingRate`] naming the pair and the day when none knows it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// let eur = commerce.resolve_rate(ctx.tenant, Currency::parse("EUR")?, on).await?;
    /// assert_eq!(eur.rate, rust_decimal::Decimal::ONE); // the reporting currency itself
    /// let err = commerce.resolve_rate(ctx.tenant, Currency::parse("USD")?, on).await.unwrap_err();
    /// assert!(matches!(err, Error::MissingRate { ref from, ref to, .. } if from == "USD" && to == "EUR"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::MissingRate`] when neither a rate source nor the stored table knows the rate; [`Error::Invalid`] on
    /// `rate` when a rate source answers a rate that is not positive, too large or too precise; whatever a
    /// [`RateSource`] returns; [`Error::Storage`] when the stored table cannot be read.
    pub async fn resolve_rate(
        &self,
        tenant: TenantId,
        from: Currency,
        on: NaiveDate,
    ) -> Result<AppliedRate> {
        if from == self.reporting {
            return Ok(AppliedRate::identity(self.reporting));
        }
        for s in &self.rates {
            if let Some(rate) = s.rate(from, self.reporting, on).await? {
                crate::commerce::check_rate("rate", rate)?;
                return Ok(AppliedRate {
                    reporting: self.reporting,
                    rate: rate.normalize(),
                });
            }
        }
        let rule = self.rate_rule(tenant);
        let stored = self.store.rate(tenant, from, self.reporting, on).await?;
        match stored.filter(|r| rule.accepts(r.on(), on)) {
            Some(r) => Ok(AppliedRate {
                reporting: self.reporting,
                rate: r.rate,
            }),
            None => Err(missing_rate(from, self.reporting, on)),
        }
    }

    // ------------------------------------------------------------------ documents

    /// Records a document the host issued. Idempotent by (kind, number): the same document again is a no-op; a
    /// changed one needs [`NewDocument::version`] and replaces the stored one whole.
    ///
    /// When two calls record the same new number at once, the loser's insert meets the winner's row; it is then
    /// decided again against that row (a no-op when the content is the same), so a host retrying after a timeout
    /// never sees a spurious "already exists".
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// # use crm_core::partner::NewPartner;
    /// # let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// use rust_decimal_macros::dec;
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// let paid = NewDocument::payment("PAY-1", acme.id(), on, "EUR", PaymentDirection::Received, dec!(250));
    /// let out = commerce.record_document(&ctx, paid).await?;
    /// assert_eq!(out.recorded.record().total(), dec!(250));
    /// assert_eq!(out.events.len(), 1); // PaymentRecorded
    /// // In dollars, with no rate known for that day:
    /// let usd = NewDocument::payment("PAY-2", acme.id(), on, "USD", PaymentDirection::Received, dec!(100));
    /// assert!(matches!(commerce.record_document(&ctx, usd).await, Err(Error::MissingRate { .. })));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Invalid`] on the input's shape: `number`, `currency`, `issue_date` and `due_date` (outside the
    ///   business dates, or due before issued), `lines` (none, over 1000, or on a payment), `lines[i].quantity`
    ///   (zero, negative outside a credit note, too precise), `lines[i].unit_price`, `lines[i].unit_cost`,
    ///   `lines[i].discount_pct`, a payment's `direction` and `amount`, `allocations[i].number`,
    ///   `allocations[i].amount`, `allocations` (settling more than paid), `campaign` and `corrects` on a kind that
    ///   has none;
    /// - [`Error::Invalid`] on what it refers to: `partner` (not the tenant's), `lines[i].product` (not recorded),
    ///   `campaign` (not the tenant's), `corrects` (no such invoice, or another partner's or currency's),
    ///   `allocations[i].number` (no such invoice or bill of the partner in the currency);
    /// - [`Error::MissingRate`] when the document is not in the reporting currency and no rate is known for its
    ///   issue date (see [`CommerceService::resolve_rate`]);
    /// - [`Error::Invalid`] on `version` when the stored document differs and no version is given;
    ///   [`Error::Conflict`] when the version is not the stored one;
    /// - [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    ///   written), and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn record_document(
        &self,
        ctx: &Context,
        input: NewDocument,
    ) -> Result<DocumentOutcome> {
        match self.record_document_once(ctx, input.clone()).await {
            Err(Error::AlreadyExists {
                entity: "document", ..
            }) => self.record_document_once(ctx, input).await,
            other => other,
        }
    }

    async fn record_document_once(
        &self,
        ctx: &Context,
        mut input: NewDocument,
    ) -> Result<DocumentOutcome> {
        let tenant = ctx.tenant;
        let (number, currency) = input.check_shape()?;
        let partner = self
            .crm
            .store()
            .partner(tenant, input.partner)
            .await
            .map_err(|e| partner_field(e, input.partner))?;
        // A merged partner's id names its survivor: the document is the survivor's, like those the merge moved.
        let partner = self.crm.live(tenant, partner).await?;
        input.partner = partner.id;
        let existing = self
            .store
            .document_by_number(tenant, input.kind, &number)
            .await?;
        let ids: Vec<ProductId> = input
            .lines
            .iter()
            .map(|l| l.product)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let products: BTreeMap<ProductId, Product> = if ids.is_empty() {
            BTreeMap::new()
        } else {
            self.store
                .products(tenant, &ids)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect()
        };
        let campaign_exists = match input.campaign {
            Some(c) => match self.store.campaign(tenant, c).await {
                Ok(_) => true,
                Err(Error::NotFound { .. }) => false,
                Err(e) => return Err(e),
            },
            None => false,
        };
        let corrected = match &input.corrects {
            Some(n) => {
                self.store
                    .document_by_number(tenant, DocumentKind::Invoice, n.trim())
                    .await?
            }
            None => None,
        };
        let mut settled = BTreeMap::new();
        let kind = input
            .direction
            .unwrap_or(PaymentDirection::Received)
            .settles();
        for a in &input.allocations {
            if let Some(d) = self
                .store
                .document_by_number(tenant, kind, a.number.trim())
                .await?
            {
                settled.insert(d.number.clone(), d);
            }
        }
        let rate = match &existing {
            Some(e)
                if e.currency == currency
                    && e.issue_date == input.issue_date
                    && e.rate.reporting == self.reporting =>
            {
                e.rate
            }
            _ => {
                self.resolve_rate(tenant, currency, input.issue_date)
                    .await?
            }
        };
        let now = self.crm.clock().now();
        let facts = DocumentFacts {
            partner: &partner,
            products: &products,
            rate,
            existing: existing.as_ref(),
            corrected: corrected.as_ref(),
            campaign_exists,
            settled: &settled,
        };
        let recorded = input.record(tenant, facts, now)?;
        let (doc, w) = match &recorded {
            Recorded::Unchanged(_) => {
                return Ok(DocumentOutcome {
                    recorded,
                    events: Vec::new(),
                })
            }
            Recorded::Inserted(d) => (d, CommerceWrite::InsertDocument(d.clone())),
            Recorded::Replaced {
                record,
                expected_version,
            } => (
                record,
                CommerceWrite::ReplaceDocument {
                    document: record.clone(),
                    expected_version: *expected_version,
                },
            ),
        };
        let kind = match doc.kind {
            DocumentKind::Payment => EventKind::PaymentRecorded {
                document: doc.id,
                number: doc.number.clone(),
                amount: doc.total_money(),
                version: doc.version,
                direction: doc.direction,
            },
            k => EventKind::InvoiceRecorded {
                document: doc.id,
                kind: k,
                number: doc.number.clone(),
                total: doc.total_money(),
                campaign: doc.campaign,
                version: doc.version,
            },
        };
        let event = DomainEvent::new(
            ctx,
            now,
            Subject {
                partner: Some(doc.partner),
                ..Default::default()
            },
            kind,
        );
        let events = self
            .commit(
                ctx,
                ChangeSet {
                    writes: vec![w.into(), Write::AppendEvent(event)],
                },
            )
            .await?;
        Ok(DocumentOutcome { recorded, events })
    }

    /// A partner's open items on `as_of` (today when `None`): the account as it stood at the end of that day.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// # use crm_core::partner::NewPartner;
    /// # let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert!(commerce.open_items(ctx.tenant, acme.id(), None).await?.is_empty()); // nothing invoiced
    /// let err = commerce.open_items(ctx.tenant, PartnerId::new(), None).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "partner", .. }));
    /// let too_early = NaiveDate::from_ymd_opt(1899, 12, 31);
    /// assert_eq!(commerce.open_items(ctx.tenant, acme.id(), too_early).await.unwrap_err().field(), Some("as_of"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `as_of` outside the business dates; [`Error::NotFound`] when the partner is not the
    /// tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn open_items(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<OpenItem>> {
        let as_of = self.as_of(as_of)?;
        self.crm.store().partner(tenant, partner).await?;
        self.store.open_items(tenant, partner, as_of).await
    }

    /// A partner's balances per currency on `as_of` (today when `None`): the account as it stood at the end of
    /// that day.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// # use crm_core::partner::NewPartner;
    /// # let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert!(commerce.balances(ctx.tenant, acme.id(), None).await?.is_empty()); // no documents, no currencies
    /// let err = commerce.balances(ctx.tenant, PartnerId::new(), None).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "partner", .. }));
    /// let too_late = NaiveDate::from_ymd_opt(2201, 1, 1);
    /// assert_eq!(commerce.balances(ctx.tenant, acme.id(), too_late).await.unwrap_err().field(), Some("as_of"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `as_of` outside the business dates; [`Error::NotFound`] when the partner is not the
    /// tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn balances(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<Balance>> {
        let as_of = self.as_of(as_of)?;
        self.crm.store().partner(tenant, partner).await?;
        self.store.balances(tenant, partner, as_of).await
    }

    // ------------------------------------------------------------------ segments and campaigns

    /// Checks a criteria tree: its shape, that every product and category it names exists in the tenant, and that
    /// its amounts are in the reporting currency. Errors name the path (`criteria.all[0].items[1]`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::money::Money;
    /// let vip = Criteria::Tag { tag: "vip".into() };
    /// assert!(commerce.check_criteria(ctx.tenant, &vip).await.is_ok());
    /// let in_lei = Money::parse("10000", "RON")?; // the reporting currency is EUR
    /// let big = Criteria::SalesVolume { period: Period::year(2025)?, cmp: Cmp::Gt, amount: in_lei };
    /// assert_eq!(commerce.check_criteria(ctx.tenant, &big).await.unwrap_err().field(), Some("criteria.amount"));
    /// let items = vec![Item::Product(ProductId::new())]; // not recorded
    /// let bought = Criteria::Bought { mode: BoughtMode::Any, items, period: Period::year(2025)? };
    /// let err = commerce.check_criteria(ctx.tenant, &bought).await.unwrap_err();
    /// assert_eq!(err.field(), Some("criteria.items[0]"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the path: what [`Criteria::check`] refuses (depth, size, empty lists, malformed
    /// tags, names, countries and dates), an amount not in the reporting currency (`criteria.all[0].amount`), a
    /// product or category not recorded in the tenant (`criteria.items[1]`); [`Error::Storage`] when the store
    /// cannot be read.
    pub async fn check_criteria(&self, tenant: TenantId, criteria: &Criteria) -> Result<()> {
        criteria.check()?;
        for (path, m) in criteria.amounts() {
            if m.currency() != self.reporting {
                return Err(Error::invalid(
                    path,
                    format!(
                        "amounts are compared in the reporting currency {}",
                        self.reporting
                    ),
                ));
            }
        }
        let items = criteria.items();
        let (mut pids, mut cids) = (Vec::new(), Vec::new());
        for (_, i) in &items {
            match *i {
                Item::Product(p) => pids.push(p),
                Item::Category(c) => cids.push(c),
            }
        }
        // The items the tenant has recorded, each kind read once (and not at all when none is named).
        let mut known: BTreeSet<Item> = BTreeSet::new();
        if !pids.is_empty() {
            let products = self.store.products(tenant, &pids).await?;
            known.extend(products.iter().map(|p| Item::Product(p.id)));
        }
        if !cids.is_empty() {
            let categories = self.store.categories(tenant, &cids).await?;
            known.extend(categories.iter().map(|c| Item::Category(c.id)));
        }
        if let Some((path, i)) = items.into_iter().find(|(_, i)| !known.contains(i)) {
            let what = match i {
                Item::Product(p) => format!("product {p}"),
                Item::Category(c) => format!("category {c}"),
            };
            return Err(Error::invalid(
                path,
                format!("{what} is not recorded in this tenant"),
            ));
        }
        Ok(())
    }

    /// The partners a criteria tree selects today.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let vip = Criteria::Tag { tag: "vip".into() };
    /// assert!(commerce.segment(ctx.tenant, &vip).await?.is_empty()); // no partner is tagged yet
    /// let nothing = Criteria::And { all: vec![] };
    /// assert_eq!(commerce.segment(ctx.tenant, &nothing).await.unwrap_err().field(), Some("criteria.all"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`CommerceService::check_criteria`]: [`Error::Invalid`] naming the path in the criteria;
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn segment(
        &self,
        tenant: TenantId,
        criteria: &Criteria,
    ) -> Result<Vec<SegmentMember>> {
        self.check_criteria(tenant, criteria).await?;
        let today = self.as_of(None)?;
        self.store
            .segment(tenant, criteria, today, self.reporting)
            .await
    }

    /// Creates a draft campaign.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let march = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    /// let input = NewCampaign {
    ///     name: "Spring calls".into(), channel: Channel::Telemarketing, period: Period::new(march(1), march(31))?,
    ///     owner: UserId::new(), agents: vec![UserId::new()], script: None, budget: None,
    ///     criteria: Some(Criteria::Tag { tag: "vip".into() }),
    /// };
    /// let campaign = commerce.create_campaign(&ctx, input.clone()).await?;
    /// assert_eq!((campaign.status(), campaign.version()), (CampaignStatus::Draft, 1));
    /// let nobody = NewCampaign { agents: vec![], ..input };
    /// assert_eq!(commerce.create_campaign(&ctx, nobody).await.unwrap_err().field(), Some("agents"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `name`, `agents` (none for telemarketing, over 500, or listed twice), `budget`
    /// (negative), `script`, and on the criteria's paths as in [`CommerceService::check_criteria`];
    /// [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then written),
    /// and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn create_campaign(&self, ctx: &Context, input: NewCampaign) -> Result<Campaign> {
        if let Some(c) = &input.criteria {
            self.check_criteria(ctx.tenant, c).await?;
        }
        let (c, kind) = input.build(ctx.tenant, self.crm.clock().now())?;
        let e = DomainEvent::new(ctx, c.created_at, Subject::default(), kind);
        self.commit(
            ctx,
            ChangeSet {
                writes: vec![
                    CommerceWrite::InsertCampaign(c.clone()).into(),
                    Write::AppendEvent(e),
                ],
            },
        )
        .await?;
        Ok(c)
    }

    /// A campaign.
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.campaign(ctx.tenant, CampaignId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn campaign(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign> {
        self.store.campaign(tenant, id).await
    }

    /// Books a dated cost on a campaign, converted at that day's rate. When the cost takes the campaign's costs
    /// past its budget (both in the reporting currency, the budget converted at the cost's day), an
    /// [`EventKind::BudgetExceeded`] event is committed with it, once per crossing: the rules' `on_budget_exceeded`.
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::money::Money;
    /// let fee = Money::parse("500", "EUR")?;
    /// let long_ago = NaiveDate::from_ymd_opt(1899, 12, 31).unwrap();
    /// let unknown = CampaignId::new();
    /// let err = commerce.add_campaign_cost(&ctx, unknown, long_ago, fee, None).await.unwrap_err();
    /// assert_eq!(err.field(), Some("date"));
    /// let on = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    /// let err = commerce.add_campaign_cost(&ctx, unknown, on, fee, Some("Call centre")).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `date` outside the business dates, on `amount` when not more than zero (or too large to
    /// convert), on `note` (over 200 characters); [`Error::NotFound`] when the campaign is not the tenant's;
    /// [`Error::MissingRate`] when the amount (or the campaign's budget) is not in the reporting currency and no
    /// rate is known for `date`; [`Error::Storage`] when the store cannot be read or the change cannot be committed
    /// (nothing is then written), and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn add_campaign_cost(
        &self,
        ctx: &Context,
        campaign: CampaignId,
        date: NaiveDate,
        amount: Money,
        note: Option<&str>,
    ) -> Result<CampaignCost> {
        crate::time::check_business_date("date", date)?;
        let c = self.store.campaign(ctx.tenant, campaign).await?;
        let rate = self
            .resolve_rate(ctx.tenant, amount.currency(), date)
            .await?;
        let cost = CampaignCost::new(&c, date, amount, note, rate)?;
        let now = self.crm.clock().now();
        let mut writes = vec![
            CommerceWrite::InsertCampaignCost(cost.clone()).into(),
            Write::AppendEvent(DomainEvent::new(
                ctx,
                now,
                Subject::default(),
                EventKind::CampaignCostAdded { campaign, amount },
            )),
        ];
        if let Some(budget) = c.budget {
            let (before, after, limit) = self.budget_spend(ctx.tenant, &c, budget, &cost).await?;
            let spent = || {
                Money::new(crate::money::units_to_decimal(after), self.reporting).map_err(|_| {
                    Error::invalid("amount", "the campaign's costs are too large to add up")
                })
            };
            // Exact: `spent > limit × p ÷ 100` compared as `spent × 100 > limit × p`, in integer units.
            for percent in self.budget_alerts(ctx.tenant).await? {
                let line = limit.saturating_mul(i128::from(percent));
                if before.saturating_mul(100) <= line && after.saturating_mul(100) > line {
                    writes.push(Write::AppendEvent(DomainEvent::new(
                        ctx,
                        now,
                        Subject::default(),
                        EventKind::BudgetThresholdPassed {
                            campaign,
                            name: c.name.clone(),
                            percent,
                            budget,
                            spent: spent()?,
                        },
                    )));
                }
            }
            if before <= limit && after > limit {
                writes.push(Write::AppendEvent(DomainEvent::new(
                    ctx,
                    now,
                    Subject::default(),
                    EventKind::BudgetExceeded {
                        campaign,
                        name: c.name.clone(),
                        budget,
                        spent: spent()?,
                    },
                )));
            }
        }
        self.commit_about(ctx, ChangeSet { writes }, Vec::new(), vec![c])
            .await?;
        Ok(cost)
    }

    /// The campaign's costs before and after booking `cost`, and its budget, all in reporting-currency units (the
    /// budget at the rate of the cost's day).
    async fn budget_spend(
        &self,
        tenant: TenantId,
        c: &Campaign,
        budget: Money,
        cost: &CampaignCost,
    ) -> Result<(i128, i128, i128)> {
        let before: i128 = self
            .store
            .campaign_costs(tenant, c.id)
            .await?
            .iter()
            .map(|k| i128::from(k.amount_units))
            .sum();
        let after = before + i128::from(cost.amount_units);
        // The budget in the reporting currency, at the rate of the cost's day.
        let rate = self
            .resolve_rate(tenant, budget.currency(), cost.date)
            .await?;
        let limit = i128::from(rate.to_reporting_units(budget.amount(), "budget")?);
        Ok((before, after, limit))
    }

    /// Sets the tenant's budget alerts: the shares of a campaign's budget, in percent, whose passing by the booked
    /// costs commits [`EventKind::BudgetThresholdPassed`] (the rules' `on_budget_threshold_passed`) besides the
    /// [`EventKind::BudgetExceeded`] of passing the whole of it. Kept sorted, without repeats, in the setting
    /// [`BUDGET_ALERTS_KEY`]; an empty list turns them off (the default).
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// assert_eq!(commerce.set_budget_alerts(&ctx, &[80, 50, 80]).await?, vec![50, 80]);
    /// assert_eq!(commerce.budget_alerts(ctx.tenant).await?, vec![50, 80]);
    /// let err = commerce.set_budget_alerts(&ctx, &[100]).await.unwrap_err();
    /// assert_eq!(err.field(), Some("budget_alerts"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `budget_alerts` for a share outside 1–99 or more than 10 of them; [`Error::Storage`]
    /// when it cannot be stored.
    pub async fn set_budget_alerts(&self, ctx: &Context, percents: &[u8]) -> Result<Vec<u8>> {
        let alerts = check_budget_alerts(percents)?;
        self.crm
            .put_setting(ctx, BUDGET_ALERTS_KEY, serde_json::json!(alerts))
            .await?;
        Ok(alerts)
    }

    /// The tenant's budget alerts (see [`CommerceService::set_budget_alerts`]); none unless set.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `budget_alerts` when the stored setting is not a list of shares 1–99 (written by hand
    /// through `put_setting`); [`Error::Storage`] when the store cannot be read.
    pub async fn budget_alerts(&self, tenant: TenantId) -> Result<Vec<u8>> {
        match self.crm.setting(tenant, BUDGET_ALERTS_KEY).await? {
            None => Ok(Vec::new()),
            Some(v) => {
                let list: Vec<u8> = serde_json::from_value(v).map_err(|e| {
                    Error::invalid("budget_alerts", format!("not a list of percents: {e}"))
                })?;
                check_budget_alerts(&list)
            }
        }
    }

    /// Launches a draft campaign: snapshots its segment today and hands each target's call to an agent.
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.launch_campaign(&ctx, CampaignId::new(), 1).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Invalid`] on `status` when it is not a
    /// draft, on `agents` (a telemarketing campaign without agents), on `criteria` when it has no target segment,
    /// and on the criteria's paths as in [`CommerceService::check_criteria`]; [`Error::Conflict`] when
    /// `expected_version` is stale; [`Error::Storage`] when the store cannot be read or the change cannot be
    /// committed (nothing is then written), and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn launch_campaign(
        &self,
        ctx: &Context,
        id: CampaignId,
        expected_version: u64,
    ) -> Result<Launch> {
        self.launch_campaign_with(ctx, id, expected_version, None)
            .await
    }

    /// Launches a draft campaign as [`CommerceService::launch_campaign`] does, first drawing `holdout` (if any)
    /// from its audience: the partners held out get no call and no message, and are recorded as targets with
    /// `holdout` set, the control group [`CommerceService::campaign_uplift`] measures against. The draw is
    /// reproducible from the share and seed, recorded on the campaign ([`Holdout`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let holdout = Holdout::new(rust_decimal::Decimal::from(10), 42)?;
    /// let err = commerce.launch_campaign_with(&ctx, CampaignId::new(), 1, Some(holdout)).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`CommerceService::launch_campaign`].
    pub async fn launch_campaign_with(
        &self,
        ctx: &Context,
        id: CampaignId,
        expected_version: u64,
        holdout: Option<Holdout>,
    ) -> Result<Launch> {
        let c = self.store.campaign(ctx.tenant, id).await?;
        c.check_launchable()?;
        crate::service::check_version("campaign", id, expected_version, c.version)?;
        let criteria = c
            .criteria
            .clone()
            .ok_or_else(|| Error::invalid("criteria", "a campaign needs a target segment"))?;
        let members = self.segment(ctx.tenant, &criteria).await?;
        let audience: Vec<(PartnerId, String)> =
            members.into_iter().map(|m| (m.partner, m.name)).collect();
        let now = self.crm.clock().now();
        let launch = c.launch(&audience, holdout, ctx.actor.clone(), now)?;
        let mut cs = ChangeSet::new();
        cs.push(
            CommerceWrite::UpdateCampaign {
                campaign: launch.campaign.clone(),
                expected_version,
            }
            .into(),
        );
        for t in &launch.targets {
            cs.push(CommerceWrite::InsertCampaignTarget(t.clone()).into());
        }
        for r in &launch.calls {
            cs.push(Write::InsertRequest(r.clone()));
            cs.push(Write::AppendEvent(DomainEvent::new(
                ctx,
                now,
                request_subject(r),
                EventKind::RequestOpened {
                    title: r.title.clone(),
                    kind: r.kind.clone(),
                    assignee: r.assignee,
                    due: r.due,
                },
            )));
        }
        let mut calls: BTreeMap<crate::id::UserId, u64> = BTreeMap::new();
        for r in &launch.calls {
            *calls.entry(r.assignee).or_default() += 1;
        }
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            Subject::default(),
            EventKind::CampaignLaunched {
                campaign: id,
                targets: launch.campaign.target_count,
                held_out: launch.campaign.holdout_count,
                calls: calls
                    .into_iter()
                    .map(|(agent, calls)| AgentCalls { agent, calls })
                    .collect(),
            },
        )));
        self.commit(ctx, cs).await?;
        Ok(launch)
    }

    /// Closes an active campaign.
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.close_campaign(&ctx, CampaignId::new(), 2).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Invalid`] on `status` when it is not
    /// active; [`Error::Conflict`] when `expected_version` is stale (refused by the store, nothing written);
    /// [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then written),
    /// and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn close_campaign(
        &self,
        ctx: &Context,
        id: CampaignId,
        expected_version: u64,
    ) -> Result<Campaign> {
        let c = self.store.campaign(ctx.tenant, id).await?;
        let now = self.crm.clock().now();
        let next = c.close(now)?;
        let e = DomainEvent::new(
            ctx,
            now,
            Subject::default(),
            EventKind::CampaignClosed { campaign: id },
        );
        self.commit(
            ctx,
            ChangeSet {
                writes: vec![
                    CommerceWrite::UpdateCampaign {
                        campaign: next.clone(),
                        expected_version,
                    }
                    .into(),
                    Write::AppendEvent(e),
                ],
            },
        )
        .await?;
        Ok(next)
    }

    /// Records the outcome of a campaign call. Only the agent the call is assigned to may (field `agent`);
    /// `Interested` enters a lead in the default pipeline with the campaign as its source, owned by the campaign's
    /// owner. One transaction holds the target, the call, the lead and their events.
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.record_call_outcome(&ctx, RequestId::new(), CallOutcome::NoAnswer).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign call", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] when the request is no campaign call of the tenant;
    /// - [`Error::Invalid`] on `status` when the campaign is not active, on `agent` when the caller is not the agent
    ///   the call is assigned to, on `request` when the call is already finished, on `outcome.at` for a call back in
    ///   the past, on `pipeline` when an interested partner's lead has no pipeline to enter
    ///   ([`CrmService::setup_tenant`]);
    /// - [`Error::Conflict`] when the call or its target changed meanwhile (refused by the store, nothing written);
    /// - [`Error::Storage`] when the store cannot be read or the change cannot be committed (nothing is then
    ///   written), and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn record_call_outcome(
        &self,
        ctx: &Context,
        request: RequestId,
        outcome: CallOutcome,
    ) -> Result<OutcomeResult> {
        let tenant = ctx.tenant;
        let target = self.store.campaign_target(tenant, request).await?;
        let call = self.crm.store().request(tenant, request).await?;
        let campaign = self.store.campaign(tenant, target.campaign).await?;
        let now = self.crm.clock().now();
        let mut change =
            record_outcome(&campaign, &target, &call, ctx.actor.user_id(), outcome, now)?;
        let mut cs = ChangeSet::new();
        let mut lead = None;
        if outcome.kind() == OutcomeKind::Interested {
            let pipelines = self.crm.store().pipelines(tenant).await?;
            let pipeline = pipelines
                .iter()
                .find(|p| p.is_default)
                .or(pipelines.first())
                .ok_or_else(|| {
                    Error::invalid(
                        "pipeline",
                        "the tenant has no pipeline yet: call setup_tenant first",
                    )
                })?;
            let partner = self.crm.store().partner(tenant, target.partner).await?;
            let mut input = NewLead::for_partner(
                partner.id,
                format!("{}: {}", campaign.name, partner.name)
                    .chars()
                    .take(200)
                    .collect::<String>(),
            );
            input.owner = Some(campaign.owner);
            input.source = LeadSource {
                campaign: Some(campaign.id),
                medium: Some("phone".into()),
                source: None,
            };
            let (l, kind) = input.build(tenant, partner.id, pipeline, now)?;
            change.target.lead = Some(l.id);
            cs.push(Write::InsertLead(l.clone()));
            cs.push(Write::AppendEvent(DomainEvent::new(
                ctx,
                now,
                lead_subject(&l),
                kind,
            )));
            cs.push(Write::AppendStageHistory(StageHistoryEntry {
                tenant,
                lead: l.id,
                pipeline: pipeline.id,
                from: None,
                to: l.stage,
                status: StatusKind::Open,
                at: now,
                actor: ctx.actor.clone(),
            }));
            lead = Some(l);
        }
        cs.push(
            CommerceWrite::UpdateCampaignTarget {
                target: change.target.clone(),
                expected_version: target.version,
            }
            .into(),
        );
        cs.push(Write::UpdateRequest {
            request: change.request.clone(),
            expected_version: call.version,
        });
        if change.request.status != call.status {
            cs.push(Write::AppendEvent(DomainEvent::new(
                ctx,
                now,
                request_subject(&change.request),
                EventKind::RequestStatusChanged {
                    from: call.status,
                    to: change.request.status,
                },
            )));
        }
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            Subject {
                partner: Some(target.partner),
                lead: lead.as_ref().map(|l| l.id),
                request: Some(request),
            },
            EventKind::CallOutcomeRecorded {
                campaign: campaign.id,
                outcome: outcome.kind(),
                lead: lead.as_ref().map(|l| l.id),
            },
        )));
        let events = self
            .commit_about(ctx, cs, Vec::new(), vec![campaign])
            .await?;
        Ok(OutcomeResult {
            target: change.target,
            request: change.request,
            lead,
            events,
        })
    }

    /// Progress of a campaign: the total first, then per agent.
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.progress(ctx.tenant, CampaignId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn progress(&self, tenant: TenantId, id: CampaignId) -> Result<Vec<Progress>> {
        self.store.campaign(tenant, id).await?;
        self.store.progress(tenant, id).await
    }

    /// The campaign report over `period` (all time when `None`).
    ///
    /// # Examples
    ///
    /// A campaign's whole life (launch, calls, outcomes, report) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.campaign_report(ctx.tenant, CampaignId::new(), None).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Storage`] when the store cannot be read.
    pub async fn campaign_report(
        &self,
        tenant: TenantId,
        id: CampaignId,
        period: Option<Period>,
    ) -> Result<CampaignReport> {
        let c = self.store.campaign(tenant, id).await?;
        let s = self
            .store
            .campaign_sums(tenant, id, period, self.reporting)
            .await?;
        Ok(finish_campaign(id, &c.name, period, self.reporting, &s))
    }

    /// The campaign report of every campaign of the tenant over `period` (all time when `None`), by campaign id:
    /// each equal to [`campaign_report`](Self::campaign_report) for that campaign, all read in one snapshot with
    /// one statement per measure for all campaigns (the overview a marketing board opens with).
    ///
    /// # Examples
    ///
    /// Reports over real campaigns are shown in the `crm` crate's documentation of `Crm::commerce`; here the
    /// commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let reports = commerce.campaign_reports(ctx.tenant, Some(Period::year(2026)?)).await?;
    /// assert!(reports.is_empty());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn campaign_reports(
        &self,
        tenant: TenantId,
        period: Option<Period>,
    ) -> Result<Vec<CampaignReport>> {
        Ok(self
            .store
            .campaigns_sums(tenant, period, self.reporting)
            .await?
            .iter()
            .map(|t| finish_campaign(t.campaign, &t.name, period, self.reporting, &t.sums))
            .collect())
    }

    /// A launched campaign's measured success over `window`: its targets' outcomes beside its holdout's
    /// (reactivated, sales volume, bought a `promoted` product or category), the uplift with its interval at
    /// `confidence`, and the incremental gross profit and ROI it implies (see [`UpliftReport`]). The store sums
    /// both groups in one statement over the roll-ups.
    ///
    /// # Examples
    ///
    /// A campaign measured against its holdout over a real store is shown in `examples/campaign_roi.rs`; here the
    /// commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    /// let window = Period::new(d(3, 1), d(5, 31))?;
    /// let err = commerce.campaign_uplift(ctx.tenant, CampaignId::new(), window, &[], Confidence::P95).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Invalid`] on `status` when it was never
    /// launched, on `window` when the window starts before the launch day, on `promoted` when an item is listed
    /// twice, there are more than [`MAX_PROMOTED`](crate::commerce::MAX_PROMOTED), or one is not a product or
    /// category of the tenant, on `campaign` when it has no targets; [`Error::Storage`] when the store cannot be
    /// read.
    pub async fn campaign_uplift(
        &self,
        tenant: TenantId,
        id: CampaignId,
        window: Period,
        promoted: &[crate::commerce::Item],
        confidence: crate::commerce::Confidence,
    ) -> Result<UpliftReport> {
        let c = self.store.campaign(tenant, id).await?;
        let launched = c.launched_at().ok_or_else(|| {
            Error::invalid(
                "status",
                format!("campaign `{}` was never launched", c.name()),
            )
        })?;
        if window.from() < launched.date_naive() {
            return Err(Error::invalid(
                "window",
                format!(
                    "starts on {} before the campaign's launch on {}",
                    window.from(),
                    launched.date_naive()
                ),
            ));
        }
        let q = OutcomeQuery {
            window,
            promoted: promoted.to_vec(),
            reporting: self.reporting,
        };
        q.check()?;
        if !q.promoted.is_empty() {
            let bought = Criteria::Bought {
                mode: crate::commerce::BoughtMode::Any,
                items: q.promoted.clone(),
                period: window,
            };
            self.check_criteria(tenant, &bought)
                .await
                .map_err(|e| match e {
                    Error::Invalid { reason, .. } => Error::invalid("promoted", reason),
                    e => e,
                })?;
        }
        let sums = self.store.campaign_outcomes(tenant, id, &q).await?;
        let costs = self
            .store
            .campaign_sums(tenant, id, None, self.reporting)
            .await?;
        finish_uplift(&c, &q, confidence, &sums, costs.campaign_cost_units)
    }

    /// Every campaign's share of the gross profit of the sales issued in `period`, under each of `models`, side by
    /// side (see [`attribution`](crate::commerce::attribution) for the touches and the models): a touch counts
    /// for a sale when it is at most `lookback_days` before it. The store reads the sales and touches in one
    /// snapshot; the credits are split exactly, so each model's rows sum to the period's gross profit.
    ///
    /// # Examples
    ///
    /// A report over real campaigns, touches and invoices is shown in `examples/campaign_roi.rs`; here the
    /// commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let year = Period::year(2026)?;
    /// let r = commerce.attribution_report(ctx.tenant, year, 90, &Model::ALL).await?;
    /// assert_eq!(r.rows.len(), 6); // one unattributed row per model: nothing was sold
    /// let e = commerce.attribution_report(ctx.tenant, year, 90, &[Model::TimeDecay { half_life_days: 0 }]).await.unwrap_err();
    /// assert_eq!(e.field(), Some("models[0].half_life_days"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `models` (none, or one listed twice), on `models[i].half_life_days` for a zero
    /// half-life, on `lookback_days` outside 1 to [`MAX_LOOKBACK_DAYS`](crate::commerce::MAX_LOOKBACK_DAYS);
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn attribution_report(
        &self,
        tenant: TenantId,
        period: Period,
        lookback_days: u32,
        models: &[crate::commerce::Model],
    ) -> Result<crate::commerce::AttributionReport> {
        let scope = crate::commerce::AttributionScope {
            period,
            lookback_days,
            reporting: self.reporting,
        };
        scope.check()?;
        crate::commerce::check_models(models)?;
        let inputs = self.store.attribution_inputs(tenant, &scope).await?;
        let mut names = BTreeMap::new();
        for id in crate::commerce::attribution::campaigns_of(&inputs) {
            if let Some(c) = absent_as_none(self.store.campaign(tenant, id).await)? {
                names.insert(id, c.name().to_string());
            }
        }
        crate::commerce::finish_attribution(inputs, &names, &scope, models)
    }

    // ------------------------------------------------------------------ profitability

    /// Checks the tenant's sales roll-ups against its documents: every month of every grouping whose stored sums
    /// differ from the sums of its invoices and credit notes (none, when the store keeps them right, which it does
    /// in the transaction that records each document).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let check = commerce.verify_rollups(ctx.tenant).await?;
    /// assert!(check.is_clean() && !check.rebuilt);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn verify_rollups(&self, tenant: TenantId) -> Result<crate::commerce::RollupCheck> {
        self.store
            .rollups(tenant, crate::commerce::RollupAction::Verify)
            .await
    }

    /// Rebuilds the tenant's sales roll-ups from its documents in one transaction, and reports what differed
    /// before (as [`CommerceService::verify_rollups`]). For a repair after a fault outside the engine (a restored
    /// backup, a hand edit); recording documents keeps them right by itself.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let check = commerce.rebuild_rollups(ctx.tenant).await?;
    /// assert!(check.rebuilt);
    /// assert!(commerce.verify_rollups(ctx.tenant).await?.is_clean());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read or written (nothing is changed then).
    pub async fn rebuild_rollups(&self, tenant: TenantId) -> Result<crate::commerce::RollupCheck> {
        self.store
            .rollups(tenant, crate::commerce::RollupAction::Rebuild)
            .await
    }

    /// A step of the tenant's bulk load (see [`BulkStep`](crate::store::BulkStep)): `Begin` before a large
    /// [`Store::ingest`](crate::store::Store::ingest) (a first import, a year of history from another system),
    /// `Finish` after it, `Status` to read where loading stands. Between them the SQL adapters defer their
    /// non-unique indexes and the tenant's roll-ups; `Finish` builds them again in one transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// use crm_core::store::BulkStep;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// commerce.bulk_load(ctx.tenant, BulkStep::Begin).await?;
    /// // … store.ingest(ctx.tenant, change_set).await? for each batch …
    /// let done = commerce.bulk_load(ctx.tenant, BulkStep::Finish).await?;
    /// assert!(!done.open && done.deferred_indexes == 0);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read or written (nothing is changed then).
    pub async fn bulk_load(
        &self,
        tenant: TenantId,
        step: crate::store::BulkStep,
    ) -> Result<crate::store::BulkLoad> {
        let check = self
            .store
            .rollups(tenant, crate::commerce::RollupAction::Bulk(step))
            .await?;
        check.bulk.ok_or_else(|| {
            Error::storage(
                crate::error::StorageErrorKind::Other,
                "the store answered a bulk-load step without its state",
            )
        })
    }

    /// Profitability: revenue, cost, gross profit, margin, invoices and average invoice per group, optionally
    /// bucketed, compared and ranked. Computed by the store; labelled with partner or campaign names when at most
    /// 1000 rows are returned.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let q = ProfitQuery::by(GroupBy::Customer, Period::year(2025)?);
    /// let report = commerce.profitability(ctx.tenant, &q).await?;
    /// assert_eq!(report.currency.code(), "EUR");
    /// assert!(report.rows.is_empty()); // nothing invoiced in 2025
    /// let top_none = ProfitQuery { rank: Some(Rank { order: RankOrder::Top, n: 0 }), ..q };
    /// assert_eq!(commerce.profitability(ctx.tenant, &top_none).await.unwrap_err().field(), Some("rank.n"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `rank.n` outside 1–10 000; [`Error::Storage`] when the store cannot be read.
    pub async fn profitability(&self, tenant: TenantId, q: &ProfitQuery) -> Result<ProfitReport> {
        q.check()?;
        let base = SumsQuery {
            rank: q.rank,
            ..SumsQuery::by(q.group_by, q.period, self.reporting)
        };
        let (current, previous): (Vec<ProfitSums>, Option<Vec<ProfitSums>>) = match q.bucket {
            None => {
                let cur = self.store.profit_sums(tenant, &base).await?;
                let prev = if q.compare {
                    Some(
                        self.store
                            .profit_sums(
                                tenant,
                                &SumsQuery {
                                    period: q.period.previous(),
                                    rank: None,
                                    ..base.clone()
                                },
                            )
                            .await?,
                    )
                } else {
                    None
                };
                (cur, prev)
            }
            Some(b) => {
                let bucketed = |period| SumsQuery {
                    period,
                    bucket: Some(b),
                    rank: None,
                    ..base.clone()
                };
                let mut all = self.store.profit_sums(tenant, &bucketed(q.period)).await?;
                if q.compare {
                    // The first bucket is compared with the whole bucket before it; the first stays as the period
                    // cuts it, as without the comparison. No document is dated before the business dates: a
                    // bucket before them is empty anyway.
                    let first = b.index(q.period.from());
                    if let (Some(from), Some(next)) = (b.start_of(first - 1), b.start_of(first)) {
                        let from = from.max(crate::time::MIN_BUSINESS_DATE);
                        if let Some(to) = next.pred_opt().filter(|to| *to >= from) {
                            all.extend(
                                self.store
                                    .profit_sums(tenant, &bucketed(Period::new(from, to)?))
                                    .await?,
                            );
                        }
                    }
                }
                if q.rank.is_some() {
                    let ranked = self.store.profit_sums(tenant, &base).await?;
                    let pos: BTreeMap<Option<String>, usize> = ranked
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| (s.key, i))
                        .collect();
                    all.retain(|s| pos.contains_key(&s.key));
                    all.sort_by_key(|s| (pos[&s.key], s.bucket));
                }
                (all, None)
            }
        };
        let mut rows = finish_profitability(q, &current, previous.as_deref());
        if rows.len() <= 1000 {
            // One read per distinct key: with buckets the same customer or campaign heads many rows.
            let mut labels: BTreeMap<String, Option<String>> = BTreeMap::new();
            for r in &mut rows {
                let Some(k) = &r.key else { continue };
                if let Some(label) = labels.get(k) {
                    r.label = label.clone();
                    continue;
                }
                let label = match q.group_by {
                    GroupBy::Customer => match k.parse::<PartnerId>() {
                        Ok(id) => {
                            crate::service::found(self.crm.store().partner(tenant, id).await)?
                                .map(|p| p.name)
                        }
                        Err(_) => None,
                    },
                    GroupBy::Campaign => match k.parse::<CampaignId>() {
                        Ok(id) => crate::service::found(self.store.campaign(tenant, id).await)?
                            .map(|c| c.name),
                        Err(_) => None,
                    },
                    _ => None,
                };
                labels.insert(k.clone(), label.clone());
                r.label = label;
            }
        }
        Ok(ProfitReport {
            query: q.clone(),
            currency: self.reporting,
            rows,
        })
    }
}

/// `Ok(None)` for a record that is not found, the record or the error otherwise.
fn absent_as_none<T>(read: Result<T>) -> Result<Option<T>> {
    match read {
        Ok(x) => Ok(Some(x)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
