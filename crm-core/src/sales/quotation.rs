//! Quotations (the seed's "oferte"): priced lines, taxes per rate, exact totals, states and revisions.
//!
//! # The rounding rule
//! Every amount is exact until it is rounded, and it is rounded once, to the currency's minor unit (2 places for
//! RON and EUR, 0 for JPY, 3 for BHD), half away from zero:
//! - a line's net is `quantity × unit price × (1 − discount % / 100)`, rounded;
//! - each tax rate's tax is `(sum of the rounded nets of the lines at that rate) × percent / 100`, rounded;
//! - the net total is the sum of the line nets, the tax total the sum of the taxes, the total their sum.
//!
//! The arithmetic is done in 128-bit integers of 10⁻⁴ units, so no intermediate step loses a digit; an amount too
//! large for that is a typed error, never a wrong total. [`price`] states the rule in code and the quotation
//! property test in crm-core checks it against a plain decimal calculation.
//!
//! # States
//! `Draft → Sent → Accepted | Declined | Expired`, and a sent (or declined) quotation is **revised** rather than
//! edited: [`revise`] marks it `Superseded` and returns revision n + 1 as a new draft with the same number
//! (`Q-2026-0042/2`), keeping the history.

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::id::{LeadId, PartnerId, ProductId, QuotationId, TenantId};
pub use crate::kinds::QuotationStatus;
use crate::money::{Currency, Money, MONEY_SCALE};
use crate::sales::percent;
use crate::sales::tax::{TaxTable, TAX_PERCENT_SCALE};
use crate::time::{check_business_date, Timestamp};
use crate::validate;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The most lines a quotation may carry.
pub const MAX_LINES: usize = 1_000;
/// The largest quantity of one line.
pub const MAX_QUANTITY: u64 = 1_000_000_000;
/// The most decimal places of a quantity or a discount percent.
pub const QUANTITY_SCALE: u32 = 4;

/// A quotation's number: `Q-{year}-{sequence:04}/{revision}`, the sequence counted per tenant and year.
///
/// ```
/// use crm_core::sales::QuotationNumber;
/// let n: QuotationNumber = "Q-2026-0042/2".parse().unwrap();
/// assert_eq!((n.year, n.sequence, n.revision), (2026, 42, 2));
/// assert_eq!(n.to_string(), "Q-2026-0042/2");
/// assert_eq!(n.next_revision().to_string(), "Q-2026-0042/3");
/// assert!("Q-2026-0042".parse::<QuotationNumber>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotationNumber {
    /// The year of the first revision's issue.
    pub year: i32,
    /// The sequence within the tenant and year, from 1.
    pub sequence: u32,
    /// The revision, from 1.
    pub revision: u32,
}

impl QuotationNumber {
    /// The first revision of a sequence number.
    pub fn first(year: i32, sequence: u32) -> Self {
        Self {
            year,
            sequence,
            revision: 1,
        }
    }

    /// The same number, one revision later.
    pub fn next_revision(self) -> Self {
        Self {
            revision: self.revision.saturating_add(1),
            ..self
        }
    }
}

impl fmt::Display for QuotationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Q-{}-{:04}/{}", self.year, self.sequence, self.revision)
    }
}

impl FromStr for QuotationNumber {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "number",
                format!("`{s}` is not a quotation number like Q-2026-0042/2"),
            )
        };
        let rest = s.trim().strip_prefix("Q-").ok_or_else(bad)?;
        let (year, rest) = rest.split_once('-').ok_or_else(bad)?;
        let (sequence, revision) = rest.split_once('/').ok_or_else(bad)?;
        let n = Self {
            year: year.parse().map_err(|_| bad())?,
            sequence: sequence.parse().map_err(|_| bad())?,
            revision: revision.parse().map_err(|_| bad())?,
        };
        if n.sequence == 0 || n.revision == 0 || !(1900..=2200).contains(&n.year) {
            return Err(bad());
        }
        Ok(n)
    }
}

/// A quotation line as the user enters it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotationLine {
    /// The product, when the line sells one; `None` for free text.
    pub product: Option<ProductId>,
    /// What is offered (required, even with a product: it is what the document prints).
    pub description: String,
    /// How many, above zero, at most [`QUANTITY_SCALE`] decimal places.
    pub quantity: Decimal,
    /// The unit (`buc`, `h`, `kg`).
    pub unit: String,
    /// The price of one unit before discount and tax, in the quotation's currency, not negative.
    pub unit_price: Money,
    /// The discount, 0 to 100 %.
    pub discount_percent: Decimal,
    /// The code of the tax rate (see [`TaxTable`]).
    pub tax: String,
}

