//! The commerce storage trait.
//!
//! # Contract
//!
//! Every adapter that implements [`crate::store::Store`] also implements [`CommerceStore`] and applies
//! [`crate::store::Write::Commerce`] writes inside [`crate::store::Store::commit`], with the base contract
//! (tenancy, atomicity, optimistic concurrency, exact money). In particular:
//!
//! - **Keys.** Categories and products are unique per (tenant, code), documents per (tenant, kind, number), rates
//!   per (tenant, from, to, day), targets per (tenant, campaign, partner). Inserting an existing key is
//!   [`crate::Error::AlreadyExists`]; every `Update*`/`Replace*` names the stored version or fails with
//!   [`crate::Error::Conflict`].
//! - **Replacement.** Replacing a document replaces its lines and allocations whole: a replaced document is never
//!   counted twice in any report.
//! - **Pushed down.** [`CommerceStore::segment`], [`CommerceStore::profit_sums`],
//!   [`CommerceStore::campaign_sums`], [`CommerceStore::campaign_measures`], [`CommerceStore::open_items`] and
//!   [`CommerceStoreExt::balances`] are computed by the database (GROUP BY over indexed columns or roll-ups kept in
//!   the same transaction), never by loading documents into memory, and equal the reference calculations of
//!   [`super::reference`] exactly (integer units).
//! - **Roll-ups.** Profitability and the campaign report read whole months from sums the adapter keeps per
//!   grouping and month in the transaction that records, replaces or re-points each sales document; the months at a
//!   period's edges come from the documents. [`CommerceStore::rollups`] recomputes them from the documents and
//!   lists every difference (none, in a correct adapter), and rebuilds them on request.
//! - **As of.** [`CommerceStore::open_items`] and [`CommerceStoreExt::balances`] on `as_of` are the account as it stood
//!   at the end of that day: documents (and so payments' allocations and credit notes) issued after it are left
//!   out; `as_of` also sets the days overdue.
//! - **Rates.** [`CommerceKey::Rate`] (read through [`CommerceStoreExt::rate`]) is the latest rate of the pair on
//!   or before the day, whatever its age; the commerce service applies the tenant's
//!   [`RateRule`](super::rate::RateRule) (how old it may be) to it.

use super::attribution::{AttributionInputs, AttributionScope};
use super::campaign::{Campaign, CampaignCost, CampaignTarget};
use super::document::{Document, DocumentKind};
use super::period::Period;
use super::product::{Category, Product};
use super::rate::ExchangeRate;
use super::report::{
    Balance, CampaignSums, CampaignTotals, OpenItem, ProfitSums, Progress, RollupAction,
    RollupCheck, SumsQuery,
};
use super::segment::Criteria;
use super::uplift::{OutcomeQuery, OutcomeSums};
use crate::error::Result;
use crate::id::{
    AttachmentId, CampaignId, CategoryId, ContractId, DocumentId, LeadId, MeetingId, PartnerId,
    ProductId, QuotationId, RepresentativeId, RequestId, TenantId, UserId,
};
use crate::money::Currency;
use crate::page::{Page, PageRequest};
use crate::sales::{AttachedTo, Attachment, Contract, Meeting, Quotation};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A member of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMember {
    /// The partner.
    pub partner: PartnerId,
    /// Its name now.
    pub name: String,
}

/// Which documents a [`CommerceKey::DocumentsAfter`] page holds (every filter optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentFilter {
    /// Only this kind.
    pub kind: Option<DocumentKind>,
    /// Only this partner's.
    pub partner: Option<PartnerId>,
    /// Issued on or after.
    pub from: Option<NaiveDate>,
    /// Issued before.
    pub before: Option<NaiveDate>,
}

impl DocumentFilter {
    /// Whether `d` passes.
    pub fn admits(&self, d: &Document) -> bool {
        self.kind.is_none_or(|k| d.kind() == k)
            && self.partner.is_none_or(|p| d.partner() == p)
            && self.from.is_none_or(|f| d.issue_date() >= f)
            && self.before.is_none_or(|b| d.issue_date() < b)
    }
}

