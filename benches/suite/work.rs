//! The workloads, each written twice: through the engine ([`Impl::Ours`]) and as plain SQL with prepared statements
//! on a second connection to the same database file ([`Impl::Sql`]). Both return a [`Run`] whose `digest` describes
//! the result independently of ids and clock, so the two must be equal.

use super::gen::{Manifest, World};
use chrono::Utc;
use crm_core::actor::Context;
use crm_core::commerce::{
    day_number, BoughtMode, Cmp, CommerceStore, Criteria, GroupBy, Item, LastSale, Period,
    SumsQuery,
};
use crm_core::event::{DomainEvent, StageHistoryEntry};
use crm_core::id::{LeadId, TenantId};
use crm_core::lead::{self, Facts, Lead, LeadCommand, StatusKind};
use crm_core::money::{Currency, Money};
use crm_core::pipeline::Pipeline;
use crm_core::service::{lead_subject, CrmService};
use crm_core::store::{ChangeSet, LeadSort, PageRequest, Store, TimelineOf, Write};
use crm_storage_postgres::{PgConfig, PgStore};
use crm_storage_sqlite::SqliteStore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::Path;
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

/// The workloads that write.
pub const WRITES: &[&str] = &[
    "ingest_single",
    "ingest_batch",
    "transition",
    "transition_rules",
    "record_document",
];

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
        id: "transition_rules",
        what: "2. move a lead with the example communication scheme loaded (rules evaluated on the lead and its partner, outbox written; the baseline reads the partner with the lead as ours does, and evaluates the same scheme written in plain Rust, not Rhai: `rules_eval` measures that difference alone)",
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
    Workload {
        id: "segment",
        what: "4. segment: lapsed > 90 days, 2025 volume > 20k EUR, bought a category in 2025",
        unit: "customers",
    },
    Workload {
        id: "profit_customer",
        what: "5. profitability by customer, one year",
        unit: "lines",
    },
    Workload {
        id: "profit_group",
        what: "5. profitability by customer group, one year",
        unit: "lines",
    },
    Workload {
        id: "profit_customer_mid",
        what: "5. profitability by customer, 15 February to 14 November (partial months at both ends)",
        unit: "lines",
    },
    Workload {
        id: "profit_group_mid",
        what: "5. profitability by customer group, 15 February to 14 November (partial months at both ends)",
        unit: "lines",
    },
    Workload {
        id: "campaign_roi",
        what: "5. campaign report sums (ROI inputs) for every campaign, one year",
        unit: "campaigns",
    },
    Workload {
        id: "attribution",
        what: "5. attribution report under six models (invoice link, first, last, linear, time decay, position), one year, 90-day lookback (baseline: hand-written statements reading the same sales and lead touches, credited by the same pure code)",
        unit: "sales",
    },
    Workload {
        id: "record_document",
        what: "7. record a sales invoice with its lines, one transaction each (the roll-ups kept in it; the baseline inserts the same rows and upserts the same roll-up rows, values computed in Rust, and reads nothing)",
        unit: "documents",
    },
    Workload {
        id: "rules_eval",
        what: "6. the example scheme in Rhai on stage moves and new leads (baseline: the same scheme in plain Rust)",
        unit: "evaluations",
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
    /// Rule evaluations.
    pub evaluations: u64,
}

impl Scale {
    /// The smoke tests' scale when they compare PostgreSQL with SQLite (small: each side runs every workload).
    pub const SMOKE_PG: Scale = Scale {
        single: 30,
        batch: 400,
        moves: 30,
        timelines: 30,
        evaluations: 100,
    };

    /// The scale for a data set of `leads` leads.
    pub fn for_leads(leads: u64) -> Self {
        Self {
            single: (leads / 10).clamp(100, 2_000),
            batch: (leads / 10).clamp(500, 50_000),
            moves: (leads / 10).clamp(100, 2_000),
            timelines: 500,
            evaluations: 20_000,
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

/// Which database a workload runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: `SqliteStore`, baseline on rusqlite.
    Sqlite,
    /// `PgStore` on a PostgreSQL server, baseline on tokio-postgres.
    Postgres,
}

impl Backend {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sqlite" => Some(Self::Sqlite),
            "postgres" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// The baseline's plain connection: rusqlite on the store's database file, or tokio-postgres on the store's
/// schema.
pub enum Base {
    /// A second connection to the SQLite file.
    Sqlite(Connection),
    /// A second connection to the PostgreSQL database, `search_path` set to the store's schema.
    Postgres(super::pgsql::Pg),
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(_) => f.write_str("Base::Sqlite"),
            Self::Postgres(_) => f.write_str("Base::Postgres"),
        }
    }
}

/// What a workload runs against: the engine over a store, and a second, plain connection to the same data.
#[derive(Debug)]
pub struct Env {
    /// The generated data's manifest.
    pub manifest: Manifest,
    /// The engine's store.
    pub store: Arc<dyn Store>,
    /// The same store, as the commerce store.
    pub commerce: Arc<dyn CommerceStore>,
    /// The engine.
    pub svc: CrmService,
    /// The baseline's connection.
    pub base: Base,
    /// The work per repetition.
    pub scale: Scale,
    /// Tenants created by the writing workloads, removed after each repetition so the data set stays as generated.
    scratch: Vec<TenantId>,
}

/// Opens a plain connection configured like the store's (WAL, NORMAL sync, foreign keys, busy timeout, and
/// `secure_delete`: the store overwrites what a change removes, so an erased value leaves nothing in free space,
/// and a hand-written recorder with that guarantee pays the same).
pub fn plain_connection(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON;",
    )?;
    Ok(conn)
}

