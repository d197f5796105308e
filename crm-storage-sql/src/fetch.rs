//! Records by key: the statement that reads a [`Key`]'s or a [`CommerceKey`]'s stored documents, and how to decode
//! them. Every record is stored whole as its JSON document in a `doc` column; a key is one `SELECT doc`, whose
//! first column is the document's JSON text ([`Dialect::doc`]).

use crate::{Dialect, Param, Sql};
use crm_core::commerce::{day_number, CommerceKey, CommerceRecord, PortalKey};
use crm_core::id::TenantId;
use crm_core::store::{Key, Record};
use crm_core::{Error, Result, StorageErrorKind};
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// What the documents a statement reads are, for decoding and for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// A partner.
    Partner,
    /// A pipeline.
    Pipeline,
    /// A lost reason.
    LostReason,
    /// A lead.
    Lead,
    /// A stage-history step.
    StageStep,
    /// A request.
    Request,
    /// A tenant setting.
    Setting,
    /// A product category.
    Category,
    /// A product.
    Product,
    /// A document.
    Document,
    /// An exchange rate.
    Rate,
    /// A campaign.
    Campaign,
    /// A campaign cost entry.
    CampaignCost,
    /// A campaign target.
    CampaignTarget,
    /// A quotation revision.
    Quotation,
    /// A meeting.
    Meeting,
    /// A contract.
    Contract,
    /// An attachment's metadata.
    Attachment,
    /// A portal representative.
    Representative,
    /// A portal payment attempt.
    PaymentAttempt,
}

impl Doc {
    /// The kind of record, as error messages name it.
    pub fn entity(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Pipeline => "pipeline",
            Self::LostReason => "lost reason",
            Self::Lead => "lead",
            Self::StageStep => "stage history entry",
            Self::Request => "request",
            Self::Setting => "setting",
            Self::Category => "product category",
            Self::Product => "product",
            Self::Document => "document",
            Self::Rate => "exchange rate",
            Self::Campaign => "campaign",
            Self::CampaignCost => "campaign cost entry",
            Self::CampaignTarget => "campaign target",
            Self::Quotation => "quotation",
            Self::Meeting => "meeting",
            Self::Contract => "contract",
            Self::Attachment => "attachment",
            Self::Representative => "representative",
            Self::PaymentAttempt => "payment attempt",
        }
    }

    fn parse<T: DeserializeOwned>(self, doc: &str) -> Result<T> {
        Self::parse_as(doc, self.entity())
    }

    /// Decodes a stored document of `entity`.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] of kind `Corrupt` (keeping the decoding error as its cause) when it does not decode.
    pub fn parse_as<T: DeserializeOwned>(doc: &str, entity: &str) -> Result<T> {
        serde_json::from_str(doc).map_err(|e| {
            Error::storage_caused(
                StorageErrorKind::Corrupt,
                format!("stored {entity} does not decode: {e}"),
                e,
            )
        })
    }

    /// A lead-side record from its stored document (the text of the `doc` column).
    pub fn record(self, doc: &str) -> Result<Record> {
        Ok(match self {
            Self::Partner => Record::Partner(self.parse(doc)?),
            Self::Pipeline => Record::Pipeline(pipelines::parsed(doc)?),
            Self::LostReason => Record::LostReason(self.parse(doc)?),
            Self::Lead => Record::Lead(self.parse(doc)?),
            Self::StageStep => Record::StageStep(self.parse(doc)?),
            Self::Request => Record::Request(self.parse(doc)?),
            Self::Setting => Record::Setting(self.parse(doc)?),
            _ => return Err(self.misplaced()),
        })
    }

    /// A commerce record from its stored document.
    pub fn commerce_record(self, doc: &str) -> Result<CommerceRecord> {
        Ok(match self {
            Self::Category => CommerceRecord::Category(self.parse(doc)?),
            Self::Product => CommerceRecord::Product(self.parse(doc)?),
            Self::Document => CommerceRecord::Document(self.parse(doc)?),
            Self::Rate => CommerceRecord::Rate(self.parse(doc)?),
            Self::Campaign => CommerceRecord::Campaign(self.parse(doc)?),
            Self::CampaignCost => CommerceRecord::CampaignCost(self.parse(doc)?),
            Self::CampaignTarget => CommerceRecord::CampaignTarget(self.parse(doc)?),
            Self::Quotation => CommerceRecord::Quotation(self.parse(doc)?),
            Self::Meeting => CommerceRecord::Meeting(self.parse(doc)?),
            Self::Contract => CommerceRecord::Contract(self.parse(doc)?),
            Self::Attachment => CommerceRecord::Attachment(self.parse(doc)?),
            Self::Representative => CommerceRecord::Representative(self.parse(doc)?),
            Self::PaymentAttempt => CommerceRecord::PaymentAttempt(self.parse(doc)?),
            // A request read for a partner's portal (`PortalKey::Request`).
            Self::Request => CommerceRecord::Request(self.parse(doc)?),
            _ => return Err(self.misplaced()),
        })
    }

    fn misplaced(self) -> Error {
        Error::storage(
            StorageErrorKind::Other,
            format!("a {} is not a record of this store", self.entity()),
        )
    }
}

