//! The scenario file format: what a `.toml` file under `crm-core/testdata/scenarios/` may say.
//!
//! Every table refuses keys it does not know, so a misspelt key is an error when the file is read, never a step
//! that silently checks less. The variants of [`Op`] are the operations; their fields are the keys of a step.

use crate::commerce::{Channel, Criteria, DocumentKind, GroupBy, PaymentDirection};
use crate::event::RequestStatus;
use crate::lead::StatusKind;
use crate::partner::PartnerRole;
use crate::pipeline::{MovePolicy, Requirement};
use crate::time::Timestamp;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::str::FromStr;

/// The head of a scenario file and its raw steps (each step is then read by [`Step::from_table`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// What the scenario shows (printed when it fails).
    pub description: String,
    /// When the scenario's clock starts; 2026-03-02T09:00:00Z when absent.
    pub start: Option<Instant>,
    /// The commerce service's reporting currency; RON when absent.
    pub reporting: Option<String>,
    /// The steps, in order, each with its place in the file.
    pub step: Vec<toml::Spanned<toml::Table>>,
}

/// One step: an operation, the tenant and user it acts as, and what it must return.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The line of the step's `[[step]]` header.
    pub line: usize,
    /// The label of the tenant it acts in (`tenant = "…"`; `main` when absent). Each label is a fresh random
    /// tenant with the seed pipeline and lost reasons.
    pub tenant: String,
    /// The label of the user who acts (`user = "…"`; `agent` when absent). Each label is a fresh user id.
    pub user: String,
    /// What the operation must return.
    pub expect: Expect,
    /// The operation.
    pub op: Op,
    /// The step as written, on one line (`op` first), for messages.
    pub source: String,
}

/// What a step's operation must return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Success (no `error` key).
    Ok,
    /// An error of a kind (`error = "…"`), on a field when `field = "…"` is given.
    Error {
        /// One of [`ERROR_KINDS`].
        kind: String,
        /// The field an `invalid` error names.
        field: Option<String>,
    },
}

/// The error kinds a step may expect: the [`crate::Error`] variants, and for [`crate::Error::Transition`] the
/// broken rule's [`code`](crate::lead::TransitionError::code).
pub const ERROR_KINDS: &[&str] = &[
    "invalid",
    "not_found",
    "already_exists",
    "conflict",
    "missing_rate",
    "forbidden",
    "storage",
    "not_open",
    "already_open",
    "unknown_stage",
    "same_stage",
    "illegal_move",
    "unmet_requirement",
    "missing_lost_reason",
    "unknown_lost_reason",
    "no_won_stage",
    "reopen_into_won_stage",
    "refused_by_rule",
];

impl Step {
    /// Reads one `[[step]]` table: the common keys (`tenant`, `user`, `error`, `field`), then the rest as an
    /// [`Op`] named by its `op` key.
    ///
    /// # Errors
    ///
    /// A message naming the unknown operation, the unknown or missing key, or the bad value.
    pub fn from_table(line: usize, mut t: toml::Table) -> Result<Step, String> {
        let source = t
            .get_key_value("op")
            .into_iter()
            .chain(t.iter().filter(|(k, _)| *k != "op"))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut text = |key: &str| -> Result<Option<String>, String> {
            match t.remove(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s)),
                Some(v) => Err(format!("`{key}` must be a string, not {v}")),
            }
        };
        let tenant = text("tenant")?.unwrap_or_else(|| "main".into());
        let user = text("user")?.unwrap_or_else(|| "agent".into());
        let expect = match (text("error")?, text("field")?) {
            (None, None) => Expect::Ok,
            (None, Some(_)) => return Err("`field` needs `error = \"invalid\"`".into()),
            (Some(kind), field) => {
                if !ERROR_KINDS.contains(&kind.as_str()) {
                    return Err(format!(
                        "unknown error kind `{kind}`, expected one of {ERROR_KINDS:?}"
                    ));
                }
                if field.is_some() && kind != "invalid" {
                    return Err(format!(
                        "`field` goes with `error = \"invalid\"`, not `{kind}`"
                    ));
                }
                Expect::Error { kind, field }
            }
        };
        let op = Op::deserialize(toml::Value::Table(t)).map_err(|e| e.to_string())?;
        Ok(Step {
            line,
            tenant,
            user,
            expect,
            op,
            source,
        })
    }
}

