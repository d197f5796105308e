//! The commerce half of the reference model: the commerce records in vectors, [`CommerceWrite`]s applied inside
//! [`MemStore`]'s commit (so they are atomic with the rest of the change set), and every report answered by
//! [`crate::commerce::reference`] over those vectors. Nothing is pushed down or indexed: this is the meaning the
//! adapters' SQL must equal.

use super::{conflict, next_version, page, Data, MemStore};
use crate::commerce::reference::{self, CampaignFacts, Facts};
use crate::commerce::{
    Campaign, CampaignCost, CampaignSums, CampaignTarget, Category, CommerceKey, CommerceRecord,
    CommerceStore, CommerceWrite, Criteria, Document, ExchangeRate, OpenItem, Period, PortalKey,
    Product, ProfitSums, RollupAction, RollupCheck, SegmentMember, SumsQuery,
};
use crate::error::{Error, Result};
use crate::id::{CampaignId, LeadId, PartnerId, TenantId};
use crate::lead_merge::LeadMove;
use crate::merge::{Link, LinkKind, Move};
use crate::money::Currency;
use crate::partner::Partner;
use crate::portal::{PaymentAttempt, Representative};
use crate::request::Request;
use crate::sales::{Attachment, Contract, Meeting, Quotation};
use crate::store::{Page, PageRequest};
use async_trait::async_trait;
use chrono::NaiveDate;

/// The commerce records of every tenant.
#[derive(Debug, Default, Clone)]
pub(super) struct CommerceData {
    categories: Vec<Category>,
    products: Vec<Product>,
    documents: Vec<Document>,
    rates: Vec<ExchangeRate>,
    campaigns: Vec<Campaign>,
    costs: Vec<CampaignCost>,
    targets: Vec<CampaignTarget>,
    quotations: Vec<Quotation>,
    meetings: Vec<Meeting>,
    contracts: Vec<Contract>,
    attachments: Vec<Attachment>,
    representatives: Vec<Representative>,
    payments: Vec<PaymentAttempt>,
}

/// `Write::Erase` on the commerce records: each row `about` names is scrubbed.
pub(super) fn scrub(
    d: &mut CommerceData,
    about: &dyn Fn(&serde_json::Value) -> bool,
    scrub: &[(String, String)],
) -> Result<()> {
    super::scrub_rows(&mut d.documents, about, scrub)?;
    super::scrub_rows(&mut d.targets, about, scrub)?;
    super::scrub_rows(&mut d.quotations, about, scrub)?;
    super::scrub_rows(&mut d.meetings, about, scrub)?;
    super::scrub_rows(&mut d.contracts, about, scrub)?;
    super::scrub_rows(&mut d.attachments, about, scrub)?;
    super::scrub_rows(&mut d.representatives, about, scrub)?;
    super::scrub_rows(&mut d.payments, about, scrub)
}

/// Appends `row` unless a row with the same unique key (`clash`) exists.
fn insert<T: Clone>(
    rows: &mut Vec<T>,
    row: &T,
    clash: impl Fn(&T) -> bool,
    entity: &'static str,
    key: String,
) -> Result<()> {
    if rows.iter().any(clash) {
        return Err(Error::AlreadyExists { entity, key });
    }
    rows.push(row.clone());
    Ok(())
}

