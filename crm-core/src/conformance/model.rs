//! The reference model: a naive in-memory [`Store`] that every adapter is compared with.
//!
//! Everything here is the simplest code that could be right: vectors scanned in full, sorted with the standard
//! library, no indexes. The property tests run the same operations through an adapter and through this model
//! (see [`super::Differential`]) and require identical answers.
//!
//! [`MemStore`] is a whole [`crate::store::Backend`]: its commerce records live beside the rest (see the
//! `commerce` submodule, whose reports are [`crate::commerce::reference`]) and its outbox is a
//! [`MemoryOutbox`], so the whole conformance registry and the scenarios run on it as on any adapter.

mod blob;
mod commerce;

pub use blob::{read_all, stream_of, FailingBlobStore, MemBlobStore};

use crate::dedupe::DedupeKey;
use crate::error::{Error, Result};
use crate::event::{CommentTarget, DomainEvent, StageHistoryEntry};
use crate::id::{LeadId, OutboxId, PartnerId, PipelineId, RequestId, TenantId, UserId};
use crate::lead::{Lead, StatusKind};
use crate::money::{Currency, MONEY_SCALE};
use crate::outbox::{
    InboxItem, InboxWrite, MemoryOutbox, OutboxMessage, OutboxRef, OutboxStatus, OutboxStore,
    Settlement,
};
use crate::partner::Partner;
use crate::pipeline::{LostReason, Pipeline};
use crate::request::{Comment, Request};
use crate::store::StoreExt;
use crate::store::{
    partner_search_text, request_sort_key, text_matches, Board, BoardColumn, ChangeSet,
    CurrencyTotal, Cursor, Funnel, Key, KeyMatch, LeadQuery, Page, PageRequest, Record,
    RequestQuery, Store, TimelineOf, Write,
};
use crate::time::Timestamp;
use async_trait::async_trait;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
struct Data {
    partners: Vec<(Partner, Vec<DedupeKey>)>,
    pipelines: Vec<Pipeline>,
    lost_reasons: Vec<LostReason>,
    leads: Vec<Lead>,
    requests: Vec<Request>,
    comments: Vec<Comment>,
    events: Vec<(u64, DomainEvent)>,
    history: Vec<StageHistoryEntry>,
    seq: u64,
    commerce: commerce::CommerceData,
    settings: Vec<crate::setting::Setting>,
    merges: Vec<crate::merge::PartnerMerge>,
    lead_merges: Vec<crate::lead_merge::LeadMerge>,
    keys: Vec<crate::erasure::SubjectKey>,
    /// The tenants with a bulk load open.
    bulk: std::collections::BTreeSet<TenantId>,
}

/// The naive in-memory reference store.
#[derive(Debug, Default)]
pub struct MemStore {
    data: Mutex<Data>,
    outbox: MemoryOutbox,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A bulk-load step: the model keeps no indexes or roll-ups, it only tracks the open loads.
    pub(crate) fn bulk_step(
        &self,
        tenant: TenantId,
        step: crate::store::BulkStep,
    ) -> crate::store::BulkLoad {
        let mut d = self.data();
        match step {
            crate::store::BulkStep::Begin => {
                d.bulk.insert(tenant);
            }
            crate::store::BulkStep::Finish => {
                d.bulk.remove(&tenant);
            }
            crate::store::BulkStep::Status => {}
        }
        crate::store::BulkLoad {
            open: d.bulk.contains(&tenant),
            open_loads: u32::try_from(d.bulk.len()).unwrap_or(u32::MAX),
            deferred_indexes: 0,
            rebuilt: false,
        }
    }
}

/// A partner's host reference, and each of its contacts', is unique in its tenant (as the adapters' unique indexes
/// have it).
fn host_ref_free(partners: &[(Partner, Vec<DedupeKey>)], partner: &Partner) -> Result<()> {
    let others = || {
        partners
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.tenant == partner.tenant && p.id != partner.id)
    };
    let taken = |entity: &'static str, r: &str| Error::AlreadyExists {
        entity,
        key: r.to_string(),
    };
    if let Some(r) = partner.host_ref.as_deref() {
        if others().any(|p| p.host_ref.as_deref() == Some(r)) {
            return Err(taken("partner", r));
        }
    }
    for r in partner
        .contacts
        .iter()
        .filter_map(|c| c.host_ref.as_deref())
    {
        if others().any(|p| p.contacts.iter().any(|c| c.host_ref.as_deref() == Some(r))) {
            return Err(taken("contact", r));
        }
    }
    Ok(())
}

/// A lead's host reference is unique in its tenant.
fn lead_ref_free(leads: &[Lead], lead: &Lead) -> Result<()> {
    let Some(r) = lead.host_ref.as_deref() else {
        return Ok(());
    };
    if leads
        .iter()
        .any(|l| l.tenant == lead.tenant && l.id != lead.id && l.host_ref.as_deref() == Some(r))
    {
        return Err(Error::AlreadyExists {
            entity: "lead",
            key: r.to_string(),
        });
    }
    Ok(())
}

fn conflict(entity: &'static str, id: impl std::fmt::Display, expected: u64, actual: u64) -> Error {
    Error::Conflict {
        entity,
        id: id.to_string(),
        expected,
        actual,
    }
}

fn next_version(entity: &'static str, next: u64, expected: u64) -> Result<()> {
    if next != expected + 1 {
        return Err(Error::invalid(
            "version",
            format!("an updated {entity} must carry version {}", expected + 1),
        ));
    }
    Ok(())
}

