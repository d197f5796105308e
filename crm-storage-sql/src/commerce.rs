//! The commerce writes and sums, built once: the tables' written columns, the values a record writes into them,
//! the steps a [`CommerceWrite`] takes (inserts with the key an `AlreadyExists` names, version-checked updates, the
//! deletes of a replaced document's rows), and the profitability and campaign sums.
//!
//! Both schemas name the commerce columns alike; only their types differ ([`Kind`] is mapped by each adapter).

use crate::{corrupt, day_bounds, micro_bounds, Cell, Dialect, Kind, Param, Runner, Sql, Table};
use chrono::NaiveDate;
use crm_core::commerce::{
    day_number, Balance, Bucket, Campaign, CampaignCost, CampaignStatus, CampaignSums,
    CampaignTarget, CampaignTotals, Category, CommerceKey, CommerceRecord, CommerceWrite, Criteria,
    Document, DocumentKind, ExchangeRate, GroupBy, OpenItem, OutcomeKind, PaymentDirection, Period,
    Product, ProfitSums, Progress, RankOrder, SegmentMember, SumsQuery,
};
use crm_core::id::{CampaignId, PartnerId, TenantId, UserId};
use crm_core::money::{decimal_to_units, units_to_decimal, Currency};
use crm_core::portal::{PaymentAttempt, Representative};
use crm_core::sales::{
    AttachedTo, Attachment, Contract, Meeting, MeetingStatus, Quotation, QuotationStatus,
};
use crm_core::store::{Page, PageRequest};
use crm_core::{Error, Result};
use uuid::Uuid;

