//! Crash test: a worker process enters and advances leads on an SQLite file (the rules write their outbox messages
//! in the same transactions) while a dispatcher delivers the outbox to a file-backed notifier; the parent kills it
//! with SIGKILL at random moments and restarts it, many times. Afterwards every decided message must have been
//! delivered exactly once by idempotency key, and every committed event must have its messages.
//!
//! `CRM_CRASH_RUNS` sets the number of kills (default 25).

use async_trait::async_trait;
use crm_core::actor::Context;
use crm_core::comms::{Directory, Person, StaticDirectory};
use crm_core::event::EventKind;
use crm_core::id::{PartnerId, TenantId, UserId};
use crm_core::lead::{LeadCommand, LeadPartner, NewLead};
use crm_core::money::Money;
use crm_core::outbox::{
    DeliveryError, Notifier, OutboxMessage, OutboxStatus, OutboxStore, RetryPolicy,
};
use crm_core::partner::NewPartner;
use crm_core::service::CrmService;
use crm_core::service::RulesHook;
use crm_core::store::{PageRequest, Store};
use crm_core::time::SystemClock;
use crm_delivery::Dispatcher;
use crm_rules::fixtures::Org;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet};
use crm_storage_sqlite::SqliteStore;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn main() {
    match std::env::var("CRM_CRASH_ROLE").as_deref() {
        Ok("worker") => worker(false),
        Ok("drain") => worker(true),
        _ => parent(),
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

/// Appends each delivered key to `delivered.log` once (it remembers what it delivered, across restarts, like any
/// receiver that deduplicates on the idempotency key) and every call to `attempts.log`.
#[derive(Debug)]
struct FileNotifier {
    dir: PathBuf,
    seen: Mutex<HashSet<String>>,
}

impl FileNotifier {
    fn open(dir: &Path) -> Self {
        let seen = std::fs::read_to_string(dir.join("delivered.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Self {
            dir: dir.to_path_buf(),
            seen: Mutex::new(seen),
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

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules")
}

fn worker(drain: bool) {
    let dir = PathBuf::from(std::env::var("CRM_CRASH_DIR").expect("CRM_CRASH_DIR"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Arc::new(SqliteStore::open_file(dir.join("crm.sqlite")).expect("open"));
        let org = Org::load(&example_dir().join("org.toml")).expect("org");
        let engine = RhaiRuleEngine::new(
            RuleSet::load_dir(&example_dir(), Limits::default()).expect("rules"),
        );
        let hook = RulesHook::new(Arc::new(engine), Arc::new(Dir(org.directory())));
        let crm = CrmService::builder()
            .store(store.clone())
            .hook(Arc::new(hook))
            .build()
            .expect("service");
        let dispatcher = Dispatcher::new(
            store.clone(),
            Arc::new(FileNotifier::open(&dir)),
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
            for _ in 0..200 {
                dispatcher.drain(100).await.expect("dispatch");
                let pending = store
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
        let pipeline = crm.setup_tenant(&ctx).await.expect("setup");
        let stage = |n: &str| {
            pipeline
                .stages
                .iter()
                .find(|s| s.name == n)
                .expect("stage")
                .id
        };
        let (offer, negotiation) = (stage("Offer"), stage("Negotiation"));
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
            let lead = crm.enter_lead(&ctx, input).await.expect("enter").record;
            let lead = crm
                .transition(
                    &ctx,
                    lead.id,
                    lead.version,
                    LeadCommand::MoveTo { stage: offer },
                )
                .await
                .expect("offer")
                .record;
            let lead = crm
                .transition(
                    &ctx,
                    lead.id,
                    lead.version,
                    LeadCommand::MoveTo { stage: negotiation },
                )
                .await
                .expect("negotiation")
                .record;
            crm.transition(&ctx, lead.id, lead.version, LeadCommand::Win)
                .await
                .expect("win");
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

fn spawn(dir: &Path, role: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("own path"))
        .env("CRM_CRASH_ROLE", role)
        .env("CRM_CRASH_DIR", dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the worker")
}

fn parent() {
    let runs: u32 = std::env::var("CRM_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    for _ in 0..runs {
        let mut child = spawn(dir, "worker");
        std::thread::sleep(Duration::from_millis(random_millis(150, 700)));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the worker exited by itself ({status}) instead of being killed");
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    let status = spawn(dir, "drain").wait().expect("drain");
    assert!(status.success(), "the draining worker failed: {status}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (decided, events) = rt.block_on(async {
        let store = SqliteStore::open_file(dir.join("crm.sqlite")).expect("open");
        let tenant = Org::tenant();
        let mut decided = Vec::new();
        for status in [
            OutboxStatus::Pending,
            OutboxStatus::Dead,
            OutboxStatus::Delivered,
        ] {
            let mut page = PageRequest::first(1000);
            loop {
                let p = store
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
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let batch = store
                .events_since(tenant, after, 1000)
                .await
                .expect("events");
            let Some((last, _)) = batch.last() else { break };
            after = *last;
            events.extend(batch.into_iter().map(|(_, e)| e));
        }
        (decided, events)
    });
    assert!(
        decided.iter().all(|m| m.status == OutboxStatus::Delivered),
        "every decided message is delivered"
    );
    let keys: BTreeSet<String> = decided.iter().map(|m| m.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), decided.len(), "idempotency keys are unique");
    let delivered: Vec<String> = std::fs::read_to_string(dir.join("delivered.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let delivered_set: BTreeSet<String> = delivered.iter().cloned().collect();
    assert_eq!(
        delivered.len(),
        delivered_set.len(),
        "no key delivered twice"
    );
    assert_eq!(
        delivered_set, keys,
        "exactly the decided messages were delivered"
    );
    let attempts = std::fs::read_to_string(dir.join("attempts.log"))
        .unwrap_or_default()
        .lines()
        .count();
    // Every committed event has its messages: the rules' writes commit with the change or not at all.
    let mut expected = 0;
    for e in &events {
        let per_event = match &e.kind {
            EventKind::LeadEntered { .. } => 1,
            EventKind::LeadStageMoved { to_name, .. } if to_name == "Offer" => 2,
            EventKind::LeadStageMoved { to_name, .. } if to_name == "Negotiation" => 1,
            EventKind::LeadWon { .. } => 3,
            EventKind::RuleFailed { message, .. } => panic!("a rule failed: {message}"),
            _ => 0,
        };
        let prefix = format!("event:{}/", e.id);
        let found = keys.iter().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(found, per_event, "messages of {:?}", e.kind);
        expected += per_event;
    }
    assert_eq!(expected, keys.len());
    assert!(
        decided.len() > 100,
        "the workload produced too little: {}",
        decided.len()
    );
    println!(
        "crash test: {runs} SIGKILLs; {} events, {} messages decided, each delivered exactly once by key; \
         {} delivery attempts ({} redeliveries after crashes suppressed by the key)",
        events.len(),
        decided.len(),
        attempts,
        attempts - delivered.len()
    );
}
