//! The communication schema's ports: triggers in, actions out, as data.
//!
//! The organisation's communication schema ("who is told what, when, by which channel") is evaluated by a
//! [`RuleEngine`]. This crate defines only the boundary and does not depend on any scripting engine: `crm-rules`
//! implements [`RuleEngine`] with Rhai scripts, and a host may implement it in plain Rust.
//!
//! The path of one change:
//!
//! 1. The service builds a [`ChangeSet`] and hands it to every [`crate::service::CommitHook`] before committing.
//! 2. [`RulesHook`] asks the engine about every event of the change set ([`Trigger::Event`]) with read-only
//!    [`Views`] of the lead, partner and request the change set carries.
//! 3. A guard's refusal aborts the change with [`TransitionError::RefusedByRule`]; decided actions are resolved to
//!    people through the host's [`Directory`] and become [`Write::EnqueueOutbox`] writes in the *same* transaction;
//!    a rule that failed (over its limits, a script error, an unknown role) becomes an extra
//!    [`EventKind::RuleFailed`] event, and the triggering change still commits.
//! 4. A dispatcher delivers the outbox (see [`crate::outbox`]).
//!
//! Time-driven rules ("no contact for 3 days", "request overdue") are fired by `crm_delivery::tick`, which the host drives: it
//! reads candidates through a `crm_delivery::TimerSource` and returns a change set of outbox writes whose idempotency keys make
//! a second tick over the same situation a no-op.

use crate::actor::Context;
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{OutboxId, PartnerId, TenantId, UserId};
use crate::lead::{Lead, TransitionError};
use crate::outbox::{Channel, OutboxMessage, OutboxStatus, Payload, ResolvedRecipient};
use crate::partner::Partner;
use crate::request::Request;
use crate::service::{CommitHook, Loaded};
use crate::store::{ChangeSet, Write};
use crate::time::Timestamp;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------------- triggers

/// The longest timer a rule may declare, in days (ten years): `lead_idle` and `request_overdue` count days,
/// `request_due_soon` counts hours up to [`MAX_TIMER_HOURS`]. Longer is a typing mistake, and would reach outside
/// the calendar.
pub const MAX_TIMER_DAYS: u32 = 3650;
/// [`MAX_TIMER_DAYS`] in hours: the longest `request_due_soon` timer, and the furthest a task may be due
/// ([`Action::OpenRequest`]'s `due_in_hours`, [`Action::ScheduleFollowUp`]'s `in_hours`).
pub const MAX_TIMER_HOURS: u32 = MAX_TIMER_DAYS * 24;

/// A time-driven trigger, as a rule set declares it. Its amount is at most [`MAX_TIMER_DAYS`] days (or
/// [`MAX_TIMER_HOURS`] hours): [`TimerTrigger::parse`] and deserialisation refuse more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "TimerRepr", into = "TimerRepr")]
pub enum TimerTrigger {
    /// An open lead has seen no change for `days` days.
    LeadIdle {
        /// Days without activity.
        days: u32,
    },
    /// An active request is due within `hours` hours.
    RequestDueSoon {
        /// Hours before the due time.
        hours: u32,
    },
    /// An active request is overdue by at least `days` days (0 = as soon as it is overdue).
    RequestOverdue {
        /// Days past the due time.
        days: u32,
    },
    /// An open lead's expected close date has passed.
    CloseDatePassed,
    /// An active request has been open for `days` days, whether or not it has a due date.
    RequestAge {
        /// Days since it was opened.
        days: u32,
    },
}