fn apply(d: &mut Data, w: &Write) -> Result<()> {
    let missing_ref = || {
        Error::invalid(
            "writes",
            "a write references a record that does not exist in this tenant",
        )
    };
    match w {
        Write::InsertPartner { partner, keys } => {
            if d.partners
                .iter()
                .any(|(p, _)| p.tenant == partner.tenant && p.id == partner.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "partner",
                    key: partner.id.to_string(),
                });
            }
            host_ref_free(&d.partners, partner)?;
            d.partners.push((partner.clone(), keys.clone()));
        }
        Write::UpdatePartner {
            partner,
            expected_version,
            keys,
        } => {
            next_version("partner", partner.version, *expected_version)?;
            host_ref_free(&d.partners, partner)?;
            let slot = d
                .partners
                .iter_mut()
                .find(|(p, _)| p.tenant == partner.tenant && p.id == partner.id)
                .ok_or_else(|| Error::not_found("partner", partner.id))?;
            if slot.0.version != *expected_version {
                return Err(conflict(
                    "partner",
                    partner.id,
                    *expected_version,
                    slot.0.version,
                ));
            }
            *slot = (partner.clone(), keys.clone());
        }
        Write::InsertPipeline(p) => {
            if d.pipelines
                .iter()
                .any(|x| x.tenant == p.tenant && x.id == p.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "pipeline",
                    key: p.id.to_string(),
                });
            }
            d.pipelines.push(p.clone());
        }
        Write::InsertLostReason(r) => {
            if d.lost_reasons
                .iter()
                .any(|x| x.tenant == r.tenant && x.id == r.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "lost reason",
                    key: r.id.to_string(),
                });
            }
            d.lost_reasons.push(r.clone());
        }
        Write::InsertLead(l) => {
            if d.leads.iter().any(|x| x.tenant == l.tenant && x.id == l.id) {
                return Err(Error::AlreadyExists {
                    entity: "lead",
                    key: l.id.to_string(),
                });
            }
            if !d
                .partners
                .iter()
                .any(|(p, _)| p.tenant == l.tenant && p.id == l.partner)
                || !d
                    .pipelines
                    .iter()
                    .any(|p| p.tenant == l.tenant && p.id == l.pipeline)
            {
                return Err(missing_ref());
            }
            lead_ref_free(&d.leads, l)?;
            d.leads.push(l.clone());
        }
        Write::UpdateLead {
            lead,
            expected_version,
        } => {
            next_version("lead", lead.version, *expected_version)?;
            lead_ref_free(&d.leads, lead)?;
            let slot = d
                .leads
                .iter_mut()
                .find(|x| x.tenant == lead.tenant && x.id == lead.id)
                .ok_or_else(|| Error::not_found("lead", lead.id))?;
            if slot.version != *expected_version {
                return Err(conflict("lead", lead.id, *expected_version, slot.version));
            }
            *slot = lead.clone();
        }
        Write::InsertRequest(r) => {
            if d.requests
                .iter()
                .any(|x| x.tenant == r.tenant && x.id == r.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "request",
                    key: r.id.to_string(),
                });
            }
            if r.lead
                .is_some_and(|l| !d.leads.iter().any(|x| x.tenant == r.tenant && x.id == l))
                || r.partner.is_some_and(|p| {
                    !d.partners
                        .iter()
                        .any(|(x, _)| x.tenant == r.tenant && x.id == p)
                })
            {
                return Err(missing_ref());
            }
            d.requests.push(r.clone());
        }
        Write::UpdateRequest {
            request,
            expected_version,
        } => {
            next_version("request", request.version, *expected_version)?;
            let slot = d
                .requests
                .iter_mut()
                .find(|x| x.tenant == request.tenant && x.id == request.id)
                .ok_or_else(|| Error::not_found("request", request.id))?;
            if slot.version != *expected_version {
                return Err(conflict(
                    "request",
                    request.id,
                    *expected_version,
                    slot.version,
                ));
            }
            *slot = request.clone();
        }
        Write::InsertComment(c) => {
            if d.comments
                .iter()
                .any(|x| x.tenant == c.tenant && x.id == c.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "comment",
                    key: c.id.to_string(),
                });
            }
            d.comments.push(c.clone());
        }
        Write::AppendEvent(e) => {
            if d.events
                .iter()
                .any(|(_, x)| x.tenant == e.tenant && x.id == e.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "event",
                    key: e.id.to_string(),
                });
            }
            d.seq += 1;
            let seq = d.seq;
            d.events.push((seq, e.clone()));
        }
        Write::AppendStageHistory(h) => {
            if !d
                .leads
                .iter()
                .any(|x| x.tenant == h.tenant && x.id == h.lead)
            {
                return Err(missing_ref());
            }
            d.history.push(h.clone());
        }
        Write::Commerce(c) => commerce::apply_commerce(&mut d.commerce, c)?,
        Write::PutSetting(setting) => {
            let same = |x: &crate::setting::Setting| {
                x.tenant() == setting.tenant() && x.key() == setting.key()
            };
            d.settings.retain(|x| !same(x));
            d.settings.push(setting.clone());
        }
        // Enqueued by the commit once every other write succeeded.
        Write::EnqueueOutbox(_) => {}
        Write::Repoint { tenant, moved } => repoint(d, *tenant, moved)?,
        Write::InsertSubjectKey(k) => {
            if (d.keys.iter()).any(|x| x.tenant == k.tenant && x.subject == k.subject) {
                return Err(Error::AlreadyExists {
                    entity: "subject key",
                    key: k.subject.to_string(),
                });
            }
            d.keys.push(k.clone());
        }
        // Scrubbed by the commit (the outbox is outside `Data`) once every write succeeded.
        Write::Erase(e) => erase(d, e)?,
        Write::InsertMerge(m) => {
            if d.merges
                .iter()
                .any(|x| x.tenant == m.tenant && x.id == m.id)
            {
                return Err(Error::AlreadyExists {
                    entity: "merge",
                    key: m.id.to_string(),
                });
            }
            d.merges.push(m.clone());
        }
        Write::UpdateMerge {
            merge,
            expected_version,
        } => {
            next_version("merge", merge.version, *expected_version)?;
            let slot = (d.merges.iter_mut())
                .find(|x| x.tenant == merge.tenant && x.id == merge.id)
                .ok_or_else(|| Error::not_found("merge", merge.id))?;
            if slot.version != *expected_version {
                return Err(conflict("merge", merge.id, *expected_version, slot.version));
            }
            *slot = merge.clone();
        }
        Write::RepointLead { tenant, moved } => repoint_lead(d, *tenant, moved)?,
        Write::InsertLeadMerge(m) => {
            if (d.lead_merges.iter()).any(|x| x.tenant == m.tenant && x.id == m.id) {
                return Err(Error::AlreadyExists {
                    entity: "lead merge",
                    key: m.id.to_string(),
                });
            }
            d.lead_merges.push(m.clone());
        }
        Write::UpdateLeadMerge {
            merge,
            expected_version,
        } => {
            next_version("lead merge", merge.version, *expected_version)?;
            let slot = (d.lead_merges.iter_mut())
                .find(|x| x.tenant == merge.tenant && x.id == merge.id)
                .ok_or_else(|| Error::not_found("lead merge", merge.id))?;
            if slot.version != *expected_version {
                let (e, a) = (*expected_version, slot.version);
                return Err(conflict("lead merge", merge.id, e, a));
            }
            *slot = merge.clone();
        }
    }
    Ok(())
}

