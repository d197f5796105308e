//! Commerce: products, the host's documents (invoices, credit notes, vendor bills, payments), exchange rates,
//! campaigns with their call lists, and the reports built on them (campaign report, customer profitability,
//! open items and balances).
//!
//! The key design decision: **convert once, sum integers.** A document is converted into the tenant's reporting
//! currency at its issue date when the host records it, and its signed revenue, cost and quantity effects are
//! stored as integer 10^-4 units next to the rate used. Every report is then an exact integer sum that the
//! database computes ([`CommerceStore`]), and [`reference`](mod@reference) states the same calculations in plain Rust so the
//! conformance suite can prove each adapter equal to them on random data.
//!
//! The pure parts ([`NewDocument::record`], [`Campaign::launch`], [`record_outcome`], [`Criteria::check`], the
//! `finish_*` derivations) decide; [`CommerceService`](crate::service::CommerceService) loads, decides and commits one
//! [`crate::store::ChangeSet`] per operation through the lead service's one commit path (its hooks and subscribers).

pub mod attribution;
mod campaign;
mod document;
mod period;
mod product;
mod rate;
pub mod reference;
mod report;
pub mod segment;
pub mod send;
pub mod store;
pub mod uplift;

pub use attribution::{
    check_models, finish_attribution, AttributionInputs, AttributionReport, AttributionRow,
    AttributionScope, Model, Sale, Touch, TouchKind, MAX_LOOKBACK_DAYS,
};
pub use campaign::{
    record_outcome, CallOutcome, Campaign, CampaignCost, CampaignStatus, CampaignTarget, Channel,
    Holdout, Launch, NewCampaign, OutcomeChange, OutcomeKind, MAX_AGENTS, MAX_HOLDOUT_PCT,
};
pub use document::{
    Allocation, Document, DocumentFacts, DocumentKind, Line, NewDocument, NewLine, PartnerAttrs,
    PaymentDirection, MAX_LINES,
};
pub use period::{day_number, from_day_number, Bucket, Period};
pub use product::{code, Category, NewCategory, NewProduct, Product, Recorded, MAX_CODE};
pub use rate::{
    check_rate, missing_rate, AppliedRate, ExchangeRate, RateRule, RateSource, RateTable, MAX_RATE,
    MAX_RATE_AGE_DAYS, MAX_RATE_RULE_DAYS, RATE_SCALE,
};
pub use report::{
    days_overdue, finish_campaign, finish_profitability, order_open_items, order_sums, pct,
    Balance, CampaignDifference, CampaignReport, CampaignSums, CampaignTotals, DocumentDifference,
    FactDifference, FunnelStep, GroupBy, OpenItem, PartnerFact, ProfitQuery, ProfitReport,
    ProfitRow, ProfitSums, Progress, Rank, RankOrder, RollupAction, RollupCheck, RollupDifference,
    RollupSums, SumsQuery, TargetCountDifference, TargetMeasure,
};
pub use segment::{BoughtMode, Cmp, Criteria, Item, LastSale, Needs, MAX_DEPTH, MAX_NODES};
pub use store::{
    CampaignMeasure, CampaignMeasuresExt, CampaignRead, CommerceKey, CommerceRecord, CommerceStore,
    CommerceStoreExt, DocumentFilter, PortalKey, SegmentMember,
};
pub use uplift::{
    finish_uplift, proportion_difference, wilson, Confidence, GroupOutcome, GroupSums, Interval,
    OutcomeQuery, OutcomeSums, UpliftReport, MAX_PROMOTED,
};

use crate::id::TenantId;
use serde::{Deserialize, Serialize};

