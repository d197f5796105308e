//! The reference meaning of segments, profitability, campaign reports and balances: plain Rust over in-memory
//! facts. Adapters push the same calculations down to SQL; the conformance suite compares them with these on
//! random data, to the cent.

use super::attribution::{AttributionInputs, AttributionScope, Sale, Touch, TouchKind};
use super::campaign::Campaign;
use super::campaign::{CampaignCost, CampaignTarget, OutcomeKind};
use super::document::{Document, DocumentKind, PaymentDirection};
use super::period::Period;
use super::report::{
    order_open_items, order_sums, Balance, CampaignSums, CampaignTotals, GroupBy, OpenItem,
    ProfitSums, Progress, SumsQuery,
};
use super::segment::{BoughtMode, Criteria, Item, LastSale};
use super::uplift::{OutcomeQuery, OutcomeSums};
use crate::id::{CampaignId, PartnerId, UserId};
use crate::lead::{Lead, LeadStatus};
use crate::money::{decimal_to_units, units_to_decimal, Currency};
use crate::partner::Partner;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// The current documents of one tenant (replaced versions already dropped).
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The partners.
    pub partners: &'a [Partner],
    /// The documents.
    pub documents: &'a [Document],
}

fn is_sale(d: &Document) -> bool {
    matches!(d.kind, DocumentKind::Invoice | DocumentKind::CreditNote)
}

/// The partners matching `criteria` on day `as_of`, with volumes in `reporting`.
pub fn segment(
    facts: Facts<'_>,
    criteria: &Criteria,
    as_of: NaiveDate,
    reporting: Currency,
) -> BTreeSet<PartnerId> {
    facts
        .partners
        .iter()
        .filter(|p| matches(facts, p, criteria, as_of, reporting))
        .map(|p| p.id)
        .collect()
}

fn docs_of<'a>(facts: Facts<'a>, p: PartnerId) -> impl Iterator<Item = &'a Document> + 'a {
    facts.documents.iter().filter(move |d| d.partner == p)
}

fn matches(
    facts: Facts<'_>,
    p: &Partner,
    c: &Criteria,
    as_of: NaiveDate,
    reporting: Currency,
) -> bool {
    match c {
        Criteria::LastSale { when } => {
            let last = docs_of(facts, p.id)
                .filter(|d| d.kind == DocumentKind::Invoice)
                .map(|d| d.issue_date)
                .max();
            match (when, last) {
                (LastSale::Never, l) => l.is_none(),
                (_, None) => false,
                (LastSale::Before { date }, Some(l)) => l < *date,
                (LastSale::After { date }, Some(l)) => l > *date,
                (LastSale::WithinDays { days }, Some(l)) => as_of
                    .checked_sub_days(chrono::Days::new(u64::from(*days)))
                    .is_none_or(|from| l >= from),
            }
        }
        Criteria::SalesVolume {
            period,
            cmp,
            amount,
        } => {
            let v: i128 = docs_of(facts, p.id)
                .filter(|d| {
                    is_sale(d) && d.rate.reporting == reporting && period.contains(d.issue_date)
                })
                .map(|d| d.revenue_units as i128)
                .sum();
            cmp.holds(v, amount.to_units() as i128)
        }
        Criteria::Bought {
            mode,
            items,
            period,
        } => {
            let bought = |it: &Item| bought(facts, p.id, it, *period);
            match mode {
                BoughtMode::Any => items.iter().any(bought),
                BoughtMode::All => items.iter().all(bought),
                BoughtMode::None => !items.iter().any(bought),
            }
        }
        Criteria::Group { name } => p.group.as_deref() == Some(name.as_str()),
        Criteria::Role { role } => p.roles.contains(role),
        Criteria::Industry { name } => p
            .industry
            .as_ref()
            .is_some_and(|i| &i.name == name || i.code.as_deref() == Some(name.as_str())),
        Criteria::Location {
            country,
            region,
            city,
        } => p.locations.iter().any(|l| {
            country.as_ref().is_none_or(|c| &l.country == c)
                && region.as_ref().is_none_or(|r| l.region.as_ref() == Some(r))
                && city.as_ref().is_none_or(|c| l.city.as_ref() == Some(c))
        }),
        Criteria::Tag { tag } => p.tags.contains(tag),
        Criteria::And { all } => all.iter().all(|c| matches(facts, p, c, as_of, reporting)),
        Criteria::Or { any } => any.iter().any(|c| matches(facts, p, c, as_of, reporting)),
        Criteria::Not { not } => !matches(facts, p, not, as_of, reporting),
    }
}