impl TimerTrigger {
    /// The timer's name as scripts see it (`lead_idle`, `request_due_soon`, `request_overdue`,
    /// `close_date_passed`, `request_age`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::LeadIdle { .. } => "lead_idle",
            Self::RequestDueSoon { .. } => "request_due_soon",
            Self::RequestOverdue { .. } => "request_overdue",
            Self::CloseDatePassed => "close_date_passed",
            Self::RequestAge { .. } => "request_age",
        }
    }

    /// The timer's parameter (days or hours; 0 for [`TimerTrigger::CloseDatePassed`]).
    pub fn amount(&self) -> u32 {
        match self {
            Self::LeadIdle { days } | Self::RequestOverdue { days } | Self::RequestAge { days } => {
                *days
            }
            Self::RequestDueSoon { hours } => *hours,
            Self::CloseDatePassed => 0,
        }
    }

    /// Checks the amount is at most [`MAX_TIMER_DAYS`] days ([`MAX_TIMER_HOURS`] hours for `request_due_soon`).
    pub fn check(&self) -> Result<()> {
        let (max, unit) = match self {
            Self::LeadIdle { .. } | Self::RequestOverdue { .. } | Self::RequestAge { .. } => {
                (MAX_TIMER_DAYS, "days")
            }
            Self::RequestDueSoon { .. } => (MAX_TIMER_HOURS, "hours"),
            Self::CloseDatePassed => return Ok(()),
        };
        if self.amount() > max {
            return Err(Error::invalid(
                "timer",
                format!("`{self}` is over the longest timer, {max} {unit} ({MAX_TIMER_DAYS} days)"),
            ));
        }
        Ok(())
    }

    /// The instant a timer's candidates are compared with at `now`: `now − days` for `lead_idle`,
    /// `request_overdue` and `request_age`, `now + hours` for `request_due_soon`, `now` for `close_date_passed`. Checked: an amount
    /// over the maximum, or a bound outside the calendar, is an error naming the timer, never a panic.
    pub fn bound(&self, now: Timestamp) -> Result<Timestamp> {
        self.check()?;
        let amount = i64::from(self.amount());
        let bound = match self {
            Self::LeadIdle { .. } | Self::RequestOverdue { .. } | Self::RequestAge { .. } => {
                Duration::try_days(amount).and_then(|d| now.checked_sub_signed(d))
            }
            Self::RequestDueSoon { .. } => {
                Duration::try_hours(amount).and_then(|d| now.checked_add_signed(d))
            }
            Self::CloseDatePassed => Some(now),
        };
        bound.ok_or_else(|| {
            Error::invalid(
                "timer",
                format!("`{self}` at {now} reaches outside the calendar"),
            )
        })
    }

    /// Parses the compact form scripts use: `lead_idle:3`, `request_due_soon:24`, `request_overdue:0`,
    /// `request_age:5`, `close_date_passed`. Amounts over [`MAX_TIMER_DAYS`] days ([`MAX_TIMER_HOURS`] hours) are refused.
    pub fn parse(s: &str) -> Result<Self> {
        let (name, n) = match s.split_once(':') {
            Some((a, b)) => (a.trim(), Some(b.trim())),
            None => (s.trim(), None),
        };
        let num = |what: &str| -> Result<u32> {
            let n = n.ok_or_else(|| {
                Error::invalid(
                    "timer",
                    format!("`{s}` needs a number of {what}, as in `{name}:3`"),
                )
            })?;
            n.parse::<u32>().map_err(|_| {
                Error::invalid(
                    "timer",
                    format!("`{n}` in `{s}` is not a whole number of {what}"),
                )
            })
        };
        let timer = match name {
            "lead_idle" => Self::LeadIdle { days: num("days")? },
            "request_due_soon" => Self::RequestDueSoon {
                hours: num("hours")?,
            },
            "request_overdue" => Self::RequestOverdue { days: num("days")? },
            "close_date_passed" => Self::CloseDatePassed,
            "request_age" => Self::RequestAge { days: num("days")? },
            other => {
                return Err(Error::invalid(
                    "timer",
                    format!(
                        "unknown timer `{other}`: use lead_idle:N, request_due_soon:N, request_overdue:N, \
                         request_age:N or close_date_passed"
                    ),
                ))
            }
        };
        timer.check()?;
        Ok(timer)
    }
}

/// The serialised form of [`TimerTrigger`] (`{"type": "lead_idle", "days": 3}`), checked on the way in.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TimerRepr {
    LeadIdle { days: u32 },
    RequestDueSoon { hours: u32 },
    RequestOverdue { days: u32 },
    CloseDatePassed,
    RequestAge { days: u32 },
}

impl TryFrom<TimerRepr> for TimerTrigger {
    type Error = Error;

    fn try_from(r: TimerRepr) -> Result<Self> {
        let t = match r {
            TimerRepr::LeadIdle { days } => Self::LeadIdle { days },
            TimerRepr::RequestDueSoon { hours } => Self::RequestDueSoon { hours },
            TimerRepr::RequestOverdue { days } => Self::RequestOverdue { days },
            TimerRepr::CloseDatePassed => Self::CloseDatePassed,
            TimerRepr::RequestAge { days } => Self::RequestAge { days },
        };
        t.check()?;
        Ok(t)
    }
}

impl From<TimerTrigger> for TimerRepr {
    fn from(t: TimerTrigger) -> Self {
        match t {
            TimerTrigger::LeadIdle { days } => Self::LeadIdle { days },
            TimerTrigger::RequestDueSoon { hours } => Self::RequestDueSoon { hours },
            TimerTrigger::RequestOverdue { days } => Self::RequestOverdue { days },
            TimerTrigger::CloseDatePassed => Self::CloseDatePassed,
            TimerTrigger::RequestAge { days } => Self::RequestAge { days },
        }
    }
}

