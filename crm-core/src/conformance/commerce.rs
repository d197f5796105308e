//! The commerce conformance suite: documents, rates, balances, segments, campaigns, attribution and
//! profitability, each checked against the reference calculations of [`crate::commerce::reference`].
//!
//! Run from an adapter's tests with [`backend_conformance_tests!`](crate::backend_conformance_tests); the factory
//! yields the adapter as both a [`Store`] and a [`CommerceStore`].

pub use super::attachments::check_attachments;
pub use super::portal::check_portal_reads_and_requests;
pub use super::sales::{
    check_commerce_contracts, check_commerce_quotations, meeting_for, quotation_for,
};
pub use super::uplift::{
    check_campaign_attribution, check_campaign_budget_alerts, check_campaign_uplift,
};
use super::World;
use crate::actor::Context;
use crate::commerce::reference::{self, CampaignFacts, Facts};
use crate::commerce::CommerceStoreExt;
use crate::commerce::{
    BoughtMode, Bucket, CallOutcome, Campaign, CampaignCost, CampaignMeasuresExt as _,
    CampaignTarget, Channel, Cmp, CommerceStore, Criteria, Document, DocumentKind, FactDifference,
    GroupBy, Item, LastSale, NewCampaign, NewCategory, NewDocument, NewLine, NewProduct,
    OutcomeKind, PartnerFact, PaymentDirection, Period, ProfitQuery, Rank, RankOrder, Recorded,
    SumsQuery,
};
use crate::error::Error;
use crate::id::{CategoryId, PartnerId, ProductId, TenantId, UserId};
use crate::lead::{Lead, LeadCommand};
use crate::money::{Currency, Money};
use crate::partner::{LocationKind, NewLocation, NewPartner, Partner, PartnerPatch, PartnerRole};
use crate::service::CommerceService;
use crate::store::StoreExt;
use crate::store::{PageRequest, Store};
use crate::time::Clock;
use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

/// The default number of cases of [`run_commerce_properties`].
pub const COMMERCE_CASES: u32 = 32;

fn ron() -> Currency {
    Currency::parse("RON").unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The calendar bucket `b` (month, quarter, year) holding `d`, as a period.
fn bucket_period(b: Bucket, d: NaiveDate) -> Period {
    let i = b.index(d);
    let first = b.start_of(i).expect("a bucket's start");
    let last = b
        .start_of(i + 1)
        .and_then(|next| next.pred_opt())
        .expect("a bucket's end");
    Period::new(first, last).expect("a bucket")
}

/// A commerce fixture: the base world plus the commerce service (reporting in RON), a category and three
/// products.
pub struct Shop {
    /// The base world (tenant, clock, users, pipeline).
    pub w: World,
    /// The commerce service.
    pub cs: CommerceService,
    /// The category of products 0 and 1.
    pub category: CategoryId,
    /// Three products.
    pub products: Vec<ProductId>,
}

debug_tenant!(Shop => w.tenant);

impl Shop {
    /// Builds the fixture in a fresh tenant.
    pub async fn new(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) -> Shop {
        let w = World::new(store).await;
        let cs = CommerceService::new(w.crm.clone(), commerce.clone(), ron())
            .with_blob_store(Arc::new(super::model::MemBlobStore::new()));
        let category = cs
            .record_category(
                &w.ctx,
                NewCategory {
                    code: "TOOLS".into(),
                    name: "Tools".into(),
                },
                None,
            )
            .await
            .expect("category")
            .record()
            .id;
        let mut products = Vec::new();
        for (i, cat) in [Some(category), Some(category), None]
            .into_iter()
            .enumerate()
        {
            let p = cs
                .record_product(
                    &w.ctx,
                    NewProduct {
                        code: format!("P{i}"),
                        name: format!("Product {i}"),
                        category: cat,
                    },
                    None,
                )
                .await
                .expect("product");
            products.push(p.record().id);
        }
        Shop {
            w,
            cs,
            category,
            products,
        }
    }

    fn ctx(&self) -> &Context {
        &self.w.ctx
    }

    /// A customer partner of the shop's tenant.
    pub async fn customer(&self, name: &str) -> Partner {
        self.w
            .crm
            .create_partner(
                self.ctx(),
                NewPartner::company(name).with_role(PartnerRole::Customer),
            )
            .await
            .expect("partner")
            .record
    }

    /// A campaign over 2026 on `channel`, owned and worked by the agent, with no script, budget or criteria.
    pub fn year_campaign(&self, name: &str, channel: Channel) -> NewCampaign {
        NewCampaign {
            name: name.into(),
            channel,
            period: Period::year(2026).expect("a year"),
            owner: self.w.agent,
            agents: vec![self.w.agent],
            script: None,
            budget: None,
            criteria: None,
        }
    }

    /// A credit note `number` for `partner` on `on` taking back one unit of product 0 (at 100, cost 60) of
    /// invoice `corrects`.
    pub fn credit_back(
        &self,
        number: &str,
        partner: PartnerId,
        on: NaiveDate,
        corrects: &str,
    ) -> NewDocument {
        let mut cn = NewDocument::credit_note(
            number,
            partner,
            on,
            "RON",
            vec![self.line(0, "-1", "100", "60")],
        );
        cn.corrects = Some(corrects.into());
        cn
    }

    /// `p` (as read at its current version) moved into reporting group `group`.
    pub async fn move_to_group(&self, p: &Partner, group: &str) -> Partner {
        let patch = PartnerPatch {
            group: Some(Some(group.to_string())),
            ..Default::default()
        };
        self.patched(p, patch).await
    }

    /// `p` (as read at its current version) with `patch` applied through the service.
    async fn patched(&self, p: &Partner, patch: PartnerPatch) -> Partner {
        self.w
            .crm
            .update_partner(self.ctx(), p.id, p.version, patch)
            .await
            .expect("the partner moves")
            .record
    }

    /// Moves `p` to another industry, location and owner: variant `k` of the property world's vocabulary (some
    /// variants clear the industry).
    pub async fn move_elsewhere(&self, p: &Partner, k: usize) -> Partner {
        let patch = PartnerPatch {
            industry: Some((k % 3 != 2).then(|| crate::partner::Industry {
                name: ["Retail", "Food"][k % 2].into(),
                code: (k % 4 == 1).then(|| "4711".into()),
            })),
            locations: Some(vec![NewLocation {
                kind: LocationKind::Billing,
                street: None,
                city: Some(["Dej", "Munich"][k % 2].into()),
                region: Some(["Cluj", "Bavaria"][(k / 2) % 2].into()),
                postal_code: None,
                country: ["RO", "DE"][(k / 4) % 2].into(),
            }]),
            owner: Some(Some(if k.is_multiple_of(2) {
                self.w.agent
            } else {
                self.w.manager
            })),
            ..Default::default()
        };
        self.patched(p, patch).await
    }

    /// A line of product `i`.
    pub fn line(&self, i: usize, qty: &str, price: &str, cost: &str) -> NewLine {
        NewLine::new(self.products[i], dec(qty), dec(price), dec(cost))
    }

    /// Records a document through the service.
    pub async fn record(&self, n: NewDocument) -> Document {
        self.cs
            .record_document(self.ctx(), n)
            .await
            .expect("record document")
            .recorded
            .record()
            .clone()
    }

    async fn event_count(&self) -> usize {
        self.w
            .store()
            .events_since(self.w.tenant, 0, 10_000)
            .await
            .expect("events")
            .len()
    }
}

/// Replaces a document in a reference list by id (or adds it).
fn upsert(docs: &mut Vec<Document>, d: Document) {
    match docs.iter_mut().find(|x| x.id == d.id) {
        Some(x) => *x = d,
        None => docs.push(d),
    }
}

async fn assert_sums_match(
    cs: &CommerceService,
    tenant: TenantId,
    partners: &[Partner],
    docs: &[Document],
    q: &SumsQuery,
) {
    let got = cs
        .store()
        .profit_sums(tenant, q)
        .await
        .expect("profit sums");
    let want = reference::profit_sums(
        Facts {
            partners,
            documents: docs,
        },
        q,
    );
    assert_eq!(got, want, "profit sums differ from the reference for {q:?}");
}

/// The profitability report compared with the previous period (or, bucketed, each bucket with the one before)
/// keeps the rows it has without the comparison, and each row's previous gross profit equals the reference's over
/// the period before: the previous period of the same length, the whole bucket before the first, or the bucket
/// before as the period cuts it.
async fn assert_comparison_matches(s: &Shop, facts: Facts<'_>, q: &ProfitQuery) {
    let tenant = s.w.tenant;
    let plain =
        s.cs.profitability(
            tenant,
            &ProfitQuery {
                compare: false,
                ..q.clone()
            },
        )
        .await
        .expect("profitability");
    let compared =
        s.cs.profitability(
            tenant,
            &ProfitQuery {
                compare: true,
                ..q.clone()
            },
        )
        .await
        .expect("compared profitability");
    let strip = |rows: &[crate::commerce::ProfitRow]| -> Vec<crate::commerce::ProfitRow> {
        rows.iter()
            .cloned()
            .map(|mut r| {
                r.previous_gross_profit = None;
                r.change_pct = None;
                r
            })
            .collect()
    };
    assert_eq!(
        strip(&compared.rows),
        plain.rows,
        "the comparison changed the current figures of {q:?}"
    );
    let profit_over = |period: Period, key: &Option<String>| -> Decimal {
        let sums = reference::profit_sums(
            facts,
            &SumsQuery {
                period,
                group_by: q.group_by,
                bucket: None,
                reporting: ron(),
                rank: None,
            },
        );
        crate::money::units_to_decimal(
            sums.iter()
                .find(|x| &x.key == key)
                .map_or(0, |x| x.profit_units()),
        )
    };
    for r in &compared.rows {
        let before = match (q.bucket, r.bucket) {
            (None, _) => q.period.previous(),
            (Some(b), Some(day)) => {
                let (i, first) = (b.index(day), b.index(q.period.from()));
                let from = b.start_of(i - 1).unwrap();
                let from = if i == first {
                    from
                } else {
                    from.max(q.period.from())
                };
                Period::new(from, day.pred_opt().unwrap()).unwrap()
            }
            (Some(_), None) => panic!("a bucketed row without its bucket: {r:?}"),
        };
        assert_eq!(
            r.previous_gross_profit,
            Some(profit_over(before, &r.key)),
            "previous gross profit of {r:?} ({before:?}) for {q:?}"
        );
    }
}

/// A campaign's sums over each of `periods` equal the reference, and so do every campaign's read at once (`campaign`
/// is the tenant's only one).
async fn assert_campaign_sums_match(
    s: &Shop,
    facts: Facts<'_>,
    cf: CampaignFacts<'_>,
    campaign: &Campaign,
    periods: &[Option<Period>],
) {
    for period in periods {
        let got =
            s.cs.store()
                .campaign_sums(s.w.tenant, campaign.id, *period, ron())
                .await
                .unwrap();
        assert_eq!(
            got,
            reference::campaign_sums(facts, cf, campaign.id, *period, ron()),
            "campaign sums over {period:?}"
        );
        let all =
            s.cs.store()
                .campaigns_sums(s.w.tenant, *period, ron())
                .await
                .unwrap();
        assert_eq!(
            all,
            reference::campaigns_sums(facts, cf, std::slice::from_ref(campaign), *period, ron()),
            "every campaign's sums over {period:?}"
        );
        assert_eq!(all[0].sums, got, "one campaign's sums, alone and among all");
    }
}

/// Every sums query of `groupings` over `periods` equals the reference from the documents, and the roll-ups
/// equal the documents.
async fn assert_reports_match(s: &Shop, partners: &[Partner], periods: &[Period]) {
    assert_reports_equal(s, partners, &all_documents(s).await, periods).await;
}

/// [`assert_reports_match`] with the documents given.
async fn assert_reports_equal(
    s: &Shop,
    partners: &[Partner],
    docs: &[Document],
    periods: &[Period],
) {
    for period in periods {
        for g in GroupBy::ALL {
            for bucket in [None, Some(Bucket::Month), Some(Bucket::Quarter)] {
                let q = SumsQuery {
                    bucket,
                    ..SumsQuery::by(g, *period, ron())
                };
                assert_sums_match(&s.cs, s.w.tenant, partners, docs, &q).await;
            }
        }
    }
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(check.is_clean(), "roll-ups differ: {:?}", check.differences);
}

/// One customer's sums over 2026.
async fn customer_sums(s: &Shop, p: PartnerId) -> Option<crate::commerce::ProfitSums> {
    let q = SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron());
    s.cs.store()
        .profit_sums(s.w.tenant, &q)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.key == Some(p.to_string()))
}

/// The partners as stored now.
async fn current(s: &Shop, ids: &[PartnerId]) -> Vec<Partner> {
    let mut out = Vec::new();
    for id in ids {
        out.push(s.w.crm.partner(s.w.tenant, *id).await.unwrap());
    }
    out
}

/// Every sales document of the shop's tenant, as stored.
async fn all_documents(s: &Shop) -> Vec<Document> {
    let mut out = Vec::new();
    for kind in [DocumentKind::Invoice, DocumentKind::CreditNote] {
        for n in 1..=20 {
            let number = format!("R-{n}");
            if let Some(d) =
                s.cs.store()
                    .document_by_number(s.w.tenant, kind, &number)
                    .await
                    .expect("document")
            {
                out.push(d);
            }
        }
    }
    out
}