impl QuotationLine {
    /// A line of `quantity` × `unit_price` at tax rate `tax`, unit `buc`, no discount.
    pub fn new(description: &str, quantity: Decimal, unit_price: Money, tax: &str) -> Self {
        Self {
            product: None,
            description: description.into(),
            quantity,
            unit: "buc".into(),
            unit_price,
            discount_percent: Decimal::ZERO,
            tax: tax.into(),
        }
    }

    /// Sets the discount percent.
    pub fn discount(mut self, percent: Decimal) -> Self {
        self.discount_percent = percent;
        self
    }

    /// Sets the product.
    pub fn product(mut self, product: ProductId) -> Self {
        self.product = Some(product);
        self
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = unit.into();
        self
    }
}

/// A line with its price worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The line as entered (trimmed).
    pub line: QuotationLine,
    /// Its net amount: quantity × unit price × (1 − discount), rounded to the minor unit.
    pub net: Money,
    /// The percent of its tax rate on the issue day.
    pub tax_percent: Decimal,
}

/// The tax of one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxTotal {
    /// The rate's code.
    pub code: String,
    /// Its label on the issue day.
    pub label: String,
    /// Its percent on the issue day.
    pub percent: Decimal,
    /// The sum of the nets of the lines at this rate.
    pub base: Money,
    /// The tax: base × percent / 100, rounded to the minor unit.
    pub tax: Money,
}

/// A quotation's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotationTotals {
    /// Sum of the line nets.
    pub net: Money,
    /// The taxes, one per rate, by code.
    pub taxes: Vec<TaxTotal>,
    /// Sum of the taxes.
    pub tax: Money,
    /// Net plus tax.
    pub total: Money,
}

const UNIT: i128 = 10_000; // 10^MONEY_SCALE, the scale of prices, quantities and percents here
const PERCENT_ONE_HUNDRED: i128 = 100 * UNIT;

/// `value` as an integer of 10⁻⁴ units, or an error naming `field` when it has more places or is out of range.
fn scaled(field: &str, value: Decimal) -> Result<i128> {
    let mut v = value.normalize();
    if v.scale() > MONEY_SCALE {
        return Err(Error::invalid(
            field,
            format!("{value} has more than {MONEY_SCALE} decimal places"),
        ));
    }
    v.rescale(MONEY_SCALE);
    Ok(v.mantissa())
}

/// `n / d` rounded half away from zero (`d > 0`).
fn div_round(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if 2 * r.abs() >= d {
        q + n.signum()
    } else {
        q
    }
}

fn overflow(field: &str) -> Error {
    Error::invalid(field, "the amount is too large to compute exactly")
}

