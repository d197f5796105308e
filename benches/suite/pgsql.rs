//! The plain-SQL baselines on PostgreSQL: the same rows as `PgStore` writes and reads, with prepared statements on
//! a plain tokio-postgres connection (each statement prepared once per connection and reused), on the same schema
//! and data as the store. The SQLite twins are in `work::sql`; both return the same digests.

use super::gen::Manifest;
use super::work::{
    decide_move, micro_bounds, profit_sql, units, BoardCol, ProfitRow, Rules, SegmentQuery,
    SEGMENT_SQL,
};
use chrono::Utc;
use crm_core::actor::Context;
use crm_core::commerce::{day_number, GroupBy, Period};
use crm_core::event::{DomainEvent, StageHistoryEntry};
use crm_core::id::{CampaignId, LeadId, PartnerId, PipelineId, StageId, TenantId};
use crm_core::lead::Lead;
use crm_core::outbox::OutboxMessage;
use crm_core::pipeline::Pipeline;
use crm_core::store::{LeadSort, Write};
use rust_decimal::Decimal;
use std::collections::{BTreeSet, HashMap};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{Client, GenericClient, Statement};

fn pe(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// A plain connection with its prepared statements.
pub struct Pg {
    /// The connection.
    pub client: Client,
    prepared: HashMap<&'static str, Statement>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("prepared", &self.prepared.len())
            .finish()
    }
}

const LEAD_INSERT: &str =
    "INSERT INTO leads (tenant, id, partner, pipeline, stage, status, owner, search, expected, \
     currency, revenue_key, probability, created_us, updated_us, version, doc, campaign) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";
const TAGS_INSERT: &str =
    "INSERT INTO lead_tags (tenant, tag, lead) SELECT $1, t, $2 FROM unnest($3::text[]) AS t";
const EVENT_INSERT: &str =
    "INSERT INTO events (tenant, id, pos, at_us, lead, partner, request, kind, doc) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const HISTORY_INSERT: &str =
    "INSERT INTO stage_history (tenant, lead, pipeline, from_stage, to_stage, status, \
     at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const OUTBOX_INSERT: &str =
    "INSERT INTO outbox (tenant, id, idempotency_key, status, attempts, next_attempt_us, \
     last_error, created_us, delivered_us, doc) VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (tenant, idempotency_key) DO NOTHING";
const POSITIONS: &str = "INSERT INTO event_positions (tenant, last) VALUES ($1, $2) \
     ON CONFLICT (tenant) DO UPDATE SET last = event_positions.last + EXCLUDED.last RETURNING last";
const PARTNER_EXISTS: &str = "SELECT 1 FROM partners WHERE tenant = $1 AND id = $2";
/// A lead and its partner's subject key (the events about the partner are sealed under it).
const LEAD_AND_KEY: &str = "SELECT l.doc, k.doc FROM leads l LEFT JOIN subject_keys k \
     ON k.tenant = l.tenant AND k.subject = l.partner WHERE l.tenant = $1 AND l.id = $2";
const PARTNER_DOC: &str = "SELECT doc FROM partners WHERE tenant = $1 AND id = $2";
const KEY_INSERT: &str = "INSERT INTO subject_keys (tenant, subject, doc) VALUES ($1, $2, $3)";
const LEAD_MOVE: &str =
    "UPDATE leads SET stage = $3, status = $4, probability = $5, updated_us = $6, \
     version = $7, doc = $8 WHERE tenant = $1 AND id = $2 AND version = $9";

/// The statements every write uses.
struct Writes {
    lead: Statement,
    tags: Statement,
    event: Statement,
    history: Statement,
    outbox: Statement,
    positions: Statement,
}

impl Pg {
    /// Wraps a connection.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            prepared: HashMap::new(),
        }
    }

    /// The statement for `sql`, prepared on first use.
    async fn stmt(&mut self, sql: &'static str) -> Result<Statement, String> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await.map_err(pe)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }

    async fn writes(&mut self) -> Result<Writes, String> {
        Ok(Writes {
            lead: self.stmt(LEAD_INSERT).await?,
            tags: self.stmt(TAGS_INSERT).await?,
            event: self.stmt(EVENT_INSERT).await?,
            history: self.stmt(HISTORY_INSERT).await?,
            outbox: self.stmt(OUTBOX_INSERT).await?,
            positions: self.stmt(POSITIONS).await?,
        })
    }
}