/// What [`CommerceStore::fetch_commerce`] reads: records by id or by the host's key, or a small set belonging to
/// one record. A key matches zero or more records; ids and unique keys match at most one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommerceKey {
    /// A category by id.
    Category(CategoryId),
    /// A category by the host's code.
    CategoryCode(String),
    /// Those of the ids that are categories of the tenant (any order).
    Categories(Vec<CategoryId>),
    /// A product by id.
    Product(ProductId),
    /// A product by the host's code.
    ProductCode(String),
    /// Those of the ids that are products of the tenant (any order).
    Products(Vec<ProductId>),
    /// A document by id.
    Document(DocumentId),
    /// A document by kind and the host's number.
    DocumentNumber(DocumentKind, String),
    /// The latest rate on or before a day (see the contract), with the day it was recorded for.
    Rate {
        /// The document's currency.
        from: Currency,
        /// The reporting currency.
        to: Currency,
        /// The day.
        on: NaiveDate,
    },
    /// A campaign by id.
    Campaign(CampaignId),
    /// A campaign's cost entries, oldest day first.
    CampaignCosts(CampaignId),
    /// The campaign target whose call is this request.
    CampaignTargetOf(RequestId),
    /// A campaign's target by partner.
    CampaignTarget {
        /// The campaign.
        campaign: CampaignId,
        /// The partner.
        partner: PartnerId,
    },
    /// The documents of `kind` whose due date falls in `[from, before)`, by due date, then number: the
    /// `open_item_overdue` timer's candidates (a window of due dates, so a tick reads the invoices that became
    /// overdue lately, never the whole history).
    DocumentsDue {
        /// The kind.
        kind: DocumentKind,
        /// The earliest due date (included).
        from: NaiveDate,
        /// The due date the window ends before (excluded).
        before: NaiveDate,
    },
    /// The tenant's documents in id order (recording order: ids are UUID v7) after `after` (from the first when
    /// `None`), at most `limit` (capped at [`PageRequest::MAX`](crate::page::PageRequest::MAX)), narrowed to a
    /// kind, a partner and issue dates in `[from, before)` when given: a keyset page for exports.
    DocumentsAfter {
        /// The last document of the previous page.
        after: Option<DocumentId>,
        /// How many at most.
        limit: u32,
        /// Which documents.
        filter: DocumentFilter,
    },
    /// A quotation revision by id.
    Quotation(QuotationId),
    /// Every revision of every quotation made for a lead, by number (sequence, then revision).
    QuotationsOfLead(LeadId),
    /// Every revision of a quotation number (whatever its revision part), oldest revision first.
    QuotationRevisions {
        /// The year of the number.
        year: i32,
        /// The sequence of the number.
        sequence: u32,
    },
    /// The revision with the highest number of a year (at most one): the sequence the next quotation follows.
    LastQuotationOfYear(i32),
    /// The sent quotations whose validity ended before `before` (their last valid day is earlier), by validity
    /// date, then number: the ones the expiry time rule expires.
    QuotationsExpiring {
        /// The first day they are no longer valid on.
        before: NaiveDate,
    },
    /// A contract by id.
    Contract(ContractId),
    /// A partner's contracts, by start, then number.
    ContractsOfPartner(PartnerId),
    /// The contracts up for renewal in `[from, to]` (both included), by renewal date, then number.
    ContractsRenewing {
        /// The earliest renewal date.
        from: NaiveDate,
        /// The latest renewal date.
        to: NaiveDate,
    },
    /// An attachment's metadata by id (removed ones too).
    Attachment(AttachmentId),
    /// The attachments of a record, oldest first (by time, then id), removed ones too.
    AttachmentsOf(AttachedTo),
    /// A meeting by id.
    Meeting(MeetingId),
    /// A lead's meetings, by start, then id.
    MeetingsOfLead(LeadId),
    /// The tenant's scheduled meetings (neither held nor cancelled) that start in `[from, before)`, by start, then
    /// id: the reminders' candidates.
    MeetingsStarting {
        /// The earliest start (included).
        from: crate::time::Timestamp,
        /// The start the window ends before (excluded).
        before: crate::time::Timestamp,
    },
    /// A user's agenda: the meetings they organise or attend as a user that start in `[from, before)`, by start,
    /// then id.
    Agenda {
        /// The user.
        user: UserId,
        /// The earliest start (included).
        from: crate::time::Timestamp,
        /// The start the window ends before (excluded).
        before: crate::time::Timestamp,
    },
    /// A portal representative by id.
    Representative(RepresentativeId),
    /// The representative whose pending invitation token has this SHA-256 (hex; see
    /// [`crate::portal::InvitationToken::digest`]).
    RepresentativeByToken(String),
    /// The portal payment attempt with this idempotency key.
    PaymentAttemptByKey(String),
    /// The representatives with this e-mail address (lower case), by id.
    RepresentativesByEmail(String),
    /// A read scoped to one partner (the self-service portal's reads).
    OfPartner {
        /// The partner.
        partner: PartnerId,
        /// What of its records.
        key: PortalKey,
    },
    /// The documents whose renewal date ([`Document::renews_on`]) falls in `[from, to]` (both included), by
    /// renewal date, then kind and number: the `contract_renewal_due` timer's candidates.
    DocumentsRenewing {
        /// The earliest renewal date.
        from: NaiveDate,
        /// The latest renewal date.
        to: NaiveDate,
    },
    /// A partner's balances per currency (by currency code) on `as_of`: only documents issued on or before that
    /// day count (a currency with none is absent). Answered with [`CommerceRecord::Balance`]s.
    Balances {
        /// The partner.
        partner: PartnerId,
        /// The day the account is read on.
        as_of: NaiveDate,
    },
}

