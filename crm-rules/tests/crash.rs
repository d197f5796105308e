//! Crash test: what survives `kill -9`.
//!
//! A worker process enters leads and moves them to won (the rules write their outbox messages in the same
//! transactions), records an invoice of one to five lines for each won customer through `CommerceService`, and
//! runs a dispatcher delivering the outbox to a file-backed receiver. The parent kills it with SIGKILL at a random
//! moment after it has made progress, restarts it, many times, then lets one last worker drain the outbox and
//! checks:
//!
//! - **Nothing decided is lost, nothing undecided is sent**: every committed event has exactly its messages, and
//!   every message was handed to the notifier and recorded as delivered.
//! - **Delivery is at least once; exactly once needs the receiver.** A kill between handing a message to the
//!   notifier and recording the outcome makes the next worker hand it over again: an *engine duplicate*. The
//!   receiver here remembers the idempotency keys it has seen (as the in-app inbox, tasks and e-mail `Message-ID`s
//!   do) and drops repeats, so each key arrives once. The test counts the engine's duplicates and requires them to
//!   be rare: at most one per kill that landed mid-delivery.
//! - **No half-written document**: every recorded invoice has all its lines, both in the document and in the line
//!   rows the segment queries read, and its `InvoiceRecorded` event; every such event has its document.
//! - **No half-kept roll-up**: the roll-ups equal the documents (`verify_rollups`). Each worker also launches a
//!   telemarketing campaign calling three customers of its own and records a call's outcome after each invoice,
//!   so kills land in the target updates too: every campaign has its three targets or none, and the campaign
//!   report's counts of the targets equal the targets.
//! - **The kills hit work**: each worker writes a progress file (operations and deliveries begun and finished);
//!   the parent waits for progress after each restart before it picks the moment to kill, and counts the kills that
//!   landed with an operation, a document or a delivery in flight.
//!
//! Stores: SQLite (a file) always, `CRM_CRASH_RUNS` kills (default 25); PostgreSQL (a fresh schema) when
//! `CRM_TEST_POSTGRES_URL` is set (`scripts/with-postgres`), `CRM_CRASH_PG_RUNS` kills (default 10); without it the
//! PostgreSQL run is skipped, or fails when `CRM_REQUIRE_POSTGRES=1`. `CRM_CRASH_STORES=sqlite` (or `postgres`)
//! runs one store only. `scripts/crash` runs 100 kills per store and prints the counts.

use async_trait::async_trait;
use chrono::{Duration as Days, NaiveDate};
use crm_core::actor::Context;
use crm_core::commerce::{
    BoughtMode, CallOutcome, CampaignMeasuresExt as _, Channel, CommerceStore, CommerceStoreExt,
    Criteria, Document, DocumentKind, Item, NewCampaign, NewDocument, NewLine, NewProduct, Period,
};
use crm_core::comms::{Directory, Person, StaticDirectory};
use crm_core::event::{DomainEvent, EventKind};
use crm_core::id::{OutboxId, PartnerId, TenantId, UserId};
use crm_core::lead::{LeadCommand, LeadPartner, NewLead};
use crm_core::money::{Currency, Money};
use crm_core::outbox::{
    DeliveryError, InboxItem, InboxWrite, Notifier, OutboxMessage, OutboxRef, OutboxStatus,
    OutboxStore, RetryPolicy, Settlement,
};
use crm_core::partner::NewPartner;
use crm_core::service::{CommerceService, RulesHook};
use crm_core::service::{CommitHook, CrmService, EventSubscriber};
use crm_core::store::{ChangeSet, Page, PageRequest, Store, Write};
use crm_core::time::{Clock as _, SystemClock, Timestamp};
use crm_delivery::Dispatcher;
use crm_rules::fixtures::Org;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet};
use crm_storage_postgres::{PgConfig, PgStore};
use crm_storage_sqlite::SqliteStore;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    match std::env::var("CRM_CRASH_ROLE").as_deref() {
        Ok("worker") => worker(false),
        Ok("drain") => worker(true),
        _ => parent(),
    }
}

// ---------------------------------------------------------------------------------------------------- stores

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        }
    }
}

/// Where one crash run keeps its data: a directory (the receiver's logs, the progress file, the SQLite file) and,
/// for PostgreSQL, a schema of its own.
#[derive(Debug, Clone)]
struct Target {
    kind: Kind,
    dir: PathBuf,
    pg: Option<(String, String)>,
}

