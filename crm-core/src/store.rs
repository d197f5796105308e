//! Storage traits: what every adapter implements, with its contract.
//!
//! # Contract
//!
//! Every adapter (SQLite, PostgreSQL, …) implements [`Store`] and passes the shared conformance suite
//! (`crm_core::conformance`, feature `conformance`). In particular:
//!
//! - **Tenancy.** Every read takes a [`TenantId`] and returns only that tenant's rows; an id of another tenant reads
//!   as [`Error::NotFound`]. [`Store::commit`] refuses (with [`Error::Invalid`] on field `tenant`) a write whose
//!   record belongs to a tenant other than the one committing.
//! - **Checked records.** [`Store::commit`] and [`Store::ingest`] start with [`ChangeSet::check`]: a pipeline
//!   written as raw data that breaks [`Pipeline::check`] is refused with [`Error::Invalid`] and nothing is written.
//! - **Atomicity.** [`Store::commit`] applies a [`ChangeSet`] in one transaction: all of it or none of it. A change,
//!   its events (which are the activity log), its stage-history steps and any outbox rows commit together.
//! - **Optimistic concurrency.** Every `Update*` write names the version it was based on; if the stored version
//!   differs, the whole change set fails with [`Error::Conflict`] (naming the stored version) and nothing is written.
//!   `Insert*` of an existing key fails with [`Error::AlreadyExists`].
//! - **Append-only.** Events, stage history and comments are never updated or deleted.
//! - **Exact money.** Amounts round-trip exactly (four decimal places), and sums are computed exactly in the
//!   database.
//! - **Pagination.** Listings are keyset-paginated: [`Page::next`] is `Some` exactly when more items follow, and
//!   passing it back in [`PageRequest::after`] continues after the last item returned, even when rows were inserted
//!   meanwhile.
//! - **Errors.** Native errors are mapped into [`Error::Storage`] with a [`crate::error::StorageErrorKind`];
//!   a serialization failure or lost connection is retryable.

use crate::dedupe::DedupeKey;
use crate::error::{Error, Result};
use crate::event::{CommentTarget, DomainEvent, StageHistoryEntry};
use crate::id::{LeadId, PartnerId, PipelineId, RequestId, StageId, TenantId, UserId};
use crate::lead::{Lead, StatusKind};
pub use crate::page::{Cursor, Page, PageRequest};
use crate::partner::Partner;
use crate::pipeline::{LostReason, Pipeline, StageKind};
use crate::request::{Comment, Request};
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A step of a bulk load, run through [`CommerceStore::rollups`](crate::commerce::CommerceStore::rollups) with
/// [`RollupAction::Bulk`](crate::commerce::RollupAction::Bulk) (the host's call is
/// [`CommerceService::bulk_load`](crate::service::CommerceService::bulk_load)).
///
/// `Begin` before a large [`Store::ingest`] (a first import, a migration from another system), `Finish` after it,
/// `Status` to read where loading stands. Between them the adapter may defer work that a bulk load does faster at
/// once: the SQL adapters drop their non-unique indexes (store-wide, until the last open load finishes) and stop
/// keeping the tenant's sales roll-ups in its ingests; `Finish` builds the indexes again and rebuilds the
/// tenant's roll-ups from its documents, in one transaction. Both steps are idempotent. While a tenant's load is
/// open its reports read roll-ups as they stood before the ingests (`verify_rollups` lists the difference), and
/// reads that used a dropped index scan instead: they stay correct but slower. Commits go on as always. A load a
/// crash left open is finished when SQLite opens the file again; on PostgreSQL, which serves many processes, by
/// `Finish` or the adapter's `finish_bulk_loads`. Stores that defer nothing only track the open loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkStep {
    /// Opens the tenant's bulk load (nothing changes when it is already open).
    Begin,
    /// Finishes the tenant's bulk load: when it was open, rebuilds its roll-ups; when it was the last open load,
    /// builds the deferred indexes again. Nothing changes when it is not open.
    Finish,
    /// Changes nothing: where bulk loading stands.
    Status,
}

