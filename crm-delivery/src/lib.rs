//! # crm-delivery: the machinery that delivers what the communication rules decided
//!
//! crm-core holds the ports (the [`OutboxMessage`](crm_core::outbox::OutboxMessage), the
//! [`Notifier`](crm_core::outbox::Notifier) trait, the [`OutboxStore`](crm_core::outbox::OutboxStore) and the rule
//! engine's boundary in [`crm_core::comms`]); this crate holds what drives them and does the work:
//!
//! - [`Dispatcher`]: claims due messages with a lease, delivers each through a [`Notifier`](crm_core::outbox::Notifier)
//!   and records the outcome (delivered, retried with exponential back-off, dead letter): *at least once*, exactly
//!   once where the receiver drops repeats by idempotency key (see [`Dispatcher`]);
//! - [`ChannelRouter`]: sends each message to the notifier of its channel;
//! - [`InboxNotifier`]: the in-app inbox (idempotent per message);
//! - [`TaskNotifier`]: opens the requests rules decide (`follow_up`, `open_request`) through the service;
//! - [`tick`] and [`TimerSource`]: time-driven rules ("no contact for 3 days", "request overdue").
//!
//! The SMTP notifier and the e-mail templates are in `crm-rules` (`crm_rules::notify`) for now.

mod dispatch;
mod inbox;
mod route;
mod task;
mod timers;

pub use dispatch::{DispatchReport, Dispatcher};
pub use inbox::InboxNotifier;
pub use route::ChannelRouter;
pub use task::TaskNotifier;
pub use timers::{
    tick, ContractCandidate, DocumentCandidate, MeetingCandidate, TickReport, TimerSource,
    OVERDUE_LOOKBACK_DAYS,
};