/// Whether `partner`'s net quantity of `item` in `period` (sales invoices less credit notes) is above zero.
fn bought(facts: Facts<'_>, partner: PartnerId, item: &Item, period: Period) -> bool {
    let q: i128 = docs_of(facts, partner)
        .filter(|d| is_sale(d) && period.contains(d.issue_date))
        .flat_map(|d| d.lines.iter())
        .filter(|l| match item {
            Item::Product(id) => l.product == *id,
            Item::Category(id) => l.category == Some(*id),
        })
        .map(|l| l.quantity_units as i128)
        .sum();
    q > 0
}

/// A campaign's outcome sums (see [`OutcomeSums`]): per target, held out or not, its net sales in the window
/// (reactivated when above zero) and whether it bought a promoted item.
pub fn outcome_sums(
    facts: Facts<'_>,
    targets: &[CampaignTarget],
    campaign: CampaignId,
    q: &OutcomeQuery,
) -> OutcomeSums {
    let mut s = OutcomeSums::default();
    for t in targets.iter().filter(|t| t.campaign == campaign) {
        let g = if t.holdout {
            &mut s.holdout
        } else {
            &mut s.targets
        };
        let (mut revenue, mut cost) = (0i128, 0i128);
        for d in docs_of(facts, t.partner).filter(|d| {
            is_sale(d) && d.rate.reporting == q.reporting && q.window.contains(d.issue_date)
        }) {
            revenue += d.revenue_units as i128;
            cost += d.cost_units as i128;
        }
        g.partners += 1;
        g.reactivated += u64::from(revenue > 0);
        g.bought += u64::from(
            q.promoted
                .iter()
                .any(|i| bought(facts, t.partner, i, q.window)),
        );
        g.revenue_units += revenue;
        g.cost_units += cost;
    }
    s
}

