//! Triggers: the events and timers the rules react to, and the read-only views of the records they concern.

use super::*;

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
    /// A sales invoice still (partly) unpaid is overdue by at least `days` days (0 = as soon as it is overdue).
    OpenItemOverdue {
        /// Days past the due date.
        days: u32,
    },
    /// A document the host marked with a renewal date ([`NewDocument::renews_on`](crate::commerce::NewDocument::renews_on),
    /// e.g. a contract's invoice) renews within `days` days.
    ContractRenewalDue {
        /// Days before the renewal date.
        days: u32,
    },
    /// A scheduled meeting starts within `hours` hours (a reminder; fires again when the meeting moves).
    MeetingStartsIn {
        /// Hours before the start.
        hours: u32,
    },
}

variant_names! {
    /// The timer's name as scripts see it (`lead_idle`, `request_due_soon`, `request_overdue`,
    /// `close_date_passed`, `request_age`, `open_item_overdue`, `contract_renewal_due`, `meeting_starts_in`).
    pub fn name for TimerTrigger {
        LeadIdle => "lead_idle",
        RequestDueSoon => "request_due_soon",
        RequestOverdue => "request_overdue",
        CloseDatePassed => "close_date_passed",
        RequestAge => "request_age",
        OpenItemOverdue => "open_item_overdue",
        ContractRenewalDue => "contract_renewal_due",
        MeetingStartsIn => "meeting_starts_in",
    }
}

impl TimerTrigger {
    /// The timer's parameter (days or hours; 0 for [`TimerTrigger::CloseDatePassed`]).
    pub fn amount(&self) -> u32 {
        match self {
            Self::LeadIdle { days }
            | Self::RequestOverdue { days }
            | Self::RequestAge { days }
            | Self::OpenItemOverdue { days }
            | Self::ContractRenewalDue { days } => *days,
            Self::RequestDueSoon { hours } | Self::MeetingStartsIn { hours } => *hours,
            Self::CloseDatePassed => 0,
        }
    }