impl fmt::Display for TimerTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CloseDatePassed => f.write_str(self.name()),
            _ => write!(f, "{}:{}", self.name(), self.amount()),
        }
    }
}

/// One firing of a timer for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerFiring {
    /// The tenant.
    pub tenant: TenantId,
    /// When the scheduler fired it.
    pub at: Timestamp,
    /// Which timer.
    pub timer: TimerTrigger,
    /// The record it fired for.
    pub subject: Subject,
    /// The stable identity of this firing: the same situation (record, timer, the instant the idle or due period
    /// started) always gives the same key, so repeated ticks decide the same outbox messages, which the outbox's
    /// idempotency keys then ignore.
    pub key: String,
}

/// What a rule reacts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum Trigger {
    /// A domain event.
    Event(DomainEvent),
    /// A timer firing.
    Timer(TimerFiring),
}

impl Trigger {
    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        match self {
            Self::Event(e) => e.tenant,
            Self::Timer(t) => t.tenant,
        }
    }

    /// When it happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Event(e) => e.at,
            Self::Timer(t) => t.at,
        }
    }

    /// The records it concerns.
    pub fn subject(&self) -> Subject {
        match self {
            Self::Event(e) => e.subject,
            Self::Timer(t) => t.subject,
        }
    }

    /// The event kind name (`lead_stage_moved`) or the timer name (`lead_idle`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Event(e) => e.kind.name(),
            Self::Timer(t) => t.timer.name(),
        }
    }

    /// The trigger's stable key: the event id, or the timer firing's key. Outbox idempotency keys start with it.
    pub fn key(&self) -> String {
        match self {
            Self::Event(e) => format!("event:{}", e.id),
            Self::Timer(t) => format!("timer:{}", t.key),
        }
    }
}

/// Read-only views of the records a trigger concerns, as far as the host has them at hand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Views {
    /// The lead (after the change).
    pub lead: Option<Lead>,
    /// The partner.
    pub partner: Option<Partner>,
    /// The request (after the change).
    pub request: Option<Request>,
}

impl Views {
    /// The views a change set carries for `subject`: the last state of each record it inserts or updates.
    pub fn from_change_set(changes: &ChangeSet, subject: &Subject) -> Self {
        Self::from_change_set_loaded(changes, subject, &Loaded::default())
    }

