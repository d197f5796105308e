//! Lifecycle and commerce scenarios as data, replayed against any backend.
//!
//! A scenario is a TOML file in `crm-core/testdata/scenarios/` (listed in [`SCENARIOS`], which embeds them with
//! `include_str!` so every adapter's tests carry them). It is a list of steps; each step runs one operation of
//! the public service API ([`CrmService`](crate::service::CrmService) or
//! [`CommerceService`](crate::service::CommerceService)) or reads through it and compares, and states what it
//! must return:
//!
//! ```toml
//! description = "A lead is moved, refused a move the pipeline forbids, and won."
//! start = 2026-03-02T09:00:00Z        # the fixed clock (this is the default)
//! reporting = "RON"                   # the commerce reporting currency (this is the default)
//!
//! [[step]]
//! op = "partner"
//! partner = "acme"                    # a label: later steps name the record by it
//! name = "Acme SRL"
//!
//! [[step]]
//! op = "lead"
//! lead = "deal"
//! partner = "acme"
//! revenue = "12000 EUR"
//!
//! [[step]]
//! op = "move"
//! lead = "deal"
//! stage = "Offer"
//!
//! [[step]]
//! op = "win"
//! lead = "deal"
//! version = 1                         # a stale version: the caller read the lead before the move
//! error = "conflict"
//!
//! [[step]]
//! op = "check_lead"
//! lead = "deal"
//! status = "open"
//! stage = "Offer"
//! probability = 50
//! version = 2
//! ```
//!
//! Besides its operation's keys (see [`Op`]), every step may say:
//!
//! - `tenant = "…"`: the label of the tenant it acts in (`main` by default). Each label is a fresh random tenant
//!   with the seed pipeline (`Sales`: Record, Contact, Qualification, Offer, Negotiation, Contract) and lost
//!   reasons, so scenarios share a database safely and a step in another tenant shows isolation;
//! - `user = "…"`: the label of the user who acts (`agent` by default);
//! - `error = "…"` (one of [`ERROR_KINDS`]: an [`crate::Error`] variant, or for a refused transition the
//!   rule's code such as `illegal_move`) and, for `invalid`, `field = "…"`: the step must fail so. Without
//!   `error` it must succeed, and a `check_*` step's read must equal every value it gives.
//!
//! Unknown keys, operations and error kinds are errors when the file is read. Dates are TOML dates
//! (`2026-03-01`), amounts strings (`"12.50"`) or integers, money `"<amount> <currency>"`.
//!
//! [`check_scenarios`] replays every scenario on a backend and fails naming each scenario, file line and step
//! that broke, and what was expected and found; it is registered in
//! [`backend_conformance_tests!`](crate::backend_conformance_tests), so the reference model, SQLite and
//! PostgreSQL all run it.

mod format;
mod replay;

pub use format::{
    AllocationSpec, Amount, BalanceSpec, Day, Expect, Instant, LineSpec, Op, OpenItemSpec,
    OutcomeSpec, ProfitRowSpec, RecordedSpec, ScenarioFile, StageSpec, Step, ERROR_KINDS,
};

use crate::error::Error;
use crate::money::Currency;
use crate::store::Backend;
use chrono::{TimeZone, Utc};
use std::sync::Arc;

/// The embedded files of `testdata/scenarios/`, by name without `.toml`.
macro_rules! scenarios {
    ($($name:literal),* $(,)?) => {
        &[$((
            concat!($name, ".toml"),
            include_str!(concat!("../../../testdata/scenarios/", $name, ".toml")),
        )),*]
    };
}

/// The tables a run of the scenarios writes to (partners, leads, the activity log, documents, campaigns, the outbox):
/// what a host's rollback must leave empty when the scenarios ran inside its transaction.
pub const SCENARIO_TABLES: &[&str] = &[
    "partners",
    "leads",
    "events",
    "documents",
    "campaigns",
    "outbox",
];