/// `product_categories`.
pub const CATEGORIES: Table = Table {
    name: "product_categories",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("code", Kind::Text),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `products`.
pub const PRODUCTS: Table = Table {
    name: "products",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("code", Kind::Text),
        ("category", Kind::Uuid),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `exchange_rates`.
pub const RATES: Table = Table {
    name: "exchange_rates",
    columns: &[
        ("tenant", Kind::Uuid),
        ("from_ccy", Kind::Ccy),
        ("to_ccy", Kind::Ccy),
        ("day", Kind::I32),
        ("doc", Kind::Json),
    ],
};

/// `campaigns`.
pub const CAMPAIGNS: Table = Table {
    name: "campaigns",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("status", Kind::I16),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `quotations`: each revision of a quotation, numbered `(year, sequence, revision)` uniquely per tenant.
pub const QUOTATIONS: Table = Table {
    name: "quotations",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("year", Kind::I32),
        ("sequence", Kind::I64),
        ("revision", Kind::I32),
        ("partner", Kind::Uuid),
        ("lead", Kind::Uuid),
        ("status", Kind::I16),
        ("valid_until", Kind::I32),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `contracts`: a contract, by partner and start, and by renewal date.
pub const CONTRACTS: Table = Table {
    name: "contracts",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("number", Kind::Text),
        ("partner", Kind::Uuid),
        ("quotation", Kind::Uuid),
        ("starts_on", Kind::I32),
        ("renews_on", Kind::I32),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `attachments`: a file's metadata (its bytes are in the blob store), by the record it is attached to and time.
/// The record is `(target_kind, target)` for the index, and again in the one nullable column of its kind (`lead`,
/// `partner`, `request`, `quotation`, `contract`) for its foreign key.
pub const ATTACHMENTS: Table = Table {
    name: "attachments",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("target_kind", Kind::I16),
        ("target", Kind::Uuid),
        ("lead", Kind::Uuid),
        ("partner", Kind::Uuid),
        ("request", Kind::Uuid),
        ("quotation", Kind::Uuid),
        ("contract", Kind::Uuid),
        ("at_us", Kind::I64),
        ("sha256", Kind::Text),
        ("size", Kind::I64),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `representatives`: a partner's contacts with portal access; a pending invitation's token digest is unique per
/// tenant (the login looks it up).
pub const REPRESENTATIVES: Table = Table {
    name: "representatives",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("partner", Kind::Uuid),
        ("email", Kind::Text),
        ("token_digest", Kind::Text),
        ("status", Kind::I16),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `payment_attempts`: the portal's payments, by partner; the idempotency key is unique per tenant.
pub const PAYMENT_ATTEMPTS: Table = Table {
    name: "payment_attempts",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("partner", Kind::Uuid),
        ("pay_key", Kind::Text),
        ("status", Kind::I16),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `meetings`: a meeting, by lead and start.
pub const MEETINGS: Table = Table {
    name: "meetings",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("lead", Kind::Uuid),
        ("starts_us", Kind::I64),
        ("status", Kind::I16),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `meeting_people`: one row per user whose agenda holds a meeting (the organiser and the attendees who are users).
pub const MEETING_PEOPLE: Table = Table {
    name: "meeting_people",
    columns: &[
        ("tenant", Kind::Uuid),
        ("user_id", Kind::Uuid),
        ("meeting", Kind::Uuid),
        ("starts_us", Kind::I64),
    ],
};

/// `documents`: the document and the partner's reporting attributes at issue time.
pub const DOCUMENTS: Table = Table {
    name: "documents",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("kind", Kind::I16),
        ("number", Kind::Text),
        ("partner", Kind::Uuid),
        ("issue_day", Kind::I32),
        ("due_day", Kind::I32),
        ("month_idx", Kind::I64),
        ("quarter_idx", Kind::I64),
        ("year_idx", Kind::I64),
        ("currency", Kind::Ccy),
        ("total_units", Kind::I64),
        ("reporting", Kind::Ccy),
        ("revenue_units", Kind::I64),
        ("cost_units", Kind::I64),
        ("campaign", Kind::Uuid),
        ("corrects", Kind::Text),
        ("direction", Kind::I16),
        ("grp", Kind::Text),
        ("industry", Kind::Text),
        ("owner", Kind::Uuid),
        ("country", Kind::Text),
        ("region", Kind::Text),
        ("city", Kind::Text),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `document_lines`: a document's lines, the only place they are stored (the document's `doc` holds no `lines`;
/// a read puts them back, [`document_doc`]). The host's own figures (`quantity`, `unit_price`, `discount_pct`,
/// `unit_cost`) and the computed `net` and `cost` are kept as the decimal text the document carries, so a line reads
/// back exactly as recorded; since the lines' migration ([`crate::schema::lines_only`]).
pub const DOCUMENT_LINES: Table = Table {
    name: "document_lines",
    columns: &[
        ("tenant", Kind::Uuid),
        ("document", Kind::Uuid),
        ("n", Kind::I32),
        ("partner", Kind::Uuid),
        ("kind", Kind::I16),
        ("issue_day", Kind::I32),
        ("product", Kind::Uuid),
        ("category", Kind::Uuid),
        ("quantity_units", Kind::I64),
        ("revenue_units", Kind::I64),
        ("cost_units", Kind::I64),
        ("quantity", Kind::Text),
        ("unit_price", Kind::Text),
        ("discount_pct", Kind::Text),
        ("unit_cost", Kind::Text),
        ("net", Kind::Text),
        ("cost", Kind::Text),
    ],
};

/// The line fields [`DOCUMENT_LINES`] keeps as decimal text, as `Line` names them.
pub const LINE_DECIMALS: [&str; 6] = [
    "quantity",
    "unit_price",
    "discount_pct",
    "unit_cost",
    "net",
    "cost",
];

/// The JSON text of the document of the `documents` row `row` (the table's name or alias in the query): its stored
/// `doc` with the fields the row's columns hold put back ([`DOCUMENT_COLUMN_FIELDS`]) and its lines from
/// `document_lines` in their order: what every read of a document selects where other records select
/// [`Dialect::doc`].
pub fn document_doc(dialect: Dialect, row: &str) -> String {
    let decimals: Vec<String> = LINE_DECIMALS
        .iter()
        .map(|c| format!("'{c}', l.{c}"))
        .collect();
    let decimals = decimals.join(", ");
    let amounts = "'revenue_units', l.revenue_units, 'cost_units', l.cost_units, \
                   'quantity_units', l.quantity_units";
    let lines =
        format!("FROM document_lines l WHERE l.tenant = {row}.tenant AND l.document = {row}.id");
    // The enums' JSON names by their stored codes, from the enums themselves.
    let kinds: String = (0..=i16::from(u8::MAX))
        .filter_map(DocumentKind::from_code)
        .map(|k| format!(" WHEN {} THEN '{}'", k.code(), json_name(&k)))
        .collect();
    let kind = format!("CASE {row}.kind{kinds} END");
    let direction = format!(
        "CASE {row}.direction WHEN 0 THEN '{}' WHEN 1 THEN '{}' END",
        json_name(&PaymentDirection::Received),
        json_name(&PaymentDirection::Sent)
    );
    match dialect {
        Dialect::Sqlite => {
            // Ids are 16-byte blobs: their hyphenated lower-case text is what serde reads. A scalar subquery's
            // value loses its JSON subtype, so `json()` gives it back. Days count from 0001-01-01 as day 1, the
            // Julian day 1721425.5.
            let uuid = |c: &str| {
                format!(
                    "CASE WHEN {c} IS NULL THEN NULL ELSE lower(substr(hex({c}), 1, 8) || '-' || \
                     substr(hex({c}), 9, 4) || '-' || substr(hex({c}), 13, 4) || '-' || substr(hex({c}), 17, 4) \
                     || '-' || substr(hex({c}), 21)) END"
                )
            };
            let date = |c: &str| format!("date({row}.{c} + 1721424.5)");
            format!(
                "json_set({row}.doc, '$.tenant', {}, '$.id', {}, '$.kind', {kind}, '$.number', {row}.number, \
                 '$.partner', {}, '$.issue_date', {}, '$.due_date', {}, '$.currency', {row}.currency, \
                 '$.campaign', {}, '$.corrects', {row}.corrects, '$.direction', {direction}, \
                 '$.revenue_units', {row}.revenue_units, '$.cost_units', {row}.cost_units, \
                 '$.attrs', json_object('group', {row}.grp, 'industry', {row}.industry, 'owner', {}, \
                 'country', {row}.country, 'region', {row}.region, 'city', {row}.city), \
                 '$.version', {row}.version, \
                 '$.lines', json((SELECT json_group_array(json_object('product', {}, 'category', {}, \
                 {decimals}, {amounts}) ORDER BY l.n) {lines})))",
                uuid(&format!("{row}.tenant")),
                uuid(&format!("{row}.id")),
                uuid(&format!("{row}.partner")),
                date("issue_day"),
                date("due_day"),
                uuid(&format!("{row}.campaign")),
                uuid(&format!("{row}.owner")),
                uuid("l.product"),
                uuid("l.category"),
            )
        }
        Dialect::Postgres => {
            let date =
                |c: &str| format!("to_char(date '0001-01-01' + ({row}.{c} - 1), 'YYYY-MM-DD')");
            format!(
                "jsonb_set({row}.doc || jsonb_build_object('tenant', {row}.tenant, 'id', {row}.id, \
                 'kind', {kind}, 'number', {row}.number, 'partner', {row}.partner, 'issue_date', {}, \
                 'due_date', {}, 'currency', {row}.currency::text, 'campaign', {row}.campaign, \
                 'corrects', {row}.corrects, 'direction', {direction}, 'revenue_units', {row}.revenue_units, \
                 'cost_units', {row}.cost_units, 'attrs', jsonb_build_object('group', {row}.grp, \
                 'industry', {row}.industry, 'owner', {row}.owner, 'country', {row}.country, \
                 'region', {row}.region, 'city', {row}.city), 'version', {row}.version), \
                 '{{lines}}', coalesce((SELECT jsonb_agg(jsonb_build_object('product', l.product, \
                 'category', l.category, {decimals}, {amounts}) ORDER BY l.n) {lines}), '[]'::jsonb))::text",
                date("issue_day"),
                date("due_day"),
            )
        }
    }
}

/// The JSON string a unit enum variant serialises to (`DocumentKind::CreditNote` → `credit_note`).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `allocations`: what a payment settles.
pub const ALLOCATIONS: Table = Table {
    name: "allocations",
    columns: &[
        ("tenant", Kind::Uuid),
        ("document", Kind::Uuid),
        ("n", Kind::I32),
        ("partner", Kind::Uuid),
        ("target_kind", Kind::I16),
        ("target_number", Kind::Text),
        ("amount_units", Kind::I64),
    ],
};

/// `campaign_costs`.
pub const CAMPAIGN_COSTS: Table = Table {
    name: "campaign_costs",
    columns: &[
        ("tenant", Kind::Uuid),
        ("id", Kind::Uuid),
        ("campaign", Kind::Uuid),
        ("day", Kind::I32),
        ("reporting", Kind::Ccy),
        ("amount_units", Kind::I64),
        ("doc", Kind::Json),
    ],
};

/// `campaign_targets`, keyed by (tenant, campaign, partner); `holdout` (1 for a partner held out) since the
/// holdouts' migration ([`crate::schema::holdouts`]).
pub const CAMPAIGN_TARGETS: Table = Table {
    name: "campaign_targets",
    columns: &[
        ("tenant", Kind::Uuid),
        ("campaign", Kind::Uuid),
        ("partner", Kind::Uuid),
        ("agent", Kind::Uuid),
        ("request", Kind::Uuid),
        ("outcome", Kind::I16),
        ("outcome_at", Kind::I64),
        ("reached_at", Kind::I64),
        ("holdout", Kind::I16),
        ("version", Kind::I64),
        ("doc", Kind::Json),
    ],
};

fn status_code(s: CampaignStatus) -> i16 {
    match s {
        CampaignStatus::Draft => 0,
        CampaignStatus::Active => 1,
        CampaignStatus::Closed => 2,
    }
}

fn ccy(c: Currency) -> Param {
    Param::Text(c.code().to_string())
}

fn day(d: NaiveDate) -> Param {
    Param::Day(day_number(d))
}

fn version(v: u64) -> Param {
    Param::I64(v as i64)
}

/// The row of a category.
pub fn category_row(c: &Category) -> Result<Vec<Param>> {
    Ok(vec![
        (*c.tenant().as_uuid()).into(),
        (*c.id().as_uuid()).into(),
        c.code().into(),
        version(c.version()),
        Param::json(c)?,
    ])
}

/// The row of a product.
pub fn product_row(p: &Product) -> Result<Vec<Param>> {
    Ok(vec![
        (*p.tenant().as_uuid()).into(),
        (*p.id().as_uuid()).into(),
        p.code().into(),
        Param::opt_uuid(p.category().as_ref().map(|c| c.as_uuid())),
        version(p.version()),
        Param::json(p)?,
    ])
}

/// The row of an exchange rate.
pub fn rate_row(r: &ExchangeRate) -> Result<Vec<Param>> {
    Ok(vec![
        (*r.tenant().as_uuid()).into(),
        ccy(r.from()),
        ccy(r.to()),
        day(r.on()),
        Param::json(r)?,
    ])
}

/// The row of a campaign.
pub fn campaign_row(c: &Campaign) -> Result<Vec<Param>> {
    Ok(vec![
        (*c.tenant().as_uuid()).into(),
        (*c.id().as_uuid()).into(),
        status_code(c.status()).into(),
        version(c.version()),
        Param::json(c)?,
    ])
}

/// The stored code of a quotation's status.
pub fn quotation_status_code(s: QuotationStatus) -> i16 {
    match s {
        QuotationStatus::Draft => 0,
        QuotationStatus::Sent => 1,
        QuotationStatus::Accepted => 2,
        QuotationStatus::Declined => 3,
        QuotationStatus::Expired => 4,
        QuotationStatus::Superseded => 5,
    }
}

/// The row of a quotation revision.
pub fn quotation_row(q: &Quotation) -> Result<Vec<Param>> {
    let n = q.number();
    Ok(vec![
        (*q.tenant().as_uuid()).into(),
        (*q.id().as_uuid()).into(),
        Param::I32(n.year),
        Param::I64(i64::from(n.sequence)),
        Param::I32(
            i32::try_from(n.revision)
                .map_err(|_| Error::invalid("number", "revision out of range"))?,
        ),
        (*q.partner().as_uuid()).into(),
        Param::opt_uuid(q.lead().as_ref().map(|l| l.as_uuid())),
        quotation_status_code(q.status()).into(),
        day(q.valid_until()),
        version(q.version()),
        Param::json(q)?,
    ])
}

/// The stored code of a meeting's status.
pub fn meeting_status_code(s: MeetingStatus) -> i16 {
    match s {
        MeetingStatus::Scheduled => 0,
        MeetingStatus::Held => 1,
        MeetingStatus::Cancelled => 2,
    }
}

/// The row of a contract.
pub fn contract_row(c: &Contract) -> Result<Vec<Param>> {
    Ok(vec![
        (*c.tenant().as_uuid()).into(),
        (*c.id().as_uuid()).into(),
        c.number().into(),
        (*c.partner().as_uuid()).into(),
        Param::opt_uuid(c.quotation().as_ref().map(|q| q.as_uuid())),
        day(c.term().starts_on),
        Param::or_null(c.term().renews_on.map(day_number), Kind::I32),
        version(c.version()),
        Param::json(c)?,
    ])
}

/// The row of a portal representative.
pub fn representative_row(r: &Representative) -> Result<Vec<Param>> {
    Ok(vec![
        (*r.tenant().as_uuid()).into(),
        (*r.id().as_uuid()).into(),
        (*r.partner().as_uuid()).into(),
        r.email().to_lowercase().into(),
        Param::or_null(r.token_digest().map(str::to_owned), Kind::Text),
        r.status().code().into(),
        version(r.version()),
        Param::json(r)?,
    ])
}

/// The row of a portal payment attempt.
pub fn payment_attempt_row(a: &PaymentAttempt) -> Result<Vec<Param>> {
    Ok(vec![
        (*a.tenant().as_uuid()).into(),
        (*a.id().as_uuid()).into(),
        (*a.partner().as_uuid()).into(),
        a.key().into(),
        a.status().code().into(),
        version(a.version()),
        Param::json(a)?,
    ])
}

/// The row of an attachment's metadata.
pub fn attachment_row(a: &Attachment) -> Result<Vec<Param>> {
    let target = a.target();
    let fk =
        |kind: fn(&AttachedTo) -> bool| Param::opt_uuid(kind(&target).then_some(target.uuid()));
    Ok(vec![
        (*a.tenant().as_uuid()).into(),
        (*a.id().as_uuid()).into(),
        target.kind_code().into(),
        (*target.uuid()).into(),
        fk(|t| matches!(t, AttachedTo::Lead(_))),
        fk(|t| matches!(t, AttachedTo::Partner(_))),
        fk(|t| matches!(t, AttachedTo::Request(_))),
        fk(|t| matches!(t, AttachedTo::Quotation(_))),
        fk(|t| matches!(t, AttachedTo::Contract(_))),
        Param::I64(a.at().timestamp_micros()),
        a.sha256().to_string().into(),
        Param::I64(i64::try_from(a.size()).map_err(|_| Error::invalid("size", "out of range"))?),
        version(a.version()),
        Param::json(a)?,
    ])
}

/// The row of a meeting.
pub fn meeting_row(m: &Meeting) -> Result<Vec<Param>> {
    Ok(vec![
        (*m.tenant().as_uuid()).into(),
        (*m.id().as_uuid()).into(),
        Param::opt_uuid(m.lead().as_ref().map(|l| l.as_uuid())),
        Param::I64(m.starts_at().timestamp_micros()),
        meeting_status_code(m.status()).into(),
        version(m.version()),
        Param::json(m)?,
    ])
}

/// The agenda rows of a meeting: one per user it concerns.
pub fn meeting_people_rows(m: &Meeting) -> Vec<Vec<Param>> {
    m.people()
        .into_iter()
        .map(|u| {
            vec![
                (*m.tenant().as_uuid()).into(),
                (*u.as_uuid()).into(),
                (*m.id().as_uuid()).into(),
                Param::I64(m.starts_at().timestamp_micros()),
            ]
        })
        .collect()
}

fn meeting_people(dialect: Dialect, m: &Meeting) -> impl Iterator<Item = Step> + '_ {
    meeting_people_rows(m).into_iter().map(move |r| {
        insert(
            dialect,
            &MEETING_PEOPLE,
            r,
            "meeting attendee",
            m.id().to_string(),
        )
    })
}

/// The row of a document.
pub fn document_row(d: &Document) -> Result<Vec<Param>> {
    let text = |s: &Option<String>| Param::or_null(s.clone(), Kind::Text);
    Ok(vec![
        (*d.tenant().as_uuid()).into(),
        (*d.id().as_uuid()).into(),
        d.kind().code().into(),
        d.number().into(),
        (*d.partner().as_uuid()).into(),
        day(d.issue_date()),
        Param::or_null(d.due_date().map(day_number), Kind::I32),
        Bucket::Month.index(d.issue_date()).into(),
        Bucket::Quarter.index(d.issue_date()).into(),
        Bucket::Year.index(d.issue_date()).into(),
        ccy(d.currency()),
        d.total_units().into(),
        ccy(d.rate().reporting),
        d.revenue_units().into(),
        d.cost_units().into(),
        Param::opt_uuid(d.campaign().as_ref().map(|c| c.as_uuid())),
        Param::or_null(d.corrects(), Kind::Text),
        Param::or_null(
            d.direction()
                .map(|x| matches!(x, PaymentDirection::Sent) as i16),
            Kind::I16,
        ),
        text(&d.attrs().group),
        text(&d.attrs().industry),
        Param::opt_uuid(d.attrs().owner.as_ref().map(|o| o.as_uuid())),
        text(&d.attrs().country),
        text(&d.attrs().region),
        text(&d.attrs().city),
        version(d.version()),
        document_json(d)?,
    ])
}

/// The fields of a document's JSON that [`DOCUMENTS`] also keeps as columns: its stored `doc` leaves them out, and
/// a read puts them back from the columns ([`document_doc`]). Its `lines` are [`DOCUMENT_LINES`]'.
pub const DOCUMENT_COLUMN_FIELDS: [&str; 15] = [
    "tenant",
    "id",
    "kind",
    "number",
    "partner",
    "issue_date",
    "due_date",
    "currency",
    "campaign",
    "corrects",
    "direction",
    "revenue_units",
    "cost_units",
    "attrs",
    "version",
];

/// What a document's stored `doc` keeps: the fields no column of [`DOCUMENTS`] holds as the document carries them
/// (its allocations, its total as the decimal it was given, the rate, the times, the renewal day). Generic so the
/// fields keep the types (and so the serialisation) of the document's own.
#[derive(serde::Serialize)]
struct DocumentRest<A, T, R, S, O> {
    allocations: A,
    total: T,
    rate: R,
    recorded_at: S,
    updated_at: S,
    renews_on: O,
}

/// A document's stored JSON: the document without its `lines` (they live in [`DOCUMENT_LINES`] only) nor the
/// fields its columns hold ([`DOCUMENT_COLUMN_FIELDS`]), serialised straight from the document.
fn document_json(d: &Document) -> Result<Param> {
    Param::json(&DocumentRest {
        allocations: d.allocations(),
        total: d.total(),
        rate: d.rate(),
        recorded_at: d.recorded_at(),
        updated_at: d.updated_at(),
        renews_on: d.renews_on(),
    })
}

/// The rows of a document's lines.
pub fn line_rows(d: &Document) -> Vec<Vec<Param>> {
    d.lines()
        .iter()
        .enumerate()
        .map(|(n, l)| {
            vec![
                (*d.tenant().as_uuid()).into(),
                (*d.id().as_uuid()).into(),
                (n as i32).into(),
                (*d.partner().as_uuid()).into(),
                d.kind().code().into(),
                day(d.issue_date()),
                (*l.product.as_uuid()).into(),
                Param::opt_uuid(l.category.as_ref().map(|c| c.as_uuid())),
                l.quantity_units.into(),
                l.revenue_units.into(),
                l.cost_units.into(),
                l.quantity.to_string().into(),
                l.unit_price.to_string().into(),
                l.discount_pct.to_string().into(),
                l.unit_cost.to_string().into(),
                l.net.to_string().into(),
                l.cost.to_string().into(),
            ]
        })
        .collect()
}

/// The rows of a document's allocations.
pub fn allocation_rows(d: &Document) -> Vec<Vec<Param>> {
    let kind = d
        .direction()
        .unwrap_or(PaymentDirection::Received)
        .settles()
        .code();
    d.allocations()
        .iter()
        .enumerate()
        .map(|(n, a)| {
            vec![
                (*d.tenant().as_uuid()).into(),
                (*d.id().as_uuid()).into(),
                (n as i32).into(),
                (*d.partner().as_uuid()).into(),
                kind.into(),
                a.number.clone().into(),
                decimal_to_units(a.amount).unwrap_or(0).into(),
            ]
        })
        .collect()
}

/// The row of a campaign cost entry.
pub fn cost_row(c: &CampaignCost) -> Result<Vec<Param>> {
    Ok(vec![
        (*c.tenant().as_uuid()).into(),
        (*c.id().as_uuid()).into(),
        (*c.campaign().as_uuid()).into(),
        day(c.date()),
        ccy(c.rate().reporting),
        c.amount_units().into(),
        Param::json(c)?,
    ])
}

/// The statement adding `sign` times the stored target of `t`'s campaign and partner to the campaign report's counts
/// ([`crate::target_counts`]).
fn target_counts(dialect: Dialect, t: &CampaignTarget, sign: i64) -> Sql {
    crate::target_counts::apply(
        dialect,
        t.tenant(),
        t.campaign(),
        &[*t.partner().as_uuid()],
        sign,
    )
}

/// The row of a campaign target.
pub fn target_row(t: &CampaignTarget) -> Result<Vec<Param>> {
    Ok(vec![
        (*t.tenant().as_uuid()).into(),
        (*t.campaign().as_uuid()).into(),
        (*t.partner().as_uuid()).into(),
        Param::opt_uuid(t.agent().as_ref().map(|a| a.as_uuid())),
        Param::opt_uuid(t.request().as_ref().map(|r| r.as_uuid())),
        Param::or_null(t.outcome().map(|o| o.code()), Kind::I16),
        Param::or_null(t.outcome_at().map(|x| x.timestamp_micros()), Kind::I64),
        Param::or_null(t.reached_at().map(|x| x.timestamp_micros()), Kind::I64),
        Param::I16(i16::from(t.holdout())),
        version(t.version()),
        Param::json(t)?,
    ])
}

/// One statement of a commerce write, and what its outcome means.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An `INSERT`; a duplicate key is [`Error::AlreadyExists`] naming `entity` and `key`.
    Insert {
        /// The statement.
        sql: Sql,
        /// The entity a duplicate names.
        entity: &'static str,
        /// The key a duplicate names.
        key: String,
    },
    /// A version-checked `UPDATE`; when it changes no row, `current` reads the stored version and
    /// [`missed_update`] tells a conflict from a missing record.
    Update {
        /// The statement.
        sql: Sql,
        /// `SELECT version` of the record.
        current: Sql,
        /// The entity.
        entity: &'static str,
        /// The record's key in messages.
        id: String,
        /// The version the update expects.
        expected: u64,
    },
    /// A statement whose row count does not matter.
    Run(Sql),
}

/// What an update that changed no row means: the record changed since (`Conflict`, naming the stored version) or
/// is missing.
pub fn missed_update(
    entity: &'static str,
    id: String,
    expected: u64,
    stored: Option<i64>,
) -> Error {
    match stored {
        Some(actual) => Error::Conflict {
            entity,
            id,
            expected,
            actual: actual as u64,
        },
        None => Error::not_found(entity, id),
    }
}

/// Runs statements inside an adapter's open transaction (its errors already mapped, a duplicate key as
/// [`Error::AlreadyExists`]).
pub trait Exec {
    /// Runs a statement; the rows it changed.
    fn execute(&self, sql: Sql) -> impl std::future::Future<Output = Result<u64>>;

    /// The first column of the first row of `sql` as an integer, if there is a row.
    fn first_int(&self, sql: Sql) -> impl std::future::Future<Output = Result<Option<i64>>>;

    /// The first column of every row of `sql`, as text.
    fn texts(&self, sql: Sql) -> impl std::future::Future<Output = Result<Vec<String>>>;
}

/// Applies one commerce write: runs its [`steps`] on `tx` and gives each outcome its meaning.
///
/// # Errors
///
/// Those of [`steps`]; [`Error::AlreadyExists`] naming the record; [`Error::Conflict`] or [`Error::NotFound`] when a
/// versioned update matches nothing; the adapter's own.
pub async fn apply<E: Exec>(tx: &E, dialect: Dialect, w: &CommerceWrite) -> Result<()> {
    for step in steps(dialect, w)? {
        run_step(tx, step).await?;
    }
    Ok(())
}

/// Applies one insert-only commerce write of an ingest: as [`apply`], but a document's roll-up statements are left
/// out (the ingest adds the batch's documents to the roll-ups at once with [`crate::rollup::apply_documents`], or
/// not at all during a bulk load, whose finish rebuilds them).
///
/// # Errors
///
/// As [`apply`].
pub async fn apply_ingest<E: Exec>(tx: &E, dialect: Dialect, w: &CommerceWrite) -> Result<()> {
    let steps = match w {
        CommerceWrite::InsertDocument(d) => document_insert(dialect, d)?,
        other => steps(dialect, other)?,
    };
    for step in steps {
        run_step(tx, step).await?;
    }
    Ok(())
}

/// Runs one step on `tx` and gives its outcome its meaning (see [`apply`]).
///
/// # Errors
///
/// As [`apply`].
pub async fn run_step<E: Exec>(tx: &E, step: Step) -> Result<()> {
    {
        match step {
            Step::Insert { sql, entity, key } => {
                tx.execute(sql).await.map_err(|e| match e {
                    Error::AlreadyExists { .. } => Error::AlreadyExists { entity, key },
                    other => other,
                })?;
            }
            Step::Update {
                sql,
                current,
                entity,
                id,
                expected,
            } => {
                if tx.execute(sql).await? == 0 {
                    let stored = tx.first_int(current).await?;
                    return Err(missed_update(entity, id, expected, stored));
                }
            }
            Step::Run(sql) => {
                tx.execute(sql).await?;
            }
        }
    }
    Ok(())
}

pub(crate) fn with(dialect: Dialect, text: String, params: Vec<Param>) -> Sql {
    Sql {
        dialect,
        text,
        params,
    }
}

pub(crate) fn insert(
    dialect: Dialect,
    table: &Table,
    row: Vec<Param>,
    entity: &'static str,
    key: String,
) -> Step {
    Step::Insert {
        sql: with(dialect, table.insert_sql(dialect, 1), row),
        entity,
        key,
    }
}

/// A version-checked update of `row` keyed by its first `key` values.
pub(crate) fn update(
    dialect: Dialect,
    table: &Table,
    key: usize,
    mut row: Vec<Param>,
    (entity, id, expected): (&'static str, String, u64),
    next: u64,
) -> Result<Step> {
    crate::check_next_version(entity, next, expected)?;
    let current = with(
        dialect,
        table.version_sql(dialect, key),
        row[..key].to_vec(),
    );
    row.push(version(expected));
    Ok(Step::Update {
        sql: with(dialect, table.update_sql(dialect, key), row),
        current,
        entity,
        id,
        expected,
    })
}

fn document_rows(dialect: Dialect, d: &Document) -> impl Iterator<Item = Step> + '_ {
    let lines = line_rows(d).into_iter().map(move |r| {
        insert(
            dialect,
            &DOCUMENT_LINES,
            r,
            "document line",
            d.number().to_owned(),
        )
    });
    let allocations = allocation_rows(d).into_iter().map(move |r| {
        insert(
            dialect,
            &ALLOCATIONS,
            r,
            "allocation",
            d.number().to_owned(),
        )
    });
    lines.chain(allocations)
}

/// The inserts of a new document: its row, its lines and its allocations.
fn document_insert(dialect: Dialect, d: &Document) -> Result<Vec<Step>> {
    let mut out = vec![insert(
        dialect,
        &DOCUMENTS,
        document_row(d)?,
        "document",
        format!("{} {}", d.kind().as_str(), d.number()),
    )];
    out.extend(document_rows(dialect, d));
    Ok(out)
}

/// Adds the new document `d`, just inserted, to the roll-ups (its kind and campaign decide which statements run).
fn rollup_add(dialect: Dialect, d: &Document) -> impl Iterator<Item = Step> {
    crate::rollup::apply_document(dialect, d)
        .into_iter()
        .map(Step::Run)
}

/// Adds (`sign` 1) or subtracts (-1) the stored document with `d`'s id to or from the roll-ups, every statement
/// (the stored version may differ from `d`).
fn rollup(dialect: Dialect, d: &Document, sign: i64) -> impl Iterator<Item = Step> {
    crate::rollup::apply_documents(dialect, d.tenant(), &[*d.id().as_uuid()], sign)
        .into_iter()
        .map(Step::Run)
}

/// The statements of one commerce write, in order, for the commit path.
///
/// # Errors
///
/// [`Error::Invalid`] on an update that does not carry the next version, a record that cannot be serialised, or a
/// write this version does not know.
pub fn steps(dialect: Dialect, w: &CommerceWrite) -> Result<Vec<Step>> {
    const ID: usize = 2;
    let one = |s: Step| Ok(vec![s]);
    match w {
        CommerceWrite::InsertCategory(c) => one(insert(
            dialect,
            &CATEGORIES,
            category_row(c)?,
            "product category",
            c.code().to_owned(),
        )),
        CommerceWrite::UpdateCategory {
            category: c,
            expected_version: e,
        } => one(update(
            dialect,
            &CATEGORIES,
            ID,
            category_row(c)?,
            ("product category", c.code().to_owned(), *e),
            c.version(),
        )?),
        CommerceWrite::InsertProduct(p) => one(insert(
            dialect,
            &PRODUCTS,
            product_row(p)?,
            "product",
            p.code().to_owned(),
        )),
        CommerceWrite::UpdateProduct {
            product: p,
            expected_version: e,
        } => one(update(
            dialect,
            &PRODUCTS,
            ID,
            product_row(p)?,
            ("product", p.code().to_owned(), *e),
            p.version(),
        )?),
        CommerceWrite::InsertDocument(d) => {
            let mut out = document_insert(dialect, d)?;
            out.extend(rollup_add(dialect, d));
            Ok(out)
        }
        CommerceWrite::ReplaceDocument {
            document: d,
            expected_version: e,
        } => {
            // The roll-ups lose the document as stored and gain it as replaced (its date, partner, kind or campaign
            // may differ: every statement runs, whatever `d` says).
            let mut out: Vec<Step> = rollup(dialect, d, -1).collect();
            out.push(update(
                dialect,
                &DOCUMENTS,
                ID,
                document_row(d)?,
                ("document", d.number().to_owned(), *e),
                d.version(),
            )?);
            for table in [&DOCUMENT_LINES, &ALLOCATIONS] {
                let mut sql = Sql::new(dialect);
                let t = sql.bind(*d.tenant().as_uuid());
                let id = sql.bind(*d.id().as_uuid());
                sql.text = format!(
                    "DELETE FROM {} WHERE tenant = {t} AND document = {id}",
                    table.name
                );
                out.push(Step::Run(sql));
            }
            out.extend(document_rows(dialect, d));
            // All of them again: the subtraction marked the partners whose last sale it took away, and the
            // addition recomputes them, whatever `d` is now.
            out.extend(rollup(dialect, d, 1));
            Ok(out)
        }
        CommerceWrite::InsertRate(r) => one(insert(
            dialect,
            &RATES,
            rate_row(r)?,
            "exchange rate",
            format!("{}/{} on {}", r.from(), r.to(), r.on()),
        )),
        CommerceWrite::InsertCampaign(c) => one(insert(
            dialect,
            &CAMPAIGNS,
            campaign_row(c)?,
            "campaign",
            c.id().to_string(),
        )),
        CommerceWrite::UpdateCampaign {
            campaign: c,
            expected_version: e,
        } => one(update(
            dialect,
            &CAMPAIGNS,
            ID,
            campaign_row(c)?,
            ("campaign", c.id().to_string(), *e),
            c.version(),
        )?),
        CommerceWrite::InsertCampaignCost(c) => one(insert(
            dialect,
            &CAMPAIGN_COSTS,
            cost_row(c)?,
            "campaign cost entry",
            c.id().to_string(),
        )),
        // The campaign report's counts gain the target as inserted; an update takes it out as stored and adds it as
        // updated.
        CommerceWrite::InsertCampaignTarget(t) => Ok(vec![
            insert(
                dialect,
                &CAMPAIGN_TARGETS,
                target_row(t)?,
                "campaign target",
                t.partner().to_string(),
            ),
            Step::Run(target_counts(dialect, t, 1)),
        ]),
        CommerceWrite::UpdateCampaignTarget {
            target: t,
            expected_version: e,
        } => Ok(vec![
            Step::Run(target_counts(dialect, t, -1)),
            update(
                dialect,
                &CAMPAIGN_TARGETS,
                3,
                target_row(t)?,
                ("campaign target", t.partner().to_string(), *e),
                t.version(),
            )?,
            Step::Run(target_counts(dialect, t, 1)),
        ]),
        CommerceWrite::InsertQuotation(q) => one(insert(
            dialect,
            &QUOTATIONS,
            quotation_row(q)?,
            "quotation",
            q.number().to_string(),
        )),
        CommerceWrite::UpdateQuotation {
            quotation: q,
            expected_version: e,
        } => one(update(
            dialect,
            &QUOTATIONS,
            ID,
            quotation_row(q)?,
            ("quotation", q.number().to_string(), *e),
            q.version(),
        )?),
        CommerceWrite::InsertContract(c) => one(insert(
            dialect,
            &CONTRACTS,
            contract_row(c)?,
            "contract",
            c.number().to_owned(),
        )),
        CommerceWrite::UpdateContract {
            contract: c,
            expected_version: e,
        } => one(update(
            dialect,
            &CONTRACTS,
            ID,
            contract_row(c)?,
            ("contract", c.number().to_owned(), *e),
            c.version(),
        )?),
        CommerceWrite::InsertAttachment(a) => one(insert(
            dialect,
            &ATTACHMENTS,
            attachment_row(a)?,
            "attachment",
            a.id().to_string(),
        )),
        CommerceWrite::UpdateAttachment {
            attachment: a,
            expected_version: e,
        } => one(update(
            dialect,
            &ATTACHMENTS,
            ID,
            attachment_row(a)?,
            ("attachment", a.id().to_string(), *e),
            a.version(),
        )?),
        CommerceWrite::InsertRepresentative(r) => one(insert(
            dialect,
            &REPRESENTATIVES,
            representative_row(r)?,
            "representative",
            r.id().to_string(),
        )),
        CommerceWrite::UpdateRepresentative {
            representative: r,
            expected_version: e,
        } => one(update(
            dialect,
            &REPRESENTATIVES,
            ID,
            representative_row(r)?,
            ("representative", r.id().to_string(), *e),
            r.version(),
        )?),
        CommerceWrite::InsertPaymentAttempt(a) => one(insert(
            dialect,
            &PAYMENT_ATTEMPTS,
            payment_attempt_row(a)?,
            "payment",
            a.key().to_owned(),
        )),
        CommerceWrite::UpdatePaymentAttempt {
            attempt: a,
            expected_version: e,
        } => one(update(
            dialect,
            &PAYMENT_ATTEMPTS,
            ID,
            payment_attempt_row(a)?,
            ("payment", a.key().to_owned(), *e),
            a.version(),
        )?),
        CommerceWrite::InsertMeeting(m) => {
            let mut out = vec![insert(
                dialect,
                &MEETINGS,
                meeting_row(m)?,
                "meeting",
                m.id().to_string(),
            )];
            out.extend(meeting_people(dialect, m));
            Ok(out)
        }
        CommerceWrite::UpdateMeeting {
            meeting: m,
            expected_version: e,
        } => {
            let mut out = vec![update(
                dialect,
                &MEETINGS,
                ID,
                meeting_row(m)?,
                ("meeting", m.id().to_string(), *e),
                m.version(),
            )?];
            let mut sql = Sql::new(dialect);
            let t = sql.bind(*m.tenant().as_uuid());
            let id = sql.bind(*m.id().as_uuid());
            sql.text = format!("DELETE FROM meeting_people WHERE tenant = {t} AND meeting = {id}");
            out.push(Step::Run(sql));
            out.extend(meeting_people(dialect, m));
            Ok(out)
        }
        _ => Err(Error::invalid("writes", "unsupported commerce write")),
    }
}

/// The rows an insert-only commerce write adds, per table (for bulk loading).
///
/// # Errors
///
/// [`Error::Invalid`] on an update, or a record that cannot be serialised.
pub fn ingest_rows(w: &CommerceWrite) -> Result<Vec<(&'static Table, Vec<Param>)>> {
    Ok(match w {
        CommerceWrite::InsertCategory(c) => vec![(&CATEGORIES, category_row(c)?)],
        CommerceWrite::InsertProduct(p) => vec![(&PRODUCTS, product_row(p)?)],
        CommerceWrite::InsertRate(r) => vec![(&RATES, rate_row(r)?)],
        CommerceWrite::InsertCampaign(c) => vec![(&CAMPAIGNS, campaign_row(c)?)],
        CommerceWrite::InsertDocument(d) => {
            let mut out = vec![(&DOCUMENTS, document_row(d)?)];
            out.extend(line_rows(d).into_iter().map(|r| (&DOCUMENT_LINES, r)));
            out.extend(allocation_rows(d).into_iter().map(|r| (&ALLOCATIONS, r)));
            out
        }
        CommerceWrite::InsertCampaignCost(c) => vec![(&CAMPAIGN_COSTS, cost_row(c)?)],
        CommerceWrite::InsertCampaignTarget(t) => vec![(&CAMPAIGN_TARGETS, target_row(t)?)],
        CommerceWrite::InsertQuotation(q) => vec![(&QUOTATIONS, quotation_row(q)?)],
        CommerceWrite::InsertContract(c) => vec![(&CONTRACTS, contract_row(c)?)],
        CommerceWrite::InsertAttachment(a) => vec![(&ATTACHMENTS, attachment_row(a)?)],
        CommerceWrite::InsertRepresentative(r) => {
            vec![(&REPRESENTATIVES, representative_row(r)?)]
        }
        CommerceWrite::InsertPaymentAttempt(a) => {
            vec![(&PAYMENT_ATTEMPTS, payment_attempt_row(a)?)]
        }
        CommerceWrite::InsertMeeting(m) => {
            let mut out = vec![(&MEETINGS, meeting_row(m)?)];
            out.extend(
                meeting_people_rows(m)
                    .into_iter()
                    .map(|r| (&MEETING_PEOPLE, r)),
            );
            out
        }
        _ => {
            return Err(Error::invalid(
                "writes",
                "an update; ingest takes only inserts",
            ))
        }
    })
}

// ------------------------------------------------------------------------------------------------ sums

pub(crate) fn group_column(dialect: Dialect, g: GroupBy) -> &'static str {
    // PostgreSQL groups ids as text; SQLite returns the blob, which the adapter turns into the same text.
    match (dialect, g) {
        (Dialect::Postgres, GroupBy::Customer) => "partner::text",
        (Dialect::Postgres, GroupBy::Owner) => "owner::text",
        (Dialect::Postgres, GroupBy::Campaign) => "campaign::text",
        _ => stored_column(g),
    }
}

/// The `documents` column holding grouping `g`'s value, as both schemas store it.
pub(crate) fn stored_column(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Customer => "partner",
        GroupBy::Group => "grp",
        GroupBy::Industry => "industry",
        GroupBy::Country => "country",
        GroupBy::Region => "region",
        GroupBy::City => "city",
        GroupBy::Owner => "owner",
        GroupBy::Campaign => "campaign",
    }
}

/// `(key, bucket, revenue units, cost units, invoices)` of the sales in `q`'s period and reporting currency,
/// grouped by `q`'s key and bucket; ranked (best or worst `n` by profit) when `q` asks and has no bucket, else
/// ordered by key and bucket (nulls first). The whole months are read from the roll-ups
/// ([`crate::rollup::sales_rows`]), the partial months at the period's edges from the documents.
pub fn profit_sums(dialect: Dialect, tenant: TenantId, q: &SumsQuery) -> Sql {
    profit_sums_sql(dialect, tenant, q, true)
}

/// [`profit_sums`], with its key-and-bucket order left to the caller when `ordered` is false (a ranked query keeps
/// its `ORDER BY … LIMIT` either way: the rank decides which rows come back).
fn profit_sums_sql(dialect: Dialect, tenant: TenantId, q: &SumsQuery, ordered: bool) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let r = sql.bind(q.reporting.code());
    let rows = crate::rollup::sales_rows(
        &mut sql,
        crate::rollup::SalesRows {
            tenant: &t,
            reporting: &r,
            group_by: q.group_by,
            bucket: q.bucket,
            key: None,
            period: q.period,
        },
    );
    // PostgreSQL orders by an expression of output names only from an outer query, and sorts NULLs last unless
    // told; SQLite reads output names in ORDER BY expressions and sorts NULLs first.
    let (open, close, nulls) = match dialect {
        Dialect::Sqlite => ("", "", ""),
        Dialect::Postgres => (
            "SELECT k, bk, rev, cost, n FROM (",
            ") AS sums",
            " NULLS FIRST",
        ),
    };
    let k = dialect.text("k");
    // The rank's n is a parameter, so a statement cache holds one statement per shape, not per n.
    let order = match q.rank.filter(|_| q.bucket.is_none()) {
        Some(rank) => {
            let n = sql.bind(i64::from(rank.n));
            let dir = if rank.order == RankOrder::Top {
                "DESC"
            } else {
                "ASC"
            };
            format!("ORDER BY rev - cost {dir}, {k} ASC{nulls} LIMIT {n}")
        }
        // SQLite orders by the grouped terms themselves, so the GROUP BY's sort serves the ORDER BY too (no second
        // sort): the absent key is the empty text, which sorts before every other text and every id's blob, as
        // `None` sorts first. PostgreSQL orders the outer query's key.
        None if !ordered => String::new(),
        None if dialect == Dialect::Sqlite => "ORDER BY rk, rb".to_string(),
        None => format!("ORDER BY {k}{nulls}, bk{nulls}"),
    };
    // A group whose documents all left (replaced into another month) keeps a roll-up row of zeros: it has no
    // document, so it has no row.
    sql.text = format!(
        "{open}SELECT NULLIF(rk, '') AS k, rb AS bk, sum(rrev) AS rev, sum(rcost) AS cost, sum(rn) AS n \
         FROM ({rows}) AS s GROUP BY rk, rb HAVING sum(rd) > 0{close} {order}"
    );
    sql
}

/// The statements [`read_profit_sums`] merges on SQLite: `(key, bucket, revenue units, cost units, invoices,
/// documents)` of the roll-up rows and edge documents in `q`'s period and reporting currency, a statement per whole
/// month and edge, each in key order ([`crate::rollup::sales_arms`]).
pub fn profit_arms(tenant: TenantId, q: &SumsQuery) -> Vec<Sql> {
    crate::rollup::sales_arms(
        Dialect::Sqlite,
        tenant,
        q.reporting,
        q.group_by,
        q.bucket,
        q.period,
    )
}

/// The statements of a campaign's report; each returns one row of counts or unit sums (never NULL) unless said.
#[derive(Debug, Clone)]
pub struct CampaignSumsSql {
    /// `(targets, reached in the period)`.
    pub targets: Sql,
    /// `(outcome code, count)` of the outcomes recorded in the period, one row each.
    pub outcomes: Sql,
    /// `(leads the campaign brought in the period, won)`: one range of the `leads_by_campaign` index.
    pub leads: Sql,
    /// `(revenue units, cost units)` of its sales.
    pub money: Sql,
    /// `(customers invoiced)`: partners whose sales sum to more than zero (kept per calendar bucket, see
    /// [`crate::rollup::campaign_span`]; summed from the documents for any other period).
    pub invoiced: Sql,
    /// `(units spent)`.
    pub costs: Sql,
}

/// The statements of [`crm_core::commerce::CommerceStore::campaign_sums`].
pub fn campaign_sums(
    dialect: Dialect,
    tenant: TenantId,
    campaign: CampaignId,
    period: Option<Period>,
    reporting: Currency,
) -> CampaignSumsSql {
    let (df, dt) = day_bounds(period);
    let (mf, mt) = micro_bounds(period);
    let p = |n| dialect.placeholder(n);
    let (p1, p2, p3, p4, p5) = (p(1), p(2), p(3), p(4), p(5));
    let by_micros = |text: String, campaign: Param| {
        let params = vec![(*tenant.as_uuid()).into(), campaign, mf.into(), mt.into()];
        with(dialect, text, params)
    };
    let by_days = |text: String| {
        let params = vec![
            (*tenant.as_uuid()).into(),
            (*campaign.as_uuid()).into(),
            reporting.code().into(),
            Param::Day(df),
            Param::Day(dt),
        ];
        with(dialect, text, params)
    };
    let sales = format!(
        "FROM documents WHERE tenant = {p1} AND campaign = {p2} AND kind IN (0, 1) AND reporting = {p3} \
         AND issue_day BETWEEN {p4} AND {p5}"
    );
    let created = match dialect {
        Dialect::Sqlite => "created_at",
        Dialect::Postgres => "created_us",
    };
    // The targets are counted per day ([`crate::target_counts`]): a timestamp is in the period exactly when its day
    // is.
    let [targets, outcomes] =
        crate::target_counts::report_sql(dialect, tenant, Some(campaign), (df, dt));
    CampaignSumsSql {
        targets,
        outcomes,
        leads: by_micros(
            format!(
                "SELECT count(*), {} FROM leads WHERE tenant = {p1} AND campaign = {p2} AND status <> 3 \
                 AND {created} >= {p3} AND {created} < {p4}",
                dialect.filtered("count", "1", "status = 1")
            ),
            Param::Uuid(*campaign.as_uuid()),
        ),
        money: campaign_money(dialect, tenant, campaign, period, reporting),
        invoiced: match crate::rollup::campaign_span(period) {
            // A whole calendar month, quarter or year, or all time: the count kept per bucket.
            Some((grain, idx)) => with(
                dialect,
                format!(
                    "SELECT COALESCE(max(customers), 0) FROM {} WHERE tenant = {p1} AND reporting = {p2} \
                     AND grain = {p3} AND idx = {p4} AND campaign = {p5}",
                    crate::rollup::CAMPAIGN_REACH
                ),
                vec![
                    (*tenant.as_uuid()).into(),
                    reporting.code().into(),
                    Param::I16(grain),
                    Param::I64(idx),
                    Param::Uuid(*campaign.as_uuid()),
                ],
            ),
            None => by_days(format!(
                "SELECT count(*) FROM (SELECT partner {sales} GROUP BY partner HAVING sum(revenue_units) > 0) AS invoiced"
            )),
        },
        costs: by_days(format!(
            "SELECT COALESCE(sum(amount_units), 0) FROM campaign_costs WHERE tenant = {p1} AND campaign = {p2} \
             AND reporting = {p3} AND day BETWEEN {p4} AND {p5}"
        )),
    }
}

/// `(revenue units, cost units)` of a campaign's sales in `period` (all time when `None`): the whole months from
/// the roll-ups, the edges from the documents.
fn campaign_money(
    dialect: Dialect,
    tenant: TenantId,
    campaign: CampaignId,
    period: Option<Period>,
    reporting: Currency,
) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let r = sql.bind(reporting.code());
    // The roll-ups hold the campaign as PostgreSQL groups it (text) or as SQLite stores it (the id's blob).
    let rolled = match dialect {
        Dialect::Postgres => Param::Text(campaign.to_string()),
        Dialect::Sqlite => Param::Uuid(*campaign.as_uuid()),
    };
    let stored = Param::Uuid(*campaign.as_uuid());
    let rows = crate::rollup::sales_rows(
        &mut sql,
        crate::rollup::SalesRows {
            tenant: &t,
            reporting: &r,
            group_by: GroupBy::Campaign,
            bucket: None,
            key: Some((rolled, stored)),
            period: period.unwrap_or(Period::ALL),
        },
    );
    sql.text = format!("SELECT COALESCE(sum(rrev), 0), COALESCE(sum(rcost), 0) FROM ({rows}) AS s");
    sql
}

// ------------------------------------------------------------------------------------------------ reads

/// [`CommerceStore::fetch_commerce`](crm_core::commerce::CommerceStore::fetch_commerce) on a [`Runner`].
pub async fn fetch_commerce<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    key: &CommerceKey,
) -> Result<Vec<CommerceRecord>> {
    if let CommerceKey::Balances { partner, as_of } = key {
        let balances = balances(r, tenant, *partner, *as_of).await?;
        return Ok(balances.into_iter().map(CommerceRecord::Balance).collect());
    }
    let (sql, doc) = crate::fetch::commerce_key(r.dialect(), tenant, key)?;
    let rows = if short_key(key) {
        r.rows_short(vec![sql]).await?.pop().unwrap_or_default()
    } else {
        r.rows(sql, false).await?
    };
    rows.iter()
        .map(|row| doc.commerce_record(row[0].text(doc.entity())?))
        .collect()
}

/// Whether `key` is a short read: one record by its key or the few a document names (its products, their
/// categories), run on the caller's thread without the hop to a reader ([`Runner::rows_short`]): recording a
/// document reads its number, its products and its rate so, before its write. Lists hop.
fn short_key(key: &CommerceKey) -> bool {
    matches!(
        key,
        CommerceKey::Category(_)
            | CommerceKey::CategoryCode(_)
            | CommerceKey::Categories(_)
            | CommerceKey::Product(_)
            | CommerceKey::ProductCode(_)
            | CommerceKey::Products(_)
            | CommerceKey::Document(_)
            | CommerceKey::DocumentNumber(..)
            | CommerceKey::Rate { .. }
            | CommerceKey::Campaign(_)
            | CommerceKey::CampaignTargetOf(_)
            | CommerceKey::CampaignTarget { .. }
            | CommerceKey::Quotation(_)
            | CommerceKey::Contract(_)
            | CommerceKey::Attachment(_)
            | CommerceKey::Meeting(_)
            | CommerceKey::Representative(_)
            | CommerceKey::RepresentativeByToken(_)
            | CommerceKey::PaymentAttemptByKey(_)
    )
}

/// [`CommerceStore::campaign_targets`](crm_core::commerce::CommerceStore::campaign_targets) on a [`Runner`]: keyset pages by partner.
pub async fn campaign_targets<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    campaign: CampaignId,
    page: &PageRequest,
) -> Result<Page<CampaignTarget>> {
    page.validate()?;
    let after = match &page.after {
        Some(cur) => cur.decode()?.1,
        None => Uuid::nil(),
    };
    let dialect = r.dialect();
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let c = sql.bind(*campaign.as_uuid());
    let a = sql.bind(after);
    let l = sql.bind(i64::from(page.limit) + 1);
    sql.text = format!(
        "SELECT {} FROM campaign_targets WHERE tenant = {t} AND campaign = {c} AND partner > {a} \
         ORDER BY partner LIMIT {l}",
        dialect.doc()
    );
    let items = r
        .rows(sql, false)
        .await?
        .iter()
        .map(|row| crate::fetch::Doc::parse_as(row[0].text("campaign target")?, "campaign target"))
        .collect::<Result<Vec<CampaignTarget>>>()?;
    Ok(crate::paginate(items, page.limit, |t| {
        (0, *t.partner().as_uuid())
    }))
}

/// [`CommerceStore::segment`](crm_core::commerce::CommerceStore::segment) on a [`Runner`].
pub async fn segment<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    criteria: &Criteria,
    as_of: NaiveDate,
    reporting: Currency,
) -> Result<Vec<SegmentMember>> {
    let sql = crate::segment::segment_sql(r.dialect(), tenant, criteria, as_of, reporting)?;
    // Every criteria tree is its own statement: run it once, without filling a statement cache.
    r.rows(sql, true)
        .await?
        .iter()
        .map(|row| {
            Ok(SegmentMember {
                partner: PartnerId::from_uuid(row[0].uuid("partner")?),
                name: row[1].text("partner name")?.to_owned(),
            })
        })
        .collect()
}

/// [`CommerceStore::profit_sums`](crm_core::commerce::CommerceStore::profit_sums) on a [`Runner`].
pub async fn read_profit_sums<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    query: &SumsQuery,
) -> Result<Vec<ProfitSums>> {
    if r.dialect() == Dialect::Sqlite {
        // SQLite groups through its sorter (about 0.7 µs a row at M): each month's roll-up rows come in key order
        // from its primary key instead, and the months and edges are merged as they are stepped, then ranked or
        // ordered here as the statement would.
        let summed = r.rows_merged(profit_arms(tenant, query), 2).await?;
        let mut out = Vec::with_capacity(summed.len());
        for (key, sums) in summed.groups() {
            let &[rev, cost, n, docs] = sums else {
                return Err(corrupt("profit sums", "not four sums"));
            };
            // A group whose documents all left (replaced into another month) keeps a roll-up row of zeros: it has
            // no document, so it has no row.
            if docs <= 0 {
                continue;
            }
            out.push(ProfitSums {
                key: match &key[0] {
                    Cell::Text(t) if t.is_empty() => None,
                    k => k.opt_text(),
                },
                bucket: key[1].opt_int("bucket")?.map(|b| b as i64),
                revenue_units: rev,
                cost_units: cost,
                invoices: u64::try_from(n).map_err(|e| corrupt("invoices", e))?,
            });
        }
        crm_core::commerce::order_sums(&mut out, query);
        return Ok(out);
    }
    // PostgreSQL groups by hashing when nothing asks it for the groups in order; sorting a group per customer by
    // its text key (in the C collation, nulls first) cost it a second sort, which spilled to disk at MID (28k
    // groups: 75 ms against 60 ms without the `ORDER BY`, `EXPLAIN ANALYZE`), where sorting them here is a
    // couple of milliseconds. A ranked query keeps its `ORDER BY … LIMIT` (only `n` rows), which `order_sums`
    // leaves as it is.
    let mut out = r
        .rows(profit_sums_sql(r.dialect(), tenant, query, false), false)
        .await?
        .iter()
        .map(|row| {
            Ok(ProfitSums {
                key: row[0].opt_text(),
                bucket: row[1].opt_int("bucket")?.map(|b| b as i64),
                revenue_units: row[2].int("sum of units")?,
                cost_units: row[3].int("sum of units")?,
                invoices: row[4].count("invoices")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    crm_core::commerce::order_sums(&mut out, query);
    Ok(out)
}

/// [`CommerceStore::campaign_sums`](crm_core::commerce::CommerceStore::campaign_sums) on a [`Runner`].
pub async fn read_campaign_sums<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    campaign: CampaignId,
    period: Option<Period>,
    reporting: Currency,
) -> Result<CampaignSums> {
    let q = campaign_sums(r.dialect(), tenant, campaign, period, reporting);
    let first = |rows: Vec<Vec<Cell>>| {
        rows.into_iter()
            .next()
            .ok_or_else(|| corrupt("campaign sums", "no row"))
    };
    // One batch: on SQLite one hop to a reader and one snapshot for all six sums.
    let [targets, outcomes, leads, money, invoiced, costs]: [Vec<Vec<Cell>>; 6] = r
        .rows_batch(vec![
            q.targets, q.outcomes, q.leads, q.money, q.invoiced, q.costs,
        ])
        .await?
        .try_into()
        .map_err(|_| corrupt("campaign sums", "a statement gave no result"))?;
    let mut s = CampaignSums::default();
    let row = first(targets)?;
    (s.targets, s.reached) = (row[0].count("targets")?, row[1].count("reached")?);
    for row in outcomes {
        s.outcomes
            .insert(outcome_of(&row[0])?, row[1].count("outcomes")?);
    }
    let row = first(leads)?;
    (s.leads, s.won) = (row[0].count("leads")?, row[1].count("won")?);
    let row = first(money)?;
    s.revenue_units = row[0].int("sum of units")?;
    s.cost_units = row[1].int("sum of units")?;
    let row = first(invoiced)?;
    s.invoiced_customers = row[0].count("invoiced customers")?;
    let row = first(costs)?;
    s.campaign_cost_units = row[0].int("sum of units")?;
    Ok(s)
}

/// The statements of [`CampaignRead::Sums`](crm_core::commerce::CampaignRead::Sums), in order: the tenant's
/// campaigns `(id, name)`, then [`CampaignSumsSql`]'s six measures for every campaign at once, each row led by its
/// campaign (the money as [`profit_sums`] groups it by campaign). Each measure is one grouped statement, so the
/// report of every campaign costs what one campaign's did.
pub fn campaigns_sums(
    dialect: Dialect,
    tenant: TenantId,
    period: Option<Period>,
    reporting: Currency,
) -> Vec<Sql> {
    let (df, dt) = day_bounds(period);
    let (mf, mt) = micro_bounds(period);
    let p = |n| dialect.placeholder(n);
    let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
    let t = || Param::Uuid(*tenant.as_uuid());
    let by_micros = |text: String| with(dialect, text, vec![t(), mf.into(), mt.into()]);
    let by_days = |text: String| {
        let params = vec![t(), reporting.code().into(), Param::Day(df), Param::Day(dt)];
        with(dialect, text, params)
    };
    let created = match dialect {
        Dialect::Sqlite => "created_at",
        Dialect::Postgres => "created_us",
    };
    let name = dialect.json_text("doc", &["name"]);
    let money = profit_sums(
        dialect,
        tenant,
        &SumsQuery::by(GroupBy::Campaign, period.unwrap_or(Period::ALL), reporting),
    );
    // Driven from the campaigns, each one's counts per day ([`crate::target_counts`]).
    let [targets, outcomes] = crate::target_counts::report_sql(dialect, tenant, None, (df, dt));
    vec![
        with(
            dialect,
            format!("SELECT id, {name} FROM campaigns WHERE tenant = {p1} ORDER BY id"),
            vec![t()],
        ),
        targets,
        outcomes,
        // Driven from the campaigns too: each one's leads are one range of `leads_by_campaign`, read from the
        // index alone.
        by_micros(format!(
            "SELECT c.id, count(*), {} FROM campaigns c CROSS JOIN leads l WHERE c.tenant = {p1} \
             AND l.tenant = c.tenant AND l.campaign = c.id AND l.campaign IS NOT NULL AND l.status <> 3 \
             AND l.{created} >= {p2} AND l.{created} < {p3} GROUP BY c.id",
            dialect.filtered("count", "1", "l.status = 1")
        )),
        money,
        match crate::rollup::campaign_span(period) {
            // A whole calendar month, quarter or year, or all time: the counts kept per bucket, one range.
            Some((grain, idx)) => with(
                dialect,
                format!(
                    "SELECT campaign, customers FROM {} WHERE tenant = {p1} AND reporting = {p2} \
                     AND grain = {p3} AND idx = {p4}",
                    crate::rollup::CAMPAIGN_REACH
                ),
                vec![
                    t(),
                    reporting.code().into(),
                    Param::I16(grain),
                    Param::I64(idx),
                ],
            ),
            // Driven from the campaigns, so each one's documents are one range of `documents_campaign` by issue
            // day (SQLite keeps a CROSS JOIN's order; PostgreSQL plans it as any inner join).
            None => by_days(format!(
                "SELECT campaign, count(*) FROM (SELECT d.campaign, d.partner FROM campaigns c CROSS JOIN documents d \
                 WHERE c.tenant = {p1} AND d.tenant = c.tenant AND d.campaign = c.id AND d.campaign IS NOT NULL \
                 AND d.kind IN (0, 1) AND d.reporting = {p2} AND d.issue_day BETWEEN {p3} AND {p4} \
                 GROUP BY d.campaign, d.partner HAVING sum(d.revenue_units) > 0) AS invoiced GROUP BY campaign"
            )),
        },
        by_days(format!(
            "SELECT campaign, COALESCE(sum(amount_units), 0) FROM campaign_costs WHERE tenant = {p1} \
             AND reporting = {p2} AND day BETWEEN {p3} AND {p4} GROUP BY campaign"
        )),
    ]
}

/// [`CampaignRead::Sums`](crm_core::commerce::CampaignRead::Sums) on a [`Runner`]: every campaign of the tenant
/// with its sums, by campaign id, in one batch (one snapshot).
pub async fn read_campaigns_sums<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    period: Option<Period>,
    reporting: Currency,
) -> Result<Vec<CampaignTotals>> {
    let statements = campaigns_sums(r.dialect(), tenant, period, reporting);
    let [campaigns, targets, outcomes, leads, money, invoiced, costs]: [Vec<Vec<Cell>>; 7] = r
        .rows_batch(statements)
        .await?
        .try_into()
        .map_err(|_| corrupt("campaign sums", "a statement gave no result"))?;
    let mut by: std::collections::BTreeMap<Uuid, CampaignTotals> = Default::default();
    for row in campaigns {
        let id = row[0].uuid("campaign")?;
        let name = row[1].text("campaign name")?.to_owned();
        let campaign = CampaignId::from_uuid(id);
        let sums = CampaignSums::default();
        by.insert(
            id,
            CampaignTotals {
                campaign,
                name,
                sums,
            },
        );
    }
    // A row of no listed campaign (the money of the sales without one) is skipped.
    let parse = |cell: &Cell| cell.opt_text().and_then(|t| Uuid::parse_str(&t).ok());
    for row in &targets {
        if let Some(c) = by.get_mut(&row[0].uuid("campaign")?) {
            (c.sums.targets, c.sums.reached) = (row[1].count("targets")?, row[2].count("reached")?);
        }
    }
    for row in &outcomes {
        if let Some(c) = by.get_mut(&row[0].uuid("campaign")?) {
            c.sums
                .outcomes
                .insert(outcome_of(&row[1])?, row[2].count("outcomes")?);
        }
    }
    for row in &leads {
        if let Some(c) = by.get_mut(&row[0].uuid("campaign")?) {
            (c.sums.leads, c.sums.won) = (row[1].count("leads")?, row[2].count("won")?);
        }
    }
    for row in &money {
        if let Some(c) = parse(&row[0]).and_then(|id| by.get_mut(&id)) {
            c.sums.revenue_units = row[2].int("sum of units")?;
            c.sums.cost_units = row[3].int("sum of units")?;
        }
    }
    for row in &invoiced {
        if let Some(c) = by.get_mut(&row[0].uuid("campaign")?) {
            c.sums.invoiced_customers = row[1].count("invoiced customers")?;
        }
    }
    for row in &costs {
        if let Some(c) = by.get_mut(&row[0].uuid("campaign")?) {
            c.sums.campaign_cost_units = row[1].int("sum of units")?;
        }
    }
    Ok(by.into_values().collect())
}

fn outcome_of(cell: &Cell) -> Result<OutcomeKind> {
    let code = cell.int("outcome")?;
    i16::try_from(code)
        .ok()
        .and_then(OutcomeKind::from_code)
        .ok_or_else(|| corrupt("outcome", code))
}

/// [`CampaignMeasuresExt::progress`](crm_core::commerce::CampaignMeasuresExt::progress) on a [`Runner`].
pub async fn progress<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    campaign: CampaignId,
) -> Result<Vec<Progress>> {
    let sql = crate::report::progress(r.dialect(), tenant, campaign);
    let mut tallies = Vec::new();
    for row in r.rows(sql, false).await? {
        let agent = row[0].opt_uuid("agent")?.map(UserId::from_uuid);
        let outcome = match &row[1] {
            Cell::Null => None,
            cell => Some(outcome_of(cell)?),
        };
        let send = match &row[2] {
            Cell::Null => None,
            cell => {
                let word = cell.text("send status")?;
                Some(
                    crm_core::commerce::send::SendStatus::parse(word)
                        .ok_or_else(|| corrupt("send status", word))?,
                )
            }
        };
        tallies.push((agent, outcome, send, row[3].count("targets")?));
    }
    Ok(Progress::tally(tallies))
}

/// [`CommerceStore::campaign_measures`](crm_core::commerce::CommerceStore::campaign_measures) on a [`Runner`].
pub async fn campaign_measures<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    read: &crm_core::commerce::CampaignRead,
) -> Result<crm_core::commerce::CampaignMeasure> {
    use crm_core::commerce::{CampaignMeasure as M, CampaignRead as Q};
    Ok(match read {
        Q::Progress(campaign) => M::Progress(progress(r, tenant, *campaign).await?),
        Q::Outcomes { campaign, query } => {
            M::Outcomes(crate::uplift::campaign_outcomes(r, tenant, *campaign, query).await?)
        }
        Q::Attribution(scope) => {
            M::Attribution(crate::attribution::attribution_inputs(r, tenant, scope).await?)
        }
        Q::Sums { period, reporting } => {
            M::Sums(read_campaigns_sums(r, tenant, *period, *reporting).await?)
        }
        other => {
            return Err(Error::invalid(
                "read",
                format!("{other:?} is not a measure this adapter knows"),
            ))
        }
    })
}

