//! The [`Store`](crm_core::store::Store) reads both adapters answer alike, written once over a [`Runner`]: the
//! funnel, request pages, comment pages, timelines and the event feed. [`store!`](crate::store!) declares an
//! adapter's `Store` impl from them and from what stays the adapter's own ([`AdapterStore`]: the by-key fetch, its
//! transactions, bulk loading, and the lead list and board whose columns its schema keeps its own way).
//!
//! The schemas name some columns differently: times are `…_at` on SQLite and `…_us` on PostgreSQL
//! ([`Dialect::col`]), an event's time is `at` / `at_us` and its feed position `seq` / `pos`, and PostgreSQL keeps a
//! comment's target kind beside its target.

use crate::{keyset, Cell, Dialect, Runner, Sql};
use crm_core::event::{CommentTarget, DomainEvent};
use crm_core::id::{PipelineId, StageId, TenantId};
use crm_core::lead::Lead;
use crm_core::pipeline::Pipeline;
use crm_core::request::{Comment, Request};
use crm_core::store::{
    request_sort_key, Board, BulkLoad, BulkStep, ChangeSet, Funnel, Key, LeadQuery, Page,
    PageRequest, Record, RequestQuery, TimelineOf,
};
use crm_core::time::{to_micros, Timestamp};
use crm_core::{Error, Result};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What each adapter implements itself; [`store!`](crate::store!) forwards the `Store` methods of the same names.
#[async_trait::async_trait]
pub trait AdapterStore: Runner {
    /// `Store::fetch`.
    async fn fetch_records(&self, tenant: TenantId, key: &Key) -> Result<Vec<Record>>;
    /// `Store::commit`.
    async fn commit_changes(&self, tenant: TenantId, changes: ChangeSet) -> Result<()>;
    /// `Store::ingest`.
    async fn ingest_changes(&self, tenant: TenantId, changes: ChangeSet) -> Result<u64>;
    /// A bulk-load step (`CommerceStore::rollups` with `RollupAction::Bulk`): [`crate::bulk::step`] in one of the
    /// adapter's transactions.
    async fn bulk_step(&self, tenant: TenantId, step: BulkStep) -> Result<BulkLoad>;
    /// `Store::query_leads`.
    async fn leads_page(&self, tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>>;
    /// `Store::board`.
    async fn board_of(&self, tenant: TenantId, pipeline: PipelineId) -> Result<Board>;
}

fn decode<T: serde::de::DeserializeOwned>(cell: &Cell, entity: &str) -> Result<T> {
    crate::fetch::Doc::parse_as(cell.text(entity)?, entity)
}

/// Fails with not found unless record `id` of `table` exists in this tenant.
/// The existence check of a comment target or timeline subject: its statement, entity name and id.
fn subject_sql(dialect: Dialect, tenant: TenantId, of: CommentTarget) -> (Sql, &'static str, Uuid) {
    let (table, entity, id) = match of {
        CommentTarget::Lead(id) => ("leads", "lead", *id.as_uuid()),
        CommentTarget::Partner(id) => ("partners", "partner", *id.as_uuid()),
        CommentTarget::Request(id) => ("requests", "request", *id.as_uuid()),
    };
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(id);
    sql.text = format!("SELECT 1 FROM {table} WHERE tenant = {t} AND id = {i}");
    (sql, entity, id)
}

/// A page of `what` documents about a comment target or timeline subject: `statement` builds the page's query
/// (`limit + 1` rows) from the subject's id and the page's keyset, `key` cuts the rows into the page. Not found when
/// the subject is missing. A row about the subject proves it is the tenant's (leads, partners and requests are never
/// deleted, and their comments and events carry their tenant), so the subject's own row is read only when the page
/// comes back empty: a point read of one index, not two.
async fn page_of_subject<R: Runner + ?Sized, T: serde::de::DeserializeOwned>(
    r: &R,
    tenant: TenantId,
    subject: CommentTarget,
    page: &PageRequest,
    what: &str,
    statement: impl FnOnce(Uuid, Option<(i64, Uuid)>) -> Sql,
    key: impl Fn(&T) -> (i64, Uuid),
) -> Result<Page<T>> {
    let after = crate::page_after(page)?;
    let (exists, entity, id) = subject_sql(r.dialect(), tenant, subject);
    let found = r
        .rows_short(vec![statement(id, after)])
        .await?
        .pop()
        .unwrap_or_default();
    if found.is_empty() {
        let subject = r.rows_short(vec![exists]).await?.pop().unwrap_or_default();
        if subject.is_empty() {
            return Err(Error::not_found(entity, id));
        }
    }
    let items = found
        .iter()
        .map(|row| decode(&row[0], what))
        .collect::<Result<Vec<T>>>()?;
    Ok(crate::paginate(items, page.limit, key))
}

/// `Store::funnel`: stages reached (per the history in this pipeline) by leads created in the period, then how
/// many of the pipeline's leads created in the period are won and lost now.
pub async fn funnel<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    pipeline: PipelineId,
    period: Option<(Timestamp, Timestamp)>,
) -> Result<Funnel> {
    let dialect = r.dialect();
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let p = sql.bind(*pipeline.as_uuid());
    sql.text = format!(
        "SELECT {} FROM pipelines WHERE tenant = {t} AND id = {p}",
        dialect.doc()
    );
    let stages: Pipeline = match r.rows(sql, false).await?.first() {
        Some(row) => decode(&row[0], "pipeline")?,
        None => return Err(Error::not_found("pipeline", pipeline)),
    };
    let (from, to) = match period {
        Some((a, b)) => (to_micros(a), to_micros(b)),
        None => (i64::MIN, i64::MAX),
    };
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let p = sql.bind(*pipeline.as_uuid());
    let f = sql.bind(from);
    let to = sql.bind(to);
    let created = dialect.col("created");
    let in_period = format!("l.{created} >= {f} AND l.{created} < {to}");
    sql.text = format!(
        "SELECT 0 AS part, h.to_stage, count(DISTINCT h.lead) \
         FROM stage_history h JOIN leads l ON l.tenant = h.tenant AND l.id = h.lead \
         WHERE h.tenant = {t} AND h.pipeline = {p} AND {in_period} AND l.status <> 3 GROUP BY h.to_stage \
         UNION ALL \
         SELECT CAST(l.status AS integer), NULL, count(*) FROM leads l \
         WHERE l.tenant = {t} AND l.pipeline = {p} AND {in_period} AND l.status IN (1, 2) GROUP BY l.status"
    );
    let mut reached: BTreeMap<Uuid, u64> = BTreeMap::new();
    let (mut won, mut lost) = (0, 0);
    for row in r.rows(sql, false).await? {
        let n = row[2].count("leads")?;
        match row[0].int("part")? {
            0 => {
                reached.insert(row[1].uuid("stage")?, n);
            }
            1 => won = n,
            _ => lost = n,
        }
    }
    Ok(Funnel {
        steps: stages
            .stages()
            .iter()
            .map(|s| {
                (
                    StageId::from_uuid(*s.id.as_uuid()),
                    s.name.clone(),
                    reached.get(s.id.as_uuid()).copied().unwrap_or(0),
                )
            })
            .collect(),
        won,
        lost,
    })
}