    /// The views for `subject`: the records the service loaded as context, overridden by the last state of each
    /// record the change set inserts or updates.
    pub fn from_change_set_loaded(changes: &ChangeSet, subject: &Subject, loaded: &Loaded) -> Self {
        let mut v = Views {
            lead: loaded
                .leads
                .iter()
                .find(|l| Some(l.id) == subject.lead)
                .cloned(),
            partner: loaded
                .partners
                .iter()
                .find(|p| Some(p.id) == subject.partner)
                .cloned(),
            request: loaded
                .requests
                .iter()
                .find(|r| Some(r.id) == subject.request)
                .cloned(),
        };
        for w in &changes.writes {
            match w {
                Write::InsertLead(l) | Write::UpdateLead { lead: l, .. }
                    if Some(l.id) == subject.lead =>
                {
                    v.lead = Some(l.clone());
                }
                Write::InsertPartner { partner: p, .. }
                | Write::UpdatePartner { partner: p, .. }
                    if Some(p.id) == subject.partner =>
                {
                    v.partner = Some(p.clone());
                }
                Write::InsertRequest(r) | Write::UpdateRequest { request: r, .. }
                    if Some(r.id) == subject.request =>
                {
                    v.request = Some(r.clone());
                }
                _ => {}
            }
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------------- actions

/// Who an action is for, before the [`Directory`] resolves it to people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Recipient {
    /// One user.
    Person(UserId),
    /// Every member of a role (`sales_manager`, `accounting`, …).
    Role(String),
    /// The owner of the lead (or, without a lead, the partner's account owner).
    Owner,
    /// The assignee of the request.
    Assignee,
    /// The manager of whoever the inner recipient resolves to (one step up the reporting line).
    ManagerOf(Box<Recipient>),
    /// The partner's contacts with this role (`primary` = every contact with an e-mail address).
    PartnerContact(String),
    /// An e-mail address.
    Email(String),
    /// One user named by the host's key for them (`user:ana`), resolved through [`Directory::user_by_key`].
    UserKey(String),
    /// The first alternative that reaches somebody (`manager:owner or role:management`): a fallback for when
    /// nobody is above in the reporting line, a role is empty, a record has no owner.
    FirstOf(Vec<Recipient>),
}

impl Recipient {
    /// Parses the compact form scripts use: `owner`, `assignee`, `manager:owner`, `role:accounting`,
    /// `contact:purchasing`, `user:<uuid>`, `user:<key>`, an e-mail address, or a bare role name; alternatives
    /// joined by ` or ` are tried in order (`manager:owner or management`).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.split_whitespace().any(|w| w == "or") {
            let words: Vec<&str> = s.split_whitespace().collect();
            let alternatives = words
                .split(|w| *w == "or")
                .map(|alt| {
                    if alt.is_empty() {
                        return Err(Error::invalid(
                            "recipient",
                            format!("`{s}`: name a recipient on each side of `or`"),
                        ));
                    }
                    Self::parse(&alt.join(" "))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Self::FirstOf(alternatives));
        }
        if s.is_empty() {
            return Err(Error::invalid(
                "recipient",
                "empty: name a role, a person or `owner`",
            ));
        }
        if let Some(rest) = s.strip_prefix("manager:") {
            return Ok(Self::ManagerOf(Box::new(Self::parse(rest)?)));
        }
        if let Some(rest) = s.strip_prefix("role:") {
            return Ok(Self::Role(rest.trim().to_string()));
        }
        if let Some(rest) = s.strip_prefix("contact:") {
            return Ok(Self::PartnerContact(rest.trim().to_string()));
        }
        if let Some(rest) = s.strip_prefix("user:") {
            let rest = rest.trim();
            if let Ok(id) = rest.parse() {
                return Ok(Self::Person(id));
            }
            if rest.is_empty()
                || !rest
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(Error::invalid(
                    "recipient",
                    format!("`{s}`: name a user by their key (`user:ana`)"),
                ));
            }
            return Ok(Self::UserKey(rest.to_string()));
        }
        Ok(match s {
            "owner" => Self::Owner,
            "assignee" => Self::Assignee,
            _ if s.contains('@') => {
                if !email_address::EmailAddress::is_valid(s) {
                    return Err(Error::invalid(
                        "recipient",
                        format!("`{s}` is not a valid e-mail address"),
                    ));
                }
                Self::Email(s.to_string())
            }
            _ => Self::Role(s.to_string()),
        })
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(u) => write!(f, "user:{u}"),
            Self::Role(r) => write!(f, "role:{r}"),
            Self::Owner => f.write_str("owner"),
            Self::Assignee => f.write_str("assignee"),
            Self::ManagerOf(r) => write!(f, "manager:{r}"),
            Self::PartnerContact(r) => write!(f, "contact:{r}"),
            Self::Email(e) => f.write_str(e),
            Self::UserKey(k) => write!(f, "user:{k}"),
            Self::FirstOf(all) => {
                for (i, r) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// What a rule decided, as data. Nothing happens until the dispatcher delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// An in-app notification.
    Notify {
        /// To whom.
        to: Recipient,
        /// Subject line.
        subject: String,
        /// Text.
        body: String,
    },
    /// An e-mail rendered from a template.
    SendEmail {
        /// To whom.
        to: Recipient,
        /// The template's name.
        template: String,
        /// The template's variables (the trigger's views are added as `lead`, `partner`, `request`).
        vars: serde_json::Value,
    },
    /// Open a request (task) for someone.
    OpenRequest {
        /// Who must do it.
        assignee: Recipient,
        /// Title.
        title: String,
        /// Kind (`quotation`, `call`, …).
        kind: Option<String>,
        /// Due this many hours after the trigger.
        due_in_hours: Option<u32>,
    },
    /// Give the lead to someone else.
    Reassign {
        /// The new owner.
        to: Recipient,
    },
    /// Tag the lead.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Remind the owner to follow up later.
    ScheduleFollowUp {
        /// In this many hours.
        in_hours: u32,
        /// What to do.
        note: String,
    },
    /// Notify the manager of `from` (one step up the reporting line).
    Escalate {
        /// Whose manager.
        from: Recipient,
        /// Subject line.
        subject: String,
        /// Text.
        body: String,
    },
}

impl Action {
    /// The action's name (`notify`, `send_email`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Notify { .. } => "notify",
            Self::SendEmail { .. } => "send_email",
            Self::OpenRequest { .. } => "open_request",
            Self::Reassign { .. } => "reassign",
            Self::AddTag { .. } => "add_tag",
            Self::ScheduleFollowUp { .. } => "schedule_follow_up",
            Self::Escalate { .. } => "escalate",
        }
    }

    /// Who the action is for, unresolved.
    pub fn recipient(&self) -> Recipient {
        match self {
            Self::Notify { to, .. } | Self::SendEmail { to, .. } | Self::Reassign { to } => {
                to.clone()
            }
            Self::OpenRequest { assignee, .. } => assignee.clone(),
            Self::AddTag { .. } | Self::ScheduleFollowUp { .. } => Recipient::Owner,
            Self::Escalate { from, .. } => Recipient::ManagerOf(Box::new(from.clone())),
        }
    }
}

