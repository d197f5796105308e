//! The communication schema's ports: triggers in, actions out, as data.
//!
//! The organisation's communication schema ("who is told what, when, by which channel") is evaluated by a
//! [`RuleEngine`]. This crate defines only the boundary and does not depend on any scripting engine: `crm-rules`
//! implements [`RuleEngine`] with Rhai scripts, and a host may implement it in plain Rust.
//!
//! The path of one change:
//!
//! 1. The service builds a [`ChangeSet`](crate::store::ChangeSet) and hands it to every [`crate::service::CommitHook`] before committing.
//! 2. [`RulesHook`](crate::service::RulesHook) asks the engine about every event of the change set ([`Trigger::Event`]) with read-only
//!    [`Views`] of the lead, partner and request the change set carries.
//! 3. A guard's refusal aborts the change with [`TransitionError::RefusedByRule`](crate::error::TransitionError::RefusedByRule); decided actions are resolved to
//!    people through the host's [`Directory`] and become [`Write::EnqueueOutbox`](crate::store::Write::EnqueueOutbox) writes in the *same* transaction;
//!    a rule that failed (over its limits, a script error, an unknown role) becomes an extra
//!    [`EventKind::RuleFailed`](crate::event::EventKind::RuleFailed) event, and the triggering change still commits.
//! 4. A dispatcher delivers the outbox (see [`crate::outbox`]).
//!
//! Time-driven rules ("no contact for 3 days", "request overdue") are fired by `crm_delivery::tick`, which the host drives: it
//! reads candidates through a `crm_delivery::TimerSource` and returns a change set of outbox writes whose idempotency keys make
//! a second tick over the same situation a no-op.

use crate::error::{Error, Result};
use crate::event::{DomainEvent, Subject};
use crate::id::{InboxItemId, OutboxId, PartnerId, TenantId, UserId};
use crate::lead::Lead;
use crate::partner::Partner;
use crate::request::Request;
use crate::time::Timestamp;
use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug};

mod action;
mod directory;
mod message;
mod trigger;