/// Prices `lines` in `currency` at the rates of `table` in force on `on`: the priced lines and the totals, by the
/// rounding rule of the [module docs](self).
///
/// ```
/// use crm_core::money::{Currency, Money};
/// use crm_core::sales::{QuotationLine, TaxTable, price};
/// use chrono::NaiveDate;
/// use rust_decimal::Decimal;
/// let ron = Currency::parse("RON").unwrap();
/// let lines = vec![
///     QuotationLine::new("Licență", Decimal::from(3), Money::parse("99.99", "RON").unwrap(), "S")
///         .discount(Decimal::from(10)),
///     QuotationLine::new("Carte", Decimal::ONE, Money::parse("50", "RON").unwrap(), "R"),
/// ];
/// let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
/// let (priced, totals) = price(&lines, ron, day, &TaxTable::romania()).unwrap();
/// assert_eq!(priced[0].net.amount(), Decimal::new(26997, 2)); // 3 × 99.99 × 0.9 = 269.973 → 269.97
/// assert_eq!(totals.taxes[0].tax.amount(), Decimal::new(550, 2)); // R: 50 × 11 % = 5.50
/// assert_eq!(totals.taxes[1].tax.amount(), Decimal::new(5669, 2)); // S: 269.97 × 21 % = 56.6937 → 56.69
/// assert_eq!(totals.total.amount(), Decimal::new(38216, 2)); // 319.97 + 62.19
/// ```
///
/// # Errors
/// [`Error::Invalid`] naming the line's field (`lines[2].quantity`, `lines[0].unit_price`, …) and the reason: no
/// lines or more than [`MAX_LINES`], an empty description or unit, a quantity not above zero, above
/// [`MAX_QUANTITY`] or with more than [`QUANTITY_SCALE`] places, a negative price or one in another currency, a
/// discount outside 0..=100, a tax code not in force on `on`, or an amount too large to compute exactly.
pub fn price(
    lines: &[QuotationLine],
    currency: Currency,
    on: NaiveDate,
    table: &TaxTable,
) -> Result<(Vec<PricedLine>, QuotationTotals)> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "lines",
            format!("give 1 to {MAX_LINES} lines"),
        ));
    }
    let minor = 10i128.pow(currency.minor_digits().min(MONEY_SCALE));
    let mut priced = Vec::with_capacity(lines.len());
    // code → (percent, label, base in minor units)
    let mut bases: BTreeMap<String, (Decimal, String, i128)> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let field = |f: &str| format!("lines[{i}].{f}");
        let description = validate::bounded(&field("description"), &l.description, 1_000, true)?;
        let unit = validate::bounded(&field("unit"), &l.unit, 16, true)?;
        if l.quantity <= Decimal::ZERO || l.quantity > Decimal::from(MAX_QUANTITY) {
            return Err(Error::invalid(
                field("quantity"),
                format!("{} is not above 0 and at most {MAX_QUANTITY}", l.quantity),
            ));
        }
        let q = scaled(&field("quantity"), l.quantity)?;
        if l.unit_price.currency() != currency {
            return Err(Error::invalid(
                field("unit_price"),
                format!(
                    "{} is not in the quotation's currency {currency}",
                    l.unit_price
                ),
            ));
        }
        if l.unit_price.is_negative() {
            return Err(Error::invalid(
                field("unit_price"),
                "a price is not negative; use a discount",
            ));
        }
        let p = scaled(&field("unit_price"), l.unit_price.amount())?;
        let d = scaled(
            &field("discount_percent"),
            percent(&field("discount_percent"), l.discount_percent)?,
        )?;
        let rate = table.rate(&l.tax, on).map_err(|e| match e {
            Error::Invalid { reason, .. } => Error::invalid(field("tax"), reason),
            other => other,
        })?;
        // net in minor units = Q·P·(100%−D)·minor / (10^4 · 10^4 · 100%)
        let exact = q
            .checked_mul(p)
            .and_then(|v| v.checked_mul(PERCENT_ONE_HUNDRED - d))
            .and_then(|v| v.checked_mul(minor))
            .ok_or_else(|| overflow(&field("unit_price")))?;
        let net_minor = div_round(exact, UNIT * UNIT * PERCENT_ONE_HUNDRED);
        let net = minor_to_money(&field("unit_price"), net_minor, minor, currency)?;
        let entry = bases
            .entry(rate.code.trim().to_string())
            .or_insert_with(|| (rate.percent, rate.label.clone(), 0));
        entry.2 = entry
            .2
            .checked_add(net_minor)
            .ok_or_else(|| overflow("lines"))?;
        priced.push(PricedLine {
            line: QuotationLine {
                description,
                unit,
                tax: rate.code.trim().to_string(),
                ..l.clone()
            },
            net,
            tax_percent: rate.percent,
        });
    }
    let (mut net_sum, mut tax_sum) = (0i128, 0i128);
    let mut taxes = Vec::with_capacity(bases.len());
    for (code, (percent, label, base)) in bases {
        let t = scaled("tax", percent)?;
        const { assert!(TAX_PERCENT_SCALE <= MONEY_SCALE) };
        let tax = div_round(
            base.checked_mul(t).ok_or_else(|| overflow("lines"))?,
            PERCENT_ONE_HUNDRED,
        );
        net_sum = net_sum.checked_add(base).ok_or_else(|| overflow("lines"))?;
        tax_sum = tax_sum.checked_add(tax).ok_or_else(|| overflow("lines"))?;
        taxes.push(TaxTotal {
            code,
            label,
            percent,
            base: minor_to_money("lines", base, minor, currency)?,
            tax: minor_to_money("lines", tax, minor, currency)?,
        });
    }
    let total = net_sum
        .checked_add(tax_sum)
        .ok_or_else(|| overflow("lines"))?;
    let totals = QuotationTotals {
        net: minor_to_money("lines", net_sum, minor, currency)?,
        taxes,
        tax: minor_to_money("lines", tax_sum, minor, currency)?,
        total: minor_to_money("lines", total, minor, currency)?,
    };
    Ok((priced, totals))
}

