//! The example scheme (`examples/rules/`) written in plain Rust: the baseline the Rhai engine is measured against,
//! and a second implementation the fixtures check it against.

use crm_core::comms::{
    Action, DecidedAction, Decision, Recipient, Refusal, RuleEngine, TimerTrigger, Trigger, Views,
};
use crm_core::event::EventKind;
use rust_decimal::Decimal;

/// The classic scheme as native code.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeScheme;

fn notify(rule: &str, to: Recipient, subject: String, body: String) -> DecidedAction {
    DecidedAction {
        rule: rule.into(),
        action: Action::Notify { to, subject, body },
    }
}

fn role(r: &str) -> Recipient {
    Recipient::Role(r.into())
}

/// `owner or <role>`.
fn owner_or(r: &str) -> Recipient {
    Recipient::FirstOf(vec![Recipient::Owner, role(r)])
}

impl RuleEngine for NativeScheme {
    fn evaluate(&self, trigger: &Trigger, views: &Views) -> Decision {
        let mut d = Decision::default();
        let lead_title = views.lead.as_ref().map(|l| l.title()).unwrap_or_default();
        match trigger {
            Trigger::Event(ev) => match &ev.kind {
                EventKind::LeadEntered { title, owner, .. } => d.actions.push(match owner {
                    Some(_) => notify(
                        "new_lead",
                        Recipient::Owner,
                        format!("New lead: {title}"),
                        format!("You own the new lead \"{title}\"."),
                    ),
                    None => notify(
                        "new_lead",
                        role("sales_manager"),
                        format!("Unassigned lead: {title}"),
                        format!("Nobody owns \"{title}\" yet: please assign it."),
                    ),
                }),
                EventKind::LeadStageMoved { to_name, .. } => {
                    let revenue = views
                        .lead
                        .as_ref()
                        .and_then(|l| l.expected_revenue())
                        .map(|m| (m.amount(), m.currency()));
                    if to_name == "Negotiation" && revenue.is_none() {
                        d.refusal = Some(Refusal {
                            rule: "negotiation".into(),
                            reason: "set the expected revenue before negotiating".into(),
                        });
                    }
                    if to_name == "Negotiation" {
                        if let Some((amount, currency)) = revenue {
                            if amount >= Decimal::from(50_000) {
                                d.actions.push(notify(
                                    "negotiation",
                                    role("management"),
                                    format!("Large negotiation: {lead_title}"),
                                    format!(
                                        "\"{lead_title}\" is in negotiation for {amount} {}.",
                                        currency.code()
                                    ),
                                ));
                            }
                        }
                    }
                    if to_name == "Offer" {
                        d.actions.push(DecidedAction {
                            rule: "offer".into(),
                            action: Action::OpenRequest {
                                assignee: role("accounting"),
                                title: format!("Quotation for {lead_title}"),
                                kind: Some("quotation".into()),
                                due_in_hours: Some(48),
                            },
                        });
                        d.actions.push(notify(
                            "offer",
                            role("accounting"),
                            format!("Quotation needed: {lead_title}"),
                            format!("Please prepare a quotation for \"{lead_title}\"."),
                        ));
                    }
                }
                EventKind::LeadWon { .. } => {
                    d.actions.push(notify(
                        "won",
                        role("accounting"),
                        format!("Contract won: {lead_title}"),
                        format!("Please set up invoicing for \"{lead_title}\"."),
                    ));
                    d.actions.push(notify(
                        "won",
                        role("delivery"),
                        format!("Contract won: {lead_title}"),
                        format!("Please plan the delivery of \"{lead_title}\"."),
                    ));
                    d.actions.push(DecidedAction {
                        rule: "won".into(),
                        action: Action::SendEmail {
                            to: Recipient::PartnerContact("primary".into()),
                            template: "welcome".into(),
                            vars: serde_json::json!({ "deal": lead_title }),
                            purpose: Default::default(),
                        },
                    });
                }
                EventKind::LeadLost { reason_name, .. } => {
                    let reason = reason_name;
                    d.actions.push(notify(
                        "lost",
                        role("telemarketing_lead"),
                        format!("Win back: {lead_title}"),
                        format!(
                            "\"{lead_title}\" was lost ({reason}): plan a win-back call in 90 days."
                        ),
                    ));
                    d.actions.push(notify(
                        "lost",
                        role("telemarketing_agent"),
                        format!("Call list: {lead_title}"),
                        format!("\"{lead_title}\" joins the win-back call list."),
                    ));
                }
                EventKind::LeadScored { value, previous }
                    if *value > 80 && previous.is_none_or(|p| p <= 80) =>
                {
                    let score = views
                        .lead
                        .as_ref()
                        .and_then(|l| l.score())
                        .map(|s| s.value.to_string())
                        .unwrap_or_else(|| "()".into());
                    let why: Vec<&str> = views
                        .lead
                        .as_ref()
                        .and_then(|l| l.score())
                        .map(|s| {
                            s.reasons
                                .iter()
                                .filter(|r| r.contribution > Decimal::ZERO)
                                .map(|r| r.feature.as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    d.actions.push(notify(
                        "hot_lead",
                        Recipient::FirstOf(vec![
                            Recipient::ManagerOf(Box::new(Recipient::Owner)),
                            role("sales_manager"),
                        ]),
                        format!("Hot lead (score {score}): {lead_title}"),
                        format!(
                            "\"{lead_title}\" now scores {score} of 100 ({}): call it first.",
                            why.join(", ")
                        ),
                    ));
                }
                EventKind::InvoiceRecorded {
                    kind: crm_core::kinds::DocumentKind::Invoice,
                    version: 1,
                    number,
                    ..
                } => {
                    if let Some(doc) = views
                        .document
                        .as_ref()
                        .filter(|d| d.total() >= Decimal::from(10_000))
                    {
                        d.actions.push(notify(
                            "invoices",
                            role("accounting"),
                            format!("Large invoice: {number}"),
                            format!(
                                "Invoice {number} over {} {} was issued.",
                                doc.total(),
                                doc.currency().code()
                            ),
                        ));
                    }
                }
                EventKind::PaymentRecorded {
                    direction: Some(crm_core::kinds::PaymentDirection::Received),
                    version: 1,
                    number,
                    ..
                } => {
                    if let Some(doc) = &views.document {
                        d.actions.push(notify(
                            "invoices",
                            owner_or("accounting"),
                            format!("Payment received: {number}"),
                            format!(
                                "Payment {number} of {} {} was received.",
                                doc.total(),
                                doc.currency().code()
                            ),
                        ));
                    }
                }
                EventKind::CampaignLaunched { calls, .. } => {
                    let name = views
                        .campaign
                        .as_ref()
                        .map(|c| c.name())
                        .unwrap_or_default();
                    for list in calls {
                        d.actions.push(notify(
                            "campaigns",
                            Recipient::Person(list.agent),
                            format!("Your calls: {name}"),
                            format!(
                                "{} customers to call for \"{name}\": see your task list.",
                                list.calls
                            ),
                        ));
                    }
                }
                EventKind::BudgetExceeded {
                    name,
                    budget,
                    spent,
                    ..
                } => {
                    let over = format!(
                        "\"{name}\" has spent {} {} of its {} {} budget.",
                        spent.amount(),
                        spent.currency().code(),
                        budget.amount(),
                        budget.currency().code()
                    );
                    d.actions.push(notify(
                        "campaigns",
                        Recipient::Owner,
                        format!("Over budget: {name}"),
                        over.clone(),
                    ));
                    d.actions.push(notify(
                        "campaigns",
                        role("management"),
                        format!("Over budget: {name}"),
                        over,
                    ));
                }
                EventKind::RequestOpened { title, .. }
                    if ev.source == crm_core::actor::Source::Portal =>
                {
                    d.actions.push(notify(
                        "portal_request",
                        Recipient::Assignee,
                        format!("Customer request: {title}"),
                        format!("A customer opened \"{title}\" through self-service."),
                    ));
                }
                _ => {}
            },
            Trigger::Timer(t) => match t.timer {
                TimerTrigger::LeadIdle { days: timer_days } => {
                    if let Some(l) = &views.lead {
                        let days = (t.at - l.updated_at()).num_days();
                        d.actions.push(if l.owner().is_some() && timer_days >= 7 {
                            notify(
                                "no_contact",
                                Recipient::ManagerOf(Box::new(Recipient::ManagerOf(Box::new(
                                    Recipient::Owner,
                                )))),
                                format!("Still no contact after {days} days: {}", l.title()),
                                format!(
                                    "\"{}\" has been idle for {days} days; its owner's manager was told at 3 days.",
                                    l.title()
                                ),
                            )
                        } else if l.owner().is_none() && timer_days >= 7 {
                            notify(
                                "no_contact",
                                role("sales_agent"),
                                format!("Unassigned for a week: {}", l.title()),
                                format!("\"{}\" still has no owner: take it.", l.title()),
                            )
                        } else if l.owner().is_some() {
                            DecidedAction {
                                rule: "no_contact".into(),
                                action: Action::Escalate {
                                    from: Recipient::Owner,
                                    subject: format!("No contact for {days} days: {}", l.title()),
                                    body: format!(
                                        "Nobody has touched \"{}\" for {days} days.",
                                        l.title()
                                    ),
                                },
                            }
                        } else {
                            notify(
                                "no_contact",
                                role("sales_manager"),
                                format!("Unassigned and idle: {}", l.title()),
                                format!("\"{}\" has no owner and no activity.", l.title()),
                            )
                        });
                    }
                }
                TimerTrigger::RequestOverdue { days } => {
                    if let Some(r) = &views.request {
                        let due = r.due().unwrap_or(t.at);
                        if days < 2 {
                            d.actions.push(notify(
                                "overdue",
                                Recipient::Assignee,
                                format!("Overdue: {}", r.title()),
                                format!(
                                    "\"{}\" was due {}.",
                                    r.title(),
                                    serde_json::json!(due).as_str().unwrap_or_default()
                                ),
                            ));
                        } else {
                            let late = (t.at - due).num_days();
                            d.actions.push(DecidedAction {
                                rule: "overdue".into(),
                                action: Action::Escalate {
                                    from: Recipient::Assignee,
                                    subject: format!("Overdue for {late} days: {}", r.title()),
                                    body: format!("\"{}\" is {late} days overdue.", r.title()),
                                },
                            });
                        }
                    }
                }
                TimerTrigger::OpenItemOverdue { days } => {
                    if let (Some(doc), Some(item)) = (&views.document, &views.open_item) {
                        let currency = doc.currency().code();
                        if days < 21 {
                            d.actions.push(DecidedAction {
                                rule: "invoices".into(),
                                action: Action::SendEmail {
                                    to: Recipient::FirstOf(vec![
                                        Recipient::PartnerContact("billing".into()),
                                        Recipient::PartnerContact("primary".into()),
                                    ]),
                                    template: "payment_reminder".into(),
                                    vars: serde_json::json!({
                                        "number": doc.number(),
                                        "open": item.open.to_string(),
                                        "currency": currency,
                                        "due": doc.due_date(),
                                    }),
                                    purpose: Default::default(),
                                },
                            });
                        } else {
                            d.actions.push(notify(
                                "invoices",
                                owner_or("accounting"),
                                format!(
                                    "Unpaid for {} days: invoice {}",
                                    item.days_overdue,
                                    doc.number()
                                ),
                                format!(
                                    "{} {currency} of invoice {} are still owed.",
                                    item.open,
                                    doc.number()
                                ),
                            ));
                        }
                    }
                }
                TimerTrigger::ContractRenewalDue { .. } => {
                    let renews_on = match (&views.contract, &views.document) {
                        (Some(c), _) => Some(c.term().renews_on),
                        (None, Some(doc)) => Some(doc.renews_on()),
                        (None, None) => None,
                    };
                    if let (Some(renews_on), Some(p)) = (renews_on, &views.partner) {
                        let renews = serde_json::json!(renews_on);
                        d.actions.push(DecidedAction {
                            rule: "renewals".into(),
                            action: Action::OpenRequest {
                                assignee: owner_or("sales_manager"),
                                title: format!(
                                    "Renewal on {}: {}",
                                    renews.as_str().unwrap_or_default(),
                                    p.name()
                                ),
                                kind: Some("renewal".into()),
                                due_in_hours: Some(72),
                            },
                        });
                    }
                }
                _ => {}
            },
        }
        d
    }

    fn timers(&self) -> Vec<TimerTrigger> {
        vec![
            TimerTrigger::LeadIdle { days: 3 },
            TimerTrigger::LeadIdle { days: 7 },
            TimerTrigger::RequestOverdue { days: 0 },
            TimerTrigger::RequestOverdue { days: 2 },
            TimerTrigger::OpenItemOverdue { days: 7 },
            TimerTrigger::OpenItemOverdue { days: 21 },
            TimerTrigger::ContractRenewalDue { days: 30 },
        ]
    }
}

/// The inputs of the benchmark: every fixture case of the example scheme in `dir` (`examples/rules`).
pub fn workload(dir: &std::path::Path) -> Result<Vec<(Trigger, Views)>, crate::RulesError> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("fixtures"))
        .map_err(|e| crate::RulesError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for f in files {
        for c in crate::fixtures::load_fixtures(&f)?.cases {
            let built =
                crate::fixtures::build_case(&c).map_err(|message| crate::RulesError::Fixture {
                    file: f.display().to_string(),
                    message,
                })?;
            out.push(built);
        }
    }
    Ok(out)
}

/// Evaluates every input once; returns the number of actions decided (so the work cannot be optimised away).
pub fn evaluate_all(engine: &dyn RuleEngine, inputs: &[(Trigger, Views)]) -> usize {
    inputs
        .iter()
        .map(|(t, v)| engine.evaluate(t, v).actions.len())
        .sum()
}
