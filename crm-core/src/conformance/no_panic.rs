//! No input makes a record or read path panic on an adapter (#16): arbitrary strings, amounts, currencies and dates
//! (their extremes included) go through the services to the store under test, and each call gives a value or a
//! typed error. A panic fails the property (proptest catches it), and so does an error of kind
//! [`StorageErrorKind::Internal`], which is how an adapter reports a panic on its own threads.
//!
//! `crm-core/tests/no_panic.rs` proves the same of the pure parse and build entry points without a store; this
//! property carries the input on through the adapters' SQL, binding and row mapping.

use super::commerce::Shop;
use crate::commerce::CommerceStore;
use crate::commerce::{
    Bucket, Channel, Criteria, GroupBy, NewCampaign, NewDocument, NewLine, PaymentDirection,
    Period, ProfitQuery,
};
use crate::error::{Error, StorageErrorKind};
use crate::id::{CampaignId, PartnerId};
use crate::lead::{LeadPartner, NewLead};
use crate::money::Money;
use crate::store::{Backend, Store};
use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use std::sync::Arc;

/// The default number of cases of [`run_no_panic`] (each case makes about a dozen calls to the store).
pub const NO_PANIC_CASES: u32 = 256;

/// One case's raw input.
#[derive(Debug, Clone)]
struct Input {
    text: String,
    code: String,
    amount: Decimal,
    quantity: Decimal,
    date: NaiveDate,
    other_date: NaiveDate,
    days: i64,
}

/// Mostly ordinary business dates (so the write paths run to the store), often the calendar's ends, the business
/// bounds or any day chrono can hold.
fn any_date() -> impl Strategy<Value = NaiveDate> {
    let ordinary = NaiveDate::from_ymd_opt(2020, 1, 1).expect("a date");
    prop_oneof![
        4 => (0i64..2_250).prop_map(move |d| ordinary + chrono::Duration::days(d)),
        1 => Just(NaiveDate::MIN),
        1 => Just(NaiveDate::MAX),
        1 => Just(crate::time::MIN_BUSINESS_DATE),
        1 => Just(crate::time::MAX_BUSINESS_DATE),
        1 => any::<i32>().prop_map(|n| {
            NaiveDate::from_num_days_from_ce_opt(n % 100_000_000).unwrap_or(NaiveDate::MIN)
        }),
    ]
}

/// Mostly ordinary amounts, often the type's ends, zero, the smallest step or any scale.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        4 => (1i64..10_000_000).prop_map(|m| Decimal::new(m, 2)),
        1 => Just(Decimal::MAX),
        1 => Just(Decimal::MIN),
        1 => Just(Decimal::ZERO),
        1 => Just(Decimal::new(1, 28)),
        1 => (any::<i64>(), 0u32..29).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (
        prop_oneof![3 => "[A-Z0-9-]{1,12}", 1 => ".{0,80}", 1 => Just(String::new())],
        prop_oneof![4 => Just("RON".to_string()), 1 => Just("EUR".to_string()), 1 => "XXX|XTS|JPY|.{0,5}"],
        any_decimal(),
        any_decimal(),
        any_date(),
        any_date(),
        prop_oneof![3 => 0i64..400, 1 => any::<i64>()],
    )
        .prop_map(|(text, code, amount, quantity, date, other_date, days)| Input {
            text,
            code,
            amount,
            quantity,
            date,
            other_date,
            days,
        })
}

/// A value or a typed error; a panic on an adapter's thread (reported as `Internal`) fails.
fn typed<T>(what: &str, input: &Input, r: crate::error::Result<T>) {
    if let Err(Error::Storage {
        kind: StorageErrorKind::Internal,
        message,
        ..
    }) = &r
    {
        panic!("{what} panicked inside the adapter on {input:?}: {message}");
    }
}