/// The sales roll-ups (see [`RollupAction`](crate::commerce::RollupAction)) stay equal to the documents through
/// the writes that change them, and the reports read through them equal the reference from the documents, for
/// whole months and periods that start and end mid-month: a document replaced with other lines and into another
/// month, a credit note correcting an invoice of another period, a partner moved between groups twice in one day,
/// a document refused for a missing rate (nothing written), a partner merge and its undo (the documents'
/// customer moves and comes back), and a period of more than seven years. `verify_rollups` then finds nothing and
/// `rebuild_rollups` changes nothing.
pub async fn check_commerce_rollups(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let acme = s.customer("Acme").await;
    let beta = s.customer("Beta").await;
    let periods = [
        Period::year(2026).unwrap(),
        Period::new(day(2026, 1, 15), day(2026, 3, 10)).unwrap(),
        Period::new(day(2026, 2, 1), day(2026, 2, 28)).unwrap(),
        Period::new(day(2026, 2, 3), day(2026, 2, 27)).unwrap(),
        Period::new(day(2025, 12, 31), day(2026, 4, 1)).unwrap(),
        // More whole months than an adapter may read as a statement each (SQLite's merge reads them as one range).
        Period::new(day(2019, 6, 15), day(2026, 12, 31)).unwrap(),
    ];
    let invoice = |n: u32, p: &Partner, on: NaiveDate, qty: &str| {
        NewDocument::invoice(
            &format!("R-{n}"),
            p.id,
            on,
            "RON",
            vec![s.line(0, qty, "100", "60"), s.line(2, "1", "10", "4")],
        )
    };
    // Acme in group A for January, moved to B and back to A the same day in February.
    let mut acme = s.move_to_group(&acme, "A").await;
    s.record(invoice(1, &acme, day(2026, 1, 10), "2")).await;
    s.record(invoice(2, &beta, day(2026, 1, 31), "1")).await;
    for g in ["B", "A"] {
        acme = s.move_to_group(&acme, g).await;
        s.record(invoice(
            if g == "B" { 3 } else { 4 },
            &acme,
            day(2026, 2, 14),
            "1",
        ))
        .await;
    }
    assert_reports_match(&s, &[acme.clone(), beta.clone()], &periods).await;

    // Replaced with other lines, into March.
    let mut moved = invoice(2, &beta, day(2026, 3, 5), "7");
    moved.version = Some(1);
    let replaced = s.record(moved).await;
    assert_eq!(replaced.version, 2);
    assert_reports_match(&s, &[acme.clone(), beta.clone()], &periods).await;

    // A credit note in March for January's invoice.
    let cn = s.credit_back("R-5", acme.id, day(2026, 3, 2), "R-1");
    s.record(cn).await;
    assert_reports_match(&s, &[acme.clone(), beta.clone()], &periods).await;

    // A missing rate refuses the document: nothing is written, the roll-ups included.
    let e =
        s.cs.record_document(
            s.ctx(),
            NewDocument::invoice(
                "R-6",
                acme.id,
                day(2026, 2, 20),
                "EUR",
                vec![s.line(1, "1", "10", "5")],
            ),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("rate"),
        "a missing rate is named: {e}"
    );
    assert_reports_match(&s, &[acme.clone(), beta.clone()], &periods).await;

    // Beta merged into Acme: its document's customer moves (its group at issue time stays); undone, it returns.
    let plan =
        s.w.crm
            .plan_partner_merge(s.w.tenant, acme.id, &[beta.id], &Default::default())
            .await
            .expect("plan");
    let merge =
        s.w.crm
            .merge_partners(s.ctx(), &plan)
            .await
            .expect("merge")
            .record;
    assert!(
        customer_sums(&s, beta.id).await.is_none(),
        "the merged partner has no sales left"
    );
    assert_eq!(
        customer_sums(&s, acme.id).await.map(|x| x.invoices),
        Some(4)
    );
    assert_reports_match(&s, &current(&s, &[acme.id, beta.id]).await, &periods).await;
    s.w.crm.undo_merge(s.ctx(), merge.id).await.expect("undo");
    assert_eq!(
        customer_sums(&s, beta.id).await.map(|x| x.invoices),
        Some(1)
    );
    assert_reports_match(&s, &current(&s, &[acme.id, beta.id]).await, &periods).await;

    // A rebuild of right roll-ups changes nothing and reports nothing.
    let rebuilt = s.cs.rebuild_rollups(s.w.tenant).await.expect("rebuild");
    assert!(rebuilt.rebuilt && rebuilt.is_clean(), "{rebuilt:?}");
    assert_reports_match(&s, &current(&s, &[acme.id, beta.id]).await, &periods).await;
}

/// A bulk-load step through [`CommerceStore::rollups`] (what [`CommerceService::bulk_load`] runs).
///
/// # Errors
///
/// The store's.
pub async fn bulk(
    commerce: &Arc<dyn CommerceStore>,
    tenant: TenantId,
    step: crate::store::BulkStep,
) -> crate::error::Result<crate::store::BulkLoad> {
    let check = commerce
        .rollups(tenant, crate::commerce::RollupAction::Bulk(step))
        .await?;
    Ok(check.bulk.expect("a bulk step says where loading stands"))
}

/// `n` as the service would record it for `partner` (identity rate, no campaign, nothing settled), not stored.
fn ingested(
    s: &Shop,
    products: &BTreeMap<ProductId, crate::commerce::Product>,
    n: NewDocument,
    partner: &Partner,
) -> Document {
    use crate::commerce::{AppliedRate, DocumentFacts};
    let settled = BTreeMap::new();
    let facts = DocumentFacts {
        partner,
        products,
        rate: AppliedRate::identity(ron()),
        existing: None,
        corrected: None,
        campaign_exists: false,
        settled: &settled,
    };
    n.record(s.w.tenant, facts, s.w.clock.now())
        .expect("a valid document")
        .record()
        .clone()
}

/// The shop's products by id.
async fn products_of(s: &Shop, ids: &[ProductId]) -> BTreeMap<ProductId, crate::commerce::Product> {
    s.cs.store()
        .products(s.w.tenant, ids)
        .await
        .expect("products")
        .into_iter()
        .map(|p| (p.id(), p))
        .collect()
}

/// Stores `n` for `partner` through [`Store::ingest`] (identity rate, no campaign), as a host's import would.
pub async fn ingest_document(s: &Shop, n: NewDocument, partner: &Partner) -> Document {
    let ids: Vec<ProductId> = n.lines.iter().map(|l| l.product).collect();
    let products = products_of(s, &ids).await;
    let d = ingested(s, &products, n, partner);
    let cs = crate::store::ChangeSet::from_iter([crate::store::Write::Commerce(
        crate::commerce::CommerceWrite::InsertDocument(d.clone()),
    )]);
    assert_eq!(s.w.store().ingest(s.w.tenant, cs).await.expect("ingest"), 1);
    d
}

/// An import outside a bulk load ([`Store::ingest`] of many documents in one change set, more than an adapter
/// sums in one statement) keeps the roll-ups in its transaction: every report equals the reference from the
/// documents, for whole and mid-month periods, and `verify_rollups` finds nothing. An ingest that fails (its second
/// document's number the tenant already has) leaves neither its first document nor its sums behind.
pub async fn check_ingest_keeps_rollups(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let mut partners = Vec::new();
    for name in ["Acme", "Beta", "Gamma"] {
        partners.push(s.customer(name).await);
    }
    partners[1] = s.move_to_group(&partners[1], "A").await;
    let products = products_of(&s, &s.products).await;
    let docs: Vec<Document> = (0..1_201usize)
        .map(|i| {
            let p = &partners[i % 3];
            let issue = day(2026, 1, 1) + Duration::days((i % 150) as i64);
            let line = s.line(
                i % 3,
                &format!("{}", 1 + i % 4),
                &format!("{}.{:02}", 3 + i % 7, i % 100),
                "2",
            );
            let n = if i % 10 == 9 {
                NewDocument::credit_note(&format!("C-{i}"), p.id, issue, "RON", vec![line])
            } else {
                NewDocument::invoice(&format!("I-{i}"), p.id, issue, "RON", vec![line])
            };
            ingested(&s, &products, n, p)
        })
        .collect();
    let writes = |docs: &[Document]| {
        crate::store::ChangeSet::from_iter(docs.iter().map(|d| {
            crate::store::Write::Commerce(crate::commerce::CommerceWrite::InsertDocument(d.clone()))
        }))
    };
    assert_eq!(
        s.w.store()
            .ingest(s.w.tenant, writes(&docs))
            .await
            .expect("ingest"),
        docs.len() as u64
    );
    let periods = [
        Period::year(2026).unwrap(),
        Period::new(day(2026, 1, 15), day(2026, 4, 14)).unwrap(),
    ];
    // Every document as stored.
    let mut stored = Vec::with_capacity(docs.len());
    for d in &docs {
        stored.push(
            s.cs.store()
                .document_by_number(s.w.tenant, d.kind, &d.number)
                .await
                .expect("a read")
                .expect("the document is stored"),
        );
    }
    assert_eq!(stored, docs);
    assert_reports_equal(&s, &partners, &stored, &periods).await;
    let before = customer_sums(&s, partners[0].id).await;
    // A failing import: a new invoice, then one whose number the tenant already has.
    let again: Vec<Document> = [
        NewDocument::invoice(
            "I-NEW",
            partners[0].id,
            day(2026, 2, 1),
            "RON",
            vec![s.line(0, "5", "10", "1")],
        ),
        NewDocument::invoice(
            "I-7",
            partners[0].id,
            day(2026, 2, 2),
            "RON",
            vec![s.line(0, "5", "10", "1")],
        ),
    ]
    .into_iter()
    .map(|n| ingested(&s, &products, n, &partners[0]))
    .collect();
    assert!(s
        .w
        .store()
        .ingest(s.w.tenant, writes(&again))
        .await
        .is_err());
    assert_eq!(
        s.cs.store()
            .document_by_number(s.w.tenant, DocumentKind::Invoice, "I-NEW")
            .await
            .expect("a read"),
        None
    );
    assert_eq!(customer_sums(&s, partners[0].id).await, before);
    assert_reports_equal(&s, &partners, &stored, &periods).await;
}

/// A shop whose customer Acme has invoice R-1 of January, recorded through the service.
async fn shop_with_an_invoice(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
) -> (Shop, Partner) {
    let s = Shop::new(store, commerce).await;
    let acme = s.customer("Acme").await;
    s.record(NewDocument::invoice(
        "R-1",
        acme.id,
        day(2026, 1, 10),
        "RON",
        vec![s.line(0, "2", "100", "60")],
    ))
    .await;
    (s, acme)
}

/// The invoices a bulk load ingests in these checks: R-2 of `first` in February, R-3 and R-4 of `second` at the
/// start and after the middle of March.
fn loaded_invoices(s: &Shop, first: PartnerId, second: PartnerId) -> Vec<NewDocument> {
    vec![
        NewDocument::invoice(
            "R-2",
            first,
            day(2026, 2, 14),
            "RON",
            vec![s.line(0, "1", "50", "20"), s.line(1, "3", "10", "4")],
        ),
        NewDocument::invoice(
            "R-3",
            second,
            day(2026, 3, 3),
            "RON",
            vec![s.line(2, "1", "70", "30")],
        ),
        NewDocument::invoice(
            "R-4",
            second,
            day(2026, 3, 20),
            "RON",
            vec![s.line(0, "5", "100", "60"), s.line(2, "2", "70", "30")],
        ),
    ]
}

/// A tenant with a bulk load left open (a process that crashed mid-load): one invoice recorded before it, three
/// ingested during it. An adapter's restart test opens the store again and checks the load is finished (see
/// [`assert_bulk_load_finished`]).
pub async fn bulk_load_left_open(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
) -> TenantId {
    let (s, acme) = shop_with_an_invoice(store, commerce).await;
    let begun = bulk(commerce, s.w.tenant, crate::store::BulkStep::Begin)
        .await
        .expect("begin");
    assert!(begun.open && begun.deferred_indexes > 0, "{begun:?}");
    for n in loaded_invoices(&s, acme.id, acme.id) {
        ingest_document(&s, n, &acme).await;
    }
    let check = commerce
        .rollups(s.w.tenant, crate::commerce::RollupAction::Verify)
        .await
        .expect("verify");
    assert!(
        !check.is_clean(),
        "the ingested documents wait for the finish"
    );
    s.w.tenant
}

/// After a store was opened again (or its loads finished) following [`bulk_load_left_open`]: no load is open, no
/// index is deferred, and the roll-ups equal the documents, the ingested ones counted.
pub async fn assert_bulk_load_finished(commerce: &Arc<dyn CommerceStore>, tenant: TenantId) {
    let status = bulk(commerce, tenant, crate::store::BulkStep::Status)
        .await
        .expect("status");
    assert_eq!(
        (status.open, status.open_loads, status.deferred_indexes),
        (false, 0, 0),
        "{status:?}"
    );
    let check = commerce
        .rollups(tenant, crate::commerce::RollupAction::Verify)
        .await
        .expect("verify");
    assert!(check.is_clean(), "{check:?}");
    let q = SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron());
    let sums = commerce.profit_sums(tenant, &q).await.expect("sums");
    assert_eq!(sums.iter().map(|x| x.invoices).sum::<u64>(), 4, "{sums:?}");
}