/// A day: a TOML local date (`2026-03-01`) or a string of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub NaiveDate);

/// A moment: a TOML offset date-time (`2026-03-02T09:00:00Z`) or a string of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub Timestamp);

/// An exact amount: a string (`"12.50"`) or an integer (`12`); never a TOML float, which is not exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Decimal);

/// The text of a scalar TOML value (strings, dates and integers), for the newtypes above.
fn scalar<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(s),
        toml::Value::Datetime(t) => Ok(t.to_string()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        v => Err(serde::de::Error::custom(format!(
            "expected {what}, found {v}"
        ))),
    }
}

fn parsed<'de, D: Deserializer<'de>, T, E: std::fmt::Display>(
    d: D,
    what: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, D::Error> {
    let s = scalar(d, what)?;
    parse(&s).map_err(|e| serde::de::Error::custom(format!("`{s}` is not {what}: {e}")))
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, "a date (YYYY-MM-DD)", NaiveDate::from_str).map(Day)
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, "an RFC 3339 date-time", |s| {
            chrono::DateTime::parse_from_rfc3339(s).map(|t| t.to_utc())
        })
        .map(Instant)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, "an exact decimal amount", Decimal::from_str).map(Amount)
    }
}

/// A stage of a new pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Its name.
    pub name: String,
    /// Its probability (ignored for a won stage, which is 100).
    #[serde(default)]
    pub probability: u8,
    /// Whether it is the won stage.
    #[serde(default)]
    pub won: bool,
    /// What a lead needs to enter it (the [`Requirement`] serde form, e.g.
    /// `{ type = "field", field = "expected_revenue" }`).
    #[serde(default)]
    pub requires: Vec<Requirement>,
}

/// A line of a document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSpec {
    /// The product's label.
    pub product: String,
    /// Quantity.
    pub qty: Amount,
    /// Unit price in the document's currency.
    pub price: Amount,
    /// Unit cost in the document's currency (0 when absent).
    pub cost: Option<Amount>,
    /// Discount percentage (0 when absent).
    pub discount: Option<Amount>,
}

/// A payment's allocation to an invoice or bill.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationSpec {
    /// The settled document's number.
    pub number: String,
    /// The amount allocated.
    pub amount: Amount,
}

/// An expected open item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenItemSpec {
    /// The document's number.
    pub number: String,
    /// What is still open.
    pub open: Amount,
    /// Days overdue (not compared when absent).
    pub days_overdue: Option<i64>,
}

/// An expected balance in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSpec {
    /// The ISO currency code.
    pub currency: String,
    /// Receivable.
    pub receivable: Amount,
    /// Payable.
    pub payable: Amount,
    /// Overdue.
    pub overdue: Amount,
}

/// An expected profitability row.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfitRowSpec {
    /// The group's key: a partner, campaign or user label (for the groupings keyed by id) or the literal key; no
    /// key for the rows of documents without one.
    pub key: Option<String>,
    /// Revenue in the reporting currency.
    pub revenue: Amount,
    /// Cost of goods.
    pub cost: Amount,
    /// Gross profit.
    pub gross_profit: Amount,
    /// Invoices counted (credit notes are not).
    pub invoices: u64,
}

/// How a recorded document must have been taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedSpec {
    /// New.
    Inserted,
    /// Replaced a stored version.
    Replaced,
    /// Identical to the stored one: nothing written.
    Unchanged,
}

/// A call outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeSpec {
    /// Nobody answered.
    NoAnswer,
    /// Call again later (`call_back_in_hours`).
    CallBack,
    /// Interested: a lead is entered.
    Interested,
    /// Not interested.
    NotInterested,
    /// Wrong number or person.
    WrongContact,
}