/// A read of one partner's records for the self-service portal, inside [`CommerceKey::OfPartner`]: every statement
/// an adapter builds for it filters on the tenant **and** the partner, so an id of another partner matches nothing,
/// exactly like an id of another tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortalKey {
    /// A document of the partner.
    Document(DocumentId),
    /// The partner's documents, newest first (issue day, then id, both descending), after the cursor (the issue day
    /// and id of the last one of the previous page), at most `limit`.
    Documents {
        /// Where the previous page ended.
        after: Option<(NaiveDate, DocumentId)>,
        /// The page size.
        limit: u32,
    },
    /// A request about the partner.
    Request(RequestId),
    /// A quotation revision made for the partner.
    Quotation(QuotationId),
    /// Every quotation revision made for the partner, newest number first.
    Quotations,
    /// A contract of the partner.
    Contract(ContractId),
    /// The partner's contracts, by start, then number.
    Contracts,
    /// The partner's representatives, oldest first.
    Representatives,
    /// The partner's payment attempts, newest first.
    Payments,
    /// The partner's payment attempts still reserving their amounts (started or pending), oldest first.
    PaymentsInProgress,
}

/// One record [`CommerceStore::fetch_commerce`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommerceRecord {
    /// A category.
    Category(Category),
    /// A product.
    Product(Product),
    /// A document with its lines and allocations.
    Document(Document),
    /// An exchange rate.
    Rate(ExchangeRate),
    /// A campaign.
    Campaign(Campaign),
    /// A campaign cost entry.
    CampaignCost(CampaignCost),
    /// A campaign target.
    CampaignTarget(CampaignTarget),
    /// A quotation revision.
    Quotation(Quotation),
    /// A meeting.
    Meeting(Meeting),
    /// A contract.
    Contract(Contract),
    /// An attachment's metadata.
    Attachment(Attachment),
    /// A request (read for a partner's portal).
    Request(crate::request::Request),
    /// A portal representative.
    Representative(crate::portal::Representative),
    /// A portal payment attempt.
    PaymentAttempt(crate::portal::PaymentAttempt),
    /// A partner's balance in one currency.
    Balance(Balance),
}

/// What [`CommerceStore::campaign_measures`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CampaignRead {
    /// A campaign's progress (its held-out targets left out): the total first (agent `None`), then one row per
    /// agent by agent id.
    Progress(CampaignId),
    /// The outcome sums of a campaign's targets and of its holdout over a query (see [`OutcomeSums`]).
    Outcomes {
        /// The campaign.
        campaign: CampaignId,
        /// The window, promoted items and reporting currency.
        query: OutcomeQuery,
    },
    /// The sales and touches an attribution report over a scope credits (see [`AttributionInputs`]).
    Attribution(AttributionScope),
    /// Every campaign's report sums over a period, in one snapshot: what [`CommerceStore::campaign_sums`] answers
    /// for each campaign of the tenant, by campaign id (see [`CampaignTotals`]).
    Sums {
        /// The period (all time when `None`).
        period: Option<Period>,
        /// The reporting currency.
        reporting: Currency,
    },
}

