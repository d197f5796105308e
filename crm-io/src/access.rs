//! Access requests: everything the engine holds about a person, as one JSON document (GDPR article 15).

use crate::IoError;
use crm_core::commerce::{CommerceKey, CommerceRecord, CommerceStore, PortalKey};
use crm_core::event::CommentTarget;
use crm_core::id::{ContactId, PartnerId, TenantId};
use crm_core::lead::Lead;
use crm_core::page::PageRequest;
use crm_core::partner::{Contact, Partner};
use crm_core::service::CrmService;
use crm_core::store::{LeadQuery, RequestQuery, TimelineOf};
use serde_json::{json, Value};
use std::io::Write;

/// Whose data an access request gathers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    /// A partner (a natural person, or a company whose file is asked for): its record and everything about it.
    Partner(PartnerId),
    /// A contact of a partner: the contact, the partner it belongs to (id and name only), the leads it is the
    /// contact of, its portal access, and the activity that names it.
    Contact(PartnerId, ContactId),
    /// A contact the host knows by its reference.
    ContactRef(String),
}

/// What an access request found, by section: how many records each holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSummary {
    /// Section name and record count, in the document's order.
    pub sections: Vec<(&'static str, usize)>,
}

fn to_json<T: serde::Serialize>(items: &[T]) -> Result<Vec<Value>, IoError> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).map_err(|e| IoError::Io(e.into())))
        .collect()
}

/// Every page of a paged read: `$read` names the page request `$page`.
macro_rules! all_pages {
    ($page:ident => $read:expr) => {{
        let mut items = Vec::new();
        let mut $page = PageRequest::first(PageRequest::MAX);
        loop {
            let got = $read.await?;
            items.extend(got.items);
            match got.next {
                Some(next) => $page.after = Some(next),
                None => break,
            }
        }
        items
    }};
}