/// The records of `tenant` pointing at `lead` (`Key::LeadLinks`).
fn lead_links(d: &Data, tenant: TenantId, lead: LeadId) -> Vec<crate::merge::Link> {
    use crate::merge::{Link, LinkKind};
    let mut out: Vec<Link> = (d.requests.iter())
        .filter(|x| x.tenant == tenant && x.lead == Some(lead))
        .map(|x| Link {
            kind: LinkKind::Request,
            id: *x.id.as_uuid(),
            version: x.version,
        })
        .collect();
    out.extend(
        (d.comments.iter())
            .filter(|x| x.tenant == tenant && x.target == CommentTarget::Lead(lead))
            .map(|x| Link {
                kind: LinkKind::Comment,
                id: *x.id.as_uuid(),
                version: 0,
            }),
    );
    out.extend(commerce::lead_links_of(&d.commerce, tenant, lead));
    out
}

/// `Write::RepointLead`: moves one record from lead `moved.from` to `moved.to` when it points there at the
/// expected version.
fn repoint_lead(d: &mut Data, tenant: TenantId, m: &crate::lead_merge::LeadMove) -> Result<()> {
    use crate::merge::LinkKind;
    if !(d.leads.iter()).any(|l| l.tenant == tenant && l.id == m.to) {
        return Err(Error::invalid(
            "writes",
            "a write references a record that does not exist in this tenant",
        ));
    }
    if commerce::repoint_lead(&mut d.commerce, tenant, m)? {
        return Ok(());
    }
    let (id, v) = (m.link.id, m.link.version);
    let gone = || commerce::stale(m.link);
    match m.link.kind {
        LinkKind::Request => {
            let row = (d.requests.iter_mut())
                .find(|x| {
                    x.tenant == tenant
                        && *x.id.as_uuid() == id
                        && x.lead == Some(m.from)
                        && x.version == v
                })
                .ok_or_else(gone)?;
            row.lead = Some(m.to);
            row.version += 1;
        }
        _ => {
            let row = (d.comments.iter_mut())
                .find(|x| {
                    x.tenant == tenant
                        && *x.id.as_uuid() == id
                        && x.target == CommentTarget::Lead(m.from)
                })
                .ok_or_else(gone)?;
            row.target = CommentTarget::Lead(m.to);
        }
    }
    Ok(())
}

/// The records of `tenant` pointing at `partner` (`Key::PartnerLinks`).
fn links(d: &Data, tenant: TenantId, partner: PartnerId) -> Vec<crate::merge::Link> {
    use crate::merge::{Link, LinkKind};
    let link = |kind, id: &uuid::Uuid, version| Link {
        kind,
        id: *id,
        version,
    };
    let mut out: Vec<Link> = (d.leads.iter())
        .filter(|x| x.tenant == tenant && x.partner == partner)
        .map(|x| link(LinkKind::Lead, x.id.as_uuid(), x.version))
        .collect();
    out.extend(
        (d.requests.iter())
            .filter(|x| x.tenant == tenant && x.partner == Some(partner))
            .map(|x| link(LinkKind::Request, x.id.as_uuid(), x.version)),
    );
    out.extend(
        (d.comments.iter())
            .filter(|x| x.tenant == tenant && x.target == CommentTarget::Partner(partner))
            .map(|x| link(LinkKind::Comment, x.id.as_uuid(), 0)),
    );
    out.extend(commerce::links_of(&d.commerce, tenant, partner));
    out
}

/// Scrubs each of `rows` that `about` names.
pub(super) fn scrub_rows<T: serde::Serialize + serde::de::DeserializeOwned>(
    rows: &mut [T],
    about: &dyn Fn(&serde_json::Value) -> bool,
    scrub: &[(String, String)],
) -> Result<()> {
    for row in rows {
        let v = serde_json::to_value(&*row).map_err(|e| Error::invalid("record", e.to_string()))?;
        if about(&v) {
            *row = crate::erasure::scrubbed(&*row, scrub)?;
        }
    }
    Ok(())
}

