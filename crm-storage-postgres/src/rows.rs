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
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use tokio_postgres::types::{Json, ToSql, Type};
use uuid::Uuid;

/// One value of a row.
pub(crate) type Value = Box<dyn ToSql + Sync + Send>;

/// A table's name and the columns every write path fills, with their types (for binary COPY).
#[derive(Debug)]
pub(crate) struct Table {
    /// The table.
    pub name: &'static str,
    /// Its written columns.
    pub columns: &'static [(&'static str, Type)],
}

impl Table {
    /// `INSERT INTO t (cols) VALUES ($1, …), (…)` for `rows` rows.
    pub fn insert_sql(&self, rows: usize) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        let n = self.columns.len();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", self.name, cols.join(", "));
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..n {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(r * n + c + 1).to_string());
            }
            sql.push(')');
        }
        sql
    }

    /// `COPY t (cols) FROM STDIN (FORMAT binary)`.
    pub fn copy_sql(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.name,
            cols.join(", ")
        )
    }

    /// The column types.
    pub fn types(&self) -> Vec<Type> {
        self.columns.iter().map(|c| c.1.clone()).collect()
    }
}

pub(crate) const PARTNERS: Table = Table {
    name: "partners",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("name", Type::TEXT),
        ("search", Type::TEXT),
        ("version", Type::INT8),
        ("created_us", Type::INT8),
        ("updated_us", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const PARTNER_KEYS: Table = Table {
    name: "partner_keys",
    columns: &[
        ("tenant", Type::UUID),
        ("key", Type::TEXT),
        ("partner", Type::UUID),
    ],
};

pub(crate) const PIPELINES: Table = Table {
    name: "pipelines",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("created_us", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const LOST_REASONS: Table = Table {
    name: "lost_reasons",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("name", Type::TEXT),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const LEADS: Table = Table {
    name: "leads",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("partner", Type::UUID),
        ("pipeline", Type::UUID),
        ("stage", Type::UUID),
        ("status", Type::INT2),
        ("owner", Type::UUID),
        ("search", Type::TEXT),
        ("expected", Type::NUMERIC),
        ("currency", Type::BPCHAR),
        ("revenue_key", Type::INT8),
        ("probability", Type::INT2),
        ("created_us", Type::INT8),
        ("updated_us", Type::INT8),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const LEAD_TAGS: Table = Table {
    name: "lead_tags",
    columns: &[
        ("tenant", Type::UUID),
        ("tag", Type::TEXT),
        ("lead", Type::UUID),
    ],
};

pub(crate) const REQUESTS: Table = Table {
    name: "requests",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("lead", Type::UUID),
        ("partner", Type::UUID),
        ("assignee", Type::UUID),
        ("status", Type::INT2),
        ("active", Type::BOOL),
        ("due_key", Type::INT8),
        ("created_us", Type::INT8),
        ("version", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const COMMENTS: Table = Table {
    name: "comments",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("target_kind", Type::INT2),
        ("target", Type::UUID),
        ("created_us", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const EVENTS: Table = Table {
    name: "events",
    columns: &[
        ("tenant", Type::UUID),
        ("id", Type::UUID),
        ("pos", Type::INT8),
        ("at_us", Type::INT8),
        ("lead", Type::UUID),
        ("partner", Type::UUID),
        ("request", Type::UUID),
        ("kind", Type::TEXT),
        ("doc", Type::JSONB),
    ],
};

pub(crate) const STAGE_HISTORY: Table = Table {
    name: "stage_history",
    columns: &[
        ("tenant", Type::UUID),
        ("lead", Type::UUID),
        ("pipeline", Type::UUID),
        ("from_stage", Type::UUID),
        ("to_stage", Type::UUID),
        ("status", Type::INT2),
        ("at_us", Type::INT8),
        ("doc", Type::JSONB),
    ],
};

fn uuid(u: &Uuid) -> Value {
    Box::new(*u)
}

fn opt_uuid(u: Option<&Uuid>) -> Value {
    Box::new(u.copied())
}

fn json<T: serde::Serialize>(v: &T) -> Result<Value> {
    // Serialising to a Value first surfaces errors here rather than in the middle of a COPY stream.
    let v = serde_json::to_value(v)
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
        Box::new(e.kind.name().to_string()),
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

/// A shared statement's parameter as this adapter binds it.
pub(crate) fn bind(p: crm_storage_sql::Param) -> Value {
    use crm_storage_sql::Param;
    match p {
        Param::Uuid(u) => Box::new(u),
        Param::Day(d) => Box::new(d),
        Param::I64(v) => Box::new(v),
        Param::I16(v) => Box::new(v),
        Param::Text(t) => Box::new(t),
        Param::Uuids(ids) => Box::new(ids),
    }
}
