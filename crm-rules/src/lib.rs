//! # crm-rules: the organisation's communication schema, as Rhai rules
//!
//! The key design decision: **rules decide, they never do.** A rule is a small Rhai script that receives an event
//! (or a timer firing) with read-only views of its lead, partner and request, and *records* actions — notify a
//! person or role, send an e-mail from a template, open a request, escalate, refuse a transition. The actions are
//! data ([`crm_core::comms::Action`]); `crm_core::service::RulesHook` writes them into the transactional outbox in
//! the same storage transaction as the change that triggered them, and a `crm_delivery::Dispatcher` delivers
//! them through the notifiers of this crate ([`notify::SmtpNotifier`], the in-app inbox, [`notify::RecordingNotifier`]
//! for tests). A script therefore cannot send anything twice, lose anything in a crash, or do any I/O at all.
//!
//! - [`engine`]: compile once, evaluate under explicit limits, swap the rule set at run time.
//! - [`registry`]: one scheme per tenant, with a default, loaded and replaced at run time.
//! - [`replay`]: a dry run of a scheme over the events a store holds (`crm-rules replay`).
//! - [`views`]: what scripts see.
//! - [`fixtures`]: event-in / actions-out test cases that consultants write (JSON or TOML).
//! - [`graph`]: the schema as a diagram (DOT, Mermaid).
//! - [`notify`]: e-mail (lettre + minijinja), recording notifier.
//! - [`native`]: the example scheme in plain Rust, the baseline of the benchmark.
//!
//! See the crate README for the consultant's guide: event fields, action functions, limits.

pub mod engine;
pub mod error;
pub mod fixtures;
pub mod graph;
pub mod native;
pub mod notify;
pub mod registry;
pub mod replay;
pub mod scan;
pub mod suggest;
pub mod views;

pub use engine::{Limits, RhaiRuleEngine, Rule, RuleSet, RuleSource, MAX_SCRIPT_BYTES};
pub use error::{Location, RulesError};
pub use registry::SchemeRegistry;