fn by_id(dialect: Dialect, table: &str, tenant: TenantId, id: Uuid) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(id);
    sql.text = format!(
        "SELECT {} FROM {table} WHERE tenant = {t} AND id = {i}",
        dialect.doc()
    );
    sql
}

fn by_ids(dialect: Dialect, table: &str, tenant: TenantId, ids: &[Uuid]) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let set = match dialect {
        Dialect::Sqlite => {
            let ps: Vec<String> = ids.iter().map(|i| sql.bind(*i)).collect();
            format!("IN ({})", ps.join(", "))
        }
        Dialect::Postgres => format!("= ANY({})", sql.bind(Param::Uuids(ids.to_vec()))),
    };
    sql.text = format!(
        "SELECT {} FROM {table} WHERE tenant = {t} AND id {set}",
        dialect.doc()
    );
    sql
}

/// The documents of `table` in the tenant where `filter` holds, `{t}` in it being the tenant's placeholder and `{r}`
/// the host reference's.
fn by_ref(
    dialect: Dialect,
    tenant: TenantId,
    table: &str,
    filter: &str,
    r: &str,
    doc: Doc,
) -> (Sql, Doc) {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let r = sql.bind(r);
    let filter = filter.replace("{t}", &t).replace("{r}", &r);
    sql.text = format!(
        "SELECT {} FROM {table} WHERE tenant = {t} AND {filter}",
        dialect.doc()
    );
    (sql, doc)
}