/// A tenant's attribution inputs (see [`AttributionInputs`]): every sale of the period (in the reporting
/// currency), and the touches in range — each target not held out on its campaign's launch day and on the day its
/// call first reached it, each lead (not merged) with a source campaign on its creation day, each held meeting
/// about such a lead on the day it started (the lead's partner touched).
pub fn attribution_inputs(
    facts: Facts<'_>,
    targets: &[CampaignTarget],
    leads: &[Lead],
    meetings: &[crate::sales::Meeting],
    campaigns: &[Campaign],
    scope: &AttributionScope,
) -> AttributionInputs {
    let (first, last) = (scope.first_touch_day(), scope.period.to());
    let in_range = |d: NaiveDate| first <= d && d <= last;
    let launched: BTreeMap<CampaignId, NaiveDate> = campaigns
        .iter()
        .filter_map(|c| c.launched_at.map(|at| (c.id, at.date_naive())))
        .collect();
    let mut touches = Vec::new();
    for t in targets.iter().filter(|t| !t.holdout) {
        let mut touch = |on: NaiveDate, kind| {
            if in_range(on) {
                touches.push(Touch {
                    partner: t.partner,
                    on,
                    kind,
                    campaign: t.campaign,
                });
            }
        };
        if let Some(on) = launched.get(&t.campaign) {
            touch(*on, TouchKind::Targeted);
        }
        if let Some(at) = t.reached_at {
            touch(at.date_naive(), TouchKind::Reached);
        }
        if let Some(send) = &t.send {
            if let Some(at) = send.delivered_at {
                touch(at.date_naive(), TouchKind::Messaged);
            }
            if let Some(at) = send.opened_at {
                touch(at.date_naive(), TouchKind::Opened);
            }
        }
    }
    for l in leads
        .iter()
        .filter(|l| l.status.kind() != crate::lead::StatusKind::Merged)
    {
        if let Some(c) = l.source.campaign {
            let on = l.created_at.date_naive();
            if in_range(on) {
                touches.push(Touch {
                    partner: l.partner,
                    on,
                    kind: TouchKind::Lead,
                    campaign: c,
                });
            }
        }
    }
    let sourced: BTreeMap<crate::id::LeadId, (PartnerId, CampaignId)> = leads
        .iter()
        .filter(|l| l.status.kind() != crate::lead::StatusKind::Merged)
        .filter_map(|l| l.source.campaign.map(|c| (l.id, (l.partner, c))))
        .collect();
    for m in meetings
        .iter()
        .filter(|m| m.status() == crate::sales::MeetingStatus::Held)
    {
        if let Some((partner, campaign)) = m.lead().and_then(|l| sourced.get(&l)) {
            let on = m.starts_at().date_naive();
            if in_range(on) {
                touches.push(Touch {
                    partner: *partner,
                    on,
                    kind: TouchKind::Meeting,
                    campaign: *campaign,
                });
            }
        }
    }
    let sales: Vec<Sale> = facts
        .documents
        .iter()
        .filter(|d| {
            is_sale(d) && d.rate.reporting == scope.reporting && scope.period.contains(d.issue_date)
        })
        .map(|d| Sale {
            partner: d.partner,
            issue_date: d.issue_date,
            document: d.id,
            campaign: d.campaign,
            gross_profit_units: d.revenue_units as i128 - d.cost_units as i128,
        })
        .collect();
    let mut inputs = AttributionInputs {
        total_sales: sales.len() as u64,
        total_units: sales.iter().map(|s| s.gross_profit_units).sum(),
        sales,
        touches,
    };
    inputs.normalize();
    inputs
}

/// The key of a document for a grouping.
pub fn group_key(d: &Document, g: GroupBy) -> Option<String> {
    match g {
        GroupBy::Customer => Some(d.partner.to_string()),
        GroupBy::Group => d.attrs.group.clone(),
        GroupBy::Industry => d.attrs.industry.clone(),
        GroupBy::Country => d.attrs.country.clone(),
        GroupBy::Region => d.attrs.region.clone(),
        GroupBy::City => d.attrs.city.clone(),
        GroupBy::Owner => d.attrs.owner.map(|u| u.to_string()),
        GroupBy::Campaign => d.campaign.map(|c| c.to_string()),
    }
}

/// Profitability sums.
pub fn profit_sums(facts: Facts<'_>, q: &SumsQuery) -> Vec<ProfitSums> {
    let mut by: BTreeMap<(Option<String>, Option<i64>), ProfitSums> = BTreeMap::new();
    for d in facts.documents.iter().filter(|d| {
        is_sale(d) && d.rate.reporting == q.reporting && q.period.contains(d.issue_date)
    }) {
        let key = group_key(d, q.group_by);
        let bucket = q.bucket.map(|b| b.index(d.issue_date));
        let s = by.entry((key.clone(), bucket)).or_insert(ProfitSums {
            key,
            bucket,
            revenue_units: 0,
            cost_units: 0,
            invoices: 0,
        });
        s.revenue_units += d.revenue_units as i128;
        s.cost_units += d.cost_units as i128;
        s.invoices += (d.kind == DocumentKind::Invoice) as u64;
    }
    let mut v: Vec<_> = by.into_values().collect();
    order_sums(&mut v, q);
    v
}

