//! The workloads, each written twice: through the engine ([`Impl::Ours`]) and as plain SQL with prepared statements
//! on a second connection to the same database file ([`Impl::Sql`]). Both return a [`Run`] whose `digest` describes
//! the result independently of ids and clock, so the two must be equal.

use super::gen::{Manifest, World};
use chrono::Utc;
use crm_core::actor::Context;
use crm_core::event::{DomainEvent, StageHistoryEntry};
use crm_core::id::{LeadId, TenantId};
use crm_core::lead::{self, Facts, Lead, LeadCommand, StatusKind};
use crm_core::pipeline::Pipeline;
use crm_core::service::{lead_subject, CrmService};
use crm_core::store::{ChangeSet, LeadSort, PageRequest, Store, TimelineOf, Write};
use crm_storage_sqlite::SqliteStore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Which implementation runs a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// The engine: `CrmService` over `SqliteStore`.
    Ours,
    /// Plain SQL with prepared statements (rusqlite) on the same schema and data.
    Sql,
}

impl Impl {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Sql => "sql",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ours" => Some(Self::Ours),
            "sql" => Some(Self::Sql),
            _ => None,
        }
    }
}

/// A workload's description.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Its id.
    pub id: &'static str,
    /// What it does, for the report.
    pub what: &'static str,
    /// What `rows` counts.
    pub unit: &'static str,
}

/// The workloads, in report order.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        id: "ingest_single",
        what: "1. enter a lead (lead + event + history), one transaction each",
        unit: "leads",
    },
    Workload {
        id: "ingest_batch",
        what: "1. ingest leads with their histories, 10k-row change sets",
        unit: "rows",
    },
    Workload {
        id: "transition",
        what: "2. move a lead to another stage, one transaction each",
        unit: "moves",
    },
    Workload {
        id: "timeline",
        what: "3. a lead's timeline, newest 50 entries",
        unit: "entries",
    },
    Workload {
        id: "board",
        what: "3. the pipeline board of the main tenant",
        unit: "leads",
    },
];

/// The workload named `id`.
pub fn workload(id: &str) -> Option<Workload> {
    WORKLOADS.iter().copied().find(|w| w.id == id)
}

/// How much work each repetition does, from the data-set size.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Leads entered one at a time.
    pub single: u64,
    /// Leads ingested in batches.
    pub batch: u64,
    /// Stage moves.
    pub moves: u64,
    /// Timelines read.
    pub timelines: usize,
}

impl Scale {
    /// The scale for a data set of `leads` leads.
    pub fn for_leads(leads: u64) -> Self {
        Self {
            single: (leads / 10).clamp(100, 2_000),
            batch: (leads / 10).clamp(500, 50_000),
            moves: (leads / 10).clamp(100, 2_000),
            timelines: 500,
        }
    }
}

/// The outcome of running a workload several times.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Seconds per repetition.
    pub secs: Vec<f64>,
    /// Rows (see [`Workload::unit`]) per repetition.
    pub rows: u64,
    /// The result, independent of ids and clock: must be equal between implementations.
    pub digest: String,
}

/// What a workload runs against: the engine over the database file, and a second plain connection to it.
#[derive(Debug)]
pub struct Env {
    /// The database file.
    pub db: PathBuf,
    /// The generated data's manifest.
    pub manifest: Manifest,
    /// The engine's store.
    pub store: Arc<SqliteStore>,
    /// The engine.
    pub svc: CrmService,
    /// The baseline's connection.
    pub conn: Connection,
    /// The work per repetition.
    pub scale: Scale,
    /// Tenants created by the writing workloads, removed after each repetition so the data set stays as generated.
    scratch: Vec<TenantId>,
}

