//! Commercial documents the host records when it issues them: sales invoices, credit notes, vendor bills and
//! payments.
//!
//! Recording is idempotent by the host's number (unique per tenant and [`DocumentKind`]): the same document again
//! is a no-op, a changed one must name the version it replaces and then replaces it whole, so nothing is ever
//! counted twice. Every document is converted into the tenant's reporting currency at its issue date when it is
//! recorded; the [`AppliedRate`] and the converted integer amounts are stored with it, so reports are plain integer
//! sums in the database.
//!
//! **Sign rule.** A credit note always *reverses*: each of its lines reduces revenue, cost of goods and bought
//! quantity by the line's absolute amount, whether the host prints it with positive quantities or as a storno with
//! negative ones. That is also why negative quantities are accepted only on credit notes.

use super::product::{code, decide_replace, Product, Recorded};
use super::rate::AppliedRate;
use crate::error::{Error, Result};
use crate::id::{CampaignId, CategoryId, DocumentId, PartnerId, ProductId, TenantId, UserId};
pub use crate::kinds::{DocumentKind, PaymentDirection};
use crate::money::{decimal_to_units, Currency, Money, MONEY_SCALE};
use crate::partner::{LocationKind, Partner};
use crate::time::Timestamp;
use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most lines a document may have.
pub const MAX_LINES: usize = 1000;

/// A line as the host gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLine {
    /// The product (recorded before).
    pub product: ProductId,
    /// Quantity (not zero; negative only on credit notes), at most 4 decimal places.
    pub quantity: Decimal,
    /// Unit price in the document's currency, before discount (not negative).
    pub unit_price: Decimal,
    /// Discount in percent, 0–100.
    #[serde(default)]
    pub discount_pct: Decimal,
    /// The host's cost of goods per unit, in the document's currency (not negative).
    #[serde(default)]
    pub unit_cost: Decimal,
}

impl NewLine {
    /// A line without discount.
    pub fn new(
        product: ProductId,
        quantity: Decimal,
        unit_price: Decimal,
        unit_cost: Decimal,
    ) -> Self {
        Self {
            product,
            quantity,
            unit_price,
            discount_pct: Decimal::ZERO,
            unit_cost,
        }
    }
}

/// A recorded line, with its computed amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product.
    pub product: ProductId,
    /// The product's category when the document was recorded.
    pub category: Option<CategoryId>,
    /// Quantity as given.
    pub quantity: Decimal,
    /// Unit price as given.
    pub unit_price: Decimal,
    /// Discount in percent as given.
    pub discount_pct: Decimal,
    /// Unit cost as given.
    pub unit_cost: Decimal,
    /// |quantity| × unit price × (1 − discount), rounded half away from zero to the currency's minor unit.
    pub net: Decimal,
    /// |quantity| × unit cost, rounded the same way.
    pub cost: Decimal,
    /// Signed revenue effect in reporting-currency units (10^-4): + on invoices, − on credit notes, 0 otherwise.
    pub revenue_units: i64,
    /// Signed cost-of-goods effect in reporting-currency units.
    pub cost_units: i64,
    /// Signed bought-quantity effect in 10^-4 units (+ invoices, − credit notes, 0 otherwise).
    pub quantity_units: i64,
}

/// Part of a payment settling one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The number of the settled invoice (payment received) or vendor bill (payment sent).
    pub number: String,
    /// The amount settled, in the payment's currency (which must be the document's).
    pub amount: Decimal,
}

/// The partner's reporting attributes when the document was recorded: profitability groups by these, so history
/// does not shift when a partner later moves group or owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerAttrs {
    /// Partner group.
    pub group: Option<String>,
    /// Industry name.
    pub industry: Option<String>,
    /// Account owner.
    pub owner: Option<UserId>,
    /// Country of the primary location (the first billing location, else the first location).
    pub country: Option<String>,
    /// Region of the primary location.
    pub region: Option<String>,
    /// City of the primary location.
    pub city: Option<String>,
}