/// The statement of [`query_requests`] (first page when `after` is `None`).
pub fn requests_sql(
    dialect: Dialect,
    tenant: TenantId,
    q: &RequestQuery,
    after: Option<(i64, Uuid)>,
) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let mut text = format!("SELECT {} FROM requests WHERE tenant = {t}", dialect.doc());
    for (col, v) in [
        ("assignee", q.assignee.map(|x| *x.as_uuid())),
        ("lead", q.lead.map(|x| *x.as_uuid())),
        ("partner", q.partner.map(|x| *x.as_uuid())),
    ] {
        if let Some(v) = v {
            text.push_str(&format!(" AND {col} = {}", sql.bind(v)));
        }
    }
    if q.active_only {
        text.push_str(&format!(" AND active = {}", dialect.true_lit()));
    }
    if let Some(d) = q.due_before {
        text.push_str(&format!(" AND due_key < {}", sql.bind(to_micros(d))));
    }
    if let Some(d) = q.due_after {
        // A request without a due date has the largest key: it is due after nothing.
        let (d, none) = (sql.bind(to_micros(d)), sql.bind(i64::MAX));
        text.push_str(&format!(" AND due_key > {d} AND due_key < {none}"));
    }
    if let Some(t) = q.opened_before {
        // When it was opened, in microseconds: SQLite's `created_at`, PostgreSQL's `created_us`.
        let col = match dialect {
            Dialect::Sqlite => "created_at",
            Dialect::Postgres => "created_us",
        };
        text.push_str(&format!(" AND {col} < {}", sql.bind(to_micros(t))));
    }
    text.push_str(&keyset(&mut sql, "due_key", ">", after));
    let limit = sql.bind(i64::from(q.page.limit) + 1);
    text.push_str(&format!(" ORDER BY due_key, id LIMIT {limit}"));
    sql.text = text;
    sql
}