/// A bulk load ([`BulkStep`](crate::store::BulkStep), through [`CommerceStore::rollups`]): `Status` reads it, `Begin` and `Finish` are idempotent. Between them the
/// tenant's ingested documents are stored and read back as always, a document recorded through the service and
/// another tenant's recordings keep their roll-ups, and (on a store that defers work: the indexes it dropped
/// are counted) the roll-ups wait for the finish. A second tenant's open load keeps the indexes deferred after the
/// first finishes; the last finish builds them. After the finish every report equals the reference from the
/// documents, for whole months and mid-month periods, and `verify_rollups` finds nothing.
pub async fn check_bulk_load(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    use crate::store::BulkStep;
    let other = Shop::new(store, commerce).await;
    let o = other.customer("Other").await;
    let (s, acme) = shop_with_an_invoice(store, commerce).await;
    let beta = s.customer("Beta").await;
    let status = bulk(commerce, s.w.tenant, BulkStep::Status).await.unwrap();
    assert_eq!(status, crate::store::BulkLoad::default());
    let begun = bulk(commerce, s.w.tenant, BulkStep::Begin).await.unwrap();
    assert!(
        begun.open && begun.open_loads == 1 && !begun.rebuilt,
        "{begun:?}"
    );
    let defers = begun.deferred_indexes > 0;
    assert_eq!(
        bulk(commerce, s.w.tenant, BulkStep::Begin).await.unwrap(),
        begun,
        "a second Begin changes nothing"
    );
    assert_eq!(
        bulk(commerce, s.w.tenant, BulkStep::Status).await.unwrap(),
        begun
    );
    let docs = loaded_invoices(&s, acme.id, beta.id);
    for n in docs {
        let partner = if n.partner == acme.id { &acme } else { &beta };
        ingest_document(&s, n, partner).await;
    }
    s.record(NewDocument::invoice(
        "R-5",
        acme.id,
        day(2026, 4, 2),
        "RON",
        vec![s.line(1, "1", "10", "4")],
    ))
    .await;
    other
        .record(NewDocument::invoice(
            "R-1",
            o.id,
            day(2026, 2, 5),
            "RON",
            vec![other.line(0, "1", "5", "1")],
        ))
        .await;
    let other_check = other.cs.verify_rollups(other.w.tenant).await.unwrap();
    assert!(other_check.is_clean(), "{other_check:?}");
    // Reads answer during the load.
    let r4 =
        s.cs.store()
            .document_by_number(s.w.tenant, DocumentKind::Invoice, "R-4")
            .await
            .unwrap()
            .expect("R-4 is stored");
    assert_eq!((r4.partner(), r4.lines().len()), (beta.id, 2));
    assert_eq!(all_documents(&s).await.len(), 5);
    if defers {
        let check = s.cs.verify_rollups(s.w.tenant).await.unwrap();
        assert!(
            !check.is_clean(),
            "the ingested documents wait for the finish"
        );
    }
    // Another tenant's load keeps the indexes deferred after this one finishes.
    let both = bulk(commerce, other.w.tenant, BulkStep::Begin)
        .await
        .unwrap();
    assert_eq!((both.open, both.open_loads), (true, 2));
    assert_eq!(both.deferred_indexes, begun.deferred_indexes);
    let finished = bulk(commerce, s.w.tenant, BulkStep::Finish).await.unwrap();
    assert_eq!(
        finished,
        crate::store::BulkLoad {
            open: false,
            open_loads: 1,
            deferred_indexes: begun.deferred_indexes,
            rebuilt: defers,
        }
    );
    let periods = [
        Period::year(2026).unwrap(),
        Period::new(day(2026, 1, 15), day(2026, 3, 10)).unwrap(),
        Period::new(day(2026, 3, 1), day(2026, 3, 31)).unwrap(),
    ];
    assert_reports_match(&s, &current(&s, &[acme.id, beta.id]).await, &periods).await;
    let last = bulk(commerce, other.w.tenant, BulkStep::Finish)
        .await
        .unwrap();
    assert_eq!(
        (
            last.open,
            last.open_loads,
            last.deferred_indexes,
            last.rebuilt
        ),
        (false, 0, 0, defers)
    );
    assert_eq!(
        bulk(commerce, s.w.tenant, BulkStep::Finish).await.unwrap(),
        crate::store::BulkLoad::default(),
        "a second Finish changes nothing"
    );
    let other_check = other.cs.verify_rollups(other.w.tenant).await.unwrap();
    assert!(other_check.is_clean(), "{other_check:?}");
    assert_reports_match(&s, &current(&s, &[acme.id, beta.id]).await, &periods).await;
}

/// Every document of `tenant` (the first 1,000, in id order) as its JSON text, for an adapter's migration tests to
/// compare before and after; panics unless some document has lines.
pub async fn documents_json(commerce: &dyn CommerceStore, tenant: TenantId) -> Vec<String> {
    let key = crate::commerce::CommerceKey::DocumentsAfter {
        after: None,
        limit: 1000,
        filter: Default::default(),
    };
    let docs: Vec<String> = commerce
        .fetch_commerce(tenant, &key)
        .await
        .expect("documents")
        .iter()
        .map(|r| match r {
            crate::commerce::CommerceRecord::Document(d) => serde_json::to_string(d).expect("json"),
            other => panic!("not a document: {other:?}"),
        })
        .collect();
    assert!(
        docs.iter().any(|d| d.contains("\"unit_price\"")),
        "{docs:?}"
    );
    docs
}

/// Records a few invoices and a credit note of 2026 for two customers in two groups in a fresh tenant, and a
/// telemarketing campaign calling both (no answer from the first on 2 March, the second not interested the day
/// after), and returns the tenant and the reporting currency (for an adapter's own tests, such as a migration's).
pub async fn record_sample_sales(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
) -> (TenantId, Currency) {
    let s = Shop::new(store, commerce).await;
    // The second invoice of each partner is linked to a campaign (its roll-up is built by a migration too).
    let campaign =
        s.cs.create_campaign(s.ctx(), s.year_campaign("Sample", Channel::Email))
            .await
            .expect("campaign");
    for (i, (name, g)) in [("Acme", "A"), ("Beta", "B")].into_iter().enumerate() {
        let mut n = NewPartner::company(name).with_role(PartnerRole::Customer);
        n.group = Some(g.into());
        let p =
            s.w.crm
                .create_partner(s.ctx(), n)
                .await
                .expect("partner")
                .record;
        for (k, on) in [day(2026, 1, 10), day(2026, 2, 20), day(2026, 11, 30)]
            .into_iter()
            .enumerate()
        {
            let mut n = NewDocument::invoice(
                &format!("S-{i}-{k}"),
                p.id,
                on,
                "RON",
                vec![s.line(k, "2", "100", "60")],
            );
            if k == 1 {
                n.campaign = Some(campaign.id);
            }
            s.record(n).await;
        }
        let cn = s.credit_back(
            &format!("SC-{i}"),
            p.id,
            day(2026, 3, 1),
            &format!("S-{i}-0"),
        );
        s.record(cn).await;
    }
    let mut calls = s.year_campaign("Sample calls", Channel::Telemarketing);
    calls.criteria = Some(Criteria::Role {
        role: PartnerRole::Customer,
    });
    let calls =
        s.cs.create_campaign(s.ctx(), calls)
            .await
            .expect("campaign");
    let launch =
        s.cs.launch_campaign(s.ctx(), calls.id, calls.version)
            .await
            .expect("launch");
    assert_eq!(launch.calls.len(), 2, "both customers called");
    let agent = Context::user(s.w.tenant, s.w.agent);
    s.cs.record_call_outcome(&agent, launch.calls[0].id, CallOutcome::NoAnswer)
        .await
        .expect("no answer");
    s.w.clock.advance(Duration::days(1));
    s.cs.record_call_outcome(&agent, launch.calls[1].id, CallOutcome::NotInterested)
        .await
        .expect("not interested");
    (s.w.tenant, ron())
}