/// What [`CommerceStore::campaign_measures`] answers: the variant of the [`CampaignRead`] asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CampaignMeasure {
    /// For [`CampaignRead::Progress`].
    Progress(Vec<Progress>),
    /// For [`CampaignRead::Outcomes`].
    Outcomes(OutcomeSums),
    /// For [`CampaignRead::Attribution`].
    Attribution(AttributionInputs),
    /// For [`CampaignRead::Sums`].
    Sums(Vec<CampaignTotals>),
}

/// The typed campaign measures, over [`CommerceStore::campaign_measures`]. Implemented for every
/// [`CommerceStore`]; adapters never implement it themselves.
#[async_trait::async_trait]
pub trait CampaignMeasuresExt: CommerceStore {
    /// A campaign's progress (its held-out targets left out): the total first (agent `None`), then one row per
    /// agent by agent id.
    async fn progress(&self, tenant: TenantId, campaign: CampaignId) -> Result<Vec<Progress>> {
        match self
            .campaign_measures(tenant, &CampaignRead::Progress(campaign))
            .await?
        {
            CampaignMeasure::Progress(p) => Ok(p),
            other => Err(mismatch("progress", &other)),
        }
    }

    /// The outcome sums of a campaign's targets and of its holdout over `query` (see [`OutcomeSums`]).
    async fn campaign_outcomes(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        query: &OutcomeQuery,
    ) -> Result<OutcomeSums> {
        let read = CampaignRead::Outcomes {
            campaign,
            query: query.clone(),
        };
        match self.campaign_measures(tenant, &read).await? {
            CampaignMeasure::Outcomes(s) => Ok(s),
            other => Err(mismatch("outcome sums", &other)),
        }
    }

    /// The sales and touches an attribution report over `scope` credits (see [`AttributionInputs`]).
    async fn attribution_inputs(
        &self,
        tenant: TenantId,
        scope: &AttributionScope,
    ) -> Result<AttributionInputs> {
        match self
            .campaign_measures(tenant, &CampaignRead::Attribution(*scope))
            .await?
        {
            CampaignMeasure::Attribution(a) => Ok(a),
            other => Err(mismatch("attribution inputs", &other)),
        }
    }

    /// Every campaign of the tenant with its report sums over `period` (all time when `None`), by campaign id, read
    /// in one snapshot: each entry's sums equal [`CommerceStore::campaign_sums`] for that campaign.
    async fn campaigns_sums(
        &self,
        tenant: TenantId,
        period: Option<Period>,
        reporting: Currency,
    ) -> Result<Vec<CampaignTotals>> {
        match self
            .campaign_measures(tenant, &CampaignRead::Sums { period, reporting })
            .await?
        {
            CampaignMeasure::Sums(s) => Ok(s),
            other => Err(mismatch("campaign sums", &other)),
        }
    }
}

impl<S: CommerceStore + ?Sized> CampaignMeasuresExt for S {}

/// A store answered another measure than the one asked.
fn mismatch(asked: &str, got: &CampaignMeasure) -> crate::Error {
    crate::Error::storage(
        crate::error::StorageErrorKind::Internal,
        format!("the store answered {got:?} for {asked}"),
    )
}