/// The statement reading what `key` matches, and what it reads; `None` for [`Key::PartnersByKeys`] (each adapter
/// matches its own key index). [`Key::StageHistory`] also needs the lead to exist: see [`lead_exists`].
pub fn store_key(dialect: Dialect, tenant: TenantId, key: &Key) -> Option<(Sql, Doc)> {
    let all = |table: &str, order: &str| {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        sql.text = format!(
            "SELECT {} FROM {table} WHERE tenant = {t} ORDER BY {order}",
            dialect.doc()
        );
        sql
    };
    Some(match key {
        Key::Partner(id) => (
            by_id(dialect, "partners", tenant, *id.as_uuid()),
            Doc::Partner,
        ),
        Key::PartnerByRef(r) => by_ref(
            dialect,
            tenant,
            "partners",
            "host_ref = {r}",
            r,
            Doc::Partner,
        ),
        Key::PartnerByContactRef(r) => {
            let by_contact =
                "id = (SELECT partner FROM contact_refs WHERE tenant = {t} AND host_ref = {r})";
            by_ref(dialect, tenant, "partners", by_contact, r, Doc::Partner)
        }
        Key::PartnersByRefs { partners, contacts } => {
            let (mut sql, t) = Sql::for_tenant(dialect, tenant);
            let mut rows = |refs: &[String]| {
                let marks: Vec<String> = refs
                    .iter()
                    .map(|r| format!("({})", sql.bind(r.as_str())))
                    .collect();
                if marks.is_empty() {
                    "(NULL)".to_string()
                } else {
                    marks.join(", ")
                }
            };
            let (p, c) = (rows(partners), rows(contacts));
            // The codes as a table joined to the indexes: a long `IN (…)` list made SQLite's planner scan the
            // tenant's partners instead (one scan per import batch).
            let d = dialect.doc();
            sql.text = format!(
                "WITH p (r) AS (VALUES {p}), c (r) AS (VALUES {c}) \
                 SELECT {d} FROM p JOIN partners ON partners.tenant = {t} AND partners.host_ref = p.r \
                 UNION SELECT {d} FROM partners WHERE tenant = {t} AND id IN \
                 (SELECT partner FROM c JOIN contact_refs ON contact_refs.tenant = {t} AND contact_refs.host_ref = c.r)"
            );
            (sql, Doc::Partner)
        }
        Key::PartnersAfter { after, limit } => {
            let (mut sql, t) = Sql::for_tenant(dialect, tenant);
            let from = match after {
                Some(a) => format!(" AND id > {}", sql.bind(*a.as_uuid())),
                None => String::new(),
            };
            let n = sql.bind(i64::from((*limit).min(crm_core::page::PageRequest::MAX)));
            sql.text = format!(
                "SELECT {} FROM partners WHERE tenant = {t}{from} AND merged_into IS NULL ORDER BY id LIMIT {n}",
                dialect.doc()
            );
            (sql, Doc::Partner)
        }
        Key::Setting(key) => by_ref(dialect, tenant, "settings", "key = {r}", key, Doc::Setting),
        Key::LeadByRef(r) => by_ref(dialect, tenant, "leads", "host_ref = {r}", r, Doc::Lead),
        Key::Pipeline(id) => (
            by_id(dialect, "pipelines", tenant, *id.as_uuid()),
            Doc::Pipeline,
        ),
        Key::Lead(id) => (by_id(dialect, "leads", tenant, *id.as_uuid()), Doc::Lead),
        Key::Request(id) => (
            by_id(dialect, "requests", tenant, *id.as_uuid()),
            Doc::Request,
        ),
        // In creation order: the stored creation time, then the row's insertion order.
        Key::Pipelines => match dialect {
            Dialect::Sqlite => (all("pipelines", "created_at, id"), Doc::Pipeline),
            Dialect::Postgres => (all("pipelines", "created_us, seq"), Doc::Pipeline),
        },
        Key::LostReasons => match dialect {
            Dialect::Sqlite => (all("lost_reasons", "id"), Doc::LostReason),
            Dialect::Postgres => (all("lost_reasons", "seq"), Doc::LostReason),
        },
        Key::StageHistory(lead) => {
            let (mut sql, t) = Sql::for_tenant(dialect, tenant);
            let l = sql.bind(*lead.as_uuid());
            sql.text = format!(
                "SELECT {} FROM stage_history WHERE tenant = {t} AND lead = {l} ORDER BY seq",
                dialect.doc()
            );
            (sql, Doc::StageStep)
        }
        _ => return None,
    })
}

