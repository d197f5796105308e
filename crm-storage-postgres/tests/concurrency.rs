//! 32 concurrent tasks advancing, commenting and editing the same 100 leads through the service, on a real server:
//! stale versions surface as conflicts, retries succeed, no update is lost, and the activity log holds exactly one
//! entry per successful change.

mod common;

use crm_core::actor::Context;
use crm_core::event::CommentTarget;
use crm_core::id::{LeadId, UserId};
use crm_core::lead::{LeadCommand, LeadPatch};
use crm_core::pipeline::StageKind;
use crm_core::store::Store;
use crm_core::Error;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

const TASKS: usize = 32;
const LEADS: usize = 100;
const OPS_PER_TASK: usize = 40;

#[derive(Debug, Default, Clone)]
struct Counts {
    operations: u64,
    advances: u64,
    edits: u64,
    comments: u64,
    conflicts: u64,
    retries: u64,
    /// Successful version-bumping changes per lead.
    updates: HashMap<LeadId, u64>,
    /// Events the successful operations committed.
    events: u64,
}

impl Counts {
    /// Adds one task's counts to these.
    fn absorb(&mut self, c: Counts) {
        self.operations += c.operations;
        self.advances += c.advances;
        self.edits += c.edits;
        self.comments += c.comments;
        self.conflicts += c.conflicts;
        self.retries += c.retries;
        self.events += c.events;
        for (l, n) in c.updates {
            *self.updates.entry(l).or_default() += n;
        }
    }
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_on_one_hundred_leads_lose_no_update() {
    let Some(url) = common::url() else { return };
    let store = crm_storage_postgres::PgStore::connect(common::config(&url).with_pool_size(16))
        .await
        .unwrap();
    let (store, crm, ctx, pipeline) = common::tenant_service(store).await;
    let tenant = ctx.tenant;
    let open: Vec<_> = pipeline
        .stages()
        .iter()
        .filter(|s| s.kind == StageKind::Open)
        .map(|s| s.id)
        .collect();
    let leads = common::partner_with_leads(&crm, &ctx, "Mobila SRL", LEADS).await;
    let setup_events = store.events_since(tenant, 0, 10_000).await.unwrap().len() as u64;
    let leads = Arc::new(leads);
    let open = Arc::new(open);

    let mut handles = Vec::new();
    for task in 0..TASKS {
        let (crm, leads, open) = (crm.clone(), leads.clone(), open.clone());
        let ctx = Context::user(tenant, UserId::new());
        handles.push(tokio::spawn(async move {
            let mut rng = Lcg(task as u64 + 1);
            let mut c = Counts::default();
            for n in 0..OPS_PER_TASK {
                let lead = leads[rng.next(leads.len())];
                let op = rng.next(3);
                c.operations += 1;
                let mut attempt = 0;
                loop {
                    if attempt > 0 {
                        c.retries += 1;
                    }
                    attempt += 1;
                    let result = match op {
                        0 | 1 => {
                            let current = crm.lead(tenant, lead).await.unwrap();
                            // Let other tasks interleave between the read and the write.
                            tokio::task::yield_now().await;
                            let cmd = if op == 0 {
                                let i = open.iter().position(|s| *s == current.stage()).unwrap();
                                LeadCommand::MoveTo {
                                    stage: open[(i + 1) % open.len()],
                                }
                            } else {
                                LeadCommand::Update(LeadPatch {
                                    description: Some(Some(format!("task {task} op {n}"))),
                                    ..Default::default()
                                })
                            };
                            crm.transition(&ctx, lead, current.version(), cmd)
                                .await
                                .map(|o| (o.events.len(), true))
                        }
                        _ => crm
                            .comment(
                                &ctx,
                                CommentTarget::Lead(lead),
                                &format!("task {task} op {n}"),
                            )
                            .await
                            .map(|o| (o.events.len(), false)),
                    };
                    match result {
                        Ok((events, bumped)) => {
                            assert_eq!(events, 1, "every change logs exactly one entry");
                            c.events += events as u64;
                            if bumped {
                                *c.updates.entry(lead).or_default() += 1;
                            }
                            match op {
                                0 => c.advances += 1,
                                1 => c.edits += 1,
                                _ => c.comments += 1,
                            }
                            break;
                        }
                        Err(Error::Conflict { .. }) => c.conflicts += 1,
                        Err(e) => panic!("task {task}: unexpected error {e}"),
                    }
                }
            }
            c
        }));
    }
    let mut total = Counts::default();
    for h in handles {
        total.absorb(h.await.unwrap());
    }

    // No lost update: every lead's version is 1 + the successful updates on it.
    let updates = |id: &LeadId| total.updates.get(id).copied().unwrap_or(0);
    common::assert_versions(&crm, tenant, &leads, updates, "lost or phantom update").await;
    // The log: exactly one entry per successful change, at dense positions in commit order.
    let log = common::whole_log(&store, tenant).await;
    let entries = log.len() as u64 - setup_events;
    let successes = total.advances + total.edits + total.comments;
    assert_eq!(
        successes, total.operations,
        "every operation eventually succeeded"
    );
    assert_eq!(entries, successes, "one log entry per successful change");
    assert_eq!(entries, total.events);
    assert_eq!(
        total.conflicts, total.retries,
        "each conflict was retried once more"
    );
    let Counts {
        operations,
        advances,
        edits,
        comments,
        conflicts,
        retries,
        ..
    } = &total;
    let _ = writeln!(
        std::io::stderr(),
        "concurrency: tasks={TASKS} leads={LEADS} operations={operations} (advances={advances}, edits={edits}, comments={comments}) conflicts={conflicts} retries={retries} log_entries={entries}",
    );
}
