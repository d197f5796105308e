//! One scheme per tenant, replaced at run time: the rules hook evaluates each change with its tenant's scheme (the
//! default one when the tenant has none), a replacement changes the next commit's outcome, and a scheme that does
//! not compile leaves the old one in place with a typed error.

use chrono::{Duration, TimeZone, Utc};
use crm_core::actor::Context;
use crm_core::comms::{RuleEngine, StaticDirectory, TimerTrigger};
use crm_core::id::{TenantId, UserId};
use crm_core::lead::NewLead;
use crm_core::outbox::{OutboxStatus, OutboxStore};
use crm_core::partner::NewPartner;
use crm_core::service::{CrmService, RulesHook};
use crm_core::store::PageRequest;
use crm_core::time::{Clock, FixedClock};
use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource, RulesError, SchemeRegistry};
use crm_storage_sqlite::SqliteStore;
use std::path::Path;
use std::sync::Arc;

/// A rule telling the lead's owner `prefix: <title>` when a lead is entered.
fn says(prefix: &str) -> RuleSource {
    RuleSource::new(
        "welcome",
        &format!(
            "fn on_lead_entered(ev) {{ notify(\"owner\", `{prefix}: ${{ev.title}}`, \"\"); }}"
        ),
    )
}

fn engine(prefix: &str) -> RhaiRuleEngine {
    RhaiRuleEngine::new(RuleSet::compile([says(prefix)], Limits::default()).unwrap())
}

struct Office {
    store: Arc<SqliteStore>,
    clock: Arc<FixedClock>,
    registry: Arc<SchemeRegistry>,
    crm: CrmService,
}

/// A service over in-memory SQLite whose commits run the registry's schemes. The directory knows nobody: the rules
/// here only tell a lead's owner, whom they name by id.
fn office() -> Office {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let registry = Arc::new(SchemeRegistry::new(engine("Default")));
    let crm = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .hook(Arc::new(RulesHook::new(
            registry.clone(),
            Arc::new(StaticDirectory::new(TenantId::new())),
        )))
        .build()
        .unwrap();
    Office {
        store,
        clock,
        registry,
        crm,
    }
}

impl Office {
    /// Enters a lead titled `title` in `tenant` and returns the subjects of the messages its commit wrote.
    async fn enter(&self, tenant: TenantId, title: &str) -> Vec<String> {
        let ctx = Context::user(tenant, UserId::new());
        let before: Vec<_> = self.subjects(tenant).await;
        let p = self
            .crm
            .create_partner(&ctx, NewPartner::company(format!("{title} Ltd")))
            .await
            .unwrap()
            .record;
        let mut lead = NewLead::for_partner(p.id(), title);
        lead.owner = Some(UserId::new());
        self.crm.setup_tenant(&ctx).await.unwrap();
        self.crm.enter_lead(&ctx, lead).await.unwrap();
        let mut after = self.subjects(tenant).await;
        after.retain(|s| !before.contains(s));
        after
    }

    async fn subjects(&self, tenant: TenantId) -> Vec<String> {
        self.store
            .list_outbox(tenant, OutboxStatus::Pending, &PageRequest::first(500))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|m| m.payload.subject)
            .collect()
    }
}

#[tokio::test]
async fn two_tenants_with_different_schemes_get_different_messages() {
    let o = office();
    let (acme, globex, initech) = (TenantId::new(), TenantId::new(), TenantId::new());
    o.registry.load_sources(acme, [says("Acme")]).unwrap();
    o.registry.load_sources(globex, [says("Globex")]).unwrap();
    assert_eq!(o.enter(acme, "Roof").await, ["Acme: Roof"]);
    assert_eq!(o.enter(globex, "Roof").await, ["Globex: Roof"]);
    // A tenant without a scheme of its own has the default one.
    assert!(!o.registry.has_own(initech));
    assert_eq!(o.enter(initech, "Roof").await, ["Default: Roof"]);
}

#[tokio::test]
async fn replacing_a_tenants_scheme_changes_the_next_commit_and_a_broken_one_changes_nothing() {
    let o = office();
    let (acme, globex) = (TenantId::new(), TenantId::new());
    o.registry.load_sources(acme, [says("v1")]).unwrap();
    o.registry.load_sources(globex, [says("Globex")]).unwrap();
    assert_eq!(o.enter(acme, "First").await, ["v1: First"]);

    // Replaced while the service runs: the next commit decides with the new scheme; the other tenant is untouched.
    o.registry.load_sources(acme, [says("v2")]).unwrap();
    assert_eq!(o.enter(acme, "Second").await, ["v2: Second"]);
    assert_eq!(o.enter(globex, "Other").await, ["Globex: Other"]);

    // A scheme that does not compile is refused with its error, and the tenant keeps the one it had.
    let broken = RuleSource::new(
        "welcome",
        "fn on_lead_entered(ev) { notify(\"owner\", ev.titel, \"\"); }",
    );
    let e = o.registry.load_sources(acme, [broken]).unwrap_err();
    assert!(
        matches!(&e, RulesError::Compile { rule, message, .. }
            if rule == "welcome" && message.contains("did you mean `title`")),
        "{e}"
    );
    assert_eq!(o.enter(acme, "Third").await, ["v2: Third"]);

    // Back to the default scheme.
    assert!(o.registry.remove(acme).is_some());
    assert_eq!(o.enter(acme, "Fourth").await, ["Default: Fourth"]);
    // And the default can be replaced too.
    o.registry.set_default(engine("New default"));
    assert_eq!(o.enter(acme, "Fifth").await, ["New default: Fifth"]);
}