/// `Write::Erase`: deletes the keys and scrubs the partner's records (those whose JSON names the partner, one of
/// its leads or requests as `partner`, `lead`, `request`, `target.id`, `survivor` or `merged_into`).
fn erase(d: &mut Data, e: &crate::erasure::Erasure) -> Result<()> {
    let mut tombs: Vec<uuid::Uuid> = Vec::new();
    loop {
        let more: Vec<uuid::Uuid> = (d.partners.iter())
            .filter(|(x, _)| x.tenant == e.tenant && !tombs.contains(x.id.as_uuid()))
            .filter(|(x, _)| {
                x.merged_into
                    .is_some_and(|m| m == e.partner || tombs.contains(m.as_uuid()))
            })
            .map(|(x, _)| *x.id.as_uuid())
            .collect();
        if more.is_empty() {
            break;
        }
        tombs.extend(more);
    }
    d.keys.retain(|k| {
        !(k.tenant == e.tenant
            && (e.keys.contains(&k.subject) || (e.tombstones && tombs.contains(&k.subject))))
    });
    let tombs: Vec<String> = tombs.iter().map(|x| x.to_string()).collect();
    let p = e.partner.to_string();
    let leads: Vec<String> = (d.leads.iter())
        .filter(|l| l.tenant == e.tenant && l.partner == e.partner)
        .map(|l| l.id.to_string())
        .collect();
    let requests: Vec<String> = (d.requests.iter())
        .filter(|r| {
            r.tenant == e.tenant
                && (r.partner == Some(e.partner)
                    || r.lead.is_some_and(|l| leads.contains(&l.to_string())))
        })
        .map(|r| r.id.to_string())
        .collect();
    let about = |v: &serde_json::Value| {
        let s = |x: &serde_json::Value| x.as_str().map(str::to_string);
        let is = |x: Option<String>, list: &[String]| x.is_some_and(|x| list.contains(&x));
        let one = std::slice::from_ref(&p);
        v.get("tenant").and_then(s) == Some(e.tenant.to_string())
            && (is(v.get("id").and_then(s), one)
                || (v.get("merged_into").is_some() && is(v.get("id").and_then(s), &tombs))
                || is(v.get("partner").and_then(s), one)
                || is(v.get("survivor").and_then(s), one)
                || is(v.get("survivor").and_then(s), &leads)
                || is(v.get("lead").and_then(s), &leads)
                || is(v.get("request").and_then(s), &requests)
                || v.pointer("/target/id")
                    .and_then(s)
                    .is_some_and(|t| t == p || leads.contains(&t) || requests.contains(&t))
                || v.pointer("/subject/partner").and_then(s) == Some(p.clone())
                || is(v.pointer("/subject/lead").and_then(s), &leads)
                || is(v.pointer("/subject/request").and_then(s), &requests))
    };
    for (partner, _) in &mut d.partners {
        let v =
            serde_json::to_value(&*partner).map_err(|e| Error::invalid("record", e.to_string()))?;
        if about(&v) {
            *partner = crate::erasure::scrubbed(&*partner, &e.scrub)?;
        }
    }
    scrub_rows(&mut d.leads, &about, &e.scrub)?;
    scrub_rows(&mut d.requests, &about, &e.scrub)?;
    scrub_rows(&mut d.comments, &about, &e.scrub)?;
    for (_, event) in &mut d.events {
        let v =
            serde_json::to_value(&*event).map_err(|e| Error::invalid("record", e.to_string()))?;
        if about(&v) {
            *event = crate::erasure::scrubbed(&*event, &e.scrub)?;
        }
    }
    scrub_rows(&mut d.merges, &about, &e.scrub)?;
    scrub_rows(&mut d.lead_merges, &about, &e.scrub)?;
    commerce::scrub(&mut d.commerce, &|v: &serde_json::Value| about(v), &e.scrub)
}

/// `Write::Repoint`: moves one record from `moved.from` to `moved.to` when it points there at the expected version.
fn repoint(d: &mut Data, tenant: TenantId, m: &crate::merge::Move) -> Result<()> {
    use crate::merge::LinkKind;
    if !d
        .partners
        .iter()
        .any(|(p, _)| p.tenant == tenant && p.id == m.to)
    {
        return Err(Error::invalid(
            "writes",
            "a write references a record that does not exist in this tenant",
        ));
    }
    if commerce::repoint(&mut d.commerce, tenant, m)? {
        return Ok(());
    }
    let (id, v) = (m.link.id, m.link.version);
    let gone = || commerce::moved_away(m);
    match m.link.kind {
        LinkKind::Lead => {
            let row = (d.leads.iter_mut())
                .find(|x| {
                    x.tenant == tenant
                        && *x.id.as_uuid() == id
                        && x.partner == m.from
                        && x.version == v
                })
                .ok_or_else(gone)?;
            row.partner = m.to;
            row.version += 1;
        }
        LinkKind::Request => {
            let row = (d.requests.iter_mut())
                .find(|x| {
                    x.tenant == tenant
                        && *x.id.as_uuid() == id
                        && x.partner == Some(m.from)
                        && x.version == v
                })
                .ok_or_else(gone)?;
            row.partner = Some(m.to);
            row.version += 1;
        }
        _ => {
            let row = (d.comments.iter_mut())
                .find(|x| {
                    x.tenant == tenant
                        && *x.id.as_uuid() == id
                        && x.target == CommentTarget::Partner(m.from)
                })
                .ok_or_else(gone)?;
            row.target = CommentTarget::Partner(m.to);
        }
    }
    Ok(())
}