/// An action with the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedAction {
    /// The rule's name.
    pub rule: String,
    /// The action.
    pub action: Action,
}

/// A guard's refusal of the triggering change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The rule's name.
    pub rule: String,
    /// Its reason, for the user.
    pub reason: String,
}

/// A rule that failed while evaluating (script error, over a limit, unknown role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFailure {
    /// The rule's name.
    pub rule: String,
    /// Where (file:line:column) and why.
    pub message: String,
}

/// What one rule did with one trigger: for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTrace {
    /// The rule's name.
    pub rule: String,
    /// The entry point called, or `None` when the rule has none for this trigger.
    pub entry_point: Option<String>,
    /// Whether it decided anything (actions or a refusal).
    pub matched: bool,
    /// How many actions it decided.
    pub actions: usize,
    /// Its refusal reason or failure message, if any.
    pub note: Option<String>,
    /// Evaluation time in microseconds.
    pub micros: u64,
}

/// The engine's answer for one trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The actions, in rule order then decision order.
    pub actions: Vec<DecidedAction>,
    /// The first refusal, if a guard refused (only meaningful for events of a change being made).
    pub refusal: Option<Refusal>,
    /// Rules that failed; the others still decided.
    pub failures: Vec<RuleFailure>,
    /// One entry per rule consulted.
    pub trace: Vec<RuleTrace>,
}

/// Evaluates the communication rules. Implementations must be pure: no I/O, no store handle, the same trigger and
/// views always give the same decision.
pub trait RuleEngine: Send + Sync + Debug {
    /// Decides what to do about `trigger`. Never fails as a whole: a failing rule is reported in
    /// [`Decision::failures`] and the other rules still run.
    fn evaluate(&self, trigger: &Trigger, views: &Views) -> Decision;

    /// The timers the rule set reacts to (the scheduler looks for candidates of these only).
    fn timers(&self) -> Vec<TimerTrigger> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------------- directory

/// A person as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The user, when the person is a user of the host (partner contacts are not).
    pub user: Option<UserId>,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// The organisation as the host knows it: users, roles, reporting lines, partners' contacts.
///
/// Implementations answer from memory or a cache: they are called inside the commit path and must not block on
/// I/O for long.
pub trait Directory: Send + Sync + Debug {
    /// A user of the tenant.
    fn user(&self, tenant: TenantId, id: UserId) -> Option<Person>;
    /// The members of a role; `None` when the tenant has no such role (an error for the rule that named it).
    fn role_members(&self, tenant: TenantId, role: &str) -> Option<Vec<UserId>>;
    /// The user's manager (one step up the reporting line).
    fn manager_of(&self, tenant: TenantId, user: UserId) -> Option<UserId>;
    /// A partner's contacts with `role` (`primary`: all contacts with an e-mail address).
    fn partner_contacts(&self, tenant: TenantId, partner: PartnerId, role: &str) -> Vec<Person>;
    /// Every role of the tenant with its members (for diagrams).
    fn roles(&self, tenant: TenantId) -> BTreeMap<String, Vec<UserId>>;
    /// The user the host knows by `key` (rules write `user:ana`); `None` by default.
    fn user_by_key(&self, tenant: TenantId, key: &str) -> Option<UserId> {
        let _ = (tenant, key);
        None
    }
}

/// One user of a [`StaticDirectory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// The user.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// Manager.
    #[serde(default)]
    pub manager: Option<UserId>,
}

/// A partner contact in a [`StaticDirectory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryContact {
    /// The partner.
    pub partner: PartnerId,
    /// The contact's role (`purchasing`, `primary`, …).
    pub role: String,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// An in-memory directory for one tenant: for tests, the CLI and small hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticDirectory {
    /// The tenant it answers for; other tenants see an empty organisation.
    pub tenant: TenantId,
    /// Declared roles (a role may have no members yet and still be known).
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// Users.
    #[serde(default)]
    pub users: Vec<DirectoryUser>,
    /// Partner contacts.
    #[serde(default)]
    pub contacts: Vec<DirectoryContact>,
    /// Users by the key rules name them with (`user:ana`).
    #[serde(default)]
    pub keys: BTreeMap<String, UserId>,
}