    /// Checks the amount is at most [`MAX_TIMER_DAYS`] days ([`MAX_TIMER_HOURS`] hours for `request_due_soon`).
    pub fn check(&self) -> Result<()> {
        let (max, unit) = match self {
            Self::LeadIdle { .. }
            | Self::RequestOverdue { .. }
            | Self::RequestAge { .. }
            | Self::OpenItemOverdue { .. }
            | Self::ContractRenewalDue { .. } => (MAX_TIMER_DAYS, "days"),
            Self::RequestDueSoon { .. } | Self::MeetingStartsIn { .. } => {
                (MAX_TIMER_HOURS, "hours")
            }
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
    /// `request_overdue`, `request_age` and `open_item_overdue`, `now + hours` for `request_due_soon` and
    /// `meeting_starts_in`, `now + days`
    /// for `contract_renewal_due`, `now` for `close_date_passed`. Checked: an amount over the maximum, or a bound
    /// outside the calendar, is an error naming the timer, never a panic.
    pub fn bound(&self, now: Timestamp) -> Result<Timestamp> {
        self.check()?;
        let amount = i64::from(self.amount());
        let bound = match self {
            Self::LeadIdle { .. }
            | Self::RequestOverdue { .. }
            | Self::RequestAge { .. }
            | Self::OpenItemOverdue { .. } => {
                Duration::try_days(amount).and_then(|d| now.checked_sub_signed(d))
            }
            Self::RequestDueSoon { .. } | Self::MeetingStartsIn { .. } => {
                Duration::try_hours(amount).and_then(|d| now.checked_add_signed(d))
            }
            Self::ContractRenewalDue { .. } => {
                Duration::try_days(amount).and_then(|d| now.checked_add_signed(d))
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
    /// `request_age:5`, `open_item_overdue:7`, `contract_renewal_due:30`, `meeting_starts_in:24`,
    /// `close_date_passed`. Amounts over [`MAX_TIMER_DAYS`] days ([`MAX_TIMER_HOURS`] hours) are refused.
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
            "open_item_overdue" => Self::OpenItemOverdue { days: num("days")? },
            "contract_renewal_due" => Self::ContractRenewalDue { days: num("days")? },
            "meeting_starts_in" => Self::MeetingStartsIn {
                hours: num("hours")?,
            },
            other => {
                return Err(Error::invalid(
                    "timer",
                    format!(
                        "unknown timer `{other}`: use lead_idle:N, request_due_soon:N, request_overdue:N, \
                         request_age:N, open_item_overdue:N, contract_renewal_due:N, meeting_starts_in:N or \
                         close_date_passed"
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
    OpenItemOverdue { days: u32 },
    ContractRenewalDue { days: u32 },
    MeetingStartsIn { hours: u32 },
}

/// `$value`, a [`TimerTrigger`] or a [`TimerRepr`], as the other: the two have the same variants.
macro_rules! convert_timer {
    ($value:expr, $from:ident => $to:ident) => {
        match $value {
            $from::LeadIdle { days } => $to::LeadIdle { days },
            $from::RequestDueSoon { hours } => $to::RequestDueSoon { hours },
            $from::RequestOverdue { days } => $to::RequestOverdue { days },
            $from::CloseDatePassed => $to::CloseDatePassed,
            $from::RequestAge { days } => $to::RequestAge { days },
            $from::OpenItemOverdue { days } => $to::OpenItemOverdue { days },
            $from::ContractRenewalDue { days } => $to::ContractRenewalDue { days },
            $from::MeetingStartsIn { hours } => $to::MeetingStartsIn { hours },
        }
    };
}

impl TryFrom<TimerRepr> for TimerTrigger {
    type Error = Error;

    fn try_from(r: TimerRepr) -> Result<Self> {
        let t = convert_timer!(r, TimerRepr => TimerTrigger);
        t.check()?;
        Ok(t)
    }
}

impl From<TimerTrigger> for TimerRepr {
    fn from(t: TimerTrigger) -> Self {
        convert_timer!(t, TimerTrigger => TimerRepr)
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

    /// Every name rules react to for this trigger: an event's [`EventKind::trigger_names`](crate::event::EventKind::trigger_names)
    /// (`invoice_recorded` and `invoice_issued`), or the timer's name.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Self::Event(e) => e.kind.trigger_names(),
            Self::Timer(t) => vec![t.timer.name()],
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
    /// The document (an invoice or payment event's, an open item's or a renewal's).
    #[serde(default)]
    pub document: Option<crate::commerce::Document>,
    /// The campaign (a campaign event's).
    #[serde(default)]
    pub campaign: Option<crate::commerce::Campaign>,
    /// The open item (the `open_item_overdue` timer's: what is still owed on the document).
    #[serde(default)]
    pub open_item: Option<crate::commerce::OpenItem>,
    /// The contract (the `contract_renewal_due` timer's, for a contract up for renewal).
    #[serde(default)]
    pub contract: Option<crate::sales::Contract>,
    /// The meeting (the `meeting_starts_in` timer's).
    #[serde(default)]
    pub meeting: Option<crate::sales::Meeting>,
}

impl Views {
    /// Who owns what the trigger concerns: a meeting's organiser, else the lead's owner, else the partner's, else
    /// the campaign's (the `owner` recipient).
    pub fn owner(&self) -> Option<crate::id::UserId> {
        let organiser = self.meeting.as_ref().map(|m| m.organiser().id);
        let lead = || self.lead.as_ref().and_then(|l| l.owner);
        let partner = || self.partner.as_ref().and_then(|p| p.owner);
        organiser
            .or_else(lead)
            .or_else(partner)
            .or_else(|| self.campaign.as_ref().map(|c| c.owner))
    }

    /// The partner the trigger concerns: the partner's id, else the lead's partner, else the request's (the
    /// `partner_contact:…` recipients).
    pub fn partner_id(&self) -> Option<crate::id::PartnerId> {
        let partner = self.partner.as_ref().map(|p| p.id);
        let lead = || self.lead.as_ref().map(|l| l.partner);
        partner
            .or_else(lead)
            .or_else(|| self.request.as_ref().and_then(|r| r.partner))
            .or_else(|| self.contract.as_ref().map(|c| c.partner()))
            .or_else(|| self.meeting.as_ref().and_then(|m| m.partner()))
    }
}