/// Replaces the row `same` finds when its version is `expected` and `row` carries the next one.
fn replace<T: Clone>(
    rows: &mut [T],
    row: &T,
    expected: u64,
    same: impl Fn(&T) -> bool,
    version: impl Fn(&T) -> u64,
    (entity, key): (&'static str, String),
) -> Result<()> {
    next_version(entity, version(row), expected)?;
    let slot = rows
        .iter_mut()
        .find(|x| same(x))
        .ok_or_else(|| Error::not_found(entity, &key))?;
    if version(slot) != expected {
        return Err(conflict(entity, key, expected, version(slot)));
    }
    *slot = row.clone();
    Ok(())
}

/// Applies one commerce write to the model's data (a copy the commit swaps in only when every write succeeded).
pub(super) fn apply_commerce(d: &mut CommerceData, w: &CommerceWrite) -> Result<()> {
    match w {
        CommerceWrite::InsertCategory(c) => insert(
            &mut d.categories,
            c,
            |x| x.tenant == c.tenant && (x.id == c.id || x.code == c.code),
            "product category",
            c.code.clone(),
        ),
        CommerceWrite::UpdateCategory {
            category: c,
            expected_version,
        } => replace(
            &mut d.categories,
            c,
            *expected_version,
            |x| x.tenant == c.tenant && x.id == c.id,
            |x| x.version,
            ("product category", c.code.clone()),
        ),
        CommerceWrite::InsertProduct(p) => insert(
            &mut d.products,
            p,
            |x| x.tenant == p.tenant && (x.id == p.id || x.code == p.code),
            "product",
            p.code.clone(),
        ),
        CommerceWrite::UpdateProduct {
            product: p,
            expected_version,
        } => replace(
            &mut d.products,
            p,
            *expected_version,
            |x| x.tenant == p.tenant && x.id == p.id,
            |x| x.version,
            ("product", p.code.clone()),
        ),
        CommerceWrite::InsertDocument(doc) => insert(
            &mut d.documents,
            doc,
            |x| {
                x.tenant == doc.tenant
                    && (x.id == doc.id || (x.kind == doc.kind && x.number == doc.number))
            },
            "document",
            format!("{} {}", doc.kind.as_str(), doc.number),
        ),
        CommerceWrite::ReplaceDocument {
            document: doc,
            expected_version,
        } => replace(
            &mut d.documents,
            doc,
            *expected_version,
            |x| x.tenant == doc.tenant && x.id == doc.id,
            |x| x.version,
            ("document", doc.id.to_string()),
        ),
        CommerceWrite::InsertRate(r) => insert(
            &mut d.rates,
            r,
            |x| x.tenant == r.tenant && x.from == r.from && x.to == r.to && x.on == r.on,
            "exchange rate",
            format!("{}/{} on {}", r.from, r.to, r.on),
        ),
        CommerceWrite::InsertCampaign(c) => insert(
            &mut d.campaigns,
            c,
            |x| x.tenant == c.tenant && x.id == c.id,
            "campaign",
            c.id.to_string(),
        ),
        CommerceWrite::UpdateCampaign {
            campaign: c,
            expected_version,
        } => replace(
            &mut d.campaigns,
            c,
            *expected_version,
            |x| x.tenant == c.tenant && x.id == c.id,
            |x| x.version,
            ("campaign", c.id.to_string()),
        ),
        CommerceWrite::InsertCampaignCost(c) => insert(
            &mut d.costs,
            c,
            |x| x.tenant == c.tenant && x.id == c.id,
            "campaign cost",
            c.id.to_string(),
        ),
        CommerceWrite::InsertCampaignTarget(t) => insert(
            &mut d.targets,
            t,
            |x| x.tenant == t.tenant && x.campaign == t.campaign && x.partner == t.partner,
            "campaign target",
            t.partner.to_string(),
        ),
        CommerceWrite::UpdateCampaignTarget {
            target: t,
            expected_version,
        } => replace(
            &mut d.targets,
            t,
            *expected_version,
            |x| x.tenant == t.tenant && x.campaign == t.campaign && x.partner == t.partner,
            |x| x.version,
            ("campaign target", t.partner.to_string()),
        ),
        CommerceWrite::InsertQuotation(q) => insert(
            &mut d.quotations,
            q,
            |x| x.tenant == q.tenant && (x.id == q.id || x.number == q.number),
            "quotation",
            q.number.to_string(),
        ),
        CommerceWrite::UpdateQuotation {
            quotation: q,
            expected_version,
        } => replace(
            &mut d.quotations,
            q,
            *expected_version,
            |x| x.tenant == q.tenant && x.id == q.id,
            |x| x.version,
            ("quotation", q.number.to_string()),
        ),
        CommerceWrite::InsertContract(c) => insert(
            &mut d.contracts,
            c,
            |x| {
                x.tenant == c.tenant
                    && (x.id == c.id
                        || x.number == c.number
                        || (c.quotation.is_some() && x.quotation == c.quotation))
            },
            "contract",
            c.number.clone(),
        ),
        CommerceWrite::UpdateContract {
            contract: c,
            expected_version,
        } => replace(
            &mut d.contracts,
            c,
            *expected_version,
            |x| x.tenant == c.tenant && x.id == c.id,
            |x| x.version,
            ("contract", c.number.clone()),
        ),
        CommerceWrite::InsertAttachment(a) => insert(
            &mut d.attachments,
            a,
            |x| x.tenant == a.tenant && x.id == a.id,
            "attachment",
            a.id.to_string(),
        ),
        CommerceWrite::UpdateAttachment {
            attachment: a,
            expected_version,
        } => replace(
            &mut d.attachments,
            a,
            *expected_version,
            |x| x.tenant == a.tenant && x.id == a.id,
            |x| x.version,
            ("attachment", a.id.to_string()),
        ),
        CommerceWrite::InsertRepresentative(r) => insert(
            &mut d.representatives,
            r,
            |x| {
                x.tenant == r.tenant
                    && (x.id == r.id
                        || (r.token_digest.is_some() && x.token_digest == r.token_digest))
            },
            "representative",
            r.id.to_string(),
        ),
        CommerceWrite::UpdateRepresentative {
            representative: r,
            expected_version,
        } => {
            let clash = d.representatives.iter().any(|x| {
                x.tenant == r.tenant
                    && x.id != r.id
                    && r.token_digest.is_some()
                    && x.token_digest == r.token_digest
            });
            if clash {
                return Err(Error::AlreadyExists {
                    entity: "representative",
                    key: r.id.to_string(),
                });
            }
            replace(
                &mut d.representatives,
                r,
                *expected_version,
                |x| x.tenant == r.tenant && x.id == r.id,
                |x| x.version,
                ("representative", r.id.to_string()),
            )
        }
        CommerceWrite::InsertPaymentAttempt(a) => insert(
            &mut d.payments,
            a,
            |x| x.tenant == a.tenant && (x.id == a.id || x.key == a.key),
            "payment",
            a.key.clone(),
        ),
        CommerceWrite::UpdatePaymentAttempt {
            attempt: a,
            expected_version,
        } => replace(
            &mut d.payments,
            a,
            *expected_version,
            |x| x.tenant == a.tenant && x.id == a.id,
            |x| x.version,
            ("payment", a.key.clone()),
        ),
        CommerceWrite::InsertMeeting(m) => insert(
            &mut d.meetings,
            m,
            |x| x.tenant == m.tenant && x.id == m.id,
            "meeting",
            m.id.to_string(),
        ),
        CommerceWrite::UpdateMeeting {
            meeting: m,
            expected_version,
        } => replace(
            &mut d.meetings,
            m,
            *expected_version,
            |x| x.tenant == m.tenant && x.id == m.id,
            |x| x.version,
            ("meeting", m.id.to_string()),
        ),
    }
}

/// A portal read: the records of `tenant` **and** `partner` the key names, in its order.
fn of_partner(
    d: &CommerceData,
    requests: &[Request],
    tenant: TenantId,
    partner: PartnerId,
    key: &PortalKey,
) -> Vec<CommerceRecord> {
    let docs = |keep: &dyn Fn(&Document) -> bool| {
        let mut v = of(
            &d.documents,
            tenant,
            |x| x.tenant,
            |x| x.partner == partner && keep(x),
        );
        v.sort_by_key(|x| std::cmp::Reverse((x.issue_date, x.id)));
        v
    };
    let quotations = |keep: &dyn Fn(&Quotation) -> bool| {
        let mut v = of(
            &d.quotations,
            tenant,
            |x| x.tenant,
            |x| x.partner == partner && keep(x),
        );
        v.sort_by_key(|x| std::cmp::Reverse(x.number));
        v.into_iter().map(CommerceRecord::Quotation).collect()
    };
    let contracts = |keep: &dyn Fn(&Contract) -> bool| {
        let mut v = of(
            &d.contracts,
            tenant,
            |x| x.tenant,
            |x| x.partner == partner && keep(x),
        );
        v.sort_by(|a, b| (a.term.starts_on, &a.number).cmp(&(b.term.starts_on, &b.number)));
        v.into_iter().map(CommerceRecord::Contract).collect()
    };
    match key {
        PortalKey::Document(id) => docs(&|x| x.id == *id)
            .into_iter()
            .map(CommerceRecord::Document)
            .collect(),
        PortalKey::Documents { after, limit } => docs(&|x| match after {
            Some(cursor) => (x.issue_date, x.id) < *cursor,
            None => true,
        })
        .into_iter()
        .take(*limit as usize)
        .map(CommerceRecord::Document)
        .collect(),
        PortalKey::Request(id) => of(
            requests,
            tenant,
            |x| x.tenant,
            |x| x.id == *id && x.partner == Some(partner),
        )
        .into_iter()
        .map(CommerceRecord::Request)
        .collect(),
        PortalKey::Quotation(id) => quotations(&|x| x.id == *id),
        PortalKey::Quotations => quotations(&|_| true),
        PortalKey::Contract(id) => contracts(&|x| x.id == *id),
        PortalKey::Contracts => contracts(&|_| true),
        PortalKey::Payments | PortalKey::PaymentsInProgress => {
            let reserving = matches!(key, PortalKey::PaymentsInProgress);
            let mut v = of(
                &d.payments,
                tenant,
                |x| x.tenant,
                |x| x.partner == partner && (!reserving || x.status.reserves()),
            );
            v.sort_by_key(|x| x.id);
            if !reserving {
                v.reverse();
            }
            v.into_iter().map(CommerceRecord::PaymentAttempt).collect()
        }
        PortalKey::Representatives => {
            let mut v = of(
                &d.representatives,
                tenant,
                |x| x.tenant,
                |x| x.partner == partner,
            );
            v.sort_by_key(|x| x.id);
            v.into_iter().map(CommerceRecord::Representative).collect()
        }
    }
}

/// The rows of `tenant` that `keep` selects, cloned.
fn of<T: Clone>(
    rows: &[T],
    tenant: TenantId,
    tenant_of: impl Fn(&T) -> TenantId,
    keep: impl Fn(&T) -> bool,
) -> Vec<T> {
    rows.iter()
        .filter(|x| tenant_of(x) == tenant && keep(x))
        .cloned()
        .collect()
}

/// What a campaign report counts besides documents and targets: the tenant's leads (the merged ones left out) and
/// its campaign costs.
fn campaign_leads_costs(d: &Data, tenant: TenantId) -> (Vec<crate::lead::Lead>, Vec<CampaignCost>) {
    let leads = of(
        &d.leads,
        tenant,
        |x| x.tenant,
        |l| l.status.kind() != crate::lead::StatusKind::Merged,
    );
    (leads, of(&d.commerce.costs, tenant, |x| x.tenant, |_| true))
}

fn fetch(d: &CommerceData, tenant: TenantId, key: &CommerceKey) -> Vec<CommerceRecord> {
    let categories = |keep: &dyn Fn(&Category) -> bool| {
        of(&d.categories, tenant, |x| x.tenant, keep)
            .into_iter()
            .map(CommerceRecord::Category)
            .collect()
    };
    let products = |keep: &dyn Fn(&Product) -> bool| {
        of(&d.products, tenant, |x| x.tenant, keep)
            .into_iter()
            .map(CommerceRecord::Product)
            .collect()
    };
    let documents = |keep: &dyn Fn(&Document) -> bool| {
        of(&d.documents, tenant, |x| x.tenant, keep)
            .into_iter()
            .map(CommerceRecord::Document)
            .collect()
    };
    // The timers' document keys, answered by the reference calculations over the tenant's documents.
    let by_reference = |find: &dyn Fn(Facts<'_>) -> Vec<Document>| -> Vec<CommerceRecord> {
        let tenant_docs = of(&d.documents, tenant, |x| x.tenant, |_| true);
        let facts = Facts {
            partners: &[],
            documents: &tenant_docs,
        };
        find(facts)
            .into_iter()
            .map(CommerceRecord::Document)
            .collect()
    };
    let quotations = |keep: &dyn Fn(&Quotation) -> bool| {
        let mut v = of(&d.quotations, tenant, |x| x.tenant, keep);
        v.sort_by_key(|x| x.number);
        v.into_iter()
            .map(CommerceRecord::Quotation)
            .collect::<Vec<_>>()
    };
    let meetings = |keep: &dyn Fn(&Meeting) -> bool| {
        let mut v = of(&d.meetings, tenant, |x| x.tenant, keep);
        v.sort_by_key(|x| (x.starts_at, x.id));
        v.into_iter()
            .map(CommerceRecord::Meeting)
            .collect::<Vec<_>>()
    };
    let contracts = |keep: &dyn Fn(&Contract) -> bool, renewal: bool| {
        let mut v = of(&d.contracts, tenant, |x| x.tenant, keep);
        if renewal {
            v.sort_by(|a, b| (a.term.renews_on, &a.number).cmp(&(b.term.renews_on, &b.number)));
        } else {
            v.sort_by(|a, b| (a.term.starts_on, &a.number).cmp(&(b.term.starts_on, &b.number)));
        }
        v.into_iter()
            .map(CommerceRecord::Contract)
            .collect::<Vec<_>>()
    };
    let attachments = |keep: &dyn Fn(&Attachment) -> bool| {
        let mut v = of(&d.attachments, tenant, |x| x.tenant, keep);
        v.sort_by_key(|x| (x.at, x.id));
        v.into_iter()
            .map(CommerceRecord::Attachment)
            .collect::<Vec<_>>()
    };
    let representatives = |keep: &dyn Fn(&Representative) -> bool| {
        of(&d.representatives, tenant, |x| x.tenant, keep)
            .into_iter()
            .map(CommerceRecord::Representative)
            .collect::<Vec<_>>()
    };
    match key {
        CommerceKey::Representative(id) => representatives(&|x| x.id == *id),
        CommerceKey::RepresentativeByToken(digest) => {
            representatives(&|x| x.token_digest.as_deref() == Some(digest.as_str()))
        }
        CommerceKey::OfPartner { partner, key } => of_partner(d, &[], tenant, *partner, key),
        CommerceKey::RepresentativesByEmail(e) => {
            let mut v = of(
                &d.representatives,
                tenant,
                |x| x.tenant,
                |x| x.email.to_lowercase() == *e,
            );
            v.sort_by_key(|x| x.id);
            v.into_iter().map(CommerceRecord::Representative).collect()
        }
        CommerceKey::PaymentAttemptByKey(k) => {
            of(&d.payments, tenant, |x| x.tenant, |x| x.key == *k)
                .into_iter()
                .map(CommerceRecord::PaymentAttempt)
                .collect()
        }
        CommerceKey::Attachment(id) => attachments(&|x| x.id == *id),
        CommerceKey::AttachmentsOf(target) => attachments(&|x| x.target == *target),
        CommerceKey::Contract(id) => contracts(&|x| x.id == *id, false),
        CommerceKey::ContractsOfPartner(p) => contracts(&|x| x.partner == *p, false),
        CommerceKey::ContractsRenewing { from, to } => contracts(
            &|x| x.term.renews_on.is_some_and(|r| *from <= r && r <= *to),
            true,
        ),
        CommerceKey::Meeting(id) => meetings(&|x| x.id == *id),
        CommerceKey::MeetingsOfLead(lead) => meetings(&|x| x.lead == Some(*lead)),
        CommerceKey::MeetingsStarting { from, before } => meetings(&|x| {
            x.status == crate::sales::MeetingStatus::Scheduled
                && x.starts_at >= *from
                && x.starts_at < *before
        }),
        CommerceKey::Agenda { user, from, before } => meetings(&|x| {
            x.starts_at >= *from && x.starts_at < *before && x.people().contains(user)
        }),
        CommerceKey::Quotation(id) => quotations(&|x| x.id == *id),
        CommerceKey::QuotationsOfLead(lead) => quotations(&|x| x.lead == Some(*lead)),
        CommerceKey::QuotationsExpiring { before } => {
            let mut v = of(
                &d.quotations,
                tenant,
                |x| x.tenant,
                |x: &Quotation| {
                    x.status == crate::sales::QuotationStatus::Sent && x.valid_until < *before
                },
            );
            v.sort_by_key(|x| (x.valid_until, x.number));
            v.into_iter().map(CommerceRecord::Quotation).collect()
        }
        CommerceKey::QuotationRevisions { year, sequence } => {
            quotations(&|x| x.number.year == *year && x.number.sequence == *sequence)
        }
        CommerceKey::LastQuotationOfYear(year) => quotations(&|x| x.number.year == *year)
            .pop()
            .into_iter()
            .collect(),
        CommerceKey::Category(id) => categories(&|x| x.id == *id),
        CommerceKey::CategoryCode(code) => categories(&|x| x.code == *code),
        CommerceKey::Categories(ids) => categories(&|x| ids.contains(&x.id)),
        CommerceKey::Product(id) => products(&|x| x.id == *id),
        CommerceKey::ProductCode(code) => products(&|x| x.code == *code),
        CommerceKey::Products(ids) => products(&|x| ids.contains(&x.id)),
        CommerceKey::Document(id) => documents(&|x| x.id == *id),
        CommerceKey::DocumentNumber(kind, number) => {
            documents(&|x| x.kind == *kind && x.number == *number)
        }
        CommerceKey::Rate { from, to, on } => {
            let mut v = of(
                &d.rates,
                tenant,
                |x| x.tenant,
                |x| x.from == *from && x.to == *to && x.on <= *on,
            );
            v.sort_by_key(|x| x.on);
            v.pop().map(CommerceRecord::Rate).into_iter().collect()
        }
        CommerceKey::Campaign(id) => of(&d.campaigns, tenant, |x| x.tenant, |x| x.id == *id)
            .into_iter()
            .map(CommerceRecord::Campaign)
            .collect(),
        CommerceKey::CampaignCosts(c) => {
            let mut v = of(&d.costs, tenant, |x| x.tenant, |x| x.campaign == *c);
            v.sort_by_key(|x| (x.date, x.id));
            v.into_iter().map(CommerceRecord::CampaignCost).collect()
        }
        CommerceKey::DocumentsDue { kind, from, before } => {
            by_reference(&|f| reference::documents_due(f, *kind, *from, *before))
        }
        CommerceKey::DocumentsRenewing { from, to } => {
            by_reference(&|f| reference::documents_renewing(f, *from, *to))
        }
        CommerceKey::Balances { partner, as_of } => {
            let tenant_docs = of(&d.documents, tenant, |x| x.tenant, |_| true);
            let facts = Facts {
                partners: &[],
                documents: &tenant_docs,
            };
            reference::balances(facts, *partner, *as_of)
                .into_iter()
                .map(CommerceRecord::Balance)
                .collect()
        }
        CommerceKey::DocumentsAfter {
            after,
            limit,
            filter,
        } => {
            let mut docs = of(
                &d.documents,
                tenant,
                |x| x.tenant,
                |x| after.is_none_or(|a| x.id > a) && filter.admits(x),
            );
            docs.sort_by_key(|x| x.id);
            docs.truncate((*limit).min(crate::page::PageRequest::MAX) as usize);
            docs.into_iter().map(CommerceRecord::Document).collect()
        }
        CommerceKey::CampaignTargetOf(r) => {
            of(&d.targets, tenant, |x| x.tenant, |x| x.request == Some(*r))
                .into_iter()
                .map(CommerceRecord::CampaignTarget)
                .collect()
        }
        CommerceKey::CampaignTarget { campaign, partner } => of(
            &d.targets,
            tenant,
            |x| x.tenant,
            |x| x.campaign == *campaign && x.partner == *partner,
        )
        .into_iter()
        .map(CommerceRecord::CampaignTarget)
        .collect(),
    }
}

impl Data {
    /// The tenant's live partners (tombstones of merges left out).
    fn tenant_partners(&self, tenant: TenantId) -> Vec<Partner> {
        self.partners
            .iter()
            .filter(|(p, _)| p.tenant == tenant && p.merged_into.is_none())
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn tenant_documents(&self, tenant: TenantId) -> Vec<Document> {
        of(&self.commerce.documents, tenant, |x| x.tenant, |_| true)
    }
}

#[async_trait]
impl CommerceStore for MemStore {
    async fn fetch_commerce(
        &self,
        tenant: TenantId,
        key: &CommerceKey,
    ) -> Result<Vec<CommerceRecord>> {
        let d = self.data();
        Ok(match key {
            // The portal's reads of requests need the lead side's requests.
            CommerceKey::OfPartner { partner, key } => {
                of_partner(&d.commerce, &d.requests, tenant, *partner, key)
            }
            _ => fetch(&d.commerce, tenant, key),
        })
    }

    async fn campaign_targets(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        p: &PageRequest,
    ) -> Result<Page<CampaignTarget>> {
        let items = of(
            &self.data().commerce.targets,
            tenant,
            |x| x.tenant,
            |x| x.campaign == campaign,
        );
        page(items, p, |t| (0, *t.partner.as_uuid()), false)
    }

    async fn segment(
        &self,
        tenant: TenantId,
        criteria: &Criteria,
        as_of: NaiveDate,
        reporting: Currency,
    ) -> Result<Vec<SegmentMember>> {
        criteria.check()?;
        let d = self.data();
        let (partners, documents) = (d.tenant_partners(tenant), d.tenant_documents(tenant));
        let facts = Facts {
            partners: &partners,
            documents: &documents,
        };
        let names: std::collections::BTreeMap<PartnerId, &str> =
            partners.iter().map(|p| (p.id, p.name.as_str())).collect();
        Ok(reference::segment(facts, criteria, as_of, reporting)
            .into_iter()
            .map(|id| SegmentMember {
                partner: id,
                name: names[&id].to_string(),
            })
            .collect())
    }

    async fn profit_sums(&self, tenant: TenantId, query: &SumsQuery) -> Result<Vec<ProfitSums>> {
        let documents = self.data().tenant_documents(tenant);
        let facts = Facts {
            partners: &[],
            documents: &documents,
        };
        Ok(reference::profit_sums(facts, query))
    }

    async fn campaign_sums(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        period: Option<Period>,
        reporting: Currency,
    ) -> Result<CampaignSums> {
        let d = self.data();
        let documents = d.tenant_documents(tenant);
        let (leads, costs) = campaign_leads_costs(&d, tenant);
        let targets = of(&d.commerce.targets, tenant, |x| x.tenant, |_| true);
        let facts = Facts {
            partners: &[],
            documents: &documents,
        };
        let cf = CampaignFacts {
            targets: &targets,
            leads: &leads,
            costs: &costs,
        };
        Ok(reference::campaign_sums(
            facts, cf, campaign, period, reporting,
        ))
    }

    async fn campaign_measures(
        &self,
        tenant: TenantId,
        read: &crate::commerce::CampaignRead,
    ) -> Result<crate::commerce::CampaignMeasure> {
        use crate::commerce::{CampaignMeasure, CampaignRead};
        let d = self.data();
        let targets = of(&d.commerce.targets, tenant, |x| x.tenant, |_| true);
        let documents = d.tenant_documents(tenant);
        let facts = Facts {
            partners: &[],
            documents: &documents,
        };
        Ok(match read {
            CampaignRead::Progress(campaign) => {
                CampaignMeasure::Progress(reference::progress(&targets, *campaign))
            }
            CampaignRead::Outcomes { campaign, query } => {
                query.check()?;
                CampaignMeasure::Outcomes(reference::outcome_sums(
                    facts, &targets, *campaign, query,
                ))
            }
            CampaignRead::Attribution(scope) => {
                scope.check()?;
                let campaigns = of(&d.commerce.campaigns, tenant, |x| x.tenant, |_| true);
                let leads = of(&d.leads, tenant, |x| x.tenant, |_| true);
                let meetings = of(&d.commerce.meetings, tenant, |x| x.tenant, |_| true);
                CampaignMeasure::Attribution(reference::attribution_inputs(
                    facts, &targets, &leads, &meetings, &campaigns, scope,
                ))
            }
            CampaignRead::Sums { period, reporting } => {
                let campaigns = of(&d.commerce.campaigns, tenant, |x| x.tenant, |_| true);
                let (leads, costs) = campaign_leads_costs(&d, tenant);
                let cf = CampaignFacts {
                    targets: &targets,
                    leads: &leads,
                    costs: &costs,
                };
                CampaignMeasure::Sums(reference::campaigns_sums(
                    facts, cf, &campaigns, *period, *reporting,
                ))
            }
        })
    }

    async fn open_items(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        as_of: NaiveDate,
    ) -> Result<Vec<OpenItem>> {
        let documents = self.data().tenant_documents(tenant);
        let facts = Facts {
            partners: &[],
            documents: &documents,
        };
        Ok(reference::open_items(facts, partner, as_of))
    }

    async fn rollups(&self, tenant: TenantId, action: RollupAction) -> Result<RollupCheck> {
        // The reference sums the documents for every report: it keeps no roll-up that could differ.
        let mut check = RollupCheck::without_rollups(action);
        if let RollupAction::Bulk(step) = action {
            check.bulk = Some(self.bulk_step(tenant, step));
        }
        Ok(check)
    }
}

// ------------------------------------------------------------------------------------------------ merges

/// The commerce records of `tenant` that point at `partner`.
pub(super) fn links_of(d: &CommerceData, tenant: TenantId, partner: PartnerId) -> Vec<Link> {
    use crate::sales::AttachedTo;
    let link = |kind, id: &uuid::Uuid, version| Link {
        kind,
        id: *id,
        version,
    };
    let mine = |t: TenantId, p: PartnerId| t == tenant && p == partner;
    let mut out = Vec::new();
    out.extend(
        (d.documents.iter().filter(|x| mine(x.tenant, x.partner)))
            .map(|x| link(LinkKind::Document, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.quotations.iter().filter(|x| mine(x.tenant, x.partner)))
            .map(|x| link(LinkKind::Quotation, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.contracts.iter().filter(|x| mine(x.tenant, x.partner)))
            .map(|x| link(LinkKind::Contract, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.meetings
            .iter()
            .filter(|x| x.tenant == tenant && x.partner == Some(partner)))
        .map(|x| link(LinkKind::Meeting, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.attachments.iter())
            .filter(|x| x.tenant == tenant && x.target == AttachedTo::Partner(partner))
            .map(|x| link(LinkKind::Attachment, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.representatives
            .iter()
            .filter(|x| mine(x.tenant, x.partner)))
        .map(|x| link(LinkKind::Representative, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.payments.iter().filter(|x| mine(x.tenant, x.partner)))
            .map(|x| link(LinkKind::PaymentAttempt, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.targets.iter().filter(|x| mine(x.tenant, x.partner)))
            .map(|x| link(LinkKind::CampaignTarget, x.campaign.as_uuid(), x.version)),
    );
    out
}

/// The records of `tenant` in the commerce data pointing at `lead` (quotations, contracts, meetings,
/// attachments, campaign targets: part of `Key::LeadLinks`).
pub(super) fn lead_links_of(d: &CommerceData, tenant: TenantId, lead: LeadId) -> Vec<Link> {
    use crate::sales::AttachedTo;
    let link = |kind, id: &uuid::Uuid, version| Link {
        kind,
        id: *id,
        version,
    };
    let mine = |t: TenantId, l: Option<LeadId>| t == tenant && l == Some(lead);
    let mut out = Vec::new();
    out.extend(
        (d.quotations.iter().filter(|x| mine(x.tenant, x.lead)))
            .map(|x| link(LinkKind::Quotation, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.contracts.iter().filter(|x| mine(x.tenant, x.lead)))
            .map(|x| link(LinkKind::Contract, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.meetings.iter().filter(|x| mine(x.tenant, x.lead)))
            .map(|x| link(LinkKind::Meeting, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.attachments.iter())
            .filter(|x| x.tenant == tenant && x.target == AttachedTo::Lead(lead))
            .map(|x| link(LinkKind::Attachment, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.targets.iter().filter(|x| mine(x.tenant, x.lead)))
            .map(|x| link(LinkKind::CampaignTarget, x.campaign.as_uuid(), x.version)),
    );
    out
}

/// Moves one commerce record to another lead (`Write::RepointLead`); `false` when `m` is not a commerce kind.
pub(super) fn repoint_lead(d: &mut CommerceData, tenant: TenantId, m: &LeadMove) -> Result<bool> {
    use crate::sales::AttachedTo;
    let (id, v) = (m.link.id, m.link.version);
    let gone = || stale(m.link);
    macro_rules! move_in {
        ($rows:expr, $id:ident, $lead:ident, $from:expr, $to:expr) => {{
            let row = $rows
                .iter_mut()
                .find(|x| {
                    x.tenant == tenant
                        && *x.$id.as_uuid() == id
                        && x.$lead == $from
                        && x.version == v
                })
                .ok_or_else(gone)?;
            row.$lead = $to;
            row.version += 1;
        }};
    }
    let (from, to) = (Some(m.from), Some(m.to));
    match m.link.kind {
        LinkKind::Quotation => move_in!(d.quotations, id, lead, from, to),
        LinkKind::Contract => move_in!(d.contracts, id, lead, from, to),
        LinkKind::Meeting => move_in!(d.meetings, id, lead, from, to),
        LinkKind::Attachment => move_in!(
            d.attachments,
            id,
            target,
            AttachedTo::Lead(m.from),
            AttachedTo::Lead(m.to)
        ),
        LinkKind::CampaignTarget => move_in!(d.targets, campaign, lead, from, to),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The conflict of a move whose record does not point where the move expects, at the version it expects.
pub(super) fn moved_away(m: &Move) -> Error {
    stale(m.link)
}

/// The conflict of a move of `link` that finds it elsewhere or at another version.
pub(super) fn stale(link: Link) -> Error {
    Error::Conflict {
        entity: link.kind.entity(),
        id: link.id.to_string(),
        expected: link.version,
        actual: 0,
    }
}

/// Moves one commerce record (`Write::Repoint`); `false` when `m` is not a commerce kind.
pub(super) fn repoint(d: &mut CommerceData, tenant: TenantId, m: &Move) -> Result<bool> {
    use crate::sales::AttachedTo;
    let (id, v) = (m.link.id, m.link.version);
    let gone = || moved_away(m);
    macro_rules! move_in {
        ($rows:expr, $id:ident, $partner:ident, $from:expr, $to:expr) => {{
            let row = $rows
                .iter_mut()
                .find(|x| {
                    x.tenant == tenant
                        && *x.$id.as_uuid() == id
                        && x.$partner == $from
                        && x.version == v
                })
                .ok_or_else(gone)?;
            row.$partner = $to;
            row.version += 1;
        }};
    }
    match m.link.kind {
        LinkKind::Document => move_in!(d.documents, id, partner, m.from, m.to),
        LinkKind::Quotation => move_in!(d.quotations, id, partner, m.from, m.to),
        LinkKind::Contract => move_in!(d.contracts, id, partner, m.from, m.to),
        LinkKind::Meeting => move_in!(d.meetings, id, partner, Some(m.from), Some(m.to)),
        LinkKind::Attachment => move_in!(
            d.attachments,
            id,
            target,
            AttachedTo::Partner(m.from),
            AttachedTo::Partner(m.to)
        ),
        LinkKind::Representative => move_in!(d.representatives, id, partner, m.from, m.to),
        LinkKind::PaymentAttempt => move_in!(d.payments, id, partner, m.from, m.to),
        LinkKind::CampaignTarget => {
            let campaign = CampaignId::from_uuid(id);
            if d.targets
                .iter()
                .any(|x| x.tenant == tenant && x.campaign == campaign && x.partner == m.to)
            {
                return Err(Error::AlreadyExists {
                    entity: "campaign target",
                    key: m.to.to_string(),
                });
            }
            move_in!(d.targets, campaign, partner, m.from, m.to)
        }
        _ => return Ok(false),
    }
    Ok(true)
}