/// The campaign report counts the customers a campaign invoiced in a whole calendar month, quarter or year, or
/// over all time, from its roll-up, and any other period from the documents; `verify_rollups` finds what differs
/// and `rebuild_rollups` repairs it. Acme is invoiced in January through the campaign; Beta in February, and
/// credited back in full in March, so Beta counts for February but not for the first quarter or the year. After
/// `tamper` (the adapter's own statements) adds 5 to every yearly count of the tenant and deletes its monthly
/// customer rows, the year's report shows the tampered count (so it reads it), a mid-month period does not, the
/// check lists the year's count and the three monthly rows with both sides, and after a rebuild every report
/// equals the reference again.
pub async fn check_campaign_rollup_repair<F>(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    tamper: F,
) where
    F: Fn(TenantId) -> futures::future::BoxFuture<'static, ()>,
{
    let s = Shop::new(store, commerce).await;
    let c =
        s.cs.create_campaign(s.ctx(), s.year_campaign("Winter", Channel::Email))
            .await
            .expect("campaign");
    let acme = s.customer("Acme").await;
    let beta = s.customer("Beta").await;
    let invoice = |n: &str, p: &Partner, on| {
        NewDocument::invoice(n, p.id, on, "RON", vec![s.line(0, "1", "100", "60")])
            .with_campaign(c.id)
    };
    s.record(invoice("W-1", &acme, day(2026, 1, 10))).await;
    s.record(invoice("W-2", &beta, day(2026, 2, 14))).await;
    s.record(s.credit_back("W-3", beta.id, day(2026, 3, 3), "W-2"))
        .await;
    let partners = current(&s, &[acme.id, beta.id]).await;
    let docs = {
        let mut out = Vec::new();
        for (kind, n) in [
            (DocumentKind::Invoice, "W-1"),
            (DocumentKind::Invoice, "W-2"),
            (DocumentKind::CreditNote, "W-3"),
        ] {
            out.push(
                s.cs.store()
                    .document_by_number(s.w.tenant, kind, n)
                    .await
                    .expect("document")
                    .expect("recorded"),
            );
        }
        out
    };
    assert!(
        docs.iter().all(|d| d.campaign == Some(c.id)),
        "the credit note inherits the campaign"
    );
    let facts = Facts {
        partners: &partners,
        documents: &docs,
    };
    let cf = CampaignFacts {
        targets: &[],
        leads: &[],
        costs: &[],
    };
    let year = Period::year(2026).unwrap();
    let february = Period::new(day(2026, 2, 1), day(2026, 2, 28)).unwrap();
    let q1 = Period::new(day(2026, 1, 1), day(2026, 3, 31)).unwrap();
    let mid = Period::new(day(2026, 1, 5), day(2026, 2, 20)).unwrap();
    let invoiced = |period: Option<Period>| {
        let cs = s.cs.clone();
        let (tenant, id) = (s.w.tenant, c.id);
        async move {
            cs.store()
                .campaign_sums(tenant, id, period, ron())
                .await
                .expect("sums")
                .invoiced_customers
        }
    };
    let want = [
        (None, 1),
        (Some(year), 1),
        (Some(q1), 1),
        (Some(february), 1),
        (Some(mid), 2),
    ];
    for (period, n) in want {
        assert_eq!(
            invoiced(period).await,
            n,
            "invoiced customers over {period:?}"
        );
    }
    let periods: Vec<Option<Period>> = want.iter().map(|(p, _)| *p).collect();
    assert_campaign_sums_match(&s, facts, cf, &c, &periods).await;
    assert!(s.cs.verify_rollups(s.w.tenant).await.unwrap().is_clean());

    tamper(s.w.tenant).await;
    assert_eq!(
        invoiced(Some(year)).await,
        6,
        "the year's count is read from the roll-up"
    );
    assert_eq!(
        invoiced(Some(mid)).await,
        2,
        "a mid-month period reads the documents"
    );
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(!check.rebuilt && !check.more);
    assert!(
        check.differences.is_empty() && check.facts.is_empty(),
        "{check:?}"
    );
    let month = |d: NaiveDate| Some(Bucket::Month.index(d));
    // (bucket, index, partner, stored, lines)
    type Row = (
        Option<Bucket>,
        Option<i64>,
        Option<PartnerId>,
        Option<i64>,
        Option<i64>,
    );
    let mut got: Vec<Row> = check
        .campaigns
        .iter()
        .map(|d| {
            assert_eq!((d.reporting, d.campaign), (ron(), c.id), "{d:?}");
            (d.bucket, Some(d.index), d.partner, d.stored, d.lines)
        })
        .collect();
    got.sort();
    let mut want = vec![
        (Some(Bucket::Year), Some(2026), None, Some(6), Some(1)),
        (
            Some(Bucket::Month),
            month(day(2026, 1, 1)),
            Some(acme.id),
            None,
            Some(1_000_000),
        ),
        (
            Some(Bucket::Month),
            month(day(2026, 2, 1)),
            Some(beta.id),
            None,
            Some(1_000_000),
        ),
        (
            Some(Bucket::Month),
            month(day(2026, 3, 1)),
            Some(beta.id),
            None,
            Some(-1_000_000),
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{check:?}");

    let rebuilt = s.cs.rebuild_rollups(s.w.tenant).await.expect("rebuild");
    assert!(rebuilt.rebuilt);
    assert_eq!(
        rebuilt.campaigns, check.campaigns,
        "a rebuild reports what it repaired"
    );
    assert!(s.cs.verify_rollups(s.w.tenant).await.unwrap().is_clean());
    assert_campaign_sums_match(&s, facts, cf, &c, &periods).await;
}

/// Customer Acme with invoices R-1, R-2 and R-3 of January 10th, February 14th and March 3rd, 2026 (two of
/// product 0 at 100, cost 60, each).
async fn acme_with_three_invoices(s: &Shop) -> (Partner, Vec<Document>) {
    let acme = s.customer("Acme").await;
    let mut recorded = Vec::new();
    for (n, on) in [
        (1, day(2026, 1, 10)),
        (2, day(2026, 2, 14)),
        (3, day(2026, 3, 3)),
    ] {
        recorded.push(
            s.record(NewDocument::invoice(
                &format!("R-{n}"),
                acme.id,
                on,
                "RON",
                vec![s.line(0, "2", "100", "60")],
            ))
            .await,
        );
    }
    (acme, recorded)
}

/// `verify_rollups` checks the documents' sums against their lines, and `rebuild_rollups` takes the lines'. After
/// `tamper` (the adapter's own statements) adds 7 to invoice R-2's stored revenue and takes 3 from its cost, and
/// adds 5 to the revenue of R-3's line, the check lists both documents with their stored sums and their lines'
/// (and the months whose roll-ups no longer equal the documents); a rebuild sets each document's sums from its
/// lines, so the reports equal what the lines give (R-2 as before, R-3 five units more) and the check is clean.
pub async fn check_document_sums_repair<F>(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    tamper: F,
) where
    F: Fn(TenantId) -> futures::future::BoxFuture<'static, ()>,
{
    let s = Shop::new(store, commerce).await;
    let (_, recorded) = acme_with_three_invoices(&s).await;
    let year = SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron());
    let by_month = SumsQuery {
        bucket: Some(Bucket::Month),
        ..SumsQuery::by(GroupBy::Group, Period::year(2026).unwrap(), ron())
    };
    let before = s.cs.store().profit_sums(s.w.tenant, &year).await.unwrap();
    let months_before =
        s.cs.store()
            .profit_sums(s.w.tenant, &by_month)
            .await
            .unwrap();
    assert!(s.cs.verify_rollups(s.w.tenant).await.unwrap().is_clean());
    tamper(s.w.tenant).await;
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    let (r2, r3) = (&recorded[1], &recorded[2]);
    let mut want = vec![
        crate::commerce::DocumentDifference {
            document: r2.id,
            kind: DocumentKind::Invoice,
            number: "R-2".into(),
            stored: (r2.revenue_units + 7, r2.cost_units - 3),
            lines: (r2.revenue_units, r2.cost_units),
        },
        crate::commerce::DocumentDifference {
            document: r3.id,
            kind: DocumentKind::Invoice,
            number: "R-3".into(),
            stored: (r3.revenue_units, r3.cost_units),
            lines: (r3.revenue_units + 5, r3.cost_units),
        },
    ];
    want.sort_by_key(|d| *d.document.as_uuid());
    assert_eq!(check.documents, want, "{check:?}");
    assert!(
        check
            .differences
            .iter()
            .any(|d| d.month == Bucket::Month.index(day(2026, 2, 1))),
        "February's roll-ups differ from R-2's tampered sums: {check:?}"
    );
    assert!(!check.is_clean());
    let rebuilt = s.cs.rebuild_rollups(s.w.tenant).await.expect("rebuild");
    assert!(rebuilt.rebuilt);
    let after = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(after.is_clean(), "{after:?}");
    let mut want = before.clone();
    want[0].revenue_units += 5;
    assert_eq!(
        s.cs.store().profit_sums(s.w.tenant, &year).await.unwrap(),
        want,
        "the year is what the lines give"
    );
    let months =
        s.cs.store()
            .profit_sums(s.w.tenant, &by_month)
            .await
            .unwrap();
    let march = Bucket::Month.index(day(2026, 3, 1));
    for (got, was) in months.iter().zip(&months_before) {
        let plus = if got.bucket == Some(march) { 5 } else { 0 };
        assert_eq!(got.revenue_units, was.revenue_units + plus, "{got:?}");
        assert_eq!(got.cost_units, was.cost_units, "{got:?}");
    }
    assert_eq!(months.len(), months_before.len());
    let r2_now =
        s.cs.store()
            .document_by_number(s.w.tenant, DocumentKind::Invoice, "R-2")
            .await
            .unwrap()
            .expect("R-2");
    assert_eq!(
        (r2_now.revenue_units, r2_now.cost_units),
        (r2.revenue_units, r2.cost_units),
        "R-2's sums are its lines' again"
    );
}

/// Reports read whole months from the roll-ups, `verify_rollups` finds what differs and `rebuild_rollups` repairs
/// it: after `tamper` (the adapter's own statement) adds 1 to every stored revenue of the tenant's month roll-up,
/// deletes its March rows and adds 1 to the customer's 2026 in the year roll-up, a report over whole months shows
/// the tampered sums (so it reads them), a whole year by customer shows the year's, one over partial months does
/// not, the check lists every damaged month of every grouping and the damaged year with both sides, and after a
/// rebuild every report equals the reference again and the check is clean. Another tenant's roll-ups are not
/// touched by the rebuild.
pub async fn check_rollup_repair<F>(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    tamper: F,
) where
    F: Fn(TenantId) -> futures::future::BoxFuture<'static, ()>,
{
    let other = Shop::new(store, commerce).await;
    let o = other.customer("Other").await;
    other
        .record(NewDocument::invoice(
            "R-1",
            o.id,
            day(2026, 1, 5),
            "RON",
            vec![other.line(0, "1", "5", "1")],
        ))
        .await;
    let s = Shop::new(store, commerce).await;
    let (acme, _) = acme_with_three_invoices(&s).await;
    let year = SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron());
    let before = s.cs.store().profit_sums(s.w.tenant, &year).await.unwrap();
    let group_year = SumsQuery::by(GroupBy::Group, Period::year(2026).unwrap(), ron());
    let group_before =
        s.cs.store()
            .profit_sums(s.w.tenant, &group_year)
            .await
            .unwrap();
    // Segments read the last sales and the bought months: after March 2nd, and bought the category in February.
    let after_march_2 = Criteria::LastSale {
        when: LastSale::After {
            date: day(2026, 3, 2),
        },
    };
    let bought_february = Criteria::Bought {
        mode: BoughtMode::Any,
        items: vec![Item::Category(s.category)],
        period: Period::new(day(2026, 2, 1), day(2026, 2, 28)).unwrap(),
    };
    let members = |c: Criteria| {
        let cs = s.cs.clone();
        let tenant = s.w.tenant;
        async move {
            cs.store()
                .segment(tenant, &c, day(2026, 6, 1), ron())
                .await
                .expect("segment")
                .into_iter()
                .map(|m| m.partner)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(members(after_march_2.clone()).await, vec![acme.id]);
    assert_eq!(members(bought_february.clone()).await, vec![acme.id]);
    tamper(s.w.tenant).await;
    assert_eq!(
        members(after_march_2.clone()).await,
        Vec::<PartnerId>::new(),
        "a segment reads the last sales (moved back a day)"
    );
    assert_eq!(
        members(bought_february.clone()).await,
        Vec::<PartnerId>::new(),
        "a segment reads the bought months (February's deleted)"
    );

    let tampered =
        s.cs.store()
            .profit_sums(s.w.tenant, &group_year)
            .await
            .unwrap();
    assert_eq!(
        tampered[0].revenue_units,
        group_before[0].revenue_units + 2 - 2_000_000,
        "a report over whole months reads the roll-ups (January and February +1, March gone)"
    );
    let tampered = s.cs.store().profit_sums(s.w.tenant, &year).await.unwrap();
    assert_eq!(
        tampered[0].revenue_units,
        before[0].revenue_units + 1,
        "a whole year by customer reads the year roll-up (+1), not the months"
    );
    let mid = Period::new(day(2026, 1, 2), day(2026, 3, 30)).unwrap();
    let docs = all_documents(&s).await;
    let partners = current(&s, &[acme.id]).await;
    // No whole month in January 2nd–February 27th: its days are read from the day roll-up, whose groups' January
    // 10th was tampered with (+1) and whose campaigns' was not.
    let edges = Period::new(day(2026, 1, 2), day(2026, 2, 27)).unwrap();
    assert_sums_match(
        &s.cs,
        s.w.tenant,
        &partners,
        &docs,
        &SumsQuery::by(GroupBy::Campaign, edges, ron()),
    )
    .await;
    let revenue = |g: GroupBy| {
        let cs = s.cs.clone();
        let tenant = s.w.tenant;
        async move {
            let rows = cs
                .store()
                .profit_sums(tenant, &SumsQuery::by(g, edges, ron()))
                .await
                .expect("profit");
            rows.iter().map(|r| r.revenue_units).sum::<i128>()
        }
    };
    assert_eq!(
        revenue(GroupBy::Group).await,
        revenue(GroupBy::Campaign).await + 1,
        "the partial months read the day roll-up"
    );
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(!check.rebuilt && !check.more);
    // January and February in every grouping (+1), March in every grouping (gone), the groups' January 10th and
    // the customer's 2026.
    assert_eq!(
        check.differences.len(),
        3 * GroupBy::ALL.len() + 2,
        "{check:?}"
    );
    let years: Vec<_> = check
        .differences
        .iter()
        .filter(|d| d.year.is_some())
        .collect();
    assert_eq!(years.len(), 1, "{check:?}");
    let y = years[0];
    assert_eq!(
        (y.year, y.group_by, y.month, y.day),
        (
            Some(2026),
            GroupBy::Customer,
            crate::commerce::Bucket::Month.index(day(2026, 1, 1)),
            None
        ),
        "{y:?}"
    );
    let lines = y.lines.expect("the year has sales");
    assert_eq!((lines.revenue_units, lines.invoices), (6_000_000, 3));
    assert_eq!(
        y.stored.map(|x| x.revenue_units),
        Some(lines.revenue_units + 1)
    );
    assert!(
        check
            .differences
            .iter()
            .any(|d| d.group_by == GroupBy::Group
                && d.day == Some(day(2026, 1, 10))
                && d.month == crate::commerce::Bucket::Month.index(day(2026, 1, 1))),
        "{check:?}"
    );
    for d in check.differences.iter().filter(|d| d.year.is_none()) {
        let lines = d.lines.expect("the documents have sales in each month");
        match d.stored {
            Some(stored) => {
                assert_eq!(stored.revenue_units, lines.revenue_units + 1, "{d:?}");
                assert_eq!(
                    (stored.cost_units, stored.invoices, stored.documents),
                    (lines.cost_units, lines.invoices, lines.documents)
                );
            }
            None => assert_eq!(
                crate::commerce::Bucket::Month.start_of(d.month),
                Some(day(2026, 3, 1)),
                "only March's rows were deleted: {d:?}"
            ),
        }
        assert_eq!((lines.revenue_units, lines.invoices), (2_000_000, 1));
    }
    // The partner facts: the last sale a day early, and February's category gone.
    assert!(
        check.facts.contains(&FactDifference {
            partner: acme.id,
            fact: PartnerFact::LastSale {
                stored: Some(day(2026, 3, 2)),
                lines: Some(day(2026, 3, 3)),
            },
        }),
        "{:?}",
        check.facts
    );
    let mut bought: Vec<Item> = check
        .facts
        .iter()
        .filter_map(|f| match f.fact {
            PartnerFact::Bought {
                item,
                month,
                stored: None,
                lines: Some(20_000),
            } if f.partner == acme.id
                && crate::commerce::Bucket::Month.start_of(month) == Some(day(2026, 2, 1)) =>
            {
                Some(item)
            }
            _ => None,
        })
        .collect();
    bought.sort();
    // The roll-up keeps categories only (a product's lines are read from their index).
    assert_eq!(
        bought,
        vec![Item::Category(s.category)],
        "{:?}",
        check.facts
    );
    assert_eq!(check.facts.len(), 2, "{:?}", check.facts);
    let rebuilt = s.cs.rebuild_rollups(s.w.tenant).await.expect("rebuild");
    assert!(rebuilt.rebuilt);
    assert_eq!(
        (&rebuilt.differences, &rebuilt.facts),
        (&check.differences, &check.facts),
        "a rebuild reports what it repaired"
    );
    assert!(s.cs.verify_rollups(s.w.tenant).await.unwrap().is_clean());
    assert_eq!(members(after_march_2).await, vec![acme.id]);
    assert_eq!(members(bought_february).await, vec![acme.id]);
    assert_eq!(
        s.cs.store().profit_sums(s.w.tenant, &year).await.unwrap(),
        before
    );
    assert_sums_match(
        &s.cs,
        s.w.tenant,
        &partners,
        &docs,
        &SumsQuery::by(GroupBy::Owner, mid, ron()),
    )
    .await;
    assert!(other
        .cs
        .verify_rollups(other.w.tenant)
        .await
        .unwrap()
        .is_clean());
    assert_eq!(
        other
            .cs
            .store()
            .profit_sums(
                other.w.tenant,
                &SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron())
            )
            .await
            .unwrap()[0]
            .revenue_units,
        50_000,
        "the other tenant's roll-ups are neither tampered nor rebuilt"
    );
}

/// Recording is idempotent by number; a change needs the version and replaces the document whole; credit notes
/// reverse; foreign-currency documents are converted at their issue date with the rate stored.
pub async fn check_commerce_documents(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let acme = s.customer("Acme").await;
    let acme_id = acme.id;
    let inv = NewDocument::invoice(
        "F-1",
        acme.id,
        day(2026, 1, 10),
        "RON",
        vec![s.line(0, "2", "100", "60")],
    );
    let first = s.record(inv.clone()).await;
    assert_eq!(
        (first.revenue_units, first.cost_units, first.version),
        (2_000_000, 1_200_000, 1)
    );
    let again =
        s.cs.record_document(s.ctx(), inv.clone())
            .await
            .expect("same again");
    assert!(
        !again.recorded.changed() && again.events.is_empty(),
        "the same document again is a no-op"
    );
    let stored =
        s.cs.store()
            .document_by_number(s.w.tenant, DocumentKind::Invoice, "F-1")
            .await
            .unwrap()
            .expect("stored");
    assert_eq!(stored, first, "documents round-trip exactly");
    assert_eq!(
        s.cs.store().document(s.w.tenant, first.id).await.unwrap(),
        first
    );

    let mut changed = inv.clone();
    changed.lines[0].quantity = dec("3");
    let e =
        s.cs.record_document(s.ctx(), changed.clone())
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("version"), "{e}");
    changed.version = Some(1);
    let replaced =
        s.cs.record_document(s.ctx(), changed)
            .await
            .expect("replace");
    let replaced = match replaced.recorded {
        Recorded::Replaced {
            record,
            expected_version: 1,
        } => record,
        other => panic!("expected a replacement, got {other:?}"),
    };
    assert_eq!((replaced.id, replaced.version), (first.id, 2));

    let period = Period::new(day(2026, 1, 1), day(2026, 12, 31)).unwrap();
    let q = SumsQuery::by(GroupBy::Customer, period, ron());
    let sums = s.cs.store().profit_sums(s.w.tenant, &q).await.unwrap();
    assert_eq!(sums.len(), 1);
    assert_eq!(
        (sums[0].revenue_units, sums[0].cost_units, sums[0].invoices),
        (3_000_000, 1_800_000, 1),
        "never counted twice"
    );

    let cn = s.credit_back("C-1", acme.id, day(2026, 1, 20), "F-1");
    let cn = s.record(cn).await;
    assert_eq!((cn.revenue_units, cn.cost_units), (-1_000_000, -600_000));

    s.cs.record_rate(s.ctx(), "EUR", "RON", day(2026, 1, 30), dec("4.9771"))
        .await
        .expect("rate");
    // The rate of Friday the 30th still applies on Monday the 2nd.
    let eur = s
        .record(NewDocument::invoice(
            "F-2",
            acme.id,
            day(2026, 2, 2),
            "EUR",
            vec![s.line(1, "1", "10.01", "5")],
        ))
        .await;
    assert_eq!(eur.rate.rate, dec("4.9771"));
    assert_eq!(eur.rate.reporting, ron());
    assert_eq!(
        eur.revenue_units, 498_200,
        "10.01 EUR × 4.9771 = 49.8208 → 49.82 RON"
    );
    let docs = vec![replaced, cn, eur];
    let partners = vec![acme];
    for g in GroupBy::ALL {
        for bucket in [None, Some(Bucket::Month)] {
            assert_sums_match(
                &s.cs,
                s.w.tenant,
                &partners,
                &docs,
                &SumsQuery {
                    group_by: g,
                    bucket,
                    ..q.clone()
                },
            )
            .await;
        }
    }
    let report =
        s.cs.profitability(s.w.tenant, &ProfitQuery::by(GroupBy::Customer, period))
            .await
            .unwrap();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].revenue, dec("249.82"));
    assert_eq!(
        report.rows[0].gross_profit,
        dec("104.93"),
        "cost: 180 − 60 + 5 EUR × 4.9771 = 24.89"
    );
    assert_eq!(report.rows[0].label.as_deref(), Some("Acme"));
    assert_eq!(report.rows[0].invoices, 2);
    // By month, the customer heads one row per month it was invoiced in; each row carries its name.
    let daily =
        s.cs.profitability(
            s.w.tenant,
            &ProfitQuery {
                bucket: Some(Bucket::Month),
                ..ProfitQuery::by(GroupBy::Customer, period)
            },
        )
        .await
        .unwrap();
    assert_eq!(daily.rows.len(), 2, "January and February");
    assert!(
        daily
            .rows
            .iter()
            .all(|r| r.label.as_deref() == Some("Acme")),
        "{:?}",
        daily.rows
    );

    // The same new document recorded eight times at once (a host retrying after a timeout) is stored once.
    let dup = NewDocument::invoice(
        "F-9",
        acme_id,
        day(2026, 1, 11),
        "RON",
        vec![s.line(2, "1", "5", "1")],
    );
    let all =
        futures::future::join_all((0..8).map(|_| s.cs.record_document(s.ctx(), dup.clone()))).await;
    let all: Vec<_> = all
        .into_iter()
        .map(|r| r.expect("concurrent recording"))
        .collect();
    assert_eq!(
        all.iter().filter(|o| o.recorded.changed()).count(),
        1,
        "exactly one of eight concurrent recordings inserts"
    );
    assert!(all
        .iter()
        .all(|o| o.recorded.record().id == all[0].recorded.record().id));
    let report =
        s.cs.profitability(s.w.tenant, &ProfitQuery::by(GroupBy::Customer, period))
            .await
            .unwrap();
    assert_eq!(report.rows[0].invoices, 3);
}