/// [`CommerceStore::open_items`](crm_core::commerce::CommerceStore::open_items) on a [`Runner`].
pub async fn open_items<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    partner: PartnerId,
    as_of: NaiveDate,
) -> Result<Vec<OpenItem>> {
    let sql = crate::report::open_items(r.dialect(), tenant, partner, as_of);
    let mut out = Vec::new();
    for row in r.rows(sql, false).await? {
        let d: Document = crate::fetch::Doc::parse_as(row[0].text("document")?, "document")?;
        out.push(OpenItem::of(&d, row[1].int("open units")?, as_of));
    }
    crm_core::commerce::order_open_items(&mut out);
    Ok(out)
}

/// [`CommerceStoreExt::balances`](crm_core::commerce::CommerceStoreExt::balances) (`CommerceKey::Balances`) on a [`Runner`].
pub async fn balances<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    partner: PartnerId,
    as_of: NaiveDate,
) -> Result<Vec<Balance>> {
    // The sums and the overdue amounts in one batch: one snapshot, one hop on SQLite.
    let statements = vec![
        crate::report::balances(r.dialect(), tenant, partner, as_of),
        crate::report::overdue(r.dialect(), tenant, partner, as_of),
    ];
    let mut read = r.rows_batch(statements).await?.into_iter();
    let (rows, overdue) = (
        read.next().unwrap_or_default(),
        read.next().unwrap_or_default(),
    );
    let currency = |c: &Cell| {
        let code = c.text("currency")?;
        Currency::parse(code.trim()).map_err(|e| corrupt("currency", e))
    };
    let mut late = std::collections::BTreeMap::new();
    for row in &overdue {
        late.insert(currency(&row[0])?, row[1].int("overdue units")?);
    }
    rows.iter()
        .map(|row| {
            let c = currency(&row[0])?;
            Ok(Balance {
                currency: c,
                receivable: units_to_decimal(row[1].int("receivable units")?),
                payable: units_to_decimal(row[2].int("payable units")?),
                overdue: units_to_decimal(late.get(&c).copied().unwrap_or(0)),
            })
        })
        .collect()
}

