//! Timers read their candidates from indexed queries on SQLite, in an order that lets new situations through when
//! there are more candidates than a tick takes: requests due soon are never crowded out by overdue ones, requests
//! that just became overdue never by ones overdue for months, leads that just went idle never by long-idle ones.

use chrono::Duration;
use crm_core::actor::Context;
use crm_core::id::{TenantId, UserId};
use crm_core::lead::NewLead;
use crm_core::partner::NewPartner;
use crm_core::request::NewRequest;
use crm_core::service::CrmService;
use crm_core::time::{Clock, FixedClock};
use crm_delivery::tick;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
use crm_storage_sqlite::SqliteStore;
use std::sync::Arc;

mod common;

struct Desk {
    store: Arc<SqliteStore>,
    clock: Arc<FixedClock>,
    crm: CrmService,
    ctx: Context,
    lead: crm_core::id::LeadId,
}

async fn desk() -> Desk {
    let (store, clock) = common::memory_store_at(2026, 1, 5);
    let crm = common::plain_service(store.clone(), &clock);
    let ctx = Context::user(TenantId::new(), UserId::new());
    let p = common::tenant_with_company(&crm, &ctx, "Acme").await;
    let lead = crm
        .enter_lead(&ctx, NewLead::for_partner(p.id(), "Roof"))
        .await
        .unwrap()
        .record
        .id();
    Desk {
        store,
        clock,
        crm,
        ctx,
        lead,
    }
}

impl Desk {
    /// Opens a request due `hours` from now.
    async fn request(&self, title: &str, hours: i64) {
        let mut r = NewRequest::on_lead(self.lead, title, self.ctx.actor.user_id().unwrap());
        r.due = Some(self.clock.now() + Duration::hours(hours));
        self.crm.open_request(&self.ctx, r).await.unwrap();
    }

    /// Opens the requests `{prefix} 0` to `{prefix} n-1`, all due `hours` from now.
    async fn requests(&self, prefix: &str, n: usize, hours: i64) {
        for i in 0..n {
            self.request(&format!("{prefix} {i}"), hours).await;
        }
    }

    /// The subjects a tick with `rule` decides, taking at most `limit` candidates per timer.
    async fn tick(&self, rule: &str, limit: u32) -> Vec<String> {
        let engine = RhaiRuleEngine::new(
            RuleSet::compile([RuleSource::new("r", rule)], Limits::default()).unwrap(),
        );
        let dir = crm_core::comms::StaticDirectory::new(self.ctx.tenant);
        let report = tick(
            self.clock.now(),
            self.ctx.tenant,
            &engine,
            &dir,
            self.store.as_ref(),
            limit,
        )
        .await
        .unwrap();
        let mut subjects: Vec<String> = report
            .changes
            .writes()
            .iter()
            .filter_map(|w| match w {
                crm_core::store::Write::EnqueueOutbox(m) => Some(m.payload.subject.clone()),
                _ => None,
            })
            .collect();
        subjects.sort();
        subjects
    }
}

/// A rule on `timer` whose entry point `on_<event>` tells the owner the title of `t.<record>`.
fn timer_rule(timer: &str, event: &str, record: &str) -> String {
    format!(
        "fn timers() {{ [\"{timer}\"] }}\nfn on_{event}(t) {{ notify(\"owner or someone@example.com\", t.{record}.title, \"\"); }}"
    )
}

/// Five requests `old` due in an hour; `first` later one request `new` due in `new_hours`; `then` later, what a tick
/// of the request timer `timer` (with its hours) decides, taking two candidates at most.
async fn crowded(
    (old, first): (&str, Duration),
    (new, new_hours): (&str, i64),
    then: Duration,
    timer: (&str, u32),
) -> Vec<String> {
    let d = desk().await;
    d.requests(old, 5, 1).await;
    d.clock.advance(first);
    d.request(new, new_hours).await;
    d.clock.advance(then);
    let (event, hours) = timer;
    let rule = timer_rule(&format!("{event}:{hours}"), event, "request");
    d.tick(&rule, 2).await
}

#[tokio::test]
async fn requests_due_soon_are_not_crowded_out_by_overdue_ones() {
    let decided = crowded(
        ("late", Duration::hours(3)),
        ("soon", 2),
        Duration::zero(),
        ("request_due_soon", 24),
    );
    assert_eq!(decided.await, ["soon"]);
}

#[tokio::test]
async fn requests_that_just_became_overdue_are_not_crowded_out_by_old_ones() {
    let decided = crowded(
        ("ancient", Duration::days(60)),
        ("fresh", 1),
        Duration::hours(2),
        ("request_overdue", 0),
    );
    assert_eq!(decided.await, ["fresh"]);
}

#[tokio::test]
async fn leads_that_just_went_idle_come_first() {
    let d = desk().await;
    let partner = d
        .crm
        .create_partner(&d.ctx, NewPartner::company("Beta"))
        .await
        .unwrap()
        .record;
    for i in 0..4 {
        d.crm
            .enter_lead(
                &d.ctx,
                NewLead::for_partner(partner.id(), format!("Lead {i}")),
            )
            .await
            .unwrap();
        d.clock.advance(Duration::days(1));
    }
    d.clock.advance(Duration::days(3));
    let rule = timer_rule("lead_idle:3", "lead_idle", "lead");
    // Idle since 3, 4, 5, 6 and 7 days: with room for two, the two that went idle last.
    assert_eq!(d.tick(&rule, 2).await, ["Lead 2", "Lead 3"]);
    assert_eq!(d.tick(&rule, 10).await.len(), 5);
}