storage_trait! {
    /// The commerce reads and reports every adapter implements. See the [module docs](self) for the contract; the
    /// typed reads (`product`, `document_by_number`, `rate`, …) are in [`CommerceStoreExt`].
    pub trait CommerceStore: Send + Sync + Debug {
        /// The records `key` matches, in the order the key states (see [`CommerceKey`]).
        fn fetch_commerce(tenant: TenantId, key: &CommerceKey) -> Result<Vec<CommerceRecord>>;
        /// A campaign's targets by partner id, keyset-paginated.
        fn campaign_targets(tenant: TenantId, campaign: CampaignId, page: &PageRequest) -> Result<Page<CampaignTarget>>;

        /// The partners matching `criteria` on day `as_of` (volumes in `reporting`), ordered by partner id.
        fn segment(tenant: TenantId, criteria: &Criteria, as_of: NaiveDate, reporting: Currency) -> Result<Vec<SegmentMember>>;
        /// Profitability sums (see [`SumsQuery`] for grouping and order).
        fn profit_sums(tenant: TenantId, query: &SumsQuery) -> Result<Vec<ProfitSums>>;
        /// A campaign's report sums over `period` (all time when `None`).
        fn campaign_sums(tenant: TenantId, campaign: CampaignId, period: Option<Period>, reporting: Currency) -> Result<CampaignSums>;
        /// A campaign measure (see [`CampaignRead`]): a campaign's progress, its outcome sums against its holdout,
        /// or the inputs of an attribution report. Read through [`CampaignMeasuresExt`].
        fn campaign_measures(tenant: TenantId, read: &CampaignRead) -> Result<CampaignMeasure>;
        /// A partner's open items on `as_of` (by due date, none last, then kind and number): the account as it
        /// stood at the end of that day. Invoices and bills issued after `as_of` are not listed, and payments (their
        /// allocations) and correcting credit notes issued after it settle nothing yet.
        fn open_items(tenant: TenantId, partner: PartnerId, as_of: NaiveDate) -> Result<Vec<OpenItem>>;
        /// Checks the sales roll-ups against the documents, and rebuilds them when asked (see [`RollupAction`]).
        fn rollups(tenant: TenantId, action: RollupAction) -> Result<RollupCheck>;
    }
}