/// Where bulk loading stands after a [`BulkStep`] ([`RollupCheck::bulk`](crate::commerce::RollupCheck::bulk)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BulkLoad {
    /// Whether this tenant's bulk load is open.
    pub open: bool,
    /// How many tenants have a bulk load open, this one included.
    pub open_loads: u32,
    /// How many indexes the store has dropped until the last open load finishes (0 on a store that defers none).
    pub deferred_indexes: u32,
    /// Whether this step rebuilt the tenant's sales roll-ups (a `Finish` of an open load on a store that keeps
    /// them).
    pub rebuilt: bool,
}

/// One write of a [`ChangeSet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Write {
    /// Insert a new partner and its duplicate-detection keys.
    InsertPartner {
        /// The partner (version 1).
        partner: Partner,
        /// Its keys.
        keys: Vec<DedupeKey>,
    },
    /// Replace a partner whose stored version is `expected_version`, and its keys.
    UpdatePartner {
        /// The new state.
        partner: Partner,
        /// The version the change was based on.
        expected_version: u64,
        /// Its keys.
        keys: Vec<DedupeKey>,
    },
    /// Insert a pipeline with its stages.
    InsertPipeline(Pipeline),
    /// Insert a lost reason.
    InsertLostReason(LostReason),
    /// Insert a lead.
    InsertLead(Lead),
    /// Replace a lead whose stored version is `expected_version`.
    UpdateLead {
        /// The new state.
        lead: Lead,
        /// The version the change was based on.
        expected_version: u64,
    },
    /// Insert a request.
    InsertRequest(Request),
    /// Replace a request whose stored version is `expected_version`.
    UpdateRequest {
        /// The new state.
        request: Request,
        /// The version the change was based on.
        expected_version: u64,
    },
    /// Append a comment.
    InsertComment(Comment),
    /// Append a domain event (an activity-log entry).
    AppendEvent(DomainEvent),
    /// Append a stage-history step.
    AppendStageHistory(StageHistoryEntry),
    /// Enqueue a message a rule decided, unless the tenant already has one with the same idempotency key (then
    /// nothing is written and the rest of the change set still commits). See [`crate::outbox::OutboxStore`].
    EnqueueOutbox(crate::outbox::OutboxMessage),
    /// A write of the commerce records (products, documents, rates, campaigns); adapters hand it to their
    /// commerce module. See [`crate::commerce::CommerceStore`].
    Commerce(crate::commerce::CommerceWrite),
    /// Store a tenant setting, replacing the value its key had.
    PutSetting(crate::setting::Setting),
    /// Point a record at another partner (a merge, or its undo): the record `moved.link` of `tenant` must point at
    /// `moved.from` at version `moved.link.version` (any, for a comment), else nothing matches and the change set
    /// fails with [`Error::Conflict`]; it then points at `moved.to`, one version on. A document's lines and
    /// allocations move with it.
    Repoint {
        /// The tenant.
        tenant: TenantId,
        /// The record and where it moves.
        moved: crate::merge::Move,
    },
    /// Insert the journal of a merge.
    InsertMerge(crate::merge::PartnerMerge),
    /// Replace a merge's journal whose stored version is `expected_version` (its undo).
    UpdateMerge {
        /// The new state.
        merge: crate::merge::PartnerMerge,
        /// The version the change was based on.
        expected_version: u64,
    },
    /// Point a record at another lead (a lead merge, or its undo): as [`Write::Repoint`], for the records
    /// [`Key::LeadLinks`] lists.
    RepointLead {
        /// The tenant.
        tenant: TenantId,
        /// The record and where it moves.
        moved: crate::lead_merge::LeadMove,
    },
    /// Insert the journal of a lead merge.
    InsertLeadMerge(crate::lead_merge::LeadMerge),
    /// Replace a lead merge's journal whose stored version is `expected_version` (its undo).
    UpdateLeadMerge {
        /// The new state.
        merge: crate::lead_merge::LeadMerge,
        /// The version the change was based on.
        expected_version: u64,
    },
    /// Store a data subject's key ([`crate::erasure`]); [`Error::AlreadyExists`] (entity `subject key`) when the
    /// subject has one.
    InsertSubjectKey(crate::erasure::SubjectKey),
    /// Erase a person: delete their keys (and, with `tombstones`, the keys of the partners merged into theirs) so the
    /// events sealed under them read as erased, and replace each value of
    /// `scrub` in the partner's records (the partner and its tombstones, its leads, requests, comments on any of
    /// them, documents, quotations, contracts, meetings, attachments' metadata, representatives, payment attempts,
    /// campaign targets, merge journals and the events stored unsealed) and in the tenant's outbox and inbox.
    Erase(crate::erasure::Erasure),
}