/// `Store::query_requests`: by due time, then id.
pub async fn query_requests<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    q: &RequestQuery,
) -> Result<Page<Request>> {
    let after = crate::page_after(&q.page)?;
    let sql = requests_sql(r.dialect(), tenant, q, after);
    let items = r
        .rows(sql, false)
        .await?
        .iter()
        .map(|row| decode(&row[0], "request"))
        .collect::<Result<Vec<Request>>>()?;
    Ok(crate::paginate(items, q.page.limit, |r| {
        (request_sort_key(r), *r.id().as_uuid())
    }))
}

/// `Store::comments`: newest first.
pub async fn comments<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    target: CommentTarget,
    page: &PageRequest,
) -> Result<Page<Comment>> {
    let statement = |id, after| comments_sql(r.dialect(), tenant, target, id, after, page.limit);
    page_of_subject(
        r,
        tenant,
        target,
        page,
        "comment",
        statement,
        |c: &Comment| (to_micros(c.created_at()), *c.id().as_uuid()),
    )
    .await
}

/// The statement of [`comments`] on `target` (whose id is `id`), first page of `limit` when `after` is `None`.
fn comments_sql(
    dialect: Dialect,
    tenant: TenantId,
    target: CommentTarget,
    id: Uuid,
    after: Option<(i64, Uuid)>,
    limit: u32,
) -> Sql {
    let created = dialect.col("created");
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(id);
    let kind = match dialect {
        Dialect::Sqlite => String::new(),
        Dialect::Postgres => {
            let code = match target {
                CommentTarget::Lead(_) => 0,
                CommentTarget::Partner(_) => 1,
                CommentTarget::Request(_) => 2,
            };
            format!(" AND target_kind = {}", sql.bind(code as i16))
        }
    };
    let before = keyset(&mut sql, &created, "<", after);
    let l = sql.bind(i64::from(limit) + 1);
    sql.text = format!(
        "SELECT {} FROM comments WHERE tenant = {t}{kind} AND target = {i}{before} \
         ORDER BY {created} DESC, id DESC LIMIT {l}",
        dialect.doc()
    );
    sql
}

/// An event's time column and its feed position's.
fn event_columns(dialect: Dialect) -> (&'static str, &'static str) {
    match dialect {
        Dialect::Sqlite => ("at", "seq"),
        Dialect::Postgres => ("at_us", "pos"),
    }
}