/// Every bad input the issue lists is a typed error naming the field, and writes nothing.
pub async fn check_commerce_bad_input(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let acme = s.customer("Acme").await;
    let good = NewDocument::invoice(
        "F-1",
        acme.id,
        day(2026, 1, 10),
        "RON",
        vec![s.line(0, "1", "10", "5")],
    );
    s.record(good.clone()).await;
    let before = s.event_count().await;
    let doc_cases: Vec<(&str, NewDocument, &str)> = vec![
        (
            "unknown currency",
            NewDocument {
                number: "F-2".into(),
                currency: "XYZ".into(),
                ..good.clone()
            },
            "currency",
        ),
        (
            "a code that is not money",
            NewDocument {
                number: "F-2".into(),
                currency: "XXX".into(),
                ..good.clone()
            },
            "currency",
        ),
        (
            "negative quantity on an invoice",
            NewDocument {
                number: "F-3".into(),
                lines: vec![s.line(0, "-1", "10", "5")],
                ..good.clone()
            },
            "lines[0].quantity",
        ),
        (
            "duplicate number with different lines and no version",
            NewDocument {
                lines: vec![s.line(1, "1", "10", "5")],
                ..good.clone()
            },
            "version",
        ),
    ];
    for (what, doc, field) in doc_cases {
        let e = s.cs.record_document(s.ctx(), doc).await.unwrap_err();
        assert_eq!(e.field(), Some(field), "{what}: {e}");
    }
    // Dates far outside business use are refused at every entry point, before the store sees them.
    let dated: Vec<(&str, NewDocument, &str)> = vec![
        (
            "issued at the largest date",
            NewDocument {
                number: "F-6".into(),
                issue_date: NaiveDate::MAX,
                due_date: None,
                ..good.clone()
            },
            "issue_date",
        ),
        (
            "due at the largest date",
            NewDocument {
                number: "F-7".into(),
                due_date: Some(NaiveDate::MAX),
                ..good.clone()
            },
            "due_date",
        ),
        (
            "issued before 1900",
            NewDocument {
                number: "F-8".into(),
                issue_date: day(1899, 12, 31),
                due_date: None,
                ..good.clone()
            },
            "issue_date",
        ),
    ];
    for (what, doc, field) in dated {
        let e = s.cs.record_document(s.ctx(), doc).await.unwrap_err();
        assert_eq!(e.field(), Some(field), "{what}: {e}");
    }
    for (from, rate, field) in [
        ("EUR", "10000000000000000000000000000", "rate"),
        ("XTS", "4.97", "from"),
    ] {
        let rate = dec(rate);
        let e =
            s.cs.record_rate(s.ctx(), from, "RON", day(2026, 1, 10), rate)
                .await
                .unwrap_err();
        assert_eq!(e.field(), Some(field), "{from} at {rate}: {e}");
    }
    for on in [NaiveDate::MAX, NaiveDate::MIN] {
        let e =
            s.cs.record_rate(s.ctx(), "EUR", "RON", on, dec("4.97"))
                .await
                .unwrap_err();
        assert_eq!(e.field(), Some("on"), "a rate on {on}: {e}");
        let e =
            s.cs.open_items(s.w.tenant, acme.id, Some(on))
                .await
                .unwrap_err();
        assert_eq!(e.field(), Some("as_of"), "open items as of {on}: {e}");
        let e =
            s.cs.balances(s.w.tenant, acme.id, Some(on))
                .await
                .unwrap_err();
        assert_eq!(e.field(), Some("as_of"), "balances as of {on}: {e}");
    }
    let other = Shop::new(store, commerce).await;
    let foreign = other.customer("Foreign").await;
    let e =
        s.cs.record_document(
            s.ctx(),
            NewDocument {
                number: "F-4".into(),
                partner: foreign.id,
                ..good.clone()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("partner"), "another tenant's partner: {e}");
    let e =
        s.cs.record_document(
            s.ctx(),
            NewDocument {
                number: "F-5".into(),
                currency: "EUR".into(),
                ..good.clone()
            },
        )
        .await
        .unwrap_err();
    match &e {
        Error::MissingRate { from, to, on } => assert_eq!(
            (from.as_str(), to.as_str(), *on),
            ("EUR", "RON", day(2026, 1, 10))
        ),
        other => panic!("a missing rate must name the pair and the date, got {other:?}"),
    }
    assert_eq!(
        s.event_count().await,
        before,
        "failed recordings write nothing"
    );
    for n in ["F-2", "F-3", "F-4", "F-5", "F-6", "F-7", "F-8"] {
        assert!(
            s.cs.store()
                .document_by_number(s.w.tenant, DocumentKind::Invoice, n)
                .await
                .unwrap()
                .is_none(),
            "{n}"
        );
    }
    let f1 =
        s.cs.store()
            .document_by_number(s.w.tenant, DocumentKind::Invoice, "F-1")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (f1.version, f1.lines[0].product),
        (1, s.products[0]),
        "the refused duplicate left the original alone"
    );

    assert_eq!(
        Period::new(day(2026, 2, 1), day(2026, 1, 1))
            .unwrap_err()
            .field(),
        Some("period"),
        "empty period"
    );
    assert!(serde_json::from_str::<ProfitQuery>(
        r#"{"period":{"from":"2026-02-01","to":"2026-01-01"},"group_by":"customer","bucket":null,"compare":false,"rank":null}"#
    )
    .is_err());

    let period = Period::new(day(2026, 3, 1), day(2026, 3, 31)).unwrap();
    let unknown = ProductId::new();
    let bad = NewCampaign {
        name: "Bad".into(),
        channel: Channel::Telemarketing,
        period,
        owner: s.w.manager,
        agents: vec![s.w.agent],
        script: None,
        budget: None,
        criteria: Some(Criteria::Bought {
            mode: BoughtMode::Any,
            items: vec![Item::Product(unknown)],
            period,
        }),
    };
    let e =
        s.cs.create_campaign(s.ctx(), bad.clone())
            .await
            .unwrap_err();
    assert_eq!(
        e.field(),
        Some("criteria.items[0]"),
        "criteria naming an unknown product: {e}"
    );
    assert_eq!(s.event_count().await, before);

    let c =
        s.cs.create_campaign(
            s.ctx(),
            NewCampaign {
                criteria: Some(Criteria::Role {
                    role: PartnerRole::Customer,
                }),
                ..bad
            },
        )
        .await
        .expect("campaign");
    for date in [NaiveDate::MAX, NaiveDate::MIN] {
        let e =
            s.cs.add_campaign_cost(
                s.ctx(),
                c.id,
                date,
                Money::parse("10", "EUR").unwrap(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("date"), "a cost on {date}: {e}");
    }
    let launch =
        s.cs.launch_campaign(s.ctx(), c.id, c.version)
            .await
            .expect("launch");
    let events = s.event_count().await;
    let e =
        s.cs.launch_campaign(s.ctx(), c.id, launch.campaign.version)
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("status"), "a campaign launched twice: {e}");
    let call = launch.calls[0].clone();
    let intruder = Context::user(s.w.tenant, UserId::new());
    let e =
        s.cs.record_call_outcome(&intruder, call.id, CallOutcome::Interested)
            .await
            .unwrap_err();
    assert_eq!(
        e.field(),
        Some("agent"),
        "an outcome on another agent's call: {e}"
    );
    assert_eq!(
        s.event_count().await,
        events,
        "refused campaign operations write nothing"
    );
    let t =
        s.cs.store()
            .campaign_target(s.w.tenant, call.id)
            .await
            .unwrap();
    assert_eq!((t.outcome, t.lead, t.version), (None, None, 1));
    assert!(s
        .w
        .store()
        .request(s.w.tenant, call.id)
        .await
        .unwrap()
        .status
        .is_active());
}

/// The timers' document keys: [`CommerceKey::DocumentsDue`](crate::commerce::CommerceKey::DocumentsDue) reads the
/// documents of one kind due in a half-open window of due dates, and
/// [`CommerceKey::DocumentsRenewing`](crate::commerce::CommerceKey::DocumentsRenewing) those renewing in a closed
/// window, across partners, in their order, as the reference says; a replaced document is read in its new form
/// only.
pub async fn check_commerce_documents_due_and_renewing(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
) {
    let s = Shop::new(store, commerce).await;
    let (a, b) = (s.customer("Alpha").await, s.customer("Beta").await);
    let base = day(2026, 3, 1);
    let at = |d: i64| base + Duration::days(d);
    let line = || vec![s.line(0, "1", "100", "10")];
    let mut docs = Vec::new();
    for (n, p, due, renews) in [
        ("F-1", &a, Some(0), None),
        ("F-2", &b, Some(0), Some(30)),
        ("F-3", &a, Some(6), Some(31)),
        ("F-4", &b, Some(7), Some(60)),
        ("F-5", &a, Some(-1), None),
        ("F-6", &b, None, Some(29)),
    ] {
        let mut d = NewDocument::invoice(n, p.id, at(-20), "RON", line());
        d.due_date = due.map(at);
        d.renews_on = renews.map(at);
        docs.push(s.record(d).await);
    }
    // A vendor bill due in the window is not an invoice.
    let bill = NewDocument::vendor_bill("B-1", a.id, at(-20), "RON", line()).due(at(1));
    docs.push(s.record(bill).await);
    // F-4 is replaced: due in the window, renewing later.
    let mut f4 = NewDocument::invoice("F-4", b.id, at(-20), "RON", line()).due(at(5));
    f4.renews_on = Some(at(45));
    f4.version = Some(1);
    let replaced = s.record(f4).await;
    docs.retain(|d| d.number != "F-4");
    docs.push(replaced);
    let facts = Facts {
        partners: &[],
        documents: &docs,
    };
    let numbers = |v: &[Document]| v.iter().map(|d| d.number.clone()).collect::<Vec<_>>();
    let due = commerce
        .documents_due(s.w.tenant, DocumentKind::Invoice, at(0), at(7))
        .await
        .expect("documents due");
    assert_eq!(numbers(&due), ["F-1", "F-2", "F-4", "F-3"]);
    assert_eq!(
        due,
        reference::documents_due(facts, DocumentKind::Invoice, at(0), at(7))
    );
    let bills = commerce
        .documents_due(s.w.tenant, DocumentKind::VendorBill, at(0), at(7))
        .await
        .expect("bills due");
    assert_eq!(numbers(&bills), ["B-1"]);
    let renewing = commerce
        .documents_renewing(s.w.tenant, at(30), at(45))
        .await
        .expect("documents renewing");
    assert_eq!(numbers(&renewing), ["F-2", "F-3", "F-4"]);
    assert_eq!(
        renewing,
        reference::documents_renewing(facts, at(30), at(45))
    );
    assert!(commerce
        .documents_renewing(s.w.tenant, at(46), at(59))
        .await
        .expect("none")
        .is_empty());
    // Pages of documents by id for exports: every document once (F-4 in its replaced version), the filters
    // narrowing, the pages joining up.
    let page = |after: Option<crate::id::DocumentId>, limit: u32, kind, partner, from, before| {
        let filter = crate::commerce::DocumentFilter {
            kind,
            partner,
            from,
            before,
        };
        let key = crate::commerce::CommerceKey::DocumentsAfter {
            after,
            limit,
            filter,
        };
        let commerce = commerce.clone();
        let t = s.w.tenant;
        async move {
            commerce
                .fetch_commerce(t, &key)
                .await
                .expect("a page of documents")
                .into_iter()
                .map(|r| match r {
                    crate::commerce::CommerceRecord::Document(d) => d,
                    other => panic!("a document page gave {other:?}"),
                })
                .collect::<Vec<Document>>()
        }
    };
    let mut all = page(None, 1000, None, None, None, None).await;
    let mut by_id = docs.clone();
    by_id.sort_by_key(|d| d.id);
    assert_eq!(all, by_id);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let p = page(after, 3, None, None, None, None).await;
        let Some(last) = p.last() else { break };
        after = Some(last.id);
        paged.extend(p);
    }
    assert_eq!(paged, all);
    all.retain(|d| d.partner == a.id && d.kind == DocumentKind::Invoice);
    let alphas = page(
        None,
        1000,
        Some(DocumentKind::Invoice),
        Some(a.id),
        None,
        None,
    )
    .await;
    assert_eq!(numbers(&alphas), numbers(&all));
    assert!(page(None, 10, None, None, Some(at(-19)), None)
        .await
        .is_empty());
    assert_eq!(
        page(None, 10, None, None, Some(at(-20)), Some(at(-19)))
            .await
            .len(),
        docs.len()
    );
}