impl From<crate::commerce::CommerceWrite> for Write {
    fn from(w: crate::commerce::CommerceWrite) -> Self {
        Write::Commerce(w)
    }
}

impl Write {
    /// The tenant the written record belongs to.
    pub fn tenant(&self) -> TenantId {
        match self {
            Self::InsertPartner { partner, .. } | Self::UpdatePartner { partner, .. } => {
                partner.tenant
            }
            Self::InsertPipeline(p) => p.tenant,
            Self::InsertLostReason(r) => r.tenant,
            Self::InsertLead(l) | Self::UpdateLead { lead: l, .. } => l.tenant,
            Self::InsertRequest(r) | Self::UpdateRequest { request: r, .. } => r.tenant,
            Self::InsertComment(c) => c.tenant,
            Self::AppendEvent(e) => e.tenant,
            Self::AppendStageHistory(h) => h.tenant,
            Self::EnqueueOutbox(m) => m.tenant,
            Self::Commerce(c) => c.tenant(),
            Self::PutSetting(s) => s.tenant(),
            Self::Repoint { tenant, .. } => *tenant,
            Self::InsertMerge(m) | Self::UpdateMerge { merge: m, .. } => m.tenant,
            Self::RepointLead { tenant, .. } => *tenant,
            Self::InsertLeadMerge(m) | Self::UpdateLeadMerge { merge: m, .. } => m.tenant,
            Self::InsertSubjectKey(k) => k.tenant,
            Self::Erase(e) => e.tenant,
        }
    }
}

/// Writes that commit together or not at all: the unit of work between the services and a storage adapter.
///
/// This is the storage port's type, not the host's API: a host changes records through the services
/// ([`CrmService`](crate::service::CrmService), [`CommerceService`](crate::service::CommerceService)), which are the
/// one writer. The records a write carries can only be made by the pure transitions (their fields are private and
/// read through getters), so a change set holds what the transitions produced; bulk tools hand such records to
/// [`Store::ingest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// The writes, applied in order.
    pub(crate) writes: Vec<Write>,
}

impl ChangeSet {
    /// An empty change set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write.
    pub fn push(&mut self, w: Write) -> &mut Self {
        self.writes.push(w);
        self
    }

    /// The writes, in the order they apply.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// The writes, taken out (what an adapter applies).
    pub fn into_writes(self) -> Vec<Write> {
        self.writes
    }

    /// How many writes it holds.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether it holds no write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The events this change set appends, in order.
    pub fn events(&self) -> impl Iterator<Item = &DomainEvent> {
        self.writes.iter().filter_map(|w| match w {
            Write::AppendEvent(e) => Some(e),
            _ => None,
        })
    }

    /// Checks the change set holds only inserts and appends (what [`Store::ingest`] accepts).
    pub fn check_insert_only(&self) -> Result<()> {
        match self.writes.iter().position(|w| {
            matches!(
                w,
                Write::UpdatePartner { .. }
                    | Write::UpdateLead { .. }
                    | Write::UpdateRequest { .. }
                    | Write::PutSetting(_)
                    | Write::Repoint { .. }
                    | Write::InsertMerge(_)
                    | Write::UpdateMerge { .. }
                    | Write::RepointLead { .. }
                    | Write::InsertLeadMerge(_)
                    | Write::UpdateLeadMerge { .. }
                    | Write::Erase(_)
            ) || matches!(w, Write::Commerce(c) if c.is_update())
        }) {
            Some(i) => Err(Error::invalid(
                "writes",
                format!("write {i} is an update; ingest takes only inserts"),
            )),
            None => Ok(()),
        }
    }