impl PartnerAttrs {
    /// The attributes of a partner now.
    pub fn of(p: &Partner) -> Self {
        let loc = p
            .locations
            .iter()
            .find(|l| l.kind == LocationKind::Billing)
            .or(p.locations.first());
        Self {
            group: p.group.clone(),
            industry: p.industry.as_ref().map(|i| i.name.clone()),
            owner: p.owner,
            country: loc.map(|l| l.country.clone()),
            region: loc.and_then(|l| l.region.clone()),
            city: loc.and_then(|l| l.city.clone()),
        }
    }
}

/// A document as the host gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDocument {
    /// What it is.
    pub kind: DocumentKind,
    /// The host's number, unique per tenant and kind.
    pub number: String,
    /// The partner (of this tenant).
    pub partner: PartnerId,
    /// Issue date: the date of conversion into the reporting currency.
    pub issue_date: NaiveDate,
    /// Due date (invoices and bills), not before the issue date.
    pub due_date: Option<NaiveDate>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Lines (invoices, credit notes and bills; none on payments).
    pub lines: Vec<NewLine>,
    /// The campaign the sale belongs to (invoices and credit notes).
    pub campaign: Option<CampaignId>,
    /// The invoice a credit note corrects; its campaign is inherited when none is given.
    pub corrects: Option<String>,
    /// A payment's direction.
    pub direction: Option<PaymentDirection>,
    /// A payment's amount (positive).
    pub amount: Option<Decimal>,
    /// What a payment settles.
    pub allocations: Vec<Allocation>,
    /// When the host changes a recorded document: the version it replaces.
    pub version: Option<u64>,
    /// The day the contract this document belongs to renews (invoices and vendor bills the host marks as a
    /// contract's): the `contract_renewal_due:N` timer fires N days before it. Not before the issue date.
    #[serde(default)]
    pub renews_on: Option<NaiveDate>,
}

