//! Commerce events and timers reach the rules (the example scheme's `invoices`, `campaigns` and `renewals`) on
//! SQLite, through the real services: every decided message is written in the same transaction as the commerce
//! write, and the commerce timers fire once per situation.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use crm_core::actor::Context;
use crm_core::commerce::{
    CommerceStoreExt, Criteria, DocumentKind, LastSale, NewCampaign, NewDocument, NewLine,
    PaymentDirection, Period,
};
use crm_core::comms::RuleEngine;
use crm_core::error::{Error, TransitionError};
use crm_core::event::EventKind;
use crm_core::id::{PartnerId, ProductId, TenantId};
use crm_core::money::{Currency, Money};
use crm_core::outbox::{OutboxMessage, OutboxStatus, OutboxStore};
use crm_core::partner::NewPartner;
use crm_core::service::CommerceService;
use crm_core::store::{PageRequest, Store};
use crm_core::time::{Clock, FixedClock};
use crm_delivery::tick;
use crm_rules::fixtures::Org;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource};
use crm_storage_sqlite::SqliteStore;
use rust_decimal::Decimal;
use std::path::Path;
use std::sync::Arc;

mod common;

struct Shop {
    store: Arc<SqliteStore>,
    clock: Arc<FixedClock>,
    engine: Arc<dyn RuleEngine>,
    directory: Arc<crm_core::comms::StaticDirectory>,
    commerce: CommerceService,
    ctx: Context,
    customer: PartnerId,
    product: ProductId,
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn example_engine() -> RhaiRuleEngine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    let org = Org::load(&dir.join("org.toml")).unwrap();
    RhaiRuleEngine::new(RuleSet::load_dir(&dir, Limits::default()).unwrap())
        .with_known_roles(org.roles.clone())
}

/// A shop on in-memory SQLite at 2026-03-02 09:00, with the customer (owned by Ana, primary contact Maria) and one
/// product, whose commits run `engine`.
async fn shop(engine: Arc<dyn RuleEngine>) -> Shop {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    let org = Org::load(&dir.join("org.toml")).unwrap();
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let tenant = Org::tenant();
    let ctx = Context::user(tenant, Org::user_id("ana"));
    let (customer, directory, crm) =
        common::customer_and_rules(&org, &store, &clock, &ctx, Some("ana"), engine.clone()).await;
    let commerce = CommerceService::new(crm, store.clone(), Currency::parse("EUR").unwrap());
    let product = common::panel(&commerce, &ctx).await;
    Shop {
        store,
        clock,
        engine,
        directory,
        commerce,
        ctx,
        customer: customer.id(),
        product,
    }
}

impl Shop {
    fn tenant(&self) -> TenantId {
        self.ctx.tenant
    }

    fn invoice(&self, number: &str, issued: NaiveDate, amount: i64) -> NewDocument {
        NewDocument::invoice(
            number,
            self.customer,
            issued,
            "EUR",
            vec![NewLine {
                product: self.product,
                quantity: Decimal::ONE,
                unit_price: Decimal::from(amount),
                discount_pct: Decimal::ZERO,
                unit_cost: Decimal::ZERO,
            }],
        )
    }

    /// A payment in EUR between the shop and the customer.
    fn payment(
        &self,
        number: &str,
        on: NaiveDate,
        direction: PaymentDirection,
        amount: Decimal,
    ) -> NewDocument {
        NewDocument::payment(number, self.customer, on, "EUR", direction, amount)
    }

    /// Records a payment received from the customer settling invoice `settles` whole.
    async fn receive(&self, number: &str, on: NaiveDate, amount: i64, settles: &str) {
        let mut pay = self.payment(
            number,
            on,
            PaymentDirection::Received,
            Decimal::from(amount),
        );
        pay.allocations.push(crm_core::commerce::Allocation {
            number: settles.into(),
            amount: Decimal::from(amount),
        });
        self.record(pay).await.unwrap();
    }

    /// Records `doc` through the commerce service as the shop's user.
    async fn record(
        &self,
        doc: NewDocument,
    ) -> crm_core::Result<crm_core::service::DocumentOutcome> {
        self.commerce.record_document(&self.ctx, doc).await
    }