    /// Checks the change set before it is applied: every write belongs to `tenant` ([`ChangeSet::check_tenant`])
    /// and every record whose invariants its type does not enforce holds them (a pipeline written as raw data:
    /// [`Pipeline::check`](crate::pipeline::Pipeline::check)). Adapters call this first in `commit` and `ingest`.
    pub fn check(&self, tenant: TenantId) -> Result<()> {
        self.check_tenant(tenant)?;
        for w in &self.writes {
            if let Write::InsertPipeline(p) = w {
                p.check()?;
            }
        }
        Ok(())
    }

    /// Checks every write belongs to `tenant`.
    pub fn check_tenant(&self, tenant: TenantId) -> Result<()> {
        match self.writes.iter().position(|w| w.tenant() != tenant) {
            Some(i) => Err(Error::invalid(
                "tenant",
                format!(
                    "write {i} of the change set belongs to another tenant than the one committing"
                ),
            )),
            None => Ok(()),
        }
    }
}

impl Extend<Write> for ChangeSet {
    fn extend<I: IntoIterator<Item = Write>>(&mut self, writes: I) {
        self.writes.extend(writes);
    }
}

impl FromIterator<Write> for ChangeSet {
    fn from_iter<I: IntoIterator<Item = Write>>(writes: I) -> Self {
        Self {
            writes: writes.into_iter().collect(),
        }
    }
}

/// How to sort leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeadSort {
    /// Newest first.
    #[default]
    CreatedDesc,
    /// Oldest first.
    CreatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
    /// Largest expected revenue first (amount only, whatever the currency; leads without one last).
    ExpectedRevenueDesc,
    /// Highest score first ([`crate::lead::LeadScore`]; leads without one last): whom to call first.
    ScoreDesc,
}

impl LeadSort {
    /// The integer sort key of a lead for this order (adapters store or compute the same).
    pub fn key(&self, lead: &Lead) -> i64 {
        match self {
            Self::CreatedDesc | Self::CreatedAsc => lead.created_at.timestamp_micros(),
            Self::UpdatedDesc => lead.updated_at.timestamp_micros(),
            Self::ExpectedRevenueDesc => lead
                .expected_revenue
                .map(|m| m.to_units())
                .unwrap_or(i64::MIN),
            Self::ScoreDesc => lead.score.as_ref().map_or(-1, |s| i64::from(s.value)),
        }
    }

    /// Whether the order is descending (by key, then by id).
    pub fn descending(&self) -> bool {
        !matches!(self, Self::CreatedAsc)
    }
}

/// A filter over leads; every `Some` narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadQuery {
    /// In this pipeline.
    pub pipeline: Option<PipelineId>,
    /// In this stage.
    pub stage: Option<StageId>,
    /// With this status.
    pub status: Option<StatusKind>,
    /// Owned by this user.
    pub owner: Option<UserId>,
    /// For this partner.
    pub partner: Option<PartnerId>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Containing this text (case-insensitive) in the title, the partner's name or a contact's e-mail.
    pub text: Option<String>,
    /// Last changed before this instant (the `lead_idle` timer: idle since before a cutoff). Indexed with the
    /// status.
    #[serde(default)]
    pub updated_before: Option<Timestamp>,
    /// With an expected close date before this day (the `close_date_passed` timer). Indexed with the status.
    #[serde(default)]
    pub close_before: Option<chrono::NaiveDate>,
    /// The order.
    pub sort: LeadSort,
    /// The page.
    pub page: PageRequest,
}

impl LeadQuery {
    /// The text filter, lower-cased, trimmed, `None` when empty.
    pub fn text_needle(&self) -> Option<String> {
        self.text
            .as_deref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
    }