async fn insert_lead<C: GenericClient>(c: &C, w: &Writes, l: &Lead) -> Result<(), String> {
    let status = l.status().kind().code();
    let probability = i16::from(l.probability());
    let expected: Option<Decimal> = l.expected_revenue().map(|m| m.amount());
    let currency: Option<String> = l
        .expected_revenue()
        .map(|m| m.currency().code().to_string());
    let key = LeadSort::ExpectedRevenueDesc.key(l);
    let (created, updated, version) = (
        l.created_at().timestamp_micros(),
        l.updated_at().timestamp_micros(),
        l.version() as i64,
    );
    let search = l.title().to_lowercase();
    c.execute(
        &w.lead,
        &[
            l.tenant().as_uuid(),
            l.id().as_uuid(),
            l.partner().as_uuid(),
            l.pipeline().as_uuid(),
            l.stage().as_uuid(),
            &status,
            &l.owner().as_ref().map(|o| *o.as_uuid()),
            &search,
            &expected,
            &currency,
            &key,
            &probability,
            &created,
            &updated,
            &version,
            &Json(l),
            &l.source().campaign.map(|c| *c.as_uuid()),
        ],
    )
    .await
    .map_err(pe)?;
    let tags: Vec<String> = l
        .tags()
        .iter()
        .map(|t| t.trim().to_lowercase())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !tags.is_empty() {
        c.execute(&w.tags, &[l.tenant().as_uuid(), l.id().as_uuid(), &tags])
            .await
            .map_err(pe)?;
    }
    Ok(())
}

async fn insert_history<C: GenericClient>(
    c: &C,
    w: &Writes,
    h: &StageHistoryEntry,
) -> Result<(), String> {
    c.execute(
        &w.history,
        &[
            h.tenant.as_uuid(),
            h.lead.as_uuid(),
            h.pipeline.as_uuid(),
            &h.from.as_ref().map(|x| *x.as_uuid()),
            h.to.as_uuid(),
            &h.status.code(),
            &h.at.timestamp_micros(),
            &Json(h),
        ],
    )
    .await
    .map(|_| ())
    .map_err(pe)
}

async fn insert_outbox<C: GenericClient>(
    c: &C,
    w: &Writes,
    m: &OutboxMessage,
) -> Result<(), String> {
    c.execute(
        &w.outbox,
        &[
            m.tenant.as_uuid(),
            m.id.as_uuid(),
            &m.idempotency_key,
            &(m.attempts.min(i32::MAX as u32) as i32),
            &m.next_attempt_at.timestamp_micros(),
            &m.last_error,
            &m.created_at.timestamp_micros(),
            &m.delivered_at.map(|t| t.timestamp_micros()),
            &Json(m),
        ],
    )
    .await
    .map(|_| ())
    .map_err(pe)
}

/// Takes positions for `events` (the tenant's counter row, locked to the end of the transaction, taken last as the
/// store does) and inserts them in order.
async fn insert_events<C: GenericClient>(
    c: &C,
    w: &Writes,
    tenant: TenantId,
    events: &[&DomainEvent],
) -> Result<(), String> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    let last: i64 = c
        .query_one(&w.positions, &[tenant.as_uuid(), &n])
        .await
        .map_err(pe)?
        .get(0);
    for (i, e) in events.iter().enumerate() {
        let pos = last - n + 1 + i as i64;
        c.execute(
            &w.event,
            &[
                e.tenant.as_uuid(),
                e.id.as_uuid(),
                &pos,
                &e.at.timestamp_micros(),
                &e.subject.lead.as_ref().map(|x| *x.as_uuid()),
                &e.subject.partner.as_ref().map(|x| *x.as_uuid()),
                &e.subject.request.as_ref().map(|x| *x.as_uuid()),
                &e.kind.stored_name(),
                &Json(e),
            ],
        )
        .await
        .map_err(pe)?;
    }
    Ok(())
}

/// Enters one lead in one transaction: checks its partner, inserts the lead, its history step and its event.
pub async fn enter_lead(
    pg: &mut Pg,
    partner: PartnerId,
    lead: &Lead,
    e: &DomainEvent,
    h: &StageHistoryEntry,
) -> Result<(), String> {
    let w = pg.writes().await?;
    let exists = pg.stmt(PARTNER_EXISTS).await?;
    let tx = pg.client.transaction().await.map_err(pe)?;
    if tx
        .query_opt(&exists, &[lead.tenant().as_uuid(), partner.as_uuid()])
        .await
        .map_err(pe)?
        .is_none()
    {
        return Err(format!("partner {partner} not found"));
    }
    insert_lead(&tx, &w, lead).await?;
    insert_history(&tx, &w, h).await?;
    insert_events(&tx, &w, lead.tenant(), &[e]).await?;
    tx.commit().await.map_err(pe)
}

/// The batch baseline's statements: one multi-row INSERT per table over `unnest` of column arrays (what a
/// hand-written bulk load does short of COPY; the engine uses binary COPY).
const LEADS_UNNEST: &str = "INSERT INTO leads (tenant, id, partner, pipeline, stage, status, owner, search, expected, \
     currency, revenue_key, probability, created_us, updated_us, version, doc, campaign) \
     SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int2[], $7::uuid[], $8::text[], \
     $9::numeric[], $10::text[], $11::int8[], $12::int2[], $13::int8[], $14::int8[], $15::int8[], $16::jsonb[], \
     $17::uuid[])";
const TAGS_UNNEST: &str =
    "INSERT INTO lead_tags (tenant, tag, lead) SELECT $1, * FROM unnest($2::text[], $3::uuid[])";
const HISTORY_UNNEST: &str = "INSERT INTO stage_history (tenant, lead, pipeline, from_stage, to_stage, status, \
     at_us, doc) SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int2[], $7::int8[], \
     $8::jsonb[])";