/// `impl CommerceStore for $store` (a [`Runner`]): every method is the shared read of this module of the same
/// name, so both adapters answer every report with the same statements and the same decoding.
#[macro_export]
macro_rules! commerce_store {
    ($store:ty) => {
        $crate::__forward_impl!($store: CommerceStore {
            fn fetch_commerce(tenant: TenantId, key: &CommerceKey) -> Result<Vec<CommerceRecord>> = $crate::commerce::fetch_commerce;
            fn campaign_targets(tenant: TenantId, campaign: CampaignId, page: &PageRequest) -> Result<Page<CampaignTarget>> = $crate::commerce::campaign_targets;
            fn segment(tenant: TenantId, criteria: &Criteria, as_of: NaiveDate, reporting: Currency) -> Result<Vec<SegmentMember>> = $crate::commerce::segment;
            fn profit_sums(tenant: TenantId, query: &SumsQuery) -> Result<Vec<ProfitSums>> = $crate::commerce::read_profit_sums;
            fn campaign_sums(tenant: TenantId, campaign: CampaignId, period: Option<Period>, reporting: Currency) -> Result<CampaignSums> = $crate::commerce::read_campaign_sums;
            fn campaign_measures(tenant: TenantId, read: &CampaignRead) -> Result<CampaignMeasure> = $crate::commerce::campaign_measures;
            fn open_items(tenant: TenantId, partner: PartnerId, as_of: NaiveDate) -> Result<Vec<OpenItem>> = $crate::commerce::open_items;
            fn rollups(tenant: TenantId, action: RollupAction) -> Result<RollupCheck> = $crate::bulk::rollups;
        });
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of a document is stored once: in a column ([`DOCUMENT_COLUMN_FIELDS`]), in `document_lines`, or
    /// in the stored `doc`. A field added to `Document` and to none of them would be lost on the first read.
    #[test]
    fn a_documents_fields_are_each_stored_in_one_place() {
        let d: Document = serde_json::from_str(
            r#"{"allocations":[{"kind":"invoice","number":"INV-1","amount":"10"}],
                "attrs":{"city":"Cluj","country":"RO","group":"g","industry":null,
                         "owner":"0184d022-0000-7e96-bc81-214a33eea209","region":null},
                "campaign":null,"corrects":null,"cost_units":3,"currency":"EUR","direction":"received",
                "due_date":"2025-02-01","id":"01856d33-f600-72e3-b67b-4bd1a59379bd","issue_date":"2025-01-01",
                "kind":"payment","number":"P-1","partner":"018503a1-a0b7-7341-b181-fa9fe2be369d",
                "rate":{"rate":"1","reporting":"EUR"},"recorded_at":"2025-01-01T12:00:00Z",
                "renews_on":"2026-01-01","revenue_units":0,"tenant":"0184d022-0000-7891-b837-9561aaec8ef1",
                "total":"10.50","updated_at":"2025-01-02T12:00:00Z","version":2,"lines":[]}"#,
        )
        .expect("a document");
        let keys = |v: serde_json::Value| -> std::collections::BTreeSet<String> {
            match v {
                serde_json::Value::Object(m) => m.keys().cloned().collect(),
                other => panic!("not an object: {other}"),
            }
        };
        let all = keys(serde_json::to_value(&d).unwrap());
        let Param::Json(stored) = document_json(&d).unwrap() else {
            panic!("a document's doc is JSON")
        };
        let stored: serde_json::Value = serde_json::from_str(stored.as_str()).unwrap();
        assert_eq!(stored["total"], "10.50", "the total as it was given");
        assert_eq!(stored["renews_on"], "2026-01-01");
        let kept = keys(stored);
        let columns: std::collections::BTreeSet<String> = DOCUMENT_COLUMN_FIELDS
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert!(kept.is_disjoint(&columns), "{kept:?}");
        let mut placed: std::collections::BTreeSet<String> =
            kept.union(&columns).cloned().collect();
        placed.insert("lines".into());
        assert_eq!(placed, all);
        // And every read puts each of the columns' fields back.
        let sqlite = document_doc(Dialect::Sqlite, "d");
        let postgres = document_doc(Dialect::Postgres, "d");
        for f in DOCUMENT_COLUMN_FIELDS {
            assert!(sqlite.contains(&format!("'$.{f}', ")), "{f}: {sqlite}");
            assert!(postgres.contains(&format!("'{f}', ")), "{f}: {postgres}");
        }
    }

    #[test]
    fn updates_set_what_follows_the_key_and_check_the_version() {
        assert_eq!(
            CAMPAIGNS.update_sql(Dialect::Postgres, 2),
            "UPDATE campaigns SET status = $3, version = $4, doc = $5 WHERE tenant = $1 AND id = $2 AND version = $6"
        );
        assert_eq!(
            CAMPAIGN_TARGETS.version_sql(Dialect::Sqlite, 3),
            "SELECT version FROM campaign_targets WHERE tenant = ?1 AND campaign = ?2 AND partner = ?3"
        );
        assert_eq!(
            RATES.insert_sql(Dialect::Sqlite, 2),
            "INSERT INTO exchange_rates (tenant, from_ccy, to_ccy, day, doc) VALUES (?1, ?2, ?3, ?4, ?5), \
             (?6, ?7, ?8, ?9, ?10)"
        );
    }
}