pub use action::*;
pub use directory::*;
pub use message::*;
pub use trigger::*;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn recipients_parse_from_their_compact_form() {
        let u = UserId::new();
        let cases = [
            ("owner", Recipient::Owner),
            ("assignee", Recipient::Assignee),
            ("accounting", Recipient::Role("accounting".into())),
            (
                "role:sales_manager",
                Recipient::Role("sales_manager".into()),
            ),
            (
                "manager:owner",
                Recipient::ManagerOf(Box::new(Recipient::Owner)),
            ),
            (
                "contact:primary",
                Recipient::PartnerContact("primary".into()),
            ),
            (
                "ana@example.com",
                Recipient::Email("ana@example.com".into()),
            ),
            (&format!("user:{u}"), Recipient::Person(u)),
            ("user:ana", Recipient::UserKey("ana".into())),
            (
                "manager:owner or role:management",
                Recipient::FirstOf(vec![
                    Recipient::ManagerOf(Box::new(Recipient::Owner)),
                    Recipient::Role("management".into()),
                ]),
            ),
        ];
        for (text, want) in cases {
            let got = Recipient::parse(text).unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(
                Recipient::parse(&got.to_string()).unwrap(),
                want,
                "round trip of {text}"
            );
        }
        for bad in ["", "  ", "a@", "user:no pe", "user:", "owner or "] {
            assert!(Recipient::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_fallback_reaches_the_first_alternative_with_somebody_and_keys_name_users() {
        let tenant = TenantId::new();
        let (ana, boss) = (UserId::new(), UserId::new());
        let mut dir = StaticDirectory::new(tenant)
            .with_user(ana, "Ana", None, &["sales_agent"], Some(boss))
            .with_user(boss, "Boss", None, &["management"], None);
        dir.roles.insert("nobody_yet".into());
        dir.keys.insert("ana".into(), ana);
        dir.keys.insert("boss".into(), boss);
        let views = Views::default();
        let reach = |s: &str| {
            resolve(&Recipient::parse(s).unwrap(), tenant, &views, &dir)
                .map(|v| v.into_iter().filter_map(|r| r.user).collect::<Vec<_>>())
        };
        assert_eq!(reach("user:ana").unwrap(), [ana]);
        assert_eq!(reach("manager:user:ana or management").unwrap(), [boss]);
        assert_eq!(reach("manager:user:boss or management").unwrap(), [boss]);
        assert_eq!(reach("nobody_yet or user:ana").unwrap(), [ana]);
        let e = reach("manager:user:boss or nobody_yet").unwrap_err();
        assert!(
            e.to_string().contains("reaches nobody") && e.to_string().contains("has no manager"),
            "{e}"
        );
        let e = reach("user:carol").unwrap_err();
        assert!(e.to_string().contains("no user has the key `carol`"), "{e}");
    }

    #[test]
    fn timers_parse_and_name_their_mistakes() {
        assert_eq!(
            TimerTrigger::parse("lead_idle:3").unwrap(),
            TimerTrigger::LeadIdle { days: 3 }
        );
        assert_eq!(
            TimerTrigger::parse("close_date_passed").unwrap(),
            TimerTrigger::CloseDatePassed
        );
        assert_eq!(
            TimerTrigger::RequestDueSoon { hours: 24 }.to_string(),
            "request_due_soon:24"
        );
        let e = TimerTrigger::parse("lead_idle").unwrap_err();
        assert!(e.to_string().contains("needs a number of days"), "{e}");
        let e = TimerTrigger::parse("lead_idle:x").unwrap_err();
        assert!(e.to_string().contains("not a whole number"), "{e}");
        assert!(TimerTrigger::parse("moon_phase:1").is_err());
    }

    #[test]
    fn timers_refuse_absurd_amounts_when_parsed_or_deserialised() {
        for bad in [
            "lead_idle:4294967295",
            "request_due_soon:4294967295",
            "request_overdue:200000000",
            "lead_idle:3651",
            "request_due_soon:87601",
            "request_age:3651",
            "request_age:4294967295",
        ] {
            let e = TimerTrigger::parse(bad).unwrap_err();
            assert_eq!(e.field(), Some("timer"), "{bad}: {e}");
            assert!(e.to_string().contains("3650 days"), "{bad}: {e}");
        }
        for good in [
            "lead_idle:3650",
            "request_due_soon:87600",
            "request_overdue:3650",
            "request_age:3650",
            "request_age:0",
        ] {
            assert_eq!(TimerTrigger::parse(good).unwrap().to_string(), good);
        }
        let json = serde_json::json!({ "type": "lead_idle", "days": 4294967295u32 });
        let e = serde_json::from_value::<TimerTrigger>(json).unwrap_err();
        assert!(e.to_string().contains("3650 days"), "{e}");
        let ok = serde_json::to_value(TimerTrigger::RequestDueSoon { hours: 24 }).unwrap();
        assert_eq!(
            ok,
            serde_json::json!({ "type": "request_due_soon", "hours": 24 })
        );
        assert_eq!(
            serde_json::from_value::<TimerTrigger>(ok).unwrap(),
            TimerTrigger::RequestDueSoon { hours: 24 }
        );
    }

    #[test]
    fn outbox_messages_have_stable_keys_and_the_right_channel() {
        let tenant = TenantId::new();
        let (ana, boss) = (UserId::new(), UserId::new());
        let dir = StaticDirectory::new(tenant)
            .with_user(
                ana,
                "Ana",
                Some("ana@example.com"),
                &["sales_agent"],
                Some(boss),
            )
            .with_user(boss, "Boss", None, &["sales_manager"], None);
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let trigger = Trigger::Timer(TimerFiring {
            tenant,
            at,
            timer: TimerTrigger::LeadIdle { days: 3 },
            subject: Subject::default(),
            key: "k1".into(),
        });
        let mut lead_views = Views::default();
        let decided = |action: Action| DecidedAction {
            rule: "r".into(),
            action,
        };
        // No lead: `owner` cannot be resolved, and says why.
        let e = to_outbox(
            &trigger,
            &lead_views,
            0,
            &decided(Action::Notify {
                to: Recipient::Owner,
                subject: "s".into(),
                body: "b".into(),
            }),
            &dir,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no owner"), "{e}");
        let escalate = decided(Action::Escalate {
            from: Recipient::Role("sales_agent".into()),
            subject: "s".into(),
            body: "b".into(),
        });
        let m = to_outbox(&trigger, &lead_views, 2, &escalate, &dir).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].idempotency_key, format!("timer:k1/r/2/{boss}"));
        assert_eq!(
            (m[0].channel, m[0].recipient.user),
            (Channel::InApp, Some(boss))
        );
        let again = to_outbox(&trigger, &lead_views, 2, &escalate, &dir).unwrap();
        assert_eq!(
            again[0].idempotency_key, m[0].idempotency_key,
            "the same decision, the same key"
        );
        // A notification to an address goes by e-mail; an e-mail to someone without an address is an error.
        let m = to_outbox(
            &trigger,
            &lead_views,
            0,
            &decided(Action::Notify {
                to: Recipient::Email("x@customer.example".into()),
                subject: "s".into(),
                body: "b".into(),
            }),
            &dir,
        )
        .unwrap();
        assert_eq!(m[0].channel, Channel::Email);
        let e = to_outbox(
            &trigger,
            &lead_views,
            0,
            &decided(Action::SendEmail {
                to: Recipient::Person(boss),
                template: "t".into(),
                vars: serde_json::json!({}),
                purpose: Default::default(),
            }),
            &dir,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no e-mail address"), "{e}");
        // Unknown roles and other tenants.
        let e = resolve(&Recipient::Role("ghosts".into()), tenant, &lead_views, &dir).unwrap_err();
        assert!(e.to_string().contains("unknown role `ghosts`"), "{e}");
        assert!(resolve(
            &Recipient::Role("sales_agent".into()),
            TenantId::new(),
            &lead_views,
            &dir
        )
        .is_err());
        // The escalation chain ends: the boss has no manager.
        lead_views.lead = None;
        let e = resolve(
            &Recipient::ManagerOf(Box::new(Recipient::Person(boss))),
            tenant,
            &lead_views,
            &dir,
        )
        .unwrap_err();
        assert!(e.to_string().contains("has no manager"), "{e}");
    }
}