    /// The first pending message `pick` picks.
    async fn message(&self, pick: impl Fn(&OutboxMessage) -> bool) -> OutboxMessage {
        self.outbox().await.into_iter().find(|m| pick(m)).unwrap()
    }

    async fn outbox(&self) -> Vec<OutboxMessage> {
        self.store
            .list_outbox(
                self.tenant(),
                OutboxStatus::Pending,
                &PageRequest::first(500),
            )
            .await
            .unwrap()
            .items
    }

    /// (subject, who) of every pending message with `subject` starting with `prefix`.
    async fn sent(&self, prefix: &str) -> Vec<(String, String)> {
        let org =
            Org::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules/org.toml"))
                .unwrap();
        let mut out: Vec<(String, String)> = self
            .outbox()
            .await
            .into_iter()
            .filter(|m| {
                m.payload.subject.starts_with(prefix)
                    || m.payload.template.as_deref() == Some(prefix)
            })
            .map(|m| {
                let who = m
                    .recipient
                    .user
                    .and_then(|u| org.key_of(u).map(str::to_string))
                    .or(m.recipient.email.clone())
                    .unwrap_or_default();
                (m.payload.subject, who)
            })
            .collect();
        out.sort();
        out
    }

    /// Ticks at the clock's time and commits what the timers decided; returns the firings' timers.
    /// The pending task messages.
    async fn tasks(&self) -> Vec<OutboxMessage> {
        let all = self.outbox().await.into_iter();
        all.filter(|m| m.channel == crm_core::outbox::Channel::Task)
            .collect()
    }

    /// Nothing fires now; at `then` the renewal timer fires and its one task (Ana's, naming `title`) is returned;
    /// a day later nothing more.
    async fn renewal_task_at(&self, then: chrono::DateTime<Utc>, title: &str) -> OutboxMessage {
        assert!(self.tick().await.is_empty());
        self.clock.set(then);
        assert_eq!(self.tick().await, ["contract_renewal_due:30"]);
        let tasks = self.tasks().await;
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].recipient.user, Some(Org::user_id("ana")));
        let action = format!("{:?}", tasks[0].payload.action);
        assert!(action.contains(title), "{action}");
        self.clock.advance(Duration::days(1));
        self.tick().await;
        assert_eq!(self.tasks().await.len(), 1);
        tasks[0].clone()
    }

    async fn tick(&self) -> Vec<String> {
        let report = tick(
            self.clock.now(),
            self.tenant(),
            self.engine.as_ref(),
            self.directory.as_ref(),
            self.store.as_ref(),
            100,
        )
        .await
        .unwrap();
        self.store
            .commit(self.tenant(), report.changes.clone())
            .await
            .unwrap();
        let mut fired: Vec<String> = report.firings.iter().map(|f| f.timer.to_string()).collect();
        fired.sort();
        fired
    }
}