/// `Store::fetch(Key::LeadWithPipeline(lead))` on a [`Runner`](crate::Runner): the lead, its pipeline, its partner and
/// the partner's subject key when it has one, read together as one short read: one statement, one row, and the
/// lead's key sought once (a `UNION ALL` of four branches sought it four times).
///
/// # Errors
///
/// The adapter's; [`Error::Storage`] of kind `Corrupt` when a document does not decode.
pub async fn lead_with_pipeline<R: crate::Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    lead: crm_core::id::LeadId,
) -> crm_core::error::Result<Vec<crm_core::store::Record>> {
    let dialect = r.dialect();
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let l = sql.bind(*lead.as_uuid());
    let (ld, pd, ad, kd) = match dialect {
        Dialect::Sqlite => ("l.doc", "p.doc", "a.doc", "k.doc"),
        Dialect::Postgres => ("l.doc::text", "p.doc::text", "a.doc::text", "k.doc::text"),
    };
    sql.text = format!(
        "SELECT {ld}, {pd}, {ad}, {kd} FROM leads l \
         LEFT JOIN pipelines p ON p.tenant = l.tenant AND p.id = l.pipeline \
         LEFT JOIN partners a ON a.tenant = l.tenant AND a.id = l.partner \
         LEFT JOIN subject_keys k ON k.tenant = l.tenant AND k.subject = l.partner \
         WHERE l.tenant = {t} AND l.id = {l}"
    );
    let Some(row) = r
        .rows_short(vec![sql])
        .await?
        .pop()
        .and_then(|mut rows| rows.pop())
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(row.len());
    for (part, cell) in row.iter().enumerate() {
        if matches!(cell, crate::Cell::Null) {
            continue;
        }
        let text = cell.text("document")?;
        out.push(match part {
            0 => Doc::Lead.record(text)?,
            1 => Doc::Pipeline.record(text)?,
            2 => Doc::Partner.record(text)?,
            _ => crm_core::store::Record::SubjectKey(Doc::parse_as(text, "subject key")?),
        });
    }
    Ok(out)
}

/// Parsed pipelines, by their stored text: a stage move reads its lead's pipeline every time (the same statement
/// as the lead), and a pipeline changes seldom, so the decoding (a few dozen ids, names and requirements, checked on
/// the way in) is done once per version. The key is the whole stored document, which names the tenant, the
/// pipeline and its version: a changed pipeline is new text and decodes again, and two stores in one process share
/// an entry only when they hold the very same document, which then decodes to the same value. At most
/// [`pipelines::CAPACITY`] entries, the least recently used going first.
pub mod pipelines {
    use crm_core::pipeline::Pipeline;
    use crm_core::Result;
    use std::sync::Mutex;

    /// How many decoded pipelines are kept.
    pub const CAPACITY: usize = 64;

    /// Most recently used last.
    static CACHE: Mutex<Vec<(Box<str>, Pipeline)>> = Mutex::new(Vec::new());

    /// The pipeline `doc` decodes to, from the cache when the same text was decoded before.
    ///
    /// # Errors
    ///
    /// [`crm_core::Error::Storage`] of kind `Corrupt` when it does not decode (nothing is cached then).
    pub fn parsed(doc: &str) -> Result<Pipeline> {
        {
            let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = cache.iter().rposition(|(text, _)| &**text == doc) {
                let entry = cache.remove(at);
                let found = entry.1.clone();
                cache.push(entry);
                return Ok(found);
            }
        }
        let pipeline: Pipeline = super::Doc::parse_as(doc, "pipeline")?;
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.iter().any(|(text, _)| &**text == doc) {
            if cache.len() >= CAPACITY {
                cache.remove(0);
            }
            cache.push((doc.into(), pipeline.clone()));
        }
        Ok(pipeline)
    }

    /// Whether `doc`'s decoding is in the cache (for tests).
    pub fn cached(doc: &str) -> bool {
        CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(text, _)| &**text == doc)
    }
}

/// For [`Key::StageHistory`]: the statement selecting a row when the lead exists in the tenant, and the error when
/// it selects none (a history of an unknown lead is [`Error::NotFound`], not empty).
pub fn lead_exists(dialect: Dialect, tenant: TenantId, key: &Key) -> Option<(Sql, Error)> {
    let Key::StageHistory(lead) = key else {
        return None;
    };
    let mut sql = by_id(dialect, "leads", tenant, *lead.as_uuid());
    sql.text = sql
        .text
        .replacen(&format!("SELECT {}", dialect.doc()), "SELECT 1", 1);
    Some((sql, Error::not_found("lead", lead)))
}