/// Opens a plain tokio-postgres connection to `url` with `search_path` set to `schema` (the connection task runs
/// on the current runtime).
pub async fn plain_pg(url: &str, schema: &str) -> Result<tokio_postgres::Client, String> {
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    cfg.options(format!("-c search_path={schema}"));
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Connects the engine's store to `schema` of the server at `url` (creating and migrating it when new).
pub async fn pg_store(url: &str, schema: &str) -> Result<PgStore, String> {
    PgStore::connect(PgConfig::from_url(url).with_schema(schema))
        .await
        .map_err(|e| e.to_string())
}

impl Env {
    fn with(
        store: Arc<dyn Store>,
        commerce: Arc<dyn CommerceStore>,
        base: Base,
        manifest: Manifest,
    ) -> Result<Self, String> {
        let svc = CrmService::builder()
            .store(store.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let scale = Scale::for_leads(manifest.leads);
        Ok(Self {
            manifest,
            store,
            commerce,
            svc,
            base,
            scale,
            scratch: Vec::new(),
        })
    }

    /// Opens the engine and the baseline connection on the SQLite file `db`.
    pub fn open(db: &Path, manifest: Manifest) -> Result<Self, String> {
        let store = Arc::new(SqliteStore::open_file(db).map_err(|e| e.to_string())?);
        let conn = plain_connection(db).map_err(|e| e.to_string())?;
        Self::with(store.clone(), store, Base::Sqlite(conn), manifest)
    }

    /// Opens the engine and the baseline connection on `schema` of the PostgreSQL server at `url`.
    pub async fn open_pg(url: &str, schema: &str, manifest: Manifest) -> Result<Self, String> {
        let store = Arc::new(pg_store(url, schema).await?);
        let client = plain_pg(url, schema).await?;
        Self::with(
            store.clone(),
            store,
            Base::Postgres(super::pgsql::Pg::new(client)),
            manifest,
        )
    }

    /// Runs `workload` with `imp`, `reps` times.
    pub async fn run(&mut self, workload: &str, imp: Impl, reps: usize) -> Result<Run, String> {
        // The engine writes on its writer connection, whose page cache is larger than its readers'
        // (`SqliteConfig::writer_cache_mib`); the baseline's one connection gets the same for the writing workloads.
        if let (Base::Sqlite(conn), true) = (&self.base, WRITES.contains(&workload)) {
            let kib = i64::from(crm_storage_sqlite::DEFAULT_WRITER_CACHE_MIB) * 1024;
            conn.execute_batch(&format!("PRAGMA cache_size = -{kib};"))
                .map_err(se)?;
        }
        let mut secs = Vec::with_capacity(reps);
        let mut rows = 0;
        let mut digest = String::new();
        // The first `warmup_runs()` repetitions warm the caches and are not timed.
        let warmup = warmup_runs();
        for rep in 0..warmup + reps {
            let (s, r, d) = match workload {
                "ingest_single" => self.ingest_single(imp, rep).await,
                "ingest_batch" => self.ingest_batch(imp, rep).await,
                "transition" => self.transition(imp, rep, false).await,
                "transition_rules" => self.transition(imp, rep, true).await,
                "timeline" => self.timeline(imp).await,
                "board" => self.board(imp).await,
                "segment" => self.segment(imp).await,
                "profit_customer" => self.profit(imp, GroupBy::Customer, self.year()?).await,
                "profit_group" => self.profit(imp, GroupBy::Group, self.year()?).await,
                "profit_customer_mid" => self.profit(imp, GroupBy::Customer, self.mid()?).await,
                "profit_group_mid" => self.profit(imp, GroupBy::Group, self.mid()?).await,
                "campaign_roi" => self.campaign_roi(imp).await,
                "attribution" => self.attribution(imp).await,
                "record_document" => self.record_document(imp).await,
                "rules_eval" => self.rules_eval(imp),
                other => Err(format!("unknown workload `{other}`")),
            }?;
            let scratch = std::mem::take(&mut self.scratch);
            for t in &scratch {
                self.base.drop_tenant(*t).await?;
            }
            if !scratch.is_empty() {
                // The cleanup wrote on the baseline's connection, so every other connection's cache is void (SQLite
                // empties it when the file changed) and the next round starts cold on either side; the baseline's
                // connection starts cold too. Left filled, its cache would also starve the measured side's: the
                // bundled SQLite keeps every connection's page cache in one pool per process, and a connection under
                // its own limit frees each page it releases while the pool holds more than all the limits together.
                // At M, the scratch tenant's deletion left the engine's writer about 2,400 of its 32,000 pages
                // during the next lead ingest (93k cache misses a commit instead of a few).
                self.base.release_cache()?;
            }
            if rep > 0 && d != digest {
                return Err(format!(
                    "{workload}/{}: repetition {rep} gave another result",
                    imp.name()
                ));
            }
            if rep >= warmup {
                secs.push(s);
            }
            rows = r;
            digest = d;
            if secs.iter().sum::<f64>() > budget_secs() {
                break;
            }
        }
        Ok(Run { secs, rows, digest })
    }

    /// A fresh tenant with the same logical content for both implementations: pipeline, lost reasons, partners.
    async fn fresh_world(&mut self, rep: usize) -> Result<World, String> {
        self.scratch_world(100 + rep as u64).await
    }

    /// World number `n` (its partners, products and users have the same ids each time) in a new scratch tenant.
    async fn scratch_world(&mut self, n: u64) -> Result<World, String> {
        let mut w = World::new(self.manifest.seed ^ 0x5EED, n, 200);
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
                    let (lead, kind) = nl
                        .build(w.tenant, partner, &w.pipeline, now)
                        .map_err(|e| e.to_string())?;
                    let e = DomainEvent::new(&ctx, now, lead_subject(&lead), kind);
                    let h = StageHistoryEntry {
                        tenant: w.tenant,
                        lead: lead.id(),
                        pipeline: w.pipeline.id(),
                        from: None,
                        to: lead.stage(),
                        status: StatusKind::Open,
                        at: now,
                        actor: ctx.actor.clone(),
                    };
                    self.base.enter_lead(partner, &lead, &e, &h).await?;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((
            secs,
            n,
            self.base.tenant_digest(w.tenant, &w.pipeline).await?,
        ))
    }

    /// Records `single` generated invoices (1–19 lines each, some linked to a campaign) in a fresh tenant with the
    /// commerce set-up (categories, products, campaigns), one transaction each.
    async fn record_document(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        use crm_core::commerce::{AppliedRate, DocumentFacts};
        // The same world each repetition (in a new tenant), so the digest can name customers, owners and products.
        let w = self.scratch_world(99).await?;
        let (mut setup, products, campaigns) = w.commerce_setup();
        let mut sink = super::gen::Sink::new(self.store.as_ref(), w.tenant);
        sink.push(&mut setup).await.map_err(|e| e.to_string())?;
        sink.flush().await.map_err(|e| e.to_string())?;
        let n = self.scale.single;
        let mut rng = ChaCha8Rng::seed_from_u64(self.manifest.seed ^ 0x7);
        let day = chrono::NaiveDate::from_ymd_opt(2025, 6, 1).ok_or("date")?;
        let invoices: Vec<_> = (0..n)
            .map(|k| {
                w.new_invoice(
                    &mut rng,
                    k,
                    day + chrono::Duration::days((k % 90) as i64),
                    &campaigns,
                )
            })
            .collect();
        let ctx = Context::user(w.tenant, w.users[0]);
        let started = Instant::now();
        match imp {
            Impl::Ours => {
                let cs = crm_core::service::CommerceService::new(
                    self.svc.clone(),
                    self.commerce.clone(),
                    Self::eur(),
                );
                for (_, nd) in invoices {
                    cs.record_document(&ctx, nd)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Impl::Sql => {
                let empty = BTreeMap::new();
                for (partner, nd) in invoices {
                    let now = Utc::now();
                    let facts = DocumentFacts {
                        partner: &partner,
                        products: &products,
                        rate: AppliedRate::identity(Self::eur()),
                        existing: None,
                        corrected: None,
                        campaign_exists: nd.campaign.is_some(),
                        settled: &empty,
                    };
                    let d = nd
                        .record(w.tenant, facts, now)
                        .map_err(|e| e.to_string())?
                        .record()
                        .clone();
                    let e = DomainEvent::new(
                        &ctx,
                        now,
                        crm_core::event::Subject {
                            partner: Some(d.partner()),
                            ..Default::default()
                        },
                        crm_core::event::EventKind::InvoiceRecorded {
                            document: d.id(),
                            kind: d.kind(),
                            number: d.number().to_owned(),
                            total: d.total_money(),
                            campaign: d.campaign(),
                            version: d.version(),
                        },
                    );
                    self.base.record_document(&d, &e).await?;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((secs, n, self.base.record_digest(w.tenant).await?))
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
                let cs = ChangeSet::from_iter(std::mem::take(&mut buf));
                rows += cs.len() as u64;
                let started = Instant::now();
                match imp {
                    Impl::Ours => {
                        self.store
                            .ingest(w.tenant, cs)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Impl::Sql => self.base.ingest(w.tenant, cs.writes()).await?,
                }
                elapsed += started.elapsed().as_secs_f64();
            }
        }
        Ok((
            elapsed,
            rows,
            self.base.tenant_digest(w.tenant, &w.pipeline).await?,
        ))
    }

    async fn transition(
        &mut self,
        imp: Impl,
        rep: usize,
        rules: bool,
    ) -> Result<(f64, u64, String), String> {
        let w = self.fresh_world(rep).await?;
        let org = crm_rules::fixtures::Org::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules/org.toml"),
        )
        .map_err(|e| e.to_string())?;
        let mut directory = org.directory();
        directory.tenant = w.tenant;
        let directory = Arc::new(directory);
        let svc = if rules {
            let hook =
                crm_core::service::RulesHook::new(Arc::new(example_rules()?), directory.clone());
            CrmService::builder()
                .store(self.store.clone())
                .hook(Arc::new(hook))
                .build()
                .map_err(|e| e.to_string())?
        } else {
            self.svc.clone()
        };
        let native = rules.then_some(crm_rules::native::NativeScheme);
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
            let (lead, kind) = nl
                .build(w.tenant, partner, &w.pipeline, at)
                .map_err(|e| e.to_string())?;
            let event = DomainEvent::new(&ctx, at, lead_subject(&lead), kind);
            let mut buf = vec![Write::InsertLead(lead.clone()), Write::AppendEvent(event)];
            ids.push(lead.id());
            sink.push(&mut buf).await.map_err(|e| e.to_string())?;
        }
        sink.flush().await.map_err(|e| e.to_string())?;
        let targets: Vec<_> = w.pipeline.stages()[1..4].iter().map(|s| s.id).collect();
        let started = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            let stage = targets[i % targets.len()];
            match imp {
                Impl::Ours => {
                    svc.transition(&ctx, *id, 1, LeadCommand::MoveTo { stage })
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Impl::Sql => {
                    self.base
                        .move_lead(
                            &ctx,
                            &w.pipeline,
                            *id,
                            1,
                            stage,
                            native.as_ref().map(|n| {
                                (
                                    n as &dyn crm_core::comms::RuleEngine,
                                    directory.as_ref() as &dyn crm_core::comms::Directory,
                                )
                            }),
                        )
                        .await?
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((
            secs,
            n,
            self.base.tenant_digest(w.tenant, &w.pipeline).await?,
        ))
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
                Impl::Sql => self.base.timeline(tenant, *id, 50).await?,
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
            Impl::Sql => self.base.board(tenant, pipeline).await?,
        };
        let secs = started.elapsed().as_secs_f64();
        let rows = cols.iter().map(|c| c.0).sum();
        Ok((secs, rows, format!("{cols:?}")))
    }
}

/// A board column: lead count, and per currency (expected units, weighted units × 100).
pub type BoardCol = (u64, BTreeMap<String, (i128, i128)>);

impl Env {
    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR")
    }

    fn year(&self) -> Result<Period, String> {
        Period::year(self.manifest.commerce.year).map_err(|e| e.to_string())
    }

    /// The segment: customers who bought before but not in the last 90 days, whose 2025 net volume is above the
    /// threshold, and who bought the manifest's category in 2025.
    pub fn criteria(&self) -> Result<Criteria, String> {
        segment_criteria(&self.manifest)
    }

    async fn segment(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        let tenant = self.manifest.tenant;
        let as_of = self.manifest.commerce.as_of.ok_or("no commerce data")?;
        let criteria = self.criteria()?;
        let started = Instant::now();
        let mut ids: Vec<String> = match imp {
            Impl::Ours => self
                .commerce
                .segment(tenant, &criteria, as_of, Self::eur())
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|m| format!("{} {}", m.partner, m.name))
                .collect(),
            Impl::Sql => {
                let q = SegmentQuery::new(tenant, &self.manifest, self.year()?, as_of)?;
                self.base.segment(&q).await?
            }
        };
        let secs = started.elapsed().as_secs_f64();
        ids.sort();
        let mut d = Digest::default();
        for i in &ids {
            d.add(i.as_bytes());
            d.add(b"\n");
        }
        Ok((
            secs,
            self.manifest.partners,
            format!("{} members, {}", ids.len(), d.hex()),
        ))
    }

    /// 15 February to 14 November of the manifest's year: partial months at both ends (benches/duckdb_baseline.py
    /// uses the same days).
    fn mid(&self) -> Result<Period, String> {
        let y = self.manifest.commerce.year;
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(y, m, day).ok_or("no such day");
        Period::new(d(2, 15)?, d(11, 14)?).map_err(|e| e.to_string())
    }

    async fn profit(
        &mut self,
        imp: Impl,
        by: GroupBy,
        year: Period,
    ) -> Result<(f64, u64, String), String> {
        let tenant = self.manifest.tenant;
        let lines = self.base.lines_in(tenant, year).await?;
        let started = Instant::now();
        let rows: Vec<ProfitRow> = match imp {
            Impl::Ours => {
                let q = SumsQuery::by(by, year, Self::eur());
                self.commerce
                    .profit_sums(tenant, &q)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|r| (r.key, r.revenue_units, r.cost_units, r.invoices))
                    .collect()
            }
            Impl::Sql => self.base.profit(tenant, by, year).await?,
        };
        let secs = started.elapsed().as_secs_f64();
        Ok((secs, lines, profit_digest(rows)))
    }

    async fn campaign_roi(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        use crm_core::commerce::CampaignMeasuresExt;
        let tenant = self.manifest.tenant;
        let year = self.year()?;
        let campaigns = self.manifest.commerce.campaigns.clone();
        let started = Instant::now();
        // Every campaign's sums at once, each side with one grouped statement per measure, printed in the
        // manifest's order.
        let out: Vec<[i128; 8]> = match imp {
            Impl::Ours => {
                let all = self
                    .commerce
                    .campaigns_sums(tenant, Some(year), Self::eur())
                    .await
                    .map_err(|e| e.to_string())?;
                let by: std::collections::BTreeMap<_, _> =
                    all.into_iter().map(|t| (t.campaign, t.sums)).collect();
                campaigns
                    .iter()
                    .map(|c| {
                        let s = by.get(c).cloned().unwrap_or_default();
                        [
                            s.targets as i128,
                            s.reached as i128,
                            s.leads as i128,
                            s.won as i128,
                            s.invoiced_customers as i128,
                            s.revenue_units,
                            s.cost_units,
                            s.campaign_cost_units,
                        ]
                    })
                    .collect()
            }
            Impl::Sql => {
                let by = self.base.campaigns(tenant, year).await?;
                campaigns
                    .iter()
                    .map(|c| by.get(c).copied().unwrap_or_default())
                    .collect()
            }
        };
        let secs = started.elapsed().as_secs_f64();
        Ok((secs, campaigns.len() as u64, format!("{out:?}")))
    }
}

impl Env {
    async fn attribution(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        use crm_core::commerce::{finish_attribution, AttributionScope, Model};
        let tenant = self.manifest.tenant;
        let scope = AttributionScope {
            period: self.year()?,
            lookback_days: 90,
            reporting: Self::eur(),
        };
        let started = Instant::now();
        let report = match imp {
            Impl::Ours => crm_core::service::CommerceService::new(
                self.svc.clone(),
                self.commerce.clone(),
                Self::eur(),
            )
            .attribution_report(tenant, scope.period, scope.lookback_days, &Model::ALL)
            .await
            .map_err(|e| e.to_string())?,
            Impl::Sql => {
                let (inputs, names) = self.base.attribution_inputs(tenant, scope).await?;
                finish_attribution(inputs, &names, &scope, &Model::ALL)
                    .map_err(|e| e.to_string())?
            }
        };
        let secs = started.elapsed().as_secs_f64();
        Ok((secs, report.sales, format!("{:?}", report.rows)))
    }
}

/// The example communication scheme (`examples/rules/`) compiled once.
pub fn example_rules() -> Result<crm_rules::RhaiRuleEngine, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules");
    let set = crm_rules::RuleSet::load_dir(&dir, crm_rules::Limits::default())
        .map_err(|e| e.to_string())?;
    Ok(crm_rules::RhaiRuleEngine::new(set))
}

/// Triggers with their views: `n` leads entered, moved through the open stages, won or lost.
pub fn rule_cases(seed: u64, n: u64) -> Vec<(crm_core::comms::Trigger, crm_core::comms::Views)> {
    let w = World::new(seed ^ 0x12u64, 7, 100);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x13);
    let facts = Facts {
        lost_reasons: &w.reasons,
        requests: &[],
        quotations: &[],
    };
    let t0 = super::gen::epoch();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (partner, nl) = w.new_lead(&mut rng, i);
        let ctx = Context::user(w.tenant, nl.owner.unwrap_or(w.users[0]));
        let at = t0 + chrono::Duration::minutes(i as i64);
        let Ok((lead, kind)) = nl.build(w.tenant, partner, &w.pipeline, at) else {
            continue;
        };
        let (lead, kind) = match i % 3 {
            0 => (lead, kind),
            k => {
                let cmd = if k == 1 {
                    LeadCommand::MoveTo {
                        stage: w.pipeline.stages()[1 + (i as usize / 3) % 4].id,
                    }
                } else {
                    LeadCommand::Win
                };
                match lead::apply(&lead, cmd, &w.pipeline, facts, at) {
                    Ok(t) => (t.lead, t.events[0].clone()),
                    Err(_) => continue,
                }
            }
        };
        let e = DomainEvent::new(&ctx, at, lead_subject(&lead), kind);
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertLead(lead));
        let views = crm_core::comms::Views::from_change_set(&cs, &e.subject);
        out.push((crm_core::comms::Trigger::Event(e), views));
    }
    out
}

