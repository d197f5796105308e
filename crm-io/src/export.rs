//! Export: partners, contacts, leads, the activity log and commerce documents as CSV or JSON Lines, read page by
//! page.

use crate::import::CsvOut;
use crate::IoError;
use crm_core::commerce::DocumentFilter;
use crm_core::id::{PartnerId, TenantId};
use crm_core::lead::Lead;
use crm_core::page::PageRequest;
use crm_core::partner::{Contact, Location, LocationKind, Partner, PartnerKind};
use crm_core::service::CrmService;
use crm_core::store::{LeadQuery, StoreExt};
use serde::Serialize;
use std::io::Write;

/// What to export.
#[derive(Debug, Clone)]
pub enum Export {
    /// Partners, in creation order; in CSV with their first contact and first location, under the import's
    /// column names, so an exported file imports again.
    Partners,
    /// Every contact of every partner, with its partner's id and reference.
    Contacts,
    /// The leads a query selects (its filters and sort; its page size is the batch size).
    Leads(LeadQuery),
    /// The activity log in commit order, after feed position `after` (0: from the start).
    Activities {
        /// The feed position to start after.
        after: u64,
    },
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header line.
    Csv,
    /// One JSON object per line (the record as the engine serialises it).
    JsonLines,
}

const PAGE: u32 = 1000;

fn partner_header() -> Vec<&'static str> {
    let names = crate::PARTNER_FIELDS.iter().map(|f| f.name);
    names.chain(["id"]).collect()
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn partner_cells(p: &Partner) -> Vec<String> {
    let c: Option<&Contact> = p.contacts().first();
    let l: Option<&Location> = p.locations().first();
    let roles: Vec<String> = p
        .roles()
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect();
    let kind = match p.kind() {
        PartnerKind::Company => "company",
        PartnerKind::Person => "person",
    };
    let turnover = p.turnover();
    let location_kind = l.map(|l| match l.kind {
        LocationKind::Billing => "billing",
        LocationKind::Delivery => "delivery",
        LocationKind::Site => "site",
    });
    vec![
        p.host_ref().unwrap_or_default().into(),
        p.name().into(),
        kind.into(),
        roles.join(";"),
        p.tax_id().unwrap_or_default().into(),
        p.website().unwrap_or_default().into(),
        p.industry().map(|i| i.name.clone()).unwrap_or_default(),
        p.industry()
            .and_then(|i| i.code.clone())
            .unwrap_or_default(),
        p.group().unwrap_or_default().into(),
        p.tags().iter().cloned().collect::<Vec<_>>().join(";"),
        turnover
            .map(|t| t.amount.amount().to_string())
            .unwrap_or_default(),
        turnover
            .map(|t| t.amount.currency().code().to_string())
            .unwrap_or_default(),
        turnover.map(|t| t.year.to_string()).unwrap_or_default(),
        c.map(|c| c.name.clone()).unwrap_or_default(),
        c.map(|c| opt(&c.role)).unwrap_or_default(),
        c.map(|c| opt(&c.email)).unwrap_or_default(),
        c.map(|c| opt(&c.phone)).unwrap_or_default(),
        c.map(|c| opt(&c.host_ref)).unwrap_or_default(),
        location_kind.unwrap_or_default().into(),
        l.map(|l| opt(&l.street)).unwrap_or_default(),
        l.map(|l| opt(&l.city)).unwrap_or_default(),
        l.map(|l| opt(&l.region)).unwrap_or_default(),
        l.map(|l| opt(&l.postal_code)).unwrap_or_default(),
        l.map(|l| l.country.clone()).unwrap_or_default(),
        p.id().to_string(),
    ]
}

fn contact_cells(p: &Partner, c: &Contact) -> Vec<String> {
    vec![
        p.host_ref().unwrap_or_default().into(),
        c.name.clone(),
        opt(&c.role),
        opt(&c.email),
        opt(&c.phone),
        opt(&c.host_ref),
        p.id().to_string(),
        c.id.to_string(),
    ]
}

fn lead_cells(l: &Lead, stage: String) -> Vec<String> {
    let m = l.expected_revenue();
    vec![
        l.host_ref().unwrap_or_default().into(),
        l.title().into(),
        l.partner().to_string(),
        stage,
        format!("{:?}", l.status().kind()).to_lowercase(),
        m.map(|m| m.amount().to_string()).unwrap_or_default(),
        m.map(|m| m.currency().code().to_string())
            .unwrap_or_default(),
        l.probability().to_string(),
        l.expected_close()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        l.source().source.clone().unwrap_or_default(),
        l.source().medium.clone().unwrap_or_default(),
        l.tags().iter().cloned().collect::<Vec<_>>().join(";"),
        format!("{:?}", l.priority()).to_lowercase(),
        l.owner().map(|o| o.to_string()).unwrap_or_default(),
        l.created_at().to_rfc3339(),
        l.id().to_string(),
    ]
}