const EVENTS_UNNEST: &str = "INSERT INTO events (tenant, id, pos, at_us, lead, partner, request, kind, doc) \
     SELECT $1, * FROM unnest($2::uuid[], $3::int8[], $4::int8[], $5::uuid[], $6::uuid[], $7::uuid[], $8::text[], \
     $9::jsonb[])";

/// Writes a batch of leads, events and history steps in one transaction: one `unnest` INSERT per table.
pub async fn ingest(pg: &mut Pg, tenant: TenantId, writes: &[Write]) -> Result<(), String> {
    let positions = pg.stmt(POSITIONS).await?;
    let (leads_s, tags_s) = (pg.stmt(LEADS_UNNEST).await?, pg.stmt(TAGS_UNNEST).await?);
    let (history_s, events_s) = (
        pg.stmt(HISTORY_UNNEST).await?,
        pg.stmt(EVENTS_UNNEST).await?,
    );
    let (mut leads, mut history, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for wr in writes {
        match wr {
            Write::InsertLead(l) => leads.push(l),
            Write::AppendEvent(e) => events.push(e),
            Write::AppendStageHistory(h) => history.push(h),
            other => return Err(format!("unexpected write {other:?}")),
        }
    }
    let tx = pg.client.transaction().await.map_err(pe)?;
    let t = tenant.as_uuid();
    let uuid = |x: &uuid::Uuid| *x;
    if !leads.is_empty() {
        let col = |f: &dyn Fn(&Lead) -> uuid::Uuid| leads.iter().map(|l| f(l)).collect::<Vec<_>>();
        let ids = col(&|l| *l.id().as_uuid());
        let partners = col(&|l| *l.partner().as_uuid());
        let pipelines = col(&|l| *l.pipeline().as_uuid());
        let stages = col(&|l| *l.stage().as_uuid());
        let status: Vec<i16> = leads.iter().map(|l| l.status().kind().code()).collect();
        let owners: Vec<Option<uuid::Uuid>> = leads
            .iter()
            .map(|l| l.owner().map(|o| uuid(o.as_uuid())))
            .collect();
        let search: Vec<String> = leads.iter().map(|l| l.title().to_lowercase()).collect();
        let expected: Vec<Option<Decimal>> = leads
            .iter()
            .map(|l| l.expected_revenue().map(|m| m.amount()))
            .collect();
        let currency: Vec<Option<String>> = leads
            .iter()
            .map(|l| {
                l.expected_revenue()
                    .map(|m| m.currency().code().to_string())
            })
            .collect();
        let keys: Vec<i64> = leads
            .iter()
            .map(|l| LeadSort::ExpectedRevenueDesc.key(l))
            .collect();
        let probability: Vec<i16> = leads.iter().map(|l| i16::from(l.probability())).collect();
        let created: Vec<i64> = leads
            .iter()
            .map(|l| l.created_at().timestamp_micros())
            .collect();
        let updated: Vec<i64> = leads
            .iter()
            .map(|l| l.updated_at().timestamp_micros())
            .collect();
        let versions: Vec<i64> = leads.iter().map(|l| l.version() as i64).collect();
        let docs: Vec<Json<&Lead>> = leads.iter().map(|l| Json(*l)).collect();
        let campaigns: Vec<Option<uuid::Uuid>> = leads
            .iter()
            .map(|l| l.source().campaign.map(|c| *c.as_uuid()))
            .collect();
        let params: [&(dyn ToSql + Sync); 17] = [
            t,
            &ids,
            &partners,
            &pipelines,
            &stages,
            &status,
            &owners,
            &search,
            &expected,
            &currency,
            &keys,
            &probability,
            &created,
            &updated,
            &versions,
            &docs,
            &campaigns,
        ];
        tx.execute(&leads_s, &params).await.map_err(pe)?;
        let (mut tags, mut tagged) = (Vec::new(), Vec::new());
        for l in &leads {
            let set: BTreeSet<String> = l.tags().iter().map(|x| x.trim().to_lowercase()).collect();
            for tag in set {
                tags.push(tag);
                tagged.push(*l.id().as_uuid());
            }
        }
        if !tags.is_empty() {
            tx.execute(&tags_s, &[t, &tags, &tagged])
                .await
                .map_err(pe)?;
        }
    }
    if !history.is_empty() {
        let leads: Vec<uuid::Uuid> = history.iter().map(|h| *h.lead.as_uuid()).collect();
        let pipelines: Vec<uuid::Uuid> = history.iter().map(|h| *h.pipeline.as_uuid()).collect();
        let from: Vec<Option<uuid::Uuid>> = history
            .iter()
            .map(|h| h.from.map(|x| *x.as_uuid()))
            .collect();
        let to: Vec<uuid::Uuid> = history.iter().map(|h| *h.to.as_uuid()).collect();
        let status: Vec<i16> = history.iter().map(|h| h.status.code()).collect();
        let at: Vec<i64> = history.iter().map(|h| h.at.timestamp_micros()).collect();
        let docs: Vec<Json<&StageHistoryEntry>> = history.iter().map(|h| Json(*h)).collect();
        tx.execute(
            &history_s,
            &[t, &leads, &pipelines, &from, &to, &status, &at, &docs],
        )
        .await
        .map_err(pe)?;
    }
    if !events.is_empty() {
        let n = events.len() as i64;
        let last: i64 = tx.query_one(&positions, &[t, &n]).await.map_err(pe)?.get(0);
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| *e.id.as_uuid()).collect();
        let pos: Vec<i64> = (0..n).map(|i| last - n + 1 + i).collect();
        let at: Vec<i64> = events.iter().map(|e| e.at.timestamp_micros()).collect();
        let subject = |f: &dyn Fn(&DomainEvent) -> Option<uuid::Uuid>| {
            events.iter().map(|e| f(e)).collect::<Vec<_>>()
        };
        let lead = subject(&|e| e.subject.lead.map(|x| *x.as_uuid()));
        let partner = subject(&|e| e.subject.partner.map(|x| *x.as_uuid()));
        let request = subject(&|e| e.subject.request.map(|x| *x.as_uuid()));
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.stored_name()).collect();
        let docs: Vec<Json<&DomainEvent>> = events.iter().map(|e| Json(*e)).collect();
        tx.execute(
            &events_s,
            &[t, &ids, &pos, &at, &lead, &partner, &request, &kinds, &docs],
        )
        .await
        .map_err(pe)?;
    }
    tx.commit().await.map_err(pe)
}