fn minor_to_money(field: &str, units: i128, minor: i128, currency: Currency) -> Result<Money> {
    let scale = minor.ilog10();
    let d = Decimal::try_from_i128_with_scale(units, scale).map_err(|_| overflow(field))?;
    Money::new(d, currency).map_err(|_| overflow(field))
}

/// Who answered a quotation, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Who accepted or declined (a user, or the partner's representative in the portal).
    pub by: Actor,
    /// When.
    pub at: Timestamp,
    /// The reason given for a decline.
    pub reason: Option<String>,
}

record! {
    /// A quotation revision.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Quotation {
        /// This revision's id.
        id: QuotationId,
        /// The tenant.
        tenant: TenantId,
        /// Its number (`Q-2026-0042/2`).
        number: QuotationNumber,
        /// The lead it was made for.
        lead: Option<LeadId>,
        /// The partner it is addressed to.
        partner: PartnerId,
        /// Its currency.
        currency: Currency,
        /// The day it was issued (the day whose tax rates priced it).
        issued_on: NaiveDate,
        /// The last day it may be accepted.
        valid_until: NaiveDate,
        /// Its lines, priced.
        lines: Vec<PricedLine> => &[PricedLine] = borrow,
        /// Its totals.
        totals: QuotationTotals => &QuotationTotals = borrow,
        /// Terms and conditions.
        terms: Option<String> => Option<&str> = deref,
        /// Where it stands.
        status: QuotationStatus,
        /// The revision this one replaced.
        supersedes: Option<QuotationId>,
        /// The revision that replaced this one.
        superseded_by: Option<QuotationId>,
        /// Who made it.
        created_by: Actor => &Actor = borrow,
        /// When it was sent.
        sent_at: Option<Timestamp>,
        /// Who accepted or declined it, and when.
        answer: Option<Answer> => Option<&Answer> = as_ref,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it was made.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

/// The terms a quotation is made of: lines, validity and terms (the parts a revision may change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotationTerms {
    /// The lines.
    pub lines: Vec<QuotationLine>,
    /// The last day it may be accepted (not before the issue day).
    pub valid_until: NaiveDate,
    /// Terms and conditions.
    pub terms: Option<String>,
}

/// Input for a new quotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewQuotation {
    /// The lead it is made for.
    pub lead: Option<LeadId>,
    /// The partner it is addressed to.
    pub partner: PartnerId,
    /// Its currency; every line's price is in it.
    pub currency: Currency,
    /// Lines, validity and terms.
    pub terms: QuotationTerms,
}

/// Checks and prices a quotation's terms issued on `issued_on`.
fn priced_terms(
    terms: &QuotationTerms,
    currency: Currency,
    issued_on: NaiveDate,
    table: &TaxTable,
) -> Result<(Vec<PricedLine>, QuotationTotals, Option<String>)> {
    check_business_date("issued_on", issued_on)?;
    check_business_date("valid_until", terms.valid_until)?;
    if terms.valid_until < issued_on {
        return Err(Error::invalid(
            "valid_until",
            format!("{} is before the issue day {issued_on}", terms.valid_until),
        ));
    }
    let text = validate::optional("terms", terms.terms.as_deref(), validate::MAX_TEXT)?;
    let (lines, totals) = price(&terms.lines, currency, issued_on, table)?;
    Ok((lines, totals, text))
}

impl NewQuotation {
    /// Validates and prices the first revision of a quotation numbered `number`, issued on `issued_on`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field: the lines (see [`price`]), `valid_until` before the issue day, `terms`
    /// too long, dates outside the business calendar, or a `number` that is not a first revision.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        self,
        tenant: TenantId,
        id: QuotationId,
        number: QuotationNumber,
        issued_on: NaiveDate,
        table: &TaxTable,
        by: Actor,
        now: Timestamp,
    ) -> Result<Quotation> {
        if number.revision != 1 {
            return Err(Error::invalid("number", "a new quotation is revision 1"));
        }
        let (lines, totals, terms) = priced_terms(&self.terms, self.currency, issued_on, table)?;
        Ok(Quotation {
            id,
            tenant,
            number,
            lead: self.lead,
            partner: self.partner,
            currency: self.currency,
            issued_on,
            valid_until: self.terms.valid_until,
            lines,
            totals,
            terms,
            status: QuotationStatus::Draft,
            supersedes: None,
            superseded_by: None,
            created_by: by,
            sent_at: None,
            answer: None,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }
}

/// What can happen to a quotation revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum QuotationCommand {
    /// Change a draft's lines, validity or terms (re-priced at the rates of `today`, which becomes the issue day).
    Edit(QuotationTerms),
    /// Send a draft to the partner.
    Send,
    /// The partner accepts a sent quotation, on or before its validity date.
    Accept,
    /// The partner declines a sent quotation.
    Decline {
        /// Why, when the partner says.
        reason: Option<String>,
    },
    /// The validity date of a sent quotation has passed (the time rule's command).
    Expire,
}