/// The statement reading what a commerce `key` matches, and what it reads.
pub fn commerce_key(dialect: Dialect, tenant: TenantId, key: &CommerceKey) -> Result<(Sql, Doc)> {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    // A document's lines live in `document_lines` only: its reads put them back.
    let doc = |table: &str| {
        if table == "documents" {
            crate::commerce::document_doc(dialect, "documents")
        } else {
            dialect.doc().to_string()
        }
    };
    let mut one = |table: &str, col: &str, v: Param| {
        let p = sql.bind(v);
        format!(
            "SELECT {} FROM {table} WHERE tenant = {t} AND {col} = {p}",
            doc(table)
        )
    };
    let select = |table: &str, rest: &str| {
        format!(
            "SELECT {} FROM {table} WHERE tenant = {t} AND {rest}",
            doc(table)
        )
    };
    let (text, doc) = match key {
        CommerceKey::Category(id) => (
            one("product_categories", "id", (*id.as_uuid()).into()),
            Doc::Category,
        ),
        CommerceKey::CategoryCode(code) => (
            one("product_categories", "code", code.as_str().into()),
            Doc::Category,
        ),
        CommerceKey::Product(id) => (one("products", "id", (*id.as_uuid()).into()), Doc::Product),
        CommerceKey::ProductCode(code) => {
            (one("products", "code", code.as_str().into()), Doc::Product)
        }
        CommerceKey::Document(id) => (
            one("documents", "id", (*id.as_uuid()).into()),
            Doc::Document,
        ),
        CommerceKey::Campaign(id) => (
            one("campaigns", "id", (*id.as_uuid()).into()),
            Doc::Campaign,
        ),
        CommerceKey::CampaignTargetOf(request) => (
            one("campaign_targets", "request", (*request.as_uuid()).into()),
            Doc::CampaignTarget,
        ),
        CommerceKey::CampaignTarget { campaign, partner } => {
            let c = (*campaign.as_uuid()).into();
            let text = one("campaign_targets", "campaign", c);
            let p = sql.bind(*partner.as_uuid());
            (format!("{text} AND partner = {p}"), Doc::CampaignTarget)
        }
        CommerceKey::CampaignCosts(campaign) => (
            format!(
                "{} ORDER BY day, id",
                one("campaign_costs", "campaign", (*campaign.as_uuid()).into())
            ),
            Doc::CampaignCost,
        ),
        CommerceKey::DocumentNumber(kind, number) => {
            let k = sql.bind(Param::I16(kind.code()));
            let n = sql.bind(number.as_str());
            (
                select("documents", &format!("kind = {k} AND number = {n}")),
                Doc::Document,
            )
        }
        CommerceKey::Rate { from, to, on } => {
            let day = day_number(*on);
            let f = sql.bind(from.code());
            let to = sql.bind(to.code());
            let d = sql.bind(Param::Day(day));
            (
                select(
                    "exchange_rates",
                    &format!(
                        "from_ccy = {f} AND to_ccy = {to} \
                     AND day <= {d} ORDER BY day DESC LIMIT 1"
                    ),
                ),
                Doc::Rate,
            )
        }
        CommerceKey::DocumentsDue { kind, from, before } => {
            let k = sql.bind(Param::I16(kind.code()));
            let f = sql.bind(Param::Day(day_number(*from)));
            let b = sql.bind(Param::Day(day_number(*before)));
            (
                format!(
                    "SELECT {} FROM documents WHERE tenant = {t} AND kind = {k} AND due_day >= {f} \
                     AND due_day < {b} ORDER BY due_day, {}",
                    doc("documents"),
                    dialect.text("number")
                ),
                Doc::Document,
            )
        }
        CommerceKey::DocumentsAfter {
            after,
            limit,
            filter: f,
        } => {
            let mut text = format!(
                "SELECT {} FROM documents WHERE tenant = {t}",
                doc("documents")
            );
            let mut and = |cond: &str, p: Param| {
                let p = sql.bind(p);
                text.push_str(&format!(" AND {cond} {p}"));
            };
            if let Some(a) = after {
                and("id >", (*a.as_uuid()).into());
            }
            if let Some(k) = f.kind {
                and("kind =", Param::I16(k.code()));
            }
            if let Some(p) = f.partner {
                and("partner =", (*p.as_uuid()).into());
            }
            if let Some(d) = f.from {
                and("issue_day >=", Param::Day(day_number(d)));
            }
            if let Some(d) = f.before {
                and("issue_day <", Param::Day(day_number(d)));
            }
            let n = sql.bind(i64::from((*limit).min(crm_core::page::PageRequest::MAX)));
            text.push_str(&format!(" ORDER BY id LIMIT {n}"));
            (text, Doc::Document)
        }
        CommerceKey::DocumentsRenewing { from, to } => {
            // ISO dates compare as text; the expression is exactly the one the `documents_renewing` index holds.
            let renews = dialect.text(&dialect.json_text("doc", &["renews_on"]));
            let f = sql.bind(from.format("%Y-%m-%d").to_string());
            let until = sql.bind(to.format("%Y-%m-%d").to_string());
            (
                format!(
                    "SELECT {} FROM documents WHERE tenant = {t} AND {renews} >= {f} AND {renews} <= {until} \
                     ORDER BY {renews}, kind, {}",
                    doc("documents"),
                    dialect.text("number")
                ),
                Doc::Document,
            )
        }
        CommerceKey::Contract(id) => (
            one("contracts", "id", (*id.as_uuid()).into()),
            Doc::Contract,
        ),
        CommerceKey::ContractsOfPartner(p) => (
            format!(
                "{} ORDER BY starts_on, {}",
                one("contracts", "partner", (*p.as_uuid()).into()),
                dialect.text("number")
            ),
            Doc::Contract,
        ),
        CommerceKey::ContractsRenewing { from, to } => {
            let f = sql.bind(Param::Day(day_number(*from)));
            let until = sql.bind(Param::Day(day_number(*to)));
            (
                format!(
                    "SELECT {} FROM contracts WHERE tenant = {t} AND renews_on >= {f} AND renews_on <= {until} \
                     ORDER BY renews_on, {}",
                    dialect.doc(),
                    dialect.text("number")
                ),
                Doc::Contract,
            )
        }
        CommerceKey::Attachment(id) => (
            one("attachments", "id", (*id.as_uuid()).into()),
            Doc::Attachment,
        ),
        CommerceKey::Representative(id) => (
            one("representatives", "id", (*id.as_uuid()).into()),
            Doc::Representative,
        ),
        CommerceKey::RepresentativeByToken(digest) => (
            one("representatives", "token_digest", digest.as_str().into()),
            Doc::Representative,
        ),
        CommerceKey::RepresentativesByEmail(e) => (
            format!(
                "{} ORDER BY id",
                one("representatives", "email", e.as_str().into())
            ),
            Doc::Representative,
        ),
        CommerceKey::PaymentAttemptByKey(k) => (
            one("payment_attempts", "pay_key", k.as_str().into()),
            Doc::PaymentAttempt,
        ),
        CommerceKey::OfPartner { partner, key } => {
            let p = sql.bind(*partner.as_uuid());
            // Every portal read starts from these two predicates: the tenant and the partner.
            let scoped = |table: &str, rest: &str| {
                format!(
                    "SELECT {} FROM {table} WHERE tenant = {t} AND partner = {p}{rest}",
                    doc(table)
                )
            };
            match key {
                PortalKey::Document(id) => {
                    let i = sql.bind(*id.as_uuid());
                    (
                        scoped("documents", &format!(" AND id = {i}")),
                        Doc::Document,
                    )
                }
                PortalKey::Documents { after, limit } => {
                    let page = match after {
                        Some((day, id)) => {
                            let d = sql.bind(Param::Day(day_number(*day)));
                            let i = sql.bind(*id.as_uuid());
                            format!(" AND (issue_day < {d} OR (issue_day = {d} AND id < {i}))")
                        }
                        None => String::new(),
                    };
                    let n = sql.bind(i64::from(*limit));
                    (
                        scoped(
                            "documents",
                            &format!("{page} ORDER BY issue_day DESC, id DESC LIMIT {n}"),
                        ),
                        Doc::Document,
                    )
                }
                PortalKey::Request(id) => {
                    let i = sql.bind(*id.as_uuid());
                    (scoped("requests", &format!(" AND id = {i}")), Doc::Request)
                }
                PortalKey::Quotation(id) => {
                    let i = sql.bind(*id.as_uuid());
                    (
                        scoped("quotations", &format!(" AND id = {i}")),
                        Doc::Quotation,
                    )
                }
                PortalKey::Quotations => (
                    scoped(
                        "quotations",
                        " ORDER BY year DESC, sequence DESC, revision DESC",
                    ),
                    Doc::Quotation,
                ),
                PortalKey::Contract(id) => {
                    let i = sql.bind(*id.as_uuid());
                    (
                        scoped("contracts", &format!(" AND id = {i}")),
                        Doc::Contract,
                    )
                }
                PortalKey::Contracts => (
                    scoped(
                        "contracts",
                        &format!(" ORDER BY starts_on, {}", dialect.text("number")),
                    ),
                    Doc::Contract,
                ),
                PortalKey::Representatives => (
                    scoped("representatives", " ORDER BY id"),
                    Doc::Representative,
                ),
                PortalKey::Payments => (
                    scoped("payment_attempts", " ORDER BY id DESC"),
                    Doc::PaymentAttempt,
                ),
                PortalKey::PaymentsInProgress => {
                    let (started, pending) = (
                        crm_core::portal::AttemptStatus::Started.code(),
                        crm_core::portal::AttemptStatus::Pending.code(),
                    );
                    (
                        scoped(
                            "payment_attempts",
                            &format!(" AND status IN ({started}, {pending}) ORDER BY id"),
                        ),
                        Doc::PaymentAttempt,
                    )
                }
                other => {
                    return Err(Error::invalid(
                        "key",
                        format!("no statement for the portal key {other:?}"),
                    ))
                }
            }
        }
        CommerceKey::AttachmentsOf(target) => {
            let k = sql.bind(Param::I16(target.kind_code()));
            let i = sql.bind(*target.uuid());
            (
                select(
                    "attachments",
                    &format!(
                        "target_kind = {k} AND target = {i} \
                     ORDER BY at_us, id"
                    ),
                ),
                Doc::Attachment,
            )
        }
        CommerceKey::Meeting(id) => (one("meetings", "id", (*id.as_uuid()).into()), Doc::Meeting),
        CommerceKey::MeetingsOfLead(lead) => (
            format!(
                "{} ORDER BY starts_us, id",
                one("meetings", "lead", (*lead.as_uuid()).into())
            ),
            Doc::Meeting,
        ),
        CommerceKey::MeetingsStarting { from, before } => {
            // As for expiring quotations: the status is the code's constant, for the partial index.
            let scheduled =
                crate::commerce::meeting_status_code(crm_core::sales::MeetingStatus::Scheduled);
            let f = sql.bind(from.timestamp_micros());
            let b = sql.bind(before.timestamp_micros());
            (
                select(
                    "meetings",
                    &format!(
                        "status = {scheduled} \
                     AND starts_us >= {f} AND starts_us < {b} ORDER BY starts_us, id"
                    ),
                ),
                Doc::Meeting,
            )
        }
        CommerceKey::Agenda { user, from, before } => {
            let u = sql.bind(*user.as_uuid());
            let f = sql.bind(from.timestamp_micros());
            let b = sql.bind(before.timestamp_micros());
            (
                format!(
                    "SELECT {} FROM meeting_people p JOIN meetings m ON m.tenant = p.tenant AND m.id = p.meeting \
                     WHERE p.tenant = {t} AND p.user_id = {u} AND p.starts_us >= {f} AND p.starts_us < {b} \
                     ORDER BY p.starts_us, p.meeting",
                    dialect.doc()
                ),
                Doc::Meeting,
            )
        }
        CommerceKey::Quotation(id) => (
            one("quotations", "id", (*id.as_uuid()).into()),
            Doc::Quotation,
        ),
        CommerceKey::QuotationsOfLead(lead) => (
            format!(
                "{} ORDER BY year, sequence, revision",
                one("quotations", "lead", (*lead.as_uuid()).into())
            ),
            Doc::Quotation,
        ),
        CommerceKey::QuotationsExpiring { before } => {
            // The status is the code's constant, written in the statement so that the partial index
            // `quotations_expiring` (holding only sent quotations) answers it.
            let sent =
                crate::commerce::quotation_status_code(crm_core::sales::QuotationStatus::Sent);
            let b = sql.bind(Param::Day(day_number(*before)));
            (
                select(
                    "quotations",
                    &format!(
                        "status = {sent} AND valid_until < {b} \
                     ORDER BY valid_until, year, sequence, revision"
                    ),
                ),
                Doc::Quotation,
            )
        }
        CommerceKey::QuotationRevisions { year, sequence } => {
            let y = sql.bind(Param::I32(*year));
            let n = sql.bind(Param::I64(i64::from(*sequence)));
            (
                select(
                    "quotations",
                    &format!(
                        "year = {y} AND sequence = {n} \
                     ORDER BY revision"
                    ),
                ),
                Doc::Quotation,
            )
        }
        CommerceKey::LastQuotationOfYear(year) => (
            format!(
                "{} ORDER BY sequence DESC, revision DESC LIMIT 1",
                one("quotations", "year", Param::I32(*year))
            ),
            Doc::Quotation,
        ),
        CommerceKey::Products(ids) => {
            let ids: Vec<Uuid> = ids.iter().map(|i| *i.as_uuid()).collect();
            return Ok((by_ids(dialect, "products", tenant, &ids), Doc::Product));
        }
        CommerceKey::Categories(ids) => {
            let ids: Vec<Uuid> = ids.iter().map(|i| *i.as_uuid()).collect();
            return Ok((
                by_ids(dialect, "product_categories", tenant, &ids),
                Doc::Category,
            ));
        }
        _ => {
            return Err(Error::invalid(
                "key",
                "a key this version of the engine does not know",
            ))
        }
    };
    sql.text = text;
    Ok((sql, doc))
}