/// Moves a lead: read it, decide with the pure core, update it version-checked, append its events, the rules'
/// outbox messages and its history step.
#[allow(clippy::too_many_arguments)]
pub async fn move_lead(
    pg: &mut Pg,
    ctx: &Context,
    pipeline: &Pipeline,
    id: LeadId,
    expected: u64,
    stage: StageId,
    rules: Rules<'_>,
) -> Result<(), String> {
    let tenant = ctx.tenant;
    let w = pg.writes().await?;
    let read = pg.stmt(LEAD_AND_KEY).await?;
    let update = pg.stmt(LEAD_MOVE).await?;
    let partner_doc = pg.stmt(PARTNER_DOC).await?;
    let key_insert = pg.stmt(KEY_INSERT).await?;
    let tx = pg.client.transaction().await.map_err(pe)?;
    let row = tx
        .query_opt(&read, &[tenant.as_uuid(), id.as_uuid()])
        .await
        .map_err(pe)?
        .ok_or_else(|| format!("lead {id} not found"))?;
    let current: Lead = row.get::<_, Json<Lead>>(0).0;
    let key = row
        .get::<_, Option<Json<crm_core::erasure::SubjectKey>>>(1)
        .map(|k| k.0);
    let read_partner = || async {
        Ok::<_, String>(
            tx.query_opt(
                &partner_doc,
                &[tenant.as_uuid(), current.partner().as_uuid()],
            )
            .await
            .map_err(pe)?
            .map(|r| r.get::<_, Json<crm_core::partner::Partner>>(0).0),
        )
    };
    // With rules, the partner is read with the lead: the rules' views hold it, as the engine's do.
    let with_rules = if rules.is_some() {
        read_partner().await?
    } else {
        None
    };
    let mut m = decide_move(
        ctx,
        pipeline,
        &current,
        stage,
        rules,
        with_rules.as_ref(),
        Utc::now(),
    )?;
    // The partner's contacts only when an event may name people (an async read cannot run inside `seal`).
    let partner = if with_rules.is_some() {
        with_rules
    } else if m.events.iter().any(|e| e.kind.may_name_people()) {
        read_partner().await?
    } else {
        None
    };
    if let Some(k) = m.seal(key, || Ok(partner))? {
        tx.execute(&key_insert, &[tenant.as_uuid(), &k.subject, &Json(&k)])
            .await
            .map_err(pe)?;
    }
    let l = &m.lead;
    let n = tx
        .execute(
            &update,
            &[
                tenant.as_uuid(),
                id.as_uuid(),
                l.stage().as_uuid(),
                &l.status().kind().code(),
                &i16::from(l.probability()),
                &l.updated_at().timestamp_micros(),
                &(l.version() as i64),
                &Json(l),
                &(expected as i64),
            ],
        )
        .await
        .map_err(pe)?;
    m.updated(n)?;
    for o in &m.outbox {
        insert_outbox(&tx, &w, o).await?;
    }
    insert_history(&tx, &w, &m.history).await?;
    let refs: Vec<&DomainEvent> = m.events.iter().collect();
    insert_events(&tx, &w, tenant, &refs).await?;
    tx.commit().await.map_err(pe)
}

/// A lead's newest `limit` events.
pub async fn timeline(
    pg: &mut Pg,
    tenant: TenantId,
    lead: LeadId,
    limit: u32,
) -> Result<Vec<DomainEvent>, String> {
    let s = pg
        .stmt(
            "SELECT doc FROM events WHERE tenant = $1 AND lead = $2 ORDER BY at_us DESC, id DESC LIMIT $3",
        )
        .await?;
    let rows = pg
        .client
        .query(&s, &[tenant.as_uuid(), lead.as_uuid(), &i64::from(limit)])
        .await
        .map_err(pe)?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, Json<DomainEvent>>(0).0)
        .collect())
}