impl QuotationCommand {
    /// The command's name, as errors and events say it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Edit(_) => "edit",
            Self::Send => "send",
            Self::Accept => "accept",
            Self::Decline { .. } => "decline",
            Self::Expire => "expire",
        }
    }

    fn past(&self) -> &'static str {
        match self {
            Self::Edit(_) => "edited",
            Self::Send => "sent",
            Self::Accept => "accepted",
            Self::Decline { .. } => "declined",
            Self::Expire => "expired",
        }
    }
}

fn refused(q: &Quotation, what: &str) -> Error {
    Error::invalid(
        "status",
        format!(
            "quotation {} is {} and cannot be {what}",
            q.number, q.status
        ),
    )
}

/// Checks that `by` may answer for `q`: a partner's representative answers only that partner's quotations; any
/// other quotation reads as not found to them.
fn check_answerer(q: &Quotation, by: &Actor) -> Result<()> {
    match by {
        Actor::PartnerRepresentative { partner, .. } if *partner != q.partner => {
            Err(Error::not_found("quotation", q.id))
        }
        _ => Ok(()),
    }
}

/// Applies `cmd` to a quotation revision on `today` (the tenant's business day), by `by`, at `now`: the new state
/// (version + 1).
///
/// ```
/// use crm_core::actor::Actor;
/// use crm_core::id::{PartnerId, QuotationId, TenantId, UserId};
/// use crm_core::money::{Currency, Money};
/// use crm_core::sales::*;
/// use chrono::{NaiveDate, Utc};
/// use rust_decimal::Decimal;
/// let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
/// let me = Actor::user(UserId::new());
/// let terms = QuotationTerms {
///     lines: vec![QuotationLine::new("Audit", Decimal::ONE, Money::parse("1000", "RON").unwrap(), "S")],
///     valid_until: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
///     terms: None,
/// };
/// let new = NewQuotation { lead: None, partner: PartnerId::new(), currency: Currency::parse("RON").unwrap(), terms };
/// let table = TaxTable::romania();
/// let q = new
///     .build(TenantId::new(), QuotationId::new(), QuotationNumber::first(2026, 1), day, &table, me.clone(), Utc::now())
///     .unwrap();
/// let sent = apply(&q, QuotationCommand::Send, &table, &me, day, Utc::now()).unwrap();
/// assert_eq!(sent.status(), QuotationStatus::Sent);
/// let late = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
/// assert!(apply(&sent, QuotationCommand::Accept, &table, &me, late, Utc::now()).is_err());
/// let expired = apply(&sent, QuotationCommand::Expire, &table, &me, late, Utc::now()).unwrap();
/// assert_eq!(expired.status(), QuotationStatus::Expired);
/// ```
///
/// # Errors
/// [`Error::Invalid`] on field `status` when the command does not fit the state (editing a sent quotation: revise
/// it; accepting a superseded, expired or unsent one; expiring one still valid), on `valid_until` when accepting
/// after it, or on the edited terms' fields; [`Error::NotFound`] when a representative of another partner answers.
pub fn apply(
    q: &Quotation,
    cmd: QuotationCommand,
    table: &TaxTable,
    by: &Actor,
    today: NaiveDate,
    now: Timestamp,
) -> Result<Quotation> {
    use QuotationStatus::*;
    let mut next = q.clone();
    match (&cmd, q.status) {
        (QuotationCommand::Edit(terms), Draft) => {
            let (lines, totals, text) = priced_terms(terms, q.currency, today, table)?;
            next.lines = lines;
            next.totals = totals;
            next.terms = text;
            next.issued_on = today;
            next.valid_until = terms.valid_until;
        }
        (QuotationCommand::Send, Draft) => {
            if q.valid_until < today {
                return Err(Error::invalid(
                    "valid_until",
                    format!(
                        "{} has passed; edit the validity before sending",
                        q.valid_until
                    ),
                ));
            }
            next.status = Sent;
            next.sent_at = Some(now);
        }
        (QuotationCommand::Accept | QuotationCommand::Decline { .. }, Sent) => {
            check_answerer(q, by)?;
            let reason = match &cmd {
                QuotationCommand::Decline { reason } => {
                    validate::optional("reason", reason.as_deref(), validate::MAX_TEXT)?
                }
                _ => None,
            };
            if matches!(cmd, QuotationCommand::Accept) && today > q.valid_until {
                return Err(Error::invalid(
                    "valid_until",
                    format!("quotation {} expired on {}", q.number, q.valid_until),
                ));
            }
            next.status = if matches!(cmd, QuotationCommand::Accept) {
                Accepted
            } else {
                Declined
            };
            next.answer = Some(Answer {
                by: by.clone(),
                at: now,
                reason,
            });
        }
        (QuotationCommand::Expire, Sent) if today > q.valid_until => next.status = Expired,
        (QuotationCommand::Expire, Sent) => {
            return Err(Error::invalid(
                "valid_until",
                format!("quotation {} is valid until {}", q.number, q.valid_until),
            ));
        }
        (QuotationCommand::Edit(_), Sent | Declined) => {
            return Err(refused(q, "edited; revise it"))
        }
        (cmd, _) => return Err(refused(q, cmd.past())),
    }
    next.version = q.version + 1;
    next.updated_at = now;
    Ok(next)
}