#[tokio::test]
async fn a_scheme_loads_from_a_directory_and_an_unknown_role_keeps_the_old_one() {
    let o = office();
    let acme = TenantId::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    let set = o.registry.load_dir(acme, &dir).unwrap();
    assert_eq!(set.rules().len(), 12);
    assert!(o
        .registry
        .timers_for(acme)
        .contains(&TimerTrigger::OpenItemOverdue { days: 7 }));
    assert!(o.registry.timers_for(TenantId::new()).is_empty());

    // A copy whose rule names a role the organisation does not have: refused at its line, the old scheme stays.
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    std::fs::copy(dir.join("org.toml"), tmp.join("org.toml")).unwrap();
    std::fs::write(
        tmp.join("welcome.rhai"),
        "fn on_lead_entered(ev) {\n    notify(\"marketing\", \"New\", ev.title);\n}\n",
    )
    .unwrap();
    let e = o.registry.load_dir(acme, tmp).unwrap_err();
    assert!(e.to_string().contains("welcome.rhai:2:"), "{e}");
    assert!(e.to_string().contains("unknown role `marketing`"), "{e}");
    assert_eq!(o.registry.scheme(acme).rules().len(), 12);
}

#[tokio::test]
async fn each_tenants_tick_fires_its_own_schemes_timers() {
    let o = office();
    let (acme, globex) = (TenantId::new(), TenantId::new());
    let idle = RuleSource::new(
        "idle",
        "fn timers() { [\"lead_idle:3\"] }\nfn on_lead_idle(t) { notify(\"owner\", `Idle: ${t.lead.title}`, \"\"); }",
    );
    o.registry.load_sources(acme, [idle]).unwrap();
    o.registry.load_sources(globex, [says("Globex")]).unwrap();
    o.enter(acme, "Roof").await;
    o.enter(globex, "Roof").await;
    o.clock.advance(Duration::days(4));
    let dir = StaticDirectory::new(acme);
    for (tenant, fired) in [(acme, 1), (globex, 0)] {
        let report = crm_delivery::tick(
            o.clock.now(),
            tenant,
            o.registry.as_ref(),
            &dir,
            o.store.as_ref(),
            10,
        )
        .await
        .unwrap();
        assert_eq!(report.firings.len(), fired, "{tenant}");
    }
    assert_eq!(
        o.registry.timers(),
        Vec::<TimerTrigger>::new(),
        "the default has none"
    );
}

#[test]
fn evaluations_running_while_a_tenants_scheme_is_replaced_see_one_scheme_or_the_other() {
    let registry = Arc::new(SchemeRegistry::new(engine("Default")));
    let acme = TenantId::new();
    registry.load_sources(acme, [says("old")]).unwrap();
    let case: crm_rules::fixtures::Case = toml::from_str(
        "name = \"x\"\nevent = \"lead_entered\"\nfields = { title = \"T\", owner = \"@a\" }",
    )
    .unwrap();
    let (trigger, views) = crm_rules::fixtures::build_case(&case).unwrap();
    let mut trigger = trigger;
    if let crm_core::comms::Trigger::Event(e) = &mut trigger {
        e.tenant = acme;
    }
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    // How many threads have seen the new scheme: the main thread waits for all of them (not for a fixed time,
    // which a loaded machine overran), up to a generous limit.
    let switched = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (registry, trigger, views, stop, switched) = (
                registry.clone(),
                trigger.clone(),
                views.clone(),
                stop.clone(),
                switched.clone(),
            );
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let d = registry.evaluate(&trigger, &views);
                    assert!(d.failures.is_empty(), "{:?}", d.failures);
                    for a in d.actions {
                        if let crm_core::comms::Action::Notify { subject, .. } = a.action {
                            if subject == "new: T" && !seen.contains(&subject) {
                                switched.fetch_add(1, Ordering::Relaxed);
                            }
                            seen.insert(subject);
                        }
                    }
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    registry.load_sources(acme, [says("new")]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while switched.load(Ordering::Relaxed) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let seen = h.join().unwrap();
        assert!(
            seen.iter().all(|s| s == "old: T" || s == "new: T"),
            "{seen:?}"
        );
        assert!(seen.contains("new: T"), "{seen:?}");
    }
}