/// The board: per stage (in pipeline order) the lead count and per currency the expected and weighted sums.
pub async fn board(
    pg: &mut Pg,
    tenant: TenantId,
    pipeline: PipelineId,
) -> Result<Vec<BoardCol>, String> {
    let doc = pg
        .stmt("SELECT doc FROM pipelines WHERE tenant = $1 AND id = $2")
        .await?;
    let sums = pg
        .stmt(
            "SELECT stage, currency, count(*), sum(expected), sum(expected * probability) FROM leads \
             WHERE tenant = $1 AND pipeline = $2 AND status IN (0, 1) GROUP BY stage, currency",
        )
        .await?;
    let p: Pipeline = pg
        .client
        .query_one(&doc, &[tenant.as_uuid(), pipeline.as_uuid()])
        .await
        .map_err(pe)?
        .get::<_, Json<Pipeline>>(0)
        .0;
    let mut cols: Vec<BoardCol> = vec![Default::default(); p.stages().len()];
    for r in pg
        .client
        .query(&sums, &[tenant.as_uuid(), pipeline.as_uuid()])
        .await
        .map_err(pe)?
    {
        let stage: uuid::Uuid = r.get(0);
        let Some(i) = p.stages().iter().position(|s| *s.id.as_uuid() == stage) else {
            continue;
        };
        cols[i].0 += r.get::<_, i64>(2) as u64;
        let currency: Option<String> = r.get(1);
        let (e, w): (Option<Decimal>, Option<Decimal>) = (r.get(3), r.get(4));
        if let (Some(c), Some(e), Some(w)) = (currency, e, w) {
            let t = cols[i].1.entry(c).or_default();
            t.0 += units(e, 4);
            t.1 += units(w, 4);
        }
    }
    Ok(cols)
}

fn days(year: Period) -> (i32, i32) {
    (day_number(year.from()), day_number(year.to()))
}

/// Invoice and credit-note lines issued in `year`.
pub async fn lines_in(pg: &mut Pg, tenant: TenantId, year: Period) -> Result<u64, String> {
    let s = pg
        .stmt(
            "SELECT count(*) FROM document_lines WHERE tenant = $1 AND issue_day BETWEEN $2 AND $3 AND kind IN (0, 1)",
        )
        .await?;
    let (from, to) = days(year);
    let n: i64 = pg
        .client
        .query_one(&s, &[tenant.as_uuid(), &from, &to])
        .await
        .map_err(pe)?
        .get(0);
    Ok(n as u64)
}

/// The segment as one hand-written query ([`SEGMENT_SQL`]).
pub async fn segment(pg: &mut Pg, q: &SegmentQuery) -> Result<Vec<String>, String> {
    let s = pg.stmt(SEGMENT_SQL).await?;
    let threshold = Decimal::from(q.threshold_units);
    let rows = pg
        .client
        .query(
            &s,
            &[
                q.tenant.as_uuid(),
                &q.from,
                &q.to,
                q.category.as_uuid(),
                &q.lapsed,
                &threshold,
            ],
        )
        .await
        .map_err(pe)?;
    Ok(rows
        .iter()
        .map(|r| format!("{} {}", r.get::<_, uuid::Uuid>(0), r.get::<_, String>(1)))
        .collect())
}

/// Profitability sums per group over the year's sales documents.
pub async fn profit(
    pg: &mut Pg,
    tenant: TenantId,
    by: GroupBy,
    year: Period,
) -> Result<Vec<ProfitRow>, String> {
    let s = pg.stmt(profit_sql(by)?.postgres).await?;
    let (from, to) = days(year);
    let rows = pg
        .client
        .query(&s, &[tenant.as_uuid(), &from, &to])
        .await
        .map_err(pe)?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, Option<String>>(0),
                r.get::<_, i64>(1) as i128,
                r.get::<_, i64>(2) as i128,
                r.get::<_, i64>(3) as u64,
            )
        })
        .collect())
}

/// The attribution report's inputs and the campaigns' names, as [`super::work::sql::attribution_inputs`] reads
/// them on SQLite.
pub async fn attribution_inputs(
    pg: &mut Pg,
    tenant: TenantId,
    scope: crm_core::commerce::AttributionScope,
) -> Result<
    (
        crm_core::commerce::AttributionInputs,
        std::collections::BTreeMap<CampaignId, String>,
    ),
    String,