/// Which stored rate converts a document: the store answers the latest rate of the pair on or before a day, whatever
/// its age, and never one of a later day; the tenant's [`RateRule`](crate::commerce::RateRule) bounds the age — a
/// week by default, 31 days, or none — exactly at its edges; each tenant follows its own rule; a document recorded
/// under a rule keeps the rate it was converted with.
pub async fn check_commerce_rate_rules(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    use crate::commerce::RateRule;
    let shop = Shop::new(store, commerce).await;
    let t = shop.w.tenant;
    let usd = Currency::parse("USD").expect("USD");
    let rep = shop.cs.reporting();
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("a day");
    let dec = |s: &str| Decimal::from_str(s).expect("a decimal");
    for (on, rate) in [(d(2026, 1, 1), "4.9"), (d(2026, 3, 1), "4.95")] {
        let r = shop
            .cs
            .record_rate(shop.ctx(), "USD", rep.code(), on, dec(rate))
            .await;
        r.expect("rate");
    }
    // The store: the latest on or before the day, any age; nothing before the first.
    for (on, want) in [
        (d(2025, 12, 31), None),
        (d(2026, 1, 1), Some(d(2026, 1, 1))),
        (d(2026, 2, 28), Some(d(2026, 1, 1))),
        (d(2026, 3, 1), Some(d(2026, 3, 1))),
        (d(2030, 6, 1), Some(d(2026, 3, 1))),
    ] {
        let got = commerce.rate(t, usd, rep, on).await.expect("read");
        assert_eq!(got.map(|r| r.on()), want, "stored rate for {on}");
    }
    // The rules, at their edges.
    let resolve = |cs: CommerceService, on: NaiveDate| async move {
        match cs.resolve_rate(t, usd, on).await {
            Ok(r) => Some(r.rate),
            Err(Error::MissingRate { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    };
    let week = shop.cs.clone();
    let month = shop
        .cs
        .clone()
        .with_tenant_rate_rule(t, RateRule::within_days(31).expect("31"));
    let any = shop.cs.clone().with_tenant_rate_rule(t, RateRule::latest());
    for (cs, on, want) in [
        (&week, d(2026, 1, 8), Some("4.9")),
        (&week, d(2026, 1, 9), None),
        (&week, d(2026, 3, 8), Some("4.95")),
        (&week, d(2026, 3, 9), None),
        (&month, d(2026, 2, 1), Some("4.9")),
        (&month, d(2026, 2, 2), None),
        (&any, d(2026, 2, 28), Some("4.9")),
        (&any, d(2030, 6, 1), Some("4.95")),
        (&any, d(2025, 12, 31), None),
    ] {
        let got = resolve(cs.clone(), on).await;
        assert_eq!(got, want.map(dec), "{:?} on {on}", cs.rate_rule(t));
    }
    // Another tenant's rule is not this tenant's.
    let other = Shop::new(store, commerce).await;
    let theirs = shop
        .cs
        .clone()
        .with_tenant_rate_rule(other.w.tenant, RateRule::latest());
    assert_eq!(resolve(theirs, d(2026, 2, 28)).await, None);
    // A document recorded under a rule keeps its rate; under the week's rule the same day has none.
    let acme = shop.customer("Acme").await;
    let invoice = |n: &str| {
        NewDocument::invoice(
            n,
            acme.id,
            d(2026, 2, 15),
            "USD",
            vec![shop.line(0, "1", "100", "50")],
        )
    };
    let refused = shop.cs.record_document(shop.ctx(), invoice("U-1")).await;
    assert!(
        matches!(refused, Err(Error::MissingRate { .. })),
        "{refused:?}"
    );
    let recorded = any
        .record_document(shop.ctx(), invoice("U-1"))
        .await
        .expect("recorded");
    assert_eq!(recorded.recorded.record().rate().rate, dec("4.9"));
}

/// Open items and balances: invoices and bills minus payments (by allocation) and correcting credit notes, with
/// days overdue; equal to the reference.
pub async fn check_commerce_balances(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let p = s.customer("Debtor").await;
    let as_of = s.w.clock.now().date_naive();
    let mut docs = Vec::new();
    docs.push(
        s.record(
            NewDocument::invoice(
                "F-10",
                p.id,
                as_of - Duration::days(10),
                "RON",
                vec![s.line(0, "10", "100", "50")],
            )
            .due(as_of + Duration::days(20)),
        )
        .await,
    );
    docs.push(
        s.record(
            NewDocument::invoice(
                "F-11",
                p.id,
                as_of - Duration::days(60),
                "RON",
                vec![s.line(2, "5", "100", "50")],
            )
            .due(as_of - Duration::days(30)),
        )
        .await,
    );
    let mut pay = NewDocument::payment(
        "P-1",
        p.id,
        as_of - Duration::days(5),
        "RON",
        PaymentDirection::Received,
        dec("400"),
    );
    pay.allocations = vec![crate::commerce::Allocation {
        number: "F-10".into(),
        amount: dec("300"),
    }];
    docs.push(s.record(pay.clone()).await);
    let mut cn = NewDocument::credit_note(
        "C-10",
        p.id,
        as_of - Duration::days(3),
        "RON",
        vec![s.line(2, "1", "100", "50")],
    );
    cn.corrects = Some("F-11".into());
    docs.push(s.record(cn).await);
    docs.push(
        s.record(
            NewDocument::vendor_bill(
                "B-1",
                p.id,
                as_of - Duration::days(2),
                "RON",
                vec![s.line(1, "2", "100", "0")],
            )
            .due(as_of + Duration::days(5)),
        )
        .await,
    );
    let mut sent = NewDocument::payment(
        "P-2",
        p.id,
        as_of - Duration::days(1),
        "RON",
        PaymentDirection::Sent,
        dec("50"),
    );
    sent.allocations = vec![crate::commerce::Allocation {
        number: "B-1".into(),
        amount: dec("50"),
    }];
    docs.push(s.record(sent).await);

    let items =
        s.cs.open_items(s.w.tenant, p.id, None)
            .await
            .expect("open items");
    let got: Vec<(&str, Decimal, i64)> = items
        .iter()
        .map(|i| (i.number.as_str(), i.open, i.days_overdue))
        .collect();
    assert_eq!(
        got,
        vec![
            ("F-11", dec("400"), 30),
            ("B-1", dec("150"), 0),
            ("F-10", dec("700"), 0)
        ]
    );
    let facts = Facts {
        partners: std::slice::from_ref(&p),
        documents: &docs,
    };
    assert_eq!(items, reference::open_items(facts, p.id, as_of));
    let balances =
        s.cs.balances(s.w.tenant, p.id, None)
            .await
            .expect("balances");
    assert_eq!(balances.len(), 1);
    assert_eq!(
        (
            balances[0].receivable,
            balances[0].payable,
            balances[0].overdue
        ),
        (dec("1000"), dec("150"), dec("400"))
    );
    assert_eq!(balances, reference::balances(facts, p.id, as_of));

    // As of four days ago the account stood before the credit note, the bill and the payment sent: what was
    // issued later does not count, and F-11 was overdue by 26 days then.
    let earlier = as_of - Duration::days(4);
    let items =
        s.cs.open_items(s.w.tenant, p.id, Some(earlier))
            .await
            .expect("open items");
    let got: Vec<(&str, Decimal, i64)> = items
        .iter()
        .map(|i| (i.number.as_str(), i.open, i.days_overdue))
        .collect();
    assert_eq!(
        got,
        vec![("F-11", dec("500"), 26), ("F-10", dec("700"), 0)],
        "open items as of {earlier}"
    );
    assert_eq!(items, reference::open_items(facts, p.id, earlier));
    let balances =
        s.cs.balances(s.w.tenant, p.id, Some(earlier))
            .await
            .expect("balances");
    assert_eq!(
        balances
            .iter()
            .map(|b| (b.receivable, b.payable, b.overdue))
            .collect::<Vec<_>>(),
        vec![(dec("1100"), dec("0"), dec("500"))],
        "balances as of {earlier}"
    );
    assert_eq!(balances, reference::balances(facts, p.id, earlier));
    // Before the first document there is nothing at all.
    let before = as_of - Duration::days(61);
    assert!(s
        .cs
        .open_items(s.w.tenant, p.id, Some(before))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .cs
        .balances(s.w.tenant, p.id, Some(before))
        .await
        .unwrap()
        .is_empty());
    assert!(reference::balances(facts, p.id, before).is_empty());

    pay.number = "P-3".into();
    pay.allocations[0].number = "F-99".into();
    let e = s.cs.record_document(s.ctx(), pay).await.unwrap_err();
    assert_eq!(e.field(), Some("allocations[0].number"), "{e}");
}

/// A campaign on lapsed customers: the audience snapshot, the call list spread over the agents, outcomes, the
/// lead with the campaign as source, attributed invoices netted by a credit note, and the campaign report.
pub async fn check_commerce_campaign(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let today = s.w.clock.now().date_naive();
    let mut partners = Vec::new();
    let mut docs = Vec::new();
    for (i, days_ago) in [Some(200), Some(150), Some(120), Some(10), Some(30), None]
        .into_iter()
        .enumerate()
    {
        let p = s.customer(&format!("Customer {i}")).await;
        if let Some(a) = days_ago {
            docs.push(
                s.record(NewDocument::invoice(
                    &format!("F-{i}"),
                    p.id,
                    today - Duration::days(a),
                    "RON",
                    vec![s.line(i % 3, "1", "50", "20")],
                ))
                .await,
            );
        }
        partners.push(p);
    }
    let lapsed = Criteria::lapsed(LastSale::WithinDays { days: 90 });
    let preview = s.cs.segment(s.w.tenant, &lapsed).await.expect("segment");
    let want: BTreeSet<PartnerId> = partners[..3].iter().map(|p| p.id).collect();
    assert_eq!(
        preview.iter().map(|m| m.partner).collect::<BTreeSet<_>>(),
        want
    );
    assert_eq!(
        reference::segment(
            Facts {
                partners: &partners,
                documents: &docs
            },
            &lapsed,
            today,
            ron()
        ),
        want
    );

    let agent2 = UserId::new();
    let c =
        s.cs.create_campaign(
            s.ctx(),
            NewCampaign {
                name: "Winback".into(),
                channel: Channel::Telemarketing,
                period: Period::new(today, today + Duration::days(60)).unwrap(),
                owner: s.w.manager,
                agents: vec![s.w.agent, agent2],
                script: Some("We miss you".into()),
                budget: Some(Money::parse("1000", "RON").unwrap()),
                criteria: Some(lapsed),
            },
        )
        .await
        .expect("campaign");
    let cost =
        s.cs.add_campaign_cost(
            s.ctx(),
            c.id,
            today,
            Money::parse("100", "RON").unwrap(),
            Some("call centre"),
        )
        .await
        .expect("cost");
    let launch =
        s.cs.launch_campaign(s.ctx(), c.id, c.version)
            .await
            .expect("launch");
    assert_eq!(launch.targets.len(), 3);
    let per_agent: BTreeMap<UserId, usize> =
        launch.calls.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.assignee).or_default() += 1;
            m
        });
    assert_eq!(
        per_agent.values().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2]),
        "spread evenly"
    );
    assert!(launch
        .calls
        .iter()
        .all(|r| r.description.as_deref() == Some("We miss you")));
    for r in &launch.calls {
        assert_eq!(
            s.w.store()
                .request(s.w.tenant, r.id)
                .await
                .expect("call stored")
                .assignee,
            r.assignee
        );
    }
    // The snapshot does not move when the data does.
    let late = s.customer("Late lapsed").await;
    s.record(NewDocument::invoice(
        "F-late",
        late.id,
        today - Duration::days(300),
        "RON",
        vec![s.line(0, "1", "1", "0")],
    ))
    .await;

    let ctx_of = |u: UserId| Context::user(s.w.tenant, u);
    let calls = &launch.calls;
    let r0 =
        s.cs.record_call_outcome(
            &ctx_of(calls[0].assignee),
            calls[0].id,
            CallOutcome::Interested,
        )
        .await
        .expect("interested");
    let lead = r0.lead.clone().expect("a lead for the interested partner");
    assert_eq!(lead.source.campaign, Some(c.id));
    assert_eq!(lead.partner, calls[0].partner.unwrap());
    s.cs.record_call_outcome(
        &ctx_of(calls[1].assignee),
        calls[1].id,
        CallOutcome::NoAnswer,
    )
    .await
    .expect("no answer");
    s.cs.record_call_outcome(
        &ctx_of(calls[1].assignee),
        calls[1].id,
        CallOutcome::NotInterested,
    )
    .await
    .expect("not interested");
    let back = s.w.clock.now() + Duration::days(2);
    s.cs.record_call_outcome(
        &ctx_of(calls[2].assignee),
        calls[2].id,
        CallOutcome::CallBack { at: back },
    )
    .await
    .expect("call back");
    assert_eq!(
        s.w.store()
            .request(s.w.tenant, calls[2].id)
            .await
            .unwrap()
            .due,
        Some(back)
    );

    let progress = s.cs.progress(s.w.tenant, c.id).await.expect("progress");
    assert_eq!(
        (progress[0].targets, progress[0].done, progress[0].remaining),
        (3, 2, 1)
    );
    assert_eq!(progress.len(), 3, "the total and one row per agent");
    let mut targets: Vec<CampaignTarget> =
        s.cs.store()
            .campaign_targets(s.w.tenant, c.id, &PageRequest::first(2))
            .await
            .unwrap()
            .items;
    let page2 =
        s.cs.store()
            .campaign_targets(
                s.w.tenant,
                c.id,
                &PageRequest {
                    limit: 2,
                    after: s
                        .cs
                        .store()
                        .campaign_targets(s.w.tenant, c.id, &PageRequest::first(2))
                        .await
                        .unwrap()
                        .next,
                },
            )
            .await
            .unwrap();
    assert!(page2.next.is_none());
    targets.extend(page2.items);
    assert_eq!(targets.len(), 3);
    assert_eq!(progress, reference::progress(&targets, c.id));

    let buyer = lead.partner;
    let follow = s
        .record(
            NewDocument::invoice(
                "F-100",
                buyer,
                today + Duration::days(1),
                "RON",
                vec![s.line(0, "10", "100", "60")],
            )
            .with_campaign(c.id),
        )
        .await;
    let mut cn = NewDocument::credit_note(
        "C-100",
        buyer,
        today + Duration::days(2),
        "RON",
        vec![s.line(0, "2", "100", "60")],
    );
    cn.corrects = Some("F-100".into());
    let cn = s.record(cn).await;
    assert_eq!(
        cn.campaign,
        Some(c.id),
        "a credit note inherits the corrected invoice's campaign"
    );
    let won: Lead = s.w.act(lead.id, LeadCommand::Win).await.expect("win");
    docs.extend([follow, cn]);

    let report =
        s.cs.campaign_report(s.w.tenant, c.id, None)
            .await
            .expect("report");
    assert_eq!(
        (
            report.targets,
            report.reached,
            report.interested,
            report.leads,
            report.won,
            report.invoiced_customers
        ),
        (3, 3, 1, 1, 1, 1)
    );
    assert_eq!(
        (report.revenue, report.cost_of_goods, report.gross_profit),
        (dec("800"), dec("480"), dec("320"))
    );
    assert_eq!(
        (report.campaign_cost, report.net_profit, report.roi_pct),
        (dec("100"), dec("220"), Some(dec("220")))
    );
    assert_eq!(report.outcomes.get(&OutcomeKind::NotInterested), Some(&1));
    assert_eq!(report.funnel[1].conversion_pct, Some(dec("100")));
    let cf = CampaignFacts {
        targets: &targets,
        leads: std::slice::from_ref(&won),
        costs: std::slice::from_ref(&cost),
    };
    let facts = Facts {
        partners: &partners,
        documents: &docs,
    };
    let periods = [
        None,
        Some(Period::new(today, today).unwrap()),
        Some(Period::new(today + Duration::days(2), today + Duration::days(9)).unwrap()),
        // Today's calendar month, quarter and year: the invoiced customers from the campaign roll-up.
        Some(bucket_period(Bucket::Month, today)),
        Some(bucket_period(Bucket::Quarter, today)),
        Some(bucket_period(Bucket::Year, today)),
    ];
    assert_campaign_sums_match(&s, facts, cf, &c, &periods).await;
    let closed: Campaign =
        s.cs.close_campaign(s.ctx(), c.id, launch.campaign.version)
            .await
            .expect("close");
    assert_eq!(s.cs.campaign(s.w.tenant, c.id).await.unwrap(), closed);
    let costs: Vec<CampaignCost> = s.cs.store().campaign_costs(s.w.tenant, c.id).await.unwrap();
    assert_eq!(costs, vec![cost]);
}