impl Target {
    fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is set"));
        let kind = match var("CRM_CRASH_STORE").as_str() {
            "sqlite" => Kind::Sqlite,
            "postgres" => Kind::Postgres,
            other => panic!("CRM_CRASH_STORE={other}"),
        };
        Self {
            kind,
            dir: PathBuf::from(var("CRM_CRASH_DIR")),
            pg: (kind == Kind::Postgres)
                .then(|| (var("CRM_TEST_POSTGRES_URL"), var("CRM_CRASH_SCHEMA"))),
        }
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("CRM_CRASH_STORE", self.kind.name())
            .env("CRM_CRASH_DIR", &self.dir);
        if let Some((url, schema)) = &self.pg {
            cmd.env("CRM_TEST_POSTGRES_URL", url)
                .env("CRM_CRASH_SCHEMA", schema);
        }
    }

    async fn open(&self) -> Handles {
        match &self.pg {
            None => handles(Arc::new(
                SqliteStore::open_file(self.dir.join("crm.sqlite")).expect("open SQLite"),
            )),
            Some((url, schema)) => handles(Arc::new(
                PgStore::connect(
                    PgConfig::from_url(url)
                        .with_schema(schema)
                        .with_pool_size(4),
                )
                .await
                .expect("connect to PostgreSQL"),
            )),
        }
    }
}

/// One store, as the three traits the engine uses.
#[derive(Clone)]
struct Handles {
    store: Arc<dyn Store>,
    outbox: Arc<dyn OutboxStore>,
    commerce: Arc<dyn CommerceStore>,
}

fn handles<S: Store + OutboxStore + CommerceStore + 'static>(s: Arc<S>) -> Handles {
    Handles {
        store: s.clone(),
        outbox: s.clone(),
        commerce: s,
    }
}

// ---------------------------------------------------------------------------------------------------- progress

/// What a worker has begun and finished since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    /// Service operations (a lead's entry or move, a document) begun, and finished.
    ops_begun: u64,
    ops_done: u64,
    /// Of those, documents.
    docs_begun: u64,
    docs_done: u64,
    /// Documents' change sets handed to the store to commit (seen by the last commit hook), and committed (seen
    /// by an event subscriber, after the commit).
    doc_commits_begun: u64,
    doc_commits_done: u64,
    /// Messages handed to the notifier, and outcomes the dispatcher recorded.
    handed: u64,
    recorded: u64,
}

impl Counters {
    const WIDTH: usize = 8 * 12;

    fn line(&self) -> String {
        let s = format!(
            "{:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
            self.ops_begun,
            self.ops_done,
            self.docs_begun,
            self.docs_done,
            self.doc_commits_begun,
            self.doc_commits_done,
            self.handed,
            self.recorded
        );
        format!("{s:<width$}\n", width = Self::WIDTH - 1)
    }

    fn parse(text: &str) -> Self {
        let n: Vec<u64> = text
            .split_whitespace()
            .map(|v| v.parse().expect("a counter"))
            .collect();
        match n[..] {
            [] => Self::default(),
            [a, b, c, d, e, f, g, h] => Self {
                ops_begun: a,
                ops_done: b,
                docs_begun: c,
                docs_done: d,
                doc_commits_begun: e,
                doc_commits_done: f,
                handed: g,
                recorded: h,
            },
            _ => panic!("a torn progress file: {text:?}"),
        }
    }

    fn in_flight(&self) -> bool {
        self.ops_begun > self.ops_done || self.handed > self.recorded
    }
}

/// The worker's progress file: the counters, rewritten in place (one `pwrite` of a fixed width: a kill leaves the
/// previous or the next state, never half of one) at every step.
#[derive(Debug)]
struct Progress {
    state: Mutex<(std::fs::File, Counters)>,
}

impl Progress {
    fn create(path: &Path) -> Self {
        let f = std::fs::File::create(path).expect("progress file");
        Self {
            state: Mutex::new((f, Counters::default())),
        }
    }

    fn step(&self, change: impl FnOnce(&mut Counters)) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut g.1);
        let line = g.1.line();
        g.0.write_all_at(line.as_bytes(), 0)
            .expect("write the progress file");
    }

    fn read(path: &Path) -> Counters {
        Counters::parse(&std::fs::read_to_string(path).unwrap_or_default())
    }
}

/// The worker's outbox store: forwards everything, counting the outcomes the dispatcher records.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn OutboxStore>,
    progress: Arc<Progress>,
}