fn page<T: Clone>(
    mut items: Vec<T>,
    page: &PageRequest,
    key: impl Fn(&T) -> (i64, uuid::Uuid),
    descending: bool,
) -> Result<Page<T>> {
    page.validate()?;
    items.sort_by(|a, b| {
        let o = key(a).cmp(&key(b));
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    if let Some(c) = &page.after {
        let after = c.decode()?;
        items.retain(|x| {
            if descending {
                key(x) < after
            } else {
                key(x) > after
            }
        });
    }
    let more = items.len() > page.limit as usize;
    items.truncate(page.limit as usize);
    let next = if more {
        items.last().map(|x| {
            let (k, id) = key(x);
            Cursor::encode(k, id)
        })
    } else {
        None
    };
    Ok(Page { items, next })
}

#[async_trait]
impl Store for MemStore {
    async fn fetch(&self, tenant: TenantId, key: &Key) -> Result<Vec<Record>> {
        key.check()?;
        Ok(match key {
            Key::Partner(id) => {
                crate::store::absent_as_empty(self.read_partner(tenant, *id).await)?
                    .into_iter()
                    .map(Record::Partner)
                    .collect()
            }
            Key::PartnerByRef(r) => self
                .data()
                .partners
                .iter()
                .filter(|(p, _)| p.tenant == tenant && p.host_ref.as_deref() == Some(r.as_str()))
                .map(|(p, _)| Record::Partner(p.clone()))
                .collect(),
            Key::PartnerByContactRef(r) => self
                .data()
                .partners
                .iter()
                .filter(|(p, _)| {
                    p.tenant == tenant
                        && p.contacts
                            .iter()
                            .any(|c| c.host_ref.as_deref() == Some(r.as_str()))
                })
                .map(|(p, _)| Record::Partner(p.clone()))
                .collect(),
            Key::PartnersByRefs { partners, contacts } => {
                let has = |list: &[String], r: Option<&str>| {
                    r.is_some_and(|r| list.iter().any(|x| x == r))
                };
                (self.data().partners.iter())
                    .filter(|(p, _)| p.tenant == tenant)
                    .filter(|(p, _)| {
                        has(partners, p.host_ref.as_deref())
                            || p.contacts
                                .iter()
                                .any(|c| has(contacts, c.host_ref.as_deref()))
                    })
                    .map(|(p, _)| Record::Partner(p.clone()))
                    .collect()
            }
            Key::PartnersAfter { after, limit } => {
                let mut list: Vec<Partner> = (self.data().partners.iter())
                    .filter(|(p, _)| p.tenant == tenant && after.is_none_or(|a| p.id > a))
                    .filter(|(p, _)| p.merged_into.is_none())
                    .map(|(p, _)| p.clone())
                    .collect();
                list.sort_by_key(|p| p.id);
                list.truncate((*limit).min(crate::page::PageRequest::MAX) as usize);
                list.into_iter().map(Record::Partner).collect()
            }
            Key::PartnersByKeys(keys) => self
                .read_partners_by_keys(tenant, keys)
                .await?
                .into_iter()
                .map(Record::KeyMatch)
                .collect(),
            Key::Pipeline(id) => {
                crate::store::absent_as_empty(self.read_pipeline(tenant, *id).await)?
                    .into_iter()
                    .map(Record::Pipeline)
                    .collect()
            }
            Key::Pipelines => self
                .read_pipelines(tenant)
                .await?
                .into_iter()
                .map(Record::Pipeline)
                .collect(),
            Key::LostReasons => self
                .read_lost_reasons(tenant)
                .await?
                .into_iter()
                .map(Record::LostReason)
                .collect(),
            Key::Lead(id) => crate::store::absent_as_empty(self.read_lead(tenant, *id).await)?
                .into_iter()
                .map(Record::Lead)
                .collect(),
            Key::LeadWithPipeline(id) => {
                let mut out = Vec::new();
                for l in crate::store::absent_as_empty(self.read_lead(tenant, *id).await)? {
                    let p = self.read_pipeline(tenant, l.pipeline).await;
                    let a = self.read_partner(tenant, l.partner).await;
                    let key = (self.data().keys.iter())
                        .find(|k| k.tenant == tenant && k.subject == *l.partner.as_uuid())
                        .cloned();
                    out.push(Record::Lead(l));
                    out.extend(
                        crate::store::absent_as_empty(p)?
                            .into_iter()
                            .map(Record::Pipeline),
                    );
                    out.extend(
                        crate::store::absent_as_empty(a)?
                            .into_iter()
                            .map(Record::Partner),
                    );
                    out.extend(key.map(Record::SubjectKey));
                }
                out
            }
            Key::LeadByRef(r) => self
                .data()
                .leads
                .iter()
                .filter(|l| l.tenant == tenant && l.host_ref.as_deref() == Some(r.as_str()))
                .map(|l| Record::Lead(l.clone()))
                .collect(),
            Key::Setting(key) => (self.data().settings.iter())
                .filter(|x| x.tenant() == tenant && x.key() == key.as_str())
                .map(|x| Record::Setting(x.clone()))
                .collect(),
            Key::StageHistory(lead) => self
                .read_stage_history(tenant, *lead)
                .await?
                .into_iter()
                .map(Record::StageStep)
                .collect(),
            Key::Request(id) => {
                crate::store::absent_as_empty(self.read_request(tenant, *id).await)?
                    .into_iter()
                    .map(Record::Request)
                    .collect()
            }
            Key::PartnerLinks(p) => links(&self.data(), tenant, *p)
                .into_iter()
                .map(Record::Link)
                .collect(),
            Key::Merge(id) => (self.data().merges.iter())
                .filter(|m| m.tenant == tenant && m.id == *id)
                .map(|m| Record::Merge(m.clone()))
                .collect(),
            Key::LeadLinks(l) => lead_links(&self.data(), tenant, *l)
                .into_iter()
                .map(Record::Link)
                .collect(),
            Key::LeadMerge(id) => (self.data().lead_merges.iter())
                .filter(|m| m.tenant == tenant && m.id == *id)
                .map(|m| Record::LeadMerge(m.clone()))
                .collect(),
            Key::SubjectKeys(ids) => (self.data().keys.iter())
                .filter(|k| k.tenant == tenant && ids.contains(&k.subject))
                .map(|k| Record::SubjectKey(k.clone()))
                .collect(),
        })
    }

    async fn commit(&self, tenant: TenantId, changes: ChangeSet) -> Result<()> {
        changes.check(tenant)?;
        let mut d = self.data();
        let mut copy = d.clone();
        for w in &changes.writes {
            apply(&mut copy, w)?;
        }
        *d = copy;
        for w in changes.writes {
            match w {
                Write::EnqueueOutbox(m) => {
                    self.outbox.enqueue(m);
                }
                Write::Erase(e) => self.outbox.scrub(e.tenant, &e.scrub),
                _ => {}
            }
        }
        Ok(())
    }

    async fn ingest(&self, tenant: TenantId, changes: ChangeSet) -> Result<u64> {
        changes.check_insert_only()?;
        let n = changes.writes.len() as u64;
        self.commit(tenant, changes).await?;
        Ok(n)
    }

    async fn query_leads(&self, tenant: TenantId, q: &LeadQuery) -> Result<Page<Lead>> {
        let d = self.data();
        let text = q.text_needle();
        let tag = q.tag_needle();
        let items: Vec<Lead> = d
            .leads
            .iter()
            .filter(|l| l.tenant == tenant)
            .filter(|l| q.pipeline.is_none_or(|p| l.pipeline == p))
            .filter(|l| q.stage.is_none_or(|s| l.stage == s))
            .filter(|l| match q.status {
                Some(s) => l.status.kind() == s,
                None => l.status.kind() != StatusKind::Merged,
            })
            .filter(|l| q.owner.is_none_or(|o| l.owner == Some(o)))
            .filter(|l| q.partner.is_none_or(|p| l.partner == p))
            .filter(|l| tag.as_ref().is_none_or(|t| l.tags.contains(t)))
            .filter(|l| q.updated_before.is_none_or(|t| l.updated_at < t))
            .filter(|l| {
                q.close_before
                    .is_none_or(|d| l.expected_close.is_some_and(|c| c < d))
            })
            .filter(|l| {
                text.as_ref().is_none_or(|needle| {
                    let search = d
                        .partners
                        .iter()
                        .find(|(p, _)| p.tenant == tenant && p.id == l.partner)
                        .map(|(p, _)| partner_search_text(p))
                        .unwrap_or_default();
                    text_matches(l, &search, needle)
                })
            })
            .cloned()
            .collect();
        let sort = q.sort;
        page(
            items,
            &q.page,
            |l| (sort.key(l), *l.id.as_uuid()),
            sort.descending(),
        )
    }

    async fn board(&self, tenant: TenantId, pipeline: PipelineId) -> Result<Board> {
        let p = self.pipeline(tenant, pipeline).await?;
        let d = self.data();
        let columns = p
            .stages
            .iter()
            .map(|s| {
                let leads: Vec<&Lead> = d
                    .leads
                    .iter()
                    .filter(|l| {
                        l.tenant == tenant
                            && l.pipeline == pipeline
                            && l.stage == s.id
                            && matches!(l.status.kind(), StatusKind::Open | StatusKind::Won)
                    })
                    .collect();
                let mut totals: BTreeMap<Currency, (Decimal, Decimal)> = BTreeMap::new();
                for l in &leads {
                    if let Some(m) = l.expected_revenue {
                        let t = totals.entry(m.currency()).or_default();
                        t.0 += m.amount();
                        t.1 += m.amount() * Decimal::from(l.probability) / Decimal::ONE_HUNDRED;
                    }
                }
                BoardColumn {
                    stage: s.id,
                    name: s.name.clone(),
                    kind: s.kind,
                    fold: s.fold,
                    count: leads.len() as u64,
                    totals: totals
                        .into_iter()
                        .map(|(currency, (e, w))| CurrencyTotal {
                            currency,
                            expected: e.normalize(),
                            weighted: w.round_dp(MONEY_SCALE + 2).normalize(),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Board { pipeline, columns })
    }

    async fn funnel(
        &self,
        tenant: TenantId,
        pipeline: PipelineId,
        period: Option<(Timestamp, Timestamp)>,
    ) -> Result<Funnel> {
        let p = self.pipeline(tenant, pipeline).await?;
        let d = self.data();
        let in_period =
            |l: &Lead| period.is_none_or(|(a, b)| l.created_at >= a && l.created_at < b);
        let leads: BTreeMap<LeadId, &Lead> = d
            .leads
            .iter()
            .filter(|l| {
                l.tenant == tenant
                    && l.pipeline == pipeline
                    && in_period(l)
                    && l.status.kind() != StatusKind::Merged
            })
            .map(|l| (l.id, l))
            .collect();
        let steps = p
            .stages
            .iter()
            .map(|s| {
                let reached: BTreeSet<LeadId> = d
                    .history
                    .iter()
                    .filter(|h| {
                        h.tenant == tenant
                            && h.pipeline == pipeline
                            && h.to == s.id
                            && leads.contains_key(&h.lead)
                    })
                    .map(|h| h.lead)
                    .collect();
                (s.id, s.name.clone(), reached.len() as u64)
            })
            .collect();
        let count = |k: StatusKind| leads.values().filter(|l| l.status.kind() == k).count() as u64;
        Ok(Funnel {
            steps,
            won: count(StatusKind::Won),
            lost: count(StatusKind::Lost),
        })
    }

    async fn query_requests(&self, tenant: TenantId, q: &RequestQuery) -> Result<Page<Request>> {
        let items: Vec<Request> = self
            .data()
            .requests
            .iter()
            .filter(|r| r.tenant == tenant)
            .filter(|r| q.assignee.is_none_or(|a| r.assignee == a))
            .filter(|r| q.lead.is_none_or(|l| r.lead == Some(l)))
            .filter(|r| q.partner.is_none_or(|p| r.partner == Some(p)))
            .filter(|r| !q.active_only || r.status.is_active())
            .filter(|r| {
                q.due_before
                    .is_none_or(|d| request_sort_key(r) < d.timestamp_micros())
            })
            .filter(|r| q.due_after.is_none_or(|d| r.due.is_some_and(|due| due > d)))
            .filter(|r| q.opened_before.is_none_or(|t| r.created_at < t))
            .cloned()
            .collect();
        page(
            items,
            &q.page,
            |r| (request_sort_key(r), *r.id.as_uuid()),
            false,
        )
    }

    async fn comments(
        &self,
        tenant: TenantId,
        target: CommentTarget,
        p: &PageRequest,
    ) -> Result<Page<Comment>> {
        match target {
            CommentTarget::Lead(id) => drop(self.lead(tenant, id).await?),
            CommentTarget::Partner(id) => drop(self.partner(tenant, id).await?),
            CommentTarget::Request(id) => drop(self.request(tenant, id).await?),
        }
        let items: Vec<Comment> = self
            .data()
            .comments
            .iter()
            .filter(|c| c.tenant == tenant && c.target == target)
            .cloned()
            .collect();
        page(
            items,
            p,
            |c| (c.created_at.timestamp_micros(), *c.id.as_uuid()),
            true,
        )
    }

    async fn timeline(
        &self,
        tenant: TenantId,
        of: TimelineOf,
        p: &PageRequest,
    ) -> Result<Page<DomainEvent>> {
        match of {
            TimelineOf::Lead(id) => drop(self.lead(tenant, id).await?),
            TimelineOf::Partner(id) => drop(self.partner(tenant, id).await?),
            TimelineOf::Request(id) => drop(self.request(tenant, id).await?),
        }
        let items: Vec<DomainEvent> = self
            .data()
            .events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e.tenant == tenant)
            .filter(|e| match of {
                TimelineOf::Lead(id) => e.subject.lead == Some(id),
                TimelineOf::Partner(id) => e.subject.partner == Some(id),
                TimelineOf::Request(id) => e.subject.request == Some(id),
            })
            .cloned()
            .collect();
        page(
            items,
            p,
            |e| (e.at.timestamp_micros(), *e.id.as_uuid()),
            true,
        )
    }

    async fn events_since(
        &self,
        tenant: TenantId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, DomainEvent)>> {
        Ok(self
            .data()
            .events
            .iter()
            .filter(|(s, e)| e.tenant == tenant && *s > after)
            .take(limit.min(10_000) as usize)
            .cloned()
            .collect())
    }
}

/// The outbox of the model is a [`MemoryOutbox`]; [`Store::commit`] enqueues into it.
#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl OutboxStore for MemStore {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.outbox.claim_due(now, lease, limit).await
    }
    async fn settle(&self, tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<()> {
        self.outbox.settle(tenant, id, how).await
    }
    async fn find_outbox(&self, tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage> {
        self.outbox.find_outbox(tenant, by).await
    }
    async fn list_outbox(
        &self,
        tenant: TenantId,
        status: OutboxStatus,
        p: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        self.outbox.list_outbox(tenant, status, p).await
    }
    async fn inbox_write(&self, write: &InboxWrite) -> Result<bool> {
        self.outbox.inbox_write(write).await
    }
    async fn inbox(
        &self,
        tenant: TenantId,
        user: UserId,
        unread_only: bool,
        p: &PageRequest,
    ) -> Result<Page<InboxItem>> {
        self.outbox.inbox(tenant, user, unread_only, p).await
    }
    async fn unread_count(&self, tenant: TenantId, user: UserId) -> Result<u64> {
        self.outbox.unread_count(tenant, user).await
    }
}

impl MemStore {
    async fn read_partner(&self, tenant: TenantId, id: PartnerId) -> Result<Partner> {
        self.data()
            .partners
            .iter()
            .find(|(p, _)| p.tenant == tenant && p.id == id)
            .map(|(p, _)| p.clone())
            .ok_or_else(|| Error::not_found("partner", id))
    }

    async fn read_partners_by_keys(
        &self,
        tenant: TenantId,
        keys: &[DedupeKey],
    ) -> Result<Vec<KeyMatch>> {
        let d = self.data();
        let mut out = Vec::new();
        for (p, ks) in d.partners.iter().filter(|(p, _)| p.tenant == tenant) {
            for k in ks.iter().filter(|k| keys.contains(k)) {
                out.push(KeyMatch {
                    partner: p.id,
                    name: p.name.clone(),
                    key: k.clone(),
                });
            }
        }
        out.sort_by(|a, b| {
            a.partner
                .cmp(&b.partner)
                .then(a.key.encoded().cmp(&b.key.encoded()))
        });
        let mut seen = BTreeSet::new();
        out.retain(|m| {
            seen.insert(m.partner);
            seen.len() <= 100
        });
        Ok(out)
    }

    async fn read_pipeline(&self, tenant: TenantId, id: PipelineId) -> Result<Pipeline> {
        self.data()
            .pipelines
            .iter()
            .find(|p| p.tenant == tenant && p.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("pipeline", id))
    }

    async fn read_pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>> {
        let mut v: Vec<_> = self
            .data()
            .pipelines
            .iter()
            .filter(|p| p.tenant == tenant)
            .cloned()
            .collect();
        v.sort_by_key(|p| (p.created_at, p.id));
        Ok(v)
    }

    async fn read_lost_reasons(&self, tenant: TenantId) -> Result<Vec<LostReason>> {
        let mut v: Vec<_> = self
            .data()
            .lost_reasons
            .iter()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect();
        v.sort_by_key(|r| r.id);
        Ok(v)
    }

    async fn read_lead(&self, tenant: TenantId, id: LeadId) -> Result<Lead> {
        self.data()
            .leads
            .iter()
            .find(|l| l.tenant == tenant && l.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("lead", id))
    }

    async fn read_stage_history(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<StageHistoryEntry>> {
        self.lead(tenant, lead).await?;
        Ok(self
            .data()
            .history
            .iter()
            .filter(|h| h.tenant == tenant && h.lead == lead)
            .cloned()
            .collect())
    }

    async fn read_request(&self, tenant: TenantId, id: RequestId) -> Result<Request> {
        self.data()
            .requests
            .iter()
            .find(|r| r.tenant == tenant && r.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("request", id))
    }
}

/// For documentation examples of the commerce service: a commerce store with no records whose commit hook drops the
/// commerce writes, so an example shows what the service decides and returns without a database (the SQLite and
/// PostgreSQL stores keep the records).
#[derive(Debug)]
pub struct NoCommerce;

#[async_trait]
impl crate::commerce::CommerceStore for NoCommerce {
    async fn fetch_commerce(
        &self,
        _: TenantId,
        _: &crate::commerce::CommerceKey,
    ) -> Result<Vec<crate::commerce::CommerceRecord>> {
        Ok(Vec::new())
    }
    async fn campaign_targets(
        &self,
        _: TenantId,
        _: crate::id::CampaignId,
        _: &PageRequest,
    ) -> Result<Page<crate::commerce::CampaignTarget>> {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    }
    async fn segment(
        &self,
        _: TenantId,
        _: &crate::commerce::Criteria,
        _: chrono::NaiveDate,
        _: crate::money::Currency,
    ) -> Result<Vec<crate::commerce::SegmentMember>> {
        Ok(Vec::new())
    }
    async fn profit_sums(
        &self,
        _: TenantId,
        _: &crate::commerce::SumsQuery,
    ) -> Result<Vec<crate::commerce::ProfitSums>> {
        Ok(Vec::new())
    }
    async fn campaign_sums(
        &self,
        _: TenantId,
        _: crate::id::CampaignId,
        _: Option<crate::commerce::Period>,
        _: crate::money::Currency,
    ) -> Result<crate::commerce::CampaignSums> {
        Ok(crate::commerce::CampaignSums::default())
    }
    async fn campaign_measures(
        &self,
        _: TenantId,
        read: &crate::commerce::CampaignRead,
    ) -> Result<crate::commerce::CampaignMeasure> {
        use crate::commerce::{CampaignMeasure as M, CampaignRead as R};
        Ok(match read {
            R::Progress(_) => M::Progress(Vec::new()),
            R::Outcomes { .. } => M::Outcomes(Default::default()),
            R::Sums { .. } => M::Sums(Vec::new()),
            _ => M::Attribution(Default::default()),
        })
    }
    async fn open_items(
        &self,
        _: TenantId,
        _: crate::id::PartnerId,
        _: chrono::NaiveDate,
    ) -> Result<Vec<crate::commerce::OpenItem>> {
        Ok(Vec::new())
    }
    async fn rollups(
        &self,
        _: TenantId,
        action: crate::commerce::RollupAction,
    ) -> Result<crate::commerce::RollupCheck> {
        Ok(crate::commerce::RollupCheck::without_rollups(action))
    }
}

impl crate::service::CommitHook for NoCommerce {
    fn before_commit(
        &self,
        _: &crate::actor::Context,
        changes: &mut ChangeSet,
        _: &crate::service::Loaded,
    ) -> Result<()> {
        changes
            .writes
            .retain(|w| !matches!(w, crate::store::Write::Commerce(_)));
        Ok(())
    }
}

/// For documentation examples: a lead service over a fresh [`MemStore`] with [`NoCommerce`] as its hook, the
/// [`NoCommerce`] store, a commerce service reporting in EUR over both, and a user's context in a tenant that has
/// been set up.
///
/// # Errors
///
/// None in practice: the in-memory store does not fail.
pub async fn example_commerce() -> Result<(
    crate::service::CrmService,
    Arc<dyn crate::commerce::CommerceStore>,
    crate::service::CommerceService,
    crate::actor::Context,
)> {
    let crm = crate::service::CrmService::builder()
        .store(Arc::new(MemStore::new()))
        .hook(Arc::new(NoCommerce))
        .build()?;
    let ctx = crate::actor::Context::user(TenantId::new(), crate::id::UserId::new());
    crm.setup_tenant(&ctx).await?;
    let store: Arc<dyn crate::commerce::CommerceStore> = Arc::new(NoCommerce);
    let commerce = crate::service::CommerceService::new(
        crm.clone(),
        store.clone(),
        crate::money::Currency::parse("EUR")?,
    );
    Ok((crm, store, commerce, ctx))
}

/// The quotation examples' fixture: a commerce service (reporting in RON) over one reference model holding both the
/// lead-side and the commerce records, and a user's context in a tenant with the seed pipeline.
///
/// # Errors
///
/// Whatever setting up the tenant returns.
pub async fn example_sales() -> Result<(crate::service::CommerceService, crate::actor::Context)> {
    let mem = Arc::new(MemStore::new());
    let crm = crate::service::CrmService::builder()
        .store(mem.clone())
        .build()?;
    let ctx = crate::actor::Context::user(TenantId::new(), crate::id::UserId::new());
    crm.setup_tenant(&ctx).await?;
    let commerce =
        crate::service::CommerceService::new(crm, mem, crate::money::Currency::parse("RON")?);
    Ok((commerce, ctx))
}

/// What the commerce service's examples name, in one import: `use crm_core::conformance::model::prelude::*`.
pub mod prelude {
    pub use crate::actor::Context;
    pub use crate::commerce::*;
    pub use crate::conformance::model::MemStore;
    pub use crate::id::*;
    pub use crate::money::Currency;
    pub use crate::service::{CommerceService, CommitHook, CrmService};
    pub use crate::store::{ChangeSet, Page, PageRequest, Write};
    pub use crate::{Error, Result};
    pub use chrono::NaiveDate;
    pub use std::sync::Arc;
}