impl StaticDirectory {
    /// An empty organisation of `tenant`.
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            roles: BTreeSet::new(),
            users: Vec::new(),
            contacts: Vec::new(),
            keys: BTreeMap::new(),
        }
    }

    /// Adds a user with roles and an optional manager.
    pub fn with_user(
        mut self,
        id: UserId,
        name: &str,
        email: Option<&str>,
        roles: &[&str],
        manager: Option<UserId>,
    ) -> Self {
        for r in roles {
            self.roles.insert(r.to_string());
        }
        self.users.push(DirectoryUser {
            id,
            name: name.to_string(),
            email: email.map(str::to_string),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            manager,
        });
        self
    }

    /// Adds a partner contact.
    pub fn with_contact(mut self, partner: PartnerId, role: &str, name: &str, email: &str) -> Self {
        self.contacts.push(DirectoryContact {
            partner,
            role: role.to_string(),
            name: name.to_string(),
            email: Some(email.to_string()),
        });
        self
    }
}

impl Directory for StaticDirectory {
    fn user(&self, tenant: TenantId, id: UserId) -> Option<Person> {
        (tenant == self.tenant)
            .then(|| self.users.iter().find(|u| u.id == id))
            .flatten()
            .map(|u| Person {
                user: Some(u.id),
                name: u.name.clone(),
                email: u.email.clone(),
            })
    }

    fn role_members(&self, tenant: TenantId, role: &str) -> Option<Vec<UserId>> {
        if tenant != self.tenant {
            return None;
        }
        let members: Vec<_> = self
            .users
            .iter()
            .filter(|u| u.roles.contains(role))
            .map(|u| u.id)
            .collect();
        (self.roles.contains(role) || !members.is_empty()).then_some(members)
    }

    fn manager_of(&self, tenant: TenantId, user: UserId) -> Option<UserId> {
        (tenant == self.tenant)
            .then(|| self.users.iter().find(|u| u.id == user))
            .flatten()
            .and_then(|u| u.manager)
    }

    fn partner_contacts(&self, tenant: TenantId, partner: PartnerId, role: &str) -> Vec<Person> {
        if tenant != self.tenant {
            return Vec::new();
        }
        self.contacts
            .iter()
            .filter(|c| {
                c.partner == partner && (c.role == role || (role == "primary" && c.email.is_some()))
            })
            .map(|c| Person {
                user: None,
                name: c.name.clone(),
                email: c.email.clone(),
            })
            .collect()
    }

    fn user_by_key(&self, tenant: TenantId, key: &str) -> Option<UserId> {
        (tenant == self.tenant)
            .then(|| self.keys.get(key).copied())
            .flatten()
    }

    fn roles(&self, tenant: TenantId) -> BTreeMap<String, Vec<UserId>> {
        if tenant != self.tenant {
            return BTreeMap::new();
        }
        self.roles
            .iter()
            .map(|r| {
                let members = self
                    .users
                    .iter()
                    .filter(|u| u.roles.contains(r))
                    .map(|u| u.id)
                    .collect();
                (r.clone(), members)
            })
            .collect()
    }
}