/// Another tenant's documents, campaigns and figures are invisible.
pub async fn check_commerce_isolation(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let a = Shop::new(store, commerce).await;
    let b = Shop::new(store, commerce).await;
    let p = a.customer("Mine").await;
    let d = a
        .record(NewDocument::invoice(
            "F-1",
            p.id,
            day(2026, 1, 5),
            "RON",
            vec![a.line(0, "1", "10", "1")],
        ))
        .await;
    assert!(matches!(
        b.cs.store().document(b.w.tenant, d.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(b
        .cs
        .store()
        .document_by_number(b.w.tenant, DocumentKind::Invoice, "F-1")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        b.cs.store().product(b.w.tenant, a.products[0]).await,
        Err(Error::NotFound { .. })
    ));
    let q = SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron());
    assert!(b
        .cs
        .store()
        .profit_sums(b.w.tenant, &q)
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .cs
        .store()
        .open_items(b.w.tenant, p.id, day(2026, 6, 1))
        .await
        .unwrap()
        .is_empty());
    let everyone = Criteria::Not {
        not: Box::new(Criteria::Tag {
            tag: "nobody".into(),
        }),
    };
    assert!(b
        .cs
        .store()
        .segment(b.w.tenant, &everyone, day(2026, 6, 1), ron())
        .await
        .unwrap()
        .is_empty());
    // The same number in another tenant is another document.
    let bp = b.customer("Theirs").await;
    b.record(NewDocument::invoice(
        "F-1",
        bp.id,
        day(2026, 1, 5),
        "RON",
        vec![b.line(0, "1", "10", "1")],
    ))
    .await;
}

// ------------------------------------------------------------------------------------------------ properties

#[derive(Debug, Clone)]
struct PartnerSpec {
    group: Option<&'static str>,
    industry: Option<(&'static str, Option<&'static str>)>,
    location: Option<(&'static str, Option<&'static str>, Option<&'static str>)>,
    tags: Vec<&'static str>,
    roles: Vec<PartnerRole>,
}

#[derive(Debug, Clone)]
struct LineSpec {
    product: usize,
    qty: i64,
    price_cents: i64,
    discount: u8,
    cost_cents: i64,
}

#[derive(Debug, Clone)]
struct DocSpec {
    /// 0–5 invoice, 6–7 credit note, 8 vendor bill, 9 payment.
    kind: u8,
    partner: usize,
    day: i64,
    eur: bool,
    campaign: bool,
    lines: Vec<LineSpec>,
    replace: bool,
    /// Picks the earlier document a credit note corrects or a payment settles, a payment's direction, and the
    /// due date of an invoice or bill.
    link: usize,
    /// The share of the settled document a payment pays.
    paid_pct: u8,
}

/// A random profitability query: grouping, bucket, ranking, start offset and length in days.
type QuerySpec = (GroupBy, Option<Bucket>, Option<Rank>, i64, i64);

#[derive(Debug, Clone)]
struct Spec {
    partners: Vec<PartnerSpec>,
    docs: Vec<DocSpec>,
    criteria: Vec<Criteria>,
    queries: Vec<QuerySpec>,
    /// Days after [`start`] of an "as of" day among the documents' dates, for balances and open items.
    as_of_day: i64,
    /// A measured campaign's holdout share (percent) and seed, and its promoted items (indexes as in
    /// [`criteria`]).
    holdout: (u8, u64, Vec<usize>),
    /// The document before which a bulk load begins (it finishes after the last): meanwhile the plain invoices
    /// are ingested, the others recorded as always.
    bulk: Option<usize>,
}

fn start() -> NaiveDate {
    day(2025, 1, 1)
}

fn partner_spec() -> impl Strategy<Value = PartnerSpec> {
    (
        prop::option::of(prop::sample::select(vec!["A", "B"])),
        prop::option::of((
            prop::sample::select(vec!["Retail", "Food"]),
            prop::option::of(prop::sample::select(vec!["4711", "1011"])),
        )),
        prop::option::of((
            prop::sample::select(vec!["RO", "DE"]),
            prop::option::of(prop::sample::select(vec!["Cluj", "Bavaria"])),
            prop::option::of(prop::sample::select(vec!["Dej", "Munich"])),
        )),
        prop::sample::subsequence(vec!["vip", "new"], 0..=2),
        prop::sample::subsequence(
            vec![
                PartnerRole::Customer,
                PartnerRole::Vendor,
                PartnerRole::Prospect,
            ],
            0..=3,
        ),
    )
        .prop_map(|(group, industry, location, tags, roles)| PartnerSpec {
            group,
            industry,
            location,
            tags,
            roles,
        })
}

fn doc_spec(partners: usize) -> impl Strategy<Value = DocSpec> {
    let line = (
        0..4usize,
        1..6i64,
        0..50_000i64,
        prop::sample::select(vec![0u8, 10, 50]),
        0..30_000i64,
    )
        .prop_map(
            |(product, qty, price_cents, discount, cost_cents)| LineSpec {
                product,
                qty,
                price_cents,
                discount,
                cost_cents,
            },
        );
    (
        0..10u8,
        0..partners,
        0..430i64,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        prop::collection::vec(line, 1..4),
        prop::bool::weighted(0.15),
        0..1000usize,
        1..=120u8,
    )
        .prop_map(
            |(kind, partner, day, eur, campaign, lines, replace, link, paid_pct)| DocSpec {
                kind,
                partner,
                day,
                eur,
                campaign,
                lines,
                replace,
                link,
                paid_pct,
            },
        )
}

/// A period's first day (days after [`start`]) and length in days: mostly random, sometimes whole calendar years
/// (2025, 2025–2026, and 2025 with a few weeks either side), which reports by customer read from the year roll-up.
fn period_days(longest: i64) -> impl Strategy<Value = (i64, i64)> + Clone {
    prop_oneof![
        6 => (0..430i64, 0..longest),
        1 => Just((0i64, 364i64)),
        1 => Just((0i64, 729i64)),
        1 => Just((-20i64, 400i64)),
    ]
}

/// Criteria over the property world's fixed vocabulary; item indexes 0–3 are products, 4 the category.
fn criteria() -> impl Strategy<Value = Criteria> {
    let period = period_days(200).prop_map(|(a, len)| {
        Period::new(
            start() + Duration::days(a),
            start() + Duration::days(a + len),
        )
        .unwrap()
    });
    let leaf = prop_oneof![
        (0..430i64, 0..4u8).prop_map(|(d, k)| Criteria::LastSale {
            when: match k {
                0 => LastSale::Before {
                    date: start() + Duration::days(d)
                },
                1 => LastSale::After {
                    date: start() + Duration::days(d)
                },
                2 => LastSale::WithinDays { days: d as u32 },
                _ => LastSale::Never,
            }
        }),
        (
            period.clone(),
            prop::sample::select(vec![Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge, Cmp::Eq]),
            -1000..5000i64
        )
            .prop_map(|(period, cmp, a)| Criteria::SalesVolume {
                period,
                cmp,
                amount: Money::new(Decimal::from(a), ron()).unwrap()
            }),
        (
            prop::sample::select(vec![BoughtMode::Any, BoughtMode::All, BoughtMode::None]),
            prop::collection::vec(0..5usize, 1..3),
            period
        )
            .prop_map(|(mode, items, period)| Criteria::Bought {
                mode,
                // Placeholder ids: the runner maps index n to the n-th item of the world.
                items: items
                    .into_iter()
                    .map(|i| Item::Product(ProductId::from_uuid(uuid::Uuid::from_u128(i as u128))))
                    .collect(),
                period,
            }),
        prop::sample::select(vec!["A", "B", "C"]).prop_map(|g| Criteria::Group { name: g.into() }),
        prop::sample::select(vec![
            PartnerRole::Customer,
            PartnerRole::Vendor,
            PartnerRole::Prospect
        ])
        .prop_map(|role| Criteria::Role { role }),
        prop::sample::select(vec!["Retail", "Food", "4711"])
            .prop_map(|n| Criteria::Industry { name: n.into() }),
        (
            prop::option::of(prop::sample::select(vec!["RO", "DE"])),
            prop::option::of(prop::sample::select(vec!["Cluj", "Bavaria"])),
            prop::option::of(prop::sample::select(vec!["Dej", "Munich"]))
        )
            .prop_filter("a location names something", |(a, b, c)| a.is_some()
                || b.is_some()
                || c.is_some())
            .prop_map(|(c, r, t)| Criteria::Location {
                country: c.map(Into::into),
                region: r.map(Into::into),
                city: t.map(Into::into)
            }),
        prop::sample::select(vec!["vip", "new"]).prop_map(|t| Criteria::Tag { tag: t.into() }),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|all| Criteria::And { all }),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|any| Criteria::Or { any }),
            inner.prop_map(|c| Criteria::Not { not: Box::new(c) }),
        ]
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    prop::collection::vec(partner_spec(), 1..8).prop_flat_map(|partners| {
        let n = partners.len();
        let query = (
            prop::sample::select(GroupBy::ALL.to_vec()),
            prop::option::of(prop::sample::select(vec![
                Bucket::Month,
                Bucket::Quarter,
                Bucket::Year,
            ])),
            prop::option::of(
                (
                    prop::sample::select(vec![RankOrder::Top, RankOrder::Bottom]),
                    1..5u32,
                )
                    .prop_map(|(order, n)| Rank { order, n }),
            ),
            period_days(430),
        )
            .prop_map(|(g, bucket, rank, (a, len))| (g, bucket, rank, a, len));
        (
            Just(partners),
            prop::collection::vec(doc_spec(n), 0..16),
            prop::collection::vec(criteria(), 1..4),
            prop::collection::vec(query, 1..4),
            0..430i64,
            (
                0..=50u8,
                any::<u64>(),
                prop::sample::subsequence(vec![0usize, 1, 2, 3, 4], 0..=3),
            ),
            prop::option::of(0..16usize),
        )
            .prop_map(
                |(partners, docs, criteria, queries, as_of_day, holdout, bulk)| Spec {
                    partners,
                    docs,
                    criteria,
                    queries,
                    as_of_day,
                    holdout,
                    bulk,
                },
            )
    })
}

fn map_items(c: &Criteria, items: &[Item]) -> Criteria {
    match c {
        Criteria::Bought {
            mode,
            items: its,
            period,
        } => Criteria::Bought {
            mode: *mode,
            items: its
                .iter()
                .map(|i| match i {
                    Item::Product(p) => {
                        items[(p.as_uuid().as_u128() as usize).min(items.len() - 1)]
                    }
                    other => *other,
                })
                .collect(),
            period: *period,
        },
        Criteria::And { all } => Criteria::And {
            all: all.iter().map(|x| map_items(x, items)).collect(),
        },
        Criteria::Or { any } => Criteria::Or {
            any: any.iter().map(|x| map_items(x, items)).collect(),
        },
        Criteria::Not { not } => Criteria::Not {
            not: Box::new(map_items(not, items)),
        },
        other => other.clone(),
    }
}