    /// The tag filter, lower-cased.
    pub fn tag_needle(&self) -> Option<String> {
        self.tag.as_deref().map(|t| t.trim().to_lowercase())
    }
}

/// The lower-cased text a partner is found by in [`LeadQuery::text`]: its name and its contacts' e-mails, joined by
/// newlines. Adapters store exactly this (and the lower-cased lead title) and match the needle as a substring.
pub fn partner_search_text(p: &Partner) -> String {
    let mut s = p.name.to_lowercase();
    for e in p.emails() {
        s.push('\n');
        s.push_str(&e.to_lowercase());
    }
    s
}

/// Whether a lead matches a [`LeadQuery::text_needle`], given its partner's [`partner_search_text`].
pub fn text_matches(lead: &Lead, partner_search: &str, needle: &str) -> bool {
    lead.title.to_lowercase().contains(needle) || partner_search.contains(needle)
}

/// A filter over requests, sorted by due time (overdue first, those without a due time last), then id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestQuery {
    /// Assigned to this user.
    pub assignee: Option<UserId>,
    /// On this lead.
    pub lead: Option<LeadId>,
    /// On this partner.
    pub partner: Option<PartnerId>,
    /// Only open or in-progress requests.
    pub active_only: bool,
    /// Only requests due before this instant.
    pub due_before: Option<Timestamp>,
    /// Only requests due after this instant (with `due_before`, a window of due times: the `request_due_soon` and
    /// `request_overdue` timers).
    #[serde(default)]
    pub due_after: Option<Timestamp>,
    /// Only requests opened before this instant (the `request_age` timer). Indexed with `active_only`.
    #[serde(default)]
    pub opened_before: Option<Timestamp>,
    /// The page.
    pub page: PageRequest,
}

/// The sort key requests use: due time in microseconds, `i64::MAX` when there is none.
pub fn request_sort_key(r: &Request) -> i64 {
    r.due.map(|d| d.timestamp_micros()).unwrap_or(i64::MAX)
}

/// One currency's sums in a board column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotal {
    /// The currency.
    pub currency: crate::money::Currency,
    /// Sum of expected revenue.
    pub expected: Decimal,
    /// Sum of expected revenue × probability / 100.
    pub weighted: Decimal,
}

/// One column of the pipeline board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardColumn {
    /// The stage.
    pub stage: StageId,
    /// Its name.
    pub name: String,
    /// Open or won.
    pub kind: StageKind,
    /// Whether it is folded.
    pub fold: bool,
    /// Leads in the column: open leads in open stages, won leads in won stages (lost leads are not on the board).
    pub count: u64,
    /// Sums per currency, ordered by currency code.
    pub totals: Vec<CurrencyTotal>,
}

/// The pipeline board: a column per stage, in stage order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    /// The pipeline.
    pub pipeline: PipelineId,
    /// The columns.
    pub columns: Vec<BoardColumn>,
}

/// How many leads ever reached each stage of a pipeline, and how many were won and lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    /// (stage, name, distinct leads that entered it), in stage order.
    pub steps: Vec<(StageId, String, u64)>,
    /// Leads won.
    pub won: u64,
    /// Leads lost.
    pub lost: u64,
}

impl Funnel {
    /// Won ÷ (won + lost), as a percentage with two decimals; `None` before anything closed.
    pub fn win_rate(&self) -> Option<Decimal> {
        let closed = self.won + self.lost;
        (closed > 0).then(|| {
            (Decimal::from(self.won) * Decimal::ONE_HUNDRED / Decimal::from(closed)).round_dp(2)
        })
    }
}

/// Whose timeline to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum TimelineOf {
    /// A lead's.
    Lead(LeadId),
    /// A partner's (including its leads' and requests' events).
    Partner(PartnerId),
    /// A request's.
    Request(RequestId),
}

/// A partner matched by a duplicate-detection key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMatch {
    /// The partner.
    pub partner: PartnerId,
    /// Its name.
    pub name: String,
    /// The key it shares.
    pub key: DedupeKey,
}