/// A write of commerce records, carried by [`crate::store::Write::Commerce`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommerceWrite {
    /// Insert a category.
    InsertCategory(Category),
    /// Replace a category whose stored version is `expected_version`.
    UpdateCategory {
        /// The new state.
        category: Category,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a product.
    InsertProduct(Product),
    /// Replace a product whose stored version is `expected_version`.
    UpdateProduct {
        /// The new state.
        product: Product,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a document with its lines and allocations.
    InsertDocument(Document),
    /// Replace a document (same id), its lines and allocations, whose stored version is `expected_version`.
    ReplaceDocument {
        /// The new state.
        document: Document,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert an exchange rate.
    InsertRate(ExchangeRate),
    /// Insert a campaign.
    InsertCampaign(Campaign),
    /// Replace a campaign whose stored version is `expected_version`.
    UpdateCampaign {
        /// The new state.
        campaign: Campaign,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a campaign cost entry.
    InsertCampaignCost(CampaignCost),
    /// Insert a campaign target (the launch snapshot).
    InsertCampaignTarget(CampaignTarget),
    /// Replace a target whose stored version is `expected_version`.
    UpdateCampaignTarget {
        /// The new state.
        target: CampaignTarget,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a quotation revision (its number is unique per tenant).
    InsertQuotation(crate::sales::Quotation),
    /// Replace a quotation revision whose stored version is `expected_version`.
    UpdateQuotation {
        /// The new state.
        quotation: crate::sales::Quotation,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a contract (its number, and the quotation it came from, are unique per tenant).
    InsertContract(crate::sales::Contract),
    /// Replace a contract whose stored version is `expected_version`.
    UpdateContract {
        /// The new state.
        contract: crate::sales::Contract,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert an attachment's metadata (its bytes are in the blob store already).
    InsertAttachment(crate::sales::Attachment),
    /// Replace an attachment's metadata whose stored version is `expected_version`.
    UpdateAttachment {
        /// The new state.
        attachment: crate::sales::Attachment,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a portal representative (its pending token's digest is unique per tenant).
    InsertRepresentative(crate::portal::Representative),
    /// Replace a representative whose stored version is `expected_version`.
    UpdateRepresentative {
        /// The new state.
        representative: crate::portal::Representative,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a portal payment attempt (its idempotency key is unique per tenant).
    InsertPaymentAttempt(crate::portal::PaymentAttempt),
    /// Replace a payment attempt whose stored version is `expected_version`.
    UpdatePaymentAttempt {
        /// The new state.
        attempt: crate::portal::PaymentAttempt,
        /// The stored version.
        expected_version: u64,
    },
    /// Insert a meeting.
    InsertMeeting(crate::sales::Meeting),
    /// Replace a meeting whose stored version is `expected_version`.
    UpdateMeeting {
        /// The new state.
        meeting: crate::sales::Meeting,
        /// The stored version.
        expected_version: u64,
    },
}

impl CommerceWrite {
    /// The tenant the written record belongs to.
    pub fn tenant(&self) -> TenantId {
        match self {
            Self::InsertCategory(c) | Self::UpdateCategory { category: c, .. } => c.tenant,
            Self::InsertProduct(p) | Self::UpdateProduct { product: p, .. } => p.tenant,
            Self::InsertDocument(d) | Self::ReplaceDocument { document: d, .. } => d.tenant,
            Self::InsertRate(r) => r.tenant,
            Self::InsertCampaign(c) | Self::UpdateCampaign { campaign: c, .. } => c.tenant,
            Self::InsertCampaignCost(c) => c.tenant,
            Self::InsertCampaignTarget(t) | Self::UpdateCampaignTarget { target: t, .. } => {
                t.tenant
            }
            Self::InsertQuotation(q) | Self::UpdateQuotation { quotation: q, .. } => q.tenant(),
            Self::InsertMeeting(m) | Self::UpdateMeeting { meeting: m, .. } => m.tenant(),
            Self::InsertContract(c) | Self::UpdateContract { contract: c, .. } => c.tenant(),
            Self::InsertAttachment(a) | Self::UpdateAttachment { attachment: a, .. } => a.tenant(),
            Self::InsertRepresentative(r)
            | Self::UpdateRepresentative {
                representative: r, ..
            } => r.tenant(),
            Self::InsertPaymentAttempt(a) | Self::UpdatePaymentAttempt { attempt: a, .. } => {
                a.tenant()
            }
        }
    }

    /// Whether it changes a stored record (bulk ingest refuses those).
    pub fn is_update(&self) -> bool {
        matches!(
            self,
            Self::UpdateCategory { .. }
                | Self::UpdateProduct { .. }
                | Self::ReplaceDocument { .. }
                | Self::UpdateCampaign { .. }
                | Self::UpdateCampaignTarget { .. }
                | Self::UpdateQuotation { .. }
                | Self::UpdateMeeting { .. }
                | Self::UpdateContract { .. }
                | Self::UpdateAttachment { .. }
                | Self::UpdateRepresentative { .. }
                | Self::UpdatePaymentAttempt { .. }
        )
    }
}