/// Defines the constructors of the documents with lines, which differ only in their kind.
macro_rules! with_lines {
    ($($(#[doc = $doc:expr])* $method:ident: $kind:ident;)+) => {$(
        $(#[doc = $doc])*
        pub fn $method(
            number: &str,
            partner: PartnerId,
            issue_date: NaiveDate,
            currency: &str,
            lines: Vec<NewLine>,
        ) -> Self {
            let kind = DocumentKind::$kind;
            Self { lines, ..Self::of_kind(kind, number, partner, issue_date, currency) }
        }
    )+};
}

impl NewDocument {
    with_lines! {
        /// An invoice with lines, in a currency, with nothing else set.
        invoice: Invoice;
        /// A credit note with lines.
        credit_note: CreditNote;
        /// A vendor bill with lines.
        vendor_bill: VendorBill;
    }

    /// A payment.
    pub fn payment(
        number: &str,
        partner: PartnerId,
        issue_date: NaiveDate,
        currency: &str,
        direction: PaymentDirection,
        amount: Decimal,
    ) -> Self {
        Self {
            direction: Some(direction),
            amount: Some(amount),
            ..Self::of_kind(DocumentKind::Payment, number, partner, issue_date, currency)
        }
    }

    /// A document of `kind` with nothing but its number, partner, issue date and currency set.
    fn of_kind(
        kind: DocumentKind,
        number: &str,
        partner: PartnerId,
        issue_date: NaiveDate,
        currency: &str,
    ) -> Self {
        Self {
            kind,
            number: number.into(),
            partner,
            issue_date,
            due_date: None,
            currency: currency.into(),
            lines: Vec::new(),
            campaign: None,
            corrects: None,
            direction: None,
            amount: None,
            allocations: Vec::new(),
            version: None,
            renews_on: None,
        }
    }

    /// Marks the document as a contract's that renews on `d` (see [`NewDocument::renews_on`]).
    pub fn renewing_on(mut self, d: NaiveDate) -> Self {
        self.renews_on = Some(d);
        self
    }

    /// Sets the due date.
    pub fn due(mut self, d: NaiveDate) -> Self {
        self.due_date = Some(d);
        self
    }

    /// Sets the campaign.
    pub fn with_campaign(mut self, c: CampaignId) -> Self {
        self.campaign = Some(c);
        self
    }

    /// Checks everything that needs no lookup, returning the trimmed number and the currency.
    pub fn check_shape(&self) -> Result<(String, Currency)> {
        let number = code("number", &self.number)?;
        let currency = Currency::parse(self.currency.trim())?;
        crate::time::check_business_date("issue_date", self.issue_date)?;
        if let Some(due) = self.due_date {
            crate::time::check_business_date("due_date", due)?;
            if due < self.issue_date {
                return Err(Error::invalid(
                    "due_date",
                    format!("{due} is before the issue date {}", self.issue_date),
                ));
            }
        }
        if let Some(renews) = self.renews_on {
            crate::time::check_business_date("renews_on", renews)?;
            if !matches!(self.kind, DocumentKind::Invoice | DocumentKind::VendorBill) {
                return Err(Error::invalid(
                    "renews_on",
                    "only invoices and vendor bills belong to a contract that renews",
                ));
            }
            if renews < self.issue_date {
                return Err(Error::invalid(
                    "renews_on",
                    format!("{renews} is before the issue date {}", self.issue_date),
                ));
            }
        }
        if self.kind.has_lines() {
            if self.lines.is_empty() {
                return Err(Error::invalid(
                    "lines",
                    format!("a {} needs at least one line", self.kind.as_str()),
                ));
            }
            if self.lines.len() > MAX_LINES {
                return Err(Error::invalid(
                    "lines",
                    format!("at most {MAX_LINES} lines are allowed"),
                ));
            }
            if self.direction.is_some() || self.amount.is_some() || !self.allocations.is_empty() {
                return Err(Error::invalid(
                    "amount",
                    "only payments have a direction, an amount and allocations; other documents total their lines",
                ));
            }
        } else {
            if !self.lines.is_empty() {
                return Err(Error::invalid("lines", "a payment has no lines"));
            }
            if self.direction.is_none() {
                return Err(Error::invalid(
                    "direction",
                    "a payment is received or sent: say which",
                ));
            }
            let amount = self
                .amount
                .ok_or_else(|| Error::invalid("amount", "a payment needs its amount"))?;
            check_amount("amount", amount, false)?;
            let mut seen = BTreeSet::new();
            let mut sum = Decimal::ZERO;
            for (i, a) in self.allocations.iter().enumerate() {
                let n = code(&format!("allocations[{i}].number"), &a.number)?;
                if !seen.insert(n) {
                    return Err(Error::invalid(
                        format!("allocations[{i}].number"),
                        "the document is settled twice",
                    ));
                }
                check_amount(&format!("allocations[{i}].amount"), a.amount, false)?;
                sum += a.amount;
            }
            if sum > amount {
                return Err(Error::invalid(
                    "allocations",
                    format!("they settle {sum}, more than the payment's {amount}"),
                ));
            }
        }
        if self.campaign.is_some()
            && !matches!(self.kind, DocumentKind::Invoice | DocumentKind::CreditNote)
        {
            return Err(Error::invalid(
                "campaign",
                "only sales invoices and credit notes carry a campaign",
            ));
        }
        if self.corrects.is_some() && self.kind != DocumentKind::CreditNote {
            return Err(Error::invalid(
                "corrects",
                "only a credit note corrects an invoice",
            ));
        }
        for (i, l) in self.lines.iter().enumerate() {
            let f = |n: &str| format!("lines[{i}].{n}");
            if l.quantity.is_zero() {
                return Err(Error::invalid(f("quantity"), "must not be zero"));
            }
            if l.quantity.is_sign_negative() && self.kind != DocumentKind::CreditNote {
                return Err(Error::invalid(
                    f("quantity"),
                    format!(
                        "{} is negative; negative quantities are allowed only on credit notes",
                        l.quantity
                    ),
                ));
            }
            check_scale(&f("quantity"), l.quantity)?;
            check_amount(&f("unit_price"), l.unit_price, true)?;
            check_amount(&f("unit_cost"), l.unit_cost, true)?;
            if l.discount_pct.is_sign_negative() || l.discount_pct > Decimal::ONE_HUNDRED {
                return Err(Error::invalid(
                    f("discount_pct"),
                    format!("{} is outside 0–100", l.discount_pct),
                ));
            }
            check_scale(&f("discount_pct"), l.discount_pct)?;
        }
        Ok((number, currency))
    }
}

fn check_scale(field: &str, v: Decimal) -> Result<()> {
    if v.normalize().scale() > MONEY_SCALE {
        return Err(Error::invalid(
            field,
            format!("{v} has more than {MONEY_SCALE} decimal places"),
        ));
    }
    if decimal_to_units(v).is_none() {
        return Err(Error::invalid(field, format!("{v} is too large")));
    }
    Ok(())
}

fn check_amount(field: &str, v: Decimal, zero_ok: bool) -> Result<()> {
    if v.is_sign_negative() && !v.is_zero() {
        return Err(Error::invalid(field, format!("{v} is negative")));
    }
    if !zero_ok && v.is_zero() {
        return Err(Error::invalid(field, "must be more than zero"));
    }
    check_scale(field, v)
}

record! {
    /// A recorded document.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Document {
        /// The document's id (kept when the host replaces it).
        id: DocumentId,
        /// The tenant.
        tenant: TenantId,
        /// What it is.
        kind: DocumentKind,
        /// The host's number.
        number: String => &str = borrow,
        /// The partner.
        partner: PartnerId,
        /// Issue date.
        issue_date: NaiveDate,
        /// Due date.
        due_date: Option<NaiveDate>,
        /// Currency.
        currency: Currency,
        /// Lines.
        lines: Vec<Line> => &[Line] = borrow,
        /// Campaign (given or inherited from the corrected invoice).
        campaign: Option<CampaignId>,
        /// The invoice a credit note corrects.
        corrects: Option<String> => Option<&str> = deref,
        /// A payment's direction.
        direction: Option<PaymentDirection>,
        /// What a payment settles.
        allocations: Vec<Allocation> => &[Allocation] = borrow,
        /// The document's total in its currency (positive): the sum of line nets, or a payment's amount.
        total: Decimal,
        /// The rate it was converted with.
        rate: AppliedRate,
        /// Signed revenue effect in reporting-currency units (sum of the lines').
        revenue_units: i64,
        /// Signed cost-of-goods effect in reporting-currency units.
        cost_units: i64,
        /// The partner's reporting attributes at recording time.
        attrs: PartnerAttrs => &PartnerAttrs = borrow,
        /// Version: 1 when first recorded, +1 per replacement.
        version: u64,
        /// When it was first recorded.
        recorded_at: Timestamp,
        /// When it was last replaced.
        updated_at: Timestamp,
        /// The day the contract it belongs to renews (see [`NewDocument::renews_on`]).
        #[serde(default)]
        renews_on: Option<NaiveDate>,
    }
}

impl Document {
    /// The total as money.
    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.currency).unwrap_or_else(|_| Money::zero(self.currency))
    }

    /// The total in the document currency's 10^-4 units.
    pub fn total_units(&self) -> i64 {
        decimal_to_units(self.total).unwrap_or(0)
    }

    /// Whether two documents carry the same host content (what idempotent recording compares).
    pub fn same_content(&self, other: &Document) -> bool {
        self.content() == other.content()
    }

    /// What the host gave, as one comparable value: the kind, number, partner, dates, currency, campaign,
    /// correction, direction, allocations and total, and each line's product, quantity, price, discount and cost.
    fn content(&self) -> impl PartialEq + '_ {
        let lines: Vec<_> = self
            .lines
            .iter()
            .map(|l| {
                (
                    l.product,
                    l.quantity,
                    l.unit_price,
                    l.discount_pct,
                    l.unit_cost,
                )
            })
            .collect();
        let dates = (self.issue_date, self.due_date, self.renews_on);
        let head = (self.kind, &self.number, self.partner, dates, self.currency);
        let rest = (
            &self.campaign,
            &self.corrects,
            &self.direction,
            &self.allocations,
            self.total,
        );
        (head, rest, lines)
    }
}