#[tokio::test]
async fn invoices_payments_and_unpaid_invoices_reach_the_rules_in_the_same_transaction() {
    let s = shop(Arc::new(example_engine())).await;
    // A large invoice: accounting is told, by a message of the invoice's own transaction.
    let f1 = s
        .record(
            s.invoice("F-1", day(2026, 2, 1), 25_000)
                .due(day(2026, 2, 20)),
        )
        .await
        .unwrap();
    let event = f1
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::InvoiceRecorded { .. }))
        .unwrap();
    let large = s
        .message(|m| m.payload.subject == "Large invoice: F-1")
        .await;
    assert!(
        large
            .idempotency_key
            .starts_with(&format!("event:{}/invoices/", event.id)),
        "{}",
        large.idempotency_key
    );
    assert_eq!(
        s.sent("Large invoice").await,
        [("Large invoice: F-1".to_string(), "ioana".to_string())]
    );
    // Replacing it is not issuing it again.
    let mut again = s
        .invoice("F-1", day(2026, 2, 1), 26_000)
        .due(day(2026, 2, 20));
    again.version = Some(1);
    s.record(again).await.unwrap();
    assert_eq!(s.sent("Large invoice").await.len(), 1);

    // A small invoice, paid: the payment tells the account owner.
    s.record(s.invoice("F-2", day(2026, 2, 1), 500).due(day(2026, 2, 10)))
        .await
        .unwrap();
    s.receive("P-1", day(2026, 2, 15), 500, "F-2").await;
    assert_eq!(
        s.sent("Payment received").await,
        [("Payment received: P-1".to_string(), "ana".to_string())]
    );
    // A payment sent to a vendor is no payment received.
    let vendor = s.payment(
        "P-2",
        day(2026, 2, 15),
        PaymentDirection::Sent,
        Decimal::from(70),
    );
    s.record(vendor).await.unwrap();
    assert_eq!(s.sent("Payment received").await.len(), 1);

    // Ten days after F-1's due date: the customer is reminded; the paid F-2 is not. Once.
    assert_eq!(s.tick().await, ["open_item_overdue:7"]);
    let reminders = s.sent("payment_reminder").await;
    assert_eq!(
        reminders,
        [(String::new(), "maria@customer.example".to_string())]
    );
    let vars = s
        .message(|m| m.payload.template.as_deref() == Some("payment_reminder"))
        .await
        .payload
        .vars;
    for (k, v) in [
        ("number", "F-1"),
        ("open", "26000"),
        ("currency", "EUR"),
        ("due", "2026-02-20"),
    ] {
        assert_eq!(vars[k], v, "{k}: {vars}");
    }
    // The template sees the invoice itself too.
    assert_eq!(vars["document"]["number"], "F-1", "{vars}");
    let before = s.outbox().await.len();
    s.tick().await;
    assert_eq!(
        s.outbox().await.len(),
        before,
        "a second tick sends nothing new"
    );

    // Three weeks overdue: the account owner is told (the reminder is not repeated).
    s.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 13, 9, 0, 0).unwrap());
    assert_eq!(
        s.tick().await,
        ["open_item_overdue:21", "open_item_overdue:7"]
    );
    assert_eq!(
        s.sent("Unpaid").await,
        [(
            "Unpaid for 21 days: invoice F-1".to_string(),
            "ana".to_string()
        )]
    );
    assert_eq!(s.sent("payment_reminder").await.len(), 1);

    // Paid in full: no longer a candidate.
    s.receive("P-3", day(2026, 3, 13), 26_000, "F-1").await;
    s.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap());
    assert!(s.tick().await.is_empty(), "a paid invoice is not overdue");
}

#[tokio::test]
async fn a_contract_renewal_asks_its_owner_for_an_offer_once() {
    let s = shop(Arc::new(example_engine())).await;
    s.record(
        s.invoice("F-9", day(2026, 1, 2), 1_200)
            .renewing_on(day(2026, 4, 20)),
    )
    .await
    .unwrap();
    // 49 days ahead: not yet; 30 days ahead the owner gets the task, once.
    let then = Utc.with_ymd_and_hms(2026, 3, 21, 9, 0, 0).unwrap();
    s.renewal_task_at(then, "Renewal on 2026-04-20: Customer Ltd")
        .await;
    // A renewal date before the issue date, or on a payment, is refused by field.
    let payment = s.payment(
        "P-9",
        day(2026, 3, 1),
        PaymentDirection::Received,
        Decimal::TEN,
    );
    for refused in [
        s.invoice("F-10", day(2026, 3, 1), 10)
            .renewing_on(day(2026, 2, 1)),
        payment.renewing_on(day(2026, 5, 1)),
    ] {
        let e = s.record(refused).await.unwrap_err();
        assert_eq!(e.field(), Some("renews_on"), "{e}");
    }
}