/// What a campaign report needs besides documents.
#[derive(Debug, Clone, Copy)]
pub struct CampaignFacts<'a> {
    /// The campaign's targets.
    pub targets: &'a [CampaignTarget],
    /// The tenant's leads.
    pub leads: &'a [Lead],
    /// The campaign's cost entries.
    pub costs: &'a [CampaignCost],
}

/// Campaign sums over `period` (all time when `None`).
pub fn campaign_sums(
    facts: Facts<'_>,
    cf: CampaignFacts<'_>,
    campaign: CampaignId,
    period: Option<Period>,
    reporting: Currency,
) -> CampaignSums {
    let in_p = |d: NaiveDate| period.is_none_or(|p| p.contains(d));
    let targets: Vec<_> = cf
        .targets
        .iter()
        .filter(|t| t.campaign == campaign && !t.holdout)
        .collect();
    let mut s = CampaignSums {
        targets: targets.len() as u64,
        ..Default::default()
    };
    for t in &targets {
        if t.reached_at.is_some_and(|r| in_p(r.date_naive())) {
            s.reached += 1;
        }
        if let (Some(o), Some(at)) = (t.outcome, t.outcome_at) {
            if in_p(at.date_naive()) {
                *s.outcomes.entry(o).or_default() += 1;
            }
        }
    }
    for l in cf
        .leads
        .iter()
        .filter(|l| l.source.campaign == Some(campaign) && in_p(l.created_at.date_naive()))
    {
        s.leads += 1;
        s.won += matches!(l.status, LeadStatus::Won { .. }) as u64;
    }
    let mut per_customer: BTreeMap<PartnerId, i128> = BTreeMap::new();
    for d in facts.documents.iter().filter(|d| {
        is_sale(d)
            && d.campaign == Some(campaign)
            && d.rate.reporting == reporting
            && in_p(d.issue_date)
    }) {
        s.revenue_units += d.revenue_units as i128;
        s.cost_units += d.cost_units as i128;
        *per_customer.entry(d.partner).or_default() += d.revenue_units as i128;
    }
    s.invoiced_customers = per_customer.values().filter(|v| **v > 0).count() as u64;
    s.campaign_cost_units = cf
        .costs
        .iter()
        .filter(|c| c.campaign == campaign && c.rate.reporting == reporting && in_p(c.date))
        .map(|c| c.amount_units as i128)
        .sum();
    s
}

/// Every one of `campaigns` (the tenant's) with its [`campaign_sums`], by campaign id.
pub fn campaigns_sums(
    facts: Facts<'_>,
    cf: CampaignFacts<'_>,
    campaigns: &[Campaign],
    period: Option<Period>,
    reporting: Currency,
) -> Vec<CampaignTotals> {
    let mut v: Vec<CampaignTotals> = campaigns
        .iter()
        .map(|c| CampaignTotals {
            campaign: c.id(),
            name: c.name().to_string(),
            sums: campaign_sums(facts, cf, c.id(), period, reporting),
        })
        .collect();
    v.sort_by_key(|t| t.campaign);
    v
}

/// Progress of a campaign per agent (sorted by agent) and in total (the first row, agent `None`).
pub fn progress(targets: &[CampaignTarget], campaign: CampaignId) -> Vec<Progress> {
    let mut total = Progress::default();
    let mut by: BTreeMap<UserId, Progress> = BTreeMap::new();
    for t in targets
        .iter()
        .filter(|t| t.campaign == campaign && !t.holdout)
    {
        let rows: Vec<&mut Progress> = match t.agent {
            Some(a) => {
                let p = by.entry(a).or_insert_with(|| Progress {
                    agent: Some(a),
                    ..Default::default()
                });
                vec![p, &mut total]
            }
            None => vec![&mut total],
        };
        for p in rows {
            p.targets += 1;
            if t.outcome.is_some_and(OutcomeKind::is_final) {
                p.done += 1;
            } else {
                p.remaining += 1;
            }
            if let Some(o) = t.outcome {
                *p.outcomes.entry(o).or_default() += 1;
            }
            if let Some(s) = &t.send {
                *p.messages.entry(s.status).or_default() += 1;
            }
        }
    }
    std::iter::once(total).chain(by.into_values()).collect()
}