impl Env {
    fn rules_eval(&mut self, imp: Impl) -> Result<(f64, u64, String), String> {
        use crm_core::comms::RuleEngine;
        let cases = rule_cases(self.manifest.seed, self.scale.evaluations);
        let rhai = example_rules()?;
        let native = crm_rules::native::NativeScheme;
        let engine: &dyn RuleEngine = match imp {
            Impl::Ours => &rhai,
            Impl::Sql => &native,
        };
        let mut decisions = Vec::with_capacity(cases.len());
        let started = Instant::now();
        for (t, v) in &cases {
            decisions.push(engine.evaluate(t, v));
        }
        let secs = started.elapsed().as_secs_f64();
        let mut d = Digest::default();
        let mut actions = 0;
        for x in &decisions {
            actions += x.actions.len();
            d.add(format!("{:?} {:?} {:?}", x.actions, x.refusal, x.failures).as_bytes());
        }
        Ok((
            secs,
            cases.len() as u64,
            format!("{actions} actions, {}", d.hex()),
        ))
    }
}

/// One profitability group: key, revenue units, cost units, invoices.
pub type ProfitRow = (Option<String>, i128, i128, u64);

/// A profitability result independent of order: group count, total revenue and a digest of the sorted rows.
pub fn profit_digest(rows: Vec<ProfitRow>) -> String {
    let lines: Vec<String> = rows
        .iter()
        .map(|(k, r, c, n)| format!("{} {r} {c} {n}", k.as_deref().unwrap_or("-")))
        .collect();
    let d = Digest::of_lines(lines);
    let revenue: i128 = rows.iter().map(|r| r.1).sum();
    format!("{} groups, revenue {revenue}, {}", rows.len(), d.hex())
}