/// The operations a step may run, named by its `op` key. Actions go through [`crate::service::CrmService`] and
/// [`crate::service::CommerceService`]; `check_*` read through them and compare. Records are named by labels
/// (`partner = "acme"`): the step that creates one gives the label, later steps use it in any tenant (another
/// tenant's label is how a scenario reaches across tenants). An optional `version` is the version the caller
/// claims to have; when absent, the current one is read first.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Advances the clock.
    Tick {
        /// Minutes.
        #[serde(default)]
        minutes: i64,
        /// Hours.
        #[serde(default)]
        hours: i64,
        /// Days.
        #[serde(default)]
        days: i64,
    },
    /// Creates a pipeline; its label is its name.
    Pipeline {
        /// The name.
        pipeline: String,
        /// The stages in order.
        stages: Vec<StageSpec>,
        /// The move policy (free when absent).
        #[serde(default)]
        policy: MovePolicy,
    },
    /// Adds a lost reason.
    LostReason {
        /// Its name.
        name: String,
    },
    /// Creates a company partner (a customer).
    Partner {
        /// The label.
        partner: String,
        /// The name (the label when absent).
        name: Option<String>,
        /// Tax id.
        tax_id: Option<String>,
        /// A contact's e-mail.
        email: Option<String>,
        /// Group.
        group: Option<String>,
        /// Industry name.
        industry: Option<String>,
        /// Billing city (with `country`).
        city: Option<String>,
        /// Billing country.
        country: Option<String>,
        /// The owner's user label.
        owner: Option<String>,
        /// A role besides customer.
        role: Option<PartnerRole>,
        /// Labels of the partners the service must report as likely duplicates.
        duplicates: Option<Vec<String>>,
    },
    /// Changes a partner's fields.
    EditPartner {
        /// The partner.
        partner: String,
        /// New name.
        name: Option<String>,
        /// New group.
        group: Option<String>,
        /// New tax id.
        tax_id: Option<String>,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Enters a lead for an existing partner.
    Lead {
        /// The label.
        lead: String,
        /// The partner's label.
        partner: String,
        /// The title (the label when absent).
        title: Option<String>,
        /// Expected revenue, `"12000 EUR"`.
        revenue: Option<String>,
        /// Probability.
        probability: Option<u8>,
        /// The pipeline's name (the default pipeline when absent).
        pipeline: Option<String>,
        /// The starting stage's name.
        stage: Option<String>,
        /// The owner's user label.
        owner: Option<String>,
        /// Tags.
        #[serde(default)]
        tags: Vec<String>,
    },
    /// Moves a lead to a stage (by name, in the lead's pipeline).
    Move {
        /// The lead.
        lead: String,
        /// The stage's name.
        stage: String,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Wins a lead.
    Win {
        /// The lead.
        lead: String,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Loses a lead.
    Lose {
        /// The lead.
        lead: String,
        /// The lost reason's name (a name the tenant does not have gives an unknown reason id).
        reason: Option<String>,
        /// The competitor who won.
        competitor: Option<String>,
        /// A note.
        note: Option<String>,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Reopens a won or lost lead.
    Reopen {
        /// The lead.
        lead: String,
        /// The stage to reopen into (the last open one when absent).
        stage: Option<String>,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Edits a lead's fields.
    EditLead {
        /// The lead.
        lead: String,
        /// New title.
        title: Option<String>,
        /// New expected revenue, `"12000 EUR"` (`""` clears it).
        revenue: Option<String>,
        /// New probability.
        probability: Option<u8>,
        /// New tags.
        tags: Option<Vec<String>>,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Opens a request on a lead or a partner.
    Request {
        /// The label.
        request: String,
        /// The lead's label.
        lead: Option<String>,
        /// The partner's label.
        partner: Option<String>,
        /// The title (the label when absent).
        title: Option<String>,
        /// Its kind (a tag, e.g. `quotation`).
        kind: Option<String>,
        /// The assignee's user label (the acting user when absent; `""` for none).
        assignee: Option<String>,
        /// Due this many hours from now (negative: in the past).
        due_in_hours: Option<i64>,
    },
    /// Changes a request's status.
    RequestStatus {
        /// The request.
        request: String,
        /// The new status.
        status: RequestStatus,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Comments on a lead, partner or request (exactly one).
    Comment {
        /// On a lead.
        lead: Option<String>,
        /// On a partner.
        partner: Option<String>,
        /// On a request.
        request: Option<String>,
        /// The text.
        body: String,
    },
    /// Records a product category; its code is the label.
    Category {
        /// The label and code.
        category: String,
        /// The name (the label when absent).
        name: Option<String>,
    },
    /// Records a product; its code is the label.
    Product {
        /// The label and code.
        product: String,
        /// The name (the label when absent).
        name: Option<String>,
        /// The category's label.
        category: Option<String>,
    },
    /// Records an exchange rate.
    Rate {
        /// From currency.
        from: String,
        /// To currency.
        to: String,
        /// The day.
        on: Day,
        /// Units of `to` per unit of `from`.
        rate: Amount,
    },
    /// Records (or replaces, by kind and number) an invoice, credit note, vendor bill or payment.
    Document {
        /// The kind.
        kind: DocumentKind,
        /// The host's number.
        number: String,
        /// The partner's label.
        partner: String,
        /// Issue date.
        date: Day,
        /// Due date.
        due: Option<Day>,
        /// The ISO currency code.
        currency: String,
        /// The lines (none for a payment).
        #[serde(default)]
        lines: Vec<LineSpec>,
        /// The campaign's label it is attributed to.
        campaign: Option<String>,
        /// The invoice number a credit note corrects.
        corrects: Option<String>,
        /// A payment's direction (a payment needs one).
        direction: Option<PaymentDirection>,
        /// A payment's amount.
        amount: Option<Amount>,
        /// A payment's allocations.
        #[serde(default)]
        allocations: Vec<AllocationSpec>,
        /// The stored version a replacement claims.
        version: Option<u64>,
        /// How it must have been taken.
        recorded: Option<RecordedSpec>,
    },
    /// Creates a campaign.
    Campaign {
        /// The label.
        campaign: String,
        /// The name (the label when absent).
        name: Option<String>,
        /// The channel.
        channel: Channel,
        /// First day.
        from: Day,
        /// Last day.
        to: Day,
        /// The owner's user label (the acting user when absent).
        owner: Option<String>,
        /// The agents' user labels.
        #[serde(default)]
        agents: Vec<String>,
        /// Budget, `"1000 RON"`.
        budget: Option<String>,
        /// The call script.
        script: Option<String>,
        /// The target segment (the [`Criteria`] serde form; dates inside it are quoted strings).
        criteria: Option<Criteria>,
    },
    /// Adds a campaign cost.
    CampaignCost {
        /// The campaign.
        campaign: String,
        /// The day.
        date: Day,
        /// The amount, `"100 RON"`.
        amount: String,
        /// A note.
        note: Option<String>,
    },
    /// Launches a campaign: its audience snapshot and call list.
    Launch {
        /// The campaign.
        campaign: String,
        /// How many targets the launch must create.
        targets: Option<usize>,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Records the outcome of the call to a target, as the agent the call is assigned to.
    CallOutcome {
        /// The campaign.
        campaign: String,
        /// The target partner.
        partner: String,
        /// The outcome.
        outcome: OutcomeSpec,
        /// For `call_back`: when, in hours from now.
        call_back_in_hours: Option<i64>,
        /// A label for the lead an `interested` outcome enters.
        lead: Option<String>,
    },
    /// Closes a campaign.
    CloseCampaign {
        /// The campaign.
        campaign: String,
        /// Claimed version.
        version: Option<u64>,
    },
    /// Reads a lead and compares the given fields.
    CheckLead {
        /// The lead.
        lead: String,
        /// Status.
        status: Option<StatusKind>,
        /// Stage name.
        stage: Option<String>,
        /// Probability.
        probability: Option<u8>,
        /// Version.
        version: Option<u64>,
        /// Title.
        title: Option<String>,
        /// Expected revenue, `"12000 EUR"` (`""`: none).
        revenue: Option<String>,
        /// The lost reason's name.
        lost_reason: Option<String>,
        /// The source campaign's label.
        campaign: Option<String>,
    },
    /// Reads a partner and compares the given fields.
    CheckPartner {
        /// The partner.
        partner: String,
        /// Name.
        name: Option<String>,
        /// Group.
        group: Option<String>,
        /// Version.
        version: Option<u64>,
    },
    /// Reads a request and compares the given fields.
    CheckRequest {
        /// The request.
        request: String,
        /// Status.
        status: Option<RequestStatus>,
        /// Version.
        version: Option<u64>,
        /// The assignee's user label.
        assignee: Option<String>,
    },
    /// Reads a timeline (newest first) of a lead, partner or request (exactly one).
    CheckTimeline {
        /// Of a lead.
        lead: Option<String>,
        /// Of a partner.
        partner: Option<String>,
        /// Of a request.
        request: Option<String>,
        /// The event kinds' names, newest first.
        kinds: Option<Vec<String>>,
        /// How many events.
        count: Option<usize>,
    },
    /// Reads the comments (newest first) on a lead, partner or request (exactly one).
    CheckComments {
        /// On a lead.
        lead: Option<String>,
        /// On a partner.
        partner: Option<String>,
        /// On a request.
        request: Option<String>,
        /// The bodies, newest first.
        bodies: Vec<String>,
    },
    /// Reads a lead's stage history: `[stage name, status]` per step, oldest first.
    CheckHistory {
        /// The lead.
        lead: String,
        /// The steps.
        steps: Vec<(String, StatusKind)>,
    },
    /// Reads a pipeline's funnel over all time.
    CheckFunnel {
        /// The pipeline's name (the default one when absent).
        pipeline: Option<String>,
        /// Distinct leads that entered each stage, in stage order.
        reached: Vec<u64>,
        /// Leads won.
        won: u64,
        /// Leads lost.
        lost: u64,
    },
    /// Reads a pipeline's board.
    CheckBoard {
        /// The pipeline's name (the default one when absent).
        pipeline: Option<String>,
        /// Leads per column, in stage order.
        counts: Vec<u64>,
    },
    /// Queries leads (newest first) and compares their titles.
    CheckLeads {
        /// Status filter.
        status: Option<StatusKind>,
        /// Partner filter (a label).
        partner: Option<String>,
        /// Tag filter.
        tag: Option<String>,
        /// Text filter.
        text: Option<String>,
        /// The titles, newest first.
        titles: Vec<String>,
    },
    /// Reads a document by kind and number.
    CheckDocument {
        /// The kind.
        kind: DocumentKind,
        /// The number.
        number: String,
        /// Version.
        version: Option<u64>,
        /// Total in the document's currency.
        total: Option<Amount>,
        /// The campaign's label it is attributed to (`""`: none).
        campaign: Option<String>,
        /// How many lines.
        lines: Option<usize>,
    },
    /// Reads a partner's open items.
    CheckOpenItems {
        /// The partner.
        partner: String,
        /// On this day (today when absent).
        as_of: Option<Day>,
        /// The items, in the service's order (by due date).
        items: Vec<OpenItemSpec>,
    },
    /// Reads a partner's balances.
    CheckBalances {
        /// The partner.
        partner: String,
        /// On this day (today when absent).
        as_of: Option<Day>,
        /// Per currency, by code.
        balances: Vec<BalanceSpec>,
    },
    /// Reads the profitability report.
    CheckProfit {
        /// First day.
        from: Day,
        /// Last day.
        to: Day,
        /// The grouping.
        group_by: GroupBy,
        /// Only the `top` groups by gross profit, largest first.
        top: Option<u32>,
        /// The rows, in the report's order: by key (the row without a key first), or by gross profit with `top`.
        rows: Vec<ProfitRowSpec>,
    },
    /// Previews a segment.
    CheckSegment {
        /// The criteria (the [`Criteria`] serde form).
        criteria: Criteria,
        /// The member partners' labels (any order).
        partners: Vec<String>,
    },
    /// Reads a campaign and its report (over all time, or `from`..=`to`).
    CheckCampaign {
        /// The campaign.
        campaign: String,
        /// The report's first day.
        from: Option<Day>,
        /// The report's last day.
        to: Option<Day>,
        /// Status (`draft`, `active`, `closed`).
        status: Option<String>,
        /// Targets.
        targets: Option<u64>,
        /// Reached.
        reached: Option<u64>,
        /// Interested.
        interested: Option<u64>,
        /// Leads.
        leads: Option<u64>,
        /// Won.
        won: Option<u64>,
        /// Invoiced customers.
        invoiced_customers: Option<u64>,
        /// Revenue.
        revenue: Option<Amount>,
        /// Cost of goods.
        cost_of_goods: Option<Amount>,
        /// Gross profit.
        gross_profit: Option<Amount>,
        /// Campaign cost.
        campaign_cost: Option<Amount>,
        /// Net profit.
        net_profit: Option<Amount>,
        /// Return on the campaign cost, percent (`""`: none).
        roi_pct: Option<String>,
    },
    /// Reads a campaign's progress in total.
    CheckProgress {
        /// The campaign.
        campaign: String,
        /// Targets.
        targets: u64,
        /// Done (a final outcome).
        done: u64,
        /// Remaining.
        remaining: u64,
    },
}