/// Revises a sent or declined quotation: the old revision becomes `Superseded` (version + 1) and the new one, `id`,
/// is revision n + 1 of the same number, a draft issued on `today` with `terms`.
///
/// # Errors
/// [`Error::Invalid`] on `status` when the quotation is a draft (edit it instead), accepted, expired or already
/// superseded; on the terms' fields as for a new quotation.
pub fn revise(
    q: &Quotation,
    terms: &QuotationTerms,
    id: QuotationId,
    table: &TaxTable,
    by: Actor,
    today: NaiveDate,
    now: Timestamp,
) -> Result<(Quotation, Quotation)> {
    match q.status {
        QuotationStatus::Sent | QuotationStatus::Declined => {}
        QuotationStatus::Draft => return Err(refused(q, "revised; edit the draft")),
        _ => return Err(refused(q, "revised")),
    }
    let priced = priced_terms(terms, q.currency, today, table)?;
    let mut old = q.clone();
    old.status = QuotationStatus::Superseded;
    old.superseded_by = Some(id);
    old.version = q.version + 1;
    old.updated_at = now;
    // The next revision keeps the parties and the currency; everything else starts afresh.
    let (lines, totals, text) = priced;
    let mut new = q.clone();
    new.id = id;
    new.number = q.number.next_revision();
    new.issued_on = today;
    new.valid_until = terms.valid_until;
    (new.lines, new.totals, new.terms) = (lines, totals, text);
    new.status = QuotationStatus::Draft;
    new.supersedes = Some(q.id);
    (new.superseded_by, new.sent_at, new.answer) = (None, None, None);
    new.created_by = by;
    new.version = 1;
    (new.created_at, new.updated_at) = (now, now);
    Ok((old, new))
}

/// The largest PDF a quotation e-mail carries.
pub const MAX_PDF_BYTES: usize = 10 * 1024 * 1024;

/// The e-mail a quotation is sent with: to whom, what it says, and its PDF (rendered by the host, for example with
/// `crm::pdf::QuotationPdf`, so the core stays free of typesetting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotationMail {
    /// The recipient's name.
    pub to_name: String,
    /// The recipient's address.
    pub to_email: String,
    /// The subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// The quotation as a PDF (`%PDF-…`, at most [`MAX_PDF_BYTES`]).
    pub pdf: Vec<u8>,
}

impl QuotationMail {
    /// Checks the mail: the address, a non-empty subject, and a PDF within the size limit.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `to_email`, `to_name`, `subject`, `body` or `pdf` and the reason.
    pub fn check(&self) -> Result<()> {
        validate::email("to_email", &self.to_email)?;
        validate::name("to_name", &self.to_name)?;
        validate::name("subject", &self.subject)?;
        validate::bounded("body", &self.body, validate::MAX_TEXT, false)?;
        let problem = if !self.pdf.starts_with(b"%PDF-") {
            Some("is not a PDF (it does not start with %PDF-)".to_string())
        } else if self.pdf.len() > MAX_PDF_BYTES {
            Some(format!(
                "is {} bytes; at most {MAX_PDF_BYTES} are sent",
                self.pdf.len()
            ))
        } else {
            None
        };
        problem.map_or(Ok(()), |reason| Err(Error::invalid("pdf", reason)))
    }
}