/// A partner's documents issued on or before `as_of`: the account as it stood at the end of that day.
fn docs_as_of<'a>(
    facts: Facts<'a>,
    partner: PartnerId,
    as_of: NaiveDate,
) -> impl Iterator<Item = &'a Document> + 'a {
    docs_of(facts, partner).filter(move |d| d.issue_date <= as_of)
}

/// What is settled on `as_of` against each invoice or bill of a partner: the allocations of payments and the
/// correcting credit notes issued by then.
fn settled(
    facts: Facts<'_>,
    partner: PartnerId,
    as_of: NaiveDate,
) -> BTreeMap<(DocumentKind, String), i128> {
    let mut m: BTreeMap<(DocumentKind, String), i128> = BTreeMap::new();
    for d in docs_as_of(facts, partner, as_of) {
        match d.kind {
            DocumentKind::Payment => {
                let kind = d.direction.unwrap_or(PaymentDirection::Received).settles();
                for a in &d.allocations {
                    *m.entry((kind, a.number.clone())).or_default() +=
                        decimal_to_units(a.amount).unwrap_or(0) as i128;
                }
            }
            DocumentKind::CreditNote => {
                if let Some(n) = &d.corrects {
                    *m.entry((DocumentKind::Invoice, n.clone())).or_default() +=
                        d.total_units() as i128;
                }
            }
            _ => {}
        }
    }
    m
}

/// A partner's open items on day `as_of`: the invoices and bills issued by then, less what was settled by then.
pub fn open_items(facts: Facts<'_>, partner: PartnerId, as_of: NaiveDate) -> Vec<OpenItem> {
    let settled = settled(facts, partner, as_of);
    let mut out: Vec<OpenItem> = docs_as_of(facts, partner, as_of)
        .filter(|d| matches!(d.kind, DocumentKind::Invoice | DocumentKind::VendorBill))
        .filter_map(|d| {
            let s = settled
                .get(&(d.kind, d.number.clone()))
                .copied()
                .unwrap_or(0);
            let open = d.total_units() as i128 - s;
            (open != 0).then(|| OpenItem::of(d, open, as_of))
        })
        .collect();
    order_open_items(&mut out);
    out
}

/// [`CommerceKey::DocumentsDue`](super::CommerceKey::DocumentsDue): the documents of `kind` due in
/// `[from, before)`, by due date, then number.
pub fn documents_due(
    facts: Facts<'_>,
    kind: DocumentKind,
    from: NaiveDate,
    before: NaiveDate,
) -> Vec<Document> {
    let mut out: Vec<Document> = facts
        .documents
        .iter()
        .filter(|d| d.kind == kind && d.due_date.is_some_and(|due| due >= from && due < before))
        .cloned()
        .collect();
    out.sort_by(|a, b| (a.due_date, &a.number).cmp(&(b.due_date, &b.number)));
    out
}

/// [`CommerceKey::DocumentsRenewing`](super::CommerceKey::DocumentsRenewing): the documents renewing in
/// `[from, to]`, by renewal date, then kind and number.
pub fn documents_renewing(facts: Facts<'_>, from: NaiveDate, to: NaiveDate) -> Vec<Document> {
    let mut out: Vec<Document> = facts
        .documents
        .iter()
        .filter(|d| d.renews_on.is_some_and(|r| r >= from && r <= to))
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        (a.renews_on, a.kind.code(), &a.number).cmp(&(b.renews_on, b.kind.code(), &b.number))
    });
    out
}

