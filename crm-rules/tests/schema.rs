//! The example scheme end to end without storage: the commit hook, the scheduler, the dispatcher and the inbox over
//! the in-memory outbox; the Rhai rules against the same logic in plain Rust; swapping the rule set under load.

use async_trait::async_trait;
use chrono::Duration;
use crm_core::actor::Context;
use crm_core::comms::{RuleEngine, Trigger, Views};
use crm_core::event::{DomainEvent, EventKind};
use crm_core::id::TenantId;
use crm_core::lead::{Lead, TransitionError};
use crm_core::outbox::{Channel, MemoryOutbox, OutboxStatus, OutboxStore};
use crm_core::request::Request;
use crm_core::service::CommitHook;
use crm_core::service::RulesHook;
use crm_core::store::{ChangeSet, PageRequest, Write};
use crm_core::time::{FixedClock, Timestamp};
use crm_core::{Error, Result};
use crm_delivery::{tick, TimerSource};
use crm_delivery::{ChannelRouter, Dispatcher, InboxNotifier};
use crm_rules::fixtures::{self, Case, Org};
use crm_rules::native::NativeScheme;
use crm_rules::notify::RecordingNotifier;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules")
}

fn org() -> Org {
    Org::load(&example_dir().join("org.toml")).unwrap()
}

fn example_engine() -> RhaiRuleEngine {
    RhaiRuleEngine::new(RuleSet::load_dir(&example_dir(), Limits::default()).unwrap())
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for f in ["leads.toml", "threshold.json", "timers.toml"] {
        out.extend(
            fixtures::load_fixtures(&example_dir().join("fixtures").join(f))
                .unwrap()
                .cases,
        );
    }
    out
}

fn case(name: &str) -> (Trigger, Views) {
    let c = cases().into_iter().find(|c| c.name == name).unwrap();
    fixtures::build_case(&c).unwrap()
}

/// A change set as the service builds it: the record writes and the event.
fn change_set(trigger: &Trigger, views: &Views) -> ChangeSet {
    let mut cs = ChangeSet::new();
    if let Some(l) = &views.lead {
        cs.push(Write::UpdateLead {
            lead: l.clone(),
            expected_version: 1,
        });
    }
    if let Some(r) = &views.request {
        cs.push(Write::InsertRequest(r.clone()));
    }
    if let Trigger::Event(e) = trigger {
        cs.push(Write::AppendEvent(e.clone()));
    }
    cs
}

fn ctx() -> Context {
    Context::system(Org::tenant())
}