/// Resolves a recipient to people, for the records of `trigger` and `views`.
///
/// Errors name what could not be resolved: an unknown role, a trigger without an owner or assignee, a user
/// without a manager.
pub fn resolve(
    to: &Recipient,
    tenant: TenantId,
    views: &Views,
    directory: &dyn Directory,
) -> Result<Vec<ResolvedRecipient>> {
    let person = |u: UserId| -> ResolvedRecipient {
        match directory.user(tenant, u) {
            Some(p) => ResolvedRecipient {
                user: Some(u),
                name: Some(p.name),
                email: p.email,
            },
            None => ResolvedRecipient {
                user: Some(u),
                name: None,
                email: None,
            },
        }
    };
    Ok(match to {
        Recipient::Person(u) => vec![person(*u)],
        Recipient::UserKey(k) => {
            let u = directory.user_by_key(tenant, k).ok_or_else(|| {
                Error::invalid("recipient", format!("`{to}`: no user has the key `{k}`"))
            })?;
            vec![person(u)]
        }
        Recipient::FirstOf(all) => {
            let mut why = Vec::new();
            for r in all {
                match resolve(r, tenant, views, directory) {
                    Ok(found) if !found.is_empty() => return Ok(found),
                    Ok(_) => why.push(format!("`{r}` is nobody")),
                    Err(e) => why.push(match &e {
                        Error::Invalid { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    }),
                }
            }
            return Err(Error::invalid(
                "recipient",
                format!("`{to}` reaches nobody: {}", why.join("; ")),
            ));
        }
        Recipient::Role(r) => directory
            .role_members(tenant, r)
            .ok_or_else(|| {
                let known: Vec<_> = directory.roles(tenant).into_keys().collect();
                Error::invalid(
                    "recipient",
                    format!(
                        "unknown role `{r}`; the directory knows: {}",
                        known.join(", ")
                    ),
                )
            })?
            .into_iter()
            .map(person)
            .collect(),
        Recipient::Owner => {
            let owner = views
                .lead
                .as_ref()
                .and_then(|l| l.owner)
                .or_else(|| views.partner.as_ref().and_then(|p| p.owner))
                .ok_or_else(|| {
                    Error::invalid("recipient", "`owner`: the lead (or partner) has no owner")
                })?;
            vec![person(owner)]
        }
        Recipient::Assignee => {
            let r = views.request.as_ref().ok_or_else(|| {
                Error::invalid("recipient", "`assignee`: the trigger concerns no request")
            })?;
            vec![person(r.assignee)]
        }
        Recipient::ManagerOf(inner) => {
            let mut out = Vec::new();
            for p in resolve(inner, tenant, views, directory)? {
                let u = p.user.ok_or_else(|| {
                    Error::invalid(
                        "recipient",
                        format!("`{to}`: a partner contact has no manager"),
                    )
                })?;
                let m = directory.manager_of(tenant, u).ok_or_else(|| {
                    Error::invalid(
                        "recipient",
                        format!("`{to}`: user {} has no manager in the directory", p.label()),
                    )
                })?;
                out.push(person(m));
            }
            out
        }
        Recipient::PartnerContact(role) => {
            let partner = views
                .partner
                .as_ref()
                .map(|p| p.id)
                .or_else(|| views.lead.as_ref().map(|l| l.partner))
                .or_else(|| views.request.as_ref().and_then(|r| r.partner))
                .ok_or_else(|| {
                    Error::invalid(
                        "recipient",
                        format!("`{to}`: the trigger concerns no partner"),
                    )
                })?;
            let mut found: Vec<ResolvedRecipient> = directory
                .partner_contacts(tenant, partner, role)
                .into_iter()
                .map(|p| ResolvedRecipient {
                    user: None,
                    name: Some(p.name),
                    email: p.email,
                })
                .collect();
            if found.is_empty() {
                if let Some(p) = views.partner.as_ref().filter(|p| p.id == partner) {
                    found = p
                        .contacts
                        .iter()
                        .filter(|c| {
                            c.email.is_some()
                                && (role == "primary" || c.role.as_deref() == Some(role))
                        })
                        .map(|c| ResolvedRecipient {
                            user: None,
                            name: Some(c.name.clone()),
                            email: c.email.clone(),
                        })
                        .collect();
                }
            }
            if found.is_empty() {
                return Err(Error::invalid(
                    "recipient",
                    format!("`{to}`: partner {partner} has no contact with role `{role}`"),
                ));
            }
            found
        }
        Recipient::Email(e) => vec![ResolvedRecipient {
            user: None,
            name: None,
            email: Some(e.clone()),
        }],
    })
}

/// Turns one decided action into outbox messages, one per resolved recipient.
///
/// The idempotency key is `<trigger key>/<rule>/<action index>/<recipient>`: the same decision always yields the
/// same keys, so re-deciding (a repeated timer tick, a retried commit) never enqueues a message twice.
pub fn to_outbox(
    trigger: &Trigger,
    views: &Views,
    index: usize,
    decided: &DecidedAction,
    directory: &dyn Directory,
) -> Result<Vec<OutboxMessage>> {
    let tenant = trigger.tenant();
    let at = trigger.at();
    let action = &decided.action;
    let recipients = match action {
        Action::AddTag { .. } | Action::ScheduleFollowUp { .. } => {
            resolve(&Recipient::Owner, tenant, views, directory).unwrap_or_default()
        }
        _ => resolve(&action.recipient(), tenant, views, directory)?,
    };
    let context = serde_json::json!({
        "trigger": trigger.name(),
        "lead": views.lead,
        "partner": views.partner,
        "request": views.request,
    });
    let (channel, payload) = match action {
        Action::Notify { subject, body, .. } | Action::Escalate { subject, body, .. } => (
            Channel::InApp,
            Payload {
                subject: subject.clone(),
                body: body.clone(),
                template: None,
                vars: serde_json::Value::Null,
                action: None,
            },
        ),
        Action::SendEmail { template, vars, .. } => {
            let mut all = context.clone();
            if let (Some(obj), serde_json::Value::Object(given)) = (all.as_object_mut(), vars) {
                for (k, v) in given {
                    obj.insert(k.clone(), v.clone());
                }
            }
            (
                Channel::Email,
                Payload {
                    subject: String::new(),
                    body: String::new(),
                    template: Some(template.clone()),
                    vars: all,
                    action: None,
                },
            )
        }
        other => (
            Channel::Task,
            Payload {
                subject: other.name().to_string(),
                body: String::new(),
                template: None,
                vars: serde_json::json!({
                    "lead": views.lead.as_ref().map(|l| l.id),
                    "request": views.request.as_ref().map(|r| r.id),
                }),
                action: Some(other.clone()),
            },
        ),
    };
    let targets: Vec<Option<ResolvedRecipient>> = if recipients.is_empty() {
        vec![None]
    } else {
        recipients.into_iter().map(Some).collect()
    };
    let mut out = Vec::new();
    for r in targets {
        // An in-app notification for someone who is not a user (a partner contact, an address) goes by e-mail.
        let channel = match &r {
            Some(r) if channel == Channel::InApp && r.user.is_none() && r.email.is_some() => {
                Channel::Email
            }
            _ => channel,
        };
        if channel == Channel::Email && r.as_ref().and_then(|r| r.email.as_ref()).is_none() {
            return Err(Error::invalid(
                "recipient",
                format!(
                    "`{}` resolved to {} who has no e-mail address",
                    action.recipient(),
                    r.as_ref()
                        .map(|r| r.label())
                        .unwrap_or_else(|| "nobody".into())
                ),
            ));
        }
        let who = r
            .as_ref()
            .map(|r| r.key())
            .unwrap_or_else(|| "-".to_string());
        out.push(OutboxMessage {
            id: OutboxId::new(),
            tenant,
            idempotency_key: format!("{}/{}/{}/{}", trigger.key(), decided.rule, index, who),
            rule: decided.rule.clone(),
            channel,
            recipient: r.unwrap_or_default(),
            payload: payload.clone(),
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            created_at: at,
            delivered_at: None,
        });
    }
    Ok(out)
}

/// Turns a decision into writes: outbox messages for its actions and a [`EventKind::RuleFailed`] event for each
/// failure (including actions whose recipients cannot be resolved). The refusal is the caller's to handle.
pub fn decision_writes(
    ctx: &Context,
    trigger: &Trigger,
    views: &Views,
    decision: &Decision,
    directory: &dyn Directory,
) -> Vec<Write> {
    let mut writes = Vec::new();
    let mut failures = decision.failures.clone();
    for (i, d) in decision.actions.iter().enumerate() {
        match to_outbox(trigger, views, i, d, directory) {
            Ok(msgs) => writes.extend(msgs.into_iter().map(Write::EnqueueOutbox)),
            Err(e) => failures.push(RuleFailure {
                rule: d.rule.clone(),
                message: format!("{} action {}: {e}", d.action.name(), i),
            }),
        }
    }
    for f in failures {
        writes.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            trigger.at(),
            trigger.subject(),
            EventKind::RuleFailed {
                rule: f.rule,
                message: f.message,
            },
        )));
    }
    writes
}

