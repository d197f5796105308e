//! Records ⇄ rows: the column lists of every table and the values a record writes into them.
//!
//! One definition serves the three write paths: the single-row `INSERT` of [`crate::PgStore`]'s commit, the binary
//! `COPY` of ingest and its multi-row `INSERT` fallback. Reads decode the `doc` column, the record's serde JSON.

use crate::error::corrupt;
use crm_core::dedupe::DedupeKey;
use crm_core::event::{CommentTarget, DomainEvent, RequestStatus, StageHistoryEntry};
use crm_core::lead::Lead;
use crm_core::partner::Partner;
use crm_core::pipeline::{LostReason, Pipeline};
use crm_core::request::{Comment, Request};
use crm_core::store::request_sort_key;
use crm_core::time::to_micros;
use crm_core::Result;
use crm_storage_sql::Kind;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use tokio_postgres::types::{Json, ToSql, Type};
use uuid::Uuid;

/// One value of a row.
/// A bound parameter.
pub type Value = Box<dyn ToSql + Sync + Send>;

pub(crate) use crm_storage_sql::Table;

/// The PostgreSQL type of a column kind (for binary COPY).
pub(crate) fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Uuid => Type::UUID,
        Kind::Text => Type::TEXT,
        Kind::Ccy => Type::BPCHAR,
        Kind::I16 => Type::INT2,
        Kind::I32 => Type::INT4,
        Kind::I64 => Type::INT8,
        Kind::Bool => Type::BOOL,
        Kind::Numeric => Type::NUMERIC,
        Kind::Json => Type::JSONB,
    }
}

/// `COPY t (cols) FROM STDIN (FORMAT binary)`.
pub(crate) fn copy_sql(table: &Table) -> String {
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.name,
        table.column_list()
    )
}

/// The column types of a table.
pub(crate) fn types(table: &Table) -> Vec<Type> {
    table.columns.iter().map(|c| pg_type(c.1)).collect()
}

pub(crate) const PARTNERS: Table = crm_storage_sql::table!("partners" {
    tenant: Uuid, id: Uuid, name: Text, search: Text, version: I64, created_us: I64,
    updated_us: I64, doc: Json, host_ref: Text, merged_into: Uuid,
});

pub(crate) const PARTNER_KEYS: Table = crm_storage_sql::table!("partner_keys" {
    tenant: Uuid, key: Text, partner: Uuid,
});

pub(crate) const PIPELINES: Table = crm_storage_sql::table!("pipelines" {
    tenant: Uuid, id: Uuid, created_us: I64, doc: Json,
});

pub(crate) const LOST_REASONS: Table = crm_storage_sql::table!("lost_reasons" {
    tenant: Uuid, id: Uuid, name: Text, doc: Json,
});

pub(crate) const LEADS: Table = crm_storage_sql::table!("leads" {
    tenant: Uuid, id: Uuid, partner: Uuid, pipeline: Uuid, stage: Uuid, status: I16, owner: Uuid,
    search: Text, expected: Numeric, currency: Ccy, revenue_key: I64, probability: I16,
    created_us: I64, updated_us: I64, version: I64, doc: Json, host_ref: Text, campaign: Uuid,
});

pub(crate) const LEAD_TAGS: Table = crm_storage_sql::table!("lead_tags" {
    tenant: Uuid, tag: Text, lead: Uuid,
});

pub(crate) const REQUESTS: Table = crm_storage_sql::table!("requests" {
    tenant: Uuid, id: Uuid, lead: Uuid, partner: Uuid, assignee: Uuid, status: I16, active: Bool,
    due_key: I64, created_us: I64, version: I64, doc: Json,
});

pub(crate) const COMMENTS: Table = crm_storage_sql::table!("comments" {
    tenant: Uuid, id: Uuid, target_kind: I16, target: Uuid, created_us: I64, doc: Json,
});

pub(crate) const EVENTS: Table = crm_storage_sql::table!("events" {
    tenant: Uuid, id: Uuid, pos: I64, at_us: I64, lead: Uuid, partner: Uuid, request: Uuid,
    kind: Text, doc: Json,
});

pub(crate) const STAGE_HISTORY: Table = crm_storage_sql::table!("stage_history" {
    tenant: Uuid, lead: Uuid, pipeline: Uuid, from_stage: Uuid, to_stage: Uuid, status: I16,
    at_us: I64, doc: Json,
});

/// A data subject's key row: tenant, subject, doc.
pub(crate) fn subject_key_row(k: &crm_core::erasure::SubjectKey) -> Result<Vec<Value>> {
    Ok(vec![uuid(k.tenant.as_uuid()), uuid(&k.subject), json(k)?])
}

fn uuid(u: &Uuid) -> Value {
    Box::new(*u)
}

fn opt_uuid(u: Option<&Uuid>) -> Value {
    Box::new(u.copied())
}

fn json<T: serde::Serialize>(v: &T) -> Result<Value> {
    // Serialising first surfaces errors here rather than in the middle of a COPY stream; to JSON text straight from
    // the record (a `serde_json::Value` tree first cost an allocation a field).
    let v = serde_json::value::to_raw_value(v)
        .map_err(|e| crm_core::Error::invalid("record", format!("cannot be serialised: {e}")))?;
    Ok(Box::new(Json(v)))
}