typed_reads! {
    /// The typed commerce reads, over [`CommerceStore::fetch_commerce`]. Implemented for every [`CommerceStore`];
    /// adapters never implement it themselves.
    pub trait CommerceStoreExt: CommerceStore via fetch_commerce {
        /// A category; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn category(id: CategoryId) -> Category = CommerceKey::Category(id), "product category" for id;
        /// A category by the host's code.
        fn category_by_code(code: &str) -> Option<Category> = CommerceKey::CategoryCode(code.to_string());
        /// A product; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn product(id: ProductId) -> Product = CommerceKey::Product(id), "product" for id;
        /// A product by the host's code.
        fn product_by_code(code: &str) -> Option<Product> = CommerceKey::ProductCode(code.to_string());
        /// Those of `ids` that are products of the tenant (any order).
        fn products(ids: &[ProductId]) -> Vec<Product> = CommerceKey::Products(ids.to_vec());
        /// Those of `ids` that are categories of the tenant (any order).
        fn categories(ids: &[CategoryId]) -> Vec<Category> = CommerceKey::Categories(ids.to_vec());
        /// A document; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn document(id: DocumentId) -> Document = CommerceKey::Document(id), "document" for id;
        /// A document by kind and the host's number.
        fn document_by_number(kind: DocumentKind, number: &str) -> Option<Document> =
            CommerceKey::DocumentNumber(kind, number.to_string());
        /// The rate valid on `on` (see the contract), with the day it was recorded for.
        fn rate(from: Currency, to: Currency, on: NaiveDate) -> Option<ExchangeRate> =
            CommerceKey::Rate { from, to, on };
        /// A campaign; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn campaign(id: CampaignId) -> Campaign = CommerceKey::Campaign(id), "campaign" for id;
        /// A campaign's cost entries, oldest day first.
        fn campaign_costs(campaign: CampaignId) -> Vec<CampaignCost> = CommerceKey::CampaignCosts(campaign);
        /// The target whose call is `request`; [`crate::Error::NotFound`] when the request is no campaign call.
        fn campaign_target(request: RequestId) -> CampaignTarget =
            CommerceKey::CampaignTargetOf(request), "campaign call" for request;
        /// A campaign's target by partner, if the partner is one.
        fn campaign_target_of(campaign: CampaignId, partner: PartnerId) -> Option<CampaignTarget> =
            CommerceKey::CampaignTarget { campaign, partner };
        /// The documents of `kind` due in `[from, before)`, by due date, then number.
        fn documents_due(kind: DocumentKind, from: NaiveDate, before: NaiveDate) -> Vec<Document> =
            CommerceKey::DocumentsDue { kind, from, before };
        /// A quotation revision; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn quotation(id: QuotationId) -> Quotation = CommerceKey::Quotation(id), "quotation" for id;
        /// Every revision of every quotation made for `lead`, by number.
        fn quotations_of_lead(lead: LeadId) -> Vec<Quotation> = CommerceKey::QuotationsOfLead(lead);
        /// Every revision of the quotation numbered `year`/`sequence`, oldest first.
        fn quotation_revisions(year: i32, sequence: u32) -> Vec<Quotation> =
            CommerceKey::QuotationRevisions { year, sequence };
        /// The revision with the highest number of `year`.
        fn last_quotation_of_year(year: i32) -> Option<Quotation> = CommerceKey::LastQuotationOfYear(year);
        /// The sent quotations no longer valid on `before`, by validity date.
        fn quotations_expiring(before: NaiveDate) -> Vec<Quotation> = CommerceKey::QuotationsExpiring { before };
        /// A contract; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn contract(id: ContractId) -> Contract = CommerceKey::Contract(id), "contract" for id;
        /// A partner's contracts, by start.
        fn contracts_of_partner(partner: PartnerId) -> Vec<Contract> = CommerceKey::ContractsOfPartner(partner);
        /// The contracts up for renewal in `[from, to]`, by renewal date.
        fn contracts_renewing(from: NaiveDate, to: NaiveDate) -> Vec<Contract> =
            CommerceKey::ContractsRenewing { from, to };
        /// An attachment's metadata (removed ones too); [`crate::Error::NotFound`] when the tenant has none with
        /// this id.
        fn attachment(id: AttachmentId) -> Attachment = CommerceKey::Attachment(id), "attachment" for id;
        /// The attachments of `target`, oldest first, removed ones too.
        fn attachments_of(target: AttachedTo) -> Vec<Attachment> = CommerceKey::AttachmentsOf(target);
        /// A meeting; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn meeting(id: MeetingId) -> Meeting = CommerceKey::Meeting(id), "meeting" for id;
        /// A lead's meetings, by start.
        fn meetings_of_lead(lead: LeadId) -> Vec<Meeting> = CommerceKey::MeetingsOfLead(lead);
        /// The scheduled meetings starting in `[from, before)`, by start.
        fn meetings_starting(from: crate::time::Timestamp, before: crate::time::Timestamp) -> Vec<Meeting> =
            CommerceKey::MeetingsStarting { from, before };
        /// A user's meetings starting in `[from, before)`, by start.
        fn agenda(user: UserId, from: crate::time::Timestamp, before: crate::time::Timestamp) -> Vec<Meeting> =
            CommerceKey::Agenda { user, from, before };
        /// A representative; [`crate::Error::NotFound`] when the tenant has none with this id.
        fn representative(id: RepresentativeId) -> crate::portal::Representative =
            CommerceKey::Representative(id), "representative" for id;
        /// The representative whose pending invitation token has this digest.
        fn representative_by_token(digest: &str) -> Option<crate::portal::Representative> =
            CommerceKey::RepresentativeByToken(digest.to_string());
        /// The portal payment attempt with this idempotency key.
        fn payment_attempt_by_key(key: &str) -> Option<crate::portal::PaymentAttempt> =
            CommerceKey::PaymentAttemptByKey(key.to_string());
        /// The documents renewing in `[from, to]`, by renewal date, then kind and number.
        fn documents_renewing(from: NaiveDate, to: NaiveDate) -> Vec<Document> =
            CommerceKey::DocumentsRenewing { from, to };
        /// A partner's balances per currency (by currency code) on `as_of`: only documents issued on or before that
        /// day count (a currency with none is absent).
        fn balances(partner: PartnerId, as_of: NaiveDate) -> Vec<Balance> =
            CommerceKey::Balances { partner, as_of };
    }
}

pick!(CommerceRecord {
    Category => Category,
    Product => Product,
    Document => Document,
    Rate => ExchangeRate,
    Campaign => Campaign,
    CampaignCost => CampaignCost,
    CampaignTarget => CampaignTarget,
    Quotation => Quotation,
    Meeting => Meeting,
    Contract => Contract,
    Attachment => Attachment,
    Request => crate::request::Request,
    Representative => crate::portal::Representative,
    PaymentAttempt => crate::portal::PaymentAttempt,
    Balance => Balance,
});