async fn run_case(store: Arc<dyn Store>, commerce: Arc<dyn CommerceStore>, spec: Spec) {
    let s = Shop::new(&store, &commerce).await;
    let fourth =
        s.cs.record_product(
            s.ctx(),
            NewProduct {
                code: "P3".into(),
                name: "Product 3".into(),
                category: Some(s.category),
            },
            None,
        )
        .await
        .unwrap()
        .record()
        .id;
    let products = [s.products[0], s.products[1], s.products[2], fourth];
    let items: Vec<Item> = products
        .iter()
        .map(|p| Item::Product(*p))
        .chain([Item::Category(s.category)])
        .collect();
    let mut partners = Vec::new();
    for (i, ps) in spec.partners.iter().enumerate() {
        let mut n = NewPartner::company(format!("P{i}"));
        n.roles = ps.roles.iter().copied().collect();
        n.group = ps.group.map(Into::into);
        if let Some((name, code)) = ps.industry {
            n = n.with_industry(name, code);
        }
        if let Some((country, region, city)) = ps.location {
            n = n.with_location(NewLocation {
                kind: LocationKind::Billing,
                street: None,
                city: city.map(Into::into),
                region: region.map(Into::into),
                postal_code: None,
                country: country.into(),
            });
        }
        n.tags = ps.tags.iter().map(|t| t.to_string()).collect();
        partners.push(
            s.w.crm
                .create_partner(s.ctx(), n)
                .await
                .expect("partner")
                .record,
        );
    }
    let campaign =
        s.cs.create_campaign(
            s.ctx(),
            NewCampaign {
                name: "Prop".into(),
                channel: Channel::Email,
                period: Period::new(start(), start() + Duration::days(500)).unwrap(),
                owner: s.w.manager,
                agents: vec![],
                script: None,
                budget: None,
                criteria: None,
            },
        )
        .await
        .expect("campaign");
    let mut docs: Vec<Document> = Vec::new();
    let mut bulk_open = false;
    for (i, d) in spec.docs.iter().enumerate() {
        if spec.bulk == Some(i) {
            let begun = bulk(&commerce, s.w.tenant, crate::store::BulkStep::Begin)
                .await
                .expect("begin");
            assert!(begun.open);
            bulk_open = true;
        }
        let issue = start() + Duration::days(d.day);
        // A partner moves group (sometimes twice the same day) before some documents: the documents keep the group
        // they were issued in, and no roll-up of an earlier month changes.
        if d.link % 5 == 0 {
            for move_to in (0..=d.link % 2).map(|k| ["A", "B", "C"][(d.link / 5 + k) % 3]) {
                partners[d.partner] = s.move_to_group(&partners[d.partner], move_to).await;
            }
        }
        // Or its industry, location and owner: the documents keep those they were issued with, too.
        if d.link % 7 == 3 {
            partners[d.partner] = s.move_elsewhere(&partners[d.partner], d.link / 7).await;
        }
        if d.eur {
            let rate = Decimal::new(49_000 + (d.day % 97), 4);
            s.cs.record_rate(s.ctx(), "EUR", "RON", issue, rate)
                .await
                .expect("rate");
        }
        let lines: Vec<NewLine> = d
            .lines
            .iter()
            .map(|l| NewLine {
                product: products[l.product],
                quantity: Decimal::from(if matches!(d.kind, 6 | 7) && l.qty % 2 == 0 {
                    -l.qty
                } else {
                    l.qty
                }),
                unit_price: Decimal::new(l.price_cents, 2),
                discount_pct: Decimal::from(l.discount),
                unit_cost: Decimal::new(l.cost_cents, 2),
            })
            .collect();
        let number = format!("N-{i}");
        let currency = if d.eur { "EUR" } else { "RON" };
        let partner = partners[d.partner].id;
        let earlier = |kind: DocumentKind| -> Vec<Document> {
            docs.iter()
                .filter(|x| x.kind == kind && x.partner == partner && x.currency.code() == currency)
                .cloned()
                .collect()
        };
        // Most invoices and bills fall due within 90 days, so open items are overdue on some "as of" days.
        let due = (d.link % 4 != 0).then(|| issue + Duration::days((d.link % 90) as i64));
        let mut n = match d.kind {
            0..=5 => NewDocument::invoice(&number, partner, issue, currency, lines),
            6 | 7 => {
                let mut n = NewDocument::credit_note(&number, partner, issue, currency, lines);
                let invoices = earlier(DocumentKind::Invoice);
                if d.link % 2 == 0 && !invoices.is_empty() {
                    n.corrects = Some(invoices[d.link % invoices.len()].number.clone());
                }
                n
            }
            8 => NewDocument::vendor_bill(&number, partner, issue, currency, lines),
            _ => {
                let direction = if d.link % 3 == 0 {
                    PaymentDirection::Sent
                } else {
                    PaymentDirection::Received
                };
                let targets = earlier(direction.settles());
                let mut n = NewDocument::payment(
                    &number,
                    partner,
                    issue,
                    currency,
                    direction,
                    Decimal::from(10 + d.link as i64),
                );
                if let Some(t) = targets.get(d.link % targets.len().max(1)) {
                    let paid = (t.total * Decimal::from(d.paid_pct) / Decimal::ONE_HUNDRED)
                        .round_dp(2)
                        .max(Decimal::new(1, 2));
                    n.amount = Some(paid);
                    n.allocations = vec![crate::commerce::Allocation {
                        number: t.number.clone(),
                        amount: paid,
                    }];
                }
                n
            }
        };
        if d.campaign && d.kind <= 7 {
            n.campaign = Some(campaign.id);
        }
        if matches!(d.kind, 0..=5 | 8) {
            n.due_date = due;
        }
        if bulk_open && d.kind <= 5 && !d.replace && !d.eur && n.campaign.is_none() {
            // A plain invoice of the load: ingested, so the roll-ups count it only after the finish.
            let doc = ingest_document(&s, n, &partners[d.partner]).await;
            upsert(&mut docs, doc);
            continue;
        }
        let doc = s.record(n.clone()).await;
        upsert(&mut docs, doc);
        if d.replace && d.kind != 9 {
            n.lines[0].quantity += Decimal::ONE;
            if n.lines[0].quantity.is_zero() {
                n.lines[0].quantity = Decimal::ONE;
            }
            // Some replacements move the document into another month (the roll-ups move it too).
            if d.link % 3 == 0 && !d.eur {
                n.issue_date += Duration::days(20 + (d.link % 40) as i64);
                n.due_date = n.due_date.map(|x| x.max(n.issue_date));
            }
            n.version = Some(1);
            let doc = s.record(n).await;
            assert_eq!(doc.version, 2);
            upsert(&mut docs, doc);
        }
    }
    if bulk_open {
        let done = bulk(&commerce, s.w.tenant, crate::store::BulkStep::Finish)
            .await
            .expect("finish");
        assert!(!done.open && done.deferred_indexes == 0, "{done:?}");
    }
    let facts = Facts {
        partners: &partners,
        documents: &docs,
    };
    let as_of = s.w.clock.now().date_naive();
    for c in &spec.criteria {
        let c = map_items(c, &items);
        let got: BTreeSet<PartnerId> =
            s.cs.store()
                .segment(s.w.tenant, &c, as_of, ron())
                .await
                .expect("segment")
                .into_iter()
                .map(|m| m.partner)
                .collect();
        assert_eq!(
            got,
            reference::segment(facts, &c, as_of, ron()),
            "segment differs for {c:?}"
        );
    }
    for (g, bucket, rank, a, len) in &spec.queries {
        let period = Period::new(
            start() + Duration::days(*a),
            start() + Duration::days(a + len),
        )
        .unwrap();
        assert_sums_match(
            &s.cs,
            s.w.tenant,
            &partners,
            &docs,
            &SumsQuery {
                period,
                group_by: *g,
                bucket: *bucket,
                reporting: ron(),
                rank: *rank,
            },
        )
        .await;
        let facts = Facts {
            partners: &partners,
            documents: &docs,
        };
        let q = ProfitQuery {
            period,
            group_by: *g,
            bucket: *bucket,
            compare: true,
            rank: *rank,
        };
        assert_comparison_matches(&s, facts, &q).await;
    }
    let cf = CampaignFacts {
        targets: &[],
        leads: &[],
        costs: &[],
    };
    let (a, len) = (spec.as_of_day, spec.as_of_day % 97);
    let part = Period::new(
        start() + Duration::days(a / 2),
        start() + Duration::days(a / 2 + len),
    )
    .unwrap();
    // All time, the random part, and the calendar month, quarter and year it starts in (the campaign report
    // counts those periods' invoiced customers from its roll-up).
    let whole = |b: Bucket| Some(bucket_period(b, part.from()));
    let periods = [
        None,
        Some(part),
        whole(Bucket::Month),
        whole(Bucket::Quarter),
        whole(Bucket::Year),
    ];
    assert_campaign_sums_match(&s, facts, cf, &campaign, &periods).await;
    // A campaign over every partner, launched with a random holdout: its outcome sums over each query's period
    // (as a window) and the promoted items equal the reference.
    let (share, seed, promoted) = &spec.holdout;
    let mut measured = s.year_campaign("Measured", Channel::Email);
    measured.criteria = Some(Criteria::Not {
        not: Box::new(Criteria::Tag {
            tag: "nobody".into(),
        }),
    });
    let measured =
        s.cs.create_campaign(s.ctx(), measured)
            .await
            .expect("campaign");
    let holdout = crate::commerce::Holdout::new(Decimal::from(*share), *seed).expect("a share");
    let launch =
        s.cs.launch_campaign_with(s.ctx(), measured.id, measured.version, Some(holdout))
            .await
            .expect("launch");
    let targets = super::uplift::all_targets(&s, &launch.campaign).await;
    assert_eq!(
        targets.iter().filter(|t| t.holdout()).count(),
        holdout.size(targets.len())
    );
    let promoted: Vec<Item> = promoted.iter().map(|i| items[*i]).collect();
    for (_, _, _, a, len) in &spec.queries {
        let q = crate::commerce::OutcomeQuery {
            window: Period::new(
                start() + Duration::days(*a),
                start() + Duration::days(a + len),
            )
            .unwrap(),
            promoted: promoted.clone(),
            reporting: ron(),
        };
        assert_eq!(
            s.cs.store()
                .campaign_outcomes(s.w.tenant, measured.id, &q)
                .await
                .expect("outcomes"),
            reference::outcome_sums(facts, &targets, measured.id, &q),
            "outcome sums over {q:?}"
        );
    }
    // Attribution over each query's period, with a lookback from the spec: the report from the adapter's inputs
    // equals the one from the reference's (the launch touched every partner not held out; some invoices are
    // linked to the first campaign).
    let all_campaigns = [
        s.cs.campaign(s.w.tenant, campaign.id)
            .await
            .expect("campaign"),
        s.cs.campaign(s.w.tenant, measured.id)
            .await
            .expect("campaign"),
    ];
    let names: BTreeMap<_, _> = all_campaigns
        .iter()
        .map(|c| (c.id, c.name.clone()))
        .collect();
    let all_targets = [
        super::uplift::all_targets(&s, &all_campaigns[0]).await,
        targets.clone(),
    ]
    .concat();
    // Both campaigns' sums read at once: each its own (the first one's invoices, the second one's targets and
    // holdout), none mixed with the other's.
    let cf = CampaignFacts {
        targets: &all_targets,
        ..cf
    };
    for period in periods {
        assert_eq!(
            s.cs.store()
                .campaigns_sums(s.w.tenant, period, ron())
                .await
                .expect("campaigns sums"),
            reference::campaigns_sums(facts, cf, &all_campaigns, period, ron()),
            "every campaign's sums over {period:?}"
        );
    }
    for (_, _, _, a, len) in &spec.queries {
        let scope = crate::commerce::AttributionScope {
            period: Period::new(
                start() + Duration::days(*a),
                start() + Duration::days(a + len),
            )
            .unwrap(),
            lookback_days: 1 + (*seed % 400) as u32,
            reporting: ron(),
        };
        let models = crate::commerce::Model::ALL;
        let got =
            s.cs.attribution_report(s.w.tenant, scope.period, scope.lookback_days, &models)
                .await
                .expect("attribution");
        let want = crate::commerce::finish_attribution(
            reference::attribution_inputs(facts, &all_targets, &[], &[], &all_campaigns, &scope),
            &names,
            &scope,
            &models,
        )
        .expect("reference attribution");
        assert_eq!(got, want, "attribution over {scope:?}");
    }
    // The roll-ups equal the documents after every sequence.
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(check.is_clean(), "roll-ups differ: {:?}", check.differences);
    // Today, and a day among the documents' dates: the account as it stood then (later documents excluded).
    for day in [as_of, start() + Duration::days(spec.as_of_day)] {
        for p in &partners {
            assert_eq!(
                s.cs.store()
                    .open_items(s.w.tenant, p.id, day)
                    .await
                    .unwrap(),
                reference::open_items(facts, p.id, day),
                "open items of {} as of {day}",
                p.name
            );
            assert_eq!(
                s.cs.store().balances(s.w.tenant, p.id, day).await.unwrap(),
                reference::balances(facts, p.id, day),
                "balances of {} as of {day}",
                p.name
            );
        }
    }
}

/// The commerce property test: random partners, products, invoices and credit notes (some in EUR, some replaced,
/// some attributed to a campaign), random criteria trees and random profitability queries; the adapter's segment
/// membership, profitability sums, campaign sums, a campaign's outcome sums (a random holdout, windows and promoted
/// items), the attribution report under every model (random periods and lookbacks), open items and balances must
/// equal the reference exactly.
pub fn run_commerce_properties(
    store: Arc<dyn Store>,
    commerce: Arc<dyn CommerceStore>,
    block_on: &super::differential::BlockOn<'_>,
    cases: u32,
) {
    super::differential::run_cases("commerce", &spec(), cases, block_on, |spec| {
        let (store, commerce) = (store.clone(), commerce.clone());
        Box::pin(async move { run_case(store, commerce, spec).await })
    });
}