/// What [`NewDocument::record`] needs looked up.
#[derive(Debug, Clone, Copy)]
pub struct DocumentFacts<'a> {
    /// The partner (already known to be of this tenant).
    pub partner: &'a Partner,
    /// The lines' products; a line naming another is refused.
    pub products: &'a BTreeMap<ProductId, Product>,
    /// The rate into the reporting currency at the issue date.
    pub rate: AppliedRate,
    /// The stored document with the same kind and number, if any.
    pub existing: Option<&'a Document>,
    /// The invoice a credit note corrects (looked up by [`NewDocument::corrects`]).
    pub corrected: Option<&'a Document>,
    /// Whether the campaign named exists in this tenant.
    pub campaign_exists: bool,
    /// The documents a payment settles, by number (invoices or bills per its direction).
    pub settled: &'a BTreeMap<String, Document>,
}

fn round_money(v: Decimal, currency: Currency) -> Decimal {
    v.round_dp_with_strategy(
        currency.minor_digits().min(MONEY_SCALE),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

impl NewDocument {
    /// Validates against the looked-up facts and decides: unchanged, inserted or replaced.
    pub fn record(
        self,
        tenant: TenantId,
        facts: DocumentFacts<'_>,
        now: Timestamp,
    ) -> Result<Recorded<Document>> {
        let (number, currency) = self.check_shape()?;
        if facts.partner.tenant != tenant || facts.partner.id != self.partner {
            return Err(Error::invalid(
                "partner",
                format!("partner {} is not a partner of this tenant", self.partner),
            ));
        }
        if self.campaign.is_some() && !facts.campaign_exists {
            return Err(Error::invalid(
                "campaign",
                format!(
                    "campaign {} is not a campaign of this tenant",
                    self.campaign.unwrap_or_default()
                ),
            ));
        }
        let mut campaign = self.campaign;
        let corrects = match &self.corrects {
            None => None,
            Some(n) => {
                let n = code("corrects", n)?;
                let inv = facts
                    .corrected
                    .filter(|d| d.kind == DocumentKind::Invoice && d.number == n)
                    .ok_or_else(|| {
                        Error::invalid("corrects", format!("invoice `{n}` is not recorded"))
                    })?;
                if inv.partner != self.partner || inv.currency != currency {
                    return Err(Error::invalid(
                        "corrects",
                        format!("invoice `{n}` is for another partner or in another currency"),
                    ));
                }
                campaign = campaign.or(inv.campaign);
                Some(n)
            }
        };
        let sign = self.kind.revenue_sign();
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut total = Decimal::ZERO;
        let (mut revenue_units, mut cost_units) = (0i64, 0i64);
        for (i, l) in self.lines.into_iter().enumerate() {
            let f = |n: &str| format!("lines[{i}].{n}");
            let product = facts
                .products
                .get(&l.product)
                .filter(|p| p.tenant == tenant)
                .ok_or_else(|| {
                    Error::invalid(
                        f("product"),
                        format!("product {} is not recorded", l.product),
                    )
                })?;
            let q = l.quantity.abs();
            let overflow = || Error::invalid(f("quantity"), "the line amount is too large");
            let gross = q.checked_mul(l.unit_price).ok_or_else(overflow)?;
            let factor = (Decimal::ONE_HUNDRED - l.discount_pct) / Decimal::ONE_HUNDRED;
            let net = round_money(gross.checked_mul(factor).ok_or_else(overflow)?, currency);
            let cost = round_money(q.checked_mul(l.unit_cost).ok_or_else(overflow)?, currency);
            decimal_to_units(net).ok_or_else(overflow)?;
            decimal_to_units(cost).ok_or_else(overflow)?;
            let rev = facts.rate.to_reporting_units(net, &f("unit_price"))?;
            let cst = facts.rate.to_reporting_units(cost, &f("unit_cost"))?;
            let qty = decimal_to_units(q).ok_or_else(overflow)?;
            total = total.checked_add(net).ok_or_else(overflow)?;
            revenue_units = revenue_units.checked_add(sign * rev).ok_or_else(overflow)?;
            cost_units = cost_units.checked_add(sign * cst).ok_or_else(overflow)?;
            lines.push(Line {
                product: l.product,
                category: product.category,
                quantity: l.quantity.normalize(),
                unit_price: l.unit_price.normalize(),
                discount_pct: l.discount_pct.normalize(),
                unit_cost: l.unit_cost.normalize(),
                net,
                cost,
                revenue_units: sign * rev,
                cost_units: sign * cst,
                quantity_units: sign * qty,
            });
        }
        let mut allocations = Vec::new();
        if let Some(amount) = self.amount {
            total = amount.normalize();
            let direction = self.direction.unwrap_or(PaymentDirection::Received);
            for (i, a) in self.allocations.iter().enumerate() {
                let n = a.number.trim().to_string();
                let target = facts.settled.get(&n).ok_or_else(|| {
                    Error::invalid(
                        format!("allocations[{i}].number"),
                        format!("{} `{n}` is not recorded", direction.settles().as_str()),
                    )
                })?;
                if target.kind != direction.settles()
                    || target.partner != self.partner
                    || target.currency != currency
                {
                    return Err(Error::invalid(
                        format!("allocations[{i}].number"),
                        format!(
                            "`{n}` is not a {} of this partner in {currency}",
                            direction.settles().as_str()
                        ),
                    ));
                }
                allocations.push(Allocation {
                    number: n,
                    amount: a.amount.normalize(),
                });
            }
        }
        if Money::new(total, currency).is_err() {
            return Err(Error::invalid(
                "lines",
                "the document's total is too large to store exactly",
            ));
        }
        let total = total.normalize();
        let doc = Document {
            id: DocumentId::new(),
            tenant,
            kind: self.kind,
            number: number.clone(),
            partner: self.partner,
            issue_date: self.issue_date,
            due_date: self.due_date,
            currency,
            lines,
            campaign,
            corrects,
            direction: self.direction,
            allocations,
            total,
            rate: facts.rate,
            revenue_units,
            cost_units,
            attrs: PartnerAttrs::of(facts.partner),
            version: 1,
            recorded_at: now,
            updated_at: now,
            renews_on: self.renews_on,
        };
        match facts.existing {
            None => Ok(Recorded::Inserted(doc)),
            Some(old) if old.same_content(&doc) => Ok(Recorded::Unchanged(old.clone())),
            Some(old) => {
                let expected_version =
                    decide_replace(self.kind.as_str(), &number, old.version, self.version)?;
                Ok(Recorded::Replaced {
                    record: Document {
                        id: old.id,
                        version: old.version + 1,
                        recorded_at: old.recorded_at,
                        ..doc
                    },
                    expected_version,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::NewPartner;
    use chrono::Utc;
    use rust_decimal_macros::dec;

    struct World {
        tenant: TenantId,
        partner: Partner,
        products: BTreeMap<ProductId, Product>,
        product: ProductId,
        ron: Currency,
    }

    fn world() -> World {
        let tenant = TenantId::new();
        let now = Utc::now();
        let partner = NewPartner::company("Acme").build(tenant, now).unwrap();
        let p = super::super::product::NewProduct {
            code: "P1".into(),
            name: "Drill".into(),
            category: Some(CategoryId::new()),
        }
        .record(tenant, None, None, now)
        .unwrap()
        .record()
        .clone();
        let product = p.id;
        World {
            tenant,
            partner,
            products: BTreeMap::from([(p.id, p)]),
            product,
            ron: Currency::parse("RON").unwrap(),
        }
    }

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    /// A constructor of a document with lines ([`NewDocument::invoice`], [`NewDocument::credit_note`], …).
    type WithLines = fn(&str, PartnerId, NaiveDate, &str, Vec<NewLine>) -> NewDocument;

    impl World {
        /// A document in RON of the partner, with one line of the product: `[quantity, unit price, unit cost]`.
        fn one_line(
            &self,
            make: WithLines,
            number: &str,
            issued: NaiveDate,
            l: [Decimal; 3],
        ) -> NewDocument {
            let line = NewLine::new(self.product, l[0], l[1], l[2]);
            make(number, self.partner.id, issued, "RON", vec![line])
        }
    }

    fn rec(
        w: &World,
        n: NewDocument,
        existing: Option<&Document>,
        rate: Decimal,
    ) -> Result<Recorded<Document>> {
        let empty = BTreeMap::new();
        n.record(
            w.tenant,
            DocumentFacts {
                partner: &w.partner,
                products: &w.products,
                rate: AppliedRate {
                    reporting: w.ron,
                    rate,
                },
                existing,
                corrected: None,
                campaign_exists: true,
                settled: &empty,
            },
            Utc::now(),
        )
    }

    #[test]
    fn amounts_and_conversion() {
        let w = world();
        let mut l = NewLine::new(w.product, dec!(3), dec!(10.005), dec!(4.1));
        l.discount_pct = dec!(10);
        let inv = NewDocument::invoice("F-1", w.partner.id, d(1, 5), "EUR", vec![l]);
        let doc = rec(&w, inv, None, dec!(5)).unwrap().record().clone();
        // 3 × 10.005 × 0.9 = 27.0135 → 27.01 EUR; × 5 = 135.05 RON.
        assert_eq!(doc.lines[0].net, dec!(27.01));
        assert_eq!(doc.lines[0].cost, dec!(12.30));
        assert_eq!(doc.revenue_units, 1_350_500);
        assert_eq!(doc.cost_units, 615_000);
        assert_eq!(doc.lines[0].quantity_units, 30_000);
        assert_eq!(doc.total, dec!(27.01));
        assert_eq!(doc.lines[0].category, w.products[&w.product].category);
    }

    #[test]
    fn credit_notes_reverse_whatever_the_sign() {
        let w = world();
        for q in [dec!(2), dec!(-2)] {
            let cn = w.one_line(
                NewDocument::credit_note,
                "C-1",
                d(2, 1),
                [q, dec!(10), dec!(6)],
            );
            let doc = rec(&w, cn, None, Decimal::ONE).unwrap().record().clone();
            assert_eq!(doc.revenue_units, -200_000, "{q}");
            assert_eq!(doc.cost_units, -120_000);
            assert_eq!(doc.lines[0].quantity_units, -20_000);
            assert_eq!(doc.total, dec!(20));
        }
    }

    /// Data-driven bad input: each case names its field.
    #[test]
    fn bad_documents_name_their_field() {
        let w = world();
        let inv = || {
            w.one_line(
                NewDocument::invoice,
                "F-1",
                d(1, 5),
                [dec!(1), dec!(10), dec!(5)],
            )
        };
        let pay = || {
            let received = PaymentDirection::Received;
            NewDocument::payment("P", w.partner.id, d(1, 5), "RON", received, dec!(1))
        };
        let neg = |mut n: NewDocument| {
            n.lines[0].quantity = dec!(-1);
            n
        };
        let cases: Vec<(&str, NewDocument, &str)> = vec![
            (
                "unknown currency",
                NewDocument {
                    currency: "XYZ".into(),
                    ..inv()
                },
                "currency",
            ),
            (
                "negative quantity on an invoice",
                neg(inv()),
                "lines[0].quantity",
            ),
            (
                "negative quantity on a bill",
                neg(NewDocument {
                    kind: DocumentKind::VendorBill,
                    ..inv()
                }),
                "lines[0].quantity",
            ),
            (
                "zero quantity",
                {
                    let mut n = inv();
                    n.lines[0].quantity = Decimal::ZERO;
                    n
                },
                "lines[0].quantity",
            ),
            (
                "negative price",
                {
                    let mut n = inv();
                    n.lines[0].unit_price = dec!(-1);
                    n
                },
                "lines[0].unit_price",
            ),
            (
                "discount over 100",
                {
                    let mut n = inv();
                    n.lines[0].discount_pct = dec!(101);
                    n
                },
                "lines[0].discount_pct",
            ),
            (
                "five decimals",
                {
                    let mut n = inv();
                    n.lines[0].quantity = dec!(1.00001);
                    n
                },
                "lines[0].quantity",
            ),
            (
                "unknown product",
                {
                    let mut n = inv();
                    n.lines[0].product = ProductId::new();
                    n
                },
                "lines[0].product",
            ),
            ("due before issue", inv().due(d(1, 4)), "due_date"),
            (
                "due at the end of time",
                inv().due(NaiveDate::MAX),
                "due_date",
            ),
            (
                "issued at the end of time",
                NewDocument {
                    issue_date: NaiveDate::MAX,
                    ..inv()
                },
                "issue_date",
            ),
            (
                "issued before 1900",
                NewDocument {
                    issue_date: NaiveDate::from_ymd_opt(1899, 12, 31).unwrap(),
                    due_date: None,
                    ..inv()
                },
                "issue_date",
            ),
            (
                "no lines",
                NewDocument {
                    lines: vec![],
                    ..inv()
                },
                "lines",
            ),
            (
                "empty number",
                NewDocument {
                    number: " ".into(),
                    ..inv()
                },
                "number",
            ),
            (
                "campaign on a bill",
                NewDocument {
                    kind: DocumentKind::VendorBill,
                    campaign: Some(CampaignId::new()),
                    ..inv()
                },
                "campaign",
            ),
            (
                "payment without amount",
                NewDocument {
                    amount: None,
                    ..pay()
                },
                "amount",
            ),
            (
                "payment over-allocated",
                NewDocument {
                    allocations: vec![Allocation {
                        number: "F-1".into(),
                        amount: dec!(2),
                    }],
                    ..pay()
                },
                "allocations",
            ),
            (
                "another tenant's partner",
                NewDocument {
                    partner: PartnerId::new(),
                    ..inv()
                },
                "partner",
            ),
        ];
        for (what, doc, field) in cases {
            let e = rec(&w, doc, None, Decimal::ONE).unwrap_err();
            assert_eq!(e.field(), Some(field), "{what}: {e}");
        }
    }

    #[test]
    fn negative_quantity_accepted_on_credit_notes_only() {
        let w = world();
        let kinds: [(WithLines, bool); 3] = [
            (NewDocument::credit_note, true),
            (NewDocument::invoice, false),
            (NewDocument::vendor_bill, false),
        ];
        for (make, accepted) in kinds {
            let doc = w.one_line(make, "C-9", d(1, 5), [dec!(-1), dec!(1), dec!(0)]);
            let kind = doc.kind;
            assert_eq!(
                rec(&w, doc, None, Decimal::ONE).is_ok(),
                accepted,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn same_number_is_idempotent_and_changes_need_the_version() {
        let w = world();
        let inv = w.one_line(
            NewDocument::invoice,
            "F-7",
            d(3, 1),
            [dec!(1), dec!(10), dec!(5)],
        );
        let first = rec(&w, inv.clone(), None, Decimal::ONE)
            .unwrap()
            .record()
            .clone();
        let again = rec(&w, inv.clone(), Some(&first), Decimal::ONE).unwrap();
        assert!(!again.changed());
        let mut changed = inv.clone();
        changed.lines[0].quantity = dec!(2);
        let e = rec(&w, changed.clone(), Some(&first), Decimal::ONE).unwrap_err();
        assert_eq!(e.field(), Some("version"), "{e}");
        changed.version = Some(3);
        assert!(matches!(
            rec(&w, changed.clone(), Some(&first), Decimal::ONE).unwrap_err(),
            Error::Conflict { .. }
        ));
        changed.version = Some(1);
        match rec(&w, changed, Some(&first), Decimal::ONE).unwrap() {
            Recorded::Replaced {
                record,
                expected_version,
            } => {
                assert_eq!(
                    (record.id, record.version, expected_version),
                    (first.id, 2, 1)
                );
                assert_eq!(record.revenue_units, 2 * first.revenue_units);
            }
            other => panic!("{other:?}"),
        }
    }
}