/// What [`Store::fetch`] reads: a record by id, or a small set the tenant or one record owns. A key matches zero
/// or more records; an id matches at most one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Key {
    /// A partner by id.
    Partner(PartnerId),
    /// The partners sharing any of these duplicate-detection keys: one [`Record::KeyMatch`] per (partner, key), at
    /// most 100 partners.
    PartnersByKeys(Vec<DedupeKey>),
    /// A partner by the host's reference ([`Partner::host_ref`]); none when the tenant has none with it.
    PartnerByRef(String),
    /// The partner with a contact the host knows by this reference ([`Contact::host_ref`](crate::partner::Contact));
    /// none when no contact of the tenant has it.
    PartnerByContactRef(String),
    /// The partners with any of these host references, or with a contact that has any of these contact references
    /// (at most [`PageRequest::MAX`](crate::page::PageRequest::MAX) of each; more is [`Error::Invalid`]): what a
    /// batch of imported rows names, read at once.
    PartnersByRefs {
        /// Partners' host references.
        partners: Vec<String>,
        /// Contacts' host references.
        contacts: Vec<String>,
    },
    /// The tenant's live partners (a merge's tombstones left out) in id order (creation order: ids are UUID v7)
    /// after `after` (from the first when `None`), at most `limit` (capped at [`PageRequest::MAX`](crate::page::PageRequest::MAX)): a keyset page for
    /// exports.
    PartnersAfter {
        /// The last partner of the previous page.
        after: Option<PartnerId>,
        /// How many at most.
        limit: u32,
    },
    /// A pipeline by id.
    Pipeline(PipelineId),
    /// Every pipeline of the tenant, oldest first.
    Pipelines,
    /// The tenant's lost reasons, in creation order.
    LostReasons,
    /// A lead by id.
    Lead(LeadId),
    /// A lead by the host's reference ([`Lead::host_ref`]); none when the tenant has none with it.
    LeadByRef(String),
    /// A lead's stage history, oldest first.
    StageHistory(LeadId),
    /// A request by id.
    Request(RequestId),
    /// A tenant setting by key; none when the tenant has not set it.
    Setting(String),
    /// Every record that points at this partner, as [`Record::Link`]s (kind, id, version), in no particular
    /// order: what a merge moves.
    PartnerLinks(PartnerId),
    /// A merge's journal by id.
    Merge(crate::id::MergeId),
    /// Every record that points at this lead (requests, comments, quotations, contracts, meetings, attachments,
    /// campaign targets: [`crate::lead_merge::LEAD_LINKS`]), as [`Record::Link`]s, in no particular order: what a
    /// lead merge moves.
    LeadLinks(LeadId),
    /// A lead merge's journal by id.
    LeadMerge(crate::id::MergeId),
    /// A lead, its pipeline, its partner and the partner's data-subject key ([`crate::erasure::SubjectKey`]) when
    /// it has one, in that order, in one read (what a transition, the rules it fires and the sealing of its events
    /// need); nothing when the tenant has no such lead.
    LeadWithPipeline(LeadId),
    /// The keys of these data subjects ([`crate::erasure::SubjectKey`]) that the tenant holds, in any order.
    SubjectKeys(Vec<uuid::Uuid>),
}

impl Key {
    /// Refuses a key no adapter may run: a [`Key::PartnersByRefs`] list longer than
    /// [`PageRequest::MAX`](crate::page::PageRequest::MAX) ([`Error::Invalid`] on `partners` or `contacts`).
    /// Adapters call it first in [`Store::fetch`].
    pub fn check(&self) -> Result<()> {
        if let Key::PartnersByRefs { partners, contacts } = self {
            let max = crate::page::PageRequest::MAX as usize;
            for (field, list) in [("partners", partners), ("contacts", contacts)] {
                if list.len() > max {
                    let why = format!("{} references, at most {max} at once", list.len());
                    return Err(Error::invalid(field, why));
                }
            }
        }
        Ok(())
    }
}