/// A partner's balances per currency (ordered by currency code) on day `as_of`, counting the documents issued by
/// then; a currency appears once a document in it was issued.
pub fn balances(facts: Facts<'_>, partner: PartnerId, as_of: NaiveDate) -> Vec<Balance> {
    let mut by: BTreeMap<&'static str, (Currency, i128, i128)> = BTreeMap::new();
    for d in docs_as_of(facts, partner, as_of) {
        let e = by.entry(d.currency.code()).or_insert((d.currency, 0, 0));
        let t = d.total_units() as i128;
        match (d.kind, d.direction) {
            (DocumentKind::Invoice, _) => e.1 += t,
            (DocumentKind::CreditNote, _) => e.1 -= t,
            (DocumentKind::VendorBill, _) => e.2 += t,
            (DocumentKind::Payment, Some(PaymentDirection::Sent)) => e.2 -= t,
            (DocumentKind::Payment, _) => e.1 -= t,
        }
    }
    let items = open_items(facts, partner, as_of);
    by.into_values()
        .map(|(currency, r, p)| Balance {
            currency,
            receivable: units_to_decimal(r),
            payable: units_to_decimal(p),
            overdue: units_to_decimal(
                items
                    .iter()
                    .filter(|i| {
                        i.currency == currency
                            && i.kind == DocumentKind::Invoice
                            && i.days_overdue > 0
                    })
                    .map(|i| decimal_to_units(i.open).unwrap_or(0) as i128)
                    .sum(),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::{
        AppliedRate, Bucket, Cmp, DocumentFacts, GroupBy, NewDocument, NewLine, NewProduct, Period,
        Product, RankOrder, SumsQuery,
    };
    use crate::commerce::{Item, Rank};
    use crate::id::{CategoryId, ProductId, TenantId};
    use crate::money::Money;
    use crate::partner::{LocationKind, NewLocation, NewPartner, PartnerRole};
    use chrono::Utc;
    use rust_decimal::Decimal;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, m, d).unwrap()
    }

    struct World {
        partners: Vec<Partner>,
        docs: Vec<Document>,
        drill: ProductId,
        tools: CategoryId,
    }

    /// Ana buys drills (Tools) in January and March, one credited; Bob bought screws once in February; Cici never
    /// bought; Dan bought a drill in December and returned it all.
    fn world() -> World {
        let t = TenantId::new();
        let now = Utc::now();
        let ron = Currency::parse("RON").unwrap();
        let tools = CategoryId::new();
        let product = |code: &str, category| {
            NewProduct {
                code: code.into(),
                name: code.into(),
                category,
            }
            .record(t, None, None, now)
            .unwrap()
            .record()
            .clone()
        };
        let (drill, screw) = (product("drill", Some(tools)), product("screw", None));
        let products: BTreeMap<ProductId, Product> =
            [(drill.id, drill.clone()), (screw.id, screw.clone())].into();
        let loc = |city: &str| NewLocation {
            kind: LocationKind::Billing,
            street: None,
            city: Some(city.into()),
            region: None,
            postal_code: None,
            country: "RO".into(),
        };
        let mut ana = NewPartner::company("Ana")
            .with_role(PartnerRole::Customer)
            .with_group("A")
            .with_location(loc("Cluj"));
        ana.tags.insert("vip".into());
        let partners = vec![
            ana.build(t, now).unwrap(),
            NewPartner::company("Bob")
                .with_role(PartnerRole::Customer)
                .with_industry("Food", Some("1011"))
                .build(t, now)
                .unwrap(),
            NewPartner::company("Cici").build(t, now).unwrap(),
            NewPartner::company("Dan")
                .with_role(PartnerRole::Customer)
                .with_group("A")
                .with_location(loc("Iasi"))
                .build(t, now)
                .unwrap(),
        ];
        let empty = BTreeMap::new();
        let rec = |n: NewDocument, p: &Partner| {
            n.record(
                t,
                DocumentFacts {
                    partner: p,
                    products: &products,
                    rate: AppliedRate::identity(ron),
                    existing: None,
                    corrected: None,
                    campaign_exists: true,
                    settled: &empty,
                },
                now,
            )
            .unwrap()
            .record()
            .clone()
        };
        let line = |p: &Product, q: i64, price: i64, cost: i64| {
            NewLine::new(p.id, q.into(), price.into(), cost.into())
        };
        let (a, b, d) = (&partners[0], &partners[1], &partners[3]);
        let docs = vec![
            rec(
                NewDocument::invoice("1", a.id, day(1, 10), "RON", vec![line(&drill, 2, 100, 60)]),
                a,
            ),
            rec(
                NewDocument::invoice(
                    "2",
                    a.id,
                    day(3, 5),
                    "RON",
                    vec![line(&drill, 1, 100, 60), line(&screw, 10, 1, 0)],
                ),
                a,
            ),
            rec(
                NewDocument::credit_note(
                    "3",
                    a.id,
                    day(3, 20),
                    "RON",
                    vec![line(&drill, 1, 100, 60)],
                ),
                a,
            ),
            rec(
                NewDocument::invoice("4", b.id, day(2, 1), "RON", vec![line(&screw, 100, 2, 1)]),
                b,
            ),
            rec(
                NewDocument::invoice(
                    "5",
                    d.id,
                    day(12, 1),
                    "RON",
                    vec![line(&drill, 1, 500, 300)],
                ),
                d,
            ),
            rec(
                NewDocument::credit_note(
                    "6",
                    d.id,
                    day(12, 2),
                    "RON",
                    vec![line(&drill, -1, 500, 300)],
                ),
                d,
            ),
        ];
        World {
            partners,
            docs,
            drill: drill.id,
            tools,
        }
    }

    /// Data-driven: each criterion and the names it must select on 2025-12-31.
    #[test]
    fn segment_semantics() {
        let w = world();
        let ron = Currency::parse("RON").unwrap();
        let year = Period::year(2025).unwrap();
        let q1 = Period::new(day(1, 1), day(3, 31)).unwrap();
        let amount = |a: i64| Money::new(Decimal::from(a), ron).unwrap();
        let not = |c: Criteria| Criteria::Not { not: Box::new(c) };
        let cases: Vec<(Criteria, &[&str])> = vec![
            (
                Criteria::LastSale {
                    when: LastSale::Never,
                },
                &["Cici"],
            ),
            (
                Criteria::LastSale {
                    when: LastSale::Before { date: day(3, 5) },
                },
                &["Bob"],
            ),
            (
                Criteria::LastSale {
                    when: LastSale::After { date: day(3, 5) },
                },
                &["Dan"],
            ),
            (
                Criteria::LastSale {
                    when: LastSale::WithinDays { days: 301 },
                },
                &["Ana", "Dan"],
            ),
            // 2025-12-31 − 300 days is 2025-03-06: Ana's last sale (03-05) is one day too old.
            (
                Criteria::LastSale {
                    when: LastSale::WithinDays { days: 300 },
                },
                &["Dan"],
            ),
            (
                not(Criteria::LastSale {
                    when: LastSale::Before { date: day(3, 5) },
                }),
                &["Ana", "Cici", "Dan"],
            ),
            // Ana: 200 + 110 − 100 = 210; Bob 200; Dan 500 − 500 = 0; Cici 0.
            (
                Criteria::SalesVolume {
                    period: year,
                    cmp: Cmp::Ge,
                    amount: amount(200),
                },
                &["Ana", "Bob"],
            ),
            (
                Criteria::SalesVolume {
                    period: year,
                    cmp: Cmp::Eq,
                    amount: amount(0),
                },
                &["Cici", "Dan"],
            ),
            (
                Criteria::SalesVolume {
                    period: q1,
                    cmp: Cmp::Gt,
                    amount: amount(205),
                },
                &["Ana"],
            ),
            // Dan returned his drill: net quantity zero is not "bought".
            (
                Criteria::Bought {
                    mode: BoughtMode::Any,
                    items: vec![Item::Product(w.drill)],
                    period: year,
                },
                &["Ana"],
            ),
            (
                Criteria::Bought {
                    mode: BoughtMode::Any,
                    items: vec![Item::Category(w.tools)],
                    period: year,
                },
                &["Ana"],
            ),
            (
                Criteria::Bought {
                    mode: BoughtMode::None,
                    items: vec![Item::Category(w.tools)],
                    period: year,
                },
                &["Bob", "Cici", "Dan"],
            ),
            (Criteria::Group { name: "A".into() }, &["Ana", "Dan"]),
            (
                Criteria::Industry {
                    name: "1011".into(),
                },
                &["Bob"],
            ),
            (
                Criteria::Location {
                    country: Some("RO".into()),
                    region: None,
                    city: Some("Iasi".into()),
                },
                &["Dan"],
            ),
            (Criteria::Tag { tag: "vip".into() }, &["Ana"]),
            (
                Criteria::Role {
                    role: PartnerRole::Prospect,
                },
                &["Cici"],
            ),
            (
                Criteria::And {
                    all: vec![
                        Criteria::Group { name: "A".into() },
                        not(Criteria::Tag { tag: "vip".into() }),
                    ],
                },
                &["Dan"],
            ),
            (
                Criteria::Or {
                    any: vec![
                        Criteria::Tag { tag: "vip".into() },
                        Criteria::LastSale {
                            when: LastSale::Never,
                        },
                    ],
                },
                &["Ana", "Cici"],
            ),
        ];
        let facts = Facts {
            partners: &w.partners,
            documents: &w.docs,
        };
        for (c, want) in cases {
            let got: BTreeSet<&str> = segment(facts, &c, day(12, 31), ron)
                .into_iter()
                .map(|id| {
                    w.partners
                        .iter()
                        .find(|p| p.id == id)
                        .unwrap()
                        .name
                        .as_str()
                })
                .collect();
            assert_eq!(got, want.iter().copied().collect::<BTreeSet<_>>(), "{c:?}");
        }
    }

    #[test]
    fn profitability_sums() {
        let w = world();
        let ron = Currency::parse("RON").unwrap();
        let facts = Facts {
            partners: &w.partners,
            documents: &w.docs,
        };
        let q = SumsQuery::by(GroupBy::Group, Period::year(2025).unwrap(), ron);
        let units = |s: &ProfitSums| {
            (
                s.key.clone(),
                s.revenue_units / 10_000,
                s.cost_units / 10_000,
                s.invoices,
            )
        };
        let got: Vec<_> = profit_sums(facts, &q).iter().map(units).collect();
        // No group: Bob 200 / 100; group A: Ana 210 / 120 (2 invoices), Dan 0 / 0 (1 invoice).
        assert_eq!(
            got,
            vec![(None, 200, 100, 1), (Some("A".into()), 210, 120, 3)]
        );
        let months: Vec<_> = profit_sums(
            facts,
            &SumsQuery {
                bucket: Some(Bucket::Quarter),
                ..q.clone()
            },
        )
        .iter()
        .map(|s| (s.key.clone(), s.bucket.map(|b| b % 4)))
        .collect();
        assert_eq!(
            months,
            vec![
                (None, Some(0)),
                (Some("A".into()), Some(0)),
                (Some("A".into()), Some(3))
            ]
        );
        let bottom = profit_sums(
            facts,
            &SumsQuery {
                group_by: GroupBy::Customer,
                rank: Some(Rank {
                    order: RankOrder::Bottom,
                    n: 2,
                }),
                ..q
            },
        );
        let dan = w.partners[3].id.to_string();
        assert_eq!(
            bottom[0].key.as_deref(),
            Some(dan.as_str()),
            "Dan's profit is zero: the lowest"
        );
        assert_eq!(bottom.len(), 2);
    }
}