pub(crate) fn partner_row(p: &Partner) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(p.tenant().as_uuid()),
        uuid(p.id().as_uuid()),
        Box::new(p.name().to_owned()),
        Box::new(crm_core::store::partner_search_text(p)),
        Box::new(p.version() as i64),
        Box::new(to_micros(p.created_at())),
        Box::new(to_micros(p.updated_at())),
        json(p)?,
        Box::new(p.host_ref().map(str::to_owned)),
        Box::new(p.merged_into().map(|m| *m.as_uuid())),
    ])
}

/// The distinct encoded keys of a partner.
pub(crate) fn encoded_keys(keys: &[DedupeKey]) -> BTreeSet<String> {
    keys.iter().map(DedupeKey::encoded).collect()
}

pub(crate) fn partner_key_row(p: &Partner, key: &str) -> Vec<Value> {
    vec![
        uuid(p.tenant().as_uuid()),
        Box::new(key.to_string()),
        uuid(p.id().as_uuid()),
    ]
}

/// The `contact_refs` rows of a partner: one per contact with a host reference.
pub(crate) fn contact_ref_rows(p: &Partner) -> Vec<Vec<Value>> {
    p.contacts()
        .iter()
        .filter_map(|c| {
            let r = c.host_ref.clone()?;
            Some(vec![
                uuid(p.tenant().as_uuid()),
                Box::new(r) as Value,
                uuid(p.id().as_uuid()),
                uuid(c.id.as_uuid()),
            ])
        })
        .collect()
}

pub(crate) fn pipeline_row(p: &Pipeline) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(p.tenant().as_uuid()),
        uuid(p.id().as_uuid()),
        Box::new(to_micros(p.created_at())),
        json(p)?,
    ])
}

pub(crate) fn lost_reason_row(r: &LostReason) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(r.tenant().as_uuid()),
        uuid(r.id().as_uuid()),
        Box::new(r.name().to_owned()),
        json(r)?,
    ])
}

/// The revenue sort key of a lead (`LeadSort::ExpectedRevenueDesc`).
pub(crate) fn revenue_key(l: &Lead) -> i64 {
    l.expected_revenue()
        .map(|m| m.to_units())
        .unwrap_or(i64::MIN)
}

pub(crate) fn lead_row(l: &Lead) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(l.tenant().as_uuid()),
        uuid(l.id().as_uuid()),
        uuid(l.partner().as_uuid()),
        uuid(l.pipeline().as_uuid()),
        uuid(l.stage().as_uuid()),
        Box::new(l.status().kind().code()),
        opt_uuid(l.owner().as_ref().map(|o| o.as_uuid())),
        Box::new(l.title().to_lowercase()),
        Box::new(l.expected_revenue().map(|m| m.amount())),
        Box::new(
            l.expected_revenue()
                .map(|m| m.currency().code().to_string()),
        ),
        Box::new(revenue_key(l)),
        Box::new(i16::from(l.probability())),
        Box::new(to_micros(l.created_at())),
        Box::new(to_micros(l.updated_at())),
        Box::new(l.version() as i64),
        json(l)?,
        Box::new(l.host_ref().map(str::to_owned)),
        opt_uuid(l.source().campaign.as_ref().map(|c| c.as_uuid())),
    ])
}

/// The distinct lower-cased tags of a lead.
pub(crate) fn lead_tags(l: &Lead) -> BTreeSet<String> {
    l.tags().iter().map(|t| t.trim().to_lowercase()).collect()
}

pub(crate) fn lead_tag_row(l: &Lead, tag: &str) -> Vec<Value> {
    vec![
        uuid(l.tenant().as_uuid()),
        Box::new(tag.to_string()),
        uuid(l.id().as_uuid()),
    ]
}

/// The small integer a request status is stored as.
pub(crate) fn request_status_code(s: RequestStatus) -> i16 {
    match s {
        RequestStatus::Open => 0,
        RequestStatus::InProgress => 1,
        RequestStatus::Done => 2,
        RequestStatus::Cancelled => 3,
    }
}

pub(crate) fn request_row(r: &Request) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(r.tenant().as_uuid()),
        uuid(r.id().as_uuid()),
        opt_uuid(r.lead().as_ref().map(|x| x.as_uuid())),
        opt_uuid(r.partner().as_ref().map(|x| x.as_uuid())),
        uuid(r.assignee().as_uuid()),
        Box::new(request_status_code(r.status())),
        Box::new(r.status().is_active()),
        Box::new(request_sort_key(r)),
        Box::new(to_micros(r.created_at())),
        Box::new(r.version() as i64),
        json(r)?,
    ])
}

/// The (kind, id) a comment target is stored as.
pub(crate) fn target_parts(t: &CommentTarget) -> (i16, Uuid) {
    match t {
        CommentTarget::Lead(id) => (0, *id.as_uuid()),
        CommentTarget::Partner(id) => (1, *id.as_uuid()),
        CommentTarget::Request(id) => (2, *id.as_uuid()),
    }
}