/// Opens a plain connection configured like the store's (WAL, NORMAL sync, foreign keys, busy timeout).
pub fn plain_connection(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

impl Env {
    /// Opens the engine and the baseline connection on `db`.
    pub fn open(db: &Path, manifest: Manifest) -> Result<Self, String> {
        let store = Arc::new(SqliteStore::open_file(db).map_err(|e| e.to_string())?);
        let svc = CrmService::builder()
            .store(store.clone() as Arc<dyn Store>)
            .build()
            .map_err(|e| e.to_string())?;
        let conn = plain_connection(db).map_err(|e| e.to_string())?;
        let scale = Scale::for_leads(manifest.leads);
        Ok(Self {
            db: db.to_path_buf(),
            manifest,
            store,
            svc,
            conn,
            scale,
            scratch: Vec::new(),
        })
    }

    /// Runs `workload` with `imp`, `reps` times.
    pub async fn run(&mut self, workload: &str, imp: Impl, reps: usize) -> Result<Run, String> {
        let mut secs = Vec::with_capacity(reps);
        let mut rows = 0;
        let mut digest = String::new();
        for rep in 0..reps {
            let (s, r, d) = match workload {
                "ingest_single" => self.ingest_single(imp, rep).await,
                "ingest_batch" => self.ingest_batch(imp, rep).await,
                "transition" => self.transition(imp, rep).await,
                "timeline" => self.timeline(imp).await,
                "board" => self.board(imp).await,
                other => Err(format!("unknown workload `{other}`")),
            }?;
            for t in std::mem::take(&mut self.scratch) {
                drop_tenant(&self.conn, t)?;
            }
            if rep > 0 && d != digest {
                return Err(format!(
                    "{workload}/{}: repetition {rep} gave another result",
                    imp.name()
                ));
            }
            secs.push(s);
            rows = r;
            digest = d;
        }
        Ok(Run { secs, rows, digest })
    }

    /// A fresh tenant with the same logical content for both implementations: pipeline, lost reasons, partners.
    async fn fresh_world(&mut self, rep: usize) -> Result<World, String> {
        let mut w = World::new(self.manifest.seed ^ 0x5EED, 100 + rep as u64, 200);
        retenant(&mut w, TenantId::new());
        self.scratch.push(w.tenant);
        let mut sink = super::gen::Sink::new(self.store.as_ref(), w.tenant);
        let mut buf = w.setup_writes();
        for i in 0..w.partners {
            w.partner_writes(i, &mut buf);
        }
        sink.push(&mut buf).await.map_err(|e| e.to_string())?;
        sink.flush().await.map_err(|e| e.to_string())?;
        Ok(w)
    }

    async fn ingest_single(&mut self, imp: Impl, rep: usize) -> Result<(f64, u64, String), String> {
        let w = self.fresh_world(rep).await?;
        let n = self.scale.single;
        let mut rng = ChaCha8Rng::seed_from_u64(self.manifest.seed ^ 0x1);
        let ctx = Context::user(w.tenant, w.users[0]);
        let started = Instant::now();
        match imp {
            Impl::Ours => {
                for i in 0..n {
                    let (_, nl) = w.new_lead(&mut rng, i);
                    self.svc
                        .enter_lead(&ctx, nl)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Impl::Sql => {
                for i in 0..n {
                    let (partner, nl) = w.new_lead(&mut rng, i);
                    let now = Utc::now();
                    let tx = self
                        .conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(se)?;
                    let found = tx
                        .prepare_cached("SELECT 1 FROM partners WHERE tenant = ?1 AND id = ?2")
                        .and_then(|mut s| {
                            s.exists(params![w.tenant.as_bytes(), partner.as_bytes()])
                        })
                        .map_err(se)?;
                    if !found {
                        return Err(format!("partner {partner} not found"));
                    }
                    let (lead, kind) = nl
                        .build(w.tenant, partner, &w.pipeline, now)
                        .map_err(|e| e.to_string())?;
                    let e = DomainEvent::new(&ctx, now, lead_subject(&lead), kind);
                    let h = StageHistoryEntry {
                        tenant: w.tenant,
                        lead: lead.id,
                        pipeline: w.pipeline.id,
                        from: None,
                        to: lead.stage,
                        status: StatusKind::Open,
                        at: now,
                        actor: ctx.actor.clone(),
                    };
                    sql::insert_lead(&tx, &lead)?;
                    sql::insert_event(&tx, &e)?;
                    sql::insert_history(&tx, &h)?;
                    tx.commit().map_err(se)?;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((secs, n, tenant_digest(&self.conn, w.tenant, &w.pipeline)?))
    }

    async fn ingest_batch(&mut self, imp: Impl, rep: usize) -> Result<(f64, u64, String), String> {
        let w = self.fresh_world(rep).await?;
        let n = self.scale.batch;
        let mut rng = ChaCha8Rng::seed_from_u64(self.manifest.seed ^ 0x2);
        let mut elapsed = 0.0;
        let mut rows = 0u64;
        let mut buf = Vec::new();
        let t0 = super::gen::epoch();
        for i in 0..n {
            let at = t0 + chrono::Duration::minutes(i as i64);
            w.lead_writes(&mut rng, i, at, false, &mut buf);
            if buf.len() >= super::gen::BATCH || i + 1 == n {
                let cs = ChangeSet {
                    writes: std::mem::take(&mut buf),
                };
                rows += cs.writes.len() as u64;
                let started = Instant::now();
                match imp {
                    Impl::Ours => {
                        self.store
                            .ingest(w.tenant, cs)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Impl::Sql => {
                        let tx = self
                            .conn
                            .transaction_with_behavior(TransactionBehavior::Immediate)
                            .map_err(se)?;
                        for wr in &cs.writes {
                            match wr {
                                Write::InsertLead(l) => sql::insert_lead(&tx, l)?,
                                Write::AppendEvent(e) => sql::insert_event(&tx, e)?,
                                Write::AppendStageHistory(h) => sql::insert_history(&tx, h)?,
                                other => return Err(format!("unexpected write {other:?}")),
                            }
                        }
                        tx.commit().map_err(se)?;
                    }
                }
                elapsed += started.elapsed().as_secs_f64();
            }
        }
        Ok((
            elapsed,
            rows,
            tenant_digest(&self.conn, w.tenant, &w.pipeline)?,
        ))
    }

    async fn transition(&mut self, imp: Impl, rep: usize) -> Result<(f64, u64, String), String> {
        let w = self.fresh_world(rep).await?;
        let n = self.scale.moves;
        let mut rng = ChaCha8Rng::seed_from_u64(self.manifest.seed ^ 0x3);
        let ctx = Context::user(w.tenant, w.users[0]);
        // Set-up (not timed): n leads in the first stage.
        let mut ids = Vec::with_capacity(n as usize);
        let mut sink = super::gen::Sink::new(self.store.as_ref(), w.tenant);
        let t0 = super::gen::epoch();
        for i in 0..n {
            let (partner, nl) = w.new_lead(&mut rng, i);
            let at = t0 + chrono::Duration::minutes(i as i64);
            let (mut lead, kind) = nl
                .build(w.tenant, partner, &w.pipeline, at)
                .map_err(|e| e.to_string())?;
            lead.id = LeadId::new();
            let event = DomainEvent::new(&ctx, at, lead_subject(&lead), kind);
            let mut buf = vec![Write::InsertLead(lead.clone()), Write::AppendEvent(event)];
            ids.push(lead.id);
            sink.push(&mut buf).await.map_err(|e| e.to_string())?;
        }
        sink.flush().await.map_err(|e| e.to_string())?;
        let targets: Vec<_> = w.pipeline.stages[1..4].iter().map(|s| s.id).collect();
        let started = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            let stage = targets[i % targets.len()];
            match imp {
                Impl::Ours => {
                    self.svc
                        .transition(&ctx, *id, 1, LeadCommand::MoveTo { stage })
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Impl::Sql => sql::move_lead(&mut self.conn, &ctx, &w.pipeline, *id, 1, stage)?,
            }
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((secs, n, tenant_digest(&self.conn, w.tenant, &w.pipeline)?))
    }

    /// The leads whose timelines the timeline workload reads: the long ones first, then a uniform sample.
    pub fn timeline_leads(&self) -> Vec<LeadId> {
        self.manifest
            .hot_leads
            .iter()
            .chain(self.manifest.sample_leads.iter())
            .copied()
            .take(self.scale.timelines)
            .collect()
    }

    async fn timeline(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        let ids = self.timeline_leads();
        let tenant = self.manifest.tenant;
        let mut d = Digest::default();
        let mut rows = 0u64;
        let started = Instant::now();
        for id in &ids {
            let events = match imp {
                Impl::Ours => {
                    self.svc
                        .timeline(tenant, TimelineOf::Lead(*id), &PageRequest::first(50))
                        .await
                        .map_err(|e| e.to_string())?
                        .items
                }
                Impl::Sql => sql::timeline(&self.conn, tenant, *id, 50)?,
            };
            rows += events.len() as u64;
            for e in &events {
                d.add(e.id.as_bytes());
            }
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((
            secs,
            rows,
            format!("{} timelines, {rows} entries, {}", ids.len(), d.hex()),
        ))
    }

    async fn board(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        let tenant = self.manifest.tenant;
        let pipeline = self.manifest.pipeline;
        let started = Instant::now();
        // stage position -> (count, currency -> (expected units, weighted units × 100))
        let cols: Vec<BoardCol> = match imp {
            Impl::Ours => {
                let b = self
                    .svc
                    .board(tenant, pipeline)
                    .await
                    .map_err(|e| e.to_string())?;
                b.columns
                    .iter()
                    .map(|c| {
                        let t = c
                            .totals
                            .iter()
                            .map(|t| {
                                (
                                    t.currency.code().to_string(),
                                    (units(t.expected, 4), units(t.weighted, 6)),
                                )
                            })
                            .collect();
                        (c.count, t)
                    })
                    .collect()
            }
            Impl::Sql => sql::board(&self.conn, tenant, pipeline)?,
        };
        let secs = started.elapsed().as_secs_f64();
        let rows = cols.iter().map(|c| c.0).sum();
        Ok((secs, rows, format!("{cols:?}")))
    }
}

/// A board column: lead count, and per currency (expected units, weighted units × 100).
pub type BoardCol = (u64, BTreeMap<String, (i128, i128)>);

fn units(d: rust_decimal::Decimal, scale: u32) -> i128 {
    let mut d = d;
    d.rescale(scale);
    d.mantissa()
}

/// Moves `w` (its records) to `tenant`.
pub fn retenant(w: &mut World, tenant: TenantId) {
    w.tenant = tenant;
    w.pipeline.tenant = tenant;
    for r in &mut w.reasons {
        r.tenant = tenant;
    }
}

/// Deletes every row of `tenant` (the writing workloads' scratch tenants) from every table with a `tenant` column.
pub fn drop_tenant(conn: &Connection, tenant: TenantId) -> Result<(), String> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT m.name FROM sqlite_master m WHERE m.type = 'table' \
             AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'tenant')",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(se)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE;")
        .map_err(se)?;
    for table in &tables {
        conn.execute(
            &format!("DELETE FROM \"{table}\" WHERE tenant = ?1"),
            params![tenant.as_bytes()],
        )
        .map_err(se)?;
    }
    conn.execute_batch("COMMIT; PRAGMA foreign_keys = ON;")
        .map_err(se)
}

fn se(e: rusqlite::Error) -> String {
    e.to_string()
}

/// FNV-1a: a stable digest of byte strings.
#[derive(Debug, Clone, Copy)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Adds bytes.
    pub fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }

    /// The digest as hex.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// A tenant's content independent of ids and clock: leads per (stage position, status) with their revenue and
/// version sums, events per kind, stage-history steps per (stage position, status).
pub fn tenant_digest(
    conn: &Connection,
    tenant: TenantId,
    pipeline: &Pipeline,
) -> Result<String, String> {
    let pos = |b: Vec<u8>| -> String {
        pipeline
            .stages
            .iter()
            .position(|s| s.id.as_bytes()[..] == b[..])
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into())
    };
    let t = tenant.as_bytes();
    let mut out = String::new();
    let mut stmt = conn
        .prepare(
            "SELECT stage, status, count(*), coalesce(sum(expected_units), 0), sum(version), sum(probability) \
             FROM leads WHERE tenant = ?1 GROUP BY stage, status",
        )
        .map_err(se)?;
    let mut rows: Vec<String> = stmt
        .query_map(params![t], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(se)?
        .map(|r| r.map(|(s, st, n, u, v, p)| format!("lead {} {st} {n} {u} {v} {p}", pos(s))))
        .collect::<rusqlite::Result<_>>()
        .map_err(se)?;
    let mut stmt = conn
        .prepare("SELECT kind, count(*) FROM events WHERE tenant = ?1 GROUP BY kind")
        .map_err(se)?;
    rows.extend(
        stmt.query_map(params![t], |r| {
            Ok(format!(
                "event {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?
            ))
        })
        .map_err(se)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(se)?,
    );
    let mut stmt = conn
        .prepare("SELECT to_stage, status, count(*) FROM stage_history WHERE tenant = ?1 GROUP BY to_stage, status")
        .map_err(se)?;
    rows.extend(
        stmt.query_map(params![t], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(se)?
        .map(|r| r.map(|(s, st, n)| format!("history {} {st} {n}", pos(s))))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(se)?,
    );
    rows.sort();
    for r in rows {
        out.push_str(&r);
        out.push_str("; ");
    }
    Ok(out)
}

/// The plain-SQL baselines: the same rows, written and read with prepared statements on the same schema.
pub mod sql {
    use super::*;

    /// Inserts a lead row (and its tags) exactly as the store does.
    pub fn insert_lead(tx: &Transaction<'_>, l: &Lead) -> Result<(), String> {
        let currency = l.expected_revenue.map(|m| m.currency().code());
        let units = l.expected_revenue.map(|m| m.to_units());
        tx.prepare_cached(
            "INSERT INTO leads (tenant, id, partner, pipeline, stage, status, owner, currency, expected_units, revenue_key, \
             probability, created_at, updated_at, title_lc, version, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )
        .and_then(|mut s| {
            s.execute(params![
                l.tenant.as_bytes(),
                l.id.as_bytes(),
                l.partner.as_bytes(),
                l.pipeline.as_bytes(),
                l.stage.as_bytes(),
                l.status.kind().code(),
                l.owner.as_ref().map(|o| o.as_bytes()),
                currency,
                units,
                LeadSort::ExpectedRevenueDesc.key(l),
                l.probability,
                l.created_at.timestamp_micros(),
                l.updated_at.timestamp_micros(),
                l.title.to_lowercase(),
                l.version as i64,
                serde_json::to_string(l).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map_err(se)?;
        let mut tags = tx
            .prepare_cached("INSERT INTO lead_tags (tenant, tag, lead) VALUES (?1, ?2, ?3)")
            .map_err(se)?;
        for tag in &l.tags {
            tags.execute(params![l.tenant.as_bytes(), tag, l.id.as_bytes()])
                .map_err(se)?;
        }
        Ok(())
    }

    /// Appends an event row.
    pub fn insert_event(tx: &Transaction<'_>, e: &DomainEvent) -> Result<(), String> {
        tx.prepare_cached(
            "INSERT INTO events (tenant, id, at, lead, partner, request, kind, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                e.tenant.as_bytes(),
                e.id.as_bytes(),
                e.at.timestamp_micros(),
                e.subject.lead.as_ref().map(|x| x.as_bytes()),
                e.subject.partner.as_ref().map(|x| x.as_bytes()),
                e.subject.request.as_ref().map(|x| x.as_bytes()),
                e.kind.name(),
                serde_json::to_string(e).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map(|_| ())
        .map_err(se)
    }

    /// Appends a stage-history row.
    pub fn insert_history(tx: &Transaction<'_>, h: &StageHistoryEntry) -> Result<(), String> {
        tx.prepare_cached(
            "INSERT INTO stage_history (tenant, lead, pipeline, to_stage, status, at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                h.tenant.as_bytes(),
                h.lead.as_bytes(),
                h.pipeline.as_bytes(),
                h.to.as_bytes(),
                h.status.code(),
                h.at.timestamp_micros(),
                serde_json::to_string(h).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
            ])
        })
        .map(|_| ())
        .map_err(se)
    }

    /// Moves a lead: read it, decide with the pure core, update it version-checked, append its events and history.
    pub fn move_lead(
        conn: &mut Connection,
        ctx: &Context,
        pipeline: &Pipeline,
        id: LeadId,
        expected: u64,
        stage: crm_core::id::StageId,
    ) -> Result<(), String> {
        let tenant = ctx.tenant;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(se)?;
        let doc: Option<String> = tx
            .prepare_cached("SELECT doc FROM leads WHERE tenant = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row(params![tenant.as_bytes(), id.as_bytes()], |r| r.get(0))
                    .optional()
            })
            .map_err(se)?;
        let current: Lead =
            serde_json::from_str(&doc.ok_or_else(|| format!("lead {id} not found"))?)
                .map_err(|e| e.to_string())?;
        let now = Utc::now();
        let facts = Facts {
            lost_reasons: &[],
            requests: &[],
        };
        let t = lead::apply(
            &current,
            LeadCommand::MoveTo { stage },
            pipeline,
            facts,
            now,
        )
        .map_err(|e| e.to_string())?;
        let l = &t.lead;
        let n = tx
            .prepare_cached(
                "UPDATE leads SET stage = ?3, status = ?4, probability = ?5, updated_at = ?6, version = ?7, doc = ?8 \
                 WHERE tenant = ?1 AND id = ?2 AND version = ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_bytes(),
                    id.as_bytes(),
                    l.stage.as_bytes(),
                    l.status.kind().code(),
                    l.probability,
                    l.updated_at.timestamp_micros(),
                    l.version as i64,
                    serde_json::to_string(l).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                    expected as i64
                ])
            })
            .map_err(se)?;
        if n != 1 {
            return Err(format!("lead {id} changed meanwhile"));
        }
        for k in &t.events {
            insert_event(&tx, &DomainEvent::new(ctx, now, lead_subject(l), k.clone()))?;
        }
        insert_history(
            &tx,
            &StageHistoryEntry {
                tenant,
                lead: id,
                pipeline: pipeline.id,
                from: Some(current.stage),
                to: l.stage,
                status: l.status.kind(),
                at: now,
                actor: ctx.actor.clone(),
            },
        )?;
        tx.commit().map_err(se)
    }

    /// A lead's newest `limit` events.
    pub fn timeline(
        conn: &Connection,
        tenant: TenantId,
        lead: LeadId,
        limit: u32,
    ) -> Result<Vec<DomainEvent>, String> {
        let mut stmt = conn
            .prepare_cached("SELECT doc FROM events WHERE tenant = ?1 AND lead = ?2 ORDER BY at DESC, id DESC LIMIT ?3")
            .map_err(se)?;
        let rows = stmt
            .query_map(params![tenant.as_bytes(), lead.as_bytes(), limit], |r| {
                r.get::<_, String>(0)
            })
            .map_err(se)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r.map_err(se)?).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    /// The board: per stage (in pipeline order) the lead count and per currency the expected and weighted sums.
    pub fn board(
        conn: &Connection,
        tenant: TenantId,
        pipeline: crm_core::id::PipelineId,
    ) -> Result<Vec<BoardCol>, String> {
        let doc: String = conn
            .prepare_cached("SELECT doc FROM pipelines WHERE tenant = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row(params![tenant.as_bytes(), pipeline.as_bytes()], |r| {
                    r.get(0)
                })
            })
            .map_err(se)?;
        let p: Pipeline = serde_json::from_str(&doc).map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT stage, currency, count(*), sum(expected_units), sum(expected_units * probability) FROM leads \
                 WHERE tenant = ?1 AND pipeline = ?2 AND status IN (0, 1) GROUP BY stage, currency",
            )
            .map_err(se)?;
        let mut cols: Vec<BoardCol> = vec![Default::default(); p.stages.len()];
        let rows = stmt
            .query_map(params![tenant.as_bytes(), pipeline.as_bytes()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })
            .map_err(se)?;
        for r in rows {
            let (stage, currency, n, e, w) = r.map_err(se)?;
            let Some(i) = p
                .stages
                .iter()
                .position(|s| s.id.as_bytes()[..] == stage[..])
            else {
                continue;
            };
            cols[i].0 += n as u64;
            if let (Some(c), Some(e), Some(w)) = (currency, e, w) {
                let t = cols[i].1.entry(c).or_default();
                t.0 += e as i128;
                t.1 += w as i128;
            }
        }
        Ok(cols)
    }
}