fn outbox_of(cs: &ChangeSet) -> Vec<crm_core::outbox::OutboxMessage> {
    cs.writes()
        .iter()
        .filter_map(|w| match w {
            Write::EnqueueOutbox(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_fixture_decides_the_same_in_rhai_and_in_plain_rust() {
    let rhai = example_engine();
    let native = NativeScheme;
    let all = cases();
    assert!(all.len() >= 16);
    for c in all {
        let (t, v) = fixtures::build_case(&c).unwrap();
        let a = rhai.evaluate(&t, &v);
        let b = native.evaluate(&t, &v);
        assert_eq!(a.actions, b.actions, "{}", c.name);
        assert_eq!(a.refusal, b.refusal, "{}", c.name);
        assert!(a.failures.is_empty(), "{}: {:?}", c.name, a.failures);
    }
    assert_eq!(rhai.timers(), native.timers());
}

#[test]
fn the_hook_writes_resolved_outbox_messages_in_the_same_change_set() {
    let org = org();
    let hook = RulesHook::new(Arc::new(example_engine()), Arc::new(org.directory()));
    let (t, v) = case("a won contract informs accounting and delivery and welcomes the customer");
    let mut cs = change_set(&t, &v);
    let before = cs.writes().len();
    hook.before_commit(&ctx(), &mut cs, &Default::default())
        .unwrap();
    let msgs = outbox_of(&cs);
    assert_eq!(cs.writes().len(), before + 3);
    let Trigger::Event(ev) = &t else { panic!() };
    let keys: Vec<_> = msgs.iter().map(|m| m.idempotency_key.clone()).collect();
    assert_eq!(
        keys,
        vec![
            format!("event:{}/won/0/{}", ev.id, Org::user_id("ioana")),
            format!("event:{}/won/1/{}", ev.id, Org::user_id("radu")),
            format!("event:{}/won/2/maria@customer.example", ev.id),
        ]
    );
    assert_eq!(msgs[0].channel, Channel::InApp);
    assert_eq!(msgs[0].recipient.name.as_deref(), Some("Ioana Marin"));
    assert_eq!(msgs[2].channel, Channel::Email);
    assert_eq!(msgs[2].payload.template.as_deref(), Some("welcome"));
    assert_eq!(msgs[2].payload.vars["deal"], "Solar roof");
    assert!(msgs
        .iter()
        .all(|m| m.status == OutboxStatus::Pending && m.tenant == Org::tenant()));
    cs.check_tenant(Org::tenant()).unwrap();
}

#[test]
fn a_guard_refusal_aborts_the_change_with_a_typed_error() {
    let hook = RulesHook::new(Arc::new(example_engine()), Arc::new(org().directory()));
    let (t, v) = case("negotiation without expected revenue is refused");
    let mut cs = change_set(&t, &v);
    let err = hook
        .before_commit(&ctx(), &mut cs, &Default::default())
        .unwrap_err();
    assert_eq!(
        err,
        Error::Transition(TransitionError::RefusedByRule {
            rule: "negotiation".into(),
            reason: "set the expected revenue before negotiating".into()
        })
    );
}

#[test]
fn a_failing_rule_becomes_a_rule_failed_event_and_the_change_still_commits() {
    let set = RuleSet::compile(
        [
            RuleSource::new("spin", "fn on_lead_won(ev) { loop {} }"),
            RuleSource::new(
                "ghost",
                "fn on_lead_won(ev) { notify(\"ghosts\", \"s\", \"b\"); }",
            ),
            RuleSource::new(
                "ok",
                "fn on_lead_won(ev) { notify(\"owner\", \"won\", \"yes\"); }",
            ),
        ],
        Limits::default(),
    )
    .unwrap();
    // A rule reacting to failures is refused when compiled: failures never trigger rules.
    let e = RuleSet::compile(
        [RuleSource::new(
            "echo",
            "fn on_rule_failed(ev) { notify(\"owner\", \"failure\", ev.message); }",
        )],
        Limits::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("`on_rule_failed` would never run: a rule's failure does not trigger rules"),
        "{e}"
    );
    let hook = RulesHook::new(
        Arc::new(RhaiRuleEngine::new(set)),
        Arc::new(org().directory()),
    );
    let (t, v) = case("a won contract informs accounting and delivery and welcomes the customer");
    let mut cs = change_set(&t, &v);
    hook.before_commit(&ctx(), &mut cs, &Default::default())
        .unwrap();
    let failed: Vec<_> = cs
        .events()
        .filter_map(|e| match &e.kind {
            EventKind::RuleFailed { rule, message } => Some((rule.clone(), message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|(r, m)| r == "spin"
            && m.contains("spin.rhai:1:1")
            // Whichever limit comes first on a loaded machine: operations or the wall clock.
            && (m.contains("operations") || m.contains("wall-clock"))));
    // Without known roles in the engine, the directory catches the unknown role when resolving.
    assert!(failed
        .iter()
        .any(|(r, m)| r == "ghost" && m.contains("unknown role `ghosts`")));
    // The working rule still decided.
    let msgs = outbox_of(&cs);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].rule, "ok");
}

/// Timer candidates from memory.
#[derive(Debug, Default)]
struct Candidates {
    leads: Vec<Lead>,
    requests: Vec<Request>,
}

/// The first `limit` of `items` that `keep` keeps.
fn first<T: Clone>(items: &[T], limit: u32, keep: impl Fn(&T) -> bool) -> Result<Vec<T>> {
    Ok(items
        .iter()
        .filter(|t| keep(t))
        .take(limit as usize)
        .cloned()
        .collect())
}

#[async_trait]
impl TimerSource for Candidates {
    async fn idle_leads(&self, _: TenantId, before: Timestamp, limit: u32) -> Result<Vec<Lead>> {
        first(&self.leads, limit, |l| l.updated_at() < before)
    }
    async fn requests_due_between(
        &self,
        _: TenantId,
        after: Timestamp,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Request>> {
        first(&self.requests, limit, |r| {
            r.due().is_some_and(|d| d > after && d < before)
        })
    }
    async fn leads_past_close(
        &self,
        _: TenantId,
        _: chrono::NaiveDate,
        _: u32,
    ) -> Result<Vec<Lead>> {
        Ok(Vec::new())
    }
    async fn requests_opened_before(
        &self,
        _: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Request>> {
        first(&self.requests, limit, |r| r.created_at() < before)
    }
}

/// A tick of the example organisation's tenant at `at`, taking up to 100 candidates per timer.
async fn tick_org(
    at: Timestamp,
    engine: &RhaiRuleEngine,
    dir: &dyn crm_core::comms::Directory,
    source: &Candidates,
) -> crm_delivery::TickReport {
    tick(at, Org::tenant(), engine, dir, source, 100)
        .await
        .unwrap()
}

#[tokio::test]
async fn ticks_escalate_idle_leads_and_overdue_requests_once_and_the_dispatcher_delivers_them() {
    let org = org();
    let dir = org.directory();
    let engine = example_engine();
    let (_, idle) = case("no contact within 3 days escalates to the owner's manager");
    let (_, overdue) = case("two days overdue tells the assignee's manager");
    let source = Candidates {
        leads: vec![idle.lead.clone().unwrap()],
        requests: vec![overdue.request.clone().unwrap()],
    };
    let now = fixtures::fixture_now();
    let first = tick_org(now, &engine, &dir, &source).await;
    // lead_idle:3 fires for the lead; request_overdue:0 and :2 both fire for the 3-days-late request.
    assert_eq!(first.firings.len(), 3);
    let outbox = Arc::new(MemoryOutbox::new());
    let enqueue = |cs: &ChangeSet| {
        outbox_of(cs)
            .into_iter()
            .filter(|m| outbox.enqueue(m.clone()))
            .count()
    };
    assert_eq!(enqueue(&first.changes), 3);
    let second = tick_org(now + Duration::minutes(5), &engine, &dir, &source).await;
    assert_eq!(
        enqueue(&second.changes),
        0,
        "the same situation enqueues nothing new"
    );

    let clock = Arc::new(FixedClock::new(now));
    let recorder = Arc::new(RecordingNotifier::new());
    let router = ChannelRouter::new()
        .route(
            Channel::InApp,
            Arc::new(InboxNotifier::new(outbox.clone(), clock.clone())),
        )
        .route(Channel::Email, recorder.clone());
    let d = Dispatcher::new(outbox.clone(), Arc::new(router), clock.clone());
    let r = d.drain(10).await.unwrap();
    assert_eq!((r.delivered, r.dead), (3, 0));
    let mihai = Org::user_id("mihai");
    let inbox = outbox
        .inbox(Org::tenant(), mihai, true, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "No contact for 4 days: Solar roof");
    assert_eq!(inbox[0].rule, "no_contact");
    let sorina = Org::user_id("sorina");
    assert_eq!(outbox.unread_count(Org::tenant(), sorina).await.unwrap(), 1);
    let dan = Org::user_id("tudor");
    assert_eq!(outbox.unread_count(Org::tenant(), dan).await.unwrap(), 1);
}

#[test]
fn the_rule_set_can_be_replaced_while_other_threads_evaluate() {
    let engine = Arc::new(example_engine());
    let (t, v) = case("a new lead notifies its owner");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (engine, t, v, stop) = (engine.clone(), t.clone(), v.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let mut n = 0u32;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            // Until stopped, and at least until this thread has seen the new set (a starved thread keeps going).
            while (!stop.load(std::sync::atomic::Ordering::Relaxed)
                || n < 50
                || !seen.contains("v2"))
                && std::time::Instant::now() < deadline
            {
                let d = engine.evaluate(&t, &v);
                assert!(d.failures.is_empty(), "{d:?}");
                assert_eq!(
                    d.actions.len(),
                    1,
                    "every evaluation sees one whole rule set"
                );
                seen.insert(d.actions[0].rule.clone());
                n += 1;
            }
            seen
        }));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let replacement = RuleSet::compile(
        [RuleSource::new(
            "v2",
            "fn on_lead_entered(ev) { notify(\"owner\", \"v2\", ev.title); }",
        )],
        Limits::default(),
    )
    .unwrap();
    let old = engine.replace(replacement);
    assert_eq!(old.rules().len(), 12);
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        let seen = h.join().unwrap();
        assert!(seen.contains("v2"), "{seen:?}");
    }
    let d = engine.evaluate(&t, &v);
    assert_eq!(d.actions[0].rule, "v2");
}

#[test]
fn scripts_cannot_change_the_views() {
    let set = RuleSet::compile(
        [
            RuleSource::new(
                "a",
                "fn on_lead_entered(ev) { ev.lead.title = \"changed\"; }",
            ),
            RuleSource::new(
                "b",
                "fn on_lead_entered(ev) { notify(\"owner\", ev.lead.title, \"\"); }",
            ),
        ],
        Limits::default(),
    )
    .unwrap();
    let (t, v) = case("a new lead notifies its owner");
    let d = RhaiRuleEngine::new(set).evaluate(&t, &v);
    match &d.actions[0].action {
        crm_core::comms::Action::Notify { subject, .. } => assert_eq!(subject, "Solar roof"),
        other => panic!("{other:?}"),
    }
    assert_eq!(v.lead.unwrap().title(), "Solar roof");
    assert_eq!(d.failures.len(), 1, "{d:?}");
    assert_eq!(d.failures[0].rule, "a");
    assert!(
        d.failures[0].message.starts_with("a.rhai:1:"),
        "{:?}",
        d.failures
    );
}

#[test]
fn explain_names_the_rules_that_ran_and_why() {
    let org = org();
    let engine = example_engine();
    let c = cases()
        .into_iter()
        .find(|c| c.name == "negotiation above the threshold informs management")
        .unwrap();
    let x = fixtures::explain_case(&engine, &org, &c).unwrap();
    let ran: Vec<_> = x
        .decision
        .trace
        .iter()
        .map(|t| (t.rule.as_str(), t.matched))
        .collect();
    assert_eq!(ran, vec![("negotiation", true), ("offer", false)]);
    assert_eq!(x.actions[0]["people"], serde_json::json!(["elena"]));
    assert_eq!(x.input["to_name"], "Negotiation");
    let _: &DomainEvent = match &fixtures::build_case(&c).unwrap().0 {
        Trigger::Event(e) => e,
        _ => panic!(),
    };
}

fn timer_case(toml_text: &str) -> (Trigger, Views) {
    let c: Case = toml::from_str(toml_text).unwrap();
    fixtures::build_case(&c).unwrap()
}

#[test]
fn each_rule_gets_only_the_timers_it_declares() {
    let engine = RhaiRuleEngine::new(rules(&[
        (
            "remind",
            "fn timers() { [\"request_overdue:0\"] }\n\
             fn on_request_overdue(t) { notify(\"assignee\", `remind after ${t.days}`, \"\"); }",
        ),
        (
            "late",
            "fn timers() { [\"request_overdue:5\"] }\n\
             fn on_request_overdue(t) { escalate(\"assignee\", `late after ${t.days}`, \"\"); }",
        ),
    ]));
    let request =
        "request = { title = \"R\", assignee = \"@tudor\", due = \"2026-02-20T09:00:00Z\" }";
    for (timer, rule, subject) in [
        ("request_overdue:0", "remind", "remind after 0"),
        ("request_overdue:5", "late", "late after 5"),
    ] {
        let (t, v) = timer_case(&format!("name = \"x\"\ntimer = \"{timer}\"\n{request}"));
        let d = engine.evaluate(&t, &v);
        let rules: Vec<_> = d.actions.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, [rule], "{timer}: {d:?}");
        let consulted: Vec<_> = d.trace.iter().map(|t| t.rule.as_str()).collect();
        assert_eq!(
            consulted,
            [rule],
            "{timer}: only the rule declaring it is asked"
        );
        assert!(
            matches!(&d.actions[0].action, crm_core::comms::Action::Notify { subject: s, .. } | crm_core::comms::Action::Escalate { subject: s, .. } if s == subject),
            "{d:?}"
        );
    }
    // A timer nobody declared reaches nobody.
    let (t, v) = timer_case(&format!(
        "name = \"x\"\ntimer = \"request_overdue:2\"\n{request}"
    ));
    assert!(engine.evaluate(&t, &v).trace.is_empty());
}

#[tokio::test]
async fn a_request_open_for_n_days_fires_request_age_with_or_without_a_due_date() {
    let engine = RhaiRuleEngine::new(rules(&[(
        "stale",
        "fn timers() { [\"request_age:3\"] }\n\
         fn on_request_age(t) { notify(\"assignee\", `Open for ${t.days_open} days: ${t.request.title}`, \"\"); }",
    )]));
    assert_eq!(
        engine.timers(),
        [crm_core::comms::TimerTrigger::parse("request_age:3").unwrap()]
    );
    let request = |title: &str, created: &str, due: &str| {
        let (_, v) = timer_case(&format!(
            "name = \"{title}\"\ntimer = \"request_age:3\"\n\
             request = {{ title = \"{title}\", assignee = \"@dan\", created_at = \"{created}\" {due} }}"
        ));
        v.request.unwrap()
    };
    let source = Candidates {
        leads: Vec::new(),
        requests: vec![
            request("no due date", "2026-02-25T09:00:00Z", ""),
            request(
                "due later",
                "2026-02-26T08:00:00Z",
                ", due = \"2026-04-01T09:00:00Z\"",
            ),
            request("new", "2026-03-01T09:00:00Z", ""),
        ],
    };
    let now = fixtures::fixture_now();
    let dir = org().directory();
    let first = tick_org(now, &engine, &dir, &source).await;
    let mut subjects: Vec<_> = outbox_of(&first.changes)
        .into_iter()
        .map(|m| m.payload.subject)
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["Open for 4 days: due later", "Open for 5 days: no due date"]
    );
    let again = tick_org(now + Duration::hours(1), &engine, &dir, &source).await;
    let keys = |cs: &ChangeSet| {
        let mut k: Vec<_> = outbox_of(cs)
            .into_iter()
            .map(|m| m.idempotency_key)
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&first.changes),
        keys(&again.changes),
        "the same situation, the same keys"
    );
}

