//! The small vocabularies that events, errors and records share: a lead's status, a pipeline's move policy and
//! stage requirements, a document's kind, a payment's direction, a call's outcome, a campaign message's state.
//!
//! They live below every domain module so that the activity log ([`crate::event`]) can name them without
//! depending on the modules that produce events (no import cycle); `lead`, `pipeline` and `commerce` re-export
//! them.

use serde::{Deserialize, Serialize};

/// [`LeadStatus`](crate::lead::LeadStatus) without its data: for filters and indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// Open.
    Open,
    /// Won.
    Won,
    /// Lost.
    Lost,
    /// Merged into another lead: a tombstone that resolves to the survivor ([`crate::lead_merge`]). No board,
    /// list, funnel or report counts it; a [`LeadQuery`](crate::store::LeadQuery) lists tombstones only when its
    /// status filter asks for this one.
    Merged,
}

impl StatusKind {
    /// The small integer storage uses (0 open, 1 won, 2 lost, 3 merged).
    pub fn code(self) -> i16 {
        match self {
            Self::Open => 0,
            Self::Won => 1,
            Self::Lost => 2,
            Self::Merged => 3,
        }
    }

    /// The lower-case word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Merged => "merged",
        }
    }
}

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// A sales invoice: revenue and cost of goods, a receivable.
    Invoice,
    /// A credit note: reverses revenue, cost of goods and the campaign link; reduces the receivable.
    CreditNote,
    /// A vendor bill: a payable (not revenue).
    VendorBill,
    /// A payment, received from a customer or sent to a vendor.
    Payment,
}

impl DocumentKind {
    /// The small integer storage uses.
    pub fn code(self) -> i16 {
        match self {
            Self::Invoice => 0,
            Self::CreditNote => 1,
            Self::VendorBill => 2,
            Self::Payment => 3,
        }
    }

    /// The inverse of [`DocumentKind::code`].
    pub fn from_code(c: i16) -> Option<Self> {
        Some(match c {
            0 => Self::Invoice,
            1 => Self::CreditNote,
            2 => Self::VendorBill,
            3 => Self::Payment,
            _ => return None,
        })
    }

    /// The words, as in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::CreditNote => "credit note",
            Self::VendorBill => "vendor bill",
            Self::Payment => "payment",
        }
    }

    /// +1 for revenue-bearing invoices, −1 for credit notes, 0 for the rest: the factor of revenue and cost.
    pub fn revenue_sign(self) -> i64 {
        match self {
            Self::Invoice => 1,
            Self::CreditNote => -1,
            Self::VendorBill | Self::Payment => 0,
        }
    }

    /// Whether the document has product lines.
    pub fn has_lines(self) -> bool {
        !matches!(self, Self::Payment)
    }
}

/// Which way money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentDirection {
    /// From a customer: settles invoices.
    Received,
    /// To a vendor: settles vendor bills.
    Sent,
}

impl PaymentDirection {
    /// The kind of document a payment in this direction settles.
    pub fn settles(self) -> DocumentKind {
        match self {
            Self::Received => DocumentKind::Invoice,
            Self::Sent => DocumentKind::VendorBill,
        }
    }
}

/// [`CallOutcome`](crate::commerce::CallOutcome) without its data: for counts and storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// No answer.
    NoAnswer,
    /// Call back.
    CallBack,
    /// Interested.
    Interested,
    /// Not interested.
    NotInterested,
    /// Wrong contact.
    WrongContact,
}

impl OutcomeKind {
    /// Every kind, in code order.
    pub const ALL: [OutcomeKind; 5] = [
        Self::NoAnswer,
        Self::CallBack,
        Self::Interested,
        Self::NotInterested,
        Self::WrongContact,
    ];

    /// The small integer storage uses.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// The inverse of [`OutcomeKind::code`].
    pub fn from_code(c: i16) -> Option<Self> {
        Self::ALL.get(usize::try_from(c).ok()?).copied()
    }

    /// Whether the call is finished with this outcome.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Interested | Self::NotInterested | Self::WrongContact
        )
    }

    /// Whether the person was reached.
    pub fn reached(self) -> bool {
        matches!(
            self,
            Self::CallBack | Self::Interested | Self::NotInterested
        )
    }

    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAnswer => "no_answer",
            Self::CallBack => "call_back",
            Self::Interested => "interested",
            Self::NotInterested => "not_interested",
            Self::WrongContact => "wrong_contact",
        }
    }
}

/// A lead field that a stage can require to be filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadField {
    /// The expected revenue.
    ExpectedRevenue,
    /// The expected close date.
    ExpectedClose,
    /// The owner.
    Owner,
    /// The partner's contact person on the lead.
    Contact,
}