> {
    use crm_core::commerce::{AttributionInputs, Sale, Touch, TouchKind};
    let (df, dt) = days(scope.period);
    let first = scope.first_touch_day();
    let (mf, _) = micro_bounds(Period::new(first, first).map_err(|e| e.to_string())?);
    let (_, mt) = micro_bounds(scope.period);
    let t = tenant.as_uuid();
    let mut inputs = AttributionInputs::default();
    let s = pg
        .stmt(
            "SELECT count(*), COALESCE(SUM(revenue_units - cost_units), 0)::bigint FROM documents \
             WHERE tenant = $1 AND kind IN (0, 1) AND reporting = 'EUR' AND issue_day BETWEEN $2 AND $3",
        )
        .await?;
    let r = pg.client.query_one(&s, &[t, &df, &dt]).await.map_err(pe)?;
    (inputs.total_sales, inputs.total_units) =
        (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as i128);
    let s = pg
        .stmt(
            // The touched partners joined: `OR partner IN (subquery)` is rescanned per document when PostgreSQL
            // does not expect the subquery to fit `work_mem` (at M it never finished).
            "SELECT d.partner, d.issue_day, d.id, d.campaign, d.revenue_units - d.cost_units FROM documents d \
             LEFT JOIN (SELECT partner FROM campaign_targets WHERE tenant = $1 AND holdout = 0 \
             UNION SELECT partner FROM leads WHERE tenant = $1 \
             AND campaign IS NOT NULL) AS touched ON touched.partner = d.partner \
             WHERE d.tenant = $1 AND d.kind IN (0, 1) AND d.reporting = 'EUR' AND d.issue_day BETWEEN $2 AND $3 \
             AND (d.campaign IS NOT NULL OR touched.partner IS NOT NULL)",
        )
        .await?;
    for r in pg.client.query(&s, &[t, &df, &dt]).await.map_err(pe)? {
        inputs.sales.push(Sale {
            partner: crm_core::id::PartnerId::from_uuid(r.get(0)),
            issue_date: crm_core::commerce::from_day_number(r.get(1)).ok_or("a day")?,
            document: crm_core::id::DocumentId::from_uuid(r.get(2)),
            campaign: r.get::<_, Option<uuid::Uuid>>(3).map(CampaignId::from_uuid),
            gross_profit_units: r.get::<_, i64>(4) as i128,
        });
    }
    // The targets of launched campaigns: touched on the launch day and on the day a call reached them.
    let s = pg
        .stmt(
            "SELECT t.campaign, t.partner, c.doc ->> 'launched_at', t.reached_at \
             FROM campaign_targets t JOIN campaigns c ON c.tenant = t.tenant AND c.id = t.campaign \
             WHERE t.tenant = $1 AND t.holdout = 0 AND c.status <> 0",
        )
        .await?;
    for r in pg.client.query(&s, &[t]).await.map_err(pe)? {
        let (campaign, partner) = (
            CampaignId::from_uuid(r.get(0)),
            crm_core::id::PartnerId::from_uuid(r.get(1)),
        );
        inputs.touches.extend(super::work::target_touches(
            campaign,
            partner,
            r.get(2),
            r.get(3),
            first,
            scope.period.to(),
        )?);
    }
    // The leads a campaign brought (on their creation day) and the meetings held about them (on their start).
    for (text, kind) in [
        (
            "SELECT campaign, partner, created_us FROM leads WHERE tenant = $1 \
             AND campaign IS NOT NULL AND status <> 3 AND created_us >= $2 AND created_us < $3",
            TouchKind::Lead,
        ),
        (
            "SELECT l.campaign, l.partner, m.starts_us FROM meetings m \
             JOIN leads l ON l.tenant = m.tenant AND l.id = m.lead WHERE m.tenant = $1 AND m.status = 1 \
             AND m.starts_us >= $2 AND m.starts_us < $3 AND l.status <> 3 AND l.campaign IS NOT NULL",
            TouchKind::Meeting,
        ),
    ] {
        let s = pg.stmt(text).await?;
        for r in pg.client.query(&s, &[t, &mf, &mt]).await.map_err(pe)? {
            let c: uuid::Uuid = r.get(0);
            inputs.touches.push(Touch {
                partner: crm_core::id::PartnerId::from_uuid(r.get(1)),
                on: chrono::DateTime::from_timestamp_micros(r.get(2))
                    .ok_or("a time")?
                    .date_naive(),
                kind,
                campaign: CampaignId::from_uuid(c),
            });
        }
    }
    let mut names = std::collections::BTreeMap::new();
    let s = pg
        .stmt("SELECT id, doc ->> 'name' FROM campaigns WHERE tenant = $1")
        .await?;
    for r in pg.client.query(&s, &[t]).await.map_err(pe)? {
        names.insert(CampaignId::from_uuid(r.get(0)), r.get::<_, String>(1));
    }
    Ok((inputs, names))
}