async fn run_case(shop: &Shop, partner: PartnerId, campaign: CampaignId, i: Input) {
    let ctx = &shop.w.ctx;
    let tenant = shop.w.tenant;
    let crm = &shop.w.crm;
    let cs = &shop.cs;

    // Leads: arbitrary titles, amounts in arbitrary currencies, arbitrary close dates.
    let mut lead = NewLead::new(LeadPartner::Existing { id: partner }, &i.text);
    if let Ok(m) = Money::parse(&i.amount.to_string(), &i.code) {
        lead = lead.with_revenue(m);
    }
    lead.expected_close = Some(i.date);
    typed("enter_lead", &i, crm.enter_lead(ctx, lead).await);

    // Rates, documents, payments and campaign costs.
    typed(
        "record_rate",
        &i,
        cs.record_rate(ctx, &i.code, "RON", i.date, i.amount).await,
    );
    let line = NewLine::new(shop.products[0], i.quantity, i.amount, i.amount);
    let invoice = NewDocument::invoice(&i.text, partner, i.date, &i.code, vec![line]);
    typed(
        "record_document",
        &i,
        cs.record_document(ctx, invoice).await,
    );
    let payment = NewDocument::payment(
        &format!("P{}", i.text),
        partner,
        i.other_date,
        &i.code,
        PaymentDirection::Received,
        i.amount,
    );
    typed(
        "record_document (payment)",
        &i,
        cs.record_document(ctx, payment).await,
    );
    if let Ok(m) = Money::parse(&i.amount.to_string(), &i.code) {
        typed(
            "add_campaign_cost",
            &i,
            cs.add_campaign_cost(ctx, campaign, i.date, m, Some(&i.text))
                .await,
        );
    }

    // Reads at arbitrary dates and over arbitrary periods.
    typed(
        "balances",
        &i,
        cs.balances(tenant, partner, Some(i.date)).await,
    );
    typed(
        "open_items",
        &i,
        cs.open_items(tenant, partner, Some(i.other_date)).await,
    );
    if let Ok(p) = Period::new(i.date.min(i.other_date), i.date.max(i.other_date)) {
        let mut q = ProfitQuery::by(GroupBy::Customer, p);
        q.compare = true;
        q.bucket = Some(Bucket::Month);
        typed("profitability", &i, cs.profitability(tenant, &q).await);
        typed(
            "campaign_report",
            &i,
            cs.campaign_report(tenant, campaign, Some(p)).await,
        );
    }
    let criteria = format!(
        r#"{{"type":"and","all":[{{"type":"last_sale","when":{{"type":"within_days","days":{}}}}},{{"type":"last_sale","when":{{"type":"before","date":"{}"}}}}]}}"#,
        i.days, i.date
    );
    if let Ok(c) = serde_json::from_str::<Criteria>(&criteria) {
        typed("segment", &i, cs.segment(tenant, &c).await);
    }
}

/// Runs `cases` random inputs through the services against `backend`, in one fresh tenant with a customer, a
/// product and a campaign. Panics (failing the test) on a panic or an adapter-internal error.
pub fn run_no_panic(
    backend: Arc<dyn Backend>,
    block_on: &super::differential::BlockOn<'_>,
    cases: u32,
) {
    let store: Arc<dyn Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend;
    let fixture = Arc::new(std::sync::Mutex::new(None));
    let slot = fixture.clone();
    block_on(Box::pin(async move {
        let shop = Shop::new(&store, &commerce).await;
        let partner = shop.customer("Customer SRL").await.id();
        let campaign = shop
            .cs
            .create_campaign(
                &shop.w.ctx,
                NewCampaign {
                    budget: Money::parse("1000", "RON").ok(),
                    ..shop.year_campaign("Spring", Channel::Telemarketing)
                },
            )
            .await
            .expect("a campaign")
            .id();
        *slot.lock().expect("the fixture slot") = Some((Arc::new(shop), partner, campaign));
    }));
    let (shop, partner, campaign) = fixture
        .lock()
        .expect("the fixture slot")
        .take()
        .expect("the fixture");
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&input(), |i| {
        let shop = shop.clone();
        block_on(Box::pin(async move {
            run_case(&shop, partner, campaign, i).await
        }));
        Ok(())
    });
    if let Err(e) = result {
        panic!("no-panic property failed: {e}");
    }
    eprintln!("no-panic property: {cases} cases passed");
}