impl LeadField {
    /// The field's name as used in errors and activity entries.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ExpectedRevenue => "expected_revenue",
            Self::ExpectedClose => "expected_close",
            Self::Owner => "owner",
            Self::Contact => "contact",
        }
    }
}

/// A condition a lead must meet to enter a stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Requirement {
    /// The field must be set.
    Field {
        /// Which field.
        field: LeadField,
    },
    /// A request of this kind (e.g. "quotation") on the lead must be done.
    RequestDone {
        /// The request kind.
        kind: String,
    },
    /// No request on the lead may still be open or in progress.
    NoOpenRequests,
    /// A quotation for the lead must have been sent (any revision that left the draft state: sent, answered,
    /// expired or revised).
    QuotationSent,
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Field { field } => write!(f, "field `{}` must be set", field.name()),
            Self::RequestDone { kind } => write!(f, "a `{kind}` request must be done"),
            Self::NoOpenRequests => f.write_str("all requests must be closed"),
            Self::QuotationSent => f.write_str("a quotation must have been sent"),
        }
    }
}

/// How leads may move between open stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MovePolicy {
    /// Any stage to any stage.
    #[default]
    Free,
    /// Only to stages with a higher sequence.
    ForwardOnly,
    /// Only to the next stage, or back to any earlier one.
    Sequential,
}

/// Where a quotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotationStatus {
    /// Being prepared; can be edited.
    Draft,
    /// Sent to the partner; awaits an answer until its validity date.
    Sent,
    /// The partner accepted it.
    Accepted,
    /// The partner declined it.
    Declined,
    /// Its validity date passed without an answer.
    Expired,
    /// A later revision replaced it.
    Superseded,
}

impl QuotationStatus {
    /// The status's stable name (`"draft"`, `"sent"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
        }
    }
}

impl std::fmt::Display for QuotationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a meeting stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeetingStatus {
    /// Planned.
    Scheduled,
    /// It took place (its outcome notes are recorded).
    Held,
    /// Called off.
    Cancelled,
}

impl MeetingStatus {
    /// The status's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Held => "held",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An attendee's answer to a meeting invitation (iCalendar `PARTSTAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Not answered yet.
    NeedsAction,
    /// Will attend.
    Accepted,
    /// Will not attend.
    Declined,
    /// May attend.
    Tentative,
}

impl Reply {
    /// The iCalendar `PARTSTAT` value.
    pub fn partstat(self) -> &'static str {
        match self {
            Self::NeedsAction => "NEEDS-ACTION",
            Self::Accepted => "ACCEPTED",
            Self::Declined => "DECLINED",
            Self::Tentative => "TENTATIVE",
        }
    }

    /// The reply a `PARTSTAT` value names (case-insensitive), as a host reads it from an attendee's answer.
    pub fn from_partstat(value: &str) -> Option<Self> {
        [
            Self::NeedsAction,
            Self::Accepted,
            Self::Declined,
            Self::Tentative,
        ]
        .into_iter()
        .find(|r| r.partstat().eq_ignore_ascii_case(value.trim()))
    }
}

/// Where a target's message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    /// In the outbox (sent once the dispatcher hands it over).
    Queued,
    /// Reported delivered.
    Delivered,
    /// Reported opened.
    Opened,
    /// Reported bounced: the address does not take it.
    Bounced,
    /// The recipient unsubscribed (their marketing consent for the channel is withdrawn).
    Unsubscribed,
    /// Not sent: no contact of the partner has an address for the channel.
    NoAddress,
    /// Not sent: no contact with an address consents to marketing on the channel.
    NoConsent,
    /// Not sent: the message did not render for this target.
    Failed,
}

impl SendStatus {
    /// Every status, in order.
    pub const ALL: [SendStatus; 8] = [
        Self::Queued,
        Self::Delivered,
        Self::Opened,
        Self::Bounced,
        Self::Unsubscribed,
        Self::NoAddress,
        Self::NoConsent,
        Self::Failed,
    ];

    /// The word (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Opened => "opened",
            Self::Bounced => "bounced",
            Self::Unsubscribed => "unsubscribed",
            Self::NoAddress => "no_address",
            Self::NoConsent => "no_consent",
            Self::Failed => "failed",
        }
    }

    /// The inverse of [`SendStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a message went out (every status but the three skips).
    pub fn is_sent(self) -> bool {
        !matches!(self, Self::NoAddress | Self::NoConsent | Self::Failed)
    }

    /// The order of the forward path (`queued` → `delivered` → `opened` → `unsubscribed`).
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Delivered => 1,
            Self::Opened => 2,
            Self::Unsubscribed => 3,
            _ => 4,
        }
    }
}