/// The statement of [`timeline`] (first page of `limit` when `after` is `None`).
pub fn timeline_sql(
    dialect: Dialect,
    tenant: TenantId,
    of: TimelineOf,
    after: Option<(i64, Uuid)>,
    limit: u32,
) -> Sql {
    let (col, id) = match of {
        TimelineOf::Lead(id) => ("lead", *id.as_uuid()),
        TimelineOf::Partner(id) => ("partner", *id.as_uuid()),
        TimelineOf::Request(id) => ("request", *id.as_uuid()),
    };
    let (at, _) = event_columns(dialect);
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(id);
    let before = keyset(&mut sql, at, "<", after);
    let l = sql.bind(i64::from(limit) + 1);
    sql.text = format!(
        "SELECT {} FROM events WHERE tenant = {t} AND {col} = {i}{before} ORDER BY {at} DESC, id DESC LIMIT {l}",
        dialect.doc()
    );
    sql
}

/// `Store::timeline`: newest first.
pub async fn timeline<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    of: TimelineOf,
    page: &PageRequest,
) -> Result<Page<DomainEvent>> {
    let target = match of {
        TimelineOf::Lead(id) => CommentTarget::Lead(id),
        TimelineOf::Partner(id) => CommentTarget::Partner(id),
        TimelineOf::Request(id) => CommentTarget::Request(id),
    };
    let statement = |_, after| timeline_sql(r.dialect(), tenant, of, after, page.limit);
    page_of_subject(
        r,
        tenant,
        target,
        page,
        "event",
        statement,
        |e: &DomainEvent| (to_micros(e.at), *e.id.as_uuid()),
    )
    .await
}

/// `Store::events_since`: at most 10 000 per call, 0 gives nothing.
pub async fn events_since<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    after: u64,
    limit: u32,
) -> Result<Vec<(u64, DomainEvent)>> {
    // Positions are positive i64s: one beyond them is past the end (`as i64` would wrap u64::MAX to −1, the start
    // of the feed).
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let dialect = r.dialect();
    let (_, pos) = event_columns(dialect);
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let a = sql.bind(after);
    let l = sql.bind(i64::from(limit.min(10_000)));
    sql.text = format!(
        "SELECT {pos}, {} FROM events WHERE tenant = {t} AND {pos} > {a} ORDER BY {pos} LIMIT {l}",
        dialect.doc()
    );
    r.rows(sql, false)
        .await?
        .iter()
        .map(|row| Ok((row[0].count("position")?, decode(&row[1], "event")?)))
        .collect()
}

/// `impl Store for $store` (an [`AdapterStore`]): the adapter's own methods and the shared reads of this module.
#[macro_export]
macro_rules! store {
    ($store:ty) => {
        $crate::__forward_impl!($store: Store {
            fn commit(tenant: TenantId, changes: ChangeSet) -> Result<()> = $crate::store::AdapterStore::commit_changes;
            fn ingest(tenant: TenantId, changes: ChangeSet) -> Result<u64> = $crate::store::AdapterStore::ingest_changes;
            fn fetch(tenant: TenantId, key: &Key) -> Result<Vec<Record>> = $crate::store::AdapterStore::fetch_records;
            fn query_leads(tenant: TenantId, query: &LeadQuery) -> Result<Page<Lead>> = $crate::store::AdapterStore::leads_page;
            fn board(tenant: TenantId, pipeline: PipelineId) -> Result<Board> = $crate::store::AdapterStore::board_of;
            fn funnel(tenant: TenantId, pipeline: PipelineId, period: Option<(Timestamp, Timestamp)>) -> Result<Funnel> = $crate::store::funnel;
            fn query_requests(tenant: TenantId, query: &RequestQuery) -> Result<Page<Request>> = $crate::store::query_requests;
            fn comments(tenant: TenantId, target: CommentTarget, page: &PageRequest) -> Result<Page<Comment>> = $crate::store::comments;
            fn timeline(tenant: TenantId, of: TimelineOf, page: &PageRequest) -> Result<Page<DomainEvent>> = $crate::store::timeline;
            fn events_since(tenant: TenantId, after: u64, limit: u32) -> Result<Vec<(u64, DomainEvent)>> = $crate::store::events_since;
        });
    };
}