// ---------------------------------------------------------------------------------------------------- the hook

/// The [`CommitHook`] that runs the rules inside the commit of every change.
///
/// For each event of the change set (except [`EventKind::RuleFailed`], so failures never trigger rules), it asks the
/// engine; a refusal aborts the change with [`TransitionError::RefusedByRule`], actions become outbox writes and
/// failures become `rule_failed` events, all in the same transaction.
#[derive(Debug, Clone)]
pub struct RulesHook {
    engine: Arc<dyn RuleEngine>,
    directory: Arc<dyn Directory>,
}

impl RulesHook {
    /// A hook asking `engine` and resolving people through `directory`.
    pub fn new(engine: Arc<dyn RuleEngine>, directory: Arc<dyn Directory>) -> Self {
        Self { engine, directory }
    }
}

impl CommitHook for RulesHook {
    fn before_commit(&self, ctx: &Context, changes: &mut ChangeSet) -> Result<()> {
        self.before_commit_loaded(ctx, changes, &Loaded::default())
    }

    fn before_commit_loaded(
        &self,
        ctx: &Context,
        changes: &mut ChangeSet,
        loaded: &Loaded,
    ) -> Result<()> {
        let events: Vec<DomainEvent> = changes
            .events()
            .filter(|e| !matches!(e.kind, EventKind::RuleFailed { .. }))
            .cloned()
            .collect();
        let mut extra = Vec::new();
        for e in events {
            let views = Views::from_change_set_loaded(changes, &e.subject, loaded);
            let trigger = Trigger::Event(e);
            let decision = self.engine.evaluate(&trigger, &views);
            if let Some(r) = decision.refusal {
                return Err(Error::Transition(TransitionError::RefusedByRule {
                    rule: r.rule,
                    reason: r.reason,
                }));
            }
            extra.extend(decision_writes(
                ctx,
                &trigger,
                &views,
                &decision,
                self.directory.as_ref(),
            ));
        }
        changes.writes.extend(extra);
        Ok(())
    }
}

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