/// Writes everything the engine holds about `person` in `tenant` to `out` as one JSON document (pretty printed):
/// the record, its leads, requests and the comments on all of them, the activity log about it, and, when the
/// commerce store is given, its documents, quotations, contracts, portal representatives (without their token
/// digests) and payments. Returns what each section held. Nothing of another tenant or another partner is read.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}, service::CrmService};
/// # futures::executor::block_on(async {
/// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build().unwrap();
/// # let ctx = Context::user(TenantId::new(), UserId::new());
/// use crm_core::partner::NewPartner;
/// use crm_io::{access_request, Person};
/// let ana = NewPartner::person("Ana Pop").with_contact("Ana Pop", Some("ana@pop.example"), None);
/// let ana = crm.create_partner(&ctx, ana).await.unwrap().record;
/// let mut out = Vec::new();
/// access_request(&crm, None, ctx.tenant, &Person::Partner(ana.id()), &mut out).await.unwrap();
/// let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(doc["subject"]["partner"]["name"], "Ana Pop");
/// assert_eq!(doc["activity"][0]["kind"]["type"], "partner_created");
/// # });
/// ```
///
/// # Errors
///
/// [`IoError::Engine`] with [`crm_core::Error::NotFound`] when the tenant has no such partner or contact, or when
/// the store cannot be read; [`IoError::Io`] when `out` cannot be written.
pub async fn access_request(
    crm: &CrmService,
    commerce: Option<&dyn CommerceStore>,
    tenant: TenantId,
    person: &Person,
    out: &mut dyn Write,
) -> Result<AccessSummary, IoError> {
    let (partner, contact): (Partner, Option<Contact>) = match person {
        Person::Partner(id) => (crm.partner(tenant, *id).await?, None),
        Person::Contact(p, c) => {
            let partner = crm.partner(tenant, *p).await?;
            let contact = partner.contacts().iter().find(|x| x.id == *c).cloned();
            let contact = contact.ok_or_else(|| crm_core::Error::not_found("contact", c))?;
            (partner, Some(contact))
        }
        Person::ContactRef(r) => {
            let (p, c) = crm.contact_by_ref(tenant, r).await?;
            (p, Some(c))
        }
    };
    let id = partner.id();
    let mut leads: Vec<Lead> = all_pages!(page => crm.query_leads(
        tenant,
        &LeadQuery {
            partner: Some(id),
            page: page.clone(),
            ..LeadQuery::default()
        }
    ));
    // Leads merged into others are still held: a list leaves them out unless asked for by status.
    let merged: Vec<Lead> = all_pages!(page => crm.query_leads(
        tenant,
        &LeadQuery {
            partner: Some(id),
            status: Some(crm_core::lead::StatusKind::Merged),
            page: page.clone(),
            ..LeadQuery::default()
        }
    ));
    leads.extend(merged);
    let leads: Vec<Lead> = match &contact {
        Some(c) => leads
            .into_iter()
            .filter(|l| l.contact() == Some(c.id))
            .collect(),
        None => leads,
    };
    let mut sections: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let subject = match &contact {
        Some(c) => json!({
            "contact": c,
            "partner": { "id": id, "name": partner.name(), "host_ref": partner.host_ref() },
        }),
        None => json!({ "partner": partner }),
    };
    // The words that name a contact in the activity log: its id, name, e-mail and phone.
    let names: Vec<String> = match &contact {
        Some(c) => [
            Some(c.id.to_string()),
            Some(c.name.clone()),
            c.email.clone(),
            c.phone.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        None => Vec::new(),
    };
    let about =
        |v: &Value| names.is_empty() || names.iter().any(|n| v.to_string().contains(n.as_str()));
    sections.push(("leads", to_json(&leads)?));
    if contact.is_none() {
        let requests = all_pages!(page => crm.query_requests(
            tenant,
            &RequestQuery {
                partner: Some(id),
                page: page.clone(),
                ..RequestQuery::default()
            }
        ));
        let mut comments =
            all_pages!(page => crm.comments(tenant, CommentTarget::Partner(id), &page));
        for l in &leads {
            comments.extend(all_pages!(page => crm.comments(
                tenant,
                CommentTarget::Lead(l.id()),
                &page
            )));
        }
        for r in &requests {
            comments.extend(all_pages!(page => crm.comments(
                tenant,
                CommentTarget::Request(r.id()),
                &page
            )));
        }
        sections.push(("requests", to_json(&requests)?));
        sections.push(("comments", to_json(&comments)?));
    }
    let events = all_pages!(page => crm.timeline(tenant, TimelineOf::Partner(id), &page));
    let activity: Vec<Value> = to_json(&events)?.into_iter().filter(|v| about(v)).collect();
    sections.push(("activity", activity));
    if let Some(store) = commerce {
        let of = |key: PortalKey| CommerceKey::OfPartner { partner: id, key };
        let read = |key: PortalKey| async move {
            let rows = store.fetch_commerce(tenant, &of(key)).await?;
            Ok::<_, IoError>(rows)
        };
        let mut documents = Vec::new();
        let mut after = None;
        loop {
            let rows = read(PortalKey::Documents {
                after,
                limit: PageRequest::MAX,
            })
            .await?;
            let page: Vec<_> = rows
                .into_iter()
                .filter_map(|r| match r {
                    CommerceRecord::Document(d) => Some(d),
                    _ => None,
                })
                .collect();
            let Some(last) = page.last() else { break };
            after = Some((last.issue_date(), last.id()));
            documents.extend(page);
        }
        let records = |rows: Vec<CommerceRecord>| -> Result<Vec<Value>, IoError> {
            rows.into_iter()
                .map(|r| {
                    let v = match r {
                        CommerceRecord::Quotation(q) => serde_json::to_value(q),
                        CommerceRecord::Contract(c) => serde_json::to_value(c),
                        CommerceRecord::Representative(r) => serde_json::to_value(r),
                        CommerceRecord::PaymentAttempt(p) => serde_json::to_value(p),
                        _ => Ok(Value::Null),
                    };
                    let mut v = v.map_err(|e| IoError::Io(e.into()))?;
                    if let Some(o) = v.as_object_mut() {
                        o.remove("token_digest");
                    }
                    Ok(v)
                })
                .filter(|v| !matches!(v, Ok(Value::Null)))
                .collect()
        };
        let docs = if contact.is_none() {
            to_json(&documents)?
        } else {
            Vec::new()
        };
        let (quotations, contracts) = if contact.is_none() {
            (
                records(read(PortalKey::Quotations).await?)?,
                records(read(PortalKey::Contracts).await?)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let representatives: Vec<Value> = records(read(PortalKey::Representatives).await?)?
            .into_iter()
            .filter(|v| about(v))
            .collect();
        let payments = if contact.is_none() {
            records(read(PortalKey::Payments).await?)?
        } else {
            Vec::new()
        };
        sections.push(("documents", docs));
        sections.push(("quotations", quotations));
        sections.push(("contracts", contracts));
        sections.push(("representatives", representatives));
        sections.push(("payments", payments));
    }
    let mut doc = serde_json::Map::new();
    doc.insert("tenant".into(), json!(tenant));
    doc.insert("generated_at".into(), json!(crm.clock().now()));
    doc.insert("subject".into(), subject);
    let mut summary = AccessSummary::default();
    for (name, items) in sections {
        summary.sections.push((name, items.len()));
        doc.insert(name.into(), Value::Array(items));
    }
    serde_json::to_writer_pretty(&mut *out, &Value::Object(doc))
        .map_err(|e| IoError::Io(e.into()))?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(summary)
}