/// One record [`Store::fetch`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A partner.
    Partner(Partner),
    /// A partner matched by a duplicate-detection key.
    KeyMatch(KeyMatch),
    /// A pipeline.
    Pipeline(Pipeline),
    /// A lost reason.
    LostReason(LostReason),
    /// A lead.
    Lead(Lead),
    /// A stage-history step.
    StageStep(StageHistoryEntry),
    /// A request.
    Request(Request),
    /// A tenant setting.
    Setting(crate::setting::Setting),
    /// A record pointing at a partner ([`Key::PartnerLinks`]).
    Link(crate::merge::Link),
    /// A merge's journal.
    Merge(crate::merge::PartnerMerge),
    /// A lead merge's journal.
    LeadMerge(crate::lead_merge::LeadMerge),
    /// A data subject's key ([`Key::SubjectKeys`]).
    SubjectKey(crate::erasure::SubjectKey),
}

storage_trait! {
    /// The storage every adapter implements: the few methods an adapter must write. The typed reads (`partner`,
    /// `lead`, `pipelines`, …) are provided by [`StoreExt`] over [`Store::fetch`]. See the [module docs](self) for
    /// the contract.
    pub trait Store: Send + Sync + Debug {
        /// Applies every write of `changes` in one transaction, or none of them.
        fn commit(tenant: TenantId, changes: ChangeSet) -> Result<()>;

        /// Bulk ingest: like [`Store::commit`] (one transaction, tenant checked, all or nothing) but only `Insert*`
        /// and `Append*` writes are accepted (an `Update*` is [`Error::Invalid`] on field `writes`), and the adapter
        /// may use its fastest path (binary COPY on PostgreSQL, one prepared statement per table on SQLite).
        /// Returns the number of rows written.
        fn ingest(tenant: TenantId, changes: ChangeSet) -> Result<u64>;


        /// The records `key` matches, in the order the key states (see [`Key`]); an unknown id matches nothing.
        fn fetch(tenant: TenantId, key: &Key) -> Result<Vec<Record>>;

        /// Leads matching a query, sorted and keyset-paginated.
        fn query_leads(tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>>;
        /// The board of a pipeline.
        fn board(tenant: TenantId, pipeline: PipelineId) -> Result<Board>;
        /// The funnel of a pipeline over leads entered in `[from, to)` (all time when `None`).
        fn funnel(tenant: TenantId, pipeline: PipelineId, period: Option<(Timestamp, Timestamp)>) -> Result<Funnel>;

        /// Requests matching a query: due first (overdue first), then id.
        fn query_requests(tenant: TenantId, query: &RequestQuery) -> Result<Page<Request>>;

        /// Comments on a record, newest first.
        fn comments(tenant: TenantId, target: CommentTarget, page: &PageRequest) -> Result<Page<Comment>>;
        /// A timeline (activity log), newest first.
        fn timeline(tenant: TenantId, of: TimelineOf, page: &PageRequest) -> Result<Page<DomainEvent>>;
        /// The tenant's events in commit order after position `after` (0 = from the start), with their positions. A
        /// position at or beyond the end of the feed (up to `u64::MAX`) gives nothing; it never wraps to the start.
        fn events_since(tenant: TenantId, after: u64, limit: u32) -> Result<Vec<(u64, DomainEvent)>>;
    }
}

typed_reads! {
    /// The typed reads over [`Store::fetch`]. Implemented for every [`Store`]; adapters never implement it.
    pub trait StoreExt: Store via fetch {
        /// A partner; [`Error::NotFound`] when the tenant has none with this id.
        fn partner(id: PartnerId) -> Partner = Key::Partner(id), "partner" for id;
        /// Partners sharing any of `keys`, one row per (partner, key), at most 100 partners.
        fn partners_by_keys(keys: &[DedupeKey]) -> Vec<KeyMatch> = Key::PartnersByKeys(keys.to_vec());
        /// The partner with the host's reference `host_ref`, if the tenant has one.
        fn partner_by_ref(host_ref: &str) -> Option<Partner> = Key::PartnerByRef(host_ref.to_string());
        /// The partner whose contact has the host's reference `host_ref`, if the tenant has one.
        fn partner_by_contact_ref(host_ref: &str) -> Option<Partner> = Key::PartnerByContactRef(host_ref.to_string());
        /// The partners with any of these references, or a contact with any of these contact references.
        fn partners_by_refs(partners: &[String], contacts: &[String]) -> Vec<Partner> = Key::PartnersByRefs { partners: partners.to_vec(), contacts: contacts.to_vec() };
        /// The tenant's partners in id order after `after`, at most `limit`.
        fn partners_after(after: Option<PartnerId>, limit: u32) -> Vec<Partner> = Key::PartnersAfter { after, limit };
        /// A pipeline; [`Error::NotFound`] when the tenant has none with this id.
        fn pipeline(id: PipelineId) -> Pipeline = Key::Pipeline(id), "pipeline" for id;
        /// All pipelines of a tenant, oldest first.
        fn pipelines() -> Vec<Pipeline> = Key::Pipelines;
        /// The tenant's lost reasons, in creation order.
        fn lost_reasons() -> Vec<LostReason> = Key::LostReasons;
        /// A lead; [`Error::NotFound`] when the tenant has none with this id.
        fn lead(id: LeadId) -> Lead = Key::Lead(id), "lead" for id;
        /// The lead with the host's reference `host_ref`, if the tenant has one.
        fn lead_by_ref(host_ref: &str) -> Option<Lead> = Key::LeadByRef(host_ref.to_string());
        /// A lead's stage history, oldest first.
        fn stage_history(lead: LeadId) -> Vec<StageHistoryEntry> = Key::StageHistory(lead);
        /// A request; [`Error::NotFound`] when the tenant has none with this id.
        fn request(id: RequestId) -> Request = Key::Request(id), "request" for id;
        /// The tenant's setting `key`, if it has one.
        fn setting(key: &str) -> Option<crate::setting::Setting> = Key::Setting(key.to_string());
    }
}

pick!(Record {
    Partner => Partner,
    KeyMatch => KeyMatch,
    Pipeline => Pipeline,
    LostReason => LostReason,
    Lead => Lead,
    StageStep => StageHistoryEntry,
    Request => Request,
    Setting => crate::setting::Setting,
    Link => crate::merge::Link,
    Merge => crate::merge::PartnerMerge,
    LeadMerge => crate::lead_merge::LeadMerge,
    SubjectKey => crate::erasure::SubjectKey,
});

/// For adapters answering [`Store::fetch`] with a by-id read that reports a missing row as [`Error::NotFound`]:
/// the record, or nothing when it does not exist (other errors pass through).
pub fn absent_as_empty<T>(read: Result<T>) -> Result<Vec<T>> {
    match read {
        Ok(t) => Ok(vec![t]),
        Err(Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Everything one storage adapter keeps, as one handle: the lead and partner [`Store`], the
/// [`CommerceStore`](crate::commerce::CommerceStore) and the [`OutboxStore`](crate::outbox::OutboxStore).
///
/// Adapters never implement this trait: it is implemented for every type that implements the storage traits, so
/// `Arc<dyn Backend>` is what a host (and the `crm` facade) holds, and it converts to each capability's trait
/// object (`Arc<dyn Backend>` coerces to `Arc<dyn Store>`, `Arc<dyn CommerceStore>` and `Arc<dyn OutboxStore>`).
///
/// ```
/// use crm_core::store::{Backend, Store};
/// use std::sync::Arc;
/// fn lead_side(backend: Arc<dyn Backend>) -> Arc<dyn Store> {
///     backend
/// }
/// ```
pub trait Backend:
    Store + crate::commerce::CommerceStore + crate::outbox::OutboxStore + 'static
{
}

impl<T> Backend for T where
    T: Store + crate::commerce::CommerceStore + crate::outbox::OutboxStore + 'static
{
}