/// `impl OutboxStore for Counted`: `settle` counts what it records, the listed methods forward to `inner` as they are.
macro_rules! counted_outbox {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait]
        impl OutboxStore for Counted {
            async fn settle(
                &self,
                tenant: TenantId,
                id: OutboxId,
                how: &Settlement,
            ) -> crm_core::Result<()> {
                self.inner.settle(tenant, id, how).await?;
                self.progress.step(|c| c.recorded += 1);
                Ok(())
            }
            $(
                async fn $name(&self, $($arg: $ty),*) -> crm_core::Result<$ret> {
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

counted_outbox! {
    fn claim_due(now: Timestamp, lease: Days, limit: u32) -> Vec<OutboxMessage>;
    fn find_outbox(tenant: TenantId, by: &OutboxRef) -> OutboxMessage;
    fn list_outbox(tenant: TenantId, status: OutboxStatus, page: &PageRequest) -> Page<OutboxMessage>;
    fn inbox_write(write: &InboxWrite) -> bool;
    fn inbox(tenant: TenantId, user: UserId, unread_only: bool, page: &PageRequest) -> Page<InboxItem>;
    fn unread_count(tenant: TenantId, user: UserId) -> u64;
}

fn records_invoice(events: &[DomainEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.kind, EventKind::InvoiceRecorded { .. }))
}

/// The last commit hook: counts a document's change set as it goes to the store.
#[derive(Debug)]
struct CommitBegins(Arc<Progress>);

impl CommitHook for CommitBegins {
    fn before_commit(
        &self,
        _: &Context,
        changes: &mut ChangeSet,
        _: &crm_core::service::Loaded,
    ) -> crm_core::Result<()> {
        let events: Vec<DomainEvent> = changes
            .writes()
            .iter()
            .filter_map(|w| match w {
                Write::AppendEvent(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        if records_invoice(&events) {
            self.0.step(|c| c.doc_commits_begun += 1);
        }
        Ok(())
    }
}

/// Counts a document's change set once committed (subscribers hear of a change after its commit).
#[derive(Debug)]
struct CommitEnds(Arc<Progress>);

#[async_trait]
impl EventSubscriber for CommitEnds {
    async fn publish(&self, events: &[DomainEvent]) {
        if records_invoice(events) {
            self.0.step(|c| c.doc_commits_done += 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------------- worker

/// The example organisation, answering every partner's `primary` contact (the worker's partners are new).
#[derive(Debug)]
struct Dir(StaticDirectory);

impl Directory for Dir {
    fn user(&self, t: TenantId, id: UserId) -> Option<Person> {
        self.0.user(t, id)
    }
    fn role_members(&self, t: TenantId, role: &str) -> Option<Vec<UserId>> {
        self.0.role_members(t, role)
    }
    fn manager_of(&self, t: TenantId, u: UserId) -> Option<UserId> {
        self.0.manager_of(t, u)
    }
    fn partner_contacts(&self, _: TenantId, _: PartnerId, _: &str) -> Vec<Person> {
        vec![Person {
            user: None,
            name: "Buyer".into(),
            email: Some("buyer@customer.example".into()),
        }]
    }
    fn roles(&self, t: TenantId) -> BTreeMap<String, Vec<UserId>> {
        self.0.roles(t)
    }
}

/// The receiver: logs every hand-over to `attempts.log`, and each key's first one to `delivered.log` (it remembers
/// what it received across restarts, like any receiver that drops repeats by idempotency key).
#[derive(Debug)]
struct FileNotifier {
    dir: PathBuf,
    seen: Mutex<HashSet<String>>,
    progress: Arc<Progress>,
}

impl FileNotifier {
    fn open(dir: &Path, progress: Arc<Progress>) -> Self {
        // A kill inside the append's write(2) can leave a torn last line (Linux checks for a fatal signal between
        // the pages a write spans, so a line crossing a page boundary can land in part). The receiver recovers its
        // logs as any append-only log does: the torn tail was never a completed hand-over, so it is cut off before
        // the next line is appended (else the two would read as one key nobody sent).
        for file in ["attempts.log", "delivered.log"] {
            cut_torn_tail(&dir.join(file));
        }
        let seen = std::fs::read_to_string(dir.join("delivered.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Self {
            dir: dir.to_path_buf(),
            seen: Mutex::new(seen),
            progress,
        }
    }

    fn append(&self, file: &str, line: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(file))?;
        // One write per line: an append of a few dozen bytes lands whole or not at all.
        f.write_all(format!("{line}\n").as_bytes())
    }
}

#[async_trait]
impl Notifier for FileNotifier {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        // Counted before the hand-over: a kill from here until the dispatcher records the outcome is a kill
        // mid-delivery, the only moment that can make the engine hand the message over again.
        self.progress.step(|c| c.handed += 1);
        let err = |e: std::io::Error| DeliveryError::Transient(e.to_string());
        self.append("attempts.log", &m.idempotency_key)
            .map_err(err)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(&m.idempotency_key) {
            return Ok(());
        }
        self.append("delivered.log", &m.idempotency_key)
            .map_err(err)?;
        seen.insert(m.idempotency_key.clone());
        Ok(())
    }
}

/// Truncates `path` after its last newline (a missing file is left alone).
fn cut_torn_tail(path: &Path) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    if bytes.last().is_some_and(|b| *b != b'\n') {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("the receiver's log opens");
        f.set_len(keep as u64).expect("the torn tail is cut");
    }
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules")
}

/// The products the invoices sell: line `k` of an invoice sells product `k`.
const PRODUCTS: usize = 5;

fn product_code(k: usize) -> String {
    format!("CRASH-{k}")
}

/// The number of the `i`-th invoice a worker started as run `run` records, and its number of lines.
fn invoice_number(run: u32, i: u64) -> String {
    format!("INV-{run:04}-{i:06}")
}

fn invoice_lines(i: u64) -> usize {
    1 + (i as usize % PRODUCTS)
}

fn issue_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).expect("a date")
}

fn worker(drain: bool) {
    let target = Target::from_env();
    let run: u32 = std::env::var("CRM_CRASH_RUN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let h = target.open().await;
        let progress = Arc::new(Progress::create(&target.dir.join(if drain {
            "progress.drain"
        } else {
            "progress"
        })));
        let org = Org::load(&example_dir().join("org.toml")).expect("org");
        let engine = RhaiRuleEngine::new(
            RuleSet::load_dir(&example_dir(), Limits::default()).expect("rules"),
        );
        let hook = RulesHook::new(Arc::new(engine), Arc::new(Dir(org.directory())));
        let crm = CrmService::builder()
            .store(h.store.clone())
            .hook(Arc::new(hook))
            .hook(Arc::new(CommitBegins(progress.clone())))
            .subscriber(Arc::new(CommitEnds(progress.clone())))
            .build()
            .expect("service");
        let outbox = Arc::new(Counted {
            inner: h.outbox.clone(),
            progress: progress.clone(),
        });
        let dispatcher = Dispatcher::new(
            outbox,
            Arc::new(FileNotifier::open(&target.dir, progress.clone())),
            Arc::new(SystemClock),
        )
        .with_policy(RetryPolicy {
            max_attempts: 1000,
            base_seconds: 1,
            cap_seconds: 1,
            lease_seconds: 1,
        });
        if drain {
            // Deliver everything, including messages whose lease a killed worker left running.
            for _ in 0..300 {
                dispatcher.drain(100).await.expect("dispatch");
                let pending = h
                    .outbox
                    .list_outbox(Org::tenant(), OutboxStatus::Pending, &PageRequest::first(1))
                    .await
                    .expect("list");
                if pending.items.is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the outbox did not drain");
        }
        let d = tokio::spawn(async move {
            loop {
                dispatcher.run_once(20).await.expect("dispatch");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let ctx = Context::user(Org::tenant(), Org::user_id("ana"));
        let shop = CommerceService::new(
            crm.clone(),
            h.commerce.clone(),
            Currency::parse("EUR").expect("EUR"),
        );
        let pipeline = crm.setup_tenant(&ctx).await.expect("setup");
        let mut products = Vec::new();
        for k in 0..PRODUCTS {
            let p = shop
                .record_product(
                    &ctx,
                    NewProduct {
                        code: product_code(k),
                        name: format!("Crash product {k}"),
                        category: None,
                    },
                    None,
                )
                .await
                .expect("product");
            products.push(p.record().id());
        }
        let stage = |n: &str| {
            pipeline
                .stages()
                .iter()
                .find(|s| s.name == n)
                .expect("stage")
                .id
        };
        let (offer, negotiation) = (stage("Offer"), stage("Negotiation"));
        // A telemarketing campaign calling three customers of its own, launched afresh by each worker (the launch
        // is one transaction: its targets and their calls), whose calls get an outcome after every invoice, so
        // kills land in the updates that keep the campaign report's counts of the targets.
        let calls = {
            let mut tags = BTreeSet::new();
            tags.insert(format!("crash-calls-{run}"));
            for k in 0..3 {
                let mut n = NewPartner::company(format!("Callee {run}-{k}"));
                n.tags = tags.clone();
                crm.create_partner(&ctx, n).await.expect("callee");
            }
            let today = SystemClock.now().date_naive();
            let campaign = shop
                .create_campaign(
                    &ctx,
                    NewCampaign {
                        name: format!("Crash calls {run}"),
                        channel: Channel::Telemarketing,
                        period: Period::new(today, today + Days::days(30)).expect("period"),
                        owner: Org::user_id("ana"),
                        agents: vec![Org::user_id("ana")],
                        script: None,
                        budget: None,
                        criteria: Some(Criteria::Tag {
                            tag: format!("crash-calls-{run}"),
                        }),
                    },
                )
                .await
                .expect("campaign");
            shop.launch_campaign(&ctx, campaign.id(), campaign.version())
                .await
                .expect("launch")
                .calls
        };
        assert_eq!(calls.len(), 3, "the callees are called");
        // Every service operation is counted as begun before the call and finished after it.
        let op = |doc: bool, done: bool| {
            progress.step(|c| match (doc, done) {
                (false, false) => c.ops_begun += 1,
                (false, true) => c.ops_done += 1,
                (true, false) => {
                    c.ops_begun += 1;
                    c.docs_begun += 1
                }
                (true, true) => {
                    c.ops_done += 1;
                    c.docs_done += 1
                }
            })
        };
        let mut i = 0u64;
        loop {
            i += 1;
            let mut input = NewLead::new(
                LeadPartner::New {
                    partner: NewPartner::company(format!("Customer {i} {}", uuid::Uuid::now_v7())),
                },
                format!("Deal {i}"),
            );
            input.owner = Some(Org::user_id(if i.is_multiple_of(2) {
                "ana"
            } else {
                "dan"
            }));
            input.expected_revenue = Some(Money::parse("80000", "EUR").expect("money"));
            op(false, false);
            let lead = crm.enter_lead(&ctx, input).await.expect("enter").record;
            op(false, true);
            let mut version = lead.version();
            for cmd in [
                LeadCommand::MoveTo { stage: offer },
                LeadCommand::MoveTo { stage: negotiation },
                LeadCommand::Win,
            ] {
                op(false, false);
                version = crm
                    .transition(&ctx, lead.id(), version, cmd)
                    .await
                    .expect("move")
                    .record
                    .version();
                op(false, true);
            }
            let lines = (0..invoice_lines(i))
                .map(|k| {
                    NewLine::new(
                        products[k],
                        Decimal::from(k as u64 + 1),
                        Decimal::from(100 + 10 * k as u64),
                        Decimal::from(60),
                    )
                })
                .collect();
            let invoice = NewDocument::invoice(
                &invoice_number(run, i),
                lead.partner(),
                issue_date(),
                "EUR",
                lines,
            )
            .due(issue_date() + Days::days(30));
            op(true, false);
            shop.record_document(&ctx, invoice).await.expect("invoice");
            op(true, true);
            // No answer or a call back: the call stays open for the next outcome.
            let outcome = if i.is_multiple_of(2) {
                CallOutcome::NoAnswer
            } else {
                CallOutcome::CallBack {
                    at: SystemClock.now() + Days::days(1),
                }
            };
            op(false, false);
            shop.record_call_outcome(&ctx, calls[(i % 3) as usize].id(), outcome)
                .await
                .expect("call outcome");
            op(false, true);
            if d.is_finished() {
                panic!("the dispatcher stopped");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------------- parent

fn random_millis(lo: u64, hi: u64) -> u64 {
    // The random bits of a fresh v7 UUID are random enough to pick a moment to kill.
    lo + ((uuid::Uuid::now_v7().as_u128() & 0xFFFF_FFFF_FFFF) as u64) % (hi - lo)
}

fn spawn(target: &Target, role: &str, run: u32) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.env("CRM_CRASH_ROLE", role)
        .env("CRM_CRASH_RUN", run.to_string())
        .stdout(std::process::Stdio::null());
    target.env(&mut cmd);
    cmd.spawn().expect("start the worker")
}

/// What the kills found.
#[derive(Debug, Default)]
struct Kills {
    kills: u32,
    /// Kills with an operation or a delivery in flight.
    mid_work: u32,
    /// Kills with a document being recorded.
    mid_document: u32,
    /// Kills with a document's change set handed to the store and not yet committed.
    mid_document_commit: u32,
    /// Kills aimed at a document's commit (every third), and at a delivery (every third).
    aimed_document: u32,
    aimed_delivery: u32,
    /// Kills between a hand-over to the notifier and the recording of its outcome.
    mid_delivery: u32,
}

/// Starts and kills the worker `runs` times. Each time it waits until the new worker has finished an operation
/// (its progress is seen between restart and kill), then picks the moment to kill: a random one within the next
/// 400 ms, or (every third kill each) the moment a document's change set has gone to the store, or the moment a
/// message has been handed to the notifier, so that both windows are hit in a short run too.
fn kill_loop(target: &Target, runs: u32) -> Kills {
    let progress_file = target.dir.join("progress");
    let mut k = Kills::default();
    for run in 0..runs {
        let _ = std::fs::remove_file(&progress_file);
        let mut child = spawn(target, "worker", run);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the worker exited by itself ({status}) instead of being killed");
            }
            if Progress::read(&progress_file).ops_done > 0 {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                panic!("the worker made no progress within 120 s of its start");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let aim: Option<fn(&Counters) -> bool> = match run % 3 {
            1 => Some(|c| c.handed > c.recorded),
            2 => Some(|c| c.doc_commits_begun > c.doc_commits_done),
            _ => None,
        };
        match aim {
            Some(hit) => {
                let since = Instant::now();
                while since.elapsed() < Duration::from_secs(10)
                    && !hit(&Progress::read(&progress_file))
                {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            None => std::thread::sleep(Duration::from_millis(random_millis(0, 400))),
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the worker exited by itself ({status}) instead of being killed");
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        // The state the worker was killed in.
        let c = Progress::read(&progress_file);
        assert!(c.ops_done > 0, "progress between restart and kill: {c:?}");
        k.kills += 1;
        k.mid_work += u32::from(c.in_flight());
        k.mid_document += u32::from(c.docs_begun > c.docs_done);
        k.mid_document_commit += u32::from(c.doc_commits_begun > c.doc_commits_done);
        k.aimed_delivery += u32::from(run % 3 == 1);
        k.aimed_document += u32::from(run % 3 == 2);
        k.mid_delivery += u32::from(c.handed > c.recorded);
    }
    k
}

async fn all_messages(outbox: &dyn OutboxStore, tenant: TenantId) -> Vec<OutboxMessage> {
    let mut decided = Vec::new();
    for status in [
        OutboxStatus::Pending,
        OutboxStatus::Dead,
        OutboxStatus::Delivered,
    ] {
        let mut page = PageRequest::first(1000);
        loop {
            let p = outbox
                .list_outbox(tenant, status, &page)
                .await
                .expect("list");
            decided.extend(p.items);
            match p.next {
                Some(c) => page.after = Some(c),
                None => break,
            }
        }
    }
    decided
}

async fn all_events(store: &dyn Store, tenant: TenantId) -> Vec<DomainEvent> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let batch = store
            .events_since(tenant, after, 1000)
            .await
            .expect("events");
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        // As the engine reads its log: opened (events about partners are stored sealed).
        let batch = crm_core::service::open_feed(store, tenant, batch)
            .await
            .expect("open");
        events.extend(batch.into_iter().map(|(_, e)| e));
    }
    events
}

/// Every invoice the workers recorded, found by number: worker `run`'s numbers run from 1 without a gap (it
/// records one at a time), so the first number missing ends that run's documents.
async fn all_invoices(
    commerce: &dyn CommerceStore,
    tenant: TenantId,
    runs: u32,
) -> Vec<(u64, Document)> {
    let mut out = Vec::new();
    for run in 0..runs {
        let mut i = 1;
        while let Some(d) = commerce
            .document_by_number(tenant, DocumentKind::Invoice, &invoice_number(run, i))
            .await
            .expect("document")
        {
            out.push((i, d));
            i += 1;
        }
        for later in i + 1..i + 3 {
            let gap = commerce
                .document_by_number(tenant, DocumentKind::Invoice, &invoice_number(run, later))
                .await
                .expect("document");
            assert!(
                gap.is_none(),
                "run {run}: invoice {later} exists without invoice {i}"
            );
        }
    }
    out
}

/// The counts of one store's run.
#[derive(Debug)]
struct Report {
    kills: Kills,
    events: usize,
    documents: usize,
    messages: usize,
    hand_overs: usize,
    engine_duplicates: usize,
}

fn check(target: &Target, runs: u32) -> Report {
    let kills = kill_loop(target, runs);
    let status = spawn(target, "drain", runs).wait().expect("drain");
    assert!(status.success(), "the draining worker failed: {status}");
    let dir = &target.dir;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tenant = Org::tenant();
    let (decided, events, invoices, segments) = rt.block_on(async {
        let h = target.open().await;
        let decided = all_messages(h.outbox.as_ref(), tenant).await;
        let events = all_events(h.store.as_ref(), tenant).await;
        let invoices = all_invoices(h.commerce.as_ref(), tenant, runs).await;
        // Who bought product k, as the segment query reads it from the line rows (not the document's own copy).
        let mut segments = Vec::new();
        for k in 0..PRODUCTS {
            let product = h
                .commerce
                .product_by_code(tenant, &product_code(k))
                .await
                .expect("product")
                .expect("the product exists");
            let bought = Criteria::Bought {
                mode: BoughtMode::Any,
                items: vec![Item::Product(product.id())],
                period: Period::year(2026).expect("period"),
            };
            let members = h
                .commerce
                .segment(
                    tenant,
                    &bought,
                    issue_date() + Days::days(1),
                    Currency::parse("EUR").expect("EUR"),
                )
                .await
                .expect("segment");
            segments.push((
                product.id(),
                members
                    .into_iter()
                    .map(|m| m.partner)
                    .collect::<BTreeSet<_>>(),
            ));
        }
        // The sales roll-ups equal the documents: never counted twice, never half-updated by a kill.
        let check = h
            .commerce
            .rollups(tenant, crm_core::commerce::RollupAction::Verify)
            .await
            .expect("verify roll-ups");
        assert!(
            check.is_clean(),
            "the roll-ups (and the campaign report's counts of the targets) differ after the kills: {check:?}"
        );
        // Each worker's campaign was launched whole (its three targets) or not at all, and the calls' outcomes
        // recorded between the kills are counted (the check above compared every count with the targets).
        let campaigns = h
            .commerce
            .campaigns_sums(tenant, None, Currency::parse("EUR").expect("EUR"))
            .await
            .expect("campaign sums");
        assert!(!campaigns.is_empty(), "the workers launched campaigns");
        for c in &campaigns {
            assert!(
                [0, 3].contains(&c.sums.targets),
                "{}: {} targets",
                c.name,
                c.sums.targets
            );
        }
        let outcomes: u64 = campaigns
            .iter()
            .flat_map(|c| c.sums.outcomes.values())
            .sum();
        assert!(outcomes > 0, "calls' outcomes recorded");
        (decided, events, invoices, segments)
    });

    // Messages: all delivered, each key once at the receiver.
    assert!(
        decided.iter().all(|m| m.status == OutboxStatus::Delivered),
        "every decided message is delivered"
    );
    let keys: BTreeSet<String> = decided.iter().map(|m| m.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), decided.len(), "idempotency keys are unique");
    let read_lines = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let delivered = read_lines("delivered.log");
    let delivered_set: BTreeSet<String> = delivered.iter().cloned().collect();
    assert_eq!(
        delivered.len(),
        delivered_set.len(),
        "the receiver kept each key once"
    );
    assert_eq!(delivered_set, keys, "exactly the decided messages arrived");

    // The engine's own repeats: hand-overs of a key after its first.
    let attempts = read_lines("attempts.log");
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &attempts {
        *per_key.entry(a.as_str()).or_insert(0) += 1;
    }
    let strangers: Vec<&str> = per_key
        .keys()
        .copied()
        .filter(|k| !keys.contains(*k))
        .collect();
    assert!(
        strangers.is_empty(),
        "only decided messages were handed over; handed over but not decided: {:?}; of them torn (a part of a \
         decided key): {:?}",
        strangers,
        strangers
            .iter()
            .filter(|s| keys.iter().any(|k| k.contains(**s) || s.contains(k.as_str())))
            .collect::<Vec<_>>()
    );
    let engine_duplicates: usize = per_key.values().map(|n| n - 1).sum();
    assert!(
        engine_duplicates <= kills.mid_delivery as usize,
        "{engine_duplicates} engine duplicates but only {} kills between a hand-over and its recording",
        kills.mid_delivery
    );
    assert!(
        engine_duplicates <= kills.kills as usize,
        "at most one engine duplicate per kill"
    );

    // Every committed event has its messages: the rules' writes commit with the change or not at all.
    let mut expected = 0;
    let mut invoice_events = BTreeMap::new();
    for e in &events {
        let per_event = match &e.kind {
            EventKind::LeadEntered { .. } => 1,
            EventKind::LeadStageMoved { to_name, .. } if to_name == "Offer" => 2,
            EventKind::LeadStageMoved { to_name, .. } if to_name == "Negotiation" => 1,
            EventKind::LeadWon { .. } => 3,
            // Its call list, to its one agent (`campaigns.rhai`).
            EventKind::CampaignLaunched { .. } => 1,
            EventKind::InvoiceRecorded {
                document, number, ..
            } => {
                assert!(
                    invoice_events.insert(*document, number.clone()).is_none(),
                    "one event per document"
                );
                0
            }
            EventKind::RuleFailed { message, .. } => panic!("a rule failed: {message}"),
            _ => 0,
        };
        let prefix = format!("event:{}/", e.id);
        let found = keys.iter().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(found, per_event, "messages of {:?}", e.kind);
        expected += per_event;
    }
    assert_eq!(expected, keys.len(), "no message without its event");

    // Documents: whole, with their events, and their line rows.
    let mut buyers: Vec<BTreeSet<PartnerId>> = vec![BTreeSet::new(); PRODUCTS];
    for (i, d) in &invoices {
        let n = invoice_lines(*i);
        assert_eq!(
            d.lines().len(),
            n,
            "invoice {} has all its lines",
            d.number()
        );
        for (k, l) in d.lines().iter().enumerate() {
            assert_eq!(l.product, segments[k].0, "line {k} of {}", d.number());
            assert_eq!(l.quantity, Decimal::from(k as u64 + 1));
            buyers[k].insert(d.partner());
        }
        assert_eq!(
            invoice_events.get(&d.id()).map(String::as_str),
            Some(d.number()),
            "invoice {} has its event",
            d.number()
        );
    }
    assert_eq!(
        invoice_events.len(),
        invoices.len(),
        "every InvoiceRecorded event has its document"
    );
    for (k, (_, members)) in segments.iter().enumerate() {
        assert_eq!(
            members, &buyers[k],
            "the line rows of product {k} match the documents' lines"
        );
    }
    // Each kill found progress; the whole run must have produced messages and documents to check.
    assert!(
        decided.len() >= kills.kills as usize && !invoices.is_empty(),
        "the workload produced too little: {} messages, {} invoices",
        decided.len(),
        invoices.len()
    );
    assert!(
        kills.mid_work * 2 >= kills.kills,
        "most kills land mid-work: {kills:?}"
    );
    assert!(
        kills.aimed_document == 0 || kills.mid_document_commit > 0,
        "a kill aimed at a document's commit lands in one: {kills:?}"
    );
    assert!(
        kills.aimed_delivery == 0 || kills.mid_delivery > 0,
        "a kill aimed at a delivery lands in one: {kills:?}"
    );
    Report {
        kills,
        events: events.len(),
        documents: invoices.len(),
        messages: decided.len(),
        hand_overs: attempts.len(),
        engine_duplicates,
    }
}

fn print(kind: Kind, r: &Report) {
    let k = &r.kills;
    // For scripts (scripts/crash tabulates these).
    println!(
        "crash counts: store={} kills={} mid_work={} mid_document={} mid_document_commit={} mid_delivery={} \
         aimed_document={} aimed_delivery={} events={} documents={} messages={} hand_overs={} engine_duplicates={}",
        kind.name(),
        k.kills,
        k.mid_work,
        k.mid_document,
        k.mid_document_commit,
        k.mid_delivery,
        k.aimed_document,
        k.aimed_delivery,
        r.events,
        r.documents,
        r.messages,
        r.hand_overs,
        r.engine_duplicates,
    );
    println!(
        "crash test [{}]: kills {} (aimed: {} at a document's commit, {} at a delivery), mid-work {} (mid-document {}, of which in \
         its commit {}; mid-delivery {}); events {}, documents {} (each whole, with its event); messages {} (each \
         received once by key); hand-overs {}, engine duplicates {}",
        kind.name(),
        k.kills,
        k.aimed_document,
        k.aimed_delivery,
        k.mid_work,
        k.mid_document,
        k.mid_document_commit,
        k.mid_delivery,
        r.events,
        r.documents,
        r.messages,
        r.hand_overs,
        r.engine_duplicates,
    );
}

fn runs(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn parent() {
    let stores = std::env::var("CRM_CRASH_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    let wanted = |k: Kind| stores.split(',').any(|s| s.trim() == k.name());
    // Checked first, so a missing server fails at once rather than after the SQLite run.
    let pg_url = std::env::var("CRM_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if wanted(Kind::Postgres) && pg_url.is_none() {
        assert!(
            std::env::var("CRM_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "CRM_REQUIRE_POSTGRES=1 but CRM_TEST_POSTGRES_URL is not set: the PostgreSQL crash test must run \
             (scripts/with-postgres)"
        );
    }
    if wanted(Kind::Sqlite) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let target = Target {
            kind: Kind::Sqlite,
            dir: tmp.path().to_path_buf(),
            pg: None,
        };
        print(Kind::Sqlite, &check(&target, runs("CRM_CRASH_RUNS", 25)));
    }
    if wanted(Kind::Postgres) {
        match pg_url {
            Some(url) => {
                let tmp = tempfile::tempdir().expect("temp dir");
                // A fresh schema per run: the migrations run in it on the first worker's start.
                let schema = format!(
                    "crm_crash_{}_{}",
                    std::process::id(),
                    &uuid::Uuid::now_v7().simple().to_string()[20..]
                );
                let target = Target {
                    kind: Kind::Postgres,
                    dir: tmp.path().to_path_buf(),
                    pg: Some((url, schema)),
                };
                print(
                    Kind::Postgres,
                    &check(&target, runs("CRM_CRASH_PG_RUNS", 10)),
                );
            }
            None => println!(
                "crash test [postgres]: SKIPPED (no CRM_TEST_POSTGRES_URL; run under scripts/with-postgres)"
            ),
        }
    }
}