/// Where an export writes: CSV rows, or JSON lines.
enum Out<'a> {
    Csv(Box<CsvOut<'a>>),
    JsonLines(&'a mut dyn Write),
}

impl<'a> Out<'a> {
    fn new(out: &'a mut dyn Write, format: Format) -> Self {
        match format {
            Format::Csv => Out::Csv(Box::new(CsvOut::new(out))),
            Format::JsonLines => Out::JsonLines(out),
        }
    }

    /// The CSV header line (JSON Lines has none).
    fn header(&mut self, names: &[&str]) -> Result<(), IoError> {
        match self {
            Out::Csv(w) => w.row(names.iter().map(|n| n.to_string())),
            Out::JsonLines(_) => Ok(()),
        }
    }

    /// One record: a CSV row of `cells`, or a JSON line of `record`.
    fn emit<T: Serialize>(
        &mut self,
        record: &T,
        cells: impl FnOnce() -> Vec<String>,
    ) -> Result<(), IoError> {
        match self {
            Out::Csv(w) => w.row(cells()),
            Out::JsonLines(out) => {
                serde_json::to_writer(&mut **out, record).map_err(|e| IoError::Io(e.into()))?;
                out.write_all(b"\n")?;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), IoError> {
        match self {
            Out::Csv(w) => w.flush(),
            Out::JsonLines(out) => Ok(out.flush()?),
        }
    }
}

/// Exports what `what` names of `tenant`, page by page (at most a page of records in memory), to `out`; calls
/// `progress` with the count written after each page. Returns how many records were written.
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
/// use crm_io::{export, Export, Format};
/// crm.create_partner(&ctx, NewPartner::company("=HYPERLINK(\"http://x\")").with_host_ref("C-1")).await.unwrap();
/// let mut out = Vec::new();
/// let n = export(&crm, ctx.tenant, &Export::Partners, Format::Csv, &mut out, |_| {}).await.unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert_eq!(n, 1);
/// assert!(text.starts_with("ref,name,kind,"));
/// assert!(text.contains("C-1,\"'=HYPERLINK(\"\"http://x\"\")\",company"), "{text}");
/// # });
/// ```
///
/// # Errors
///
/// [`IoError::Engine`] when the store cannot be read (an invalid lead query is [`crm_core::Error::Invalid`]);
/// [`IoError::Io`] when `out` cannot be written. What was written before stays written.
pub async fn export(
    crm: &CrmService,
    tenant: TenantId,
    what: &Export,
    format: Format,
    out: &mut dyn Write,
    mut progress: impl FnMut(u64),
) -> Result<u64, IoError> {
    let mut n = 0u64;
    let store = crm.store();
    let mut out = Out::new(out, format);
    match what {
        Export::Partners | Export::Contacts => {
            let contacts = matches!(what, Export::Contacts);
            let header = if contacts {
                vec![
                    "partner_ref",
                    "name",
                    "role",
                    "email",
                    "phone",
                    "ref",
                    "partner_id",
                    "id",
                ]
            } else {
                partner_header()
            };
            out.header(&header)?;
            let mut after: Option<PartnerId> = None;
            loop {
                let page = store.partners_after(tenant, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id());
                for p in &page {
                    if contacts {
                        for c in p.contacts() {
                            out.emit(c, || contact_cells(p, c))?;
                            n += 1;
                        }
                    } else {
                        out.emit(p, || partner_cells(p))?;
                        n += 1;
                    }
                }
                progress(n);
            }
        }
        Export::Leads(query) => {
            out.header(&[
                "ref",
                "title",
                "partner_id",
                "stage",
                "status",
                "value",
                "currency",
                "probability",
                "expected_close",
                "source",
                "medium",
                "tags",
                "priority",
                "owner",
                "created_at",
                "id",
            ])?;
            let pipelines = crm.pipelines(tenant).await?;
            let stage_name = |l: &Lead| {
                let p = pipelines.iter().find(|p| p.id() == l.pipeline());
                p.and_then(|p| p.stage(l.stage()).ok())
                    .map(|s| s.name.clone())
                    .unwrap_or_default()
            };
            let mut q = query.clone();
            q.page = PageRequest {
                limit: q.page.limit.clamp(1, PageRequest::MAX),
                after: q.page.after,
            };
            loop {
                let page = crm.query_leads(tenant, &q).await?;
                for l in &page.items {
                    out.emit(l, || lead_cells(l, stage_name(l)))?;
                    n += 1;
                }
                progress(n);
                match page.next {
                    Some(next) => q.page.after = Some(next),
                    None => break,
                }
            }
        }
        Export::Activities { after } => {
            out.header(&[
                "position",
                "at",
                "kind",
                "actor",
                "lead",
                "partner",
                "request",
                "description",
                "id",
            ])?;
            let mut pos = *after;
            loop {
                // Through the service: each event opened (erased where a person it named was erased).
                let page = crm.events_since(tenant, pos, PAGE).await?;
                let Some((last, _)) = page.last() else { break };
                pos = *last;
                for (at, e) in &page {
                    let cells = || {
                        let id = |x: Option<String>| x.unwrap_or_default();
                        vec![
                            at.to_string(),
                            e.at.to_rfc3339(),
                            e.kind.name().to_string(),
                            serde_json::to_string(&e.actor).unwrap_or_default(),
                            id(e.subject.lead.map(|x| x.to_string())),
                            id(e.subject.partner.map(|x| x.to_string())),
                            id(e.subject.request.map(|x| x.to_string())),
                            e.describe(),
                            e.id.to_string(),
                        ]
                    };
                    out.emit(e, cells)?;
                    n += 1;
                }
                progress(n);
            }
        }
    }
    out.flush()?;
    Ok(n)
}

/// Writes the tenant's commerce documents (invoices, credit notes, vendor bills, payments) that `filter` selects,
/// in recording order, as CSV (number, kind, partner, dates, currency, total, version, the invoice a credit note
/// corrects, the campaign, id) or JSON Lines (each document whole, with its lines and allocations), a page of
/// 1,000 at a time (`CommerceKey::DocumentsAfter`); returns how many.
///
/// # Examples
///
/// ```
/// # futures::executor::block_on(async {
/// # let (_, store, _, ctx) = crm_core::conformance::model::example_commerce().await.unwrap();
/// use crm_io::{export_documents, DocumentFilter, Format};
/// let mut out = Vec::new();
/// let n = export_documents(&store, ctx.tenant, &DocumentFilter::default(), Format::Csv, &mut out, |_| {})
///     .await
///     .unwrap();
/// assert_eq!(n, 0);
/// assert!(String::from_utf8(out).unwrap().starts_with("number,kind,partner_id,"));
/// # });
/// ```
///
/// # Errors
///
/// [`IoError::Engine`] when the store cannot be read; [`IoError::Io`] when `out` cannot be written. What was
/// written before stays written.
pub async fn export_documents(
    commerce: &std::sync::Arc<dyn crm_core::commerce::CommerceStore>,
    tenant: TenantId,
    filter: &DocumentFilter,
    format: Format,
    out: &mut dyn Write,
    mut progress: impl FnMut(u64),
) -> Result<u64, IoError> {
    use crm_core::commerce::{CommerceKey, CommerceRecord};
    let mut out = Out::new(out, format);
    out.header(&[
        "number",
        "kind",
        "partner_id",
        "issue_date",
        "due_date",
        "currency",
        "total",
        "version",
        "corrects",
        "campaign",
        "id",
    ])?;
    let (mut n, mut after) = (0u64, None);
    loop {
        let key = CommerceKey::DocumentsAfter {
            after,
            limit: PAGE,
            filter: filter.clone(),
        };
        let page = commerce.fetch_commerce(tenant, &key).await?;
        let Some(CommerceRecord::Document(last)) = page.last() else {
            break;
        };
        after = Some(last.id());
        for r in &page {
            if let CommerceRecord::Document(d) = r {
                let cells = || {
                    let day =
                        |x: Option<chrono::NaiveDate>| x.map(|d| d.to_string()).unwrap_or_default();
                    vec![
                        d.number().to_string(),
                        d.kind().as_str().to_string(),
                        d.partner().to_string(),
                        d.issue_date().to_string(),
                        day(d.due_date()),
                        d.currency().code().to_string(),
                        d.total().to_string(),
                        d.version().to_string(),
                        d.corrects().unwrap_or_default().to_string(),
                        d.campaign().map(|c| c.to_string()).unwrap_or_default(),
                        d.id().to_string(),
                    ]
                };
                out.emit(d, cells)?;
                n += 1;
            }
        }
        progress(n);
    }
    out.flush()?;
    Ok(n)
}