#[tokio::test]
async fn a_launched_campaign_gives_each_agent_their_calls_and_spending_past_the_budget_is_told_once(
) {
    let s = shop(Arc::new(example_engine())).await;
    for name in ["Second Ltd", "Third Ltd"] {
        s.commerce
            .crm()
            .create_partner(&s.ctx, NewPartner::company(name))
            .await
            .unwrap();
    }
    let never = Criteria::LastSale {
        when: LastSale::Never,
    };
    let campaign = s
        .commerce
        .create_campaign(
            &s.ctx,
            NewCampaign {
                name: "Win back".into(),
                channel: crm_core::commerce::Channel::Telemarketing,
                period: Period::year(2026).unwrap(),
                owner: Org::user_id("sorina"),
                agents: vec![Org::user_id("tudor"), Org::user_id("sorina")],
                script: None,
                budget: Some(Money::parse("1000", "EUR").unwrap()),
                criteria: Some(Criteria::Or {
                    any: vec![
                        never.clone(),
                        Criteria::Not {
                            not: Box::new(never),
                        },
                    ],
                }),
            },
        )
        .await
        .unwrap();
    s.commerce
        .launch_campaign(&s.ctx, campaign.id(), campaign.version())
        .await
        .unwrap();
    // Three customers over two agents: two calls and one.
    let mut calls = s.sent("Your calls").await;
    calls.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        calls,
        [
            ("Your calls: Win back".to_string(), "sorina".to_string()),
            ("Your calls: Win back".to_string(), "tudor".to_string()),
        ]
    );
    let bodies: Vec<String> = s
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.payload.subject == "Your calls: Win back")
        .map(|m| m.payload.body)
        .collect();
    let mut counts: Vec<&str> = bodies
        .iter()
        .map(|b| b.split(' ').next().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, ["1", "2"], "{bodies:?}");

    let (shop, id) = (&s, campaign.id());
    let spend = |on: NaiveDate, amount: &'static str| async move {
        let cost = Money::parse(amount, "EUR").unwrap();
        shop.commerce
            .add_campaign_cost(&shop.ctx, id, on, cost, None)
            .await
            .unwrap();
    };
    spend(day(2026, 3, 2), "600").await;
    assert!(s.sent("Over budget").await.is_empty());
    spend(day(2026, 3, 2), "400").await;
    assert!(
        s.sent("Over budget").await.is_empty(),
        "at the budget is not over it"
    );
    spend(day(2026, 3, 2), "0.01").await;
    assert_eq!(
        s.sent("Over budget").await,
        [
            ("Over budget: Win back".to_string(), "elena".to_string()),
            ("Over budget: Win back".to_string(), "sorina".to_string()),
        ]
    );
    let over = s
        .message(|m| m.payload.subject == "Over budget: Win back")
        .await;
    assert_eq!(
        over.payload.body,
        "\"Win back\" has spent 1000.01 EUR of its 1000 EUR budget."
    );
    spend(day(2026, 3, 3), "50").await;
    assert_eq!(
        s.sent("Over budget").await.len(),
        2,
        "told once per crossing"
    );
}

#[tokio::test]
async fn a_guard_on_an_issued_invoice_refuses_the_whole_write() {
    let rules = RuleSet::compile(
        [RuleSource::new(
            "limit",
            "fn guard_invoice_issued(ev) { if ev.document.total > 100000 { refuse(\"over the credit limit\"); } }",
        )],
        Limits::default(),
    )
    .unwrap();
    let s = shop(Arc::new(RhaiRuleEngine::new(rules))).await;
    let e = s
        .record(s.invoice("F-BIG", day(2026, 3, 2), 200_000))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transition(TransitionError::RefusedByRule { rule, reason })
            if rule == "limit" && reason == "over the credit limit"),
        "{e}"
    );
    assert!(s
        .commerce
        .store()
        .document_by_number(s.tenant(), DocumentKind::Invoice, "F-BIG")
        .await
        .unwrap()
        .is_none());
    s.record(s.invoice("F-OK", day(2026, 3, 2), 2_000))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_engine_contract_up_for_renewal_asks_its_owner_for_an_offer_once() {
    use crm_core::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationTerms, Term};
    let s = shop(Arc::new(example_engine())).await;
    let offer = NewQuotation {
        lead: None,
        partner: s.customer,
        currency: Currency::parse("EUR").unwrap(),
        terms: QuotationTerms {
            lines: vec![QuotationLine::new(
                "Maintenance",
                Decimal::ONE,
                crm_core::money::Money::parse("1200", "EUR").unwrap(),
                "S",
            )],
            valid_until: day(2026, 3, 31),
            terms: None,
        },
    };
    let q = s.commerce.create_quotation(&s.ctx, offer).await.unwrap();
    s.commerce
        .quotation_command(&s.ctx, q.id(), 1, QuotationCommand::Send)
        .await
        .unwrap();
    s.commerce
        .accept_quotation(&s.ctx, q.id(), 2, false)
        .await
        .unwrap();
    let term = Term {
        starts_on: day(2026, 4, 1),
        ends_on: Some(day(2027, 3, 31)),
        renews_on: Some(day(2027, 3, 1)),
    };
    let contract = s
        .commerce
        .create_contract(&s.ctx, q.id(), "C-2026-0001", term)
        .await
        .unwrap();
    // Months ahead: nothing; 30 days before the renewal date the account owner gets the task, once, about the
    // contract's partner.
    let then = Utc.with_ymd_and_hms(2027, 2, 1, 9, 0, 0).unwrap();
    let task = s
        .renewal_task_at(then, "Renewal on 2027-03-01: Customer Ltd")
        .await;
    assert_eq!(task.about.partner, Some(contract.partner()));
}