#[cfg(test)]
mod tests {
    use super::pipelines;
    use crm_core::id::TenantId;
    use crm_core::pipeline::NewPipeline;

    #[test]
    fn a_pipeline_decodes_once_per_stored_text_and_a_changed_one_again() {
        let p = NewPipeline::seed_default()
            .build(TenantId::new(), chrono::Utc::now())
            .unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert!(!pipelines::cached(&text));
        assert_eq!(pipelines::parsed(&text).unwrap(), p);
        assert!(pipelines::cached(&text));
        assert_eq!(pipelines::parsed(&text).unwrap(), p, "the cached decoding");
        // A new version is new text: it decodes to itself, not to the cached one.
        let mut renamed: serde_json::Value = serde_json::from_str(&text).unwrap();
        renamed["name"] = "Renamed".into();
        renamed["version"] = 2.into();
        let renamed = renamed.to_string();
        let got = pipelines::parsed(&renamed).unwrap();
        assert_eq!((got.name(), got.version()), ("Renamed", 2));
        assert_eq!(pipelines::parsed(&text).unwrap(), p);
        // What does not decode is an error and is not kept.
        let broken = text.replace("\"stages\"", "\"stagez\"");
        assert!(pipelines::parsed(&broken).is_err());
        assert!(!pipelines::cached(&broken));
        // The cache holds at most its capacity: the least recently used goes first.
        let others: Vec<String> = (0..pipelines::CAPACITY)
            .map(|i| {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["version"] = (10 + i).into();
                v.to_string()
            })
            .collect();
        for o in &others {
            pipelines::parsed(o).unwrap();
        }
        assert!(!pipelines::cached(&renamed), "evicted");
        assert!(pipelines::cached(others.last().unwrap()));
    }
}