/// Every campaign's report sums (targets, reached, leads, won, invoiced customers, revenue, cost, campaign cost):
/// one grouped statement per measure over the documents, driven from the campaigns.
pub async fn campaigns(
    pg: &mut Pg,
    tenant: TenantId,
    year: Period,
) -> Result<std::collections::BTreeMap<CampaignId, [i128; 8]>, String> {
    let (df, dt) = days(year);
    let (mf, mt) = micro_bounds(year);
    let t = tenant.as_uuid();
    // (statement, parameters, index of the first value)
    let queries: [(&'static str, Vec<&(dyn ToSql + Sync)>, usize); 5] = [
        (
            "SELECT campaign, count(*), COALESCE(SUM(CASE WHEN reached_at >= $2 AND reached_at < $3 THEN 1 ELSE 0 END), 0)::bigint \
             FROM campaign_targets WHERE tenant = $1 GROUP BY campaign",
            vec![t, &mf, &mt],
            0,
        ),
        (
            "SELECT c.id, count(*), COALESCE(SUM(CASE WHEN l.status = 1 THEN 1 ELSE 0 END), 0)::bigint \
             FROM campaigns c JOIN leads l ON l.tenant = c.tenant AND l.campaign = c.id \
             WHERE c.tenant = $1 AND l.campaign IS NOT NULL AND l.created_us >= $2 \
             AND l.created_us < $3 GROUP BY c.id",
            vec![t, &mf, &mt],
            2,
        ),
        (
            "SELECT campaign, count(*), NULL::bigint FROM (SELECT d.campaign, d.partner FROM campaigns c \
             JOIN documents d ON d.tenant = c.tenant AND d.campaign = c.id WHERE c.tenant = $1 AND d.kind IN (0, 1) \
             AND d.reporting = 'EUR' AND d.issue_day BETWEEN $2 AND $3 GROUP BY d.campaign, d.partner \
             HAVING SUM(d.revenue_units) > 0) x GROUP BY campaign",
            vec![t, &df, &dt],
            4,
        ),
        (
            "SELECT d.campaign, SUM(d.revenue_units)::bigint, SUM(d.cost_units)::bigint FROM campaigns c \
             JOIN documents d ON d.tenant = c.tenant AND d.campaign = c.id WHERE c.tenant = $1 AND d.kind IN (0, 1) \
             AND d.reporting = 'EUR' AND d.issue_day BETWEEN $2 AND $3 GROUP BY d.campaign",
            vec![t, &df, &dt],
            5,
        ),
        (
            "SELECT campaign, SUM(amount_units)::bigint, NULL::bigint FROM campaign_costs WHERE tenant = $1 \
             AND reporting = 'EUR' AND day BETWEEN $2 AND $3 GROUP BY campaign",
            vec![t, &df, &dt],
            7,
        ),
    ];
    let mut out = std::collections::BTreeMap::new();
    for (sql, params, at) in &queries {
        let s = pg.stmt(sql).await?;
        for r in pg.client.query(&s, params).await.map_err(pe)? {
            let id: uuid::Uuid = r.get(0);
            let v: &mut [i128; 8] = out.entry(CampaignId::from_uuid(id)).or_insert([0; 8]);
            v[*at] = r.get::<_, i64>(1) as i128;
            if let Some(b) = r.get::<_, Option<i64>>(2) {
                v[*at + 1] = b as i128;
            }
        }
    }
    Ok(out)
}

/// A tenant's content independent of ids and clock, in the same form as `work::tenant_digest` on SQLite.
pub async fn tenant_digest(
    pg: &mut Pg,
    tenant: TenantId,
    pipeline: &Pipeline,
) -> Result<String, String> {
    let pos = |s: uuid::Uuid| -> String {
        pipeline
            .stages()
            .iter()
            .position(|x| *x.id.as_uuid() == s)
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into())
    };
    let t = tenant.as_uuid();
    let c = &pg.client;
    let mut rows: Vec<String> = c
        .query(
            "SELECT stage, status::bigint, count(*), COALESCE(SUM(expected * 10000), 0)::bigint, SUM(version)::bigint, \
             SUM(probability)::bigint FROM leads WHERE tenant = $1 GROUP BY stage, status",
            &[t],
        )
        .await
        .map_err(pe)?
        .iter()
        .map(|r| {
            format!(
                "lead {} {} {} {} {} {}",
                pos(r.get(0)),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
                r.get::<_, i64>(3),
                r.get::<_, i64>(4),
                r.get::<_, i64>(5)
            )
        })
        .collect();
    for r in c
        .query(
            "SELECT kind, count(*) FROM events WHERE tenant = $1 GROUP BY kind",
            &[t],
        )
        .await
        .map_err(pe)?
    {
        rows.push(format!(
            "event {} {}",
            r.get::<_, String>(0),
            r.get::<_, i64>(1)
        ));
    }
    for r in c
        .query(
            "SELECT to_stage, status::bigint, count(*) FROM stage_history WHERE tenant = $1 GROUP BY to_stage, status",
            &[t],
        )
        .await
        .map_err(pe)?
    {
        rows.push(format!(
            "history {} {} {}",
            pos(r.get(0)),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2)
        ));
    }
    // Each lead's content, as on SQLite.
    let leads = c
        .query(
            "SELECT stage, status::bigint, (expected * 10000)::bigint, version::bigint, probability::bigint \
             FROM leads WHERE tenant = $1",
            &[t],
        )
        .await
        .map_err(pe)?
        .iter()
        .map(|r| super::work::LeadContent {
            stage: pos(r.get(0)),
            status: r.get(1),
            expected_units: r.get(2),
            version: r.get(3),
            probability: r.get(4),
        })
        .collect();
    rows.push(super::work::LeadContent::digest(leads));
    let outbox: i64 = c
        .query_one("SELECT count(*) FROM outbox WHERE tenant = $1", &[t])
        .await
        .map_err(pe)?
        .get(0);
    rows.push(format!("outbox {outbox}"));
    rows.sort();
    Ok(rows.iter().map(|r| format!("{r}; ")).collect())
}