#[tokio::test]
async fn a_meeting_reminder_reaches_its_organiser_once_and_again_when_it_moves() {
    use crm_core::sales::{
        Attendee, MeetingCommand, NewMeeting, Organiser, Participant, Reply, Slot,
    };
    let code = r#"
        fn timers() { ["meeting_starts_in:24"] }
        fn on_meeting_starts_in(t) {
            notify("owner", `Tomorrow: ${t.meeting.title}`, `${t.meeting.place} in ${t.hours_to_start} hours`);
        }
    "#;
    let rules = RuleSet::compile([RuleSource::new("reminders", code)], Limits::default()).unwrap();
    let s = shop(Arc::new(RhaiRuleEngine::new(rules))).await;
    let at = |d: u32, h: u32| day(2026, 3, d).and_hms_opt(h, 0, 0).unwrap();
    let new = NewMeeting {
        title: "Demo".into(),
        lead: None,
        partner: Some(s.customer),
        organiser: Organiser::new(Org::user_id("dan"), "Dan", "dan@example.ro"),
        attendees: vec![Attendee {
            who: Participant::User {
                id: Org::user_id("ana"),
            },
            name: "Ana".into(),
            email: "ana@example.ro".into(),
            reply: Reply::NeedsAction,
        }],
        // 10:00 in Bucharest on 4 March: 08:00 UTC, two days after the shop's clock.
        slot: Slot::new(at(4, 10), at(4, 11), "Europe/Bucharest").at("Brașov"),
        agenda: None,
    };
    let m = s.commerce.schedule_meeting(&s.ctx, new).await.unwrap();
    let reminders = || async {
        s.outbox()
            .await
            .into_iter()
            .filter(|m| m.rule == "reminders")
            .map(|m| (m.recipient.user, m.payload.subject, m.payload.body))
            .collect::<Vec<_>>()
    };
    // Two days ahead: not yet.
    assert!(s.tick().await.is_empty());
    // 20 hours before: the organiser is reminded, once.
    s.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 3, 12, 0, 0).unwrap());
    assert_eq!(s.tick().await, ["meeting_starts_in:24"]);
    s.tick().await;
    let once = reminders().await;
    assert_eq!(
        once,
        [(
            Some(Org::user_id("dan")),
            "Tomorrow: Demo".to_string(),
            "Brașov in 20 hours".to_string()
        )]
    );
    // Moved two hours later: still within a day, so a new reminder (the start is in the firing's key).
    s.commerce
        .meeting_command(
            &s.ctx,
            m.id(),
            1,
            MeetingCommand::Reschedule(
                Slot::new(at(4, 12), at(4, 13), "Europe/Bucharest").at("Brașov"),
            ),
        )
        .await
        .unwrap();
    s.tick().await;
    assert_eq!(reminders().await.len(), 2);
    // Cancelled: no reminder after that.
    s.commerce
        .meeting_command(&s.ctx, m.id(), 2, MeetingCommand::Cancel)
        .await
        .unwrap();
    s.clock.advance(Duration::hours(1));
    s.tick().await;
    assert_eq!(reminders().await.len(), 2);
}