/// The rules `(name, code)`, compiled with the default limits.
fn rules(sources: &[(&str, &str)]) -> RuleSet {
    RuleSet::compile(
        sources.iter().map(|(n, c)| RuleSource::new(n, c)),
        Limits::default(),
    )
    .unwrap()
}

/// A `lead_won` case of a lead owned by `owner` (a user key) expecting `expect` (a TOML array's items).
fn lead_won_case(owner: &str, expect: &str) -> String {
    format!("name = \"x\"\nevent = \"lead_won\"\nlead = {{ owner = \"@{owner}\" }}\nexpect = [ {expect} ]")
}

/// Runs one fixture case (TOML) against rules written inline, with the example organisation.
fn run_inline(sources: &[(&str, &str)], case: &str) -> fixtures::CaseResult {
    let set = rules(sources);
    let org = org();
    set.check_recipients(&org.roles.iter().cloned().collect())
        .unwrap();
    let engine = RhaiRuleEngine::new(set).with_known_roles(org.roles.iter().cloned());
    let case: Case = toml::from_str(case).unwrap();
    fixtures::run_case(&engine, &org, &case)
}

#[test]
fn a_rule_names_a_person_by_key() {
    let tell_ana = "fn on_lead_won(ev) { notify(\"user:ana\", \"Won\", \"\"); }";
    let case = lead_won_case(
        "dan",
        "{ action = \"notify\", to = \"user:ana\", people = [\"ana\"] }",
    );
    let r = run_inline(&[("tell_ana", tell_ana)], &case);
    assert!(r.passed, "{:?}", r.diff);
}

#[test]
fn a_recipient_can_fall_back_when_nobody_is_above() {
    let rule = [(
        "up",
        "fn on_lead_won(ev) { notify(\"manager:owner or management\", \"Won\", \"\"); }",
    )];
    for (owner, people) in [("dan", "mihai"), ("elena", "elena")] {
        let expect = format!(
            "{{ action = \"notify\", to = \"manager:owner or role:management\", people = [\"{people}\"] }}"
        );
        let r = run_inline(&rule, &lead_won_case(owner, &expect));
        assert!(r.passed, "{owner}: {:?}", r.diff);
    }
    // Without the fallback, the top of the reporting line is an error that says so.
    let up = "fn on_lead_won(ev) { notify(\"manager:owner\", \"Won\", \"\"); }";
    let case = lead_won_case("elena", "{ action = \"notify\", people = [\"elena\"] }");
    let r = run_inline(&[("up", up)], &case);
    assert!(!r.passed);
    assert!(
        r.diff.iter().any(|l| l.contains("has no manager")),
        "{:?}",
        r.diff
    );
}