/// Every scenario file, by name, with its text (a test checks that every file of the directory is here).
pub const SCENARIOS: &[(&str, &str)] = scenarios![
    "campaign_report",
    "document_replacement",
    "invoices_and_payments",
    "lead_lifecycle",
    "multi_currency_profit",
    "partners_and_duplicates",
    "pipeline_rules",
    "requests_and_comments",
    "tenant_isolation",
];

/// A scenario read from its file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The clock's start.
    pub start: crate::time::Timestamp,
    /// The reporting currency.
    pub reporting: Currency,
    /// The steps.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Reads a scenario file.
    ///
    /// # Errors
    ///
    /// A message with the file name and line: bad TOML, an unknown key, operation or error kind, a bad value.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, String> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        let line_of = |offset: usize| text[..offset].lines().count() + 1;
        let steps = file
            .step
            .into_iter()
            .map(|s| {
                let line = line_of(s.span().start);
                Step::from_table(line, s.into_inner()).map_err(|e| format!("{name}:{line}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reporting = file.reporting.as_deref().unwrap_or("RON");
        Ok(Scenario {
            name: name.to_string(),
            description: file.description,
            start: file.start.map_or_else(
                || Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
                |s| s.0,
            ),
            reporting: Currency::parse(reporting)
                .map_err(|e| format!("{name}: reporting `{reporting}`: {e}"))?,
            steps,
        })
    }

    /// Replays the scenario on `backend`, stopping at the first step that does not do what it says.
    ///
    /// # Errors
    ///
    /// A message naming the file, line and step number, the operation, and what was expected and found.
    pub async fn replay(&self, backend: &Arc<dyn Backend>) -> Result<(), String> {
        let mut r = replay::Replay::new(backend, self.start, self.reporting)
            .map_err(|e| format!("{}: cannot build the services: {e}", self.name))?;
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!(
                "{}:{}: step {} ({})",
                self.name,
                step.line,
                i + 1,
                step.source
            );
            let got = r.step(step).await.map_err(|e| format!("{at}: {e}"))?;
            match (&step.expect, got) {
                (Expect::Ok, Ok(())) => {}
                (Expect::Ok, Err(e)) => return Err(format!("{at}: expected success, got {e:?}")),
                (Expect::Error { kind, .. }, Ok(())) => {
                    return Err(format!("{at}: expected error `{kind}`, got success"))
                }
                (Expect::Error { kind, field }, Err(e)) => {
                    let got_field = e.field().map(str::to_string);
                    if error_kind(&e) != kind || (field.is_some() && *field != got_field) {
                        return Err(format!(
                            "{at}: expected error `{kind}`{}, got `{}`{} ({e})",
                            field
                                .as_ref()
                                .map(|f| format!(" on `{f}`"))
                                .unwrap_or_default(),
                            error_kind(&e),
                            got_field.map(|f| format!(" on `{f}`")).unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The kind of an error as a scenario names it (see [`ERROR_KINDS`]).
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Invalid { .. } => "invalid",
        Error::NotFound { .. } => "not_found",
        Error::AlreadyExists { .. } => "already_exists",
        Error::Conflict { .. } => "conflict",
        Error::MissingRate { .. } => "missing_rate",
        Error::Forbidden { .. } => "forbidden",
        Error::Transition(t) => t.code(),
        Error::Storage { .. } => "storage",
    }
}

/// Replays every scenario of [`SCENARIOS`] on `backend`, each in fresh tenants.
///
/// # Panics
///
/// When a scenario cannot be read or does not replay as it says, naming every such scenario (each stops at its
/// first broken step; the others still run).
pub async fn check_scenarios(backend: &Arc<dyn Backend>) {
    let mut failures = Vec::new();
    for (name, text) in SCENARIOS {
        let outcome = match Scenario::parse(name, text) {
            Ok(s) => s
                .replay(backend)
                .await
                .map_err(|e| format!("{e}\n    (scenario: {})", s.description)),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n  - {}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n  - ")
    );
}

#[cfg(test)]
mod tests;