/// Micro-second bounds `[first day, day after last)` of a period.
pub fn micro_bounds(p: Period) -> (i64, i64) {
    let start = p
        .from()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    let end = (p.to() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    (start, end)
}

/// `d` as an integer count of 10^-`scale`.
pub fn units(d: rust_decimal::Decimal, scale: u32) -> i128 {
    let mut d = d;
    d.rescale(scale);
    d.mantissa()
}

/// Stop repeating a workload once its runs took this long in total (`CRM_BENCH_BUDGET_SECS`, default 120): a slow
/// workload at a large size is then measured fewer times (the report lists every run).
/// The untimed warm-up repetitions before the timed ones (`CRM_BENCH_WARMUP`, 1 by default).
pub fn warmup_runs() -> usize {
    std::env::var("CRM_BENCH_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

pub fn budget_secs() -> f64 {
    std::env::var("CRM_BENCH_BUDGET_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120.0)
}

/// Moves `w` (its records) to `tenant`.
pub fn retenant(w: &mut World, tenant: TenantId) {
    w.tenant = tenant;
    let moved = |v: &mut serde_json::Value| v["tenant"] = serde_json::json!(tenant);
    w.pipeline = super::gen::restamp(&w.pipeline, moved);
    for r in &mut w.reasons {
        *r = super::gen::restamp(r, moved);
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

pub(crate) fn se(e: rusqlite::Error) -> String {
    e.to_string()
}

/// One lead's content as the write digests compare it: the multiset of these, not only their sums (ids, times,
/// titles and partners left out: the two sides make their own ids, and each repetition's scratch world names its
/// partners and leads apart).
#[derive(Debug, Clone)]
pub struct LeadContent {
    /// The stage's position in the pipeline.
    pub stage: String,
    /// The status code.
    pub status: i64,
    /// The expected revenue in 10^-4 units.
    pub expected_units: Option<i64>,
    /// The version.
    pub version: i64,
    /// The probability.
    pub probability: i64,
}

impl LeadContent {
    /// `leads <count> <FNV-1a of the sorted lines>`.
    pub fn digest(leads: Vec<LeadContent>) -> String {
        let lines: Vec<String> = leads
            .iter()
            .map(|l| {
                format!(
                    "{} {} {:?} {} {}",
                    l.stage, l.status, l.expected_units, l.version, l.probability
                )
            })
            .collect();
        let n = lines.len();
        format!("leads {n} {}", Digest::of_lines(lines).hex())
    }
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

    /// The digest of `lines` sorted, each ended by a newline (a result independent of row order).
    pub fn of_lines(mut lines: Vec<String>) -> Self {
        lines.sort();
        let mut d = Self::default();
        for l in &lines {
            d.add(l.as_bytes());
            d.add(b"\n");
        }
        d
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
            .stages()
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
    // Each lead's stage, status, amount, version and probability, not only their sums.
    let mut stmt = conn
        .prepare(
            "SELECT stage, status, expected_units, version, probability FROM leads WHERE tenant = ?1",
        )
        .map_err(se)?;
    let leads = stmt
        .query_map(params![t], |r| {
            Ok(LeadContent {
                stage: pos(r.get(0)?),
                status: r.get(1)?,
                expected_units: r.get(2)?,
                version: r.get(3)?,
                probability: r.get(4)?,
            })
        })
        .map_err(se)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(se)?;
    rows.push(LeadContent::digest(leads));
    let outbox: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE tenant = ?1",
            params![t],
            |r| r.get(0),
        )
        .map_err(se)?;
    rows.push(format!("outbox {outbox}"));
    rows.sort();
    for r in rows {
        out.push_str(&r);
        out.push_str("; ");
    }
    Ok(out)
}

/// Methods of [`Base`] that run their backend's baseline function with the connection and the arguments: the
/// named function on SQLite, `pgsql::` of the same name (awaited) on PostgreSQL.
macro_rules! on_backend {
    ($($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $sqlite:path;)*) => {
        $(
            $(#[$attr])*
            pub async fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, String> {
                match self {
                    Self::Sqlite(conn) => $sqlite(conn, $($arg),*),
                    Self::Postgres(c) => super::pgsql::$name(c, $($arg),*).await,
                }
            }
        )*
    };
}

/// The baseline's operations, each the same work as plain SQL with prepared statements on its backend.
impl Base {
    /// Enters one lead in one transaction: checks its partner exists, inserts the lead, its event and its
    /// history step.
    pub async fn enter_lead(
        &mut self,
        partner: crm_core::id::PartnerId,
        lead: &Lead,
        e: &DomainEvent,
        h: &StageHistoryEntry,
    ) -> Result<(), String> {
        match self {
            Self::Sqlite(conn) => {
                let tx = sql::begin_for_partner(conn, lead.tenant(), partner)?;
                sql::insert_lead(&tx, lead)?;
                sql::insert_event(&tx, e)?;
                sql::insert_history(&tx, h)?;
                tx.commit().map_err(se)
            }
            Self::Postgres(c) => super::pgsql::enter_lead(c, partner, lead, e, h).await,
        }
    }

    /// Frees the connection's page cache (SQLite's `PRAGMA shrink_memory`; a server's connection holds none).
    pub fn release_cache(&self) -> Result<(), String> {
        match self {
            Self::Sqlite(conn) => conn.execute_batch("PRAGMA shrink_memory;").map_err(se),
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Writes a batch of leads, events and history steps in one transaction.
    pub async fn ingest(&mut self, tenant: TenantId, writes: &[Write]) -> Result<(), String> {
        match self {
            Self::Sqlite(conn) => {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(se)?;
                for wr in writes {
                    match wr {
                        Write::InsertLead(l) => sql::insert_lead(&tx, l)?,
                        Write::AppendEvent(e) => sql::insert_event(&tx, e)?,
                        Write::AppendStageHistory(h) => sql::insert_history(&tx, h)?,
                        other => return Err(format!("unexpected write {other:?}")),
                    }
                }
                tx.commit().map_err(se)
            }
            Self::Postgres(c) => super::pgsql::ingest(c, tenant, writes).await,
        }
    }

    /// Records a sales document in one transaction (see `record::statements`): checks its partner, inserts the
    /// document, its lines and its event, upserts its roll-up rows.
    pub async fn record_document(
        &mut self,
        d: &crm_core::commerce::Document,
        e: &DomainEvent,
    ) -> Result<(), String> {
        let statements = super::record::statements(d, matches!(self, Self::Postgres(_)))?;
        match self {
            Self::Sqlite(conn) => {
                let tx = sql::begin_for_partner(conn, d.tenant(), d.partner())?;
                for (text, values) in &statements {
                    tx.prepare_cached(&super::record::sqlite_text(text))
                        .and_then(|mut s| {
                            s.execute(rusqlite::params_from_iter(
                                values.iter().map(crm_storage_sqlite::param_value),
                            ))
                        })
                        .map_err(se)?;
                }
                sql::insert_event(&tx, e)?;
                tx.commit().map_err(se)
            }
            Self::Postgres(c) => {
                super::pgsql::record_document(c, d.partner(), &statements, e).await
            }
        }
    }

    /// A tenant's recorded documents, lines, events and roll-ups as one digest.
    pub async fn record_digest(&mut self, tenant: TenantId) -> Result<String, String> {
        match self {
            Self::Sqlite(conn) => {
                let mut lines = Vec::new();
                for q in super::record::digest_queries(false) {
                    let mut s = conn.prepare_cached(q).map_err(se)?;
                    let rows = s
                        .query_map(params![tenant.as_bytes()], |r| {
                            r.get::<_, Option<String>>(0)
                        })
                        .map_err(se)?;
                    for r in rows {
                        lines.push(r.map_err(se)?.unwrap_or_default());
                    }
                }
                Ok(Digest::of_lines(lines).hex())
            }
            Self::Postgres(c) => super::pgsql::record_digest(c, tenant).await,
        }
    }

    on_backend! {
        /// Moves a lead (see [`sql::move_lead`]).
        #[allow(clippy::too_many_arguments)]
        fn move_lead(ctx: &Context, pipeline: &Pipeline, id: LeadId, expected: u64, stage: crm_core::id::StageId, rules: Rules<'_>) -> () = sql::move_lead;
        /// A lead's newest `limit` events.
        fn timeline(tenant: TenantId, lead: LeadId, limit: u32) -> Vec<DomainEvent> = sql::timeline;
        /// The board.
        fn board(tenant: TenantId, pipeline: crm_core::id::PipelineId) -> Vec<BoardCol> = sql::board;
        /// Invoice and credit-note lines issued in `year`.
        fn lines_in(tenant: TenantId, year: Period) -> u64 = sql::lines_in;
        /// The segment's members as `"<id> <name>"`.
        fn segment(q: &SegmentQuery) -> Vec<String> = sql::segment;
        /// Profitability sums per group.
        fn profit(tenant: TenantId, by: GroupBy, year: Period) -> Vec<ProfitRow> = sql::profit;
        /// Every campaign's report sums.
        fn campaigns(tenant: TenantId, year: Period) -> std::collections::BTreeMap<crm_core::id::CampaignId, [i128; 8]> = sql::campaigns;
        /// The attribution report's inputs and the campaigns' names (see [`sql::attribution_inputs`]).
        fn attribution_inputs(tenant: TenantId, scope: crm_core::commerce::AttributionScope) -> (crm_core::commerce::AttributionInputs, std::collections::BTreeMap<crm_core::id::CampaignId, String>) = sql::attribution_inputs;
        /// A tenant's content independent of ids and clock (see [`tenant_digest`]).
        fn tenant_digest(tenant: TenantId, pipeline: &Pipeline) -> String = tenant_digest;
        /// Deletes every row of a scratch tenant.
        fn drop_tenant(tenant: TenantId) -> () = drop_tenant;
    }
}

/// The segment's criteria for the data of `manifest`: customers who bought before but not in the last 90 days,
/// whose net volume in the manifest's year is above its threshold, and who bought its category that year.
pub fn segment_criteria(manifest: &Manifest) -> Result<Criteria, String> {
    let c = &manifest.commerce;
    let cat = c.category.ok_or("no commerce data")?;
    let year = Period::year(c.year).map_err(|e| e.to_string())?;
    Ok(Criteria::And {
        all: vec![
            Criteria::lapsed(LastSale::WithinDays { days: 90 }),
            Criteria::SalesVolume {
                period: year,
                cmp: Cmp::Gt,
                amount: Money::from_units(c.threshold_units, Env::eur()),
            },
            Criteria::Bought {
                mode: BoughtMode::Any,
                items: vec![Item::Category(cat)],
                period: year,
            },
        ],
    })
}

/// The segment baselines' question (the example criteria: lapsed 90 days, bought the category this year, volume
/// over the threshold), worked out once from the manifest for both plain-SQL baselines.
pub struct SegmentQuery {
    /// The tenant.
    pub tenant: TenantId,
    /// The category bought.
    pub category: crm_core::id::CategoryId,
    /// The year's first and last day numbers.
    pub from: i32,
    /// See `from`.
    pub to: i32,
    /// Customers whose last sale is before this day number.
    pub lapsed: i32,
    /// The year's volume they exceed, in units of 10⁻⁴.
    pub threshold_units: i64,
}

impl SegmentQuery {
    /// The question for `tenant` over `year`, as of `as_of`.
    pub fn new(
        tenant: TenantId,
        m: &Manifest,
        year: Period,
        as_of: chrono::NaiveDate,
    ) -> Result<Self, String> {
        Ok(Self {
            tenant,
            category: m.commerce.category.ok_or("no commerce data")?,
            from: day_number(year.from()),
            to: day_number(year.to()),
            lapsed: day_number(as_of) - 90,
            threshold_units: m.commerce.threshold_units,
        })
    }
}

/// The segment as one hand-written query, written once for both baselines (PostgreSQL's `$n` placeholders; SQLite
/// runs it with `?n`): per-customer sums in two grouped scans, joined to the partners.
pub const SEGMENT_SQL: &str = "WITH s AS (SELECT partner, MAX(CASE WHEN kind = 0 THEN issue_day END) AS last, \
       SUM(CASE WHEN issue_day BETWEEN $2 AND $3 THEN revenue_units ELSE 0 END) AS vol \
       FROM documents WHERE tenant = $1 AND kind IN (0, 1) AND reporting = 'EUR' GROUP BY partner), \
     b AS (SELECT partner FROM document_lines WHERE tenant = $1 AND category = $4 AND issue_day BETWEEN $2 AND $3 \
       GROUP BY partner HAVING SUM(quantity_units) > 0) \
     SELECT p.id, p.name FROM s JOIN b ON b.partner = s.partner JOIN partners p ON p.tenant = $1 AND p.id = s.partner \
     WHERE s.last IS NOT NULL AND s.last < $5 AND s.vol > $6";

/// The profitability baselines' statement for one grouping, in each dialect (the same question side by side).
pub struct ProfitSql {
    /// PostgreSQL's (`$n` placeholders, `FILTER`).
    pub postgres: &'static str,
    /// SQLite's (`?n` placeholders, a boolean sum).
    pub sqlite: &'static str,
}

/// The statements summing revenue, cost and invoices of the year's sales documents per customer or per group.
pub fn profit_sql(by: GroupBy) -> Result<ProfitSql, String> {
    Ok(match by {
        GroupBy::Customer => ProfitSql {
            postgres: "SELECT partner::text, SUM(revenue_units)::bigint, SUM(cost_units)::bigint, \
                       count(*) FILTER (WHERE kind = 0) FROM documents WHERE tenant = $1 AND reporting = 'EUR' \
                       AND issue_day BETWEEN $2 AND $3 AND kind IN (0, 1) GROUP BY partner",
            sqlite: "SELECT partner, SUM(revenue_units), SUM(cost_units), SUM(kind = 0) FROM documents \
                     WHERE tenant = ?1 AND reporting = 'EUR' AND issue_day BETWEEN ?2 AND ?3 AND kind IN (0, 1) \
                     GROUP BY partner",
        },
        GroupBy::Group => ProfitSql {
            postgres: "SELECT grp, SUM(revenue_units)::bigint, SUM(cost_units)::bigint, \
                       count(*) FILTER (WHERE kind = 0) FROM documents WHERE tenant = $1 AND reporting = 'EUR' \
                       AND issue_day BETWEEN $2 AND $3 AND kind IN (0, 1) GROUP BY grp",
            sqlite: "SELECT grp, SUM(revenue_units), SUM(cost_units), SUM(kind = 0) FROM documents \
                     WHERE tenant = ?1 AND reporting = 'EUR' AND issue_day BETWEEN ?2 AND ?3 AND kind IN (0, 1) \
                     GROUP BY grp",
        },
        other => return Err(format!("no baseline for grouping {other:?}")),
    })
}

/// The plain-SQL baselines: the same rows, written and read with prepared statements on the same schema.
/// What a plain-SQL baseline writes to move a lead: the decision of the pure core (the moved lead, its events and
/// history step), and what the rules decide about those events (outbox messages and rule events), so both
/// baselines decide exactly as the engine does and differ only in how they write.
pub struct Move {
    /// The moved lead.
    pub lead: Lead,
    /// Its events, then the events the rules added.
    pub events: Vec<DomainEvent>,
    /// The messages the rules decided.
    pub outbox: Vec<crm_core::outbox::OutboxMessage>,
    /// The history step.
    pub history: StageHistoryEntry,
}

/// The rules a plain-SQL baseline decides with when it moves a lead: an engine and the directory resolving its
/// recipients (none: no rules).
pub type Rules<'a> = Option<(
    &'a dyn crm_core::comms::RuleEngine,
    &'a dyn crm_core::comms::Directory,
)>;

impl Move {
    /// Seals the move's events about the lead's partner as the engine does (the same pure `crm_core::erasure`
    /// code): each under the partner's key (`partner`, for the contacts an event names, is read only when an event
    /// may name people; a move's events name none, and one that does fails the baseline rather than be sealed
    /// differently). `key` is the partner's stored key; without one a new key is made and returned, for the
    /// baseline to insert with the move.
    pub fn seal(
        &mut self,
        key: Option<crm_core::erasure::SubjectKey>,
        partner: impl FnOnce() -> Result<Option<crm_core::partner::Partner>, String>,
    ) -> Result<Option<crm_core::erasure::SubjectKey>, String> {
        use crm_core::erasure;
        let owner = *self.lead.partner().as_uuid();
        let about = |e: &DomainEvent| e.subject.partner.is_some_and(|p| *p.as_uuid() == owner);
        if !self.events.iter().any(about) {
            return Ok(None);
        }
        let contacts = if self
            .events
            .iter()
            .any(|e| about(e) && e.kind.may_name_people())
        {
            partner()?
                .map(|p| p.contacts().to_vec())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let (key, new) = match key {
            Some(k) => (k, None),
            None => {
                let k = erasure::SubjectKey::generate(self.lead.tenant(), owner)
                    .map_err(|e| e.to_string())?;
                (k.clone(), Some(k))
            }
        };
        let ring = erasure::Keyring::of([key]);
        let mut sealed = Vec::with_capacity(self.events.len());
        for e in std::mem::take(&mut self.events) {
            if !about(&e) {
                sealed.push(e);
                continue;
            }
            let mut subjects = if e.kind.may_name_people() {
                erasure::people(&e.kind, &contacts)
            } else {
                Default::default()
            };
            if !subjects.is_empty() {
                return Err(format!(
                    "{} names contacts: the baseline seals under the partner's key only",
                    e.kind.name()
                ));
            }
            subjects.insert(owner);
            sealed.push(erasure::seal(e, &subjects, &ring).map_err(|e| e.to_string())?);
        }
        self.events = sealed;
        Ok(new)
    }

    /// Fails unless the version-checked update of the lead changed its row (`rows` is 1): else someone changed
    /// the lead meanwhile.
    pub fn updated(&self, rows: u64) -> Result<(), String> {
        if rows != 1 {
            return Err(format!("lead {} changed meanwhile", self.lead.id()));
        }
        Ok(())
    }
}

/// Decides moving `current` to `stage` at `now` (and, with `rules`, what the rules decide about it).
pub fn decide_move(
    ctx: &Context,
    pipeline: &Pipeline,
    current: &Lead,
    stage: crm_core::id::StageId,
    rules: Rules<'_>,
    partner: Option<&crm_core::partner::Partner>,
    now: chrono::DateTime<Utc>,
) -> Result<Move, String> {
    let facts = Facts {
        lost_reasons: &[],
        requests: &[],
        quotations: &[],
    };
    let t = lead::apply(current, LeadCommand::MoveTo { stage }, pipeline, facts, now)
        .map_err(|e| e.to_string())?;
    let l = t.lead;
    let mut events: Vec<DomainEvent> = t
        .events
        .iter()
        .map(|k| DomainEvent::new(ctx, now, lead_subject(&l), k.clone()))
        .collect();
    let mut outbox = Vec::new();
    if let Some((engine, directory)) = rules {
        let mut cs = ChangeSet::new();
        cs.push(Write::InsertLead(l.clone()));
        let mut decided = Vec::new();
        for e in &events {
            // The rules see the lead's partner (`ev.partner`), as the engine's hook shows it to them.
            let mut views = crm_core::comms::Views::from_change_set(&cs, &e.subject);
            views.partner = partner
                .filter(|p| Some(p.id()) == e.subject.partner)
                .cloned();
            let trigger = crm_core::comms::Trigger::Event(e.clone());
            let decision = engine.evaluate(&trigger, &views);
            if let Some(r) = decision.refusal {
                return Err(format!("refused by {}: {}", r.rule, r.reason));
            }
            for w in crm_core::service::decision_writes(ctx, &trigger, &views, &decision, directory)
            {
                match w {
                    Write::EnqueueOutbox(m) => outbox.push(m),
                    Write::AppendEvent(e) => decided.push(e),
                    other => return Err(format!("unexpected rule write {other:?}")),
                }
            }
        }
        events.extend(decided);
    }
    let history = StageHistoryEntry {
        tenant: ctx.tenant,
        lead: l.id(),
        pipeline: pipeline.id(),
        from: Some(current.stage()),
        to: l.stage(),
        status: l.status().kind(),
        at: now,
        actor: ctx.actor.clone(),
    };
    Ok(Move {
        lead: l,
        events,
        outbox,
        history,
    })
}

pub mod sql {
    use super::*;

    /// A record's `doc` column, as the store writes it.
    fn json(record: &impl serde::Serialize) -> Result<String, String> {
        serde_json::to_string(record).map_err(|e| e.to_string())
    }

    /// Runs the cached statement `sql` with `values`; the number of rows it changed.
    fn execute(
        tx: &Transaction<'_>,
        sql: &str,
        values: impl rusqlite::Params,
    ) -> Result<usize, String> {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(values))
            .map_err(se)
    }

    /// Inserts a lead row (and its tags) exactly as the store does.
    pub fn insert_lead(tx: &Transaction<'_>, l: &Lead) -> Result<(), String> {
        let currency = l.expected_revenue().map(|m| m.currency().code());
        let units = l.expected_revenue().map(|m| m.to_units());
        execute(
            tx,
            "INSERT INTO leads (tenant, id, partner, pipeline, stage, status, owner, currency, expected_units, revenue_key, \
             probability, created_at, updated_at, title_lc, version, doc, campaign) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                l.tenant().as_bytes(),
                l.id().as_bytes(),
                l.partner().as_bytes(),
                l.pipeline().as_bytes(),
                l.stage().as_bytes(),
                l.status().kind().code(),
                l.owner().as_ref().map(|o| o.as_bytes()),
                currency,
                units,
                LeadSort::ExpectedRevenueDesc.key(l),
                l.probability(),
                l.created_at().timestamp_micros(),
                l.updated_at().timestamp_micros(),
                l.title().to_lowercase(),
                l.version() as i64,
                json(l)?,
                l.source().campaign.as_ref().map(|c| c.as_bytes())
            ],
        )?;
        let mut tags = tx
            .prepare_cached("INSERT INTO lead_tags (tenant, tag, lead) VALUES (?1, ?2, ?3)")
            .map_err(se)?;
        for tag in l.tags() {
            tags.execute(params![l.tenant().as_bytes(), tag, l.id().as_bytes()])
                .map_err(se)?;
        }
        Ok(())
    }

    /// Begins a write transaction after checking that `partner` exists (what both write baselines do first).
    pub fn begin_for_partner(
        conn: &mut Connection,
        tenant: TenantId,
        partner: crm_core::id::PartnerId,
    ) -> Result<Transaction<'_>, String> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(se)?;
        let found = tx
            .prepare_cached("SELECT 1 FROM partners WHERE tenant = ?1 AND id = ?2")
            .and_then(|mut s| s.exists(params![tenant.as_bytes(), partner.as_bytes()]))
            .map_err(se)?;
        if !found {
            return Err(format!("partner {partner} not found"));
        }
        Ok(tx)
    }

    /// Appends an event row.
    pub fn insert_event(tx: &Transaction<'_>, e: &DomainEvent) -> Result<(), String> {
        execute(
            tx,
            "INSERT INTO events (tenant, id, at, lead, partner, request, kind, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                e.tenant.as_bytes(),
                e.id.as_bytes(),
                e.at.timestamp_micros(),
                e.subject.lead.as_ref().map(|x| x.as_bytes()),
                e.subject.partner.as_ref().map(|x| x.as_bytes()),
                e.subject.request.as_ref().map(|x| x.as_bytes()),
                e.kind.stored_name(),
                json(e)?
            ],
        )
        .map(|_| ())
    }

    /// Enqueues an outbox message (skipped when the tenant has one with the same idempotency key).
    pub fn insert_outbox(
        tx: &Transaction<'_>,
        m: &crm_core::outbox::OutboxMessage,
    ) -> Result<(), String> {
        execute(
            tx,
            "INSERT INTO outbox (tenant, id, idempotency_key, status, attempts, next_attempt_at, last_error, created_at, \
             delivered_at, doc) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (tenant, idempotency_key) DO NOTHING",
            params![
                m.tenant.as_bytes(),
                m.id.as_bytes(),
                m.idempotency_key,
                m.attempts as i64,
                m.next_attempt_at.timestamp_micros(),
                m.last_error,
                m.created_at.timestamp_micros(),
                m.delivered_at.map(|t| t.timestamp_micros()),
                json(m)?
            ],
        )
        .map(|_| ())
    }

    /// Appends a stage-history row.
    pub fn insert_history(tx: &Transaction<'_>, h: &StageHistoryEntry) -> Result<(), String> {
        execute(
            tx,
            "INSERT INTO stage_history (tenant, lead, pipeline, to_stage, status, at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                h.tenant.as_bytes(),
                h.lead.as_bytes(),
                h.pipeline.as_bytes(),
                h.to.as_bytes(),
                h.status.code(),
                h.at.timestamp_micros(),
                json(h)?
            ],
        )
        .map(|_| ())
    }

    /// Moves a lead: read it, decide with the pure core, update it version-checked, append its events and history.
    pub fn move_lead(
        conn: &mut Connection,
        ctx: &Context,
        pipeline: &Pipeline,
        id: LeadId,
        expected: u64,
        stage: crm_core::id::StageId,
        rules: Rules<'_>,
    ) -> Result<(), String> {
        let tenant = ctx.tenant;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(se)?;
        // The lead and its partner's key (the events about the partner are sealed under it).
        let row: Option<(String, Option<String>)> = tx
            .prepare_cached(
                "SELECT l.doc, k.doc FROM leads l LEFT JOIN subject_keys k ON k.tenant = l.tenant AND k.subject = l.partner \
                 WHERE l.tenant = ?1 AND l.id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_bytes(), id.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(se)?;
        let (doc, key) = row.ok_or_else(|| format!("lead {id} not found"))?;
        let current: Lead = serde_json::from_str(&doc).map_err(|e| e.to_string())?;
        let key = key
            .map(|k| serde_json::from_str(&k).map_err(|e| e.to_string()))
            .transpose()?;
        let read_partner = || -> Result<Option<crm_core::partner::Partner>, String> {
            let doc: Option<String> = tx
                .prepare_cached("SELECT doc FROM partners WHERE tenant = ?1 AND id = ?2")
                .and_then(|mut s| {
                    s.query_row(
                        params![tenant.as_bytes(), current.partner().as_bytes()],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(se)?;
            doc.map(|d| serde_json::from_str(&d).map_err(|e| e.to_string()))
                .transpose()
        };
        // With rules, the partner is read with the lead: the rules' views hold it, as the engine's do.
        let partner = if rules.is_some() {
            read_partner()?
        } else {
            None
        };
        let mut m = decide_move(
            ctx,
            pipeline,
            &current,
            stage,
            rules,
            partner.as_ref(),
            Utc::now(),
        )?;
        let partner = || match partner {
            Some(p) => Ok(Some(p)),
            None => read_partner(),
        };
        if let Some(k) = m.seal(key, partner)? {
            execute(
                &tx,
                "INSERT INTO subject_keys (tenant, subject, doc) VALUES (?1, ?2, ?3)",
                params![tenant.as_bytes(), k.subject.as_bytes(), json(&k)?],
            )?;
        }
        let l = &m.lead;
        let n = execute(
            &tx,
            "UPDATE leads SET stage = ?3, status = ?4, probability = ?5, updated_at = ?6, version = ?7, doc = ?8 \
             WHERE tenant = ?1 AND id = ?2 AND version = ?9",
            params![
                tenant.as_bytes(),
                id.as_bytes(),
                l.stage().as_bytes(),
                l.status().kind().code(),
                l.probability(),
                l.updated_at().timestamp_micros(),
                l.version() as i64,
                json(l)?,
                expected as i64
            ],
        )?;
        m.updated(n as u64)?;
        for e in &m.events {
            insert_event(&tx, e)?;
        }
        for o in &m.outbox {
            insert_outbox(&tx, o)?;
        }
        insert_history(&tx, &m.history)?;
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
        let mut cols: Vec<BoardCol> = vec![Default::default(); p.stages().len()];
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
                .stages()
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

    /// Invoice and credit-note lines issued in `year` (the rows a profitability run covers).
    pub fn lines_in(conn: &Connection, tenant: TenantId, year: Period) -> Result<u64, String> {
        conn.prepare_cached(
            "SELECT count(*) FROM document_lines WHERE tenant = ?1 AND issue_day BETWEEN ?2 AND ?3 AND kind IN (0, 1)",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant.as_bytes(), day_number(year.from()), day_number(year.to())], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as u64)
        .map_err(se)
    }

    /// The segment as one hand-written query ([`SEGMENT_SQL`] with SQLite's `?n` placeholders).
    pub fn segment(conn: &Connection, q: &SegmentQuery) -> Result<Vec<String>, String> {
        let mut stmt = conn
            .prepare_cached(&SEGMENT_SQL.replace('$', "?"))
            .map_err(se)?;
        let rows = stmt
            .query_map(
                params![
                    q.tenant.as_bytes(),
                    q.from,
                    q.to,
                    q.category.as_bytes(),
                    q.lapsed,
                    q.threshold_units
                ],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(se)?;
        let mut out = Vec::new();
        for r in rows {
            let (id, name) = r.map_err(se)?;
            let id = uuid::Uuid::from_slice(&id).map_err(|e| e.to_string())?;
            out.push(format!("{id} {name}"));
        }
        Ok(out)
    }

    /// Profitability sums per group over the year's sales documents.
    pub fn profit(
        conn: &Connection,
        tenant: TenantId,
        by: GroupBy,
        year: Period,
    ) -> Result<Vec<ProfitRow>, String> {
        let mut stmt = conn.prepare_cached(profit_sql(by)?.sqlite).map_err(se)?;
        let rows = stmt
            .query_map(
                params![
                    tenant.as_bytes(),
                    day_number(year.from()),
                    day_number(year.to())
                ],
                |r| {
                    Ok((
                        r.get::<_, rusqlite::types::Value>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .map_err(se)?;
        let mut out = Vec::new();
        for r in rows {
            let (k, rev, cost, n) = r.map_err(se)?;
            let key = match k {
                rusqlite::types::Value::Blob(b) => Some(
                    uuid::Uuid::from_slice(&b)
                        .map_err(|e| e.to_string())?
                        .to_string(),
                ),
                rusqlite::types::Value::Text(t) => Some(t),
                _ => None,
            };
            out.push((key, rev as i128, cost as i128, n as u64));
        }
        Ok(out)
    }

    /// The attribution report's inputs as hand-written statements read them: the year's sales count and gross
    /// profit, the sales linked to a campaign or of a partner some campaign brought a lead for, those leads' touches
    /// in range, the targets of launched campaigns (touched on the launch day, and when a call reached them), and
    /// the campaigns' names; the digest comparison with ours proves the answers equal. The generated targets get no
    /// e-mail sends, so the baseline reads no delivery or open times.
    pub fn attribution_inputs(
        conn: &Connection,
        tenant: TenantId,
        scope: crm_core::commerce::AttributionScope,
    ) -> Result<
        (
            crm_core::commerce::AttributionInputs,
            std::collections::BTreeMap<crm_core::id::CampaignId, String>,
        ),
        String,
    > {
        use crm_core::commerce::{AttributionInputs, Sale, Touch, TouchKind};
        let t = tenant.as_bytes();
        let (df, dt) = (
            day_number(scope.period.from()),
            day_number(scope.period.to()),
        );
        let first = scope.first_touch_day();
        let (mf, _) = micro_bounds(Period::new(first, first).map_err(|e| e.to_string())?);
        let (_, mt) = micro_bounds(scope.period);
        let mut inputs = AttributionInputs::default();
        let (n, gp) = conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(revenue_units - cost_units), 0) FROM documents \
                 WHERE tenant = ?1 AND kind IN (0, 1) AND reporting = 'EUR' AND issue_day BETWEEN ?2 AND ?3",
            )
            .and_then(|mut s| s.query_row(params![t, df, dt], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))))
            .map_err(se)?;
        (inputs.total_sales, inputs.total_units) = (n as u64, gp as i128);
        let uuid = |b: Vec<u8>| uuid::Uuid::from_slice(&b).map_err(|e| e.to_string());
        let mut s = conn
            .prepare_cached(
                "SELECT partner, issue_day, id, campaign, revenue_units - cost_units FROM documents \
                 WHERE tenant = ?1 AND kind IN (0, 1) AND reporting = 'EUR' AND issue_day BETWEEN ?2 AND ?3 \
                 AND (campaign IS NOT NULL \
                 OR partner IN (SELECT partner FROM campaign_targets WHERE tenant = ?1 AND holdout = 0) \
                 OR partner IN (SELECT partner FROM leads WHERE tenant = ?1 AND campaign IS NOT NULL))",
            )
            .map_err(se)?;
        let rows = s
            .query_map(params![t, df, dt], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i32>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(se)?;
        for r in rows {
            let (p, day, id, c, gp) = r.map_err(se)?;
            inputs.sales.push(Sale {
                partner: crm_core::id::PartnerId::from_uuid(uuid(p)?),
                issue_date: crm_core::commerce::from_day_number(day).ok_or("a day")?,
                document: crm_core::id::DocumentId::from_uuid(uuid(id)?),
                campaign: c
                    .map(uuid)
                    .transpose()?
                    .map(crm_core::id::CampaignId::from_uuid),
                gross_profit_units: gp as i128,
            });
        }
        // The targets of launched campaigns: touched on the launch day and on the day a call reached them.
        let mut s = conn
            .prepare_cached(
                "SELECT t.campaign, t.partner, json_extract(c.doc, '$.launched_at'), t.reached_at \
                 FROM campaign_targets t JOIN campaigns c ON c.tenant = t.tenant AND c.id = t.campaign \
                 WHERE t.tenant = ?1 AND t.holdout = 0 AND c.status <> 0",
            )
            .map_err(se)?;
        let rows = s
            .query_map(params![t], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(se)?;
        for r in rows {
            let (c, p, launched, reached) = r.map_err(se)?;
            let (campaign, partner) = (
                crm_core::id::CampaignId::from_uuid(uuid(c)?),
                crm_core::id::PartnerId::from_uuid(uuid(p)?),
            );
            inputs.touches.extend(target_touches(
                campaign,
                partner,
                launched,
                reached,
                first,
                scope.period.to(),
            )?);
        }
        drop(s);
        // The leads a campaign brought (on their creation day) and the meetings held about them (on their start).
        for (text, kind) in [
            (
                "SELECT campaign, partner, created_at FROM leads WHERE tenant = ?1 \
                 AND campaign IS NOT NULL AND status <> 3 \
                 AND created_at >= ?2 AND created_at < ?3",
                TouchKind::Lead,
            ),
            (
                "SELECT l.campaign, l.partner, m.starts_us FROM meetings m \
                 JOIN leads l ON l.tenant = m.tenant AND l.id = m.lead WHERE m.tenant = ?1 AND m.status = 1 \
                 AND m.starts_us >= ?2 AND m.starts_us < ?3 AND l.status <> 3 AND l.campaign IS NOT NULL",
                TouchKind::Meeting,
            ),
        ] {
            let mut s = conn.prepare_cached(text).map_err(se)?;
            let rows = s
                .query_map(params![t, mf, mt], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(se)?;
            for r in rows {
                let (c, p, at) = r.map_err(se)?;
                inputs.touches.push(Touch {
                    partner: crm_core::id::PartnerId::from_uuid(uuid(p)?),
                    on: chrono::DateTime::from_timestamp_micros(at)
                        .ok_or("a time")?
                        .date_naive(),
                    kind,
                    campaign: crm_core::id::CampaignId::from_uuid(uuid(c)?),
                });
            }
        }
        let mut names = std::collections::BTreeMap::new();
        let mut s = conn
            .prepare_cached(
                "SELECT id, json_extract(doc, '$.name') FROM campaigns WHERE tenant = ?1",
            )
            .map_err(se)?;
        let rows = s
            .query_map(params![t], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(se)?;
        for r in rows {
            let (id, name) = r.map_err(se)?;
            names.insert(crm_core::id::CampaignId::from_uuid(uuid(id)?), name);
        }
        Ok((inputs, names))
    }

    /// Every campaign's report sums (targets, reached, leads, won, invoiced customers, revenue, cost, campaign cost):
    /// one grouped statement per measure over the documents, driven from the campaigns so each campaign's
    /// documents are one index range.
    pub fn campaigns(
        conn: &Connection,
        tenant: TenantId,
        year: Period,
    ) -> Result<std::collections::BTreeMap<crm_core::id::CampaignId, [i128; 8]>, String> {
        let t = tenant.as_bytes();
        let (df, dt) = (day_number(year.from()), day_number(year.to()));
        let (mf, mt) = micro_bounds(year);
        let mut out = std::collections::BTreeMap::new();
        let mut each = |sql: &str, p: &[&dyn rusqlite::ToSql], at: usize| -> Result<(), String> {
            let mut s = conn.prepare_cached(sql).map_err(se)?;
            let mut rows = s.query(p).map_err(se)?;
            while let Some(r) = rows.next().map_err(se)? {
                let id = uuid::Uuid::from_slice(&r.get::<_, Vec<u8>>(0).map_err(se)?)
                    .map_err(|e| e.to_string())?;
                let v: &mut [i128; 8] = out
                    .entry(crm_core::id::CampaignId::from_uuid(id))
                    .or_insert([0; 8]);
                v[at] = r.get::<_, i64>(1).map_err(se)? as i128;
                if let Some(b) = r.get::<_, Option<i64>>(2).map_err(se)? {
                    v[at + 1] = b as i128;
                }
            }
            Ok(())
        };
        each(
            "SELECT campaign, COUNT(*), COALESCE(SUM(reached_at >= ?2 AND reached_at < ?3), 0) FROM campaign_targets \
             WHERE tenant = ?1 GROUP BY campaign",
            &[&t, &mf, &mt],
            0,
        )?;
        each(
            "SELECT c.id, COUNT(*), COALESCE(SUM(l.status = 1), 0) FROM campaigns c CROSS JOIN leads l \
             WHERE c.tenant = ?1 AND l.tenant = c.tenant \
             AND l.campaign = c.id AND l.campaign IS NOT NULL AND l.created_at >= ?2 AND l.created_at < ?3 \
             GROUP BY c.id",
            &[&t, &mf, &mt],
            2,
        )?;
        each(
            "SELECT d.campaign, COUNT(*), NULL FROM (SELECT d.campaign, d.partner FROM campaigns c CROSS JOIN documents d \
             WHERE c.tenant = ?1 AND d.tenant = c.tenant AND d.campaign = c.id AND d.kind IN (0, 1) \
             AND d.reporting = 'EUR' AND d.issue_day BETWEEN ?2 AND ?3 GROUP BY d.campaign, d.partner \
             HAVING SUM(d.revenue_units) > 0) d GROUP BY d.campaign",
            &[&t, &df, &dt],
            4,
        )?;
        each(
            "SELECT d.campaign, SUM(d.revenue_units), SUM(d.cost_units) FROM campaigns c CROSS JOIN documents d \
             WHERE c.tenant = ?1 AND d.tenant = c.tenant AND d.campaign = c.id AND d.kind IN (0, 1) \
             AND d.reporting = 'EUR' AND d.issue_day BETWEEN ?2 AND ?3 GROUP BY d.campaign",
            &[&t, &df, &dt],
            5,
        )?;
        each(
            "SELECT campaign, SUM(amount_units), NULL FROM campaign_costs WHERE tenant = ?1 AND reporting = 'EUR' \
             AND day BETWEEN ?2 AND ?3 GROUP BY campaign",
            &[&t, &df, &dt],
            7,
        )?;
        Ok(out)
    }
}

/// A target's touches within `first..=last` as the baselines read them: on its campaign's launch day (the launch
/// time as the campaign's JSON holds it, RFC 3339) and on the day a call reached it (microseconds).
pub fn target_touches(
    campaign: crm_core::id::CampaignId,
    partner: crm_core::id::PartnerId,
    launched: Option<String>,
    reached: Option<i64>,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
) -> Result<Vec<crm_core::commerce::Touch>, String> {
    use crm_core::commerce::{Touch, TouchKind};
    let launched = launched
        .map(|at| chrono::DateTime::parse_from_rfc3339(&at).map(|t| t.to_utc().date_naive()))
        .transpose()
        .map_err(|e| e.to_string())?;
    let reached = reached
        .map(|at| {
            chrono::DateTime::from_timestamp_micros(at)
                .map(|t| t.date_naive())
                .ok_or("a time")
        })
        .transpose()?;
    Ok([
        (launched, TouchKind::Targeted),
        (reached, TouchKind::Reached),
    ]
    .into_iter()
    .filter_map(|(on, kind)| {
        on.filter(|d| first <= *d && *d <= last).map(|on| Touch {
            partner,
            on,
            kind,
            campaign,
        })
    })
    .collect())
}

/// The PostgreSQL server of `scripts/with-postgres` for the smoke tests (`CRM_TEST_POSTGRES_URL`); `None` when there
/// is none, which fails when `CRM_REQUIRE_POSTGRES` is `1` (as `scripts/test` sets it). `what` names the skipped test.
pub fn test_pg_url(what: &str) -> Option<String> {
    match std::env::var("CRM_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            assert_ne!(
                std::env::var("CRM_REQUIRE_POSTGRES").as_deref(),
                Ok("1"),
                "CRM_REQUIRE_POSTGRES=1 but CRM_TEST_POSTGRES_URL is not set"
            );
            eprintln!(
                "{what} on PostgreSQL SKIPPED: set CRM_TEST_POSTGRES_URL or run scripts/test"
            );
            None
        }
    }
}

/// Generates `size` for `seed` into a fresh PostgreSQL schema named after `prefix` (for the smoke tests): the
/// schema's name and the manifest.
pub async fn generate_pg(
    url: &str,
    prefix: &str,
    size: super::gen::Size,
    seed: u64,
) -> Result<(String, Manifest), String> {
    let schema = format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let store = pg_store(url, &schema).await?;
    let manifest = super::gen::generate(&store, size, seed)
        .await
        .map_err(|e| e.to_string())?;
    Ok((schema, manifest))
}