/// Deletes every row of `tenant` (a writing workload's scratch tenant) from every table of the schema with a
/// `tenant` column.
///
/// With the rights to (a superuser, as on the server of `scripts/with-postgres`) it switches the session's
/// foreign-key triggers off for the deletes: at M size the check of each deleted lead against `stage_history` took
/// 1.2 ms (20 s for 16k leads), so a scratch tenant took minutes to drop between repetitions. Otherwise children go
/// before parents, found by retrying the tables a foreign key held back.
pub async fn drop_tenant(pg: &mut Pg, tenant: TenantId) -> Result<(), String> {
    let c = &pg.client;
    let unchecked = c
        .batch_execute("SET session_replication_role = replica")
        .await
        .is_ok();
    let result = delete_tenant_rows(c, tenant).await;
    if unchecked {
        c.batch_execute("SET session_replication_role = DEFAULT")
            .await
            .map_err(pe)?;
    }
    result
}

async fn delete_tenant_rows(c: &Client, tenant: TenantId) -> Result<(), String> {
    let mut tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'tenant' ORDER BY 1",
            &[],
        )
        .await
        .map_err(pe)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    while !tables.is_empty() {
        let mut held = Vec::new();
        let mut last = String::new();
        for table in &tables {
            if let Err(e) = c
                .execute(
                    &format!("DELETE FROM \"{table}\" WHERE tenant = $1"),
                    &[tenant.as_uuid()],
                )
                .await
            {
                last = pe(e);
                held.push(table.clone());
            }
        }
        if held.len() == tables.len() {
            return Err(format!("cannot drop tenant {tenant}: {last}"));
        }
        tables = held;
    }
    Ok(())
}

/// Creates (or replaces) the schema's `bench_manifest` table holding `m`, so a later run can reuse the data.
pub async fn save_manifest(c: &Client, m: &Manifest) -> Result<(), String> {
    let text = serde_json::to_string(m).map_err(|e| e.to_string())?;
    c.batch_execute("CREATE TABLE IF NOT EXISTS bench_manifest (doc text NOT NULL); DELETE FROM bench_manifest;")
        .await
        .map_err(pe)?;
    c.execute("INSERT INTO bench_manifest (doc) VALUES ($1)", &[&text])
        .await
        .map_err(pe)?;
    Ok(())
}

/// The manifest a previous generation stored in the schema, if any.
pub async fn load_manifest(c: &Client) -> Result<Option<Manifest>, String> {
    let exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name = 'bench_manifest')",
            &[],
        )
        .await
        .map_err(pe)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    match c
        .query_opt("SELECT doc FROM bench_manifest", &[])
        .await
        .map_err(pe)?
    {
        Some(r) => serde_json::from_str(&r.get::<_, String>(0))
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// Drops the whole schema (a fresh generation starts from nothing).
pub async fn drop_schema(c: &Client, schema: &str) -> Result<(), String> {
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .map_err(pe)
}

/// Records a sales document in one transaction (see `record::statements`): checks its partner, runs the
/// prepared statements, appends the event.
pub async fn record_document(
    pg: &mut Pg,
    partner: PartnerId,
    statements: &[(&'static str, Vec<crm_storage_sql::Param>)],
    e: &DomainEvent,
) -> Result<(), String> {
    let w = pg.writes().await?;
    let exists = pg.stmt(PARTNER_EXISTS).await?;
    let mut prepared = Vec::with_capacity(statements.len());
    for (text, _) in statements {
        prepared.push(pg.stmt(text).await?);
    }
    let tx = pg.client.transaction().await.map_err(pe)?;
    if tx
        .query_opt(&exists, &[e.tenant.as_uuid(), partner.as_uuid()])
        .await
        .map_err(pe)?
        .is_none()
    {
        return Err(format!("partner {partner} not found"));
    }
    for ((_, params), s) in statements.iter().zip(&prepared) {
        let values: Vec<crm_storage_postgres::ParamValue> = params
            .iter()
            .cloned()
            .map(crm_storage_postgres::param_value)
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        tx.execute(s, &refs).await.map_err(pe)?;
    }
    insert_events(&tx, &w, e.tenant, &[e]).await?;
    tx.commit().await.map_err(pe)
}

/// A tenant's recorded documents, lines, events and roll-ups as one digest (see `record::digest_queries`).
pub async fn record_digest(pg: &mut Pg, tenant: TenantId) -> Result<String, String> {
    let mut lines = Vec::new();
    for q in super::record::digest_queries(true) {
        for r in pg.client.query(q, &[tenant.as_uuid()]).await.map_err(pe)? {
            lines.push(r.get::<_, Option<String>>(0).unwrap_or_default());
        }
    }
    Ok(super::work::Digest::of_lines(lines).hex())
}
