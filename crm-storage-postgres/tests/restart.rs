//! The server restarted in the middle of a workload: in-flight operations fail with a typed retryable error, the
//! pool recovers, nothing committed is lost and nothing half-written appears.
//!
//! Needs the throwaway cluster of `scripts/with-postgres` (it exports `CRM_TEST_PG_CTL` and `CRM_TEST_PGDATA`);
//! against a server it does not control, the test says so and skips. It is alone in its test binary so that the
//! restart disturbs no other test.

mod common;

use crm_core::event::EventKind;
use crm_core::id::LeadId;
use crm_core::lead::{LeadCommand, LeadPatch};
use crm_core::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKERS: usize = 8;
const LEADS: usize = 20;

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    ok_after_restart: u64,
    conflicts: u64,
    retryable: Vec<String>,
    /// (lead, description) of every acknowledged edit.
    acked: Vec<(LeadId, String)>,
}

impl Tally {
    /// Adds one worker's tally to this one.
    fn absorb(&mut self, t: Tally) {
        self.ok += t.ok;
        self.ok_after_restart += t.ok_after_restart;
        self.conflicts += t.conflicts;
        self.retryable.extend(t.retryable);
        self.acked.extend(t.acked);
    }
}

fn restart(pg_ctl: &str, pgdata: &str) {
    // The new server must not inherit our pipes (it would hold them open forever): log to a file beside the data.
    let log = std::path::Path::new(pgdata)
        .parent()
        .unwrap_or(std::path::Path::new(pgdata))
        .join("restart.log");
    let status = std::process::Command::new(pg_ctl)
        .args(["-D", pgdata, "-m", "fast", "-w", "-t", "60", "-l"])
        .arg(&log)
        .arg("restart")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(
        status.success(),
        "pg_ctl restart failed ({status}); see {}",
        log.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_restart_mid_workload_loses_nothing_committed() {
    let Some(url) = common::url() else { return };
    let (Ok(pg_ctl), Ok(pgdata)) = (
        std::env::var("CRM_TEST_PG_CTL"),
        std::env::var("CRM_TEST_PGDATA"),
    ) else {
        println!(
            "restart test SKIPPED: CRM_TEST_PG_CTL and CRM_TEST_PGDATA are not set (run it through scripts/with-postgres, which controls its own server)"
        );
        return;
    };
    let store = crm_storage_postgres::PgStore::connect(
        common::config(&url)
            .with_pool_size(8)
            .with_connect_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let (store, crm, ctx, _) = common::tenant_service(store).await;
    let tenant = ctx.tenant;
    let leads = common::partner_with_leads(&crm, &ctx, "Restart SRL", LEADS).await;
    let leads = Arc::new(leads);
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));

    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let (crm, leads, stop, restarted) =
            (crm.clone(), leads.clone(), stop.clone(), restarted.clone());
        let ctx = ctx.clone();
        handles.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let lead = leads[(w * 7 + n) % leads.len()];
                let description = format!("worker {w} edit {n}");
                let result = async {
                    let current = crm.lead(tenant, lead).await?;
                    crm.transition(
                        &ctx,
                        lead,
                        current.version(),
                        LeadCommand::Update(LeadPatch {
                            description: Some(Some(description.clone())),
                            ..Default::default()
                        }),
                    )
                    .await
                }
                .await;
                match result {
                    Ok(_) => {
                        t.ok += 1;
                        if restarted.load(Ordering::Relaxed) {
                            t.ok_after_restart += 1;
                        }
                        t.acked.push((lead, description));
                    }
                    Err(Error::Conflict { .. }) => t.conflicts += 1,
                    Err(e) if e.is_retryable() && matches!(e, Error::Storage { .. }) => {
                        t.retryable.push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("worker {w}: a non-retryable error during the restart: {e:?}"),
                }
            }
            t
        }));
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    let started = Instant::now();
    tokio::task::spawn_blocking(move || restart(&pg_ctl, &pgdata))
        .await
        .unwrap();
    restarted.store(true, Ordering::Relaxed);
    let restart_took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = Tally::default();
    for h in handles {
        total.absorb(h.await.unwrap());
    }
    let kinds: BTreeSet<String> = total
        .retryable
        .iter()
        .map(|m| m.chars().take(90).collect())
        .collect();
    let (ok, after, conflicts) = (total.ok, total.ok_after_restart, total.conflicts);
    let failures = total.retryable.len();
    let _ = writeln!(
        std::io::stderr(),
        "restart: took {restart_took:?}; acknowledged edits={ok} (after restart {after}), conflicts={conflicts}, retryable failures={failures}; kinds: {kinds:#?}",
    );
    assert!(
        !total.retryable.is_empty(),
        "operations in flight during the restart should fail with a retryable storage error"
    );
    assert!(
        total.ok_after_restart > 0,
        "the pool did not recover after the restart"
    );

    // Read everything back (the pool must serve these too).
    let log = common::whole_log(&store, tenant).await;
    let mut logged: BTreeMap<LeadId, Vec<String>> = BTreeMap::new();
    for (_, e) in &log {
        if let EventKind::LeadUpdated { changes } = &e.kind {
            for c in changes.iter().filter(|c| c.field == "description") {
                logged
                    .entry(e.subject.lead.unwrap())
                    .or_default()
                    .push(c.after.as_str().unwrap_or_default().to_string());
            }
        }
    }
    // Nothing committed is lost: every acknowledged edit is in the log.
    for (lead, d) in &total.acked {
        assert!(
            logged.get(lead).is_some_and(|v| v.contains(d)),
            "acknowledged edit `{d}` of lead {lead} is missing"
        );
    }
    // Nothing half-written: each lead's version counts exactly its logged edits, and it holds the last one.
    let edits = |id: &LeadId| logged.get(id).map(Vec::len).unwrap_or(0) as u64;
    common::assert_versions(&crm, tenant, &leads, edits, "version and log disagree").await;
    for id in leads.iter() {
        let lead = crm.lead(tenant, *id).await.unwrap();
        assert_eq!(
            lead.description(),
            logged.get(id).and_then(|v| v.last()).map(String::as_str),
            "lead {id}: stored state is not the last logged change"
        );
    }
}