pub(crate) fn comment_row(c: &Comment) -> Result<Vec<Value>> {
    let (kind, target) = target_parts(&c.target());
    Ok(vec![
        uuid(c.tenant().as_uuid()),
        uuid(c.id().as_uuid()),
        Box::new(kind),
        Box::new(target),
        Box::new(to_micros(c.created_at())),
        json(c)?,
    ])
}

pub(crate) fn event_row(e: &DomainEvent, pos: i64) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(e.tenant.as_uuid()),
        uuid(e.id.as_uuid()),
        Box::new(pos),
        Box::new(to_micros(e.at)),
        opt_uuid(e.subject.lead.as_ref().map(|x| x.as_uuid())),
        opt_uuid(e.subject.partner.as_ref().map(|x| x.as_uuid())),
        opt_uuid(e.subject.request.as_ref().map(|x| x.as_uuid())),
        Box::new(e.kind.stored_name().to_string()),
        json(e)?,
    ])
}

pub(crate) fn stage_history_row(h: &StageHistoryEntry) -> Result<Vec<Value>> {
    Ok(vec![
        uuid(h.tenant.as_uuid()),
        uuid(h.lead.as_uuid()),
        uuid(h.pipeline.as_uuid()),
        opt_uuid(h.from.as_ref().map(|x| x.as_uuid())),
        uuid(h.to.as_uuid()),
        Box::new(h.status.code()),
        Box::new(to_micros(h.at)),
        json(h)?,
    ])
}

/// Decodes the `doc` column (at `idx`) of a row.
pub(crate) fn doc<T: DeserializeOwned>(
    row: &tokio_postgres::Row,
    idx: usize,
    what: &str,
) -> Result<T> {
    let v: serde_json::Value = row.try_get(idx).map_err(|e| corrupt(what, e))?;
    serde_json::from_value(v).map_err(|e| corrupt(what, e))
}

/// Borrows a row's values as `ToSql` parameters.
pub(crate) fn params(row: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    row.iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A shared statement's parameter as this adapter binds it (typed NULLs, `uuid[]` for a set, JSON as `jsonb`), for
/// code that runs `crm_storage_sql` rows through its own `tokio-postgres` client (the benchmark's plain-SQL
/// baselines do).
///
/// ```
/// let v = crm_storage_postgres::param_value(crm_storage_sql::Param::I64(7));
/// assert_eq!(format!("{v:?}"), "7");
/// ```
pub fn bind(p: crm_storage_sql::Param) -> Value {
    use crm_storage_sql::Param;
    match p {
        Param::Uuid(u) => Box::new(u),
        Param::Day(d) => Box::new(d),
        Param::I64(v) => Box::new(v),
        Param::I16(v) => Box::new(v),
        Param::I32(v) => Box::new(v),
        Param::Text(t) => Box::new(t),
        Param::Uuids(ids) => Box::new(ids),
        Param::Json(v) => Box::new(Json(v.into_raw())),
        Param::Null(kind) => match kind {
            Kind::Uuid => Box::new(None::<Uuid>),
            Kind::Text | Kind::Ccy => Box::new(None::<String>),
            Kind::I16 => Box::new(None::<i16>),
            Kind::I32 => Box::new(None::<i32>),
            Kind::I64 => Box::new(None::<i64>),
            Kind::Bool => Box::new(None::<bool>),
            Kind::Numeric => Box::new(None::<rust_decimal::Decimal>),
            Kind::Json => Box::new(None::<Json<serde_json::Value>>),
        },
    }
}

/// A result row as the shared reads' neutral cells.
pub(crate) fn cells(row: &tokio_postgres::Row) -> Result<Vec<crm_storage_sql::Cell>> {
    use crm_storage_sql::Cell;
    use rust_decimal::prelude::ToPrimitive;
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
    ) -> Result<Option<T>> {
        row.try_get(i).map_err(|e| corrupt("column", e))
    }
    let int = |v: Option<i64>| v.map_or(Cell::Null, |v| Cell::Int(i128::from(v)));
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_();
            Ok(match *ty {
                Type::UUID => get::<Uuid>(row, i)?.map_or(Cell::Null, Cell::Uuid),
                Type::INT2 => int(get::<i16>(row, i)?.map(i64::from)),
                Type::INT4 => int(get::<i32>(row, i)?.map(i64::from)),
                Type::INT8 => int(get::<i64>(row, i)?),
                Type::BOOL => int(get::<bool>(row, i)?.map(i64::from)),
                // A SUM over bigint comes back as NUMERIC: an exact integer.
                Type::NUMERIC => match get::<rust_decimal::Decimal>(row, i)? {
                    None => Cell::Null,
                    Some(d) => Cell::Int(
                        d.to_i128()
                            .filter(|_| d.fract().is_zero())
                            .ok_or_else(|| corrupt("sum of units", d))?,
                    ),
                },
                Type::JSONB | Type::JSON => get::<serde_json::Value>(row, i)?
                    .map_or(Cell::Null, |v| Cell::Text(v.to_string())),
                _ => get::<String>(row, i)?.map_or(Cell::Null, Cell::Text),
            })
        })
        .collect()
}
